"""The note events of one Standard MIDI File track chunk, read without decoding meta events.

`tfds_midi.codec.midi_to_tones` needs only the note-on and note-off events of each track and
their absolute ticks. :func:`track_notes` walks a track's event stream with the framing that
``mido.MidiFile(clip=True)`` uses (delta times, running status, system messages, sysex, data
bytes above 127 clipped to 127), so files read exactly as they did through mido, with two
differences, both about meta events (``FF type length data``), which never affect tones:

* A meta event's data is skipped by its declared length, never decoded. mido decodes it and
  raises on a malformed one (``Could not decode key with 3 flats and mode 255`` for a key
  signature of mode 255, an ``IndexError`` for a short tempo), which lost a whole real file
  with thousands of good notes; here that one message is ignored and every note is kept.
* A meta event of a type mido does not know (0x08, 0x0A-0x0F, 0x4B, ...) keeps its delta
  time; mido 1.3 drops it, which moved every later event of the track earlier.

This module depends only on the standard library.
"""

from __future__ import annotations

NOTE_OFF = 0x80
"""High nibble of a note-off status byte."""
NOTE_ON = 0x90
"""High nibble of a note-on status byte (velocity 0 means note-off)."""

_META, _SYSEX, _SYSEX_ESCAPE = 0xFF, 0xF0, 0xF7
# Data bytes after the status byte: channel messages by high nibble, system messages by byte
# (mido's message specs; 0xF4, 0xF5, 0xF9 and 0xFD are undefined).
_CHANNEL_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0,
                      0xFC: 0, 0xFE: 0}
_SYSTEM_NAMES = {0xF6: "tune_request", 0xF8: "clock", 0xFA: "start", 0xFB: "continue",
                 0xFC: "stop", 0xFE: "active_sensing"}

OVERRUN = "message runs past the end of its chunk"
"""The reason given when an event's bytes run past the end of the track chunk."""


class TrackError(ValueError):
    """A track chunk whose event stream cannot be read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def track_notes(chunk: bytes) -> tuple[list[tuple[int, int, int, int]], int]:
    """Reads the note events of one ``MTrk`` chunk payload.

    Args:
        chunk: The bytes of the chunk after its 8-byte header (``MTrk`` + length).

    Returns:
        ``(notes, end_tick)``. ``notes``: ``(tick, status, note, velocity)`` of every
        note-on and note-off event, in file order; ``tick`` is the absolute time in the
        file's own ticks (the sum of the delta times so far, every event's delta counted,
        meta events included), ``status`` the status byte (high nibble ``NOTE_ON`` or
        ``NOTE_OFF``, low nibble the zero-based channel), ``note`` and ``velocity`` 0..127
        (data bytes above 127 clipped to 127). ``end_tick``: the tick of the track's last
        event, in the same units (where notes that are never ended end).

    Raises:
        TrackError: the stream is malformed: an event runs past the end of the chunk, a
            running-status data byte comes before any status byte, an undefined status
            byte (0xF4, 0xF5, 0xF9, 0xFD), or a running status of a data-less system
            message. Reasons are worded as mido's exceptions were.
    """
    notes: list[tuple[int, int, int, int]] = []
    size = len(chunk)
    pos = tick = 0
    last_status = None
    try:
        while pos < size:
            # The delta time's variable-length quantity, read inline rather than through a
            # helper like `_skip_varlen_data`: a call per event is costly in this loop.
            byte = chunk[pos]
            pos += 1
            delta = byte & 0x7F
            while byte & 0x80:
                byte = chunk[pos]
                pos += 1
                delta = (delta << 7) | (byte & 0x7F)
            tick += delta
            status = chunk[pos]
            pos += 1
            peeked = -1  # a running-status event's first data byte, already read
            if status < 0x80:
                if last_status is None:
                    raise TrackError("OSError: running status without last_status")
                peeked, status = status, last_status
            elif status != _META:  # meta events do not set running status (mido's rule)
                last_status = status
            if status == _META:
                pos += 1  # the meta type; its data are skipped, never decoded
                pos = _skip_varlen_data(chunk, pos)
            elif status == _SYSEX or status == _SYSEX_ESCAPE:
                pos = _skip_varlen_data(chunk, pos)  # a peeked byte is dropped, as mido does
            elif status < 0xF0:
                kind = status & 0xF0
                count = _CHANNEL_DATA_BYTES[kind]
                if peeked < 0:
                    peeked = chunk[pos]
                    pos += 1
                if count == 2:
                    second = chunk[pos]
                    pos += 1
                    if kind == NOTE_ON or kind == NOTE_OFF:
                        notes.append((tick, status, peeked if peeked < 128 else 127,
                                      second if second < 128 else 127))
            else:
                count = _SYSTEM_DATA_BYTES.get(status)
                if count is None:
                    raise TrackError(f"OSError: undefined status byte 0x{status:02x}")
                if peeked >= 0:
                    if count == 0:
                        raise TrackError(f"ValueError: wrong number of bytes for "
                                         f"{_SYSTEM_NAMES[status]} message")
                    count -= 1
                pos += count
                if pos > size:
                    raise IndexError
    except IndexError:
        raise TrackError(OVERRUN) from None
    return notes, tick


def _skip_varlen_data(chunk: bytes, pos: int) -> int:
    """Skips a variable-length quantity and that many data bytes; returns the new position.

    Raises:
        IndexError: the length or the data run past the end of the chunk.
    """
    byte = chunk[pos]
    pos += 1
    length = byte & 0x7F
    while byte & 0x80:
        byte = chunk[pos]
        pos += 1
        length = (length << 7) | (byte & 0x7F)
    pos += length
    if pos > len(chunk):
        raise IndexError
    return pos
