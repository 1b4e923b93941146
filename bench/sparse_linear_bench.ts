/**
 * SparseLinear speed: forward and forward+backward of a 20000 × 20000 layer at 99 % sparsity
 * (4 M connections), batch 1 and 64, each group with the dense equivalent (GEMM on the same
 * shapes, through the library's `sl_gemm`) as the baseline; the wide MNIST model's last layer
 * (50000 × 50000 at 99.9 %, outputs summed into 10 classes) through `forwardGroupSum` against
 * `groupSum(layer.forward(x))`; plus building a 1,000,000 × 1,000,000 layer at 99.999 % (10 M
 * connections).
 *
 * Run: `deno task bench` (or `deno bench --allow-ffi --allow-env --allow-read
 * bench/sparse_linear_bench.ts`). The dense baselines allocate 1.6 GB per 20000 × 20000 matrix
 * (weight, and its gradient for the backward group).
 */
import { check, native, ptr } from "../ffi/library.ts";
import { randn } from "../lib/creation.ts";
import { groupSum } from "../lib/nn/group_sum.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import type { Tensor } from "../lib/tensor.ts";

const IN = 20_000;
const OUT = 20_000;
const SPARSITY = 0.99;

const gemm = native().sl_gemm;
const layer = new SparseLinear(IN, OUT, { sparsity: SPARSITY, seed: 1 });

// Dense operands, allocated on first use (values do not change GEMM time).
let denseW: Float32Array | undefined;
let denseGradW: Float32Array | undefined;
const weightDense = () => denseW ??= new Float32Array(IN * OUT).fill(0.01);
const gradWeightDense = () => denseGradW ??= new Float32Array(IN * OUT);

const inputs = new Map<number, { x: Tensor; dy: Tensor; y: Float32Array; dx: Float32Array }>();
function batchData(batch: number) {
  let d = inputs.get(batch);
  if (d === undefined) {
    d = {
      x: randn([batch, IN], { seed: 2, requiresGrad: true }),
      dy: randn([batch, OUT], { seed: 3 }),
      y: new Float32Array(batch * OUT),
      dx: new Float32Array(batch * IN),
    };
    inputs.set(batch, d);
  }
  return d;
}

/** Dense y = x Wᵀ: [B, in] × [out, in]ᵀ. */
function denseForward(batch: number): void {
  const { x, y } = batchData(batch);
  check(
    gemm(0, 1, batch, OUT, IN, 1, x.storage.ptr(), IN, ptr(weightDense()), IN, 0, ptr(y), OUT),
  );
}

/** Dense forward, then dX = dY W and dW = dYᵀ X. */
function denseForwardBackward(batch: number): void {
  denseForward(batch);
  const { x, dy, dx } = batchData(batch);
  const W = weightDense();
  check(gemm(0, 0, batch, IN, OUT, 1, dy.storage.ptr(), OUT, ptr(W), IN, 0, ptr(dx), IN));
  check(
    gemm(
      1,
      0,
      OUT,
      IN,
      batch,
      1,
      dy.storage.ptr(),
      OUT,
      x.storage.ptr(),
      IN,
      0,
      ptr(gradWeightDense()),
      IN,
    ),
  );
}

function sparseForward(batch: number): void {
  const { x } = batchData(batch);
  layer.forward(x.detach());
}

function sparseForwardBackward(batch: number): void {
  const { x, dy } = batchData(batch);
  layer.zeroGrad();
  x.grad = null;
  layer.forward(x).backward(dy);
}

for (const batch of [1, 64]) {
  const iterations = batch === 1 ? { n: 20, warmup: 2 } : { n: 5, warmup: 1 };
  Deno.bench({
    name: `dense GEMM forward ${IN}×${OUT}, batch ${batch}`,
    group: `forward, batch ${batch}`,
    baseline: true,
    ...iterations,
    fn: () => denseForward(batch),
  });
  Deno.bench({
    name: `SparseLinear forward ${IN}×${OUT} at ${SPARSITY * 100}%, batch ${batch}`,
    group: `forward, batch ${batch}`,
    ...iterations,
    fn: () => sparseForward(batch),
  });
  Deno.bench({
    name: `dense GEMM forward+backward ${IN}×${OUT}, batch ${batch}`,
    group: `forward+backward, batch ${batch}`,
    baseline: true,
    ...iterations,
    fn: () => denseForwardBackward(batch),
  });
  Deno.bench({
    name: `SparseLinear forward+backward ${IN}×${OUT} at ${SPARSITY * 100}%, batch ${batch}`,
    group: `forward+backward, batch ${batch}`,
    ...iterations,
    fn: () => sparseForwardBackward(batch),
  });
}

// The wide model's readout: 50 000 outputs summed per class, forward + backward, batch 64.
const readout = new SparseLinear(50_000, 50_000, { sparsity: 0.999, seed: 4 });
const readoutX = randn([64, 50_000], { seed: 5, requiresGrad: true });
const readoutGrad = randn([64, 10], { seed: 6 });
for (
  const [name, collapsed] of [["groupSum(layer.forward(x), 10)", false], [
    "layer.forwardGroupSum(x, 10)",
    true,
  ]] as const
) {
  Deno.bench({
    name: `${name}, 50000×50000 at 99.9%, batch 64, forward+backward`,
    group: "sparse layer + group sum",
    baseline: !collapsed,
    n: 10,
    warmup: 2,
    fn: () => {
      readout.zeroGrad();
      readoutX.grad = null;
      const y = collapsed
        ? readout.forwardGroupSum(readoutX, 10)
        : groupSum(readout.forward(readoutX), 10);
      y.backward(readoutGrad);
    },
  });
}

// The same layer on feature-major activations ([features, batch]): the kernels skip their
// transposes at the boundary.
const readoutXT = randn([50_000, 64], { seed: 7, requiresGrad: true });
const readoutDy = randn([64, 50_000], { seed: 8 });
const readoutDyT = randn([50_000, 64], { seed: 8 });
for (const featureMajor of [false, true]) {
  Deno.bench({
    name: featureMajor
      ? "layer.forwardFeatureMajor(xT), xT [50000, 64]"
      : "layer.forward(x), x [64, 50000]",
    group: "layout, 50000×50000 at 99.9%, batch 64, forward+backward",
    baseline: !featureMajor,
    n: 10,
    warmup: 2,
    fn: () => {
      readout.zeroGrad();
      if (featureMajor) {
        readoutXT.grad = null;
        readout.forwardFeatureMajor(readoutXT).backward(readoutDyT);
      } else {
        readoutX.grad = null;
        readout.forward(readoutX).backward(readoutDy);
      }
    },
  });
}

Deno.bench({
  name: "build SparseLinear 1,000,000 × 1,000,000 at 99.999% (10 M random connections)",
  group: "construction",
  n: 1,
  warmup: 0,
  fn: () => {
    new SparseLinear(1_000_000, 1_000_000, { sparsity: 0.99999, seed: 1 });
  },
});
