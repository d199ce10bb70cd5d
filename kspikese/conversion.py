"""ANN -> SNN conversion (:func:`to_spiking`) and the function-preserving input scale-up
(:func:`scale_activations`): stage 2 of the paper's pipeline, usable on any functional Keras model.

Both walk the model's graph node by node (inputs to outputs) and build a new functional model
from fresh copies of its layers (same names, same configs except where stated), then copy the
weights over layer by layer.  The input model is never modified.
"""

import math

import numpy as np
import tensorflow as tf

import keras_spiking
from kspikese import neurons

_L = tf.keras.layers

#: activation layers without a spiking equivalent here (IF neurons are ReLU; readout is linear)
_UNSUPPORTED_CLASSES = (_L.PReLU, _L.LeakyReLU, _L.ELU, _L.ThresholdedReLU, _L.Softmax)
_SPIKING_CLASSES = (keras_spiking.SpikingActivation, keras_spiking.Lowpass, keras_spiking.Alpha)


# --------------------------------------------------------------------------------- graph walking
def _as_functional(model, what):
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"{what}: expected a tf.keras Model, got {type(model).__name__}")
    if isinstance(model, tf.keras.Sequential):
        if not model.built or not getattr(model, "inputs", None):
            raise ValueError(
                f"{what}: the Sequential model {model.name!r} has no defined input; start it with "
                "tf.keras.Input(shape) or call it once on data"
            )
        model = tf.keras.Model(model.inputs, model.outputs, name=model.name)
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"{what}: {model.name!r} is a subclassed model; only functional and Sequential models "
            "have a graph that can be converted"
        )
    return model


def _nodes(model):
    """The model's nodes from the inputs to the outputs (each after all of its inputs)."""
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            yield node


def _unique(name, used):
    out, k = name, 0
    while out in used:
        k += 1
        out = f"{name}_{k}"
    used.add(out)
    return out


class _Rebuild:
    """Rebuild ``model`` node by node; subclasses decide what each node becomes."""

    def __init__(self, model):
        self.model = model
        self.tensors = {}  # id(original KerasTensor) -> new tensor
        self.clones = {}  # original layer -> its copy
        self.weight_fns = {}  # original layer -> f(weights) -> weights for the copy
        self.used_names = {layer.name for layer in model.layers}
        self.node_counts = {}

    def clone(self, layer, weight_fn=None, **changes):
        if layer not in self.clones:
            cfg = layer.get_config()
            cfg.update(changes)
            self.clones[layer] = layer.__class__.from_config(cfg)
            if weight_fn is not None:
                self.weight_fns[layer] = weight_fn
        return self.clones[layer]

    def node_name(self, layer, suffix):
        """``<layer>_<suffix>`` for the layer's first call, ``<layer>_<suffix>_<k>`` after."""
        k = self.node_counts.get((layer.name, suffix), 0)
        self.node_counts[(layer.name, suffix)] = k + 1
        base = f"{layer.name}_{suffix}" if k == 0 else f"{layer.name}_{suffix}_{k}"
        return _unique(base, self.used_names)

    # hooks ------------------------------------------------------------------------------
    def on_input(self, tensor, new_input):
        return new_input

    def on_node(self, node, layer, args, kwargs):
        return self.clone(layer)(*args, **kwargs)

    def on_output(self, tensor, new_tensor):
        return new_tensor

    def finish_weights(self):
        pass

    # ------------------------------------------------------------------------------------
    def run(self, name):
        model = self.model
        new_inputs = []
        for t in model.inputs:
            layer = t._keras_history.layer
            inp = tf.keras.Input(batch_shape=t.shape, dtype=t.dtype, name=layer.name)
            new_inputs.append(inp)
            self.tensors[id(t)] = self.on_input(t, inp)
        for node in _nodes(model):
            layer = node.layer
            if isinstance(layer, _L.InputLayer):
                continue
            args, kwargs = tf.nest.map_structure(
                lambda v: self.tensors[id(v)] if tf.keras.backend.is_keras_tensor(v) else v,
                (node.call_args, node.call_kwargs),
            )
            outs = self.on_node(node, layer, args, kwargs)
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outs)):
                self.tensors[id(old)] = new
        outputs = [self.on_output(t, self.tensors[id(t)]) for t in model.outputs]
        new = tf.keras.Model(new_inputs, outputs[0] if len(outputs) == 1 else outputs, name=name)
        for layer, copy in self.clones.items():
            weights = layer.get_weights()
            if layer in self.weight_fns:
                weights = self.weight_fns[layer](weights)
            copy.set_weights(weights)
        return new


# --------------------------------------------------------------------------------- to_spiking
def _relu_kind(layer):
    """``"layer"`` for ReLU/Activation("relu") layers, ``"activation"`` for layers with an
    ``activation="relu"`` argument, ``None`` otherwise."""
    if isinstance(layer, _SPIKING_CLASSES):
        return None
    if isinstance(layer, _L.ReLU):
        return "layer" if _plain_relu(layer) else None
    if isinstance(layer, _L.Activation):
        return "layer" if neurons.activation_name(layer.activation) == "relu" else None
    if hasattr(layer, "activation") and neurons.activation_name(layer.activation) == "relu":
        return "activation"
    return None


def _plain_relu(layer):
    return (
        layer.max_value is None
        and float(layer.threshold) == 0.0
        and float(layer.negative_slope) == 0.0
    )


def relu_layers(model):
    """Names of the layers whose output is a ReLU: the layers that become IF neurons."""
    model = _as_functional(model, "relu_layers")
    return [layer.name for layer in model.layers if _relu_kind(layer) is not None]


def _refusal(layer):
    """Why ``layer`` cannot be converted (``None`` if it can)."""
    if isinstance(layer, _SPIKING_CLASSES):
        return None
    if isinstance(layer, tf.keras.Model):
        return "a nested model (flatten it into the outer functional graph first)"
    if isinstance(layer, _L.Lambda):
        return "a Lambda layer (its function cannot be inspected; use a standard layer)"
    if isinstance(layer, _L.RNN):
        return "a recurrent layer (its internal activations have no spiking equivalent here)"
    if isinstance(layer, _UNSUPPORTED_CLASSES):
        return f"a {type(layer).__name__} activation"
    if isinstance(layer, _L.ReLU) and not _plain_relu(layer):
        return (
            f"ReLU(max_value={layer.max_value}, negative_slope={float(layer.negative_slope)}, "
            f"threshold={float(layer.threshold)})"
        )
    if hasattr(layer, "activation"):
        name = neurons.activation_name(layer.activation)
        if name not in ("relu", "linear"):
            return f"activation {name!r}"
    return None


class _ToSpiking(_Rebuild):
    def __init__(self, model, dt, seed, timesteps, spiking_aware_training, readout, fast=True):
        super().__init__(model)
        self.fast = fast  # False: KerasSpiking's defaults (while_loop, random draw per call)
        self.dt, self.seed, self.timesteps = dt, seed, timesteps
        self.sat = spiking_aware_training
        self.readout = readout
        self.n_spiking = 0

    def on_input(self, tensor, new_input):
        if self.timesteps == 1:
            return new_input
        name = _unique(f"{tensor._keras_history.layer.name}_repeat", self.used_names)
        return neurons.RepeatTime(self.timesteps, name=name)(new_input)

    def on_output(self, tensor, new_tensor):
        if self.timesteps == 1:
            return new_tensor
        name = _unique(f"{tensor._keras_history.layer.name}_mean", self.used_names)
        return neurons.MeanTime(self.timesteps, name=name)(new_tensor)

    def spike(self, x, layer, activation):
        t = self.timesteps
        shape = x.shape[1:]
        static = shape.is_fully_defined()
        if not static and shape[-1] is None:
            raise ValueError(
                f"to_spiking: layer {layer.name!r} has output shape {x.shape}; the last "
                "(channel) dimension must be known"
            )
        seed = self.seed * 1000 + self.n_spiking
        self.n_spiking += 1
        into = self.node_name(layer, "to_time")
        spike_name = self.node_name(layer, "spike")
        back = self.node_name(layer, "from_time")
        if static and t == 1:
            timed = _L.Reshape((1,) + tuple(shape), name=into)(x)
        else:
            timed = neurons.TimeSplit(t, fold=not static, name=into)(x)
        neuron = neurons.spiking_activation(
            activation, self.dt, seed, spike_name, self.sat, timesteps=t
        )
        if not self.fast:
            neuron.unroll = False
            spikes = neuron(timed)
        else:
            v0_name = self.node_name(layer, "v0")
            if static:
                v0 = neurons.InitialVoltage(
                    seed, t, broadcast=not neurons.unrolled(t), name=v0_name
                )(timed)
            else:
                v0 = neurons.InitialVoltage(seed, t, fold=True, name=v0_name)([timed, x])
            spikes = neuron(timed, initial_state=[v0])
        if static and t == 1:
            return _L.Reshape(tuple(shape), name=back)(spikes)
        if static:
            return neurons.TimeMerge(t, name=back)(spikes)
        return neurons.TimeMerge(t, fold=True, name=back)([spikes, x])

    def on_node(self, node, layer, args, kwargs):
        kind = _relu_kind(layer)
        if kind == "layer":
            return self.spike(args[0], layer, "relu")
        if kind == "activation":
            y = self.clone(layer, activation="linear")(*args, **kwargs)
            return self.spike(y, layer, "relu")
        y = self.clone(layer)(*args, **kwargs)
        if layer.name == self.readout and not isinstance(layer, _SPIKING_CLASSES):
            return self.spike(y, layer, "linear")
        return y


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    if not 0 <= int(seed) < 2_000_000:
        raise ValueError(
            f"seed: expected 0 <= seed < 2,000,000 (neuron seeds are seed*1000+i), got {seed}"
        )
    return int(seed)


def to_spiking(model, dt, seed=0, timesteps=1, spiking_aware_training=True, readout="readout"):
    """Return a new functional model: ``model`` with every ReLU an IF neuron, weights copied.

    * Every ReLU (a layer's ``activation="relu"``, a ``ReLU()`` layer, an ``Activation("relu")``)
      becomes ``keras_spiking.SpikingActivation("relu", dt=dt)``: the layer keeps its name and
      weights with a linear activation, and is followed by ``<name>_to_time`` (adds the time
      axis), ``<name>_spike`` (the neuron; its initial voltages come from ``<name>_v0``, see
      :class:`kspikese.neurons.InitialVoltage`), ``<name>_from_time`` (drops it).  ``ReLU`` and
      ``Activation`` layers themselves are replaced by ``<name>_spike``.
    * The layer named ``readout`` (if the model has one and it is linear) gets a linear spiking
      neuron ``<readout>_spike`` (paper §3.1.1: spiking neurons with linear activation at the
      output).  A model without a layer of that name is converted without a spiking readout.
    * The neuron number ``i`` (in graph order) gets ``seed = seed * 1000 + i``: one seed, one
      output.  Its initial voltages are uniform in [0, 1) (as KerasSpiking's default), drawn once
      per neuron and shared by every example of a batch, so an example's output does not depend
      on the batch it is in.
    * ``timesteps = T``: the input is repeated ``T`` times, the neurons integrate over the ``T``
      steps, and the output is the average over the steps (a rate):
      ``y = (1/T) Σ_t n_t / dt``.  ``T = 1`` is the paper's setting.
    * ``spiking_aware_training``: spiking forward pass with the ReLU's gradient in training (the
      paper's stage 3).  ``False``: plain ReLU in training, spikes at inference.

    Weights are the ANN's: ``snn.set_weights(ann.get_weights())`` loads (same weight order for
    the kspikese models and for chain-like graphs; the layer-by-name copy done here is exact for
    every graph).  Raises ``ValueError`` naming every layer it cannot convert (sigmoid, tanh,
    PReLU, ..., Lambda, recurrent and nested-model layers).
    """
    model = _as_functional(model, "to_spiking")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"to_spiking: dt must be a positive number, got {dt}")
    seed = _check_seed(seed)
    if isinstance(timesteps, bool) or int(timesteps) != timesteps or int(timesteps) < 1:
        raise ValueError(f"to_spiking: timesteps must be an integer >= 1, got {timesteps!r}")
    refused = [(layer.name, why) for layer in model.layers if (why := _refusal(layer))]
    if refused:
        lines = "; ".join(f"{name!r}: {why}" for name, why in refused)
        raise ValueError(
            f"to_spiking: model {model.name!r} has layers without a spiking equivalent "
            f"(only ReLU and a linear readout convert): {lines}"
        )
    names = {layer.name for layer in model.layers}
    if readout is not None and readout != "readout" and readout not in names:
        raise ValueError(f"to_spiking: readout={readout!r} is not a layer of model {model.name!r}")
    if readout in names and _relu_kind(model.get_layer(readout)) is None:
        act = getattr(model.get_layer(readout), "activation", None)
        if act is not None and neurons.activation_name(act) != "linear":
            raise ValueError(f"to_spiking: the readout layer {readout!r} must be linear or ReLU")
    builder = _ToSpiking(model, dt, seed, int(timesteps), spiking_aware_training, readout)
    return builder.run(name=f"{model.name}_snn")


def spiking_layers(model):
    """The ``SpikingActivation`` layers of ``model``, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, keras_spiking.SpikingActivation)]


def is_spiking(model):
    """Whether ``model`` contains any ``SpikingActivation``."""
    return bool(spiking_layers(model))


# ------------------------------------------------------------------------- scale_activations
def _uniform(s):
    """``s`` as a float if all its entries are equal, else ``None``."""
    arr = np.atleast_1d(np.asarray(s, np.float64))
    return float(arr[0]) if np.allclose(arr, arr[0], rtol=1e-12, atol=0) else None


def _per_channel(s, channels):
    arr = np.asarray(s, np.float64)
    return np.full(int(channels), float(arr)) if arr.ndim == 0 else arr


_SHAPE_ONLY = (
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.GaussianDropout, _L.AlphaDropout,
    _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D, _L.AveragePooling1D, _L.AveragePooling2D,
    _L.AveragePooling3D, _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D,
    _L.GlobalAveragePooling3D, _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D,
    _L.GlobalMaxPooling3D, _L.UpSampling1D, _L.UpSampling2D, _L.UpSampling3D, _L.ZeroPadding1D,
    _L.ZeroPadding2D, _L.ZeroPadding3D, _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.RepeatVector, neurons.RepeatTime, neurons.MeanTime,
)
_RESHAPING = (_L.Reshape, _L.Flatten, _L.Permute, neurons.TimeSplit, neurons.TimeMerge)
_MERGE_EQUAL = (_L.Add, _L.Subtract, _L.Average, _L.Maximum, _L.Minimum)
_KERNEL = (_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Dense)


class _Scale(_Rebuild):
    """Track the scale of every tensor (a number, or one number per channel after a concat)."""

    def __init__(self, model, c, targets):
        super().__init__(model)
        self.c = c  # uniform input scale (None in per-layer mode)
        self.targets = targets  # layer name -> required output scale
        self.scales = {}  # id(new tensor) -> scale

    def scale_of(self, t):
        return self.scales[id(t)]

    def set_scale(self, t, s):
        self.scales[id(t)] = s
        return t

    def on_input(self, tensor, new_input):
        if self.c is None or self.c == 1.0:
            return self.set_scale(new_input, 1.0)
        name = _unique("input_scale", self.used_names)
        return self.set_scale(_L.Rescaling(self.c, name=name)(new_input), self.c)

    def on_output(self, tensor, new_tensor):
        s = _uniform(self.scale_of(new_tensor))
        if s is None:
            raise ValueError(
                f"scale_activations: output {tensor.name!r} has different scales per channel"
            )
        if s == 1.0:
            return new_tensor
        name = _unique("output_scale", self.used_names)
        return _L.Rescaling(1.0 / s, name=name)(new_tensor)

    def _need_uniform(self, layer, s, why):
        u = _uniform(s)
        if u is None:
            raise ValueError(
                f"scale_activations: layer {layer.name!r} ({type(layer).__name__}) needs one "
                f"scale for all its input channels ({why}), got {np.round(s, 6).tolist()}"
            )
        return u

    def _out_scale(self, layer, s_in):
        if layer.name in self.targets:
            return float(self.targets[layer.name])
        u = _uniform(s_in)
        return u if u is not None else float(np.exp(np.mean(np.log(s_in))))

    def on_node(self, node, layer, args, kwargs):  # noqa: C901 (one branch per layer family)
        flat_in = [t for t in tf.nest.flatten((args, kwargs)) if id(t) in self.scales]
        s_in = [self.scale_of(t) for t in flat_in]
        name = f"{layer.name!r} ({type(layer).__name__})"

        if isinstance(layer, (_L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D,
                              _L.SeparableConv2D)):
            return self._depthwise(layer, args, kwargs, s_in[0])
        if isinstance(layer, _KERNEL):
            s = s_in[0]
            s_out = self._out_scale(layer, s)
            transposed = isinstance(layer, (_L.Conv1DTranspose, _L.Conv2DTranspose,
                                            _L.Conv3DTranspose))
            groups = int(getattr(layer, "groups", 1) or 1)

            def fn(weights, s=s, s_out=s_out, transposed=transposed, groups=groups):
                kernel = weights[0]
                n_in = kernel.shape[-1] if transposed else kernel.shape[-2] * groups
                vec = _per_channel(s, n_in)
                if transposed:  # kernel (..., out, in)
                    kernel = kernel * (s_out / vec)
                elif groups == 1:  # kernel (..., in, out)
                    kernel = kernel * (s_out / vec)[:, None]
                else:  # kernel (..., in/groups, out): input channel of (i, o) = g(o)·in/g + i
                    per = kernel.shape[-2]
                    out = kernel.shape[-1]
                    g_of_o = np.arange(out) // (out // groups)
                    idx = g_of_o[None, :] * per + np.arange(per)[:, None]
                    kernel = kernel * (s_out / vec[idx])
                rest = [w * s_out for w in weights[1:]]  # the bias
                return [kernel.astype(weights[0].dtype)] + [w.astype(np.float32) for w in rest]

            y = self.clone(layer, fn)(*args, **kwargs)
            return self.set_scale(y, s_out)

        if isinstance(layer, _L.BatchNormalization):
            a = self._need_uniform(layer, s_in[0], "its epsilon is one number")
            s_out = self._out_scale(layer, a)
            if not layer.scale and s_out != 1.0:
                raise ValueError(
                    f"scale_activations: {name} has scale=False (no gamma), so its output cannot "
                    "be rescaled; build it with scale=True"
                )
            if getattr(layer, "renorm", False):
                raise ValueError(f"scale_activations: {name} uses renorm, which is not supported")
            names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]

            def fn(weights, a=a, s_out=s_out, names=names):
                factor = {"gamma": s_out, "beta": s_out, "moving_mean": a, "moving_variance": a * a}
                return [(w * factor[n]).astype(w.dtype) for w, n in zip(weights, names)]

            y = self.clone(layer, fn, epsilon=float(layer.epsilon) * a * a)(*args, **kwargs)
            return self.set_scale(y, s_out)

        if isinstance(layer, neurons.SynapticMultiply):
            a = self._need_uniform(layer, s_in[0], "events")
            b = self._need_uniform(layer, s_in[1], "weights")
            s_out = self._out_scale(layer, a)
            y = self.clone(layer, scale=layer.scale * s_out / (a * b))(*args, **kwargs)
            return self.set_scale(y, s_out)

        if layer.name in self.targets:
            raise ValueError(
                f"scale_activations: {name} has no weights to carry a scale; give the scale to "
                "the layer that produces its input"
            )
        s = s_in[0] if s_in else 1.0

        if isinstance(layer, neurons.InitialVoltage):  # voltages, not activations
            return self.set_scale(self.clone(layer)(*args, **kwargs), 1.0)
        if isinstance(layer, _L.Rescaling):
            u = self._need_uniform(layer, s, "its offset is one number")
            y = self.clone(layer, offset=float(np.asarray(layer.offset)) * u)(*args, **kwargs)
            return self.set_scale(y, s)
        if isinstance(layer, _L.ReLU):
            changes = {}
            if layer.max_value is not None or float(layer.threshold) != 0.0:
                u = self._need_uniform(layer, s, "its threshold/max_value are numbers")
                changes["threshold"] = float(layer.threshold) * u
                if layer.max_value is not None:
                    changes["max_value"] = float(layer.max_value) * u
            return self.set_scale(self.clone(layer, **changes)(*args, **kwargs), s)
        if isinstance(layer, (_L.Activation, keras_spiking.SpikingActivation)):
            if neurons.activation_name(layer.activation) not in ("relu", "linear"):
                raise ValueError(f"scale_activations: {name} is not positively homogeneous")
            return self.set_scale(self.clone(layer)(*args, **kwargs), s)
        if isinstance(layer, _SHAPE_ONLY):
            return self.set_scale(self.clone(layer)(*args, **kwargs), s)
        if isinstance(layer, _RESHAPING):
            u = self._need_uniform(layer, s, "it moves the channel axis")
            return self.set_scale(self.clone(layer)(*args, **kwargs), u)
        if isinstance(layer, _L.Concatenate):
            y = self.clone(layer)(*args, **kwargs)
            axis = layer.axis if layer.axis >= 0 else len(y.shape) + layer.axis
            if axis == len(y.shape) - 1:
                parts = [_per_channel(sc, t.shape[-1]) for sc, t in zip(s_in, flat_in)]
                vec = np.concatenate(parts)
                u = _uniform(vec)
                return self.set_scale(y, vec if u is None else u)
            return self.set_scale(y, self._equal(layer, s_in))
        if isinstance(layer, _MERGE_EQUAL):
            return self.set_scale(self.clone(layer)(*args, **kwargs), self._equal(layer, s_in))
        raise ValueError(
            f"scale_activations: cannot scale through layer {name}; supported are ReLU networks "
            "of Conv/Dense/BatchNormalization/SynapticMultiply and shape/merge layers "
            "(Keras' Multiply would square the scale: use kspikese.neurons.SynapticMultiply)"
        )

    def _equal(self, layer, scales):
        first = scales[0]
        for other in scales[1:]:
            if not np.allclose(np.asarray(first, np.float64), np.asarray(other, np.float64),
                               rtol=1e-9, atol=0):
                raise ValueError(
                    f"scale_activations: the inputs of {layer.name!r} ({type(layer).__name__}) "
                    "have different scales; give the layers feeding it the same factor"
                )
        return first

    def _depthwise(self, layer, args, kwargs, s):
        a = self._need_uniform(layer, s, "depthwise kernels")
        s_out = self._out_scale(layer, a)

        def fn(weights, a=a, s_out=s_out):
            out = [w.copy() for w in weights]
            out[0] = (out[0] * (s_out / a)).astype(weights[0].dtype)
            if layer.use_bias:
                out[-1] = (out[-1] * s_out).astype(weights[-1].dtype)
            return out

        return self.set_scale(self.clone(layer, fn)(*args, **kwargs), s_out)


def scale_activations(model, c):
    """Return a copy of ``model`` computing the same function with every activation ``c`` times
    larger (DESIGN.md, "Input scale decides whether one-timestep spiking works").

    A ReLU network is positively homogeneous: ``f(c·x; c·b) = c·f(x; b)`` for ``c > 0`` when every
    bias ``b`` is scaled too.  The copy is::

        Rescaling(c, name="input_scale") -> model with biases·c -> Rescaling(1/c, "output_scale")

    and these layer changes (``a`` = scale of a layer's input, ``s`` = of its output; with one
    number ``c`` both are ``c`` everywhere):

    * Conv/Dense/transposed conv: ``kernel · s/a`` (per input channel), ``bias · s``.
    * BatchNormalization, ``γ(x - μ)/sqrt(σ² + ε) + β`` on an input ``a`` times larger:
      ``μ·a``, ``σ²·a²``, ``ε·a²`` (so the normalised value is exactly unchanged, in inference
      and, with the batch statistics, in training), ``γ·s`` and ``β·s``.
    * SynapticMultiply: the product of inputs scaled ``a`` and ``b`` is ``ab`` times larger, so
      its ``scale`` becomes ``scale · s/(a·b)``.
    * Rescaling inside the graph: ``offset · a``; ReLU: ``threshold · a``, ``max_value · a``.
    * Shape and merge layers pass the scale through (Add/Average need equal input scales;
      Concatenate keeps one scale per channel).

    ``c`` may also be a dict ``{layer name: c_l}`` (per-layer, data-based normalisation): the named
    layer's output is scaled by ``c_l`` (a ReLU/Activation layer's factor goes to the layer that
    feeds it), the others inherit their input's scale; the model's input is not rescaled.  Layers
    whose outputs are added (Conv-TasNet's residual and skip paths) share one factor, the
    geometric mean of the factors asked for them.

    The scales live in the weights and layer configs, so they survive save/load;
    :func:`input_scale` reads ``c`` back.
    """
    model = _as_functional(model, "scale_activations")
    if isinstance(c, dict):
        targets = _targets(model, c)
        uniform = None
    else:
        uniform = float(c)
        if not math.isfinite(uniform) or uniform <= 0:
            raise ValueError(f"scale_activations: c must be a positive number, got {c!r}")
        targets = {}
    return _Scale(model, uniform, targets).run(name=model.name)


def _targets(model, factors):
    names = {layer.name for layer in model.layers}
    missing = sorted(set(factors) - names)
    if missing:
        raise ValueError(f"scale_activations: no layer named {missing} in model {model.name!r}")
    targets = {}
    for name, value in factors.items():
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"scale_activations: the factor of {name!r} must be > 0, got {value}")
        layer = model.get_layer(name)
        if not layer.weights and not isinstance(layer, neurons.SynapticMultiply):
            producers = {n.inbound_layers for n in layer._inbound_nodes}
            producers = {p for p in producers if not isinstance(p, (list, tuple))}
            if len(producers) != 1:
                raise ValueError(f"scale_activations: cannot find the one layer feeding {name!r}")
            layer = producers.pop()
        targets[layer.name] = value
    return _equalise(model, targets)


_SCALING_POINTS = (_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Dense, _L.DepthwiseConv1D,
                   _L.DepthwiseConv2D, _L.SeparableConv1D, _L.SeparableConv2D,
                   _L.BatchNormalization, neurons.SynapticMultiply)


def _equalise(model, targets):
    """Give one factor to every group of layers whose outputs meet in an Add (or Subtract,
    Average, Maximum, Minimum): a sum needs equal scales.  The group's factor is the geometric
    mean of its members' requested factors (1 if the group includes the model's input, whose
    scale is 1 in per-layer mode)."""
    parent = {}

    def find(k):
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    source = {id(t): "<input>" for t in model.inputs}
    for node in _nodes(model):
        layer = node.layer
        if isinstance(layer, _L.InputLayer):
            continue
        srcs = [source.get(id(t)) for t in tf.nest.flatten(node.call_args)
                if tf.keras.backend.is_keras_tensor(t)]
        if isinstance(layer, _SCALING_POINTS):
            out = layer.name
        elif isinstance(layer, _MERGE_EQUAL):
            known = [find(k) for k in srcs if k is not None]
            for k in known[1:]:
                parent[find(k)] = find(known[0])
            out = known[0] if known and len(known) == len(srcs) else None
        elif isinstance(layer, _L.Concatenate):
            out = None  # one scale per channel: no constraint between its inputs
        else:
            out = srcs[0] if srcs else None
        for t in tf.nest.flatten(node.outputs):
            source[id(t)] = out
    groups = {}
    for k in list(parent):
        groups.setdefault(find(k), []).append(k)
    result = dict(targets)
    for members in groups.values():
        wanted = [targets[m] for m in members if m in targets]
        if not wanted:
            continue
        value = 1.0 if "<input>" in members else float(np.exp(np.mean(np.log(wanted))))
        for m in members:
            if m != "<input>":
                result[m] = value
    return result


def input_scale(model):
    """The input scale ``c`` that :func:`scale_activations` built into ``model`` (1.0 if none)."""
    c = 1.0
    for layer in model.layers:
        if isinstance(layer, _L.Rescaling) and layer.name.startswith("input_scale"):
            c *= float(np.asarray(layer.scale))
    return c
