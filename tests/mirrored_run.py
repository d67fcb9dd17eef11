"""Run in a fresh process: three tiny GAN runs under MirroredStrategy over 2 logical CPUs,
one after another in this process (`training.train` as `train.py --strategy=mirrored`
calls it): 3 epochs straight, then 2 epochs trained on to 3 from the backup. Saves each
finished run's generator weights to OUTPUT_{straight,resumed}.npz. Arguments: repository
root, a scratch folder, OUTPUT prefix.

Three runs in one process also checks that `distribute.make_strategy` hands every run the
same strategy: a second MirroredStrategy in one process fails its first all-reduce."""

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

scratch, output = sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
songs = [midi_fixtures.random_song(rng, 40) for _ in range(12)]
config = config_lib.preset("tiny").replace(epochs=3)  # 1 pretraining epoch, 2 adversarial


def run(folder, epochs):
    model_dir = f"{scratch}/{folder}"
    training.train(config.replace(epochs=epochs),
                   training.RunSpec(model_dir=model_dir, samples_per_epoch=0, seed=1,
                                    strategy="mirrored"), songs=songs)
    generator = training.build_generator(config)
    generator.build()
    generator.load_weights(f"{model_dir}/generator.weights.h5")
    return [w.numpy() for w in generator.trainable_variables]


np.savez(f"{output}_straight.npz", *run("straight", 3))
np.savez(f"{output}_after_two.npz", *run("resumed", 2))
np.savez(f"{output}_resumed.npz", *run("resumed", 3))
