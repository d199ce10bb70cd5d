"""Clipped, leaky and parametric rectifiers: their neurons' rate equations and their scaling.

One timestep of a neuron with rate ``f``: ``out = floor(v0 + dt·f(x)) / dt`` (``v0`` the initial
voltage in [0, 1), soft reset), so dt -> ∞ gives ``f(x)`` and a finite dt gives multiples of
``1/dt``.
"""

import numpy as np
import pytest

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

import keras_spiking
from kspikese import to_spiking
from kspikese.convert import neuron_of, scale_activations
from kspikese.neurons import Rectifier

K = tf.keras
Lyr = tf.keras.layers
X = np.array([[-3.0, -0.7, 0.0, 0.4, 2.5, 7.0, 9.3]], np.float32)


def identity_then(activation_layer=None, activation=None, n=7):
    """x -> Dense(identity, no bias, activation) [-> activation_layer]: the neuron sees x."""
    inp = K.Input((n,))
    y = Lyr.Dense(n, use_bias=False, kernel_initializer="identity", activation=activation,
                  name="d")(inp)
    if activation_layer is not None:
        y = activation_layer(y)
    return K.Model(inp, y)


def prelu(alphas):
    layer = Lyr.PReLU(name="act")
    model = identity_then(layer)
    layer.set_weights([np.asarray(alphas, np.float32)])
    return model


CASES = {
    "ReLU(max_value=6)": (lambda: identity_then(Lyr.ReLU(max_value=6.0, name="act")),
                          lambda x: np.clip(x, 0, 6)),
    "ReLU(max_value=2.5)": (lambda: identity_then(Lyr.ReLU(max_value=2.5, name="act")),
                            lambda x: np.clip(x, 0, 2.5)),
    "Activation('relu6')": (lambda: identity_then(Lyr.Activation("relu6", name="act")),
                            lambda x: np.clip(x, 0, 6)),
    "Dense(activation=tf.nn.relu6)": (lambda: identity_then(activation=tf.nn.relu6),
                                      lambda x: np.clip(x, 0, 6)),
    "LeakyReLU(0.1)": (lambda: identity_then(Lyr.LeakyReLU(0.1, name="act")),
                       lambda x: np.where(x < 0, 0.1 * x, x)),
    "PReLU": (lambda: prelu([0.5, 0.25, 0.1, 0.2, 0.3, 0.4, 0.6]),
              lambda x: np.where(x < 0, np.array([0.5, 0.25, 0.1, 0.2, 0.3, 0.4, 0.6]) * x, x)),
}


def v0_of(snn, n=7):
    """The initial voltages of the SNN's only neuron (its seed from the layer)."""
    (neuron,) = [layer for layer in snn.layers
                 if isinstance(layer, keras_spiking.SpikingActivation)]
    return tf.random.stateless_uniform([1, n], seed=(neuron.seed, neuron.seed)).numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_large_dt_reproduces_the_ann(case):
    build, f = CASES[case]
    ann = build()
    np.testing.assert_allclose(ann(X).numpy(), f(X), rtol=1e-6, atol=1e-6)
    x = np.random.RandomState(0).randn(16, 7).astype(np.float32) * 5
    snn = to_spiking(ann, dt=1e9, seed=4)
    err = np.linalg.norm(snn(x).numpy() - ann(x).numpy()) / np.linalg.norm(ann(x).numpy())
    assert err < 1e-6


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_finite_dt_quantises_to_multiples_of_one_over_dt(case, dt):
    build, f = CASES[case]
    snn = to_spiking(build(), dt=dt, seed=2)
    y = snn(X).numpy()
    expected = np.floor(v0_of(snn) + dt * f(X)) / dt
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y * dt, np.round(y * dt), atol=1e-6)


def test_hand_computed_signed_spikes_and_clip():
    """dt = 1, v0 known: a leaky neuron at x = -3 (f = -0.3) emits floor(v0 - 0.3) spikes, i.e.
    -1 if v0 < 0.3 else 0; a ReLU6 neuron at x = 9.3 emits floor(v0 + 6) = 6 spikes."""
    leaky = to_spiking(identity_then(Lyr.LeakyReLU(0.1, name="act")), dt=1.0, seed=2)
    v0 = v0_of(leaky)
    y = leaky(X).numpy()
    assert y[0, 0] == (-1.0 if v0[0, 0] < 0.3 else 0.0)
    assert y[0, 0] <= 0 and y[0, 1] in (-1.0, 0.0)
    relu6 = to_spiking(identity_then(Lyr.ReLU(max_value=6.0, name="act")), dt=1.0, seed=2)
    y6 = relu6(X).numpy()
    assert y6[0, 5] == 6.0 and y6[0, 6] == 6.0  # x = 7 and 9.3 clip at 6: floor(v0 + 6) = 6
    assert np.all(y6[0, :3] == 0.0)  # x <= 0: floor(v0 + 0) = 0


def test_neuron_kinds():
    assert neuron_of(Lyr.ReLU(max_value=6.0)).kind == "clipped IF"
    assert neuron_of(Lyr.ReLU(max_value=6.0)).activation == Rectifier(max_value=6.0)
    assert neuron_of(Lyr.Activation("relu6")).kind == "clipped IF"
    assert neuron_of(Lyr.LeakyReLU(0.2)).kind == "signed"
    leaky = neuron_of(Lyr.LeakyReLU(0.2)).activation  # alpha is stored as float32
    assert isinstance(leaky, Rectifier) and leaky.negative_slope == pytest.approx(0.2)
    assert leaky.max_value is None and leaky.threshold == 0
    prelu_neuron = neuron_of(Lyr.PReLU())
    assert (prelu_neuron.kind, prelu_neuron.mode, prelu_neuron.activation) == (
        "signed", "current", "linear")
    assert neuron_of(Lyr.Dense(3, activation=tf.nn.relu6)).mode == "linearise"


# ------------------------------------------------------------------------------ scaling
@pytest.mark.parametrize("case", sorted(CASES))
def test_scaling_preserves_the_function(case):
    build, _ = CASES[case]
    ann = build()
    x = np.random.RandomState(1).randn(8, 7).astype(np.float32) * 5
    scaled = scale_activations(ann, 10.0)
    np.testing.assert_allclose(scaled(x).numpy(), ann(x).numpy(), rtol=1e-5, atol=1e-5)


def test_scaling_scales_the_clip_and_keeps_the_slopes():
    relu = scale_activations(identity_then(Lyr.ReLU(max_value=6.0, name="act")), 10.0)
    assert float(relu.get_layer("act").max_value) == pytest.approx(60.0)
    act = scale_activations(identity_then(Lyr.Activation("relu6", name="act")), 10.0)
    assert act.get_layer("act").activation == Rectifier(max_value=60.0)
    dense = scale_activations(identity_then(activation="relu6"), 4.0)
    assert dense.get_layer("d").activation == Rectifier(max_value=24.0)
    leaky = scale_activations(identity_then(Lyr.LeakyReLU(0.1, name="act")), 10.0)
    assert float(leaky.get_layer("act").alpha) == pytest.approx(0.1)
    model = prelu([0.5] * 7)
    np.testing.assert_array_equal(scale_activations(model, 10.0).get_layer("act").get_weights(),
                                  model.get_layer("act").get_weights())
    # per layer: a factor asked of the activation layer goes to the Dense feeding it
    per_layer = scale_activations(identity_then(Lyr.ReLU(max_value=6.0, name="act")),
                                  {"act": 3.0})
    assert float(per_layer.get_layer("act").max_value) == pytest.approx(18.0)
    np.testing.assert_allclose(per_layer(X).numpy(), np.clip(X, 0, 6), rtol=1e-6)


def test_a_clip_after_per_channel_scales_is_refused():
    inp = K.Input((4,))
    cat = Lyr.Concatenate(name="cat")([Lyr.Dense(2, name="p")(inp), Lyr.Dense(2, name="q")(inp)])
    out = Lyr.ReLU(max_value=6.0, name="clip")(cat)
    model = K.Model(inp, Lyr.Dense(1, name="readout")(out))
    with pytest.raises(ValueError, match="'clip'.*one scale for all its input channels"):
        scale_activations(model, {"p": 2.0, "q": 3.0})
    leaky = K.Model(inp, Lyr.Dense(1, name="readout")(Lyr.LeakyReLU(0.1, name="lk")(cat)))
    scaled = scale_activations(leaky, {"p": 2.0, "q": 3.0})  # homogeneous: any scales
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    np.testing.assert_allclose(scaled(x).numpy(), leaky(x).numpy(), rtol=1e-5, atol=1e-6)


def test_summed_linear_projections_get_one_factor_in_per_layer_mode():
    """MobileNetV2's pattern: relu6 -> linear projection -> Add with the previous projection.
    No factor is asked of the projections, yet the sum needs one scale."""
    inp = K.Input((4,))
    p1 = Lyr.Dense(4, name="p1")(Lyr.ReLU(max_value=6.0, name="r1")(Lyr.Dense(4, name="e1")(inp)))
    r2 = Lyr.ReLU(max_value=6.0, name="r2")(Lyr.Dense(4, name="e2")(p1))
    out = Lyr.Add(name="add")([p1, Lyr.Dense(4, name="p2")(r2)])
    model = K.Model(inp, Lyr.Dense(2, name="readout")(out))
    scaled = scale_activations(model, {"r1": 5.0, "r2": 50.0})
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    np.testing.assert_allclose(scaled(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    assert float(scaled.get_layer("r2").max_value) == pytest.approx(300.0)


def test_per_layer_factor_of_an_activation_after_a_sum_goes_to_its_summands():
    """ResNet's pattern: BN + BN -> Add -> Activation('relu')."""
    inp = K.Input((4,))
    a = Lyr.BatchNormalization(name="bn_a")(Lyr.Dense(4, name="da")(inp))
    b = Lyr.BatchNormalization(name="bn_b")(Lyr.Dense(4, name="db")(inp))
    out = Lyr.Activation("relu", name="out")(Lyr.Add(name="add")([a, b]))
    model = K.Model(inp, Lyr.Dense(2, name="readout")(out))
    scaled = scale_activations(model, {"out": 7.0})
    x = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    np.testing.assert_allclose(scaled(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    hidden = K.Model(scaled.inputs, scaled.get_layer("out").output)(x).numpy()
    np.testing.assert_allclose(hidden, 7.0 * K.Model(model.inputs, out)(x).numpy(), rtol=1e-4,
                               atol=1e-5)


def test_batch_norm_after_a_channel_concatenate_takes_per_channel_scales():
    """DenseNet's pattern: Concatenate of differently scaled inputs -> BN -> ReLU."""
    inp = K.Input((6, 3))
    p = Lyr.ReLU(name="rp")(Lyr.Dense(2, name="p")(inp))
    q = Lyr.ReLU(name="rq")(Lyr.Dense(3, name="q")(inp))
    bn = Lyr.BatchNormalization(name="bn")
    h = Lyr.ReLU(name="rh")(bn(Lyr.Concatenate(name="cat")([p, q])))
    model = K.Model(inp, Lyr.Dense(1, name="readout")(h))
    rng = np.random.RandomState(0)
    bn.set_weights([rng.rand(5) + 0.5, rng.randn(5), rng.randn(5), rng.rand(5) + 0.1])
    scaled = scale_activations(model, {"rp": 4.0, "rq": 300.0, "rh": 20.0})
    x = rng.randn(4, 6, 3).astype(np.float32)
    np.testing.assert_allclose(scaled(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        K.Model(scaled.inputs, scaled.get_layer("rh").output)(x).numpy(),
        20.0 * K.Model(model.inputs, h)(x).numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ applications
@pytest.mark.slow
def test_mobilenet_v2_converts_and_matches_at_large_dt():
    """A fresh MobileNetV2's activations are ~1e-11, below 1/dt: data-based per-layer scaling
    (relu6 clips scaled with them) brings each layer's 99.9th percentile to 1e6 spikes."""
    from kspikese.convert import convert

    tf.keras.utils.set_random_seed(0)
    ann = K.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10,
                                     classifier_activation=None)
    assert any(isinstance(layer, Lyr.ReLU) and layer.max_value is not None
               for layer in ann.layers)
    x = np.random.RandomState(0).rand(4, 32, 32, 3).astype(np.float32)
    snn = convert(ann, {"dt": 1e9, "activation_scale": "data", "target_spikes": 1e6}, 0,
                  calibration=x)
    a, b = ann(x).numpy(), snn(x).numpy()
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-3
