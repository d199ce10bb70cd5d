"""Where the default corpus's recordings come from, and how they are fetched without root.

Speech: the Debian packages ``asterisk-core-sounds-{en,es,fr,it,ru}-g722`` (studio prompts of five
voices, headerless G.722 at 64 kbit/s = 8,000 bytes per second, 16 kHz wideband).  Each package is
fetched with ``apt-get download`` into ``<root>/cache/debs/`` and unpacked with ``dpkg -x`` into
``<root>/cache/asterisk/`` (no root install, no change to the system).  A folder that already holds
the trees (``--source``, e.g. an installed ``/usr/share/asterisk/sounds``) skips all that.

More voices come from ``hedgewars-data`` (:mod:`kspikese.data.hedgewars`, fetched the same way).

Noise recordings: ``town/train.ogg`` and ``nature/amazon-rainforest.ogg`` of the PyPI ``ambience``
wheel, and the tileset ambience (rain, wind, day, night) of Debian's ``megaglest-data``, of which
only the ``tilesets/*/sounds`` files are extracted.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from kspikese.data.pairs import CorpusError

# voice folder -> Debian package, licence, credit (from the packages' debian/copyright)
SPEAKERS = {
    "en_US_f_Allison": ("asterisk-core-sounds-en-g722", "CC-BY-SA-3.0", "Allison Smith"),
    "es_MX_f_Allison": ("asterisk-core-sounds-es-g722", "CC-BY-SA-3.0", "Allison Smith"),
    "fr_CA_f_June": ("asterisk-core-sounds-fr-g722", "CC-BY-SA-3.0", "June Wallack"),
    "it_IT_m_Carlo": ("asterisk-core-sounds-it-g722", "CC-BY-3.0", "Carlo Flora"),
    "ru_RU_f_IvrvoiceRU": ("asterisk-core-sounds-ru-g722", "CC-BY-3.0", "Maxim Topal (ivrvoice.ru)"),
}
TEST_SPEAKERS = ("ru_RU_f_IvrvoiceRU",)  # the asterisk test voice (hedgewars: hedgewars.PACKS)
TRAIN_SPEAKERS = tuple(s for s in SPEAKERS if s not in TEST_SPEAKERS)
SKIP_FOLDERS = ("silence",)  # asterisk's silence/1..10 prompts hold no speech
MEGAGLEST = "megaglest-data"
MEGAGLEST_LICENCE = "CC-BY-SA-3.0 (The Glest Team)"

# noise type -> (ambience file under site-packages/sounds, credit)
AMBIENCE = {
    "train": ("town/train.ogg", "ambience wheel; SDLx, freesound.org sound 259988"),
    "rainforest": ("nature/amazon-rainforest.ogg", "ambience wheel; AdrienPola, freesound.org sound 413976"),
}
# noise type -> file names (in megaglest tilesets/*/sounds) that hold it
MEGAGLEST_TYPES = {
    "rain": ("rain.ogg", "rain.wav"),
    "wind": ("wind.ogg",),
    "nature-day": ("day.ogg", "sunny_day.ogg", "desertday.ogg"),
    "nature-night": ("night.ogg", "nightime.ogg"),
}
MIN_RECORDING_S = 5.0  # shorter megaglest effects (a 3.8 s rain loop) are left out


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- fetching debs


def apt_download(packages, cache, progress=True):
    """Download the ``.deb`` of each package into ``cache`` (skipping those already there).

    Runs ``apt-get download`` in a scratch folder and moves finished files in, so a failed
    download leaves nothing behind.  When it fails and we are root, runs ``apt-get update`` once
    and retries; otherwise raises :class:`CorpusError` saying what to run.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    debs = {}
    missing = []
    for pkg in packages:
        have = sorted(cache.glob(f"{pkg}_*.deb"))
        if have:
            debs[pkg] = have[-1]
        else:
            missing.append(pkg)
    if not missing:
        return debs
    if shutil.which("apt-get") is None:
        raise CorpusError(
            f"cannot fetch {missing}: apt-get is not available on this machine. Copy the "
            "asterisk sound trees from a Debian machine and pass their folder with --source DIR"
        )
    scratch = cache / ".partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        if progress:
            log(f"apt-get download {' '.join(missing)}")
        res = _run(["apt-get", "download", *missing], scratch)
        if res.returncode != 0 and os.geteuid() == 0:
            log("apt-get download failed; running apt-get update once and retrying")
            _run(["apt-get", "update"], scratch)
            for p in scratch.iterdir():
                p.unlink()
            res = _run(["apt-get", "download", *missing], scratch)
        if res.returncode != 0:
            hint = (
                "run `sudo apt-get update` and retry"
                if os.geteuid() != 0
                else "check that apt's sources list Debian's main archive"
            )
            raise CorpusError(
                f"`apt-get download {' '.join(missing)}` failed ({res.stderr.strip()[-400:]}). "
                f"{hint}, or pass a folder that already holds the sound trees with --source DIR "
                "(e.g. /usr/share/asterisk/sounds after `apt-get install "
                + " ".join(missing)
                + "`)"
            )
        for pkg in missing:
            got = sorted(scratch.glob(f"{pkg}_*.deb"))
            if not got:
                raise CorpusError(f"apt-get download {pkg} succeeded but left no {pkg}_*.deb")
            os.replace(got[-1], cache / got[-1].name)
            debs[pkg] = cache / got[-1].name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return debs


def _run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def unpack_debs(debs, dest):
    """``dpkg -x`` every deb into a scratch folder, then rename it to ``dest`` (atomic)."""
    dest = Path(dest)
    if dest.is_dir():
        return dest
    if shutil.which("dpkg") is None:
        raise CorpusError("dpkg is not available to unpack the packages; use --source DIR instead")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in debs:
        res = _run(["dpkg", "-x", str(Path(deb).resolve()), str(tmp.resolve())], dest.parent)
        if res.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CorpusError(f"dpkg -x {deb} failed: {res.stderr.strip()[-400:]}")
    os.replace(tmp, dest)
    return dest


def find_sounds_dir(folder):
    """The folder holding the speaker trees: ``folder`` itself or a ``sounds`` folder below it."""
    folder = Path(folder)
    for cand in (folder, folder / "sounds", folder / "asterisk" / "sounds",
                 folder / "usr" / "share" / "asterisk" / "sounds"):
        if cand.is_dir() and any((cand / s).is_dir() for s in SPEAKERS):
            missing = [s for s in SPEAKERS if not (cand / s).is_dir()]
            if missing:
                raise CorpusError(
                    f"{cand}: the speech source lacks the voices {missing}; expected "
                    f"{cand}/<voice>/**/*.g722 for the voices {list(SPEAKERS)}"
                )
            return cand
    raise CorpusError(
        f"{folder}: no asterisk sound trees found; expected <DIR>/<voice>/**/*.g722 (or "
        f"<DIR>/usr/share/asterisk/sounds/<voice>/...) for the voices {list(SPEAKERS)}"
    )


def speech_source(root, source=None, progress=True):
    """The asterisk sounds folder: ``source`` if given, else downloaded and unpacked in the cache."""
    if source is not None:
        return find_sounds_dir(source)
    cache = Path(root).resolve() / "cache"
    debs = apt_download([v[0] for v in SPEAKERS.values()], cache / "debs", progress)
    return find_sounds_dir(unpack_debs([debs[v[0]] for v in SPEAKERS.values()], cache / "asterisk"))


# ----------------------------------------------------------------------------- speech prompts


def list_prompts(sounds_dir):
    """``{voice: [(prompt_id, path)]}``: every ``.g722``/``.wav`` below each voice folder, except
    the ``silence`` prompts.  ``prompt_id`` is the path inside the voice folder with ``/`` -> ``__``
    and without the extension, e.g. ``digits__hundred``."""
    out = {}
    for voice in SPEAKERS:
        base = Path(sounds_dir) / voice
        items = []
        for p in sorted(base.rglob("*")):
            if p.suffix.lower() not in (".g722", ".wav") or not p.is_file():
                continue
            rel = p.relative_to(base).with_suffix("")
            if rel.parts[0] in SKIP_FOLDERS:
                continue
            items.append(("__".join(rel.parts), p))
        if not items:
            raise CorpusError(f"{base}: no .g722 prompts found for voice {voice}")
        out[voice] = items
    return out


def decode_prompt(path):
    """Decode a prompt to int16 at 16 kHz: headerless G.722 (64 kbit/s; two samples per byte) or a
    WAV file.  An empty file gives an empty array."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        from kspikese.data.audio import load

        x = load(path)
        return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    import G722

    raw = path.read_bytes()
    if not raw:  # the ru package ships an empty is.g722: an empty prompt, dropped by the builder
        return np.zeros(0, np.int16)
    return np.asarray(G722.G722(16000, 64000).decode(raw), dtype=np.int16)


# ----------------------------------------------------------------------------- noise recordings


def ambience_sounds_dir():
    """``site-packages/sounds`` of the installed ``ambience`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("ambience")
    if spec is None or spec.origin is None:
        raise CorpusError("the PyPI package `ambience` is not installed (pip install ambience)")
    d = Path(spec.origin).parent / "sounds"
    if not d.is_dir():
        raise CorpusError(f"{d}: the ambience wheel's sounds folder is missing")
    return d


def extract_from_deb(deb, dest, select):
    """Extract some files of a ``.deb`` into ``dest`` (atomic: a scratch folder renamed at the end).

    ``select(parts)`` gets the path parts of every regular file in the package's data archive and
    returns its relative path under ``dest``, or ``None`` to skip it.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            name = select(Path(m.name).parts) if m.isfile() else None
            if name is not None:
                m.name = name
                tar.extract(m, tmp, filter="data")
    if proc.wait() != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpusError(f"dpkg-deb --fsys-tarfile {deb} failed")
    os.replace(tmp, dest)
    return dest


def folder_or_extracted(candidates, root, package, name, select, progress=True):
    """The first existing folder of ``candidates``; else ``<root>/cache/<name>``, filled once
    with the members of ``package``'s downloaded ``.deb`` that ``select(parts)`` maps to a path."""
    for c in candidates:
        if c.is_dir():
            return c
    cache = Path(root).resolve() / "cache"
    dest = cache / name
    if not dest.is_dir():
        deb = apt_download([package], cache / "debs", progress)[package]
        extract_from_deb(deb, dest, select)
    return dest


def megaglest_tilesets(root, source=None, progress=True):
    """A folder holding megaglest's ``tilesets/*/sounds``: under ``source``, installed, or fetched
    into ``<root>/cache/megaglest`` (only the tileset sounds are extracted from the deb)."""
    cands = []
    if source is not None:
        s = Path(source)
        cands += [s / "megaglest" / "tilesets", s / "usr" / "share" / "games" / "megaglest" / "tilesets"]
    cands.append(Path("/usr/share/games/megaglest/tilesets"))

    def select(parts):
        if "tilesets" in parts and parts[-2:-1] == ("sounds",):
            return "/".join(parts[parts.index("tilesets"):])
        return None

    found = folder_or_extracted(cands, root, MEGAGLEST, "megaglest", select, progress)
    return found if found in cands else found / "tilesets"


def noise_recordings(root, source=None, megaglest=True, progress=True):
    """``{noise_type: [(label, path, credit)]}`` of the recorded noise the default corpus uses.

    Megaglest files with identical content are counted once; files shorter than
    :data:`MIN_RECORDING_S` are left out.
    """
    import soundfile as sf

    amb = ambience_sounds_dir()
    out = {t: [(f"ambience:{rel}", amb / rel, credit)] for t, (rel, credit) in AMBIENCE.items()}
    if megaglest:
        tiles = megaglest_tilesets(root, source, progress)
        seen = set()
        for t, names in MEGAGLEST_TYPES.items():
            for p in sorted(tiles.glob("*/sounds/*")):
                if p.name not in names:
                    continue
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                if digest in seen or sf.info(str(p)).duration < MIN_RECORDING_S:
                    continue
                seen.add(digest)
                label = f"{MEGAGLEST}:tilesets/{p.parent.parent.name}/sounds/{p.name}"
                out.setdefault(t, []).append((label, p, MEGAGLEST_LICENCE))
    return out
