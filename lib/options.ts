/**
 * Reading boolean options: JavaScript would take `"false"` or `0` as a flag by truthiness and
 * silently do the opposite of what was meant; these are TypeErrors instead.
 * @module
 */

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
