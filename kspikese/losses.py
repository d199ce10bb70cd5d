"""Training objectives and metrics in TensorFlow.

SNR loss (paper §4.2), per example, with ``s`` the clean frame and ``ŝ`` the estimate:

    L(s, ŝ) = -10 log10( ||s||² / ||s - ŝ||² )

Its negation is the SNR of :func:`kspikese.metrics.snr.snr`.  A small ``eps`` is added to both
energies so that silent frames (all-zero padding) give a finite loss:

    L = -10 log10( (||s||² + eps) / (||s - ŝ||² + eps) )

Thresholded SNR loss (:func:`thresholded_snr_loss`, after Wisdom et al. 2020's soft threshold),
with ``τ = 10^(-snr_max/10)`` and an energy floor ``δ = N · floor_rms²`` for frames of ``N``
samples:

    L_τ = 10 log10( ||s - ŝ||² + τ ||s||² + δ ) - 10 log10( ||s||² + δ )

``τ`` caps the reward of one frame at ``snr_max`` dB, and ``δ`` keeps silent or near-silent
frames (padding, pauses) from dominating: with the plain loss a frame with ``||s||² ≈ 0`` costs
``10 log10(||ŝ||² / eps)`` (tens of dB) and pulls with a gradient ``∝ 1 / ||ŝ||²``; with ``δ``
its loss is ``10 log10(1 + ||ŝ||² / δ)``, bounded in slope by ``1 / δ``.  For loud frames
(``||s||² ≫ δ``) and SNRs below ``snr_max`` it is the plain SNR loss.

SNR + multi-resolution STFT loss (:func:`snr_stft_loss`, the spectral term of Yamamoto et al.
2020 as Défossez et al. 2020 use it beside a waveform loss).  For each resolution ``r`` (FFT size,
hop, Hann window length) with magnitudes ``S = |STFT_r(s)|``, ``Ŝ = |STFT_r(ŝ)|``:

    SC_r  = ||S - Ŝ||_F / ||S||_F                           (spectral convergence)
    MAG_r = mean |ln(S + μ) - ln(Ŝ + μ)|                   (log-magnitude distance, μ = 1e-5)
    L     = L_SNR + λ · (1/R) Σ_r (SC_r + MAG_r)

SC's norms run over the whole batch (as Yamamoto et al.'s implementation has it), so a silent
clean frame (``||S|| = 0``: padding, pauses) does not make the ratio explode; every example of
the batch carries the batch's SC.  MAG is per example.

The SNR term is ruled by the loud low-frequency bins; the log-magnitude term weighs every
time-frequency bin alike, so weak high bands (consonants, what STOI and PESQ listen to) count.
With ``ŝ = g s`` (``g > 0``, ``||S|| ≫ μ``) each resolution gives ``SC = |1 - g|`` and
``MAG = |ln g|``.

Short-time intelligibility term (the ``stoi_weight`` of :func:`snr_stft_loss`): a
differentiable STOI (Taal et al. 2011) computed in TensorFlow, ``d ∈ [-1, 1]``, added as
``λ_s (1 - d)``.  With ``X``, ``Y`` the one-third-octave band envelopes of ``s`` and ``ŝ`` (15
bands from 150 Hz, ``X_j(m) = sqrt(Σ_{k∈band j} |STFT(s)_{k,m}|²)``), for every segment of
``N = 30`` frames ending at frame ``m`` and band ``j``, with ``x``, ``y`` the segment's envelope
vectors:

    y' = min( (||x|| / ||y||) · y,  (1 + 10^(-β/20)) · x )      (β = -15 dB: clipping)
    d  = mean over (j, m) of  <x - mean x, y' - mean y'> / (||x - mean x|| · ||y' - mean y'||)

As Taal et al. at 10 kHz (256-sample Hann windows, 50 % overlap, 512-point FFT), but at the
signal's own rate with the same time span: windows of ``round(0.0256 fs)`` samples, hop half of
that, FFT to the next power of two; band edges ``150 · 2^((2k ∓ 1)/6)`` Hz snapped to the nearest
bin.  Unlike the measure (:mod:`kspikese.metrics`), no silent frames are removed: a silent
segment has ``x ≈ 0``, contributes ``≈ 0`` and no gradient, so ``d`` is lower than pystoi's on
frames with pauses, not its gradient.  Identical signals give ``d = 1``.  A signal shorter than
one segment (fewer than 30 frames, 0.4 s) is scored as one segment of all its frames.

SI-SNR (used for early stopping) projects ŝ on the zero-mean target:
``t = <ŝ, s> s / ||s||²``, ``SI-SNR = 10 log10(||t||² / ||ŝ - t||²)``.
"""

import numpy as np
import tensorflow as tf

EPS = 1e-8


def _flat(x):
    return tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])


def _db(num, den):
    return 10.0 * (tf.math.log(num + EPS) - tf.math.log(den + EPS)) / tf.math.log(10.0)


def snr_loss(y_true, y_pred):
    """Negative SNR in dB, one value per example (Keras averages over the batch)."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    return -_db(tf.reduce_sum(s**2, -1), tf.reduce_sum((s - s_hat) ** 2, -1))


def thresholded_snr_loss(snr_max_db=30.0, floor_rms=1e-3):
    """The thresholded SNR loss ``L_τ`` (module docstring) as a Keras loss, one value per example.

    ``snr_max_db``: the SNR (dB) above which a frame earns nothing more; ``floor_rms``: the RMS
    (in full-scale units) of the energy floor, ``δ = N · floor_rms²``.
    """
    tau = 10.0 ** (-float(snr_max_db) / 10.0)
    floor_sq = float(floor_rms) ** 2

    def loss(y_true, y_pred):
        s, s_hat = _flat(y_true), _flat(y_pred)
        delta = floor_sq * tf.cast(tf.shape(s)[-1], tf.float32)
        energy = tf.reduce_sum(s**2, -1)
        err = tf.reduce_sum((s - s_hat) ** 2, -1)
        return 10.0 * (tf.math.log(err + tau * energy + delta)
                       - tf.math.log(energy + delta)) / tf.math.log(10.0)

    loss.__name__ = "thresholded_snr_loss"
    return loss


# (FFT size, hop, window length) at 16 kHz: Défossez et al. 2020's three resolutions
STFT_RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
MAG_FLOOR = 1e-5  # μ: the magnitude floor of the log-magnitude term


def stft_distance(y_true, y_pred, resolutions=STFT_RESOLUTIONS):
    """``(1/R) Σ_r (SC_r + MAG_r)`` (module docstring), one value per example (SC batch-wide)."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    total = 0.0
    for n_fft, hop, win in resolutions:
        mags = [tf.abs(tf.signal.stft(x, win, hop, n_fft, window_fn=tf.signal.hann_window,
                                      pad_end=True)) for x in (s, s_hat)]
        ref, est = (tf.reshape(m, [tf.shape(m)[0], -1]) for m in mags)
        sc = tf.norm(ref - est) / (tf.norm(ref) + EPS) * tf.ones_like(ref[:, 0])  # batch-wide
        mag = tf.reduce_mean(tf.abs(tf.math.log(ref + MAG_FLOOR) - tf.math.log(est + MAG_FLOOR)),
                             -1)
        total += sc + mag
    return total / len(resolutions)


STOI_BANDS, STOI_MIN_HZ, STOI_SEGMENT, STOI_BETA_DB = 15, 150.0, 30, -15.0
STOI_WINDOW_S = 0.0256  # 256 samples at STOI's 10 kHz


def third_octave_matrix(fs, n_fft, bands=STOI_BANDS, min_hz=STOI_MIN_HZ):
    """``(bands, n_fft // 2 + 1)`` 0/1 matrix summing the FFT bins of each one-third-octave band:
    band ``k`` covers the bins from the one nearest ``min_hz · 2^((2k-1)/6)`` up to (not
    including) the one nearest ``min_hz · 2^((2k+1)/6)`` Hz."""
    freqs = np.arange(n_fft // 2 + 1) * fs / n_fft
    out = np.zeros((bands, len(freqs)), np.float32)
    for k in range(bands):
        lo, hi = (int(np.argmin(np.abs(freqs - min_hz * 2.0 ** ((2 * k + e) / 6)))) for e in (-1, 1))
        out[k, lo:hi] = 1.0
    return out


def stoi_estimate(y_true, y_pred, fs=16000):
    """The differentiable STOI ``d`` (module docstring), one value per example."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    win = int(round(STOI_WINDOW_S * fs))
    n_fft = 1 << (win - 1).bit_length()
    obm = tf.constant(third_octave_matrix(fs, n_fft).T)  # (bins, bands)

    def envelopes(x):  # (batch, frames, bands) -> (batch, segments, frames in segment, bands)
        power = tf.abs(tf.signal.stft(x, win, win // 2, n_fft, window_fn=tf.signal.hann_window)) ** 2
        env = tf.sqrt(tf.tensordot(power, obm, 1) + EPS)
        segment = tf.minimum(STOI_SEGMENT, tf.shape(env)[1])  # shorter: one segment of all frames
        return tf.signal.frame(env, segment, 1, axis=1)

    x, y = envelopes(s), envelopes(s_hat)
    norm = lambda v: tf.sqrt(tf.reduce_sum(v**2, 2, keepdims=True) + EPS)  # noqa: E731
    y = tf.minimum(y * norm(x) / norm(y), (1.0 + 10.0 ** (-STOI_BETA_DB / 20.0)) * x)
    x = x - tf.reduce_mean(x, 2, keepdims=True)
    y = y - tf.reduce_mean(y, 2, keepdims=True)
    corr = tf.reduce_sum(x * y, 2) / (norm(x)[:, :, 0] * norm(y)[:, :, 0])
    return tf.reduce_mean(corr, [1, 2])


def snr_stft_loss(weight=1.0, resolutions=STFT_RESOLUTIONS, stoi_weight=0.0):
    """``L_SNR + weight · stft_distance + stoi_weight · (1 - stoi_estimate)`` (module docstring)
    as a Keras loss, one value per example.

    ``weight``: λ, dB of SNR loss per unit of spectral distance; ``resolutions``: a list of
    ``[n_fft, hop, window]`` (window <= n_fft); ``stoi_weight``: λ_s, dB of SNR loss per unit of
    STOI (0: no intelligibility term).
    """
    weight, stoi_weight = float(weight), float(stoi_weight)
    for name, value in (("weight", weight), ("stoi_weight", stoi_weight)):
        if not value >= 0:
            raise ValueError(f"loss: snr_stft {name} must be >= 0, got {value!r}")
    resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
    for n_fft, hop, win in resolutions:
        if not 0 < win <= n_fft or hop <= 0:
            raise ValueError(f"loss: snr_stft resolution [n_fft, hop, window] = "
                             f"[{n_fft}, {hop}, {win}]: expected 0 < window <= n_fft and hop > 0")

    def loss(y_true, y_pred):
        value = snr_loss(y_true, y_pred)
        if weight:
            value += weight * stft_distance(y_true, y_pred, resolutions)
        if stoi_weight:
            value += stoi_weight * (1.0 - stoi_estimate(y_true, y_pred))
        return value

    loss.__name__ = "snr_stft_loss"
    return loss


LOSSES = {"snr": lambda: snr_loss, "thresholded_snr": thresholded_snr_loss,
          "snr_stft": snr_stft_loss}


def get(spec):
    """A Keras loss from a YAML ``loss:`` value: ``None`` or ``"snr"`` (the paper's SNR loss),
    ``"thresholded_snr"``, ``"snr_stft"``, or ``{"name": ..., **kwargs}`` (e.g. ``snr_max_db``,
    ``floor_rms``; ``weight``, ``resolutions``, ``stoi_weight``)."""
    if spec is None or callable(spec):
        return snr_loss if spec is None else spec
    kwargs = {}
    if isinstance(spec, dict):
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        spec = spec.get("name")
    if spec not in LOSSES:
        raise ValueError(f"loss: unknown loss {spec!r}; expected one of {sorted(LOSSES)}")
    if spec == "snr" and kwargs:
        raise ValueError(f"loss: 'snr' takes no settings, got {sorted(kwargs)}")
    try:
        return LOSSES[spec](**kwargs)
    except TypeError as exc:  # an unknown setting
        raise ValueError(f"loss: {spec!r} settings {sorted(kwargs)}: {exc}") from None


def describe(spec):
    """A YAML ``loss:`` value as one short string for tables: ``snr`` (also for ``None``) or
    ``name(key=value, ...)``, e.g. ``snr_stft(stoi_weight=100, weight=5)``."""
    if spec is None or isinstance(spec, str):
        return spec or "snr"
    settings = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                         for k, v in sorted(spec.items()) if k != "name")
    return f"{spec.get('name')}({settings})" if settings else str(spec.get("name"))


def si_snr(y_true, y_pred):
    """Scale-invariant SNR in dB, one value per example (a Keras metric)."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    s = s - tf.reduce_mean(s, -1, keepdims=True)
    s_hat = s_hat - tf.reduce_mean(s_hat, -1, keepdims=True)
    alpha = tf.reduce_sum(s_hat * s, -1, keepdims=True) / (tf.reduce_sum(s**2, -1, keepdims=True) + EPS)
    target = alpha * s
    return _db(tf.reduce_sum(target**2, -1), tf.reduce_sum((s_hat - target) ** 2, -1))


def snr(y_true, y_pred):
    """SNR in dB, one value per example (a Keras metric)."""
    return -snr_loss(y_true, y_pred)
