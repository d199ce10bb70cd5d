"""Frames of 16,384 samples (the paper's fine-tuning frame) and tf.data pipelines of them.

``frame`` cuts a signal of ``L`` samples into ``n = ceil(L / frame_len)`` non-overlapping frames;
the last one is zero-padded and ``n_valid`` (1..frame_len) says how many of its samples are real.
``unframe`` concatenates the frames and keeps the first ``L`` samples, so
``unframe(*frame(x)[:1], len(x)) == x``.

Masking of the padding: padded samples are zero in *both* the noisy input and the clean target.
:func:`frame_dataset` can also yield a third tensor, ``mask`` (1.0 on real samples, 0.0 on padding,
shape ``(batch, frame_len, 1)``), which Keras ``fit`` takes as per-sample weights; a loss that
reduces over time can multiply its error by it instead.
"""

import zlib

import numpy as np

from kspikese.audio_io import AudioError, sf_name

FRAME_LEN = 16384
PREFETCH_BATCHES = 2  # batches a training or validation pipeline reads ahead


def frame(x, frame_len=FRAME_LEN):
    """Cut ``x`` (1-D) into ``(frames[n, frame_len], n_valid)``; the last frame is zero-padded."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"frame() wants a 1-D signal, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError("frame() got an empty signal")
    if frame_len < 1:
        raise ValueError(f"frame_len must be >= 1, got {frame_len}")
    n = -(-len(x) // frame_len)
    out = np.zeros((n, frame_len), dtype=x.dtype)
    out.reshape(-1)[: len(x)] = x
    return out, len(x) - (n - 1) * frame_len


def stacked_frames(signals, frame_len=FRAME_LEN, max_frames=None):
    """The :func:`frame` frames of ``signals`` (1-D each), one after another, as a float32 model
    input ``(n, frame_len, 1)``; at most the first ``max_frames`` (``None``: all)."""
    frames = np.concatenate([frame(np.asarray(x), frame_len)[0] for x in signals], 0)
    return frames[:max_frames][..., None].astype(np.float32)


def unframe(frames, length):
    """Inverse of :func:`frame`: concatenate ``frames`` and keep the first ``length`` samples."""
    frames = np.asarray(frames)
    if frames.ndim == 3 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim != 2:
        raise ValueError(f"unframe() wants frames of shape (n, frame_len), got {frames.shape}")
    if not 0 < length <= frames.size:
        raise ValueError(f"length {length} does not fit in {frames.shape[0]} frames of {frames.shape[1]}")
    return frames.reshape(-1)[:length]


def read_pair(pair):
    """``(clean, noisy)`` float32 arrays of one pair; AudioError if their lengths differ."""
    from kspikese.data.audio import load

    name, clean_path, noisy_path = pair
    clean, noisy = load(clean_path), load(noisy_path)
    if len(clean) != len(noisy):
        raise AudioError(
            f"{name}: clean {clean_path} has {len(clean)} samples but noisy {noisy_path} has "
            f"{len(noisy)}; a pair must be sample-aligned"
        )
    return clean, noisy


def iter_utterances(pairs):
    """Yield ``(name, clean, noisy)`` whole utterances (float32, 16 kHz) for evaluation."""
    for pair in pairs:
        clean, noisy = read_pair(pair)
        yield pair[0], clean, noisy


def _frame_counts(pairs, frame_len):
    import soundfile as sf

    from kspikese.audio_io import SR

    counts = []
    for _, c, _ in pairs:
        try:
            info = sf.info(sf_name(c))
            n = int(np.ceil(info.frames * SR / info.samplerate))
        except Exception:  # SPHERE or unreadable: find out when reading it
            n = frame_len
        counts.append(max(1, -(-n // frame_len)))
    return counts


def frame_dataset(pairs, frame_len=FRAME_LEN, batch_size=8, shuffle=True, seed=0, max_frames=None,
                  return_mask=False, shuffle_buffer=512, drop_remainder=False):
    """A ``tf.data.Dataset`` of ``(noisy, clean)`` float32 batches of shape
    ``(batch, frame_len, 1)`` (``(noisy, clean, mask)`` with ``return_mask``).

    Utterances are streamed from disk, cut with :func:`frame`, and (when ``shuffle``) read in a
    seeded order that changes every epoch, then mixed in a seeded shuffle buffer of
    ``shuffle_buffer`` frames.  ``max_frames`` keeps a fixed subset: the first utterances of one
    seeded order until they hold ``max_frames`` frames, and at most that many frames per epoch.
    """
    import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
    import tensorflow as tf

    pairs = list(pairs)
    if not pairs:
        raise ValueError("frame_dataset() got no pairs")
    order0 = np.arange(len(pairs))
    if max_frames is not None:
        counts = _frame_counts(pairs, frame_len)
        order0 = np.random.default_rng([seed, 1]).permutation(len(pairs))
        keep, total = [], 0
        for i in order0:
            if total >= max_frames:
                break
            keep.append(i)
            total += counts[i]
        order0 = np.array(sorted(keep))
    epoch = [0]

    def gen():
        order = order0
        if shuffle:
            order = np.random.default_rng([seed, 2, epoch[0]]).permutation(order0)
        epoch[0] += 1
        made = 0
        for i in order:
            clean, noisy = read_pair(pairs[i])
            cf, n_valid = frame(clean, frame_len)
            nf, _ = frame(noisy, frame_len)
            for k in range(len(cf)):
                if max_frames is not None and made >= max_frames:
                    return
                valid = frame_len if k < len(cf) - 1 else n_valid
                mask = np.zeros((frame_len, 1), np.float32)
                mask[:valid] = 1.0
                made += 1
                yield nf[k][:, None], cf[k][:, None], mask

    spec = tf.TensorSpec((frame_len, 1), tf.float32)
    ds = tf.data.Dataset.from_generator(gen, output_signature=(spec, spec, spec))
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=zlib.crc32(f"frames-{seed}".encode()),
                        reshuffle_each_iteration=True)
    if not return_mask:
        ds = ds.map(lambda n, c, m: (n, c))
    return prefetched(ds.batch(batch_size, drop_remainder=drop_remainder))


def prefetched(ds, batches=PREFETCH_BATCHES):
    """``ds`` reading ``batches`` batches ahead on a background thread, with tf.data's autotuning
    off.

    ``prefetch(AUTOTUNE)`` starts a thread that re-tunes the buffers on a period that keeps
    growing, and destroying the iterator (at the end of every ``fit`` and ``evaluate`` call, so
    every epoch) waits for that thread to wake: idle seconds per epoch, more the longer the
    epoch.  A fixed buffer needs no tuning thread; the pipelines here are one Python generator
    each, so there is nothing else to tune.
    """
    import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(int(batches)).with_options(options)
