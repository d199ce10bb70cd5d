"""Data-parallel training with ``tf.distribute``: the strategy, who writes, a local launcher.

Stages 1 and 3 (:func:`kspikese.training.fit_resumable`) train under a strategy:

* ``default``: one device (TensorFlow's default strategy);
* ``mirrored``: ``MirroredStrategy`` over the local GPUs, or, with ``cpu_replicas = n`` on a
  machine without GPUs, over ``n`` logical CPU devices (for testing data parallelism);
* ``multi-worker``: ``MultiWorkerMirroredStrategy``, one process per worker, the cluster
  described by the ``TF_CONFIG`` environment variable of each process.

The global batch is the experiment's batch size, split across the ``R`` replicas; gradients are
all-reduced, so learning rate, steps and schedule stay per global batch and a run on ``R``
replicas follows the same schedule as on one.  Under ``multi-worker`` every worker builds the
same seeded data stream and keeps its share of the batches (``AutoShardPolicy.DATA``), so the
union over workers is the single-worker stream; a dynamically mixed stream is instead mixed
per replica, each worker only its own replicas' examples (:func:`training_input`).  Only the chief (``chief``, or ``worker`` 0 when
the cluster has no chief) writes checkpoints, ``state.json``, logs and tables; the others write
their (collective) checkpoints into a scratch folder, as the TensorFlow guide advises, and read
the chief's folder to resume.

:func:`launch` starts ``N`` local workers on 127.0.0.1 (free ports, a generated ``TF_CONFIG``
each), bounded in time, and stops them all when one fails or the launcher is interrupted.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STRATEGIES = ("default", "mirrored", "multi-worker")


class StrategyError(ValueError):
    """A strategy cannot be made as asked; the message says what is missing."""


def logical_cpus(n):
    """Split the CPU into ``n`` logical devices (must run before TensorFlow starts its runtime)."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))])
    except RuntimeError as exc:
        if len(tf.config.list_logical_devices("CPU")) != int(n):
            raise StrategyError(f"cannot make {n} logical CPU devices now: TensorFlow's runtime "
                                "has already started (create the strategy first)") from exc
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def make_strategy(name="default", cpu_replicas=None):
    """The ``tf.distribute`` strategy called ``name`` (one of :data:`STRATEGIES`).

    Parameters
    ----------
    name : str
        ``default``, ``mirrored`` or ``multi-worker``.
    cpu_replicas : int, optional
        For ``mirrored`` on a machine without GPUs: the number of logical CPU replicas.

    Returns
    -------
    tf.distribute.Strategy

    Raises
    ------
    StrategyError
        An unknown name, ``multi-worker`` without ``TF_CONFIG``, ``mirrored`` with nothing to
        mirror over.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise StrategyError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise StrategyError("--strategy multi-worker needs TF_CONFIG describing the cluster "
                                "(or --workers N to launch N local workers)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    if not cpu_replicas or int(cpu_replicas) < 2:
        raise StrategyError("--strategy mirrored: no GPU here; give --cpu-replicas N (N >= 2) "
                            "to mirror over logical CPU devices")
    return tf.distribute.MirroredStrategy(devices=logical_cpus(cpu_replicas))


def is_distributed(strategy):
    """Whether ``strategy`` is more than TensorFlow's default one-device strategy."""
    import tensorflow as tf

    return strategy is not None and tf.distribute.has_strategy() is False and (
        strategy is not tf.distribute.get_strategy())


def task_of(strategy):
    """``(task_type, task_id)`` of this process in a multi-worker cluster, ``(None, 0)`` otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_writer(strategy=None):
    """Whether this process writes the run's files: the chief, or the only process."""
    task_type, task_id = task_of(strategy)
    if task_type is None or task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def scratch_folder(strategy, label):
    """A fresh temporary folder for a non-writing worker's checkpoints."""
    task_type, task_id = task_of(strategy)
    return Path(tempfile.mkdtemp(prefix=f"kspikese-{task_type}{task_id}-{label}-"))


def replica_model(model, strategy):
    """``model`` itself, or a copy whose variables live on the strategy's replicas.

    Under a distributing strategy the copy is built inside ``strategy.scope()`` from the model's
    config (same layers, same seeds) and given the model's weights.  Its BatchNormalization
    layers are *synchronized*: in training mode they normalise with the mean and variance of
    the whole global batch (all-reduced over the replicas), not of each replica's share, so a
    step on ``R`` replicas computes what one step on one device computes.  Activity
    regularisers (the spike penalty) are shared with the original layers, not copied.
    """
    import tensorflow as tf

    if not is_distributed(strategy):
        return model

    def clone(layer):
        config = layer.get_config()
        if type(layer) is tf.keras.layers.BatchNormalization:
            return tf.keras.layers.BatchNormalization(**config, synchronized=True)
        copy = layer.__class__.from_config(config)
        if getattr(layer, "activity_regularizer", None) is not None:
            # the same object: a penalty weight adapted between epochs (a tf.Variable,
            # kspikese.spike_penalty.BudgetController) reaches the replicas too
            copy.activity_regularizer = layer.activity_regularizer
        return copy

    with strategy.scope():
        copy = tf.keras.models.clone_model(model, clone_function=clone)
        copy.set_weights(model.get_weights())
    return copy


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several processes (a ``TF_CONFIG`` cluster)."""
    return task_of(strategy)[0] is not None


def replicas(strategy):
    """The number of replicas a global batch is split over (1 without a strategy)."""
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1) if strategy is not None else 1


def check_batch(batch_size, strategy, where="batch_size"):
    """Raise :class:`StrategyError` unless the global batch splits evenly over the replicas."""
    n = replicas(strategy)
    if int(batch_size) % n:
        raise StrategyError(f"{where}: the global batch of {batch_size} does not split evenly "
                            f"over {n} replicas (give a multiple of {n})")


def barrier(strategy):
    """Wait until every worker of a multi-worker ``strategy`` gets here (an all-reduce of 1).

    Returns the number of replicas that joined (:func:`replicas`); 1 in a single process,
    where there is nothing to wait for.
    """
    if not is_multi_worker(strategy):
        return 1
    import tensorflow as tf

    @tf.function
    def count():
        ones = strategy.run(lambda: tf.constant(1.0))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

    return int(round(float(count())))


def workers_in(strategy):
    """The number of worker processes of ``strategy`` (1 in a single process)."""
    if not is_multi_worker(strategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))


def shard(dataset, strategy):
    """``dataset`` with batch-level sharding across workers under ``multi-worker``."""
    import tensorflow as tf

    if task_of(strategy)[0] is None:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def training_input(make_train, epoch, strategy, steps_per_epoch=None, replica_data=None):
    """``(data, steps)``: what ``fit`` reads in ``epoch`` under ``strategy``, and for how many steps.

    With ``replica_data`` (``epoch -> (dataset_fn, steps)`` or ``None``, e.g.
    :meth:`kspikese.corpus.Corpus.replica_stream`) and a distributing strategy, each worker
    builds only its replicas' per-replica batches
    (``strategy.distribute_datasets_from_function(dataset_fn)``) for at most ``steps`` steps.
    Otherwise every worker reads ``make_train(epoch)``, whose batches are global batches, and
    keeps its share of each (:func:`shard`).
    """
    got = replica_data(epoch) if replica_data is not None and is_distributed(strategy) else None
    if got is None:
        return shard(make_train(epoch), strategy), steps_per_epoch
    dataset_fn, steps = got
    if steps < 1:
        raise StrategyError("the training stream holds no whole global batch")
    return (strategy.distribute_datasets_from_function(dataset_fn),
            min(int(steps_per_epoch), steps) if steps_per_epoch else steps)


# ------------------------------------------------------------------------------ local launcher
def free_ports(n):
    """``n`` distinct free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports, index):
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of local workers on ``ports``."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": int(index)}})


def launch(argv, workers, timeout=None, log_dir=None, poll=0.5):
    """Run ``python -m kspikese *argv`` as ``workers`` local workers; return the exit status.

    Worker 0 (the chief) prints to this terminal; the others log to
    ``log_dir/worker-<i>.log`` (a temporary folder by default, named on failure).  When any
    worker fails, the time limit passes, or the launcher gets SIGINT/SIGTERM, every worker is
    stopped.  The status is 0 when all finished cleanly, else the first failure's (``128 + N``
    for a worker killed by signal ``N``; 124 on time out, 130 on interruption).
    """
    if int(workers) < 2:
        raise StrategyError(f"--workers: expected at least 2 local workers, got {workers}")
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="kspikese-workers-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(int(workers))
    procs, logs = [], []
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i in range(int(workers)):
            env = dict(os.environ, TF_CONFIG=tf_config(ports, i))
            out = None
            if i:
                out = open(log_dir / f"worker-{i}.log", "w")
                logs.append(out)
            procs.append(subprocess.Popen([sys.executable, "-m", "kspikese", *argv], env=env,
                                          stdout=out, stderr=subprocess.STDOUT if out else None))
        t0 = time.monotonic()
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:  # a worker killed by signal N (returncode -N) -> 128 + N, as a shell says
                status = failed[0] if failed[0] > 0 else 128 - failed[0]
                print(f"[workers] a worker exited with status {status}; stopping the others "
                      f"(logs: {log_dir})", file=sys.stderr, flush=True)
                break
            if all(c == 0 for c in codes):
                status = 0
                break
            if stop["signal"] is not None:
                status = 130
                print("[workers] interrupted; stopping every worker", file=sys.stderr, flush=True)
                break
            if timeout and time.monotonic() - t0 > timeout:
                status = 124
                print(f"[workers] time limit of {timeout:.0f} s reached; stopping every worker "
                      f"(logs: {log_dir})", file=sys.stderr, flush=True)
                break
            time.sleep(poll)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
        for s, handler in old.items():
            signal.signal(s, handler)
    return status
