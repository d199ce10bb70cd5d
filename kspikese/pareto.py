"""``kspikese pareto --table tableN`` (``make pareto``): the accuracy–energy front of a table's SNN.

For every point of the grid in ``experiments/bench/pareto.yaml`` (``target_spikes``, ``v0``,
``timesteps``, ``penalty_weight``; its ``quick:`` grid with ``--quick``) the table's trained ANN
(from its run folder, trained with the table's recipe if missing; or ``--ann NAME|PATH``) is
converted with the table's ``convert:`` section and the point's knobs, scored on validation
utterances (SI-SNR), fine-tuned for a few steps with the spike-count penalty
(:mod:`kspikese.spike_penalty`), scored again, and priced (:func:`kspikese.energy.estimate`,
corrected counts, rates measured on validation frames).

A point is *Pareto-optimal* (:func:`pareto_front`) when no other point, the ANN included (at its
dense ``cpu`` price), has both lower or equal energy (J per inference on ``cpu-events`` for an
SNN) and higher or equal fine-tuned SI-SNR, one of them strictly.  The issue's target is flagged
too: fine-tuned SI-SNR ≥ the ANN's − 0.5 dB with synaptic events ≤ ANN MACs / 3.

Writes ``<results>/pareto/<table>[-quick].{md,csv,json}`` and ``.png`` (SI-SNR against J on
``cpu-events`` and against synaptic events; the ANN and the front marked).  Each point is cached
in ``points/`` under the fingerprint of the ANN and its settings, so an interrupted grid resumes.
"""

import itertools
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from kspikese import config as configs
from kspikese import files
from kspikese.operating_point import describe_operating_point, is_operating_point, operating_point

SETTINGS = configs.EXPERIMENTS_DIR / "bench" / "pareto.yaml"
KNOBS = ("target_spikes", "v0", "timesteps", "penalty_weight")
OPTIONAL_KNOBS = {"allocation": "uniform"}  # knobs a grid part may leave out, with their default
REQUIRED = ("finetune_steps", "valid_utterances", "energy_frames", "grid")
DEVICES = ("cpu", "cpu-events", "loihi", "spinnaker2")
FRONT_DEVICE = "cpu-events"
TARGET_DB, TARGET_RATIO = 0.5, 3.0  # within 0.5 dB of the ANN at <= 1/3 of its MACs


# ----------------------------------------------------------------------------- settings
def load_settings(path=SETTINGS, quick=False):
    """The grid's settings (the ``quick:`` section's keys replace the others with ``quick``).

    Raises
    ------
    kspikese.config.ConfigError
        Naming the file and the missing or bad key.
    """
    cfg = configs.read_yaml(path)
    quick_part = cfg.pop("quick", {}) or {}
    if quick:
        cfg.update(quick_part)
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise configs.ConfigError(f"{path}: missing {missing}")
    for key in ("finetune_steps", "valid_utterances", "energy_frames"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 1:
            raise configs.ConfigError(f"{path}: {key} must be an integer >= 1, got {cfg[key]!r}")
    try:
        cfg["points"] = grid_points(cfg["grid"])
    except ValueError as exc:
        raise configs.ConfigError(f"{path}: {exc}") from None
    return cfg


def grid_points(grid):
    """The points of a grid: the product of a mapping's lists, or the union (first occurrence
    kept, in order) of the products of a list of mappings.

    Parameters
    ----------
    grid : dict or list of dict
        Keys :data:`KNOBS`, each a value or a list of values; optionally ``allocation``
        (``uniform``, the default, ``events`` or ``measured``: :mod:`kspikese.convert.allocation`).

    Returns
    -------
    list of dict
        ``{target_spikes, v0, timesteps, penalty_weight, allocation}`` per point.
    """
    parts = grid if isinstance(grid, list) else [grid]
    points, seen = [], set()
    for part in parts:
        if not isinstance(part, dict):
            raise ValueError(f"grid: expected a mapping of {list(KNOBS)}, got {part!r}")
        unknown = sorted(set(part) - set(KNOBS) - set(OPTIONAL_KNOBS))
        missing = [k for k in KNOBS if k not in part]
        if unknown or missing:
            raise ValueError(f"grid: every part needs exactly the keys {list(KNOBS)}, and "
                             f"may have {list(OPTIONAL_KNOBS)} (unknown {unknown}, missing "
                             f"{missing})")
        part = {**OPTIONAL_KNOBS, **part}
        keys = KNOBS + tuple(OPTIONAL_KNOBS)
        values = [part[k] if isinstance(part[k], list) else [part[k]] for k in keys]
        for combo in itertools.product(*values):
            point = dict(zip(keys, combo))
            point = {"target_spikes": float(point["target_spikes"]), "v0": point["v0"],
                     "timesteps": int(point["timesteps"]),
                     "penalty_weight": float(point["penalty_weight"]),
                     "allocation": str(point["allocation"])}
            key = json.dumps(point, sort_keys=True)
            if key not in seen:
                seen.add(key)
                points.append(point)
    return points


# ------------------------------------------------------------------------------- front
def from_json(row):
    """A point as read back from JSON: the ``null`` that stands for NaN (an SI-SNR of a silent
    output) becomes NaN again."""
    def number(v):
        return float("nan") if v is None else v

    out = {k: (number(v) if k not in ("v0", "allocation") else v) for k, v in row.items()
           if k != "j"}
    out.setdefault("allocation", "uniform")  # points cached before the knob existed
    out["j"] = {d: number(v) for d, v in row.get("j", {}).items()}
    return out


def pareto_front(costs, qualities):
    """Which points are Pareto-optimal for (lower cost, higher quality).

    Point ``i`` is optimal iff both values are finite and no point ``j`` has
    ``cost_j <= cost_i`` and ``quality_j >= quality_i`` with one of them strict.  Equal points
    are all optimal; a point with a NaN value is never optimal and dominates nothing.

    Parameters
    ----------
    costs, qualities : sequence of float

    Returns
    -------
    list of bool
    """
    c = np.asarray(costs, dtype=float)
    q = np.asarray(qualities, dtype=float)
    if c.shape != q.shape:
        raise ValueError(f"pareto_front: {len(c)} costs but {len(q)} qualities")
    finite = np.isfinite(c) & np.isfinite(q)
    flags = []
    for i in range(len(c)):
        if not finite[i]:
            flags.append(False)
            continue
        dominated = finite & (c <= c[i]) & (q >= q[i]) & ((c < c[i]) | (q > q[i]))
        flags.append(not bool(dominated.any()))
    return flags


def mark(ann, points):
    """Add ``pareto`` and ``meets_target`` to the ANN row and every point (in place).

    The ANN enters the front at its dense ``cpu`` price, each SNN point at its
    :data:`FRONT_DEVICE` price with its fine-tuned SI-SNR.
    """
    costs = [ann["j"]["cpu"]] + [p["j"][FRONT_DEVICE] for p in points]
    quality = [ann["si_snr"]] + [p["si_snr_finetuned"] for p in points]
    flags = pareto_front(costs, quality)
    ann["pareto"] = flags[0]
    for p, flag in zip(points, flags[1:]):
        p["pareto"] = flag
        p["events_per_mac"] = p["synaptic_events"] / ann["macs"]
        p["ann_snn_ratio"] = ann["j"]["cpu"] / p["j"][FRONT_DEVICE]
        p["meets_target"] = bool(p["si_snr_finetuned"] >= ann["si_snr"] - TARGET_DB
                                 and p["synaptic_events"] <= ann["macs"] / TARGET_RATIO)
    return ann, points


# ------------------------------------------------------------------------------ report
HEADER = ["Model", "target spikes", "v0", "T", "penalty w", "allocation",
          "val SI-SNR converted (dB)",
          "val SI-SNR fine-tuned (dB)", "spikes/neuron/step", "synaptic events/inf",
          "events / ANN MACs"] + [f"J/inf {d}" for d in DEVICES] + [
          "ANN/SNN (cpu-events)", "Pareto", "target met", "table's point"]


def _g(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def table_rows(ann, points):
    """The table's rows: the ANN first, then every point."""
    rows = [["ANN", "–", "–", "–", "–", "–", _g(ann["si_snr"], 4), _g(ann["si_snr"], 4), "–",
             f"{_g(float(ann['macs']))} (MACs)", "1"]
            + [_g(ann["j"]["cpu"]) if d == "cpu" else "–" for d in DEVICES]
            + ["1", "yes" if ann["pareto"] else "", "", ""]]
    for p in points:
        rows.append(["SNN", _g(p["target_spikes"]), str(p["v0"]), str(p["timesteps"]),
                     _g(p["penalty_weight"]), p.get("allocation", "uniform"),
                     _g(p["si_snr_converted"], 4),
                     _g(p["si_snr_finetuned"], 4), _g(p["mean_spikes_per_neuron"]),
                     _g(p["synaptic_events"]), _g(p["events_per_mac"])]
                    + [_g(p["j"][d]) for d in DEVICES]
                    + [_g(p["ann_snn_ratio"]), "yes" if p["pareto"] else "",
                       "yes" if p["meets_target"] else "",
                       "yes" if p.get("operating_point") else ""])
    return rows


def origin_note(info):
    """Which model and data the table came from."""
    d = info["data"]
    synthetic = " (SYNTHETIC stand-in audio)" if d.get("synthetic") else ""
    quick = (" **QUICK run**: the quick grid on the experiment's small `quick` model — a smoke "
             "test, not a result." if info["quick"] else "")
    return (f"ANN: {info['ann_from']}.{quick}\n\n"
            f"Data: {d.get('corpus')}{synthetic}; SI-SNR on the first {info['valid_utterances']} "
            f"validation utterances (whole utterances, the pipeline's inference path); energy "
            f"on {info['energy_frames']} non-overlapping validation frames of "
            f"{info['frame_len']} samples (corrected counts, rates measured there); fine-tune: "
            f"{info['finetune_steps']} steps at lr {info['finetune_lr']} on the training split, "
            f"penalty target {info['penalty_target']:g} spikes per neuron per step. Conversion: "
            f"the table's `convert:` {info['convert']} with each point's knobs.")


def write_outputs(out_dir, stem, ann, points, info):
    """Mark the front and write ``stem.md|csv|json`` and ``stem.png``; returns the Markdown."""
    from kspikese import report

    mark(ann, points)
    rows = table_rows(ann, points)
    chosen = [p for p in points if p["pareto"]]
    met = [p for p in points if p["meets_target"]]
    md = (f"# Accuracy–energy front: {info['table']} ({info['title']})\n\n{origin_note(info)}\n\n"
          + report.markdown_table(HEADER, rows) + "\n\n"
          f"Pareto: no other point (the ANN at its dense cpu price included) has lower or equal J "
          f"on {FRONT_DEVICE} and higher or equal fine-tuned SI-SNR. Target (issue 13): fine-tuned "
          f"SI-SNR ≥ ANN − {TARGET_DB} dB with synaptic events ≤ ANN MACs / {TARGET_RATIO:g}: "
          f"{len(met)} of {len(points)} points. Pareto-optimal SNN points: {len(chosen)}.\n\n"
          f"The table's operating point (its YAML's `convert:`/`finetune:`): "
          f"{describe_operating_point(info['operating_point'])}"
          + ("" if any(p.get("operating_point") for p in points) else " — not on this grid")
          + ".\n\n"
          f"![front]({stem}.png)\n")
    report.write_all(out_dir, stem, md, HEADER, rows,
                     {"info": info, "ann": ann, "points": points, "header": HEADER})
    plot(ann, points, Path(out_dir) / f"{stem}.png", f"{info['table']}"
         + (" (QUICK)" if info["quick"] else ""))
    return md


def plot(ann, points, path, title):
    """SI-SNR (fine-tuned) against J on cpu-events and against synaptic events."""
    from kspikese.report import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    quality = [p["si_snr_finetuned"] for p in points]
    for ax, xs, ann_x, label in (
            (axes[0], [p["j"][FRONT_DEVICE] for p in points], ann["j"]["cpu"],
             f"J per inference ({FRONT_DEVICE}; ANN: cpu, dense)"),
            (axes[1], [p["synaptic_events"] for p in points], ann["macs"],
             "synaptic events per inference (ANN: MACs)")):
        ax.scatter(xs, quality, c=[p["timesteps"] for p in points], cmap="viridis", s=28,
                   label="SNN points (colour: T)", zorder=2)
        front = sorted((x, y) for x, y, p in zip(xs, quality, points) if p["pareto"])
        if front:
            ax.plot(*zip(*front), "o", mfc="none", mec="tab:red", ms=11, label="Pareto-optimal")
        ax.plot([ann_x], [ann["si_snr"]], "*", color="k", ms=14, label="ANN", zorder=3)
        ax.axhline(ann["si_snr"] - TARGET_DB, color="grey", lw=0.8, ls="--")
        ax.axvline(ann_x / TARGET_RATIO, color="grey", lw=0.8, ls=":")
        if all(x > 0 for x in xs + [ann_x]):
            ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("val SI-SNR after fine-tune (dB)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"accuracy–energy front, {title} (dashed: ANN − {TARGET_DB} dB; dotted: "
                 f"1/{TARGET_RATIO:g} of the ANN)", fontsize=9)
    save_figure(fig, path)


# ------------------------------------------------------------------------------- points
def point_settings(cfg, point):
    """The table's ``convert:`` section with one grid point's knobs."""
    return {**cfg["convert"], "target_spikes": point["target_spikes"], "v0": point["v0"],
            "timesteps": point["timesteps"], "allocation": point.get("allocation", "uniform")}


class ArgumentError(ValueError):
    """A bad ``--ann``; the message names it."""


def load_ann(arg, frame_len):
    """The ANN given by ``--ann`` (a shipped name, card, run folder or checkpoint)."""
    from kspikese import hub
    from kspikese.convert import is_spiking
    from kspikese.inference import ModelError

    try:
        ann, card = hub.load(arg, ann=not str(arg).endswith(".json"))
    except ModelError as exc:
        raise ArgumentError(f"--ann {arg}: {exc}") from None
    if is_spiking(ann):
        raise ArgumentError(f"--ann {arg}: is a spiking model; give an ANN")
    if ann.input_shape[1] not in (None, frame_len):
        raise ArgumentError(f"--ann {arg}: takes frames of {ann.input_shape[1]} samples, the "
                         f"table's frame_len is {frame_len}")
    return ann, card


def run_grid(table, *, out=None, seed=0, data="default", results="results", quick=False,
             force=False, data_dir=None, vctk_root=None, timit_root=None, profile="cpu",
             ann_arg=None, settings_path=SETTINGS, verbose=0):
    """Run the grid of ``settings_path`` on ``table`` and write the front; returns the Markdown.

    Arguments as :func:`kspikese.pipeline.reproduce`; ``ann_arg``: an ANN to use instead of the
    run's (``--ann``); ``out``: the output folder (default ``<results>/pareto``).
    """
    from kspikese import energy, hybrid, pipeline
    from kspikese.corpus import load_pairs
    from kspikese.data.framing import stacked_frames
    from kspikese.metrics.snr import si_snr

    settings = load_settings(settings_path, quick)
    t0 = time.perf_counter()
    cfg = configs.load(table, quick=quick, profile=profile)
    if ann_arg is not None:
        ann, _ = load_ann(ann_arg, cfg["frame_len"])
    run_, corpus = pipeline.open_run(table, seed=seed, data=data, results=results, quick=quick,
                                     force=force, data_dir=data_dir, vctk_root=vctk_root,
                                     timit_root=timit_root, profile=profile)
    if ann_arg is None:
        had = run_.stage_done("ann")
        ann = pipeline.train_ann(run_, corpus, verbose=verbose)
        ann_from = (f"the run's trained ANN ({run_.path('ann')}"
                    + (")" if had else ", trained now with the table's recipe)"))
        ann_key = run_.fingerprints()["ann"]
    else:
        ann_from = f"--ann {ann_arg}"
        ann_key = hybrid.weights_digest(ann)
    cfg = run_.cfg
    tag = "" if run_.profile == "cpu" else f"-{run_.profile}"
    stem = f"{run_.table}{'-quick' if quick else ''}{tag}"
    out = Path(out) if out is not None else Path(results) / "pareto"
    valid = load_pairs(corpus.valid[: settings["valid_utterances"]])
    calibration = corpus.calibration_frames()
    frames = stacked_frames([n for _, _, n in valid], cfg["frame_len"], settings["energy_frames"])

    def score(model):
        outs = pipeline.enhance_all(model, [n for _, _, n in valid], cfg)
        return float(np.mean([si_snr(c, o) for (_, c, _), o in zip(valid, outs)]))

    ann_est = energy.estimate(energy.with_frame_len(ann, cfg["frame_len"]))
    ann_row = {"si_snr": score(ann), "macs": int(ann_est.dense_ops), "params": ann_est.params,
               "j": dict(ann_est.totals)}
    print(f"[pareto] ANN ({ann_from}): val SI-SNR {ann_row['si_snr']:.2f} dB, "
          f"{ann_row['macs']:.4g} MACs, {ann_row['j']['cpu']:.3g} J cpu", flush=True)
    steps = settings["finetune_steps"]
    ft_cfg = {**cfg["finetune"], "epochs": 1, "steps_per_epoch": steps, "patience": 1,
              "validation_steps": settings.get("validation_steps", 2)}
    for k in ("schedule", "warmup_steps", "spike_penalty"):  # one short constant-rate epoch
        ft_cfg.pop(k, None)
    penalty_target = float(settings.get("penalty_target", 0.0))
    op = operating_point(cfg)
    points = []
    for i, point in enumerate(settings["points"]):
        conv = point_settings(cfg, point)
        penalty = {"weight": point["penalty_weight"], "target": penalty_target,
                   "readout": conv.get("readout", "readout")}
        key = configs.fingerprint(ann_key, conv, penalty, ft_cfg, settings["valid_utterances"],
                                  settings["energy_frames"], seed)
        path = out / "points" / stem / f"{key}.json"
        if path.exists() and not force:
            points.append(from_json(json.loads(path.read_text())))
            continue
        t1 = time.perf_counter()
        snn = hybrid.convert(ann, calibration, seed=seed, **conv)
        converted = score(snn)
        conv_est = energy.estimate(energy.with_frame_len(snn, cfg["frame_len"]), frames)
        work = out / "work" / stem / key
        hybrid.finetune(snn, corpus.training_stream, corpus.validation_stream(), work,
                        seed=seed, verbose=verbose, spike_penalty=penalty, ann=ann,
                        **hybrid.stage_settings(ft_cfg))
        shutil.rmtree(work, ignore_errors=True)
        est = energy.estimate(energy.with_frame_len(snn, cfg["frame_len"]), frames)
        row = {**point, "si_snr_converted": converted, "si_snr_finetuned": score(snn),
               "synaptic_events": float(est.synops),
               "synaptic_events_converted": float(conv_est.synops),
               "mean_spikes_per_neuron": float(est.mean_firing),
               "mean_spikes_per_neuron_converted": float(conv_est.mean_firing),
               "j": {d: float(est.totals[d]) for d in DEVICES},
               "finetune_steps": steps, "seconds": round(time.perf_counter() - t1, 1)}
        files.write_json(path, row)
        points.append(row)
        print(f"[pareto] {i + 1}/{len(settings['points'])} target {point['target_spikes']:g}, "
              f"v0 {point['v0']}, T {point['timesteps']}, w {point['penalty_weight']:g}: "
              f"{converted:.2f} -> {row['si_snr_finetuned']:.2f} dB, "
              f"{row['synaptic_events']:.3g} events ({row['synaptic_events'] / ann_row['macs']:.3g}"
              f" x ANN MACs), {row['j'][FRONT_DEVICE]:.3g} J {FRONT_DEVICE} "
              f"({row['seconds']:.0f} s)", flush=True)
    for p in points:
        p["operating_point"] = is_operating_point(p, op, penalty_target)
    info = {"table": run_.table, "title": cfg["title"], "quick": bool(quick), "seed": seed,
            "ann_from": ann_from, "data": corpus.info, "valid_utterances": len(valid),
            "energy_frames": int(len(frames)), "frame_len": int(cfg["frame_len"]),
            "finetune_steps": steps, "finetune_lr": cfg["finetune"]["lr"],
            "penalty_target": penalty_target, "convert": cfg["convert"],
            "operating_point": op,
            "settings": str(settings_path), "runtime_s": round(time.perf_counter() - t0, 1)}
    return write_outputs(out, stem, ann_row, points, info)


# ------------------------------------------------------------------------------ command
def add_arguments(parser):
    from kspikese.experiment import add_common_arguments

    parser.add_argument("--table", default="table1",
                        help="experiment whose ANN is converted (default table1)")
    parser.add_argument("--ann", default=None, metavar="NAME|PATH",
                        help="use this ANN instead of the run's (a shipped name such as "
                             "wave-u-net, a card, a run folder or a .keras checkpoint)")
    parser.add_argument("--settings", default=str(SETTINGS), metavar="YAML",
                        help="the grid (default experiments/bench/pareto.yaml)")
    add_common_arguments(parser)


def run(args):
    from kspikese.corpus import CorpusError
    from kspikese.experiment import check_arguments

    if check_arguments(args, "pareto") is None:
        return 2
    try:
        load_settings(args.settings, args.quick)
        md = run_grid(args.table, seed=args.seed, data=args.data, results=args.results,
                      quick=args.quick, force=args.force, data_dir=args.data_dir,
                      vctk_root=args.vctk_root, timit_root=args.timit_root,
                      profile=args.profile, ann_arg=args.ann, settings_path=args.settings)
    except (configs.ConfigError, CorpusError, ArgumentError) as exc:
        print(f"kspikese pareto: error: {exc}", file=sys.stderr)
        return 2
    print(md)
    return 0
