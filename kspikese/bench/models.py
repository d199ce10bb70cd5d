"""Benchmark: ANN vs SNN speed of the two full-size models, and the ANN's achieved FLOP/s.

Measured in one run, interleaved (the machine is shared; ratios within a run are what count):

* inference time per second of audio (16,384-sample frames, batch 4, through ``tf.function``
  and through ``model.predict``) for the ANN, the SNN made by :func:`kspikese.to_spiking`
  (``SpikingActivation(unroll=True)`` with constant initial voltages), and a "naive" SNN whose
  neurons use KerasSpiking's defaults (``unroll=False``: a ``tf.while_loop`` over the one
  timestep; initial voltages drawn at random on every call);
* one training step (Adam, SNR loss) of the ANN and of the spike-aware SNN;
* the ANN's achieved FLOP/s (2 × its multiply-accumulates per frame / time) against a large
  float32 ``tf.matmul`` (``2 n³`` FLOP) timed in the same run.

Each number is the minimum over the repeats (the least disturbed run).
"""

import time

import numpy as np

from kspikese import audio_io, files

SR = audio_io.SR
FRAME = 16384
BATCH = 4


def conv_macs(model):
    """Multiply-accumulates per example of the model's Conv1D / Conv1DTranspose / Depthwise /
    Dense layers (the work that dominates; element-wise ops are not counted)."""
    import tensorflow as tf

    layers = tf.keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv1D):
            length, channels = layer.output_shape[1], layer.output_shape[2]
            total += length * channels * layer.kernel_size[0]
        elif isinstance(layer, layers.Conv1DTranspose):
            length, c_in = layer.input_shape[1], layer.input_shape[2]
            total += length * c_in * layer.kernel_size[0] * layer.filters
        elif isinstance(layer, layers.Conv1D):
            length, c_in = layer.output_shape[1], layer.input_shape[2]
            total += length * layer.kernel_size[0] * c_in // layer.groups * layer.filters
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def _naive(model, dt):
    """The SNN with KerasSpiking's defaults: ``unroll=False`` (a ``tf.while_loop`` over the one
    timestep) and initial voltages drawn at random on every call."""
    from kspikese.convert import ToSpiking

    return ToSpiking(model, dt, 0, 1, True, "readout", fast=False).run(name="naive_snn")


def train_step(model, lr=1e-4):
    """A ``tf.function`` ``(x, y) -> loss``: one Adam step of ``model`` on the mean SNR loss
    (:func:`kspikese.losses.snr_loss`), the step every training-speed benchmark times."""
    import tensorflow as tf

    from kspikese import losses

    opt = tf.keras.optimizers.Adam(lr)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses.snr_loss(y, model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    return step


def _timer(fn):
    def run():
        t0 = time.perf_counter()
        out = fn()
        if hasattr(out, "numpy"):
            out.numpy()
        return time.perf_counter() - t0

    return run


def measure(quick=False):
    """All the timings as a dict (seconds, minimum over repeats)."""
    import tensorflow as tf

    from kspikese import models, to_spiking
    from kspikese.convert import scale_activations

    repeats = 3 if quick else 7
    rng = np.random.RandomState(0)
    x = rng.randn(BATCH, FRAME, 1).astype(np.float32) * 0.1
    y = rng.randn(BATCH, FRAME, 1).astype(np.float32) * 0.1
    xt, yt = tf.constant(x), tf.constant(y)
    n = 2048
    a = tf.constant(rng.randn(n, n).astype(np.float32))
    b = tf.constant(rng.randn(n, n).astype(np.float32))
    matmul = tf.function(lambda: tf.matmul(a, b))
    jobs = {"matmul": _timer(matmul)}
    info = {}
    for key, build, dt in (("wave_u_net", models.build_wave_u_net, 1e-3),
                           ("conv_tasnet", models.build_conv_tasnet, 1.0)):
        tf.keras.utils.set_random_seed(0)
        ann = build(frame_len=FRAME)
        scaled = scale_activations(ann, 32768.0) if dt < 1 else ann
        snn = to_spiking(scaled, dt=dt, seed=0)
        naive = _naive(scaled, dt)
        info[key] = {"params": ann.count_params(), "macs": conv_macs(ann), "dt": dt}
        for kind, model in (("ann", ann), ("snn", snn), ("snn_naive", naive)):
            fn = tf.function(lambda t, m=model: m(t, training=False))
            jobs[f"{key}/{kind}/function"] = _timer(lambda f=fn: f(xt))
            jobs[f"{key}/{kind}/predict"] = _timer(
                lambda m=model: m.predict(x, batch_size=BATCH, verbose=0))
        for kind, model in (("ann", ann), ("snn", snn)):
            step = train_step(model)
            jobs[f"{key}/{kind}/train"] = _timer(lambda s=step: s(xt, yt))
    for job in jobs.values():  # warm-up: tracing, oneDNN primitive caches
        job()
        job()
    times = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, job in jobs.items():
            times[k].append(job())
    best = {k: min(v) for k, v in times.items()}
    return {"best": best, "info": info, "matmul_n": n, "repeats": repeats}


def table(result):
    best, info = result["best"], result["info"]
    n = result["matmul_n"]
    matmul_flops = 2.0 * n ** 3 / best["matmul"]
    audio_s = BATCH * FRAME / SR
    lines = [
        "| model | ANN s/s audio | SNN s/s audio | SNN/ANN | naive SNN/ANN | "
        "ANN predict s/s | SNN predict s/s | SNN/ANN (predict) | train step ANN (s) | "
        "train step SNN (s) | SNN/ANN (train) | ANN GFLOP/s | % of matmul |",
        "|---|" + "---:|" * 12,
    ]
    for key in info:
        t = {k.split("/", 1)[1]: v for k, v in best.items() if k.startswith(key + "/")}
        flops = 2.0 * info[key]["macs"] * BATCH / t["ann/function"]
        lines.append(
            f"| {key} ({info[key]['params'] / 1e6:.2f}M, dt={info[key]['dt']:g}) "
            f"| {t['ann/function'] / audio_s:.4f} | {t['snn/function'] / audio_s:.4f} "
            f"| {t['snn/function'] / t['ann/function']:.2f} "
            f"| {t['snn_naive/function'] / t['ann/function']:.2f} "
            f"| {t['ann/predict'] / audio_s:.4f} | {t['snn/predict'] / audio_s:.4f} "
            f"| {t['snn/predict'] / t['ann/predict']:.2f} "
            f"| {t['ann/train']:.3f} | {t['snn/train']:.3f} "
            f"| {t['snn/train'] / t['ann/train']:.2f} "
            f"| {flops / 1e9:.1f} | {100 * flops / matmul_flops:.0f} % |"
        )
    lines.append("")
    lines.append(
        f"Batch of {BATCH} frames of {FRAME} samples ({audio_s:.2f} s of audio at 16 kHz); "
        f"minimum of {result['repeats']} interleaved repeats after warm-up. "
        f"float32 `tf.matmul` {n}x{n}: {matmul_flops / 1e9:.1f} GFLOP/s in the same run. "
        "s/s audio = seconds of compute per second of audio. 'naive' = the same SNN with "
        "KerasSpiking's defaults (`unroll=False`: a `tf.while_loop` over one timestep; random "
        "initial voltages drawn on every call). "
        "ANN FLOP/s counts 2 x the convolutions' multiply-accumulates "
        f"(Wave-U-Net {info['wave_u_net']['macs'] / 1e9:.2f} G, Conv-TasNet "
        f"{info['conv_tasnet']['macs'] / 1e9:.2f} G MAC per frame). "
        "Shared 2-core machine: absolute times are noisy, ratios less so."
    )
    return "\n".join(lines)


def run(out_dir, quick):
    result = measure(quick)
    text = table(result)
    files.write_text(out_dir / "models.md", "# ANN vs SNN speed\n\n" + text + "\n")
    files.write_json(out_dir / "models.json", result)
    return text
