"""The ``kspikese`` command line.

Each sub-command lives in the module that does its work; that module provides
``add_arguments(parser)`` and ``run(args) -> int``.  Modules are imported only when their command
runs, so ``kspikese --help`` does not import TensorFlow.
"""

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "data": ("kspikese.data.cli", "build the default corpus (no-op when built)"),
    "evaluate": ("kspikese.metrics.cli", "score enhanced files against clean ones"),
    "reproduce": ("kspikese.experiment", "run the three-stage pipeline and build Table 1-4"),
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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
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
