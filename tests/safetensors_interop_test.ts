// safetensors against files made without this library: tests/fixtures/safetensors/ holds files
// that make_fixtures.py wrote with numpy, struct and json from the format's description (every
// dtype read here, edge values, 0-d and empty tensors, metadata or none, header padded or not,
// data in any order), and expected.json what they hold, byte for byte. Also what the writer must
// refuse so that it never writes a file that the reference reader (or this one) cannot read.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsSync,
  type Safetensors,
  toFloat32,
} from "../lib/io/safetensors.ts";
import { FormatError } from "../lib/io/format_error.ts";
import { rawSafetensors } from "./_raw_safetensors.ts";

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/safetensors/${name}`, import.meta.url));

interface Expected {
  metadata: Record<string, string> | null;
  tensors: Record<string, { dtype: string; shape: number[]; hex: string; f32_hex?: string[] }>;
}
const EXPECTED = JSON.parse(Deno.readTextFileSync(fixture("expected.json"))) as Record<
  string,
  Expected
>;

const hex = (a: ArrayBufferView) =>
  Array.from(
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
const bits32 = (a: Float32Array) =>
  Array.from(
    new Uint32Array(a.buffer, a.byteOffset, a.length),
    (b) => b.toString(16).padStart(8, "0"),
  );

function expectFile(file: Safetensors, want: Expected, what: string): void {
  assert.deepEqual(file.metadata === undefined ? null : { ...file.metadata }, want.metadata, what);
  assert.deepEqual(Object.keys(file.tensors).sort(), Object.keys(want.tensors).sort(), what);
  for (const [name, w] of Object.entries(want.tensors)) {
    const t = file.tensors[name];
    assert.equal(t.dtype, w.dtype, `${what} ${name}`);
    assert.deepEqual(t.shape, w.shape, `${what} ${name}`);
    assert.equal(hex(t.data), w.hex, `${what} ${name}: bytes`);
    if (w.f32_hex) assert.deepEqual(bits32(toFloat32(t)), w.f32_hex, `${what} ${name}: float32`);
  }
}

Deno.test("files written from the format's description by Python decode bit for bit", async () => {
  for (const [name, want] of Object.entries(EXPECTED)) {
    const path = fixture(name);
    expectFile(decodeSafetensors(Deno.readFileSync(path)), want, `${name} (decode)`);
    expectFile(loadSafetensorsSync(path), want, `${name} (loadSafetensorsSync)`);
    expectFile(await loadSafetensors(path), want, `${name} (loadSafetensors)`);
  }
  // Beyond 2^53, I64 and U64 keep every bit.
  const file = loadSafetensorsSync(fixture("python_writer.safetensors"));
  assert.deepEqual(Array.from(file.tensors.i64.data as BigInt64Array), [
    0n,
    -1n,
    2n ** 53n + 1n,
    -(2n ** 53n) - 1n,
    2n ** 63n - 1n,
    -(2n ** 63n),
  ]);
  assert.deepEqual(Array.from(file.tensors.u64.data as BigUint64Array), [
    0n,
    2n ** 64n - 1n,
    2n ** 53n + 1n,
    2n ** 63n,
  ]);
});

Deno.test("re-encoding the Python-written files gives the reference writer's bytes", () => {
  const bytes = Deno.readFileSync(fixture("python_writer.safetensors"));
  const file = decodeSafetensors(bytes);
  assert.deepEqual(encodeSafetensors(file.tensors, file.metadata), bytes);
  // The unpadded file and the one with data in another order come back in the reference layout.
  const unpadded = decodeSafetensors(Deno.readFileSync(fixture("unpadded.safetensors")));
  const again = encodeSafetensors(unpadded.tensors);
  assert.equal(Number(new DataView(again.buffer).getBigUint64(0, true)) % 8, 0);
  expectFile(decodeSafetensors(again), EXPECTED["unpadded.safetensors"], "unpadded, re-encoded");
});

Deno.test("F16 NaNs widen to float32 with their sign and payload, as numpy widens them", () => {
  const half = [0x7e00, 0xfe00, 0x7e01, 0xffff, 0x7c01, 0xfdff];
  const got = toFloat32({ dtype: "F16", shape: [half.length], data: new Uint16Array(half) });
  assert.deepEqual(bits32(got), [
    "7fc00000",
    "ffc00000",
    "7fc02000",
    "ffffe000",
    "7f802000",
    "ffbfe000",
  ]);
});

Deno.test("the writer refuses names and metadata that the reader would refuse", () => {
  const t = { dtype: "F32" as const, shape: [1], data: new Float32Array([1]) };
  // An unpaired surrogate has no UTF-8 form: the header would hold an escape no reader takes.
  assert.throws(
    () => encodeSafetensors({ "w\ud800": t }),
    /Tensor name "w\\ud800" has an unpaired surrogate/,
  );
  assert.throws(
    () => encodeSafetensors({ w: t }, { k: "v\udc00" }),
    /Metadata value of "k": "v\\udc00" has an unpaired surrogate/,
  );
  assert.throws(
    () => encodeSafetensors({ w: t }, { "k\ud83d": "v" }),
    /Metadata key "k\\ud83d" has an unpaired surrogate/,
  );
  // A paired one is an ordinary character.
  const ok = decodeSafetensors(encodeSafetensors({ "w\u{1F600}": t }, { "k\u{1F600}": "v" }));
  assert.deepEqual(Object.keys(ok.tensors), ["w\u{1F600}"]);
});

Deno.test("the writer refuses an empty tensor whose byte size overflows 64 bits on the way", () => {
  // The readers form shape × dtype size left to right in 64 bits and refuse an overflow.
  const empty = (dtype: "U8" | "F32", shape: number[]) =>
    encodeSafetensors({
      t: { dtype, shape, data: dtype === "U8" ? new Uint8Array() : new Float32Array() },
    });
  assert.throws(
    () => empty("U8", [2 ** 32, 2 ** 32, 0]),
    /Tensor "t" shape \[4294967296, 4294967296, 0\] is too large: its byte size overflows 64 bits/,
  );
  assert.throws(() => empty("F32", [2 ** 40, 2 ** 30, 0]), /overflows 64 bits/);
  // A leading 0 keeps the product at 0: such a file is valid and round-trips.
  const back = decodeSafetensors(empty("F32", [0, 2 ** 32, 2 ** 32]));
  assert.deepEqual(back.tensors.t.shape, [0, 2 ** 32, 2 ** 32]);
});

Deno.test("a tensor entry written as a JSON array is refused (a difference from serde)", () => {
  // serde reads a struct from a sequence of its fields, so the reference takes this file; no
  // writer produces it, and this reader wants the object form.
  const bytes = rawSafetensors('{"t":["F32",[1],[0,4]]}', new Uint8Array(4));
  assert.throws(
    () => decodeSafetensors(bytes),
    (e: Error) =>
      e instanceof FormatError &&
      /tensor "t" must be an object with dtype, shape and data_offsets/.test(e.message),
  );
});
