"""Tests of crnn_gan.metrics: hand-computed values, edge cases and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crnn_gan import metrics

pytestmark = pytest.mark.filterwarnings("error")

QUARTER = 384.0
C4, D4, E4, F4, G4, A4, B4, C5 = 60, 62, 64, 65, 67, 69, 71, 72


def hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def song(pitches, deltas=None, velocities=100.0, lengths=QUARTER) -> np.ndarray:
    """[n, 4] tone array; one tone per quarter note unless ``deltas`` are given."""
    n = len(pitches)
    deltas = np.full(n, QUARTER) if deltas is None else np.asarray(deltas, dtype=float)
    return np.stack(
        [
            np.broadcast_to(np.asarray(lengths, dtype=float), (n,)),
            [hz(p) for p in pitches],
            np.broadcast_to(np.asarray(velocities, dtype=float), (n,)),
            deltas,
        ],
        axis=1,
    )


C_MAJOR = song([C4, D4, E4, F4, G4, A4, B4, C5])
D_MAJOR = song([62, 64, 66, 67, 69, 71, 73, 74])
CHROMATIC = song(list(range(60, 72)))


# --- brute-force references, written from the definitions --------------------------------


def brute_repetitions(pitches, length: int) -> int:
    n = len(pitches)
    return sum(
        pitches[i : i + length] == pitches[j : j + length]
        for i in range(n - length + 1)
        for j in range(i + length, n - length + 1)
    )


def brute_repetitions_mogren(pitches, length: int) -> int:
    n = len(pitches)
    if not 2 <= length < min(n // 2, 10):
        return 0
    # Windows start at 0 .. n - length - 1: the last window is never compared.
    return sum(
        pitches[i : i + length] == pitches[j : j + length]
        for i in range(n - length)
        for j in range(i + length, n - length)
    )


def brute_polyphony_mogren(starts) -> float:
    """Tone by tone over sorted starts: a tone counts as monophonic if first at its onset,
    else polyphonic; when a new onset begins, the finished one is counted once more."""
    mono = poly = 0
    previous, at_onset = None, 0
    for start in sorted(starts):
        if start != previous and at_onset:
            mono, poly = (mono + 1, poly) if at_onset == 1 else (mono, poly + 1)
            at_onset = 0
        at_onset += 1
        mono, poly = (mono + 1, poly) if at_onset == 1 else (mono, poly + 1)
        previous = start
    return poly / (poly + mono) if poly else 0.0


def brute_scale_score(pitches, *, wrap: bool) -> float:
    best = 0
    for root in range(12):
        for intervals in metrics.MODES.values():
            relative = [(p % 12 - root) % 12 if wrap else p % 12 - root for p in pitches]
            best = max(best, sum(r in intervals for r in relative))
    return best / len(pitches)


# --- hand-computed values -----------------------------------------------------------------


def test_c_major_scale():
    stats = metrics.all_statistics(C_MAJOR)
    assert stats == {
        "polyphony": 0.0,
        "scale_consistency": 1.0,
        "scale": "C major",
        "repetitions": 0,
        "tone_span": 12,  # C4 .. C5
        "unique_tones": 8,
        "intensity_span": 0.0,
        "num_tones": 8,
    }
    assert metrics.scale_consistency(C_MAJOR) == metrics.ScaleResult(1.0, 0, "major", "C major")


def test_chromatic_run_scores_seven_of_twelve():
    # Every mode has 7 pitch classes and the run has each class once: 7/12 at best, and
    # every root ties, so the lowest root and the first mode win.
    result = metrics.scale_consistency(CHROMATIC)
    assert result == metrics.ScaleResult(7 / 12, 0, "major", "C major")
    assert metrics.scale_consistency(CHROMATIC, compat="mogren2016").score == 7 / 12
    assert metrics.tone_span(CHROMATIC) == 11
    assert metrics.unique_tones(CHROMATIC) == 12


def test_relative_minor_ties_go_to_lowest_root():
    # A minor natural scale has the pitch classes of C major: the tie goes to root 0.
    a_minor = song([57, 59, 60, 62, 64, 65, 67, 69])
    assert metrics.scale_consistency(a_minor).name == "C major"
    # A harmonic minor (G#) only matches its own scale.
    a_harmonic = song([57, 59, 60, 62, 64, 65, 68, 69])
    result = metrics.scale_consistency(a_harmonic)
    assert (result.score, result.root, result.mode) == (1.0, 9, "harmonic_minor")
    assert result.name == "A harmonic minor"


def test_repeated_motif():
    # C D E C D E C D E: trigrams at 0..6 are CDE DEC ECD CDE DEC ECD CDE.
    # CDE at {0, 3, 6}: pairs (0,3) (0,6) (3,6) -> 3; DEC at {1, 4}: 1; ECD at {2, 5}: 1.
    motif = song([C4, D4, E4] * 3)
    assert metrics.repetitions(motif) == 5
    # mogren2016 drops the last trigram (CDE at 6): (0,3) + (1,4) + (2,5) -> 3.
    assert metrics.repetitions(motif, compat="mogren2016") == 3
    # Bigrams CD at {0,3,6}, DE at {1,4,7}, EC at {2,5}: 3 + 3 + 1 = 7.
    assert metrics.repetitions(motif, length=2) == 7


def test_overlapping_repetitions_not_counted():
    # C C C C: trigrams at 0 and 1 overlap.
    assert metrics.repetitions(song([C4] * 4)) == 0
    assert metrics.repetitions(song([C4] * 5)) == 0  # windows 0, 1, 2 all overlap
    assert metrics.repetitions(song([C4] * 6)) == 1  # only (0, 3)
    assert metrics.repetitions(song([C4] * 7)) == 3  # (0,3) (0,4) (1,4)


def test_repetitions_ignore_timing_and_transposition():
    timing = song([C4, D4, E4, C4, D4, E4], deltas=[0, 1, 500, 3, 0, 7])
    assert metrics.repetitions(timing) == 1
    assert metrics.repetitions(song([C4, D4, E4, D4, E4, F4 + 1])) == 0


def test_repetitions_too_short_and_bad_length():
    assert metrics.repetitions(song([C4, D4, E4, C4, D4])) == 0
    with pytest.raises(ValueError, match="length"):
        metrics.repetitions(C_MAJOR, length=0)
    with pytest.raises(ValueError, match="length"):
        metrics.repetitions(C_MAJOR, length=2.0)


def test_polyphony_chords():
    chords = song([C4, E4, G4, D4, F4], deltas=[0, 0, 0, QUARTER, 0])
    assert metrics.polyphony(chords) == 1.0
    # Onsets 0 (C E) and 384 (G): one of two is a chord.
    half = song([C4, E4, G4], deltas=[0, 0, QUARTER])
    assert metrics.polyphony(half) == 0.5
    assert metrics.polyphony(C_MAJOR) == 0.0


def test_polyphony_rounds_starts_to_whole_ticks():
    # Deltas below half a tick start together in a MIDI file.
    assert metrics.polyphony(song([C4, E4], deltas=[10.0, 0.3])) == 1.0
    assert metrics.polyphony(song([C4, E4], deltas=[10.0, 0.7])) == 0.0


def test_compat_polyphony_three_note_chord():
    chord = song([C4, E4, G4], deltas=[0, 0, 0])
    assert metrics.polyphony(chord) == 1.0
    # One onset of 3 tones: mono 1, poly 2, never closed -> 2/3.
    assert metrics.polyphony(chord, compat="mogren2016") == pytest.approx(2 / 3)
    # Onsets of sizes [3, 1]: poly 2 + 1 (chord closed), mono 2 -> 3/5; default 1/2.
    chord_then_tone = song([C4, E4, G4, C5], deltas=[0, 0, 0, QUARTER])
    assert metrics.polyphony(chord_then_tone) == 0.5
    assert metrics.polyphony(chord_then_tone, compat="mogren2016") == pytest.approx(3 / 5)
    # Sizes [1, 3]: mono 2 + 1 (single closed), poly 2 -> 2/5.
    tone_then_chord = song([C4, C4, E4, G4], deltas=[0, QUARTER, 0, 0])
    assert metrics.polyphony(tone_then_chord, compat="mogren2016") == pytest.approx(2 / 5)
    assert metrics.polyphony(C_MAJOR, compat="mogren2016") == 0.0


def test_compat_scale_favours_c_roots():
    # D major: every pitch class passes (pc - 2) mod 12; without the modulo C# (pc 1)
    # gives 1 - 2 = -1 and fails: 7 of 8 tones. No root <= 1 does better (C major: 6/8).
    assert metrics.scale_consistency(D_MAJOR) == metrics.ScaleResult(1.0, 2, "major", "D major")
    compat = metrics.scale_consistency(D_MAJOR, compat="mogren2016")
    assert compat == metrics.ScaleResult(7 / 8, 2, "major", "D major")
    assert metrics.scale_consistency(C_MAJOR, compat="mogren2016").score == 1.0


def test_intensity_span():
    tones = song([C4, D4, E4], velocities=[30.0, 100.0, 64.0])
    assert metrics.intensity_span(tones) == 70.0
    # Silent tones (velocity < 0.5) are not present; velocities clip to 0..127.
    tones = song([C4, D4, E4], velocities=[0.4, 100.0, 300.0])
    assert metrics.intensity_span(tones) == 27.0
    assert metrics.num_tones(tones) == 2


def test_pitch_rounding_and_bad_frequencies():
    tones = song([C4, C4, C4])
    tones[:, 1] = [hz(60.49), hz(60.51), -5.0]
    assert metrics.unique_tones(tones) == 3  # 60, 61 and 0
    assert metrics.tone_span(tones) == 61
    tones[2, 1] = np.nan
    assert metrics.tone_span(tones) == 61
    tones[2, 1] = 1e9
    assert metrics.tone_span(tones) == 127 - 60


@pytest.mark.parametrize("compat", [None, "mogren2016"])
@pytest.mark.parametrize(
    "tones",
    [np.zeros((0, 4)), np.zeros((0, 12)), np.zeros(0), [], np.zeros((5, 4)), np.zeros((3, 12))],
    ids=["empty", "empty-packed", "empty-1d", "empty-list", "silent", "silent-packed"],
)
def test_empty_and_silent(tones, compat):
    stats = metrics.all_statistics(tones, compat=compat)
    assert stats == {
        "polyphony": 0.0,
        "scale_consistency": 0.0,
        "scale": "C major",
        "repetitions": 0,
        "tone_span": 0,
        "unique_tones": 0,
        "intensity_span": 0.0,
        "num_tones": 0,
    }
    assert metrics.scale_consistency(tones, compat=compat) == metrics.ScaleResult(
        0.0, 0, "major", "C major"
    )


def test_packed_input_with_absent_slots_and_delta_carry():
    absent = (0.0, 0.0, 0.0)
    packed = np.array(
        [
            # step 0: C4, E4 together, then an absent slot carrying 5 ticks
            [96, hz(C4), 100, 0, 96, hz(E4), 100, 0, *absent[:2], 0.2, 5],
            # step 1: absent (10 ticks), G4 after 20 ticks, absent (7 ticks)
            [*absent, 10, 96, hz(G4), 90, 20, *absent, 7],
            # step 2: B4 after 1 tick, then two absent slots at the end (dropped)
            [96, hz(B4), 80, 1, *absent, 3, *absent, 4],
        ]
    )
    unpacked = metrics._unpack(packed)
    expected = np.array(
        [
            [96, hz(C4), 100, 0],
            [96, hz(E4), 100, 0],
            [96, hz(G4), 90, 5 + 10 + 20],
            [96, hz(B4), 80, 7 + 1],
        ]
    )
    np.testing.assert_array_equal(unpacked, expected)
    # Starts 0, 0, 35, 43: onsets {0: C E, 35: G, 43: B}.
    assert metrics.all_statistics(packed) == metrics.all_statistics(expected)
    assert metrics.polyphony(packed) == pytest.approx(1 / 3)
    assert metrics.num_tones(packed) == 4
    assert metrics.intensity_span(packed) == 20.0


def test_plain_array_drops_silent_tones_keeping_starts():
    tones = song([C4, D4, E4], deltas=[0, 100, 0], velocities=[100, 0, 100])
    unpacked = metrics._unpack(tones)
    np.testing.assert_array_equal(unpacked[:, 3], [0, 100])
    # D4 is silent but E4 still starts 100 ticks after C4, not together with it.
    assert metrics.polyphony(tones) == 0.0


def test_unpack_does_not_modify_input():
    packed = np.array([[96, hz(C4), 0, 5, 96, hz(E4), 100, 1]])
    before = packed.copy()
    metrics._unpack(packed)
    np.testing.assert_array_equal(packed, before)


def test_bad_shapes():
    for shape in [(3, 5), (3, 0), (2, 3, 4), (4,)]:
        with pytest.raises(ValueError, match="shape"):
            metrics.all_statistics(np.ones(shape))


def test_invalid_compat():
    for function in (metrics.polyphony, metrics.scale_consistency, metrics.repetitions):
        with pytest.raises(ValueError, match="compat"):
            function(C_MAJOR, compat="mogren2017")
    with pytest.raises(ValueError, match="compat"):
        metrics.all_statistics(C_MAJOR, compat="")


def test_all_statistics_types_and_order():
    rng = np.random.default_rng(0)
    tones = song(rng.integers(40, 90, 50), deltas=rng.choice([0.0, 96.0], 50))
    tones[:, 2] = rng.uniform(0, 127, 50)
    for compat in (None, "mogren2016"):
        stats = metrics.all_statistics(tones, compat=compat)
        assert list(stats) == [
            "polyphony",
            "scale_consistency",
            "scale",
            "repetitions",
            "tone_span",
            "unique_tones",
            "intensity_span",
            "num_tones",
        ]
        for name in ("polyphony", "scale_consistency", "intensity_span"):
            assert type(stats[name]) is float and math.isfinite(stats[name])
        for name in ("repetitions", "tone_span", "unique_tones", "num_tones"):
            assert type(stats[name]) is int
        assert type(stats["scale"]) is str
        assert stats["polyphony"] == metrics.polyphony(tones, compat=compat)
        assert stats["repetitions"] == metrics.repetitions(tones, compat=compat)
        assert stats["scale_consistency"] == metrics.scale_consistency(tones, compat=compat).score


def test_statistics_and_units():
    assert metrics.STATISTICS == (
        "polyphony",
        "scale_consistency",
        "repetitions",
        "tone_span",
        "unique_tones",
        "intensity_span",
    )
    assert set(metrics.STATISTICS) <= set(metrics.UNITS)
    assert set(metrics.STATISTICS) <= set(metrics.all_statistics(C_MAJOR))


def test_normalise_real_repetitions():
    # 40 repeats in 1000 real tones, compared with 100 generated tones: 40 / 10 = 4.
    assert metrics.normalise_real_repetitions(40, 1000, 100) == 4.0
    with pytest.raises(ValueError, match="real_length"):
        metrics.normalise_real_repetitions(1, 0, 100)
    with pytest.raises(ValueError, match="generated_length"):
        metrics.normalise_real_repetitions(1, 100, -1)
    with pytest.raises(ValueError, match="generated_length"):
        metrics.normalise_real_repetitions(1, 100, float("nan"))


def test_summarise():
    songs = [metrics.all_statistics(C_MAJOR), metrics.all_statistics(CHROMATIC)]
    summary = metrics.summarise(songs)
    assert "scale" not in summary
    assert summary["tone_span"] == (11.5, 0.5)
    assert summary["num_tones"] == (10.0, 2.0)
    assert summary["scale_consistency"][0] == pytest.approx((1 + 7 / 12) / 2)
    with pytest.raises(ValueError):
        metrics.summarise([])


# --- property tests against brute force ---------------------------------------------------

pitch_lists = st.lists(st.integers(min_value=58, max_value=62), max_size=40)


@settings(max_examples=300, deadline=None)
@given(pitch_lists, st.integers(min_value=1, max_value=5))
def test_repetitions_match_brute_force(pitches, length):
    tones = song(pitches)
    assert metrics.repetitions(tones, length) == brute_repetitions(pitches, length)
    expected = brute_repetitions_mogren(pitches, length)
    assert metrics.repetitions(tones, length, compat="mogren2016") == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=127), min_size=20, max_size=60))
def test_long_patterns_match_brute_force(pitches):
    # Length 12 codes exceed int64 without re-numbering: 128**12 > 2**63.
    pitches = pitches + pitches
    assert metrics.repetitions(song(pitches), 12) == brute_repetitions(pitches, 12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.0, 1.0, 96.0]), max_size=30))
def test_polyphony_matches_brute_force(deltas):
    tones = song([C4] * len(deltas), deltas=deltas)
    starts = np.cumsum(deltas)
    counts = np.unique(starts, return_counts=True)[1]
    expected = float(np.mean(counts >= 2)) if len(deltas) else 0.0
    assert metrics.polyphony(tones) == expected
    mogren = metrics.polyphony(tones, compat="mogren2016")
    assert mogren == pytest.approx(brute_polyphony_mogren(starts.tolist()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=127), min_size=1, max_size=30))
def test_scale_matches_brute_force(pitches):
    tones = song(pitches)
    assert metrics.scale_consistency(tones).score == brute_scale_score(pitches, wrap=True)
    compat = metrics.scale_consistency(tones, compat="mogren2016").score
    assert compat == brute_scale_score(pitches, wrap=False)
