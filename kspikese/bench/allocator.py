"""Benchmark: TensorFlow's CPU allocator, its BFC pool against the C library's malloc.

Every intermediate tensor of a CPU training step comes from TensorFlow's CPU allocator.  By
default that is ``malloc``: glibc serves large blocks with fresh ``mmap`` pages, which the kernel
faults in and zeroes on first touch and takes back on ``free``, again on every step.  With
``TF_CPU_ALLOCATOR_USE_BFC=true`` TensorFlow keeps its tensors in a best-fit-with-coalescing
pool that grows to the step's peak and is then reused, so a step touches memory it already owns.
``import kspikese`` sets that variable unless the environment sets it (``kspikese/__init__.py``).
The allocator only decides where a tensor lives, never the arithmetic, so the weights after the
same steps are bit-identical under both; each child reports a hash of them to show it.

The variable is read once per process, so each measurement is a child process (``python -m
kspikese.bench.allocator TABLE STEPS QUICK DATA_DIR``, the variable set by the parent) that trains
the table's ANN as the pipeline does (``model.fit`` on the table's training stream, loss, batch,
frame and precision) and reports, per step after two warm-up steps: wall seconds, system-CPU
seconds and minor page faults, and the process's peak resident memory.  Children alternate
bfc / malloc / bfc / ... for ``rounds`` rounds, so load on the shared machine hits both alike;
the table gives the median of each and ``malloc / bfc``.
"""

import hashlib
import json
import resource
import statistics
import sys
import time

from kspikese import files
from kspikese.bench._process import run_child

VARIABLE = "TF_CPU_ALLOCATOR_USE_BFC"
SETTINGS = {"bfc": "true", "malloc": "false"}
TABLES = ("table1", "table3")  # Wave-U-Net, Conv-TasNet


def fit_steps(table, steps, quick=False, data_dir=None, seed=0, warmup=2):
    """Train ``table``'s ANN for ``warmup`` then ``steps`` ``model.fit`` steps in this process.

    Returns ``{"s_per_step", "sys_s_per_step", "faults_per_step", "peak_rss_mb", "weights"}``:
    the timed steps' wall and system-CPU seconds and minor page faults per step, the process's
    peak resident memory, and the first 12 hex digits of the SHA-1 of the weights afterwards.
    """
    from kspikese import config as configs, pipeline, training
    from kspikese import precision as mixed_precision
    from kspikese.corpus import open_corpus

    cfg = configs.load(table, quick=quick)
    ann = cfg["ann"]
    corpus = open_corpus(cfg, "default", data_dir, seed=seed)
    trained = mixed_precision.training_model(pipeline.build_ann(cfg, seed),  # seeds TensorFlow
                                             ann.get("precision", "float32"))
    training.compile_model(trained, float(ann["lr"]), loss=ann.get("loss"),
                           clipnorm=ann.get("clipnorm"))
    stream = corpus.training_stream(0).repeat()
    trained.fit(stream, steps_per_epoch=warmup, epochs=1, verbose=0)
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    trained.fit(stream, steps_per_epoch=steps, epochs=2, initial_epoch=1, verbose=0)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    digest = hashlib.sha1(b"".join(w.tobytes() for w in trained.get_weights())).hexdigest()
    return {"s_per_step": wall / steps,
            "sys_s_per_step": (after.ru_stime - before.ru_stime) / steps,
            "faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
            "peak_rss_mb": after.ru_maxrss / 1024.0,  # kilobytes on Linux
            "weights": digest[:12]}


def measure(quick=False, data_dir=None):
    """``{"tables": {table: {"bfc": [child result per round], "malloc": [...]}}}`` + settings."""
    rounds, steps = (1, 2) if quick else (3, 8)
    out = {"rounds": rounds, "steps": steps, "quick": bool(quick), "tables": {}}
    for table in TABLES:
        rows = {name: [] for name in SETTINGS}
        for _ in range(rounds):
            for name, value in SETTINGS.items():
                rows[name].append(run_child("kspikese.bench.allocator",
                                            [table, steps, int(quick), data_dir or ""],
                                            env={VARIABLE: value}))
        out["tables"][table] = rows
    return out


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def table(result):
    lines = ["| table's ANN | step, BFC (s) | step, malloc (s) | malloc / BFC | system s per step "
             "(BFC / malloc) | page faults per step (BFC / malloc) | peak RSS MB (BFC / malloc) "
             "| same weights |", "|---|---:|---:|---:|---:|---:|---:|:-:|"]
    for name, rows in result["tables"].items():
        bfc, malloc = rows["bfc"], rows["malloc"]
        same = len({r["weights"] for r in bfc + malloc}) == 1
        b, m = _median(bfc, "s_per_step"), _median(malloc, "s_per_step")
        lines.append(
            f"| {name} | {b:.3f} | {m:.3f} | {m / b:.2f} "
            f"| {_median(bfc, 'sys_s_per_step'):.2f} / {_median(malloc, 'sys_s_per_step'):.2f} "
            f"| {_median(bfc, 'faults_per_step'):,.0f} / {_median(malloc, 'faults_per_step'):,.0f} "
            f"| {_median(bfc, 'peak_rss_mb'):,.0f} / {_median(malloc, 'peak_rss_mb'):,.0f} "
            f"| {'yes' if same else 'NO'} |")
    lines += ["", f"The table's ANN trained with `model.fit` as the pipeline trains it "
              f"({'QUICK configs; ' if result.get('quick') else ''}its loss, batch, frame and "
              f"precision, the default corpus); median over {result['rounds']} alternating rounds "
              f"of {result['steps']} steps after 2 warm-up steps, each round a fresh process per "
              f"allocator (`{VARIABLE}=true|false`). Shared machine: compare the ratio, not the "
              "seconds."]
    return "\n".join(lines)


def run(out_dir, quick, data_dir=None):
    result = measure(quick, data_dir)
    text = table(result)
    files.write_text(out_dir / "allocator.md", "# TensorFlow's CPU allocator: training-step time\n\n"
                     + text + "\n")
    files.write_json(out_dir / "allocator.json", result)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in TABLES or not sys.argv[2].isdigit():
        raise SystemExit(f"usage: python -m kspikese.bench.allocator {{{'|'.join(TABLES)}}} STEPS "
                         "QUICK(0|1) DATA_DIR('' for the default)")
    print(json.dumps(fit_steps(sys.argv[1], int(sys.argv[2]), quick=sys.argv[3] == "1",
                               data_dir=sys.argv[4] or None)))
