"""kspikese.hub.load: every kind of model argument, the ANN twin, the cache, and the errors."""

import json
import os

import numpy as np
import pytest

import kspikese  # first: it selects Keras 2 for TensorFlow
from enhance_models import gain_bias_model
from kspikese import hub, shipped
from kspikese.hub import ModelError


def gains(model):
    return float(model.get_weights()[0].ravel()[0])


@pytest.fixture
def run(tmp_path):
    """A pipeline run folder: ann/ann.keras (gain 0.5), finetune/finetuned.keras (gain 0.7)."""
    folder = tmp_path / "runs" / "table1-default-seed0"
    for rel, gain in (("ann/ann.keras", 0.5), ("finetune/finetuned.keras", 0.7),
                      ("converted.keras", 0.6)):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        gain_bias_model(gain, 0.0).save(folder / rel)
    (folder / "run.json").write_text(json.dumps({"seed": 0, "table": "table1"}))
    return folder


@pytest.fixture
def weights(tmp_path):
    folder = tmp_path / "weights"
    shipped.export(gain_bias_model(0.25, 0.0), "snn-wave-u-net", {"seed": 1}, folder)
    shipped.export(gain_bias_model(0.125, 0.0), "wave-u-net", {"seed": 2}, folder)
    return folder


def test_a_shipped_name_and_its_ann_twin(weights):
    model, card = hub.load("snn-wave-u-net", weights_dir=weights)
    assert card["name"] == "snn-wave-u-net" and card["seed"] == 1 and gains(model) == 0.25
    model, card = hub.load("snn-wave-u-net", ann=True, weights_dir=weights)
    assert card["name"] == "wave-u-net" and gains(model) == 0.125


def test_a_card_path(weights):
    model, card = hub.load(weights / "wave-u-net.json")
    assert card["name"] == "wave-u-net" and gains(model) == 0.125
    with pytest.raises(ModelError, match="wave-u-net.json: ann=True .* not to a model card"):
        hub.load(weights / "wave-u-net.json", ann=True)
    with pytest.raises(ModelError, match="nope.json: no such model card"):
        hub.load(weights / "nope.json")


def test_a_run_folder_gives_the_finetuned_snn_or_the_ann(run):
    model, card = hub.load(run)
    assert gains(model) == pytest.approx(0.7) and card["checkpoint"].endswith("finetuned.keras")
    assert card["run"] == {"seed": 0, "table": "table1"}
    model, card = hub.load(str(run), ann=True)
    assert gains(model) == 0.5 and card["checkpoint"].endswith(os.path.join("ann", "ann.keras"))


def test_a_keras_checkpoint_and_its_runs_ann(run):
    model, card = hub.load(run / "converted.keras")
    assert gains(model) == pytest.approx(0.6) and card["run"]["table"] == "table1"
    model, _ = hub.load(run / "converted.keras", ann=True)
    assert gains(model) == 0.5


def test_loads_are_cached_until_the_file_changes(run):
    first, card = hub.load(run)
    again, _ = hub.load(str(run))
    assert again is first
    card["name"] = "changed"  # the caller's card is a copy
    assert hub.load(run)[1]["name"] != "changed"
    path = run / "finetune" / "finetuned.keras"
    gain_bias_model(0.9, 0.0).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    fresh, _ = hub.load(run)
    assert fresh is not first and gains(fresh) == pytest.approx(0.9)


def test_errors_name_the_argument_and_what_was_expected(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'wavenet': expected a shipped name "
                                         r"\(snn-wave-u-net, .*\), a model card"):
        hub.load("wavenet")
    with pytest.raises(ModelError, match=r"nope\.keras: no such model file or folder \(expected"):
        hub.load(tmp_path / "nope.keras")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"model\.h5: expected a \.keras checkpoint"):
        hub.load(tmp_path / "model.h5")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"broken\.keras: cannot load the model"):
        hub.load(tmp_path / "broken.keras")
    with pytest.raises(ModelError, match="model 3: expected a shipped name.*got a int"):
        hub.load(3)
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(ModelError, match=r"empty-run: the run folder holds none of "
                                         r"\['finetune/finetuned.keras'"):
        hub.load(tmp_path / "empty-run")
    (tmp_path / "lonely").mkdir()
    gain_bias_model().save(tmp_path / "lonely" / "snn.keras")
    with pytest.raises(ModelError, match=r"snn\.keras: ann=True \(--ann\) needs the ANN"):
        hub.load(tmp_path / "lonely" / "snn.keras", ann=True)


def test_missing_shipped_weights_say_how_to_ship_them(tmp_path):
    with pytest.raises(ModelError) as err:
        hub.load("snn-conv-tasnet", weights_dir=tmp_path)
    message = str(err.value)
    assert f"not shipped in {tmp_path}" in message
    assert "make reproduce-table3" in message and "`kspikese ship table3`" in message


def test_shipped_models_enhance_through_the_hub(weights):
    x = np.linspace(-0.5, 0.5, 3000, dtype=np.float32)
    y = kspikese.enhance(x, 16000, model="snn-wave-u-net", weights_dir=weights)
    assert np.allclose(y, 0.25 * x, atol=1e-6)
