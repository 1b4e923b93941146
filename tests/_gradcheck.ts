/**
 * Test helpers: `gradcheck` compares the gradients autograd computes with central finite
 * differences, and `assertAllClose` compares arrays with a tolerance.
 *
 * How `gradcheck` works: the op's output y = fn(...inputs) is reduced to the scalar
 * L = sum_i w_i * y_i with fixed random weights w (so that every output element counts, each
 * differently, and a wrong permutation of gradients cannot pass), evaluated in float64 from the
 * output values. Autograd gives dL/dx by `y.backward(w)`; the finite difference perturbs each
 * element of each input that requires a gradient by ±eps and takes
 * (L(x + eps) - L(x - eps)) / (2 eps), with the perturbation actually stored (float32) used as
 * the step. With a `reference` (a float64 implementation of the same function on plain arrays)
 * the forward is also compared against it and the finite differences are taken on the
 * reference in float64 (tight), which checks the backward without float32 round-off noise.
 *
 * Keep inputs small (every element costs two forward calls) and away from kinks (relu at 0,
 * abs at 0) and singularities (log, sqrt, div near 0) by more than eps.
 *
 * @example
 * ```ts
 * import { gradcheck } from "./_gradcheck.ts";
 * import { randn } from "../mod.ts";
 * const x = randn([3, 4], { seed: 1, requiresGrad: true });
 * gradcheck((a) => a.tanh(), [x]);                                   // float32 differences
 * gradcheck((a) => a.tanh(), [x], { reference: ([a]) => a.map(Math.tanh) }); // float64 ones
 * ```
 * @module
 */
import { AssertionError } from "node:assert";
import { noGrad, type Tensor, tensor } from "../mod.ts";
import { Generator } from "../lib/random.ts";

/** Options of `gradcheck`. */
export interface GradcheckOptions {
  /**
   * Finite-difference step: default 1e-2 on the float32 op, 1e-6 on a float64 `reference`.
   */
  eps?: number;
  /** Absolute tolerance (default 1e-3 on the op, 1e-4 with a reference). */
  atol?: number;
  /** Relative tolerance, times |numeric gradient| (default 1e-2 on the op, 1e-3 with a reference). */
  rtol?: number;
  /** Seed of the random output weights (default 1). */
  seed?: number;
  /**
   * Float64 implementation of `fn` on the inputs' elements (row-major, one array per input),
   * returning the output's elements. When given, the forward is compared with it and finite
   * differences are computed on it in float64.
   */
  reference?: (inputs: Float64Array[]) => ArrayLike<number>;
  /** Tolerance of the forward comparison with `reference`, absolute and relative (1e-5). */
  forwardTol?: number;
  /** Name used in failure messages (default "gradcheck"). */
  name?: string;
}

/** Throws an AssertionError listing the first mismatches when `actual` and `expected` differ. */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  options: { atol?: number; rtol?: number; what?: string } = {},
): void {
  const atol = options.atol ?? 1e-5, rtol = options.rtol ?? 1e-5;
  const what = options.what ?? "values";
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length}, expected ${expected.length}`,
    });
  }
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok && bad.length < 5) bad.push(`[${i}] got ${a}, expected ${e}`);
    if (!ok && bad.length === 5) break;
  }
  if (bad.length > 0) {
    throw new AssertionError({
      message: `${what} differ (atol ${atol}, rtol ${rtol}): ${bad.join("; ")}`,
    });
  }
}

function weightedSum(values: ArrayLike<number>, weights: Float32Array): number {
  let s = 0;
  for (let i = 0; i < weights.length; i++) s += weights[i] * values[i];
  return s;
}

/**
 * Checks autograd's gradient of `fn` with respect to every input that has `requiresGrad`
 * against central finite differences; throws an AssertionError naming the input, the element,
 * and both values on mismatch. Inputs must be float32 tensors (any device); they are
 * restored after being perturbed. Existing `.grad`s of the inputs are cleared.
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradcheckOptions = {},
): void {
  const name = options.name ?? "gradcheck";
  const ref = options.reference;
  const eps = options.eps ?? (ref ? 1e-6 : 1e-2);
  const atol = options.atol ?? (ref ? 1e-4 : 1e-3);
  const rtol = options.rtol ?? (ref ? 1e-3 : 1e-2);

  // Analytic gradients.
  for (const x of inputs) x.grad = null;
  const y = fn(...inputs);
  if (!y.requiresGrad) {
    throw new AssertionError({ message: `${name}: the output does not require a gradient` });
  }
  const weights = new Generator(options.seed ?? 1).fillUniform(
    new Float32Array(y.size),
    -1,
    1,
  );
  if (ref) {
    const expected = ref(inputs.map((x) => Float64Array.from(x.toArray())));
    assertAllClose(y.toArray(), expected, {
      atol: options.forwardTol ?? 1e-5,
      rtol: options.forwardTol ?? 1e-5,
      what: `${name}: forward vs reference`,
    });
  }
  y.backward(tensor(weights, y.shape, { device: y.device }));
  const analytic = inputs.map((x) => (x.grad === null ? null : x.grad.toArray()));

  // Finite differences.
  const mismatches: string[] = [];
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) return;
    const got = analytic[i];
    if (got !== null && got.length !== x.size) {
      throw new AssertionError({
        message: `${name}: input ${i} has ${x.size} elements but its gradient has ${got.length}`,
      });
    }
    const original = x.toArray();
    const plain = ref ? inputs.map((t) => Float64Array.from(t.toArray())) : [];
    for (let j = 0; j < x.size; j++) {
      let numeric: number;
      if (ref) {
        plain[i][j] = original[j] + eps;
        const up = weightedSum(ref(plain), weights);
        plain[i][j] = original[j] - eps;
        const down = weightedSum(ref(plain), weights);
        plain[i][j] = original[j];
        numeric = (up - down) / (2 * eps);
      } else {
        const perturbed = original.slice();
        perturbed[j] = original[j] + eps;
        const hi = perturbed[j];
        x.storage.write(perturbed);
        const up = weightedSum(noGrad(() => fn(...inputs)).toArray(), weights);
        perturbed[j] = original[j] - eps;
        const lo = perturbed[j];
        x.storage.write(perturbed);
        const down = weightedSum(noGrad(() => fn(...inputs)).toArray(), weights);
        x.storage.write(original);
        numeric = (up - down) / (hi - lo);
      }
      const a = got === null ? 0 : got[j];
      if (!(Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric))) {
        if (mismatches.length < 5) {
          mismatches.push(`input ${i} [${j}]: autograd ${a}, finite difference ${numeric}`);
        }
      }
    }
  });
  if (mismatches.length > 0) {
    throw new AssertionError({
      message: `${name}: gradients differ (atol ${atol}, rtol ${rtol}): ${mismatches.join("; ")}`,
    });
  }
}
