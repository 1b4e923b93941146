/**
 * Error classes thrown by sparselinear. Argument problems use the built-in `TypeError`
 * (wrong kind of value) and `RangeError` (value outside what is allowed); the classes here
 * cover what those do not.
 * @module
 */
import type { Module } from "./nn/module.ts";

/** A tensor has a shape that the operation cannot take. */
export class ShapeError extends RangeError {
  /** Creates a shape error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** The native library reported a failure; `status` is the C status code. */
export class NativeError extends Error {
  /** The `sl_status` code returned by the C function. */
  readonly status: number;
  /** Creates a native error from a status code and the library's message. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "NativeError";
    this.status = status;
  }
}

/** The native library could not be found or loaded, or its ABI version does not match. */
export class LibraryError extends Error {
  /** Creates a library error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "LibraryError";
  }
}

/** A training run produced a non-finite loss. */
export class NonFiniteLossError extends Error {
  /** Creates the error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteLossError";
  }
}

/**
 * A value's kind for error messages: `Float64Array`, `null`, `the string "3"`, `number NaN`, so
 * that "must be an Int32Array, got …" says what was passed instead.
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/**
 * A TypeError naming `what` unless `value` is an object (arrays included): a missing argument
 * would otherwise surface as "Cannot read properties of undefined" somewhere inside.
 * `expected` says what to pass, e.g. "{ inFeatures, outFeatures, nnz }".
 */
export function requireObject(value: unknown, what: string, expected: string): void {
  if (value === null || typeof value !== "object") {
    throw new TypeError(`${what} must be ${expected}, got ${describeValue(value)}`);
  }
}

/**
 * Whether `value` is a module: anything with `namedModules()`, as every `Module` has (checked by
 * shape, not `instanceof`, so that this file imports no module code).
 */
export function isModule(value: unknown): value is Module {
  return typeof (value as { namedModules?: unknown } | null)?.namedModules === "function";
}

/** A TypeError naming `what` unless `value` is a module (`isModule`). */
export function requireModule(value: unknown, what: string): void {
  if (!isModule(value)) {
    throw new TypeError(
      `${what} must be a Module (e.g. a Sequential or a SparseLinear), got ${describeValue(value)}`,
    );
  }
}
