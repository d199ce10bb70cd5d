"""Benchmarks (``make bench``): each module in this package measures one thing and writes a table.

A benchmark module provides ``run(out_dir: pathlib.Path, quick: bool) -> str``: it measures, writes
its own ``out_dir/<name>.md`` (and CSV/JSON if it likes) and returns the Markdown table.  Ratios are
measured within one run, since the machines are shared and noisy.
"""

import argparse
import importlib
import pkgutil
import time
from pathlib import Path

from kspikese import files


def available():
    """Names of the benchmark modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    for flag in ("--seed", "--data", "--vctk-root", "--timit-root"):
        parser.add_argument(flag, help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)


def run(args):
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        raise SystemExit(f"kspikese bench: unknown benchmark(s) {unknown}; have {available()}")
    out_dir = Path(args.results) / "bench"
    sections = []
    for name in names:
        t0 = time.perf_counter()
        table = importlib.import_module(f"kspikese.bench.{name}").run(out_dir, args.quick)
        sections.append(f"## {name}\n\n{table}\n\n({time.perf_counter() - t0:.0f} s)\n")
        print(sections[-1], flush=True)
    files.write_text(out_dir / "README.md", "# kspikese benchmarks\n\n" + "\n".join(sections))
    print(f"wrote {out_dir / 'README.md'}")
    return 0
