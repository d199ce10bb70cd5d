"""Models with fully known input shapes (counting needs every layer's sizes).

A model built for inputs of any length, ``Input((None, 1))``, has no connection count until the
length is chosen; :func:`with_input_shape` rebuilds it from its config with the given sizes and
the same weights.
"""

import keras_spiking

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese import neurons


def undefined_inputs(model):
    """Whether any non-batch size of the model's inputs is undefined."""
    return any(d is None for t in model.inputs for d in tuple(t.shape[1:]))


def with_input_shape(model, shapes, custom_objects=None):
    """``model`` rebuilt for inputs of ``shapes`` (non-batch), with the same weights.

    Parameters
    ----------
    model : tf.keras.Model
        A functional or sequential model.
    shapes : tuple or list of tuple
        One non-batch shape per input (a single tuple for a one-input model); a size the model
        already defines must be given unchanged.
    custom_objects : dict, optional
        Extra layer classes for ``from_config`` (KerasSpiking's and kspikese's are known).

    Returns
    -------
    tf.keras.Model
        ``model`` itself if its input shapes are already these.
    """
    shapes = [tuple(s) for s in shapes] if shapes and isinstance(shapes[0], (list, tuple)) \
        else [tuple(shapes)]
    current = [tuple(t.shape[1:]) for t in model.inputs]
    if len(shapes) != len(current):
        raise ValueError(f"with_input_shape: model {model.name!r} has {len(current)} inputs, "
                         f"got {len(shapes)} shapes")
    for have, want in zip(current, shapes):
        if len(have) != len(want) or any(h is not None and h != w for h, w in zip(have, want)):
            raise ValueError(f"with_input_shape: model {model.name!r} is built for inputs "
                             f"{have}, which cannot take {want}")
    if current == shapes:
        return model
    config = model.get_config()
    entries = [c for c in config["layers"] if c["class_name"] == "InputLayer"]
    if isinstance(model, tf.keras.Sequential) and not entries:
        entries = config["layers"][:1]
    if len(entries) != len(shapes):
        raise ValueError(f"with_input_shape: cannot find the input layers of {model.name!r} in "
                         "its config")
    names = [t.name.split(":")[0] for t in model.inputs]
    by_name = {c["config"].get("name"): c for c in entries}
    for i, (name, shape) in enumerate(zip(names, shapes)):
        entry = by_name.get(name, entries[i])
        entry["config"]["batch_input_shape"] = (None,) + shape
    objects = {"SpikingActivation": keras_spiking.SpikingActivation,
               "Lowpass": keras_spiking.Lowpass, "Alpha": keras_spiking.Alpha}
    objects.update(neurons.custom_objects())
    objects.update(custom_objects or {})
    with tf.keras.utils.custom_object_scope(objects):
        cls = tf.keras.Sequential if isinstance(model, tf.keras.Sequential) else tf.keras.Model
        fixed = cls.from_config(config)
    fixed.set_weights(model.get_weights())
    return fixed


def with_frame_len(model, frame_len, custom_objects=None):
    """An audio model ``(None, L, C)`` rebuilt for frames of ``frame_len`` samples.

    The one-input case of :func:`with_input_shape`: returns ``model`` itself when its frames
    already have that length; ``ValueError`` when it is built for another length.
    """
    (shape,) = [tuple(t.shape[1:]) for t in model.inputs]
    return with_input_shape(model, (int(frame_len),) + shape[1:], custom_objects)
