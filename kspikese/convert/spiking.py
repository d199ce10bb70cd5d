"""ANN -> SNN by weight transfer: :func:`to_spiking` puts a spiking neuron where the ANN has an
activation (the neuron for each layer type comes from :mod:`kspikese.convert.neuron_rules`)."""

import math

import numpy as np
import tensorflow as tf

import keras_spiking
from kspikese import neurons
from kspikese.convert.graph import Rebuild, as_functional, unique_name
from kspikese.convert.neuron_rules import neuron_of, refusals

_L = tf.keras.layers


class ToSpiking(Rebuild):
    """The rebuild behind :func:`to_spiking` (arguments as there).

    ``fast=False`` gives KerasSpiking's defaults instead (a ``tf.while_loop`` over the steps and a
    random draw of initial voltages on every call); used to measure what the fast path saves.
    """

    def __init__(self, model, dt, seed, timesteps, spiking_aware_training, readout, fast=True,
                 v0=None):
        super().__init__(model)
        self.fast = fast
        self.v0 = neurons.check_v0(v0)
        if not fast and self.v0 is not None:
            raise ValueError("to_spiking: a fixed v0 needs the fast path (InitialVoltage layers)")
        self.dt, self.seed, self.timesteps = dt, seed, timesteps
        self.sat = spiking_aware_training
        self.readout = readout
        self.n_spiking = 0

    def on_input(self, tensor, new_input):
        if self.timesteps == 1:
            return new_input
        name = unique_name(f"{tensor._keras_history.layer.name}_repeat", self.used_names)
        return neurons.RepeatTime(self.timesteps, name=name)(new_input)

    def on_output(self, tensor, new_tensor):
        if self.timesteps == 1:
            return new_tensor
        name = unique_name(f"{tensor._keras_history.layer.name}_mean", self.used_names)
        return neurons.MeanTime(self.timesteps, name=name)(new_tensor)

    def spike(self, x, layer, activation):
        """``x`` through a new ``SpikingActivation(activation)`` named ``<layer>_spike``."""
        t = self.timesteps
        shape = x.shape[1:]
        static = shape.is_fully_defined()
        if not static and shape[-1] is None:
            raise ValueError(
                f"to_spiking: layer {layer.name!r} has output shape {x.shape}; the last "
                "(channel) dimension must be known"
            )
        seed = self.seed * 1000 + self.n_spiking
        self.n_spiking += 1
        into = self.node_name(layer, "to_time")
        spike_name = self.node_name(layer, "spike")
        back = self.node_name(layer, "from_time")
        if static and t == 1:
            timed = _L.Reshape((1,) + tuple(shape), name=into)(x)
        else:
            timed = neurons.TimeSplit(t, fold=not static, name=into)(x)
        neuron = neurons.spiking_activation(
            activation, self.dt, seed, spike_name, self.sat, timesteps=t
        )
        if not self.fast:
            neuron.unroll = False
            spikes = neuron(timed)
        else:
            v0_name = self.node_name(layer, "v0")
            if static:
                v0 = neurons.InitialVoltage(
                    seed, t, broadcast=not neurons.unrolled(t), value=self.v0, name=v0_name
                )(timed)
            else:
                v0 = neurons.InitialVoltage(seed, t, fold=True, value=self.v0,
                                            name=v0_name)([timed, x])
            spikes = neuron(timed, initial_state=[v0])
        if static and t == 1:
            return _L.Reshape(tuple(shape), name=back)(spikes)
        if static:
            return neurons.TimeMerge(t, name=back)(spikes)
        return neurons.TimeMerge(t, fold=True, name=back)([spikes, x])

    def on_node(self, node, layer, args, kwargs):
        neuron = neuron_of(layer)
        if neuron is None:
            y = self.clone(layer)(*args, **kwargs)
            if layer.name == self.readout and not isinstance(
                    layer, keras_spiking.layers.KerasSpikingLayer):
                return self.spike(y, layer, "linear")
            return y
        if neuron.mode == "replace":
            return self.spike(args[0], layer, neuron.activation)
        if neuron.mode == "linearise":
            y = self.clone(layer, activation="linear")(*args, **kwargs)
        else:  # "current": the layer computes the neuron's input rate
            y = self.clone(layer)(*args, **kwargs)
        return self.spike(y, layer, neuron.activation)


def check_seed(seed):
    """``seed`` as an int in ``[0, 2_000_000)`` (neuron ``i`` gets ``seed·1000 + i``)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    if not 0 <= int(seed) < 2_000_000:
        raise ValueError(
            f"seed: expected 0 <= seed < 2,000,000 (neuron seeds are seed*1000+i), got {seed}"
        )
    return int(seed)


def to_spiking(model, dt, seed=0, timesteps=1, spiking_aware_training=True, readout="readout",
               v0="random"):
    """Return a new functional model: ``model`` with every activation a spiking neuron.

    * Each activation becomes ``keras_spiking.SpikingActivation(f, dt=dt)`` with the rate
      function ``f`` of :mod:`kspikese.convert.neuron_rules`: ReLU -> IF neuron, clipped ReLU
      (``ReLU(max_value=m)``, ``relu6``) -> clipped IF neuron, ``LeakyReLU`` -> signed neuron,
      ``PReLU`` -> the PReLU layer followed by a signed (linear) neuron.  A layer with an
      ``activation`` argument keeps its name and weights with a linear activation and is
      followed by ``<name>_to_time`` (adds the time axis), ``<name>_spike`` (the neuron; its
      initial voltages come from ``<name>_v0``, see :class:`kspikese.neurons.InitialVoltage`)
      and ``<name>_from_time`` (drops it).  Activation layers (``ReLU``, ``LeakyReLU``,
      ``Activation``) are replaced by ``<name>_spike``.
    * The layer named ``readout`` (if the model has one and it is linear) gets a linear spiking
      neuron ``<readout>_spike`` (paper §3.1.1: spiking neurons with linear activation at the
      output).  A model without a layer of that name is converted without a spiking readout.
    * Neuron number ``i`` (in graph order) gets ``seed = seed * 1000 + i``: one seed, one
      output.  Its initial voltages are uniform in [0, 1) (as KerasSpiking's default), drawn once
      per neuron and shared by every example of a batch, so an example's output does not depend
      on the batch it is in; ``v0=0.5`` starts every voltage at 0.5 instead, so a one-step
      neuron rounds: ``n = floor(0.5 + f(x)·dt)`` (QCFS, Bu et al. 2022).
    * ``timesteps = T``: the input is repeated ``T`` times, the neurons integrate over the ``T``
      steps, and the output is the average over the steps (a rate):
      ``y = (1/T) Σ_t n_t / dt``.  ``T = 1`` is the paper's setting.

    Parameters
    ----------
    model : tf.keras.Model
        A functional or Sequential Keras model (not modified).
    dt : float
        The neurons' time step ω (> 0); outputs are multiples of ``1/dt``.
    seed : int
        Seed of the initial voltages, ``0 <= seed < 2,000,000``.
    timesteps : int
        Steps per input ``T >= 1``.
    spiking_aware_training : bool
        ``True``: spiking forward pass with the rate function's gradient in training (the
        paper's stage 3); ``False``: the rate function in training, spikes at inference.
    readout : str or None
        Name of the linear output layer that gets a linear spiking neuron.
    v0 : "random" or float
        Initial voltages: ``"random"`` (seeded ``U[0, 1)``) or one number in ``[0, 1)``.

    Returns
    -------
    tf.keras.Model
        The SNN, named ``<model.name>_snn``, with the ANN's weights (copied layer by name;
        ``snn.set_weights(ann.get_weights())`` loads too for chain-like graphs).

    Raises
    ------
    ValueError
        Naming every layer without a spiking equivalent (sigmoid, tanh, ELU, softmax, Lambda,
        recurrent, wrapper and nested-model layers), or for bad arguments.
    """
    model = as_functional(model, "to_spiking")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"to_spiking: dt must be a positive number, got {dt}")
    seed = check_seed(seed)
    if isinstance(timesteps, bool) or int(timesteps) != timesteps or int(timesteps) < 1:
        raise ValueError(f"to_spiking: timesteps must be an integer >= 1, got {timesteps!r}")
    refused = refusals(model)
    if refused:
        lines = "; ".join(f"{name!r}: {why}" for name, why in refused)
        raise ValueError(
            f"to_spiking: model {model.name!r} has layers without a spiking equivalent "
            f"(ReLU, clipped ReLU, LeakyReLU, PReLU and a linear readout convert): {lines}"
        )
    names = {layer.name for layer in model.layers}
    if readout is not None and readout != "readout" and readout not in names:
        raise ValueError(f"to_spiking: readout={readout!r} is not a layer of model {model.name!r}")
    if readout in names and neuron_of(model.get_layer(readout)) is None:
        act = getattr(model.get_layer(readout), "activation", None)
        if act is not None and neurons.activation_name(act) != "linear":
            raise ValueError(f"to_spiking: the readout layer {readout!r} must be linear or a "
                             "neuron")
    builder = ToSpiking(model, dt, seed, int(timesteps), spiking_aware_training, readout,
                        v0=neurons.check_v0(v0))
    return builder.run(name=f"{model.name}_snn")


def spiking_layers(model):
    """The ``SpikingActivation`` layers of ``model``, in layer order."""
    return [layer for layer in model.layers if isinstance(layer, keras_spiking.SpikingActivation)]


def is_spiking(model):
    """Whether ``model`` contains any ``SpikingActivation``."""
    return bool(spiking_layers(model))
