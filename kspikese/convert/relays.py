"""Relay neurons: re-spike every sum of spike trains, so that a residual stream's rate stays set.

An ``Add`` of spike counts needs no neuron (:func:`kspikese.neurons.spike_add`): merging trains
onto the same targets is exact.  But the sum's rate is the sum of its inputs' rates, and in a
residual network the stream ``y_b = y_{b-1} + r_b`` carries every block's trains at once: block
``b``'s 1×1 convolution reads ``b + 1`` trains, and its synaptic events grow with depth.

A relay is the one-synapse neuron ``z = ReLU(w ⊙ y + β)`` (a depthwise convolution of kernel size
1, ``w = 1``, ``β = 0``) after each sum.  Where the sum is non-negative (a sum of ReLU outputs) it
computes ``z = y``, so the ANN's function is unchanged; converted, it is a neuron whose scale
data-based normalisation sets like any other layer's (``target_spikes`` at the percentile), so
the stream is re-encoded at its own scale after every block instead of carrying every block's
trains.  The relay's output meets the next residual in the next sum, and the two share one factor
(``sum_scale``: their geometric mean, or the smaller).  It costs one synapse per channel and a
rounding per block; the relay's ``w`` and ``β`` are trained with the rest in stage 3.
"""

import numpy as np
import tensorflow as tf

from kspikese.convert.graph import Rebuild, as_functional, unique_name

_L = tf.keras.layers

#: rank of the sum's output (batch included) -> the per-channel layer that relays it
RELAY_LAYERS = {3: _L.DepthwiseConv1D, 4: _L.DepthwiseConv2D}


def sums(model):
    """The ``Add`` layers of ``model`` whose output is not a model output (those get relays)."""
    outputs = {id(t) for t in model.outputs}
    return [layer for layer in model.layers
            if isinstance(layer, _L.Add) and id(layer.output) not in outputs]


def check_non_negative(model, layers, calibration, tolerance=1e-6):
    """Raise ``ValueError`` naming the first sum in ``layers`` that is negative on ``calibration``.

    A relay's ReLU is the identity only on non-negative input: ``min(y) >= -tolerance · max|y|``.
    """
    if not layers:
        return
    probe = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    outs = probe.predict(np.asarray(calibration), verbose=0, batch_size=4)
    outs = outs if isinstance(outs, list) else [outs]
    for layer, out in zip(layers, outs):
        low, high = float(np.min(out)), float(np.max(np.abs(out)))
        if low < -tolerance * max(high, 1e-30):
            raise ValueError(
                f"convert: relays: the sum {layer.name!r} takes negative values on the "
                f"calibration data (min {low:.3g}); a relay's ReLU would change the function "
                "(relays need sums of ReLU outputs)"
            )


class _Relays(Rebuild):
    def __init__(self, model, layers):
        super().__init__(model)
        self.targets = set(layers)

    def on_node(self, node, layer, args, kwargs):
        out = self.clone(layer)(*args, **kwargs)
        if layer not in self.targets:
            return out
        relay = RELAY_LAYERS.get(len(out.shape))
        if relay is None:
            raise ValueError(
                f"convert: relays: the sum {layer.name!r} has output shape {tuple(out.shape)}; "
                "relays are defined for (batch, steps, channels) and (batch, h, w, channels)"
            )
        name = unique_name(f"{layer.name}_relay", self.used_names)
        return relay(1, activation="relu", depthwise_initializer="ones",
                     bias_initializer="zeros", name=name)(out)


def insert_relays(model, calibration):
    """A copy of ``model`` with a relay neuron after every sum (:func:`sums`).

    Parameters
    ----------
    model : tf.keras.Model
        A functional or Sequential model (not modified).
    calibration : array_like
        Input examples on which every sum must be non-negative (:func:`check_non_negative`).

    Returns
    -------
    tf.keras.Model
        The same function, with ``<sum>_relay`` layers (``DepthwiseConv1D`` or
        ``DepthwiseConv2D``, kernel size 1, ``w = 1``, ``β = 0``, ReLU) after the sums.
    """
    model = as_functional(model, "convert: relays")
    layers = sums(model)
    check_non_negative(model, layers, calibration)
    return _Relays(model, layers).run(model.name)
