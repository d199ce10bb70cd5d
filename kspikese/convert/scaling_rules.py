"""How each layer type carries an activation scale: the registry behind
:func:`kspikese.convert.scale_activations`, in keras-spiking's decorator style.

A rule ``rule(step) -> (output tensor, output scale)`` rebuilds one layer call whose inputs are
``step.scales`` times larger than in the original model (a scale is a number, or one number per
channel after a channel concatenation); it is found along the layer class's MRO.  The rule's
``role`` tells the per-layer mode which layers can take a requested factor (``"carrier"``: layers
with weights that set their output scale), which need equal input scales (``"equal"``: sums) and
which keep one scale per channel (``"concat"``); ``"pass"`` layers keep their input's scale.

Register a rule for a layer of your own::

    @scaling_rule(MyGain, role="carrier")
    def my_gain(step):
        a = step.uniform("its gain is one number")
        s = step.output_scale(a)
        return step.call(lambda w: [w[0] * s / a]), s
"""

import numpy as np
import tensorflow as tf

import keras_spiking
from kspikese import neurons
from kspikese.neurons import Rectifier, activation_name
from kspikese.registry import ClassRegistry

_L = tf.keras.layers

#: layer class -> (rule, role)
SCALING_RULES = ClassRegistry()
ROLES = ("carrier", "pass", "equal", "concat")


def scaling_rule(*layer_classes, role="pass"):
    """Decorator registering ``rule(step) -> (tensor, scale)`` for ``layer_classes`` (and their
    subclasses without a rule of their own); ``role`` is one of :data:`ROLES`."""
    if role not in ROLES:
        raise ValueError(f"scaling_rule: role must be one of {ROLES}, got {role!r}")

    return SCALING_RULES.register(*layer_classes, entry=lambda rule: (rule, role))


def find_rule(layer):
    """``(rule, role)`` for ``layer``: the entry of the first class of its MRO with one."""
    found = SCALING_RULES.lookup(layer)
    if found is not None:
        return found
    raise LookupError(type(layer).__name__)  # pragma: no cover (Layer itself is registered)


def uniform(s):
    """``s`` as a float if all its entries are equal, else ``None``."""
    arr = np.atleast_1d(np.asarray(s, np.float64))
    return float(arr[0]) if np.allclose(arr, arr[0], rtol=1e-12, atol=0) else None


def per_channel(s, channels):
    """``s`` as one scale per channel."""
    arr = np.asarray(s, np.float64)
    return np.full(int(channels), float(arr)) if arr.ndim == 0 else arr


def scaled_activation(step, activation, scale):
    """The activation ``g`` with ``g(s·z) = s·f(z)`` for the activation ``f`` on inputs scaled by
    ``scale``: ReLU, LeakyReLU and linear are positively homogeneous (``g = f``); a clipped or
    thresholded rectifier gets ``max_value·s`` and ``threshold·s``."""
    if isinstance(activation, Rectifier):
        if activation.max_value is None and activation.threshold == 0:
            return activation
        return activation.scaled(step.require_uniform(scale, "its threshold/max_value are "
                                                             "numbers"))
    name = activation_name(activation)
    if name in ("relu", "linear", "leaky_relu"):
        return activation
    if name == "relu6":
        return Rectifier(max_value=6.0).scaled(step.require_uniform(scale, "relu6 clips at 6"))
    step.fail(f"is not positively homogeneous (activation {name!r}); scaling its input would "
              "change its function")


# ------------------------------------------------------------------------------ fallback
@scaling_rule(_L.Layer)
def _unknown(step):
    kind = type(step.layer).__name__
    if step.layer.weights:
        step.fail(f"has weights but no scaling rule; register one with "
                  f"@kspikese.convert.scaling_rule({kind}, role='carrier')")
    step.fail("has no scaling rule; supported are networks of Conv/Dense/BatchNormalization/"
              "LayerNormalization/SynapticMultiply, rectifiers and shape/merge layers "
              f"(or register one with @kspikese.convert.scaling_rule({kind}))")


@scaling_rule(_L.Multiply)
def _multiply(step):
    step.fail("multiplies its inputs: Keras' Multiply would square the scale; use "
              "kspikese.neurons.SynapticMultiply")


# ------------------------------------------------------------------------------ carriers
@scaling_rule(_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Dense, role="carrier")
def _kernel(step):
    """``kernel · s/a`` per input channel, ``bias · s`` (transposed and grouped forms too)."""
    layer, s = step.layer, step.scale
    s_out = step.output_scale(s)
    transposed = isinstance(layer, (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose))
    groups = int(getattr(layer, "groups", 1) or 1)

    def fn(weights):
        kernel = weights[0]
        n_in = kernel.shape[-1] if transposed else kernel.shape[-2] * groups
        vec = per_channel(s, n_in)
        if transposed:  # kernel (..., out, in)
            kernel = kernel * (s_out / vec)
        elif groups == 1:  # kernel (..., in, out)
            kernel = kernel * (s_out / vec)[:, None]
        else:  # kernel (..., in/groups, out): input channel of (i, o) = g(o)·in/g + i
            per, out = kernel.shape[-2], kernel.shape[-1]
            g_of_o = np.arange(out) // (out // groups)
            kernel = kernel * (s_out / vec[g_of_o[None, :] * per + np.arange(per)[:, None]])
        rest = [(w * s_out).astype(np.float32) for w in weights[1:]]  # the bias
        return [kernel.astype(weights[0].dtype)] + rest

    return step.call(fn, out=s_out), s_out


@scaling_rule(_L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D, _L.SeparableConv2D,
              role="carrier")
def _depthwise(step):
    """Depthwise kernel ``· s/a`` (one input scale), bias ``· s``."""
    a = step.uniform("depthwise kernels")
    s_out = step.output_scale(a)
    use_bias = step.layer.use_bias

    def fn(weights):
        out = [w.copy() for w in weights]
        out[0] = (out[0] * (s_out / a)).astype(weights[0].dtype)
        if use_bias:
            out[-1] = (out[-1] * s_out).astype(weights[-1].dtype)
        return out

    return step.call(fn, out=s_out), s_out


@scaling_rule(_L.BatchNormalization, role="carrier")
def _batch_norm(step):
    """``γ(x - μ)/sqrt(σ² + ε) + β`` on an input ``a`` times larger: ``μ·a``, ``σ²·a²``,
    ``ε·a²`` (the normalised value is unchanged, with moving or batch statistics), ``γ·s``,
    ``β·s``.  With one scale ``a_c`` per channel (after a channel Concatenate, as in DenseNet):
    ``μ·a_c``, ``ε' = ε·min(a)²`` and ``σ'² = a_c²(σ² + ε) - ε'``, so that
    ``sqrt(σ'² + ε') = a_c·sqrt(σ² + ε)``: exact with the moving statistics (inference); with
    batch statistics (training) the ``ε`` term differs slightly."""
    layer = step.layer
    u = uniform(step.scale)
    s_out = step.output_scale(step.scale)
    if not layer.scale and s_out != 1.0:
        step.fail("has scale=False (no gamma), so its output cannot be rescaled; build it with "
                  "scale=True")
    if getattr(layer, "renorm", False):
        step.fail("uses renorm, which is not supported")
    names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
    eps = float(layer.epsilon)
    if u is not None:
        def fn(weights):
            factor = {"gamma": s_out, "beta": s_out, "moving_mean": u, "moving_variance": u * u}
            return [(w * factor[n]).astype(w.dtype) for w, n in zip(weights, names)]

        return step.call(fn, epsilon=eps * u * u), s_out
    if int(layer.axis[0] if isinstance(layer.axis, (list, tuple)) else layer.axis) not in (
            -1, len(step.inputs[0].shape) - 1):
        step.fail("has one scale per channel on its input but normalises another axis")
    a = per_channel(step.scale, step.inputs[0].shape[-1])
    eps_new = eps * float(np.min(a)) ** 2

    def fn_channels(weights):  # a_c per channel: sqrt(σ'² + ε') = a_c·sqrt(σ² + ε)
        w = dict(zip(names, weights))
        out = {"gamma": w.get("gamma", 0) * s_out, "beta": w.get("beta", 0) * s_out,
               "moving_mean": w["moving_mean"] * a,
               "moving_variance": a * a * (w["moving_variance"] + eps) - eps_new}
        return [np.asarray(out[n]).astype(w[n].dtype) for n in names]

    return step.call(fn_channels, epsilon=eps_new), s_out


@scaling_rule(_L.LayerNormalization, role="carrier")
def _layer_norm(step):
    """``γ(x - mean)/sqrt(var + ε) + β`` over the features: ``ε·a²`` keeps the normalised value,
    ``γ·s`` and ``β·s`` scale the output."""
    layer = step.layer
    a = step.uniform("it normalises across channels")
    s_out = step.output_scale(a)
    if not layer.scale and s_out != 1.0:
        step.fail("has scale=False (no gamma), so its output cannot be rescaled")
    return step.call(lambda ws: [(w * s_out).astype(w.dtype) for w in ws],
                     epsilon=float(layer.epsilon) * a * a), s_out


@scaling_rule(neurons.SynapticMultiply, role="carrier")
def _synaptic_multiply(step):
    """The product of inputs scaled ``a`` and ``b`` is ``ab`` times larger: ``scale · s/(ab)``."""
    a = step.uniform("events")
    b = step.uniform("weights", index=1)
    s_out = step.output_scale(a)
    return step.call(out=s_out, scale=step.layer.scale * s_out / (a * b)), s_out


# ------------------------------------------------------------------------------ pass-through
@scaling_rule(neurons.InitialVoltage)
def _initial_voltage(step):
    return step.call(), 1.0  # voltages, not activations


@scaling_rule(_L.Rescaling)
def _rescaling(step):
    u = step.uniform("its offset is one number")
    return step.call(offset=float(np.asarray(step.layer.offset)) * u), step.scale


@scaling_rule(_L.ReLU)
def _relu(step):
    """``threshold · a`` and ``max_value · a``; the negative slope is scale-invariant."""
    layer, changes = step.layer, {}
    if layer.max_value is not None or float(layer.threshold) != 0.0:
        u = step.uniform("its threshold/max_value are numbers")
        changes["threshold"] = float(layer.threshold) * u
        if layer.max_value is not None:
            changes["max_value"] = float(layer.max_value) * u
    return step.call(**changes), step.scale


@scaling_rule(_L.Activation, keras_spiking.SpikingActivation)
def _activation(step):
    return step.call(out=step.scale), step.scale


@scaling_rule(
    _L.LeakyReLU, _L.PReLU,  # α·(c·x) = c·(α·x): their slopes are scale-invariant
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.SpatialDropout3D,
    _L.GaussianDropout, _L.AlphaDropout, _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D,
    _L.AveragePooling1D, _L.AveragePooling2D, _L.AveragePooling3D, _L.GlobalAveragePooling1D,
    _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D, _L.GlobalMaxPooling1D,
    _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D, _L.UpSampling1D, _L.UpSampling2D,
    _L.UpSampling3D, _L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D, _L.Cropping1D,
    _L.Cropping2D, _L.Cropping3D, _L.RepeatVector, neurons.RepeatTime, neurons.MeanTime,
)
def _shape_only(step):
    return step.call(), step.scale


@scaling_rule(_L.Reshape, _L.Flatten, _L.Permute, neurons.TimeSplit, neurons.TimeMerge)
def _reshaping(step):
    return step.call(), step.uniform("it moves the channel axis")


# ------------------------------------------------------------------------------ merges
@scaling_rule(_L.Add, _L.Subtract, _L.Average, _L.Maximum, _L.Minimum, role="equal")
def _merge_equal(step):
    return step.call(), step.equal_inputs()


@scaling_rule(_L.Concatenate, role="concat")
def _concatenate(step):
    """Along the channels: one scale per channel; along another axis: equal input scales."""
    y = step.call()
    axis = step.layer.axis if step.layer.axis >= 0 else len(y.shape) + step.layer.axis
    if axis != len(y.shape) - 1:
        return y, step.equal_inputs()
    vec = np.concatenate([per_channel(s, t.shape[-1]) for s, t in zip(step.scales, step.inputs)])
    u = uniform(vec)
    return y, vec if u is None else u
