r"""Prepares a crnn_gan_midi config and prints its size and a few decoded tones.

    python -m tfds_midi --config=default [--data_dir=DIR] [--manual_dir=DIR]
"""

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "default", "crnn_gan_midi config: default, music21_full, "
                    "mogren2016 or manual.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (any tf.io.gfile path); default: "
                    "TFDS's own (~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Folder of your MIDI files, for --config=manual.")
flags.DEFINE_integer("show_tones", 5, "How many decoded tones of the first song to print.")


def main(argv):
    del argv
    import tensorflow_datasets as tfds

    import tfds_midi  # noqa: F401  (registers crnn_gan_midi)
    from tfds_midi import summary

    builder = tfds.builder(f"crnn_gan_midi/{FLAGS.config}", data_dir=FLAGS.data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=FLAGS.manual_dir)
    )
    print(summary.describe(builder, show_tones=FLAGS.show_tones))


if __name__ == "__main__":
    app.run(main)
