"""Make a model of your own spiking: a 1-D CNN voice-activity detector (speech or noise?).

The task is built from the default corpus: 32 ms frames (512 samples at 16 kHz) of clean speech
(class 1) against frames of its recorded noise (class 0), each frame scaled to unit RMS so that
loudness is no cue.  Training and validation use the four training voices; the test uses the
held-out voice and the test part of every noise recording, so both are unseen.

The model is a plain Keras CNN (not one of kspikese's models) with three rectifier kinds:
ReLU6 (``ReLU(max_value=6)``), ``LeakyReLU`` and ReLU.  :func:`kspikese.hybrid.three_stage`
trains it, converts it (data-based per-layer scaling on calibration frames), fine-tunes the SNN
spike-aware and prices both per inference with :func:`kspikese.energy.estimate`.

    python examples/voice_activity.py            # the real default corpus (built if missing)
    python examples/voice_activity.py --quick    # a tiny synthetic corpus, < 1 minute
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from kspikese import hybrid
from kspikese.data.audio import load
from kspikese.data.default import load_manifest
from kspikese.data.pairs import corpus_folder

FRAME = 512
SPLITS = ("train", "valid", "test")


def build_classifier(frame=FRAME, seed=0):
    """``(frame, 1)`` audio -> 2 logits (noise, speech); the last layer is named ``readout``."""
    tf.keras.utils.set_random_seed(seed)
    L = tf.keras.layers
    inp = tf.keras.Input((frame, 1), name="audio")
    x = L.Conv1D(16, 16, strides=4, padding="same", name="conv1")(inp)
    x = L.ReLU(max_value=6.0, name="conv1_relu6")(x)
    x = L.Conv1D(32, 8, strides=4, padding="same", name="conv2")(x)
    x = L.LeakyReLU(0.1, name="conv2_leaky")(x)
    x = L.Conv1D(32, 4, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    x = L.Dense(16, activation="relu", name="hidden")(x)
    return tf.keras.Model(inp, L.Dense(2, name="readout")(x), name="vad_cnn")


def frames_of(x, frame=FRAME):
    """Non-overlapping frames ``(n, frame)`` of a 1-D signal."""
    n = len(x) // frame
    return x[: n * frame].reshape(n, frame)


def unit_rms(frames):
    return frames / np.sqrt(np.mean(frames ** 2, axis=1, keepdims=True) + 1e-12)


def speech_frames(corpus, split, limit, rng):
    """Active frames (RMS above a tenth of the utterance's loudest frame) of the split's speech."""
    items = [d for d in load_manifest(corpus)["speech"] if d["split"] == split]
    out = []
    for i in rng.permutation(len(items)):
        f = frames_of(load(corpus / items[i]["path"]))
        rms = np.sqrt(np.mean(f ** 2, axis=1))
        out.append(f[rms > 0.1 * rms.max()])
        if sum(len(o) for o in out) >= limit:
            break
    return np.concatenate(out)[:limit]


def noise_frames(corpus, split, limit, rng):
    """Frames of every recorded noise stream of the split, equally many per stream."""
    paths = sorted((corpus / "noise" / split).glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"{corpus / 'noise' / split}: no noise recordings")
    per = -(-limit // len(paths))
    out = []
    for p in paths:
        f = frames_of(load(p))
        f = f[np.sqrt(np.mean(f ** 2, axis=1)) > 0]
        out.append(f[rng.permutation(len(f))[:per]])
    return np.concatenate(out)[:limit]


def make_task(corpus, per_class, seed=0):
    """``{split: (x (n, FRAME, 1) float32, y (n,) int32)}``, balanced, shuffled (seeded)."""
    rng = np.random.default_rng(seed)
    data = {}
    for split in SPLITS:
        s = speech_frames(corpus, split, per_class[split], rng)
        n = noise_frames(corpus, split, len(s), rng)
        x = unit_rms(np.concatenate([s, n]).astype(np.float32))[..., None]
        y = np.concatenate([np.ones(len(s)), np.zeros(len(n))]).astype(np.int32)
        order = rng.permutation(len(y))
        data[split] = (x[order], y[order])
    return data


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=64), -1) == y))


def run(quick=False, data_dir=None, out=None, seed=0, verbose=0):
    """Build the task, run the three stages, print and return the accuracies and energies.

    Returns
    -------
    dict
        ``accuracy`` ({"ann", "converted", "snn"} on the test split), ``chance``, ``joules``
        ({"ann": {device: J}, "snn": {device: J}} per inference), ``ratio`` (the ANN on ``cpu``
        over the SNN on ``cpu-events``: the same CPU, dense against event-driven), ``counts``
        (frames per split), ``folder`` (the run folder).
    """
    tmp = None
    if quick:
        from kspikese.data.testing import make_fake_corpus

        tmp = tempfile.TemporaryDirectory(prefix="kspikese-example-")
        root = Path(data_dir) if data_dir else Path(tmp.name)
        corpus = make_fake_corpus(root, n_per_split=(8, 4, 4), seconds=1.5, seed=seed)
        per_class = {"train": 256, "valid": 64, "test": 64}
        ann_settings = {"lr": 3e-3, "epochs": 4, "patience": 4}
        ft_settings = {"lr": 5e-4, "epochs": 1, "patience": 1}
    else:
        from kspikese.data.default import ensure_default_corpus

        given = corpus_folder(data_dir) if data_dir else None
        if given is not None and (given / "manifest.json").exists():
            corpus = given
        else:  # built (or finished) under data_dir, $KSPIKESE_DATA_DIR or ./data
            corpus = ensure_default_corpus(root=data_dir, seed=0)
        per_class = {"train": 3000, "valid": 400, "test": 1000}
        ann_settings = {"lr": 2e-3, "epochs": 10, "patience": 3}
        ft_settings = {"lr": 2e-4, "epochs": 3, "patience": 2}
    corpus = Path(corpus)
    data = make_task(corpus, per_class, seed)
    folder = Path(out) if out else Path(tmp.name if tmp else ".") / "runs" / "voice_activity"
    x, y = data["train"]
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed).batch(32)
    valid = tf.data.Dataset.from_tensor_slices(data["valid"]).batch(64)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    result = hybrid.three_stage(
        build_classifier(seed=seed), train, valid, folder,
        convert_settings={"dt": 0.01, "activation_scale": "data", "target_spikes": 10},
        calibration=x[:128], ann_settings=ann_settings, finetune_settings=ft_settings,
        energy_data=data["test"][0][:16], seed=seed, loss=loss, metrics=["accuracy"],
        monitor="val_accuracy", mode="max", verbose=verbose)
    xt, yt = data["test"]
    acc = {name: accuracy(getattr(result, name), xt, yt) for name in ("ann", "converted", "snn")}
    joules = {k: dict(e.totals) for k, e in result.energy.items()}
    report = {"accuracy": acc, "chance": float(max(np.mean(yt), 1 - np.mean(yt))),
              "joules": joules, "ratio": joules["ann"]["cpu"] / joules["snn"]["cpu-events"],
              "counts": {s: len(data[s][1]) for s in SPLITS}, "folder": str(result.folder)}
    print(f"voice activity ({'quick, synthetic corpus' if quick else corpus}): "
          f"frames {report['counts']}")
    print(f"test accuracy: ANN {acc['ann']:.3f}  converted SNN {acc['converted']:.3f}  "
          f"fine-tuned SNN {acc['snn']:.3f}  (chance {report['chance']:.3f})")
    print(f"energy per inference: ANN {joules['ann']['cpu']:.3e} J (cpu); SNN "
          + ", ".join(f"{d} {j:.3e} J" for d, j in joules["snn"].items()))
    print(f"ANN (cpu) / SNN (cpu-events) energy: {report['ratio']:.1f}x")
    if tmp is not None:
        tmp.cleanup()
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny synthetic corpus, < 1 minute")
    parser.add_argument("--data-dir", help="the data root (default $KSPIKESE_DATA_DIR or ./data)")
    parser.add_argument("--out", help="run folder (resumable; default ./runs/voice_activity)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0, help="Keras verbosity")
    args = parser.parse_args(argv)
    run(args.quick, args.data_dir, args.out, args.seed, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
