"""Pins of the training behaviour that later changes could move (project issue 12).

Each test recomputes what `CRNNGAN.train_step` and a run do from first principles (the
paper's formulas, `tf.GradientTape`, literal expected values) instead of calling the code it
checks, and makes sure that the effect it pins is far larger than its tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import distribute, training
from crnn_gan import gan as gan_lib
from crnn_gan.discriminator import Discriminator
from tests import midi_fixtures

TINY = config_lib.preset("tiny")
SEED = 5
EPSILON = 1e-7  # inside every log of the losses


def _gan(**overrides):
    config = TINY.replace(**overrides)
    gan = training.build_model(config, "gan", seed=SEED)
    gan.window_length.assign(config.seq_len)
    return config, gan


def _real(config, seed=2):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(size=(config.batch_size, config.seq_len, 4)), tf.float32)


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _step_noise(gan, real):
    """The noise of the next adversarial step, drawn here without `distribute.uniform_noise`:
    stateless uniform [0, 1) seeded by (the run's seed, G's optimizer step)."""
    step = int(gan.g_optimizer.iterations.numpy())
    shape = [real.shape[0], real.shape[1], gan.generator.noise_dim]
    return tf.random.stateless_uniform(shape, seed=tf.constant([SEED, step], tf.int64))


def _instance_noise(gan, shape, offset):
    """Standard normal noise seeded by (the run's seed + offset, D's optimizer step)."""
    step = int(gan.d_optimizer.iterations.numpy())
    return tf.random.stateless_normal(shape, seed=tf.constant([SEED + offset, step], tf.int64))


def _reference(gan, real, label_smoothing, feature_matching, l2_scale=0.0,
               instance_noise_std=0.0):
    """The step's losses (the paper's formulas) and each player's gradient of its loss
    plus ``l2_scale / 2 * sum(w ** 2)`` over its trainable weights; with instance noise, D
    sees real + std * N(0, 1) (seed + 3) and fake + std * N(0, 1) (seed + 4)."""
    generator, discriminator = gan.generator, gan.discriminator
    noise = _step_noise(gan, real)
    if instance_noise_std:
        real = real + instance_noise_std * _instance_noise(gan, real.shape, 3)
    with tf.GradientTape(persistent=True) as tape:
        fake = generator(noise, training=True)
        if instance_noise_std:
            fake = fake + instance_noise_std * _instance_noise(gan, fake.shape, 4)
        p_real, p_fake = discriminator(real), discriminator(fake)
        target = 1.0 - label_smoothing
        d_loss = -tf.reduce_mean(target * tf.math.log(p_real + EPSILON)
                                 + (1.0 - target) * tf.math.log(1.0 - p_real + EPSILON)
                                 + tf.math.log(1.0 - p_fake + EPSILON))
        g_adv_loss = -tf.reduce_mean(tf.math.log(p_fake + EPSILON))
        # D's last hidden layer, averaged over batch and time; no gradient into the real side.
        real_mean = tf.reduce_mean(tf.stop_gradient(discriminator.features(real)), [0, 1])
        fake_mean = tf.reduce_mean(discriminator.features(fake), [0, 1])
        matching = tf.reduce_sum(tf.square(real_mean - fake_mean))
        g_loss = matching if feature_matching else g_adv_loss

        def l2(variables):
            return l2_scale / 2.0 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])

        d_total = d_loss + l2(discriminator.trainable_variables)
        g_total = g_loss + l2(generator.trainable_variables)
    d_grads = tape.gradient(d_total, discriminator.trainable_variables)
    g_grads = tape.gradient(g_total, generator.trainable_variables)
    losses = {"d_loss": float(d_loss), "g_adv_loss": float(g_adv_loss),
              "feature_matching": float(matching), "g_loss": float(g_loss)}
    return losses, [g.numpy() for g in d_grads], [g.numpy() for g in g_grads]


def _sgd_update(grads, learning_rate, clip_norm):
    """-learning_rate * grads, clipped to `clip_norm` by their global norm (0 = no clip)."""
    norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))
    scale = min(1.0, clip_norm / norm) if clip_norm else 1.0
    return [-learning_rate * scale * g for g in grads], norm


def _max_abs(arrays):
    return max(float(np.abs(a).max()) for a in arrays)


def _max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


# --------------------------------------------------------------------------------------
# The losses of a train_step.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("feature_matching", [True, False])
def test_g_loss_is_the_feature_matching_distance_of_the_steps_d_features(feature_matching):
    config, gan = _gan(feature_matching=feature_matching, freezing=False)
    real = _real(config)
    expected, _, _ = _reference(gan, real, 0.0, feature_matching)
    logs = {k: float(v) for k, v in gan.train_step(real).items()}
    assert logs["d_loss"] == pytest.approx(expected["d_loss"], rel=1e-5)
    assert logs["g_adv_loss"] == pytest.approx(expected["g_adv_loss"], rel=1e-5)
    # The two candidate G losses differ by far more than the tolerance, so the check
    # tells them apart.
    assert abs(expected["feature_matching"] - expected["g_adv_loss"]) > 0.1
    assert expected["feature_matching"] > 1e-6
    if feature_matching:
        assert logs["g_loss"] == pytest.approx(expected["feature_matching"], rel=1e-4)
    else:
        assert logs["g_loss"] == pytest.approx(expected["g_adv_loss"], rel=1e-5)


@pytest.mark.parametrize("feature_matching", [True, False])
def test_instance_noise_is_what_d_sees_of_both_sides(feature_matching):
    """With `instance_noise_std`, both players' losses and updates are those of D on the
    noisy real and generated windows; the noise moves the updates by far more than the
    tolerance."""
    std = 2.0
    config, gan = _gan(feature_matching=feature_matching, freezing=False, l2_scale=0.0,
                       clip_norm=0.0, instance_noise_std=std)
    real = _real(config)
    d_vars, g_vars = gan.discriminator.trainable_variables, gan.generator.trainable_variables
    d_before, g_before = _values(d_vars), _values(g_vars)
    d_lr = config.learning_rate * config.d_learning_rate_scale
    expected, d_grads, g_grads = _reference(gan, real, 0.0, feature_matching,
                                            instance_noise_std=std)
    _, d_clean, g_clean = _reference(gan, real, 0.0, feature_matching)
    logs = {k: float(v) for k, v in gan.train_step(real).items()}
    for name in ("d_loss", "g_loss" if feature_matching else "g_adv_loss"):
        assert logs[name] == pytest.approx(expected[name], rel=1e-4)
    for variables, before, grads, clean, lr in (
            (d_vars, d_before, d_grads, d_clean, d_lr),
            (g_vars, g_before, g_grads, g_clean, config.learning_rate)):
        update = [v.numpy() - b for v, b in zip(variables, before)]
        expected_update, _ = _sgd_update(grads, lr, 0.0)
        tolerance = 1e-3 * _max_abs(expected_update)
        assert _max_diff(update, expected_update) < tolerance
        assert _max_diff(_sgd_update(clean, lr, 0.0)[0], expected_update) > 20 * tolerance


@pytest.mark.parametrize("feature_matching, clip_norm", [
    (True, 0.0),     # no clipping: the raw gradients, scaled by the learning rates
    (False, 0.0),
    (True, 0.02),    # both players' gradients far above the bound: clipped
])
def test_one_step_updates_are_sgd_on_the_losses_with_l2_and_global_norm_clipping(
        feature_matching, clip_norm):
    l2_scale, label_smoothing = 0.02, 0.2
    config, gan = _gan(feature_matching=feature_matching, freezing=False, clip_norm=clip_norm,
                       l2_scale=l2_scale, label_smoothing=label_smoothing)
    assert config.optimizer == "sgd"
    real = _real(config)
    d_vars, g_vars = gan.discriminator.trainable_variables, gan.generator.trainable_variables
    d_before, g_before = _values(d_vars), _values(g_vars)
    d_lr = config.learning_rate * config.d_learning_rate_scale
    g_lr = config.learning_rate

    def expected_updates(smoothing, l2):
        _, d_grads, g_grads = _reference(gan, real, smoothing, feature_matching, l2)
        d_update, d_norm = _sgd_update(d_grads, d_lr, clip_norm)
        g_update, g_norm = _sgd_update(g_grads, g_lr, clip_norm)
        return d_update, g_update, d_norm, g_norm

    d_expected, g_expected, d_norm, g_norm = expected_updates(label_smoothing, l2_scale)
    d_without_l2, g_without_l2, _, _ = expected_updates(label_smoothing, 0.0)
    d_unsmoothed, _, _, _ = expected_updates(0.0, l2_scale)
    gan.train_step(real)
    d_update = [v.numpy() - b for v, b in zip(d_vars, d_before)]
    g_update = [v.numpy() - b for v, b in zip(g_vars, g_before)]

    d_tolerance, g_tolerance = 1e-3 * _max_abs(d_expected), 1e-3 * _max_abs(g_expected)
    assert _max_diff(d_update, d_expected) < d_tolerance
    assert _max_diff(g_update, g_expected) < g_tolerance
    # Each ingredient moves the update by far more than the tolerance, so leaving out L2
    # or the label smoothing, or flipping a sign, fails the comparison above.
    assert _max_diff(d_without_l2, d_expected) > 20 * d_tolerance
    assert _max_diff(g_without_l2, g_expected) > 20 * g_tolerance
    assert _max_diff(d_unsmoothed, d_expected) > 20 * d_tolerance
    if clip_norm:
        assert d_norm > 3 * clip_norm and g_norm > 3 * clip_norm
        # The global norm of each update is the bound times the learning rate.
        for update, lr in ((d_update, d_lr), (g_update, g_lr)):
            norm = np.sqrt(sum(np.sum(np.square(u, dtype=np.float64)) for u in update))
            assert norm == pytest.approx(lr * clip_norm, rel=1e-3)


# --------------------------------------------------------------------------------------
# Freezing with a threshold of the config's.
# --------------------------------------------------------------------------------------


def test_a_non_default_freeze_threshold_moves_the_decisions_to_exactly_that_ratio():
    """D is frozen iff previous d_loss / 2 < threshold * previous g_adv_loss; G iff
    previous g_adv_loss < threshold * previous d_loss / 2; just either side of 0.4."""
    _, gan = _gan(freeze_threshold=0.4)
    assert gan.freeze_threshold == 0.4

    def decisions(previous_d, previous_g):
        gan.previous_d_loss.assign(previous_d)
        gan.previous_g_adv_loss.assign(previous_g)
        return tuple(float(x) for x in gan.freeze_decisions())

    # (previous d_loss, previous g_adv_loss) -> (d_frozen, g_frozen); the pairs marked
    # "0.7" decide the other way at the paper's threshold.
    expected = {
        (0.78, 1.0): (1.0, 0.0),   # 0.39 < 0.4 * 1.0: D frozen
        (0.82, 1.0): (0.0, 0.0),   # 0.41: D updates (0.7: frozen)
        (1.38, 1.0): (0.0, 0.0),   # 0.69: D updates (0.7: frozen)
        (2.0, 0.39): (0.0, 1.0),   # 0.39 < 0.4 * 1.0: G frozen
        (2.0, 0.41): (0.0, 0.0),   # G updates (0.7: frozen)
        (2.0, 0.69): (0.0, 0.0),   # G updates (0.7: frozen)
        (2.0, 1.0): (0.0, 0.0),
    }
    assert {pair: decisions(*pair) for pair in expected} == expected
    # The decisions hold in a step: the frozen player stays exactly still (plain SGD).
    config = TINY
    real = _real(config)
    for (previous_d, previous_g), (d_frozen, g_frozen) in (((0.78, 1.0), (1.0, 0.0)),
                                                           ((2.0, 0.41), (0.0, 0.0))):
        gan.previous_d_loss.assign(previous_d)
        gan.previous_g_adv_loss.assign(previous_g)
        d_before = _values(gan.discriminator.trainable_variables)
        g_before = _values(gan.generator.trainable_variables)
        logs = gan.train_step(real)
        assert (float(logs["d_frozen"]), float(logs["g_frozen"])) == (d_frozen, g_frozen)
        d_moved = _max_diff(_values(gan.discriminator.trainable_variables), d_before)
        g_moved = _max_diff(_values(gan.generator.trainable_variables), g_before)
        assert (d_moved == 0.0) == bool(d_frozen) and (g_moved == 0.0) == bool(g_frozen)
        for tracker in gan.trackers.values():  # the logs are running means
            tracker.reset_state()


# --------------------------------------------------------------------------------------
# A run: the curriculum, the phases, the noise.
# --------------------------------------------------------------------------------------


def _songs(num=12, tones=40, seed=0):
    rng = np.random.default_rng(seed)
    return [midi_fixtures.random_song(rng, tones) for _ in range(num)]


@pytest.fixture
def eager_runs(monkeypatch):
    """`training.train` builds models that run their steps eagerly (so spies see values)."""
    build = training.build_model

    def build_eager(*args, **kwargs):
        model = build(*args, **kwargs)
        model.run_eagerly = True
        return model

    monkeypatch.setattr(training, "build_model", build_eager)


def test_curriculum_window_length_per_epoch_then_the_adversarial_phase(
        tmp_path, monkeypatch, eager_runs):
    config = TINY.replace(seq_len=8, curriculum_step=3, pretrain_epochs=4, epochs=6)
    steps = []  # (epoch, phase, window length the step trained on), one per step
    epoch = [None]
    schedule_begin = training.run_callbacks.ScheduleCallback.on_epoch_begin
    pretraining_update = gan_lib.pretraining_update
    adversarial_step = gan_lib.CRNNGAN._adversarial_step

    def on_epoch_begin(self, index, logs=None):
        epoch[0] = index
        schedule_begin(self, index, logs)

    def spy_pretraining_update(generator, optimizer, windows, *args, **kwargs):
        steps.append((epoch[0], "pretrain", int(windows.shape[1])))
        return pretraining_update(generator, optimizer, windows, *args, **kwargs)

    def spy_adversarial_step(self, real):
        steps.append((epoch[0], "adversarial", int(real.shape[1])))
        return adversarial_step(self, real)

    monkeypatch.setattr(training.run_callbacks.ScheduleCallback, "on_epoch_begin",
                        on_epoch_begin)
    monkeypatch.setattr(gan_lib, "pretraining_update", spy_pretraining_update)
    monkeypatch.setattr(gan_lib.CRNNGAN, "_adversarial_step", spy_adversarial_step)
    training.train(config, training.RunSpec(model_dir=str(tmp_path), samples_per_epoch=0),
                   songs=_songs())
    per_epoch = {}
    for index, phase, length in steps:
        per_epoch.setdefault(index, set()).add((phase, length))
    assert per_epoch == {
        0: {("pretrain", 3)},     # curriculum_step * (epoch + 1)
        1: {("pretrain", 6)},
        2: {("pretrain", 8)},     # 9, capped at seq_len
        3: {("pretrain", 8)},
        4: {("adversarial", 8)},  # after pretrain_epochs: adversarial on full windows
        5: {("adversarial", 8)},
    }
    assert len(steps) == 6 * 3  # 12 songs, one window each, batches of 4


def test_noise_changes_with_the_step_and_repeats_after_a_resume(
        tmp_path, monkeypatch, eager_runs):
    # The noise is stateless uniform seeded by (seed, step), nothing else.
    shape = [3, 5, 4]
    for step in (0, 1, 7):
        noise = distribute.uniform_noise(11, tf.constant(step, tf.int64), shape)
        np.testing.assert_array_equal(noise, tf.random.stateless_uniform(
            shape, seed=tf.constant([11, step], tf.int64)))
    assert not np.array_equal(distribute.uniform_noise(11, tf.constant(1, tf.int64), shape),
                              distribute.uniform_noise(11, tf.constant(2, tf.int64), shape))

    # In a run: the noise G gets at every adversarial step, straight through and resumed
    # (the step names the gradient of G's loop; samples and statistics generate without).
    drawn = []
    free_run = gan_lib.Generator.free_run

    def spy_free_run(self, noise, *args, gradient=None, **kwargs):
        if gradient is not None:
            drawn.append(np.asarray(noise))
            kwargs["gradient"] = gradient
        return free_run(self, noise, *args, **kwargs)

    monkeypatch.setattr(gan_lib.Generator, "free_run", spy_free_run)
    config = TINY.replace(epochs=3)  # 1 pretraining epoch, 2 adversarial ones; 3 steps each
    songs = _songs()

    def run(folder, epochs):
        drawn.clear()
        training.train(config.replace(epochs=epochs),
                       training.RunSpec(model_dir=str(tmp_path / folder), samples_per_epoch=0,
                                        seed=SEED), songs=songs)
        return list(drawn)

    straight = run("straight", 3)
    assert len(straight) == 6
    # Step k (G's optimizer iterations: 3 pretraining steps came first) draws the
    # stateless uniform noise of (seed, k): a new one every step.
    for k, noise in enumerate(straight, start=3):
        np.testing.assert_array_equal(noise, tf.random.stateless_uniform(
            noise.shape, seed=tf.constant([SEED, k], tf.int64)))
    assert all(not np.array_equal(a, b) for a, b in zip(straight, straight[1:]))
    # A run of 2 epochs, then trained on to 3 from its backup (a fresh model restored as
    # after a kill): the third epoch draws the same noise as in the straight run.
    run("resumed", 2)
    resumed = run("resumed", 3)
    assert len(resumed) == 3
    for a, b in zip(resumed, straight[3:]):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# The dataset's splits.
# --------------------------------------------------------------------------------------


# Computed once from the split rule of the first release (sha256 of the name -> bucket
# 0-99: train below 90, validation below 95, test above); a prepared dataset's splits
# depend on it, so these must never move.
PINNED_SPLITS = {
    "bach/bwv1.6.mxl": "train",
    "bach/bwv846.mid": "train",
    "mozart/k331.mid": "train",
    "chopin/op28_no4.midi": "train",
    "beethoven/moonlight_1.mid": "train",
    "josquin/laDeplorationDeLaMorteDeJohannesOckeghem.abc#0": "train",
    "dvořák/humoresque.mid": "train",
    "Satie/Gymnopédie 1.kar": "train",
    "a.mid": "train",
    "Bach/Chorale 11.MID": "train",      # the same name in lower case: validation
    "Mozart/Sonata_0.mid": "test",       # in lower case: train
    "mozart/piece_1.mid": "train",
    "bach/piece_10.mid": "train",
    "mozart/piece_15.mid": "validation",
    "bach/piece_62.mid": "validation",
    "mozart/piece_63.mid": "validation",
    "mozart/piece_7.mid": "test",
    "mozart/piece_33.mid": "test",
    "bach/piece_40.mid": "test",
    "mozart/piece_43.mid": "test",
    "bach/piece_64.mid": "test",
    "mozart/piece_73.mid": "test",
}


def test_split_of_gives_the_pinned_split_of_each_file_name():
    from tfds_midi.crnn_gan_midi import crnn_gan_midi_dataset_builder as builder_module

    assert {name: builder_module.split_of(name) for name in PINNED_SPLITS} == PINNED_SPLITS


def test_gradient_penalty_adds_r1_on_the_real_windows_to_ds_loss():
    """With `gradient_penalty` gamma, D's update is SGD on its cross-entropy plus gamma / 2
    times R1 (the batch mean of ||d logit / d real window||^2), by autodiff of the formula;
    the penalty moves the update by far more than the tolerance. D then runs Keras' layers:
    the fused kernel's hand-written backward has no second derivative (a D built on it is
    refused)."""
    gamma = 50.0
    config, gan = _gan(feature_matching=True, freezing=False, l2_scale=0.0, clip_norm=0.0,
                       gradient_penalty=gamma)
    real = _real(config)
    d = gan.discriminator
    assert d.implementation == "keras"
    fake = gan.generator(_step_noise(gan, real), training=True)
    with tf.GradientTape() as tape:
        with tf.GradientTape() as input_tape:
            input_tape.watch(real)
            logit_sum = tf.reduce_sum(d.logits_from_features(d.features(real)))
        input_gradient = input_tape.gradient(logit_sum, real)
        r1 = tf.reduce_mean(tf.reduce_sum(tf.square(input_gradient), axis=[1, 2]))
        d_loss = -tf.reduce_mean(tf.math.log(d(real) + EPSILON)
                                 + tf.math.log(1.0 - d(fake) + EPSILON))
        total = d_loss + gamma / 2.0 * r1
    grads = [g.numpy() for g in tape.gradient(total, d.trainable_variables)]
    _, clean_grads, _ = _reference(gan, real, 0.0, True)
    d_lr = config.learning_rate * config.d_learning_rate_scale
    before = _values(d.trainable_variables)
    logs = gan.train_step(real)
    assert float(logs["d_loss"]) == pytest.approx(float(d_loss), rel=1e-4)
    update = [v.numpy() - b for v, b in zip(d.trainable_variables, before)]
    expected_update, _ = _sgd_update(grads, d_lr, 0.0)
    tolerance = 1e-3 * _max_abs(expected_update)
    assert _max_diff(update, expected_update) < tolerance
    assert _max_diff(_sgd_update(clean_grads, d_lr, 0.0)[0], expected_update) > 20 * tolerance
    with pytest.raises(ValueError, match="gradient_penalty"):
        TINY.replace(gradient_penalty=-1.0)
    with pytest.raises(ValueError, match="second derivatives"):
        gan_lib.CRNNGAN(gan.generator, Discriminator(units=4, implementation="block"),
                        gradient_penalty=1.0)
