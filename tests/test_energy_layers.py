"""Every counted layer type against a hand count on a small layer, and the registry's rules."""

import numpy as np
import pytest

import kspikese  # noqa: F401
import keras_spiking
import tensorflow as tf
from kspikese import energy

L = tf.keras.layers
C = energy.Counts


def counts_of(layer, *shapes):
    """The counts of ``layer`` applied once to inputs of ``shapes`` (non-batch)."""
    inputs = [tf.keras.Input(s) for s in shapes]
    out = layer(inputs if len(inputs) > 1 else inputs[0])
    model = tf.keras.Model(inputs, out)
    (counts,) = [c for lay, _, c in energy.count_model(model) if lay is layer]
    return counts


# (layer factory, input shapes, expected counts), each worked out by hand in the comment
HAND_COUNTS = {
    # 5 outputs x 4 filters x k=3 x 2 in
    "Conv1D": (lambda: L.Conv1D(4, 3), [(7, 2)], C(5 * 4 * 3 * 2)),
    # grouped: 6 outputs x 4 filters x 3 taps x (4 in / 2 groups); ReLU: 24 neurons
    "Conv1D groups": (lambda: L.Conv1D(4, 3, padding="same", groups=2, activation="relu"),
                      [(6, 4)], C(6 * 4 * 3 * 2, 24, False)),
    # stride 2, same: 3x3 outputs x 5 filters x 3x3 taps x 2 in
    "Conv2D": (lambda: L.Conv2D(5, 3, strides=2, padding="same"), [(6, 6, 2)],
               C(3 * 3 * 5 * 9 * 2)),
    # valid: 2x2x2 outputs x 3 filters x 2x2x2 taps x 1 in
    "Conv3D": (lambda: L.Conv3D(3, 2), [(3, 3, 3, 1)], C(8 * 3 * 8 * 1)),
    # each of 5 inputs x 2 channels scatters into k=4 taps x 3 outputs (stride 2: NOT x2)
    "Conv1DTranspose": (lambda: L.Conv1DTranspose(3, 4, strides=2), [(5, 2)], C(5 * 2 * 4 * 3)),
    # 3x3 inputs x 2 channels x 2x2 taps x 4 filters
    "Conv2DTranspose": (lambda: L.Conv2DTranspose(4, 2, strides=2), [(3, 3, 2)],
                        C(9 * 2 * 4 * 4)),
    # 2x2x2 inputs x 1 channel x 3x3x3 taps x 2 filters
    "Conv3DTranspose": (lambda: L.Conv3DTranspose(2, 3, strides=3), [(2, 2, 2, 1)],
                        C(8 * 1 * 27 * 2)),
    # 18 outputs x 4 channels x multiplier 2 x 3 taps
    "DepthwiseConv1D": (lambda: L.DepthwiseConv1D(3, depth_multiplier=2), [(20, 4)],
                        C(18 * 8 * 3)),
    # 4x4 outputs x 3 channels x 3x3 taps
    "DepthwiseConv2D": (lambda: L.DepthwiseConv2D(3), [(6, 6, 3)], C(16 * 3 * 9)),
    # depthwise 8 outputs x 8 mid x 3 taps + pointwise 8 outputs x 8 mid x 5 filters
    "SeparableConv1D": (lambda: L.SeparableConv1D(5, 3, depth_multiplier=2), [(10, 4)],
                        C(8 * 8 * 3 + 8 * 8 * 5)),
    # 2x2 outputs: depthwise 4 x 2 x 9 + pointwise 4 x 2 x 3
    "SeparableConv2D": (lambda: L.SeparableConv2D(3, 3), [(4, 4, 2)], C(4 * 2 * 9 + 4 * 2 * 3)),
    # 5 in x 3 units; softmax: 3 neurons
    "Dense": (lambda: L.Dense(3, activation="softmax"), [(5,)], C(15, 3, False)),
    # per position: 4 positions x 5 in x 3 units
    "Dense 3-D": (lambda: L.Dense(3), [(4, 5)], C(4 * 5 * 3)),
    # 4 outputs x 2 channels x window 2
    "MaxPooling1D": (lambda: L.MaxPooling1D(2), [(8, 2)], C(4 * 2 * 2)),
    # valid, stride 2: 3x3 outputs x 2 channels x 3x3 window
    "MaxPooling2D": (lambda: L.MaxPooling2D(3, strides=2), [(7, 7, 2)], C(9 * 2 * 9)),
    "MaxPooling3D": (lambda: L.MaxPooling3D(2), [(4, 4, 4, 1)], C(8 * 8)),
    "AveragePooling1D": (lambda: L.AveragePooling1D(3), [(9, 2)], C(3 * 2 * 3)),
    "AveragePooling2D": (lambda: L.AveragePooling2D(2), [(4, 4, 3)], C(4 * 3 * 4)),
    "AveragePooling3D": (lambda: L.AveragePooling3D(2), [(2, 2, 2, 5)], C(5 * 8)),
    # every input element read once
    "GlobalAveragePooling1D": (lambda: L.GlobalAveragePooling1D(), [(6, 4)], C(24)),
    "GlobalAveragePooling2D": (lambda: L.GlobalAveragePooling2D(), [(4, 4, 3)], C(48)),
    "GlobalMaxPooling2D": (lambda: L.GlobalMaxPooling2D(), [(2, 3, 5)], C(30)),
    "GlobalMaxPooling3D": (lambda: L.GlobalMaxPooling3D(), [(2, 2, 2, 2)], C(16)),
    # routing: free
    "ZeroPadding1D": (lambda: L.ZeroPadding1D(2), [(4, 2)], C()),
    "ZeroPadding2D": (lambda: L.ZeroPadding2D(1), [(3, 3, 2)], C()),
    "ZeroPadding3D": (lambda: L.ZeroPadding3D(1), [(2, 2, 2, 1)], C()),
    "Cropping1D": (lambda: L.Cropping1D(1), [(4, 2)], C()),
    "Cropping2D": (lambda: L.Cropping2D(1), [(4, 4, 2)], C()),
    "Cropping3D": (lambda: L.Cropping3D(1), [(4, 4, 4, 1)], C()),
    "UpSampling1D": (lambda: L.UpSampling1D(2), [(4, 2)], C()),
    "UpSampling2D nearest": (lambda: L.UpSampling2D(2), [(3, 3, 2)], C()),
    # bilinear: 6x6x2 outputs x 4 neighbours
    "UpSampling2D bilinear": (lambda: L.UpSampling2D(2, interpolation="bilinear"), [(3, 3, 2)],
                              C(4 * 6 * 6 * 2)),
    "UpSampling3D": (lambda: L.UpSampling3D(2), [(2, 2, 2, 1)], C()),
    "Reshape": (lambda: L.Reshape((2, 6)), [(3, 4)], C()),
    "Flatten": (lambda: L.Flatten(), [(3, 4)], C()),
    "Permute": (lambda: L.Permute((2, 1)), [(3, 4)], C()),
    "Concatenate": (lambda: L.Concatenate(), [(3, 2), (3, 5)], C()),
    "Dropout": (lambda: L.Dropout(0.5), [(6,)], C()),
    "SpatialDropout1D": (lambda: L.SpatialDropout1D(0.5), [(4, 3)], C()),
    # merges of m inputs: (m - 1) ops per output element
    "Add": (lambda: L.Add(), [(4, 2)] * 3, C(2 * 8)),
    "Subtract": (lambda: L.Subtract(), [(5,)] * 2, C(5)),
    "Average": (lambda: L.Average(), [(2, 3)] * 2, C(6)),
    "Multiply": (lambda: L.Multiply(), [(2, 3)] * 2, C(6)),
    # broadcast (squeeze-and-excitation): counted at the output's 4x4x3
    "Multiply broadcast": (lambda: L.Multiply(), [(4, 4, 3), (1, 1, 3)], C(48)),
    "Maximum": (lambda: L.Maximum(), [(3,)] * 4, C(9)),
    # BatchNormalization on an input (not after a linear layer): one MAC per element
    "BatchNormalization": (lambda: L.BatchNormalization(), [(4, 3)], C(12)),
    # 3 per element: sum, sum of squares, affine
    "LayerNormalization": (lambda: L.LayerNormalization(), [(4, 6)], C(72)),
    # activations: one neuron update per element
    "Activation relu": (lambda: L.Activation("relu"), [(5, 2)], C(0, 10, False)),
    "Activation linear": (lambda: L.Activation("linear"), [(5, 2)], C()),
    "ReLU": (lambda: L.ReLU(), [(7,)], C(0, 7, False)),
    "ReLU6": (lambda: L.ReLU(max_value=6.0), [(2, 3)], C(0, 6, False)),
    "LeakyReLU": (lambda: L.LeakyReLU(0.1), [(4,)], C(0, 4, False)),
    "PReLU": (lambda: L.PReLU(), [(3, 2)], C(0, 6, False)),
    "ELU": (lambda: L.ELU(), [(3,)], C(0, 3, False)),
    "Softmax": (lambda: L.Softmax(), [(4,)], C(0, 4, False)),
    "Rescaling": (lambda: L.Rescaling(2.0), [(4,)], C()),
    # SpikingActivation on (time, 3, 2): 6 neurons per timestep
    "SpikingActivation": (lambda: keras_spiking.SpikingActivation("relu", dt=0.01, seed=0),
                          [(1, 3, 2)], C(0, 6)),
    "SpikingActivation any time": (lambda: keras_spiking.SpikingActivation("relu", seed=0),
                                   [(None, 5)], C(0, 5)),
    "Lowpass": (lambda: keras_spiking.Lowpass(0.01, dt=0.001), [(None, 4)], C(0, 4)),
}


@pytest.mark.parametrize("name", list(HAND_COUNTS))
def test_hand_count(name):
    make, shapes, expected = HAND_COUNTS[name]
    assert counts_of(make(), *shapes) == expected


def test_folded_batch_normalization_is_free_but_not_when_its_conv_output_is_shared():
    inp = tf.keras.Input((6, 2))
    conv, bn = L.Conv1D(3, 1), L.BatchNormalization()
    alone = tf.keras.Model(inp, bn(conv(inp)))
    assert [c for lay, _, c in energy.count_model(alone) if lay is bn] == [C()]
    conv2, bn2 = L.Conv1D(3, 1), L.BatchNormalization()
    h = conv2(inp)
    shared = tf.keras.Model(inp, L.Add()([bn2(h), h]))  # folding would change the other branch
    assert [c for lay, _, c in energy.count_model(shared) if lay is bn2] == [C(18)]


def test_shared_layer_is_counted_once_per_application():
    inp = tf.keras.Input((4,))
    dense = L.Dense(4)
    model = tf.keras.Model(inp, dense(dense(inp)))
    est = energy.estimate(model)
    assert {r["name"]: r for r in est.layers}[dense.name]["connections"] == 2 * 16


def test_every_listed_layer_type_in_one_model_is_counted():
    # a small hand-built model holding each listed layer type, priced as ANN and (noise) SNN
    img = tf.keras.Input((8, 8, 3), name="image")
    x = L.Rescaling(1 / 255.0)(img)
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(4, 3, activation="relu")(x)
    x = L.BatchNormalization()(x)
    a = L.DepthwiseConv2D(3, padding="same")(x)
    a = L.ReLU(max_value=6.0)(a)
    b = L.SeparableConv2D(4, 3, padding="same")(x)
    b = L.LeakyReLU(0.1)(b)
    x = L.Add()([a, b])
    x = L.Subtract()([x, a])
    x = L.Average()([x, b])
    x = L.Multiply()([x, L.Activation("sigmoid")(b)])
    x = L.Concatenate()([x, a])
    x = L.MaxPooling2D(2)(x)
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.UpSampling2D(2)(x)
    x = L.Cropping2D(1)(x)
    x = L.Conv2DTranspose(4, 2, strides=2)(x)
    x = L.PReLU()(x)
    x = L.LayerNormalization()(x)
    x = L.Dropout(0.2)(x)
    seq = L.Reshape((16, 4))(L.Permute((2, 1, 3))(x))
    s = L.Conv1D(4, 3, padding="same")(seq)
    s = L.Conv1DTranspose(4, 3, strides=2, padding="same")(s)
    s = L.DepthwiseConv1D(3)(s)
    s = L.SeparableConv1D(4, 3)(s)
    s = L.MaxPooling1D(2)(L.UpSampling1D(2)(L.ZeroPadding1D(1)(L.Cropping1D(1)(s))))
    s = L.AveragePooling1D(2)(s)
    vol = L.Reshape((2, 2, 7, 2))(L.Flatten()(s))
    v = L.Conv3D(2, 1)(vol)
    v = L.Conv3DTranspose(2, 1)(v)
    v = L.GlobalAveragePooling3D()(L.MaxPooling3D((1, 1, 2))(v))
    g = L.GlobalMaxPooling2D()(x)
    h = L.Concatenate()([v, g, L.GlobalAveragePooling1D()(s)])
    out = L.Dense(3, activation="softmax")(L.Activation("elu")(h))
    model = tf.keras.Model(img, out)
    ann = energy.estimate(model)
    assert ann.connections > 0 and ann.totals["cpu"] == pytest.approx(
        8.6e-9 * (ann.connections + ann.neurons))
    counted = {r["type"] for r in ann.layers}
    assert {"Conv2DTranspose", "SeparableConv1D", "PReLU", "LayerNormalization",
            "GlobalAveragePooling3D", "Subtract"} <= counted
    snn = energy.estimate(model, devices=("cpu", "loihi"))
    assert snn.rates_from.startswith("default example") and snn.totals["loihi"] > 0


def test_uncounted_types_are_all_named_and_registering_counts_them():
    class Doubler(L.Layer):
        def call(self, x):
            return 2.0 * x

    class Halver(L.Layer):
        def call(self, x):
            return 0.5 * x

    inp = tf.keras.Input((4,))
    model = tf.keras.Model(inp, Halver(name="half")(Doubler(name="double")(inp)))
    with pytest.raises(energy.UncountedLayerError, match="Doubler.*'double'.*Halver.*'half'"):
        energy.estimate(model)

    class Scaler(L.Layer):
        """A subclass of a registered class is counted by its base's function (MRO)."""

    @energy.register_layer(Doubler, Halver, Scaler)
    def scale_stats(node):
        return energy.Counts(connections=energy.registry.output_elements(node))

    try:
        assert energy.estimate(model).connections == 4 + 4

        class SubDoubler(Doubler):
            pass

        sub = SubDoubler()
        sub_model = tf.keras.Model(inp, sub(inp))
        assert energy.stats_function(sub) is scale_stats
        assert energy.estimate(sub_model).connections == 4
    finally:
        for cls in (Doubler, Halver, Scaler):
            energy.registry.STATS.pop(cls)


def test_any_input_shape_and_multi_input_models():
    # images of a size fixed only by the example data, two inputs
    img, vec = tf.keras.Input((None, None, 3)), tf.keras.Input((2,))
    f = L.GlobalAveragePooling2D()(L.Conv2D(2, 3, padding="same")(img))
    model = tf.keras.Model([img, vec], L.Dense(1)(L.Concatenate()([f, vec])))
    data = [np.ones((2, 5, 6, 3), np.float32), np.ones((2, 2), np.float32)]
    est = energy.estimate(model, data, devices=("cpu", "loihi"))
    assert est.input_shape == [(5, 6, 3), (2,)]
    assert est.connections == 5 * 6 * 2 * 9 * 3 + 5 * 6 * 2 + 4 * 1
    assert est.n_examples == 2


def test_sequential_model_of_open_length_takes_its_size_from_the_data():
    model = tf.keras.Sequential([tf.keras.Input((None, 2)), L.Conv1D(3, 3)])
    est = energy.estimate(model, np.ones((1, 10, 2), np.float32))
    assert est.input_shape == [(10, 2)] and est.connections == 8 * 3 * 3 * 2
    assert est.rates_from == "none" and est.n_examples == 0  # cpu only: no rates were needed
