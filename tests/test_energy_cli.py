"""``kspikese energy MODEL ... --audio DIR --json FILE`` on a tiny shipped-format model."""

import json

import numpy as np
import pytest
import tensorflow as tf

from kspikese import audio_io, cli, energy, hub, hybrid, shipped, training

FRAME = 256


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    training.set_seed(0)
    inp = tf.keras.Input((FRAME, 1))
    h = tf.keras.layers.Conv1D(4, 3, padding="same", activation="relu", name="c1")(inp)
    ann = tf.keras.Model(inp, tf.keras.layers.Conv1D(1, 3, padding="same", name="readout")(h),
                         name="tiny")
    snn = hybrid.convert(ann, seed=0, dt=1.0, activation_scale=20.0)
    shipped.export(ann, "tiny", weights_dir=folder, dtype="float32")
    shipped.export(snn, "snn-tiny", weights_dir=folder, dtype="float32")
    return folder


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(1)
    for i, n in enumerate((600, 300)):  # 3 + 2 frames of 256 (last ones zero-padded)
        audio_io.write_audio(folder / f"u{i}.wav", 0.3 * rng.standard_normal(n).astype("float32"))
    return folder


def test_energy_json_matches_estimate(cards, wavs, tmp_path):
    out = tmp_path / "e.json"
    card = cards / "snn-tiny.json"
    assert cli.main(["energy", str(card), str(cards / "tiny.json"), "--audio", str(wavs),
                     "--json", str(out)]) == 0
    got = json.loads(out.read_text())["models"]
    assert [m["name"] for m in got] == ["snn-tiny", "tiny"]
    snn, _ = hub.load(str(card))
    ann, _ = hub.load(str(cards / "tiny.json"))
    u0, u1 = audio_io.read_audio(wavs / "u0.wav"), audio_io.read_audio(wavs / "u1.wav")
    frames = np.concatenate([np.pad(u0, (0, 168)).reshape(3, FRAME),
                             np.pad(u1, (0, 212)).reshape(2, FRAME)])
    est = energy.estimate(snn, frames[..., None])
    ann_est = energy.estimate(ann)
    s = got[0]
    assert s["rates_from"]["frames"] == 5 and s["rates_from"]["files"] == 2
    assert s["params"] == est.params == snn.count_params()
    assert s["ann_macs"] == ann_est.dense_ops
    assert s["ann_macs_from"].startswith("the ANN twin of")
    assert s["synaptic_events"] == pytest.approx(est.synops, rel=1e-9)
    assert s["mean_spikes_per_neuron"] == pytest.approx(est.mean_firing, rel=1e-9)
    assert s["j_per_inference"] == pytest.approx(est.totals, rel=1e-9)
    assert set(s["j_per_inference"]) == set(energy.SNN_DEVICES)
    assert s["ann_j_cpu"] == pytest.approx(ann_est.totals["cpu"])
    a = got[1]
    assert a["spiking"] is False and a["synaptic_events"] is None
    assert a["j_per_inference"] == pytest.approx(ann_est.totals)


def test_energy_card_folder_with_one_card(cards, wavs, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    for suffix in (".json", ".h5"):
        (one / f"snn-tiny{suffix}").write_bytes((cards / f"snn-tiny{suffix}").read_bytes())
    out = tmp_path / "e.json"
    assert cli.main(["energy", str(one), "--audio", str(wavs), "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["models"][0]
    assert entry["name"] == "snn-tiny"
    assert entry["ann_macs_from"] == "the model's own graph (no ANN twin found)"


@pytest.mark.parametrize("case, message", [
    ("missing", "--audio {missing}: no such folder"),
    ("empty", "--audio {empty}: holds no WAV files"),
    ("model", "MODEL no-such-model: unknown model 'no-such-model'"),
    ("json", "--json {missing}/e.json: its folder {missing} does not exist"),
])
def test_energy_bad_arguments(cards, wavs, tmp_path, capsys, case, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    out = tmp_path / "e.json"
    audio = {"missing": missing, "empty": empty}.get(case, wavs)
    model = "no-such-model" if case == "model" else str(cards / "snn-tiny.json")
    target = missing / "e.json" if case == "json" else out
    assert cli.main(["energy", model, "--audio", str(audio), "--json", str(target)]) == 2
    assert message.format(missing=missing, empty=empty) in capsys.readouterr().err
    assert not out.exists() and not missing.exists()


def test_energy_audio_without_model(capsys, tmp_path):
    assert cli.main(["energy", "--audio", str(tmp_path), "--json", str(tmp_path / "x.json")]) == 2
    assert "--audio and --json go with MODEL arguments" in capsys.readouterr().err
