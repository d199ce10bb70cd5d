"""Rate control: the deterministic initial voltage (v0) and the stage-3 spike-count penalty."""

import numpy as np
import pytest
import tensorflow as tf

from kspikese import hybrid, models, spike_penalty, training
from kspikese.convert import settings, to_spiking


def relu_model(width=5):
    inp = tf.keras.Input((width,))
    return tf.keras.Model(inp, tf.keras.layers.ReLU()(inp))


X = np.array([[0.0, 0.4, 0.6, 1.49, 2.51], [-1.0, 3.2, 0.5, 7.7, 0.01]], np.float32)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_v0_half_rounds(dt):
    snn = to_spiking(relu_model(), dt, v0=0.5)
    expected = np.floor(0.5 + dt * np.maximum(X, 0)) / dt
    np.testing.assert_array_equal(snn.predict(X, verbose=0), expected)


def test_v0_half_two_steps_hand_computed():
    # a·dt = 0.3: step 1 v = 0.8 -> 0 spikes; step 2 v = 1.1 -> 1 spike; mean over T=2: 0.5 / dt
    # a·dt = 0.6: v = 1.1 -> 1 (v 0.1); v = 0.7 -> 0: mean 0.5 / dt
    # a·dt = 1.6: v = 2.1 -> 2 (v 0.1); v = 1.7 -> 1: mean 1.5 / dt
    snn = to_spiking(relu_model(3), 1.0, v0=0.5, timesteps=2)
    out = snn.predict(np.array([[0.3, 0.6, 1.6]], np.float32), verbose=0)
    np.testing.assert_allclose(out, [[0.5, 0.5, 1.5]], atol=1e-6)


def test_v0_random_differs_and_survives_save(tmp_path):
    x = np.tile(np.linspace(0, 3, 50, dtype=np.float32), (1, 1))
    random = to_spiking(relu_model(50), 1.0, seed=3).predict(x, verbose=0)
    half = to_spiking(relu_model(50), 1.0, v0=0.5)
    assert not np.array_equal(random, half.predict(x, verbose=0))
    models.save_model(half, tmp_path / "half.keras")
    again = models.load_model(tmp_path / "half.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), np.floor(0.5 + x))


@pytest.mark.parametrize("bad", [1.0, -0.1, "half", True])
def test_v0_bad_values_named(bad):
    with pytest.raises(ValueError, match=r"convert: v0: expected 'random' or a number in \[0, 1\)"):
        settings.check({"dt": 0.001, "v0": bad})


def test_settings_v0_default_and_number():
    assert settings.check({"dt": 1})["v0"] == "random"
    assert settings.check({"dt": 1, "v0": "0.5"})["v0"] == 0.5


def _tiny(seed=0):
    training.set_seed(seed)
    inp = tf.keras.Input((16,))
    h = tf.keras.layers.Dense(32, activation="relu", name="d1")(inp)
    h = tf.keras.layers.Dense(32, activation="relu", name="d2")(h)
    ann = tf.keras.Model(inp, tf.keras.layers.Dense(16, name="readout")(h))
    x = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x)).batch(8)
    return hybrid.convert(ann, seed=0, dt=1.0, activation_scale=10.0, v0=0.5), data


def _penalised_spikes(weight):
    snn, data = _tiny()
    with spike_penalty.penalised(snn, weight, 0.0):
        training.compile_model(snn, 1e-2)
        snn.fit(data, epochs=1, steps_per_epoch=4, verbose=0)
    return spike_penalty.mean_spikes(snn, data, 8)


def test_penalty_reduces_spike_count():
    plain = _penalised_spikes(0.0)
    penalised = _penalised_spikes(3.0)
    # measured: 2.31 hidden spikes per neuron per step without the penalty, 1.76 with w = 3
    assert penalised["hidden_spikes_per_neuron"] < 0.85 * plain["hidden_spikes_per_neuron"]


def test_finetune_penalty_logs_spike_counts_and_leaves_no_regulariser(tmp_path):
    snn, data = _tiny()
    history = hybrid.finetune(snn, data, data, tmp_path / "ft", lr=1e-2, epochs=1,
                              steps_per_epoch=2, patience=1, verbose=0, validation_steps=1,
                              spike_penalty={"weight": 3.0, "target": 0.0})
    assert np.isfinite(history[-1]["val_spikes_per_neuron"])
    assert np.isfinite(history[-1]["val_hidden_spikes_per_neuron"])
    assert "val_hidden_spikes_per_neuron" in (tmp_path / "ft" / "log.csv").read_text()
    assert all(layer.activity_regularizer is None for layer in snn.layers)


def test_penalty_value_hand_computed():
    # counts |y|·dt per example: [0.5, 1.5] mean 1.0 and [0, 0] mean 0; target 0.25:
    # Σ_b relu(m_b - τ) = 0.75 + 0; times w·share = 2 · 0.5
    y = tf.constant([[[1.0, 3.0]], [[0.0, 0.0]]])
    assert float(spike_penalty.SpikeCountPenalty(2.0, 0.25, 0.5, share=0.5)(y)) == pytest.approx(0.75)


def test_mean_spikes_hand_computed():
    snn = to_spiking(relu_model(4), 1.0, v0=0.5)
    # floor(0.5 + x): 0, 1, 2, 3 -> mean 1.5 spikes per neuron per step
    counts = spike_penalty.mean_spikes(snn, np.array([[0.0, 1.0, 2.0, 3.0]], np.float32))
    assert counts["spikes_per_neuron"] == pytest.approx(1.5)


@pytest.mark.parametrize("section, message", [
    ({"target": 1}, "spike_penalty: missing key 'weight'"),
    ({"weight": -1}, "spike_penalty: weight must be a number >= 0, got -1"),
    ({"weight": 1, "target": "x"}, "spike_penalty: target must be a number >= 0, got 'x'"),
    ({"weight": 1, "wieght": 2}, r"spike_penalty: unknown keys \['wieght'\]"),
])
def test_penalty_bad_sections(section, message):
    with pytest.raises(ValueError, match=message):
        spike_penalty.check(section)


def test_v0_half_on_unknown_length_and_through_convert():
    from kspikese.convert import convert

    inp = tf.keras.Input((None, 2))
    model = tf.keras.Model(inp, tf.keras.layers.ReLU()(inp))
    x = np.array([[[0.4, 0.6], [1.5, 2.49], [3.7, -1.0]]], np.float32)
    expected = np.floor(0.5 + np.maximum(x, 0))
    np.testing.assert_array_equal(to_spiking(model, 1.0, v0=0.5).predict(x, verbose=0), expected)
    snn = convert(model, {"dt": 1.0, "activation_scale": "none", "v0": 0.5}, seed=0)
    np.testing.assert_array_equal(snn.predict(x, verbose=0), expected)
