"""Valid tones: the fraction of a generator's raw tones that a MIDI piano can play."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from crnn_gan.quality.steps import as_steps, present_slots
from tfds_midi import codec

_LENGTH, _FREQ, _VELOCITY, _DELTA = codec.LENGTH, codec.FREQUENCY, codec.VELOCITY, codec.DELTA


def tone_validity(songs: ArrayLike) -> dict[str, float | int]:
    """Fraction of generated tones that a piano can play, on the raw outputs.

    A tone is valid when all four values are finite, its frequency is > 0 Hz and its
    nearest MIDI pitch ``rint(69 + 12 log2(hz / 440))`` (``codec.hz_to_pitch`` unclipped)
    lies in ``codec.PIANO_LOWEST .. codec.PIANO_HIGHEST`` (21..108, A0..C8), its length is
    > 0 ticks and its velocity rounds (half up, ``floor(v + 0.5)``) to 1..127. The delta is
    not part of validity (``negative_delta`` counts deltas < 0 for information). Measured
    tones: every step's tone for ``k = 1``; the present slots for ``k > 1`` (velocity rounds
    to >= 1, or a non-finite value; see `present_slots`).

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
    tones = x[present_slots(x)]  # [n, 4]
    n = len(tones)
    finite = np.isfinite(tones).all(axis=1)
    hz, length, velocity = tones[:, _FREQ], tones[:, _LENGTH], tones[:, _VELOCITY]
    with np.errstate(invalid="ignore"):
        pitch = codec.hz_to_pitch(hz, clip=False)  # 0 for hz <= 0 or NaN, +inf for +inf
        below = (pitch < codec.PIANO_LOWEST) & ~np.isnan(hz)
        above = pitch > codec.PIANO_HIGHEST
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
