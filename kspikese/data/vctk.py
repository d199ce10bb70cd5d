"""Loader for the noisy VCTK corpus (Valentini-Botinhao et al.), which users download themselves.

Expected layout under ``root``::

    clean_trainset_28spk_wav/  noisy_trainset_28spk_wav/   28 training speakers (p226_001.wav ...)
    clean_testset_wav/         noisy_testset_wav/          2 test speakers

The files are 48 kHz; they are resampled to 16 kHz with librosa once and cached as 16 kHz float
WAV under ``cache`` (default ``<data root>/cache/vctk-16k``), written atomically, so a re-run
reuses them.  Splits: ``test`` = the test set (the paper's 2 speakers); ``valid`` = held-out
utterances of the 28 training speakers (``valid_fraction``, seeded, spread evenly over the
speakers); ``train`` = the rest.
"""

from pathlib import Path

from kspikese import audio_io
from kspikese.data.pairs import SPLITS, CorpusError, Pair, default_data_dir, holdout, pair_folders

LAYOUT = (
    "<root>/clean_trainset_28spk_wav/*.wav, <root>/noisy_trainset_28spk_wav/*.wav, "
    "<root>/clean_testset_wav/*.wav, <root>/noisy_testset_wav/*.wav (Valentini noisy VCTK)"
)
FOLDERS = {"train": ("clean_trainset_28spk_wav", "noisy_trainset_28spk_wav"),
           "test": ("clean_testset_wav", "noisy_testset_wav")}


def speaker_of(name):
    """``p226_001`` -> ``p226``."""
    return name.split("_")[0]


def vctk_pairs(root, split, seed=0, valid_fraction=0.1, cache=None, progress=True):
    """Pairs of one split of noisy VCTK at 16 kHz (see module docstring).

    ``cache=False`` returns the original 48 kHz paths (readers then resample on every read).
    """
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: VCTK folder not found; expected layout: {LAYOUT}")
    clean_dir, noisy_dir = FOLDERS["test" if split == "test" else "train"]
    pairs = pair_folders(root / clean_dir, root / noisy_dir, LAYOUT)
    if split != "test":
        groups = {}
        for p in pairs:
            groups.setdefault(speaker_of(p.name), []).append(p.name)
        held = holdout(groups, valid_fraction, seed, salt=b"vctk-valid")
        pairs = [p for p in pairs if (p.name in held) == (split == "valid")]
    if cache is False:
        return pairs
    cache = Path(cache) if cache is not None else default_data_dir() / "cache" / "vctk-16k"
    return [_cached(p, cache / clean_dir, cache / noisy_dir) for p in _progress(pairs, progress, split)]


def _progress(pairs, progress, split):
    if not progress:
        return pairs
    from tqdm import tqdm

    return tqdm(pairs, desc=f"vctk {split} -> 16 kHz", unit="pair", leave=False)


def _cached(pair, clean_dir, noisy_dir):
    """Resample one pair to 16 kHz into the cache (skipped when already there)."""
    from kspikese.data.audio import load, write_wav

    out = []
    for src, d in ((pair.clean, clean_dir), (pair.noisy, noisy_dir)):
        dst = d / f"{pair.name}.wav"
        if not dst.exists():
            write_wav(dst, load(src), audio_io.SR)
        out.append(dst)
    return Pair(pair.name, out[0], out[1])
