"""``kspikese reproduce tableN``: the command line of :func:`kspikese.pipeline.reproduce`.

Arguments and data are checked before anything is created: an unknown table, a malformed or
partial YAML, a missing ``--vctk-root``/``--timit-root`` or an empty one end the command with a
one-line error naming the argument or file (exit status 2).

Training (stages 1 and 3) runs under a ``tf.distribute`` strategy (:mod:`kspikese.distribute`):
``--strategy default`` (one device), ``mirrored`` (the local GPUs, or ``--cpu-replicas K``
logical CPU devices) or ``multi-worker`` (a cluster described by ``TF_CONFIG``; ``--workers N``
launches N local worker processes with a generated ``TF_CONFIG`` each, for testing).
"""

import argparse
import sys


def add_common_arguments(parser, seed=True):
    """The arguments every command that runs a table's pipeline shares (``seed=False``: all but
    ``--seed``, for a command that takes several)."""
    if seed:
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
    parser.add_argument("--metric-workers", type=int, default=2,
                        help="processes that score the metrics (default 2)")


WORKER_TIMEOUT = 12 * 3600  # seconds: the default bound of a --workers run


def add_arguments(parser):
    from kspikese.distribute import STRATEGIES

    parser.add_argument("table", help="table1..table4, or a path to an experiment YAML")
    add_common_arguments(parser)
    parser.add_argument("--strategy", default="default", choices=STRATEGIES,
                        help="tf.distribute strategy of stages 1 and 3: default (one device), "
                             "mirrored (local GPUs, or --cpu-replicas logical CPUs), "
                             "multi-worker (TF_CONFIG cluster, or --workers N local workers)")
    parser.add_argument("--cpu-replicas", type=int, default=None, metavar="K",
                        help="with --strategy mirrored and no GPU: mirror over K logical CPUs")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="with --strategy multi-worker: launch N local worker processes "
                             "(127.0.0.1, free ports, generated TF_CONFIG)")
    parser.add_argument("--worker-timeout", type=float, default=WORKER_TIMEOUT, metavar="S",
                        help=f"stop every --workers process after S seconds (default "
                             f"{WORKER_TIMEOUT})")


def check_arguments(args, command="reproduce"):
    """The config and the data arguments of ``args``, checked; ``None`` after printing an error.

    Returns the loaded config (so a bad YAML is reported before any folder is made).
    """
    from kspikese import config as configs
    from kspikese.corpus import CorpusError, check_data_arguments

    table = getattr(args, "table", None)
    try:
        if args.metric_workers < 1:
            raise ValueError(f"--metric-workers must be at least 1, got {args.metric_workers}")
        check_strategy_arguments(args)
        cfg = configs.load(table, quick=args.quick, profile=args.profile)
        check_data_arguments(args.data, args.vctk_root, args.timit_root)
    except (configs.ConfigError, CorpusError, ValueError) as exc:
        print(f"kspikese {command}: error: {exc}", file=sys.stderr)
        return None
    return cfg


def check_strategy_arguments(args):
    """Raise ``ValueError`` naming the option unless ``--strategy``, ``--cpu-replicas`` and
    ``--workers`` fit together (only for commands that have them)."""
    import os

    strategy = getattr(args, "strategy", "default")
    cpus, workers = getattr(args, "cpu_replicas", None), getattr(args, "workers", None)
    if cpus is not None:
        if strategy != "mirrored":
            raise ValueError(f"--cpu-replicas goes with --strategy mirrored, not {strategy}")
        if cpus < 2:
            raise ValueError(f"--cpu-replicas: expected at least 2 logical CPUs, got {cpus}")
    if workers is not None:
        if strategy != "multi-worker":
            raise ValueError(f"--workers goes with --strategy multi-worker, not {strategy}")
        if workers < 2:
            raise ValueError(f"--workers: expected at least 2 local workers, got {workers}")
        if os.environ.get("TF_CONFIG"):
            raise ValueError("--workers launches its own local cluster, but TF_CONFIG is already "
                             "set (unset it, or drop --workers to join the cluster it describes)")
        if getattr(args, "worker_timeout", 1) <= 0:
            raise ValueError(f"--worker-timeout: expected a positive number of seconds, got "
                             f"{args.worker_timeout}")


def worker_argv(args):
    """The ``kspikese reproduce`` command line each local worker of ``--workers`` runs."""
    argv = ["reproduce", args.table, "--seed", str(args.seed), "--data", args.data,
            "--results", str(args.results), "--profile", args.profile,
            "--metric-workers", str(args.metric_workers), "--strategy", "multi-worker"]
    for flag, value in (("--data-dir", args.data_dir), ("--vctk-root", args.vctk_root),
                        ("--timit-root", args.timit_root)):
        if value:
            argv += [flag, str(value)]
    return argv + (["--quick"] if args.quick else []) + (["--force"] if args.force else [])


def run(args: argparse.Namespace):
    from kspikese import distribute
    from kspikese.corpus import CorpusError

    cfg = check_arguments(args)
    if cfg is None:
        return 2
    if args.workers:
        try:
            if int(cfg.get("batch_size", 8)) % args.workers:
                raise distribute.StrategyError(
                    f"batch_size: the global batch of {cfg.get('batch_size', 8)} does not split "
                    f"evenly over {args.workers} workers (give a multiple of {args.workers})")
            _build_corpus(args, cfg)  # once, before the workers start reading it
        except (distribute.StrategyError, CorpusError) as exc:
            print(f"kspikese reproduce: error: {exc}", file=sys.stderr)
            return 2
        return distribute.launch(worker_argv(args), args.workers, timeout=args.worker_timeout)
    try:
        # before any other TensorFlow call: logical devices and the cluster are set up first
        strategy = distribute.make_strategy(args.strategy, args.cpu_replicas)
        distribute.check_batch(cfg.get("batch_size", 8), strategy, "batch_size")
    except distribute.StrategyError as exc:
        print(f"kspikese reproduce: error: {exc}", file=sys.stderr)
        return 2
    return _reproduce(args, strategy)


def _build_corpus(args, cfg):
    from kspikese.corpus import open_corpus

    open_corpus(cfg, args.data, args.data_dir, args.vctk_root, args.timit_root, seed=args.seed)


def reproduce_table(args, seed, strategy=None):
    """:func:`kspikese.pipeline.reproduce` of ``args.table`` with the command line's common
    arguments (:func:`add_common_arguments`) and ``seed``; returns the table's payload."""
    from kspikese import pipeline

    return pipeline.reproduce(args.table, seed=seed, data=args.data, results=args.results,
                              quick=args.quick, force=args.force, data_dir=args.data_dir,
                              vctk_root=args.vctk_root, timit_root=args.timit_root,
                              workers=args.metric_workers,
                              verbose=1 if sys.stdout.isatty() else 2, profile=args.profile,
                              strategy=strategy)


def _reproduce(args, strategy):
    from kspikese.corpus import CorpusError

    try:
        reproduce_table(args, args.seed, strategy)
    except CorpusError as exc:
        print(f"kspikese reproduce: error: {exc}", file=sys.stderr)
        return 2
    from kspikese import distribute

    distribute.barrier(strategy)  # the other workers wait while the chief writes the table
    return 0
