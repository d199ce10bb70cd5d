"""The foundation: import behaviour, the command line, atomic writes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import kspikese
from kspikese import audio_io, files


def _run(code, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_import_sets_legacy_keras_before_tensorflow():
    out = _run(
        "import kspikese, tensorflow as tf, os;"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.__name__)"
    )
    assert out.returncode == 0, out.stderr
    flag, version = out.stdout.split()
    assert flag == "1"
    assert version.startswith("tf_keras"), version


def test_import_after_keras3_tensorflow_fails_clearly():
    out = _run("import tensorflow; import kspikese")
    assert out.returncode != 0
    assert "kspikese needs Keras 2" in out.stderr


def test_import_does_not_import_tensorflow():
    out = _run("import sys, kspikese; print('tensorflow' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr


def test_cli_help_lists_commands():
    out = _run("from kspikese.cli import main; main(['--help'])")
    for command in ("data", "evaluate", "reproduce", "energy", "enhance"):
        assert command in out.stdout


def test_python_dash_m_runs():
    out = subprocess.run([sys.executable, "-m", "kspikese"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage" in out.stdout.lower()


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    files.write_text(target, "whole")
    assert target.read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_read_audio_errors_name_the_file(tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_text("hello")
    with pytest.raises(audio_io.AudioError, match="not_audio.wav"):
        audio_io.read_audio(bad)
    nan = tmp_path / "nan.wav"
    audio_io.write_audio(nan, np.array([0.0, np.nan, 0.1], np.float32))
    with pytest.raises(audio_io.AudioError, match="NaN"):
        audio_io.read_audio(nan)


def test_read_audio_resamples_and_mixes_down(tmp_path):
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1) * 0.5
    path = tmp_path / "s.wav"
    audio_io.write_audio(path, stereo.astype(np.float32), sr=48000)
    with pytest.warns(UserWarning, match="mixed down"):
        y = audio_io.read_audio(path)
    assert y.shape == (16000,)
    assert np.isclose(np.sqrt(np.mean(y[1000:-1000] ** 2)), 0.5 / np.sqrt(2), rtol=0.02)


def test_truncated_wav_is_refused_and_float_wav_is_reproducible(tmp_path):
    x = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    audio_io.write_audio(a, x)
    audio_io.write_audio(b, x)
    assert a.read_bytes() == b.read_bytes()  # no PEAK chunk with a time stamp
    cut = tmp_path / "cut.wav"
    cut.write_bytes(a.read_bytes()[:-400])
    with pytest.raises(audio_io.AudioError, match="cut.wav: truncated WAV"):
        audio_io.read_audio(cut)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        files.write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644
