"""DNSMOS P.835 (Reddy et al. 2022): non-intrusive SIG / BAK / OVRL from Microsoft's ONNX models.

The models and the feature code are the ones the PyPI package ``speechmos`` ships inside its wheel,
so this works offline.  We score through ``speechmos.dnsmos.DNSMOS`` exactly as
``speechmos.dnsmos.run(audio, sr=16000)`` does (9.01 s windows hopped by 1 s, short clips repeated
to 9.01 s, the P.835 polynomial mapping, mean over windows), with two differences that do not change
the numbers:

* the two ONNX sessions are created once per process and kept (``speechmos.run`` also caches one,
  but with onnxruntime's default thread pool); ``threads=`` caps onnxruntime's intra-op threads,
  which the parallel evaluation sets to 1 so that worker processes do not oversubscribe the CPU;
* the audio is scaled into [-1, 1] first, which speechmos requires: a clip whose peak exceeds 1
  is divided by its peak (a clip already inside [-1, 1] is left untouched), and passed as float32
  (what ``librosa.load`` gives for a file).

DNSMOS looks at the enhanced signal only; it needs 16 kHz audio.
"""

import os

import numpy as np

from kspikese.audio_io import SR  # noqa: E402  (the one sample rate)
_SCORERS = {}


def _model_paths(personalized=False):
    import speechmos.dnsmos as sd

    root = os.path.dirname(os.path.abspath(sd.__file__))
    primary = os.path.join(root, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx")
    return primary, os.path.join(root, "dnsmos_models", "model_v8.onnx")


def scorer(personalized=False, threads=None):
    """The process's DNSMOS scorer (a ``speechmos.dnsmos.DNSMOS``), created on first use."""
    key = (bool(personalized), threads)
    if key not in _SCORERS:
        import onnxruntime as ort
        import speechmos.dnsmos as sd

        primary, p808 = _model_paths(personalized)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        model = sd.DNSMOS.__new__(sd.DNSMOS)
        model.primary_model_path = primary
        providers = ["CPUExecutionProvider"]
        model.onnx_sess = ort.InferenceSession(primary, options, providers=providers)
        model.p808_onnx_sess = ort.InferenceSession(p808, options, providers=providers)
        _SCORERS[key] = model
    return _SCORERS[key]


def to_unit_range(audio):
    """Scale into [-1, 1]: divide by the peak when the peak exceeds 1, else leave as is (float32)."""
    audio = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:
        audio = audio / peak
    return np.clip(audio.astype(np.float32), -1.0, 1.0)


def dnsmos(audio, sr=SR, personalized=False, threads=None):
    """DNSMOS of one clip: dict ``dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808``."""
    if sr != SR:
        raise ValueError(f"DNSMOS needs {SR} Hz audio, got sr={sr}")
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"DNSMOS needs a non-empty 1-D signal, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("DNSMOS input contains NaN or inf samples")
    raw = scorer(personalized, threads)(to_unit_range(audio), SR, bool(personalized))
    return {
        "dnsmos_sig": float(raw["sig_mos"]),
        "dnsmos_bak": float(raw["bak_mos"]),
        "dnsmos_ovrl": float(raw["ovrl_mos"]),
        "dnsmos_p808": float(raw["p808_mos"]),
    }
