"""Reference denoisers that are not ours, for the benchmark: RNNoise and spectral gating.

Each is a function ``(x, sr) -> y`` on mono float audio in ``[-1, 1]`` that returns audio of the
same length and rate, so it can be scored exactly like a kspikese model.

* :func:`rnnoise` runs Valin's RNNoise (a recurrent network on 22 bark-band gains, 10 ms frames
  at 48 kHz) from the ``librnnoise`` shared library that the ``pyrnnoise`` wheel ships with its
  weights compiled in.  It is called through ``ctypes`` directly: the wheel's package
  ``__init__`` imports an audio I/O stack that is not needed here, so the wheel is installed
  with ``--no-deps`` and never imported.  The audio is resampled to 48 kHz, scaled to int16
  range, processed in frames of 480 samples, and the output's lag (a whole number of samples,
  found by cross-correlation with the input) is removed before resampling back.
* :func:`spectral_gating` is ``noisereduce``'s non-stationary spectral gating.
"""

import ctypes
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

RNNOISE_SR = 48000
INT16 = 32768.0


class BaselineUnavailable(RuntimeError):
    """A reference denoiser's package is not installed; the message says how to install it."""


@lru_cache(maxsize=1)
def _librnnoise():
    spec = importlib.util.find_spec("pyrnnoise")  # locates the package without importing it
    lib = Path(spec.submodule_search_locations[0]) / "librnnoise.so" if spec else None
    if lib is None or not lib.is_file():
        raise BaselineUnavailable(
            "RNNoise needs the pyrnnoise wheel's librnnoise.so: "
            "pip install --no-deps pyrnnoise==0.4.5 (or `make bench`, which installs it)")
    so = ctypes.CDLL(str(lib))
    so.rnnoise_create.argtypes = [ctypes.c_void_p]
    so.rnnoise_create.restype = ctypes.c_void_p
    so.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    so.rnnoise_get_frame_size.restype = ctypes.c_int
    so.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
    so.rnnoise_process_frame.restype = ctypes.c_float
    return so


def lag_of(y, x, max_lag):
    """The shift ``d`` in ``[0, max_lag]`` that best aligns ``y[d:]`` with ``x`` (cross-correlation)."""
    n = len(x) - max_lag
    if n <= 0:
        return 0
    scores = [float(np.dot(y[d:d + n], x[:n])) for d in range(max_lag + 1)]
    return int(np.argmax(scores))


def rnnoise(x, sr=16000, max_lag_ms=30.0):
    """RNNoise on ``x`` (mono, float in ``[-1, 1]``, rate ``sr``); same length and rate back."""
    import soxr

    so = _librnnoise()
    x = np.asarray(x, np.float64)
    up = soxr.resample(x, sr, RNNOISE_SR) * INT16
    frame = so.rnnoise_get_frame_size()
    padded = np.zeros(-(-len(up) // frame) * frame + frame, np.float32)
    padded[:len(up)] = up
    out = np.empty_like(padded)
    state = so.rnnoise_create(None)
    try:
        for i in range(0, len(padded), frame):
            buf = np.ascontiguousarray(padded[i:i + frame])
            ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            so.rnnoise_process_frame(state, ptr, ptr)
            out[i:i + frame] = buf
    finally:
        so.rnnoise_destroy(state)
    lag = lag_of(out.astype(np.float64), up, int(max_lag_ms * RNNOISE_SR / 1000))
    aligned = out[lag:lag + len(up)] / INT16
    y = soxr.resample(aligned.astype(np.float64), RNNOISE_SR, sr)
    return np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)].astype(np.float32)


def spectral_gating(x, sr=16000):
    """``noisereduce.reduce_noise`` (non-stationary spectral gating) on ``x``."""
    try:
        import noisereduce
    except ImportError:
        raise BaselineUnavailable("spectral gating needs noisereduce: pip install "
                                  "noisereduce==3.0.3 (or `make bench`, which installs it)") from None
    y = noisereduce.reduce_noise(y=np.asarray(x, np.float32), sr=sr, stationary=False)
    return np.asarray(y, np.float32)[:len(x)]


BASELINES = {"rnnoise": rnnoise, "noisereduce": spectral_gating}
