"""Active-speech level, SNR mixing, speech-shaped noise and babble: checked against hand numbers."""

import numpy as np
import pytest
from scipy import signal

from kspikese.data import mixing, noise

SR = 16000


def tone(seconds, freq=500.0, amp=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * freq * t)


def test_active_mask_marks_loud_frames_only():
    # 0.5 s tone, 0.5 s silence, 0.5 s tone 60 dB down: only the first 0.5 s is active
    x = np.concatenate([tone(0.5), np.zeros(SR // 2), tone(0.5, amp=1e-3)])
    mask = mixing.active_mask(x)
    assert mask[: SR // 2].all() and not mask[SR // 2 :].any()
    # 500 Hz has 10 whole periods in a 20 ms frame: active power is exactly A^2 / 2
    assert mixing.active_power(x) == pytest.approx(0.5, rel=1e-9)
    assert mixing.active_level_db(0.1 * x) == pytest.approx(10 * np.log10(0.005), abs=1e-9)


def test_active_mask_is_scale_invariant_and_rejects_silence():
    x = np.concatenate([tone(0.3), np.zeros(3000), tone(0.2, amp=0.05)])
    assert np.array_equal(mixing.active_mask(x), mixing.active_mask(1e-3 * x))
    with pytest.raises(ValueError, match="silent"):
        mixing.active_power(np.zeros(1000))


def test_mix_sets_the_snr_on_active_speech_by_hand():
    # clean: 1 s tone (A = 0.2) then 1 s of silence -> active power 0.02; noise: white, 2 s
    clean = np.concatenate([tone(1.0, amp=0.2), np.zeros(SR)])
    n = np.random.default_rng(0).standard_normal(2 * SR)
    c, (y,), gain = mixing.mix(clean, [n], [5.0])
    assert gain == 1.0
    noise_power = np.mean((y.astype(np.float64) - c) ** 2)
    # 10 log10(0.02 / P_n) = 5 dB  =>  P_n = 0.02 / 10^0.5
    assert noise_power == pytest.approx(0.02 / 10**0.5, rel=1e-5)
    assert mixing.measured_snr(c, y) == pytest.approx(5.0, abs=1e-4)


def test_mix_applies_one_common_gain_against_clipping():
    clean = tone(1.0, amp=0.5)
    noises = [np.random.default_rng(1).standard_normal(SR), np.random.default_rng(2).standard_normal(SR)]
    c, ys, gain = mixing.mix(clean, noises, [-6.0, 10.0])
    assert gain < 1.0
    assert max(np.abs(y).max() for y in ys) == pytest.approx(mixing.PEAK, abs=1e-6)
    assert np.allclose(c, clean * gain, atol=1e-6)
    assert [mixing.measured_snr(c, y) for y in ys] == pytest.approx([-6.0, 10.0], abs=1e-3)


def test_mix_rejects_wrong_noise_length():
    with pytest.raises(ValueError, match="noise has 10 samples"):
        mixing.mix(np.ones(20), [np.ones(10)], [0])


def test_normalize_level():
    x = mixing.normalize_level(tone(0.5, amp=0.3))
    assert mixing.active_level_db(x) == pytest.approx(mixing.SPEECH_LEVEL_DBFS, abs=1e-4)


def test_ssn_follows_the_long_term_spectrum():
    # "speech" = white noise through a low-pass: its LTAS falls above 1 kHz; the SSN must too
    rng = np.random.default_rng(3)
    b, a = signal.butter(4, 1000, fs=SR)
    utts = [signal.lfilter(b, a, rng.standard_normal(SR)) for _ in range(4)]
    f, psd = noise.ltas(utts)
    h = noise.ssn_filter(f, psd)
    assert np.sum(h**2) == pytest.approx(1.0)
    ssn = noise.speech_shaped_noise(8 * SR, h, np.random.default_rng(4))
    assert ssn.dtype == np.float32 and len(ssn) == 8 * SR
    assert np.var(ssn) == pytest.approx(1.0, rel=0.05)
    f2, p2 = signal.welch(ssn, fs=SR, nperseg=512)
    band = (f > 100) & (f < 3000)  # where the target is within ~40 dB of its peak
    err_db = 10 * np.log10(p2[band] / p2[band].max()) - 10 * np.log10(psd[band] / psd[band].max())
    assert np.abs(err_db).max() < 3.0
    # same rng seed -> same noise; different -> different
    again = noise.speech_shaped_noise(8 * SR, h, np.random.default_rng(4))
    assert np.array_equal(ssn, again)


def test_babble_excludes_the_target_and_is_unit_rms():
    rng = np.random.default_rng(5)
    pool = {f"u{i}": mixing.normalize_level(tone(0.3 + 0.1 * i, freq=200 + 50 * i)) for i in range(4)}
    b, used = noise.babble(pool, SR, rng, talkers=3, exclude=("u0",))
    assert len(b) == SR and np.sqrt(np.mean(b.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert len(used) == 3
    assert all(name != "u0" for talker in used for name, _ in talker)
    with pytest.raises(ValueError, match="besides the target"):
        noise.babble({"u0": pool["u0"]}, 100, rng, exclude=("u0",))


def test_recordings_split_in_time_without_overlap():
    x = np.arange(1000)
    ranges = [noise.split_recording(x, s)[1] for s in ("train", "valid", "test")]
    assert ranges == [(0, 700), (700, 800), (800, 1000)]
    part, _ = noise.split_recording(x, "test")
    assert part[0] == 800 and part[-1] == 999


def test_segment_wraps_short_streams():
    seg, start = noise.segment(np.arange(5), 12, np.random.default_rng(0))
    assert len(seg) == 12 and list(seg[:5]) == [(start + i) % 5 for i in range(5)]
    seg, start = noise.segment(np.arange(100), 10, np.random.default_rng(0))
    assert list(seg) == list(range(start, start + 10))
