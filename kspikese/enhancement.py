"""Enhance audio with a (spiking) speech-enhancement model: arrays, files and folders.

The models see fixed frames of ``L = 16384`` samples at 16 kHz.  Audio of any length is cut into
frames that overlap by ``O`` samples (``O = overlap * L``, ``overlap`` at most one half; the frames
start every ``hop = L - O`` samples), each frame is enhanced on its own, and consecutive outputs
are cross-faded over their ``O`` common samples with the raised-sine ramp

    r[n] = sin^2(pi n / (2 O)),   n = 0 .. O-1   (the earlier frame gets 1 - r[n]),

i.e. the output there is ``a + r[n] (b - a)`` for the earlier frame's output ``a`` and the later
frame's ``b``; outside the overlaps a sample is covered by one frame and taken as is.  This is
overlap-add with a window made of a rising ramp, a flat top and a falling ramp whose shifted
copies sum to exactly one; for ``overlap = 1/2`` it is the periodic Hann window
``w[n] = sin^2(pi n / L)`` with ``w[n] + w[n + L/2] = 1``.  A model that returns its input
therefore returns the signal unchanged, bit for bit (the cross-fade of equal frames gives back
the same float), and a model whose output jumps between frames (a frame-dependent offset
``c_k``) is cross-faded: sample to sample the output moves by at most
``|c_{k+1} - c_k| * max|r'| = |c_{k+1} - c_k| * pi / (2 O)`` from the seam, never by a click.
Each frame's edges, where a convolutional model sees zero padding, get weights near zero.  The
signal is padded with ``O`` zeros in front (so the first samples are also cross-faded in) and with
zeros at the end up to the last frame.

Frames whose input is exactly zero are not sent to the model: their output is zero (so digital
silence stays silent, whatever the biases would make of it).

Everything streams: a file is read in blocks with :class:`soundfile.SoundFile`, resampled to
16 kHz with soxr's streaming resampler (which gives the same samples as resampling the whole file
at once), enhanced frame by frame, resampled back to the file's rate and written in blocks, so
memory does not grow with the file's length.  Each channel is enhanced on its own.  The output
keeps the input's format, subtype, rate, channel count and length.
"""

import contextlib
import dataclasses
import functools
import os
import sys
import time
import warnings
import weakref
from pathlib import Path

import numpy as np

from kspikese import files
from kspikese import weights as shipped

FRAME_LEN = 16384
BLOCK = 65536  # samples per channel read from disk at a time
SHIPPED = ("snn-wave-u-net", "snn-conv-tasnet", "wave-u-net", "conv-tasnet")
DEFAULT_MODEL = "snn-wave-u-net"
# where each shipped model comes from: the pipeline table that trains it and its checkpoint
SOURCE = {
    "snn-wave-u-net": ("table1", "finetune/finetuned.keras"),
    "wave-u-net": ("table1", "ann/ann.keras"),
    "snn-conv-tasnet": ("table3", "finetune/finetuned.keras"),
    "conv-tasnet": ("table3", "ann/ann.keras"),
}
# checkpoints inside a pipeline run folder (results/runs/<table>-<data>-seed<S>/), best first;
# the flat names are accepted too
RUN_SPIKING = ("finetune/finetuned.keras", "finetuned.keras", "converted.keras")
RUN_ANN = ("ann/ann.keras", "ann.keras")
AUDIO_SUFFIXES = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64",
}  # fmt: skip
OVERLAP = 0.25  # default frame overlap (fraction of a frame): 4096-sample cross-fades
BATCH_SIZE = 1  # rows (frame x channel) per model call; 1 is fastest on CPU and makes spiking
# output independent of batching (every row gets the seeded initial voltage of row 0)
FLOAT16_TOLERANCE_DB = 0.05  # largest SI-SNR change float16 weights may cause (issue 7)


class ModelError(ValueError):
    """A model name or checkpoint could not be resolved or loaded."""


# ---------------------------------------------------------------------------------------------
# windows and the streaming overlap-add engine


def synthesis_window(frame_len, overlap=OVERLAP):
    """The overlap-add window: sin^2 ramps over ``O = overlap * L`` samples, flat in between.

    Copies shifted by ``hop = L - O`` sum to one; ``overlap = 0.5`` gives the periodic Hann
    window ``sin^2(pi n / L)``.
    """
    o = overlap_samples(frame_len, overlap)
    w = np.ones(frame_len, np.float32)
    w[:o] = crossfade_ramp(o)
    w[frame_len - o :] = 1 - crossfade_ramp(o)
    return w


def crossfade_ramp(o):
    """``r[n] = sin^2(pi n / (2 O))``, n = 0 .. O-1: the later frame's weight in an overlap."""
    return (np.sin(np.pi * np.arange(o) / (2 * o)) ** 2).astype(np.float32)


def overlap_samples(frame_len, overlap):
    if not 0 < overlap <= 0.5:
        raise ValueError(f"overlap must be in (0, 0.5], got {overlap}")
    return max(1, int(round(frame_len * overlap)))


def num_frames(n, frame_len=FRAME_LEN, overlap=OVERLAP):
    """Frames for ``n`` samples: frame k starts at ``k hop - O``; the last must reach sample n."""
    o = overlap_samples(frame_len, overlap)
    hop = frame_len - o
    return 0 if n <= 0 else -(-(n + o) // hop)


class OverlapAdd:
    """Stream (samples, channels) blocks through ``fn`` frame by frame, with overlap-add.

    ``fn`` maps float32 ``(rows, L, 1)`` to ``(rows, L, 1)``; rows are (frame, channel) pairs in
    frame-major order, at most ``batch_size`` per call.  :meth:`push` returns the output samples
    that are final so far; :meth:`finish` pads the end, flushes, and returns the rest, so that
    the outputs together have exactly as many samples as the inputs.
    """

    def __init__(
        self, fn, channels, frame_len=FRAME_LEN, batch_size=BATCH_SIZE, on_frames=None,
        overlap=OVERLAP,
    ):  # fmt: skip
        self.fn, self.channels, self.frame_len = fn, int(channels), int(frame_len)
        self.overlap = overlap
        self.o = overlap_samples(self.frame_len, overlap)
        self.hop = self.frame_len - self.o
        self.frames_per_call = max(1, int(batch_size) // self.channels)
        self.on_frames = on_frames
        self.rise = crossfade_ramp(self.o)[:, None]
        self.buffer = np.zeros((self.o, self.channels), np.float32)  # the O zeros in front
        self.tail = np.zeros((self.o, self.channels), np.float32)  # last frame's final O samples
        self.skip = self.o  # output samples that belong to the zeros in front
        self.pending = []  # input frames waiting for a model call
        self.n_in = 0  # samples pushed
        self.n_out = 0  # samples returned
        self.n_frames = 0  # frames enhanced
        self.finished = False

    def push(self, block):
        block = np.asarray(block, np.float32).reshape(-1, self.channels)
        self.n_in += len(block)
        self.buffer = np.concatenate([self.buffer, block]) if len(block) else self.buffer
        return self._drain(final=False)

    def finish(self):
        if self.finished:
            return np.zeros((0, self.channels), np.float32)
        self.finished = True
        total = num_frames(self.n_in, self.frame_len, self.overlap)
        # frames 0..cut-1 are cut, so the buffer starts at s_cut = cut hop - O; the last frame,
        # total - 1, ends at s_(total-1) + L: pad the buffer with zeros up to there.
        cut = self.n_frames + len(self.pending)
        needed = (total - 1 - cut) * self.hop + self.frame_len
        if len(self.buffer) < needed:
            pad = np.zeros((needed - len(self.buffer), self.channels), np.float32)
            self.buffer = np.concatenate([self.buffer, pad])
        return self._drain(final=True, limit=total)

    def _drain(self, final, limit=None):
        out = []
        cut = self.n_frames + len(self.pending)
        while len(self.buffer) >= self.frame_len and (limit is None or cut < limit):
            self.pending.append(self.buffer[: self.frame_len])
            self.buffer = self.buffer[self.hop :]
            cut += 1
            if len(self.pending) >= self.frames_per_call:
                out.append(self._run())
        if final and self.pending:
            out.append(self._run())
        result = np.concatenate(out) if out else np.zeros((0, self.channels), np.float32)
        if self.skip:
            dropped = min(self.skip, len(result))
            result, self.skip = result[dropped:], self.skip - dropped
        if final or self.n_out + len(result) > self.n_in:
            result = result[: max(0, self.n_in - self.n_out)]
        self.n_out += len(result)
        return result

    def _run(self):
        frames = np.stack(self.pending)  # (F, L, C)
        self.pending = []
        n_frames, length, channels = frames.shape
        rows = frames.transpose(0, 2, 1).reshape(n_frames * channels, length)
        silent = ~np.any(rows != 0, axis=1)
        enhanced = np.zeros_like(rows)
        if not silent.all():
            y = np.asarray(self.fn(rows[:, :, None]), np.float32)
            if y.shape[:2] != (len(rows), length):
                raise ModelError(
                    f"the model returned shape {y.shape} for input {(len(rows), length, 1)}; "
                    "it must map (batch, samples, 1) to the same shape"
                )
            enhanced = y.reshape(len(rows), length)
            enhanced[silent] = 0.0
        enhanced = enhanced.reshape(n_frames, channels, length).transpose(0, 2, 1)
        out = []
        o, hop = self.o, self.hop
        for frame in enhanced:
            # frame k covers [s, s + L), s = k hop - O; it completes [s, s + hop): the cross-fade
            # from the previous frame's last O samples, then its own samples up to the next seam
            out.append(self.tail + self.rise * (frame[:o] - self.tail))
            out.append(frame[o:hop])
            self.tail = frame[hop:]
            self.n_frames += 1
        if self.on_frames is not None:
            self.on_frames(n_frames)
        return np.concatenate(out)


class StreamResampler:
    """Block-wise resampling with soxr's streaming resampler (identity when the rates agree).

    The concatenated output equals ``soxr.resample`` of the whole signal (soxr compensates its
    filter delay), ``round(n * out_rate / in_rate)`` samples in all.
    """

    def __init__(self, in_rate, out_rate, channels):
        self.channels = channels
        self.stream = None
        if int(in_rate) != int(out_rate):
            import soxr

            self.stream = soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32")

    def push(self, block, last=False):
        block = np.ascontiguousarray(block, np.float32).reshape(-1, self.channels)
        if self.stream is None:
            return block
        return self.stream.resample_chunk(block, last=last).reshape(-1, self.channels)

    def finish(self):
        return self.push(np.zeros((0, self.channels), np.float32), last=True)


# ---------------------------------------------------------------------------------------------
# models by name or path


def model_fn(model):
    """A function ``(rows, L, 1) float32 -> (rows, L, 1)`` calling ``model`` in inference mode."""
    import tensorflow as tf

    length = model.input_shape[1] if isinstance(model.input_shape, tuple) else None

    @tf.function(input_signature=[tf.TensorSpec([None, length, 1], tf.float32)])
    def call(x):
        return model(x, training=False)

    def fn(x):
        return call(tf.constant(x, tf.float32)).numpy()

    return fn


def frame_len_of(model):
    """The model's fixed frame length if its input has one, else :data:`FRAME_LEN`."""
    shape = model.input_shape
    if isinstance(shape, list):
        raise ModelError(f"model {model.name} has {len(shape)} inputs; enhance needs one")
    if len(shape) != 3 or shape[2] not in (None, 1):
        raise ModelError(
            f"model {model.name} takes input {shape}; enhance needs (batch, samples, 1)"
        )
    return int(shape[1]) if shape[1] else FRAME_LEN


def ann_name(name):
    """The ANN twin of a shipped spiking model's name (``snn-wave-u-net`` -> ``wave-u-net``)."""
    return name[4:] if name.startswith("snn-") else name


def missing_weights_message(name, weights_dir=None):
    table, ckpt = SOURCE[name]
    folder = Path(weights_dir or shipped.WEIGHTS_DIR)
    return (
        f"model {name!r}: its weights are not shipped in {folder} yet (no {name}.json / "
        f"{name}.h5). They are produced by the pipeline: run `make reproduce-{table}`, then "
        f"`kspikese enhance --export results/runs/{table}-default-seed0/{ckpt} --name {name}`. "
        "Or pass --model PATH to a pipeline checkpoint (.keras file or run folder)."
    )


def resolve_checkpoint(path, ann=False):
    """The ``.keras`` file meant by ``path``: the file itself, or a run folder's checkpoint.

    A run folder (``results/runs/<table>-<data>-seed<S>/``) gives the fine-tuned SNN
    (:data:`RUN_SPIKING`, first found), or with ``ann`` the ANN (:data:`RUN_ANN`).  A checkpoint
    file with ``ann`` gives the ANN checkpoint of its run folder.
    """
    path = Path(path)
    if path.is_dir():
        order = RUN_ANN if ann else RUN_SPIKING
        for name in order:
            if (path / name).is_file():
                return path / name
        raise ModelError(f"{path}: the run folder holds none of {list(order)}")
    if not path.exists():
        raise ModelError(f"{path}: no such model file or folder")
    if ann and path.name != "ann.keras":
        for run in (path.parent, path.parent.parent):
            for name in RUN_ANN:
                if (run / name).is_file():
                    return run / name
        raise ModelError(f"{path}: --ann needs the ANN checkpoint (ann/ann.keras) of its run")
    return path


def load_checkpoint(path):
    """Load a ``.keras`` checkpoint in Keras' safe mode."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path}: expected a .keras checkpoint written by the pipeline")
    try:
        from kspikese import models as _models

        loader = getattr(_models, "load_model", None)
    except ImportError:
        loader = None
    try:
        if loader is not None:
            return loader(path)
        import tensorflow as tf

        return tf.keras.models.load_model(
            str(path), custom_objects=shipped.custom_objects(), safe_mode=True, compile=False
        )
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the model ({exc})") from exc


def load_model(model=DEFAULT_MODEL, ann=False, weights_dir=None):
    """``(keras model, card dict)`` for a shipped name, a card (.json), a .keras file or run folder.

    A Keras model passed in is returned as is (with an empty card).
    """
    if not isinstance(model, (str, os.PathLike)):
        return model, {}
    name = str(model)
    if name in SHIPPED:
        name = ann_name(name) if ann else name
        if name not in shipped.available(weights_dir):
            raise ModelError(missing_weights_message(name, weights_dir))
        try:
            return shipped.load(name, weights_dir)
        except shipped.WeightsError as exc:
            raise ModelError(str(exc)) from exc
    path = Path(name)
    if path.suffix == ".json":
        if ann:
            raise ModelError(f"{path}: --ann applies to shipped names and run folders")
        try:
            return shipped.load(path)
        except shipped.WeightsError as exc:
            raise ModelError(str(exc)) from exc
    if not path.exists() and path.suffix == "":
        raise ModelError(
            f"unknown model {name!r}: use one of {', '.join(SHIPPED)} or a path to a .keras "
            "checkpoint, a run folder or a model card (.json)"
        )
    ckpt = resolve_checkpoint(path, ann)
    return load_checkpoint(ckpt), _run_card(ckpt)


def _run_card(ckpt):
    """A card for a pipeline checkpoint: its path and its run's ``run.json`` (if found)."""
    card = {"name": str(ckpt), "checkpoint": str(ckpt)}
    folder = Path(ckpt).parent
    run_json = folder / "run.json"
    if not run_json.is_file():
        run_json = folder.parent / "run.json"  # ann/ann.keras, finetune/finetuned.keras
    if run_json.is_file():
        with contextlib.suppress(OSError, ValueError):
            import json

            card["run"] = json.loads(run_json.read_text())
    return card


_MODEL_FNS = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=4)
def _cached(model, ann, weights_dir):
    keras_model, card = load_model(model, ann, weights_dir)
    return keras_model, card, model_fn(keras_model)


# ---------------------------------------------------------------------------------------------
# arrays


def enhance(
    audio, sr, model=DEFAULT_MODEL, ann=False, batch_size=BATCH_SIZE, overlap=OVERLAP,
    progress=False, weights_dir=None,
):  # fmt: skip
    """Enhance ``audio`` (samples[, channels], any rate) and return float32 of the same shape.

    ``model`` is a shipped name (:data:`SHIPPED`), a path (model card ``.json``, ``.keras``
    checkpoint or pipeline run folder) or a Keras model mapping ``(batch, samples, 1)`` to the
    same shape; ``ann`` picks the ANN twin of a spiking name.  Each channel is enhanced on its
    own at 16 kHz (resampled from and back to ``sr``), in frames overlapping by ``overlap``.
    The result does not depend on how the audio is split into blocks; for spiking models it
    depends on ``batch_size`` (the seeded initial membrane voltages differ per batch row).
    """
    x = np.asarray(audio)
    if x.ndim not in (1, 2) or x.size == 0:
        raise ValueError(
            f"audio must be a non-empty (samples,) or (samples, channels) array, got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or inf samples")
    if not isinstance(model, (str, os.PathLike)):
        if model not in _MODEL_FNS:  # trace each Keras model once, however often it is used
            _MODEL_FNS[model] = model_fn(model)
        fn, frame_len = _MODEL_FNS[model], frame_len_of(model)
    else:
        keras_model, _, fn = _cached(
            str(model), bool(ann), str(weights_dir) if weights_dir else None
        )
        frame_len = frame_len_of(keras_model)
    x2 = x.reshape(len(x), -1).astype(np.float32)
    pipe = Pipeline(fn, sr, x2.shape[1], frame_len, batch_size, overlap)
    total = num_frames(round(len(x2) * files.SR / sr), frame_len, overlap)
    bar = _bar(progress, total=total, unit="frame")
    pipe.engine.on_frames = bar.update
    with bar:
        parts = [pipe.push(x2[i : i + BLOCK]) for i in range(0, len(x2), BLOCK)]
        parts.append(pipe.finish(len(x2)))
    return np.concatenate(parts).reshape(x.shape)


class Pipeline:
    """Resample to 16 kHz -> overlap-add enhancement -> resample back, block by block."""

    def __init__(
        self, fn, sr, channels, frame_len=FRAME_LEN, batch_size=BATCH_SIZE, overlap=OVERLAP
    ):
        self.down = StreamResampler(sr, files.SR, channels)
        self.up = StreamResampler(files.SR, sr, channels)
        self.engine = OverlapAdd(fn, channels, frame_len, batch_size, overlap=overlap)
        self.channels = channels
        self.n_out = 0

    def push(self, block):
        y = self.up.push(self.engine.push(self.down.push(block)))
        self.n_out += len(y)
        return y

    def finish(self, n_in):
        """The rest of the output, trimmed or zero-padded so the total is ``n_in`` samples."""
        y16 = np.concatenate([self.engine.push(self.down.finish()), self.engine.finish()])
        y = np.concatenate([self.up.push(y16), self.up.finish()])
        keep = max(0, n_in - self.n_out)
        if len(y) < keep:  # resampling there and back can lose a sample to rounding
            y = np.concatenate([y, np.zeros((keep - len(y), self.channels), np.float32)])
        y = y[:keep]
        self.n_out += len(y)
        return y


# ---------------------------------------------------------------------------------------------
# files and folders


@dataclasses.dataclass
class Job:
    src: Path
    dst: Path


@dataclasses.dataclass
class Summary:
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


def _is_audio_name(path):
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
        if exclude is not None and _inside(current, exclude) and not _inside(folder, exclude):
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
                elif entry.is_file() and _is_audio_name(path):
                    found.append(path)
            except OSError as exc:
                errors.append((path, f"cannot read ({exc.strerror or exc})"))
        stack.extend(reversed(subdirs))
    return sorted(found)


def _inside(path, folder):
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def plan(inputs, output, overwrite=False):
    """Pair every input file with its output path: ``(jobs, errors)``.

    One input file and an ``output`` that is not a folder: ``output`` is the file.  Otherwise
    ``output`` is a folder: an input file lands at ``output/<name>``; one input folder's tree is
    mirrored into ``output``; several input folders each into ``output/<folder name>``.
    Refused (listed in ``errors``): an output equal to its input unless ``overwrite``; an
    output that would land outside ``output`` (through ``..`` or a symlink); two inputs with the
    same output; inputs that do not exist.
    """
    output = Path(output)
    inputs = [Path(p) for p in inputs]
    jobs, errors, seen = [], [], {}
    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    output_is_file = single_file and not (output.is_dir() or str(output).endswith(os.sep))
    for src_root in inputs:
        if src_root.is_dir():
            root = output if len(inputs) == 1 else output / src_root.resolve().name
            pairs = [
                (f, root / f.relative_to(src_root)) for f in find_audio(src_root, errors, output)
            ]
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
    if not output_is_file and not _inside(dst, output):
        return f"refused: its output {dst} would land outside the output folder {output}"
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(dst, src)):
        if not overwrite:
            return f"refused: the output {dst} is the input itself (pass --overwrite to replace it)"
    return None


def enhance_file(
    src, dst, fn, frame_len=FRAME_LEN, batch_size=BATCH_SIZE, on_frames=None, overlap=OVERLAP
):
    """Enhance one file into ``dst`` (same format, subtype, rate, channels, length); seconds read.

    Raises :class:`kspikese.files.AudioError` naming the file for unreadable input (empty, not
    audio, truncated header, NaN/inf samples).  ``dst`` is written under a temporary name and
    renamed, so it is either complete or untouched.
    """
    import soundfile as sf

    src, dst = Path(src), Path(dst)
    try:
        reader = sf.SoundFile(str(src))
    except Exception as exc:
        raise files.AudioError(f"{src}: cannot read audio ({_short(exc)})") from exc
    with reader:
        sr, channels = reader.samplerate, reader.channels
        if reader.frames == 0:
            raise files.AudioError(f"{src}: the file holds no samples")
        fmt, subtype, endian = _output_format(reader, dst)
        pipe = Pipeline(fn, sr, channels, frame_len, batch_size, overlap)
        pipe.engine.on_frames = on_frames
        clip = not subtype.startswith(("FLOAT", "DOUBLE"))
        n_read = 0
        with files.atomic_path(dst) as tmp:
            try:
                writer = sf.SoundFile(str(tmp), "w", sr, channels, subtype, endian, fmt)
            except Exception as exc:
                raise files.AudioError(f"{dst}: cannot write {fmt}/{subtype} ({_short(exc)})") from exc
            with writer:
                blocks = reader.blocks(blocksize=BLOCK, dtype="float32", always_2d=True)
                while True:
                    try:
                        block = next(blocks)
                    except StopIteration:
                        break
                    except Exception as exc:  # libsndfile errors in the middle of a damaged file
                        raise files.AudioError(
                            f"{src}: cannot read audio after sample {n_read} ({_short(exc)})"
                        ) from exc
                    _check_finite(block, src, n_read)
                    n_read += len(block)
                    _write(writer, pipe.push(block), clip, dst)
                if n_read == 0:
                    raise files.AudioError(f"{src}: the file holds no readable samples")
                _write(writer, pipe.finish(n_read), clip, dst)
    return n_read / sr


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
        raise files.AudioError(
            f"{src}: the audio contains NaN or inf samples (first at sample {offset + sample}, "
            f"channel {channel})"
        )


def _write(writer, y, clip, dst):
    if len(y):
        try:
            writer.write(np.clip(y, -1.0, 1.0) if clip else y)
        except Exception as exc:  # disk full, ...
            raise files.AudioError(f"{dst}: cannot write ({_short(exc)})") from exc


def _short(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _bar(enabled, **kwargs):
    from tqdm import tqdm

    return tqdm(disable=not enabled, file=sys.stderr, dynamic_ncols=True, **kwargs)


def enhance_paths(
    inputs, output, model=DEFAULT_MODEL, ann=False, overwrite=False, batch_size=BATCH_SIZE,
    progress=True, weights_dir=None, log=None, overlap=OVERLAP,
):  # fmt: skip
    """Enhance files and folders into ``output`` (see :func:`plan`); return a :class:`Summary`.

    A file that fails is reported through ``log(path, message)`` (default: stderr) and the run
    goes on with the others; ``Summary.failed`` counts the failures.  Model problems raise
    :class:`ModelError` before any file is touched.
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
        keras_model, _, fn = (
            _cached(str(model), bool(ann), str(weights_dir) if weights_dir else None)
            if isinstance(model, (str, os.PathLike))
            else (model, {}, model_fn(model))
        )
        frame_len = frame_len_of(keras_model)
        try:  # build the graph before timing the files
            fn(np.zeros((1, frame_len, 1), np.float32))
        except Exception as exc:
            raise ModelError(f"model {model}: fails on a (1, {frame_len}, 1) frame ({exc})") from exc
        with _bar(progress and len(jobs) > 1, total=len(jobs), unit="file") as files_bar:
            for job in jobs:
                estimate = _frames_estimate(job.src, frame_len, overlap)
                with _bar(
                    progress, total=estimate, unit="frame", desc=job.src.name, leave=False
                ) as fb:
                    try:
                        t_file = time.perf_counter()
                        seconds = enhance_file(
                            job.src, job.dst, fn, frame_len, batch_size, fb.update, overlap
                        )
                        summary.process_seconds += time.perf_counter() - t_file
                        summary.audio_seconds += seconds
                        summary.done += 1
                    except (files.AudioError, OSError) as exc:
                        report(
                            job.src,
                            str(exc) if isinstance(exc, files.AudioError) else _os_message(exc),
                        )
                files_bar.update(1)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _frames_estimate(path, frame_len, overlap):
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return num_frames(round(info.frames * files.SR / info.samplerate), frame_len, overlap) or None
    except Exception:
        return None


def _os_message(exc):
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}"


# ---------------------------------------------------------------------------------------------
# shipping trained models


def si_snr(clean, est):
    """Scale-invariant SNR in dB: ``10 log10(|a s|^2 / |a s - e|^2)``, ``a = <e,s>/|s|^2``."""
    s = np.asarray(clean, np.float64) - np.mean(clean)
    e = np.asarray(est, np.float64) - np.mean(est)
    target = s * (np.dot(e, s) / max(np.dot(s, s), 1e-12))
    return 10 * np.log10(max(np.dot(target, target), 1e-12) / max(np.sum((target - e) ** 2), 1e-12))


def read_named_pairs(clean_dir, noisy_dir, limit=None):
    """``[(name, noisy, clean)]`` 16 kHz arrays for the files of ``noisy_dir`` with a namesake in
    ``clean_dir`` (matched by relative path without suffix, sorted), at most ``limit`` of them;
    ``name`` is the noisy file's path relative to ``noisy_dir``."""
    clean_dir, noisy_dir = Path(clean_dir), Path(noisy_dir)
    errors = []
    clean = {p.relative_to(clean_dir).with_suffix(""): p for p in find_audio(clean_dir, errors)}
    noisy = {p.relative_to(noisy_dir).with_suffix(""): p for p in find_audio(noisy_dir, errors)}
    if errors:
        raise files.AudioError("; ".join(f"{p}: {m}" for p, m in errors))
    common = sorted(set(clean) & set(noisy))[:limit]
    if not common:
        raise files.AudioError(f"{noisy_dir}: no audio file with a namesake in {clean_dir}")
    pairs = []
    for key in common:
        n, c = files.read_audio(noisy[key]), files.read_audio(clean[key])
        m = min(len(n), len(c))
        pairs.append((str(noisy[key].relative_to(noisy_dir)), n[:m], c[:m]))
    return pairs


def read_pairs(clean_dir, noisy_dir, limit=None):
    """``[(noisy, clean)]``: :func:`read_named_pairs` without the names."""
    return [(noisy, clean) for _, noisy, clean in read_named_pairs(clean_dir, noisy_dir, limit)]


def float16_check(model, reloaded, pairs, batch_size=BATCH_SIZE):
    """Mean SI-SNR (dB) over (noisy, clean) 16 kHz ``pairs``: float32 vs float16 weights."""
    full, half = [], []
    for noisy, clean in pairs:
        full.append(si_snr(clean, enhance(noisy, files.SR, model, batch_size=batch_size)))
        half.append(si_snr(clean, enhance(noisy, files.SR, reloaded, batch_size=batch_size)))
    return {
        "files": len(full),
        "si_snr_float32": float(np.mean(full)),
        "si_snr_float16": float(np.mean(half)),
        "delta_db": float(np.mean(half) - np.mean(full)),
    }


def export_shipped(checkpoint, name, card_fields=None, weights_dir=None, test_pairs=None):
    """Ship a pipeline checkpoint as ``weights_dir/NAME.h5`` (float16) + ``NAME.json``; the card.

    ``checkpoint``: a ``.keras`` file, or a run folder (``finetuned.keras`` for ``snn-*`` names,
    ``ann.keras`` otherwise).  ``run.json`` beside it is copied into the card under ``run``;
    ``card_fields`` (data, config, seed, test metrics, ...) are merged in.

    Weights are stored as float16.  With ``test_pairs`` ((noisy, clean) arrays at 16 kHz, e.g.
    the default test set) the float16 model is first compared with the float32 one; if the
    mean SI-SNR moves by :data:`FLOAT16_TOLERANCE_DB` or more, float32 weights are shipped
    instead (still refused above 12 MB).  The check goes into the card (``float16_check``).
    """
    path = Path(checkpoint)
    if path.is_dir():
        path = resolve_checkpoint(path, ann=not name.startswith("snn-"))
    model = load_checkpoint(path)
    fields = {"source_checkpoint": str(path)}
    fields.update({k: v for k, v in _run_card(path).items() if k == "run"})
    fields.update(card_fields or {})
    folder = Path(weights_dir or shipped.WEIGHTS_DIR)
    pairs = list(test_pairs) if test_pairs is not None else None
    dtype = "float16"
    if pairs:
        staging = folder / f".{name}.staging"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            shipped.export(model, name, fields, staging)
            reloaded, _ = shipped.load(name, staging)
            check = float16_check(model, reloaded, pairs)
        finally:
            for p in staging.glob("*"):
                p.unlink()
            staging.rmdir()
        check["passed"] = abs(check["delta_db"]) < FLOAT16_TOLERANCE_DB
        check["tolerance_db"] = FLOAT16_TOLERANCE_DB
        fields["float16_check"] = check
        if not check["passed"]:
            warnings.warn(
                f"{name}: float16 weights move the mean SI-SNR by {check['delta_db']:+.3f} dB "
                f"(limit {FLOAT16_TOLERANCE_DB} dB): shipping float32 weights",
                stacklevel=2,
            )
            dtype = "float32"
    card = shipped.export(model, name, fields, folder, dtype)
    _cached.cache_clear()
    return card
