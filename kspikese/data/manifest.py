"""The default corpus's manifest: checksums, the per-split summary, the CSV copy, verification."""

import csv
import io
import json

from kspikese import files
from kspikese.data.pairs import SPLITS, CorpusError


def summarize(records, speech_list, dropped, types, snrs):
    """Minutes of speech per split, speakers per split, counts per recipe/split/noise/SNR."""
    per_split = {}
    for s in SPLITS:
        items = [d for d in speech_list if d["split"] == s]
        per_split[s] = {
            "utterances": len(items),
            "minutes": round(sum(d["seconds"] for d in items) / 60, 2),
            "speakers": sorted({d["speaker"] for d in items}),
        }
    counts = {}
    for r in records:
        c = counts.setdefault(r["recipe"], {}).setdefault(r["split"], {"noise": {}, "snr": {}})
        c["noise"][r["noise_type"]] = c["noise"].get(r["noise_type"], 0) + 1
        c["snr"][str(r["snr_db"])] = c["snr"].get(str(r["snr_db"]), 0) + 1
    return {"splits": per_split, "dropped_short_prompts": dropped, "noise_types": types,
            "snrs_db": {k: list(v) for k, v in snrs.items()}, "counts": counts}


CSV_FIELDS = ("recipe", "split", "name", "speaker", "package", "licence", "noise_type", "snr_db",
              "noise_segment", "seconds", "gain", "clean", "noisy", "clean_sha256", "noisy_sha256")


def write_csv(path, records):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in records:
        row = {k: r[k] for k in CSV_FIELDS}
        row["noise_segment"] = json.dumps(r["noise_segment"], separators=(",", ":"))
        w.writerow(row)
    files.write_text(path, buf.getvalue())


def load_manifest(corpus_dir):
    """The parsed ``manifest.json`` of a built corpus."""
    from kspikese.data.pairs import corpus_folder

    p = corpus_folder(corpus_dir) / "manifest.json"
    if not p.exists():
        raise CorpusError(f"{p}: no manifest; build the corpus with `make data` first")
    return json.loads(p.read_text())


def verify(corpus_dir):
    """Re-hash every file listed in the manifest; return the list of mismatching paths."""
    from kspikese.data.pairs import corpus_folder

    root = corpus_folder(corpus_dir)
    bad = []
    m = load_manifest(root)
    for r in m["files"]:
        for k in ("clean", "noisy"):
            p = root / r[k]
            if not p.exists() or files.sha256(p) != r[f"{k}_sha256"]:
                bad.append(r[k])
    for d in m["speech"]:
        if not (root / d["path"]).exists() or files.sha256(root / d["path"]) != d["sha256"]:
            bad.append(d["path"])
    return sorted(set(bad))
