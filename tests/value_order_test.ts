/**
 * `valueOrder: "csc"`: a SparseLinear whose values (and gradient, optimizer state, indices and
 * state dict) are kept in the CSC view's order. Against the same layer in CSR order: the same
 * connections and initial values, outputs and gradients bit for bit per connection, in both
 * precisions and at batch 1 and above one tile; the same training steps; state dicts that load
 * into either order; topology changes that carry optimizer state; finite differences; errors.
 */
import assert from "node:assert/strict";
import { getSparseMatmulPrecision, setSparseMatmulPrecision } from "../ffi/library.ts";
import { randn } from "../lib/creation.ts";
import { SparseLinear, type SparseLinearOptions } from "../lib/nn/sparse_linear.ts";
import { sparseLinearCscValues } from "../lib/nn/sparse_ops.ts";
import { sum } from "../lib/ops/reduce.ts";
import { SGD } from "../lib/optim/sgd.ts";
import type { Tensor } from "../lib/tensor.ts";
import { assertAllClose, gradcheck } from "./_gradcheck.ts";
import { assertThrows } from "./_nn_reference.ts";

/** A layer's values keyed by connection, "out,in" -> bits (order-free comparison). */
function byConnection(layer: SparseLinear, values: Float32Array): Map<string, number> {
  const idx = layer.indices.data;
  const nnz = layer.nnz;
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Map<string, number>();
  for (let k = 0; k < nnz; k++) out.set(`${idx[k]},${idx[nnz + k]}`, bits[k]);
  return out;
}

function bitsOf(t: Tensor): number[] {
  const a = t.toArray();
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function pair(inF: number, outF: number, options: SparseLinearOptions = {}) {
  const csr = new SparseLinear(inF, outF, { sparsity: 0.9, seed: 3, ...options });
  const csc = new SparseLinear(inF, outF, {
    sparsity: 0.9,
    seed: 3,
    ...options,
    valueOrder: "csc",
  });
  return { csr, csc };
}

Deno.test("valueOrder csc: same connections and values as csr, indices in CSC order", () => {
  const { csr, csc } = pair(30, 20);
  assert.equal(csr.valueOrder, "csr");
  assert.equal(csc.valueOrder, "csc");
  assert.deepEqual(
    byConnection(csc, csc.weights.toArray()),
    byConnection(csr, csr.weights.toArray()),
  );
  assert.deepEqual(bitsOf(csc.weight.toDense()), bitsOf(csr.weight.toDense()));
  // Sorted by input, then output.
  const idx = csc.indices.data, nnz = csc.nnz;
  for (let k = 1; k < nnz; k++) {
    const prev = idx[nnz + k - 1] * 1e6 + idx[k - 1], cur = idx[nnz + k] * 1e6 + idx[k];
    assert.ok(prev < cur, `indices not in CSC order at ${k}`);
  }
  assert.match(csc.toString(), /nnz=\d+, valueOrder=csc\)$/);
  assert.doesNotMatch(csr.toString(), /valueOrder/);
});

Deno.test("valueOrder csc: outputs and all three gradients bit for bit those of csr", () => {
  const before = getSparseMatmulPrecision();
  try {
    for (const precision of ["highest", "medium"] as const) {
      setSparseMatmulPrecision(precision);
      for (const batch of [1, 3, 64, 70]) {
        for (const bias of [true, false]) {
          const { csr, csc } = pair(150, 90, { bias });
          const outs = [csr, csc].map((layer) => {
            const x = randn([batch, 150], { seed: 5, requiresGrad: true });
            const y = layer.forward(x);
            sum(y.mul(randn([batch, 90], { seed: 6 }))).backward();
            return { layer, x, y };
          });
          const [a, b] = outs;
          const what = `${precision}, batch ${batch}, bias ${bias}`;
          assert.deepEqual(bitsOf(b.y), bitsOf(a.y), `y, ${what}`);
          assert.deepEqual(bitsOf(b.x.grad!), bitsOf(a.x.grad!), `dx, ${what}`);
          assert.deepEqual(
            byConnection(csc, csc.weights.grad!.toArray()),
            byConnection(csr, csr.weights.grad!.toArray()),
            `dW, ${what}`,
          );
          if (bias) {
            assert.deepEqual(bitsOf(csc.bias!.grad!), bitsOf(csr.bias!.grad!), `db, ${what}`);
          }
        }
      }
    }
  } finally {
    setSparseMatmulPrecision(before);
  }
});

Deno.test("valueOrder csc: gradients match finite differences; one gradient alone", () => {
  const layer = new SparseLinear(7, 5, { sparsity: 0.5, seed: 2, valueOrder: "csc" });
  gradcheck(
    (x, w, b) => sparseLinearCscValues(x, w, b, layer.pattern),
    [randn([3, 7], { seed: 4, requiresGrad: true }), layer.weights, layer.bias!],
    { name: "sparseLinearCscValues" },
  );
  // Data input (no dx): dW is the fused kernel's, where the CSR layer's one-gradient SDDMM sums
  // in another order, so the two agree to rounding.
  const { csr, csc } = pair(40, 30);
  const x = randn([8, 40], { seed: 9 });
  for (const l of [csr, csc]) sum(l.forward(x)).backward();
  const dense = (layer: SparseLinear) => {
    const idx = layer.indices.data, g = layer.weights.grad!.toArray(), out = new Float32Array(1200);
    for (let k = 0; k < layer.nnz; k++) out[idx[k] * 40 + idx[layer.nnz + k]] = g[k];
    return out;
  };
  assertAllClose(dense(csc), dense(csr), { atol: 1e-5, rtol: 1e-5, what: "dW, data input" });
  // Frozen weights (no dW): dx still flows, the weights' gradient is left as it was.
  const before = bitsOf(csc.weights.grad!);
  csc.weights.requiresGrad = false;
  csc.bias!.requiresGrad = false;
  const xg = randn([8, 40], { seed: 9, requiresGrad: true });
  sum(csc.forward(xg)).backward();
  assert.ok(xg.grad !== null);
  assert.deepEqual(bitsOf(csc.weights.grad!), before);
});

Deno.test("valueOrder csc: SGD with momentum trains both orders identically", () => {
  const { csr, csc } = pair(60, 40);
  const opts = { lr: 0.1, momentum: 0.9, nesterov: true };
  const optimizers = [new SGD(csr, opts), new SGD(csc, opts)];
  for (let step = 0; step < 4; step++) {
    // (An input that needs a gradient: both layers then take their two-gradient kernels, which
    // sum dW in the same order.)
    const x = randn([16, 60], { seed: 100 + step, requiresGrad: true });
    [csr, csc].forEach((layer, i) => {
      optimizers[i].zeroGrad();
      sum(layer.forward(x).relu()).backward();
      optimizers[i].step();
    });
  }
  assert.deepEqual(
    byConnection(csc, csc.weights.toArray()),
    byConnection(csr, csr.weights.toArray()),
  );
});

Deno.test("valueOrder csc: state dicts load across orders; topology changes keep optimizer state", () => {
  const { csr, csc } = pair(30, 20);
  const other = new SparseLinear(30, 20, { sparsity: 0.8, seed: 11, valueOrder: "csc" });
  other.loadStateDict(csr.stateDict());
  assert.deepEqual(bitsOf(other.weight.toDense()), bitsOf(csr.weight.toDense()));
  const back = new SparseLinear(30, 20, { sparsity: 0.7, seed: 12 });
  back.loadStateDict(csc.stateDict());
  assert.deepEqual(bitsOf(back.weight.toDense()), bitsOf(csr.weight.toDense()));
  // Weights alone are in the layer's own order.
  const w = csc.stateDict().weights as Tensor;
  other.loadStateDict({ weights: w }, { strict: false });
  assert.deepEqual(bitsOf(other.weights), bitsOf(csc.weights));

  // setPattern: keep half the connections, add new ones; momentum follows its connection.
  const optimizers = [
    new SGD(csr, { lr: 0.1, momentum: 0.9 }),
    new SGD(csc, { lr: 0.1, momentum: 0.9 }),
  ];
  const x = randn([4, 30], { seed: 21 });
  [csr, csc].forEach((layer, i) => {
    sum(layer.forward(x)).backward();
    optimizers[i].step();
  });
  const rows: number[] = [], cols: number[] = [];
  const idx = csr.indices.data, nnz = csr.nnz;
  for (let k = 0; k < nnz; k += 2) rows.push(idx[k]), cols.push(idx[nnz + k]);
  for (let o = 0; rows.length < nnz; o++) {
    const c = (o * 7) % 30;
    if (
      !csr.weight.toDense().data[o % 20 * 30 + c] &&
      !rows.some((r, j) => r === o % 20 && cols[j] === c)
    ) {
      rows.push(o % 20), cols.push(c);
    }
  }
  const values = new Float32Array(rows.length).map((_, k) => k / 100);
  for (const layer of [csr, csc]) {
    layer.setPattern(Int32Array.from(rows), Int32Array.from(cols), values);
  }
  assert.deepEqual(bitsOf(csc.weight.toDense()), bitsOf(csr.weight.toDense()));
  // One more step: the kept connections' momentum carried over, the new ones' started at 0.
  [csr, csc].forEach((layer, i) => {
    optimizers[i].zeroGrad();
    sum(layer.forward(x)).backward();
    optimizers[i].step();
  });
  assert.deepEqual(
    byConnection(csc, csc.weights.toArray()),
    byConnection(csr, csr.weights.toArray()),
  );
});

Deno.test("valueOrder csc: plain paths for the feature-major and group-sum forms; memory; errors", () => {
  const { csr, csc } = pair(50, 40);
  const xT = randn([50, 6], { seed: 31 });
  assert.deepEqual(bitsOf(csc.forwardFeatureMajor(xT)), bitsOf(csr.forwardFeatureMajor(xT)));
  const x = randn([6, 50], { seed: 32 });
  const g = csc.forwardGroupSum(x, 4);
  assert.deepEqual(g.shape, [6, 4]);
  for (let i = 0; i < g.size; i++) {
    assert.ok(Math.abs(g.data[i] - csr.forwardGroupSum(x, 4).data[i]) < 1e-5);
  }
  // Values, CSR, the CSC view and its inverse: 20 bytes per connection + O(in + out) + bias.
  const m = csc.memoryBreakdown();
  assert.equal(m.pattern, 4 * (41 + csc.nnz) + 4 * (51 + 2 * csc.nnz) + 4 * csc.nnz);

  assertThrows(
    () => new SparseLinear(5, 4, { valueOrder: "rows" as "csr" }),
    RangeError,
    /valueOrder must be "csr" or "csc", got "rows"/,
  );
  assertThrows(
    () => new SparseLinear(5, 4, { valueOrder: "csc", dynamic: true }),
    TypeError,
    /valueOrder: "csc" or dynamic sparsity, not both/,
  );
});
