"""Metric wrappers (PESQ, STOI, DNSMOS), evaluate_pair / evaluate_set, and `kspikese evaluate`."""

import csv
import json
import math
import re

import numpy as np
import pytest

from kspikese import audio_io, cli
from kspikese.metrics import METRICS, evaluate_pair, evaluate_set
from kspikese.metrics import composite as C
from kspikese.metrics.perceptual import PesqFailure, pesq_score, stoi_score
from kspikese.metrics.snr import si_snr, snr, ssnr
from kspikese.metrics.testsignals import noisy_copy, speech_like

SR = 16000
FAST = ("snr", "ssnr", "si_snr", "stoi", "pesq", "csig", "cbak", "covl")  # all but DNSMOS


@pytest.fixture(scope="module")
def pair():
    clean = speech_like(3.0, seed=21)
    return clean, noisy_copy(clean, 5.0, seed=22)


@pytest.fixture(scope="module")
def scores(pair):
    return evaluate_pair(*pair)


def test_metric_names_are_the_contract():
    assert METRICS == ("snr", "ssnr", "si_snr", "stoi", "pesq", "csig", "cbak", "covl",
                       "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def test_evaluate_pair_gives_every_metric_from_its_reference(pair, scores):
    import pesq
    import speechmos.dnsmos
    from pystoi import stoi

    clean, noisy = pair
    assert tuple(scores) == METRICS
    assert scores["snr"] == pytest.approx(5.0, abs=1e-9) == pytest.approx(snr(clean, noisy))
    assert scores["si_snr"] == si_snr(clean, noisy)
    assert scores["ssnr"] == ssnr(clean, noisy)
    assert scores["pesq"] == pesq.pesq(16000, clean, noisy, "wb") == pesq_score(clean, noisy)
    assert scores["stoi"] == stoi(clean, noisy, 16000, extended=False) == stoi_score(clean, noisy)
    parts = C.composite(clean, noisy, SR, pesq_score=scores["pesq"])
    assert {k: scores[k] for k in ("csig", "cbak", "covl")} == {k: parts[k] for k in ("csig", "cbak", "covl")}
    direct = speechmos.dnsmos.run(noisy.astype(np.float32), sr=16000)  # noisy peak < 1: no scaling
    assert scores["dnsmos_sig"] == pytest.approx(direct["sig_mos"], abs=1e-6)
    assert scores["dnsmos_bak"] == pytest.approx(direct["bak_mos"], abs=1e-6)
    assert scores["dnsmos_ovrl"] == pytest.approx(direct["ovrl_mos"], abs=1e-6)
    for k in ("pesq", "csig", "cbak", "covl", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
        assert 1.0 <= scores[k] <= 5.0, k


def test_dnsmos_scales_loud_audio_into_unit_range(pair):
    from kspikese.metrics.dnsmos import dnsmos, to_unit_range

    x = pair[1]
    loud = 3.0 * x / np.max(np.abs(x))  # peak 3 -> divided by 3
    np.testing.assert_allclose(to_unit_range(loud), (x / np.max(np.abs(x))).astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(to_unit_range(0.5 * x), (0.5 * x).astype(np.float32))  # left alone
    a, b = dnsmos(loud), dnsmos(x / np.max(np.abs(x)))
    assert a == pytest.approx(b, abs=1e-6)
    with pytest.raises(ValueError, match="16000"):
        dnsmos(x, sr=8000)


def test_identical_signals(pair):
    out = evaluate_pair(pair[0], pair[0], metrics=FAST)
    assert out["snr"] == out["si_snr"] == math.inf
    assert out["ssnr"] == 35.0
    assert out["stoi"] == pytest.approx(1.0)
    assert out["pesq"] > 4.5
    assert out["csig"] == out["cbak"] == out["covl"] == 5.0


def test_metric_subset_and_order(pair):
    out = evaluate_pair(*pair, metrics=["pesq", "snr"])
    assert list(out) == ["snr", "pesq"]
    assert list(evaluate_pair(*pair, metrics="covl")) == ["covl"]  # PESQ computed, not returned
    with pytest.raises(ValueError, match="unknown"):
        evaluate_pair(*pair, metrics=["snr", "sdr"])


def test_other_sample_rates_are_resampled_to_16k(pair):
    from kspikese.audio_io import resample

    clean8, noisy8 = (resample(x.astype(np.float32), 16000, 8000) for x in pair)
    got = evaluate_pair(clean8, noisy8, sr=8000, metrics=["snr", "pesq", "stoi"])
    want = evaluate_pair(resample(clean8, 8000, 16000), resample(noisy8, 8000, 16000), metrics=["snr", "pesq", "stoi"])
    assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "clean, enhanced, kwargs, message",
    [
        (np.ones(4000), np.ones(3999), {}, "differ in length: 4000 vs 3999"),
        (np.r_[np.ones(10), np.nan, np.ones(10)], np.ones(21), {}, "clean .*NaN or inf.*index 10"),
        (np.ones(21), np.r_[np.ones(20), np.inf], {}, "enhanced signal contains NaN or inf"),
        (np.zeros(0), np.zeros(0), {}, "clean .*empty"),
        (np.zeros(4000), np.ones(4000), {}, "all zeros"),
        (np.ones((2, 4000)), np.ones((2, 4000)), {}, "1-D"),
        (np.ones(4000), np.ones(4000), {"sr": 0}, "sr must be a positive integer"),
        (np.ones(4000), np.ones(4000), {"sr": 16000.5}, "sr must be a positive integer"),
        (["a", "b"], ["a", "b"], {}, "not a numeric array"),
        (np.ones(4000), np.ones(4000), {"errors": "ignore"}, "errors must be"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(clean, enhanced, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_pair(clean, enhanced, metrics=["snr"], **kwargs)


def test_pesq_failures_are_clear_errors(pair):
    with pytest.raises(PesqFailure, match="No utterances detected"):
        pesq_score(np.zeros(16000), pair[1][:16000])
    short = pair[0][:3200], pair[1][:3200]  # 0.2 s: PESQ needs 1/4 s
    with pytest.raises(ValueError, match="PESQ failed: Buffer needs to be at least 1/4"):
        evaluate_pair(*short, metrics=["pesq", "snr"])
    with pytest.warns(RuntimeWarning, match="PESQ failed"):
        out = evaluate_pair(*short, metrics=FAST, errors="nan")
    assert all(math.isnan(out[k]) for k in ("pesq", "csig", "cbak", "covl"))
    assert out["snr"] == pytest.approx(snr(*short)) and not math.isnan(out["ssnr"])


def test_evaluate_set_rows_errors_and_means(pair):
    clean, noisy = pair
    pairs = [
        ("good", clean, noisy),
        ("short", clean[:3200], noisy[:3200]),  # PESQ (and the composite) fail, the rest is scored
        ("bad", clean, noisy[:-5]),  # unequal lengths: the whole row fails
        ("self", clean, clean),
    ]
    metrics = ("snr", "si_snr", "pesq", "csig")
    rows, means = evaluate_set(pairs, metrics=metrics, progress=False)
    assert [r["name"] for r in rows] == ["good", "short", "bad", "self"]
    assert rows[0]["error"] == "" and rows[0]["snr"] == pytest.approx(5.0)
    assert "PESQ failed" in rows[1]["error"] and math.isnan(rows[1]["pesq"]) and math.isnan(rows[1]["csig"])
    assert rows[1]["snr"] == pytest.approx(snr(clean[:3200], noisy[:3200]))
    assert rows[2]["error"].startswith("ValueError: clean and enhanced signals differ in length")
    assert all(math.isnan(rows[2][m]) for m in metrics)
    assert means["n_files"] == 4 and means["n_errors"] == 2
    assert means["n_pesq"] == 2 and means["n_snr"] == 3
    assert means["pesq"] == pytest.approx((rows[0]["pesq"] + rows[3]["pesq"]) / 2)
    assert means["snr"] == math.inf  # the perfect copy counts, NaN rows do not
    with pytest.raises(ValueError, match="workers"):
        evaluate_set(pairs, workers=0)
    with pytest.raises(ValueError, match="triples"):
        evaluate_set([("only-two", clean)], progress=False)


def test_evaluate_set_in_two_processes_matches_one(pair, tmp_path):
    clean, noisy = pair
    audio_io.write_audio(tmp_path / "c.wav", clean)
    audio_io.write_audio(tmp_path / "n.wav", noisy)
    pairs = [("arrays", clean, noisy), ("files", str(tmp_path / "c.wav"), tmp_path / "n.wav"),
             ("missing", tmp_path / "c.wav", tmp_path / "nope.wav"), ("half", clean[: len(clean) // 2], noisy[: len(clean) // 2])]
    metrics = ("snr", "pesq", "stoi", "csig")
    one, m1 = evaluate_set(pairs, workers=1, metrics=metrics, progress=False)
    two, m2 = evaluate_set(iter(pairs), workers=2, metrics=metrics, progress=False)
    assert [r["name"] for r in two] == ["arrays", "files", "missing", "half"]
    assert "nope.wav" in two[2]["error"] and "cannot read audio" in two[2]["error"]
    for a, b in zip(one, two):
        assert a["error"] == b["error"]
        for m in metrics:
            assert a[m] == pytest.approx(b[m], nan_ok=True)
    assert one[1]["snr"] == pytest.approx(one[0]["snr"], abs=1e-4)  # float32 file round trip
    assert m1 == pytest.approx(m2, nan_ok=True)


# ------------------------------------------------------------------------------ kspikese evaluate


def _folders(tmp_path, names=("a", "b")):
    for sub in ("clean", "enh", "noisy"):
        (tmp_path / sub).mkdir()
    for i, name in enumerate(names):
        c = speech_like(2.0, seed=40 + i)
        n = noisy_copy(c, 0.0, seed=50 + i)
        audio_io.write_audio(tmp_path / "clean" / f"{name}.wav", c)
        audio_io.write_audio(tmp_path / "noisy" / f"{name}.wav", n)
        audio_io.write_audio(tmp_path / "enh" / f"{name}.flac", 0.8 * c + 0.2 * n,
                             subtype="PCM_24")
    return tmp_path


def test_cli_evaluate_writes_per_file_and_summary(tmp_path, capsys):
    d = _folders(tmp_path)
    rc = cli.main(["evaluate", "--clean", str(d / "clean"), "--enhanced", str(d / "enh"), "--noisy",
                   str(d / "noisy"), "--out", str(d / "out"), "--metrics", "snr,si_snr,pesq", "--no-progress"])
    assert rc == 0
    with open(d / "out" / "per_file.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["a", "b"]
    assert list(rows[0]) == ["name", "snr", "si_snr", "pesq", "error", "noisy_snr", "noisy_si_snr",
                             "noisy_pesq", "noisy_error"]
    assert float(rows[0]["noisy_snr"]) == pytest.approx(0.0, abs=1e-3)
    assert float(rows[0]["snr"]) == pytest.approx(-20 * math.log10(0.2), abs=1e-3)  # e = c + 0.2 n
    summary = json.loads((d / "out" / "summary.json").read_text())
    assert summary["means"]["enhanced"]["n_files"] == 2
    assert summary["means"]["noisy"]["snr"] == pytest.approx(0.0, abs=1e-3)
    md = (d / "out" / "summary.md").read_text()
    assert "| metric | noisy | enhanced |" in md and "| PESQ |" in md
    assert (d / "out" / "summary.csv").read_text().startswith("metric,noisy,n_noisy,enhanced,n_enhanced\n")
    assert "| SNR (dB) |" in capsys.readouterr().out


def test_cli_evaluate_refuses_unpaired_folders(tmp_path, capsys):
    d = _folders(tmp_path)
    (d / "enh" / "b.flac").rename(d / "enh" / "c.flac")
    for argv, message in [
        ([], r"1 clean file\(s\) have no enhanced counterpart \(first: b\).*"
             r"1 enhanced file\(s\) have no clean counterpart \(first: c\)"),
        (["--clean", str(d / "nothing")], "--clean .*nothing is not a folder"),
        (["--metrics", "mos"], "unknown"),
    ]:
        base = {"--clean": str(d / "clean"), "--enhanced": str(d / "enh"),
                "--out": str(d / "out")}
        base.update(dict(zip(argv[::2], argv[1::2])))
        assert cli.main(["evaluate", *[x for kv in base.items() for x in kv]]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and err.startswith("kspikese evaluate: error: "), err
    assert not (d / "out").exists()


@pytest.mark.slow
def test_every_metric_in_two_processes_matches_one(pair):
    pairs = [(str(i), pair[0], noisy_copy(pair[0], snr_db, seed=i)) for i, snr_db in enumerate((0, 5, 10, 15))]
    one, m1 = evaluate_set(pairs, workers=1, progress=False)
    two, m2 = evaluate_set(pairs, workers=2, progress=False)
    for a, b in zip(one, two):
        assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.slow
def test_metrics_benchmark_quick_run(tmp_path, monkeypatch):
    from kspikese.bench import metrics as bench

    monkeypatch.setenv("KSPIKESE_DATA_DIR", str(tmp_path / "no-corpus"))  # synthetic audio
    table = bench.run(tmp_path / "bench", quick=True)
    assert "synthetic speech-like" in table and "evaluate_set, 2 workers" in table
    saved = json.loads((tmp_path / "bench" / "metrics.json").read_text())
    assert set(saved["seconds_per_minute"]) >= {"pesq (wb)", "stoi", "dnsmos (sig, bak, ovrl)"}
    assert (tmp_path / "bench" / "metrics.md").read_text().startswith("# metrics benchmark")
