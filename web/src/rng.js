// numpy's `default_rng(seed).uniform()` in JavaScript: SeedSequence + PCG64 (XSL-RR),
// written from the algorithms' descriptions. The page's noise for a seed is therefore the
// noise of `numpy.random.default_rng(seed).uniform(size=(1, steps, noise_dim))` cast to
// float32, exactly what export/generate_tflite.py and generate_savedmodel.py feed the model:
// the same seed gives the same song in the browser and in Python.

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;

// SeedSequence constants (pool of 4 32-bit words).
const POOL_SIZE = 4;
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;

// PCG64's 128-bit LCG multiplier.
const PCG_MULTIPLIER = (2549297995355413924n << 64n) + 4865540595714422341n;

const mul32 = (a, b) => Math.imul(a, b) >>> 0;

/** The seed as little-endian 32-bit words (numpy: 0 -> [0]). */
function seedWords(seed) {
  let n = BigInt(seed);
  if (n < 0n) throw new RangeError(`the seed must be >= 0, got ${seed}`);
  const words = [];
  do {
    words.push(Number(n & MASK32));
    n >>= 32n;
  } while (n > 0n);
  return words;
}

/** SeedSequence(seed).generate_state(words) as 32-bit words. */
function seedSequenceState(seed, words) {
  const entropy = seedWords(seed);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) >>> 0;
    hashConst = mul32(hashConst, MULT_A);
    value = mul32(value, hashConst);
    return (value ^ (value >>> XSHIFT)) >>> 0;
  };
  const mix = (x, y) => {
    const result = (mul32(MIX_MULT_L, x) - mul32(MIX_MULT_R, y)) >>> 0;
    return (result ^ (result >>> XSHIFT)) >>> 0;
  };
  const pool = new Array(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < entropy.length ? entropy[i] : 0);
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  let hashB = INIT_B;
  const state = [];
  for (let i = 0; i < words; i++) {
    let value = (pool[i % POOL_SIZE] ^ hashB) >>> 0;
    hashB = mul32(hashB, MULT_B);
    value = mul32(value, hashB);
    state.push((value ^ (value >>> XSHIFT)) >>> 0);
  }
  return state;
}

/** numpy.random.default_rng(seed) for uniform doubles and float32s. */
export class NumpyRandom {
  constructor(seed = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`the seed must be a whole number >= 0, got ${seed}`);
    }
    const w = seedSequenceState(seed, 8);
    const u64 = (k) => BigInt(w[2 * k]) | (BigInt(w[2 * k + 1]) << 32n);
    const initState = (u64(0) << 64n) | u64(1);
    const initSeq = (u64(2) << 64n) | u64(3);
    this.inc = ((initSeq << 1n) | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + initState) & MASK128;
    this.step();
  }

  step() {
    this.state = (this.state * PCG_MULTIPLIER + this.inc) & MASK128;
  }

  /** The next 64-bit output (XSL-RR of the advanced state), as a BigInt. */
  nextUint64() {
    this.step();
    const value = ((this.state >> 64n) ^ this.state) & MASK64;
    const rot = this.state >> 122n;
    return ((value >> rot) | (value << ((64n - rot) & 63n))) & MASK64;
  }

  /** A double in [0, 1): the top 53 bits of the next output. */
  nextDouble() {
    return Number(this.nextUint64() >> 11n) / 9007199254740992;
  }

  /** `uniform(size=n).astype(np.float32)` as a Float32Array. */
  uniformFloat32(n) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextDouble();
    return out;
  }
}
