"""Mixed-precision ANN training: a bfloat16 twin with the float32 model's weights."""

import numpy as np
import pytest
import tensorflow as tf

from kspikese import config, hybrid, precision
from kspikese.models import build_model


def _small(name):
    tf.keras.utils.set_random_seed(0)
    if name == "wave_u_net":
        return build_model(name, frame_len=1024, depth=3, filters=8,
                           kernel_initializer="he_uniform", input_skip="identity")
    return build_model(name, frame_len=1024, enc_filters=32, bottleneck=32, hidden=64,
                       blocks=2, repeats=1, start="identity")


@pytest.mark.parametrize("name", ["wave_u_net", "conv_tasnet"])
def test_twin_computes_in_bfloat16_with_the_same_weights(name):
    model = _small(name)
    twin = precision.twin(model)
    assert [w.shape for w in twin.get_weights()] == [w.shape for w in model.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    hidden = [layer for layer in twin.layers
              if not isinstance(layer, tf.keras.layers.InputLayer)
              and layer.name != precision.OUTPUT_CAST]
    assert {layer.compute_dtype for layer in hidden} == {"bfloat16"}
    assert {w.dtype for w in twin.weights} == {tf.float32}  # the variables stay float32
    assert twin.output.dtype == tf.float32
    x = np.random.default_rng(1).standard_normal((2, 1024, 1)).astype("float32") * 0.1
    full, half = model(x).numpy(), twin(x).numpy()
    err = np.linalg.norm(full - half) / np.linalg.norm(full)
    # bfloat16 rounds each product to 8 significant bits (2^-8 = 3.9e-3 relative): the twin
    # differs from float32, but by less than a percent
    assert 1e-5 < err < 1e-2


def test_bad_precision_named():
    with pytest.raises(ValueError, match=r"`precision:` must be one of \['float32', "
                                         r"'mixed_bfloat16'\], got 'float16'"):
        precision.twin(_small("wave_u_net"), "float16")


def test_training_model_is_the_model_in_float32_and_its_twin_otherwise():
    model = _small("wave_u_net")
    assert precision.training_model(model, "float32") is model
    twin = precision.training_model(model, "mixed_bfloat16")
    assert twin is not model and twin.layers[1].compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match=r"`precision:` must be one of .*got 'float16'"):
        precision.training_model(model, "float16")


def test_yaml_precision_checked():
    with pytest.raises(config.ConfigError, match=r"table1\.yaml: `ann: precision:` must be one "
                                                 r"of \['float32', 'mixed_bfloat16', 'auto'\], "
                                                 r"got 'fp16'"):
        config.load("table1", overrides={"ann": {"precision": "fp16"}})
    with pytest.raises(config.ConfigError, match=r"table1\.yaml: `finetune: precision:` - the "
                                                 r"SNN fine-tunes in float32"):
        config.load("table1", overrides={"finetune": {"precision": "mixed_bfloat16"}})
    cfg = config.load("table1", overrides={"ann": {"precision": "mixed_bfloat16"}})
    assert hybrid.stage_settings(cfg["ann"])["precision"] == "mixed_bfloat16"


def test_auto_is_resolved_by_the_machine(monkeypatch, tmp_path):
    assert precision.resolve("auto", native=True) == "mixed_bfloat16"
    assert precision.resolve("auto", native=False) == "float32"
    assert precision.resolve("float32", native=True) == "float32"  # an explicit value stays
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not precision.native_bfloat16(str(fake))
    fake.write_text("processor : 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert precision.native_bfloat16(str(fake))
    assert not precision.native_bfloat16(str(tmp_path / "missing"))
    # config.load replaces `auto` by the machine's choice, so fingerprints and tables name it
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    assert config.load("table1", overrides={"ann": {"precision": "auto"}})["ann"]["precision"] \
        == "mixed_bfloat16"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    # float32 is the default: the key is dropped, so the ANN stage fingerprints as without it
    plain = config.load("table1")
    for value in ("auto", "float32"):
        cfg = config.load("table1", overrides={"ann": {"precision": value}})
        assert "precision" not in cfg["ann"] and cfg["ann"] == plain["ann"]


def _frames(seed=0, n=16):
    rng = np.random.default_rng(seed)
    clean = (0.1 * rng.standard_normal((n, 1024, 1))).astype(np.float32)
    noisy = clean + (0.05 * rng.standard_normal((n, 1024, 1))).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((noisy, clean)).batch(4)


def test_train_ann_in_bfloat16_leaves_a_trained_float32_model_and_resumes(tmp_path):
    model = _small("wave_u_net")
    before = model.get_weights()
    kwargs = dict(lr=1e-3, patience=5, seed=0, verbose=0, precision="mixed_bfloat16")
    first = hybrid.train_ann(model, _frames(), _frames(1), tmp_path, epochs=1, **kwargs)
    assert model.layers[1].compute_dtype == "float32"  # the caller's model stays float32
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # the same call with one more epoch resumes from the checkpoint instead of starting over
    fresh = _small("wave_u_net")
    hist = hybrid.train_ann(fresh, _frames(), _frames(1), tmp_path, epochs=2, **kwargs)
    assert [row["epoch"] for row in hist] == [1, 2]
    assert hist[0]["val_si_snr"] == first[0]["val_si_snr"]  # epoch 1 was not trained again
    assert fresh.layers[1].compute_dtype == "float32"
    assert any(not np.array_equal(a, b) for a, b in zip(before, fresh.get_weights()))


def test_train_ann_refuses_an_unknown_precision(tmp_path):
    with pytest.raises(ValueError, match=r"`precision:` must be one of"):
        hybrid.train_ann(_small("wave_u_net"), _frames(), _frames(1), tmp_path, epochs=1,
                         precision="int8", verbose=0)
    assert not any(tmp_path.iterdir())  # refused before anything was written
