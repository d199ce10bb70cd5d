"""ANN -> SNN conversion (stage 2), usable on any functional or Sequential Keras model.

Modules, in the order a conversion uses them:

- :mod:`~kspikese.convert.settings`: the ``convert:`` section and its ``activation_scale``;
- :mod:`~kspikese.convert.calibration`: data-based per-layer factors;
- :mod:`~kspikese.convert.allocation`: per-layer targets priced by synaptic events;
- :mod:`~kspikese.convert.scaling` and :mod:`~kspikese.convert.scaling_rules`: the
  function-preserving activation scaling and its per-layer-type rules;
- :mod:`~kspikese.convert.spiking` and :mod:`~kspikese.convert.neuron_rules`: the weight transfer
  into spiking neurons and which neuron each layer type becomes;
- :mod:`~kspikese.convert.graph`: the functional rebuild they share;
- :mod:`~kspikese.convert.stage`: :func:`convert`, all of it in one call.

The maths is in ``docs/conversion.md``.
"""

from kspikese.convert.calibration import layer_scales, spike_factor
from kspikese.convert.neuron_rules import (Neuron, Unconvertible, neuron_layers, neuron_of,
                                           neuron_rule)
from kspikese.convert.scaling import input_scale, scale_activations
from kspikese.convert.scaling_rules import scaling_rule
from kspikese.convert.settings import INT16, needs_calibration, parse_activation_scale
from kspikese.convert.spiking import ToSpiking, is_spiking, spiking_layers, to_spiking
from kspikese.convert.stage import convert

__all__ = ["INT16", "Neuron", "ToSpiking", "Unconvertible", "convert", "input_scale",
           "is_spiking", "layer_scales", "needs_calibration", "neuron_layers", "neuron_of",
           "neuron_rule", "parse_activation_scale", "scale_activations", "scaling_rule",
           "spike_factor", "spiking_layers", "to_spiking"]
