"""Clean/noisy pairs of files, and the errors raised for corpus folders that are not as expected."""

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

AUDIO_EXTS = (".wav", ".flac", ".ogg")
RECIPES = ("vctk-like", "timit-ssn")
SPLITS = ("train", "valid", "test")
DEFAULT_LAYOUT = (
    "<corpus>/<recipe>/<split>/{clean,noisy}/<name>.wav with recipe in "
    f"{list(RECIPES)} and split in {list(SPLITS)}, plus <corpus>/manifest.json"
)


def voice_of(name):
    """The voice of an utterance from its name: the default corpus's ``<voice>__<line>`` (as
    :mod:`kspikese.data.default` names them; the voice is the manifest's ``speaker``), or noisy
    VCTK's ``<speaker>_<number>`` (``p232_001``); ``None`` otherwise."""
    if "__" in name:
        return name.split("__")[0]
    match = re.fullmatch(r"(p\d+)_\d+", name)
    return match.group(1) if match else None


class CorpusError(ValueError):
    """A corpus folder is missing, empty or laid out differently from what the loader expects."""


class Pair(NamedTuple):
    """One utterance: its ``name`` and the paths of its ``clean`` and ``noisy`` files."""

    name: str
    clean: Path
    noisy: Path


def default_data_dir():
    """``$KSPIKESE_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("KSPIKESE_DATA_DIR") or "data")


def audio_files(folder, exts=AUDIO_EXTS):
    """``{stem: path}`` of the audio files directly in ``folder`` (hidden/temporary files skipped)."""
    out = {}
    for p in sorted(Path(folder).iterdir()):
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."):
            out[p.stem] = p
    return out


def require_folder(folder, layout):
    """Raise :class:`CorpusError` unless ``folder`` exists and holds audio files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: folder not found; expected layout: {layout}")
    if not audio_files(folder):
        raise CorpusError(f"{folder}: no audio files in this folder; expected layout: {layout}")
    return folder


def pair_folders(clean_dir, noisy_dir, layout, n_show=5):
    """Pair the files of ``clean_dir`` and ``noisy_dir`` by name -> sorted list of :class:`Pair`.

    Raises :class:`CorpusError` when either folder is missing or empty, or when the two lists of
    names differ (the message lists the first ``n_show`` names found on one side only).
    """
    clean = audio_files(require_folder(clean_dir, layout))
    noisy = audio_files(require_folder(noisy_dir, layout))
    only_clean = sorted(set(clean) - set(noisy))
    only_noisy = sorted(set(noisy) - set(clean))
    if only_clean or only_noisy:
        msg = [f"clean files in {clean_dir} and noisy files in {noisy_dir} do not pair up:"]
        if only_clean:
            msg.append(f"{len(only_clean)} clean without noisy, first: {only_clean[:n_show]}")
        if only_noisy:
            msg.append(f"{len(only_noisy)} noisy without clean, first: {only_noisy[:n_show]}")
        raise CorpusError(" ".join(msg))
    return [Pair(k, clean[k], noisy[k]) for k in sorted(clean)]


def corpus_folder(path):
    """Accept the corpus folder itself or the data root that holds ``default/``."""
    path = Path(path)
    if not (path / "manifest.json").exists() and (path / "default" / "manifest.json").exists():
        return path / "default"
    return path


def list_pairs(corpus_dir, recipe, split):
    """Pairs of one recipe and split of the default corpus (see :data:`DEFAULT_LAYOUT`)."""
    if recipe not in RECIPES:
        raise CorpusError(f"unknown recipe {recipe!r}; expected one of {list(RECIPES)}")
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    root = corpus_folder(corpus_dir)
    if not root.is_dir():
        raise CorpusError(
            f"{root}: corpus folder not found (build it with `make data` or "
            f"kspikese.data.ensure_default_corpus()); expected layout: {DEFAULT_LAYOUT}"
        )
    base = root / recipe / split
    return pair_folders(base / "clean", base / "noisy", DEFAULT_LAYOUT)


def holdout(groups, fraction, seed, salt=b"valid"):
    """Pick ``round(fraction * N)`` of the items of ``groups`` (``{group: [items]}``), spread evenly
    over the groups: every group's items are shuffled (seeded), the groups are interleaved round
    robin, and the first ones are taken.  Returns a set of items."""
    import zlib

    order = []
    lists = []
    for g in sorted(groups):
        items = sorted(groups[g])
        rng = np.random.default_rng([seed, zlib.crc32(salt), zlib.crc32(str(g).encode())])
        lists.append([items[i] for i in rng.permutation(len(items))])
    for i in range(max((len(v) for v in lists), default=0)):
        order += [v[i] for v in lists if i < len(v)]
    k = int(round(fraction * len(order)))
    return set(order[:k])


def prepare_main(pairs_fn, doc, noun="pairs", argv=None):
    """The ``data_prep/prepare_*.py`` scripts: build a user's corpus cache and print split sizes.

    Parses ``ROOT [--cache DIR] [--seed N]`` from ``argv`` (default ``sys.argv[1:]``), calls
    ``pairs_fn(root, split, seed=, cache=)`` for each of :data:`SPLITS` and prints
    ``"<split>: <n> <noun>"``.  Returns ``{split: n}``.
    """
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--cache", default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    sizes = {}
    for split in SPLITS:
        sizes[split] = len(pairs_fn(a.root, split, seed=a.seed, cache=a.cache))
        print(f"{split}: {sizes[split]} {noun}")
    return sizes
