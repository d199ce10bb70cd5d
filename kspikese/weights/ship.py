"""``make ship-weights``: export the four shipped models from finished pipeline runs.

For each table (``table1`` → Wave-U-Net, ``table3`` → Conv-TasNet, both on the default corpus's
``vctk-like`` mixtures) the run folder ``results/runs/<table>-default-seed<S>`` holds the trained
ANN and the fine-tuned SNN.  Each is exported with :func:`kspikese.enhancement.export_shipped`
(float16 unless that moves the mean test SI-SNR by 0.05 dB or more) and a card that records the
data, the table's config, the seed and the model's column of ``results/<table>/<table>.json``
(test metrics on whole utterances).  The float16 check runs on the same test utterances the
table was scored on.

    python -m kspikese.weights.ship [--results results] [--seed 0] [--tables table1,table3]
"""

import argparse
import json
import sys
from pathlib import Path

# table -> (ANN name, SNN name)
SHIPS = {"table1": ("wave-u-net", "snn-wave-u-net"), "table3": ("conv-tasnet", "snn-conv-tasnet")}


def card_fields(table_json, run, column):
    """The card's provenance fields: data, config, seed and the column's test metrics."""
    return {
        "data": table_json["data"],
        "config": run.cfg,
        "seed": run.seed,
        "table": table_json["table"],
        "test_metrics": table_json["metrics"][column],
        "test_metrics_source": f"results/{table_json['table']}/{table_json['table']}.json, "
                               f"column {column!r} (whole test utterances)",
    }


def ship(table, results="results", seed=0, weights_dir=None, data_dir=None):
    """Export ``table``'s ANN and fine-tuned SNN; returns their cards."""
    from kspikese import enhancement
    from kspikese.experiment import COLUMNS_BY_MODEL, Run, load_audio_pairs

    results = Path(results)
    table_path = results / table / f"{table}.json"
    if not table_path.is_file():
        raise FileNotFoundError(
            f"{table_path}: no finished table; run `make reproduce-{table}` first"
        )
    table_json = json.loads(table_path.read_text())
    if table_json.get("quick") or table_json.get("seed") != seed:
        raise ValueError(f"{table_path}: a quick run or another seed than {seed}; not shipped")
    run = Run(table, seed=seed, results=results, data_dir=data_dir)
    pairs = [(noisy, clean) for _, clean, noisy in load_audio_pairs(run.splits["test"])]
    ann_label, snn_label = COLUMNS_BY_MODEL[run.cfg["model"]]
    cards = []
    for name, column in zip(SHIPS[table], (ann_label, snn_label)):
        card = enhancement.export_shipped(run.dir, name, card_fields(table_json, run, column),
                                          weights_dir, pairs)
        check = card["float16_check"]
        print(f"[ship] {name}: {card['weights_bytes'] / 1e6:.1f} MB {card['weights_dtype']}, "
              f"test SI-SNR float32 {check['si_snr_float32']:.3f} dB, float16 "
              f"{check['si_snr_float16']:.3f} dB ({check['delta_db']:+.4f} dB, "
              f"{check['files']} files)", flush=True)
        cards.append(card)
    return cards


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kspikese.weights.ship", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tables", default=",".join(SHIPS))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--weights-dir", default=None, help="default: the package's weights/")
    args = parser.parse_args(argv)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in tables if t not in SHIPS]
    if unknown:
        parser.error(f"--tables: {', '.join(unknown)} not shipped; choose from {', '.join(SHIPS)}")
    try:
        for table in tables:
            ship(table, args.results, args.seed, args.weights_dir, args.data_dir)
    except (OSError, ValueError) as exc:
        print(f"ship-weights: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
