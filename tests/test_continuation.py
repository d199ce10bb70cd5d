"""``ann: init:``: a profile's ANN that trains on from another profile's, or from a named model."""

import json

import numpy as np
import pytest
import yaml

from kspikese import config as configs
from kspikese import continuation, pipeline
from kspikese.data.testing import make_fake_corpus
from kspikese.runs import TableRun

PROFILES = {
    "longer": {"ann": {"init": {"profile": "cpu"}, "lr": 0.0}},  # lr 0: the start stays as it is
    "fresh": {"ann": {"lr": 0.0}},  # another start for the continued fingerprint
    "loop_a": {"ann": {"init": {"profile": "loop_b"}}},
    "loop_b": {"ann": {"init": {"profile": "loop_a"}}},
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A copy of table1.yaml with the profiles above, and a tiny synthetic corpus."""
    root = tmp_path_factory.mktemp("continuation")
    make_fake_corpus(root / "data", n_per_split=(6, 2, 2), seconds=1.5, seed=0)
    cfg = configs.read_yaml(configs.experiment_path("table1"))
    cfg["profiles"] = {**cfg["profiles"], **PROFILES}
    path = root / "chain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return root, path


def open_chain(chain, profile, results="results", **kwargs):
    root, path = chain
    return pipeline.open_run(path, quick=True, profile=profile, results=root / results,
                             data_dir=root / "data", **kwargs)


def test_a_continued_ann_starts_from_the_other_profiles_trained_ann(chain, capsys):
    """The continued stage trains the profile it names first, copies its weights and trains on
    (here at learning rate 0, so it ends where it started); a fresh start differs from it."""
    run, corpus = open_chain(chain, "longer")
    base_run, _ = run.init_base
    assert base_run.dir.name == "table1-quick-default-seed0" and run.dir != base_run.dir
    assert not base_run.dir.exists()  # opened read-only: made only when its ANN must be trained
    ann = pipeline.train_ann(run, corpus, verbose=0)
    out = capsys.readouterr().out
    assert "[stage 1] the ANN continues from profile `cpu`'s ANN" in out
    base_run, base_corpus = open_chain(chain, "cpu")
    assert base_run.stage_done("ann") and run.stage_done("ann")
    assert base_run.fingerprints()["ann"] == run.init_fingerprint
    base_ann = pipeline.train_ann(base_run, base_corpus, verbose=0)  # loaded, not trained again
    for a, b in zip(ann.get_weights(), base_ann.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    # without init: the fresh start (where lr 0 would leave it); six Adam steps at 3e-4 moved the
    # base's weights away from it
    fresh = pipeline.build_ann(run.cfg, run.seed)
    assert max(float(np.max(np.abs(a - b)))
               for a, b in zip(fresh.get_weights(), base_ann.get_weights())) > 1e-4


def test_the_continued_fingerprint_follows_the_start(chain):
    """Another recipe for the profile continued from changes the continued ANN's fingerprint
    (and what builds on it); the continued stage's own settings do too.  Overrides apply to
    the run asked for, not to the profile it continues."""
    run, _ = open_chain(chain, "longer")
    changed, _ = open_chain(chain, "longer", overrides={"ann": {"epochs": 3}})
    other_base, _ = open_chain(chain, "longer", results="other",
                               overrides={"ann": {"init": {"profile": "fresh"}}})
    fps = [r.fingerprints() for r in (run, changed, other_base)]
    assert changed.init_base[0].fingerprints() == run.init_base[0].fingerprints()
    assert len({fp["ann"] for fp in fps}) == 3 and len({fp["finetune"] for fp in fps}) == 3
    assert fps[0]["random"] == fps[2]["random"]  # the Random SNN never sees the ANN
    with pytest.raises(ValueError, match="init_fingerprint"):
        TableRun(run.cfg, results=chain[0] / "results")


def test_a_loop_of_profiles_is_refused_before_anything_is_made(chain):
    root, _ = chain
    with pytest.raises(configs.ConfigError, match="loop: loop_a -> loop_b -> loop_a"):
        open_chain(chain, "loop_a", results="loop")
    assert not (root / "loop" / "runs" / "table1-quick-loop_a-default-seed0").exists()


@pytest.mark.parametrize("init, match", [
    ({"profile": "paper", "model": "wave-u-net"}, "exactly one of"),
    ({}, "exactly one of"),
    ({"profile": "cpu"}, "cannot continue its own ANN"),
    ({"profile": "paper", "digest": "0123456789abcdef"}, "`digest:` goes with `model:`"),
    ({"model": "wave-u-net", "digest": "XYZ"}, "16 lowercase hexadecimal"),
    ({"model": "wave-u-net", "seed": 1}, r"unknown keys \['seed'\]"),
    ("wave-u-net", "expected a mapping"),
])
def test_bad_init_is_refused_naming_the_file_and_the_key(init, match):
    with pytest.raises(configs.ConfigError, match=match) as err:
        configs.load("table1", quick=True, overrides={"ann": {"init": init}})
    assert "table1.yaml" in str(err.value) and "`ann: init:`" in str(err.value)


def test_only_the_ann_takes_an_init():
    with pytest.raises(configs.ConfigError, match="`finetune: init:` - the fine-tune starts"):
        configs.load("table1", quick=True, overrides={"finetune": {"init": {"profile": "x"}}})
    assert "init" not in configs.load("table1", overrides={"ann": {"init": None}})["ann"]


def test_a_named_model_is_pinned_by_its_digest(chain):
    """``init: {model: <run folder>}`` loads that run's ANN; a digest it does not have is
    refused, naming both digests; the right one passes and is the stage's start."""
    from kspikese.hybrid import weights_digest

    run, corpus = open_chain(chain, "cpu")
    ann = pipeline.train_ann(run, corpus, verbose=0)
    digest = weights_digest(ann)
    model, found = continuation.named_model({"model": str(run.dir)})
    assert found == digest and weights_digest(model) == digest
    with pytest.raises(continuation.InitError, match=f"have the digest {digest}, but the recipe "
                                                     "starts from 0000000000000000"):
        continuation.named_model({"model": str(run.dir), "digest": "0" * 16})
    pinned, _ = open_chain(chain, "cpu", results="pinned",
                           overrides={"ann": {"init": {"model": str(run.dir), "digest": digest}}})
    start, what = pipeline.initial_ann(pinned)
    assert weights_digest(start) == digest and digest in what
    with pytest.raises(continuation.InitError, match="no such model"):
        continuation.named_model({"model": str(chain[0] / "nowhere.keras")})


def test_a_start_of_another_architecture_is_refused_naming_the_tensor():
    from kspikese import models

    small = models.build_wave_u_net(frame_len=4096, depth=3, filters=8)
    wider = models.build_wave_u_net(frame_len=4096, depth=3, filters=12)
    deeper = models.build_wave_u_net(frame_len=4096, depth=4, filters=8)
    with pytest.raises(continuation.InitError, match="'x''s weight 0 has shape"):
        continuation.transfer(wider, small, "'x'")
    with pytest.raises(continuation.InitError, match="weight tensors"):
        continuation.transfer(deeper, small, "'x'")
    twin = models.build_wave_u_net(frame_len=4096, depth=3, filters=8)
    small.set_weights([w + 1.0 for w in small.get_weights()])
    continuation.transfer(small, twin, "'x'")
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), small.get_weights()))


def test_a_shipped_ann_is_found_by_its_recorded_stage(tmp_path):
    """Only an ANN's card (not an ``snn-`` one, not a card without its weight file) whose
    ``run.stages.ann.fingerprint`` is the one asked for is returned."""
    from kspikese.shipped import FORMAT

    def card(name, fingerprint, weights=True):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"format": FORMAT, "keras_config": {}, "weights_file": f"{name}.h5",
             "weights_sha256": "", "run": {"stages": {"ann": {"fingerprint": fingerprint}}}}))
        if weights:
            (tmp_path / f"{name}.h5").write_bytes(b"")

    card("snn-wave-u-net", "aaaa")
    card("no-weights", "aaaa", weights=False)
    card("wave-u-net", "bbbb")
    card("conv-tasnet", "aaaa")
    assert continuation.shipped_stage("aaaa", weights_dir=tmp_path) == "conv-tasnet"
    assert continuation.shipped_stage("bbbb", weights_dir=tmp_path) == "wave-u-net"
    assert continuation.shipped_stage("cccc", weights_dir=tmp_path) is None
