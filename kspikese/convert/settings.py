"""The ``convert:`` section of an experiment: its keys, and the one parser of the scale setting.

``activation_scale`` says how activations are scaled before conversion, so that one-timestep
neurons spike (an IF neuron with window ω emits ``floor(v + a·ω)`` spikes: at ω = 0.001 an
activation of order 1 never reaches a spike):

- a number ``c > 0``: input and every bias times ``c``, output divided by ``c``;
- ``"int16"``: ``c = 32768`` (audio in int16 units); ``"none"``: ``c = 1``;
- ``"data"``: per-layer data-based normalisation on calibration frames
  (:mod:`kspikese.convert.calibration`).
"""

import math

from kspikese.convert.allocation import ALLOCATIONS, check_bounds
from kspikese.convert.scaling import SUM_SCALES
from kspikese.neurons import check_v0

INT16 = 32768.0
DATA = "data"
KEY = "activation_scale"
DEFAULT = "int16"
ALLOWED = "a positive number, 'int16', 'none' or 'data'"

#: every key a ``convert:`` section may have, with its meaning
KEYS = {
    "dt": "the neurons' time step ω (required)",
    "timesteps": "steps per input (default 1)",
    KEY: f"{ALLOWED} (default {DEFAULT!r})",
    "percentile": "data: the activation percentile mapped to target_spikes (default 99.9)",
    "target_spikes": "data: spikes per step of a hidden neuron at that percentile (default 30)",
    "readout_spikes": "data: the same for the linear readout (default target_spikes)",
    "v0": "initial voltages: 'random' (seeded U[0, 1), KerasSpiking's) or a number in [0, 1) "
          "(0.5: rounding, as QCFS; default 'random')",
    "readout": "name of the linear output layer that gets a linear spiking neuron "
               "(default 'readout'; None: no spiking readout)",
    "relays": "data: a relay neuron after every sum of spike trains, re-spiking residual "
              "streams at their own scale (kspikese.convert.relays; default false)",
    "allocation": "data: 'uniform' (every hidden layer at target_spikes, the default), "
                  "'events' (per-layer targets spending the same expected synaptic events with "
                  "less modelled quantisation noise) or 'measured' (the same with each layer's "
                  "noise at the output measured; kspikese.convert.allocation)",
    "allocation_bounds": "data, allocation events or measured: [low, high], each layer's "
                         "target kept within low..high times target_spikes (default [0.25, 4])",
    "sum_scale": "data: the one factor of layers whose outputs are summed: 'geometric' (the "
                 "geometric mean of their factors, default) or 'min' (the smallest)",
}


def parse_activation_scale(value):
    """The scale an ``activation_scale`` setting stands for.

    Parameters
    ----------
    value : float, int or str
        A number ``c > 0`` (or its text), ``"int16"``, ``"none"`` or ``"data"`` (case and
        surrounding spaces ignored).

    Returns
    -------
    float or str
        ``c`` (``32768.0`` for int16, ``1.0`` for none), or ``"data"``.

    Raises
    ------
    ValueError
        Naming the key and the allowed values, for anything else.
    """
    original = value
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("int16", "none", DATA):
            return {"int16": INT16, "none": 1.0, DATA: DATA}[key]
        try:
            value = float(key)
        except ValueError:
            value = None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        value = None
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"convert: {KEY} must be {ALLOWED}; got {original!r}")
    return float(value)


def check(cfg):
    """Validate a ``convert:`` section; return it with defaults filled in.

    Parameters
    ----------
    cfg : dict
        The section (see :data:`KEYS`).

    Returns
    -------
    dict
        ``dt``, ``timesteps``, ``activation_scale`` (parsed: a float or ``"data"``),
        ``percentile``, ``target_spikes`` and ``readout_spikes`` (``None``: as
        ``target_spikes``), ``readout`` (default ``"readout"``), ``v0`` (``"random"`` or a
        number in ``[0, 1)``), ``relays`` (bool, default ``False``; only with ``"data"``),
        ``sum_scale`` (``"geometric"`` or ``"min"``), ``allocation`` (``"uniform"``,
        ``"events"`` or ``"measured"``), ``allocation_bounds`` (``None`` or ``[low, high]``).
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"convert: expected a mapping, got {type(cfg).__name__}")
    if "input_scale" in cfg:
        raise ValueError(f"convert: the key 'input_scale' is now called {KEY!r} ({ALLOWED})")
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ValueError(f"convert: unknown keys {unknown}; known: {sorted(KEYS)}")
    if "dt" not in cfg:
        raise ValueError("convert: missing key 'dt' (the neurons' time step ω)")
    out = {
        "dt": _positive(cfg["dt"], "dt"),
        "timesteps": cfg.get("timesteps", 1),
        KEY: parse_activation_scale(cfg.get(KEY, DEFAULT)),
        "percentile": _positive(cfg.get("percentile", 99.9), "percentile"),
        "target_spikes": _positive(cfg.get("target_spikes", 30.0), "target_spikes"),
        "readout_spikes": cfg.get("readout_spikes"),
        "readout": cfg.get("readout", "readout"),
        "v0": cfg.get("v0", "random"),
        "relays": cfg.get("relays", False),
        "sum_scale": cfg.get("sum_scale", "geometric"),
        "allocation": cfg.get("allocation", "uniform"),
        "allocation_bounds": cfg.get("allocation_bounds"),
    }
    if out["allocation"] not in ALLOCATIONS:
        raise ValueError(f"convert: allocation must be one of {', '.join(map(repr, ALLOCATIONS))}, "
                         f"got {out['allocation']!r}")
    if out["allocation"] != "uniform" and out[KEY] != DATA:
        raise ValueError(f"convert: allocation {out['allocation']!r} needs {KEY}: data, got "
                         f"{KEY} {cfg.get(KEY, DEFAULT)!r}")
    if out["allocation_bounds"] is not None:
        out["allocation_bounds"] = check_bounds(out["allocation_bounds"])
    if out["sum_scale"] not in SUM_SCALES:
        raise ValueError(f"convert: sum_scale must be {' or '.join(map(repr, SUM_SCALES))}, got "
                         f"{out['sum_scale']!r}")
    if not isinstance(out["relays"], bool):
        raise ValueError(f"convert: relays must be true or false, got {out['relays']!r}")
    if out["relays"] and out[KEY] != DATA:
        raise ValueError(f"convert: relays need {KEY}: data (a relay's rate is set by "
                         f"data-based normalisation), got {KEY} {cfg.get(KEY, DEFAULT)!r}")
    if out["readout"] is not None and not isinstance(out["readout"], str):
        raise ValueError(f"convert: readout must be a layer name or None, got {out['readout']!r}")
    if out["percentile"] > 100:
        raise ValueError(f"convert: percentile must be in (0, 100], got {out['percentile']}")
    if out["readout_spikes"] is not None:
        out["readout_spikes"] = _positive(out["readout_spikes"], "readout_spikes")
    try:
        v0 = check_v0(out["v0"])
    except ValueError as exc:
        raise ValueError(f"convert: {exc}") from None
    out["v0"] = "random" if v0 is None else v0
    return out


def needs_calibration(cfg):
    """Whether a ``convert:`` section asks for calibration data (``activation_scale: data``)."""
    return parse_activation_scale(cfg.get(KEY, DEFAULT)) == DATA


def _positive(value, key):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"convert: {key} must be a positive number, got {value!r}")
    return number
