// A small piano-like synthesizer on Web Audio (no samples to download): each note is a few
// harmonics with a fast attack and a pitch-dependent exponential decay, through a low-pass
// filter that opens with the velocity, released at the note's end. Notes are scheduled a
// second ahead by a timer, so an endless stream can keep appending to the same player.

import {TICKS_PER_QUARTER, pitchToHz} from './midi.js';

const LOOKAHEAD_S = 1.0;
const TIMER_MS = 100;
const PARTIALS = [[1, 1.0], [2, 0.45], [3, 0.22], [4, 0.12], [5, 0.05]];
const MIN_SOUNDING_S = 0.04; // zero-length notes still make a short sound

export class Player {
  constructor() {
    this.context = null;
    this.notes = [];
    this.next = 0;
    this.timer = null;
    this.startTime = 0;
    this.bpm = 120;
    this.onTick = null; // called with the playing tick, for the piano roll's playhead
    this.scheduled = 0; // notes scheduled so far (tests read it)
  }

  /** Call from a click handler: browsers start audio only after a user gesture. */
  unlock() {
    if (!this.context) {
      this.context = new AudioContext();
      this.output = this.context.createDynamicsCompressor();
      this.output.threshold.value = -12;
      this.master = this.context.createGain();
      this.master.gain.value = 0.5;
      this.master.connect(this.output).connect(this.context.destination);
    }
    if (this.context.state === 'suspended') this.context.resume();
    return this.context;
  }

  get secondsPerTick() {
    return 60 / this.bpm / TICKS_PER_QUARTER;
  }

  /** Plays `notes` ({start, length, pitch, velocity} in ticks) from the start. */
  play(notes, bpm) {
    this.stop();
    const context = this.unlock();
    this.notes = notes;
    this.bpm = bpm;
    this.next = 0;
    this.startTime = context.currentTime + 0.1;
    this.timer = setInterval(() => this.schedule(), TIMER_MS);
    this.schedule();
  }

  /** Adds notes to the song being played (streaming). */
  append(notes) {
    this.notes.push(...notes);
  }

  /** The tick playing now, or null when stopped. */
  get tick() {
    if (!this.timer) return null;
    return (this.context.currentTime - this.startTime) / this.secondsPerTick;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.voices) for (const voice of this.voices) voice.stop();
    this.voices = new Set();
  }

  schedule() {
    const context = this.context;
    const horizon = context.currentTime + LOOKAHEAD_S;
    while (this.next < this.notes.length) {
      const note = this.notes[this.next];
      const when = this.startTime + note.start * this.secondsPerTick;
      if (when > horizon) break;
      if (when >= context.currentTime - 0.05) this.voice(note, Math.max(when, context.currentTime));
      this.next++;
    }
    if (this.onTick) this.onTick(this.tick);
    const last = this.notes.length ? this.notes[this.notes.length - 1] : null;
    const end = last ? this.startTime + last.end * this.secondsPerTick + 1 : 0;
    if (this.next >= this.notes.length && !this.streaming && context.currentTime > end) {
      this.stop();
      if (this.onTick) this.onTick(null);
    }
  }

  voice(note, when) {
    const context = this.context;
    const hz = pitchToHz(note.pitch);
    const loudness = 0.25 * (note.velocity / 127) ** 1.6;
    const duration = Math.max(note.length * this.secondsPerTick, MIN_SOUNDING_S);
    const decay = Math.min(2.5, Math.max(0.25, 1.6 * Math.sqrt(261.6 / hz)));
    const release = 0.12;
    const envelope = context.createGain();
    envelope.gain.setValueAtTime(0, when);
    envelope.gain.linearRampToValueAtTime(loudness, when + 0.006);
    envelope.gain.setTargetAtTime(loudness * 0.05, when + 0.006, decay);
    envelope.gain.cancelAndHoldAtTime(when + duration);
    envelope.gain.setTargetAtTime(0, when + duration, release / 3);
    const filter = context.createBiquadFilter();
    filter.type = 'lowpass';
    filter.frequency.value = Math.min(16000, hz * (3 + 6 * note.velocity / 127));
    filter.connect(envelope).connect(this.master);
    const stopAt = when + duration + release * 2;
    const oscillators = PARTIALS.filter(([k]) => hz * k < 18000).map(([k, amplitude]) => {
      const oscillator = context.createOscillator();
      oscillator.frequency.value = hz * k * (1 + 0.0004 * k * k); // slight stiffness
      const gain = context.createGain();
      gain.gain.value = amplitude;
      oscillator.connect(gain).connect(filter);
      oscillator.start(when);
      oscillator.stop(stopAt);
      return oscillator;
    });
    const voice = {stop: () => oscillators.forEach((o) => { try { o.stop(); } catch {} })};
    this.voices.add(voice);
    oscillators[0].onended = () => {
      this.voices.delete(voice);
      envelope.disconnect();
    };
    this.scheduled++;
  }
}
