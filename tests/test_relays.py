"""Relay neurons after sums of spike trains (kspikese.convert.relays, `convert: {relays: true}`)."""

import numpy as np
import pytest
import tensorflow as tf

from kspikese import models, training
from kspikese.convert import convert, settings
from kspikese.convert.relays import insert_relays, sums
from kspikese.energy.estimate import estimate
from kspikese.models.conv_tasnet import build_conv_tasnet

_L = tf.keras.layers
FRAME = 512


def tiny_tasnet():
    training.set_seed(0)
    return build_conv_tasnet(frame_len=FRAME, enc_filters=16, bottleneck=8, hidden=16, blocks=3,
                             repeats=1)


def frames(n=4):
    return (0.1 * np.random.default_rng(1).normal(size=(n, FRAME, 1))).astype(np.float32)


CFG = dict(dt=1.0, activation_scale="data", target_spikes=3, v0=0.5, readout_spikes=300)


def test_relays_follow_every_inner_sum_and_keep_the_function():
    ann = tiny_tasnet()
    x = frames()
    relayed = insert_relays(ann, x)
    assert [layer.name for layer in sums(ann)] == ["b1_add", "b2_add", "b3_add", "skip_sum"]
    relays = [layer for layer in relayed.layers if layer.name.endswith("_relay")]
    assert [layer.name for layer in relays] == ["b1_add_relay", "b2_add_relay", "b3_add_relay",
                                                "skip_sum_relay"]
    for layer in relays:
        assert isinstance(layer, _L.DepthwiseConv1D) and layer.kernel_size == (1,)
        np.testing.assert_array_equal(layer.get_weights()[0], 1.0)
        np.testing.assert_array_equal(layer.get_weights()[1], 0.0)
    # the ANN's sums are non-negative, so ReLU(1·y + 0) = y: the same output, bit for bit
    np.testing.assert_array_equal(relayed.predict(x, verbose=0), ann.predict(x, verbose=0))
    assert "b1_add_relay" not in [layer.name for layer in ann.layers]  # the input is untouched


def test_relays_lower_the_events_of_the_layers_reading_the_residual_stream():
    ann, x = tiny_tasnet(), frames()
    plain = estimate(convert(ann, CFG, seed=0, calibration=x), x)
    relayed = estimate(convert(ann, dict(CFG, relays=True), seed=0, calibration=x), x)
    events = {r["name"]: r["synops"] for r in plain.layers}
    with_relays = {r["name"]: r["synops"] for r in relayed.layers}
    # block 3 reads y_2 = b + r_1 + r_2 (three trains) without relays, one re-spiked train with
    assert with_relays["b3_in"] < events["b3_in"]
    assert with_relays["sep_out"] < events["sep_out"]
    assert relayed.synops < plain.synops


def test_a_sum_that_goes_negative_is_refused_by_name():
    inp = tf.keras.Input((8,))
    a = _L.Dense(4, name="a")(inp)  # linear: takes negative values
    b = _L.Dense(4, activation="relu", name="b")(inp)
    s = _L.Add(name="mixed_sum")([a, b])
    model = tf.keras.Model(inp, _L.Dense(1, name="readout")(_L.ReLU(name="r")(s)))
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"relays: the sum 'mixed_sum' takes negative values"):
        insert_relays(model, x)


def test_a_sum_that_is_the_output_gets_no_relay():
    inp = tf.keras.Input((8,))
    a = _L.Dense(4, activation="relu", name="a")(inp)
    b = _L.Dense(4, activation="relu", name="b")(inp)
    model = tf.keras.Model(inp, _L.Add(name="out_sum")([a, b]))
    assert sums(model) == []


@pytest.mark.parametrize("section, message", [
    ({"dt": 1, "activation_scale": "data", "relays": "yes"}, "relays must be true or false"),
    ({"dt": 1, "activation_scale": "int16", "relays": True}, "relays need activation_scale: data"),
])
def test_bad_relay_settings_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        settings.check(section)


def test_relayed_snn_survives_save_and_load(tmp_path):
    ann, x = tiny_tasnet(), frames(2)
    snn = convert(ann, dict(CFG, relays=True), seed=0, calibration=x)
    models.save_model(snn, tmp_path / "snn.keras")
    again = models.load_model(tmp_path / "snn.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), snn.predict(x, verbose=0))


def two_branch_sum():
    training.set_seed(0)
    inp = tf.keras.Input((6,))
    a = _L.Dense(4, activation="relu", name="a")(inp)
    b = _L.Dense(4, activation="relu", name="b")(inp)
    s = _L.Add(name="s")([a, b])
    return tf.keras.Model(inp, _L.Dense(1, name="readout")(s))


@pytest.mark.parametrize("sum_scale, shared", [("geometric", 4.0), ("min", 2.0)])
def test_summed_layers_share_the_geometric_mean_or_the_smallest_factor(sum_scale, shared):
    from kspikese.convert import scale_activations

    model = two_branch_sum()
    scaled = scale_activations(model, {"a": 2.0, "b": 8.0}, sum_scale=sum_scale)
    for name in ("a", "b"):  # input scale 1, output scale `shared`: kernel and bias times it
        for w, w0 in zip(scaled.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_allclose(w, w0 * shared, rtol=1e-6)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(scaled.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_bad_sum_scale_is_named():
    from kspikese.convert import scale_activations

    with pytest.raises(ValueError, match="sum_scale must be 'geometric' or 'min', got 'max'"):
        settings.check({"dt": 1, "activation_scale": "data", "sum_scale": "max"})
    with pytest.raises(ValueError, match=r"sum_scale must be one of \['geometric', 'min'\]"):
        scale_activations(two_branch_sum(), {"a": 2.0, "b": 8.0}, sum_scale="max")
