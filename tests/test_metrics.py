"""Metric definitions: hand-computable SNR cases, Loizou's composite measures step by step."""

import math

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz, toeplitz
from scipy.signal import lfilter

from kspikese.metrics import composite as C
from kspikese.metrics import framing
from kspikese.metrics.snr import segmental_snr_frames, si_snr, snr, ssnr
from kspikese.metrics.testsignals import noisy_copy, speech_like

SR = 16000


@pytest.fixture(scope="module")
def speech():
    return speech_like(2.0, seed=3)


# ----------------------------------------------------------------------------------- SNR, SI-SNR


def test_identical_signals_are_infinitely_good(speech):
    assert snr(speech, speech) == math.inf
    assert si_snr(speech, speech) == math.inf


def test_scaled_copy_snr_changes_by_expected_amount_si_snr_does_not(speech):
    # s_hat = a s  =>  s - s_hat = (1 - a) s  =>  SNR = -20 log10 |1 - a|
    for a in (0.5, 0.9, 2.0, -1.0):
        assert snr(speech, a * speech) == pytest.approx(-20 * math.log10(abs(1 - a)), abs=1e-9)
    est = noisy_copy(speech, 7.0, seed=1)
    base = si_snr(speech, est)
    for a in (0.01, 0.3, 5.0, 100.0):
        assert si_snr(speech, a * est) == pytest.approx(base, abs=1e-9)
    assert snr(speech, 0.5 * est) != pytest.approx(snr(speech, est), abs=0.1)


@pytest.mark.parametrize("target", [-5.0, 0.0, 7.5, 20.0])
def test_white_noise_at_known_snr(speech, target):
    assert snr(speech, noisy_copy(speech, target, seed=2)) == pytest.approx(target, abs=1e-9)
    # SI-SNR is exact when the noise is orthogonal to the (zero-mean) reference
    s = speech - speech.mean()
    n = np.random.default_rng(3).standard_normal(len(s))
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s
    n *= math.sqrt((s @ s) / (n @ n) / 10 ** (target / 10))
    assert si_snr(s, s + n) == pytest.approx(target, abs=1e-9)


def test_snr_of_a_tiny_case_by_hand():
    s = np.array([1.0, -2.0, 2.0, 0.0])  # ||s||^2 = 9
    e = np.array([1.0, -2.0, 1.0, 1.0])  # ||s - e||^2 = 2
    assert snr(s, e) == pytest.approx(10 * math.log10(9 / 2))
    # SI-SNR: s has mean 1/4, e mean 1/4
    s0, e0 = s - 0.25, e - 0.25
    t = (e0 @ s0) / (s0 @ s0) * s0
    assert si_snr(s, e) == pytest.approx(10 * math.log10((t @ t) / ((e0 - t) @ (e0 - t))))


def test_snr_batches_over_the_last_axis(speech):
    est = np.stack([noisy_copy(speech, d, seed=0) for d in (0.0, 10.0)])
    clean = np.stack([speech, speech])
    np.testing.assert_allclose(snr(clean, est), [0.0, 10.0], atol=1e-9)
    assert si_snr(clean, est).shape == (2,)
    with pytest.raises(ValueError, match="differ in shape"):
        snr(speech, speech[:-1])


# --------------------------------------------------------------------------------- frame layout


def test_frame_layout_matches_the_reference_code():
    assert framing.frame_length(16000) == 480 and framing.hop_length(16000) == 120
    assert framing.frame_length(8000) == 240 and framing.hop_length(8000) == 60
    # floor(L/H - N/H): one frame fewer than fit, i.e. the last frame is dropped
    assert [framing.num_frames(n, 16000) for n in (599, 600, 719, 720, 16000)] == [0, 1, 1, 2, 129]
    w = framing.hann(480)
    assert w[0] == pytest.approx(0.5 * (1 - math.cos(2 * math.pi / 481)))
    assert w.min() > 0 and w[239] == w[240]  # symmetric, no zero end points
    x = np.arange(1000.0)
    f = framing.frames(x, 16000, window=False)
    assert f.shape == (framing.num_frames(1000, 16000), 480)
    np.testing.assert_array_equal(f[2], x[240:720])
    assert framing.matlab_round(2.5) == 3 and framing.matlab_round(-2.5) == -3
    with pytest.raises(ValueError, match="too short"):
        framing.frames(np.ones(599), 16000)


# ----------------------------------------------------------------------------------------- SSNR


def test_ssnr_identical_is_clamped_at_35(speech):
    assert ssnr(speech, speech) == 35.0


@pytest.mark.parametrize("gain, expected", [(0.9, 20.0), (1.5, -20 * math.log10(0.5)), (1.0 + 10 ** 0.25, -5.0)])
def test_ssnr_of_a_scaled_copy_is_the_per_frame_snr(speech, gain, expected):
    # every frame has noise (1 - g) * frame, so every frame's SNR is -20 log10 |1 - g|
    assert ssnr(speech, gain * speech) == pytest.approx(expected, abs=1e-6)


def test_ssnr_is_clamped_at_minus_10(speech):
    assert ssnr(speech, 5.0 * speech) == pytest.approx(-10.0)  # -12.04 dB per frame, clamped
    assert ssnr(speech, -speech * 100) == pytest.approx(-10.0)


def test_ssnr_mixes_clamped_frames_by_hand():
    # 1200 samples -> floor(1200/120 - 4) = 6 frames; frames 0-5 start at 0, 120, ..., 600.
    rng = np.random.default_rng(0)
    s = rng.standard_normal(1200)
    e = s.copy()
    e[900:] += 1000 * rng.standard_normal(300)  # ruins frames whose window reaches sample 900
    per_frame = segmental_snr_frames(framing.prepare(s), framing.prepare(e), SR)
    assert len(per_frame) == 6
    # frames starting at 0..360 end before sample 900 -> identical -> 35; frames at 480, 600 -> ruined
    np.testing.assert_array_equal(per_frame[:4], 35.0)
    np.testing.assert_array_equal(per_frame[4:], -10.0)
    assert ssnr(s, e) == pytest.approx((4 * 35 - 2 * 10) / 6)


# ---------------------------------------------------- composite: an independent, loop-by-loop version


def _ref_lpc(frame, order):
    """LPC [1, -a] by the normal equations (scipy's Toeplitz solver), autocorrelation lags."""
    r = np.array([frame[: len(frame) - k] @ frame[k:] for k in range(order + 1)])
    a = solve_toeplitz(r[:order], r[1:])
    return np.r_[1.0, -a], r


def _ref_llr_frames(clean, proc, sr):
    n, h, order = framing.frame_length(sr), framing.hop_length(sr), C.lpc_order(sr)
    w = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, n + 1) / (n + 1)))
    out = []
    for i in range(int(len(clean) / h - n / h)):
        fc, fp = clean[i * h : i * h + n] * w, proc[i * h : i * h + n] * w
        ac, rc = _ref_lpc(fc, order)
        ap, _ = _ref_lpc(fp, order)
        t = toeplitz(rc)
        out.append(math.log((ap @ t @ ap) / (ac @ t @ ac)))
    return np.array(out)


def _ref_peaks(energy):
    """The reference's while-loops, 1-based as in composite.m."""
    e = np.r_[np.nan, energy]  # e[1..25]
    slope = np.r_[np.nan, np.diff(energy)]  # slope[1..24]
    peaks = []
    for i in range(1, 25):
        n = i
        if slope[i] > 0:
            while n < 25 and slope[n] > 0:
                n += 1
            peaks.append(e[n - 1])
        else:
            while n > 0 and slope[n] <= 0:
                n -= 1
            peaks.append(e[n + 1])
    return np.array(peaks)


def _ref_wss_frames(clean, proc, sr):
    n, h = framing.frame_length(sr), framing.hop_length(sr)
    n_fft = 1024 if sr == 16000 else 512
    half = n_fft // 2
    w = 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, n + 1) / (n + 1)))
    filt = np.zeros((25, half))
    for i in range(25):
        f0 = math.floor(C.CENTRE_HZ[i] / (sr / 2) * half)
        bw = C.BANDWIDTH_HZ[i] / (sr / 2) * half
        for j in range(half):
            g = math.exp(-11 * ((j - f0) / bw) ** 2 + math.log(70.0) - math.log(C.BANDWIDTH_HZ[i]))
            filt[i, j] = g if g > math.exp(-30 / (2 * 2.303)) else 0.0
    out = []
    for k in range(int(len(clean) / h - n / h)):
        energies, weights = [], []
        for x in (clean, proc):
            spec = np.abs(np.fft.fft(x[k * h : k * h + n] * w, n_fft)) ** 2
            e = np.array([10 * math.log10(max(spec[:half] @ filt[i], 1e-10)) for i in range(25)])
            peak = _ref_peaks(e)
            weights.append([20 / (20 + e.max() - e[i]) * 1 / (1 + peak[i] - e[i]) for i in range(24)])
            energies.append(e)
        wt = (np.array(weights[0]) + np.array(weights[1])) / 2
        d = np.diff(energies[0]) - np.diff(energies[1])
        out.append(np.sum(wt * d**2) / np.sum(wt))
    return np.array(out)


@pytest.fixture(scope="module")
def small_pair():
    clean = speech_like(0.2, seed=11)  # 3200 samples -> 22 frames
    proc = lfilter([1.0, 0.5], [1.0], clean) * 0.7 + 0.01 * np.random.default_rng(12).standard_normal(3200)
    return framing.prepare(clean), framing.prepare(proc)


def test_levinson_matches_the_normal_equations(small_pair):
    f = framing.frames(small_pair[0], SR)
    r = C.autocorrelation(f, 16)
    a = C.levinson(r)
    for i in (0, 7, 21):
        np.testing.assert_allclose(a[i], _ref_lpc(f[i], 16)[0], rtol=1e-7, atol=1e-9)


def test_llr_frames_match_a_straightforward_implementation(small_pair):
    np.testing.assert_allclose(C.llr_frames(*small_pair, SR), _ref_llr_frames(*small_pair, SR), rtol=1e-7, atol=1e-9)
    assert np.all(C.llr_frames(small_pair[0], small_pair[0], SR) == pytest.approx(0.0, abs=1e-9))


def test_wss_frames_match_a_straightforward_implementation(small_pair):
    np.testing.assert_allclose(C.wss_frames(*small_pair, SR), _ref_wss_frames(*small_pair, SR), rtol=1e-9)
    assert np.all(C.wss_frames(small_pair[0], small_pair[0], SR) == 0.0)


def test_peak_search_matches_the_reference_loops_including_plateaus():
    rng = np.random.default_rng(0)
    energy = rng.integers(0, 4, size=(300, 25)).astype(float)  # many zero slopes (ties)
    want = np.array([_ref_peaks(e) for e in energy])
    np.testing.assert_array_equal(C.nearby_peaks(energy), want)
    # a single peak at band 5 (0-based): the right search stops one band short of the peak
    e = -np.abs(np.arange(25.0) - 5)
    peaks = C.nearby_peaks(e[None])[0]
    assert peaks[0] == e[4] and peaks[4] == e[4] and peaks[5] == e[5] and peaks[10] == e[5]


def test_critical_band_filters():
    g = C.critical_band_filters(16000)
    assert g.shape == (25, 512)
    for k in (0, 12, 24):
        f0 = int(C.CENTRE_HZ[k] / 8000 * 512)
        assert g[k].argmax() == f0
        assert g[k, f0] == pytest.approx(70.0 / C.BANDWIDTH_HZ[k])
    assert np.all((g == 0) | (g > math.exp(-30 / (2 * 2.303))))
    assert C.fft_size(16000) == 1024 and C.fft_size(8000) == 512
    assert C.lpc_order(16000) == 16 and C.lpc_order(8000) == 10


def test_lowest_95_percent_mean():
    v = np.arange(40.0)[::-1]  # round(0.95 * 40) = 38 values: 0..37
    assert C.lowest_mean(v) == pytest.approx(np.mean(np.arange(38.0)))
    assert math.isnan(C.lowest_mean([5.0, np.nan, 1.0]))  # round(2.85) = 3 values: NaN included
    assert C.lowest_mean(np.r_[np.arange(19.0), np.nan]) == pytest.approx(9.0)  # NaN sorts last, dropped


def test_composite_regressions_by_hand():
    # CSIG = 3.093 - 1.029*0.5 + 0.603*2 - 0.009*30 = 3.5145
    # CBAK = 1.634 + 0.478*2 - 0.007*30 + 0.063*5 = 2.695
    # COVL = 1.594 + 0.805*2 - 0.512*0.5 - 0.007*30 = 2.738
    out = C.combine(pesq=2.0, llr_value=0.5, wss_value=30.0, segsnr=5.0)
    assert out == pytest.approx({"csig": 3.5145, "cbak": 2.695, "covl": 2.738})
    assert C.combine(4.64, 0.0, 0.0, 35.0) == {"csig": 5.0, "cbak": 5.0, "covl": 5.0}
    assert C.combine(1.0, 3.0, 100.0, -10.0) == {"csig": 1.0, "cbak": 1.0, "covl": 1.0}
    assert all(math.isnan(v) for v in C.combine(math.nan, 0.1, 10.0, 5.0).values())


def test_composite_puts_the_parts_together(small_pair, speech):
    noisy = noisy_copy(speech, 5.0, seed=4)
    out = C.composite(speech, noisy, SR, pesq_score=1.5)
    assert out["llr"] == pytest.approx(C.llr(speech, noisy))
    assert out["wss"] == pytest.approx(C.wss(speech, noisy))
    assert out["ssnr"] == pytest.approx(ssnr(speech, noisy))
    assert out["csig"] == pytest.approx(min(5, max(1, 3.093 - 1.029 * out["llr"] + 0.603 * 1.5 - 0.009 * out["wss"])))
    assert out["cbak"] == pytest.approx(1.634 + 0.478 * 1.5 - 0.007 * out["wss"] + 0.063 * out["ssnr"])
    with pytest.raises(ValueError, match="equal length"):
        C.composite(speech, noisy[:-1], SR, pesq_score=1.0)


def test_agrees_with_an_independent_port_of_composite_m(speech):
    """Values from pysepm-evo 0.1.1 (another port of Loizou's code), computed once on these pairs."""
    noisy = noisy_copy(speech, 5.0, seed=4)
    filt = lfilter([1, 0.6], [1], speech) * 0.8 + 0.003 * np.random.default_rng(5).standard_normal(len(speech))
    for est, llr_ref, wss_ref, seg_ref in (
        (noisy, 3.502821168488232, 39.95963598689059, -2.5824519335515053),
        (filt, 1.7826965219836113, 17.570283447523302, 1.420227871921777),
    ):
        assert C.llr(speech, est) == pytest.approx(llr_ref, rel=1e-8)
        assert C.wss(speech, est) == pytest.approx(wss_ref, rel=1e-8)
        assert ssnr(speech, est) == pytest.approx(seg_ref, rel=1e-8)
