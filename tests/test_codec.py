"""Tests of tfds_midi.codec: MIDI <-> tone arrays and C-RNN-GAN-3 packing."""

from __future__ import annotations

import io
import pickle
import struct

import mido
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tfds_midi import codec
from tfds_midi.codec import (
    DELTA,
    FREQUENCY,
    LENGTH,
    VELOCITY,
    MidiFormatError,
    hz_to_pitch,
    midi_to_tones,
    pack_tones,
    pitch_to_hz,
    tone_start_ticks,
    tones_to_midi,
    tones_to_midi_bytes,
    unpack_tones,
)

# --------------------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------------------


def midi_bytes(tracks, ticks_per_beat=384, midi_type=1):
    """Builds a MIDI file from tracks given as lists of (abs_tick, mido.Message)."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def on(tick, note, velocity=64, channel=0):
    return tick, mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(tick, note, channel=0, zero_on=False):
    if zero_on:
        return tick, mido.Message("note_on", note=note, velocity=0, channel=channel)
    return tick, mido.Message("note_off", note=note, channel=channel)


def meta(tick, kind="end_of_track", **kw):
    return tick, mido.MetaMessage(kind, **kw)


def tone_rows(rows):
    """(length, pitch, velocity, delta) rows -> float32 tones."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    out = rows.astype(np.float32)
    out[:, FREQUENCY] = pitch_to_hz(rows[:, 1].astype(int))
    return out


def canonical(starts, lengths, pitches, velocities):
    """Sorts absolute notes canonically and returns float32 tones."""
    starts, lengths, pitches, velocities = map(
        np.asarray, (starts, lengths, pitches, velocities)
    )
    order = np.lexsort((velocities, lengths, pitches, starts))
    s = starts[order]
    return tone_rows(
        np.stack(
            [lengths[order], pitches[order], velocities[order], np.diff(s, prepend=0)], 1
        )
    )


def assert_tones(actual, rows):
    expected = tone_rows(rows)
    assert actual.dtype == np.float32
    np.testing.assert_array_equal(actual, expected)


# --------------------------------------------------------------------------------------
# Pitch <-> frequency.
# --------------------------------------------------------------------------------------


def test_pitch_to_hz_reference_values():
    hz = pitch_to_hz([69, 57, 81, 60])
    assert hz.dtype == np.float32
    np.testing.assert_allclose(hz, [440.0, 220.0, 880.0, 261.6256], rtol=1e-6)
    assert pitch_to_hz(69).shape == ()


def test_pitch_to_hz_computed_in_float64():
    p = np.arange(128)
    expected = (440.0 * 2.0 ** ((p - 69) / 12.0)).astype(np.float32)
    np.testing.assert_array_equal(pitch_to_hz(p), expected)


def test_pitch_to_hz_float64_is_the_uncast_value():
    p = np.arange(128)
    hz = pitch_to_hz(p, dtype=np.float64)
    assert hz.dtype == np.float64
    np.testing.assert_array_equal(hz, 440.0 * 2.0 ** ((p - 69.0) / 12.0))
    np.testing.assert_array_equal(hz.astype(np.float32), pitch_to_hz(p))


def test_hz_to_fractional_pitch_unrounded_with_nan_for_no_pitch():
    number = codec.hz_to_fractional_pitch([440.0, 450.0, 0.0, -3.0, np.nan, np.inf])
    assert number.dtype == np.float64
    np.testing.assert_allclose(number[:2], [69.0, 69.0 + 12.0 * np.log2(450.0 / 440.0)])
    assert np.isnan(number[2:5]).all() and number[5] == np.inf
    hz = np.random.default_rng(0).uniform(-100.0, 20000.0, 1000)
    np.testing.assert_array_equal(  # hz_to_pitch rounds it, NaN -> pitch 0
        hz_to_pitch(hz, clip=False),
        np.nan_to_num(np.rint(codec.hz_to_fractional_pitch(hz)), nan=0.0))


def test_hz_to_pitch_inverts_pitch_to_hz():
    p = np.arange(128)
    np.testing.assert_array_equal(hz_to_pitch(pitch_to_hz(p)), p)


def test_hz_to_pitch_rounds_to_nearest_not_truncates():
    just_below_a4 = 439.0  # log2 gives 68.996..., truncation would say 68.
    assert int(hz_to_pitch(just_below_a4)) == 69
    assert int(hz_to_pitch(440.0 * 2 ** (0.4 / 12))) == 69
    assert int(hz_to_pitch(440.0 * 2 ** (0.6 / 12))) == 70
    assert int(hz_to_pitch(440.0 * 2 ** (-0.6 / 12))) == 68


def test_hz_to_pitch_clips_and_maps_nonpositive_to_zero():
    np.testing.assert_array_equal(
        hz_to_pitch([0.0, -5.0, 1e-3, 1e6, 8.1758]), [0, 0, 0, 127, 0]
    )
    assert hz_to_pitch(np.zeros((2, 3))).shape == (2, 3)


def test_tone_start_ticks():
    tones = tone_rows([[1, 60, 1, 5], [1, 60, 1, 0], [1, 60, 1, 7]])
    np.testing.assert_array_equal(tone_start_ticks(tones), [5, 5, 12])


def test_canonical_order_is_what_a_midi_file_gives_back():
    # Two chords written top-down and a tone before its chord's bass: the same notes in an
    # order no MIDI file keeps.
    tones = tone_rows([[96, 67, 80, 384], [96, 64, 80, 0], [96, 60, 80, 0],
                       [192, 72, 90, 192], [48, 48, 70, 0], [192, 55, 60, 0]])
    canonical = codec.canonical_order(tones)
    assert canonical.dtype == tones.dtype
    np.testing.assert_array_equal(canonical, midi_to_tones(tones_to_midi_bytes(tones)))
    np.testing.assert_array_equal(hz_to_pitch(canonical[:, FREQUENCY]), [60, 64, 67, 48, 55, 72])
    np.testing.assert_array_equal(sorted(tone_start_ticks(canonical)),
                                  sorted(tone_start_ticks(tones)))
    np.testing.assert_array_equal(codec.canonical_order(canonical), canonical)
    # Raw values stay raw: a sub-audio tone and a negative delta are kept, only moved.
    raw = tone_rows([[10, 60, 50, 100], [-5, 60, 200, -40]])
    raw[1, FREQUENCY] = 3.0
    moved = codec.canonical_order(raw)
    np.testing.assert_array_equal(moved[:, [LENGTH, FREQUENCY, VELOCITY]],
                                  raw[::-1][:, [LENGTH, FREQUENCY, VELOCITY]])
    np.testing.assert_array_equal(moved[:, DELTA], [60, 40])


# --------------------------------------------------------------------------------------
# Reading hand-made files.
# --------------------------------------------------------------------------------------


def test_two_tracks_and_chord_merged_and_sorted():
    data = midi_bytes(
        [
            [meta(0, "set_tempo", tempo=400000), meta(0, "end_of_track")],
            [on(0, 64, 90), on(0, 60, 80), on(0, 67, 70), off(384, 60), off(384, 64),
             off(768, 67), meta(800)],
            [on(96, 72, 50, channel=3), off(192, 72, channel=3), meta(192)],
        ]
    )
    tones = midi_to_tones(data)
    assert_tones(
        tones,
        [[384, 60, 80, 0], [384, 64, 90, 0], [768, 67, 70, 0], [96, 72, 50, 96]],
    )


def test_drums_excluded():
    data = midi_bytes(
        [[on(0, 36, 100, channel=9), on(10, 60), off(20, 36, channel=9), off(30, 60),
          meta(30)]]
    )
    assert_tones(midi_to_tones(data), [[20, 60, 64, 10]])


def test_note_on_velocity_zero_ends_note():
    data = midi_bytes([[on(0, 60), off(100, 60, zero_on=True), on(200, 62),
                        off(250, 62, zero_on=True), meta(1000)]])
    assert_tones(midi_to_tones(data), [[100, 60, 64, 0], [50, 62, 64, 200]])


def test_same_pitch_overlap_is_first_in_first_out():
    # on A @0, on B @10, off @20 ends A, off @50 ends B.
    data = midi_bytes([[on(0, 60, 10), on(10, 60, 20), off(20, 60), off(50, 60), meta(50)]])
    assert_tones(midi_to_tones(data), [[20, 60, 10, 0], [40, 60, 20, 10]])


def test_same_pitch_different_channels_or_tracks_are_independent():
    data = midi_bytes(
        [
            [on(0, 60, 10, channel=0), on(10, 60, 20, channel=1), off(20, 60, channel=1),
             off(50, 60, channel=0), meta(50)],
            [on(0, 60, 30), off(5, 60), meta(5)],
        ]
    )
    assert_tones(
        midi_to_tones(data), [[5, 60, 30, 0], [50, 60, 10, 0], [10, 60, 20, 10]]
    )


def test_unclosed_note_ends_at_end_of_track():
    data = midi_bytes([[on(10, 60), on(20, 64), off(30, 64), meta(500)],
                       [on(0, 50), meta(1000)]])
    assert_tones(
        midi_to_tones(data), [[1000, 50, 64, 0], [490, 60, 64, 10], [10, 64, 64, 10]]
    )


def test_stray_note_off_ignored():
    data = midi_bytes([[off(0, 61), on(10, 60), off(20, 60), off(30, 60), meta(30)]])
    assert_tones(midi_to_tones(data), [[10, 60, 64, 10]])


@pytest.mark.parametrize(
    "ticks_per_beat, events, expected",
    [
        # 480 -> 384: scale 0.8. 481 -> 384.8 -> 385; 961 -> 768.8 -> 769;
        # 1000 -> 800; 1001 -> 800.8 -> 801.
        (480, [on(481, 60), off(961, 60), on(1000, 62), off(1001, 62)],
         [[384, 60, 64, 385], [1, 62, 64, 415]]),
        # 96 -> 384: scale 4.
        (96, [on(1, 60), on(2, 64), off(3, 64), off(97, 60)],
         [[384, 60, 64, 4], [4, 64, 64, 4]]),
    ],
)
def test_rescaling_to_384_ticks_per_quarter(ticks_per_beat, events, expected):
    data = midi_bytes([events + [meta(events[-1][0])]], ticks_per_beat=ticks_per_beat)
    assert_tones(midi_to_tones(data), expected)


def test_rescale_rounds_start_and_end_separately():
    # 480 tpb: start 2 -> 1.6 -> 2 and end 3 -> 2.4 -> 2 give length 0, whereas rounding
    # the 1-tick length itself would give round(0.8) = 1.
    data = midi_bytes([[on(2, 60), off(3, 60), meta(3)]], ticks_per_beat=480)
    assert_tones(midi_to_tones(data), [[0, 60, 64, 2]])


def test_tempo_and_time_signature_ignored():
    plain = midi_bytes([[on(0, 60), off(384, 60), meta(384)]])
    fancy = midi_bytes(
        [[meta(0, "set_tempo", tempo=1000000), meta(0, "time_signature", numerator=3),
          on(0, 60), meta(100, "set_tempo", tempo=200000), off(384, 60), meta(384)]]
    )
    np.testing.assert_array_equal(midi_to_tones(plain), midi_to_tones(fancy))


def test_type_0_file_read():
    data = midi_bytes([[on(0, 60), on(0, 48, channel=5), off(10, 60), off(20, 48, channel=5),
                        meta(20)]], midi_type=0)
    assert_tones(midi_to_tones(data), [[20, 48, 64, 0], [10, 60, 64, 0]])


def test_canonical_tie_break_by_length_then_velocity():
    data = midi_bytes(
        [[on(0, 60, 90), on(0, 60, 30), on(0, 60, 50, channel=1), off(5, 60, channel=1),
          off(10, 60), off(10, 60), meta(10)]]
    )
    assert_tones(
        midi_to_tones(data), [[5, 60, 50, 0], [10, 60, 30, 0], [10, 60, 90, 0]]
    )


def test_data_bytes_above_127_are_clipped_not_fatal():
    good = midi_bytes([[on(0, 60, 100), off(10, 60), meta(10)]])
    bad = bytearray(good)
    i = bad.index(bytes([0x90, 60, 100]))
    bad[i + 2] = 200  # Velocity 200: invalid, clipped to 127.
    assert_tones(midi_to_tones(bytes(bad)), [[10, 60, 127, 0]])


def test_unknown_chunks_are_skipped():
    good = midi_bytes([[on(0, 60), off(10, 60), meta(10)]])
    alien = b"XFIH" + struct.pack(">L", 3) + b"abc"
    data = good[:14] + alien + good[14:] + b"\x00\x00"
    assert_tones(midi_to_tones(data), [[10, 60, 64, 0]])


def test_reads_path_and_pathlike(tmp_path):
    data = midi_bytes([[on(0, 60), off(10, 60), meta(10)]])
    path = tmp_path / "song.mid"
    path.write_bytes(data)
    np.testing.assert_array_equal(midi_to_tones(path), midi_to_tones(data))
    np.testing.assert_array_equal(midi_to_tones(str(path)), midi_to_tones(data))


# --------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------


def _valid():
    return midi_bytes([[on(0, 60), off(10, 60), meta(10)], [on(0, 62), off(10, 62), meta(10)]])


def _truncated_track():
    data = _valid()
    return data[:-5]


def _smpte():
    data = bytearray(_valid())
    data[12:14] = struct.pack(">bB", -25, 40)  # 25 fps, 40 ticks per frame.
    return bytes(data)


def _type2():
    data = bytearray(_valid())
    data[8:10] = struct.pack(">H", 2)
    return bytes(data)


def _bad_status():
    # A running-status data byte at the very start of a track.
    body = b"\x00\x3c\x40" + b"\x00\xff\x2f\x00"
    return _valid()[:14] + b"MTrk" + struct.pack(">L", len(body)) + body


def _overrun_message():
    # The note_on's data bytes lie beyond the chunk's declared length.
    body = b"\x00\x90\x3c"
    return _valid()[:14] + b"MTrk" + struct.pack(">L", len(body)) + body


def _no_notes():
    return midi_bytes([[on(0, 36, channel=9), off(5, 36, channel=9), meta(5)],
                       [meta(0, "set_tempo", tempo=500000), meta(10)]])


BAD_INPUTS = {
    "empty": (lambda: b"", "empty"),
    "not_midi": (lambda: b"RIFF....WAVEfmt junk junk", "not a MIDI file"),
    "truncated_header": (lambda: _valid()[:10], "truncated header (10 of 14 bytes)"),
    "truncated_track": (_truncated_track, "only"),
    "smpte": (_smpte, "SMPTE"),
    "type2": (_type2, "type 2 (sequential patterns) is not supported"),
    "bad_status": (_bad_status, "running status"),
    "overrun_message": (_overrun_message, "track 0"),
    "no_notes": (_no_notes, "no notes"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_bytes_raise_midi_format_error(case):
    make, keyword = BAD_INPUTS[case]
    with pytest.raises(MidiFormatError) as info:
        midi_to_tones(make(), name=f"{case}.mid")
    message = str(info.value)
    assert message.startswith(f"{case}.mid: ")
    assert keyword in message
    assert info.value.source == f"{case}.mid"
    assert keyword in info.value.reason


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_files_raise_midi_format_error_naming_file(case, tmp_path):
    make, keyword = BAD_INPUTS[case]
    path = tmp_path / f"{case}.mid"
    path.write_bytes(make())
    with pytest.raises(MidiFormatError) as info:
        midi_to_tones(str(path))
    assert str(info.value).startswith(f"{case}.mid: ")
    assert keyword in str(info.value)


def test_bytes_default_name():
    with pytest.raises(MidiFormatError, match=r"^<bytes>: empty file \(0 bytes\)$"):
        midi_to_tones(b"")


def test_missing_file(tmp_path):
    with pytest.raises(MidiFormatError) as info:
        midi_to_tones(tmp_path / "nowhere.mid")
    assert str(info.value) == "nowhere.mid: file not found"


def test_truncated_track_message_gives_sizes():
    with pytest.raises(MidiFormatError, match=r"track 1 chunk claims \d+ bytes, only \d+ remain"):
        midi_to_tones(_truncated_track(), name="t.mid")


def test_midi_format_error_is_value_error_and_picklable():
    err = MidiFormatError("bad.mid", "truncated header (10 of 14 bytes)")
    assert isinstance(err, ValueError)
    assert str(err) == "bad.mid: truncated header (10 of 14 bytes)"
    again = pickle.loads(pickle.dumps(err))
    assert (again.source, again.reason, str(again)) == (err.source, err.reason, str(err))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_garbage_only_raises_midi_format_error(junk):
    header = _valid()[:14]
    for data in (junk, header + junk, header + b"MTrk" + struct.pack(">L", len(junk)) + junk):
        try:
            midi_to_tones(data)
        except MidiFormatError:
            pass


# --------------------------------------------------------------------------------------
# Writing and the round trip.
# --------------------------------------------------------------------------------------


@st.composite
def canonical_tones(draw, max_notes=40):
    n = draw(st.integers(1, max_notes))
    ints = st.integers
    starts = draw(st.lists(ints(0, 3000), min_size=n, max_size=n))
    lengths = draw(st.lists(st.one_of(ints(0, 4), ints(0, 2000)), min_size=n, max_size=n))
    pitches = draw(st.lists(st.one_of(ints(58, 62), ints(0, 127)), min_size=n, max_size=n))
    velocities = draw(st.lists(ints(1, 127), min_size=n, max_size=n))
    return canonical(starts, lengths, pitches, velocities)


def _deepest_same_pitch_nesting(x):
    """Most same-pitch notes that each end before the previous one (channels needed)."""
    starts = np.cumsum(x[:, 3])
    ends = starts + x[:, 0]
    pitches = hz_to_pitch(x[:, 1])
    deepest = 0
    for pitch in set(pitches.tolist()):
        e = ends[pitches == pitch]
        depth = [1] * len(e)  # longest strictly decreasing run of ends, in start order
        for i in range(len(e)):
            for j in range(i):
                if e[j] > e[i]:
                    depth[i] = max(depth[i], depth[j] + 1)
        deepest = max(deepest, max(depth))
    return deepest


@settings(max_examples=150, deadline=None)
@given(canonical_tones())
def test_round_trip_is_exact(x):
    # Exact whenever the writer's 15 channels suffice (documented limit of MIDI + FIFO).
    assume(_deepest_same_pitch_nesting(x) <= 15)
    np.testing.assert_array_equal(midi_to_tones(tones_to_midi_bytes(x)), x)


def test_round_trip_of_many_simultaneous_same_pitch_notes():
    # Found by hypothesis: 25 notes of one pitch at tick 0 (10 of length 0, 15 of length 2)
    # and one at tick 1. They end in the order they start, so they share channels.
    x = canonical([0] * 25 + [1], [0] * 10 + [2] * 15 + [0], [58] * 26, [1] * 26)
    np.testing.assert_array_equal(midi_to_tones(tones_to_midi_bytes(x)), x)


def test_round_trip_many_overlapping_same_pitch_notes():
    # 15 nested notes of one pitch (all writer channels), then touching notes.
    x = canonical(
        list(range(15)) + [300, 310, 310],
        [200 - 2 * i for i in range(15)] + [10, 0, 5],
        [60] * 18,
        list(range(1, 19)),
    )
    np.testing.assert_array_equal(midi_to_tones(tones_to_midi_bytes(x)), x)


def test_writer_file_layout(tmp_path):
    x = tone_rows([[384, 60, 100, 0], [192, 64, 90, 96]])
    path = tmp_path / "out.mid"
    midi = tones_to_midi(x, path, bpm=90.0, program=41)
    assert midi.type == 0 and midi.ticks_per_beat == 384 and len(midi.tracks) == 1
    track = midi.tracks[0]
    assert track[0].type == "set_tempo" and track[0].tempo == mido.bpm2tempo(90.0)
    programs = [m for m in track if m.type == "program_change"]
    assert [(m.channel, m.program) for m in programs] == [(0, 41)]
    assert path.read_bytes() == tones_to_midi_bytes(x, bpm=90.0, program=41)
    np.testing.assert_array_equal(midi_to_tones(path), x)


def test_writer_default_tempo_is_120_bpm():
    midi = tones_to_midi(tone_rows([[1, 60, 1, 0]]))
    assert codec.DEFAULT_BPM == 120.0
    assert midi.tracks[0][0].tempo == 500000


def test_writer_rounds_and_clips():
    x = np.array(
        [
            [10.4, pitch_to_hz(60) * 1.01, 63.6, 2.6],  # -> length 10, pitch 60, vel 64, d 3
            [-5.0, pitch_to_hz(62), 300.0, -2.0],  # -> length 0, vel 127, delta 0
            [7.5, pitch_to_hz(64), 0.4, 10.0],  # velocity rounds to 0: skipped
            [1.0, -3.0, 5.0, 1.0],  # frequency <= 0 -> pitch 0, at 3 + 0 + 10 + 1
        ],
        dtype=np.float32,
    )
    assert_tones(
        midi_to_tones(tones_to_midi_bytes(x)),
        [[10, 60, 64, 3], [0, 62, 127, 0], [1, 0, 5, 11]],
    )


def test_writer_velocity_zero_tone_still_advances_time():
    x = tone_rows([[10, 60, 50, 5], [10, 61, 0, 100], [10, 62, 50, 7]])
    assert_tones(midi_to_tones(tones_to_midi_bytes(x)), [[10, 60, 50, 5], [10, 62, 50, 107]])


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.zeros((3, 3)), r"\[n, 4\].*\[3, 3\]"),
        (np.zeros(4), r"\[n, 4\].*\[4\]"),
        (np.zeros((2, 2, 4)), r"\[n, 4\].*\[2, 2, 4\]"),
        (np.array([[1, np.nan, 1, 0]]), r"column 1 \(frequency_hz\)"),
        (np.array([[1, 440, 1, np.inf]]), r"column 3 \(delta_ticks\)"),
        (np.array([[-np.inf, 440, 1, 0]]), r"column 0 \(length_ticks\)"),
        ([["a", "b", "c", "d"]], r"\[n, 4\]"),
    ],
)
def test_writer_validates_input(bad, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        tones_to_midi(bad)
    assert not isinstance(info.value, MidiFormatError)


def test_writer_rejects_bad_bpm_and_program():
    x = tone_rows([[1, 60, 1, 0]])
    with pytest.raises(ValueError, match="bpm"):
        tones_to_midi(x, bpm=0)
    with pytest.raises(ValueError, match="program"):
        tones_to_midi(x, program=128)


def test_writer_avoids_drum_channel():
    # 12 nested same-pitch notes (each ends before the previous) need 12 channels: 0..8 and
    # 10..12; notes that end in the order they start share one.
    x = canonical(list(range(12)), [200 - 2 * i for i in range(12)], [60] * 12, [64] * 12)
    channels = {m.channel for m in tones_to_midi(x).tracks[0] if m.type == "note_on"}
    assert channels == set(range(9)) | {10, 11, 12}


# --------------------------------------------------------------------------------------
# Packing.
# --------------------------------------------------------------------------------------


def test_pack_five_note_chord_spills_into_next_step():
    x = tone_rows(
        [[10, 60, 1, 4], [10, 62, 2, 0], [10, 64, 3, 0], [10, 65, 4, 0], [10, 67, 5, 0],
         [20, 70, 6, 8]]
    )
    packed = pack_tones(x, 3)
    assert packed.shape == (3, 12) and packed.dtype == np.float32
    np.testing.assert_array_equal(packed[0], x[0:3].reshape(-1))
    np.testing.assert_array_equal(packed[1], np.concatenate([x[3], x[4], np.zeros(4)]))
    np.testing.assert_array_equal(packed[2], np.concatenate([x[5], np.zeros(8)]))
    assert packed[1, DELTA] == 0  # The spilled step starts together with the previous one.
    np.testing.assert_array_equal(unpack_tones(packed), x)


def test_pack_one_tone_per_step_is_identity():
    x = tone_rows([[10, 60, 1, 4], [10, 62, 2, 0], [10, 64, 3, 5]])
    np.testing.assert_array_equal(pack_tones(x, 1), x)
    np.testing.assert_array_equal(unpack_tones(x), x)


def test_pack_empty():
    assert pack_tones(np.zeros((0, 4)), 3).shape == (0, 12)
    assert unpack_tones(np.zeros((0, 12))).shape == (0, 4)


def test_unpack_carries_delta_of_absent_tones():
    tone = [10, pitch_to_hz(60), 50, 0]
    packed = np.array(
        [
            tone[:3] + [5] + [0, 0, 0, 0],
            [10, 440, 0.4, 7] + tone,  # Absent first slot (velocity rounds to 0).
            [0, 0, 0, 3] + [0, 0, 0, 2],  # Fully absent step.
            tone[:3] + [1] + [0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    out = unpack_tones(packed, tones_per_step=2)
    np.testing.assert_array_equal(out[:, DELTA], [5, 7, 6])
    np.testing.assert_array_equal(out[:, VELOCITY], [50, 50, 50])
    np.testing.assert_array_equal(out[:, LENGTH], [10, 10, 10])
    np.testing.assert_array_equal(tone_start_ticks(out), [5, 12, 18])


def test_unpack_validates_shape():
    with pytest.raises(ValueError, match="shape"):
        unpack_tones(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="shape"):
        unpack_tones(np.zeros((2, 12)), tones_per_step=2)


@settings(max_examples=150, deadline=None)
@given(canonical_tones(max_notes=60), st.integers(1, 4))
def test_pack_unpack_round_trip(x, tones_per_step):
    packed = pack_tones(x, tones_per_step)
    assert packed.shape[1] == 4 * tones_per_step
    # Every step's tones start together: only slot 0 may have a nonzero delta.
    slots = packed.reshape(len(packed), tones_per_step, 4)
    assert not slots[:, 1:, DELTA].any()
    np.testing.assert_array_equal(unpack_tones(packed), x)
    np.testing.assert_array_equal(unpack_tones(packed, tones_per_step), x)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1000, width=32),
            st.floats(1, 4000, width=32),
            st.floats(1, 127, width=32),
            st.one_of(st.just(0.0), st.floats(0, 500, width=32)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_pack_unpack_round_trip_real_values(rows):
    x = np.array(rows, dtype=np.float32)
    np.testing.assert_array_equal(unpack_tones(pack_tones(x)), x)
