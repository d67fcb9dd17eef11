"""Pitch-class features of the model's own steps: what G and D read besides the raw values.

A tone's pitch reaches the LSTMs as one real number (MIDI pitch, standardised). Whether a
tone fits a key depends on its pitch **class** (pitch mod 12), a periodic function of that
number that an LSTM can only approximate with many units; so G drifts from key to key and D
cannot tell. With `Config.pitch_class_input`, G's feedback input and D's input also get the
Fourier basis of the pitch class of every tone slot:

    sin(2 pi j p / 12), cos(2 pi j p / 12) for j = 1..6   (12 values; p = MIDI pitch)

which identifies the 12 classes exactly (linearly: the discrete Fourier basis of Z/12),
is smooth in p (so gradients flow through G's outputs) and is octave invariant. p is
recovered from the normalised feature with the training split's mean and std of the pitch
column (`pitch_affine`); the representation must be "log" (pitch = MIDI number). Builtin
TFLite ops only (SIN, COS).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

HARMONICS = 6
FEATURES_PER_TONE = 2 * HARMONICS
_PITCH_COLUMN = 1


def pitch_affine(scaler) -> np.ndarray:
    """``[tones_per_step, 2]`` float32: (std, mean) of each slot's pitch column, so that
    MIDI pitch = normalised * std + mean. Needs the "log" representation."""
    if scaler.representation != "log":
        raise ValueError("pitch-class input needs representation='log' (MIDI pitch units), "
                         f"got {scaler.representation!r}")
    std = np.asarray(scaler.std, np.float32)[_PITCH_COLUMN::4]
    mean = np.asarray(scaler.mean, np.float32)[_PITCH_COLUMN::4]
    return np.stack([std, mean], axis=-1)


def pitch_class_features(steps, affine):
    """Steps ``[..., 4 * k]`` (normalised) -> ``[..., 12 * k]`` pitch-class features.

    Args:
        steps: normalised steps, k tone slots of 4 features.
        affine: `pitch_affine` ``[k, 2]``.
    """
    pitch = steps[..., _PITCH_COLUMN::4] * affine[:, 0] + affine[:, 1]  # [..., k] MIDI
    harmonics = tf.constant(2.0 * np.pi / 12.0 * np.arange(1, HARMONICS + 1), tf.float32)
    angles = pitch[..., None] * harmonics  # [..., k, 6]
    features = tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)  # [..., k, 12]
    shape = tf.concat([tf.shape(steps)[:-1], [FEATURES_PER_TONE * affine.shape[0]]], axis=0)
    return tf.reshape(features, shape)
