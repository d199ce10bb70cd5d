"""Losses, config handling and the resumable training loop (SIGKILL mid-epoch included)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese import config as configs
from kspikese import losses, training


def test_snr_loss_hand_values():
    s = np.zeros((1, 8, 1), np.float32)
    s[0, 0, 0] = 1.0
    # estimate = 0.5 s: error energy 0.25 -> SNR = 10 log10(1 / 0.25) = 6.0206 dB
    assert float(losses.snr_loss(s, 0.5 * s)[0]) == pytest.approx(-6.0206, abs=1e-3)
    # estimate = s + e with ||e||² = 0.01: SNR = 20 dB
    e = np.zeros_like(s)
    e[0, 3, 0] = 0.1
    assert float(losses.snr(s, s + e)[0]) == pytest.approx(20.0, abs=1e-3)


def test_thresholded_snr_loss_hand_values():
    loss = losses.thresholded_snr_loss(snr_max_db=30.0, floor_rms=0.1)  # δ = 8 · 0.01 = 0.08
    s = np.zeros((1, 8, 1), np.float32)
    s[0, 0, 0] = 1.0
    # estimate 0.5 s: 10 log10((0.25 + 1e-3 + 0.08) / (1 + 0.08)) = -5.1360 dB
    assert float(loss(s, 0.5 * s)[0]) == pytest.approx(-5.1360, abs=1e-3)
    # a perfect estimate earns at most snr_max (here the floor caps it first: -10 log10(1.08/0.081))
    assert float(loss(s, s)[0]) == pytest.approx(-11.249, abs=1e-3)
    # a silent target: 10 log10(1 + ||ŝ||² / δ), bounded, not the plain loss's ~+70 dB
    silent, out = np.zeros_like(s), np.full_like(s, 0.01)  # ||ŝ||² = 8e-4
    assert float(loss(silent, out)[0]) == pytest.approx(10 * np.log10(1 + 8e-4 / 0.08), abs=1e-4)
    assert float(losses.snr_loss(silent, out)[0]) > 40
    # the YAML forms
    assert losses.get(None) is losses.snr_loss and losses.get("snr") is losses.snr_loss
    tuned = losses.get({"name": "thresholded_snr", "snr_max_db": 30.0, "floor_rms": 0.1})
    assert float(tuned(s, 0.5 * s)[0]) == pytest.approx(-5.1360, abs=1e-3)
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        losses.get("l1")
    # a YAML value reaches Keras through compile_model, the one place losses are resolved
    model = tf.keras.Sequential([tf.keras.Input((8, 1)), tf.keras.layers.Conv1D(1, 1)])
    training.compile_model(model, 1e-3, loss="thresholded_snr")
    assert model.loss.__name__ == "thresholded_snr_loss"


def _numpy_stft_mag(x, n_fft, hop, win):
    """|STFT| by hand: periodic Hann frames every ``hop`` samples, zero-padded at the end."""
    frames = -(-len(x) // hop)
    x = np.concatenate([x, np.zeros((frames - 1) * hop + win - len(x))])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    return np.abs(np.stack([np.fft.rfft(x[i * hop:i * hop + win] * window, n_fft)
                            for i in range(frames)]))


def test_snr_stft_loss_hand_values():
    rng = np.random.default_rng(0)
    s = (0.1 * rng.standard_normal((2, 256, 1))).astype(np.float32)
    res = [[64, 16, 48], [128, 32, 128]]
    loss = losses.get({"name": "snr_stft", "weight": 3.0, "resolutions": res})
    # ŝ = g s: SNR loss -20 log10(1 / |1 - g|), SC = |1 - g|, MAG = |ln g| at every resolution
    for g in (2.0, 0.5):
        expect = 20 * np.log10(abs(1 - g)) + 3.0 * (abs(1 - g) + abs(np.log(g)))
        np.testing.assert_allclose(loss(s, g * s).numpy(), expect, atol=2e-3)
    np.testing.assert_allclose(losses.stft_distance(s, s, res).numpy(), 0.0, atol=1e-6)
    # any estimate: the spectral distance against STFT magnitudes computed by hand
    est = s + (0.05 * rng.standard_normal(s.shape)).astype(np.float32)
    est[1] *= 0.0  # a silent estimate for the second example
    want = np.zeros(2)
    for n_fft, hop, win in res:
        ref, out = (np.stack([_numpy_stft_mag(x[b, :, 0].astype(np.float64), n_fft, hop, win)
                              for b in range(2)]) for x in (s, est))
        sc = np.linalg.norm(ref - out) / np.linalg.norm(ref)  # over the batch
        mag = np.mean(np.abs(np.log(ref + 1e-5) - np.log(out + 1e-5)), axis=(1, 2))
        want += (sc + mag) / len(res)
    np.testing.assert_allclose(losses.stft_distance(s, est, res).numpy(), want, rtol=1e-3)
    # a silent clean frame beside a loud one: finite, the loud frame's spectrum sets the scale
    quiet = np.concatenate([s[:1], 0 * s[1:]])
    assert np.all(np.isfinite(losses.stft_distance(quiet, quiet + 0.01, res).numpy()))
    assert float(losses.stft_distance(quiet, quiet + 0.01, res)[1]) < 20
    # bad settings name the loss and what was expected
    with pytest.raises(ValueError, match=r"snr_stft resolution .*window <= n_fft"):
        losses.get({"name": "snr_stft", "resolutions": [[64, 16, 128]]})
    with pytest.raises(ValueError, match=r"'snr_stft' settings \['wieght'\]"):
        losses.get({"name": "snr_stft", "wieght": 1.0})
    with pytest.raises(ValueError, match="weight must be >= 0"):
        losses.get({"name": "snr_stft", "weight": -1})


def _voiced(n, fs=16000):
    """A harmonic, syllable-modulated tone with no pauses (pystoi then removes no frame)."""
    t = np.arange(n) / fs
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.7 * t)) / fs
    voice = sum(np.sin(k * phase) / k for k in range(1, 30))
    return (0.1 * voice * (0.3 + np.abs(np.sin(2 * np.pi * 3 * t)))).astype(np.float32)


def test_stoi_estimate_agrees_with_pystoi():
    from pystoi import stoi
    from pystoi.utils import thirdoct

    # the band matrix is STOI's at its own 10 kHz / 512-point FFT
    np.testing.assert_array_equal(losses.third_octave_matrix(10000, 512), thirdoct(10000, 512, 15, 150)[0])
    # band 0 by hand: 150 * 2^(-1/6) = 133.6 Hz -> bin 7, 150 * 2^(1/6) = 168.4 Hz -> bin 9 (19.53 Hz)
    assert np.flatnonzero(losses.third_octave_matrix(10000, 512)[0]).tolist() == [7, 8]
    rng = np.random.default_rng(0)
    x = _voiced(32768)
    got, want = [], []
    for level in (0.01, 0.03, 0.1, 0.3):
        y = (x + level * rng.standard_normal(x.size)).astype(np.float32)
        got.append(float(losses.stoi_estimate(x[None, :, None], y[None, :, None])[0]))
        want.append(stoi(x, y, 16000))
    np.testing.assert_allclose(got, want, atol=0.015)  # measured: within 0.01
    assert got == sorted(got, reverse=True)  # more noise, lower
    # identical or rescaled: 1 (each segment's envelope is normalised)
    for y in (x, 3.0 * x):
        assert float(losses.stoi_estimate(x[None, :, None], y[None, :, None])[0]) == pytest.approx(1.0, abs=1e-4)


def test_stoi_term_of_snr_stft_loss():
    rng = np.random.default_rng(1)
    s = np.stack([_voiced(16384), np.zeros(16384, np.float32)])[..., None]
    s[1, :8000, 0] = _voiced(8000)  # half speech, half silence (padding)
    est = (s + 0.05 * rng.standard_normal(s.shape)).astype(np.float32)
    plain = losses.get({"name": "snr_stft", "weight": 2.0})
    with_stoi = losses.get({"name": "snr_stft", "weight": 2.0, "stoi_weight": 10.0})
    d = losses.stoi_estimate(s, est).numpy()
    np.testing.assert_allclose(with_stoi(s, est).numpy() - plain(s, est).numpy(), 10.0 * (1 - d), rtol=1e-4)
    snr_and_stoi = losses.get({"name": "snr_stft", "weight": 0.0, "stoi_weight": 10.0})  # no STFT term
    np.testing.assert_allclose(snr_and_stoi(s, est).numpy(),
                               losses.snr_loss(s, est).numpy() + 10.0 * (1 - d), rtol=1e-4)
    # silent segments: a finite value and finite gradients
    est_t = tf.Variable(est)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(with_stoi(s, est_t))
    grad = tape.gradient(value, est_t).numpy()
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    # QUICK frames (4,096 samples: 18 frames, under one 30-frame segment) still give a score
    short = s[:1, :4096]
    assert float(losses.stoi_estimate(short, short)[0]) == pytest.approx(1.0, abs=1e-4)
    assert 0 < float(losses.stoi_estimate(short, est[:1, :4096])[0]) < 1
    with pytest.raises(ValueError, match="stoi_weight must be >= 0"):
        losses.get({"name": "snr_stft", "stoi_weight": -1})


def test_describe_names_a_loss_and_its_settings():
    assert losses.describe(None) == losses.describe("snr") == "snr"
    assert losses.describe({"name": "snr_stft", "weight": 5.0, "stoi_weight": 100.0}) == \
        "snr_stft(stoi_weight=100, weight=5)"
    assert losses.describe({"name": "thresholded_snr"}) == "thresholded_snr"


def test_si_snr_ignores_scale_and_agrees_with_numpy_metric():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 256, 1)).astype(np.float32)
    est = s + 0.3 * rng.standard_normal(s.shape).astype(np.float32)
    a = losses.si_snr(s, est).numpy()
    b = losses.si_snr(s, 3.0 * est).numpy()
    np.testing.assert_allclose(a, b, atol=1e-3)
    # numpy definition: zero-mean, project, ratio
    x, y = s[0, :, 0] - s[0, :, 0].mean(), est[0, :, 0] - est[0, :, 0].mean()
    t = (y @ x) / (x @ x) * x
    assert a[0] == pytest.approx(10 * np.log10((t @ t) / ((y - t) @ (y - t))), abs=1e-3)


def test_config_quick_merge_and_fingerprint(tmp_path):
    cfg = configs.load("table1")
    quick = configs.load("table1", quick=True)
    assert cfg["frame_len"] == 16384 and cfg["convert"]["dt"] == 0.001
    assert quick["frame_len"] < cfg["frame_len"]
    assert quick["ann"]["lr"] == cfg["ann"]["lr"]  # untouched keys survive the merge
    assert configs.fingerprint({"a": 1, "b": 2}) == configs.fingerprint({"b": 2, "a": 1})
    assert configs.fingerprint(cfg["ann"]) != configs.fingerprint(quick["ann"])
    with pytest.raises(configs.ConfigError, match="unknown table 'table99'; known: table1"):
        configs.load("table99")
    bad = tmp_path / "bad.yaml"
    bad.write_text("table: x\n")
    with pytest.raises(ValueError, match="missing required keys"):
        configs.load(str(bad))


def test_paper_values_are_complete():
    for table in ("table1", "table2", "table3", "table4"):
        cfg = configs.load(table)
        for column, values in cfg["paper"].items():
            assert set(values) == {"snr", "ssnr", "si_snr", "stoi", "pesq", "dnsmos_sig",
                                   "dnsmos_bak", "dnsmos_ovrl"}, (table, column)


TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, signal
    import numpy as np
    import kspikese
    import tensorflow as tf
    from kspikese import training

    folder, epochs, kill_epoch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def make_model():
        tf.keras.utils.set_random_seed(0)
        inp = tf.keras.Input((64, 1))
        h = tf.keras.layers.Conv1D(4, 5, padding="same", activation="relu")(inp)
        return tf.keras.Model(inp, tf.keras.layers.Conv1D(1, 3, padding="same", name="readout")(h))

    rng = np.random.default_rng(1)
    clean = rng.standard_normal((32, 64, 1)).astype("float32")
    noisy = clean + 0.5 * rng.standard_normal(clean.shape).astype("float32")

    class Kill(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = None
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == kill_epoch and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    def make_train(epoch):
        return tf.data.Dataset.from_tensor_slices((noisy, clean)).shuffle(32, seed=epoch).batch(8)

    model = make_model()
    valid = tf.data.Dataset.from_tensor_slices((noisy[:8], clean[:8])).batch(8)
    orig_fit = model.fit
    model.fit = lambda *a, **k: orig_fit(*a, **{**k, "callbacks": k["callbacks"] + [Kill()]})
    training.fit_resumable(model, make_train, valid, folder, epochs=epochs, lr=1e-2, patience=10,
                           seed=0, label="t", verbose=0)
    np.save(os.path.join(folder, "final.npy"), model.predict(noisy[:4], verbose=0))
    """
)


def _train(folder, epochs, kill_epoch):
    return subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(folder), str(epochs),
                           str(kill_epoch)], capture_output=True, text=True)


def test_sigkill_mid_epoch_resumes_without_losing_finished_epochs(tmp_path):
    killed = tmp_path / "killed"
    out = _train(killed, 3, kill_epoch=1)
    assert out.returncode == -9, out.stderr[-2000:]
    state = json.loads((killed / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not list(killed.glob("*.tmp*")) and not list(killed.glob(".*tmp*"))
    resumed = _train(killed, 3, kill_epoch=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 1" in resumed.stdout
    state = json.loads((killed / "state.json").read_text())
    assert [r["epoch"] for r in state["history"]] == [1, 2, 3]
    assert (killed / "log.csv").read_text().count("\n") == 4
    # the same run without interruption gives the same model
    straight = tmp_path / "straight"
    assert _train(straight, 3, kill_epoch=-1).returncode == 0
    np.testing.assert_allclose(np.load(killed / "final.npy"), np.load(straight / "final.npy"),
                               rtol=1e-5, atol=1e-6)


def test_early_stopping_restores_best_weights(tmp_path):
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((32, 1))
    model = tf.keras.Model(inp, tf.keras.layers.Conv1D(1, 3, padding="same", name="readout")(inp))
    x = np.random.default_rng(0).standard_normal((8, 32, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    # lr 0: the score never improves after epoch 1, so patience 1 stops after epoch 2
    history = training.fit_resumable(model, lambda e: ds, ds, tmp_path, epochs=5, lr=0.0,
                                     patience=1, seed=0, label="t", verbose=0)
    assert len(history) == 2
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["done"] and state["best_epoch"] == 1


def test_batchnorm_recalibration_gives_the_data_statistics():
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((16, 2))
    bn = tf.keras.layers.BatchNormalization(name="bn")
    model = tf.keras.Model(inp, bn(inp))
    rng = np.random.default_rng(0)
    x = (3.0 + 0.01 * rng.standard_normal((40, 16, 2))).astype("float32")  # mean 3, var 1e-4
    ds = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    # Keras' moving average after one step still holds 99 % of its initial (0, 1)
    model(x[:4], training=True)
    assert bn.moving_variance.numpy()[0] > 0.9
    training.recalibrate_batchnorm(model, ds, batches=10)
    batches = x.reshape(10, 4 * 16, 2)
    np.testing.assert_allclose(bn.moving_mean.numpy(), batches.mean(1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batches.var(1).mean(0), rtol=1e-3)
    assert bn.momentum == 0.99  # restored


def test_fit_resumable_takes_a_user_loss_metric_monitor_and_callbacks(tmp_path):
    """A classifier: cross-entropy, accuracy, early stopping on the validation loss (mode min)."""
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    inp = tf.keras.Input((8,))
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2, name="readout")(inp))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    seen = []

    class Count(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    history = training.fit_resumable(model, ds, ds, tmp_path, epochs=3, lr=0.05, patience=5,
                                     seed=0, label="clf", verbose=0, loss=loss,
                                     metrics=["accuracy"], monitor="val_loss", mode="min",
                                     callbacks=[Count()])
    assert seen == [0, 1, 2] and len(history) == 3
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    state = json.loads((tmp_path / "state.json").read_text())
    losses_ = [row["val_loss"] for row in history]
    assert state["best_epoch"] == 1 + int(np.argmin(losses_))
    assert state["best"] == pytest.approx(-min(losses_))
    with pytest.raises(ValueError, match="monitor 'val_si_snr' is not among"):
        training.fit_resumable(model, ds, ds, tmp_path / "b", epochs=1, lr=0.05, patience=1,
                               seed=0, label="clf", verbose=0, loss=loss, metrics=["accuracy"])
    with pytest.raises(ValueError, match="mode: expected 'max' or 'min'"):
        training.fit_resumable(model, ds, ds, tmp_path / "c", epochs=1, lr=0.05, patience=1,
                               seed=0, label="clf", verbose=0, mode="up")


def test_learning_rate_warmup_and_cosine_follow_the_formula():
    from kspikese.training import learning_rate

    sched = learning_rate(1e-3, "cosine", warmup_steps=10, total_steps=110)
    # warm-up: lr * t / w; then lr * (1 + cos(pi (t - w) / (T - w))) / 2
    assert float(sched(5)) == pytest.approx(0.5e-3, rel=1e-5)
    assert float(sched(10)) == pytest.approx(1e-3, rel=1e-5)
    assert float(sched(60)) == pytest.approx(0.5e-3, rel=1e-4)
    assert float(sched(110)) == pytest.approx(0.0, abs=1e-9)
    flat = learning_rate(2e-4, "constant", warmup_steps=4)
    assert float(flat(2)) == pytest.approx(1e-4, rel=1e-5)
    assert float(flat(500)) == pytest.approx(2e-4, rel=1e-5)
    assert learning_rate(3e-4) == 3e-4
    with pytest.raises(ValueError, match="total_steps"):
        learning_rate(1e-3, "cosine", warmup_steps=10)
    with pytest.raises(ValueError, match="schedule"):
        learning_rate(1e-3, "onecycle")
