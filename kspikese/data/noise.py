"""Noise for the corpora: speech-shaped noise, babble, and segments of recorded noise.

Speech-shaped noise (SSN), as in the paper's TIMIT set: white Gaussian noise filtered to the
long-term average spectrum (LTAS) of the *training* speech.  The LTAS is the Welch power spectrum
``P(f)`` (Hann windows of ``nfft`` samples, half overlap) averaged over utterances weighted by their
length; the filter is the linear-phase FIR ``h`` (``ntaps`` taps, frequency sampling via
:func:`scipy.signal.firwin2`) with ``|H(f)| = sqrt(P(f))``, scaled to ``sum(h^2) = 1`` so unit-variance
white noise gives unit-variance SSN.

Babble: the sum of ``talkers`` streams, each a run of other utterances (random start, joined end to
end), all at one active-speech level; the sum is scaled to unit RMS.

Recorded noise is split *in time*: the first 70 % of every recording feeds the training split, the
next 10 % validation, the last 20 % test, so no test noise sample is ever heard in training.
"""

import numpy as np
from scipy import signal

from kspikese.audio_io import SR

SPLITS = ("train", "valid", "test")
NOISE_SPLIT = {"train": (0.0, 0.7), "valid": (0.7, 0.8), "test": (0.8, 1.0)}


def ltas(utterances, nfft=512, sr=SR):
    """Long-term average power spectrum of ``utterances`` -> ``(freqs_hz, psd)``."""
    total, weight = None, 0
    for x in utterances:
        x = np.asarray(x, np.float64)
        if len(x) < nfft:
            continue
        f, p = signal.welch(x, fs=sr, window="hann", nperseg=nfft, noverlap=nfft // 2)
        total = p * len(x) if total is None else total + p * len(x)
        weight += len(x)
    if total is None:
        raise ValueError(f"no utterance is at least {nfft} samples long: cannot estimate the LTAS")
    return f, total / weight


def ssn_filter(freqs, psd, ntaps=513, sr=SR):
    """Linear-phase FIR with magnitude ``sqrt(psd)`` and unit energy (see module docstring)."""
    mag = np.sqrt(np.maximum(np.asarray(psd, np.float64), 0))
    mag = mag / mag.max()
    freqs = np.asarray(freqs, np.float64)
    h = signal.firwin2(ntaps, freqs, mag, fs=sr)
    return h / np.sqrt(np.sum(h**2))


def speech_shaped_noise(n, h, rng):
    """``n`` samples of SSN: white Gaussian noise (from ``rng``) filtered by ``h`` (unit variance)."""
    white = rng.standard_normal(n + len(h) - 1)
    return signal.fftconvolve(white, h, mode="valid").astype(np.float32)


def babble(pool, n, rng, talkers=6, exclude=()):
    """``n`` samples of babble from ``talkers`` streams of utterances drawn from ``pool``.

    ``pool`` maps names to 1-D arrays, all at one active-speech level (the builders normalise every
    utterance to -26 dBFS first); names in ``exclude`` (the target utterance) are never used.
    Returns ``(noise, used)`` with ``used`` = per talker a list of ``(name, start_sample)``.
    """
    names = sorted(k for k in pool if k not in set(exclude))
    if not names:
        raise ValueError("babble needs at least one utterance besides the target")
    total = np.zeros(n)
    used = []
    for _ in range(talkers):
        parts, got, picks = [], 0, []
        first = True
        while got < n:
            name = names[rng.integers(len(names))]
            x = np.asarray(pool[name], np.float64)
            start = int(rng.integers(len(x))) if first else 0
            first = False
            parts.append(x[start:])
            picks.append((name, start))
            got += len(x) - start
        total += np.concatenate(parts)[:n]
        used.append(picks)
    rms = np.sqrt(np.mean(total**2))
    return (total / rms).astype(np.float32), used


def split_recording(x, split):
    """The part of recording ``x`` reserved for ``split`` -> ``(part, (start, end))`` in samples."""
    a, b = NOISE_SPLIT[split]
    start, end = int(round(a * len(x))), int(round(b * len(x)))
    return x[start:end], (start, end)


def split_and_join(recordings):
    """Split every recording in time (:func:`split_recording`) and join the parts of each split.

    ``recordings`` is a sequence of ``(label, samples, credit)``.  Returns ``(streams, info)``:
    ``streams[split]`` the joined float32 stream, ``info[split]`` per recording its ``source``
    (label), ``credit``, ``recording_s`` (the part's bounds in the recording, seconds) and
    ``stream_samples`` (its bounds in the stream).
    """
    parts, info = {s: [] for s in SPLITS}, {s: [] for s in SPLITS}
    for label, x, credit in recordings:
        for s in SPLITS:
            part, (a, b) = split_recording(x, s)
            offset = sum(len(p) for p in parts[s])
            parts[s].append(part)
            info[s].append({"source": label, "credit": credit,
                            "recording_s": [round(a / SR, 3), round(b / SR, 3)],
                            "stream_samples": [offset, offset + len(part)]})
    return {s: np.concatenate(parts[s]).astype(np.float32) for s in SPLITS}, info


def segment(stream, n, rng):
    """A random ``n``-sample segment of ``stream`` (wrapping round when it is shorter than ``n``)
    -> ``(segment, start)``."""
    stream = np.asarray(stream)
    if len(stream) == 0:
        raise ValueError("empty noise stream")
    if len(stream) > n:
        start = int(rng.integers(len(stream) - n + 1))
        return stream[start : start + n], start
    start = int(rng.integers(len(stream)))
    return np.take(stream, np.arange(start, start + n), mode="wrap"), start
