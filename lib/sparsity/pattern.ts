/**
 * `SparsePattern`: the connectivity of a sparse layer, stored once as CSR by output row
 * (`rowPtr`, `colIdx`). The CSC view (`colPtr`, `rowIdx`, `cscToCsr`) is built lazily, on the
 * pattern's device, the first time something reads it: the CUDA input gradient does (its CSR
 * form would need atomics and lose determinism), and so does the CPU one at batch > 1 (a gather
 * per connection instead of a read-modify-write scatter); until then a pattern costs 4 bytes
 * per connection, 12 after.
 * Patterns are immutable: a topology change (loading a state dict, RigL/SET prune-and-grow)
 * builds a new pattern and swaps it in.
 *
 * Every array is an int32 `Storage` of the pattern's device, so kernels take `storage.ptr()`
 * on the CPU and on CUDA alike. The CSR arrays also stay on the host (`hostRowPtr`,
 * `hostColIdx`; the very same arrays on the CPU) for bookkeeping that runs in TS off the hot
 * path (the public `indices`, prune-and-grow).
 * @module
 */
import { int32Array } from "./host_arrays.ts";
import { check, native, ptr } from "../../ffi/library.ts";
import type { Device, Storage } from "../backend/backend.ts";
import { getBackend } from "../backend/mod.ts";
import { HostStorage } from "../backend/cpu.ts";
import { checkAllocation } from "../memory_check.ts";
import { numberOption } from "../options.ts";

/** The largest feature count or connection count the int32 kernels take: 2^31 - 1. */
export const MAX_INT32: number = 2147483647;

/** Checks that a size fits the int32 indices of the kernels; RangeError naming `what` otherwise. */
export function checkInt32Size(value: number, what: string): void {
  if (value > MAX_INT32) {
    // Beyond 2^53 the digits of a double are rounding noise (99999999999999980 for 1e17).
    const shown = value > Number.MAX_SAFE_INTEGER ? value.toPrecision(4) : String(value);
    throw new RangeError(
      `${what} is ${shown}, but the int32 sparse kernels need it below 2^31 (${MAX_INT32 + 1})`,
    );
  }
}

/** The CSC view of a pattern on one device (see `SparsePattern.cscView`). */
export interface CscView {
  /** CSC column pointers, `nCols + 1` entries. */
  readonly colPtr: Storage;
  /** Row (output) index of each CSC entry, `nnz` entries. */
  readonly rowIdx: Storage;
  /** For each CSC entry, the CSR position of its connection (where its value lives). */
  readonly cscToCsr: Storage;
}

/** The CSR arrays of a pattern on one device. */
interface PatternArrays {
  rowPtr: Storage;
  colIdx: Storage;
}

/**
 * Connectivity of an `nRows × nCols` sparse matrix (rows = outputs, columns = inputs), in CSR
 * order with columns sorted and unique within each row, plus its CSC view on demand.
 */
export class SparsePattern {
  /** Number of rows (output features). */
  readonly nRows: number;
  /** Number of columns (input features). */
  readonly nCols: number;
  /** Number of connections. */
  readonly nnz: number;
  /** Device of the storages. */
  readonly device: Device;
  /** CSR row pointers, `nRows + 1` entries: row o holds connections rowPtr[o] .. rowPtr[o+1]-1. */
  readonly rowPtr: Storage;
  /** CSR column (input) index of each connection, `nnz` entries. */
  readonly colIdx: Storage;
  /** CSR row pointers on the host (the same array as `rowPtr` on the CPU). */
  readonly hostRowPtr: Int32Array;
  /** CSR column indices on the host (the same array as `colIdx` on the CPU). */
  readonly hostColIdx: Int32Array;
  #csc: CscView | null = null;
  #csrToCsc: Storage | null = null;

  private constructor(
    nRows: number,
    nCols: number,
    hostRowPtr: Int32Array,
    hostColIdx: Int32Array,
    arrays: PatternArrays,
    device: Device,
  ) {
    this.nRows = nRows;
    this.nCols = nCols;
    this.nnz = hostColIdx.length;
    this.hostRowPtr = hostRowPtr;
    this.hostColIdx = hostColIdx;
    this.device = device;
    this.rowPtr = arrays.rowPtr;
    this.colIdx = arrays.colIdx;
    // Immutable at run time too (TypeScript's readonly is erased): kernels trust nnz and the
    // arrays to agree.
    Object.freeze(this);
  }

  /** Whether the CSC view has been built (see `cscView`). */
  get hasCscView(): boolean {
    return this.#csc !== null;
  }

  /**
   * The CSC view on this pattern's device, built on first use with the device's
   * `sl_csr_to_csc` (O(nnz + nRows + nCols); 8 bytes per connection + 4·(nCols + 1)) and kept
   * while the pattern lives.
   */
  cscView(): CscView {
    if (this.#csc !== null) return this.#csc;
    if (this.device === "cpu") {
      checkAllocation(
        8 * this.nnz + 4 * (this.nCols + 1),
        `The CSC view of a ${this.nRows} × ${this.nCols} pattern with ${this.nnz} connections`,
        "Raise the sparsity or narrow the layer",
        "8 bytes per connection: row index and position, built for the first batched backward",
      );
    }
    const backend = getBackend(this.device);
    const colPtr = backend.zeros("int32", this.nCols + 1);
    const rowIdx = backend.zeros("int32", this.nnz);
    const cscToCsr = backend.zeros("int32", this.nnz);
    try {
      backend.check(
        backend.kernels.sl_csr_to_csc(
          this.nRows,
          this.nCols,
          BigInt(this.nnz),
          this.rowPtr.ptr(),
          this.colIdx.ptr(),
          colPtr.ptr(),
          rowIdx.ptr(),
          cscToCsr.ptr(),
        ),
      );
    } catch (e) {
      for (const s of [colPtr, rowIdx, cscToCsr]) s.dispose();
      throw e;
    }
    this.#csc = Object.freeze({ colPtr, rowIdx, cscToCsr });
    return this.#csc;
  }

  /**
   * For each connection in CSR order, its position in the CSC view (the inverse of
   * `cscToCsr`): what a layer whose values are in CSC order reads them through in its forward
   * (`valueOrder: "csc"`). Built on first use from the CSC view (4 bytes per connection) and
   * kept while the pattern lives.
   */
  csrToCsc(): Storage {
    if (this.#csrToCsc !== null) return this.#csrToCsc;
    const view = this.cscView().cscToCsr;
    const toCsr = (view.host ?? view.toHost()) as Int32Array; // the live array on the CPU
    checkAllocation(
      4 * this.nnz,
      `The inverse CSC permutation of a ${this.nRows} × ${this.nCols} pattern with ${this.nnz} ` +
        "connections",
      "Raise the sparsity or narrow the layer",
      "4 bytes per connection, for a layer whose values are in CSC order",
    );
    const inverse = new Int32Array(this.nnz);
    for (let k = 0; k < this.nnz; k++) inverse[toCsr[k]] = k;
    this.#csrToCsc = getBackend(this.device).fromHost(inverse);
    return this.#csrToCsc;
  }

  /** CSC column pointers, `nCols + 1` entries (builds the CSC view; see `cscView`). */
  get colPtr(): Storage {
    return this.cscView().colPtr;
  }

  /** Row (output) index of each CSC entry, `nnz` entries (builds the CSC view). */
  get rowIdx(): Storage {
    return this.cscView().rowIdx;
  }

  /** For each CSC entry, the CSR position of its connection (builds the CSC view). */
  get cscToCsr(): Storage {
    return this.cscView().cscToCsr;
  }

  /**
   * A pattern from CSR arrays that are already sorted and unique within rows (taken without
   * copying). The arrays are checked natively (`sl_csr_validate`, O(nnz + nRows)); the CSC
   * view is left for `cscView` to build when needed. Throws NativeError naming the first bad
   * entry when the arrays are not a valid CSR pattern.
   */
  static fromCsr(
    nRows: number,
    nCols: number,
    rowPtr: Int32Array,
    colIdx: Int32Array,
  ): SparsePattern {
    int32Array(rowPtr, "rowPtr");
    int32Array(colIdx, "colIdx");
    checkDims(nRows, nCols, colIdx.length);
    if (rowPtr.length !== nRows + 1) {
      throw new RangeError(
        `rowPtr must hold nRows + 1 = ${nRows + 1} entries, got ${rowPtr.length}`,
      );
    }
    const lib = native();
    const nnz = BigInt(colIdx.length);
    check(lib.sl_csr_validate(nRows, nCols, nnz, ptr(rowPtr), ptr(colIdx)));
    const arrays: PatternArrays = {
      rowPtr: new HostStorage(rowPtr),
      colIdx: new HostStorage(colIdx),
    };
    return new SparsePattern(nRows, nCols, rowPtr, colIdx, arrays, "cpu");
  }

  /**
   * A pattern from COO entries in any order (`rows[k]`, `cols[k]` = output and input index of
   * connection k), sorted into CSR by `sl_coo_to_csr`. Also returns `perm`: for each CSR
   * position, the COO index of the connection that landed there (so `valuesCsr[p] =
   * values[perm[p]]`). Entries must be in range and distinct: callers validate first (see
   * lib/sparsity/user.ts) to get messages in terms of their own arguments; this throws
   * NativeError / RangeError otherwise.
   */
  static fromCoo(
    nRows: number,
    nCols: number,
    rows: Int32Array,
    cols: Int32Array,
  ): { pattern: SparsePattern; perm: Int32Array } {
    int32Array(rows, "rows");
    int32Array(cols, "cols");
    if (rows.length !== cols.length) {
      throw new RangeError(
        `rows and cols must have equal lengths, got ${rows.length} and ${cols.length}`,
      );
    }
    const sorted = cooToCsr(nRows, nCols, rows, cols);
    if (sorted.firstDuplicate >= 0) {
      const k = sorted.firstDuplicate;
      throw new RangeError(
        `Connection ${k} (output ${rows[k]}, input ${cols[k]}) appears more than once`,
      );
    }
    const pattern = SparsePattern.fromCsr(nRows, nCols, sorted.rowPtr, sorted.colIdx);
    return { pattern, perm: sorted.perm };
  }

  /**
   * This pattern with its CSR arrays on `device` (itself when already there). The host CSR
   * arrays are kept (shared) for TS-side bookkeeping; the CSC view is not moved but rebuilt on
   * the new device if something there asks for it.
   */
  to(device: Device): SparsePattern {
    if (device === this.device) return this;
    const backend = getBackend(device);
    const arrays: PatternArrays = {
      rowPtr: backend.fromHost(this.hostRowPtr),
      colIdx: backend.fromHost(this.hostColIdx),
    };
    return new SparsePattern(
      this.nRows,
      this.nCols,
      this.hostRowPtr,
      this.hostColIdx,
      arrays,
      device,
    );
  }

  /** Releases device memory of the storages (no-op on the CPU). The pattern is unusable after. */
  dispose(): void {
    if (this.device === "cpu") return;
    const csc = this.#csc === null ? [] : [this.#csc.colPtr, this.#csc.rowIdx, this.#csc.cscToCsr];
    const inverse = this.#csrToCsc === null ? [] : [this.#csrToCsc];
    for (const s of [this.rowPtr, this.colIdx, ...csc, ...inverse]) s.dispose();
    this.#csc = null;
    this.#csrToCsc = null;
  }

  /** Output (row) index of each connection in CSR order: the expansion of `rowPtr`. */
  cooRows(): Int32Array {
    const rows = new Int32Array(this.nnz);
    const rp = this.hostRowPtr;
    for (let o = 0; o < this.nRows; o++) rows.fill(o, rp[o], rp[o + 1]);
    return rows;
  }

  /**
   * CSR position of connection (row, col), or -1 when absent (binary search in the row).
   */
  positionOf(row: number, col: number): number {
    numberOption(row, "positionOf() row");
    numberOption(col, "positionOf() col");
    if (!(row >= 0 && row < this.nRows)) return -1;
    let lo = this.hostRowPtr[row];
    let hi = this.hostRowPtr[row + 1] - 1;
    const ci = this.hostColIdx;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = ci[mid];
      if (c === col) return mid;
      if (c < col) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * For each connection of `next`, its CSR position in this pattern, or -1 when it is new
   * (a merge of the two sorted rows, O(nnz)). This is the `oldIndexOf` map that
   * `remapParameterState` takes when a topology change keeps some connections.
   */
  matchInto(next: SparsePattern): Int32Array {
    if (next.nRows !== this.nRows || next.nCols !== this.nCols) {
      throw new RangeError(
        `Cannot match a ${next.nRows}×${next.nCols} pattern against a ${this.nRows}×${this.nCols} one`,
      );
    }
    const out = new Int32Array(next.nnz);
    const aPtr = this.hostRowPtr, aCol = this.hostColIdx;
    const bPtr = next.hostRowPtr, bCol = next.hostColIdx;
    for (let o = 0; o < this.nRows; o++) {
      let a = aPtr[o];
      const aEnd = aPtr[o + 1];
      for (let b = bPtr[o]; b < bPtr[o + 1]; b++) {
        const c = bCol[b];
        while (a < aEnd && aCol[a] < c) a++;
        out[b] = a < aEnd && aCol[a] === c ? a : -1;
      }
    }
    return out;
  }

  /**
   * Bytes held on this pattern's device by the CSR arrays, by the CSC view once it is built
   * (`hasCscView`), and by `csrToCsc` once built.
   */
  memoryBytes(): number {
    const csr = 4 * ((this.nRows + 1) + this.nnz);
    const csc = this.#csc === null ? 0 : 4 * ((this.nCols + 1) + 2 * this.nnz);
    return csr + csc + (this.#csrToCsc === null ? 0 : 4 * this.nnz);
  }
}

function checkDims(nRows: number, nCols: number, nnz: number): void {
  for (const [name, v] of [["nRows", nRows], ["nCols", nCols]] as const) {
    numberOption(v, name);
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    checkInt32Size(v, name);
  }
  checkInt32Size(nnz, "The number of connections");
}

/** Result of `cooToCsr`. */
export interface CooToCsrResult {
  /** CSR row pointers (`nRows + 1`). */
  rowPtr: Int32Array;
  /** Column indices in CSR order (trimmed to the number of distinct entries). */
  colIdx: Int32Array;
  /** COO index of the entry at each CSR position. */
  perm: Int32Array;
  /** COO index of the first entry repeating an earlier one, or -1. */
  firstDuplicate: number;
}

/**
 * Sorts COO entries into CSR with the native `sl_coo_to_csr` (stable; duplicates coalesced and
 * the first one reported). Entries must be within [0, nRows) × [0, nCols) (NativeError otherwise).
 */
export function cooToCsr(
  nRows: number,
  nCols: number,
  rows: Int32Array,
  cols: Int32Array,
): CooToCsrResult {
  checkDims(nRows, nCols, rows.length);
  const nnz = rows.length;
  const rowPtr = new Int32Array(nRows + 1);
  const colIdx = new Int32Array(nnz);
  const perm64 = new BigInt64Array(nnz);
  const nnzOut = new BigInt64Array(1);
  const firstDuplicate = new BigInt64Array(1);
  check(
    native().sl_coo_to_csr(
      nRows,
      nCols,
      BigInt(nnz),
      ptr(rows),
      ptr(cols),
      null,
      ptr(rowPtr),
      ptr(colIdx),
      null,
      ptr(perm64),
      ptr(nnzOut),
      ptr(firstDuplicate),
    ),
  );
  const distinct = Number(nnzOut[0]);
  // perm values are COO indices < nnz < 2^31: int32 is enough and a quarter of the bigint cost.
  const perm = new Int32Array(distinct);
  for (let p = 0; p < distinct; p++) perm[p] = Number(perm64[p]);
  return {
    rowPtr,
    colIdx: distinct === nnz ? colIdx : colIdx.slice(0, distinct),
    perm,
    firstDuplicate: Number(firstDuplicate[0]),
  };
}
