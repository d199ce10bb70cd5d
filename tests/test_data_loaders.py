"""Loaders for user-owned corpora (noisy VCTK, TIMIT + SSN) and bad input, on fake trees."""

import json
import struct

import numpy as np
import pytest
import soundfile as sf

from kspikese.data import audio, list_pairs, mixing, timit_pairs, vctk_pairs
from kspikese.data.pairs import CorpusError
from kspikese.data.testing import speech_like
from kspikese.audio_io import AudioError

SR = 16000


def write(path, x, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16")


def make_vctk(root, spk_train=("p226", "p227"), spk_test=("p232",), n=10, sr=48000):
    rng = np.random.default_rng(0)
    for folder_c, folder_n, speakers in (("clean_trainset_28spk_wav", "noisy_trainset_28spk_wav", spk_train),
                                         ("clean_testset_wav", "noisy_testset_wav", spk_test)):
        for s in speakers:
            for i in range(1, n + 1):
                t = np.arange(int(0.4 * sr)) / sr
                x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) * np.sin(2 * np.pi * 4 * t) ** 2
                write(root / folder_c / f"{s}_{i:03d}.wav", x, sr)
                write(root / folder_n / f"{s}_{i:03d}.wav", x + 0.01 * rng.standard_normal(len(x)), sr)
    return root


# ----------------------------------------------------------------------------- VCTK


def test_vctk_splits_and_resampling(tmp_path):
    root = make_vctk(tmp_path / "vctk")
    cache = tmp_path / "cache"
    train = vctk_pairs(root, "train", cache=cache, valid_fraction=0.2, progress=False)
    valid = vctk_pairs(root, "valid", cache=cache, valid_fraction=0.2, progress=False)
    test = vctk_pairs(root, "test", cache=cache, valid_fraction=0.2, progress=False)
    assert (len(train), len(valid), len(test)) == (16, 4, 10)
    assert not {p.name for p in train} & {p.name for p in valid}
    # validation = held-out utterances of the training speakers, spread over them
    assert {p.name.split("_")[0] for p in valid} == {"p226", "p227"}
    assert {p.name.split("_")[0] for p in test} == {"p232"}
    name, clean, noisy = test[0]
    assert clean.parent == cache / "clean_testset_wav" and sf.info(str(clean)).samplerate == SR
    assert sf.info(str(noisy)).frames == 0.4 * SR  # 48 kHz -> 16 kHz
    raw = vctk_pairs(root, "test", cache=False)
    assert sf.info(str(raw[0].clean)).samplerate == 48000


def test_prepare_script_prints_the_split_sizes(tmp_path, capsys):
    import runpy
    import sys

    root = make_vctk(tmp_path / "vctk")
    cache = tmp_path / "cache"
    sizes = [len(vctk_pairs(root, s, cache=cache, progress=False)) for s in ("train", "valid", "test")]
    argv = sys.argv
    sys.argv = ["prepare_vctk.py", str(root), "--cache", str(tmp_path / "c2")]
    try:
        runpy.run_path("data_prep/prepare_vctk.py", run_name="__main__")
    finally:
        sys.argv = argv
    out = capsys.readouterr().out.splitlines()
    assert [l for l in out if l[:5] in ("train", "valid", "test:")] == [
        f"train: {sizes[0]} pairs", f"valid: {sizes[1]} pairs", f"test: {sizes[2]} pairs"]
    assert sizes == [18, 2, 10]
    with pytest.raises(SystemExit):  # ROOT is required
        from kspikese.data.pairs import prepare_main
        prepare_main(vctk_pairs, "doc", argv=[])


def test_vctk_missing_and_empty_folders_name_the_layout(tmp_path):
    with pytest.raises(CorpusError, match="clean_trainset_28spk_wav"):
        vctk_pairs(tmp_path / "nothing", "train")
    (tmp_path / "clean_testset_wav").mkdir()
    (tmp_path / "noisy_testset_wav").mkdir()
    with pytest.raises(CorpusError, match="no audio files.*noisy_testset_wav"):
        vctk_pairs(tmp_path, "test")
    with pytest.raises(CorpusError, match="unknown split 'dev'"):
        vctk_pairs(tmp_path, "dev")


def test_unpaired_lists_show_the_first_mismatches(tmp_path):
    root = make_vctk(tmp_path, spk_train=(), spk_test=("p232",), n=3)
    (root / "noisy_testset_wav" / "p232_002.wav").unlink()
    (root / "noisy_testset_wav" / "p232_003.wav").rename(root / "noisy_testset_wav" / "p232_009.wav")
    with pytest.raises(CorpusError) as e:
        vctk_pairs(root, "test", cache=False)
    msg = str(e.value)
    assert "2 clean without noisy, first: ['p232_002', 'p232_003']" in msg
    assert "1 noisy without clean, first: ['p232_009']" in msg


# ----------------------------------------------------------------------------- bad audio


def test_unreadable_file_names_the_file(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"this is not audio at all")
    with pytest.raises(AudioError, match="bad.wav"):
        audio.load(p)


def test_truncated_wav_is_reported(tmp_path):
    p = tmp_path / "cut.wav"
    sf.write(str(p), np.zeros(16000, np.float32), SR, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut.wav: truncated WAV file: the header promises 32000 bytes"):
        audio.load(p)


def test_stereo_is_mixed_down_with_a_warning(tmp_path):
    p = tmp_path / "st.wav"
    sf.write(str(p), np.stack([np.full(800, 0.5), np.full(800, -0.1)], 1), SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match="st.wav: 2 channels mixed down"):
        x = audio.load(p)
    assert x.shape == (800,) and np.allclose(x, 0.2)


def test_wrong_sample_rate_is_resampled(tmp_path):
    p = tmp_path / "r.wav"
    t = np.arange(22050) / 22050
    sf.write(str(p), 0.5 * np.sin(2 * np.pi * 440 * t), 22050, subtype="FLOAT")
    x = audio.load(p)
    assert len(x) == SR
    spec = np.abs(np.fft.rfft(x))
    assert np.argmax(spec) == 440  # 1 s at 16 kHz: bin k = k Hz


def test_nan_samples_are_an_error(tmp_path):
    p = tmp_path / "nan.wav"
    x = np.zeros(100, np.float32)
    x[5] = np.nan
    sf.write(str(p), x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN or inf"):
        audio.load(p)


def test_written_wavs_are_byte_reproducible(tmp_path):
    x = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    audio.write_wav(tmp_path / "a.wav", x)
    data = (tmp_path / "a.wav").read_bytes()
    assert b"PEAK" not in data  # libsndfile's PEAK chunk holds a timestamp
    assert np.array_equal(sf.read(str(tmp_path / "a.wav"), dtype="float32")[0], x)


# ----------------------------------------------------------------------------- SPHERE / TIMIT


def test_sphere_reader_by_hand(tmp_path):
    x = np.array([0, 1, -1, 16384, -32768, 32767], np.int16)
    audio.write_sphere(tmp_path / "a.wav", x)
    raw = (tmp_path / "a.wav").read_bytes()
    assert raw.startswith(b"NIST_1A\n   1024\n") and len(raw) == 1024 + 12
    y = audio.load(tmp_path / "a.wav")
    assert np.array_equal(y, x / 32768.0)
    # big-endian variant, written by hand
    head = b"NIST_1A\n   1024\nsample_count -i 2\nsample_rate -i 16000\nchannel_count -i 1\n" \
           b"sample_n_bytes -i 2\nsample_byte_format -s2 10\nsample_coding -s3 pcm\nend_head\n"
    (tmp_path / "b.wav").write_bytes(head.ljust(1024, b" ") + struct.pack(">hh", 256, -2))
    assert list(audio.load(tmp_path / "b.wav") * 32768) == [256, -2]


def test_sphere_truncated_and_compressed_are_errors(tmp_path):
    audio.write_sphere(tmp_path / "t.wav", np.zeros(100, np.int16))
    p = tmp_path / "t.wav"
    p.write_bytes(p.read_bytes()[:1100])
    with pytest.raises(AudioError, match="t.wav: truncated SPHERE file: header says 100 samples"):
        audio.load(p)
    head = b"NIST_1A\n   1024\nsample_count -i 2\nsample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n"
    (tmp_path / "s.wav").write_bytes(head.ljust(1024, b" ") + b"\0" * 8)
    with pytest.raises(AudioError, match="s.wav.*shorten.*sph2pipe"):
        audio.load(tmp_path / "s.wav")


def make_timit(root, n_spk=4, n_utt=2):
    rng = np.random.default_rng(1)
    for part, nsp in (("TRAIN", n_spk), ("TEST", 2)):
        for s in range(nsp):
            for u in range(n_utt):
                x = speech_like(0.6, rng)
                d = root / part / f"DR{s % 2 + 1}" / f"M{part[:2]}{s}0"
                if u % 2 == 0:
                    audio.write_sphere(d / f"SI{u}.WAV", x)
                else:
                    write(d / f"SX{u}.WAV", x, SR)
    return root


def test_timit_ssn_mixtures(tmp_path):
    root = make_timit(tmp_path / "timit", n_spk=10)
    cache = tmp_path / "cache"
    test = timit_pairs(root, "test", cache=cache, progress=False)
    assert len(test) == 2 * 2 * 5  # speakers x utterances x SNRs
    snrs = sorted({p.name.rsplit("_snr", 1)[1] for p in test})
    assert snrs == ["+0", "+3", "+6", "-3", "-6"]
    for p in test:
        c, _ = sf.read(str(p.clean))
        y, _ = sf.read(str(p.noisy))
        want = int(p.name.rsplit("_snr", 1)[1])
        assert mixing.measured_snr(c, y) == pytest.approx(want, abs=1e-3)
    train = timit_pairs(root, "train", cache=cache, progress=False)
    valid = timit_pairs(root, "valid", cache=cache, progress=False)
    assert len(train) + len(valid) == 10 * 2 * 5 and len(valid) == 1 * 2 * 5
    spk = lambda ps: {p.name.split("_")[1] for p in ps}  # noqa: E731
    assert not spk(train) & spk(valid)  # validation holds out whole training speakers
    assert json.loads((cache / "ssn_filter.json").read_text())["utterances"] == 20
    # cached: a second call writes nothing
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")}
    again = timit_pairs(root, "test", cache=cache, progress=False)
    assert again == test and {p: p.stat().st_mtime_ns for p in cache.rglob("*.wav")} == before


def test_timit_layout_errors(tmp_path):
    with pytest.raises(CorpusError, match="TIMIT folder not found.*TRAIN/<DR>"):
        timit_pairs(tmp_path / "none", "train")
    (tmp_path / "TRAIN").mkdir()
    with pytest.raises(CorpusError, match="no .WAV files found"):
        timit_pairs(tmp_path, "train")


# ----------------------------------------------------------------------------- default corpus


def test_list_pairs_errors(tmp_path):
    with pytest.raises(CorpusError, match="corpus folder not found.*make data"):
        list_pairs(tmp_path / "none", "vctk-like", "train")
    with pytest.raises(CorpusError, match="unknown recipe 'vctk'"):
        list_pairs(tmp_path, "vctk", "train")
    (tmp_path / "vctk-like" / "train" / "clean").mkdir(parents=True)
    with pytest.raises(CorpusError, match=r"clean: no audio files in this folder; expected layout: <corpus>/"):
        list_pairs(tmp_path, "vctk-like", "train")
    write(tmp_path / "vctk-like" / "train" / "clean" / "a.wav", np.zeros(10), SR)
    with pytest.raises(CorpusError, match=r"noisy: folder not found; expected layout: <corpus>/<recipe>"):
        list_pairs(tmp_path, "vctk-like", "train")
