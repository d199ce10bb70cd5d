"""The accuracy–energy front: grid points, the Pareto flags, the files, a QUICK end-to-end run."""

import csv
import json
import math

import pytest

from kspikese import pareto
from kspikese.config import ConfigError

NAN = float("nan")


def test_pareto_front_hand_computed():
    # (cost, quality): 0 (1, 10) optimal; 1 (0.5, 9.8) optimal; 2 (0.2, 9) optimal (cheapest);
    # 3 (0.2, 8) dominated by 2; 4 (2, 10.5) optimal (best); 5 (1.5, 9.9) dominated by 0;
    # 6 NaN never; 7 equal to 1: both optimal; 8 (1, 9.99) dominated by 0 (same cost, worse)
    costs = [1.0, 0.5, 0.2, 0.2, 2.0, 1.5, 0.7, 0.5, 1.0]
    quality = [10.0, 9.8, 9.0, 8.0, 10.5, 9.9, NAN, 9.8, 9.99]
    assert pareto.pareto_front(costs, quality) == [True, True, True, False, True, False, False,
                                                   True, False]


def test_pareto_front_nan_dominates_nothing_and_lengths_checked():
    assert pareto.pareto_front([NAN, 1.0], [100.0, 0.0]) == [False, True]
    with pytest.raises(ValueError, match="2 costs but 1 qualities"):
        pareto.pareto_front([1, 2], [3])


def test_grid_points_product_union_and_order():
    grid = [{"target_spikes": [30, 3], "v0": ["random", 0.5], "timesteps": 1,
             "penalty_weight": [0]},
            {"target_spikes": [3], "v0": [0.5], "timesteps": [1, 2], "penalty_weight": 0}]
    points = pareto.grid_points(grid)
    assert [(p["target_spikes"], p["v0"], p["timesteps"]) for p in points] == [
        (30.0, "random", 1), (30.0, 0.5, 1), (3.0, "random", 1), (3.0, 0.5, 1), (3.0, 0.5, 2)]
    with pytest.raises(ValueError, match=r"missing \['penalty_weight'\]"):
        pareto.grid_points({"target_spikes": 1, "v0": 0.5, "timesteps": 1})
    assert {p["allocation"] for p in points} == {"uniform"}  # the optional knob's default
    both = pareto.grid_points({"target_spikes": 4, "v0": 0.5, "timesteps": 1, "penalty_weight": 0,
                               "allocation": ["uniform", "events"]})
    assert [p["allocation"] for p in both] == ["uniform", "events"]
    assert pareto.point_settings({"convert": {"dt": 1.0}}, both[1])["allocation"] == "events"
    with pytest.raises(ValueError, match=r"unknown \['alloc'\]"):
        pareto.grid_points({**both[0], "alloc": "events"})


def test_shipped_settings_quick_and_full():
    quick = pareto.load_settings(quick=True)
    assert len(quick["points"]) == 4 and quick["finetune_steps"] == 2
    full = pareto.load_settings()
    assert {p["timesteps"] for p in full["points"]} == {1, 2, 4}
    assert {str(p["v0"]) for p in full["points"]} == {"random", "0.5"}
    assert any(p["penalty_weight"] > 0 for p in full["points"])
    assert {p["allocation"] for p in full["points"]} == {"uniform", "events", "measured"}


def test_bad_settings_name_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("finetune_steps: 0\nvalid_utterances: 1\nenergy_frames: 1\ngrid: {}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: finetune_steps must be an integer >= 1"):
        pareto.load_settings(path)
    path.write_text("finetune_steps: 1\nvalid_utterances: 1\nenergy_frames: 1\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: missing \['grid'\]"):
        pareto.load_settings(path)


def _point(j, si, events, t=1):
    return {"target_spikes": 3.0, "v0": 0.5, "timesteps": t, "penalty_weight": 0.0,
            "si_snr_converted": si - 1, "si_snr_finetuned": si, "synaptic_events": events,
            "mean_spikes_per_neuron": 0.1,
            "j": {"cpu": 1.0, "cpu-events": j, "loihi": j / 100, "spinnaker2": j / 10}}


def test_write_outputs_flags_and_files(tmp_path):
    ann = {"si_snr": 10.0, "macs": 100, "params": 5, "j": {"cpu": 1.0}}
    points = [_point(0.5, 9.8, 30), _point(0.2, 9.0, 20), _point(0.2, 8.0, 20),
              _point(2.0, 10.5, 200, t=2), _point(1.5, 9.9, 150)]
    info = {"table": "tableX", "title": "tiny", "quick": True, "ann_from": "hand-made",
            "data": {"corpus": "hand corpus", "synthetic": True}, "valid_utterances": 2,
            "energy_frames": 2, "frame_len": 64, "finetune_steps": 1, "finetune_lr": 1e-4,
            "penalty_target": 0.0, "convert": {"dt": 1.0},
            "operating_point": {"activation_scale": "data", "target_spikes": 3.0,
                                "percentile": 99.0, "v0": 0.5, "timesteps": 2,
                                "penalty_weight": 0.0, "penalty_target": 0.0,
                                "front": "a hand-made front", "why": None}}
    for p in points:
        p["operating_point"] = pareto.is_operating_point(p, info["operating_point"])
    md = pareto.write_outputs(tmp_path, "tableX-quick", ann, points, info)
    payload = json.loads((tmp_path / "tableX-quick.json").read_text())
    assert payload["ann"]["pareto"] is True
    assert [p["pareto"] for p in payload["points"]] == [True, True, False, True, False]
    assert [p["meets_target"] for p in payload["points"]] == [True, False, False, False, False]
    assert math.isclose(payload["points"][0]["ann_snn_ratio"], 2.0)
    assert math.isclose(payload["points"][0]["events_per_mac"], 0.3)
    with open(tmp_path / "tableX-quick.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == pareto.HEADER and len(rows) == 1 + 1 + len(points)
    assert [r[-3] for r in rows[1:]] == ["yes", "yes", "yes", "", "yes", ""]
    assert [r[-2] for r in rows[2:]] == ["yes", "", "", "", ""]
    assert [r[-1] for r in rows[1:]] == ["", "", "", "", "yes", ""]  # the only T = 2 point
    assert ("operating point (its YAML's `convert:`/`finetune:`): target 3 spikes at the 99th "
            "percentile, v0 0.5, T 2, no spike penalty; chosen from a hand-made front.") in md
    assert (tmp_path / "tableX-quick.png").stat().st_size > 5000
    assert "hand corpus (SYNTHETIC stand-in audio)" in md and "ANN: hand-made." in md
    assert "1 of 5 points" in md and "QUICK run" in md


@pytest.mark.slow
def test_quick_grid_end_to_end_on_a_fake_corpus(tmp_path):
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path / "data")
    settings = tmp_path / "p.yaml"
    settings.write_text("finetune_steps: 1\nvalid_utterances: 1\nenergy_frames: 1\n"
                        "grid: {target_spikes: [30, 1], v0: [0.5], timesteps: [1], "
                        "penalty_weight: [0]}\n")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        md = pareto.run_grid("table1", quick=True, results=tmp_path / "results",
                             data_dir=tmp_path / "data", settings_path=settings)
    out = tmp_path / "results" / "pareto"
    for suffix in ("md", "csv", "json", "png"):
        assert (out / f"table1-quick.{suffix}").is_file()
    payload = json.loads((out / "table1-quick.json").read_text())
    pts = payload["points"]
    assert [p["target_spikes"] for p in pts] == [30.0, 1.0]
    # fewer spikes per neuron at the percentile -> fewer synaptic events
    assert pts[1]["synaptic_events"] < pts[0]["synaptic_events"]
    flags = pareto.pareto_front([payload["ann"]["j"]["cpu"]] + [p["j"]["cpu-events"] for p in pts],
                                [payload["ann"]["si_snr"]] + [p["si_snr_finetuned"] for p in pts])
    assert flags == [payload["ann"]["pareto"]] + [p["pareto"] for p in pts]
    assert "SYNTHETIC" in md
    # a second run reuses the cached points and the run's ANN
    again = pareto.run_grid("table1", quick=True, results=tmp_path / "results",
                            data_dir=tmp_path / "data", settings_path=settings)
    assert "the run's trained ANN" in again and "trained now" not in again


def test_cli_bad_ann_named_before_anything_is_made(tmp_path, capsys):
    from kspikese import cli

    results = tmp_path / "results"
    assert cli.main(["pareto", "--table", "table1", "--ann", "no-such-ann", "--results",
                     str(results)]) == 2
    assert "kspikese pareto: error: --ann no-such-ann: unknown model 'no-such-ann'" in (
        capsys.readouterr().err)
    assert not results.exists()


def test_cli_bad_settings_named(tmp_path, capsys):
    from kspikese import cli

    bad = tmp_path / "p.yaml"
    bad.write_text("grid: {}\n")
    assert cli.main(["pareto", "--settings", str(bad), "--results", str(tmp_path / "r")]) == 2
    assert f"kspikese pareto: error: {bad}: missing" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cached_point_with_nan_reads_back(tmp_path):
    from kspikese import files

    point = _point(0.1, NAN, 5)
    files.write_json(tmp_path / "p.json", point)
    back = pareto.from_json(json.loads((tmp_path / "p.json").read_text()))
    assert math.isnan(back["si_snr_finetuned"]) and back["v0"] == 0.5
    ann = {"si_snr": 1.0, "macs": 10, "params": 1, "j": {"cpu": 1.0}}
    pareto.mark(ann, [back])
    assert back["pareto"] is False and back["meets_target"] is False


def test_operating_point_read_from_the_knobs_the_pipeline_uses():
    from kspikese import config as configs

    cfg = configs.load("table1", overrides={
        "convert": {"target_spikes": 15, "v0": 0.5, "allocation": "uniform"},
        "finetune": {"spike_penalty": {"weight": 2, "target": 0.1, "weighting": "neurons",
                                       "adapt_gain": 0},
                     "max_events_per_mac": None},
        "operating_point": {"front": "make pareto", "why": "cheapest within 0.5 dB"}})
    op = pareto.operating_point(cfg)
    assert op == {"activation_scale": "data", "target_spikes": 15.0, "percentile": 99.9,
                  "v0": 0.5, "timesteps": 1, "penalty_weight": 2.0, "penalty_target": 0.1,
                  "penalty_weighting": "neurons", "penalty_adapt_gain": 0.0, "rate_budget": None,
                  "relays": False, "sum_scale": "geometric", "allocation": "uniform",
                  "front": "make pareto", "why": "cheapest within 0.5 dB"}
    assert pareto.describe_operating_point(op) == (
        "target 15 spikes at the 99.9th percentile, v0 0.5, T 1, spike penalty w 2 above 0.1; "
        "chosen from make pareto (cheapest within 0.5 dB)")
    point = {"target_spikes": 15.0, "v0": 0.5, "timesteps": 1, "penalty_weight": 2.0}
    assert pareto.is_operating_point(point, op, penalty_target=0.1)
    assert not pareto.is_operating_point(point, op, penalty_target=0.0)
    assert not pareto.is_operating_point({**point, "v0": "random"}, op, penalty_target=0.1)
    assert not pareto.is_operating_point({**point, "target_spikes": 10.0}, op, 0.1)
    events = pareto.operating_point(configs.load("table1", overrides={
        "finetune": {"spike_penalty": {"weight": 2, "weighting": "events"}}}))
    assert events["penalty_weighting"] == "events"
    assert "spike penalty w 2 above 0 (events-weighted)" in pareto.describe_operating_point(events)
    assert not pareto.is_operating_point({**point, "target_spikes": events["target_spikes"],
                                          "v0": events["v0"]}, events, 0.0)
    adapted = pareto.operating_point(configs.load("table1", overrides={"finetune": {
        "max_events_per_mac": 0.33,
        "spike_penalty": {"weight": 8, "weighting": "events", "adapt_gain": 2}}}))
    assert (adapted["penalty_adapt_gain"], adapted["rate_budget"]) == (2.0, 0.33)
    assert ("spike penalty w 8 above 0 (events-weighted) adapted to the budget (gain 2), rate "
            "budget 0.33 events per ANN MAC") in pareto.describe_operating_point(adapted)
    on_grid = {**point, "target_spikes": adapted["target_spikes"], "v0": adapted["v0"],
               "penalty_weight": 8.0}
    neurons = {**adapted, "penalty_weighting": "neurons", "penalty_adapt_gain": 0.0,
               "rate_budget": None, "allocation": "uniform"}
    assert pareto.is_operating_point(on_grid, neurons, 0.0)
    assert not pareto.is_operating_point({**on_grid, "allocation": "events"}, neurons, 0.0)
    assert not pareto.is_operating_point(on_grid, {**neurons, "rate_budget": 0.33}, 0.0)
    assert not pareto.is_operating_point(on_grid, {**neurons, "penalty_adapt_gain": 2.0}, 0.0)
    int16 = pareto.operating_point(configs.load("table1", overrides={
        "convert": {"activation_scale": "int16"}}))
    assert int16["target_spikes"] is None and not pareto.is_operating_point(point, int16)
    assert pareto.describe_operating_point(int16).startswith("activation scale int16, v0 ")
    relayed = pareto.operating_point(configs.load("table1", overrides={
        "convert": {"target_spikes": 10, "relays": True, "sum_scale": "min", "allocation": "uniform"},
        "finetune": {"spike_penalty": None, "max_events_per_mac": None},
        "operating_point": {"front": "f", "why": "w"}}))
    assert pareto.describe_operating_point(relayed) == (
        "target 10 spikes at the 99.9th percentile, v0 0.5, T 1, no spike penalty, relays after "
        "sums (min sum scale); chosen from f (w)")
    allocated = pareto.operating_point(configs.load("table3", overrides={
        "convert": {"allocation": "events"}, "operating_point": {"front": "f", "why": "w"}}))
    assert allocated["allocation"] == "events"
    assert pareto.describe_operating_point(allocated).endswith(
        "relays after sums (geometric sum scale), per-layer targets (events: least modelled "
        "rounding noise at the same expected events); chosen from f (w)")
    measured = pareto.operating_point(configs.load("table3", overrides={
        "convert": {"allocation": "measured"}, "operating_point": {"front": "f", "why": "w"}}))
    assert "per-layer targets (measured: least measured rounding noise at the same expected " \
        "events)" in pareto.describe_operating_point(measured)


@pytest.mark.parametrize("section, expected", [
    ({"front": ""}, "front must be a non-empty string"),
    ({"front": 3}, "front must be a non-empty string"),
    ({"fronts": "x"}, "unknown keys ['fronts']"),
    ("make pareto", "expected a mapping"),
])
def test_bad_operating_point_names_the_file_and_key(section, expected):
    from kspikese import config as configs

    with pytest.raises(ConfigError, match="table1.yaml") as info:
        configs.load("table1", overrides={"operating_point": section})
    assert "operating_point" in str(info.value) and expected in str(info.value)


def test_every_table_states_its_operating_point():
    from kspikese import config as configs

    for table in ("table1", "table2", "table3", "table4"):
        op = pareto.operating_point(configs.load(table))
        assert op["front"], f"{table}.yaml: no operating_point: front"
