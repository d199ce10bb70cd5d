"""The frame layout of Loizou's objective measures (Hu & Loizou 2008, ``composite.m``).

Every frame-based measure here (segmental SNR, LLR, WSS) cuts the signals the same way:

* frame length ``N = round(30 ms * fs)`` samples (480 at 16 kHz, 240 at 8 kHz);
* hop ``H = floor(N / 4)`` samples (75 % overlap);
* Hann window ``w(n) = 0.5 (1 - cos(2 pi n / (N + 1)))`` for ``n = 1..N`` (no zero end points);
* ``floor(L / H - N / H)`` frames starting at samples ``0, H, 2H, ...``.  For ``N = 4H`` that is
  one frame fewer than fit in the signal: the reference code drops the last full frame, and so
  do we.

The reference reads the files with ``wavread`` (doubles in [-1, 1]) and adds MATLAB's ``eps``
(2^-52) to every sample before measuring; :func:`prepare` does the same, in float64.
"""

import numpy as np

EPS = np.finfo(np.float64).eps  # MATLAB's eps = 2^-52


def matlab_round(x):
    """Round half away from zero, as MATLAB's ``round`` does (Python's rounds half to even)."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def frame_length(sr):
    """Samples per 30 ms frame: ``round(30 * sr / 1000)``."""
    return matlab_round(30 * sr / 1000)


def hop_length(sr):
    """Hop between frames: a quarter frame, rounded down (75 % overlap)."""
    return frame_length(sr) // 4


def hann(n):
    """Loizou's Hann window ``0.5 (1 - cos(2 pi k / (n + 1)))``, ``k = 1..n`` (float64)."""
    k = np.arange(1, n + 1, dtype=np.float64)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * k / (n + 1)))


def num_frames(length, sr):
    """Number of frames the reference code visits: ``floor(L/H - N/H)`` (never negative)."""
    n, h = frame_length(sr), hop_length(sr)
    # MATLAB's colon operator tolerates rounding error at the end point; so do we.
    return max(0, int(np.floor(length / h - n / h + 1e-9)))


def min_length(sr):
    """Shortest signal (samples) that gives at least one frame."""
    length = frame_length(sr)
    while num_frames(length, sr) < 1:
        length += 1
    return length


def prepare(x):
    """Return ``x`` as float64 plus MATLAB's eps, as ``composite.m`` does after reading a file."""
    return np.asarray(x, dtype=np.float64) + EPS


def frames(x, sr, window=True):
    """Cut ``x`` into the reference frame layout: array ``(num_frames, N)``, Hann-windowed.

    Raises ValueError when the signal is too short for a single frame.
    """
    x = np.asarray(x, dtype=np.float64)
    n, h = frame_length(sr), hop_length(sr)
    count = num_frames(len(x), sr)
    if count < 1:
        raise ValueError(
            f"signal too short for frame-based measures: {len(x)} samples at {sr} Hz, "
            f"need at least {min_length(sr)} (five 30 ms frames with 75 % overlap)"
        )
    idx = np.arange(count)[:, None] * h + np.arange(n)[None, :]
    out = x[idx]
    if window:
        out = out * hann(n)
    return out
