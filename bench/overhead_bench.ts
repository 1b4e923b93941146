/**
 * Host cost of a SparseLinear step: a 16 × 16 layer at batch 1, where every kernel takes well
 * under a microsecond, so what is timed is the TypeScript around the kernels (autograd,
 * allocation, FFI argument preparation) and the per-call cost of the native library. The
 * baseline of each group is the same native kernel calls made directly with pointers prepared
 * once; the gap between the two is what the TS layer adds per step. On a GPU these same host
 * steps wrap every kernel launch (bench/cuda_bench.ts times the 20000 × 20000 case there).
 *
 * Run: `deno bench --allow-ffi --allow-env --allow-read bench/overhead_bench.ts`.
 * @module
 */
import { check, native, ptr } from "../ffi/library.ts";
import { randn } from "../lib/creation.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { sum } from "../lib/ops/reduce.ts";
import { Adam } from "../lib/optim/adam.ts";

const N = 16;
const layer = new SparseLinear(N, N, { sparsity: 0.5, seed: 1 });
const optimizer = new Adam(layer.parameters(), { lr: 1e-3 });
const x = randn([1, N], { seed: 2, requiresGrad: true });

// The same kernels, called directly: pointers taken once, outputs reused.
const k = native();
const p = layer.pattern;
const nnz = BigInt(p.nnz);
const buffers = {
  y: new Float32Array(N),
  dy: new Float32Array(N).fill(1),
  dx: new Float32Array(N),
  dw: new Float32Array(p.nnz),
  db: new Float32Array(N),
  s: new Float32Array(1),
};
const q = {
  rowPtr: p.rowPtr.ptr(),
  colIdx: p.colIdx.ptr(),
  w: layer.weights.storage.ptr(),
  b: layer.bias!.storage.ptr(),
  x: x.storage.ptr(),
  y: ptr(buffers.y),
  dy: ptr(buffers.dy),
  dx: ptr(buffers.dx),
  dw: ptr(buffers.dw),
  db: ptr(buffers.db),
  s: ptr(buffers.s),
};
const kernelsForward = () => {
  check(k.sl_spmm_fwd(1, N, N, nnz, q.rowPtr, q.colIdx, q.w, q.b, q.x, q.y));
  check(k.sl_sum_all(BigInt(N), 1, q.y, q.s));
};
const kernelsBackward = () => {
  check(k.sl_fill(BigInt(N), 1, q.dy));
  check(k.sl_spmm_bwd_input_csr(1, N, N, nnz, q.rowPtr, q.colIdx, q.w, q.dy, q.dx));
  check(k.sl_sddmm(1, N, N, nnz, q.rowPtr, q.colIdx, q.x, q.dy, q.dw));
  check(k.sl_bias_grad(1, N, q.dy, q.db));
};

const forwardGroup = "16 x 16 SparseLinear, batch 1: forward (+ sum)";
Deno.bench("native kernels only", { group: forwardGroup, baseline: true }, kernelsForward);
Deno.bench("SparseLinear.forward + sum", { group: forwardGroup }, () => {
  sum(layer.forward(x));
});

const backwardGroup = "16 x 16 SparseLinear, batch 1: forward + backward";
Deno.bench("native kernels only", { group: backwardGroup, baseline: true }, () => {
  kernelsForward();
  kernelsBackward();
});
Deno.bench("zeroGrad, forward, sum, backward", { group: backwardGroup }, () => {
  optimizer.zeroGrad();
  sum(layer.forward(x)).backward();
});
Deno.bench("... + Adam step", { group: backwardGroup }, () => {
  optimizer.zeroGrad();
  sum(layer.forward(x)).backward();
  optimizer.step();
});
