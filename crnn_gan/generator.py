"""The generator G: a unidirectional LSTM stack fed uniform noise and its own previous output.

At step t the input is ``[z_t, y_{t-1}]``: fresh uniform noise z_t in [0,1]^k (k = 4 per tone)
and G's own output of the previous step (zeros at t = 0, as in the paper; the original code
used noise there). A Dense maps the top layer to the step's features (4 per tone, normalised
units: see `tfds_midi.pipeline.FeatureScaler`).

Two ways to run the same weights:
- `call(noise)`: free running, the feedback loop, any length at call time (a `tf.while_loop`
  of `FusedLSTM.step`s, builtin ops only); with ``training=True`` the same loop with a
  backward pass of its own (`crnn_gan.feedback_loop`);
- `teacher_forced(noise, previous)`: the feedback replaced by given previous steps (next-tone
  pretraining and the baseline); the whole sequence is known, so each layer runs as one
  fused sequence kernel (BlockLSTM on CPU, cuDNN on GPU).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from crnn_gan import feedback_loop
from crnn_gan.lstm import FusedLSTM, _l2


@keras.saving.register_keras_serializable(package="crnn_gan")
class Generator(keras.Model):
    """G: noise ``[batch, steps, noise_dim]`` -> steps ``[batch, steps, num_features]``.

    Args:
        tones_per_step: 1, or 3 for C-RNN-GAN-3.
        units: LSTM units per layer.
        num_layers: LSTM layers.
        l2_scale: L2 penalty scale on all weights.
        implementation: LSTM kernels for teacher forcing ("auto", "block", "keras").
    """

    def __init__(self, tones_per_step: int = 1, units: int = 350, num_layers: int = 2,
                 l2_scale: float = 0.0, implementation: str = "auto", **kwargs):
        super().__init__(**kwargs)
        # Layers.
        self.lstms = [
            FusedLSTM(units, l2_scale=l2_scale, implementation=implementation, name=f"lstm_{k}")
            for k in range(num_layers)
        ]
        self.head = keras.layers.Dense(4 * tones_per_step, kernel_regularizer=_l2(l2_scale),
                                       bias_regularizer=_l2(l2_scale), name="head")
        # Config.
        self.tones_per_step = tones_per_step
        self.units = units
        self.num_layers = num_layers
        self.l2_scale = l2_scale
        self.implementation = implementation

    @property
    def num_features(self) -> int:
        return 4 * self.tones_per_step

    @property
    def noise_dim(self) -> int:
        return 4 * self.tones_per_step

    def build(self, input_shape=None):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        self.lstms[0].build((None, None, self.noise_dim + self.num_features))
        for lstm in self.lstms[1:]:
            lstm.build((None, None, self.units))
        self.head.build((None, self.units))
        self.built = True

    def initial_state(self, batch_size):
        """Zero LSTM states ``[(h, c)] * num_layers`` and a zero previous output."""
        zeros = tf.zeros([batch_size, self.units])
        return [(zeros, zeros)] * self.num_layers, tf.zeros([batch_size, self.num_features])

    def weights_as_tensors(self):
        """Every weight read once: ``([(kernel, recurrent, bias)] * layers, (head_w, head_b))``."""
        return ([lstm.weights_as_tensors() for lstm in self.lstms],
                (tf.convert_to_tensor(self.head.kernel), tf.convert_to_tensor(self.head.bias)))

    def step(self, noise_t, states, previous, noise_projection=None, weights=None):
        """One step of the feedback loop.

        Args:
            noise_t: ``[batch, noise_dim]`` (ignored when `noise_projection` is given).
            states: ``[(h, c)] * num_layers``, each ``[batch, units]``.
            previous: G's previous output ``[batch, num_features]``.
            noise_projection: precomputed ``noise_t @ kernel[:noise_dim]`` of layer 0.
            weights: `weights_as_tensors()`, read once outside the caller's loop.

        Returns:
            ``(output [batch, num_features], new states)``.
        """
        lstm_weights, (head_kernel, head_bias) = weights or self.weights_as_tensors()
        kernel = lstm_weights[0][0]
        if noise_projection is None:
            noise_projection = tf.matmul(noise_t, kernel[: self.noise_dim])
        projection = noise_projection + tf.matmul(previous, kernel[self.noise_dim:])
        new_states = [self.lstms[0].step(None, states[0], input_projection=projection,
                                         weights=lstm_weights[0])]
        for lstm, state, w in zip(self.lstms[1:], states[1:], lstm_weights[1:]):
            new_states.append(lstm.step(new_states[-1][0], state, weights=w))
        return tf.matmul(new_states[-1][0], head_kernel) + head_bias, new_states

    def call(self, noise, training=False):
        """Free-running generation.

        Args:
            noise: float32 ``[batch, steps, noise_dim]``, uniform in [0, 1].

        Returns:
            float32 ``[batch, steps, num_features]`` in normalised units.
        """
        noise = tf.convert_to_tensor(noise, tf.float32)
        batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
        weights = self.weights_as_tensors()
        first_kernel = weights[0][0][0]
        # Layer 0's noise input for all steps in one matmul, time-major.
        noise_projection = tf.transpose(
            tf.matmul(noise, first_kernel[: self.noise_dim]), [1, 0, 2])
        if training:  # the same loop, with a faster backward pass
            lstm_weights, head_weights = weights
            flat = [*lstm_weights[0][1:]]
            for layer_weights in lstm_weights[1:]:
                flat += layer_weights
            outputs = feedback_loop.free_running(
                noise_projection, first_kernel[self.noise_dim:], *flat, *head_weights)
            return tf.transpose(outputs, [1, 0, 2])
        states, previous = self.initial_state(batch)
        outputs = tf.TensorArray(tf.float32, size=steps, element_shape=[None, self.num_features])

        def body(t, previous, states, outputs):
            output, states = self.step(None, states, previous, noise_projection[t], weights)
            return t + 1, output, states, outputs.write(t, output)

        _, _, _, outputs = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), previous, states, outputs),
            maximum_iterations=steps)
        return tf.transpose(outputs.stack(), [1, 0, 2])

    def teacher_forced(self, noise, previous):
        """Next-step prediction with the true previous steps as feedback.

        Args:
            noise: ``[batch, steps, noise_dim]`` uniform in [0, 1].
            previous: ``[batch, steps, num_features]``: the step before each position
                (zeros at position 0), normalised units.

        Returns:
            ``[batch, steps, num_features]``: the prediction of each position.
        """
        hidden = tf.concat([noise, previous], axis=-1)
        for lstm in self.lstms:
            hidden, _, _ = lstm(hidden)
        return self.head(hidden)

    def get_config(self):
        return {**super().get_config(), "tones_per_step": self.tones_per_step,
                "units": self.units, "num_layers": self.num_layers, "l2_scale": self.l2_scale,
                "implementation": self.implementation}


def shift_right(steps):
    """``[batch, T, F]`` -> the previous step of each position (zeros at position 0)."""
    return tf.pad(steps, [[0, 0], [1, 0], [0, 0]])[:, :-1]
