"""CRNNGAN: the adversarial schedule of the paper as a Keras model with a custom `train_step`.

One `fit` runs the whole experiment: the first `pretrain_epochs` epochs train G alone on
next-tone prediction (`crnn_gan.pretraining`, which also holds the Baseline: teacher forcing,
squared error or cross-entropy) with a curriculum on the window length;
the remaining epochs are adversarial, the first `discriminator_epochs` of them D's
pretraining (D's update alone). The epochs' phases and window lengths are the model's
`Schedule` (crnn_gan.schedule); `apply_schedule(epoch)`, called at each epoch's start by
`ScheduleCallback` (crnn_gan.callbacks), sets the two values the compiled `train_step` reads
and says why each is held as it is.

Adversarial step (one batch of real windows ``[batch, T, F]``, normalised units):
- G generates from fresh uniform noise; D scores real and generated windows in two passes
  (G's gradient flows back through the generated pass only).
- ``d_loss = -mean(log D(x) + log(1 - D(G(z))))``.
- ``g_adv_loss = -mean(log D(G(z)))``: the non-saturating form of the paper's
  ``log(1 - D(G(z)))`` (same fixed point; positive, so it compares with d_loss).
- With feature matching (default), G's loss is ``|| mean R(x) - mean R(G(z)) ||^2``, the
  means of D's last hidden layer taken over the batch and the time steps (the paper's
  definition; the original code compared per-sample, per-step outputs). g_adv_loss is
  still computed: freezing compares it with d_loss, since the feature-matching loss lives
  on another scale (about 1e-3 against 0.4-1.1) and would freeze G forever.
- G's gradient through its categorical draws (`gradient_estimator`): "straight_through"
  (each draw's value, the expectation's gradient: biased, and the only one that feature
  matching can use), "score_function" (REINFORCE on log D per window,
  `score_function_loss`: unbiased; G's free run then needs no backward, and the draws'
  log-probability comes from one teacher-forced pass over them) or
  "score_function_per_step" (the same with per-step credit: each draw's reward is the
  mean of D's per-step log P(real) from its step to the window's end).
- With a score-function estimator and `statistics_reward_weight` > 0, each generated
  window's advantage also gets that weight times its statistics reward
  (`crnn_gan.statistics_reward`: moment matching of the paper's six statistics between the
  batch's generated and real windows; needs `set_feature_scaler`). With
  `statistics_reward_steps` L longer than the batch's T steps, G free-runs L steps, D
  judges the first T (G is causal: the same draws as a T-step run), and the statistics
  reward, against fixed real moments (`set_real_statistics`), weighs the log-probability
  of all L draws (`run_reward_loss`).
- D pretraining (`Schedule.discriminator_epochs`, between G's pretraining and the game):
  the adversarial step with D's update alone; G is not updated (its optimiser does not
  step), its songs come from noise seeded by D's iteration count, G's losses are not
  computed, and freezing does not apply (``d_frozen`` logs 0, ``g_frozen`` 1).
- Both players' gradients come from the same forward pass (simultaneous updates, as the
  original code's single session run of both optimisers).
- Freezing (paper's rule): D's update is skipped while the previous step's D loss <
  threshold * g_adv_loss, and G's while g_adv_loss < threshold * D loss. (The original
  code had the two optimisers swapped.) The D loss compared is the mean cross-entropy per
  decision, d_loss / 2 (d_loss sums a real and a fake term): compared raw, a D at chance
  (2 log 2) against G's log 2 would keep G frozen for good, as measured in a short run.
  A skipped update multiplies the gradients by 0: exact for plain SGD (the paper's
  optimiser); with Adam a frozen player's moment estimates still decay and move its
  weights a little.
- L2 on all weights (the layers' regularisers) and global-norm clipping of each player's
  gradient summed over replicas (`reduce_and_clip`).
- With `generator_ema_decay` > 0, every step of G also moves an exponential moving average
  of G's weights, and each adversarial epoch ends with that average in G
  (`begin_adversarial_epoch`, `end_adversarial_epoch`).
- With a score-function estimator and `prior_kl_weight` > 0 (KL control, as Sequence
  Tutor's, Jaques et al. 2017), G's loss also gets that weight times the mean KL divergence
  from G's draw distributions to those of its **prior**, a frozen copy of G taken when the
  first adversarial epoch begins (the pretrained next-tone model), both teacher forced on
  G's own free run: the game may move G where D and the statistics reward say, and pays
  for every nat it moves G's own songs away from what maximum likelihood learned.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from crnn_gan import heads, statistics_reward
from crnn_gan.discriminator import Discriminator
from crnn_gan.distribute import (
    fit_logs,
    global_mean,
    normal_noise,
    reduce_and_clip,
    replica_context,
    uniform_noise,
)
from crnn_gan.generator import Generator
from crnn_gan.lstm import resolve_implementation
from crnn_gan.pretraining import pretraining_update, teacher_forced_loss
from crnn_gan.schedule import (
    DISCRIMINATOR,
    PRETRAIN,
    Schedule,
    add_window_length,
    schedule_from_config,
    schedule_to_config,
)

EPSILON = 1e-7


GRADIENT_ESTIMATORS = ("straight_through", "score_function", "score_function_per_step")
#: The estimators that take G's gradient from its draws' log-probability (REINFORCE).
SCORE_FUNCTION_ESTIMATORS = ("score_function", "score_function_per_step")
#: Smallest std (nats of log D) the score function's advantages are divided by.
REWARD_STD_FLOOR = 1e-3
#: `CRNNGAN.generator_average_state`: no average yet; G holds its own (training) weights and
#: the average is beside them; G holds the average and its own weights are beside it.
AVERAGE_UNSET, AVERAGE_BESIDE, AVERAGE_IN_GENERATOR = 0, 1, 2
#: `CRNNGAN.prior_state`: the prior has not been taken from G yet; it has.
PRIOR_UNSET, PRIOR_TAKEN = 0, 1


def score_function_loss(log_probability, p_fake, extra_advantage=0.0):
    """G's adversarial loss by the score function (REINFORCE): its gradient is an unbiased
    estimate of the gradient of E[log D(G(z))] for a G whose outputs are discrete draws.

    Each generated window's reward is log D(window) (the non-saturating objective, one
    value per window: D's sequence output already weighs every step); the advantage is
    the reward standardised over the batch (its mean is the baseline; dividing by its std,
    at least `REWARD_STD_FLOOR`, keeps the step size independent of how confident D is).

    Args:
        log_probability: ``[batch, T]`` log-probability of G's draws
            (`Generator.sample_log_probability`).
        p_fake: D's P(real) per generated window ``[batch]``.
        extra_advantage: ``[batch]`` added to each window's advantage (the statistics
            reward, `crnn_gan.statistics_reward`), or 0.

    Returns:
        Scalar: ``-mean(advantage * log_probability)`` over the batch and the steps.
    """
    reward = tf.stop_gradient(tf.math.log(p_fake + EPSILON))
    advantage = standardised_advantage(reward) + extra_advantage
    return -tf.reduce_mean(advantage[:, None] * log_probability)


def per_step_score_function_loss(log_probability, p_fake_steps, extra_advantage=0.0):
    """The score function with per-step credit ("score_function_per_step").

    The draw at step t is credited with the mean of D's per-step log P(real) over steps
    t..T-1 (the reward to go: a draw can change the steps after it, through G's feedback,
    not those before). Exact credit for a causal D; D is bidirectional, so its output at an
    earlier step also sees the draw, and this estimator trades that bias for a variance
    that no longer grows with the window's length. Advantages are standardised over the
    batch at each step (each step's own baseline and scale).

    Args:
        log_probability: ``[batch, T]`` log-probability of G's draws.
        p_fake_steps: D's per-step P(real) on the generated windows ``[batch, T]``
            (`Discriminator.step_probabilities_from_features`).
        extra_advantage: ``[batch]`` added to the advantage of every step of a window, or 0.

    Returns:
        Scalar: ``-mean(advantage * log_probability)`` over the batch and the steps.
    """
    log_p = tf.stop_gradient(tf.math.log(p_fake_steps + EPSILON))
    steps = tf.cast(tf.shape(log_p)[1], log_p.dtype)
    # Reward to go, as a mean: the sum over s >= t, divided by the number of those steps.
    to_go = tf.cumsum(log_p, axis=1, reverse=True)
    remaining = steps - tf.range(steps, dtype=log_p.dtype)
    advantage = standardised_advantage(to_go / remaining) + tf.reshape(extra_advantage, [-1, 1])
    return -tf.reduce_mean(advantage * log_probability)


def run_reward_loss(log_probability, advantage, window_steps):
    """The score-function loss of a per-run advantage over a free run longer than the
    training window: ``-sum(advantage * log_probability) / (batch * window_steps)``, the
    same weight per draw as the windows' losses above (a mean over `window_steps` steps).

    Args:
        log_probability: ``[batch, L]`` log-probability of the run's draws.
        advantage: ``[batch]`` advantage of each run (no gradient).
        window_steps: T, the training window's steps (scalar).
    """
    batch = tf.cast(tf.shape(log_probability)[0], log_probability.dtype)
    total = tf.reduce_sum(tf.reshape(advantage, [-1, 1]) * log_probability)
    return -total / (batch * tf.cast(window_steps, log_probability.dtype))


def standardised_advantage(reward):
    """``(reward - mean) / max(std, REWARD_STD_FLOOR)``, mean and std over the global batch
    (axis 0; separately for each step of a ``[batch, T]`` reward)."""
    mean = global_mean(tf.reduce_mean(reward, axis=0))
    std = tf.sqrt(global_mean(tf.reduce_mean(tf.square(reward - mean), axis=0)))
    # The floor: rewards that differ only by rounding (a D that outputs the same value for
    # every window) must give ~zero advantages, not rounding noise blown up to unit size.
    return (reward - mean) / tf.maximum(std, REWARD_STD_FLOOR)


def feature_matching_loss(real_features, fake_features):
    """|| mean R(x) - mean R(G(z)) ||^2, means over batch and time.

    Args:
        real_features: D's last hidden layer on real data ``[batch, T, 2 * units]`` (no
            gradient flows into it).
        fake_features: the same on generated data.

    Returns:
        Scalar squared L2 distance of the two mean feature vectors; under a distribution
        strategy the means are over the global batch.
    """
    real_mean = global_mean(tf.reduce_mean(tf.stop_gradient(real_features), axis=[0, 1]))
    fake_mean = global_mean(tf.reduce_mean(fake_features, axis=[0, 1]))
    return tf.reduce_sum(tf.square(real_mean - fake_mean))


@keras.saving.register_keras_serializable(package="crnn_gan")
class CRNNGAN(keras.Model):
    """The GAN: G, D, the freezing rule, feature matching and pretraining.

    Correct under `tf.distribute` strategies: losses are divided by the number of replicas
    (gradients are summed over them), feature-matching means and the losses behind the
    freezing decision are global (all-reduced), so every replica takes the same decision,
    and each replica draws its own slice of the global batch's noise.

    Args:
        generator: G.
        discriminator: D.
        feature_matching: G's loss is the feature-matching distance.
        freezing: apply the freezing rule.
        freeze_threshold: the rule's ratio (paper: 0.7).
        clip_norm: global-norm clipping of each player's gradient (0 = off).
        seed: seeds the noise.
        label_smoothing: D's target for real windows is ``1 - label_smoothing``
            (one-sided, Salimans et al. 2016; 0 = the paper).
        supervised_weight: adds this times G's teacher-forced next-step loss on the real
            batch to G's adversarial loss (TimeGAN's supervised term; 0 = the paper).
        adversarial_learning_rate_scale: G's learning rate in the adversarial phase is its
            pretraining rate times this (1 = the paper: one rate throughout).
        gradient_estimator: one of `GRADIENT_ESTIMATORS`: how G's adversarial loss reaches
            its weights through the categorical head's draws (the score-function ones need
            the categorical head and no feature matching).
        statistics_reward_weight: weight of the statistics reward (0 = off).
        statistics_reward_steps: 0 (the reward measures the training windows) or the
            length of the free runs it measures (needs `set_real_statistics`).
        instance_noise_std: std of Gaussian noise added to every window D sees in the
            adversarial step, real and generated alike, in the normalised feature units
            (Sønderby et al. 2016, "Amortised MAP inference for image super-resolution";
            0 = off, the paper). Constant over the game. D's pretraining sees it too.
        gradient_penalty: gamma of the R1 penalty added to D's loss, ``gamma / 2`` times
            the batch mean of ``||d logit / d window||^2`` on the real windows as D sees
            them (Mescheder et al. 2018; logit: the time mean of the head's per-step
            logits, `Discriminator.logits_from_features`; 0 = off, the paper). Not in the
            logged d_loss, which stays the cross-entropy the freezing rule compares. Needs
            D's Keras layers (``implementation="keras"``: autodiff of autodiff).
        generator_ema_decay: decay of the exponential moving average of G's weights that
            each step of G moves, ``average = decay * average + (1 - decay) * weights``,
            started from G's weights at the first adversarial epoch (Yazici et al. 2019;
            0 = off, the paper). `end_adversarial_epoch` puts the average into G and
            `begin_adversarial_epoch` takes G's own weights back, so that whatever reads
            G between epochs (samples, statistics, checkpoints, the final generator) reads
            the average while G trains on its own weights; `crnn_gan.callbacks.
            AdversarialEpochs` calls the two. Both are weights of this model, so a backup
            restores them with the state that says which one G holds.
        prior_kl_weight: weight of the KL control term in G's adversarial loss: the mean
            over G's counted draws (`crnn_gan.heads.mean_kl_divergence`) of KL(G || prior),
            each draw's distribution at the sampling temperature, both models teacher
            forced on G's free run. The prior is a frozen copy of G (`prior`) taken by the
            first `begin_adversarial_epoch`. The gradient reaches G through its logits at
            the run's states; how G's weights move those states is left out (the analytic
            per-step KL of KL-regularised policy gradients). 0 = off, the paper; needs a
            score-function `gradient_estimator`. Logged as g_prior_kl.
        schedule: each epoch's phase and window length (`apply_schedule`); None: the
            caller sets `pretraining` and `window_length` itself (tests, benchmarks).
        adversarial_features: names of `heads.FEATURE_NAMES` whose draws D's reward
            trains through the score function (in every tone slot); the statistics reward
            and the supervised term still weigh every draw. None: all (the paper); ():
            none, the control without D's reward (`Config.adversarial_features`).
        statistics_reward_statistics: names of `crnn_gan.metrics.STATISTICS` whose gaps
            the statistics reward closes; None: all six (`Config.statistics_reward_statistics`).

    Raises:
        ValueError: an unknown `gradient_estimator`, or a score-function one with feature
            matching or another head than the categorical; `adversarial_features` with
            unknown or repeated names, or without a score-function estimator;
            `statistics_reward_statistics` with unknown or repeated names, or without the
            statistics reward; `prior_kl_weight` < 0 or without a score-function estimator.
    """

    def __init__(self, generator: Generator, discriminator: Discriminator,
                 feature_matching: bool = True, freezing: bool = True,
                 freeze_threshold: float = 0.7, clip_norm: float = 0.0, seed: int = 0,
                 label_smoothing: float = 0.0, supervised_weight: float = 0.0,
                 adversarial_learning_rate_scale: float = 1.0,
                 gradient_estimator: str = "straight_through",
                 statistics_reward_weight: float = 0.0, statistics_reward_steps: int = 0,
                 instance_noise_std: float = 0.0, gradient_penalty: float = 0.0,
                 generator_ema_decay: float = 0.0, prior_kl_weight: float = 0.0,
                 schedule: Schedule | None = None,
                 adversarial_features: Sequence[str] | None = None,
                 statistics_reward_statistics: Sequence[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        if gradient_estimator not in GRADIENT_ESTIMATORS:
            raise ValueError(f"gradient_estimator must be one of {GRADIENT_ESTIMATORS}, "
                             f"got {gradient_estimator!r}")
        if gradient_estimator in SCORE_FUNCTION_ESTIMATORS and (
                feature_matching or generator.output_head != "categorical"):
            raise ValueError(f"gradient_estimator={gradient_estimator!r} needs the categorical "
                             "head and no feature matching")
        if statistics_reward_weight and gradient_estimator not in SCORE_FUNCTION_ESTIMATORS:
            raise ValueError("statistics_reward_weight needs a score-function gradient_estimator "
                             f"{SCORE_FUNCTION_ESTIMATORS}, got {gradient_estimator!r}")
        if statistics_reward_steps and not statistics_reward_weight:
            raise ValueError("statistics_reward_steps needs statistics_reward_weight > 0")
        if adversarial_features is not None:
            adversarial_features = tuple(adversarial_features)
            if (not set(adversarial_features) <= set(heads.FEATURE_NAMES)
                    or len(set(adversarial_features)) != len(adversarial_features)):
                raise ValueError(f"adversarial_features must be distinct names of "
                                 f"{heads.FEATURE_NAMES} (none: D's reward trains no draw), "
                                 f"got {adversarial_features!r}")
            if gradient_estimator not in SCORE_FUNCTION_ESTIMATORS:
                raise ValueError("adversarial_features needs a score-function "
                                 f"gradient_estimator {SCORE_FUNCTION_ESTIMATORS}, "
                                 f"got {gradient_estimator!r}")
        if statistics_reward_statistics is not None:
            statistics_reward_statistics = tuple(statistics_reward_statistics)
            if not statistics_reward_weight:
                raise ValueError("statistics_reward_statistics needs statistics_reward_weight "
                                 "> 0")
        # None: every gap (the default path traces no mask); raises for unknown names.
        self._statistics_mask = (None if statistics_reward_statistics is None else
                                 statistics_reward.statistics_mask(statistics_reward_statistics))
        for name, value in (("instance_noise_std", instance_noise_std),
                            ("gradient_penalty", gradient_penalty),
                            ("prior_kl_weight", prior_kl_weight)):
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not 0.0 <= generator_ema_decay < 1.0:  # also rejects NaN
            raise ValueError("generator_ema_decay must be in [0, 1), "
                             f"got {generator_ema_decay!r}")
        if prior_kl_weight and gradient_estimator not in SCORE_FUNCTION_ESTIMATORS:
            raise ValueError("prior_kl_weight needs a score-function gradient_estimator "
                             f"{SCORE_FUNCTION_ESTIMATORS}, got {gradient_estimator!r}")
        if gradient_penalty and resolve_implementation(discriminator.implementation) == "block":
            raise ValueError("gradient_penalty needs D's second derivatives, which the fused "
                             "LSTM kernel's hand-written backward does not have: build D with "
                             "implementation='keras'")
        self.gradient_estimator = gradient_estimator
        self.instance_noise_std = instance_noise_std
        self.gradient_penalty = gradient_penalty
        self.generator_ema_decay = generator_ema_decay
        self.prior_kl_weight = prior_kl_weight
        self.statistics_reward_weight = statistics_reward_weight
        self.statistics_reward_steps = statistics_reward_steps
        self.adversarial_features = adversarial_features
        self.statistics_reward_statistics = statistics_reward_statistics
        self.feature_scaler = None  # set_feature_scaler: raw units for the statistics reward
        self.real_moments = None  # set_real_statistics: with statistics_reward_steps
        self.generator = generator
        self.discriminator = discriminator
        # KL control's prior: G's architecture, never trained (its weights are G's, copied
        # by the first begin_adversarial_epoch).
        self.prior = None
        if prior_kl_weight:
            self.prior = Generator.from_config({**generator.get_config(), "name": "prior"})
            self.prior.trainable = False
        self.feature_matching = feature_matching
        self.freezing = freezing
        self.freeze_threshold = freeze_threshold
        self.clip_norm = clip_norm
        self.seed = seed
        self.label_smoothing = label_smoothing
        self.supervised_weight = supervised_weight
        self.adversarial_learning_rate_scale = adversarial_learning_rate_scale
        self.schedule = schedule
        # The phase train_step is traced for (see apply_schedule): G's pretraining, or the
        # adversarial step with G's update (False: D's pretraining).
        self.pretraining = False
        self.generator_trains = True
        tracker = keras.metrics.Mean
        self.trackers = {name: tracker(name=name) for name in (
            "d_loss", "g_loss", "g_adv_loss", "d_acc_real", "d_acc_fake", "d_frozen",
            "g_frozen", "pretrain_loss", "g_supervised_loss", "g_statistics_gap")}
        if prior_kl_weight:
            self.trackers["g_prior_kl"] = tracker(name="g_prior_kl")

    def build(self, input_shape=None):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        self.generator.build()
        self.discriminator.build()
        # The previous step's global losses, for the freezing rule (0: nothing frozen at
        # the start). Every replica holds the same value, so the first replica's is kept.
        self.previous_d_loss = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="previous_d_loss",
            aggregation="only_first_replica")
        self.previous_g_adv_loss = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="previous_g_adv_loss",
            aggregation="only_first_replica")
        self.window_length = add_window_length(self)  # see apply_schedule
        if self.statistics_reward_weight:
            # The statistics reward's running moments and how many batches they hold
            # (`crnn_gan.statistics_reward.running_moments`); global, like the losses above.
            self.statistics_moments = self.add_weight(
                shape=(4, statistics_reward.NUM_STATISTICS), initializer="zeros",
                trainable=False, name="statistics_moments", aggregation="only_first_replica")
            self.statistics_updates = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="statistics_updates",
                aggregation="only_first_replica")
        if self.generator_ema_decay:
            # The average of each of G's trainable weights, and which of the two G holds
            # (AVERAGE_*). Every replica holds the same weights, so the first replica's
            # update is kept.
            self.generator_average = [
                self.add_weight(shape=weight.shape, initializer="zeros", trainable=False,
                                name=f"generator_average_{index}",
                                aggregation="only_first_replica")
                for index, weight in enumerate(self.generator.trainable_variables)]
            self.generator_average_state = self.add_weight(
                shape=(), initializer="zeros", trainable=False,
                name="generator_average_state", aggregation="only_first_replica")
        if self.prior is not None:
            self.prior.build()
            # PRIOR_*: whether the prior holds G's weights yet (a backup keeps both).
            self.prior_state = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="prior_state",
                aggregation="only_first_replica")
        self.built = True

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        # G's pretraining rate, read before any restore: the optimizer's learning-rate
        # variable is checkpointed, so after a resume in the adversarial phase it holds the
        # scaled rate, not the base one.
        self._g_base_learning_rate = float(keras.ops.convert_to_numpy(
            g_optimizer.learning_rate))

    def get_compile_config(self):
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer)}

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]))

    def build_for_training(self):
        """Builds the models and both optimisers (BackupAndRestore needs them all built)."""
        if not self.built:
            self.build()
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def set_feature_scaler(self, scaler) -> None:
        """The run's `FeatureScaler`: the statistics reward measures windows in raw units.
        Not saved with the model (training sets it again on every start)."""
        self.feature_scaler = scaler

    def set_real_statistics(self, real_statistics) -> None:
        """With `statistics_reward_steps`: the six statistics ``[n, 6]`` of real windows of
        that length (`crnn_gan.statistics_reward.window_statistics`); their
        `reference_moments`, held as `real_moments`, are the real side of the reward's
        moments. Not saved with the model (training sets it on every start)."""
        self.real_moments = statistics_reward.reference_moments(real_statistics)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, noise, training=False):
        """Generates: noise ``[batch, steps, noise_dim]`` -> ``[batch, steps, F]``."""
        return self.generator(noise, training=training)

    def apply_schedule(self, epoch: int) -> None:
        """Sets what `train_step` reads for epoch `epoch` (from 0) from `schedule`: the phase
        and the window length. Called at every epoch's start, also the first of a resumed run.

        The two are held differently, for the compiled step's sake:
        - The phase is `pretraining` and `generator_trains`, Python bools that `train_step`
          reads when it is traced: each phase compiles only its own step (G's next-tone
          update, D's update alone, or the two-player step), and a phase change retraces
          (`set_pretraining`, `set_generator_trains`), once or twice a run.
          A `tf.cond` on a variable would trace both steps into one graph and run the
          optimisers' updates inside a branch, which fails under MirroredStrategy (see the
          freezing in `_adversarial_step`).
        - The window length is `window_length`, an int32 variable that the compiled
          pretraining step slices the batch with (``real[:, :window_length]``), so the
          curriculum's new length every epoch needs no retrace. Being a weight, it is also
          in checkpoints and backups (unused there: this method sets it again on resume).

        Raises:
            ValueError: the model has no schedule.
        """
        if self.schedule is None:
            raise ValueError("apply_schedule needs a model built with a schedule")
        self.window_length.assign(self.schedule.window_length(epoch))
        phase = self.schedule.phase(epoch)
        self.set_pretraining(phase == PRETRAIN)
        self.set_generator_trains(phase != DISCRIMINATOR)

    def set_pretraining(self, pretraining: bool) -> None:
        """Switches phase; the next batch uses a train function traced for that phase.

        Also sets G's learning rate for the phase (`adversarial_learning_rate_scale`), at
        every call, so that a resumed run gets the rate of the phase it resumes in."""
        if self.adversarial_learning_rate_scale != 1.0:
            scale = 1.0 if pretraining else self.adversarial_learning_rate_scale
            self.g_optimizer.learning_rate.assign(self._g_base_learning_rate * scale)
        if pretraining != self.pretraining:
            self.pretraining = pretraining
            self._retrace()

    def set_generator_trains(self, trains: bool) -> None:
        """Whether the adversarial step updates G (False: D's pretraining); the next batch
        uses a train function traced for it."""
        if trains != self.generator_trains:
            self.generator_trains = trains
            self._retrace()

    def _retrace(self) -> None:
        if getattr(self, "train_function", None) is not None:
            self.make_train_function(force=True)

    def freeze_decisions(self):
        """(d_frozen, g_frozen) as float 0/1 from the previous step's losses."""
        if not self.freezing:
            return tf.constant(0.0), tf.constant(0.0)
        # Per-decision cross-entropies: d_loss sums D's two terms (real and fake), so at
        # chance it is 2 log 2 against g_adv_loss's log 2; compared raw, G would freeze
        # whenever D is merely at chance.
        d, g = self.previous_d_loss / 2.0, self.previous_g_adv_loss
        d_frozen = tf.cast(d < self.freeze_threshold * g, tf.float32)
        g_frozen = tf.cast(g < self.freeze_threshold * d, tf.float32)
        return d_frozen, g_frozen

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        # A Python bool, read once when the step is traced (see apply_schedule).
        if self.pretraining:
            return self._pretrain_step(real)
        return self._adversarial_step(real)

    def _pretrain_step(self, real):
        windows = real[:, : tf.convert_to_tensor(self.window_length)]
        loss = pretraining_update(self.generator, self.g_optimizer, windows, self.seed,
                                  self.clip_norm)
        self.trackers["pretrain_loss"].update_state(loss)
        return self._results()

    def _adversarial_step(self, real):
        generator, discriminator = self.generator, self.discriminator
        _, replicas, _ = replica_context()
        window_steps = tf.shape(real)[1]
        # Python bools: False in D's pretraining, where G is neither updated nor its loss
        # computed; the statistics reward (G's) measures longer free runs than D's windows.
        generator_trains = self.generator_trains
        long_run = bool(self.statistics_reward_steps) and generator_trains
        run_shape = (tf.stack([tf.shape(real)[0], self.statistics_reward_steps]) if long_run
                     else tf.shape(real)[:2])
        # G's optimiser does not step while D pretrains: D's iteration count seeds the noise
        # there (another seed than G's noise, which the game then draws afresh).
        noise_seed, noise_step = ((self.seed, self.g_optimizer.iterations) if generator_trains
                                  else (self.seed + 2, self.d_optimizer.iterations))
        noise = uniform_noise(noise_seed, noise_step,
                              tf.concat([run_shape, [generator.noise_dim]], 0))
        # D's pretraining: D always learns, G never.
        d_frozen, g_frozen = (self.freeze_decisions() if generator_trains
                              else (tf.constant(0.0), tf.constant(1.0)))
        statistics_gap = tf.constant(0.0)
        prior_kl = tf.constant(0.0)
        score_function = self.gradient_estimator in SCORE_FUNCTION_ESTIMATORS
        if score_function or not generator_trains:
            # The draws only: G's gradient comes from their log-probability (or there is none).
            run = generator.free_run(noise)
            fake = run[:, :window_steps] if long_run else run
        with tf.GradientTape(persistent=True) as tape:
            if not score_function and generator_trains:
                # G's gradient through its free-running loop, chosen explicitly: "fast", the
                # hand-written backward of crnn_gan.feedback_loop (CPU), or "autodiff" of
                # the plain loop (GPU, TPU, heads without a hand-written backward).
                fake = generator.free_run(noise, gradient=generator.free_run_gradient)
            # Separate passes over real and fake: G's gradient then flows back through
            # D's fake pass only (a quarter less D backward work than one pass over the
            # concatenated batch).
            real_seen, fake_seen = self._instance_noise(real, fake)
            if self.gradient_penalty:
                real_features, penalty = self._r1_penalty(real_seen)
            else:
                real_features, penalty = discriminator.features(real_seen), 0.0
            fake_features = discriminator.features(fake_seen)
            p_real = discriminator.probabilities_from_features(real_features)
            p_fake = discriminator.probabilities_from_features(fake_features)
            real_target = 1.0 - self.label_smoothing
            d_loss = -tf.reduce_mean(
                real_target * tf.math.log(p_real + EPSILON)
                + (1.0 - real_target) * tf.math.log(1.0 - p_real + EPSILON)
                + tf.math.log(1.0 - p_fake + EPSILON))
            g_adv_loss = -tf.reduce_mean(tf.math.log(p_fake + EPSILON))
            if not generator_trains:
                g_loss = g_adv_loss  # logged only
            elif score_function:
                d_log_probability = None  # D's reward weighs every feature's draw
                if self.prior is not None:
                    # One teacher-forced pass of G gives both the draws' log-probability and
                    # the distributions the KL control compares with the prior's.
                    draw_terms = generator.draw_log_probabilities(noise, run)
                    run_terms = heads.log_probability_of(draw_terms, run, generator.output_range,
                                                         per_feature=True)
                    prior_kl = heads.mean_kl_divergence(
                        draw_terms, tf.stop_gradient(self.prior.draw_log_probabilities(noise, run)),
                        run, generator.output_range)
                else:
                    run_terms = generator.sample_log_probability(noise, run, per_feature=True)
                run_log_probability = tf.reduce_sum(run_terms, axis=-1)  # [batch, steps]
                if self.adversarial_features is not None:
                    d_log_probability = tf.reduce_sum(
                        run_terms[:, :window_steps] * self._adversarial_feature_mask(), axis=-1)
                log_probability = (run_log_probability[:, :window_steps] if long_run
                                   else run_log_probability)
                statistics_advantage = 0.0
                if self.statistics_reward_weight:
                    statistics_reward, statistics_gap = self._statistics_reward(real, run)
                    statistics_advantage = self.statistics_reward_weight * statistics_reward
                # Over longer runs the reward is not the windows': it weighs all the draws.
                window_advantage = 0.0 if long_run else statistics_advantage
                statistics_loss = None
                if d_log_probability is not None:
                    # Only the chosen features' draws answer D; the statistics reward
                    # still weighs all of them.
                    statistics_loss = -tf.reduce_mean(
                        tf.reshape(window_advantage, [-1, 1]) * log_probability)
                    log_probability, window_advantage = d_log_probability, 0.0
                if self.gradient_estimator == "score_function_per_step":
                    g_loss = per_step_score_function_loss(
                        log_probability,
                        discriminator.step_probabilities_from_features(fake_features),
                        window_advantage)
                else:
                    g_loss = score_function_loss(log_probability, p_fake, window_advantage)
                if statistics_loss is not None:
                    g_loss = g_loss + statistics_loss
                if long_run:
                    g_loss = g_loss + run_reward_loss(run_log_probability, statistics_advantage,
                                                      window_steps)
                if self.prior is not None:
                    g_loss = g_loss + self.prior_kl_weight * prior_kl
            elif self.feature_matching:
                # Global means: the loss (and gradient) is the same on every replica.
                g_loss = feature_matching_loss(real_features, fake_features)
            else:
                g_loss = g_adv_loss
            supervised_loss = tf.constant(0.0)
            if self.supervised_weight and generator_trains:
                supervised_loss = teacher_forced_loss(
                    generator, real, self.seed + 1, self.g_optimizer.iterations)
                g_loss = g_loss + self.supervised_weight * supervised_loss
            d_total = (d_loss + self.gradient_penalty / 2.0 * penalty
                       + tf.add_n([0.0] + discriminator.losses)) / replicas
            g_total = (g_loss + tf.add_n([0.0] + generator.losses)) / replicas
        d_variables = discriminator.trainable_variables
        g_variables = generator.trainable_variables
        d_grads = reduce_and_clip(tape.gradient(d_total, d_variables), self.clip_norm)
        if generator_trains:
            g_grads = reduce_and_clip(tape.gradient(g_total, g_variables), self.clip_norm)
        del tape
        # Freezing masks the gradients: every replica takes the same (global) decision,
        # and no control flow wraps the optimisers (tf.cond around apply fails under
        # MirroredStrategy). Exact for plain SGD.
        self.d_optimizer.apply([g * (1.0 - d_frozen) for g in d_grads], d_variables)
        if generator_trains:
            self.g_optimizer.apply([g * (1.0 - g_frozen) for g in g_grads], g_variables)
            if self.generator_ema_decay:
                decay = self.generator_ema_decay
                for average, weight in zip(self.generator_average, g_variables):
                    average.assign(decay * average + (1.0 - decay) * weight)
        self.previous_d_loss.assign(global_mean(d_loss))
        self.previous_g_adv_loss.assign(global_mean(g_adv_loss))
        values = {
            "d_loss": d_loss, "g_loss": g_loss, "g_adv_loss": g_adv_loss,
            "d_acc_real": tf.reduce_mean(tf.cast(p_real > 0.5, tf.float32)),
            "d_acc_fake": tf.reduce_mean(tf.cast(p_fake < 0.5, tf.float32)),
            "d_frozen": d_frozen, "g_frozen": g_frozen, "g_supervised_loss": supervised_loss,
            "g_statistics_gap": statistics_gap,
        }
        if self.prior is not None:
            values["g_prior_kl"] = prior_kl
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return self._results()

    def begin_adversarial_epoch(self) -> None:
        """With `prior_kl_weight`: the first adversarial epoch copies G's weights into the
        prior, which keeps them for the rest of the run.

        With `generator_ema_decay`: G trains on its own weights this epoch. The first
        adversarial epoch starts the average from them; a later one takes them back from
        beside the average, where `end_adversarial_epoch` put them."""
        if self.prior is not None and int(
                keras.ops.convert_to_numpy(self.prior_state)) == PRIOR_UNSET:
            # G holds its own weights here: the average (if any) starts from them below.
            self.prior.set_weights(self.generator.get_weights())
            self.prior_state.assign(PRIOR_TAKEN)
        if not self.generator_ema_decay:
            return
        state = int(keras.ops.convert_to_numpy(self.generator_average_state))
        if state == AVERAGE_UNSET:
            for average, weight in zip(self.generator_average,
                                       self.generator.trainable_variables):
                average.assign(weight)
        elif state == AVERAGE_IN_GENERATOR:
            self._swap_generator_average()
        self.generator_average_state.assign(AVERAGE_BESIDE)

    def end_adversarial_epoch(self) -> None:
        """With `generator_ema_decay`: puts the average into G (G's own weights go beside
        it) for whatever reads G until the next epoch starts."""
        if not self.generator_ema_decay:
            return
        state = int(keras.ops.convert_to_numpy(self.generator_average_state))
        if state == AVERAGE_BESIDE:
            self._swap_generator_average()
            self.generator_average_state.assign(AVERAGE_IN_GENERATOR)

    def _swap_generator_average(self) -> None:
        for average, weight in zip(self.generator_average, self.generator.trainable_variables):
            own = keras.ops.convert_to_numpy(weight)
            weight.assign(keras.ops.convert_to_numpy(average))
            average.assign(own)

    def _adversarial_feature_mask(self):
        """``[num_features]`` float32: 1 for the features whose draws D's reward trains
        (`adversarial_features`, in every tone slot), else 0."""
        chosen = [float(name in self.adversarial_features) for name in heads.FEATURE_NAMES]
        return tf.constant(chosen * self.generator.tones_per_step, tf.float32)

    def _r1_penalty(self, real_seen):
        """(D's features R of `real_seen`, the R1 penalty): the batch mean of
        ``||d logit_i / d real_seen_i||^2``, differentiable in D's weights (the outer tape
        of the step records this inner gradient)."""
        with tf.GradientTape(watch_accessed_variables=False) as input_tape:
            input_tape.watch(real_seen)
            real_features = self.discriminator.features(real_seen)
            logit_sum = tf.reduce_sum(self.discriminator.logits_from_features(real_features))
        input_gradient = input_tape.gradient(logit_sum, real_seen)
        penalty = tf.reduce_mean(tf.reduce_sum(tf.square(input_gradient), axis=[1, 2]))
        return real_features, penalty

    def _instance_noise(self, real, fake):
        """(real, fake) as D sees them: each plus ``instance_noise_std`` times standard
        normal noise of its shape, a function of (seed, D's step); unchanged when off."""
        if not self.instance_noise_std:
            return real, fake
        step = self.d_optimizer.iterations
        std = tf.cast(self.instance_noise_std, real.dtype)
        return (real + std * normal_noise(self.seed + 3, step, tf.shape(real)),
                fake + std * normal_noise(self.seed + 4, step, tf.shape(fake)))

    def _statistics_reward(self, real, fake):
        """(reward ``[batch]``, gap): `moment_matching_reward` of the generated windows (or
        runs) and the loss it descends, ``sum_k gap_k^2 / 2`` (logged as g_statistics_gap);
        the real side is the real windows' or, with `statistics_reward_steps`, the
        reference's (`set_real_statistics`)."""
        if self.feature_scaler is None:
            raise ValueError("statistics_reward_weight > 0 needs set_feature_scaler(scaler) "
                             "before training")
        real_statistics = None
        if self.statistics_reward_steps:
            if self.real_moments is None:
                raise ValueError("statistics_reward_steps > 0 needs set_real_statistics("
                                 "statistics of real windows of that length) before training")
        else:
            real_statistics = statistics_reward.batch_statistics(real, self.feature_scaler)
        fake_statistics = statistics_reward.batch_statistics(fake, self.feature_scaler)
        moments = statistics_reward.running_moments(
            self.statistics_moments, self.statistics_updates,
            statistics_reward.batch_moments(real_statistics, fake_statistics,
                                            self.real_moments))
        self.statistics_moments.assign(moments)
        self.statistics_updates.assign_add(1.0)
        reward, gap = statistics_reward.moment_matching_reward(fake_statistics, moments,
                                                               self._statistics_mask)
        return reward, 0.5 * tf.reduce_sum(tf.square(gap))

    def _results(self):
        return fit_logs({name: tracker.result() for name, tracker in self.trackers.items()})

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "feature_matching": self.feature_matching, "freezing": self.freezing,
            "freeze_threshold": self.freeze_threshold, "clip_norm": self.clip_norm,
            "seed": self.seed, "label_smoothing": self.label_smoothing,
            "supervised_weight": self.supervised_weight,
            "adversarial_learning_rate_scale": self.adversarial_learning_rate_scale,
            "gradient_estimator": self.gradient_estimator,
            "statistics_reward_weight": self.statistics_reward_weight,
            "statistics_reward_steps": self.statistics_reward_steps,
            "adversarial_features": (None if self.adversarial_features is None
                                     else list(self.adversarial_features)),
            "statistics_reward_statistics": (None if self.statistics_reward_statistics is None
                                             else list(self.statistics_reward_statistics)),
            "instance_noise_std": self.instance_noise_std,
            "gradient_penalty": self.gradient_penalty,
            "generator_ema_decay": self.generator_ema_decay,
            "prior_kl_weight": self.prior_kl_weight,
            "schedule": schedule_to_config(self.schedule),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        config["schedule"] = schedule_from_config(config.get("schedule"))
        return cls(**config)
