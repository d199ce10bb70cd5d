"""Functional rebuild of a Keras graph: the walk that conversion and scaling share.

:class:`Rebuild` visits a functional model's nodes from the inputs to the outputs and builds a new
functional model from fresh copies of its layers (same names and configs, except where a subclass
changes them), then copies the weights layer by layer (optionally transformed).  The input model
is never modified.
"""

import tensorflow as tf


def as_functional(model, what):
    """``model`` as a functional model (a Sequential one is wrapped; subclassed ones refused).

    Parameters
    ----------
    model : tf.keras.Model
        A functional or Sequential model with a defined input.
    what : str
        The caller's name, used in error messages.

    Returns
    -------
    tf.keras.Model
        A functional model over the same layers.
    """
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


def nodes(model):
    """Yield the nodes of a functional ``model`` from the inputs to the outputs (each node after
    all of the nodes that produce its inputs)."""
    by_depth = model._nodes_by_depth
    for depth in sorted(by_depth, reverse=True):
        yield from by_depth[depth]


def unique_name(name, used):
    """``name``, or ``name_k`` with the smallest ``k`` not in ``used``; the result is added to
    ``used``."""
    out, k = name, 0
    while out in used:
        k += 1
        out = f"{name}_{k}"
    used.add(out)
    return out


def is_tensor(value):
    """Whether ``value`` is a symbolic Keras tensor (an edge of the graph)."""
    return tf.keras.backend.is_keras_tensor(value)


class Rebuild:
    """Rebuild ``model`` node by node; subclasses decide what each node becomes.

    Hooks: :meth:`on_input` (the new input tensor -> what the graph sees), :meth:`on_node` (a
    layer call with its inputs already rebuilt -> its new outputs) and :meth:`on_output`.  Layers
    copied with :meth:`clone` get the original's weights after the walk, passed through the
    ``weight_fn`` given at the first clone.
    """

    def __init__(self, model):
        self.model = model
        self.tensors = {}  # id(original KerasTensor) -> new tensor
        self.clones = {}  # original layer -> its copy
        self.weight_fns = {}  # original layer -> f(weights) -> weights for the copy
        self.used_names = {layer.name for layer in model.layers}
        self.node_counts = {}

    def clone(self, layer, weight_fn=None, **changes):
        """A copy of ``layer`` (one per layer, shared by all its calls) with ``changes`` to its
        config; its weights will be ``weight_fn(layer.get_weights())``."""
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
        return unique_name(base, self.used_names)

    def on_input(self, tensor, new_input):
        return new_input

    def on_node(self, node, layer, args, kwargs):
        return self.clone(layer)(*args, **kwargs)

    def on_output(self, tensor, new_tensor):
        return new_tensor

    def run(self, name):
        """Walk the graph and return the new functional model called ``name``."""
        model = self.model
        new_inputs = []
        for t in model.inputs:
            layer = t._keras_history.layer
            inp = tf.keras.Input(batch_shape=t.shape, dtype=t.dtype, name=layer.name)
            new_inputs.append(inp)
            self.tensors[id(t)] = self.on_input(t, inp)
        for node in nodes(model):
            layer = node.layer
            if isinstance(layer, tf.keras.layers.InputLayer):
                continue
            args, kwargs = tf.nest.map_structure(
                lambda v: self.tensors[id(v)] if is_tensor(v) else v,
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
