/**
 * Argument checks and small helpers shared by the op files (not public API).
 * @module
 */
import { ptr } from "../../ffi/library.ts";
import type { Backend, Device } from "../backend/backend.ts";
import { getBackend } from "../backend/mod.ts";
import { numel, Tensor } from "../tensor.ts";

/** Largest value of a C int32 size argument. */
export const INT32_MAX = 2147483647;

/** Throws a TypeError unless `x` is a Tensor; `what` names the argument ("add() a"). */
export function checkTensor(x: unknown, what: string): Tensor {
  if (!(x instanceof Tensor)) {
    const kind = x === null ? "null" : Array.isArray(x) ? "an array" : typeof x;
    throw new TypeError(`${what} must be a Tensor, got ${kind}`);
  }
  return x;
}

/**
 * The device shared by all `tensors` of op `op`; a TypeError naming both devices when they
 * differ (tensors are never moved implicitly: use `.to(device)`).
 */
export function sameDevice(op: string, names: readonly string[], tensors: Tensor[]): Device {
  const device = tensors[0].device;
  for (let i = 1; i < tensors.length; i++) {
    if (tensors[i].device !== device) {
      throw new TypeError(
        `${op}() got tensors on different devices: ${names[0]} is on ${device}, ` +
          `${names[i]} is on ${tensors[i].device}; move one with .to("${device}")`,
      );
    }
  }
  return device;
}

/** A new zero-filled tensor of `shape` on `backend`'s device. */
export function allocate(backend: Backend, shape: readonly number[]): Tensor {
  return new Tensor(backend.zeros("float32", numel(shape)), shape);
}

/**
 * A new tensor of `shape` whose contents are unspecified (`Backend.empty`): only for the output
 * of a kernel that writes every element.
 */
export function allocateEmpty(backend: Backend, shape: readonly number[]): Tensor {
  return new Tensor(backend.empty("float32", numel(shape)), shape);
}

/** The backend of a tensor's device. */
export function backendOf(x: Tensor): Backend {
  return getBackend(x.device);
}

/** A host int64 array for shape and stride arguments, and its pointer. */
export function int64(values: readonly number[]): BigInt64Array {
  return BigInt64Array.from(values, (v) => BigInt(v));
}

/** Pointer to a host array argument (shapes, strides); kept alive by the caller's reference. */
export function hostPtr(array: BigInt64Array): Deno.PointerValue {
  return array.length === 0 ? null : ptr(array);
}

/**
 * Normalises a possibly negative axis of a tensor with `ndim` dimensions, with a RangeError
 * naming the op and the allowed range.
 */
export function normalizeAxis(axis: number, ndim: number, what: string): number {
  if (!Number.isInteger(axis)) throw new TypeError(`${what} must be an integer, got ${axis}`);
  if (axis < -ndim || axis >= ndim) {
    throw new RangeError(
      `${what} ${axis} is outside [${-ndim}, ${ndim - 1}] for a tensor of ${ndim} dimensions`,
    );
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Throws a RangeError when a size passed as a C int32 does not fit. */
export function checkInt32(value: number, what: string): number {
  if (value > INT32_MAX) {
    throw new RangeError(`${what} is ${value}, above the native limit of ${INT32_MAX}`);
  }
  return value;
}
