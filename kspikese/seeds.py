"""``kspikese seeds TABLE --seeds 0 1 2``: one table over several training seeds.

Each seed runs the whole pipeline (:func:`kspikese.pipeline.reproduce`: ANN, conversion, random
SNN, fine-tune, the test columns; stages already done are taken from ``results/runs/``). Every
seed trains on the same corpus and is scored on the same test utterances (the corpus has its own
seed, ``data: corpus_seed``), so what varies is the initial weights, the order and the mixtures
of the training examples, and the neurons' seeds. The summary ``results/<table>/seeds.md|csv|json``
gives, for each metric and column, the mean and the sample standard deviation

.. math:: \\bar x = \\frac1n \\sum_i x_i, \\qquad s = \\sqrt{\\frac{1}{n-1} \\sum_i (x_i - \\bar x)^2}

over the ``n`` seeds, and the same two numbers for the paired differences that the tables are
read for (ANN − Noisy, converted SNN − ANN, fine-tuned SNN − ANN), each difference taken within a
seed first. Each seed's own table is written to ``results/<table>/<table>.md`` as it finishes
(the last seed's stays there; ``kspikese reproduce TABLE --seed N`` rewrites any seed's from its
cached run in seconds).
"""

import sys
from pathlib import Path

import numpy as np

from kspikese import report


def parse_seeds(seeds):
    """``seeds`` as a list of ints, checked: at least two, distinct, none negative.

    Raises ``ValueError`` naming ``--seeds`` otherwise (a standard deviation needs two runs).
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"--seeds: give at least two seeds (a spread needs two runs), got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: each seed once, got {seeds}")
    if min(seeds) < 0:
        raise ValueError(f"--seeds: seeds are non-negative integers, got {seeds}")
    return seeds


def mean_sd(values):
    """``{"mean", "sd", "values"}`` of a list of numbers; ``sd`` is the sample standard
    deviation (divisor n − 1), ``None`` for fewer than two finite values."""
    finite = [float(v) for v in values if v is not None and np.isfinite(float(v))]
    return {"mean": float(np.mean(finite)) if finite else None,
            "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
            "values": [None if v is None else float(v) for v in values]}


def differences(columns):
    """The paired differences a table is read for: ``[(label, minuend, subtrahend)]`` over the
    columns ``[Noisy, ANN, Random, Converted SNN, fine-tuned SNN]``."""
    noisy, ann, _, converted, snn = columns
    return [(f"{ann} − {noisy}", ann, noisy), (f"{converted} − {ann}", converted, ann),
            (f"{snn} − {ann}", snn, ann)]


def summarise(payloads):
    """Mean and standard deviation over seeds of the table payloads ``payloads``.

    Parameters
    ----------
    payloads : list of dict
        One table payload per seed (:func:`kspikese.tables.write_table`), all of the same
        table, profile and data.

    Returns
    -------
    dict
        ``seeds``, ``columns``, ``metrics`` (``{column: {metric: mean_sd}}``) and ``differences``
        (``{label: {metric: mean_sd}}`` of the per-seed differences).
    """
    first = payloads[0]
    for p in payloads[1:]:
        for key in ("table", "columns", "profile", "data", "quick"):
            if p.get(key) != first.get(key):
                raise ValueError(f"seeds {first['seed']} and {p['seed']} differ in {key!r}: "
                                 f"{first.get(key)!r} against {p.get(key)!r}")
    cols = first["columns"]
    metrics = [m for m in first["metrics"][cols[0]] if all(m in p["metrics"][c]
                                                          for p in payloads for c in cols)]

    def value(p, column, metric):
        return p["metrics"][column].get(metric)

    def diff(p, a, b, m):
        va, vb = value(p, a, m), value(p, b, m)
        return None if va is None or vb is None else float(va) - float(vb)

    return {
        "table": first["table"], "seeds": [p["seed"] for p in payloads], "columns": cols,
        "metrics": {c: {m: mean_sd([value(p, c, m) for p in payloads]) for m in metrics}
                    for c in cols},
        "differences": {label: {m: mean_sd([diff(p, a, b, m) for p in payloads])
                                for m in metrics}
                        for label, a, b in differences(cols)},
    }


def cell(stats, metric):
    """``mean ± sd`` of one :func:`mean_sd` entry, in the metric's digits."""
    digits = report.METRIC_DIGITS.get(metric, 2)
    if stats["sd"] is None:
        return report.fmt(stats["mean"], digits)
    return f"{report.fmt(stats['mean'], digits)} ± {report.fmt(stats['sd'], digits)}"


def markdown(summary, payloads):
    """The summary as Markdown: which data, mean ± SD per metric and column, the paired
    differences, and each seed's SI-SNR."""
    from kspikese.tables import data_line

    first = payloads[0]
    cols, seeds = summary["columns"], summary["seeds"]
    metrics = list(summary["metrics"][cols[0]])
    label = report.METRIC_LABELS
    main = [[label.get(m, m)] + [cell(summary["metrics"][c][m], m) for c in cols] for m in metrics]
    diffs = summary["differences"]
    diff_rows = [[label.get(m, m)] + [cell(diffs[d][m], m) for d in diffs] for m in metrics]
    by_seed = [[str(p["seed"])] + [report.fmt(p["metrics"][c].get("si_snr")) for c in cols]
               + [report.fmt(p.get("pipeline_s"), 0)] for p in payloads]
    return "\n".join([
        f"# {summary['table']}: {first['title']}, over seeds {', '.join(map(str, seeds))}", "",
        f"Our numbers. Data: {data_line(first['data'], first['data'].get('recipe', ''))}. "
        f"Recipe profile `{first['profile']}`"
        f"{' (QUICK runs: tiny subset, few steps)' if first.get('quick') else ''}. "
        f"Each cell: mean ± sample standard deviation (n − 1) over the {len(seeds)} seeds; every "
        f"seed trains, converts and fine-tunes afresh on the same corpus and is scored on the same "
        f"test utterances.", "",
        report.markdown_table(["Metric"] + cols, main), "",
        "Paired differences (taken within each seed, then mean ± SD over the seeds):", "",
        report.markdown_table(["Metric"] + list(diffs), diff_rows), "",
        "SI-SNR (dB) by seed, and the seconds of each run's stages and evaluations as recorded "
        "(cached ones included):", "",
        report.markdown_table(["seed"] + cols + ["run s"], by_seed), ""])


def csv_rows(summary):
    """CSV rows ``[metric, column, mean, sd, value per seed...]`` (differences as columns)."""
    rows = []
    for group in (summary["metrics"], summary["differences"]):
        for column, by_metric in group.items():
            for metric, st in by_metric.items():
                rows.append([metric, column, st["mean"], st["sd"], *st["values"]])
    return rows


def write_summary(results, payloads):
    """Write ``results/<table>/seeds.md|csv|json`` from the seeds' table payloads; return the
    summary (:func:`summarise`)."""
    summary = summarise(payloads)
    out = Path(results) / summary["table"]
    md = markdown(summary, payloads)
    header = ["metric", "column", "mean", "sd"] + [f"seed{s}" for s in summary["seeds"]]
    report.write_all(out, "seeds", md, header, csv_rows(summary),
                     dict(summary, data=payloads[0]["data"], profile=payloads[0]["profile"],
                          quick=payloads[0].get("quick", False)))
    print(md)
    print(f"wrote {out}/seeds.md|csv|json")
    return summary


def add_arguments(parser):
    from kspikese.experiment import add_common_arguments

    parser.add_argument("table", help="table1..table4, or a path to an experiment YAML")
    parser.add_argument("--seeds", nargs="+", type=int, required=True, metavar="SEED",
                        help="two or more training seeds, e.g. --seeds 0 1 2")
    add_common_arguments(parser, seed=False)


def run(args):
    from kspikese.corpus import CorpusError
    from kspikese.experiment import check_arguments, reproduce_table

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        print(f"kspikese seeds: error: {exc}", file=sys.stderr)
        return 2
    if check_arguments(args, command="seeds") is None:
        return 2
    payloads = []
    for i, seed in enumerate(seeds, 1):
        print(f"[seeds] {args.table}: seed {seed} ({i} of {len(seeds)})", flush=True)
        try:
            payloads.append(reproduce_table(args, seed))
        except CorpusError as exc:
            print(f"kspikese seeds: error: {exc}", file=sys.stderr)
            return 2
    write_summary(args.results, payloads)
    return 0
