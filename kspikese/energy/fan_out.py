"""Synaptic events per spike: how many events each source of spikes costs downstream.

The estimate (:mod:`kspikese.energy.estimate`) charges a layer application with ``C``
connections per timestep whose event inputs hold ``n`` elements (all timesteps) of mean
magnitude ``|x|`` the events :math:`C \\, T \\, dt \\, \\overline{|x|}`.  A source tensor ``t``
of ``n_t`` elements with mean spike count :math:`m_t = dt \\, \\overline{|t|}` per element that
feeds such a consumer directly contributes the share :math:`n_t / n` of the consumer's input
magnitude, so its events are

.. math::

    E_t = k_t \\, m_t, \\qquad k_t = \\sum_{\\text{consumers } c} C_c \\, T \\, \\frac{n_t}{n_c}

summed over every application ``c`` that reads ``t`` as an event input
(:func:`kspikese.energy.rates.event_inputs`).  Layers that count nothing (routing such as
``Concatenate``, ``Reshape``, time plumbing: :mod:`kspikese.energy.shape`) pass ``t`` on: their
``k`` is their output's, scaled by ``n_t / n_{out}`` (exact for layers that keep every element,
an even-spread assumption for cropping; a free ``Rescaling``, such as a converted model's input
scale, passes ``t`` on unscaled, so an input's ``k`` prices the scaled input).  A consumer that
is itself a ``SpikingActivation`` re-encodes its input and counts no synapse, so it adds nothing.

``k_t`` is the price of one spike per element per step in events per inference; with
:math:`m_t` the mean spikes per neuron per step of a spiking layer, :math:`\\sum_t k_t m_t` over
the spiking layers and the model inputs is the estimate's :attr:`~Estimate.synops` when every
counted layer reads only those tensors (Wave-U-Net; Conv-TasNet's batch normalisations read
graded convolution outputs and add their own events).
"""

import numpy as np

import kspikese  # noqa: F401
import keras_spiking
import tensorflow as tf

from kspikese.convert import spiking_layers
from kspikese.energy.estimate import model_timesteps
from kspikese.energy.rates import event_inputs
from kspikese.energy.registry import count_model


def _elements(tensor):
    """Elements of one example of ``tensor`` (sizes known: :func:`count_model` checked them)."""
    return int(np.prod(tf.TensorShape(tensor.shape).as_list()[1:], dtype=np.int64))


def events_per_spike(model):
    """:math:`k` of every spiking layer and model input of ``model`` (see the module).

    Parameters
    ----------
    model : tf.keras.Model
        An SNN (or ANN: then only its inputs are sources) with known tensor sizes.

    Returns
    -------
    dict
        ``{layer name: k}`` for each ``SpikingActivation`` and each input layer: synaptic events
        per inference when that tensor carries one spike per element per step.

    Raises
    ------
    ValueError
        For undefined sizes (from :func:`kspikese.energy.count_model`, naming the layer).
    """
    apps = count_model(model)
    counts = {id(node): c for _, node, c in apps}
    timesteps = model_timesteps(model)
    memo = {}

    def price(tensor):
        key = id(tensor)
        if key in memo:
            return memo[key]
        n_t, total = _elements(tensor), 0.0
        for node in tensor._keras_history.layer.outbound_nodes:
            if id(node) not in counts:  # an application outside this model
                continue
            inputs = tf.nest.flatten(node.input_tensors)
            mine = [i for i, x in enumerate(inputs) if x is tensor]
            if not mine:
                continue
            layer, c = node.layer, counts[id(node)]
            if c.connections > 0:
                picked = event_inputs(layer, len(inputs))
                n_c = sum(_elements(inputs[i]) for i in picked)
                total += sum(c.connections * timesteps * n_t / n_c for i in mine if i in picked)
            elif not isinstance(layer, keras_spiking.SpikingActivation):
                for out in tf.nest.flatten(node.outputs):
                    total += len(mine) * price(out) * n_t / _elements(out)
        memo[key] = total
        return total

    sources = {layer.name: layer.output for layer in spiking_layers(model)}
    sources.update({t._keras_history.layer.name: t for t in model.inputs})
    return {name: price(t) for name, t in sources.items()}
