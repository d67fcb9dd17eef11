"""Keras callbacks of a training run: the schedule, the NaN guard, samples and statistics."""

from __future__ import annotations

import csv
import io
import math

import keras
import numpy as np
import tensorflow as tf

from crnn_gan import gfile, metrics
from crnn_gan.schedule import ADVERSARIAL
from tfds_midi import codec
from tfds_midi.pipeline import FeatureScaler


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; the run stopped before writing any checkpoint of it."""


class ScheduleCallback(keras.callbacks.Callback):
    """Tells the model each epoch's index at its start: the model applies its own
    `crnn_gan.schedule.Schedule` (`CRNNGAN.apply_schedule`, `Baseline.apply_schedule`)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.apply_schedule(epoch)


class AdversarialEpochs(keras.callbacks.Callback):
    """Calls `CRNNGAN.begin_adversarial_epoch` and `end_adversarial_epoch` at the edges of
    every adversarial epoch: `Config.prior_kl_weight` takes the KL control's prior from G
    at the first; `Config.generator_ema_decay` starts each with G's own weights in G and
    ends it with their moving average there. Goes before every callback that reads G at an
    epoch's end (samples, statistics, the validation choice, checkpoints, backups), so that
    they all read the average."""

    def on_epoch_begin(self, epoch, logs=None):
        if self.model.schedule.phase(epoch) == ADVERSARIAL:
            self.model.begin_adversarial_epoch()

    def on_epoch_end(self, epoch, logs=None):
        if self.model.schedule.phase(epoch) == ADVERSARIAL:
            self.model.end_adversarial_epoch()


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops the run at the first batch whose loss is NaN or Inf, before any epoch-end save.

    Keras' TerminateOnNaN lets the epoch end, so checkpoint callbacks would still write the
    broken weights; raising here leaves every earlier checkpoint intact.
    """

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if "loss" in name and not math.isfinite(float(value)):
                raise NonFiniteLossError(
                    f"{name} became {float(value)} at batch {batch}; training stopped and no "
                    "checkpoint of this state was written. Lower --learning_rate or raise "
                    "--clip_norm, then run the same command to resume from the last epoch."
                )


def generate_songs(generator, scaler: FeatureScaler, num_songs: int, steps: int,
                   seed: int | None = None) -> list[np.ndarray]:
    """Free-running samples in raw units, unpacked to tones ``[n, 4]`` each."""
    noise = np.random.default_rng(seed).uniform(
        size=(num_songs, steps, generator.noise_dim)).astype(np.float32)
    raw = scaler.denormalize(np.asarray(generator(noise)))
    return [codec.unpack_tones(song) for song in raw]


def statistics_means(songs: list[np.ndarray]) -> dict[str, float]:
    """The mean of each of the six statistics (`crnn_gan.metrics`) over songs of tones."""
    summary = metrics.summarise([metrics.all_statistics(tones) for tones in songs])
    return {name: summary[name][0] for name in metrics.STATISTICS}


def statistics_distance(means: dict[str, float],
                        real_statistics: dict[str, tuple[float, float]]) -> float:
    """Mean over the six statistics of |generated mean - real mean| / real std (in real
    stds; 0 = the real windows' means): `stat_distance` and `validation_distance`."""
    distances = [abs(means[name] - mean) / (std or 1.0)
                 for name, (mean, std) in real_statistics.items() if name in metrics.STATISTICS]
    return float(np.mean(distances)) if distances else 0.0


def validation_reference(validation_statistics: dict[str, tuple[float, float]],
                         training_statistics: dict[str, tuple[float, float]],
                         scale: str = "training") -> dict[str, tuple[float, float]]:
    """What `ValidationDistance` measures against (`Config.validation_scale`): statistic ->
    (the validation windows' mean, the std of `scale`'s windows: "training" or "validation").

    The means are the held-out songs'; the unit of each statistic's distance is better
    estimated on the many training songs: a validation split of a few dozen songs can have
    almost no spread in a statistic, and one generated song off it then outweighs any other
    statistic (`Config.validation_scale`).
    """
    if scale == "validation":
        return dict(validation_statistics)
    if scale != "training":
        raise ValueError(f"scale must be 'training' or 'validation', got {scale!r}")
    return {name: (mean, training_statistics[name][1])
            for name, (mean, _) in validation_statistics.items()}


class SampleWriter(keras.callbacks.Callback):
    """Every epoch: MIDI samples under ``samples/epoch_NNNN/`` and their six statistics.

    The statistics' means over the samples go into the epoch's logs (so TensorBoard and
    CSVLogger record them, prefixed ``stat_``) and into ``statistics.csv``. Also logs
    ``stat_distance``: the mean over the six statistics of |generated - real| / real std
    (real = the training windows' statistics), the "best" criterion of the checkpoints.
    """

    def __init__(self, model_dir: str, scaler: FeatureScaler, num_samples: int, steps: int,
                 real_statistics: dict[str, tuple[float, float]], seed: int | None = None):
        super().__init__()
        self.model_dir = model_dir
        self.scaler = scaler
        self.num_samples = num_samples
        self.steps = steps
        self.real_statistics = real_statistics
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        if self.num_samples <= 0:
            return
        songs = generate_songs(self.model.generator, self.scaler, self.num_samples, self.steps,
                               seed=None if self.seed is None else self.seed + epoch)
        folder = f"{self.model_dir}/samples/epoch_{epoch + 1:04d}"
        tf.io.gfile.makedirs(folder)
        for k, tones in enumerate(songs):
            gfile.write_bytes(f"{folder}/sample_{k:03d}.mid", codec.tones_to_midi_bytes(tones))
        means = statistics_means(songs)
        row = {"epoch": epoch + 1, **means}
        row["stat_distance"] = statistics_distance(means, self.real_statistics)
        if logs is not None:
            logs.update({f"stat_{name}": row[name] for name in metrics.STATISTICS})
            logs["stat_distance"] = row["stat_distance"]
        self._append_csv(row)

    def _append_csv(self, row):
        path = f"{self.model_dir}/statistics.csv"
        exists = tf.io.gfile.exists(path)
        previous = gfile.read_text(path) if exists else ""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(row))
        if not exists:
            writer.writeheader()
        writer.writerow(row)
        # gfile has no append on every file system: rewrite the whole (small) file.
        gfile.write_text(path, previous + buffer.getvalue())


class ValidationDistance(keras.callbacks.Callback):
    """Every epoch: ``logs["validation_distance"]``, the `statistics_distance` of
    `num_songs` songs of `steps` steps to windows of the validation split (their means, in
    the stds of `validation_reference`), and ``logs["validation_<statistic>"]``, the songs'
    mean of each of the six statistics.

    The songs come from the same noise every epoch, so epochs differ by their weights
    alone; the real windows are songs the model never trained on. With
    `Config.checkpoint_choice="validation"` the run ends with the generator of the epoch
    after pretraining where this is lowest (`crnn_gan.training.train`). Goes before the
    callbacks that read the logs (checkpoints, CSV, TensorBoard).
    """

    def __init__(self, scaler: FeatureScaler, validation_statistics: dict[str, tuple[float,
                 float]], num_songs: int, steps: int, seed: int = 0):
        super().__init__()
        self.scaler = scaler
        self.validation_statistics = validation_statistics
        self.num_songs = num_songs
        self.steps = steps
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        songs = generate_songs(self.model.generator, self.scaler, self.num_songs, self.steps,
                               seed=self.seed)
        if logs is not None:
            means = statistics_means(songs)
            logs["validation_distance"] = statistics_distance(means, self.validation_statistics)
            # Each statistic's mean too (history.csv, TensorBoard): which one drifts.
            logs.update({f"validation_{name}": means[name] for name in metrics.STATISTICS})
