"""``kspikese reproduce tableN``: the command line of :func:`kspikese.pipeline.reproduce`.

Arguments and data are checked before anything is created: an unknown table, a malformed or
partial YAML, a missing ``--vctk-root``/``--timit-root`` or an empty one end the command with a
one-line error naming the argument or file (exit status 2).
"""

import argparse
import sys


def add_common_arguments(parser):
    """The arguments every command that runs a table's pipeline shares."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--data", default="default", choices=("default", "vctk", "timit"),
                        help="data source (default: the embedded default corpus)")
    parser.add_argument("--results", default="results", help="results folder (default results)")
    parser.add_argument("--data-dir", default=None,
                        help="where the default corpus lives (default $KSPIKESE_DATA_DIR or data)")
    parser.add_argument("--vctk-root", help="noisy VCTK folder (with --data vctk)")
    parser.add_argument("--timit-root", help="TIMIT folder (with --data timit)")
    parser.add_argument("--profile", default="cpu",
                        help="recipe: cpu (default, sized for 2 cores), paper (the paper's "
                             "schedule, for a GPU) or ship (the shipped weights' long recipe)")
    parser.add_argument("--quick", action="store_true", help="tiny subset, few steps (smoke run)")
    parser.add_argument("--force", action="store_true", help="retrain every stage")
    parser.add_argument("--workers", type=int, default=2, help="metric worker processes")


def add_arguments(parser):
    parser.add_argument("table", help="table1..table4, or a path to an experiment YAML")
    add_common_arguments(parser)


def check_arguments(args, command="reproduce"):
    """The config and the data arguments of ``args``, checked; ``None`` after printing an error.

    Returns the loaded config (so a bad YAML is reported before any folder is made).
    """
    from kspikese import config as configs
    from kspikese.corpus import CorpusError, check_data_arguments

    table = getattr(args, "table", None)
    try:
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        cfg = configs.load(table, quick=args.quick, profile=args.profile)
        check_data_arguments(args.data, args.vctk_root, args.timit_root)
    except (configs.ConfigError, CorpusError, ValueError) as exc:
        print(f"kspikese {command}: error: {exc}", file=sys.stderr)
        return None
    return cfg


def run(args: argparse.Namespace):
    from kspikese import pipeline
    from kspikese.corpus import CorpusError

    if check_arguments(args) is None:
        return 2
    try:
        pipeline.reproduce(args.table, seed=args.seed, data=args.data, results=args.results,
                           quick=args.quick, force=args.force, data_dir=args.data_dir,
                           vctk_root=args.vctk_root, timit_root=args.timit_root,
                           workers=args.workers, verbose=1 if sys.stdout.isatty() else 2,
                           profile=args.profile)
    except CorpusError as exc:
        print(f"kspikese reproduce: error: {exc}", file=sys.stderr)
        return 2
    return 0
