"""The Nengo export in the nengo environment (.venv-nengo, TF 2.12 + nengo-dl 3.6.0).

Run with ``.venv-nengo/bin/python -m pytest -p no:nengo tests/test_nengo.py`` (``make
nengo-env`` first; ``-p no:nengo`` keeps nengo's own pytest plugin out); skipped in the main
environment, where nengo-dl cannot be imported.  The cross-environment path (``.keras`` saved
by TF 2.21 -> export-nengo -> nengo-eval) is tests/test_nengo_spec.py.
"""

import numpy as np
import pytest

pytest.importorskip("nengo_dl", reason="needs the nengo environment: make nengo-env, then "
                    ".venv-nengo/bin/python -m pytest -p no:nengo tests/test_nengo.py")

import kspikese  # noqa: E402,F401
import nengo  # noqa: E402
import tensorflow as tf  # noqa: E402

from kspikese import to_spiking  # noqa: E402
from kspikese.convert import scale_activations  # noqa: E402
from kspikese.models import build_conv_tasnet, build_wave_u_net  # noqa: E402
from kspikese.nengo import spec as S  # noqa: E402
from kspikese.nengo.build import NengoSNN  # noqa: E402
from kspikese.nengo.graph import IFNeurons  # noqa: E402

pytestmark = pytest.mark.nengo


def _run(model, x):
    spec, arrays = S.describe(model)
    net = NengoSNN(spec, arrays)
    try:
        return net, net(x)
    finally:
        net.close()


def test_wave_u_net_snn_matches_keras_snn():
    tf.keras.utils.set_random_seed(0)  # Python, NumPy, TF: all feed the initialisers
    ann = build_wave_u_net(frame_len=256, depth=2, filters=4)
    snn = to_spiking(scale_activations(ann, 1e4), dt=0.001, seed=0)
    x = np.random.default_rng(0).normal(0, 0.3, size=(2, 256, 1)).astype(np.float32)
    y_keras = snn(x).numpy()
    net, y_nengo = _run(snn, x)
    assert np.std(y_keras) > 0.01  # the SNN spikes, so the comparison means something
    np.testing.assert_allclose(y_nengo, y_keras, rtol=0, atol=1e-6)
    counts = net.counts()
    assert counts["tensor_nodes"] == 0
    assert set(counts["neuron_types"]) == {"SpikingRectifiedLinear"}
    assert {"u1_up", "u1_conv", "readout_spike"} <= set(net.custom)
    assert net.custom["u1_up"] == "ConvertConv1DTranspose"


def test_conv_tasnet_snn_matches_keras_snn():
    tf.keras.utils.set_random_seed(1)  # Python, NumPy, TF: all feed the initialisers
    ann = build_conv_tasnet(frame_len=64, enc_filters=8, enc_kernel=4, stride=2, bottleneck=6,
                            hidden=10, blocks=3, repeats=1)
    rng = np.random.default_rng(1)
    for layer in ann.layers:  # non-trivial BatchNorm statistics
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, g.shape), rng.normal(0, 0.5, b.shape),
                               rng.normal(0, 0.3, m.shape), rng.uniform(0.5, 2, v.shape)])
    snn = to_spiking(scale_activations(ann, 30.0), dt=1.0, seed=0)
    x = rng.normal(0, 0.3, size=(1, 64, 1)).astype(np.float32)
    y_keras = snn(x).numpy()
    net, y_nengo = _run(snn, x)
    assert np.std(y_keras) > 0
    assert {"DepthwiseConv1D", "SynapticMultiply", "Conv1DTranspose"} <= {
        type(net.keras.get_layer(n)).__name__ for n in net.custom}
    # BatchNorm is folded to scale·x + shift in Nengo, which rounds differently from Keras'
    # (x - mean)/sqrt(var + eps)·gamma + beta; a voltage on an integer boundary can then give
    # one spike more or less.  Almost every sample must agree exactly.
    close = np.isclose(y_nengo, y_keras, rtol=0, atol=1e-5)
    assert close.mean() >= 0.95, (close.mean(), np.abs(y_nengo - y_keras).max())


@pytest.mark.parametrize("padding,stride,length", [("same", 2, 7), ("valid", 2, 7),
                                                   ("same", 1, 9), ("valid", 3, 5)])
def test_conv1d_transpose_converter(padding, stride, length):
    """Linear Conv1DTranspose -> ConvolutionTranspose, then a ReLU IF layer with a large dt so the
    spike count carries the value (dt = 1e-4 -> steps of 1e4 / 1e4 = exact to 1e-4)."""
    tf.keras.utils.set_random_seed(2)  # Python, NumPy, TF: all feed the initialisers
    inp = tf.keras.Input((length, 3))
    y = tf.keras.layers.Conv1DTranspose(4, 3, strides=stride, padding=padding,
                                        bias_initializer="random_normal", name="up")(inp)
    model = tf.keras.Model(inp, y)
    x = np.random.default_rng(2).normal(size=(1, length, 3)).astype(np.float32)
    from nengo_dl import Converter

    conv = Converter(model, allow_fallback=False, inference_only=True)
    with nengo_dl_sim(conv.net) as sim:
        out = sim.predict_on_batch({conv.inputs[inp]: x.reshape(1, 1, -1)})[conv.outputs[y]]
    np.testing.assert_allclose(out.reshape(model.output_shape[1:]), model(x).numpy()[0],
                               rtol=1e-5, atol=1e-5)


def nengo_dl_sim(net, dt=0.001):
    import nengo_dl

    return nengo_dl.Simulator(net, dt=dt, minibatch_size=1, progress_bar=False, seed=0)


@pytest.mark.parametrize("dt", [0.001, 1.0])
def test_signed_readout_neurons(dt):
    """The linear IF readout (two SpikingRectifiedLinear populations) gives floor(v0 + x dt)/dt
    for inputs of both signs."""
    rng = np.random.default_rng(3)
    v0 = rng.uniform(0, 1, size=(50, 1)).astype(np.float32)
    x = (rng.uniform(-5, 5, size=(1, 50, 1)) / dt).astype(np.float32)
    inp = tf.keras.Input((50, 1))
    y = IFNeurons("linear", dt, v0, name="readout_spike")(inp)
    model = tf.keras.Model(inp, y)
    from nengo_dl import Converter

    conv = Converter(model, allow_fallback=False, inference_only=True)
    ens = conv.net.all_ensembles
    assert len(ens) == 2 and all(isinstance(e.neuron_type, nengo.SpikingRectifiedLinear)
                                 for e in ens)
    with nengo_dl_sim(conv.net, dt=dt) as sim:
        out = sim.predict_on_batch({conv.inputs[inp]: x.reshape(1, 1, -1)})[conv.outputs[y]]
    expected = np.floor(v0 + x[0] * np.float32(dt)) / np.float32(dt)
    assert (expected < 0).any() and (expected > 0).any()
    np.testing.assert_allclose(out.reshape(50, 1), expected, rtol=0, atol=1e-6 / dt)
    np.testing.assert_allclose(model(x).numpy()[0], expected, rtol=0, atol=1e-6 / dt)


def test_unsupported_layer_is_named():
    inp = tf.keras.Input((16, 1))
    h = tf.keras.layers.Conv1D(2, 3, padding="same", activation="relu", name="c")(inp)
    h = tf.keras.layers.Cropping1D(1, name="crop_me")(h)
    snn = to_spiking(tf.keras.Model(inp, h), dt=0.001, seed=0)
    with pytest.raises(S.UnsupportedLayer, match="crop_me"):
        S.describe(snn)


def test_converter_refuses_fallback():
    """A layer type with neither a native nor a kspikese converter is refused, by name."""
    from nengo_dl import Converter

    inp = tf.keras.Input((8, 2))
    y = tf.keras.layers.Cropping1D(1, name="crop_me")(inp)
    with pytest.raises(TypeError, match="crop_me"):
        Converter(tf.keras.Model(inp, y), allow_fallback=False, inference_only=True)


def test_cli_errors_name_the_file(tmp_path):
    from kspikese.cli import main

    with pytest.raises(SystemExit, match="missing.keras: no such checkpoint"):
        main(["export-nengo", str(tmp_path / "missing.keras"), "-o", str(tmp_path / "net")])
    with pytest.raises(SystemExit, match=r"empty.*spec\.json"):
        main(["nengo-eval", str(tmp_path / "empty")])
