"""G's free-running feedback loop for training: the forward loop and a backward of its own.

The loop is the one of `Generator.step` (an LSTM stack whose input at step t is the noise and
the head's output of step t-1; each cell is `crnn_gan.lstm.lstm_step`). Automatic
differentiation of a `tf.while_loop` computes the weight gradients step by step, as many small
matmuls, and keeps a copy of every per-step intermediate it pops back; `free_running` instead
records each layer's gate activations, cell and hidden states, runs only the recurrence
backwards step by step, and computes every weight gradient afterwards as one matmul over all
steps (measured in benchmarks/bench_train.py). This is the "fast" gradient of
`crnn_gan.lstm.GRADIENTS`, chosen by `Generator.free_run(gradient=)`; "autodiff" and
inference run `Generator.free_run`'s plain loop (no extra outputs to record).

Gate layout: Keras' i, f, c, o (as `FusedLSTM`).
"""

from __future__ import annotations

import tensorflow as tf

from crnn_gan.lstm import gate_gradient_factors, gate_gradients, lstm_step, shift_in


def _flat(sequence):
    return tf.reshape(sequence, [-1, tf.shape(sequence)[-1]])


def free_running(noise_projection, feedback_kernel, *weights):
    """Runs G's feedback loop over ``T`` steps from zero states and a zero first feedback.

    Args:
        noise_projection: layer 0's noise input ``noise_t @ kernel_0[:noise_dim]`` for every
            step, time-major ``[T, batch, 4 * units]``.
        feedback_kernel: layer 0's kernel rows of the fed-back output,
            ``kernel_0[noise_dim:]``, ``[num_features, 4 * units]``.
        *weights: layer 0's ``recurrent_kernel, bias``; then each further layer's ``kernel,
            recurrent_kernel, bias``; then the head's ``kernel [units, num_features], bias``.

    Returns:
        G's outputs, time-major ``[T, batch, num_features]`` (normalised units).
    """
    return _free_running(noise_projection, feedback_kernel, *weights)


@tf.custom_gradient
def _free_running(noise_projection, feedback_kernel, *weights):
    recurrent_0, bias_0 = weights[:2]
    upper = [weights[k:k + 3] for k in range(2, len(weights) - 2, 3)]
    head_kernel, head_bias = weights[-2:]
    num_layers = 1 + len(upper)
    steps = tf.shape(noise_projection)[0]
    batch = tf.shape(noise_projection)[1]
    width = recurrent_0.shape[0]  # units
    num_features = head_kernel.shape[-1]
    dtype = noise_projection.dtype
    zeros = tf.zeros([batch, width], dtype)

    def arrays(size):
        return tf.TensorArray(dtype, size=steps, element_shape=[None, size])

    records = ([arrays(4 * width) for _ in range(num_layers)],  # gate activations
               [arrays(width) for _ in range(num_layers)],      # cell states
               [arrays(width) for _ in range(num_layers)],      # hidden states
               arrays(num_features))                            # outputs

    def body(t, previous, states, records):
        activations_r, cells_r, hiddens_r, outputs_r = records
        new_states, new_records = [], ([], [], [])
        below = None
        for layer in range(num_layers):
            if layer:
                kernel, recurrent, bias = upper[layer - 1]
                projection = tf.matmul(below, kernel)
            else:
                recurrent, bias = recurrent_0, bias_0
                projection = noise_projection[t] + tf.matmul(previous, feedback_kernel)
            activations, h, c = lstm_step(projection, states[layer], recurrent, bias)
            new_states.append((h, c))
            new_records[0].append(activations_r[layer].write(t, tf.concat(activations, -1)))
            new_records[1].append(cells_r[layer].write(t, c))
            new_records[2].append(hiddens_r[layer].write(t, h))
            below = h
        output = tf.matmul(below, head_kernel) + head_bias
        return t + 1, output, new_states, (*new_records, outputs_r.write(t, output))

    _, _, _, records = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), tf.zeros([batch, num_features], dtype),
         [(zeros, zeros)] * num_layers, records),
        maximum_iterations=steps)
    activations = [r.stack() for r in records[0]]  # [T, B, 4U] each
    cells = [r.stack() for r in records[1]]
    hiddens = [r.stack() for r in records[2]]
    outputs = records[3].stack()

    def grad(d_outputs):
        # Per step and layer, vectorised over all steps: d gate pre-activations per unit of
        # (d cell, d cell, d cell, d hidden), and d cell / d hidden.
        gate_factors, dcell_dhidden, forget = [], [], []
        for layer in range(num_layers):
            i, f, g, o = tf.split(activations[layer], 4, axis=-1)
            factors, dc_dh = gate_gradient_factors(i, f, g, o, tf.tanh(cells[layer]),
                                                   shift_in(zeros, cells[layer]))
            gate_factors.append(factors)
            dcell_dhidden.append(dc_dh)
            forget.append(f)
        # dgates @ [recurrent; kernel]^T in one matmul per layer (layer 0: the feedback).
        backward_0 = tf.concat([recurrent_0, feedback_kernel], axis=0)
        backward_upper = [tf.concat([r, k], axis=0) for k, r, _ in upper]
        dgates_arrays = [arrays(4 * width) for _ in range(num_layers)]
        d_total_outputs = arrays(num_features)

        def back(t, d_feedback, dh_next, dc_next, dgates_arrays, d_total_outputs):
            d_output = d_outputs[t] + d_feedback
            dh_from_above = tf.matmul(d_output, head_kernel, transpose_b=True)
            new_dh, new_dc, new_arrays = [None] * num_layers, [None] * num_layers, list(
                dgates_arrays)
            for layer in reversed(range(num_layers)):
                dh = dh_from_above + dh_next[layer]
                dc = dc_next[layer] + dh * dcell_dhidden[layer][t]
                dgates = gate_gradients(dh, dc, gate_factors[layer][t])
                new_arrays[layer] = dgates_arrays[layer].write(t, dgates)
                new_dc[layer] = dc * forget[layer][t]
                back_matrix = backward_upper[layer - 1] if layer else backward_0
                back_product = tf.matmul(dgates, back_matrix, transpose_b=True)
                new_dh[layer] = back_product[:, :width]
                if layer:
                    dh_from_above = back_product[:, width:]
                else:
                    d_feedback = back_product[:, width:]
            return (t - 1, d_feedback, new_dh, new_dc, new_arrays,
                    d_total_outputs.write(t, d_output))

        zero_states = [zeros] * num_layers
        _, _, _, _, dgates_arrays, d_total_outputs = tf.while_loop(
            lambda t, *_: t >= 0, back,
            (steps - 1, tf.zeros([batch, num_features], dtype), zero_states, zero_states,
             dgates_arrays, d_total_outputs),
            maximum_iterations=steps)
        dgates = [_flat(a.stack()) for a in dgates_arrays]  # [T * B, 4U] each
        d_total_outputs = _flat(d_total_outputs.stack())
        previous_outputs = shift_in(tf.zeros_like(outputs[0]), outputs)
        grads = [tf.reshape(dgates[0], tf.shape(noise_projection)),
                 tf.matmul(_flat(previous_outputs), dgates[0], transpose_a=True),
                 tf.matmul(_flat(shift_in(zeros, hiddens[0])), dgates[0], transpose_a=True),
                 tf.reduce_sum(dgates[0], axis=0)]
        for layer in range(1, num_layers):
            grads += [tf.matmul(_flat(hiddens[layer - 1]), dgates[layer], transpose_a=True),
                      tf.matmul(_flat(shift_in(zeros, hiddens[layer])), dgates[layer],
                                transpose_a=True),
                      tf.reduce_sum(dgates[layer], axis=0)]
        grads += [tf.matmul(_flat(hiddens[-1]), d_total_outputs, transpose_a=True),
                  tf.reduce_sum(d_total_outputs, axis=0)]
        return grads

    return outputs, grad
