"""crnn_gan.quality (the measures of the quality protocol) and benchmarks/bench_quality.py.

Every measure is checked against a brute-force or hand-computed value on small arrays; the
runner is run end to end on a tiny synthetic corpus.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from crnn_gan import metrics, quality
from tests import midi_fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tone(length=192.0, hz=440.0, velocity=80.0, delta=96.0):
    return [length, hz, velocity, delta]


def _songs(n, steps, rng, *, velocity=80.0, pitch_low=48, pitch_high=84, k=1):
    """Valid random songs ``[n, steps, k, 4]`` on the pitch grid."""
    x = np.zeros((n, steps, k, 4))
    x[..., 0] = rng.integers(1, 400, (n, steps, k))
    x[..., 1] = 440.0 * 2.0 ** ((rng.integers(pitch_low, pitch_high, (n, steps, k)) - 69) / 12)
    x[..., 2] = velocity + rng.normal(0, 5, (n, steps, k))
    x[..., 3] = rng.choice([0, 96, 192, 384], (n, steps, k))
    return x


# --------------------------------------------------------------------------------------
# Valid tones.
# --------------------------------------------------------------------------------------

def test_valid_fraction_counts_each_kind_of_invalid_tone():
    tones = [
        _tone(),                            # valid: A4
        _tone(hz=27.5),                     # valid: A0 = pitch 21 (lowest piano key)
        _tone(hz=4186.0),                   # valid: C8 = pitch 108
        _tone(velocity=0.5),                # valid: rounds (half up) to 1
        _tone(velocity=127.4),              # valid: rounds to 127
        _tone(hz=25.9),                     # invalid: pitch 20 (sub-audio, below A0)
        _tone(hz=0.0),                      # invalid: no frequency (sub-audio)
        _tone(hz=-300.0),                   # invalid: negative frequency (sub-audio)
        _tone(hz=4434.9),                   # invalid: pitch 109
        _tone(length=0.0),                  # invalid: length 0
        _tone(length=-5.0),                 # invalid: negative length
        _tone(velocity=0.4),                # invalid: rounds to 0 (k = 1: every step is a tone)
        _tone(velocity=127.5),              # invalid: rounds to 128
        _tone(hz=np.nan),                   # invalid: not finite
        _tone(length=np.inf),               # invalid: not finite
        _tone(delta=-10.0),                 # valid: delta is not part of validity
    ]
    result = quality.tone_validity(np.array(tones)[None, :, None, :])
    assert result["tones"] == result["slots"] == 16
    assert result["valid_fraction"] == pytest.approx(6 / 16)
    assert result["sub_audio"] == result["pitch_below"] == pytest.approx(3 / 16)
    assert result["pitch_above"] == pytest.approx(1 / 16)
    assert result["length_not_positive"] == pytest.approx(2 / 16)
    assert result["velocity_out_of_range"] == pytest.approx(2 / 16)
    assert result["non_finite"] == pytest.approx(2 / 16)
    assert result["negative_delta"] == pytest.approx(1 / 16)
    # The same tones as [N, T, 4] give the same numbers.
    assert quality.tone_validity(np.array(tones)[None]) == result


def test_valid_fraction_of_three_tone_steps_counts_present_slots_only():
    absent = [300.0, 2.0, 0.3, 50.0]     # velocity rounds to 0: absent, whatever the rest
    negative = [0.0, 0.0, -20.0, 0.0]    # velocity < 0.5: absent by the format's rule
    steps = np.array([
        [_tone(), absent, absent],
        [_tone(hz=5.0), _tone(), negative],          # one sub-audio present tone
        [_tone(velocity=200.0), absent, _tone()],     # one velocity out of range
        [[np.nan, 440.0, 0.0, 0.0], absent, absent],  # a non-finite slot counts as present
    ])
    result = quality.tone_validity(steps[None])
    assert result["slots"] == 12 and result["tones"] == 6
    assert result["present_fraction"] == pytest.approx(6 / 12)
    assert result["valid_fraction"] == pytest.approx(3 / 6)
    assert result["sub_audio"] == pytest.approx(1 / 6)
    assert result["velocity_out_of_range"] == pytest.approx(1 / 6)
    assert result["non_finite"] == pytest.approx(1 / 6)
    # No present tone at all: nothing valid.
    assert quality.tone_validity(np.array([[absent] * 3])[None])["valid_fraction"] == 0.0


def test_valid_fraction_matches_a_brute_force_loop():
    rng = np.random.default_rng(3)
    x = rng.normal([200, 300, 60, 100], [300, 600, 80, 200], size=(4, 30, 3, 4))

    def valid(tone):
        length, hz, velocity, _ = tone
        if not np.all(np.isfinite(tone)) or hz <= 0 or length <= 0:
            return False
        pitch = round(69 + 12 * np.log2(hz / 440))
        return 21 <= pitch <= 108 and 1 <= np.floor(velocity + 0.5) <= 127

    present = [t for t in x.reshape(-1, 4) if t[2] >= 0.5]
    expected = sum(valid(t) for t in present) / len(present)
    assert quality.tone_validity(x)["valid_fraction"] == pytest.approx(expected)
    assert quality.tone_validity(x)["tones"] == len(present)


# --------------------------------------------------------------------------------------
# Per-song features and diversity.
# --------------------------------------------------------------------------------------

def test_features_read_a_song_as_the_codecs_present_tones():
    """A song's features are those of ``codec.present_tones`` (absent slots dropped, their
    deltas carried, as ``codec.unpack_tones``), in either layout; its pitches are
    ``codec.hz_to_pitch``'s, as the six statistics' (+inf Hz: pitch 127)."""
    from tfds_midi import codec

    rng = np.random.default_rng(7)
    packed = rng.normal([200, 300, 1, 50], [100, 200, 2, 60], size=(40, 3, 4)).astype(
        np.float32)
    expected = codec.unpack_tones(packed.reshape(40, 12))
    assert 0 < len(expected) < 120  # some slots absent, some present
    np.testing.assert_allclose(codec.present_tones(packed), expected, rtol=1e-6, atol=1e-3)
    for song in (packed, packed.reshape(40, 12)):
        np.testing.assert_array_equal(quality.ioi_histogram(song),
                                      quality.duration_histogram(expected[:, 3]))
    song = np.array([_tone(hz=440.0), _tone(hz=np.inf), _tone(hz=-5.0)])
    assert quality.pitch_range(song) == metrics.tone_span(song) == 127
    np.testing.assert_array_equal(np.flatnonzero(quality.pitch_class_histogram(song)),
                                  [0, 7, 9])  # pitch 0 (C), 127 (G), 69 (A)


def test_features_of_a_hand_written_song():
    song = np.array([
        _tone(length=96, hz=261.63, delta=0),     # C4 (60)
        _tone(length=192, hz=329.63, delta=0),    # E4 (64), a chord with the first
        _tone(length=384, hz=392.0, delta=384),   # G4 (67)
        _tone(length=384, hz=523.25, delta=-3),   # C5 (72), negative delta
        _tone(length=6, hz=261.63, delta=0.2),    # C4, 6 ticks, delta rounds to 0
        _tone(hz=300.0, velocity=0.2),            # silent: not a present tone
    ])
    pch = quality.pitch_class_histogram(song)
    expected = np.zeros(12)
    expected[[0, 4, 7]] = [3 / 5, 1 / 5, 1 / 5]
    np.testing.assert_allclose(pch, expected)
    assert quality.pitch_range(song) == 72 - 60 == metrics.tone_span(song)
    names = quality.DURATION_BIN_NAMES
    ioi = dict(zip(names, quality.ioi_histogram(song)))
    assert ioi["zero (|x| < 0.5)"] == pytest.approx(3 / 5)
    assert ioi["negative (< -0.5)"] == pytest.approx(1 / 5)
    assert ioi["~384"] == pytest.approx(1 / 5)
    lengths = dict(zip(names, quality.note_length_histogram(song)))
    assert {k: v for k, v in lengths.items() if v} == pytest.approx(
        {"~6": 1 / 5, "~96": 1 / 5, "~192": 1 / 5, "~384": 2 / 5})


def test_duration_histogram_puts_every_value_in_one_bin():
    values = np.array([np.nan, -np.inf, -1.0, -0.5, 0.0, 0.49, 0.5, 4.0, 12.0, 96.0, 135.0,
                       136.0, 1e9, np.inf])
    counts = quality.duration_histogram(values) * len(values)
    np.testing.assert_allclose(counts.sum(), len(values))
    by_name = dict(zip(quality.DURATION_BIN_NAMES, np.rint(counts).astype(int)))
    assert by_name["non-finite"] == 3            # nan, -inf, inf
    assert by_name["negative (< -0.5)"] == 1     # -1
    assert by_name["zero (|x| < 0.5)"] == 3      # -0.5, 0, 0.49
    assert by_name["(0.5, 4.2)"] == 2            # 0.5, 4
    assert by_name["~12"] == 1 and by_name["~96"] == 2 and by_name["~192"] == 1
    assert by_name["long (>= 8689)"] == 1        # the open last bin (1e9)
    assert quality.duration_histogram([]).sum() == 0


def test_mean_pairwise_distance_is_the_brute_force_mean():
    rng = np.random.default_rng(0)
    features = rng.uniform(size=(7, 5))
    pairs = list(itertools.combinations(range(7), 2))
    expected = np.mean([np.abs(features[i] - features[j]).sum() for i, j in pairs])
    assert quality.mean_pairwise_distance(features) == pytest.approx(expected)
    assert quality.mean_pairwise_distance([1.0, 4.0, 6.0]) == pytest.approx((3 + 5 + 2) / 3)
    np.testing.assert_allclose(quality.inter_set_distances([[0.0], [1.0]], [[3.0]]), [3, 2])
    with pytest.raises(ValueError):
        quality.mean_pairwise_distance(features[:1])


def test_diversity_of_identical_songs_is_zero_and_of_different_songs_is_not():
    rng = np.random.default_rng(1)
    song = _songs(1, 50, rng)
    same = np.repeat(song, 6, axis=0)
    real = _songs(20, 50, rng)
    result = quality.diversity(same, real)
    for feature in quality.FEATURES:
        assert result[feature]["generated"] == 0.0
        assert result[feature]["real"] > 0
        assert result[feature]["ratio"] == 0.0
    varied = quality.diversity(_songs(20, 50, np.random.default_rng(2)), real)
    for feature in quality.FEATURES:
        assert varied[feature]["ratio"] == pytest.approx(1.0, abs=0.3)
    # Songs in one key, all spanning a single octave, against the real ones.
    narrow = quality.diversity(_songs(20, 50, rng, pitch_low=60, pitch_high=62), real)
    assert narrow["pitch_range"]["ratio"] < 0.5


# --------------------------------------------------------------------------------------
# Overlapping areas.
# --------------------------------------------------------------------------------------

def _exact_overlap(a, b):
    """Brute force: both Gaussian KDEs (Scott) on a fine grid, then integral of the min."""
    def kde(x, grid):
        bw = np.std(x, ddof=1) * len(x) ** -0.2
        return np.exp(-0.5 * ((grid[:, None] - x[None]) / bw) ** 2).sum(1) / (
            len(x) * bw * np.sqrt(2 * np.pi))
    grid = np.linspace(min(a.min(), b.min()) - 5, max(a.max(), b.max()) + 5, 20001)
    return np.minimum(kde(a, grid), kde(b, grid)).sum() * (grid[1] - grid[0])


def test_overlapping_area_matches_the_exact_kde_overlap():
    rng = np.random.default_rng(0)
    for shift in (0.0, 0.7, 2.0, 6.0):
        a, b = rng.normal(size=300), rng.normal(shift, 1.5, size=200)
        assert quality.overlapping_area(a, b) == pytest.approx(_exact_overlap(a, b), abs=0.01)
    # Tiny samples: the kernel is wider than the grid.
    a, b = np.array([0.0, 1.0]), np.array([0.2, 0.4, 0.9])
    assert quality.overlapping_area(a, b) == pytest.approx(_exact_overlap(a, b), abs=0.01)
    a = rng.normal(size=4000)
    assert quality.overlapping_area(a, a) == pytest.approx(1.0, abs=1e-6)
    assert quality.overlapping_area(a, a + 100) == pytest.approx(0.0, abs=1e-6)
    # Point masses: one place -> 1, two places -> 0.
    assert quality.overlapping_area([3.0] * 5, [3.0] * 7) == 1.0
    assert quality.overlapping_area([3.0] * 5, [4.0] * 7) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        quality.overlapping_area([], [1.0])


def test_overlaps_of_a_set_with_itself_are_high_and_of_a_collapsed_set_low():
    rng = np.random.default_rng(4)
    real = _songs(60, 40, rng)
    same = quality.overlaps(_songs(30, 40, rng), real)
    collapsed = quality.overlaps(np.repeat(_songs(1, 40, rng, pitch_low=30, pitch_high=32),
                                           30, axis=0), real)
    for feature in quality.FEATURES:
        assert same[feature]["real_intra_vs_inter"] > 0.8, feature
    assert collapsed["pitch_range"]["real_intra_vs_inter"] < 0.2
    assert collapsed["pitch_class"]["generated_intra_vs_inter"] < 0.2


# --------------------------------------------------------------------------------------
# Discriminative score.
# --------------------------------------------------------------------------------------

def test_canonical_steps_zero_absent_slots_and_carry_their_deltas():
    steps = np.array([[[100, 440, 80, 10], [5, 7, 0.1, 20], [1, 2, 0.0, 30]],
                      [[100, 440, 80, 40], [0, 0, 0, 0], [0, 0, 0, 0]]], dtype=float)
    out = quality.canonical_steps(steps[None])[0]
    np.testing.assert_array_equal(out[0, 1:], 0.0)
    np.testing.assert_allclose(out[1, 0], [100, 440, 80, 40 + 20 + 30])
    np.testing.assert_allclose(out[0, 0], steps[0, 0])
    features = quality.classifier_features(steps[None])
    assert features.shape == (1, 2, 3 * len(quality.CLASSIFIER_COLUMNS))


def test_classifier_features_do_not_clamp():
    song = np.array([[_tone(hz=-50.0), _tone(hz=1e6), _tone(length=np.nan)]]).reshape(1, 3, 4)
    f = quality.classifier_features(song).reshape(3, -1)
    column = {name: i for i, name in enumerate(quality.CLASSIFIER_COLUMNS)}
    assert f[0, column["slog_hz"]] == pytest.approx(-np.log1p(50.0))
    assert f[0, column["hz_not_positive"]] == 1 and f[0, column["midi_over_12"]] == 0
    assert f[1, column["midi_over_12"]] == pytest.approx((69 + 12 * np.log2(1e6 / 440)) / 12)
    assert f[2, column["non_finite"]] == 1 and f[2, column["slog_length"]] == 0
    assert np.isfinite(f).all()


def test_discriminative_score_is_near_0_for_one_distribution_and_near_half_for_two():
    rng = np.random.default_rng(0)
    spec = quality.DiscriminatorSpec(epochs=10, folds=2)
    real = _songs(40, 16, rng)
    other = _songs(32, 16, rng)
    same = quality.discriminative_score(real, other, seed=0, spec=spec)
    assert same["score"] < 0.2, same
    assert same["windows_per_class"] == 32 and len(same["fold_accuracies"]) == 2
    loud = quality.discriminative_score(real, _songs(32, 16, rng, velocity=40.0), seed=0,
                                        spec=spec)
    assert loud["score"] > 0.45, loud
    # Seeded: the same inputs give the same numbers.
    assert quality.discriminative_score(real, other, seed=0, spec=spec) == same


def test_discriminative_score_sees_only_the_given_columns_or_the_bag_of_tones():
    rng = np.random.default_rng(1)
    spec = quality.DiscriminatorSpec(epochs=10, folds=2)
    real = _songs(40, 16, rng)
    loud = _songs(32, 16, rng, velocity=40.0)  # differs from real in velocity alone
    seen = {aspect: quality.discriminative_score(real, loud, seed=0, spec=spec,
                                                 columns=quality.ASPECT_COLUMNS[aspect])
            for aspect in ("velocity", "pitch")}
    assert seen["velocity"]["score"] > 0.45, seen
    assert seen["pitch"]["score"] < 0.2, seen
    assert seen["pitch"]["columns"] == list(quality.ASPECT_COLUMNS["pitch"])
    # Rising melodies against the same kind of tones in a random order: told apart by their
    # sequence, not once each window's steps are shuffled (the bag of tones is the same).
    order = np.argsort(real[:, :, 0, 1], axis=1)
    rising = np.take_along_axis(real, order[:, :, None, None], axis=1)
    scrambled = _songs(32, 16, rng)
    assert quality.discriminative_score(rising, scrambled, seed=0, spec=spec)["score"] > 0.4
    bag = quality.discriminative_score(rising, scrambled, seed=0, spec=spec,
                                       shuffle_steps=True)
    assert bag["score"] < 0.2 and bag["shuffle_steps"], bag
    with pytest.raises(ValueError, match="slog_pitch"):
        quality.discriminative_score(real, loud, spec=spec, columns=["slog_pitch"])


# --------------------------------------------------------------------------------------
# One set, and the targets.
# --------------------------------------------------------------------------------------

def test_evaluate_set_reports_statistics_against_real_windows():
    rng = np.random.default_rng(5)
    generated = _songs(10, 30, rng)
    generated[0, :5, 0, 1] = 0.0  # 5 sub-audio tones
    real = _songs(40, 30, rng).reshape(40, 30, 4)
    result = quality.evaluate_set(generated, real, discriminator=False)
    assert result["validity"]["valid_fraction"] == pytest.approx(1 - 5 / 300)
    stats = [metrics.all_statistics(s.reshape(30, 4)) for s in generated]
    assert result["statistics"]["generated"]["unique_tones"]["mean"] == pytest.approx(
        np.mean([s["unique_tones"] for s in stats]))
    real_stats = [metrics.all_statistics(w) for w in real]
    assert result["statistics"]["real"]["tone_span"]["std"] == pytest.approx(
        np.std([s["tone_span"] for s in real_stats]))
    assert result["discriminative"] is None
    assert set(result["diversity"]) == set(result["overlap"]) == set(quality.FEATURES)
    with pytest.raises(ValueError, match="steps"):
        quality.evaluate_set(generated, real[:, :20], discriminator=False)


def _result(means, real_means=None, real_stds=None, valid=1.0, score=0.2, ratios=1.0):
    real_means = real_means or {}
    real_stds = real_stds or {}
    return {
        "validity": {"valid_fraction": valid},
        "statistics": {
            "generated": {n: {"mean": means.get(n, 0.0), "std": 0.0}
                          for n in metrics.STATISTICS},
            "real": {n: {"mean": real_means.get(n, 0.0), "std": real_stds.get(n, 1.0)}
                     for n in metrics.STATISTICS}},
        "discriminative": {"score": score},
        "diversity": {f: {"ratio": ratios} for f in quality.FEATURES},
    }


def _by_name(targets):
    return {t["name"]: t for t in targets}


def test_targets_are_met_only_when_met_in_every_seed():
    real = {"polyphony": 0.7, "scale_consistency": 0.94, "repetitions": 30, "tone_span": 31,
            "unique_tones": 22, "intensity_span": 2}
    stds = {"polyphony": 0.2, "scale_consistency": 0.04, "repetitions": 35, "tone_span": 6,
            "unique_tones": 4, "intensity_span": 11}
    good = dict(real, scale_consistency=0.9, tone_span=33, unique_tones=21)
    results = {
        "gan": {"0": _result(good, real, stds, valid=0.995, score=0.1),
                "1": _result(dict(good, tone_span=38), real, stds, valid=0.98, score=0.2,
                             ratios=0.69)},
        "baseline": {"0": _result({"tone_span": 5, "unique_tones": 6}, real, stds, score=0.4),
                     "1": _result({"tone_span": 5, "unique_tones": 6}, real, stds, score=0.1)},
        "gan3": {"0": _result(dict(real, polyphony=0.65), real, stds),
                 "1": _result(dict(real, polyphony=0.55), real, stds)},
    }
    t = _by_name(quality.check_targets(results))
    assert t["valid_tones/gan"]["met_per_seed"] == {"0": True, "1": False}
    assert t["valid_tones/gan"]["met"] is False
    assert t["valid_tones/gan3"]["met"] is True
    assert t["scale_consistency/gan"]["met"] is True
    assert t["tone_span/gan"]["values"] == pytest.approx({"0": 2 / 6, "1": 7 / 6})
    assert t["tone_span/gan"]["met"] is False
    assert t["unique_tones/gan"]["met"] is True
    assert t["gan_vs_baseline/statistics"]["values"]["0"] >= 5
    assert t["gan_vs_baseline/discriminative"]["met_per_seed"] == {"0": True, "1": False}
    assert t["polyphony/gan3"]["values"] == pytest.approx({"0": 0.05, "1": 0.15})
    assert t["polyphony/gan3"]["met"] is False
    assert t["discriminative_score/gan"]["met"] is True
    # Tone span means 33 and 38 over 2 seeds: std (ddof=1) 3.54 / real std 6 = 0.59 > 0.5.
    spread = t["seed_spread/tone_span/gan"]
    assert spread["values"]["all"] == pytest.approx(np.std([33, 38], ddof=1) / 6)
    assert spread["met"] is False and t["seed_spread/polyphony/gan"]["met"] is True
    assert t["diversity/pitch_class/gan"]["met_per_seed"] == {"0": True, "1": False}


def test_over_seeds_is_the_sample_mean_and_std_of_the_measured_seeds():
    result = quality.over_seeds([1.0, None, 2.0, np.float32(6.0)])
    assert result["values"] == [1.0, 2.0, 6.0]
    assert result["mean"] == pytest.approx(3.0)
    assert result["std"] == pytest.approx(np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert quality.over_seeds([0.25]) == {"mean": 0.25, "std": 0.0, "values": [0.25]}
    assert quality.over_seeds([None, None]) is None
    json.dumps(result)  # plain floats, ready for docs/quality.json


def test_closer_count_is_strict():
    assert quality.closer_count([0.1, 0.5, 2.0], [0.2, 0.5, 1.0]) == 1  # a tie is not closer


def test_paired_closeness_per_statistic_over_seeds():
    real = {n: 1.0 for n in metrics.STATISTICS}
    stds = {n: 2.0 for n in metrics.STATISTICS}
    # Seed 0: the set sits on real polyphony (baseline 0.5 away); seed 1: 0.2 away against
    # the baseline's 0.1. Tone span ties in both seeds (both 0.3 away).
    pairs = [(_result(dict(real, polyphony=1.0, tone_span=1.3), real, stds),
              _result(dict(real, polyphony=1.5, tone_span=0.7), real, stds)),
             (_result(dict(real, polyphony=0.8, tone_span=1.3), real, stds),
              _result(dict(real, polyphony=1.1, tone_span=1.3), real, stds))]
    got = quality.paired_closeness(pairs)
    assert list(got) == list(metrics.STATISTICS)
    polyphony = got["polyphony"]
    assert (polyphony["closer"], polyphony["ties"], polyphony["seeds"]) == (1, 0, 2)
    assert polyphony["reduction"]["values"] == pytest.approx([0.5 / 2, -0.1 / 2])
    assert polyphony["reduction"]["sem"] == pytest.approx(
        np.std([0.25, -0.05], ddof=1) / np.sqrt(2))
    assert (got["tone_span"]["closer"], got["tone_span"]["ties"]) == (0, 2)
    # The per-seed counts agree with closer_count.
    assert sum(row["closer"] for row in got.values()) == sum(
        quality.closer_count(quality.statistic_gaps(g), quality.statistic_gaps(b))
        for g, b in pairs)
    with pytest.raises(ValueError, match="other real windows"):
        quality.paired_closeness([(pairs[0][0], _result(real, dict(real, polyphony=0.9)))])
    with pytest.raises(ValueError, match="at least one"):
        quality.paired_closeness([])


def test_real_ceiling_matches_a_brute_force_count():
    """Sets drawn from the windows' statistics, counted as check_targets counts a GAN."""
    rng = np.random.default_rng(3)
    real = {n: float(v) for n, v in zip(metrics.STATISTICS, rng.normal(size=6))}
    windows = [{n: real[n] + float(rng.normal()) for n in metrics.STATISTICS}
               for _ in range(40)]
    baseline = _result({n: real[n] + 0.2 for n in metrics.STATISTICS}, real)
    got = quality.real_ceiling(windows, baseline, set_size=5, draws=300, seed=4)
    picks = np.random.default_rng(4).integers(40, size=(300, 5))
    counts, wins = [], np.zeros(6)
    for pick in picks:
        result = _result({n: np.mean([windows[i][n] for i in pick]) for n in metrics.STATISTICS},
                         real)
        targets = _by_name(quality.check_targets({"gan": {"0": result},
                                                  "baseline": {"0": baseline}}))
        counts.append(targets["gan_vs_baseline/statistics"]["values"]["0"])
        wins += [abs(result["statistics"]["generated"][n]["mean"] - real[n]) < 0.2 - 1e-12
                 for n in metrics.STATISTICS]
    assert got["closer_mean"] == pytest.approx(np.mean(counts))
    assert got["at_least_5"] == pytest.approx(np.mean(np.array(counts) >= 5))
    assert 0 < got["at_least_5"] < 1
    assert list(got["per_statistic"].values()) == pytest.approx(wins / 300)
    # A baseline exactly on the real means: nothing is strictly closer.
    exact = quality.real_ceiling(windows, _result(real, real), set_size=5, draws=50)
    assert exact["closer_mean"] == 0 and exact["at_least_5"] == 0


def test_targets_without_a_partner_are_not_met():
    results = {"gan": {"0": _result({}, score=None)}}
    results["gan"]["0"]["discriminative"] = None
    t = _by_name(quality.check_targets(results))
    assert "valid_tones/gan3" not in t and "polyphony/gan3" not in t
    assert t["gan_vs_baseline/statistics"]["met"] is None
    assert t["discriminative_score/gan"]["met"] is None
    assert t["seed_spread/polyphony/gan"]["met"] is None  # one seed: no spread
    nan = {"gan": {"0": _result({}, valid=float("nan"))}}
    assert _by_name(quality.check_targets(nan))["valid_tones/gan"]["met"] is False


# --------------------------------------------------------------------------------------
# The runner, end to end.
# --------------------------------------------------------------------------------------

def _bench(*args, timeout=300):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_quality.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_runner_refuses_baselines_from_that_it_cannot_use(tmp_path):
    """--baselines_from names entries of --output holding baseline runs, for an entry that
    trains no baseline: else one line naming the flag before anything is trained."""
    output = tmp_path / "q.json"
    output.write_text(json.dumps({"with": {"runs": {"baseline": {"0": {}}}},
                                  "without": {"runs": {"gan": {"0": {}}}}}))
    common = [f"--work_dir={tmp_path / 'work'}", f"--output={output}", "--name=x"]
    for args, named in ((["--baselines_from=with"], "only for entries without "
                         "--models=baseline"),
                        (["--models=gan", "--baselines_from=with,without,nosuch"],
                         "--baselines_from: without, nosuch holds no baseline runs")):
        refused = _bench(*common, *args, timeout=120)
        assert refused.returncode == 2 and named in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "work").exists()


def test_runner_rejects_a_recipe_that_sets_the_protocols_flags(tmp_path):
    result = _bench("--recipe=--units=64 --seed=3", f"--work_dir={tmp_path}",
                    f"--output={tmp_path}/q.json", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--recipe may not set --seed" in result.stderr
    assert not (tmp_path / "q.json").exists()


@pytest.mark.slow
def test_runner_end_to_end_on_a_tiny_corpus(tmp_path):
    manual = tmp_path / "midi"
    midi_fixtures.write_corpus(manual, midi_fixtures.sources_covering_splits(per_split=(4, 1, 2)),
                               num_tones=60)
    common = ["--preset=tiny", "--recipe=--units=4 --windows_per_song=2", "--seeds=0",
              "--models=gan", "--epochs=2", "--pretrain_epochs=1", "--num_songs=8",
              "--steps=16", "--real_windows=12", "--disc_epochs=2", "--disc_folds=2",
              "--jobs=2", "--dataset=crnn_gan_midi/manual", f"--manual_dir={manual}",
              f"--data_dir={tmp_path / 'data'}", f"--work_dir={tmp_path / 'work'}",
              f"--output={tmp_path / 'quality.json'}", "--quiet"]
    (tmp_path / "quality.json").write_text(json.dumps({"other": {"kept": True}}))
    result = _bench(*common, "--name=tiny", f"--markdown={tmp_path / 'quality.md'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    everything = json.loads((tmp_path / "quality.json").read_text())
    assert everything["other"] == {"kept": True}
    entry = everything["tiny"]
    run = entry["runs"]["gan"]["0"]
    job = tmp_path / "work" / "tiny" / "gan_seed0"
    assert (job / "run" / "generator.weights.h5").exists()
    assert (job / "export" / "saved_model" / "saved_model.pb").exists()
    generated = np.load(job / "quality_generated.npy")
    assert generated.shape == (8, 16, 1, 4)
    # The JSON's numbers are those of the saved raw outputs.
    assert run["validity"] == quality.tone_validity(generated)
    assert run["songs"] == 8 and run["real_windows"] == 12
    assert 0 <= run["discriminative"]["score"] <= 0.5
    config = json.loads((job / "run" / "config.json").read_text())
    assert config["config"]["units"] == 4 and config["config"]["epochs"] == 2
    names = {t["name"] for t in entry["targets"]}
    assert {"valid_tones/gan", "discriminative_score/gan", "diversity/ioi/gan"} <= names
    timing = run["timing"]["train"][0]
    assert [e[1] for e in timing["epochs"]] == ["pretrain", "adversarial"]
    markdown = (tmp_path / "quality.md").read_text()
    assert "| tiny | GAN | 0 |" in markdown and "| real | 16-tone windows (test) |" in markdown
    # Real train-split windows measured as if generated: every one of them is valid.
    calibration = entry["real"]["k1"]["calibration"]
    assert calibration["split"] == "train" and calibration["songs"] == 8
    assert calibration["validity"]["valid_fraction"] == 1.0
    assert "| real | 8 train-split windows as if generated |" in markdown
    assert markdown in result.stdout
    assert entry["ceiling"] is None  # no baseline runs
    # The real-music ceiling of the GAN-vs-baseline target, from an entry's runs (here
    # the GAN's run stands in for a baseline's): no training, the entry's tables grow.
    for part in ("runs", "over_seeds"):
        everything["tiny"][part]["baseline"] = everything["tiny"][part]["gan"]
    (tmp_path / "quality.json").write_text(json.dumps(everything))
    ceiling = _bench(*common, "--name=tiny", "--ceiling_only")
    assert ceiling.returncode == 0, ceiling.stderr[-3000:]
    with_ceiling = json.loads((tmp_path / "quality.json").read_text())["tiny"]
    per_seed = with_ceiling["ceiling"]["per_seed"]["0"]
    assert per_seed["set_size"] == 8 and 0 <= per_seed["at_least_5"] <= 1
    assert "Real music on the GAN-vs-baseline target" in with_ceiling["markdown"]
    assert "| 0 |" in ceiling.stdout
    for part in ("runs", "over_seeds"):
        del everything["tiny"][part]["baseline"]
    (tmp_path / "quality.json").write_text(json.dumps(everything))
    # Again: nothing is trained, exported or measured twice; the numbers stay. A GAN-only
    # entry records the entries whose baselines it is compared with.
    everything["with_baselines"] = {"runs": {"baseline": {"0": run}}}
    (tmp_path / "quality.json").write_text(json.dumps(everything))
    again = _bench(*common, "--name=tiny", "--baselines_from=with_baselines")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trained already" in again.stdout and "measured already" in again.stdout
    after_again = json.loads((tmp_path / "quality.json").read_text())["tiny"]
    assert after_again["baselines_from"] == ["with_baselines"]
    rerun = after_again["runs"]["gan"]["0"]
    assert rerun["validity"] == run["validity"]
    assert rerun["discriminative"] == run["discriminative"]
    # Another recipe under the same name is refused instead of mixed in.
    changed = [a if not a.startswith("--recipe") else "--recipe=--units=5" for a in common]
    refused = _bench(*changed, "--name=tiny")
    assert refused.returncode == 1 and "trained with other flags" in refused.stdout
    assert json.loads((tmp_path / "quality.json").read_text())["tiny"] == after_again
    # The temperature sweep on the same runs: its Python generator reproduces the
    # SavedModel's songs at the run's temperature, every row is measured, and with the
    # protocol's own noise and classifier (the run's quality_measure.json).
    temperature = config["config"]["sampling_temperature"]
    swept = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_temperature.py"),
         f"--work_dir={tmp_path / 'work'}", "--name=tiny", "--models=gan",
         f"--temperatures={temperature},0.5", "--num_songs=8", "--steps=16",
         f"--output={tmp_path / 'temperature.json'}"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert swept.returncode == 0, swept.stderr[-3000:]
    sweep = json.loads((tmp_path / "temperature.json").read_text())
    assert sweep["disc"] == run["discriminative"]["spec"] == {
        **run["discriminative"]["spec"], "epochs": 2, "folds": 2}
    assert (sweep["noise_seed"], sweep["disc_seed"]) == (0, 0)
    rows = sweep["runs"]["gan_seed0"]
    assert [r["temperature"] for r in rows] == [temperature, 0.5]
    assert rows[0]["max_abs_diff_vs_saved_model"] < 1e-2
    assert rows[0]["statistics"] == pytest.approx(
        {s: run["statistics"]["generated"][s]["mean"] for s in rows[0]["statistics"]})
    assert all(r["distance"] >= 0 and 0 <= r["discriminative"] <= 0.5 for r in rows)
    assert "| 0.5 | gan |" in swept.stdout
    # Choosing a temperature on validation windows: bench_quality builds them, the sweep
    # measures against them (the same songs, other real windows).
    built = _bench(*common, "--reference_only", "--split=validation")
    assert built.returncode == 0, built.stderr[-3000:]
    validation = built.stdout.strip().splitlines()[-1]
    assert "_validation_k1_" in validation and os.path.exists(validation)
    against_validation = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_temperature.py"),
         f"--work_dir={tmp_path / 'work'}", "--name=tiny", "--models=gan",
         f"--temperatures={temperature}", "--num_songs=8", "--steps=16",
         f"--reference={validation}", f"--output={tmp_path / 'validation.json'}"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert against_validation.returncode == 0, against_validation.stderr[-3000:]
    on_validation = json.loads((tmp_path / "validation.json").read_text())
    assert on_validation["reference"] == validation
    row = on_validation["runs"]["gan_seed0"][0]
    assert row["max_abs_diff_vs_saved_model"] == rows[0]["max_abs_diff_vs_saved_model"]
    assert row["statistics"] == rows[0]["statistics"]  # the same songs
    assert on_validation["real"] != json.loads(
        (tmp_path / "temperature.json").read_text())["real"]
    missing = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_temperature.py"),
         f"--work_dir={tmp_path / 'work'}", "--name=nosuch"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert missing.returncode == 2
    assert "no runs match" in missing.stderr and "nosuch" in missing.stderr
    assert "Traceback" not in missing.stderr
    # The protocol's own noise on one pair of generators, here the GAN against itself:
    # under the same noise seed the songs are the same, so every statistic ties (closer
    # on 0) and the scores are equal; noise seed 0 gives the protocol's songs.
    reference = glob.glob(str(tmp_path / "work" / "reference" / "*_test_k1_*.npz"))
    assert len(reference) == 1
    noise_args = [sys.executable, str(ROOT / "benchmarks" / "bench_protocol_noise.py"),
                  f"--gan={job / 'export'}", f"--baseline={job / 'export'}",
                  f"--reference={reference[0]}", "--noise_seeds=0,1", "--disc_seeds=0,1",
                  "--num_songs=8", "--steps=16", "--disc_epochs=2", "--disc_folds=2"]
    noisy = subprocess.run(noise_args + [f"--output={tmp_path / 'noise.json'}"],
                           capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert noisy.returncode == 0, noisy.stderr[-3000:]
    measured = json.loads((tmp_path / "noise.json").read_text())
    pair = measured["summary"]["pair"]
    assert pair["closer_per_noise_seed"] == {"0": 0, "1": 0}
    assert [p["disc_minus_baseline"] for p in pair["pairs"]] == [0.0] * 4
    assert pair["disc_below_baseline"] == 0.0
    assert measured["runs"]["gan"]["0"]["statistics"] == pytest.approx(
        {s: run["statistics"]["generated"][s]["mean"] for s in metrics.STATISTICS})
    assert measured["runs"]["gan"]["1"]["statistics"] != measured["runs"]["gan"]["0"][
        "statistics"]
    scores = [v for r in measured["runs"]["gan"].values() for v in r["discriminative"].values()]
    assert len(scores) == 4 and all(0 <= v <= 0.5 for v in scores)
    assert "| gan |" in noisy.stdout
    absent = subprocess.run(noise_args[:2] + [f"--gan={tmp_path / 'nothing'}"]
                            + noise_args[3:], capture_output=True, text=True, timeout=300,
                            cwd=ROOT)
    assert absent.returncode == 2
    assert "--gan=" in absent.stderr and "nothing" in absent.stderr
    assert "Traceback" not in absent.stderr
    # What gives the songs away: the protocol's saved songs scored again in each view; the
    # "all" view is the protocol's own score (same songs, windows, classifier and seed).
    aspects_args = [sys.executable, str(ROOT / "benchmarks" / "bench_disc_aspects.py"),
                    f"--work_dir={tmp_path / 'work'}", "--names=tiny", "--models=gan",
                    f"--output={tmp_path / 'aspects.json'}"]
    aspects = subprocess.run(aspects_args, capture_output=True, text=True, timeout=600,
                             cwd=ROOT)
    assert aspects.returncode == 0, aspects.stderr[-3000:]
    scored = json.loads((tmp_path / "aspects.json").read_text())["scores"]["tiny/gan/0"]
    assert set(scored) == {"all", "pitch", "rhythm", "velocity", "pitch+rhythm", "bag",
                           "canonical"}
    assert scored["all"] == run["discriminative"]["score"]
    assert all(0 <= v <= 0.5 for v in scored.values())
    assert "| tiny gan | 0 |" in aspects.stdout
    no_runs = subprocess.run(aspects_args[:2] + [f"--work_dir={tmp_path / 'work'}",
                                                 "--names=nosuch"],
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert no_runs.returncode == 2 and "no runs match" in no_runs.stderr
    assert "Traceback" not in no_runs.stderr
    # The GAN-vs-baseline verdict against other splits' windows, from the saved songs: the
    # GAN against itself ties everywhere; against a copy whose tones all start together
    # (polyphony 1) it is closer on polyphony exactly when its own polyphony is nearer the
    # real windows'; against the measured test windows the means are the protocol's.
    chords = tmp_path / "work" / "tiny" / "chord_seed0"
    (chords / "run").mkdir(parents=True)
    all_chords = generated.copy()
    all_chords[..., 3] = 0.0
    np.save(chords / "quality_generated.npy", all_chords)
    train_windows = sorted(glob.glob(str(tmp_path / "work" / "reference" / "*_train_k1_*.npz")))
    assert train_windows  # the calibration's (and the temperature sweep's)
    split_args = [sys.executable, str(ROOT / "benchmarks" / "bench_closer_by_split.py"),
                  f"--work_dir={tmp_path / 'work'}", "--names=tiny",
                  f"--references=train={train_windows[0]}"]
    by_split = {}
    for baseline in ("gan", "chord"):
        done = subprocess.run(split_args + [f"--baseline_model={baseline}",
                                            f"--output={tmp_path / baseline}.json"],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "| tiny | 0 |" in done.stdout
        by_split[baseline] = json.loads((tmp_path / f"{baseline}.json").read_text())["pairs"][
            "tiny/0"]
    itself = by_split["gan"]["against"]
    assert list(itself) == ["test", "train"]
    assert itself["test"]["closer"] == itself["train"]["closer"] == 0
    assert itself["test"]["real"] == pytest.approx(
        {s: run["statistics"]["real"][s]["mean"] for s in metrics.STATISTICS})
    assert by_split["gan"]["generated"]["gan"] == pytest.approx(
        {s: run["statistics"]["generated"][s]["mean"] for s in metrics.STATISTICS})
    assert itself["train"]["real"] != itself["test"]["real"]
    assert by_split["chord"]["generated"]["baseline"]["polyphony"] == 1.0
    gan_polyphony = by_split["chord"]["generated"]["gan"]["polyphony"]
    for against in by_split["chord"]["against"].values():
        real_polyphony = against["real"]["polyphony"]
        assert against["per_statistic"]["polyphony"] is (
            abs(gan_polyphony - real_polyphony) < abs(1.0 - real_polyphony))
        assert against["closer"] == sum(against["per_statistic"].values())
    for bad, named in ((f"--references=test={train_windows[0]}", "--references=test="),
                       ("--references=train=nothing.npz", "nothing.npz"),
                       ("--names=nosuch", "nosuch")):
        refused = subprocess.run(split_args + [bad], capture_output=True, text=True,
                                 timeout=300, cwd=ROOT)
        assert refused.returncode == 2 and named in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr


def test_paired_table_from_the_quality_file(tmp_path):
    """benchmarks/paired_table.py on the committed docs/quality.json: per statistic, in how
    many of the pooled seeds the GAN is closer than the same seed's baseline, recomputed here
    from the runs; bad names and a seed held twice are refused in one line."""
    names = ["small", "small_seeds345_preset", "small_seeds678_preset"]
    script = [sys.executable, str(ROOT / "benchmarks" / "paired_table.py"),
              f"--quality={ROOT / 'docs' / 'quality.json'}"]
    result = subprocess.run(script + [f"--names={','.join(names)}",
                                      f"--markdown={tmp_path / 'paired.md'}"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    entries = json.loads((ROOT / "docs" / "quality.json").read_text())
    gans = {s: r for n in names for s, r in entries[n]["runs"]["gan"].items()}
    baselines = {s: r for n in names for s, r in entries[n]["runs"]["baseline"].items()}
    assert len(gans) == 9 and set(gans) == set(baselines)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:]
            for line in (tmp_path / "paired.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| statistic")}
    for name in metrics.STATISTICS:
        gaps = {s: [abs(r["statistics"]["generated"][name]["mean"]
                        - r["statistics"]["real"][name]["mean"]) for r in (gans[s], baselines[s])]
                for s in gans}
        assert int(rows[name][0]) == sum(g < b for g, b in gaps.values())
        reduction = np.mean([(b - g) / gans[s]["statistics"]["real"][name]["std"]
                             for s, (g, b) in gaps.items()])
        assert float(rows[name][2].split(" ± ")[0]) == pytest.approx(reduction, abs=5e-4)
    counts = [quality.closer_count(quality.statistic_gaps(gans[s]),
                                   quality.statistic_gaps(baselines[s]))
              for s in sorted(gans, key=int)]
    assert "(0, 1, 2, 3, 4, 5, 6, 7, 8): " + ", ".join(map(str, counts)) in result.stdout
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "entry.json").write_text('{"small": {"runs": "abc", "over_seeds": {}}}')
    for bad, named in (("--names=small,nosuch", "nosuch"),
                       ("--names=small,small", "in both small and small"),
                       ("--names=small_seeds345_preset --baseline_names=small", "no seed has"),
                       (f"--names=small --markdown={tmp_path}",
                        f"--markdown={tmp_path}: cannot write it"),
                       (f"--names=small --quality={tmp_path / 'list.json'}",
                        "list.json holds no results of bench_quality.py"),
                       (f"--names=small --quality={tmp_path / 'entry.json'}",
                        "small is not a result of bench_quality.py"),
                       ("--names=small_t1", "small_t1 has no baseline runs and names no "
                        "baselines_from: give --baseline_names"),
                       ("--names=small --nosuchflag", "Unknown command line flag 'nosuchflag'")):
        refused = subprocess.run(script + bad.split(), capture_output=True, text=True,
                                 timeout=120, cwd=ROOT)
        assert refused.returncode == 2 and named in refused.stderr, refused.stderr[-2000:]
        assert "Traceback" not in refused.stderr
    # A GAN-only entry is compared with the baselines its baselines_from names, as if
    # they were given with --baseline_names.
    gan_only = "small_prior_kl1_inoise01"
    assert "baseline" not in entries[gan_only]["runs"]
    default, named = (subprocess.run(script + [f"--names={gan_only}"] + extra,
                                     capture_output=True, text=True, timeout=120, cwd=ROOT)
                      for extra in ([], ["--baseline_names="
                                         + ",".join(entries[gan_only]["baselines_from"])]))
    assert default.returncode == 0, default.stderr[-2000:]
    assert default.stdout == named.stdout and "(0, 1, 2, 3, 4, 5): " in default.stdout


def test_ablation_table_rows_from_the_quality_file(tmp_path):
    """benchmarks/ablation_table.py on the committed docs/quality.json: one row per recipe
    and model, "what it changes" from the entry's own words where it has them, else its
    flags; the real windows last."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation_table.py"),
         f"--quality={ROOT / 'docs' / 'quality.json'}", "--names=small,small_seeds345",
         f"--markdown={tmp_path / 'ablation.md'}"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "ablation.md").read_text().splitlines()
    entries = json.loads((ROOT / "docs" / "quality.json").read_text())
    small = [line for line in lines if line.startswith("| `small` |")]
    assert len(small) == len(entries["small"]["over_seeds"])
    flags = entries["small"]["recipe"] or "(the preset)"  # no flags: the preset as it is
    assert all(f"`{flags}`" in line for line in small)
    seeds345 = [line for line in lines if line.startswith("| `small_seeds345` |")]
    assert seeds345 and all(entries["small_seeds345"]["changes"] in line for line in seeds345)
    assert lines[-1].startswith("| real |")
    # The distance to real music, recomputed here: per seed the mean over the six
    # statistics of |value - real| / real std, then mean +- std over seeds.
    statistics = ("polyphony", "scale_consistency", "repetitions", "tone_span",
                  "unique_tones", "intensity_span")
    real = entries["small"]["real"]["k1"]["statistics"]
    over = entries["small"]["over_seeds"]["gan"]
    per_seed = np.mean([[abs(v - real[s]["mean"]) / real[s]["std"]
                         for v in over[s]["values"]] for s in statistics], axis=0)
    gan_row = next(line for line in small if "| GAN |" in line)
    cells = [c.strip() for c in gan_row.split("|")]
    assert cells[-4] == f"{per_seed.mean():.2f} ± {per_seed.std(ddof=1):.2f}"
    assert "distance to real" in lines[0]
    # The target no recipe meets in every seed, recomputed here: per seed the statistics
    # on which the GAN is closer to real than the same seed's baseline, then in how many
    # seeds its discriminative score is below the baseline's; "–" for the other models.
    runs = entries["small"]["runs"]
    seeds = sorted(runs["gan"], key=int)
    counts = [quality.closer_count(quality.statistic_gaps(runs["gan"][s]),
                                   quality.statistic_gaps(runs["baseline"][s])) for s in seeds]
    below = sum(runs["gan"][s]["discriminative"]["score"]
                < runs["baseline"][s]["discriminative"]["score"] for s in seeds)
    assert cells[-3] == ", ".join(map(str, counts)) + f" ({below} of {len(seeds)})"
    assert all("| – |" in line for line in small if "| GAN |" not in line)


def test_ablation_table_compares_a_gan_only_entry_with_its_baselines_from(tmp_path):
    """A GAN-only entry's cell comes from the baselines its baselines_from names (the same
    cell as the entry that ran them, where the GAN runs are the same); none named: "–";
    a name that is not an entry is refused in one line, exit status 2."""
    entries = json.loads((ROOT / "docs" / "quality.json").read_text())
    gan_only = dict(entries["small"], **{key: {"gan": entries["small"][key]["gan"]}
                                         for key in ("runs", "over_seeds")})
    script = [sys.executable, str(ROOT / "benchmarks" / "ablation_table.py"),
              f"--quality={tmp_path / 'quality.json'}"]

    def gan_cell(named):
        gan_only.pop("baselines_from", None)
        if named is not None:
            gan_only["baselines_from"] = named
        (tmp_path / "quality.json").write_text(json.dumps(
            {"small": entries["small"], "small_gan_only": gan_only}))
        return subprocess.run(script + ["--names=small,small_gan_only"], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)

    result = gan_cell(["small"])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if "| GAN |" in line]
    assert [row[0] for row in rows] == ["| `small`", "| `small_gan_only`"]
    assert rows[0][-2] == rows[1][-2] and rows[1][-2].endswith("of 3)")
    result = gan_cell(None)
    assert result.returncode == 0, result.stderr[-3000:]
    gan_row = next(line for line in result.stdout.splitlines()
                   if line.startswith("| `small_gan_only` | ") and "| GAN |" in line)
    assert gan_row.split(" | ")[-2] == "–"
    refused = gan_cell(["nosuch"])
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "small_gan_only: baselines_from must list entries of the results, got ['nosuch']" \
        in refused.stderr, refused.stderr[-2000:]
