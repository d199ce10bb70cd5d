"""The output noise that each unit's spike rounding causes, measured (``allocation: measured``).

At one timestep with ``v0 = 0.5`` a neuron whose carrier has the factor ``F`` sends
``n = floor(ω F a + 1/2)`` spikes for an ANN activation ``a``: in the ANN's units its output is
``a`` rounded to steps of ``q = 1 / (ω F T)`` (``T`` timesteps average ``T`` such counts, so the
step is ``T`` times finer).  :mod:`kspikese.convert.allocation` models a unit's effect on the
output by its own relative rounding noise; here it is measured instead.  For each unit ``u`` (a
hidden neuron layer, or the layers of one sum group) the ANN is run on calibration frames with
only ``u``'s outputs rounded, and

.. math::

    E_u = \\frac{\\sum \\lVert y - y_u \\rVert^2}{\\sum \\lVert y \\rVert^2}

is the output's noise-to-signal ratio (``y`` the ANN's output, ``y_u`` the output with ``u``
rounded).  For steps small against the activations the rounding error is uniform with variance
``q²/12`` and the rest of the network passes it on linearly, so multiplying ``u``'s factor by
``g_u`` divides ``E_u`` by ``g_u²`` and the errors of different units add: the same objective
:math:`\\sum_u E_u / g_u^2` as the model's, with the real gain of every path to the output in it
(a mask, a product or a decoder that amplifies one layer's error and shrinks another's).
"""

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese.convert.graph import Rebuild, as_functional


class Rounding(tf.keras.layers.Layer):
    """``x`` rounded to steps of ``1 / scale`` (``floor(x·scale + 1/2) / scale``), or ``x`` itself
    while ``scale`` is 0.  ``scale`` is a variable, so one traced model serves every unit."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="zeros", trainable=False)
        super().build(input_shape)

    def call(self, x):
        s = tf.cast(self.scale, x.dtype)
        rounded = tf.floor(x * s + 0.5) / tf.maximum(s, tf.keras.backend.epsilon())
        return tf.where(s > 0, rounded, x)


class _RoundingProbe(Rebuild):
    """The model with a :class:`Rounding` layer after every layer in ``names``."""

    def __init__(self, model, names):
        super().__init__(model)
        self.names, self.rounding = set(names), {}

    def on_node(self, node, layer, args, kwargs):
        out = super().on_node(node, layer, args, kwargs)
        if layer.name not in self.names:
            return out
        rounding = Rounding(name=self.node_name(layer, "rounding"))
        self.rounding.setdefault(layer.name, []).append(rounding)
        return rounding(out)


def output_noise(ann, units, steps, calibration, batch_size=4):
    """``{unit: E_u}``: the output's noise-to-signal ratio with only that unit's layers rounded.

    Parameters
    ----------
    ann : tf.keras.Model
        The ANN (relays already inserted, if any); a functional or Sequential model.
    units : dict
        ``{layer name: unit}`` for the hidden neuron layers.
    steps : dict
        ``{layer name: s}``: each layer's output is rounded to steps of ``1 / s`` (``s = ω F T``).
    calibration : array_like
        Input frames the ratio is measured on.
    batch_size : int
        Frames per model call.

    Returns
    -------
    dict
        ``{unit: E_u}``, each ``>= 0``.

    Raises
    ------
    ValueError
        For a layer in ``units`` that ``ann`` does not have, a step that is not finite and
        positive, or an ANN output that is zero on every frame.
    """
    ann = as_functional(ann, "allocation: measured")
    known = {layer.name for layer in ann.layers}
    missing = sorted(set(units) - known)
    if missing:
        raise ValueError(f"allocation: measured: no layer named {missing} in {ann.name!r}")
    bad = {n: steps.get(n) for n in units
           if not (np.isfinite(steps.get(n, np.nan)) and steps.get(n, 0) > 0)}
    if bad:
        raise ValueError(f"allocation: measured: rounding steps must be finite and > 0, got {bad}")
    probe = _RoundingProbe(ann, units)
    model = probe.run(f"{ann.name}_rounding")
    call = tf.function(lambda x: model(x, training=False))
    x = np.asarray(calibration, dtype=np.float32)

    def outputs():
        parts = [call(tf.constant(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate([np.concatenate([np.asarray(t) for t in tf.nest.flatten(p)], axis=-1)
                               for p in parts]).astype(np.float64)

    clean = outputs()  # every Rounding layer's scale starts at 0: the ANN itself
    power = float(np.sum(clean ** 2))
    if power <= 0:
        raise ValueError("allocation: measured: the ANN's output is zero on every calibration frame")
    noise = {}
    for unit in sorted(set(units.values())):
        members = {n for n, u in units.items() if u == unit}
        for name, layers in probe.rounding.items():
            for layer in layers:
                layer.scale.assign(float(steps[name]) if name in members else 0.0)
        noise[unit] = float(np.sum((outputs() - clean) ** 2)) / power
    return noise
