"""A run folder: where one table's stages keep their models, and which of them are done.

A run lives in ``results/runs/<table>[-quick]-<data>-seed<S>/``::

    run.json            fingerprints of the finished stages, data description, wall times
    ann/                stage 1: checkpoints, state.json, log.csv, tb/; ann.keras when finished
    converted.keras     stage 2: the converted SNN (weight transfer + activation scale)
    random.keras        the Random SNN baseline (same graph, fresh random weights)
    finetune/           stage 3: checkpoints, logs; finetuned.keras when finished
    eval/               per-column metrics (<column>.json), example outputs, firing rates

A stage's *fingerprint* hashes the settings that decide it and the fingerprints of the stages it
builds on.  :meth:`RunFolder.stage` reuses a stage's model when its fingerprint matches
``run.json``; otherwise it clears the stage's folder (if it holds another config's work), makes
the model, saves it atomically and records the fingerprint and the wall time.  A table run also
takes a finished stage with the same fingerprint from another run of the same results folder
(e.g. ``PROFILE=budget`` reuses the ``cpu`` run's ANN, which it shares), copying its model and
logs (not its checkpoints).

Under a multi-worker strategy every worker opens the same run folder but only the chief writes
it (``writer=True``): the other workers read ``run.json`` once, when they open it, train the
stages that are not done alongside the chief and keep their models in a scratch folder.
"""

import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

from kspikese import config as configs
from kspikese import files

# stage -> (model file in the run folder, the one-line summary printed when it is made)
STAGES = {
    "ann": ("ann/ann.keras", "[stage 1] ANN trained"),
    "convert": ("converted.keras", "[stage 2] converted to SNN"),
    "random": ("random.keras", "[baseline] Random SNN built"),
    "finetune": ("finetune/finetuned.keras", "[stage 3] SNN fine-tuned"),
}


def run_name(table, data="default", seed=0, quick=False, profile="cpu"):
    """``<table>[-quick][-<profile>]-<data>-seed<S>``, the folder of a run under ``results/runs/``
    (the default ``cpu`` profile is not named)."""
    tag = "" if profile in (None, "cpu") else f"-{profile}"
    return f"{table}{'-quick' if quick else ''}{tag}-{data}-seed{int(seed)}"


def stage_fingerprints(base, ann, convert, finetune):
    """``{stage: fingerprint}``: each stage hashes its own settings and the stages before it.

    ``base`` holds what every stage depends on (model, data, seed); ``ann``, ``convert`` and
    ``finetune`` are the settings of the three stages (``ann=None``: a given, trained ANN).
    The Random baseline depends on ``base`` and ``convert`` only.
    """
    ann_fp = configs.fingerprint(base, ann)
    conv = configs.fingerprint(ann_fp, convert)
    return {"ann": ann_fp, "convert": conv, "random": configs.fingerprint(base, convert),
            "finetune": configs.fingerprint(conv, finetune)}


class RunFolder:
    """A folder of stages, each cached under the fingerprint of the settings that decide it.

    Parameters
    ----------
    folder : str or Path
        Created if missing; ``run.json`` in it records the stages.
    fingerprints : dict
        ``{stage: fingerprint}`` of the current settings (:func:`stage_fingerprints`).
    force : bool
        Delete the folder first (every stage is redone).
    cfg : dict, optional
        The experiment config of a table run (:func:`table_run`).
    seed : int
        The run's seed.
    writer : bool
        Whether this process writes the folder (the chief of a multi-worker run, or the only
        process).  A non-writer never creates, deletes or changes anything in ``folder``: it
        reads ``run.json`` as it is now (with ``force``, as if empty), and saves the models it
        makes into a scratch folder (removed when the process exits).
    share : bool
        Take a stage that is not done here from a sibling run folder (same parent) where it
        finished with the same fingerprint (never with ``force``).
    """

    def __init__(self, folder, fingerprints, force=False, cfg=None, seed=0, writer=True,
                 share=False):
        self.dir = Path(folder)
        self._fingerprints = dict(fingerprints)
        self.cfg = cfg
        self.seed = int(seed)
        self.writer = bool(writer)
        self.share = bool(share) and not force
        self._made = {}  # stage -> where a non-writer saved the model it made
        path = self.dir / "run.json"
        if self.writer:
            if force and self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        elif force:
            path = None
        self.state = (json.loads(path.read_text()) if path is not None and path.exists()
                      else {"stages": {}})

    def path(self, stage):
        """The model file of ``stage`` (a non-writer's own copy once it has made the stage)."""
        return self._made.get(stage) or self.dir / STAGES[stage][0]

    def fingerprints(self):
        """``{stage: fingerprint}`` of the current settings."""
        return dict(self._fingerprints)

    def save_state(self):
        if self.writer:
            files.write_json(self.dir / "run.json", self.state)

    def record_data(self, info):
        """Keep the data description in ``run.json`` (the tables print it)."""
        self.state["data"] = info
        self.save_state()

    def stage_done(self, stage):
        """Whether ``stage`` finished with the current settings and its model file exists."""
        record = self.state["stages"].get(stage, {})
        return ((self.dir / STAGES[stage][0]).exists() and record.get("done", True)
                and record.get("fingerprint") == self.fingerprints()[stage])

    def stage(self, stage, make):
        """The model of ``stage``: loaded when done with these settings, else ``make(folder)``.

        ``make`` receives the stage's working folder and returns the Keras model; the model is
        saved to the stage's file and the stage recorded as done with its wall time.
        """
        from kspikese import models

        path = self.dir / STAGES[stage][0]
        if self.stage_done(stage):
            return models.load_model(path)
        fingerprint = self.fingerprints()[stage]
        recorded = self.state["stages"].get(stage, {}).get("fingerprint")
        shared = self.shared_stage(stage)
        if shared is not None:
            return self._take(stage, *shared)
        if not self.writer:  # train alongside the chief; keep the model in a scratch folder
            model = make(path.parent)
            self._made[stage] = _scratch_dir() / STAGES[stage][0]
            models.save_model(model, self._made[stage])
            return model
        if recorded not in (None, fingerprint) and path.parent != self.dir:
            shutil.rmtree(path.parent, ignore_errors=True)  # another config's work: start over
        self.state["stages"][stage] = {"fingerprint": fingerprint, "done": False}
        self.save_state()
        t0 = time.perf_counter()
        model = make(path.parent)
        models.save_model(model, path)
        seconds = time.perf_counter() - t0
        self.state["stages"][stage] = {"fingerprint": fingerprint, "done": True,
                                       "seconds": round(seconds, 1)}
        self.save_state()
        print(f"{STAGES[stage][1]} in {seconds:.0f} s -> {path}", flush=True)
        return model

    def shared_stage(self, stage):
        """``(folder, record)`` of a sibling run in which ``stage`` finished with this run's
        fingerprint and whose model file exists, or ``None`` (also when sharing is off)."""
        if not self.share:
            return None
        fingerprint, model_file = self.fingerprints()[stage], STAGES[stage][0]
        for other in sorted(self.dir.parent.glob("*/run.json")):
            if other.parent.resolve() == self.dir.resolve():
                continue
            try:
                record = json.loads(other.read_text())["stages"][stage]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (record.get("fingerprint") == fingerprint and record.get("done", True)
                    and (other.parent / model_file).exists()):
                return other.parent, record
        return None

    def _take(self, stage, other, record):
        """Copy ``stage`` (its model, and its folder's logs without checkpoints) from the run
        folder ``other`` and record it as done here; a non-writer only loads it."""
        from kspikese import models

        source, target = other / STAGES[stage][0], self.dir / STAGES[stage][0]
        if not self.writer:
            return models.load_model(source)
        if source.parent != other:  # a stage folder: logs and the model, not the checkpoints
            shutil.rmtree(target.parent, ignore_errors=True)
            tmp = target.parent.with_name(target.parent.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source.parent, tmp, ignore=shutil.ignore_patterns("ckpt-*", "tb"))
            tmp.rename(target.parent)
        else:
            with files.atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        self.state["stages"][stage] = {**record, "from": other.name}
        self.save_state()
        print(f"{STAGES[stage][1]} (taken from {other.name}, same fingerprint) -> {target}",
              flush=True)
        return models.load_model(target)

    def history(self, stage):
        """The per-epoch history of a training stage (``ann`` or ``finetune``), or ``[]``."""
        state = self.path(stage).parent / "state.json"
        return json.loads(state.read_text())["history"] if state.exists() else []


_SCRATCH = []


def _scratch_dir():
    """This process's scratch folder for a non-writer's models (removed at exit)."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="kspikese-worker-run-")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


def run_folder(cfg, results="results", data="default", seed=0):
    """``<results>/runs/<run name>/``: where :class:`TableRun` keeps the run of ``cfg``."""
    return Path(results) / "runs" / run_name(cfg["table"], data, seed, bool(cfg.get("quick", False)),
                                             cfg.get("profile", "cpu"))


def table_fingerprints(cfg, seed=0, data="default", init_fingerprint=None):
    """``{stage: fingerprint}`` of a table run of ``cfg`` (:func:`stage_fingerprints`), made
    without a folder; ``init_fingerprint`` as :class:`TableRun`."""
    base = {"model": cfg["model"], "model_kwargs": cfg.get("model_kwargs", {}),
            "data": data, "recipe": cfg["recipe"], "limits": cfg.get("data", {}),
            "frame_len": cfg["frame_len"], "batch_size": cfg.get("batch_size", 8),
            "seed": int(seed)}
    ann = dict(cfg["ann"])
    if "init" in ann:
        if init_fingerprint is None:
            raise ValueError("a config with `ann: init:` needs the init_fingerprint of what "
                             "its ANN starts from (kspikese.continuation.start_fingerprint)")
        ann["init"] = {"start": init_fingerprint}
    return stage_fingerprints(base, ann, cfg["convert"], cfg["finetune"])


class TableRun(RunFolder):
    """The run of one table: ``results/runs/<table>[-quick][-<profile>]-<data>-seed<S>/``.

    Parameters
    ----------
    cfg : dict
        The experiment config (:func:`kspikese.config.load`).
    seed : int
        Training, conversion and neuron seed.
    data : str
        Data source name (part of the folder name and of every fingerprint).
    results : str or Path
        The results folder.
    force : bool
        Delete the run folder first.
    writer : bool
        Whether this process writes the run folder (:class:`RunFolder`).
    init_fingerprint : str, optional
        With ``ann: init:`` (:mod:`kspikese.continuation`): what the ANN starts from (the
        fingerprint of another profile's ANN stage, or the digest of a named model's weights);
        it stands in for ``init:`` in the ANN's fingerprint.
    """

    #: ``(TableRun, Corpus)`` of the profile whose ANN ``ann: init: {profile: P}`` continues
    #: (set by :func:`kspikese.pipeline.open_run`), else ``None``
    init_base = None
    #: the model ``ann: init: {model: ...}`` names, loaded by :func:`kspikese.pipeline.open_run`
    init_model = None

    def __init__(self, cfg, seed=0, data="default", results="results", force=False, writer=True,
                 init_fingerprint=None):
        fps = table_fingerprints(cfg, seed, data, init_fingerprint)
        self.table, self.data, self.results = cfg["table"], data, Path(results)
        self.quick = bool(cfg.get("quick", False))
        self.profile = cfg.get("profile", "cpu")
        self.init_fingerprint = init_fingerprint
        folder = run_folder(cfg, results, data, seed)
        super().__init__(folder, fps, force=force, cfg=cfg, seed=seed, writer=writer, share=True)

    def reopened(self, writer):
        """The same run opened again, as ``writer`` or not (``run.json`` read afresh)."""
        run = TableRun(self.cfg, self.seed, self.data, self.results, writer=writer,
                       init_fingerprint=self.init_fingerprint)
        run.init_base, run.init_model = self.init_base, self.init_model
        if "data" in self.state:
            run.record_data(self.state["data"])
        return run
