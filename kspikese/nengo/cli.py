"""``kspikese export-nengo`` and ``kspikese nengo-eval`` (run them in the nengo environment,
``.venv-nengo``; see README, "Nengo").

``export-nengo CHECKPOINT -o NET``: CHECKPOINT is a spiking ``.keras`` file (or a folder with a
spec).  Its spec and the Keras SNN's reference outputs are written by
:mod:`kspikese.nengo.spec`, in this process when it can load the checkpoint (TensorFlow 2.21 +
tf-keras), else by the main environment's Python (``--keras-python``, default
``$KSPIKESE_KERAS_PYTHON`` or ``.venv/bin/python`` of this checkout).  Then the network is
converted with ``nengo_dl.Converter(allow_fallback=False)`` to check that every layer has a
native converter, and ``NET/conversion.json`` lists the layers and their converters.  NET holds
all that is needed to rebuild the network: ``spec.json`` + ``weights.npz``.

``nengo-eval NET``: runs the network in ``nengo_dl.Simulator`` for the Keras SNN's number of
timesteps (1) on the reference utterances, frame by frame as :func:`kspikese.enhance` does, and
compares per-utterance SI-SNR and the outputs with the Keras SNN's (``NET/eval.json``).
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kspikese.nengo import spec as S

TARGET_DB = 0.1  # |mean SI-SNR(Nengo) - mean SI-SNR(Keras SNN)| must stay below this
REPO = Path(__file__).resolve().parents[2]


def _default_test_dir():
    root = Path(os.environ.get("KSPIKESE_DATA_DIR", "data"))
    return root / "default" / "vctk-like" / "test"


def _keras_python(arg):
    cand = (arg or os.environ.get("KSPIKESE_KERAS_PYTHON")
            or str(REPO / ".venv" / "bin" / "python"))
    if not Path(cand).is_file():
        raise SystemExit(
            f"export-nengo: the checkpoint must be read by the environment that saved it "
            f"(TF 2.21 + tf-keras), but {cand} does not exist; run `make install` or pass "
            "--keras-python"
        )
    return cand


def _need_nengo(command):
    if importlib.util.find_spec("nengo_dl") is None:
        raise SystemExit(
            f"{command}: nengo-dl is not installed in this Python ({sys.executable}); it needs "
            "TensorFlow 2.12: run `make nengo-env`, then `.venv-nengo/bin/python -m kspikese "
            f"{command} ...` (or `make nengo`)"
        )


def add_arguments(p):
    p.add_argument("checkpoint", help="spiking .keras checkpoint (or a folder holding spec.json)")
    p.add_argument("-o", "--out", required=True, help="output folder NET")
    p.add_argument("--data", default=None,
                   help="test set folder with clean/ and noisy/ "
                        "(default $KSPIKESE_DATA_DIR/default/vctk-like/test)")
    p.add_argument("--utterances", type=int, default=8,
                   help="test utterances the Keras SNN enhances for the comparison (default 8)")
    p.add_argument("--keras-python", default=None,
                   help="Python of the environment that saved the checkpoint")


def _write_spec(args, out):
    ckpt = Path(args.checkpoint)
    data = Path(args.data) if args.data else _default_test_dir()
    if ckpt.is_dir():
        for name in (S.SPEC, S.WEIGHTS, S.REFERENCE):
            if (ckpt / name).is_file() and ckpt.resolve() != out.resolve():
                shutil.copyfile(ckpt / name, out / name)
        if not (out / S.SPEC).is_file():
            raise SystemExit(f"export-nengo: {ckpt}: no {S.SPEC} in this folder")
        return
    if not ckpt.is_file():
        raise SystemExit(f"export-nengo: {ckpt}: no such checkpoint")
    if ckpt.suffix != ".keras":
        raise SystemExit(f"export-nengo: {ckpt}: expected a .keras checkpoint or a spec folder")
    argv = [str(ckpt), str(out)]
    if args.utterances > 0:
        argv += ["--data", str(data), "--utterances", str(args.utterances)]
    if importlib.util.find_spec("tf_keras") is not None:  # the training environment itself
        code = S.main(argv)
    else:
        cmd = [_keras_python(args.keras_python), "-m", "kspikese.nengo.spec"] + argv
        print("+ " + " ".join(cmd), flush=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        code = subprocess.run(cmd, env=env).returncode
    if code:
        raise SystemExit(f"export-nengo: writing the spec of {ckpt} failed (exit {code})")


def run(args):
    _need_nengo("export-nengo")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _write_spec(args, out)
    from kspikese import files
    from kspikese.nengo.build import NengoSNN

    t1 = time.perf_counter()
    try:
        spec, arrays = S.load(out)
        net = NengoSNN(spec, arrays)
    except (FileNotFoundError, ValueError, TypeError) as exc:  # TypeError: no converter
        raise SystemExit(f"export-nengo: {args.checkpoint}: {exc}") from exc
    table = net.layer_table()
    report = {
        "source": spec.get("source"),
        "dt": spec["dt"],
        "timesteps": spec.get("timesteps", 1),
        "allow_fallback": False,
        "counts": net.counts(),
        "custom_converters": sorted({row[2] for row in table if row[3] == "custom"}),
        "custom_layer_types": sorted({row[1] for row in table if row[3] == "custom"}),
        "layers": [dict(zip(("layer", "keras", "converter", "kind"), r)) for r in table],
        "convert_seconds": round(time.perf_counter() - t1, 2),
        "total_seconds": round(time.perf_counter() - t0, 2),
    }
    files.write_json(out / "conversion.json", report)
    print(f"{out}: {report['counts']['neurons']:,} SpikingRectifiedLinear neurons in "
          f"{report['counts']['ensembles']} ensembles, dt={spec['dt']:g}; custom converters for "
          f"{', '.join(report['custom_layer_types'])}; "
          f"TensorNodes: {report['counts']['tensor_nodes']}")
    return 0


# ------------------------------------------------------------------------------------ nengo-eval
def add_evaluate_arguments(p):
    p.add_argument("net", help="folder written by export-nengo")
    p.add_argument("--utterances", type=int, default=None,
                   help="use only the first N reference utterances")
    p.add_argument("--seed", type=int, default=0)


def run_evaluate(args):
    _need_nengo("nengo-eval")
    from kspikese import audio_io, files
    from kspikese.metrics.snr import si_snr
    from kspikese.nengo.build import NengoSNN

    net_dir = Path(args.net)
    ref_path = net_dir / S.REFERENCE
    try:
        spec, arrays = S.load(net_dir)
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: missing; run export-nengo with --utterances N")
        with np.load(ref_path) as ref:
            ref = {k: ref[k] for k in ref.files}
        names = [str(n) for n in ref["names"]][: args.utterances]
        data_dir = Path(str(ref["data_dir"]))
        pairs = {n: (noisy, clean)
                 for n, noisy, clean in S.test_pairs(data_dir, len(ref["names"]))}
        missing = [n for n in names if n not in pairs]
        if missing:
            raise FileNotFoundError(f"{data_dir}: reference utterances not found: {missing}")
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"nengo-eval: {exc}") from exc
    frame_len = int(spec["ops"][0]["config"]["shape"][0])

    net = NengoSNN(spec, arrays, seed=args.seed)
    keras_plain = net.keras

    def keras_fn(x):
        return keras_plain(x).numpy()

    rows, t_build = [], None
    t0 = time.perf_counter()
    try:
        for k, name in enumerate(names):
            noisy, clean = pairs[name]
            y_keras = ref[f"output/{k}"]
            t = time.perf_counter()
            y_nengo = S.enhance_with(net, noisy, frame_len)
            seconds = time.perf_counter() - t
            if t_build is None:
                t_build = seconds
            y_plain = S.enhance_with(keras_fn, noisy, frame_len)
            row = {
                "utterance": name,
                "seconds_audio": round(len(noisy) / audio_io.SR, 2),
                "si_snr_noisy": float(si_snr(clean, noisy)),
                "si_snr_keras_snn": float(ref["si_snr"][k]),
                "si_snr_nengo": float(si_snr(clean, y_nengo)),
                "max_abs_diff": float(np.max(np.abs(y_nengo - y_keras))),
                "max_abs_keras": float(np.max(np.abs(y_keras))),
                "max_abs_diff_tf212": float(np.max(np.abs(y_nengo - y_plain))),
                "samples_differing": int(np.sum(y_nengo != y_keras)),
                "nengo_seconds": round(seconds, 2),
            }
            rows.append(row)
            print(f"{name}: Keras SNN {row['si_snr_keras_snn']:.3f} dB, Nengo "
                  f"{row['si_snr_nengo']:.3f} dB, max |diff| {row['max_abs_diff']:.3g}",
                  flush=True)
    finally:
        net.close()
    mean_k = float(np.mean([r["si_snr_keras_snn"] for r in rows]))
    mean_n = float(np.mean([r["si_snr_nengo"] for r in rows]))
    result = {
        "model": spec.get("model"),
        "source": spec.get("source"),
        "dt": spec["dt"],
        "timesteps": spec.get("timesteps", 1),
        "utterances": len(rows),
        "mean_si_snr_keras_snn": mean_k,
        "mean_si_snr_nengo": mean_n,
        "mean_difference_db": mean_n - mean_k,
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "target_db": TARGET_DB,
        "within_target": bool(abs(mean_n - mean_k) <= TARGET_DB),
        "first_utterance_seconds_with_build": round(t_build or 0.0, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    files.write_json(net_dir / "eval.json", result)
    print(markdown(result))
    if not result["within_target"]:
        print(f"nengo-eval: mean SI-SNR differs by {mean_n - mean_k:+.3f} dB (target "
              f"±{TARGET_DB})", file=sys.stderr)
        return 1
    return 0


def markdown(result):
    """The per-utterance comparison as a markdown table."""
    from kspikese.report import markdown_table

    rows = [[r["utterance"], f"{r['si_snr_noisy']:.3f}", f"{r['si_snr_keras_snn']:.3f}",
             f"{r['si_snr_nengo']:.3f}", f"{r['max_abs_diff']:.3g}"] for r in result["rows"]]
    rows.append(["**mean**", "", f"{result['mean_si_snr_keras_snn']:.3f}",
                 f"{result['mean_si_snr_nengo']:.3f}", f"{result['max_abs_diff']:.3g}"])
    return (f"{result['model']} (dt={result['dt']:g}, {result['timesteps']} timestep), "
            f"{result['utterances']} utterances\n\n"
            + markdown_table(["utterance", "noisy SI-SNR", "Keras SNN SI-SNR", "Nengo SI-SNR",
                              "max abs diff"], rows))
