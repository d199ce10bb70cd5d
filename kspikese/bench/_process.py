"""Child processes for benchmarks of process-wide switches (op determinism, the CPU allocator).

TensorFlow reads such switches once per process, so a benchmark times each setting in a fresh
``python -m <module> ARGS...`` child that prints its result as JSON on its last stdout line.
"""

import json
import os
import subprocess
import sys


def run_child(module, args, env=None):
    """Run ``python -m module *args`` with ``env`` added to this process's environment and
    return the JSON its last stdout line holds; ``RuntimeError`` with the child's stderr if it
    fails."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
    if done.returncode:
        raise RuntimeError(f"benchmark child {' '.join(cmd[2:])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
