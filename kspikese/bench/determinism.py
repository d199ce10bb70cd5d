"""Benchmark: what TensorFlow's op determinism costs in training-step time.

kspikese seeds every run and turns on ``tf.config.experimental.enable_op_determinism()``
(:func:`kspikese.training.set_seed`), so the same command gives the same numbers.  This measures
the price: one ANN training step (Adam, SNR loss, the tables' batch: Wave-U-Net 8 and Conv-TasNet
4 frames of 16,384 samples) with determinism on and off.

The switch is process-wide, so each measurement is a child process (``python -m
kspikese.bench.determinism CHILD``) that builds the model, warms up and times ``steps`` steps.
The children alternate on / off / on / off ... for ``rounds`` rounds, so a change in the shared
machine's load hits both settings alike; each setting's time is the median over its rounds of the
per-round median step time, and the table gives ``on / off``.
"""

import json
import statistics
import sys
import time

import numpy as np

from kspikese import files
from kspikese.bench._process import run_child

FRAME = 16384
MODELS = {"wave_u_net": 8, "conv_tasnet": 4}  # model -> the tables' batch size


def step_times(model_name, deterministic, steps, batch, frame, warmup=2):
    """Seconds per training step of ``model_name``'s ANN (``steps`` timed after ``warmup``).

    Runs in the calling process and switches op determinism for the whole process: call it in a
    child (this module's ``__main__``)."""
    import tensorflow as tf

    from kspikese import models
    from kspikese.bench.models import train_step

    tf.keras.utils.set_random_seed(0)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    build = {"wave_u_net": models.build_wave_u_net, "conv_tasnet": models.build_conv_tasnet}
    model = build[model_name](frame_len=frame)
    rng = np.random.default_rng(0)
    y = tf.constant(0.1 * rng.standard_normal((batch, frame, 1)), tf.float32)
    x = y + tf.constant(0.05 * rng.standard_normal((batch, frame, 1)), tf.float32)
    step = train_step(model)

    out = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step(x, y).numpy()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def _child(model_name, deterministic, steps, batch, frame):
    return run_child("kspikese.bench.determinism",
                     [model_name, "on" if deterministic else "off", steps, batch, frame])


def measure(quick=False):
    """``{model: {"on": [median per round], "off": [...], "batch": b}}`` plus the settings."""
    rounds, steps, frame = (1, 2, 4096) if quick else (3, 6, FRAME)
    out = {"rounds": rounds, "steps": steps, "frame": frame, "models": {}}
    for model_name, batch in MODELS.items():
        rows = {"on": [], "off": [], "batch": batch}
        for _ in range(rounds):
            for flag in ("on", "off"):
                times = _child(model_name, flag == "on", steps, batch, frame)
                rows[flag].append(statistics.median(times))
        out["models"][model_name] = rows
    return out


def table(result):
    lines = ["| model (batch x samples) | step, determinism on (s) | step, off (s) | on / off |",
             "|---|---:|---:|---:|"]
    for name, rows in result["models"].items():
        on, off = statistics.median(rows["on"]), statistics.median(rows["off"])
        lines.append(f"| {name} ({rows['batch']} x {result['frame']}) | {on:.3f} | {off:.3f} "
                     f"| {on / off:.2f} |")
    lines += ["", f"One ANN training step (Adam, SNR loss); median over {result['rounds']} "
              f"alternating rounds of the median of {result['steps']} steps after 2 warm-up "
              "steps, each round a fresh process per setting. Shared machine: compare the "
              "ratio, not the seconds."]
    return "\n".join(lines)


def run(out_dir, quick):
    result = measure(quick)
    text = table(result)
    files.write_text(out_dir / "determinism.md", "# Op determinism: training-step time\n\n"
                     + text + "\n")
    files.write_json(out_dir / "determinism.json", result)
    return text


if __name__ == "__main__":
    name, flag, n_steps, n_batch, n_frame = sys.argv[1:6]
    if name not in MODELS or flag not in ("on", "off"):
        raise SystemExit(f"usage: python -m kspikese.bench.determinism {{{'|'.join(MODELS)}}} "
                         "{on|off} STEPS BATCH FRAME")
    print(json.dumps(step_times(name, flag == "on", int(n_steps), int(n_batch), int(n_frame))))
