"""Small synthetic corpora for tests and smoke runs: seconds to make, no download.

:func:`make_fake_corpus` writes a corpus in exactly the default corpus's layout (manifest
included, marked ``"synthetic": true``) by running the real builder on a fake speech source
(speech-like signals encoded to G.722, in the asterisk tree layout; speech-like "voice packs" in
the hedgewars layout) and fake noise recordings.
"""

from pathlib import Path

import numpy as np

from kspikese.data import default, hedgewars, sources
from kspikese.audio_io import SR


def speech_like(seconds, rng, sr=SR):
    """A speech-like test signal (float32, peak 0.5).

    Voiced sound: harmonics ``k f0(t)`` (``f0`` 100-230 Hz with a slow vibrato) with amplitudes
    ``1/k`` shaped by three formant bumps (near 500, 1500, 2500 Hz); syllables: the envelope
    ``max(0, sin(2 pi r t))^2`` with a syllable rate ``r`` of 3-5 Hz; a gap after every third
    syllable; a little noise on the syllable edges for consonants; 0.1 s of silence at both ends.
    """
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    formants = rng.uniform([400, 1200, 2200], [700, 1800, 2900])
    x = np.zeros(n)
    for k in range(1, int(7000 / f0.max()) + 1):
        fk = k * f0.mean()
        w = sum(np.exp(-0.5 * ((fk - f) / 180.0) ** 2) for f in formants) + 0.05
        x += w / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    rate = rng.uniform(3, 5)
    env = np.maximum(0, np.sin(2 * np.pi * rate * t)) ** 2
    syll = np.floor(2 * rate * t).astype(int) // 2
    env *= (syll % 4 != 3)
    edge = np.abs(np.gradient(env)) * sr / (2 * np.pi * rate)
    x = x * env + 0.3 * rng.standard_normal(n) * np.clip(edge, 0, 1) * 0.2
    pad = int(0.1 * sr)
    x[:pad] = 0
    x[n - pad:] = 0
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_fake_source(folder, n_prompts, seconds=1.5, seed=0):
    """Write a fake asterisk tree: ``<folder>/<voice>/fake/<i>.g722`` (G.722-encoded
    :func:`speech_like` prompts), ``n_prompts[voice]`` per voice, plus one silence prompt each."""
    import G722

    folder = Path(folder)
    rng = np.random.default_rng([seed, 7])
    for voice in sources.SPEAKERS:
        for i in range(n_prompts.get(voice, 0)):
            x = speech_like(seconds * rng.uniform(0.9, 1.2), rng)
            raw = G722.G722(16000, 64000).encode(np.round(x * 32767).astype(np.int16))
            p = folder / voice / "fake" / f"prompt{i:03d}.g722"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(raw)
        s = folder / voice / "silence" / "1.g722"
        s.parent.mkdir(parents=True, exist_ok=True)
        s.write_bytes(G722.G722(16000, 64000).encode(np.zeros(SR, np.int16)))
    return folder


def make_fake_hedgewars(folder, n_lines, seconds=1.5, seed=0, sr=44100):
    """Write fake hedgewars voice packs: ``<folder>/<Pack>/line<i>.wav`` (44.1 kHz stereo
    :func:`speech_like` lines), ``n_lines[pack]`` per pack."""
    from kspikese.data.audio import write_wav

    folder = Path(folder)
    rng = np.random.default_rng([seed, 13])
    for pack, n in sorted(n_lines.items()):
        for i in range(n):
            x = speech_like(seconds * rng.uniform(0.9, 1.2), rng, sr=sr)
            write_wav(folder / pack / f"line{i:03d}.wav", np.stack([x, x], axis=1), sr)
    return folder


def round_robin(n, names):
    """``{name: count}``: ``n`` items dealt to ``names`` in turn."""
    counts = {v: 0 for v in names}
    for i in range(n):
        counts[names[i % len(names)]] += 1
    return counts


def make_fake_noise(folder, seconds=20.0, seed=0, sr=44100):
    """Two fake noise 'recordings' (44.1 kHz stereo WAV, like the real ones): a mains hum with
    harmonics in pink-ish noise, and brown noise with slow gusts.  Returns the builder's
    ``{type: [(label, path, credit)]}``."""
    from kspikese.data.audio import write_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 11])
    n = int(seconds * sr)
    t = np.arange(n) / sr
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8)) + 0.3 * rng.standard_normal(n)
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(2001) / 2001, mode="same")
    brown *= 1 + 0.5 * np.sin(2 * np.pi * 0.3 * t)
    out = {}
    for name, x in (("hum", hum), ("brown", brown)):
        x = 0.3 * x / np.abs(x).max()
        st = np.stack([x, np.roll(x, 17)], axis=1).astype(np.float32)
        p = folder / f"{name}.wav"
        write_wav(p, st, sr)
        out[name] = [(f"fake:{name}.wav", p, "synthetic (CC0)")]
    return out


def make_fake_corpus(root, n_per_split=(6, 2, 2), seconds=1.5, seed=0, progress=False):
    """Write a tiny SYNTHETIC corpus into ``<root>/default`` in the default corpus's layout and
    return that folder.  ``n_per_split`` = utterances in (train, valid, test); each about
    ``seconds`` long.  Both recipes, manifests with checksums, ``"synthetic": true``."""
    root = Path(root)
    n_train, n_valid, n_test = (int(v) for v in n_per_split)
    if min(n_train, n_valid, n_test) < 1 or n_train < len(sources.TRAIN_SPEAKERS):
        raise ValueError(f"n_per_split must be three counts >= 1 with at least "
                         f"{len(sources.TRAIN_SPEAKERS)} training utterances, got {n_per_split}")
    # train: the four asterisk training voices and one pack; valid: two unseen packs;
    # test: the asterisk test voice and two more unseen packs (the real corpus's layout, smaller)
    train = round_robin(n_train, list(sources.TRAIN_SPEAKERS) + ["Default"])
    valid = round_robin(n_valid, ["British", "Mobster"])
    test = round_robin(n_test, [sources.TEST_SPEAKERS[0], "Pirate", "Default_uk"])
    counts = {v: train.get(v, 0) for v in sources.SPEAKERS}
    counts[sources.TEST_SPEAKERS[0]] = test.pop(sources.TEST_SPEAKERS[0])
    packs = {k: [p for p, c in d.items() if c and p in hedgewars.PACKS[k]]
             for k, d in (("train", train), ("valid", valid), ("test", test))}
    lines = {p: c for d in (train, valid, test) for p, c in d.items() if p not in sources.SPEAKERS and c}
    src = make_fake_source(root / "cache" / "fake-source", counts, seconds, seed)
    make_fake_hedgewars(src / "hedgewars" / "voices", lines, seconds, seed)
    noise = make_fake_noise(root / "cache" / "fake-noise", seed=seed)
    config = fake_config(seed, packs)
    out = root / "default"
    if default.corpus_status(out, config) != "complete":
        speakers = {v: ("synthetic", "CC0-1.0", "kspikese.data.testing")
                    for v in [*sources.SPEAKERS, *hedgewars.speakers(config["hedgewars"])]}
        default.build(root, config, source=src, progress=progress, noise_recordings=noise,
                      speakers=speakers)
    return out


def fake_config(seed, packs):
    """The corpus config of :func:`make_fake_corpus` (packs ``{split: [pack]}``; each fake line is
    one utterance)."""
    return default.config_for(seed, megaglest=False, synthetic=True, min_prompt_s=0.5,
                              hedgewars=hedgewars.split_config(packs, join_s=0.5))
