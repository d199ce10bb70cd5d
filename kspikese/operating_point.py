"""A table's operating point: the rate-control knobs its YAML runs with, read and described.

The knobs stay where the pipeline reads them (``convert:``, ``finetune: spike_penalty:``); an
``operating_point:`` section only says where they were chosen (``front:``, ``why:``).  Table 5
prints :func:`describe_operating_point`; ``kspikese pareto`` marks the grid point with the table's
knobs (:func:`is_operating_point`).
"""

import math

from kspikese import config as configs


def operating_point(cfg):
    """The table's operating point: its rate-control knobs and the front they came from.

    The knobs are read where the pipeline reads them (``convert:`` ``target_spikes``,
    ``percentile``, ``v0``, ``timesteps``; ``finetune: spike_penalty:``, ``max_events_per_mac``),
    so the point stated is the point run; ``operating_point:`` (optional) only says where it came
    from: ``front``, ``why``.

    Returns
    -------
    dict
        ``{activation_scale, target_spikes, percentile, v0, timesteps, penalty_weight,
        penalty_target, penalty_weighting, penalty_adapt_gain, rate_budget, relays, sum_scale,
        allocation, front, why}``; ``rate_budget``, ``front`` and ``why`` are ``None`` when not
        stated.  (Grid points inherit ``relays`` and ``sum_scale`` from the table's ``convert:``.)

    Raises
    ------
    kspikese.config.ConfigError
        Naming the YAML file, for an ``operating_point:`` that is not a mapping of strings with
        the keys of :data:`kspikese.config.OPERATING_KEYS`.
    """
    stated = configs.check_operating_point(cfg, cfg.get("source"))
    finetune = cfg.get("finetune") or {}
    penalty, budget = finetune.get("spike_penalty"), finetune.get("max_events_per_mac")
    conv = cfg["convert"]
    data_scale = conv.get("activation_scale", "data") == "data"
    return {"activation_scale": conv.get("activation_scale", "data"),
            "target_spikes": float(conv.get("target_spikes", 30)) if data_scale else None,
            "percentile": float(conv.get("percentile", 99.9)) if data_scale else None,
            "v0": conv.get("v0", "random"), "timesteps": int(conv.get("timesteps", 1)),
            "penalty_weight": float(penalty["weight"]) if penalty else 0.0,
            "penalty_target": float(penalty.get("target", 0.0)) if penalty else 0.0,
            "penalty_weighting": penalty.get("weighting", "neurons") if penalty else "neurons",
            "penalty_adapt_gain": float(penalty.get("adapt_gain", 0.0)) if penalty else 0.0,
            "rate_budget": float(budget) if budget is not None else None,
            "relays": bool(conv.get("relays", False)),
            "sum_scale": conv.get("sum_scale", "geometric"),
            "allocation": conv.get("allocation", "uniform"),
            "front": stated.get("front"), "why": stated.get("why")}


def describe_operating_point(op):
    """One line for tables: ``target 30 spikes at the 99.9th percentile, v0 random, T 1, no
    spike penalty (front: ...)``."""
    scale = (f"target {op['target_spikes']:g} spikes at the {op['percentile']:g}th percentile"
             if op["target_spikes"] is not None else f"activation scale {op['activation_scale']}")
    weighting = (" (events-weighted)" if op.get("penalty_weighting") == "events" else "")
    adapted = (f" adapted to the budget (gain {op['penalty_adapt_gain']:g})"
               if op.get("penalty_adapt_gain") else "")
    penalty = (f"spike penalty w {op['penalty_weight']:g} above {op['penalty_target']:g}"
               f"{weighting}{adapted}" if op["penalty_weight"] else "no spike penalty")
    text = f"{scale}, v0 {op['v0']}, T {op['timesteps']}, {penalty}"
    if op.get("rate_budget") is not None:
        text += f", rate budget {op['rate_budget']:g} events per ANN MAC"
    if op.get("relays"):
        text += f", relays after sums ({op.get('sum_scale', 'geometric')} sum scale)"
    elif op.get("sum_scale", "geometric") != "geometric":
        text += f", {op['sum_scale']} sum scale"
    if op.get("allocation", "uniform") != "uniform":
        noise = {"events": "modelled", "measured": "measured"}.get(op["allocation"], op["allocation"])
        text += (f", per-layer targets ({op['allocation']}: least {noise} rounding noise at the "
                 f"same expected events)")
    if op["front"]:
        text += f"; chosen from {op['front']}"
    if op["why"]:
        text += f" ({op['why'].strip()})"
    return text


def is_operating_point(point, op, penalty_target=0.0):
    """Whether a grid point has the table's operating-point knobs (v0 compared as text).

    The grid weights its penalty by neurons at a fixed weight and has no rate budget, so a table
    whose penalty is events-weighted, adapted to a budget, or whose fine-tune keeps epochs by a
    budget (``max_events_per_mac``) is never on it."""
    return (op["target_spikes"] is not None
            and op.get("rate_budget") is None and not op.get("penalty_adapt_gain")
            and math.isclose(point["target_spikes"], op["target_spikes"])
            and str(point["v0"]) == str(op["v0"]) and int(point["timesteps"]) == op["timesteps"]
            and point.get("allocation", "uniform") == op.get("allocation", "uniform")
            and math.isclose(point["penalty_weight"], op["penalty_weight"])
            and (not op["penalty_weight"] or (
                math.isclose(penalty_target, op["penalty_target"])
                and op.get("penalty_weighting", "neurons") == "neurons")))
