"""The run directory's contract (crnn_gan.run_dir): same config continues, a finished run
says so or trains on with more epochs, anything else is refused untouched, and a kill
between writing a file and renaming it into place leaves a run that resumes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from crnn_gan import config as config_lib
from crnn_gan import gfile, run_dir, training
from tests import midi_fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = config_lib.preset("tiny")


def test_make_folder_makes_nested_folders_or_names_the_flag_and_the_problem(tmp_path):
    """The one rule behind --output_dir, --model_dir and export's --output."""
    nested = tmp_path / "a" / "b"
    assert gfile.make_folder(str(nested), "--output_dir") is None
    assert nested.is_dir()
    assert gfile.make_folder(str(nested), "--output_dir") is None  # there already
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert gfile.make_folder(str(a_file), "--output", give="a folder for the export") == (
        f"--output={a_file} is a file: give a folder for the export")
    problem = gfile.make_folder(str(a_file / "songs"), "--model_dir")
    assert problem.startswith(f"--model_dir={a_file}/songs cannot be made: ")
    assert "\n" not in problem and a_file.read_text() == "keep me"


def test_a_model_beyond_memory_is_refused_before_its_folder_is_made(tmp_path):
    """`training.check_model_fits_in_memory`: a lower bound of the LSTMs' weights with their
    gradients and Adam's moments, against the machine's memory (here given)."""
    paper = config_lib.preset("paper")  # 350 units: 2.9 million recurrent weights, 47 MB
    training.check_model_fits_in_memory(paper, "gan", memory_bytes=2**30)
    with pytest.raises(ValueError, match=r"--units=350 with --num_layers=2: .* give a smaller"):
        training.check_model_fits_in_memory(paper, "gan", memory_bytes=2**20)
    # The baseline has no D: a third of the GAN's LSTM directions.
    gan_bytes = 3 * 2 * 4 * 350 * 351 * 16
    training.check_model_fits_in_memory(paper, "baseline", memory_bytes=gan_bytes // 2)
    with pytest.raises(ValueError):
        training.check_model_fits_in_memory(paper, "gan", memory_bytes=gan_bytes // 2)
    huge = TINY.replace(units=200_000)  # about 14,000 GiB: beyond any machine's memory
    spec = training.RunSpec(model_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="--units=200000"):
        training.train(huge, spec, songs=_songs())
    assert not (tmp_path / "run").exists()


def _songs(num=12, tones=40, seed=0):
    rng = np.random.default_rng(seed)
    return [midi_fixtures.random_song(rng, tones) for _ in range(num)]


def _snapshot(folder) -> dict:
    """Every file below `folder`: relative path -> (content hash, modification time)."""
    found = {}
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_file():
            found[str(path.relative_to(folder))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return found


def _column(path, name="epoch"):
    with open(path) as f:
        return [int(float(row[name])) for row in csv.DictReader(f)]


def _progress(model_dir):
    return json.loads((pathlib.Path(model_dir) / "progress.json").read_text())


def _spec(model_dir, **kwargs):
    return training.RunSpec(model_dir=str(model_dir), samples_per_epoch=1, **kwargs)


def test_finished_run_says_so_trains_on_with_more_epochs_and_refuses_other_configs(
        tmp_path, capsys):
    songs = _songs()
    training.train(TINY.replace(epochs=2), _spec(tmp_path), songs=songs)
    assert _progress(tmp_path) == {"epochs_done": 2, "finished": True}
    before = _snapshot(tmp_path)

    # The same command again: finished, nothing written.
    capsys.readouterr()
    history = training.train(TINY.replace(epochs=2), _spec(tmp_path), songs=songs)
    assert history.history == {}
    assert "has finished: 2 epochs trained" in capsys.readouterr().out
    assert _snapshot(tmp_path) == before

    # Another config or model kind: refused, naming each difference; nothing touched.
    with pytest.raises(run_dir.RunDirError) as refused:
        training.train(TINY.replace(epochs=2, units=16, seq_len=4), _spec(tmp_path),
                       songs=songs)
    message = str(refused.value)
    assert "--units: 8 in the run, 16 in this command" in message
    assert "--seq_len: 8 in the run, 4 in this command" in message
    assert "--overwrite" in message and "new --model_dir" in message
    with pytest.raises(run_dir.RunDirError, match="--model: 'gan' in the run, 'baseline'"):
        training.train(TINY.replace(epochs=2), _spec(tmp_path, model="baseline"), songs=songs)
    with pytest.raises(run_dir.RunDirError, match="--seed: 0 in the run, 1 in this"):
        training.train(TINY.replace(epochs=5), _spec(tmp_path, seed=1), songs=songs)
    assert _snapshot(tmp_path) == before

    # More epochs: trains on from epoch 3, as Keras' initial_epoch would.
    capsys.readouterr()
    training.train(TINY.replace(epochs=3), _spec(tmp_path), songs=songs)
    out = capsys.readouterr().out
    assert "Epoch 3/3" in out and "Epoch 1/3" not in out and "Epoch 2/3" not in out
    assert _column(tmp_path / "history.csv") == [0, 1, 2]
    assert _column(tmp_path / "statistics.csv") == [1, 2, 3]
    assert _progress(tmp_path) == {"epochs_done": 3, "finished": True}
    assert json.loads((tmp_path / "config.json").read_text())["config"]["epochs"] == 3
    assert _snapshot(tmp_path)["generator.weights.h5"] != before["generator.weights.h5"]
    _, config, _ = training.load_generator(str(tmp_path))
    assert config == TINY.replace(epochs=3)

    # --overwrite: the other config replaces the run.
    training.train(TINY.replace(epochs=1, units=16), _spec(tmp_path, overwrite=True),
                   songs=songs)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["units"] == 16
    assert _column(tmp_path / "history.csv") == [0]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch_0001"]
    assert _progress(tmp_path) == {"epochs_done": 1, "finished": True}


def test_a_run_trained_on_from_its_backup_ends_with_an_uninterrupted_runs_weights(tmp_path):
    """A GAN run of 2 epochs, then trained on to 3 from the backup (a fresh model and window
    stream, as after a kill): every weight of the model (G, D and its own state) equals a
    straight 3-epoch run's to the last bit (training.KERAS_ITERATORS_PER_EPOCH). The
    baseline reads the same window stream. The game plays on longer windows than
    pretraining (`Config.adversarial_seq_len` 12, seq_len 8): the one window stream then
    holds 12-step windows that pretraining reads the first 8 steps of; without it the same
    code draws 8-step windows."""
    songs = _songs()
    # 1 pretraining epoch, 2 adversarial ones.
    config = TINY.replace(epochs=3, adversarial_seq_len=12)

    def run(folder, epochs):
        training.train(config.replace(epochs=epochs), _spec(tmp_path / folder), songs=songs)
        built = training.build_model(config, "gan")
        built.load_weights(str(tmp_path / folder / "checkpoints" / "latest.weights.h5"))
        return [np.asarray(w) for w in built.weights]

    straight = run("straight", 3)
    after_two = run("resumed", 2)
    resumed = run("resumed", 3)
    assert len(straight) == len(resumed)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    # The epoch after the backup moved the weights.
    assert any(not np.array_equal(a, b) for a, b in zip(after_two, resumed))


def test_folders_that_hold_no_usable_run_are_refused_untouched(tmp_path):
    songs = _songs(num=2)
    config = TINY.replace(epochs=1)
    # A folder of something else (an export, notes, ...): refused even with --overwrite.
    other = tmp_path / "other"
    (other / "saved_model").mkdir(parents=True)
    (other / "README.md").write_text("an export")
    for overwrite in (False, True):
        with pytest.raises(run_dir.RunDirError,
                           match=r"holds files that are not a train.py run's \(README.md, "
                                 r"saved_model\): give a new or empty folder"):
            training.train(config, _spec(other, overwrite=overwrite), songs=songs)
    assert sorted(p.name for p in other.iterdir()) == ["README.md", "saved_model"]
    # A file.
    with pytest.raises(run_dir.RunDirError, match="is a file, not a folder"):
        training.train(config, _spec(other / "README.md"), songs=songs)
    # A run whose config.json is not JSON, or is not a config.
    for name, text, expected in (
            ("broken", "{not json", "config.json is not valid JSON"),
            ("not_config", '{"units": 8}', 'config.json is not a train.py config'),
            ("bad_value", '{"config": {"units": 0}}', "Config.units must be an integer")):
        folder = tmp_path / name
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "config.json").write_text(text)
        (folder / "checkpoints" / "latest.weights.h5").write_bytes(b"weights")
        before = _snapshot(folder)
        with pytest.raises(run_dir.RunDirError, match=expected) as refused:
            training.train(config, _spec(folder), songs=songs)
        assert "--overwrite" in str(refused.value)
        assert _snapshot(folder) == before
    # An empty folder, or one holding only empty run folders and partial files: new run.
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    (empty / "config.json.partial").write_text("{")
    state = run_dir.open_run(str(empty), {"config": {}}, backup_dir=str(empty / "backup"))
    assert state.status == "new"


def _kill_between_write_and_rename(model_dir, name, epochs):
    """Trains the tiny preset in a subprocess that SIGKILLs itself before renaming `name`."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.test_run_dir import _songs, _spec, TINY
from crnn_gan import training
training.train(TINY.replace(epochs={epochs}), _spec({str(model_dir)!r}), songs=_songs())
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", run_dir.KILL_BEFORE_RENAME_ENV: name}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -9, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_sigkill_between_checkpoint_write_and_rename_keeps_the_old_one_and_resumes(tmp_path):
    # Killed in epoch 2, after writing the new latest checkpoint, before renaming it.
    _kill_between_write_and_rename(tmp_path, "latest.weights.h5:2", epochs=3)
    checkpoints = tmp_path / "checkpoints"
    partial = checkpoints / "latest.partial.weights.h5"
    assert partial.exists() and (checkpoints / "latest.weights.h5").exists()
    # The old checkpoint (epoch 1) is whole: it loads, and it is not the new one.
    model = training.build_model(TINY.replace(epochs=3), "gan")
    model.load_weights(str(checkpoints / "latest.weights.h5"))
    old = [w.copy() for w in model.get_weights()]
    model.load_weights(str(partial))
    assert any(not np.array_equal(a, b) for a, b in zip(old, model.get_weights()))
    # Epoch 2 was not committed; its statistics row (written before the kill) is dropped
    # once the run resumes.
    assert _progress(tmp_path) == {"epochs_done": 1, "finished": False}
    assert _column(tmp_path / "history.csv") == [0]
    assert _column(tmp_path / "statistics.csv") == [1, 2]
    before = _snapshot(tmp_path)

    # An unfinished run refuses another config or model kind, untouched.
    songs = _songs()
    with pytest.raises(run_dir.RunDirError, match="--units: 8 in the run, 16 in this"):
        training.train(TINY.replace(epochs=3, units=16), _spec(tmp_path), songs=songs)
    with pytest.raises(run_dir.RunDirError, match="--model: 'gan' in the run, 'baseline'"):
        training.train(TINY.replace(epochs=3), _spec(tmp_path, model="baseline"), songs=songs)
    assert _snapshot(tmp_path) == before

    # The same config resumes after epoch 1 and finishes; no partial file is left.
    history = training.train(TINY.replace(epochs=3), _spec(tmp_path), songs=songs)
    assert history.epoch == [1, 2]
    assert _column(tmp_path / "history.csv") == [0, 1, 2]
    assert _column(tmp_path / "statistics.csv") == [1, 2, 3]
    assert _progress(tmp_path) == {"epochs_done": 3, "finished": True}
    assert not list(tmp_path.rglob(f"*{run_dir.PARTIAL}*"))



def test_monitored_checkpoint_resumes_its_best_from_history_counting_only_from_from_epoch(
        tmp_path):
    """AtomicCheckpoint(monitor, history, from_epoch): a resumed run's best is the lowest
    committed value at or after from_epoch; earlier epochs are neither saved nor counted."""
    import keras

    history = tmp_path / "history.csv"
    history.write_text("epoch,score\n0,0.1\n1,0.5\n2,0.3\n3,0.4\n")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "chosen.weights.h5"
    checkpoint = run_dir.AtomicCheckpoint(str(path), monitor="score", history=str(history),
                                          from_epoch=1)
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    assert (checkpoint.best, checkpoint.best_epoch) == (0.3, 2)
    checkpoint.on_epoch_end(4, {"score": 0.35})
    assert not path.exists() and checkpoint.best_epoch == 2
    checkpoint.on_epoch_end(5, {"score": 0.2})
    assert path.exists() and (checkpoint.best, checkpoint.best_epoch) == (0.2, 5)
    path.unlink()
    checkpoint.from_epoch = 7
    checkpoint.on_epoch_end(6, {"score": 0.0})
    assert not path.exists()
