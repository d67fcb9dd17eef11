"""Per-song features of the quality protocol (mgeval's, Yang & Lerch 2020), from a song's
present tones (``tfds_midi.codec.present_tones``: absent slots dropped, their deltas carried).

Every feature takes one song, float ``[T, k, 4]`` or ``[T, 4 * k]`` in raw units, and returns
a number or a normalised histogram; `feature_matrix` stacks one feature over a set of songs
for `crnn_gan.quality.distances`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from tfds_midi import codec
from tfds_midi.codec import present_tones

_LENGTH, _FREQ, _DELTA = codec.LENGTH, codec.FREQUENCY, codec.DELTA
_TICKS_PER_QUARTER = codec.TICKS_PER_QUARTER

#: Edges (ticks) of the duration histograms of inter-onset intervals and note lengths, for
#: positive durations: half a tick, then 384 * 2**(j - 0.5) for j = -6 .. 5, so that bins
#: are centred on the power-of-two fractions and multiples of a quarter note 6, 12, 24, 48,
#: 96, 192, 384, 768, 1536, 3072, 6144 ticks (one octave of durations each); the last bin
#: is open.
DURATION_BIN_EDGES: tuple[float, ...] = (0.5,) + tuple(
    _TICKS_PER_QUARTER * 2.0 ** (j - 0.5) for j in range(-6, 6))
#: Names of the bins of `duration_histogram`, in order (16 bins).
DURATION_BIN_NAMES: tuple[str, ...] = (
    ("non-finite", "negative (< -0.5)", "zero (|x| < 0.5)", "(0.5, 4.2)")
    + tuple(f"~{_TICKS_PER_QUARTER * 2.0 ** j:g}" for j in range(-6, 5))
    + (f"long (>= {DURATION_BIN_EDGES[-1]:.0f})",)
)

#: Per-song features of the intra-/inter-set distances and their distance.
FEATURES: dict[str, str] = {
    "pitch_class": "L1 between normalised pitch-class histograms (12 bins)",
    "pitch_range": "absolute difference of pitch ranges (semitones)",
    "ioi": "L1 between normalised inter-onset-interval (delta) histograms (16 bins)",
    "note_length": "L1 between normalised note-length histograms (16 bins)",
}
#: The features whose diversity is a target (no mode collapse).
DIVERSITY_FEATURES: tuple[str, ...] = ("pitch_class", "pitch_range", "ioi")


def pitch_class_histogram(song: ArrayLike) -> np.ndarray:
    """Normalised histogram of the pitch classes of a song's present tones (mgeval).

    Pitches as the six statistics and a MIDI file see them (``crnn_gan.metrics``: nearest
    MIDI pitch clipped to 0..127, ``hz <= 0`` at pitch 0), so sub-audio tones count where
    they sound in a MIDI file (mostly at C); `tone_validity` reports them.

    Args:
        song: float ``[T, k, 4]`` or ``[T, 4 * k]`` in raw units.

    Returns:
        float64 ``[12]`` summing to 1 (all zeros for a song without present tones).
    """
    pitch = codec.hz_to_pitch(present_tones(song)[:, _FREQ])
    counts = np.bincount(pitch % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def pitch_range(song: ArrayLike) -> float:
    """Highest minus lowest pitch of a song's present tones, in semitones (mgeval's pitch
    range; equal to ``metrics.tone_span``); 0.0 without tones."""
    pitch = codec.hz_to_pitch(present_tones(song)[:, _FREQ])
    return float(pitch.max() - pitch.min()) if pitch.size else 0.0


def duration_histogram(ticks: ArrayLike) -> np.ndarray:
    """Normalised histogram of durations in ticks over the fixed bins `DURATION_BIN_NAMES`.

    Bins: non-finite; negative (< -0.5); zero (-0.5 <= x < 0.5: rounds to 0 ticks, a chord
    for an inter-onset interval); then ``[0.5, e_1), [e_1, e_2), ..., [e_12, inf)`` with
    ``e_j = DURATION_BIN_EDGES[j]``, one octave each around 6 .. 6144 ticks. Raw values, no
    clamp: every value lands in exactly one bin.

    Args:
        ticks: float ``[n]``.

    Returns:
        float64 ``[16]`` summing to 1 (all zeros for no values).
    """
    x = np.asarray(ticks, dtype=np.float64).reshape(-1)
    counts = np.zeros(len(DURATION_BIN_NAMES))
    finite = np.isfinite(x)
    counts[0] = np.count_nonzero(~finite)
    v = x[finite]
    counts[1] = np.count_nonzero(v < -0.5)
    counts[2] = np.count_nonzero((v >= -0.5) & (v < 0.5))
    positive = v[v >= 0.5]
    counts[3:] = np.bincount(np.searchsorted(DURATION_BIN_EDGES, positive, side="right") - 1,
                             minlength=len(DURATION_BIN_EDGES))
    total = counts.sum()
    return counts / total if total else counts


def ioi_histogram(song: ArrayLike) -> np.ndarray:
    """`duration_histogram` of a song's inter-onset intervals: the raw delta of each present
    tone (ticks since the previous tone's start, the carried deltas of absent slots
    included; 0 = a chord). float64 ``[16]``."""
    return duration_histogram(present_tones(song)[:, _DELTA])


def note_length_histogram(song: ArrayLike) -> np.ndarray:
    """`duration_histogram` of a song's raw note lengths (present tones). float64 ``[16]``."""
    return duration_histogram(present_tones(song)[:, _LENGTH])


def feature_matrix(songs: ArrayLike | Sequence[ArrayLike], feature: str) -> np.ndarray:
    """One feature of every song, stacked.

    Args:
        songs: ``[N, T, k, 4]``, ``[N, T, 4 * k]`` or a list of ``[T_i, 4 * k]`` songs.
        feature: a key of `FEATURES`.

    Returns:
        float64 ``[N, d]``: d = 12 (pitch_class), 1 (pitch_range), 16 (ioi, note_length).
    """
    function = {"pitch_class": pitch_class_histogram, "pitch_range": pitch_range,
                "ioi": ioi_histogram, "note_length": note_length_histogram}.get(feature)
    if function is None:
        raise ValueError(f"feature must be one of {sorted(FEATURES)}, got {feature!r}")
    return np.array([np.atleast_1d(function(song)) for song in songs], dtype=np.float64)
