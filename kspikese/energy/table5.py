"""``kspikese energy`` (``make energy``): Table 5, Joules per inference of the ANNs and their SNNs.

For each model (Wave-U-Net from Table 1's run, Conv-TasNet from Table 3's run) it costs the ANN
on ``cpu`` and the SNN (the run's fine-tuned SNN) on every device of
:data:`kspikese.energy.SNN_DEVICES`, with input rates measured on noisy test utterances of the
run's corpus cut into non-overlapping frames of the model's length.  Both counting rules side by
side: KerasSpiking 0.3.0 as it stands (``stock``) and this package's (``corrected``).  The
paper's figures come from each experiment YAML's ``paper_energy:`` section.

Writes ``<results>/table5/``: ``table5.md|csv|json`` and, per model, ``layers_<model>.md|csv|json``
and ``layers_<model>.png`` (:mod:`kspikese.energy.table5_report`).  ``--untrained`` costs freshly
built, untrained models converted with the experiment's settings (no training; every table says
so); ``--quick`` uses the experiments' ``quick:`` models and run folders.

``kspikese energy MODEL [MODEL ...] --audio DIR --json FILE`` prices the given models on the
given recordings instead (:mod:`kspikese.energy.models_cli`).
"""

import argparse
import time
from pathlib import Path

MODELS = (("wave_u_net", "table1"), ("conv_tasnet", "table3"))
PAPER_KEYS = ("label", "params", "ann_j", "snn_j")
FRAMING = "non-overlapping frames (kspikese.data.framing.frame), the last one zero-padded"


def add_arguments(parser: argparse.ArgumentParser):
    parser.add_argument("model_args", nargs="*", metavar="MODEL",
                        help="price these models instead of building Table 5: shipped names "
                             "(e.g. snn-wave-u-net), model cards, card folders, run folders or "
                             ".keras checkpoints; needs --audio and --json")
    parser.add_argument("--audio", metavar="DIR", help="with MODEL: folder of WAV files the "
                        "firing rates are measured on")
    parser.add_argument("--json", metavar="FILE", help="with MODEL: where the results go")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="with MODEL: use at most N frames of the audio (default all)")
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
    parser.add_argument("--profile", default="cpu",
                        help="the runs' recipe profile (default cpu; paper, ship)")
    parser.add_argument("--utterances", type=int, default=None,
                        help="test utterances for the firing rates (default 24; 3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per batch (default 4)")
    parser.add_argument("--models", nargs="+", choices=[m for m, _ in MODELS],
                        default=[m for m, _ in MODELS], help="models to cost (default both)")
    parser.add_argument("--untrained", action="store_true",
                        help="cost freshly built untrained models (no pipeline; for development)")


# ------------------------------------------------------------------------------ inputs
def paper_energy(cfg):
    """The experiment's ``paper_energy:`` section: ``label``, ``params``, ``ann_j``, ``snn_j``.

    Raises
    ------
    kspikese.config.ConfigError
        Naming the YAML file when the section or one of its keys is missing.
    """
    from kspikese.config import ConfigError

    section = cfg.get("paper_energy")
    if not isinstance(section, dict):
        raise ConfigError(f"{cfg.get('source')}: `paper_energy:` (the paper's Table 5 figures) "
                          "must be a mapping")
    missing = [k for k in PAPER_KEYS if k not in section]
    if missing:
        raise ConfigError(f"{cfg.get('source')}: `paper_energy:` is missing {missing}")
    return {"label": str(section["label"]), "params": float(section["params"]),
            "ann_j": float(section["ann_j"]), "snn_j": float(section["snn_j"]),
            "source": str(section.get("source", ""))}


def rate_frames(corpus, n_utterances, frame_len):
    """The first ``n_utterances`` noisy test utterances as frames ``(n, frame_len, 1)``."""
    from kspikese.data.framing import stacked_frames

    test = corpus.test_utterances()[:n_utterances]
    frames = stacked_frames([noisy for _, _, noisy in test], frame_len)
    info = {"corpus": corpus.info.get("corpus"), "split": "test", "utterances": len(test),
            "frames": int(len(frames)), "framing": FRAMING,
            "synthetic": corpus.info.get("synthetic")}
    return frames, info


def load_models(table, args, cfg):
    """``(ann, snn, snn stage, corpus)``: the pipeline's trained models, or fresh untrained ones."""
    from kspikese import models, pipeline
    from kspikese.corpus import open_corpus

    if args.untrained:
        corpus = open_corpus(cfg, args.data, args.data_dir, args.vctk_root, args.timit_root,
                             seed=args.seed)
        ann = pipeline.build_ann(cfg, args.seed)
        return ann, pipeline.snn_from(ann, cfg, corpus, args.seed), "untrained", corpus
    run, corpus = pipeline.ensure_models(
        table, seed=args.seed, data=args.data, results=args.results, quick=args.quick,
        force=args.force, data_dir=args.data_dir, vctk_root=args.vctk_root,
        timit_root=args.timit_root, profile=args.profile)
    return (models.load_model(run.path("ann")), models.load_model(run.path("finetune")),
            f"fine-tuned SNN ({run.dir})", corpus)


# ------------------------------------------------------------------------------ costing
def cost_model(ann, snn, frames, batch_size=4, progress=True):
    """``{"ann": {kind: Estimate}, "snn": {kind: Estimate}}``: the ANN on ``cpu``, the SNN on
    every device with rates measured on ``frames``; both at the frames' length."""
    from kspikese import energy

    ann = energy.with_frame_len(ann, frames.shape[1])
    snn = energy.with_frame_len(snn, frames.shape[1])
    return {"ann": energy.compare(ann),
            "snn": energy.compare(snn, frames, batch_size=batch_size, progress=progress)}


def summarize(costs, stage, data_info, paper):
    """One model's Table 5 entry (plain numbers).

    Parameters
    ----------
    costs : dict
        From :func:`cost_model`.
    stage : str
        Which SNN was costed.
    data_info : dict
        Where the rates came from (:func:`rate_frames`).
    paper : dict
        :func:`paper_energy`.
    """
    from kspikese.energy import DEVICES
    from kspikese.audio_io import SR

    cpu_j = DEVICES["cpu"]["energy_per_synop"]
    ann, snn = costs["ann"], costs["snn"]
    corrected = snn["corrected"]
    secs = corrected.frame_len / SR
    paper_ann_ops = paper["ann_j"] / cpu_j
    entry = {
        "model": paper["label"], "snn_stage": stage, "firing_rates_from": data_info,
        "params": ann["corrected"].params, "params_snn": corrected.params,
        "paper": {**paper, "ratio": paper["ann_j"] / paper["snn_j"],
                  "ann_ops_at_cpu_price": paper_ann_ops},
        "frame_len": corrected.frame_len, "seconds_per_inference": secs,
        "dt": corrected.dt, "timesteps": corrected.timesteps,
    }
    for kind in ("stock", "corrected"):
        a, s = ann[kind], snn[kind]
        entry[kind] = {
            "ann_j": {"cpu": a.totals["cpu"]}, "snn_j": dict(s.totals),
            "ratio": {d: a.totals["cpu"] / v if v > 0 else float("inf")
                      for d, v in s.totals.items()},
            "ann_dense_ops": a.dense_ops, "snn_dense_ops": s.dense_ops,
            "ann_ops_vs_paper": a.dense_ops / paper_ann_ops,
            "snn_synops": s.synops, "snn_synops_graded": s.synops_graded,
            "snn_neuron_updates": s.neuron_updates, "snn_synops_per_s": s.synops / secs,
            "ndns_mops_per_s": (s.synops_graded + s.neuron_updates) / secs / 1e6,
            "ndns_synops_mops_per_s": s.synops_graded / secs / 1e6,
            "ann_mops_per_s": a.dense_ops / secs / 1e6,
            "uncounted_layers": sorted(set(a.uncounted) | set(s.uncounted))}
    entry["mean_spikes_per_neuron"] = corrected.mean_firing
    entry["mean_rate_hz"] = corrected.mean_firing / (corrected.dt * corrected.timesteps)
    return entry


# ------------------------------------------------------------------------------ command
def run(args):
    if getattr(args, "model_args", None):
        from kspikese.energy.models_cli import run_models

        return run_models(args)
    if getattr(args, "audio", None) or getattr(args, "json", None):
        import sys

        print("kspikese energy: error: --audio and --json go with MODEL arguments "
              "(kspikese energy MODEL [MODEL ...] --audio DIR --json FILE)", file=sys.stderr)
        return 2
    from kspikese import config as configs
    from kspikese.energy.table5_report import write_outputs
    from kspikese.operating_point import operating_point

    t0 = time.perf_counter()
    n_utts = args.utterances or (3 if args.quick else 24)
    if n_utts <= 0:
        raise SystemExit("kspikese energy: --utterances must be a positive number")
    entries, costs_by_model = [], {}
    for model_key, table in MODELS:
        if model_key not in args.models:
            continue
        cfg = configs.load(table, quick=args.quick, profile=args.profile)
        paper = paper_energy(cfg)
        ann, snn, stage, corpus = load_models(table, args, cfg)
        frames, data_info = rate_frames(corpus, n_utts, int(snn.input_shape[1] or cfg["frame_len"]))
        print(f"[{model_key}] costing ANN ({ann.count_params():,} params) and {stage} on "
              f"{data_info['frames']} test frames", flush=True)
        costs = cost_model(ann, snn, frames, batch_size=args.batch_size)
        entry = summarize(costs, stage, data_info, paper)
        entry["key"] = model_key
        entry["operating_point"] = operating_point(cfg)
        entries.append(entry)
        costs_by_model[model_key] = costs
    out_dir = Path(args.results) / "table5"
    path = write_outputs(out_dir, entries, costs_by_model, args.untrained, args.quick)
    print(path.read_text())
    print(f"wrote {out_dir}/ in {time.perf_counter() - t0:.0f} s")
    return 0
