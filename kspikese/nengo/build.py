"""Spec -> Keras model -> Nengo network (``nengo_dl.Converter``) -> ``nengo_dl.Simulator``."""

import collections

import nengo_dl
import numpy as np
import tensorflow as tf

from kspikese.nengo import converters
from kspikese.nengo.graph import build_model


class NengoSNN:
    """A spec converted to a Nengo network, ready to run.

    ``keras``: the plain Keras model (:func:`kspikese.nengo.graph.build_model`);
    ``converter``: the ``nengo_dl.Converter`` (``converter.net`` is the network); ``dt``: the
    neurons' dt, which the simulator uses; ``custom``: layer name -> LayerConverter class name for
    the layers converted by :mod:`kspikese.nengo.converters`.

    ``optimize=False`` turns off nengo-dl's graph optimiser (planner, signal sorter and
    simplifications): each layer is already one large operator here, and merging their signals
    copies arrays of millions of elements.  Measured here on the trained models (16,384-sample
    frames): SNN-Wave-U-Net simulator build 41 s -> 12 s, 6 s -> 0.17 s per frame, peak memory
    5.5 -> 2.4 GB; SNN-Conv-TasNet (21.5M neurons) peak memory 19.7 -> 11 GB, 5.2 -> 0.7 s per
    frame.  The outputs are the same.
    """

    def __init__(self, spec, arrays, seed=0, optimize=False):
        self.spec = spec
        self.dt = float(spec["dt"])
        self.seed = int(seed)
        tf.random.set_seed(self.seed)
        np.random.seed(self.seed)
        self.keras = build_model(spec, arrays)
        self.converter = nengo_dl.Converter(
            self.keras, allow_fallback=False, inference_only=True, synapse=None
        )
        with self.converter.net:
            nengo_dl.configure_settings(stateful=False)
            if not optimize:
                from nengo_dl import graph_optimizer as go

                nengo_dl.configure_settings(planner=go.noop_planner, sorter=go.noop_order_signals,
                                            simplifications=[])
        self.input = self.converter.inputs[self.keras.input]
        self.probe = self.converter.outputs[self.keras.output]
        self.custom = {
            layer.name: converters.CUSTOM[type(layer)].__name__
            for layer in self.keras.layers if type(layer) in converters.CUSTOM
        }
        self._sim = None

    def layer_table(self):
        """``[(layer, Keras class, converter class, "custom"|"native")]`` in graph order."""
        rows = []
        for layer in self.keras.layers:
            conv = self.converter._layer_converters.get(layer)  # the converters it used
            kind = "custom" if type(layer) in converters.CUSTOM else "native"
            rows.append((layer.name, type(layer).__name__,
                         type(conv).__name__ if conv is not None else "-", kind))
        return rows

    def counts(self):
        """Nengo objects in the network, by type (all native Nengo objects)."""
        net = self.converter.net
        neurons = sum(e.n_neurons for e in net.all_ensembles)
        types = collections.Counter(type(e.neuron_type).__name__ for e in net.all_ensembles)
        return {"ensembles": len(net.all_ensembles), "neurons": int(neurons),
                "nodes": len(net.all_nodes), "connections": len(net.all_connections),
                "neuron_types": dict(types),
                "tensor_nodes": sum(isinstance(n, nengo_dl.TensorNode) for n in net.all_nodes)}

    @property
    def sim(self):
        if self._sim is None:
            self._sim = nengo_dl.Simulator(
                self.converter.net, dt=self.dt, minibatch_size=1, seed=self.seed,
                progress_bar=False,
            )
        return self._sim

    def __call__(self, x):
        """Run the network for ``spec["timesteps"]`` (1) steps on each row of ``x``
        ``(rows, *input shape)``; returns the probe's last step, ``(rows, *output shape)``."""
        x = np.asarray(x, np.float32)
        steps = int(self.spec.get("timesteps", 1))
        out = []
        for row in x:
            feed = np.broadcast_to(row.reshape(1, 1, -1), (1, steps, row.size))
            y = self.sim.predict_on_batch({self.input: feed}, n_steps=steps)[self.probe]
            out.append(y[0, -1])
        shape = tuple(self.keras.output_shape[1:])
        return np.stack(out).reshape((len(x),) + shape)

    def close(self):
        if self._sim is not None:
            self._sim.close()
            self._sim = None
