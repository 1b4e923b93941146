/**
 * Small-world connectivity for a sparse layer, after SparseLinear's write-up "Generating Very
 * Wide Small-World Bipartite Networks".
 *
 * Inputs and outputs are nodes on a line, 1-based, with the smaller layer centred against the
 * larger one (the seed implementation's positions): input `a` (0-based) sits at
 * `a + 1 + offset·[out > in]`, output `b` at `b + 1 + offset·[in > out]`, with
 * `offset = |out − in| / 2`. The distance of a pair is `d = |pos(a) − pos(b)|
 * = |a − b + (out − in) / 2|` (a half-integer when `out − in` is odd), and the pair is connected
 * independently with probability `P = α·(d + β)^(−λ)`, α = β = 1. λ is found by bisection on
 * [1e-5, 5], starting at 1, until `|Σ P − r| ≤ 10` for the target `r = round((1 − s)·in·out)`
 * connections.
 *
 * The write-up states the distance as `d = ||i − j| − ½|out − in||` on 1-based labels. For
 * in = out the two are the same; for in ≠ out they agree on the side of the diagonal where the
 * smaller layer is centred, but the written form also puts a second, mirrored band where
 * `i − j` has the other sign (784 → 2000: inputs 608 and up would connect to outputs ~608 below
 * them too). The seed's code, whose models and results this library reproduces, draws the one
 * band of the centred positions, and so does this module.
 *
 * The seed materialised `in × out` probability matrices (in chunks of 1e8). Here P depends only on
 * the diagonal `t = a − b`, so Σ P is a sum over the `in + out − 1` diagonals weighted by how
 * many pairs each holds, and each diagonal is sampled with geometric skips (the gap to the next
 * edge on a diagonal of constant p is Geometric(p)). Time and memory are O(nnz + in + out): a
 * 1,000,000 × 1,000,000 layer at 99.999 % sparsity (10 M connections) builds in about a second.
 *
 * Two differences from the seed, both deliberate: λ is solved once for the whole layer (the seed
 * solved it per chunk against `nnz / chunks`, which skews layers above 1e8 entries, and added the
 * chunk offset to the wrong axis when `out > in`), and targets the method cannot reach fail with
 * a `RangeError` stating the reachable sparsity range instead of an assertion after 1000
 * iterations.
 * @module
 */
import { type Generator, generatorFrom } from "../random.ts";
import { IndexTensor } from "../tensor.ts";
import { MAX_INT32 } from "./pattern.ts";
import { checkSparsity } from "./random.ts";
import { checkOptionKeys, numberOption } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Lower end of the λ search interval (the seed's `L`). */
export const SMALL_WORLD_LAMBDA_MIN = 1e-5;
/** Upper end of the λ search interval (the seed's `U`). */
export const SMALL_WORLD_LAMBDA_MAX = 5;
/** The bisection stops when the expected edge count is this close to the target. */
export const SMALL_WORLD_TOLERANCE = 10;
const MAX_BISECTION_STEPS = 1000;

/** Options of the small-world builders. */
export interface SmallWorldOptions {
  /** Seed or generator; the same seed gives the same connectivity. Default: a random seed. */
  seed?: number | Generator;
}

/** A small-world pattern in CSR form over output rows. */
export interface SmallWorldPattern {
  /** Row pointers over outputs, `outFeatures + 1` entries. */
  rowPtr: Int32Array;
  /** Input index of each connection; ascending within each output row. */
  colIdx: Int32Array;
  /** The exponent λ of `P = (d + 1)^(−λ)` found by the bisection. */
  lambda: number;
  /** The expected number of connections at λ, Σ P (within 10 of the target). */
  expectedNnz: number;
  /** The target number of connections, `round((1 − sparsity)·inFeatures·outFeatures)`. */
  targetNnz: number;
}

function checkFeatures(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `${name} must be an integer, got ${typeof value === "number" ? value : describeValue(value)}`,
    );
  }
  if (value < 1 || value > MAX_INT32) {
    throw new RangeError(`${name} must be in [1, 2^31 - 1], got ${value}`);
  }
  return value;
}

/**
 * The distance of input `a` and output `b` (both 0-based) on the small-world line:
 * `|a − b + (outFeatures − inFeatures) / 2|`.
 */
export function smallWorldDistance(
  a: number,
  b: number,
  inFeatures: number,
  outFeatures: number,
): number {
  for (
    const [name, v] of [["a", a], ["b", b], ["inFeatures", inFeatures], [
      "outFeatures",
      outFeatures,
    ]]
  ) {
    numberOption(v, `smallWorldDistance() ${name}`);
  }
  return Math.abs(a - b + (outFeatures - inFeatures) / 2);
}

/**
 * The distance classes of a layer: distinct distances `d ≥ 0` (ascending, step 1) and how many
 * (input, output) pairs lie at each. Both diagonals `t` and `−t − (out − in)` have the same
 * distance and the same pair count, so each class holds one or two diagonals.
 */
function distanceClasses(
  nIn: number,
  nOut: number,
): { distance: Float64Array; pairs: Float64Array } {
  const c = (nOut - nIn) / 2;
  // Diagonals t = a − b run over [−(nOut − 1), nIn − 1]; t + c is symmetric about 0.
  const tFirst = Math.ceil(-c); // smallest t with t + c >= 0
  const tLast = nIn - 1;
  const n = Math.max(0, tLast - tFirst + 1);
  const distance = new Float64Array(n);
  const pairs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = tFirst + i;
    const d = t + c;
    const count = diagonalLength(t, nIn, nOut);
    distance[i] = d;
    pairs[i] = d === 0 ? count : 2 * count;
  }
  return { distance, pairs };
}

/** Number of (a, b) pairs with a − b = t. */
function diagonalLength(t: number, nIn: number, nOut: number): number {
  return Math.max(0, Math.min(nIn, nOut + t) - Math.max(0, t));
}

/** Σ P over all pairs at exponent λ, given log(d + 1) per class. */
function expectedEdges(lambda: number, logD1: Float64Array, pairs: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < logD1.length; i++) sum += pairs[i] * Math.exp(-lambda * logD1[i]);
  return sum;
}

/**
 * `1 − nnz / total` written with enough decimals to resolve one connection, rounded towards the
 * allowed side (`"down"` for an upper bound, `"up"` for a lower bound) so the printed value works.
 */
function sparsityBound(nnz: number, total: number, direction: "down" | "up"): string {
  const decimals = Math.min(20, Math.ceil(Math.log10(total)) + 1);
  const scale = 10 ** decimals;
  const exact = 1 - nnz / total;
  const rounded = (direction === "down" ? Math.floor(exact * scale) : Math.ceil(exact * scale)) /
    scale;
  return rounded.toFixed(decimals).replace(/\.?0+$/, "");
}

/**
 * Finds λ by the seed's bisection: start at 1 in [1e-5, 5]; when Σ P is below the target, move
 * towards the lower end, otherwise towards the upper end; stop when `|Σ P − target| ≤ 10`.
 * Throws a `RangeError` naming the reachable sparsity range when the target is out of reach.
 */
function solveLambda(
  nIn: number,
  nOut: number,
  sparsity: number,
  target: number,
  logD1: Float64Array,
  pairs: Float64Array,
): { lambda: number; expected: number } {
  const total = nIn * nOut;
  const minNnz = Math.min(nIn, nOut);
  const fewest = expectedEdges(SMALL_WORLD_LAMBDA_MAX, logD1, pairs);
  const most = expectedEdges(SMALL_WORLD_LAMBDA_MIN, logD1, pairs);
  // The seed's requirement (nnz > min(in, out)) plus what λ ≤ 5 can actually reach.
  const lowestNnz = Math.max(minNnz + 1, Math.ceil(fewest - SMALL_WORLD_TOLERANCE));
  const highestNnz = Math.min(total, Math.floor(most + SMALL_WORLD_TOLERANCE));
  const layer = `a ${nIn} → ${nOut} layer`;
  if (lowestNnz > highestNnz) {
    throw new RangeError(
      `Small-world connectivity cannot build ${layer}: the method needs more than ` +
        `min(inFeatures, outFeatures) = ${minNnz} connections, and this layer can hold at most ` +
        `about ${Math.floor(most)}`,
    );
  }
  if (target < lowestNnz) {
    throw new RangeError(
      `sparsity ${sparsity} is too high for small-world connectivity of ${layer}: it asks for ` +
        `${target} connections, but the method needs at least ${lowestNnz} (more than ` +
        `min(inFeatures, outFeatures) = ${minNnz}, and λ ≤ ${SMALL_WORLD_LAMBDA_MAX} keeps about ` +
        `${Math.round(fewest)}); sparsity must be at most ${
          sparsityBound(lowestNnz, total, "down")
        }`,
    );
  }
  if (target > highestNnz) {
    throw new RangeError(
      `sparsity ${sparsity} is too low for small-world connectivity of ${layer}: it asks for ` +
        `${target} connections, but λ ≥ ${SMALL_WORLD_LAMBDA_MIN} gives at most about ` +
        `${Math.floor(most)}; sparsity must be at least ${sparsityBound(highestNnz, total, "up")}`,
    );
  }
  let low = SMALL_WORLD_LAMBDA_MIN;
  let high = SMALL_WORLD_LAMBDA_MAX;
  let lambda = 1;
  let expected = expectedEdges(lambda, logD1, pairs);
  for (let step = 0; Math.abs(expected - target) > SMALL_WORLD_TOLERANCE; step++) {
    if (step >= MAX_BISECTION_STEPS) {
      throw new RangeError(
        `No small-world exponent found for ${layer} at sparsity ${sparsity} after ` +
          `${MAX_BISECTION_STEPS} bisection steps (closest: ${Math.round(expected)} expected ` +
          `connections for a target of ${target}); try a slightly different sparsity`,
      );
    }
    if (expected < target) {
      high = lambda;
      lambda = (lambda + low) / 2;
    } else {
      low = lambda;
      lambda = (lambda + high) / 2;
    }
    expected = expectedEdges(lambda, logD1, pairs);
  }
  return { lambda, expected };
}

/** The error for a connection count past int32 indices. */
function tooManyConnections(sparsity: number, connections: number): RangeError {
  return new RangeError(
    `sparsity ${sparsity} asks for about ${Math.round(connections)} connections, more than the ` +
      "2^31 - 1 that int32 indices can address; raise the sparsity",
  );
}

/**
 * Builds a small-world pattern in CSR form (rows = outputs, columns = inputs, ascending).
 *
 * @param inFeatures number of inputs (columns).
 * @param outFeatures number of outputs (rows).
 * @param sparsity fraction of absent connections, in [0, 1); the expected connection count is
 *   `round((1 − sparsity)·inFeatures·outFeatures)` (within 10), the drawn count varies around it.
 * @throws RangeError when the sparsity is outside [0, 1) or outside what the method can reach
 *   (it needs more than `min(inFeatures, outFeatures)` connections); the message gives the limit.
 */
export function smallWorldPattern(
  inFeatures: number,
  outFeatures: number,
  sparsity: number,
  options: SmallWorldOptions = {},
): SmallWorldPattern {
  checkOptionKeys(options, ["seed"], "smallWorldPattern()");
  const nIn = checkFeatures(inFeatures, "inFeatures");
  const nOut = checkFeatures(outFeatures, "outFeatures");
  const s = checkSparsity(sparsity);
  const target = Math.round((1 - s) * nIn * nOut);
  // Before the O(in + out) distance classes: a count int32 cannot index fails at once.
  if (target > MAX_INT32) throw tooManyConnections(s, target);

  const classes = distanceClasses(nIn, nOut);
  const logD1 = classes.distance.map((d) => Math.log1p(d));
  const { lambda, expected } = solveLambda(nIn, nOut, s, target, logD1, classes.pairs);
  if (expected + 8 * Math.sqrt(expected) + 64 > MAX_INT32) {
    throw tooManyConnections(s, expected);
  }

  const rng = generatorFrom(options.seed);
  const c = (nOut - nIn) / 2;
  const tMin = -(nOut - 1);
  const nDiagonals = nIn + nOut - 1;
  // Pass 1: sample every diagonal t = a − b in increasing t, storing the input index a of each
  // edge. Increasing t means increasing a within every output row b = a − t, so the stable
  // counting sort of pass 2 leaves each row's columns ascending.
  let cols: Int32Array = new Int32Array(Math.ceil(expected + 8 * Math.sqrt(expected) + 64));
  const diagonalStart = new Int32Array(nDiagonals + 1);
  let nnz = 0;
  for (let i = 0; i < nDiagonals; i++) {
    const t = tMin + i;
    diagonalStart[i] = nnz;
    const length = diagonalLength(t, nIn, nOut);
    const p = Math.min(1, Math.exp(-lambda * Math.log1p(Math.abs(t + c))));
    if (!(p > 0) || length === 0) continue;
    const aFirst = Math.max(0, t);
    if (p >= 1) {
      if (nnz + length > cols.length) cols = grow(cols, nnz + length);
      for (let k = 0; k < length; k++) cols[nnz++] = aFirst + k;
      continue;
    }
    // Gap before the next edge ~ Geometric(p): floor(log U / log(1 − p)), U in (0, 1].
    const logQ = Math.log1p(-p);
    let k = Math.floor(Math.log(1 - rng.uniform()) / logQ);
    while (k < length) {
      if (nnz === cols.length) cols = grow(cols, nnz + 1);
      cols[nnz++] = aFirst + k;
      k += 1 + Math.floor(Math.log(1 - rng.uniform()) / logQ);
    }
  }
  diagonalStart[nDiagonals] = nnz;
  if (nnz > MAX_INT32) throw new RangeError(`Drew ${nnz} connections, more than int32 allows`);

  // Pass 2: counting sort by output row b = a − t (stable).
  const rowPtr = new Int32Array(nOut + 1);
  for (let i = 0; i < nDiagonals; i++) {
    const t = tMin + i;
    for (let e = diagonalStart[i]; e < diagonalStart[i + 1]; e++) rowPtr[cols[e] - t + 1]++;
  }
  for (let b = 0; b < nOut; b++) rowPtr[b + 1] += rowPtr[b];
  const next = rowPtr.slice(0, nOut);
  const colIdx = new Int32Array(nnz);
  for (let i = 0; i < nDiagonals; i++) {
    const t = tMin + i;
    for (let e = diagonalStart[i]; e < diagonalStart[i + 1]; e++) {
      const a = cols[e];
      colIdx[next[a - t]++] = a;
    }
  }
  return { rowPtr, colIdx, lambda, expectedNnz: expected, targetNnz: target };
}

function grow(array: Int32Array, needed: number): Int32Array {
  const bigger = new Int32Array(
    Math.min(MAX_INT32, Math.max(needed, Math.ceil(array.length * 1.5))),
  );
  bigger.set(array);
  return bigger;
}

/**
 * Small-world connectivity as the (2, nnz) index layout SparseLinear takes: row 0 holds the
 * output index and row 1 the input index of each connection, in CSR order (by output, then
 * input, no duplicates).
 *
 * @example
 * ```ts
 * import { smallWorldConnectivity } from "@sparselinear/sparselinear";
 * const indices = smallWorldConnectivity(784, 2000, 0.99, { seed: 1 });
 * console.log(indices.shape[0]); // 2
 * ```
 * @throws RangeError when the sparsity is outside [0, 1) or too high/low for the method; the
 *   message gives the reachable limit.
 */
export function smallWorldConnectivity(
  inFeatures: number,
  outFeatures: number,
  sparsity: number,
  options: SmallWorldOptions = {},
): IndexTensor {
  checkOptionKeys(options, ["seed"], "smallWorldConnectivity()");
  const { rowPtr, colIdx } = smallWorldPattern(inFeatures, outFeatures, sparsity, options);
  const nnz = colIdx.length;
  const data = new Int32Array(2 * nnz);
  for (let b = 0; b < rowPtr.length - 1; b++) data.fill(b, rowPtr[b], rowPtr[b + 1]);
  data.set(colIdx, nnz);
  return new IndexTensor(data, [2, nnz]);
}
