"""Speech-enhancement measures of the paper, computed the way the field's reference code does.

``from kspikese.metrics import evaluate_pair, evaluate_set, METRICS``

=============  =========================================================  ==================
key            measure                                                    module
=============  =========================================================  ==================
snr            10 log10(||s||^2 / ||s - s_hat||^2) (dB)                   :mod:`.snr`
ssnr           segmental SNR of Loizou's composite.m (dB, [-10, 35])      :mod:`.snr`
si_snr         scale-invariant SNR (dB)                                   :mod:`.snr`
stoi           pystoi.stoi(extended=False)                                :mod:`.perceptual`
pesq           pesq.pesq(16000, s, s_hat, 'wb') (P.862.2 MOS-LQO)         :mod:`.perceptual`
csig/cbak/covl Hu & Loizou 2008 composite measures                       :mod:`.composite`
dnsmos_*       DNSMOS P.835 SIG/BAK/OVRL (speechmos ONNX models)          :mod:`.dnsmos`
=============  =========================================================  ==================

The numpy SNRs the training loss must agree with: ``from kspikese.metrics.snr import snr, si_snr``
(the submodule ``kspikese.metrics.snr`` is not shadowed by a function of the same name).
Nothing here imports TensorFlow.
"""

from kspikese.metrics.evaluate import METRICS, check_pair, evaluate_pair, evaluate_set, means_of

__all__ = ["METRICS", "check_pair", "evaluate_pair", "evaluate_set", "means_of"]
