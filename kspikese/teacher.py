"""Teacher targets for stage 3: fine-tune the SNN towards its ANN as well as the clean speech.

With the teacher share :math:`\\alpha \\in [0, 1]` (``finetune: teacher:``) every training
target :math:`s` of the spike-aware fine-tune becomes

.. math:: t = (1 - \\alpha)\\, s + \\alpha\\, f_{ANN}(x),

where :math:`f_{ANN}(x)` is the output of the ANN the SNN was converted from, on the same noisy
input :math:`x`, computed in inference mode and held fixed (no gradient flows into the ANN).
:math:`\\alpha = 0` is the paper's fine-tune (clean targets); :math:`\\alpha = 1` distils the
ANN alone, so the SNN learns to undo its own conversion error rather than to improve on the
ANN. The loss is unchanged (the table's SNR loss between :math:`t` and the SNN's output);
validation, early stopping and the kept epoch still score the SNN against clean speech.
"""

import math


def share(value, key="finetune: teacher"):
    """``value`` as the teacher share :math:`\\alpha`, a number in [0, 1]; else a ``ValueError``
    that names ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"{key} must be a number in [0, 1] (the share of the ANN's output in "
                         f"the fine-tune's targets), got {value!r}")
    return float(value)


def blend(dataset, ann, alpha):
    """``dataset`` of ``(noisy, clean)`` batches with each target replaced by
    ``(1 - alpha) * clean + alpha * ann(noisy)`` (ANN in inference mode, no gradient)."""
    import tensorflow as tf

    def targets(noisy, clean):
        taught = tf.stop_gradient(ann(noisy, training=False))
        return noisy, (1.0 - alpha) * clean + alpha * tf.cast(taught, clean.dtype)

    return dataset.map(targets, num_parallel_calls=1, deterministic=True)


def blended(make_train, ann, alpha):
    """``epoch -> dataset``: the training stream ``make_train`` (a callable ``epoch -> dataset``
    or one dataset) with teacher targets (:func:`blend`)."""
    from kspikese.training import epoch_data

    make = epoch_data(make_train)
    return lambda epoch: blend(make(epoch), ann, alpha)


def blended_replicas(replica_data, ann, alpha):
    """The per-replica training input ``replica_data`` (``epoch -> (dataset_fn, steps)`` or
    ``None``, :func:`kspikese.distribute.training_input`) with teacher targets."""
    def per_epoch(epoch):
        got = replica_data(epoch)
        if got is None:
            return None
        dataset_fn, steps = got
        return (lambda context: blend(dataset_fn(context), ann, alpha)), steps

    return per_epoch
