#!/usr/bin/env python
"""Resample a noisy VCTK (Valentini) copy to 16 kHz into the cache and print the split sizes.

    python data_prep/prepare_vctk.py /path/to/vctk [--cache data/cache/vctk-16k] [--seed 0]

The folder must hold clean_trainset_28spk_wav/, noisy_trainset_28spk_wav/, clean_testset_wav/
and noisy_testset_wav/.  Later runs reuse the cache.
"""

from kspikese.data import vctk_pairs
from kspikese.data.pairs import prepare_main

if __name__ == "__main__":
    prepare_main(vctk_pairs, __doc__, "pairs")
