"""Function-preserving activation scaling: :func:`scale_activations` makes every activation of a
ReLU-family network ``c`` times larger (one ``c``, or one per layer) without changing its output.

A ReLU network is positively homogeneous: ``f(c·x; c·b) = c·f(x; b)`` for ``c > 0`` when every
bias ``b`` is scaled too.  The walk here tracks the scale of every tensor and asks each layer's
rule in :mod:`kspikese.convert.scaling_rules` how the layer carries it.
"""

import math

import numpy as np
import tensorflow as tf

from kspikese.convert.graph import Rebuild, as_functional, is_tensor, nodes, unique_name
from kspikese.convert.scaling_rules import find_rule, scaled_activation, uniform

_L = tf.keras.layers


class Step:
    """One layer call being rebuilt, as a scaling rule sees it.

    Attributes
    ----------
    layer : tf.keras.layers.Layer
        The original layer.
    inputs : list
        Its rebuilt input tensors; ``scales[i]`` is how much larger ``inputs[i]`` is than the
        original (a number, or one per channel).
    """

    def __init__(self, scaler, layer, args, kwargs):
        self.scaler, self.layer, self.args, self.kwargs = scaler, layer, args, kwargs
        self.inputs = [t for t in tf.nest.flatten((args, kwargs)) if id(t) in scaler.scales]
        self.scales = [scaler.scales[id(t)] for t in self.inputs]

    @property
    def scale(self):
        """The first input's scale (1 for a layer without inputs)."""
        return self.scales[0] if self.scales else 1.0

    def fail(self, why):
        """Raise ``ValueError`` naming the layer."""
        raise ValueError(f"scale_activations: layer {self.layer.name!r} "
                         f"({type(self.layer).__name__}) {why}")

    def require_uniform(self, s, why):
        """``s`` as one number, or fail saying ``why`` one number is needed."""
        u = uniform(s)
        if u is None:
            self.fail(f"needs one scale for all its input channels ({why}), got "
                      f"{np.round(s, 6).tolist()}")
        return u

    def uniform(self, why, index=0):
        """The scale of input ``index`` as one number (see :meth:`require_uniform`)."""
        return self.require_uniform(self.scales[index] if self.scales else 1.0, why)

    def output_scale(self, s_in):
        """The factor requested for this layer, else its input's scale (the geometric mean of a
        per-channel scale)."""
        if self.layer.name in self.scaler.targets:
            return float(self.scaler.targets[self.layer.name])
        u = uniform(s_in)
        return u if u is not None else float(np.exp(np.mean(np.log(s_in))))

    def equal_inputs(self):
        """The common scale of all inputs (they must be equal: a sum needs one scale)."""
        first = self.scales[0]
        for other in self.scales[1:]:
            if not np.allclose(np.asarray(first, np.float64), np.asarray(other, np.float64),
                               rtol=1e-9, atol=0):
                raise ValueError(
                    f"scale_activations: the inputs of {self.layer.name!r} "
                    f"({type(self.layer).__name__}) have different scales; give the layers "
                    "feeding it the same factor"
                )
        return first

    def call(self, weight_fn=None, out=None, **changes):
        """Call the layer's copy (config ``changes``, weights through ``weight_fn``) on the
        rebuilt inputs.  ``out``: the scale of the layer's pre-activation output, to which its
        own ``activation`` argument (if any) is adapted (:func:`scaled_activation`)."""
        act = getattr(self.layer, "activation", None)
        if out is not None and act is not None and "activation" not in changes:
            new = scaled_activation(self, act, out)
            if new is not act:
                changes["activation"] = new
        return self.scaler.clone(self.layer, weight_fn, **changes)(*self.args, **self.kwargs)


class Scaler(Rebuild):
    """The rebuild behind :func:`scale_activations`: tracks the scale of every tensor."""

    def __init__(self, model, c, targets):
        super().__init__(model)
        self.c = c  # uniform input scale (None in per-layer mode)
        self.targets = targets  # layer name -> required output scale
        self.scales = {}  # id(new tensor) -> scale

    def on_input(self, tensor, new_input):
        if self.c is None or self.c == 1.0:
            self.scales[id(new_input)] = 1.0
            return new_input
        name = unique_name("input_scale", self.used_names)
        out = _L.Rescaling(self.c, name=name)(new_input)
        self.scales[id(out)] = self.c
        return out

    def on_output(self, tensor, new_tensor):
        s = uniform(self.scales[id(new_tensor)])
        if s is None:
            raise ValueError(
                f"scale_activations: output {tensor.name!r} has different scales per channel"
            )
        if s == 1.0:
            return new_tensor
        name = unique_name("output_scale", self.used_names)
        return _L.Rescaling(1.0 / s, name=name)(new_tensor)

    def on_node(self, node, layer, args, kwargs):
        rule, role = find_rule(layer)
        if role != "carrier" and layer.name in self.targets:
            raise ValueError(
                f"scale_activations: {layer.name!r} ({type(layer).__name__}) has no weights to "
                "carry a scale; give the scale to the layer that produces its input"
            )
        y, s = rule(Step(self, layer, args, kwargs))
        self.scales[id(y)] = s
        return y


def scale_activations(model, c, sum_scale="geometric"):
    """Return a copy of ``model`` computing the same function with its activations scaled.

    With one number ``c`` the copy is::

        Rescaling(c, name="input_scale") -> model with biases·c -> Rescaling(1/c, "output_scale")

    and every hidden activation is ``c`` times larger.  Per layer type (``a`` = scale of a
    layer's input, ``s`` = of its output; :mod:`kspikese.convert.scaling_rules`):

    * Conv/Dense/transposed conv: ``kernel · s/a`` (per input channel), ``bias · s``.
    * BatchNormalization, ``γ(x - μ)/sqrt(σ² + ε) + β`` on an input ``a`` times larger:
      ``μ·a``, ``σ²·a²``, ``ε·a²`` (the normalised value is exactly unchanged, in inference and,
      with the batch statistics, in training), ``γ·s`` and ``β·s``; LayerNormalization alike.
    * SynapticMultiply: the product of inputs scaled ``a`` and ``b`` is ``ab`` times larger, so
      its ``scale`` becomes ``scale · s/(a·b)``.
    * Rescaling inside the graph: ``offset · a``; ReLU: ``threshold · a``, ``max_value · a``
      (also a clipped ``activation=``); LeakyReLU and PReLU: unchanged (``α·(c·x) = c·(α·x)``).
    * Shape and merge layers pass the scale through (Add/Average need equal input scales;
      Concatenate keeps one scale per channel).

    Parameters
    ----------
    model : tf.keras.Model
        A functional or Sequential model (not modified).
    c : float or dict
        One factor ``c > 0``; or ``{layer name: c_l}`` (per-layer, data-based normalisation):
        the named layer's output is scaled by ``c_l`` (an activation layer's factor goes to the
        layers with weights that feed it), the others inherit their input's scale, and the model's input is
        not rescaled.  Layers whose outputs are added (Conv-TasNet's residual and skip paths)
        share one factor (:func:`equalise`).
    sum_scale : {"geometric", "min"}
        That shared factor: the geometric mean of the factors asked for the group, or the
        smallest (no member then fires above its target at its percentile).

    Returns
    -------
    tf.keras.Model
        The scaled copy, with the same name.  The scales live in the weights and layer configs,
        so they survive save/load; :func:`input_scale` reads ``c`` back.
    """
    model = as_functional(model, "scale_activations")
    if isinstance(c, dict):
        targets, uniform_c = layer_targets(model, c, sum_scale), None
    else:
        uniform_c = float(c)
        if not math.isfinite(uniform_c) or uniform_c <= 0:
            raise ValueError(f"scale_activations: c must be a positive number, got {c!r}")
        targets = {}
    return Scaler(model, uniform_c, targets).run(name=model.name)


def layer_targets(model, factors, sum_scale="geometric"):
    """``{carrier layer name: factor}`` for per-layer ``factors``: a factor asked for a layer
    without weights goes to the one layer feeding it; then :func:`equalise` makes summed layers
    share one factor."""
    names = {layer.name for layer in model.layers}
    missing = sorted(set(factors) - names)
    if missing:
        raise ValueError(f"scale_activations: no layer named {missing} in model {model.name!r}")
    targets = {}
    for name, value in factors.items():
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"scale_activations: the factor of {name!r} must be > 0, got {value}")
        carriers = carriers_feeding(model.get_layer(name))
        if not carriers:
            raise ValueError(f"scale_activations: no layer with weights feeds {name!r}, so its "
                             "factor has nowhere to go")
        for layer in carriers:
            targets[layer.name] = value
    return equalise(model, targets, sum_scale)


def carriers_feeding(layer):
    """The ``"carrier"`` layers whose scale reaches ``layer``: itself if it is one, else those
    found walking back through pass, sum and concatenation layers (an activation after a
    residual Add, as in ResNet, gets its factor from the layers feeding the sum)."""
    found, seen, todo = [], set(), [layer]
    while todo:
        current = todo.pop()
        if id(current) in seen or isinstance(current, _L.InputLayer):
            continue
        seen.add(id(current))
        if find_rule(current)[1] == "carrier":
            found.append(current)
            continue
        for node in current._inbound_nodes:
            todo.extend(tf.nest.flatten(node.inbound_layers))
    return found


SUM_SCALES = ("geometric", "min")


def sum_groups(model):
    """The groups of ``"carrier"`` layers (by name) whose outputs meet in an ``"equal"`` layer
    (Add, Subtract, Average, Maximum, Minimum), directly or through pass layers: each group must
    share one factor.  ``"<input>"`` stands for the model's input.  Carriers in no sum are not
    listed.

    Returns
    -------
    list of list of str
    """
    parent = {}

    def find(k):
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    source = {id(t): "<input>" for t in model.inputs}
    for node in nodes(model):
        layer = node.layer
        if isinstance(layer, _L.InputLayer):
            continue
        srcs = [source.get(id(t)) for t in tf.nest.flatten(node.call_args) if is_tensor(t)]
        role = find_rule(layer)[1]
        if role == "carrier":
            out = layer.name
        elif role == "equal":
            known = [find(k) for k in srcs if k is not None]
            for k in known[1:]:
                parent[find(k)] = find(known[0])
            out = known[0] if known and len(known) == len(srcs) else None
        elif role == "concat":
            out = None  # one scale per channel: no constraint between its inputs
        else:
            out = srcs[0] if srcs else None
        for t in tf.nest.flatten(node.outputs):
            source[id(t)] = out
    groups = {}
    for k in list(parent):
        groups.setdefault(find(k), []).append(k)
    return [members for members in groups.values() if len(members) > 1]


def equalise(model, targets, sum_scale="geometric"):
    """Give one factor to every group of :func:`sum_groups`: a sum needs equal scales.  The
    group's factor is the geometric mean of its members' requested factors, or with
    ``sum_scale="min"`` the smallest (1 if the group includes the model's input, whose scale is 1
    in per-layer mode, or if none of its members was asked for a factor, as with MobileNetV2's
    residual sums of two linear projections)."""
    if sum_scale not in SUM_SCALES:
        raise ValueError(f"scale_activations: sum_scale must be one of {list(SUM_SCALES)}, got "
                         f"{sum_scale!r}")
    result = dict(targets)
    for members in sum_groups(model):
        wanted = [targets[m] for m in members if m in targets]
        if "<input>" in members or not wanted:
            value = 1.0  # no factor asked (e.g. two linear projections summed): the ANN's scale
        elif sum_scale == "min":
            value = float(min(wanted))
        else:
            value = float(np.exp(np.mean(np.log(wanted))))
        for m in members:
            if m != "<input>":
                result[m] = value
    return result


def input_scale(model):
    """The input scale ``c`` that :func:`scale_activations` built into ``model`` (1.0 if none):
    the product of the ``Rescaling`` layers named ``input_scale*``."""
    c = 1.0
    for layer in model.layers:
        if isinstance(layer, _L.Rescaling) and layer.name.startswith("input_scale"):
            c *= float(np.asarray(layer.scale))
    return c
