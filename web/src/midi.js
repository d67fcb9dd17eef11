// Tones -> Standard MIDI File, with the rules of tfds_midi.codec.tones_to_midi, so that the
// file the page downloads is byte for byte the one Python writes for the same tones.
//
// A tone is [length ticks, frequency Hz, velocity, delta ticks] at 384 ticks per quarter.
// Lengths and deltas are rounded to whole ticks (half to even, like numpy) and clipped at 0;
// velocities are rounded and clipped to 0..127 and a tone whose velocity rounds to 0 is not
// written (its delta still advances time); frequencies go to the nearest MIDI pitch.
// Same-pitch notes go to different channels (0..15 without the drum channel 9) whenever
// they would otherwise be paired wrongly by a reader.

export const TICKS_PER_QUARTER = 384;
export const DEFAULT_BPM = 120;
const DRUM_CHANNEL = 9;
const WRITER_CHANNELS = [...Array(16).keys()].filter((c) => c !== DRUM_CHANNEL);

/** numpy.rint: round half to even. */
export function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Nearest MIDI pitch of a frequency (A4 = 69 = 440 Hz), clipped to 0..127; <= 0 Hz -> 0. */
export function hzToPitch(hz) {
  if (!(hz > 0)) return 0;
  return Math.min(127, Math.max(0, rint(69 + 12 * Math.log2(hz / 440))));
}

export function pitchToHz(pitch) {
  return 440 * 2 ** ((pitch - 69) / 12);
}

/**
 * Generator output -> present tones (codec.unpack_tones): `steps` is a flat array of
 * [length, Hz, velocity, delta] quadruples (tones_per_step of them per step). A slot is
 * present when its velocity is >= 0.5; the deltas of absent slots are carried to the next
 * present tone so that start times are kept. Returns an array of [l, f, v, d] arrays.
 */
export function stepsToTones(steps) {
  const tones = [];
  let carried = 0;
  for (let i = 0; i + 3 < steps.length; i += 4) {
    const tone = [steps[i], steps[i + 1], steps[i + 2], steps[i + 3]];
    if (tone[2] >= 0.5) {
      // numpy adds the carried float64 delta and casts back to float32.
      if (carried !== 0) tone[3] = Math.fround(tone[3] + carried);
      carried = 0;
      tones.push(tone);
    } else {
      carried += tone[3];
    }
  }
  return tones;
}

/**
 * The notes a MIDI file of `tones` holds, in tone order, after the writer's rounding:
 * [{start, end, length, pitch, velocity}] in ticks. Used by the writer, the piano roll and
 * the synthesizer, so that what is drawn and heard is what the file holds.
 */
export function tonesToNotes(tones) {
  const notes = [];
  let start = 0;
  for (const [lengthTicks, hz, vel, deltaTicks] of tones) {
    if (![lengthTicks, hz, vel, deltaTicks].every(Number.isFinite)) {
      throw new Error('the model produced NaN or Inf');
    }
    start += Math.max(rint(deltaTicks), 0);
    const velocity = Math.min(127, Math.max(0, rint(vel)));
    if (velocity === 0) continue;
    const length = Math.max(rint(lengthTicks), 0);
    notes.push({start, end: start + length, length, pitch: hzToPitch(hz), velocity});
  }
  return notes;
}

/** codec._assign_channels: the first channel whose notes of this pitch all end by this end. */
function assignChannels(notes) {
  const lastEnd = new Map();
  return notes.map(({end, pitch}) => {
    let ends = lastEnd.get(pitch);
    if (!ends) lastEnd.set(pitch, (ends = WRITER_CHANNELS.map(() => -1)));
    let slot = ends.findIndex((latest) => latest <= end);
    if (slot < 0) slot = ends.indexOf(Math.min(...ends));
    ends[slot] = Math.max(ends[slot], end);
    return WRITER_CHANNELS[slot];
  });
}

function varLen(value) {
  const bytes = [value & 0x7f];
  while ((value >>= 7) > 0) bytes.unshift((value & 0x7f) | 0x80);
  return bytes;
}

/** mido.bpm2tempo: microseconds per quarter note, rounded half to even. */
function bpmToTempo(bpm) {
  return rint((60 * 1e6) / bpm);
}

/**
 * Tones -> the bytes of a type 0 MIDI file at 384 ticks per quarter: a set_tempo event, a
 * program_change per channel used, then note_on/note_off events sorted by (tick, kind,
 * note), where at one tick the note-offs of notes with a length come first, then the
 * note-ons, then the note-offs of zero-length notes.
 */
export function tonesToMidi(tones, {bpm = DEFAULT_BPM, program = 0} = {}) {
  if (!(bpm > 0) || !Number.isFinite(bpm)) throw new RangeError(`bpm must be > 0, got ${bpm}`);
  const notes = tonesToNotes(tones);
  const channels = assignChannels(notes);
  const events = [];
  notes.forEach((note, i) => {
    events.push([note.end, note.length > 0 ? 0 : 2, i]);
    events.push([note.start, 1, i]);
  });
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);

  const track = [];
  const tempo = bpmToTempo(bpm);
  track.push(0, 0xff, 0x51, 0x03, (tempo >> 16) & 0xff, (tempo >> 8) & 0xff, tempo & 0xff);
  for (const c of [...new Set(channels)].sort((a, b) => a - b)) track.push(0, 0xc0 | c, program);
  let now = 0;
  let runningStatus = -1; // as mido writes: a repeated status byte is left out
  for (const [tick, kind, i] of events) {
    const {pitch, velocity} = notes[i];
    const status = (kind === 1 ? 0x90 : 0x80) | channels[i];
    track.push(...varLen(tick - now));
    if (status !== runningStatus) track.push(status);
    track.push(pitch, kind === 1 ? velocity : 0);
    runningStatus = status;
    now = tick;
  }
  track.push(0, 0xff, 0x2f, 0x00);

  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1,
    TICKS_PER_QUARTER >> 8, TICKS_PER_QUARTER & 0xff];
  const n = track.length;
  const trackHeader = [0x4d, 0x54, 0x72, 0x6b, (n >>> 24) & 0xff, (n >>> 16) & 0xff,
    (n >>> 8) & 0xff, n & 0xff];
  return new Uint8Array([...header, ...trackHeader, ...track]);
}

/**
 * stepsToTones + tonesToNotes for a song that grows chunk by chunk (streaming): `push`
 * takes the next raw steps and returns the notes they add; `tones` holds every tone so far.
 */
export class NoteStream {
  constructor() {
    this.tones = [];
    this.carried = 0;
    this.startTick = 0;
  }

  push(steps) {
    const notes = [];
    for (let i = 0; i + 3 < steps.length; i += 4) {
      const tone = [steps[i], steps[i + 1], steps[i + 2], steps[i + 3]];
      if (!(tone[2] >= 0.5)) {
        this.carried += tone[3];
        continue;
      }
      if (this.carried !== 0) tone[3] = Math.fround(tone[3] + this.carried);
      this.carried = 0;
      this.tones.push(tone);
      const [note] = tonesToNotes([[tone[0], tone[1], tone[2], 0]]);
      this.startTick += Math.max(rint(tone[3]), 0);
      if (note) notes.push({...note, start: this.startTick, end: this.startTick + note.length});
    }
    return notes;
  }
}
