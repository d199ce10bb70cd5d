"""Benchmark: the firing-rate pass of the energy estimate, streaming vs KerasSpiking's own.

KerasSpiking's ``ModelEnergy`` predicts every layer's input for all example frames at once and
keeps them in memory (``Σ layer input elements × 4 bytes`` per frame); :mod:`kspikese.energy`
reduces each batch to sums inside the graph, so memory does not grow with the number of frames.
Both passes run on the same untrained SNN-ConvTasNet (full size; the quick one with ``quick``) on
the same random frames; the table gives seconds per frame (graph building included, for both) and
the bytes each keeps per frame.
Timings are on a shared 2-core machine: noisy, compare within one run only.
"""

import time
import warnings

import numpy as np


def _snn(quick):
    from kspikese import config as configs, hybrid, pipeline

    cfg = configs.load("table3", quick=quick)
    ann = pipeline.build_ann(cfg, seed=0)
    calibration = (np.random.default_rng(1).standard_normal((4, cfg["frame_len"], 1)) * 0.05
                   ).astype(np.float32)
    return hybrid.convert(ann, calibration, seed=0, **cfg["convert"]), cfg["frame_len"]


def run(out_dir, quick):
    import keras_spiking
    import tensorflow as tf

    from kspikese import energy, files, report

    snn, frame_len = _snn(quick)
    n = 2 if quick else 4
    frames = (np.random.default_rng(0).standard_normal((n, frame_len, 1)) * 0.05).astype(
        np.float32)
    held = sum(np.prod(t.shape[1:].as_list()) for _, node in energy.model_nodes(snn)
               for t in tf.nest.flatten(node.input_tensors)) * 4

    timings = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        measured = energy.measure_inputs(snn, frames, batch_size=2)
        timings["kspikese streaming"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        stock = keras_spiking.ModelEnergy(snn, frames)
        timings["KerasSpiking ModelEnergy"] = time.perf_counter() - t0
        ours = energy.estimate(snn, corrected=False, measured=measured, devices=("loihi",))
    rates = {r["name"]: r["events_per_input"] / (ours.dt * ours.timesteps) for r in ours.layers}
    worst = max(abs(rates[layer.name] - stock.layer_rates[layer]) /
                max(abs(stock.layer_rates[layer]), 1e-12) for layer in snn.layers)

    header = ["rate pass", "s / frame", "bytes kept per frame"]
    rows = [["kspikese streaming (batch 2)", f"{timings['kspikese streaming'] / n:.2f}",
             "O(1): two scalars per tensor"],
            ["KerasSpiking ModelEnergy", f"{timings['KerasSpiking ModelEnergy'] / n:.2f}",
             f"{held / 1e6:.0f} MB"]]
    md = (f"Untrained SNN-ConvTasNet ({snn.count_params():,} params, frames of {frame_len}), "
          f"{n} random frames; largest relative difference between the two passes' layer rates: "
          f"{worst:.1e}.\n\n" + report.markdown_table(header, rows) + "\n")
    files.write_text(out_dir / "energy.md", "# energy: firing-rate pass\n\n" + md)
    return md
