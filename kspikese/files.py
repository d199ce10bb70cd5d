"""File input/output shared by every part of kspikese: atomic writes, checked audio reading,
finding audio files (:data:`AUDIO_SUFFIXES`) and file hashes.

Nothing is ever left half-written: every writer goes to a temporary name in the same folder and
is renamed over the target (``os.replace`` is atomic on POSIX file systems).
"""

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np

SR = 16000  # the sample rate every model and metric in kspikese works at
# file name suffixes taken as audio wherever kspikese looks for audio files (libsndfile formats)
AUDIO_SUFFIXES = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64",
})  # fmt: skip


class AudioError(ValueError):
    """An audio file could not be used; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` defaults to the target's own suffix, so writers that pick a format from the file
    name (soundfile, matplotlib) still do.  The file gets the permissions a new file gets
    (0666 less the umask, not ``mkstemp``'s 0600).  On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def is_audio_name(path):
    """Whether ``path``'s name has an audio suffix (:data:`AUDIO_SUFFIXES`) and is not hidden."""
    path = Path(path)
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def sha256(path, chunk=1 << 20):
    """The SHA-256 hex digest of the file at ``path``, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def json_safe(obj):
    """``obj`` (nested dicts, lists, tuples) with NaN as ``None`` and ±inf as ``"inf"`` /
    ``"-inf"``, which strict JSON can hold."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented strict JSON (:func:`json_safe`) to ``path`` atomically."""
    write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False,
                                default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_audio(path, sr=SR, mono=True):
    """Read an audio file as float32 in [-1, 1], resampled to ``sr`` Hz.

    Multi-channel files are mixed down (with a warning) when ``mono``; otherwise the result has
    shape ``(samples, channels)``.  Raises :class:`AudioError` naming the file for unreadable,
    empty or truncated files and for NaN/inf samples.
    """
    import soundfile as sf

    path = Path(path)
    check_wav_complete(path)
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: the audio contains NaN or inf samples")
    if mono:
        if data.shape[1] > 1:
            warnings.warn(f"{path}: {data.shape[1]} channels mixed down to mono", stacklevel=2)
        data = data.mean(axis=1)
    data = resample(data, file_sr, sr)
    return data.astype(np.float32, copy=False)


def resample(x, orig_sr, target_sr):
    """Resample along the first axis with librosa's default (soxr high quality) resampler."""
    if int(orig_sr) == int(target_sr):
        return x
    import librosa

    return librosa.resample(np.asarray(x, np.float32), orig_sr=orig_sr, target_sr=target_sr, axis=0)


SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile command; SF_FALSE turns the PEAK chunk off


def write_audio(path, audio, sr=SR, subtype="FLOAT"):
    """Write ``audio`` (samples[, channels]) to ``path`` atomically and reproducibly.

    The format follows the file name (WAV, FLAC, OGG).  libsndfile adds a ``PEAK`` chunk holding
    the *current time* to float WAV files, so two writes of the same samples would differ (and
    checksums change from build to build); it is turned off.
    """
    import soundfile as sf

    audio = np.asarray(audio)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    fmt = _format_of(path)
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", int(sr), channels, subtype, format=fmt) as fh:
            if fmt == "WAV":
                sf._snd.sf_command(fh._file, SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
            fh.write(audio)


def check_wav_complete(path):
    """Raise :class:`AudioError` if ``path`` is a RIFF/WAVE file whose ``data`` chunk is cut short.

    A WAV header states the byte length of its ``data`` chunk; a file whose copy or download was
    interrupted holds fewer bytes, which soundfile would read silently as a shorter file.  Lengths
    of ``0`` and ``0xFFFFFFFF`` (streaming writers) are accepted as "unknown".  Other formats pass.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if not (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
                return
            pos = 12
            while pos + 8 <= size:
                hdr = fh.read(8)
                if len(hdr) < 8:
                    break
                cid, clen = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"data":
                    have = size - pos - 8
                    if clen not in (0, 0xFFFFFFFF) and clen > have:
                        raise AudioError(
                            f"{path}: truncated WAV file: the header promises {clen} bytes of "
                            f"audio, the file holds {have}"
                        )
                    return
                pos += 8 + clen + (clen & 1)
                fh.seek(pos)
    except OSError as exc:
        raise AudioError(f"{path}: cannot read audio ({exc.strerror or exc})") from exc
    raise AudioError(f"{path}: truncated or malformed WAV file: no 'data' chunk found")


def _format_of(path):
    return {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(Path(path).suffix.lower(), "WAV")


# ------------------------------------------------------------------------ finding audio files
def find_audio(folder, errors, exclude=None):
    """Audio files under ``folder`` (recursive, sorted, symlinked folders not followed).

    Folders that cannot be listed are appended to ``errors`` as ``(folder, message)``; files
    inside ``exclude`` (an output folder nested in the input) are skipped.
    """
    found = []
    stack = [Path(folder)]
    while stack:
        current = stack.pop()
        if exclude is not None and inside(current, exclude) and not inside(folder, exclude):
            continue
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            errors.append((current, f"cannot read folder ({exc.strerror or exc})"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(path)
                elif entry.is_file() and is_audio_name(path):
                    found.append(path)
            except OSError as exc:
                errors.append((path, f"cannot read ({exc.strerror or exc})"))
        stack.extend(reversed(subdirs))
    return sorted(found)


def inside(path, folder):
    """Whether ``path`` lies inside ``folder`` (or is it), after resolving symlinks."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def read_named_pairs(clean_dir, noisy_dir, limit=None):
    """Test pairs from two folders: the files of ``noisy_dir`` with a namesake in ``clean_dir``.

    Files are matched by relative path without suffix, sorted, at most ``limit`` of them, read
    at 16 kHz (mono) and cut to the shorter of each pair.

    Returns
    -------
    list of (str, np.ndarray, np.ndarray)
        ``(name, noisy, clean)``; ``name`` is the noisy file's path relative to ``noisy_dir``.
    """
    clean_dir, noisy_dir = Path(clean_dir), Path(noisy_dir)
    errors = []
    clean = {p.relative_to(clean_dir).with_suffix(""): p for p in find_audio(clean_dir, errors)}
    noisy = {p.relative_to(noisy_dir).with_suffix(""): p for p in find_audio(noisy_dir, errors)}
    if errors:
        raise AudioError("; ".join(f"{p}: {m}" for p, m in errors))
    common = sorted(set(clean) & set(noisy))[:limit]
    if not common:
        raise AudioError(f"{noisy_dir}: no audio file with a namesake in {clean_dir}")
    pairs = []
    for key in common:
        n, c = read_audio(noisy[key]), read_audio(clean[key])
        m = min(len(n), len(c))
        pairs.append((str(noisy[key].relative_to(noisy_dir)), n[:m], c[:m]))
    return pairs

