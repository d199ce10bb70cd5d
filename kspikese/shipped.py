"""Shipped models: a JSON model card and an HDF5 weight file per model, in ``kspikese/weights/``.

Each shipped model ``NAME`` is two files:

``NAME.json``
    the model card: what the model is (``keras_config``: the Keras functional graph, serialised
    with ``tf.keras.saving.serialize_keras_object``), how it was made (data, seed, conversion
    settings such as ``dt``, the pipeline run it came from), its test metrics, the date, and the
    SHA-256 of the weight file it describes.
``NAME.h5``
    the weights, one HDF5 dataset per ``model.weights`` entry (``w/0000``, ``w/0001``, ... in
    model order, each with its variable name as an attribute), stored as float16 unless a value
    lies outside the float16 range (``|w| > 65504``), in which case that tensor is float32.

Every path a card names (``weights_file``) must resolve, after ``..`` and symlinks, to a regular
file inside the card's folder of at most :data:`MAX_LOAD_BYTES` bytes; the card itself must be a
regular file of at most :data:`MAX_CARD_BYTES`.  Anything else (an absolute path, ``../x``,
``/dev/zero``, a folder) is refused before it is opened.

Loading rebuilds the graph from the card in Keras' safe mode (no Python code is deserialised: a
``Lambda`` layer is refused), checks the weight file's hash, tensor count and shapes, and assigns
the weights cast to float32.  HDF5 holds plain arrays only (no pickle).  Both files are written
atomically, weights first, so a card always describes a complete weight file.
"""

import datetime
import json
from pathlib import Path

import numpy as np

from kspikese import audio_io, files

FORMAT = "kspikese-shipped/1"
MAX_BYTES = 12_000_000  # at most 12 MB per shipped model
MAX_LOAD_BYTES = 2_000_000_000  # a weight file a card names may hold at most 2 GB (any card)
MAX_CARD_BYTES = 64_000_000  # a model card (JSON with the graph) at most 64 MB
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = ("snn-wave-u-net", "snn-conv-tasnet", "wave-u-net", "conv-tasnet")
DEFAULT_MODEL = "snn-wave-u-net"
# table -> (ANN name, SNN name) of the models shipped from that table's run
SHIPS = {"table1": ("wave-u-net", "snn-wave-u-net"), "table3": ("conv-tasnet", "snn-conv-tasnet")}


class WeightsError(ValueError):
    """A shipped model's card or weight file is missing, damaged or does not match."""


def ann_name(name):
    """The ANN twin of a shipped spiking model's name (``snn-wave-u-net`` -> ``wave-u-net``)."""
    return name[4:] if name.startswith("snn-") else name


def source_table(name):
    """The table whose run a shipped model is exported from (``table1`` or ``table3``)."""
    return next(table for table, names in SHIPS.items() if name in names)


def card_path(name, weights_dir=None):
    """``weights_dir/NAME.json`` (default: the package's weights folder)."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{name}.json"


def weights_path(name, weights_dir=None):
    """``weights_dir/NAME.h5`` (default: the package's weights folder)."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{name}.h5"


def available(weights_dir=None):
    """Names of the models whose card and weight file are both present, sorted."""
    folder = Path(weights_dir or WEIGHTS_DIR)
    return sorted(p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.h5").exists())


def read_card(path):
    """Read a model card (JSON); raises :class:`WeightsError` naming the file."""
    path = Path(path)
    try:
        real = path.resolve()  # the card may be a symlink; what it names must be a regular file
        files.contained_file(real.parent, real.name, MAX_CARD_BYTES, f"{path}: the model card")
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read the model card ({exc})") from exc
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a kspikese model card (expected format {FORMAT!r})")
    for key in ("keras_config", "weights_file", "weights_sha256"):
        if key not in card:
            raise WeightsError(f"{path}: the model card has no {key!r}")
    return card


# ------------------------------------------------------------------------------ weight files
def write_weights(path, model, dtype="float16"):
    """Write ``model.weights`` to ``path`` (HDF5, atomically).

    Parameters
    ----------
    path : str or Path
        The weight file.
    model : tf.keras.Model
    dtype : {"float16", "float32"}
        ``float16`` stores float16 wherever a tensor's values fit (``|w| <= 65504``), else
        float32; ``float32`` stores every tensor exactly.

    Returns
    -------
    list of str
        The dtype used for each tensor.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"write_weights: dtype must be 'float16' or 'float32', got {dtype!r}")
    import h5py

    dtypes = []
    with files.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            group = f.create_group("w")
            for i, var in enumerate(model.weights):
                value = np.asarray(var.numpy(), np.float32)
                fits = not value.size or float(np.max(np.abs(value))) <= FLOAT16_MAX
                kind = np.float16 if dtype == "float16" and fits else np.float32
                ds = group.create_dataset(f"{i:04d}", data=value.astype(kind))
                ds.attrs["name"] = var.name
                dtypes.append(np.dtype(kind).name)
    return dtypes


def read_weights(path):
    """The arrays of a weight file, in model order, as float32."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = f["w"]
            return [np.asarray(group[k][()], np.float32) for k in sorted(group.keys())]
    except (OSError, KeyError) as exc:
        raise WeightsError(f"{path}: cannot read the weight file ({exc})") from exc


def assign_weights(model, arrays, source):
    """``model.set_weights(arrays)`` after checking the count and every shape."""
    if len(arrays) != len(model.weights):
        raise WeightsError(
            f"{source}: holds {len(arrays)} weight tensors but the model has {len(model.weights)}"
        )
    for var, arr in zip(model.weights, arrays):
        if tuple(var.shape) != arr.shape:
            raise WeightsError(f"{source}: weight {var.name} has shape {arr.shape}, the model "
                               f"expects {tuple(var.shape)}")
    model.set_weights(arrays)


# ------------------------------------------------------------------------------------ models
def model_config(model):
    """The model's graph as JSON-ready data (Keras' own serialisation format)."""
    import tensorflow as tf

    return json.loads(json.dumps(tf.keras.saving.serialize_keras_object(model)))


def model_from_config(config, source):
    """Rebuild a model from :func:`model_config` data, in Keras' safe mode."""
    import tensorflow as tf

    from kspikese.neurons import custom_objects

    try:
        return tf.keras.saving.deserialize_keras_object(
            config, custom_objects=custom_objects(), safe_mode=True
        )
    except Exception as exc:  # Keras raises TypeError/ValueError/KeyError for foreign configs
        raise WeightsError(f"{source}: cannot rebuild the model from its card ({exc})") from exc


def load(name_or_card, weights_dir=None):
    """Load a shipped model from its card and weight file.

    Parameters
    ----------
    name_or_card : str or Path
        A name (``weights_dir/NAME.json``) or the path of a card (``.json``).
    weights_dir : str or Path, optional
        Where names are looked up (default: the package's weights folder).

    Returns
    -------
    (tf.keras.Model, dict)
        The model (float32 weights) and its card.
    """
    path = Path(name_or_card)
    if path.suffix != ".json":
        path = card_path(name_or_card, weights_dir)
    card = read_card(path)
    try:
        weights = files.contained_file(path.parent, card["weights_file"], MAX_LOAD_BYTES,
                                       f"{path}: weights_file")
    except ValueError as exc:
        raise WeightsError(str(exc)) from exc
    digest = files.sha256(weights)
    if digest != card["weights_sha256"]:
        raise WeightsError(
            f"{weights}: SHA-256 {digest[:12]}... does not match the card's "
            f"{card['weights_sha256'][:12]}... (weights and card come from different exports)"
        )
    model = model_from_config(card["keras_config"], path)
    assign_weights(model, read_weights(weights), weights)
    return model, card


def spiking_layer_info(model):
    """``[{layer, activation, dt, seed, spiking_aware_training}]`` of every SpikingActivation."""
    from kspikese.convert import spiking_layers

    return [{"layer": layer.name,
             "activation": getattr(layer.activation, "__name__", str(layer.activation)),
             "dt": float(layer.dt), "seed": layer.seed,
             "spiking_aware_training": bool(layer.spiking_aware_training)}
            for layer in spiking_layers(model)]


def export(model, name, card_fields=None, weights_dir=None, dtype="float16"):
    """Write ``NAME.h5`` (weights) and ``NAME.json`` (card) for ``model``.

    Parameters
    ----------
    model : tf.keras.Model
    name : str
        The model's name (file stem).
    card_fields : dict, optional
        Provenance merged into the card (data, config, seed, test metrics, ...).
    weights_dir : str or Path, optional
        Target folder (default: the package's weights folder).
    dtype : {"float16", "float32"}
        See :func:`write_weights`.

    Returns
    -------
    dict
        The card.

    Raises
    ------
    WeightsError
        A weight file above :data:`MAX_BYTES`; nothing is left behind then.
    """
    folder = Path(weights_dir or WEIGHTS_DIR)
    target = weights_path(name, folder)
    with files.atomic_path(target) as tmp_target:  # renamed onto NAME.h5 only if all succeeds
        dtypes = write_weights(tmp_target, model, dtype)
        size = tmp_target.stat().st_size
        if size > MAX_BYTES:
            raise WeightsError(
                f"{name}: the {dtype} weight file would take {size / 1e6:.1f} MB, more than the "
                f"{MAX_BYTES / 1e6:.0f} MB allowed for a shipped model"
            )
        spikes = spiking_layer_info(model)
        shape = model.input_shape
        card = {
            "format": FORMAT,
            "name": name,
            "spiking": bool(spikes),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "sr": audio_io.SR,
            "frame_len": int(shape[1]) if len(shape) > 1 and shape[1] else None,
            "n_params": int(sum(int(np.prod(w.shape)) for w in model.weights)),
            "weights_file": target.name,
            "weights_dtype": "+".join(sorted(set(dtypes))) or dtype,
            "weights_float32_tensors": (
                [i for i, d in enumerate(dtypes) if d != "float16"] if dtype == "float16" else "all"
            ),
            "weights_bytes": size,
            "weights_sha256": files.sha256(tmp_target),
            "spiking_layers": spikes,
        }
        card.update(card_fields or {})
        card["keras_config"] = model_config(model)
    files.write_json(card_path(name, folder), card)  # then the card that describes it
    return card
