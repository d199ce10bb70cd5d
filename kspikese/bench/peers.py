"""Peers: the shipped kspikese models beside RNNoise and spectral gating on the default test set.

Every denoiser enhances the same noisy test utterances of the default corpus (``vctk-like``
recipe, whole utterances); the eleven metrics are computed against the clean references, and the
real-time factor ``RTF = processing seconds / audio seconds`` is measured on the same files
(single process, after one warm-up call).  kspikese models run through the one inference path
(:func:`kspikese.inference.enhance_array`, 25 % overlap-add); RNNoise and noisereduce through
:mod:`kspikese.baselines`.  A denoiser that is not installed is listed with the reason.
"""

import time
from pathlib import Path

from kspikese import baselines, report

UTTERANCES = {False: 40, True: 2}


def denoisers():
    """``{label: (x, sr) -> y}`` for the peers and every shipped model whose weights are here."""
    from kspikese import shipped

    found = dict(baselines.BASELINES)
    for name in shipped.available():
        found[name] = shipped_denoiser(name)
    return found


def shipped_denoiser(name):
    """``(x, sr) -> y`` with the shipped model ``name`` through :func:`kspikese.enhance` (the one
    inference path); the model is loaded on the first call (the benchmark's warm-up) and kept."""
    from kspikese import enhancement, hub

    loaded = []

    def run_model(x, sr):
        if not loaded:
            loaded.append(hub.load(name)[0])
        return enhancement.enhance(x, sr, model=loaded[0])

    return run_model


def test_set(n, data_dir=None):
    """The first ``n`` ``(name, clean, noisy)`` test utterances of the default corpus (built if
    missing), and the corpus description."""
    from kspikese import config as configs
    from kspikese.corpus import open_corpus

    cfg = configs.load("table1")
    corpus = open_corpus(cfg, "default", data_dir)
    return corpus.test_utterances()[:n], corpus.info


def run(out_dir, quick, data_dir=None, only=None):
    """Score every available denoiser on the default test set; write ``peers.md|csv|json``."""
    utts, info = test_set(UTTERANCES[bool(quick)], data_dir)
    audio_s = sum(len(noisy) for _, _, noisy in utts) / 16000
    where = (f"Default test set: {len(utts)} whole utterances of {info.get('corpus')} "
             f"(recipe `{info.get('recipe', 'vctk-like')}`), {audio_s:.0f} s of audio")
    return score(out_dir, "peers", utts, where, info, quick, only)


def score(out_dir, name, utts, where, info, quick, only=None):
    """Score every available denoiser (``only``: those labels) on ``utts`` (``[(name, clean,
    noisy)]``), described by the sentence ``where`` and the dict ``info``; write
    ``<name>.md|csv|json`` and return the Markdown."""
    from kspikese.metrics import METRICS
    from kspikese.metrics.evaluate import evaluate_set

    metrics = ["snr", "si_snr", "stoi", "pesq"] if quick else list(METRICS)
    found = denoisers()
    labels = ["noisy", *[k for k in found if only is None or k in only]]
    means, rtf, missing = {}, {}, {}
    audio_s = sum(len(noisy) for _, _, noisy in utts) / 16000
    for label in labels:
        if label == "noisy":
            outputs = [noisy for _, _, noisy in utts]
        else:
            fn = found[label]
            try:
                fn(utts[0][2][:16000], 16000)  # warm-up (loads the model / library)
            except baselines.BaselineUnavailable as exc:
                missing[label] = str(exc)
                continue
            t0 = time.perf_counter()
            outputs = [fn(noisy, 16000) for _, _, noisy in utts]
            rtf[label] = (time.perf_counter() - t0) / audio_s
        _, means[label] = evaluate_set(
            [(utt, clean, y) for (utt, clean, _), y in zip(utts, outputs)],
            metrics=metrics, progress=False)
    cols = list(means)
    rows = report.metric_rows(cols, means, metrics)
    rows.append(["RTF (s per s of audio)"] + [report.fmt(rtf.get(c), 3) for c in cols])
    md = (f"{where}{'; QUICK' if quick else ''}. Not VCTK or TIMIT numbers.\n\n"
          + report.markdown_table(["Metric", *cols], rows))
    if missing:
        md += "\n\nNot measured: " + "; ".join(f"{k}: {v}" for k, v in missing.items())
    header = ["denoiser", *metrics, "rtf"]
    csv_rows = [[c, *[means[c].get(m) for m in metrics], rtf.get(c)] for c in cols]
    report.write_all(Path(out_dir), name, f"# {name}\n\n" + md + "\n", header, csv_rows,
                     {"data": info, "utterances": len(utts), "means": means, "rtf": rtf,
                      "missing": missing, "quick": bool(quick)})
    return md
