"""Measures of generated music for the quality protocol (``benchmarks/bench_quality.py``).

Everything here measures the **raw outputs** of a generator: nothing is clamped, dropped or
octave-shifted before measuring. The only rule applied is the format's own: in a C-RNN-GAN-3
step of ``k = 3`` tone slots, a slot whose velocity rounds to 0 (velocity < 0.5, as
``tfds_midi.codec.unpack_tones``) is *absent*, not a tone.

Inputs (raw units, 384 ticks per quarter note):
    * generated songs: float ``[N, T, k, 4]`` (the SavedModel's ``tones`` output) or
      ``[N, T, 4 * k]``; columns ``(length_ticks, frequency_hz, velocity, delta_ticks)``.
    * real windows: float ``[R, T, 4 * k]`` in the same packed format (``k = 1``: ``T``
      consecutive tones; ``k = 3``: ``T`` steps of ``codec.pack_tones``).

Measures:
    * ``tone_validity``: the fraction of tones a MIDI piano can play (pitch 21-108, length
      > 0, velocity 1-127) and the fraction of sub-audio tones, with the reason of each
      failure.
    * ``mean_pairwise_distance`` of per-song features (``pitch_class_histogram``,
      ``pitch_range``, ``ioi_histogram``, ``note_length_histogram``): the intra-set
      diversity of Yang & Lerch (2020, "On the evaluation of generative models in music",
      mgeval); ``diversity`` compares a generated set with real windows.
    * ``overlapping_area`` of the intra-set and inter-set distance distributions (mgeval):
      how far the generated songs sit from real music, as real windows sit from each other.
    * ``discriminative_score``: TimeGAN's post-hoc score ``|accuracy - 0.5|`` of a fresh
      small GRU classifier that tells real windows from generated songs (held-out folds).
    * ``evaluate_set``: all of the above plus the paper's six statistics
      (``crnn_gan.metrics``) for one generated set against real windows.
    * ``check_targets``: the targets of the protocol, per seed.

All results are seeded: the same inputs give the same numbers. Only numpy is imported at
module level; Keras is imported by ``discriminative_score`` alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from crnn_gan import metrics

__all__ = [
    "DIVERSITY_FEATURES",
    "DURATION_BIN_EDGES",
    "DURATION_BIN_NAMES",
    "FEATURES",
    "PIANO_HIGHEST",
    "PIANO_LOWEST",
    "PROTOCOL_VERSION",
    "DiscriminatorSpec",
    "as_steps",
    "canonical_steps",
    "check_targets",
    "classifier_features",
    "discriminative_score",
    "diversity",
    "duration_histogram",
    "evaluate_set",
    "feature_matrix",
    "intra_set_distances",
    "inter_set_distances",
    "ioi_histogram",
    "mean_pairwise_distance",
    "midi_number",
    "note_length_histogram",
    "overlapping_area",
    "overlaps",
    "pitch_class_histogram",
    "pitch_range",
    "present_tones",
    "tone_validity",
]

#: Bumped whenever a measure changes, so that cached measurements are not reused.
PROTOCOL_VERSION = 1

#: The piano's range of MIDI pitches (A0 .. C8): a valid tone lies inside.
PIANO_LOWEST, PIANO_HIGHEST = 21, 108

_FEATURES = 4
_LENGTH, _FREQ, _VELOCITY, _DELTA = 0, 1, 2, 3
_MIN_VELOCITY = 0.5  # velocity rounds to >= 1: the tone (or slot) is present
_TICKS_PER_QUARTER = 384

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


# --------------------------------------------------------------------------------------
# Shapes and the format's rule.
# --------------------------------------------------------------------------------------

def as_steps(songs: ArrayLike, tones_per_step: int | None = None) -> np.ndarray:
    """Generated or real songs as float64 ``[N, T, k, 4]``.

    Args:
        songs: ``[N, T, k, 4]``, or ``[N, T, 4 * k]`` (``k`` from ``tones_per_step``, else
            the width / 4).
        tones_per_step: ``k`` for a ``[N, T, 4 * k]`` input (checked against the width).

    Returns:
        float64 ``[N, T, k, 4]`` (a copy).

    Raises:
        ValueError: for any other shape.
    """
    x = np.array(songs, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] % _FEATURES == 0 and x.shape[-1] > 0:
        k = x.shape[-1] // _FEATURES
        if tones_per_step is not None and tones_per_step != k:
            raise ValueError(f"songs of width {x.shape[-1]} hold {k} tones per step, "
                             f"not {tones_per_step}")
        x = x.reshape(*x.shape[:2], k, _FEATURES)
    if x.ndim != 4 or x.shape[-1] != _FEATURES or x.shape[2] < 1:
        raise ValueError(f"songs must have shape [N, T, k, 4] or [N, T, 4 * k], got "
                         f"{list(np.shape(songs))}")
    return x


def _present(slots: np.ndarray) -> np.ndarray:
    """Which slots of ``[..., k, 4]`` count as tones (bool ``[..., k]``).

    ``k = 1``: every slot (a one-tone step always emits its tone). ``k > 1``: slots whose
    velocity rounds to >= 1 (the format's rule), and slots holding a non-finite value (NaN
    is never a valid way to say "absent").
    """
    if slots.shape[-2] == 1:
        return np.ones(slots.shape[:-1], dtype=bool)
    return (slots[..., _VELOCITY] >= _MIN_VELOCITY) | ~np.isfinite(slots).all(axis=-1)


def present_tones(song: ArrayLike) -> np.ndarray:
    """The tones of one song as a MIDI file plays them: ``codec.unpack_tones`` order.

    Absent slots (velocity < 0.5) are left out and their deltas carried to the next
    present tone, as ``tfds_midi.codec.unpack_tones`` and ``crnn_gan.metrics`` do, for
    ``k = 1`` too (a one-tone step with velocity < 0.5 is silent).

    Args:
        song: float ``[T, k, 4]`` or ``[T, 4 * k]``.

    Returns:
        float64 ``[n, 4]``.
    """
    x = np.asarray(song, dtype=np.float64)
    return metrics._unpack(x.reshape(x.shape[0], -1))  # noqa: SLF001 - same rule, one place


def canonical_steps(songs: ArrayLike) -> np.ndarray:
    """Songs in the canonical packed form of the format (what ``pack_tones`` writes).

    For ``k > 1``, an absent slot (see ``_present``) carries no information but its delta:
    it becomes all zeros and its delta is added to the next present slot (trailing absent
    deltas are dropped), as ``codec.unpack_tones`` reads it. Present slots keep their raw
    values. ``k = 1`` is returned unchanged.

    Args:
        songs: float ``[N, T, k, 4]`` or ``[N, T, 4 * k]``.

    Returns:
        float64 ``[N, T, k, 4]``.
    """
    x = as_steps(songs)
    if x.shape[2] == 1:
        return x
    out = np.zeros_like(x)
    present = _present(x)
    for i in range(x.shape[0]):
        flat, mask = x[i].reshape(-1, _FEATURES), present[i].reshape(-1)
        absent_delta = np.where(mask, 0.0, np.nan_to_num(flat[:, _DELTA]))
        carried = np.cumsum(absent_delta)[mask]
        tones = flat[mask].copy()
        tones[:, _DELTA] += np.diff(carried, prepend=0.0)
        target = out[i].reshape(-1, _FEATURES)
        target[mask] = tones
    return out


# --------------------------------------------------------------------------------------
# Valid tones.
# --------------------------------------------------------------------------------------

def midi_number(hz: ArrayLike) -> np.ndarray:
    """Unrounded, unclipped MIDI number ``69 + 12 log2(hz / 440)``; NaN where ``hz <= 0`` or
    ``hz`` is not finite (float64, the shape of ``hz``)."""
    hz = np.asarray(hz, dtype=np.float64)
    ok = np.isfinite(hz) & (hz > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, 69.0 + 12.0 * np.log2(np.where(ok, hz, 440.0) / 440.0), np.nan)


def tone_validity(songs: ArrayLike) -> dict[str, float | int]:
    """Fraction of generated tones that a piano can play, on the raw outputs.

    A tone is valid when all four values are finite, its frequency is > 0 Hz and its
    nearest MIDI pitch ``rint(69 + 12 log2(hz / 440))`` lies in 21..108 (A0..C8), its
    length is > 0 ticks and its velocity rounds (half up, ``floor(v + 0.5)``) to 1..127.
    The delta is not part of validity (``negative_delta`` counts deltas < 0 for
    information). Measured tones: every step's tone for ``k = 1``; the present slots for
    ``k > 1`` (velocity rounds to >= 1, or a non-finite value; see ``_present``).

    Args:
        songs: float ``[N, T, k, 4]`` or ``[N, T, 4 * k]`` in raw units.

    Returns:
        ``tones`` (measured tones), ``slots`` (N * T * k), ``present_fraction``
        (tones / slots), ``valid_fraction`` (0.0 when there is no tone), ``sub_audio``
        (fraction of tones below A0: pitch < 21 or ``hz <= 0``), and the fraction of
        tones failing each rule (a tone may fail several): ``non_finite``,
        ``pitch_below`` (= ``sub_audio``), ``pitch_above``, ``length_not_positive``,
        ``velocity_out_of_range``; plus ``negative_delta``.
    """
    x = as_steps(songs)
    tones = x[_present(x)]  # [n, 4]
    n = len(tones)
    finite = np.isfinite(tones).all(axis=1)
    hz, length, velocity = tones[:, _FREQ], tones[:, _LENGTH], tones[:, _VELOCITY]
    with np.errstate(invalid="ignore"):
        pitch = np.rint(midi_number(hz))  # NaN for hz <= 0 or non-finite
        below = ~(pitch >= PIANO_LOWEST) & ~np.isnan(hz) & ~np.isposinf(hz)
        above = (pitch > PIANO_HIGHEST) | np.isposinf(hz)
        rounded_velocity = np.floor(velocity + 0.5)
        velocity_ok = (rounded_velocity >= 1) & (rounded_velocity <= 127)
        length_ok = length > 0
        negative_delta = tones[:, _DELTA] < 0
    valid = finite & ~below & ~above & length_ok & velocity_ok

    def fraction(mask):
        return float(np.count_nonzero(mask) / n) if n else 0.0

    return {
        "tones": int(n),
        "slots": int(np.prod(x.shape[:3])),
        "present_fraction": float(n / np.prod(x.shape[:3])) if x.size else 0.0,
        "valid_fraction": fraction(valid),
        "sub_audio": fraction(below),
        "non_finite": fraction(~finite),
        "pitch_below": fraction(below),
        "pitch_above": fraction(above),
        "length_not_positive": fraction(finite & ~length_ok),
        "velocity_out_of_range": fraction(finite & ~velocity_ok),
        "negative_delta": fraction(negative_delta),
    }


# --------------------------------------------------------------------------------------
# Per-song features (mgeval).
# --------------------------------------------------------------------------------------

def _clipped_pitch(hz: np.ndarray) -> np.ndarray:
    """The pitch a MIDI file holds, as ``crnn_gan.metrics``: ``rint(69 + 12 log2(hz/440))``
    clipped to 0..127, pitch 0 for ``hz <= 0`` or NaN (int64)."""
    number = midi_number(hz)
    return np.clip(np.nan_to_num(np.rint(number), nan=0.0), 0, 127).astype(np.int64)


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
    pitch = _clipped_pitch(present_tones(song)[:, _FREQ])
    counts = np.bincount(pitch % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def pitch_range(song: ArrayLike) -> float:
    """Highest minus lowest pitch of a song's present tones, in semitones (mgeval's pitch
    range; equal to ``metrics.tone_span``); 0.0 without tones."""
    pitch = _clipped_pitch(present_tones(song)[:, _FREQ])
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


def _l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L1 distances between every row of ``a [n, d]`` and of ``b [m, d]``: ``[n, m]``."""
    out = np.zeros((len(a), len(b)))
    for start in range(0, len(a), 256):
        out[start:start + 256] = np.abs(a[start:start + 256, None, :] - b[None]).sum(-1)
    return out


def intra_set_distances(features: ArrayLike) -> np.ndarray:
    """L1 distances of every pair ``i < j`` of the rows of ``features [N, d]``:
    float64 ``[N (N - 1) / 2]`` (the absolute difference for d = 1)."""
    f = np.asarray(features, dtype=np.float64)
    f = f.reshape(len(f), -1)
    upper = np.triu_indices(len(f), k=1)
    return _l1(f, f)[upper]


def inter_set_distances(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """L1 distances of every pair (row of ``a [N, d]``, row of ``b [M, d]``): ``[N * M]``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return _l1(a.reshape(len(a), -1), b.reshape(len(b), -1)).reshape(-1)


def mean_pairwise_distance(features: ArrayLike) -> float:
    """Intra-set diversity: the mean L1 distance over all pairs ``i < j`` of songs.

    Args:
        features: float ``[N, d]`` (or ``[N]``), N >= 2.

    Returns:
        ``sum_{i<j} |f_i - f_j|_1 / (N (N - 1) / 2)``.

    Raises:
        ValueError: for fewer than 2 songs.
    """
    f = np.asarray(features, dtype=np.float64)
    if len(f) < 2:
        raise ValueError(f"mean_pairwise_distance needs at least 2 songs, got {len(f)}")
    return float(intra_set_distances(f).mean())


def diversity(generated: ArrayLike, real: ArrayLike | Sequence[ArrayLike],
              features: Sequence[str] = tuple(FEATURES)) -> dict[str, dict[str, float | None]]:
    """Mean pairwise distance within the generated songs and within the real windows.

    Returns:
        ``feature -> {"generated", "real", "ratio"}`` with ``ratio = generated / real``
        (None when the real distance is 0).
    """
    out = {}
    for feature in features:
        gen = mean_pairwise_distance(feature_matrix(generated, feature))
        real_distance = mean_pairwise_distance(feature_matrix(real, feature))
        out[feature] = {"generated": gen, "real": real_distance,
                        "ratio": gen / real_distance if real_distance > 0 else None}
    return out


# --------------------------------------------------------------------------------------
# Overlapping areas (mgeval).
# --------------------------------------------------------------------------------------

def _scott_bandwidth(x: np.ndarray) -> float:
    """Scott's rule for one dimension, ``std * n ** (-1/5)`` (scipy's gaussian_kde)."""
    return float(np.std(x, ddof=1) * len(x) ** -0.2) if len(x) > 1 else 0.0


def overlapping_area(a: ArrayLike, b: ArrayLike, grid_points: int = 2048) -> float:
    """Overlapping area ``integral min(p_a, p_b)`` of two Gaussian KDEs (mgeval's OA).

    Each sample set gets its own Scott bandwidth (``std * n**-0.2``, as scipy's
    ``gaussian_kde``). The KDEs are evaluated by linear binning on a common grid of
    ``grid_points`` points spanning both sets plus 4 bandwidths (exact to the grid's
    resolution) and normalised to integrate to 1 on it. A set whose values are all equal
    (bandwidth 0) is a point mass: it lands in one grid cell.

    Args:
        a, b: float ``[n]`` and ``[m]`` samples (n, m >= 1; non-finite values are not
            allowed).
        grid_points: grid resolution.

    Returns:
        A number in 0..1: 1 for identical distributions, 0 for disjoint ones.

    Raises:
        ValueError: an empty or non-finite sample.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    for name, x in (("a", a), ("b", b)):
        if x.size == 0 or not np.isfinite(x).all():
            raise ValueError(f"overlapping_area: {name} must be a non-empty finite sample")
    bandwidths = (_scott_bandwidth(a), _scott_bandwidth(b))
    pad = 4 * max(bandwidths)
    lo, hi = min(a.min(), b.min()) - pad, max(a.max(), b.max()) + pad
    if hi - lo <= 0:
        return 1.0  # both are the same point mass
    grid = np.linspace(lo, hi, grid_points)
    dx = grid[1] - grid[0]

    def density(x, bandwidth):
        position = (x - lo) / dx
        left = np.clip(np.floor(position).astype(np.int64), 0, grid_points - 2)
        weight = np.clip(position - left, 0.0, 1.0)
        counts = (np.bincount(left, 1 - weight, minlength=grid_points)
                  + np.bincount(left + 1, weight, minlength=grid_points))
        sigma = bandwidth / dx
        if sigma > 0.25:
            half = int(np.ceil(5 * sigma))
            offsets = np.arange(-half, half + 1)
            kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
            # "full" then the centre: right whatever the kernel's length against the grid's.
            counts = np.convolve(counts, kernel / kernel.sum(), mode="full")[
                half:half + grid_points]
        return counts / (counts.sum() * dx)

    p, q = density(a, bandwidths[0]), density(b, bandwidths[1])
    return float(min(1.0, np.minimum(p, q).sum() * dx))


def overlaps(generated: ArrayLike, real: ArrayLike | Sequence[ArrayLike],
             features: Sequence[str] = tuple(FEATURES)) -> dict[str, dict[str, float]]:
    """mgeval's overlapping areas for each feature.

    For each feature: the intra-set distances of the real windows, of the generated songs,
    and the inter-set distances (every real window against every generated song).
    ``real_intra_vs_inter`` is ``overlapping_area(real intra, inter)``: near 1 when a
    generated song lies as far from real windows as real windows lie from each other.
    ``generated_intra_vs_inter`` is the same seen from the generated side.

    Returns:
        ``feature -> {"real_intra_vs_inter", "generated_intra_vs_inter"}``.
    """
    out = {}
    for feature in features:
        gen = feature_matrix(generated, feature)
        ref = feature_matrix(real, feature)
        inter = inter_set_distances(ref, gen)
        out[feature] = {
            "real_intra_vs_inter": overlapping_area(intra_set_distances(ref), inter),
            "generated_intra_vs_inter": overlapping_area(intra_set_distances(gen), inter),
        }
    return out


# --------------------------------------------------------------------------------------
# Discriminative score (TimeGAN).
# --------------------------------------------------------------------------------------

def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


#: Names of the classifier's input features per tone slot.
CLASSIFIER_COLUMNS: tuple[str, ...] = (
    "slog_length", "slog_hz", "slog_velocity", "slog_delta", "midi_over_12",
    "hz_not_positive", "non_finite", "present")


def classifier_features(songs: ArrayLike) -> np.ndarray:
    """The fixed transform of the discriminative classifier's input; no clamp.

    Songs first go to `canonical_steps` (for ``k > 1``: absent slots zeroed, their deltas
    carried, as the format reads them). Then for every tone slot, with
    ``slog(x) = sign(x) log1p(|x|)``: slog of each raw column (length, Hz, velocity,
    delta), the MIDI number / 12 where ``hz > 0`` (else 0), an indicator of ``hz <= 0``,
    an indicator of a non-finite value in the slot (whose non-finite values become 0),
    and an indicator of a present slot (always 1 for ``k = 1``).

    Args:
        songs: float ``[N, T, k, 4]`` or ``[N, T, 4 * k]`` in raw units.

    Returns:
        float32 ``[N, T, 8 * k]``.
    """
    x = canonical_steps(songs)
    present = _present(x)
    finite = np.isfinite(x)
    non_finite = ~finite.all(axis=-1)
    x = np.where(finite, x, 0.0)
    number = midi_number(x[..., _FREQ])
    columns = [
        _signed_log(x[..., _LENGTH]), _signed_log(x[..., _FREQ]),
        _signed_log(x[..., _VELOCITY]), _signed_log(x[..., _DELTA]),
        np.nan_to_num(number / 12.0, nan=0.0),
        ((x[..., _FREQ] <= 0) & present).astype(np.float64),
        non_finite.astype(np.float64), present.astype(np.float64),
    ]
    features = np.stack(columns, axis=-1)  # [N, T, k, 8]
    return features.reshape(*features.shape[:2], -1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class DiscriminatorSpec:
    """The post-hoc classifier of `discriminative_score`.

    Attributes:
        units: GRU units (one layer), then one sigmoid unit.
        epochs: passes over each training part.
        batch_size: windows per step.
        learning_rate: Adam's.
        folds: stratified folds; every window is held out once.
    """

    units: int = 16
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 5e-3
    folds: int = 4


def discriminative_score(real: ArrayLike, generated: ArrayLike, *, seed: int = 0,
                         spec: DiscriminatorSpec = DiscriminatorSpec()) -> dict:
    """TimeGAN's post-hoc discriminative score ``|accuracy - 0.5|`` (0 = indistinguishable,
    0.5 = trivially separable).

    The two sets are balanced (the larger is cut to the smaller's size by a seeded
    permutation), split into ``spec.folds`` stratified folds; for each fold a fresh
    classifier (``keras``: GRU(``spec.units``) -> Dense(1, sigmoid), Adam, binary
    cross-entropy) learns real (1) against generated (0) on the other folds and labels the
    held-out fold at 0.5. Inputs go through `classifier_features`, then are standardised
    with the training part's per-column mean and std. ``accuracy`` is over every held-out
    window. Seeded: ``keras.utils.set_random_seed(seed + fold)``.

    Args:
        real: float ``[R, T, k, 4]`` / ``[R, T, 4 * k]`` real windows, raw units.
        generated: float ``[G, T, k, 4]`` / ``[G, T, 4 * k]`` generated songs, same T, k.
        seed: seeds the permutation, the folds and the classifiers.
        spec: the classifier.

    Returns:
        ``score``, ``accuracy``, ``fold_accuracies``, ``per_class`` (``real``,
        ``generated`` accuracies), ``windows_per_class``, ``spec``.

    Raises:
        ValueError: mismatched shapes or fewer than 2 windows per class and fold.
    """
    import keras

    real_x = classifier_features(real)
    gen_x = classifier_features(generated)
    if real_x.shape[1:] != gen_x.shape[1:]:
        raise ValueError(f"real {list(real_x.shape)} and generated {list(gen_x.shape)} "
                         f"windows must have the same steps and tones per step")
    rng = np.random.default_rng(seed)
    n = min(len(real_x), len(gen_x))
    if n < 2 * spec.folds:
        raise ValueError(f"discriminative_score needs >= {2 * spec.folds} windows per class, "
                         f"got {n}")
    real_x = real_x[rng.permutation(len(real_x))[:n]]
    gen_x = gen_x[rng.permutation(len(gen_x))[:n]]
    x = np.concatenate([real_x, gen_x])
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
    fold_of = np.concatenate([rng.permutation(n) % spec.folds, rng.permutation(n) % spec.folds])
    correct = np.zeros(2 * n, dtype=bool)
    fold_accuracies = []
    for fold in range(spec.folds):
        train, test = fold_of != fold, fold_of == fold
        mean = x[train].reshape(-1, x.shape[-1]).mean(axis=0)
        std = x[train].reshape(-1, x.shape[-1]).std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        keras.utils.set_random_seed(seed + fold)
        model = keras.Sequential([
            keras.Input(x.shape[1:]),
            keras.layers.GRU(spec.units),
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(optimizer=keras.optimizers.Adam(spec.learning_rate),
                      loss="binary_crossentropy")
        model.fit((x[train] - mean) / std, y[train], epochs=spec.epochs,
                  batch_size=spec.batch_size, shuffle=True, verbose=0)
        probability = np.asarray(model((x[test] - mean) / std, training=False))
        correct[test] = (probability.reshape(-1) >= 0.5) == (y[test] == 1)
        fold_accuracies.append(float(correct[test].mean()))
        del model
        keras.backend.clear_session()
    accuracy = float(correct.mean())
    return {
        "score": abs(accuracy - 0.5),
        "accuracy": accuracy,
        "fold_accuracies": fold_accuracies,
        "per_class": {"real": float(correct[:n].mean()), "generated": float(correct[n:].mean())},
        "windows_per_class": int(n),
        "spec": dataclasses.asdict(spec),
    }


# --------------------------------------------------------------------------------------
# One generated set against real windows.
# --------------------------------------------------------------------------------------

def _statistics(songs: Sequence[np.ndarray]) -> list[dict]:
    return [metrics.all_statistics(np.asarray(s).reshape(len(s), -1)) for s in songs]


def _summary(stats: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    return {name: {"mean": mean, "std": std}
            for name, (mean, std) in metrics.summarise(stats).items()}


def real_summary(real_stats: Sequence[Mapping], generated_length: float
                 ) -> dict[str, dict[str, float]]:
    """Mean and std of the real windows' statistics, repetitions normalised to the
    generated length as ``crnn_gan.evaluation`` does (each window's count times
    ``l_g / l_r``; ``metrics.normalise_real_repetitions``).

    Args:
        real_stats: ``metrics.all_statistics`` of each real window.
        generated_length: ``l_g``, the mean number of present tones of the generated
            songs (the window length when they have none).
    """
    summary = _summary(real_stats)
    values = [metrics.normalise_real_repetitions(s["repetitions"], s["num_tones"],
                                                 generated_length)
              if s["num_tones"] else 0.0 for s in real_stats]
    summary["repetitions_raw"] = summary["repetitions"]
    summary["repetitions"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return summary


def evaluate_set(generated: ArrayLike, real: ArrayLike, *, seed: int = 0,
                 spec: DiscriminatorSpec = DiscriminatorSpec(),
                 real_stats: Sequence[Mapping] | None = None,
                 discriminator: bool = True) -> dict:
    """Every measure of one generated set against real windows of the same format.

    Args:
        generated: float ``[N, T, k, 4]`` raw outputs (N >= 2).
        real: float ``[R, T, 4 * k]`` (or ``[R, T, k, 4]``) real windows in the same
            packed format; the statistics, diversity and overlaps use all of them, the
            classifier a balanced subset.
        seed: seeds the discriminative score.
        spec: the classifier.
        real_stats: precomputed ``metrics.all_statistics`` of the real windows (optional,
            saves time when several sets share the same windows).
        discriminator: False skips the discriminative score (``None`` in the result).

    Returns:
        ``validity`` (`tone_validity`), ``statistics`` (``generated`` and ``real``
        summaries: mean and population std over songs/windows of the six statistics and
        ``num_tones``; real repetitions normalised, ``repetitions_raw`` too),
        ``diversity`` (`diversity`), ``overlap`` (`overlaps`), ``discriminative``
        (`discriminative_score`), ``songs``, ``steps``, ``tones_per_step``,
        ``real_windows``.
    """
    gen = as_steps(generated)
    ref = as_steps(real, tones_per_step=gen.shape[2])
    if ref.shape[1] != gen.shape[1]:
        raise ValueError(f"real windows have {ref.shape[1]} steps, generated songs "
                         f"{gen.shape[1]}")
    gen_stats = _statistics(gen)
    real_stats = list(real_stats) if real_stats is not None else _statistics(ref)
    gen_summary = _summary(gen_stats)
    length = gen_summary["num_tones"]["mean"] or float(gen.shape[1])
    return {
        "songs": int(gen.shape[0]), "steps": int(gen.shape[1]),
        "tones_per_step": int(gen.shape[2]), "real_windows": int(ref.shape[0]),
        "validity": tone_validity(gen),
        "statistics": {"generated": gen_summary, "real": real_summary(real_stats, length)},
        "diversity": diversity(gen, ref),
        "overlap": overlaps(gen, ref),
        "discriminative": (discriminative_score(ref, gen, seed=seed, spec=spec)
                           if discriminator else None),
    }


# --------------------------------------------------------------------------------------
# Targets.
# --------------------------------------------------------------------------------------

def _target(name: str, description: str, op: str, threshold: float,
            values: Mapping[str, float | None], note: str | None = None) -> dict:
    """One target: ``values`` (per seed, or one ``"all"`` value) against ``threshold``.

    ``met`` is True only when every value exists, is finite and passes ``op``; None when
    there is no value at all (not evaluated).
    """
    ops = {">=": np.greater_equal, "<=": np.less_equal, "<": np.less, ">": np.greater}
    met_per_seed = {}
    for key, value in values.items():
        ok = value is not None and np.isfinite(value) and bool(ops[op](value, threshold))
        met_per_seed[key] = bool(ok)
    entry = {"name": name, "description": description, "op": op, "threshold": threshold,
             "values": {k: (None if v is None or not np.isfinite(v) else float(v))
                        for k, v in values.items()},
             "met_per_seed": met_per_seed,
             "met": (all(met_per_seed.values()) if any(v is not None for v in values.values())
                     else None)}
    if note:
        entry["note"] = note
    return entry


def _stat(result: Mapping, side: str, name: str, key: str = "mean") -> float:
    return float(result["statistics"][side][name][key])


def check_targets(results: Mapping[str, Mapping[str, Mapping]], *,
                  gan: str = "gan", baseline: str = "baseline", gan3: str = "gan3"
                  ) -> list[dict]:
    """The protocol's targets, each checked in every seed.

    Args:
        results: ``model -> seed (str) -> evaluate_set result``. Models that are missing
            leave their targets out (or ``met: None`` when a comparison lacks a partner).

    Returns:
        One dict per target: ``name``, ``description``, ``op``, ``threshold``, ``values``
        (per seed; ``"all"`` for the seed spread), ``met_per_seed`` and ``met`` (True only
        if met in every seed). Targets:

        * ``valid_tones/<gan|gan3>``: valid fraction of the raw outputs >= 0.99.
        * ``scale_consistency/gan``: mean over songs >= 0.85.
        * ``tone_span/gan``, ``unique_tones/gan``: ``|gen mean - real mean| / real std``
          <= 1 (within one std of real windows).
        * ``gan_vs_baseline/statistics``: number of the six statistics on which the GAN's
          mean is strictly closer to the real mean than the baseline's (same seed) >= 5.
        * ``gan_vs_baseline/discriminative``: GAN's score minus the baseline's < 0.
        * ``polyphony/gan3``: ``|gen - real|`` <= 0.1.
        * ``discriminative_score/gan``: < 0.35.
        * ``seed_spread/<statistic>/gan``: std over seeds (ddof=1) of the per-seed means,
          divided by the real std (mean over seeds of each seed's real std), <= 0.5.
          Needs >= 2 seeds.
        * ``diversity/<pitch_class|pitch_range|ioi>/gan``: generated / real mean pairwise
          distance >= 0.7.
    """
    out = []
    g, b, g3 = results.get(gan), results.get(baseline), results.get(gan3)
    for model, label in ((gan, "GAN"), (gan3, "GAN-3")):
        if results.get(model):
            out.append(_target(
                f"valid_tones/{model}", f"{label}: valid tones of the raw outputs >= 99 %",
                ">=", 0.99, {s: r["validity"]["valid_fraction"]
                             for s, r in results[model].items()}))
    if g:
        out.append(_target("scale_consistency/gan", "GAN: scale consistency >= 0.85", ">=",
                           0.85, {s: _stat(r, "generated", "scale_consistency")
                                  for s, r in g.items()}))
        for name in ("tone_span", "unique_tones"):
            values = {}
            for s, r in g.items():
                real_std = _stat(r, "real", name, "std")
                gap = abs(_stat(r, "generated", name) - _stat(r, "real", name))
                values[s] = gap / real_std if real_std > 0 else (0.0 if gap == 0 else None)
            out.append(_target(f"{name}/gan", f"GAN: {name.replace('_', ' ')} within one "
                               f"std of real windows (|gen - real| / real std)", "<=", 1.0,
                               values))
    if g:
        closer, disc = {}, {}
        for s, r in g.items():
            rb = (b or {}).get(s)
            if rb is None:
                closer[s] = disc[s] = None
                continue
            closer[s] = sum(
                abs(_stat(r, "generated", n) - _stat(r, "real", n))
                < abs(_stat(rb, "generated", n) - _stat(rb, "real", n))
                for n in metrics.STATISTICS)
            if r.get("discriminative") and rb.get("discriminative"):
                disc[s] = r["discriminative"]["score"] - rb["discriminative"]["score"]
            else:
                disc[s] = None
        note = None if b else "no baseline run"
        out.append(_target("gan_vs_baseline/statistics",
                           "GAN closer to real than the baseline (same seed) on at least 5 "
                           "of the 6 statistics", ">=", 5, closer, note))
        out.append(_target("gan_vs_baseline/discriminative",
                           "GAN's discriminative score minus the baseline's (same seed) < 0",
                           "<", 0.0, disc, note))
    if g3:
        out.append(_target("polyphony/gan3", "GAN-3: polyphony within 0.1 of real (|gen - "
                           "real|)", "<=", 0.1,
                           {s: abs(_stat(r, "generated", "polyphony")
                                   - _stat(r, "real", "polyphony")) for s, r in g3.items()}))
    if g:
        out.append(_target("discriminative_score/gan", "GAN: discriminative score < 0.35",
                           "<", 0.35, {s: (r["discriminative"] or {}).get("score")
                                       for s, r in g.items()}))
        for name in metrics.STATISTICS:
            means = [_stat(r, "generated", name) for r in g.values()]
            real_std = float(np.mean([_stat(r, "real", name, "std") for r in g.values()]))
            if len(means) < 2:
                value, note = None, "needs at least 2 seeds"
            else:
                spread = float(np.std(means, ddof=1))
                value = spread / real_std if real_std > 0 else (0.0 if spread == 0 else None)
                note = None
            entry = _target(f"seed_spread/{name}/gan",
                            f"GAN: std over seeds of the mean {name.replace('_', ' ')} / real "
                            f"std <= 0.5", "<=", 0.5, {"all": value}, note)
            entry["per_seed_means"] = dict(zip(g.keys(), means))
            out.append(entry)
        for feature in DIVERSITY_FEATURES:
            out.append(_target(
                f"diversity/{feature}/gan",
                f"GAN: mean pairwise {FEATURES[feature]} >= 0.7x the real windows'",
                ">=", 0.7, {s: r["diversity"][feature]["ratio"] for s, r in g.items()}))
    return out
