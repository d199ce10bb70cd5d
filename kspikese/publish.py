"""``kspikese ship``: publish trained models as shipped weights (float16 HDF5 + model card).

Two ways in, one export (:func:`export_shipped`):

- from a finished table: ``kspikese ship [table1] [table3]`` exports the table's ANN and
  fine-tuned SNN from ``results/runs/<table>-default-seed<S>/`` (``table1`` -> ``wave-u-net``,
  ``snn-wave-u-net``; ``table3`` -> ``conv-tasnet``, ``snn-conv-tasnet``; both by default) with a
  card that records the data, the table's config, the seed and the model's column of
  ``results/<table>/<table>.json``, beside RNNoise's scores on the same test utterances
  (``peers``, :func:`peer_metrics`).  The float16 check runs on the table's own test utterances
  with the table's inference settings (``eval:`` overlap and batch size), so the card's numbers
  are measured the way the table's are;
- from one checkpoint: ``kspikese ship --checkpoint RUN_OR_KERAS --name NAME
  [--card extra.json] [--check CLEAN_DIR NOISY_DIR]``.

Weights are stored as float16 unless the float16 model's mean test SI-SNR differs from the
float32 model's by :data:`FLOAT16_TOLERANCE_DB` or more; then float32 (still at most 12 MB).

Refusals, before anything is written: a table that is missing, from a QUICK run or another seed
(``--quick`` accepts a QUICK run, but only into a ``--weights-dir`` the user names, never into
the package's folder); a run whose models do not match the table's config.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from kspikese import audio_io, hub, shipped
from kspikese.inference import BATCH_SIZE, ModelError, enhance_array
from kspikese.dsp import OVERLAP

FLOAT16_TOLERANCE_DB = 0.05  # largest mean SI-SNR change float16 weights may cause


def float16_check(model, reloaded, pairs, overlap=OVERLAP, batch_size=BATCH_SIZE):
    """Mean SI-SNR over test pairs of a float32 model and its float16 reload.

    Parameters
    ----------
    model, reloaded : tf.keras.Model
        The model and the same model with float16-rounded weights.
    pairs : list of (np.ndarray, np.ndarray)
        ``(noisy, clean)`` at 16 kHz.
    overlap, batch_size
        The inference settings (:func:`kspikese.inference.enhance_array`).

    Returns
    -------
    dict
        ``files``, ``si_snr_float32``, ``si_snr_float16`` (dB), ``delta_db`` (float16 minus
        float32) and the ``overlap`` / ``batch_size`` used.
    """
    from kspikese.metrics.snr import si_snr

    full, half = [], []
    for noisy, clean in pairs:
        full.append(si_snr(clean, enhance_array(model, noisy, None, overlap, batch_size)))
        half.append(si_snr(clean, enhance_array(reloaded, noisy, None, overlap, batch_size)))
    return {"files": len(full), "si_snr_float32": float(np.mean(full)),
            "si_snr_float16": float(np.mean(half)),
            "delta_db": float(np.mean(half) - np.mean(full)),
            "overlap": float(overlap), "batch_size": int(batch_size)}


def checkpoint_label(path):
    """The checkpoint as a card names it: from the run folder's ``runs/`` on (``runs/table1-
    default-seed0/ann/ann.keras``), so no card carries a path of the machine that shipped it; a
    checkpoint outside a results tree is named by its file name."""
    parts = Path(path).parts
    runs = [k for k, part in enumerate(parts) if part == "runs"]
    return "/".join(parts[runs[-1]:]) if runs else Path(path).name


def export_shipped(checkpoint, name, card_fields=None, weights_dir=None, test_pairs=None,
                   overlap=OVERLAP, batch_size=BATCH_SIZE):
    """Ship a pipeline checkpoint as ``weights_dir/NAME.h5`` + ``NAME.json``.

    Parameters
    ----------
    checkpoint : str or Path
        A ``.keras`` file, or a run folder (its fine-tuned SNN for ``snn-*`` names, its ANN
        otherwise).  The run's ``run.json`` goes into the card under ``run``.
    name : str
        The shipped name.
    card_fields : dict, optional
        Merged into the card (data, config, seed, test metrics, ...).
    weights_dir : str or Path, optional
        Target folder (default: the package's weights folder).
    test_pairs : list of (noisy, clean), optional
        16 kHz arrays for the float16 check (:func:`float16_check`), recorded in the card as
        ``float16_check``; if it fails, float32 weights are shipped instead, with a warning.
    overlap, batch_size
        Inference settings of the check.

    Returns
    -------
    dict
        The card.
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = hub.resolve_checkpoint(path, ann=not name.startswith("snn-"))
    model, run_card = hub.load(path)
    fields = {"source_checkpoint": checkpoint_label(path)}
    fields.update({k: v for k, v in run_card.items() if k == "run"})
    fields.update(card_fields or {})
    folder = Path(weights_dir or shipped.WEIGHTS_DIR)
    pairs = list(test_pairs) if test_pairs is not None else None
    dtype = "float16"
    if pairs:
        staging = folder / f".{name}.staging"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            shipped.export(model, name, fields, staging)
            reloaded, _ = shipped.load(name, staging)
            check = float16_check(model, reloaded, pairs, overlap, batch_size)
        finally:
            for p in staging.glob("*"):
                p.unlink()
            staging.rmdir()
        check["passed"] = abs(check["delta_db"]) < FLOAT16_TOLERANCE_DB
        check["tolerance_db"] = FLOAT16_TOLERANCE_DB
        fields["float16_check"] = check
        if not check["passed"]:
            warnings.warn(f"{name}: float16 weights move the mean SI-SNR by "
                          f"{check['delta_db']:+.3f} dB (limit {FLOAT16_TOLERANCE_DB} dB): "
                          "shipping float32 weights", stacklevel=2)
            dtype = "float32"
    card = shipped.export(model, name, fields, folder, dtype)
    hub.clear_cache()
    return card


# ------------------------------------------------------------------------------ from a table
PEERS = ("rnnoise",)  # the peer denoisers scored beside the shipped models on their cards


def peer_metrics(pairs, metrics=None, peers=PEERS):
    """``{peer: test-set means}`` of the peer denoisers (:data:`kspikese.baselines.BASELINES`)
    on ``pairs`` (``(noisy, clean)`` 16 kHz arrays), scored with the table's ``metrics`` on whole
    utterances; a peer that is not installed gets ``{"unavailable": <how to install it>}``."""
    from kspikese import baselines
    from kspikese.metrics.evaluate import evaluate_set

    out = {}
    for peer in peers:
        try:
            rows = [(f"u{k}", clean, baselines.BASELINES[peer](noisy))
                    for k, (noisy, clean) in enumerate(pairs)]
        except baselines.BaselineUnavailable as e:
            out[peer] = {"unavailable": str(e)}
            continue
        out[peer] = evaluate_set(rows, metrics=metrics, progress=False)[1]
    return out


def card_fields(table_json, run, column):
    """The card's provenance fields: data, config, seed and the column's test metrics."""
    return {
        "data": table_json["data"],
        "config": run.cfg,
        "seed": run.seed,
        "table": table_json["table"],
        "test_metrics": table_json["metrics"][column],
        "test_metrics_source": f"results/{table_json['table']}/{table_json['table']}.json, "
                               f"column {column!r} (whole test utterances)",
    }


def ship(table, results="results", seed=0, weights_dir=None, data_dir=None, quick=False,
         data="default", vctk_root=None, timit_root=None, profile="cpu"):
    """Export ``table``'s ANN and fine-tuned SNN under their shipped names.

    Parameters
    ----------
    table : {"table1", "table3"}
    results : str or Path
        Holds ``<table>/<table>.json`` and ``runs/``.
    seed : int
        The run's seed.
    weights_dir : str or Path, optional
        Target folder (default: the package's weights folder; required with ``quick``).
    data_dir, data, vctk_root, timit_root
        The corpus, as :func:`kspikese.pipeline.open_run`.
    quick : bool
        Ship the QUICK run (only into ``weights_dir``).
    profile : str
        The run's recipe profile (``cpu``, ``ship``, ...); the table must be of that profile.

    Returns
    -------
    list of dict
        The two cards.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing, QUICK (without ``quick``) or other-seed table, a QUICK run bound for the
        package folder, or a run whose models do not match the table's config.
    """
    from kspikese import pipeline
    from kspikese.runs import run_name

    if table not in shipped.SHIPS:
        raise ValueError(f"{table}: not a shipped table; choose from {', '.join(shipped.SHIPS)}")
    if quick and weights_dir is None:
        raise ValueError("--quick: a QUICK run is never shipped into the package's weights "
                         "folder; pass --weights-dir DIR")
    results = Path(results)
    table_path = results / table / f"{table}.json"
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: no finished table; run `make reproduce-{table}`"
                                f"{' QUICK=1' if quick else ''} first")
    table_json = json.loads(table_path.read_text())
    if bool(table_json.get("quick")) != bool(quick):
        raise ValueError(f"{table_path}: a {'full' if quick else 'quick'} run, but "
                         f"{'--quick was' if quick else '--quick was not'} given; not shipped")
    if table_json.get("seed") != seed:
        raise ValueError(f"{table_path}: a run of another seed than {seed}; not shipped")
    if table_json.get("profile", "cpu") != profile:
        raise ValueError(f"{table_path}: a run of profile {table_json.get('profile', 'cpu')!r}, "
                         f"not {profile!r}; not shipped")
    run_dir = results / "runs" / run_name(table, data, seed, quick, profile)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder; run `make reproduce-{table}` "
                                "first")
    run, corpus = pipeline.open_run(table, seed=seed, data=data, results=results, quick=quick,
                                    data_dir=data_dir, vctk_root=vctk_root, timit_root=timit_root,
                                    profile=profile)
    stale = [stage for stage in ("ann", "finetune") if not run.stage_done(stage)]
    if stale:
        raise ValueError(f"{run.dir}: the {' and '.join(stale)} stage(s) are missing or were made "
                         f"with other settings than {table}'s config; run `make reproduce-{table}`")
    pairs = [(noisy, clean) for _, clean, noisy in corpus.test_utterances()]
    overlap, batch_size = pipeline.eval_settings(run.cfg)
    peers = {"test_metrics": peer_metrics(pairs, run.cfg.get("eval", {}).get("metrics")),
             "source": "kspikese.publish.peer_metrics: the same test utterances, whole"}
    cards = []
    columns = pipeline.COLUMNS_BY_MODEL[run.cfg["model"]]
    for name, column, stage in zip(shipped.SHIPS[table], columns, ("ann", "finetune")):
        fields = {**card_fields(table_json, run, column), "peers": peers}
        card = export_shipped(run.path(stage), name, fields, weights_dir, pairs, overlap,
                              batch_size)
        check = card["float16_check"]
        print(f"[ship] {name}: {card['weights_bytes'] / 1e6:.1f} MB {card['weights_dtype']}, "
              f"test SI-SNR float32 {check['si_snr_float32']:.3f} dB, float16 "
              f"{check['si_snr_float16']:.3f} dB ({check['delta_db']:+.4f} dB, "
              f"{check['files']} files)", flush=True)
        cards.append(card)
    return cards


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser):
    parser.description = __doc__.split("\n\n")[0].strip('"')
    parser.add_argument("tables", nargs="*", metavar="TABLE",
                        help=f"tables to ship from ({', '.join(shipped.SHIPS)}; default both)")
    parser.add_argument("--results", default="results", help="results folder (default results)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="ship the QUICK run (needs --weights-dir)")
    parser.add_argument("--profile", default="cpu",
                        help="the run's recipe profile (default cpu; e.g. ship)")
    parser.add_argument("--data", default="default", choices=("default", "vctk", "timit"),
                        help="the run's corpus (default: default)")
    parser.add_argument("--data-dir", help="folder of the default corpus")
    parser.add_argument("--vctk-root", help="the noisy VCTK folder (--data vctk)")
    parser.add_argument("--timit-root", help="the TIMIT folder (--data timit)")
    parser.add_argument("--weights-dir", metavar="DIR",
                        help=f"target folder (default: the package's {shipped.WEIGHTS_DIR})")
    one = parser.add_argument_group("one checkpoint instead of a table")
    one.add_argument("--checkpoint", metavar="PATH", help="a run folder or .keras file")
    one.add_argument("--name", choices=shipped.SHIPPED, help="its shipped name")
    one.add_argument("--card", metavar="JSON", help="more fields for the card (a JSON object)")
    one.add_argument("--check", nargs=2, metavar=("CLEAN_DIR", "NOISY_DIR"),
                     help="run the float16 check on the matching files of these folders")
    one.add_argument("--check-max", type=int, metavar="N", help="at most N check files")
    one.add_argument("--overlap", type=float, default=OVERLAP,
                     help=f"the check's frame overlap (default {OVERLAP})")


def _error(message):
    print(f"kspikese ship: error: {message}", file=sys.stderr)


def run(args) -> int:
    """``kspikese ship``: 0 when every model was shipped, 1 when a table's run failed, 2 for bad
    arguments."""
    if args.checkpoint or args.name:
        return _ship_checkpoint(args)
    tables = args.tables or list(shipped.SHIPS)
    unknown = [t for t in tables if t not in shipped.SHIPS]
    if unknown:
        _error(f"TABLE: {', '.join(unknown)} not shipped; choose from {', '.join(shipped.SHIPS)}")
        return 2
    if args.quick and not args.weights_dir:
        _error("--quick: a QUICK run is never shipped into the package's weights folder; pass "
               "--weights-dir DIR")
        return 2
    try:
        for table in tables:
            ship(table, args.results, args.seed, args.weights_dir, args.data_dir, args.quick,
                 args.data, args.vctk_root, args.timit_root, args.profile)
    except (OSError, ValueError) as exc:
        _error(exc)
        return 1
    return 0


def _ship_checkpoint(args) -> int:
    if not (args.checkpoint and args.name):
        _error("--checkpoint and --name go together")
        return 2
    if args.tables:
        _error("give TABLE or --checkpoint, not both")
        return 2
    if not 0 <= args.overlap <= 0.5:
        _error(f"--overlap must be in [0, 0.5], got {args.overlap}")
        return 2
    fields = {}
    if args.card:
        try:
            fields = json.loads(Path(args.card).read_text())
        except (OSError, ValueError) as exc:
            _error(f"--card {args.card}: {exc}")
            return 2
        if not isinstance(fields, dict):
            _error(f"--card {args.card}: expected a JSON object")
            return 2
    try:
        pairs = None
        if args.check:
            pairs = [(noisy, clean) for _, noisy, clean in
                     audio_io.read_named_pairs(*args.check, limit=args.check_max)]
        card = export_shipped(args.checkpoint, args.name, fields, args.weights_dir, pairs,
                              args.overlap)
    except (ModelError, shipped.WeightsError, audio_io.AudioError) as exc:
        _error(exc)
        return 2
    print(f"exported {args.name}: {card['weights_bytes'] / 1e6:.1f} MB "
          f"({card['weights_dtype']}), {card['n_params']:,} parameters -> "
          f"{args.weights_dir or shipped.WEIGHTS_DIR}")
    if "float16_check" in card:
        c = card["float16_check"]
        print(f"float16 check on {c['files']} test files: mean SI-SNR "
              f"{c['si_snr_float32']:.3f} dB (float32) vs {c['si_snr_float16']:.3f} dB (float16), "
              f"change {c['delta_db']:+.3f} dB")
    return 0
