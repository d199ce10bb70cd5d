"""The paper's two models as Keras functional graphs (ANN); :func:`kspikese.to_spiking` makes
their SNNs.  Also saving/loading and a text summary.

    >>> from kspikese import models, to_spiking
    >>> ann = models.build_wave_u_net()            # (None, 16384, 1) -> (None, 16384, 1)
    >>> snn = to_spiking(ann, dt=0.001, seed=0)
    >>> print(models.summary(snn))
"""

from kspikese.models.conv_tasnet import build_conv_tasnet
from kspikese.models.serialization import custom_objects, load_model, save_model, summary
from kspikese.models.wave_u_net import build_wave_u_net, filter_schedule

BUILDERS = {"wave_u_net": build_wave_u_net, "conv_tasnet": build_conv_tasnet}
CUSTOM_OBJECTS = custom_objects


def build_model(name, **kwargs):
    """Build the ANN named ``name`` (``"wave_u_net"`` or ``"conv_tasnet"``)."""
    if name not in BUILDERS:
        raise ValueError(f"build_model: unknown model {name!r}; have {sorted(BUILDERS)}")
    return BUILDERS[name](**kwargs)


__all__ = ["BUILDERS", "CUSTOM_OBJECTS", "build_conv_tasnet", "build_model", "build_wave_u_net",
           "custom_objects", "filter_schedule", "load_model", "save_model", "summary"]
