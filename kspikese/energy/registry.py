"""The registry of layer statistics: one small function per layer type, looked up along the MRO.

A *stats function* receives one application of a layer (a Keras ``Node``) and returns its
:class:`Counts` per example and per timestep:

* ``connections`` C: synapses from input elements to output units; a MAC (or an add, a
  comparison) in an ANN, a synaptic operation per incoming event in an SNN;
* ``neurons`` N: neuron (non-linearity) updates.

Register one with the decorator::

    @register_layer(tf.keras.layers.UpSampling2D)
    def upsampling2d_stats(node):
        return Counts(connections=output_elements(node))

:func:`stats_function` walks ``type(layer).__mro__`` and returns the first registered function,
so a subclass is counted as its nearest registered base class (``Conv1DTranspose`` is registered
itself, otherwise it would be counted as the ``Conv1D`` it subclasses).  The base ``Layer`` is
never registered: a layer type nobody counted is an error (:class:`UncountedLayerError`) naming
every such type of the model, never a silent zero.
"""

import dataclasses

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese.registry import ClassRegistry

STATS = ClassRegistry()


@dataclasses.dataclass
class Counts:
    """Statistics of one layer application, per example and per timestep.

    Attributes
    ----------
    connections : int
        Synapses from input elements to output units (operations per dense pass).
    neurons : int
        Neuron (non-linearity) updates.
    spiking : bool
        Whether the layer runs as-is on a spiking device (``False`` for a rate non-linearity
        such as ``ReLU``, which a conversion replaces by a spiking neuron).
    """

    connections: int = 0
    neurons: int = 0
    spiking: bool = True

    def __add__(self, other):
        return Counts(self.connections + other.connections, self.neurons + other.neurons,
                      self.spiking and other.spiking)


class UncountedLayerError(ValueError):
    """The model holds layer types with no registered stats function (named in the message)."""


def register_layer(*layer_classes):
    """Decorator registering a stats function for one or more layer classes.

    Parameters
    ----------
    *layer_classes : type
        Keras layer classes; subclasses without a registration of their own use it too.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    return STATS.register(*layer_classes)


def stats_function(layer):
    """The stats function of ``layer``'s nearest registered class on its MRO, or ``None``."""
    return STATS.lookup(layer)


def model_nodes(model):
    """``[(layer, node)]`` for every application of a layer inside ``model``, in layer order."""
    inside = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    return [(layer, node) for layer in model.layers for node in layer.inbound_nodes
            if id(node) in inside]


def count_model(model):
    """Counts of every layer application of ``model``.

    Returns
    -------
    list of (layer, node, Counts)

    Raises
    ------
    UncountedLayerError
        Naming every layer type without a stats function, with one layer name of each.
    """
    missing = {}
    for layer, _ in model_nodes(model):
        if stats_function(layer) is None:
            missing.setdefault(type(layer).__name__, layer.name)
    if missing:
        listed = ", ".join(f"{t} (e.g. layer {n!r})" for t, n in missing.items())
        raise UncountedLayerError(
            f"model {model.name!r}: no energy statistics for layer types {listed}; register "
            "one with @kspikese.energy.register_layer(<layer class>) (see docs/energy.md)")
    out = []
    for layer, node in model_nodes(model):
        counts = stats_function(layer)(node)
        if not isinstance(counts, Counts):
            raise TypeError(f"the stats function of {type(layer).__name__} returned "
                            f"{counts!r}, expected a kspikese.energy.Counts")
        out.append((layer, node, counts))
    return out


@register_layer(tf.keras.Model)
def nested_model_stats(node):
    """A model used as a layer (a backbone, a ``Sequential`` block): the sum of its own layers'
    counts, each counted on the nested model's graph and input shape."""
    total = Counts()
    for _, _, counts in count_model(node.layer):
        total = total + counts
    return total


# ------------------------------------------------------------------------------ shape helpers
def input_shapes(node):
    """Shapes (batch axis included) of the tensors in a node's first call argument."""
    return [tuple(tf.TensorShape(t.shape).as_list()) for t in tf.nest.flatten(node.input_tensors)]


def output_shape(node):
    """Shape (batch axis included) of a node's (first) output."""
    return tuple(tf.TensorShape(tf.nest.flatten(node.outputs)[0].shape).as_list())


def elements(shape, node, what="output"):
    """Elements of one example of ``shape`` (its batch axis dropped); all sizes must be known."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot count layer {node.layer.name!r} ({type(node.layer).__name__}): its {what} "
            f"shape {dims} has undefined sizes; pass example_data to kspikese.energy.estimate "
            "(its shape fixes them) or rebuild with kspikese.energy.with_input_shape")
    return int(np.prod(dims, dtype=np.int64))


def output_elements(node):
    """Elements of one example of the node's output."""
    return elements(output_shape(node), node, "output")


def input_elements(node, index=0):
    """Elements of one example of the node's ``index``-th input."""
    return elements(input_shapes(node)[index], node, "input")


def is_linear(activation):
    """Whether a Keras activation is the identity (``None``, ``"linear"``)."""
    if activation is None or activation == "linear":
        return True
    return getattr(activation, "__name__", "") == "linear"


def activation_counts(layer, n_outputs):
    """A layer's fused ``activation``: a non-linear one is one neuron update per output element."""
    if is_linear(getattr(layer, "activation", None)):
        return Counts()
    return Counts(neurons=int(n_outputs), spiking=False)
