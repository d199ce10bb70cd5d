"""The public three-stage API on models this project did not design."""

import json

import numpy as np
import pytest
import tensorflow as tf

from kspikese import hybrid


def _classifier():
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((32, 1))
    h = tf.keras.layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    h = tf.keras.layers.GlobalAveragePooling1D()(h)
    h = tf.keras.layers.Dense(16)(h)
    h = tf.keras.layers.ReLU()(h)
    return tf.keras.Model(inp, tf.keras.layers.Dense(2, name="readout")(h))


def _data(n=64, seed=0):
    """Class 1: a 4-sample-period tone; class 0: white noise (same power)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(32)
    tone = np.sqrt(2) * np.sin(2 * np.pi * t / 4 + rng.uniform(0, 6.3, (n, 1)))
    x = np.where(y[:, None] == 1, tone, rng.standard_normal((n, 32)))
    return x[..., None].astype("float32"), y.astype("int32")


def test_three_stage_on_a_user_classifier_is_resumable_and_keeps_accuracy(tmp_path):
    x, y = _data()
    xv, yv = _data(32, seed=1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    valid = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(16)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kwargs = dict(convert_settings={"dt": 0.01, "activation_scale": "data", "target_spikes": 30},
                  calibration=x[:16], ann_settings={"lr": 0.01, "epochs": 8, "patience": 8},
                  finetune_settings={"lr": 1e-3, "epochs": 2, "patience": 2}, loss=loss,
                  metrics=["accuracy"], monitor="val_accuracy", mode="max", verbose=0)
    result = hybrid.three_stage(_classifier(), train, valid, tmp_path, **kwargs)
    acc = {name: float(np.mean(np.argmax(m.predict(xv, verbose=0), -1) == yv))
           for name, m in (("ann", result.ann), ("converted", result.converted),
                           ("snn", result.snn))}
    assert acc["ann"] >= 0.9, acc
    assert acc["snn"] >= acc["ann"] - 0.1, acc
    assert [r["epoch"] for r in result.history["finetune"]] == [1, 2]
    assert any("spike" in layer.name for layer in result.snn.layers)
    # a second call reuses every stage: same SNN output, no epoch trained again
    again = hybrid.three_stage(_classifier(), train, valid, tmp_path, **kwargs)
    np.testing.assert_array_equal(again.snn.predict(xv, verbose=0), result.snn.predict(xv, verbose=0))
    state = json.loads((tmp_path / "run.json").read_text())
    assert all(state["stages"][s]["done"] for s in ("ann", "convert", "finetune"))
    # a changed fine-tune setting redoes only fine-tuning
    changed = dict(kwargs, finetune_settings={"lr": 1e-3, "epochs": 1, "patience": 1})
    third = hybrid.three_stage(_classifier(), train, valid, tmp_path, **changed)
    np.testing.assert_array_equal(third.converted.get_weights()[0],
                                  result.converted.get_weights()[0])
    assert [r["epoch"] for r in third.history["finetune"]] == [1]


def test_three_stage_takes_a_trained_ann_and_refuses_missing_settings(tmp_path):
    x, y = _data(16)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    ann = _classifier()
    with pytest.raises(ValueError, match="give dt"):
        hybrid.convert(ann, x, activation_scale="data")
    with pytest.raises(ValueError, match="needs calibration inputs"):
        hybrid.convert(ann, None, dt=0.01, activation_scale="data")
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    result = hybrid.three_stage(ann, ds, ds, tmp_path, convert_settings={"dt": 1e6},
                                finetune_settings={"lr": 0.0, "epochs": 1}, loss=loss,
                                metrics=["accuracy"], monitor="val_accuracy", verbose=0)
    assert result.ann is ann and result.history["ann"] == []
    # at a very large dt (and lr 0) the SNN computes the ANN's function
    np.testing.assert_allclose(result.snn.predict(x, verbose=0), ann.predict(x, verbose=0),
                               rtol=1e-3, atol=1e-4)
