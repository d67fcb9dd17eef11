r"""Prepares a crnn_gan_midi config and prints its size and a few decoded tones.

    python -m tfds_midi --config=default [--data_dir=DIR] [--manual_dir=DIR]

Bad input (an unknown config, a missing or empty --manual_dir, a folder without a usable MIDI
file, a bad flag) stops with one line naming it, exit status 2.
"""

from absl import app, flags

from crnn_gan import cli  # the entry points' shared conventions (absl only)

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "default", "crnn_gan_midi config: default, music21_full, "
                    "mogren2016 or manual.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (any tf.io.gfile path); default: "
                    "TFDS's own (~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Folder of your MIDI files, for --config=manual.")
flags.DEFINE_integer("show_tones", 5, "How many decoded tones of the first song to print.",
                     lower_bound=0)

def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from tfds_midi import prepare, summary

    name = f"crnn_gan_midi/{FLAGS.config}"
    try:
        prepare.check_data_dir(FLAGS.data_dir)
    except prepare.PrepareError as error:
        return cli.fail(str(error))
    try:
        builder = prepare.get_builder(name, FLAGS.data_dir)
    except prepare.PrepareError as error:
        return cli.fail(f"--config={FLAGS.config}: {error}")
    try:
        prepare.prepare(builder, FLAGS.manual_dir)
    except prepare.PrepareError as error:
        return cli.fail(str(error))
    print(summary.describe(builder, show_tones=FLAGS.show_tones))
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
