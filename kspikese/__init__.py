"""kspikese: spiking speech enhancement with the three-stage hybrid ANN->SNN scheme.

Importing kspikese pins Keras 2 (``tf_keras``) for TensorFlow, which keras-spiking 0.3.0 needs:
``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is first imported.  TensorFlow itself is
imported lazily, on first use of a name that needs it, so the command line and the corpus builder
start fast.

It also has TensorFlow keep CPU tensors in its own memory pool (``TF_CPU_ALLOCATOR_USE_BFC=true``,
unless the environment sets the variable): with the default ``malloc`` every training step maps,
faults in and zeroes fresh pages for its large tensors.  The numbers are the same either way
(``kspikese.bench.allocator``).  The variable takes effect only if TensorFlow has not been
imported yet.
"""

import os
import sys

__version__ = "0.1.0"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
    if "tensorflow" in sys.modules:
        _tf = sys.modules["tensorflow"]
        _keras_module = getattr(getattr(_tf, "keras", None), "__name__", "")
        _keras_version = str(getattr(getattr(_tf, "keras", None), "__version__", ""))
        # TensorFlow <= 2.15 (the nengo environment's 2.12) has Keras 2 as tf.keras itself
        if not (_keras_module.startswith("tf_keras") or _keras_version.startswith("2.")):
            raise ImportError(
                "kspikese needs Keras 2 (tf_keras), but TensorFlow was already imported with "
                f"Keras 3 ({_keras_module or 'keras'}). Import kspikese before tensorflow, or set "
                "TF_USE_LEGACY_KERAS=1 in the environment before starting Python."
            )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"

# Names resolved on first access (PEP 562), so `import kspikese` does not import TensorFlow.
_LAZY = {
    "to_spiking": "kspikese.convert",
    "enhance": "kspikese.enhancement",
    "enhance_array": "kspikese.inference",
    "evaluate_pair": "kspikese.metrics",
    "evaluate_set": "kspikese.metrics",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kspikese' has no attribute {name!r}")


def keras():
    """Return the Keras 2 module (``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``)."""
    import tensorflow as tf

    return tf.keras
