"""``kspikese energy MODEL [MODEL ...] --audio DIR --json FILE``: any model priced on any audio.

Each ``MODEL`` is a shipped name (``snn-wave-u-net``), a model card (``.json``), a folder holding
one card (a ``kspikese ship --weights-dir`` folder with one model), a pipeline run folder or a
``.keras`` checkpoint (:func:`kspikese.hub.load`).  The audio files under ``DIR`` (recursive) are
read at 16 kHz and cut into non-overlapping frames of the model's length, the last one
zero-padded (as Table 5); the model's input rates are measured on those frames
(:func:`kspikese.energy.estimate`, corrected counts) and, per model, the JSON holds:

- ``params``; ``ann_macs``: the dense operations (connections + neuron updates) of the model's
  ANN twin per inference (``ann_macs_from`` says which model: the shipped or run ANN, else the
  model's own graph);
- ``synaptic_events``: ``Σ C · r · dt · T`` per inference, ``mean_spikes_per_neuron`` per step;
- ``j_per_inference``: Joules per inference on every device (an ANN on ``cpu`` only), and
  ``ann_j_cpu``: the ANN twin's Joules on ``cpu``.

These are the numbers Table 5 shows (its ``corrected`` columns) for the same model and frames.
"""

import sys
import time
from pathlib import Path

import numpy as np

FRAMING = "non-overlapping frames (kspikese.data.framing.frame), the last one zero-padded"


class ArgumentError(ValueError):
    """A bad command-line argument; the message names it."""


def audio_files(folder):
    """The audio files under ``folder`` (sorted).

    Raises
    ------
    ArgumentError
        ``--audio`` missing, not a folder, or holding no audio files.
    """
    from kspikese import audio_io

    if folder is None:
        raise ArgumentError("--audio DIR is required with MODEL arguments (the recordings the "
                            "firing rates are measured on)")
    path = Path(folder)
    if not path.exists():
        raise ArgumentError(f"--audio {folder}: no such folder")
    if not path.is_dir():
        raise ArgumentError(f"--audio {folder}: not a folder (give a folder of WAV files)")
    errors = []
    found = audio_io.find_audio(path, errors)
    if not found:
        raise ArgumentError(f"--audio {folder}: holds no WAV files (.wav; also .flac, .ogg)")
    return found


def check_json_target(target):
    """``--json FILE`` as a Path whose folder exists and is a folder (checked up front)."""
    if target is None:
        raise ArgumentError("--json FILE is required with MODEL arguments")
    path = Path(target)
    if path.is_dir():
        raise ArgumentError(f"--json {target}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise ArgumentError(f"--json {target}: its folder {path.parent} does not exist")
    return path


def model_argument(arg):
    """What :func:`kspikese.hub.load` should read for ``arg``: a folder with no run checkpoint but
    exactly one model card becomes that card."""
    from kspikese import hub

    path = Path(arg)
    if path.is_dir() and not any((path / n).is_file() for n in hub.RUN_SPIKING + hub.RUN_ANN):
        cards = sorted(p for p in path.glob("*.json") if p.with_suffix(".h5").is_file())
        if len(cards) == 1:
            return str(cards[0])
        if len(cards) > 1:
            raise ArgumentError(f"MODEL {arg}: the folder holds {len(cards)} model cards "
                                f"({', '.join(p.name for p in cards)}); name one of them")
    return arg


def load_with_twin(arg):
    """``(model, card, ann, ann_from)``: the model of ``arg`` and its ANN twin (``None`` if none).

    Raises
    ------
    ArgumentError
        Naming ``MODEL`` and the argument when it cannot be resolved or loaded.
    """
    from kspikese import hub
    from kspikese.convert import is_spiking

    resolved = model_argument(arg)
    try:
        model, card = hub.load(resolved)
    except hub.ModelError as exc:
        raise ArgumentError(f"MODEL {arg}: {exc}") from None
    if not is_spiking(model):
        return model, card, model, "the model itself (an ANN)"
    twin = None
    if str(resolved).endswith(".json"):  # a card: its ANN twin is the sibling card, if shipped
        from kspikese.shipped import ann_name

        name = str(card.get("name", ""))
        sibling = Path(resolved).with_name(f"{ann_name(name)}.json")
        if name.startswith("snn-") and sibling.is_file():
            twin = str(sibling)
    else:
        twin = resolved
    if twin is not None:
        try:
            ann, _ = hub.load(twin, ann=not twin.endswith(".json"))
            return model, card, ann, f"the ANN twin of {twin}"
        except hub.ModelError:
            pass
    return model, card, None, "the model's own graph (no ANN twin found)"


def audio_frames(paths, frame_len, max_frames=None):
    """``(frames (n, frame_len, 1), info)`` from the audio ``paths``."""
    from kspikese import audio_io
    from kspikese.data.framing import frame

    chunks, used, total = [], 0, 0
    for path in paths:
        x = audio_io.read_audio(path)
        chunks.append(frame(x, frame_len)[0])
        used += 1
        total += len(x)
        if max_frames and sum(len(c) for c in chunks) >= max_frames:
            break
    frames = np.concatenate(chunks)[:max_frames or None]
    info = {"files": used, "frames": int(len(frames)), "frame_len": int(frame_len),
            "seconds": round(total / audio_io.SR, 3), "framing": FRAMING}
    return frames[..., None].astype(np.float32), info


def price(model, ann, frames, batch_size=4):
    """``(snn Estimate, ann Estimate or None)`` at the frames' length (corrected counts)."""
    from kspikese import energy

    sized = energy.with_frame_len(model, frames.shape[1])
    est = energy.estimate(sized, frames, batch_size=batch_size)
    ann_est = None if ann is None else energy.estimate(energy.with_frame_len(ann, frames.shape[1]))
    return est, ann_est


def entry(arg, model, card, est, ann_est, ann_from, audio_info):
    """One model's JSON entry (plain numbers; see the module docstring)."""
    from kspikese.convert import is_spiking

    spiking = is_spiking(model)
    dense = ann_est if ann_est is not None else est
    return {
        "argument": str(arg), "name": str(card.get("name", model.name)), "spiking": spiking,
        "params": int(est.params), "ann_macs": int(dense.dense_ops), "ann_macs_from": ann_from,
        "synaptic_events": float(est.synops) if spiking else None,
        "synaptic_events_graded": float(est.synops_graded) if spiking else None,
        "mean_spikes_per_neuron": float(est.mean_firing) if spiking else None,
        "dt": float(est.dt) if spiking else None, "timesteps": int(est.timesteps),
        "frame_len": int(est.frame_len), "j_per_inference": dict(est.totals),
        "ann_j_cpu": float(dense.totals["cpu"]) if "cpu" in dense.totals else None,
        "rates_from": audio_info,
    }


def run_models(args):
    """The ``MODEL ... --audio DIR --json FILE`` form of ``kspikese energy``; exit code."""
    from kspikese import audio_io, files
    from kspikese.inference import frame_len_of

    t0 = time.perf_counter()
    try:
        if args.batch_size < 1:
            raise ArgumentError(f"--batch-size must be at least 1, got {args.batch_size}")
        if args.max_frames is not None and args.max_frames < 1:
            raise ArgumentError(f"--max-frames must be at least 1, got {args.max_frames}")
        paths = audio_files(args.audio)
        target = check_json_target(args.json)
        loaded = [(arg, *load_with_twin(arg)) for arg in args.model_args]
    except ArgumentError as exc:
        print(f"kspikese energy: error: {exc}", file=sys.stderr)
        return 2
    entries = []
    for arg, model, card, ann, ann_from in loaded:
        frame_len = frame_len_of(model, default=int(card.get("frame_len") or 16384))
        try:
            frames, info = audio_frames(paths, frame_len, args.max_frames)
        except audio_io.AudioError as exc:
            print(f"kspikese energy: error: --audio {args.audio}: {exc}", file=sys.stderr)
            return 2
        info = {"folder": str(args.audio), **info}
        est, ann_est = price(model, ann, frames, args.batch_size)
        entries.append(entry(arg, model, card, est, ann_est, ann_from, info))
        e = entries[-1]
        events = ("" if e["synaptic_events"] is None
                  else f"{e['synaptic_events']:.4g} synaptic events, ")
        print(f"[energy] {arg}: {e['params']:,} params, ANN {e['ann_macs']:.4g} dense ops, "
              + events + ", ".join(f"{d} {j:.3g} J" for d, j in e["j_per_inference"].items()), flush=True)
    files.write_json(target, {"audio": str(args.audio), "counting": "corrected",
                              "models": entries, "runtime_s": round(time.perf_counter() - t0, 1)})
    print(f"wrote {target}")
    return 0
