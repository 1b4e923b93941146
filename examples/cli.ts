/**
 * Command-line handling shared by the scripts under `examples/` and `bench/` that have no parser
 * of their own: `--help` (or `-h`) prints the usage and exits 0; an unknown or malformed flag,
 * or a value the script rejects, prints `error: …` and the usage to stderr and exits 2 (never
 * an uncaught stack trace).
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import {
  setSparseMatmulPrecision,
  SPARSE_MATMUL_PRECISIONS,
  type SparseMatmulPrecision,
} from "../ffi/library.ts";

/** Parsed flag values: strings, booleans, or undefined when absent (without a default). */
export type CliValues = Record<string, string | boolean | undefined>;

/**
 * `args` with every value-taking flag that is followed by a negative number joined to it
 * (`--epochs -1` → `--epochs=-1`): node:util's parseArgs reads the number as a missing value
 * ("argument is ambiguous"), and the script's own range check, which says what is allowed,
 * would never see it.
 */
export function joinNegativeValues(
  args: readonly string[],
  options: ParseArgsOptionsConfig,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") && !args[i].includes("=") ? args[i].slice(2) : null;
    const next = args[i + 1];
    if (
      name !== null && Object.hasOwn(options, name) && options[name].type === "string" &&
      next !== undefined && /^-(\d|\.\d|Infinity$)/.test(next)
    ) {
      out.push(`${args[i]}=${next}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

/** Prints `message` and `usage` to stderr and exits with status 2. */
export function cliFail(message: string, usage: string): never {
  console.error(`error: ${message}\n\n${usage}`);
  Deno.exit(2);
}

/**
 * Parses `Deno.args` against `options` (node:util parseArgs, strict), adding `--help`/`-h`.
 * Returns the values; handles `--help` and parse errors as described in the module doc.
 */
export function cliArgs(options: ParseArgsOptionsConfig, usage: string): CliValues {
  let values: CliValues;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(Deno.args, options),
      strict: true,
      options: { ...options, help: { type: "boolean", short: "h" } },
    }) as { values: CliValues });
  } catch (err) {
    cliFail((err as Error).message, usage);
  }
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  return values;
}

/**
 * `raw` read as a decimal number ("64", "0.1", "-1", "1e-3"), NaN for anything else: `Number`
 * would also take "0x10", "0b11" and "0o100" (16, 3, 64) and " 5 ", none of which a user
 * typing a flag from `--help` means.
 */
export function decimalNumber(raw: string): number {
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : NaN;
}

/** `raw` as a decimal integer ≥ `min` (and a safe integer), or null. */
export function integerAtLeast(raw: string, min: number): number | null {
  const n = decimalNumber(raw);
  return Number.isSafeInteger(n) && n >= min ? n : null;
}

/** The flag's value as an integer ≥ `min` (`fallback` when absent), else `cliFail`. */
export function intFlag(
  values: CliValues,
  name: string,
  fallback: number,
  min: number,
  usage: string,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = typeof raw === "string" ? integerAtLeast(raw, min) : null;
  if (n === null) cliFail(`--${name} must be an integer ≥ ${min}, got "${raw}"`, usage);
  return n;
}

/**
 * `--precision highest|medium` (default highest), applied with `setSparseMatmulPrecision`;
 * another value exits with the usage. Returns the precision set.
 */
export function precisionFlag(
  values: CliValues,
  usage: string,
  fallback: SparseMatmulPrecision = "highest",
): SparseMatmulPrecision {
  const raw = String(values.precision ?? fallback);
  const precision = SPARSE_MATMUL_PRECISIONS.find((p) => p === raw);
  if (precision === undefined) {
    cliFail(`--precision must be ${SPARSE_MATMUL_PRECISIONS.join(" or ")}, got "${raw}"`, usage);
  }
  setSparseMatmulPrecision(precision);
  return precision;
}

/**
 * The text of a /proc file, or "" where it cannot be read. Deno reads /proc only with
 * --allow-all; without it, `cat` does, where the run permission was given (else "").
 */
export function readProc(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    try {
      const out = new Deno.Command("cat", { args: [path], stderr: "null" }).outputSync();
      return out.success ? new TextDecoder().decode(out.stdout) : "";
    } catch {
      return "";
    }
  }
}

/** The CPU's model name from /proc/cpuinfo, or "unknown CPU". */
export function cpuModel(): string {
  return readProc("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1].trim() ??
    "unknown CPU";
}
