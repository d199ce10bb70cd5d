"""Score enhanced speech against clean speech: one pair, or a whole set in parallel processes.

``evaluate_pair(clean, enhanced)`` returns the paper's eleven measures (see :data:`METRICS`);
``evaluate_set(pairs, workers=N)`` maps it over many utterances with a process pool and a tqdm bar
and returns per-utterance rows plus the means.

Input rules (a ``ValueError`` naming the problem otherwise): 1-D signals of equal length,
finite, non-empty, reference not all zeros; floats in [-1, 1], or integer PCM samples, which are
scaled to [-1, 1] by their dtype (:func:`kspikese.audio_io.as_float_audio`); other dtypes are
refused.

Each measure is computed on its own: one that cannot score the pair (too short, PESQ finding no
utterance in an all-zero output, ...) gives NaN for itself and for the measures built on it, with
its reason, and the others are kept.  Minimum lengths at 16 kHz (:data:`MIN_SAMPLES`): SNR 1
sample, SI-SNR 2, PESQ 4000 (1/4 s), STOI 6554 (0.41 s of non-silent speech), SSNR and the
composite measures 600 (one 30 ms frame besides the dropped last one), DNSMOS 1 (it repeats short
clips).  Audio at another rate than 16 kHz (``sr=``) is
resampled to 16 kHz (:func:`kspikese.audio_io.resample`) before scoring; every measure is computed
at 16 kHz.  Signals are expected in the usual float scale ([-1, 1]); DNSMOS scales a clip whose
peak exceeds 1 down by its peak.
"""

import concurrent.futures as cf
import math
import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np

from kspikese.audio_io import SR  # noqa: E402  (the one sample rate)
METRICS = (
    "snr", "ssnr", "si_snr", "stoi", "pesq", "csig", "cbak", "covl",
    "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
)
HIGHER_IS_BETTER = dict.fromkeys(METRICS, True)
_COMPOSITE = ("csig", "cbak", "covl")
_DNSMOS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def check_metrics(metrics):
    """Validate a metric selection; ``None`` means all.  Returns a tuple in :data:`METRICS` order."""
    if metrics is None:
        return METRICS
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics: unknown or empty selection {list(metrics)!r}; choose from {list(METRICS)}")
    return tuple(m for m in METRICS if m in metrics)


def _signal(x, role):
    from kspikese.audio_io import as_float_audio

    x, _ = as_float_audio(x, f"{role} signal")  # integers scaled to [-1, 1], others refused
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{role} signal must be 1-D (mono samples), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{role} signal is empty")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{role} signal contains NaN or inf samples ({int(bad.sum())} of {x.size}, first at "
            f"index {int(np.argmax(bad))})"
        )
    return x


def check_pair(clean, enhanced, sr=SR):
    """Validate a pair and bring it to 16 kHz float64; raise ValueError naming the problem."""
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sample rate, got {sr!r}")
    clean = _signal(clean, "clean (reference)")
    enhanced = _signal(enhanced, "enhanced")
    if clean.shape != enhanced.shape:
        raise ValueError(
            f"clean and enhanced signals differ in length: {clean.size} vs {enhanced.size} samples"
        )
    if not np.any(clean):
        raise ValueError("clean (reference) signal is all zeros: nothing to measure against")
    if int(sr) != SR:
        from kspikese.audio_io import resample

        clean = np.asarray(resample(clean, int(sr), SR), dtype=np.float64)
        enhanced = np.asarray(resample(enhanced, int(sr), SR), dtype=np.float64)
    return clean, enhanced


def _min_samples():
    from kspikese.metrics import framing, perceptual

    frames = framing.min_length(SR)
    return {"snr": 1, "si_snr": 2, "pesq": int(perceptual.PESQ_MIN_SECONDS * SR),
            "stoi": perceptual.stoi_min_samples(SR), "ssnr": frames, "csig": frames,
            "cbak": frames, "covl": frames, "dnsmos_sig": 1, "dnsmos_bak": 1, "dnsmos_ovrl": 1}


MIN_SAMPLES = _min_samples()  # shortest signal (16 kHz samples) each measure scores


def _guarded(errors, label, compute):
    """``compute()``, or ``None`` with ``"<label> failed: <reason>"`` added to ``errors``."""
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - one measure's failure must not take the others
        text = str(exc).strip() or type(exc).__name__
        errors.append(text if text.startswith(f"{label} failed") else f"{label} failed: {text}")
        return None


def _score(clean, enhanced, metrics, threads=None):
    """Compute ``metrics`` on a checked 16 kHz pair: (values, errors).

    Each measure runs on its own (:func:`_guarded`): one that fails (PESQ's "No utterances
    detected", a signal shorter than its :data:`MIN_SAMPLES`, an exception inside a reference
    package) gives NaN for it and the measures built on it, plus a message; the others are kept.
    """
    from kspikese.metrics import composite, perceptual
    from kspikese.metrics import snr as snr_mod

    errors = []
    values = dict.fromkeys(metrics, math.nan)
    want = set(metrics)
    n = len(clean)

    def long_enough(metric, label):
        if n < MIN_SAMPLES[metric]:
            errors.append(f"{label} failed: needs at least {MIN_SAMPLES[metric]} samples at "
                          f"{SR} Hz ({MIN_SAMPLES[metric] / SR:.3f} s), got {n}")
            return False
        return True

    for key, label, fn in (("snr", "SNR", snr_mod.snr), ("si_snr", "SI-SNR", snr_mod.si_snr)):
        if key in want and long_enough(key, label):
            v = _guarded(errors, label, lambda fn=fn: float(fn(clean, enhanced)))
            values[key] = math.nan if v is None else v
    if "stoi" in want:
        v = _guarded(errors, "STOI", lambda: perceptual.stoi_score(clean, enhanced, SR))
        values["stoi"] = math.nan if v is None else v
    pesq_value = math.nan
    if want & {"pesq", *_COMPOSITE}:
        v = _guarded(errors, "PESQ", lambda: perceptual.pesq_score(clean, enhanced, SR))
        pesq_value = math.nan if v is None else v
        if "pesq" in want:
            values["pesq"] = pesq_value
    if want & {"ssnr", *_COMPOSITE} and long_enough("ssnr", "SSNR/composite"):
        parts = _guarded(errors, "SSNR/composite",
                         lambda: composite.composite(clean, enhanced, SR, pesq_score=pesq_value))
        for key in ("ssnr", *_COMPOSITE):
            if key in want and parts is not None:
                values[key] = parts[key]
    if want & set(_DNSMOS):
        from kspikese.metrics.dnsmos import dnsmos

        parts = _guarded(errors, "DNSMOS", lambda: dnsmos(enhanced, SR, threads=threads))
        if parts is not None:
            values.update({k: v for k, v in parts.items() if k in want})
    return {m: values[m] for m in metrics}, errors


def evaluate_pair(clean, enhanced, sr=SR, metrics=None, errors="raise"):
    """Score one pair: dict with exactly the keys of :data:`METRICS` (or the chosen subset).

    ``clean``/``enhanced``: 1-D float arrays of equal length at ``sr`` Hz (resampled to 16 kHz when
    ``sr != 16000``).  ``errors="raise"`` (default) raises a ValueError when a measure cannot score
    the pair (e.g. PESQ finds no utterance); ``errors="nan"`` returns NaN for it instead, with a
    warning.
    """
    if errors not in ("raise", "nan"):
        raise ValueError(f"errors must be 'raise' or 'nan', got {errors!r}")
    metrics = check_metrics(metrics)
    clean, enhanced = check_pair(clean, enhanced, sr)
    values, problems = _score(clean, enhanced, metrics)
    if problems:
        if errors == "raise":
            raise ValueError("; ".join(problems))
        warnings.warn("; ".join(problems), RuntimeWarning, stacklevel=2)
    return values


# --------------------------------------------------------------------------- sets of utterances


def _load(x, sr):
    """An array as given, or an audio file read (and resampled) at ``sr`` Hz."""
    if isinstance(x, (str, os.PathLike)):
        from kspikese.audio_io import read_audio

        return read_audio(Path(x), sr=sr)
    return x


def _job(name, clean, enhanced, sr, metrics, threads):
    """Score one utterance; never raises: failures become an ``error`` text and NaN values."""
    row = {"name": str(name)}
    try:
        c, e = check_pair(_load(clean, sr), _load(enhanced, sr), sr)
        values, problems = _score(c, e, metrics, threads)
        row.update(values)
        row["error"] = "; ".join(problems)
    except Exception as exc:  # noqa: BLE001 - a per-file failure must not stop the set
        row.update(dict.fromkeys(metrics, math.nan))
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def _init_worker(metrics):
    """Pool initialiser: one onnxruntime thread per worker, DNSMOS sessions built once, up front."""
    if set(metrics) & set(_DNSMOS):
        from kspikese.metrics.dnsmos import scorer

        scorer(threads=1)


def means_of(rows, metrics=METRICS):
    """Mean of each metric over the rows, NaN ignored, plus how many values each mean used.

    Returns ``{metric: mean, ..., "n_<metric>": count, ..., "n_files": N, "n_errors": E}``;
    a metric with no usable value has mean NaN.
    """
    out = {}
    for m in metrics:
        vals = np.array([r.get(m, math.nan) for r in rows], dtype=np.float64)
        ok = ~np.isnan(vals)
        out[m] = float(np.mean(vals[ok])) if ok.any() else math.nan
    for m in metrics:
        out[f"n_{m}"] = int(sum(1 for r in rows if not math.isnan(float(r.get(m, math.nan)))))
    out["n_files"] = len(rows)
    out["n_errors"] = sum(1 for r in rows if r.get("error"))
    return out


def evaluate_set(pairs, workers=1, metrics=None, progress=True, sr=SR):
    """Score many utterances; return ``(rows, means)``.

    ``pairs``: iterable of ``(name, clean, enhanced)`` where clean/enhanced are 1-D arrays at ``sr``
    Hz or audio file paths (read inside the worker with :func:`kspikese.audio_io.read_audio`, which
    mixes to mono and resamples to ``sr``).
    ``workers > 1`` scores in that many spawned processes (TensorFlow is never imported there; each
    builds its DNSMOS sessions once).  Each row is ``{"name", <metrics>..., "error"}`` in input
    order; ``error`` is ``""`` when everything was scored, else the reason, with NaN for the
    measures that failed.  ``means`` is :func:`means_of` over the rows.
    """
    metrics = check_metrics(metrics)
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    from tqdm.auto import tqdm

    try:
        total = len(pairs)
    except TypeError:
        total = None
    items = iter(enumerate(pairs))
    rows = {}
    bar = tqdm(total=total, desc="evaluate", unit="file", disable=not progress)

    def unpack(item):
        try:
            name, clean, enhanced = item
        except (TypeError, ValueError) as exc:
            raise ValueError(f"pairs must hold (name, clean, enhanced) triples; got {item!r:.80}") from exc
        return name, clean, enhanced

    try:
        if workers == 1:
            for i, item in items:
                rows[i] = _job(*unpack(item), sr, metrics, None)
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(metrics,)) as pool:
                pending = {}
                try:
                    for i, item in items:
                        pending[pool.submit(_job, *unpack(item), sr, metrics, 1)] = i
                        if len(pending) >= 2 * workers:  # bound memory for long generators
                            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                            for fut in done:
                                rows[pending.pop(fut)] = fut.result()
                                bar.update(1)
                    for fut in cf.as_completed(list(pending)):
                        rows[pending.pop(fut)] = fut.result()
                        bar.update(1)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    ordered = [rows[i] for i in sorted(rows)]
    return ordered, means_of(ordered, metrics)
