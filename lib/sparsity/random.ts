/**
 * Random connectivity: exactly `round((1 - sparsity) · in · out)` distinct connections drawn
 * uniformly from the `in · out` possible ones, in O(nnz) time and memory at any width.
 *
 * The connections are sampled as linear positions `p = output · in + input` in [0, in·out)
 * with Vitter's sequential sampling (Algorithm D, Vitter 1987, "An efficient algorithm for
 * sequential random sampling", ACM TOMS 13(1)), which emits a uniform random n-subset already
 * sorted, i.e. in CSR order, using O(n) random numbers and no auxiliary memory. Positions are
 * float64 integers, exact up to 2^53, which bounds `in · out`. The seed's PyTorch code fell back
 * to approximate sparsity above 1e8 entries; this never does.
 * @module
 */
import { checkOptionKeys, numberOption } from "../options.ts";
import { type Generator, generatorFrom } from "../random.ts";
import { checkInt32Size, SparsePattern } from "./pattern.ts";

/** The largest `in · out` random connectivity samples from: positions are exact float64 integers. */
export const MAX_RANDOM_POSITIONS: number = Number.MAX_SAFE_INTEGER;

/** Checks a sparsity value: a number in [0, 1). RangeError naming `name` otherwise. */
export function checkSparsity(sparsity: unknown, name = "sparsity"): number {
  const s = numberOption(sparsity, name, undefined, "[0, 1)");
  if (!(s >= 0 && s < 1)) {
    throw new RangeError(`${name} must be in [0, 1), got ${s}`);
  }
  return s;
}

/**
 * `round((1 - sparsity) · in · out)` computed as the seed's Python does: the product taken left
 * to right and ties rounded to even (Python's `round(10.5)` is 10), so a layer has the seed's
 * connection count for every shape. No range checks: see `randomConnectionCount`.
 */
export function expectedConnectionCount(
  inFeatures: number,
  outFeatures: number,
  sparsity: number,
): number {
  const v = (1 - sparsity) * inFeatures * outFeatures;
  const r = Math.round(v); // ties go up here
  return r - v === 0.5 && r % 2 === 1 ? r - 1 : r;
}

/**
 * The number of connections random connectivity gives an `inFeatures × outFeatures` layer:
 * `round((1 - sparsity) · in · out)` (ties to even, as the seed's Python). Throws when it is 0
 * or does not fit int32.
 */
export function randomConnectionCount(
  inFeatures: number,
  outFeatures: number,
  sparsity: number,
): number {
  checkSparsity(sparsity);
  for (const [name, n] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
    numberOption(n, name);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${n}`);
    }
  }
  const nnz = expectedConnectionCount(inFeatures, outFeatures, sparsity);
  if (nnz < 1) {
    throw new RangeError(
      `sparsity ${sparsity} leaves round((1 - ${sparsity}) · ${inFeatures} · ${outFeatures}) = 0 ` +
        "connections; lower the sparsity or widen the layer",
    );
  }
  checkInt32Size(nnz, `The number of connections (round((1 - sparsity) · in · out))`);
  return nnz;
}

/** Options of `randomConnectivity`. */
export interface RandomConnectivityOptions {
  /** Seed or generator (default: a random seed). */
  seed?: number | Generator;
}

/**
 * A uniformly random pattern with exactly `nnz` distinct connections for an
 * `outFeatures × inFeatures` weight, in O(nnz + outFeatures + inFeatures) time and memory.
 * @example
 * ```ts
 * import { randomConnectivity } from "@sparselinear/sparselinear";
 * const p = randomConnectivity(784, 100, 7840, { seed: 1 });
 * console.log(p.nnz); // 7840
 * ```
 */
export function randomConnectivity(
  inFeatures: number,
  outFeatures: number,
  nnz: number,
  options: RandomConnectivityOptions = {},
): SparsePattern {
  checkOptionKeys(options, ["seed"], "randomConnectivity()");
  numberOption(inFeatures, "inFeatures");
  numberOption(outFeatures, "outFeatures");
  numberOption(nnz, "nnz");
  const total = inFeatures * outFeatures;
  if (!(Number.isInteger(nnz) && nnz >= 1 && nnz <= total)) {
    throw new RangeError(`nnz must be an integer in [1, in · out = ${total}], got ${nnz}`);
  }
  checkInt32Size(nnz, "The number of connections");
  if (total > MAX_RANDOM_POSITIONS) {
    throw new RangeError(
      `Random connectivity samples positions in [0, in · out) as exact float64 integers, so ` +
        `in · out must be at most 2^53 - 1; got ${inFeatures} · ${outFeatures} = ${total}`,
    );
  }
  const gen = generatorFrom(options.seed);
  const rowPtr = new Int32Array(outFeatures + 1);
  const colIdx = new Int32Array(nnz);
  let written = 0;
  let row = 0;
  let rowStart = 0; // linear position of the start of `row`
  let previous = -1;
  sampleSortedPositions(gen, nnz, total, (position) => {
    if (!(position > previous && position < total)) {
      throw new Error(`Internal error: sampled position ${position} after ${previous}`);
    }
    previous = position;
    while (position >= rowStart + inFeatures) {
      row++;
      rowStart += inFeatures;
      rowPtr[row] = written;
    }
    colIdx[written++] = position - rowStart;
  });
  while (row < outFeatures) rowPtr[++row] = written;
  return SparsePattern.fromCsr(outFeatures, inFeatures, rowPtr, colIdx);
}

/** A uniform double in (0, 1): never 0, so its logarithm is finite. */
function uniformPositive(gen: Generator): number {
  let u = gen.uniform();
  while (u === 0) u = gen.uniform();
  return u;
}

/**
 * Calls `emit` with `n` distinct integers drawn uniformly from [0, total), in increasing
 * order: Vitter's Algorithm D, switching to Algorithm A once n / N exceeds 1/13 (where A's
 * O(N) scan costs at most 13 steps per sample).
 */
export function sampleSortedPositions(
  gen: Generator,
  n: number,
  total: number,
  emit: (position: number) => void,
): void {
  const alphaInverse = 13;
  let N = total; // records left
  let current = -1; // last selected position
  let nReal = n;
  let ninv = 1 / nReal;
  let vPrime = Math.exp(Math.log(uniformPositive(gen)) * ninv);
  let qu1 = N - n + 1;
  let threshold = alphaInverse * n;
  while (n > 1 && threshold < N) {
    const nMin1Inv = 1 / (nReal - 1);
    let S: number;
    for (;;) {
      // D2: X from the continuous envelope g(x) = n/N (1 - x/N)^(n-1), S = floor(X).
      let X: number;
      for (;;) {
        X = N * (1 - vPrime);
        S = Math.floor(X);
        if (S < qu1) break;
        vPrime = Math.exp(Math.log(uniformPositive(gen)) * ninv);
      }
      const U = uniformPositive(gen);
      // D3: quick acceptance; on success vPrime is an independent variate for the next step.
      const y1 = Math.exp(Math.log((U * N) / qu1) * nMin1Inv);
      vPrime = y1 * (1 - X / N) * (qu1 / (qu1 - S));
      if (vPrime <= 1) break;
      // D4: exact acceptance test with the true probability ratio.
      let y2 = 1;
      let top = N - 1;
      let bottom: number;
      let limit: number;
      if (n - 1 > S) {
        bottom = N - n;
        limit = N - S;
      } else {
        bottom = N - S - 1;
        limit = qu1;
      }
      for (let t = N - 1; t >= limit; t--) {
        y2 = (y2 * top) / bottom;
        top--;
        bottom--;
      }
      if (N / (N - X) >= y1 * Math.exp(Math.log(y2) * nMin1Inv)) {
        vPrime = Math.exp(Math.log(uniformPositive(gen)) * nMin1Inv);
        break;
      }
      vPrime = Math.exp(Math.log(uniformPositive(gen)) * ninv);
    }
    // D5: skip S records and select the next one.
    current += S + 1;
    emit(current);
    N = N - S - 1;
    n--;
    nReal--;
    ninv = nMin1Inv;
    qu1 -= S;
    threshold -= alphaInverse;
  }
  if (n > 1) {
    sampleAlgorithmA(gen, n, N, current, emit);
  } else if (n === 1) {
    // The last one: uniform over the N records left (vPrime is U^(1/1) here).
    const S = Math.min(Math.floor(N * vPrime), N - 1);
    emit(current + S + 1);
  }
}

/** Vitter's Algorithm A: O(N) sequential sampling of n of the N records after `current`. */
function sampleAlgorithmA(
  gen: Generator,
  n: number,
  N: number,
  current: number,
  emit: (position: number) => void,
): void {
  let top = N - n;
  while (n >= 2) {
    const V = uniformPositive(gen);
    let S = 0;
    let quot = top / N;
    while (quot > V) {
      S++;
      top--;
      N--;
      quot = (quot * top) / N;
    }
    current += S + 1;
    emit(current);
    N--;
    n--;
  }
  const S = Math.min(Math.floor(N * gen.uniform()), N - 1);
  emit(current + S + 1);
}
