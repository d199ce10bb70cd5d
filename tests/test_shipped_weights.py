"""The four models that travel inside the package (issue 7): present, within limits, described
by complete cards, and usable right after ``make install``."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from kspikese import enhancement as E
from kspikese import files, hub
from kspikese import shipped as W


@pytest.mark.parametrize("name", W.SHIPPED)
def test_each_shipped_model_has_a_complete_card_and_small_weights(name):
    assert name in W.available(), f"{name} is not shipped in {W.WEIGHTS_DIR}"
    card = W.read_card(W.card_path(name))
    assert W.weights_path(name).stat().st_size <= W.MAX_BYTES == 12_000_000
    assert card["weights_sha256"] == files.sha256(W.weights_path(name))
    for key in ("data", "config", "seed", "test_metrics", "date", "float16_check", "run"):
        assert key in card, f"{name}.json has no {key!r}"
    assert card["data"]["corpus"].startswith("default")  # never presented as VCTK
    assert card["spiking"] == name.startswith("snn-")
    check = card["float16_check"]
    assert check["files"] >= 20
    if "float16" in card["weights_dtype"]:
        assert abs(check["si_snr_float16"] - check["si_snr_float32"]) < 0.05
    # the card's test SI-SNR is the table's, which the float32 re-check reproduces closely
    # (both measured on the table's test utterances through kspikese.inference)
    assert abs(card["test_metrics"]["si_snr"] - check["si_snr_float32"]) < 0.3


@pytest.mark.parametrize("name", W.SHIPPED)
def test_each_shipped_model_loads_and_keeps_shape(name):
    model, card = hub.load(name)
    assert card["name"] == name
    rng = np.random.default_rng(0)
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)
             + 0.02 * rng.standard_normal(8000)).astype(np.float32)
    out = E.enhance(audio, 8000, model=name)
    assert out.shape == audio.shape and np.all(np.isfinite(out))
    assert np.std(out) > 0  # not a silent network


def test_enhance_cli_works_out_of_the_box_with_the_default_model(tmp_path):
    rng = np.random.default_rng(1)
    noisy = (0.1 * np.sin(2 * np.pi * 300 * np.arange(44100 * 2) / 44100)[:, None]
             + 0.05 * rng.standard_normal((44100 * 2, 2)))
    sf.write(tmp_path / "noisy.wav", noisy, 44100, subtype="PCM_24")
    done = subprocess.run(
        [sys.executable, "-m", "kspikese", "enhance", str(tmp_path / "noisy.wav"),
         "-o", str(tmp_path / "clean.wav")], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    info = sf.info(tmp_path / "clean.wav")
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 88200, "PCM_24")


def recipe_fingerprints(table, profile, precision=None):
    """The stage fingerprints a run of ``table``'s ``profile`` records (no corpus needed), with
    the ANN's arithmetic set to ``precision`` (``precision: auto`` depends on the machine)."""
    from kspikese import config as configs
    from kspikese import continuation
    from kspikese.runs import table_fingerprints

    overrides = {"ann": {"precision": precision}} if precision else None
    cfg = configs.load(table, profile=profile, overrides=overrides)
    return table_fingerprints(cfg, init_fingerprint=continuation.start_fingerprint(table, cfg))


@pytest.mark.parametrize("name", W.SHIPPED)
def test_each_shipped_model_comes_from_its_tables_recipe_as_committed(name):
    """The stages a card records are the ones its table's profile, as the YAML now has it,
    would make: a recipe changed without shipping again fails here."""
    card = W.read_card(W.card_path(name))
    expected = recipe_fingerprints(card["table"], card["config"]["profile"],
                                   card["config"]["ann"].get("precision", "float32"))
    recorded = {stage: card["run"]["stages"][stage]["fingerprint"]
                for stage in ("ann", "convert", "finetune")}
    assert recorded == {stage: expected[stage] for stage in recorded}
