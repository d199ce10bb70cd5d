"""Statistics of the pooling layers.

A pooled input element costs one operation per output it belongs to: an add (average, whose
``1/K`` scale folds into the next linear layer) or a comparison (max), counted as a connection.
"""

import numpy as np

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese.energy.registry import Counts, input_elements, output_elements, register_layer

layers = tf.keras.layers

POOLING = (layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D,
           layers.AveragePooling1D, layers.AveragePooling2D, layers.AveragePooling3D)
GLOBAL_POOLING = (layers.GlobalMaxPooling1D, layers.GlobalMaxPooling2D, layers.GlobalMaxPooling3D,
                  layers.GlobalAveragePooling1D, layers.GlobalAveragePooling2D,
                  layers.GlobalAveragePooling3D)


@register_layer(*POOLING)
def pooling_stats(node):
    """Max/average pooling: every output element reads its window of ``K = prod(pool_size)``.

    .. math:: C = (\\text{output elements}) \\cdot K

    Windows overlap when ``strides < pool_size`` and are cut at the border with
    ``padding="same"``; both are counted as full windows.  Example: ``MaxPooling2D(3, strides=2)``
    on ``(7, 7, 2)`` (valid): ``3 · 3 · 2 · 9 = 162``.
    """
    window = int(np.prod(node.layer.pool_size, dtype=np.int64))
    return Counts(connections=output_elements(node) * window)


@register_layer(*GLOBAL_POOLING)
def global_pooling_stats(node):
    """Global max/average pooling: each input element is read once, by its channel's output.

    .. math:: C = \\text{input elements}

    Example: ``GlobalAveragePooling2D`` on ``(4, 4, 3)``: ``48``.
    """
    return Counts(connections=input_elements(node))
