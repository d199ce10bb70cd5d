"""The Nengo export's main-environment half (the spec), and the whole path across the two
environments when .venv-nengo exists (``make nengo-env``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from kspikese import to_spiking
from kspikese.convert import scale_activations
from kspikese.models import build_wave_u_net, save_model
from kspikese.nengo import spec as S

REPO = Path(__file__).resolve().parents[1]
NENGO_PY = REPO / ".venv-nengo" / "bin" / "python"


def _small_snn(frame_len=256):
    tf.keras.utils.set_random_seed(0)  # Python, NumPy, TF: all feed the initialisers
    ann = build_wave_u_net(frame_len=frame_len, depth=2, filters=4)
    return to_spiking(scale_activations(ann, 1e4), dt=0.001, seed=3)


def test_spec_rebuilds_the_same_function(tmp_path):
    from kspikese.nengo.graph import build_model

    snn = _small_snn()
    spec, arrays = S.describe(snn)
    kinds = [op["op"] for op in spec["ops"]]
    assert kinds.count("spiking") == 10 and kinds.count("conv1d_transpose") == 4
    assert spec["dt"] == 0.001 and spec["output"] == "output_scale"
    # the initial voltages are the Keras SNN's seeded ones, not fresh draws
    v0_layer = snn.get_layer("d1_conv_v0")
    np.testing.assert_array_equal(
        arrays["d1_conv_spike/v0"], v0_layer(tf.zeros((1, 1, 256, 4))).numpy()[0])
    S.save(spec, arrays, tmp_path)
    spec2, arrays2 = S.load(tmp_path)
    rebuilt = build_model(spec2, arrays2)
    x = np.random.default_rng(0).normal(0, 0.3, (2, 256, 1)).astype(np.float32)
    y = snn(x).numpy()
    assert np.std(y) > 0.01
    np.testing.assert_allclose(rebuilt(x).numpy(), y, rtol=0, atol=1e-6)


def test_ann_and_unsupported_layers_are_refused_by_name():
    ann = build_wave_u_net(frame_len=256, depth=1, filters=2)
    with pytest.raises(S.UnsupportedLayer, match="'d1_conv'.*to_spiking"):
        S.describe(ann)
    inp = tf.keras.Input((16, 1))
    h = tf.keras.layers.Conv1D(2, 3, padding="same", activation="relu", name="c")(inp)
    h = tf.keras.layers.UpSampling1D(2, name="upsample_me")(h)
    with pytest.raises(S.UnsupportedLayer, match="upsample_me"):
        S.describe(to_spiking(tf.keras.Model(inp, h), dt=0.001, seed=0))


def test_export_needs_the_nengo_env(tmp_path, capsys):
    if _importable("nengo_dl"):
        pytest.skip("nengo-dl is importable here")
    from kspikese.cli import main

    with pytest.raises(SystemExit, match="make nengo-env"):
        main(["export-nengo", str(tmp_path / "missing.keras"), "-o", str(tmp_path / "net")])


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _nengo_env_works():
    if not NENGO_PY.is_file():
        return False
    r = subprocess.run([str(NENGO_PY), "-c", "import nengo_dl"], capture_output=True)
    return r.returncode == 0


@pytest.mark.nengo
@pytest.mark.skipif(not NENGO_PY.is_file(), reason="no .venv-nengo (make nengo-env)")
def test_export_and_eval_across_environments(tmp_path):
    """A .keras saved here (TF 2.21) -> export-nengo + nengo-eval in .venv-nengo (TF 2.12)."""
    assert _nengo_env_works(), f"{NENGO_PY} cannot import nengo_dl"
    ckpt = save_model(_small_snn(frame_len=1024), tmp_path / "snn.keras")
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    for k in range(2):
        clean = 0.3 * np.sin(2 * np.pi * (200 + 100 * k) * t) * np.hanning(len(t))
        noisy = clean + rng.normal(0, 0.05, len(t))
        for kind, y in (("clean", clean), ("noisy", noisy)):
            (tmp_path / "test" / kind).mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "test" / kind / f"u{k}.wav", y.astype(np.float32), 16000)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    net = tmp_path / "net"
    base = [str(NENGO_PY), "-m", "kspikese"]
    subprocess.run(base + ["export-nengo", str(ckpt), "-o", str(net), "--data",
                           str(tmp_path / "test"), "--utterances", "2",
                           "--keras-python", sys.executable], check=True, env=env, cwd=REPO)
    conversion = json.loads((net / "conversion.json").read_text())
    assert conversion["counts"]["tensor_nodes"] == 0
    assert {"Conv1DTranspose", "IFNeurons"} <= set(conversion["custom_layer_types"])
    subprocess.run(base + ["nengo-eval", str(net)], check=True, env=env, cwd=REPO)
    result = json.loads((net / "eval.json").read_text())
    assert result["utterances"] == 2 and result["within_target"]
    assert result["max_abs_diff"] <= 1e-5 * max(r["max_abs_keras"] for r in result["rows"])


def test_spec_command_names_the_unsupported_layer(tmp_path, capsys):
    ckpt = save_model(build_wave_u_net(frame_len=256, depth=1, filters=2), tmp_path / "ann.keras")
    assert S.main([str(ckpt), str(tmp_path / "spec")]) == 2
    err = capsys.readouterr().err
    assert "ann.keras" in err and "'d1_conv'" in err
    assert not (tmp_path / "spec" / S.SPEC).exists()
