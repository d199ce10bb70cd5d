"""``kspikese evaluate``: score a folder of enhanced files against a folder of clean ones.

Files are paired by their path relative to each folder, without the extension (``a/b.wav`` pairs
with ``a/b.flac``).  Writes into ``--out``: ``per_file.csv`` (one row per file; with ``--noisy``
also ``noisy_<metric>`` columns) and ``summary.md``/``summary.csv``/``summary.json`` (mean of each
metric, NaN ignored, with how many files each mean used).
"""

import argparse
import math
from pathlib import Path

from kspikese.files import AUDIO_SUFFIXES, is_audio_name


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--clean", required=True, help="folder of clean reference files")
    parser.add_argument("--enhanced", required=True, help="folder of enhanced files (same names)")
    parser.add_argument("--noisy", help="folder of the noisy inputs: scored too, as a column")
    parser.add_argument("--out", default="results/evaluate", help="output folder (default: results/evaluate)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    parser.add_argument("--metrics", help="comma-separated subset of the metrics (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def audio_files(folder, role):
    """``{key: path}`` of the audio files under ``folder`` (key = relative path minus suffix)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"kspikese evaluate: --{role} {folder} is not a folder")
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_audio_name(path):
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in found:
                raise SystemExit(f"kspikese evaluate: --{role} has two files named {key}: "
                                 f"{found[key].name} and {path.name}")
            found[key] = path
    if not found:
        raise SystemExit(f"kspikese evaluate: --{role} {folder} holds no audio files "
                         f"({', '.join(sorted(AUDIO_SUFFIXES))})")
    return found


def pair_up(reference, other, role, show=5):
    """Check that two ``audio_files`` maps hold the same names; SystemExit listing mismatches."""
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
        raise SystemExit("kspikese evaluate: files do not pair up by name: " + "; ".join(parts))
    return sorted(reference)


def run(args):
    from kspikese.metrics import tables
    from kspikese.metrics.evaluate import check_metrics, evaluate_set, means_of

    try:
        metrics = check_metrics(args.metrics)
    except ValueError as exc:
        raise SystemExit(f"kspikese evaluate: --{exc}") from exc
    if args.workers < 1:
        raise SystemExit(f"kspikese evaluate: --workers must be >= 1, got {args.workers}")
    clean = audio_files(args.clean, "clean")
    enhanced = audio_files(args.enhanced, "enhanced")
    names = pair_up(clean, enhanced, "enhanced")
    noisy = None
    if args.noisy:
        noisy = audio_files(args.noisy, "noisy")
        pair_up(clean, noisy, "noisy")
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
    errors = sum(1 for r in rows if r["error"] or r.get("noisy_error"))
    if errors:
        first = next(r for r in rows if r["error"] or r.get("noisy_error"))
        print(f"{errors} file(s) could not be fully scored (first: {first['name']}: "
              f"{first['error'] or first['noisy_error']}); see per_file.csv")
    print(f"wrote {out / 'per_file.csv'} and {out / 'summary.md'} (.csv, .json)")
    bad = [m for m in metrics if math.isnan(means["enhanced"][m])]
    return 1 if len(bad) == len(metrics) else 0
