"""Enhance audio arrays with a (spiking) speech-enhancement model, at any sample rate.

:func:`enhance` takes an array at any rate; :class:`Pipeline` does the same block by block, for
a stream (the files and folders of :mod:`kspikese.enhance_files` go through it).  Both run the
one inference path of :mod:`kspikese.inference`: each channel is resampled to 16 kHz, cut into
frames that overlap by ``overlap`` (default 1/4) and cross-faded back together
(:mod:`kspikese.dsp.overlap_add`: a model that returns its input returns the signal unchanged,
digital silence stays silent), then resampled back to the input's rate.

``model`` is a shipped name, a model card, a pipeline run folder or a ``.keras`` checkpoint
(resolved by :func:`kspikese.hub.load`), or a Keras model.

Bad input is refused before any work (:func:`check_array`): by dtype (integers are scaled to
[-1, 1], see :func:`kspikese.audio_io.as_float_audio`), layout (more channels than samples, or
more than :data:`kspikese.audio_io.MAX_CHANNELS`, is refused as ambiguous) and rate.  Outputs are
checked like inputs: a model that returns NaN or inf raises :class:`ModelError` naming the model
and the frame.  ``batch_size`` bounds the rows of every model call, whatever the channel count.
"""

import os
import sys

import numpy as np

from kspikese import audio_io, hub
from kspikese.data.framing import FRAME_LEN
from kspikese.dsp import OVERLAP, NonFiniteOutput, OverlapAdd, StreamResampler, num_frames
from kspikese.inference import BATCH_SIZE, ModelError, enhance_array, frame_len_of, model_fn

__all__ = ["BATCH_SIZE", "ModelError", "ModelOutputError", "OVERLAP", "Pipeline", "check_array",
           "enhance"]


class ModelOutputError(ModelError):
    """The model returned NaN or inf for a file's frame; that file's output is not written."""


def _model_and_fn(model, ann=False, weights_dir=None):
    """``(keras model, frame function)`` for a model argument (name, path or Keras model)."""
    if isinstance(model, (str, os.PathLike)):
        model, _ = hub.load(model, ann=ann, weights_dir=weights_dir)
    return model, model_fn(model)


def _model_name(model):
    """How a model argument is named in messages: its path or name, else the Keras name."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    return getattr(model, "name", type(model).__name__)


def _nonfinite_error(model, exc, src=None):
    where = f" on {src}" if src is not None else ""
    return ModelOutputError(f"model {_model_name(model)} {exc}{where}; nothing was written")


def check_array(audio, sr):
    """``audio`` as float32 ``(samples, channels)`` plus its integer dtype, or a ValueError.

    Refused: not 1-D/2-D or empty; a dtype that is neither float nor integer; a 2-D array with
    more channels than samples or more than :data:`kspikese.audio_io.MAX_CHANNELS` channels (a
    ``(channels, samples)`` array such as ``x.T`` of a stereo file is ambiguous: pass
    ``(samples, channels)``); NaN/inf; a rate or duration outside the limits of
    :func:`kspikese.audio_io.check_header`.  Integers are scaled to [-1, 1].
    """
    x, int_dtype = audio_io.as_float_audio(audio, "audio")
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError(
            f"audio must be a non-empty (samples,) or (samples, channels) array, got {x.shape}"
        )
    if x.ndim == 2 and (x.shape[1] > x.shape[0] or x.shape[1] > audio_io.MAX_CHANNELS):
        raise ValueError(
            f"audio has shape {x.shape}: that reads as {x.shape[1]} channels of {x.shape[0]} "
            f"samples (at most {audio_io.MAX_CHANNELS} channels, and fewer channels than "
            f"samples); "
            f"pass (samples, channels), e.g. audio.T for a (channels, samples) array"
        )
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool):
        raise ValueError(f"sr must be an integer sample rate in Hz, got {sr!r}")
    x2 = x.reshape(len(x), -1)
    audio_io.check_header("audio", int(sr), x2.shape[1], len(x2))
    if not np.all(np.isfinite(x2)):
        raise ValueError("audio contains NaN or inf samples")
    return x2.astype(np.float32), int_dtype


def enhance(audio, sr, model=hub.DEFAULT_MODEL, ann=False, batch_size=BATCH_SIZE,
            overlap=OVERLAP, progress=False, weights_dir=None, keep_dtype=False):
    """Enhance ``audio`` at any sample rate.

    Parameters
    ----------
    audio : array_like
        ``(samples,)`` or ``(samples, channels)`` (never ``(channels, samples)``: an array with
        more channels than samples is refused), finite floats in [-1, 1] or integer PCM samples
        (int16 as ``scipy.io.wavfile.read`` returns; scaled by ``2^(bits-1)``).
    sr : int
        Its sample rate (Hz), 8000 to 384000; resampled to 16 kHz and back (soxr).
    model : str, Path or tf.keras.Model
        A shipped name, a card, a run folder or a checkpoint (:func:`kspikese.hub.load`), or a
        Keras model mapping ``(batch, samples, 1)`` to the same shape.
    ann : bool
        The ANN twin of a spiking name or run.
    batch_size : int
        Rows (frame x channel) per model call.  It does not change the result for ANNs and for
        :func:`kspikese.to_spiking` SNNs (see :mod:`kspikese.inference`).
    overlap : float
        Fraction of a frame shared by consecutive frames, in [0, 0.5].
    progress : bool
        A progress bar of frames on stderr.
    weights_dir : str or Path, optional
        Where shipped names are looked up.
    keep_dtype : bool
        Return integer input as the same integer dtype (scaled back, rounded, clipped).

    Returns
    -------
    np.ndarray
        float32 (or the input's integer dtype with ``keep_dtype``), the shape of ``audio``.

    Raises
    ------
    ValueError
        Bad ``audio`` or ``sr`` (:func:`check_array`), before the model is loaded.
    ModelError
        The model cannot be loaded, or returns NaN/inf (naming the model and the frame).
    """
    shape = np.shape(audio)
    x2, int_dtype = check_array(audio, sr)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    keras_model, fn = _model_and_fn(model, ann, weights_dir)
    frame_len = frame_len_of(keras_model)
    down = StreamResampler(sr, audio_io.SR, x2.shape[1])
    x16 = np.concatenate([down.push(x2), down.finish()])
    with _bar(progress, total=num_frames(len(x16), frame_len, overlap), unit="frame") as bar:
        try:
            y16 = enhance_array(keras_model, x16, frame_len, overlap, batch_size, fn=fn,
                                on_frames=bar.update, check_finite=True)
        except NonFiniteOutput as exc:
            raise _nonfinite_error(model, exc) from exc
    up = StreamResampler(audio_io.SR, sr, x2.shape[1])
    y = np.concatenate([up.push(y16), up.finish()])[: len(x2)]
    if len(y) < len(x2):  # resampling there and back can lose a sample to rounding
        y = np.concatenate([y, np.zeros((len(x2) - len(y), x2.shape[1]), np.float32)])
    y = y.reshape(shape)
    return audio_io.from_float_audio(y, int_dtype) if keep_dtype else y


class Pipeline:
    """Resample to 16 kHz -> overlap-add enhancement -> resample back, block by block."""

    def __init__(self, fn, sr, channels, frame_len=FRAME_LEN, batch_size=BATCH_SIZE,
                 overlap=OVERLAP):
        self.down = StreamResampler(sr, audio_io.SR, channels)
        self.up = StreamResampler(audio_io.SR, sr, channels)
        self.engine = OverlapAdd(fn, channels, frame_len, batch_size, overlap=overlap,
                                 check_finite=True)
        self.channels = channels
        self.n_out = 0

    def push(self, block):
        """Enhance one block; the output samples now final."""
        y = self.up.push(self.engine.push(self.down.push(block)))
        self.n_out += len(y)
        return y

    def finish(self, n_in):
        """The rest of the output, trimmed or zero-padded so the total is ``n_in`` samples."""
        y16 = np.concatenate([self.engine.push(self.down.finish()), self.engine.finish()])
        y = np.concatenate([self.up.push(y16), self.up.finish()])
        keep = max(0, n_in - self.n_out)
        if len(y) < keep:  # resampling there and back can lose a sample to rounding
            y = np.concatenate([y, np.zeros((keep - len(y), self.channels), np.float32)])
        y = y[:keep]
        self.n_out += len(y)
        return y


def _bar(enabled, **kwargs):
    from tqdm import tqdm

    return tqdm(disable=not enabled, file=sys.stderr, dynamic_ncols=True, **kwargs)
