"""Where a run executes: CPU threads, distribution strategies, file-system checks."""

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


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy of a `--strategy` flag.

    Args:
        name: "default" (one device), "mirrored" (all local GPUs), "multi_worker"
            (TF_CONFIG cluster) or "tpu".
        tpu: the TPU address or name for "tpu" ("" or None: from the environment).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG describing the cluster "
                             "(see README: multi-worker)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
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
