"""The op-determinism benchmark: step timing in a child process, the on / off table."""

import subprocess
import sys

import pytest


def test_table_reports_medians_and_their_ratio():
    from kspikese.bench.determinism import table

    result = {"rounds": 3, "steps": 6, "frame": 16384,
              "models": {"wave_u_net": {"on": [0.9, 1.5, 1.0], "off": [0.8, 0.7, 2.0], "batch": 8}}}
    text = table(result)
    # medians: on 1.0, off 0.8 -> ratio 1.25
    assert "| wave_u_net (8 x 16384) | 1.000 | 0.800 | 1.25 |" in text


def test_step_times_times_the_asked_steps():
    from kspikese.bench.determinism import step_times

    times = step_times("conv_tasnet", True, steps=2, batch=1, frame=512, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_child_usage_error_names_the_arguments():
    done = subprocess.run([sys.executable, "-m", "kspikese.bench.determinism", "resnet", "on",
                           "1", "1", "512"], capture_output=True, text=True)
    assert done.returncode != 0
    assert "wave_u_net|conv_tasnet" in done.stderr and "{on|off}" in done.stderr


@pytest.mark.slow
def test_quick_run_writes_the_table(tmp_path):
    from kspikese.bench.determinism import run

    text = run(tmp_path, quick=True)
    assert (tmp_path / "determinism.md").exists() and "conv_tasnet (4 x 4096)" in text
