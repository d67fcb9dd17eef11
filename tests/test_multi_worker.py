"""MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1.

The test starts two workers (TF_CONFIG set per process, free ports chosen here), each running
this file as a driver: `crnn_gan.training.train` with `--strategy=multi_worker` semantics on
the same synthetic songs, plus a test-only callback that dumps all model weights (G, D and
the freezing state) of every worker after every epoch. Checks: both epochs finish, the two
workers hold identical weights after each epoch, only the chief writes the run's outputs,
and a worker SIGKILLed mid-run resumes from its BackupAndRestore backup once both restart.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EPOCHS = 2  # the tiny preset: 1 pretraining epoch, then 1 adversarial epoch
TIMEOUT = 120  # seconds for one run of both workers


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(model_dir: pathlib.Path, dump_dir: pathlib.Path, pause_after_epoch=0):
    """Starts both workers, each in its own process group; returns the Popen objects."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}}),
               # gRPC between the workers must never go through a proxy.
               "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
        log = open(dump_dir / f"worker_{index}.log", "w")
        processes.append(subprocess.Popen(
            [sys.executable, __file__, str(model_dir), str(dump_dir), str(pause_after_epoch)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return processes


def _kill(processes) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()


def _wait(processes, dump_dir, timeout=TIMEOUT) -> None:
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and any(p.poll() is None for p in processes):
            time.sleep(0.2)
    finally:
        _kill(processes)  # no-op for finished workers; ends hung ones
    assert all(p.returncode == 0 for p in processes), _logs(dump_dir)


def _logs(dump_dir) -> str:
    return "\n".join(f"--- worker {i} ---\n"
                     + (dump_dir / f"worker_{i}.log").read_text()[-2500:] for i in range(2))


def _dumped_weights(dump_dir, worker, epoch, name="worker_{worker}_epoch_{epoch}.npz"):
    import numpy as np

    with np.load(dump_dir / name.format(worker=worker, epoch=epoch)) as data:
        return [data[f"w{k}"] for k in range(len(data.files))]


def _assert_identical_workers(dump_dir, epochs) -> None:
    import numpy as np

    for epoch in epochs:
        chief, other = _dumped_weights(dump_dir, 0, epoch), _dumped_weights(dump_dir, 1, epoch)
        assert len(chief) == len(other) > 0
        for a, b in zip(chief, other):
            np.testing.assert_array_equal(a, b, err_msg=f"epoch {epoch}")


@pytest.mark.slow
def test_two_workers_train_in_lockstep_and_only_the_chief_writes(tmp_path):
    model_dir, dump_dir = tmp_path / "run", tmp_path / "dumps"
    dump_dir.mkdir()
    _wait(_start_workers(model_dir, dump_dir), dump_dir)
    for index in range(2):
        log = (dump_dir / f"worker_{index}.log").read_text()
        assert f"Epoch {EPOCHS}/{EPOCHS}" in log and "DRIVER DONE" in log, _logs(dump_dir)
    _assert_identical_workers(dump_dir, range(1, EPOCHS + 1))
    # Training moved the weights (the comparison above is not between untouched copies).
    import numpy as np
    first, last = _dumped_weights(dump_dir, 0, 1), _dumped_weights(dump_dir, 0, EPOCHS)
    assert any(not np.array_equal(a, b) for a, b in zip(first, last))
    # The chief wrote the run's outputs, once.
    for name in ("config.json", "scaler.json", "real_statistics.json", "history.csv",
                 "generator.weights.h5", "checkpoints/latest.weights.h5"):
        assert (model_dir / name).stat().st_size > 0, name
    with open(model_dir / "history.csv") as f:
        assert len(f.read().strip().splitlines()) == 1 + EPOCHS  # header + one row an epoch
    assert sorted(p.name for p in (model_dir / "samples").iterdir()) == [
        f"epoch_{e:04d}" for e in range(1, EPOCHS + 1)]
    assert list((model_dir / "logs").rglob("events.out.tfevents*"))
    # The non-chief wrote nothing but its own backup folder (kept, to train on later).
    assert set(p.name for p in model_dir.iterdir()) == {
        "config.json", "scaler.json", "real_statistics.json", "progress.json", "history.csv",
        "statistics.csv", "generator.weights.h5", "checkpoints", "samples", "logs", "backup"}
    assert {p.name for p in (model_dir / "backup").iterdir()} == {"worker_0", "worker_1"}
    assert not list((model_dir / "samples" / "epoch_0001").glob("*worker*"))


@pytest.mark.slow
def test_sigkilled_worker_resumes_from_backup_after_restarting_both(tmp_path):
    model_dir, dump_dir = tmp_path / "run", tmp_path / "dumps"
    dump_dir.mkdir()
    # The workers pause in epoch 2, after epoch 1 is backed up: a deterministic kill point.
    processes = _start_workers(model_dir, dump_dir, pause_after_epoch=1)
    try:
        deadline = time.time() + TIMEOUT
        paused = [dump_dir / f"worker_{i}.paused" for i in range(2)]
        while time.time() < deadline and not all(p.exists() for p in paused):
            assert all(p.poll() is None for p in processes), _logs(dump_dir)
            time.sleep(0.2)
        assert all(p.exists() for p in paused), _logs(dump_dir)
        for index in range(2):
            assert (model_dir / "backup" / f"worker_{index}").is_dir()
        os.killpg(processes[1].pid, signal.SIGKILL)  # one worker dies mid-run
        processes[1].wait()
    finally:
        # The survivor can only stall at its next collective: end it too, as a cluster
        # manager would, then restart both.
        _kill(processes)
    assert not (model_dir / "generator.weights.h5").exists()  # the run had not finished
    first_logs = [(dump_dir / f"worker_{i}.log").read_text() for i in range(2)]
    for index in range(2):
        (dump_dir / f"worker_{index}.log").rename(dump_dir / f"worker_{index}.first.log")
    _wait(_start_workers(model_dir, dump_dir), dump_dir)
    for index in range(2):
        log = (dump_dir / f"worker_{index}.log").read_text()
        assert "Epoch 1/" not in log, log[-3000:]  # resumed after epoch 1, not from scratch
        assert f"Epoch 2/{EPOCHS}" in log and "DRIVER DONE" in log, log[-3000:]
        assert "RESUMED AT EPOCH 1" in log, log[-3000:]
        assert "Epoch 1/" in first_logs[index]
    _assert_identical_workers(dump_dir, [2])
    import numpy as np
    for index in range(2):  # each worker restarted from its epoch-1 state, restored
        restored = _dumped_weights(dump_dir, index, 1, "worker_{worker}_start_{epoch}.npz")
        for a, b in zip(restored, _dumped_weights(dump_dir, index, 1)):
            if a.dtype.kind == "f":  # not window_length: the schedule set epoch 2's already
                np.testing.assert_array_equal(a, b)
    assert (model_dir / "generator.weights.h5").stat().st_size > 0
    with open(model_dir / "history.csv") as f:
        epochs = [line.split(",")[0] for line in f.read().strip().splitlines()[1:]]
    assert epochs == ["0", "1"]  # epoch 1 from the first run, epoch 2 from the restart


def _driver(model_dir: str, dump_dir: str, pause_after_epoch: int) -> None:
    """One worker: trains the tiny preset on synthetic songs under multi_worker."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from crnn_gan import callbacks as run_callbacks
    from crnn_gan import config as config_lib
    from crnn_gan import distribute, training
    from tests import midi_fixtures

    _, index = distribute.worker_index()
    dump = pathlib.Path(dump_dir)

    class DumpWeights(run_callbacks.NonFiniteLossGuard):
        """Test-only: every worker saves all model weights after every epoch."""

        def on_train_begin(self, logs=None):
            # BackupAndRestore (later in the list) sets _initial_epoch in its own
            # on_train_begin; report it once training starts.
            self._reported = False

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
            if not self._reported:  # the weights training starts from (restored or not)
                print(f"RESUMED AT EPOCH {epoch}" if epoch else "STARTED AT EPOCH 0",
                      flush=True)
                self._save(f"worker_{index}_start_{epoch}.npz")
                self._reported = True

        def _save(self, name):
            weights = self.model.get_weights()
            np.savez(dump / name, **{f"w{k}": w for k, w in enumerate(weights)})

        def on_epoch_end(self, epoch, logs=None):
            self._save(f"worker_{index}_epoch_{epoch + 1}.npz")

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            if pause_after_epoch and self._epoch == pause_after_epoch and batch == 0:
                (dump / f"worker_{index}.paused").write_text("")
                time.sleep(TIMEOUT)

    run_callbacks.NonFiniteLossGuard = DumpWeights  # train() builds its callbacks from here

    rng = np.random.default_rng(0)  # the same songs on every worker
    songs = [midi_fixtures.random_song(rng, 40) for _ in range(8)]
    config = config_lib.preset("tiny").replace(epochs=EPOCHS, windows_per_song=4)
    spec = training.RunSpec(model_dir=model_dir, strategy="multi_worker", samples_per_epoch=1)
    training.train(config, spec, songs=songs)
    print("DRIVER DONE", flush=True)


if __name__ == "__main__":
    _driver(sys.argv[1], sys.argv[2], int(sys.argv[3]))
