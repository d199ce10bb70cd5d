"""Statistics of the spiking layers (KerasSpiking's and kspikese's own) and ``TimeDistributed``.

Inputs of KerasSpiking's layers are ``(batch, time, *neurons)``: the counts are per timestep, and
:func:`kspikese.energy.estimate` multiplies them by the timesteps per inference.
"""

import numpy as np

import kspikese  # noqa: F401
import keras_spiking
import tensorflow as tf

from kspikese import neurons as kneurons
from kspikese.energy.registry import (Counts, UncountedLayerError, activation_counts, elements,
                                      input_shapes, output_elements, register_layer,
                                      stats_function)


def _per_step(shape, node):
    dims = tuple(shape)[2:]
    if any(d is None for d in dims):
        raise ValueError(f"cannot count layer {node.layer.name!r}: its neuron shape {dims} has "
                         "undefined sizes; pass example_data to kspikese.energy.estimate")
    return int(np.prod(dims, dtype=np.int64))


@register_layer(keras_spiking.SpikingActivation)
def spiking_activation_stats(node):
    """``SpikingActivation``: one neuron update per neuron per timestep.

    .. math:: N = \\prod \\text{input shape}[2:]

    (input ``(batch, time, *neurons)``).  When :class:`kspikese.neurons.TimeSplit` has folded
    the positions of an unknown-length input into the batch axis, ``(B·T, P, C) -> (B·P, T, C)``,
    that product is ``C`` only; then :math:`N = P \\cdot C` is taken from the ``TimeSplit``'s
    input, one neuron per element of a timestep.
    """
    split = [parent.layer for parent in node.parent_nodes
             if isinstance(parent.layer, kneurons.TimeSplit) and parent.layer.fold]
    if split:
        parent = split[0].inbound_nodes[0]
        return Counts(neurons=elements(input_shapes(parent)[0], parent, "input"))
    return Counts(neurons=_per_step(input_shapes(node)[0], node))


@register_layer(keras_spiking.Lowpass, keras_spiking.Alpha)
def synaptic_filter_stats(node):
    """KerasSpiking's ``Lowpass`` / ``Alpha`` filters: one state update per element per timestep,
    counted as a neuron update: :math:`N = \\prod \\text{input shape}[2:]`."""
    return Counts(neurons=_per_step(input_shapes(node)[0], node))


@register_layer(tf.keras.layers.TimeDistributed)
def time_distributed_stats(node):
    """``TimeDistributed(layer)``: the wrapped layer's counts on one timestep's slice.

    The wrapped layer is applied to a placeholder of shape ``input shape[2:]`` (outside the
    model) and counted with its own registered stats function.
    """
    inner = node.layer.layer
    fn = stats_function(inner)
    if fn is None:
        raise UncountedLayerError(f"no energy statistics for layer type {type(inner).__name__} "
                                  f"(inside TimeDistributed {node.layer.name!r})")
    step = tf.keras.Input(batch_shape=(None,) + tuple(input_shapes(node)[0][2:]))
    inner(step)
    return fn(inner.inbound_nodes[-1])


@register_layer(kneurons.RepeatTime, kneurons.TimeSplit, kneurons.TimeMerge, kneurons.MeanTime,
                kneurons.InitialVoltage)
def time_plumbing_stats(node):
    """kspikese's time-axis plumbing is free: ``RepeatTime``, ``TimeSplit``, ``TimeMerge``
    (reshapes and copies), ``InitialVoltage`` (a neuron's initial state, set once) and
    ``MeanTime`` (the host's average of the output over the ``T`` steps)."""
    return Counts()


@register_layer(kneurons.SynapticMultiply)
def synaptic_multiply_stats(node):
    """:class:`kspikese.neurons.SynapticMultiply`: one synapse per output element.

    The event input's spikes (the Conv-TasNet mask) pass through a synapse whose weight is the
    other input (the encoder's counts), :math:`C = \\text{output elements}`; a non-linear
    ``activation`` adds :math:`N = \\text{output elements}`.  Only the event input's values are
    synaptic events (:func:`kspikese.energy.rates.event_inputs`).
    """
    out = output_elements(node)
    return Counts(connections=out) + activation_counts(node.layer, out)
