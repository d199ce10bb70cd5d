"""Each unit's rounding noise at the output, measured (`convert: {allocation: measured}`)."""

import numpy as np
import pytest
import tensorflow as tf

from kspikese.convert import layer_scales, scale_activations, settings
from kspikese.convert.relays import insert_relays
from kspikese.convert.scaling import layer_targets, sum_groups
from kspikese.convert.sensitivity import Rounding, output_noise

from test_relays import CFG, frames, tiny_tasnet


def two_branches(gain_a=10.0, gain_b=1.0):
    """y = gain_a * relu_a(x) + gain_b * relu_b(x), with fixed 1x1 weights."""
    x = tf.keras.Input((None, 1))
    a = tf.keras.layers.Activation("relu", name="a")(x)
    b = tf.keras.layers.Activation("relu", name="b")(x)
    ya = tf.keras.layers.Dense(1, use_bias=False, name="wa",
                               kernel_initializer=tf.keras.initializers.Constant(gain_a))(a)
    yb = tf.keras.layers.Dense(1, use_bias=False, name="wb",
                               kernel_initializer=tf.keras.initializers.Constant(gain_b))(b)
    return tf.keras.Model(x, tf.keras.layers.Add(name="readout")([ya, yb]))


def test_rounding_is_identity_at_scale_zero_and_rounds_to_half_steps():
    layer = Rounding()
    x = tf.constant([[0.2, 0.3, 1.26, 2.74]])
    np.testing.assert_allclose(layer(x).numpy(), x.numpy())  # scale starts at 0
    layer.scale.assign(2.0)
    np.testing.assert_allclose(layer(x).numpy(), [[0.0, 0.5, 1.5, 2.5]])


def test_output_noise_against_hand_values():
    model = two_branches(gain_a=2.0, gain_b=0.0)
    x = np.array([0.3, 1.2, 2.6, -1.0], np.float32).reshape(1, 4, 1)
    noise = output_noise(model, {"a": "A", "b": "B"}, {"a": 1.0, "b": 1.0}, x)
    # rounded relu(x): 0, 1, 3, 0 against 0.3, 1.2, 2.6, 0; the gain 2 cancels in the ratio
    assert noise["A"] == pytest.approx((0.09 + 0.04 + 0.16) / (0.09 + 1.44 + 6.76), rel=1e-5)
    assert noise["B"] == pytest.approx(0.0, abs=1e-12)  # its branch does not reach the output


def test_output_noise_follows_the_gain_to_the_output_and_the_step():
    x = frames(2)
    model = two_branches(gain_a=10.0, gain_b=1.0)
    noise = output_noise(model, {"a": "A", "b": "B"}, {"a": 100.0, "b": 100.0}, x)
    assert noise["A"] / noise["B"] == pytest.approx(100.0, rel=1e-3)  # the gains squared
    finer = output_noise(model, {"a": "A", "b": "A"}, {"a": 400.0, "b": 400.0}, x)
    coarse = output_noise(model, {"a": "A", "b": "A"}, {"a": 100.0, "b": 100.0}, x)
    assert coarse["A"] / finer["A"] == pytest.approx(16.0, rel=0.1)  # q^2: a 4x finer step


@pytest.mark.parametrize("units, steps, message", [
    ({"nope": "u"}, {"nope": 1.0}, "no layer named"),
    ({"a": "u"}, {"a": 0.0}, "finite and > 0"),
    ({"a": "u"}, {}, "finite and > 0"),
])
def test_output_noise_names_bad_input(units, steps, message):
    with pytest.raises(ValueError, match=message):
        output_noise(two_branches(), units, steps, frames(1))


def test_measured_allocation_keeps_sum_groups_equal_and_the_function():
    ann, x = tiny_tasnet(), frames(8)
    relayed = insert_relays(ann, x)
    cfg = settings.check(dict(CFG, relays=True, allocation="measured", target_spikes=5))
    assert cfg["allocation"] == "measured"
    uniform = layer_scales(relayed, x, dict(cfg, allocation="uniform"))
    events = layer_scales(relayed, x, dict(cfg, allocation="events"))
    measured = layer_scales(relayed, x, cfg)
    assert set(measured) == set(uniform) and measured != events != uniform
    assert measured["readout"] == uniform["readout"]
    realised, carried = layer_targets(relayed, uniform), layer_targets(relayed, measured)
    for group in sum_groups(relayed):
        members = [m for m in group if m != "<input>"]
        assert len({carried[m] for m in members}) == 1
        assert 0.25 - 1e-9 <= carried[members[0]] / realised[members[0]] <= 4 + 1e-9
    scaled = scale_activations(relayed, measured)
    np.testing.assert_allclose(scaled.predict(x, verbose=0), ann.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
