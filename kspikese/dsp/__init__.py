"""Signal processing blocks of the inference path: overlap-add framing and streaming resampling.

- :mod:`~kspikese.dsp.overlap_add`: the synthesis window, frame counts and :class:`OverlapAdd`,
  which streams a signal through a frame function with cross-faded seams;
- :mod:`~kspikese.dsp.resample`: :class:`StreamResampler`, block-wise soxr resampling.
"""

from kspikese.dsp.overlap_add import (OVERLAP, NonFiniteOutput, OverlapAdd, crossfade_ramp,
                                      num_frames, overlap_samples, synthesis_window)
from kspikese.dsp.resample import StreamResampler

__all__ = ["NonFiniteOutput", "OVERLAP", "OverlapAdd", "StreamResampler", "crossfade_ramp",
           "num_frames", "overlap_samples", "synthesis_window"]
