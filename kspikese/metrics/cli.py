"""``kspikese evaluate``: score a folder of enhanced files against a folder of clean ones.

Files are paired by their path relative to each folder, without the extension (``a/b.wav`` pairs
with ``a/b.flac``).  Writes into ``--out``: ``per_file.csv`` (one row per file; with ``--noisy``
also ``noisy_<metric>`` columns) and ``summary.md``/``summary.csv``/``summary.json`` (mean of each
metric, NaN ignored, with how many files each mean used).

Exit status: 0 when every file was fully scored; 1 when some file (or some measure of it) could
not be scored — the files are still written, and a summary names how many and the first
problem; 2 for unusable arguments (``--out`` that cannot be a folder, bad ``--metrics`` or
``--workers``), reported before anything is scored.
"""

import argparse
import sys
from pathlib import Path

from kspikese.audio_io import AUDIO_SUFFIXES, is_audio_name

from kspikese.files import output_problem


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--clean", required=True, help="folder of clean reference files")
    parser.add_argument("--enhanced", required=True, help="folder of enhanced files (same names)")
    parser.add_argument("--noisy", help="folder of the noisy inputs: scored too, as a column")
    parser.add_argument("--out", default="results/evaluate", help="output folder (default: results/evaluate)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    parser.add_argument("--metrics", help="comma-separated subset of the metrics (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class UsageError(ValueError):
    """An argument of ``kspikese evaluate`` cannot be used (exit status 2)."""


def audio_files(folder, role):
    """``{key: path}`` of the audio files under ``folder`` (key = relative path minus suffix)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--{role} {folder} is not a folder")
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_audio_name(path):
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in found:
                raise UsageError(f"--{role} has two files named {key}: "
                                 f"{found[key].name} and {path.name}")
            found[key] = path
    if not found:
        raise UsageError(f"--{role} {folder} holds no audio files "
                         f"({', '.join(sorted(AUDIO_SUFFIXES))})")
    return found


def pair_up(reference, other, role, show=5):
    """Check that two ``audio_files`` maps hold the same names; UsageError listing mismatches."""
    missing = sorted(set(reference) - set(other))
    extra = sorted(set(other) - set(reference))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} clean file(s) have no {role} counterpart (first: "
                         f"{', '.join(missing[:show])})")
        if extra:
            parts.append(f"{len(extra)} {role} file(s) have no clean counterpart (first: "
                         f"{', '.join(extra[:show])})")
        raise UsageError("files do not pair up by name: " + "; ".join(parts))
    return sorted(reference)


def check_arguments(args):
    """``(metrics, clean, enhanced, noisy, names)``, every argument checked before any scoring.

    Raises
    ------
    UsageError
        Naming the argument: unknown metrics, ``--workers < 1``, an ``--out`` that cannot be a
        folder (a file in the way, not writable), input folders that are missing, empty or do not
        pair up.
    """
    from kspikese.metrics.evaluate import check_metrics

    try:
        metrics = check_metrics(args.metrics)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from exc
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    problem = output_problem(args.out, "folder")
    if problem is not None:
        raise UsageError(f"--out {args.out}: {problem}")
    clean = audio_files(args.clean, "clean")
    enhanced = audio_files(args.enhanced, "enhanced")
    names = pair_up(clean, enhanced, "enhanced")
    noisy = None
    if args.noisy:
        noisy = audio_files(args.noisy, "noisy")
        pair_up(clean, noisy, "noisy")
    return metrics, clean, enhanced, noisy, names


def run(args):
    from kspikese.metrics import tables
    from kspikese.metrics.evaluate import evaluate_set, means_of

    try:
        metrics, clean, enhanced, noisy, names = check_arguments(args)
    except UsageError as exc:
        print(f"kspikese evaluate: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    progress = not args.no_progress

    systems = {}
    if noisy is not None:
        systems["noisy"] = [(n, clean[n], noisy[n]) for n in names]
    systems["enhanced"] = [(n, clean[n], enhanced[n]) for n in names]
    # one pool for every system: workers start (and build their DNSMOS sessions) once
    jobs = [pair for pairs in systems.values() for pair in pairs]
    print(f"scoring {len(jobs)} file pairs ({', '.join(systems)}) with {args.workers} worker(s)", flush=True)
    all_rows, _ = evaluate_set(jobs, workers=args.workers, metrics=metrics, progress=progress)
    results, start = {}, 0
    for system, pairs in systems.items():
        part = all_rows[start : start + len(pairs)]
        results[system] = (part, means_of(part, metrics))
        start += len(pairs)

    rows = []
    for i, name in enumerate(names):
        row = {"name": name}
        row.update({m: results["enhanced"][0][i][m] for m in metrics})
        row["error"] = results["enhanced"][0][i]["error"]
        if noisy is not None:
            row.update({f"noisy_{m}": results["noisy"][0][i][m] for m in metrics})
            row["noisy_error"] = results["noisy"][0][i]["error"]
        rows.append(row)
    columns = ["name", *metrics, "error"]
    if noisy is not None:
        columns += [f"noisy_{m}" for m in metrics] + ["noisy_error"]
    tables.write_csv(out / "per_file.csv", rows, columns)
    means = {system: results[system][1] for system in systems}
    md = tables.write_summary(out, means, metrics, extra={
        "clean": str(args.clean), "enhanced": str(args.enhanced), "noisy": args.noisy,
        "files": len(names),
    })
    print(md)
    print(f"wrote {out / 'per_file.csv'} and {out / 'summary.md'} (.csv, .json)")
    errors = sum(1 for r in rows if r["error"] or r.get("noisy_error"))
    if errors:
        first = next(r for r in rows if r["error"] or r.get("noisy_error"))
        print(f"kspikese evaluate: {errors} of {len(rows)} file(s) could not be fully scored "
              f"(first: {first['name']}: {first['error'] or first['noisy_error']}); see "
              f"{out / 'per_file.csv'}", file=sys.stderr)
        return 1
    return 0
