"""The ``kspikese`` command line.

Each sub-command lives in the module that does its work; that module provides
``add_arguments(parser)`` and ``run(args) -> int``.  Modules are imported only when their command
runs, so ``kspikese --help`` does not import TensorFlow.

Interruptions: SIGINT (Ctrl-C) and SIGTERM unwind the running command like an exception, so every
temporary file being written is removed (:func:`kspikese.files.atomic_path`), then one line says
so and the exit status is 130 (SIGINT) or 143 (SIGTERM), ``128 + signal``, as shells report.  A
run killed outright (SIGKILL) cannot clean up; the next write into the same folder removes its
temporaries (:func:`kspikese.files.remove_stale_temporaries`).
"""

import argparse
import contextlib
import importlib
import signal
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "data": ("kspikese.data.cli", "build the default corpus (no-op when built)"),
    "evaluate": ("kspikese.metrics.cli", "score enhanced files against clean ones"),
    "reproduce": ("kspikese.experiment", "run the three-stage pipeline and build Table 1-4"),
    "seeds": ("kspikese.seeds", "run a table over several seeds: mean and spread of every measure"),
    "score": ("kspikese.score", "score a finished run's models on its validation (or test) split"),
    "omega-search": ("kspikese.omega_search", "grid search over omega (dt) and input scale"),
    "pareto": ("kspikese.pareto", "accuracy-energy front over the rate-control knobs"),
    "energy": ("kspikese.energy.table5",
               "Table 5: energy per inference, ANN vs SNN (or: MODEL ... --audio DIR --json FILE)"),
    "enhance": ("kspikese.enhance_cli", "denoise audio files with a (spiking) model"),
    "info": ("kspikese.enhance_cli:info", "print a model's card and layers"),
    "ship": ("kspikese.publish", "export trained models as shipped weights (float16 + card)"),
    "bench": ("kspikese.bench", "benchmarks -> results/bench/"),
    "export-nengo": ("kspikese.nengo.cli", "convert a trained SNN to a Nengo network (nengo env)"),
    "nengo-eval": ("kspikese.nengo.cli:evaluate", "run the Nengo network and compare (nengo env)"),
}


def _load(spec):
    module, _, prefix = spec.partition(":")
    mod = importlib.import_module(module)
    add = getattr(mod, f"add_{prefix}_arguments" if prefix else "add_arguments")
    run = getattr(mod, f"run_{prefix}" if prefix else "run")
    return add, run


def build_parser(selected=None):
    parser = argparse.ArgumentParser(
        prog="kspikese", description="Spiking speech enhancement (Abuhajar et al. 2025) on Keras."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (spec, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            add, run = _load(spec)
            add(p)
            p.set_defaults(_run=run)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so the command unwinds and cleans up."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _sigterm_unwinds():
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    """Run one command; returns its exit status (130/143 after SIGINT/SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = next((a for a in argv if not a.startswith("-")), "")
    try:
        with _sigterm_unwinds():
            return _main(argv)
    except KeyboardInterrupt:
        print(f"kspikese {name}: interrupted (SIGINT); temporary files removed".replace("  ", " "),
              file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated:
        print(f"kspikese {name}: terminated (SIGTERM); temporary files removed".replace("  ", " "),
              file=sys.stderr)
        return 128 + signal.SIGTERM


def _main(argv):
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected is not None and selected not in COMMANDS:
        selected = None
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if not hasattr(args, "_run"):
        parser.error(f"command {args.command!r} is not available")
    return int(args._run(args) or 0)
