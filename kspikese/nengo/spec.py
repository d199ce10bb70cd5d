"""A Keras SNN as a neutral, Keras-version-free *spec*: ``spec.json`` + ``weights.npz``.

The spec lists the model's operations in graph order; each is ``{"name", "op", "inputs",
"config"}`` and its arrays are ``weights.npz["<name>/<array>"]``:

==================  ==========================================================================
op                  computes (``x`` its input, per example)
==================  ==========================================================================
input               the model's input, ``config.shape`` (no batch axis)
conv1d              ``y[t, o] = b[o] + sum_{j, i} W[j, i, o] x[s t + j - p, i]`` (Keras Conv1D,
                    linear; ``kernel`` (k, in, out), ``bias``)
conv1d_transpose    ``y[s t + j - p, o] += W[j, o, i] x[t, i]`` plus ``b[o]`` (Keras
                    Conv1DTranspose, linear; ``kernel`` (k, out, in), ``bias``)
depthwise_conv1d    ``y[t, c M + m] = b[c M + m] + sum_j W[j, c, m] x[s t + d j - p, c]``
                    (``kernel`` (k, C, M), ``bias``)
batchnorm           ``gamma (x - mean) / sqrt(var + eps) + beta`` per channel (inference)
rescaling           ``scale x + offset``
add, concatenate    sum / channel concatenation of the inputs
reshape             ``x`` with the shape ``config.shape``
synaptic_multiply   ``scale x0 x1`` (:class:`kspikese.neurons.SynapticMultiply`, linear)
spiking             one timestep of an IF neuron per element: ``v = v0 + f(x) dt``,
                    ``y = floor(v) / dt`` with ``f`` = ReLU or identity (``config.activation``),
                    ``dt`` = ``config.dt``, ``v0`` = ``weights["<name>/v0"]`` (the seeded initial
                    voltages the Keras SNN uses)
==================  ==========================================================================

:func:`describe` builds it from a Keras SNN with ``timesteps=1`` (the paper's setting), folding
each neuron's ``<name>_to_time`` / ``<name>_v0`` / ``<name>_spike`` / ``<name>_from_time`` layers
into one ``spiking`` op.  Layers it has no op for raise :class:`UnsupportedLayer` naming them.

Run as ``python -m kspikese.nengo.spec CHECKPOINT OUT_DIR [--data ...]`` in the environment that
saved the checkpoint: it writes the spec and, with ``--utterances N``, ``reference.npz`` (the
Keras SNN's outputs on N test utterances, enhanced the way :func:`kspikese.enhance` does).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

FORMAT = "kspikese-nengo-spec/1"
SPEC = "spec.json"
WEIGHTS = "weights.npz"
REFERENCE = "reference.npz"


class UnsupportedLayer(ValueError):
    """A layer of the model has no op in the spec (and so no Nengo equivalent here)."""


def _activation_name(activation):
    from kspikese import neurons

    return neurons.activation_name(activation)


def _shape(t):
    return [int(d) for d in t.shape[1:]]


def _is_time_reshape(layer, node):
    """A Reshape that only adds or drops a leading time axis of length 1."""
    import tensorflow as tf

    if not isinstance(layer, tf.keras.layers.Reshape):
        return False
    shape_in = _shape(tf.nest.flatten(node.call_args)[0])
    shape_out = _shape(node.outputs if not isinstance(node.outputs, list) else node.outputs[0])
    return shape_out == [1] + shape_in or shape_in == [1] + shape_out


def _initial_voltage(layer, node, inputs_shape):
    """The neuron's initial voltages, shape ``inputs_shape`` (one example, one timestep)."""
    import tensorflow as tf

    from kspikese import neurons

    state = node.call_kwargs.get("initial_state")
    if state is not None:
        (v0_tensor,) = tf.nest.flatten(state)
        v0_layer = v0_tensor._keras_history.layer
        if not isinstance(v0_layer, neurons.InitialVoltage) or v0_layer.fold:
            raise UnsupportedLayer(
                f"layer {layer.name!r}: its initial_state comes from {v0_layer.name!r} "
                f"({type(v0_layer).__name__}); expected a fixed-length kspikese InitialVoltage"
            )
        v0 = v0_layer(tf.zeros([1, 1] + list(inputs_shape)))
    else:  # KerasSpiking's own (seeded) draw
        v0 = layer.layer.cell.get_initial_state(batch_size=1, dtype=tf.float32)
    v0 = np.asarray(v0, np.float32).reshape(inputs_shape)
    return v0


def describe(model):
    """``(spec, arrays)`` for the Keras SNN ``model`` (see the module docstring)."""
    import tensorflow as tf

    import keras_spiking
    from kspikese import neurons
    from kspikese.convert.graph import as_functional, nodes

    L = tf.keras.layers
    model = as_functional(model, "nengo spec")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayer(f"model {model.name!r}: needs exactly one input and one output")
    names = {}  # id(Keras tensor) -> op name producing it
    ops, arrays, unsupported = [], {}, []
    dts = set()

    def add(name, op, inputs, config=None, **weights):
        ops.append({"name": name, "op": op, "inputs": inputs, "config": config or {}})
        for key, value in weights.items():
            arrays[f"{name}/{key}"] = np.asarray(value, np.float32)
        return name

    inp = model.inputs[0]
    if not all(d is not None for d in inp.shape[1:]):
        raise UnsupportedLayer(
            f"model {model.name!r}: input shape {tuple(inp.shape)} must be fixed (build the model "
            "with a frame_len)"
        )
    names[id(inp)] = add(inp._keras_history.layer.name, "input", [], {"shape": _shape(inp)})

    for node in nodes(model):
        layer = node.layer
        if isinstance(layer, L.InputLayer):
            continue
        in_tensors = [t for t in tf.nest.flatten(node.call_args)
                      if tf.keras.backend.is_keras_tensor(t)]
        outs = tf.nest.flatten(node.outputs)
        if isinstance(layer, neurons.InitialVoltage):
            continue  # read by the neuron it feeds
        try:
            in_names = [names[id(t)] for t in in_tensors]
        except KeyError:
            unsupported.append(f"{layer.name!r} (its input comes from an unsupported layer)")
            continue
        name = layer.name
        act = getattr(layer, "activation", None)
        act_name = _activation_name(act) if act is not None else "linear"
        if act_name != "linear" and not isinstance(layer, keras_spiking.SpikingActivation):
            unsupported.append(
                f"{name!r} ({type(layer).__name__} with activation {act_name!r}: convert the "
                "model with kspikese.to_spiking first, so every ReLU is a spiking neuron)"
            )
            continue
        w = layer.get_weights()
        if _is_time_reshape(layer, node):
            names[id(outs[0])] = in_names[0]
            continue
        if isinstance(layer, keras_spiking.SpikingActivation):
            if act_name not in ("relu", "linear"):
                unsupported.append(f"{name!r} (SpikingActivation {act_name!r}: only relu/linear)")
                continue
            shape = _shape(in_tensors[0])
            if shape[0] != 1:
                unsupported.append(f"{name!r} (SpikingActivation over {shape[0]} timesteps; "
                                   "only 1 is supported)")
                continue
            v0 = _initial_voltage(layer, node, shape[1:])
            dts.add(float(layer.dt))
            add(name, "spiking", in_names, {"activation": act_name, "dt": float(layer.dt)}, v0=v0)
        elif isinstance(layer, L.Conv1DTranspose):
            if layer.output_padding is not None or tuple(layer.dilation_rate) != (1,):
                unsupported.append(f"{name!r} (Conv1DTranspose with output_padding/dilation)")
                continue
            add(name, "conv1d_transpose", in_names,
                {"filters": layer.filters, "kernel_size": int(layer.kernel_size[0]),
                 "strides": int(layer.strides[0]), "padding": layer.padding,
                 "output_shape": _shape(outs[0]), "use_bias": bool(layer.use_bias)},
                kernel=w[0], **({"bias": w[1]} if layer.use_bias else {}))
        elif isinstance(layer, L.DepthwiseConv1D):
            add(name, "depthwise_conv1d", in_names,
                {"kernel_size": int(layer.kernel_size[0]), "strides": int(layer.strides[0]),
                 "dilation_rate": int(layer.dilation_rate[0]), "padding": layer.padding,
                 "depth_multiplier": int(layer.depth_multiplier),
                 "use_bias": bool(layer.use_bias)},
                kernel=w[0], **({"bias": w[1]} if layer.use_bias else {}))
        elif isinstance(layer, L.Conv1D):
            if int(getattr(layer, "groups", 1) or 1) != 1:
                unsupported.append(f"{name!r} (grouped Conv1D; nengo 3.2.0 has no groups)")
                continue
            add(name, "conv1d", in_names,
                {"filters": layer.filters, "kernel_size": int(layer.kernel_size[0]),
                 "strides": int(layer.strides[0]), "dilation_rate": int(layer.dilation_rate[0]),
                 "padding": layer.padding, "use_bias": bool(layer.use_bias)},
                kernel=w[0], **({"bias": w[1]} if layer.use_bias else {}))
        elif isinstance(layer, L.BatchNormalization):
            axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
            if axis not in (-1, [len(outs[0].shape) - 1], len(outs[0].shape) - 1):
                unsupported.append(f"{name!r} (BatchNormalization over axis {axis})")
                continue
            stats = dict(zip([v.name.split("/")[-1].split(":")[0] for v in layer.weights], w))
            channels = int(outs[0].shape[-1])
            add(name, "batchnorm", in_names, {"epsilon": float(layer.epsilon)},
                gamma=stats.get("gamma", np.ones(channels)),
                beta=stats.get("beta", np.zeros(channels)),
                moving_mean=stats["moving_mean"], moving_variance=stats["moving_variance"])
        elif isinstance(layer, L.Rescaling):
            add(name, "rescaling", in_names,
                {"scale": float(np.asarray(layer.scale)),
                 "offset": float(np.asarray(layer.offset))})
        elif isinstance(layer, L.Add):
            add(name, "add", in_names)
        elif isinstance(layer, L.Concatenate):
            axis = layer.axis if layer.axis >= 0 else len(outs[0].shape) + layer.axis
            if axis != len(outs[0].shape) - 1:
                unsupported.append(f"{name!r} (Concatenate on axis {layer.axis}, not channels)")
                continue
            add(name, "concatenate", in_names)
        elif isinstance(layer, L.Reshape):
            add(name, "reshape", in_names, {"shape": _shape(outs[0])})
        elif isinstance(layer, neurons.SynapticMultiply):
            add(name, "synaptic_multiply", in_names, {"scale": float(layer.scale)})
        else:
            unsupported.append(f"{name!r} ({type(layer).__name__})")
            continue
        names[id(outs[0])] = name

    if unsupported:
        raise UnsupportedLayer(
            f"model {model.name!r}: no Nengo equivalent for layer(s) " + "; ".join(unsupported)
        )
    if not any(op["op"] == "spiking" for op in ops):
        raise UnsupportedLayer(
            f"model {model.name!r} has no SpikingActivation layer: convert it with "
            "kspikese.to_spiking (the Nengo export is for SNNs)"
        )
    if len(dts) != 1:
        raise UnsupportedLayer(
            f"model {model.name!r}: its neurons use different dt values {sorted(dts)}; a Nengo "
            "simulator has one dt"
        )
    spec = {
        "format": FORMAT,
        "model": model.name,
        "dt": dts.pop(),
        "timesteps": 1,
        "input": ops[0]["name"],
        "output": names[id(model.outputs[0])],
        "ops": ops,
    }
    return spec, arrays


def save(spec, arrays, out_dir):
    """Write ``spec.json`` and ``weights.npz`` into ``out_dir`` (atomically)."""
    from kspikese import files

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with files.atomic_path(out_dir / WEIGHTS) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    files.write_json(out_dir / SPEC, spec)
    return out_dir


def load(spec_dir):
    """``(spec, arrays)`` from a folder written by :func:`save`."""
    spec_dir = Path(spec_dir)
    path = spec_dir / SPEC
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no Nengo spec here (make one with `kspikese export-nengo`)")
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise ValueError(f"{path}: format {spec.get('format')!r}, expected {FORMAT!r}")
    weights = spec_dir / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing (the spec's arrays)")
    with np.load(weights) as data:
        arrays = {k: data[k] for k in data.files}
    return spec, arrays


# ------------------------------------------------------------------------------ test utterances
def test_pairs(data_dir, utterances):
    """``[(name, noisy, clean)]``: the first ``utterances`` test files (sorted by name) of
    ``data_dir/noisy`` with a namesake in ``data_dir/clean``."""
    from kspikese.audio_io import read_named_pairs

    data_dir = Path(data_dir)
    return read_named_pairs(data_dir / "clean", data_dir / "noisy", int(utterances))


def enhance_with(fn, audio, frame_len):
    """Enhance a mono 16 kHz ``audio`` with ``fn`` ((1, L, 1) -> (1, L, 1)) in the frames and
    cross-fades of :func:`kspikese.enhance` (batch size 1)."""
    from kspikese.inference import enhance_array

    return enhance_array(None, audio, frame_len, batch_size=1, fn=fn)


def keras_reference(model, data_dir, utterances):
    """The Keras SNN's outputs on the test utterances: a dict for ``reference.npz``."""
    from kspikese.inference import model_fn
    from kspikese.metrics.snr import si_snr

    frame_len = int(model.input_shape[1])
    fn = model_fn(model)
    names, outputs, scores, seconds = [], [], [], 0.0
    pairs = test_pairs(data_dir, utterances)
    for name, noisy, clean in pairs:
        t0 = time.perf_counter()
        y = enhance_with(fn, noisy, frame_len)
        seconds += time.perf_counter() - t0
        names.append(name)
        outputs.append(y)
        scores.append(float(si_snr(clean, y)))
    ref = {"names": np.array(names), "si_snr": np.array(scores), "seconds": np.array(seconds),
           "data_dir": np.array(str(Path(data_dir).resolve()))}
    for k, y in enumerate(outputs):
        ref[f"output/{k}"] = y.astype(np.float32)
    return ref


def main(argv=None):
    """``python -m kspikese.nengo.spec CHECKPOINT OUT_DIR [--data DIR --utterances N]``."""
    import kspikese  # noqa: F401  (Keras 2 first)
    from kspikese import files
    from kspikese.models import load_model

    p = argparse.ArgumentParser(prog="python -m kspikese.nengo.spec",
                                description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a spiking .keras checkpoint")
    p.add_argument("out", help="folder for spec.json, weights.npz (and reference.npz)")
    p.add_argument("--data", help="test set folder with clean/ and noisy/ (for reference.npz)")
    p.add_argument("--utterances", type=int, default=0, help="test utterances for reference.npz")
    args = p.parse_args(argv)
    ckpt = Path(args.checkpoint)
    if not ckpt.is_file():
        print(f"error: {ckpt}: no such checkpoint", file=sys.stderr)
        return 2
    try:
        model = load_model(ckpt)
        spec, arrays = describe(model)
    except (UnsupportedLayer, ValueError, OSError) as exc:
        print(f"error: {ckpt}: {exc}", file=sys.stderr)
        return 2
    spec["source"] = str(ckpt.resolve())
    save(spec, arrays, args.out)
    print(f"wrote {Path(args.out) / SPEC} ({len(spec['ops'])} ops, dt={spec['dt']:g})")
    if args.utterances > 0:
        if not args.data:
            print("error: --utterances needs --data", file=sys.stderr)
            return 2
        try:
            ref = keras_reference(model, args.data, args.utterances)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        path = Path(args.out) / REFERENCE
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **ref)
        print(f"wrote {path}: Keras SNN mean SI-SNR {np.mean(ref['si_snr']):.3f} dB over "
              f"{len(ref['si_snr'])} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
