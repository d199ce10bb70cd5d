"""Where the spikes go: one target for all layers against per-layer targets, converted only.

Each shipped ANN (``wave-u-net``: Table 1's, ``conv-tasnet``: Table 3's) is converted with its
table's ``convert:`` section at several ``target_spikes``, once per ``allocation``: ``uniform``
(one target), ``events`` (per-layer targets at the same expected synaptic events, noise modelled)
and ``measured`` (the same, noise measured at the output; :mod:`kspikese.convert.allocation`).
No fine-tuning.  Each SNN enhances the first validation utterances of the default corpus through
the one inference path and is scored by SI-SNR, PESQ and STOI; its synaptic events per ANN MAC are
counted on validation frames (:func:`kspikese.energy.estimate`).  Validation, not test: the
allocation is a recipe choice.
"""

from pathlib import Path

from kspikese import report
from kspikese.convert.allocation import ALLOCATIONS

MODELS = {"wave-u-net": ("table1", (10.0, 20.0)), "conv-tasnet": ("table3", (4.0, 6.0, 10.0))}
UTTERANCES = {False: 12, True: 2}
ENERGY_FRAMES = 8
METRICS = ("si_snr", "pesq", "stoi")


def score(model, utterances, cfg):
    """``{metric: mean}`` of ``model``'s outputs on ``[(name, clean, noisy)]`` (``model=None``:
    the noisy input), through the table's inference settings."""
    from kspikese import pipeline
    from kspikese.metrics.evaluate import evaluate_set

    noisy = [n for _, _, n in utterances]
    outputs = noisy if model is None else pipeline.enhance_all(model, noisy, cfg)
    _, means = evaluate_set([(name, clean, y) for (name, clean, _), y in zip(utterances, outputs)],
                            metrics=list(METRICS), progress=False)
    return means


def compare(ann, cfg, utterances, calibration, targets, allocations=ALLOCATIONS, seed=0):
    """Rows ``{target_spikes, allocation, si_snr, pesq, stoi, events_per_mac}`` for ``ann``
    converted with ``cfg["convert"]`` at each target and allocation, and the ANN's scores.

    Parameters
    ----------
    ann : tf.keras.Model
        The ANN.
    cfg : dict
        A table config (``convert``, ``frame_len``, ``eval``).
    utterances : list
        ``[(name, clean, noisy)]`` scored.
    calibration : numpy.ndarray
        Conversion calibration frames ``(n, frame_len, 1)``.
    targets : sequence of float
        ``target_spikes`` values.
    allocations : sequence of str
        Allocations compared at every target.
    seed : int
        Seed of the neurons' initial voltages.

    Returns
    -------
    tuple
        ``(ann_scores, rows)``.
    """
    from kspikese import energy
    from kspikese.convert import convert
    from kspikese.data.framing import stacked_frames

    frames = stacked_frames([noisy for _, _, noisy in utterances], cfg["frame_len"], ENERGY_FRAMES)
    macs = energy.estimate(energy.with_frame_len(ann, cfg["frame_len"])).dense_ops
    rows = []
    for target in targets:
        for allocation in allocations:
            settings = dict(cfg["convert"], target_spikes=float(target), allocation=allocation)
            snn = convert(ann, settings, seed=seed, calibration=calibration)
            events = energy.estimate(snn, frames).synops
            rows.append({"target_spikes": float(target), "allocation": allocation,
                         **score(snn, utterances, cfg), "events_per_mac": events / macs})
    return score(ann, utterances, cfg), rows


def run(out_dir, quick, data_dir=None):
    """Compare the allocations on each shipped ANN; write ``allocation.md|csv|json``."""
    from kspikese import config as configs, hub
    from kspikese.corpus import load_pairs, open_corpus

    n = UTTERANCES[bool(quick)]
    sections, csv_rows, data = [], [], {}
    for name, (table, targets) in MODELS.items():
        cfg = configs.load(table)
        corpus = open_corpus(cfg, "default", data_dir)
        utterances = load_pairs(corpus.valid[:n])
        ann = hub.load(name)[0]
        noisy = score(None, utterances, cfg)
        ann_scores, rows = compare(ann, cfg, utterances, corpus.calibration_frames(),
                                   targets[:1] if quick else targets)
        lines = [["noisy", "–", "–", *[report.fmt(noisy[m]) for m in METRICS], "–"],
                 ["ANN", "–", "–", *[report.fmt(ann_scores[m]) for m in METRICS], "1 (MACs)"]]
        lines += [["SNN", f"{r['target_spikes']:g}", r["allocation"],
                   *[report.fmt(r[m]) for m in METRICS], report.fmt(r["events_per_mac"], 3)]
                  for r in rows]
        sections.append(f"### `{name}` ({table}'s `convert:`, converted only)\n\n"
                        + report.markdown_table(["", "target spikes", "allocation", "SI-SNR (dB)",
                                                 "PESQ", "STOI", "events / ANN MACs"], lines))
        csv_rows += [[name, r["target_spikes"], r["allocation"], *[r[m] for m in METRICS],
                      r["events_per_mac"]] for r in rows]
        data[name] = {"table": table, "noisy": noisy, "ann": ann_scores, "rows": rows,
                      "data": corpus.info}
        info = corpus.info
    md = (f"Default corpus ({info.get('corpus')}), the first {n} validation utterances, whole; "
          f"seed 0{'; QUICK' if quick else ''}. Not VCTK or TIMIT numbers.\n\n"
          + "\n\n".join(sections))
    report.write_all(Path(out_dir), "allocation", "# allocation\n\n" + md + "\n",
                     ["model", "target_spikes", "allocation", *METRICS, "events_per_mac"],
                     csv_rows, {"utterances": n, "quick": bool(quick), "models": data})
    return md
