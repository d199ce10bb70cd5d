"""Statistics of element-wise layers: merges, normalisation, activations, constant scaling.

Counts are per output element unless stated; "connections" are the operations (an add, a
multiply, a multiply-accumulate), "neurons" the non-linearity updates.
"""

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese.energy.registry import (Counts, activation_counts, input_shapes, is_linear,
                                      output_elements, register_layer)

layers = tf.keras.layers

MERGES = (layers.Add, layers.Subtract, layers.Average, layers.Maximum, layers.Minimum,
          layers.Multiply)
ACTIVATIONS = (layers.ReLU, layers.LeakyReLU, layers.PReLU, layers.ELU, layers.Softmax,
               layers.ThresholdedReLU)
# linear layers a following BatchNormalization folds into (the transposed convs subclass ConvND)
FOLDABLE = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.DepthwiseConv1D,
            layers.DepthwiseConv2D, layers.SeparableConv1D, layers.SeparableConv2D, layers.Dense)


@register_layer(*MERGES)
def merge_stats(node):
    """``Add``/``Subtract``/``Average``/``Maximum``/``Minimum``/``Multiply`` of ``m`` inputs.

    .. math:: C = (m - 1) \\cdot (\\text{output elements})

    one add, multiply or comparison per output element and extra input (``Average``'s ``1/m``
    folds into the next linear layer).  Broadcast inputs are counted at the output's size.  On
    a spiking device the ``m`` inputs' events are the synaptic events (a spike addition merges
    the trains onto the same targets).  Example: ``Add`` of three ``(4, 2)`` tensors: ``16``.
    """
    m = max(len(input_shapes(node)), 2)
    return Counts(connections=(m - 1) * output_elements(node))


def folds_into_producer(node):
    """Whether ``node``'s input comes straight from a linear layer with no other consumer."""
    parents = node.parent_nodes
    if len(parents) != 1:
        return False
    producer = parents[0].layer
    return (isinstance(producer, FOLDABLE) and is_linear(getattr(producer, "activation", None))
            and len(producer.outbound_nodes) == 1)


@register_layer(layers.BatchNormalization)
def batch_normalization_stats(node):
    """``BatchNormalization`` at inference: ``y = a·x + b`` per channel, ``a = γ/√(σ²+ε)``.

    Straight after a linear convolution or ``Dense`` (with no other consumer of its output) it
    folds into that layer, ``W' = a·W``, ``b' = a·(b - μ) + β``: the same function with no
    extra operation, in the ANN and the SNN alike, so :math:`C = 0`.  Otherwise one
    multiply-accumulate per element: :math:`C = \\text{output elements}`.
    """
    if folds_into_producer(node):
        return Counts()
    return Counts(connections=output_elements(node))


NORMALIZATIONS = (layers.LayerNormalization,) + (
    (layers.GroupNormalization,) if hasattr(layers, "GroupNormalization") else ())


@register_layer(*NORMALIZATIONS)
def layer_normalization_stats(node):
    """``LayerNormalization`` (and ``GroupNormalization``): statistics per example, then affine.

    Per element one add for the mean (:math:`\\sum x`), one multiply-accumulate for the variance
    (:math:`\\sum x^2`) and one multiply-accumulate for :math:`(x - \\mu)\\,a + \\beta` with
    :math:`a = \\gamma/\\sqrt{\\sigma^2 + \\epsilon}`:

    .. math:: C = 3 \\cdot (\\text{output elements})

    (the one square root per group is not counted).  Example: on ``(4, 6)``: ``72``.
    """
    return Counts(connections=3 * output_elements(node))


@register_layer(layers.Activation, *ACTIVATIONS)
def activation_stats(node):
    """Activation layers: one neuron update per output element (none for ``linear``).

    .. math:: N = \\text{output elements}

    ``ReLU`` (also with ``max_value``, e.g. ReLU6), ``LeakyReLU``, ``PReLU`` (its slope is a
    per-element multiply inside the neuron), ``ELU``, ``Softmax``, ``ThresholdedReLU``.  They are
    rate non-linearities (``spiking=False``): on a spiking device they stand for the spiking
    neuron a conversion puts in their place.
    """
    layer = node.layer
    out = output_elements(node)
    if isinstance(layer, layers.Activation):
        return activation_counts(layer, out)
    return Counts(neurons=out, spiking=False)


@register_layer(layers.Rescaling, layers.Normalization)
def constant_affine_stats(node):
    """``Rescaling`` / ``Normalization``: a constant ``a·x + b``, folded into the next linear layer
    (at the input it is the choice of units of the data): :math:`C = 0`."""
    return Counts()
