/**
 * The safetensors format (https://github.com/huggingface/safetensors), read and written exactly
 * as the reference Rust implementation does:
 *
 * ```
 * [8 bytes: N, unsigned little-endian]  [N bytes: JSON header, UTF-8, padded with spaces]  [data]
 * ```
 *
 * The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (byte
 * offsets into the data part) plus an optional `"__metadata__"` string-to-string map. Data is
 * little-endian, row-major. On writing, tensors are ordered by dtype alignment (largest first)
 * then by name, the header is compact JSON padded with spaces to a multiple of 8 bytes (so
 * every tensor starts 8-byte aligned), and offsets are contiguous from 0 — byte for byte what
 * `safetensors.torch.save_file` writes; a name or metadata string with an unpaired surrogate (no
 * UTF-8 form, so no reader takes it) is refused. On reading, everything is validated before any
 * tensor is returned: header size (at most 100 MB, as in Rust), UTF-8, JSON, known dtypes, shapes,
 * offsets contiguous and covering the data exactly, bytes matching shape × dtype size (without
 * overflowing 64 bits). The header is judged as serde_json judges it (checked against
 * safetensors 0.8.0): JSON whitespace may surround it but a BOM may not; `"__metadata__": null`
 * means no metadata; shapes and offsets must be written as integers (`4.0`, `1e0`, `-0` are
 * refused); a tensor field or `"__metadata__"` given twice is refused, while of a repeated tensor
 * name or metadata key the last wins (every one still type-checked); strings may not hold
 * unpaired surrogates; nesting stops at 127 levels. Unlike the reference, dtypes missing here
 * (newer ones such as F8_E8M0 or C64), dimensions above 2^53 − 1 (possible only in an empty
 * tensor, and not held exactly by a number) and a tensor entry written as a JSON array of its
 * three fields (`["F32", [2], [0, 8]]`, which serde reads as the struct but no writer writes) are
 * refused.
 * @module
 */
import { checkPath, writeFileAtomic, writeFileAtomicSync } from "./atomic_write.ts";
import { type Json, JsonNumber, JsonObject, readJson, show } from "./json_as_written.ts";
import { FormatError } from "./format_error.ts";
import { numberOption } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Element types of the format (the reference implementation's `Dtype`, in its order). */
export type SafetensorsDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/**
 * The typed array holding a tensor's elements. F16, BF16 hold raw bits (`Uint16Array`), FP8 and
 * BOOL raw bytes (`Uint8Array`); `toFloat32()` / `toInt32()` convert.
 */
export type SafetensorsArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor: dtype, shape and row-major elements. */
export interface SafeTensor {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions, outermost first (`[]` is a scalar). */
  shape: readonly number[];
  /** Elements; the array type must fit the dtype (see `SafetensorsArray`). */
  data: SafetensorsArray;
}

/** A decoded file: tensors by name (in file order) and the optional string metadata. */
export interface Safetensors {
  /** Tensors by name, in the order of their data in the file. Null-prototype object. */
  tensors: Record<string, SafeTensor>;
  /** The `__metadata__` map, or undefined when the file has none. */
  metadata: Record<string, string> | undefined;
}

/** Largest header accepted, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

interface DTypeInfo {
  /** Bytes per element. */
  size: number;
  /** Position in the reference `Dtype` enum: the sort key when writing. */
  rank: number;
  /** Constructor of the array type holding it. */
  array: { new (buffer: ArrayBuffer, offset?: number, length?: number): SafetensorsArray };
}

const DTYPES: Record<SafetensorsDType, DTypeInfo> = {
  BOOL: { size: 1, rank: 0, array: Uint8Array },
  U8: { size: 1, rank: 1, array: Uint8Array },
  I8: { size: 1, rank: 2, array: Int8Array },
  F8_E5M2: { size: 1, rank: 3, array: Uint8Array },
  F8_E4M3: { size: 1, rank: 4, array: Uint8Array },
  I16: { size: 2, rank: 5, array: Int16Array },
  U16: { size: 2, rank: 6, array: Uint16Array },
  F16: { size: 2, rank: 7, array: Uint16Array },
  BF16: { size: 2, rank: 8, array: Uint16Array },
  I32: { size: 4, rank: 9, array: Int32Array },
  U32: { size: 4, rank: 10, array: Uint32Array },
  F32: { size: 4, rank: 11, array: Float32Array },
  F64: { size: 8, rank: 12, array: Float64Array },
  I64: { size: 8, rank: 13, array: BigInt64Array },
  U64: { size: 8, rank: 14, array: BigUint64Array },
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkHostEndianness(): void {
  // Typed arrays use the host's byte order; the format is little-endian.
  if (!LITTLE_ENDIAN) throw new Error("safetensors I/O needs a little-endian host");
}

/** Whether `name` is a dtype this module knows. */
export function isSafetensorsDType(name: unknown): name is SafetensorsDType {
  return typeof name === "string" && Object.hasOwn(DTYPES, name);
}

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: SafetensorsDType): number {
  if (!isSafetensorsDType(dtype)) {
    const Err = typeof dtype === "string" ? RangeError : TypeError;
    throw new Err(`dtypeSize() dtype must be one of ${KNOWN}, got ${describeValue(dtype)}`);
  }
  return DTYPES[dtype].size;
}

const KNOWN = Object.keys(DTYPES).join(", ");

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor checked for writing, with its byte view. */
interface Planned {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  bytes: Uint8Array;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkTensorForWriting(name: string, t: SafeTensor): Planned {
  if (t === null || typeof t !== "object") {
    throw new TypeError(`Tensor "${name}" must be an object with dtype, shape and data`);
  }
  if (!isSafetensorsDType(t.dtype)) {
    throw new TypeError(
      `Tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)}; expected one of ${KNOWN}`,
    );
  }
  const notNumber = Array.isArray(t.shape) ? t.shape.findIndex((d) => typeof d !== "number") : -1;
  if (!Array.isArray(t.shape) || notNumber >= 0) {
    throw new TypeError(
      `Tensor "${name}" shape must be an array of non-negative integers, got ${
        Array.isArray(t.shape)
          ? `${describeValue(t.shape[notNumber])} at index ${notNumber}`
          : describeValue(t.shape)
      }`,
    );
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(
      `Tensor "${name}" shape must be an array of non-negative integers, got ${
        JSON.stringify(t.shape)
      }`,
    );
  }
  if (byteSize(t.shape, t.dtype) === undefined) {
    // Possible only with a 0 after the overflow; the readers would refuse the file.
    throw new RangeError(
      `Tensor "${name}" shape [${t.shape.join(", ")}] is too large: its byte size overflows ` +
        "64 bits (a reader forms it left to right)",
    );
  }
  const info = DTYPES[t.dtype];
  if (!(t.data instanceof info.array)) {
    const got = (t.data as object | null)?.constructor?.name ?? String(t.data);
    throw new TypeError(
      `Tensor "${name}" has dtype ${t.dtype}, which needs a ${info.array.name}, got ${got}`,
    );
  }
  const count = elementCount(t.shape);
  if (t.data.length !== count) {
    throw new RangeError(
      `Tensor "${name}" shape [${t.shape.join(", ")}] holds ${count} elements, ` +
        `but its data has ${t.data.length}`,
    );
  }
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dtype: t.dtype, shape: t.shape, bytes };
}

const textEncoder = new TextEncoder();

/** Orders names as Rust orders `String`s: by their UTF-8 bytes. */
function compareUtf8(a: string, b: string): number {
  const x = textEncoder.encode(a);
  const y = textEncoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * Refuses a string with an unpaired surrogate: it has no UTF-8 form, so the header would hold
 * an escape such as "\ud800" that no reader accepts (Rust strings cannot hold it).
 */
function checkWellFormed(s: string, what: string): void {
  if (!s.isWellFormed()) {
    throw new RangeError(
      `${what} ${JSON.stringify(s)} has an unpaired surrogate, which a safetensors header ` +
        "cannot hold (it has no UTF-8 form)",
    );
  }
}

/** Checks the tensors and builds the padded header; returns the header and data chunks. */
function plan(
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> | undefined,
): Uint8Array[] {
  checkHostEndianness();
  if (tensors === null || typeof tensors !== "object") {
    throw new TypeError("Tensors must be an object mapping names to tensors");
  }
  const planned: Planned[] = [];
  for (const name of Object.keys(tensors)) {
    if (name === "__metadata__") {
      throw new RangeError(`"__metadata__" is reserved by the format and cannot name a tensor`);
    }
    checkWellFormed(name, "Tensor name");
    planned.push(checkTensorForWriting(name, tensors[name]));
  }
  // The reference order: descending dtype alignment, then name.
  planned.sort((a, b) =>
    DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareUtf8(a.name, b.name)
  );

  const parts: string[] = [];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new TypeError("Metadata must be an object mapping strings to strings");
    }
    const entries = Object.keys(metadata).map((key) => {
      const value = metadata[key];
      if (typeof value !== "string") {
        throw new TypeError(
          `Metadata value of "${key}" must be a string, got ${typeof value}`,
        );
      }
      checkWellFormed(key, "Metadata key");
      checkWellFormed(value, `Metadata value of "${key}":`);
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    parts.push(`"__metadata__":{${entries.join(",")}}`);
  }
  let offset = 0;
  for (const t of planned) {
    const end = offset + t.bytes.length;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${
        t.shape.join(",")
      }],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = textEncoder.encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return [header, ...planned.map((t) => t.bytes)];
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes.
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@sparselinear/sparselinear";
 * const bytes = encodeSafetensors({
 *   weight: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 * }, { format: "pt" });
 * console.log(decodeSafetensors(bytes).tensors.weight.data); // Float32Array [1, 2, 3, 4]
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const chunks = plan(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically (temporary file in the same directory, flushed, then
 * renamed): an error — unwritable directory, full disk — leaves no partial file behind.
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, plan(tensors, metadata));
}

/** Synchronous `saveSafetensors`. */
export function saveSafetensorsSync(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomicSync(path, plan(tensors, metadata));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** A header entry, validated against the data length. */
interface Entry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** A validated header. */
interface Header {
  entries: Entry[];
  metadata: Record<string, string> | undefined;
}

/** Reads and range-checks the 8-byte header length. */
function headerLength(first8: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) {
    throw new FormatError(
      `${source} is too short to be a safetensors file: ${fileSize} bytes, ` +
        "the 8-byte header length alone needs 8",
    );
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(
      `${source} declares a header of ${n} bytes, more than the ${MAX_HEADER_BYTES} allowed ` +
        "(corrupt file, or not a safetensors file)",
    );
  }
  if (n + 8n > BigInt(fileSize)) {
    throw new FormatError(
      `${source} declares a header of ${n} bytes, but the file has only ${
        fileSize - 8
      } bytes after the length (truncated or not a safetensors file)`,
    );
  }
  return Number(n);
}

/**
 * A usize as serde reads one: an unsigned integer literal (not 4.0, 1e0 or -0), here also at
 * most 2^53 - 1 so that a number holds it exactly; NaN otherwise.
 */
function usize(v: Json): number {
  if (!(v instanceof JsonNumber) || !/^(0|[1-9][0-9]*)$/.test(v.literal)) return NaN;
  const n = Number(v.literal);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** `"__metadata__"`: null (as if absent) or a string-to-string map, last of repeated keys wins. */
function readMetadata(v: Json, source: string): Record<string, string> | undefined {
  if (v === null) return undefined;
  if (!(v instanceof JsonObject)) {
    throw new FormatError(
      `${source}: "__metadata__" must map strings to strings (or be null), got ${show(v)}`,
    );
  }
  const metadata = Object.create(null) as Record<string, string>;
  for (const [key, value] of v.entries) {
    if (typeof value !== "string") {
      throw new FormatError(
        `${source}: "__metadata__" value of "${key}" must be a string, got ${show(value)}`,
      );
    }
    metadata[key] = value;
  }
  return metadata;
}

const FIELDS = ["dtype", "shape", "data_offsets"];

/** One tensor entry, type-checked as serde checks it (offsets and sizes come later). */
function readEntry(name: string, v: Json, source: string): Entry {
  const where = `${source}: tensor "${name}"`;
  if (!(v instanceof JsonObject)) {
    throw new FormatError(`${where} must be an object with dtype, shape and data_offsets`);
  }
  const fields = new Map<string, Json>();
  for (const [key, value] of v.entries) {
    if (!FIELDS.includes(key)) continue; // other fields are ignored, as in the reference
    if (fields.has(key)) throw new FormatError(`${where} has "${key}" twice`);
    fields.set(key, value);
  }
  for (const key of FIELDS) {
    if (!fields.has(key)) throw new FormatError(`${where} has no "${key}"`);
  }
  let dtype = fields.get("dtype")!;
  // serde also reads an enum variant written as a one-entry map: {"F32": null}.
  if (dtype instanceof JsonObject && dtype.entries.length === 1 && dtype.entries[0][1] === null) {
    dtype = dtype.entries[0][0];
  }
  if (!isSafetensorsDType(dtype)) {
    throw new FormatError(`${where} has unsupported dtype ${show(dtype)}; supported: ${KNOWN}`);
  }
  const shape = fields.get("shape")!;
  const dims = Array.isArray(shape) ? shape.map(usize) : [NaN];
  if (!dims.every(Number.isSafeInteger)) {
    throw new FormatError(
      `${where} has an invalid shape ${show(shape)}: expected an array of unsigned integers ` +
        "(no fraction or exponent, at most 2^53 - 1)",
    );
  }
  const offsets = fields.get("data_offsets")!;
  const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets.map(usize) : [];
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end)) {
    throw new FormatError(
      `${where} has invalid data_offsets ${show(offsets)}: expected [begin, end], ` +
        "two unsigned integers",
    );
  }
  return { name, dtype, shape: dims, begin, end };
}

const U64_MAX = 2n ** 64n - 1n;

/** Bytes of shape × dtype size; undefined where the reference's checked usize math overflows. */
function byteSize(shape: readonly number[], dtype: SafetensorsDType): bigint | undefined {
  // Overflow at any step counts even when a later 0 would cancel it, as in Rust.
  let n = 1n;
  for (const d of [...shape, DTYPES[dtype].size]) {
    n *= BigInt(d);
    if (n > U64_MAX) return undefined;
  }
  return n;
}

/** Parses and validates the JSON header against `dataLength` bytes of data. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): Header {
  let text: string;
  try {
    // ignoreBOM keeps a leading BOM in the text, so JSON.parse refuses it as the reference does.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new FormatError(`${source} has a header that is not valid UTF-8`);
  }
  try {
    JSON.parse(text);
  } catch (err) {
    const bom = text.startsWith("\uFEFF") ? " (it starts with a byte order mark)" : "";
    throw new FormatError(
      `${source} has a header that is not valid JSON${bom}: ${(err as Error).message}`,
    );
  }
  const json = readJson(text, source);
  if (!(json instanceof JsonObject)) {
    throw new FormatError(`${source} has a header that is not a JSON object`);
  }

  let metadata: Record<string, string> | undefined;
  let sawMetadata = false;
  // Every entry is type-checked, but of a repeated tensor name the last one wins.
  const byName = new Map<string, Entry>();
  for (const [name, value] of json.entries) {
    if (name !== "__metadata__") byName.set(name, readEntry(name, value, source));
    else if (sawMetadata) throw new FormatError(`${source}: "__metadata__" appears twice`);
    else {
      sawMetadata = true;
      metadata = readMetadata(value, source);
    }
  }
  const entries = [...byName.values()];

  for (const e of entries) {
    const where = `${source}: tensor "${e.name}"`;
    if (e.begin > e.end) {
      throw new FormatError(
        `${where} has invalid data_offsets [${e.begin},${e.end}]: expected begin <= end`,
      );
    }
    const nbytes = byteSize(e.shape, e.dtype);
    if (nbytes === undefined) {
      throw new FormatError(
        `${where} shape [${e.shape.join(", ")}] is too large: its byte size overflows 64 bits`,
      );
    }
    if (nbytes !== BigInt(e.end - e.begin)) {
      throw new FormatError(
        `${where} is ${e.dtype} of shape [${e.shape.join(", ")}], which needs ${nbytes} bytes, ` +
          `but data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin}`,
      );
    }
  }

  // Offsets must tile the data part exactly: sorted, contiguous from 0, ending at its end.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      const what = e.begin < expected ? "overlaps the previous tensor" : "leaves a gap before it";
      throw new FormatError(
        `${source}: tensor "${e.name}" data_offsets [${e.begin}, ${e.end}] ${what} ` +
          `(expected it to begin at byte ${expected})`,
      );
    }
    expected = e.end;
  }
  if (expected !== dataLength) {
    throw new FormatError(
      expected > dataLength
        ? `${source} is truncated: the header describes ${expected} bytes of tensor data, ` +
          `the file holds ${dataLength}`
        : `${source} has ${dataLength - expected} bytes after the last tensor's data ` +
          `(the header describes ${expected} of ${dataLength})`,
    );
  }
  return { entries, metadata };
}

/** A fresh, aligned array of the entry's type whose bytes `fill` writes. */
function allocate(entry: Entry, fill: (bytes: Uint8Array) => void): SafeTensor {
  const info = DTYPES[entry.dtype];
  const buffer = new ArrayBuffer(entry.end - entry.begin);
  fill(new Uint8Array(buffer));
  return { dtype: entry.dtype, shape: entry.shape, data: new info.array(buffer) };
}

function assemble(header: Header, read: (e: Entry) => SafeTensor): Safetensors {
  const tensors = Object.create(null) as Record<string, SafeTensor>;
  for (const e of header.entries) tensors[e.name] = read(e);
  return { tensors, metadata: header.metadata };
}

/**
 * Parses safetensors bytes. Everything is validated first; each tensor gets its own aligned
 * copy of its elements. Throws `FormatError` naming `source` and the problem.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "Safetensors data"): Safetensors {
  checkHostEndianness();
  if (!(bytes instanceof Uint8Array)) throw new TypeError("Bytes must be a Uint8Array");
  const n = headerLength(bytes.subarray(0, 8), bytes.length, source);
  const dataStart = 8 + n;
  const header = parseHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  return assemble(
    header,
    (e) => allocate(e, (out) => out.set(bytes.subarray(dataStart + e.begin, dataStart + e.end))),
  );
}

function describeRead(path: string, err: unknown): Error {
  if (err instanceof FormatError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(`Cannot read "${path}": ${reason}`, { cause: err });
}

async function readExactly(file: Deno.FsFile, into: Uint8Array, path: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const n = await file.read(into.subarray(done));
    if (n === null) throw new FormatError(`"${path}" ended early (the file shrank while read)`);
    done += n;
  }
}

function readExactlySync(file: Deno.FsFile, into: Uint8Array, path: string): void {
  let done = 0;
  while (done < into.length) {
    const n = file.readSync(into.subarray(done));
    if (n === null) throw new FormatError(`"${path}" ended early (the file shrank while read)`);
    done += n;
  }
}

/**
 * Reads a safetensors file. The header is validated against the file size before any tensor
 * data is read; each tensor is read straight into its own array (no whole-file copy).
 */
export async function loadSafetensors(path: string): Promise<Safetensors> {
  checkPath(path);
  checkHostEndianness();
  const source = `"${path}"`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    const size = (await file.stat()).size;
    const first8 = new Uint8Array(Math.min(8, size));
    await readExactly(file, first8, path);
    const n = headerLength(first8, size, source);
    const headerBytes = new Uint8Array(n);
    await readExactly(file, headerBytes, path);
    const header = parseHeader(headerBytes, size - 8 - n, source);
    // Entries are sorted and contiguous, so reading in order needs no seeking.
    const tensors = Object.create(null) as Record<string, SafeTensor>;
    for (const e of header.entries) {
      const buffer = new ArrayBuffer(e.end - e.begin);
      await readExactly(file, new Uint8Array(buffer), path);
      tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new DTYPES[e.dtype].array(buffer) };
    }
    return { tensors, metadata: header.metadata };
  } catch (err) {
    throw describeRead(path, err);
  } finally {
    file?.close();
  }
}

/** Synchronous `loadSafetensors`. */
export function loadSafetensorsSync(path: string): Safetensors {
  checkPath(path);
  checkHostEndianness();
  const source = `"${path}"`;
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path, { read: true });
    const size = file.statSync().size;
    const first8 = new Uint8Array(Math.min(8, size));
    readExactlySync(file, first8, path);
    const n = headerLength(first8, size, source);
    const headerBytes = new Uint8Array(n);
    readExactlySync(file, headerBytes, path);
    const header = parseHeader(headerBytes, size - 8 - n, source);
    const opened = file;
    return assemble(header, (e) => allocate(e, (out) => readExactlySync(opened, out, path)));
  } catch (err) {
    throw describeRead(path, err);
  } finally {
    file?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Conversions

/** float16 bits to a number (exact: every half value is a float32 value). */
export function halfToNumber(bits: number): number {
  numberOption(bits, "halfToNumber() bits");
  return halfValue(bits);
}

/** `halfToNumber` without the argument check, for the per-element loop of `toFloat32`. */
function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * A tensor's elements as float32. F32 returns the array itself; F16 and BF16 are widened
 * exactly, NaNs bit for bit (sign and payload). Other dtypes (F64 would round, integers are not
 * values of a float parameter) throw a `TypeError` naming `what`.
 */
export function toFloat32(tensor: SafeTensor, what = "Tensor"): Float32Array {
  const { dtype, data } = tensor;
  if (dtype === "F32") return data as Float32Array;
  if (dtype === "F16") {
    const bits = data as Uint16Array;
    const out = new Float32Array(bits.length);
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) {
      const h = bits[i];
      // A NaN keeps its sign and payload (as numpy widens it): the number NaN would lose both.
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        words[i] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
      } else out[i] = halfValue(h);
    }
    return out;
  }
  if (dtype === "BF16") {
    const bits = data as Uint16Array;
    const out = new Float32Array(bits.length);
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) words[i] = bits[i] << 16;
    return out;
  }
  throw new TypeError(
    `${what} is ${dtype}; a float32 tensor needs F32, F16 or BF16` +
      (dtype === "F64" ? " (convert it with .float() before saving: F64 would be rounded)" : ""),
  );
}

const INTEGER_DTYPES = new Set<SafetensorsDType>([
  "U8",
  "I8",
  "I16",
  "U16",
  "I32",
  "U32",
  "I64",
  "U64",
]);

/**
 * A tensor's elements as int32: I32 returns the array itself; other integer dtypes are
 * converted with a range check (an I64 index ≥ 2^31 is a `RangeError`, not a wrap-around).
 * Float dtypes throw a `TypeError` naming `what`.
 */
export function toInt32(tensor: SafeTensor, what = "Tensor"): Int32Array {
  const { dtype, data } = tensor;
  if (dtype === "I32") return data as Int32Array;
  if (!INTEGER_DTYPES.has(dtype)) {
    throw new TypeError(
      `${what} is ${dtype}; an integer tensor needs an integer dtype (I64, I32, ...)`,
    );
  }
  const out = new Int32Array(data.length);
  if (dtype === "I64" || dtype === "U64") {
    // Read each 64-bit value as (low, high) 32-bit words: it fits int32 exactly when the high
    // word is the sign extension of the low one. Much faster than going through BigInt.
    const words = new Int32Array(data.buffer, data.byteOffset, data.length * 2);
    for (let i = 0; i < out.length; i++) {
      const low = words[2 * i];
      const high = words[2 * i + 1];
      const fits = dtype === "I64" ? high === (low >> 31) : high === 0 && low >= 0;
      if (!fits) {
        throw new RangeError(
          `${what} element ${i} is ${data[i]}, outside the int32 range [-2147483648, 2147483647]`,
        );
      }
      out[i] = low;
    }
    return out;
  }
  if (dtype === "U32") {
    const src = data as Uint32Array;
    for (let i = 0; i < src.length; i++) {
      if (src[i] > 0x7fffffff) {
        throw new RangeError(
          `${what} element ${i} is ${src[i]}, above the int32 maximum 2147483647`,
        );
      }
    }
  }
  out.set(data as Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array);
  return out;
}

/** int32 values widened to int64 (as PyTorch stores indices), without going through BigInt. */
export function int32ToInt64(values: Int32Array): BigInt64Array {
  const words = new Int32Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    words[2 * i] = values[i];
    words[2 * i + 1] = values[i] >> 31;
  }
  return new BigInt64Array(words.buffer);
}
