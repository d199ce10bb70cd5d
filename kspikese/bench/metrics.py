"""Benchmark: seconds of computing per minute of audio for each metric and for evaluate_set.

Audio: the test split of the default corpus (``$KSPIKESE_DATA_DIR/default/vctk-like/test/{clean,
noisy}``) when it has been built, else seeded synthetic speech-like utterances
(:func:`kspikese.metrics.testsignals.speech_like` plus white noise at 5 dB).  Every measure is
timed on the same utterances; DNSMOS is timed with its ONNX sessions already built (their one-off
creation cost per process is reported separately), ``evaluate_set`` with 2 workers includes
starting the worker processes.  The machine is shared, so timings are noisy; ratios within one
run are the meaningful part.
"""

import os
import time
from pathlib import Path

import numpy as np

from kspikese import audio_io, files

NAME = "metrics"


def _corpus(count):
    from kspikese.data.pairs import default_data_dir

    root = default_data_dir() / "default" / "vctk-like" / "test"
    clean_dir, noisy_dir = root / "clean", root / "noisy"
    if not (clean_dir.is_dir() and noisy_dir.is_dir()):
        return None, None
    names = sorted(p.name for p in clean_dir.glob("*.wav") if (noisy_dir / p.name).exists())[:count]
    if not names:
        return None, None
    read = audio_io.read_audio
    pairs = [(n, read(clean_dir / n).astype(np.float64), read(noisy_dir / n).astype(np.float64))
             for n in names]
    return pairs, f"{len(pairs)} test files of the default corpus ({root})"


def _synthetic(count, seconds=3.0):
    from kspikese.metrics.testsignals import noisy_copy, speech_like

    pairs = []
    for i in range(count):
        clean = speech_like(seconds, seed=100 + i)
        pairs.append((f"synthetic{i:02d}", clean, noisy_copy(clean, 5.0, seed=200 + i)))
    return pairs, f"{count} synthetic speech-like utterances of {seconds:g} s, white noise at 5 dB"


def _time(fn, pairs):
    t0 = time.perf_counter()
    for _, clean, noisy in pairs:
        fn(clean, noisy)
    return time.perf_counter() - t0


def run(out_dir, quick=False):
    from kspikese.metrics import composite, dnsmos, evaluate_set, perceptual
    from kspikese.metrics import snr as snr_mod
    from kspikese.metrics.evaluate import evaluate_pair

    count = 4 if quick else 20
    pairs, source = _corpus(count)
    if pairs is None:
        pairs, source = _synthetic(count)
    minutes = sum(len(c) for _, c, _ in pairs) / 16000 / 60

    t0 = time.perf_counter()
    dnsmos.scorer()
    session_s = time.perf_counter() - t0

    cases = [
        ("snr", lambda c, e: snr_mod.snr(c, e)),
        ("si_snr", lambda c, e: snr_mod.si_snr(c, e)),
        ("ssnr (segmental SNR)", lambda c, e: snr_mod.ssnr(c, e)),
        ("llr", lambda c, e: composite.llr(c, e)),
        ("wss", lambda c, e: composite.wss(c, e)),
        ("stoi", lambda c, e: perceptual.stoi_score(c, e)),
        ("pesq (wb)", lambda c, e: perceptual.pesq_score(c, e)),
        ("csig+cbak+covl (incl. PESQ)", lambda c, e: composite.composite(c, e)),
        ("dnsmos (sig, bak, ovrl)", lambda c, e: dnsmos.dnsmos(e)),
        ("evaluate_pair (all 11)", lambda c, e: evaluate_pair(c, e)),
    ]
    results = []
    for label, fn in cases:
        results.append((label, _time(fn, pairs)))
    for workers in (1, 2):
        t0 = time.perf_counter()
        evaluate_set(pairs, workers=workers, progress=False)
        results.append((f"evaluate_set, {workers} worker{'s' if workers > 1 else ''} (all 11)",
                        time.perf_counter() - t0))

    lines = [
        f"Audio: {source}, {minutes * 60:.1f} s in all. Seconds of wall-clock time per minute of audio",
        f"(lower is better; {os.cpu_count()} CPU cores, shared machine: timings are noisy).",
        "",
        "| measure | s / min of audio | total s |",
        "|---|---:|---:|",
    ]
    for label, secs in results:
        lines.append(f"| {label} | {secs / minutes:.3f} | {secs:.2f} |")
    lines += [
        "",
        f"DNSMOS: building the two ONNX sessions took {session_s:.2f} s (once per process). DNSMOS scores",
        "clips shorter than 9.01 s as if repeated to 9.01 s, so its cost per clip has that floor.",
        "evaluate_set with 2 workers includes spawning the processes and building their sessions.",
    ]
    table = "\n".join(lines)
    out_dir = Path(out_dir)
    files.write_text(out_dir / f"{NAME}.md", f"# metrics benchmark\n\n{table}\n")
    files.write_json(out_dir / f"{NAME}.json", {
        "source": source, "audio_seconds": minutes * 60, "dnsmos_session_seconds": session_s,
        "seconds": dict(results), "seconds_per_minute": {k: v / minutes for k, v in results},
    })
    return table
