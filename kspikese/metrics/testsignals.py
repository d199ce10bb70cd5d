"""Seeded synthetic speech-like signals for tests and benchmarks of the metrics.

``speech_like``: a glottal pulse train (pitch gliding 100-220 Hz) through three formant
resonators whose frequencies drift per syllable, under a syllabic envelope (~4 syllables/s) with
pauses, plus a -80 dB noise floor (so no frame is digital silence, which makes LPC ill-posed).
PESQ, STOI and DNSMOS treat it as (poor) speech, which is all a timing or wiring test needs.
"""

import numpy as np
from scipy.signal import lfilter


def speech_like(seconds=3.0, sr=16000, seed=0, peak=0.5):
    """A 1-D float64 speech-like signal of ``round(seconds * sr)`` samples with the given peak."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = 160 + 60 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.28))
    phase = np.cumsum(f0 / sr)
    src = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)
    syll = max(1, int(np.ceil(seconds * 4)))
    bounds = np.linspace(0, n, syll + 1).astype(int)
    out = np.zeros(n)
    for k in range(syll):
        a, b = bounds[k], bounds[k + 1]
        seg = src[a:b]
        for f, bw in ((rng.uniform(300, 800), 80), (rng.uniform(900, 2200), 120), (rng.uniform(2300, 3400), 200)):
            r = np.exp(-np.pi * bw / sr)
            seg = lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r], seg)
        env = np.sin(np.pi * np.linspace(0, 1, b - a)) ** 2
        if rng.uniform() < 0.2:  # a pause
            env *= 0.0
        out[a:b] = seg * env
    out = out / (np.max(np.abs(out)) + 1e-12) * peak
    return out + 1e-4 * peak * rng.standard_normal(n)


def noisy_copy(clean, snr_db, seed=0):
    """``clean`` plus white Gaussian noise scaled to exactly ``snr_db`` (energy ratio)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(clean))
    noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return clean + noise
