"""Rate control in fine-tuning (stage 3): a spike-count penalty and the log of spike counts.

A ``SpikingActivation`` with window ``dt`` outputs ``n / dt`` for ``n`` spikes, so ``|y|·dt`` is its
spike count per neuron per step.  For a hidden spiking layer ``l`` with ``N_l`` neurons (of
``N = Σ N_l``) and example ``b`` of a batch of ``B``, let ``m_{l,b}`` be the mean spike count per
neuron and step of that example.  The penalty added to the training loss is

.. math::

    P = w \\sum_l s_l \\cdot \\frac{1}{B} \\sum_b \\max(0,\\; m_{l,b} - \\tau)

(weight ``w``, target ``τ`` spikes per neuron per step): a hinge, so layers already at or below
the target are not pushed further, and with ``τ = 0`` an L1 penalty on the spike counts.  The
layer's share ``s_l`` (``Σ s_l = 1``) is, with ``weighting: neurons`` (the default), its part of
the hidden neurons, ``s_l = N_l / N``; with ``weighting: events`` its part of the synaptic events
that one spike per neuron and step would cost, ``s_l = k_l / Σ_j k_j``, where ``k_l`` is the
events per inference of one spike per neuron and step of layer ``l``
(:func:`kspikese.energy.fan_out.events_per_spike`).  With ``τ = 0`` the events-weighted penalty
is ``w`` times the hidden layers' synaptic events over ``Σ_j k_j``: it prices a spike by the
synapses it drives, as an event-driven device does.  The
gradient flows as in spike-aware training: through the rate function's derivative.  It is set as
each layer's Keras ``activity_regularizer`` (:class:`SpikeCountPenalty`; Keras divides by the
batch size) for the fine-tuning only (:func:`penalised`), so saved models do not carry it.

With a rate budget ``B`` (``finetune: max_events_per_mac``) and ``adapt_gain: g > 0`` the weight
is a multiplier that :class:`BudgetController` adapts after every epoch ``e``, from that epoch's
synaptic events per ANN MAC ``R_e`` on validation:

.. math::

    w_{e+1} = w_e \cdot \mathrm{clip}\big((R_e / B)^g,\; 1/4,\; 4\big)

(a multiplicative dual update, at most a factor 4 per epoch): over the budget the weight grows,
under it it shrinks, so the fine-tune spends what the budget leaves on quality instead of
pushing the rates on down.

The readout neuron (``<readout>_spike``) drives no synapse, so it is not penalised.
:class:`SpikeCountLog` adds the mean spike count per neuron per step (over every spiking layer,
as :attr:`kspikese.energy.Estimate.mean_firing`, and over the hidden ones) on a few validation
batches to every epoch's log: ``val_spikes_per_neuron`` and ``val_hidden_spikes_per_neuron``.
:class:`EventsLog` adds ``val_events_per_mac``: the synaptic events of one inference over the
dense operations of the same graph run as an ANN, the ratio an event-driven device's saving is
(a rate budget on it picks the fine-tuned checkpoint, :func:`kspikese.hybrid.finetune`).
"""

import contextlib
import math

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese.convert import spiking_layers

KEYS = {"weight": "penalty weight w >= 0 (0: off)",
        "target": "spikes per neuron per step a layer may emit without penalty (default 0)",
        "readout": "name of the readout layer, whose neuron is not penalised (default 'readout')",
        "weighting": "each layer's share: 'neurons' (its neurons, the default) or 'events' (the "
                     "synaptic events its spikes cause)",
        "adapt_gain": "g >= 0: after each epoch w <- w * (events per MAC / budget)^g (needs "
                      "finetune: max_events_per_mac; 0, the default: w fixed)"}
WEIGHTINGS = ("neurons", "events")
FRAME_LEN = 16384  # the input length events-weighting assumes for a model that leaves it open


def check(section):
    """A ``finetune: spike_penalty:`` section with defaults filled in.

    Parameters
    ----------
    section : dict or None
        ``weight`` (required), ``target`` (default 0), ``readout`` (default ``"readout"``),
        ``weighting`` (``"neurons"``, the default, or ``"events"``), ``adapt_gain`` (default 0);
        ``None``: no penalty.

    Returns
    -------
    dict or None
        ``{"weight", "target", "readout", "weighting", "adapt_gain"}``; ``None`` when there is
        no penalty.

    Raises
    ------
    ValueError
        Naming ``spike_penalty`` and the key, for a bad section.
    """
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ValueError(f"spike_penalty: expected a mapping with keys {sorted(KEYS)}, got "
                         f"{section!r}")
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise ValueError(f"spike_penalty: unknown keys {unknown}; known: {sorted(KEYS)}")
    if "weight" not in section:
        raise ValueError("spike_penalty: missing key 'weight' (the penalty weight, >= 0)")
    out = {"weight": _nonnegative(section["weight"], "weight"),
           "target": _nonnegative(section.get("target", 0.0), "target"),
           "readout": section.get("readout", "readout"),
           "weighting": _weighting(section.get("weighting", "neurons")),
           "adapt_gain": _nonnegative(section.get("adapt_gain", 0.0), "adapt_gain")}
    if out["readout"] is not None and not isinstance(out["readout"], str):
        raise ValueError(f"spike_penalty: readout must be a layer name or None, got "
                         f"{out['readout']!r}")
    return out


def _finite(value):
    """``value`` as a finite float, or ``None`` (booleans, text, NaN and inf included)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _weighting(value):
    if value not in WEIGHTINGS:
        raise ValueError(f"spike_penalty: weighting must be one of {list(WEIGHTINGS)}, got "
                         f"{value!r}")
    return value


def _nonnegative(value, key):
    number = _finite(value)
    if number is None or number < 0:
        raise ValueError(f"spike_penalty: {key} must be a number >= 0, got {value!r}")
    return number


@tf.keras.utils.register_keras_serializable("kspikese")
class SpikeCountPenalty(tf.keras.regularizers.Regularizer):
    """``share · w · Σ_b max(0, mean(|y_b|·dt) − τ)`` on one spiking layer's output ``y``.

    Keras divides an activity regulariser's value by the batch size, which makes the sum over
    ``b`` a mean over the batch's examples.

    Parameters
    ----------
    weight : float or tf.Variable
        ``w`` (a variable when :class:`BudgetController` adapts it between epochs).
    target : float
        ``τ`` (spikes per neuron per step).
    dt : float
        The layer's window (``|y|·dt`` is its spike count).
    share : float
        ``N_l / N``: the layer's part of the hidden neurons.
    """

    def __init__(self, weight, target, dt, share=1.0):
        self.weight = weight if isinstance(weight, tf.Variable) else float(weight)
        self.target = float(target)
        self.dt, self.share = float(dt), float(share)

    def __call__(self, x):
        counts = tf.abs(x) * tf.cast(self.dt, x.dtype)
        per_example = tf.reduce_mean(tf.reshape(counts, [tf.shape(x)[0], -1]), axis=1)
        excess = tf.nn.relu(per_example - tf.cast(self.target, x.dtype))
        return tf.cast(self.weight * self.share, x.dtype) * tf.reduce_sum(excess)

    def get_config(self):
        return {"weight": float(self.weight), "target": self.target, "dt": self.dt,
                "share": self.share}


def neuron_count(layer):
    """Neurons of a ``SpikingActivation`` per example and step (its output without batch and
    time axes)."""
    return int(np.prod(layer.output.shape[2:].as_list(), dtype=np.int64))


def hidden_layers(model, readout="readout"):
    """The spiking layers of ``model`` except the readout's neuron (``<readout>_spike``)."""
    skip = f"{readout}_spike" if readout else None
    return [layer for layer in spiking_layers(model) if layer.name != skip]


def layer_shares(model, layers, weighting="neurons"):
    """``s_l`` of each of ``layers`` (spiking layers of ``model``) under ``weighting`` (see the
    module); they sum to 1.

    Raises
    ------
    ValueError
        For an unknown weighting, or events-weighting where the layers drive no synapse.
    """
    if _weighting(weighting) == "neurons" or not layers:
        sizes = [neuron_count(layer) for layer in layers]
    else:  # events
        from kspikese import energy
        from kspikese.energy.fan_out import events_per_spike

        sized = model
        if any(d is None for t in model.inputs for d in t.shape[1:]):
            sized = energy.with_frame_len(model, FRAME_LEN)  # shares do not depend on length
        prices = events_per_spike(sized)
        sizes = [prices[layer.name] for layer in layers]
    total = float(sum(sizes))
    if layers and total <= 0:
        raise ValueError(f"spike_penalty: the penalised layers of {model.name!r} drive no "
                         f"synapse, so 'events' weighting has nothing to weigh")
    return [size / total for size in sizes]


@contextlib.contextmanager
def penalised(model, weight, target=0.0, readout="readout", weighting="neurons"):
    """Within the block, the hidden spiking layers of ``model`` carry :class:`SpikeCountPenalty`
    with the shares of :func:`layer_shares`.

    Set before the model is compiled and trained; each layer's previous ``activity_regularizer``
    is restored on exit.  ``weight == 0`` changes nothing; a ``tf.Variable`` weight is shared by
    every layer's penalty (what :class:`BudgetController` adapts).

    Yields
    ------
    list of tf.keras.layers.Layer
        The penalised layers.
    """
    adaptive = isinstance(weight, tf.Variable)
    layers = hidden_layers(model, readout) if adaptive or weight > 0 else []
    shares = layer_shares(model, layers, weighting)
    before = [layer.activity_regularizer for layer in layers]
    try:
        for layer, share in zip(layers, shares):
            layer.activity_regularizer = SpikeCountPenalty(weight, target, layer.dt, share)
        yield layers
    finally:
        for layer, previous in zip(layers, before):
            layer.activity_regularizer = previous


def mean_spikes(model, data, steps=2, readout="readout"):
    """Mean spikes per neuron per step on ``steps`` batches of ``data``.

    Parameters
    ----------
    model : tf.keras.Model
        An SNN.
    data : tf.data.Dataset or array
        ``(x, y)`` batches (only ``x`` is used), or an array of inputs (one batch).
    steps : int
        Batches used.
    readout : str or None
        The readout layer's name (its neuron is left out of ``hidden``).

    Returns
    -------
    dict
        ``{"spikes_per_neuron": all spiking layers, "hidden_spikes_per_neuron": without the
        readout}``, each ``Σ_l Σ|y_l|·dt / Σ_l (elements of y_l)``; NaN without spiking layers.
    """
    layers = spiking_layers(model)
    if not layers:
        return {"spikes_per_neuron": float("nan"), "hidden_spikes_per_neuron": float("nan")}
    hidden = {layer.name for layer in hidden_layers(model, readout)}
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    batches = input_batches(data, steps)
    sums, sizes = np.zeros(len(layers)), np.zeros(len(layers))
    for x in batches:
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, (layer, out) in enumerate(zip(layers, outs)):
            sums[i] += float(tf.reduce_sum(tf.abs(out))) * float(layer.dt)
            sizes[i] += float(tf.size(out))
    mask = np.array([layer.name in hidden for layer in layers])
    hidden_size = sizes[mask].sum()
    return {"spikes_per_neuron": float(sums.sum() / max(sizes.sum(), 1)),
            "hidden_spikes_per_neuron": (float(sums[mask].sum() / hidden_size) if hidden_size
                                         else float("nan"))}


def input_batches(data, steps=None):
    """The input batches of ``data``: an array is one batch; of a dataset of ``(x, y)`` batches
    (or of ``x`` batches) the ``x`` of the first ``steps`` batches, all of them when ``steps``
    is ``None``."""
    if not isinstance(data, tf.data.Dataset):
        return [data]
    data = data if steps is None else data.take(int(steps))
    return (b[0] if isinstance(b, tuple) else b for b in data)


class SpikeCountLog(tf.keras.callbacks.Callback):
    """Adds :func:`mean_spikes` on ``steps`` validation batches to each epoch's logs, as
    ``val_spikes_per_neuron`` and ``val_hidden_spikes_per_neuron`` (Keras' history and the
    fine-tune ``log.csv`` keep them)."""

    def __init__(self, data, steps=2, readout="readout"):
        super().__init__()
        self.data, self.steps, self.readout = data, int(steps), readout

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        counts = mean_spikes(self.model, self.data, self.steps, self.readout)
        logs.update({f"val_{k}": v for k, v in counts.items()})


class EventsLog(tf.keras.callbacks.Callback):
    """Adds ``val_events_per_mac`` to each epoch's logs: on ``steps`` validation batches (all of
    them when ``steps`` is ``None``),

    .. math::

        \\frac{E}{M} = \\frac{\\sum_l C_l\\, r_l\\, dt\\, T}{\\sum_l (C_l + N_l)}

    the synaptic events per inference (:attr:`kspikese.energy.Estimate.synops`, corrected counts,
    rates measured on the batches) over the dense operations (connections + neurons,
    :attr:`kspikese.energy.Estimate.dense_ops`) of ``ann``, the network the SNN was converted
    from, as ``kspikese energy`` reports them (without ``ann``: of the SNN's own graph, which
    also counts its readout neuron).  Below 1 an event-driven device does less work than a
    dense one.
    """

    def __init__(self, data, steps=None, ann=None):
        super().__init__()
        self.data, self.steps, self.ann = data, steps, ann

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_events_per_mac"] = events_per_mac(self.model, self.data, self.steps,
                                                        self.ann)


def events_per_mac(model, data, steps=None, ann=None):
    """``synops / dense_ops`` (see :class:`EventsLog`) of the SNN ``model`` with rates measured
    on ``steps`` batches of ``data`` (a dataset of ``(x, y)`` batches, all of them when ``steps``
    is ``None``; or an input array); ``dense_ops`` of ``ann`` if given, else of ``model``."""
    from kspikese import energy

    data = np.concatenate([np.asarray(x) for x in input_batches(data, steps)])
    events = energy.estimate(model, data, devices=["cpu-events"]).synops  # rates measured
    dense = energy.estimate(model if ann is None else ann, data, devices=["cpu"]).dense_ops
    return float(events / dense)


MAX_WEIGHT_STEP = 4.0  # the most the adapted weight changes in one epoch (either way)


def next_weight(weight, cost, budget, gain):
    """``w · clip((cost / budget)^gain, 1/4, 4)``: the penalty weight of the next epoch (module
    docstring)."""
    factor = (float(cost) / float(budget)) ** float(gain)
    return float(weight) * min(max(factor, 1.0 / MAX_WEIGHT_STEP), MAX_WEIGHT_STEP)


class BudgetController(tf.keras.callbacks.Callback):
    """Adapts the penalty weight (a ``tf.Variable`` given to :func:`penalised`) to a rate budget:
    after each epoch ``w ← w · clip((logs[key] / budget)^gain, 1/4, 4)`` (:func:`next_weight`).

    It must come after the callback that logs ``key`` (:class:`EventsLog`).  Each epoch's logs
    get ``penalty_weight``, the weight that epoch trained with, so a resumed fine-tune restarts
    from ``next_weight`` of the last logged epoch.
    """

    def __init__(self, weight, budget, gain, key="val_events_per_mac"):
        super().__init__()
        self.weight, self.budget, self.gain, self.key = weight, float(budget), float(gain), key

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        used = float(self.weight.numpy())
        logs["penalty_weight"] = used
        self.weight.assign(next_weight(used, logs[self.key], self.budget, self.gain))


def budget_value(value, key="max_events_per_mac"):
    """``value`` as a positive finite number, or a ``ValueError`` naming ``key``."""
    number = _finite(value)
    if number is None or number <= 0:
        raise ValueError(f"finetune: {key} must be a number > 0 (synaptic events per ANN MAC, "
                         f"e.g. 0.33), got {value!r}")
    return number
