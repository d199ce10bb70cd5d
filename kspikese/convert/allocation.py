"""Per-layer spike targets that spend a rate budget where spikes are cheap (``allocation: events``).

Data-based normalisation (:mod:`kspikese.convert.calibration`) gives every hidden layer the
factor ``F_l = T / (ω λ_l)`` (``T`` = ``target_spikes`` at the activation percentile ``λ_l``);
layers whose outputs are summed then share one factor (:func:`kspikese.convert.scaling.equalise`).
But a spike of one layer may cost many more synaptic events than a spike of another (a neuron
read by a 1×1 convolution with 512 outputs against one read by a depthwise kernel of 3), and
layers differ in how much their rounding matters.  With ``allocation: events`` each *unit* ``u``
— a hidden layer, or the layers of one sum group, which must share a factor — has its factors
multiplied by ``g_u``, chosen to minimise the rounding noise at the expected synaptic events of
the uniform target.

The model, per hidden layer ``l`` on the calibration data, with the uniform factors ``F_l``
(after equalisation):

- a neuron's output is its activation rounded to steps of ``1 / (ω F_l g_u)`` (``v0 = 0.5``):
  an error of variance :math:`1 / (12\\, (\\omega F_l g_u)^2)`, or relative to the layer's mean
  square activation :math:`E[a_l^2]`, :math:`n_l / g_u^2` with
  :math:`n_l = 1 / (12\\, (\\omega F_l)^2\\, E[a_l^2])`; a layer's relative error passes on to
  the layers after it, so the output's relative noise is taken as
  :math:`N = \\sum_u A_u / g_u^2`, :math:`A_u = \\sum_{l \\in u} n_l`;
- its neurons emit :math:`m_l g_u` spikes per neuron and step on average, with
  :math:`m_l = \\omega F_l E|a_l|`, and each spike per neuron and step costs ``k_l`` synaptic
  events per inference (:func:`kspikese.energy.fan_out.events_per_spike`), so the unit's events
  are :math:`C_u g_u`, :math:`C_u = \\sum_{l \\in u} k_l m_l`.

Minimising ``N`` subject to :math:`\\sum_u C_u g_u = \\sum_u C_u` (the uniform target's events)
gives, by a Lagrange multiplier,

.. math::

    g_u = c \\, \\left(\\frac{A_u}{C_u}\\right)^{1/3},

with ``c`` set by the constraint.  Each ``g_u`` is kept within ``allocation_bounds`` (default
``[1/4, 4]``; a layer near one spike at its percentile goes silent); ``c`` is then found by
bisection so that the clipped multipliers still spend the uniform events.  A unit whose spikes
drive no synapse (``C_u = 0``) gets the upper bound.  The linear readout keeps
``readout_spikes``.

``allocation: measured`` solves the same problem with ``A_u`` replaced by ``E_u``, the output's
noise-to-signal ratio with only unit ``u``'s layers rounded at their uniform factors, measured on
the first calibration frames (:mod:`kspikese.convert.sensitivity`): the noise each unit really
leaves at the output, through every gain on the way.
"""

import math

import numpy as np

ALLOCATIONS = ("uniform", "events", "measured")
MEASURE_FRAMES = 8  # calibration frames the measured noise is taken on
DEFAULT_BOUNDS = (0.25, 4.0)


def check_bounds(bounds):
    """``allocation_bounds`` as ``[low, high]`` floats with ``0 < low <= 1 <= high``.

    Raises
    ------
    ValueError
        Naming the key and what was expected, for anything else (not a pair of numbers, or out
        of order).
    """
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds)
            or not 0 < bounds[0] <= 1 <= bounds[1] or not math.isfinite(bounds[1])):
        raise ValueError(f"convert: allocation_bounds must be [low, high] with 0 < low <= 1 "
                         f"<= high, got {bounds!r}")
    return [float(b) for b in bounds]


def multipliers(cost, noise, bounds=DEFAULT_BOUNDS, iterations=100):
    """``g_u`` minimising :math:`\\sum_u A_u / g_u^2` subject to
    :math:`\\sum_u C_u g_u = \\sum_u C_u` and ``low <= g_u <= high`` (see the module).

    Parameters
    ----------
    cost, noise : dict
        ``{unit: C_u}`` (>= 0) and ``{unit: A_u}`` (> 0) over the same units.
    bounds : tuple of float
        ``(low, high)`` with ``0 < low <= 1 <= high``.
    iterations : int
        Bisection steps on ``log c``.

    Returns
    -------
    dict
        ``{unit: g_u}``.

    Raises
    ------
    ValueError
        For bounds outside ``0 < low <= 1 <= high``, or units missing from one of the dicts.
    """
    low, high = check_bounds(bounds)
    units = sorted(cost)
    if set(noise) != set(units):
        raise ValueError("allocation: cost and noise must name the same units")
    c = np.array([float(cost[u]) for u in units])
    a = np.array([float(noise[u]) for u in units])
    free = c <= 0
    shape = np.where(free, 1.0, (a / np.where(free, 1.0, c)) ** (1.0 / 3.0))
    budget = c.sum()

    def g(log_c):
        return np.where(free, high, np.clip(np.exp(log_c) * shape, low, high))

    lo = float(np.log(low / shape.max())) - 1.0  # every g at `low`: spends <= the budget
    hi = float(np.log(high / shape.min())) + 1.0  # every g at `high`: spends >= it
    for _ in range(iterations if budget > 0 else 0):
        mid = 0.5 * (lo + hi)
        if float(np.dot(c, g(mid))) > budget:
            hi = mid
        else:
            lo = mid
    return {u: float(v) for u, v in zip(units, g(lo))}


def allocated_factors(ann, names, outs, factors, cfg, calibration):
    """Per-layer factors of ``allocation: events`` or ``measured``: the uniform ``factors`` of the
    hidden layers ``names`` (activations ``outs`` on the ``calibration`` frames) times their
    unit's ``g_u``.

    Parameters
    ----------
    ann : tf.keras.Model
        The ANN (relays already inserted, if any).
    names : list of str
        Its hidden neuron layers.
    outs : list of numpy.ndarray
        Their activations on the calibration data.
    factors : dict
        ``{name: F}`` of the uniform target, before equalisation.
    cfg : dict
        The parsed ``convert:`` section (``dt``, ``timesteps``, ``readout``, ``sum_scale``,
        ``allocation``, ``allocation_bounds``).
    calibration : numpy.ndarray
        The calibration frames ``(n, L, 1)``; ``L`` is the length the synaptic prices are
        computed for.

    Returns
    -------
    dict
        ``{name: F · g_u}``.
    """
    from kspikese.convert.scaling import carriers_feeding, layer_targets, sum_groups

    sum_scale = cfg.get("sum_scale", "geometric")
    realised = layer_targets(ann, factors, sum_scale)  # carrier -> equalised factor
    group_of = {m: f"sum group {i}" for i, members in enumerate(sum_groups(ann)) for m in members}
    calibration = np.asarray(calibration)
    prices = spike_prices(ann, names, cfg, calibration.shape[1])
    dt = float(cfg["dt"])
    carriers = {name: carriers_feeding(ann.get_layer(name))[0].name for name in names}
    unit = {name: group_of.get(carriers[name], carriers[name]) for name in names}
    measured = cfg.get("allocation") == "measured"
    cost, noise = {}, {}
    for name, out in zip(names, outs):
        u, f = unit[name], realised[carriers[name]]
        magnitude = np.abs(np.asarray(out, dtype=np.float64))
        cost[u] = cost.get(u, 0.0) + prices[name] * dt * f * float(np.mean(magnitude))
        if not measured:  # the modelled A_u
            square = max(float(np.mean(magnitude ** 2)), 1e-30)
            noise[u] = noise.get(u, 0.0) + 1.0 / (12.0 * (dt * f) ** 2 * square)
    if measured:  # the measured E_u in its place
        from kspikese.convert.sensitivity import output_noise

        steps = {n: dt * realised[carriers[n]] * int(cfg.get("timesteps", 1)) for n in names}
        noise = {u: max(e, 1e-30) for u, e in
                 output_noise(ann, unit, steps, calibration[:MEASURE_FRAMES]).items()}
    g = multipliers(cost, noise, cfg.get("allocation_bounds") or DEFAULT_BOUNDS)
    return {name: realised[carriers[name]] * g[unit[name]] for name in names}


def spike_prices(ann, names, cfg, frame_len):
    """``{layer: k_l}`` for the ANN layers ``names``: synaptic events per inference of one spike
    per neuron and step, read off the ANN converted as it is (prices do not depend on the scale).
    """
    from kspikese import energy
    from kspikese.convert.spiking import to_spiking
    from kspikese.energy.fan_out import events_per_spike

    snn = to_spiking(ann, dt=cfg["dt"], seed=0, timesteps=cfg.get("timesteps", 1),
                     readout=cfg.get("readout", "readout"), v0=0.5)
    prices = events_per_spike(energy.with_frame_len(snn, frame_len))
    missing = [n for n in names if f"{n}_spike" not in prices]
    if missing:
        raise ValueError(f"convert: allocation: no spiking layer for {missing} in the SNN")
    return {n: float(prices[f"{n}_spike"]) for n in names}
