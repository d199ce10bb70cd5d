"""File input/output shared by every part of kspikese: atomic writes, checked audio reading,
finding audio files (:data:`AUDIO_SUFFIXES`) and file hashes.

Nothing is ever left half-written: every writer goes to a temporary name in the same folder and
is renamed over the target (``os.replace`` is atomic on POSIX file systems).  Temporary names
are ``.<stem>.kspikese-<pid>-<random>.tmp<suffix>``; a later write into the same folder removes
the ones whose process is gone (a run killed with SIGKILL or a power cut), see
:func:`remove_stale_temporaries`.

Every audio file is opened through :func:`open_audio`, which applies the same checks for every
reader (the whole-file reader :func:`read_audio` and the streaming enhancer): a WAV whose
``data`` chunk is cut short is refused (:func:`check_wav_complete`), and so is a header whose
rate, channel count or duration is implausible (:func:`check_header`, limits
:data:`MIN_RATE`..:data:`MAX_RATE` Hz, at most :data:`MAX_CHANNELS` channels and
:data:`MAX_SECONDS` seconds).  File names are handed to libsndfile as bytes
(:func:`os.fsencode`), so any name the operating system can hold works, including names that
are not valid UTF-8.
"""

import contextlib
import hashlib
import json
import os
import re
import stat
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


MIN_RATE = 8000  # Hz: the lowest sample rate accepted (telephone speech)
MAX_RATE = 384000  # Hz: the highest (the fastest studio converters)
MAX_CHANNELS = 64  # channels per file or array
MAX_SECONDS = 24 * 3600  # duration of one file or array (one day of audio)
TEMP_TAG = "kspikese"  # temporary files are .<stem>.kspikese-<pid>-<random>.tmp<suffix>
_TEMP_RE = re.compile(r"^\..*\.kspikese-(\d+)-[^.]+\.tmp[^/]*$")


class AudioError(ValueError):
    """An audio file could not be used; the message names the file and the problem."""


def sf_name(path):
    """``path`` as bytes for libsndfile (soundfile would encode a ``str`` as strict UTF-8)."""
    return os.fsencode(os.fspath(path))


def check_header(where, sr, channels, frames=None):
    """Refuse an implausible rate, channel count or duration before any work is done.

    Parameters
    ----------
    where : str or Path
        What the numbers describe (a file name, ``"audio"``), put at the start of the message.
    sr : int
        Sample rate (Hz); must lie in [:data:`MIN_RATE`, :data:`MAX_RATE`].
    channels : int
        Must lie in [1, :data:`MAX_CHANNELS`].
    frames : int, optional
        Samples per channel; ``frames / sr`` must not exceed :data:`MAX_SECONDS`.

    Raises
    ------
    AudioError
        Naming ``where``, the value and the limit.
    """
    if not MIN_RATE <= sr <= MAX_RATE:
        raise AudioError(f"{where}: implausible sample rate {sr} Hz (accepted: {MIN_RATE} to "
                         f"{MAX_RATE} Hz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{where}: implausible channel count {channels} (accepted: 1 to "
                         f"{MAX_CHANNELS})")
    if frames is not None and frames / sr > MAX_SECONDS:
        raise AudioError(f"{where}: implausible duration {frames / sr / 3600:.1f} h ({frames} "
                         f"samples at {sr} Hz; at most {MAX_SECONDS / 3600:g} h per file)")


def open_audio(path):
    """Open ``path`` for reading with every check a reader of audio applies.

    The checks, in order: a WAV's ``data`` chunk is complete (:func:`check_wav_complete`),
    libsndfile can open the file, it holds samples, and its header is plausible
    (:func:`check_header`).

    Returns
    -------
    soundfile.SoundFile
        Open for reading (use it as a context manager).

    Raises
    ------
    AudioError
        Naming the file and the problem.
    """
    import soundfile as sf

    path = Path(path)
    check_wav_complete(path)
    try:
        reader = sf.SoundFile(sf_name(path))
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(f"{path}: cannot read audio ({_first_line(exc)})") from exc
    try:
        if reader.frames == 0:
            raise AudioError(f"{path}: the file holds no samples")
        check_header(path, reader.samplerate, reader.channels, reader.frames)
    except BaseException:
        reader.close()
        raise
    return reader


def as_float_audio(x, what="audio"):
    """``x`` as a floating-point array in the usual [-1, 1] scale, by its dtype.

    Floats are kept as they are; signed integers ``intN`` are divided by ``2^(N-1)`` (int16 by
    32768, as ``scipy.io.wavfile.read`` and libsndfile scale them); unsigned ``uint8`` (8-bit
    WAV) is ``(x - 128) / 128`` and wider unsigned types ``(x - 2^(N-1)) / 2^(N-1)``.  Any other
    dtype (bool, complex, strings, objects) is refused.

    Returns
    -------
    (np.ndarray, np.dtype or None)
        The float array, and the integer dtype it came from (``None`` for float input), so a
        caller can scale back with :func:`from_float_audio`.

    Raises
    ------
    ValueError
        Naming ``what`` and the dtype.
    """
    try:
        x = np.asarray(x)
    except Exception as exc:
        raise ValueError(f"{what} is not a numeric array ({exc})") from exc
    kind = x.dtype.kind
    if kind == "f":
        return x, None
    if kind == "i":
        return x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1)), x.dtype
    if kind == "u":
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        return (x.astype(np.float64) - half) / half, x.dtype
    raise ValueError(f"{what} is not a numeric array of samples: dtype {x.dtype} (expected floats "
                     "in [-1, 1] or integer PCM samples: int8/16/32/64, uint8...)")


def from_float_audio(y, dtype):
    """Float samples in [-1, 1] back to integer ``dtype`` (the inverse of :func:`as_float_audio`),
    rounded and clipped to the dtype's range; ``dtype=None`` returns ``y`` unchanged."""
    if dtype is None:
        return y
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    half = float(2 ** (8 * dtype.itemsize - 1))
    offset = half if dtype.kind == "u" else 0.0
    scaled = np.rint(np.asarray(y, np.float64) * half + offset)
    return np.clip(scaled, info.min, info.max).astype(dtype)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def output_problem(path, kind):
    """Why ``path`` cannot be used as an output ``kind`` (``"file"`` or ``"folder"``), or ``None``.

    Checked before any work: every existing part of the path must be a folder (a regular file
    named ``regfile`` makes ``regfile/x`` impossible), an existing ``path`` must be of the right
    kind, and the deepest existing folder must be writable.
    """
    path = Path(path)
    if path.exists():
        if kind == "folder" and not path.is_dir():
            return f"{path} exists and is not a folder"
        if kind == "file" and path.is_dir():
            return f"{path} is a folder, not a file"
    probe = path if kind == "folder" else path.parent
    probe = Path(os.path.abspath(probe))
    for parent in [probe, *probe.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder, so {path} cannot be created"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"the folder {parent} is not writable"
            return None
    return None


def remove_stale_temporaries(folder):
    """Remove this program's temporary files in ``folder`` whose writing process is gone.

    A temporary file is recognised by its name, ``.<stem>.kspikese-<pid>-<random>.tmp<suffix>``
    (:func:`atomic_path`); it is stale when no process with that id exists on this machine.
    Files of live processes and every other file are left alone.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


_SWEPT = set()  # folders already swept for stale temporaries by this process


def contained_file(folder, name, max_bytes, what):
    """The regular file ``folder/name``, refusing names that lead outside ``folder``.

    ``name`` must be a relative path string; after resolving ``..`` and symlinks it must lie
    inside ``folder`` and be a regular file (not a device, FIFO or folder) of at most
    ``max_bytes`` bytes.

    Raises
    ------
    ValueError
        Naming ``what`` and the problem.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}: expected a file name, got {name!r}")
    if os.path.isabs(name):
        raise ValueError(f"{what}: {name!r} is an absolute path; it must name a file in {folder}")
    root = Path(folder).resolve()
    target = (root / name).resolve()
    try:
        target.relative_to(root)
    except ValueError:
        raise ValueError(f"{what}: {name!r} leads outside the folder {root}") from None
    try:
        info = target.stat()
    except OSError as exc:
        raise ValueError(f"{what}: {target} is missing ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what}: {target} is not a regular file")
    if info.st_size > max_bytes:
        raise ValueError(f"{what}: {target} holds {info.st_size} bytes, more than the "
                         f"{max_bytes} allowed")
    return target


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` defaults to the target's own suffix, so writers that pick a format from the file
    name (soundfile, matplotlib) still do.  The name carries this process's id; the first write
    into a folder removes stale temporaries of dead processes there
    (:func:`remove_stale_temporaries`).  The file gets the permissions a new file gets
    (0666 less the umask, not ``mkstemp``'s 0600).  On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.abspath(path.parent)
    if key not in _SWEPT:
        remove_stale_temporaries(path.parent)
        _SWEPT.add(key)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{TEMP_TAG}-{os.getpid()}-",
                               suffix=f".tmp{suffix}", dir=path.parent)
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
    empty or truncated files, implausible headers (:func:`open_audio`) and NaN/inf samples.
    """
    path = Path(path)
    with open_audio(path) as reader:
        file_sr, promised = reader.samplerate, reader.frames
        try:
            data = reader.read(dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile errors in the middle of a damaged file
            raise AudioError(f"{path}: cannot read audio ({_first_line(exc)})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    if data.shape[0] < promised:
        raise AudioError(f"{path}: truncated audio file: the header promises {promised} samples, "
                         f"{data.shape[0]} could be read")
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
        with sf.SoundFile(sf_name(tmp), "w", int(sr), channels, subtype, format=fmt) as fh:
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

