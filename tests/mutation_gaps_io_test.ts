/**
 * Behaviours of the safetensors header parser (judged as the Rust reference does), the atomic
 * file writes, and the small-world and ERK input checks that no other test pinned down, found
 * by mutation testing (bench/RESULTS.md, "Mutation testing"). Each test names the planted bugs
 * it catches (J: JSON as written, S: header rules, A: atomic writes, W: small-world, E: ERK).
 * @module
 */
import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { decodeSafetensors } from "../lib/io/safetensors.ts";
import { FormatError } from "../lib/io/format_error.ts";
import { rawSafetensors } from "./_raw_safetensors.ts";
import { writeFileAtomic, writeFileAtomicSync } from "../lib/io/atomic_write.ts";
import { smallWorldPattern } from "../lib/sparsity/small_world.ts";
import { erkSparsities } from "../lib/sparsity/erk.ts";

const decode = (header: string, data = new Uint8Array(0)) =>
  decodeSafetensors(rawSafetensors(header, data), "t.safetensors");

// --- lib/io/json_as_written.ts ----------------------------------------------------------------

Deno.test("J6: a tab right after a number literal is JSON whitespace", () => {
  const st = decode(
    '{"w":{"dtype":"F32","shape":[1\t],"data_offsets":[0\t,4\t]}}',
    new Uint8Array(4),
  );
  assert.deepEqual(st.tensors.w.shape, [1]);
});

Deno.test("J8: `false` is shown as false in an error message", () => {
  assert.throws(
    () => decode('{"w":{"dtype":false,"shape":[],"data_offsets":[0,4]}}', new Uint8Array(4)),
    /unsupported dtype false;/,
  );
});

Deno.test("J14: a long value is cut to 100 characters plus ... in a message", () => {
  const shape = `[${Array(60).fill("1.5").join(",")}]`;
  assert.throws(
    () => decode(`{"w":{"dtype":"F32","shape":${shape},"data_offsets":[0,4]}}`),
    (e: Error) => e instanceof FormatError && e.message.includes(`${shape.slice(0, 100)}...:`),
  );
});

// --- lib/io/safetensors.ts (header rules) -----------------------------------------------------

Deno.test("S2: a shape dimension of 2^53 is refused (not held exactly), even beside a 0", () => {
  assert.throws(
    () => decode('{"w":{"dtype":"F32","shape":[0,9007199254740992],"data_offsets":[0,0]}}'),
    /invalid shape/,
  );
});

Deno.test("S8: data_offsets must have exactly two entries", () => {
  assert.throws(
    () => decode('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', new Uint8Array(4)),
    /invalid data_offsets/,
  );
});

// --- lib/io/atomic_write.ts -------------------------------------------------------------------

Deno.test("A1: writeFileAtomic refuses an empty path with a TypeError", async () => {
  await assert.rejects(() => writeFileAtomic("", []), TypeError);
  assert.throws(() => writeFileAtomicSync("", []), TypeError);
});

Deno.test("A6: an existing file at the temporary name is never written into", async () => {
  const dir = await Deno.makeTempDir();
  const original = crypto.getRandomValues;
  // deno-lint-ignore no-explicit-any
  (crypto as any).getRandomValues = <T extends ArrayBufferView>(a: T) => {
    (a as unknown as Uint32Array).fill(0xabcdef);
    return a;
  };
  try {
    const target = join(dir, "m.bin");
    const tmp = join(dir, `.m.bin.abcdefabcdef.tmp`);
    await Deno.writeTextFile(tmp, "stale contents that are longer than the new ones");
    await assert.rejects(
      () => writeFileAtomic(target, [new TextEncoder().encode("new")]),
      /Cannot write/,
    );
    await assert.rejects(() => Deno.stat(target), Deno.errors.NotFound);
    // Nor removed: the writer did not create it.
    assert.equal(await Deno.readTextFile(tmp), "stale contents that are longer than the new ones");
  } finally {
    // deno-lint-ignore no-explicit-any
    (crypto as any).getRandomValues = original;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A8: the temporary file is hidden and in the target's directory", async () => {
  const dir = await Deno.makeTempDir();
  const rename = Deno.rename;
  const seen: string[] = [];
  // deno-lint-ignore no-explicit-any
  (Deno as any).rename = (from: string, to: string) => {
    seen.push(String(from));
    return rename(from, to);
  };
  try {
    const target = join(dir, "m.bin");
    await writeFileAtomic(target, [new Uint8Array([1, 2, 3])]);
    assert.equal(seen.length, 1);
    assert.equal(dirname(seen[0]), dir);
    assert.ok(basename(seen[0]).startsWith(".m.bin."), seen[0]);
  } finally {
    // deno-lint-ignore no-explicit-any
    (Deno as any).rename = rename;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A10: short writes are continued until the whole chunk is written", async () => {
  const dir = await Deno.makeTempDir();
  const proto = Deno.FsFile.prototype;
  const write = proto.write;
  proto.write = function (this: Deno.FsFile, p: Uint8Array) {
    return write.call(this, p.subarray(0, 3));
  };
  try {
    const target = join(dir, "m.bin");
    const bytes = new Uint8Array(100).map((_, i) => i);
    await writeFileAtomic(target, [bytes.subarray(0, 40), bytes.subarray(40)]);
    assert.deepEqual(await Deno.readFile(target), bytes);
  } finally {
    proto.write = write;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A11: the new file gets mode 0644 (less the umask), like a normally created file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const target = join(dir, "m.bin"), plain = join(dir, "plain.bin");
    await writeFileAtomic(target, [new Uint8Array([1])]);
    // A file created the ordinary way with mode 0644 (the umask applied by the system alike).
    await Deno.writeFile(plain, new Uint8Array([1]), { mode: 0o644 });
    const mode = async (f: string) => (await Deno.stat(f)).mode! & 0o777;
    assert.equal(await mode(target), await mode(plain));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** One chunk, then a failure (for A12). */
function* failing(): Generator<Uint8Array> {
  yield new Uint8Array([1, 2, 3]);
  throw new Error("boom");
}

Deno.test("A12: a failure while writing closes the file and leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const target = join(dir, "m.bin");
    // Open descriptors, where the process may list them (Deno lets only --allow-all read /proc).
    const openFds = () => {
      try {
        return [...Deno.readDirSync("/proc/self/fd")].length;
      } catch {
        return null;
      }
    };
    const before = openFds();
    await assert.rejects(() => writeFileAtomic(target, failing()), /Cannot write ".*m\.bin": boom/);
    assert.equal(openFds(), before, "writeFileAtomic left the temporary file open");
    assert.throws(() => writeFileAtomicSync(target, failing()), /Cannot write ".*m\.bin": boom/);
    assert.equal(openFds(), before, "writeFileAtomicSync left the temporary file open");
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- lib/sparsity/small_world.ts --------------------------------------------------------------

Deno.test("W2/W4/W5/W6: the printed sparsity bound is exact to one more decimal, rounded safely", () => {
  // 30 × 70 = 2100 pairs, needs ≥ 31 connections: 1 − 31/2100 = 0.985238… → floor to 5 decimals.
  assert.throws(() => smallWorldPattern(30, 70, 0.9999), /sparsity must be at most 0\.98523$/);
  // 100 × 100: 1 − 101/10000 = 0.9899, printed without trailing zeros.
  assert.throws(() => smallWorldPattern(100, 100, 0.995), /sparsity must be at most 0\.9899$/);
  // 1000 × 999, too dense: the lower bound is rounded up (ceil), 7 decimals.
  assert.throws(() => smallWorldPattern(1000, 999, 0), /sparsity must be at least 0\.0000451$/);
});

Deno.test("W8: 2^31 - 1 features is allowed (the failure is the connection count)", () => {
  assert.throws(() => smallWorldPattern(2 ** 31 - 1, 2, 0), /int32 indices/);
});

// --- lib/sparsity/erk.ts ----------------------------------------------------------------------

Deno.test("E3: non-integer and NaN dimensions are refused", () => {
  assert.throws(() => erkSparsities([[10, 2.5]], 0.5), RangeError);
  assert.throws(() => erkSparsities([[10, NaN]], 0.5), RangeError);
});

Deno.test("E5: a density that is not a number is refused", () => {
  // A wrong kind: a TypeError (README's error contract), not "must be in (0, 1], got 0.5".
  assert.throws(() => erkSparsities([[10, 10]], "0.5" as never), TypeError);
});

Deno.test("E7: powerScale must be finite", () => {
  assert.throws(() => erkSparsities([[10, 10]], 0.5, { powerScale: Infinity }), /powerScale/);
});

Deno.test("E8/E12: custom must be an array of at most one entry per layer", () => {
  assert.throws(
    () => erkSparsities([[10, 10]], 0.5, { custom: [0.1, 0.2] }),
    /custom must be an array of at most 1 entries/,
  );
  assert.throws(
    () => erkSparsities([[10, 10]], 0.5, { custom: 0.5 as never }),
    /custom must be an array/,
  );
});

Deno.test("E9/E10/E11: custom entries are numbers in [0, 1], 1 included", () => {
  assert.throws(() => erkSparsities([[10, 10]], 0.5, { custom: ["0.5" as never] }), TypeError);
  assert.throws(() => erkSparsities([[10, 10]], 0.5, { custom: [-0.1] }), RangeError);
  assert.equal(erkSparsities([[10, 10], [5, 5]], 0.5, { custom: [1] })[0], 1);
});
