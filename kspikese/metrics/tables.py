"""Writing metric results: per-file CSV and a summary (Markdown, CSV, JSON), all atomically."""

import csv
import io
import math

from kspikese import files

LABELS = {
    "snr": "SNR (dB)", "ssnr": "SSNR (dB)", "si_snr": "SI-SNR (dB)", "stoi": "STOI", "pesq": "PESQ",
    "csig": "CSIG", "cbak": "CBAK", "covl": "COVL", "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL",
}


def fmt(value, digits=3):
    """A number for a table: fixed digits, ``nan``/``inf`` spelled out."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}f}"
    return str(value)


def csv_text(rows, columns):
    """CSV text of ``rows`` (dicts) with the given column order (floats at full precision)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def _cell(value):
    if isinstance(value, float):
        return fmt(value, 6) if (math.isnan(value) or math.isinf(value)) else repr(value)
    return value


def write_csv(path, rows, columns):
    files.write_text(path, csv_text(rows, columns))


def summary_rows(columns, metrics):
    """Table rows ``{"metric", <column>..., "n_<column>"...}`` from ``{column: means}``."""
    rows = []
    for m in metrics:
        row = {"metric": m}
        for name, means in columns.items():
            row[name] = means.get(m, math.nan)
            row[f"n_{name}"] = means.get(f"n_{m}", 0)
        rows.append(row)
    return rows


def summary_markdown(columns, metrics, digits=3):
    """Markdown table: one row per metric, one column per system (mean over files, n used)."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for m in metrics:
        cells = []
        for name in names:
            means = columns[name]
            cell = fmt(means.get(m, math.nan), digits)
            n, total = means.get(f"n_{m}", 0), means.get("n_files", 0)
            if n != total:
                cell += f" (n={n}/{total})"
            cells.append(cell)
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cells) + " |")
    files = ", ".join(f"{n}: {columns[n].get('n_files', 0)} files, {columns[n].get('n_errors', 0)} with errors"
                      for n in names)
    return "\n".join(lines) + f"\n\nMeans over files, NaN ignored ({files}).\n"


def write_summary(out_dir, columns, metrics, extra=None):
    """Write ``summary.md``, ``summary.csv`` and ``summary.json`` into ``out_dir``; return the Markdown."""
    md = summary_markdown(columns, metrics)
    rows = summary_rows(columns, metrics)
    cols = ["metric"] + [c for n in columns for c in (n, f"n_{n}")]
    files.write_text(out_dir / "summary.md", md)
    write_csv(out_dir / "summary.csv", rows, cols)
    payload = {"metrics": list(metrics), "means": columns}
    payload.update(extra or {})
    files.write_json(out_dir / "summary.json", files.json_safe(payload))
    return md
