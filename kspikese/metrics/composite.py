"""Loizou's composite measures CSIG, CBAK, COVL (Hu & Loizou 2008) and their parts LLR and WSS.

This follows Loizou's MATLAB reference ``composite.m`` (the code behind the published
VoiceBank+DEMAND tables), with the frame layout of :mod:`kspikese.metrics.framing`: 30 ms Hann
frames (``w(n) = 0.5 (1 - cos(2 pi n/(N+1)))``), 75 % overlap, last frame dropped, MATLAB ``eps``
added to both signals (float64).

LLR (log-likelihood ratio), per frame::

    a_c, a_p = LPC coefficients [1, -alpha_1..-alpha_P] of the clean / processed frame
               (autocorrelation method, Levinson-Durbin), P = 16 at fs >= 10 kHz, else 10
    R_c      = Toeplitz matrix of the clean frame's autocorrelation lags 0..P
    d_LLR    = log( a_p R_c a_p^T / a_c R_c a_c^T )

WSS (weighted spectral slope, Klatt 1982), per frame::

    S(f)   = |FFT_{n_fft}(frame)|^2,   n_fft = 2^ceil(log2(2N)), bins 0..n_fft/2-1
    E_k    = 10 log10(max(sum_f S(f) G_k(f), 1e-10)),  k = 1..25 Gaussian critical-band
             filters (centres 50 Hz..3.6 kHz; exp(-11 ((f - floor(f0_k))/bw_k)^2) * bw_1/bw_k,
             zeroed below exp(-30/(2*2.303)))
    slope_k = E_{k+1} - E_k,  k = 1..24
    W_k     = Kmax/(Kmax + Emax - E_k) * Klocmax/(Klocmax + Epeak_k - E_k), Kmax=20, Klocmax=1,
              Epeak_k the nearby spectral peak (searched right when slope_k > 0, else left,
              exactly as the reference code does), W = mean of the clean and processed weights
    d_WSS   = sum_k W_k (slope_clean_k - slope_proc_k)^2 / sum_k W_k

LLR and WSS are averaged over the lowest 95 % of frames (``round(0.95 * frames)``, no clipping of
LLR at 2); segSNR (:func:`kspikese.metrics.snr.ssnr`) over all frames.  Then::

    CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS
    CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR
    COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS

each clamped to [1, 5]; PESQ is the wide-band P.862.2 MOS-LQO at 16 kHz (narrow-band at 8 kHz).
Signals are expected in the ``wavread`` scale (floats in [-1, 1]): LLR does not depend on the
scale, WSS and segSNR barely do (only through their 1e-10 / eps floors).
"""

import functools

import numpy as np

from kspikese.metrics import framing
from kspikese.metrics.snr import segmental_snr_frames

ALPHA = 0.95  # fraction of frames (the lowest distortions) averaged for LLR and WSS
KMAX = 20.0
KLOCMAX = 1.0

# Critical bands of the reference WSS (Hz): centre frequencies and bandwidths.
CENTRE_HZ = np.array([
    50.0000, 120.000, 190.000, 260.000, 330.000, 400.000, 470.000, 540.000, 617.372, 703.378,
    798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
    2446.71, 2701.97, 2978.04, 3276.17, 3597.63,
])
BANDWIDTH_HZ = np.array([
    70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 77.3724, 86.0056, 95.3398,
    105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631,
    255.255, 276.072, 298.126, 321.465, 346.136,
])


def lpc_order(sr):
    """LPC order of the LLR: 10 below 10 kHz, 16 otherwise."""
    return 10 if sr < 10000 else 16


def autocorrelation(frames, order):
    """Autocorrelation lags ``R[:, k] = sum_n x[n] x[n + k]``, ``k = 0..order``, per frame."""
    n = frames.shape[1]
    return np.stack([np.sum(frames[:, : n - k] * frames[:, k:], axis=1) for k in range(order + 1)], 1)


def levinson(r):
    """Levinson-Durbin on lags ``r`` (frames, P+1): return prediction filters ``[1, -a_1..-a_P]``.

    The recursion of the reference ``lpcoeff``: ``k_i = (r_i - sum_j a_j r_{i-j}) / E_{i-1}``,
    ``a_i = k_i``, ``a_j <- a_j - k_i a_{i-j}``, ``E_i = (1 - k_i^2) E_{i-1}``.
    """
    count, p1 = r.shape
    order = p1 - 1
    a = np.zeros((count, order + 1))  # a[:, j] = alpha_j, a[:, 0] unused
    err = r[:, 0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(1, order + 1):
            past = a.copy()
            acc = np.sum(past[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1) if i > 1 else 0.0
            k = (r[:, i] - acc) / err
            a[:, i] = k
            if i > 1:
                a[:, 1:i] = past[:, 1:i] - k[:, None] * past[:, i - 1 : 0 : -1]
            err = (1.0 - k * k) * err
    out = -a
    out[:, 0] = 1.0
    return out


def _toeplitz_form(a, r):
    """``a T(r) a^T`` per frame, with T(r) the symmetric Toeplitz matrix of lags ``r``."""
    p1 = a.shape[1]
    c = np.stack([np.sum(a[:, : p1 - m] * a[:, m:], axis=1) for m in range(p1)], 1)
    return r[:, 0] * c[:, 0] + 2.0 * np.sum(r[:, 1:] * c[:, 1:], axis=1)


def llr_frames(clean, processed, sr=16000):
    """Per-frame log-likelihood ratio (signals taken as given; :func:`composite` adds eps)."""
    order = lpc_order(sr)
    fc = framing.frames(clean, sr)
    fp = framing.frames(processed, sr)
    r_clean = autocorrelation(fc, order)
    a_clean = levinson(r_clean)
    a_proc = levinson(autocorrelation(fp, order))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(_toeplitz_form(a_proc, r_clean) / _toeplitz_form(a_clean, r_clean))


@functools.lru_cache(maxsize=8)
def critical_band_filters(sr):
    """The 25 Gaussian critical-band filters of the reference WSS: array (25, n_fft/2)."""
    n_fft = fft_size(sr)
    half = n_fft // 2
    max_freq = sr / 2.0
    min_factor = np.exp(-30.0 / (2.0 * 2.303))  # the -30 dB point of a filter
    j = np.arange(half, dtype=np.float64)
    filters = np.empty((len(CENTRE_HZ), half))
    for i, (centre, width) in enumerate(zip(CENTRE_HZ, BANDWIDTH_HZ)):
        f0 = np.floor(centre / max_freq * half)
        bw = width / max_freq * half
        norm = np.log(BANDWIDTH_HZ[0]) - np.log(width)
        g = np.exp(-11.0 * ((j - f0) / bw) ** 2 + norm)
        filters[i] = g * (g > min_factor)
    filters.setflags(write=False)
    return filters


def fft_size(sr):
    """``2^nextpow2(2 N)`` for the 30 ms frame length N."""
    return int(2 ** int(np.ceil(np.log2(2 * framing.frame_length(sr)))))


def band_energies_db(frames, sr):
    """Critical-band energies in dB, ``10 log10(max(S G^T, 1e-10))``: array (frames, 25)."""
    n_fft = fft_size(sr)
    spec = np.abs(np.fft.rfft(frames, n_fft, axis=1)[:, : n_fft // 2]) ** 2
    return 10.0 * np.log10(np.maximum(spec @ critical_band_filters(sr).T, 1e-10))


def nearby_peaks(energy):
    """The reference's peak search, vectorised: for each band k = 1..24 (0-based 0..23).

    With ``slope_k = E_{k+1} - E_k``: if ``slope_k > 0`` walk right to the first m >= k with
    ``slope_m <= 0`` (or m = 24) and take ``E_{m-1}``; otherwise walk left to the last m <= k with
    ``slope_m > 0`` (or m = -1) and take ``E_{m+1}``.
    """
    slope = np.diff(energy, axis=1)
    count, nb = slope.shape
    idx = np.broadcast_to(np.arange(nb), slope.shape)
    # first index >= k with slope <= 0 (nb when none): a reversed running minimum
    stop_right = np.where(slope <= 0, idx, nb)
    stop_right = np.minimum.accumulate(stop_right[:, ::-1], axis=1)[:, ::-1]
    # last index <= k with slope > 0 (-1 when none): a running maximum
    stop_left = np.maximum.accumulate(np.where(slope > 0, idx, -1), axis=1)
    right = np.take_along_axis(energy, stop_right - 1, axis=1)
    left = np.take_along_axis(energy, stop_left + 1, axis=1)
    return np.where(slope > 0, right, left)


def _weights(energy):
    peak = nearby_peaks(energy)
    e = energy[:, :-1]
    w_max = KMAX / (KMAX + energy.max(axis=1, keepdims=True) - e)
    w_loc = KLOCMAX / (KLOCMAX + peak - e)
    return w_max * w_loc


def wss_frames(clean, processed, sr=16000):
    """Per-frame weighted spectral slope distance (signals taken as given)."""
    ec = band_energies_db(framing.frames(clean, sr), sr)
    ep = band_energies_db(framing.frames(processed, sr), sr)
    w = 0.5 * (_weights(ec) + _weights(ep))
    diff = np.diff(ec, axis=1) - np.diff(ep, axis=1)
    return np.sum(w * diff**2, axis=1) / np.sum(w, axis=1)


def lowest_mean(values, alpha=ALPHA):
    """Mean of the lowest ``round(alpha * len)`` values (NaN sorts last, as in MATLAB)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    keep = max(1, framing.matlab_round(alpha * len(values)))
    return float(np.mean(values[:keep]))


def _checked(clean, processed):
    clean = np.asarray(clean)
    processed = np.asarray(processed)
    if clean.ndim != 1 or clean.shape != processed.shape:
        raise ValueError(
            f"composite measures need two 1-D signals of equal length, got {clean.shape} and "
            f"{processed.shape}"
        )
    return framing.prepare(clean), framing.prepare(processed)


def llr(clean, processed, sr=16000):
    """LLR of ``composite.m``: lowest 95 % of the per-frame values averaged (eps added first)."""
    c, p = _checked(clean, processed)
    return lowest_mean(llr_frames(c, p, sr))


def wss(clean, processed, sr=16000):
    """WSS of ``composite.m``: lowest 95 % of the per-frame values averaged (eps added first)."""
    c, p = _checked(clean, processed)
    return lowest_mean(wss_frames(c, p, sr))


def combine(pesq, llr_value, wss_value, segsnr):
    """The Hu & Loizou regressions, clamped to [1, 5] (NaN PESQ gives NaN)."""
    csig = 3.093 - 1.029 * llr_value + 0.603 * pesq - 0.009 * wss_value
    cbak = 1.634 + 0.478 * pesq - 0.007 * wss_value + 0.063 * segsnr
    covl = 1.594 + 0.805 * pesq - 0.512 * llr_value - 0.007 * wss_value
    return {k: float(np.clip(v, 1.0, 5.0)) for k, v in (("csig", csig), ("cbak", cbak), ("covl", covl))}


def composite(clean, processed, sr=16000, pesq_score=None):
    """CSIG, CBAK, COVL and their parts for one pair of 1-D signals.

    Returns a dict with ``csig, cbak, covl, llr, wss, ssnr, pesq``.  ``pesq_score`` lets a caller
    that already has the PESQ value skip computing it again; otherwise it is computed with
    :func:`kspikese.metrics.perceptual.pesq_score` (wide-band at 16 kHz, narrow-band at 8 kHz).
    """
    c, p = _checked(clean, processed)
    llr_value = lowest_mean(llr_frames(c, p, sr))
    wss_value = lowest_mean(wss_frames(c, p, sr))
    segsnr = float(np.mean(segmental_snr_frames(c, p, sr)))
    if pesq_score is None:
        from kspikese.metrics.perceptual import pesq_score as _pesq

        pesq_score = _pesq(clean, processed, sr)
    out = combine(float(pesq_score), llr_value, wss_value, segsnr)
    out.update(llr=llr_value, wss=wss_value, ssnr=segsnr, pesq=float(pesq_score))
    return out
