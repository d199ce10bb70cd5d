"""TIMIT with speech-shaped noise, the paper's second data set, built from a TIMIT copy users own.

Input: a TIMIT tree ``<root>/TRAIN/<DR>/<SPEAKER>/<UTT>.WAV`` and ``<root>/TEST/...`` (any letter
case; ``.WAV`` files in NIST SPHERE or RIFF; a ``.WAV.wav`` RIFF copy next to a SPHERE file is
used once).  Every utterance is mixed with speech-shaped noise at each of -6, -3, 0, +3, +6 dB, as
the paper does (20,790 + 2,310 training/validation and 8,400 test mixtures = 5 x TIMIT).  The SSN
generator, the activity detector and the mixing are the default corpus's; the SSN filter follows
the LTAS of the TIMIT training speech.  Validation = 10 % of the training *speakers* (seeded).

Mixtures are cached under ``cache`` (default ``<data root>/timit-ssn``)::

    <cache>/<split>/clean/<DR>_<SPK>_<UTT>.wav           one clean file per utterance
    <cache>/<split>/noisy/<DR>_<SPK>_<UTT>_snr<+6>.wav   one per SNR
    <cache>/ssn_filter.json, <cache>/manifest.json
"""

import json
import zlib
from pathlib import Path

import numpy as np

from kspikese import files
from kspikese.data import mixing, noise as noise_mod
from kspikese.data.pairs import SPLITS, CorpusError, Pair, default_data_dir, holdout
from kspikese.audio_io import SR

SNRS = (-6, -3, 0, 3, 6)
LAYOUT = "<root>/TRAIN/<DR>/<SPEAKER>/<UTT>.WAV and <root>/TEST/<DR>/<SPEAKER>/<UTT>.WAV (NIST SPHERE or RIFF)"


def _subdir(root, name):
    for p in Path(root).iterdir():
        if p.is_dir() and p.name.lower() == name.lower():
            return p
    return None


def find_utterances(root, part):
    """``{DR_SPK_UTT: path}`` of the ``.WAV`` files under ``<root>/<part>`` (part TRAIN or TEST)."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: TIMIT folder not found; expected layout: {LAYOUT}")
    base = _subdir(root, part)
    if base is None:
        raise CorpusError(f"{root}: no {part} folder; expected layout: {LAYOUT}")
    out = {}
    for p in sorted(base.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        low = p.name.lower()
        if not low.endswith(".wav"):
            continue
        stem = p.name[:-8] if low.endswith(".wav.wav") else p.name[:-4]
        rel = p.parent.relative_to(base).parts
        if len(rel) < 2:
            continue
        key = "_".join([rel[-2].upper(), rel[-1].upper(), stem.upper()])
        out.setdefault(key, p)  # sorted: X.WAV comes before X.WAV.wav
    if not out:
        raise CorpusError(f"{base}: no .WAV files found; expected layout: {LAYOUT}")
    return out


def timit_pairs(root, split, seed=0, cache=None, snrs=SNRS, valid_fraction=0.1, progress=True):
    """Pairs of one split of TIMIT + SSN (see module docstring); builds the missing mixtures."""
    from kspikese.data.audio import load, write_wav

    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    cache = Path(cache) if cache is not None else default_data_dir() / "timit-ssn"
    train = find_utterances(root, "TRAIN")
    speakers = {}
    for k in train:
        speakers.setdefault(k.split("_")[0], []).append(k.split("_")[1])
    held = holdout({dr: sorted(set(v)) for dr, v in speakers.items()}, valid_fraction, seed,
                   salt=b"timit-valid")
    if split == "test":
        utts = find_utterances(root, "TEST")
    else:
        utts = {k: p for k, p in train.items() if (k.split("_")[1] in held) == (split == "valid")}
    h = _ssn_filter(train, cache, seed)

    pairs = []
    items = sorted(utts.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"timit-ssn {split}", unit="utt", leave=False)
    for key, path in items:
        clean_p = cache / split / "clean" / f"{key}.wav"
        noisy_p = [cache / split / "noisy" / f"{key}_snr{s:+d}.wav" for s in snrs]
        if not (clean_p.exists() and all(p.exists() for p in noisy_p)):
            x = mixing.normalize_level(load(path))
            rng = np.random.default_rng([seed, zlib.crc32(b"timit-ssn"), zlib.crc32(key.encode())])
            noises = [noise_mod.speech_shaped_noise(len(x), h, rng) for _ in snrs]
            c, ys, _ = mixing.mix(x, noises, snrs)
            for p, y in zip(noisy_p, ys):
                write_wav(p, y, SR)
            write_wav(clean_p, c, SR)  # last: its presence marks a finished utterance
        pairs += [Pair(f"{key}_snr{s:+d}", clean_p, p) for s, p in zip(snrs, noisy_p)]
    return pairs


def _ssn_filter(train, cache, seed, limit=1000):
    """The SSN filter from the LTAS of (up to ``limit``, seeded) TIMIT training utterances,
    computed once and kept in ``<cache>/ssn_filter.json``."""
    from kspikese.data.audio import load

    p = Path(cache) / "ssn_filter.json"
    if p.exists():
        return np.asarray(json.loads(p.read_text())["h"])
    keys = sorted(train)
    if len(keys) > limit:
        rng = np.random.default_rng([seed, zlib.crc32(b"timit-ltas")])
        keys = [keys[i] for i in sorted(rng.choice(len(keys), limit, replace=False))]
    f, psd = noise_mod.ltas(mixing.normalize_level(load(train[k])) for k in keys)
    h = noise_mod.ssn_filter(f, psd)
    files.write_json(p, {"utterances": len(keys), "freqs_hz": f.tolist(), "psd": psd.tolist(), "h": h.tolist()})
    return h
