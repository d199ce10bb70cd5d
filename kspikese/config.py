"""Experiment configuration: ``experiments/<name>.yaml`` files, quick overrides, fingerprints.

A config is a nested dict.  ``profiles:`` holds named overrides of the whole recipe: the file's
top level is the ``cpu`` profile (sized for 2 CPU cores), ``paper`` follows the paper's schedule
(for a GPU), ``ship`` is the long recipe of the shipped weights.  ``quick:`` holds overrides
merged in last for ``--quick`` runs (the same code on a small subset with a few steps).  ``fingerprint(cfg, *keys)`` hashes the parts of a config
that decide a stage's result, so a finished stage is reused only by the same settings.
"""

import copy
import hashlib
import json
from pathlib import Path

import yaml

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"

REQUIRED = ("table", "title", "model", "recipe", "frame_len", "ann", "convert", "finetune", "eval")
# sections that must be mappings, with the keys each must hold
SECTIONS = {"ann": ("lr", "epochs"), "convert": ("dt",), "finetune": ("lr", "epochs"), "eval": ()}


class ConfigError(ValueError):
    """An experiment config is missing, unreadable or incomplete; the message names the file."""


def check_keys(value, keys, where):
    """``value`` as a mapping (``None`` → ``{}``) whose keys are among ``keys``; ``ValueError``
    naming ``where`` and the expected keys otherwise."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping with keys {sorted(keys)}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(keys)}")
    return value


def known_experiments():
    """The names of the YAML files in ``experiments/``."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def experiment_path(name):
    """Path of ``experiments/<name>.yaml`` (``name`` may also be a path to a YAML file)."""
    path = Path(str(name))
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: no such experiment file")
        return path
    path = EXPERIMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown table {name!r}; known: {', '.join(known_experiments())} "
                          "(or give a path to an experiment .yaml)")
    return path


def read_yaml(path):
    """The mapping in a YAML file; :class:`ConfigError` naming the file and line otherwise."""
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return cfg


def check(cfg, path):
    """Raise :class:`ConfigError` unless ``cfg`` holds every required key and section."""
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(f"{path}: missing required keys {missing}")
    for section, keys in SECTIONS.items():
        value = cfg[section]
        if value is None and not keys:
            cfg[section] = value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: `{section}:` must be a mapping, got {value!r}")
        absent = [k for k in keys if k not in value]
        if absent:
            raise ConfigError(f"{path}: `{section}:` is missing {absent}")
    check_training_data(cfg, path)
    check_operating_point(cfg, path)
    check_rate_budget(cfg, path)
    check_teacher(cfg, path)
    check_precision(cfg, path)
    check_losses(cfg, path)
    check_init(cfg, path)


def check_losses(cfg, path):
    """Each stage's ``loss:`` must be one :func:`kspikese.losses.get` accepts (a known name, known
    settings in range), so a typo fails when the YAML loads, before anything is trained.

    Defaults are dropped, so a stage fingerprints as it did before the setting existed: ``loss:
    snr`` (the paper's, what no key means) and ``stoi_weight: 0`` (no intelligibility term)."""
    from kspikese import losses

    for section in ("ann", "finetune"):
        loss = cfg[section].get("loss")
        if loss is None:
            continue
        try:
            losses.get(loss)
        except ValueError as err:
            raise ConfigError(f"{path}: `{section}:` {err}") from None
        if loss == "snr":
            del cfg[section]["loss"]
        elif isinstance(loss, dict) and loss.get("stoi_weight", None) == 0:
            del loss["stoi_weight"]


def check_init(cfg, path):
    """``ann: init:`` (where a continued ANN starts, :mod:`kspikese.continuation`) must name
    exactly one other profile or one model; only the ANN starts from trained weights (the
    fine-tune always starts from the conversion)."""
    from kspikese import continuation

    if "init" in cfg["finetune"]:
        raise ConfigError(f"{path}: `finetune: init:` - the fine-tune starts from the converted "
                          "SNN; only `ann:` takes `init:`")
    if cfg["ann"].get("init") is None:
        cfg["ann"].pop("init", None)
        return
    try:
        continuation.check(cfg["ann"]["init"], cfg.get("profile", DEFAULT_PROFILE),
                           f"{path}: `ann: init:`")
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _finetune_only(cfg, path, key, why, check_value):
    """``key`` belongs to ``finetune:`` (``ann: key:`` is an error saying ``why``) and, when
    set, passes ``check_value`` (whose ``ValueError`` becomes a :class:`ConfigError` naming the
    file).  Returns whether it is set."""
    if key in cfg["ann"]:
        raise ConfigError(f"{path}: `ann: {key}:` - {why}")
    if cfg["finetune"].get(key) is None:
        return False
    try:
        check_value(cfg["finetune"][key])
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
    return True


def check_teacher(cfg, path):
    """``finetune: teacher:`` (the share of the ANN's output in the fine-tune's targets,
    :mod:`kspikese.teacher`) must be a number in [0, 1]; only the fine-tune has a teacher.
    ``0`` (clean targets, the default) is dropped, so it fingerprints as a fine-tune section
    without the key (e.g. a profile that sets it back from the `cpu` recipe's teacher)."""
    from kspikese.teacher import share

    if _finetune_only(cfg, path, "teacher", "the teacher is the trained ANN; it belongs to "
                      "`finetune:`", share) and share(cfg["finetune"]["teacher"]) == 0.0:
        del cfg["finetune"]["teacher"]


def check_precision(cfg, path):
    """``ann: precision:`` must be one of :data:`kspikese.precision.PRECISIONS` or ``auto``
    (replaced by what :func:`kspikese.precision.resolve` picks on this machine; ``float32``, the
    default, is dropped, so it fingerprints as an ANN section without the key); the fine-tune
    has none (an SNN's membrane voltages need float32, :mod:`kspikese.precision`)."""
    from kspikese import precision

    if "precision" in cfg["finetune"]:
        raise ConfigError(f"{path}: `finetune: precision:` - the SNN fine-tunes in float32 (a "
                          "spiking neuron's voltage needs its 24 bits); only `ann:` takes "
                          "`precision: mixed_bfloat16`")
    if "precision" in cfg["ann"]:  # `auto` is resolved here, so fingerprints and tables
        try:                         # name the arithmetic that ran
            chosen = precision.resolve(cfg["ann"]["precision"])
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
        cfg["ann"]["precision"] = chosen
        if chosen == precision.PRECISIONS[0]:  # float32, the default: the stage's fingerprint
            del cfg["ann"]["precision"]        # is the same as without the key


def check_rate_budget(cfg, path):
    """``finetune: max_events_per_mac:`` (the fine-tune's rate budget) must be a number > 0,
    only the fine-tune (an SNN) has one, and an adapted penalty weight (``adapt_gain``) needs
    it."""
    from kspikese.spike_penalty import budget_value

    if _finetune_only(cfg, path, "max_events_per_mac", "a rate budget belongs to `finetune:` "
                      "(the ANN sends no spikes)", budget_value):
        return
    if ((cfg["finetune"].get("spike_penalty") or {}).get("adapt_gain") or 0) != 0:
        raise ConfigError(f"{path}: `finetune: spike_penalty: adapt_gain:` adapts the weight to "
                          "a rate budget; set `finetune: max_events_per_mac:` too")


#: the keys of an optional ``operating_point:`` section (issue 13: where the rate-control knobs of
#: ``convert:``/``finetune:`` were chosen); the knobs themselves stay where the pipeline reads them
OPERATING_KEYS = {"front": "the command and file of the front the point was chosen from",
                  "why": "why this point (what it costs and scores there)"}


def check_operating_point(cfg, path):
    """The ``operating_point:`` section (``{}`` when absent); :class:`ConfigError` naming the
    file unless it is a mapping of non-empty strings with keys among :data:`OPERATING_KEYS`."""
    where = f"{path}: `operating_point:`"
    try:
        stated = check_keys(cfg.get("operating_point"), OPERATING_KEYS, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for key, value in stated.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where} {key} must be a non-empty string, got {value!r}")
    return stated


def check_training_data(cfg, path):
    """Raise :class:`ConfigError` unless the ``data: train:`` options (fixed or dynamic mixing,
    SNR and gain ranges, augmentation; :func:`kspikese.data.dynamic.check_options`) are valid
    and ``data: valid_voices:`` is a list of names.  An empty list or ``null`` (no voice moved,
    the default) is dropped, so a profile that sets it back from its table's list fingerprints
    as a ``data:`` section without the key."""
    from kspikese.data.dynamic import check_options

    data = cfg.get("data")
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: `data:` must be a mapping, got {data!r}")
    try:
        check_options(data.get("train"))
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    moved = data.get("valid_voices")
    if moved is not None and (not isinstance(moved, list) or not all(isinstance(v, str) and v
                                                                     for v in moved)):
        raise ConfigError(f"{path}: `data: valid_voices:` must be a list of voice names (training "
                          f"voices moved into validation), got {moved!r}")
    if "valid_voices" in data and not moved:
        del data["valid_voices"]


DEFAULT_PROFILE = "cpu"


def load(name, quick=False, overrides=None, profile=DEFAULT_PROFILE):
    """Load an experiment config: the file, then its profile, then ``quick:``, then ``overrides``.

    Parameters
    ----------
    name : str or Path
        ``table1`` .. ``table4`` (a file in ``experiments/``) or a path to a YAML file.
    quick : bool
        Merge the ``quick:`` overrides (the same code on a tiny subset with a few steps).
    overrides : dict, optional
        Merged last (recursively).
    profile : str
        ``cpu`` (the file's top level) or a key of its ``profiles:`` section (e.g. ``paper``,
        ``ship``), whose overrides are merged first.

    Returns
    -------
    dict
        The config, with ``quick``, ``profile`` and ``source`` (the file's path) added.

    Raises
    ------
    ConfigError
        Unknown name or profile, unreadable or malformed YAML, missing keys or sections.
    """
    path = experiment_path(name)
    cfg = read_yaml(path)
    profiles = cfg.pop("profiles", {}) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: `profiles:` must be a mapping of profile names to overrides")
    profile = str(profile or DEFAULT_PROFILE)
    if profile != DEFAULT_PROFILE:
        if profile not in profiles:
            known = ", ".join([DEFAULT_PROFILE, *profiles])
            raise ConfigError(f"{path}: unknown profile {profile!r}; known: {known}")
        cfg = merge(cfg, profiles[profile] or {})
    quick_part = cfg.pop("quick", {}) or {}
    if quick:
        cfg = merge(cfg, quick_part)
    if overrides:
        cfg = merge(cfg, overrides)
    cfg["quick"] = bool(quick)
    cfg["profile"] = profile
    cfg["source"] = str(path)
    check(cfg, path)
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
