"""Block-wise resampling with soxr's streaming resampler."""

import numpy as np


class StreamResampler:
    """Resample ``(samples, channels)`` blocks from ``in_rate`` to ``out_rate`` Hz as they come.

    Uses ``soxr.ResampleStream`` (soxr's default high quality); the identity when the rates agree.
    The concatenated output of :meth:`push` and :meth:`finish` equals ``soxr.resample`` of the
    whole signal (soxr compensates its filter delay): ``round(n * out_rate / in_rate)`` samples.

    Parameters
    ----------
    in_rate, out_rate : int
        Sample rates (Hz).
    channels : int
        Channels per block.
    """

    def __init__(self, in_rate, out_rate, channels):
        self.channels = int(channels)
        self.stream = None
        if int(in_rate) != int(out_rate):
            import soxr

            self.stream = soxr.ResampleStream(in_rate, out_rate, self.channels, dtype="float32")

    def push(self, block, last=False):
        """Resample one block; returns the output samples available so far."""
        block = np.ascontiguousarray(block, np.float32).reshape(-1, self.channels)
        if self.stream is None:
            return block
        return self.stream.resample_chunk(block, last=last).reshape(-1, self.channels)

    def finish(self):
        """Flush the resampler's delay line: the last output samples."""
        return self.push(np.zeros((0, self.channels), np.float32), last=True)
