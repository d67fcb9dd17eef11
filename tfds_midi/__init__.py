"""MIDI data for C-RNN-GAN: the tone codec, the TFDS builder and the tf.data pipeline.

Importing this package registers the `crnn_gan_midi` dataset, so that
``tfds.load("crnn_gan_midi/default")`` works.
"""

from tfds_midi import crnn_gan_midi  # noqa: F401  (registers the TFDS builder)
