"""The examples run in their quick form and give sane numbers."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # about 25 s on 2 shared cores
def test_voice_activity_quick_runs_and_beats_chance(tmp_path, capsys):
    example = load_example("voice_activity")
    report = example.run(quick=True, data_dir=tmp_path / "data", out=tmp_path / "run")
    acc = report["accuracy"]
    assert report["chance"] == pytest.approx(0.5)
    assert acc["ann"] >= 0.8, acc  # speech vs noise at unit RMS is easy
    assert acc["converted"] >= acc["ann"] - 0.15, acc
    assert acc["snn"] >= acc["ann"] - 0.15, acc
    assert set(report["joules"]["snn"]) >= {"cpu", "cpu-events", "loihi"}
    assert report["joules"]["ann"]["cpu"] > 0 and report["ratio"] > 0
    printed = capsys.readouterr().out
    assert "test accuracy: ANN" in printed and "energy per inference" in printed
    assert (tmp_path / "run" / "run.json").exists()


def test_voice_activity_classifier_converts_every_layer():
    from kspikese import to_spiking

    example = load_example("voice_activity")
    snn = to_spiking(example.build_classifier(), dt=1e9, seed=0)
    names = {layer.name for layer in snn.layers}
    assert {"conv1_relu6_spike", "conv2_leaky_spike", "conv3_spike", "hidden_spike",
            "readout_spike"} <= names
