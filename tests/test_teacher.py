"""Teacher targets in stage 3 (``finetune: teacher:``): the blend, its settings, and that the
fine-tune learns the ANN's function with it."""

import numpy as np
import pytest
import tensorflow as tf

from kspikese import config, hybrid, teacher, training


def scaling(gain, length=8):
    """A one-weight linear 'network' y = gain * x on (batch, length, 1) frames."""
    inp = tf.keras.Input((length, 1))
    layer = tf.keras.layers.Conv1D(1, 1, use_bias=False, name="readout",
                                   kernel_initializer=tf.keras.initializers.Constant(gain))
    return tf.keras.Model(inp, layer(inp))


def test_blend_hand_computed():
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 8, 1)
    clean = np.full_like(x, 4.0)
    data = tf.data.Dataset.from_tensors((x, clean))
    (noisy, target), = list(teacher.blend(data, scaling(2.0), 0.25).as_numpy_iterator())
    np.testing.assert_array_equal(noisy, x)
    # 0.75 * 4 + 0.25 * (2 x) = 3 + x/2
    np.testing.assert_allclose(target, 3.0 + x / 2, rtol=1e-6)
    (_, same), = list(teacher.blend(data, scaling(2.0), 0.0).as_numpy_iterator())
    np.testing.assert_array_equal(same, clean)


def test_blended_keeps_each_epochs_stream():
    def make(epoch):
        x = np.full((1, 8, 1), epoch + 1.0, np.float32)
        return tf.data.Dataset.from_tensors((x, np.zeros_like(x)))

    stream = teacher.blended(make, scaling(3.0), 1.0)
    for epoch in (0, 4):
        (_, target), = list(stream(epoch).as_numpy_iterator())
        np.testing.assert_allclose(target, 3.0 * (epoch + 1.0))


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True, float("nan"), None])
def test_bad_shares_named(bad):
    with pytest.raises(ValueError, match=r"finetune: teacher must be a number in \[0, 1\]"):
        teacher.share(bad)


def test_yaml_teacher_checked():
    with pytest.raises(config.ConfigError, match=r"table3.yaml: finetune: teacher must be a "
                                                 r"number in \[0, 1\].*got 2"):
        config.load("table3", overrides={"finetune": {"teacher": 2}})
    with pytest.raises(config.ConfigError, match=r"`ann: teacher:` .* belongs to `finetune:`"):
        config.load("table3", overrides={"ann": {"teacher": 0.5}})
    assert config.load("table3", overrides={"finetune": {"teacher": 0.5}})["finetune"]["teacher"] == 0.5


def _frames(seed=0, n=16):
    rng = np.random.default_rng(seed)
    noisy = rng.standard_normal((n, 8, 1)).astype(np.float32)
    clean = rng.standard_normal((n, 8, 1)).astype(np.float32)  # unrelated to noisy
    return tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(4).repeat()


def test_a_null_teacher_is_none(tmp_path):
    history = hybrid.finetune(scaling(1.0), _frames(), _frames(1), tmp_path / "ft", epochs=1,
                              steps_per_epoch=1, verbose=0, validation_steps=1, teacher=None)
    assert len(history) == 1


def test_finetune_needs_the_ann_for_a_teacher(tmp_path):
    with pytest.raises(ValueError, match=r"teacher needs the ANN"):
        hybrid.finetune(scaling(1.0), _frames(), _frames(1), tmp_path / "ft", epochs=1,
                        steps_per_epoch=1, verbose=0, teacher=0.5)
    assert not (tmp_path / "ft").exists()


@pytest.mark.parametrize("alpha, expected", [(1.0, 0.5), (0.0, 0.0)])
def test_finetune_learns_the_teachers_function(tmp_path, alpha, expected):
    # clean speech is unrelated to the input, so on clean targets alone the best gain is ~0;
    # with the teacher y = 0.5 x alone, it is 0.5
    training.set_seed(0)
    student = scaling(1.0)
    hybrid.finetune(student, _frames(), _frames(1), tmp_path / "ft", lr=0.05, epochs=3,
                    steps_per_epoch=40, patience=9, verbose=0, validation_steps=1,
                    teacher=alpha, ann=scaling(0.5))
    gain = float(student.get_layer("readout").kernel.numpy().ravel()[0])
    assert gain == pytest.approx(expected, abs=0.15)
