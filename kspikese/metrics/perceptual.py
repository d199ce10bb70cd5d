"""PESQ and STOI: thin wrappers around the reference packages the field uses.

* PESQ: ITU-T P.862.2 wide-band MOS-LQO, ``pesq.pesq(16000, clean, enhanced, 'wb')`` (the raw
  value the package returns).  At 8 kHz the narrow-band P.862 mode is used instead.  The package's
  own errors (e.g. "No utterances detected" for a reference without speech) are re-raised as
  :class:`PesqFailure`, a ``ValueError`` whose message says which measure failed.
* STOI: ``pystoi.stoi(clean, enhanced, fs, extended=False)`` (Taal et al. 2011; pystoi resamples to
  10 kHz itself).

Minimum lengths.  PESQ needs 1/4 s (:data:`PESQ_MIN_SECONDS`; the pesq package's own check).
STOI needs 30 short-time frames of 256 samples hopped by 128 at 10 kHz, i.e. 4096 samples at
10 kHz, 0.4096 s (:func:`stoi_min_samples`: 6554 at 16 kHz), *after* pystoi drops the frames
more than 40 dB below the loudest; pystoi would return 1e-5 with a warning (or fail with a numpy
``AxisError``) below that, which is raised here as :class:`StoiFailure` instead.  Any other
failure of either package (e.g. PESQ of an all-zero enhanced signal, a plain ``ValueError``
inside pesq) is raised as its ``*Failure``, a ``ValueError`` naming the measure.
"""

import math
import warnings

import numpy as np

PESQ_MIN_SECONDS = 0.25
STOI_FS, STOI_FRAME, STOI_HOP, STOI_SEGMENT = 10000, 256, 128, 30  # pystoi's constants


class PesqFailure(ValueError):
    """The pesq package could not score a pair (its message is kept)."""


class StoiFailure(ValueError):
    """pystoi could not score a pair: too short, or too little non-silent speech."""


def stoi_min_samples(sr=16000):
    """Shortest signal at ``sr`` Hz that gives STOI its 30 frames (if none is silent)."""
    at_10k = STOI_FRAME + STOI_SEGMENT * STOI_HOP  # 4096
    return math.ceil(at_10k * sr / STOI_FS)


def pesq_score(clean, enhanced, sr=16000):
    """PESQ MOS-LQO: wide-band at 16 kHz, narrow-band at 8 kHz."""
    import pesq as _pesq

    if sr not in (8000, 16000):
        raise ValueError(f"PESQ needs 8000 or 16000 Hz audio, got sr={sr}")
    mode = "wb" if sr == 16000 else "nb"
    try:
        return float(_pesq.pesq(sr, np.asarray(clean), np.asarray(enhanced), mode))
    except Exception as exc:  # PesqError, and plain ValueErrors from inside the package
        msg = exc.args[0] if exc.args else ""
        msg = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
        raise PesqFailure(f"PESQ failed: {msg} ({type(exc).__name__})") from exc


def stoi_score(clean, enhanced, sr=16000):
    """Classic STOI (``extended=False``) in [0, 1].

    Raises
    ------
    StoiFailure
        Fewer than :func:`stoi_min_samples` samples, or too few non-silent frames left (pystoi's
        "Not enough STFT frames" warning), or any other pystoi failure.
    """
    from pystoi import stoi

    clean, enhanced = np.asarray(clean), np.asarray(enhanced)
    need = stoi_min_samples(sr)
    if len(clean) < need:
        raise StoiFailure(f"STOI failed: needs at least {need} samples at {sr} Hz "
                          f"({need / sr:.3f} s), got {len(clean)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(stoi(clean, enhanced, sr, extended=False))
        except Exception as exc:
            raise StoiFailure(f"STOI failed: {exc} ({type(exc).__name__})") from exc
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            raise StoiFailure(
                f"STOI failed: fewer than {STOI_SEGMENT} non-silent frames of "
                f"{STOI_FRAME / STOI_FS * 1000:.1f} ms once silence is removed (pystoi would "
                "return 1e-5)"
            )
    return value
