/**
 * Seeded random-mutation fuzzer for the two file parsers written in TypeScript (there is no
 * native parse path): `decodeSafetensors` (lib/io/safetensors.ts) and `decodeIdx`
 * (lib/data/idx.ts). Each iteration mutates a valid encoding — bit flips, byte overwrites,
 * truncation, extension, a rewritten header length, a rewritten JSON header (wrong dtypes,
 * shapes, offsets, overlapping ranges, huge numbers) — and decodes it. The parser must either
 * return tensors whose sizes agree with their shapes, or throw `FormatError`; any other
 * exception (a RangeError from a DataView, a TypeError) is a bug and exits 1 with the seed and
 * iteration to reproduce it.
 *
 * Usage: deno run fuzz/parsers_fuzz.ts [--iterations N] [--seed S]
 * @module
 */
import { parseArgs } from "node:util";
import { FormatError } from "../lib/io/format_error.ts";
import { decodeSafetensors, encodeSafetensors } from "../lib/io/safetensors.ts";
import { decodeIdx, encodeIdx } from "../lib/data/idx.ts";
import { Generator } from "../lib/random.ts";

/** One mutation round's outcome counts. */
export interface FuzzCounts {
  /** Inputs the parser accepted. */
  accepted: number;
  /** Inputs rejected with FormatError. */
  rejected: number;
}

const DTYPES = ["F32", "F64", "I64", "I32", "U8", "BOOL", "F16", "BF16", "I8", "U64"] as const;

function seeds(): { safetensors: Uint8Array[]; idx: Uint8Array[] } {
  const safetensors = [
    encodeSafetensors({
      weight: { dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      indices: { dtype: "I64", shape: [2, 2], data: new BigInt64Array([0n, 1n, 1n, 0n]) },
      bias: { dtype: "F32", shape: [3], data: new Float32Array([0.5, -1, 2]) },
    }, { format: "pt" }),
    encodeSafetensors({ scalar: { dtype: "F64", shape: [], data: new Float64Array([7]) } }),
    encodeSafetensors({ empty: { dtype: "U8", shape: [0, 4], data: new Uint8Array(0) } }),
  ];
  const idx = [
    encodeIdx({ dtype: "uint8", shape: [2, 2, 2], data: new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]) }),
    encodeIdx({ dtype: "float32", shape: [3], data: new Float32Array([1.5, -2, 3]) }),
    encodeIdx({ dtype: "int32", shape: [1, 2], data: new Int32Array([-1, 2 ** 30]) }),
  ];
  return { safetensors, idx };
}

/** A JSON header with random damage: the parser's validation is what is being tested. */
function mutateHeader(rng: Generator, header: Record<string, unknown>): Record<string, unknown> {
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const name = names.length > 0 ? names[rng.int(names.length)] : "x";
  const entry = { ...(header[name] as Record<string, unknown> ?? {}) };
  const wild = [
    -1,
    0,
    1,
    2 ** 31,
    2 ** 53,
    2 ** 64,
    1.5,
    NaN,
    "3",
    null,
    [],
    {},
    true,
    [1, 2],
    [-1],
  ];
  const pick = () => wild[rng.int(wild.length)];
  switch (rng.int(8)) {
    case 0:
      entry.dtype = rng.uniform() < 0.5 ? DTYPES[rng.int(DTYPES.length)] : pick();
      break;
    case 1:
      entry.shape = rng.uniform() < 0.5 ? [rng.int(5), rng.int(5)] : pick();
      break;
    case 2:
      entry.data_offsets = rng.uniform() < 0.5 ? [rng.int(64), rng.int(64)] : pick();
      break;
    case 3:
      delete entry[["dtype", "shape", "data_offsets"][rng.int(3)]];
      break;
    case 4:
      header[`extra${rng.int(3)}`] = { ...entry };
      break;
    case 5:
      header.__metadata__ = rng.uniform() < 0.5 ? { k: "v" } : { k: pick() };
      break;
    case 6:
      entry.unknown_key = pick();
      break;
    default:
      header[name] = pick();
      return header;
  }
  header[name] = entry;
  return header;
}

function mutateBytes(rng: Generator, input: Uint8Array, headerLength: boolean): Uint8Array {
  let bytes = input.slice();
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(6)) {
      case 0: // bit flip
        if (bytes.length > 0) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
        break;
      case 1: // byte overwrite
        if (bytes.length > 0) bytes[rng.int(bytes.length)] = rng.int(256);
        break;
      case 2: // truncation
        bytes = bytes.slice(0, rng.int(bytes.length + 1));
        break;
      case 3: { // extension
        const extra = new Uint8Array(rng.int(16));
        for (let i = 0; i < extra.length; i++) extra[i] = rng.int(256);
        const grown = new Uint8Array(bytes.length + extra.length);
        grown.set(bytes);
        grown.set(extra, bytes.length);
        bytes = grown;
        break;
      }
      case 4: // header length / dimension words
        if (headerLength && bytes.length >= 8) {
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          const choices = [0n, 1n, 7n, 2n ** 32n, 2n ** 63n, BigInt(bytes.length), 100_000_001n];
          view.setBigUint64(0, choices[rng.int(choices.length)], true);
        } else if (bytes.length >= 8) {
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          const choices = [0, 1, 0x7fffffff, 0xffffffff, 2 ** 24];
          view.setUint32(
            4 * rng.int(Math.min(4, Math.floor(bytes.length / 4))),
            choices[rng.int(5)],
          );
        }
        break;
      default: // magic / type bytes of IDX, or the first JSON characters of safetensors
        if (bytes.length > 3) bytes[rng.int(4)] = rng.int(256);
        break;
    }
  }
  return bytes;
}

/** Rebuilds a safetensors file with a damaged JSON header and the original data section. */
function withHeader(rng: Generator, bytes: Uint8Array): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const json = new TextEncoder().encode(JSON.stringify(mutateHeader(rng, header)));
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Runs `iterations` mutations of each parser's seeds from `seed`. Throws (with the seed and the
 * iteration) on any exception other than FormatError, or on an accepted result whose array
 * length disagrees with its shape.
 */
export function fuzzParsers(iterations: number, seed: number): Record<string, FuzzCounts> {
  const rng = new Generator(seed);
  const inputs = seeds();
  const counts: Record<string, FuzzCounts> = {
    safetensors: { accepted: 0, rejected: 0 },
    idx: { accepted: 0, rejected: 0 },
  };
  for (let it = 0; it < iterations; it++) {
    const useIdx = it % 2 === 1;
    const pool = useIdx ? inputs.idx : inputs.safetensors;
    const base = pool[rng.int(pool.length)];
    const bytes = !useIdx && rng.uniform() < 0.4
      ? withHeader(rng, base)
      : mutateBytes(rng, base, !useIdx);
    const which = useIdx ? "idx" : "safetensors";
    try {
      if (useIdx) {
        const idx = decodeIdx(bytes, "fuzz input");
        if (idx.data.length !== elementCount(idx.shape)) {
          throw new Error(`IDX shape ${idx.shape} but ${idx.data.length} elements`);
        }
      } else {
        const st = decodeSafetensors(bytes, "fuzz input");
        for (const [name, t] of Object.entries(st.tensors)) {
          if (t.data.length !== elementCount(t.shape)) {
            throw new Error(`tensor ${name}: shape ${t.shape} but ${t.data.length} elements`);
          }
        }
      }
      counts[which].accepted++;
    } catch (err) {
      if (err instanceof FormatError && /fuzz input/.test(err.message)) {
        counts[which].rejected++;
        continue;
      }
      throw new Error(
        `${which} parser: unexpected ${(err as Error).name} at seed ${seed}, iteration ${it}: ` +
          `${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return counts;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { iterations: { type: "string", default: "20000" }, seed: { type: "string" } },
  });
  const iterations = Number(values.iterations);
  const seed = values.seed !== undefined ? Number(values.seed) : 1;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`--iterations must be a positive integer, got ${values.iterations}`);
  }
  const start = performance.now();
  const counts = fuzzParsers(iterations, seed);
  const secs = ((performance.now() - start) / 1000).toFixed(1);
  for (const [name, c] of Object.entries(counts)) {
    console.log(
      `${name}: ${c.accepted + c.rejected} inputs (${c.accepted} accepted, ` +
        `${c.rejected} rejected with FormatError)`,
    );
  }
  console.log(`${iterations} iterations, seed ${seed}, ${secs} s: clean`);
}
