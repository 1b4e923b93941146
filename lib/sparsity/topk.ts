/**
 * TypeScript entry points of the dynamic-sparsity kernels (csrc/cpu/topk.c): exact top-k /
 * bottom-k selection, RigL's chunked dense-gradient top-k outside a pattern, SET's uniform
 * sampler of absent positions, and the CSR rebuild after a drop + grow.
 *
 * They work on host arrays (the bookkeeping of a topology update runs on the CPU library, off
 * the hot path). Every selection is exact and deterministic: ties go to the lower index (the
 * lower row-major position for matrix positions), and results come in ascending order. RigL's
 * dense gradient is computed in a fixed order too (each entry one chain of fused multiply-adds
 * over the batch), so its growth does not depend on the thread count or on `maxSize`.
 * @module
 */
import { checkHostCsr, float32Array, int32Array } from "./host_arrays.ts";
import { check, native, ptr } from "../../ffi/library.ts";
import { MAX_INT32 } from "./pattern.ts";
import { booleanOption, checkOptionKeys, numberOption } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Options of `topk`. */
export interface TopkOptions {
  /** Pick the k smallest instead of the k largest (default false). */
  smallest?: boolean;
  /** Rank by magnitude |score| instead of the signed score (default false). */
  abs?: boolean;
}

function checkCount(k: number, what: string, max: number, maxWhat: string): void {
  numberOption(k, what);
  if (!Number.isInteger(k) || k < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${k}`);
  }
  if (k > max) throw new RangeError(`${what} = ${k} exceeds ${maxWhat} (${max})`);
}

/**
 * Indices of the `k` best entries of `scores` (largest by default; smallest and/or by
 * magnitude with `options`), in ascending index order; ties go to the lower index. One native
 * call (radix select, O(n)). A NaN score is an error.
 *
 * @example
 * ```ts
 * import { topk } from "@sparselinear/sparselinear";
 * console.log(topk(new Float32Array([0.5, -3, 2, 0.1]), 2, { abs: true })); // Int32Array [1, 2]
 * ```
 */
export function topk(scores: Float32Array, k: number, options: TopkOptions = {}): Int32Array {
  float32Array(scores, "topk() scores");
  checkOptionKeys(options, ["smallest", "abs"], "topk()");
  checkCount(k, "k", scores.length, "the number of scores");
  if (scores.length > MAX_INT32) {
    throw new RangeError(`topk() takes at most ${MAX_INT32} scores, got ${scores.length}`);
  }
  const smallest = booleanOption(options.smallest, "topk() smallest", false);
  const abs = booleanOption(options.abs, "topk() abs", false);
  const flags = (smallest ? 1 : 0) | (abs ? 2 : 0);
  const out = new Int32Array(k);
  check(native().sl_topk(BigInt(scores.length), ptr(scores), BigInt(k), flags, ptr(out)));
  return out;
}

/** A CSR pattern on the host: `rowPtr[nRows + 1]`, `colIdx[nnz]` (sorted, unique per row). */
export interface HostCsr {
  /** Number of rows (outputs). */
  nRows: number;
  /** Number of columns (inputs). */
  nCols: number;
  /** Row pointers, nRows + 1 entries. */
  rowPtr: Int32Array;
  /** Column index of each entry, sorted and unique within a row. */
  colIdx: Int32Array;
}

/** Matrix positions (row, column) in row-major order. */
export interface Positions {
  /** Row (output) index of each position. */
  rows: Int32Array;
  /** Column (input) index of each position. */
  cols: Int32Array;
}

/** Result of `denseGradTopk`: the positions and the gradient there. */
export interface GradTopk extends Positions {
  /** G = dYᵀ·X at each position (signed). */
  grad: Float32Array;
}

function absentCount(csr: HostCsr): number {
  return csr.nRows * csr.nCols - csr.colIdx.length;
}

/**
 * RigL's growth criterion: the `k` positions with the largest |G| of the dense gradient
 * G = dYᵀ·X (`G[o, i] = Σ_b dy[b, o] · x[b, i]`) among those NOT in `pattern`, in row-major
 * order. `x` is `[batch, nCols]`, `dy` `[batch, nRows]` (row-major). G is computed in chunks
 * of at most `maxSize` entries (whole rows: `maxSize >= nCols`) with a running top-k, so the
 * memory is bounded by `maxSize` floats + O(k), whatever the layer's width.
 */
export function denseGradTopk(
  pattern: HostCsr,
  x: Float32Array,
  dy: Float32Array,
  batch: number,
  k: number,
  maxSize: number,
): GradTopk {
  checkHostCsr(pattern, "denseGradTopk() pattern");
  float32Array(x, "denseGradTopk() x");
  float32Array(dy, "denseGradTopk() dy");
  const { nRows, nCols } = pattern;
  checkCount(k, "k", absentCount(pattern), "the number of positions outside the pattern");
  numberOption(batch, "batch");
  if (!Number.isInteger(batch) || batch < 0 || batch > MAX_INT32) {
    throw new RangeError(`batch must be an integer in [0, ${MAX_INT32}], got ${batch}`);
  }
  if (x.length !== batch * nCols || dy.length !== batch * nRows) {
    throw new RangeError(
      `denseGradTopk() needs x of ${batch}·${nCols} and dy of ${batch}·${nRows} values, got ` +
        `${x.length} and ${dy.length}`,
    );
  }
  numberOption(maxSize, "maxSize");
  if (!Number.isSafeInteger(maxSize) || maxSize < nCols) {
    throw new RangeError(
      `maxSize = ${maxSize} cannot hold one row of the dense gradient: it must be an integer ` +
        `>= the number of inputs (${nCols})`,
    );
  }
  const rows = new Int32Array(k), cols = new Int32Array(k), grad = new Float32Array(k);
  check(
    native().sl_dense_grad_topk(
      batch,
      nCols,
      nRows,
      ptr(x),
      ptr(dy),
      BigInt(pattern.colIdx.length),
      ptr(pattern.rowPtr),
      ptr(pattern.colIdx),
      BigInt(k),
      BigInt(maxSize),
      ptr(rows),
      ptr(cols),
      ptr(grad),
    ),
  );
  return { rows, cols, grad };
}

/**
 * SET's growth: `k` distinct positions drawn uniformly among those NOT in `pattern`, in
 * row-major order. Deterministic for a given `seed` (an integer in [0, 2^64)); no dense
 * scratch, so it works at any width.
 */
export function sampleAbsent(pattern: HostCsr, k: number, seed: number | bigint): Positions {
  checkHostCsr(pattern, "sampleAbsent() pattern");
  checkCount(k, "k", absentCount(pattern), "the number of positions outside the pattern");
  if (typeof seed !== "number" && typeof seed !== "bigint") {
    throw new TypeError(
      `sampleAbsent() seed must be a number or a bigint, got ${describeValue(seed)}`,
    );
  }
  const isSeed = typeof seed === "bigint"
    ? seed >= 0n && seed < 1n << 64n
    : Number.isSafeInteger(seed) && seed >= 0;
  if (!isSeed) {
    throw new RangeError(`sampleAbsent() seed must be an integer in [0, 2^64), got ${seed}`);
  }
  const seed64 = BigInt(seed);
  const rows = new Int32Array(k), cols = new Int32Array(k);
  check(
    native().sl_sample_absent(
      pattern.nRows,
      pattern.nCols,
      BigInt(pattern.colIdx.length),
      ptr(pattern.rowPtr),
      ptr(pattern.colIdx),
      BigInt(k),
      seed64,
      ptr(rows),
      ptr(cols),
    ),
  );
  return { rows, cols };
}

/** Result of `csrDropGrow`. */
export interface DropGrowResult {
  /** The new row pointers. */
  rowPtr: Int32Array;
  /** The new column indices. */
  colIdx: Int32Array;
  /** The new values (kept: old value; grown: 0), or null when no values were given. */
  values: Float32Array | null;
  /** Old CSR position of each new entry, -1 for a grown one. */
  oldIndex: Int32Array;
}

/**
 * The pattern after removing the CSR entries `drop` and adding the positions `grow` (which must
 * not be kept connections). With `regrownKeepPast` (RigL's default), a grown position that is
 * a connection dropped in the same call keeps its old value and old index: it never left.
 */
export function csrDropGrow(
  pattern: HostCsr,
  values: Float32Array | null,
  drop: Int32Array,
  grow: Positions,
  regrownKeepPast = true,
): DropGrowResult {
  checkHostCsr(pattern, "csrDropGrow() pattern");
  booleanOption(regrownKeepPast, "csrDropGrow() regrownKeepPast", true);
  if (values !== null) float32Array(values, "csrDropGrow() values");
  int32Array(drop, "csrDropGrow() drop");
  if (grow === null || typeof grow !== "object") {
    throw new TypeError("csrDropGrow() grow must be { rows, cols } (Int32Arrays)");
  }
  int32Array(grow.rows, "csrDropGrow() grow.rows");
  int32Array(grow.cols, "csrDropGrow() grow.cols");
  const nnz = pattern.colIdx.length;
  if (grow.rows.length !== grow.cols.length) {
    throw new RangeError(
      `grow.rows and grow.cols must have equal lengths, got ${grow.rows.length} and ` +
        `${grow.cols.length}`,
    );
  }
  if (values !== null && values.length !== nnz) {
    throw new RangeError(
      `values must hold one value per connection (${nnz}), got ${values.length}`,
    );
  }
  const newNnz = nnz - drop.length + grow.rows.length;
  if (newNnz < 0) {
    throw new RangeError(`Cannot drop ${drop.length} of ${nnz} connections`);
  }
  const rowPtr = new Int32Array(pattern.nRows + 1);
  const colIdx = new Int32Array(newNnz);
  const newValues = values === null ? null : new Float32Array(newNnz);
  const oldIndex = new Int32Array(newNnz);
  check(
    native().sl_csr_drop_grow(
      pattern.nRows,
      pattern.nCols,
      BigInt(nnz),
      ptr(pattern.rowPtr),
      ptr(pattern.colIdx),
      ptr(values),
      BigInt(drop.length),
      ptr(drop),
      BigInt(grow.rows.length),
      ptr(grow.rows),
      ptr(grow.cols),
      regrownKeepPast ? 1 : 0,
      ptr(rowPtr),
      ptr(colIdx),
      ptr(newValues),
      ptr(oldIndex),
    ),
  );
  return { rowPtr, colIdx, values: newValues, oldIndex };
}
