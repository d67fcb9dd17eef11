"""The discriminator D: a bidirectional LSTM stack, a Dense+sigmoid shared over time, averaged.

D's last hidden representation R (the concatenated forward and backward outputs of the top
layer, ``[batch, steps, 2 * units]``) is exposed for feature matching.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from crnn_gan import tonal_input
from crnn_gan.lstm import FusedLSTM, _l2


@keras.saving.register_keras_serializable(package="crnn_gan")
class Discriminator(keras.Model):
    """D: steps ``[batch, steps, num_features]`` (normalised) -> P(real) ``[batch]``.

    Args:
        num_features: features per step (4 per tone).
        units: LSTM units per direction and layer.
        num_layers: bidirectional layers.
        l2_scale: L2 penalty scale on all weights.
        implementation: LSTM kernels ("auto", "block", "keras").
        pitch_class_input: the input steps also enter as pitch-class features
            (`crnn_gan.tonal_input`; `set_pitch_affine` from the scaler).
    """

    def __init__(self, num_features: int = 4, units: int = 350, num_layers: int = 2,
                 l2_scale: float = 0.0, implementation: str = "auto",
                 pitch_class_input: bool = False, **kwargs):
        super().__init__(**kwargs)
        # Layers.
        self.forward_lstms, self.backward_lstms = [], []
        for k in range(num_layers):
            self.forward_lstms.append(FusedLSTM(
                units, l2_scale=l2_scale, implementation=implementation, name=f"forward_{k}"))
            self.backward_lstms.append(FusedLSTM(
                units, l2_scale=l2_scale, go_backwards=True, implementation=implementation,
                name=f"backward_{k}"))
        self.head = keras.layers.Dense(1, kernel_regularizer=_l2(l2_scale),
                                       bias_regularizer=_l2(l2_scale), name="head")
        # Config.
        self.num_features = num_features
        self.units = units
        self.num_layers = num_layers
        self.l2_scale = l2_scale
        self.implementation = implementation
        self.pitch_class_input = pitch_class_input

    def build(self, input_shape=None):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        width = self.num_features
        self.pitch_affine = None
        if self.pitch_class_input:
            tones = self.num_features // 4
            width += tonal_input.FEATURES_PER_TONE * tones
            self.pitch_affine = self.add_weight(shape=(tones, 2), initializer="ones",
                                                trainable=False, name="pitch_affine")
        for forward, backward in zip(self.forward_lstms, self.backward_lstms):
            forward.build((None, None, width))
            backward.build((None, None, width))
            width = 2 * self.units
        self.head.build((None, None, width))
        self.built = True

    def features(self, steps):
        """R: the last hidden representation, ``[batch, steps, 2 * units]``."""
        hidden = steps
        if self.pitch_class_input:
            hidden = tf.concat(
                [steps, tonal_input.pitch_class_features(steps, self.pitch_affine)], axis=-1)
        for forward, backward in zip(self.forward_lstms, self.backward_lstms):
            hidden = tf.concat([forward(hidden)[0], backward(hidden)[0]], axis=-1)
        return hidden

    def step_probabilities_from_features(self, features):
        """P(real) per step ``[batch, steps]``: the shared Dense + sigmoid at each step."""
        return tf.sigmoid(self.head(features))[..., 0]

    def probabilities_from_features(self, features):
        """P(real) per sequence ``[batch]``: the time mean of the per-step sigmoid."""
        return tf.reduce_mean(self.step_probabilities_from_features(features), axis=1)

    def call(self, steps, training=False):
        return self.probabilities_from_features(self.features(steps))

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "units": self.units,
                "num_layers": self.num_layers, "l2_scale": self.l2_scale,
                "implementation": self.implementation,
                "pitch_class_input": self.pitch_class_input}

    def set_pitch_affine(self, scaler) -> None:
        """The pitch-class input's (std, mean) of the pitch columns, from the scaler."""
        self.build()
        if self.pitch_class_input:
            self.pitch_affine.assign(tonal_input.pitch_affine(scaler))
