"""Learning curves: validation SI-SNR against training wall-clock seconds, per recipe.

For each table and recipe of ``experiments/bench/learning_curves.yaml`` the table's ANN (its ``cpu``
profile with the recipe's overrides merged in) is trained from the same seed for ``budget_s``
seconds of training; every ``eval_every_steps`` optimiser steps the validation split is scored.
Only training time is on the x axis (scoring is excluded), so recipes compare at equal CPU time.
A recipe may scale the table's learning rate with ``ann: {lr_factor: f}`` and may be limited to
some tables with ``tables: [...]``.  The noisy input's SI-SNR on the same frames (the identity's
score, the line a useful model must cross) is recorded as recipe ``noisy``.  Writes
``learning.md|csv|json`` and ``learning_curves.png``.
"""

import time
from pathlib import Path

import numpy as np

from kspikese import config as configs, report

SETTINGS = configs.EXPERIMENTS_DIR / "bench" / "learning_curves.yaml"


def load_settings(path=SETTINGS, quick=False):
    """The benchmark's settings (its ``quick:`` section merged when ``quick``)."""
    cfg = configs.read_yaml(path)
    quick_part = cfg.pop("quick", {}) or {}
    if quick:
        cfg.update(quick_part)  # whole keys: a quick recipe list replaces the full one
    for key in ("tables", "budget_s", "eval_every_steps", "recipes"):
        if key not in cfg:
            raise configs.ConfigError(f"{path}: missing {key!r}")
    return cfg


def recipe_config(table, overrides, quick=False):
    """The table's config with a recipe's overrides (``ann.lr_factor`` scales ``ann.lr``)."""
    overrides = configs.merge({}, overrides or {})
    overrides.pop("tables", None)
    factor = (overrides.get("ann") or {}).pop("lr_factor", None)
    cfg = configs.load(table, quick=quick, overrides=overrides)
    if factor is not None:
        cfg["ann"]["lr"] = float(cfg["ann"]["lr"]) * float(factor)
    return cfg


def curve(cfg, corpus, budget_s, eval_every, validation_frames, seed=0):
    """Train the config's ANN for ``budget_s`` training seconds; ``[(steps, seconds, si_snr)]``.

    The first point is the untrained model (0 steps, 0 s).  Every score uses the same first
    ``validation_frames`` validation frames, whatever the recipe's batch size.
    """
    from kspikese import pipeline, training

    ann_cfg = cfg["ann"]
    model = pipeline.build_ann(cfg, seed)
    planned = int(ann_cfg["epochs"]) * int(ann_cfg.get("steps_per_epoch") or eval_every)
    lr = training.learning_rate(ann_cfg["lr"], ann_cfg.get("schedule", "constant"),
                                ann_cfg.get("warmup_steps", 0), planned)
    training.compile_model(model, lr, loss=ann_cfg.get("loss"),
                           clipnorm=ann_cfg.get("clipnorm"))
    validation_steps = max(1, int(validation_frames) // int(cfg.get("batch_size", 8)))
    valid = corpus.validation_stream()

    def score():
        return float(model.evaluate(valid, steps=validation_steps, verbose=0,
                                    return_dict=True)["si_snr"])

    points, steps, seconds, chunk = [(0, 0.0, score())], 0, 0.0, 0
    while seconds < budget_s:
        train = corpus.training_stream(chunk).repeat()
        t0 = time.perf_counter()
        model.fit(train, steps_per_epoch=eval_every, epochs=chunk + 1, initial_epoch=chunk,
                  verbose=0)
        seconds += time.perf_counter() - t0
        steps += eval_every
        chunk += 1
        points.append((steps, round(seconds, 2), score()))
    return points


def noisy_score(corpus, validation_frames, batch_size):
    """Mean SI-SNR (dB) over the noisy validation frames against their clean targets (the mean
    over examples, as Keras' metric averages it): what the identity map scores."""
    from kspikese import losses

    steps = max(1, int(validation_frames) // int(batch_size))
    values = [losses.si_snr(clean, noisy).numpy() for noisy, clean in
              corpus.validation_stream().take(steps)]
    return float(np.mean(np.concatenate(values)))


def run(out_dir, quick, settings_path=SETTINGS, data_dir=None, seed=0):
    """Measure every (table, recipe) curve and write the tables and the figure."""
    from kspikese.corpus import open_corpus

    settings = load_settings(settings_path, quick)
    rows, curves, info = [], {}, {}
    for table in settings["tables"]:
        for name, overrides in settings["recipes"].items():
            if table not in (overrides or {}).get("tables", [table]):
                continue
            cfg = recipe_config(table, overrides, quick)
            corpus = open_corpus(cfg, "default", data_dir, seed=seed)
            info[table] = corpus.info
            print(f"[bench learning] {table} / {name}: {settings['budget_s']} s of training",
                  flush=True)
            points = curve(cfg, corpus, float(settings["budget_s"]),
                           int(settings["eval_every_steps"]),
                           settings.get("validation_frames", 80), seed)
            curves[(table, name)] = points
            if (table, "noisy") not in curves:
                v = noisy_score(corpus, settings.get("validation_frames", 80),
                                cfg.get("batch_size", 8))
                curves[(table, "noisy")] = [(0, 0.0, v), (points[-1][0], points[-1][1], v)]
            rows += [[table, name, s, t, round(v, 3)] for s, t, v in points]
    header = ["table", "recipe", "steps", "train_seconds", "val_si_snr_db"]
    summary = [[t, n, pts[-1][0], pts[-1][1], report.fmt(pts[-1][2]),
                report.fmt(max(p[2] for p in pts))] for (t, n), pts in curves.items()]
    data = "; ".join(f"{t}: {i.get('corpus')} (`{i.get('recipe', '')}`), validation split"
                     for t, i in info.items())
    md = ("Validation SI-SNR (dB) of each table's ANN after equal training wall-clock time "
          f"({settings['budget_s']} s each; seed {seed}; {'QUICK; ' if quick else ''}data: {data}).\n\n"
          + report.markdown_table(["table", "recipe", "steps", "train s", "last SI-SNR",
                                   "best SI-SNR"], summary))
    out_dir = Path(out_dir)
    report.write_all(out_dir, "learning", "# learning curves\n\n" + md + "\n", header, rows,
                     {"settings": settings, "data": info, "rows": rows, "quick": bool(quick)})
    plot(curves, out_dir / "learning_curves.png")
    return md


def plot(curves, path):
    """One panel per table: validation SI-SNR against training seconds, one line per recipe."""
    plt = report.pyplot()
    tables = sorted({t for t, _ in curves})
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.4), squeeze=False)
    for ax, table in zip(axes[0], tables):
        for (t, name), pts in curves.items():
            if t == table:
                pts = np.asarray(pts, float)
                ax.plot(pts[:, 1], pts[:, 2], marker=".", label=name)
        ax.set_title(table, fontsize=9)
        ax.set_xlabel("training wall-clock (s)")
        ax.set_ylabel("validation SI-SNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    report.save_figure(fig, path)
