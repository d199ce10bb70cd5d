"""Statistics of the layers that only move, copy or drop values (free, except interpolation).

Memory layout is not an operation of the network: reshaping, padding with zeros, cropping,
nearest-neighbour copying and concatenation route values (spike trains keep their targets; the
next layer's connections already count every element it reads).  Dropout and noise layers are
the identity at inference.
"""

import kspikese  # noqa: F401
import tensorflow as tf

from kspikese.energy.registry import Counts, output_elements, register_layer

layers = tf.keras.layers

ROUTING = (layers.InputLayer, layers.Reshape, layers.Flatten, layers.Permute,
           layers.RepeatVector, layers.Concatenate,
           layers.Cropping1D, layers.Cropping2D, layers.Cropping3D,
           layers.ZeroPadding1D, layers.ZeroPadding2D, layers.ZeroPadding3D,
           layers.UpSampling1D, layers.UpSampling3D)
IDENTITY_AT_INFERENCE = (layers.Dropout, layers.GaussianNoise, layers.GaussianDropout,
                         layers.AlphaDropout, layers.ActivityRegularization)


@register_layer(*ROUTING, *IDENTITY_AT_INFERENCE)
def free_stats(node):
    """Routing and inference-time identity layers: :math:`C = N = 0`.

    ``InputLayer``, ``Reshape``, ``Flatten``, ``Permute``, ``RepeatVector``, ``Concatenate``,
    ``CroppingND``, ``ZeroPaddingND``, ``UpSampling1D``/``3D`` (nearest neighbour: copies),
    ``Dropout`` (and ``SpatialDropoutND``), ``GaussianNoise``, ``GaussianDropout``,
    ``AlphaDropout``, ``ActivityRegularization``.
    """
    return Counts()


@register_layer(layers.UpSampling2D)
def upsampling2d_stats(node):
    """``UpSampling2D``: free with ``interpolation="nearest"`` (copies); otherwise each output
    element blends the 2×2 nearest inputs: :math:`C = 4 \\cdot \\text{output elements}`.

    Example: bilinear ``UpSampling2D(2)`` on ``(3, 3, 2)``: ``4 · 6 · 6 · 2 = 288``.
    """
    if getattr(node.layer, "interpolation", "nearest") == "nearest":
        return Counts()
    return Counts(connections=4 * output_elements(node))
