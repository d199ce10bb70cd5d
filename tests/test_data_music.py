"""Music as a noise type (kspikese.data.music) on a synthetic corpus and fake tracks: the split in
time, the test mixtures' SNRs, rebuilds, errors, and dynamic mixing's ``extra_noise``."""

import json

import numpy as np
import pytest

from kspikese.corpus import open_corpus
from kspikese.data import mixing, music, noise as noise_mod
from kspikese.data.audio import load, write_wav
from kspikese.data.dynamic import check_options
from kspikese.data.pairs import CorpusError, list_pairs
from kspikese.data.testing import make_fake_corpus

SR = 16000


def write_tracks(folder, skip=()):
    """One fake track per name: a chord of two tones (distinct per track), (3 + i) s long."""
    lengths = {}
    for i, name in enumerate(sorted(music.TRACKS)):
        if name in skip:
            continue
        t = np.arange((3 + i) * SR) / SR
        x = 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t) + 0.2 * np.sin(2 * np.pi * (660 + 25 * i) * t)
        write_wav(folder / f"{name}.wav", x.astype(np.float32), SR, subtype="PCM_16")
        lengths[name] = len(t)
    return lengths


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    make_fake_corpus(root, (6, 2, 3), seed=0)
    tracks = root / "tracks"
    lengths = write_tracks(tracks)
    out = music.ensure_music(root, root / "default", source=tracks, progress=False)
    return root, out, tracks, lengths


def test_tracks_are_split_in_time_and_joined_per_split(built):
    root, out, tracks, lengths = built
    n = [lengths[k] for k in sorted(lengths)]
    assert len(music.noise_stream(root, "train")) == sum(round(0.7 * k) for k in n)
    assert len(music.noise_stream(root, "valid")) == sum(round(0.8 * k) - round(0.7 * k) for k in n)
    test = music.noise_stream(root, "test")
    assert len(test) == sum(k - round(0.8 * k) for k in n)
    # the test stream begins with the last 20 % of the first track (sorted by name)
    first = load(tracks / f"{sorted(lengths)[0]}.wav")
    tail = first[round(0.8 * len(first)):]
    assert np.allclose(test[:len(tail)], tail, atol=1e-4)
    m = json.loads((out / "manifest.json").read_text())
    assert m["licence"] == "CC-BY-SA-3.0" and set(m["credits"]) == set(music.TRACKS)
    assert [t["stream_samples"][0] for t in m["noise"]["train"]["tracks"]][:2] == [0, round(0.7 * n[0])]


def test_test_set_mixes_every_test_utterance_at_the_cycle_snrs(built):
    root, out, _, _ = built
    pairs = list_pairs(out, "vctk-like", "test")
    corpus_test = list_pairs(root / "default", "vctk-like", "test")
    assert [p.name for p in pairs] == [p.name for p in corpus_test]
    m = json.loads((out / "manifest.json").read_text())
    assert sorted(r["snr_db"] for r in m["files"]) == [0, 5, 10]  # three utterances: the cycle
    stream = music.noise_stream(root, "test")
    for r in m["files"]:
        clean, noisy = load(out / r["clean"]), load(out / r["noisy"])
        assert mixing.measured_snr(clean, noisy) == pytest.approx(r["snr_db"], abs=0.01)
        # the noise is a gain times the recorded segment of the *test* music
        seg = r["noise_segment"]
        part = stream[seg["start"]:seg["start"] + seg["samples"]]
        n = noisy.astype(np.float64) - clean
        assert np.corrcoef(n, part)[0, 1] > 0.999
        # the clean file is the corpus's, times the pair's common gain (1 unless it would clip)
        original = load(root / "default" / "vctk-like" / "test" / "clean" / f"{r['name']}.wav")
        assert np.allclose(clean, original * r["gain"], atol=1e-6)
    assert [p.name for p in music.test_pairs(root, 3)] == [p.name for p in pairs]


def test_a_built_set_is_not_rebuilt(built):
    root, out, tracks, _ = built
    before = (out / "manifest.json").stat().st_mtime_ns
    assert music.ensure_music(root, root / "default", source=tracks, progress=False) == out
    assert (out / "manifest.json").stat().st_mtime_ns == before


def test_data_cli_builds_and_summarises_the_music(built, capsys):
    import argparse

    from kspikese.data import cli

    root, _, tracks, _ = built
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(root), "--music", "--music-source", str(tracks), "--quiet"])
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert cli.run(args) == 0
    text = capsys.readouterr().out
    assert "music noise (asterisk-moh-opsound-g722, CC-BY-SA-3.0): train " in text
    assert "vctk-like test in music: 3 utterances at SNR [0, 5, 10, 15] dB" in text


def test_missing_track_names_the_folder_and_the_tracks(tmp_path):
    write_tracks(tmp_path / "few", skip=("reno_project-system",))
    with pytest.raises(CorpusError, match=r"few: no music-on-hold tracks found.*reno_project-system"):
        music.track_folder(tmp_path, source=tmp_path / "few")


def test_unbuilt_music_says_what_to_run(tmp_path):
    with pytest.raises(CorpusError, match=r"music/noise/train.wav: the music noise is not built; run "
                                          r"`kspikese data --music"):
        music.noise_stream(tmp_path)


def test_extra_noise_adds_music_to_dynamic_mixing(built):
    root = built[0]
    cfg = {"recipe": "vctk-like", "frame_len": 4096, "batch_size": 2,
           "data": {"train": {"mixing": "dynamic", "extra_noise": ["music"]}}}
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        m = open_corpus(cfg, "default", data_dir=root).mixer()
    assert m.types[-1] == "music" and "music" not in m.types[:-1]
    stream = music.noise_stream(root, "train")
    assert np.array_equal(m.noise("music", 0, np.random.default_rng(3)),
                          noise_mod.segment(stream, 4096, np.random.default_rng(3))[0])
    drawn = {m.example(0, i)[2]["noise_type"] for i in range(40)}
    assert "music" in drawn and len(drawn) > 2


@pytest.mark.parametrize("train, match", [
    ({"mixing": "dynamic", "extra_noise": ["jazz"]}, r"data.train.extra_noise: expected a list of "
                                                      r"distinct names from \['music'\], got \['jazz'\]"),
    ({"mixing": "dynamic", "extra_noise": "music"}, r"extra_noise: expected a list"),
    ({"mixing": "fixed", "extra_noise": ["music"]}, r"extra_noise and augment apply only to mixing: dynamic"),
])
def test_bad_extra_noise_names_the_key(train, match):
    with pytest.raises(ValueError, match=match):
        check_options(train)
    assert check_options({"mixing": "dynamic"})["extra_noise"] == []


def test_music_bench_scores_the_music_pairs(built, tmp_path):
    """``kspikese bench music --quick`` (noisy column only): its SI-SNR is the hand-computed mean
    over the first two music test pairs dealt over the voices, and the table says which data it
    came from."""
    from kspikese.bench import music as music_bench

    root, out, _, _ = built
    md = music_bench.run(tmp_path, True, data_dir=root, only=[])
    hand = []
    pairs = music.test_pairs(root, 2)
    assert len(pairs) == 2 and len({p.name.split("__")[0] for p in pairs}) == 2
    for p in pairs:
        s, y = load(p.clean).astype(np.float64), load(p.noisy).astype(np.float64)
        s, y = s - s.mean(), y - y.mean()
        t = (y @ s) / (s @ s) * s
        hand.append(10 * np.log10((t @ t) / ((y - t) @ (y - t))))
    got = json.loads((tmp_path / "music.json").read_text())
    assert got["means"]["noisy"]["si_snr"] == pytest.approx(np.mean(hand), abs=1e-3)
    assert md.startswith("Music test set: 2 whole test utterances") and "Not VCTK or TIMIT" in md
