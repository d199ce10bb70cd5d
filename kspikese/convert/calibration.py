"""Data-based per-layer normalisation (Diehl et al. 2015; Rueckauer et al. 2017): one scale
factor per layer from the activations on calibration data.

With window ω, a neuron at rate ``a`` emits about ``a·ω`` spikes per step.  Scaling layer ``l``'s
output by ``c_l = target_spikes / (ω · λ_l)``, with ``λ_l`` the ``percentile``-th percentile of
its activations' magnitudes, makes a neuron at ``λ_l`` emit ``target_spikes`` spikes: large enough
to resolve the activation, robust to outliers (the maximum, Diehl's choice, is set by a few
samples; Rueckauer's 99.9th percentile is the default here).

The linear readout (the layer named ``readout``) is normalised too, on the percentile of
``|output|``, to ``readout_spikes`` spikes: its output is the model's output, quantised in steps of
``1 / (ω · c_readout)``, and its spikes drive no synapse, so a fine readout costs almost no
energy.
"""

import numpy as np
import tensorflow as tf

from kspikese.convert.neuron_rules import neuron_layers


def spike_factor(values, spikes, dt, percentile):
    """``spikes / (ω · λ)`` with ``λ`` the ``percentile``-th percentile of the nonzero
    ``|values|`` (``λ = 1`` if all are zero).

    Parameters
    ----------
    values : numpy.ndarray
        A layer's activations on the calibration data.
    spikes : float
        Spikes per step wanted at ``λ``.
    dt : float
        ω.
    percentile : float
        In (0, 100].

    Returns
    -------
    float
        The layer's scale factor.
    """
    magnitude = np.abs(np.asarray(values))
    nonzero = magnitude[magnitude > 0]
    lam = float(np.percentile(nonzero, percentile)) if nonzero.size else 1.0
    return float(spikes) / (float(dt) * max(lam, 1e-12))


def layer_scales(ann, calibration, cfg):
    """Per-layer scale factors for :func:`kspikese.convert.scale_activations`.

    Parameters
    ----------
    ann : tf.keras.Model
        The ANN.
    calibration : array_like
        Input examples (e.g. noisy frames ``(n, L, 1)``).
    cfg : dict
        ``dt`` (ω), ``percentile`` (default 99.9), ``target_spikes`` (default 30) and
        ``readout_spikes`` (default ``target_spikes``), ``readout`` (the readout layer's name,
        default ``"readout"``); ``allocation``: ``"uniform"`` (default: every hidden layer at
        ``target_spikes``), ``"events"`` or ``"measured"`` (per-layer targets at the same
        expected synaptic events, :mod:`kspikese.convert.allocation`, within
        ``allocation_bounds``).

    Returns
    -------
    dict
        ``{layer name: c_l}`` for every layer that becomes a neuron
        (:func:`kspikese.convert.neuron_layers`) and the linear readout layer.
    """
    percentile = float(cfg.get("percentile", 99.9))
    target = float(cfg.get("target_spikes", 30.0))
    dt = float(cfg["dt"])
    names = neuron_layers(ann)
    layer_names = {layer.name for layer in ann.layers}
    name = cfg.get("readout", "readout")
    readout = name if name in layer_names and name not in names else None
    probed = names + ([readout] if readout else [])
    if not probed:
        return {}
    probe = tf.keras.Model(ann.inputs, [ann.get_layer(n).output for n in probed])
    outs = probe.predict(np.asarray(calibration), verbose=0, batch_size=4)
    if len(probed) == 1:
        outs = [outs]
    scales = {name: spike_factor(out, target, dt, percentile) for name, out in zip(names, outs)}
    if cfg.get("allocation", "uniform") != "uniform":
        from kspikese.convert.allocation import allocated_factors

        scales = allocated_factors(ann, names, outs, scales, cfg, calibration)
    if readout:
        spikes = float(cfg.get("readout_spikes") or target)
        scales[readout] = spike_factor(outs[-1], spikes, dt, percentile)
    return scales
