"""The three-stage hybrid scheme for any Keras model: train the ANN, convert, fine-tune the SNN.

Abuhajar et al. (2025, §3.1):

1. :func:`train_ann` trains the ANN (Adam; by default on the SNR loss with early stopping on
   validation SI-SNR; any loss, metrics and monitored quantity can be given);
2. :func:`convert` transfers its weights into the spiking graph after a function-preserving
   activation scaling (:func:`kspikese.convert.convert`);
3. :func:`finetune` trains the SNN spike-aware: spiking forward pass, the ANN's gradient backward.

:func:`three_stage` runs all three in a folder and returns a :class:`HybridResult` with the
models, the training histories and an energy comparison.  Every stage is resumable: each epoch
ends with a checkpoint, and a finished stage is reused when its settings (fingerprinted) are the
same.  The tables' pipeline (:mod:`kspikese.pipeline`) calls the same three functions.

Data are ``tf.data.Dataset`` objects of ``(x, y)`` batches, or for training a function
``epoch -> Dataset`` (so each epoch can be shuffled or mixed afresh, seeded by the epoch).
"""

from dataclasses import dataclass, field

from kspikese import precision as mixed_precision
from kspikese import training
from kspikese.runs import RunFolder, stage_fingerprints


def train_ann(model, train, valid, folder, *, lr=1e-3, epochs=10, patience=3, seed=0,
              steps_per_epoch=None, validation_steps=None, loss=None, metrics=None,
              monitor="val_si_snr", mode="max", callbacks=(), verbose=1, schedule="constant",
              warmup_steps=0, clipnorm=None, strategy=None, replica_data=None,
              precision="float32"):
    """Stage 1: train ``model`` (in place) with Adam, resumable from ``folder``.

    Parameters
    ----------
    model : tf.keras.Model
        The ANN; at the end it holds the best epoch's weights.
    train : tf.data.Dataset or callable
        Training batches, or ``epoch -> Dataset``.
    valid : tf.data.Dataset
        Validation batches, scored after every epoch.
    folder : str or Path
        Checkpoints, ``state.json``, ``log.csv``, TensorBoard logs.
    lr, epochs, patience, seed : float, int, int, int
        Adam's learning rate; at most ``epochs`` epochs; stop after ``patience`` epochs without
        a better ``monitor``; the seed of TensorFlow's random ops per epoch (``seed + epoch``).
    steps_per_epoch, validation_steps : int, optional
        Passed to Keras.
    loss, metrics : optional
        Default: the SNR loss ``-10 log10(‖s‖² / ‖s − ŝ‖²)``, with SI-SNR and SNR as metrics.
        ``loss`` may be a YAML value for :func:`kspikese.losses.get` (``"thresholded_snr"``).
    monitor, mode : str
        What early stopping watches and whether more (``"max"``) or less (``"min"``) is better.
    callbacks : sequence
        Extra Keras callbacks.
    verbose : int
        Keras' verbosity.
    schedule, warmup_steps, clipnorm : str, int, float
        Learning-rate curve (``"constant"`` or ``"cosine"`` after a linear warm-up of
        ``warmup_steps``) and gradient-norm clipping (:func:`kspikese.training.learning_rate`).
    strategy : tf.distribute.Strategy, optional
        Train data-parallel (:func:`kspikese.training.fit_resumable`): the batches of ``train``
        are global batches split over the replicas; lr and steps are per global batch.
    replica_data : callable, optional
        Under ``strategy``: ``epoch -> (dataset_fn, steps)`` so each worker builds only its
        replicas' share (:func:`kspikese.distribute.training_input`).
    precision : {"float32", "mixed_bfloat16"}
        ``mixed_bfloat16`` trains a bfloat16 twin of ``model`` (:func:`kspikese.precision.twin`:
        float32 weights, bfloat16 arithmetic, about twice as fast on CPUs with native bfloat16)
        and copies its weights back, so ``model`` stays float32.

    Returns
    -------
    list of dict
        One row per epoch (training and validation metrics, wall time).
    """
    trained = mixed_precision.training_model(model, precision)
    history = training.fit_resumable(
        trained, train, valid, folder, epochs=epochs, lr=lr, patience=patience, seed=seed,
        label="ANN", steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
        verbose=verbose, loss=loss, metrics=metrics, monitor=monitor, mode=mode,
        callbacks=callbacks, schedule=schedule, warmup_steps=warmup_steps, clipnorm=clipnorm,
        strategy=strategy, replica_data=replica_data)
    if trained is not model:
        mixed_precision.copy_back(trained, model)
    return history


def convert(ann, calibration=None, *, seed=0, **settings):
    """Stage 2: the SNN of ``ann`` by weight transfer (the ANN is not changed).

    Parameters
    ----------
    ann : tf.keras.Model
        A trained ANN (functional or Sequential).
    calibration : array_like, optional
        Example inputs for data-based normalisation (``activation_scale="data"``): each layer's
        ``percentile``-th activation on them is mapped to ``target_spikes`` spikes per step.
    seed : int
        Seeds every neuron's initial voltage.
    **settings
        The ``convert:`` settings: ``dt`` (ω, required), ``timesteps`` (default 1),
        ``activation_scale`` (``"data"``, ``"int16"``, a number or ``"none"``), ``percentile``,
        ``target_spikes``, ``readout_spikes``, ``readout`` (the linear readout layer's name).

    Returns
    -------
    tf.keras.Model
        The SNN, whose ``SpikingActivation`` layers train spike-aware.
    """
    from kspikese.convert import convert as convert_model, needs_calibration

    if "dt" not in settings:
        raise ValueError("convert: give dt (the spiking window omega), e.g. dt=0.001")
    if needs_calibration(settings) and calibration is None:
        raise ValueError("convert: activation_scale='data' needs calibration inputs")
    return convert_model(ann, settings, seed, calibration)


def finetune(snn, train, valid, folder, *, lr=1e-4, epochs=5, patience=2, seed=0,
             spike_penalty=None, max_events_per_mac=None, teacher=0.0, ann=None, callbacks=(),
             **kwargs):
    """Stage 3: spike-aware fine-tuning of ``snn`` (in place), resumable from ``folder``.

    Arguments as :func:`train_ann` (defaults: the paper's Wave-U-Net fine-tuning rate, 1e-4).
    The forward pass spikes; the gradient is the ANN's (``spiking_aware_training=True``).
    ``spike_penalty = {"weight": w, "target": τ}`` adds the spike-count penalty of
    :mod:`kspikese.spike_penalty` to the loss; every epoch's log records the mean spikes per
    neuron per step on validation batches (``val_spikes_per_neuron``,
    ``val_hidden_spikes_per_neuron``).  ``max_events_per_mac`` (a rate budget, e.g. 0.33) also
    logs ``val_events_per_mac`` on the whole validation set
    (:class:`kspikese.spike_penalty.EventsLog`) and keeps the best
    validation epoch whose synaptic events per inference are at most that share of the ANN's
    MACs (before any epoch is, the one closest to it; :func:`kspikese.training.epoch_rank`);
    ``ann``, the network ``snn`` was converted from, gives those MACs (default: ``snn``'s own
    graph).  With ``spike_penalty: adapt_gain`` the penalty weight follows the budget
    (:class:`kspikese.spike_penalty.BudgetController`).  ``teacher`` (a share α in [0, 1])
    trains towards ``(1 - α) clean + α ann(noisy)`` instead of the clean speech
    (:mod:`kspikese.teacher`); it needs ``ann``.

    Returns
    -------
    list of dict
        One row per epoch.
    """
    import tensorflow as tf

    from kspikese import spike_penalty as penalty
    from kspikese import teacher as teaching

    cfg = penalty.check(spike_penalty or {"weight": 0.0})  # no penalty: weight 0, the defaults
    alpha = teaching.share(0.0 if teacher is None else teacher)  # YAML `teacher: null`: none
    if alpha > 0:
        if ann is None:
            raise ValueError("finetune: teacher needs the ANN the SNN was converted from (ann=)")
        train = teaching.blended(train, ann, alpha)
        if kwargs.get("replica_data") is not None:
            kwargs["replica_data"] = teaching.blended_replicas(kwargs["replica_data"], ann, alpha)
    steps = kwargs.get("validation_steps") or 2
    logs, budget, weight = [penalty.SpikeCountLog(valid, steps, cfg["readout"])], None, cfg["weight"]
    if max_events_per_mac is not None:
        budget = ("val_events_per_mac", penalty.budget_value(max_events_per_mac))
        logs.append(penalty.EventsLog(valid, None, ann))  # the whole validation set
    if cfg["adapt_gain"] > 0:
        if budget is None:
            raise ValueError("spike_penalty: adapt_gain needs a rate budget "
                             "(finetune: max_events_per_mac) to adapt the weight to")
        last = (training.read_state(folder) or {}).get("history") or []
        if last:  # resuming: the weight the next epoch would have had
            weight = penalty.next_weight(last[-1]["penalty_weight"], last[-1][budget[0]],
                                         budget[1], cfg["adapt_gain"])
        weight = tf.Variable(float(weight), trainable=False, dtype=tf.float32)
        logs.append(penalty.BudgetController(weight, budget[1], cfg["adapt_gain"], budget[0]))
    with penalty.penalised(snn, weight, cfg["target"], cfg["readout"], cfg["weighting"]):
        return training.fit_resumable(snn, train, valid, folder, epochs=epochs, lr=lr,
                                      patience=patience, seed=seed, label="SNN fine-tune",
                                      callbacks=(*callbacks, *logs), budget=budget, **kwargs)


STAGE_KEYS = ("lr", "epochs", "patience", "steps_per_epoch", "validation_steps", "schedule",
              "warmup_steps", "clipnorm", "spike_penalty", "max_events_per_mac", "teacher", "loss",
              "precision")


def stage_settings(section):
    """The keyword arguments of :func:`train_ann` / :func:`finetune` in a YAML stage section."""
    return {k: section[k] for k in STAGE_KEYS if k in section}


def weights_digest(model):
    """A short SHA-256 of a model's weights (which trained ANN a cached conversion came from)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


@dataclass
class HybridResult:
    """What :func:`three_stage` returns.

    Attributes
    ----------
    ann, converted, snn : tf.keras.Model
        The trained ANN, the converted SNN before fine-tuning, the fine-tuned SNN.
    history : dict
        ``{"ann": [...], "finetune": [...]}``: per-epoch rows of the training stages.
    energy : dict
        ``{"ann": Estimate, "snn": Estimate}`` (``kspikese.energy.estimate`` on
        ``energy_data``), or empty when no ``energy_data`` was given; each ``.totals`` maps a
        device to Joules per inference.
    folder : Path
        Where the stages live.
    """

    ann: object
    converted: object
    snn: object
    history: dict
    energy: dict = field(default_factory=dict)
    folder: object = None

    def energy_ratio(self, device="cpu-events", ann_device="cpu"):
        """ANN energy on ``ann_device`` / SNN energy on ``device``, per inference (> 1: the SNN is
        cheaper).  The ANN runs on a conventional device; the SNN on an event-driven one."""
        return self.energy["ann"].totals[ann_device] / self.energy["snn"].totals[device]


def three_stage(model, train, valid, folder, *, convert_settings, calibration=None,
                ann_settings=None, finetune_settings=None, energy_data=None, seed=0,
                loss=None, metrics=None, monitor="val_si_snr", mode="max", callbacks=(),
                force=False, verbose=1, strategy=None):
    """Train (optional), convert and fine-tune ``model``; every stage cached in ``folder``.

    Parameters
    ----------
    model : tf.keras.Model
        The ANN; trained first when ``ann_settings`` is given, else taken as trained.
    train, valid : tf.data.Dataset (or callable ``epoch -> Dataset`` for ``train``)
        Data of both training stages.
    folder : str or Path
        ``ann/``, ``converted.keras``, ``finetune/`` and ``run.json`` (fingerprints).
    convert_settings : dict
        Settings of :func:`convert` (``dt`` required).
    calibration : array_like, optional
        Inputs for data-based normalisation.
    ann_settings, finetune_settings : dict, optional
        Keyword arguments of :func:`train_ann` / :func:`finetune` (``lr``, ``epochs``,
        ``patience``, ``steps_per_epoch``, ``validation_steps``); ``finetune_settings=None``
        uses :func:`finetune`'s defaults.
    energy_data : array_like, optional
        Example inputs on which the ANN's and the SNN's energy per inference are estimated.
    seed : int
        Seeds training, conversion and neurons.
    loss, metrics, monitor, mode, callbacks
        As :func:`train_ann`, for both training stages.
    force : bool
        Redo every stage.
    verbose : int
        Keras' verbosity.
    strategy : tf.distribute.Strategy, optional
        Train stages 1 and 3 data-parallel (:mod:`kspikese.distribute`); under a multi-worker
        strategy only the chief writes ``folder``.

    Returns
    -------
    HybridResult
    """
    from kspikese import distribute
    from kspikese import energy, models

    base = {"model": model.get_config(), "seed": int(seed),
            "objective": [str(loss), str(metrics), monitor, mode]}
    if ann_settings is None:  # a given ANN: its weights decide the later stages
        base["weights"] = weights_digest(model)
    run = RunFolder(folder, stage_fingerprints(base, ann_settings, convert_settings,
                                               finetune_settings or {}), force=force, seed=seed,
                    writer=distribute.is_writer(strategy))
    fit = {"seed": seed, "loss": loss, "metrics": metrics, "monitor": monitor, "mode": mode,
           "callbacks": callbacks, "verbose": verbose, "strategy": strategy}
    if ann_settings is not None:
        def make_ann(stage_folder):
            train_ann(model, train, valid, stage_folder, **ann_settings, **fit)
            return model
        ann = run.stage("ann", make_ann)
    else:
        ann = model
    converted = run.stage("convert", lambda _: convert(ann, calibration, seed=seed,
                                                       **convert_settings))

    def make_snn(stage_folder):
        snn = models.load_model(run.path("convert"))  # fine-tune a copy, keep the converted one
        finetune(snn, train, valid, stage_folder, **(finetune_settings or {}), **fit)
        return snn

    snn = run.stage("finetune", make_snn)
    energies = {}
    if energy_data is not None:
        energies = {"ann": energy.estimate(ann, energy_data),
                    "snn": energy.estimate(snn, energy_data)}
    return HybridResult(ann, converted, snn, {"ann": run.history("ann"),
                                              "finetune": run.history("finetune")},
                        energies, run.dir)
