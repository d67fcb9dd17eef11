"""Benchmark of MIDI parsing: ``tfds_midi.codec.midi_to_tones`` against pretty_midi.

Usage::

    python benchmarks/bench_data_codec.py [MIDI_DIR] [--repeats N]

Without ``MIDI_DIR``, 50 synthetic multi-track files of ~2000 notes each are generated
with mido into a temporary directory. Both parsers read the same files from disk, each
``repeats`` times; the best pass is reported as tones (notes) per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # Run as a script: make the project root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mido  # noqa: E402
import numpy as np  # noqa: E402

from tfds_midi.codec import DRUM_CHANNEL, MidiFormatError, midi_to_tones  # noqa: E402

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".rmi")


def write_synthetic_midi(
    directory: str | os.PathLike[str],
    num_files: int = 50,
    notes_per_file: int = 2000,
    num_tracks: int = 4,
    seed: int = 0,
) -> list[str]:
    """Writes random multi-track type 1 MIDI files (480 ticks per beat).

    Each file has a conductor track (tempo, time signature) and ``num_tracks`` note
    tracks on different channels, one of them drums, with chords and overlapping notes.

    Args:
        directory: Output directory (must exist).
        num_files: Number of files.
        notes_per_file: Approximate number of note_on events per file (drums included).
        num_tracks: Number of note tracks.
        seed: Random seed.

    Returns:
        The paths written.
    """
    rng = np.random.default_rng(seed)
    paths = []
    per_track = max(1, notes_per_file // num_tracks)
    for f in range(num_files):
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        conductor = mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=500000, time=0),
                mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            ]
        )
        midi.tracks.append(conductor)
        for t in range(num_tracks):
            channel = DRUM_CHANNEL if t == num_tracks - 1 else t
            gaps = rng.choice([0, 0, 60, 120, 240, 480], size=per_track)
            starts = np.cumsum(gaps)
            lengths = rng.integers(10, 960, size=per_track)
            pitches = rng.integers(36, 96, size=per_track)
            velocities = rng.integers(1, 128, size=per_track)
            events = [(int(s), 1, int(p), int(v)) for s, p, v in zip(starts, pitches, velocities)]
            events += [(int(s + n), 0, int(p), 0) for s, n, p in zip(starts, lengths, pitches)]
            events.sort()
            track = mido.MidiTrack()
            track.append(mido.Message("program_change", channel=channel, program=t, time=0))
            now = 0
            for tick, is_on, pitch, velocity in events:
                kind = "note_on" if is_on else "note_off"
                track.append(
                    mido.Message(kind, channel=channel, note=pitch, velocity=velocity,
                                 time=tick - now)
                )
                now = tick
            midi.tracks.append(track)
        path = os.path.join(os.fspath(directory), f"synthetic_{f:03d}.mid")
        midi.save(path)
        paths.append(path)
    return paths


def _time_passes(parse, paths: Sequence[str], repeats: int) -> tuple[float, int]:
    """Returns (best seconds per pass, tones per pass) of ``parse`` over ``paths``."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        count = 0
        begin = time.perf_counter()
        for path in paths:
            count += parse(path)
        best = min(best, time.perf_counter() - begin)
    return best, count


def _ours(path: str) -> int:
    try:
        return len(midi_to_tones(path))
    except MidiFormatError:
        return 0


def bench_codec(paths: Sequence[str | os.PathLike[str]], repeats: int = 3) -> dict:
    """Times ``midi_to_tones`` and ``pretty_midi.PrettyMIDI`` on the same MIDI files.

    Args:
        paths: MIDI files to parse. Files our codec rejects count 0 tones for it.
        repeats: Passes over all files per parser; the fastest pass is kept.

    Returns:
        Dict with ``files``, ``ours_tones``, ``ours_seconds``, ``ours_tones_per_s`` and, if
        pretty_midi is installed, ``pretty_midi_tones`` (non-drum notes),
        ``pretty_midi_seconds``, ``pretty_midi_tones_per_s`` and ``ratio``
        (ours / pretty_midi tones per second; > 1 means ours is faster).
    """
    paths = [os.fspath(p) for p in paths]
    seconds, tones = _time_passes(_ours, paths, repeats)
    result = {
        "files": len(paths),
        "ours_tones": tones,
        "ours_seconds": seconds,
        "ours_tones_per_s": tones / seconds if seconds > 0 else float("nan"),
    }
    try:
        import pretty_midi
    except ImportError:
        print("pretty_midi is not installed: skipping the comparison")
        return result

    def theirs(path: str) -> int:
        try:
            pm = pretty_midi.PrettyMIDI(path)
        except Exception:  # noqa: BLE001 - pretty_midi raises many types on bad files.
            return 0
        return sum(len(i.notes) for i in pm.instruments if not i.is_drum)

    seconds, tones = _time_passes(theirs, paths, repeats)
    result["pretty_midi_tones"] = tones
    result["pretty_midi_seconds"] = seconds
    result["pretty_midi_tones_per_s"] = tones / seconds if seconds > 0 else float("nan")
    result["ratio"] = result["ours_tones_per_s"] / result["pretty_midi_tones_per_s"]
    return result


def format_result(result: dict) -> str:
    """Formats a :func:`bench_codec` result as a small side-by-side table."""
    lines = [f"{'parser':<14}{'tones':>10}{'seconds':>10}{'tones/s':>12}"]
    for label, key in (("midi_to_tones", "ours"), ("pretty_midi", "pretty_midi")):
        if f"{key}_tones" in result:
            lines.append(
                f"{label:<14}{result[f'{key}_tones']:>10d}{result[f'{key}_seconds']:>10.3f}"
                f"{result[f'{key}_tones_per_s']:>12,.0f}"
            )
    if "ratio" in result:
        lines.append(f"ratio (ours / pretty_midi): {result['ratio']:.2f}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    """Command-line entry point; returns the :func:`bench_codec` result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory", nargs="?", help="directory of MIDI files (default: synthetic files)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="passes per parser")
    parser.add_argument("--files", type=int, default=50, help="synthetic files")
    parser.add_argument("--notes", type=int, default=2000, help="notes per synthetic file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.directory:
            paths = sorted(
                str(p) for p in Path(args.directory).rglob("*")
                if p.suffix.lower() in MIDI_SUFFIXES
            )
            print(f"{len(paths)} MIDI files under {args.directory}")
        else:
            paths = write_synthetic_midi(tmp, args.files, args.notes)
            print(f"{len(paths)} synthetic MIDI files of ~{args.notes} notes")
        result = bench_codec(paths, repeats=args.repeats)
    print(format_result(result))
    return result


if __name__ == "__main__":
    main()
