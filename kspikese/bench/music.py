"""Peers in music: the shipped models beside RNNoise and spectral gating on the default test
utterances mixed with music on hold (:mod:`kspikese.data.music`).

No table trains on music, so this is noise of a kind the shipped models may never have heard
(unless a recipe adds ``extra_noise: [music]``).  The same utterances as the ``peers`` benchmark
(the 40 of the tables, every test voice), the same denoisers, metrics and real-time factor
(:func:`kspikese.bench.peers.score`).  Builds ``<data>/music`` first if it is missing.
"""

from kspikese.bench import peers


def run(out_dir, quick, data_dir=None, only=None):
    """Score every available denoiser on the music test set; write ``music.md|csv|json``."""
    from kspikese.corpus import load_pairs
    from kspikese.data import music
    from kspikese.data.pairs import default_data_dir

    root = data_dir if data_dir is not None else default_data_dir()
    folder = music.ensure_music(root)
    utts = load_pairs(music.test_pairs(root, peers.UTTERANCES[bool(quick)]))
    audio_s = sum(len(noisy) for _, _, noisy in utts) / 16000
    where = (f"Music test set: {len(utts)} whole test utterances of the default corpus (embedded, "
             f"unseen voices) in music on hold ({music.PACKAGE}, the tracks' last 20 %) at "
             f"{', '.join(map(str, music.SNRS_DB))} dB, {audio_s:.0f} s of audio")
    info = {"corpus": "default test utterances in music", "path": str(folder), "recipe": music.RECIPE}
    return peers.score(out_dir, "music", utts, where, info, quick, only)
