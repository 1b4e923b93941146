/**
 * SparseLinear: forward and gradients against a float64 dense reference and finite differences,
 * construction checks, state dict round trips, topology replacement.
 */
import assert from "node:assert/strict";
import { noGrad } from "../lib/autograd.ts";
import { pooledMemoryBytes, releasePooledMemory } from "../lib/backend/cpu.ts";
import { randn, tensor } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { groupSum } from "../lib/nn/group_sum.ts";
import { collapsedGroupSumPays, sparseLinearGroupSum } from "../lib/nn/sparse_group_sum.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { SparsePattern } from "../lib/sparsity/pattern.ts";
import { sparseLinearFeatureMajor } from "../lib/nn/sparse_ops.ts";
import { transpose } from "../lib/ops/shape.ts";
import { registerParameterState } from "../lib/optim/param_state.ts";
import { Generator } from "../lib/random.ts";
import { fromFloat32, IndexTensor, type Tensor } from "../lib/tensor.ts";
import { assertThrows } from "./_nn_reference.ts";
import { getSparseMatmulPrecision, setSparseMatmulPrecision } from "../ffi/library.ts";
import { assertAllClose, gradcheck } from "./_gradcheck.ts";

/** Dense W (float64) from a layer's public indices and weights. */
function denseFromIndices(layer: SparseLinear): Float64Array {
  const { inFeatures: nIn, outFeatures: nOut, nnz } = layer;
  const idx = layer.indices.data;
  const w = layer.weights.data;
  const dense = new Float64Array(nOut * nIn);
  for (let k = 0; k < nnz; k++) dense[idx[k] * nIn + idx[nnz + k]] = w[k];
  return dense;
}

/** y = x Wᵀ + b in float64. x: [batch, in]. */
function referenceForward(layer: SparseLinear, x: Float32Array): Float64Array {
  const { inFeatures: nIn, outFeatures: nOut } = layer;
  const W = denseFromIndices(layer);
  const b = layer.bias?.data;
  const batch = x.length / nIn;
  const y = new Float64Array(batch * nOut);
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < nOut; o++) {
      let s = b === undefined ? 0 : b[o];
      for (let i = 0; i < nIn; i++) s += x[n * nIn + i] * W[o * nIn + i];
      y[n * nOut + o] = s;
    }
  }
  return y;
}

/** Gradients of L = Σ G ⊙ y in float64: dX = G W, dW[k] = Σ_n G[n, o_k] x[n, i_k], db = Σ_n G. */
function referenceGrads(layer: SparseLinear, x: Float32Array, G: Float32Array) {
  const { inFeatures: nIn, outFeatures: nOut, nnz } = layer;
  const W = denseFromIndices(layer);
  const batch = x.length / nIn;
  const dx = new Float64Array(batch * nIn);
  const dw = new Float64Array(nnz);
  const db = new Float64Array(nOut);
  const idx = layer.indices.data;
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < nOut; o++) {
      const g = G[n * nOut + o];
      db[o] += g;
      for (let i = 0; i < nIn; i++) dx[n * nIn + i] += g * W[o * nIn + i];
    }
    for (let k = 0; k < nnz; k++) dw[k] += G[n * nOut + idx[k]] * x[n * nIn + idx[nnz + k]];
  }
  return { dx, dw, db };
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol * (1 + Math.abs(expected[i])))) {
      assert.fail(`${what}[${i}] = ${actual[i]}, expected ${expected[i]} (error ${err})`);
    }
  }
}

/** Σ G ⊙ layer(x) in float64 (the loss whose gradient backward computes with seed G). */
function loss(layer: SparseLinear, x: Tensor, G: Float32Array): number {
  const y = noGrad(() => layer.forward(x)).data;
  let s = 0;
  for (let i = 0; i < y.length; i++) s += G[i] * y[i];
  return s;
}

/** Central finite difference of `loss` w.r.t. every element of `param` (restored after). */
function finiteDifferences(
  param: Float32Array,
  f: () => number,
  eps = 1e-2,
): Float64Array {
  const out = new Float64Array(param.length);
  for (let i = 0; i < param.length; i++) {
    const saved = param[i];
    param[i] = saved + eps;
    const plus = f();
    param[i] = saved - eps;
    const minus = f();
    param[i] = saved;
    out[i] = (plus - minus) / (2 * eps);
  }
  return out;
}

interface Case {
  name: string;
  nIn: number;
  nOut: number;
  xShape: number[];
  sparsity?: number;
  connectivity?: number[][];
  bias?: boolean;
}

const cases: Case[] = [
  { name: "2-D batch", nIn: 7, nOut: 5, xShape: [4, 7], sparsity: 0.5 },
  { name: "batch 1", nIn: 9, nOut: 6, xShape: [1, 9], sparsity: 0.7 },
  { name: "3-D input", nIn: 6, nOut: 8, xShape: [2, 3, 6], sparsity: 0.6 },
  { name: "1-D input", nIn: 6, nOut: 3, xShape: [6], sparsity: 0.5 },
  { name: "sparsity 0 (dense)", nIn: 5, nOut: 4, xShape: [3, 5], sparsity: 0 },
  { name: "sparsity 0.999", nIn: 60, nOut: 50, xShape: [3, 60], sparsity: 0.999 },
  { name: "1×1", nIn: 1, nOut: 1, xShape: [2, 1], sparsity: 0 },
  { name: "no bias", nIn: 8, nOut: 7, xShape: [3, 8], sparsity: 0.8, bias: false },
  {
    // outputs 1 and 3 and inputs 0, 2 and 5 have no connection
    name: "empty rows and columns",
    nIn: 6,
    nOut: 5,
    xShape: [3, 6],
    connectivity: [[4, 0, 2, 0, 4, 2], [1, 3, 4, 1, 3, 1]],
  },
];

for (const c of cases) {
  Deno.test(`SparseLinear forward and gradients match a dense reference: ${c.name}`, () => {
    const layer = new SparseLinear(c.nIn, c.nOut, {
      sparsity: c.sparsity,
      connectivity: c.connectivity,
      bias: c.bias,
      seed: 11,
    });
    if (c.sparsity !== undefined) {
      assert.equal(layer.nnz, Math.round((1 - c.sparsity) * c.nIn * c.nOut));
    }
    const x = randn(c.xShape, { seed: 5, requiresGrad: true });
    const y = layer.forward(x);
    const expectedShape = [...c.xShape.slice(0, -1), c.nOut];
    assert.deepEqual(y.shape, expectedShape);
    assertClose(y.data, referenceForward(layer, x.data), 1e-5, "y");

    const G = randn(expectedShape, { seed: 6 });
    y.backward(G);
    const ref = referenceGrads(layer, x.data, G.data);
    assertClose(x.grad!.data, ref.dx, 1e-5, "dX");
    assert.deepEqual(x.grad!.shape, x.shape);
    assertClose(layer.weights.grad!.data, ref.dw, 1e-5, "dW");
    if (c.bias === false) assert.equal(layer.bias, null);
    else assertClose(layer.bias!.grad!.data, ref.db, 1e-5, "db");

    // Finite differences through the layer itself (L is linear in each argument, so central
    // differences are exact up to float32 rounding).
    const f = () => loss(layer, x, G.data);
    assertClose(x.grad!.data, finiteDifferences(x.data, f), 2e-3, "dX vs finite differences");
    assertClose(
      layer.weights.grad!.data,
      finiteDifferences(layer.weights.data, f),
      2e-3,
      "dW vs finite differences",
    );
    if (layer.bias !== null) {
      assertClose(layer.bias.grad!.data, finiteDifferences(layer.bias.data, f), 2e-3, "db vs FD");
    }
  });
}

Deno.test("SparseLinear skips the input gradient when the input needs none, and accumulates", () => {
  const layer = new SparseLinear(10, 4, { sparsity: 0.5, seed: 2 });
  const x = randn([3, 10], { seed: 3 });
  const G = randn([3, 4], { seed: 4 });
  layer.forward(x).backward(G);
  assert.equal(x.grad, null);
  const first = layer.weights.grad!.data.slice();
  const firstBias = layer.bias!.grad!.data.slice();
  layer.forward(x).backward(G);
  assertClose(layer.weights.grad!.data, first.map((v) => 2 * v), 1e-6, "accumulated dW");
  assertClose(layer.bias!.grad!.data, firstBias.map((v) => 2 * v), 1e-6, "accumulated db");
  layer.zeroGrad();
  assert.equal(layer.weights.grad, null);
  const y = noGrad(() => layer.forward(x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
});

Deno.test("SparseLinear at batch 1: both gradients in one pass equal each one alone, bit for bit", () => {
  // Both needed: sl_spmm_bwd_csr reads the pattern once. dX alone (frozen weights) is
  // sl_spmm_bwd_input_csr, dW alone (data input) sl_sddmm. Large enough for two threads.
  const layer = new SparseLinear(3000, 2000, { sparsity: 0.9, seed: 21 });
  const G = randn([1, 2000], { seed: 23 });
  const x = randn([1, 3000], { seed: 22, requiresGrad: true });
  layer.forward(x).backward(G);
  const both = { dx: x.grad!.data.slice(), dw: layer.weights.grad!.data.slice() };
  layer.zeroGrad();

  const data = randn([1, 3000], { seed: 22 });
  layer.forward(data).backward(G);
  assert.deepEqual(layer.weights.grad!.data, both.dw, "dW alone");
  layer.zeroGrad();

  layer.weights.requiresGrad = false;
  const x2 = randn([1, 3000], { seed: 22, requiresGrad: true });
  layer.forward(x2).backward(G);
  assert.equal(layer.weights.grad, null);
  assert.deepEqual(x2.grad!.data, both.dx, "dX alone");
  const ref = referenceGrads(layer, x2.data, G.data);
  assertClose(both.dx, ref.dx, 1e-5, "dX");
  assertClose(both.dw, ref.dw, 1e-5, "dW");
});

/** `a` rounded to bfloat16 (to nearest, ties to even; NaN stays NaN), as float32 values. */
function bfloat16(a: Float32Array): Float32Array {
  const out = a.slice();
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    bits[i] = ((u & 0x7FFFFFFF) > 0x7F800000 ? u | 0x00400000 : u + 0x7FFF + ((u >>> 16) & 1)) &
      0xFFFF0000;
  }
  return out;
}

Deno.test("setSparseMatmulPrecision: medium is the highest precision on the bfloat16-rounded gathered operand", () => {
  assert.equal(getSparseMatmulPrecision(), "highest");
  // Batch 20 (not a multiple of 8 or 16), two threads' worth of work, forward and backward.
  const layer = new SparseLinear(3000, 2000, { sparsity: 0.95, seed: 31 });
  const xData = randn([20, 3000], { seed: 32 }).data;
  const gData = randn([20, 2000], { seed: 33 }).data;
  const run = (precision: "highest" | "medium", x: Float32Array, g: Float32Array) => {
    setSparseMatmulPrecision(precision);
    try {
      const xt = fromFloat32(x.slice(), [20, 3000], true);
      const y = layer.forward(xt);
      y.backward(fromFloat32(g.slice(), [20, 2000]));
      const out = {
        y: y.data.slice(),
        dx: xt.grad!.data.slice(),
        dw: layer.weights.grad!.data.slice(),
      };
      layer.zeroGrad();
      return out;
    } finally {
      setSparseMatmulPrecision("highest");
    }
  };
  const medium = run("medium", xData, gData);
  // The forward rounds x, the backward dY (x is used as it is for dW).
  const fwdRef = run("highest", bfloat16(xData), gData);
  const bwdRef = run("highest", xData, bfloat16(gData));
  assert.deepEqual(medium.y, fwdRef.y, "forward");
  assert.deepEqual(medium.dx, bwdRef.dx, "input gradient");
  assert.deepEqual(medium.dw, bwdRef.dw, "weight gradient");
  const highest = run("highest", xData, gData);
  assert.notDeepEqual(medium.y, highest.y, "medium rounded nothing");
  assertClose(medium.y, highest.y, 2e-2, "medium forward near the float32 one");
  assert.equal(getSparseMatmulPrecision(), "highest");

  assertThrows(
    () => setSparseMatmulPrecision("high" as "medium"),
    RangeError,
    /one of "highest", "medium", got the string "high"/,
  );
  assertThrows(
    () => setSparseMatmulPrecision(1 as unknown as "medium"),
    RangeError,
    /got number 1/,
  );
  assert.equal(getSparseMatmulPrecision(), "highest");
});

Deno.test("SparseLinear's bias gradient over a large batch is the sum within rounding", () => {
  // A float running sum drifted: 0.1 summed over 2^20 rows came out 105891.8, 1 % high.
  const rows = 2 ** 20;
  const layer = new SparseLinear(1, 2, { sparsity: 0, seed: 1 });
  const x = fromFloat32(new Float32Array(rows).fill(1), [rows, 1]);
  layer.forward(x).backward(fromFloat32(new Float32Array(2 * rows).fill(0.1), [rows, 2]));
  const exact = rows * Math.fround(0.1);
  for (const g of layer.bias!.grad!.toArray()) {
    assert.ok(Math.abs(g - exact) <= 1e-6 * exact, `${g}`);
  }
});

Deno.test("SparseLinear makes exactly round((1 - s)·in·out) distinct connections", () => {
  // The counts of the seed's Python round((1.0 - s) * in * out): ties to even (4.5 -> 4).
  const cases = [[3, 3, 0.5, 4], [10, 10, 0.995, 1], [100, 37, 0.9, 370], [1, 50, 0.3, 35]];
  for (const [nIn, nOut, s, nnz] of cases) {
    const layer = new SparseLinear(nIn, nOut, { sparsity: s, seed: 1 });
    assert.equal(layer.nnz, nnz, `${nIn}×${nOut} at ${s}`);
    assert.equal(layer.weights.size, nnz);
    assert.deepEqual(layer.indices.shape, [2, nnz]);
    assert.equal(layer.sparsity, 1 - nnz / (nIn * nOut));
    const seen = new Set<number>();
    const idx = layer.indices.data;
    let previous = -1;
    for (let k = 0; k < nnz; k++) {
      const o = idx[k], i = idx[nnz + k];
      assert.ok(o >= 0 && o < nOut && i >= 0 && i < nIn);
      const key = o * nIn + i;
      assert.ok(key > previous, "indices are in CSR order (by output, then input)");
      previous = key;
      seen.add(key);
    }
    assert.equal(seen.size, nnz);
  }
  assert.equal(new SparseLinear(10, 10, { seed: 0 }).nnz, 10, "default sparsity is 0.9");
});

Deno.test("SparseLinear initialises from U(-1/√in, 1/√in) and is reproducible from its seed", () => {
  const a = new SparseLinear(400, 300, { sparsity: 0.9, seed: 42 });
  const b = new SparseLinear(400, 300, { sparsity: 0.9, seed: 42 });
  const c = new SparseLinear(400, 300, { sparsity: 0.9, seed: 43 });
  assert.deepEqual(a.indices.data, b.indices.data);
  assert.deepEqual(a.weights.data, b.weights.data);
  assert.deepEqual(a.bias!.data, b.bias!.data);
  assert.notDeepEqual(a.indices.data, c.indices.data);
  const bound = 1 / Math.sqrt(400);
  for (const v of [...a.weights.data, ...a.bias!.data]) assert.ok(Math.abs(v) <= bound);
  // The spread covers the interval (mean ~0, max near the bound).
  const w = a.weights.data;
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  assert.ok(Math.abs(mean) < 0.05 * bound, `mean ${mean}`);
  assert.ok(Math.max(...w) > 0.99 * bound);
  // A generator works as a seed too and is advanced.
  const gen = new Generator(7);
  const d = new SparseLinear(20, 20, { seed: gen });
  const e = new SparseLinear(20, 20, { seed: gen });
  assert.notDeepEqual(d.weights.data, e.weights.data);
});

Deno.test("SparseLinear with user connectivity keeps weights[k] on (indices[0][k], indices[1][k])", () => {
  // Given out of CSR order: the layer stores CSR order and derives the sparsity.
  const connectivity = [[2, 0, 1, 0], [1, 3, 0, 0]];
  const layer = new SparseLinear(4, 3, { connectivity, sparsity: 0.5, seed: 1 });
  assert.equal(layer.nnz, 4);
  assert.equal(layer.sparsity, 1 - 4 / 12);
  assert.deepEqual([...layer.indices.data], [0, 0, 1, 2, 0, 3, 0, 1]);
  const dense = layer.weight.toDense();
  assert.deepEqual(dense.shape, [3, 4]);
  const w = layer.weights.data;
  const d = dense.data;
  assert.equal(d[0 * 4 + 0], w[0]);
  assert.equal(d[0 * 4 + 3], w[1]);
  assert.equal(d[1 * 4 + 0], w[2]);
  assert.equal(d[2 * 4 + 1], w[3]);
  assert.equal(d.filter((v) => v !== 0).length, 4);
  const view = layer.weight;
  assert.deepEqual(view.shape, [3, 4]);
  assert.equal(view.nnz, 4);
  assert.equal(view.values, layer.weights);
  assert.deepEqual(view.indices.data, layer.indices.data);
});

Deno.test("memoryBytes() does not hand the gradients out (zeroGrad still recycles them)", () => {
  const layer = new SparseLinear(1000, 1000, { sparsity: 0.9, seed: 0 });
  layer.forward(randn([4, 1000], { seed: 1 })).backward(randn([4, 1000], { seed: 2 }));
  layer.memoryBytes();
  releasePooledMemory();
  const before = pooledMemoryBytes();
  layer.zeroGrad();
  assert.equal(pooledMemoryBytes() - before, 4 * (layer.nnz + 1000));
});

Deno.test("SparseLinear reports its memory: 8 bytes per connection + O(out), 16 with the CSC view", () => {
  const layer = new SparseLinear(300, 200, { sparsity: 0.95, seed: 1 });
  const nnz = layer.nnz;
  const expected = 4 * nnz + 4 * nnz + 4 * 201 + 4 * 200;
  assert.equal(layer.memoryBytes(), expected);
  const before = layer.memoryBreakdown();
  assert.equal(before.indices, 0);
  void layer.indices;
  assert.equal(layer.memoryBreakdown().indices, 8 * nnz);
  // At batch 1 the CPU input gradient reads the CSR pattern: no CSC view is built for it.
  const x1 = randn([1, 300], { seed: 1, requiresGrad: true });
  layer.forward(x1).backward(randn([1, 200], { seed: 2 }));
  assert.equal(layer.memoryBreakdown().gradients, 4 * (nnz + 200));
  assert.ok(x1.grad !== null);
  assert.equal(layer.pattern.hasCscView, false);
  assert.equal(layer.memoryBreakdown().pattern, 4 * nnz + 4 * 201);
  // A batched input gradient gathers through the CSC view: 8 bytes per connection + column
  // pointers, built once.
  const x = randn([2, 300], { seed: 1, requiresGrad: true });
  layer.forward(x).backward(randn([2, 200], { seed: 2 }));
  assert.equal(layer.pattern.hasCscView, true);
  assert.equal(layer.memoryBreakdown().pattern, 12 * nnz + 4 * 201 + 4 * 301);
});

Deno.test("SparseLinear rejects bad constructor arguments with clear errors", () => {
  for (const bad of [0, -3, 1.5, NaN, Infinity]) {
    assertThrows(
      () => new SparseLinear(bad, 4),
      RangeError,
      /inFeatures must be a positive integer/,
    );
    assertThrows(
      () => new SparseLinear(4, bad),
      RangeError,
      /outFeatures must be a positive integer/,
    );
  }
  assertThrows(() => new SparseLinear("4" as unknown as number, 4), TypeError, /inFeatures/);
  assertThrows(() => new SparseLinear(2 ** 31, 4), RangeError, /inFeatures is 2147483648.*2\^31/);
  for (const bad of [NaN, -0.1, 1, 1.5, Infinity]) {
    assertThrows(
      () => new SparseLinear(4, 4, { sparsity: bad }),
      RangeError,
      new RegExp(`sparsity must be in \\[0, 1\\), got ${bad}`),
    );
  }
  assertThrows(
    () => new SparseLinear(4, 4, { sparsity: "0.5" as unknown as number }),
    TypeError,
    /sparsity must be a number in \[0, 1\)/,
  );
  assertThrows(
    () => new SparseLinear(4, 4, { connectivity: [[0], [0]], sparsity: 2 }),
    RangeError,
    /sparsity must be in \[0, 1\)/,
  );
  assertThrows(
    () => new SparseLinear(10, 10, { sparsity: 0.999 }),
    RangeError,
    /leaves .* = 0 connections/,
  );
  assertThrows(
    () => new SparseLinear(4, 4, { bias: "yes" as unknown as boolean }),
    TypeError,
    /bias must be a boolean/,
  );
  // A number out of range (README: RangeError, as a NaN sparsity or lr), not a wrong kind.
  assertThrows(() => new SparseLinear(4, 4, { seed: NaN }), RangeError, /Seed .* got NaN/);
  assertThrows(
    () => new SparseLinear(4, 4, { connectivity: [[0, 4], [1, 1]] }),
    RangeError,
    /connectivity\[0\]\[1\] \(output index of connection 1\) = 4 is outside \[0, 4\)/,
  );
  assertThrows(
    () => new SparseLinear(4, 4, { connectivity: [[], []] }),
    ShapeError,
    /no connections/,
  );
  // Random connectivity over more than 2^53 positions is refused (float64 positions).
  assertThrows(
    () => new SparseLinear(2 ** 31 - 1, 2 ** 31 - 1, { sparsity: 1 - 1e-12 }),
    RangeError,
    /at most 2\^53 - 1/,
  );
});

Deno.test("SparseLinear.forward rejects wrong shapes with ShapeError and changes nothing", () => {
  const layer = new SparseLinear(5, 3, { sparsity: 0.5, seed: 1 });
  const before = layer.weights.data.slice();
  assertThrows(
    () => layer.forward(randn([2, 4])),
    ShapeError,
    /got input of shape \[2, 4\]; expected \(N, \*, 5\) or \[5\]/,
  );
  assertThrows(() => layer.forward(fromFloat32(new Float32Array([1]), [])), ShapeError);
  assertThrows(() => layer.forward(randn([0, 5])), ShapeError, /empty batch/);
  assertThrows(() => layer.forward(randn([2, 0, 5])), ShapeError, /empty batch/);
  assertThrows(
    () => layer.forward([1, 2, 3, 4, 5] as unknown as Tensor),
    TypeError,
    /needs a Tensor/,
  );
  assert.deepEqual(layer.weights.data, before);
  assert.equal(layer.weights.grad, null);
});

Deno.test("SparseLinear toDense refuses matrices too large to hold", () => {
  const layer = new SparseLinear(60000, 60000, { sparsity: 1 - 1e-7, seed: 1 });
  assert.equal(layer.nnz, 360);
  assertThrows(() => layer.weight.toDense(), RangeError, /toDense\(\) would need 60000 · 60000/);
});

Deno.test("SparseLinear state dict: seed names, round trip, other nnz, any order", () => {
  const a = new SparseLinear(12, 8, { sparsity: 0.6, seed: 1 });
  const state = a.stateDict();
  assert.deepEqual(Object.keys(state).sort(), ["bias", "indices", "weights"]);
  assert.ok(state.indices instanceof IndexTensor);
  const x = randn([3, 12], { seed: 9 });
  const ya = a.forward(x).data;

  // Same nnz, other pattern.
  const b = new SparseLinear(12, 8, { sparsity: 0.6, seed: 2 });
  const weightsBefore = b.weights;
  b.loadStateDict(state);
  assert.equal(b.weights, weightsBefore, "same nnz: weights updated in place");
  assert.deepEqual(b.indices.data, a.indices.data);
  assertClose(b.forward(x).data, ya, 1e-6, "loaded forward");

  // Other nnz.
  const c = new SparseLinear(12, 8, { sparsity: 0.2, seed: 3 });
  c.loadStateDict(state);
  assert.equal(c.nnz, a.nnz);
  assert.equal(c.sparsity, a.sparsity);
  assertClose(c.forward(x).data, ya, 1e-6, "other-nnz forward");
  c.forward(x).backward(randn([3, 8], { seed: 1 }));
  assert.equal(c.weights.grad!.size, a.nnz);
  // Frozen weights stay frozen through a load that replaces the tensor (as PyTorch's
  // load_state_dict keeps requires_grad).
  const frozen = new SparseLinear(12, 8, { sparsity: 0.2, seed: 3 });
  frozen.weights.requiresGrad = false;
  frozen.loadStateDict(state);
  assert.notEqual(frozen.weights.size, new SparseLinear(12, 8, { sparsity: 0.2, seed: 3 }).nnz);
  assert.equal(frozen.weights.requiresGrad, false);
  assert.equal(frozen.bias!.requiresGrad, true);

  // Any order (e.g. a PyTorch state dict): connections shuffled together with their values.
  const nnz = a.nnz;
  const order = new Generator(5).shuffle(Int32Array.from({ length: nnz }, (_, k) => k));
  const idx = new Int32Array(2 * nnz);
  const w = new Float32Array(nnz);
  for (let k = 0; k < nnz; k++) {
    idx[k] = a.indices.data[order[k]];
    idx[nnz + k] = a.indices.data[nnz + order[k]];
    w[k] = a.weights.data[order[k]];
  }
  const d = new SparseLinear(12, 8, { sparsity: 0.9, seed: 4 });
  d.loadStateDict({
    weights: fromFloat32(w, [nnz]),
    indices: new IndexTensor(idx, [2, nnz]),
    bias: a.bias!,
  });
  assert.deepEqual(d.indices.data, a.indices.data);
  assert.deepEqual(d.weights.data, a.weights.data);
  assertClose(d.forward(x).data, ya, 1e-6, "shuffled forward");
});

Deno.test("SparseLinear state dict follows the pattern, not a written-into indices", () => {
  const layer = new SparseLinear(3, 2, { connectivity: [[0, 1], [0, 2]] });
  const x = tensor([[1, 10, 100]]);
  const y = Array.from(layer.forward(x).data);
  // indices is read-only: a write into it changes neither the forward nor the checkpoint (it
  // was saved, so the reloaded model computed with connection (1, 1) instead of (1, 2)).
  layer.indices.data[3] = 1;
  const state = layer.stateDict();
  assert.deepEqual(Array.from((state.indices as IndexTensor).data), [0, 1, 0, 2]);
  const reloaded = new SparseLinear(3, 2, { connectivity: [[0, 1], [0, 1]] });
  reloaded.loadStateDict(state);
  assert.deepEqual(Array.from(reloaded.forward(x).data), y);
  // Editing one state dict does not change the next.
  (state.indices as IndexTensor).data[2] = 1;
  assert.deepEqual(Array.from((layer.stateDict().indices as IndexTensor).data), [0, 1, 0, 2]);
});

Deno.test("SparseLinear.loadStateDict rejects bad state and leaves the model untouched", () => {
  const layer = new SparseLinear(6, 4, { sparsity: 0.5, seed: 1 });
  const nnz = layer.nnz;
  const snapshot = () => ({
    idx: layer.indices.data.slice(),
    w: layer.weights.data.slice(),
    b: layer.bias!.data.slice(),
    nnz: layer.nnz,
  });
  const before = snapshot();
  const good = new SparseLinear(6, 4, { sparsity: 0.25, seed: 2 }).stateDict();
  const goodIdx = (good.indices as IndexTensor).data;
  const m = goodIdx.length / 2;
  const withIdx = (edit: (d: Int32Array) => void) => {
    const d = goodIdx.slice();
    edit(d);
    return { ...good, indices: new IndexTensor(d, [2, m]) };
  };
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      "input out of range",
      withIdx((d) => d[m + 3] = 6),
      /indices"\[1\]\[3\].* = 6 is outside \[0, 6\)/,
    ],
    ["negative output", withIdx((d) => d[2] = -1), /indices"\[0\]\[2\].* = -1 is outside \[0, 4\)/],
    [
      "duplicate",
      withIdx((d) => {
        d[5] = d[1];
        d[m + 5] = d[m + 1];
      }),
      /connection 5 \(output \d, input \d\) repeats connection 1/,
    ],
    [
      "weights length",
      { ...good, weights: randn([m - 1]) },
      /"weights" has shape \[\d+\], expected \[\d+\]/,
    ],
    [
      "weights as index tensor",
      { ...good, weights: good.indices },
      /"weights" must be a float32 Tensor/,
    ],
    [
      "indices as float tensor",
      { ...good, indices: randn([2, m]) },
      /"indices" must be an integer IndexTensor/,
    ],
    [
      "indices shape",
      { ...good, indices: new IndexTensor(new Int32Array(3 * m), [3, m]) },
      /"indices" must have shape \[2, nnz\], got \[3, \d+\]/,
    ],
    ["bias shape", { ...good, bias: randn([5]) }, /"bias" has shape \[5\], expected \[4\]/],
    ["missing key", { weights: good.weights, bias: good.bias }, /missing key "indices"/],
    ["unexpected key", { ...good, extra: randn([1]) }, /unexpected key "extra"/],
  ];
  for (const [name, state, message] of bad) {
    assertThrows(() => layer.loadStateDict(state as Record<string, Tensor>), Error, message);
    assertThrows(() => layer.loadStateDict(state as Record<string, Tensor>), Error, /unchanged/);
    assert.deepEqual(snapshot(), before, `${name}: model untouched`);
  }
  // Non-strict loading: weights alone must match the current nnz.
  layer.loadStateDict({ weights: fromFloat32(new Float32Array(nnz).fill(0.5), [nnz]) }, {
    strict: false,
  });
  assert.ok(layer.weights.data.every((v) => v === 0.5));
  assertThrows(
    () => layer.loadStateDict({ indices: good.indices }, { strict: false }),
    Error,
    /needs "weights" with it/,
  );
});

Deno.test("SparseLinear.replacePattern keeps neither the values nor oldIndexOf it is given", () => {
  for (const nnz of [4, 3]) { // the same connection count (weights rewritten) and another one
    const layer = new SparseLinear(5, 4, { connectivity: [[0, 1, 2, 3], [0, 1, 2, 3]], seed: 1 });
    const rows = nnz === 4 ? [0, 1, 2, 3] : [0, 1, 3];
    const next = SparsePattern.fromCoo(4, 5, new Int32Array(rows), new Int32Array(rows)).pattern;
    const values = new Float32Array(nnz).map((_, k) => 10 + k);
    const oldIndexOf = new Int32Array(nnz).map((_, k) => k);
    layer.replacePattern(next, values, nnz === 4 ? oldIndexOf : undefined);
    const seen = [...layer.weights.data];
    values.fill(-1);
    oldIndexOf.fill(0);
    assert.deepEqual([...layer.weights.data], seen, `nnz ${nnz}: the caller's values are not held`);
    assert.deepEqual(seen, Array.from({ length: nnz }, (_, k) => 10 + k));
  }
  // Values that are an optimizer state's own array: the weights get them as they were given,
  // before the remap rewrites that state.
  const layer = new SparseLinear(5, 4, { connectivity: [[0, 1, 2, 3], [0, 1, 2, 3]], seed: 1 });
  const momentum = fromFloat32(new Float32Array([1, 2, 3, 4]), [4]);
  registerParameterState(layer.weights, momentum);
  layer.replacePattern(layer.pattern, momentum.data, new Int32Array([3, 2, 1, 0]));
  assert.deepEqual([...layer.weights.data], [1, 2, 3, 4]);
  assert.deepEqual([...momentum.data], [4, 3, 2, 1]);
});

Deno.test("SparseLinear.setPattern rewrites the topology in place and remaps optimizer state", () => {
  const layer = new SparseLinear(5, 4, { connectivity: [[0, 1, 2, 3], [0, 1, 2, 3]], seed: 1 });
  const weights = layer.weights;
  weights.data.set([10, 11, 12, 13]);
  const momentum = fromFloat32(new Float32Array([1, 2, 3, 4]), [4]);
  registerParameterState(weights, momentum);
  layer.forward(randn([1, 5], { seed: 1 })).backward(randn([1, 4], { seed: 2 }));
  void layer.indices;

  // Keep (3,3) and (1,1), drop (0,0) and (2,2), grow (0,4) and (2,0); given in any order.
  layer.setPattern(
    new Int32Array([3, 2, 1, 0]),
    new Int32Array([3, 0, 1, 4]),
    new Float32Array([13, 0, 11, 0]),
    new Int32Array([3, -1, 1, -1]),
  );
  assert.equal(layer.weights, weights, "same tensor: optimizers keep their reference");
  assert.equal(weights.grad, null);
  assert.deepEqual([...layer.indices.data], [0, 1, 2, 3, 4, 1, 0, 3]);
  assert.deepEqual([...weights.data], [0, 11, 0, 13]);
  assert.deepEqual([...momentum.data], [0, 2, 0, 4]);
  const x = randn([2, 5], { seed: 3 });
  assertClose(layer.forward(x).data, referenceForward(layer, x.data), 1e-6, "after setPattern");

  // Without oldIndexOf, kept connections are matched by (output, input).
  momentum.data.set([5, 6, 7, 8]);
  layer.setPattern(
    new Int32Array([0, 3, 1, 2]),
    new Int32Array([4, 3, 2, 0]),
    new Float32Array([1, 2, 3, 4]),
  );
  assert.deepEqual([...momentum.data], [5, 0, 7, 8]);

  // Rejected calls change nothing.
  const idx = layer.indices.data.slice();
  assertThrows(
    () => layer.setPattern(new Int32Array([0, 0]), new Int32Array([1, 1]), new Float32Array(2)),
    RangeError,
    /connection 1 \(output 0, input 1\) repeats connection 0/,
  );
  assertThrows(
    () => layer.setPattern(new Int32Array([0]), new Int32Array([1]), new Float32Array(2)),
    ShapeError,
  );
  assertThrows(
    () =>
      layer.setPattern(
        new Int32Array([0]),
        new Int32Array([1]),
        new Float32Array(1),
        new Int32Array([7]),
      ),
    RangeError,
    /oldIndexOf\[0\] = 7 is outside \[-1, 4\)/,
  );
  assert.deepEqual(layer.indices.data, idx);
});

Deno.test("SparseLinear is a Module: parameters, names, train/eval", () => {
  const layer = new SparseLinear(4, 3, { seed: 1, sparsity: 0.5 });
  assert.deepEqual(layer.namedParameters().map(([n]) => n), ["weights", "bias"]);
  assert.deepEqual(layer.parameters(), [layer.weights, layer.bias]);
  assert.ok(layer.weights.requiresGrad && layer.bias!.requiresGrad);
  assert.equal(layer.eval().training, false);
  assert.equal(
    layer.toString(),
    "SparseLinear(inFeatures=4, outFeatures=3, bias=true, sparsity=0.5, nnz=6)",
  );
  assert.match(
    String(new SparseLinear(4, 3, { seed: 1, sparsity: 0.5, dynamic: true, growth: "set" })),
    /bias=true, sparsity=0\.5, nnz=6, dynamic=set\)$/,
  );
  const noBias = new SparseLinear(4, 3, { seed: 1, bias: false });
  assert.deepEqual(Object.keys(noBias.stateDict()).sort(), ["indices", "weights"]);
});

Deno.test("SparseLinear.forwardGroupSum equals groupSum(forward), values and gradients", () => {
  // 200 -> 4000 at 90 %: 80,000 connections, G is 10 x 200: the collapsed path is taken from
  // batch 2 (batch 1 stays on the plain path).
  for (const [batch, bias] of [[32, true], [17, false], [3, true], [1, false]] as const) {
    const runs = [true, false].map((fused) => {
      const layer = new SparseLinear(200, 4000, { sparsity: 0.9, bias, seed: 5 });
      const x = randn([batch, 200], { seed: 6, requiresGrad: true });
      const y = fused ? layer.forwardGroupSum(x, 10) : groupSum(layer.forward(x), 10);
      y.backward(randn([batch, 10], { seed: 7 }));
      // The collapsed form reads the CSR pattern only: no CSC view is built for it.
      if (fused && batch >= 2) assert.equal(layer.pattern.hasCscView, false);
      return [y, x.grad!, layer.weights.grad!, ...(bias ? [layer.bias!.grad!] : [])].map((t) =>
        t.data
      );
    });
    assert.ok(
      collapsedGroupSumPays(new SparseLinear(200, 4000, { sparsity: 0.9 }).pattern, 10, batch) ===
        batch >= 2,
    );
    runs[0].forEach((got, i) =>
      assertAllClose(got, runs[1][i], { atol: 1e-4, rtol: 1e-4, what: `batch ${batch} #${i}` })
    );
  }
  // Finite differences through the collapsed path (x, weights and bias).
  const small = new SparseLinear(8, 40, { sparsity: 0.5, seed: 8 });
  assert.ok(collapsedGroupSumPays(small.pattern, 4, 16));
  const x = randn([16, 8], { seed: 9, requiresGrad: true });
  gradcheck(
    (xx, w, b) => sparseLinearGroupSum(xx, w, b, small.pattern, 4),
    [x, small.weights, small.bias!],
    { name: "sparseLinearGroupSum" },
  );
  assertThrows(
    () => small.forwardGroupSum(x, 3),
    RangeError,
    /size must be an integer >= 1 dividing outFeatures \(40\), got 3/,
  );
  assertThrows(() => small.forwardGroupSum(randn([16, 7]), 4), ShapeError, /expected \(N, \*, 8\)/);
});

Deno.test("SparseLinear.forwardGroupSum with NaN or inf inputs gives the unfused values", () => {
  // Every connection but input 3 into the odd outputs (group 1 of size 2): the collapsed
  // weights hold a 0 there, and 0 · inf = NaN would reach group 1 of a sample whose input 3 is
  // not finite, where the layer itself has no such connection.
  const rows: number[] = [], cols: number[] = [];
  for (let o = 0; o < 8; o++) {
    for (let i = 0; i < 4; i++) {
      if (o % 2 === 1 && i === 3) continue;
      rows.push(o);
      cols.push(i);
    }
  }
  const layer = new SparseLinear(4, 8, { connectivity: [rows, cols], seed: 1 });
  assert.ok(collapsedGroupSumPays(layer.pattern, 2, 2));
  for (const bad of [NaN, Infinity, -Infinity]) {
    const x = tensor([[1, 1, 1, bad], [1, 1, 1, 1]]);
    const fused = layer.forwardGroupSum(x, 2).data;
    const plain = groupSum(layer.forward(x), 2).data;
    assert.deepEqual(Array.from(fused, Number.isFinite), [false, true, true, true], `${bad}`);
    fused.forEach((v, i) => assert.ok(Object.is(v, plain[i]) || Math.abs(v - plain[i]) < 1e-6));
  }
});

Deno.test("SparseLinear.forwardFeatureMajor = forward on the transposes, values and gradients", () => {
  // Odd widths, empty rows and columns (99 %), batches around the 8-wide vectors and the 64-wide
  // tiles, with and without bias and input gradient.
  const cases = [
    [300, 200, 0.9, 1, true],
    [300, 200, 0.9, 5, true],
    [257, 131, 0.99, 64, false],
    [257, 131, 0.9, 70, true],
    [50, 40, 0.5, 130, true],
    [64, 33, 0.3, 16, false],
  ] as const;
  for (const [nIn, nOut, sparsity, batch, bias] of cases) {
    const what = `${nIn} -> ${nOut} at ${sparsity}, batch ${batch}, bias ${bias}`;
    const runs = [false, true].map((fm) => {
      const layer = new SparseLinear(nIn, nOut, { sparsity, bias, seed: 11 });
      const x = randn([batch, nIn], { seed: 12, requiresGrad: true });
      const dy = randn([batch, nOut], { seed: 13 });
      let y: Tensor;
      if (fm) {
        const xT = transpose(x).detach();
        xT.requiresGrad = true;
        const yT = layer.forwardFeatureMajor(xT);
        assert.deepEqual(yT.shape, [nOut, batch]);
        yT.backward(transpose(dy).detach());
        y = transpose(yT);
        x.grad = transpose(xT.grad!);
      } else {
        y = layer.forward(x);
        y.backward(dy);
      }
      return [y, x.grad!, layer.weights.grad!, ...(bias ? [layer.bias!.grad!] : [])].map((t) =>
        t.data
      );
    });
    // Output, dx and dW bit for bit (the same kernels in another layout; at batch 1 the
    // batch-major backward takes other kernels, so those are compared to rounding); db is summed
    // in double on the feature-major side.
    assert.deepEqual(runs[1][0], runs[0][0], `${what}: output`);
    runs[1].slice(1).forEach((got, i) =>
      assertAllClose(got, runs[0][i + 1], { atol: 1e-5, rtol: 1e-5, what: `${what} #${i + 1}` })
    );
    if (batch > 1) {
      assert.deepEqual(runs[1][1], runs[0][1], `${what}: dx`);
      assert.deepEqual(runs[1][2], runs[0][2], `${what}: dW`);
    }
  }
  // Against the float64 dense reference, and a 1-D input (one sample).
  const layer = new SparseLinear(40, 30, { sparsity: 0.7, seed: 14 });
  const x = randn([9, 40], { seed: 15 });
  const ref = referenceForward(layer, x.data);
  const got = transpose(layer.forwardFeatureMajor(transpose(x))).data;
  assertAllClose(got, ref, { atol: 1e-5, rtol: 1e-5, what: "dense reference" });
  const one = randn([40], { seed: 16 });
  assert.deepEqual(layer.forwardFeatureMajor(one).data, layer.forward(one).data);
  // Finite differences for xT, weights and bias.
  const small = new SparseLinear(7, 5, { sparsity: 0.4, seed: 17 });
  gradcheck(
    (xx, w, b) => sparseLinearFeatureMajor(xx, w, b, small.pattern),
    [randn([7, 3], { seed: 18, requiresGrad: true }), small.weights, small.bias!],
    { name: "sparseLinearFeatureMajor" },
  );
  // Errors name the expected layout.
  assertThrows(
    () => small.forwardFeatureMajor(randn([3, 7])),
    ShapeError,
    /forwardFeatureMajor\(\) got input of shape \[3, 7\]; expected \[7, batch\]/,
  );
  assertThrows(
    () => small.forwardFeatureMajor(randn([7, 2, 2])),
    ShapeError,
    /expected \[7, batch\]/,
  );
  assertThrows(
    () => small.forwardFeatureMajor([1, 2] as unknown as Tensor),
    TypeError,
    /needs a Tensor, got object/,
  );
  assertThrows(
    () => sparseLinearFeatureMajor(randn([7, 2]), randn([3]), null, small.pattern),
    ShapeError,
    /weights hold 3 values, but the pattern has/,
  );
});

Deno.test("SparseLinear.forwardFeatureMajor with RigL goes through forward (RigL observes it)", () => {
  const layer = new SparseLinear(30, 20, {
    sparsity: 0.8,
    seed: 19,
    dynamic: true,
    deltaT: 1,
    tEnd: 10,
  });
  assert.ok(layer.dynamicSparsity !== null);
  const x = randn([6, 30], { seed: 20 });
  const plain = layer.forward(x).data;
  const fm = transpose(layer.forwardFeatureMajor(transpose(x))).data;
  assert.deepEqual(fm, plain);
});
