/**
 * Tensor creators: `tensor`, `zeros`, `ones`, `full`, `rand`, `randn`.
 * @module
 */
import type { Device } from "./backend/backend.ts";
import { checkDevice, getBackend } from "./backend/mod.ts";
import { HostStorage } from "./backend/cpu.ts";
import { describeValue, ShapeError } from "./errors.ts";
import { type Generator, generatorFrom } from "./random.ts";
import { checkShape, numel, shapeString, Tensor } from "./tensor.ts";
import { booleanOption, checkOptionKeys } from "./options.ts";
import { checkAllocation } from "./memory_check.ts";

/** Options shared by the creators. */
export interface CreateOptions {
  /** Track gradients for this tensor (default false). */
  requiresGrad?: boolean;
  /** Device of the new tensor (default "cpu"). */
  device?: Device;
}

/** Options of the random creators. */
export interface RandomOptions extends CreateOptions {
  /** Seed or generator; the same seed gives the same tensor. Default: a random seed. */
  seed?: number | Generator;
}

const CREATE_OPTIONS = ["requiresGrad", "device"];
const RANDOM_OPTIONS = [...CREATE_OPTIONS, "seed"];

/** Nested arrays of numbers. */
export type NestedNumbers = number | NestedNumbers[];

function place(host: Float32Array, shape: readonly number[], options: CreateOptions): Tensor {
  const device = checkDevice(options.device === undefined ? "cpu" : options.device);
  const storage = device === "cpu" ? new HostStorage(host) : getBackend(device).fromHost(host);
  return new Tensor(storage, shape, booleanOption(options.requiresGrad, "requiresGrad", false));
}

function flatten(data: NestedNumbers): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: NestedNumbers = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const values: number[] = [];
  const path: number[] = []; // indices of the node being read, for messages
  const at = () => `tensor() data${path.map((i) => `[${i}]`).join("")}`;
  const walk = (node: NestedNumbers, dim: number) => {
    if (dim === shape.length) {
      if (typeof node !== "number") {
        throw new TypeError(`${at()} must be a number, got ${describeValue(node)}`);
      }
      values.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[dim]) {
      throw new ShapeError(
        `Ragged nested array: ${at()} should be an array of length ${shape[dim]} (as ` +
          `data${"[0]".repeat(dim)}), got ${
            Array.isArray(node) ? `length ${node.length}` : describeValue(node)
          }`,
      );
    }
    for (let i = 0; i < node.length; i++) {
      path.push(i);
      walk(node[i], dim + 1);
      path.pop();
    }
  };
  walk(data, 0);
  return { values, shape };
}

/**
 * A tensor from data: a `Float32Array`/`number[]` with a `shape`, or nested arrays (shape inferred).
 * A given Float32Array is used without copying on the CPU.
 * @example
 * ```ts
 * import { tensor } from "@sparselinear/sparselinear";
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
 * const y = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
 * console.log(x.shape, y.shape); // [2, 3] [2, 2]
 * ```
 */
export function tensor(
  data: Float32Array | NestedNumbers,
  shape?: readonly number[],
  options: CreateOptions = {},
): Tensor {
  checkOptionKeys(options, CREATE_OPTIONS, "tensor()");
  let host: Float32Array;
  let inferred: readonly number[];
  if (data instanceof Float32Array) {
    host = data;
    inferred = [data.length];
  } else if (typeof data === "number") {
    host = new Float32Array([data]);
    inferred = [];
  } else if (Array.isArray(data)) {
    const flat = flatten(data);
    host = new Float32Array(flat.values);
    inferred = flat.shape;
  } else {
    throw new TypeError(
      "tensor() data must be a Float32Array, a number or nested arrays of numbers, got " +
        describeValue(data),
    );
  }
  const finalShape = shape === undefined ? inferred : checkShape(shape);
  if (numel(finalShape) !== host.length) {
    throw new ShapeError(
      `tensor() got ${host.length} values, which do not fill shape ${shapeString(finalShape)} (${
        numel(finalShape)
      } elements)`,
    );
  }
  return place(host, finalShape, options);
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, options: CreateOptions = {}): Tensor {
  if (typeof value !== "number") {
    throw new TypeError(`full() value must be a number, got ${describeValue(value)}`);
  }
  return filled(shape, value, options, "full()");
}

/** `full` under the name of the creator the caller called, for its errors. */
function filled(
  shape: readonly number[],
  value: number,
  options: CreateOptions,
  owner: string,
): Tensor {
  checkOptionKeys(options, CREATE_OPTIONS, owner);
  const checked = checkShape(shape);
  const host = hostArray(checked);
  // A new array is already zeros (+0): filling it anyway would touch every page of a huge one.
  if (!Object.is(value, 0)) host.fill(value);
  return place(host, checked, options);
}

/** The host array of a new tensor; an allocation V8 refuses is an error naming the shape. */
function hostArray(shape: readonly number[]): Float32Array {
  const n = numel(shape);
  checkAllocation(4 * n, `A float32 tensor of shape ${shapeString(shape)}`, "Use a smaller shape");
  try {
    return new Float32Array(n);
  } catch (err) {
    throw new RangeError(
      `Cannot allocate a float32 tensor of shape ${shapeString(shape)} (${n} elements, ` +
        `${(n * 4 / 2 ** 30).toFixed(1)} GiB): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return filled(shape, 0, options, "zeros()");
}

/** A tensor of ones. */
export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return filled(shape, 1, options, "ones()");
}

/**
 * Uniform samples in [0, 1).
 * @example
 * ```ts
 * import { rand } from "@sparselinear/sparselinear";
 * const a = rand([2, 2], { seed: 1 });
 * const b = rand([2, 2], { seed: 1 });
 * console.log(a.data.every((v, i) => v === b.data[i])); // true
 * ```
 */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  checkOptionKeys(options, RANDOM_OPTIONS, "rand()");
  const checked = checkShape(shape);
  const host = generatorFrom(options.seed).fillUniform(hostArray(checked), 0, 1);
  return place(host, checked, options);
}

/** Standard normal samples. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  checkOptionKeys(options, RANDOM_OPTIONS, "randn()");
  const checked = checkShape(shape);
  const host = generatorFrom(options.seed).fillNormal(hostArray(checked));
  return place(host, checked, options);
}
