"""One way to get a model: :func:`load` resolves a shipped name, a card, a run folder or a checkpoint.

========================================  ==================================================
argument                                  model
========================================  ==================================================
a shipped name (:data:`SHIPPED`)          ``kspikese/weights/NAME.json`` + ``NAME.h5``
a model card, ``*.json``                  the card and the weight file it names
a pipeline run folder                     its fine-tuned SNN (``ann=True``: its ANN)
a ``.keras`` checkpoint                   the file (``ann=True``: its run's ANN)
========================================  ==================================================

Every kind returns ``(model, card)``; for a run folder or checkpoint the card holds the
checkpoint's path and its run's ``run.json`` (under ``run``).  Loads are cached: the same
argument gives the same Keras object again until the file on disk changes.
"""

import contextlib
import functools
import json
import os
from pathlib import Path

from kspikese import shipped
from kspikese.inference import ModelError
from kspikese.shipped import DEFAULT_MODEL, SHIPPED

# checkpoints inside a pipeline run folder (results/runs/<table>-<data>-seed<S>/), best first;
# the flat names are accepted too
RUN_SPIKING = ("finetune/finetuned.keras", "finetuned.keras", "converted.keras")
RUN_ANN = ("ann/ann.keras", "ann.keras")
EXPECTED = (f"a shipped name ({', '.join(SHIPPED)}), a model card (.json), a pipeline run folder "
            "or a .keras checkpoint")

__all__ = ["DEFAULT_MODEL", "EXPECTED", "ModelError", "SHIPPED", "clear_cache", "load",
           "missing_weights_message", "resolve_checkpoint", "run_card"]


def missing_weights_message(name, weights_dir=None):
    """Why a shipped name cannot be loaded from ``weights_dir``, and how to make its files."""
    table = shipped.source_table(name)
    folder = Path(weights_dir or shipped.WEIGHTS_DIR)
    return (
        f"model {name!r}: its weights are not shipped in {folder} yet (no {name}.json / "
        f"{name}.h5). They are produced by the pipeline: run `make reproduce-{table}`, then "
        f"`kspikese ship {table}`. Or pass a pipeline run folder or .keras checkpoint instead."
    )


def resolve_checkpoint(path, ann=False):
    """The ``.keras`` file meant by ``path``: the file itself, or a run folder's checkpoint.

    Parameters
    ----------
    path : str or Path
        A run folder (gives the first of :data:`RUN_SPIKING`, or with ``ann`` of
        :data:`RUN_ANN`) or a ``.keras`` file (with ``ann``: the ANN checkpoint of its run).
    ann : bool
        Pick the ANN.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        Nothing to resolve, naming the path and what was looked for.
    """
    path = Path(path)
    if path.is_dir():
        order = RUN_ANN if ann else RUN_SPIKING
        for name in order:
            if (path / name).is_file():
                return path / name
        raise ModelError(f"{path}: the run folder holds none of {list(order)}")
    if not path.exists():
        raise ModelError(f"{path}: no such model file or folder (expected {EXPECTED})")
    if path.suffix != ".keras":
        raise ModelError(f"{path}: expected a .keras checkpoint written by the pipeline")
    if ann and path.name != "ann.keras":
        for run in (path.parent, path.parent.parent):
            for name in RUN_ANN:
                if (run / name).is_file():
                    return run / name
        raise ModelError(f"{path}: ann=True (--ann) needs the ANN checkpoint (ann/ann.keras) of "
                         "its run")
    return path


def run_card(ckpt):
    """A card for a pipeline checkpoint: its path and its run's ``run.json`` (if found)."""
    card = {"name": str(ckpt), "checkpoint": str(ckpt)}
    folder = Path(ckpt).parent
    run_json = folder / "run.json"
    if not run_json.is_file():
        run_json = folder.parent / "run.json"  # ann/ann.keras, finetune/finetuned.keras
    if run_json.is_file():
        with contextlib.suppress(OSError, ValueError):
            card["run"] = json.loads(run_json.read_text())
    return card


def _resolve(name_or_path, ann, weights_dir):
    """``(kind, file)``: what :func:`load` will read, checked before anything is loaded."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ModelError(f"model {name_or_path!r}: expected {EXPECTED}, got a "
                         f"{type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    if name in SHIPPED:
        name = shipped.ann_name(name) if ann else name
        if name not in shipped.available(weights_dir):
            raise ModelError(missing_weights_message(name, weights_dir))
        return "card", shipped.card_path(name, weights_dir)
    path = Path(name)
    if path.suffix == ".json":
        if ann:
            raise ModelError(f"{path}: ann=True (--ann) applies to shipped names and run folders, "
                             "not to a model card")
        if not path.is_file():
            raise ModelError(f"{path}: no such model card")
        return "card", path
    if not path.exists() and path.suffix == "":
        raise ModelError(f"unknown model {name!r}: expected {EXPECTED}")
    return "checkpoint", resolve_checkpoint(path, ann)


@functools.lru_cache(maxsize=4)
def _load_cached(kind, path, mtime_ns):
    if kind == "card":
        try:
            return shipped.load(path)
        except shipped.WeightsError as exc:
            raise ModelError(str(exc)) from exc
    from kspikese import models

    try:
        model = models.load_model(path)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the model ({exc})") from exc
    return model, run_card(path)


def load(name_or_path=DEFAULT_MODEL, ann=False, weights_dir=None):
    """The model meant by ``name_or_path``, with its card.

    Parameters
    ----------
    name_or_path : str or Path
        A shipped name, a model card (``.json``), a pipeline run folder or a ``.keras``
        checkpoint (see the module's table).
    ann : bool
        The ANN twin: for a shipped ``snn-*`` name the name without ``snn-``, for a run folder
        or checkpoint the run's ``ann/ann.keras``.
    weights_dir : str or Path, optional
        Where shipped names are looked up (default: the package's weights folder).

    Returns
    -------
    (tf.keras.Model, dict)
        The model and its card (a copy; the model is shared between calls with the same
        argument while its file is unchanged).

    Raises
    ------
    ModelError
        Naming the argument and what was expected, before anything is loaded when the
        argument itself is wrong; naming the file when it cannot be loaded.
    """
    kind, path = _resolve(name_or_path, bool(ann), weights_dir)
    path = Path(path).resolve()
    model, card = _load_cached(kind, str(path), path.stat().st_mtime_ns)
    return model, dict(card)


def clear_cache():
    """Forget cached models (after new weights were exported under the same name)."""
    _load_cached.cache_clear()
