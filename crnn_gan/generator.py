"""The generator G: a unidirectional LSTM stack fed uniform noise and its own previous output.

At step t the input is ``[z_t, y_{t-1}]``: fresh uniform noise z_t in [0,1]^k (k = 4 per tone)
and G's own output of the previous step (zeros at t = 0, as in the paper; the original code
used noise there). A Dense maps the top layer to the step's features (4 per tone, normalised
units: see `tfds_midi.pipeline.FeatureScaler`).

Ways to run the same weights:
- `free_run(noise)` (and `call`): free running, the feedback loop, any length at call time
  (a `tf.while_loop` of `FusedLSTM.step`s, builtin ops only): the one generation loop of
  training, samples, generate.py and the exports. In training, `free_run(noise,
  gradient=free_run_gradient)` picks its backward explicitly: "autodiff" of that loop, or
  "fast", the same forward with the hand-written backward of `crnn_gan.feedback_loop`;
- `teacher_forced(noise, previous)`: the feedback replaced by given previous steps (next-tone
  pretraining and the baseline); the whole sequence is known, so each layer runs as one
  sequence (`FusedLSTM`: BlockLSTM and its hand-written backward on CPU, Keras' layer and
  autodiff on a GPU or TPU);
- `prime(steps)` then `free_run(noise, initial=...)`: G's state warmed on a primer (teacher
  forcing, in the loop's step kernels), then free running from there: continuing music.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from crnn_gan import feedback_loop, heads, tonal_input
from crnn_gan.lstm import GRADIENTS, FusedLSTM, _l2, gradient_of

#: The noise G's LSTM gets while `Generator.prime` feeds it a primer: the mean of its
#: uniform noise, at every step and in every noise dimension.
PRIMING_NOISE = 0.5


@keras.saving.register_keras_serializable(package="crnn_gan")
class Generator(keras.Model):
    """G: noise ``[batch, steps, noise_dim]`` -> steps ``[batch, steps, num_features]``.

    Args:
        tones_per_step: 1, or 3 for C-RNN-GAN-3.
        units: LSTM units per layer.
        num_layers: LSTM layers.
        l2_scale: L2 penalty scale on all weights.
        implementation: "auto", "block" or "keras" (`crnn_gan.lstm.IMPLEMENTATIONS`): the
            LSTM kernels of teacher forcing and the gradient of the free-running loop in
            training (`free_run_gradient`).
        output_head: "linear" (the paper), "bounded" or "categorical" (`crnn_gan.heads`).
            The bounded and categorical heads hold their ranges/values as non-trainable
            weights (`set_output_range`), saved with the checkpoints and frozen into exports.
        sampling_temperature: the categorical head samples softmax(logits / this) when it
            generates (free running: adversarial training, samples, exports); its
            next-step loss always fits the logits at temperature 1.
        velocity_temperature: the velocities' own sampling temperature (0: the same as
            every other feature's, `sampling_temperature`).
        pitch_class_input: the fed-back previous step also enters layer 0 as pitch-class
            features (`crnn_gan.tonal_input`; needs the "log" representation).
        autoregressive_head: the categorical head draws a step's features one after
            another, each conditioned on G's state and the values drawn before it
            (`crnn_gan.heads.conditional_logits`; its weights: `conditioning`); False: each
            independently given G's state.
    """

    def __init__(self, tones_per_step: int = 1, units: int = 350, num_layers: int = 2,
                 l2_scale: float = 0.0, implementation: str = "auto",
                 output_head: str = "linear", sampling_temperature: float = 1.0,
                 velocity_temperature: float = 0.0, pitch_class_input: bool = False,
                 autoregressive_head: bool = False, **kwargs):
        super().__init__(**kwargs)
        if output_head not in heads.HEADS:
            raise ValueError(f"output_head must be one of {heads.HEADS}, got {output_head!r}")
        if autoregressive_head and output_head != "categorical":
            raise ValueError("autoregressive_head needs output_head='categorical', "
                             f"got {output_head!r}")
        # Layers.
        self.lstms = [
            FusedLSTM(units, l2_scale=l2_scale, implementation=implementation, name=f"lstm_{k}")
            for k in range(num_layers)
        ]
        self.head = keras.layers.Dense(
            heads.head_units(output_head, 4 * tones_per_step),
            kernel_regularizer=_l2(l2_scale), bias_regularizer=_l2(l2_scale), name="head")
        # Config.
        self.tones_per_step = tones_per_step
        self.units = units
        self.num_layers = num_layers
        self.l2_scale = l2_scale
        self.implementation = implementation
        self.output_head = output_head
        self.sampling_temperature = sampling_temperature
        self.velocity_temperature = velocity_temperature
        self.pitch_class_input = pitch_class_input
        self.autoregressive_head = autoregressive_head

    @property
    def num_features(self) -> int:
        return 4 * self.tones_per_step

    @property
    def noise_dim(self) -> int:
        return 4 * self.tones_per_step

    @property
    def feature_temperatures(self) -> float | tuple[float, ...]:
        """The categorical head's sampling temperature, one float or one per feature
        (`crnn_gan.heads.feature_temperatures`)."""
        return heads.feature_temperatures(self.sampling_temperature, self.velocity_temperature,
                                          self.num_features)

    def build(self, input_shape=None):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        self.lstms[0].build((None, None, self.noise_dim + self.feedback_width))
        for lstm in self.lstms[1:]:
            lstm.build((None, None, self.units))
        self.head.build((None, self.units))
        # The head's fixed ranges/values (model units), set from the data by set_output_range.
        self.output_range = None
        if self.output_head == "bounded":
            self.output_range = self.add_weight(
                shape=(self.num_features, 2), initializer="zeros", trainable=False,
                name="output_bounds")
        elif self.output_head == "categorical":
            self.output_range = self.add_weight(
                shape=(self.num_features, heads.CATEGORICAL_BINS), initializer="zeros",
                trainable=False, name="output_bins")
        self.pitch_affine = None
        if self.pitch_class_input:
            self.pitch_affine = self.add_weight(
                shape=(self.tones_per_step, 2), initializer="ones", trainable=False,
                name="pitch_affine")
        # C-RNN-GAN-3, categorical head: an absent slot's four values (model units of raw
        # zeros), set by set_output_range.
        self.absent_step = None
        if self.output_head == "categorical" and self.tones_per_step > 1:
            self.absent_step = self.add_weight(
                shape=(self.num_features,), initializer="zeros", trainable=False,
                name="absent_step")
        # The autoregressive head's conditioning layers (`heads.conditioning_shapes`); the
        # output kernels start at zero, so a new one draws as the independent head does.
        self.conditioning = None
        if self.autoregressive_head:
            self.conditioning = [
                self.add_weight(
                    shape=shape, name=f"conditioning_{name}",
                    initializer=("zeros" if name in ("bias", "output_kernel")
                                 else "glorot_uniform"),
                    regularizer=_l2(self.l2_scale))
                for name, shape in heads.conditioning_shapes(
                    self.units, self.num_features).items()]
        self.built = True

    @property
    def feedback_width(self) -> int:
        """Width of the fed-back input of layer 0: the previous step (and its pitch-class
        features)."""
        extra = tonal_input.FEATURES_PER_TONE * self.tones_per_step
        return self.num_features + (extra if self.pitch_class_input else 0)

    def _feedback(self, previous, pitch_affine):
        """Layer 0's fed-back input ``[..., feedback_width]`` from previous steps."""
        if not self.pitch_class_input:
            return previous
        return tf.concat(
            [previous, tonal_input.pitch_class_features(previous, pitch_affine)], axis=-1)

    def set_output_range(self, songs, scaler) -> None:
        """Sets the constants G takes from the data: the bounded head's bounds or the
        categorical head's values, and the pitch-class input's affine, from raw training
        songs ``[n_i, num_features]`` and their `FeatureScaler` (nothing for "linear")."""
        self.build()
        if self.pitch_class_input:
            self.pitch_affine.assign(tonal_input.pitch_affine(scaler))
        if self.output_head == "bounded":
            self.output_range.assign(heads.output_bounds(scaler, self.tones_per_step))
        elif self.output_head == "categorical":
            self.output_range.assign(heads.output_bins(songs, scaler, self.tones_per_step))
        if self.absent_step is not None:
            self.absent_step.assign(heads.absent_values(scaler, self.tones_per_step))

    def initial_state(self, batch_size):
        """Zero LSTM states ``[(h, c)] * num_layers`` and a zero previous output."""
        zeros = tf.zeros([batch_size, self.units])
        return [(zeros, zeros)] * self.num_layers, tf.zeros([batch_size, self.num_features])

    def weights_as_tensors(self):
        """Every weight read once: ``([(kernel, recurrent, bias)] * layers, (head_w, head_b),
        (output_range or None, pitch_affine or None, absent_step or None,
        conditioning or None))``."""
        def optional(variable):
            return None if variable is None else tf.convert_to_tensor(variable)
        conditioning = (None if self.conditioning is None
                        else [tf.convert_to_tensor(w) for w in self.conditioning])
        return ([lstm.weights_as_tensors() for lstm in self.lstms],
                (tf.convert_to_tensor(self.head.kernel), tf.convert_to_tensor(self.head.bias)),
                (optional(self.output_range), optional(self.pitch_affine),
                 optional(self.absent_step), conditioning))

    def _emit(self, dense_output, noise_t, output_range, absent_step, hidden=None,
              conditioning=None):
        """The head's transform (`crnn_gan.heads.emit`) of a Dense output ``[..., units]``
        (`hidden`: the top LSTM output under it, for the autoregressive head)."""
        return heads.emit(self.output_head, dense_output, noise_t, bins=output_range,
                          bounds=output_range, temperature=self.feature_temperatures,
                          absent=absent_step, hidden=hidden, conditioning=conditioning)

    def step(self, noise_t, states, previous, noise_projection=None, weights=None):
        """One step of the feedback loop.

        Args:
            noise_t: ``[batch, noise_dim]``; may be None when `noise_projection` is given
                and the head does not sample (linear, bounded).
            states: ``[(h, c)] * num_layers``, each ``[batch, units]``.
            previous: G's previous output ``[batch, num_features]``.
            noise_projection: precomputed ``noise_t @ kernel[:noise_dim]`` of layer 0.
            weights: `weights_as_tensors()`, read once outside the caller's loop.

        Returns:
            ``(output [batch, num_features], new states)``.
        """
        lstm_weights, (head_kernel, head_bias), (
            output_range, pitch_affine, absent_step, conditioning) = (
                weights or self.weights_as_tensors())
        if noise_projection is None:
            noise_projection = tf.matmul(noise_t, lstm_weights[0][0][: self.noise_dim])
        new_states = self._advance(noise_projection, states, previous, lstm_weights,
                                   pitch_affine)
        top = new_states[-1][0]
        dense_output = tf.matmul(top, head_kernel) + head_bias
        return self._emit(dense_output, noise_t, output_range, absent_step, top,
                          conditioning), new_states

    def _advance(self, noise_projection, states, previous, lstm_weights, pitch_affine):
        """The LSTM stack's step (no head): layer 0 takes the projected noise and the fed-back
        `previous`; returns the new ``[(h, c)] * num_layers``."""
        kernel = lstm_weights[0][0]
        projection = noise_projection + tf.matmul(self._feedback(previous, pitch_affine),
                                                  kernel[self.noise_dim:])
        new_states = [self.lstms[0].step(None, states[0], input_projection=projection,
                                         weights=lstm_weights[0])]
        for lstm, state, w in zip(self.lstms[1:], states[1:], lstm_weights[1:]):
            new_states.append(lstm.step(new_states[-1][0], state, weights=w))
        return new_states

    def prime(self, previous_steps, noise=None):
        """Warms G's state on given steps (a primer), teacher forced: the state G would have
        after generating them itself, ready for `free_run(..., initial=)` or `step` to
        continue them. The one priming loop: generate.py and the exports' ``prime``
        signature run it.

        Primer step t (t = 0..n-1) is fed as G's previous output at step t + 1: step t runs
        the LSTM stack on ``[z_t, p_{t-1}]`` (``p_{-1}`` = zeros, as at the start of free
        running), so after n steps the state is the one that produced ``p_{n-1}``, and the
        returned previous output is ``p_{n-1}``. The head is not applied (the primer stands
        in for its outputs); builtin TFLite ops only, n free at run time.

        Args:
            previous_steps: float32 ``[batch, n, num_features]`` in normalised units, n >= 0.
            noise: ``[batch, n, noise_dim]``: the LSTM's noise during priming; None (the
                default): `PRIMING_NOISE` (0.5, the mean of G's uniform noise) at every
                step, so that the state depends on the primer alone, not on a seed.

        Returns:
            ``(states [(h, c)] * num_layers, previous [batch, num_features])``; zero states
            and a zero previous output for n = 0.
        """
        previous_steps = tf.convert_to_tensor(previous_steps, tf.float32)
        batch, steps = tf.shape(previous_steps)[0], tf.shape(previous_steps)[1]
        lstm_weights, _, (_, pitch_affine, _, _) = self.weights_as_tensors()
        noise_kernel = lstm_weights[0][0][: self.noise_dim]
        if noise is None:  # the same projection at every step
            constant = tf.matmul(tf.fill([batch, self.noise_dim], PRIMING_NOISE), noise_kernel)
            noise_projection = None
        else:
            noise_projection = tf.transpose(
                tf.matmul(tf.convert_to_tensor(noise, tf.float32), noise_kernel), [1, 0, 2])
        time_major = tf.transpose(previous_steps, [1, 0, 2])
        states, previous = self.initial_state(batch)

        def body(t, previous, states):
            projection = constant if noise_projection is None else noise_projection[t]
            states = self._advance(projection, states, previous, lstm_weights, pitch_affine)
            return t + 1, time_major[t], states

        _, previous, states = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), previous, states),
            maximum_iterations=steps)
        return states, previous

    @property
    def has_fast_backward(self) -> bool:
        """Whether `crnn_gan.feedback_loop`'s hand-written backward covers this G: the linear
        head without the pitch-class input."""
        return self.output_head == "linear" and not self.pitch_class_input

    @property
    def free_run_gradient(self) -> str:
        """The gradient G's free-running loop gets in training (`free_run`'s `gradient`):
        `crnn_gan.lstm.gradient_of` the implementation ("fast" on CPU, "autodiff" on a GPU
        or TPU), and "autodiff" where the hand-written backward does not reach
        (`has_fast_backward`)."""
        return gradient_of(self.implementation) if self.has_fast_backward else "autodiff"

    def free_run(self, noise, static_batch=None, initial=None, return_state=False,
                 gradient="autodiff"):
        """The generation loop (one home: `call`, training, generate.py and the exports).

        Args:
            noise: float32 ``[batch, steps, noise_dim]``, uniform in [0, 1].
            static_batch: the batch size as a Python int where it must be static (TFLite's
                TensorArray element shape: the exports), else None.
            initial: ``(states, previous)`` to start from (`prime`, or the state a previous
                call returned); None: zero states and a zero previous output (the paper).
            return_state: also return the state after the last step.
            gradient: the backward pass a `tf.GradientTape` gets (`crnn_gan.lstm.GRADIENTS`):
                "autodiff" of this loop (the reference), or "fast": the same forward with
                the hand-written backward of `crnn_gan.feedback_loop` (faster on CPU; linear
                head, no pitch-class input, no `initial` or `return_state`).

        Returns:
            float32 ``[batch, steps, num_features]`` in normalised units; with
            `return_state`, ``(outputs, states, previous)``.

        Raises:
            ValueError: an unknown `gradient`, or "fast" where it does not apply.
        """
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
        if gradient == "fast":
            if not self.has_fast_backward or initial is not None or return_state:
                raise ValueError("the fast gradient needs the linear head without the "
                                 "pitch-class input, no initial state and no returned state")
            return self._free_run_fast_backward(noise)
        batch, steps = tf.shape(noise)[0], tf.shape(noise)[1]
        weights = self.weights_as_tensors()
        first_kernel = weights[0][0][0]
        # Layer 0's noise input for all steps in one matmul, time-major.
        noise_projection = tf.transpose(
            tf.matmul(noise, first_kernel[: self.noise_dim]), [1, 0, 2])
        time_major_noise = tf.transpose(noise, [1, 0, 2])
        states, previous = self.initial_state(batch) if initial is None else initial
        outputs = tf.TensorArray(tf.float32, size=steps,
                                 element_shape=[static_batch, self.num_features])

        def body(t, previous, states, outputs):
            output, states = self.step(time_major_noise[t], states, previous,
                                       noise_projection[t], weights)
            return t + 1, output, states, outputs.write(t, output)

        _, previous, states, outputs = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), previous, states, outputs),
            maximum_iterations=steps)
        outputs = tf.transpose(outputs.stack(), [1, 0, 2])
        return (outputs, states, previous) if return_state else outputs

    def call(self, noise, training=False):
        """Free-running generation, `free_run` (its gradient: autodiff; training picks its
        gradient with `free_run(noise, gradient=free_run_gradient)`).

        Args:
            noise: float32 ``[batch, steps, noise_dim]``, uniform in [0, 1].

        Returns:
            float32 ``[batch, steps, num_features]`` in normalised units.
        """
        del training  # generation is the same in training and inference
        return self.free_run(tf.convert_to_tensor(noise, tf.float32))

    def _free_run_fast_backward(self, noise):
        """`free_run`'s outputs through `crnn_gan.feedback_loop.free_running` (the same
        forward arithmetic; a hand-written backward)."""
        noise = tf.convert_to_tensor(noise, tf.float32)
        lstm_weights, (head_kernel, head_bias), _ = self.weights_as_tensors()
        first_kernel = lstm_weights[0][0]
        noise_projection = tf.transpose(
            tf.matmul(noise, first_kernel[: self.noise_dim]), [1, 0, 2])
        flat = [*lstm_weights[0][1:]]
        for layer_weights in lstm_weights[1:]:
            flat += layer_weights
        outputs = feedback_loop.free_running(
            noise_projection, first_kernel[self.noise_dim:], *flat, head_kernel, head_bias)
        return tf.transpose(outputs, [1, 0, 2])

    def teacher_forced_dense(self, noise, previous):
        """The head's Dense output with the true previous steps as feedback.

        Args:
            noise: ``[batch, steps, noise_dim]`` uniform in [0, 1].
            previous: ``[batch, steps, num_features]``: the step before each position
                (zeros at position 0), normalised units.

        Returns:
            ``(dense [batch, steps, head units], top [batch, steps, units])``: the head's
            Dense output (see `crnn_gan.heads.head_units`) and the top LSTM layer's output
            under it.
        """
        hidden = tf.concat([noise, self._feedback(previous, self.pitch_affine)], axis=-1)
        for lstm in self.lstms:
            hidden, _, _ = lstm(hidden)
        return self.head(hidden), hidden

    def _conditioning(self):
        return None if self.conditioning is None else list(self.conditioning)

    def teacher_forced(self, noise, previous):
        """Next-step outputs with the true previous steps as feedback (the head applied,
        sampling with `noise` for the categorical head): ``[batch, steps, num_features]``."""
        dense, top = self.teacher_forced_dense(noise, previous)
        return self._emit(dense, noise, self.output_range, self.absent_step, top,
                          self._conditioning())

    def next_step_loss(self, noise, windows):
        """The head's next-step loss (`crnn_gan.heads.next_step_loss`) of real windows
        ``[batch, T, num_features]`` (normalised), teacher forced; scalar."""
        dense, top = self.teacher_forced_dense(noise, shift_right(windows))
        return heads.next_step_loss(self.output_head, dense, windows, bins=self.output_range,
                                    bounds=self.output_range, hidden=top,
                                    conditioning=self._conditioning(),
                                    absent=self.absent_step)

    def sample_log_probability(self, noise, steps, per_feature=False):
        """Log-probability ``[batch, T]`` (nats, summed over a step's features; with
        `per_feature` each feature's term, ``[batch, T, num_features]``) that G drew
        `steps` ``[batch, T, num_features]`` (its own free-running outputs from `noise`,
        normalised units): teacher forcing on them reproduces the states that drew them
        (`crnn_gan.heads.sample_log_probability`). Categorical head only.

        G's noise is both its LSTM input and the draw's sampling variable, so a step's
        logits may depend on the uniform number that draws from them; the score function
        treats each draw as one from softmax(logits / temperature), exact where G ignores
        that dependence (as maximum likelihood teaches it to: there the noise carries no
        information about the target).
        """
        return heads.log_probability_of(self.draw_log_probabilities(noise, steps), steps,
                                        self.output_range, per_feature)

    def draw_log_probabilities(self, noise, steps):
        """Every bin's log-probability ``[batch, T, num_features, K]`` (nats) under the
        distribution each of `steps` was drawn from: teacher forcing on G's own
        free-running outputs from `noise` (normalised units) reproduces the states that
        drew them (`crnn_gan.heads.draw_log_probabilities`). Categorical head only."""
        dense, top = self.teacher_forced_dense(noise, shift_right(steps))
        return heads.draw_log_probabilities(dense, steps, self.output_range,
                                            self.feature_temperatures, hidden=top,
                                            conditioning=self._conditioning())

    def get_config(self):
        return {**super().get_config(), "tones_per_step": self.tones_per_step,
                "units": self.units, "num_layers": self.num_layers, "l2_scale": self.l2_scale,
                "implementation": self.implementation, "output_head": self.output_head,
                "sampling_temperature": self.sampling_temperature,
                "velocity_temperature": self.velocity_temperature,
                "pitch_class_input": self.pitch_class_input,
                "autoregressive_head": self.autoregressive_head}


def shift_right(steps):
    """``[batch, T, F]`` -> the previous step of each position (zeros at position 0)."""
    return tf.pad(steps, [[0, 0], [1, 0], [0, 0]])[:, :-1]
