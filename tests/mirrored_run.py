"""Run in a fresh process: a tiny GAN run under MirroredStrategy over 2 logical CPUs (one
`training.train` call, as `train.py --strategy=mirrored` makes), its generator's trainable
weights saved to an .npz. Arguments: repository root, --model_dir, --epochs, output .npz.

One run per process: a second MirroredStrategy in the same process reuses collective
instance keys and fails with a shape mismatch between replicas."""

import sys

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

sys.path.insert(0, sys.argv[1])
from crnn_gan import config as config_lib  # noqa: E402
from crnn_gan import training  # noqa: E402
from tests import midi_fixtures  # noqa: E402

model_dir, epochs, output = sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
songs = [midi_fixtures.random_song(rng, 40) for _ in range(12)]
config = config_lib.preset("tiny").replace(epochs=epochs)
training.train(config, training.RunSpec(model_dir=model_dir, samples_per_epoch=0, seed=1,
                                        strategy="mirrored"), songs=songs)
generator = training.build_generator(config)
generator.build()
generator.load_weights(f"{model_dir}/generator.weights.h5")
np.savez(output, *[w.numpy() for w in generator.trainable_variables])
