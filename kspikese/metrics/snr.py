"""Signal-to-noise ratios: SNR, scale-invariant SNR and Loizou's segmental SNR.

Pure numpy, so the training code's TensorFlow loss can be checked against these numbers.

* ``snr(s, s_hat) = 10 log10(||s||^2 / ||s - s_hat||^2)`` - the paper's loss, negated.
* ``si_snr(s, s_hat)``: both signals made zero-mean, target ``t = (<s_hat, s> / ||s||^2) s``
  (projection of the estimate on the reference), ``10 log10(||t||^2 / ||s_hat - t||^2)``.
* ``ssnr(s, s_hat, sr)``: segmental SNR as in Loizou's ``composite.m``: 30 ms Hann frames with
  75 % overlap (last frame dropped, see :mod:`kspikese.metrics.framing`), per frame
  ``10 log10(E_s / (E_e + eps) + eps)`` clamped to [-10, 35] dB, averaged over all frames.

``snr`` and ``si_snr`` reduce over the last axis, so a batch ``(B, T)`` gives ``B`` values.
A perfect estimate gives ``+inf`` for both (no epsilon is added: the numbers are exact).
"""

import numpy as np

from kspikese.metrics import framing

SSNR_MIN = -10.0
SSNR_MAX = 35.0


def _pair(clean, est):
    clean = np.asarray(clean, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if clean.shape != est.shape:
        raise ValueError(f"clean and estimate differ in shape: {clean.shape} vs {est.shape}")
    return clean, est


def _db(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(num / den)
    return out[()] if np.ndim(out) == 0 else out


def snr(clean, est):
    """SNR in dB: ``10 log10(sum s^2 / sum (s - s_hat)^2)`` over the last axis."""
    clean, est = _pair(clean, est)
    return _db(np.sum(clean**2, axis=-1), np.sum((clean - est) ** 2, axis=-1))


def si_snr(clean, est):
    """Scale-invariant SNR in dB (zero-mean signals, estimate projected on the reference)."""
    clean, est = _pair(clean, est)
    clean = clean - clean.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.sum(est * clean, axis=-1, keepdims=True) / np.sum(clean**2, axis=-1, keepdims=True)
    target = alpha * clean
    return _db(np.sum(target**2, axis=-1), np.sum((est - target) ** 2, axis=-1))


def segmental_snr_frames(clean, est, sr=16000):
    """Per-frame segmental SNR (dB, clamped to [-10, 35]) in Loizou's frame layout.

    The signals are taken as given (no eps added); :func:`ssnr` adds eps first as the reference
    does.
    """
    clean, est = _pair(clean, est)
    fc = framing.frames(clean, sr)
    fe = framing.frames(est, sr)
    signal = np.sum(fc**2, axis=1)
    noise = np.sum((fc - fe) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        seg = 10.0 * np.log10(signal / (noise + framing.EPS) + framing.EPS)
    return np.clip(seg, SSNR_MIN, SSNR_MAX)


def ssnr(clean, est, sr=16000):
    """Segmental SNR (dB) of ``composite.m``: mean of the clamped per-frame values."""
    clean, est = _pair(clean, est)
    if clean.ndim != 1:
        raise ValueError(f"ssnr needs 1-D signals, got shape {clean.shape}")
    return float(np.mean(segmental_snr_frames(framing.prepare(clean), framing.prepare(est), sr)))
