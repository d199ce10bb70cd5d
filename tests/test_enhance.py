"""Overlap-add engine (kspikese.dsp), array API (kspikese.enhancement), models by name
(kspikese.hub), shipped weights (kspikese.shipped), publishing (kspikese.publish), info."""

import json

import numpy as np
import pytest

import kspikese  # first: it selects Keras 2 for TensorFlow
import tensorflow as tf
from kspikese import dsp as D
from kspikese import enhancement as E
from kspikese import files, hub, publish
from kspikese import shipped as W
from kspikese.data.framing import FRAME_LEN
from kspikese.metrics.snr import si_snr
from enhance_models import gain_bias_model, identity_model

# ------------------------------------------------------------------------------- tiny models


def lowpass_model(taps=5, frame=None):
    x = tf.keras.Input((frame, 1))
    y = tf.keras.layers.Conv1D(
        1, taps, padding="same", use_bias=False,
        kernel_initializer=tf.keras.initializers.Constant(1 / taps),
    )(x)  # fmt: skip
    return tf.keras.Model(x, y)


def spiking_model(frame=1024, dt=0.01, big_bias=False):
    import keras_spiking

    x = tf.keras.Input((frame, 1))
    h = tf.keras.layers.Conv1D(
        4, 9, padding="same", kernel_initializer=tf.keras.initializers.GlorotUniform(0),
        bias_initializer=tf.keras.initializers.Constant(1e5 if big_bias else 0.0),
    )(x)  # fmt: skip
    h = tf.keras.layers.Reshape((1, frame, 4))(h)
    h = keras_spiking.SpikingActivation("relu", dt=dt, seed=0)(h)
    h = tf.keras.layers.Reshape((frame, 4))(h)
    y = tf.keras.layers.Conv1D(
        1, 9, padding="same", kernel_initializer=tf.keras.initializers.GlorotUniform(1)
    )(h)
    return tf.keras.Model(x, y)


def noise(shape, seed=0, scale=0.3):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def run_engine(fn, x, block=7777, **kw):
    eng = D.OverlapAdd(fn, x.shape[1], **kw)
    parts = [eng.push(x[i : i + block]) for i in range(0, len(x), block)]
    parts.append(eng.finish())
    return np.concatenate(parts), eng


# ------------------------------------------------------------------------------- the engine


def test_window_values_and_partition_of_unity():
    w = D.synthesis_window(16, overlap=0.5)
    assert w[0] == 0 and np.isclose(w[4], 0.5) and np.isclose(w[8], 1.0) and np.isclose(w[12], 0.5)
    full = D.synthesis_window(FRAME_LEN, overlap=0.5)
    assert np.allclose(full[: FRAME_LEN // 2] + full[FRAME_LEN // 2 :], 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "n, frames", [(1, 2), (8192, 2), (8193, 3), (16384, 3), (16385, 4), (0, 0)]
)
def test_num_frames(n, frames):
    assert D.num_frames(n, overlap=0.5) == frames


@pytest.mark.parametrize("n, overlap, frames", [(20480, 0.25, 2), (20481, 0.25, 3), (1, 0.25, 1)])
def test_num_frames_with_less_overlap(n, overlap, frames):
    assert D.num_frames(n, overlap=overlap) == frames


def test_window_with_quarter_overlap_sums_to_one():
    w = D.synthesis_window(16, overlap=0.25)  # O = 4, hop = 12
    assert np.allclose(
        w, [0, 0.146447, 0.5, 0.853553] + [1] * 8 + [1, 0.853553, 0.5, 0.146447], atol=1e-6
    )
    assert np.allclose(w[12:] + w[:4], 1)
    with pytest.raises(ValueError, match="overlap must be in"):
        D.synthesis_window(16, overlap=0.75)


@pytest.mark.parametrize("overlap", [0.5, 0.25, 0.1])
@pytest.mark.parametrize("n", [1, 100, 8191, 8192, 8193, 16384, 16385, 40000, 100003])
def test_identity_model_returns_input_everywhere(n, overlap):
    x = noise((n, 2), seed=n)
    y, eng = run_engine(lambda rows: rows, x, batch_size=3, overlap=overlap)
    assert y.shape == x.shape
    assert np.array_equal(y, x)  # bit-exact, including every frame edge
    assert eng.n_frames == D.num_frames(n, overlap=overlap)


def test_overlap_add_matches_windowed_sum_written_out():
    """The streaming engine against overlap-add spelled out with the window, for a model whose
    output differs per frame (so the weights matter)."""
    L, o = 64, 16
    x = noise((300, 1))
    count = []

    def fn(rows):
        count.append(1)
        return rows * (1 + len(count))  # frame k scaled by k + 2 (batch_size=1)

    y, eng = run_engine(fn, x, batch_size=1, frame_len=L, overlap=o / L)
    hop, w = L - o, D.synthesis_window(L, o / L)
    padded = np.concatenate([np.zeros(o), x[:, 0], np.zeros(L)])
    ref = np.zeros(len(padded))
    for k in range(eng.n_frames):
        s = k * hop
        ref[s : s + L] += w * (k + 2) * padded[s : s + L]
    assert eng.n_frames == D.num_frames(300, L, o / L) == 7  # ceil((300 + 16) / 48)
    assert np.allclose(y[:, 0], ref[o : o + 300], atol=1e-6)


def test_output_does_not_depend_on_block_size():
    x = noise((60000, 1))
    fn = (
        lambda rows: np.tanh(3 * rows) + rows[:, ::-1] * 0.1
    )  # noqa: E731  (non-linear, frame-aware)
    a, _ = run_engine(fn, x, block=1)
    b, _ = run_engine(fn, x, block=60000)
    c, _ = run_engine(fn, x, block=12345)
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_frame_dependent_offset_is_crossfaded_not_clicked():
    x = noise((100000, 1), scale=0.01)
    calls = []

    def offset(rows):  # frame k gets +0.1 k: a worst case for seams
        out = rows.copy()
        for i in range(len(rows)):
            out[i] += 0.1 * len(calls)
            calls.append(1)
        return out

    for overlap in (0.5, 0.25):
        calls.clear()
        y, _ = run_engine(offset, x, batch_size=1, overlap=overlap)
        d = y[:, 0] - x[:, 0]
        step = np.abs(np.diff(d)).max()
        o = FRAME_LEN * overlap  # |c_k+1 - c_k| max|r'| = 0.1 pi / (2 O): 1.9e-5 at O = L/2
        assert step <= 0.1 * np.pi / (2 * o) + 1e-6
        assert d.max() - d.min() > 0.5  # the offsets did reach the output
    # without the window (plain frame concatenation) the same model would jump by 0.1 at seams


def test_silent_frames_give_zeros_even_if_the_model_has_a_bias():
    x = np.zeros((40000, 3), np.float32)
    x[30000:, 2] = 0.5  # one channel wakes up at the end
    y, _ = run_engine(lambda rows: 0.5 * rows + 0.25, x)
    assert np.all(y[:, :2] == 0)
    assert np.all(y[:8192, 2] == 0)
    assert np.allclose(y[-1000:, 2], 0.5, atol=1e-6)


def test_model_with_wrong_output_shape_is_named():
    with pytest.raises(ValueError, match="must map"):
        run_engine(lambda rows: rows[:, ::2], noise((20000, 1)))


def test_stream_resampler_matches_one_shot():
    import soxr

    x = noise((44100, 2))
    r = D.StreamResampler(44100, 16000, 2)
    y = np.concatenate([r.push(x[i : i + 1000]) for i in range(0, len(x), 1000)] + [r.finish()])
    assert y.shape == (16000, 2)
    assert np.allclose(y, soxr.resample(x, 44100, 16000), atol=1e-6)


# ------------------------------------------------------------------------------- array API


def test_enhance_identity_at_16k_keeps_samples_and_shape():
    x = noise((50000, 2))
    y = kspikese.enhance(x, 16000, model=identity_model())
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).max() < 1e-6


@pytest.mark.parametrize("sr", [8000, 44100, 48000])
def test_enhance_other_rates_round_trip(sr):
    t = np.arange(2 * sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = E.enhance(x, sr, model=identity_model())
    assert y.shape == x.shape
    assert np.abs(y - x)[200:-200].max() < 1e-3  # resampled to 16 kHz and back


def test_channels_are_enhanced_independently():
    model = lowpass_model()
    x = noise((20000, 6), scale=0.5)
    y = E.enhance(x, 44100, model=model, batch_size=6)
    assert y.shape == (20000, 6)
    for c in (0, 3, 5):
        alone = E.enhance(x[:, c], 44100, model=model, batch_size=6)
        assert np.allclose(alone, y[:, c], atol=1e-6)
    # the model did something (a 5-tap mean at 16 kHz removes most of white noise's power)
    assert np.std(y) < 0.7 * np.std(x)


def test_enhance_rejects_bad_arrays():
    with pytest.raises(ValueError, match="NaN or inf"):
        E.enhance(np.array([0.0, np.inf, 0.1]), 16000, model=identity_model())
    with pytest.raises(ValueError, match="non-empty"):
        E.enhance(np.zeros(0), 16000, model=identity_model())


def test_enhance_all_zero_gives_zeros_and_short_input_works():
    m = gain_bias_model()
    assert np.all(E.enhance(np.zeros(30000, np.float32), 16000, model=m) == 0)
    x = noise(500)
    y = E.enhance(x, 16000, model=m)
    assert y.shape == (500,) and np.allclose(y, 0.5 * x + 0.25, atol=1e-6)


# ------------------------------------------------------------------------------- models by name


def test_missing_shipped_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(hub.ModelError) as err:
        hub.load("snn-wave-u-net", weights_dir=tmp_path)
    msg = str(err.value)
    assert "not shipped" in msg and "make reproduce-table1" in msg
    assert "`kspikese ship table1`" in msg and str(tmp_path) in msg
    with pytest.raises(hub.ModelError, match="'conv-tasnet'.*reproduce-table3.*kspikese ship table3"):
        hub.load("snn-conv-tasnet", ann=True, weights_dir=tmp_path)


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(hub.ModelError, match="unknown model 'wavenet'.*snn-wave-u-net"):
        hub.load("wavenet")


def test_run_folder_and_checkpoint_resolution(tmp_path):
    run = tmp_path / "table1-seed0"
    run.mkdir()
    with pytest.raises(hub.ModelError, match="holds none of"):
        hub.resolve_checkpoint(run)
    for name in ("ann.keras", "converted.keras", "finetuned.keras"):
        (run / name).write_bytes(b"")
    assert hub.resolve_checkpoint(run).name == "finetuned.keras"
    assert hub.resolve_checkpoint(run, ann=True).name == "ann.keras"
    assert hub.resolve_checkpoint(run / "converted.keras", ann=True).name == "ann.keras"
    # the pipeline's own layout: ann/ann.keras, converted.keras, finetune/finetuned.keras
    real = tmp_path / "table1-default-seed0"
    for name in ("ann/ann.keras", "converted.keras", "finetune/finetuned.keras"):
        (real / name).parent.mkdir(parents=True, exist_ok=True)
        (real / name).write_bytes(b"")
    assert hub.resolve_checkpoint(real) == real / "finetune" / "finetuned.keras"
    assert hub.resolve_checkpoint(real, ann=True) == real / "ann" / "ann.keras"
    assert hub.resolve_checkpoint(real / "finetune" / "finetuned.keras", ann=True) == (
        real / "ann" / "ann.keras"
    )
    with pytest.raises(hub.ModelError, match="no such model"):
        hub.resolve_checkpoint(tmp_path / "nope.keras")


def test_keras_checkpoint_loads_in_safe_mode(tmp_path):
    path = tmp_path / "run" / "finetuned.keras"
    path.parent.mkdir()
    spiking_model().save(path)
    (path.parent / "run.json").write_text(json.dumps({"seed": 3}))
    model, card = hub.load(str(path.parent))
    assert card["run"] == {"seed": 3} and len(W.spiking_layer_info(model)) == 1
    # a Lambda layer (arbitrary Python) is refused
    x = tf.keras.Input((None, 1))
    lam = tf.keras.Model(x, tf.keras.layers.Lambda(lambda t: t * 2)(x))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(hub.ModelError, match="lambda.keras: cannot load"):
        hub.load(str(tmp_path / "lambda.keras"))


# ------------------------------------------------------------------------------- shipped weights


def test_export_and_load_round_trip(tmp_path):
    model = spiking_model()
    card = W.export(model, "snn-tiny", {"data": "unit test", "seed": 0}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snn-tiny.h5", "snn-tiny.json"]
    assert card["weights_dtype"] == "float16" and card["spiking"] is True
    assert card["frame_len"] == 1024 and card["n_params"] == 4 * 9 + 4 + 4 * 9 + 1
    assert card["spiking_layers"][0]["dt"] == 0.01 and card["spiking_layers"][0]["seed"] == 0
    on_disk = json.loads((tmp_path / "snn-tiny.json").read_text())
    assert on_disk["data"] == "unit test" and on_disk["weights_sha256"] == files.sha256(
        tmp_path / "snn-tiny.h5"
    )
    import h5py

    with h5py.File(tmp_path / "snn-tiny.h5") as f:
        assert {f["w"][k].dtype for k in f["w"]} == {np.dtype("float16")}
    loaded, _ = W.load("snn-tiny", tmp_path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.allclose(a, b, rtol=1e-3, atol=1e-4)  # float16: 11 significant bits
    x = noise(5000)
    assert si_snr(E.enhance(x, 16000, model), E.enhance(x, 16000, loaded)) > 30


def test_values_beyond_float16_stay_float32(tmp_path):
    model = spiking_model(big_bias=True)  # biases of 1e5, above float16's 65504
    card = W.export(model, "big", None, tmp_path)
    assert card["weights_dtype"] == "float16+float32" and card["weights_float32_tensors"] == [1]
    loaded, _ = W.load("big", tmp_path)
    assert np.allclose(loaded.get_weights()[1], 1e5)


def test_damaged_or_mismatched_weights_are_refused(tmp_path):
    W.export(identity_model(), "a", None, tmp_path)
    W.export(gain_bias_model(), "b", None, tmp_path)
    (tmp_path / "b.h5").replace(tmp_path / "a.h5")
    with pytest.raises(W.WeightsError, match="does not match the card"):
        W.load("a", tmp_path)
    (tmp_path / "c.json").write_text("{not json")
    (tmp_path / "c.h5").write_bytes(b"")
    with pytest.raises(hub.ModelError, match="c.json: cannot read the model card"):
        hub.load(str(tmp_path / "c.json"))


def test_size_limit_refuses_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "MAX_BYTES", 100)
    with pytest.raises(W.WeightsError, match="more than the 0 MB allowed"):
        W.export(spiking_model(), "snn-wave-u-net", None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_card_with_python_code_is_refused(tmp_path):
    W.export(identity_model(), "x", None, tmp_path)
    card = json.loads((tmp_path / "x.json").read_text())
    x = tf.keras.Input((None, 1))
    lam = tf.keras.Model(x, tf.keras.layers.Lambda(lambda t: t * 2)(x))
    card["keras_config"] = W.model_config(lam)
    (tmp_path / "x.json").write_text(json.dumps(card))
    with pytest.raises(W.WeightsError, match="cannot rebuild"):
        W.load("x", tmp_path)


def test_export_shipped_from_run_folder_with_float16_check(tmp_path):
    run = tmp_path / "runs" / "table1-default-seed0"
    (run / "finetune").mkdir(parents=True)
    (run / "ann").mkdir()
    spiking_model().save(run / "finetune" / "finetuned.keras")
    identity_model().save(run / "ann" / "ann.keras")
    (run / "run.json").write_text(json.dumps({"table": "table1", "seed": 0}))
    out = tmp_path / "weights"
    clean = noise(6000, seed=1)
    pairs = [(clean + noise(6000, seed=2, scale=0.05), clean)]
    card = publish.export_shipped(run, "snn-wave-u-net", {"test_metrics": {"si_snr": 1.0}}, out, pairs)
    assert (
        card["source_checkpoint"].endswith("finetuned.keras") and card["run"]["table"] == "table1"
    )
    assert abs(card["float16_check"]["delta_db"]) < publish.FLOAT16_TOLERANCE_DB
    assert sorted(p.name for p in out.iterdir()) == ["snn-wave-u-net.h5", "snn-wave-u-net.json"]
    ann_card = publish.export_shipped(run, "wave-u-net", None, out)
    assert ann_card["source_checkpoint"].endswith("ann.keras") and ann_card["spiking"] is False
    # shipped names now resolve, and --ann picks the twin
    model, card = hub.load("snn-wave-u-net", weights_dir=out)
    assert card["name"] == "snn-wave-u-net" and W.spiking_layer_info(model)
    model, card = hub.load("snn-wave-u-net", ann=True, weights_dir=out)
    assert card["name"] == "wave-u-net" and not W.spiking_layer_info(model)


def test_float16_that_moves_si_snr_too_much_ships_float32(tmp_path, monkeypatch):
    path = tmp_path / "ann.keras"
    lowpass_model(frame=1024).save(path)
    monkeypatch.setattr(publish, "FLOAT16_TOLERANCE_DB", 0.0)  # any change at all is too much
    clean = noise(3000, seed=1)
    pairs = [(clean + noise(3000, seed=2, scale=0.05), clean)]
    with pytest.warns(UserWarning, match="shipping float32 weights"):
        card = publish.export_shipped(path, "wave-u-net", None, tmp_path / "w", pairs)
    assert card["weights_dtype"] == "float32" and card["float16_check"]["passed"] is False
    loaded, _ = hub.load("wave-u-net", weights_dir=tmp_path / "w")
    assert np.array_equal(
        loaded.get_weights()[0], tf.keras.models.load_model(path).get_weights()[0]
    )


def test_export_command_with_test_folders(tmp_path, capsys):
    import soundfile as sf

    from kspikese.cli import main

    run = tmp_path / "run"
    run.mkdir()
    lowpass_model().save(run / "ann.keras")
    for i in range(2):
        clean = noise(8000, seed=i, scale=0.2)
        for kind, x in (("clean", clean), ("noisy", clean + noise(8000, seed=9 + i, scale=0.1))):
            (tmp_path / kind).mkdir(exist_ok=True)
            sf.write(tmp_path / kind / f"u{i}.wav", x, 16000, subtype="FLOAT")
    (tmp_path / "card.json").write_text(json.dumps({"data": "default corpus, vctk-like test"}))
    argv = ["ship", "--checkpoint", str(run), "--name", "conv-tasnet", "--weights-dir",
            str(tmp_path / "w"), "--card", str(tmp_path / "card.json"),
            "--check", str(tmp_path / "clean"), str(tmp_path / "noisy")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "exported conv-tasnet" in out and "float16 check on 2 test files" in out
    card = json.loads((tmp_path / "w" / "conv-tasnet.json").read_text())
    assert card["data"] == "default corpus, vctk-like test" and card["float16_check"]["passed"]
    assert main(["ship", "--checkpoint", str(run), "--name", "snn-conv-tasnet"]) == 2
    assert "holds none of ['finetune/finetuned.keras'" in capsys.readouterr().err


def test_info_prints_card_layers_and_spiking_layers(tmp_path, capsys):
    from kspikese.cli import main

    W.export(spiking_model(), "snn-wave-u-net", {"test_metrics": {"si_snr": 12.5}}, tmp_path)
    assert main(["info", "snn-wave-u-net", "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '"si_snr": 12.5' in out and "keras_config" not in out
    assert "77" in out and "spiking" in out
    assert "| spiking_activation" in out and "| 0.01 | 0 | True |" in out
    assert main(["info", "conv-tasnet", "--weights-dir", str(tmp_path)]) == 2
    assert "make reproduce-table3" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("arch, dt", [("wave_u_net", 0.001), ("conv_tasnet", 1.0)])
def test_full_size_models_ship_under_12_mb_and_reload(tmp_path, arch, dt):
    from kspikese import models, to_spiking
    from kspikese.convert import scale_activations

    snn = to_spiking(scale_activations(models.build_model(arch), 3e4), dt=dt, seed=0)
    models.save_model(snn, tmp_path / "run" / "finetune" / "finetuned.keras")
    name = "snn-" + arch.replace("_", "-")
    card = publish.export_shipped(tmp_path / "run", name, {"data": "none"}, tmp_path / "w")
    assert card["weights_bytes"] < W.MAX_BYTES and card["n_params"] > 2_500_000
    assert card["spiking"] and all(s["dt"] == dt for s in card["spiking_layers"])
    loaded, _ = hub.load(name, weights_dir=tmp_path / "w")
    x = noise(20000, scale=0.1)
    y = E.enhance(x, 16000, loaded)
    assert y.shape == x.shape and np.all(np.isfinite(y))
