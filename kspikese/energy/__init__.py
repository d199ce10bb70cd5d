"""Energy per inference of any Keras model, ANN or SNN, on CPUs and neuromorphic devices.

In KerasSpiking's style: every layer type has a small stats function registered with
:func:`register_layer` and looked up along the class MRO (:mod:`.registry`); the counts of the
linear layers (:mod:`.linear`), pooling (:mod:`.pooling`), element-wise layers
(:mod:`.elementwise`), routing layers (:mod:`.shape`) and spiking layers (:mod:`.spiking`) are
derived in each function's docstring.  :func:`estimate` combines them with input rates measured
on example data (:mod:`.rates`) and device prices (:mod:`.devices`); :mod:`.table5` is the
``kspikese energy`` command.  See ``docs/energy.md``.
"""

from kspikese.energy import elementwise, linear, pooling, shape, spiking  # noqa: F401  (register)
from kspikese.energy.devices import ANN_DEVICES, DEVICES, SNN_DEVICES, register_device
from kspikese.energy.estimate import (WARNING_TEXT, Estimate, compare, estimate, model_dt,
                                      model_timesteps, stock_counts)
from kspikese.energy.fan_out import events_per_spike
from kspikese.energy.fixed_shape import with_frame_len, with_input_shape
from kspikese.energy.rates import Measured, default_example, measure_inputs
from kspikese.energy.registry import (Counts, UncountedLayerError, count_model, model_nodes,
                                      register_layer, stats_function)

__all__ = ["ANN_DEVICES", "Counts", "DEVICES", "Estimate", "Measured", "SNN_DEVICES",
           "UncountedLayerError", "WARNING_TEXT", "compare", "count_model", "default_example",
           "estimate", "events_per_spike", "measure_inputs", "model_dt", "model_nodes",
           "model_timesteps", "register_device", "register_layer", "stats_function", "stock_counts",
           "with_frame_len", "with_input_shape"]
