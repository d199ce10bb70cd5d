"""The CPU-allocator benchmark and the allocator ``import kspikese`` picks."""

import os
import subprocess
import sys

import pytest


def _row(s, sys_s, faults, rss, weights="abc"):
    return {"s_per_step": s, "sys_s_per_step": sys_s, "faults_per_step": faults,
            "peak_rss_mb": rss, "weights": weights}


def test_table_reports_medians_ratio_and_whether_the_weights_agree():
    from kspikese.bench.allocator import table

    result = {"rounds": 3, "steps": 8, "tables": {
        "table1": {"bfc": [_row(0.9, 0.2, 1000, 900), _row(0.8, 0.1, 3000, 1100),
                           _row(1.0, 0.3, 2000, 1000)],
                   "malloc": [_row(1.2, 1.0, 90000, 700), _row(1.6, 0.5, 50000, 800),
                              _row(1.4, 0.7, 70000, 900)]},
        "table3": {"bfc": [_row(2.0, 0.1, 10, 500)],
                   "malloc": [_row(3.0, 0.2, 20, 400, weights="abd")]}}}
    text = table(result)
    # table1 medians: BFC 0.9 s, malloc 1.4 s -> 1.56; system 0.20 / 0.70; faults 2,000 / 70,000
    assert "| table1 | 0.900 | 1.400 | 1.56 | 0.20 / 0.70 | 2,000 / 70,000 | 1,000 / 800 | yes |" in text
    assert "| table3 | 2.000 | 3.000 | 1.50 |" in text and text.split("\n")[3].endswith("| NO |")
    assert "TF_CPU_ALLOCATOR_USE_BFC=true|false" in text


@pytest.mark.parametrize("preset, expected", [(None, "true"), ("false", "false")])
def test_import_picks_the_pool_allocator_unless_the_environment_says(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if preset is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = preset
    done = subprocess.run(
        [sys.executable, "-c", "import os, sys, kspikese; "
         "print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'], 'tensorflow' in sys.modules)"],
        capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == [expected, "False"]  # set before TensorFlow is imported


def test_child_usage_error_names_the_arguments():
    done = subprocess.run([sys.executable, "-m", "kspikese.bench.allocator", "table9", "2", "1",
                           ""], capture_output=True, text=True)
    assert done.returncode != 0
    assert "table1|table3" in done.stderr and "STEPS" in done.stderr


@pytest.mark.slow
def test_both_allocators_train_to_the_same_weights(tmp_path):
    """Two children, one per allocator, on a fake corpus, train to bit-identical weights."""
    from kspikese.bench._process import run_child
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path / "data")
    runs = {value: run_child("kspikese.bench.allocator", ["table1", 2, 1, tmp_path / "data"],
                             env={"TF_CPU_ALLOCATOR_USE_BFC": value}) for value in ("true", "false")}
    assert runs["true"]["weights"] == runs["false"]["weights"]
    assert all(r["s_per_step"] > 0 and r["peak_rss_mb"] > 100 for r in runs.values())
