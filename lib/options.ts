/**
 * Reading boolean options: JavaScript would take `"false"` or `0` as a flag by truthiness and
 * silently do the opposite of what was meant; these are TypeErrors instead.
 * @module
 */
import { describeValue } from "./errors.ts";

/** `value` when it is a boolean, `fallback` when undefined, else a TypeError naming `name`. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new TypeError(
      `${name} must be true or false, got ${typeof value === "string" ? `"${value}"` : value}`,
    );
  }
  return value;
}

/**
 * `value` when it is a number (NaN and infinities included: range checks follow), `fallback`
 * when undefined, else a TypeError naming `name` (and the allowed `range`, e.g. "[0, 1)"): `"0.5"` is a string, not a number, and the
 * caller's range message ("must be in [0, 1), got 0.5") would mislead.
 */
export function numberOption(
  value: unknown,
  name: string,
  fallback?: number,
  range = "",
): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "number") {
    throw new TypeError(
      `${name} must be a number${range && ` in ${range}`}, got ${describeValue(value)}`,
    );
  }
  return value;
}
