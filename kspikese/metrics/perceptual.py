"""PESQ and STOI: thin wrappers around the reference packages the field uses.

* PESQ: ITU-T P.862.2 wide-band MOS-LQO, ``pesq.pesq(16000, clean, enhanced, 'wb')`` (the raw
  value the package returns).  At 8 kHz the narrow-band P.862 mode is used instead.  The package's
  own errors (e.g. "No utterances detected" for a reference without speech) are re-raised as
  :class:`PesqFailure`, a ``ValueError`` whose message says which measure failed.
* STOI: ``pystoi.stoi(clean, enhanced, fs, extended=False)`` (Taal et al. 2011; pystoi resamples to
  10 kHz itself).
"""

import numpy as np


class PesqFailure(ValueError):
    """The pesq package could not score a pair (its message is kept)."""


def pesq_score(clean, enhanced, sr=16000):
    """PESQ MOS-LQO: wide-band at 16 kHz, narrow-band at 8 kHz."""
    import pesq as _pesq

    if sr not in (8000, 16000):
        raise ValueError(f"PESQ needs 8000 or 16000 Hz audio, got sr={sr}")
    mode = "wb" if sr == 16000 else "nb"
    try:
        return float(_pesq.pesq(sr, np.asarray(clean), np.asarray(enhanced), mode))
    except _pesq.PesqError as exc:
        msg = exc.args[0] if exc.args else ""
        msg = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
        raise PesqFailure(f"PESQ failed: {msg} ({type(exc).__name__})") from exc


def stoi_score(clean, enhanced, sr=16000):
    """Classic STOI (``extended=False``) in [0, 1]."""
    from pystoi import stoi

    return float(stoi(np.asarray(clean), np.asarray(enhanced), sr, extended=False))
