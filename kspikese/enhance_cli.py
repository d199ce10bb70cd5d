"""``kspikese enhance`` (denoise files and folders) and ``kspikese info`` (show a model).

Exit codes of ``enhance``: 0 when every file was enhanced, 1 when any file failed (each failure
is printed with the file and the problem; the others are still done; an existing output without
``--overwrite`` is such a failure), 2 when the model, the output location or the arguments are
unusable (reported before any file is read), 130/143 when interrupted by SIGINT/SIGTERM (see
:mod:`kspikese.cli`).
"""

import argparse
import json
import sys

from kspikese import enhance_files, hub, shipped
from kspikese.enhancement import BATCH_SIZE, OVERLAP, ModelError


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="audio files or folders (recursive)"
    )
    parser.add_argument(
        "-o", "--output", metavar="OUT",
        help="output file (one input file) or folder that mirrors the input tree",
    )  # fmt: skip
    parser.add_argument(
        "--model", default=hub.DEFAULT_MODEL, metavar="NAME|PATH",
        help=f"shipped model ({', '.join(hub.SHIPPED)}; default {hub.DEFAULT_MODEL}) or a path to a "
        ".keras checkpoint, a pipeline run folder or a model card (.json)",
    )  # fmt: skip
    parser.add_argument("--ann", action="store_true", help="use the ANN twin of a spiking model")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="allow outputs to replace existing files (without it an existing output is refused; "
        "with it an output may even replace its own input)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"frames x channels per model call (default {BATCH_SIZE})",
    )
    parser.add_argument(
        "--overlap", type=float, default=OVERLAP, metavar="F",
        help=f"overlap of consecutive frames, fraction in [0, 0.5] (default {OVERLAP}); "
        "smaller is faster, 0 butts frames end to end",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--weights-dir", metavar="DIR", help=argparse.SUPPRESS)


def run(args) -> int:
    if not args.inputs or not args.output:
        print("kspikese enhance: error: give INPUT... and -o OUT", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("kspikese enhance: error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.overlap <= 0.5:
        print("kspikese enhance: error: --overlap must be in [0, 0.5]", file=sys.stderr)
        return 2
    try:
        summary = enhance_files.enhance_paths(
            args.inputs, args.output, model=args.model, ann=args.ann, overwrite=args.overwrite,
            batch_size=args.batch_size, progress=not args.quiet, weights_dir=args.weights_dir,
            overlap=args.overlap,
        )  # fmt: skip
    except (ModelError, enhance_files.OutputError) as exc:
        print(f"kspikese enhance: error: {exc}", file=sys.stderr)
        return 2
    print(summary.text())
    if summary.failed:
        print(f"kspikese enhance: {summary.failed} input(s) failed:", file=sys.stderr)
        for path, message in summary.errors:
            print(
                f"  {message if message.startswith(str(path)) else f'{path}: {message}'}",
                file=sys.stderr,
            )
    return 1 if summary.failed else 0


# ---------------------------------------------------------------------------------------------
# kspikese info MODEL


def add_info_arguments(parser: argparse.ArgumentParser):
    parser.add_argument(
        "model", nargs="?", default=hub.DEFAULT_MODEL, metavar="MODEL",
        help=f"shipped name ({', '.join(hub.SHIPPED)}) or path (default {hub.DEFAULT_MODEL})",
    )  # fmt: skip
    parser.add_argument("--ann", action="store_true", help="the ANN twin of a spiking model")
    parser.add_argument("--weights-dir", metavar="DIR", help=argparse.SUPPRESS)


def run_info(args) -> int:
    try:
        model, card = hub.load(args.model, args.ann, args.weights_dir)
    except hub.ModelError as exc:
        print(f"kspikese info: error: {exc}", file=sys.stderr)
        return 2
    print(format_info(model, card))
    return 0


def format_info(model, card):
    """The model card (without the graph), the layer summary and the spiking layers, as text."""
    lines = [f"# {card.get('name', model.name)}", "", "## Model card", ""]
    shown = {k: v for k, v in card.items() if k not in ("keras_config", "spiking_layers")}
    lines.append(json.dumps(shown, indent=2, default=str) if shown else "(no card)")
    lines += ["", "## Layers", ""]
    try:
        from kspikese.models import summary  # layer table with neurons, dt and input scale
    except ImportError:
        summary = None
    try:
        lines.append(summary(model))
    except Exception:  # not a kspikese-built graph, or models not available: Keras' own table
        model.summary(print_fn=lambda line, *a, **k: lines.append(line), line_length=100)
    spikes = shipped.spiking_layer_info(model)
    lines += ["", f"## Spiking layers ({len(spikes)})", ""]
    if spikes:
        lines.append("| layer | activation | dt | seed | spiking-aware training |")
        lines.append("|---|---|---|---|---|")
        for s in spikes:
            lines.append(
                f"| {s['layer']} | {s['activation']} | {s['dt']:g} | {s['seed']} | "
                f"{s['spiking_aware_training']} |"
            )
    else:
        lines.append("none: this is an ANN")
    return "\n".join(lines)
