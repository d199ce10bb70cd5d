"""Result tables (Markdown, CSV, JSON) and figures for the experiments.

Every table says which data it came from; numbers are written as produced, never edited.
"""

import csv
import io
from pathlib import Path

import numpy as np

from kspikese import files

METRIC_LABELS = {
    "snr": "SNR (dB)", "ssnr": "SSNR (dB)", "si_snr": "SI-SNR (dB)", "stoi": "STOI",
    "pesq": "PESQ (wb)", "csig": "CSIG", "cbak": "CBAK", "covl": "COVL",
    "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL",
}


def fmt(value, digits=2):
    """Format a number for a table; NaN and missing values become an en dash."""
    if value is None:
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(header, rows):
    """A Markdown table from a header list and rows of cells."""
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


#: decimals of a measure in the tables (2 unless listed): STOI moves in thousandths here
METRIC_DIGITS = {"stoi": 3}


def metric_rows(columns, values, metrics):
    """Rows ``[label, value per column]`` of a metrics-by-columns table."""
    return [[METRIC_LABELS.get(m, m)]
            + [fmt(values.get(c, {}).get(m), METRIC_DIGITS.get(m, 2)) for c in columns]
            for m in metrics]


def csv_text(header, rows):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def firing_rates(snn, frames, batch_size=4):
    """Mean spikes per neuron per timestep of every ``SpikingActivation`` layer of ``snn``.

    A spiking layer outputs ``n / ω`` for ``n`` spikes in a step of window ω, so the spike count
    is ``|output| · ω``; the rate reported is its mean over neurons, steps and frames.
    """
    import keras_spiking
    import tensorflow as tf

    layers = [layer for layer in snn.layers if isinstance(layer, keras_spiking.SpikingActivation)]
    if not layers:
        return {}
    probe = tf.keras.Model(snn.inputs, [layer.output for layer in layers])
    outs = probe.predict(np.asarray(frames), batch_size=batch_size, verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    return {layer.name: float(np.mean(np.abs(out)) * layer.dt) for layer, out in zip(layers, outs)}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Save a matplotlib figure atomically and close it."""
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    pyplot().close(fig)


def plot_training_curves(histories, path, title):
    """Validation SI-SNR per epoch for each stage (``{label: [epoch rows]}``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    offset = 0
    for label, rows in histories.items():
        if not rows:
            continue
        epochs = [offset + r["epoch"] for r in rows]
        ax.plot(epochs, [r.get("val_si_snr", np.nan) for r in rows], "o-", label=f"{label} (val)")
        ax.plot(epochs, [r.get("si_snr", np.nan) for r in rows], "--", alpha=0.6,
                label=f"{label} (train)")
        offset = epochs[-1]
    ax.set_xlabel("epoch (fine-tuning continues after the ANN)")
    ax.set_ylabel("SI-SNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_spectrograms(signals, path, title, sr=16000):
    """Log-magnitude spectrograms of the same utterance in several versions (``{label: audio}``)."""
    import librosa

    plt = pyplot()
    fig, axes = plt.subplots(len(signals), 1, figsize=(7, 1.7 * len(signals)), sharex=True)
    for ax, (label, audio) in zip(np.atleast_1d(axes), signals.items()):
        spec = np.abs(librosa.stft(np.asarray(audio, np.float32), n_fft=512, hop_length=128))
        db = librosa.amplitude_to_db(spec, ref=1.0, top_db=90)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-90, vmax=db.max(),
                  extent=[0, len(audio) / sr, 0, sr / 2000])
        ax.set_ylabel("kHz")
        ax.set_title(label, fontsize=8, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def plot_bars(values, path, title, ylabel):
    """A horizontal bar chart of ``{name: value}``."""
    plt = pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(names) + 1.2))
    ax.barh(range(len(names)), [values[n] for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def write_all(out_dir, stem, markdown, header, rows, payload):
    """Write ``stem.md``, ``stem.csv`` and ``stem.json`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    files.write_text(out_dir / f"{stem}.md", markdown)
    files.write_text(out_dir / f"{stem}.csv", csv_text(header, rows))
    files.write_json(out_dir / f"{stem}.json", payload)
