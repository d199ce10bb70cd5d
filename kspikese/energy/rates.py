"""Input rates measured on example data, streaming, batch by batch.

A spiking device pays per synaptic event.  A KerasSpiking neuron of window ``dt`` outputs
``n / dt`` for ``n`` spikes, so the mean of ``|x|`` over a layer input's elements is its rate
``r`` (events per element per second) and ``r · dt`` the mean events per element per timestep.
:func:`measure_inputs` keeps two sums per tensor (``Σ|x|`` and the nonzero count), never the
tensors themselves, so its memory does not grow with the data.
"""

import dataclasses

import numpy as np

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese.convert import spiking_layers
from kspikese.energy.registry import model_nodes


@dataclasses.dataclass
class Measured:
    """Input magnitudes of every layer application, measured on example data.

    Attributes
    ----------
    inputs : dict
        ``{(layer name, node index): [(mean |x|, nonzero fraction, elements), ...]}``, one
        tuple per input tensor of that application.
    spikes : dict
        ``{layer name: mean |output| · dt}`` of each ``SpikingActivation`` (spikes per neuron
        per timestep).
    n_examples : int
        Examples seen.
    nested : dict
        ``{(layer name, node index): Measured}`` of each model used as a layer, measured on
        the inputs it received.
    """

    inputs: dict
    spikes: dict
    n_examples: int
    nested: dict = dataclasses.field(default_factory=dict)


def node_key(layer, node):
    """``(layer name, index of node among the layer's applications)``."""
    return layer.name, layer.inbound_nodes.index(node)


def example_inputs(model, data):
    """``data`` as a list of arrays, one per model input, checked against the input shapes.

    An array may omit a trailing channel axis of size 1 (audio ``(n, L)`` for inputs
    ``(L, 1)``).  Floating data become float32.

    Raises
    ------
    ValueError
        Wrong number of arrays, no examples, unequal example counts or a shape that does not
        match the model's input (naming ``example_data`` and the expected shape).
    """
    arrays = list(data) if isinstance(data, (list, tuple)) else [data]
    if len(arrays) != len(model.inputs):
        raise ValueError(f"example_data: model {model.name!r} has {len(model.inputs)} inputs, "
                         f"got {len(arrays)} arrays")
    out = []
    for array, tensor in zip(arrays, model.inputs):
        array = np.asarray(array)
        want = tuple(tensor.shape[1:])
        if array.ndim == len(want) and want and want[-1] == 1:
            array = array[..., None]
        shape_ok = array.ndim == len(want) + 1 and all(
            w is None or w == a for w, a in zip(want, array.shape[1:]))
        if not shape_ok or len(array) == 0:
            raise ValueError(f"example_data: expected an array of shape (n > 0, "
                             f"{', '.join('any' if w is None else str(w) for w in want)}) for "
                             f"input {tensor.name!r}, got {np.shape(array)}")
        out.append(array.astype(np.float32) if array.dtype.kind == "f" else array)
    if len({len(a) for a in out}) > 1:
        raise ValueError(f"example_data: the inputs hold different numbers of examples "
                         f"{[len(a) for a in out]}")
    return out


def default_example(model, n=2, seed=0):
    """``n`` examples of seeded standard normal noise shaped like the model's inputs.

    Raises ``ValueError`` if an input size is undefined (then only real data can say it).
    """
    rng = np.random.default_rng(seed)
    out = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape):
            raise ValueError(f"model {model.name!r}: input {tensor.name!r} has undefined sizes "
                             f"{shape}; pass example_data (its shape fixes them)")
        out.append(rng.standard_normal((n,) + shape).astype(np.float32))
    return out


def measure_inputs(model, data, batch_size=4, progress=False):
    """Stream ``data`` through ``model`` and average every layer input's magnitude.

    Parameters
    ----------
    model : tf.keras.Model
    data : array or list of arrays
        Examples for the model's inputs (:func:`example_inputs`).
    batch_size : int
        Examples per forward pass.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    Measured
    """
    arrays = example_inputs(model, data)
    n = len(arrays[0])
    tensors, index, nested = [], [], []
    for layer, node in model_nodes(model):
        inputs = tf.nest.flatten(node.input_tensors)
        index.append((node_key(layer, node), list(range(len(tensors), len(tensors) + len(inputs)))))
        tensors.extend(inputs)
        if isinstance(layer, tf.keras.Model):
            nested.append((layer, node_key(layer, node), inputs))
    spiking = spiking_layers(model)
    first_out = len(tensors)
    tensors.extend(layer.output for layer in spiking)
    probe = tf.keras.Model(model.inputs, [tensors, [t for _, _, ts in nested for t in ts]])

    @tf.function
    def reduce(batch):
        outs, kept = probe(batch, training=False)
        return ([tf.reduce_sum(tf.abs(tf.cast(o, tf.float64))) for o in outs],
                [tf.math.count_nonzero(o, dtype=tf.float64) for o in outs], kept)

    sums, nonzeros = np.zeros(len(tensors)), np.zeros(len(tensors))
    starts = range(0, n, int(batch_size))
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="firing rates", unit="batch", leave=False)
    kept_batches = []
    for start in starts:
        batch = [tf.constant(a[start:start + int(batch_size)]) for a in arrays]
        s, z, kept = reduce(batch if len(batch) > 1 else batch[0])
        sums += np.array([float(v) for v in s])
        nonzeros += np.array([float(v) for v in z])
        kept_batches.append([np.asarray(k) for k in tf.nest.flatten(kept)])
    sizes = np.array([np.prod(t.shape[1:].as_list(), dtype=np.float64) for t in tensors])
    mean_abs, frac = sums / (sizes * n), nonzeros / (sizes * n)
    inputs = {key: [(float(mean_abs[c]), float(frac[c]), float(sizes[c])) for c in cols]
              for key, cols in index}
    spikes = {layer.name: float(mean_abs[first_out + i] * layer.dt)
              for i, layer in enumerate(spiking)}
    inner, column = {}, 0
    for layer, key, ins in nested:  # a nested model: measured on the inputs it received
        received = [np.concatenate([b[column + i] for b in kept_batches]) for i in range(len(ins))]
        inner[key] = measure_inputs(layer, received, batch_size=batch_size)
        column += len(ins)
    return Measured(inputs=inputs, spikes=spikes, n_examples=n, nested=inner)


def event_inputs(layer, n_inputs):
    """Indices of a layer's inputs whose values are synaptic events (the rest are weights).

    A multi-input layer with an integer ``event_input`` attribute (kspikese's
    ``SynapticMultiply``: the mask) has that one event input; every other layer all of them.
    """
    index = getattr(layer, "event_input", None)
    if n_inputs > 1 and index is not None:
        if not 0 <= int(index) < n_inputs:
            raise ValueError(f"layer {layer.name!r}: event_input={index} but it has "
                             f"{n_inputs} inputs")
        return [int(index)]
    return list(range(n_inputs))


def node_rate(per_input, picked):
    """``(mean |x|, nonzero fraction)`` over the ``picked`` inputs, weighted by their elements.

    For inputs of equal size this is the plain mean over all their elements.
    """
    chosen = [per_input[i] for i in picked]
    weights = np.array([c[2] for c in chosen])
    if weights.sum() == 0:
        return 0.0, 0.0
    return (float(np.dot([c[0] for c in chosen], weights) / weights.sum()),
            float(np.dot([c[1] for c in chosen], weights) / weights.sum()))
