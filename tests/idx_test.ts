// IDX reader: a file built byte by byte, big-endian decoding of every type, gzip, and one
// FormatError per malformation (wrong magic, unsupported type, truncated, extra bytes).
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { decodeIdx, encodeIdx, type IdxData, readIdx, readIdxSync } from "../lib/data/idx.ts";
import { FormatError } from "../lib/io/format_error.ts";

/** A 2 × 3 ubyte file, written out by hand. */
// deno-fmt-ignore
const SMALL = new Uint8Array([
  0x00, 0x00, 0x08, 0x02, // magic: ubyte, 2 dimensions
  0x00, 0x00, 0x00, 0x02, // 2 rows
  0x00, 0x00, 0x00, 0x03, // 3 columns
  1, 2, 3, 250, 251, 252, // data
]);

Deno.test("decodes a hand-built ubyte file", () => {
  const idx = decodeIdx(SMALL);
  assert.equal(idx.dtype, "uint8");
  assert.deepEqual(idx.shape, [2, 3]);
  assert.ok(idx.data instanceof Uint8Array);
  assert.deepEqual(Array.from(idx.data), [1, 2, 3, 250, 251, 252]);
  assert.deepEqual(encodeIdx(idx), SMALL);
});

Deno.test("decodes multi-byte types as big-endian", () => {
  const int16 = new Uint8Array([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]);
  assert.deepEqual(Array.from(decodeIdx(int16).data), [258, -2]);
  const int32 = new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 1, 0x80, 0, 0, 1]);
  assert.deepEqual(Array.from(decodeIdx(int32).data), [-2147483647]);
  const float32 = new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]);
  assert.deepEqual(Array.from(decodeIdx(float32).data), [1.5]);
  const float64 = new Uint8Array([0, 0, 0x0e, 1, 0, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(decodeIdx(float64).data), [-2]);
  const int8 = new Uint8Array([0, 0, 0x09, 1, 0, 0, 0, 2, 0x80, 0x7f]);
  assert.deepEqual(Array.from(decodeIdx(int8).data), [-128, 127]);
});

Deno.test("every type round-trips through encodeIdx/decodeIdx", () => {
  const cases: IdxData[] = [
    { dtype: "uint8", shape: [2, 2], data: new Uint8Array([0, 1, 128, 255]) },
    { dtype: "int8", shape: [3], data: new Int8Array([-128, 0, 127]) },
    { dtype: "int16", shape: [1, 3], data: new Int16Array([-32768, 12345, 32767]) },
    { dtype: "int32", shape: [2], data: new Int32Array([-2147483648, 2147483647]) },
    { dtype: "float32", shape: [2], data: new Float32Array([Math.fround(0.1), -Infinity]) },
    { dtype: "float64", shape: [2, 1, 1], data: new Float64Array([Math.PI, -0]) },
    { dtype: "uint8", shape: [0, 28, 28], data: new Uint8Array(0) },
  ];
  for (const c of cases) {
    const back = decodeIdx(encodeIdx(c));
    assert.equal(back.dtype, c.dtype);
    assert.deepEqual(back.shape, c.shape);
    assert.deepEqual(back.data, c.data);
  }
});

Deno.test("gzip-compressed files are decompressed", () => {
  const idx = decodeIdx(new Uint8Array(gzipSync(SMALL)));
  assert.deepEqual(Array.from(idx.data), [1, 2, 3, 250, 251, 252]);
  const broken = new Uint8Array(gzipSync(SMALL)).subarray(0, 12);
  assert.throws(() => decodeIdx(broken, "x.gz"), /x.gz looks gzip-compressed but does not/);
});

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeIdx(bytes, "data.idx"), FormatError);
  assert.throws(() => decodeIdx(bytes, "data.idx"), pattern);
}

Deno.test("a wrong magic number is rejected", () => {
  const bytes = SMALL.slice();
  bytes[0] = 0x1a; // e.g. a text or other binary file
  rejects(bytes, /data.idx is not an IDX file: magic number 0x1a000802/);
  bytes[0] = 0;
  bytes[1] = 1;
  rejects(bytes, /magic number 0x00010802 does not start with two zero bytes/);
});

Deno.test("an unsupported type byte is rejected, listing the supported ones", () => {
  const bytes = SMALL.slice();
  bytes[2] = 0x0a;
  rejects(bytes, /unsupported IDX type 0x0a .*supported: 0x08 \(uint8\), 0x09 \(int8\)/);
});

Deno.test("truncated headers and data are rejected", () => {
  rejects(SMALL.subarray(0, 3), /data.idx is truncated: 3 bytes/);
  rejects(SMALL.subarray(0, 9), /truncated: 9 bytes, but 2 dimensions need a 12-byte header/);
  rejects(
    SMALL.subarray(0, SMALL.length - 1),
    /truncated: shape \[2, 3\] of uint8 needs 6 bytes of data, the file has 5/,
  );
  const int32 = new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0]);
  rejects(int32, /shape \[2\] of int32 needs 8 bytes of data, the file has 6/);
  // Dimensions whose product is huge do not allocate: the size check comes first.
  const huge = new Uint8Array([0, 0, 0x08, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  rejects(huge, /truncated: shape \[4294967295, 4294967295\]/);
});

Deno.test("extra bytes after the data are rejected", () => {
  const bytes = new Uint8Array([...SMALL, 0, 0]);
  rejects(bytes, /data.idx has 2 extra bytes after the 6 bytes of data/);
});

Deno.test("readIdx reads files and names the path in errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "small-idx2-ubyte");
    await Deno.writeFile(path, SMALL);
    assert.deepEqual((await readIdx(path)).shape, [2, 3]);
    assert.deepEqual(readIdxSync(path).shape, [2, 3]);
    await Deno.writeFile(path, SMALL.subarray(0, 14));
    await assert.rejects(() => readIdx(path), /small-idx2-ubyte" is truncated/);
    const missing = join(dir, "missing");
    await assert.rejects(() => readIdx(missing), /Cannot read IDX file ".*missing"/);
    assert.throws(() => readIdxSync(missing), /Cannot read IDX file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeIdx rejects data that does not fit its dtype or shape", () => {
  assert.throws(
    () => encodeIdx({ dtype: "uint8", shape: [2], data: new Int8Array(2) }),
    /IDX dtype uint8 needs a Uint8Array/,
  );
  assert.throws(
    () => encodeIdx({ dtype: "uint8", shape: [3], data: new Uint8Array(2) }),
    /Shape \[3\] holds 3 elements, the data has 2/,
  );
});

Deno.test("float32 elements keep their exact bits, NaN payloads included", () => {
  // Read through a double, a signalling NaN came back quiet (0x7fa00001 as 0x7fe00001), where
  // numpy's frombuffer(..., ">f4") keeps every bit.
  const bits = [0x7fa00001, 0xff800001, 0x7fc00000, 0x00000001, 0x80000000, 0x3fc00000];
  const bytes = new Uint8Array(8 + 4 * bits.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, 0x0d, 1]);
  view.setUint32(4, bits.length);
  bits.forEach((b, i) => view.setUint32(8 + 4 * i, b));
  const idx = decodeIdx(bytes);
  assert.deepEqual(Array.from(new Uint32Array(idx.data.buffer)), bits);
  assert.deepEqual(encodeIdx(idx), bytes);
});
