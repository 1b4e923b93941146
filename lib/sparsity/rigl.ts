/**
 * Dynamic prune-and-grow for SparseLinear: RigL (Evci et al. 2020, "Rigging the Lottery",
 * arXiv 1911.11134, as in google-research/rigl) and SET (Mocanu et al. 2018).
 *
 * Every `deltaT` training steps, up to step `tEnd`, a dynamic layer
 *   1. drops the k = floor(f(t) · nnz) connections with the smallest |w|, where
 *      f(t) = α/2 · (1 + cos(π t / T_end)) is RigL's cosine drop-fraction schedule;
 *   2. grows k connections among the positions that are not kept (just-dropped ones may
 *      regrow): RigL takes the largest |∂L/∂W| of the dense gradient dYᵀ·X of the current
 *      batch (computed in row chunks of at most `maxSize` entries, never whole); SET draws them
 *      uniformly at random;
 *   3. new connections start at weight 0 with zero optimizer state; kept connections keep their
 *      weight and optimizer state (SGD momentum, Adam moments), through `remapParameterState`.
 *      As in RigL (`reinit_when_same=False`), a connection dropped and regrown in the same
 *      update is not new: it keeps its weight and state. nnz stays constant.
 *
 * Steps are counted by explicit calls to `layer.dynamicSparsity.step()` (or
 * `stepDynamicSparsity(model)` for every dynamic layer of a model), once per training
 * iteration, after `loss.backward()`: step t = the number of such calls so far (1, 2, ...).
 * So the first update comes at the ΔT-th iteration, with f(ΔT); google-research/rigl counts
 * its global step from 0 and also updates at iteration 0 (with f(0) = α), so its updates come
 * one iteration later than these and it has one more.
 * Forward calls are not counted (a model may run several forwards per iteration, e.g. with
 * gradient accumulation or a validation pass). RigL needs the gradient of the current batch:
 * when the coming step is an update step, each training-mode forward records its input and
 * its backward records dY (copies, held only until the next `step()`); micro-batches of
 * gradient accumulation are all used (dYᵀ·X sums over them).
 *
 * Order within an iteration, as RigL's SparseRigLOptimizer: `loss.backward()`, then `step()`,
 * then `optimizer.step()`. On an update iteration the topology update replaces the optimizer
 * step of the layer's weights: the gradient of the old layout is consumed by the growth
 * criterion and cleared (it no longer lines up with the new connections), so the optimizer
 * skips the weights for that iteration (the bias and other layers still step). Calling
 * `step()` after `optimizer.step()` also works (the order of rigl's SET optimizer): the weights
 * then take their step first and the drop ranks the updated weights.
 *
 * Defaults are the PyTorch SparseLinear's (ΔT 6000, T_end 150000, α 0.1, maxSize 1e8). RigL's
 * paper uses ΔT 100, α 0.3 and T_end ≈ 75 % of the training steps (`RIGL_PAPER_SETTINGS`).
 * Fixed from that port: k is f(t)·nnz, not f(t)·(1 − s)·nnz (about 10× too few at 90 %
 * sparsity); the optimizer state survives the update; the bias is applied on update steps too.
 * Ties in |w| and |∂L/∂W| are broken deterministically by the lower position (RigL adds a tiny
 * random noise to |w| instead).
 *
 * Cost of one update (native kernels, O(nnz) bookkeeping besides):
 * - RigL: the dense gradient has out · in entries, so an update is out · in · batch
 *   multiply-adds (csrc/cpu/dense_grad.c, in a fixed order) plus a selection pass over out · in
 *   entries, in chunks of `maxSize` entries: memory 5 · maxSize bytes + 24 bytes per dropped
 *   connection, whatever the width. Measured here when the gradient was an OpenBLAS GEMM (2
 *   shared vCPUs; the fixed-order kernel is faster, bench/RESULTS.md): 50 000 × 50 000 at
 *   99.9 % (2.5 M connections, k = 250 000), batch 32: 6–11 s; peak RSS 0.53 GB with
 *   maxSize 1e8, 0.21 GB with 1e7. At 10⁶ × 10⁶ the gradient has 10¹² entries: about
 *   6.4·10¹³ multiply-adds at batch 64, tens of minutes per update on such a CPU — use SET
 *   there.
 * - SET: no gradient; O(nnz + out + k log k). 10⁶ × 10⁶ at 99.999 % (10 M connections,
 *   k = 1 M): 0.85 s, peak RSS 0.61 GB.
 *
 * The step counter and SET's random seed are not part of the layer's state dict (the seed's
 * PyTorch checkpoints have neither): when resuming training, set
 * `layer.dynamicSparsity.stepCount` to the number of iterations already done and, for SET,
 * `layer.dynamicSparsity.seed` to the value the interrupted run's layer had (it is drawn from
 * the layer's `seed` option, so a layer built with the same seed has it already).
 * @module
 */
import { record } from "../autograd.ts";
import { isGradEnabled } from "../autograd.ts";
import { enumOption, freezeSettings, numberOption } from "../options.ts";
import { floorTolerant } from "../tolerant_floor.ts";
import { checkAllocation } from "../memory_check.ts";
import { pruneAndGrowExtraBytes } from "../nn/memory.ts";
import { registeredStateCount } from "../optim/param_state.ts";
import { SparsePattern } from "./pattern.ts";
import { Tensor } from "../tensor.ts";
import { describeValue, requireModule, requireObject } from "../errors.ts";
import {
  csrDropGrow,
  denseGradTopk,
  type HostCsr,
  type Positions,
  sampleAbsent,
  topk,
} from "./topk.ts";

/** How a dynamic layer grows connections. */
export type Growth = "rigl" | "set";

/** Dynamic-sparsity options of `new SparseLinear(in, out, options)`. */
export interface DynamicSparsityOptions {
  /** Prune and regrow connections during training (default false). */
  dynamic?: boolean;
  /** Steps between two updates, ΔT (default 6000, the seed's; RigL uses 100). */
  deltaT?: number;
  /** Last step that may update, T_end (default 150000; RigL: about 75 % of training). */
  tEnd?: number;
  /** Initial drop fraction α in [0, 1] (default 0.1; RigL uses 0.3). */
  alpha?: number;
  /**
   * Most entries of the dense gradient held at once by RigL growth (default 1e8 = 400 MB of
   * float32 scratch); must hold one row (>= inFeatures).
   */
  maxSize?: number;
  /** "rigl": grow where |dense gradient| is largest (default); "set": grow at random. */
  growth?: Growth;
}

/** The resolved settings of a dynamic layer. */
export interface DynamicSparsitySettings {
  /** Steps between two updates. */
  readonly deltaT: number;
  /** Last step that may update. */
  readonly tEnd: number;
  /** Initial drop fraction. */
  readonly alpha: number;
  /** Most dense-gradient entries held at once (RigL growth). */
  readonly maxSize: number;
  /** How connections are grown. */
  readonly growth: Growth;
}

/** Defaults of the dynamic options: those of the PyTorch SparseLinear. */
export const DYNAMIC_DEFAULTS: DynamicSparsitySettings = Object.freeze({
  deltaT: 6000,
  tEnd: 150000,
  alpha: 0.1,
  maxSize: 1e8,
  growth: "rigl",
});

/**
 * RigL's own settings (Evci et al. 2020): ΔT 100, α 0.3, and T_end at 75 % of the total
 * training steps (`tEndFraction`).
 */
export const RIGL_PAPER_SETTINGS: Readonly<
  { deltaT: number; alpha: number; tEndFraction: number }
> = Object.freeze({ deltaT: 100, alpha: 0.3, tEndFraction: 0.75 });

const DYNAMIC_KEYS = ["deltaT", "tEnd", "alpha", "maxSize", "growth"] as const;

/** The option names of dynamic sparsity (for checks of unknown option names). */
export const DYNAMIC_OPTIONS: readonly string[] = ["dynamic", ...DYNAMIC_KEYS];

/**
 * Validates the dynamic options of a layer with `inFeatures` inputs; returns the settings, or
 * null for a static layer. Throws TypeError for a wrong kind and RangeError for a value out
 * of range: deltaT <= 0, tEnd < 0, alpha outside [0, 1], maxSize < inFeatures (RigL growth),
 * or a dynamic option given without `dynamic: true`.
 */
export function resolveDynamicOptions(
  options: DynamicSparsityOptions,
  inFeatures: number,
): DynamicSparsitySettings | null {
  numberOption(inFeatures, "inFeatures");
  const dynamic = options.dynamic === undefined ? false : options.dynamic;
  if (typeof dynamic !== "boolean") {
    throw new TypeError(`dynamic must be a boolean, got ${describeValue(dynamic)}`);
  }
  if (!dynamic) {
    const given = DYNAMIC_KEYS.filter((key) => options[key] !== undefined);
    if (given.length > 0) {
      throw new RangeError(
        `${given.join(", ")} only appl${given.length > 1 ? "y" : "ies"} to dynamic layers: ` +
          "pass dynamic: true to prune and regrow connections during training",
      );
    }
    return null;
  }
  const deltaT = numberOption(options.deltaT, "deltaT", DYNAMIC_DEFAULTS.deltaT);
  if (!Number.isSafeInteger(deltaT) || deltaT <= 0) {
    throw new RangeError(
      `deltaT must be a positive integer (training steps between two updates), got ${deltaT}`,
    );
  }
  const tEnd = numberOption(options.tEnd, "tEnd", DYNAMIC_DEFAULTS.tEnd);
  if (!Number.isSafeInteger(tEnd) || tEnd < 0) {
    throw new RangeError(
      `tEnd must be a non-negative integer (the last step that may update), got ${tEnd}`,
    );
  }
  const alpha = numberOption(options.alpha, "alpha", DYNAMIC_DEFAULTS.alpha);
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`alpha must be in [0, 1] (the initial drop fraction), got ${alpha}`);
  }
  const growth = enumOption(options.growth, "growth", ["rigl", "set"], DYNAMIC_DEFAULTS.growth);
  const maxSize = numberOption(options.maxSize, "maxSize", DYNAMIC_DEFAULTS.maxSize);
  if (!Number.isSafeInteger(maxSize) || maxSize <= 0) {
    throw new RangeError(`maxSize must be a positive integer, got ${maxSize}`);
  }
  if (growth === "rigl" && maxSize < inFeatures) {
    throw new RangeError(
      `maxSize = ${maxSize} cannot hold one row of the dense gradient: RigL computes it in ` +
        `chunks of whole rows of inFeatures = ${inFeatures} entries, so maxSize must be >= ` +
        `${inFeatures}`,
    );
  }
  return Object.freeze({ deltaT, tEnd, alpha, maxSize, growth });
}

/** RigL's cosine drop fraction f(t) = α/2 · (1 + cos(π t / T_end)); 0 after T_end. */
export function dropFraction(t: number, alpha: number, tEnd: number): number {
  numberOption(t, "dropFraction() t");
  numberOption(alpha, "dropFraction() alpha");
  numberOption(tEnd, "dropFraction() tEnd");
  if (t > tEnd || tEnd <= 0) return 0;
  return (alpha / 2) * (1 + Math.cos((Math.PI * t) / tEnd));
}

/** Whether step t (t >= 1) updates the topology: t % ΔT == 0 and t <= T_end. */
export function isUpdateStep(t: number, deltaT: number, tEnd: number): boolean {
  numberOption(t, "isUpdateStep() t");
  numberOption(deltaT, "isUpdateStep() deltaT");
  numberOption(tEnd, "isUpdateStep() tEnd");
  return t >= 1 && t % deltaT === 0 && t <= tEnd;
}

/** The connections removed by an update. */
export interface DroppedConnections extends Positions {
  /** Their positions in the CSR order before the update (ascending). */
  index: Int32Array;
  /** Their weights before the update. */
  values: Float32Array;
}

/** What one prune-and-grow update did. */
export interface UpdateReport {
  /** The step t of the update. */
  step: number;
  /** f(t). */
  dropFraction: number;
  /** Connections dropped and grown: floor(f(t) · nnz). */
  k: number;
  /** The dropped connections (the k smallest |w|). */
  dropped: DroppedConnections;
  /** The grown positions, row-major (they include `regrown` just-dropped connections). */
  grown: Positions;
  /** Grown positions that were dropped in this update (they keep their weight and state). */
  regrown: number;
}

/** The layer surface an update needs (SparseLinear provides it). */
export interface DynamicSparseLayer {
  /** Number of inputs (columns of W). */
  readonly inFeatures: number;
  /** Number of outputs (rows of W). */
  readonly outFeatures: number;
  /** The current connectivity. */
  readonly pattern: SparsePattern;
  /** The nnz connection values, in CSR order. */
  readonly weights: Tensor;
  /** Training mode. */
  training: boolean;
  /** Swaps in a new pattern with its values; `oldIndexOf` remaps the optimizer state. */
  replacePattern(pattern: SparsePattern, values: Float32Array, oldIndexOf?: Int32Array): void;
}

/** Where grown connections come from: a batch's dense gradient (RigL) or a seed (SET). */
export type GrowthSource =
  | {
    kind: "rigl";
    /** Layer inputs, `[batch, inFeatures]`. */
    x: Float32Array;
    /** Gradient of the loss with respect to the layer's output, `[batch, outFeatures]`. */
    dy: Float32Array;
    /** Rows of x and dy. */
    batch: number;
    /** Most dense-gradient entries held at once. */
    maxSize: number;
  }
  | {
    kind: "set";
    /** Seed of the random growth, an integer in [0, 2^64). */
    seed: number | bigint;
  };

function rowOf(rowPtr: Int32Array, position: number): number {
  let lo = 0, hi = rowPtr.length - 2; // the row r with rowPtr[r] <= position < rowPtr[r + 1]
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (rowPtr[mid] <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * One prune-and-grow update of `layer`, now: drops the `k` connections with the smallest |w|
 * and grows `k` from `source` among the positions not kept, then swaps the new pattern in
 * (values and optimizer state remapped; the weight gradient, laid out for the old pattern, is
 * cleared; k = 0 changes nothing). Everything is
 * validated and computed before the layer changes: a rejected call leaves it untouched.
 * Returns the report (with `step` 0 and `dropFraction` NaN: the schedule is not involved).
 */
export function pruneAndGrow(
  layer: DynamicSparseLayer,
  k: number,
  source: GrowthSource,
): UpdateReport {
  requireObject(layer, "pruneAndGrow() layer", "a SparseLinear");
  numberOption(k, "pruneAndGrow() k");
  requireObject(
    source,
    "pruneAndGrow() source",
    '{ kind: "rigl", x, dy, batch, maxSize } or { kind: "set", seed }',
  );
  const kind: unknown = source.kind;
  if (kind !== "rigl" && kind !== "set") {
    throw new TypeError(
      `pruneAndGrow() source.kind must be "rigl" or "set", got ${describeValue(kind)}`,
    );
  }
  return planPruneAndGrow(layer, k, source)();
}

/**
 * Refuses an update of a CPU layer whose extra memory (`pruneAndGrowExtraBytes`: ~34 bytes per
 * connection, RigL's gradient chunk, a fresh copy of each optimizer state that follows the
 * weights) the machine does not have, before anything allocates.
 */
function checkUpdateFits(
  layer: DynamicSparseLayer,
  k: number,
  source: GrowthSource,
  what: string,
): void {
  const pattern = layer.pattern;
  if (pattern.device !== "cpu") return;
  const rigl = source.kind === "rigl";
  const states = 4 * pattern.nnz * registeredStateCount(layer.weights);
  checkAllocation(
    pruneAndGrowExtraBytes(
      { inFeatures: pattern.nCols, outFeatures: pattern.nRows, nnz: pattern.nnz },
      rigl
        ? { k, growth: "rigl", maxSize: source.maxSize, batch: source.batch }
        : { k, growth: "set" },
    ) + states,
    what,
    rigl ? "Lower maxSize or alpha" : "Lower alpha",
    "pruneAndGrowExtraBytes: ~34 bytes per connection + the gradient chunk for RigL",
  );
}

/**
 * The positions of the k smallest |w|. A NaN weight cannot be ranked: `sl_topk` refuses it,
 * and the error then names the weight and its connection (found only on that path, so a
 * normal update pays no scan of the weights).
 */
function dropSelection(values: Float32Array, k: number, csr: HostCsr): Int32Array {
  try {
    return topk(values, k, { smallest: true, abs: true });
  } catch (e) {
    const nanAt = values.findIndex(Number.isNaN);
    if (nanAt < 0) throw e;
    throw new RangeError(
      `A prune-and-grow update ranks connections by |weight|, but weights[${nanAt}] ` +
        `(output ${rowOf(csr.rowPtr, nanAt)}, input ${csr.colIdx[nanAt]}) is NaN; ` +
        "nothing was changed",
    );
  }
}

/**
 * `pruneAndGrow` in two halves: computes and validates the update (throws, changing nothing)
 * and returns the function that swaps it in, so that several layers can be updated all or none.
 */
function planPruneAndGrow(
  layer: DynamicSparseLayer,
  k: number,
  source: GrowthSource,
  what = `A ${source.kind === "rigl" ? "RigL" : "SET"} prune-and-grow update (k = ${k})`,
): () => UpdateReport {
  const pattern = layer.pattern;
  const nnz = pattern.nnz;
  if (!Number.isInteger(k) || k < 0 || k > nnz) {
    throw new RangeError(`k must be an integer in [0, nnz = ${nnz}], got ${k}`);
  }
  if (k === 0) {
    // Nothing to drop or grow (f(t) · nnz < 1, e.g. at tEnd): the layer, its weight gradient
    // (so this step's optimizer update) and its optimizer state stay as they are.
    const none = { rows: new Int32Array(0), cols: new Int32Array(0) };
    const dropped = { ...none, index: new Int32Array(0), values: new Float32Array(0) };
    return () => ({ step: 0, dropFraction: NaN, k: 0, dropped, grown: none, regrown: 0 });
  }
  checkUpdateFits(layer, k, source, what);
  const weights = layer.weights;
  const values = (weights.storage.host as Float32Array | undefined) ?? weights.toArray();
  const csr: HostCsr = {
    nRows: pattern.nRows,
    nCols: pattern.nCols,
    rowPtr: pattern.hostRowPtr,
    colIdx: pattern.hostColIdx,
  };
  const drop = dropSelection(values, k, csr);
  const empty = { rows: new Int32Array(0), cols: new Int32Array(0) };
  const kept = csrDropGrow(csr, null, drop, empty);
  const keptCsr: HostCsr = { ...csr, rowPtr: kept.rowPtr, colIdx: kept.colIdx };
  const grown: Positions = source.kind === "rigl"
    ? denseGradTopk(keptCsr, source.x, source.dy, source.batch, k, source.maxSize)
    : sampleAbsent(keptCsr, k, source.seed);
  const next = csrDropGrow(csr, values, drop, { rows: grown.rows, cols: grown.cols }, true);
  const nextPattern = SparsePattern.fromCsr(csr.nRows, csr.nCols, next.rowPtr, next.colIdx);

  const dropped: DroppedConnections = {
    index: drop,
    rows: new Int32Array(k),
    cols: new Int32Array(k),
    values: new Float32Array(k),
  };
  const wasDropped = new Uint8Array(nnz);
  for (let j = 0; j < k; j++) {
    const p = drop[j];
    dropped.rows[j] = rowOf(csr.rowPtr, p);
    dropped.cols[j] = csr.colIdx[p];
    dropped.values[j] = values[p];
    wasDropped[p] = 1;
  }
  let regrown = 0;
  for (const old of next.oldIndex) if (old >= 0 && wasDropped[old]) regrown++;

  return () => {
    layer.replacePattern(nextPattern, next.values!, next.oldIndex);
    return {
      step: 0,
      dropFraction: NaN,
      k,
      dropped,
      grown: { rows: grown.rows, cols: grown.cols },
      regrown,
    };
  };
}

/** One recorded forward of the current step: its input and, after backward, its dY. */
interface RecordedBatch {
  x: Float32Array;
  dy: Float32Array | null;
  batch: number;
}

/**
 * The prune-and-grow schedule of one dynamic layer (`layer.dynamicSparsity`). Call `step()`
 * once per training iteration after `loss.backward()` (see the module documentation).
 *
 * @example
 * ```ts
 * import { crossEntropy, randn, SGD, SparseLinear, tensor } from "@sparselinear/sparselinear";
 * const layer = new SparseLinear(20, 10, { sparsity: 0.9, dynamic: true, deltaT: 2, tEnd: 10, seed: 0 });
 * const opt = new SGD(layer, { lr: 0.1, momentum: 0.9 });
 * for (let i = 0; i < 4; i++) {
 *   const loss = crossEntropy(layer.forward(randn([8, 20], { seed: i })), new Int32Array(8));
 *   loss.backward();
 *   const report = layer.dynamicSparsity!.step(); // an update at steps 2 and 4
 *   opt.step();
 *   opt.zeroGrad();
 *   if (report) console.log(report.step, report.k, layer.nnz); // 2 1 20, then 4 1 20 (nnz kept)
 * }
 * ```
 */
export class DynamicSparsity implements DynamicSparsitySettings {
  /** Steps between two updates. */
  readonly deltaT: number;
  /** Last step that may update. */
  readonly tEnd: number;
  /** Initial drop fraction α. */
  readonly alpha: number;
  /** Most dense-gradient entries held at once (RigL growth). */
  readonly maxSize: number;
  /** How connections are grown. */
  readonly growth: Growth;
  readonly #layer: DynamicSparseLayer;
  #seed: bigint;
  #t = 0;
  #recorded: RecordedBatch[] = [];

  /** Binds validated settings (see `resolveDynamicOptions`) to `layer`; `seed` drives SET. */
  constructor(layer: DynamicSparseLayer, settings: DynamicSparsitySettings, seed: number) {
    requireObject(settings, "DynamicSparsity settings", "{ deltaT, tEnd, alpha, maxSize, growth }");
    for (const name of ["deltaT", "tEnd", "alpha", "maxSize"] as const) {
      numberOption(settings[name], `DynamicSparsity settings.${name}`);
    }
    enumOption(settings.growth, "DynamicSparsity settings.growth", ["rigl", "set"]);
    numberOption(seed, "DynamicSparsity seed");
    this.#layer = layer;
    this.deltaT = settings.deltaT;
    this.tEnd = settings.tEnd;
    this.alpha = settings.alpha;
    this.maxSize = settings.maxSize;
    this.growth = settings.growth;
    this.#seed = BigInt.asUintN(32, BigInt(Math.trunc(seed)));
    freezeSettings(this, ["deltaT", "tEnd", "alpha", "maxSize", "growth"]);
  }

  /**
   * The seed of SET's random growth, an integer in [0, 2^32): the update at step t samples
   * from (seed, t) alone. Record it to resume a SET run built without a `seed` option.
   */
  get seed(): number {
    return Number(this.#seed);
  }

  /** Sets SET's seed (see the getter), e.g. when resuming training from a checkpoint. */
  set seed(value: number) {
    numberOption(value, "seed", undefined, "[0, 2^32)");
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${value}`);
    }
    this.#seed = BigInt(value);
  }

  /** Steps taken so far (the t of the last `step()` call; 0 before the first). */
  get stepCount(): number {
    return this.#t;
  }

  /** Sets the step counter, e.g. when resuming training from a checkpoint. */
  set stepCount(t: number) {
    numberOption(t, "stepCount", undefined, "[0, 2^53)");
    if (!Number.isSafeInteger(t) || t < 0) {
      throw new RangeError(`stepCount must be a non-negative integer, got ${t}`);
    }
    this.#t = t;
    this.#recorded = [];
  }

  /** Whether the next `step()` call will update the topology. */
  get updatesNext(): boolean {
    return isUpdateStep(this.#t + 1, this.deltaT, this.tEnd);
  }

  /**
   * Called by the layer's forward with its input and output: when the next step updates with
   * RigL growth, records the input (a copy) and returns the output through an identity op that
   * records dY on backward. Otherwise returns `y` itself.
   */
  observe(x: Tensor, y: Tensor): Tensor {
    if (
      this.growth !== "rigl" || !this.#layer.training || !isGradEnabled() || !y.requiresGrad ||
      !this.updatesNext
    ) {
      return y;
    }
    // The copies of x now and of dY at backward (on the host): O(width · batch), outside
    // memoryBytes(), which counts the layer alone; checked like the library's other buffers.
    const rows = x.size / this.#layer.inFeatures;
    checkAllocation(
      4 * rows * (this.#layer.inFeatures + this.#layer.outFeatures),
      `Recording the batch for the RigL update (x and dY of ${rows} rows)`,
      "Use a smaller batch on RigL update steps, or SET growth",
    );
    const entry: RecordedBatch = {
      x: x.toArray(),
      dy: null,
      batch: rows,
    };
    this.#recorded.push(entry);
    const tapped = new Tensor(y.storage, y.shape);
    return record(tapped, "dynamicSparsityRecord", [y], (dy) => {
      // Several backward passes through one retained graph add up, as the weight gradient does.
      const g = dy.toArray();
      if (entry.dy === null) entry.dy = g;
      else for (let i = 0; i < g.length; i++) entry.dy[i] += g[i];
      return [dy];
    });
  }

  /**
   * Why the next `step()` would be rejected, or null when it can run: a RigL update needs the
   * batch of its step (a training-mode forward and its backward since the previous `step()`).
   */
  stepProblem(): string | null {
    if (this.growth !== "rigl" || !this.updatesNext) return null;
    if (this.#recorded.some((r) => r.dy !== null)) return null;
    return `RigL update at step ${this.#t + 1} needs the dense gradient of this step's batch, ` +
      "but no training-mode forward and backward went through the layer since the previous " +
      "step(): call step() once per iteration, after loss.backward()";
  }

  /**
   * Advances the step counter t and, when t % deltaT == 0 and t <= tEnd, prunes and regrows
   * floor(f(t) · nnz) connections. Returns the update's report, or null on other steps.
   * With RigL growth an update needs this step's batch (a training-mode forward and its
   * backward since the previous `step()`); without it this throws and nothing changes.
   */
  step(): UpdateReport | null {
    return this.planStep()();
  }

  /**
   * `step()` in two halves: everything that can fail (the checks, the drop and grow sets) runs
   * now and changes nothing; the returned function applies the step (`stepDynamicSparsity`
   * plans every layer before applying any).
   */
  planStep(): () => UpdateReport | null {
    const t = this.#t + 1;
    if (!isUpdateStep(t, this.deltaT, this.tEnd)) {
      return () => {
        this.#t = t;
        this.#recorded = [];
        return null;
      };
    }
    const problem = this.stepProblem();
    if (problem !== null) throw new Error(problem);
    const f = dropFraction(t, this.alpha, this.tEnd);
    const k = floorTolerant(f * this.#layer.pattern.nnz);
    let source: GrowthSource;
    if (this.growth === "rigl") {
      const batches = this.#recorded.filter((r) => r.dy !== null);
      source = { kind: "rigl", ...concatBatches(batches), maxSize: this.maxSize };
    } else {
      source = { kind: "set", seed: (this.#seed << 32n) | BigInt(t >>> 0) };
    }
    const what = `The ${this.growth === "rigl" ? "RigL" : "SET"} update at step ${t} (k = ${k})`;
    const apply = planPruneAndGrow(this.#layer, k, source, what);
    return () => {
      const report = apply();
      this.#t = t;
      this.#recorded = [];
      return { ...report, step: t, dropFraction: f };
    };
  }
}

function concatBatches(
  batches: RecordedBatch[],
): { x: Float32Array; dy: Float32Array; batch: number } {
  if (batches.length === 1) {
    const b = batches[0];
    return { x: b.x, dy: b.dy!, batch: b.batch };
  }
  let batch = 0, xLen = 0, dyLen = 0;
  for (const b of batches) {
    batch += b.batch;
    xLen += b.x.length;
    dyLen += b.dy!.length;
  }
  const x = new Float32Array(xLen), dy = new Float32Array(dyLen);
  let xo = 0, dyo = 0;
  for (const b of batches) {
    x.set(b.x, xo);
    dy.set(b.dy!, dyo);
    xo += b.x.length;
    dyo += b.dy!.length;
  }
  return { x, dy, batch };
}

/** A module that may carry a dynamic-sparsity schedule (SparseLinear does). */
interface MaybeDynamic {
  dynamicSparsity?: DynamicSparsity | null;
}

/** Modules that can be walked (a `Module`, or anything listing its submodules by name). */
export interface ModuleTree {
  /** Every module of the tree with its dotted name (the root as ""). */
  namedModules(): [string, unknown][];
}

/** The dynamic-sparsity schedules of the dynamic layers in `model`, by module name. */
export function dynamicSchedules(model: ModuleTree): [string, DynamicSparsity][] {
  const schedules: [string, DynamicSparsity][] = [];
  for (const [name, module] of model.namedModules()) {
    const schedule = (module as MaybeDynamic).dynamicSparsity;
    if (schedule instanceof DynamicSparsity) schedules.push([name, schedule]);
  }
  return schedules;
}

/**
 * Calls `step()` on the dynamic-sparsity schedule of every dynamic layer in `model` (once per
 * training iteration, after `loss.backward()`); returns the reports of the layers that updated,
 * by module name.
 */
export function stepDynamicSparsity(model: ModuleTree): Map<string, UpdateReport> {
  requireModule(model, "stepDynamicSparsity() model");
  const schedules = dynamicSchedules(model);
  // Plan every layer's step first (checks, drop and grow sets), so that a rejected call, e.g. a
  // NaN in one layer's dense gradient, advances none of them.
  const plans: [string, () => UpdateReport | null][] = schedules.map(([name, schedule]) => {
    try {
      return [name, schedule.planStep()];
    } catch (err) {
      throw new Error(`Layer "${name}": ${(err as Error).message}`, { cause: err });
    }
  });
  const reports = new Map<string, UpdateReport>();
  for (const [name, apply] of plans) {
    const report = apply();
    if (report !== null) reports.set(name, report);
  }
  return reports;
}
