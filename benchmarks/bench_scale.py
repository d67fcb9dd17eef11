r"""Data-parallel scaling: training throughput on 1 vs 2 replicas, in one process and across two.

    python benchmarks/bench_scale.py [--preset small] [--steps 30] [--fixed_global_batch]

Variants, each measured in its own process(es) with `model.fit` (adversarial steps, the
real input pipeline and train_step), after a few warm-up steps:
- default:      the default strategy, one CPU device;
- mirrored_2:   MirroredStrategy over 2 logical CPU devices of one process
                (`tf.config.set_logical_device_configuration`), the multi-GPU code path;
- multi_worker_1: MultiWorkerMirroredStrategy, one worker (the strategy's own overhead);
- multi_worker_2: MultiWorkerMirroredStrategy, 2 worker processes on 127.0.0.1 (TF_CONFIG),
                gradients all-reduced over gRPC, the multi-machine code path.
By default each replica gets the preset's batch (the global batch grows with the replicas,
the usual data-parallel set-up); --fixed_global_batch keeps the preset's batch as the global
batch instead (each replica gets half). Throughput is windows (training sequences) per
second over the global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WARMUP = 4
VARIANTS = ("default", "mirrored_2", "multi_worker_1", "multi_worker_2")


def run_variant(name: str, preset: str, steps: int, fixed_global_batch: bool,
                intra_op_threads: int = -1) -> dict:
    """Runs in a fresh process (one worker of multi_worker_2): returns windows/s."""
    import tensorflow as tf

    sys.path.insert(0, str(ROOT))
    from crnn_gan import distribute

    distribute.configure_cpu_threads(intra_op_threads, 0)  # as train.py's flag
    if name == "mirrored_2":
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    import numpy as np

    from crnn_gan import config as config_lib
    from crnn_gan import training
    from tests import midi_fixtures
    from tfds_midi import pipeline

    keras.utils.set_random_seed(0)
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored_2":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    replicas = strategy.num_replicas_in_sync
    config = config_lib.preset(preset)
    batch = config.batch_size * (1 if fixed_global_batch else replicas)
    config = config.replace(batch_size=batch, pretrain_epochs=0)
    rng = np.random.default_rng(0)
    songs = [midi_fixtures.random_song(rng, 4 * config.seq_len) for _ in range(32)]
    scaler = pipeline.FeatureScaler.fit(songs)
    dataset = pipeline.window_dataset(songs, scaler, config.seq_len, batch,
                                      windows_per_song=8, seed=0).repeat()
    with strategy.scope():
        model = training.build_model(config, "gan")
    model.window_length.assign(config.seq_len)

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == WARMUP - 1:
                self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.start

    timer = Timer()
    model.fit(dataset, epochs=1, steps_per_epoch=WARMUP + steps, callbacks=[timer],
              verbose=0)
    return {"replicas": replicas, "global_batch": batch,
            "ms_per_step": timer.seconds / steps * 1000,
            "windows_per_second": steps * batch / timer.seconds}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def measure(name: str, args) -> dict:
    """Starts the variant's process(es); returns the (chief's) result or an error."""
    command = [sys.executable, __file__, "--variant", name, "--preset", args.preset,
               "--steps", str(args.steps), "--intra_op_threads", str(args.intra_op_threads)
               ] + (["--fixed_global_batch"]
                                              if args.fixed_global_batch else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    workers = {"multi_worker_1": 1, "multi_worker_2": 2}.get(name, 0)
    envs = [env]
    if workers:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(workers)]}
        envs = [{**env, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": i}})}
                for i in range(workers)]
    processes = [subprocess.Popen(command, env=e, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
                 for e in envs]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=args.timeout))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
    for process, (stdout, stderr) in zip(processes, outputs):
        if process.returncode != 0:
            return {"error": (stderr or stdout).strip().splitlines()[-1:]}
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=["tiny", "small", "paper"])
    parser.add_argument("--steps", type=int, default=30, help="timed steps after warm-up")
    parser.add_argument("--fixed_global_batch", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--intra_op_threads", type=int, default=-1,
                        help="as train.py's flag: -1 auto, 0 TensorFlow's default")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.preset, args.steps,
                                     args.fixed_global_batch, args.intra_op_threads)))
        return
    results = {}
    for name in VARIANTS:
        results[name] = measure(name, args)
        print(name, results[name], flush=True)
    print(f"\nAdversarial training, preset {args.preset}, {os.cpu_count()} CPU cores, "
          f"{'fixed global batch' if args.fixed_global_batch else 'fixed per-replica batch'}:")
    print(f"{'variant':<16}{'replicas':>9}{'global batch':>14}{'ms/step':>10}{'windows/s':>11}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<16}  unavailable: {r['error']}")
        else:
            print(f"{name:<16}{r['replicas']:>9}{r['global_batch']:>14}"
                  f"{r['ms_per_step']:>10.1f}{r['windows_per_second']:>11.0f}")

    def ratio(a, b):
        ra, rb = results[a].get("windows_per_second"), results[b].get("windows_per_second")
        return f"{ra / rb:.2f}x" if ra and rb else "n/a"

    print(f"\n2 vs 1 logical devices (mirrored_2 / default):          "
          f"{ratio('mirrored_2', 'default')}")
    print(f"2 vs 1 workers (multi_worker_2 / multi_worker_1):        "
          f"{ratio('multi_worker_2', 'multi_worker_1')}")
    print(f"1 worker vs default strategy (multi_worker_1 / default): "
          f"{ratio('multi_worker_1', 'default')}")
    print("\nWhat limits scaling here: both replicas (logical devices or worker processes) "
          "share the same 2 CPU cores, which one replica's LSTM kernels already keep busy, "
          "so a second replica mostly splits the same compute and adds the all-reduce of "
          "every gradient (in-process copies, or gRPC between workers) and a sync point per "
          "step. On a multi-GPU machine each replica has its own device: with the "
          "per-replica batch kept, expect close to linear throughput for the paper's size "
          "(the all-reduce of 5.4M parameters, 22 MB, per step is small next to the "
          "recurrent compute); the sequential LSTM time steps, not the batch, bound each "
          "step, so grow the global batch (--batch_size) with the replicas rather than "
          "splitting it.")


if __name__ == "__main__":
    main()
