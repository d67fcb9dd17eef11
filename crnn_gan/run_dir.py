"""A run directory as a contract: what a command may do with an existing run, and writes
that a kill at any moment cannot break.

`crnn_gan.training.train` calls `open_run` before it writes anything in ``model_dir``:

* No run there (no folder, or an empty one): a new run.
* A run of the same config (model kind, dataset, seed, strategy and every `Config` field but
  ``epochs``): it continues. Unfinished (killed, crashed): from its last finished epoch.
  Finished: nothing to do while ``epochs`` is not above the epochs it trained; with more
  epochs it trains on from where it ended, as Keras' ``initial_epoch`` would.
* Anything else (another config or model kind, a ``config.json`` that is not one, a folder
  of other files): refused with `RunDirError`, which names each difference and the way out
  (a new ``--model_dir``, or ``--overwrite``); nothing in the folder is touched.

With ``overwrite=True`` a run of another config is deleted (its own files and folders only,
never anything else) and a new one starts.

Every file the run writes whole (``config.json``, ``scaler.json``, ``real_statistics.json``,
``progress.json``, the checkpoints and ``generator.weights.h5``) is written to a ``.partial``
name first and then renamed over the old one, so a kill leaves either the old file or the new
one (rename is atomic on local file systems; object stores copy, then delete). An epoch is
committed by its ``backup/`` state (Keras' BackupAndRestore), saved after every other output
of the epoch (`RunJournal`): a resumed run first drops the rows that a killed attempt wrote
for epochs after the last committed one from ``history.csv`` and ``statistics.csv``, so
neither file has holes or repeated epochs.

``progress.json``: ``{"epochs_done": k, "finished": bool}``, rewritten after every committed
epoch and when the final weights are written.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import os
import signal

import keras
import tensorflow as tf

from crnn_gan import gfile
from crnn_gan.config import Config

RUN_FILES = ("config.json", "scaler.json", "real_statistics.json", "progress.json",
             "history.csv", "statistics.csv", "generator.weights.h5")
RUN_FOLDERS = ("checkpoints", "backup", "logs", "samples")
PARTIAL = ".partial"
# Record fields besides the Config that must match for a run to continue.
RECORD_FIELDS = ("model", "dataset", "seed", "strategy")
# The one Config field that may change: the run trains on (or stops) at the new count.
FREE_FIELDS = ("epochs",)
# Test hook: "NAME[:K]" sends SIGKILL to this process between writing the K-th (default 1st)
# new version of the file NAME (e.g. latest.weights.h5) and renaming it into place.
KILL_BEFORE_RENAME_ENV = "CRNN_GAN_TEST_KILL_BEFORE_RENAME"
_writes_before_rename: collections.Counter = collections.Counter()


class RunDirError(ValueError):
    """A run directory that this command may not use; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class RunState:
    """What `open_run` found in a run directory.

    Attributes:
        status: "new" (nothing there), "overwrite" (a run to delete first, then new),
            "resume" (the same config, unfinished or to be trained on) or "finished" (the same
            config, nothing to do).
        epochs_done: epochs the run has committed (0 for a new run).
        message: one line for the user.
    """

    status: str
    epochs_done: int = 0
    message: str = ""


# --------------------------------------------------------------------------------------
# Atomic writes.
# --------------------------------------------------------------------------------------


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _rename_into_place(partial: str, path: str) -> None:
    spec = os.environ.get(KILL_BEFORE_RENAME_ENV)
    if spec:
        name, _, nth = spec.partition(":")
        if _basename(path) == name:
            _writes_before_rename[name] += 1
            if _writes_before_rename[name] == int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)
    tf.io.gfile.rename(partial, path, overwrite=True)


def write_text_atomic(path: str, text: str) -> None:
    """Writes `text` to any `tf.io.gfile` path through `path.partial` and a rename."""
    partial = path + PARTIAL
    gfile.write_text(partial, text)
    _rename_into_place(partial, path)


def partial_weights_path(path: str) -> str:
    """``dir/name.weights.h5`` -> ``dir/name.partial.weights.h5`` (Keras wants the suffix)."""
    suffix = ".weights.h5"
    if not path.endswith(suffix):
        raise ValueError(f"a weights file must end in {suffix}: {path}")
    return path[:-len(suffix)] + PARTIAL + suffix


def save_weights_atomic(model: keras.Model, path: str) -> None:
    """`model.save_weights(path)` through ``name.partial.weights.h5`` and a rename."""
    partial = partial_weights_path(path)
    model.save_weights(partial)
    _rename_into_place(partial, path)


def save_atomic(save, path: str) -> None:
    """Calls ``save(partial_path)`` (any writer of one file), then renames it to `path`."""
    partial = path + PARTIAL
    save(partial)
    _rename_into_place(partial, path)


# --------------------------------------------------------------------------------------
# Reading a run.
# --------------------------------------------------------------------------------------


def read_record(model_dir: str) -> dict:
    """The parsed, checked ``config.json`` of a run: ``{"config": {...}, "model": ...}``.

    Raises:
        RunDirError: the file is missing, not JSON, or holds no valid ``config``.
    """
    path = f"{model_dir}/config.json"
    if not tf.io.gfile.exists(path):
        raise RunDirError(f"{model_dir} is not a train.py run: {path} is missing")
    text = gfile.read_text(path)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunDirError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RunDirError(f"{path} is not a train.py config: it has no \"config\" object")
    try:
        Config(**record["config"])
    except (TypeError, ValueError) as error:
        raise RunDirError(f"{path} holds no valid config: {error}") from None
    return record


def read_progress(model_dir: str) -> dict | None:
    """``progress.json`` of a run (``epochs_done``, ``finished``), or None if there is none."""
    path = f"{model_dir}/progress.json"
    if not tf.io.gfile.exists(path):
        return None
    text = gfile.read_text(path)
    try:
        progress = json.loads(text)
        return {"epochs_done": int(progress["epochs_done"]),
                "finished": bool(progress["finished"])}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RunDirError(f"{path} is damaged ({error}): run it again with --overwrite to "
                          "start it afresh, or give a new --model_dir") from None


def differences(stored: dict, wanted: dict) -> list[str]:
    """``"--units: 8 in the run, 16 in this command"`` for every field that must match.

    Config fields missing from an older run's record count as the `Config` default (the
    value that run was trained with); ``epochs`` may differ.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    found = []
    old, new = stored.get("config", {}), wanted["config"]
    for name in sorted(set(old) | set(new)):
        if name in FREE_FIELDS:
            continue
        a, b = old.get(name, defaults.get(name)), new.get(name, defaults.get(name))
        if a != b:
            found.append(f"--{name}: {a!r} in the run, {b!r} in this command")
    for name in RECORD_FIELDS:
        if stored.get(name) != wanted.get(name):
            found.append(f"--{name}: {stored.get(name)!r} in the run, {wanted.get(name)!r} in "
                         "this command")
    return found


def _entries(folder: str) -> list[str]:
    return [name.rstrip("/") for name in tf.io.gfile.listdir(folder)]


def _is_run_entry(name: str) -> bool:
    return (name in RUN_FILES or name in RUN_FOLDERS or PARTIAL in name
            or name.startswith("."))


def _holds_files(path: str) -> bool:
    """Whether `path` is a file, or a folder with a file somewhere below it."""
    if not tf.io.gfile.isdir(path):
        return tf.io.gfile.exists(path)
    return any(files for _, _, files in tf.io.gfile.walk(path))


def open_run(model_dir: str, record: dict, *, backup_dir: str, overwrite: bool = False,
             is_chief: bool = True) -> RunState:
    """Decides what a command may do with `model_dir`; reads only, writes nothing.

    Args:
        model_dir: the run folder (any tf.io.gfile path).
        record: what this command would write as ``config.json``: ``{"config": Config as a
            dict, "model", "dataset", "seed", "strategy"}``.
        backup_dir: this worker's BackupAndRestore folder (under ``model_dir``).
        overwrite: a run of another config may be deleted (status "overwrite").
        is_chief: False on the other workers of a multi-worker run (they only resume).

    Returns:
        The `RunState`.

    Raises:
        RunDirError: the folder may not be used (see the module docstring).
    """
    flag = f"--model_dir={model_dir}"
    way_out = ("give a new --model_dir, or pass --overwrite to delete that run and start "
               "this one there")
    if not tf.io.gfile.exists(model_dir):
        return RunState("new", message=f"New run in {model_dir}")
    if not tf.io.gfile.isdir(model_dir):
        raise RunDirError(f"{flag} is a file, not a folder: give a folder for the run")
    entries = _entries(model_dir)
    foreign = sorted(name for name in entries if not _is_run_entry(name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise RunDirError(f"{flag} holds files that are not a train.py run's ({shown}): give "
                          "a new or empty folder for the run")
    outputs = [name for name in entries if name in RUN_FILES or name in RUN_FOLDERS]
    if not any(_holds_files(f"{model_dir}/{name}") for name in outputs):
        return RunState("new", message=f"New run in {model_dir}")
    if overwrite:
        return RunState("overwrite", message=f"--overwrite: deleting the run in {model_dir} "
                                             "and starting a new one")
    if "config.json" not in entries:
        raise RunDirError(f"{flag} holds a run's files but no config.json, so which config "
                          f"wrote them is unknown: {way_out}")
    try:
        stored = read_record(model_dir)
    except RunDirError as error:
        raise RunDirError(f"{error}: {way_out}") from None
    found = differences(stored, record)
    if found:
        raise RunDirError(
            f"{flag} holds a run of another config, left untouched: {'; '.join(found)}. "
            f"Continue it with its own flags, or {way_out}")
    epochs = record["config"]["epochs"]
    progress = read_progress(model_dir)
    has_backup = _holds_files(backup_dir)
    if progress is None and tf.io.gfile.exists(f"{model_dir}/generator.weights.h5") \
            and not has_backup:
        # Finished before progress.json existed (its backup was deleted at the end).
        progress = {"epochs_done": int(stored["config"]["epochs"]), "finished": True}
    done = progress["epochs_done"] if progress else 0
    if progress and progress["finished"]:
        if epochs <= done:
            return RunState("finished", done, (
                f"{model_dir} has finished: {_count(done)} trained, --epochs={epochs}. "
                f"Nothing to do; raise --epochs above {done} to train it on"))
        if not has_backup:
            raise RunDirError(
                f"{flag} finished after {_count(done)} and cannot be trained on to {epochs}: "
                f"its training state ({backup_dir}) is gone (runs of older versions deleted "
                f"it). Keep --epochs={done} or lower, or {way_out}")
        return RunState("resume", done, f"Training {model_dir} on from epoch {done} to "
                                         f"{epochs}")
    if not has_backup:
        return RunState("resume", 0, f"Starting {model_dir} again from epoch 1 (no epoch of "
                                     "it had finished)")
    return RunState("resume", done, f"Resuming {model_dir} after epoch {done} of {epochs}")


def _count(epochs: int) -> str:
    return f"{epochs} epoch" + ("" if epochs == 1 else "s")


def clear(model_dir: str, backup_dir: str, is_chief: bool = True) -> None:
    """Deletes a run's own files and folders (`RUN_FILES`, `RUN_FOLDERS`, partial files).

    Every worker deletes its own `backup_dir`; the chief deletes the rest (under a
    multi-worker strategy, not the other workers' backups).
    """
    _remove(backup_dir)
    if not is_chief or not tf.io.gfile.isdir(model_dir):
        return
    shared_backup = backup_dir.rstrip("/") == f"{model_dir}/backup"
    for name in _entries(model_dir):
        if name == "backup" and not shared_backup:
            continue
        if name in RUN_FILES or name in RUN_FOLDERS or PARTIAL in name:
            _remove(f"{model_dir}/{name}")


def _remove(path: str) -> None:
    try:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except tf.errors.NotFoundError:  # removed meanwhile (by another worker)
        pass


# --------------------------------------------------------------------------------------
# Callbacks.
# --------------------------------------------------------------------------------------


def keep_epochs(path: str, keep) -> None:
    """Drops the rows of a CSV log whose ``epoch`` column fails ``keep(int(epoch))``.

    Unreadable rows (a line cut by a kill) are dropped too; the file is rewritten
    atomically, and only when something changes.
    """
    if not tf.io.gfile.exists(path):
        return
    lines = gfile.read_text(path).splitlines(keepends=True)
    if not lines:
        return
    header = next(csv.reader([lines[0]]))
    if "epoch" not in header:
        return
    column = header.index("epoch")
    kept = [lines[0]]
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        try:
            ok = len(fields) == len(header) and line.endswith("\n") and keep(
                int(float(fields[column])))
        except ValueError:
            ok = False
        if ok:
            kept.append(line)
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(kept))


class RunJournal(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore whose backup commits whole epochs, and ``progress.json``.

    At the start it restores the last backup like BackupAndRestore, then drops the rows of
    later epochs (written by an attempt killed before their backup) from ``history.csv``
    (epochs from 0) and ``statistics.csv`` (epochs from 1). With ``commit_last`` its
    epoch-end backup is deferred to `commit_callback()`, which goes last in the callback
    list, so that epoch k is backed up only once all its outputs are written. The backup is
    kept at the end (a finished run can be trained on with more epochs).

    Multi-worker runs keep the backup at this callback's own place in the list (every worker
    backs up right after the epoch's last step, as close together as possible).
    """

    def __init__(self, model_dir: str, backup_dir: str, *, is_chief: bool = True,
                 commit_last: bool = True):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=False)
        self.model_dir = model_dir
        self.is_chief = is_chief
        self.commit_last = commit_last
        self.epochs_done = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # BackupAndRestore tells `fit` where to start through the model's _initial_epoch.
        done = self.epochs_done = int(getattr(self.model, "_initial_epoch", None) or 0)
        if self.is_chief:
            keep_epochs(f"{self.model_dir}/history.csv", lambda epoch: epoch < done)
            keep_epochs(f"{self.model_dir}/statistics.csv", lambda epoch: epoch <= done)
            self.write_progress(finished=False)

    def on_epoch_end(self, epoch, logs=None):
        if not self.commit_last:
            self._commit(epoch, logs)

    def _commit(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # saves the backup
        self.epochs_done = epoch + 1
        if self.is_chief:
            self.write_progress(finished=False)

    def commit_callback(self) -> keras.callbacks.Callback:
        """The callback that saves each epoch's backup: put it last in the list."""
        journal = self

        class Commit(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if journal.commit_last:
                    journal._commit(epoch, logs)

        return Commit()

    def write_progress(self, finished: bool) -> None:
        write_text_atomic(f"{self.model_dir}/progress.json", json.dumps(
            {"epochs_done": self.epochs_done, "finished": bool(finished)}))

    def finish(self) -> None:
        """Marks the run finished: call once its final weights are written (chief only)."""
        self.write_progress(finished=True)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model's weights after every epoch, through a partial file and a rename.

    With `monitor`, only when ``logs[monitor]`` is below the best so far, which starts as
    the lowest value in the committed rows of `history` (a CSV log), so a resumed run keeps
    its best checkpoint unless an epoch beats it; `best_epoch` is that epoch (0-based, None
    before any). With `from_epoch`, epochs before it (0-based) are neither saved nor
    counted.
    """

    def __init__(self, path: str, monitor: str | None = None, history: str | None = None,
                 from_epoch: int = 0):
        super().__init__()
        partial_weights_path(path)  # checks the name
        self.path = path
        self.monitor = monitor
        self.history = history
        self.from_epoch = from_epoch
        self.best = float("inf")
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch = float("inf"), None
        if self.monitor and self.history and tf.io.gfile.exists(self.history):
            for row in csv.DictReader(io.StringIO(gfile.read_text(self.history))):
                try:
                    epoch, value = int(row["epoch"]), float(row[self.monitor])
                except (KeyError, TypeError, ValueError):
                    continue
                if epoch >= self.from_epoch and value < self.best:
                    self.best, self.best_epoch = value, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.from_epoch:
            return
        if self.monitor:
            value = (logs or {}).get(self.monitor)
            if value is None or not float(value) < self.best:
                return
            self.best = float(value)
        self.best_epoch = epoch
        save_weights_atomic(self.model, self.path)
