/**
 * Argument checks and small helpers shared by the op files (not public API).
 * @module
 */
import { ptr } from "../../ffi/library.ts";
import type { Backend, Device } from "../backend/backend.ts";
import { getBackend } from "../backend/mod.ts";
import { numberOption } from "../options.ts";
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

/** Entries of each int64 argument slot: the C ABI's SL_MAX_DIMS. */
const ARG_SLOT_LENGTH = 8;
/** Slots: the most int64 array arguments one kernel takes (sl_binary: dims and two strides). */
const ARG_SLOTS = 3;
const argScratch = new BigInt64Array(ARG_SLOT_LENGTH * ARG_SLOTS);
let argPointers: Deno.PointerValue[] | null = null;

/**
 * A host int64 array argument (a shape or strides) for the FFI call about to be made: `values`
 * are written into slot `slot` of one reusable array and its pointer returned (null when
 * empty). A fresh BigInt64Array and its pointer cost ~1.7 us, a fifth of a small op; FFI calls
 * are synchronous and the kernels read these arrays during the call only, so a slot is free
 * again once the call returns. Give each array argument of one call its own slot (0, 1, 2).
 */
export function int64Arg(slot: number, values: readonly number[]): Deno.PointerValue {
  if (values.length > ARG_SLOT_LENGTH) {
    throw new RangeError(
      `An int64 argument has ${values.length} entries, more than the ${ARG_SLOT_LENGTH} ` +
        "dimensions the kernels take",
    );
  }
  if (values.length === 0) return null;
  argPointers ??= Array.from(
    { length: ARG_SLOTS },
    (_, s) => ptr(argScratch.subarray(s * ARG_SLOT_LENGTH, (s + 1) * ARG_SLOT_LENGTH)),
  );
  const base = slot * ARG_SLOT_LENGTH;
  for (let i = 0; i < values.length; i++) argScratch[base + i] = BigInt(values[i]);
  return argPointers[slot];
}

/**
 * Normalises a possibly negative axis of a tensor with `ndim` dimensions, with a RangeError
 * naming the op and the allowed range.
 */
export function normalizeAxis(
  axis: number,
  ndim: number,
  what: string,
  tensorDims: number = ndim,
): number {
  numberOption(axis, what);
  if (!Number.isInteger(axis)) throw new TypeError(`${what} must be an integer, got ${axis}`);
  if (axis < -ndim || axis >= ndim) {
    throw new RangeError(
      `${what} ${axis} is outside [${-ndim}, ${ndim - 1}] for a tensor of ${tensorDims} ` +
        `dimension${tensorDims === 1 ? "" : "s"}`,
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
