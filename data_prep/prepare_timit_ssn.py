#!/usr/bin/env python
"""Build TIMIT + speech-shaped noise (-6, -3, 0, +3, +6 dB) from a TIMIT copy, cached on disk.

    python data_prep/prepare_timit_ssn.py /path/to/TIMIT [--cache data/timit-ssn] [--seed 0]

The folder must hold TRAIN/<DR>/<SPEAKER>/<UTT>.WAV and TEST/... (NIST SPHERE or RIFF).
"""

from kspikese.data import timit_pairs
from kspikese.data.pairs import prepare_main

if __name__ == "__main__":
    prepare_main(timit_pairs, __doc__, "mixtures")
