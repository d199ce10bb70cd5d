#!/usr/bin/env python
"""Build TIMIT + speech-shaped noise (-6, -3, 0, +3, +6 dB) from a TIMIT copy, cached on disk.

    python data_prep/prepare_timit_ssn.py /path/to/TIMIT [--cache data/timit-ssn] [--seed 0]

The folder must hold TRAIN/<DR>/<SPEAKER>/<UTT>.WAV and TEST/... (NIST SPHERE or RIFF).
"""

import argparse

from kspikese.data import timit_pairs

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--cache", default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for split in ("train", "valid", "test"):
        pairs = timit_pairs(a.root, split, seed=a.seed, cache=a.cache)
        print(f"{split}: {len(pairs)} mixtures")
