/**
 * The FFI symbol tables (ffi/symbols/*.ts) against the C ABI they bind,
 * csrc/include/sparselinear.h: every SL_API prototype has an entry with the same parameter and
 * result types and every entry a prototype, and the ABI version the loader expects is the
 * header's.
 */
import assert from "node:assert/strict";
import { EXPECTED_ABI_VERSION, native } from "../ffi/library.ts";
import { symbols } from "../ffi/symbols.ts";
import { deviceSymbols } from "../ffi/symbols/device.ts";

const header = Deno.readTextFileSync(
  new URL("../csrc/include/sparselinear.h", import.meta.url),
).replace(/\/\*[\s\S]*?\*\//g, "");

/** The Deno FFI type of a C parameter or result type. */
function ffiType(c: string): string {
  if (c.includes("*")) return "pointer";
  const base = c.replace(/\bconst\b/g, "").trim();
  const types: Record<string, string> = {
    int32_t: "i32",
    sl_status: "i32",
    int64_t: "i64",
    uint64_t: "u64",
    float: "f32",
    double: "f64",
  };
  assert.ok(base in types, `unmapped C type "${c}"`);
  return types[base];
}

/** name -> { parameters, result } from the header's prototypes. */
function prototypes(): Map<string, { parameters: string[]; result: string }> {
  const found = new Map<string, { parameters: string[]; result: string }>();
  for (const m of header.matchAll(/SL_API\s+([\w\s]+?\**)\s*(sl_\w+)\s*\(([^)]*)\)\s*;/g)) {
    const [, result, name, args] = m;
    const parameters = args.trim() === "void" ? [] : args.split(",").map((a) =>
      // Drop the parameter's name: the last identifier, after any '*'.
      ffiType(a.trim().replace(/(\**)\s*\w+$/, "$1"))
    );
    found.set(name, { parameters, result: ffiType(result) });
  }
  return found;
}

Deno.test("ABI: the FFI symbol tables match sparselinear.h's prototypes", () => {
  const declared = prototypes();
  assert.ok(declared.size > 50, `only ${declared.size} prototypes parsed`);
  const tables: Record<string, Deno.ForeignFunction> = { ...symbols, ...deviceSymbols };
  for (const [name, proto] of declared) {
    const entry = tables[name];
    assert.ok(entry !== undefined, `${name} is in the header but not in ffi/symbols`);
    assert.deepEqual(
      { parameters: [...entry.parameters], result: entry.result },
      proto,
      `${name}: the FFI entry differs from the header`,
    );
  }
  for (const name of Object.keys(tables)) {
    assert.ok(declared.has(name), `${name} is in ffi/symbols but not in the header`);
  }
});

Deno.test("ABI: the loader expects the header's SL_ABI_VERSION, and the library reports it", () => {
  const m = header.match(/#define SL_ABI_VERSION (\d+)/);
  assert.ok(m !== null, "SL_ABI_VERSION not found");
  assert.equal(EXPECTED_ABI_VERSION, Number(m[1]));
  assert.equal(native().sl_abi_version(), Number(m[1]));
});
