"""How activations are scaled before conversion, so that one-timestep IF neurons spike.

An IF neuron with window ω (``dt``) emits ``floor(v + a·ω)`` spikes per step and outputs
``spikes / ω``: it resolves activations only in steps of ``1/ω``.  At ω = 0.001 an activation of
order 1 (audio in [-1, 1]) never reaches a spike.  For a ReLU network ``f`` with biases ``b``,

    f(c·x; c·b) = c · f(x; b)            for every c > 0,

because ReLU is positively homogeneous and every affine map scales with its bias.  So scaling the
input and every bias by ``c`` and dividing the output by ``c`` is a weight transfer that keeps the
ANN's function while making every hidden activation ``c`` times larger (more spikes, more
resolution, more energy).  Options (the ``input_scale`` of an experiment's ``convert:`` section):

- a number ``c``; ``"int16"`` is ``c = 32768`` (audio in int16 units); ``"none"`` is ``c = 1``.
- ``"data"``: per-layer data-based normalisation (Diehl et al. 2015; Rueckauer et al. 2017): each
  layer's output is scaled so that the ``percentile``-th percentile of its activation on
  calibration data equals ``target_spikes / ω`` — a layer-specific ``c``
  (:func:`kspikese.conversion.scale_activations` with per-layer factors).  The linear spiking
  readout (the layer named ``readout``) is normalised too, on the ``percentile``-th percentile of
  ``|output|``, to ``readout_spikes`` spikes (default ``target_spikes``): its output is the
  model's output, quantised in steps of ``1 / (ω · c_readout)`` audio units, so if it only
  inherited the scale of the layer feeding it, that step would be ``λ_prev / target_spikes``
  (about 0.018 on Table 1's Wave-U-Net, whose output's 99.9th percentile is 0.18: ten levels).
  Its spikes drive no synapse, so a fine readout costs almost no energy.
"""

import numpy as np

INT16 = 32768.0


def uniform_scale(value):
    """The uniform scale ``c`` an ``input_scale`` setting stands for (``None`` for ``"data"``)."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key == "int16":
            return INT16
        if key == "none":
            return 1.0
        if key == "data":
            return None
        try:
            value = float(key)
        except ValueError:
            raise ValueError(
                f"input_scale: expected a positive number, 'int16', 'none' or 'data', got {value!r}"
            ) from None
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"input_scale: expected a positive number, got {value!r}")
    return value


def apply(ann, cfg, calibration=None):
    """Return a copy of ``ann`` scaled as ``cfg["input_scale"]`` says (function unchanged)."""
    from kspikese.conversion import scale_activations

    c = uniform_scale(cfg.get("input_scale", "int16"))
    if c is not None:
        return scale_activations(ann, c)
    if calibration is None:
        raise ValueError("input_scale 'data' needs calibration frames (none were given)")
    return scale_activations(ann, layer_scales(ann, calibration, cfg))


def layer_scales(ann, calibration, cfg):
    """Per-layer scale factors from activation percentiles on ``calibration`` frames.

    For each layer ``l`` with a ReLU output, ``λ_l`` is the ``percentile``-th percentile of its
    positive activations; the factor is ``c_l = target_spikes / (ω · λ_l)`` so that a neuron at
    ``λ_l`` emits about ``target_spikes`` spikes in its one step.  The linear layer named
    ``readout`` (if any) gets ``c = readout_spikes / (ω · λ)`` with ``λ`` the percentile of its
    ``|output|`` (``readout_spikes`` defaults to ``target_spikes``).
    """
    import tensorflow as tf

    from kspikese.conversion import relu_layers

    percentile = float(cfg.get("percentile", 99.9))
    target = float(cfg.get("target_spikes", 30.0))
    dt = float(cfg["dt"])
    names = relu_layers(ann)
    layer_names = {layer.name for layer in ann.layers}
    readout = "readout" if "readout" in layer_names and "readout" not in names else None
    probed = names + ([readout] if readout else [])
    probe = tf.keras.Model(ann.inputs, [ann.get_layer(n).output for n in probed])
    outs = probe.predict(np.asarray(calibration), verbose=0, batch_size=4)
    if len(probed) == 1:
        outs = [outs]
    def factor(values, spikes):
        """``spikes / (ω · λ)``, ``λ`` the percentile of the positive ``values`` (1 if none)."""
        positive = values[values > 0]
        lam = float(np.percentile(positive, percentile)) if positive.size else 1.0
        return spikes / (dt * max(lam, 1e-12))

    scales = {name: factor(out, target) for name, out in zip(names, outs)}
    if readout:
        scales[readout] = factor(np.abs(outs[-1]), float(cfg.get("readout_spikes") or target))
    return scales
