"""Spiking building blocks: the IF-neuron wrapper, synaptic multiplication, spike addition.

Every spiking neuron in kspikese is a ``keras_spiking.SpikingActivation`` (paper Algorithm 1)::

    v <- v + f(x)·dt;   n <- floor(v);   v <- v - n;   y <- n / dt

with ``f = relu`` (integrate-and-fire, no refractory period) or ``f = identity`` (the linear
readout neuron).  ``y`` is a multiple of ``1/dt``: a spike count per window ω = dt, scaled so that
its mean equals ``f(x)``.

``SpikingActivation`` wants a time axis: ``(batch, time, *shape)``.  The models here have none, so
the converter (:func:`kspikese.to_spiking`) adds one around every neuron: with ``T`` timesteps the
whole network runs on a batch of ``B·T`` (time folded into the batch axis, example-major) and each
neuron sees ``(B, T, *shape)``:

* ``T = 1`` and a fully known shape: two Keras ``Reshape`` layers (free: metadata only);
* otherwise :class:`TimeSplit` / :class:`TimeMerge`.  When a non-batch dimension is unknown
  (``frame_len=None``) they fold it into the batch axis, ``(B·T, P, C) -> (B·P, T, C)``, so the
  neuron's state shape ``(C,)`` is known.  The initial voltages (``stateless_uniform`` in row-major
  order over ``(B, P, C)``) are then the same numbers as on the fixed-shape path, so both paths give
  identical outputs.

The input is repeated over time by :class:`RepeatTime` and the output averaged by
:class:`MeanTime` (only when ``T > 1``).
"""

import tensorflow as tf

import keras_spiking

_register = tf.keras.utils.register_keras_serializable("kspikese")



def activation_name(activation):
    """The Keras name of an activation function (``None`` counts as ``"linear"``).

    A :class:`Rectifier` is named by its parameters, e.g. ``"rectifier(max_value=6)"``.
    """
    if activation is None:
        return "linear"
    if activation is tf.nn.relu:
        return "relu"
    if isinstance(activation, Rectifier):
        return repr(activation)
    try:
        name = tf.keras.activations.serialize(activation)
    except (ValueError, TypeError):
        return getattr(activation, "__name__", repr(activation))
    if isinstance(name, dict):  # a custom activation
        return name.get("config", name.get("class_name", repr(activation)))
    return str(name)


@_register
class Rectifier:
    """Keras' rectifier with its parameters as an activation object (serialisable, so a
    ``SpikingActivation`` can use it as its rate function):

        f(x) = m            for x >= m
        f(x) = x            for θ <= x < m
        f(x) = α·(x - θ)    for x < θ

    with ``m = max_value`` (``None``: no clip), ``α = negative_slope`` and ``θ = threshold``:
    exactly ``tf.keras.layers.ReLU(max_value, negative_slope, threshold)``.  ``Rectifier()`` is
    the ReLU, ``Rectifier(max_value=6)`` is ReLU6, ``Rectifier(negative_slope=0.3)`` is
    ``LeakyReLU(alpha=0.3)``.

    Parameters
    ----------
    max_value : float or None
        Upper clip ``m`` (must be > 0).
    negative_slope : float
        Slope ``α`` below the threshold (>= 0).
    threshold : float
        ``θ``.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0):
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)
        if self.max_value is not None and not self.max_value > 0:
            raise ValueError(f"Rectifier: max_value must be > 0, got {max_value!r}")
        if not self.negative_slope >= 0:
            raise ValueError(f"Rectifier: negative_slope must be >= 0, got {negative_slope!r}")

    def __call__(self, x):
        return tf.keras.activations.relu(x, alpha=self.negative_slope, max_value=self.max_value,
                                         threshold=self.threshold)

    @property
    def plain(self):
        """Whether this is the plain ReLU ``max(x, 0)``."""
        return self.max_value is None and self.negative_slope == 0 and self.threshold == 0

    def scaled(self, c):
        """The rectifier ``g`` with ``g(c·x) = c·f(x)``: ``m·c``, ``θ·c``, ``α`` unchanged."""
        return Rectifier(None if self.max_value is None else self.max_value * c,
                         self.negative_slope, self.threshold * c)

    def get_config(self):
        return {"max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Rectifier) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple(self.get_config().values()))

    def __repr__(self):
        parts = [f"{k}={v:g}" for k, v in self.get_config().items()
                 if v is not None and (k == "max_value" or v != 0)]
        return f"rectifier({', '.join(parts)})"


def spiking_activation(activation, dt, seed, name, spiking_aware_training=True, timesteps=1):
    """A ``keras_spiking.SpikingActivation`` as kspikese uses it.

    ``unroll=True`` (for ``timesteps <= 32``): with one timestep the ``tf.while_loop`` that
    ``tf.keras.layers.RNN`` builds otherwise costs a large part of the SNN's inference time (see
    ``kspikese/bench/models.py``); unrolled, the neuron is a handful of element-wise ops.  Call it
    with ``initial_state=[InitialVoltage(seed)(x)]`` to avoid the per-call random draw.
    """
    return keras_spiking.SpikingActivation(
        activation,
        dt=float(dt),
        seed=int(seed),
        spiking_aware_training=bool(spiking_aware_training),
        unroll=unrolled(timesteps),
        name=name,
    )


def unrolled(timesteps):
    """Whether a neuron over ``timesteps`` steps is unrolled (short sequences only)."""
    return int(timesteps) <= 32


@_register
class InitialVoltage(tf.keras.layers.Layer):
    """The initial membrane voltages of one ``SpikingActivation``, passed as its ``initial_state``.

    Called on the neuron's input ``(B, T, *size)``; returns ``U[0, 1)`` voltages of shape
    ``(1, *size)`` from ``stateless_uniform(seed=(seed, seed))``, which broadcast over the batch:
    every example starts from the same voltages, so its output does not depend on its position
    in the batch.  The shape and seed are constants, so TensorFlow computes the voltages once when
    it optimises the graph, instead of KerasSpiking's default of drawing ``B·prod(size)`` random
    numbers on every call (that draw was two thirds of a neuron's time: see
    ``kspikese/bench/models.py``).

    With ``fold=True`` (a neuron on a folded, unknown-length input ``(B·P, T, C)``; see
    :class:`TimeSplit`) it is called on ``[x, like]`` and returns ``(B·P, C)`` voltages: the same
    ``(P, C)`` draw for every example, equal to the fixed-length path's values.

    ``value = v`` (a number in ``[0, 1)``) makes every initial voltage ``v`` instead of a random
    draw: with ``v = 0.5`` a one-step neuron rounds, ``n = floor(0.5 + f(x)·dt)`` (the QCFS
    initialisation of Bu et al. 2022), where ``U[0, 1)`` gives ``floor(f(x)·dt)`` or one more with
    probability ``frac(f(x)·dt)``.
    """

    def __init__(self, seed, timesteps=1, fold=False, broadcast=False, value=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.timesteps = int(timesteps)
        self.fold = bool(fold)
        self.broadcast = bool(broadcast)
        self.value = check_v0(value)

    def _voltages(self, shape, dtype):
        if self.value is None:
            return tf.random.stateless_uniform(shape, seed=(self.seed, self.seed), dtype=dtype)
        return tf.fill(shape, tf.constant(self.value, dtype=dtype))

    def call(self, inputs):
        if not self.fold:
            size = inputs.shape[2:].as_list()
            v0 = self._voltages([1] + size, inputs.dtype)
            if self.broadcast:  # a tf.while_loop (unroll=False) wants the batch dimension
                v0 = tf.broadcast_to(v0, tf.concat([tf.shape(inputs)[:1], size], 0))
            return v0
        x, like = inputs
        batch = tf.shape(like)[0] // self.timesteps
        positions = tf.shape(x)[0] // batch
        v0 = self._voltages(tf.stack([positions, x.shape[-1]]), x.dtype)
        return tf.tile(v0, [batch, 1])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "timesteps": self.timesteps,
                "fold": self.fold, "broadcast": self.broadcast, "value": self.value}


#: the ``v0`` setting of the random initial voltages (KerasSpiking's ``U[0, 1)``)
RANDOM_V0 = "random"


def check_v0(value):
    """An initial-voltage setting as :class:`InitialVoltage` keeps it.

    Parameters
    ----------
    value : None, "random" or float
        ``None`` / ``"random"``: seeded ``U[0, 1)`` draws; a number ``v`` with ``0 <= v < 1``:
        every voltage starts at ``v`` (``0.5``: rounding).

    Returns
    -------
    None or float
        ``None`` for random, else ``float(v)``.

    Raises
    ------
    ValueError
        Naming ``v0`` and the allowed values.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == RANDOM_V0):
        return None
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not 0.0 <= number < 1.0:
        raise ValueError(f"v0: expected 'random' or a number in [0, 1) (0.5 rounds), "
                         f"got {value!r}")
    return number


@_register
class SynapticMultiply(tf.keras.layers.Layer):
    """Point-wise product of two feature maps as a synaptic layer (paper §3.2.3).

    Called on ``[events, weights]`` (same shape); returns ``activation(scale · events · weights)``.

    In the SNN the first input, ``events`` (the Conv-TasNet mask's spikes), passes through one
    synapse per element whose weight is the second input (the encoder's spike count): the paper's
    "custom convolutional layer with one kernel whose weights are the encoder's spike counts".
    In ANN mode it is exactly element-wise multiplication.

    Cost (for an energy estimator): ``connections = number of output elements`` (one synapse per
    element, fed by the event input, index :attr:`event_input`), ``neurons`` = number of output
    elements if ``activation`` is ReLU (the neuron that re-emits the product as spikes), else 0.

    ``scale`` keeps the product in the units of its inputs: with both inputs ``c`` times larger
    (:func:`kspikese.convert.scale_activations`) the product is ``c²`` times larger, so
    ``scale`` is divided by ``c``.  It is part of the config, so it survives save/load.
    """

    event_input = 0

    def __init__(self, activation=None, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.activation = tf.keras.activations.get(activation)
        self.scale = float(scale)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"{self.name}: SynapticMultiply takes [events, weights], got {inputs!r}"
            )
        events, weights = inputs
        out = events * weights
        if self.scale != 1.0:
            out = out * tf.cast(self.scale, out.dtype)
        return self.activation(out)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def connections(self, output_shape):
        """Synapses per example: one per output element (``output_shape`` without batch)."""
        n = 1
        for d in output_shape:
            if d is None:
                raise ValueError(f"{self.name}: the output shape {output_shape} is not fully known")
            n *= int(d)
        return n

    def get_config(self):
        cfg = super().get_config()
        cfg.update(activation=tf.keras.activations.serialize(self.activation), scale=self.scale)
        return cfg


def spike_add(tensors, name=None):
    """Spike addition (paper §3.2.3): the sum of spike counts, a plain Keras ``Add``.

    Two trains ``n1/dt`` and ``n2/dt`` sum to ``(n1 + n2)/dt``: merging the trains onto the same
    targets is exact, so no neuron is needed and the result is still a spike count.
    """
    return tf.keras.layers.Add(name=name)(list(tensors))


@_register
class RepeatTime(tf.keras.layers.Layer):
    """``(B, *S) -> (B·T, *S)``: each example repeated ``T`` times (the SNN's input over time)."""

    def __init__(self, timesteps, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = int(timesteps)

    def call(self, x):
        return tf.repeat(x, self.timesteps, axis=0)

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps}


@_register
class MeanTime(tf.keras.layers.Layer):
    """``(B·T, *S) -> (B, *S)``: the output averaged over the ``T`` timesteps (a firing rate)."""

    def __init__(self, timesteps, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = int(timesteps)

    def call(self, x):
        shape = tf.shape(x)
        split = tf.reshape(x, tf.concat([[-1, self.timesteps], shape[1:]], 0))
        return tf.reduce_mean(split, axis=1)

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps}


@_register
class TimeSplit(tf.keras.layers.Layer):
    """Give a neuron its time axis: ``(B·T, *S) -> (B, T, *S)``.

    With ``fold=True`` (some dimension of ``S`` unknown) the spatial dimensions go into the batch
    axis instead: ``(B·T, *D, C) -> (B·P, T, C)`` with ``P = prod(D)``.
    """

    def __init__(self, timesteps, fold=False, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = int(timesteps)
        self.fold = bool(fold)

    def call(self, x):
        t = self.timesteps
        shape = tf.shape(x)
        if not self.fold:
            return tf.reshape(x, tf.concat([[-1, t], shape[1:]], 0))
        channels = x.shape[-1]
        x = tf.reshape(x, [-1, t, tf.reduce_prod(shape[1:-1]), channels])  # (B, T, P, C)
        if t > 1:
            x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, [-1, t, channels])  # (B·P, T, C)

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps, "fold": self.fold}


@_register
class TimeMerge(tf.keras.layers.Layer):
    """Inverse of :class:`TimeSplit`: back to ``(B·T, *S)``.

    With ``fold=True`` it is called on ``[spikes, like]`` where ``like`` is the tensor that went
    into the matching ``TimeSplit`` (it supplies the unknown dimensions).
    """

    def __init__(self, timesteps, fold=False, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = int(timesteps)
        self.fold = bool(fold)

    def call(self, inputs):
        t = self.timesteps
        if not self.fold:
            shape = tf.shape(inputs)
            return tf.reshape(inputs, tf.concat([[-1], shape[2:]], 0))
        x, like = inputs
        like_shape = tf.shape(like)
        channels = x.shape[-1]
        x = tf.reshape(x, [like_shape[0] // t, -1, t, channels])  # (B, P, T, C)
        if t > 1:
            x = tf.transpose(x, [0, 2, 1, 3])
        return tf.reshape(x, like_shape)

    def compute_output_shape(self, input_shape):
        if self.fold:
            return tf.TensorShape(input_shape[1])
        shape = tf.TensorShape(input_shape).as_list()
        batch = None if shape[0] is None else shape[0] * shape[1]
        return tf.TensorShape([batch] + shape[2:])

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps, "fold": self.fold}


def custom_objects():
    """Every layer class a kspikese model may contain, for ``tf.keras.models.load_model``."""
    objects = {
        "SynapticMultiply": SynapticMultiply,
        "InitialVoltage": InitialVoltage,
        "RepeatTime": RepeatTime,
        "MeanTime": MeanTime,
        "TimeSplit": TimeSplit,
        "TimeMerge": TimeMerge,
        "Rectifier": Rectifier,
        "SpikingActivation": keras_spiking.SpikingActivation,
        "SpikingActivationCell": keras_spiking.SpikingActivationCell,
        "Lowpass": keras_spiking.Lowpass,
        "Alpha": keras_spiking.Alpha,
    }
    for name in list(objects):
        if not name.startswith(("Spiking", "Lowpass", "Alpha")):
            objects[f"kspikese>{name}"] = objects[name]
    return objects


CUSTOM_OBJECTS = custom_objects
