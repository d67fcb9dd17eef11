"""`Config.generator_ema_decay`: the moving average of G's weights over the adversarial steps.

Checks the recurrence against values recomputed here from G's weights after each step, the
swap between G's own weights and the average at the epochs' edges, and that a run trained
on from its backup ends with the same average as a run trained straight through.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import gan as gan_lib
from crnn_gan import training
from tests import midi_fixtures

TINY = config_lib.preset("tiny")
DECAY = 0.5  # far from 0 and 1: each step's weights count visibly in the average


def _values(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


def test_each_step_moves_the_average_and_the_epochs_edges_swap_it_with_gs_weights():
    config = TINY.replace(generator_ema_decay=DECAY)
    gan = training.build_model(config, "gan", seed=3)
    gan.window_length.assign(config.seq_len)
    gan.set_pretraining(False)
    weights = gan.generator.trainable_variables
    real = tf.constant(np.random.default_rng(0).normal(
        size=(config.batch_size, config.seq_len, 4)), tf.float32)

    gan.begin_adversarial_epoch()  # the first: the average starts from G's weights
    assert int(gan.generator_average_state.numpy()) == gan_lib.AVERAGE_BESIDE
    expected = _values(weights)
    for a, b in zip(_values(gan.generator_average), expected):
        np.testing.assert_array_equal(a, b)
    for _ in range(3):
        gan.train_step(real)
        expected = [DECAY * e + (1 - DECAY) * w for e, w in zip(expected, _values(weights))]
    own = _values(weights)
    for a, b in zip(_values(gan.generator_average), expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The steps moved G: its own weights are not the average.
    assert max(np.abs(a - b).max() for a, b in zip(own, expected)) > 1e-4

    gan.end_adversarial_epoch()  # G holds the average, its own weights beside it
    assert int(gan.generator_average_state.numpy()) == gan_lib.AVERAGE_IN_GENERATOR
    for a, b in zip(_values(weights), expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(_values(gan.generator_average), own):
        np.testing.assert_array_equal(a, b)
    gan.end_adversarial_epoch()  # twice: nothing moves
    for a, b in zip(_values(weights), expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

    gan.begin_adversarial_epoch()  # G trains on from its own weights, not the average's
    assert int(gan.generator_average_state.numpy()) == gan_lib.AVERAGE_BESIDE
    for a, b in zip(_values(weights), own):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_values(gan.generator_average), expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_gan_without_the_average_has_no_average_weights():
    gan = training.build_model(TINY, "gan", seed=3)
    assert not hasattr(gan, "generator_average")
    names = [w.path for w in gan.weights]
    assert not any("generator_average" in name for name in names)


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_the_decay_is_checked_by_config_and_model(bad):
    with pytest.raises(ValueError, match="generator_ema_decay"):
        config_lib.preset("tiny", generator_ema_decay=bad)
    built = training.build_model(TINY, "gan")
    with pytest.raises(ValueError, match="generator_ema_decay"):
        gan_lib.CRNNGAN(built.generator, built.discriminator, generator_ema_decay=bad)


def _generator_weights(config, path):
    """The trainable weights in a run's generator.weights.h5."""
    generator = training.build_generator(config)
    generator.build()
    generator.load_weights(str(path))
    return _values(generator.trainable_variables)


def _checkpoint(config, path):
    """A fresh GAN of `config` holding a run checkpoint's weights."""
    gan = training.build_model(config, "gan", seed=1)
    gan.load_weights(str(path))
    return gan


@pytest.mark.slow
def test_a_run_ends_with_the_average_and_trains_on_from_its_backup_with_gs_own_weights(
        tmp_path, monkeypatch):
    """1 pretraining epoch and 1 adversarial one (3 steps each), then trained on to 3 from
    the backup, as after a kill: the third epoch starts from G's own weights, not from the
    average that the second epoch ended with, and the run ends as a straight one."""
    rng = np.random.default_rng(0)
    songs = [midi_fixtures.random_song(rng, 40) for _ in range(12)]
    config = TINY.replace(epochs=3, generator_ema_decay=DECAY, checkpoint_choice="last")

    def run(folder, epochs):
        spec = training.RunSpec(model_dir=str(tmp_path / folder), samples_per_epoch=0, seed=1)
        training.train(config.replace(epochs=epochs), spec, songs=songs)
        return _generator_weights(config, tmp_path / folder / "generator.weights.h5")

    straight = run("straight", 3)
    after_two = run("run", 2)
    ended = _checkpoint(config, tmp_path / "run" / "checkpoints" / "latest.weights.h5")
    assert int(ended.generator_average_state.numpy()) == gan_lib.AVERAGE_IN_GENERATOR
    average, own = _values(ended.generator.trainable_variables), _values(ended.generator_average)
    assert max(np.abs(a - b).max() for a, b in zip(own, average)) > 1e-6
    for a, b in zip(after_two, average):  # generator.weights.h5 is the average
        np.testing.assert_array_equal(a, b)

    started = []
    begin = gan_lib.CRNNGAN.begin_adversarial_epoch

    def spy_begin(self):
        begin(self)
        started.append((_values(self.generator.trainable_variables),
                        _values(self.generator_average)))

    monkeypatch.setattr(gan_lib.CRNNGAN, "begin_adversarial_epoch", spy_begin)
    after_three = run("run", 3)
    assert len(started) == 1
    for a, b in zip(started[0][0], own):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(started[0][1], average):
        np.testing.assert_array_equal(a, b)
    ended = _checkpoint(config, tmp_path / "run" / "checkpoints" / "latest.weights.h5")
    assert int(ended.generator_average_state.numpy()) == gan_lib.AVERAGE_IN_GENERATOR
    for a, b in zip(after_three, _values(ended.generator.trainable_variables)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(after_three, straight):
        np.testing.assert_array_equal(a, b)
