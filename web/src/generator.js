// The exported C-RNN-GAN generator (`python -m export` -> generator.tflite), run in the
// browser by LiteRT.js on its WebAssembly CPU backend (XNNPack).
//
// LiteRT.js compiles a model with static shapes, so the whole-sequence signature
// `serving_default` (whose length is chosen at run time) cannot be resized here; the page
// drives the `step` signature instead, feeding its h, c and previous back, which gives the
// same tones (to float rounding) and streams for as long as one likes.

import {Environment, Tensor, loadAndCompile, loadLiteRt} from '@litertjs/core';

export const FEATURES_PER_TONE = 4;
const STATE_NAMES = ['h', 'c', 'previous'];

/** A model that is not a generator export, or that LiteRT.js cannot read; shown on the page. */
export class ModelError extends Error {}

let runtime = null;

/**
 * Loads the LiteRT.js WebAssembly runtime once (from the project's own node_modules, no CDN).
 * Its native log lines (INFO/WARNING on stderr) go to console.debug, not console.error.
 */
export function loadRuntime(wasmDirectory) {
  if (!runtime) {
    const log = (line) => console.debug(`[LiteRT] ${line}`);
    self.Module = {print: log, printErr: log};
    runtime = loadLiteRt(wasmDirectory, {threads: false, jspi: false}).then(async () => ({
      // The CPU backend only: no WebGPU device is needed (nor asked for again).
      environment: await Environment.create({webGpuDevice: null}),
    }));
  }
  return runtime;
}

function shapeText(shape) {
  return `[${Array.from(shape).join(', ')}]`;
}

/** Checks the `step` signature of an export; returns its sizes or throws a ModelError. */
function describe(model, name) {
  const signatures = Object.keys(model.signatures);
  const step = model.signatures.step;
  const notExport = `${name} is not a C-RNN-GAN generator export (python -m export)`;
  if (!step) {
    throw new ModelError(`${notExport}: it has no "step" signature (it has ` +
      `${signatures.map((s) => `"${s}"`).join(', ') || 'none'}).`);
  }
  const inputs = Object.fromEntries(step.getInputDetails().map((d) => [d.name, d]));
  const outputs = Object.fromEntries(step.getOutputDetails().map((d) => [d.name, d]));
  const expected = 'step(noise [1, F], h [L, 1, U], c [L, 1, U], previous [1, F]) -> ' +
    'tones [1, F/4, 4], h, c, previous';
  const fail = (what) => {
    throw new ModelError(`${notExport}: ${what}; expected ${expected}.`);
  };
  for (const key of ['noise', ...STATE_NAMES]) {
    if (!inputs[key]) fail(`its "step" signature has no input "${key}"`);
    if (inputs[key].dtype !== 'float32') fail(`input "${key}" is ${inputs[key].dtype}`);
  }
  for (const key of ['tones', ...STATE_NAMES]) {
    if (!outputs[key]) fail(`its "step" signature has no output "${key}"`);
  }
  const noise = Array.from(inputs.noise.shape);
  const h = Array.from(inputs.h.shape);
  const tones = Array.from(outputs.tones.shape);
  const features = noise[1];
  if (noise.length !== 2 || noise[0] !== 1 || !(features > 0) || features % FEATURES_PER_TONE) {
    fail(`input "noise" has shape ${shapeText(noise)}`);
  }
  if (h.length !== 3 || h[1] !== 1 || shapeText(inputs.c.shape) !== shapeText(h)) {
    fail(`inputs "h" and "c" have shapes ${shapeText(h)} and ${shapeText(inputs.c.shape)}`);
  }
  if (shapeText(inputs.previous.shape) !== shapeText([1, features])) {
    fail(`input "previous" has shape ${shapeText(inputs.previous.shape)}`);
  }
  if (shapeText(tones) !== shapeText([1, features / FEATURES_PER_TONE, FEATURES_PER_TONE])) {
    fail(`output "tones" has shape ${shapeText(tones)}`);
  }
  return {
    noiseDim: features,
    tonesPerStep: features / FEATURES_PER_TONE,
    numLayers: h[0],
    units: h[2],
    shapes: {noise, h, c: h, previous: [1, features]},
    signatures,
  };
}

/** A loaded generator: `stream(noise)` yields tones step after step. */
export class Generator {
  constructor(model, info, name) {
    this.model = model;
    this.step = model.signatures.step;
    this.info = info;
    this.name = name;
  }

  /**
   * Loads and checks a generator export.
   * @param {Uint8Array} bytes the .tflite file
   * @param {string} name shown in messages
   * @param {string} wasmDirectory where LiteRT.js's .wasm files are served
   */
  static async load(bytes, name, wasmDirectory) {
    const {environment} = await loadRuntime(wasmDirectory);
    if (bytes.length < 8 || String.fromCharCode(...bytes.slice(4, 8)) !== 'TFL3') {
      throw new ModelError(`${name} is not a TFLite model (no "TFL3" flatbuffer ` +
        'identifier): load the generator.tflite that python -m export wrote.');
    }
    let model;
    try {
      model = await loadAndCompile(bytes, {accelerator: 'wasm', environment});
    } catch (error) {
      throw new ModelError(`LiteRT.js could not load ${name}: ${error.message || error}`);
    }
    try {
      return new Generator(model, describe(model, name), name);
    } catch (error) {
      model.delete();
      throw error;
    }
  }

  /** A fresh stream: zero LSTM state and zero previous output, as the export's README says. */
  stream() {
    const {shapes} = this.info;
    const size = (shape) => shape.reduce((a, b) => a * b, 1);
    const state = Object.fromEntries(STATE_NAMES.map((k) => [k, new Float32Array(size(shapes[k]))]));
    return {
      state,
      steps: 0,
      /** Runs `step` once per noise vector of `noise` ([n * noiseDim]); raw tones [n * F]. */
      next: async (noise) => {
        const dim = this.info.noiseDim;
        const out = new Float32Array(noise.length);
        for (let t = 0; t * dim < noise.length; t++) {
          const inputs = {noise: new Tensor(noise.slice(t * dim, (t + 1) * dim), shapes.noise)};
          for (const k of STATE_NAMES) inputs[k] = new Tensor(state[k], shapes[k]);
          let result;
          try {
            result = await this.step.run(inputs);
          } finally {
            for (const tensor of Object.values(inputs)) tensor.delete();
          }
          for (const k of STATE_NAMES) state[k] = result[k].toTypedArray().slice();
          out.set(result.tones.toTypedArray(), t * dim);
          for (const tensor of Object.values(result)) tensor.delete();
        }
        return out;
      },
    };
  }

  /** The whole song for `noise` ([steps * noiseDim]): raw tones [steps * tonesPerStep * 4]. */
  async generate(noise) {
    return this.stream().next(noise);
  }

  delete() {
    this.model.delete();
  }
}
