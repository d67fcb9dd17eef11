"""D's pretraining (`Config.discriminator_pretrain_epochs`, `Schedule.discriminator_epochs`):
epochs between G's pretraining and the game in which D alone learns, against songs of the
pretrained G drawn from fresh noise every step."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import gan as gan_lib
from crnn_gan import training
from crnn_gan.schedule import ADVERSARIAL, DISCRIMINATOR, PRETRAIN, Schedule
from tests.test_heads import random_songs

TINY = config_lib.preset("tiny")
# The recipe family of the `small` preset: categorical head, G's gradient by the score
# function, the statistics reward and the supervised term (each skipped while D pretrains).
SCORE_FUNCTION = TINY.replace(representation="log", output_head="categorical",
                              optimizer="adam", learning_rate=1e-2, feature_matching=False,
                              freezing=False, gradient_estimator="score_function",
                              statistics_reward_weight=1.0, supervised_weight=1.0)


def test_the_schedule_puts_d_epochs_between_pretraining_and_the_game():
    schedule = Schedule(2, 8, 3, discriminator_epochs=2)
    assert [(schedule.phase(e), schedule.window_length(e)) for e in range(5)] == [
        (PRETRAIN, 3), (PRETRAIN, 6), (DISCRIMINATOR, 8), (DISCRIMINATOR, 8),
        (ADVERSARIAL, 8)]
    assert schedule.first_adversarial_epoch == 4
    assert Schedule(2, 8, 3).first_adversarial_epoch == 2  # the paper: none
    assert Schedule(0, 8, 3, discriminator_epochs=1).phase(0) == DISCRIMINATOR
    with pytest.raises(ValueError, match="discriminator_epochs"):
        Schedule(1, 8, 3, discriminator_epochs=-1)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_the_config_field_is_checked(value):
    with pytest.raises(ValueError, match="discriminator_pretrain_epochs"):
        TINY.replace(discriminator_pretrain_epochs=value)


def test_the_models_schedule_comes_from_the_config():
    config = TINY.replace(discriminator_pretrain_epochs=3)
    for kind in ("gan", "baseline"):
        assert training.build_model(config, kind).schedule.discriminator_epochs == 3
    assert config_lib.Config.from_json(config.to_json()) == config


def _weights(layer):
    return [np.array(v) for v in layer.weights]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("config", [TINY, SCORE_FUNCTION], ids=["straight_through",
                                                                 "score_function"])
def test_d_epochs_update_d_alone_with_fresh_noise_every_step(config, monkeypatch):
    config = config.replace(pretrain_epochs=1, discriminator_pretrain_epochs=1, epochs=3)
    songs = random_songs(count=8, length=30)
    model = training.build_model(config, "gan", seed=3)
    scaler = training.pipeline.FeatureScaler.fit(songs, config.representation)
    model.generator.set_output_range(songs, scaler)
    training.set_statistics_reward_data(model, config, songs, scaler, seed=3)
    model.run_eagerly = True  # the noise's seeds are read below, step by step
    seeds = []
    uniform_noise = gan_lib.uniform_noise

    def spy_uniform_noise(seed, step, shape):
        seeds.append((seed, int(step)))
        return uniform_noise(seed, step, shape)

    monkeypatch.setattr(gan_lib, "uniform_noise", spy_uniform_noise)
    real = np.stack([scaler.normalize(song[:8]) for song in songs]).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices(real).batch(4)

    model.apply_schedule(1)  # D's pretraining
    assert (model.pretraining, model.generator_trains) == (False, False)
    g_before, d_before = _weights(model.generator), _weights(model.discriminator)
    logs = model.fit(batches, epochs=1, verbose=0).history
    assert not _changed(g_before, _weights(model.generator))
    assert _changed(d_before, _weights(model.discriminator))
    assert int(model.g_optimizer.iterations) == 0 and int(model.d_optimizer.iterations) == 2
    assert logs["g_frozen"] == [1.0] and logs["d_frozen"] == [0.0] and logs["d_loss"][0] > 0
    assert seeds == [(3 + 2, 0), (3 + 2, 1)]  # D's own noise stream, a new draw each step

    seeds.clear()
    model.apply_schedule(2)  # the game: G learns again, from its own noise stream
    assert (model.pretraining, model.generator_trains) == (False, True)
    logs = model.fit(batches, epochs=1, verbose=0).history
    assert _changed(g_before, _weights(model.generator))
    assert int(model.g_optimizer.iterations) == 2 and logs["g_frozen"] == [0.0]
    assert [s for s in seeds if s[0] == 3] == [(3, 0), (3, 1)]


def test_a_run_pretrains_d_and_chooses_among_the_games_epochs_only(tmp_path, capfd):
    """A real tiny run: history.csv shows D learning with G frozen in the D epochs, the
    summary names the phase, and the validation choice never takes a D epoch (whose G is
    the pretrained one)."""
    config = TINY.replace(pretrain_epochs=1, discriminator_pretrain_epochs=2, epochs=5,
                          checkpoint_choice="validation")
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), samples_per_epoch=0)
    training.train(config, spec, songs=random_songs(count=8, length=30),
                   validation_songs=random_songs(count=4, length=30, seed=1))
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["g_frozen"]) for r in rows[1:]] == [1.0, 1.0, 0.0, 0.0]
    assert all(float(r["d_loss"]) > 0 for r in rows[1:])
    choice = json.loads((tmp_path / "run" / "checkpoint_choice.json").read_text())
    assert choice["epoch"] in (4, 5)
    distances = [float(r["validation_distance"]) for r in rows]
    assert choice["validation_distance"] == min(distances[3:])
    out = capfd.readouterr().out
    assert "epoch 2 [discriminator] d_loss=" in out and "epoch 4 [adversarial]" in out
