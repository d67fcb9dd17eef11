"""G's adversarial gradient through the categorical head's draws (`Config.gradient_estimator`):
the draws' log-probability against a step-by-step brute force, the score-function loss's
gradient against the exact gradient of E[log D], and a real tiny run with each estimator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import gan, heads, training
from crnn_gan.discriminator import Discriminator
from tests.test_heads import generator_with_head, random_songs


@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_sample_log_probability_is_the_free_runs_draws(tones_per_step):
    """Teacher forcing on G's own outputs reproduces the states that drew them: the
    log-probability equals the one summed step by step along the free run, from the logits
    at each step (C-RNN-GAN-3: an absent slot counts its velocity draw only)."""
    generator, _, _ = generator_with_head("categorical", tones_per_step, scale=3.0, seed=4)
    generator.sampling_temperature = 0.8
    noise = tf.random.stateless_uniform([3, 12, generator.noise_dim], seed=[5, 6])
    fake = generator.free_run(noise)
    log_probability = generator.sample_log_probability(noise, fake).numpy()

    bins = generator.output_range.numpy().astype(np.float64)
    lstm_weights, (head_kernel, head_bias), _ = generator.weights_as_tensors()
    states, previous = generator.initial_state(3)
    expected = np.zeros((3, 12))
    absent_seen = 0
    for t in range(12):
        output, new_states = generator.step(noise[:, t], states, previous)
        dense = (tf.matmul(new_states[-1][0], head_kernel) + head_bias).numpy()
        np.testing.assert_array_equal(output.numpy(), fake[:, t].numpy())
        logits = dense.reshape(3, generator.num_features, -1).astype(np.float64) / 0.8
        log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        values = output.numpy().astype(np.float64)
        for b in range(3):
            for f in range(generator.num_features):
                tone = f // 4
                absent = tones_per_step > 1 and values[b, 4 * tone + 2] == bins[4 * tone + 2, 0]
                if absent and f % 4 != 2:
                    continue
                held = bins[f] == values[b, f]
                assert held.any()
                expected[b, t] += np.log(np.exp(log_softmax[b, f][held]).sum())
                absent_seen += absent
        states, previous = new_states, output
    np.testing.assert_allclose(log_probability, expected, rtol=1e-4, atol=1e-4)
    if tones_per_step > 1:
        assert absent_seen > 0  # the masking was exercised


def test_score_function_gradient_points_along_the_exact_one():
    """Many draws of one step (4 features) from fixed logits, a "D" that judges the pitch
    feature only: the gradient of `score_function_loss` (standardised advantages: a positive
    multiple of the estimator) points along the exact gradient of E[log D] =
    sum_k p_k log D(pitch value k)."""
    rng = np.random.default_rng(0)
    k = heads.CATEGORICAL_BINS
    bins = tf.constant(np.sort(rng.normal(size=(4, k))).astype(np.float32))
    dense = tf.Variable(rng.normal(size=(4 * k,)).astype(np.float32))
    d_of_pitch = lambda v: tf.sigmoid(2.0 * v - 0.5)  # noqa: E731
    draws = 20000
    noise = tf.constant(rng.uniform(size=(draws, 1, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tiled = tf.tile(dense[None, None], [draws, 1, 1])
        values = tf.stop_gradient(heads.emit("categorical", tiled, noise, bins=bins))
        log_probability = heads.sample_log_probability(tiled, values, bins)  # [draws, 1]
        loss = gan.score_function_loss(log_probability, d_of_pitch(values[:, 0, 1]))
        pitch_probabilities = tf.nn.softmax(dense[k:2 * k])
        exact = -tf.reduce_sum(pitch_probabilities * tf.math.log(d_of_pitch(bins[1])))
        flat = gan.score_function_loss(log_probability, tf.fill([draws], 0.3))
    estimated = tape.gradient(loss, dense).numpy()[k:2 * k]
    true = tape.gradient(exact, dense).numpy()[k:2 * k]
    cosine = estimated @ true / np.linalg.norm(estimated) / np.linalg.norm(true)
    assert cosine > 0.95, cosine
    # A reward that does not depend on the draw carries no signal: zero advantage.
    no_signal = np.abs(tape.gradient(flat, dense).numpy()).max()
    assert no_signal < 1e-3 * np.abs(estimated).max(), (no_signal, np.abs(estimated).max())


def test_per_step_credit_goes_to_the_draws_before_the_reward():
    """`per_step_score_function_loss`: the advantage of the draw at step t (minus the
    loss's gradient with respect to its log-probability) moves with D's output at steps
    s >= t only; for one step it is the window estimator; constant rewards give none."""
    rng = np.random.default_rng(1)
    batch, steps = 64, 6
    log_probability = tf.constant(rng.normal(size=(batch, steps)).astype(np.float32))
    p_steps = rng.uniform(0.1, 0.9, size=(batch, steps)).astype(np.float32)

    def advantage(p):
        with tf.GradientTape() as tape:
            tape.watch(log_probability)
            loss = gan.per_step_score_function_loss(log_probability, tf.constant(p))
        return -tape.gradient(loss, log_probability).numpy() * batch * steps

    before = advantage(p_steps)
    for s in (0, 3, steps - 1):
        changed = p_steps.copy()
        changed[:, s] = rng.uniform(0.1, 0.9, size=batch)
        moved = np.abs(advantage(changed) - before).max(axis=0)
        assert (moved[: s + 1] > 1e-3).all(), (s, moved)
        assert (moved[s + 1:] == 0).all(), (s, moved)
    np.testing.assert_allclose(  # batch-standardised: mean 0, std 1 at every step
        before.std(axis=0), 1.0, rtol=1e-4)
    one_step = gan.per_step_score_function_loss(log_probability[:, :1], p_steps[:, :1])
    window = gan.score_function_loss(log_probability[:, :1], p_steps[:, 0])
    np.testing.assert_allclose(one_step.numpy(), window.numpy(), rtol=1e-5)
    flat = advantage(np.full_like(p_steps, 0.3))
    assert np.abs(flat).max() < 1e-3


def test_per_step_gradient_points_along_each_steps_exact_one():
    """Independent draws at 3 steps, a per-step "D" that judges each step's pitch alone:
    at every step the per-step estimator's gradient for that step's logits points along
    the exact gradient of that step's E[log D] (the later steps' rewards are independent of
    the draw and average out)."""
    rng = np.random.default_rng(2)
    k, steps, draws = heads.CATEGORICAL_BINS, 3, 20000
    bins = tf.constant(np.sort(rng.normal(size=(4, k))).astype(np.float32))
    dense = tf.Variable(rng.normal(size=(steps, 4 * k)).astype(np.float32))
    d_of_pitch = lambda v: tf.sigmoid(2.0 * v - 0.5)  # noqa: E731
    noise = tf.constant(rng.uniform(size=(draws, steps, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tiled = tf.tile(dense[None], [draws, 1, 1])
        values = tf.stop_gradient(heads.emit("categorical", tiled, noise, bins=bins))
        log_probability = heads.sample_log_probability(tiled, values, bins)  # [draws, 3]
        loss = gan.per_step_score_function_loss(log_probability, d_of_pitch(values[..., 1]))
        exact = [-tf.reduce_sum(tf.nn.softmax(dense[t, k:2 * k])
                                * tf.math.log(d_of_pitch(bins[1]))) for t in range(steps)]
    estimated = tape.gradient(loss, dense).numpy()[:, k:2 * k]
    for t in range(steps):
        true = tape.gradient(exact[t], dense).numpy()[t, k:2 * k]
        cosine = estimated[t] @ true / np.linalg.norm(estimated[t]) / np.linalg.norm(true)
        assert cosine > 0.9, (t, cosine)


@pytest.mark.parametrize("tones_per_step, estimator", [
    (1, "score_function"), (3, "score_function"), (1, "score_function_per_step")])
def test_gan_trains_with_the_score_function(tmp_path, tones_per_step, estimator):
    """A real tiny run: the adversarial epoch moves G through the score function, losses
    stay finite, and the config round-trips through the saved run."""
    config = config_lib.preset(
        "tiny", representation="log", output_head="categorical", optimizer="adam",
        learning_rate=1e-3, supervised_weight=0.0, feature_matching=False, epochs=2,
        pretrain_epochs=1, units=8, tones_per_step=tones_per_step,
        gradient_estimator=estimator)
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), samples_per_epoch=1)
    history = training.train(config, spec, songs=random_songs(tones_per_step, count=6))
    logs = history.history
    assert np.isfinite(logs["g_loss"][-1]) and np.isfinite(logs["d_loss"][-1])
    assert logs["g_loss"][-1] != 0.0
    generator, loaded, _ = training.load_generator(spec.model_dir)
    assert loaded.gradient_estimator == estimator


def test_score_function_moves_g_and_straight_through_differs():
    """One adversarial step from the same weights and batch with each estimator: both move
    G, and differently (the score function is not the straight-through gradient)."""
    moved = {}
    for estimator in gan.GRADIENT_ESTIMATORS:
        generator, _, _ = generator_with_head("categorical", seed=3)
        keras.utils.set_random_seed(3)
        discriminator = Discriminator(num_features=4, units=16, num_layers=2)
        model = gan.CRNNGAN(generator, discriminator, feature_matching=False, freezing=False,
                            gradient_estimator=estimator)
        model.compile(d_optimizer=keras.optimizers.SGD(0.1),
                      g_optimizer=keras.optimizers.SGD(0.1))
        model.build_for_training()
        before = [w.numpy() for w in generator.trainable_weights]
        real = tf.random.stateless_normal([4, 10, 4], seed=[1, 2])
        model.train_step(real)
        moved[estimator] = np.concatenate(
            [(w.numpy() - b).ravel() for w, b in zip(generator.trainable_weights, before)])
        assert np.abs(moved[estimator]).max() > 0, estimator
    assert not np.allclose(moved["straight_through"], moved["score_function"])
    assert not np.allclose(moved["score_function"], moved["score_function_per_step"])


def _one_score_function_step(tones_per_step, adversarial_features, estimator="score_function"):
    """G's head kernel before and after one adversarial step (score function, SGD) from
    the same weights, batch and noise."""
    generator, _, _ = generator_with_head("categorical", tones_per_step, seed=3)
    keras.utils.set_random_seed(3)
    discriminator = Discriminator(num_features=4 * tones_per_step, units=16, num_layers=2)
    model = gan.CRNNGAN(generator, discriminator, feature_matching=False, freezing=False,
                        gradient_estimator=estimator,
                        adversarial_features=adversarial_features)
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    model.build_for_training()
    before = generator.head.kernel.numpy()
    model.train_step(tf.random.stateless_normal([4, 10, 4 * tones_per_step], seed=[1, 2]))
    return before, generator.head.kernel.numpy(), generator.output_range.shape[1]


@pytest.mark.parametrize("tones_per_step, estimator", [
    (1, "score_function"), (3, "score_function"), (1, "score_function_per_step")])
def test_adversarial_features_leave_the_other_features_logits_to_the_other_terms(
        tones_per_step, estimator):
    """With `adversarial_features` without delta, D's reward does not reach the head's
    delta logits (no supervised term, no statistics reward here: they stay exactly still)
    and still moves every other feature's; with every feature named, the step is the
    default one."""
    before, after, bins = _one_score_function_step(
        tones_per_step, ("length", "pitch", "velocity"), estimator)
    moved = np.abs(after - before).reshape(before.shape[0], 4 * tones_per_step, bins)
    for feature in range(4 * tones_per_step):
        name = heads.FEATURE_NAMES[feature % 4]
        if name == "delta":
            assert moved[:, feature].max() == 0.0, feature
        elif name != "velocity" or tones_per_step == 1:
            assert moved[:, feature].max() > 0.0, feature
    _, default, _ = _one_score_function_step(tones_per_step, None, estimator)
    assert np.abs(default - before).reshape(moved.shape)[:, 3].max() > 0.0  # delta moves
    _, named, _ = _one_score_function_step(tones_per_step, heads.FEATURE_NAMES, estimator)
    np.testing.assert_allclose(named, default, rtol=1e-5, atol=1e-7)
    # None of them ("none", the control): D's reward trains nothing, G stays exactly still.
    none_before, none_after, _ = _one_score_function_step(tones_per_step, (), estimator)
    np.testing.assert_array_equal(none_after, none_before)


def test_adversarial_features_are_validated():
    sf = dict(representation="log", output_head="categorical", feature_matching=False,
              gradient_estimator="score_function")
    config = config_lib.preset("tiny", adversarial_features="pitch,length", **sf)
    assert config.adversarial_feature_names == ("pitch", "length")
    assert config_lib.preset("tiny", **sf).adversarial_feature_names is None
    assert config_lib.Config.from_json(config.to_json()) == config
    assert training.build_model(config, "gan").adversarial_features == ("pitch", "length")
    for bad in ("", "pitch,pitch", "frequency", "pitch,", ["pitch"]):
        with pytest.raises(ValueError, match="adversarial_features must be 'all', 'none' or"):
            config_lib.preset("tiny", adversarial_features=bad, **sf)
    with pytest.raises(ValueError, match="adversarial_features needs a score-function"):
        config_lib.preset("tiny", adversarial_features="pitch")
    generator, _, _ = generator_with_head("categorical")
    assert config_lib.preset("tiny", adversarial_features="none", **sf
                             ).adversarial_feature_names == ()
    for bad in (("pitch", "pitch"), ("frequency",)):
        with pytest.raises(ValueError, match="adversarial_features must be distinct"):
            gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                        gradient_estimator="score_function", adversarial_features=bad)
    with pytest.raises(ValueError, match="adversarial_features needs a score-function"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    adversarial_features=("pitch",))
    assert config_lib.TONE_FEATURES == heads.FEATURE_NAMES


@pytest.mark.parametrize("estimator", gan.SCORE_FUNCTION_ESTIMATORS)
def test_score_function_is_validated(estimator):
    with pytest.raises(ValueError, match="gradient_estimator"):
        config_lib.preset("tiny", gradient_estimator="reinforce")
    with pytest.raises(ValueError, match="feature_matching"):
        config_lib.preset("tiny", output_head="categorical", representation="log",
                          gradient_estimator=estimator)  # feature matching is on
    with pytest.raises(ValueError, match="categorical"):
        config_lib.preset("tiny", feature_matching=False, gradient_estimator=estimator)
    generator, _, _ = generator_with_head("bounded")
    with pytest.raises(ValueError, match="categorical"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    gradient_estimator=estimator)
    assert config_lib.GRADIENT_ESTIMATORS == gan.GRADIENT_ESTIMATORS
    assert config_lib.SCORE_FUNCTION_ESTIMATORS == gan.SCORE_FUNCTION_ESTIMATORS
