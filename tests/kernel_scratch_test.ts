/**
 * The memory model's kernel-scratch sizes (`sparseKernelScratch`, lib/nn/memory.ts) against
 * what the CPU kernels actually hold (`kernelScratchPeakBytes`, counted in csrc/cpu/scratch.c):
 * the model is written from the kernels' code, and nothing else ties the two together when a
 * kernel changes how much it asks for.
 */
import assert from "node:assert/strict";
import { type SparseKernelCall, sparseKernelScratch } from "../lib/nn/memory.ts";
import {
  sparseLinear,
  sparseLinearCscValues,
  sparseLinearFeatureMajor,
} from "../lib/nn/sparse_ops.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { randn } from "../lib/creation.ts";
import { Generator } from "../lib/random.ts";
import { getNumThreads, kernelScratchPeakBytes, native, setNumThreads } from "../ffi/library.ts";
import type { Tensor } from "../lib/tensor.ts";

/** Peak scratch of `run` alone (the measurement restarts after `setup`). */
function peakOf<T>(setup: () => T, run: (state: T) => void): number {
  const state = setup();
  kernelScratchPeakBytes({ reset: true });
  run(state);
  return kernelScratchPeakBytes({ reset: true });
}

interface Case {
  inFeatures: number;
  outFeatures: number;
  batch: number;
}

// Odd widths, batch 1, batches that are and are not multiples of 8, one above a 64-column tile,
// and widths at which the panels take the 2 MiB-page path (blocks of 1 MiB and more).
const CASES: Case[] = [
  { inFeatures: 37, outFeatures: 23, batch: 1 },
  { inFeatures: 37, outFeatures: 23, batch: 5 },
  { inFeatures: 300, outFeatures: 41, batch: 16 },
  { inFeatures: 41, outFeatures: 300, batch: 64 },
  { inFeatures: 129, outFeatures: 77, batch: 100 },
  // 200,000 and 300,000 connections: 0.8 and 1.2 MB of values, either side of the 1 MiB the
  // CSC input gradient reads in place (VALUES_IN_CACHE); 3 M connections, far above it.
  { inFeatures: 1000, outFeatures: 2000, batch: 24 },
  { inFeatures: 1000, outFeatures: 3000, batch: 24 },
  { inFeatures: 1000, outFeatures: 3000, batch: 1 }, // batch 1 on several threads
  { inFeatures: 6000, outFeatures: 5000, batch: 64 },
];

/** The call `sparseLinear`'s backward makes for a given pair of required gradients and batch. */
function backwardCall(needX: boolean, needW: boolean, batch: number): SparseKernelCall {
  if (needX && needW && batch > 1) return "both gradients";
  if (needX) return batch > 1 ? "input gradient (CSC view)" : "input gradient (CSR pattern)";
  return "weight gradient";
}

function layerAndInput(c: Case, seed: number): { layer: SparseLinear; x: Tensor } {
  const gen = new Generator(seed);
  const layer = new SparseLinear(c.inFeatures, c.outFeatures, { sparsity: 0.9, seed: gen });
  return { layer, x: randn([c.batch, c.inFeatures], { seed: gen }) };
}

Deno.test("kernel scratch: sparseKernelScratch is what every SparseLinear kernel call holds", () => {
  const threadsBefore = getNumThreads();
  // One layer per case (the largest has 3 M connections), its CSC view built up front, as
  // after a first training step: only the kernels' own scratch is measured.
  const layers = CASES.map((c, i) => {
    const { layer } = layerAndInput(c, i);
    layer.pattern.cscView();
    return layer;
  });
  try {
    for (const threads of [1, 2, 3]) {
      setNumThreads(threads);
      for (const [i, c] of CASES.entries()) {
        const layer = layers[i];
        const shape = {
          inFeatures: c.inFeatures,
          outFeatures: c.outFeatures,
          nnz: layer.pattern.nnz,
        };
        const where = `${c.inFeatures} → ${c.outFeatures}, batch ${c.batch}, ${threads} threads`;
        const input = () => randn([c.batch, c.inFeatures], { seed: i });

        const forward = peakOf(input, (x) => {
          sparseLinear(x, layer.weights, layer.bias, layer.pattern).dispose();
        });
        assert.equal(forward, sparseKernelScratch("forward", shape, c.batch), where);

        for (const [needX, needW] of [[true, true], [true, false], [false, true]]) {
          const call = backwardCall(needX, needW, c.batch);
          const backward = peakOf(() => {
            const x = input();
            x.requiresGrad = needX;
            layer.weights.requiresGrad = needW;
            const y = sparseLinear(x, layer.weights, layer.bias, layer.pattern);
            return { y, dy: randn(y.shape, { seed: 7 }) };
          }, ({ y, dy }) => y.backward(dy));
          layer.weights.requiresGrad = true;
          assert.equal(
            backward,
            sparseKernelScratch(call, shape, c.batch, threads),
            `${call}, ${where}`,
          );
        }
      }
    }
  } finally {
    setNumThreads(threadsBefore);
  }
});

Deno.test("kernel scratch: the calls of a layer with values in CSC order", () => {
  for (const [i, c] of CASES.entries()) {
    const layer = new SparseLinear(c.inFeatures, c.outFeatures, {
      sparsity: 0.9,
      seed: i,
      valueOrder: "csc",
    });
    layer.pattern.csrToCsc(); // built with the layer's first forward, as the CSC view
    const shape = { inFeatures: c.inFeatures, outFeatures: c.outFeatures, nnz: layer.nnz };
    const where = `${c.inFeatures} → ${c.outFeatures}, batch ${c.batch}`;
    const input = () => randn([c.batch, c.inFeatures], { seed: i, requiresGrad: true });
    const forward = peakOf(input, (x) => {
      sparseLinearCscValues(x, layer.weights, layer.bias, layer.pattern).dispose();
    });
    assert.equal(
      forward,
      sparseKernelScratch("forward (values in CSC order)", shape, c.batch),
      where,
    );
    const backward = peakOf(() => {
      const y = sparseLinearCscValues(input(), layer.weights, layer.bias, layer.pattern);
      return { y, dy: randn(y.shape, { seed: 7 }) };
    }, ({ y, dy }) => y.backward(dy));
    assert.equal(
      backward,
      sparseKernelScratch("both gradients (values in CSC order)", shape, c.batch),
      where,
    );
  }
});

Deno.test("kernel scratch: the feature-major calls hold what their batch-major forms do", () => {
  for (const c of CASES.filter((c) => c.batch > 1)) {
    const where = `${c.inFeatures} → ${c.outFeatures}, batch ${c.batch}`;
    const setup = () => {
      const gen = new Generator(3);
      const layer = new SparseLinear(c.inFeatures, c.outFeatures, { sparsity: 0.9, seed: gen });
      layer.pattern.cscView();
      const xT = randn([c.inFeatures, c.batch], { seed: gen, requiresGrad: true });
      return { layer, xT };
    };
    let shape = { inFeatures: c.inFeatures, outFeatures: c.outFeatures, nnz: 0 };
    const forward = peakOf(setup, ({ layer, xT }) => {
      shape = { ...shape, nnz: layer.pattern.nnz };
      sparseLinearFeatureMajor(xT, layer.weights, layer.bias, layer.pattern).dispose();
    });
    assert.equal(forward, sparseKernelScratch("forward", shape, c.batch), where);
    const backward = peakOf(() => {
      const { layer, xT } = setup();
      const yT = sparseLinearFeatureMajor(xT, layer.weights, layer.bias, layer.pattern);
      return { yT, dyT: randn(yT.shape, { seed: new Generator(9) }) };
    }, ({ yT, dyT }) => yT.backward(dyT));
    assert.equal(backward, sparseKernelScratch("both gradients", shape, c.batch), where);
  }
});

Deno.test("kernel scratch: the peak restarts from what is held at a reset", () => {
  kernelScratchPeakBytes({ reset: true });
  assert.equal(kernelScratchPeakBytes(), 0, "no kernel holds scratch between calls");
  const c = CASES[3];
  const { layer, x } = layerAndInput(c, 1);
  kernelScratchPeakBytes({ reset: true });
  sparseLinear(x, layer.weights, layer.bias, layer.pattern).dispose();
  const peak = kernelScratchPeakBytes();
  assert.ok(peak > 0);
  assert.equal(kernelScratchPeakBytes({ reset: true }), peak, "reading does not reset");
  assert.equal(kernelScratchPeakBytes(), 0);
});

Deno.test("kernel scratch: the batched CSR input gradient (called directly: SparseLinear uses the CSC view)", () => {
  const threadsBefore = getNumThreads();
  try {
    for (const threads of [1, 2]) {
      setNumThreads(threads);
      for (const c of CASES.filter((c) => c.batch > 1)) {
        const { layer } = layerAndInput(c, 5);
        const { rowPtr, colIdx, nnz } = layer.pattern;
        const dy = randn([c.batch, c.outFeatures], { seed: 1 });
        const dx = new Float32Array(c.batch * c.inFeatures);
        kernelScratchPeakBytes({ reset: true });
        const status = native().sl_spmm_bwd_input_csr(
          c.batch,
          c.inFeatures,
          c.outFeatures,
          BigInt(nnz),
          rowPtr.ptr(),
          colIdx.ptr(),
          layer.weights.storage.ptr(),
          dy.storage.ptr(),
          Deno.UnsafePointer.of(dx),
        );
        assert.equal(status, 0);
        const shape = { inFeatures: c.inFeatures, outFeatures: c.outFeatures, nnz };
        assert.equal(
          kernelScratchPeakBytes({ reset: true }),
          sparseKernelScratch("input gradient (CSR pattern)", shape, c.batch, threads),
          `${c.inFeatures} → ${c.outFeatures}, batch ${c.batch}, ${threads} threads`,
        );
      }
    }
  } finally {
    setNumThreads(threadsBefore);
  }
});
