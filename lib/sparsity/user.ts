/**
 * User-defined connectivity: a `(2, nnz)` list of connections, row 0 the output index and
 * row 1 the input index of each (the layout of the seed's `connectivity` argument and of a
 * SparseLinear's `indices`). Accepted as an `IndexTensor` of shape [2, nnz], nested arrays
 * `[outputs, inputs]`, or a flat row-major `Int32Array` / `BigInt64Array` of length 2·nnz.
 *
 * Validation names the first bad connection k (the smallest k that is out of range,
 * non-integer or repeats an earlier connection), its value, and what is allowed.
 * @module
 */
import { describeValue, ShapeError } from "../errors.ts";
import { numberOption } from "../options.ts";
import { IndexTensor } from "../tensor.ts";
import { checkInt32Size, cooToCsr, type CooToCsrResult, SparsePattern } from "./pattern.ts";

/**
 * A `(2, nnz)` connection list: row 0 = output index, row 1 = input index of each connection.
 * Flat typed arrays are read row-major (the nnz outputs, then the nnz inputs).
 */
export type Connectivity =
  | IndexTensor
  | Int32Array
  | BigInt64Array
  | readonly (readonly number[] | ArrayLike<number>)[];

/** Connection list as two int32 arrays, checked to be in range and distinct. */
export interface CheckedConnections {
  /** Output index of each connection, in the caller's order. */
  rows: Int32Array;
  /** Input index of each connection, in the caller's order. */
  cols: Int32Array;
}

/**
 * Converts and checks a connection list for an `inFeatures → outFeatures` layer: shape
 * (2, nnz), nnz ≥ 1 and < 2^31, every index an integer in range, no connection twice.
 * `name` is how messages refer to the argument (e.g. "connectivity" or "indices").
 * Throws TypeError (wrong kind), ShapeError (wrong shape) or RangeError (bad entry).
 */
export function checkConnectivity(
  connectivity: Connectivity,
  inFeatures: number,
  outFeatures: number,
  name = "connectivity",
): CheckedConnections {
  const { rows, cols } = checkAndSort(connectivity, inFeatures, outFeatures, name);
  return { rows, cols };
}

/**
 * `checkConnectivity`, also returning the CSR order its duplicate check computed (the one sort
 * of the list: sorting it again to build the pattern held two sorts' arrays at once).
 */
function checkAndSort(
  connectivity: Connectivity,
  inFeatures: number,
  outFeatures: number,
  name: string,
): CheckedConnections & { sorted: CooToCsrResult } {
  numberOption(inFeatures, "inFeatures");
  numberOption(outFeatures, "outFeatures");
  const { rows, cols, badEntry, badAt } = toRowsAndCols(
    connectivity,
    inFeatures,
    outFeatures,
    name,
  );
  const nnz = rows.length;
  if (nnz === 0) {
    throw new ShapeError(`${name} holds no connections: a sparse layer needs at least one`);
  }
  checkInt32Size(nnz, `The number of connections in ${name}`);
  // The connections before the first bad entry are in range: a duplicate among them comes
  // first. Without a bad entry, this checks the whole list.
  if (badEntry !== null) {
    if (badAt > 0) {
      const prefix = cooToCsr(outFeatures, inFeatures, rows.slice(0, badAt), cols.slice(0, badAt));
      if (prefix.firstDuplicate >= 0) throw duplicateError(rows, cols, prefix.firstDuplicate, name);
    }
    throw badEntry;
  }
  const sorted = cooToCsr(outFeatures, inFeatures, rows, cols);
  if (sorted.firstDuplicate >= 0) throw duplicateError(rows, cols, sorted.firstDuplicate, name);
  return { rows, cols, sorted };
}

/**
 * Builds the CSR pattern of a checked connection list. `perm[p]` is the index in the user's
 * list of the connection at CSR position p.
 */
export function userConnectivity(
  connectivity: Connectivity,
  inFeatures: number,
  outFeatures: number,
  name = "connectivity",
): { pattern: SparsePattern; perm: Int32Array } {
  const { sorted } = checkAndSort(connectivity, inFeatures, outFeatures, name);
  const pattern = SparsePattern.fromCsr(outFeatures, inFeatures, sorted.rowPtr, sorted.colIdx);
  return { pattern, perm: sorted.perm };
}

function duplicateError(rows: Int32Array, cols: Int32Array, k: number, name: string): RangeError {
  let earlier = -1;
  for (let j = 0; j < k; j++) {
    if (rows[j] === rows[k] && cols[j] === cols[k]) {
      earlier = j;
      break;
    }
  }
  return new RangeError(
    `${name} connection ${k} (output ${rows[k]}, input ${cols[k]}) repeats connection ` +
      `${earlier}; every (output, input) pair may appear once`,
  );
}

/** The two rows as int32, up to the first entry of the wrong kind or out of range. */
interface ReadConnections extends CheckedConnections {
  /** The error for the first bad entry, or null when all are in range. */
  badEntry: Error | null;
  /** The connection index of the first bad entry (valid when `badEntry` is set). */
  badAt: number;
}

/** Reads the two rows, checking every entry's kind and range; stops at the first bad one. */
function toRowsAndCols(
  connectivity: Connectivity,
  inFeatures: number,
  outFeatures: number,
  name: string,
): ReadConnections {
  let rowsIn: ArrayLike<number | bigint>;
  let colsIn: ArrayLike<number | bigint>;
  if (connectivity instanceof IndexTensor) {
    if (connectivity.shape.length !== 2 || connectivity.shape[0] !== 2) {
      throw new ShapeError(
        `${name} must have shape [2, nnz], got [${connectivity.shape.join(", ")}]`,
      );
    }
    const nnz = connectivity.shape[1];
    rowsIn = connectivity.data.subarray(0, nnz);
    colsIn = connectivity.data.subarray(nnz, 2 * nnz);
  } else if (connectivity instanceof Int32Array || connectivity instanceof BigInt64Array) {
    if (connectivity.length % 2 !== 0) {
      throw new ShapeError(
        `${name} as a flat ${connectivity.constructor.name} must hold 2 · nnz entries ` +
          `(the outputs, then the inputs), got ${connectivity.length}`,
      );
    }
    const nnz = connectivity.length / 2;
    rowsIn = connectivity.subarray(0, nnz);
    colsIn = connectivity.subarray(nnz);
  } else if (Array.isArray(connectivity)) {
    if (connectivity.length !== 2) {
      throw new ShapeError(
        `${name} must have shape (2, nnz): [outputs, inputs], got an array of ${connectivity.length} rows`,
      );
    }
    const [r, c] = connectivity;
    if (!isArrayLike(r) || !isArrayLike(c)) {
      throw new TypeError(`${name} must be [outputs, inputs] with two arrays of integers`);
    }
    if (r.length !== c.length) {
      throw new ShapeError(
        `${name} rows must have equal lengths (one output and one input per connection), ` +
          `got ${r.length} outputs and ${c.length} inputs`,
      );
    }
    rowsIn = r;
    colsIn = c;
  } else {
    throw new TypeError(
      `${name} must be an IndexTensor of shape [2, nnz], [outputs, inputs] arrays, or a flat ` +
        `Int32Array / BigInt64Array of length 2 · nnz; got ${describeValue(connectivity)}`,
    );
  }
  const nnz = rowsIn.length;
  const rows = new Int32Array(nnz);
  const cols = new Int32Array(nnz);
  for (let k = 0; k < nnz; k++) {
    try {
      rows[k] = checkEntry(rowsIn[k], k, 0, outFeatures, name);
      cols[k] = checkEntry(colsIn[k], k, 1, inFeatures, name);
    } catch (err) {
      return { rows, cols, badEntry: err as Error, badAt: k };
    }
  }
  return { rows, cols, badEntry: null, badAt: -1 };
}

function checkEntry(
  value: number | bigint,
  k: number,
  row: 0 | 1,
  bound: number,
  name: string,
): number {
  const what = row === 0 ? "output" : "input";
  const limit = row === 0 ? "outFeatures" : "inFeatures";
  const where = `${name}[${row}][${k}] (${what} index of connection ${k})`;
  if (typeof value === "bigint") {
    if (value < 0n || value >= BigInt(bound)) {
      throw new RangeError(`${where} = ${value} is outside [0, ${bound}) (${limit} = ${bound})`);
    }
    return Number(value);
  }
  if (typeof value !== "number") {
    throw new TypeError(`${where} must be an integer, got ${describeValue(value)}`);
  }
  if (!Number.isInteger(value)) {
    throw new RangeError(
      `${where} = ${value} is not an integer; indices must be integers in [0, ${bound})`,
    );
  }
  if (value < 0 || value >= bound) {
    throw new RangeError(`${where} = ${value} is outside [0, ${bound}) (${limit} = ${bound})`);
  }
  return value;
}

function isArrayLike(v: unknown): v is ArrayLike<number> {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}
