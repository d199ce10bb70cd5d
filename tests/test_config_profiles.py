"""Recipe profiles: cpu (the file's top level), paper, ship; the paper profile trains."""

import numpy as np
import pytest

from kspikese import config as configs


def test_profiles_merge_over_the_file_and_quick_merges_last():
    cpu = configs.load("table1")
    paper = configs.load("table1", profile="paper")
    assert cpu["profile"] == "cpu" and paper["profile"] == "paper"
    assert paper["ann"]["epochs"] == 200 and paper["ann"]["steps_per_epoch"] is None
    assert paper["ann"]["lr"] == 0.001 and configs.load("table3", profile="paper")["ann"]["lr"] == 1e-4
    assert paper["ann"]["schedule"] == "constant" and paper["ann"]["warmup_steps"] == 0  # the paper's Adam
    assert cpu["ann"]["schedule"] == "cosine"
    paper3 = configs.load("table3", profile="paper")["ann"]
    assert paper3["schedule"] == "constant" and paper3["warmup_steps"] == 0
    # a profile changes only what it names: here one target for every layer
    assert paper["convert"] == dict(cpu["convert"], target_spikes=20, allocation="uniform")
    assert paper["eval"] == cpu["eval"] and paper["frame_len"] == cpu["frame_len"]
    assert "profiles" not in paper
    quick_paper = configs.load("table1", quick=True, profile="paper")
    assert quick_paper["ann"]["epochs"] == 2  # quick wins over the profile
    # table3's ship profile trains ship-base's ANN on, converts at the cpu point, and adds music
    ship = configs.load("table3", profile="ship")
    assert ship["ann"]["init"] == {"profile": "ship-base"} and ship["ann"]["schedule"] == "cosine"
    assert ship["convert"] == configs.load("table3")["convert"]
    assert ship["data"]["train"] == {"mixing": "dynamic", "sampling": "voice", "extra_noise": ["music"]}
    # table1's ship profile is the shipped SNN's quality point: a higher target, and the fine-tune
    # without the cpu recipe's spike penalty and rate budget; the rest of the conversion is cpu's
    ship1 = configs.load("table1", profile="ship")
    assert ship1["convert"] == dict(cpu["convert"], target_spikes=20)
    assert cpu["finetune"]["max_events_per_mac"] == 0.33 and ship1["finetune"]["max_events_per_mac"] is None
    assert ship1["finetune"]["spike_penalty"]["weight"] == 0.0
    assert ship1["finetune"]["spike_penalty"]["weighting"] == cpu["finetune"]["spike_penalty"]["weighting"]


@pytest.mark.parametrize("table", ["table1", "table2", "table3", "table4"])
def test_every_paper_profile_trains_as_the_paper_and_quick_warms_up_within_its_steps(table):
    """A cpu recipe's warm-up, cosine decay or loss must not leak into the paper's constant Adam
    on the SNR loss, nor a warm-up longer than the QUICK run into QUICK."""
    paper = configs.load(table, profile="paper")["ann"]
    assert paper.get("schedule", "constant") == "constant" and not paper.get("warmup_steps")
    assert paper.get("loss") in (None, "snr")  # the paper's SNR loss, whatever the cpu recipe's
    paper_ft = configs.load(table, profile="paper")["finetune"]
    assert paper_ft.get("max_events_per_mac") is None  # the paper keeps its best epoch, at any cost
    assert not (paper_ft.get("spike_penalty") or {}).get("weight")
    assert paper_ft.get("loss") in (None, "snr")
    assert not paper_ft.get("teacher")  # the paper fine-tunes towards the clean speech
    quick = configs.load(table, quick=True)["ann"]
    assert quick.get("warmup_steps", 0) <= quick["epochs"] * quick["steps_per_epoch"]


def test_table2_takes_table1s_loss_and_conversion_and_its_paper_and_ship_keep_theirs():
    """Table 2 (the same network on `timit-ssn`) trains and converts as Table 1's `cpu` recipe,
    with a lighter STOI term in both stages; its `paper` and `ship` profiles keep the SNR loss and
    one target for every layer."""
    one, two = configs.load("table1"), configs.load("table2")
    lighter = {"stoi_weight": 15.0}
    assert two["ann"]["loss"] == dict(one["ann"]["loss"], **lighter)
    assert 0 < two["ann"]["loss"]["stoi_weight"] < one["ann"]["loss"]["stoi_weight"]
    assert two["convert"] == one["convert"] and two["convert"]["allocation"] == "measured"
    assert two["finetune"]["loss"] == dict(one["finetune"]["loss"], **lighter)
    assert two["finetune"].get("max_events_per_mac") is None  # Table 1's budget did not carry over
    for profile in ("paper", "ship"):
        cfg = configs.load("table2", profile=profile)
        assert "loss" not in cfg["ann"] and "loss" not in cfg["finetune"]  # the SNR loss
        assert (cfg["convert"]["target_spikes"], cfg["convert"]["allocation"]) == (20, "uniform")
        assert cfg["ann"].get("precision", "float32") == "float32"
        assert not cfg["finetune"].get("teacher")  # clean targets, unlike the cpu fine-tune's
    assert two["finetune"]["teacher"] == 1.0


def test_unknown_profile_names_the_file_and_the_known_ones():
    with pytest.raises(configs.ConfigError, match=r"table1\.yaml: unknown profile 'gpu'; known: cpu, paper, ship"):
        configs.load("table1", profile="gpu")


@pytest.mark.parametrize("loss, message", [
    ({"name": "snr_stft", "stoi_wieght": 1}, r"`finetune:` loss: 'snr_stft' settings \[.*'stoi_wieght'.*\]"),
    ("l2", r"`finetune:` loss: unknown loss 'l2'"),
    ({"name": "snr_stft", "stoi_weight": -2}, r"`finetune:` loss: snr_stft stoi_weight must be >= 0"),
])
def test_a_bad_loss_fails_when_the_yaml_loads(loss, message):
    with pytest.raises(configs.ConfigError, match=r"table1\.yaml: " + message):
        configs.load("table1", overrides={"finetune": {"loss": loss}})
    assert configs.load("table1", overrides={"ann": {"loss": {"name": "snr_stft", "stoi_weight": 3}}})


def test_default_loss_settings_are_dropped_so_fingerprints_stay():
    with_term = configs.load("table1")["ann"]["loss"]
    zero = configs.load("table1", overrides={"ann": {"loss": {"stoi_weight": 0.0}}})["ann"]["loss"]
    assert with_term["stoi_weight"] > 0 and "stoi_weight" not in zero
    assert zero == {k: v for k, v in with_term.items() if k != "stoi_weight"}
    snr = configs.load("table1", overrides={"ann": {"loss": "snr"}, "finetune": {"loss": "snr"}})
    assert "loss" not in snr["ann"] and "loss" not in snr["finetune"]
    # clean targets (teacher 0) fingerprint as no teacher; the cpu recipe of Table 4 has one
    assert configs.load("table4")["finetune"]["teacher"] == 1.0
    assert "teacher" not in configs.load("table4", overrides={"finetune": {"teacher": 0.0}})["finetune"]
    # no voice moved into validation fingerprints as no key; Table 4 moves one
    assert configs.load("table4")["data"]["valid_voices"] == ["fr_CA_f_June"]
    for empty in ([], None):
        unmoved = configs.load("table4", overrides={"data": {"valid_voices": empty}})["data"]
        assert "valid_voices" not in unmoved and unmoved["max_valid"] == 36


def test_run_folder_names_the_profile():
    from kspikese.runs import run_name

    assert run_name("table1", "default", 0, False, "cpu") == "table1-default-seed0"
    assert run_name("table1", "default", 3, True, "paper") == "table1-quick-paper-default-seed3"


@pytest.mark.slow  # full-size models: about 25 s each
@pytest.mark.parametrize("table", ["table1", "table3"])
def test_paper_profile_builds_the_papers_model_and_trains_one_step(table, tmp_path):
    from kspikese import hybrid, pipeline
    import tensorflow as tf

    cfg = configs.load(table, profile="paper")
    ann = pipeline.build_ann(cfg, seed=0)
    params = ann.count_params()
    # Table 5 of the paper: 2.60M (Wave-U-Net) and 2.65M (Conv-TasNet) parameters
    assert params == pytest.approx(2.60e6 if table == "table1" else 2.65e6, rel=0.1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, cfg["frame_len"], 1)).astype("float32") * 0.1
    data = tf.data.Dataset.from_tensor_slices((x, x)).batch(1)
    settings = dict(hybrid.stage_settings(cfg["ann"]), epochs=1, steps_per_epoch=1,
                    validation_steps=1)
    history = hybrid.train_ann(ann, data, data, tmp_path / "ann", verbose=0, **settings)
    assert len(history) == 1 and np.isfinite(history[0]["loss"])


def test_every_make_target_command_accepts_the_run_flags():
    # the Makefile passes RUN_FLAGS (with --profile) to reproduce, omega-search, energy and ship
    import argparse

    from kspikese import experiment, omega_search, publish
    from kspikese.energy import table5

    flags = ["--seed", "0", "--data", "default", "--results", "r", "--profile", "cpu", "--quick"]
    for add, extra in ((experiment.add_arguments, ["table1"]), (omega_search.add_arguments, ["--table", "table1"]),
                       (table5.add_arguments, []), (publish.add_arguments, ["table1"])):
        parser = argparse.ArgumentParser()
        add(parser)
        args = parser.parse_args(extra + flags)
        assert args.profile == "cpu" and args.quick


def test_table3_budget_profile_changes_only_the_rate_knobs_and_keeps_the_ann(tmp_path):
    """`PROFILE=budget` is issue 13's point on Table 3's own ANN: the ANN stage (and so its
    fingerprint) is the cpu recipe's, only conversion and fine-tune differ."""
    from kspikese.runs import TableRun

    cpu, budget = configs.load("table3"), configs.load("table3", profile="budget")
    assert budget["ann"] == cpu["ann"] and budget["data"] == cpu["data"]
    assert budget["convert"] == dict(cpu["convert"], target_spikes=4)
    assert budget["finetune"]["teacher"] == 1.0 and "teacher" not in cpu["finetune"]
    assert budget["finetune"]["max_events_per_mac"] == 0.25
    assert "0.246 of the ANN's MACs" in budget["operating_point"]["why"]
    fps = {p: TableRun(configs.load("table3", profile=p), results=tmp_path).fingerprints()
           for p in ("cpu", "budget")}
    assert fps["cpu"]["ann"] == fps["budget"]["ann"]
    assert fps["cpu"]["finetune"] != fps["budget"]["finetune"]
    # Table 1's cpu recipe is its budget point: every stage the same, so `make energy
    # PROFILE=budget` prices both tables' rate points
    one = {p: configs.load("table1", profile=p) for p in ("cpu", "budget")}
    assert {k: v for k, v in one["cpu"].items() if k != "profile"} == \
        {k: v for k, v in one["budget"].items() if k != "profile"}
