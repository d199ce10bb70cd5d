"""``nengo_dl.Converter`` LayerConverters for the layers nengo-dl 3.6.0 cannot convert natively.

Importing this module registers them.  Each builds native Nengo objects only (Ensembles of
``nengo.SpikingRectifiedLinear`` neurons, passthrough and constant Nodes, Connections with
``Dense``/``Sparse``/``ConvolutionTranspose`` transforms, one function Node for the product), so
the Converter runs with ``allow_fallback=False``.  Connections have ``synapse=None``: a spike
reaches the next layer in the same timestep, as in the one-timestep Keras SNN.

Nengo signals are flat vectors; a ``(length, channels)`` feature map is stored channels-last,
element ``(t, c)`` at index ``t · C + c`` (NumPy's C order), as nengo-dl's own converters do.
"""

import nengo
import numpy as np
import tensorflow as tf
from nengo_dl.converter import Converter, LayerConverter

from kspikese.nengo.graph import IFNeurons
from kspikese.neurons import SynapticMultiply

#: Keras layer classes converted here (the rest of the models' layers convert natively)
CUSTOM = {}


def _register(keras_class):
    def wrap(cls):
        CUSTOM[keras_class] = cls
        return Converter.register(keras_class)(cls)

    return wrap


def _value(variable):
    return np.asarray(tf.keras.backend.get_value(variable), np.float32)


def _if_ensemble(n, v0, label):
    """``n`` SpikingRectifiedLinear neurons with gain 1, bias 0 and initial voltages ``v0``:
    each step ``v += max(J, 0) · dt``, emits ``floor(v)`` spikes of height ``1/dt``,
    ``v -= floor(v)``."""
    ens = nengo.Ensemble(
        n, 1,
        neuron_type=nengo.SpikingRectifiedLinear(initial_state={"voltage": v0}),
        gain=nengo.dists.Choice([1.0]), bias=nengo.dists.Choice([0.0]), label=label,
    )  # fmt: skip
    return ens.neurons


@_register(IFNeurons)
class ConvertIFNeurons(LayerConverter):
    """IF neurons (:class:`kspikese.nengo.graph.IFNeurons`) as ``nengo.SpikingRectifiedLinear``.

    * ``relu``: one neuron per element, input current ``J = x``, initial voltage ``v0``; at the
      first step ``y = floor(v0 + max(x, 0) dt) / dt``, the Keras neuron exactly.  The
      simulator's dt must be the layer's (:func:`kspikese.nengo.build.simulator` uses it).
    * ``linear`` (the signed readout): two populations, ``+`` with ``J = x`` and ``v0``, ``-``
      with ``J = -x`` and ``v0' = 1 - v0``, output ``y = y+ - y-``.  For ``x >= 0`` the ``-``
      population stays below threshold (``v0' < 1``) and ``y = floor(v0 + x dt) / dt``; for
      ``x < 0``, ``-floor(1 - v0 - x dt) = floor(v0 + x dt)`` whenever ``v0 + x dt`` is not an
      integer, so ``y`` equals the Keras neuron's ``floor(v0 + x dt) / dt`` except on that
      measure-zero set (and float32 rounding next to it).  ``v0 = 0`` is mapped to
      ``v0' = 1 - 2**-24``.
    """

    allow_fallback = False

    def convert(self, node_id):
        v0 = np.ravel(_value(self.layer.v0))
        label = f"{self.layer.name}.{node_id}"
        if self.layer.activation == "relu":
            neurons = self.add_nengo_obj(
                node_id, activation=nengo.SpikingRectifiedLinear(initial_state={"voltage": v0})
            )
            self.add_connection(node_id, neurons)
            return neurons
        n = v0.size
        out = nengo.Node(size_in=n, label=label)
        pos = _if_ensemble(n, v0, f"{label}.pos")
        neg = _if_ensemble(n, np.minimum(1.0 - v0, np.float32(1 - 2**-24)), f"{label}.neg")
        for ens in (pos, neg):
            self.set_trainable(ens, False)
        self.add_connection(node_id, pos)
        self.add_connection(node_id, neg, transform=-1.0)
        nengo.Connection(pos, out, synapse=self.converter.synapse)
        nengo.Connection(neg, out, transform=-1.0, synapse=self.converter.synapse)
        return out


class _ChannelsLast(LayerConverter):
    """A converter for layers that Nengo's transforms take only as ``channels_last``."""

    @classmethod
    def convertible(cls, layer, converter):
        if layer.data_format != "channels_last":
            return False, f"{layer.name}: only channels_last is supported"
        return super().convertible(layer, converter)


@_register(tf.keras.layers.Conv1DTranspose)
class ConvertConv1DTranspose(_ChannelsLast):
    """``Conv1DTranspose`` as a ``nengo.transforms.ConvolutionTranspose`` connection.

    ``y[s t + j - p, o] += sum_i W[j, o, i] x[t, i]``, plus the bias ``b[o]`` from a constant
    node: the transpose of ``Convolution(kernel W, stride s, padding)`` from ``y``'s shape to
    ``x``'s.  Keras stores the kernel as ``(k, out, in)``, Nengo as ``(k, in, out)``.
    """

    has_weights = True
    allow_fallback = False
    unsupported_args = [("dilation_rate", (1,)), "output_padding"]

    def convert(self, node_id):
        layer = self.layer
        kernel = _value(layer.kernel)
        out_shape = tuple(self.output_shape(node_id))
        bias = np.tile(_value(layer.bias), out_shape[0]) if layer.use_bias else None
        output = self.add_nengo_obj(node_id, biases=bias, activation=layer.activation)
        transform = nengo.transforms.ConvolutionTranspose(
            n_filters=layer.filters,
            input_shape=tuple(self.input_shape(node_id)),
            output_shape=out_shape,
            kernel_size=tuple(layer.kernel_size),
            strides=tuple(layer.strides),
            padding=layer.padding,
            channels_last=True,
            init=np.transpose(kernel, (0, 2, 1)),
        )
        self.add_connection(node_id, output, transform=transform, trainable=True)
        return output


def _same_pad(length_in, length_out, kernel, stride, dilation):
    total = max((length_out - 1) * stride + (kernel - 1) * dilation + 1 - length_in, 0)
    return total // 2


@_register(tf.keras.layers.DepthwiseConv1D)
class ConvertDepthwiseConv1D(_ChannelsLast):
    """``DepthwiseConv1D`` as one ``nengo.Sparse`` connection (nengo 3.2.0's Convolution has
    neither groups nor dilation).

    ``y[t, c M + m] = b[c M + m] + sum_j W[j, c, m] x[s t + d j - p, c]`` for the
    ``k · C · M · L_out`` (output, input) pairs whose input index lies inside ``[0, L_in)``
    (``p`` = TensorFlow's left padding: ``total // 2`` for ``same``, ``(k - 1) d`` for
    ``causal``, 0 for ``valid``).
    """

    has_weights = True
    allow_fallback = False

    def convert(self, node_id):
        layer = self.layer
        kernel = _value(layer.depthwise_kernel)  # (k, C, M)
        k, channels, mult = kernel.shape
        (l_in, c_in), (l_out, c_out) = self.input_shape(node_id), self.output_shape(node_id)
        stride, dilation = int(layer.strides[0]), int(layer.dilation_rate[0])
        if layer.padding == "same":
            pad = _same_pad(l_in, l_out, k, stride, dilation)
        elif layer.padding == "causal":
            pad = (k - 1) * dilation
        else:
            pad = 0
        t, j, c, m = np.meshgrid(np.arange(l_out), np.arange(k), np.arange(channels),
                                 np.arange(mult), indexing="ij")
        pos = t * stride + j * dilation - pad
        inside = (pos >= 0) & (pos < l_in)
        rows = (t * c_out + c * mult + m)[inside]
        cols = (pos * c_in + c)[inside]
        values = np.broadcast_to(kernel[None], t.shape)[inside]
        bias = np.tile(_value(layer.bias), l_out) if layer.use_bias else None
        output = self.add_nengo_obj(node_id, biases=bias, activation=layer.activation)
        transform = nengo.Sparse(
            (l_out * c_out, l_in * c_in), indices=np.stack([rows, cols], axis=1), init=values
        )
        self.add_connection(node_id, output, transform=transform, trainable=True)
        return output


@_register(tf.keras.layers.Rescaling)
class ConvertRescaling(LayerConverter):
    """``Rescaling``: ``y = scale · x + offset`` (a scalar transform, offset from a constant
    node)."""

    allow_fallback = False

    def convert(self, node_id):
        scale = float(np.asarray(self.layer.scale))
        offset = float(np.asarray(self.layer.offset))
        n = int(np.prod(self.output_shape(node_id)))
        output = self.add_nengo_obj(node_id, biases=np.full(n, offset) if offset else None)
        self.add_connection(node_id, output, transform=scale)
        return output


@_register(SynapticMultiply)
class ConvertSynapticMultiply(LayerConverter):
    """:class:`kspikese.neurons.SynapticMultiply` (linear): ``y = scale · x0 · x1`` element-wise,
    computed by a ``nengo.Node`` whose function multiplies the two halves of its input (a product
    of two signals is not a linear transform, so it cannot be a Connection)."""

    allow_fallback = False

    def convert(self, node_id):
        from kspikese.neurons import activation_name

        if activation_name(self.layer.activation) != "linear":
            raise TypeError(
                f"layer {self.layer.name!r}: SynapticMultiply with an activation; the spec "
                "gives its neuron as a separate IF layer"
            )
        n = int(np.prod(self.output_shape(node_id)))
        scale = np.float32(self.layer.scale)

        def product(t, x, n=n, scale=scale):
            return scale * x[..., :n] * x[..., n:]

        node = nengo.Node(product, size_in=2 * n, size_out=n,
                          label=f"{self.layer.name}.{node_id}")
        self.add_connection(node_id, node[:n], input_idx=0)
        self.add_connection(node_id, node[n:], input_idx=1)
        return node
