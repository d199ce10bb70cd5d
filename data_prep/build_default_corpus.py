#!/usr/bin/env python
"""Build the default corpus (same as `make data` / `python -m kspikese data`).

    python data_prep/build_default_corpus.py [--out data] [--seed 0] [--source DIR] [--no-megaglest]
"""

import argparse
import sys

from kspikese.data import cli

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_arguments(parser)
    sys.exit(cli.run(parser.parse_args()))
