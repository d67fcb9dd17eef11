"""The shape of the songs the quality protocol measures, and which of their slots are tones.

Songs are float64 ``[N, T, k, 4]`` in raw units (columns length ticks, Hz, velocity, delta
ticks, as ``tfds_midi.codec``): `as_steps` takes them in either layout, `present_slots` says
which slots the measures count, and `canonical_steps` writes the format's canonical packed
form (what the discriminative classifier sees).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tfds_midi import codec

_FEATURES = codec.FEATURES_PER_TONE
_VELOCITY, _DELTA = codec.VELOCITY, codec.DELTA


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


def present_slots(slots: np.ndarray) -> np.ndarray:
    """Which slots of ``[..., k, 4]`` the measures count as tones (bool ``[..., k]``).

    ``k = 1``: every slot (a one-tone step always emits its tone). ``k > 1``: slots whose
    velocity rounds to >= 1 (the format's rule, ``codec.PRESENT_VELOCITY``), and slots
    holding a non-finite value (NaN is never a valid way to say "absent": `tone_validity`
    counts such a slot as an invalid tone, where the codec would drop it).
    """
    if slots.shape[-2] == 1:
        return np.ones(slots.shape[:-1], dtype=bool)
    return ((slots[..., _VELOCITY] >= codec.PRESENT_VELOCITY)
            | ~np.isfinite(slots).all(axis=-1))


def canonical_steps(songs: ArrayLike) -> np.ndarray:
    """Songs in the canonical packed form of the format (what ``pack_tones`` writes).

    For ``k > 1``, an absent slot (see `present_slots`) carries no information but its
    delta: it becomes all zeros and its delta is added to the next present slot (trailing
    absent deltas are dropped), as ``codec.unpack_tones`` reads it. Present slots keep their
    raw values. ``k = 1`` is returned unchanged.

    Args:
        songs: float ``[N, T, k, 4]`` or ``[N, T, 4 * k]``.

    Returns:
        float64 ``[N, T, k, 4]``.
    """
    x = as_steps(songs)
    if x.shape[2] == 1:
        return x
    out = np.zeros_like(x)
    present = present_slots(x)
    for i in range(x.shape[0]):
        flat, mask = x[i].reshape(-1, _FEATURES), present[i].reshape(-1)
        absent_delta = np.where(mask, 0.0, np.nan_to_num(flat[:, _DELTA]))
        carried = np.cumsum(absent_delta)[mask]
        tones = flat[mask].copy()
        tones[:, _DELTA] += np.diff(carried, prepend=0.0)
        target = out[i].reshape(-1, _FEATURES)
        target[mask] = tones
    return out
