"""Energy per inference of any Keras model: counts × rates × device prices.

For every layer application the registry gives connections ``C`` and neuron updates ``N`` per
example and timestep (:mod:`kspikese.energy.registry`); example data give each application's
input rate ``r`` (:mod:`kspikese.energy.rates`); a device prices them
(:func:`kspikese.energy.devices.price`).  Synaptic events per inference of ``T`` timesteps of
length ``dt``:

.. math:: S = \\sum_{\\text{applications}} C \\cdot r \\cdot dt \\cdot T

Two counting rules side by side: ``corrected`` (this package's registry; every layer type
counted or an error) and ``stock`` (``keras_spiking.ModelEnergy`` 0.3.0 as it stands: unknown
layers count zero with a warning, transposed convolutions with the ``Conv1D`` formula, and a
layer's rate is the sum of its applications' mean ``|x|`` over all inputs).
"""

import dataclasses
import warnings

import kspikese  # noqa: F401
import keras_spiking

from kspikese.convert import spiking_layers
from kspikese.energy import devices as D
from kspikese.energy.fixed_shape import undefined_inputs, with_input_shape
from kspikese.energy.rates import (default_example, event_inputs, example_inputs,
                                   measure_inputs, node_key, node_rate)
from kspikese.energy.registry import Counts, count_model

# the start of KerasSpiking's warning for a layer type it does not count
WARNING_TEXT = "Cannot compute stats for layer of type"
KINDS = ("corrected", "stock")


@dataclasses.dataclass
class Estimate:
    """One model costed with one counting rule.

    Attributes
    ----------
    model, kind : str
        Model name; ``"corrected"`` or ``"stock"``.
    dt : float
        Timestep length (the SNN's ω; KerasSpiking's default 0.001 for an ANN).
    timesteps : int
        ``T``, timesteps per inference.
    input_shape : list of tuple
        Non-batch shape of each input of one inference.
    n_examples : int
        Examples the rates were measured on (0: no rates).
    rates_from : str
        ``"example_data"``, ``"default example: ..."`` or ``"none"``.
    params, connections, neurons : int
        Totals per example and timestep.
    synops : float
        Synaptic events per inference, :math:`\\sum C r\\,dt\\,T` (NaN without rates).
    synops_graded : float
        Nonzero input messages × fan-out per inference (a graded spike is one message).
    neuron_updates, dense_ops : int
        :math:`N T` and :math:`C + N` (what a dense device prices) per inference.
    mean_firing : float
        Spikes per neuron per timestep over all ``SpikingActivation`` layers (NaN if none).
    totals : dict
        ``{device: Joules per inference}``.
    layers : list of dict
        One row per layer: name, type, output shape, params, connections, neurons,
        events per input element, nonzero input fraction, synops, spikes per neuron, and
        ``"J <device>"`` per device.
    uncounted : list of str
        Layer types counted as zero (stock only; the corrected rule raises instead).
    """

    model: str
    kind: str
    dt: float
    timesteps: int
    input_shape: list
    n_examples: int
    rates_from: str
    params: int
    connections: int
    neurons: int
    synops: float
    synops_graded: float
    neuron_updates: int
    dense_ops: int
    mean_firing: float
    totals: dict
    layers: list
    uncounted: list

    @property
    def frame_len(self):
        """The first input's first size (the frame length of an audio model)."""
        return int(self.input_shape[0][0])

    def to_dict(self):
        """The estimate as plain Python values."""
        return dataclasses.asdict(self)


def stock_counts(model):
    """``(applications, uncounted types)`` with ``keras_spiking.ModelEnergy``'s own registry.

    ``applications`` is ``[(layer, node, Counts)]``; KerasSpiking's warnings are caught and
    the types they name returned.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stock = keras_spiking.ModelEnergy(model)
    uncounted = []
    for w in caught:
        msg = str(w.message)
        if WARNING_TEXT in msg:
            name = msg.split("'")[1] if "'" in msg else msg
            if name not in uncounted:
                uncounted.append(name)
    apps = [(node.layer, node, Counts(int(st.get("connections", 0)), int(st.get("neurons", 0)),
                                      bool(st.get("spiking", True))))
            for node, st in stock.node_stats.items()]
    return apps, uncounted


def model_dt(model):
    """The ``dt`` of the model's ``SpikingActivation`` layers; ``None`` for an ANN."""
    dts = sorted({float(layer.dt) for layer in spiking_layers(model)})
    if len(dts) > 1:
        raise ValueError(f"model {model.name!r} mixes SpikingActivation dt values {dts}; "
                         "pass dt= explicitly")
    return dts[0] if dts else None


def model_timesteps(model):
    """Timesteps per inference: a kspikese ``RepeatTime`` layer's ``T``, else 1."""
    steps = {int(layer.timesteps) for layer in model.layers
             if type(layer).__name__ == "RepeatTime" and hasattr(layer, "timesteps")}
    if len(steps) > 1:
        raise ValueError(f"model {model.name!r} repeats its input {sorted(steps)} times; "
                         "pass timesteps= explicitly")
    return steps.pop() if steps else 1


def _nested_rate(inner, measured, connections, dt, timesteps):
    """The effective ``(rate, nonzero fraction)`` of a nested model: its own layers' synaptic
    events (measured on the inputs it received) spread over its connections."""
    rows = _layer_rows(inner, count_model(inner), measured, "corrected", dt, timesteps, ())
    if not connections:
        return 0.0, 0.0
    return (sum(r["synops"] for r in rows) / (connections * dt * timesteps),
            sum(r["synops_graded"] for r in rows) / (connections * timesteps))


def _layer_rows(model, apps, measured, kind, dt, timesteps, devices):
    """One row per layer of ``model`` (:attr:`Estimate.layers`), its applications summed."""
    nan = float("nan")
    per_layer = {layer: [] for layer in model.layers}
    for layer, node, counts in apps:
        per_layer.setdefault(layer, []).append((node, counts))
    rows = []
    for layer, entries in per_layer.items():
        conn = sum(c.connections for _, c in entries)
        neu = sum(c.neurons for _, c in entries)
        rate = nonzero = events = graded = nan
        if measured is not None:
            rates = []
            for node, counts in entries:
                key = node_key(layer, node)
                if kind == "corrected" and key in measured.nested:
                    rates.append((counts.connections,) + _nested_rate(
                        layer, measured.nested[key], counts.connections, dt, timesteps))
                    continue
                per_input = measured.inputs[key]
                picked = (list(range(len(per_input))) if kind == "stock"
                          else event_inputs(layer, len(per_input)))
                rates.append((counts.connections,) + node_rate(per_input, picked))
            rate, nonzero = sum(r[1] for r in rates), sum(r[2] for r in rates)
            if kind == "stock":  # KerasSpiking: all connections times the summed rate
                events, graded = conn * rate * dt * timesteps, conn * nonzero * timesteps
            else:
                events = sum(c * r * dt * timesteps for c, r, _ in rates)
                graded = sum(c * z * timesteps for c, _, z in rates)
        row = {"name": layer.name, "type": type(layer).__name__,
               "output_shape": str(layer.output_shape), "params": int(layer.count_params()),
               "connections": int(conn), "neurons": int(neu),
               "events_per_input": float(rate * dt * timesteps), "nonzero_inputs": float(nonzero),
               "synops": float(events), "synops_graded": float(graded),
               "spikes_per_neuron": float(measured.spikes.get(layer.name, nan)
                                          if measured is not None else nan)}
        for d in devices:
            row[f"J {d}"] = float(D.price(d, conn, neu, events, timesteps))
        rows.append(row)
    return rows


def estimate(model, example_data=None, *, corrected=True, devices=None, dt=None, timesteps=None,
             batch_size=4, progress=False, measured=None, strict=None):
    """Joules per inference of ``model`` on each device.

    Parameters
    ----------
    model : tf.keras.Model
        Any functional or sequential Keras model, ANN or SNN.
    example_data : array or list of arrays, optional
        Examples shaped like the model's inputs (any shape; a trailing channel of size 1 may be
        omitted).  They give the input rates spiking devices need, and fix input sizes the
        model leaves undefined.  Without them the counts use the model's input shape and, if a
        spiking device is priced, the rates come from :func:`kspikese.energy.rates.default_example`
        (seeded standard normal noise; :attr:`Estimate.rates_from` says so).
    corrected : bool
        This package's counts (``True``) or KerasSpiking 0.3.0's (``False``).
    devices : sequence of str, optional
        Default ``SNN_DEVICES`` for a model with ``SpikingActivation`` layers, else
        ``ANN_DEVICES`` (``cpu``).
    dt : float, optional
        Timestep length; default the model's ``SpikingActivation`` dt (so ``r · dt`` is a spike
        count), else ``keras_spiking.default.dt``.
    timesteps : int, optional
        Timesteps per inference; default :func:`model_timesteps`.
    batch_size : int
        Examples per forward pass of the rate measurement.
    progress : bool
        A progress bar for the rate measurement.
    measured : Measured, optional
        A rate measurement of this model to reuse (:func:`kspikese.energy.measure_inputs`).
    strict : bool, optional
        With ``corrected=False``, raise if KerasSpiking leaves a layer type uncounted
        (default: no).  The corrected rule always raises :class:`UncountedLayerError`.

    Returns
    -------
    Estimate
    """
    arrays = None
    if example_data is not None:
        arrays = example_inputs(model, example_data)
        if undefined_inputs(model):
            model = with_input_shape(model, [a.shape[1:] for a in arrays])
    timesteps = model_timesteps(model) if timesteps is None else int(timesteps)
    dt = model_dt(model) if dt is None else float(dt)
    dt = keras_spiking.default.dt if dt is None else dt
    if devices is None:
        devices = D.SNN_DEVICES if spiking_layers(model) else D.ANN_DEVICES
    devices = list(devices)
    for d in devices:
        D.device(d)
    if corrected:
        apps, uncounted = count_model(model), []
    else:
        apps, uncounted = stock_counts(model)
        if strict and uncounted:
            raise ValueError(f"model {model.name!r}: KerasSpiking leaves layer types "
                             f"{uncounted} uncounted")
    rates_from = "example_data" if measured is not None else "none"
    if measured is None and any(D.DEVICES[d]["spiking"] for d in devices):
        rates_from = "example_data"
        if arrays is None:
            arrays = default_example(model)
            rates_from = (f"default example: {len(arrays[0])} examples of N(0, 1) noise, seed 0 "
                          "(pass example_data for real rates)")
        measured = measure_inputs(model, arrays, batch_size=batch_size, progress=progress)
    rows = _layer_rows(model, apps, measured, "stock" if not corrected else "corrected", dt,
                       timesteps, devices)
    spk = [(measured.spikes[r["name"]], r["neurons"]) for r in rows
           if measured is not None and r["name"] in measured.spikes]
    mean_firing = (float(sum(s * n for s, n in spk) / max(sum(n for _, n in spk), 1))
                   if spk else float("nan"))
    connections = int(sum(r["connections"] for r in rows))
    neurons = int(sum(r["neurons"] for r in rows))
    return Estimate(
        model=model.name, kind="corrected" if corrected else "stock", dt=float(dt),
        timesteps=timesteps, input_shape=[tuple(t.shape[1:]) for t in model.inputs],
        n_examples=int(measured.n_examples) if measured is not None else 0,
        rates_from=rates_from, params=int(model.count_params()), connections=connections,
        neurons=neurons, synops=float(sum(r["synops"] for r in rows)),
        synops_graded=float(sum(r["synops_graded"] for r in rows)),
        neuron_updates=neurons * timesteps, dense_ops=connections + neurons,
        mean_firing=mean_firing,
        totals={d: float(sum(r[f"J {d}"] for r in rows)) for d in devices},
        layers=rows, uncounted=uncounted)


def compare(model, example_data=None, batch_size=4, progress=False, **kwargs):
    """Both counting rules on one rate measurement.

    Parameters
    ----------
    model, example_data, batch_size, progress
        As :func:`estimate`; the rates are measured once (when example data are given).
    **kwargs
        Passed to both :func:`estimate` calls (``devices``, ``dt``, ``timesteps``).

    Returns
    -------
    dict
        ``{"stock": Estimate, "corrected": Estimate}``.
    """
    measured = None
    if example_data is not None:
        arrays = example_inputs(model, example_data)
        if undefined_inputs(model):
            model = with_input_shape(model, [a.shape[1:] for a in arrays])
        measured = measure_inputs(model, arrays, batch_size=batch_size, progress=progress)
    return {"stock": estimate(model, corrected=False, measured=measured, **kwargs),
            "corrected": estimate(model, corrected=True, measured=measured, **kwargs)}
