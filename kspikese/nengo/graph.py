"""Rebuild a plain Keras model from a spec (:mod:`kspikese.nengo.spec`) for ``nengo_dl.Converter``.

Every op becomes one standard Keras layer with the spec's weights, except ``spiking``, which
becomes :class:`IFNeurons`, and ``synaptic_multiply``, which becomes
:class:`kspikese.neurons.SynapticMultiply`.  The model maps ``(batch, *input shape)`` to the
output, with no time axis: it is the Keras SNN at one timestep, written with one layer per
operation, so that each layer has one Nengo converter.
"""

import numpy as np
import tensorflow as tf

_L = tf.keras.layers


class IFNeurons(_L.Layer):
    """One timestep of integrate-and-fire neurons, one per input element.

    ``v = v0 + f(x) · dt``, ``y = floor(v) / dt``, with ``f`` = ReLU (``activation="relu"``) or
    the identity (``"linear"``, a signed readout) and ``v0`` the initial voltages (shape of one
    example).  This is ``keras_spiking.SpikingActivation`` run for one step from the state ``v0``
    (its forward pass: ``v += f(x) dt; n = floor(v); v -= n; out = n / dt``).
    """

    def __init__(self, activation="relu", dt=0.001, v0=None, **kwargs):
        super().__init__(**kwargs)
        if activation not in ("relu", "linear"):
            raise ValueError(f"IFNeurons {self.name!r}: activation must be relu or linear")
        self.activation = activation
        self.dt = float(dt)
        self._v0_init = None if v0 is None else np.asarray(v0, np.float32)

    def build(self, input_shape):
        shape = tuple(int(d) for d in input_shape[1:])
        if self._v0_init is not None and self._v0_init.shape != shape:
            raise ValueError(
                f"IFNeurons {self.name!r}: v0 has shape {self._v0_init.shape}, input {shape}"
            )
        init = (tf.keras.initializers.Constant(self._v0_init) if self._v0_init is not None
                else "zeros")
        self.v0 = self.add_weight(name="v0", shape=shape, initializer=init, trainable=False)
        super().build(input_shape)

    def call(self, x):
        current = tf.nn.relu(x) if self.activation == "relu" else x
        return tf.floor(self.v0 + current * self.dt) / self.dt

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "dt": self.dt}


def build_model(spec, arrays):
    """The plain Keras model of ``spec`` with ``arrays`` loaded (see the module docstring)."""
    from kspikese.neurons import SynapticMultiply

    tensors = {}
    model_input = None
    pending = []  # (layer, weights) set after the model is built

    def w(op, key):
        return arrays[f"{op['name']}/{key}"]

    for op in spec["ops"]:
        name, kind, cfg = op["name"], op["op"], op["config"]
        ins = [tensors[i] for i in op["inputs"]]
        if kind == "input":
            model_input = tf.keras.Input(tuple(cfg["shape"]), name=name)
            tensors[name] = model_input
            continue
        if kind == "conv1d":
            layer = _L.Conv1D(cfg["filters"], cfg["kernel_size"], strides=cfg["strides"],
                              padding=cfg["padding"], dilation_rate=cfg["dilation_rate"],
                              use_bias=cfg["use_bias"], name=name)
            weights = [w(op, "kernel")] + ([w(op, "bias")] if cfg["use_bias"] else [])
        elif kind == "conv1d_transpose":
            layer = _L.Conv1DTranspose(cfg["filters"], cfg["kernel_size"],
                                       strides=cfg["strides"], padding=cfg["padding"],
                                       use_bias=cfg["use_bias"], name=name)
            weights = [w(op, "kernel")] + ([w(op, "bias")] if cfg["use_bias"] else [])
        elif kind == "depthwise_conv1d":
            layer = _L.DepthwiseConv1D(cfg["kernel_size"], strides=cfg["strides"],
                                       padding=cfg["padding"],
                                       dilation_rate=cfg["dilation_rate"],
                                       depth_multiplier=cfg["depth_multiplier"],
                                       use_bias=cfg["use_bias"], name=name)
            weights = [w(op, "kernel")] + ([w(op, "bias")] if cfg["use_bias"] else [])
        elif kind == "batchnorm":
            layer = _L.BatchNormalization(epsilon=cfg["epsilon"], name=name)
            weights = [w(op, k) for k in ("gamma", "beta", "moving_mean", "moving_variance")]
        elif kind == "rescaling":
            layer = _L.Rescaling(cfg["scale"], cfg["offset"], name=name)
            weights = None
        elif kind == "add":
            layer, weights = _L.Add(name=name), None
        elif kind == "concatenate":
            layer, weights = _L.Concatenate(axis=-1, name=name), None
        elif kind == "reshape":
            layer, weights = _L.Reshape(tuple(cfg["shape"]), name=name), None
        elif kind == "synaptic_multiply":
            layer, weights = SynapticMultiply(scale=cfg["scale"], name=name), None
        elif kind == "spiking":
            layer = IFNeurons(cfg["activation"], cfg["dt"], w(op, "v0"), name=name)
            weights = None
        else:
            raise ValueError(f"spec op {name!r}: unknown kind {kind!r}")
        tensors[name] = layer(ins if len(ins) > 1 else ins[0])
        if weights is not None:
            pending.append((layer, weights))
    model = tf.keras.Model(model_input, tensors[spec["output"]], name=spec.get("model", "snn"))
    for layer, weights in pending:
        layer.set_weights(weights)
    return model
