"""Overlap-add of fixed-length frames, streaming: the synthesis window and the engine.

A model sees frames of ``L`` samples.  A signal of any length is cut into frames that overlap by
``O = round(overlap * L)`` samples (``0 <= overlap <= 1/2``; frame ``k`` starts at
``s_k = k hop - O``, ``hop = L - O``), each frame is processed on its own, and consecutive
outputs are cross-faded over their ``O`` common samples with the raised-sine ramp

    r[n] = sin^2(pi n / (2 O)),   n = 0 .. O-1   (the earlier frame gets 1 - r[n]),

i.e. the output there is ``a + r[n] (b - a)`` for the earlier frame's output ``a`` and the later
frame's ``b``; elsewhere a sample is covered by one frame and taken as is.  This is overlap-add
with the window :func:`synthesis_window` (rising ramp, flat top, falling ramp), whose copies
shifted by ``hop`` sum to exactly one; for ``overlap = 1/2`` it is the periodic Hann window
``w[n] = sin^2(pi n / L)``.  So a function that returns its input returns the signal bit for bit,
and a frame-dependent offset ``c_k`` moves the output by at most
``|c_{k+1} - c_k| pi / (2 O)`` from one sample to the next.  The signal is padded with ``O``
zeros in front (so its first samples are cross-faded too) and with zeros at the end up to the
last frame.

``overlap = 0`` is plain framing: ``ceil(n / L)`` frames starting at ``0, L, 2L, ...``, the last
one zero-padded, outputs concatenated and cut to ``n`` samples (as
:func:`kspikese.data.framing.frame` / ``unframe``).

Frames whose input is exactly zero get an output of zero (digital silence stays silent, whatever
a model's biases would make of it); they are still part of the function call, so the other rows
of a call do not change.

Peak memory is bounded by ``batch_size``: ``fn`` never sees more than ``batch_size`` rows, also
when one frame has more channels than that (its rows are then split over several calls).  With
``check_finite`` a NaN or infinite output sample raises :class:`NonFiniteOutput` naming the frame
and channel.
"""

import numpy as np

from kspikese.data.framing import FRAME_LEN

OVERLAP = 0.25  # default overlap, a fraction of a frame: 4096-sample cross-fades at L = 16384


class NonFiniteOutput(ValueError):
    """The frame function returned NaN or inf; ``frame`` and ``channel`` say where first."""

    def __init__(self, frame, channel, frame_len):
        self.frame, self.channel, self.frame_len = int(frame), int(channel), int(frame_len)
        super().__init__(f"returned NaN or inf for frame {self.frame} (channel {self.channel}, "
                         f"frames of {self.frame_len} samples at 16 kHz)")


def overlap_samples(frame_len, overlap):
    """``O = round(overlap * L)`` (at least 1 when ``overlap > 0``); ``overlap`` in [0, 1/2].

    Raises
    ------
    ValueError
        ``overlap`` outside [0, 0.5].
    """
    if not 0 <= overlap <= 0.5:
        raise ValueError(f"overlap must be in [0, 0.5], got {overlap}")
    return 0 if overlap == 0 else max(1, int(round(frame_len * overlap)))


def crossfade_ramp(o):
    """``r[n] = sin^2(pi n / (2 O))``, n = 0 .. O-1: the later frame's weight in an overlap."""
    if o == 0:
        return np.zeros(0, np.float32)
    return (np.sin(np.pi * np.arange(o) / (2 * o)) ** 2).astype(np.float32)


def synthesis_window(frame_len, overlap=OVERLAP):
    """The overlap-add window: ``sin^2`` ramps over ``O`` samples, one in between.

    Parameters
    ----------
    frame_len : int
        ``L``, the frame length.
    overlap : float
        Fraction of a frame, in [0, 0.5].

    Returns
    -------
    np.ndarray
        float32 ``w[L]`` with ``w[n] + w[n + hop] = 1`` on the overlaps; all ones for
        ``overlap = 0``; the periodic Hann window ``sin^2(pi n / L)`` for ``overlap = 0.5``.
    """
    o = overlap_samples(frame_len, overlap)
    w = np.ones(frame_len, np.float32)
    w[:o] = crossfade_ramp(o)
    w[frame_len - o :] = 1 - crossfade_ramp(o)
    return w


def num_frames(n, frame_len=FRAME_LEN, overlap=OVERLAP):
    """Frames needed for ``n`` samples: ``ceil((n + O) / hop)`` (frame k starts at ``k hop - O``).

    ``overlap = 0`` gives ``ceil(n / L)``; ``n <= 0`` gives 0.
    """
    o = overlap_samples(frame_len, overlap)
    hop = frame_len - o
    return 0 if n <= 0 else -(-(n + o) // hop)


class OverlapAdd:
    """Stream ``(samples, channels)`` blocks through ``fn`` frame by frame, with overlap-add.

    Parameters
    ----------
    fn : callable
        Maps float32 ``(rows, L, 1)`` to ``(rows, L, 1)``.  Rows are (frame, channel) pairs in
        frame-major order, at most ``batch_size`` per call.
    channels : int
        Channels of the signal; each is processed on its own.
    frame_len : int
        ``L``.
    batch_size : int
        Rows per call of ``fn``.
    on_frames : callable, optional
        Called with the number of frames after each call of ``fn`` (progress bars).
    overlap : float
        Fraction of a frame, in [0, 0.5].
    check_finite : bool
        Raise :class:`NonFiniteOutput` when ``fn`` returns NaN or inf.

    Notes
    -----
    :meth:`push` returns the output samples that are final so far; :meth:`finish` pads the end,
    flushes, and returns the rest, so the outputs together have as many samples as the inputs.
    The output does not depend on how the input is cut into blocks.
    """

    def __init__(self, fn, channels, frame_len=FRAME_LEN, batch_size=1, on_frames=None,
                 overlap=OVERLAP, check_finite=False):
        self.fn, self.channels, self.frame_len = fn, int(channels), int(frame_len)
        self.batch_size = max(1, int(batch_size))
        self.check_finite = check_finite
        self.overlap = overlap
        self.o = overlap_samples(self.frame_len, overlap)
        self.hop = self.frame_len - self.o
        self.frames_per_call = max(1, int(batch_size) // self.channels)
        self.on_frames = on_frames
        self.rise = crossfade_ramp(self.o)[:, None]
        self.buffer = np.zeros((self.o, self.channels), np.float32)  # the O zeros in front
        self.tail = np.zeros((self.o, self.channels), np.float32)  # last frame's final O samples
        self.skip = self.o  # output samples that belong to the zeros in front
        self.pending = []  # input frames waiting for a call of fn
        self.n_in = 0  # samples pushed
        self.n_out = 0  # samples returned
        self.n_frames = 0  # frames processed
        self.finished = False

    def push(self, block):
        """Add ``block`` (samples[, channels]); return the output samples now final."""
        block = np.asarray(block, np.float32).reshape(-1, self.channels)
        self.n_in += len(block)
        self.buffer = np.concatenate([self.buffer, block]) if len(block) else self.buffer
        return self._drain(final=False)

    def finish(self):
        """Zero-pad up to the last frame, process what is left and return the rest."""
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
        for start in range(0, len(rows), self.batch_size):  # at most batch_size rows per call
            part = slice(start, start + self.batch_size)
            if silent[part].all():
                continue
            chunk = rows[part]
            y = np.asarray(self.fn(chunk[:, :, None]), np.float32)
            if y.shape[:2] != (len(chunk), length) or y.size != chunk.size:
                raise ValueError(
                    f"the model returned shape {y.shape} for input {(len(chunk), length, 1)}; "
                    "it must map (batch, samples, 1) to the same shape"
                )
            y = y.reshape(len(chunk), length)
            y[silent[part]] = 0.0
            if self.check_finite:
                bad = ~np.isfinite(y)
                if bad.any():
                    row = start + int(np.argwhere(bad)[0][0])
                    raise NonFiniteOutput(self.n_frames + row // channels, row % channels, length)
            enhanced[part] = y
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
