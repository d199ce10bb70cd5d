"""Dynamic mixing: every training example mixed afresh from clean training speech and training
noise, so no two epochs see the same mixtures.

Switched on in the experiment YAML (the fixed validation and test mixtures stay as written)::

    data:
      train: {mixing: dynamic, snr_db: [-5, 15], gain_db: [-10, 6], examples_per_epoch: null,
              augment: {speed: [0.9, 1.1], eq: {probability: 0.5}}, extra_noise: [music]}

``mixing: fixed`` (the default) trains on the corpus's written training mixtures.

Example ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, crc32("dynamic"),
e, i])`` alone, so batch ``k`` (examples ``k B .. k B + B - 1``) depends only on
``(seed, epoch, step)`` and a resumed run sees the same examples as an uninterrupted one:

1. a training utterance, with probability proportional to its length (``sampling: length``, the
   default), or a voice uniform over the training voices and then one of its utterances with
   probability proportional to its length (``sampling: voice``: every voice is heard equally
   often, however many minutes of it the corpus holds), or a recording family uniform over the
   families (the first word of the voice's Debian package in the manifest: ``asterisk``,
   ``hedgewars``), then a voice uniform within it, then an utterance as before (``sampling:
   family``: each family is heard equally often, however many voices it has);
2. a speed factor ``f`` (:mod:`.augment`; 1 when off) and a crop of ``round(f L)`` samples at a
   uniform random start (an utterance shorter than the crop sits at a random offset in it, the
   rest zero), resampled to ``L`` samples; crops whose clean part is all zero are redrawn;
3. random EQ and reverberation (:mod:`.augment`) of the clean crop;
4. a noise type uniform over the recipe's types in the corpus and the ``extra_noise`` types
   (recorded types: a uniform random ``L``-sample segment of the type's *training* noise stream;
   ``music``: the same from :mod:`.music`'s training stream, kept outside the corpus; ``ssn``:
   speech-shaped noise from the corpus's training LTAS; ``babble``: six talkers from the other
   training utterances);
5. an SNR uniform in ``snr_db``, set on the crop's active speech as everywhere in kspikese
   (:func:`kspikese.data.mixing.noise_gain`): ``noisy = clean + g noise``;
6. a gain uniform in ``gain_db`` dB applied to both, lowered so ``max |noisy|, |clean| <= 0.99``.
"""

import json
import zlib
from pathlib import Path

import numpy as np

from kspikese.data import augment as aug
from kspikese.data import mixing, noise as noise_mod
from kspikese.config import check_keys
from kspikese.data.framing import prefetched
from kspikese.data.pairs import CorpusError, voice_of

MIXINGS = ("fixed", "dynamic")
KEYS = {"mixing", "snr_db", "gain_db", "examples_per_epoch", "augment", "sampling", "extra_noise"}
EXTRA_NOISE = ("music",)  # noise kept outside the default corpus (:mod:`.music`)
SAMPLINGS = ("length", "voice", "family")
GAIN_DB = [-10.0, 6.0]
BABBLE_TALKERS = 6
MAX_REDRAWS = 20


def check_options(options, where="data.train"):
    """The ``data: train:`` options with defaults filled in; ``ValueError`` naming the key and
    what is expected otherwise.  ``snr_db`` stays ``None`` when not given (the recipe's range)."""
    options = check_keys(options, KEYS, where)
    mix = options.get("mixing", "fixed")
    if mix not in MIXINGS:
        raise ValueError(f"{where}.mixing: expected one of {list(MIXINGS)}, got {mix!r}")
    out = {"mixing": mix, "snr_db": None, "gain_db": list(GAIN_DB), "examples_per_epoch": None,
           "sampling": options.get("sampling", "length")}
    if out["sampling"] not in SAMPLINGS:
        raise ValueError(f"{where}.sampling: expected one of {list(SAMPLINGS)}, "
                         f"got {out['sampling']!r}")
    if options.get("snr_db") is not None:
        out["snr_db"] = aug.check_range(options["snr_db"], f"{where}.snr_db", -30, 60)
    if options.get("gain_db") is not None:
        out["gain_db"] = aug.check_range(options["gain_db"], f"{where}.gain_db", -60, 20)
    n = options.get("examples_per_epoch")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{where}.examples_per_epoch: expected a positive integer or null, got {n!r}")
        out["examples_per_epoch"] = n
    out["augment"] = aug.check_options(options.get("augment"), f"{where}.augment")
    extra = options.get("extra_noise") or []
    if not isinstance(extra, list) or any(t not in EXTRA_NOISE for t in extra) or len(set(extra)) < len(extra):
        raise ValueError(f"{where}.extra_noise: expected a list of distinct names from "
                         f"{list(EXTRA_NOISE)}, got {options.get('extra_noise')!r}")
    out["extra_noise"] = list(extra)
    if mix == "fixed" and (any(out["augment"].values()) or options.get("snr_db") is not None
                           or options.get("sampling") is not None or extra):
        raise ValueError(f"{where}: snr_db, sampling, extra_noise and augment apply only to "
                         "mixing: dynamic (the fixed mixtures are the corpus's)")
    return out


class DynamicMixer:
    """Draws training examples as in the module docstring.

    Parameters
    ----------
    speech : list of numpy.ndarray
        Clean training utterances (float32, 16 kHz).
    noise_types : list of str
        The types to draw from: recorded types (keys of ``streams``), ``"ssn"``, ``"babble"``.
    streams : dict
        ``{type: float32 training noise stream}`` of the recorded types.
    ssn_taps : numpy.ndarray, optional
        The speech-shaped-noise FIR (needed for ``"ssn"``).
    frame_len : int
    snr_db, gain_db : [float, float]
    augment : dict
        :func:`kspikese.data.augment.check_options` output.
    seed : int
    voices : list of str, optional
        The voice of each utterance; given, utterances are drawn voice-balanced (module
        docstring, ``sampling: voice``), else in proportion to their lengths.
    families : list of str, optional
        The recording family of each utterance (with ``voices``): families first, then voices
        (``sampling: family``).
    """

    def __init__(self, speech, noise_types, streams, ssn_taps, frame_len, snr_db, gain_db,
                 augment, seed, voices=None, families=None):
        if not speech:
            raise ValueError("DynamicMixer: no training speech")
        missing = [t for t in noise_types if t not in streams and t not in ("ssn", "babble")]
        if missing or ("ssn" in noise_types and ssn_taps is None):
            raise ValueError(f"DynamicMixer: no noise for the types {missing or ['ssn']}")
        self.speech = [np.asarray(x, np.float32) for x in speech]
        self.pool = {str(i): x for i, x in enumerate(self.speech)}
        lengths = np.array([len(x) for x in self.speech], np.float64)
        if voices is not None and len(voices) != len(self.speech):
            raise ValueError(f"DynamicMixer: {len(voices)} voices for {len(self.speech)} utterances")
        self.cdf = utterance_cdf(lengths, voices, families)
        self.types, self.streams, self.h = list(noise_types), streams, ssn_taps
        self.frame_len, self.snr_db, self.gain_db = int(frame_len), snr_db, gain_db
        self.augment, self.seed = augment, int(seed)

    def rng(self, epoch, index):
        """The generator of example ``index`` of ``epoch``."""
        return np.random.default_rng([self.seed, zlib.crc32(b"dynamic"), int(epoch), int(index)])

    def crop(self, rng):
        """``(utterance index, start, clean crop of frame_len samples)`` (steps 1-3); ``start``
        is the crop's first sample in the utterance (negative: the utterance's offset in the
        crop)."""
        n = self.frame_len
        for _ in range(MAX_REDRAWS):
            u = int(np.searchsorted(self.cdf, rng.uniform(), side="right"))
            u = min(u, len(self.speech) - 1)
            x = self.speech[u]
            f = aug.speed_factor(self.augment, rng)
            m = int(round(f * n))
            if len(x) >= m:
                start = int(rng.integers(len(x) - m + 1))
                seg = x[start:start + m]
                where = start
            else:
                seg = np.zeros(m, np.float32)
                off = int(rng.integers(m - len(x) + 1))
                seg[off:off + len(x)] = x
                where = -off
            clean = aug.apply(aug.change_speed(seg, f, n), self.augment, rng)
            if np.any(np.abs(clean) > 1e-4):
                return u, where, clean
        raise ValueError(f"DynamicMixer: {MAX_REDRAWS} crops in a row held no speech")

    def noise(self, ntype, u, rng):
        """A ``frame_len``-sample segment of noise type ``ntype`` (step 4)."""
        n = self.frame_len
        if ntype == "ssn":
            return noise_mod.speech_shaped_noise(n, self.h, rng)
        if ntype == "babble":
            return noise_mod.babble(self.pool, n, rng, BABBLE_TALKERS, exclude=(str(u),))[0]
        return noise_mod.segment(self.streams[ntype], n, rng)[0]

    def example(self, epoch, index):
        """``(noisy, clean, info)`` of example ``index`` of ``epoch``; ``info`` holds the draws
        (``noise_type``, ``snr_db``, ``gain``, ``utterance``, ``start``)."""
        rng = self.rng(epoch, index)
        u, start, clean = self.crop(rng)
        ntype = self.types[int(rng.integers(len(self.types)))]
        noise = self.noise(ntype, u, rng)
        snr = float(rng.uniform(*self.snr_db))
        noisy = clean.astype(np.float64) + mixing.noise_gain(clean, noise, snr) * noise
        gain = 10 ** (float(rng.uniform(*self.gain_db)) / 20.0)
        top = max(np.abs(noisy).max(), np.abs(clean).max()) * gain
        if top > mixing.PEAK:
            gain *= mixing.PEAK / top
        info = {"noise_type": ntype, "snr_db": snr, "gain": gain, "utterance": u, "start": start}
        return (noisy * gain).astype(np.float32), (clean * gain).astype(np.float32), info

    def batch(self, epoch, step, batch_size):
        """``(noisy, clean)`` arrays ``(batch_size, frame_len, 1)`` of batch ``step`` of ``epoch``."""
        pairs = [self.example(epoch, step * batch_size + k)[:2] for k in range(batch_size)]
        return (np.stack([p[0] for p in pairs])[..., None], np.stack([p[1] for p in pairs])[..., None])

    def dataset(self, epoch, n_examples, batch_size):
        """The ``n_examples`` examples of ``epoch`` as a ``tf.data.Dataset`` of ``(noisy, clean)``
        batches ``(batch, frame_len, 1)``, in example order."""
        import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
        import tensorflow as tf

        def gen():
            for i in range(int(n_examples)):
                noisy, clean, _ = self.example(epoch, i)
                yield noisy[:, None], clean[:, None]

        spec = tf.TensorSpec((self.frame_len, 1), tf.float32)
        ds = tf.data.Dataset.from_generator(gen, output_signature=(spec, spec))
        return prefetched(ds.batch(batch_size))

    def replica_dataset(self, epoch, n_examples, batch_size, replicas, first, count=1):
        """The share of replicas ``first .. first + count - 1`` (of ``replicas``) of the whole
        global batches of :meth:`dataset`, as per-replica batches of ``b = batch_size /
        replicas`` examples.

        In global step ``k`` replica ``r`` gets examples ``k B + r b .. k B + (r + 1) b - 1``
        (``B = batch_size``): the replicas together hold exactly the examples of global batch
        ``k``, and a worker mixes only its own replicas' examples, each seeded by ``(seed, epoch,
        index)``.  The dataset yields, step after step, one batch per replica ``first``,
        ``first + 1``, ...; the final partial global batch (``n_examples mod B`` examples) is
        left out.
        """
        import kspikese  # noqa: F401  (Keras 2 before TensorFlow)
        import tensorflow as tf

        if int(batch_size) % int(replicas):
            raise ValueError(f"batch_size {batch_size} does not split over {replicas} replicas")
        b = int(batch_size) // int(replicas)

        def gen():
            for k in range(int(n_examples) // int(batch_size)):
                for r in range(int(first), int(first) + int(count)):
                    for j in range(b):
                        noisy, clean, _ = self.example(epoch, k * int(batch_size) + r * b + j)
                        yield noisy[:, None], clean[:, None]

        spec = tf.TensorSpec((self.frame_len, 1), tf.float32)
        ds = tf.data.Dataset.from_generator(gen, output_signature=(spec, spec))
        return prefetched(ds.batch(b))


def utterance_cdf(lengths, voices=None, families=None):
    """The cumulative probabilities of drawing each utterance: ``p_u = len_u / Σ len`` without
    ``voices``; with them ``p_u = (1 / V) · len_u / Σ_{v(w) = v(u)} len_w`` for ``V`` voices;
    with ``families`` too, ``p_u = (1 / F) · (1 / V_f(u)) · len_u / Σ_{v(w) = v(u)} len_w`` for
    ``F`` families and ``V_f`` voices in family ``f``."""
    lengths = np.asarray(lengths, np.float64)
    if voices is None:
        return np.cumsum(lengths / lengths.sum())
    _, voice = np.unique(np.asarray(voices), return_inverse=True)
    per_voice = np.bincount(voice, weights=lengths)
    within = lengths / per_voice[voice]  # each voice's utterances sum to 1
    if families is None:
        return np.cumsum(within / len(per_voice))
    _, family = np.unique(np.asarray(families), return_inverse=True)
    voices_of = [len(set(voice[family == f])) for f in range(family.max() + 1)]
    if len(set(zip(voice, family))) != len(per_voice):
        raise ValueError("utterance_cdf: a voice belongs to more than one family")
    return np.cumsum(within / np.asarray(voices_of, np.float64)[family] / len(voices_of))


def corpus_mixer(corpus_dir, recipe, train_pairs, frame_len, options, seed):
    """The :class:`DynamicMixer` of the default corpus at ``corpus_dir`` for ``recipe``: clean
    speech of ``train_pairs``, the recipe's noise types, the corpus's training noise streams and
    SSN filter (from its manifest), ``options`` from :func:`check_options`."""
    from kspikese.data.audio import load
    from kspikese.data.default import SNRS, SSN_TAPS

    aug.needs_extra(options["augment"])
    root = Path(corpus_dir)
    man = root / "manifest.json"
    if not man.exists():
        raise CorpusError(f"{man}: no manifest; data.train.mixing: dynamic needs the default corpus")
    m = json.loads(man.read_text())
    types = list(m["noise_types"][recipe])
    streams = {t: load(root / "noise" / "train" / f"{t}.wav") for t in types if t not in ("ssn", "babble")}
    if "music" in options["extra_noise"]:
        from kspikese.data import music

        music.ensure_music(root.parent, root)  # built on first use, as the corpus
        streams["music"] = music.noise_stream(root.parent, "train")
        types.append("music")
    h = None
    if "ssn" in types:
        lt = m["ssn_ltas"]
        h = noise_mod.ssn_filter(np.asarray(lt["freqs_hz"]), np.asarray(lt["psd"]), ntaps=SSN_TAPS)
    snr = options["snr_db"] or [float(min(SNRS[recipe])), float(max(SNRS[recipe]))]
    speech = [load(p.clean) for p in train_pairs]
    voices = families = None
    if options["sampling"] in ("voice", "family"):
        voices = [voice_of(p.name) for p in train_pairs]
        missing = [p.name for p, v in zip(train_pairs, voices) if v is None]
        if missing:
            raise CorpusError(f"{root}: no voice in the names of the training utterances "
                              f"{missing[:3]}; data.train.sampling: {options['sampling']} needs "
                              f"<voice>__<line> names")
    if options["sampling"] == "family":
        families = voice_families(m, voices, man)
    return DynamicMixer(speech, types, streams, h, frame_len, snr, options["gain_db"],
                        options["augment"], seed, voices=voices, families=families)


def voice_families(manifest, voices, where="the manifest"):
    """The recording family of each voice: the first word of its Debian package in the
    manifest's ``speakers`` (``asterisk-core-sounds-en-g722`` -> ``asterisk``); a voice the
    manifest does not list, or lists without a package, is a :class:`CorpusError`."""
    speakers = manifest.get("speakers") or {}
    unknown = sorted({v for v in voices if not (speakers.get(v) or {}).get("package")})
    if unknown:
        raise CorpusError(f"{where}: no package for the voices {unknown[:3]}; "
                          f"data.train.sampling: family needs each voice's package")
    return [speakers[v]["package"].split("-")[0] for v in voices]
