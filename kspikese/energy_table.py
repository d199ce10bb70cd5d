"""``kspikese energy`` (``make energy``): Table 5, Joules per inference of the ANNs and their SNNs.

For each model (Wave-U-Net from Table 1's run, Conv-TasNet from Table 3's run) it costs the ANN
on ``cpu`` and the SNN (fine-tuned when it exists, else the converted SNN, labelled as such) on
``cpu``, ``cpu-events``, ``loihi`` and ``spinnaker2``, with firing rates measured on noisy test
utterances of the run's data.  Two estimates side by side: KerasSpiking 0.3.0 as it stands
(what the paper's numbers come from) and the corrected one (:mod:`kspikese.energy`).

Writes into ``<results>/table5/``: ``table5.md|csv|json`` and, per model,
``layers_<model>.md|csv`` (per-layer energy and firing rates) and ``layers_<model>.png``.
``--untrained`` costs freshly built, untrained full-size models instead of the pipeline's (for
development; every table says so).
"""

import argparse
import time
from pathlib import Path

import numpy as np


MODELS = (("wave_u_net", "table1"), ("conv_tasnet", "table3"))
DEVICE_LABELS = {"cpu": "cpu (dense)", "cpu-events": "cpu (event-driven)", "loihi": "Loihi",
                 "spinnaker": "SpiNNaker", "spinnaker2": "SpiNNaker 2"}
NDNS_BASELINE_MOPS = 14.54  # Intel N-DNS baseline SDNN, power proxy (M-Ops/s), track 1 board


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("--seed", type=int, default=0, help="random seed of the runs (default 0)")
    parser.add_argument("--data", default="default", choices=("default", "vctk", "timit"),
                        help="data of the runs and of the firing rates (default: default corpus)")
    parser.add_argument("--results", default="results", help="results folder (default results)")
    parser.add_argument("--data-dir", default=None, help="default corpus folder")
    parser.add_argument("--vctk-root", help="noisy VCTK folder (with --data vctk)")
    parser.add_argument("--timit-root", help="TIMIT folder (with --data timit)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick runs' models and few test utterances (a smoke run)")
    parser.add_argument("--force", action="store_true", help="retrain the runs from scratch")
    parser.add_argument("--utterances", type=int, default=None,
                        help="test utterances for the firing rates (default 24; 3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per batch (default 4)")
    parser.add_argument("--models", nargs="+", choices=[m for m, _ in MODELS],
                        default=[m for m, _ in MODELS], help="models to cost (default both)")
    parser.add_argument("--untrained", action="store_true",
                        help="cost freshly built untrained models (no pipeline; for development)")


# ------------------------------------------------------------------------------ inputs
def _data_dir(args):
    import os

    return args.data_dir or os.environ.get("KSPIKESE_DATA_DIR") or "data"


def _splits(cfg, args):
    from kspikese import experiment

    return experiment.data_splits(cfg, args.data, _data_dir(args),
                                  vctk_root=args.vctk_root, timit_root=args.timit_root)


def _frames(pairs, frame_len):
    from kspikese.data.framing import frame
    from kspikese.experiment import load_audio_pairs

    framed = [frame(noisy, frame_len)[0] for _, _, noisy in load_audio_pairs(pairs)]
    return np.concatenate(framed, 0)[..., None].astype(np.float32)


def _load_models(model_key, table, args, cfg):
    """``(ann, snn, snn_stage)``: the pipeline's models, or fresh untrained ones."""
    from kspikese import convert, experiment, models, training

    if args.untrained:
        training.set_seed(args.seed)
        ann = models.build_model(cfg["model"], frame_len=cfg["frame_len"],
                                 **(cfg.get("model_kwargs") or {}))
        calibration = None
        if convert.needs_calibration(cfg["convert"]):
            calibration = _frames(_splits(cfg, args)["train"][:16], cfg["frame_len"])[:16]
        return ann, convert.convert(ann, cfg["convert"], args.seed, calibration), "untrained"
    paths = experiment.ensure_models(table, seed=args.seed, data=args.data, results=args.results,
                                     quick=args.quick, force=args.force, data_dir=args.data_dir,
                                     vctk_root=args.vctk_root, timit_root=args.timit_root)
    ann = models.load_model(paths["ann"])
    if paths.get("finetuned") and Path(paths["finetuned"]).exists():
        return ann, models.load_model(paths["finetuned"]), "fine-tuned SNN"
    print(f"[{model_key}] no fine-tuned SNN at {paths.get('finetuned')}: using the converted SNN",
          flush=True)
    return ann, models.load_model(paths["converted"]), "converted SNN (not fine-tuned)"


def example_frames(cfg, args, n_utterances, frame_len):
    """Noisy test utterances of the run's data, cut into non-overlapping frames ``(n, L, 1)``."""
    splits = _splits(cfg, args)
    pairs = splits["test"][:n_utterances]
    data = _frames(pairs, frame_len)
    info = dict(splits["info"])
    return data, {"corpus": info.get("corpus", args.data), "split": "test",
                  "utterances": len(pairs), "frames": int(len(data)),
                  "synthetic": info.get("synthetic")}


# ------------------------------------------------------------------------------ costing
def cost_model(model_key, ann, snn, frames, batch_size=4, progress=True):
    """Stock and corrected estimates of the ANN (``cpu``) and the SNN (all devices)."""
    from kspikese import energy

    ann = energy.with_frame_len(ann, frames.shape[1])
    snn = energy.with_frame_len(snn, frames.shape[1])
    return {"ann": energy.compare(ann),
            "snn": energy.compare(snn, frames, batch_size=batch_size, progress=progress)}


def summarize(model_key, costs, stage, data_info):
    """One model's Table 5 entry (plain numbers, JSON-ready)."""
    from kspikese.energy import PAPER_TABLE5

    paper = PAPER_TABLE5[model_key]
    ann, snn = costs["ann"], costs["snn"]
    secs = snn["corrected"].seconds_of_audio
    paper_events = {"ann": paper["ann_j"] / 8.6e-9, "snn": paper["snn_j"] / 8.6e-9}
    entry = {
        "model": paper["label"], "snn_stage": stage, "firing_rates_from": data_info,
        "params": ann["corrected"].params, "params_snn": snn["corrected"].params,
        "paper": {"params": paper["params"], "ann_j": paper["ann_j"], "snn_j": paper["snn_j"],
                  "ratio": paper["ann_j"] / paper["snn_j"],
                  "ann_events_at_8.6nJ": paper_events["ann"]},
        "frame_len": snn["corrected"].frame_len, "seconds_per_inference": secs,
        "dt": snn["corrected"].dt, "timesteps": snn["corrected"].timesteps,
    }
    for kind in ("stock", "corrected"):
        a, s = ann[kind], snn[kind]
        e = {"ann_j": {"cpu": a.totals["cpu"]}, "snn_j": dict(s.totals),
             "ratio": {d: a.totals["cpu"] / v if v > 0 else float("inf")
                       for d, v in s.totals.items()},
             "ann_dense_ops": a.dense_ops, "snn_dense_ops": s.dense_ops,
             "ann_ops_vs_paper": a.dense_ops / paper_events["ann"],
             "snn_synops": s.synops, "snn_synops_graded": s.synops_graded,
             "snn_neuron_updates": s.neuron_updates,
             "snn_synops_per_s": s.synops / secs,
             "ndns_mops_per_s": (s.synops_graded + s.neuron_updates) / secs / 1e6,
             "ndns_synops_mops_per_s": s.synops_graded / secs / 1e6,
             "ann_mops_per_s": a.dense_ops / secs / 1e6,
             "uncounted_layers": sorted(set(a.uncounted) | set(s.uncounted))}
        entry[kind] = e
    entry["mean_spikes_per_neuron"] = snn["corrected"].mean_firing
    entry["mean_rate_hz"] = snn["corrected"].mean_firing / (snn["corrected"].dt *
                                                            snn["corrected"].timesteps)
    return entry


# ------------------------------------------------------------------------------ tables
def _g(x, digits=3):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def table5_rows(entries):
    """Rows of the main table: per model, the ANN on cpu and the SNN on every device."""
    from kspikese.energy import SNN_DEVICES

    header = ["Model", "Params (ours)", "Params (paper)", "Device",
              "J/inf KerasSpiking (stock)", "J/inf corrected", "J/inf paper",
              "ANN/SNN stock", "ANN/SNN corrected", "ANN/SNN paper"]
    rows = []
    for e in entries:
        p = e["paper"]
        rows.append([e["model"], f"{e['params'] / 1e6:.2f}M", f"{p['params'] / 1e6:.2f}M",
                     "cpu (dense)", _g(e["stock"]["ann_j"]["cpu"]),
                     _g(e["corrected"]["ann_j"]["cpu"]), _g(p["ann_j"]), "", "", ""])
        for d in SNN_DEVICES:
            rows.append([f"SNN-{e['model']} ({e['snn_stage']})", "", "", DEVICE_LABELS[d],
                         _g(e["stock"]["snn_j"][d]), _g(e["corrected"]["snn_j"][d]), "",
                         _g(e["stock"]["ratio"][d]), _g(e["corrected"]["ratio"][d]), ""])
        rows.append([f"SNN-{e['model']} (paper)", "", "", "not stated", "", "", _g(p["snn_j"]),
                     "", "", _g(p["ratio"])])
    return header, rows


def ops_rows(entries):
    header = ["Model", "ANN ops/inf (stock)", "ANN ops/inf (corrected)", "paper ANN ops/inf "
              "(J / 8.6 nJ)", "stock / paper", "SNN synaptic events/inf", "SNN synaptic events "
              "per s of audio", "N-DNS power proxy (M-Ops/s)", "of which SynOps (M-Ops/s)",
              "ANN dense (M-Ops/s)",
              "mean spikes/neuron/step", "mean rate (Hz)"]
    rows = []
    for e in entries:
        s, c = e["stock"], e["corrected"]
        rows.append([e["model"], _g(s["ann_dense_ops"]), _g(c["ann_dense_ops"]),
                     _g(e["paper"]["ann_events_at_8.6nJ"]), _g(s["ann_ops_vs_paper"]),
                     _g(c["snn_synops"]), _g(c["snn_synops_per_s"]), _g(c["ndns_mops_per_s"]),
                     _g(c["ndns_synops_mops_per_s"]), _g(c["ann_mops_per_s"]), _g(e["mean_spikes_per_neuron"]),
                     _g(e["mean_rate_hz"])])
    return header, rows


LAYER_HEADER = ["Layer", "Type", "Output shape", "Conn. stock", "Conn. corrected", "Neurons",
                "Events/input", "Nonzero inputs", "Spikes/neuron", "Synaptic events",
                "J cpu stock", "J cpu corrected", "J cpu-events corrected", "J loihi corrected",
                "J spinnaker corrected", "J spinnaker2 corrected"]


def layer_rows(costs):
    """Per-layer rows of one model's SNN (stock next to corrected)."""
    stock = {r["name"]: r for r in costs["snn"]["stock"].layers}
    rows = []
    for r in costs["snn"]["corrected"].layers:
        s = stock[r["name"]]
        rows.append([r["name"], r["type"], r["output_shape"], s["connections"], r["connections"],
                     r["neurons"], _g(r["events_per_input"]), _g(r["nonzero_inputs"]),
                     _g(r["spikes_per_neuron"]), _g(r["synops"]), _g(s["J cpu"]),
                     _g(r["J cpu"]), _g(r["J cpu-events"]), _g(r["J loihi"]),
                     _g(r["J spinnaker"]), _g(r["J spinnaker2"])])
    return rows


def plot_layers(costs, path, title):
    """Bar chart: per-layer energy (cpu stock vs corrected; Loihi) and spikes per neuron."""
    from kspikese import report

    plt = report._plt()
    stock = {r["name"]: r for r in costs["snn"]["stock"].layers}
    rows = [r for r in costs["snn"]["corrected"].layers
            if r["connections"] or r["neurons"] or stock[r["name"]]["connections"]]
    names = [r["name"] for r in rows]
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.2 * len(names) + 1.6), sharey=True,
                             constrained_layout=True)
    axes[0].barh(y - 0.2, [stock[n]["J cpu"] for n in names], 0.4, label="KerasSpiking (stock)")
    axes[0].barh(y + 0.2, [r["J cpu"] for r in rows], 0.4, label="corrected")
    axes[0].set_xlabel("J / inference, cpu (dense)")
    axes[0].legend(fontsize=7)
    axes[1].barh(y, [r["J loihi"] for r in rows], 0.6, color="tab:green")
    axes[1].set_xlabel("J / inference, Loihi (corrected, measured rates)")
    spikes = [r["spikes_per_neuron"] if np.isfinite(r["spikes_per_neuron"]) else 0 for r in rows]
    axes[2].barh(y, spikes, 0.6, color="tab:red")
    axes[2].set_xlabel("spikes / neuron / inference (spiking layers)")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=6)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    fig.suptitle(title, fontsize=9)
    report.save_figure(fig, path)


def write_outputs(out_dir, entries, costs_by_model, untrained, quick=False):
    """Table 5 (MD/CSV/JSON) and the per-layer tables and charts."""
    from kspikese import report

    out_dir = Path(out_dir)
    header, rows = table5_rows(entries)
    oheader, orows = ops_rows(entries)
    origin = ("**UNTRAINED models** (fresh weights, converted with the experiment's settings): "
              "architecture and cost check only, not the paper's trained networks."
              if untrained else "Models from the pipeline's runs (Table 1: Wave-U-Net, Table 3: "
              "Conv-TasNet).")
    if quick:
        origin += (" **QUICK run**: the experiments' small `quick` models and a few utterances "
                   "— a smoke test, not comparable with the paper.")
    lines = ["# Table 5 — energy per inference (KerasSpiking ModelEnergy)", "", origin, ""]
    for e in entries:
        d = e["firing_rates_from"]
        lines.append(f"- {e['model']}: SNN = {e['snn_stage']}; ω = dt = {e['dt']:g}, "
                     f"{e['timesteps']} timestep; one inference = {e['frame_len']} samples "
                     f"({e['seconds_per_inference']:.3f} s); firing rates from {d['frames']} "
                     f"frames of {d['utterances']} noisy {d['split']} utterances of "
                     f"{d['corpus']}" + (" (synthetic stand-in audio)" if d.get("synthetic")
                                         else "") + ".")
    lines += ["", report.markdown_table(header, rows), "",
              "`cpu (dense)` prices every synapse once per timestep (8.6 nJ per op), so it "
              "ignores the spikes; `cpu (event-driven)` prices each synaptic event at the same "
              "8.6 nJ; Loihi and SpiNNaker 1/2 are KerasSpiking's event-driven device figures. "
              "The paper does not say which device its SNN figures are for. *Stock* counts as KerasSpiking 0.3.0 does (uncounted layers: "
              + "; ".join(f"{e['model']}: {', '.join(e['stock']['uncounted_layers']) or 'none'}"
                          for e in entries)
              + "; Conv1DTranspose with the Conv1D formula); *corrected* counts every layer "
              "(see kspikese/energy.py).", "",
              "## Operations", "", report.markdown_table(oheader, orows), "",
              "ANN ops = connections + neuron updates per inference (what `cpu` prices); the "
              "paper's figure is its Joules / 8.6 nJ. SNN synaptic events = Σ connections × "
              "mean spike count of the input (KerasSpiking's rate × dt). N-DNS power proxy = "
              "(synaptic operations + neuron updates) per second of audio, a synaptic operation "
              "being a nonzero (graded-spike) input message times its fan-out, as Loihi 2 "
              "sends a spike count as one graded message (our reading of Timcheck et al. 2023; "
              "the SynOps part is shown on its own); the N-DNS baseline SDNN is "
              f"{NDNS_BASELINE_MOPS} M-Ops/s. ANN dense M-Ops/s counts every MAC, as the N-DNS "
              "board does for NsNet2 (136 M-Ops/s). Frames do not overlap, so per second of "
              "audio = per inference × 16000 / frame length.", ""]
    for e in entries:
        lines.append(f"Per-layer table: [layers_{_stem(e)}.md](layers_{_stem(e)}.md), "
                     f"chart: ![{e['model']}](layers_{_stem(e)}.png)")
    report.write_all(out_dir, "table5", "\n".join(lines) + "\n", header, rows,
                     json_safe({"untrained": untrained, "quick": quick, "models": entries}))
    for e in entries:
        costs = costs_by_model[e["key"]]
        lrows = layer_rows(costs)
        md = (f"# {e['model']}: per-layer energy and firing rates ({e['snn_stage']})\n\n"
              f"{origin}\n\nEvents/input = mean |input| × dt (spikes per input element per "
              "inference); Spikes/neuron = mean output spike count of a SpikingActivation.\n\n"
              + report.markdown_table(LAYER_HEADER, lrows) + "\n")
        report.write_all(out_dir, f"layers_{_stem(e)}", md, LAYER_HEADER, lrows,
                         json_safe({"stock": costs["snn"]["stock"].to_dict(),
                                    "corrected": costs["snn"]["corrected"].to_dict(),
                                    "ann_stock": costs["ann"]["stock"].to_dict(),
                                    "ann_corrected": costs["ann"]["corrected"].to_dict()}))
        plot_layers(costs, out_dir / f"layers_{_stem(e)}.png",
                    f"SNN-{e['model']} ({e['snn_stage']})"
                    + (" — UNTRAINED" if untrained else ""))
    return out_dir / "table5.md"


def _stem(entry):
    return entry["key"]


def json_safe(obj):
    """``obj`` with NaN and infinities replaced by ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# ------------------------------------------------------------------------------ command
def run(args):
    t0 = time.perf_counter()
    n_utts = args.utterances or (3 if args.quick else 24)
    if n_utts <= 0:
        raise SystemExit("kspikese energy: --utterances must be a positive number")
    entries, costs_by_model = [], {}
    for model_key, table in MODELS:
        if model_key not in args.models:
            continue
        from kspikese import config as configs

        cfg = configs.load(table, quick=args.quick)
        ann, snn, stage = _load_models(model_key, table, args, cfg)
        frames, data_info = example_frames(cfg, args, n_utts,
                                           int(snn.input_shape[1] or cfg["frame_len"]))
        print(f"[{model_key}] costing ANN ({ann.count_params():,} params) and {stage} on "
              f"{data_info['frames']} test frames", flush=True)
        costs = cost_model(model_key, ann, snn, frames, batch_size=args.batch_size)
        entry = summarize(model_key, costs, stage, data_info)
        entry["key"] = model_key
        entries.append(entry)
        costs_by_model[model_key] = costs
    out_dir = Path(args.results) / "table5"
    path = write_outputs(out_dir, entries, costs_by_model, args.untrained, args.quick)
    print(path.read_text())
    print(f"wrote {out_dir}/ in {time.perf_counter() - t0:.0f} s")
    return 0
