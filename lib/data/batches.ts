/**
 * Mini-batches over a data set held in memory, with seeded shuffling and `dropLast`, like
 * PyTorch's `DataLoader` over a `TensorDataset`: each `for ... of` is one epoch.
 * @module
 */
import type { Device, DType, HostArray, Storage } from "../backend/backend.ts";
import { checkDevice, getBackend } from "../backend/mod.ts";
import { HostStorage } from "../backend/cpu.ts";
import { ShapeError } from "../errors.ts";
import { type Generator, generatorFrom } from "../random.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { booleanOption, checkOptionKeys, freezeSettings, numberOption } from "../options.ts";

/** Options of `batches`. */
export interface BatchOptions {
  /** Examples per batch (a positive integer). */
  batchSize: number;
  /** Visit the examples in a new random order each epoch (default false). */
  shuffle?: boolean;
  /** Seed or generator of the shuffling; the same seed gives the same orders. Default: random. */
  seed?: number | Generator;
  /** Skip the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Device of the batch tensors (default: the device of `x`, or "cpu"). */
  device?: Device;
  /**
   * Reuse one set of buffers for every batch of the same size (default true): no allocation per
   * step for the tensors, so read each batch before asking for the next (as `fit()` and a
   * `for ... of` step do). The next batch of the same size overwrites the memory of a batch's
   * `x` (and of a tensor `y`): the earlier batch's tensors, and views of them, then throw when
   * read or used, rather than show the later batch's numbers — so `[...loader]` or a batch
   * kept across steps needs false, or a copy (`x.toArray()`) taken in time. Integer labels
   * (`Int32Array` `y`) are always a fresh copy, safe to keep. Do not run two iterations of the
   * same `Batches` at once. With false, every batch gets fresh arrays.
   */
  reuseBuffers?: boolean;
}

const BATCH_OPTIONS = ["batchSize", "shuffle", "seed", "dropLast", "device", "reuseBuffers"];

/** One mini-batch. */
export interface Batch<Y> {
  /** Inputs: `[size, ...example shape]`. */
  x: Tensor;
  /** Targets: an `Int32Array` of `size` labels, or a `[size, ...]` tensor. */
  y: Y;
  /** Number of examples in this batch (`batchSize`, or fewer for the last one). */
  size: number;
  /** Position of the batch in the epoch, from 0. */
  index: number;
}

/** What one batch size needs: host staging arrays and the storages the tensors wrap. */
interface Buffers {
  xHost: Float32Array;
  xStorage: Storage;
  yHost: Float32Array | Int32Array;
  yStorage: Storage | null;
  /** The views handed out for the batch now in the buffers (reused buffers only). */
  xView: BatchStorage | null;
  yView: BatchStorage | null;
}

/**
 * One batch's view of a reused buffer: the same memory, no copy, but unusable (reading it,
 * or passing it to a kernel, throws) once a later batch has overwritten that memory.
 */
class BatchStorage implements Storage {
  readonly #storage: Storage;
  #overwritten = false;
  constructor(storage: Storage) {
    this.#storage = storage;
  }
  /** Called before the buffer is rewritten for a later batch. */
  markOverwritten(): void {
    this.#overwritten = true;
  }
  #live(): Storage {
    if (this.#overwritten) {
      throw new Error(
        "This batch's tensor was overwritten by a later batch of the same iteration: " +
          "batches() reuses one buffer per batch size (reuseBuffers, default true). Read each " +
          "batch before asking for the next, copy it (toArray()), or pass reuseBuffers: false " +
          "to keep batches",
      );
    }
    return this.#storage;
  }
  get device(): Device {
    return this.#storage.device;
  }
  get dtype(): DType {
    return this.#storage.dtype;
  }
  get length(): number {
    return this.#live().length;
  }
  get host(): HostArray | undefined {
    return this.#live().host;
  }
  ptr(): Deno.PointerValue {
    return this.#live().ptr();
  }
  toHost(): HostArray {
    return this.#live().toHost();
  }
  write(array: HostArray): void {
    this.#live().write(array);
  }
  /** Nothing: the buffer belongs to the `Batches`, which reuses it for later batches. */
  dispose(): void {}
}

/**
 * The batches of one data set; iterate it once per epoch. `length` is the number of batches
 * per epoch (for progress bars).
 */
export class Batches<Y extends Int32Array | Tensor> implements Iterable<Batch<Y>> {
  /** Number of examples. */
  readonly count: number;
  /** Examples per batch. */
  readonly batchSize: number;
  /** Batches per epoch. */
  readonly length: number;
  readonly #x: Float32Array;
  readonly #xExample: readonly number[];
  readonly #y: Float32Array | Int32Array;
  /** Shape of one target, or null for integer labels. */
  readonly #yExample: readonly number[] | null;
  readonly #shuffle: boolean;
  readonly #dropLast: boolean;
  readonly #device: Device;
  readonly #reuse: boolean;
  readonly #generator: Generator | null;
  readonly #order: Int32Array;
  readonly #buffers = new Map<number, Buffers>();

  /** Shape of one example's input: each batch's `x` is `[size, ...exampleShape]`. */
  get exampleShape(): number[] {
    return [...this.#xExample];
  }

  /** Shape of one target, or `null` when the targets are integer class labels. */
  get targetShape(): number[] | null {
    return this.#yExample === null ? null : [...this.#yExample];
  }

  /** The device the batches are made on. */
  get device(): Device {
    return this.#device;
  }

  /** Use `batches()`. */
  constructor(
    x: Float32Array,
    xExample: readonly number[],
    y: Float32Array | Int32Array,
    yExample: readonly number[] | null,
    count: number,
    options: BatchOptions & { device: Device },
  ) {
    this.#x = x;
    this.#xExample = xExample;
    this.#y = y;
    this.#yExample = yExample;
    this.count = count;
    this.batchSize = options.batchSize;
    // `shuffle: "false"` would shuffle by truthiness: booleans only.
    this.#shuffle = booleanOption(options.shuffle, "batches() shuffle", false);
    this.#dropLast = booleanOption(options.dropLast, "batches() dropLast", false);
    this.#device = options.device;
    this.#reuse = booleanOption(options.reuseBuffers, "batches() reuseBuffers", true);
    this.#generator = this.#shuffle ? generatorFrom(options.seed) : null;
    this.#order = new Int32Array(count);
    this.length = this.#dropLast
      ? Math.floor(count / this.batchSize)
      : Math.ceil(count / this.batchSize);
    freezeSettings(this, ["count", "batchSize", "length"]);
  }

  #allocate(size: number): Buffers {
    const xHost = new Float32Array(size * (this.#x.length / Math.max(this.count, 1)));
    const yPer = this.#y.length / Math.max(this.count, 1);
    const yHost = this.#yExample === null ? new Int32Array(size) : new Float32Array(size * yPer);
    const onHost = this.#device === "cpu";
    const backend = onHost ? null : getBackend(this.#device);
    const xStorage = backend === null
      ? new HostStorage(xHost)
      : backend.zeros("float32", xHost.length);
    let yStorage: Storage | null = null;
    if (this.#yExample !== null) {
      yStorage = backend === null
        ? new HostStorage(yHost as Float32Array)
        : backend.zeros("float32", yHost.length);
    }
    return { xHost, xStorage, yHost, yStorage, xView: null, yView: null };
  }

  #buffersFor(size: number): Buffers {
    if (!this.#reuse) return this.#allocate(size);
    let buffers = this.#buffers.get(size);
    if (buffers === undefined) {
      buffers = this.#allocate(size);
      this.#buffers.set(size, buffers);
    }
    return buffers;
  }

  /** A new order of the examples: the identity, shuffled when shuffling. */
  #newOrder(): Int32Array {
    const order = this.#order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    this.#generator?.shuffle(order);
    return order;
  }

  /**
   * Passes over `epochs` epochs without producing their batches: the shuffle advances as if
   * they had been iterated, so a run resumed after `epochs` epochs (from a checkpoint) sees the
   * same batches, in the same order, as one that never stopped.
   */
  skipEpochs(epochs: number): void {
    numberOption(epochs, "skipEpochs() epochs");
    if (!Number.isSafeInteger(epochs) || epochs < 0) {
      throw new RangeError(`skipEpochs() epochs must be a whole number >= 0, got ${epochs}`);
    }
    if (this.#generator === null) return;
    for (let e = 0; e < epochs; e++) this.#newOrder();
  }

  /** One epoch: a new order when shuffling, then the batches in that order. */
  *[Symbol.iterator](): Iterator<Batch<Y>> {
    const order = this.#newOrder();
    const xPer = this.#x.length / Math.max(this.count, 1);
    const yPer = this.#y.length / Math.max(this.count, 1);
    for (let index = 0; index < this.length; index++) {
      const start = index * this.batchSize;
      const size = Math.min(this.batchSize, this.count - start);
      const b = this.#buffersFor(size);
      // The previous batch of this size loses its tensors before its memory is rewritten.
      b.xView?.markOverwritten();
      b.yView?.markOverwritten();
      for (let k = 0; k < size; k++) {
        const i = order[start + k];
        b.xHost.set(this.#x.subarray(i * xPer, (i + 1) * xPer), k * xPer);
        if (yPer === 1) b.yHost[k] = this.#y[i];
        else b.yHost.set(this.#y.subarray(i * yPer, (i + 1) * yPer), k * yPer);
      }
      if (b.xStorage.host === undefined) b.xStorage.write(b.xHost);
      if (this.#reuse) b.xView = new BatchStorage(b.xStorage);
      const x = new Tensor(b.xView ?? b.xStorage, [size, ...this.#xExample]);
      let y: Int32Array | Tensor;
      if (this.#yExample === null) {
        // A few bytes: labels kept from earlier batches stay right.
        y = this.#reuse ? (b.yHost as Int32Array).slice() : b.yHost as Int32Array;
      } else {
        const storage = b.yStorage as Storage;
        if (storage.host === undefined) storage.write(b.yHost);
        if (this.#reuse) b.yView = new BatchStorage(storage);
        y = new Tensor(b.yView ?? storage, [size, ...this.#yExample]);
      }
      yield { x, y: y as Y, size, index };
    }
  }
}

function examplesOf(x: Tensor | Float32Array | Int32Array, what: string): number | null {
  if (x instanceof Tensor) {
    if (x.ndim === 0) throw new ShapeError(`${what} must have a first (example) dimension`);
    return x.shape[0];
  }
  return null;
}

/**
 * Mini-batches of `(x, y)`: `x` is a tensor whose first dimension indexes the examples (or a
 * flat `Float32Array`, split evenly by the number of targets); `y` is an `Int32Array` of labels
 * (batches then carry an `Int32Array`) or a tensor of targets (batches carry a tensor).
 * @example
 * ```ts
 * import { batches, tensor } from "@sparselinear/sparselinear";
 * const x = tensor(new Float32Array(10 * 4), [10, 4]);
 * const labels = new Int32Array(10);
 * const loader = batches(x, labels, { batchSize: 4, shuffle: true, seed: 1, dropLast: true });
 * for (const { x: xb, y: yb } of loader) console.log(xb.shape, yb.length); // [4, 4] 4 (twice)
 * ```
 */
export function batches(
  x: Tensor | Float32Array,
  y: Int32Array,
  options: BatchOptions,
): Batches<Int32Array>;
/** Mini-batches of `(x, y)` with float targets: each batch's `y` is a tensor. */
export function batches(
  x: Tensor | Float32Array,
  y: Tensor,
  options: BatchOptions,
): Batches<Tensor>;
/** Mini-batches of `(x, y)`; see the overloads. */
export function batches(
  x: Tensor | Float32Array,
  y: Int32Array | Tensor,
  options: BatchOptions,
): Batches<Int32Array> | Batches<Tensor> {
  if (options === null || typeof options !== "object") {
    throw new TypeError("batches() needs an options object with batchSize");
  }
  checkOptionKeys(options, BATCH_OPTIONS, "batches()");
  const { batchSize } = options;
  numberOption(batchSize, "batchSize");
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!(x instanceof Tensor) && !(x instanceof Float32Array)) {
    throw new TypeError("x must be a Tensor or a Float32Array");
  }
  if (!(y instanceof Tensor) && !(y instanceof Int32Array)) {
    throw new TypeError("y must be an Int32Array of labels or a Tensor of targets");
  }
  const count = examplesOf(y, "y") ?? (y as Int32Array).length;
  const xCount = examplesOf(x, "x");
  if (xCount !== null && xCount !== count) {
    throw new ShapeError(
      `x holds ${xCount} examples (shape ${shapeString((x as Tensor).shape)}) but y holds ${count}`,
    );
  }
  let xExample: readonly number[];
  if (x instanceof Tensor) {
    xExample = x.shape.slice(1);
  } else {
    if (count === 0 ? x.length !== 0 : x.length % count !== 0) {
      throw new ShapeError(
        `x has ${x.length} values, which do not split evenly into ${count} examples (one per label)`,
      );
    }
    xExample = [count === 0 ? 0 : x.length / count];
  }
  const device = checkDevice(
    options.device !== undefined ? options.device : x instanceof Tensor ? x.device : "cpu",
  );
  const xHost = x instanceof Tensor
    ? (x.storage.host as Float32Array | undefined) ?? x.toArray()
    : x;
  const yExample = y instanceof Tensor ? y.shape.slice(1) : null;
  const yHost = y instanceof Tensor
    ? (y.storage.host as Float32Array | undefined) ?? y.toArray()
    : y;
  const settings = { ...options, device };
  return y instanceof Tensor
    ? new Batches<Tensor>(xHost, xExample, yHost, yExample, count, settings)
    : new Batches<Int32Array>(xHost, xExample, yHost, yExample, count, settings);
}
