"""Energy per inference with KerasSpiking's ``ModelEnergy``, every layer of the two models counted.

KerasSpiking costs a layer by two shape-derived statistics, then prices them per device:

* ``connections`` C: synapses from all input elements to all units; a synaptic *event* on an
  input element costs one operation per outgoing synapse, so with a mean input value ``r``
  (events/s, KerasSpiking's "rate") the layer performs ``C · r · dt · T`` synaptic operations per
  inference of ``T`` timesteps of length ``dt``.  A spiking layer with window ω outputs ``n/ω``
  for ``n`` spikes, so with ``dt = ω`` the term ``r·dt`` is the mean spike count per element.
* ``neurons`` N: neuron updates per timestep, ``N · T`` per inference.

On a non-spiking device (``cpu``: 8.6 nJ per op) every synapse is computed once per timestep
(``r·dt = 1``): energy ``= e · (C + N)``.  On a spiking device (``loihi``, ``spinnaker2``, and
``cpu-events`` registered here: CPU cost per op, but event-driven) energy
``= e_syn · C · r · dt · T + e_neuron · N · T`` with ``r`` measured on example data.

KerasSpiking 0.3.0 counts Conv1D/2D/3D, Dense, activations, ``SpikingActivation`` and
``TimeDistributed``; anything else is zero, with a warning unless it is on a short whitelist.
``Conv1DTranspose`` subclasses ``Conv1D`` and gets ``output size × prod(kernel.shape[:-1])``;
its kernel is ``(k, filters, in_channels)``, so that is ``L_out · C_out · k · C_out`` — the
wrong channel count and ``s`` times too many positions (Conv-TasNet's decoder: ``C_out = 1``,
``C_in = 256``, ``s = 8``: 32× too few).  :class:`CorrectedEnergy` registers a statistic for
every layer type the two models use (see each ``*_stats`` function for its derivation);
:class:`StockEnergy` keeps KerasSpiking's registry untouched, so both estimates can be made side
by side.  Registrations live in each class's own registry, never in ``ModelEnergy``'s global one
(use :func:`corrected_registrations` to install them there temporarily).

Both classes measure input rates streaming, batch by batch (KerasSpiking's own pass keeps every
layer's input for every example in memory and cannot average a Concatenate of unequal inputs):
a node's rate is the mean of ``|x|`` over all elements of all its (event-carrying) inputs, and a
layer's rate is the sum over its nodes, as in KerasSpiking.
"""

import contextlib
import dataclasses
import warnings

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import keras_spiking
import tensorflow as tf
from keras_spiking import ModelEnergy

layers = tf.keras.layers

SR = 16000
FRAME_LEN = 16384  # the paper's fine-tuning / inference frame
CPU_J_PER_OP = ModelEnergy.devices["cpu"]["energy_per_synop"]  # 8.6 nJ (Degnan et al. 2015)

if "cpu-events" not in ModelEnergy.devices:
    # an event-driven simulation on the same CPU: one op per synaptic event, not per synapse
    ModelEnergy.register_device(
        "cpu-events", energy_per_synop=CPU_J_PER_OP, energy_per_neuron=CPU_J_PER_OP, spiking=True
    )

# devices of Table 5; "cpu" for the ANN, all of them for the SNN (SpiNNaker 1 too: the paper
# does not say which device its SNN figures are for)
SNN_DEVICES = ("cpu", "cpu-events", "loihi", "spinnaker", "spinnaker2")
ANN_DEVICES = ("cpu",)

# Abuhajar et al. 2025, Table 5 (KerasSpiking, Joules per inference)
PAPER_TABLE5 = {
    "wave_u_net": {"label": "Wave-U-Net", "params": 2.60e6, "ann_j": 14.6, "snn_j": 4.63},
    "conv_tasnet": {"label": "ConvTasNet", "params": 2.65e6, "ann_j": 44.4, "snn_j": 6.37},
}

WARNING_TEXT = "Cannot compute stats for layer of type"


# ------------------------------------------------------------------------------ shape helpers
def _shape(shape):
    """A node shape as a tuple (``TensorShape`` and lists alike)."""
    return tuple(tf.TensorShape(shape).as_list())


def _size(shape, what, layer):
    """Number of elements of one example: drop the batch axis and a leading ``None`` time axis."""
    dims = _shape(shape)[1:]
    if dims and dims[0] is None:
        dims = dims[1:]
    if any(d is None for d in dims):
        raise ValueError(
            f"cannot count layer {layer.name!r}: its {what} shape {dims} has undefined sizes; "
            "build the model with a fixed frame length (see kspikese.energy.with_frame_len)"
        )
    return int(np.prod(dims, dtype=np.int64))


def _layer(node):
    return node.layer


def _act(layer, n):
    """KerasSpiking's rule for a built-in activation: a non-linear one is a neuron update."""
    act = getattr(layer, "activation", None)
    if act in (None, "linear", tf.keras.activations.linear):
        return {"neurons": 0, "spiking": True}
    return {"neurons": int(n), "spiking": False}


def _spatial_channels(shape, data_format, layer, what):
    """``(positions, channels)`` of a 1-D conv shape ``(batch, L, C)`` or ``(batch, C, L)``."""
    dims = _shape(shape)
    if len(dims) != 3:
        raise ValueError(f"layer {layer.name!r}: expected a 3-D {what} shape, got {dims}")
    length, channels = (dims[1], dims[2]) if data_format != "channels_first" else (dims[2], dims[1])
    if length is None or channels is None:
        raise ValueError(
            f"cannot count layer {layer.name!r}: its {what} shape {dims[1:]} has undefined sizes; "
            "build the model with a fixed frame length (see kspikese.energy.with_frame_len)"
        )
    return int(length), int(channels)


# ------------------------------------------------------------------------------ layer statistics
def conv1d_transpose_stats(node):
    """``Conv1DTranspose``: every input element feeds ``k · C_out / g`` outputs.

    A transposed convolution scatters each input element (position ``i``, channel ``c``) through
    its ``k`` kernel taps into ``C_out / g`` output channels at positions ``i·s + j``:

        connections = L_in · C_in · k · C_out / g

    (``g`` = groups, 1 in tf-keras).  Border taps cut off by ``padding="same"`` are counted, as
    KerasSpiking counts a ``Conv1D``'s zero-padded taps, so for stride 1 this equals Conv1D's
    ``L_out · k · C_in · C_out``.  For stride ``s`` with ``k = s`` (Wave-U-Net's k=2, s=2) every
    output gets exactly one tap per input channel: ``L_out · C_in · C_out``.
    """
    layer = _layer(node)
    length, c_in = _spatial_channels(node.input_shapes, layer.data_format, layer, "input")
    groups = int(getattr(layer, "groups", 1) or 1)
    k = int(layer.kernel_size[0])
    out = _size(node.output_shapes, "output", layer)
    stats = {"connections": length * c_in * k * int(layer.filters) // groups}
    stats.update(_act(layer, out))
    return stats


def depthwise_conv1d_stats(node):
    """``DepthwiseConv1D``: each output element reads ``k`` taps of one input channel.

        connections = L_out · C_in · m · k = (output size) · k     (m = depth multiplier)
    """
    layer = _layer(node)
    out = _size(node.output_shapes, "output", layer)
    stats = {"connections": out * int(layer.kernel_size[0])}
    stats.update(_act(layer, out))
    return stats


FOLDABLE = (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Dense, layers.DepthwiseConv1D)


def batch_normalization_stats(node):
    """``BatchNormalization`` at inference: ``y = a·x + b`` per channel, ``a = γ/√(σ²+ε)``.

    When its input comes straight from a linear convolution or dense layer (no activation in
    between) it is folded into that layer: ``W' = a·W``, ``b' = a·(b - μ) + β``.  The folded
    network computes exactly the same function with no extra operation, in the ANN and in the
    SNN alike (where the folded weights are the synapses, and a BN neuron would not exist), so it
    costs nothing.  Otherwise (e.g. after an activation or an addition) it is one synapse of
    weight ``a`` per element: ``connections = output size``.
    """
    layer = _layer(node)
    inbound = node.inbound_layers
    inbound = inbound[0] if isinstance(inbound, (list, tuple)) and len(inbound) == 1 else inbound
    folded = isinstance(inbound, FOLDABLE) and getattr(inbound, "activation", None) in (
        None, tf.keras.activations.linear)
    if folded:
        return {"connections": 0, "neurons": 0}
    return {"connections": _size(node.output_shapes, "output", layer), "neurons": 0}


def multiply_stats(node):
    """Element-wise product of ``m`` inputs: ``(m - 1)`` multiplications per output element.

    For the Conv-TasNet mask (``m = 2``) and for kspikese's ``SynapticMultiply`` (paper §3.2.3:
    the mask's spikes pass through one synapse per element whose weight is the encoder's spike
    count) that is one connection per element, ``connections = output size``; a non-linear
    ``activation`` on the layer adds one neuron per element.  On a spiking device only the mask's
    spikes are events (see :func:`event_input_indices`).
    """
    layer = _layer(node)
    shapes = node.input_shapes
    n_inputs = len(shapes) if isinstance(shapes, (list, tuple)) and shapes and isinstance(
        shapes[0], (list, tuple, tf.TensorShape)) else 1
    n_inputs = max(n_inputs, 2)
    out = _size(node.output_shapes, "output", layer)
    stats = {"connections": (n_inputs - 1) * out}
    stats.update(_act(layer, out))
    return stats


def spiking_activation_stats(node):
    """``SpikingActivation``: one neuron update per neuron per timestep.

    KerasSpiking takes ``prod(input shape[2:])`` (input ``(batch, time, *neurons)``).  That is
    right for kspikese's fixed-shape wrapping (``Reshape`` to ``(B, T, L, C)``), but when
    :class:`kspikese.neurons.TimeSplit` folds positions into the batch axis
    (``(B·T, L, C) -> (B·L, T, C)``) it would count ``C`` neurons instead of ``L·C``; then the
    count is taken from the ``TimeSplit``'s input, one neuron per element of a timestep.
    """
    inbound = node.inbound_layers
    inbound = list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]
    # (an InitialVoltage passed as initial_state is an inbound layer too, but not an input shape)
    split = [lay for lay in inbound if type(lay).__name__ == "TimeSplit" and
             getattr(lay, "fold", False)]
    if split:
        neurons = _size(split[0].inbound_nodes[0].input_shapes, "input", split[0])
    else:
        shape = node.input_shapes
        if isinstance(shape, list) and shape and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        neurons = int(np.prod(_shape(shape)[2:], dtype=np.int64))
    return {"neurons": int(neurons), "spiking": True}


def free_stats(node):
    """Layers that route or relabel values and cost nothing.

    * ``InputLayer``, ``Reshape``, ``Flatten``, ``Permute``, ``Dropout`` (identity at inference),
      ``Cropping1D``, ``ZeroPadding1D``, ``UpSampling1D``: memory layout / routing.
    * ``Concatenate``: the spike trains keep their own destinations; the next layer's
      ``connections`` already count every input channel.
    * ``Add``: the paper's spike addition (§3.2.3) is concatenating spike trains onto the same
      targets, so the consumer's synapses see ``|a + b| = |a| + |b|`` events and count them; in the
      ANN the sum is accumulated straight into the producing convolution's accumulator (a
      residual ``x + conv(h)`` starts the MAC sum at ``x`` instead of the bias): no extra op.
    * ``Rescaling`` by a constant: folded into the weights of the linear layer it feeds (and at
      the input it is just the choice of units of the audio).
    * kspikese's time-axis plumbing (``RepeatTime``, ``TimeSplit``, ``TimeMerge``: reshapes and
      copies), ``InitialVoltage`` (a neuron's constant initial state, set once, not per step)
      and ``MeanTime`` (the readout's average over ``T`` steps: identity for ``T = 1``, and for
      ``T > 1`` the host's decoding of the output counts, not part of the network).
    """
    return {"connections": 0, "neurons": 0}


FREE_LAYERS = (
    layers.InputLayer, layers.Reshape, layers.Flatten, layers.Permute, layers.Dropout,
    layers.Cropping1D, layers.ZeroPadding1D, layers.UpSampling1D, layers.Concatenate, layers.Add,
    layers.Rescaling,
)


def _neurons_module():
    try:
        from kspikese import neurons
    except ImportError:  # the models' module is not there (yet): nothing to register
        return None
    return neurons


def _synaptic_multiply_class():
    neurons = _neurons_module()
    return getattr(neurons, "SynapticMultiply", None)


def event_input_indices(layer, n_inputs):
    """Indices of a layer's inputs whose values are synaptic events (the rest are weights).

    For ``SynapticMultiply`` the encoder's counts are synaptic weights and only the mask carries
    events: the input named by the layer's ``event_input`` attribute (default 0, the mask).  Any
    multi-input layer with an integer ``event_input`` attribute is treated the same way.  Every
    other layer: all inputs.
    """
    if n_inputs > 1:
        index = getattr(layer, "event_input", None)
        cls = _synaptic_multiply_class()
        if index is None and cls is not None and isinstance(layer, cls):
            index = 0
        if index is not None:
            if not 0 <= int(index) < n_inputs:
                raise ValueError(f"layer {layer.name!r}: event_input={index} but it has "
                                 f"{n_inputs} inputs")
            return [int(index)]
    return list(range(n_inputs))


# ------------------------------------------------------------------------------ the estimators
class StockEnergy(ModelEnergy):
    """KerasSpiking 0.3.0's ``ModelEnergy`` as it stands, with a streaming rate pass.

    ``example_data``: input frames ``(n, L, 1)``, averaged in batches of ``batch_size``
    (``progress``: a tqdm bar); or pass ``measured`` (from :func:`measure_inputs`) to reuse one
    pass for several estimators.
    """

    kind = "stock"

    def __init__(self, model, example_data=None, batch_size=4, progress=False, measured=None):
        self.batch_size = int(batch_size)
        self.progress = progress
        self.measured = measured
        if example_data is None and measured is not None:
            example_data = measured  # ModelEnergy only checks that example data was given
        super().__init__(model, example_data)
        if example_data is None:
            self.layer_nonzero, self.layer_output_counts = {}, {}

    def _event_indices(self, layer, n_inputs):
        return list(range(n_inputs))

    def _compute_model_rates(self):
        if self.measured is None:
            self.measured = measure_inputs(self.model, self.example_data,
                                           batch_size=self.batch_size, progress=self.progress)
        self.layer_rates, self.layer_nonzero, self.layer_output_counts = combine_rates(
            self.model, self.measured, self._event_indices)


class CorrectedEnergy(StockEnergy):
    """``ModelEnergy`` with a statistic registered for every layer type the two models use.

    The registry is this class's own copy of KerasSpiking's, so registering here leaves
    ``keras_spiking.ModelEnergy`` (and :class:`StockEnergy`) unchanged.
    """

    kind = "corrected"
    layer_stats_computers = dict(ModelEnergy.layer_stats_computers)

    def _event_indices(self, layer, n_inputs):
        return event_input_indices(layer, n_inputs)


def timedistributed_stats(node):
    """``TimeDistributed``: the wrapped layer's statistics, from the corrected registry.

    (KerasSpiking's own version looks the wrapped layer up in the global registry.)
    """
    wrapper = _layer(node)
    wrapper.layer(node.input_tensors[:, 0])
    return CorrectedEnergy.compute_layer_stats(wrapper.layer, node=wrapper.layer.inbound_nodes[-1])


def corrected_registry():
    """``{layer class: stats function}`` of every correction (SynapticMultiply if importable)."""
    registry = {layers.Conv1DTranspose: conv1d_transpose_stats,
                layers.DepthwiseConv1D: depthwise_conv1d_stats,
                layers.BatchNormalization: batch_normalization_stats,
                layers.Multiply: multiply_stats,
                layers.TimeDistributed: timedistributed_stats}
    registry[keras_spiking.SpikingActivation] = spiking_activation_stats
    registry.update({cls: free_stats for cls in FREE_LAYERS})
    neurons = _neurons_module()
    if neurons is not None:
        for name in ("RepeatTime", "TimeSplit", "TimeMerge", "MeanTime", "InitialVoltage"):
            if hasattr(neurons, name):
                registry[getattr(neurons, name)] = free_stats
        if hasattr(neurons, "SynapticMultiply"):
            registry[neurons.SynapticMultiply] = multiply_stats
    return registry


def _register_corrections():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already registered. Overwriting." for TimeDistributed
        for cls, fn in corrected_registry().items():
            CorrectedEnergy.register_layer(cls)(fn)


_register_corrections()


@contextlib.contextmanager
def corrected_registrations():
    """Install the corrections in ``keras_spiking.ModelEnergy`` itself, and remove them after.

    For code that calls ``keras_spiking.ModelEnergy(model).summary()`` directly::

        with corrected_registrations():
            keras_spiking.ModelEnergy(model).summary()
    """
    registry = ModelEnergy.layer_stats_computers
    saved = dict(registry)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cls, fn in corrected_registry().items():
                ModelEnergy.register_layer(cls)(fn)
        yield ModelEnergy
    finally:
        registry.clear()
        registry.update(saved)


# ------------------------------------------------------------------------------ rate measurement
def _batches(data, batch_size):
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[..., None]
    for start in range(0, len(data), batch_size):
        yield data[start:start + batch_size]


def _model_nodes(model):
    """``[(layer, node number, node)]`` for every application of a layer inside ``model``."""
    inside = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    return [(layer, n, node) for layer in model.layers
            for n, node in enumerate(layer.inbound_nodes) if id(node) in inside]


@dataclasses.dataclass
class Measured:
    """Input magnitudes of every layer application, measured on example frames.

    ``inputs[(layer name, node number)]``: one ``(mean |x|, nonzero fraction, elements)`` per
    input tensor of that node; ``spikes[layer name]``: mean ``|output| · ω`` of a
    ``SpikingActivation`` layer (spikes per neuron per timestep); ``n_frames``: frames seen.
    """

    inputs: dict
    spikes: dict
    n_frames: int


def measure_inputs(model, data, batch_size=4, progress=False):
    """Stream frames ``data`` through ``model`` and average every layer input's magnitude."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim not in (2, 3) or len(data) == 0:
        raise ValueError(f"example_data: expected frames of shape (n, L[, 1]) with n > 0, "
                         f"got an array of shape {data.shape}")
    tensors, index = [], []
    for layer, n, node in _model_nodes(model):
        inputs = tf.nest.flatten(node.input_tensors)
        index.append(((layer.name, n), list(range(len(tensors), len(tensors) + len(inputs)))))
        tensors.extend(inputs)
    spiking = spiking_layers(model)
    first_out = len(tensors)
    tensors.extend(layer.output for layer in spiking)
    probe = tf.keras.Model(model.inputs, tensors)

    @tf.function
    def reduce(batch):
        outs = probe(batch, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return ([tf.reduce_sum(tf.abs(tf.cast(o, tf.float64))) for o in outs],
                [tf.math.count_nonzero(o, dtype=tf.float64) for o in outs])

    sums = np.zeros(len(tensors))
    nonzeros = np.zeros(len(tensors))
    sizes = np.array([np.prod(t.shape[1:].as_list(), dtype=np.float64) for t in tensors])
    batches = _batches(data, batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=-(-len(data) // batch_size), desc="firing rates",
                       unit="batch", leave=False)
    for batch in batches:
        s, z = reduce(tf.constant(batch))
        sums += np.array([float(v) for v in s])
        nonzeros += np.array([float(v) for v in z])
    counts = sizes * len(data)
    mean_abs, frac = sums / counts, nonzeros / counts
    inputs = {key: [(float(mean_abs[c]), float(frac[c]), float(sizes[c])) for c in cols]
              for key, cols in index}
    spikes = {layer.name: float(mean_abs[first_out + i] * layer.dt)
              for i, layer in enumerate(spiking)}
    return Measured(inputs=inputs, spikes=spikes, n_frames=len(data))


def combine_rates(model, measured, event_indices):
    """Per-layer rates from :func:`measure_inputs`, KerasSpiking's way.

    A node's rate is the element-weighted mean of ``|x|`` over its event-carrying inputs (for
    equal shapes this is KerasSpiking's ``mean(abs([a, b]))``); a layer's is the sum over its
    nodes.  Returns ``(rates, nonzero fractions, spikes per neuron)`` keyed by layer.
    """
    rates = {layer: 0.0 for layer in model.layers}
    nonzero = {layer: 0.0 for layer in model.layers}
    for layer, n, _ in _model_nodes(model):
        per_input = measured.inputs[(layer.name, n)]
        picked = [per_input[i] for i in event_indices(layer, len(per_input))]
        weights = np.array([p[2] for p in picked])
        if weights.sum() > 0:
            rates[layer] += float(np.dot([p[0] for p in picked], weights) / weights.sum())
            nonzero[layer] += float(np.dot([p[1] for p in picked], weights) / weights.sum())
    spikes = {layer: measured.spikes[layer.name] for layer in spiking_layers(model)
              if layer.name in measured.spikes}
    return rates, nonzero, spikes


# ------------------------------------------------------------------------------ model helpers
def spiking_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras_spiking.SpikingActivation)]


def model_dt(model):
    """The window ω (``dt``) of the model's ``SpikingActivation`` layers; ``None`` for an ANN."""
    dts = sorted({float(layer.dt) for layer in spiking_layers(model)})
    if not dts:
        return None
    if len(dts) > 1:
        raise ValueError(f"model {model.name!r} mixes SpikingActivation dt values {dts}; "
                         "pass dt= explicitly")
    return dts[0]


def model_timesteps(model):
    """Timesteps ``T`` per inference: a ``RepeatTime`` layer's (kspikese's converter), else 1."""
    steps = {int(layer.timesteps) for layer in model.layers
             if type(layer).__name__ == "RepeatTime" and hasattr(layer, "timesteps")}
    if len(steps) > 1:
        raise ValueError(f"model {model.name!r} repeats its input {sorted(steps)} times; "
                         "pass timesteps= explicitly")
    return steps.pop() if steps else 1


def frame_len_of(model):
    """The model's input length (``None`` if it accepts any length)."""
    shape = model.input_shape
    return shape[1]


def with_frame_len(model, frame_len=FRAME_LEN, custom_objects=None):
    """``model`` with a fixed input length (shapes must be known to count connections).

    Returns ``model`` itself when its input already has that length; otherwise rebuilds it from
    its config with ``(None, frame_len, C)`` inputs and copies the weights.
    """
    length = frame_len_of(model)
    if length == frame_len:
        return model
    if length is not None:
        raise ValueError(f"model {model.name!r} is built for frames of {length} samples, "
                         f"not {frame_len}; pass frame_len={length}")
    config = model.get_config()
    for layer_cfg in config["layers"]:
        if layer_cfg["class_name"] == "InputLayer":
            shape = list(layer_cfg["config"]["batch_input_shape"])
            shape[1] = frame_len
            layer_cfg["config"]["batch_input_shape"] = tuple(shape)
    objects = {"SpikingActivation": keras_spiking.SpikingActivation}
    neurons = _neurons_module()
    if neurons is not None and hasattr(neurons, "custom_objects"):
        objects.update(neurons.custom_objects())
    objects.update(custom_objects or {})
    with tf.keras.utils.custom_object_scope(objects):
        fixed = tf.keras.Model.from_config(config)
    fixed.set_weights(model.get_weights())
    return fixed


# ------------------------------------------------------------------------------ the estimate
@dataclasses.dataclass
class Estimate:
    """One model costed by one estimator.

    ``layers``: one dict per layer (name, type, output shape, params, connections, neurons,
    input rate as events per element per inference, nonzero input fraction, synaptic events,
    energy per device, spikes per neuron for spiking layers).  ``totals``: J/inference per device.
    ``uncounted``: layer types the estimator counted as zero with KerasSpiking's warning.
    """

    model: str
    kind: str
    dt: float
    timesteps: int
    frame_len: int
    n_frames: int
    params: int
    connections: int
    neurons: int
    synops: float  # synaptic events per inference (spike counts), needs example data
    synops_graded: float  # nonzero input messages x fan-out per inference (N-DNS / Loihi 2)
    neuron_updates: int  # per inference
    dense_ops: int  # (connections + neurons) per inference: what "cpu" prices
    mean_firing: float  # spikes per neuron per timestep over all SpikingActivation layers
    totals: dict
    layers: list
    uncounted: list

    @property
    def seconds_of_audio(self):
        return self.frame_len / SR

    def per_second(self, value):
        """Convert a per-inference count to per second of audio (frames do not overlap)."""
        return value / self.seconds_of_audio

    def to_dict(self):
        out = dataclasses.asdict(self)
        out["seconds_of_audio_per_inference"] = self.seconds_of_audio
        return out


def _uncounted(caught):
    names = []
    for w in caught:
        msg = str(w.message)
        if WARNING_TEXT in msg:
            name = msg.split("'")[1] if "'" in msg else msg
            if name not in names:
                names.append(name)
    return names


def estimate(model, example_data=None, *, corrected=True, devices=None, dt=None, timesteps=None,
             batch_size=4, strict=None, progress=False, measured=None):
    """Cost ``model`` per inference with KerasSpiking's estimator, stock or corrected.

    ``example_data`` (frames ``(n, L, 1)``, real test audio) or ``measured`` (a
    :func:`measure_inputs` result) gives the firing rates that spiking devices need; without
    either only non-spiking devices are priced.  ``dt`` defaults to the model's ω (so ``rate·dt``
    is a spike count), or KerasSpiking's 0.001 for an ANN; ``timesteps`` to the model's ``T``
    (:func:`model_timesteps`).  ``strict`` (default: ``corrected``) raises if any layer type is
    left uncounted.
    """
    strict = corrected if strict is None else strict
    timesteps = model_timesteps(model) if timesteps is None else int(timesteps)
    cls = CorrectedEnergy if corrected else StockEnergy
    dt = model_dt(model) if dt is None else float(dt)
    dt = keras_spiking.default.dt if dt is None else dt
    if devices is None:
        devices = SNN_DEVICES if spiking_layers(model) else ANN_DEVICES
    have_rates = example_data is not None or measured is not None
    if not have_rates:
        devices = [d for d in devices if not ModelEnergy.devices[d]["spiking"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        energy = cls(model, example_data, batch_size=batch_size, progress=progress,
                     measured=measured)
    uncounted = _uncounted(caught)
    if strict and uncounted:
        raise ValueError(
            f"model {model.name!r}: layer types {uncounted} are not counted (KerasSpiking: "
            f"'{WARNING_TEXT} ...'); register a statistic with CorrectedEnergy.register_layer")

    rows = []
    for layer in model.layers:
        st = energy.layer_stats[layer]
        nan = float("nan")
        events = energy.layer_rates[layer] * dt * timesteps if have_rates else nan
        nonzero = energy.layer_nonzero[layer] if have_rates else nan
        row = {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": str(layer.output_shape),
            "params": int(layer.count_params()),
            "connections": int(st["connections"]),
            "neurons": int(st["neurons"]),
            "events_per_input": float(events),  # mean |input| * dt * T
            "nonzero_inputs": float(nonzero),  # fraction of input elements that are nonzero
            "synops": float(st["connections"] * events),
            "synops_graded": float(st["connections"] * nonzero * timesteps),
            "spikes_per_neuron": float(energy.layer_output_counts.get(layer, nan)),
        }
        for device in devices:
            syn, neu = energy.layer_energy(layer, device, timesteps_per_inference=timesteps, dt=dt)
            row[f"J {device}"] = float(syn + neu)
        rows.append(row)

    totals = {d: float(energy.total_energy(d, timesteps_per_inference=timesteps, dt=dt))
              for d in devices}
    spk = [layer for layer in spiking_layers(model) if layer in energy.layer_output_counts]
    if spk:
        n_per = [energy.layer_stats[layer]["neurons"] for layer in spk]
        mean_firing = float(sum(energy.layer_output_counts[layer] * n
                                for layer, n in zip(spk, n_per)) / max(sum(n_per), 1))
    else:
        mean_firing = float("nan")
    connections = int(sum(r["connections"] for r in rows))
    neurons = int(sum(r["neurons"] for r in rows))
    n_frames = (measured.n_frames if measured is not None else
                len(example_data) if example_data is not None else 0)
    if have_rates and energy.measured is not None:
        n_frames = energy.measured.n_frames
    return Estimate(
        model=model.name, kind=cls.kind, dt=float(dt), timesteps=int(timesteps),
        frame_len=int(model.input_shape[1]), n_frames=int(n_frames),
        params=int(model.count_params()), connections=connections, neurons=neurons,
        synops=float(sum(r["synops"] for r in rows)),
        synops_graded=float(sum(r["synops_graded"] for r in rows)),
        neuron_updates=int(neurons * timesteps), dense_ops=connections + neurons,
        mean_firing=mean_firing, totals=totals, layers=rows, uncounted=uncounted,
    )


def compare(model, example_data=None, batch_size=4, progress=False, **kwargs):
    """``{"stock": Estimate, "corrected": Estimate}`` from one rate pass (stock is never strict)."""
    measured = None
    if example_data is not None:
        measured = measure_inputs(model, example_data, batch_size=batch_size, progress=progress)
    return {"stock": estimate(model, corrected=False, strict=False, measured=measured, **kwargs),
            "corrected": estimate(model, corrected=True, measured=measured, **kwargs)}
