"""The model's units and G's output heads: representation round trips, bounded and
categorical heads (valid for any weights), their losses, the new Config fields, and their
export (builtin TFLite ops, parity)."""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import heads, tonal_input, training
from crnn_gan.generator import Generator, shift_right
from export import convert, verify
from export import export as export_lib
from tfds_midi import codec, pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}


def random_songs(tones_per_step=1, count=3, length=60, seed=0):
    """Raw songs of valid tones (packed for C-RNN-GAN-3: absent slots included)."""
    rng = np.random.default_rng(seed)
    songs = []
    for _ in range(count):
        tones = np.stack([
            rng.choice([96.0, 192.0, 384.0, 768.0], length),
            codec.pitch_to_hz(rng.integers(40, 90, length)),
            rng.integers(40, 110, length).astype(np.float64),
            rng.choice([0.0, 0.0, 192.0, 384.0], length)], axis=1).astype(np.float32)
        tones[0, 3] = 0.0
        songs.append(codec.pack_tones(tones, tones_per_step) if tones_per_step > 1 else tones)
    return songs


def valid_fraction(raw_tones):
    """Fraction of tones ``[n, 4]`` with MIDI pitch 21..108, length > 0, velocity 1..127,
    and a delta that is not negative (float32 rounding of a 0 aside: > -1e-3 ticks)."""
    hz = raw_tones[:, 1]
    pitch = np.where(hz > 0, np.rint(69 + 12 * np.log2(np.maximum(hz, 1e-9) / 440)), -1)
    velocity = np.rint(raw_tones[:, 2])
    ok = (pitch >= 21) & (pitch <= 108) & (raw_tones[:, 0] > 0) & (velocity >= 1) & (
        velocity <= 127) & (raw_tones[:, 3] > -1e-3)
    return float(ok.mean())


# --- Representation -------------------------------------------------------------------------

@pytest.mark.parametrize("representation", ["hz", "log"])
@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_representation_round_trip_numpy_and_tensorflow(representation, tones_per_step):
    songs = random_songs(tones_per_step)
    scaler = pipeline.FeatureScaler.fit(songs, representation)
    raw = np.concatenate(songs)
    normalized = scaler.normalize(raw)
    assert normalized.dtype == np.float32
    np.testing.assert_allclose(normalized.mean(0), 0, atol=1e-4)
    present = np.repeat(raw[:, 2::4] > 0, 4, axis=1)  # absent slots have Hz 0: see below
    back = scaler.denormalize(normalized)
    np.testing.assert_allclose(back[present], raw[present], rtol=2e-5, atol=1e-3)
    in_graph = scaler.denormalize(tf.constant(normalized)).numpy()
    np.testing.assert_allclose(in_graph[present], raw[present], rtol=2e-5, atol=1e-3)
    np.testing.assert_allclose(scaler.normalize(tf.constant(raw)).numpy(), normalized,
                               rtol=1e-5, atol=1e-5)


def test_log_representation_units():
    """A semitone is one unit of pitch; lengths and deltas are log(1 + ticks)."""
    raw = np.asarray([[384.0, 440.0, 90.0, 0.0], [0.0, 0.0, 0.0, 1.0]], np.float32)
    encoded = pipeline.encode_tone_columns(raw, "log")
    np.testing.assert_allclose(encoded[0], [np.log(385.0), 69.0, 90.0, 0.0], rtol=1e-12)
    # Hz 0 (an absent C-RNN-GAN-3 slot) encodes as MIDI pitch 0, not -inf.
    np.testing.assert_allclose(encoded[1], [0.0, 0.0, 0.0, np.log(2.0)], atol=1e-12)
    np.testing.assert_allclose(pipeline.encode_tone_columns(
        codec.pitch_to_hz(np.asarray([[0, 21, 0, 0], [0, 108, 0, 0]])), "log")[:, 1],
        [21, 108], atol=1e-4)
    # The model's pitch unit is the codec's pitch rule (tfds_midi.codec is its home): above
    # MIDI pitch 0 the encoding equals hz_to_fractional_pitch, the decoding pitch_to_hz.
    hz = np.random.default_rng(0).uniform(8.2, 5000.0, size=(50, 4))
    encoded = pipeline.encode_tone_columns(hz, "log")
    np.testing.assert_allclose(encoded[:, 1], codec.hz_to_fractional_pitch(hz[:, 1]),
                               rtol=1e-12)
    np.testing.assert_allclose(pipeline.decode_tone_columns(encoded, "log")[:, 1],
                               codec.pitch_to_hz(encoded[:, 1], dtype=np.float64), rtol=1e-12)


def test_scaler_json_keeps_the_representation_and_reads_old_files():
    scaler = pipeline.FeatureScaler.fit(random_songs(), "log")
    again = pipeline.FeatureScaler.from_json(scaler.to_json())
    assert again.representation == "log"
    old = json.dumps({"mean": [1, 2, 3, 4], "std": [1, 1, 1, 1]})
    assert pipeline.FeatureScaler.from_json(old).representation == "hz"
    with pytest.raises(ValueError, match="representation"):
        pipeline.FeatureScaler(scaler.mean, scaler.std, "mel")


# --- Heads ----------------------------------------------------------------------------------

def generator_with_head(head, tones_per_step=1, representation="log", scale=1.0, seed=0,
                        temperature=1.0):
    """G with a head of `heads.HEADS`, or "autoregressive" (categorical, drawn in order; its
    conditioning weights random instead of their zero start, so that they act)."""
    songs = random_songs(tones_per_step)
    scaler = pipeline.FeatureScaler.fit(songs, representation)
    keras.utils.set_random_seed(seed)
    autoregressive = head == "autoregressive"
    generator = Generator(tones_per_step=tones_per_step, units=16, num_layers=2,
                          implementation="block",
                          output_head="categorical" if autoregressive else head,
                          sampling_temperature=temperature,
                          autoregressive_head=autoregressive)
    generator.build()
    generator.set_output_range(songs, scaler)
    randomize_conditioning(generator, seed)
    for variable in generator.trainable_weights:
        variable.assign(variable.numpy() * scale)
    return generator, scaler, songs


def randomize_conditioning(generator, seed=0):
    """Random (acting) weights for the autoregressive head's conditioning, if it has one."""
    rng = np.random.default_rng(seed)
    for variable in generator.conditioning or []:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype(np.float32))


@pytest.mark.parametrize("head", ["bounded", "categorical", "autoregressive"])
@pytest.mark.parametrize("representation", ["hz", "log"])
@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_head_outputs_are_valid_for_any_weights(head, representation, tones_per_step):
    """Huge random weights drive every pre-activation to its extremes: the raw outputs
    still hold only valid tones (for C-RNN-GAN-3: present slots)."""
    for scale in (1.0, 30.0):
        generator, scaler, _ = generator_with_head(head, tones_per_step, representation, scale)
        noise = np.random.default_rng(1).uniform(size=(8, 40, generator.noise_dim))
        raw = scaler.denormalize(np.asarray(generator(noise.astype(np.float32)), np.float64))
        tones = raw.reshape(-1, 4)
        present = tones[np.rint(tones[:, 2]) >= 1] if tones_per_step > 1 else tones
        assert len(present) > 0
        assert valid_fraction(present) == 1.0, (scale, present[:5])
        assert np.all(np.isfinite(tones))


@pytest.mark.parametrize("head", ["categorical", "autoregressive"])
def test_categorical_gan3_writes_absent_slots_as_the_data_holds_them(head):
    """A slot sampled absent (velocity 0) carries the data's absent values (raw zeros) in
    all four features; present slots are the plain samples, unchanged."""
    generator, scaler, songs = generator_with_head(head, tones_per_step=3)
    noise = np.random.default_rng(2).uniform(size=(8, 40, generator.noise_dim))
    steps = np.asarray(generator(noise.astype(np.float32)))
    slots = steps.reshape(8, 40, 3, 4)
    absent_value = heads.absent_values(scaler, 3).reshape(3, 4)
    np.testing.assert_allclose(absent_value, scaler.normalize(np.zeros((1, 12))).reshape(3, 4))
    velocity_zero = scaler.normalize(np.zeros((1, 12))).reshape(3, 4)[:, 2]
    absent = np.isclose(slots[..., 2], velocity_zero)
    assert 0 < absent.mean() < 1
    for slot in range(3):
        np.testing.assert_array_equal(slots[..., slot, :][absent[..., slot]],
                                      np.broadcast_to(absent_value[slot], (
                                          int(absent[..., slot].sum()), 4)))
    if head == "autoregressive":
        return  # the comparison below is of the independent draws
    # The same dense outputs and noise without the rule: present slots are equal.
    dense = np.random.default_rng(3).normal(size=(400, heads.head_units("categorical", 12)))
    noise_t = np.random.default_rng(4).uniform(size=(400, 12)).astype(np.float32)
    bins = generator.output_range
    plain = heads.emit("categorical", dense.astype(np.float32), noise_t, bins=bins).numpy()
    canonical = heads.emit("categorical", dense.astype(np.float32), noise_t, bins=bins,
                           absent=generator.absent_step).numpy()
    present = np.repeat(~np.isclose(plain[:, 2::4], velocity_zero), 4, axis=-1)
    np.testing.assert_array_equal(canonical[present], plain[present])
    assert not np.array_equal(canonical[~present], plain[~present])


def test_linear_head_can_leave_the_valid_range():
    """The paper's head, for contrast: the same weights produce invalid tones."""
    generator, scaler, _ = generator_with_head("linear", 1, "hz", scale=30.0)
    noise = np.random.default_rng(1).uniform(size=(8, 40, 4)).astype(np.float32)
    raw = scaler.denormalize(np.asarray(generator(noise), np.float64))
    assert valid_fraction(raw.reshape(-1, 4)) < 0.9


@pytest.mark.parametrize("temperature", [1.0, 0.6, (0.6, 0.6, 1.0, 0.6)])
def test_categorical_head_samples_its_distribution_with_the_noise(temperature):
    """Inverse-CDF sampling: value k is chosen with probability softmax(logits / T)_k, and
    the value is exactly one of the bins; the same noise gives the same value. A tuple:
    each feature at its own temperature (the velocity's, `velocity_temperature`)."""
    rng = np.random.default_rng(0)
    features, count = 4, 20000
    logits = rng.normal(size=(features * heads.CATEGORICAL_BINS,)).astype(np.float32) * 2
    bins = np.sort(rng.normal(size=(features, heads.CATEGORICAL_BINS)), axis=1).astype(
        np.float32)
    dense = np.tile(logits, (count, 1))
    noise = rng.uniform(size=(count, features)).astype(np.float32)
    values = heads.emit("categorical", tf.constant(dense), tf.constant(noise),
                        bins=tf.constant(bins), temperature=temperature).numpy()
    per_feature = np.broadcast_to(np.asarray(temperature, np.float32), (features,))
    probabilities = tf.nn.softmax(logits.reshape(features, -1) / per_feature[:, None]).numpy()
    for f in range(features):
        index = np.searchsorted(bins[f], values[:, f])
        np.testing.assert_array_equal(bins[f][index], values[:, f])  # exactly a bin
        frequency = np.bincount(index, minlength=heads.CATEGORICAL_BINS) / count
        # Binomial standard error: at most sqrt(p (1 - p) / n) < 0.0036; 5 sigma.
        np.testing.assert_allclose(frequency, probabilities[f], atol=0.018)
        # Brute force inverse CDF.
        expected = [bins[f][min(np.searchsorted(np.cumsum(probabilities[f]), u, "right"),
                                heads.CATEGORICAL_BINS - 1)] for u in noise[:200, f]]
        np.testing.assert_allclose(values[:200, f], expected)


def test_feature_temperatures_set_the_velocity_of_every_tone_apart():
    assert heads.feature_temperatures(0.8, 0.0, 4) == 0.8  # 0: the same as the others
    assert heads.feature_temperatures(0.8, 0.8, 12) == 0.8
    assert heads.feature_temperatures(0.8, 1.0, 8) == (0.8, 0.8, 1.0, 0.8, 0.8, 0.8, 1.0, 0.8)
    generator = Generator(tones_per_step=3, units=8, output_head="categorical",
                          sampling_temperature=0.7, velocity_temperature=1.2)
    assert generator.feature_temperatures == (0.7, 0.7, 1.2, 0.7) * 3
    assert Generator.from_config(generator.get_config()).feature_temperatures == (
        generator.feature_temperatures)


def test_categorical_head_gradient_is_the_expectations():
    rng = np.random.default_rng(1)
    bins = tf.constant(rng.normal(size=(4, heads.CATEGORICAL_BINS)).astype(np.float32))
    dense = tf.Variable(rng.normal(size=(3, 4 * heads.CATEGORICAL_BINS)).astype(np.float32))
    noise = tf.constant(rng.uniform(size=(3, 4)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(3, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        sampled = tf.reduce_sum(weights * heads.emit("categorical", dense, noise, bins=bins))
        probabilities = tf.nn.softmax(tf.reshape(dense, [3, 4, -1]))
        expectation = tf.reduce_sum(weights * tf.reduce_sum(probabilities * bins, -1))
    np.testing.assert_allclose(tape.gradient(sampled, dense), tape.gradient(expectation, dense),
                               atol=1e-6)


@pytest.mark.parametrize("tones_per_step, velocity_temperature", [(1, 0.0), (3, 0.0), (3, 1.0)])
def test_autoregressive_draws_are_the_inverse_cdf_of_the_conditional_logits(
        tones_per_step, velocity_temperature):
    """The generation loop draws a step's features one after another; teacher forcing on
    its own outputs and `conditional_logits` (all features at once, each seeing the values
    drawn before it) give back the same draws from the same noise, and
    `sample_log_probability` is the sum of their log-probabilities. The conditioning acts:
    the same G without it draws other values."""
    generator, _, _ = generator_with_head("autoregressive", tones_per_step, temperature=0.8)
    generator.velocity_temperature = velocity_temperature
    temperatures = np.broadcast_to(np.asarray(generator.feature_temperatures, np.float32),
                                   (generator.num_features,))
    noise = np.random.default_rng(5).uniform(
        size=(6, 30, generator.noise_dim)).astype(np.float32)
    steps = generator(noise)
    dense, top = generator.teacher_forced_dense(noise, shift_right(steps))
    bins = generator.output_range
    logits = heads.conditional_logits(dense, top, steps, bins, list(generator.conditioning))
    redrawn = heads.emit("categorical", tf.reshape(logits, tf.shape(dense)), noise, bins=bins,
                         temperature=generator.feature_temperatures,
                         absent=generator.absent_step).numpy()
    # Teacher forcing runs the LSTM as one sequence, free running step by step: float32
    # rounding may move a draw that sits on a bin edge.
    assert np.mean(redrawn == steps.numpy()) > 0.99
    log_softmax = tf.nn.log_softmax(logits / temperatures[:, None]).numpy()  # [6, 30, F, K]
    held = steps.numpy()[..., None] == bins.numpy()
    with np.errstate(divide="ignore"):  # an absent slot's pitch: no bin holds it
        log_p = np.log(np.sum(np.exp(log_softmax) * held, axis=-1))  # [6, 30, F]
    if tones_per_step > 1:  # an absent slot's pitch, length and delta are not counted
        velocity_zero = bins.numpy()[2::4, 0]
        absent = np.repeat(steps.numpy()[..., 2::4] == velocity_zero, 4, axis=-1)
        log_p = np.where(absent & (np.arange(12) % 4 != 2), 0.0, log_p)
    np.testing.assert_allclose(generator.sample_log_probability(noise, steps),
                               log_p.sum(-1), rtol=1e-4, atol=1e-4)
    for variable in generator.conditioning:
        variable.assign(tf.zeros_like(variable))
    assert np.mean(generator(noise).numpy() == steps.numpy()) < 0.9


@pytest.mark.parametrize("num_features", [4, 12])
def test_each_feature_sees_exactly_the_features_drawn_before_it(num_features):
    """The packed value kernel: `value_rows` tiles it (every row used by one feature, none
    twice), and a feature's logits change with each value drawn before it and with no
    value drawn after it."""
    order = heads.step_order(num_features)
    shapes = heads.conditioning_shapes(16, num_features)
    rows = [heads.value_rows(position) for position in range(num_features)]
    assert rows[0].start == rows[0].stop == 0
    assert all(a.stop == b.start for a, b in zip(rows, rows[1:]))
    assert rows[-1].stop == shapes["value_kernel"][0]
    rng = np.random.default_rng(3)
    conditioning = [tf.constant(rng.normal(size=shape), tf.float32) for shape in shapes.values()]
    bins = tf.constant(np.sort(rng.normal(size=(num_features, heads.CATEGORICAL_BINS)), -1),
                       tf.float32)
    dense = tf.constant(rng.normal(size=(1, 1, num_features * heads.CATEGORICAL_BINS)),
                        tf.float32)
    hidden = tf.constant(rng.normal(size=(1, 1, 16)), tf.float32)
    values = bins.numpy()[:, 10][None, None]  # [1, 1, F]: every value held by one bin

    def logits(values):
        return heads.conditional_logits(dense, hidden, tf.constant(values), bins,
                                        conditioning).numpy()[0, 0]  # [F, K]

    reference = logits(values)
    for position, changed in enumerate(order):
        other = values.copy()
        other[..., changed] = bins.numpy()[changed, 50]
        moved = np.any(logits(other) != reference, axis=-1)  # [F]
        drawn_after = [order.index(f) > position for f in range(num_features)]
        np.testing.assert_array_equal(moved, drawn_after)


def chord_or_onset_windows(count, steps, seed):
    """Normalised windows ``[count, steps, 4]`` where every delta is 0 or 384 at random and
    a tone's pitch follows its delta (a chord tone 72, an onset 48): nothing before a step
    tells its pitch, its own delta tells it exactly."""
    rng = np.random.default_rng(seed)
    delta = rng.choice([0.0, 384.0], size=(count, steps))
    pitch = np.where(delta == 0, 72, 48)
    raw = np.stack([np.full_like(delta, 192.0), codec.pitch_to_hz(pitch),
                    np.full_like(delta, 80.0), delta], axis=-1)
    return raw


@pytest.mark.parametrize("autoregressive", [False, True])
def test_only_the_autoregressive_head_learns_a_pitch_that_follows_its_delta(autoregressive):
    """Maximum likelihood on windows whose pitch is decided by the same step's delta: the
    independent head cannot do better than ln 2 nats on pitch (it does not know the delta it
    will draw), the autoregressive head, drawing the delta first, gets close to 0."""
    songs = list(chord_or_onset_windows(8, 40, seed=0))
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    keras.utils.set_random_seed(0)
    generator = Generator(units=8, implementation="block", output_head="categorical",
                          autoregressive_head=autoregressive)
    generator.build()
    generator.set_output_range(songs, scaler)
    windows = tf.constant(scaler.normalize(chord_or_onset_windows(16, 12, seed=1)), tf.float32)
    optimizer = keras.optimizers.Adam(0.02)
    noise = tf.random.stateless_uniform([16, 12, 4], seed=[0, 1])

    @tf.function
    def update():
        with tf.GradientTape() as tape:
            loss = generator.next_step_loss(noise, windows)
        variables = generator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(150):
        update()
    dense, top = generator.teacher_forced_dense(noise, shift_right(windows))
    bins = generator.output_range
    logits = (heads.conditional_logits(dense, top, windows, bins, list(generator.conditioning))
              if autoregressive else tf.reshape(dense, [16, 12, 4, -1]))
    labels = tf.argmin(tf.abs(windows[..., None] - bins), axis=-1)
    pitch_entropy = float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels[..., 1], logits=logits[..., 1, :])))
    if autoregressive:
        assert pitch_entropy < 0.15
    else:
        assert pitch_entropy > 0.5  # ln 2 = 0.69 at best


def test_next_step_losses_against_brute_force():
    rng = np.random.default_rng(2)
    k = heads.CATEGORICAL_BINS
    bins = np.sort(rng.normal(size=(4, k)), axis=1).astype(np.float32)
    dense = rng.normal(size=(2, 3, 4 * k)).astype(np.float32)
    targets = rng.normal(size=(2, 3, 4)).astype(np.float32)
    loss = heads.next_step_loss("categorical", dense, targets, bins=bins).numpy()
    expected = []
    for b in range(2):
        for t in range(3):
            for f in range(4):
                logits = dense[b, t, f * k:(f + 1) * k].astype(np.float64)
                label = np.argmin(np.abs(bins[f] - targets[b, t, f]))
                expected.append(np.log(np.exp(logits).sum()) - logits[label])
    np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)
    bounds = np.asarray([[-1, 1], [0, heads.UNBOUNDED], [-heads.UNBOUNDED, 2],
                         [-heads.UNBOUNDED, heads.UNBOUNDED]], np.float32)
    x = dense[..., :4]
    squashed = np.stack([-1 + 2 / (1 + np.exp(-x[..., 0])), np.log1p(np.exp(x[..., 1])),
                         2 - np.log1p(np.exp(-x[..., 2])), x[..., 3]], axis=-1)
    np.testing.assert_allclose(heads.squash(tf.constant(x), bounds).numpy(), squashed,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(heads.next_step_loss("bounded", x, targets, bounds=bounds),
                               np.mean((squashed - targets) ** 2), rtol=1e-5)


def test_categorical_bins_hold_the_piano_and_the_datas_values():
    songs = random_songs(3)
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    bins = scaler.denormalize(heads.output_bins(songs, scaler, 3).T)  # [K, 12] raw
    np.testing.assert_allclose(codec.hz_to_pitch(bins[:, 1]), np.arange(21, 109))
    assert set(np.rint(bins[:, 0])) == {96, 192, 384, 768}
    assert 0 in set(np.rint(bins[:, 2])) and set(np.rint(bins[:, 3])) == {0, 192, 384}


def test_output_range_is_saved_with_the_weights(tmp_path):
    generator, _, _ = generator_with_head("categorical")
    path = str(tmp_path / "g.weights.h5")
    generator.save_weights(path)
    again = Generator(tones_per_step=1, units=16, num_layers=2, output_head="categorical")
    again.build()
    again.load_weights(path)
    np.testing.assert_array_equal(again.output_range.numpy(), generator.output_range.numpy())


# --- Config ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field,bad", [
    ("representation", "mel"), ("output_head", "softmax"), ("l2_units", "hz"),
    ("label_smoothing", 0.5), ("label_smoothing", -0.1), ("supervised_weight", -1.0),
    ("sampling_temperature", 0.0), ("checkpoint_choice", "best"),
    ("velocity_temperature", -1.0), ("velocity_temperature", 1.0),  # tiny: the linear head
    ("instance_noise_std", -0.1), ("instance_noise_std", float("nan")),
    ("instance_noise_std", float("inf")), ("autoregressive_head", True)])
def test_new_config_fields_are_validated(field, bad):
    with pytest.raises(ValueError, match=field):
        config_lib.preset("tiny", **{field: bad})


def test_the_small_presets_gan3_draws_in_order_unless_told_otherwise():
    """`GAN3_OVERRIDES`: the small preset's C-RNN-GAN-3 gets the autoregressive head, its
    C-RNN-GAN does not, a caller's own value wins, and a non-categorical GAN-3 stays valid."""
    assert config_lib.preset("small", tones_per_step=3).autoregressive_head is True
    assert config_lib.preset("small").autoregressive_head is False
    assert config_lib.preset("small", tones_per_step=1).autoregressive_head is False
    assert config_lib.preset(
        "small", tones_per_step=3, autoregressive_head=False).autoregressive_head is False
    linear = config_lib.preset("small", tones_per_step=3, output_head="linear",
                               gradient_estimator="straight_through",
                               statistics_reward_weight=0.0)
    assert linear.autoregressive_head is False
    for name in ("paper", "tiny"):  # no overrides: the presets as they are
        assert config_lib.preset(name, tones_per_step=3) == config_lib.PRESETS[name].replace(
            tones_per_step=3)
    assert set(config_lib.GAN3_OVERRIDES) <= set(config_lib.PRESETS)


def test_config_choice_lists_equal_their_homes():
    """config.py keeps copies of the choices (it imports neither Keras nor TensorFlow, so
    that entry points can set threads first); each must equal the list of the module that
    implements the choice."""
    from crnn_gan import lstm

    assert config_lib.IMPLEMENTATIONS == lstm.IMPLEMENTATIONS
    assert config_lib.REPRESENTATIONS == pipeline.REPRESENTATIONS
    assert config_lib.OUTPUT_HEADS == heads.HEADS


def test_l2_in_raw_units_matches_the_original_codes_weight():
    """The original code added 0.1 * l2 to a squared error in raw units; in normalised
    units the data loss is smaller by std**2, so the same balance needs 0.1 / std**2."""
    config = config_lib.preset("paper")
    assert config.l2_units == "raw"
    assert config.l2_in_model_units([100.0, 100.0]) == pytest.approx(0.1 / 1e4)
    assert config_lib.preset("tiny").l2_in_model_units([100.0]) == 1e-3


# --- Training and export --------------------------------------------------------------------

@pytest.mark.parametrize("head", ["bounded", "categorical", "autoregressive"])
def test_gan_trains_with_the_new_levers(tmp_path, head):
    """A real (tiny) run with every new lever on: losses finite, the output range set
    from the data, the supervised loss logged, G and D both updated."""
    autoregressive = head == "autoregressive"
    head = "categorical" if autoregressive else head
    # The autoregressive head with the small preset's score-function gradient.
    estimator = ({"gradient_estimator": "score_function", "feature_matching": False,
                  "statistics_reward_weight": 1.0} if autoregressive else {})
    config = config_lib.preset(
        "tiny", representation="log", output_head=head, autoregressive_head=autoregressive,
        optimizer="adam",
        learning_rate=1e-3, supervised_weight=1.0, label_smoothing=0.1, epochs=2,
        pretrain_epochs=1, units=8, **estimator)
    spec = training.RunSpec(model_dir=str(tmp_path / "run"), samples_per_epoch=1)
    history = training.train(config, spec, songs=random_songs(1, count=6))
    logs = history.history
    assert np.isfinite(logs["g_loss"][-1]) and logs["g_supervised_loss"][-1] > 0
    generator, loaded_config, scaler = training.load_generator(spec.model_dir)
    assert loaded_config.output_head == head and scaler.representation == "log"
    assert np.any(generator.output_range.numpy() != 0)
    assert generator.autoregressive_head == autoregressive
    if autoregressive:  # its conditioning started at zero and was trained
        assert all(np.any(w.numpy() != 0) for w in generator.conditioning)


@pytest.fixture(scope="module",
                params=[("categorical", 3), ("bounded", 3), ("autoregressive", 1)])
def exported_head(request, tmp_path_factory):
    head, tones_per_step = request.param
    base = tmp_path_factory.mktemp(f"export_{head}")
    autoregressive = head == "autoregressive"
    head = "categorical" if autoregressive else head
    # The categorical export samples at a temperature other than 1 (the small preset's),
    # its velocities at another one.
    categorical = head == "categorical"
    config = config_lib.preset("tiny", tones_per_step=tones_per_step, units=32,
                               representation="log", output_head=head,
                               autoregressive_head=autoregressive,
                               sampling_temperature=0.8 if categorical else 1.0,
                               velocity_temperature=1.0 if categorical else 0.0)
    keras.utils.set_random_seed(0)
    generator = training.build_generator(config)
    generator.build()
    songs = random_songs(tones_per_step)
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    generator.set_output_range(songs, scaler)
    randomize_conditioning(generator)
    run = base / "run"
    run.mkdir()
    generator.save_weights(str(run / "generator.weights.h5"))
    (run / "config.json").write_text(json.dumps(
        {"config": dataclasses.asdict(config), "model": "gan", "seed": 0}))
    scaler.save(str(run / "scaler.json"))
    out = base / "out"
    result = subprocess.run([sys.executable, "-m", "export", f"--model_dir={run}",
                             f"--output={out}", "--quantization=none"], capture_output=True,
                            text=True, env=ENV, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return generator, scaler, str(out)


def test_new_heads_export_with_builtin_ops_and_parity(exported_head):
    generator, scaler, out = exported_head
    with open(os.path.join(out, "generator.tflite"), "rb") as f:
        model = f.read()
    assert convert.tflite_ops(model)["custom"] == set()
    summary = json.loads(open(os.path.join(out, "export.json")).read())
    assert summary["errors"]["tflite_step_vs_saved_model"] <= verify.TFLITE_ERROR_BOUND
    assert summary["output_head"] == generator.output_head
    assert summary["sampling_temperature"] == generator.sampling_temperature
    assert summary["autoregressive_head"] == generator.autoregressive_head
    assert summary["velocity_temperature"] == generator.velocity_temperature
    if generator.output_head == "categorical":
        assert generator.sampling_temperature == 0.8 and generator.velocity_temperature == 1.0
        readme = open(os.path.join(out, "README.md")).read()
        assert "sampling temperature 0.8" in readme
        assert "Velocities are drawn at temperature 1." in readme
    # In a fresh process, LiteRT alone: the raw outputs are valid tones.
    script = (
        "import sys, numpy as np\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "r = Interpreter(model_path=sys.argv[1]).get_signature_runner('serving_default')\n"
        "d = int(r.get_input_details()['noise']['shape'][-1])\n"
        "n = np.random.default_rng(0).uniform(size=(1, 50, d)).astype(np.float32)\n"
        "np.save(sys.argv[2], r(noise=n)['tones'])\n"
        "assert 'tensorflow' not in sys.modules\n")
    target = os.path.join(out, "tflite_tones.npy")
    subprocess.run([sys.executable, "-c", script, os.path.join(out, "generator.tflite"),
                    target], check=True, env=ENV, timeout=120)
    tones = np.load(target).reshape(-1, 4)
    if generator.tones_per_step > 1:
        tones = tones[np.rint(tones[:, 2]) >= 1]
    assert valid_fraction(tones) == 1.0
    noise = np.random.default_rng(0).uniform(size=(1, 50, generator.noise_dim))
    keras_raw = scaler.denormalize(np.asarray(generator(noise.astype(np.float32))))
    np.testing.assert_allclose(
        scaler.normalize(np.load(target).reshape(1, 50, -1)), scaler.normalize(keras_raw),
        atol=1e-3)


# --- Pitch-class input ----------------------------------------------------------------------

def test_pitch_class_features_identify_classes_and_ignore_octaves():
    from crnn_gan import tonal_input

    scaler = pipeline.FeatureScaler.fit(random_songs(3), "log")
    affine = tonal_input.pitch_affine(scaler)
    pitches = np.arange(21, 109)
    raw = np.zeros((len(pitches), 12), np.float32)
    raw[:, 1::4] = codec.pitch_to_hz(pitches)[:, None]
    features = tonal_input.pitch_class_features(
        tf.constant(scaler.normalize(raw)), tf.constant(affine)).numpy()
    assert features.shape == (len(pitches), 36)
    slot = features[:, :12]
    for a in range(len(pitches)):
        same = np.abs(slot - slot[a]).max(axis=1) < 1e-3
        np.testing.assert_array_equal(same, pitches % 12 == pitches[a] % 12)
    # The 12 classes are linearly independent (a linear layer can read any class).
    assert np.linalg.matrix_rank(np.c_[slot[:12], np.ones(12)], tol=1e-3) == 12
    with pytest.raises(ValueError, match="log"):
        tonal_input.pitch_affine(pipeline.FeatureScaler.fit(random_songs(), "hz"))
    with pytest.raises(ValueError, match="pitch_class_input"):
        config_lib.preset("tiny", pitch_class_input=True)


def test_gan_with_pitch_class_input_trains_and_exports(tmp_path):
    config = config_lib.preset(
        "tiny", representation="log", output_head="categorical", pitch_class_input=True,
        optimizer="adam", learning_rate=1e-3, supervised_weight=1.0, epochs=2,
        pretrain_epochs=1, units=8)
    run = str(tmp_path / "run")
    training.train(config, training.RunSpec(model_dir=run, samples_per_epoch=1),
                   songs=random_songs(1, count=6))
    generator, _, scaler = training.load_generator(run)
    np.testing.assert_allclose(generator.pitch_affine.numpy(),
                               __import__("crnn_gan.tonal_input").tonal_input.pitch_affine(
                                   scaler))
    summary = export_lib.export_loaded(generator, scaler, str(tmp_path / "out"),
                                       quantizations=())
    assert summary["errors"]["tflite_step_vs_saved_model"] <= verify.TFLITE_ERROR_BOUND
    assert convert.tflite_ops(open(tmp_path / "out" / "generator.tflite", "rb").read())[
        "custom"] == set()


@pytest.mark.parametrize("discriminator_pitch_classes", [True, False])
def test_discriminator_pitch_classes_switches_d_input_only(discriminator_pitch_classes):
    config = config_lib.preset("tiny", representation="log", output_head="categorical",
                               pitch_class_input=True, units=10,
                               discriminator_pitch_classes=discriminator_pitch_classes)
    model = training.build_model(config, "gan")
    assert model.generator.pitch_class_input
    assert model.discriminator.pitch_class_input == discriminator_pitch_classes
    window = tf.random.uniform((2, config.seq_len, config.num_features))
    model.discriminator(window)
    width = {v.shape[0] for v in model.discriminator.trainable_variables
             if len(v.shape) == 2 and v.shape[1] == 4 * config.units}
    extra = tonal_input.pitch_class_features(
        window, tf.ones((config.tones_per_step, 2))).shape[-1]
    with_classes, without = config.num_features + extra, config.num_features
    if not discriminator_pitch_classes:
        with_classes, without = without, with_classes
    assert with_classes in width and without not in width, width  # layer 0's input kernel


def test_adversarial_learning_rate_scale_switches_with_the_phase():
    config = config_lib.preset("tiny", optimizer="adam", learning_rate=1e-3,
                               adversarial_learning_rate_scale=0.1)
    model = training.build_model(config, "gan")
    model.set_pretraining(True)
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    model.set_pretraining(False)
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert float(model.d_optimizer.learning_rate.numpy()) == pytest.approx(
        1e-3 * config.d_learning_rate_scale)
    model.set_pretraining(True)  # a resumed run back in pretraining gets the base rate
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


def test_a_non_finite_gradient_skips_the_update_instead_of_poisoning_the_weights():
    from crnn_gan.distribute import reduce_and_clip

    finite = [tf.constant([3.0, 4.0]), tf.constant([[0.0]])]
    np.testing.assert_allclose(reduce_and_clip(finite, 1.0)[0], [0.6, 0.8], rtol=1e-6)
    overflow = [tf.constant([np.inf, 1.0]), tf.constant([[2.0]])]
    for clip_norm in (0.0, 5.0):
        for g in reduce_and_clip(overflow, clip_norm):
            np.testing.assert_array_equal(g.numpy(), np.zeros(g.shape))


@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_transposition_shifts_present_pitches_by_whole_semitones(tones_per_step):
    songs = random_songs(tones_per_step, count=6, length=30)
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    plain = pipeline.window_dataset(songs, scaler, 10, 4, seed=3, windows_per_song=2)
    moved = pipeline.window_dataset(songs, scaler, 10, 4, seed=3, windows_per_song=2,
                                    transpose_semitones=5)
    shifts = set()
    for a, b in zip(plain.take(3), moved.take(3)):
        raw_a = scaler.denormalize(a.numpy().astype(np.float64)).reshape(-1, 4)
        raw_b = scaler.denormalize(b.numpy().astype(np.float64)).reshape(-1, 4)
        present = raw_a[:, 2] >= 0.5
        np.testing.assert_allclose(raw_b[:, [0, 2, 3]], raw_a[:, [0, 2, 3]], rtol=1e-4,
                                   atol=1e-3)
        np.testing.assert_allclose(raw_b[~present], raw_a[~present], atol=1e-3)
        semitones = 12 * np.log2(raw_b[present, 1] / raw_a[present, 1])
        np.testing.assert_allclose(semitones, np.rint(semitones), atol=1e-3)
        per_window = semitones.reshape(4, -1) if tones_per_step == 1 else semitones
        shifts |= set(np.rint(per_window).ravel().astype(int))
    assert shifts <= set(range(-5, 6)) and len(shifts) > 2
    with pytest.raises(ValueError, match="log"):
        pipeline.window_dataset(songs, pipeline.FeatureScaler.fit(songs, "hz"), 10, 4,
                                transpose_semitones=2)


def test_categorical_loss_leaves_out_the_pitch_and_length_of_absent_slots():
    """C-RNN-GAN-3: an absent slot's pitch and length are not fitted (their placeholder
    pitch would otherwise be played as the piano's lowest key)."""
    songs = random_songs(3)
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    bins = heads.output_bins(songs, scaler, 3)
    k = heads.CATEGORICAL_BINS
    targets = scaler.normalize(np.concatenate(songs)[None, :20]).astype(np.float32)
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(1, 20, 12 * k)).astype(np.float32)
    loss = heads.next_step_loss("categorical", dense, targets, bins=bins).numpy()
    raw = np.concatenate(songs)[:20]
    terms, weights = [], []
    for t in range(20):
        for f in range(12):
            logits = dense[0, t, f * k:(f + 1) * k].astype(np.float64)
            label = np.argmin(np.abs(bins[f] - targets[0, t, f]))
            absent = raw[t, 4 * (f // 4) + 2] < 0.5
            weight = 0.0 if absent and f % 4 in (0, 1) else 1.0
            terms.append(weight * (np.log(np.exp(logits).sum()) - logits[label]))
            weights.append(weight)
    assert 0 < sum(weights) < 240
    np.testing.assert_allclose(loss, sum(terms) / sum(weights), rtol=1e-5)


def test_a_resumed_adversarial_phase_keeps_the_scaled_rate_not_its_square():
    """BackupAndRestore restores the optimizer's learning-rate variable, which holds the
    scaled rate when the backup was taken in the adversarial phase."""
    config = config_lib.preset("tiny", optimizer="adam", learning_rate=1e-3,
                               adversarial_learning_rate_scale=0.1)
    model = training.build_model(config, "gan")
    model.g_optimizer.learning_rate.assign(1e-4)  # as restored from an adversarial backup
    model.set_pretraining(False)
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
