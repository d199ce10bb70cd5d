"""Training under tf.distribute gives what training on one device gives.

TensorFlow's devices (logical CPUs) and a cluster (TF_CONFIG) must be set before its runtime
starts, so each case runs in a fresh Python process.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
       "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
ENV.pop("TF_CONFIG", None)

# one process: the same seeded model and data trained by fit_resumable with the default
# strategy and with MirroredStrategy over two logical CPUs (global batch 4 = 2 per replica)
MIRRORED = r'''
import json, sys
from kspikese import distribute
strategy = distribute.make_strategy("mirrored", cpu_replicas=2)
import numpy as np, tensorflow as tf
from kspikese import training

def net():
    tf.keras.utils.set_random_seed(3)
    x = tf.keras.Input((64, 1))
    h = tf.keras.layers.Conv1D(8, 5, padding="same", activation="relu")(x)
    h = tf.keras.layers.BatchNormalization()(h)
    return tf.keras.Model(x, tf.keras.layers.Conv1D(1, 5, padding="same")(h))

rng = np.random.default_rng(0)
clean = rng.normal(size=(40, 64, 1)).astype("float32")
noisy = (clean + 0.5 * rng.normal(size=clean.shape)).astype("float32")
def make_train(epoch):
    order = np.random.default_rng([0, epoch]).permutation(32)
    return tf.data.Dataset.from_tensor_slices((noisy[order], clean[order])).batch(4)
valid = tf.data.Dataset.from_tensor_slices((noisy[32:], clean[32:])).batch(4)
replica_data = None
if len(sys.argv) > 2:  # dynamic mixing on the corpus in argv[2]: each replica mixes its share
    import warnings
    from kspikese.corpus import open_corpus
    warnings.simplefilter("ignore")
    corpus = open_corpus({"recipe": "vctk-like", "frame_len": 64, "batch_size": 4,
                          "data": {"train": {"mixing": "dynamic", "examples_per_epoch": 14}}},
                         "default", data_dir=sys.argv[2], seed=0)
    make_train, replica_data = corpus.training_stream, corpus.replica_stream
out = {"replicas": strategy.num_replicas_in_sync, "init": [w.tolist() for w in net().get_weights()]}
for name, strat in (("default", None), ("mirrored", strategy)):
    m = net()
    hist = training.fit_resumable(m, make_train, valid, f"{sys.argv[1]}/{name}", epochs=2,
                                  lr=1e-2, patience=5, seed=0, label=name, steps_per_epoch=3,
                                  verbose=0, strategy=strat, replica_data=replica_data)
    out[name] = {"w": [w.tolist() for w in m.get_weights()], "hist": hist}
json.dump(out, open(f"{sys.argv[1]}/out.json", "w"))
'''


@pytest.mark.slow  # 20-35 s each: a fresh TensorFlow process tracing two strategies' steps
@pytest.mark.parametrize("data", ["arrays", "dynamic mixing"])
def test_mirrored_over_two_cpus_trains_the_same_weights_as_one_device(tmp_path, data):
    extra = []
    if data == "dynamic mixing":  # each replica mixes its own half of every global batch
        from kspikese.data.testing import make_fake_corpus

        make_fake_corpus(tmp_path / "corpus", (6, 2, 2), seed=0)
        extra = [str(tmp_path / "corpus")]
    subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path), *extra], env=ENV, check=True,
                   timeout=300, capture_output=True)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["replicas"] == 2
    one, two = ([np.asarray(w) for w in out[k]["w"]] for k in ("default", "mirrored"))
    init = [np.asarray(w) for w in out["init"]]
    # 6 Adam steps at lr 1e-2 move the weights by up to ~0.5; the replicas agree to float
    # round-off (measured 7e-8), BatchNorm included (synchronized over the global batch)
    assert max(np.abs(a - b).max() for a, b in zip(one, init)) > 0.1
    assert max(np.abs(a - b).max() for a, b in zip(one, two)) < 1e-5
    for r1, r2 in zip(out["default"]["hist"], out["mirrored"]["hist"]):
        for key in ("loss", "val_loss", "val_si_snr", "val_snr"):
            assert r1[key] == pytest.approx(r2[key], abs=1e-4), key
    # the files of a mirrored run are those of a one-device run
    print(f"max |w_default - w_mirrored| = {max(np.abs(a - b).max() for a, b in zip(one, two)):.2g}")
    names = {p.name for p in (tmp_path / "default").iterdir()}
    assert names == {p.name for p in (tmp_path / "mirrored").iterdir()}
    assert {"state.json", "log.csv", "best_weights.h5", "ckpt-2.index"} <= names


# the ANN's bfloat16 twin (kspikese.precision) under MirroredStrategy: the strategy's replica
# copy keeps the twin's dtype policy, and train_ann copies the trained weights back
MIRRORED_BF16 = r"""
import json, sys
from kspikese import distribute
strategy = distribute.make_strategy("mirrored", cpu_replicas=2)
import numpy as np, tensorflow as tf
from kspikese import hybrid

def net():
    tf.keras.utils.set_random_seed(3)
    x = tf.keras.Input((64, 1))
    h = tf.keras.layers.Conv1D(8, 5, padding="same", activation="relu")(x)
    return tf.keras.Model(x, tf.keras.layers.Conv1D(1, 5, padding="same")(h))

rng = np.random.default_rng(0)
clean = rng.normal(size=(40, 64, 1)).astype("float32")
noisy = (clean + 0.5 * rng.normal(size=clean.shape)).astype("float32")
train = tf.data.Dataset.from_tensor_slices((noisy[:32], clean[:32])).batch(4)
valid = tf.data.Dataset.from_tensor_slices((noisy[32:], clean[32:])).batch(4)
out = {"init": [w.tolist() for w in net().get_weights()]}
for name, strat in (("default", None), ("mirrored", strategy)):
    m = net()
    hybrid.train_ann(m, train, valid, f"{sys.argv[1]}/{name}", epochs=2, lr=1e-2, patience=5,
                     seed=0, steps_per_epoch=3, verbose=0, strategy=strat,
                     precision="mixed_bfloat16")
    out[name] = {"w": [w.tolist() for w in m.get_weights()], "dtype": m.layers[1].compute_dtype}
json.dump(out, open(f"{sys.argv[1]}/out.json", "w"))
"""


@pytest.mark.slow  # a fresh TensorFlow process tracing two strategies' steps
def test_mirrored_trains_the_bfloat16_twin_as_one_device(tmp_path):
    subprocess.run([sys.executable, "-c", MIRRORED_BF16, str(tmp_path)], env=ENV, check=True,
                   timeout=300, capture_output=True)
    out = json.loads((tmp_path / "out.json").read_text())
    one, two = ([np.asarray(w) for w in out[k]["w"]] for k in ("default", "mirrored"))
    init = [np.asarray(w) for w in out["init"]]
    assert out["default"]["dtype"] == out["mirrored"]["dtype"] == "float32"  # copied back
    moved = max(np.abs(a - b).max() for a, b in zip(one, init))
    assert moved > 0.03  # 6 Adam steps at lr 1e-2 (measured 0.06)
    # bfloat16 arithmetic summed in another order on two replicas: the weights agree to a few
    # bfloat16 roundings (2^-8 relative) of the distance they moved
    assert max(np.abs(a - b).max() for a, b in zip(one, two)) < 0.05 * moved


# ---------------------------------------------------------------- QUICK Table 1 on 2 workers
def _reproduce(root, results, *extra, timeout=900, **popen):
    cmd = [sys.executable, "-m", "kspikese", "reproduce", "table1", "--quick",
           "--results", str(results), "--data-dir", str(root / "data"), "--metric-workers", "1",
           *extra]
    return subprocess.Popen(cmd, env=ENV, cwd=str(root), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from kspikese.data.testing import make_fake_corpus

    root = tmp_path_factory.mktemp("distributed")
    make_fake_corpus(root / "data", n_per_split=(6, 2, 2), seconds=1.5, seed=0)
    return root


def _table(results):
    return json.loads((results / "table1" / "table1.json").read_text())


@pytest.mark.slow  # about 2.5 min on one core: two workers (~2 min) and one (~20 s)
def test_two_local_workers_write_the_table_of_one(corpus):
    single, multi = corpus / "single", corpus / "multi"
    p = _reproduce(corpus, single)
    assert p.wait(600) == 0, p.stdout.read()
    t0 = time.monotonic()
    p = _reproduce(corpus, multi, "--strategy", "multi-worker", "--workers", "2",
                   "--worker-timeout", "900")
    log = p.communicate(timeout=1000)[0]
    assert p.returncode == 0, log
    print(f"2 workers: {time.monotonic() - t0:.0f} s")
    assert sorted(os.listdir(single / "table1")) == sorted(os.listdir(multi / "table1"))
    one, two = _table(single), _table(multi)
    assert one["columns"] == two["columns"]
    # every metric of every column within 0.05 (dB, or STOI/PESQ units); measured: 0.0044 dB
    for column in one["columns"]:
        for metric, value in one["metrics"][column].items():
            assert two["metrics"][column][metric] == pytest.approx(value, abs=0.05), (column, metric)
    # only the chief wrote: the run folders hold the same files
    run = "runs/table1-quick-default-seed0"
    def listing(base):
        return sorted(str(p.relative_to(base / run)) for p in (base / run).rglob("*")
                      if "tb" not in p.parts)
    assert listing(single) == listing(multi)
    for stage in ("ann", "finetune"):
        h1 = json.loads((single / run / stage / "state.json").read_text())["history"]
        h2 = json.loads((multi / run / stage / "state.json").read_text())["history"]
        assert [r["val_si_snr"] for r in h1] == pytest.approx([r["val_si_snr"] for r in h2],
                                                              abs=0.01)


def _worker_pids(launcher_pid):
    """``{index: pid}`` of the launcher's worker processes (from their TF_CONFIG)."""
    pids = {}
    kids = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    for pid in map(int, kids):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"TF_CONFIG="):
                pids[json.loads(item[10:])["task"]["index"]] = pid
    return pids


@pytest.mark.slow  # about 4 min on one core
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find workers")
def test_a_worker_killed_mid_run_resumes_with_the_same_command(corpus):
    results = corpus / "killed"
    args = ("--strategy", "multi-worker", "--workers", "2", "--worker-timeout", "900")
    p = _reproduce(corpus, results, *args)
    state = results / "runs" / "table1-quick-default-seed0" / "ann" / "state.json"
    deadline = time.monotonic() + 600
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert p.poll() is None and time.monotonic() < deadline, p.stdout.read()
        time.sleep(0.2)
    os.kill(_worker_pids(p.pid)[1], signal.SIGKILL)  # worker 1, during ANN epoch 2
    log = p.communicate(timeout=120)[0]
    assert p.returncode == 128 + signal.SIGKILL, log
    assert not (results / "table1" / "table1.json").exists()
    p = _reproduce(corpus, results, *args)
    log = p.communicate(timeout=1000)[0]
    assert p.returncode == 0, log
    assert "[ANN] resuming after epoch 1" in log or "[ANN] resuming after epoch 2" in log, log
    assert _table(results)["columns"][-1] == "SNN-Wave-U-Net"


# a tiny ANN fine-tuned as an SNN on one device and mirrored over two logical CPUs
TINY_SNN = r'''
import json, sys
from kspikese import distribute
strategy = distribute.make_strategy("mirrored", cpu_replicas=2)
import numpy as np, tensorflow as tf
from kspikese import hybrid, training

def ann():
    training.set_seed(0)
    inp = tf.keras.Input((16,))
    h = tf.keras.layers.Dense(32, activation="relu", name="d1")(inp)
    h = tf.keras.layers.Dense(32, activation="relu", name="d2")(h)
    return tf.keras.Model(inp, tf.keras.layers.Dense(16, name="readout")(h))

def both(data, **kwargs):  # fine-tune the converted ANN on one device and mirrored
    out = {}
    for name, strat in (("one", None), ("mirrored", strategy)):
        snn = hybrid.convert(ann(), seed=0, dt=1.0, activation_scale=10.0, v0=0.5)
        out[name] = hybrid.finetune(snn, data, data, f"{sys.argv[1]}/{name}", lr=1e-3, patience=9,
                                    verbose=0, validation_steps=1, strategy=strat, ann=ann(),
                                    **kwargs)
    json.dump(out, open(f"{sys.argv[1]}/out.json", "w"))
'''
def _one_and_mirrored(script, tmp_path):
    """Run a TINY_SNN script in a fresh process: ``{"one": history, "mirrored": history}``."""
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=ENV, check=True,
                   timeout=300, capture_output=True)
    return json.loads((tmp_path / "out.json").read_text())


# a spike penalty whose weight follows the rate budget: the replicas train with the adapted weight
ADAPTED = TINY_SNN + r'''

x = np.random.default_rng(0).standard_normal((64, 16)).astype("float32")
data = tf.data.Dataset.from_tensor_slices((x, x)).batch(8)
both(data, epochs=3, steps_per_epoch=2, max_events_per_mac=0.2,
     spike_penalty={"weight": 2.0, "weighting": "events", "adapt_gain": 1.5})
'''


@pytest.mark.slow  # about 70 s on one core
def test_mirrored_fine_tune_trains_with_the_adapted_penalty_weight(tmp_path):
    out = _one_and_mirrored(ADAPTED, tmp_path)
    weights = [r["penalty_weight"] for r in out["one"]]
    assert weights[0] == 2.0 and weights[1] > 2.0  # over the budget: the weight grew
    for one, two in zip(out["one"], out["mirrored"]):
        assert two["penalty_weight"] == pytest.approx(one["penalty_weight"], rel=1e-6)
        # the training loss holds the penalty: equal only if the replicas used the new weight
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)


# teacher targets (finetune: teacher) on each replica's own input stream (replica_data)
TAUGHT = TINY_SNN + r'''
rng = np.random.default_rng(0)
x, clean = (rng.standard_normal((64, 16)).astype("float32") for _ in range(2))
pairs = tf.data.Dataset.from_tensor_slices((x, clean))
data = pairs.batch(8)
replica_data = lambda epoch: ((lambda context: pairs.batch(4)), 8)  # 2 x 4 = one global batch
both(data, epochs=2, steps_per_epoch=4, teacher=0.7, replica_data=replica_data)
'''


@pytest.mark.slow  # about 40 s on one core
def test_mirrored_fine_tune_with_a_teacher_on_replica_streams_matches_one_device(tmp_path):
    out = _one_and_mirrored(TAUGHT, tmp_path)
    for one, two in zip(out["one"], out["mirrored"]):
        # the training loss is against the blended targets: equal only if each replica's
        # stream was blended too
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)
        assert two["val_si_snr"] == pytest.approx(one["val_si_snr"], rel=1e-4)
