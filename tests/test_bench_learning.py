"""The learning-curve benchmark: equal training time per recipe, curves written as tables."""

import json

import pytest


def test_recipe_config_merges_overrides_and_scales_the_learning_rate():
    from kspikese.bench.learning import recipe_config

    base = recipe_config("table1", {})
    three = recipe_config("table1", {"ann": {"lr_factor": 3.0, "schedule": "cosine"}})
    assert three["ann"]["lr"] == pytest.approx(3 * base["ann"]["lr"])
    assert three["ann"]["schedule"] == "cosine" and "lr_factor" not in three["ann"]
    assert recipe_config("table1", {"batch_size": 2})["batch_size"] == 2


def test_missing_setting_names_the_file(tmp_path):
    from kspikese.bench.learning import load_settings
    from kspikese.config import ConfigError

    path = tmp_path / "lc.yaml"
    path.write_text("tables: [table1]\nbudget_s: 1\n")
    with pytest.raises(ConfigError, match=r"lc\.yaml: missing 'eval_every_steps'"):
        load_settings(path)


def test_quick_curves_on_a_fake_corpus(tmp_path):
    from kspikese.bench.learning import run
    from kspikese.data.testing import make_fake_corpus

    make_fake_corpus(tmp_path / "data")
    settings = tmp_path / "lc.yaml"
    settings.write_text(
        "tables: [table1]\nbudget_s: 0.5\neval_every_steps: 1\nvalidation_frames: 2\n"
        "recipes: {table: {}, cosine: {ann: {schedule: cosine, warmup_steps: 1}}}\n")
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        md = run(tmp_path / "out", quick=True, settings_path=settings, data_dir=tmp_path / "data")
    payload = json.loads((tmp_path / "out" / "learning.json").read_text())
    recipes = {r[1] for r in payload["rows"]}
    assert recipes == {"table", "cosine"}
    for name in recipes:
        pts = [r for r in payload["rows"] if r[1] == name]
        assert pts[0][2] == 0 and pts[0][3] == 0.0  # the untrained model comes first
        assert pts[-1][3] >= 0.5 and [p[2] for p in pts] == sorted(p[2] for p in pts)
    assert (tmp_path / "out" / "learning_curves.png").stat().st_size > 1000
    assert "| table1 | cosine |" in md
