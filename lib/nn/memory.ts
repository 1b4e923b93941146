/**
 * The memory model of a SparseLinear layer and the check that refuses, before allocating, a
 * layer the machine cannot hold.
 *
 * A layer stores each connection once, in CSR order. The CSC view (by input) is built when an
 * input gradient reads it, on the first such backward (see `SparsePattern.cscView`): always on
 * CUDA (the CSR form would need atomics), and on the CPU for batches above 1 (a gather per
 * connection instead of a scatter). A CPU layer whose `forward` never back-propagates to its
 * input (the first layer, fed data) or only at batch 1 never builds it (`forwardFeatureMajor`
 * builds it for any batch above 1: its backward computes both gradients in one pass):
 *
 * | per connection          | bytes | array                                               |
 * | ----------------------- | ----- | --------------------------------------------------- |
 * | value                   | 4     | `weights` (float32)                                 |
 * | input index (CSR)       | 4     | `pattern.colIdx`                                    |
 * | **layer**               | **8** |                                                     |
 * | output index (CSC view) | +4    | `pattern.rowIdx` (from the first backward that reads it) |
 * | CSC → CSR position      | +4    | `pattern.cscToCsr` (where the CSC entry's value is) |
 * | `indices` (2, nnz)      | +8    | built on first read of `layer.indices`, then kept   |
 * | weight gradient         | +4    | from `backward()` until `zeroGrad()`                |
 * | SGD momentum            | +4    | `momentum_buffer` (plain SGD: 0)                    |
 * | Adam / AdamW            | +8    | `exp_avg`, `exp_avg_sq` (+4 more with AMSGrad)      |
 *
 * plus O(width): row pointers `4·(out + 1)` (and column pointers `4·(in + 1)` with the CSC
 * view), the bias `4·out` (and its gradient and optimizer state), and O(width · batch)
 * activations during a training step: the output `4·B·out`, its gradient `4·B·out`, the input
 * gradient `4·B·in` (when the input needs one) and the CPU kernels' feature-major scratch
 * (see `sparseLinearActivations`, `sparseKernelScratch`); a RigL layer also copies, on the step
 * before each update, its input and output gradient, `4·B·(in + out)` (not in `memoryBytes()`,
 * which counts the layer alone). The CPU backend keeps the gradient buffers a backward pass
 * consumed (and the activations composite modules release) for the next step to reuse, up to
 * `pooledMemoryLimit()` (a quarter of the machine's memory when readable, else 512 MiB; about
 * one step's working set, ~230 MB for the wide MNIST model), until `releasePooledMemory()`; the native
 * kernels keep their scratch blocks of 1 MiB and more, up to 256 MiB.
 *
 * `checkSparseLinearFits` is called by the SparseLinear constructor before anything is
 * allocated: when the layer's construction peak exceeds the memory available (see
 * lib/memory_check.ts: MemAvailable, lowered by the cgroup limits that apply), it throws a
 * RangeError naming both numbers instead of letting the process be killed for running out of
 * memory. Later large allocations (gradients, optimizer state in total, the CSC view, the
 * kernels' scratch, RigL's recorded batch, prune-and-grow updates) are checked where they
 * happen.
 * @module
 */
import { MAX_INT32 } from "../sparsity/pattern.ts";
import { expectedConnectionCount } from "../sparsity/random.ts";
import { IndexTensor } from "../tensor.ts";
import { booleanOption, checkOptionKeys, enumOption, numberOption } from "../options.ts";
import { describeValue, requireObject } from "../errors.ts";
import { getNumThreads } from "../../ffi/library.ts";
import { type AvailableMemory, checkMemoryFits, formatBytes } from "../memory_check.ts";

/**
 * Bytes per connection of a SparseLinear, by array (see the module documentation): the value
 * and its CSR input index.
 */
export const CONNECTION_BYTES: Readonly<{
  values: number;
  colIdx: number;
  total: number;
}> = Object.freeze({ values: 4, colIdx: 4, total: 8 });

/**
 * Extra bytes per connection of the CSC view, once an input gradient has read it (CUDA; the CPU
 * at batch > 1): the output index and the CSR position of each CSC entry.
 */
export const CSC_VIEW_BYTES: Readonly<{
  rowIdx: number;
  cscToCsr: number;
  total: number;
}> = Object.freeze({ rowIdx: 4, cscToCsr: 4, total: 8 });

/** Extra bytes per connection while the (2, nnz) `indices` is materialised. */
export const INDICES_BYTES_PER_CONNECTION = 8;

/** Bytes per trainable value of a gradient (float32). */
export const GRADIENT_BYTES_PER_VALUE = 4;

/** An optimizer, as far as its state is concerned. */
export type OptimizerKind = "none" | "sgd" | "sgd-momentum" | "adam" | "amsgrad";

/**
 * Optimizer state per trainable value, in bytes: plain SGD keeps none, SGD with momentum a
 * momentum buffer, Adam/AdamW two moments, AMSGrad also the running maximum.
 */
export const OPTIMIZER_STATE_BYTES_PER_VALUE: Readonly<Record<OptimizerKind, number>> = Object
  .freeze({ none: 0, sgd: 0, "sgd-momentum": 4, adam: 8, amsgrad: 12 });

/** The sizes that determine a SparseLinear's memory. */
export interface SparseLinearShape {
  /** Number of inputs. */
  inFeatures: number;
  /** Number of outputs. */
  outFeatures: number;
  /** Number of connections. */
  nnz: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
}

/** What a layer holds besides its values and pattern (see `sparseLinearMemory`). */
export interface LayerStateOptions {
  /** The gradients of weights and bias exist (between backward and zeroGrad). Default false. */
  gradients?: boolean;
  /** The (2, nnz) `indices` has been materialised. Default false. */
  indices?: boolean;
  /** The optimizer whose state is counted. Default "none". */
  optimizer?: OptimizerKind;
  /**
   * The CSC view has been built (from the first backward that computes an input gradient, on
   * CUDA or on the CPU at batch > 1). Default false.
   */
  cscView?: boolean;
}

/**
 * Estimated bytes of a layer, by part. The first six fields are those of
 * `SparseLinear.memoryBreakdown()` and equal it for the same state.
 */
export interface LayerMemoryEstimate {
  /** The nnz weight values. */
  values: number;
  /**
   * CSR (row pointers, column indices), plus the CSC view (column pointers, row indices,
   * positions) when `cscView`.
   */
  pattern: number;
  /** The bias values. */
  bias: number;
  /** Gradients of weights and bias (0 unless `gradients`). */
  gradients: number;
  /** The materialised `indices` (0 unless `indices`). */
  indices: number;
  /** Sum of values, pattern, bias, gradients and indices (what `memoryBreakdown().total` says). */
  total: number;
  /** Optimizer state of weights and bias (not part of the layer, not in `total`). */
  optimizerState: number;
}

function checkCount(value: number, name: string, min: number): void {
  numberOption(value, name);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

function checkShape(shape: SparseLinearShape): void {
  checkCount(shape.inFeatures, "inFeatures", 1);
  checkCount(shape.outFeatures, "outFeatures", 1);
  checkCount(shape.nnz, "nnz", 0);
  const most = Math.min(shape.inFeatures * shape.outFeatures, MAX_INT32);
  if (shape.nnz > most) {
    throw new RangeError(
      `nnz ${shape.nnz} is more than a ${shape.inFeatures} × ${shape.outFeatures} layer can hold ` +
        `(at most ${most}: in · out, and int32 positions)`,
    );
  }
}

/** Bytes per value of `optimizer`'s state; a RangeError naming the kinds for an unknown one. */
function stateBytesPerValue(optimizer: unknown): number {
  if (typeof optimizer !== "string") {
    throw new TypeError(
      `optimizer must be one of ${Object.keys(OPTIMIZER_STATE_BYTES_PER_VALUE).join(", ")}; ` +
        `got ${describeValue(optimizer)}`,
    );
  }
  const bytes = (OPTIMIZER_STATE_BYTES_PER_VALUE as Record<string, number>)[optimizer];
  if (bytes === undefined) {
    throw new RangeError(
      `optimizer must be one of ${Object.keys(OPTIMIZER_STATE_BYTES_PER_VALUE).join(", ")}; ` +
        `got "${optimizer}"`,
    );
  }
  return bytes;
}

/**
 * The bytes a SparseLinear with these sizes holds: 8 per connection (16 with the CSC view),
 * O(in + out) pointers and bias, and optionally gradients, `indices` and optimizer state.
 * @example
 * ```ts
 * import { sparseLinearMemory } from "@sparselinear/sparselinear";
 * const m = sparseLinearMemory({ inFeatures: 1e6, outFeatures: 1e6, nnz: 1e7 });
 * console.log(m.total); // 88000004: 8 bytes × 1e7 connections + 8 MB of row pointers and bias
 * ```
 */
export function sparseLinearMemory(
  shape: SparseLinearShape,
  options: LayerStateOptions = {},
): LayerMemoryEstimate {
  requireObject(shape, "sparseLinearMemory() shape", "{ inFeatures, outFeatures, nnz, bias? }");
  checkShape(shape);
  checkOptionKeys(
    options,
    ["gradients", "indices", "optimizer", "cscView"],
    "sparseLinearMemory()",
  );
  const { inFeatures, outFeatures, nnz } = shape;
  const hasBias = booleanOption(shape.bias, "shape.bias", true);
  const stateBytes = stateBytesPerValue(
    options.optimizer === undefined ? "none" : options.optimizer,
  );
  const trainable = nnz + (hasBias ? outFeatures : 0);
  const values = CONNECTION_BYTES.values * nnz;
  const csc = booleanOption(options.cscView, "cscView", false)
    ? CSC_VIEW_BYTES.total * nnz + 4 * (inFeatures + 1)
    : 0;
  const pattern = CONNECTION_BYTES.colIdx * nnz + 4 * (outFeatures + 1) + csc;
  const bias = hasBias ? 4 * outFeatures : 0;
  const gradients = booleanOption(options.gradients, "gradients", false)
    ? GRADIENT_BYTES_PER_VALUE * trainable
    : 0;
  const indices = booleanOption(options.indices, "indices", false)
    ? INDICES_BYTES_PER_CONNECTION * nnz
    : 0;
  return {
    values,
    pattern,
    bias,
    gradients,
    indices,
    total: values + pattern + bias + gradients + indices,
    optimizerState: stateBytes * trainable,
  };
}

/** Activation memory of one SparseLinear in a training step (see `sparseLinearActivations`). */
export interface ActivationEstimate {
  /** The input `[B, in]` (held by whoever produced it; counted here for a lone layer). */
  input: number;
  /** The output `[B, out]` (kept until backward when a later op needs it). */
  output: number;
  /** The output gradient `[B, out]`, during backward. */
  outputGrad: number;
  /** The input gradient `[B, in]` (0 when the input needs none, e.g. the data). */
  inputGrad: number;
  /**
   * The largest scratch of one CPU kernel call (csrc/cpu/spmm.c; blocks of 1 MiB and more are
   * kept for the next call, up to 256 MiB in all, see csrc/cpu/scratch.c). With
   * W = `kernelTileColumns(B)`: the forward and the SDDMM transpose x into a feature-major
   * panel, `4·W·in`; the backward (when the input needs a gradient: both gradients in one pass
   * over the CSC view) transposes dY, `4·W·out`, holds the values and the weight gradient in
   * CSC order, `8·nnz`, and the bias gradient's double sums, `8·out`. At batch 1, with T
   * threads: `4·out` (forward) and per-thread copies of dx, `4·T·in` (the CSR input gradient).
   */
  kernelScratch: number;
  /** Sum of the above. */
  total: number;
}

/** Batch columns per feature-major tile of the CPU kernels (csrc/cpu/spmm.c: TILE_MAX 64). */
export function kernelTileColumns(batch: number): number {
  numberOption(batch, "kernelTileColumns() batch");
  return batch >= 64 ? 64 : Math.ceil(batch / 8) * 8;
}

/**
 * Bytes of values up to which the input gradient through the CSC view reads them in place,
 * through the permutation (they stay in cache), instead of gathering them into CSC order in
 * scratch first (csrc/cpu/spmm.c: VALUES_IN_CACHE).
 */
export const VALUES_IN_CACHE = 2 ** 20;

/**
 * Threads the CSR input-gradient kernel keeps a private copy for (csrc/cpu/spmm.c): one below
 * the work at which it goes parallel (batch 1: connections + rows < 2¹⁷, SERIAL_WORK_B1;
 * batched: (connections + in + out) · W < 2¹⁹, SERIAL_WORK_BATCHED), else `threads` (batch 1:
 * at most its parts, one per 8192 units of work, `choose_parts`).
 */
function csrInputGradientTeam(shape: SparseLinearShape, w: number, threads: number): number {
  const { inFeatures: nIn, outFeatures: nOut, nnz } = shape;
  if (w === 0) {
    const work = nnz + nOut;
    if (threads <= 1 || work < 2 ** 17) return 1;
    return Math.min(threads, Math.max(1, Math.min(threads * 8, Math.floor(work / 8192), 512)));
  }
  return (nnz + nIn + nOut) * w < 2 ** 19 ? 1 : threads;
}

/** The SparseLinear kernel calls whose scratch `sparseKernelScratch` sizes. */
export type SparseKernelCall =
  | "forward"
  | "both gradients"
  | "input gradient (CSC view)"
  | "input gradient (CSR pattern)"
  | "weight gradient"
  | "forward (values in CSC order)"
  | "both gradients (values in CSC order)";

const SPARSE_KERNEL_CALLS: readonly SparseKernelCall[] = [
  "forward",
  "both gradients",
  "input gradient (CSC view)",
  "input gradient (CSR pattern)",
  "weight gradient",
  "forward (values in CSC order)",
  "both gradients (values in CSC order)",
];

/**
 * Bytes of scratch one CPU kernel call maps (csrc/cpu/spmm.c), with W = `kernelTileColumns(B)`:
 * the forward's and the SDDMM's feature-major panel of x, `4·W·in` (batch 1: `4·out`, none);
 * both gradients at once, the panel of dY and the values and dW in CSC order, `4·W·out + 8·nnz`;
 * the input gradient alone through the CSC view, `4·W·out`, plus `4·nnz` for the values in CSC
 * order when they exceed `VALUES_IN_CACHE` (batch 1: `4·in`), or from the CSR pattern,
 * `4·W·(in + out) + 4·out·(T + 1)` (batch 1: `4·T·in`, per-thread copies), T = `threads` (by
 * default the library's current thread count) or 1 where the kernel runs on one thread. With
 * the values in CSC order (`valueOrder: "csc"`): the forward's panel plus `4·nnz` for the values
 * gathered into CSR order when they exceed `VALUES_IN_CACHE` (batch 1: always, `4·nnz + 4·out`);
 * both gradients, the panel of dY and the bias sums, `4·W·out + 8·out`.
 * tests/kernel_scratch_test.ts holds these sizes to what the kernels hold
 * (`kernelScratchPeakBytes`).
 */
export function sparseKernelScratch(
  call: SparseKernelCall,
  shape: SparseLinearShape,
  batch: number,
  threads?: number,
): number {
  enumOption(call, "sparseKernelScratch() call", SPARSE_KERNEL_CALLS);
  requireObject(shape, "sparseKernelScratch() shape", "{ inFeatures, outFeatures, nnz }");
  const { inFeatures: nIn, outFeatures: nOut, nnz } = shape;
  for (const [name, v] of [["inFeatures", nIn], ["outFeatures", nOut], ["nnz", nnz]] as const) {
    numberOption(v, `sparseKernelScratch() shape.${name}`);
  }
  if (threads !== undefined) numberOption(threads, "sparseKernelScratch() threads");
  const w = kernelTileColumns(batch);
  const one = batch === 1;
  switch (call) {
    case "forward":
      return one ? 4 * nOut : 4 * w * nIn;
    case "weight gradient":
      return one ? 0 : 4 * w * nIn;
    case "both gradients":
      return 4 * w * nOut + 8 * nnz + 8 * nOut;
    case "input gradient (CSC view)":
      return one ? 4 * nIn : 4 * w * nOut + (4 * nnz > VALUES_IN_CACHE ? 4 * nnz : 0);
    case "forward (values in CSC order)":
      return one ? 4 * nnz + 4 * nOut : 4 * w * nIn + (4 * nnz > VALUES_IN_CACHE ? 4 * nnz : 0);
    case "both gradients (values in CSC order)":
      return 4 * w * nOut + 8 * nOut;
    case "input gradient (CSR pattern)": {
      // Asked only here: the one size that depends on the thread count.
      const t = csrInputGradientTeam(shape, one ? 0 : w, threads ?? getNumThreads());
      return one ? 4 * t * nIn : 4 * w * (nIn + nOut) + 4 * nOut * (t + 1);
    }
  }
}

/**
 * The O(width · batch) memory of one SparseLinear in a training step with `batch` rows on the
 * CPU. `inputGrad` (default true) says whether the input needs a gradient (false for the data);
 * `nnz` (default 0) the layer's connections, for the backward's CSC-order scratch;
 * `threads` is the kernels' thread count (default: the library's current one, `getNumThreads()`,
 * which follows `SL_NUM_THREADS` and `setNumThreads`).
 */
export function sparseLinearActivations(
  inFeatures: number,
  outFeatures: number,
  batch: number,
  options: { inputGrad?: boolean; nnz?: number; threads?: number } = {},
): ActivationEstimate {
  checkOptionKeys(options, ["inputGrad", "nnz", "threads"], "sparseLinearActivations()");
  checkCount(inFeatures, "inFeatures", 1);
  checkCount(outFeatures, "outFeatures", 1);
  checkCount(batch, "batch", 1);
  const threads = options.threads === undefined ? getNumThreads() : options.threads;
  checkCount(threads, "threads", 1);
  const nnz = numberOption(options.nnz, "nnz", 0);
  checkCount(nnz, "nnz", 0);
  const input = 4 * batch * inFeatures;
  const output = 4 * batch * outFeatures;
  const outputGrad = output;
  const needInputGrad = booleanOption(options.inputGrad, "inputGrad", true);
  const inputGrad = needInputGrad ? input : 0;
  // The larger of the forward's scratch and, when the input needs a gradient, the backward's
  // (the CSR scatter at batch 1, both gradients through the CSC view above).
  const shape = { inFeatures, outFeatures, nnz };
  const backward = batch === 1 ? "input gradient (CSR pattern)" : "both gradients";
  const kernelScratch = Math.max(
    sparseKernelScratch("forward", shape, batch),
    needInputGrad ? sparseKernelScratch(backward, shape, batch, threads) : 0,
  );
  return {
    input,
    output,
    outputGrad,
    inputGrad,
    kernelScratch,
    total: input + output + outputGrad + inputGrad + kernelScratch,
  };
}

/** How a layer's connections are built (each has its own construction scratch). */
export type ConnectivityKind = "random" | "small-world" | "user";

const CONNECTIVITY_KINDS: readonly ConnectivityKind[] = ["random", "small-world", "user"];

/**
 * Peak bytes while a SparseLinear is being built: the layer itself (values, pattern, bias)
 * plus the scratch of its connectivity builder. Random connectivity samples straight into the
 * CSR arrays (no scratch); small-world fills a diagonal-ordered buffer first (+4 bytes per
 * connection, + O(in + out) distance classes); a user list is copied, sorted and permuted
 * (up to +32 bytes per connection while `sl_coo_to_csr` runs).
 */
export function constructionPeakBytes(shape: SparseLinearShape, kind: ConnectivityKind): number {
  enumOption(kind, "kind", CONNECTIVITY_KINDS);
  const layer = sparseLinearMemory(shape).total;
  const width = shape.inFeatures + shape.outFeatures;
  switch (kind) {
    case "random":
      return layer;
    case "small-world":
      return layer + 4 * shape.nnz + 28 * width;
    case "user":
      return layer + 32 * shape.nnz + 8 * width;
  }
}

/** A prune-and-grow update, as far as its memory is concerned (see `pruneAndGrowExtraBytes`). */
export interface PruneAndGrowSize {
  /** Connections dropped and grown. */
  k: number;
  /** "rigl" (dense-gradient growth) or "set" (random growth). */
  growth: "rigl" | "set";
  /** RigL: most dense-gradient entries held at once (default 1e8, the layer default). */
  maxSize?: number;
  /** RigL: rows of the recorded batch (its x and dY are copied). Default 64. */
  batch?: number;
  /** The optimizer whose state is remapped (one fresh array per state tensor). */
  optimizer?: OptimizerKind;
}

/**
 * Bytes a prune-and-grow update (lib/sparsity/rigl.ts `pruneAndGrow`) allocates on top of the
 * layer, counted as if no garbage were collected during the update (an upper estimate): the
 * drop selection (4·nnz keys), the kept pattern (8·nnz + 1·nnz mask), the next pattern with its
 * values and old positions (12·nnz), 8·nnz for copies of those values and positions (which
 * `replacePattern` no longer takes when the connection count stays: kept as headroom), the
 * dropped mask (1·nnz), the remapped optimizer state, O(k) positions, O(width) pointers, and for
 * RigL the gradient chunk (5 bytes per entry of whole rows ≤ maxSize: the chunk and its packed
 * survivors), the candidates (24·k), the recorded x and dY, and the chunk's dY columns copied
 * for the gradient kernel. About 34 bytes per connection + O(k + width). (On CUDA the next
 * pattern's CSC view, 8·nnz + 4·(in + 1), follows at the next backward.)
 */
export function pruneAndGrowExtraBytes(shape: SparseLinearShape, update: PruneAndGrowSize): number {
  checkShape(shape);
  const { inFeatures: nIn, outFeatures: nOut, nnz } = shape;
  const { k, growth } = update;
  checkCount(k, "k", 0);
  if (k > nnz) throw new RangeError(`k must be at most nnz (${nnz}), got ${k}`);
  const state = stateBytesPerValue(update.optimizer === undefined ? "none" : update.optimizer);
  const perConnection = 4 + 9 + 12 + 8 + 1 + state;
  const perK = 8 + 4 + 8 + 8 + 8; // picked, drop, grown rows/cols, grow keys, report copies
  const width = 40 * (nOut + 1);
  let growthBytes: number;
  if (enumOption(growth, "growth", ["rigl", "set"]) === "rigl") {
    const maxSize = numberOption(update.maxSize, "maxSize", 1e8);
    checkCount(maxSize, "maxSize", 1);
    const batch = numberOption(update.batch, "batch", 64);
    checkCount(batch, "batch", 1);
    const chunkRows = Math.min(nOut, Math.floor(maxSize / nIn));
    // The chunk (4 bytes an entry) and its packed survivors (at most an eighth of the chunk
    // as key and index pairs: 1 byte an entry), 24 bytes per candidate, the batch's x and dY,
    // and the gradient kernel's copy of the chunk's dY columns (its x panels are a few KiB).
    growthBytes = 5 * chunkRows * nIn + 24 * k + 4 * batch * (nIn + nOut) + 4 * batch * chunkRows;
  } else {
    growthBytes = 8 * k + 8 * (nOut + 1);
  }
  return perConnection * nnz + perK * k + width + growthBytes;
}

export {
  type AvailableMemory,
  availableMemory,
  cgroupRoom,
  checkMemoryFits,
  formatBytes,
  MEMORY_CHECK_THRESHOLD_BYTES,
  setMemoryCheck,
} from "../memory_check.ts";

/** The constructor options `checkSparseLinearFits` reads (a subset of SparseLinearOptions). */
export interface SparseLinearSizeOptions {
  /** Fraction of absent connections (default 0.9). */
  sparsity?: number;
  /** A user connection list (its length gives nnz). */
  connectivity?: unknown;
  /** Small-world connectivity. */
  smallWorld?: boolean;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
}

/** nnz of a connection list, read from its length only (validation comes later), or null. */
function connectionCount(connectivity: unknown): number | null {
  if (connectivity instanceof IndexTensor) {
    return connectivity.shape.length === 2 ? connectivity.shape[1] : null;
  }
  if (connectivity instanceof Int32Array || connectivity instanceof BigInt64Array) {
    return Math.floor(connectivity.length / 2);
  }
  if (Array.isArray(connectivity) && connectivity.length === 2) {
    const n = (connectivity[0] as ArrayLike<number> | undefined)?.length;
    return typeof n === "number" ? n : null;
  }
  return null;
}

/**
 * The SparseLinear constructor's pre-allocation check: estimates the construction peak of an
 * `inFeatures → outFeatures` layer with `options` (random or small-world:
 * `(1 − sparsity) · in · out` connections; a user list: its length) and throws a RangeError
 * naming the estimate and the memory available when it does not fit (see `checkMemoryFits`).
 * Requests past the hard limits (nnz ≥ 2^31, or in · out > 2^53 for random connectivity) are
 * left to the layer's own checks, which name those limits. `available` defaults to
 * `availableMemory()`. Arguments must already be validated as numbers (the constructor does).
 */
export function checkSparseLinearFits(
  inFeatures: number,
  outFeatures: number,
  options: SparseLinearSizeOptions = {},
  available?: AvailableMemory | null,
): void {
  numberOption(inFeatures, "inFeatures");
  numberOption(outFeatures, "outFeatures");
  let nnz: number | null;
  let kind: ConnectivityKind;
  if (options.connectivity !== undefined) {
    nnz = connectionCount(options.connectivity);
    kind = "user";
  } else {
    const sparsity = numberOption(options.sparsity, "sparsity", 0.9);
    nnz = expectedConnectionCount(inFeatures, outFeatures, sparsity);
    kind = booleanOption(options.smallWorld, "smallWorld", false) ? "small-world" : "random";
  }
  // Hard limits come first (the layer's own checks name them): a request past int32 indices
  // or exact float64 positions cannot be built on any machine, however much memory it has.
  if (nnz === null || !(nnz >= 0) || nnz > MAX_INT32) return;
  if (kind === "random" && inFeatures * outFeatures > Number.MAX_SAFE_INTEGER) return;
  const shape = { inFeatures, outFeatures, nnz, bias: booleanOption(options.bias, "bias", true) };
  const bytes = constructionPeakBytes(shape, kind);
  const perConnection = (bytes - constructionPeakBytes({ ...shape, nnz: 0 }, kind)) / (nnz || 1);
  checkMemoryFits(
    bytes,
    `SparseLinear(${inFeatures} → ${outFeatures}) with ${nnz.toLocaleString("en-US")} ` +
      `${kind} connections`,
    `${perConnection} bytes per connection + ${formatBytes(bytes - perConnection * nnz)} for the ${
      inFeatures + outFeatures
    } inputs and outputs`,
    available,
  );
}
