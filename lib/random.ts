/**
 * A small, fast, seeded pseudo-random generator (xoshiro128**), so that connectivity, weight
 * initialisation and shuffling are reproducible from one integer seed.
 * @module
 */

import { describeValue } from "./errors.ts";
import { numberOption } from "./options.ts";

/** Seeded pseudo-random number generator (xoshiro128**, seeded through splitmix32). */
export class Generator {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #spareNormal: number | null = null;

  /**
   * Creates a generator; the same seed always gives the same sequence. Seeds are exact integers
   * (|seed| < 2^53): a fraction or a larger number would be silently rounded onto another seed.
   * Without a seed, a random one (as the creators' `seed` option).
   */
  constructor(seed: number = randomSeed()) {
    numberOption(seed, "Seed");
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Seed must be an integer with |seed| < 2^53, got ${seed}`);
    }
    // splitmix32 over the low word; the high word (nonzero only for seeds >= 2^32 or < 0) adds
    // a second, independently hashed counter. (It was XORed raw into the low word's counter, so
    // seeds such as 1 and 2^32 drew the same first value.) Seeds below 2^32 keep their streams.
    let low = Math.trunc(seed) >>> 0;
    let high = Math.floor(Math.trunc(seed) / 4294967296) >>> 0;
    const mixHigh = high !== 0;
    const next = () => {
      low = (low + 0x9e3779b9) | 0;
      if (!mixHigh) return fmix32(low);
      high = (high + 0x632be5ab) | 0;
      return (fmix32(low) ^ fmix32(high ^ 0x5bd1e995)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n) without modulo bias; n must be a positive safe integer. */
  int(n: number): number {
    numberOption(n, "Generator.int() n");
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`Generator.int(n) needs a positive safe integer n, got ${String(n)}`);
    }
    return this.#below(n);
  }

  /** `int(n)` for an n already known to be a positive safe integer (the shuffle's loop). */
  #below(n: number): number {
    if (n <= 4294967296) {
      const limit = 4294967296 - (4294967296 % n);
      let v: number;
      do v = this.nextUint32(); while (v >= limit);
      return v % n;
    }
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal sample (Box–Muller). */
  normal(): number {
    if (this.#spareNormal !== null) {
      const v = this.#spareNormal;
      this.#spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * Fills `out` with uniform samples in [low, high). A sample that float32 rounds up to `high`
   * (a double within half an ulp of it) becomes the float just below, so `high` is never
   * returned (as torch.rand).
   */
  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    // Checked before any draw, as torch's uniform_ (from <= to, both in the dtype's range).
    checkOut(out, "fillUniform");
    checkFinite(low, "fillUniform() low");
    checkFinite(high, "fillUniform() high");
    if (low > high) {
      throw new RangeError(
        `Generator.fillUniform() needs low <= high, got low ${low} > high ${high}`,
      );
    }
    const span = high - low;
    const top = Math.fround(high) < high ? Math.fround(high) : floatBelow(high);
    for (let i = 0; i < out.length; i++) {
      out[i] = low + span * this.uniform();
      if (out[i] >= high && high > low) out[i] = top;
    }
    return out;
  }

  /** Fills `out` with normal samples of the given mean and standard deviation. */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    checkOut(out, "fillNormal");
    checkFinite(mean, "fillNormal() mean");
    checkFinite(std, "fillNormal() std");
    if (std < 0) throw new RangeError(`Generator.fillNormal() std must be >= 0, got ${std}`);
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Shuffles `array` in place (Fisher–Yates). */
  shuffle<T extends { length: number; [i: number]: number }>(array: T): T {
    if (!Array.isArray(array) && !(ArrayBuffer.isView(array) && !(array instanceof DataView))) {
      throw new TypeError(
        `Generator.shuffle() needs an array or a typed array, got ${describeValue(array)}`,
      );
    }
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.#below(i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }
}

/** A TypeError unless `out` is a Float32Array (the samples are rounded as float32). */
function checkOut(out: unknown, method: string): void {
  if (!(out instanceof Float32Array)) {
    throw new TypeError(
      `Generator.${method}() out must be a Float32Array, got ${describeValue(out)}`,
    );
  }
}

/** A number (else a TypeError) that is finite also as a float32 (else a RangeError). */
function checkFinite(value: unknown, name: string): void {
  numberOption(value, `Generator.${name}`);
  if (!Number.isFinite(Math.fround(value as number))) {
    throw new RangeError(`Generator.${name} must be finite (as a float32), got ${value}`);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** MurmurHash3's 32-bit finaliser (splitmix32's output step): a bijection mixing every bit. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A generator from a seed, or a fresh time-seeded one when none is given. */
export function generatorFrom(seedOrGenerator?: number | Generator): Generator {
  if (seedOrGenerator instanceof Generator) return seedOrGenerator;
  // Only undefined means "no seed": null is refused by the Generator ("Seed must be a number").
  return new Generator(seedOrGenerator === undefined ? randomSeed() : seedOrGenerator);
}

/** A fresh seed for an unseeded generator. */
function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

/** The largest float32 below `v`, a finite float32. */
function floatBelow(v: number): number {
  const bits = new Float32Array([v]);
  const u = new Uint32Array(bits.buffer);
  if (v > 0) u[0]--;
  else if (v < 0) u[0]++;
  else u[0] = 0x80000001; // below ±0: the negative denormal closest to 0
  return bits[0];
}
