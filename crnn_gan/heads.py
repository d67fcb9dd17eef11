"""G's output heads: how the top LSTM layer's Dense output becomes a step of tones.

One home for what G may emit and for its next-step loss. Three heads (`Config.output_head`):

- ``"linear"`` (the paper): the Dense output is the step's features, unbounded; next-step
  loss: squared error. Nothing stops a tone below the piano's range, a negative length or a
  velocity of 200.
- ``"bounded"``: each feature squashed into its valid raw range, expressed in model units
  (`output_bounds`): pitch in MIDI 21..108 (a sigmoid between the two), length >= 1 tick
  and delta >= 0 (a softplus above the bound), velocity in 1..127 (0..127 for C-RNN-GAN-3, where 0
  marks an absent slot). Continuous outputs that cannot leave the range for any weights;
  next-step loss: squared error.
- ``"categorical"``: for every feature a distribution over a fixed set of values
  (`output_bins`: the 88 piano pitches, and quantiles of the training split's lengths,
  velocities and deltas, which include 0 for chords and absent slots), **sampled with G's
  own uniform noise** by inverse CDF: feature f of step t takes the first value whose
  cumulative probability exceeds noise[t, f]. Real-valued outputs (the values are reals in
  model units) that are valid by construction, and a G whose noise drives real choices
  instead of being averaged away. Next-step loss: cross-entropy of the true value's nearest
  bin (maximum likelihood, not the mean of a multimodal distribution). Gradients through
  the sample: straight-through (the value is the sample; its gradient is the expectation's),
  or, in the adversarial phase, the score function of the samples' log-probability
  (`sample_log_probability`; `Config.gradient_estimator`).

Within a step the categorical head draws a step's features independently given G's state,
or, with ``conditioning`` weights (`Config.autoregressive_head`), **one after another**: a
tone's velocity first (for C-RNN-GAN-3 its presence), then its delta, its pitch, its length
(`step_order`), each feature's logits shifted by a small tanh layer of G's state and of the
values drawn before it in the step (`conditional_logits`). A tone's pitch can then depend on
whether it starts an onset or joins a chord, which independent draws cannot express.

Shapes: ``F = 4 * tones_per_step`` features per step; ``K = CATEGORICAL_BINS`` values per
feature (padded by repeating a feature's last value); the head's Dense has ``F`` outputs
(linear, bounded) or ``F * K`` (categorical). Builtin TFLite ops only.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfds_midi import codec

HEADS = ("linear", "bounded", "categorical")
#: Values per feature of the categorical head: the 88 piano keys set the size.
CATEGORICAL_BINS = 88
#: Hidden units of the autoregressive conditioning layer of each feature.
CONDITIONING_UNITS = 64
#: Marks a side without a bound in `output_bounds`.
UNBOUNDED = 1e9
_LENGTH, _FREQUENCY, _VELOCITY, _DELTA = range(4)
#: A tone's features in words, in the order of its columns (`tfds_midi.codec`).
FEATURE_NAMES = ("length", "pitch", "velocity", "delta")
#: The order the autoregressive head draws a tone's features in: velocity first (an absent
#: C-RNN-GAN-3 slot is known before its other values are drawn), then delta (onset or
#: chord), pitch, length.
TONE_ORDER = (_VELOCITY, _DELTA, _FREQUENCY, _LENGTH)
#: `TONE_ORDER` in words (model cards, docs).
TONE_ORDER_WORDS = tuple(FEATURE_NAMES[f] for f in TONE_ORDER)


def head_units(head: str, num_features: int) -> int:
    """Outputs of the head's Dense layer."""
    return num_features * CATEGORICAL_BINS if head == "categorical" else num_features


def _per_feature(length, pitch, velocity, delta):
    """Four per-tone tensors ``[..., k]``, one for each feature of a tone, interleaved into
    a step's feature order ``[..., 4k]`` (tone j's length, pitch, velocity, delta at 4j..4j+3)."""
    stacked = tf.stack([length, pitch, velocity, delta], axis=-1)  # [..., k, 4]
    return tf.reshape(stacked, tf.concat([tf.shape(length)[:-1], [-1]], axis=0))


def _softplus(x):
    """log(1 + e^x), stable, in builtin TFLite ops (TFLite has no SOFTPLUS)."""
    return tf.maximum(x, 0.0) + tf.math.log(1.0 + tf.exp(-tf.abs(x)))


def emit(head: str, dense_output, noise_t=None, bins=None, bounds=None, temperature=1.0,
         absent=None, hidden=None, conditioning=None):
    """One step's features from the head's Dense output.

    Args:
        head: one of `HEADS`.
        dense_output: ``[..., head_units]``.
        noise_t: the step's uniform noise ``[..., F]`` (categorical: the sampling variables).
        bins: categorical values ``[F, K]``, model units.
        bounds: ``[F, 2]`` lower and upper bound in model units (+-`UNBOUNDED`: none).
        temperature: categorical: sample from softmax(logits / temperature) (1: the
            distribution the next-step loss fits; below 1: sharper); one float for every
            feature, or one per feature (`feature_temperatures`).
        absent: categorical, C-RNN-GAN-3: `absent_values` ``[F]``. A slot whose sampled
            velocity is 0 (absent) gets all four of these values, as absent slots have in
            the data; without it its length, pitch and delta are samples that no real
            absent slot has, which G reads back as input and D uses to tell fakes.
        hidden: categorical with `conditioning`: G's top LSTM output ``[..., units]``
            that produced `dense_output`.
        conditioning: None (features drawn independently) or the autoregressive head's
            weights (`conditioning_shapes`): features drawn in `step_order`.

    Returns:
        ``[..., F]`` in model units.
    """
    if head == "linear":
        return dense_output
    if head == "bounded":
        return squash(dense_output, bounds)
    if conditioning is not None:
        return _emit_in_order(dense_output, noise_t, bins, temperature, absent, hidden,
                              conditioning)
    logits = _as_logits(dense_output, bins)
    values, index = _draw(logits, noise_t, bins, _logit_divisor(temperature))
    return _fill_absent_slots(values, index, absent)


def feature_temperatures(temperature: float, velocity_temperature: float,
                         num_features: int) -> float | tuple[float, ...]:
    """The sampling temperature of each of a step's `num_features` features: `temperature`
    alone when `velocity_temperature` is 0 or the same, else a tuple with
    `velocity_temperature` at every velocity (one per tone) and `temperature` elsewhere."""
    if velocity_temperature in (0, temperature):
        return float(temperature)
    return tuple(float(velocity_temperature if f % 4 == _VELOCITY else temperature)
                 for f in range(num_features))


def _logit_divisor(temperature):
    """What the logits ``[..., F, K]`` are divided by: the float, or a per-feature
    temperature tuple as a ``[F, 1]`` constant."""
    if isinstance(temperature, (int, float)):
        return float(temperature)
    return tf.constant(temperature, tf.float32)[:, None]


def _feature_temperature(temperature, feature: int) -> float:
    """One feature's temperature from a float or a per-feature tuple."""
    return float(temperature if isinstance(temperature, (int, float)) else temperature[feature])


def _fill_absent_slots(values, index, absent):
    """C-RNN-GAN-3 (`absent` ``[F]`` given): every slot whose velocity is bin 0 (absent)
    gets `absent`'s four values. `values` ``[..., F]``, `index` their bins ``[..., F]``."""
    if absent is None:
        return values
    is_absent = tf.equal(index[..., _VELOCITY::4], 0)  # [..., k]: velocity value 0
    mask = _per_feature(is_absent, is_absent, is_absent, is_absent)
    return tf.where(mask, tf.broadcast_to(absent, tf.shape(values)), values)


def _draw(logits, noise, bins, temperature):
    """Inverse-CDF draws from softmax(logits / temperature) ``[..., K]`` with uniform `noise`
    ``[...]`` among `bins` ``[..., K]`` (broadcast; `temperature`: a float or a tensor that
    broadcasts against `logits`): ``(values [...], index [...])``; the values carry the
    expectation's gradient (straight-through)."""
    if not isinstance(temperature, float) or temperature != 1.0:
        logits = logits / temperature
    probabilities = tf.nn.softmax(logits, axis=-1)
    cdf = tf.cumsum(probabilities, axis=-1)
    index = tf.reduce_sum(tf.cast(cdf < noise[..., None], tf.int32), axis=-1)
    index = tf.minimum(index, CATEGORICAL_BINS - 1)
    sample = tf.reduce_sum(tf.one_hot(index, CATEGORICAL_BINS) * bins, axis=-1)
    expectation = tf.reduce_sum(probabilities * bins, axis=-1)
    # Straight-through: exactly the sample's value, the expectation's gradient.
    return sample + (expectation - tf.stop_gradient(expectation)), index


def step_order(num_features: int) -> list[int]:
    """The features of a step in the order the autoregressive head draws them: tone by
    tone, each in `TONE_ORDER`."""
    return [4 * tone + f for tone in range(num_features // 4) for f in TONE_ORDER]


def conditioning_shapes(units: int, num_features: int) -> dict[str, tuple[int, ...]]:
    """The autoregressive head's trainable weights and their shapes: for the feature f drawn
    p-th (`step_order`) a layer ``tanh(h @ state_kernel[f] + drawn_p @ value_kernel[rows_p]
    + bias[f]) @ output_kernel[f]`` added to f's logits (h: G's top LSTM output ``[...,
    units]``; drawn_p: the one-hot bins of the p values drawn before f, in draw order,
    ``[..., p * K]``; rows_p: `value_rows` (p)). The value kernel is packed: it holds only
    the rows some feature uses, ``K * F * (F - 1) / 2`` of them."""
    hidden, bins = CONDITIONING_UNITS, CATEGORICAL_BINS
    return {"state_kernel": (num_features, units, hidden),
            "value_kernel": (bins * num_features * (num_features - 1) // 2, hidden),
            "bias": (num_features, hidden),
            "output_kernel": (num_features, hidden, bins)}


def value_rows(position: int) -> slice:
    """The rows of the packed value kernel that the feature drawn `position`-th uses: one
    block of K rows for each feature drawn before it, in draw order."""
    start = CATEGORICAL_BINS * position * (position - 1) // 2
    return slice(start, start + CATEGORICAL_BINS * position)


def held_bins(values, bins):
    """``[..., F]`` values -> ``[..., F * K]`` float: 1 on the bins holding each value (a
    padded or repeated value: every bin holding it; a value no bin holds, as the pitch of
    an absent slot: none). What the autoregressive head conditions on."""
    held = tf.cast(tf.equal(values[..., None], bins), tf.float32)  # [..., F, K]
    return tf.reshape(held, tf.concat([tf.shape(values)[:-1], [-1]], axis=0))


def _logit_shift(hidden, drawn_before, conditioning, feature, position):
    """The logit shift ``[..., K]`` of `feature`, drawn `position`-th, from G's state and
    the one-hots of the values drawn before it ``[..., position * K]`` (draw order)."""
    state_kernel, value_kernel, bias, output_kernel = conditioning
    pre = tf.matmul(hidden, state_kernel[feature]) + bias[feature]
    if position:
        pre += tf.matmul(drawn_before, value_kernel[value_rows(position)])
    return tf.matmul(tf.tanh(pre), output_kernel[feature])


def conditional_logits(dense_output, hidden, values, bins, conditioning):
    """The autoregressive head's logits of every feature given the step's values.

    Args:
        dense_output: the head's Dense output ``[batch, T, F * K]``.
        hidden: G's top LSTM output that produced it ``[batch, T, units]``.
        values: the step's values ``[batch, T, F]`` (model units: G's own draws, or the
            true steps snapped to their bins, `snap_to_bins`); feature f's logits see only
            the features drawn before it.
        bins: ``[F, K]``.
        conditioning: the four weight tensors of `conditioning_shapes`, in that order.

    Returns:
        ``[batch, T, F, K]`` logits at temperature 1.
    """
    base = _as_logits(dense_output, bins)
    order = step_order(bins.shape[0])
    drawn = held_bins(tf.gather(values, order, axis=-1), tf.gather(bins, order))  # draw order
    shifts = [None] * len(order)
    for position, feature in enumerate(order):
        shifts[feature] = _logit_shift(hidden, drawn[..., :position * CATEGORICAL_BINS],
                                       conditioning, feature, position)
    return base + tf.stack(shifts, axis=-2)


def snap_to_bins(targets, bins, absent=None):
    """True steps ``[..., F]`` -> each value replaced by its nearest bin (the value whose
    cross-entropy the next-step loss fits); C-RNN-GAN-3 (`absent` given): a slot whose
    velocity snaps to 0 gets `absent`'s values, as G writes absent slots."""
    return _snap(nearest_bins(targets, bins), bins, absent)


def nearest_bins(targets, bins):
    """``[..., F]`` values -> ``[..., F]`` int64: the index of each value's nearest bin
    (the categorical head's label of a true value)."""
    return tf.argmin(tf.abs(targets[..., None] - bins), axis=-1)


def _snap(labels, bins, absent):
    """`snap_to_bins` from the nearest bins' indices ``[..., F]``."""
    snapped = tf.reduce_sum(tf.one_hot(labels, CATEGORICAL_BINS) * bins, axis=-1)
    return _fill_absent_slots(snapped, labels, absent)


def _emit_in_order(dense_output, noise_t, bins, temperature, absent, hidden, conditioning):
    """`emit` of the autoregressive head: the step's features drawn one after another in
    `step_order`, each from its logits shifted by what was drawn before it."""
    base = _as_logits(dense_output, bins)  # [..., F, K]
    num_features = bins.shape[0]
    values = [None] * num_features
    drawn = []  # the one-hots [..., K] of the values drawn so far, in draw order
    is_absent = None
    for position, feature in enumerate(step_order(num_features)):
        drawn_before = tf.concat(drawn, axis=-1) if drawn else None
        logits = base[..., feature, :] + _logit_shift(hidden, drawn_before, conditioning,
                                                      feature, position)
        value, index = _draw(logits, noise_t[..., feature], bins[feature],
                             _feature_temperature(temperature, feature))
        if absent is not None:
            if feature % 4 == _VELOCITY:  # first of its tone: decides the slot's presence
                is_absent = tf.equal(index, 0)
            value = tf.where(is_absent, absent[feature], value)
        values[feature] = value
        drawn.append(held_bins(value[..., None], bins[feature:feature + 1]))  # [..., K]
    return tf.stack(values, axis=-1)


def squash(x, bounds):
    """Each feature of ``x [..., F]`` into (lower, upper) of ``bounds [F, 2]``."""
    lower, upper = bounds[:, 0], bounds[:, 1]
    has_lower, has_upper = lower > -UNBOUNDED / 2, upper < UNBOUNDED / 2
    both = lower + (upper - lower) * tf.sigmoid(x)
    above = lower + _softplus(x)
    below = upper - _softplus(-x)
    return tf.where(has_lower & has_upper, both,
                    tf.where(has_lower, above, tf.where(has_upper, below, x)))


def _as_logits(dense_output, bins):
    shape = tf.concat([tf.shape(dense_output)[:-1], tf.shape(bins)], axis=0)
    return tf.reshape(dense_output, shape)


def next_step_loss(head: str, dense_output, targets, bins=None, bounds=None, hidden=None,
                   conditioning=None, absent=None):
    """The next-step (pretraining, baseline, supervised) loss of a head.

    Args:
        head: one of `HEADS`.
        dense_output: the head's Dense output for each position ``[batch, T, head_units]``.
        targets: the true steps ``[batch, T, F]``, model units.
        bins, bounds, hidden, conditioning, absent: as for `emit` (autoregressive: each
            feature's logits conditioned on the true values drawn before it, snapped to
            their bins: `snap_to_bins`).

    Returns:
        Scalar: mean squared error (linear, bounded) or mean cross-entropy in nats of each
        feature's nearest value (categorical; for C-RNN-GAN-3 the pitch and length of absent
        slots are left out).
    """
    if head == "linear":
        return tf.reduce_mean(tf.square(dense_output - targets))
    if head == "bounded":
        return tf.reduce_mean(tf.square(squash(dense_output, bounds) - targets))
    labels = nearest_bins(targets, bins)
    if conditioning is None:
        logits = _as_logits(dense_output, bins)
    else:
        logits = conditional_logits(dense_output, hidden, _snap(labels, bins, absent), bins,
                                    conditioning)
    entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits)  # [batch, T, F]
    features = bins.shape[0]
    if features == 4:
        return tf.reduce_mean(entropy)
    # C-RNN-GAN-3: an absent slot (velocity 0: the lowest velocity value) has no pitch and
    # no length; fitting them would teach G to pair a present velocity with the absent
    # slots' placeholder pitch (the lowest key) when it samples the features independently.
    absent = tf.cast(tf.equal(labels[..., _VELOCITY::4], 0), entropy.dtype)  # [batch, T, k]
    present = 1.0 - absent
    ones = tf.ones_like(present)
    weights = _per_feature(present, present, ones, ones)
    return tf.reduce_sum(weights * entropy) / tf.maximum(tf.reduce_sum(weights), 1.0)


def draw_log_probabilities(dense_output, values, bins, temperature=1.0, hidden=None,
                           conditioning=None):
    """Every bin's log-probability under the distribution each of G's draws came from.

    Args:
        dense_output: the head's Dense output at each step ``[batch, T, F * K]``, from the
            state that drew `values` (teacher forcing on G's own outputs reproduces it).
        values: the drawn steps ``[batch, T, F]``, model units; with the autoregressive
            head each feature's distribution is conditioned on the values drawn before it.
        bins: categorical values ``[F, K]``.
        temperature: the sampling temperature (a float, or one per feature).
        hidden, conditioning: the autoregressive head's (`emit`).

    Returns:
        ``[batch, T, F, K]``: log softmax(logits / temperature), in nats.
    """
    if conditioning is None:
        logits = _as_logits(dense_output, bins)
    else:
        logits = conditional_logits(dense_output, hidden, values, bins, conditioning)
    return tf.nn.log_softmax(logits / _logit_divisor(temperature), axis=-1)


def _counted_draws(values, bins):
    """``[batch, T, F]`` bool: the draws that changed what G wrote, or None where every
    draw counts (C-RNN-GAN). For C-RNN-GAN-3 an absent slot's pitch, length and delta were
    drawn but replaced, so only its velocity (its presence) counts."""
    if bins.shape[0] == 4:
        return None
    absent = tf.equal(values[..., _VELOCITY::4], bins[_VELOCITY::4, 0])  # [batch, T, k]
    present = tf.logical_not(absent)
    return _per_feature(present, present, tf.ones_like(present), present)


def sample_log_probability(dense_output, values, bins, temperature=1.0, hidden=None,
                           conditioning=None, per_feature=False):
    """Log-probability of G's own categorical samples, for the score-function gradient:
    `log_probability_of` the draws under `draw_log_probabilities` (same arguments; every
    value of `values` is one of `bins`; C-RNN-GAN-3: absent slots hold `absent_values`)."""
    return log_probability_of(
        draw_log_probabilities(dense_output, values, bins, temperature, hidden, conditioning),
        values, bins, per_feature)


def log_probability_of(log_probabilities, values, bins, per_feature=False):
    """The log-probability of the drawn values.

    Args:
        log_probabilities: `draw_log_probabilities` ``[batch, T, F, K]``.
        values: the drawn steps ``[batch, T, F]``; bins: ``[F, K]``.
        per_feature: return each feature's term instead of their sum.

    Returns:
        ``[batch, T]``: the sum over a step's features of log P(feature's value), in nats
        (with `per_feature`: the terms, ``[batch, T, F]``). A value held by several bins
        (the padding, repeated quantiles) gets their summed probability. For C-RNN-GAN-3 the
        pitch, length and delta of an absent slot are left out (their terms are 0): they
        were drawn but replaced, so they changed nothing that D saw.
    """
    held = tf.equal(values[..., None], bins)  # [batch, T, F, K]: the bins holding the value
    # log of the summed probability of the holding bins (-inf where none holds it).
    log_p = tf.reduce_logsumexp(
        tf.where(held, log_probabilities, tf.fill(tf.shape(log_probabilities), -1e9)),
        axis=-1)  # [batch, T, F]
    counted = _counted_draws(values, bins)
    if counted is not None:
        log_p = tf.where(counted, log_p, 0.0)
    return log_p if per_feature else tf.reduce_sum(log_p, axis=-1)


def mean_kl_divergence(log_p, log_q, values, bins):
    """Mean KL(p || q) in nats over the draws that count (`_counted_draws`).

    Args:
        log_p, log_q: two models' `draw_log_probabilities` ``[batch, T, F, K]`` at the same
            states (G's and its prior's, each teacher forced on G's draws `values`).
        values: those draws ``[batch, T, F]``; bins: ``[F, K]``.

    Returns:
        Scalar: ``sum_K p (log p - log q)`` averaged over the batch's counted draws, a
        function of both sides' logits (bins holding the same value are compared bin by
        bin, which bounds the KL between the values' distributions from above).
    """
    kl = tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)  # [batch, T, F]
    counted = _counted_draws(values, bins)
    if counted is None:
        return tf.reduce_mean(kl)
    counted = tf.cast(counted, kl.dtype)
    return tf.reduce_sum(kl * counted) / tf.maximum(tf.reduce_sum(counted), 1.0)


def absent_values(scaler, tones_per_step: int) -> np.ndarray:
    """``[4 * tones_per_step]`` float32: an absent slot (raw zeros) in model units."""
    return np.asarray(scaler.normalize(np.zeros((1, 4 * tones_per_step)))[0], np.float32)


def raw_bounds(tones_per_step: int) -> np.ndarray:
    """The valid range of each raw feature ``[F, 2]`` (ticks, Hz, velocity, ticks)."""
    lowest_hz, highest_hz = codec.pitch_to_hz([codec.PIANO_LOWEST, codec.PIANO_HIGHEST],
                                              dtype=np.float64)
    lowest_velocity = 1.0 if tones_per_step == 1 else 0.0  # 0 = an absent slot
    # Length >= 1 tick, not > 0: a softplus that underflows to 0 must still leave a tone.
    tone = [(1.0, np.inf), (lowest_hz, highest_hz), (lowest_velocity, 127.0), (0.0, np.inf)]
    return np.asarray(tone * tones_per_step, np.float64)


def output_bounds(scaler, tones_per_step: int) -> np.ndarray:
    """`raw_bounds` in model units ``[F, 2]`` float32 (+-`UNBOUNDED` for no bound)."""
    raw = raw_bounds(tones_per_step)
    finite = np.where(np.isfinite(raw), raw, 1.0)
    lower = np.asarray(scaler.normalize(finite[None, :, 0])[0], np.float64)
    upper = np.asarray(scaler.normalize(finite[None, :, 1])[0], np.float64)
    lower = np.where(np.isfinite(raw[:, 0]), lower, -UNBOUNDED)
    upper = np.where(np.isfinite(raw[:, 1]), upper, UNBOUNDED)
    return np.stack([lower, upper], axis=-1).astype(np.float32)


def output_bins(songs, scaler, tones_per_step: int) -> np.ndarray:
    """The categorical head's values ``[F, K]`` float32, model units, from training songs.

    Pitch: the 88 piano keys (MIDI 21..108). Length, velocity, delta: the quantiles at
    (k + 0.5) / K of the present tones' raw values (any monotone representation has the same
    quantiles), distinct values only, padded with the last one; for C-RNN-GAN-3 velocity 0
    (an absent slot) is one of the values.

    Args:
        songs: raw training songs ``[n_i, F]``.
        scaler: their `FeatureScaler`.
        tones_per_step: 1 or 3.
    """
    steps = np.concatenate([np.asarray(s, np.float64) for s in songs if len(s)], axis=0)
    tones = steps.reshape(-1, 4)
    present = tones[tones[:, _VELOCITY] >= 0.5]
    levels = (np.arange(CATEGORICAL_BINS) + 0.5) / CATEGORICAL_BINS
    columns = {}
    columns[_FREQUENCY] = codec.pitch_to_hz(
        np.arange(codec.PIANO_LOWEST, codec.PIANO_HIGHEST + 1), dtype=np.float64)
    for column in (_LENGTH, _VELOCITY, _DELTA):
        values = np.unique(np.quantile(present[:, column], levels, method="nearest"))
        if column == _VELOCITY and tones_per_step > 1:
            values = np.unique(np.append(values, 0.0))
        if column == _LENGTH:
            values = values[values > 0] if np.any(values > 0) else np.asarray([1.0])
        columns[column] = values
    raw = np.zeros((CATEGORICAL_BINS, 4 * tones_per_step))
    for feature in range(4 * tones_per_step):
        values = columns[feature % 4]
        raw[:, feature] = np.pad(values, (0, CATEGORICAL_BINS - len(values)), mode="edge")
    return np.asarray(scaler.normalize(raw), np.float32).T
