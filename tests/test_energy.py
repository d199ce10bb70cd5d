"""Energy estimates: rates, devices, both counting rules, whole models, any input shape.

Hand counts of each layer type are in test_energy_layers.py."""

import warnings

import numpy as np
import pytest

import kspikese  # noqa: F401
import keras_spiking
import tensorflow as tf
from kspikese import energy

L = tf.keras.layers
LOIHI_SYN = keras_spiking.ModelEnergy.devices["loihi"]["energy_per_synop"]
LOIHI_NEURON = keras_spiking.ModelEnergy.devices["loihi"]["energy_per_neuron"]


def single(layer_fn, shape):
    """A model applying one layer to an input of ``shape``; returns (model, layer)."""
    inp = tf.keras.Input(shape)
    layer = layer_fn()
    return tf.keras.Model(inp, layer(inp)), layer


def stats(model, layer, stock=False):
    """Counts of ``layer`` summed over its applications in ``model`` (corrected or stock)."""
    apps = energy.stock_counts(model)[0] if stock else energy.count_model(model)
    total = energy.Counts()
    for lay, _, counts in apps:
        if lay is layer:
            total = total + counts
    return total


# ------------------------------------------------------------------------------ hand counts
@pytest.mark.parametrize(
    "length, c_in, c_out, k, s, padding, expected",
    [
        # Wave-U-Net up-sampling: k=2, s=2: 50 inputs x 6 ch x 2 taps x 4 out = 2400
        (50, 6, 4, 2, 2, "same", 50 * 6 * 2 * 4),
        # Wave-U-Net k=5, stride 1, same: equals Conv1D's L_out*k*C_in*C_out
        (40, 3, 5, 5, 1, "same", 40 * 5 * 3 * 5),
        # Conv-TasNet decoder: k=16, s=8, 256 -> 1 channel on 10 positions
        (10, 256, 1, 16, 8, "same", 10 * 256 * 16 * 1),
        (10, 4, 2, 16, 8, "valid", 10 * 4 * 16 * 2),
    ],
)
def test_conv1d_transpose_connections(length, c_in, c_out, k, s, padding, expected):
    model, layer = single(lambda: L.Conv1DTranspose(c_out, k, strides=s, padding=padding),
                          (length, c_in))
    st = stats(model, layer)
    assert st.connections == expected
    assert st.neurons == 0


def test_stock_keras_spiking_miscounts_conv1d_transpose():
    # the bug being corrected: L_out * C_out * k * C_out instead of L_in * C_in * k * C_out
    model, layer = single(lambda: L.Conv1DTranspose(1, 16, strides=8, padding="same"), (10, 256))
    assert stats(model, layer, stock=True).connections == 80 * 1 * 16 * 1
    assert stats(model, layer).connections == 10 * 256 * 16


def test_conv1d_transpose_relu_activation_counts_neurons():
    model, layer = single(lambda: L.Conv1DTranspose(3, 2, strides=2, activation="relu"), (7, 2))
    assert stats(model, layer) == energy.Counts(connections=7 * 2 * 2 * 3, neurons=14 * 3,
                                                spiking=False)


def test_grouped_and_strided_conv1d_keep_keras_spiking_formula():
    # grouped: 20 outputs x 8 filters x k=3 x (4 in / 2 groups) = 960
    model, layer = single(lambda: L.Conv1D(8, 3, padding="same", groups=2), (20, 4))
    assert stats(model, layer).connections == 20 * 8 * 3 * 2
    # strided (Wave-U-Net down-sampling): 10 outputs x 5 filters x k=2 x 3 in = 300
    model, layer = single(lambda: L.Conv1D(5, 2, strides=2), (20, 3))
    assert stats(model, layer).connections == 10 * 5 * 2 * 3


def test_depthwise_conv1d():
    # 18 outputs (valid, k=3) x 4 channels x multiplier 2 x 3 taps
    model, layer = single(lambda: L.DepthwiseConv1D(3, depth_multiplier=2), (20, 4))
    assert stats(model, layer).connections == 18 * 4 * 2 * 3
    assert stats(model, layer, stock=True).connections == 0
    assert energy.stock_counts(model)[1] == ["DepthwiseConv1D"]


def test_batch_normalization_folded_after_linear_conv_else_per_element():
    inp = tf.keras.Input((12, 3))
    conv = L.Conv1D(4, 3, padding="same")
    bn_folded = L.BatchNormalization()
    relu = L.ReLU()
    bn_after_relu = L.BatchNormalization()
    conv_relu = L.Conv1D(4, 1, activation="relu")
    bn_after_conv_relu = L.BatchNormalization()
    h = relu(bn_folded(conv(inp)))
    out = bn_after_conv_relu(conv_relu(bn_after_relu(h)))
    model = tf.keras.Model(inp, out)
    assert stats(model, bn_folded).connections == 0
    assert stats(model, bn_after_relu).connections == 12 * 4
    assert stats(model, bn_after_conv_relu).connections == 12 * 4


class EventMultiply(L.Multiply):
    """Stand-in for kspikese's SynapticMultiply: input 0 (the mask) carries the events."""

    event_input = 0


def test_multiply_one_connection_per_element_and_event_input():
    mask_in, enc_in = tf.keras.Input((6, 2)), tf.keras.Input((6, 2))
    plain, synaptic = L.Multiply(), EventMultiply()
    model = tf.keras.Model([mask_in, enc_in], [plain([mask_in, enc_in]),
                                               synaptic([mask_in, enc_in])])
    assert stats(model, plain).connections == 12
    assert stats(model, synaptic).connections == 12
    # three-way product: two multiplications per element
    a, b, c = (tf.keras.Input((5,)) for _ in range(3))
    triple = L.Multiply()
    assert stats(tf.keras.Model([a, b, c], triple([a, b, c])), triple).connections == 10


def test_routing_layers_cost_nothing_and_add_costs_one_op_per_element():
    inp = tf.keras.Input((8, 2))
    x = L.Rescaling(3.0)(inp)
    a = L.Conv1D(2, 1)(x)
    y = L.Concatenate()([x, a])
    add = L.Add()
    y = add([y, y])
    y = L.Reshape((1, 8, 4))(y)
    y = L.Reshape((8, 4))(y)
    y = L.Cropping1D(1)(L.ZeroPadding1D(1)(y))
    model = tf.keras.Model(inp, y)
    assert stats(model, add) == energy.Counts(connections=8 * 4)
    for layer in model.layers:
        if not isinstance(layer, (L.Conv1D, L.Add)):
            assert stats(model, layer) == energy.Counts(), layer.name


def test_time_distributed_counts_the_wrapped_layer_per_step():
    inp = tf.keras.Input((None, 10, 6))
    wrapper = L.TimeDistributed(L.Conv1DTranspose(4, 2, strides=2))
    model = tf.keras.Model(inp, wrapper(inp))
    assert stats(model, wrapper).connections == 10 * 6 * 2 * 4


def test_keras_spiking_registry_is_left_alone():
    before = dict(keras_spiking.ModelEnergy.layer_stats_computers)
    model, layer = single(lambda: L.Conv1DTranspose(1, 16, strides=8, padding="same"), (10, 256))
    energy.compare(model, np.ones((1, 10, 256), np.float32), devices=("loihi",))
    assert keras_spiking.ModelEnergy.layer_stats_computers == before
    assert L.Conv1DTranspose not in before


def test_stock_rule_prices_as_keras_spiking_model_energy():
    # the stock estimate's counts, rates and prices equal ModelEnergy's own on a model it counts
    inp = tf.keras.Input((6, 2))
    h = L.Conv1D(3, 3, padding="same", activation="relu")(inp)
    out = L.Dense(4)(L.Flatten()(h))
    model = tf.keras.Model(inp, out)
    data = np.random.RandomState(0).rand(5, 6, 2).astype(np.float32)
    stock = energy.estimate(model, data, corrected=False, dt=0.01, timesteps=3,
                            devices=("cpu", "loihi", "spinnaker2"))
    reference = keras_spiking.ModelEnergy(model, data)
    for device in ("cpu", "loihi", "spinnaker2"):
        assert stock.totals[device] == pytest.approx(
            reference.total_energy(device, timesteps_per_inference=3, dt=0.01), rel=1e-6)
    corrected = energy.estimate(model, data, dt=0.01, timesteps=3, devices=("loihi",))
    assert corrected.totals["loihi"] == pytest.approx(stock.totals["loihi"], rel=1e-6)


# ------------------------------------------------------------------------------ rates and energy
def test_spiking_device_energy_from_measured_rate():
    # input of constant 2.0 into a 1x1 conv (4 positions, 1 -> 2 channels: 8 connections);
    # dt = 0.5 makes rate*dt = 1 event per input element -> 8 synaptic events per inference
    inp = tf.keras.Input((4, 1))
    conv = L.Conv1D(2, 1, use_bias=False)
    model = tf.keras.Model(inp, conv(inp))
    data = np.full((3, 4, 1), 2.0, np.float32)
    est = energy.estimate(model, data, devices=("loihi", "cpu"), dt=0.5)
    row = {r["name"]: r for r in est.layers}[conv.name]
    assert row["events_per_input"] == pytest.approx(1.0)
    assert row["synops"] == pytest.approx(8.0)
    assert row["J loihi"] == pytest.approx(8 * LOIHI_SYN)
    assert est.totals["cpu"] == pytest.approx(8 * 8.6e-9)  # dense: each synapse once
    assert est.synops == pytest.approx(8.0)
    assert est.n_examples == 3 and est.rates_from == "example_data"


def spiking_relu(x, dt, name):
    """kspikese-style wrapping: add a time axis, SpikingActivation, drop it."""
    shape = x.shape[1:]
    y = L.Reshape((1, *shape))(x)
    y = keras_spiking.SpikingActivation("relu", dt=dt, seed=0, name=f"{name}_spike")(y)
    return L.Reshape(tuple(shape))(y)


def test_firing_rate_and_neurons_of_spiking_layer():
    # input 2.0 through a spiking ReLU with dt=1: floor(v0 + 2) = 2 spikes for any v0 in [0, 1)
    inp = tf.keras.Input((6, 1))
    y = spiking_relu(inp, 1.0, "a")
    conv = L.Conv1D(3, 1, use_bias=False)
    model = tf.keras.Model(inp, conv(y))
    data = np.full((2, 6, 1), 2.0, np.float32)
    est = energy.estimate(model, data)
    assert est.dt == 1.0
    rows = {r["name"]: r for r in est.layers}
    assert rows["a_spike"]["neurons"] == 6
    assert rows["a_spike"]["spikes_per_neuron"] == pytest.approx(2.0)
    assert rows[conv.name]["synops"] == pytest.approx(6 * 3 * 2.0)
    assert est.mean_firing == pytest.approx(2.0)
    expected = 18 * 2.0 * LOIHI_SYN + 6 * LOIHI_NEURON
    assert est.totals["loihi"] == pytest.approx(expected)


def test_nonzero_fraction_counts_graded_messages():
    inp = tf.keras.Input((4, 1))
    conv = L.Conv1D(1, 1, use_bias=False)
    model = tf.keras.Model(inp, conv(inp))
    data = np.array([[[0.0], [3.0], [0.0], [5.0]]], np.float32)  # half the inputs are nonzero
    est = energy.estimate(model, data, dt=1.0, devices=("loihi",))
    row = {r["name"]: r for r in est.layers}[conv.name]
    assert row["nonzero_inputs"] == pytest.approx(0.5)
    assert row["synops_graded"] == pytest.approx(2.0)
    assert row["synops"] == pytest.approx(4 * 2.0)


def test_synaptic_multiply_rate_uses_only_the_mask():
    # mask = the input (all ones), encoder counts = 9 x input: only the mask's spikes are events
    inp = tf.keras.Input((4, 1))
    mult = EventMultiply(name="mult")
    model = tf.keras.Model(inp, mult([inp, L.Rescaling(9.0)(inp)]))
    data = np.ones((2, 4, 1), np.float32)
    res = energy.compare(model, data, dt=1.0, devices=("loihi",))
    corrected = {r["name"]: r for r in res["corrected"].layers}["mult"]
    stock = {r["name"]: r for r in res["stock"].layers}["mult"]
    assert corrected["events_per_input"] == pytest.approx(1.0)
    assert corrected["synops"] == pytest.approx(4.0)
    assert stock["events_per_input"] == pytest.approx(5.0)  # KerasSpiking: mean over both inputs
    assert stock["connections"] == 0  # and it counts Multiply as nothing


def test_concatenate_of_unequal_inputs_rate_is_element_weighted():
    # [input (4 elements of 2.0), conv (12 elements of 6.0)] -> (4*2 + 12*6) / 16 = 5
    inp = tf.keras.Input((4, 1))
    conv = L.Conv1D(3, 1, use_bias=False, kernel_initializer=tf.keras.initializers.Constant(3.0))
    cat = L.Concatenate(name="cat")
    model = tf.keras.Model(inp, cat([inp, conv(inp)]))
    est = energy.estimate(model, np.full((2, 4, 1), 2.0, np.float32), dt=1.0, devices=("loihi",))
    assert {r["name"]: r for r in est.layers}["cat"]["events_per_input"] == pytest.approx(5.0)


# ------------------------------------------------------------------------------ whole models
def tiny_wave_u_net(frame_len=64, dt=None):
    """Wave-U-Net's layer types: conv k=15, strided conv, transposed convs, concat skips."""
    act = (lambda x, n: L.ReLU()(x)) if dt is None else (lambda x, n: spiking_relu(x, dt, n))
    inp = tf.keras.Input((frame_len, 1))
    x = L.Rescaling(32768.0)(inp)
    d1 = act(L.Conv1D(4, 15, padding="same", name="down1")(x), "down1")
    p1 = act(L.Conv1D(4, 2, strides=2, name="pool1")(d1), "pool1")
    d2 = act(L.Conv1D(8, 15, padding="same", name="down2")(p1), "down2")
    u1 = act(L.Conv1DTranspose(4, 2, strides=2, name="up1")(d2), "up1")
    c1 = L.Concatenate()([d1, u1])
    u2 = act(L.Conv1DTranspose(4, 5, padding="same", name="up2")(c1), "up2")
    out = L.Conv1D(1, 3, padding="same", name="readout")(L.Concatenate()([x, u2]))
    return tf.keras.Model(inp, L.Rescaling(1 / 32768.0)(out), name="tiny_wave_u_net")


def tiny_conv_tasnet(frame_len=64, dt=None):
    """Conv-TasNet's layer types: strided encoder, BN, grouped dilated conv, residual/skip
    additions, mask conv, synaptic multiply, transposed-conv decoder."""
    act = (lambda x, n: L.ReLU()(x)) if dt is None else (lambda x, n: spiking_relu(x, dt, n))
    inp = tf.keras.Input((frame_len, 1))
    enc = act(L.Conv1D(12, 16, strides=8, padding="same", name="encoder")(inp), "encoder")
    x, skips = enc, []
    for b in range(2):
        h = act(L.BatchNormalization()(L.Conv1D(16, 1, name=f"b{b}_in")(x)), f"b{b}_in")
        h = L.Conv1D(16, 3, padding="same", dilation_rate=2 ** b, groups=16, name=f"b{b}_dw")(h)
        h = act(L.BatchNormalization()(h), f"b{b}_dw")
        x = L.Add()([x, L.Conv1D(12, 1, name=f"b{b}_res")(h)])
        skips.append(L.Conv1D(12, 1, name=f"b{b}_skip")(h))
    mask = act(L.Conv1D(12, 1, name="mask")(L.Add()(skips)), "mask")
    masked = EventMultiply(name="synaptic_multiply")([mask, enc])
    out = L.Conv1DTranspose(1, 16, strides=8, padding="same", name="decoder")(masked)
    return tf.keras.Model(inp, out, name="tiny_conv_tasnet")


@pytest.mark.parametrize("build, dt", [(tiny_wave_u_net, 0.001), (tiny_conv_tasnet, 1.0)])
def test_whole_models_counted_without_warning(build, dt):
    frames = np.random.RandomState(0).uniform(-0.5, 0.5, (3, 64, 1)).astype(np.float32)
    snn = build(dt=dt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = energy.compare(snn, frames, batch_size=2)
        ann = energy.estimate(build(), corrected=True)  # the ANN, no data: cpu only
    # the stock rule's warnings are captured, never shown
    assert not [w for w in caught if energy.WARNING_TEXT in str(w.message)]
    assert set(ann.totals) == {"cpu"} and ann.rates_from == "none"
    assert result["corrected"].uncounted == []
    assert "Concatenate" in result["stock"].uncounted or "BatchNormalization" in \
        result["stock"].uncounted
    c, s = result["corrected"], result["stock"]
    assert set(c.totals) == {"cpu", "cpu-events", "loihi", "spinnaker", "spinnaker2"}
    assert c.dt == dt and c.n_examples == 3
    assert np.isfinite(c.mean_firing) and c.synops >= 0
    # the only differences between the estimators are the corrected layer types
    differing = {r["type"] for r, q in zip(c.layers, s.layers) if r["connections"] !=
                 q["connections"]}
    assert differing <= {"Conv1DTranspose", "EventMultiply", "BatchNormalization", "Add"}
    assert "Conv1DTranspose" in differing


def test_tiny_conv_tasnet_hand_total():
    # ANN connections counted by hand: frame 64 -> 8 encoder positions, N = 12, hidden 16
    ann = tiny_conv_tasnet()
    est = energy.estimate(ann)
    enc = 8 * 12 * 16 * 1  # positions x filters x k x in
    b_in, dw, res, skip = 8 * 16 * 12, 8 * 16 * 3 * 1, 8 * 12 * 16, 8 * 12 * 16
    # the last block's residual output feeds nothing, so it is not part of the model
    blocks = 2 * (b_in + dw + skip) + res
    mask, mult = 8 * 12 * 12, 8 * 12
    adds = 8 * 12 + 8 * 12  # the first block's residual sum and the sum of the two skips
    dec = 8 * 12 * 16 * 1  # input positions x in x k x out
    assert est.connections == enc + blocks + mask + mult + adds + dec == 12960
    # BN follows a linear conv each time: folded, free
    assert all(r["connections"] == 0 for r in est.layers if r["type"] == "BatchNormalization")
    relu_neurons = 8 * 12 + 2 * (8 * 16 * 2) + 8 * 12
    assert est.neurons == relu_neurons
    assert est.totals["cpu"] == pytest.approx((est.connections + relu_neurons) * 8.6e-9)
    stock = energy.estimate(ann, corrected=False)
    assert stock.connections == est.connections - dec + 64 * 1 * 16 * 1 - mult - adds


def test_unknown_layer_is_an_error_not_a_silent_zero():
    inp = tf.keras.Input((4, 1))
    model = tf.keras.Model(inp, L.Lambda(lambda t: t * 2.0, name="doubler")(inp))
    with pytest.raises(energy.UncountedLayerError, match="Lambda.*'doubler'.*register_layer"):
        energy.estimate(model)
    assert energy.estimate(model, corrected=False).uncounted == ["Lambda"]


def test_undefined_length_explains_and_example_data_or_with_frame_len_fix_it():
    inp = tf.keras.Input((None, 1))
    model = tf.keras.Model(inp, L.Conv1DTranspose(2, 2, strides=2)(inp))
    with pytest.raises(ValueError, match="undefined sizes.*example_data"):
        energy.estimate(model)
    x = np.random.RandomState(1).randn(1, 32, 1).astype(np.float32)
    from_data = energy.estimate(model, x, devices=("cpu", "loihi"))
    assert from_data.input_shape == [(32, 1)] and from_data.connections == 32 * 1 * 2 * 2
    fixed = energy.with_frame_len(model, 32)
    assert fixed.input_shape == (None, 32, 1)
    assert energy.estimate(fixed).connections == 32 * 1 * 2 * 2
    np.testing.assert_allclose(fixed(x), model(x), rtol=1e-6)
    with pytest.raises(ValueError, match="cannot take"):
        energy.with_frame_len(fixed, 16)


def test_bad_example_data_is_rejected():
    model, _ = single(lambda: L.Conv1D(1, 1), (4, 1))
    with pytest.raises(ValueError, match="example_data"):
        energy.estimate(model, np.zeros((0, 4, 1), np.float32))
    with pytest.raises(ValueError, match=r"example_data: expected an array of shape \(n > 0, 4, 1\)"):
        energy.estimate(model, np.zeros((2, 5, 1), np.float32))
    with pytest.raises(ValueError, match="2 inputs, got 1"):
        a, b = tf.keras.Input((3,)), tf.keras.Input((3,))
        energy.estimate(tf.keras.Model([a, b], L.Add()([a, b])), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        energy.estimate(model, devices=("tpu",))


# ------------------------------------------------------------------------------ kspikese layers
def test_kspikese_synaptic_multiply_counted_with_mask_events():
    neurons = pytest.importorskip("kspikese.neurons")
    inp = tf.keras.Input((4, 2))
    mult = neurons.SynapticMultiply(activation="relu", name="smul")
    model = tf.keras.Model(inp, mult([inp, L.Rescaling(9.0)(inp)]))
    st = stats(model, mult)
    assert st.connections == 8 and st.neurons == 8  # one synapse + one ReLU neuron each
    est = energy.estimate(model, np.ones((1, 4, 2), np.float32), dt=1.0, devices=("loihi",))
    assert {r["name"]: r for r in est.layers}["smul"]["synops"] == pytest.approx(8.0)


def test_time_plumbing_is_free_and_folded_neurons_are_counted():
    neurons = pytest.importorskip("kspikese.neurons")
    inp = tf.keras.Input((8, 3))
    x = neurons.RepeatTime(2)(inp)
    split = neurons.TimeSplit(2, fold=True)
    spk = keras_spiking.SpikingActivation("relu", dt=1.0, seed=0, name="spk")
    y = neurons.TimeMerge(2, fold=True)([spk(split(x)), x])
    model = tf.keras.Model(inp, neurons.MeanTime(2)(y))
    assert stats(model, spk).neurons == 8 * 3  # every position's neurons
    assert stats(model, spk, stock=True).neurons == 3  # KerasSpiking sees (B*P, T, C)
    assert energy.model_timesteps(model) == 2
    for layer in model.layers:
        if layer is not spk:
            assert stats(model, layer).connections == 0


def test_converted_models_are_fully_counted():
    # the real converter (kspikese.to_spiking): every layer it emits must be counted
    conversion = pytest.importorskip("kspikese.convert")
    ann = tiny_wave_u_net()
    ann_est = energy.estimate(ann)
    snn = conversion.to_spiking(ann, dt=0.001, seed=0)
    est = energy.estimate(snn, np.zeros((1, 64, 1), np.float32))
    assert est.uncounted == []
    assert est.connections == ann_est.connections  # same synapses
    assert est.neurons == ann_est.neurons + 64  # every ReLU an IF neuron, plus the readout's
    two = conversion.to_spiking(ann, dt=0.001, seed=0, timesteps=2)
    est2 = energy.estimate(two, np.zeros((1, 64, 1), np.float32))
    assert est2.timesteps == 2 and est2.neuron_updates == 2 * est.neurons


def test_converted_unknown_length_model_counts_every_position():
    # to_spiking folds positions into the batch axis when the length is unknown (TimeSplit)
    conversion = pytest.importorskip("kspikese.convert")
    fixed = conversion.to_spiking(tiny_wave_u_net(64), dt=0.001, seed=0)
    loose = conversion.to_spiking(tiny_wave_u_net(None), dt=0.001, seed=0)
    est_fixed = energy.estimate(fixed)
    rebuilt = energy.with_frame_len(loose, 64)
    est_loose = energy.estimate(rebuilt)
    assert est_loose.neurons == est_fixed.neurons
    assert est_loose.connections == est_fixed.connections
    assert any(type(layer).__name__ == "TimeSplit" for layer in rebuilt.layers)


def test_nested_model_counts_its_layers_and_their_own_rates():
    # a backbone used as a layer: its connections, and events from the inputs it received
    inner_in = tf.keras.Input((4, 1))
    conv = L.Conv1D(2, 1, use_bias=False, kernel_initializer=tf.keras.initializers.Constant(3.0))
    backbone = tf.keras.Model(inner_in, L.Conv1D(1, 1, use_bias=False)(conv(inner_in)),
                              name="backbone")
    inp = tf.keras.Input((4, 1))
    model = tf.keras.Model(inp, L.Flatten()(backbone(inp)))
    flat = energy.estimate(tf.keras.Model(inner_in, backbone.output))
    est = energy.estimate(model, np.full((2, 4, 1), 2.0, np.float32), dt=1.0, devices=("loihi",))
    row = {r["name"]: r for r in est.layers}["backbone"]
    assert row["connections"] == flat.connections == 4 * 2 + 4 * 2
    # first conv: 8 connections x 2 events; second: 8 connections x |3 * 2| = 6 events
    assert row["synops"] == pytest.approx(8 * 2 + 8 * 6)
    assert est.totals["loihi"] == pytest.approx(64 * LOIHI_SYN)
    seq = tf.keras.Sequential([tf.keras.Input((4, 1)), L.Conv1D(2, 1), L.Lambda(lambda t: t)])
    with pytest.raises(energy.UncountedLayerError, match="Lambda"):
        energy.estimate(tf.keras.Model(inp, seq(inp)))
