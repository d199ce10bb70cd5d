"""`kspikese enhance` on files and folders: formats, rates, channels, streaming, bad input."""

import os

import numpy as np
import pytest
import soundfile as sf

import kspikese  # first: it selects Keras 2 for TensorFlow
import tensorflow as tf
from kspikese import enhance_files as EF
from kspikese import enhancement as E
from kspikese.cli import main
from kspikese.inference import model_fn
from enhance_models import gain_bias_model, identity_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A pipeline-like checkpoint: y = 0.5 x + 0.01 (so silence would not stay silent)."""
    path = tmp_path_factory.mktemp("run") / "finetuned.keras"
    gain_bias_model(bias=0.01).save(path)
    return str(path)


def tone(n, sr, channels=1, amp=0.5):
    t = np.arange(n) / sr
    cols = [amp * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(channels)]
    return np.stack(cols, 1).astype(np.float32)


def cli(*argv):
    return main(["enhance", *map(str, argv), "-q"])


# ------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "name, sr, channels, subtype",
    [
        ("a.wav", 16000, 1, "PCM_16"),
        ("b.wav", 8000, 2, "FLOAT"),
        ("c.flac", 44100, 2, "PCM_24"),
        ("d.wav", 48000, 6, "PCM_24"),
        ("e.ogg", 48000, 1, "VORBIS"),
    ],
)
def test_output_keeps_format_rate_channels_length(tmp_path, name, sr, channels, subtype):
    src, dst = tmp_path / "in" / name, tmp_path / "out" / name
    src.parent.mkdir()
    x = tone(int(1.3 * sr) + 7, sr, channels)
    sf.write(src, x, sr, subtype=subtype)
    secs = EF.enhance_file(src, dst, model_fn(identity_model()))
    a, b = sf.info(str(src)), sf.info(str(dst))
    assert (b.format, b.subtype, b.samplerate, b.channels, b.frames) == (
        a.format, a.subtype, a.samplerate, a.channels, a.frames,
    )  # fmt: skip
    assert np.isclose(secs, a.frames / sr)
    y, _ = sf.read(dst, dtype="float32", always_2d=True)
    x_read, _ = sf.read(src, dtype="float32", always_2d=True)
    tol = 0.02 if subtype == "VORBIS" else (1e-4 if sr == 16000 else 2e-3)
    assert np.abs(y - x_read)[300:-300].max() < tol  # identity model, resampled there and back
    assert os.listdir(dst.parent) == [name]  # no temporary file left


def test_output_gets_usual_permissions(tmp_path):
    sf.write(tmp_path / "x.wav", tone(1000, 16000), 16000)
    old = os.umask(0o022)
    try:
        EF.enhance_file(tmp_path / "x.wav", tmp_path / "y.wav", model_fn(identity_model()))
    finally:
        os.umask(old)
    assert (tmp_path / "y.wav").stat().st_mode & 0o777 == 0o644


def test_pcm16_identity_at_16k_is_bit_exact(tmp_path):
    x = (np.random.default_rng(0).integers(-20000, 20000, 40000)).astype(np.int16)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="PCM_16")
    EF.enhance_file(tmp_path / "x.wav", tmp_path / "y.wav", model_fn(identity_model()))
    y, _ = sf.read(tmp_path / "y.wav", dtype="int16")
    assert np.array_equal(x, y)


def test_file_streaming_equals_array_api(tmp_path, monkeypatch):
    monkeypatch.setattr(EF, "BLOCK", 999)  # many small blocks through the resamplers
    model = gain_bias_model(bias=0.01)
    x = tone(3 * 44100 + 11, 44100, 2) + 0.01 * np.random.default_rng(1).standard_normal(
        (3 * 44100 + 11, 2)
    ).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 44100, subtype="FLOAT")
    EF.enhance_file(tmp_path / "x.wav", tmp_path / "y.wav", model_fn(model))
    y, _ = sf.read(tmp_path / "y.wav", dtype="float32")
    monkeypatch.setattr(EF, "BLOCK", 65536)
    assert np.allclose(y, E.enhance(x, 44100, model), atol=1e-6)


# ------------------------------------------------------------------------------- the CLI


def test_single_file_to_file_folder_and_summary(tmp_path, ckpt, capsys):
    sf.write(tmp_path / "noisy.wav", tone(20000, 16000), 16000)
    assert cli(tmp_path / "noisy.wav", "-o", tmp_path / "clean.wav", "--model", ckpt) == 0
    y, _ = sf.read(tmp_path / "clean.wav", dtype="float32")
    assert np.allclose(y, 0.5 * tone(20000, 16000)[:, 0] + 0.01, atol=1e-4)
    out = capsys.readouterr().out
    assert (
        "1 file(s) enhanced, 0 failed" in out
        and "real-time factor" in out
        and "min of audio" in out
    )
    (tmp_path / "outdir").mkdir()
    assert cli(tmp_path / "noisy.wav", "-o", tmp_path / "outdir", "--model", ckpt) == 0
    assert (tmp_path / "outdir" / "noisy.wav").exists()


def test_several_inputs_mirror_their_trees(tmp_path, ckpt):
    for rel in ("a/x.wav", "a/deep/y.flac", "b/z.wav", "solo.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, tone(9000, 16000), 16000)
    (tmp_path / "a" / "notes.txt").write_text("not audio, not listed")
    assert (
        cli(
            tmp_path / "a",
            tmp_path / "b",
            tmp_path / "solo.wav",
            "-o",
            tmp_path / "out",
            "--model",
            ckpt,
        )
        == 0
    )
    got = sorted(
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()
    )
    assert got == ["a/deep/y.flac", "a/x.wav", "b/z.wav", "solo.wav"]
    assert cli(tmp_path / "a", "-o", tmp_path / "out2", "--model", ckpt) == 0
    assert sorted(p.name for p in (tmp_path / "out2").rglob("*.*")) == ["x.wav", "y.flac"]


def test_bad_inputs_are_named_and_the_run_goes_on(tmp_path, ckpt, capsys, monkeypatch):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "locked").mkdir()
    sf.write(src / "locked" / "hidden.wav", tone(100, 16000), 16000)
    sf.write(src / "good.wav", tone(40000, 16000), 16000)
    sf.write(src / "sub" / "stereo44k.flac", tone(50000, 44100, 2), 44100, subtype="PCM_24")
    sf.write(src / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    (src / "text.wav").write_text("this is not audio at all\n" * 10)
    sf.write(src / "whole.wav", tone(30000, 16000), 16000)
    (src / "truncated.wav").write_bytes((src / "whole.wav").read_bytes()[:30])
    (src / "whole.wav").unlink()
    nan = tone(30000, 16000)
    nan[20000] = np.nan
    sf.write(src / "nan.wav", nan, 16000, subtype="FLOAT")
    inf = tone(30000, 8000)
    inf[5, 0] = np.inf
    sf.write(src / "inf.flac.wav", inf, 8000, subtype="DOUBLE")
    sf.write(src / "zeros.wav", np.zeros(50000, np.float32), 48000, subtype="PCM_16")
    sf.write(src / "short.wav", tone(300, 16000), 16000)

    real_scandir = os.scandir

    def scandir(path="."):  # running as root, chmod 000 would not stop us: simulate it
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    assert cli(src, "-o", out, "--model", ckpt) == 1
    err = capsys.readouterr().err
    expected = {
        "empty.wav": "holds no samples",
        "text.wav": "cannot read audio",
        "truncated.wav": "truncated or malformed WAV file",
        "nan.wav": "NaN or inf samples (first at sample 20000, channel 0)",
        "inf.flac.wav": "NaN or inf samples (first at sample 5, channel 0)",
        "locked": "cannot read folder (Permission denied)",
    }
    for name, problem in expected.items():
        assert any(name in line and problem in line for line in err.splitlines()), (name, err)
    done = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert done == [
        "good.wav",
        "short.wav",
        "sub/stereo44k.flac",
        "zeros.wav",
    ]  # nothing half-written
    z, zsr = sf.read(out / "zeros.wav", dtype="int16")
    assert zsr == 48000 and z.shape == (50000,) and not z.any()  # zeros in, zeros out
    s, _ = sf.read(out / "short.wav", dtype="float32")
    assert np.allclose(s, 0.5 * tone(300, 16000)[:, 0] + 0.01, atol=1e-4)
    st = sf.info(str(out / "sub" / "stereo44k.flac"))
    assert (st.samplerate, st.channels, st.frames, st.subtype) == (44100, 2, 50000, "PCM_24")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_really_unreadable_folder(tmp_path, ckpt, capsys):
    (tmp_path / "in" / "locked").mkdir(parents=True)
    sf.write(tmp_path / "in" / "ok.wav", tone(100, 16000), 16000)
    os.chmod(tmp_path / "in" / "locked", 0)
    try:
        assert cli(tmp_path / "in", "-o", tmp_path / "out", "--model", ckpt) == 1
    finally:
        os.chmod(tmp_path / "in" / "locked", 0o755)
    assert "locked: cannot read folder" in capsys.readouterr().err


def test_output_equal_to_input_needs_overwrite(tmp_path, ckpt, capsys):
    path = tmp_path / "x.wav"
    sf.write(path, tone(20000, 16000), 16000, subtype="FLOAT")
    before = path.read_bytes()
    assert cli(path, "-o", path, "--model", ckpt) == 1
    assert "is the input itself (pass --overwrite" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert cli(tmp_path, "-o", tmp_path, "--model", ckpt) == 1  # a folder onto itself, too
    assert path.read_bytes() == before
    assert cli(path, "-o", path, "--model", ckpt, "--overwrite") == 0
    y, _ = sf.read(path, dtype="float32")
    assert np.allclose(y, 0.5 * tone(20000, 16000)[:, 0] + 0.01, atol=1e-6)
    assert os.listdir(tmp_path) == ["x.wav"]


def test_output_outside_out_is_refused(tmp_path, ckpt, capsys):
    src, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    (src / "sub").mkdir(parents=True)
    out.mkdir()
    elsewhere.mkdir()
    sf.write(src / "sub" / "a.wav", tone(1000, 16000), 16000)
    sf.write(src / "b.wav", tone(1000, 16000), 16000)
    (out / "sub").symlink_to(elsewhere)  # out/sub/a.wav would land in elsewhere/
    assert cli(src, "-o", out, "--model", ckpt) == 1
    assert "would land outside the output folder" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == [] and (out / "b.wav").exists()


def test_output_folder_inside_input_is_not_reread(tmp_path, ckpt):
    sf.write(tmp_path / "a.wav", tone(1000, 16000), 16000)
    assert cli(tmp_path, "-o", tmp_path / "enhanced", "--model", ckpt) == 0
    assert (tmp_path / "enhanced" / "a.wav").exists()
    # the second run does not take enhanced/a.wav as an input
    assert cli(tmp_path, "-o", tmp_path / "enhanced", "--model", ckpt, "--overwrite") == 0
    assert not (tmp_path / "enhanced" / "enhanced").exists()


def test_model_problems_exit_2_before_touching_files(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", tone(1000, 16000), 16000)
    empty = tmp_path / "weights"
    empty.mkdir()
    assert (
        main(
            [
                "enhance",
                str(tmp_path / "a.wav"),
                "-o",
                str(tmp_path / "b.wav"),
                "--weights-dir",
                str(empty),
            ]
        )
        == 2
    )
    assert "make reproduce-table1" in capsys.readouterr().err
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "b.wav", "--model", "nosuch") == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "b.wav").exists()
    assert cli(tmp_path / "missing.wav", "-o", tmp_path / "b.wav", "--model", "nosuch") == 1
    assert "missing.wav: no such file or folder" in capsys.readouterr().err


def test_output_suffix_may_pick_another_format(tmp_path, ckpt):
    sf.write(tmp_path / "a.wav", tone(5000, 22050, 2), 22050, subtype="PCM_24")
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "a.flac", "--model", ckpt) == 0
    info = sf.info(str(tmp_path / "a.flac"))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == (
        "FLAC", "PCM_24", 22050, 2, 5000,
    )  # fmt: skip


def test_failure_in_the_middle_leaves_no_file(tmp_path):
    sf.write(tmp_path / "a.wav", tone(100000, 16000), 16000)
    calls = []

    def fn(rows):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # e.g. Ctrl-C while the third frame runs
        return rows

    with pytest.raises(KeyboardInterrupt):
        EF.enhance_file(tmp_path / "a.wav", tmp_path / "out" / "b.wav", fn)
    assert list((tmp_path / "out").iterdir()) == []


def test_model_failure_is_not_blamed_on_the_file(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", tone(40000, 16000), 16000)
    x = tf.keras.Input((None, 1))
    bad = tf.keras.Model(x, tf.keras.layers.Conv1D(1, 2, strides=2)(x))  # halves the length
    bad.save(tmp_path / "bad.keras")
    assert cli(tmp_path / "a.wav", "-o", tmp_path / "b.wav", "--model", tmp_path / "bad.keras") == 2
    err = capsys.readouterr().err
    assert "must map (batch, samples, 1) to the same shape" in err and "cannot read" not in err
    assert not (tmp_path / "b.wav").exists()
