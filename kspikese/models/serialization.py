"""Saving, loading and describing kspikese models (ANN or SNN).

Models are stored in Keras' ``.keras`` format and loaded with ``safe_mode=True``: every layer is
a standard Keras layer, a KerasSpiking layer or a registered kspikese layer; there are no
``Lambda`` layers.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

import keras_spiking
from kspikese import files, neurons


def custom_objects():
    """The non-Keras layer classes a kspikese model may contain (for ``load_model``)."""
    return neurons.custom_objects()


def save_model(model, path):
    """Save ``model`` to ``path`` (must end in ``.keras``) atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save_model: {path}: the file name must end in .keras")
    with files.atomic_path(path) as tmp:
        model.save(str(tmp), save_format="keras")
    return path


def load_model(path, compile=False):
    """Load a model written by :func:`save_model` (Keras safe mode, kspikese layers known)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"load_model: {path}: expected a .keras file")
    if not path.is_file():
        raise FileNotFoundError(f"load_model: {path}: no such file")
    return tf.keras.models.load_model(
        str(path), custom_objects=custom_objects(), safe_mode=True, compile=compile
    )


def _neuron(layer):
    if isinstance(layer, keras_spiking.SpikingActivation):
        act = neurons.activation_name(layer.activation)
        return f"spiking {act} dt={layer.dt:g} seed={layer.seed}"
    act = getattr(layer, "activation", None)
    if isinstance(layer, tf.keras.layers.ReLU):
        return "relu"
    if act is not None and neurons.activation_name(act) != "linear":
        return neurons.activation_name(act)
    return ""


def summary(model):
    """A text table of ``model``: each layer's name, type, output shape, parameters and neuron
    (``spiking relu dt=0.001 seed=3`` for an IF neuron), then totals, the ``dt`` values and the
    input scale built in by `kspikese.convert.scale_activations`."""
    from kspikese.convert import input_scale

    rows = [("layer", "type", "output shape", "params", "neuron")]
    for layer in model.layers:
        try:
            shape = layer.output_shape
        except (AttributeError, RuntimeError):
            shape = "?"
        shape = str(tuple(shape) if isinstance(shape, tuple) else shape).replace("None", "?")
        rows.append((layer.name, type(layer).__name__, shape, f"{layer.count_params():,}",
                     _neuron(layer)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"Model {model.name!r}"]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    spiking = [layer for layer in model.layers
               if isinstance(layer, keras_spiking.SpikingActivation)]
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    dts = sorted({float(layer.dt) for layer in spiking})
    lines.append(f"params: {model.count_params():,} ({trainable:,} trainable)")
    lines.append(
        f"spiking layers: {len(spiking)}"
        + (f" (dt = {', '.join(f'{d:g}' for d in dts)})" if spiking else " (an ANN)")
    )
    lines.append(f"input scale: {input_scale(model):g}")
    return "\n".join(lines)
