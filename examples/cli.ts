/**
 * Command-line handling shared by the scripts under `examples/` and `bench/` that have no parser
 * of their own: `--help` (or `-h`) prints the usage and exits 0; an unknown or malformed flag,
 * or a value the script rejects, prints `error: …` and the usage to stderr and exits 2 (never
 * an uncaught stack trace).
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** Parsed flag values: strings, booleans, or undefined when absent (without a default). */
export type CliValues = Record<string, string | boolean | undefined>;

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
      args: Deno.args,
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
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    cliFail(`--${name} must be an integer ≥ ${min}, got "${raw}"`, usage);
  }
  return n;
}
