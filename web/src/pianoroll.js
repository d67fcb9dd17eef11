// The piano roll: one bar per note (x: time, y: pitch, brightness: velocity) on a canvas.

const BACKGROUND = '#14161c';
const GRID = '#262a35';
const OCTAVE = '#3a4050';
const PLAYHEAD = '#f5f5f5';

export class PianoRoll {
  constructor(canvas) {
    this.canvas = canvas;
    this.notes = [];
    this.window = null; // ticks shown when streaming (the latest ones); null: the whole song
    this.playhead = null;
    this.clear();
  }

  clear() {
    const ctx = this.canvas.getContext('2d');
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Notes as from midi.tonesToNotes ({start, end, pitch, velocity} in ticks). */
  setNotes(notes, {window = null} = {}) {
    this.notes = notes;
    this.window = window;
    this.draw();
  }

  setPlayhead(tick) {
    this.playhead = tick;
    this.draw();
  }

  draw() {
    const {canvas, notes} = this;
    const ctx = canvas.getContext('2d');
    const width = canvas.width;
    const height = canvas.height;
    this.clear();
    if (!notes.length) return;
    const lastEnd = notes.reduce((m, n) => Math.max(m, n.end, n.start + 1), 1);
    const from = this.window ? Math.max(0, lastEnd - this.window) : 0;
    const span = this.window ? this.window : lastEnd;
    let low = 127;
    let high = 0;
    for (const n of notes) {
      if (n.end < from) continue;
      low = Math.min(low, n.pitch);
      high = Math.max(high, n.pitch);
    }
    low = Math.max(0, low - 2);
    high = Math.min(127, high + 2);
    const rows = high - low + 1;
    const rowHeight = height / rows;
    for (let p = low; p <= high; p++) {
      const y = height - (p - low + 1) * rowHeight;
      ctx.fillStyle = p % 12 === 0 ? OCTAVE : GRID;
      ctx.fillRect(0, y + rowHeight - 1, width, p % 12 === 0 ? 1.5 : 0.5);
    }
    const x = (tick) => ((tick - from) / span) * width;
    for (const n of notes) {
      if (n.end < from) continue;
      const y = height - (n.pitch - low + 1) * rowHeight;
      const w = Math.max(2, x(n.end) - x(n.start));
      const light = 35 + 40 * (n.velocity / 127);
      ctx.fillStyle = `hsl(${200 - (n.pitch % 12) * 8}, 80%, ${light}%)`;
      ctx.fillRect(x(n.start), y + 1, w, Math.max(2, rowHeight - 2));
    }
    if (this.playhead !== null && this.playhead >= from) {
      ctx.fillStyle = PLAYHEAD;
      ctx.fillRect(x(this.playhead), 0, 1.5, height);
    }
  }
}
