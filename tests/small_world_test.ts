import assert from "node:assert/strict";
import {
  SMALL_WORLD_TOLERANCE,
  smallWorldConnectivity,
  smallWorldDistance,
  smallWorldPattern,
} from "../lib/sparsity/small_world.ts";
import { assertThrows } from "./_nn_reference.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { randn } from "../lib/creation.ts";

/** Brute-force reference over every (input, output) pair: P = (d + 1)^(−λ). */
function pairProbabilities(nIn: number, nOut: number, lambda: number) {
  const p = new Float64Array(nIn * nOut); // [b * nIn + a]
  let sum = 0;
  for (let b = 0; b < nOut; b++) {
    for (let a = 0; a < nIn; a++) {
      // Positions as the seed places them: 1-based, the smaller layer centred.
      const offset = Math.abs(nOut - nIn) / 2;
      const posIn = a + 1 + (nOut > nIn ? offset : 0);
      const posOut = b + 1 + (nIn > nOut ? offset : 0);
      const d = Math.abs(posIn - posOut);
      assert.equal(d, smallWorldDistance(a, b, nIn, nOut));
      const v = Math.min(1, (d + 1) ** -lambda);
      p[b * nIn + a] = v;
      sum += v;
    }
  }
  return { p, sum };
}

function assertValidCsr(rowPtr: Int32Array, colIdx: Int32Array, nIn: number, nOut: number) {
  assert.equal(rowPtr.length, nOut + 1);
  assert.equal(rowPtr[0], 0);
  assert.equal(rowPtr[nOut], colIdx.length);
  for (let b = 0; b < nOut; b++) {
    assert.ok(rowPtr[b] <= rowPtr[b + 1], `rowPtr not monotone at ${b}`);
    for (let e = rowPtr[b]; e < rowPtr[b + 1]; e++) {
      assert.ok(colIdx[e] >= 0 && colIdx[e] < nIn, `column ${colIdx[e]} out of range`);
      if (e > rowPtr[b]) assert.ok(colIdx[e] > colIdx[e - 1], `row ${b} not strictly ascending`);
    }
  }
}

/**
 * Compares the drawn pattern with the model: per distance bucket (doubling widths) the observed
 * count must be within 5 standard deviations of Σ P, and the chi-square over the buckets below a
 * generous bound.
 */
function assertMatchesModel(nIn: number, nOut: number, sparsity: number, seed: number) {
  const pattern = smallWorldPattern(nIn, nOut, sparsity, { seed });
  const { rowPtr, colIdx, lambda } = pattern;
  assertValidCsr(rowPtr, colIdx, nIn, nOut);
  const { p, sum } = pairProbabilities(nIn, nOut, lambda);
  // The closed form of Σ P matches brute force, and it is within 10 of the target.
  assert.ok(Math.abs(pattern.expectedNnz - sum) < 1e-6 * sum, `${pattern.expectedNnz} vs ${sum}`);
  assert.equal(pattern.targetNnz, Math.round((1 - sparsity) * nIn * nOut));
  assert.ok(Math.abs(sum - pattern.targetNnz) <= SMALL_WORLD_TOLERANCE);

  const bucketOf = (d: number) => (d < 1 ? 0 : 1 + Math.floor(Math.log2(d)));
  const nBuckets = bucketOf((nIn + nOut) / 2) + 1;
  const expected = new Float64Array(nBuckets);
  const variance = new Float64Array(nBuckets);
  const observed = new Float64Array(nBuckets);
  for (let b = 0; b < nOut; b++) {
    for (let a = 0; a < nIn; a++) {
      const v = p[b * nIn + a];
      const k = bucketOf(smallWorldDistance(a, b, nIn, nOut));
      expected[k] += v;
      variance[k] += v * (1 - v);
    }
    for (let e = rowPtr[b]; e < rowPtr[b + 1]; e++) {
      observed[bucketOf(smallWorldDistance(colIdx[e], b, nIn, nOut))]++;
    }
  }
  // Total edge count: within 5 standard deviations of Σ P (hence of the target r).
  const totalSd = Math.sqrt(variance.reduce((x, y) => x + y, 0));
  assert.ok(
    Math.abs(colIdx.length - sum) <= 5 * totalSd + 1,
    `nnz ${colIdx.length}, expected ${sum} ± ${totalSd}`,
  );
  let chi2 = 0;
  let dof = 0;
  for (let k = 0; k < nBuckets; k++) {
    if (variance[k] === 0) {
      assert.equal(observed[k], expected[k], `bucket ${k} is deterministic`);
      continue;
    }
    const sd = Math.sqrt(variance[k]);
    assert.ok(
      Math.abs(observed[k] - expected[k]) <= 5 * sd + 1,
      `distance bucket ${k}: observed ${observed[k]}, expected ${expected[k]} ± ${sd}`,
    );
    chi2 += (observed[k] - expected[k]) ** 2 / variance[k];
    dof++;
  }
  assert.ok(chi2 <= dof + 6 * Math.sqrt(2 * dof) + 10, `chi-square ${chi2} over ${dof} buckets`);
  return pattern;
}

Deno.test("small-world: square layer follows P(d) = (d + 1)^-λ per distance", () => {
  const pattern = assertMatchesModel(300, 300, 0.9, 1);
  assert.ok(pattern.lambda > 0 && pattern.lambda < 5);
});

Deno.test("small-world: more outputs than inputs (smaller layer centred)", () => {
  assertMatchesModel(120, 400, 0.85, 2);
});

Deno.test("small-world: more inputs than outputs, odd difference (half-integer distances)", () => {
  assertMatchesModel(401, 150, 0.9, 3);
});

Deno.test("small-world: tiny layers where the band is dense", () => {
  assertMatchesModel(7, 30, 0.5, 4);
  assertMatchesModel(30, 7, 0.5, 5);
});

Deno.test("small-world: the band sits on the centred diagonal", () => {
  // 100 inputs, 300 outputs: output b is nearest to input b - 100 (offset 100).
  const { rowPtr, colIdx } = smallWorldPattern(100, 300, 0.97, { seed: 6 });
  let near = 0;
  for (let b = 0; b < 300; b++) {
    for (let e = rowPtr[b]; e < rowPtr[b + 1]; e++) {
      if (Math.abs(colIdx[e] - (b - 100)) <= 5) near++;
    }
  }
  // The diagonal ±5 band holds 11 · 100 of 30000 pairs (3.7 %) but most of the connections.
  assert.ok(near / colIdx.length > 0.3, `only ${near} of ${colIdx.length} near the diagonal`);
});

Deno.test("small-world: same seed, same pattern; other seed, other pattern", () => {
  const a = smallWorldConnectivity(200, 500, 0.95, { seed: 42 });
  const b = smallWorldConnectivity(200, 500, 0.95, { seed: 42 });
  const c = smallWorldConnectivity(200, 500, 0.95, { seed: 43 });
  assert.deepEqual(a.shape, b.shape);
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
});

Deno.test("small-world: connectivity is (2, nnz), outputs then inputs, in CSR order", () => {
  const pattern = smallWorldPattern(50, 80, 0.8, { seed: 7 });
  const indices = smallWorldConnectivity(50, 80, 0.8, { seed: 7 });
  const nnz = pattern.colIdx.length;
  assert.deepEqual(indices.shape, [2, nnz]);
  for (let b = 0; b < 80; b++) {
    for (let e = pattern.rowPtr[b]; e < pattern.rowPtr[b + 1]; e++) {
      assert.equal(indices.data[e], b);
      assert.equal(indices.data[nnz + e], pattern.colIdx[e]);
    }
  }
});

Deno.test("small-world: wide layer builds in O(nnz) with the right count", () => {
  // 200k x 300k = 6e10 pairs: a dense probability matrix could never be built.
  const nIn = 200_000, nOut = 300_000, sparsity = 0.99998;
  const pattern = smallWorldPattern(nIn, nOut, sparsity, { seed: 8 });
  const r = pattern.targetNnz;
  assert.equal(r, 1_200_000);
  assert.ok(Math.abs(pattern.colIdx.length - r) <= 5 * Math.sqrt(r) + SMALL_WORLD_TOLERANCE);
  assertValidCsr(pattern.rowPtr, pattern.colIdx, nIn, nOut);
});

Deno.test("small-world: bad arguments are clear errors", () => {
  assertThrows(() => smallWorldPattern(100, 100, 1), RangeError, /sparsity must be in \[0, 1\)/);
  assertThrows(() => smallWorldPattern(100, 100, -0.1), RangeError, /sparsity must be in/);
  assertThrows(() => smallWorldPattern(100, 100, NaN), RangeError, /sparsity must be in/);
  assertThrows(() => smallWorldPattern(0, 100, 0.5), RangeError, /inFeatures must be in/);
  assertThrows(() => smallWorldPattern(10, 2.5, 0.5), TypeError, /outFeatures must be an integer/);
  // Too sparse: nnz must exceed min(in, out) (here 50 connections for 100 outputs).
  assertThrows(
    () => smallWorldPattern(100, 100, 0.995),
    RangeError,
    /too high for small-world connectivity.*more than min\(inFeatures, outFeatures\) = 100.*sparsity must be at most 0\.9899/,
  );
  // The limit it names works.
  assert.ok(smallWorldPattern(100, 100, 0.9899, { seed: 1 }).colIdx.length > 0);
  // Too dense: λ cannot go below 1e-5.
  assertThrows(
    () => smallWorldPattern(1000, 1000, 0),
    RangeError,
    /too low for small-world connectivity.*sparsity must be at least 0\.000045/,
  );
  assert.ok(smallWorldPattern(1000, 1000, 0.000045, { seed: 1 }).colIdx.length > 999_000);
  assertThrows(() => smallWorldPattern(1, 1, 0.5), RangeError, /cannot build a 1 → 1 layer/);
});

Deno.test("small-world: SparseLinear({ smallWorld: true }) uses the pattern", () => {
  const layer = new SparseLinear(60, 90, { smallWorld: true, sparsity: 0.8, seed: 11 });
  const expected = smallWorldConnectivity(60, 90, 0.8, { seed: 11 });
  assert.deepEqual(layer.indices.shape, expected.shape);
  assert.deepEqual(layer.indices.data, expected.data);
  assert.equal(layer.weights.shape[0], expected.shape[1]);
  const y = layer.forward(randn([3, 60], { seed: 1 }));
  assert.deepEqual(y.shape, [3, 90]);
  assertThrows(
    () => new SparseLinear(4, 4, { smallWorld: true, connectivity: [[0], [0]] }),
    TypeError,
    /either smallWorld: true or a user-defined connectivity, not both/,
  );
  assertThrows(
    () => new SparseLinear(100, 100, { smallWorld: true, sparsity: 0.999 }),
    RangeError,
    /too high for small-world connectivity/,
  );
});

Deno.test("small-world: a connection count past int32 is refused before any O(width) work", () => {
  // 1e8 × 1e8 at 99 %: 1e14 connections. The distance classes alone would take ~4.8 GB (the
  // process was killed for memory before the count was checked).
  for (
    const make of [
      () => smallWorldPattern(1e8, 1e8, 0.99),
      () => new SparseLinear(1e8, 1e8, { sparsity: 0.99, smallWorld: true }),
    ]
  ) {
    assertThrows(make, RangeError, /about 100000000000000 connections, more than the 2\^31 - 1/);
  }
});
