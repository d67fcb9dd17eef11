"""The statistics reward (`crnn_gan.statistics_reward`, `Config.statistics_reward_weight`):
the statistics are `crnn_gan.metrics`'s, the reward is the score-function gradient of the
moment-matching loss (checked against autodiff of that loss on an exact expectation), and a
real tiny run trains with it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import gan, metrics, statistics_reward, training
from crnn_gan.discriminator import Discriminator
from tests.test_heads import generator_with_head, random_songs
from tfds_midi import pipeline


@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_window_statistics_are_the_metrics_ones(tones_per_step):
    songs = random_songs(tones_per_step, count=3, length=40)
    steps = min(len(song) for song in songs)  # packed songs differ in length
    windows = np.stack([song[:steps] for song in songs])
    got = statistics_reward.window_statistics(windows)
    assert got.shape == (3, 6) and got.dtype == np.float32
    for window, row in zip(windows, got):
        values = metrics.all_statistics(window)
        np.testing.assert_allclose(row, [values[name] for name in metrics.STATISTICS],
                                   rtol=1e-6)


def test_batch_statistics_denormalise_with_the_scaler():
    songs = random_songs(count=4, length=30)
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    normalised = np.stack([scaler.normalize(song[:30]) for song in songs])
    got = statistics_reward.batch_statistics(tf.constant(normalised), scaler).numpy()
    np.testing.assert_allclose(
        got, statistics_reward.window_statistics(np.stack([s[:30] for s in songs])),
        rtol=1e-5, atol=1e-5)


def _statistics(rng, count, shift=0.0):
    return tf.constant(rng.normal(size=(count, 6)) + shift, tf.float32)


def _reward(real, fake):
    """The reward with the batch's own moments."""
    return statistics_reward.moment_matching_reward(
        fake, statistics_reward.batch_moments(real, fake))


def test_reward_is_centred_and_zero_when_the_means_match():
    rng = np.random.default_rng(0)
    real = _statistics(rng, 8)
    fake = _statistics(rng, 8, shift=1.5)
    reward, gap = _reward(real, fake)
    assert reward.shape == (8,) and gap.shape == (6,)
    assert abs(float(tf.reduce_mean(reward))) < 1e-5
    assert float(tf.reduce_max(tf.abs(reward))) > 0.1
    assert np.all(gap.numpy() > 0)  # generated means above the real ones
    # A batch whose generated windows hold the real statistics (reordered): no signal.
    reward, gap = _reward(real, tf.reverse(real, [0]))
    np.testing.assert_allclose(reward.numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(gap.numpy(), 0.0, atol=1e-5)
    # Statistics that no window varies in (e.g. repetitions all 0) add nothing.
    zeros = tf.zeros([8, 6])
    reward, gap = _reward(zeros, zeros)
    assert np.all(np.isfinite(reward.numpy())) and np.all(reward.numpy() == 0.0)


def test_reward_rewards_windows_that_close_the_gap():
    """Generated scale consistency below the real one: the windows with the highest scale
    consistency get the highest reward."""
    real = np.zeros((4, 6), np.float32)
    real[:, 1] = [0.95, 0.93, 0.94, 0.96]
    fake = np.zeros((4, 6), np.float32)
    fake[:, 1] = [0.7, 0.9, 0.8, 0.6]
    reward, _ = _reward(tf.constant(real), tf.constant(fake))
    assert list(np.argsort(reward.numpy())) == list(np.argsort(fake[:, 1]))


def test_a_mask_closes_only_the_chosen_statistics_gaps():
    """`statistics_reward_statistics`: the reward of a masked batch is the reward of the
    same batch whose other statistics match the real ones exactly (their gaps are 0), and it
    is the score-function gradient of the masked loss (below: the exact check)."""
    rng = np.random.default_rng(2)
    real = _statistics(rng, 8)
    fake = _statistics(rng, 8, shift=1.0)
    chosen = ("polyphony", "scale_consistency", "tone_span")
    mask = statistics_reward.statistics_mask(chosen)
    np.testing.assert_array_equal(mask, [1, 1, 0, 1, 0, 0])
    reward, gap = statistics_reward.moment_matching_reward(
        fake, statistics_reward.batch_moments(real, fake), mask)
    np.testing.assert_array_equal(gap.numpy()[mask == 0], 0.0)
    assert np.all(gap.numpy()[mask == 1] > 0)
    # The other statistics' columns replaced by the real ones: the same gaps, the same
    # reward, up to the columns the mask drops.
    keep = tf.constant(mask, tf.float32)
    matched = fake * keep + real * (1.0 - keep)
    reward_matched, gap_matched = _reward(real, matched)
    np.testing.assert_allclose(gap.numpy(), gap_matched.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reward.numpy(), reward_matched.numpy(), rtol=1e-4, atol=1e-5)
    full, _ = _reward(real, fake)
    assert not np.allclose(reward.numpy(), full.numpy(), atol=1e-3)
    np.testing.assert_array_equal(statistics_reward.statistics_mask(None), np.ones(6))
    for bad in (("polyphony", "polyphony"), ("tempo",)):
        with pytest.raises(ValueError, match="distinct names"):
            statistics_reward.statistics_mask(bad)


def test_reward_is_the_score_function_gradient_of_moment_matching():
    """A categorical "G" over 4 windows with known statistics; a batch that holds each window
    in proportion to its probability makes the batch means exact. Then
    mean_i r_i grad log p(window_i) = -grad L, L = 1/2 sum_k ((m_k - mu_k)/sigma_k)^2, with
    sigma_k the pooled std the reward used (held constant), computed by autodiff."""
    rng = np.random.default_rng(1)
    window_stats = rng.normal(size=(4, 6)).astype(np.float32)
    counts = np.array([4, 2, 1, 1])  # p = counts / 8
    logits = tf.Variable(np.log(counts / counts.sum()).astype(np.float32))
    fake = tf.constant(np.repeat(window_stats, counts, axis=0))
    drawn = np.repeat(np.arange(4), counts)
    real = tf.constant(rng.normal(size=(8, 6)).astype(np.float32) + 0.5)
    reward, gap = _reward(real, fake)

    real_mean = tf.reduce_mean(real, 0)
    fake_mean = tf.reduce_mean(fake, 0)
    scale = (fake_mean - real_mean) / gap  # the sigma the reward used
    with tf.GradientTape(persistent=True) as tape:
        log_p = tf.nn.log_softmax(logits)
        m = tf.reduce_sum(tf.exp(log_p)[:, None] * window_stats, 0)
        loss = 0.5 * tf.reduce_sum(tf.square((m - real_mean) / scale))
        surrogate = tf.reduce_mean(reward * tf.gather(log_p, drawn))
    exact = tape.gradient(loss, logits).numpy()
    estimated = tape.gradient(surrogate, logits).numpy()
    assert np.abs(exact).max() > 1e-2
    np.testing.assert_allclose(estimated, -exact, rtol=1e-4, atol=1e-6)


def test_running_moments_average_then_decay():
    """The first batches are averaged plainly (the zeros it starts from count for nothing),
    later ones enter with weight 1 - MOMENT_DECAY; the gap then comes from the running
    moments while the centring stays the batch's."""
    batches = [tf.fill([4, 6], float(v)) for v in (1.0, 3.0, 5.0)]
    moments = tf.zeros([4, 6])
    for updates, batch in enumerate(batches):
        moments = statistics_reward.running_moments(moments, float(updates), batch)
    np.testing.assert_allclose(moments.numpy(), 3.0)  # (1 + 3 + 5) / 3
    late = statistics_reward.running_moments(moments, 1000.0, tf.fill([4, 6], 103.0))
    np.testing.assert_allclose(late.numpy(), 3.0 + (1 - statistics_reward.MOMENT_DECAY) * 100,
                               rtol=1e-6)
    fake = tf.constant([[1.0] * 6, [3.0] * 6])
    # real mean 0, generated mean 1, pooled variance (1 + 1.5) / 2 - 0.5^2 = 1: gap 1
    moments = tf.constant([[0.0] * 6, [1.0] * 6, [1.0] * 6, [1.5] * 6])
    reward, gap = statistics_reward.moment_matching_reward(fake, moments)
    np.testing.assert_allclose(gap.numpy(), 1.0)
    np.testing.assert_allclose(reward.numpy(), [6.0, -6.0])  # centred on the batch's mean 2


def test_a_reference_is_the_real_side_as_it_is():
    rng = np.random.default_rng(1)
    real, fake = _statistics(rng, 8), _statistics(rng, 8, shift=1.0)
    reference_values = rng.normal(size=(50, 6)) * 3.0 + 2.0
    reference = statistics_reward.reference_moments(reference_values)
    np.testing.assert_allclose(reference, [reference_values.mean(0),
                                           np.square(reference_values).mean(0)], rtol=1e-5)
    with_reference = statistics_reward.batch_moments(None, fake, reference).numpy()
    own = statistics_reward.batch_moments(real, fake).numpy()
    np.testing.assert_array_equal(with_reference[[0, 2]], reference)
    np.testing.assert_array_equal(with_reference[[1, 3]], own[[1, 3]])


def test_run_reward_loss_weighs_each_draw_as_the_window_losses():
    """Over a run as long as the window it is the score function's extra term; over a
    longer run each draw keeps that weight (the sum grows with the run, not the mean)."""
    rng = np.random.default_rng(2)
    log_p = tf.constant(rng.normal(size=(4, 10)), tf.float32)
    advantage = tf.constant(rng.normal(size=4), tf.float32)
    np.testing.assert_allclose(
        gan.run_reward_loss(log_p, advantage, 10).numpy(),
        (gan.score_function_loss(log_p, tf.fill([4], 0.5), advantage)
         - gan.score_function_loss(log_p, tf.fill([4], 0.5))).numpy(), rtol=1e-5)
    np.testing.assert_allclose(gan.run_reward_loss(log_p, advantage, 5).numpy(),
                               2.0 * gan.run_reward_loss(log_p, advantage, 10).numpy(),
                               rtol=1e-6)


def _gan(weight, estimator="score_function", with_scaler=True, steps=0):
    generator, song_scaler, _ = generator_with_head("categorical", seed=3)
    keras.utils.set_random_seed(3)
    model = gan.CRNNGAN(generator, Discriminator(num_features=4, units=16, num_layers=2),
                        feature_matching=False, freezing=False, gradient_estimator=estimator,
                        statistics_reward_weight=weight, statistics_reward_steps=steps)
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    model.build_for_training()
    if with_scaler:
        model.set_feature_scaler(song_scaler)
    return model


@pytest.mark.parametrize("estimator", gan.SCORE_FUNCTION_ESTIMATORS)
def test_the_reward_changes_gs_step_and_is_logged(estimator):
    """One adversarial step from the same weights and batch with and without the reward:
    G moves differently, D exactly alike (the reward is G's only), and the gap is logged."""
    real = tf.random.stateless_normal([4, 10, 4], seed=[1, 2])
    moved, d_moved = {}, {}
    for weight in (0.0, 5.0):
        model = _gan(weight, estimator)
        before = [w.numpy() for w in model.generator.trainable_weights]
        d_before = [w.numpy() for w in model.discriminator.trainable_weights]
        logs = model.train_step(real)
        assert (float(logs["g_statistics_gap"]) > 0) == (weight > 0)
        if weight:  # the first batch's moments replaced the zeros
            assert float(model.statistics_updates.numpy()) == 1.0
            span = metrics.STATISTICS.index("tone_span")
            assert model.statistics_moments.numpy()[:, span].min() > 0
        moved[weight] = np.concatenate([(w.numpy() - b).ravel() for w, b in zip(
            model.generator.trainable_weights, before)])
        d_moved[weight] = np.concatenate([(w.numpy() - b).ravel() for w, b in zip(
            model.discriminator.trainable_weights, d_before)])
    assert not np.allclose(moved[0.0], moved[5.0])
    np.testing.assert_array_equal(d_moved[0.0], d_moved[5.0])


def test_g_generates_causally():
    """D judges the first T steps of a longer run: the same draws as a T-step run."""
    generator, _, _ = generator_with_head("categorical", seed=4)
    noise = tf.random.stateless_uniform([3, 16, generator.noise_dim], seed=[5, 6])
    np.testing.assert_allclose(generator.free_run(noise)[:, :10].numpy(),
                               generator.free_run(noise[:, :10]).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("estimator", gan.SCORE_FUNCTION_ESTIMATORS)
def test_longer_runs_reward_g_against_the_reference(estimator):
    """statistics_reward_steps: one step from the same weights and batch against two real
    references: D moves exactly alike (it judges the windows only), G differently, and
    the real moments are the reference's."""
    real = tf.random.stateless_normal([4, 10, 4], seed=[1, 2])
    references = {"low": np.zeros((20, 6)), "high": np.full((20, 6), 50.0)}
    moved, d_moved = {}, {}
    for name, reference in references.items():
        model = _gan(5.0, estimator, steps=16)
        model.set_real_statistics(reference)
        before = [w.numpy() for w in model.generator.trainable_weights]
        d_before = [w.numpy() for w in model.discriminator.trainable_weights]
        logs = model.train_step(real)
        assert float(logs["g_statistics_gap"]) > 0
        np.testing.assert_array_equal(model.statistics_moments.numpy()[[0, 2]],
                                      [reference.mean(0), np.square(reference).mean(0)])
        moved[name] = np.concatenate([(w.numpy() - b).ravel() for w, b in zip(
            model.generator.trainable_weights, before)])
        d_moved[name] = np.concatenate([(w.numpy() - b).ravel() for w, b in zip(
            model.discriminator.trainable_weights, d_before)])
    assert not np.allclose(moved["low"], moved["high"])
    np.testing.assert_array_equal(d_moved["low"], d_moved["high"])
    restored = gan.CRNNGAN.from_config(model.get_config())
    assert restored.statistics_reward_steps == 16


def test_the_reward_is_validated():
    with pytest.raises(ValueError, match="statistics_reward_weight"):
        config_lib.preset("tiny", statistics_reward_weight=-1.0)
    with pytest.raises(ValueError, match="score-function"):
        config_lib.preset("tiny", statistics_reward_weight=1.0)  # straight-through
    generator, _, _ = generator_with_head("categorical")
    with pytest.raises(ValueError, match="score-function"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    statistics_reward_weight=1.0)
    model = _gan(1.0, with_scaler=False)
    with pytest.raises(ValueError, match="set_feature_scaler"):
        model.train_step(tf.random.stateless_normal([4, 10, 4], seed=[1, 2]))
    restored = gan.CRNNGAN.from_config(model.get_config())
    assert restored.statistics_reward_weight == 1.0
    assert config_lib.preset("small").statistics_reward_weight >= 0
    for steps, match in ((-1, "integer >= 0"), (4, "at least seq_len"),
                         (8.5, "integer >= 0")):
        with pytest.raises(ValueError, match=match):
            config_lib.preset("tiny", representation="log", output_head="categorical",
                              feature_matching=False, gradient_estimator="score_function",
                              statistics_reward_weight=1.0, statistics_reward_steps=steps)
    with pytest.raises(ValueError, match="needs statistics_reward_weight"):
        config_lib.preset("tiny", statistics_reward_steps=20)
    with pytest.raises(ValueError, match="needs statistics_reward_weight"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    gradient_estimator="score_function", statistics_reward_steps=20)
    model = _gan(1.0, steps=16)
    with pytest.raises(ValueError, match="set_real_statistics"):
        model.train_step(tf.random.stateless_normal([4, 10, 4], seed=[1, 2]))
    # statistics_reward_statistics: names of the six, with the reward on.
    sf = {"representation": "log", "output_head": "categorical", "feature_matching": False,
          "gradient_estimator": "score_function"}
    for value, match in (("tempo", "distinct names"), ("polyphony,polyphony", "distinct"),
                         ("", "distinct names"), ("polyphony", "needs statistics_reward")):
        with pytest.raises(ValueError, match=match):
            config_lib.preset("tiny", **sf, statistics_reward_weight=0.0 if match.startswith(
                "needs") else 1.0, statistics_reward_statistics=value)
    assert config_lib.preset("tiny", **sf, statistics_reward_weight=1.0,
                             statistics_reward_statistics="polyphony,tone_span"
                             ).statistics_reward_names == ("polyphony", "tone_span")
    assert config_lib.preset("tiny").statistics_reward_names is None
    assert config_lib.STATISTICS == metrics.STATISTICS
    with pytest.raises(ValueError, match="needs statistics_reward_weight"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    gradient_estimator="score_function",
                    statistics_reward_statistics=("polyphony",))
    with pytest.raises(ValueError, match="distinct names"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    gradient_estimator="score_function", statistics_reward_weight=1.0,
                    statistics_reward_statistics=("tempo",))


@pytest.mark.parametrize("steps, adversarial_features, statistics", [
    (0, "all", "all"), (20, "all", "all"), (0, "length,pitch,velocity", "all"),
    (0, "all", "polyphony,scale_consistency,tone_span,unique_tones,intensity_span")])
def test_gan_trains_with_the_statistics_reward(tmp_path, steps, adversarial_features,
                                               statistics):
    """A real tiny run: the reward is on in the adversarial epoch (the gap is logged),
    losses stay finite, and the weight round-trips through the saved run; with
    statistics_reward_steps, over runs longer than the 8-step windows; with D's reward on
    some features only (`adversarial_features`), the statistics reward on all of them; with
    the reward on five of the six statistics (`statistics_reward_statistics`)."""
    config = config_lib.preset(
        "tiny", representation="log", output_head="categorical", optimizer="adam",
        learning_rate=1e-3, feature_matching=False, epochs=2, pretrain_epochs=1, units=8,
        gradient_estimator="score_function", statistics_reward_weight=2.0,
        statistics_reward_steps=steps, adversarial_features=adversarial_features,
        statistics_reward_statistics=statistics)
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), samples_per_epoch=1)
    history = training.train(config, spec, songs=random_songs(count=6))
    logs = history.history
    assert logs["g_statistics_gap"][0] == 0.0  # pretraining
    assert logs["g_statistics_gap"][-1] > 0.0 and np.isfinite(logs["g_loss"][-1])
    _, loaded_config, _ = training.load_generator(spec.model_dir)
    assert loaded_config.statistics_reward_weight == 2.0
    assert loaded_config.statistics_reward_steps == steps
    assert loaded_config.adversarial_features == adversarial_features
    assert loaded_config.statistics_reward_statistics == statistics
    model = training.build_model(loaded_config, "gan")
    if statistics == "all":  # the mask the reward uses: none, every gap
        assert model._statistics_mask is None
    else:
        np.testing.assert_array_equal(model._statistics_mask, [
            name in statistics.split(",") for name in metrics.STATISTICS])


def test_the_reward_is_refused_on_a_tpu(tmp_path):
    """The statistics are numpy on the host, which a TPU cannot call: a clear error before
    any TPU is looked for (no TPU needed to test it)."""
    config = config_lib.preset("small")
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), strategy="tpu")
    with pytest.raises(ValueError, match="statistics_reward_weight=0"):
        training.train(config, spec, songs=random_songs(count=2))
    assert not (tmp_path / "run").exists()
