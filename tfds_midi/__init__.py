"""MIDI data for C-RNN-GAN: the tone codec, the TFDS builder and the tf.data pipeline.

Importing the package imports nothing, so that the numpy parts (`tfds_midi.codec`,
`tfds_midi.smf`, and `crnn_gan.metrics` and `crnn_gan.quality` on top of them) load without
TensorFlow. The `crnn_gan_midi` dataset is registered with TFDS by importing its builder
package: ``import tfds_midi.crnn_gan_midi`` (`tfds_midi.prepare.get_builder` does), after
which ``tfds.load("crnn_gan_midi/default")`` works.
"""
