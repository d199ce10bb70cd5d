"""``kspikese energy``: Table 5 files from small models (the pipeline is not needed)."""

import argparse
import json

import numpy as np
import pytest

import kspikese  # noqa: F401
from kspikese import energy, energy_table
from test_energy import tiny_conv_tasnet, tiny_wave_u_net


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("table5")
    frames = np.random.RandomState(0).uniform(-0.3, 0.3, (3, 64, 1)).astype(np.float32)
    entries, costs_by_model = [], {}
    for key, build, dt in (("wave_u_net", tiny_wave_u_net, 0.001),
                           ("conv_tasnet", tiny_conv_tasnet, 1.0)):
        costs = energy_table.cost_model(key, build(), build(dt=dt), frames, progress=False)
        info = {"corpus": "random test frames", "split": "test", "utterances": 3, "frames": 3}
        entry = energy_table.summarize(key, costs, "untrained (test)", info)
        entry["key"] = key
        entries.append(entry)
        costs_by_model[key] = costs
    energy_table.write_outputs(out, entries, costs_by_model, untrained=True)
    return out, entries, costs_by_model


def test_table5_files_and_labels(written):
    out, entries, _ = written
    md = (out / "table5.md").read_text()
    assert "UNTRAINED" in md and "14.6" in md and "44.4" in md
    assert "random test frames" in md and "untrained (test)" in md
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
        assert entry["paper"]["ann_events_at_8.6nJ"] == pytest.approx(
            energy.PAPER_TABLE5[entry["key"]]["ann_j"] / 8.6e-9)


def test_layer_table_lists_every_layer(written):
    out, _, costs_by_model = written
    lines = (out / "layers_conv_tasnet.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + len(costs_by_model["conv_tasnet"]["snn"]["corrected"].layers)
    assert "decoder" in (out / "layers_conv_tasnet.md").read_text()


def test_arguments():
    parser = argparse.ArgumentParser()
    energy_table.add_arguments(parser)
    args = parser.parse_args(["--seed", "0", "--data", "default", "--results", "r", "--quick"])
    assert args.quick and args.results == "r" and args.models == ["wave_u_net", "conv_tasnet"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--models", "resnet"])


def test_command_on_a_fake_corpus(tmp_path):
    # the whole command: config, data splits, framing, conversion, costing, files (quick models)
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
    assert entry["firing_rates_from"]["split"] == "test"
    assert entry["firing_rates_from"]["synthetic"] is True
    assert entry["corrected"]["uncounted_layers"] == []
    md = (tmp_path / "results" / "table5" / "table5.md").read_text()
    assert "QUICK run" in md and "synthetic stand-in audio" in md
