"""Reading, checking and writing audio files, and finding them in folders.

Every audio file is opened through :func:`open_audio`, which applies the same checks for every
reader (the whole-file reader :func:`read_audio` and the streaming enhancer): a WAV whose
``data`` chunk is cut short is refused (:func:`check_wav_complete`), and so is a header whose
rate, channel count or duration is implausible (:func:`check_header`, limits
:data:`MIN_RATE`..:data:`MAX_RATE` Hz, at most :data:`MAX_CHANNELS` channels and
:data:`MAX_SECONDS` seconds).  File names are handed to libsndfile as bytes
(:func:`os.fsencode`), so any name the operating system can hold works, including names that
are not valid UTF-8.

Audio is written atomically (:func:`kspikese.files.atomic_path`) and reproducibly
(:func:`write_audio`).  Audio files are found by suffix (:data:`AUDIO_SUFFIXES`,
:func:`find_audio`).
"""

import os
import struct
import warnings
from pathlib import Path

import numpy as np

from kspikese.files import atomic_path, inside

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
def is_audio_name(path):
    """Whether ``path``'s name has an audio suffix (:data:`AUDIO_SUFFIXES`) and is not hidden."""
    path = Path(path)
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


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
