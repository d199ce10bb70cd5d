"""Music as a noise type: the five tracks of Debian's ``asterisk-moh-opsound-g722``.

The package holds about 18 minutes of music on hold (electronic and lounge tracks by three
artists, CC-BY-SA-3.0), headerless G.722 at 16 kHz like the asterisk prompts.  The music is
kept apart from the default corpus, whose fixed mixtures (and every measured number on them)
stay as they are.  Layout under the data root::

    <root>/music/noise/{train,valid,test}.wav       every track split in time, joined
    <root>/music/vctk-like/test/{clean,noisy}/<name>.wav   the corpus's test utterances in music
    <root>/music/manifest.json                       tracks, credits, licence, mixtures, sha256

* Each track is split in time as every recorded noise (:data:`kspikese.data.noise.NOISE_SPLIT`):
  its first 70 % feeds ``train``, the next 10 % ``valid``, the last 20 % ``test``, so no test
  sample of music is ever heard in training.
* Training: dynamic mixing adds ``music`` to the recipe's noise types when the experiment asks
  for it (``data: train: {mixing: dynamic, extra_noise: [music]}``, :mod:`.dynamic`); it reads
  ``noise/train.wav``.
* Test set: every ``vctk-like`` test utterance of the default corpus (its clean file, as
  written) gets a segment of the *test* music at one SNR of the balanced cycle over
  :data:`SNRS_DB` (a permutation seeded by the corpus's seed), the segment drawn from
  ``numpy.random.default_rng([seed, crc32("music"), crc32(name)])``; the pair is written with
  one common gain when the mixture would clip (:func:`kspikese.data.mixing.mix`).  The test
  voices are the corpus's, unseen in training.  Score it with ``kspikese bench music`` or
  ``kspikese evaluate --clean <root>/music/vctk-like/test/clean ...``.

Built by ``kspikese data --music`` (or on first use), resumable, and a no-op once built.
"""

import json
import time
import zlib
from pathlib import Path

import numpy as np

from kspikese import files
from kspikese.audio_io import SR
from kspikese.data import mixing, noise as noise_mod, sources
from kspikese.data.pairs import SPLITS, CorpusError, list_pairs

PACKAGE = "asterisk-moh-opsound-g722"
LICENCE = "CC-BY-SA-3.0"
# track (file stem in usr/share/asterisk/moh) -> credit (the package's debian/copyright)
TRACKS = {
    "macroform-cold_day": "Paul Shuler (Macroform)",
    "macroform-robot_dity": "Paul Shuler (Macroform)",
    "macroform-the_simplicity": "Paul Shuler (Macroform)",
    "manolo_camp-morning_coffee": "Manolo Camp",
    "reno_project-system": "Reno Project",
}
VERSION = 1
RECIPE = "vctk-like"
SNRS_DB = (0, 5, 10, 15)
TRACK_SUFFIXES = (".g722", ".wav")


def music_dir(root):
    """``<root>/music``."""
    return Path(root) / "music"


def track_files(folder):
    """``{track: path}`` when ``folder`` holds every track of :data:`TRACKS` (``.g722`` or
    ``.wav``), else ``None``."""
    found = {}
    for t in TRACKS:
        hits = [p for p in (Path(folder) / f"{t}{s}" for s in TRACK_SUFFIXES) if p.is_file()]
        if not hits:
            return None
        found[t] = hits[0]
    return found


def track_folder(root, source=None, progress=True):
    """The folder of the tracks: ``source`` (or its ``moh`` / ``usr/share/asterisk/moh``), an
    installed ``/usr/share/asterisk/moh``, or ``<root>/cache/moh`` filled once from the
    downloaded package.  Raises :class:`CorpusError` when ``source`` is given but lacks a track."""
    if source is not None:
        s = Path(source)
        for cand in (s, s / "moh", s / "usr" / "share" / "asterisk" / "moh"):
            if track_files(cand):
                return cand
        raise CorpusError(f"{s}: no music-on-hold tracks found; expected <DIR>/<track>.g722 (or "
                          f"<DIR>/usr/share/asterisk/moh/...) for the tracks {list(TRACKS)}")
    installed = Path("/usr/share/asterisk/moh")
    if track_files(installed):
        return installed

    def select(parts):
        name = parts[-1]
        return name if "moh" in parts and name.endswith(".g722") else None

    folder = sources.folder_or_extracted([], root, PACKAGE, "moh", select, progress)
    if not track_files(folder):
        raise CorpusError(f"{folder}: the unpacked {PACKAGE} lacks some of the tracks {list(TRACKS)}; "
                          "delete that folder and retry")
    return folder


def config_for(corpus_manifest):
    """Everything that decides the music set's content: its version, the SNRs, and the default
    corpus it mixes (its seed and the checksums of its test clean files, so a rebuilt corpus
    means a rebuilt test set)."""
    test = sorted((r["name"], r["clean_sha256"]) for r in corpus_manifest["files"]
                  if r["recipe"] == RECIPE and r["split"] == "test")
    digest = zlib.crc32(json.dumps(test).encode())
    return {"version": VERSION, "snrs_db": list(SNRS_DB), "recipe": RECIPE,
            "corpus_seed": corpus_manifest["config"]["seed"], "corpus_test_crc32": digest}


def ensure_music(root=None, corpus_dir=None, source=None, progress=True):
    """Build ``<root>/music`` (module docstring) unless it is complete; return that folder.

    Parameters
    ----------
    root : str or Path, optional
        The data root (default ``$KSPIKESE_DATA_DIR`` or ``./data``).
    corpus_dir : str or Path, optional
        The built default corpus whose test utterances are mixed (default ``<root>/default``,
        built first if missing).
    source : str or Path, optional
        A folder that already holds the tracks (skips ``apt-get download``).
    """
    from kspikese.data.default import ensure_default_corpus
    from kspikese.data.pairs import default_data_dir

    root = Path(root) if root is not None else default_data_dir()
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else ensure_default_corpus(root, progress=progress)
    man_path = Path(corpus_dir) / "manifest.json"
    if not man_path.exists():
        raise CorpusError(f"{man_path}: no manifest; the music test set mixes a built default corpus")
    config = config_for(json.loads(man_path.read_text()))
    out = music_dir(root)
    if status(out, config) == "complete":
        return out
    build(out, config, corpus_dir, track_folder(root, source, progress), progress)
    return out


def status(out, config):
    """``"complete"`` when ``out`` holds a finished music set of ``config`` with every listed
    file present; ``"absent"`` otherwise (a set of another config is rebuilt in place)."""
    man = Path(out) / "manifest.json"
    if not man.exists():
        return "absent"
    try:
        m = json.loads(man.read_text())
    except ValueError:
        return "absent"
    listed = [m["noise"][s]["path"] for s in SPLITS] + [r[k] for r in m["files"] for k in ("clean", "noisy")]
    ok = m.get("config") == config and all((Path(out) / p).exists() for p in listed)
    return "complete" if ok else "absent"


def build(out, config, corpus_dir, tracks_dir, progress=True):
    """Write the music set of ``config`` into ``out`` from the tracks in ``tracks_dir`` and the
    test utterances of the corpus at ``corpus_dir``; the manifest is written last."""
    from kspikese.data.audio import load, write_wav
    from kspikese.data.default import _tqdm, sweep_tmp

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    sweep_tmp(out)
    tracks = track_files(tracks_dir)
    streams, streams_info = noise_mod.split_and_join(
        [(f"{PACKAGE}:usr/share/asterisk/moh/{path.name}",
          sources.decode_prompt(path).astype(np.float32) / 32768.0, TRACKS[track])
         for track, path in _tqdm(sorted(tracks.items()), progress, desc="music", unit="track")])
    noise = {}
    for s in SPLITS:
        for d in streams_info[s]:
            d["licence"] = LICENCE
        rel = f"noise/{s}.wav"
        write_wav(out / rel, streams[s], SR)
        noise[s] = {"path": rel, "seconds": round(len(streams[s]) / SR, 3), "tracks": streams_info[s]}

    pairs = list_pairs(corpus_dir, RECIPE, "test")
    seed = config["corpus_seed"]
    perm = np.random.default_rng([seed, zlib.crc32(b"music"), zlib.crc32(b"assign")]).permutation(len(pairs))
    records = []
    for i, j in enumerate(_tqdm(perm, progress, desc="mix music", unit="utt")):
        pair = pairs[j]
        snr = SNRS_DB[i % len(SNRS_DB)]
        x = load(pair.clean)
        rng = np.random.default_rng([seed, zlib.crc32(b"music"), zlib.crc32(pair.name.encode())])
        seg, start = noise_mod.segment(streams["test"], len(x), rng)
        c, (y,), gain = mixing.mix(x, [seg], [snr])
        rel_c, rel_n = (f"{RECIPE}/test/{k}/{pair.name}.wav" for k in ("clean", "noisy"))
        write_wav(out / rel_c, c, SR)
        write_wav(out / rel_n, y, SR)
        records.append({"name": pair.name, "snr_db": snr, "gain": round(gain, 6),
                        "noise_segment": {"stream": noise["test"]["path"], "start": start,
                                          "samples": len(x)},
                        "clean": rel_c, "noisy": rel_n,
                        "clean_sha256": files.sha256(out / rel_c),
                        "noisy_sha256": files.sha256(out / rel_n)})
    records.sort(key=lambda r: r["name"])
    files.write_json(out / "manifest.json", {
        "name": "kspikese music noise", "config": config, "sample_rate": SR,
        "package": PACKAGE, "licence": LICENCE, "credits": TRACKS, "noise": noise,
        "corpus": str(Path(corpus_dir).resolve()), "files": records,
        "build_seconds": round(time.time() - t0, 1)})
    return out


def noise_stream(root, split="train"):
    """The music stream of ``split`` (float32, 16 kHz) from a built ``<root>/music``."""
    from kspikese.data.audio import load

    path = music_dir(root) / "noise" / f"{split}.wav"
    if not (music_dir(root) / "manifest.json").exists() or not path.exists():
        raise CorpusError(f"{path}: the music noise is not built; run `kspikese data --music "
                          f"--out {root}` (it fetches {PACKAGE}, about 8 MB)")
    return load(path)


def summary_text(out):
    """One line per split of the built music set at ``out``."""
    m = json.loads((Path(out) / "manifest.json").read_text())
    lines = [f"music noise ({m['package']}, {m['licence']}): "
             + ", ".join(f"{s} {m['noise'][s]['seconds'] / 60:.1f} min" for s in SPLITS)]
    lines.append(f"  {RECIPE} test in music: {len(m['files'])} utterances at SNR {m['config']['snrs_db']} dB "
                 f"-> {Path(out) / RECIPE / 'test'}")
    return "\n".join(lines)


def test_pairs(root, limit=None):
    """The music test pairs of a built ``<root>/music``; ``limit`` keeps that many, dealt over
    the voices as the tables' ``max_test`` (:func:`kspikese.corpus.balanced_subset`), so the
    same utterances as the tables' test set."""
    from kspikese.corpus import balanced_subset

    pairs = list_pairs(music_dir(root), RECIPE, "test")
    return balanced_subset(pairs, int(limit)) if limit else pairs
