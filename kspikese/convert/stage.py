"""Stage 2 of the hybrid scheme (paper §3.1): ANN + ``convert:`` settings + calibration data ->
SNN, by a function-preserving activation scaling and a weight transfer."""

from kspikese.convert import settings
from kspikese.convert.calibration import layer_scales
from kspikese.convert.relays import insert_relays
from kspikese.convert.scaling import scale_activations
from kspikese.convert.spiking import to_spiking


def convert(ann, cfg, seed, calibration=None):
    """Convert a trained ANN into its SNN.

    The ANN is first scaled as ``cfg["activation_scale"]`` says (:func:`scale_activations`: the
    function is unchanged, the activations are larger), then every activation becomes a spiking
    neuron with time step ``cfg["dt"]`` (:func:`to_spiking`, spiking-aware training on, so the
    result is ready for stage 3).

    Parameters
    ----------
    ann : tf.keras.Model
        The ANN (not modified).
    cfg : dict
        The experiment's ``convert:`` section (:data:`kspikese.convert.settings.KEYS`): ``dt``,
        ``timesteps``, ``activation_scale`` (a number ``c``, ``"int16"`` = 32768, ``"none"`` = 1,
        or ``"data"``: per-layer factors from :func:`kspikese.convert.layer_scales` on
        ``calibration``), and for ``"data"`` ``percentile``, ``target_spikes``,
        ``readout_spikes``; ``readout``: the linear output layer's name (default
        ``"readout"``); ``v0``: the initial voltages, ``"random"`` (default) or a number in
        ``[0, 1)`` (0.5 rounds); ``relays``: a relay neuron after every sum
        (:func:`kspikese.convert.relays.insert_relays`, with ``"data"`` only); ``sum_scale``:
        how summed layers share one factor (:func:`kspikese.convert.scaling.equalise`);
        ``allocation``: ``"uniform"`` (default), ``"events"`` or ``"measured"``, per-layer
        targets at the same expected synaptic events (:mod:`kspikese.convert.allocation`).
    seed : int
        Seed of the neurons' initial voltages.
    calibration : array_like, optional
        Input examples; required when ``activation_scale`` is ``"data"``.

    Returns
    -------
    tf.keras.Model
        The SNN.
    """
    parsed = settings.check(cfg)
    scale = parsed[settings.KEY]
    if scale == settings.DATA:
        if calibration is None:
            raise ValueError(f"convert: {settings.KEY} 'data' needs calibration examples "
                             "(calibration=None)")
        if parsed["relays"]:
            ann = insert_relays(ann, calibration)
        scaled = scale_activations(ann, layer_scales(ann, calibration, parsed),
                                   sum_scale=parsed["sum_scale"])
    else:
        scaled = scale_activations(ann, scale)
    return to_spiking(scaled, dt=parsed["dt"], seed=seed, timesteps=parsed["timesteps"],
                      spiking_aware_training=True, readout=parsed["readout"], v0=parsed["v0"])
