"""Next-tone pretraining: G's teacher-forced loss and update, and the Baseline.

`pretraining_update` is one update of G on next-tone prediction (teacher forcing: the
squared error, or the cross-entropy of the categorical head); `CRNNGAN` runs it in its
pretraining epochs (and `teacher_forced_loss` as its supervised term), and `Baseline`, G
trained only this way (the paper's baseline), in every epoch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from crnn_gan.distribute import fit_logs, reduce_and_clip, replica_context, uniform_noise
from crnn_gan.generator import Generator
from crnn_gan.schedule import (
    Schedule,
    add_window_length,
    schedule_from_config,
    schedule_to_config,
)


def teacher_forced_loss(generator: Generator, windows, seed: int, step):
    """G's next-step loss with teacher forcing (`Generator.next_step_loss`: squared error,
    or cross-entropy for the categorical head).

    Args:
        generator: G.
        windows: ``[batch, T, F]`` normalised real steps.
        seed: the run's seed.
        step: the training step (see `uniform_noise`).

    Returns:
        Scalar loss over this replica's windows (without regularisation).
    """
    noise = uniform_noise(seed, step,
                          tf.concat([tf.shape(windows)[:2], [generator.noise_dim]], 0))
    return generator.next_step_loss(noise, windows)


def pretraining_update(generator: Generator, optimizer, windows, seed: int, clip_norm: float):
    """One next-tone pretraining update of G (shared by CRNNGAN's pretraining and Baseline).

    Args:
        generator: G.
        optimizer: G's optimizer (its iteration count also seeds the noise).
        windows: ``[batch, T, F]`` normalised real steps (this replica's share).
        seed: the run's seed.
        clip_norm: global-norm clipping (0 = off).

    Returns:
        The squared error before the update (without regularisation).
    """
    _, replicas, _ = replica_context()
    variables = generator.trainable_variables
    with tf.GradientTape() as tape:
        # G's gradient: teacher forcing runs each LSTM layer as one sequence, with the
        # fused BlockLSTM and its hand-written backward ("block": CPU) or Keras' layer and
        # autodiff ("keras": GPU, TPU), as `crnn_gan.lstm.resolve_implementation` resolves
        # `generator.implementation` (`FusedLSTM.call`).
        loss = teacher_forced_loss(generator, windows, seed, optimizer.iterations)
        total = (loss + tf.add_n([0.0] + generator.losses)) / replicas
    optimizer.apply(reduce_and_clip(tape.gradient(total, variables), clip_norm), variables)
    return loss


@keras.saving.register_keras_serializable(package="crnn_gan")
class Baseline(keras.Model):
    """The baseline: G's network trained only on next-tone prediction, with plain `fit`.

    ``compile(optimizer)`` and ``fit`` on batches of normalised windows ``[batch, T, F]``;
    the loss is the teacher-forced squared error plus L2. Generation (`call`) is G's free
    running feedback loop, exactly as for the GAN, so samples compare like for like.
    Follows the schedule's window lengths like `CRNNGAN` (`apply_schedule`); every epoch
    trains on next-tone prediction, whatever the schedule's phase.

    Args:
        generator: G.
        clip_norm: global-norm clipping of G's gradient (0 = off).
        seed: seeds the noise.
        schedule: each epoch's window length; None: the caller sets `window_length`.
    """

    pretraining = True  # every epoch (what EpochSummary reports)

    def __init__(self, generator: Generator, clip_norm: float = 0.0, seed: int = 0,
                 schedule: Schedule | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.clip_norm = clip_norm
        self.seed = seed
        self.schedule = schedule
        self.loss_tracker = keras.metrics.Mean(name="pretrain_loss")

    def build(self, input_shape=None):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        self.generator.build()
        self.window_length = add_window_length(self)  # see CRNNGAN.apply_schedule
        self.built = True

    def build_for_training(self):
        if not self.built:
            self.build()
        self.optimizer.build(self.generator.trainable_variables)

    def apply_schedule(self, epoch: int) -> None:
        """Sets the window length of epoch `epoch` (see `CRNNGAN.apply_schedule`).

        Raises:
            ValueError: the model has no schedule.
        """
        if self.schedule is None:
            raise ValueError("apply_schedule needs a model built with a schedule")
        self.window_length.assign(self.schedule.window_length(epoch))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, noise, training=False):
        return self.generator(noise, training=training)

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        windows = real[:, : tf.convert_to_tensor(self.window_length)]
        loss = pretraining_update(self.generator, self.optimizer, windows, self.seed,
                                  self.clip_norm)
        self.loss_tracker.update_state(loss)
        return fit_logs({"pretrain_loss": self.loss_tracker.result()})

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "clip_norm": self.clip_norm, "seed": self.seed,
                "schedule": schedule_to_config(self.schedule)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["schedule"] = schedule_from_config(config.get("schedule"))
        return cls(**config)
