"""More voices for the default corpus: the voice packs of Debian's ``hedgewars-data``.

The package holds about 15 minutes of short acted lines ("Hello", "Take cover!", ...) in 15
voice packs under ``usr/share/games/hedgewars/Data/Sounds/voices/<Pack>/*.ogg`` (44.1 kHz, mono
or stereo).  ``Robot`` is a processed (vocoded) voice and is left out.  Licence (the package's
``debian/copyright``, ``Files: share/hedgewars/Data/Sounds/*``): GFDL-1.3, (c) Andrey Korotaev.

Only the voice folders are extracted from the ``.deb`` (``dpkg-deb --fsys-tarfile``) into
``<root>/cache/hedgewars/voices``.

Utterances: the lines are mostly shorter than one 16,384-sample frame, so the lines of one pack
are joined into utterances of at least ``join_s`` seconds: every line is mixed to mono, resampled
to 16 kHz and scaled to the corpus's active-speech level, the lines are taken in a seeded order,
and consecutive lines are joined with ``gap_s`` seconds of silence until the utterance reaches
``join_s``; a last remainder shorter than ``join_s`` joins the utterance before it.
"""

import warnings
import zlib
from pathlib import Path

import numpy as np

from kspikese import audio_io
from kspikese.data import mixing
from kspikese.data.pairs import CorpusError
from kspikese.audio_io import SR

PACKAGE = "hedgewars-data"
LICENCE = "GFDL-1.3"
CREDIT = "Andrey Korotaev and the Hedgewars Project (hedgewars-data)"
VOICES_PATH = ("usr", "share", "games", "hedgewars", "Data", "Sounds", "voices")
LINE_EXTS = (".ogg", ".wav", ".flac")
# the split of the packs: validation and test packs are voices no training example contains
PACKS = {
    "train": ["Classic", "Default", "Default_es", "Default_pl", "Default_ru", "HillBilly",
              "Russian", "Russian_pl", "Singer", "Surfer"],
    "valid": ["British", "Mobster"],
    "test": ["Default_uk", "Pirate"],
}
DROPPED = ("Robot",)  # processed voice
JOIN_S = 3.0
GAP_S = 0.25
PREFIX = "hw_"


def voice_name(pack):
    """The corpus's voice name of a pack: ``hw_<Pack>``."""
    return f"{PREFIX}{pack}"


def split_config(packs=None, join_s=JOIN_S, gap_s=GAP_S):
    """What decides the hedgewars part of a corpus (recorded in its config)."""
    packs = PACKS if packs is None else packs
    return {"packs": {s: list(packs.get(s, [])) for s in ("train", "valid", "test")},
            "join_s": float(join_s), "gap_s": float(gap_s)}


def speakers(config):
    """``{voice: (package, licence, credit)}`` of the packs in a :func:`split_config`."""
    return {voice_name(p): (PACKAGE, LICENCE, CREDIT)
            for s in ("train", "valid", "test") for p in config["packs"][s]}


def voice_splits(config):
    """``{voice: split}`` of the packs in a :func:`split_config`."""
    return {voice_name(p): s for s in ("train", "valid", "test") for p in config["packs"][s]}


def find_voices_dir(root, source=None, progress=True):
    """A folder holding ``<Pack>/*.ogg``: under ``source`` (``<source>/hedgewars/voices`` or
    ``<source>/usr/share/games/hedgewars/Data/Sounds/voices``), the installed package, or the
    voice folders extracted from the downloaded ``.deb`` into ``<root>/cache/hedgewars``."""
    from kspikese.data import sources

    cands = []
    if source is not None:
        cands += [Path(source) / "hedgewars" / "voices", Path(source).joinpath(*VOICES_PATH)]
    cands.append(Path("/").joinpath(*VOICES_PATH))

    def select(parts):
        if "voices" in parts[:-1] and parts[-2] != "voices":
            return "/".join(parts[parts.index("voices"):])
        return None

    found = sources.folder_or_extracted(cands, root, PACKAGE, "hedgewars", select, progress)
    return found if found in cands else found / "voices"


def list_lines(voices_dir, packs):
    """``{pack: [(line_id, path)]}`` of the audio files of every pack; :class:`CorpusError` when
    a pack is missing or empty (the message names the folder and the packs expected)."""
    out = {}
    for pack in packs:
        base = Path(voices_dir) / pack
        items = sorted((p.stem, p) for p in base.glob("*")
                       if p.is_file() and p.suffix.lower() in LINE_EXTS) if base.is_dir() else []
        if not items:
            raise CorpusError(f"{base}: no voice lines (*.ogg) found; expected {voices_dir}/<Pack>/*.ogg "
                              f"for the packs {list(packs)}")
        out[pack] = items
    return out


def read_line(path):
    """One line as float32 mono at 16 kHz (stereo mixed down), or ``None`` when it is silent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = audio_io.read_audio(path, SR)
    if not np.any(np.abs(x) > 1e-4):
        return None
    return mixing.normalize_level(x)


def join_lines(lines, seed, pack, join_s=JOIN_S, gap_s=GAP_S):
    """Join the lines of one pack into utterances (see module docstring).

    Parameters
    ----------
    lines : list of (str, numpy.ndarray)
        ``(line_id, audio)``, audio at 16 kHz and the corpus's speech level.
    seed : int
        The corpus seed (the order of the lines is drawn from ``(seed, crc32(pack))``).

    Returns
    -------
    list of (numpy.ndarray, list of str)
        Every utterance and the ids of the lines it holds, in order.
    """
    if not lines:
        return []
    rng = np.random.default_rng([int(seed), zlib.crc32(b"hedgewars-order"), zlib.crc32(pack.encode())])
    order = [lines[i] for i in rng.permutation(len(lines))]
    gap = np.zeros(int(round(gap_s * SR)), np.float32)
    groups, cur, cur_len = [], [], 0
    for lid, x in order:
        cur.append((lid, x))
        cur_len += len(x) + (len(gap) if len(cur) > 1 else 0)
        if cur_len >= join_s * SR:
            groups.append(cur)
            cur, cur_len = [], 0
    if cur:
        if groups:
            groups[-1] += cur
        else:
            groups.append(cur)
    out = []
    for g in groups:
        parts = []
        for k, (_, x) in enumerate(g):
            if k:
                parts.append(gap)
            parts.append(x)
        out.append((np.concatenate(parts).astype(np.float32), [lid for lid, _ in g]))
    return out


def utterances(root, config, seed, source=None, progress=True):
    """``{voice: [(utterance_id, int16 audio, source description)]}`` of every configured pack.

    The int16 audio is the joined utterance (at -26 dBFS active level, clipped to int16 range);
    the source description lists the joined lines, e.g. ``British/Amazing.ogg+British/Hello.ogg``.
    """
    packs = [p for s in ("train", "valid", "test") for p in config["packs"][s]]
    if not packs:
        return {}
    bad = sorted(set(packs) & set(DROPPED))
    if bad:
        raise CorpusError(f"hedgewars packs {bad} are processed voices and may not be used")
    voices_dir = find_voices_dir(root, source, progress)
    listing = list_lines(voices_dir, packs)
    out = {}
    for pack in packs:
        lines = [(lid, x) for lid, p in listing[pack] if (x := read_line(p)) is not None]
        ext = {lid: p.suffix for lid, p in listing[pack]}
        utts = join_lines(lines, seed, pack, config["join_s"], config["gap_s"])
        out[voice_name(pack)] = [
            (f"u{k:03d}", np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16),
             "+".join(f"{pack}/{lid}{ext[lid]}" for lid in ids))
            for k, (x, ids) in enumerate(utts)]
    return out
