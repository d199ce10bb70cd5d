"""Energy of models no one here wrote: ``tf.keras.applications`` networks (``weights=None``)."""

import numpy as np
import pytest

import kspikese  # noqa: F401
import tensorflow as tf
from kspikese import energy

apps = tf.keras.applications


def build(name, size, **kwargs):
    return getattr(apps, name)(weights=None, input_shape=(size, size, 3), classes=10, **kwargs)


@pytest.mark.parametrize("name, size", [("MobileNetV2", 32), ("ResNet50", 32),
                                        ("DenseNet121", 32), ("Xception", 71)])
def test_ann_is_fully_counted(name, size):
    model = build(name, size)
    est = energy.estimate(model)
    assert est.uncounted == [] and set(est.totals) == {"cpu"}
    assert est.totals["cpu"] == pytest.approx(8.6e-9 * (est.connections + est.neurons))
    # every layer type that has weights does work
    for row in est.layers:
        if row["params"] and row["type"] not in ("BatchNormalization",):
            assert row["connections"] > 0, row["name"]


@pytest.mark.parametrize("name, published", [("MobileNetV2", 300e6), ("ResNet50", 3.86e9)])
def test_multiply_accumulates_match_the_published_figures_at_224(name, published):
    # MobileNetV2 (Sandler et al. 2018, Table 4): 300 M multiply-adds; ResNet-50: 3.86 G
    est = energy.estimate(getattr(apps, name)(weights=None))
    macs = sum(r["connections"] for r in est.layers
               if r["type"] in ("Conv2D", "DepthwiseConv2D", "Dense"))
    assert macs == pytest.approx(published, rel=0.02)


def test_ann_counts_scale_with_the_input_area():
    # convolutions dominate: 4x the pixels (same-padded stages) -> about 4x the connections
    small, large = (energy.estimate(build("MobileNetV2", s)).connections for s in (32, 64))
    assert 3.5 < large / small < 4.1


def test_application_used_as_a_backbone_inside_a_user_model():
    # the usual transfer-learning build: a headless backbone as one layer of a Sequential
    backbone = apps.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), backbone,
                                 tf.keras.layers.GlobalAveragePooling2D(),
                                 tf.keras.layers.Dense(5)])
    head = 1 * 1 * 1280 + 1280 * 5  # global pooling reads 1x1x1280, the dense layer
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    est = energy.estimate(model, images, devices=("cpu", "loihi"))
    assert est.connections == energy.estimate(backbone).connections + head
    assert est.totals["loihi"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50"])
def test_converted_snn_keeps_the_ann_counts_and_gets_rates(name):
    ann = build(name, 32, classifier_activation=None)
    snn = kspikese.to_spiking(ann, dt=1.0, seed=0)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    a, s = energy.estimate(ann), energy.estimate(snn, images)
    assert s.connections == a.connections and s.neurons == a.neurons
    assert set(s.totals) == set(energy.SNN_DEVICES) and s.rates_from == "example_data"
    assert s.totals["cpu"] == pytest.approx(a.totals["cpu"])
    assert 0 < s.totals["loihi"] < s.totals["cpu"] and np.isfinite(s.mean_firing)
