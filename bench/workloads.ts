/**
 * The sparse-layer workloads of issue 5, set up directly on the native kernels (no Tensor, no
 * autograd) so that a benchmark measures the kernels: a random CSR pattern with exactly
 * round((1 - sparsity) · in · out) connections, its inputs, and one function per step
 * (forward, input gradient, weight gradient, a whole training step), plus the dense GEMM
 * equivalent of each on the same shapes.
 * @module
 */
import { native, ptr } from "../ffi/library.ts";
import { cpuBackend } from "../lib/backend/cpu.ts";
import { NativeError } from "../lib/errors.ts";
import { Generator } from "../lib/random.ts";

/** One benchmark shape: a `inFeatures → outFeatures` layer at `sparsity`, batch `batch`. */
export interface Workload {
  /** Short name used in bench groups and tables. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  sparsity: number;
  batch: number;
  /** Reference numbers from issue 5 (ms), measured on the 2-vCPU machine. */
  reference: {
    scipyFwd: number;
    scipyTrain: number;
    /** Dense OpenBLAS forward, or null where the dense weight does not fit (9.3 GiB). */
    denseFwd: number | null;
    floor: number;
    targetFwd: number;
    targetTrain: number;
  };
}

/** The four workloads of the issue-5 table. */
export const WORKLOADS: readonly Workload[] = [
  {
    name: "20000x20000 99% b1",
    inFeatures: 20_000,
    outFeatures: 20_000,
    sparsity: 0.99,
    batch: 1,
    reference: {
      scipyFwd: 4.0,
      scipyTrain: 28.7,
      denseFwd: 63,
      floor: 1.4,
      targetFwd: 2,
      targetTrain: 6,
    },
  },
  {
    name: "20000x20000 99% b64",
    inFeatures: 20_000,
    outFeatures: 20_000,
    sparsity: 0.99,
    batch: 64,
    reference: {
      scipyFwd: 276,
      scipyTrain: 1610,
      denseFwd: 641,
      floor: 4.0,
      targetFwd: 12,
      targetTrain: 40,
    },
  },
  {
    name: "784x2000 90% b64",
    inFeatures: 784,
    outFeatures: 2000,
    sparsity: 0.9,
    batch: 64,
    reference: {
      scipyFwd: 15.6,
      scipyTrain: 55.6,
      denseFwd: 2.6,
      floor: 0.16,
      targetFwd: 0.4,
      targetTrain: 1.2,
    },
  },
  {
    name: "50000x50000 99.9% b64",
    inFeatures: 50_000,
    outFeatures: 50_000,
    sparsity: 0.999,
    batch: 64,
    reference: {
      scipyFwd: 478,
      scipyTrain: 1733,
      denseFwd: null,
      floor: 2.5,
      targetFwd: 8,
      targetTrain: 25,
    },
  },
];

/** The fp32 FMA ceiling of the benchmark machine (both vCPUs), GFLOP/s. */
export const PEAK_GFLOPS = 128;

function check(status: number, what: string): void {
  if (status !== 0) {
    const message = Deno.UnsafePointerView.getCString(native().sl_last_error()!);
    throw new NativeError(status, `${what}: ${message}`);
  }
}

/**
 * A random pattern with exactly round((1 - sparsity) · in · out) connections, spread as evenly
 * as possible over the rows (each row gets ⌊nnz / out⌋ or one more, at distinct random
 * columns, sorted). Seeded, so every run benchmarks the same layer.
 */
export function randomPattern(
  inFeatures: number,
  outFeatures: number,
  sparsity: number,
  seed = 1,
): { rowPtr: Int32Array; colIdx: Int32Array } {
  const nnz = Math.round((1 - sparsity) * inFeatures * outFeatures);
  const rng = new Generator(seed);
  const rowPtr = new Int32Array(outFeatures + 1);
  const colIdx = new Int32Array(nnz);
  const taken = new Uint8Array(inFeatures);
  const base = Math.floor(nnz / outFeatures);
  const extra = nnz - base * outFeatures;
  let k = 0;
  for (let r = 0; r < outFeatures; r++) {
    const count = base + (r < extra ? 1 : 0);
    const start = k;
    if (count * 2 <= inFeatures) {
      while (k - start < count) {
        const c = rng.int(inFeatures);
        if (taken[c] === 0) {
          taken[c] = 1;
          colIdx[k++] = c;
        }
      }
    } else {
      // Dense rows: take every column, then drop random ones.
      for (let c = 0; c < inFeatures; c++) taken[c] = 1;
      let drop = inFeatures - count;
      while (drop > 0) {
        const c = rng.int(inFeatures);
        if (taken[c] === 1) {
          taken[c] = 0;
          drop--;
        }
      }
      for (let c = 0; c < inFeatures; c++) if (taken[c] === 1) colIdx[k++] = c;
    }
    const row = colIdx.subarray(start, k);
    row.sort();
    for (const c of row) taken[c] = 0;
    rowPtr[r + 1] = k;
  }
  return { rowPtr, colIdx };
}

/** Everything a sparse training step touches, allocated once. */
export interface SparseState {
  workload: Workload;
  nnz: number;
  rowPtr: Int32Array;
  colIdx: Int32Array;
  colPtr: Int32Array;
  rowIdx: Int32Array;
  cscToCsr: Int32Array;
  values: Float32Array;
  bias: Float32Array;
  x: Float32Array;
  y: Float32Array;
  dy: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
}

function randomArray(n: number, rng: Generator): Float32Array {
  return rng.fillUniform(new Float32Array(n), -1, 1);
}

/** Builds the pattern, its CSC view and random inputs for a workload. */
export function sparseState(workload: Workload, seed = 1): SparseState {
  const { inFeatures: nIn, outFeatures: nOut, batch } = workload;
  const { rowPtr, colIdx } = randomPattern(nIn, nOut, workload.sparsity, seed);
  const nnz = colIdx.length;
  const colPtr = new Int32Array(nIn + 1);
  const rowIdx = new Int32Array(nnz);
  const cscToCsr = new Int32Array(nnz);
  check(
    native().sl_csr_to_csc(
      nOut,
      nIn,
      BigInt(nnz),
      ptr(rowPtr),
      ptr(colIdx),
      ptr(colPtr),
      ptr(rowIdx),
      ptr(cscToCsr),
    ),
    "sl_csr_to_csc",
  );
  const rng = new Generator(seed + 1);
  const bound = 1 / Math.sqrt(nIn);
  return {
    workload,
    nnz,
    rowPtr,
    colIdx,
    colPtr,
    rowIdx,
    cscToCsr,
    values: rng.fillUniform(new Float32Array(nnz), -bound, bound),
    bias: rng.fillUniform(new Float32Array(nOut), -bound, bound),
    x: randomArray(batch * nIn, rng),
    y: new Float32Array(batch * nOut),
    dy: randomArray(batch * nOut, rng),
    dx: new Float32Array(batch * nIn),
    dw: new Float32Array(nnz),
    db: new Float32Array(nOut),
  };
}

/**
 * y = x · Wᵀ + b; with `featureMajor`, yᵀ = W xᵀ + b (`sl_spmm_fwd_fm`: x and y hold [in, batch]
 * and [out, batch], the layout of scipy's `W @ X`; the same work without the kernels'
 * transposes).
 */
export function sparseForward(s: SparseState, featureMajor = false): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  const name = featureMajor ? "sl_spmm_fwd_fm" : "sl_spmm_fwd";
  check(
    native()[name](
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.rowPtr),
      ptr(s.colIdx),
      ptr(s.values),
      ptr(s.bias),
      ptr(s.x),
      ptr(s.y),
    ),
    name,
  );
}

/** dx = dy · W, from the CSR pattern (a scatter per connection; the CPU's form at batch 1). */
export function sparseInputGradCsr(s: SparseState): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  check(
    native().sl_spmm_bwd_input_csr(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.rowPtr),
      ptr(s.colIdx),
      ptr(s.values),
      ptr(s.dy),
      ptr(s.dx),
    ),
    "sl_spmm_bwd_input_csr",
  );
}

/**
 * dx = dy · W through the CSC view (a gather per connection, values gathered into CSC order;
 * the CPU's form at batch > 1).
 */
export function sparseInputGradCsc(s: SparseState): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  check(
    native().sl_spmm_bwd_input(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.colPtr),
      ptr(s.rowIdx),
      ptr(s.cscToCsr),
      ptr(s.values),
      ptr(s.dy),
      ptr(s.dx),
    ),
    "sl_spmm_bwd_input",
  );
}

/** dW over the pattern (SDDMM) and db. */
export function sparseWeightGrad(s: SparseState): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  check(
    native().sl_sddmm(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.rowPtr),
      ptr(s.colIdx),
      ptr(s.x),
      ptr(s.dy),
      ptr(s.dw),
    ),
    "sl_sddmm",
  );
  check(native().sl_bias_grad(batch, outFeatures, ptr(s.dy), ptr(s.db)), "sl_bias_grad");
}

/**
 * dx = dy · W, dW and db in one pass over the CSC view (`sl_spmm_bwd`, which sums db as it lays
 * dy out); with `featureMajor`, `sl_spmm_bwd_fm` on [features, batch] arrays.
 */
export function sparseBackwardFused(s: SparseState, featureMajor = false): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  const name = featureMajor ? "sl_spmm_bwd_fm" : "sl_spmm_bwd";
  check(
    native()[name](
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.rowPtr),
      ptr(s.colIdx),
      ptr(s.colPtr),
      ptr(s.rowIdx),
      ptr(s.cscToCsr),
      ptr(s.values),
      ptr(s.x),
      ptr(s.dy),
      ptr(s.dx),
      ptr(s.dw),
      ptr(s.db),
    ),
    name,
  );
}

/** dx = dy · W and dW from the CSR pattern (`sl_spmm_bwd_csr`: at batch 1 one pass), and db. */
export function sparseBackwardCsr(s: SparseState): void {
  const { inFeatures, outFeatures, batch } = s.workload;
  check(
    native().sl_spmm_bwd_csr(
      batch,
      inFeatures,
      outFeatures,
      BigInt(s.nnz),
      ptr(s.rowPtr),
      ptr(s.colIdx),
      ptr(s.values),
      ptr(s.x),
      ptr(s.dy),
      ptr(s.dx),
      ptr(s.dw),
    ),
    "sl_spmm_bwd_csr",
  );
  check(native().sl_bias_grad(batch, outFeatures, ptr(s.dy), ptr(s.db)), "sl_bias_grad");
}

/**
 * A training step's layer work as a CPU SparseLinear does it (lib/nn/sparse_ops.ts): forward,
 * then both gradients in one pass over the CSC view where the backend reads it (batch > 1), else
 * both from the CSR pattern (one pass at batch 1); and the bias gradient.
 */
export function sparseTrainStep(s: SparseState): void {
  sparseForward(s);
  if (cpuBackend.inputGradientFromCsc(s.workload.batch)) {
    sparseBackwardFused(s);
  } else {
    sparseBackwardCsr(s);
  }
}

/**
 * The same step on feature-major activations, as `SparseLinear.forwardFeatureMajor` does it:
 * `sl_spmm_fwd_fm`, `sl_spmm_bwd_fm` (both gradients) and the bias gradient; at batch 1, where
 * the layouts are the same, `sparseTrainStep`.
 */
export function sparseTrainStepFeatureMajor(s: SparseState): void {
  if (s.workload.batch === 1) return sparseTrainStep(s); // one layout at batch 1
  sparseForward(s, true);
  sparseBackwardFused(s, true);
}

/** The dense equivalent: W as a full [out, in] matrix, multiplied with `sl_gemm`. */
export interface DenseState {
  workload: Workload;
  w: Float32Array;
  dwDense: Float32Array | null;
  x: Float32Array;
  y: Float32Array;
  dy: Float32Array;
  dx: Float32Array;
  bias: Float32Array;
  db: Float32Array;
}

const denseMatrices = new Map<string, Float32Array>();

/** Matrices larger than this share one buffer for W and dW (see `sharedMatrix`). */
const SHARE_W_AND_DW_ABOVE = 1e9;

/**
 * One [out, in] matrix per shape and role, shared by workloads that differ only in batch.
 * Written once (a constant): a never-written array reads as the kernel's single zero page,
 * which stays in cache and made the dense GEMMs about twice as fast as on a real weight (the
 * 20000 × 20000 forward at 150–175 GFLOP/s, above the machine's FMA ceiling). The values do not
 * change a GEMM's time. Above 10⁹ entries (50000 × 50000: 9.3 GiB) dW is W's own buffer, so
 * the dense training step's GEMMs read and write the memory they would without a second
 * 9.3 GiB beside the first.
 */
function sharedMatrix(role: "w" | "dw", nIn: number, nOut: number): Float32Array {
  const key = `${nIn * nOut > SHARE_W_AND_DW_ABOVE ? "w" : role} ${nIn}x${nOut}`;
  let m = denseMatrices.get(key);
  if (m === undefined) {
    m = new Float32Array(nIn * nOut).fill(1 / 1024);
    denseMatrices.set(key, m);
  }
  return m;
}

/**
 * Dense buffers for a workload; the weight gradient only when `withGrad`. Weights (1.6 GB for
 * 20000 × 20000) are shared between workloads of the same shape.
 */
export function denseState(workload: Workload, withGrad: boolean, seed = 1): DenseState {
  const { inFeatures: nIn, outFeatures: nOut, batch } = workload;
  const rng = new Generator(seed + 2);
  return {
    workload,
    w: sharedMatrix("w", nIn, nOut),
    dwDense: withGrad ? sharedMatrix("dw", nIn, nOut) : null,
    x: randomArray(batch * nIn, rng),
    y: new Float32Array(batch * nOut),
    dy: randomArray(batch * nOut, rng),
    dx: new Float32Array(batch * nIn),
    bias: randomArray(nOut, rng),
    db: new Float32Array(nOut),
  };
}

/** y[B, out] = x[B, in] · W[out, in]ᵀ + b, as a dense `Linear` computes it (GEMM, then the bias). */
export function denseForward(d: DenseState): void {
  const { inFeatures: nIn, outFeatures: nOut, batch } = d.workload;
  const k = native();
  check(
    k.sl_gemm(0, 1, batch, nOut, nIn, 1, ptr(d.x), nIn, ptr(d.w), nIn, 0, ptr(d.y), nOut),
    "sl_gemm",
  );
  check(
    k.sl_scale_shift_fwd(BigInt(batch), nOut, ptr(d.y), null, ptr(d.bias), ptr(d.y)),
    "sl_scale_shift_fwd",
  );
}

/** Dense forward, dx = dy · W, dW = dyᵀ · x and the bias gradient: the sparse step's pieces. */
export function denseTrainStep(d: DenseState): void {
  const { inFeatures: nIn, outFeatures: nOut, batch } = d.workload;
  denseForward(d);
  check(native().sl_bias_grad(batch, nOut, ptr(d.dy), ptr(d.db)), "sl_bias_grad");
  check(
    native().sl_gemm(0, 0, batch, nIn, nOut, 1, ptr(d.dy), nOut, ptr(d.w), nIn, 0, ptr(d.dx), nIn),
    "sl_gemm",
  );
  check(
    native().sl_gemm(
      1,
      0,
      nOut,
      nIn,
      batch,
      1,
      ptr(d.dy),
      nOut,
      ptr(d.x),
      nIn,
      0,
      ptr(d.dwDense),
      nIn,
    ),
    "sl_gemm",
  );
}

/** Floating-point operations of the sparse forward (one FMA = 2 per connection and sample). */
export function forwardFlops(nnz: number, batch: number): number {
  return 2 * nnz * batch;
}

/** Floating-point operations of a sparse training step: forward, input and weight gradients. */
export function trainFlops(nnz: number, batch: number): number {
  return 3 * forwardFlops(nnz, batch);
}
