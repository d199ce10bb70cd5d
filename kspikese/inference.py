"""The one frame-inference path: a model applied to a 16 kHz signal frame by frame.

Every caller that runs a model over whole utterances goes through :func:`enhance_array` (or, for
files too long to hold, the same :class:`kspikese.dsp.OverlapAdd` engine block by block): the
tables' evaluation (:func:`kspikese.pipeline.enhance_all`), :func:`kspikese.enhance`, the
float16 check of :mod:`kspikese.publish`, the Nengo reference and the benchmarks.  The framing
and the cross-fades are those of :mod:`kspikese.dsp.overlap_add`; ``overlap=0`` is plain
non-overlapping framing (:func:`kspikese.data.framing.frame` / ``unframe``).

Batch position.  A frame's output does not depend on its row in a batch, nor on the batch size,
for models made by :func:`kspikese.to_spiking`: each ``SpikingActivation`` there gets its initial
voltages from :class:`kspikese.neurons.InitialVoltage`, one seeded draw broadcast over the batch.
A ``keras_spiking.SpikingActivation`` left to its own initial state (a user's hand-built SNN)
draws ``stateless_uniform([B, ...], seed)`` instead: row ``b`` of every batch starts from the
same voltages, but rows differ from each other, so such a model's output depends on a frame's
row (and hence on ``batch_size``).  ANNs never depend on it.
"""

import weakref

import numpy as np

from kspikese.data.framing import FRAME_LEN
from kspikese.dsp.overlap_add import OVERLAP, OverlapAdd

BATCH_SIZE = 1  # rows (frame x channel) per model call by default; 1 is fastest on CPU
_MODEL_FNS = weakref.WeakKeyDictionary()


class ModelError(ValueError):
    """A model name, path or graph could not be resolved, loaded or used for enhancement."""


def model_fn(model):
    """A function ``(rows, L, 1) float32 -> (rows, L, 1)`` calling ``model`` in inference mode.

    The ``tf.function`` (``fn.traced``) is traced once per model, for any number of rows, and
    cached while the model lives (the cache holds the model weakly; ``fn`` holds it strongly).

    Parameters
    ----------
    model : tf.keras.Model
        A model mapping ``(batch, samples, 1)`` to the same shape.

    Returns
    -------
    callable
        numpy in, numpy out.
    """
    import tensorflow as tf

    call = _MODEL_FNS.get(model)
    if call is None:
        length = model.input_shape[1] if isinstance(model.input_shape, tuple) else None
        ref = weakref.ref(model)  # the cache must not keep the model alive

        @tf.function(input_signature=[tf.TensorSpec([None, length, 1], tf.float32)])
        def call(x):
            return ref()(x, training=False)

        _MODEL_FNS[model] = call

    def fn(x, model=model):  # holds the model while fn is in use
        return call(tf.constant(x, tf.float32)).numpy()

    fn.traced = call
    return fn


def frame_len_of(model, default=FRAME_LEN):
    """The frame length to run ``model`` on: its fixed input length, else ``default``.

    Parameters
    ----------
    model : tf.keras.Model
        One input of shape ``(batch, samples, 1)``; ``samples`` may be ``None``.
    default : int
        The length used when the model accepts any length.

    Returns
    -------
    int

    Raises
    ------
    ModelError
        The model has several inputs or its input is not ``(batch, samples, 1)``.
    """
    shape = model.input_shape
    if isinstance(shape, list):
        raise ModelError(f"model {model.name} has {len(shape)} inputs; enhancement needs one")
    if len(shape) != 3 or shape[2] not in (None, 1):
        raise ModelError(
            f"model {model.name} takes input {shape}; enhancement needs (batch, samples, 1)"
        )
    return int(shape[1]) if shape[1] else int(default)


def enhance_array(model, x, frame_len=None, overlap=OVERLAP, batch_size=BATCH_SIZE, fn=None,
                  on_frames=None, check_finite=False):
    """Run ``model`` over a 16 kHz signal frame by frame with overlap-add.

    Parameters
    ----------
    model : tf.keras.Model or None
        Maps ``(batch, L, 1)`` to the same shape.  ``None`` when ``fn`` is given.
    x : array_like
        ``(samples,)`` or ``(samples, channels)``, float; each channel is run on its own.
    frame_len : int, optional
        ``L``; default :func:`frame_len_of` (the model's fixed length, else 16384).  A model
        with a fixed length refuses another.
    overlap : float
        Fraction of a frame shared by consecutive frames, in [0, 0.5]; 0 is non-overlapping
        framing.
    batch_size : int
        Rows (frame x channel) per model call.
    fn : callable, optional
        ``(rows, L, 1) -> (rows, L, 1)`` to call instead of ``model`` (default
        :func:`model_fn` of ``model``), e.g. a Nengo simulator.
    on_frames : callable, optional
        Called with the number of frames done after each call.
    check_finite : bool
        Raise :class:`kspikese.dsp.NonFiniteOutput` (a ``ValueError`` naming the frame) when
        the model returns NaN or inf.

    Returns
    -------
    np.ndarray
        float32, the shape of ``x``.

    Raises
    ------
    ModelError
        A model whose input is not ``(batch, samples, 1)`` or is fixed to another length.
    ValueError
        The model (or ``fn``) returns another shape than its input's.
    """
    x = np.asarray(x, np.float32)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError(f"enhance_array: expected a non-empty (samples,) or (samples, channels) "
                         f"array, got shape {x.shape}")
    if model is not None:
        fixed = frame_len_of(model, default=frame_len or FRAME_LEN)
        if frame_len is not None and fixed != int(frame_len):
            raise ModelError(f"model {model.name} is built for frames of {fixed} samples, "
                             f"not frame_len={frame_len}")
        frame_len = fixed
        fn = fn or model_fn(model)
    elif fn is None or frame_len is None:
        raise ValueError("enhance_array: pass a model, or fn= and frame_len=")
    x2 = x.reshape(len(x), -1)
    engine = OverlapAdd(fn, x2.shape[1], int(frame_len), batch_size, on_frames, overlap,
                        check_finite=check_finite)
    return np.concatenate([engine.push(x2), engine.finish()]).reshape(x.shape)
