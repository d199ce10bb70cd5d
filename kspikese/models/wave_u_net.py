"""Wave-U-Net as used by the paper (§3.2.1, Fig. 3): an ANN functional model that
:func:`kspikese.to_spiking` turns into SNN-Wave-U-Net.

Structure, for ``depth = 8`` levels and input ``(frame_len, 1)``::

    level i = 1..8 (down):  d{i}_conv   Conv1D(F_i, 15, same, ReLU)         -> skip i
                            d{i}_down   Conv1D(F_i, 2, stride 2, ReLU)       (length / 2)
    bottleneck              Conv1D(F_b, 15, same, ReLU)
    level i = 8..1 (up):    u{i}_up     Conv1DTranspose(F_i, 2, stride 2, ReLU)  (length * 2)
                            u{i}_concat Concatenate([up, skip i])
                            u{i}_conv   Conv1DTranspose(F_i, 5, same, ReLU)
    (input_skip)            Concatenate([u1_conv, audio])   (Stoller et al. 2018, §3.1)
    readout                 Conv1D(1, 3, same, linear)

Every hidden layer is a ReLU (an IF neuron after conversion); the first convolution sees the raw
samples (direct input encoding).  ``frame_len`` must be a multiple of ``2**depth`` (256 for the
paper's depth 8); ``frame_len=None`` accepts any such length.

``input_skip=True`` concatenates the input samples to the last decoder features before the
readout, as the original Wave-U-Net does (Stoller et al. 2018 concatenate the input mixture to
the final feature map).  The readout then sees the noisy sample itself, so it can pass it on and
the network only has to learn what to take away; without it the input reaches the readout only
through 17 ReLU layers.  The paper (§3.2.1) describes the readout as fed by the decoder only, so
the default is ``False``.  The extra channel adds ``readout_kernel`` weights; the input is
analog (direct encoding), as for the first convolution.

Filter schedule (the paper says only "multiples of 24, growing with depth"): ``F_i = 24 ·
max(1, i - 1)``, i.e. 24, 24, 48, 72, 96, 120, 144, 168, and a bottleneck of ``F_b = 24 · 8 =
192``, mirrored on the way up.  That is 2,632,849 parameters, +1.3 % from the paper's 2.60M
(Table 5).  The plain ``F_i = 24 · i`` schedule (24 ... 192, bottleneck 216) would have 3.76M.
"""

import tensorflow as tf

_L = tf.keras.layers


def filter_schedule(depth=8, base=24):
    """``(per-level filters, bottleneck filters)``: ``base · max(1, i - 1)`` and ``base · depth``."""
    return [base * max(1, i - 1) for i in range(1, depth + 1)], base * depth


def build_wave_u_net(frame_len=16384, depth=8, filters=24, bottleneck_filters=None,
                     down_kernel=15, up_kernel=5, readout_kernel=3,
                     kernel_initializer="glorot_uniform", input_skip=False,
                     name="wave_u_net"):
    """Build the ANN Wave-U-Net: ``(None, frame_len, 1) -> (None, frame_len, 1)``.

    ``filters``: an int ``base`` for the schedule ``base · max(1, i - 1)`` (level i = 1..depth),
    or an explicit list of ``depth`` filter counts.  ``bottleneck_filters`` defaults to
    ``base · depth`` (or the last level's count + its first level's count for a list).
    ``kernel_initializer``: any Keras initializer name for every kernel.  Keras' default
    ``glorot_uniform`` draws ``Var(w) = 2 / (fan_in + fan_out)``, so through a ReLU (which halves
    the second moment) the signal's variance shrinks by about 2x per layer: about ``2**-19``
    after the 19 ReLU layers of the deepest path.  ``he_uniform`` draws ``Var(w) = 2 / fan_in``,
    which keeps it (He et al. 2015), so the deep path carries signal and gradient from step one.
    ``input_skip``: concatenate the input samples to the last decoder features before the
    readout (Stoller et al. 2018); ``"identity"`` also starts the readout as the identity map
    (``y = x``: its centre tap on the audio channel 1, every other weight and the bias 0, as
    in zero-initialised residual branches, Goyal et al. 2017, Zhang et al. 2019), so the untrained
    model scores the noisy input and training only learns what to remove.  The output layer is
    named ``readout``.
    """
    depth = int(depth)
    if depth < 1:
        raise ValueError(f"build_wave_u_net: depth must be >= 1, got {depth}")
    if isinstance(filters, int):
        schedule, default_bottleneck = filter_schedule(depth, filters)
    else:
        schedule = [int(f) for f in filters]
        if len(schedule) != depth:
            raise ValueError(
                f"build_wave_u_net: filters has {len(schedule)} entries, expected depth={depth}"
            )
        default_bottleneck = schedule[-1] + schedule[0]
    if any(f < 1 for f in schedule):
        raise ValueError(f"build_wave_u_net: filters must be positive, got {schedule}")
    bottleneck_filters = int(bottleneck_filters or default_bottleneck)
    if frame_len is not None:
        frame_len = int(frame_len)
        if frame_len <= 0 or frame_len % (2 ** depth):
            raise ValueError(
                f"build_wave_u_net: frame_len must be a positive multiple of 2**depth = "
                f"{2 ** depth}, got {frame_len}"
            )

    init = dict(kernel_initializer=kernel_initializer)
    x = inputs = tf.keras.Input((frame_len, 1), name="audio")
    skips = []
    for i, f in enumerate(schedule, start=1):
        x = _L.Conv1D(f, down_kernel, padding="same", activation="relu", name=f"d{i}_conv",
                      **init)(x)
        skips.append(x)
        x = _L.Conv1D(f, 2, strides=2, activation="relu", name=f"d{i}_down", **init)(x)
    x = _L.Conv1D(bottleneck_filters, down_kernel, padding="same", activation="relu",
                  name="bottleneck", **init)(x)
    for i in range(depth, 0, -1):
        f = schedule[i - 1]
        x = _L.Conv1DTranspose(f, 2, strides=2, activation="relu", name=f"u{i}_up",
                               **init)(x)
        x = _L.Concatenate(name=f"u{i}_concat")([x, skips[i - 1]])
        x = _L.Conv1DTranspose(f, up_kernel, padding="same", activation="relu",
                               name=f"u{i}_conv", **init)(x)
    if input_skip:
        x = _L.Concatenate(name="input_skip")([x, inputs])
    readout = _L.Conv1D(1, readout_kernel, padding="same", name="readout", **init)
    outputs = readout(x)
    if input_skip == "identity":
        kernel, bias = readout.get_weights()
        kernel[:] = 0.0
        kernel[readout_kernel // 2, -1, 0] = 1.0  # the centre tap of the audio channel
        readout.set_weights([kernel, bias * 0.0])
    return tf.keras.Model(inputs, outputs, name=name)
