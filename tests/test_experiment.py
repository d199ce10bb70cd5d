"""The pipeline end to end (QUICK mode on a tiny synthetic corpus): stages, caching, table files."""

import json

import numpy as np
import pytest

from kspikese import experiment
from kspikese.cli import main
from kspikese.data.testing import make_fake_corpus


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    make_fake_corpus(root / "data", n_per_split=(6, 2, 2), seconds=1.5, seed=0)
    args = ["reproduce", "table1", "--quick", "--results", str(root / "results"),
            "--data-dir", str(root / "data"), "--workers", "1"]
    assert main(args) == 0
    return root, args


def test_quick_table_files_and_json_shape(quick_run):
    root, _ = quick_run
    out = root / "results" / "table1"
    for name in ("table1.md", "table1.csv", "table1.json", "training_curves.png",
                 "spectrograms.png", "firing_rates.png", "firing_rates.json"):
        assert (out / name).stat().st_size > 0, name
    table = json.loads((out / "table1.json").read_text())
    assert table["table"] == "table1"
    assert table["columns"] == ["Noisy", "Wave-U-Net", "Random", "Converted SNN", "SNN-Wave-U-Net"]
    assert table["omega"] == 0.001 and table["timesteps"] == 1 and table["seed"] == 0
    assert table["data"]["synthetic"] is True and table["data"]["test_utterances"] == 2
    assert set(table["metrics"]) == set(table["columns"])
    for column in table["columns"]:
        assert np.isfinite(table["metrics"][column]["si_snr"]), column
    assert table["paper"]["SNN-Wave-U-Net"]["si_snr"] == 15.33
    md = (out / "table1.md").read_text()
    assert "SYNTHETIC" in md and "NOT our data" in md
    # the firing rates are spikes per neuron per step of the fine-tuned SNN's spiking layers
    rates = json.loads((out / "firing_rates.json").read_text())
    assert rates and all(v >= 0 for v in rates.values())


def test_noisy_column_is_the_input_itself(quick_run):
    root, _ = quick_run
    table = json.loads((root / "results" / "table1" / "table1.json").read_text())
    run_dir = root / "results" / "runs" / "table1-quick-default-seed0"
    noisy = json.loads((run_dir / "eval" / "Noisy.json").read_text())
    assert noisy["means"]["si_snr"] == pytest.approx(table["metrics"]["Noisy"]["si_snr"])
    # the default corpus mixes at 0..15 dB: the noisy input's SNR is in that neighbourhood
    assert -3 < table["metrics"]["Noisy"]["snr"] < 20


def test_second_run_reuses_every_stage_and_gives_the_same_table(quick_run, capsys):
    root, args = quick_run
    before = json.loads((root / "results" / "table1" / "table1.json").read_text())
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[stage 1]" not in out and "[stage 3]" not in out
    after = json.loads((root / "results" / "table1" / "table1.json").read_text())
    assert after["metrics"] == before["metrics"]


def test_changed_config_redoes_only_the_affected_stages(quick_run):
    root, _ = quick_run
    run = experiment.Run("table1", quick=True, results=root / "results", data_dir=root / "data",
                         overrides={"finetune": {"lr": 5e-4}})
    fps = run.fingerprints()
    assert run.stage_done("ann", run.dir / "ann" / "ann.keras")
    assert run.stage_done("convert", run.dir / "converted.keras")
    assert not run.stage_done("finetune", run.dir / "finetune" / "finetuned.keras")
    assert fps["ann"] == experiment.Run("table1", quick=True, results=root / "results",
                                        data_dir=root / "data").fingerprints()["ann"]


def test_bad_data_source_is_named():
    with pytest.raises(ValueError, match="VCTK_ROOT"):
        experiment.data_splits({"recipe": "vctk-like"}, data="vctk")
    with pytest.raises(ValueError, match="expected default, vctk or timit"):
        experiment.data_splits({"recipe": "vctk-like"}, data="libri")


def test_omega_search_quick_grid(quick_run):
    root, _ = quick_run
    args = ["omega-search", "--table", "table1", "--quick", "--results", str(root / "results"),
            "--data-dir", str(root / "data"), "--omegas", "0.001,1", "--scales", "int16,data"]
    assert main(args) == 0
    out = root / "results" / "omega_search" / "table1-quick"
    result = json.loads((out / "omega_search.json").read_text())
    points = {(p["omega"], p["activation_scale"]): p for p in result["points"]}
    assert set(points) == {(0.001, "int16"), (1.0, "int16"), (0.001, "data"), (1.0, "data")}
    for p in points.values():
        assert np.isfinite(p["val_si_snr_finetuned"])
        assert p["energy_j_per_inference"]["loihi"] > 0
    # a neuron emits floor(a·ω) spikes: at the same scale a larger ω means more spikes, more energy
    assert (points[(1.0, "int16")]["energy_j_per_inference"]["loihi"]
            > 10 * points[(0.001, "int16")]["energy_j_per_inference"]["loihi"])
    # data-based normalisation sets the scale to target_spikes/(ω·λ): the spike count, so the
    # energy, hardly depends on ω
    e_data = [points[(w, "data")]["energy_j_per_inference"]["loihi"] for w in (0.001, 1.0)]
    assert e_data[0] == pytest.approx(e_data[1], rel=0.1)
    assert (out / "omega_search.png").stat().st_size > 0
    # a second call reuses every cached point
    assert main(args) == 0


def test_quick_conv_tasnet_pipeline(quick_run):
    """Table 3's path: BatchNorm (recalibrated), residual adds under data-based normalisation,
    the synaptic multiplication layer, ω = 1."""
    root, _ = quick_run
    args = ["reproduce", "table3", "--quick", "--results", str(root / "results"),
            "--data-dir", str(root / "data"), "--workers", "1"]
    assert main(args) == 0
    table = json.loads((root / "results" / "table3" / "table3.json").read_text())
    assert table["columns"] == ["Noisy", "ConvTasNet", "Random", "Converted SNN", "SNN-ConvTasNet"]
    assert table["omega"] == 1.0 and table["activation_scale"] == "data"
    for column in table["columns"]:
        assert np.isfinite(table["metrics"][column]["si_snr"]), column
    state = json.loads((root / "results" / "runs" / "table3-quick-default-seed0" / "ann"
                        / "state.json").read_text())
    assert all("val_si_snr" in row for row in state["history"])
