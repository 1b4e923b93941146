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
 * when undefined, else a TypeError naming `name` (and the allowed `range`, e.g. "[0, 1)"):
 * `"0.5"` is a string, not a number, and the caller's range message ("must be in [0, 1), got
 * 0.5") would mislead.
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

/**
 * `value` when it is one of the strings `allowed`, `fallback` when undefined (and a fallback is
 * given); else a TypeError naming `name` when it is not a string (null included), a RangeError
 * when it is a string that is not allowed: `scale: 2` and `scale: "log"` both say what is.
 */
export function enumOption<T extends string>(
  value: unknown,
  name: string,
  allowed: readonly T[],
  fallback?: T,
): T {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) {
    return value as T;
  }
  const list = allowed.map((a) => JSON.stringify(a));
  const expected = list.length > 1 ? `${list.slice(0, -1).join(", ")} or ${list.at(-1)}` : list[0];
  if (typeof value !== "string") {
    throw new TypeError(`${name} must be ${expected}, got ${describeValue(value)}`);
  }
  throw new RangeError(`${name} must be ${expected}, got ${JSON.stringify(value)}`);
}

/**
 * PyTorch/NumPy option names that are spelt differently here, not just in case: the
 * snake_case/case rule below cannot guess them (`randn(shape, { generator })` takes `seed`).
 */
const ALIASES: Readonly<Record<string, string>> = { generator: "seed", keepdims: "keepDim" };

/**
 * A TypeError for a key of `options` that is not one of `known`: JavaScript would otherwise
 * ignore a misspelt option and quietly use the default (the seed's `small_world: true` built
 * random connectivity). Suggests the camelCase name when the key is its snake_case or differs
 * only in case (`Tend` → `tEnd`), or ours for a PyTorch name in `ALIASES`. Also a TypeError
 * when `options` is not an object.
 */
export function checkOptionKeys(options: unknown, known: readonly string[], owner: string): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`${owner} options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const camel = key.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
    const alias = Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
    const guess = known.find((k) => k.toLowerCase() === camel.toLowerCase() || k === alias);
    throw new TypeError(
      `${owner} has no option "${key}"${guess ? ` (did you mean "${guess}"?)` : ""}; ` +
        `its options are ${known.join(", ")}`,
    );
  }
}

/**
 * Makes the settings `names` of `target` read-only at run time as well, as their `readonly`
 * declarations say: TypeScript erases `readonly`, so `optimizer.momentum = NaN` or
 * `layer.dynamicSparsity.deltaT = 0` was taken without a word and broke a later call (NaN
 * weights, updates that never came). Assigning one is now a TypeError naming it ("Cannot assign
 * to read only property"; modules are strict code). Call at the end of the constructor.
 */
export function freezeSettings<T extends object>(
  target: T,
  names: readonly (keyof T & string)[],
): void {
  for (const name of names) {
    Object.defineProperty(target, name, { writable: false, configurable: false });
  }
}
