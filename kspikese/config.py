"""Experiment configuration: ``experiments/<name>.yaml`` files, quick overrides, fingerprints.

A config is a nested dict.  ``quick:`` holds overrides merged in for ``--quick`` runs (the same
code on a small subset with a few steps).  ``fingerprint(cfg, *keys)`` hashes the parts of a config
that decide a stage's result, so a finished stage is reused only by the same settings.
"""

import copy
import hashlib
import json
from pathlib import Path

import yaml

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"

REQUIRED = ("table", "title", "model", "recipe", "frame_len", "ann", "convert", "finetune", "eval")


def experiment_path(name):
    """Path of ``experiments/<name>.yaml`` (``name`` may also be a path to a YAML file)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    path = EXPERIMENTS_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no experiment config {path}; known experiments: {known}")
    return path


def load(name, quick=False, overrides=None):
    """Load an experiment config, merging its ``quick:`` section when ``quick`` is true."""
    path = experiment_path(name)
    with open(path) as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a YAML mapping at the top level")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"{path}: missing required keys {missing}")
    quick_part = cfg.pop("quick", {}) or {}
    if quick:
        cfg = merge(cfg, quick_part)
    if overrides:
        cfg = merge(cfg, overrides)
    cfg["quick"] = bool(quick)
    cfg["source"] = str(path)
    return cfg


def merge(base, extra):
    """Recursive dict merge: values of ``extra`` win; nested dicts are merged key by key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def fingerprint(*parts):
    """Short stable hash of JSON-able parts (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]
