"""``kspikese ship``: provenance of shipped models, the table path end to end, and refusals."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
from enhance_models import gain_bias_model
from kspikese import pipeline, publish, shipped
from kspikese.cli import main


def test_card_fields_carry_data_config_seed_and_the_columns_metrics():
    table = {"table": "table1", "data": {"corpus": "default", "test_utterances": 40},
             "metrics": {"Wave-U-Net": {"si_snr": 9.5}, "SNN-Wave-U-Net": {"si_snr": 9.1}}}
    run = SimpleNamespace(cfg={"model": "wave_u_net", "ann": {"lr": 1e-3}}, seed=3)
    fields = publish.card_fields(table, run, "SNN-Wave-U-Net")
    assert fields["test_metrics"] == {"si_snr": 9.1}
    assert fields["data"]["test_utterances"] == 40
    assert fields["config"]["ann"]["lr"] == 1e-3 and fields["seed"] == 3
    assert "SNN-Wave-U-Net" in fields["test_metrics_source"]


def test_missing_table_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"table1\.json.*make reproduce-table1"):
        publish.ship("table1", results=tmp_path)


def write_table(results, table="table3", quick=False, seed=0):
    (results / table).mkdir(parents=True, exist_ok=True)
    payload = {"table": table, "quick": quick, "seed": seed, "data": {"corpus": "default (x)"},
               "metrics": {"Wave-U-Net": {"si_snr": 5.0}, "SNN-Wave-U-Net": {"si_snr": 4.0}}}
    (results / table / f"{table}.json").write_text(json.dumps(payload))


def test_quick_or_other_seed_tables_are_not_shipped(tmp_path):
    write_table(tmp_path, quick=True)
    with pytest.raises(ValueError, match="quick run"):
        publish.ship("table3", results=tmp_path)
    write_table(tmp_path, quick=False, seed=1)
    with pytest.raises(ValueError, match="another seed"):
        publish.ship("table3", results=tmp_path, seed=0)
    # --quick: never into the package folder, and only a QUICK table
    with pytest.raises(ValueError, match="never shipped into the package"):
        publish.ship("table3", results=tmp_path, quick=True)
    write_table(tmp_path, quick=False, seed=0)
    with pytest.raises(ValueError, match="a full run, but --quick was given"):
        publish.ship("table3", results=tmp_path, quick=True, weights_dir=tmp_path / "w")
    with pytest.raises(FileNotFoundError, match="table3-default-seed0: no such run folder"):
        publish.ship("table3", results=tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing was created


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """A finished QUICK table1 run of two tiny models, and a corpus of three test utterances."""
    results = tmp_path / "results"
    write_table(results, "table1", quick=True)
    run_dir = results / "runs" / "table1-quick-default-seed0"
    paths = {"ann": run_dir / "ann" / "ann.keras",
             "finetune": run_dir / "finetune" / "finetuned.keras"}
    for stage, gain in (("ann", 0.5), ("finetune", 0.7)):
        paths[stage].parent.mkdir(parents=True)
        gain_bias_model(gain, 0.0, frame=1024).save(paths[stage])
    (run_dir / "run.json").write_text(json.dumps({"stages": {}}))
    done = {"ann": True, "finetune": True}
    run = SimpleNamespace(cfg={"model": "wave_u_net", "eval": {"overlap": 0.25, "batch_size": 2}},
                          seed=0, dir=run_dir, path=paths.__getitem__,
                          stage_done=done.__getitem__)
    rng = np.random.default_rng(0)
    test = []
    for k in range(3):
        clean = (0.3 * rng.standard_normal(3000)).astype(np.float32)
        test.append((f"u{k}", clean, clean + (0.05 * rng.standard_normal(3000)).astype(np.float32)))
    corpus = SimpleNamespace(test_utterances=lambda: test)
    calls = []

    def open_run(table, **kwargs):
        calls.append((table, kwargs))
        return run, corpus

    monkeypatch.setattr(pipeline, "open_run", open_run)
    return SimpleNamespace(results=results, done=done, calls=calls, tmp=tmp_path)


def test_a_quick_table_ships_both_models_with_the_tables_inference_settings(fake_run):
    out = fake_run.tmp / "weights"
    cards = publish.ship("table1", results=fake_run.results, quick=True, weights_dir=out)
    assert [c["name"] for c in cards] == ["wave-u-net", "snn-wave-u-net"]
    assert fake_run.calls[0][1]["quick"] is True
    assert sorted(shipped.available(out)) == ["snn-wave-u-net", "wave-u-net"]
    ann, snn = cards
    assert ann["source_checkpoint"] == "runs/table1-quick-default-seed0/ann/ann.keras"
    assert snn["source_checkpoint"] == "runs/table1-quick-default-seed0/finetune/finetuned.keras"
    assert ann["test_metrics"] == {"si_snr": 5.0} and snn["test_metrics"] == {"si_snr": 4.0}
    check = snn["float16_check"]
    assert (check["files"], check["overlap"], check["batch_size"]) == (3, 0.25, 2)
    assert check["passed"] and abs(check["delta_db"]) < publish.FLOAT16_TOLERANCE_DB
    assert sorted(p.name for p in out.iterdir()) == ["snn-wave-u-net.h5", "snn-wave-u-net.json",
                                                    "wave-u-net.h5", "wave-u-net.json"]
    assert ann["peers"] == snn["peers"] and set(ann["peers"]["test_metrics"]) == {"rnnoise"}


def test_peer_metrics_score_the_peer_or_say_how_to_install_it(monkeypatch):
    from kspikese import baselines
    from kspikese.metrics.snr import si_snr

    rng = np.random.default_rng(1)
    clean = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    noisy = clean + (0.1 * rng.standard_normal(4000)).astype(np.float32)
    monkeypatch.setitem(baselines.BASELINES, "rnnoise", lambda x: 0.5 * x)  # SI-SNR is scale-free
    got = publish.peer_metrics([(noisy, clean)], metrics=["si_snr"])
    assert got["rnnoise"]["si_snr"] == pytest.approx(si_snr(clean, noisy), abs=1e-4)

    def missing(x):
        raise baselines.BaselineUnavailable("RNNoise needs pip install --no-deps pyrnnoise")

    monkeypatch.setitem(baselines.BASELINES, "rnnoise", missing)
    assert publish.peer_metrics([(noisy, clean)]) == {
        "rnnoise": {"unavailable": "RNNoise needs pip install --no-deps pyrnnoise"}}


def test_a_run_whose_models_do_not_match_the_config_is_refused(fake_run):
    fake_run.done["finetune"] = False
    with pytest.raises(ValueError, match="finetune stage.*make reproduce-table1"):
        publish.ship("table1", results=fake_run.results, quick=True,
                     weights_dir=fake_run.tmp / "w")
    assert not (fake_run.tmp / "w").exists()


def test_cli_lists_ship_and_refuses_bad_arguments(tmp_path, capsys):
    assert main([]) == 0
    assert "ship" in capsys.readouterr().out
    assert main(["ship", "table2"]) == 2
    assert "table2 not shipped; choose from table1, table3" in capsys.readouterr().err
    assert main(["ship", "table1", "--results", str(tmp_path)]) == 1
    assert "make reproduce-table1" in capsys.readouterr().err
    assert main(["ship", "--quick", "--results", str(tmp_path)]) == 2
    assert "pass --weights-dir" in capsys.readouterr().err
    assert main(["ship", "--checkpoint", str(tmp_path)]) == 2
    assert "--checkpoint and --name go together" in capsys.readouterr().err
    assert main(["ship", "table1", "--checkpoint", str(tmp_path), "--name", "wave-u-net"]) == 2
    assert "not both" in capsys.readouterr().err
    (tmp_path / "card.json").write_text("[1, 2]")
    argv = ["ship", "--checkpoint", str(tmp_path), "--name", "wave-u-net"]
    assert main(argv + ["--card", str(tmp_path / "card.json")]) == 2
    assert "expected a JSON object" in capsys.readouterr().err
    assert main(argv + ["--overlap", "0.7"]) == 2
    assert "--overlap must be in [0, 0.5]" in capsys.readouterr().err
    assert main(argv + ["--weights-dir", str(tmp_path / "w")]) == 2
    assert "holds none of ['ann/ann.keras', 'ann.keras']" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
    with pytest.raises(SystemExit):
        main(["ship", "--checkpoint", str(tmp_path), "--name", "nosuch"])
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_a_card_names_its_checkpoint_from_the_runs_folder_on():
    label = publish.checkpoint_label
    assert label("/tmp/x/results/runs/table3-ship-default-seed0/ann/ann.keras") == \
        "runs/table3-ship-default-seed0/ann/ann.keras"
    # the innermost `runs` counts; outside a results tree only the file name is kept
    assert label("/home/u/runs/old/results/runs/t1/finetune/finetuned.keras") == \
        "runs/t1/finetune/finetuned.keras"
    assert label("/home/u/models/mine.keras") == "mine.keras"
