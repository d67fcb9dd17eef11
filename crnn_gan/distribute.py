"""Where a run executes, and the arithmetic across its replicas.

Where: CPU threads, distribution strategies, file-system checks. Across replicas (what the
models' train steps call, inside `strategy.run` or without a strategy, where they behave as
one replica): `global_mean`, `reduce_and_clip` (each player's gradient summed over replicas,
then clipped by its global norm), `global_batch_shape` and `replica_share` (each replica's
rows of a value drawn for the whole global batch), and `fit_logs` (train-step logs in the form
Keras' reduction of them needs).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")

# URL schemes that tf.io.gfile handles only once tensorflow-io's plugins are loaded.
_TFIO_SCHEMES = ("s3", "hdfs", "az", "http", "https")


# With at most this many cores, the independent LSTM chains of a step (D's two directions
# over real and fake data, their gradients) keep every core busy one op per core.
_AUTO_SINGLE_THREAD_OPS_MAX_CORES = 4


def configure_cpu_threads(intra_op: int = -1, inter_op: int = 0) -> tuple[int, int]:
    """Sets TensorFlow's CPU thread pools; call before TensorFlow runs its first op.

    Args:
        intra_op: threads one op may use. -1 (auto): 1 on a machine without GPUs or TPUs
            and with at most 4 cores, else TensorFlow's default; 0: TensorFlow's default.
            Measured at the paper's size on 2 cores: one thread per op and two ops side by
            side run an adversarial step in 0.87 s instead of 1.09 s (batch-20 matmuls are
            too small to gain from splitting; the step's LSTMs run side by side instead).
        inter_op: ops run side by side; 0: TensorFlow's default (the number of cores).

    Returns:
        ``(intra_op, inter_op)`` as set (0 = TensorFlow's default).

    Raises:
        ValueError: a negative count other than -1, or TensorFlow already running.
    """
    if intra_op < -1 or inter_op < 0:
        raise ValueError(f"thread counts must be >= 0 (intra_op -1: auto), got intra_op="
                         f"{intra_op}, inter_op={inter_op}")
    if intra_op == -1:
        accelerators = (tf.config.list_physical_devices("GPU")
                        or tf.config.list_physical_devices("TPU"))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        single = not accelerators and cores <= _AUTO_SINGLE_THREAD_OPS_MAX_CORES
        intra_op = 1 if single else 0
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:
        raise ValueError(f"CPU threads must be set before TensorFlow runs: {error}") from None
    return intra_op, inter_op


#: The strategies made in this process, by (name, tpu): see `make_strategy`.
_MADE: dict[tuple[str, str | None], tf.distribute.Strategy] = {}


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy of a `--strategy` flag, made once per process.

    A second MirroredStrategy in one process starts its collective instance keys again and
    its first all-reduce fails ("Shape mismatch in the collective instance"), so a
    process that trains twice (a notebook, a script calling `training.train` in a loop)
    gets the strategy made for the first run again; likewise the multi-worker strategy and
    the TPU system, which are set up once per process.

    Args:
        name: "default" (one device), "mirrored" (all local GPUs), "multi_worker"
            (TF_CONFIG cluster) or "tpu".
        tpu: the TPU address or name for "tpu" ("" or None: from the environment).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if (name, tpu) not in _MADE:
        _MADE[name, tpu] = _new_strategy(name, tpu)
    return _MADE[name, tpu]


def _new_strategy(name: str, tpu: str | None) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG describing the cluster "
                             "(see README: multi-worker)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        except ValueError as error:  # no TPU named and none found in the environment
            raise ValueError(f"--strategy=tpu: no TPU found ({error}): give --tpu=<name or "
                             "grpc:// address>, or run where a TPU is attached") from None
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def worker_index() -> tuple[bool, int]:
    """(is_chief, index) of this process in a TF_CONFIG cluster ((True, 0) without one)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task_type == "chief" or (not has_chief and task_type == "worker" and index == 0)
    return is_chief, index


def check_filesystem(path: str | None, flag: str) -> None:
    """Fails early, naming the scheme and the fix, when `path`'s URL scheme has no file system.

    Args:
        path: a `--data_dir` / `--model_dir` value (local path or URL like s3://bucket/dir).
        flag: the flag's name, for the message.

    Raises:
        ValueError: the scheme is not registered with tf.io.gfile.
    """
    if not path or "://" not in path:
        return
    scheme = path.split("://", 1)[0]
    if scheme not in tf.io.gfile.get_registered_schemes():
        try:
            import tensorflow_io  # noqa: F401  (registers s3, hdfs, az, http, ...)
        except Exception:  # noqa: BLE001 - missing or not loadable: the message says why
            pass
    if scheme not in tf.io.gfile.get_registered_schemes():
        fix = ("install tensorflow-io built for your TensorFlow (the pinned stack: "
               "tensorflow 2.16.2 + tensorflow-io 0.37.1, `make setup`)"
               if scheme in _TFIO_SCHEMES else "use a local path, gs:// or another scheme "
               "that tf.io.gfile knows")
        raise ValueError(f"{flag}={path}: no file system is registered for '{scheme}://'; "
                         f"{fix}.")


def replica_context():
    """(context or None, number of replicas in sync, this replica's id).

    In a cross-replica context (no `strategy.run`, or no strategy at all): (None, 1, 0), i.e.
    one replica.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        return None, 1, 0
    return context, context.num_replicas_in_sync, context.replica_id_in_sync_group


def global_mean(value):
    """The mean of `value` over all replicas (each holding an equal share of the batch)."""
    context, replicas, _ = replica_context()
    if replicas == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value) / replicas


def global_batch_shape(local_shape):
    """``[local_batch * replicas, ...]``: the shape of the global batch of which this
    replica's share has `local_shape` ``[local_batch, ...]`` (an int32 vector)."""
    _, replicas, _ = replica_context()
    return tf.concat([[local_shape[0] * replicas], local_shape[1:]], 0)


def replica_share(global_batch, local_batch):
    """This replica's rows ``[local_batch, ...]`` of a value ``[local_batch * replicas, ...]``
    computed alike on every replica (replica k: rows k * local_batch onwards)."""
    _, _, replica = replica_context()
    return global_batch[replica * local_batch:(replica + 1) * local_batch]


def reduce_and_clip(gradients, clip_norm: float):
    """Global-norm clipping of the gradient summed over replicas.

    Keras' optimizers clip each replica's partial gradient before summing, which is not
    the global norm; so gradients are summed here, clipped, and handed to the optimizer
    divided by the number of replicas (it sums them again).

    A gradient whose global norm is not finite (an overflow somewhere in the step) becomes
    zeros, so that the update is skipped instead of writing NaN into every weight (clipping
    by an infinite norm gives NaN); a NaN or Inf *loss* still stops the run
    (`NonFiniteLossGuard`). Measured once in the quality protocol: a finite-loss step whose
    update turned every weight into NaN in the 24th epoch of one seed.

    Args:
        gradients: this replica's gradients (of losses already divided by the number of
            replicas).
        clip_norm: the global norm bound; 0 = no clipping.
    """
    context, replicas, _ = replica_context()
    if replicas > 1:
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    norm = tf.linalg.global_norm(gradients)  # once: the check and the clipping share it
    finite = tf.math.is_finite(norm)
    gradients = [tf.where(finite, g, tf.zeros_like(g)) for g in gradients]
    if clip_norm:
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm,
                                              use_norm=tf.where(finite, norm, 0.0))
    if replicas > 1:
        gradients = [g / replicas for g in gradients]
    return gradients


def fit_logs(logs: dict) -> dict:
    """What a train step returns to Keras' `fit`: `logs` of scalars, or under multi-worker
    training the same values as vectors of one element.

    Keras 3 reduces each value a train step returns over the workers of a
    MultiWorkerMirroredStrategy with ``strategy.reduce("MEAN", value, axis=0)``, which fails
    on scalars ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388); a vector of one element reduces to the mean over the
    workers, a scalar again. The test is Keras' own (a collective strategy in multi-worker
    mode); on one machine the logs stay scalars, since Keras then averages the replicas'
    values without an axis.
    """
    strategy = tf.distribute.get_strategy()
    multi_worker = (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                    and strategy.extended._in_multi_worker_mode())
    if not multi_worker:
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def uniform_noise(seed: int, step, local_shape):
    """Uniform [0, 1) noise for this replica's share of the global batch.

    The noise of the whole global batch is a function of (seed, step) only; each replica
    takes its own slice (`replica_share`). So replicas get different
    noise, and a run on N replicas sees the same noise as one replica on the same global
    batch (which makes them comparable), and a resumed run continues the same sequence (the
    step is the optimizer's iteration count).

    Args:
        seed: the run's seed.
        step: an int64 scalar that changes every training step.
        local_shape: ``[local_batch, steps, noise_dim]``.
    """
    return _replica_noise(tf.random.stateless_uniform, seed, step, local_shape)


def normal_noise(seed: int, step, local_shape):
    """Standard normal noise for this replica's share of the global batch, a function of
    (seed, step) only, sliced per replica like `uniform_noise`.

    Args:
        seed: a seed of the run (each use its own).
        step: an int64 scalar that changes every training step.
        local_shape: ``[local_batch, ...]``.
    """
    return _replica_noise(tf.random.stateless_normal, seed, step, local_shape)


def _replica_noise(stateless_sampler, seed, step, local_shape):
    """`stateless_sampler` (a ``tf.random.stateless_*``) over the global batch, seeded by
    (seed, step); this replica's rows."""
    noise = stateless_sampler(global_batch_shape(local_shape),
                              tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)]))
    return replica_share(noise, local_shape[0])
