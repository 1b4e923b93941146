/**
 * The IDX file format of the MNIST data set (http://yann.lecun.com/exdb/mnist/):
 *
 * ```
 * magic: 0x00 0x00 <type> <number of dimensions>
 * dims:  one unsigned 32-bit big-endian integer per dimension
 * data:  the elements, big-endian, row-major
 * type:  0x08 ubyte, 0x09 sbyte, 0x0B short (2 bytes), 0x0C int (4), 0x0D float (4), 0x0E double (8)
 * ```
 *
 * A gzip-compressed file (`.gz`, as MNIST is often distributed) is decompressed first.
 * @module
 */
import { gunzipSync } from "node:zlib";
import { FormatError } from "../io/format_error.ts";
import { checkPath } from "../io/atomic_write.ts";
import { describeValue, requireObject } from "../errors.ts";
import { numberOption } from "../options.ts";

/** Element types of IDX files. */
export type IdxDType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** The array holding an IDX file's elements (in host byte order). */
export type IdxArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A decoded IDX file. */
export interface IdxData {
  /** Element type. */
  dtype: IdxDType;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Elements, row-major. */
  data: IdxArray;
}

interface TypeInfo {
  dtype: IdxDType;
  size: number;
  code: number;
}

const TYPES: TypeInfo[] = [
  { code: 0x08, dtype: "uint8", size: 1 },
  { code: 0x09, dtype: "int8", size: 1 },
  { code: 0x0b, dtype: "int16", size: 2 },
  { code: 0x0c, dtype: "int32", size: 4 },
  { code: 0x0d, dtype: "float32", size: 4 },
  { code: 0x0e, dtype: "float64", size: 8 },
];

const SUPPORTED = TYPES.map((t) => `0x${t.code.toString(16).padStart(2, "0")} (${t.dtype})`)
  .join(", ");

function hex(bytes: Uint8Array): string {
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Parses IDX bytes (gzip-compressed or not). Throws `FormatError` naming `source` for a wrong
 * magic number, an unsupported type, a truncated file or extra bytes after the data.
 * `checkHeader`, when given, sees the header's type and shape before the data size is checked
 * (so that a file of the wrong kind is reported as such, not as "truncated").
 */
export function decodeIdx(
  bytes: Uint8Array,
  source = "IDX data",
  checkHeader?: (dtype: IdxDType, shape: readonly number[]) => void,
): IdxData {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("Bytes must be a Uint8Array");
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch (err) {
      throw new FormatError(
        `${source} looks gzip-compressed but does not decompress: ${(err as Error).message}`,
      );
    }
  }
  if (bytes.length < 4) {
    throw new FormatError(
      `${source} is truncated: ${bytes.length} bytes, an IDX file starts with a 4-byte magic number`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new FormatError(
      `${source} is not an IDX file: magic number ${hex(bytes.subarray(0, 4))} does not start ` +
        "with two zero bytes (expected 0x0000TTNN: type TT, NN dimensions)",
    );
  }
  const type = TYPES.find((t) => t.code === bytes[2]);
  if (type === undefined) {
    throw new FormatError(
      `${source} has unsupported IDX type 0x${
        bytes[2].toString(16).padStart(2, "0")
      } (magic number ${hex(bytes.subarray(0, 4))}); supported: ${SUPPORTED}`,
    );
  }
  const ndim = bytes[3];
  const dataStart = 4 + 4 * ndim;
  if (bytes.length < dataStart) {
    throw new FormatError(
      `${source} is truncated: ${bytes.length} bytes, but ${ndim} dimensions need a ` +
        `${dataStart}-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  checkHeader?.(type.dtype, shape);
  const expected = count * type.size;
  const available = bytes.length - dataStart;
  if (available < expected) {
    throw new FormatError(
      `${source} is truncated: shape [${
        shape.join(", ")
      }] of ${type.dtype} needs ${expected} bytes of data, the file has ${available}`,
    );
  }
  if (available > expected) {
    throw new FormatError(
      `${source} has ${available - expected} extra bytes after the ${expected} bytes of data ` +
        `that shape [${shape.join(", ")}] of ${type.dtype} needs (wrong dimensions?)`,
    );
  }
  return { dtype: type.dtype, shape, data: readElements(view, dataStart, count, type.dtype) };
}

function readElements(view: DataView, at: number, count: number, dtype: IdxDType): IdxArray {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + count));
    case "int8":
      return new Int8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + count));
    case "int16": {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(at + 2 * i, false);
      return out;
    }
    case "int32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(at + 4 * i, false);
      return out;
    }
    case "float32": {
      // As bits: through a double, a signalling NaN would come back quiet.
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint32(at + 4 * i, false);
      return out;
    }
    case "float64": {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, false);
      return out;
    }
  }
}

const ARRAY_OF: Record<IdxDType, new (n: number) => IdxArray> = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** Serializes an array as IDX bytes (uncompressed). */
export function encodeIdx(idx: IdxData): Uint8Array {
  requireObject(idx, "encodeIdx() idx", "{ dtype, shape, data }");
  const type = TYPES.find((t) => t.dtype === idx.dtype);
  if (type === undefined) {
    throw new TypeError(
      `Unknown IDX dtype ${JSON.stringify(idx.dtype)}; expected one of ${
        TYPES.map((t) => t.dtype).join(", ")
      }`,
    );
  }
  if (!(idx.data instanceof ARRAY_OF[idx.dtype])) {
    throw new TypeError(`IDX dtype ${idx.dtype} needs a ${ARRAY_OF[idx.dtype].name}`);
  }
  if (!Array.isArray(idx.shape)) {
    throw new TypeError(
      `encodeIdx() shape must be an array of integers, got ${describeValue(idx.shape)}`,
    );
  }
  if (idx.shape.length > 255) throw new RangeError("An IDX file holds at most 255 dimensions");
  let count = 1;
  for (const d of idx.shape) {
    numberOption(d, "encodeIdx() shape entries");
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new RangeError(`IDX dimensions must be integers in [0, 2^32), got [${idx.shape}]`);
    }
    count *= d;
  }
  if (count !== idx.data.length) {
    throw new RangeError(
      `Shape [${idx.shape.join(", ")}] holds ${count} elements, the data has ${idx.data.length}`,
    );
  }
  const start = 4 + 4 * idx.shape.length;
  const out = new Uint8Array(start + count * type.size);
  const view = new DataView(out.buffer);
  out[2] = type.code;
  out[3] = idx.shape.length;
  idx.shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  // float32 as bits: through a double, a signalling NaN would be written quiet.
  const data = idx.data instanceof Float32Array
    ? new Uint32Array(idx.data.buffer, idx.data.byteOffset, count)
    : idx.data;
  for (let i = 0; i < count; i++) {
    const at = start + i * type.size;
    switch (idx.dtype) {
      case "uint8":
        view.setUint8(at, data[i]);
        break;
      case "int8":
        view.setInt8(at, data[i]);
        break;
      case "int16":
        view.setInt16(at, data[i], false);
        break;
      case "int32":
        view.setInt32(at, data[i], false);
        break;
      case "float32":
        view.setUint32(at, data[i], false);
        break;
      case "float64":
        view.setFloat64(at, data[i], false);
        break;
    }
  }
  return out;
}

/** Reads an IDX file (plain or gzip-compressed). Errors name the path. */
export async function readIdx(path: string): Promise<IdxData> {
  checkPath(path, "readIdx() path");
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new Error(`Cannot read IDX file "${path}": ${(err as Error).message}`, { cause: err });
  }
  return decodeIdx(bytes, `"${path}"`);
}

/** Synchronous `readIdx`. */
export function readIdxSync(path: string): IdxData {
  checkPath(path, "readIdxSync() path");
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read IDX file "${path}": ${(err as Error).message}`, { cause: err });
  }
  return decodeIdx(bytes, `"${path}"`);
}
