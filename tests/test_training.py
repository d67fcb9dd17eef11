"""train.py and crnn_gan.training end to end: outputs, resume after SIGKILL, NaN guard."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from crnn_gan import config as config_lib
from crnn_gan import metrics, training
from crnn_gan.callbacks import NonFiniteLossError
from tests import midi_fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = config_lib.preset("tiny")


def _songs(num=12, tones=40, seed=0):
    rng = np.random.default_rng(seed)
    return [midi_fixtures.random_song(rng, tones) for _ in range(num)]


def _epochs(model_dir):
    with open(pathlib.Path(model_dir, "history.csv")) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _epochs_done(model_dir):
    """Committed epochs (progress.json, written once an epoch's outputs and backup are)."""
    try:
        return json.loads(pathlib.Path(model_dir, "progress.json").read_text())["epochs_done"]
    except (OSError, ValueError):
        return 0


def test_a_run_writes_everything_in_model_dir(tmp_path):
    spec = training.RunSpec(model_dir=str(tmp_path), samples_per_epoch=2)
    training.train(TINY.replace(epochs=3), spec, songs=_songs())
    for name in ("config.json", "scaler.json", "real_statistics.json", "history.csv",
                 "statistics.csv", "generator.weights.h5", "checkpoints/latest.weights.h5",
                 "checkpoints/best.weights.h5"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "epoch_0001", "epoch_0002", "epoch_0003"]
    assert len(list((tmp_path / "samples" / "epoch_0003").glob("*.mid"))) == 2
    assert list((tmp_path / "logs").rglob("events.out.tfevents*"))
    with open(tmp_path / "statistics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"polyphony", "scale_consistency", "repetitions", "tone_span", "unique_tones",
            "intensity_span"} <= set(rows[0])
    assert json.loads((tmp_path / "config.json").read_text())["config"]["units"] == TINY.units
    generator, config, scaler = training.load_generator(str(tmp_path))
    assert config == TINY.replace(epochs=3) and scaler.num_features == 4
    # Pretraining epochs then adversarial epochs, in the same run.
    with open(tmp_path / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert float(history[0]["pretrain_loss"]) > 0 and float(history[0]["d_loss"]) == 0
    assert float(history[-1]["d_loss"]) > 0


def test_checkpoint_choice_validation_ends_with_the_adversarial_epoch_closest_to_validation(
        tmp_path):
    """checkpoint_choice="validation": generator.weights.h5 is the generator of the epoch
    after pretraining with the lowest validation_distance (history.csv), and generating
    with it gives that distance again; "last" writes no choice."""
    from crnn_gan import callbacks

    config = TINY.replace(epochs=5, checkpoint_choice="validation",
                          validation_generated_songs=24)
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), samples_per_epoch=0)
    training.train(config, spec, songs=_songs(), validation_songs=_songs(num=4, seed=1))
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    distances = [float(row["validation_distance"]) for row in rows]
    assert len(distances) == 5 and len(set(distances)) == 5
    candidates = distances[config.pretrain_epochs:]  # pretraining's epochs never count
    choice = json.loads((tmp_path / "run" / "checkpoint_choice.json").read_text())
    assert choice["epoch"] == config.pretrain_epochs + 1 + int(np.argmin(candidates))
    assert choice["validation_distance"] == min(candidates)
    # This fixture's run chooses an earlier epoch than the last, so the check below tells
    # the chosen weights from the last epoch's.
    assert choice["epoch"] < config.epochs
    generator, _, scaler = training.load_generator(str(tmp_path / "run"))
    validation, real = ({k: tuple(v) for k, v in json.loads(
        (tmp_path / "run" / name).read_text()).items()}
        for name in ("validation_statistics.json", "real_statistics.json"))
    songs = callbacks.generate_songs(generator, scaler, config.validation_generated_songs,
                                     config.sample_steps, seed=spec.seed)
    means = callbacks.statistics_means(songs)
    # Validation means in the training windows' stds (Config.validation_scale="training").
    again = callbacks.statistics_distance(means, callbacks.validation_reference(validation,
                                                                                real))
    assert again == pytest.approx(choice["validation_distance"], rel=1e-6)
    # history.csv holds the chosen epoch's mean of each statistic as well.
    chosen_row = rows[choice["epoch"] - 1]
    for name in metrics.STATISTICS:
        assert float(chosen_row[f"validation_{name}"]) == pytest.approx(means[name], rel=1e-6)
    assert callbacks.statistics_distance(means, validation) != pytest.approx(again, rel=1e-3)

    # The choice only reads the run: the same run with "last" trains the same weights, and
    # ends with the validation run's last epoch (so an ablation of the choice can be measured
    # from checkpoints/latest.weights.h5 without training again).
    spec_last = training.RunSpec(model_dir=str(tmp_path / "last"), samples_per_epoch=0)
    training.train(config.replace(checkpoint_choice="last"), spec_last, songs=_songs())
    assert not (tmp_path / "last" / "checkpoint_choice.json").exists()
    assert not (tmp_path / "last" / "checkpoints" / "chosen.weights.h5").exists()
    last, _, _ = training.load_generator(str(tmp_path / "last"))
    whole = training.build_model(config, "gan")
    whole.load_weights(str(tmp_path / "run" / "checkpoints" / "latest.weights.h5"))
    for a, b in zip(last.weights, whole.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(last.weights, generator.weights))


def test_validation_reference_takes_the_means_of_validation_and_the_stds_of_a_scale_split():
    """Config.validation_scale: a statistic that the validation windows hardly vary in no
    longer outweighs the others (the default corpus' intensity span: 0.06 ± 0.6 in
    validation, 2.0 ± 11.4 in training)."""
    from crnn_gan import callbacks

    validation = {"polyphony": (0.72, 0.19), "intensity_span": (0.06, 0.6)}
    training_windows = {"polyphony": (0.73, 0.17), "intensity_span": (2.03, 11.4),
                        "tone_span": (31.0, 5.0)}
    reference = callbacks.validation_reference(validation, training_windows)
    assert reference == {"polyphony": (0.72, 0.17), "intensity_span": (0.06, 11.4)}
    assert callbacks.validation_reference(validation, training_windows,
                                          "validation") == validation
    with pytest.raises(ValueError, match="scale must be"):
        callbacks.validation_reference(validation, training_windows, "test")
    # One generated song with a velocity change among 64 (intensity span mean 0.6): in the
    # validation stds it is a full std off and dominates; in the training stds it is not.
    means = {"polyphony": 0.70, "intensity_span": 0.6}
    assert callbacks.statistics_distance(means, validation) > 0.4
    assert callbacks.statistics_distance(means, reference) < 0.1
    with pytest.raises(ValueError, match="validation_scale must be one of"):
        TINY.replace(validation_scale="test")


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = training.RunSpec(model_dir=str(tmp_path), samples_per_epoch=0)
    training.train(TINY.replace(epochs=2), spec, songs=_songs())
    latest = tmp_path / "checkpoints" / "latest.weights.h5"
    good = latest.read_bytes()
    poisoned = _songs() + [np.full((40, 4), np.nan, np.float32)]
    with pytest.raises(NonFiniteLossError, match="became nan"):
        training.train(TINY.replace(epochs=4), spec, songs=poisoned)
    assert latest.read_bytes() == good
    assert _epochs(tmp_path) == [0, 1]


def _train_command(model_dir, manual_dir, data_dir, epochs):
    return [sys.executable, str(ROOT / "train.py"), "--preset=tiny", f"--epochs={epochs}",
            "--dataset=crnn_gan_midi/manual", f"--manual_dir={manual_dir}",
            f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--samples_per_epoch=1",
            "--units=32", "--windows_per_song=40"]


# Runs train.py (its arguments follow) with the run journal recording the training state
# into $STATE_DIR: backed_up_<k>.npz just before the backup of epoch k is saved (what the
# backup holds), restored_<k>.npz once the journal has restored a run to start after epoch k.
_STATE_PROBE = """
import os, runpy, sys
import numpy as np
root = sys.argv[1]
sys.path.insert(0, root)
from crnn_gan import run_dir

def dump(model, name):
    arrays = {f"model/{v.path}": v.numpy() for v in model.weights}
    for player in ("d_optimizer", "g_optimizer"):
        for k, v in enumerate(getattr(model, player).variables):
            arrays[f"{player}/{k}/{v.path}"] = v.numpy()
    arrays["previous_d_loss"] = model.previous_d_loss.numpy()
    path = os.path.join(os.environ["STATE_DIR"], name)
    np.savez(path + ".partial.npz", **arrays)
    os.replace(path + ".partial.npz", path)

commit, begin = run_dir.RunJournal._commit, run_dir.RunJournal.on_train_begin

def _commit(self, epoch, logs=None):
    dump(self.model, f"backed_up_{epoch + 1}.npz")
    commit(self, epoch, logs)

def on_train_begin(self, logs=None):
    begin(self, logs)
    dump(self.model, f"restored_{self.epochs_done}.npz")

run_dir.RunJournal._commit, run_dir.RunJournal.on_train_begin = _commit, on_train_begin
sys.argv = [os.path.join(root, "train.py"), *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_sigkilled_run_resumes_and_finishes_with_the_same_epoch_count(tmp_path):
    manual_dir = tmp_path / "midi"
    midi_fixtures.write_corpus(manual_dir, midi_fixtures.sources_covering_splits((6, 1, 1)))
    model_dir, data_dir, states = tmp_path / "run", tmp_path / "data", tmp_path / "states"
    states.mkdir()
    # train.py, through the state probe; Adam, so that the optimizer has moments to restore.
    command = [sys.executable, "-c", _STATE_PROBE, str(ROOT),
               *_train_command(model_dir, manual_dir, data_dir, epochs=8)[2:],
               "--optimizer=adam", "--learning_rate=0.001"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "STATE_DIR": str(states)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if _epochs_done(model_dir) >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stdout.read().decode()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = _epochs_done(model_dir)
    assert 2 <= done < 8
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The second run started after the last committed epoch (progress.json may lag the
    # backup by the one epoch whose commit the kill interrupted), not from scratch.
    first = int(re.search(r"^Epoch (\d+)/8$", result.stdout, re.MULTILINE).group(1))
    assert first - 1 in (done, done + 1), result.stdout[-3000:]
    assert "Epoch 1/8" not in result.stdout
    # The resumed run starts from exactly the state the killed one backed up after that
    # epoch: weights, both optimizers' state (iterations, Adam's moments) and the previous
    # step's D loss (the freezing rule's input).
    restored = sorted(states.glob("restored_*.npz"))
    assert [p.name for p in restored] == ["restored_0.npz", f"restored_{first - 1}.npz"]
    resumed = np.load(states / f"restored_{first - 1}.npz")
    backed_up = np.load(states / f"backed_up_{first - 1}.npz")
    assert sorted(resumed.files) == sorted(backed_up.files)
    for name in backed_up.files:
        np.testing.assert_array_equal(resumed[name], backed_up[name], err_msg=name)
    fresh = np.load(states / "restored_0.npz")
    moved = [name for name in backed_up.files
             if not np.array_equal(backed_up[name], fresh[name])]
    assert "previous_d_loss" in moved and float(backed_up["previous_d_loss"]) > 0
    for prefix in ("model/crnn_gan/generator/", "model/crnn_gan/discriminator/",
                   "d_optimizer/", "g_optimizer/"):
        assert sum(name.startswith(prefix) for name in moved) >= 3, (prefix, moved)
    # Every epoch once: the killed attempt's rows of an uncommitted epoch were dropped.
    assert _epochs(model_dir) == list(range(8))
    assert (model_dir / "generator.weights.h5").exists()
    assert (model_dir / "samples" / "epoch_0008").is_dir()


def test_train_py_rejects_bad_flags_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--preset=tiny", "--units=0",
         f"--model_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "error: --units must be an integer >= 1" in result.stderr
