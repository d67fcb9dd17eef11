"""Conversion between MIDI files and C-RNN-GAN tone arrays.

A *tone* is one played note, described by four real values (one row of a ``[n, 4]``
float32 array):

* ``LENGTH`` (column 0): duration in ticks, at ``TICKS_PER_QUARTER`` (384) ticks per
  quarter note.
* ``FREQUENCY`` (column 1): the pitch as a frequency in Hz, ``440 * 2 ** ((p - 69) / 12)``.
* ``VELOCITY`` (column 2): the MIDI velocity (intensity), 1..127; 0 means "no tone".
* ``DELTA`` (column 3): ticks from the previous tone's start to this tone's start; for the
  first tone, ticks from the start of the song. 0 means "starts together" (a chord).

Tones are in *canonical order*: sorted by start tick, then pitch, then length, then
velocity. :func:`midi_to_tones` reads a MIDI file into this form, :func:`tones_to_midi`
writes it back, and :func:`pack_tones` / :func:`unpack_tones` group simultaneous tones into
the fixed-width steps of C-RNN-GAN-3.

This module depends only on numpy, mido (for writing), `tfds_midi.smf` (for reading) and
the standard library.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, Union

import mido
import numpy as np

from tfds_midi import smf

TICKS_PER_QUARTER = 384
"""Time resolution of tone arrays, in ticks per quarter note."""

FEATURES_PER_TONE = 4
"""Number of real values describing one tone."""

LENGTH, FREQUENCY, VELOCITY, DELTA = 0, 1, 2, 3
"""Column indices of a ``[n, 4]`` tone array."""

PRESENT_VELOCITY = 0.5
"""A tone (slot) is present when its velocity rounds to >= 1, i.e. is >= 0.5 (NaN: absent)."""

COLUMN_NAMES = ("length_ticks", "frequency_hz", "velocity", "delta_ticks")
"""Human-readable names of the four columns, indexed by the constants above."""

DEFAULT_BPM = 120.0
"""Tempo written by :func:`tones_to_midi`, in quarter notes per minute.

This is the MIDI default tempo. The original C-RNN-GAN code wrote its output at 45 bpm;
tempo does not affect the tone representation (which is in ticks), only playback speed.
"""

DRUM_CHANNEL = 9
"""Zero-based MIDI channel of General MIDI percussion (channel 10); its notes are skipped."""

PIANO_LOWEST, PIANO_HIGHEST = 21, 108
"""The piano's keys as MIDI pitches (A0 .. C8): what `crnn_gan.heads` bounds G to and the
quality protocol (`crnn_gan.quality.validity`) calls playable."""

_MIDI_CHANNELS = 16
_WRITER_CHANNELS = tuple(c for c in range(_MIDI_CHANNELS) if c != DRUM_CHANNEL)
_HEADER_BYTES = 14  # "MThd" + 4-byte length + format, track count, division (2 bytes each).

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


class MidiFormatError(ValueError):
    """A MIDI input that cannot be read into tones.

    Attributes:
        source: Name of the offending input (a file's basename, or ``"<bytes>"``).
        reason: Human-readable description of the problem.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source, reason)
        self.source = source
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


# --------------------------------------------------------------------------------------
# Pitch <-> frequency.
# --------------------------------------------------------------------------------------


def pitch_to_hz(pitch: Any, dtype: Any = np.float32) -> np.ndarray:
    """Converts MIDI pitches to frequencies (equal temperament, A4 = pitch 69 = 440 Hz).

    Args:
        pitch: MIDI pitch numbers, a scalar or an array of any shape (integers or reals).
        dtype: of the result: float32 (tone arrays' type) or float64 (exact bounds, e.g.
            `crnn_gan.heads`' piano range).

    Returns:
        An array of the same shape, in Hz, computed in float64 and then cast to `dtype`.
    """
    p = np.asarray(pitch, dtype=np.float64)
    return (440.0 * 2.0 ** ((p - 69.0) / 12.0)).astype(dtype)


def hz_to_fractional_pitch(hz: Any) -> np.ndarray:
    """Converts frequencies to unrounded MIDI pitch numbers ``69 + 12 * log2(hz / 440)``.

    Args:
        hz: Frequencies in Hz, a scalar or an array of any shape.

    Returns:
        float64 array of the same shape, not clipped (+inf Hz gives +inf); NaN where
        ``hz <= 0`` or NaN (no pitch).
    """
    f = np.asarray(hz, dtype=np.float64)
    positive = f > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        number = 69.0 + 12.0 * np.log2(np.where(positive, f, 440.0) / 440.0)
    return np.where(positive, number, np.nan)


def hz_to_pitch(hz: Any, clip: bool = True) -> np.ndarray:
    """Converts frequencies to the nearest MIDI pitch.

    Computes ``round(69 + 12 * log2(hz / 440))`` (:func:`hz_to_fractional_pitch`, rounded
    half to even like Python's ``round``) and clips to 0..127. Frequencies ``<= 0`` or NaN
    (which have no pitch) map to 0.

    Args:
        hz: Frequencies in Hz, a scalar or an array of any shape.
        clip: False keeps pitches outside 0..127 (for drawing what a model played; +inf Hz
            gives +inf).

    Returns:
        An array of the same shape: int64 pitches in 0..127, or with ``clip=False`` float64
        whole numbers.
    """
    p = np.rint(hz_to_fractional_pitch(hz))
    p = np.where(np.isnan(p), 0.0, p)
    if not clip:
        return p
    return np.clip(p, 0, 127).astype(np.int64)


def tone_start_ticks(tones: np.ndarray) -> np.ndarray:
    """Returns the absolute start of every tone: the cumulative sum of the deltas.

    Args:
        tones: ``[n, 4]`` tone array.

    Returns:
        float64 array ``[n]`` of start times in ticks (384 per quarter).
    """
    return np.cumsum(np.asarray(tones, dtype=np.float64)[:, DELTA])


def canonical_order(tones: Any) -> np.ndarray:
    """The same tones at the same start ticks, in canonical order (by start, then pitch,
    length, velocity; as :func:`midi_to_tones` returns them), with the deltas recomputed.

    Nothing is clamped: a generator's raw tones keep their values; only the order of tones
    that start together (and of any whose deltas were negative) changes, which a MIDI file
    cannot tell apart.

    Args:
        tones: ``[n, 4]`` tone array, raw units.

    Returns:
        ``[n, 4]`` array of the input's dtype.
    """
    tones = np.asarray(tones)
    start = tone_start_ticks(tones)
    order = np.lexsort((tones[:, VELOCITY], tones[:, LENGTH], tones[:, FREQUENCY], start))
    out = tones[order].copy()
    out[:, DELTA] = np.diff(start[order], prepend=0.0)
    return out


# --------------------------------------------------------------------------------------
# Reading.
# --------------------------------------------------------------------------------------


def _read_source(source: Source, name: str | None) -> tuple[bytes, str]:
    """Returns the bytes of ``source`` and the name to use in error messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name if name is not None else "<bytes>"
    try:
        path = os.fspath(source)
    except TypeError:
        raise TypeError(
            f"source must be a path or bytes, got {type(source).__name__}"
        ) from None
    if name is None:
        name = os.path.basename(path) or str(path)
    try:
        with open(path, "rb") as f:
            return f.read(), name
    except FileNotFoundError:
        raise MidiFormatError(name, "file not found") from None
    except OSError as e:
        raise MidiFormatError(name, f"cannot read file ({e.strerror or e})") from None


def _split_chunks(data: bytes, name: str) -> tuple[int, list[bytes]]:
    """Validates the MIDI container structure.

    Args:
        data: The whole file.
        name: Name for error messages.

    Returns:
        (ticks_per_beat, track chunk payloads). Non-``MTrk`` chunks are skipped, as the
        Standard MIDI File spec requires; so is trailing garbage shorter than a chunk header
        or an unknown chunk running past the end of the file. The header's track count is
        not enforced: every complete ``MTrk`` chunk present is read.

    Raises:
        MidiFormatError: For every structural problem.
    """
    if not data:
        raise MidiFormatError(name, "empty file (0 bytes)")
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":  # RIFF-wrapped MIDI (.rmi).
        start = data.find(b"MThd")
        if start > 0:
            data = data[start:]
    if not data.startswith(b"MThd") and not (len(data) < 4 and b"MThd".startswith(data)):
        raise MidiFormatError(name, "not a MIDI file (no MThd header)")
    if len(data) < _HEADER_BYTES:
        raise MidiFormatError(
            name, f"truncated header ({len(data)} of {_HEADER_BYTES} bytes)"
        )
    header_len, fmt, _, division = struct.unpack(">LHHH", data[4:_HEADER_BYTES])
    if header_len < 6:
        raise MidiFormatError(name, f"bad header length {header_len} (expected 6)")
    if fmt == 2:
        # Each track of a type 2 file is an independent sequence (pattern), with no
        # common timeline to merge; such files are rare and not songs in our sense.
        raise MidiFormatError(
            name, "MIDI file type 2 (sequential patterns) is not supported"
        )
    if fmt > 2:
        raise MidiFormatError(name, f"unknown MIDI file type {fmt}")
    if division & 0x8000:
        raise MidiFormatError(
            name, "SMPTE time division is not supported (only ticks per quarter note)"
        )
    if division == 0:
        raise MidiFormatError(name, "bad time division (0 ticks per quarter note)")

    chunks = []
    pos = 8 + header_len
    if pos > len(data):
        raise MidiFormatError(
            name, f"truncated header ({len(data)} of {pos} bytes)"
        )
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack(">4sL", data[pos:pos + 8])
        pos += 8
        remaining = len(data) - pos
        if size > remaining:
            if chunk_id != b"MTrk":
                break  # Trailing garbage or an unknown truncated chunk: ignore it.
            raise MidiFormatError(
                name,
                f"track {len(chunks)} chunk claims {size} bytes, only {remaining} remain "
                "(truncated file)",
            )
        if chunk_id == b"MTrk":
            chunks.append(data[pos:pos + size])
        pos += size
    if not chunks:
        raise MidiFormatError(name, "no track chunks (MTrk)")
    return division, chunks


def midi_to_tones(source: Source, name: str | None = None) -> np.ndarray:
    """Reads a MIDI file into canonical tones.

    Every note_on with velocity > 0 starts a tone; a note_off (or note_on with velocity 0)
    ends the earliest still-open note with the same track, channel and pitch (first in,
    first out). A note never ended lasts until the track's last event. Tracks and channels
    are merged, except the drum channel ``DRUM_CHANNEL`` (9). Tempo and time signature are
    ignored; meta events are skipped undecoded (`tfds_midi.smf`), so a malformed one (a key
    signature of mode 255) costs no note. Absolute ticks are rescaled to 384 per quarter with
    ``round(tick * 384 / ticks_per_beat)`` (half to even), start and end separately.

    Type 0 and type 1 files are read; type 2 files (independent sequential patterns,
    which have no single timeline and are rare) are rejected.

    Args:
        source: Path (``str`` or ``os.PathLike``) of a MIDI file, or its bytes.
        name: Name used in error messages; defaults to the path's basename, or
            ``"<bytes>"``.

    Returns:
        float32 array ``[n, 4]``, n >= 1, columns (length in ticks, frequency in Hz,
        velocity 1..127, delta in ticks), ticks at 384 per quarter, in canonical order
        (start, pitch, length, velocity).

    Raises:
        MidiFormatError: The file is missing, unreadable, malformed, of an unsupported kind
            (type 2, SMPTE time division) or holds no (non-drum) notes.
    """
    data, name = _read_source(source, name)
    ticks_per_beat, chunks = _split_chunks(data, name)

    starts: list[int] = []
    ends: list[int] = []
    pitches: list[int] = []
    velocities: list[int] = []
    for index, chunk in enumerate(chunks):
        try:
            events, end_tick = smf.track_notes(chunk)
        except smf.TrackError as e:
            raise MidiFormatError(name, f"track {index}: cannot parse ({e.reason})") from None
        open_notes: dict[int, list[int]] = {}
        for tick, status, note, velocity in events:
            channel = status & 0x0F
            if channel == DRUM_CHANNEL:
                continue
            key = (channel << 7) | note
            if velocity > 0 and status & 0xF0 == smf.NOTE_ON:
                open_notes.setdefault(key, []).append(len(starts))
                starts.append(tick)
                ends.append(-1)
                pitches.append(note)
                velocities.append(velocity)
                continue
            queue = open_notes.get(key)  # a note_off, or a note_on of velocity 0
            if queue:
                ends[queue.pop(0)] = tick
        for queue in open_notes.values():
            for i in queue:
                ends[i] = end_tick  # Unclosed: ends with the track.

    if not starts:
        raise MidiFormatError(name, "no notes (the drum channel 10 is excluded)")

    start = np.asarray(starts, dtype=np.int64)
    end = np.asarray(ends, dtype=np.int64)
    if ticks_per_beat != TICKS_PER_QUARTER:
        scale = TICKS_PER_QUARTER / ticks_per_beat
        start = np.rint(start * scale).astype(np.int64)
        end = np.rint(end * scale).astype(np.int64)
    length = end - start
    pitch = np.asarray(pitches, dtype=np.int64)
    velocity = np.asarray(velocities, dtype=np.int64)

    order = np.lexsort((velocity, length, pitch, start))
    start = start[order]
    tones = np.empty((len(order), FEATURES_PER_TONE), dtype=np.float32)
    tones[:, LENGTH] = length[order]
    tones[:, FREQUENCY] = pitch_to_hz(pitch[order])
    tones[:, VELOCITY] = velocity[order]
    tones[:, DELTA] = np.diff(start, prepend=0)
    return tones


# --------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------


def _check_tones(tones: Any) -> np.ndarray:
    """Returns ``tones`` as a float64 ``[n, 4]`` array, or raises ValueError."""
    try:
        x = np.asarray(tones, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"tones must be a numeric array of shape [n, 4]: {e}") from None
    if x.ndim != 2 or x.shape[1] != FEATURES_PER_TONE:
        raise ValueError(
            f"tones must have shape [n, {FEATURES_PER_TONE}], got shape {list(x.shape)}"
        )
    bad = ~np.isfinite(x).all(axis=0)
    if bad.any():
        column = int(np.argmax(bad))
        raise ValueError(
            f"tones column {column} ({COLUMN_NAMES[column]}) contains NaN or Inf"
        )
    return x


def _assign_channels(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Gives each note a channel on which FIFO reading pairs its note-off with its note-on.

    A reader closes the earliest open note of a (channel, pitch), so same-pitch notes may
    share a channel, overlapping or not, as long as they end in the order they start.
    Notes must be in canonical order (start, pitch, length, ...): a note goes to the first
    channel (0..15 without 9) whose notes of that pitch all end no later than it does.
    Only when none does (more than 15 nested same-pitch notes) is the channel whose
    same-pitch notes end earliest reused; the round trip is then no longer exact.

    Returns:
        int array ``[n]`` of channels.
    """
    channels = np.zeros(len(start), dtype=np.int64)
    last_end: dict[int, list[int]] = {}  # pitch -> latest end per writer channel.
    never = -1
    for i, (e, p) in enumerate(zip(end.tolist(), pitch.tolist())):
        ends = last_end.get(p)
        if ends is None:
            ends = last_end[p] = [never] * len(_WRITER_CHANNELS)
        slot = next((k for k, latest in enumerate(ends) if latest <= e), -1)
        if slot < 0:
            slot = min(range(len(ends)), key=ends.__getitem__)
        ends[slot] = max(ends[slot], e)
        channels[i] = _WRITER_CHANNELS[slot]
    return channels


def tones_to_midi(
    tones: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    bpm: float = DEFAULT_BPM,
    program: int = 0,
) -> mido.MidiFile:
    """Writes tones as a type 0 MIDI file (the inverse of :func:`midi_to_tones`).

    Lengths and deltas are rounded to the nearest tick and clipped at 0; velocities are
    rounded and clipped to 0..127, and a tone whose velocity rounds to 0 is not written
    (its delta still advances time); frequencies go to the nearest pitch (:func:`hz_to_pitch`).
    Same-pitch tones that overlap or touch are put on different channels (0..15 without the
    drum channel) so that reading the file back reproduces them exactly; with more than 15
    simultaneous tones of one pitch, exactness is not guaranteed.

    Args:
        tones: Array-like ``[n, 4]`` (length ticks, frequency Hz, velocity, delta ticks),
            ticks at 384 per quarter.
        path: If given, the file is also saved there.
        bpm: Tempo in quarter notes per minute, written as a set_tempo event at tick 0.
        program: General MIDI program (0..127) set on every channel used.

    Returns:
        The ``mido.MidiFile`` (type 0, one track, 384 ticks per beat).

    Raises:
        ValueError: ``tones`` is not ``[n, 4]`` or holds NaN/Inf; bad ``bpm``/``program``.
    """
    x = _check_tones(tones)
    if not np.isfinite(bpm) or bpm <= 0:
        raise ValueError(f"bpm must be a positive number, got {bpm}")
    if not 0 <= int(program) <= 127:
        raise ValueError(f"program must be in 0..127, got {program}")

    length = np.maximum(np.rint(x[:, LENGTH]), 0).astype(np.int64)
    delta = np.maximum(np.rint(x[:, DELTA]), 0).astype(np.int64)
    velocity = np.clip(np.rint(x[:, VELOCITY]), 0, 127).astype(np.int64)
    pitch = hz_to_pitch(x[:, FREQUENCY])
    start = np.cumsum(delta)

    keep = velocity > 0
    start, length, velocity, pitch = start[keep], length[keep], velocity[keep], pitch[keep]
    end = start + length  # Starts are already sorted: deltas are >= 0.
    channel = _assign_channels(start, end, pitch)

    # Events sorted by (tick, kind, note index): note_offs of notes with length > 0 first
    # (kind 0), then note_ons (kind 1), then note_offs of zero-length notes (kind 2).
    n = len(start)
    index = np.arange(n)
    ev_tick = np.concatenate([end, start])
    ev_kind = np.concatenate([np.where(length > 0, 0, 2), np.ones(n, dtype=np.int64)])
    ev_note = np.concatenate([index, index])
    order = np.lexsort((ev_note, ev_kind, ev_tick))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    for c in sorted(set(channel.tolist())):
        track.append(mido.Message("program_change", channel=c, program=int(program), time=0))
    now = 0
    ticks, kinds, notes = ev_tick[order].tolist(), ev_kind[order].tolist(), ev_note[order]
    ch, pi, ve = channel[notes].tolist(), pitch[notes].tolist(), velocity[notes].tolist()
    for t, k, c, p, v in zip(ticks, kinds, ch, pi, ve):
        kind = "note_on" if k == 1 else "note_off"
        track.append(
            mido.Message(kind, channel=c, note=p, velocity=v if k == 1 else 0, time=t - now)
        )
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))

    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(track)
    if path is not None:
        midi.save(os.fspath(path))
    return midi


def tones_to_midi_bytes(tones: Any, **kwargs: Any) -> bytes:
    """Like :func:`tones_to_midi` but returns the Standard MIDI File as bytes.

    Args:
        tones: Array-like ``[n, 4]`` tones (see :func:`tones_to_midi`).
        **kwargs: ``bpm`` and ``program``, passed on to :func:`tones_to_midi`.

    Returns:
        The encoded type 0 MIDI file.
    """
    buffer = io.BytesIO()
    tones_to_midi(tones, **kwargs).save(file=buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# Packing for C-RNN-GAN-3.
# --------------------------------------------------------------------------------------


def pack_tones(tones: Any, tones_per_step: int = 3) -> np.ndarray:
    """Groups simultaneous tones into steps of ``tones_per_step`` tone slots.

    Walking the tones in order, a new step starts at every tone with delta > 0, and when
    the current step is full (a chord larger than the step spills into the next step,
    whose first tone then has delta 0, so no tone is lost). Slot k of a step holds the
    four values of the step's k-th tone; unused slots are all zeros (velocity 0 = absent).

    Args:
        tones: ``[n, 4]`` tones in canonical order.
        tones_per_step: Slots per step (3 for C-RNN-GAN-3; 1 gives back ``[n, 4]``).

    Returns:
        float32 array ``[m, 4 * tones_per_step]``, m <= n.
    """
    if tones_per_step < 1:
        raise ValueError(f"tones_per_step must be >= 1, got {tones_per_step}")
    x = np.asarray(tones, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != FEATURES_PER_TONE:
        raise ValueError(
            f"tones must have shape [n, {FEATURES_PER_TONE}], got shape {list(x.shape)}"
        )
    n = len(x)
    if n == 0:
        return np.zeros((0, FEATURES_PER_TONE * tones_per_step), dtype=np.float32)
    # Runs of tones between tones with delta > 0; position within the run.
    opens = x[:, DELTA] > 0
    opens[0] = True
    run = np.cumsum(opens) - 1
    run_first = np.flatnonzero(opens)
    rank = np.arange(n) - run_first[run]
    # Each run takes ceil(run length / tones_per_step) steps.
    run_len = np.diff(np.append(run_first, n))
    run_steps = -(-run_len // tones_per_step)
    step_offset = np.concatenate([[0], np.cumsum(run_steps)[:-1]])
    step = step_offset[run] + rank // tones_per_step
    slot = rank % tones_per_step
    packed = np.zeros((int(run_steps.sum()), tones_per_step, FEATURES_PER_TONE), np.float32)
    packed[step, slot] = x
    return packed.reshape(len(packed), -1)


def unpack_tones(packed: Any, tones_per_step: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_tones`: lists the present tones of packed steps.

    A slot is present when its velocity rounds to >= 1 (velocity >= 0.5). Present tones
    are emitted in step, then slot, order; the deltas of absent slots are added to the
    next present tone so that start times are preserved (trailing absent deltas are lost).
    The carry is a running float64 sum added to the float32 delta: the arithmetic that the
    stand-alone scripts in export/ copy byte for byte (tests/test_writer_copies.py). For
    exact float64 sums, see :func:`present_tones`.

    Args:
        packed: ``[m, 4 * tones_per_step]`` steps.
        tones_per_step: Slots per step; inferred as ``packed.shape[-1] // 4`` if None.

    Returns:
        float32 array ``[n, 4]`` of tones.
    """
    p = np.asarray(packed, dtype=np.float32)
    if tones_per_step is None:
        tones_per_step = p.shape[-1] // FEATURES_PER_TONE if p.ndim == 2 else 0
    if (
        p.ndim != 2
        or tones_per_step < 1
        or p.shape[1] != FEATURES_PER_TONE * tones_per_step
    ):
        raise ValueError(
            f"packed must have shape [m, {FEATURES_PER_TONE} * tones_per_step], "
            f"got shape {list(p.shape)}"
        )
    flat = p.reshape(-1, FEATURES_PER_TONE)
    present = flat[:, VELOCITY] >= PRESENT_VELOCITY
    tones = flat[present].copy()
    absent_delta = np.where(present, 0.0, flat[:, DELTA].astype(np.float64))
    carried = np.cumsum(absent_delta)[present]
    carry = np.diff(carried, prepend=0.0)
    if carry.any():
        tones[:, DELTA] = (tones[:, DELTA] + carry).astype(np.float32)
    return tones


def present_tones(tones: Any) -> np.ndarray:
    """The rule of :func:`unpack_tones` in float64, for statistics of raw model output.

    Slot ``j`` of step ``s`` (columns ``4j .. 4j + 3``) is tone ``s * k + j``. Absent tones
    (velocity < 0.5, or NaN) are dropped; each present tone's delta becomes the sum, in
    order, of the deltas of the absent tones since the previous present tone and its own.
    Unlike :func:`unpack_tones`, each such group is summed on its own, so a non-finite
    delta spoils only the delta of the next present tone. Deltas of absent tones after the
    last present tone are dropped. The input is not modified.

    Args:
        tones: float ``[m, 4 * k]`` for any k >= 1 (``[n, 4]`` is ``k = 1``), read as
            rows of 4 values: check the shape first (only a size that is not a multiple
            of 4 raises).

    Returns:
        float64 ``[n, 4]`` present tones: length ticks, Hz, velocity, delta ticks.
    """
    flat = np.asarray(tones, dtype=np.float64).reshape(-1, FEATURES_PER_TONE)
    present = flat[:, VELOCITY] >= PRESENT_VELOCITY
    count = int(present.sum())
    # Index of the present tone each row's delta belongs to (itself, or the next present).
    owner = np.cumsum(present) - present
    out = flat[present]
    out[:, DELTA] = np.bincount(owner, weights=flat[:, DELTA], minlength=count + 1)[:count]
    return out
