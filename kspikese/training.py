"""Resumable training for stages 1 and 3 of the hybrid scheme (:mod:`kspikese.hybrid`).

:func:`fit_resumable` trains with Adam (a constant learning rate or warm-up + cosine decay,
optional gradient clipping): every epoch ends with a checkpoint of weights and optimiser state,
and a JSON state file written atomically, so the same call after a crash (even SIGKILL
mid-epoch) continues from the last finished epoch and no file is ever half-written.
:func:`recalibrate_batchnorm` re-estimates BatchNormalization statistics before validation.
Given a ``tf.distribute`` strategy, the same loop trains data-parallel on several devices or
machines (:mod:`kspikese.distribute`) and follows the same schedule per global batch.
"""

import csv
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese import files, losses

STATE = "state.json"


def set_seed(seed):
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    tf.keras.utils.set_random_seed(int(seed))
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


SCHEDULES = ("constant", "cosine")


def learning_rate(lr, schedule="constant", warmup_steps=0, total_steps=None):
    """Adam's learning rate: a constant, or linear warm-up followed by cosine decay.

    ``cosine``: for step ``t`` (the optimiser's iteration count, which the checkpoint keeps, so a
    resumed run continues the same curve) ``η(t) = lr · t / w`` while ``t < w`` and
    ``η(t) = lr · ½ (1 + cos(π · (t − w) / (T − w)))`` after, ``w = warmup_steps``,
    ``T = total_steps`` (Keras' ``CosineDecay`` with ``warmup_target``).  ``constant`` with
    ``warmup_steps > 0`` warms up linearly and then stays at ``lr``.

    Parameters
    ----------
    lr : float
        Peak learning rate.
    schedule : {"constant", "cosine"}
    warmup_steps : int
        Optimiser steps of linear warm-up from 0.
    total_steps : int, optional
        Steps of the whole run (warm-up included); needed by ``cosine``.

    Returns
    -------
    float or tf.keras.optimizers.schedules.LearningRateSchedule
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    warmup_steps = int(warmup_steps or 0)
    if schedule == "constant" and not warmup_steps:
        return lr
    if schedule == "cosine":
        if not total_steps or total_steps <= warmup_steps:
            raise ValueError(f"schedule 'cosine' needs total_steps > warmup_steps ({warmup_steps}); "
                             "give epochs and steps_per_epoch")
        decay_steps = int(total_steps) - warmup_steps
    else:  # warm-up, then constant: a cosine whose floor is its peak
        decay_steps = 1
    return tf.keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else lr, decay_steps=decay_steps,
        alpha=1.0 if schedule == "constant" else 0.0,
        warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


def compile_model(model, lr, loss=None, metrics=None, clipnorm=None):
    """Compile ``model`` with Adam(``lr``) and ``loss`` (a Keras loss or a YAML ``loss:`` value for
    :func:`kspikese.losses.get`; default: the SNR loss, with SI-SNR and SNR as metrics); ``lr`` may
    be a schedule (:func:`learning_rate`), ``clipnorm`` clips each gradient's norm."""
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=lr, clipnorm=clipnorm),
        loss=losses.get(loss),
        metrics=[losses.si_snr, losses.snr] if metrics is None else list(metrics),
    )
    return model


def epoch_data(data):
    """``data`` as a function of the epoch: a callable is returned as is, a dataset repeated."""
    return data if callable(data) else (lambda epoch: data)


def read_state(folder):
    path = Path(folder) / STATE
    return json.loads(path.read_text()) if path.exists() else None


def _write_log_csv(path, history):
    if not history:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    files.write_text(path, buf.getvalue())


def fit_resumable(model, make_train, valid, folder, *, epochs, lr, patience, seed, label,
                  steps_per_epoch=None, validation_steps=None, verbose=1, loss=None, metrics=None,
                  monitor="val_si_snr", mode="max", callbacks=(), schedule="constant",
                  warmup_steps=0, clipnorm=None, strategy=None, replica_data=None, budget=None):
    """Train ``model`` in place, one epoch at a time, resumable from ``folder``.

    Parameters
    ----------
    model : tf.keras.Model
        Trained in place; at the end it holds the best epoch's weights.
    make_train : callable or tf.data.Dataset
        ``make_train(epoch)`` returns the training dataset of that epoch (its shuffle seeded by
        ``seed + epoch``, so a resumed run sees the same order as an uninterrupted one); a
        dataset is used as it is for every epoch.  Its batches are *global* batches: under a
        strategy each is split over the replicas.
    valid : tf.data.Dataset
        Validation data, scored after every epoch.
    folder : str or Path
        ``ckpt-N.*`` (weights + optimiser after epoch N, the last two kept), ``best_weights.h5``,
        ``state.json`` (epoch, best, history; the commit point of an epoch), ``log.csv``, ``tb/``.
    epochs, lr, patience, seed : int, float, int, int
        At most ``epochs`` epochs of Adam(``lr``); stop after ``patience`` epochs without a new
        best ``monitor``.
    label : str
        Prefix of the progress lines.
    steps_per_epoch, validation_steps : int, optional
        Passed to Keras.
    loss, metrics : optional
        Default: the SNR loss, SI-SNR and SNR metrics (speech enhancement).
    monitor, mode : str
        The validation quantity early stopping watches (``"val_<metric>"`` or ``"val_loss"``) and
        whether larger (``"max"``) or smaller (``"min"``) is better.
    callbacks : sequence of tf.keras.callbacks.Callback
        Extra callbacks for every epoch's ``fit``.
    schedule, warmup_steps : str, int
        The learning-rate curve (:func:`learning_rate`; ``cosine`` decays over
        ``epochs × steps_per_epoch`` steps).
    clipnorm : float, optional
        Clip each gradient to this norm.
    strategy : tf.distribute.Strategy, optional
        Data-parallel training (:mod:`kspikese.distribute`).  A copy of ``model`` is built in
        ``strategy.scope()`` and trained on the global batches (gradients all-reduced, so the
        learning rate and steps are per global batch as without a strategy).  After every epoch
        its weights are copied into ``model``, which recalibrates BatchNorm and scores the
        validation set in this process alone, so those numbers are computed exactly as without
        a strategy.  Every worker writes its checkpoints (the chief into ``folder``, the others
        into a scratch folder, removed at the end); only the chief writes ``state.json``,
        ``log.csv``, ``best_weights.h5`` and TensorBoard logs; every worker resumes from the
        chief's ``folder``, which must therefore be readable by all (a shared file system).
    replica_data : callable, optional
        Under a strategy: ``epoch -> (dataset_fn, steps)`` or ``None`` that lets each worker
        build only its own replicas' share of the epoch's global batches
        (:func:`kspikese.distribute.training_input`); ``make_train`` is still used for
        BatchNorm recalibration.
    budget : (str, float), optional
        ``(key, limit)``: a cost logged per epoch (``key``, e.g. ``"val_events_per_mac"``, by
        one of ``callbacks``) that the kept epoch should not exceed.  Epochs rank by
        :func:`epoch_rank`: any epoch within the budget beats every epoch over it; within the
        budget the better ``monitor`` wins, over it the lower cost (so training goes on while
        the cost falls towards the budget, and patience counts epochs without such progress).

    Returns
    -------
    list of dict
        The history, one row per epoch.
    """
    from kspikese import distribute

    if mode not in ("max", "min"):
        raise ValueError(f"mode: expected 'max' or 'min', got {mode!r}")
    make_train = epoch_data(make_train)
    sign = 1.0 if mode == "max" else -1.0
    folder = Path(folder)
    writer = distribute.is_writer(strategy)
    distributed = distribute.is_distributed(strategy)
    if writer:
        folder.mkdir(parents=True, exist_ok=True)
        own = folder
    else:  # a non-chief worker: its (collective) checkpoints go to a scratch folder
        own = distribute.scratch_folder(strategy, "".join(c if c.isalnum() else "-" for c in label))
    total = epochs * steps_per_epoch if steps_per_epoch else None

    def compiled(net):
        return compile_model(net, learning_rate(lr, schedule, warmup_steps, total), loss,
                             metrics, clipnorm)

    compiled(model)
    trained = model
    if distributed:  # train a copy whose variables are mirrored over the replicas
        trained = distribute.replica_model(model, strategy)
        with strategy.scope():
            compiled(trained)
    ckpt = tf.train.Checkpoint(model=trained, optimizer=trained.optimizer)
    # the chief has cleared another config's work (or --force) before anyone reads the state
    distribute.barrier(strategy)
    state = read_state(folder) or {"epoch": 0, "best": -np.inf, "best_epoch": 0, "wait": 0,
                                    "history": [], "done": False}
    if state["epoch"] > 0:
        ckpt.restore(str(folder / f"ckpt-{state['epoch']}")).expect_partial()
        if distributed:
            model.set_weights(trained.get_weights())
        if writer:
            print(f"[{label}] resuming after epoch {state['epoch']} (best {monitor} "
                  f"{sign * state['best']:.4g} at epoch {state['best_epoch']})", flush=True)
    tensorboard = tf.keras.callbacks.TensorBoard(str(own / "tb"), update_freq="epoch",
                                                 profile_batch=0, write_graph=False)
    has_bn = any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in model.layers)
    t0 = time.perf_counter()
    while not state["done"] and state["epoch"] < epochs:
        epoch = state["epoch"]
        tf.keras.utils.set_random_seed(int(seed) + epoch)
        data, steps = distribute.training_input(make_train, epoch, strategy, steps_per_epoch,
                                                replica_data)
        hist = trained.fit(data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps,
                           verbose=verbose if writer else 0, callbacks=[tensorboard, *callbacks])
        if distributed:
            model.set_weights(trained.get_weights())
        # validate with BatchNorm statistics that describe the data (training mode, which uses
        # batch statistics, is unaffected by them)
        recalibrate_batchnorm(model, make_train(epoch))
        if distributed and has_bn:
            trained.set_weights(model.get_weights())  # training continues from the same state
        scores = model.evaluate(valid, steps=validation_steps, verbose=0, return_dict=True)
        row = {"epoch": epoch + 1, **{k: float(v[-1]) for k, v in hist.history.items()},
               **{f"val_{k}": float(v) for k, v in scores.items()},
               "wall_s": round(time.perf_counter() - t0, 1)}
        if verbose and writer:
            print(f"[{label}] epoch {epoch + 1}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in row.items() if k.startswith("val_")), flush=True)
        state["history"].append(row)
        if monitor not in row:
            raise ValueError(f"[{label}] monitor {monitor!r} is not among the validation "
                             f"results {sorted(k for k in row if k.startswith('val_'))}")
        if budget is not None and budget[0] not in row:
            raise ValueError(f"[{label}] budget {budget[0]!r} is not among the epoch's logs "
                             f"{sorted(row)}")
        rank = epoch_rank(row, monitor, sign, budget)
        best = state.get("best_rank") or [1.0, state["best"]]  # a run without a budget
        if not np.isfinite(best[1]) or (np.isfinite(rank[1]) and rank > tuple(best)):
            state.update(best=float(sign * row[monitor]), best_rank=list(rank),
                         best_epoch=epoch + 1, wait=0)
            if writer:
                with files.atomic_path(folder / "best_weights.h5") as tmp:
                    model.save_weights(str(tmp))
        else:
            state["wait"] += 1
        ckpt.write(str(own / f"ckpt-{epoch + 1}"))  # every worker: the guide's advice
        state["epoch"] = epoch + 1
        state["done"] = state["wait"] >= patience
        if writer:
            files.write_json(folder / STATE, state)  # the commit point of the epoch
            _write_log_csv(folder / "log.csv", state["history"])
        _drop_old_checkpoints(own, keep=(epoch, epoch + 1))
        if state["done"] and writer:
            print(f"[{label}] early stop: no better {monitor} for {patience} epochs", flush=True)
    distribute.barrier(strategy)  # the chief's best_weights.h5 is written before anyone reads it
    if (folder / "best_weights.h5").exists():
        model.load_weights(str(folder / "best_weights.h5"))  # saved after recalibration
    if not writer:
        shutil.rmtree(own, ignore_errors=True)
    else:
        print(f"[{label}] {state['epoch']} epochs, best {monitor} {sign * state['best']:.4g} at "
              f"epoch {state['best_epoch']} ({time.perf_counter() - t0:.0f} s this call)",
              flush=True)
    return state["history"]


def epoch_rank(row, monitor, sign=1.0, budget=None):
    """The tuple epochs of :func:`fit_resumable` are ranked by (larger is better).

    Without a budget ``(1, sign·row[monitor])``.  With ``budget = (key, limit)``: an epoch with
    ``row[key] <= limit`` ranks ``(1, sign·row[monitor])``, one over it ``(0, -row[key])``, so
    every epoch within the budget beats every epoch over it, and over it the lower cost wins.
    """
    if budget is not None and not row[budget[0]] <= budget[1]:
        return (0.0, -float(row[budget[0]]))
    return (1.0, float(sign * row[monitor]))


def recalibrate_batchnorm(model, dataset, batches=20):
    """Re-estimate every BatchNormalization's moving statistics as the mean over ``batches``.

    Keras keeps ``moving ← m·moving + (1 - m)·batch`` (m = 0.99), which after ``n`` steps still
    holds ``m^n`` of its initial value: the variance starts at 1, so a layer whose true variance
    is 1e-5 reads about 0.2 after 160 steps (seen here on Conv-TasNet) and the model runs far
    off its training behaviour at inference.  Here the model runs in training mode (every layer
    sees batch statistics, as in training) with ``m_k = k/(k+1)`` on batch ``k``, which makes the
    moving statistics the plain average of ``batches`` batch statistics.  Only the moving
    statistics change; the weights do not.  A model without BatchNormalization is left alone.
    """
    bns = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    if not bns:
        return
    momenta = [bn.momentum for bn in bns]
    try:
        for k, batch in enumerate(dataset.take(batches)):
            for bn in bns:
                bn.momentum = k / (k + 1.0)
            model(batch[0], training=True)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m


def _drop_old_checkpoints(folder, keep):
    names = {f"ckpt-{k}" for k in keep}
    for path in Path(folder).glob("ckpt-*"):
        if path.name.split(".")[0] not in names:
            path.unlink(missing_ok=True)
