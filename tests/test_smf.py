"""Reading tracks without decoding meta events (`tfds_midi.smf`), and every MIDI reading path.

Files are written as bytes in the tests. mido is the reference: on every stream that mido
reads without an unknown meta event, `smf.track_notes` gives exactly mido's notes; where
mido fails only because of a meta event, every note is kept.
"""

from __future__ import annotations

import ast
import io
import pathlib
import struct

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfds_midi import codec, smf

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _midi_file(*tracks: bytes, ticks_per_beat: int = 96) -> bytes:
    header = b"MThd" + struct.pack(">LHHH", 6, 1 if len(tracks) > 1 else 0, len(tracks),
                                   ticks_per_beat)
    return header + b"".join(b"MTrk" + struct.pack(">L", len(t)) + t for t in tracks)


def _note(delta: int, note: int, length: int, velocity: int = 64, channel: int = 0) -> bytes:
    return (_varlen(delta) + bytes([0x90 | channel, note, velocity])
            + _varlen(length) + bytes([0x80 | channel, note, 0]))


END_OF_TRACK = b"\x00\xff\x2f\x00"
BAD_KEY_SIGNATURE = b"\xff\x59\x02\xfd\xff"  # 3 flats, mode 255 (0 = major, 1 = minor)


def _track_with_bad_key_signature(num_notes: int) -> bytes:
    body = b"\x00\xff\x51\x03\x07\xa1\x20" + b"\x00" + BAD_KEY_SIGNATURE
    for k in range(num_notes):
        body += _note(10, 40 + k % 48, 20 + k % 7, velocity=30 + k % 90)
        if k == num_notes // 2:
            body += b"\x05" + BAD_KEY_SIGNATURE  # another one mid-song, 5 ticks long
    return body + END_OF_TRACK


def test_bad_key_signature_keeps_every_note():
    num_notes = 3000
    data = _midi_file(_track_with_bad_key_signature(num_notes))
    try:  # The failure this guards against: mido 1.3 rejects the whole file.
        mido.MidiFile(file=io.BytesIO(data))
        mido_raised = None
    except Exception as error:  # noqa: BLE001
        mido_raised = str(error)
    if mido_raised is not None:
        assert "mode 255" in mido_raised
    tones = codec.midi_to_tones(data, name="bad_key.mid")
    assert len(tones) == num_notes
    # Every note where it was written (96 -> 384 ticks per quarter), the mid-song meta's 5
    # ticks included; starts all differ, so the canonical order is the file's.
    k = np.arange(num_notes)
    starts_96 = np.cumsum(np.concatenate([[10], 10 + 20 + k[:-1] % 7]))
    starts_96[num_notes // 2 + 1:] += 5
    np.testing.assert_array_equal(codec.tone_start_ticks(tones), starts_96 * 4)
    np.testing.assert_array_equal(codec.hz_to_pitch(tones[:, codec.FREQUENCY]), 40 + k % 48)
    np.testing.assert_array_equal(tones[:, codec.LENGTH], (20 + k % 7) * 4)
    np.testing.assert_array_equal(tones[:, codec.VELOCITY], 30 + k % 90)


@pytest.mark.parametrize("meta", [
    b"\xff\x59\x02\x09\x00",  # 9 sharps
    b"\xff\x59\x00",  # a key signature without data
    b"\xff\x51\x01\x07",  # a tempo of one byte
    b"\xff\x58\x01\x04",  # a time signature of one byte
    b"\xff\x21\x00",  # a MIDI port without data
])
def test_any_malformed_meta_event_costs_no_note(meta):
    body = _note(0, 60, 10) + b"\x00" + meta + _note(3, 62, 10) + END_OF_TRACK
    codec_tones = codec.midi_to_tones(_midi_file(body, ticks_per_beat=384))
    np.testing.assert_array_equal(codec_tones[:, codec.DELTA], [0, 13])


def test_unknown_meta_event_keeps_its_delta_time():
    # mido 1.3 reads FF 60 (no such meta type) with time 0, which moved the note after it.
    body = _note(0, 60, 10) + b"\x64\xff\x60\x01\x00" + _note(0, 62, 10) + END_OF_TRACK
    tones = codec.midi_to_tones(_midi_file(body, ticks_per_beat=384))
    np.testing.assert_array_equal(tones[:, codec.DELTA], [0, 110])


def test_meta_running_past_its_chunk_is_still_an_error():
    body = _note(0, 60, 10) + b"\x00\xff\x01\x40abc"
    with pytest.raises(codec.MidiFormatError, match="track 0: cannot parse .*past the end"):
        codec.midi_to_tones(_midi_file(body))


# A random track: events written as bytes, with running status, sysex, system messages,
# controllers and well-formed meta events of types that mido knows.
_data = st.integers(0, 127)
_channel_event = st.tuples(st.sampled_from([0x80, 0x90, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]),
                           st.integers(0, 15), _data, st.integers(0, 255), st.booleans())
_known_meta = st.sampled_from([
    b"\xff\x51\x03\x07\xa1\x20", b"\xff\x58\x04\x04\x02\x18\x08", b"\xff\x59\x02\x01\x00",
    b"\xff\x03\x05piano", b"\xff\x7f\x03\x00\x00\x41", b"\xff\x21\x01\x00"])
_other = st.sampled_from([b"\xf0\x03\x7e\x01\xf7", b"\xf7\x01\x05", b"\xf2\x10\x20",
                          b"\xf1\x05", b"\xf8"])
_event = st.tuples(st.integers(0, 20000), st.one_of(_channel_event, _known_meta, _other))


def _encode(events) -> bytes:
    out, status = bytearray(), None
    for delta, event in events:
        out += _varlen(delta)
        if isinstance(event, bytes):
            out += event
            status = None if event[0] == 0xFF else event[0]
            continue
        kind, channel, first, second, running = event
        byte = kind | channel
        if not (running and byte == status):
            out.append(byte)
        status = byte
        out.append(first)
        if kind not in (0xC0, 0xD0):
            out.append(second)  # above 127 now and then: clipped, as mido clips
    return bytes(out)


def _mido_notes(chunk: bytes):
    """The reference: mido's reading (clip=True), as the codec did before `smf`."""
    blob = _midi_file(chunk)
    track = mido.MidiFile(file=io.BytesIO(blob), clip=True).tracks[0]
    notes, tick, unknown = [], 0, False
    for msg in track:
        tick += msg.time
        unknown |= msg.type == "unknown_meta"
        if msg.type in ("note_on", "note_off"):
            status = (0x90 if msg.type == "note_on" else 0x80) | msg.channel
            notes.append((tick, status, msg.note, msg.velocity))
    return notes, tick, unknown


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=40))
def test_same_notes_as_mido_on_well_formed_tracks(events):
    chunk = _encode(events) + END_OF_TRACK
    notes, end_tick, unknown = _mido_notes(chunk)
    assert not unknown
    assert smf.track_notes(chunk) == (notes, end_tick)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_never_stricter_than_mido_and_equal_where_mido_reads_everything(junk):
    try:
        reference = _mido_notes(junk)
    except Exception:  # noqa: BLE001 - mido fails in many ways; smf may read around metas.
        reference = None
    try:
        ours = smf.track_notes(junk)
    except smf.TrackError:
        assert reference is None
        return
    if reference is not None and not reference[2]:
        assert ours == reference[:2]


def _midi_file_reads(path: pathlib.Path) -> list[str]:
    """`mido.MidiFile(...)` calls with a file argument, and other mido readers, in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        reads = name.split(".")[-1] == "MidiFile" and (
            node.args or any(k.arg in ("filename", "file") for k in node.keywords))
        if reads or name in ("mido.read_syx_file", "mido.midifiles.read_track"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return found


def test_every_project_reading_path_goes_through_the_codec():
    """tfds_midi/ and crnn_gan/ read MIDI only with `codec.midi_to_tones` (mido writes)."""
    sources = sorted((ROOT / "tfds_midi").rglob("*.py")) + sorted(
        (ROOT / "crnn_gan").rglob("*.py"))
    assert len(sources) > 10
    assert [hit for path in sources for hit in _midi_file_reads(path)] == []
