"""Mixed-precision training of the ANN (stage 1): a bfloat16 twin that shares nothing but weights.

Under Keras' ``mixed_bfloat16`` policy a layer keeps its variables in float32 and computes in
bfloat16 (8 significant bits: a relative rounding error of at most ``2⁻⁹``, about −54 dB), which
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
#: the name of the twin's output cast (a layer without weights, so the weight lists align)
OUTPUT_CAST = "float32_output"


def check(value, where="ann: precision"):
    """``value`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming ``where``."""
    if value not in PRECISIONS:
        raise ValueError(f"`{where}:` must be one of {list(PRECISIONS)}, got {value!r}")
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


def copy_back(trained_twin, model):
    """Copy ``trained_twin``'s weights into the float32 ``model`` it was made from."""
    model.set_weights(trained_twin.get_weights())
    return model
