"""Mixed-precision training of the ANN (stage 1): a bfloat16 twin that shares nothing but weights.

Under Keras' ``mixed_bfloat16`` policy a layer keeps its variables in float32 and computes in
bfloat16 (8 significant bits: a relative rounding error of at most ``2⁻⁸``, about −48 dB), which
CPUs with native bfloat16 arithmetic (AVX512_BF16, AMX) run about twice as fast as float32.
:func:`twin` clones a float32 model layer by layer under that policy, copies its weights and
casts the output back to float32 (so the loss and the metrics see float32, as Keras' mixed-
precision guide advises); training the twin and copying its weights back with :func:`copy_back`
leaves the caller's float32 model as trained, ready for conversion.  Only the ANN trains this
way: a spiking neuron's membrane voltage ``v += a·dt`` needs float32's 24 bits (bfloat16 would
lose a one-step spike count's fraction), so ``finetune:`` has no ``precision``.
"""

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

#: the values of a stage's ``precision:``: float32 throughout, or Keras' mixed bfloat16 policy
PRECISIONS = ("float32", "mixed_bfloat16")
#: ``precision: auto`` becomes ``mixed_bfloat16`` where the arithmetic is native, else float32
AUTO = "auto"
#: /proc/cpuinfo flags of x86 CPUs that compute in bfloat16 natively
CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: the name of the twin's output cast (a layer without weights, so the weight lists align)
OUTPUT_CAST = "float32_output"


def check(value, where="ann: precision"):
    """``value`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming ``where``."""
    if value not in PRECISIONS:
        raise ValueError(f"`{where}:` must be one of {list(PRECISIONS)}, got {value!r}")
    return value


def native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this machine computes in bfloat16 natively: a visible GPU of compute capability
    8.0 or more, or a CPU whose ``cpuinfo`` flags name one of :data:`CPU_FLAGS`."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (8, 0):
            return True
    try:
        with open(cpuinfo) as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return any(flag in flags for flag in CPU_FLAGS)


def resolve(value, where="ann: precision", native=None):
    """The precision ``value`` names: :data:`AUTO` becomes ``mixed_bfloat16`` when ``native``
    (default: :func:`native_bfloat16`) and ``float32`` otherwise; the others are checked."""
    if value == AUTO:
        return PRECISIONS[1] if (native_bfloat16() if native is None else native) else PRECISIONS[0]
    if value not in PRECISIONS:
        raise ValueError(f"`{where}:` must be one of {[*PRECISIONS, AUTO]}, got {value!r}")
    return value


def twin(model, precision="mixed_bfloat16"):
    """A copy of ``model`` whose layers compute in ``precision``, with ``model``'s weights.

    Every layer is rebuilt from its config with ``dtype=precision`` (its variables stay
    float32), the graph is the same, and a weightless ``Activation("linear", dtype="float32")``
    named :data:`OUTPUT_CAST` casts each output back to float32.  ``twin(m).get_weights()`` lists
    the same arrays as ``m.get_weights()``, in the same order.
    """
    check(precision, "precision")

    def clone(layer):
        if isinstance(layer, tf.keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        return layer.__class__.from_config({**layer.get_config(), "dtype": precision})

    inner = tf.keras.models.clone_model(model, clone_function=clone)
    outputs = [tf.keras.layers.Activation("linear", dtype="float32",
                                          name=OUTPUT_CAST if len(inner.outputs) == 1
                                          else f"{OUTPUT_CAST}_{i}")(out)
               for i, out in enumerate(inner.outputs)]
    out = tf.keras.Model(inner.inputs, outputs[0] if len(outputs) == 1 else outputs,
                         name=f"{model.name}_{precision}")
    out.set_weights(model.get_weights())
    return out


def training_model(model, precision="float32"):
    """The model a training stage fits for ``precision``: ``model`` itself in ``float32``, else
    its :func:`twin` (whose weights :func:`copy_back` returns to ``model``)."""
    return model if check(precision, "precision") == "float32" else twin(model, precision)


def copy_back(trained_twin, model):
    """Copy ``trained_twin``'s weights into the float32 ``model`` it was made from."""
    model.set_weights(trained_twin.get_weights())
    return model
