// The page: load a generator export, generate from a seed, draw, play, stream, download.

import {Generator, ModelError} from './generator.js';
import {DEFAULT_BPM, NoteStream, TICKS_PER_QUARTER, tonesToMidi} from './midi.js';
import {PianoRoll} from './pianoroll.js';
import {NumpyRandom} from './rng.js';
import {Player} from './synth.js';

const WASM_DIRECTORY = new URL('../node_modules/@litertjs/core/wasm/', import.meta.url).href;
const DEFAULT_MODEL = 'models/default/generator.tflite';
const MAX_STEPS = 20000;
const STREAM_CHUNK = 8; // steps generated at a time when streaming
const STREAM_AHEAD_S = 6; // seconds of music kept generated ahead of the playhead
const STREAM_WINDOW_S = 30; // seconds of music the piano roll shows when streaming

const $ = (id) => document.getElementById(id);
const roll = new PianoRoll($('roll'));
const player = new Player();
const app = {
  generator: null,
  song: null, // {seed, steps, bpm, noise, raw, tones, notes, ms}
  streaming: false,
  timings: {},
  player,
};
window.crnnGan = app;

function setStatus(status, text = '') {
  document.body.dataset.status = status;
  $('status').textContent = text;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  console.warn(message);
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function enable(ids, on) {
  for (const id of ids) $(id).disabled = !on;
}

function describeModel(generator, exportInfo, seconds) {
  const {numLayers, units, tonesPerStep} = generator.info;
  let text = `${generator.name}: C-RNN-GAN${tonesPerStep === 3 ? '-3' : ''}, ${numLayers} LSTM ` +
    `layers × ${units} units, ${tonesPerStep} tone${tonesPerStep > 1 ? 's' : ''} per step`;
  if (exportInfo && exportInfo.source) text += `; exported from ${exportInfo.source}`;
  return `${text} — loaded in ${seconds.toFixed(2)} s`;
}

/** Loads a model (bytes) and makes it the page's generator; errors are shown on the page. */
async function useModel(loadBytes, name, exportInfoUrl = null) {
  stopAll();
  enable(['generate', 'play', 'stop', 'stream', 'download'], false);
  clearError();
  setStatus('loading', `Loading ${name}…`);
  const begin = performance.now();
  try {
    const bytes = await loadBytes();
    const generator = await Generator.load(bytes, name, WASM_DIRECTORY);
    let exportInfo = null;
    if (exportInfoUrl) {
      try {
        const response = await fetch(exportInfoUrl);
        if (response.ok) exportInfo = await response.json();
      } catch { /* export.json is optional */ }
    }
    if (app.generator) app.generator.delete();
    app.generator = generator;
    app.exportInfo = exportInfo;
    app.song = null;
    roll.setNotes([]);
    const seconds = (performance.now() - begin) / 1000;
    app.timings.modelLoadMs = performance.now() - begin;
    $('model-info').textContent = describeModel(generator, exportInfo, seconds);
    enable(['generate', 'stream'], true);
    setStatus('ready', 'Ready: press “Generate & play”.');
  } catch (error) {
    const message = error instanceof ModelError ? error.message :
      `Could not load ${name}: ${error.message || error}`;
    if (!app.generator) $('model-info').textContent = 'No model loaded.';
    else enable(['generate', 'stream'], true);
    enable(['play', 'download'], Boolean(app.generator && app.song));
    showError(message);
    setStatus('error', app.generator ? `Still using ${app.generator.name}.` : '');
  }
}

async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ModelError(`Could not fetch ${url}: ${error.message || error}`);
  }
  if (!response.ok) {
    throw new ModelError(`Could not fetch ${url}: HTTP ${response.status} ${response.statusText}` +
      (url === DEFAULT_MODEL ? ' (run `make web`, which puts the default export there)' : ''));
  }
  return new Uint8Array(await response.arrayBuffer());
}

function loadUrl(url) {
  const exportJson = new URL('export.json', new URL(url, location.href)).href;
  return useModel(() => fetchBytes(url), url, exportJson);
}

function readInputs() {
  const seed = Number($('seed').value);
  const steps = Number($('steps').value);
  const bpm = Number($('bpm').value);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError('The seed must be a whole number ≥ 0.');
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_STEPS) {
    throw new RangeError(`Steps must be a whole number from 1 to ${MAX_STEPS}.`);
  }
  if (!(bpm >= 20 && bpm <= 400)) throw new RangeError('The tempo must be 20 to 400 bpm.');
  return {seed, steps, bpm};
}

function stopAll() {
  app.streaming = false;
  player.streaming = false;
  player.stop();
  $('stream').classList.remove('active');
  $('stream').textContent = 'Stream endlessly';
  roll.setPlayhead(null);
}

player.onTick = (tick) => {
  if (tick === null) enable(['stop'], app.streaming);
  roll.setPlayhead(tick);
};

/** Generates a whole song from the inputs, draws it and (unless `play` is false) plays it. */
async function generate({play = true} = {}) {
  stopAll();
  clearError();
  let inputs;
  try {
    inputs = readInputs();
  } catch (error) {
    showError(error.message);
    return;
  }
  if (play) player.unlock(); // inside the click: browsers start audio only on a gesture
  const {seed, steps, bpm} = inputs;
  const generator = app.generator;
  setStatus('generating', `Generating ${steps} steps…`);
  enable(['generate', 'stream'], false);
  try {
    const noise = new NumpyRandom(seed).uniformFloat32(steps * generator.info.noiseDim);
    const begin = performance.now();
    const raw = await generator.generate(noise);
    const ms = performance.now() - begin;
    const notes = new NoteStream();
    const added = notes.push(raw);
    app.song = {seed, steps, bpm, noise, raw, tones: notes.tones, notes: added, ms};
    roll.setNotes(added);
    const seconds = added.length ? added[added.length - 1].end * 60 / bpm / TICKS_PER_QUARTER : 0;
    setStatus('done', `${steps} steps in ${ms.toFixed(0)} ms (LiteRT.js, WebAssembly CPU): ` +
      `${notes.tones.length} notes, ${seconds.toFixed(1)} s of music at ${bpm} bpm.`);
    enable(['play', 'download'], true);
    if (play && added.length) {
      player.play(added, bpm);
      enable(['stop'], true);
    }
  } catch (error) {
    showError(`Generation failed: ${error.message || error}`);
    setStatus('error');
  } finally {
    enable(['generate', 'stream'], true);
  }
}

/** Generates and plays step after step with the `step` signature until stopped. */
async function stream() {
  if (app.streaming) {
    stopAll();
    setStatus('done', `Stopped after ${app.song.steps} steps.`);
    enable(['generate', 'stream', 'play', 'download'], true);
    return;
  }
  stopAll();
  clearError();
  let inputs;
  try {
    inputs = readInputs();
  } catch (error) {
    showError(error.message);
    return;
  }
  player.unlock();
  const {seed, bpm} = inputs;
  const generator = app.generator;
  const rng = new NumpyRandom(seed);
  const source = generator.stream();
  const notes = new NoteStream();
  const chunks = [];
  const song = {seed, steps: 0, bpm, tones: notes.tones, notes: [], ms: 0};
  Object.defineProperty(song, 'raw', {get: () => concat(chunks), enumerable: true});
  app.song = song;
  app.streaming = true;
  player.streaming = true;
  player.play([], bpm);
  $('stream').classList.add('active');
  $('stream').textContent = 'Stop streaming';
  enable(['generate', 'play', 'download'], false);
  enable(['stop'], true);
  const ticksPerSecond = bpm / 60 * TICKS_PER_QUARTER;
  setStatus('streaming', 'Streaming…');
  try {
    while (app.streaming && song.steps < MAX_STEPS) {
      const playing = Math.max(player.tick ?? 0, 0);
      if (notes.startTick - playing > STREAM_AHEAD_S * ticksPerSecond && song.steps >= 2 * STREAM_CHUNK) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const begin = performance.now();
      const raw = await source.next(rng.uniformFloat32(STREAM_CHUNK * generator.info.noiseDim));
      song.ms += performance.now() - begin;
      if (!app.streaming) break;
      chunks.push(raw);
      song.steps += STREAM_CHUNK;
      const added = notes.push(raw);
      song.notes.push(...added);
      player.append(added);
      roll.setNotes(song.notes, {window: STREAM_WINDOW_S * ticksPerSecond});
      setStatus('streaming', `Streaming: ${song.steps} steps, ${notes.tones.length} notes ` +
        `(${(song.ms / song.steps).toFixed(2)} ms a step).`);
    }
    if (song.steps >= MAX_STEPS) {
      stopAll();
      setStatus('done', `Stopped at ${MAX_STEPS} steps.`);
      enable(['generate', 'stream', 'play', 'download'], true);
    }
  } catch (error) {
    stopAll();
    showError(`Streaming failed: ${error.message || error}`);
    setStatus('error');
    enable(['generate', 'stream'], true);
  }
}

function concat(chunks) {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function download() {
  const song = app.song;
  if (!song) return;
  const bytes = tonesToMidi(song.tones, {bpm: song.bpm || DEFAULT_BPM});
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([bytes], {type: 'audio/midi'}));
  link.download = `crnn-gan_seed${song.seed}_${song.steps}steps.mid`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** For benchmarks: ms of `repeats` generations of `steps` steps (seed 0), after a warm-up. */
app.benchmark = async (steps = 200, repeats = 10) => {
  const noise = new NumpyRandom(0).uniformFloat32(steps * app.generator.info.noiseDim);
  await app.generator.generate(noise);
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const begin = performance.now();
    await app.generator.generate(noise);
    times.push(performance.now() - begin);
  }
  return times;
};

$('generate').addEventListener('click', () => generate());
$('play').addEventListener('click', () => {
  if (!app.song || !app.song.notes.length) return;
  player.play(app.song.notes, app.song.bpm);
  enable(['stop'], true);
});
$('stop').addEventListener('click', () => {
  const wasStreaming = app.streaming;
  stopAll();
  if (wasStreaming) {
    setStatus('done', `Stopped after ${app.song.steps} steps.`);
    enable(['generate', 'stream', 'play', 'download'], true);
  }
  enable(['stop'], false);
});
$('stream').addEventListener('click', () => stream());
$('download').addEventListener('click', download);
$('load-url').addEventListener('click', () => {
  const url = $('model-url').value.trim();
  if (url) loadUrl(url);
});
$('model-file').addEventListener('change', (event) => {
  const file = event.target.files[0];
  if (file) useModel(async () => new Uint8Array(await file.arrayBuffer()), file.name);
});

const params = new URLSearchParams(location.search);
for (const key of ['seed', 'steps', 'bpm']) if (params.has(key)) $(key).value = params.get(key);
const started = performance.now();
app.ready = loadUrl(params.get('model') || DEFAULT_MODEL).then(() => {
  app.timings.readyMs = performance.now(); // since navigation start
  app.timings.loadMs = performance.now() - started;
});

if ('serviceWorker' in navigator && params.get('offline') !== '0') {
  // Offline use: the service worker keeps a copy of what this page loaded (see sw.js).
  navigator.serviceWorker.register('sw.js').then(() => navigator.serviceWorker.ready)
    .then(async (registration) => {
      await app.ready;
      const here = location.origin;
      const urls = [location.href, ...performance.getEntriesByType('resource').map((e) => e.name)]
        .filter((url) => url.startsWith(here));
      registration.active.postMessage({cache: [...new Set(urls)]});
    })
    .catch((error) => console.warn('offline copy unavailable:', error));
}
