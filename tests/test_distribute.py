"""tf.distribute helpers: strategy names, TF_CONFIG of local workers, the launcher's exit status."""

import json

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
