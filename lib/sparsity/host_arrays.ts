/**
 * Kind checks for the typed arrays that the exported sparsity helpers hand to native code. The
 * kernels read raw 4-byte elements, so a Float64Array or a Uint8Array of the right length would
 * be misread (wrong answers) or read past its end (a crash): each is a TypeError here instead.
 * @module
 */
import { elementCount } from "../backend/cpu.ts";
import { describeValue } from "../errors.ts";
import { numberOption } from "../options.ts";
import type { HostCsr } from "./topk.ts";

/** pattern.ts's MAX_INT32, restated: pattern.ts imports this module (no import cycle). */
const MAX_INT32 = 2147483647;

/** `value` if it is a Float32Array, else a TypeError naming `what`. */
export function float32Array(value: unknown, what: string): Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new TypeError(`${what} must be a Float32Array, got ${describeValue(value)}`);
  }
  return checkLength(value, what);
}

/** `value` if it is an Int32Array, else a TypeError naming `what`. */
export function int32Array(value: unknown, what: string): Int32Array {
  if (!(value instanceof Int32Array)) {
    throw new TypeError(`${what} must be an Int32Array, got ${describeValue(value)}`);
  }
  return checkLength(value, what);
}

/** Native code reads `length` elements: a subclass' `length` must be the real count. */
function checkLength<T extends Float32Array | Int32Array>(value: T, what: string): T {
  const count = elementCount(value);
  if (value.length !== count) {
    throw new TypeError(
      `${what}'s length (${value.length}) is not its element count (${count})`,
    );
  }
  return value;
}

/**
 * Checks a host CSR pattern's array kinds, sizes and `rowPtr` length (nRows + 1), which native
 * code trusts; the contents (monotone offsets, columns in range) are validated natively.
 */
export function checkHostCsr(csr: HostCsr, what: string): void {
  if (csr === null || typeof csr !== "object") {
    throw new TypeError(
      `${what} must be { nRows, nCols, rowPtr, colIdx }, got ${describeValue(csr)}`,
    );
  }
  for (const dim of ["nRows", "nCols"] as const) {
    const n = csr[dim];
    numberOption(n, `${what}.${dim}`);
    if (!Number.isInteger(n) || n < 0 || n > MAX_INT32) {
      throw new RangeError(`${what}.${dim} must be an integer in [0, 2^31), got ${String(n)}`);
    }
  }
  int32Array(csr.rowPtr, `${what}.rowPtr`);
  int32Array(csr.colIdx, `${what}.colIdx`);
  if (csr.rowPtr.length !== csr.nRows + 1) {
    throw new RangeError(
      `${what}.rowPtr must hold nRows + 1 = ${csr.nRows + 1} entries, got ${csr.rowPtr.length}`,
    );
  }
}
