"""Conv-TasNet, spiking-friendly variant (paper §3.2.2, Figs. 4-5): an ANN functional model that
:func:`kspikese.to_spiking` turns into SNN-ConvTasNet.

Structure (defaults; ``B`` = 256 channels, ``H`` = 512 = 2·B, ``N = 3`` blocks × ``R = 2``)::

    encoder       Conv1D(256, 16, stride 8, same, ReLU)                      -> E  (L/8, 256)
    bottleneck    Conv1D(B, 1) -> BatchNorm -> ReLU                            -> y
    block b = 1..N·R, dilation d = 2**((b-1) mod N):
      b{b}_in     Conv1D(H, 1) -> BatchNorm -> ReLU
      b{b}_dconv  DepthwiseConv1D(3, dilation d, same) -> BatchNorm -> ReLU   (512 groups of 1)
      b{b}_res    Conv1D(B, 1, ReLU);   b{b}_skip  Conv1D(B, 1, ReLU)
      y <- y + res                                          (spike addition: a Keras Add)
    skip_sum      Add(all skips + the last block's y)
    sep_out       Conv1D(B, 1, ReLU)
    mask          Conv1D(256, 1, ReLU)                                       -> M
    multiply      SynapticMultiply(ReLU)([M, E])    (paper §3.2.3: M's spikes through E's counts)
    readout       Conv1DTranspose(1, 16, stride 8, same, linear)

Choices the paper leaves open, and why:

* PReLU -> ReLU and LayerNorm -> BatchNormalization (as the paper says).  Each BN sits between a
  *linear* convolution and its ReLU, so every convolution receives spikes and every neuron's input
  current is the normalised convolution output; at inference a BN is an affine map that can be
  folded into the convolution before it.  The separator's input normalisation of the original
  (LayerNorm -> 1x1 bottleneck) becomes the same conv -> BN -> ReLU pattern.
* The grouped convolution with 512 groups on 512 channels is a depthwise convolution.  It is a
  ``DepthwiseConv1D`` by default (``grouped="depthwise"``): ``Conv1D(groups=512)`` computes the
  same thing with the same 2,048 parameters per block but runs about 24x slower on CPU in
  TensorFlow 2.21 (0.60 s against 0.025 s for 4 × 2,048 × 512 here); ``grouped="conv1d"``
  builds the ``Conv1D(groups=...)`` form (weights are not interchangeable between the two).
* Every block has both 1x1 outputs (paper: "each block has residual and skip connections").
  The last block's residual stream has no next block, and Keras drops layers that do not reach
  the output, so it joins the skip sum.  ``sep_out`` is the original Conv-TasNet's separator
  output layer ((P)ReLU + 1x1 conv) kept in front of the paper's 256-filter mask convolution.
  With these, the model has 2,609,153 parameters, -1.5 % from the paper's 2.65M (Table 5);
  without ``sep_out`` it would have 2,543,361 (-4.0 %).
* ``activation="prelu"`` restores the original's PReLU in the separator: the bottleneck's and
  each block's two normalised activations become ``PReLU(shared_axes=[1])`` (one learned slope
  per channel, shared over time), under the same layer names.  After conversion each is the PReLU
  layer followed by a signed (linear) neuron that also emits negative spikes.  The encoder, the
  1x1 residual/skip/``sep_out`` outputs and the mask stay ReLU (the mask must be non-negative).
* With the default ``activation="relu"`` all hidden activations are ReLU (IF neurons after conversion); the mask is a ReLU too (the
  original's sigmoid has no IF equivalent), so ``multiply`` is a product of non-negative spike
  counts and its ReLU re-emits it as spikes.

* ``start="identity"`` starts the untrained model as the identity map ``y = x`` (the default
  ``"random"`` draws every weight), as Wave-U-Net's ``input_skip="identity"`` does: the encoder's
  filters come in pairs ``±u_i`` whose ``u_i`` stack ``enc_filters / (2·enc_kernel)`` random
  orthogonal ``enc_kernel × enc_kernel`` matrices, so ``relu(u·x) − relu(−u·x) = u·x`` and the
  analysis ``U`` (``enc_filters/2 × enc_kernel``) is a tight frame, ``UᵀU = c·I`` with
  ``c = enc_filters / (2·enc_kernel)``; the decoder is its adjoint scaled by
  ``1 / (c · enc_kernel/stride)`` (every sample lies in ``enc_kernel/stride`` frames), which
  reconstructs every sample whose frames lie inside the input; the mask convolution starts at
  kernel 0 and bias 1, so ``M = 1`` and the multiply passes ``E`` on.  Training then learns
  what to remove: the mask kernel gets a gradient at once, the separator from the second step
  (zero-initialised residual branches, Goyal et al. 2017, Zhang et al. 2019).

``frame_len`` must be a multiple of ``stride`` (8): the encoder gives ``frame_len / 8`` frames
and the decoder restores ``frame_len`` samples.  ``frame_len=None`` accepts any such length.
"""

import numpy as np
import tensorflow as tf

from kspikese.neurons import SynapticMultiply, spike_add

_L = tf.keras.layers


def build_conv_tasnet(frame_len=16384, enc_filters=256, enc_kernel=16, stride=8,
                      bottleneck=256, hidden=512, skip=None, kernel=3, blocks=3, repeats=2,
                      sep_out=True, grouped="depthwise", momentum=0.99, activation="relu",
                      start="random", seed=None, name="conv_tasnet"):
    """Build the ANN Conv-TasNet: ``(None, frame_len, 1) -> (None, frame_len, 1)``.

    ``bottleneck`` = residual channels B, ``hidden`` = H (expand ratio H/B), ``skip`` = skip
    channels (default B), ``kernel`` = size of the dilated depthwise convolution, ``blocks`` = N,
    ``repeats`` = R.  ``activation``: ``"relu"`` (the paper's) or ``"prelu"`` (the original's
    PReLU in the bottleneck and blocks).  ``start``: ``"random"`` (every weight drawn) or
    ``"identity"`` (the untrained model computes ``y = x``; see the module docstring), whose
    orthogonal encoder filters are drawn with ``seed`` (``None``: NumPy's global generator, which
    :func:`kspikese.training.set_seed` seeds).  The output layer is named ``readout``.
    """
    skip = int(skip or bottleneck)
    for arg, value in dict(enc_filters=enc_filters, enc_kernel=enc_kernel, stride=stride,
                           bottleneck=bottleneck, hidden=hidden, skip=skip, kernel=kernel,
                           blocks=blocks, repeats=repeats).items():
        if int(value) < 1:
            raise ValueError(f"build_conv_tasnet: {arg} must be >= 1, got {value}")
    if skip != bottleneck:
        raise ValueError(
            f"build_conv_tasnet: the last block's residual joins the skip sum, so skip ({skip}) "
            f"must equal bottleneck ({bottleneck})"
        )
    if grouped not in ("depthwise", "conv1d"):
        raise ValueError(
            f"build_conv_tasnet: grouped must be 'depthwise' or 'conv1d', got {grouped!r}"
        )
    if activation not in ("relu", "prelu"):
        raise ValueError(
            f"build_conv_tasnet: activation must be 'relu' or 'prelu', got {activation!r}"
        )
    if start not in ("random", "identity"):
        raise ValueError(
            f"build_conv_tasnet: start must be 'random' or 'identity', got {start!r}"
        )
    if start == "identity" and (enc_filters % (2 * enc_kernel) or enc_kernel % stride):
        raise ValueError(
            f"build_conv_tasnet: start='identity' needs enc_filters ({enc_filters}) to be a "
            f"multiple of 2·enc_kernel ({2 * enc_kernel}) and enc_kernel a multiple of stride "
            f"({stride})"
        )
    if frame_len is not None:
        frame_len = int(frame_len)
        if frame_len <= 0 or frame_len % stride:
            raise ValueError(
                f"build_conv_tasnet: frame_len must be a positive multiple of stride={stride}, "
                f"got {frame_len}"
            )

    def bn(x, layer_name):
        return _L.BatchNormalization(momentum=momentum, name=f"{layer_name}_bn")(x)

    def act(x, layer_name):
        if activation == "prelu":
            return _L.PReLU(shared_axes=[1], name=layer_name)(x)
        return _L.ReLU(name=layer_name)(x)

    inputs = tf.keras.Input((frame_len, 1), name="audio")
    encoder = _L.Conv1D(enc_filters, enc_kernel, strides=stride, padding="same",
                        activation="relu", name="encoder")
    encoded = encoder(inputs)
    y = _L.Conv1D(bottleneck, 1, name="bottleneck")(encoded)
    y = act(bn(y, "bottleneck"), "bottleneck_relu")
    skips = []
    for b in range(1, blocks * repeats + 1):
        dilation = 2 ** ((b - 1) % blocks)
        h = _L.Conv1D(hidden, 1, name=f"b{b}_in")(y)
        h = act(bn(h, f"b{b}_in"), f"b{b}_in_relu")
        if grouped == "depthwise":
            h = _L.DepthwiseConv1D(kernel, dilation_rate=dilation, padding="same",
                                   name=f"b{b}_dconv")(h)
        else:
            h = _L.Conv1D(hidden, kernel, dilation_rate=dilation, groups=hidden, padding="same",
                          name=f"b{b}_dconv")(h)
        h = act(bn(h, f"b{b}_dconv"), f"b{b}_dconv_relu")
        res = _L.Conv1D(bottleneck, 1, activation="relu", name=f"b{b}_res")(h)
        skips.append(_L.Conv1D(skip, 1, activation="relu", name=f"b{b}_skip")(h))
        y = spike_add([y, res], name=f"b{b}_add")
    features = spike_add(skips + [y], name="skip_sum")
    if sep_out:
        features = _L.Conv1D(skip, 1, activation="relu", name="sep_out")(features)
    mask_conv = _L.Conv1D(enc_filters, 1, activation="relu", name="mask")
    mask = mask_conv(features)
    masked = SynapticMultiply(activation="relu", name="multiply")([mask, encoded])
    readout = _L.Conv1DTranspose(1, enc_kernel, strides=stride, padding="same", name="readout")
    outputs = readout(masked)
    if start == "identity":
        identity_start(encoder, mask_conv, readout, stride, seed)
    return tf.keras.Model(inputs, outputs, name=name)


def identity_start(encoder, mask_conv, readout, stride, seed=None):
    """Set the encoder, mask and decoder so that the model computes ``y = x`` (module docstring).

    Encoder kernel ``(K, 1, N)``: columns ``[U, −U]ᵀ`` with ``U = [Q_1; …; Q_c]`` stacked random
    orthogonal ``K × K`` matrices (``c = N / 2K``), bias 0.  Decoder kernel ``(K, 1, N)``: the same
    columns times ``stride / (c·K)``, bias 0, so ``decoder(relu(encoder(x))) = x``.  Mask kernel
    0, bias 1.
    """
    kernel = encoder.kernel
    size, _, filters = kernel.shape
    copies = filters // (2 * size)
    rng = np.random if seed is None else np.random.default_rng(seed)
    basis = np.concatenate([np.linalg.qr(rng.standard_normal((size, size)))[0]
                            for _ in range(copies)], axis=0)           # (N/2, K), UᵀU = c·I
    columns = np.concatenate([basis, -basis], axis=0).T                # (K, N)
    encoder.set_weights([columns[:, None, :].astype("float32"),
                         np.zeros(filters, "float32")])
    gain = stride / (copies * size)
    readout.set_weights([(gain * columns)[:, None, :].astype("float32"),
                         np.zeros(1, "float32")])
    mask_kernel, mask_bias = mask_conv.get_weights()
    mask_conv.set_weights([np.zeros_like(mask_kernel), np.ones_like(mask_bias)])
