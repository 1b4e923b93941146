/**
 * Test helpers of the nn/loss/optimizer tests: float64 central finite differences of a
 * reference function written in plain TypeScript, seeded random arrays and closeness checks.
 * @module
 */
import assert from "node:assert/strict";
import { Generator } from "../lib/random.ts";

/** Seeded uniform samples in [lo, hi) as a Float32Array. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  return new Generator(seed).fillUniform(new Float32Array(n), lo, hi);
}

/**
 * Gradient of the scalar `f` at `xs` with respect to every input, by central differences in
 * float64 (f must be a float64 reference implementation, not the code under test).
 */
export function numericGrad(
  f: (xs: Float64Array[]) => number,
  xs: ArrayLike<number>[],
  h = 1e-6,
): Float64Array[] {
  const inputs = xs.map((x) => Float64Array.from(x));
  return inputs.map((x) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i];
      x[i] = keep + h;
      const up = f(inputs);
      x[i] = keep - h;
      const down = f(inputs);
      x[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the first miss. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol: { rtol?: number; atol?: number } = {},
): void {
  const { rtol = 1e-4, atol = 1e-5 } = tol;
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}[${i}]: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** sum_i out[i] * weight[i]: turns a tensor output into a scalar for gradient checks. */
export function dot(out: ArrayLike<number>, weight: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * weight[i];
  return s;
}

/** Asserts that `fn` throws an instance of `cls` whose message matches `pattern` (if given). */
export function assertThrows(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => Error,
  pattern?: RegExp,
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(
      err instanceof cls,
      `expected ${cls.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`,
    );
    if (pattern !== undefined) assert.match((err as Error).message, pattern);
    return true;
  });
}
