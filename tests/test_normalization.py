"""Per-layer data-based normalisation (kspikese.convert.layer_scales), readout included; the
``convert:`` settings parser and the one-call stage 2."""

import numpy as np
import pytest

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese import convert, to_spiking
from kspikese.convert import scale_activations

L = tf.keras.layers


@pytest.fixture(scope="module")
def tiny():
    tf.keras.utils.set_random_seed(0)
    x = tf.keras.Input((8,))
    h = L.Dense(6, activation="relu", name="h")(x)
    y = L.Dense(2, name="readout")(h)
    return tf.keras.Model(x, y)


@pytest.fixture(scope="module")
def calibration():
    return np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)


def _by_hand(model, cal, percentile):
    w, b = model.get_layer("h").get_weights()
    h = np.maximum(cal @ w + b, 0)
    wo, bo = model.get_layer("readout").get_weights()
    y = np.abs(h @ wo + bo)
    return np.percentile(h[h > 0], percentile), np.percentile(y[y > 0], percentile)


def test_hidden_and_readout_scales_match_hand_computed_percentiles(tiny, calibration):
    cfg = {"dt": 0.01, "target_spikes": 10, "percentile": 90, "readout_spikes": 100}
    scales = convert.layer_scales(tiny, calibration, cfg)
    lam_h, lam_y = _by_hand(tiny, calibration, 90)
    assert set(scales) == {"h", "readout"}
    assert scales["h"] == pytest.approx(10 / (0.01 * lam_h), rel=1e-5)
    assert scales["readout"] == pytest.approx(100 / (0.01 * lam_y), rel=1e-5)
    # without readout_spikes the readout gets target_spikes, like every other layer
    plain = convert.layer_scales(tiny, calibration, {**cfg, "readout_spikes": None})
    assert plain["readout"] == pytest.approx(10 / (0.01 * lam_y), rel=1e-5)


def test_scaled_ann_keeps_its_function_and_snn_readout_resolves_1_over_omega_c(tiny, calibration):
    cfg = {"dt": 0.01, "target_spikes": 10, "percentile": 99.9, "readout_spikes": 50}
    scales = convert.layer_scales(tiny, calibration, cfg)
    scaled = scale_activations(tiny, scales)
    np.testing.assert_allclose(scaled.predict(calibration, verbose=0),
                               tiny.predict(calibration, verbose=0), rtol=1e-4, atol=1e-5)
    snn = to_spiking(scaled, dt=cfg["dt"], seed=0)
    out = snn.predict(calibration[:32], verbose=0).reshape(32, 2)
    steps = out * cfg["dt"] * scales["readout"]  # the readout emits whole spikes
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() > 5  # resolves the output in many levels, not one or two
