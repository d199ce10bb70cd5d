"""Enhance audio files and folders (the ``kspikese enhance`` command), streaming.

:func:`plan` pairs every input file with its output path, :func:`enhance_file` enhances one file
and :func:`enhance_paths` files and folders.  Every file goes through the block-by-block
:class:`kspikese.enhancement.Pipeline`, the streaming form of :func:`kspikese.enhancement.enhance`.

Files stream: a file is read in blocks with :class:`soundfile.SoundFile`, resampled with soxr's
streaming resampler (the same samples as resampling the whole file at once), enhanced frame by
frame, resampled back and written in blocks, so memory does not grow with the file's length.
The output keeps the input's format, subtype, rate, channel count and length, and is written
under a temporary name and renamed (:func:`kspikese.files.atomic_path`).

Bad input is refused before any work: files through :func:`kspikese.audio_io.open_audio` (the
same completeness and header checks as every reader), an unusable output location by
:class:`OutputError`.  A model that returns NaN or inf on a file raises
:class:`kspikese.enhancement.ModelOutputError` naming the model, the frame and the file, and
that file is not written.
"""

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from kspikese import audio_io, files, hub
from kspikese.data.framing import FRAME_LEN
from kspikese.dsp import OVERLAP, NonFiniteOutput, num_frames
from kspikese.enhancement import (ModelOutputError, Pipeline, _bar, _model_and_fn, _model_name,
                                  _nonfinite_error)
from kspikese.inference import BATCH_SIZE, ModelError, frame_len_of

BLOCK = 65536  # samples per channel read from disk at a time

__all__ = ["BLOCK", "Job", "OutputError", "Summary", "enhance_file", "enhance_paths", "plan"]


class OutputError(ValueError):
    """The output location given (``-o``) cannot be used; raised before any work."""


@dataclasses.dataclass
class Job:
    """One file to enhance: input ``src``, output ``dst``."""

    src: Path
    dst: Path


@dataclasses.dataclass
class Summary:
    """What :func:`enhance_paths` did: files done / failed, seconds of audio, processing time
    (model and I/O of the files), wall time, and the failures as ``(path, message)``."""

    done: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    process_seconds: float = 0.0
    wall_seconds: float = 0.0
    errors: list = dataclasses.field(default_factory=list)  # (path, message)

    @property
    def real_time_factor(self):
        """Processing time / audio duration (0.1 = ten times faster than real time)."""
        return self.process_seconds / self.audio_seconds if self.audio_seconds else float("nan")

    def text(self):
        """Two lines for the console: counts and durations, then the real-time factor."""
        lines = [
            f"{self.done} file(s) enhanced, {self.failed} failed; "
            f"{self.audio_seconds / 60:.2f} min of audio; wall time {self.wall_seconds:.1f} s"
        ]
        if self.audio_seconds and self.process_seconds:
            rtf = self.real_time_factor
            lines.append(
                f"real-time factor {rtf:.3f} (processing {self.process_seconds:.1f} s, "
                f"{1 / rtf:.1f}x faster than real time)"
            )
        return "\n".join(lines)


def plan(inputs, output, overwrite=False):
    """Pair every input file with its output path: ``(jobs, errors)``.

    One input file and an ``output`` that is not a folder: ``output`` is the file.  Otherwise
    ``output`` is a folder: an input file lands at ``output/<name>``; one input folder's tree is
    mirrored into ``output``; several input folders each into ``output/<folder name>``.
    Refused (listed in ``errors``): an existing output (the input itself, or any other file)
    unless ``overwrite``; an output whose folder cannot be made (a file in the way); an output
    that would land outside ``output`` (through ``..`` or a symlink); two inputs with the same
    output; inputs that do not exist.

    Raises
    ------
    OutputError
        ``output`` itself cannot be used (a file where a folder is needed, a folder where the
        file should go, a read-only folder), before anything is read.
    """
    output = Path(output)
    inputs = [Path(p) for p in inputs]
    jobs, errors, seen = [], [], {}
    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    output_is_file = single_file and not (output.is_dir() or str(output).endswith(os.sep))
    problem = files.output_problem(output, "file" if output_is_file else "folder")
    if problem is not None:
        raise OutputError(f"-o {output}: {problem}")
    for src_root in inputs:
        if src_root.is_dir():
            root = output if len(inputs) == 1 else output / src_root.resolve().name
            found = audio_io.find_audio(src_root, errors, output)
            pairs = [(f, root / f.relative_to(src_root)) for f in found]
        elif src_root.exists():
            pairs = [(src_root, output if output_is_file else output / src_root.name)]
        else:
            errors.append((src_root, "no such file or folder"))
            continue
        for src, dst in pairs:
            problem = _check_pair(src, dst, output, output_is_file, overwrite)
            key = dst.resolve()
            if problem is None and key in seen:
                problem = f"its output {dst} is also the output of {seen[key]}"
            if problem is not None:
                errors.append((src, problem))
                continue
            seen[key] = src
            jobs.append(Job(src, dst))
    return jobs, errors


def _check_pair(src, dst, output, output_is_file, overwrite):
    if not output_is_file and not files.inside(dst, output):
        return f"refused: its output {dst} would land outside the output folder {output}"
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(dst, src)):
        if not overwrite:
            return f"refused: the output {dst} is the input itself (pass --overwrite to replace it)"
        return None
    if dst.exists() or dst.is_symlink():
        if dst.is_dir():
            return f"refused: its output {dst} is a folder"
        if not overwrite:
            return f"refused: the output {dst} exists (pass --overwrite to replace it)"
    problem = files.output_problem(dst, "file")
    if problem is not None:
        return f"refused: {problem}"
    return None


def enhance_file(
    src, dst, fn, frame_len=FRAME_LEN, batch_size=BATCH_SIZE, on_frames=None, overlap=OVERLAP,
    model_name="fn",
):
    """Enhance one file into ``dst``, streaming (same format, subtype, rate, channels, length).

    Parameters
    ----------
    src, dst : str or Path
        Input and output files; ``dst`` is written under a temporary name and renamed, so it is
        either complete or untouched.  Its suffix may name another format.
    fn : callable
        The frame function, ``(rows, L, 1) -> (rows, L, 1)`` (:func:`kspikese.inference.model_fn`).
    frame_len, batch_size, overlap
        As :func:`kspikese.inference.enhance_array`.
    on_frames : callable, optional
        Called with the number of frames done after each model call.
    model_name : str
        How the model is named when it returns NaN/inf.

    Returns
    -------
    float
        Seconds of audio read.

    Raises
    ------
    kspikese.audio_io.AudioError
        Naming the file: unreadable input (empty, not audio, truncated, implausible header,
        NaN/inf samples; the checks of :func:`kspikese.audio_io.open_audio`) or an output that
        cannot be written.
    ModelOutputError
        The model returned NaN or inf; names the model, the frame and the file.
    """
    import soundfile as sf

    src, dst = Path(src), Path(dst)
    with audio_io.open_audio(src) as reader:
        sr, channels, promised = reader.samplerate, reader.channels, reader.frames
        fmt, subtype, endian = _output_format(reader, dst)
        pipe = Pipeline(fn, sr, channels, frame_len, batch_size, overlap)
        pipe.engine.on_frames = on_frames
        clip = not subtype.startswith(("FLOAT", "DOUBLE"))
        n_read = 0
        with files.atomic_path(dst) as tmp:
            try:
                writer = sf.SoundFile(audio_io.sf_name(tmp), "w", sr, channels, subtype, endian,
                                      fmt)
            except Exception as exc:
                raise audio_io.AudioError(
                    f"{dst}: cannot write {fmt}/{subtype} ({_short(exc)})"
                ) from exc
            with writer:
                blocks = reader.blocks(blocksize=BLOCK, dtype="float32", always_2d=True)
                while True:
                    try:
                        block = next(blocks)
                    except StopIteration:
                        break
                    except Exception as exc:  # libsndfile errors in the middle of a damaged file
                        raise audio_io.AudioError(
                            f"{src}: cannot read audio after sample {n_read} ({_short(exc)})"
                        ) from exc
                    _check_finite(block, src, n_read)
                    n_read += len(block)
                    _write(writer, _run(pipe.push, block, model_name, src), clip, dst)
                if n_read == 0:
                    raise audio_io.AudioError(f"{src}: the file holds no readable samples")
                if n_read < promised:
                    raise audio_io.AudioError(
                        f"{src}: truncated audio file: the header promises {promised} samples, "
                        f"{n_read} could be read"
                    )
                _write(writer, _run(pipe.finish, n_read, model_name, src), clip, dst)
    return n_read / sr


def _run(step, arg, model_name, src):
    try:
        return step(arg)
    except NonFiniteOutput as exc:
        raise _nonfinite_error(model_name, exc, src) from exc


def _output_format(reader, dst):
    """Input's format/subtype/endian, or the output suffix's format if it names another one."""
    import soundfile as sf

    fmt, subtype, endian = reader.format, reader.subtype, reader.endian
    wanted = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aiff": "AIFF"}.get(
        Path(dst).suffix.lower()
    )
    if wanted and wanted != fmt:
        fmt, endian = wanted, "FILE"
        if not sf.check_format(fmt, subtype, endian):
            subtype = sf.default_subtype(fmt)
    return fmt, subtype, endian


def _check_finite(block, src, offset):
    bad = ~np.isfinite(block)
    if bad.any():
        sample, channel = np.argwhere(bad)[0]
        raise audio_io.AudioError(
            f"{src}: the audio contains NaN or inf samples (first at sample {offset + sample}, "
            f"channel {channel})"
        )


def _write(writer, y, clip, dst):
    if len(y):
        try:
            writer.write(np.clip(y, -1.0, 1.0) if clip else y)
        except Exception as exc:  # disk full, ...
            raise audio_io.AudioError(f"{dst}: cannot write ({_short(exc)})") from exc


def _short(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def enhance_paths(
    inputs, output, model=hub.DEFAULT_MODEL, ann=False, overwrite=False, batch_size=BATCH_SIZE,
    progress=True, weights_dir=None, log=None, overlap=OVERLAP,
):  # fmt: skip
    """Enhance files and folders into ``output`` (paired by :func:`plan`).

    Parameters
    ----------
    inputs : list of str or Path
        Audio files and folders (searched recursively).
    output : str or Path
        The output file (one input file) or folder.
    model, ann, batch_size, overlap, weights_dir
        As :func:`enhance`.
    overwrite : bool
        Allow an output to replace an existing file (another file, or its own input).
    progress : bool
        Progress bars on stderr.
    log : callable, optional
        ``log(path, message)`` for each failed input (default: print to stderr).

    Returns
    -------
    Summary
        Counts, durations and the failures.  A file that fails (bad audio, an existing output
        without ``overwrite``, NaN/inf from the model on it) is reported and the others are
        still done; model problems raise :class:`ModelError` and an unusable ``output`` raises
        :class:`OutputError`, both before any file is touched.
    """
    t0 = time.perf_counter()
    summary = Summary()

    def report(path, message):
        summary.failed += 1
        summary.errors.append((Path(path), message))
        text = message if message.startswith(str(path)) else f"{path}: {message}"
        if log is not None:
            log(path, text)
        else:
            from tqdm import tqdm

            tqdm.write(f"kspikese enhance: error: {text}", file=sys.stderr)

    jobs, errors = plan(inputs, output, overwrite)
    for path, message in errors:
        report(path, message)
    if jobs:
        keras_model, fn = _model_and_fn(model, ann, weights_dir)
        frame_len = frame_len_of(keras_model)
        try:  # build the graph before timing the files
            shape = np.shape(fn(np.zeros((1, frame_len, 1), np.float32)))
        except Exception as exc:
            raise ModelError(f"model {model}: fails on a (1, {frame_len}, 1) frame ({exc})") from exc
        if shape not in ((1, frame_len, 1), (1, frame_len)):
            raise ModelError(f"model {model}: returned shape {shape} for input (1, {frame_len}, 1); "
                             "it must map (batch, samples, 1) to the same shape")
        with _bar(progress and len(jobs) > 1, total=len(jobs), unit="file") as files_bar:
            for job in jobs:
                estimate = _frames_estimate(job.src, frame_len, overlap)
                with _bar(
                    progress, total=estimate, unit="frame", desc=job.src.name, leave=False
                ) as fb:
                    try:
                        t_file = time.perf_counter()
                        seconds = enhance_file(
                            job.src, job.dst, fn, frame_len, batch_size, fb.update, overlap,
                            model_name=_model_name(model),
                        )
                        summary.process_seconds += time.perf_counter() - t_file
                        summary.audio_seconds += seconds
                        summary.done += 1
                    except (audio_io.AudioError, ModelOutputError, OSError) as exc:
                        report(job.src,
                               _os_message(exc) if isinstance(exc, OSError) else str(exc))
                files_bar.update(1)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _frames_estimate(path, frame_len, overlap):
    import soundfile as sf

    try:
        info = sf.info(audio_io.sf_name(path))
        n16 = round(info.frames * audio_io.SR / info.samplerate)
        return num_frames(n16, frame_len, overlap) or None
    except Exception:
        return None


def _os_message(exc):
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}"
