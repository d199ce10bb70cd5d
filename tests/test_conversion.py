"""to_spiking on user-style models, refusals, timesteps; scale_activations keeps the function."""

import numpy as np
import pytest

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

import keras_spiking
from kspikese import models, to_spiking
from kspikese.convert import input_scale, neuron_layers, scale_activations
from kspikese.neurons import SynapticMultiply

K = tf.keras
Lyr = tf.keras.layers


def dense_model():
    inp = K.Input((20,))
    x = Lyr.Dense(32, activation="relu", name="h1")(inp)
    x = Lyr.Dense(16, name="h2")(x)
    x = Lyr.ReLU(name="h2_relu")(x)
    x = Lyr.Dense(3, name="readout")(x)
    return K.Model(inp, x, name="user_dense")


def conv_model():
    return K.Sequential([
        K.Input((64, 2)),
        Lyr.Conv1D(8, 5, padding="same", activation="relu", name="c1"),
        Lyr.MaxPooling1D(2),
        Lyr.Conv1D(8, 3, padding="same", name="c2"),
        Lyr.Activation("relu", name="c2_act"),
        Lyr.Flatten(),
        Lyr.Dense(4, name="out"),
    ], name="user_conv")


def data(shape, amplitude=1.0, seed=0):
    return (amplitude * np.random.RandomState(seed).randn(*shape)).astype(np.float32)


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_dense_model_without_time_axis():
    ann = dense_model()
    x = data((5, 20), 10.0)
    snn = to_spiking(ann, dt=1e4)
    assert snn.output_shape == ann.output_shape == (None, 3)
    assert rel_err(ann(x), snn(x)) < 1e-2
    snn.set_weights(ann.get_weights())
    names = [layer.name for layer in snn.layers]
    assert {"h1_spike", "h2_relu_spike", "readout_spike"} <= set(names)
    assert "h2_relu" not in names  # the ReLU layer itself became the neuron
    assert snn.get_layer("h1").get_config()["activation"] == "linear"
    assert snn.get_layer("readout_spike").get_config()["activation"] == "linear"
    # the input model is untouched
    assert ann.get_layer("h1").get_config()["activation"] == "relu"


def test_sequential_conv_model_and_readout_name():
    ann = conv_model()
    x = data((3, 64, 2), 10.0)
    snn = to_spiking(ann, dt=1e4, readout="out")
    assert rel_err(ann(x), snn(x)) < 1e-2
    assert [layer.name for layer in snn.layers if isinstance(
        layer, keras_spiking.SpikingActivation)] == ["c1_spike", "c2_act_spike", "out_spike"]
    # a model without a layer called "readout" converts without a spiking readout
    plain = to_spiking(ann, dt=1e4)
    assert "out_spike" not in [layer.name for layer in plain.layers]
    with pytest.raises(ValueError, match="readout='nope' is not a layer"):
        to_spiking(ann, dt=1e-3, readout="nope")


def test_dt_one_gives_integer_spike_counts_by_hand():
    inp = K.Input((3,))
    out = Lyr.Dense(3, activation="relu", use_bias=False, kernel_initializer="identity",
                    name="d")(inp)
    snn = to_spiking(K.Model(inp, out), dt=1.0, seed=0)
    x = np.array([[0.0, 2.0, 5.0]], np.float32)
    y = snn(x).numpy()
    # v0 in [0, 1): n = floor(v0 + a) is a or a + 1
    assert y[0, 0] == 0.0
    assert y[0, 1] in (2.0, 3.0) and y[0, 2] in (5.0, 6.0)
    v0 = tf.random.stateless_uniform([1, 3], seed=(0, 0)).numpy()
    np.testing.assert_array_equal(y, np.floor(v0 + x))


def test_unsupported_activations_are_refused_by_name():
    inp = K.Input((8,))
    x = Lyr.Dense(8, activation="sigmoid", name="gate")(inp)
    x = Lyr.ELU(name="elu")(x)
    x = Lyr.Dense(8, activation="tanh", name="squash")(x)
    x = Lyr.PReLU(name="prelu")(x)
    x = Lyr.Dense(2, activation="relu", name="fine")(x)
    x = Lyr.Softmax(name="probs")(x)
    with pytest.raises(ValueError) as info:
        to_spiking(K.Model(inp, x), dt=1e-3)
    msg = str(info.value)
    for part in ("'gate'", "sigmoid", "'elu'", "ELU", "'squash'", "tanh", "'probs'", "Softmax"):
        assert part in msg
    assert "'fine'" not in msg and "'prelu'" not in msg  # these convert


def test_bad_arguments():
    ann = dense_model()
    with pytest.raises(ValueError, match="dt must be a positive"):
        to_spiking(ann, dt=0)
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1"):
        to_spiking(ann, dt=1e-3, timesteps=0)
    with pytest.raises(TypeError, match="seed: expected an int"):
        to_spiking(ann, dt=1e-3, seed=1.5)
    with pytest.raises(TypeError, match="expected a tf.keras Model"):
        to_spiking("model.keras", dt=1e-3)


def test_timesteps_repeat_input_and_average_output():
    ann = dense_model()
    x = data((4, 20), 10.0)
    for t in (3, 40):  # 40 > 32: a tf.while_loop instead of unrolled steps
        snn = to_spiking(ann, dt=1e4, timesteps=t)
        assert snn(x).shape == (4, 3)
        assert rel_err(ann(x), snn(x)) < 1e-2
    assert snn.get_layer("h1_spike").unroll is False
    # with dt=1 and T steps a neuron's mean output is floor(v0 + T a)/T: resolution 1/T
    inp = K.Input((1,))
    one = K.Model(inp, Lyr.Dense(1, activation="relu", use_bias=False,
                                 kernel_initializer="ones", name="d")(inp))
    for t in (1, 4, 10):
        y = to_spiking(one, dt=1.0, timesteps=t, seed=0)(np.array([[0.3]], np.float32)).numpy()
        v0 = tf.random.stateless_uniform([1, 1], seed=(0, 0)).numpy()[0, 0]
        assert y[0, 0] == pytest.approx(np.floor(v0 + t * 0.3) / t)


def test_spiking_aware_training_gradient_flows():
    ann = dense_model()
    snn = to_spiking(ann, dt=1e-3, spiking_aware_training=True)
    x = data((4, 20), 1000.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(snn(x, training=True) ** 2)
    grads = tape.gradient(loss, snn.trainable_weights)
    assert all(g is not None for g in grads)
    assert any(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_scaling_an_snn_keeps_its_ann_function():
    ann = dense_model()
    snn = scale_activations(to_spiking(ann, dt=1e4), 10.0)
    x = data((4, 20), 10.0)
    assert rel_err(ann(x), snn(x)) < 1e-2


def test_neuron_layers_lists_what_becomes_a_neuron():
    assert neuron_layers(dense_model()) == ["h1", "h2_relu"]


# ----------------------------------------------------------------------------- scale_activations
def bn_model():
    inp = K.Input((32, 1))
    x = Lyr.Conv1D(6, 3, padding="same", name="c1")(inp)
    x = Lyr.BatchNormalization(name="bn1")(x)
    x = Lyr.ReLU(name="r1")(x)
    y = Lyr.Conv1D(6, 1, activation="relu", name="c2")(x)
    x = Lyr.Add(name="add")([x, y])
    m = Lyr.Conv1D(6, 1, activation="relu", name="mask")(x)
    x = SynapticMultiply(activation="relu", name="mul")([m, x])
    x = Lyr.Conv1DTranspose(1, 3, padding="same", name="readout")(x)
    model = K.Model(inp, x, name="bn_model")
    rng = np.random.RandomState(1)
    bn = model.get_layer("bn1")  # non-trivial statistics and affine parameters
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.randn(6), rng.randn(6), rng.uniform(0.1, 3, 6)])
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.randn(*layer.bias.shape) * 0.1)
    return model


@pytest.mark.parametrize("c", [1e3, 3.2768e4])
def test_scale_activations_preserves_the_function_with_batchnorm(c):
    ann = bn_model()
    x = data((3, 32, 1))
    scaled = scale_activations(ann, c)
    assert rel_err(ann(x), scaled(x)) < 1e-5
    assert input_scale(scaled) == pytest.approx(c)
    # hidden activations are c times larger
    probe_a = K.Model(ann.inputs, ann.get_layer("r1").output)
    probe_s = K.Model(scaled.inputs, scaled.get_layer("r1").output)
    np.testing.assert_allclose(probe_s(x), c * probe_a(x).numpy(), rtol=1e-4, atol=1e-3 * c)
    assert scaled.get_layer("bn1").epsilon == pytest.approx(ann.get_layer("bn1").epsilon * c * c)
    assert scaled.get_layer("mul").scale == pytest.approx(1.0 / c)
    # training mode (batch statistics) is preserved too
    assert rel_err(ann(x, training=True), scaled(x, training=True)) < 1e-4


@pytest.mark.parametrize("build", ["wave_u_net", "conv_tasnet"])
def test_scale_activations_on_the_models_and_save_load(tmp_path, build):
    if build == "wave_u_net":
        ann = models.build_wave_u_net(frame_len=512, depth=3, filters=4)
    else:
        ann = models.build_conv_tasnet(frame_len=512, enc_filters=16, bottleneck=8, hidden=16,
                                       blocks=2, repeats=1)
    x = data((2, 512, 1))
    scaled = scale_activations(ann, 3e4)
    assert rel_err(ann(x), scaled(x)) < 1e-5
    assert len(scaled.get_weights()) == len(ann.get_weights())
    loaded = models.load_model(models.save_model(scaled, tmp_path / "scaled.keras"))
    np.testing.assert_array_equal(loaded(x).numpy(), scaled(x).numpy())
    assert input_scale(loaded) == pytest.approx(3e4)
    # the point of it: at dt=1e-3 the plain SNN's hidden layers hardly spike, the scaled SNN's
    # do (the untrained models' outputs, ~1e-3, are below the readout's resolution either way)
    def hidden_spikes(snn):
        hidden = [layer.output for layer in snn.layers
                  if layer.name.endswith("_spike") and layer.name != "readout_spike"]
        return sum(np.count_nonzero(o) for o in K.Model(snn.inputs, hidden)(x))

    plain, alive = to_spiking(ann, dt=1e-3), to_spiking(scaled, dt=1e-3)
    assert 10 * hidden_spikes(plain) < hidden_spikes(alive)


def test_per_layer_factors_preserve_the_function():
    ann = models.build_wave_u_net(frame_len=256, depth=2, filters=4)
    x = data((2, 256, 1))
    factors = {"d1_conv": 100.0, "d1_down": 300.0, "bottleneck": 50.0, "u2_up": 10.0,
               "u1_conv": 1000.0}
    scaled = scale_activations(ann, factors)
    assert rel_err(ann(x), scaled(x)) < 1e-5
    out_a = K.Model(ann.inputs, ann.get_layer("d1_down").output)(x).numpy()
    out_s = K.Model(scaled.inputs, scaled.get_layer("d1_down").output)(x).numpy()
    np.testing.assert_allclose(out_s, 300.0 * out_a, rtol=1e-4, atol=1e-3)
    # a factor for a ReLU layer goes to the layer feeding it
    bn = bn_model()
    scaled = scale_activations(bn, {"r1": 20.0, "c2": 40.0, "mask": 5.0})
    assert rel_err(bn(data((2, 32, 1))), scaled(data((2, 32, 1)))) < 1e-5
    # layers whose outputs are added share one factor (the geometric mean of theirs)
    tasnet = models.build_conv_tasnet(frame_len=512, enc_filters=16, bottleneck=8, hidden=16,
                                      blocks=2, repeats=1)
    factors = {name: 10.0 * (k + 1) for k, name in enumerate(neuron_layers(tasnet))}
    scaled = scale_activations(tasnet, factors)
    xt = data((2, 512, 1))
    assert rel_err(tasnet(xt), scaled(xt)) < 1e-5
    res = K.Model(scaled.inputs, scaled.get_layer("b1_res").output)(xt).numpy()
    res_a = K.Model(tasnet.inputs, tasnet.get_layer("b1_res").output)(xt).numpy()
    shared = [factors[n] for n in ("bottleneck_relu", "b1_res", "b1_skip", "b2_res", "b2_skip")]
    np.testing.assert_allclose(res, np.exp(np.mean(np.log(shared))) * res_a, rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(ValueError, match="no layer named \\['nope'\\]"):
        scale_activations(ann, {"nope": 2.0})


def test_scale_activations_refusals():
    inp = K.Input((4,))
    a = Lyr.Dense(4, activation="relu")(inp)
    with pytest.raises(ValueError, match="Multiply would square the scale"):
        scale_activations(K.Model(inp, Lyr.Multiply(name="m")([a, a])), 10.0)
    with pytest.raises(ValueError, match="'sig'.*not positively homogeneous"):
        scale_activations(K.Model(inp, Lyr.Activation("sigmoid", name="sig")(a)), 10.0)
    with pytest.raises(ValueError, match="c must be a positive number"):
        scale_activations(K.Model(inp, a), -1.0)
    inp = K.Input((4, 2))
    cat = Lyr.Concatenate(name="cat")([Lyr.Dense(2, name="p")(inp), Lyr.Dense(2, name="q")(inp)])
    out = Lyr.Add(name="add")([cat, Lyr.Dense(4, name="r")(inp)])
    with pytest.raises(ValueError, match="'add'.*different scales"):
        scale_activations(K.Model(inp, out), {"p": 3.0})
