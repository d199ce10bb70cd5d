"""Training objectives and metrics in TensorFlow.

SNR loss (paper §4.2), per example, with ``s`` the clean frame and ``ŝ`` the estimate:

    L(s, ŝ) = -10 log10( ||s||² / ||s - ŝ||² )

Its negation is the SNR of :func:`kspikese.metrics.snr.snr`.  A small ``eps`` is added to both
energies so that silent frames (all-zero padding) give a finite loss:

    L = -10 log10( (||s||² + eps) / (||s - ŝ||² + eps) )

SI-SNR (used for early stopping) projects ŝ on the zero-mean target:
``t = <ŝ, s> s / ||s||²``, ``SI-SNR = 10 log10(||t||² / ||ŝ - t||²)``.
"""

import tensorflow as tf

EPS = 1e-8


def _flat(x):
    return tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])


def _db(num, den):
    return 10.0 * (tf.math.log(num + EPS) - tf.math.log(den + EPS)) / tf.math.log(10.0)


def snr_loss(y_true, y_pred):
    """Negative SNR in dB, one value per example (Keras averages over the batch)."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    return -_db(tf.reduce_sum(s**2, -1), tf.reduce_sum((s - s_hat) ** 2, -1))


def si_snr(y_true, y_pred):
    """Scale-invariant SNR in dB, one value per example (a Keras metric)."""
    s, s_hat = _flat(y_true), _flat(y_pred)
    s = s - tf.reduce_mean(s, -1, keepdims=True)
    s_hat = s_hat - tf.reduce_mean(s_hat, -1, keepdims=True)
    alpha = tf.reduce_sum(s_hat * s, -1, keepdims=True) / (tf.reduce_sum(s**2, -1, keepdims=True) + EPS)
    target = alpha * s
    return _db(tf.reduce_sum(target**2, -1), tf.reduce_sum((s_hat - target) ** 2, -1))


def snr(y_true, y_pred):
    """SNR in dB, one value per example (a Keras metric)."""
    return -snr_loss(y_true, y_pred)
