"""The three-stage pipeline of one table, top-down in data-flow order.

:func:`reproduce` reads as the paper's method::

    corpus    = open_corpus(...)                    # data: built if missing, splits checked
    ann       = train_ann(run, corpus)              # stage 1: ANN on the SNR loss
    converted = convert_ann(run, ann, corpus)       # stage 2: weight transfer to an SNN
    random    = random_snn(run, corpus)             # baseline: same graph, random weights
    finetuned = finetune_snn(run, corpus)           # stage 3: spike-aware fine-tuning
    results   = evaluate_columns(run, corpus, ...)  # every table column on the test set
    tables.write_table(...)                         # Markdown/CSV/JSON and figures

Each stage is cached in the run folder (:class:`kspikese.runs.RunFolder`): a finished stage is
loaded, an interrupted one resumes from its last finished epoch, a changed setting redoes only
the stages it decides.  Every column is enhanced by the one inference path
(:func:`kspikese.inference.enhance_array`) with the overlap and batch size of the config's
``eval:`` section, the same path ``kspikese enhance`` uses.
"""

import time

from kspikese import config as configs
from kspikese import audio_io, files, hybrid
from kspikese.corpus import open_corpus
from kspikese.runs import TableRun

COLUMNS_BY_MODEL = {
    "wave_u_net": ("Wave-U-Net", "SNN-Wave-U-Net"),
    "conv_tasnet": ("ConvTasNet", "SNN-ConvTasNet"),
}
DEFAULT_OVERLAP = 0.25  # of a frame: the overlap-add cross-fade `kspikese enhance` also uses
RANDOM_SEED_OFFSET = 7919  # the Random SNN's weights are drawn with seed + this


def columns(cfg):
    """The table's columns: ``Noisy``, the ANN, ``Random``, ``Converted SNN``, the fine-tuned SNN."""
    ann_label, snn_label = COLUMNS_BY_MODEL[cfg["model"]]
    return ["Noisy", ann_label, "Random", "Converted SNN", snn_label]


def column_stages(cfg):
    """``{column: stage}`` (``None`` for the noisy input itself)."""
    return dict(zip(columns(cfg), (None, "ann", "random", "convert", "finetune")))


# ------------------------------------------------------------------------------------ stages
def build_ann(cfg, seed):
    """A fresh, untrained ANN of the config's model (``build_<model>(frame_len, **model_kwargs)``)."""
    from kspikese import models, training

    training.set_seed(seed)
    builder = getattr(models, f"build_{cfg['model']}")
    return builder(frame_len=cfg["frame_len"], **(cfg.get("model_kwargs") or {}))


def initial_ann(run, verbose=2, strategy=None):
    """``(model, what)``: the trained ANN the config's ``ann: init:`` continues, and a phrase
    naming it (:mod:`kspikese.continuation`).  Another profile's ANN is loaded when done, taken
    from the shipped ANN whose card records its fingerprint when not, trained first otherwise."""
    from kspikese import continuation, distribute, hub

    init = run.cfg["ann"]["init"]
    if "model" in init:  # loaded and checked by open_run
        return run.init_model, f"{init['model']!r} (weights digest {run.init_fingerprint})"
    base, base_corpus = run.init_base
    what = f"profile `{init['profile']}`'s ANN (stage {run.init_fingerprint})"
    if not base.stage_done("ann") and base.shared_stage("ann") is None:
        name = continuation.shipped_stage(run.init_fingerprint)
        if name is not None:
            return hub.load(name, ann=True)[0], f"{what}, the shipped `{name}` (float16 weights)"
    base = base.reopened(writer=distribute.is_writer(strategy))  # opened read-only by open_run
    return train_ann(base, base_corpus, verbose, strategy), f"{what} in {base.dir}"


def train_ann(run, corpus, verbose=2, strategy=None):
    """Stage 1: the ANN trained on the SNR loss (cached in ``ann/``), under ``strategy`` if given;
    with ``ann: init:`` it starts from :func:`initial_ann` instead of fresh weights."""
    from kspikese import continuation

    def make(folder):
        start = initial_ann(run, verbose, strategy) if "init" in run.cfg["ann"] else None
        model = build_ann(run.cfg, run.seed)
        if start is not None:
            continuation.transfer(start[0], model, start[1])
            print(f"[stage 1] the ANN continues from {start[1]}", flush=True)
        hybrid.train_ann(model, corpus.training_stream, corpus.validation_stream(), folder,
                         seed=run.seed, verbose=verbose, strategy=strategy,
                         replica_data=corpus.replica_stream,
                         **hybrid.stage_settings(run.cfg["ann"]))
        return model

    return run.stage("ann", make)


def snn_from(ann, cfg, corpus, seed):
    """ANN -> SNN by weight transfer with the config's ``convert:`` settings."""
    from kspikese.convert import needs_calibration

    calibration = corpus.calibration_frames() if needs_calibration(cfg["convert"]) else None
    return hybrid.convert(ann, calibration, seed=seed, **cfg["convert"])


def convert_ann(run, ann, corpus):
    """Stage 2: the converted SNN (ω and activation scale from ``convert:``)."""
    return run.stage("convert", lambda folder: snn_from(ann, run.cfg, corpus, run.seed))


def random_ann(cfg, seed):
    """The config's ANN with every kernel and bias drawn afresh from its layer's initializer.

    A builder may set some weights by hand (Wave-U-Net's ``input_skip="identity"`` starts the
    readout as ``y = x``); the Random baseline must not inherit that start, or it would score the
    noisy input instead of what random weights give.  Each draw is seeded: the initializer is
    cloned with seed ``seed · 1000 + i`` for the ``i``-th weight drawn."""
    model = build_ann(cfg, seed)
    drawn = 0
    for layer in model.layers:
        for name in ("kernel", "depthwise_kernel", "pointwise_kernel", "bias"):
            var, init = getattr(layer, name, None), getattr(layer, f"{name}_initializer", None)
            if var is None or init is None or not hasattr(var, "assign"):
                continue
            config = init.get_config()
            if "seed" in config:  # random initializers; constants (zeros, ones) take no seed
                init = type(init).from_config({**config, "seed": int(seed) * 1000 + drawn})
                drawn += 1
            var.assign(init(var.shape, var.dtype))
    return model


def random_snn(run, corpus):
    """The Random SNN baseline: the same graph with fresh random weights (:func:`random_ann`),
    scaled the same way."""
    return run.stage("random", lambda folder: snn_from(
        random_ann(run.cfg, run.seed + RANDOM_SEED_OFFSET), run.cfg, corpus, run.seed))


def finetune_snn(run, corpus, verbose=2, strategy=None):
    """Stage 3: spike-aware fine-tuning of a fresh copy of the converted SNN (in ``finetune/``),
    under ``strategy`` if given."""
    from kspikese import models

    def make(folder):
        snn = models.load_model(run.path("convert"))
        section = run.cfg["finetune"]
        needs_ann = section.get("max_events_per_mac") is not None or section.get("teacher")
        hybrid.finetune(snn, corpus.training_stream, corpus.validation_stream(), folder,
                        seed=run.seed, verbose=verbose, strategy=strategy,
                        ann=models.load_model(run.path("ann")) if needs_ann else None,
                        replica_data=corpus.replica_stream,
                        **hybrid.stage_settings(run.cfg["finetune"]))
        return snn

    return run.stage("finetune", make)


# -------------------------------------------------------------------------------- evaluation
def eval_settings(cfg):
    """``(overlap, batch_size)`` of the inference path from the config's ``eval:`` section."""
    ev = cfg.get("eval") or {}
    return float(ev.get("overlap", DEFAULT_OVERLAP)), int(ev.get("batch_size", 8))


def enhance_all(model, audios, cfg):
    """Enhance whole utterances with the one inference path and the config's eval settings."""
    from kspikese import inference

    overlap, batch_size = eval_settings(cfg)
    return [inference.enhance_array(model, a, frame_len=cfg["frame_len"], overlap=overlap,
                                    batch_size=batch_size) for a in audios]


def evaluate_columns(run, corpus, models_by_stage, workers=2, split="test", metrics=None,
                     cache=None, reuse=()):
    """Metrics of the columns on whole utterances of ``split``: ``{column: {"means", "rows", ...}}``.

    The columns are ``Noisy`` and those whose stage is in ``models_by_stage`` (the table passes
    all four).  A column's result is cached in ``<cache>/<column>.json`` of the run folder
    (default ``eval`` for the test set, ``eval-<split>`` for another split) under the
    fingerprint of the utterances, the metrics, the inference settings and the column's stage;
    a result with that fingerprint in one of the ``reuse`` folders is read instead of computed.
    ``metrics`` defaults to the config's ``eval: metrics:`` (all eleven when unset).
    """
    from kspikese.metrics import evaluate_set

    utterances = corpus.utterances(split)
    metrics = run.cfg["eval"].get("metrics") if metrics is None else list(metrics)
    set_fp = configs.fingerprint([n for n, _, _ in utterances], metrics, eval_settings(run.cfg))
    cache = cache or ("eval" if split == "test" else f"eval-{split}")
    results = {}
    for column, stage in column_stages(run.cfg).items():
        if stage is not None and stage not in models_by_stage:
            continue
        fp = [set_fp, run.fingerprints()[stage] if stage else ""]
        path = run.dir / cache / f"{column.replace(' ', '_')}.json"
        cached = cached_result([path] + [run.dir / f / path.name for f in reuse], fp)
        if cached is not None:
            results[column] = cached
            continue
        t0 = time.perf_counter()
        noisy = [n for _, _, n in utterances]
        outs = noisy if stage is None else enhance_all(models_by_stage[stage], noisy, run.cfg)
        rows, means = evaluate_set([(n, clean, out) for (n, clean, _), out in zip(utterances, outs)],
                                   workers=workers, metrics=metrics)
        results[column] = {"fingerprint": fp, "means": means, "rows": rows,
                           "seconds": round(time.perf_counter() - t0, 1)}
        files.write_json(path, results[column])
        print(f"[eval] {column}: SI-SNR {means.get('si_snr', float('nan')):.2f} dB "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return results


def cached_result(paths, fingerprint):
    """The first of the JSON files ``paths`` that exists and was written under ``fingerprint``
    (its ``"fingerprint"`` entry), read; ``None`` when none was."""
    import json

    for path in paths:
        cached = json.loads(path.read_text()) if path.exists() else {}
        if cached.get("fingerprint") == fingerprint:
            return cached
    return None


def save_examples(run, corpus, models_by_stage):
    """What the figures show, kept in ``eval/``: one test utterance as every model enhances it
    (``example/<label>.wav``) and the fine-tuned SNN's firing rates (``firing_rates.json``)."""
    from kspikese import report
    from kspikese.data.framing import stacked_frames

    test = corpus.test_utterances()
    name, clean, noisy = max(test[: min(len(test), 20)], key=lambda t: len(t[1]))
    ann_label, snn_label = COLUMNS_BY_MODEL[run.cfg["model"]]
    example = run.dir / "eval" / "example"
    signals = {"noisy": noisy, "clean": clean,
               ann_label: enhance_all(models_by_stage["ann"], [noisy], run.cfg)[0],
               snn_label: enhance_all(models_by_stage["finetune"], [noisy], run.cfg)[0]}
    for label, audio in signals.items():
        audio_io.write_audio(example / f"{label}.wav", audio)
    files.write_json(example / "order.json", {"utterance": name, "labels": list(signals)})
    frames = stacked_frames([n for _, _, n in test[:4]], run.cfg["frame_len"], 8)
    rates = report.firing_rates(models_by_stage["finetune"], frames)
    files.write_json(run.dir / "eval" / "firing_rates.json", rates)


# ------------------------------------------------------------------------------------- table
def reproduce(table, *, seed=0, data="default", results="results", quick=False, force=False,
              data_dir=None, vctk_root=None, timit_root=None, workers=2, overrides=None,
              verbose=2, profile="cpu", strategy=None):
    """Run the three stages of ``table`` (cached where done) and write its table.

    Parameters
    ----------
    table : str
        ``table1`` .. ``table4`` or a path to an experiment YAML.
    seed : int
        Training, conversion and neuron seed.
    data : {"default", "vctk", "timit"}
        The corpus; ``vctk_root`` / ``timit_root`` locate the user's copies.
    results : str or Path
        Where ``runs/<run>/`` and ``<table>/`` go.
    quick : bool
        Merge the YAML's ``quick:`` overrides (tiny subset, few steps).
    force : bool
        Delete the run folder first.
    workers : int
        Metric worker processes.
    overrides : dict, optional
        Config overrides merged last (experiments and tests).
    profile : str
        The recipe: ``cpu`` (default, sized for 2 cores), ``paper`` or ``ship``
        (:func:`kspikese.config.load`).
    strategy : tf.distribute.Strategy, optional
        Train stages 1 and 3 data-parallel (:mod:`kspikese.distribute`).  Under a multi-worker
        strategy the chief does everything; the other workers train stages 1 and 3 with it and
        return ``None`` (only the chief evaluates and writes the table).

    Returns
    -------
    dict or None
        The table's JSON payload (also written to ``results/<table>/<table>.json``).
    """
    from kspikese import tables

    t0 = time.perf_counter()
    run, corpus = open_run(table, seed=seed, data=data, results=results, quick=quick, force=force,
                           data_dir=data_dir, vctk_root=vctk_root, timit_root=timit_root,
                           overrides=overrides, profile=profile, strategy=strategy)
    print(f"[{run.table}] {run.cfg['title']} — run folder {run.dir}", flush=True)
    ann = train_ann(run, corpus, verbose, strategy)
    converted = convert_ann(run, ann, corpus)
    random = random_snn(run, corpus)
    finetuned = finetune_snn(run, corpus, verbose, strategy)
    if not run.writer:
        return None
    models_by_stage = {"ann": ann, "convert": converted, "random": random, "finetune": finetuned}
    results_ = evaluate_columns(run, corpus, models_by_stage, workers=workers)
    save_examples(run, corpus, models_by_stage)
    return tables.write_table(run, results_, time.perf_counter() - t0)


def open_run(table, *, seed=0, data="default", results="results", quick=False, force=False,
             data_dir=None, vctk_root=None, timit_root=None, overrides=None, profile="cpu",
             strategy=None, _writer=True, _chain=()):
    """The config, corpus and run folder of ``table`` (the corpus is checked before the folder
    is made; arguments as :func:`reproduce`; only ``strategy``'s chief writes the folder).

    With ``ann: init: {profile: P}`` ``run.init_base`` holds ``P``'s run, opened read-only
    (``overrides`` are this run's, not ``P``'s), and its corpus; the ANN's fingerprint includes
    ``P``'s ANN fingerprint (:mod:`kspikese.continuation`).  With ``init: {model: ...}``
    ``run.init_model`` holds the named model, loaded once, and the fingerprint its digest.

    Returns
    -------
    (TableRun, Corpus)
    """
    from kspikese import continuation, distribute

    cfg = configs.load(table, quick=quick, overrides=overrides, profile=profile)
    corpus = open_corpus(cfg, data, data_dir, vctk_root, timit_root, seed=seed)
    init = cfg["ann"].get("init") or {}
    base_name, chain = continuation.base_profile(cfg, _chain)
    base = named = start = None
    if "model" in init:  # start: the named weights' digest
        named, start = continuation.named_model(init)
    elif base_name is not None:  # read-only: initial_ann reopens it if it must train it
        base = open_run(table, seed=seed, data=data, results=results, quick=quick,
                        data_dir=data_dir, vctk_root=vctk_root, timit_root=timit_root,
                        profile=base_name, strategy=strategy, _writer=False, _chain=chain)
        start = base[0].fingerprints()["ann"]
    run = TableRun(cfg, seed=seed, data=data, results=results, force=force,
                   writer=_writer and distribute.is_writer(strategy), init_fingerprint=start)
    run.init_base, run.init_model = base, named
    run.record_data(corpus.info)
    return run, corpus


def ensure_models(table, *, verbose=2, strategy=None, **kwargs):
    """Train, convert and fine-tune what is missing for ``table`` (``kwargs`` as :func:`open_run`;
    stages 1 and 3 under ``strategy`` if given).

    Returns
    -------
    (TableRun, Corpus)
        The run (``run.path(stage)`` locates each model) and its corpus.
    """
    run, corpus = open_run(table, strategy=strategy, **kwargs)
    ann = train_ann(run, corpus, verbose, strategy)
    convert_ann(run, ann, corpus)
    random_snn(run, corpus)
    finetune_snn(run, corpus, verbose, strategy)
    return run, corpus
