"""Rate control: the deterministic initial voltage (v0), the stage-3 spike-count penalty and the
fine-tune's rate budget."""

import json

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


def _tiny_ann(seed=0):
    training.set_seed(seed)
    inp = tf.keras.Input((16,))
    h = tf.keras.layers.Dense(32, activation="relu", name="d1")(inp)
    h = tf.keras.layers.Dense(32, activation="relu", name="d2")(h)
    return tf.keras.Model(inp, tf.keras.layers.Dense(16, name="readout")(h))


def _tiny(seed=0, scale=10.0):
    ann = _tiny_ann(seed)
    x = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x)).batch(8)
    return hybrid.convert(ann, seed=0, dt=1.0, activation_scale=scale, v0=0.5), data


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


@pytest.mark.parametrize("weighting", ["neurons", "events"])
def test_finetune_penalty_logs_spike_counts_and_leaves_no_regulariser(tmp_path, weighting):
    snn, data = _tiny()
    history = hybrid.finetune(snn, data, data, tmp_path / "ft", lr=1e-2, epochs=1,
                              steps_per_epoch=2, patience=1, verbose=0, validation_steps=1,
                              spike_penalty={"weight": 3.0, "target": 0.0,
                                             "weighting": weighting})
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


@pytest.mark.parametrize("row, budget, rank", [
    ({"val_si_snr": 7.0, "cost": 0.5}, None, (1.0, 7.0)),
    ({"val_si_snr": 7.0, "cost": 0.5}, ("cost", 0.5), (1.0, 7.0)),   # at the budget: within
    ({"val_si_snr": 7.0, "cost": 0.6}, ("cost", 0.5), (0.0, -0.6)),  # over: ranked by cost
])
def test_epoch_rank_hand_values(row, budget, rank):
    assert training.epoch_rank(row, "val_si_snr", 1.0, budget) == rank


def test_epoch_within_budget_beats_a_better_one_over_it():
    over = training.epoch_rank({"m": 9.0, "c": 0.9}, "m", 1.0, ("c", 0.5))
    within = training.epoch_rank({"m": 1.0, "c": 0.4}, "m", 1.0, ("c", 0.5))
    cheaper_over = training.epoch_rank({"m": 0.0, "c": 0.7}, "m", 1.0, ("c", 0.5))
    assert within > cheaper_over > over


class _Cost(tf.keras.callbacks.Callback):
    """Logs a preset cost per epoch as ``val_cost``."""

    def __init__(self, costs):
        super().__init__()
        self.costs = costs

    def on_epoch_end(self, epoch, logs=None):
        logs["val_cost"] = self.costs[epoch]


def test_fit_resumable_keeps_the_first_epoch_within_the_budget(tmp_path):
    # lr 0: every epoch scores the same, so the rank alone decides. Costs 3, 2 fall towards the
    # budget (each a new best, no patience used), 0.9 is the first within it (kept), 0.5 ties
    # its score (not better) and patience 1 stops the run there.
    snn, data = _tiny()
    history = training.fit_resumable(snn, data, data, tmp_path, epochs=6, lr=0.0, patience=1,
                                     seed=0, label="budget", verbose=0, steps_per_epoch=1,
                                     callbacks=[_Cost([3.0, 2.0, 0.9, 0.5, 0.1, 0.1])],
                                     budget=("val_cost", 1.0))
    state = json.loads((tmp_path / "state.json").read_text())
    assert len(history) == 4 and state["best_epoch"] == 3 and state["best_rank"][0] == 1.0
    with pytest.raises(ValueError, match="budget 'val_kosten' is not among the epoch's logs"):
        training.fit_resumable(snn, data, data, tmp_path / "b", epochs=1, lr=0.0, patience=1,
                               seed=0, label="budget", verbose=0, steps_per_epoch=1,
                               budget=("val_kosten", 1.0))


def test_events_per_mac_is_the_energy_estimate_over_the_ann_twins_dense_ops():
    from kspikese import energy

    snn, data = _tiny()
    x = np.concatenate([b[0].numpy() for b in data.take(2)])
    ann = _tiny_ann()
    ratio = spike_penalty.events_per_mac(snn, data, steps=2, ann=ann)
    events = energy.estimate(snn, x, devices=["cpu-events"]).synops
    # the ANN's dense ops by hand: 16·32 + 32·32 + 32·16 connections + 32 + 32 ReLU neurons
    # (the linear readout has none)
    assert energy.estimate(ann, x, devices=["cpu"]).dense_ops == 2048 + 64
    assert ratio == pytest.approx(events / 2112, rel=1e-9)
    # without the ANN, the SNN's own graph: it also counts its 16 spiking readout neurons
    own = spike_penalty.events_per_mac(snn, x)
    assert own == pytest.approx(events / (2112 + 16), rel=1e-9)
    every = np.concatenate([b[0].numpy() for b in data])  # steps=None: every batch
    assert spike_penalty.events_per_mac(snn, data, ann=ann) == pytest.approx(
        energy.estimate(snn, every, devices=["cpu-events"]).synops / 2112, rel=1e-9)
    louder, _ = _tiny(scale=40.0)  # 4x the activation scale: about 4x the spikes
    assert spike_penalty.events_per_mac(louder, data, steps=2, ann=ann) > 2 * ratio


def test_finetune_with_a_rate_budget_logs_events_per_mac(tmp_path):
    snn, data = _tiny()
    history = hybrid.finetune(snn, data, data, tmp_path / "ft", lr=1e-3, epochs=1,
                              steps_per_epoch=2, patience=1, verbose=0, validation_steps=1,
                              max_events_per_mac=0.33, ann=_tiny_ann())
    assert np.isfinite(history[-1]["val_events_per_mac"])
    assert "val_events_per_mac" in (tmp_path / "ft" / "log.csv").read_text()


@pytest.mark.parametrize("bad", [0, -0.3, "a third", True, float("nan")])
def test_rate_budget_bad_values_named(bad):
    with pytest.raises(ValueError, match=r"finetune: max_events_per_mac must be a number > 0"):
        spike_penalty.budget_value(bad)


def test_rate_budget_checked_when_the_yaml_loads():
    from kspikese import config

    with pytest.raises(config.ConfigError, match=r"table1.*max_events_per_mac must be a number > 0"):
        config.load("table1", overrides={"finetune": {"max_events_per_mac": -1}})
    with pytest.raises(config.ConfigError, match=r"`ann: max_events_per_mac:`.*belongs to `finetune:`"):
        config.load("table1", overrides={"ann": {"max_events_per_mac": 0.3}})
    assert config.load("table1", overrides={"finetune": {"max_events_per_mac": 0.3}})[
        "finetune"]["max_events_per_mac"] == 0.3


# ------------------------------------------------------------- penalty weight adapted to a budget
def test_next_weight_hand_values():
    # over the budget the weight grows, under it it shrinks: 8 · (0.44 / 0.33)² = 8 · 16/9
    assert spike_penalty.next_weight(8.0, 0.44, 0.33, 2.0) == pytest.approx(128 / 9)
    assert spike_penalty.next_weight(8.0, 0.165, 0.33, 1.0) == pytest.approx(4.0)
    assert spike_penalty.next_weight(8.0, 0.5, 0.33, 0.0) == 8.0
    # at most a factor 4 per epoch either way: (3.8 / 0.2)^1.5 = 83 -> 4, (0.01 / 0.2)^1.5 -> 1/4
    assert spike_penalty.next_weight(2.0, 3.8, 0.2, 1.5) == pytest.approx(8.0)
    assert spike_penalty.next_weight(2.0, 0.01, 0.2, 1.5) == pytest.approx(0.5)


def test_adapted_weight_follows_the_budget_and_resumes(tmp_path):
    """Each epoch trains with the weight the last one left: w_{e+1} = w_e (R_e / B)^g, and a
    resumed fine-tune goes on from the logged weights as an uninterrupted one would."""
    section = {"weight": 2.0, "weighting": "events", "adapt_gain": 1.5}
    kwargs = dict(lr=1e-3, steps_per_epoch=2, patience=9, verbose=0, validation_steps=1,
                  spike_penalty=section, max_events_per_mac=0.2, ann=_tiny_ann())
    snn, data = _tiny()
    whole = hybrid.finetune(snn, data, data, tmp_path / "whole", epochs=3, **kwargs)
    assert whole[0]["penalty_weight"] == pytest.approx(2.0)
    for before, after in zip(whole, whole[1:]):
        assert after["penalty_weight"] == pytest.approx(spike_penalty.next_weight(
            before["penalty_weight"], before["val_events_per_mac"], 0.2, 1.5), rel=1e-5)
    assert whole[1]["penalty_weight"] > 2.0  # this SNN starts over the budget
    assert "penalty_weight" in (tmp_path / "whole" / "log.csv").read_text()
    assert all(layer.activity_regularizer is None for layer in snn.layers)
    snn, data = _tiny()
    hybrid.finetune(snn, data, data, tmp_path / "parts", epochs=2, **kwargs)
    snn, data = _tiny()
    parts = hybrid.finetune(snn, data, data, tmp_path / "parts", epochs=3, **kwargs)
    assert [r["penalty_weight"] for r in parts] == pytest.approx(
        [r["penalty_weight"] for r in whole], rel=1e-5)


def test_adapt_gain_needs_a_budget(tmp_path):
    from kspikese import config

    snn, data = _tiny()
    with pytest.raises(ValueError, match=r"adapt_gain needs a rate budget"):
        hybrid.finetune(snn, data, data, tmp_path / "ft", epochs=1, steps_per_epoch=1,
                        verbose=0, spike_penalty={"weight": 1.0, "adapt_gain": 1.0})
    assert not (tmp_path / "ft").exists()
    with pytest.raises(config.ConfigError, match=r"adapt_gain:` .*set `finetune: max_events_per_mac"):
        config.load("table1", overrides={"finetune": {"spike_penalty": {"adapt_gain": 1.0},
                                                       "max_events_per_mac": None}})
    with pytest.raises(ValueError, match=r"spike_penalty: adapt_gain must be a number >= 0"):
        spike_penalty.check({"weight": 1.0, "adapt_gain": -1})


# ---------------------------------------------------------------- events-weighted spike penalty
def test_events_per_spike_hand_computed_on_dense_layers():
    from kspikese.energy.fan_out import events_per_spike

    snn, _ = _tiny()
    names = [layer.name for layer in spike_penalty.hidden_layers(snn)]
    k = events_per_spike(snn)
    # one spike per neuron of d1 reaches d2's 32·32 synapses: 1,024 events; d2's reach the
    # readout's 32·16 = 512; the readout's own neuron drives nothing; the input feeds d1's 16·32
    assert [k[n] for n in names] == [1024.0, 512.0]
    assert k["readout_spike"] == 0.0 and list(k.values())[-1] == 512.0
    assert spike_penalty.layer_shares(snn, spike_penalty.hidden_layers(snn), "events") == \
        pytest.approx([2 / 3, 1 / 3])
    assert spike_penalty.layer_shares(snn, spike_penalty.hidden_layers(snn)) == [0.5, 0.5]


def test_events_per_spike_times_spike_counts_is_the_energy_estimate():
    # a small Wave-U-Net: strided and transposed convolutions, concatenated skips, an input skip
    from kspikese import energy
    from kspikese.energy.fan_out import events_per_spike
    from kspikese.energy.rates import measure_inputs

    training.set_seed(1)
    ann = models.build_wave_u_net(frame_len=256, depth=2, filters=4, input_skip=True)
    snn = hybrid.convert(ann, seed=0, dt=1.0, activation_scale=30.0, v0=0.5)
    x = np.random.default_rng(2).standard_normal((3, 256, 1)).astype("float32")
    k = events_per_spike(snn)
    spikes = measure_inputs(snn, [x]).spikes
    audio = snn.inputs[0]._keras_history.layer.name
    # the input reaches the convolutions through the conversion's scale c = 30 (a free Rescaling)
    scale = float(snn.get_layer("input_scale").scale)
    assert scale == 30.0
    total = sum(k[n] * spikes[n] for n in spikes) + k[audio] * scale * float(np.abs(x).mean())
    assert total == pytest.approx(energy.estimate(snn, x, devices=["cpu-events"]).synops,
                                  rel=1e-6)


def test_events_weighted_penalty_is_w_times_hidden_events_over_their_sum():
    # τ = 0: P = w Σ_l (k_l / Σk) m_l, the hidden layers' events over Σk, w = 2
    from kspikese.energy.fan_out import events_per_spike

    snn, data = _tiny()
    x = next(iter(data))[0]
    layers = spike_penalty.hidden_layers(snn)
    probe = tf.keras.Model(snn.inputs, [layer.output for layer in layers])
    counts = [float(tf.reduce_mean(tf.abs(y))) * layer.dt for y, layer in zip(probe(x), layers)]
    k = events_per_spike(snn)
    expected = 2.0 * sum(k[layer.name] * m for layer, m in zip(layers, counts)) / (1024 + 512)
    with spike_penalty.penalised(snn, 2.0, 0.0, weighting="events"):
        rebuilt = tf.keras.Model(snn.inputs, snn.outputs)  # regularisers apply on a new call
        rebuilt(x)
        value = float(tf.add_n(rebuilt.losses))
    assert value == pytest.approx(expected, rel=1e-5)


def test_penalty_weighting_checked():
    assert spike_penalty.check({"weight": 1})["weighting"] == "neurons"
    assert spike_penalty.check({"weight": 1, "weighting": "events"})["weighting"] == "events"
    with pytest.raises(ValueError, match=r"spike_penalty: weighting must be one of \['neurons', "
                                         r"'events'\], got 'synapses'"):
        spike_penalty.check({"weight": 1, "weighting": "synapses"})


def test_events_weighting_on_a_model_of_open_length():
    # k needs fixed sizes (a clear error); the penalty's shares fix the length themselves, and
    # for 'same' convolutions the shares do not depend on it
    from kspikese.energy.fan_out import events_per_spike

    def snn(length):
        training.set_seed(0)
        inp = tf.keras.Input((length, 1))
        h = tf.keras.layers.Conv1D(4, 3, padding="same", activation="relu", name="c1")(inp)
        h = tf.keras.layers.Conv1D(6, 5, padding="same", activation="relu", name="c2")(h)
        out = tf.keras.layers.Conv1D(1, 3, padding="same", name="readout")(h)
        return to_spiking(tf.keras.Model(inp, out), 1.0, v0=0.5)

    open_length, fixed = snn(None), snn(256)
    with pytest.raises(ValueError, match="cannot count layer 'c1' .* has undefined sizes"):
        events_per_spike(open_length)
    shares = spike_penalty.layer_shares(open_length, spike_penalty.hidden_layers(open_length),
                                        "events")
    # c1's spikes reach c2's 5·4·6 = 120 synapses per position, c2's the readout's 3·6·1 = 18
    assert shares == pytest.approx([120 / 138, 18 / 138])
    assert shares == pytest.approx(spike_penalty.layer_shares(
        fixed, spike_penalty.hidden_layers(fixed), "events"))
