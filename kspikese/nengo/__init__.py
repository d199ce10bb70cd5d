"""Run a trained kspikese SNN natively in Nengo with nengo-dl (issue 8).

nengo-dl 3.6.0 needs TensorFlow/Keras <= 2.12, so it lives in its own environment (``make
nengo-env`` -> ``.venv-nengo``), while the SNNs are trained and saved with TensorFlow 2.21 +
tf-keras in ``.venv``.  A ``.keras`` file of one cannot be loaded by the other, so the two meet
in a neutral format, the *spec*:

1. :mod:`kspikese.nengo.spec` (either environment; run in the one that saved the checkpoint)
   walks the Keras SNN's graph and writes ``spec.json`` (the ops, in graph order, with their
   configs) and ``weights.npz`` (kernels, biases, BatchNorm statistics, and every neuron's seeded
   initial membrane voltages).  It also enhances test utterances with the Keras SNN itself
   (``reference.npz``), for the comparison.
2. :mod:`kspikese.nengo.graph` (nengo environment) rebuilds a plain Keras 2.12 model from the
   spec: standard layers plus :class:`~kspikese.nengo.graph.IFNeurons`, the one-timestep IF
   neuron with its initial voltages.
3. :mod:`kspikese.nengo.converters` registers the ``nengo_dl.Converter`` LayerConverters that
   nengo-dl lacks (IF neurons as ``nengo.SpikingRectifiedLinear``, ``Conv1DTranspose`` as
   ``nengo.transforms.ConvolutionTranspose``, ``DepthwiseConv1D`` as a ``nengo.Sparse``
   transform, ``Rescaling``, ``SynapticMultiply``); :func:`kspikese.nengo.build.convert` runs the
   Converter with ``allow_fallback=False``, so the network is made of native Nengo objects only.
4. :mod:`kspikese.nengo.cli`: ``kspikese export-nengo`` and ``kspikese nengo-eval``.

Only :mod:`.spec` may be imported without nengo-dl.
"""
