"""Per-layer spike targets at the uniform target's events (`convert: {allocation: events}`)."""

import numpy as np
import pytest

from kspikese.convert import allocation, convert, layer_scales, scale_activations, settings
from kspikese.convert.relays import insert_relays
from kspikese.convert.scaling import layer_targets, sum_groups

from test_relays import CFG, frames, tiny_tasnet


def test_multipliers_follow_the_cube_root_rule_at_the_uniform_events():
    # g_u = c (A_u / C_u)^(1/3): shapes 1 and 0.5; 1·c + 8·0.5c = 9  ->  c = 1.8
    g = allocation.multipliers({"a": 1.0, "b": 8.0}, {"a": 1.0, "b": 1.0}, bounds=(0.01, 100))
    assert g["a"] == pytest.approx(1.8, rel=1e-9) and g["b"] == pytest.approx(0.9, rel=1e-9)
    assert 1.0 * g["a"] + 8.0 * g["b"] == pytest.approx(9.0, rel=1e-9)


def test_a_clipped_multiplier_leaves_the_rest_of_the_budget_to_the_others():
    # shapes 10 and 0.5: a would take 10c, so it sits at the bound 4 and b spends 9 - 4 = 5
    g = allocation.multipliers({"a": 1.0, "b": 8.0}, {"a": 1000.0, "b": 1.0}, bounds=(0.25, 4))
    assert g["a"] == pytest.approx(4.0) and g["b"] == pytest.approx(5.0 / 8.0, rel=1e-9)


def test_a_unit_that_drives_no_synapse_gets_the_upper_bound():
    g = allocation.multipliers({"a": 0.0, "b": 2.0}, {"a": 1.0, "b": 1.0}, bounds=(0.5, 3))
    assert g["a"] == 3.0 and g["b"] == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("section, message", [
    ({"allocation": "spikes"}, r"allocation must be one of 'uniform', 'events', 'measured', got 'spikes'"),
    ({"allocation": "events", "activation_scale": "int16"}, r"allocation 'events' needs "
                                                            r"activation_scale: data"),
    ({"allocation": "events", "allocation_bounds": [2, 4]}, r"allocation_bounds must be \[low, "
                                                            r"high\] with 0 < low <= 1 <= high"),
    ({"allocation": "events", "allocation_bounds": 4}, r"allocation_bounds must be"),
])
def test_bad_allocation_settings_are_named(section, message):
    with pytest.raises(ValueError, match=message):
        settings.check(dict(CFG, **section))
    with pytest.raises(ValueError, match="allocation_bounds must be"):
        allocation.multipliers({"a": 1.0}, {"a": 1.0}, bounds=(0.5, 0.9))


def test_allocated_factors_keep_sum_groups_equal_and_the_function():
    ann, x = tiny_tasnet(), frames(8)
    relayed = insert_relays(ann, x)
    cfg = settings.check(dict(CFG, relays=True, allocation="events", target_spikes=5))
    uniform = layer_scales(relayed, x, dict(cfg, allocation="uniform"))
    events = layer_scales(relayed, x, cfg)
    assert set(events) == set(uniform) and events != uniform
    # readout untouched; every hidden factor within the bounds of its equalised uniform factor
    assert events["readout"] == uniform["readout"]
    realised = layer_targets(relayed, uniform)
    carried = layer_targets(relayed, events)
    for group in sum_groups(relayed):
        members = [m for m in group if m != "<input>"]
        assert len({carried[m] for m in members}) == 1  # one factor per sum group
        ratio = carried[members[0]] / realised[members[0]]
        assert 0.25 - 1e-9 <= ratio <= 4 + 1e-9
    # the scaled ANN computes the same function
    scaled = scale_activations(relayed, events)
    np.testing.assert_allclose(scaled.predict(x, verbose=0), ann.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_uniform_allocation_is_the_old_conversion():
    ann, x = tiny_tasnet(), frames(4)
    a = convert(ann, dict(CFG, relays=True), seed=0, calibration=x).predict(x, verbose=0)
    b = convert(ann, dict(CFG, relays=True, allocation="uniform"), seed=0,
                calibration=x).predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)
