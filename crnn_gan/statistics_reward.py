"""G's reward for matching the paper's six statistics (`Config.statistics_reward_weight`).

D judges windows as a whole; nothing in its reward says "fewer tones outside the key" or
"as many repeated figures as real music", and a maximum-likelihood G sampled at a
temperature is off on exactly these means (README: Music quality). With a score-function
estimator G needs no differentiable reward, so a domain objective can be added to D's, as
ORGAN (Guimaraes et al. 2017, arXiv 1705.10843) adds chemistry objectives and Sequence
Tutor (Jaques et al. 2017, arXiv 1611.02796) music-theory rewards.

The objective here is moment matching of the six statistics of Figure 3 (polyphony, scale
consistency, repetitions, tone span, unique tones, intensity span; `crnn_gan.metrics`, the
same code that evaluates) between the generated windows of a batch and the real windows of
the same batch, i.e. feature matching with the statistics as the features:

    L = 1/2 sum_k ((m_k - mu_k) / sigma_k)^2,

m_k the generated windows' mean of statistic k, mu_k the real windows', sigma_k the std of
the pooled real and generated values (so ``|m_k - mu_k| / sigma_k <= 2``, and a statistic
that no window of the batch varies in adds nothing). Its score-function gradient is
``E[r_i grad log p(window_i)]`` with the per-window reward

    r_i = -sum_k (m_k - mu_k) / sigma_k * (s_ik - m_k) / sigma_k,

which is centred on the batch's generated mean (its baseline). It moves the **means**
towards the real ones and leaves each window free to differ from them (a per-window
distance to the mean would also shrink the spread: mode collapse). m, mu and sigma come
from running averages over the last ~100 batches (`running_moments`), so the gap is
measured, not sampled anew each step; only ``s_ik - m_k`` is the batch's.

The statistics are computed in numpy (`tf.numpy_function`, on the host) from raw units:
the windows are denormalised with the run's `FeatureScaler`.

The six statistics depend on the window's length (100 tones span more semitones than 32,
and repeat more figures), so a reward measured on the 32-step training windows matches the
32-step means, not those of the 100-step songs users generate. With
`Config.statistics_reward_steps` the generated windows are longer free runs and the real
side is fixed: `reference_moments` of real windows of that length from the training split.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from crnn_gan import metrics
from crnn_gan.distribute import global_mean

#: Smallest pooled std a statistic's difference is divided by (all windows equal: no signal).
SCALE_FLOOR = 1e-6
#: Decay of the running moments (about the last 100 batches). One batch's means are too
#: noisy: with 16 real and 16 generated windows, gaps of 0.35 sigma arise from sampling
#: alone, and a gap computed from the same batch rewards each window for being near the
#: batch's own mean (a 1 / batch penalty on the spread, i.e. towards mode collapse).
MOMENT_DECAY = 0.99
#: Statistics per window (`metrics.STATISTICS`).
NUM_STATISTICS = len(metrics.STATISTICS)


def window_statistics(raw_windows: np.ndarray) -> np.ndarray:
    """The six statistics of each window.

    Args:
        raw_windows: ``[batch, T, 4 * k]`` steps in raw units (ticks, Hz, velocity, ticks per
            tone slot; packed C-RNN-GAN-3 steps for k = 3), or a list of such windows of
            any lengths.

    Returns:
        float32 ``[batch, 6]``, columns in `metrics.STATISTICS` order.
    """
    rows = []
    for window in raw_windows:
        values = metrics.all_statistics(window)
        rows.append([values[name] for name in metrics.STATISTICS])
    return np.asarray(rows, np.float32).reshape(len(rows), NUM_STATISTICS)


def batch_statistics(normalised_windows, scaler):
    """`window_statistics` of normalised windows in a graph: ``[batch, T, F]`` -> ``[batch, 6]``.

    Args:
        normalised_windows: float32 tensor in the model's units.
        scaler: the run's `tfds_midi.pipeline.FeatureScaler` (raw units come from it).
    """
    raw = scaler.denormalize(normalised_windows)
    statistics = tf.numpy_function(window_statistics, [raw], tf.float32, stateful=False)
    return tf.ensure_shape(statistics, [None, NUM_STATISTICS])


def reference_moments(real_statistics) -> np.ndarray:
    """float32 ``[2, 6]``: the mean and the mean of squares of each statistic over real
    windows (`window_statistics` of them, ``[n, 6]``), a fixed real side for `batch_moments`.
    """
    values = np.asarray(real_statistics, np.float64).reshape(-1, NUM_STATISTICS)
    return np.stack([values.mean(0), np.square(values).mean(0)]).astype(np.float32)


def batch_moments(real_statistics, fake_statistics, reference=None):
    """``[4, 6]`` means over the global batch: real mean, generated mean, real mean of
    squares, generated mean of squares of each statistic.

    Args:
        real_statistics: ``[batch, 6]`` statistics of this replica's real windows (unused
            with `reference`).
        fake_statistics: ``[batch, 6]`` statistics of this replica's generated windows.
        reference: None, or ``[2, 6]`` `reference_moments`: the real rows, as they are.
    """
    fake = global_mean(tf.stack([tf.reduce_mean(fake_statistics, 0),
                                 tf.reduce_mean(tf.square(fake_statistics), 0)]))
    if reference is None:
        real = global_mean(tf.stack([tf.reduce_mean(real_statistics, 0),
                                     tf.reduce_mean(tf.square(real_statistics), 0)]))
    else:
        real = tf.convert_to_tensor(reference, tf.float32)
    return tf.stack([real[0], fake[0], real[1], fake[1]])


def running_moments(previous, updates, moments):
    """The moments averaged over the batches so far: ``previous + w (moments - previous)``
    with ``w = max(1 - MOMENT_DECAY, 1 / (updates + 1))`` (the plain mean over the first
    batches, then an exponential average: the first batch replaces the zeros it starts
    from).

    Args:
        previous: ``[4, 6]`` running moments (`batch_moments` layout).
        updates: scalar float, batches averaged into `previous` so far.
        moments: ``[4, 6]`` this batch's `batch_moments`.
    """
    weight = tf.maximum(1.0 - MOMENT_DECAY, 1.0 / (updates + 1.0))
    return previous + weight * (moments - previous)


def statistics_mask(names=None) -> np.ndarray:
    """float32 ``[6]``: 1 for the statistics of `names` (`metrics.STATISTICS` names; None:
    all six), 0 for the others: which gaps `moment_matching_reward` closes."""
    if names is None:
        return np.ones(NUM_STATISTICS, np.float32)
    unknown = set(names) - set(metrics.STATISTICS)
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"statistics must be distinct names of {metrics.STATISTICS}, "
                         f"got {tuple(names)!r}")
    return np.asarray([name in names for name in metrics.STATISTICS], np.float32)


def moment_matching_reward(fake_statistics, moments, mask=None):
    """Per-window reward ``r_i`` of the module docstring.

    Args:
        fake_statistics: ``[batch, 6]`` statistics of this replica's generated windows.
        moments: ``[4, 6]`` the means that define m_k, mu_k and sigma_k (`batch_moments`
            layout; the trainer passes `running_moments`).
        mask: None (all six), or ``[6]`` `statistics_mask`: the sum over k runs over the
            statistics it holds (the loss ``1/2 sum_k mask_k gap_k^2``).

    Returns:
        (reward, gap): ``[batch]`` float32 reward of each generated window, centred on the
        global batch, and ``[6]`` the normalised gaps ``(m_k - mu_k) / sigma_k`` (times the
        mask); no gradient through either.
    """
    real_mean, fake_mean, real_square, fake_square = tf.unstack(moments)
    pooled_mean = (real_mean + fake_mean) / 2.0
    pooled_variance = (real_square + fake_square) / 2.0 - tf.square(pooled_mean)
    scale = tf.sqrt(tf.maximum(pooled_variance, SCALE_FLOOR**2))
    gap = (fake_mean - real_mean) / scale  # [6]
    if mask is not None:
        gap = gap * tf.convert_to_tensor(mask, tf.float32)
    batch_mean = global_mean(tf.reduce_mean(fake_statistics, 0))
    reward = -tf.reduce_sum(gap * (fake_statistics - batch_mean) / scale, axis=1)
    return tf.stop_gradient(reward), tf.stop_gradient(gap)
