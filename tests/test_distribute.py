"""tf.distribute helpers: strategy names, TF_CONFIG of local workers, the launcher's exit status."""

import json

import numpy as np
import pytest

from kspikese import distribute


def test_tf_config_describes_a_local_cluster():
    ports = distribute.free_ports(3)
    assert len(set(ports)) == 3
    cfg = json.loads(distribute.tf_config(ports, 2))
    assert cfg["cluster"]["worker"] == [f"127.0.0.1:{p}" for p in ports]
    assert cfg["task"] == {"type": "worker", "index": 2}


def test_strategy_errors_say_what_is_missing(monkeypatch):
    with pytest.raises(distribute.StrategyError, match="expected one of default, mirrored, multi-worker"):
        distribute.make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distribute.StrategyError, match="needs TF_CONFIG"):
        distribute.make_strategy("multi-worker")
    with pytest.raises(distribute.StrategyError, match="--workers: expected at least 2"):
        distribute.launch(["--help"], 1)


def test_default_strategy_writes_and_keeps_the_model():
    import tensorflow as tf

    strategy = distribute.make_strategy("default")
    assert distribute.is_writer(strategy) and distribute.task_of(strategy) == (None, 0)
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    assert distribute.replica_model(model, strategy) is model


def test_launcher_returns_the_first_failure_and_success(tmp_path):
    assert distribute.launch(["--help"], 2, timeout=120, log_dir=tmp_path / "ok") == 0
    assert (tmp_path / "ok" / "worker-1.log").read_text().startswith("usage")
    assert distribute.launch(["no-such-command"], 2, timeout=120, log_dir=tmp_path / "bad") == 2


def test_a_killed_worker_is_reported_as_a_shell_would(tmp_path):
    # a worker killed by SIGKILL (returncode -9) -> 128 + 9; the other worker is stopped
    argv = ["-c", "import os, signal, time; "
            "os.kill(os.getpid(), signal.SIGKILL) if '\"index\": 1' in os.environ['TF_CONFIG'] "
            "else time.sleep(60)"]
    import sys
    import time
    from unittest import mock

    real_popen = distribute.subprocess.Popen

    def popen(cmd, **kwargs):  # run the snippet instead of `python -m kspikese ...`
        return real_popen([sys.executable, *argv], **kwargs)

    t0 = time.monotonic()
    with mock.patch.object(distribute.subprocess, "Popen", popen):
        assert distribute.launch(["ignored"], 2, timeout=120, log_dir=tmp_path) == 128 + 9
    assert time.monotonic() - t0 < 30  # the sleeping worker was stopped, not waited for


# --------------------------------------------------------------------- the command line options
@pytest.mark.parametrize("extra, message", [
    (["--cpu-replicas", "2"], "--cpu-replicas goes with --strategy mirrored, not default"),
    (["--strategy", "mirrored", "--cpu-replicas", "1"],
     "--cpu-replicas: expected at least 2 logical CPUs, got 1"),
    (["--workers", "2"], "--workers goes with --strategy multi-worker, not default"),
    (["--strategy", "multi-worker", "--workers", "1"],
     "--workers: expected at least 2 local workers, got 1"),
    (["--strategy", "multi-worker", "--workers", "3"],
     "batch_size: the global batch of 2 does not split evenly over 3 workers"),
    (["--strategy", "multi-worker"], "--strategy multi-worker needs TF_CONFIG"),
    (["--metric-workers", "0"], "--metric-workers must be at least 1, got 0"),
])
def test_strategy_options_are_checked_before_anything_is_made(tmp_path, capsys, monkeypatch,
                                                               extra, message):
    from kspikese.cli import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    results = tmp_path / "results"
    assert main(["reproduce", "table1", "--quick", "--results", str(results), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kspikese reproduce: error: ") and len(err.strip().splitlines()) == 1
    assert message in err, err
    assert not results.exists()


def test_workers_refuse_an_existing_cluster(tmp_path, capsys, monkeypatch):
    from kspikese.cli import main

    monkeypatch.setenv("TF_CONFIG", distribute.tf_config([1234, 1235], 0))
    assert main(["reproduce", "table1", "--quick", "--results", str(tmp_path / "r"),
                 "--strategy", "multi-worker", "--workers", "2"]) == 2
    assert "TF_CONFIG is already set" in capsys.readouterr().err


def test_each_local_worker_runs_the_same_reproduce_command():
    from kspikese import experiment
    from kspikese.cli import build_parser

    args = build_parser("reproduce").parse_args(
        ["reproduce", "table3", "--quick", "--seed", "4", "--data-dir", "d", "--results", "r",
         "--strategy", "multi-worker", "--workers", "2", "--metric-workers", "1"])
    assert experiment.worker_argv(args) == [
        "reproduce", "table3", "--seed", "4", "--data", "default", "--results", "r",
        "--profile", "cpu", "--metric-workers", "1", "--strategy", "multi-worker",
        "--data-dir", "d", "--quick"]


# ------------------------------------------------------------------ a non-chief's run folder
class _Tiny:
    """A stand-in model: kspikese.models.save_model is patched to write its name."""


def test_a_non_writer_never_touches_the_chiefs_run_folder(tmp_path, monkeypatch):
    import json

    from kspikese import models
    from kspikese.runs import RunFolder

    saved = []

    def save_model(model, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("model")
        saved.append(path)

    monkeypatch.setattr(models, "save_model", save_model)
    fps = {"ann": "a1", "convert": "c1", "random": "r1", "finetune": "f1"}
    folder = tmp_path / "run"
    assert not RunFolder(folder, fps, writer=False).dir.exists()  # opening creates nothing
    chief = RunFolder(folder, fps)
    chief.stage("ann", lambda f: _Tiny())
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    worker = RunFolder(folder, fps, force=True, writer=False)  # force: redo, but delete nothing
    assert not worker.stage_done("ann")
    made = []
    worker.stage("convert", lambda f: made.append(f) or _Tiny())
    assert made == [folder]  # trains in the chief's folder (its checkpoints go to scratch)
    assert worker.path("convert") == saved[-1] and not str(saved[-1]).startswith(str(folder))
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert json.loads((folder / "run.json").read_text())["stages"].keys() == {"ann"}


# ------------------------------------------------------------- dynamic mixing, per replica
def test_each_worker_mixes_exactly_its_replicas_share_of_every_global_batch(tmp_path):
    import tensorflow as tf

    from kspikese.corpus import open_corpus
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path, (6, 2, 2), seed=0)
    cfg = {"recipe": "vctk-like", "frame_len": 1024, "batch_size": 4,
           "data": {"train": {"mixing": "dynamic", "examples_per_epoch": 10}}}
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        corpus = open_corpus(cfg, "default", data_dir=tmp_path, seed=0)
    whole = [b[0] for b in corpus.training_stream(3).as_numpy_iterator()]  # batches of 4, 4, 2
    dataset_fn, steps = corpus.replica_stream(3)
    assert steps == 2  # whole global batches only
    # 2 workers x 2 replicas: each worker yields, step after step, a batch for each replica
    shares = [[b[0] for b in dataset_fn(tf.distribute.InputContext(2, w, 4)).as_numpy_iterator()]
              for w in range(2)]
    assert [len(s) for s in shares] == [4, 4] and shares[0][0].shape == (1, 1024, 1)
    for k in range(steps):
        step = np.concatenate([shares[w][2 * k + r] for w in range(2) for r in range(2)])
        assert np.array_equal(step, whole[k])
    cfg["data"]["train"] = None  # fixed mixtures: every worker reads the stream, keeps its share
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert open_corpus(cfg, "default", data_dir=tmp_path, seed=0).replica_stream(3) is None
