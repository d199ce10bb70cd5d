"""Tables 1-4 and their figures, built from a run's saved results (no model is run here).

:func:`write_table` reads what the pipeline left in the run folder — per-column metrics
(``eval/<column>.json``), the example utterance as each model enhanced it (``eval/example/``),
the firing rates (``eval/firing_rates.json``) and the training histories (``ann/state.json``,
``finetune/state.json``) — and writes ``results/<table>/``: ``<table>.md|csv|json``,
``training_curves.png``, ``spectrograms.png`` and ``firing_rates.md|csv|json|png``.
"""

import json

import numpy as np

from kspikese import report
from kspikese.data.pairs import voice_of
from kspikese.pipeline import COLUMNS_BY_MODEL, columns, eval_settings

PAPER_NOTE = (
    "The paper's tables label their last three rows CSIGS, CBAKS and COVLS while its text "
    "describes DNSMOS SIG, BAK and OVRL; its noisy-VCTK CBAKS of 3.12 is far from the composite "
    "CBAK usually reported for that test set (2.44), so those rows are most likely DNSMOS. "
    "We report both families and place the paper's three values beside DNSMOS."
)


def ann_precision(cfg):
    """The arithmetic the config's ANN trained in (``ann: precision:``, :mod:`kspikese.precision`)."""
    return (cfg.get("ann") or {}).get("precision", "float32")


def init_phrase(cfg):
    """`` on from <start>`` for an ANN that continues trained weights (``ann: init:``), else ``""``."""
    init = (cfg.get("ann") or {}).get("init")
    if not init:
        return ""
    return (f" on from profile `{init['profile']}`'s ANN" if "profile" in init
            else f" on from `{init['model']}`")


def stage_losses(cfg):
    """``{"ann": ..., "finetune": ...}``: each stage's loss (:func:`kspikese.losses.describe`)."""
    from kspikese.losses import describe

    return {stage: describe((cfg.get(stage) or {}).get("loss")) for stage in ("ann", "finetune")}


def data_line(info, recipe):
    """One sentence naming the data a table came from (corpus, recipe, split sizes)."""
    line = (f"{info['corpus']}, recipe `{recipe}`; test: {info['test_utterances']} utterances "
            f"({info['train_utterances']} train / {info['valid_utterances']} valid)")
    if info.get("valid_voices_from_train"):
        line += (f"; validation also holds the training voices "
                 f"{', '.join(info['valid_voices_from_train'])}, taken out of training")
    if info.get("synthetic"):
        line += " — SYNTHETIC test corpus (made by the tests), numbers mean nothing"
    return line


def group_rows(results, cols, groups, metric="si_snr"):
    """Rows ``[label, utterances, <metric> mean per column...]``, one per ``(label, names)`` of
    ``groups`` that holds any utterance, from the per-utterance rows of
    :func:`kspikese.pipeline.evaluate_columns` (non-finite values left out of a mean)."""
    per_col = {c: {r["name"]: r.get(metric) for r in results[c].get("rows", [])} for c in cols}
    rows = []
    for label, members in groups:
        if not members:
            continue
        cells = []
        for c in cols:
            vals = [per_col[c].get(n) for n in members]
            vals = [float(x) for x in vals if x is not None and np.isfinite(float(x))]
            cells.append(report.fmt(np.mean(vals) if vals else None))
        rows.append([label, len(members)] + cells)
    return rows


def voice_rows(results, cols, metric="si_snr"):
    """Rows ``[voice, utterances, <metric> mean per column...]``, one per test voice and a last
    ``all`` row; ``[]`` when a name carries no voice (:func:`voice_of`).  A voice's mean is over
    its own utterances, so the per-voice means show what the overall mean hides: how each unseen
    voice fares."""
    names = [r["name"] for r in results[cols[0]].get("rows", [])]
    voices = [voice_of(n) for n in names]
    if not names or None in voices:
        return []
    groups = [(voice, [n for n, v in zip(names, voices) if voice in ("all", v)])
              for voice in sorted(set(voices)) + ["all"]]
    return group_rows(results, cols, groups, metric)


INPUT_SNR_EDGES = (2.5, 7.5, 12.5)  # dB: bins centred on 0, 5, 10 and 15 dB mixtures


def input_snr_rows(results, cols, metric="si_snr", edges=INPUT_SNR_EDGES):
    """Rows ``[bin, utterances, <metric> mean per column...]`` by the noisy input's own SI-SNR
    (the first column's per-utterance value), in the bins ``< e_0``, ``e_0–e_1``, …, ``≥ e_last``
    (dB).  It needs no labels from the corpus, and shows whether a model gains as much on
    nearly clean inputs as on noisy ones (a model with a distortion floor gains nothing there)."""
    noisy = {r["name"]: r.get("si_snr") for r in results[cols[0]].get("rows", [])}
    noisy = {n: float(v) for n, v in noisy.items() if v is not None and np.isfinite(float(v))}
    bounds = [-np.inf, *edges, np.inf]
    groups = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        label = (f"< {hi:g} dB" if lo == -np.inf else f"≥ {lo:g} dB" if hi == np.inf
                 else f"{lo:g}–{hi:g} dB")
        groups.append((label, [n for n, v in noisy.items() if lo <= v < hi]))
    return group_rows(results, cols, groups, metric)


def breakdown_sections(results, cols, split="test"):
    """``(by_voice, by_snr, markdown_lines)``: the rows of :func:`voice_rows` and
    :func:`input_snr_rows` and their two Markdown sections (each left out when empty), as the
    tables and ``kspikese score`` print them; ``split`` names the utterances' split."""
    by_voice, by_snr = voice_rows(results, cols), input_snr_rows(results, cols)
    md = []
    if by_voice:
        md += [f"SI-SNR (dB) by {split} voice (mean over each voice's utterances):", "",
               report.markdown_table(["voice", "utterances"] + cols, by_voice), ""]
    if by_snr:
        md += ["SI-SNR (dB) by the noisy input's SI-SNR (mean over the utterances in each bin):", "",
               report.markdown_table(["input SI-SNR", "utterances"] + cols, by_snr), ""]
    return by_voice, by_snr, md


def write_table(run, results, runtime_s):
    """Write ``results/<table>/`` for a finished run; return the table's JSON payload.

    Parameters
    ----------
    run : kspikese.runs.RunFolder
        The finished run (its ``run.json`` holds the data description and stage times).
    results : dict
        ``{column: {"means": {...}, "seconds": s}}`` from
        :func:`kspikese.pipeline.evaluate_columns`.
    runtime_s : float
        Wall time of the command that built the table.
    """
    from kspikese.metrics import METRICS

    cfg = run.cfg
    cols = columns(cfg)
    metrics = list(cfg["eval"].get("metrics") or METRICS)
    ours = {c: {m: results[c]["means"][m] for m in metrics if m in results[c]["means"]}
            for c in cols}
    paper = cfg.get("paper", {}) or {}
    out = run.results / run.table
    info = run.state["data"]
    conv = cfg["convert"]
    overlap, batch_size = eval_settings(cfg)
    used = stage_losses(cfg)
    header = ["Metric"] + cols
    rows = report.metric_rows(cols, ours, metrics)
    md = [f"# {run.table}: {cfg['title']}", "",
          f"Our numbers. Data: {data_line(info, cfg['recipe'])}. Seed {run.seed}; "
          f"ω (dt) = {conv['dt']}, {conv.get('timesteps', 1)} timestep; activation scale before "
          f"conversion: `{conv.get('activation_scale', 'int16')}`; inference: frames of "
          f"{cfg['frame_len']} with {overlap:.0%} overlap-add"
          f"{' (QUICK run: tiny subset, few steps)' if run.quick else ''}; "
          f"recipe profile `{run.profile}`; the ANN trained{init_phrase(cfg)} in "
          f"`{ann_precision(cfg)}` on the loss `{used['ann']}`, the SNN fine-tuned on "
          f"`{used['finetune']}`.",
          "", report.markdown_table(header, rows), ""]
    paper_cols = [c for c in cols if c in paper]
    if paper_cols:
        md += [f"Paper ({cfg.get('paper_data', 'the paper data set')}; Abuhajar et al. 2025, "
               f"{cfg.get('paper_table', '')}), NOT our data:", "",
               report.markdown_table(["Metric"] + paper_cols,
                                     report.metric_rows(paper_cols, paper, metrics)),
               "", PAPER_NOTE, ""]
    by_voice, by_snr, sections = breakdown_sections(results, cols)
    md += sections
    stages = run.state.get("stages", {})
    pipeline_s = (sum(st.get("seconds", 0) for st in stages.values())
                  + sum(results[c].get("seconds", 0) for c in cols))
    md += [f"Run time: {runtime_s:.0f} s for this command; {pipeline_s:.0f} s for all stages and "
           f"evaluations of this table as recorded (cached ones included). "
           f"Run folder: `{run.dir}`.", ""]
    payload = {"table": run.table, "title": cfg["title"], "data": info, "columns": cols,
               "metrics": ours, "paper": paper, "paper_data": cfg.get("paper_data"),
               "omega": conv["dt"], "timesteps": conv.get("timesteps", 1),
               "activation_scale": conv.get("activation_scale", "int16"),
               "inference": {"frame_len": cfg["frame_len"], "overlap": overlap,
                             "batch_size": batch_size},
               "seed": run.seed, "quick": run.quick, "profile": run.profile,
               "ann_precision": ann_precision(cfg), "ann_init": cfg["ann"].get("init"),
               "losses": used, "runtime_s": round(runtime_s, 1),
               "pipeline_s": round(pipeline_s, 1), "stages": stages,
               "si_snr_by_voice": by_voice, "si_snr_by_input_snr": by_snr,
               "utterances_scored": {c: results[c]["means"].get("n_files") for c in cols},
               "utterances_failed": {c: results[c]["means"].get("n_errors") for c in cols}}
    report.write_all(out, run.table, "\n".join(md), header, rows, payload)
    write_figures(run, out)
    print("\n".join(md))
    print(f"wrote {out}/{run.table}.md|csv|json")
    return payload


def write_figures(run, out):
    """Training curves, the example spectrograms and the firing rates of a run, into ``out``."""
    from kspikese import audio_io

    histories = {"ANN": run.history("ann"), "SNN fine-tune": run.history("finetune")}
    report.plot_training_curves(histories, out / "training_curves.png",
                                f"{run.table}: validation SI-SNR per epoch")
    example = run.dir / "eval" / "example"
    order = json.loads((example / "order.json").read_text())
    signals = {label: audio_io.read_audio(example / f"{label}.wav") for label in order["labels"]}
    report.plot_spectrograms(signals, out / "spectrograms.png",
                             f"{run.table}: test utterance {order['utterance']}")
    rates = json.loads((run.dir / "eval" / "firing_rates.json").read_text())
    snn_label = COLUMNS_BY_MODEL[run.cfg["model"]][1]
    report.plot_bars(rates, out / "firing_rates.png",
                     f"{run.table}: {snn_label} spikes per neuron per step (test frames)",
                     "mean spikes / neuron / step")
    rows = [[k, f"{v:.4f}"] for k, v in rates.items()]
    report.write_all(out, "firing_rates",
                     "# Firing rates of the fine-tuned SNN\n\n"
                     + report.markdown_table(["layer", "spikes/neuron/step"], rows) + "\n",
                     ["layer", "spikes_per_neuron_per_step"], rows, rates)
