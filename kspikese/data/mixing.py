"""Active-speech level, and mixing speech with noise at a given SNR.

Activity detector (used for every SNR in kspikese's corpora): the signal is cut into
non-overlapping frames of 20 ms; frame ``k`` has power ``p_k = mean(x[frame k]^2)``; it is *active*
when ``10 log10 p_k >= max_j 10 log10 p_j - 40 dB``.  The detector is scale invariant, so the same
samples are active before and after a gain.  The active-speech power is the mean of ``x^2`` over
the samples of active frames.

SNR of a mixture ``y = s + n``::

    SNR = 10 log10( P_active(s) / mean(n^2) )

with the noise power taken over the whole utterance (the noise is as long as the speech).
"""

import numpy as np

from kspikese.audio_io import SR

FRAME_MS = 20.0
THRESHOLD_DB = 40.0
SPEECH_LEVEL_DBFS = -26.0  # active-speech RMS of every clean utterance (ITU-T P.56's -26 dBov)
PEAK = 0.99  # no mixture or clean file exceeds this absolute sample value


def active_mask(x, sr=SR, frame_ms=FRAME_MS, threshold_db=THRESHOLD_DB):
    """Boolean mask (len(x)) of the samples in active-speech frames (see module docstring)."""
    x = np.asarray(x, np.float64)
    hop = max(1, int(round(sr * frame_ms / 1000.0)))
    n = len(x)
    n_frames = -(-n // hop)
    pad = np.zeros(n_frames * hop)
    pad[:n] = x
    # power over the real samples of each frame (the last one may be short)
    counts = np.full(n_frames, hop, float)
    counts[-1] = n - (n_frames - 1) * hop
    p = (pad.reshape(n_frames, hop) ** 2).sum(axis=1) / counts
    if not np.any(p > 0):
        return np.zeros(n, bool)
    db = 10 * np.log10(np.maximum(p, 1e-300))
    active = db >= db.max() - threshold_db
    return np.repeat(active, hop)[:n]


def active_power(x, sr=SR):
    """Mean power of ``x`` over its active-speech samples; ValueError for an all-zero signal."""
    mask = active_mask(x, sr)
    if not mask.any():
        raise ValueError("the speech signal is silent (all zeros): no active-speech level")
    x = np.asarray(x, np.float64)
    return float(np.mean(x[mask] ** 2))


def active_level_db(x, sr=SR):
    """Active-speech level in dB relative to full scale (RMS 1.0 = 0 dBFS)."""
    return 10 * np.log10(active_power(x, sr))


def normalize_level(x, level_db=SPEECH_LEVEL_DBFS, sr=SR):
    """Scale ``x`` so its active-speech level is ``level_db`` dBFS."""
    g = 10 ** (level_db / 20.0) / np.sqrt(active_power(x, sr))
    return (np.asarray(x, np.float64) * g).astype(np.float32)


def noise_gain(speech, noise, snr_db, sr=SR):
    """Gain ``g`` such that ``10 log10(P_active(speech) / mean((g*noise)^2)) = snr_db``."""
    pn = float(np.mean(np.asarray(noise, np.float64) ** 2))
    if pn <= 0:
        raise ValueError("the noise segment is silent (all zeros): cannot set an SNR")
    return float(np.sqrt(active_power(speech, sr) / (pn * 10 ** (snr_db / 10.0))))


def mix(speech, noises, snrs_db, sr=SR, peak=PEAK):
    """Mix one clean utterance with one or more noise segments at the given SNRs.

    ``noises`` and ``snrs_db`` are sequences of equal length; every noise is as long as the speech.
    Returns ``(clean, [noisy...], gain)``: when any mixture would exceed ``peak`` in absolute
    value, the clean signal and *all* mixtures are scaled by the same ``gain < 1`` so they stay
    pairs of one clean file (the SNRs are unchanged by a common gain).
    """
    s = np.asarray(speech, np.float64)
    out = []
    for n, snr in zip(noises, snrs_db):
        n = np.asarray(n, np.float64)
        if n.shape != s.shape:
            raise ValueError(f"noise has {n.shape[0]} samples, speech {s.shape[0]}")
        out.append(s + noise_gain(s, n, snr, sr) * n)
    top = max([np.abs(s).max()] + [np.abs(y).max() for y in out])
    gain = min(1.0, peak / top) if top > 0 else 1.0
    return (s * gain).astype(np.float32), [(y * gain).astype(np.float32) for y in out], gain


def measured_snr(clean, noisy, sr=SR):
    """The SNR of a written pair, measured as defined above (noise = noisy - clean)."""
    clean = np.asarray(clean, np.float64)
    n = np.asarray(noisy, np.float64) - clean
    return 10 * np.log10(active_power(clean, sr) / np.mean(n**2))
