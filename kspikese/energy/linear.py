"""Statistics of the linear layers: convolutions of every kind and ``Dense``.

Notation (one example, batch axis dropped): ``P_in``/``P_out`` input/output positions (the
product of the spatial sizes), ``C_in``/``C_out`` channels, ``K = prod(kernel_size)`` taps,
``g`` groups, ``m`` depth multiplier.  A connection is one multiply-accumulate of an ANN (one
synaptic operation per incoming event in an SNN); a fused non-linear ``activation`` adds one
neuron update per output element.
"""

import numpy as np

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese.energy.registry import (Counts, activation_counts, input_elements, input_shapes,
                                      output_elements, register_layer)

layers = tf.keras.layers


def _channels(shape, data_format):
    axis = 1 if data_format == "channels_first" else -1
    return int(shape[axis])


def _taps(layer):
    return int(np.prod(layer.kernel_size, dtype=np.int64))


@register_layer(layers.Conv1D, layers.Conv2D, layers.Conv3D)
def conv_stats(node):
    """``ConvND``: every output element reads ``K · C_in / g`` inputs.

    .. math:: C = P_{out} \\cdot C_{out} \\cdot K \\cdot C_{in} / g

    Zero-padded border taps (``padding="same"``) are counted, as KerasSpiking does; strides and
    dilations change ``P_out`` only.  Example: ``Conv1D(8, 3, groups=2)`` on ``(20, 4)`` with
    ``padding="same"``: ``20 · 8 · 3 · 2 = 960``.
    """
    layer = node.layer
    c_in = _channels(input_shapes(node)[0], layer.data_format)
    out = output_elements(node)
    groups = int(getattr(layer, "groups", 1) or 1)
    return Counts(connections=out * _taps(layer) * c_in // groups) + activation_counts(layer, out)


@register_layer(layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
def conv_transpose_stats(node):
    """``ConvNDTranspose``: every *input* element scatters into ``K · C_out / g`` outputs.

    .. math:: C = P_{in} \\cdot C_{in} \\cdot K \\cdot C_{out} / g

    (Counting from the output side as for a convolution, ``P_out · C_out · K · C_in``, would count
    each input ``s`` times per stride-``s`` axis: only one tap in ``s`` of an output position
    meets an input.)  Taps cut off by ``padding="same"`` are counted; for stride 1 this equals
    :func:`conv_stats`.  Example: Conv-TasNet's decoder, ``Conv1DTranspose(1, 16, strides=8)`` on
    ``(10, 256)``: ``10 · 256 · 16 · 1 = 40960`` (KerasSpiking 0.3.0 gives ``80 · 1 · 16 · 1``).
    """
    layer = node.layer
    c_in = _channels(input_shapes(node)[0], layer.data_format)
    p_in = input_elements(node) // c_in
    groups = int(getattr(layer, "groups", 1) or 1)
    conn = p_in * c_in * _taps(layer) * int(layer.filters) // groups
    return Counts(connections=conn) + activation_counts(layer, output_elements(node))


@register_layer(layers.DepthwiseConv1D, layers.DepthwiseConv2D)
def depthwise_conv_stats(node):
    """``DepthwiseConvND``: each output element reads ``K`` taps of one input channel.

    .. math:: C = P_{out} \\cdot C_{in} \\cdot m \\cdot K = (\\text{output elements}) \\cdot K

    Example: ``DepthwiseConv1D(3, depth_multiplier=2)`` on ``(20, 4)``: ``18 · 4 · 2 · 3 = 432``.
    """
    layer = node.layer
    out = output_elements(node)
    return Counts(connections=out * _taps(layer)) + activation_counts(layer, out)


@register_layer(layers.SeparableConv1D, layers.SeparableConv2D)
def separable_conv_stats(node):
    """``SeparableConvND``: a depthwise convolution, then a 1×1 convolution.

    .. math:: C = P_{out} \\cdot C_{in} m \\cdot K + P_{out} \\cdot C_{in} m \\cdot C_{out}

    Example: ``SeparableConv1D(5, 3, depth_multiplier=2)`` on ``(10, 4)`` (valid, ``P_out = 8``):
    ``8 · 8 · 3 + 8 · 8 · 5 = 512``.
    """
    layer = node.layer
    c_in = _channels(input_shapes(node)[0], layer.data_format)
    out = output_elements(node)
    p_out = out // int(layer.filters)
    mid = c_in * int(layer.depth_multiplier)
    conn = p_out * mid * _taps(layer) + p_out * mid * int(layer.filters)
    return Counts(connections=conn) + activation_counts(layer, out)


@register_layer(layers.Dense)
def dense_stats(node):
    """``Dense``: every input element feeds every unit (per position for inputs of rank > 2).

    .. math:: C = (\\text{input elements}) \\cdot \\text{units}

    Example: ``Dense(3)`` on ``(4, 5)``: ``4 · 5 · 3 = 60``.
    """
    layer = node.layer
    conn = input_elements(node) * int(layer.units)
    return Counts(connections=conn) + activation_counts(layer, output_elements(node))
