"""Benchmark of the data path: building the synthetic corpus, and tf.data frame throughput on the
default corpus (when it is built under ``$KSPIKESE_DATA_DIR`` or ``./data``) or on the fake one."""

import tempfile
import time
from pathlib import Path

from kspikese import files


def run(out_dir, quick):
    from kspikese.data import frame_dataset, list_pairs
    from kspikese.data.pairs import corpus_folder, default_data_dir
    from kspikese.data.testing import make_fake_corpus

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fake = make_fake_corpus(Path(tmp), (6, 2, 2))
        rows.append(("make_fake_corpus (6/2/2 utterances, both recipes)", f"{time.perf_counter() - t0:.2f} s"))
        real = corpus_folder(default_data_dir())
        corpus = real if (real / "manifest.json").exists() else fake
        pairs = list_pairs(corpus, "vctk-like", "train")
        n = 64 if quick else 512
        ds = frame_dataset(pairs, batch_size=8, shuffle=True, seed=0, max_frames=n)
        for epoch in range(2):  # the first epoch includes tf.data start-up
            t0 = time.perf_counter()
            frames = sum(int(b[0].shape[0]) for b in ds)
            dt = time.perf_counter() - t0
        rows.append((f"frame_dataset, {frames} frames of 16,384 from {corpus.name} "
                     f"({'real' if corpus == real else 'fake'}), 2nd epoch",
                     f"{frames / dt:.0f} frames/s ({frames * 16384 / 16000 / dt:.0f} s of audio per s)"))
    table = "| what | result |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    table += "\n\nShared 2-core machine: timings are noisy."
    files.write_text(Path(out_dir) / "data.md", "# data\n\n" + table + "\n")
    return table
