"""Writes a demo generator export for the web page when no trained one is at hand.

``python web/demo_export.py --output web/models/demo [--units 32] [--seed 0]``

The generator has random weights, scaled up 3x so that its LSTM wanders instead of settling,
and a feature scaler fitted to its own output so that its tones land in plausible ranges
(lengths around an eighth note, pitches around E4, velocities around 80, a new onset every
eighth note or so): the page has something to load, draw and play before a trained model
exists. It is **untrained** and sounds like random notes. The files are exactly what
``python -m export`` writes (``export.export.export_loaded``), so the page treats them like
any other export.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Where the demo's tones should land (raw units: length ticks, Hz, velocity, delta ticks):
# mean and std per tone slot; slots 2 and 3 of C-RNN-GAN-3 are often silent (velocity < 0.5).
TARGET_MEAN = ((200.0, 330.0, 80.0, 190.0), (200.0, 260.0, 20.0, 0.0), (200.0, 420.0, 0.0, 0.0))
TARGET_STD = ((100.0, 80.0, 15.0, 90.0), (100.0, 60.0, 40.0, 1.0), (100.0, 80.0, 40.0, 1.0))
WEIGHT_SCALE = 3.0


def build(output: str, *, units: int = 64, num_layers: int = 2, tones_per_step: int = 1,
          seed: int = 0, weight_scale: float = WEIGHT_SCALE, quantizations=()) -> dict:
    """Exports a random-weight generator into ``output``; returns the export summary.

    ``weight_scale`` multiplies the initialiser's weights: 3 (the default) makes the LSTM
    wander, which sounds livelier but is chaotic, so rounding differences between runtimes
    grow over a free-running song; tests and benchmarks that compare runtimes over many
    steps use a smaller scale (1-2), where they stay at float rounding.
    """
    import keras
    import numpy as np

    from crnn_gan import config as config_lib
    from crnn_gan import training
    from export import export as export_lib
    from tfds_midi import pipeline

    config = config_lib.preset("tiny", units=units, num_layers=num_layers,
                               tones_per_step=tones_per_step)
    keras.utils.set_random_seed(seed)
    generator = training.build_generator(config)
    generator.build()
    for variable in generator.weights:
        variable.assign(variable.numpy() * weight_scale)
    # Fit the scaler to the generator's output on 200 steps of noise: raw = out * std + mean.
    noise = np.random.default_rng(seed).uniform(size=(1, 200, 4 * tones_per_step))
    out = np.asarray(generator(noise.astype(np.float32)))[0]
    spread = np.maximum(out.std(axis=0), 1e-3)
    std = np.concatenate(TARGET_STD[:tones_per_step]) / spread
    mean = np.concatenate(TARGET_MEAN[:tones_per_step]) - out.mean(axis=0) * std
    scaler = pipeline.FeatureScaler(mean.astype(np.float32), std.astype(np.float32))
    return export_lib.export_loaded(generator, scaler, output, quantizations=quantizations,
                                    source=f"web/demo_export.py (untrained, {num_layers} x "
                                           f"{units} units, seed {seed}, "
                                           f"weights x{weight_scale:g})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder to write the export into")
    parser.add_argument("--units", type=int, default=64, help="LSTM units per layer")
    parser.add_argument("--num_layers", type=int, default=2, help="LSTM layers")
    parser.add_argument("--tones_per_step", type=int, default=1, choices=(1, 3))
    parser.add_argument("--seed", type=int, default=0, help="weight seed")
    parser.add_argument("--weight_scale", type=float, default=WEIGHT_SCALE,
                        help="multiplies the initialiser's weights (3: lively but chaotic)")
    args = parser.parse_args(argv)
    build(args.output, units=args.units, num_layers=args.num_layers,
          tones_per_step=args.tones_per_step, seed=args.seed, weight_scale=args.weight_scale)
    print(f"wrote a demo (untrained) generator export to {args.output}")


if __name__ == "__main__":
    main()
