"""Reference denoisers: lag search, RNNoise through its shared library, spectral gating."""

import numpy as np
import pytest

from kspikese import baselines

SR = 16000


def voiced(seconds=2.0, seed=0):
    """Harmonics of 150 Hz switched on and off at 3 Hz (speech-like), plus light white noise."""
    t = np.arange(int(SR * seconds)) / SR
    clean = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 15)) * (np.sin(2 * np.pi * 3 * t) > 0) * 0.1
    return clean, clean + 0.01 * np.random.default_rng(seed).standard_normal(len(t))


def test_lag_of_finds_a_known_shift():
    x = np.random.default_rng(1).standard_normal(4000)
    y = np.concatenate([np.zeros(37), x])[:4000]
    assert baselines.lag_of(y, x, 100) == 37
    assert baselines.lag_of(x, x, 100) == 0


def test_rnnoise_keeps_length_and_timing_and_silence():
    pytest.importorskip("soxr")
    clean, noisy = voiced()
    y = baselines.rnnoise(noisy, SR)
    assert y.shape == noisy.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert baselines.lag_of(y, clean, 50) == 0  # its frame delay was removed
    assert np.corrcoef(y, clean)[0, 1] > 0.9
    assert np.abs(baselines.rnnoise(np.zeros(SR), SR)).max() == 0.0


def test_spectral_gating_keeps_length():
    clean, noisy = voiced(1.0)
    y = baselines.spectral_gating(noisy, SR)
    assert y.shape == noisy.shape and np.isfinite(y).all()
    assert np.mean(y ** 2) < np.mean(noisy ** 2)  # it removes energy


def test_missing_library_says_how_to_install(monkeypatch):
    baselines._librnnoise.cache_clear()
    monkeypatch.setattr(baselines.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(baselines.BaselineUnavailable, match="pip install --no-deps pyrnnoise"):
            baselines.rnnoise(np.zeros(SR), SR)
    finally:
        baselines._librnnoise.cache_clear()


def test_peers_run_a_shipped_model_through_enhance_loading_it_once(monkeypatch):
    from kspikese import hub
    from kspikese.bench import peers

    loads = []
    real_load = hub.load

    def counting_load(name, *args, **kwargs):
        loads.append(name)
        return real_load(name, *args, **kwargs)

    monkeypatch.setattr(hub, "load", counting_load)
    run = peers.denoisers()["wave-u-net"]
    x = (0.05 * np.random.default_rng(0).standard_normal(12000)).astype(np.float32)
    y = run(x, 16000)
    y8 = run(x[::2], 8000)  # another rate: resampled to 16 kHz and back
    assert y.shape == x.shape and y8.shape == (6000,) and np.all(np.isfinite(y))
    assert not np.allclose(y, x)
    assert loads == ["wave-u-net"]
