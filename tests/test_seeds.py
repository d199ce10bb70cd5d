"""`kspikese seeds`: mean and sample standard deviation over seeds, checked by hand."""

import json

import pytest

from kspikese import seeds
from kspikese.cli import main

COLS = ["Noisy", "ANN", "Random", "Converted SNN", "SNN"]


def payload(seed, ann, converted, snn, stoi_ann=0.8, profile="cpu"):
    metrics = {"Noisy": {"si_snr": 6.0, "stoi": 0.818}, "ANN": {"si_snr": ann, "stoi": stoi_ann},
               "Random": {"si_snr": -30.0 + seed, "stoi": 0.6},
               "Converted SNN": {"si_snr": converted, "stoi": 0.79},
               "SNN": {"si_snr": snn, "stoi": 0.80}}
    return {"table": "table1", "title": "t", "seed": seed, "columns": COLS, "profile": profile,
            "quick": False, "metrics": metrics,
            "data": {"corpus": "c", "recipe": "vctk-like", "test_utterances": 40,
                     "train_utterances": 10, "valid_utterances": 4}}


def three():
    return [payload(0, 8.0, 7.0, 7.5, 0.80), payload(1, 9.0, 8.5, 8.7, 0.82),
            payload(2, 10.0, 9.0, 9.9, 0.84)]


def test_mean_and_sample_sd_by_hand():
    s = seeds.summarise(three())
    assert s["seeds"] == [0, 1, 2] and s["columns"] == COLS
    ann = s["metrics"]["ANN"]["si_snr"]
    assert ann["mean"] == pytest.approx(9.0) and ann["sd"] == pytest.approx(1.0)  # n - 1
    assert ann["values"] == [8.0, 9.0, 10.0]
    noisy = s["metrics"]["Noisy"]["si_snr"]  # the same test utterances for every seed
    assert noisy["mean"] == 6.0 and noisy["sd"] == 0.0
    # the STOI column: 0.80, 0.82, 0.84 -> sd 0.02
    assert s["metrics"]["ANN"]["stoi"]["sd"] == pytest.approx(0.02)


def test_differences_are_paired_within_a_seed():
    d = seeds.summarise(three())["differences"]
    assert list(d) == ["ANN − Noisy", "Converted SNN − ANN", "SNN − ANN"]
    gain = d["ANN − Noisy"]["si_snr"]
    assert gain["values"] == pytest.approx([2.0, 3.0, 4.0]) and gain["sd"] == pytest.approx(1.0)
    # SNN - ANN: -0.5, -0.3, -0.1: mean -0.3, sd 0.2, far smaller than either column's sd (1.0)
    gap = d["SNN − ANN"]["si_snr"]
    assert gap["mean"] == pytest.approx(-0.3) and gap["sd"] == pytest.approx(0.2)
    assert d["Converted SNN − ANN"]["si_snr"]["mean"] == pytest.approx((-1.0 - 0.5 - 1.0) / 3)


def test_cells_and_rows():
    s = seeds.summarise(three())
    assert seeds.cell(s["metrics"]["ANN"]["si_snr"], "si_snr") == "9.00 ± 1.00"
    assert seeds.cell(s["metrics"]["ANN"]["stoi"], "stoi") == "0.820 ± 0.020"
    assert seeds.cell(seeds.mean_sd([7.0]), "si_snr") == "7.00"  # one value: no spread
    rows = seeds.csv_rows(s)
    assert len(rows) == (5 + 3) * 2  # (columns + differences) x metrics
    assert ["si_snr", "ANN", 9.0, 1.0, 8.0, 9.0, 10.0] in [
        [r[0], r[1], pytest.approx(r[2]), pytest.approx(r[3]), *r[4:]] for r in rows]
    md = seeds.markdown(s, three())
    assert "over seeds 0, 1, 2" in md and "recipe `vctk-like`" in md and "| 9.00 ± 1.00 |" in md
    assert "| 0 | 6.00 | 8.00 | -30.00 | 7.00 | 7.50 | – |" in md  # no recorded run time


def test_runs_that_differ_are_refused():
    runs = three()
    runs[2] = payload(2, 10.0, 9.0, 9.9, profile="paper")
    with pytest.raises(ValueError, match="seeds 0 and 2 differ in 'profile'"):
        seeds.summarise(runs)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "3"], "--seeds: give at least two seeds"),
    (["--seeds", "1", "1"], "--seeds: each seed once"),
    (["--seeds", "0", "-1"], "--seeds: seeds are non-negative"),
    (["--seeds", "0", "1", "--metric-workers", "0"], "--metric-workers must be at least 1"),
])
def test_bad_arguments_are_named_before_anything_is_created(tmp_path, capsys, argv, message):
    results = tmp_path / "results"
    assert main(["seeds", "table1", *argv, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kspikese seeds: error: ") and message in err, err
    assert not results.exists()


def test_write_summary_files(tmp_path):
    seeds.write_summary(tmp_path, three())
    out = tmp_path / "table1"
    got = json.loads((out / "seeds.json").read_text())
    assert got["metrics"]["ANN"]["si_snr"]["sd"] == pytest.approx(1.0)
    assert got["data"]["recipe"] == "vctk-like"
    header = (out / "seeds.csv").read_text().splitlines()[0]
    assert header == "metric,column,mean,sd,seed0,seed1,seed2"


def test_the_command_runs_each_seed_in_order_then_summarises(tmp_path, monkeypatch, capsys):
    """The loop of `kspikese seeds` (the pipeline stubbed; the slow test in test_experiment.py
    runs it for real): one reproduce per seed with that seed, progress lines, the summary."""
    from kspikese import pipeline

    calls = []

    def fake_reproduce(table, *, seed, results, profile, quick, **kwargs):
        calls.append((table, seed, profile, quick))
        return {0: payload(0, 8.0, 7.0, 7.5), 5: payload(5, 9.0, 8.5, 8.7)}[seed]

    monkeypatch.setattr(pipeline, "reproduce", fake_reproduce)
    assert main(["seeds", "table1", "--seeds", "0", "5", "--results", str(tmp_path)]) == 0
    assert calls == [("table1", 0, "cpu", False), ("table1", 5, "cpu", False)]
    out = capsys.readouterr().out
    assert "[seeds] table1: seed 0 (1 of 2)" in out and "[seeds] table1: seed 5 (2 of 2)" in out
    got = json.loads((tmp_path / "table1" / "seeds.json").read_text())
    assert got["seeds"] == [0, 5]
    assert got["differences"]["ANN − Noisy"]["si_snr"]["values"] == pytest.approx([2.0, 3.0])
