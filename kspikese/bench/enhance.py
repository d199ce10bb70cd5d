"""Benchmark of ``kspikese enhance``: real-time factor per model and peak memory vs file length.

Every measurement runs in a fresh child process pinned to (at most) two CPU cores, which enhances
a synthetic 16 kHz file from disk to disk with :func:`kspikese.enhance_files.enhance_file`,
exactly as the command line does, after one warm-up frame batch.  The child reports

* the real-time factor ``RTF = processing time / audio duration`` (``1 / RTF`` = times faster
  than real time; target for SNN Wave-U-Net: ``1 / RTF >= 10``), and
* its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the RSS high-water
  mark of the whole process, TensorFlow included; target under 1.5 GB for a 10-minute file).

Memory is measured for a 2.5-minute and a 10-minute file; streaming makes the two agree.  The
CPU time per audio second (all threads) is reported too: on a loaded machine the wall-clock RTF
grows with the load, the CPU time much less.  An identity model shows what the engine itself
(reading, resampling, overlap-add, writing) costs.
Shipped models are used when their weights are present; otherwise the full-size architecture is
built fresh (untrained, same cost) and labelled so.  Timings on shared machines are noisy.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kspikese import audio_io, files

RTF_SECONDS = {False: 60.0, True: 10.0}  # audio per RTF measurement (full, quick)
MEMORY_MINUTES = {False: (2.5, 10.0), True: (0.5, 2.0)}
MEMORY_MODEL = "snn-wave-u-net"
CORES = 2
DT = {"wave-u-net": 0.001, "conv-tasnet": 1.0}  # the paper's omega per architecture


def build_fresh(name):
    """The full-size architecture behind a shipped name, untrained (for timing only)."""
    from kspikese import models

    arch = name[4:] if name.startswith("snn-") else name
    builder = {"wave-u-net": "build_wave_u_net", "conv-tasnet": "build_conv_tasnet"}[arch]
    model = getattr(models, builder)(frame_len=16384)
    if name.startswith("snn-"):
        from kspikese import to_spiking

        model = to_spiking(model, dt=DT[arch], seed=0)
    return model


def load(spec):
    """``(model, label)`` for a shipped name (falls back to a fresh build) or a model path."""
    from kspikese import hub, shipped

    if spec == "identity":
        import tensorflow as tf

        x = tf.keras.Input((None, 1))
        y = tf.keras.layers.Conv1D(1, 1, use_bias=False, kernel_initializer="ones")(x)
        return tf.keras.Model(x, y), "identity model (the engine alone: I/O, overlap-add)"
    if spec in shipped.SHIPPED and spec not in shipped.available():
        return build_fresh(spec), f"{spec} (fresh full-size build, weights not shipped yet)"
    model, _ = hub.load(spec)
    return model, f"{spec} (shipped)" if spec in shipped.SHIPPED else spec


def write_test_file(path, seconds, sr=audio_io.SR, seed=0):
    """A noisy harmonic signal, written in blocks (so the writer's memory stays small)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n, block = int(seconds * sr), 1 << 16
    with sf.SoundFile(str(path), "w", sr, 1, "PCM_16") as f:
        for start in range(0, n, block):
            t = np.arange(start, min(n, start + block)) / sr
            x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            f.write((x + 0.05 * rng.standard_normal(len(t))).astype(np.float32))


def child(spec, seconds, folder, overlap=None):
    """Run in the child process: enhance one file, print a JSON line with the measurements."""
    import resource
    import time

    import numpy as np

    from kspikese.enhance_files import enhance_file
    from kspikese.enhancement import OVERLAP
    from kspikese.inference import frame_len_of, model_fn

    overlap = OVERLAP if overlap is None else overlap
    model, label = load(spec)
    fn = model_fn(model)
    frame_len = frame_len_of(model)
    fn(np.zeros((4, frame_len, 1), np.float32) + 0.01)  # warm-up: trace the graph once
    src, dst = Path(folder) / "in.wav", Path(folder) / "out.wav"
    write_test_file(src, seconds)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    audio = enhance_file(src, dst, fn, frame_len, overlap=overlap)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "model": label, "audio_s": audio, "process_s": elapsed, "rtf": elapsed / audio,
                "peak_rss_mb": peak / 1024, "rss_before_mb": rss_before / 1024,
                "params": int(model.count_params()), "overlap": overlap,
                "cpu_per_audio_s": cpu / audio,
            }
        )
    )  # fmt: skip


def measure(spec, seconds, overlap=None):
    """Run :func:`child` in a fresh process pinned to :data:`CORES` cores; its JSON result."""
    cpus = sorted(os.sched_getaffinity(0))[:CORES]
    code = (
        "import os, sys; os.sched_setaffinity(0, {cpus});"
        "from kspikese.bench.enhance import child;"
        "child(sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]) or None)"
    ).format(cpus=set(cpus))
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(len(cpus)), TF_NUM_INTEROP_THREADS="1")
        out = subprocess.run(
            [sys.executable, "-c", code, spec, str(seconds), folder, str(overlap or 0)],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"model": spec, "error": last}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cores"] = len(cpus)
    return result


def run(out_dir, quick):
    from kspikese import shipped
    from kspikese.dsp import OVERLAP

    out_dir = Path(out_dir)
    seconds = RTF_SECONDS[bool(quick)]
    speed = [measure(name, seconds) for name in shipped.SHIPPED] + [measure("identity", seconds)]
    if OVERLAP != 0.5:  # the cost of the smoother 50 % overlap, for the target model
        speed.append(measure(MEMORY_MODEL, seconds, overlap=0.5))
    memory = [measure(MEMORY_MODEL, 60 * m) for m in MEMORY_MINUTES[bool(quick)]]
    table = format_table(speed, memory, seconds)
    files.write_text(out_dir / "enhance.md", table + "\n")
    files.write_json(out_dir / "enhance.json", {"speed": speed, "memory": memory})
    return table


def format_table(speed, memory, seconds):
    from kspikese.report import markdown_table

    speed_rows = [
        [r["model"], "-", "-", f"failed: {r['error']}", "-", "-", "-"] if "error" in r else
        [r["model"], f"{r['params']:,}", f"{r['overlap']:g}", f"{r['rtf']:.3f}",
         f"{1 / r['rtf']:.1f}", f"{r.get('cpu_per_audio_s', float('nan')):.3f}",
         f"{r['peak_rss_mb']:.0f}"]
        for r in speed
    ]
    memory_rows = [
        ["-", f"failed: {r['error']}", "-", "-"] if "error" in r else
        [f"{r['audio_s'] / 60:.1f}", f"{r['peak_rss_mb']:.0f}", f"{r['rss_before_mb']:.0f}",
         f"{r['rtf']:.3f}"]
        for r in memory
    ]
    cores = speed[0].get("cores", CORES) if speed else CORES
    return "\n".join([
        f"Real-time factor of `kspikese enhance` (16 kHz mono file of {seconds:.0f} s, disk to "
        f"disk, {cores} cores; RTF = processing time / audio duration, target for SNN "
        "Wave-U-Net: >= 10x faster than real time):",
        "",
        markdown_table(["model", "parameters", "frame overlap", "RTF", "x real time",
                        "CPU s per audio s", "peak RSS (MB)"], speed_rows),
        "",
        f"Peak memory (RSS high-water mark of the whole process) for {MEMORY_MODEL} vs file "
        "length (target < 1500 MB, independent of length):",
        "",
        markdown_table(["audio (min)", "peak RSS (MB)", "RSS before the file (MB)", "RTF"],
                       memory_rows),
    ])
