"""The discriminator D: a bidirectional LSTM stack, a Dense+sigmoid shared over time, averaged.

D's last hidden representation R (the concatenated forward and backward outputs of the top
layer, ``[batch, steps, 2 * units]``) is exposed for feature matching.

Optionally (``minibatch_kernels > 0``) the head also sees minibatch features (Salimans et
al. 2016, "Improved techniques for training GANs", section 3.2): how close each window's
R is, step by step, to the other windows of the batch D is looking at. A generator that
collapses to a few songs makes its windows alike, and D can tell from that alone. Hand-
written (Keras has no such layer); `tests/test_models.py` checks it against a loop.

Optionally (``spectral_norm``) every weight matrix of D (LSTM kernels and recurrent kernels,
the minibatch projection, the head) is held to a largest singular value of at most 1 after
each of D's updates (`SpectralNormBound`, a Keras constraint: the projection form of
spectral normalisation, Miyato et al. 2018; Gouk et al. 2021), which bounds how fast D's
verdict can change with its input.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from crnn_gan import tonal_input
from crnn_gan.lstm import FusedLSTM, _l2

#: Dimensions of each minibatch kernel (the C of Salimans et al.; their CIFAR-10 model's 5).
MINIBATCH_KERNEL_DIMS = 5


@keras.saving.register_keras_serializable(package="crnn_gan")
class SpectralNormBound(keras.constraints.Constraint):
    """``W / max(1, sigma(W) / bound)``: the largest singular value sigma of W (a matrix,
    or its reshape to ``[-1, last axis]``), exact by `tf.linalg.svd`, at most `bound`;
    a matrix already within it is unchanged."""

    def __init__(self, bound: float = 1.0):
        self.bound = bound

    def __call__(self, w):
        w = tf.convert_to_tensor(w)
        sigma = tf.linalg.svd(tf.reshape(w, [-1, w.shape[-1]]), compute_uv=False)[0]
        return w / tf.maximum(1.0, sigma / self.bound)

    def get_config(self):
        return {"bound": self.bound}


def minibatch_features(features, projection, kernels: int):
    """Minibatch discrimination features, per step.

    Args:
        features: R, ``[batch, steps, width]``.
        projection: the learned tensor T, ``[width, kernels * dims]``.
        kernels: B, the number of kernels.

    Returns:
        ``[batch, steps, kernels]``: for window i, step t, kernel b,
        ``sum_{j != i} exp(-||M[i, t, b] - M[j, t, b]||_1)`` with ``M = R T`` reshaped to
        ``[batch, steps, kernels, dims]`` (0 for a window unlike all others, batch - 1 for
        a batch of identical windows). Windows are compared within the batch given, i.e.
        within one replica's batch under tf.distribute.
    """
    projected = tf.einsum("nsw,wk->nsk", features, projection)
    projected = tf.reshape(projected, tf.concat([tf.shape(projected)[:2], [kernels, -1]], 0))
    distances = tf.reduce_sum(tf.abs(projected[:, None] - projected[None, :]), axis=-1)
    return tf.reduce_sum(tf.exp(-distances), axis=1) - 1.0  # minus each window's own term


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
        minibatch_kernels: minibatch discrimination kernels whose features the head also
            sees (`minibatch_features`; 0 = off, the paper).
        spectral_norm: every weight matrix's largest singular value is held at <= 1
            (`SpectralNormBound`; False = the paper).
    """

    def __init__(self, num_features: int = 4, units: int = 350, num_layers: int = 2,
                 l2_scale: float = 0.0, implementation: str = "auto",
                 pitch_class_input: bool = False, minibatch_kernels: int = 0,
                 spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        # One constraint for every matrix of D (None: unconstrained).
        self.matrix_constraint = SpectralNormBound() if spectral_norm else None
        # Layers.
        self.forward_lstms, self.backward_lstms = [], []
        for k in range(num_layers):
            self.forward_lstms.append(FusedLSTM(
                units, l2_scale=l2_scale, implementation=implementation,
                constraint=self.matrix_constraint, name=f"forward_{k}"))
            self.backward_lstms.append(FusedLSTM(
                units, l2_scale=l2_scale, go_backwards=True, implementation=implementation,
                constraint=self.matrix_constraint, name=f"backward_{k}"))
        self.head = keras.layers.Dense(1, kernel_regularizer=_l2(l2_scale),
                                       bias_regularizer=_l2(l2_scale),
                                       kernel_constraint=self.matrix_constraint,
                                       name="head")
        # Config.
        self.num_features = num_features
        self.units = units
        self.num_layers = num_layers
        self.l2_scale = l2_scale
        self.implementation = implementation
        self.pitch_class_input = pitch_class_input
        self.minibatch_kernels = minibatch_kernels
        self.spectral_norm = spectral_norm

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
        self.minibatch_projection = None
        if self.minibatch_kernels:
            self.minibatch_projection = self.add_weight(
                shape=(width, self.minibatch_kernels * MINIBATCH_KERNEL_DIMS),
                initializer=keras.initializers.RandomNormal(stddev=0.05),
                regularizer=_l2(self.l2_scale),
                constraint=self.matrix_constraint,
                name="minibatch_projection")
            width += self.minibatch_kernels
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

    def step_logits_from_features(self, features):
        """The head's logit per step ``[batch, steps]``: the shared Dense at each step (of R
        and, with minibatch kernels, R's minibatch features)."""
        if self.minibatch_kernels:
            features = tf.concat([features, minibatch_features(
                features, self.minibatch_projection, self.minibatch_kernels)], axis=-1)
        return self.head(features)[..., 0]

    def logits_from_features(self, features):
        """D's logit per sequence ``[batch]``: the time mean of the per-step logits (what
        the R1 gradient penalty differentiates)."""
        return tf.reduce_mean(self.step_logits_from_features(features), axis=1)

    def step_probabilities_from_features(self, features):
        """P(real) per step ``[batch, steps]``: the sigmoid of each step's logit."""
        return tf.sigmoid(self.step_logits_from_features(features))

    def probabilities_from_features(self, features):
        """P(real) per sequence ``[batch]``: the time mean of the per-step sigmoid."""
        return tf.reduce_mean(self.step_probabilities_from_features(features), axis=1)

    def call(self, steps, training=False):
        return self.probabilities_from_features(self.features(steps))

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features, "units": self.units,
                "num_layers": self.num_layers, "l2_scale": self.l2_scale,
                "implementation": self.implementation,
                "pitch_class_input": self.pitch_class_input,
                "minibatch_kernels": self.minibatch_kernels,
                "spectral_norm": self.spectral_norm}

    def set_pitch_affine(self, scaler) -> None:
        """The pitch-class input's (std, mean) of the pitch columns, from the scaler."""
        self.build()
        if self.pitch_class_input:
            self.pitch_affine.assign(tonal_input.pitch_affine(scaler))
