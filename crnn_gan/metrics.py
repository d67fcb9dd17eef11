"""Evaluation statistics of C-RNN-GAN (Mogren 2016, Figure 3), computed on tone arrays.

The six statistics of the paper -- polyphony, scale consistency, repetitions, tone span,
unique tones and intensity span -- plus the number of tones, for generated and for real
music alike. The tone format's rules (which tones are present, Hz to MIDI pitch) are
``tfds_midi.codec``'s; the statistics themselves use only numpy (no TensorFlow).

Input: a tone array in raw units, float ``[n, 4]`` with columns ``(length_ticks,
frequency_hz, velocity, delta_ticks)`` at 384 ticks per quarter note, where
``delta_ticks`` is the time from the previous tone's start (0 = a chord; the first tone's
delta is its start from the song start); or a packed C-RNN-GAN-3 array ``[m, 4 * k]``
whose slot ``j`` holds columns ``4j .. 4j + 3``. Every input goes through ``_unpack`` (an
``[n, 4]`` array is the case ``k = 1``; ``tfds_midi.codec.present_tones``): tones with
velocity < 0.5 (or NaN) are absent and dropped, and the delta of an absent tone is added to
the next present tone's delta, so the start of every present tone is kept.

Derived quantities:
    * pitch = ``round(69 + 12 * log2(hz / 440))`` clipped to 0..127 (nearest MIDI pitch,
      ``tfds_midi.codec.hz_to_pitch``); ``hz <= 0`` or NaN gives pitch 0.
    * start = ``cumsum(delta)`` rounded to the nearest whole tick (a MIDI file cannot hold
      finer timing, so generated deltas below half a tick count as a chord); non-finite
      deltas count as 0.
    * velocity is clipped to the MIDI range 0..127.

``compat="mogren2016"`` reproduces the formulas of the authors' ``midi_statistics.py``,
quirks included; each difference from the default, in one line:
    1. polyphony: ``poly / (poly + mono)`` of a running per-tone count (see ``polyphony``).
    2. scale consistency: ``pitch % 12 - root`` is not wrapped, so classes below the root fail.
    3. repetitions: the last n-gram is never compared; 0 unless ``2 <= length < min(n // 2, 10)``.
Unchanged in both modes: the three modes and their interval sets, ties (lowest root,
then mode order), rounding Hz to the nearest pitch (the original's statistics read MIDI
pitches directly), tone span, unique tones and intensity span. Not reproducible from a
merged tone array: the original listed a multi-track file's pitches track by track.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from tfds_midi import codec

__all__ = [
    "COMPAT_MODES",
    "MODES",
    "NOTE_NAMES",
    "STATISTICS",
    "UNITS",
    "ScaleResult",
    "all_statistics",
    "intensity_span",
    "normalise_real_repetitions",
    "num_tones",
    "polyphony",
    "repetitions",
    "scale_consistency",
    "summarise",
    "tone_span",
    "unique_tones",
]

#: The six statistics of the paper's Figure 3, in its order.
STATISTICS: tuple[str, ...] = (
    "polyphony",
    "scale_consistency",
    "repetitions",
    "tone_span",
    "unique_tones",
    "intensity_span",
)

#: Unit of each numeric statistic, for plot labels.
UNITS: dict[str, str] = {
    "polyphony": "fraction of onsets",
    "scale_consistency": "fraction of tones",
    "repetitions": "count",
    "tone_span": "semitones",
    "unique_tones": "count",
    "intensity_span": "velocity",
    "num_tones": "count",
}

#: Accepted values of ``compat`` besides ``None``.
COMPAT_MODES: tuple[str, ...] = ("mogren2016",)

#: Scale modes in tie-breaking order, with their intervals in semitones above the root.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

#: Names of the pitch classes 0..11.
NOTE_NAMES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

_FEATURES = codec.FEATURES_PER_TONE  # length, frequency, velocity, delta
_FREQ, _VELOCITY, _DELTA = codec.FREQUENCY, codec.VELOCITY, codec.DELTA
_PITCH_BASE = 128  # MIDI pitches 0..127, the radix of n-gram codes
_MAX_CODE = 2**55  # n-gram codes at or above this are re-numbered before growing

_MODE_NAMES = tuple(MODES)


def _membership(compat: str | None) -> np.ndarray:
    """Scale membership table.

    Returns:
        int64 ``[12 * len(MODES), 12]``: row ``root * len(MODES) + mode_index``, column
        pitch class ``c``; 1 if ``(c - root) % 12`` (default) or ``c - root`` without the
        modulo (``compat="mogren2016"``) is one of the mode's intervals.
    """
    classes = np.arange(12)
    rows = []
    for root in range(12):
        relative = classes - root if compat else (classes - root) % 12
        rows.extend(np.isin(relative, intervals) for intervals in MODES.values())
    return np.array(rows, dtype=np.int64)


_MEMBERSHIP = {None: _membership(None), "mogren2016": _membership("mogren2016")}


class ScaleResult(NamedTuple):
    """Best-matching scale of a sequence of tones.

    Attributes:
        score: fraction of tones (0..1) whose pitch class lies in the scale.
        root: pitch class of the scale's root, 0 (C) .. 11 (B).
        mode: one of ``"major"``, ``"natural_minor"``, ``"harmonic_minor"``.
        name: readable name such as ``"D major"`` or ``"A natural minor"``.
    """

    score: float
    root: int
    mode: str
    name: str


class _Song(NamedTuple):
    """Present tones of one song: int64 ``pitch [n]``, int64 ``start [n]`` in whole ticks
    (song order), float64 ``velocity [n]`` in 0..127."""

    pitch: np.ndarray
    start: np.ndarray
    velocity: np.ndarray


def _check_compat(compat: str | None) -> str | None:
    if compat is not None and compat not in COMPAT_MODES:
        raise ValueError(f"compat must be None or one of {COMPAT_MODES}, got {compat!r}")
    return compat


def _as_tone_array(tones: ArrayLike) -> np.ndarray:
    array = np.asarray(tones, dtype=np.float64)
    if array.size == 0 and array.ndim <= 1:
        return array.reshape(0, _FEATURES)
    if array.ndim != 2 or array.shape[1] == 0 or array.shape[1] % _FEATURES:
        raise ValueError(
            f"tones must have shape [n, 4] or [m, 4 * k], got shape {array.shape}"
        )
    return array


def _unpack(tones: ArrayLike) -> np.ndarray:
    """Unpacks ``[m, 4 * k]`` tone steps into the present tones in song order
    (`tfds_midi.codec.present_tones`: absent tones dropped, their deltas carried to the next
    present tone, exact float64 sums).

    Args:
        tones: float ``[m, 4 * k]`` (``k = 1`` for a plain ``[n, 4]`` array), or an empty
            array.

    Returns:
        float64 ``[n, 4]`` of present tones, columns (length ticks, Hz, velocity, delta
        ticks).

    Raises:
        ValueError: if the width is not a positive multiple of 4.
    """
    return codec.present_tones(_as_tone_array(tones))


def _prepare(tones: ArrayLike) -> _Song:
    present = _unpack(tones)
    delta = present[:, _DELTA]
    delta = np.where(np.isfinite(delta), delta, 0.0)
    return _Song(
        pitch=codec.hz_to_pitch(present[:, _FREQ]),
        start=np.rint(np.cumsum(delta)).astype(np.int64),
        velocity=np.clip(present[:, _VELOCITY], 0.0, 127.0),
    )


def _onset_sizes(start: np.ndarray) -> np.ndarray:
    """Number of tones at each distinct start tick, in time order (int64 ``[onsets]``)."""
    ordered = np.sort(start)
    bounds = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    return np.diff(np.concatenate(([0], bounds, [ordered.size])))


def _polyphony(song: _Song, compat: str | None) -> float:
    if song.start.size == 0:
        return 0.0
    sizes = _onset_sizes(song.start)
    if compat is None:
        return float(np.count_nonzero(sizes >= 2) / sizes.size)
    earlier = sizes[:-1]  # every onset but the last is counted once more when it ends
    poly = int(np.sum(sizes - 1)) + int(np.count_nonzero(earlier > 1))
    mono = sizes.size + int(np.count_nonzero(earlier == 1))
    return poly / (poly + mono) if poly else 0.0


def _scale(song: _Song, compat: str | None) -> ScaleResult:
    total = song.pitch.size
    if total == 0:
        return ScaleResult(0.0, 0, _MODE_NAMES[0], f"{NOTE_NAMES[0]} {_MODE_NAMES[0]}")
    histogram = np.bincount(song.pitch % 12, minlength=12)
    counts = _MEMBERSHIP[compat] @ histogram
    best = int(np.argmax(counts))  # first maximum: lowest root, then MODES order
    root, mode_index = divmod(best, len(_MODE_NAMES))
    mode = _MODE_NAMES[mode_index]
    name = f"{NOTE_NAMES[root]} {mode.replace('_', ' ')}"
    return ScaleResult(float(counts[best] / total), root, mode, name)


def _count_pairs(codes: np.ndarray, length: int) -> int:
    """Counts pairs ``i < j`` with ``codes[i] == codes[j]`` and ``j - i >= length``.

    Sorts the positions by code (stably, so ascending within a code), numbers the groups
    of equal codes ``g``, and searches the sorted keys ``g * span + position`` once per
    position ``p`` for the first later position ``>= p + length`` in its group.
    O(W log W) for ``W`` codes.
    """
    size = codes.size
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    new_group = np.empty(size, dtype=bool)
    new_group[:1] = True
    new_group[1:] = ordered[1:] != ordered[:-1]
    if new_group.all():
        return 0
    group = np.cumsum(new_group) - 1
    span = size + length  # > any position + length, so a search stays in its group
    keys = group * span + order
    first = np.searchsorted(keys, keys + length, side="left")
    end = np.searchsorted(keys, (group + 1) * span, side="left")
    return int(np.sum(end - first))


def _ngram_codes(pitch: np.ndarray, length: int, windows: int) -> np.ndarray:
    """Integer code of each ``length``-gram of pitches starting at ``0 .. windows - 1``;
    equal codes iff equal n-grams (int64 ``[windows]``)."""
    codes = pitch[:windows].copy()
    for offset in range(1, length):
        if codes.max() >= _MAX_CODE:
            codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
        codes = codes * _PITCH_BASE + pitch[offset : offset + windows]
    return codes


def _repetitions(song: _Song, length: int, compat: str | None) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    length = int(length)
    total = song.pitch.size
    windows = total - length + 1
    if compat is not None:
        if not 2 <= length < min(total // 2, 10):
            return 0
        windows -= 1  # the original never compares the last n-gram
    if windows <= length:  # no two non-overlapping windows
        return 0
    return _count_pairs(_ngram_codes(song.pitch, length, windows), length)


def _span(values: np.ndarray) -> float:
    """``max(values) - min(values)``, 0.0 for no values."""
    return float(values.max() - values.min()) if values.size else 0.0


def polyphony(tones: ArrayLike, *, compat: str | None = None) -> float:
    """Fraction of onsets at which at least two tones start.

    Default: ``#{onsets t : |{i : start_i = t}| >= 2} / #{distinct onsets}``, where
    ``start_i = round(cumsum(delta)_i)`` in whole ticks. Monophonic music scores 0, music
    made only of chords 1. ``compat="mogren2016"``: the original's running count over the
    sorted starts with onset sizes ``s_1 .. s_E`` in time order:
    ``poly = sum_e (s_e - 1) + #{e < E : s_e > 1}``,
    ``mono = E + #{e < E : s_e = 1}``, score ``poly / (poly + mono)`` (a lone three-tone
    chord scores 2/3).

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.
        compat: ``None`` or ``"mogren2016"``.

    Returns:
        A fraction in 0..1; 0.0 for no present tones.

    Raises:
        ValueError: for a bad shape or ``compat``.
    """
    return _polyphony(_prepare(tones), _check_compat(compat))


def scale_consistency(tones: ArrayLike, *, compat: str | None = None) -> ScaleResult:
    """Best fraction of tones in one scale over 12 roots x 3 modes (36 scales).

    Default: ``max_{root, mode} #{i : (pitch_i - root) mod 12 in MODES[mode]} / n``.
    ``compat="mogren2016"``: membership is ``(pitch_i mod 12) - root in MODES[mode]``
    without wrapping, so pitch classes below the root never count. Ties go to the
    lowest root, then to the order of ``MODES`` (major, natural minor, harmonic minor).

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.
        compat: ``None`` or ``"mogren2016"``.

    Returns:
        The best scale; ``ScaleResult(0.0, 0, "major", "C major")`` for no present tones.

    Raises:
        ValueError: for a bad shape or ``compat``.
    """
    return _scale(_prepare(tones), _check_compat(compat))


def repetitions(tones: ArrayLike, length: int = 3, *, compat: str | None = None) -> int:
    """Number of repeats of ``length``-tone pitch patterns (timing ignored, no transposing).

    Default: ``#{(i, j) : 0 <= i, i + length <= j <= n - length,
    pitch[i : i + length] == pitch[j : j + length]}`` -- pairs of equal, non-overlapping
    windows. ``compat="mogren2016"``: the same with ``j <= n - length - 1`` (the last
    window is never compared), and 0 unless ``2 <= length < min(n // 2, 10)``.

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.
        length: pattern length in tones, a positive integer.
        compat: ``None`` or ``"mogren2016"``.

    Returns:
        The pair count; 0 for fewer than ``2 * length`` present tones.

    Raises:
        ValueError: for a bad shape, ``length`` or ``compat``.
    """
    return _repetitions(_prepare(tones), length, _check_compat(compat))


def tone_span(tones: ArrayLike) -> int:
    """Semitones between the lowest and the highest pitch, ``max(pitch) - min(pitch)``.

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.

    Returns:
        Semitones, 0..127; 0 for no present tones.
    """
    return int(_span(_prepare(tones).pitch))


def unique_tones(tones: ArrayLike) -> int:
    """Number of distinct MIDI pitches, ``|{pitch_i}|``.

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.

    Returns:
        A count, 0..128; 0 for no present tones.
    """
    return int(np.unique(_prepare(tones).pitch).size)


def intensity_span(tones: ArrayLike) -> float:
    """Highest minus lowest velocity of the present tones, ``max(v) - min(v)``.

    Velocities are clipped to 0..127 first; silent tones (velocity < 0.5) are not present.

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.

    Returns:
        Velocity units, 0..127; 0.0 for no present tones.
    """
    return float(_span(_prepare(tones).velocity))


def num_tones(tones: ArrayLike) -> int:
    """Number of present tones (velocity >= 0.5).

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.

    Returns:
        A count; 0 for an empty or all-silent array.
    """
    return int(_prepare(tones).pitch.size)


def all_statistics(
    tones: ArrayLike, *, compat: str | None = None, repetition_length: int = 3
) -> dict[str, float | int | str]:
    """All statistics of one song, unpacking and converting it once.

    Args:
        tones: float ``[n, 4]`` or packed ``[m, 4 * k]`` tone array in raw units.
        compat: ``None`` or ``"mogren2016"``; changes polyphony, scale consistency and
            repetitions (see the module docstring).
        repetition_length: pattern length for ``repetitions``.

    Returns:
        Plain Python values, never NaN: ``polyphony`` (float), ``scale_consistency``
        (float), ``scale`` (name of the best scale, str), ``repetitions`` (int),
        ``tone_span`` (int), ``unique_tones`` (int), ``intensity_span`` (float),
        ``num_tones`` (int). An empty song gives zeros and ``"C major"``.

    Raises:
        ValueError: for a bad shape, ``compat`` or ``repetition_length``.
    """
    compat = _check_compat(compat)
    song = _prepare(tones)
    scale = _scale(song, compat)
    return {
        "polyphony": _polyphony(song, compat),
        "scale_consistency": scale.score,
        "scale": scale.name,
        "repetitions": _repetitions(song, repetition_length, compat),
        "tone_span": int(_span(song.pitch)),
        "unique_tones": int(np.unique(song.pitch).size),
        "intensity_span": float(_span(song.velocity)),
        "num_tones": int(song.pitch.size),
    }


def normalise_real_repetitions(
    real_count: float, real_length: float, generated_length: float
) -> float:
    """Scales a repetition count of real music to the length of generated music.

    The paper normalises by ``l_r / l_g``: ``real_count / (real_length / generated_length)``.

    Args:
        real_count: repetitions counted on real music.
        real_length: length of the real music, in tones.
        generated_length: length of the generated music, in tones.

    Returns:
        The normalised count.

    Raises:
        ValueError: if a length is not a finite number > 0.
    """
    for name, value in (("real_length", real_length), ("generated_length", generated_length)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(real_count / (real_length / generated_length))


def summarise(
    statistics: Sequence[Mapping[str, float | int | str]],
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each numeric statistic over songs.

    ``mean = sum_s x_s / S`` and ``std = sqrt(sum_s (x_s - mean)^2 / S)`` (population,
    ``ddof=0``). String values (the ``scale`` name) are skipped.

    Args:
        statistics: one ``all_statistics`` dict per song, all with the same keys.

    Returns:
        ``name -> (mean, std)`` as Python floats, in the key order of the first dict.

    Raises:
        ValueError: if ``statistics`` is empty.
    """
    if not statistics:
        raise ValueError("statistics must hold at least one song's statistics")
    summary = {}
    for name, first in statistics[0].items():
        if isinstance(first, str):
            continue
        values = np.array([float(song[name]) for song in statistics])
        summary[name] = (float(values.mean()), float(values.std()))
    return summary
