"""Table 5's files: the main table, the operations table, per-layer tables and charts.

Every file says which models and data it came from; numbers are written as computed.
"""

import json
from pathlib import Path

import numpy as np

from kspikese import files, report
from kspikese.energy.devices import SNN_DEVICES
from kspikese.operating_point import describe_operating_point

DEVICE_LABELS = {"cpu": "cpu (dense)", "cpu-events": "cpu (event-driven)", "loihi": "Loihi",
                 "spinnaker": "SpiNNaker", "spinnaker2": "SpiNNaker 2"}
NDNS_BASELINE_MOPS = 14.54  # Intel N-DNS baseline SDNN, power proxy (M-Ops/s), track 1 board
LAYER_HEADER = ["Layer", "Type", "Output shape", "Conn. stock", "Conn. corrected", "Neurons",
                "Events/input", "Nonzero inputs", "Spikes/neuron", "Synaptic events",
                "J cpu stock", "J cpu corrected", "J cpu-events corrected", "J loihi corrected",
                "J spinnaker corrected", "J spinnaker2 corrected"]


def _g(x, digits=3):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def strict_json(obj):
    """``obj`` as plain JSON values (objects by their ``str``), NaN and infinities as
    :func:`kspikese.files.json_safe` writes them."""
    return files.json_safe(json.loads(json.dumps(obj, default=str)))


def table5_rows(entries):
    """Rows of the main table: per model, the ANN on cpu and the SNN on every device."""
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
    """Rows of the operations table (dense ops, synaptic events, N-DNS power proxy)."""
    header = ["Model", "ANN ops/inf (stock)", "ANN ops/inf (corrected)",
              "paper ANN ops/inf (J / cpu J per op)", "stock / paper", "SNN synaptic events/inf",
              "SNN synaptic events per s of audio", "N-DNS power proxy (M-Ops/s)",
              "of which SynOps (M-Ops/s)", "ANN dense (M-Ops/s)", "mean spikes/neuron/step",
              "mean rate (Hz)"]
    rows = []
    for e in entries:
        s, c = e["stock"], e["corrected"]
        rows.append([e["model"], _g(s["ann_dense_ops"]), _g(c["ann_dense_ops"]),
                     _g(e["paper"]["ann_ops_at_cpu_price"]), _g(s["ann_ops_vs_paper"]),
                     _g(c["snn_synops"]), _g(c["snn_synops_per_s"]), _g(c["ndns_mops_per_s"]),
                     _g(c["ndns_synops_mops_per_s"]), _g(c["ann_mops_per_s"]),
                     _g(e["mean_spikes_per_neuron"]), _g(e["mean_rate_hz"])])
    return header, rows


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
    plt = report.pyplot()
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


def origin_note(entries, untrained, quick):
    """The paragraph saying which models and data the table came from."""
    text = ("**UNTRAINED models** (fresh weights, converted with the experiment's settings): "
            "architecture and cost check only, not the paper's trained networks."
            if untrained else "Models from the pipeline's runs (Table 1: Wave-U-Net, Table 3: "
            "Conv-TasNet).")
    if quick:
        text += (" **QUICK run**: the experiments' small `quick` models and a few utterances "
                 "— a smoke test, not comparable with the paper.")
    lines = [text, ""]
    for e in entries:
        d = e["firing_rates_from"]
        lines.append(f"- {e['model']}: SNN = {e['snn_stage']}; ω = dt = {e['dt']:g}, "
                     f"{e['timesteps']} timestep(s); one inference = {e['frame_len']} samples "
                     f"({e['seconds_per_inference']:.3f} s); firing rates from {d['frames']} "
                     f"{d['framing']} of {d['utterances']} noisy {d['split']} utterances of "
                     f"{d['corpus']}" + (" (synthetic stand-in audio)" if d.get("synthetic")
                                         else "") + ".")
        if e.get("operating_point"):
            lines.append(f"  Operating point: {describe_operating_point(e['operating_point'])}.")
    sources = sorted({e["paper"].get("source") for e in entries if e["paper"].get("source")})
    if sources:
        lines.append(f"- Paper figures: {'; '.join(sources)} (experiments/*.yaml "
                     "`paper_energy:`).")
    return "\n".join(lines)


def write_outputs(out_dir, entries, costs_by_model, untrained, quick=False):
    """Write Table 5 (MD/CSV/JSON) and each model's per-layer table, JSON and chart.

    Returns
    -------
    Path
        ``out_dir / "table5.md"``.
    """
    out_dir = Path(out_dir)
    header, rows = table5_rows(entries)
    oheader, orows = ops_rows(entries)
    origin = origin_note(entries, untrained, quick)
    uncounted = "; ".join(f"{e['model']}: {', '.join(e['stock']['uncounted_layers']) or 'none'}"
                          for e in entries)
    lines = [
        "# Table 5 — energy per inference", "", origin, "", report.markdown_table(header, rows),
        "", "`cpu (dense)` prices every connection once per inference (8.6 nJ per op), so it "
        "ignores the spikes; `cpu (event-driven)` prices each synaptic event at the same 8.6 nJ; "
        "Loihi and SpiNNaker 1/2 are KerasSpiking's event-driven device figures. The paper does "
        "not say which device its SNN figures are for. *Stock* counts as KerasSpiking 0.3.0 "
        f"does (uncounted layers: {uncounted}; transposed convolutions with the Conv1D formula); "
        "*corrected* counts every layer (docs/energy.md).", "",
        "## Operations", "", report.markdown_table(oheader, orows), "",
        "ANN ops = connections + neuron updates per inference (what `cpu` prices); the paper's "
        "figure is its Joules / 8.6 nJ. SNN synaptic events = Σ connections × mean spike count "
        "of the input (rate × dt). N-DNS power proxy = (synaptic operations + neuron updates) "
        "per second of audio, a synaptic operation being a nonzero (graded-spike) input message "
        "times its fan-out (the SynOps part is shown on its own); the N-DNS baseline SDNN is "
        f"{NDNS_BASELINE_MOPS} M-Ops/s. Frames do not overlap, so per second of audio = per "
        "inference × 16000 / frame length.", ""]
    for e in entries:
        lines.append(f"Per-layer table: [layers_{e['key']}.md](layers_{e['key']}.md), "
                     f"chart: ![{e['model']}](layers_{e['key']}.png)")
    report.write_all(out_dir, "table5", "\n".join(lines) + "\n", header, rows,
                     strict_json({"untrained": untrained, "quick": quick, "models": entries}))
    for e in entries:
        costs = costs_by_model[e["key"]]
        lrows = layer_rows(costs)
        md = (f"# {e['model']}: per-layer energy and firing rates ({e['snn_stage']})\n\n"
              f"{origin}\n\nEvents/input = mean |input| × dt (spikes per input element per "
              "inference); Spikes/neuron = mean output spike count of a SpikingActivation.\n\n"
              + report.markdown_table(LAYER_HEADER, lrows) + "\n")
        report.write_all(out_dir, f"layers_{e['key']}", md, LAYER_HEADER, lrows,
                         strict_json({"stock": costs["snn"]["stock"].to_dict(),
                                      "corrected": costs["snn"]["corrected"].to_dict(),
                                      "ann_stock": costs["ann"]["stock"].to_dict(),
                                      "ann_corrected": costs["ann"]["corrected"].to_dict()}))
        plot_layers(costs, out_dir / f"layers_{e['key']}.png",
                    f"SNN-{e['model']} ({e['snn_stage']})" + (" — UNTRAINED" if untrained else ""))
    return out_dir / "table5.md"
