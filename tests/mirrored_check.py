"""Run in a fresh process: one CRNNGAN train step under MirroredStrategy over 2 logical CPUs
against the default strategy on the same global batch. Prints a JSON report."""

import json
import sys

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

sys.path.insert(0, sys.argv[1])
from crnn_gan import config as config_lib  # noqa: E402
from crnn_gan import distribute, training  # noqa: E402
from tests.test_heads import random_songs  # noqa: E402
from tfds_midi import pipeline  # noqa: E402

# Clipping binds for both players and pretraining (their gradients' global norms are about
# 0.05, 0.1 and 0.13), and the learning rates make each step move the weights by far more
# than the comparison's bound (see test_distribute).
CONFIG = config_lib.preset("tiny").replace(units=12, batch_size=8, seq_len=6, clip_norm=0.03,
                                           learning_rate=2.0, d_learning_rate_scale=1.0,
                                           pretrain_epochs=0)
# G's adversarial gradient by the score function (categorical head): its advantages are
# standardised with the global batch's mean and std, so the step must equal the default one.
SCORE_FUNCTION = CONFIG.replace(representation="log", output_head="categorical",
                                feature_matching=False, freezing=False,
                                gradient_estimator="score_function")
SCORE_FUNCTION_PER_STEP = SCORE_FUNCTION.replace(gradient_estimator="score_function_per_step")
# The statistics reward: batch means and pooled stds over the global batch.
STATISTICS_REWARD = SCORE_FUNCTION.replace(statistics_reward_weight=1.0)
# ... over 10-step runs of which D judges 6, against fixed real moments.
STATISTICS_REWARD_STEPS = STATISTICS_REWARD.replace(statistics_reward_steps=10)
# The moving average of G's weights: the step's update of it, and the epochs' edges' swaps
# (run in cross-replica context, as the callback runs them).
GENERATOR_AVERAGE = CONFIG.replace(generator_ema_decay=0.5)
# KL control: the divergence from a prior set apart from G (a prior equal to G has a zero
# divergence and gradient), averaged over each replica's draws.
PRIOR_KL = SCORE_FUNCTION.replace(prior_kl_weight=1.0)
real = tf.constant(np.random.default_rng(0).normal(size=(8, 6, 4)), tf.float32)


def make(strategy, weights=None, config=CONFIG):
    with strategy.scope():
        model = training.build_model(config, "gan", seed=7)
        model.window_length.assign(config.seq_len)
        if config.output_head == "categorical":
            songs = random_songs(count=3, length=40)  # for the categorical head's values
            scaler = pipeline.FeatureScaler.fit(songs, "log")
            model.generator.set_output_range(songs, scaler)
            training.set_statistics_reward_data(model, config, songs, scaler)
        if config.prior_kl_weight:
            model.begin_adversarial_epoch()  # takes the prior; then moved away from G
            model.prior.set_weights([w * 1.5 if w.ndim == 2 else w
                                     for w in model.prior.get_weights()])
    if weights is not None:
        model.set_weights(weights)
    return model


def optimizer_state(model):
    return [[v.numpy() for v in o.variables] for o in (model.d_optimizer, model.g_optimizer)]


def restore(model, weights, optimizers):
    """The model's weights, both optimizers' variables (the step counters that seed the
    noise included) and the logs' running means as they were: each case is a first step."""
    model.set_weights(weights)
    model.reset_metrics()
    for optimizer, values in zip((model.d_optimizer, model.g_optimizer), optimizers):
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)


# One traced step per (model, phase): cases that differ only in variables (the previous
# losses that decide the freezing) share the trace, which is most of a case's cost.
_STEPS = {}


def step(strategy, model, previous_losses, pretraining=False, generator_trains=True):
    model.previous_d_loss.assign(previous_losses[0])
    model.previous_g_adv_loss.assign(previous_losses[1])
    model.pretraining = pretraining
    model.generator_trains = generator_trains
    dataset = tf.data.Dataset.from_tensors(real)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    key = (id(model), pretraining, generator_trains)
    if key not in _STEPS:
        @tf.function
        def run(batch):
            logs = strategy.run(model.train_step, args=(batch,))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}
        _STEPS[key] = run
    return {k: float(v) for k, v in _STEPS[key](batch).items()}


def noise_per_replica(strategy):
    @tf.function
    def run():
        return strategy.run(
            lambda: distribute.uniform_noise(3, tf.constant(5, tf.int64), [4, 6, 4]))
    return [t.numpy() for t in strategy.experimental_local_results(run())]


report = {}
default = tf.distribute.get_strategy()
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
report["replicas"] = mirrored.num_replicas_in_sync
models = {}  # per config: its models, built once
for case, previous in {"both": (2.0, 1.0), "d_frozen": (0.2, 1.0), "g_frozen": (2.0, 0.1),
                       "pretrain": (2.0, 1.0), "score_function": (2.0, 1.0),
                       "score_function_per_step": (2.0, 1.0),
                       "statistics_reward": (2.0, 1.0),
                       "statistics_reward_steps": (2.0, 1.0),
                       "discriminator_pretraining": (2.0, 1.0),
                       "generator_average": (2.0, 1.0), "prior_kl": (2.0, 1.0)}.items():
    config = {"score_function": SCORE_FUNCTION,
              "score_function_per_step": SCORE_FUNCTION_PER_STEP,
              "statistics_reward": STATISTICS_REWARD,
              "statistics_reward_steps": STATISTICS_REWARD_STEPS,
              "discriminator_pretraining": STATISTICS_REWARD,
              "generator_average": GENERATOR_AVERAGE,
              "prior_kl": PRIOR_KL}.get(case, CONFIG)
    if config not in models:  # base (the initial weights), default, mirrored
        base = make(default, config=config)
        initial = base.get_weights()
        models[config] = (base, make(default, initial, config), make(mirrored, initial, config),
                          initial, optimizer_state(base))
    base, single, multi, initial, optimizers = models[config]
    restore(single, initial, optimizers)
    restore(multi, initial, optimizers)
    # D's pretraining: the adversarial step with D's update alone.
    phase = {"pretraining": case == "pretrain",
             "generator_trains": case != "discriminator_pretraining"}
    if config.generator_ema_decay:
        single.begin_adversarial_epoch()
        multi.begin_adversarial_epoch()
    logs_single = step(default, single, previous, **phase)
    logs_multi = step(mirrored, multi, previous, **phase)
    if config.generator_ema_decay:  # G now holds the average of its two weights
        single.end_adversarial_epoch()
        multi.end_adversarial_epoch()
    report[case] = {
        "max_weight_diff": max(float(np.abs(a - b).max())
                               for a, b in zip(single.get_weights(), multi.get_weights())),
        "logs_single": logs_single, "logs_multi": logs_multi,
        "d_weights_changed": not all(
            np.array_equal(v.numpy(), w.numpy()) for v, w in zip(
                multi.discriminator.trainable_variables, base.discriminator.trainable_variables)),
        "g_weights_changed": not all(
            np.array_equal(v.numpy(), w.numpy()) for v, w in zip(
                multi.generator.trainable_variables, base.generator.trainable_variables)),
        # How far the step moved each player (default strategy): the comparison's bound
        # means something only if it is far below these.
        "max_d_update": max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(
            single.discriminator.trainable_variables, base.discriminator.trainable_variables)),
        "max_g_update": max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(
            single.generator.trainable_variables, base.generator.trainable_variables)),
        "previous_losses_single": [float(single.previous_d_loss.numpy()),
                                   float(single.previous_g_adv_loss.numpy())],
        "previous_losses_multi": [float(multi.previous_d_loss.numpy()),
                                  float(multi.previous_g_adv_loss.numpy())],
    }
noise = noise_per_replica(mirrored)
report["noise_replicas_differ"] = bool(np.abs(noise[0] - noise[1]).max() > 1e-3)
report["noise_is_global_batch_slices"] = bool(np.allclose(
    np.concatenate(noise), distribute.uniform_noise(3, tf.constant(5, tf.int64), [8, 6, 4])))
print(json.dumps(report))
