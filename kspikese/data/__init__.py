"""Corpora for kspikese: the default corpus built from packaged recordings, loaders for the
corpora users own (noisy VCTK, TIMIT + speech-shaped noise), and framing into tf.data pipelines.

TensorFlow is imported only by :func:`frame_dataset`.
"""

from kspikese.data.default import ensure_default_corpus, load_manifest, verify
from kspikese.data.framing import frame, frame_dataset, iter_utterances, unframe
from kspikese.data.pairs import CorpusError, Pair, list_pairs
from kspikese.data.timit import timit_pairs
from kspikese.data.vctk import vctk_pairs

__all__ = [
    "CorpusError", "Pair", "ensure_default_corpus", "frame", "frame_dataset", "iter_utterances",
    "list_pairs", "load_manifest", "timit_pairs", "unframe", "vctk_pairs", "verify",
]
