"""Which neuron a layer becomes: a registry of rules per layer type, looked up along the MRO.

Every neuron is a ``keras_spiking.SpikingActivation(f, dt)`` with a rate function ``f``; per
step it emits ``n = floor(v + f(x)·dt)`` spikes (``v`` its remainder voltage, in [0, 1) before the
step) and outputs ``n / dt`` (see :mod:`kspikese.neurons`).  The kinds:

========================  =======================================  ===========================
ANN                       neuron                                   rate ``f(x)``
========================  =======================================  ===========================
ReLU                      IF                                       ``max(x, 0)``
ReLU(max_value=m), relu6  clipped IF (``Rectifier(max_value=m)``)  ``min(max(x, 0), m)``
LeakyReLU(α)              signed (``Rectifier(negative_slope=α)``)  ``x`` or ``α·x`` (x < 0)
PReLU                     the PReLU layer, then a signed neuron    ``x`` or ``α_c·x`` (x < 0)
                          (``"linear"``): its α stays trainable
========================  =======================================  ===========================

A rule is ``rule(layer) -> Neuron | None`` (``None``: the layer is copied as it is) and raises
:class:`Unconvertible` with the reason when the layer has no spiking equivalent.  Register one
for a layer class of your own with::

    @neuron_rule(MyActivationLayer)
    def my_neuron(layer):
        return Neuron(Rectifier(max_value=layer.cap), "clipped IF", "replace")
"""

from dataclasses import dataclass

import tensorflow as tf

import keras_spiking
from kspikese.neurons import Rectifier, activation_name
from kspikese.registry import ClassRegistry

_L = tf.keras.layers

#: layer class -> rule(layer); see :func:`neuron_rule`
NEURON_RULES = ClassRegistry()


class Unconvertible(ValueError):
    """A layer without a spiking equivalent (the message says why)."""


@dataclass(frozen=True)
class Neuron:
    """What a layer becomes in the SNN.

    Attributes
    ----------
    activation : str or callable
        The neuron's rate function ``f`` (``"relu"``, ``"linear"`` or a :class:`Rectifier`).
    kind : str
        ``"IF"``, ``"clipped IF"`` or ``"signed"``.
    mode : str
        ``"replace"``: the layer *is* the activation and the neuron takes its place;
        ``"linearise"``: the layer keeps its weights with a linear activation and the neuron
        follows it; ``"current"``: the layer is kept as it is and feeds the neuron.
    """

    activation: object
    kind: str
    mode: str


def neuron_rule(*layer_classes):
    """Decorator registering ``rule(layer) -> Neuron | None`` for ``layer_classes`` (and their
    subclasses without a rule of their own)."""

    return NEURON_RULES.register(*layer_classes)


def neuron_of(layer):
    """The :class:`Neuron` ``layer`` becomes (``None``: copied unchanged).

    Raises
    ------
    Unconvertible
        If the layer has no spiking equivalent.
    """
    rule = NEURON_RULES.lookup(layer)
    if rule is not None:
        return rule(layer)
    raise Unconvertible(f"no neuron rule for {type(layer).__name__}")  # pragma: no cover


def rectifier_neuron(rectifier, mode):
    """The neuron for a :class:`Rectifier` rate ``f`` (the plain ReLU stays ``"relu"``)."""
    if rectifier.plain:
        return Neuron("relu", "IF", mode)
    if rectifier.negative_slope == 0 and rectifier.threshold == 0:
        return Neuron(rectifier, "clipped IF", mode)
    return Neuron(rectifier, "signed" if rectifier.negative_slope else "IF", mode)


def activation_neuron(activation, mode):
    """The neuron for an activation function (``None`` for a linear one)."""
    if isinstance(activation, Rectifier):
        return rectifier_neuron(activation, mode)
    name = activation_name(activation)
    if name == "linear":
        return None
    rectifier = {"relu": Rectifier(), "relu6": Rectifier(max_value=6.0),
                 "leaky_relu": Rectifier(negative_slope=0.2)}.get(name)  # tf.nn defaults
    if rectifier is None:
        raise Unconvertible(f"activation {name!r}")
    return rectifier_neuron(rectifier, mode)


@neuron_rule(_L.Layer)
def _any_layer(layer):
    """A layer with an ``activation`` argument: its activation becomes the neuron."""
    if hasattr(layer, "activation"):
        return activation_neuron(layer.activation, "linearise")
    return None


@neuron_rule(keras_spiking.layers.KerasSpikingLayer)
def _already_spiking(layer):
    return None


@neuron_rule(_L.Activation)
def _activation_layer(layer):
    """``Activation(f)`` -> the neuron of ``f``: ``"relu"`` an IF neuron, ``"relu6"`` (or
    ``tf.nn.relu6``) a clipped IF neuron with ``m = 6``, ``tf.nn.leaky_relu`` a signed neuron
    with ``α = 0.2``; ``out = floor(v0 + dt·f(x)) / dt``."""
    return activation_neuron(layer.activation, "replace")


@neuron_rule(_L.ReLU)
def _relu_layer(layer):
    """``ReLU(max_value=m, negative_slope=α, threshold=θ)`` -> a neuron on that rectifier.

    One step: ``out = floor(v0 + dt·f(x)) / dt`` with ``f(x) = min(max(x, 0), m)`` for the
    clipped IF neuron (ReLU6: ``m = 6``), so ``0 <= out <= floor(v0 + dt·m)/dt``; with ``α > 0``
    the neuron is signed (``f(x) = α·(x - θ)`` below ``θ``: negative spikes).
    """
    m = layer.max_value
    return rectifier_neuron(Rectifier(None if m is None else float(m), float(layer.negative_slope),
                                      float(layer.threshold)), "replace")


@neuron_rule(_L.LeakyReLU)
def _leaky_relu_layer(layer):
    """``LeakyReLU(α)`` -> a signed neuron: ``out = floor(v0 + dt·f(x)) / dt`` with
    ``f(x) = x`` for ``x >= 0`` and ``α·x`` below; a negative ``f`` gives ``n < 0`` spikes."""
    return rectifier_neuron(Rectifier(negative_slope=float(layer.alpha)), "replace")


@neuron_rule(_L.PReLU)
def _prelu_layer(layer):
    """``PReLU`` (slopes ``α_c`` per channel) -> the layer kept, then a signed linear neuron:
    ``out = floor(v0 + dt·PReLU(x)) / dt``, ``PReLU(x) = x`` for ``x >= 0`` and ``α_c·x`` below;
    the slopes stay trainable in fine-tuning."""
    return Neuron("linear", "signed", "current")


@neuron_rule(_L.ELU, _L.ThresholdedReLU, _L.Softmax)
def _unsupported_activation_layer(layer):
    raise Unconvertible(f"a {type(layer).__name__} activation")


@neuron_rule(tf.keras.Model)
def _nested_model(layer):
    raise Unconvertible("a nested model (flatten it into the outer functional graph first)")


@neuron_rule(_L.Lambda)
def _lambda(layer):
    raise Unconvertible("a Lambda layer (its function cannot be inspected; use a standard layer)")


@neuron_rule(_L.RNN)
def _recurrent(layer):
    raise Unconvertible("a recurrent layer (its internal activations have no spiking "
                        "equivalent here)")


@neuron_rule(_L.Wrapper)
def _wrapper(layer):
    raise Unconvertible(f"a {type(layer).__name__} wrapper (its inner layer's activations "
                        "cannot be replaced)")


def refusals(model):
    """``[(layer name, reason)]`` for every layer of ``model`` without a spiking equivalent."""
    out = []
    for layer in model.layers:
        try:
            neuron_of(layer)
        except Unconvertible as err:
            out.append((layer.name, str(err)))
    return out


def neuron_layers(model):
    """Names of the layers of ``model`` whose output becomes a spiking neuron's input rate
    (the layers :func:`neuron_of` maps to a :class:`Neuron`), in layer order."""
    return [layer.name for layer in model.layers if neuron_of(layer) is not None]
