"""One training run, end to end: data, models, optimisers, callbacks, `fit`, final weights.

What lands in `model_dir` (any `tf.io.gfile` path; `crnn_gan.run_dir` says what a command
may do with an existing run, and how the files below survive a kill):
    config.json            the Config, the model kind and the dataset
    scaler.json            feature scaling of the training split (raw units <-> model units)
    real_statistics.json   the six statistics of real training windows (mean, std)
    progress.json          epochs done, finished or not
    checkpoints/latest.weights.h5, checkpoints/best.weights.h5 (lowest stat_distance)
    checkpoints/chosen.weights.h5, validation_statistics.json, checkpoint_choice.json
                           with checkpoint_choice "validation": the epoch after pretraining
                           (G's and D's) with the lowest validation_distance, the validation
                           windows' statistics, and which epoch generator.weights.h5 is
    backup/                BackupAndRestore state: run the same command again to resume, or
                           with a higher --epochs to train a finished run on
    logs/                  TensorBoard: losses, D accuracies, freeze fractions, statistics
    history.csv            the same per epoch; statistics.csv: the six statistics per epoch
    samples/epoch_NNNN/    generated songs as MIDI
    generator.weights.h5   the final generator (what export reads): the last epoch's, or
                           the chosen one (Config.checkpoint_choice)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from crnn_gan import callbacks as run_callbacks
from crnn_gan import distribute, gfile, metrics, run_dir, statistics_reward
from crnn_gan.config import Config
from crnn_gan.discriminator import Discriminator
from crnn_gan.gan import CRNNGAN
from crnn_gan.generator import Generator
from crnn_gan.pretraining import Baseline
from tfds_midi import codec, pipeline

MODEL_KINDS = ("gan", "baseline")
#: Iterators that Keras' `fit` opens over a dataset of known length per epoch (Keras 3.15,
#: `keras.src.trainers.epoch_iterator.EpochIterator`): the one the epoch reads, and one
#: opened at its end that the next epoch drops for a new one. A resumed run opens as many
#: for the epochs it trained before (`pipeline.skip_iterations`); tests/test_run_dir.py
#: checks that a resumed run then ends with an uninterrupted run's weights.
KERAS_ITERATORS_PER_EPOCH = 2
#: Real training windows whose statistics are the statistics reward's real side with
#: `Config.statistics_reward_steps` (its moments' sampling error: ~3 % of a std).
STATISTICS_REWARD_WINDOWS = 1000


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything a run needs besides the Config.

    Attributes:
        model_dir: output folder (any tf.io.gfile path).
        model: "gan" or "baseline".
        dataset: TFDS name, e.g. "crnn_gan_midi/default".
        data_dir: TFDS data dir (None = TFDS's default).
        manual_dir: the MIDI folder of the `crnn_gan_midi/manual` config.
        seed: seeds weights, noise and windows.
        samples_per_epoch: MIDI songs generated after every epoch.
        strategy: "default", "mirrored", "multi_worker" or "tpu" (see crnn_gan.distribute).
        tpu: TPU address for strategy "tpu".
        overwrite: delete a run of another config in `model_dir` and start a new one
            (without it such a run is refused; see `crnn_gan.run_dir`).
    """

    model_dir: str
    model: str = "gan"
    dataset: str = "crnn_gan_midi/default"
    data_dir: str | None = None
    manual_dir: str | None = None
    seed: int = 0
    samples_per_epoch: int = 4
    strategy: str = "default"
    tpu: str | None = None
    overwrite: bool = False

    def __post_init__(self):
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        if self.samples_per_epoch < 0:
            raise ValueError(f"samples_per_epoch must be >= 0, got {self.samples_per_epoch}")


def build_generator(config: Config, l2_scale: float | None = None) -> Generator:
    """G of a config; `l2_scale` overrides `config.l2_scale` (see `Config.l2_in_model_units`)."""
    return Generator(tones_per_step=config.tones_per_step, units=config.units,
                     num_layers=config.num_layers,
                     l2_scale=config.l2_scale if l2_scale is None else l2_scale,
                     implementation=config.implementation, output_head=config.output_head,
                     sampling_temperature=config.sampling_temperature,
                     velocity_temperature=config.velocity_temperature,
                     pitch_class_input=config.pitch_class_input,
                     autoregressive_head=config.autoregressive_head, name="generator")


def build_model(config: Config, model: str, seed: int = 0,
                l2_scale: float | None = None) -> keras.Model:
    """The compiled, fully built CRNNGAN or Baseline of a config (optimisers included).

    Args:
        config: the hyper-parameters.
        model: "gan" or "baseline".
        seed: seeds the noise.
        l2_scale: the L2 scale in model units (default `config.l2_scale`; `train` passes
            `config.l2_in_model_units(scaler.std)`).
    """
    l2_scale = config.l2_scale if l2_scale is None else l2_scale

    def optimizer(learning_rate):
        # Clipping is done by the models on the gradient summed over replicas.
        if config.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate)
        return keras.optimizers.SGD(learning_rate)

    generator = build_generator(config, l2_scale)
    schedule = config.schedule(model)
    if model == "baseline":
        built = Baseline(generator, clip_norm=config.clip_norm, seed=seed, schedule=schedule,
                         name="baseline")
        built.compile(optimizer=optimizer(config.learning_rate))
    else:
        discriminator = Discriminator(
            num_features=config.num_features, units=config.units,
            num_layers=config.num_layers, l2_scale=l2_scale,
            # The gradient penalty differentiates D's input gradient: Keras' layers and
            # autodiff (the fused kernel's hand-written backward has no second derivative).
            implementation="keras" if config.gradient_penalty else config.implementation,
            pitch_class_input=config.pitch_class_input and config.discriminator_pitch_classes,
            minibatch_kernels=config.minibatch_kernels,
            spectral_norm=config.discriminator_spectral_norm, name="discriminator")
        built = CRNNGAN(generator, discriminator, feature_matching=config.feature_matching,
                        freezing=config.freezing, freeze_threshold=config.freeze_threshold,
                        clip_norm=config.clip_norm, seed=seed,
                        label_smoothing=config.label_smoothing,
                        supervised_weight=config.supervised_weight,
                        adversarial_learning_rate_scale=config.adversarial_learning_rate_scale,
                        gradient_estimator=config.gradient_estimator,
                        statistics_reward_weight=config.statistics_reward_weight,
                        statistics_reward_steps=config.statistics_reward_steps,
                        statistics_reward_statistics=config.statistics_reward_names,
                        adversarial_features=config.adversarial_feature_names,
                        instance_noise_std=config.instance_noise_std,
                        gradient_penalty=config.gradient_penalty,
                        generator_ema_decay=config.generator_ema_decay,
                        prior_kl_weight=config.prior_kl_weight,
                        schedule=schedule, name="crnn_gan")
        built.compile(
            d_optimizer=optimizer(config.learning_rate * config.d_learning_rate_scale),
            g_optimizer=optimizer(config.learning_rate))
    built.build_for_training()
    return built


def real_windows(songs, steps: int, num_windows: int = 200, seed: int = 0):
    """`num_windows` random windows of `steps` steps (raw units, packed as the songs are)
    from songs that hold one (all songs where none does: shorter windows)."""
    rng = np.random.default_rng(seed)
    usable = pipeline.songs_for_training(songs, steps) or list(songs)
    windows = []
    for _ in range(num_windows):
        song = usable[rng.integers(len(usable))]
        start = rng.integers(0, max(len(song) - steps, 0) + 1)
        windows.append(song[start:start + steps])
    return windows


def real_window_statistics(songs, steps: int, num_windows: int = 200, seed: int = 0):
    """Mean and std of the six statistics over random real windows of `steps` steps."""
    return metrics.summarise([metrics.all_statistics(codec.unpack_tones(window))
                              for window in real_windows(songs, steps, num_windows, seed)])


def set_statistics_reward_data(model: CRNNGAN, config: Config, songs, scaler,
                               seed: int = 0) -> None:
    """What the GAN's statistics reward reads besides the batches: the raw units (`scaler`)
    and, with `Config.statistics_reward_steps`, the statistics of `STATISTICS_REWARD_WINDOWS`
    real windows of that length from `songs` (raw training songs)."""
    model.set_feature_scaler(scaler)
    if config.statistics_reward_steps:
        model.set_real_statistics(statistics_reward.window_statistics(real_windows(
            songs, config.statistics_reward_steps, STATISTICS_REWARD_WINDOWS, seed=seed)))


def check_enough_windows(songs, config: Config, model: str) -> None:
    """Raises ValueError (naming the flags) when the training songs give fewer windows per
    epoch than one batch: the batches drop their remainder, so such a run would train on
    nothing and still finish."""
    steps = config.schedule(model).data_window_length
    usable = len(pipeline.songs_for_training(songs, steps))
    windows = usable * config.windows_per_song
    if windows >= config.batch_size:
        return
    if not usable:
        longest = max((len(song) for song in songs), default=0)
        flag = "--seq_len" if steps == config.seq_len else "--adversarial_seq_len"
        raise ValueError(f"no training song holds a window of {steps} steps ({flag}; the "
                         f"longest of {len(songs)} has {longest}): give a smaller {flag} "
                         "or longer songs")
    raise ValueError(f"--batch_size={config.batch_size}: an epoch has {windows} training "
                     f"windows of {steps} steps ({usable} of {len(songs)} songs hold one, x "
                     f"--windows_per_song={config.windows_per_song}), fewer than one batch: "
                     "give a smaller --batch_size, a larger --windows_per_song or more songs")


#: Floats a trained weight costs: itself, its gradient and Adam's two moments.
FLOATS_PER_TRAINED_WEIGHT = 4


def check_model_fits_in_memory(config: Config, model: str,
                               memory_bytes: int | None = None) -> None:
    """Raises ValueError (naming the flags) when the LSTMs' recurrent weights alone, with
    their gradients and Adam's moments, need more than `memory_bytes` (default: this
    machine's physical memory): such a run would die allocating them, after writing its
    folder. A lower bound (G: one direction per layer, D: two; input kernels and heads
    come on top), so it never refuses a model that fits."""
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # not a POSIX system: unknown
            return
    directions = 1 if model == "baseline" else 3  # G's LSTM, and D's two directions
    weights = directions * config.num_layers * 4 * config.units * (config.units + 1)
    needed = weights * FLOATS_PER_TRAINED_WEIGHT * 4  # float32 bytes
    if needed > memory_bytes:
        raise ValueError(
            f"--units={config.units} with --num_layers={config.num_layers}: the LSTMs' "
            f"recurrent weights alone need {needed / 2**30:,.0f} GiB with their gradients and "
            f"optimizer state, more than this machine's {memory_bytes / 2**30:,.0f} GiB: "
            "give a smaller --units or --num_layers")


def load_split_songs(spec: RunSpec, config: Config, split: str = "train") -> list[np.ndarray]:
    """A split (default: the training split) as raw songs (packed for C-RNN-GAN-3);
    prepares the dataset if needed."""
    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    download_config = tfds.download.DownloadConfig(manual_dir=spec.manual_dir)
    if spec.data_dir and "://" in spec.data_dir and not tfds.builder(
            spec.dataset, data_dir=spec.data_dir).is_prepared():
        _prepare_remotely(spec.dataset, spec.data_dir, download_config)
    examples = tfds.load(spec.dataset, split=split, data_dir=spec.data_dir,
                         download_and_prepare_kwargs={"download_config": download_config})
    return pipeline.load_songs(examples, config.tones_per_step)


def _read_statistics(path: str) -> dict[str, tuple[float, float]]:
    """A statistics JSON of the run (real_statistics.json, validation_statistics.json):
    statistic -> (mean, std), as `real_window_statistics` returns it."""
    return {k: tuple(v) for k, v in json.loads(gfile.read_text(path)).items()}


def _prepare_remotely(dataset: str, data_dir: str, download_config) -> None:
    """Prepares `dataset` in a local temporary folder and copies it to `data_dir`.

    TFDS cannot prepare straight into an s3:// data_dir through tensorflow-io: its
    directories exist only once they hold an object, so TFDS' mkdir-then-isdir check fails
    ("Cannot create dir. s3://.../.config is not a directory"). Reading a prepared copy
    works, and the copy works on every tf.io.gfile scheme.
    """
    import tempfile

    import tensorflow_datasets as tfds

    with tempfile.TemporaryDirectory() as local:
        tfds.builder(dataset, data_dir=local).download_and_prepare(
            download_config=download_config)
        for folder, _, files in tf.io.gfile.walk(local):
            relative = folder[len(local):].strip("/")
            if "downloads" in relative.split("/"):
                continue
            target = f"{data_dir.rstrip('/')}/{relative}" if relative else data_dir
            tf.io.gfile.makedirs(target)
            for name in files:
                tf.io.gfile.copy(f"{folder}/{name}", f"{target}/{name}", overwrite=True)


def train(config: Config, spec: RunSpec, songs=None,
          validation_songs=None) -> keras.callbacks.History:
    """Runs, resumes or trains on a training run (see `crnn_gan.run_dir` for which).

    Args:
        config: hyper-parameters.
        spec: model kind, data and output locations.
        songs: raw training songs; default: the train split of `spec.dataset`.
        validation_songs: raw songs that `checkpoint_choice="validation"` measures against;
            default: the validation split of `spec.dataset` (unused with "last").

    Returns:
        Keras' History of this invocation's epochs (empty for a finished run).

    Raises:
        NonFiniteLossError: a loss became NaN/Inf (earlier checkpoints stay intact).
        crnn_gan.run_dir.RunDirError: `model_dir` holds a run of another config, or
            something else than a run (nothing in it was touched).
        ValueError: the statistics reward on a TPU.
    """
    if spec.strategy == "tpu" and spec.model == "gan" and config.statistics_reward_weight:
        # crnn_gan.statistics_reward computes the statistics in numpy on the host.
        raise ValueError("statistics_reward_weight > 0 computes the six statistics on the host "
                         "(tf.numpy_function), which a TPU cannot call: train on a TPU with "
                         "--statistics_reward_weight=0")
    keras.utils.set_random_seed(spec.seed)
    model_dir = spec.model_dir.rstrip("/")
    distribute.check_filesystem(spec.data_dir, "--data_dir")
    distribute.check_filesystem(model_dir, "--model_dir")
    strategy = distribute.make_strategy(spec.strategy, spec.tpu)
    # Multi-worker: every worker trains, only the chief writes the run's outputs; each
    # worker keeps its own backup so that a restarted cluster resumes consistently.
    is_chief, index = distribute.worker_index() if spec.strategy == "multi_worker" else (True, 0)
    backup_dir = f"{model_dir}/backup" + (f"/worker_{index}" if spec.strategy == "multi_worker"
                                          else "")
    record = {"config": dataclasses.asdict(config), "model": spec.model,
              "dataset": spec.dataset, "seed": spec.seed, "strategy": spec.strategy}
    # Before anything is written: a refused command leaves the run as it was.
    check_model_fits_in_memory(config, spec.model)
    state = run_dir.open_run(model_dir, record, backup_dir=backup_dir,
                             overwrite=spec.overwrite, is_chief=is_chief)
    print(state.message, flush=True)
    if state.status == "finished":
        return keras.callbacks.History()
    if songs is None:
        songs = load_split_songs(spec, config)
    check_enough_windows(songs, config, spec.model)
    if state.status == "overwrite":
        run_dir.clear(model_dir, backup_dir, is_chief=is_chief)
    if is_chief:
        problem = gfile.make_folder(model_dir, "--model_dir")  # the run's first write
        if problem:
            raise run_dir.RunDirError(problem)
        tf.io.gfile.makedirs(f"{model_dir}/checkpoints")
        # --epochs may have changed; everything else is the run's own config.
        run_dir.write_text_atomic(f"{model_dir}/config.json", json.dumps(record, indent=2))
    scaler_path = f"{model_dir}/scaler.json"
    stats_path = f"{model_dir}/real_statistics.json"
    if tf.io.gfile.exists(scaler_path) and tf.io.gfile.exists(stats_path):
        # Resuming: keep the scaling the weights were trained with.
        scaler = pipeline.FeatureScaler.load(scaler_path)
        real_stats = _read_statistics(stats_path)
    else:
        scaler = pipeline.FeatureScaler.fit(songs, config.representation)
        real_stats = real_window_statistics(songs, config.sample_steps, seed=spec.seed)
        if is_chief:
            run_dir.save_atomic(scaler.save, scaler_path)
            run_dir.write_text_atomic(stats_path, json.dumps(real_stats, indent=2))
    validation_stats = None
    if config.checkpoint_choice == "validation":
        validation_path = f"{model_dir}/validation_statistics.json"
        if tf.io.gfile.exists(validation_path):
            validation_stats = _read_statistics(validation_path)
        else:
            if validation_songs is None:
                validation_songs = load_split_songs(spec, config, split="validation")
            validation_stats = real_window_statistics(validation_songs, config.sample_steps,
                                                      seed=spec.seed)
            if is_chief:
                run_dir.write_text_atomic(validation_path,
                                          json.dumps(validation_stats, indent=2))
    with strategy.scope():
        model = build_model(config, spec.model, seed=spec.seed,
                            l2_scale=config.l2_in_model_units(scaler.std))
        model.generator.set_output_range(songs, scaler)
        if spec.model == "gan":
            model.discriminator.set_pitch_affine(scaler)
            set_statistics_reward_data(model, config, songs, scaler, seed=spec.seed)
    # The windows of the longest epochs (`Config.adversarial_seq_len`; the baseline's are
    # `seq_len` long); shorter epochs read their first steps (`Schedule.window_length`).
    window_steps = model.schedule.data_window_length
    usable = len(pipeline.songs_for_training(songs, window_steps))
    logging.info("%d of %d training songs hold a window of %d steps (the others are skipped).",
                 usable, len(songs), window_steps)
    dataset = pipeline.window_dataset(songs, scaler, window_steps, config.batch_size,
                                      windows_per_song=config.windows_per_song, seed=spec.seed,
                                      transpose_semitones=config.transpose_semitones)
    # Resuming (or training a finished run on): the epochs trained already opened iterators
    # over this stream, each with its own shuffle and random numbers; opening as many here
    # gives the next epochs an uninterrupted run's windows.
    pipeline.skip_iterations(dataset, KERAS_ITERATORS_PER_EPOCH * state.epochs_done)
    # The journal restores the backup and commits each epoch once all its outputs are
    # written (its commit callback goes last).
    journal = run_dir.RunJournal(model_dir, backup_dir, is_chief=is_chief,
                                 commit_last=spec.strategy != "multi_worker")
    callbacks = [
        run_callbacks.ScheduleCallback(),
        run_callbacks.NonFiniteLossGuard(),
    ]
    if spec.model == "gan":  # its edges do nothing without the EMA or the KL control
        callbacks.append(run_callbacks.AdversarialEpochs())  # before all that reads G
    callbacks.append(journal)
    chosen = None
    if is_chief:
        if validation_stats is not None:
            # Before the checkpoints and logs that read validation_distance.
            chosen = run_dir.AtomicCheckpoint(
                f"{model_dir}/checkpoints/chosen.weights.h5", monitor="validation_distance",
                history=f"{model_dir}/history.csv",
                from_epoch=model.schedule.first_adversarial_epoch)
            callbacks += [
                run_callbacks.ValidationDistance(
                    scaler, run_callbacks.validation_reference(
                        validation_stats, real_stats, config.validation_scale),
                    config.validation_generated_songs, config.sample_steps, seed=spec.seed),
                chosen,
            ]
        callbacks += [
            run_callbacks.SampleWriter(model_dir, scaler, spec.samples_per_epoch,
                                       config.sample_steps, real_stats, seed=spec.seed),
            run_dir.AtomicCheckpoint(f"{model_dir}/checkpoints/latest.weights.h5"),
        ]
        if spec.samples_per_epoch > 0:
            callbacks.append(run_dir.AtomicCheckpoint(
                f"{model_dir}/checkpoints/best.weights.h5", monitor="stat_distance",
                history=f"{model_dir}/history.csv"))
        callbacks += [
            keras.callbacks.TensorBoard(f"{model_dir}/logs"),
            _CSVLogger(f"{model_dir}/history.csv", append=True),
            EpochSummary(),
        ]
    callbacks.append(journal.commit_callback())
    history = model.fit(dataset, epochs=config.epochs, callbacks=callbacks, verbose=2,
                        shuffle=False)
    if is_chief:
        if chosen is not None:
            _end_with_chosen(model, chosen, model_dir)
        run_dir.save_weights_atomic(model.generator, f"{model_dir}/generator.weights.h5")
        journal.finish()
    return history


def _end_with_chosen(model, chosen, model_dir: str) -> None:
    """checkpoint_choice "validation": loads the chosen epoch's weights into `model` (the
    last epoch's stay when no epoch after pretraining ran) and records the choice."""
    record = {"checkpoint_choice": "validation", "epoch": None, "validation_distance": None}
    if chosen.best_epoch is not None and tf.io.gfile.exists(chosen.path):
        model.load_weights(chosen.path)
        record.update(epoch=chosen.best_epoch + 1, validation_distance=chosen.best)
    run_dir.write_text_atomic(f"{model_dir}/checkpoint_choice.json",
                              json.dumps(record, indent=2))


class _CSVLogger(keras.callbacks.CSVLogger):
    """Keras' CSVLogger, closing its file also on remote paths.

    Keras opens remote paths (gs://, s3://, ...) with tf.io.gfile's GFile, which has no
    `closed` attribute: Keras' own on_train_end then fails after the last epoch.
    """

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None


class EpochSummary(keras.callbacks.Callback):
    """One summary line per epoch: phase, losses, D accuracies, freezing, stat_distance."""

    KEYS = ("pretrain_loss", "d_loss", "g_loss", "g_adv_loss", "d_acc_real", "d_acc_fake",
            "d_frozen", "g_frozen", "stat_distance", "validation_distance")
    # Logged in both phases; the other keys only in their own phase.
    EVERY_PHASE = ("stat_distance", "validation_distance")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        phase = ("pretrain" if self.model.pretraining
                 else "adversarial" if getattr(self.model, "generator_trains", True)
                 else "discriminator")
        keys = [k for k in self.KEYS if k in logs
                and (k != "pretrain_loss") == (phase != "pretrain" or k in self.EVERY_PHASE)]
        values = "  ".join(f"{k}={float(logs[k]):.4g}" for k in keys)
        print(f"epoch {epoch + 1} [{phase}] {values}", flush=True)


def load_generator(model_dir: str):
    """The final generator of a run, its Config and its FeatureScaler."""
    config = Config(**json.loads(gfile.read_text(f"{model_dir}/config.json"))["config"])
    generator = build_generator(config)
    generator.build()
    generator.load_weights(f"{model_dir}/generator.weights.h5")
    return generator, config, pipeline.FeatureScaler.load(f"{model_dir}/scaler.json")
