/**
 * Connectivity builders: random (exact count, uniform, sorted, reproducible, any width) and
 * user-defined (every accepted form, every rejected entry named), and the CSR/CSC pattern.
 */
import assert from "node:assert/strict";
import { NativeError, ShapeError } from "../lib/errors.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { Generator } from "../lib/random.ts";
import { SparsePattern } from "../lib/sparsity/pattern.ts";
import {
  randomConnectionCount,
  randomConnectivity,
  sampleSortedPositions,
} from "../lib/sparsity/random.ts";
import { checkConnectivity, type Connectivity, userConnectivity } from "../lib/sparsity/user.ts";
import { IndexTensor } from "../lib/tensor.ts";
import { assertThrows } from "./_nn_reference.ts";

/** Checks CSR invariants and the CSC view against the CSR arrays. */
function checkPattern(p: SparsePattern): void {
  const rp = p.hostRowPtr, ci = p.hostColIdx;
  assert.equal(rp[0], 0);
  assert.equal(rp[p.nRows], p.nnz);
  for (let o = 0; o < p.nRows; o++) {
    assert.ok(rp[o] <= rp[o + 1]);
    for (let k = rp[o]; k < rp[o + 1]; k++) {
      assert.ok(ci[k] >= 0 && ci[k] < p.nCols);
      if (k > rp[o]) assert.ok(ci[k] > ci[k - 1], "columns sorted and unique within a row");
    }
  }
  const colPtr = p.colPtr.toHost(), rowIdx = p.rowIdx.toHost(), map = p.cscToCsr.toHost();
  const rows = p.cooRows();
  const seen = new Uint8Array(p.nnz);
  for (let i = 0; i < p.nCols; i++) {
    for (let k = colPtr[i]; k < colPtr[i + 1]; k++) {
      const pos = map[k];
      assert.equal(ci[pos], i, "CSC entry points at a CSR connection of its column");
      assert.equal(rows[pos], rowIdx[k]);
      seen[pos]++;
    }
  }
  assert.ok(seen.every((v) => v === 1), "every connection appears once in the CSC view");
}

Deno.test("randomConnectivity gives exactly nnz sorted distinct connections", () => {
  for (
    const [nIn, nOut, nnz] of [
      [7, 5, 1],
      [7, 5, 35], // every position (Algorithm A)
      [7, 5, 34],
      [100, 100, 50], // Algorithm D
      [100, 100, 5000],
      [1, 1000, 3],
      [1000, 1, 999],
    ]
  ) {
    const p = randomConnectivity(nIn, nOut, nnz, { seed: 3 });
    assert.equal(p.nnz, nnz);
    assert.equal(p.nRows, nOut);
    assert.equal(p.nCols, nIn);
    checkPattern(p);
  }
});

Deno.test("randomConnectivity is reproducible from the seed", () => {
  const a = randomConnectivity(300, 200, 600, { seed: 9 });
  const b = randomConnectivity(300, 200, 600, { seed: 9 });
  const c = randomConnectivity(300, 200, 600, { seed: 10 });
  assert.deepEqual(a.hostColIdx, b.hostColIdx);
  assert.deepEqual(a.hostRowPtr, b.hostRowPtr);
  assert.notDeepEqual(a.hostColIdx, c.hostColIdx);
});

Deno.test("sampleSortedPositions is uniform: every position is picked with probability n/N", () => {
  // Two regimes: n/N < 1/13 (Algorithm D) and n/N > 1/13 (Algorithm A).
  for (const [N, n, trials] of [[1000, 10, 4000], [60, 20, 3000]]) {
    const gen = new Generator(12345);
    const counts = new Float64Array(N);
    const pairCounts = new Float64Array(N - 1); // adjacent pairs: checks joint structure
    for (let t = 0; t < trials; t++) {
      const picked: number[] = [];
      sampleSortedPositions(gen, n, N, (p) => picked.push(p));
      assert.equal(picked.length, n);
      for (let j = 0; j < n; j++) {
        assert.ok(picked[j] >= 0 && picked[j] < N);
        if (j > 0) assert.ok(picked[j] > picked[j - 1]);
        counts[picked[j]]++;
        if (j > 0 && picked[j] === picked[j - 1] + 1) pairCounts[picked[j - 1]]++;
      }
    }
    const p = n / N;
    const mean = trials * p;
    const sd = Math.sqrt(trials * p * (1 - p));
    for (let i = 0; i < N; i++) {
      assert.ok(Math.abs(counts[i] - mean) < 5 * sd, `N=${N} n=${n}: position ${i} ${counts[i]}`);
    }
    // P(i and i+1 both picked) = n(n-1) / (N(N-1)), summed over all adjacent pairs.
    const pairP = (n * (n - 1)) / (N * (N - 1));
    const pairTotal = pairCounts.reduce((s, v) => s + v, 0);
    const pairMean = trials * (N - 1) * pairP;
    assert.ok(
      Math.abs(pairTotal - pairMean) < 5 * Math.sqrt(pairMean),
      `adjacent pairs ${pairTotal}, expected about ${pairMean}`,
    );
  }
});

Deno.test("random connectivity works at 1,000,000 × 1,000,000 in O(nnz) memory", () => {
  // 1e12 positions; 100 000 connections keep the test fast (the 10 M case is in the bench).
  const p = randomConnectivity(1_000_000, 1_000_000, 100_000, { seed: 1 });
  assert.equal(p.nnz, 100_000);
  assert.equal(p.hostRowPtr.length, 1_000_001);
  // CSR only until something asks for the CSC view (checkPattern does).
  assert.equal(p.hasCscView, false);
  assert.equal(p.memoryBytes(), 4 * (1_000_001 + 100_000));
  checkPattern(p);
  // Connections spread over the whole matrix, not just its start.
  const rows = p.cooRows();
  assert.ok(rows[0] < 50_000 && rows[p.nnz - 1] > 950_000);
  assert.equal(p.memoryBytes(), 4 * (1_000_001 + 100_000 + 1_000_001 + 200_000));
});

Deno.test("randomConnectionCount rounds (1 - s)·in·out and rejects what cannot be built", () => {
  // Ties round to even, as the seed's Python round(): 4.5 -> 4, 10.5 -> 10, 5.5 -> 6, 0.5 -> 0.
  assert.equal(randomConnectionCount(3, 3, 0.5), 4);
  assert.equal(randomConnectionCount(3, 7, 0.5), 10);
  assert.equal(randomConnectionCount(11, 1, 0.5), 6);
  assertThrows(() => randomConnectionCount(2, 2, 0.875), RangeError, /= 0 connections/);
  assert.equal(randomConnectionCount(784, 1000, 0.99), 7840);
  assert.equal(randomConnectionCount(1_000_000, 1_000_000, 0.99999), 10_000_000);
  assert.equal(randomConnectionCount(10, 10, 0), 100);
  assertThrows(() => randomConnectionCount(10, 10, 0.996), RangeError, /= 0 connections/);
  assertThrows(() => randomConnectionCount(100000, 100000, 0.5), RangeError, /below 2\^31/);
  assertThrows(() => randomConnectionCount(10, 10, 1), RangeError, /\[0, 1\)/);
  assertThrows(() => randomConnectivity(10, 10, 101), RangeError, /nnz must be an integer/);
  assertThrows(() => randomConnectivity(10, 10, 0), RangeError, /nnz must be an integer/);
  assertThrows(
    () => randomConnectivity(2 ** 30, 2 ** 30, 10),
    RangeError,
    /in · out must be at most 2\^53 - 1/,
  );
});

Deno.test("user connectivity accepts IndexTensor, nested arrays, Int32Array and BigInt64Array", () => {
  const outputs = [2, 0, 1, 0, 2];
  const inputs = [3, 1, 0, 0, 1];
  const forms: Connectivity[] = [
    [outputs, inputs],
    [Int32Array.from(outputs), Int32Array.from(inputs)],
    Int32Array.from([...outputs, ...inputs]),
    BigInt64Array.from([...outputs, ...inputs].map(BigInt)),
    new IndexTensor(Int32Array.from([...outputs, ...inputs]), [2, 5]),
  ];
  for (const form of forms) {
    const { pattern, perm } = userConnectivity(form, 4, 3);
    checkPattern(pattern);
    assert.deepEqual([...pattern.hostRowPtr], [0, 2, 3, 5]);
    assert.deepEqual([...pattern.hostColIdx], [0, 1, 0, 1, 3]);
    // perm maps each CSR position back to the user's connection.
    const rows = pattern.cooRows();
    for (let p = 0; p < 5; p++) {
      assert.equal(outputs[perm[p]], rows[p]);
      assert.equal(inputs[perm[p]], pattern.hostColIdx[p]);
    }
  }
});

Deno.test("user connectivity names the first bad entry, its value and what is allowed", () => {
  const check = (c: unknown) => () => checkConnectivity(c as Connectivity, 5, 4);
  assertThrows(
    check([[0, 1, 4], [0, 1, 2]]),
    RangeError,
    /^connectivity\[0\]\[2\] \(output index of connection 2\) = 4 is outside \[0, 4\) \(outFeatures = 4\)$/,
  );
  assertThrows(
    check([[0, 1, 2], [0, -1, 2]]),
    RangeError,
    /connectivity\[1\]\[1\] \(input index of connection 1\) = -1 is outside \[0, 5\) \(inFeatures = 5\)/,
  );
  assertThrows(
    check([[0, 1.5], [0, 1]]),
    RangeError,
    /connectivity\[0\]\[1\] .* = 1.5 is not an integer; indices must be integers in \[0, 4\)/,
  );
  assertThrows(check([[0, NaN], [0, 1]]), RangeError, /= NaN is not an integer/);
  assertThrows(
    check([[0, "1"], [0, 1]]),
    TypeError,
    /connectivity\[0\]\[1\] .* must be an integer/,
  );
  assertThrows(
    check(BigInt64Array.from([0n, 2n ** 40n, 0n, 1n])),
    RangeError,
    /connectivity\[0\]\[1\] .* = 1099511627776 is outside \[0, 4\)/,
  );
  assertThrows(
    check([[0, 1, 2, 1], [0, 3, 2, 3]]),
    RangeError,
    /^connectivity connection 3 \(output 1, input 3\) repeats connection 1; every \(output, input\) pair may appear once$/,
  );
  // The first bad entry wins, whether it is a duplicate or out of range.
  assertThrows(check([[0, 0, 9], [1, 1, 0]]), RangeError, /connection 1 .* repeats connection 0/);
  assertThrows(check([[0, 9, 0], [1, 1, 1]]), RangeError, /connectivity\[0\]\[1\] .* = 9/);
  // Shapes.
  assertThrows(check([[0], [0], [0]]), ShapeError, /shape \(2, nnz\).*array of 3 rows/);
  assertThrows(check([[0, 1], [0]]), ShapeError, /got 2 outputs and 1 inputs/);
  assertThrows(check(Int32Array.from([0, 1, 2])), ShapeError, /2 · nnz entries.*got 3/);
  assertThrows(
    check(new IndexTensor(new Int32Array(6), [3, 2])),
    ShapeError,
    /must have shape \[2, nnz\], got \[3, 2\]/,
  );
  assertThrows(check([[], []]), ShapeError, /holds no connections/);
  assertThrows(check(new Int32Array(0)), ShapeError, /holds no connections/);
  assertThrows(check("0,1"), TypeError, /must be an IndexTensor .* got the string "0,1"/);
  assertThrows(check([1, 2]), TypeError, /two arrays of integers/);
});

Deno.test("SparseLinear with user connectivity: a rejected call leaves no layer half-built", () => {
  let layer: SparseLinear | undefined;
  assertThrows(
    () => layer = new SparseLinear(3, 2, { connectivity: [[0, 0], [2, 2]] }),
    RangeError,
    /repeats connection 0/,
  );
  assert.equal(layer, undefined);
  const big = BigInt64Array.from([1n, 0n, 2n, 0n]);
  const ok = new SparseLinear(3, 2, { connectivity: big, seed: 1 });
  assert.deepEqual([...ok.indices.data], [0, 1, 0, 2]);
});

Deno.test("SparsePattern: fromCsr validates natively, matchInto and positionOf", () => {
  const a = SparsePattern.fromCsr(
    3,
    4,
    Int32Array.from([0, 2, 2, 4]),
    Int32Array.from([0, 3, 1, 2]),
  );
  checkPattern(a);
  assert.equal(a.positionOf(0, 3), 1);
  assert.equal(a.positionOf(2, 2), 3);
  assert.equal(a.positionOf(1, 0), -1);
  assert.equal(a.positionOf(5, 0), -1);
  const b = SparsePattern.fromCsr(
    3,
    4,
    Int32Array.from([0, 1, 2, 4]),
    Int32Array.from([3, 0, 0, 2]),
  );
  assert.deepEqual([...a.matchInto(b)], [1, -1, -1, 3]);
  assertThrows(
    () => SparsePattern.fromCsr(3, 4, Int32Array.from([0, 2, 2, 4]), Int32Array.from([3, 0, 1, 2])),
    NativeError,
    /sl_csr_validate/,
  );
  assertThrows(
    () => SparsePattern.fromCsr(3, 4, Int32Array.from([0, 2, 4]), Int32Array.from([0, 1, 2, 3])),
    RangeError,
    /rowPtr must hold nRows \+ 1 = 4 entries, got 3/,
  );
  assert.equal(a.to("cpu"), a);
});
