r"""Trains C-RNN-GAN (or the baseline) on a crnn_gan_midi dataset.

    python train.py --preset=small --model_dir=runs/small
    python train.py --model=baseline --preset=small --model_dir=runs/baseline
    python train.py --tones_per_step=3 --preset=small --model_dir=runs/gan3
    python train.py --preset=paper --model_dir=gs://bucket/run   # on a GPU

Running the same command again resumes from the last finished epoch; on a finished run it
says so, and with a higher --epochs it trains on. A --model_dir holding a run of another
config (or anything else) is refused untouched: give a new --model_dir, or --overwrite.
Bad input stops with one line naming it, exit status 2.
"""

import dataclasses
import os
import re
import sys

from absl import app, flags

from crnn_gan import cli
from crnn_gan import config as config_lib

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "gan", ["gan", "baseline"],
                  "gan: C-RNN-GAN; baseline: the same G trained only on next-tone prediction.")
flags.DEFINE_enum("preset", "small", sorted(config_lib.PRESETS),
                  "Named hyper-parameters; the flags below override single fields.")
flags.DEFINE_string("dataset", "crnn_gan_midi/default", "TFDS dataset/config to train on.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (any tf.io.gfile path).")
flags.DEFINE_string("manual_dir", None, "Your MIDI folder, for --dataset=crnn_gan_midi/manual.")
flags.DEFINE_string("model_dir", None, "Where the run writes everything (required). A run "
                    "of the same config there continues; another config is refused.")
flags.DEFINE_bool("overwrite", False, "Delete a run of another config in --model_dir and "
                  "start this one there (without it, such a run is refused).")
flags.DEFINE_integer("seed", 0, "Seeds weights, noise and windows.",
                     lower_bound=0, upper_bound=cli.MAX_SEED)
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy: one device, all local GPUs, a TF_CONFIG cluster "
                  "of workers, or a TPU. --batch_size is the global batch.")
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu.")
flags.DEFINE_integer("samples_per_epoch", 4, "MIDI songs generated after every epoch.")
flags.DEFINE_integer("intra_op_threads", -1,
                     "CPU threads per TensorFlow op. -1: 1 on a machine without GPUs/TPUs and "
                     "with at most 4 cores (faster there, see README), else TensorFlow's "
                     "default; 0: TensorFlow's default.")
flags.DEFINE_integer("inter_op_threads", 0,
                     "TensorFlow ops run side by side; 0: TensorFlow's default (cores).")

_FIELD_HELP = "Override the preset's Config.{name} (default: the preset's value)."
for _field in dataclasses.fields(config_lib.Config):
    _define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_bool,
               str: flags.DEFINE_string}[type(_field.default)]
    _define(_field.name, None, _FIELD_HELP.format(name=_field.name))


def config_from_flags() -> config_lib.Config:
    overrides = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(config_lib.Config)
                 if getattr(FLAGS, f.name) is not None}
    return config_lib.preset(FLAGS.preset, **overrides)


def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_dir:
        return cli.fail("--model_dir is required: the folder the run writes everything to")
    try:
        config = config_from_flags()
    except ValueError as error:  # Config's own words name its fields: here they are flags
        return cli.fail(re.sub(r"\bConfig\.(\w+)", r"--\1", str(error)))

    import tensorflow as tf

    from crnn_gan import distribute, training
    from crnn_gan.callbacks import NonFiniteLossError
    from tfds_midi import prepare

    try:
        threads = distribute.configure_cpu_threads(FLAGS.intra_op_threads,
                                                   FLAGS.inter_op_threads)
    except ValueError as error:
        return cli.fail(f"--intra_op_threads/--inter_op_threads: {error}")
    try:
        spec = training.RunSpec(model_dir=FLAGS.model_dir, model=FLAGS.model,
                                dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                                manual_dir=FLAGS.manual_dir, seed=FLAGS.seed,
                                strategy=FLAGS.strategy, tpu=FLAGS.tpu,
                                samples_per_epoch=FLAGS.samples_per_epoch,
                                overwrite=FLAGS.overwrite)
    except ValueError as error:  # RunSpec names its fields, which are flags here
        return cli.fail(f"--{error}")
    # The dataset, before anything is prepared or written.
    try:
        distribute.check_filesystem(FLAGS.data_dir, "--data_dir")
    except ValueError as error:
        return cli.fail(str(error))
    if not FLAGS.dataset.startswith("crnn_gan_midi/"):
        return cli.fail(f"--dataset={FLAGS.dataset}: train on crnn_gan_midi/<config>, config "
                        f"one of {', '.join(prepare.config_names())}")
    try:
        prepare.check_data_dir(FLAGS.data_dir)
    except prepare.PrepareError as error:
        return cli.fail(str(error))
    try:
        builder = prepare.get_builder(FLAGS.dataset, FLAGS.data_dir)
    except prepare.PrepareError as error:
        return cli.fail(f"--dataset={FLAGS.dataset}: {error}")
    try:
        prepare.check_manual_dir(builder, FLAGS.manual_dir)
    except prepare.PrepareError as error:
        return cli.fail(str(error))
    print(f"Training {FLAGS.model} with preset {FLAGS.preset}: {config}", flush=True)
    print("CPU threads per op: %s, ops side by side: %s" % tuple(
        n or "TensorFlow's default" for n in threads), flush=True)
    try:
        training.train(config, spec)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except ValueError as error:  # a refused --model_dir, bad file system or strategy set-up
        return cli.fail(str(error))
    except tf.errors.ResourceExhaustedError as error:  # past check_model_fits_in_memory
        return cli.fail(f"out of memory: {error.message.splitlines()[0][:300]}: give a smaller "
                        "--units, --batch_size or --seq_len (with --overwrite for this "
                        "--model_dir)")
    print(f"Done: {FLAGS.model_dir}", flush=True)
    return 0


def _main_and_exit(argv):
    code = main(argv)
    remote = [p for p in (FLAGS.model_dir, FLAGS.data_dir) if p and "://" in p
              and not p.startswith("gs://")]
    if remote:
        # tensorflow-io 0.37.1's file systems abort at interpreter exit ("pure virtual
        # method called", tensorflow/io#2039) after everything is written: leave directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    return code


if __name__ == "__main__":
    app.run(_main_and_exit, flags_parser=cli.parse_flags)
