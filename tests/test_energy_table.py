"""``kspikese energy``: Table 5 files from small models, and the command on a fake corpus."""

import argparse
import json

import numpy as np
import pytest

import kspikese  # noqa: F401
from kspikese import config as configs
from kspikese import energy, pareto
from kspikese.energy import table5, table5_report
from test_energy import tiny_conv_tasnet, tiny_wave_u_net


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("table5")
    frames = np.random.RandomState(0).uniform(-0.3, 0.3, (3, 64, 1)).astype(np.float32)
    entries, costs_by_model = [], {}
    for key, table, build, dt in (("wave_u_net", "table1", tiny_wave_u_net, 0.001),
                                  ("conv_tasnet", "table3", tiny_conv_tasnet, 1.0)):
        costs = table5.cost_model(build(), build(dt=dt), frames, progress=False)
        info = {"corpus": "random test frames", "split": "test", "utterances": 3, "frames": 3,
                "framing": table5.FRAMING}
        paper = table5.paper_energy(configs.load(table))
        entry = table5.summarize(costs, "untrained (test)", info, paper)
        entry["key"] = key
        entry["operating_point"] = pareto.operating_point(configs.load(table))
        entries.append(entry)
        costs_by_model[key] = costs
    table5_report.write_outputs(out, entries, costs_by_model, untrained=True)
    return out, entries, costs_by_model


def test_table5_files_and_labels(written):
    out, entries, _ = written
    md = (out / "table5.md").read_text()
    assert "UNTRAINED" in md and "14.6" in md and "44.4" in md
    assert "random test frames" in md and "untrained (test)" in md
    assert "non-overlapping frames" in md and "paper_energy" in md
    for table in ("table1", "table3"):
        op = pareto.describe_operating_point(pareto.operating_point(configs.load(table)))
        assert f"  Operating point: {op}." in md
    for key in ("wave_u_net", "conv_tasnet"):
        assert (out / f"layers_{key}.md").exists() and (out / f"layers_{key}.csv").exists()
        png = (out / f"layers_{key}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (out / "table5.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + 2 * (2 + len(energy.SNN_DEVICES))  # ANN, SNN devices, paper
    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))

    payload = strict((out / "table5.json").read_text())
    assert payload["untrained"] is True and len(payload["models"]) == 2
    layers = strict((out / "layers_wave_u_net.json").read_text())
    assert layers["corrected"]["layers"][0]["spikes_per_neuron"] is None  # NaN -> null


def test_summary_numbers_follow_the_estimates(written):
    _, entries, costs_by_model = written
    for entry in entries:
        costs = costs_by_model[entry["key"]]
        ann_cpu = costs["ann"]["corrected"].totals["cpu"]
        snn = costs["snn"]["corrected"]
        c = entry["corrected"]
        assert c["ann_j"]["cpu"] == pytest.approx(ann_cpu)
        assert c["ann_j"]["cpu"] == pytest.approx(costs["ann"]["corrected"].dense_ops * 8.6e-9)
        assert c["ratio"]["loihi"] == pytest.approx(ann_cpu / snn.totals["loihi"])
        secs = 64 / 16000
        assert c["snn_synops_per_s"] == pytest.approx(snn.synops / secs)
        assert c["ndns_mops_per_s"] == pytest.approx(
            (snn.synops_graded + snn.neuron_updates) / secs / 1e6)
        assert entry["stock"]["uncounted_layers"]  # stock misses Concatenate / BN / Multiply
        assert entry["corrected"]["uncounted_layers"] == []
        table = {"wave_u_net": "table1", "conv_tasnet": "table3"}[entry["key"]]
        paper = configs.load(table)["paper_energy"]
        assert entry["paper"]["ann_ops_at_cpu_price"] == pytest.approx(paper["ann_j"] / 8.6e-9)
        assert entry["paper"]["ratio"] == pytest.approx(paper["ann_j"] / paper["snn_j"])


def test_layer_table_lists_every_layer(written):
    out, _, costs_by_model = written
    lines = (out / "layers_conv_tasnet.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(costs_by_model["conv_tasnet"]["snn"]["corrected"].layers)
    assert "decoder" in (out / "layers_conv_tasnet.md").read_text()


def test_arguments():
    parser = argparse.ArgumentParser()
    table5.add_arguments(parser)
    args = parser.parse_args(["--seed", "0", "--data", "default", "--results", "r", "--quick"])
    assert args.quick and args.results == "r" and args.models == ["wave_u_net", "conv_tasnet"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--models", "resnet"])


def test_paper_figures_come_from_the_yaml_and_a_missing_section_names_the_file():
    assert table5.paper_energy(configs.load("table3"))["ann_j"] == 44.4
    cfg = configs.load("table1")
    del cfg["paper_energy"]["snn_j"]
    with pytest.raises(configs.ConfigError, match=r"table1.yaml: `paper_energy:` is missing"):
        table5.paper_energy(cfg)
    del cfg["paper_energy"]
    with pytest.raises(configs.ConfigError, match="table1.yaml"):
        table5.paper_energy(cfg)


def test_command_on_a_fake_corpus(tmp_path):
    # the whole command: config, corpus, framing, conversion, costing, files (quick models)
    from kspikese.cli import main
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path / "corpus")
    rc = main(["energy", "--untrained", "--quick", "--models", "conv_tasnet", "--data-dir",
               str(tmp_path / "corpus"), "--results", str(tmp_path / "results")])
    assert rc == 0
    payload = json.loads((tmp_path / "results" / "table5" / "table5.json").read_text())
    assert payload["untrained"] and payload["quick"]
    (entry,) = payload["models"]
    assert entry["snn_stage"] == "untrained"
    assert entry["frame_len"] == configs.load("table3", quick=True)["frame_len"]
    assert entry["firing_rates_from"]["split"] == "test"
    assert entry["firing_rates_from"]["synthetic"] is True
    assert entry["corrected"]["uncounted_layers"] == []
    md = (tmp_path / "results" / "table5" / "table5.md").read_text()
    assert "QUICK run" in md and "synthetic stand-in audio" in md
    assert not (tmp_path / "results" / "runs").exists()  # untrained: no pipeline run


@pytest.mark.slow
def test_make_energy_quick_runs_the_quick_pipeline(tmp_path):
    # `make energy QUICK=1` = `kspikese energy --seed 0 --data default --results R --quick`
    from kspikese.cli import main
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path / "corpus")
    results = tmp_path / "results"
    rc = main(["energy", "--seed", "0", "--data", "default", "--results", str(results),
               "--quick", "--models", "wave_u_net", "--data-dir", str(tmp_path / "corpus")])
    assert rc == 0
    run_dir = results / "runs" / "table1-quick-default-seed0"
    assert (run_dir / "finetune" / "finetuned.keras").exists()
    (entry,) = json.loads((results / "table5" / "table5.json").read_text())["models"]
    assert str(run_dir) in entry["snn_stage"] and entry["corrected"]["uncounted_layers"] == []
    assert "QUICK run" in (results / "table5" / "table5.md").read_text()
