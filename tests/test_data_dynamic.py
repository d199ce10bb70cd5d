"""Dynamic mixing and augmentation on a synthetic corpus: seeding, SNRs, gains, crops, options."""

import builtins

import numpy as np
import pytest
import yaml
from scipy import signal

from kspikese import config as configs
from kspikese.corpus import open_corpus
from kspikese.data import augment
from kspikese.data.testing import make_fake_corpus

L = 4096


def cfg(train=None, recipe="vctk-like"):
    return {"recipe": recipe, "frame_len": L, "batch_size": 3,
            "data": {"train": train} if train is not None else {}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dyn")
    make_fake_corpus(root, (6, 2, 2), seed=0)
    return root


def corpus(root, train, seed=0, recipe="vctk-like"):
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        return open_corpus(cfg(train, recipe), "default", data_dir=root, seed=seed)


def active_snr(s, y):
    """Hand check: 20 ms frames within 40 dB of the loudest are active (as the corpus)."""
    hop = 320
    nfr = -(-len(s) // hop)
    p = np.array([np.mean(s[k * hop:(k + 1) * hop].astype(float) ** 2) for k in range(nfr)])
    db = 10 * np.log10(np.maximum(p, 1e-300))
    act = np.repeat(db >= db.max() - 40, hop)[: len(s)]
    return 10 * np.log10(np.mean(s[act].astype(float) ** 2) / np.mean((y.astype(float) - s) ** 2))


def test_same_seed_epoch_step_same_batch_and_others_differ(root):
    m = corpus(root, {"mixing": "dynamic"}).mixer()
    a = m.batch(epoch=2, step=5, batch_size=3)
    again = corpus(root, {"mixing": "dynamic"}).mixer().batch(2, 5, 3)  # a "resumed" run
    assert np.array_equal(a[0], again[0]) and np.array_equal(a[1], again[1])
    assert a[0].shape == (3, L, 1) and a[0].dtype == np.float32
    assert not np.allclose(a[0], m.batch(3, 5, 3)[0])  # other epoch
    assert not np.allclose(a[0], m.batch(2, 6, 3)[0])  # other step
    assert not np.allclose(a[0], corpus(root, {"mixing": "dynamic"}, seed=1).mixer().batch(2, 5, 3)[0])


def test_stream_of_an_epoch_is_the_batches_of_its_steps(root):
    c = corpus(root, {"mixing": "dynamic", "examples_per_epoch": 7})
    batches = list(c.training_stream(4).as_numpy_iterator())
    assert [b[0].shape[0] for b in batches] == [3, 3, 1]
    assert c.training_stream(4).options().autotune.enabled is False  # (framing.prefetched)
    for k in range(2):
        noisy, clean = c.mixer().batch(4, k, 3)
        assert np.array_equal(batches[k][0], noisy) and np.array_equal(batches[k][1], clean)
    # a fresh corpus object (a resumed run) yields the same epoch again
    again = list(corpus(root, {"mixing": "dynamic", "examples_per_epoch": 7})
                 .training_stream(4).as_numpy_iterator())
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(batches, again))


def test_snr_and_gain_of_each_example_are_the_drawn_ones(root):
    m = corpus(root, {"mixing": "dynamic", "snr_db": [-5, 15], "gain_db": [-10, 6]}).mixer()
    snrs, types, starts = [], set(), set()
    for i in range(24):
        noisy, clean, info = m.example(0, i)
        assert active_snr(clean, noisy) == pytest.approx(info["snr_db"], abs=1e-3)
        assert -5 <= info["snr_db"] <= 15
        assert max(np.abs(noisy).max(), np.abs(clean).max()) <= 0.99 + 1e-6
        assert info["gain"] <= 10 ** (6 / 20) + 1e-9 and info["gain"] > 0
        # the crop is the utterance's samples from a random start (the fake utterances,
        # 1.3-1.8 s, are longer than a frame): no padding
        x, start = m.speech[info["utterance"]], info["start"]
        assert 0 <= start <= len(x) - L
        np.testing.assert_allclose(clean / info["gain"], x[start:start + L], rtol=1e-5, atol=1e-7)
        starts.add(start)
        snrs.append(info["snr_db"])
        types.add(info["noise_type"])
    assert types == {"hum", "brown", "ssn", "babble"} and np.std(snrs) > 2 and len(starts) > 20


def test_timit_ssn_recipe_mixes_only_ssn_in_its_range(root):
    m = corpus(root, {"mixing": "dynamic"}, recipe="timit-ssn").mixer()
    infos = [m.example(0, i)[2] for i in range(8)]
    assert {i["noise_type"] for i in infos} == {"ssn"}
    assert all(-6 <= i["snr_db"] <= 6 for i in infos)


def test_fixed_is_the_default_and_reads_the_written_frames(root):
    c = corpus(root, None)
    assert c.train_options["mixing"] == "fixed"
    noisy, clean = next(iter(c.training_stream(0)))
    assert noisy.shape[1:] == (L, 1)


@pytest.mark.parametrize("train, match", [
    ({"mixing": "dynamc"}, r"data.train.mixing: expected one of \['fixed', 'dynamic'\]"),
    ({"mixing": "dynamic", "snr_db": [15, -5]}, r"data.train.snr_db: expected \[low, high\]"),
    ({"mixing": "dynamic", "snr": [0, 5]}, r"data.train: unknown keys \['snr'\]"),
    ({"mixing": "dynamic", "augment": {"speed": [0.9]}}, r"data.train.augment.speed"),
    ({"mixing": "dynamic", "augment": {"eq": {"probability": 2}}}, r"data.train.augment.eq.probability: expected a number in \[0, 1\]"),
    ({"mixing": "dynamic", "examples_per_epoch": 0}, r"examples_per_epoch: expected a positive"),
    ({"augment": {"speed": [0.9, 1.1]}}, r"apply only to mixing: dynamic"),
    ({"mixing": "dynamic", "sampling": "speaker"}, r"data.train.sampling: expected one of \['length', 'voice', 'family'\]"),
    ({"sampling": "voice"}, r"apply only to mixing: dynamic"),
])
def test_bad_options_name_the_key(tmp_path, train, match):
    import yaml

    base = configs.read_yaml(configs.experiment_path("table1"))
    base.pop("quick", None)
    base.setdefault("data", {})["train"] = train
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(base))
    with pytest.raises(configs.ConfigError, match=f"{p}: .*{match}"):
        configs.load(p)


def test_speed_perturbation_resamples(root):
    x = np.sin(2 * np.pi * 500 * np.arange(int(1.1 * L)) / 16000).astype(np.float32)
    y = augment.change_speed(x[: int(round(1.1 * L))], 1.1, L)
    assert y.shape == (L,)
    f, p = signal.periodogram(y[200:-200], fs=16000)
    assert f[np.argmax(p)] == pytest.approx(550, abs=8)  # played 1.1x faster: 500 -> 550 Hz
    m = corpus(root, {"mixing": "dynamic", "augment": {"speed": [0.9, 1.1], "eq": True}}).mixer()
    a, b = m.example(1, 3), m.example(1, 3)
    assert np.array_equal(a[0], b[0]) and a[0].shape == (L,)


def test_peaking_eq_has_its_gain_at_the_centre_frequency():
    x = np.zeros(8192)
    x[0] = 1
    h = augment.peaking_eq(x, 1000.0, 1.0, 6.0)
    w, resp = signal.freqz(h, worN=[1000.0, 7000.0], fs=16000)
    assert 20 * np.log10(abs(resp[0])) == pytest.approx(6.0, abs=0.05)
    assert abs(20 * np.log10(abs(resp[1]))) < 0.5


@pytest.mark.parametrize("gain_db", [-24.0, 6.0])
def test_low_shelf_gain_at_dc_midpoint_and_nyquist(gain_db):
    # RBJ shelf: gain g at 0 Hz, g / 2 at the corner (midpoint) frequency, 0 dB at Nyquist
    x = np.zeros(1 << 15)
    x[0] = 1
    h = augment.low_shelf(x, 300.0, gain_db)
    _, resp = signal.freqz(h, worN=[0.0, 300.0, 8000.0], fs=16000)
    db = 20 * np.log10(np.abs(resp))
    assert db == pytest.approx([gain_db, gain_db / 2, 0.0], abs=0.05)


def test_low_shelf_options_defaults_errors_and_seeding():
    opts = augment.check_options({"low_shelf": True})
    assert opts["low_shelf"] == {"probability": 0.5, "gain_db": [-24.0, 6.0], "freq_hz": [150.0, 500.0]}
    with pytest.raises(ValueError, match=r"augment.low_shelf.freq_hz: expected \[low, high\]"):
        augment.check_options({"low_shelf": {"freq_hz": [500, 150]}})
    with pytest.raises(ValueError, match=r"augment.low_shelf: expected true or a mapping with keys "
                                         r"probability, gain_db, freq_hz"):
        augment.check_options({"low_shelf": {"q": 1}})
    opts = augment.check_options({"low_shelf": {"probability": 1.0, "gain_db": [-20, -20]}})
    x = np.random.default_rng(0).standard_normal(L).astype(np.float32)
    a = augment.apply(x, opts, np.random.default_rng(5))
    assert np.array_equal(a, augment.apply(x, opts, np.random.default_rng(5)))
    low = lambda y: np.abs(np.fft.rfft(y)[: L * 100 // 16000]).mean()  # below 100 Hz
    assert low(a) < 0.2 * low(x)  # -20 dB shelf at 150-500 Hz: the band under 100 Hz drops


def test_reverb_without_the_extra_names_it(monkeypatch):
    real = builtins.__import__

    def no_pra(name, *a, **k):
        if name.startswith("pyroomacoustics"):
            raise ImportError("no")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pra)
    opts = augment.check_options({"reverb": {"probability": 1.0}})
    with pytest.raises(ImportError, match=r"kspikese\[augment\]"):
        augment.needs_extra(opts)


def test_reverb_with_pyroomacoustics_is_seeded():
    pytest.importorskip("pyroomacoustics")
    opts = augment.check_options({"reverb": {"probability": 1.0, "rt60_s": [0.3, 0.3]}})
    x = np.random.default_rng(0).standard_normal(L).astype(np.float32)
    a = augment.apply(x, opts, np.random.default_rng(5))
    b = augment.apply(x, opts, np.random.default_rng(5))
    assert np.array_equal(a, b) and not np.allclose(a, x)


def test_dynamic_on_another_corpus_trains_on_its_fixed_pairs(tmp_path, monkeypatch):
    import soundfile as sf

    monkeypatch.setenv("KSPIKESE_DATA_DIR", str(tmp_path / "cache"))
    v = tmp_path / "v"
    tone = (0.1 * np.sin(np.arange(2 * L) / 5)).astype(np.float32)
    for sub, speakers in (("trainset_28spk_wav", ("p226", "p227")), ("testset_wav", ("p232",))):
        for kind in ("clean", "noisy"):
            (v / f"{kind}_{sub}").mkdir(parents=True)
            for spk in speakers:
                for k in range(1, 11):
                    sf.write(v / f"{kind}_{sub}" / f"{spk}_{k:03d}.wav", tone, 16000)
    with pytest.warns(UserWarning, match="--data vctk trains on its own fixed training pairs"):
        c = open_corpus(cfg({"mixing": "dynamic", "sampling": "voice"}), "vctk", vctk_root=v)
    assert c.train_options["mixing"] == "fixed" and len(c.train) == 18
    assert next(iter(c.training_stream(0)))[0].shape[1:] == (L, 1)


def test_utterance_cdf_by_length_and_by_voice():
    from kspikese.data.dynamic import utterance_cdf

    lengths = [1.0, 3.0, 4.0, 2.0]
    assert np.allclose(np.diff(utterance_cdf(lengths), prepend=0), [0.1, 0.3, 0.4, 0.2])
    # voice a: 1 + 3 = 4 units, voice b: 4 + 2 = 6 units; each voice 1/2, shared by length
    p = np.diff(utterance_cdf(lengths, ["a", "a", "b", "b"]), prepend=0)
    assert np.allclose(p, [0.5 * 1 / 4, 0.5 * 3 / 4, 0.5 * 4 / 6, 0.5 * 2 / 6])


def test_utterance_cdf_by_family_then_voice():
    from kspikese.data.dynamic import utterance_cdf

    lengths = [1.0, 3.0, 4.0, 2.0, 5.0]
    # family y (voice c alone) gets 1/2; family x's voices a and b 1/4 each, shared by length
    p = np.diff(utterance_cdf(lengths, ["a", "a", "b", "b", "c"], ["x", "x", "x", "x", "y"]),
                prepend=0)
    assert np.allclose(p, [0.25 * 1 / 4, 0.25 * 3 / 4, 0.25 * 4 / 6, 0.25 * 2 / 6, 0.5])
    with pytest.raises(ValueError, match="a voice belongs to more than one family"):
        utterance_cdf(lengths, ["a", "a", "b", "b", "c"], ["x", "y", "x", "x", "y"])


def test_voice_families_come_from_the_manifests_packages():
    from kspikese.data.dynamic import voice_families
    from kspikese.data.pairs import CorpusError

    manifest = {"speakers": {"en_US_f_Allison": {"package": "asterisk-core-sounds-en-g722"},
                             "hw_Pirate": {"package": "hedgewars-data"}, "x": {}}}
    assert voice_families(manifest, ["hw_Pirate", "en_US_f_Allison", "hw_Pirate"]) == \
        ["hedgewars", "asterisk", "hedgewars"]
    with pytest.raises(CorpusError, match=r"m.json: no package for the voices \['nobody', 'x'\]"):
        voice_families(manifest, ["x", "hw_Pirate", "nobody"], "m.json")


def test_family_sampling_hears_each_family_equally_often(root, tmp_path):
    """Two families of unequal size (one voice against the rest): each is drawn about half the
    time, where voice-balanced sampling would give the lone voice 1 / V."""
    import json
    import shutil

    shutil.copytree(root, tmp_path / "c")
    man = tmp_path / "c" / "default" / "manifest.json"
    m = json.loads(man.read_text())
    lone = sorted(m["speakers"])[0]
    for v in m["speakers"]:
        m["speakers"][v]["package"] = "solo-pack" if v == lone else "group-pack"
    man.write_text(json.dumps(m))
    files = {f["name"]: f["speaker"] for f in m["files"]
             if f["split"] == "train" and f["recipe"] == "vctk-like"}
    mixer = corpus(tmp_path / "c", {"mixing": "dynamic", "sampling": "family"}).mixer()
    voices = [files[p.name] for p in corpus(tmp_path / "c", None).train]
    assert lone in voices and len(set(voices)) >= 3
    drawn = [voices[mixer.example(0, i)[2]["utterance"]] for i in range(400)]
    share = drawn.count(lone) / 400
    assert abs(share - 0.5) < 5 * np.sqrt(0.25 / 400), share


def test_voice_sampling_hears_every_voice_equally_often(root):
    import json

    m = corpus(root, {"mixing": "dynamic", "sampling": "voice"}).mixer()
    files = json.loads((root / "default" / "manifest.json").read_text())["files"]
    names = [p.name for p in corpus(root, None).train]
    speaker = {f["name"]: f["speaker"] for f in files
               if f["split"] == "train" and f["recipe"] == "vctk-like"}
    voices = [speaker[n] for n in names]
    drawn = [voices[m.example(0, i)[2]["utterance"]] for i in range(600)]
    counts = np.array([drawn.count(v) for v in sorted(set(voices))])
    expected = 600 / len(counts)
    assert len(counts) >= 2 and np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    by_length = corpus(root, {"mixing": "dynamic"}).mixer()
    assert [by_length.example(0, i)[2]["utterance"] for i in range(20)] != \
        [m.example(0, i)[2]["utterance"] for i in range(20)]


def test_valid_voices_move_a_training_voice_into_validation(root):
    """``data: valid_voices:``: every utterance of the named training voice leaves training (and
    the dynamic mixer's speech) and joins validation; the test split is untouched."""
    from kspikese.data.pairs import voice_of

    plain = corpus(root, {"mixing": "dynamic"})
    voice = sorted({voice_of(p.name) for p in plain.train})[0]
    own = [p.name for p in plain.train if voice_of(p.name) == voice]
    spec = {"recipe": "vctk-like", "frame_len": L, "batch_size": 3,
            "data": {"train": {"mixing": "dynamic"}, "valid_voices": [voice]}}
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        moved = open_corpus(spec, "default", data_dir=root)
    assert own and not [p for p in moved.train if voice_of(p.name) == voice]
    assert sorted(p.name for p in moved.valid) == sorted([p.name for p in plain.valid] + own)
    assert moved.test == plain.test and len(moved.train) == len(plain.train) - len(own)
    assert len(moved.mixer().speech) == len(moved.train)
    assert moved.info["valid_voices_from_train"] == [voice]
    assert moved.info["valid_utterances"] == len(plain.valid) + len(own)


def test_valid_voices_must_be_training_voices_of_the_default_corpus(root, tmp_path):
    from kspikese.corpus import CorpusError

    spec = {"recipe": "vctk-like", "frame_len": L, "data": {"valid_voices": ["hw_Pirate"]}}
    with pytest.warns(UserWarning, match="SYNTHETIC"), \
            pytest.raises(CorpusError, match=r"\['hw_Pirate'\] are not training voices of .*"
                                             r"its training voices: "):
        open_corpus(spec, "default", data_dir=root)  # a test voice
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x").mkdir()
    with pytest.raises(CorpusError, match="moves voices of the default corpus, not of --data vctk"):
        open_corpus(spec, "vctk", vctk_root=tmp_path / "v")
    bad = tmp_path / "bad.yaml"
    spec = yaml.safe_load((configs.EXPERIMENTS_DIR / "table4.yaml").read_text())
    spec["data"]["valid_voices"] = "fr_CA_f_June"  # a name, not a list of names
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(configs.ConfigError, match="`data: valid_voices:` must be a list of voice names"):
        configs.load(str(bad))
