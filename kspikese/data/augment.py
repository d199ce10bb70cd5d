"""Augmentation of clean training speech for dynamic mixing: speed perturbation, random EQ,
a random low shelf, reverberation.  Switched on in the experiment YAML under
``data: train: augment:``::

    augment:
      speed: [0.9, 1.1]                            # factor range; null = off
      eq: {probability: 0.5, gain_db: [-6, 6]}     # one random peaking filter; null = off
      low_shelf: {probability: 0.5, gain_db: [-24, 6], freq_hz: [150, 500]}   # null = off
      reverb: {probability: 0.3, rt60_s: [0.2, 0.6]}   # needs the extra kspikese[augment]

Every draw comes from the ``numpy.random.Generator`` the caller passes (dynamic mixing seeds it
by ``(seed, epoch, example)``).

- Speed perturbation by resampling: a crop of ``round(f L)`` samples is resampled (soxr, as
  everywhere in kspikese) to ``L`` samples, i.e. played ``f`` times faster; tempo and pitch both
  scale by ``f``.
- Random EQ: one peaking biquad (RBJ audio-EQ cookbook) with centre frequency log-uniform in
  100 Hz .. 6 kHz, ``Q`` uniform in 0.5 .. 2 and gain uniform in ``gain_db``:
  ``A = 10^(g/40)``, ``w0 = 2 pi f0 / fs``, ``alpha = sin(w0) / (2 Q)``,
  ``b = [1 + alpha A, -2 cos w0, 1 - alpha A]``, ``a = [1 + alpha / A, -2 cos w0, 1 - alpha / A]``.
- Random low shelf (spectral tilt of the low band): one RBJ low-shelf biquad with shelf slope
  ``S = 1``, corner frequency log-uniform in ``freq_hz`` and gain uniform in ``gain_db``:
  ``A = 10^(g/40)``, ``alpha = sin(w0) / sqrt(2)``, ``c = cos w0``,
  ``b = A [(A+1) - (A-1) c + 2 sqrt(A) alpha,  2 ((A-1) - (A+1) c),  (A+1) - (A-1) c - 2 sqrt(A) alpha]``,
  ``a = [(A+1) + (A-1) c + 2 sqrt(A) alpha,  -2 ((A-1) + (A+1) c),  (A+1) + (A-1) c - 2 sqrt(A) alpha]``;
  its gain is ``10^(g/20)`` at 0 Hz and 1 at Nyquist.  Voices recorded with a strong low band
  (studio prompts) and high-passed ones (game voices) then both occur for every training voice,
  so the band below a few hundred hertz cannot be judged speech or noise by the voice alone.
- Reverberation: a room impulse response from the image method of ``pyroomacoustics`` (a
  shoebox room 3-10 m x 3-8 m x 2.5-4 m, wall absorption and reflection order from Sabine's
  formula for an RT60 drawn from ``rt60_s``, source and microphone at random places at least
  0.5 m from the walls).  The reverberant speech is the training *target* as well as the
  speech in the mixture (the models learn to remove noise, not reverberation).
"""

import numpy as np
from scipy import signal

from kspikese.config import check_keys
from kspikese.audio_io import SR, resample

KEYS = {"speed", "eq", "low_shelf", "reverb"}
# filter augmentations: key -> {range key: (default, lowest, highest)}
FILTERS = {"eq": {"gain_db": ([-6, 6], -24, 24)},
           "low_shelf": {"gain_db": ([-24, 6], -40, 24), "freq_hz": ([150, 500], 20, 4000)},
           "reverb": {"rt60_s": ([0.2, 0.6], 0.05, 3.0)}}
EXTRA = "kspikese[augment]"


def check_options(augment, where="augment"):
    """Raise ``ValueError`` naming ``where`` unless ``augment`` is a valid augmentation mapping;
    returns it with defaults filled in (``{"speed": None|[lo, hi], "eq": None|{...},
    "low_shelf": None|{...}, "reverb": None|{...}}``)."""
    augment = check_keys(None if augment is False else augment, KEYS, where)
    out = {"speed": None, **{key: None for key in FILTERS}}
    if augment.get("speed") is not None:
        out["speed"] = check_range(augment["speed"], f"{where}.speed", 0.5, 2.0)
    for key, ranges in FILTERS.items():
        v = augment.get(key)
        if v in (None, False):
            continue
        v = {} if v is True else v
        if not isinstance(v, dict) or set(v) - {"probability", *ranges}:
            raise ValueError(f"{where}.{key}: expected true or a mapping with keys "
                             f"{', '.join(['probability', *ranges])}; got {v!r}")
        p = v.get("probability", 0.5)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"{where}.{key}.probability: expected a number in [0, 1], got {p!r}")
        out[key] = {"probability": float(p)}
        for name, (default, lo, hi) in ranges.items():
            out[key][name] = check_range(v.get(name, default), f"{where}.{key}.{name}", lo, hi)
    return out


def check_range(value, where, lo=-np.inf, hi=np.inf):
    """``[a, b]`` with ``lo <= a <= b <= hi`` as floats, else ``ValueError`` naming ``where``."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
    if not ok or not lo <= value[0] <= value[1] <= hi:
        raise ValueError(f"{where}: expected [low, high] with {lo} <= low <= high <= {hi}, got {value!r}")
    return [float(value[0]), float(value[1])]


def needs_extra(options):
    """Raise ``ImportError`` naming the extra when reverberation is asked for but
    ``pyroomacoustics`` is not installed."""
    if options.get("reverb"):
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError:
            raise ImportError(f"data.train.augment.reverb needs pyroomacoustics: install the "
                              f"optional extra, pip install '{EXTRA}' (or set reverb: null)") from None


def speed_factor(options, rng):
    """The speed factor of one example (1.0 when speed perturbation is off)."""
    return 1.0 if options.get("speed") is None else float(rng.uniform(*options["speed"]))


def change_speed(x, factor, length):
    """``x`` played ``factor`` times faster (resampled from ``SR * factor`` to ``SR``), cut or
    zero-padded to ``length`` samples."""
    y = x if factor == 1.0 else resample(np.asarray(x, np.float32), int(round(SR * factor)), SR)
    out = np.zeros(length, np.float32)
    out[: min(length, len(y))] = y[:length]
    return out


def peaking_eq(x, f0, q, gain_db, sr=SR):
    """``x`` through the RBJ peaking biquad (see module docstring)."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_]
    a = [1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_]
    return signal.lfilter(b, a, x).astype(np.float32)


def low_shelf(x, f0, gain_db, sr=SR):
    """``x`` through the RBJ low-shelf biquad with slope 1 (see module docstring)."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0 / sr
    c, k = np.cos(w0), 2 * np.sqrt(a_) * np.sin(w0) / np.sqrt(2.0)
    b = a_ * np.array([(a_ + 1) - (a_ - 1) * c + k, 2 * ((a_ - 1) - (a_ + 1) * c),
                       (a_ + 1) - (a_ - 1) * c - k])
    a = np.array([(a_ + 1) + (a_ - 1) * c + k, -2 * ((a_ - 1) + (a_ + 1) * c),
                  (a_ + 1) + (a_ - 1) * c - k])
    return signal.lfilter(b, a, x).astype(np.float32)


def room_impulse_response(rng, rt60, sr=SR):
    """An image-method RIR of a random shoebox room with reverberation time ``rt60`` seconds."""
    import pyroomacoustics as pra

    dims = rng.uniform([3.0, 3.0, 2.5], [10.0, 8.0, 4.0])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 12))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    return np.asarray(room.rir[0][0], np.float64)


def apply(x, options, rng):
    """EQ, low shelf and reverberation of one clean crop (speed is applied by the cropper, which
    needs the factor first).  Returns float32 of the same length."""
    x = np.asarray(x, np.float32)
    eq = options.get("eq")
    if eq and rng.uniform() < eq["probability"]:
        f0 = float(np.exp(rng.uniform(np.log(100.0), np.log(6000.0))))
        x = peaking_eq(x, f0, float(rng.uniform(0.5, 2.0)), float(rng.uniform(*eq["gain_db"])))
    shelf = options.get("low_shelf")
    if shelf and rng.uniform() < shelf["probability"]:
        f0 = float(np.exp(rng.uniform(*np.log(shelf["freq_hz"]))))
        x = low_shelf(x, f0, float(rng.uniform(*shelf["gain_db"])))
    rev = options.get("reverb")
    if rev and rng.uniform() < rev["probability"]:
        h = room_impulse_response(rng, float(rng.uniform(*rev["rt60_s"])))
        x = signal.fftconvolve(x, h / np.max(np.abs(h)))[: len(x)].astype(np.float32)
    return x
