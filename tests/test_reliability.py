"""Issue 16: the bad-input battery's defects, one test (or a few) per class of defect.

Every test here failed before the fix: the defect's number is in the test's name.
"""

import json
import math
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import kspikese  # first: it selects Keras 2 for TensorFlow
import tensorflow as tf
from enhance_models import gain_bias_model, identity_model
from kspikese import enhance_files as EF
from kspikese import enhancement as E
from kspikese import audio_io, files, hub, shipped
from kspikese.cli import main
from kspikese.dsp import OverlapAdd
from kspikese.metrics import check_pair, evaluate_pair, evaluate_set
from kspikese.metrics.evaluate import MIN_SAMPLES
from kspikese.metrics.testsignals import noisy_copy, speech_like

SR = 16000


def tone(n, sr=SR, channels=1, amp=0.5):
    t = np.arange(n) / sr
    return np.stack([amp * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(channels)],
                    1).astype(np.float32)


def identity_fn(rows):
    return rows


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "finetuned.keras"
    gain_bias_model(bias=0.0).save(path)
    return str(path)


def cli(*argv):
    return main(["enhance", *map(str, argv), "-q"])


# --------------------------------------------------------- 1: every reader checks completeness


def test_1_truncated_wav_is_refused_by_every_reader(tmp_path):
    sf.write(tmp_path / "good.wav", tone(48000), SR, subtype="PCM_16")  # 96,044 bytes
    (tmp_path / "t.wav").write_bytes((tmp_path / "good.wav").read_bytes()[:48022])
    message = r"t.wav: truncated WAV file: the header promises 96000 bytes of audio, the file " \
              r"holds 47978"
    with pytest.raises(audio_io.AudioError, match=message):
        EF.enhance_file(tmp_path / "t.wav", tmp_path / "out" / "o.wav", identity_fn)
    with pytest.raises(audio_io.AudioError, match=message):
        audio_io.read_audio(tmp_path / "t.wav")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_1_the_cli_exits_1_and_writes_nothing_for_a_truncated_wav(tmp_path, ckpt, capsys):
    sf.write(tmp_path / "good.wav", tone(48000), SR, subtype="PCM_16")
    (tmp_path / "t.wav").write_bytes((tmp_path / "good.wav").read_bytes()[:48022])
    assert cli(tmp_path / "t.wav", "-o", tmp_path / "o.wav", "--model", ckpt) == 1
    assert "truncated WAV file" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


# ------------------------------------------------------- 2: implausible headers are refused


def _wav_with_rate(path, n, rate):
    sf.write(path, tone(n), SR, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)  # sample rate
    data[28:32] = struct.pack("<I", rate * 2)  # byte rate, mono PCM_16
    path.write_bytes(bytes(data))


def test_2_a_header_saying_1_hz_is_refused_before_any_work(tmp_path):
    _wav_with_rate(tmp_path / "slow.wav", 800, 1)
    assert sf.info(str(tmp_path / "slow.wav")).samplerate == 1  # libsndfile takes it as it is
    message = r"slow.wav: implausible sample rate 1 Hz \(accepted: 8000 to 384000 Hz\)"
    with pytest.raises(audio_io.AudioError, match=message):
        EF.enhance_file(tmp_path / "slow.wav", tmp_path / "o.wav", identity_fn)
    with pytest.raises(audio_io.AudioError, match=message):
        audio_io.read_audio(tmp_path / "slow.wav")
    with pytest.raises(ValueError, match="audio: implausible sample rate 1 Hz"):
        E.enhance(tone(800), 1, identity_model())
    assert not (tmp_path / "o.wav").exists()


def test_2_channel_count_and_duration_limits(tmp_path, monkeypatch):
    sf.write(tmp_path / "many.wav", np.zeros((10, 65), np.float32) + 0.1, SR, subtype="FLOAT")
    with pytest.raises(audio_io.AudioError,
                       match=r"implausible channel count 65 \(accepted: 1 to 64\)"):
        EF.enhance_file(tmp_path / "many.wav", tmp_path / "o.wav", identity_fn)
    sf.write(tmp_path / "long.wav", tone(3 * SR), SR)
    monkeypatch.setattr(audio_io, "MAX_SECONDS", 2)
    with pytest.raises(audio_io.AudioError,
                       match=r"implausible duration .*48000 samples at 16000 Hz"):
        audio_io.read_audio(tmp_path / "long.wav")
    with pytest.raises(ValueError, match="implausible duration"):
        E.enhance(tone(3 * SR), SR, identity_model())


# ------------------------------------------- 3: memory bounded by batch size, no guessed layout


def test_3_no_model_call_sees_more_rows_than_batch_size():
    seen = []

    def fn(rows):
        seen.append(len(rows))
        return rows

    x = np.random.default_rng(0).standard_normal((40000, 8)).astype(np.float32)
    engine = OverlapAdd(fn, 8, 4096, batch_size=3)
    y = np.concatenate([engine.push(x), engine.finish()])
    assert max(seen) <= 3 and sum(seen) == 8 * engine.n_frames
    assert np.array_equal(y, x)  # the identity still returns the signal bit for bit


def test_3_a_many_channel_file_is_enhanced_in_batches(tmp_path):
    seen = []

    def fn(rows):
        seen.append(len(rows))
        return rows

    sf.write(tmp_path / "m.wav", tone(20000, SR, 12), SR, subtype="FLOAT")
    EF.enhance_file(tmp_path / "m.wav", tmp_path / "o.wav", fn, batch_size=4)
    assert max(seen) == 4
    y, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    assert np.allclose(y, tone(20000, SR, 12), atol=1e-6)


def test_3_a_channels_first_array_is_refused_with_the_fix():
    x = tone(48000, SR, 2)
    with pytest.raises(ValueError, match=r"audio has shape \(2, 48000\): that reads as 48000 "
                                         r"channels of 2 samples.*pass \(samples, channels\)"):
        E.enhance(x.T, SR, identity_model())
    with pytest.raises(ValueError, match="reads as 65 channels"):
        E.enhance(np.zeros((1000, 65), np.float32), SR, identity_model())


# ---------------------------------------------------- 4: integer dtypes scaled, others refused


def test_4_int16_arrays_are_scaled_to_unit_range_and_back():
    x = (np.random.default_rng(1).integers(-20000, 20000, 30000)).astype(np.int16)
    y = E.enhance(x, SR, identity_model())
    assert y.dtype == np.float32 and np.allclose(y, x / 32768.0, atol=1e-6)
    assert np.abs(y).max() <= 1.0
    back = E.enhance(x, SR, identity_model(), keep_dtype=True)
    assert back.dtype == np.int16 and np.array_equal(back, x)
    u8 = np.array([0, 64, 128, 192, 255] * 100, np.uint8)
    assert np.allclose(E.enhance(u8, SR, identity_model())[:5], [-1, -0.5, 0, 0.5, 127 / 128])


@pytest.mark.parametrize("bad", [np.ones(1000, bool), np.ones(1000, complex),
                                 np.array(["a"] * 1000)])
def test_4_unknown_dtypes_are_refused(bad):
    with pytest.raises(ValueError, match=f"audio is not a numeric array of samples: dtype "
                                         f"{bad.dtype}"):
        E.enhance(bad, SR, identity_model())


def test_4_metrics_scale_integer_signals_too():
    clean = speech_like(1.0, seed=0)
    noisy = noisy_copy(clean, 5.0, seed=1)
    to16 = lambda x: np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)  # noqa: E731
    c, e = check_pair(to16(clean), to16(noisy))  # what every measure (DNSMOS: level-dependent) sees
    assert np.array_equal(c, to16(clean) / 32768.0) and np.array_equal(e, to16(noisy) / 32768.0)
    ints = evaluate_pair(to16(clean), to16(noisy), metrics=["snr", "pesq"])
    floats = evaluate_pair(to16(clean) / 32768.0, to16(noisy) / 32768.0, metrics=["snr", "pesq"])
    assert ints == floats
    with pytest.raises(ValueError, match="enhanced signal is not a numeric array of samples: "
                                         "dtype complex128"):
        check_pair(clean, clean.astype(complex))


# --------------------------------------------------------- 5: NaN/inf model output is an error


def _nan_model():
    x = tf.keras.Input((None, 1))
    y = tf.keras.layers.Conv1D(1, 1, kernel_initializer=tf.keras.initializers.Constant(np.nan))(x)
    return tf.keras.Model(x, y, name="nan_model")


def test_5_nan_output_is_refused_and_nothing_is_written(tmp_path, capsys):
    _nan_model().save(tmp_path / "nan.keras")
    sf.write(tmp_path / "a.wav", tone(20000), SR, subtype="PCM_16")
    sf.write(tmp_path / "b.wav", tone(20000), SR, subtype="FLOAT")
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "out.wav", "--model",
               tmp_path / "nan.keras") == 1
    err = capsys.readouterr().err
    assert f"model {tmp_path / 'nan.keras'} returned NaN or inf for frame 0 (channel 0" in err
    assert "a.wav; nothing was written" in err
    assert not (tmp_path / "out.wav").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.wav", "b.wav", "nan.keras"]
    with pytest.raises(E.ModelError, match="model nan_model returned NaN or inf for frame 0"):
        E.enhance(tone(20000), SR, _nan_model())


def test_5_the_error_names_the_frame_where_it_happened(tmp_path):
    calls = []

    def fn(rows):
        calls.append(1)
        return np.full_like(rows, np.inf) if len(calls) == 3 else rows

    sf.write(tmp_path / "a.wav", tone(100000), SR)
    with pytest.raises(E.ModelOutputError, match="model mine returned NaN or inf for frame 2 "):
        EF.enhance_file(tmp_path / "a.wav", tmp_path / "o.wav", fn, model_name="mine")
    assert os.listdir(tmp_path) == ["a.wav"]


# ---------------------------------------------------- 6: card paths stay inside the card folder


@pytest.fixture
def card_folder(tmp_path):
    folder = tmp_path / "weights"
    shipped.export(gain_bias_model(0.25, 0.0), "mine", {"seed": 1}, folder)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "w.h5").write_bytes((folder / "mine.h5").read_bytes())
    return folder


@pytest.mark.parametrize("name, problem", [
    ("../outside/w.h5", "leads outside the folder"),
    ("ABS", "is an absolute path"),
    ("/etc/passwd", "is an absolute path"),
    ("/dev/zero", "is an absolute path"),
    (".", "is not a regular file"),
    (7, "expected a file name"),
])
def test_6_weights_file_must_be_a_regular_file_in_the_cards_folder(card_folder, name, problem,
                                                                   capsys):
    card_path = card_folder / "mine.json"
    card = json.loads(card_path.read_text())
    card["weights_file"] = str(card_folder.parent / "outside" / "w.h5") if name == "ABS" else name
    card_path.write_text(json.dumps(card))
    with pytest.raises(shipped.WeightsError, match=f"mine.json: weights_file: .*{problem}"):
        shipped.load(card_path)
    hub.clear_cache()
    assert main(["info", str(card_path)]) == 2
    err = capsys.readouterr().err
    assert problem in err and "SHA-256" not in err


def test_6_a_symlink_out_of_the_folder_and_a_device_are_refused(card_folder, monkeypatch):
    card_path = card_folder / "mine.json"
    card = json.loads(card_path.read_text())
    (card_folder / "link.h5").symlink_to(card_folder.parent / "outside" / "w.h5")
    (card_folder / "zero.h5").symlink_to("/dev/zero")
    for name, problem in (("link.h5", "leads outside"), ("zero.h5", "leads outside")):
        card["weights_file"] = name
        card_path.write_text(json.dumps(card))
        with pytest.raises(shipped.WeightsError, match=problem):
            shipped.load(card_path)
    monkeypatch.setattr(shipped, "MAX_LOAD_BYTES", 100)
    card["weights_file"] = "mine.h5"
    card_path.write_text(json.dumps(card))
    with pytest.raises(shipped.WeightsError, match="more than the 100 allowed"):
        shipped.load(card_path)


# ---------------------------------------------- 7: one metric failing keeps the other metrics


def test_7_an_all_zero_output_keeps_snr_and_stoi():
    clean = speech_like(1.0, seed=0)
    with pytest.warns(RuntimeWarning, match="PESQ failed"):
        out = evaluate_pair(clean, np.zeros_like(clean), metrics=["snr", "stoi", "pesq", "csig"],
                            errors="nan")
    assert out["snr"] == pytest.approx(0.0)  # ||s||^2 / ||s - 0||^2 = 1
    assert not math.isnan(out["stoi"])
    assert math.isnan(out["pesq"]) and math.isnan(out["csig"])
    rows, _ = evaluate_set([("zero", clean, np.zeros_like(clean))],
                           metrics=["snr", "pesq"], progress=False)
    assert rows[0]["snr"] == pytest.approx(0.0) and "PESQ failed" in rows[0]["error"]


def test_7_an_exception_inside_one_measure_stays_there(monkeypatch):
    from kspikese.metrics import perceptual

    def broken(*args, **kwargs):
        raise IndexError("inside pystoi")

    monkeypatch.setattr(perceptual, "stoi_score", broken)
    clean = speech_like(1.0, seed=0)
    with pytest.warns(RuntimeWarning, match="STOI failed: inside pystoi"):
        out = evaluate_pair(clean, 0.9 * clean, metrics=["snr", "stoi"], errors="nan")
    assert out["snr"] == pytest.approx(20.0) and math.isnan(out["stoi"])


# ------------------------------------------------------ 8: each metric states its minimum length


def test_8_short_clips_give_nan_with_the_reason_or_the_documented_error():
    clean = speech_like(1.0, seed=0)
    noisy = noisy_copy(clean, 10.0, seed=1)
    with pytest.warns(RuntimeWarning) as caught:
        out = evaluate_pair(clean[:4000], noisy[:4000], metrics=["snr", "stoi", "pesq"],
                            errors="nan")
    text = " ".join(str(w.message) for w in caught)
    assert "STOI failed: needs at least 6554 samples at 16000 Hz (0.410 s), got 4000" in text
    assert math.isnan(out["stoi"]) and not math.isnan(out["pesq"]) and np.isfinite(out["snr"])
    with pytest.raises(ValueError, match="STOI failed: needs at least 6554"):
        evaluate_pair(clean[:100], noisy[:100], metrics=["stoi"])
    with pytest.warns(RuntimeWarning):
        tiny = evaluate_pair(clean[:100], noisy[:100], metrics=["snr", "stoi", "ssnr", "pesq"],
                             errors="nan")
    assert np.isfinite(tiny["snr"]) and all(math.isnan(tiny[k]) for k in ("stoi", "ssnr", "pesq"))
    assert MIN_SAMPLES["stoi"] == 6554 and MIN_SAMPLES["pesq"] == 4000


def test_8_stoi_of_too_little_speech_is_nan_not_1e_5():
    clean = np.zeros(16000)
    clean[:3000] = speech_like(1.0, seed=0)[:3000]  # long enough, but mostly silence
    with pytest.raises(ValueError, match="STOI failed: fewer than 30 non-silent frames"):
        evaluate_pair(clean, clean * 0.9, metrics=["stoi"])


# ---------------------------------------------------- 10: output locations checked up front


def test_10_evaluate_out_below_a_file_is_refused_before_scoring(tmp_path, capsys):
    for d in ("clean", "enh"):
        (tmp_path / d).mkdir()
        audio_io.write_audio(tmp_path / d / "a.wav", speech_like(1.0, seed=0))
    (tmp_path / "regfile").write_text("x")
    rc = main(["evaluate", "--clean", str(tmp_path / "clean"), "--enhanced", str(tmp_path / "enh"),
               "--out", str(tmp_path / "regfile" / "x"), "--metrics", "snr", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 2 and "scoring" not in captured.out
    assert f"--out {tmp_path / 'regfile' / 'x'}: {tmp_path / 'regfile'} is a file, not a folder" \
        in captured.err


def test_10_enhance_output_below_a_file_is_refused_up_front(tmp_path, ckpt, capsys):
    sf.write(tmp_path / "a.wav", tone(1000), SR)
    (tmp_path / "regfile").write_text("x")
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "regfile" / "out.wav", "--model", ckpt) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'regfile'} is a file, not a folder" in err and "File exists" not in err
    assert cli(tmp_path, "-o", tmp_path / "regfile", "--model", ckpt) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_10_an_existing_output_needs_overwrite(tmp_path, ckpt, capsys):
    sf.write(tmp_path / "a.wav", tone(1000), SR)
    (tmp_path / "o.wav").write_bytes(b"unrelated")
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "o.wav", "--model", ckpt) == 1
    assert "o.wav exists (pass --overwrite to replace it)" in capsys.readouterr().err
    assert (tmp_path / "o.wav").read_bytes() == b"unrelated"
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "o.wav", "--model", ckpt, "--overwrite") == 0
    assert sf.info(str(tmp_path / "o.wav")).frames == 1000


# ------------------------------------------------------------ 11: names that are not UTF-8


def test_11_file_names_that_are_not_utf8_work(tmp_path, ckpt):
    name = os.fsdecode(b"caf\xe9.wav")  # latin-1 e-acute: a surrogate escape in Python
    sf.write(tmp_path / "plain.wav", tone(5000), SR)
    os.rename(tmp_path / "plain.wav", tmp_path / name)
    assert np.allclose(audio_io.read_audio(tmp_path / name), tone(5000)[:, 0], atol=1e-4)
    assert cli(tmp_path / name, "-o", tmp_path / "out" / name, "--model", ckpt) == 0
    y, _ = sf.read(audio_io.sf_name(tmp_path / "out" / name), dtype="float32")
    assert np.allclose(y, 0.5 * tone(5000)[:, 0], atol=1e-4)


# ------------------------------------------------- 12: interruptions clean up, stale files go


def _tmp_files(folder):
    return [p for p in folder.iterdir() if ".tmp" in p.name] if folder.exists() else []


@pytest.mark.parametrize("how, code, word", [("SIGTERM", 143, "terminated (SIGTERM)"),
                                             ("SIGINT", 130, "interrupted (SIGINT)")])
def test_12_a_signal_mid_file_cleans_up_with_one_line(tmp_path, monkeypatch, capsys, how, code,
                                                      word):
    calls = []

    def fn(rows):
        calls.append(1)
        if len(calls) == 4:  # the shape probe, then two frames written, then the signal
            if how == "SIGTERM":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise KeyboardInterrupt
        return rows

    monkeypatch.setattr(EF, "_model_and_fn", lambda *a, **k: (gain_bias_model(), fn))
    sf.write(tmp_path / "long.wav", tone(200000), SR)
    previous = signal.getsignal(signal.SIGTERM)
    assert main(["enhance", str(tmp_path / "long.wav"), "-o", str(tmp_path / "out" / "y.wav"),
                 "-q", "--overlap", "0"]) == code
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"kspikese enhance: {word}; temporary files removed"]
    assert _tmp_files(tmp_path / "out") == [] and not (tmp_path / "out" / "y.wav").exists()


def test_12_stale_temporaries_of_dead_processes_are_removed_by_a_later_run(tmp_path, ckpt):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".y.kspikese-{dead.pid}-abcd1234.tmp.wav"
    live = out / f".y.kspikese-{os.getpid()}-efgh5678.tmp.wav"
    foreign = out / ".y.abcd1234.tmp.wav"  # not named by kspikese: left alone
    for p in (stale, live, foreign):
        p.write_bytes(b"partial")
    sf.write(tmp_path / "y.wav", tone(1000), SR)
    assert cli(tmp_path / "y.wav", "-o", out / "y.wav", "--model", ckpt) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([live.name, foreign.name, "y.wav"])
    assert files.remove_stale_temporaries(out) == []


@pytest.mark.slow  # a TensorFlow process of its own: about 10 s
def test_12_sigterm_from_outside_exits_143_without_traceback(tmp_path, ckpt):
    sf.write(tmp_path / "long.wav", tone(SR * 600), SR, subtype="PCM_16")  # 10 minutes
    out = tmp_path / "out"
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kspikese", "enhance", str(tmp_path / "long.wav"), "-o",
         str(out / "y.wav"), "--model", ckpt, "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=os.getcwd(),
    )
    import time

    deadline = time.monotonic() + 60
    while not _tmp_files(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.decode().splitlines() if line.startswith("kspikese")]
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert lines == ["kspikese enhance: terminated (SIGTERM); temporary files removed"]
    assert list(out.iterdir()) == []
