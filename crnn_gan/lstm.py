"""The LSTM: its cell, the choice between the fast path and the reference, three ways to run.

**Two implementations of the same weights and arithmetic** (`IMPLEMENTATIONS`; the choice
is made once, here, by `resolve_implementation`):

- "block", the fast path on CPU: each layer's sequence is one fused `BlockLSTM` kernel with
  a backward pass of our own (`block_lstm_sequence`), and G's free-running training loop
  gets the hand-written backward of `crnn_gan.feedback_loop` (gradient "fast"). Written
  for speed on CPU (measured in benchmarks/bench_train.py); `BlockLSTM` is a CPU kernel.
- "keras", the reference: Keras' LSTM layer (cuDNN on a GPU, XLA on a TPU) and G's plain
  loop, both differentiated by autodiff (gradient "autodiff").
- "auto" resolves to "keras" on a GPU or a TPU and to "block" on CPU only.

Tests pin each hand-written backward to autodiff of the reference (tests/test_models.py).

**One cell** (`lstm_step`): one time step's gates and new state from the input's
projection; `FusedLSTM.step` (hence G's generation loop, its priming and the exports) and
`crnn_gan.feedback_loop` run it.

`FusedLSTM` owns a `keras.layers.LSTM` (its weights, regularisers and checkpoint format) and
runs a whole sequence with the implementation chosen; `step` runs one time step with plain
matmuls (builtin TFLite ops only).

Gate layout of the weights: Keras' i, f, c, o. `BlockLSTM` wants i, c, f, o (converted on
the fly). Note: `BlockLSTMV2` (i, f, c, o) computes the right forward pass but its
registered gradient is wrong in TF 2.16 (checked against finite differences), so V1 is used.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _l2(scale: float):
    """The original code's `scale * tf.nn.l2_loss(w)` = `scale/2 * sum(w**2)`."""
    return keras.regularizers.L2(scale / 2) if scale else None


IMPLEMENTATIONS = ("auto", "block", "keras")
#: The kinds of device on which "auto" picks the Keras layers: `BlockLSTM` has no kernel
#: there (TPU) or cuDNN is faster (GPU).
ACCELERATORS = ("GPU", "TPU")
#: How G's free-running loop is differentiated in training (`gradient_of`): the
#: hand-written backward of `crnn_gan.feedback_loop`, or autodiff of the plain loop.
GRADIENTS = ("fast", "autodiff")


def accelerator_kinds() -> set[str]:
    """The `ACCELERATORS` this program computes on: kinds of logical device present (a Cloud
    TPU's devices are listed once its system is initialised), and "TPU" inside a
    `TPUStrategy`'s scope or step."""
    kinds = {kind for kind in ACCELERATORS if tf.config.list_logical_devices(kind)}
    if isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
        kinds.add("TPU")
    return kinds


def resolve_implementation(implementation: str, device_kinds=None) -> str:
    """"auto" -> "keras" where a GPU or a TPU computes, else "block"; the others unchanged.

    Args:
        implementation: one of `IMPLEMENTATIONS`.
        device_kinds: the accelerator kinds to decide for (e.g. ``{"TPU"}``); None: this
            program's (`accelerator_kinds`).

    Raises:
        ValueError: an implementation not in `IMPLEMENTATIONS`.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got "
                         f"{implementation!r}")
    if implementation != "auto":
        return implementation
    kinds = accelerator_kinds() if device_kinds is None else set(device_kinds)
    return "keras" if kinds & set(ACCELERATORS) else "block"


def gradient_of(implementation: str, device_kinds=None) -> str:
    """The gradient of G's free-running loop under an implementation: "fast" (the
    hand-written backward) for "block", "autodiff" for "keras" (see `GRADIENTS`)."""
    block = resolve_implementation(implementation, device_kinds) == "block"
    return "fast" if block else "autodiff"


def lstm_step(input_projection, state, recurrent_kernel, bias):
    """One LSTM time step from its input's projection: the one home of the cell arithmetic.

    Args:
        input_projection: ``inputs @ kernel`` ``[batch, 4 * units]`` (gates i, f, c, o).
        state: ``(h, c)``, each ``[batch, units]``.
        recurrent_kernel: ``[units, 4 * units]``; bias: ``[4 * units]``.

    Returns:
        ``((i, f, g, o), h, c)``: the gate activations (sigmoid, sigmoid, tanh, sigmoid),
        each ``[batch, units]``, and the new hidden and cell states.
    """
    h, c = state
    gates = input_projection + tf.matmul(h, recurrent_kernel) + bias
    i, f, g, o = tf.split(gates, 4, axis=-1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c + i * g
    return (i, f, g, o), o * tf.tanh(c), c


def _ifco_to_icfo(weights: tf.Tensor) -> tf.Tensor:
    i, f, c, o = tf.split(weights, 4, axis=-1)
    return tf.concat([i, c, f, o], axis=-1)


def shift_in(initial, sequence):
    """Time-major ``[T, B, N]`` -> the value before each step (`initial` ``[B, N]`` at 0)."""
    return tf.concat([initial[None], sequence[:-1]], axis=0)


def gate_gradient_factors(i, f, g, o, tanh_c, c_prev):
    """What the backward pass of an LSTM needs of its forward activations, all steps at once.

    Args:
        i, f, g, o: gate activations (sigmoid, sigmoid, tanh, sigmoid), ``[..., units]``.
        tanh_c: tanh of the new cell state; c_prev: the cell state before the step.

    Returns:
        ``(factors [..., 4 * units], dc_dh [..., units])``: d pre-activation of gates i, f, c,
        o per unit of (d cell, d cell, d cell, d hidden), and d cell / d hidden.
    """
    factors = tf.concat([g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g),
                         tanh_c * o * (1.0 - o)], axis=-1)
    return factors, o * (1.0 - tanh_c * tanh_c)


def gate_gradients(dh, dc, factors):
    """One step's d gate pre-activations ``[B, 4 * units]`` (Keras order i, f, c, o).

    Args:
        dh: d hidden ``[B, units]``; dc: d cell, its part through ``dh`` included;
        factors: that step's `gate_gradient_factors`.
    """
    return tf.concat([dc, dc, dc, dh], axis=-1) * factors


@tf.custom_gradient
def block_lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """A whole LSTM sequence: the fused `BlockLSTM` forward and a batched backward.

    Args:
        x: time-major inputs ``[time, batch, features]``.
        h0, c0: initial state, each ``[batch, units]``.
        kernel, recurrent_kernel, bias: Keras' LSTM weights (gates i, f, c, o):
            ``[features, 4 * units]``, ``[units, 4 * units]``, ``[4 * units]``.

    Returns:
        ``(h, cs)``: hidden outputs and cell states of every step, ``[time, batch, units]``.

    The gradient is not `BlockLSTMGrad`'s: that kernel accumulates the weight gradients step
    by step with small matmuls (measured: backward 3.6x its forward, 2x PyTorch's LSTM). Here
    only the recurrence runs step by step (gate gradients and ``dgates @ R^T``, a
    `tf.while_loop`); the gradients of the inputs, kernel, recurrent kernel and bias are then
    one large matmul each over all steps (measured in benchmarks/bench_train.py).
    """
    units = tf.shape(h0)[-1]
    no_peephole = tf.zeros([units], x.dtype)
    i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=c0, h_prev=h0,
        w=_ifco_to_icfo(tf.concat([kernel, recurrent_kernel], axis=0)), wci=no_peephole,
        wcf=no_peephole, wco=no_peephole, b=_ifco_to_icfo(bias), forget_bias=0.0,
        cell_clip=-1.0, use_peephole=False)

    def grad(dh, dcs):
        dh = tf.zeros_like(h) if dh is None else dh
        dcs = tf.zeros_like(cs) if dcs is None else dcs
        h_prev = shift_in(h0, h)
        gate_factors, dcs_dh = gate_gradient_factors(i, f, ci, o, co, shift_in(c0, cs))
        steps = tf.shape(x)[0]
        dgates = tf.TensorArray(x.dtype, size=steps, element_shape=gate_factors.shape[1:])

        def body(t, dh_next, dc_next, dgates):
            dh_t = dh[t] + dh_next
            dcs_t = dcs[t] + dc_next + dh_t * dcs_dh[t]
            dgates_t = gate_gradients(dh_t, dcs_t, gate_factors[t])
            dh_next = tf.matmul(dgates_t, recurrent_kernel, transpose_b=True)
            return t - 1, dh_next, dcs_t * f[t], dgates.write(t, dgates_t)

        _, dh0, dc0, dgates = tf.while_loop(
            lambda t, *_: t >= 0, body, (steps - 1, tf.zeros_like(h0), tf.zeros_like(c0),
                                         dgates),
            maximum_iterations=steps)
        dgates = dgates.stack()  # [time, batch, 4 * units]
        flat_dgates = tf.reshape(dgates, [-1, tf.shape(dgates)[-1]])
        dx = tf.reshape(tf.matmul(flat_dgates, kernel, transpose_b=True), tf.shape(x))
        dkernel = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[-1]]), flat_dgates,
                            transpose_a=True)
        drecurrent = tf.matmul(tf.reshape(h_prev, [-1, units]), flat_dgates, transpose_a=True)
        return dx, dh0, dc0, dkernel, drecurrent, tf.reduce_sum(flat_dgates, axis=0)

    return (h, cs), grad


@keras.saving.register_keras_serializable(package="crnn_gan")
class FusedLSTM(keras.layers.Layer):
    """A unidirectional LSTM over ``[batch, time, features]`` returning every step.

    Args:
        units: hidden units.
        l2_scale: L2 penalty scale on kernel, recurrent kernel and bias (see `_l2`).
        go_backwards: process the sequence in reverse (outputs stay in input order).
        implementation: "block", "keras" or "auto" (see `resolve_implementation`).
        constraint: a Keras constraint on kernel and recurrent kernel, applied by the
            optimiser after each update (e.g. D's spectral-norm bound); None: none.
    """

    def __init__(self, units: int, l2_scale: float = 0.0, go_backwards: bool = False,
                 implementation: str = "auto", constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.l2_scale = l2_scale
        self.go_backwards = go_backwards
        self.implementation = implementation
        self.constraint = keras.constraints.get(constraint)
        self.lstm = keras.layers.LSTM(
            units, return_sequences=True, return_state=True,
            kernel_regularizer=_l2(l2_scale), recurrent_regularizer=_l2(l2_scale),
            bias_regularizer=_l2(l2_scale), kernel_constraint=self.constraint,
            recurrent_constraint=self.constraint, name="lstm",
        )

    def build(self, input_shape):
        if self.built:  # idempotent: deserialisation may have built it already
            return
        self.lstm.build(input_shape)
        self.built = True

    @property
    def cell(self):
        return self.lstm.cell

    def call(self, inputs, initial_state=None):
        """Runs the sequence.

        Args:
            inputs: float32 ``[batch, time, features]``.
            initial_state: optional ``(h, c)``, each ``[batch, units]``; zeros by default.

        Returns:
            ``(outputs [batch, time, units], h_last, c_last)``.
        """
        if resolve_implementation(self.implementation) == "block":
            # Fast on CPU: the fused kernel and our batched backward (block_lstm_sequence).
            outputs, h, c = self._block_lstm(inputs, initial_state)
        else:  # The reference: Keras' layer (cuDNN, XLA), differentiated by autodiff.
            x = tf.reverse(inputs, [1]) if self.go_backwards else inputs
            outputs, h, c = self.lstm(x, initial_state=initial_state)
        if self.go_backwards:
            outputs = tf.reverse(outputs, [1])
        return outputs, h, c

    def _block_lstm(self, inputs, initial_state):
        batch = tf.shape(inputs)[0]
        if initial_state is None:
            zeros = tf.zeros([batch, self.units], inputs.dtype)
            initial_state = (zeros, zeros)
        h0, c0 = initial_state
        x = tf.transpose(inputs, [1, 0, 2])  # time-major
        if self.go_backwards:
            x = tf.reverse(x, [0])
        h, cs = block_lstm_sequence(x, h0, c0, *self.weights_as_tensors())
        return tf.transpose(h, [1, 0, 2]), h[-1], cs[-1]

    def weights_as_tensors(self):
        """(kernel, recurrent_kernel, bias) read once, for use inside loops.

        Reading the variables inside a `tf.while_loop` would make TensorFlow keep a copy
        of every weight per step for the gradient (measured: backward 7x the forward).
        """
        cell = self.lstm.cell
        return tuple(tf.convert_to_tensor(w) for w in (cell.kernel, cell.recurrent_kernel,
                                                       cell.bias))

    def step(self, inputs, state, input_projection=None, weights=None):
        """One time step with plain matmuls (builtin ops only: exports to TFLite).

        Args:
            inputs: ``[batch, features]``, or None when `input_projection` is given.
            state: ``(h, c)``, each ``[batch, units]``.
            input_projection: precomputed ``inputs @ kernel`` ``[batch, 4 * units]``.
            weights: `weights_as_tensors()`, read outside the caller's loop.

        Returns:
            ``(h, c)`` after the step.
        """
        kernel, recurrent_kernel, bias = weights or self.weights_as_tensors()
        if input_projection is None:
            input_projection = tf.matmul(inputs, kernel)
        _, h, c = lstm_step(input_projection, state, recurrent_kernel, bias)
        return h, c

    def get_config(self):
        return {**super().get_config(), "units": self.units, "l2_scale": self.l2_scale,
                "go_backwards": self.go_backwards, "implementation": self.implementation,
                "constraint": keras.constraints.serialize(self.constraint)}
