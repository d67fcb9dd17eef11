"""Generates music with the exported SavedModel and writes it as a MIDI file.

Stand-alone: needs only TensorFlow, numpy and mido (nothing from this project); copy it into
any app. Keras is not needed to load the SavedModel.

    python generate_savedmodel.py --model saved_model --output song.mid --seed 0 --steps 200
    python generate_savedmodel.py --model saved_model --output song.mid --stream  # step by step
    python generate_savedmodel.py --model saved_model --output more.mid --primer song.mid

The same seed gives the same file, and the same tones as ``generate_tflite.py``: the noise is
``numpy.random.default_rng(seed).uniform`` in [0, 1), step after step. With --primer the song
continues a MIDI file: the ``prime`` signature warms the model's state on the primer's last
tones, the ``step`` signature runs on from there, and the file holds the primer followed by
the new tones. Bad input (a folder that is not the export's SavedModel, --steps below 1, a
--primer that is not MIDI or holds no notes, an --output folder that does not exist) stops
with one line naming it, exit status 2.
"""

from __future__ import annotations

import argparse
import os

import mido
import numpy as np
import tensorflow as tf

TICKS_PER_QUARTER = 384  # the model's time unit: ticks per quarter note
BPM = 120.0
SIGNATURES = ("serving_default", "step")
#: Refused above this, as generate.py does: ~3.5 hours of music, the whole song held in memory.
MAX_STEPS = 100_000


class BadInput(ValueError):
    """A model or an argument this script cannot use; the message says what to do."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block) with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def _check_output(parser, option: str, path: str | None) -> None:
    """Stops (exit status 2) unless `path` can be a new file: its folder exists."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        parser.error(f"{option} {path} is a folder: give a file name")
    if not os.path.isdir(folder):
        parser.error(f"{option} {path}: the folder {folder} does not exist")


def generate(model_path: str, steps: int, seed: int, stream: bool = False,
             primer: np.ndarray | None = None, primer_max_tones: int = 256) -> np.ndarray:
    """Runs the model: ``[steps, tones_per_step, 4]`` tones in raw units.

    Whole sequence: one call of the ``serving_default`` signature. Stream: the ``step``
    signature once per step, its LSTM state ``h``, ``c`` and ``previous`` fed back (constant
    memory, any length). With a primer (tones ``[n, 4]``): the ``prime`` signature warms the
    state on its last `primer_max_tones` tones, then the steps stream from there.

    Raises:
        BadInput: `steps` < 1, no SavedModel at `model_path`, or not an exported generator
            (no ``serving_default`` and ``step`` signatures).
    """
    if steps < 1:
        raise BadInput(f"steps must be >= 1, got {steps}")
    if not tf.io.gfile.exists(os.path.join(model_path, "saved_model.pb")):
        inside = os.path.join(model_path, "saved_model")
        if tf.io.gfile.exists(os.path.join(inside, "saved_model.pb")):
            raise BadInput(f"{model_path} is an export folder: give its SavedModel, {inside}")
        what = ("is not a SavedModel folder (no saved_model.pb)"
                if tf.io.gfile.exists(model_path) else "does not exist")
        raise BadInput(f"{model_path} {what}: give the saved_model folder of an export")
    model = tf.saved_model.load(model_path)
    missing = [name for name in SIGNATURES if name not in model.signatures]
    if missing:
        raise BadInput(f"{model_path} has no {' or '.join(missing)} signature: give a "
                       "SavedModel written by `python -m export`")
    if primer is not None and "prime" not in model.signatures:
        raise BadInput(f"{model_path} has no prime signature (exported before primers were "
                       "supported): export the run again with `python -m export` for --primer")
    rng = np.random.default_rng(seed)
    if not stream and primer is None:
        generate_fn = model.signatures["serving_default"]
        noise_dim = generate_fn.structured_input_signature[1]["noise"].shape[-1]
        noise = rng.uniform(size=(1, steps, noise_dim)).astype(np.float32)
        return generate_fn(noise=tf.constant(noise))["tones"].numpy()[0]
    step_fn = model.signatures["step"]
    specs = step_fn.structured_input_signature[1]
    state = {name: tf.zeros([1 if d is None else d for d in specs[name].shape])
             for name in ("h", "c", "previous")}
    noise_dim = specs["noise"].shape[-1]
    if primer is not None:
        packed = pack_steps(primer[-primer_max_tones:], noise_dim // 4)
        primed = model.signatures["prime"](tones=tf.constant(packed[None]))
        state = {name: primed[name] for name in ("h", "c", "previous")}
    tones = []
    for _ in range(steps):
        noise = tf.constant(rng.uniform(size=(1, noise_dim)).astype(np.float32))
        out = step_fn(noise=noise, **state)
        state = {name: out[name] for name in ("h", "c", "previous")}
        tones.append(out["tones"].numpy()[0])
    return np.stack(tones)


# --- MIDI -> tones, for --primer. -----------------------------------------------------------
# A copy of the project's reader, kept in this file so that it stays a single file:
# midi_to_tones is tfds_midi.codec.midi_to_tones (notes paired first in, first out per track,
# channel and pitch; the drum channel skipped; ticks at 384 per quarter; tones in the codec's
# canonical order) and pack_steps is tfds_midi.codec.pack_tones. tests/test_generate.py checks
# both against the codec, and that the two scripts' copies are the same.


def midi_to_tones(path: str) -> np.ndarray:
    """A MIDI file's notes as tones ``[n, 4]`` (length ticks, Hz, velocity, delta ticks).

    Raises:
        BadInput: no such file, not a readable MIDI file, a type 2 file, or no notes.
    """
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise BadInput(f"{path} is empty (0 bytes): give a MIDI file")
    try:
        midi = mido.MidiFile(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as error:
        raise BadInput(f"{path} is not a readable MIDI file "
                       f"({str(error) or type(error).__name__})") from None
    if midi.type == 2:
        raise BadInput(f"{path} is a type 2 MIDI file (independent patterns): not supported")
    starts, ends, pitches, velocities = [], [], [], []
    for track in midi.tracks:
        tick, open_notes = 0, {}
        for message in track:
            tick += message.time
            if message.type not in ("note_on", "note_off") or message.channel == 9:
                continue
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                open_notes.setdefault(key, []).append(len(starts))
                starts.append(tick)
                ends.append(-1)
                pitches.append(message.note)
                velocities.append(message.velocity)
            elif open_notes.get(key):
                ends[open_notes[key].pop(0)] = tick
        for queue in open_notes.values():
            for i in queue:
                ends[i] = tick  # never ended: lasts until the track's last event
    if not starts:
        raise BadInput(f"{path} holds no notes (the drum channel 10 is excluded)")
    start, end = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    if midi.ticks_per_beat != TICKS_PER_QUARTER:
        scale = TICKS_PER_QUARTER / midi.ticks_per_beat
        start = np.rint(start * scale).astype(np.int64)
        end = np.rint(end * scale).astype(np.int64)
    length = end - start
    pitch, velocity = np.asarray(pitches, np.int64), np.asarray(velocities, np.int64)
    order = np.lexsort((velocity, length, pitch, start))
    tones = np.empty((len(order), 4), np.float32)
    tones[:, 0] = length[order]
    tones[:, 1] = (440.0 * 2.0 ** ((pitch[order] - 69.0) / 12.0)).astype(np.float32)
    tones[:, 2] = velocity[order]
    tones[:, 3] = np.diff(start[order], prepend=0)
    return tones


def pack_steps(tones: np.ndarray, tones_per_step: int) -> np.ndarray:
    """Tones ``[n, 4]`` -> steps ``[m, tones_per_step, 4]``: a new step at every tone with
    delta > 0 and when a step is full (a larger chord spills over, delta 0); empty slots are
    zeros (velocity 0: no tone)."""
    tones = np.asarray(tones, np.float32)
    n = len(tones)
    opens = tones[:, 3] > 0
    opens[:1] = True
    run = np.cumsum(opens) - 1
    run_first = np.flatnonzero(opens)
    rank = np.arange(n) - run_first[run]
    run_steps = -(-np.diff(np.append(run_first, n)) // tones_per_step)
    step = np.concatenate([[0], np.cumsum(run_steps)[:-1]])[run] + rank // tones_per_step
    packed = np.zeros((int(run_steps.sum()), tones_per_step, 4), np.float32)
    packed[step, rank % tones_per_step] = tones
    return packed


# --- Tones -> MIDI. ------------------------------------------------------------------------
# A copy of the project's writer, kept in this file so that it stays a single file:
# steps_to_tones is tfds_midi.codec.unpack_tones and tones_to_midi is
# tfds_midi.codec.tones_to_midi (bpm 120, program 0). tests/test_writer_copies.py checks that
# both scripts write the same bytes as the codec for generated tones (overlapping and
# same-pitch ones included): change the codec and the copies together.


def steps_to_tones(steps: np.ndarray) -> np.ndarray:
    """``[steps, tones_per_step, 4]`` -> ``[n, 4]`` present tones (velocity >= 0.5).

    An absent slot's delta is added to the next present tone, so start times are kept.
    """
    flat = np.asarray(steps, np.float32).reshape(-1, 4)
    present = flat[:, 2] >= 0.5
    tones = flat[present].copy()
    skipped_delta = np.cumsum(np.where(present, 0.0, flat[:, 3].astype(np.float64)))[present]
    carry = np.diff(skipped_delta, prepend=0.0)
    if carry.any():
        tones[:, 3] = (tones[:, 3] + carry).astype(np.float32)
    return tones


def tones_to_midi(tones: np.ndarray) -> mido.MidiFile:
    """Tones ``[n, 4]`` (length ticks, Hz, velocity, delta ticks) -> a type 0 MIDI file.

    Ticks are rounded (>= 0), velocities rounded and clipped to 0..127 (0: not written, its
    delta still counts), frequencies go to the nearest MIDI pitch. Same-pitch notes that
    overlap share a channel when they end in the order they start, and go to different
    channels (not 9, the drums) otherwise, so the file reads back exactly (up to 15 nested
    notes of one pitch).
    """
    x = np.asarray(tones, np.float64).reshape(-1, 4)
    if not np.isfinite(x).all():
        raise BadInput("the model produced NaN or Inf: it diverged; export another run")
    length = np.maximum(np.rint(x[:, 0]), 0).astype(np.int64)
    velocity = np.clip(np.rint(x[:, 2]), 0, 127).astype(np.int64)
    start = np.cumsum(np.maximum(np.rint(x[:, 3]), 0).astype(np.int64))
    hz = x[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pitch = np.rint(69.0 + 12.0 * np.log2(np.where(hz > 0, hz, 440.0) / 440.0))
    pitch = np.clip(np.where(hz > 0, pitch, 0.0), 0, 127).astype(np.int64)
    keep = velocity > 0
    start, length, velocity, pitch = start[keep], length[keep], velocity[keep], pitch[keep]
    end = start + length

    # Channels: a reader pairs a note-off with the earliest open note of its (channel, pitch),
    # so same-pitch notes may share a channel, overlapping or not, as long as they end in the
    # order they start. A note goes to the first channel (0..15 without 9) whose notes of its
    # pitch all end no later than it does; if none does (more than 15 nested notes of one
    # pitch), to the one whose notes of that pitch end first.
    channels = [c for c in range(16) if c != 9]
    latest_end = {}  # pitch -> latest end of the notes of that pitch on each channel
    channel = np.zeros(len(start), np.int64)
    for i, (e, p) in enumerate(zip(end.tolist(), pitch.tolist())):
        ends = latest_end.setdefault(p, [-1] * len(channels))
        k = next((k for k, latest in enumerate(ends) if latest <= e), -1)
        if k < 0:
            k = min(range(len(ends)), key=ends.__getitem__)
        ends[k] = max(ends[k], e)
        channel[i] = channels[k]

    # Events by tick; at one tick: note-offs of sounding notes, note-ons, then the note-offs
    # of zero-length notes; ties by note order.
    n = len(start)
    order = np.arange(n)
    tick = np.concatenate([end, start])
    kind = np.concatenate([np.where(length > 0, 0, 2), np.ones(n, np.int64)])
    note = np.concatenate([order, order])
    events = np.lexsort((note, kind, tick))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    for c in sorted(set(channel.tolist())):
        track.append(mido.Message("program_change", channel=c, program=0, time=0))
    now = 0
    for t, k, i in zip(tick[events].tolist(), kind[events].tolist(), note[events].tolist()):
        on = k == 1
        track.append(mido.Message("note_on" if on else "note_off", channel=int(channel[i]),
                                  note=int(pitch[i]), velocity=int(velocity[i]) if on else 0,
                                  time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(track)
    return midi


def main(argv=None):
    parser = _Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the saved_model folder")
    parser.add_argument("--output", required=True, help="MIDI file to write")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same file)")
    parser.add_argument("--steps", type=int, default=200, help="steps to generate")
    parser.add_argument("--stream", action="store_true",
                        help="generate step by step with the `step` signature")
    parser.add_argument("--tones_out", help="also save the raw tones [steps, tones_per_step, 4] "
                                            "as .npy")
    parser.add_argument("--primer", help="a MIDI file to continue: the model's state is warmed "
                        "on its last --primer_max_tones tones (the `prime` signature), then "
                        "it runs step by step; the file holds the primer, then the new steps")
    parser.add_argument("--primer_max_tones", type=int, default=256,
                        help="prime with at most this many of the primer's last tones")
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= MAX_STEPS:
        parser.error(f"--steps must be >= 1 and at most {MAX_STEPS}, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    _check_output(parser, "--output", args.output)
    _check_output(parser, "--tones_out", args.tones_out)
    if args.primer_max_tones < 1:
        parser.error(f"--primer_max_tones must be >= 1, got {args.primer_max_tones}")
    primer = None
    if args.primer:
        try:
            primer = midi_to_tones(args.primer)
        except BadInput as error:
            parser.error(f"--primer {error}")
    try:
        steps = generate(args.model, args.steps, args.seed, stream=args.stream,
                         primer=primer, primer_max_tones=args.primer_max_tones)
    except BadInput as error:
        parser.error(f"--model {error}")
    tones = steps_to_tones(steps)
    if primer is not None:
        tones = np.concatenate([primer, tones])
    try:
        midi = tones_to_midi(tones)
    except BadInput as error:
        parser.error(f"--model {args.model}: {error}")
    try:
        if args.tones_out:
            np.save(args.tones_out, steps)
        midi.save(args.output)
    except OSError as error:
        parser.error(f"cannot write {error.filename or args.output}: {error.strerror or error}")
    continuing = f", continuing {len(primer)} primer tones" if primer is not None else ""
    print(f"wrote {args.output}: {len(tones)} tones from {args.steps} steps (seed {args.seed})"
          f"{continuing}")


if __name__ == "__main__":
    main()
