"""Tiny Keras models with known outputs, shared by the enhance tests."""

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf


def gain_bias_model(gain=0.5, bias=0.25, frame=None):
    """y = gain x + bias: a model whose output on silence is not silence."""
    x = tf.keras.Input((frame, 1))
    y = tf.keras.layers.Conv1D(
        1, 1, kernel_initializer=tf.keras.initializers.Constant(gain),
        bias_initializer=tf.keras.initializers.Constant(bias),
    )(x)  # fmt: skip
    return tf.keras.Model(x, y)


def identity_model(frame=None):
    """y = x: a 1x1 convolution with a unit kernel."""
    x = tf.keras.Input((frame, 1))
    y = tf.keras.layers.Conv1D(1, 1, use_bias=False, kernel_initializer="ones")(x)
    return tf.keras.Model(x, y)
