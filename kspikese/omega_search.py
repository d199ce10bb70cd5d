"""``kspikese omega-search``: the paper's grid over ω (dt), with the activation scale as a second axis.

For each ω in the grid (paper §4.2: 1e-4, 1e-3, 1e-2, 1e-1, 1) and each activation scale
(the ``convert: activation_scale`` options, see :mod:`kspikese.convert.settings`), the table's trained ANN is converted,
fine-tuned briefly with spike-aware training, and scored on the validation set (SI-SNR), with the
SNN's estimated energy per inference beside it, so accuracy can be read against energy.
Results: ``results/omega_search/<table>/omega_search.{md,csv,json}`` and ``omega_search.png``.
Each grid point is cached in ``points/`` so an interrupted search resumes.
"""

import json
import time

import numpy as np

from kspikese import config as configs
from kspikese import files


def add_arguments(parser):
    from kspikese.experiment import add_common_arguments

    parser.add_argument("--table", default="table1", help="experiment whose ANN is searched over")
    parser.add_argument("--omegas", default=None, help="comma-separated ω grid (default: the YAML's)")
    parser.add_argument("--scales", default=None, help="comma-separated scales (default: the YAML's)")
    add_common_arguments(parser)


def _grid(text, default):
    if text is None:
        return list(default)
    return [v.strip() for v in text.split(",") if v.strip()]


def run(args):
    from kspikese import hybrid, pipeline, report
    from kspikese.corpus import load_pairs
    from kspikese.data.framing import stacked_frames
    from kspikese.metrics.snr import si_snr

    run_, corpus = pipeline.open_run(
        args.table, seed=args.seed, data=args.data, results=args.results, quick=args.quick,
        data_dir=args.data_dir, vctk_root=args.vctk_root, timit_root=args.timit_root,
        profile=args.profile)
    search = run_.cfg.get("omega_search", {})
    omegas = [float(w) for w in _grid(args.omegas, search.get("omegas", [1e-4, 1e-3, 1e-2, 1e-1, 1]))]
    scales = _grid(args.scales, search.get("scales", ["none", 1000, "int16", "data"]))
    steps = int(search.get("steps", 50 if not args.quick else 2))
    tag = "" if run_.profile == "cpu" else f"-{run_.profile}"
    out = run_.results / "omega_search" / f"{run_.table}{'-quick' if args.quick else ''}{tag}"
    ann = pipeline.train_ann(run_, corpus, verbose=0)
    valid = load_pairs(corpus.valid)
    calibration = corpus.calibration_frames()
    energy_frames = stacked_frames([n for _, _, n in valid], run_.cfg["frame_len"],
                                   int(search.get("energy_frames", 8)))
    energy_fn = _energy_function()
    rows = []
    t0 = time.perf_counter()
    for scale in scales:
        for omega in omegas:
            conv_cfg = {**run_.cfg["convert"], "dt": omega, "activation_scale": scale}
            key = configs.fingerprint(run_.fingerprints()["ann"], conv_cfg, steps,
                                      run_.cfg["finetune"]["lr"])
            point_path = out / "points" / f"{key}.json"
            if point_path.exists() and not args.force:
                rows.append(json.loads(point_path.read_text()))
                continue
            t1 = time.perf_counter()
            snn = hybrid.convert(ann, calibration, seed=run_.seed, **conv_cfg)

            def score(model):
                outs = pipeline.enhance_all(model, [n for _, _, n in valid], run_.cfg)
                return float(np.mean([si_snr(c, o) for (_, c, _), o in zip(valid, outs)]))

            converted = score(snn)
            ft_cfg = {**run_.cfg["finetune"], "epochs": 1, "steps_per_epoch": steps,
                      "patience": 1}
            hybrid.finetune(snn, corpus.training_stream, corpus.validation_stream(),
                            out / "work" / key, seed=run_.seed, verbose=0, ann=ann,
                            **hybrid.stage_settings(ft_cfg))
            row = {"omega": omega, "activation_scale": str(scale), "val_si_snr_converted": converted,
                   "val_si_snr_finetuned": score(snn), "finetune_steps": steps,
                   "energy_j_per_inference": energy_fn(snn, energy_frames),
                   "seconds": round(time.perf_counter() - t1, 1)}
            files.write_json(point_path, row)
            rows.append(row)
            print(f"[omega-search] ω={omega:g} scale={scale}: converted "
                  f"{converted:.2f} dB, fine-tuned {row['val_si_snr_finetuned']:.2f} dB", flush=True)
    header = ["ω (dt)", "activation scale", "val SI-SNR converted (dB)",
              "val SI-SNR fine-tuned (dB)"] + [f"J/inference ({d})" for d in ENERGY_DEVICES]
    table_rows = [[f"{r['omega']:g}", r["activation_scale"], report.fmt(r["val_si_snr_converted"]),
                   report.fmt(r["val_si_snr_finetuned"])]
                  + [report.fmt(r["energy_j_per_inference"].get(d), 4) for d in ENERGY_DEVICES]
                  for r in rows]
    info = corpus.info
    md = (f"# ω search for {run_.table} ({run_.cfg['title']})\n\n"
          f"Data: {info['corpus']}, validation split ({info['valid_utterances']} utterances). "
          f"Each point: conversion of the same trained ANN, then {steps} steps of spike-aware "
          f"fine-tuning (lr {run_.cfg['finetune']['lr']}).\n\n"
          + report.markdown_table(header, table_rows) + "\n")
    report.write_all(out, "omega_search", md, header, table_rows,
                     {"table": run_.table, "data": info, "points": rows,
                      "runtime_s": round(time.perf_counter() - t0, 1)})
    _plot(rows, out / "omega_search.png", run_.table)
    print(md)
    return 0


def _energy_function():
    """``f(snn, frames) -> {device: J/inference}`` (corrected estimate, event-driven devices).

    KerasSpiking's ``cpu`` device charges every synapse every step whatever the spikes, so an SNN
    costs the same as its ANN there; the accuracy/energy trade-off of ω shows on event-driven
    devices (``loihi``, and ``cpu-events``: the CPU's cost per operation paid per spike event).
    """
    from kspikese import energy

    def fn(snn, frames):
        est = energy.estimate(snn, frames, corrected=True)
        return {d: est.totals[d] for d in ENERGY_DEVICES if d in est.totals}

    return fn


ENERGY_DEVICES = ("loihi", "cpu-events")


def _plot(rows, path, table):
    from kspikese.report import pyplot, save_figure

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for scale in dict.fromkeys(r["activation_scale"] for r in rows):
        pts = sorted((r for r in rows if r["activation_scale"] == scale), key=lambda r: r["omega"])
        ax1.semilogx([r["omega"] for r in pts], [r["val_si_snr_finetuned"] for r in pts], "o-",
                     label=f"scale {scale}")
        if all(r["energy_j_per_inference"].get("loihi") for r in pts):
            ax2.semilogx([r["energy_j_per_inference"]["loihi"] for r in pts],
                         [r["val_si_snr_finetuned"] for r in pts], "o-", label=f"scale {scale}")
    ax1.set_xlabel("ω (dt)")
    ax1.set_ylabel("val SI-SNR after short fine-tune (dB)")
    ax2.set_xlabel("energy per inference (J, loihi, corrected)")
    ax2.set_ylabel("val SI-SNR (dB)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"ω search, {table}", fontsize=9)
    save_figure(fig, path)
