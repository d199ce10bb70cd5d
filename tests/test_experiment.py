"""The pipeline end to end (QUICK mode on a tiny synthetic corpus): stages, caching, table files."""

import json
import re

import numpy as np
import pytest

from kspikese import config as configs
from kspikese import losses
from kspikese.cli import main
from kspikese.corpus import CorpusError, check_data_arguments
from kspikese.runs import TableRun
from kspikese.data.testing import make_fake_corpus


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    make_fake_corpus(root / "data", n_per_split=(6, 2, 2), seconds=1.5, seed=0)
    args = ["reproduce", "table1", "--quick", "--results", str(root / "results"),
            "--data-dir", str(root / "data"), "--metric-workers", "1"]
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
    assert table["inference"] == {"frame_len": 4096, "overlap": 0.25, "batch_size": 8}
    assert table["data"]["synthetic"] is True and table["data"]["test_utterances"] == 2
    assert set(table["metrics"]) == set(table["columns"])
    for column in table["columns"]:
        assert np.isfinite(table["metrics"][column]["si_snr"]), column
    assert table["paper"]["SNN-Wave-U-Net"]["si_snr"] == 15.33
    md = (out / "table1.md").read_text()
    assert "SYNTHETIC" in md and "NOT our data" in md
    # the input-SNR breakdown holds every scored test utterance once
    assert "by the noisy input's SI-SNR" in md
    assert sum(row[1] for row in table["si_snr_by_input_snr"]) == 2
    cpu = configs.load("table1", quick=True)  # the file's cpu recipe; `precision: auto` resolved
    precision = cpu["ann"].get("precision", "float32")
    assert table["ann_precision"] == precision and f"the ANN trained in `{precision}`" in md
    assert table["ann_init"] is None
    ann_loss = cpu["ann"].get("loss")
    assert table["losses"]["ann"] == losses.describe(ann_loss) and f"on the loss `{losses.describe(ann_loss)}`" in md
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
    changed = configs.load("table1", quick=True, overrides={"finetune": {"lr": 5e-4}})
    run = TableRun(changed, results=root / "results")
    fps = run.fingerprints()
    assert run.stage_done("ann") and run.stage_done("convert") and run.stage_done("random")
    assert not run.stage_done("finetune")
    same = TableRun(configs.load("table1", quick=True), results=root / "results")
    assert fps["ann"] == same.fingerprints()["ann"]
    assert fps["finetune"] != same.fingerprints()["finetune"]


def test_bad_data_source_is_named(tmp_path):
    with pytest.raises(CorpusError, match="VCTK_ROOT"):
        check_data_arguments("vctk")
    with pytest.raises(CorpusError, match="expected default, vctk or timit"):
        check_data_arguments("libri")
    with pytest.raises(CorpusError, match="--timit-root .*: no such folder"):
        check_data_arguments("timit", timit_root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="--vctk-root .*empty: the folder is empty"):
        check_data_arguments("vctk", vctk_root=tmp_path / "empty")


@pytest.mark.parametrize("yaml_text, argv_extra, message", [
    (None, ["table99"], "unknown table 'table99'; known: table1, table2, table3, table4"),
    ("table: [1, 2\n", None, "not valid YAML"),
    ("table: t\ntitle: x\n", None, "missing required keys"),
    ("table: t\ntitle: x\nmodel: wave_u_net\nrecipe: vctk-like\nframe_len: 64\n"
     "ann: {lr: 0.1}\nconvert: {dt: 1}\nfinetune: {lr: 0.1, epochs: 1}\neval: {}\n",
     None, "`ann:` is missing \\['epochs'\\]"),
    (None, ["table1", "--data", "vctk"], "--data vctk needs --vctk-root"),
    (None, ["table1", "--data", "timit", "--timit-root", "/nonexistent/timit"],
     "--timit-root /nonexistent/timit: no such folder"),
])
def test_reproduce_reports_user_mistakes_in_one_line_before_creating_anything(
        tmp_path, capsys, yaml_text, argv_extra, message):
    results = tmp_path / "results"
    if yaml_text is not None:
        (tmp_path / "bad.yaml").write_text(yaml_text)
        argv_extra = [str(tmp_path / "bad.yaml")]
    assert main(["reproduce", *argv_extra, "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kspikese reproduce: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not results.exists()


@pytest.mark.slow  # about 80 s: the whole ω x scale grid on a QUICK run
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
            "--data-dir", str(root / "data"), "--metric-workers", "1"]
    assert main(args) == 0
    table = json.loads((root / "results" / "table3" / "table3.json").read_text())
    assert table["columns"] == ["Noisy", "ConvTasNet", "Random", "Converted SNN", "SNN-ConvTasNet"]
    assert table["omega"] == 1.0 and table["activation_scale"] == "data"
    for column in table["columns"]:
        assert np.isfinite(table["metrics"][column]["si_snr"]), column
    state = json.loads((root / "results" / "runs" / "table3-quick-default-seed0" / "ann"
                        / "state.json").read_text())
    assert all("val_si_snr" in row for row in state["history"])


def test_finetune_with_a_rate_budget_prices_against_the_runs_ann(quick_run, tmp_path):
    """``finetune: max_events_per_mac:`` redoes only stage 3, logs events per ANN MAC per epoch
    and keeps an epoch by the budget (here 1e-9: none is within, so the cheapest one)."""
    import shutil

    from kspikese import pipeline

    root, _ = quick_run
    shutil.copytree(root / "results", tmp_path / "results")
    run, _ = pipeline.ensure_models(
        "table1", quick=True, results=tmp_path / "results", data_dir=root / "data", verbose=0,
        overrides={"finetune": {"max_events_per_mac": 1e-9, "epochs": 2, "patience": 2}})
    state = json.loads((run.dir / "finetune" / "state.json").read_text())
    costs = [row["val_events_per_mac"] for row in state["history"]]
    assert len(costs) == 2 and all(0 < c < 50 for c in costs)
    assert state["best_epoch"] == 1 + int(np.argmin(costs))
    assert state["best_rank"] == [0.0, -min(costs)]


def test_a_run_of_another_profile_takes_the_finished_ann_it_shares(quick_run, tmp_path):
    """A stage with the same fingerprint is copied from a sibling run (its model and logs, not
    its checkpoints), never with --force, and only when the fingerprint matches."""
    import shutil

    root, _ = quick_run
    shutil.copytree(root / "results", tmp_path / "results")
    cfg = configs.load("table1", quick=True, overrides={"finetune": {"lr": 5e-4}})
    cfg["profile"] = "cheaper"  # another run folder of the same results
    done = TableRun(configs.load("table1", quick=True), results=tmp_path / "results")

    def must_not_train(folder):
        raise AssertionError(f"trained in {folder}")

    run = TableRun(cfg, results=tmp_path / "results")
    assert run.dir.name == "table1-quick-cheaper-default-seed0" and not run.stage_done("ann")
    ann = run.stage("ann", must_not_train)
    assert run.stage_done("ann") and run.state["stages"]["ann"]["from"] == done.dir.name
    assert run.history("ann") == done.history("ann") and len(run.history("ann")) > 0
    assert not list((run.dir / "ann").glob("ckpt-*")) and list((done.dir / "ann").glob("ckpt-*"))
    assert ann.count_params() > 0
    assert run.shared_stage("finetune") is None  # another learning rate: not the same stage
    again = TableRun(cfg, results=tmp_path / "results", force=True)
    with pytest.raises(AssertionError, match="trained in"):
        again.stage("ann", must_not_train)


def test_finetune_with_a_teacher_redoes_only_stage_3_and_loads_the_runs_ann(quick_run, tmp_path,
                                                                             capsys):
    """``finetune: teacher:`` is a stage-3 setting: the pipeline hands the run's ANN to the
    fine-tune (without it, it would refuse) and redoes nothing before it."""
    import shutil

    from kspikese import pipeline

    root, _ = quick_run
    shutil.copytree(root / "results", tmp_path / "results")
    capsys.readouterr()
    run, _ = pipeline.ensure_models(
        "table1", quick=True, results=tmp_path / "results", data_dir=root / "data", verbose=0,
        overrides={"finetune": {"teacher": 1.0}})
    out = capsys.readouterr().out
    assert "[stage 3]" in out and "[stage 1]" not in out and "[stage 2]" not in out
    assert run.stage_done("finetune") and run.cfg["finetune"]["teacher"] == 1.0


def test_score_reads_the_runs_models_on_the_validation_split(quick_run, tmp_path, capsys):
    """``kspikese score``: the noisy input and each stage on whole validation utterances through
    the inference path, equal to SI-SNR computed here by hand; cached on a second call; the test
    split shares the table's evaluation."""
    import shutil

    from kspikese import models, pipeline
    from kspikese.corpus import load_pairs
    from kspikese.metrics.snr import si_snr

    root, _ = quick_run
    shutil.copytree(root / "results", tmp_path / "results")
    results = tmp_path / "results"
    argv = ["score", "table1", "--quick", "--results", str(results), "--data-dir",
            str(root / "data"), "--metric-workers", "1", "--metrics", "si_snr,stoi",
            "--stages", "ann,finetune"]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("[eval]") == 3
    run_dir = results / "runs" / "table1-quick-default-seed0"
    payload = json.loads((run_dir / "scores-valid.json").read_text())
    assert payload["columns"] == ["Noisy", "Wave-U-Net", "SNN-Wave-U-Net"]
    assert payload["split"] == "valid" and set(payload["means"]["Noisy"]) == {"si_snr", "stoi"}
    run, corpus = pipeline.open_run("table1", quick=True, results=results,
                                    data_dir=root / "data", _writer=False)
    valid = load_pairs(corpus.valid)
    assert [r[0] for r in payload["si_snr_by_voice"]][-1] == "all"
    assert sum(r[1] for r in payload["si_snr_by_input_snr"]) == len(valid)
    noisy = np.mean([si_snr(c, n) for _, c, n in valid])
    assert payload["means"]["Noisy"]["si_snr"] == pytest.approx(noisy, abs=1e-4)
    ann = models.load_model(run.path("ann"))
    outs = pipeline.enhance_all(ann, [n for _, _, n in valid], run.cfg)
    by_hand = np.mean([si_snr(c, o) for (_, c, _), o in zip(valid, outs)])
    assert payload["means"]["Wave-U-Net"]["si_snr"] == pytest.approx(by_hand, abs=1e-3)
    md = (run_dir / "scores-valid.md").read_text()
    assert "| SI-SNR (dB) |" in md and "SYNTHETIC" in md and "the validation split, 2 whole" in md
    assert main(argv) == 0 and "[eval]" not in capsys.readouterr().out  # cached
    # the test split with the table's metrics is the table's own evaluation, read from eval/
    assert main(argv[:-4] + ["--split", "test"]) == 0
    assert "[eval]" not in capsys.readouterr().out
    table = json.loads((results / "table1" / "table1.json").read_text())
    test = json.loads((run_dir / "scores-test.json").read_text())
    assert test["means"]["SNN-Wave-U-Net"]["si_snr"] == pytest.approx(
        table["metrics"]["SNN-Wave-U-Net"]["si_snr"])
    # other measures on the test split: computed into eval-test/, the table's eval/ untouched
    before = {p.name: p.read_bytes() for p in (run_dir / "eval").glob("*.json")}
    assert main(argv + ["--split", "test"]) == 0
    assert capsys.readouterr().out.count("[eval]") == 3
    assert {p.name: p.read_bytes() for p in (run_dir / "eval").glob("*.json")} == before
    assert sorted(p.name for p in (run_dir / "eval-test").iterdir()) == [
        "Noisy.json", "SNN-Wave-U-Net.json", "Wave-U-Net.json"]


@pytest.mark.parametrize("extra, message", [
    (["--stages", "ann,teacher"], "--stages: expected names from ann, convert, random, finetune"),
    (["--force"], "--force: score trains nothing"),
    (["--metrics", "si_snr,mos"], "--metrics: .*unknown"),
    (["--seed", "5"], "no run folder .*table1-quick-default-seed5 .*kspikese reproduce table1"),
])
def test_score_names_what_it_cannot_score_before_writing(quick_run, capsys, extra, message):
    root, _ = quick_run
    before = sorted(p.name for p in (root / "results" / "runs").iterdir())
    argv = ["score", "table1", "--quick", "--results", str(root / "results"), "--data-dir",
            str(root / "data"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kspikese score: error: ") and re.search(message, err), err
    assert sorted(p.name for p in (root / "results" / "runs").iterdir()) == before


def test_score_refuses_a_stage_the_config_has_not_made(quick_run, tmp_path):
    from kspikese.score import ScoreError, score_run

    root, _ = quick_run
    text = (configs.EXPERIMENTS_DIR / "table1.yaml").read_text()
    assert "\nfinetune: {lr: 0.00001," in text
    changed = tmp_path / "table1.yaml"  # the same table with another fine-tune rate
    changed.write_text(text.replace("\nfinetune: {lr: 0.00001,", "\nfinetune: {lr: 0.00002,"))
    with pytest.raises(ScoreError, match="stage finetune is not done"):
        score_run(str(changed), quick=True, results=root / "results", data_dir=root / "data")
    assert not list((root / "results" / "runs" / "table1-quick-default-seed0").glob("scores-*"))


def test_cached_result_reads_the_first_file_made_under_the_fingerprint(tmp_path):
    """A column's cached scores are read only from a file written under the same fingerprint;
    missing files and other fingerprints are passed over, in the order given."""
    import json

    from kspikese.pipeline import cached_result

    old, new, other = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "other.json"
    old.write_text(json.dumps({"fingerprint": ["a", "x"], "means": {"si_snr": 1.0}}))
    new.write_text(json.dumps({"fingerprint": ["a", "y"], "means": {"si_snr": 2.0}}))
    other.write_text(json.dumps({"fingerprint": ["a", "y"], "means": {"si_snr": 3.0}}))
    missing = tmp_path / "missing.json"
    assert cached_result([missing, old, new, other], ["a", "y"])["means"]["si_snr"] == 2.0
    assert cached_result([old], ["a", "x"])["means"]["si_snr"] == 1.0
    assert cached_result([missing, old], ["a", "y"]) is None


@pytest.mark.slow  # about 40 s: trains a second QUICK run (tests/test_seeds.py covers the rest)
def test_seeds_reuse_a_finished_run_and_summarise(quick_run, tmp_path, capsys):
    """`kspikese seeds` takes seed 0 from its finished run, trains seed 1, and writes the
    mean ± SD table; the noisy column is the same input for every seed (SD 0)."""
    import shutil

    root, args = quick_run
    name = "table1-quick-default-seed0"
    shutil.copytree(root / "results" / "runs" / name, tmp_path / "runs" / name)
    first = json.loads((root / "results" / "table1" / "table1.json").read_text())
    capsys.readouterr()
    assert main(["seeds", "table1", "--quick", "--seeds", "0", "1", "--results", str(tmp_path),
                 "--data-dir", str(root / "data"), "--metric-workers", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("[stage 1]") == 1  # seed 1 only
    summary = json.loads((tmp_path / "table1" / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1]
    ann = summary["metrics"]["Wave-U-Net"]["si_snr"]
    assert ann["values"][0] == pytest.approx(first["metrics"]["Wave-U-Net"]["si_snr"])
    assert summary["metrics"]["Noisy"]["si_snr"]["sd"] == pytest.approx(0.0, abs=1e-9)
    assert (tmp_path / "runs" / "table1-quick-default-seed1" / "run.json").exists()
    assert "over seeds 0, 1" in (tmp_path / "table1" / "seeds.md").read_text()
