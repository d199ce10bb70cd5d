#!/usr/bin/env python
"""Resample a noisy VCTK (Valentini) copy to 16 kHz into the cache and print the split sizes.

    python data_prep/prepare_vctk.py /path/to/vctk [--cache data/cache/vctk-16k] [--seed 0]

The folder must hold clean_trainset_28spk_wav/, noisy_trainset_28spk_wav/, clean_testset_wav/
and noisy_testset_wav/.  Later runs reuse the cache.
"""

import argparse

from kspikese.data import vctk_pairs

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--cache", default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    for split in ("train", "valid", "test"):
        pairs = vctk_pairs(a.root, split, seed=a.seed, cache=a.cache)
        print(f"{split}: {len(pairs)} pairs")
