"""Device prices: Joules per synaptic operation and per neuron update.

The table is KerasSpiking's (``keras_spiking.ModelEnergy.devices``: ``cpu``, ``gpu``, ``arm``
from Degnan et al. 2015, ``loihi`` from Davies et al. 2018, ``spinnaker`` / ``spinnaker2`` from
Höppner et al. 2019) plus ``cpu-events``: the ``cpu`` prices on an event-driven simulation.
"""

import kspikese  # noqa: F401
from keras_spiking import ModelEnergy

DEVICES = {name: dict(spec) for name, spec in ModelEnergy.devices.items()}
DEVICES["cpu-events"] = dict(DEVICES["cpu"], spiking=True)

# the devices priced by default: an ANN on a CPU, an SNN on every device of Table 5
ANN_DEVICES = ("cpu",)
SNN_DEVICES = ("cpu", "cpu-events", "loihi", "spinnaker", "spinnaker2")


def register_device(name, energy_per_synop, energy_per_neuron, spiking):
    """Add (or replace) a device.

    Parameters
    ----------
    name : str
        The device's name in :attr:`Estimate.totals`.
    energy_per_synop, energy_per_neuron : float
        Joules per synaptic operation / per neuron update.
    spiking : bool
        Event-driven (pays per synaptic event) or dense (pays every connection once).
    """
    DEVICES[str(name)] = {"energy_per_synop": float(energy_per_synop),
                          "energy_per_neuron": float(energy_per_neuron), "spiking": bool(spiking)}


def device(name):
    """The price table of ``name``; ``ValueError`` listing the known devices otherwise."""
    if name not in DEVICES:
        raise ValueError(f"devices: unknown device {name!r}; known: {', '.join(DEVICES)}")
    return DEVICES[name]


def price(name, connections, neurons, events, timesteps):
    """Joules per inference of ``connections`` / ``neurons`` on device ``name``.

    .. math::

        E_{dense} = e_{syn} C + e_{neuron} N, \\qquad
        E_{spiking} = e_{syn} S + e_{neuron} N T

    A dense device computes every connection once per inference, as the ANN (KerasSpiking's
    convention); a spiking device pays per synaptic event, :math:`S = C \\cdot r \\cdot dt \\cdot T`
    (``events``, from measured input rates ``r``), and updates every neuron each of the ``T``
    timesteps.

    Parameters
    ----------
    name : str
        A device of :data:`DEVICES`.
    connections, neurons : float
        Per example and timestep.
    events : float
        Synaptic events per inference (ignored by dense devices; NaN if not measured).
    timesteps : int
        Timesteps per inference.

    Returns
    -------
    float
    """
    spec = device(name)
    if not spec["spiking"]:
        return spec["energy_per_synop"] * connections + spec["energy_per_neuron"] * neurons
    return spec["energy_per_synop"] * events + spec["energy_per_neuron"] * neurons * timesteps
