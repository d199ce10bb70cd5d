"""kspikese.inference: the one frame path (overlap 0 = plain framing), frame lengths, and whether
a frame's output depends on its row in the batch."""

import numpy as np
import pytest

import kspikese  # first: it selects Keras 2 for TensorFlow
import keras_spiking
import tensorflow as tf
from kspikese import inference
from kspikese.data.framing import frame, unframe
from kspikese.hub import ModelError


def conv_model(frame_len=None, seed=0, hidden=4, activation="tanh"):
    x = tf.keras.Input((frame_len, 1))
    init = tf.keras.initializers.GlorotUniform
    h = tf.keras.layers.Conv1D(hidden, 9, padding="same", activation=activation,
                               kernel_initializer=init(seed))(x)
    y = tf.keras.layers.Conv1D(1, 9, padding="same", kernel_initializer=init(seed + 1),
                               bias_initializer="ones", name="readout")(h)
    return tf.keras.Model(x, y)


def noise(n, seed=0, scale=0.3):
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


@pytest.mark.parametrize("n", [1, 1000, 1024, 5000])
def test_overlap_zero_is_the_old_non_overlapping_framing(n):
    model = conv_model(1024)
    x = noise(n)
    frames, _ = frame(x, 1024)
    old = unframe(model.predict(frames[..., None], batch_size=3, verbose=0), n)
    new = inference.enhance_array(model, x, overlap=0, batch_size=3)
    assert new.shape == (n,) and new.dtype == np.float32
    assert np.array_equal(new, old)
    # the model's bias reaches the output: the path is not a copy of the input
    assert np.abs(new - x).max() > 0.1


def test_overlap_changes_the_output_only_near_the_seams():
    model = conv_model(None)
    x = noise(3000)
    plain = inference.enhance_array(model, x, frame_len=1000, overlap=0)
    faded = inference.enhance_array(model, x, frame_len=1000, overlap=0.25)
    # frames [0, 1000) vs [-250, 750), [500, 1500), ...: 300..480 lies in one frame of each, far
    # from its edges (the 9-tap convolutions see no padding there)
    assert np.allclose(plain[300:480], faded[300:480], atol=1e-6)
    assert np.abs(plain - faded).max() > 1e-3  # the seams are cross-faded


def test_channels_and_frame_length_rules():
    model = conv_model(None)
    x = np.stack([noise(2500, 1), noise(2500, 2)], 1)
    both = inference.enhance_array(model, x, frame_len=512, batch_size=4)
    assert both.shape == (2500, 2)
    assert np.allclose(both[:, 1], inference.enhance_array(model, x[:, 1], frame_len=512),
                       atol=1e-6)
    assert inference.frame_len_of(model) == 16384
    assert inference.frame_len_of(model, default=512) == 512
    assert inference.frame_len_of(conv_model(1024), default=512) == 1024
    with pytest.raises(ModelError, match="built for frames of 1024 samples, not frame_len=512"):
        inference.enhance_array(conv_model(1024), x, frame_len=512)
    a, b = tf.keras.Input((None, 1)), tf.keras.Input((None, 1))
    with pytest.raises(ModelError, match="has 2 inputs"):
        inference.frame_len_of(tf.keras.Model([a, b], tf.keras.layers.Add()([a, b])))
    c = tf.keras.Input((None, 2))
    with pytest.raises(ModelError, match=r"takes input \(None, None, 2\)"):
        inference.frame_len_of(tf.keras.Model(c, c))
    with pytest.raises(ValueError, match="non-empty"):
        inference.enhance_array(model, np.zeros(0))


def test_model_fn_is_traced_once_per_model_and_does_not_keep_it_alive():
    import gc
    import weakref

    model = conv_model(None)
    assert inference.model_fn(model).traced is inference.model_fn(model).traced
    inference.enhance_array(model, noise(3000), frame_len=1024)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None  # the tables and the omega search run many models in one process


def rows(model, batch):
    return model.predict(np.stack(batch)[..., None], batch_size=len(batch), verbose=0)[..., 0]


def test_to_spiking_outputs_do_not_depend_on_the_batch_row():
    """kspikese.to_spiking: one seeded initial-voltage draw broadcast over the batch."""
    snn = kspikese.to_spiking(conv_model(256, activation="relu"), dt=1.0, seed=3)
    f, a, b, c = (3 * noise(256, seed=s) for s in range(4))
    first, last = rows(snn, [f, a, b, c])[0], rows(snn, [a, b, c, f])[3]
    assert np.array_equal(first, last)
    assert np.array_equal(first, rows(snn, [f])[0])  # nor on the batch size
    x = 3 * noise(2000, seed=9)
    assert np.array_equal(inference.enhance_array(snn, x, batch_size=1),
                          inference.enhance_array(snn, x, batch_size=4))
    # the neurons are spiking: another seed gives another output
    other = kspikese.to_spiking(conv_model(256, activation="relu"), dt=1.0, seed=4)
    assert not np.allclose(first, rows(other, [f])[0])


def test_keras_spiking_default_initial_state_depends_on_the_batch_row():
    """A bare keras_spiking.SpikingActivation draws voltages per row: row 3 != row 0."""
    x = tf.keras.Input((256, 1))
    h = tf.keras.layers.Conv1D(4, 9, padding="same",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(0))(x)
    h = tf.keras.layers.Reshape((1, 256, 4))(h)
    h = keras_spiking.SpikingActivation("relu", dt=1.0, seed=0)(h)
    y = tf.keras.layers.Dense(1)(tf.keras.layers.Reshape((256, 4))(h))
    snn = tf.keras.Model(x, y)
    f, a, b, c = (3 * noise(256, seed=s) for s in range(4))
    assert np.array_equal(rows(snn, [f, a])[0], rows(snn, [f, b, c, a])[0])  # same row 0
    assert not np.allclose(rows(snn, [f, a, b, c])[0], rows(snn, [a, b, c, f])[3])
