"""The crnn_gan_midi TFDS dataset (importing this registers it)."""

from tfds_midi.crnn_gan_midi.crnn_gan_midi_dataset_builder import Builder

__all__ = ["Builder"]
