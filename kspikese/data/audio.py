"""Reading the audio files of the corpora: WAV/FLAC/OGG through
:func:`kspikese.audio_io.read_audio`, NIST SPHERE (TIMIT) with a reader of our own, and a
truncation check for RIFF/WAV files.

Every reader returns float32 mono audio in [-1, 1] at 16 kHz and raises
:class:`kspikese.audio_io.AudioError` naming the file when it cannot.
"""

import warnings
from pathlib import Path

import numpy as np

from kspikese import audio_io, files
from kspikese.audio_io import SR, AudioError

SPHERE_MAGIC = b"NIST_1A"


def load(path, sr=SR):
    """Read ``path`` as float32 mono at ``sr`` Hz.

    SPHERE files (header ``NIST_1A``) are read by :func:`read_sphere`; anything else by
    :func:`kspikese.audio_io.read_audio` (stereo is mixed down with a warning, other rates are
    resampled, NaN/inf samples are an error).  WAV files whose ``data`` chunk is shorter than its
    header says are reported as truncated instead of being silently cut.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise AudioError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    if head.startswith(SPHERE_MAGIC):
        x, file_sr = read_sphere(path)
        return audio_io.resample(x, file_sr, sr).astype(np.float32, copy=False)
    return audio_io.read_audio(path, sr=sr)  # also checks that a WAV file is not truncated


def parse_sphere_header(raw, path="<sphere>"):
    """Parse a NIST SPHERE header: ``NIST_1A\\n   1024\\n`` then ``key -type value`` lines up to
    ``end_head``.  Returns ``(header_bytes, {key: value})`` with ``-i`` values as int."""
    lines = raw.split(b"\n")
    if len(lines) < 2 or not lines[0].startswith(SPHERE_MAGIC):
        raise AudioError(f"{path}: not a NIST SPHERE file")
    try:
        hsize = int(lines[1].strip())
    except ValueError as exc:
        raise AudioError(f"{path}: bad SPHERE header size {lines[1][:20]!r}") from exc
    fields = {}
    for line in raw[:hsize].split(b"\n")[2:]:
        line = line.strip().decode("ascii", "replace")
        if line == "end_head":
            break
        parts = line.split(None, 2)
        if len(parts) == 3:
            key, typ, val = parts
            fields[key] = int(val) if typ == "-i" else float(val) if typ == "-r" else val
    return hsize, fields


def read_sphere(path):
    """Read a NIST SPHERE file holding uncompressed 16-bit PCM (TIMIT's format).

    Layout: an ASCII header of ``header_size`` bytes (1024 for TIMIT), then ``sample_count`` x
    ``channel_count`` little- (``sample_byte_format 01``) or big-endian (``10``) int16 samples.
    Returns ``(float32 mono in [-1, 1], sample_rate)``; channels are averaged with a warning.
    """
    path = Path(path)
    raw = path.read_bytes()
    hsize, f = parse_sphere_header(raw[:4096], path)
    coding = str(f.get("sample_coding", "pcm"))
    if coding != "pcm":
        raise AudioError(
            f"{path}: SPHERE sample_coding {coding!r} is not supported (only uncompressed pcm); "
            "convert it first, e.g. with sph2pipe or sox"
        )
    width = int(f.get("sample_n_bytes", 2))
    if width != 2:
        raise AudioError(f"{path}: SPHERE sample_n_bytes={width}, only 16-bit PCM is supported")
    channels = int(f.get("channel_count", 1))
    sr = int(f.get("sample_rate", SR))
    order = str(f.get("sample_byte_format", "01"))
    dtype = "<i2" if order in ("01", "0") else ">i2"
    body = raw[hsize:]
    count = int(f.get("sample_count", len(body) // (2 * channels)))
    need = count * channels * 2
    if len(body) < need:
        raise AudioError(
            f"{path}: truncated SPHERE file: header says {count} samples "
            f"({need} bytes), the file holds {len(body)} bytes"
        )
    if count == 0:
        raise AudioError(f"{path}: the file holds no samples")
    x = np.frombuffer(body[:need], dtype=dtype).astype(np.float32) / 32768.0
    x = x.reshape(count, channels)
    if channels > 1:
        warnings.warn(f"{path}: {channels} channels mixed down to mono", stacklevel=3)
    return x.mean(axis=1), sr


def write_sphere(path, x, sr=SR):
    """Write int16 PCM as a NIST SPHERE file (1024-byte header); used to make test trees."""
    x = np.asarray(x)
    if x.dtype != np.int16:
        x = np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    head = (
        "NIST_1A\n   1024\n"
        f"sample_count -i {len(x)}\nsample_rate -i {int(sr)}\nchannel_count -i 1\n"
        "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\nend_head\n"
    ).encode("ascii")
    with files.atomic_path(path) as tmp:
        Path(tmp).write_bytes(head.ljust(1024, b" ") + x.astype("<i2").tobytes())


write_wav = audio_io.write_audio  # reproducible (no PEAK timestamp), atomic
