"""The two models: structure, parameter counts, conversion to SNN, save/load, summary."""

import warnings

import numpy as np
import pytest

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

import keras_spiking
from kspikese import models, to_spiking
from kspikese.convert import scale_activations
from kspikese.neurons import SynapticMultiply

L = 16384


@pytest.fixture(scope="module")
def wave_u_net():
    return models.build_wave_u_net()


@pytest.fixture(scope="module")
def conv_tasnet():
    return models.build_conv_tasnet()


def small_wave_u_net(frame_len=512):
    return models.build_wave_u_net(frame_len=frame_len, depth=3, filters=4)


def small_conv_tasnet(frame_len=512, **kw):
    kw = {"enc_filters": 16, "bottleneck": 8, "hidden": 16, "blocks": 2, "repeats": 1, **kw}
    return models.build_conv_tasnet(frame_len=frame_len, **kw)


def audio(n=2, length=512, amplitude=1.0, seed=0):
    return (amplitude * np.random.RandomState(seed).randn(n, length, 1)).astype(np.float32)


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_parameter_counts_within_3_percent_of_the_paper(wave_u_net, conv_tasnet):
    assert wave_u_net.count_params() == 2_632_849
    assert conv_tasnet.count_params() == 2_609_153
    assert abs(wave_u_net.count_params() / 2.60e6 - 1) < 0.03
    assert abs(conv_tasnet.count_params() / 2.65e6 - 1) < 0.03


def test_filter_schedule_is_multiples_of_24():
    per_level, bottleneck = models.filter_schedule(8, 24)
    assert per_level == [24, 24, 48, 72, 96, 120, 144, 168]
    assert bottleneck == 192


def test_full_models_map_frames_to_frames_and_name_the_readout(wave_u_net, conv_tasnet):
    x = audio(1, L)
    for model in (wave_u_net, conv_tasnet):
        assert model.input_shape == (None, L, 1)
        assert model(x, training=False).shape == (1, L, 1)
        readout = model.get_layer("readout")
        assert readout is model.layers[-1]
        assert readout.get_config()["activation"] == "linear"


def test_wave_u_net_structure(wave_u_net):
    names = [layer.name for layer in wave_u_net.layers]
    assert sum(n.endswith("_conv") and n.startswith("d") for n in names) == 8
    assert sum(n.endswith("_up") for n in names) == 8
    assert wave_u_net.get_layer("d1_conv").kernel_size == (15,)
    assert wave_u_net.get_layer("d3_down").strides == (2,)
    assert wave_u_net.get_layer("u1_conv").kernel_size == (5,)
    assert wave_u_net.get_layer("readout").kernel_size == (3,)


def test_conv_tasnet_structure(conv_tasnet):
    enc = conv_tasnet.get_layer("encoder")
    assert (enc.filters, enc.kernel_size, enc.strides) == (256, (16,), (8,))
    dec = conv_tasnet.get_layer("readout")
    assert isinstance(dec, tf.keras.layers.Conv1DTranspose)
    assert (dec.filters, dec.kernel_size, dec.strides) == (1, (16,), (8,))
    assert [conv_tasnet.get_layer(f"b{b}_dconv").dilation_rate[0] for b in range(1, 7)] == [
        1, 2, 4, 1, 2, 4]
    assert conv_tasnet.get_layer("b1_in").filters == 512
    assert isinstance(conv_tasnet.get_layer("multiply"), SynapticMultiply)
    assert not any(isinstance(layer, tf.keras.layers.Lambda) for layer in conv_tasnet.layers)


def test_grouped_conv1d_form_computes_the_same_as_depthwise():
    a = small_conv_tasnet()
    b = small_conv_tasnet(grouped="conv1d")
    assert a.count_params() == b.count_params()
    for la, lb in zip(a.layers, b.layers):
        weights = la.get_weights()
        if isinstance(la, tf.keras.layers.DepthwiseConv1D):  # (k, C, 1) -> (k, 1, C)
            weights = [weights[0].transpose(0, 2, 1), weights[1]]
        lb.set_weights(weights)
    x = audio()
    np.testing.assert_allclose(b(x), a(x), rtol=1e-4, atol=1e-6)


def test_bad_frame_lengths_are_refused():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth = 256"):
        models.build_wave_u_net(frame_len=1000)
    with pytest.raises(ValueError, match="multiple of stride=8"):
        models.build_conv_tasnet(frame_len=1001)
    with pytest.raises(ValueError, match="unknown model"):
        models.build_model("unet")


def test_variable_frame_length_ann_and_snn():
    fixed, free = small_wave_u_net(512), small_wave_u_net(None)
    free.set_weights(fixed.get_weights())
    x = audio(2, 512, amplitude=1000)
    np.testing.assert_allclose(free(x), fixed(x), rtol=1e-5, atol=1e-4)
    assert free(audio(1, 1024)).shape == (1, 1024, 1)
    # the SNN of the length-free model gives the same spikes as the fixed-length one
    a, b = to_spiking(fixed, dt=1e-3, seed=5), to_spiking(free, dt=1e-3, seed=5)
    np.testing.assert_array_equal(b(x).numpy(), a(x).numpy())


def test_full_size_snns_match_their_anns_at_large_dt(wave_u_net, conv_tasnet):
    x = audio(1, L)
    snn = to_spiking(wave_u_net, dt=1e4)
    snn.set_weights(wave_u_net.get_weights())  # weight transfer: same order
    assert rel_err(wave_u_net(x).numpy(), snn(x).numpy()) < 1e-2
    # a fresh Conv-TasNet's output is tiny (~1e-3), below dt=1e4's resolution of 1e-4 per
    # neuron: scale it up by 100 first (same function) and compare with the plain ANN
    snn = to_spiking(scale_activations(conv_tasnet, 100.0), dt=1e4)
    snn.set_weights(scale_activations(conv_tasnet, 100.0).get_weights())
    assert rel_err(conv_tasnet(x).numpy(), snn(x).numpy()) < 1e-2
    n_relu = len([1 for layer in conv_tasnet.layers
                  if isinstance(layer, tf.keras.layers.ReLU)
                  or getattr(layer, "activation", None) is tf.keras.activations.relu])
    spiking = [layer for layer in snn.layers
               if isinstance(layer, keras_spiking.SpikingActivation)]
    assert len(spiking) == n_relu + 1  # every ReLU plus the linear readout neuron
    assert spiking[-1].name == "readout_spike"


@pytest.mark.parametrize("build", [small_wave_u_net, small_conv_tasnet])
def test_small_snns_hidden_layers_emit_spike_counts(build):
    ann = build()
    x = audio(2, 512, amplitude=3000.0)
    near = to_spiking(ann, dt=1e4)
    assert rel_err(ann(x).numpy(), near(x).numpy()) < 1e-2
    snn = to_spiking(ann, dt=1e-3, seed=1)
    hidden = [layer for layer in snn.layers if layer.name.endswith("_spike")
              and layer.name != "readout_spike"]
    probe = tf.keras.Model(snn.inputs, [layer.output for layer in hidden])
    outs = probe(x)
    assert sum(float(np.count_nonzero(o)) for o in outs) > 0  # something spikes
    for layer, out in zip(hidden, outs):
        counts = out.numpy() / 1000.0
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-3, err_msg=layer.name)


def test_seed_gives_one_output():
    ann = small_conv_tasnet()
    x = audio(2, 512, amplitude=3000.0)
    a = to_spiking(ann, dt=1e-3, seed=7)(x).numpy()
    b = to_spiking(ann, dt=1e-3, seed=7)(x).numpy()
    c = to_spiking(ann, dt=1e-3, seed=8)(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # an example's output does not depend on the rest of its batch
    np.testing.assert_array_equal(a[1:2], to_spiking(ann, dt=1e-3, seed=7)(x[1:2]).numpy())
    assert {layer.seed for layer in to_spiking(ann, dt=1e-3, seed=7).layers
            if isinstance(layer, keras_spiking.SpikingActivation)} >= {7000, 7001}


def test_synaptic_multiply_is_elementwise_product_in_ann_mode():
    rng = np.random.RandomState(3)
    a, b = rng.randn(2, 5, 4).astype(np.float32), rng.randn(2, 5, 4).astype(np.float32)
    np.testing.assert_allclose(SynapticMultiply()([a, b]), a * b, rtol=1e-6)
    np.testing.assert_allclose(SynapticMultiply(scale=0.5)([a, b]), 0.5 * a * b, rtol=1e-6)
    np.testing.assert_allclose(SynapticMultiply(activation="relu")([a, b]),
                               np.maximum(a * b, 0), rtol=1e-6)
    layer = SynapticMultiply()
    assert layer.connections((5, 4)) == 20
    assert layer.event_input == 0
    with pytest.raises(ValueError, match="takes \\[events, weights\\]"):
        layer(a)


@pytest.mark.parametrize("build", [small_wave_u_net, small_conv_tasnet])
def test_save_load_gives_identical_outputs(tmp_path, build):
    ann = build()
    snn = to_spiking(scale_activations(ann, 300.0), dt=1e-3, seed=2)
    x = audio(2, 512)
    for model in (ann, snn):
        path = models.save_model(model, tmp_path / f"{model.name}.keras")
        loaded = models.load_model(path)
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
        assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    with pytest.raises(ValueError, match="must end in .keras"):
        models.save_model(ann, tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="no such file"):
        models.load_model(tmp_path / "missing.keras")


def test_summary_lists_layers_params_and_neurons():
    ann = small_wave_u_net()
    text = models.summary(to_spiking(scale_activations(ann, 50.0), dt=1e-3, seed=1))
    assert "d1_conv_spike" in text and "spiking relu dt=0.001 seed=1000" in text
    assert "readout_spike" in text and "spiking linear" in text
    assert f"params: {ann.count_params():,}" in text
    assert "spiking layers: 14 (dt = 0.001)" in text
    assert "input scale: 50" in text
    assert "(an ANN)" in models.summary(ann)


def test_wave_u_net_kernel_initializer_sets_the_weight_variance():
    """he_uniform draws Var(w) = 2 / fan_in; Keras' default glorot_uniform 2 / (fan_in + fan_out)."""
    from kspikese.models import build_wave_u_net

    def var(init):
        tf.keras.utils.set_random_seed(0)
        model = build_wave_u_net(frame_len=256, depth=3, filters=16, kernel_initializer=init)
        return float(np.var(model.get_layer("d3_conv").kernel.numpy()))

    fan_in, fan_out = 15 * 16, 15 * 32  # d3_conv: kernel 15, 16 -> 32 channels
    assert var("he_uniform") == pytest.approx(2 / fan_in, rel=0.05)
    assert var("glorot_uniform") == pytest.approx(2 / (fan_in + fan_out), rel=0.05)


def test_conv_tasnet_with_prelu_builds_converts_and_runs():
    tf.keras.utils.set_random_seed(3)
    ann = small_conv_tasnet(activation="prelu")
    prelus = [layer for layer in ann.layers if isinstance(layer, tf.keras.layers.PReLU)]
    assert [p.name for p in prelus] == ["bottleneck_relu", "b1_in_relu", "b1_dconv_relu",
                                        "b2_in_relu", "b2_dconv_relu"]
    assert prelus[1].get_weights()[0].shape == (1, 16)  # one slope per channel
    for p in prelus:  # negative slopes, so that the negative part matters
        p.set_weights([np.full_like(p.get_weights()[0], 0.25)])
    relu = small_conv_tasnet()
    assert ann.count_params() == relu.count_params() + 8 + 2 * (16 + 16)
    x = audio(2, 512)
    scaled = scale_activations(ann, 100.0)
    assert rel_err(ann(x).numpy(), scaled(x).numpy()) < 1e-5
    snn = to_spiking(scaled, dt=1e6, seed=0)
    assert rel_err(ann(x).numpy(), snn(x).numpy()) < 1e-3
    names = {layer.name for layer in snn.layers}
    assert {"b1_in_relu", "b1_in_relu_spike"} <= names  # PReLU kept, a signed neuron after it
    # a signed neuron emits negative spikes
    probe = tf.keras.Model(snn.inputs, snn.get_layer("b1_in_relu_spike").output)
    assert float(tf.reduce_min(probe(x))) < 0
    with pytest.raises(ValueError, match="activation must be 'relu' or 'prelu'"):
        models.build_conv_tasnet(frame_len=512, activation="elu")


def test_wave_u_net_input_skip_feeds_the_samples_to_the_readout():
    """input_skip concatenates the input to the last decoder features: the readout gains
    readout_kernel weights, and its input channel alone passes the samples on."""
    plain = models.build_wave_u_net(frame_len=512, depth=3, filters=4)
    skip = models.build_wave_u_net(frame_len=512, depth=3, filters=4, input_skip=True)
    assert skip.count_params() == plain.count_params() + 3  # one more input channel, kernel 3
    readout = skip.get_layer("readout")
    assert skip.get_layer("input_skip").output.shape[-1] == 4 + 1
    kernel, bias = [np.zeros_like(w) for w in readout.get_weights()]
    kernel[1, -1, 0] = 1.0  # centre tap of the audio channel: y = x
    readout.set_weights([kernel, bias])
    x = audio(2, 512)
    np.testing.assert_allclose(skip(x).numpy(), x, atol=1e-6)
    # it converts: at a large dt the SNN matches its ANN
    snn = to_spiking(scale_activations(skip, 1000.0), dt=1e2, seed=0)
    snn.set_weights(scale_activations(skip, 1000.0).get_weights())
    assert rel_err(skip(x).numpy(), snn(x).numpy()) < 1e-3
    # "identity" starts there: the untrained model returns its input
    start = models.build_wave_u_net(frame_len=512, depth=3, filters=4, input_skip="identity")
    np.testing.assert_allclose(start(x).numpy(), x, atol=1e-6)


def test_random_baseline_does_not_inherit_the_identity_start():
    """Table 1's ANN starts as y = x (input_skip: identity); its Random baseline draws every
    kernel and bias afresh, so it is a random map, not the noisy input."""
    from kspikese import config as configs, pipeline

    cfg = configs.load("table1", quick=True)
    assert cfg["model_kwargs"]["input_skip"] == "identity"
    x = audio(1, cfg["frame_len"])
    start, rnd = pipeline.build_ann(cfg, 7), pipeline.random_ann(cfg, 7)
    np.testing.assert_allclose(start(x).numpy(), x, atol=1e-6)
    kernel = rnd.get_layer("readout").kernel.numpy()
    assert np.count_nonzero(kernel[:, :-1]) == kernel[:, :-1].size  # feature weights drawn
    assert rel_err(x, rnd(x).numpy()) > 0.5
    # the same seed gives the same random baseline
    np.testing.assert_array_equal(pipeline.random_ann(cfg, 7).get_weights()[0],
                                  rnd.get_weights()[0])
    # every draw is seeded (no "unseeded initializer" warning) and another seed draws others
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = pipeline.random_ann(cfg, 8)
    assert not np.allclose(other.get_weights()[0], rnd.get_weights()[0])


def test_conv_tasnet_identity_start_returns_its_input():
    """start="identity": encoder filters ±u_i of a tight frame, decoder its scaled adjoint, mask 1.
    Every sample whose two encoder frames lie inside the input is returned exactly; the first
    and last stride/2 samples (frames half in the zero padding) are not."""
    x = audio(2, 512)
    for filters, copies in ((32, 1), (64, 2)):
        net = small_conv_tasnet(start="identity", seed=3, enc_filters=filters)
        y = net(x).numpy()
        np.testing.assert_allclose(y[:, 4:-4], x[:, 4:-4], atol=1e-5)
        assert np.abs(y[:, :4] - x[:, :4]).max() > 1e-2
        kernel = net.get_layer("encoder").kernel.numpy()[:, 0, :]   # (16, N): [Uᵀ, −Uᵀ]
        half = filters // 2
        np.testing.assert_allclose(kernel[:, half:], -kernel[:, :half])
        np.testing.assert_allclose(kernel[:, :half] @ kernel[:, :half].T,   # UᵀU = c·I
                                   copies * np.eye(16), atol=1e-5)
        decoder = net.get_layer("readout").kernel.numpy()[:, 0, :]
        np.testing.assert_allclose(decoder, kernel * 8 / (copies * 16), atol=1e-7)
        mask_kernel, mask_bias = net.get_layer("mask").get_weights()
        assert not mask_kernel.any() and np.all(mask_bias == 1.0)
    # seeded: the same seed gives the same filters, another seed others
    same = small_conv_tasnet(start="identity", seed=3, enc_filters=64)
    other = small_conv_tasnet(start="identity", seed=4, enc_filters=64)
    np.testing.assert_array_equal(same.get_layer("encoder").kernel.numpy()[:, 0, :], kernel)
    assert not np.allclose(other.get_layer("encoder").kernel.numpy()[:, 0, :], kernel)


def test_conv_tasnet_identity_start_is_refused_where_no_tight_frame_fits():
    with pytest.raises(ValueError, match="start must be 'random' or 'identity'"):
        small_conv_tasnet(start="zeros")
    with pytest.raises(ValueError, match=r"enc_filters \(24\) to be a multiple of 2·enc_kernel"):
        small_conv_tasnet(start="identity", enc_filters=24)


def test_table3_starts_conv_tasnet_as_the_identity_and_the_paper_profile_does_not():
    """Table 3's cpu recipe starts from y = x (start: identity); its `paper` profile draws every
    weight, and so does its Random baseline."""
    from kspikese import config as configs, pipeline

    cfg = configs.load("table3", quick=True)
    x = audio(1, cfg["frame_len"])
    start = pipeline.build_ann(cfg, 5)(x).numpy()
    np.testing.assert_allclose(start[:, 4:-4], x[:, 4:-4], atol=1e-5)
    assert rel_err(x, pipeline.random_ann(cfg, 5)(x).numpy()) > 0.5
    paper = configs.load("table3", quick=True, profile="paper")
    assert paper["model_kwargs"]["start"] == "random"
    assert rel_err(x, pipeline.build_ann(paper, 5)(x).numpy()) > 0.5
