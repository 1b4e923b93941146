/**
 * The CPU backend: storage is a JS typed array passed zero-copy to libsparselinear.so.
 * @module
 */
import { check, native, ptr } from "../../ffi/library.ts";
import { checkAllocation } from "../memory_check.ts";
import { numberOption } from "../options.ts";
import {
  allocationLog,
  type Backend,
  type DType,
  type HostArray,
  type Kernels,
  type Storage,
} from "./backend.ts";

/**
 * Float32 arrays given back by `recycle` (gradients the autograd engine consumed, activations a
 * composite module released), by length, for the next `empty`/`zeros` of that length: a training
 * step then reuses last step's buffers instead of touching fresh pages (a 50000-wide layer at
 * batch 64 allocates 12.8 MB per activation; fresh pages cost ~7 ms per such array here). At
 * most `pooledMemoryLimit()` bytes are held, the oldest lengths giving way to newer ones;
 * `releasePooledMemory()` drops them all.
 */
const pool = new Map<number, Pooled[]>();
/** A recycled array and its data pointer (kept: taking it again costs ~0.5 us). */
interface Pooled {
  array: Float32Array;
  pointer: Deno.PointerValue;
}
let pooledBytes = 0;
/**
 * The pool's limit when the machine's memory size is not readable (without
 * `--allow-sys=systemMemoryInfo`), and its least default.
 */
export const POOL_LIMIT_BYTES = 512 * 1024 * 1024;

/** A quarter of the machine's memory when the process may read its size (never prompts). */
function defaultPoolLimit(): number {
  try {
    const sys = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" });
    if (sys.state !== "granted") return POOL_LIMIT_BYTES;
    return Math.max(POOL_LIMIT_BYTES, Math.floor(Deno.systemMemoryInfo().total / 4));
  } catch {
    return POOL_LIMIT_BYTES;
  }
}
let poolLimit = defaultPoolLimit();

/**
 * Bytes of recycled arrays the CPU backend keeps for reuse, at most: a quarter of the machine's
 * memory when readable, else `POOL_LIMIT_BYTES`. A step's working set must fit for it to run
 * without fresh pages (the wide MNIST model at batch 256: ~1.3 GB; at 512 MiB its step took
 * 762 ms with ~65,000 page faults, at 2 GiB 597 ms).
 */
export function pooledMemoryLimit(): number {
  return poolLimit;
}

/** Sets `pooledMemoryLimit()` (bytes, ≥ 0), dropping the oldest pooled arrays above it. */
export function setPooledMemoryLimit(bytes: number): void {
  numberOption(bytes, "setPooledMemoryLimit() bytes"); // "1" is a TypeError, not a range
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`setPooledMemoryLimit() needs a whole number of bytes ≥ 0, got ${bytes}`);
  }
  poolLimit = bytes;
  evictFor(0, -1);
}

/** Drops whole lengths, oldest first and never `keep`, until `bytes` more fit under the limit. */
function evictFor(bytes: number, keep: number): void {
  for (const [length, list] of pool) {
    if (pooledBytes + bytes <= poolLimit) return;
    if (length === keep) continue;
    for (const entry of list) pooledBytes -= entry.array.byteLength;
    pool.delete(length);
  }
}

/** Bytes currently held for reuse by the CPU backend (see `releasePooledMemory`). */
export function pooledMemoryBytes(): number {
  return pooledBytes;
}

/** Drops the CPU backend's recycled arrays, leaving them to the garbage collector. */
export function releasePooledMemory(): void {
  pool.clear();
  pooledBytes = 0;
}

function takePooled(length: number): Pooled | undefined {
  const list = pool.get(length);
  const entry = list?.pop();
  if (entry !== undefined) {
    pooledBytes -= entry.array.byteLength;
    if (list!.length === 0) pool.delete(length);
  }
  return entry;
}

/** The built-in `length` getter of typed arrays, which a subclass cannot override. */
const typedArrayLength = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  "length",
)!.get! as (this: ArrayBufferView) => number;

/**
 * The number of elements a typed array really has (0 once its buffer is detached or shrunk
 * out from under it), whatever a subclass' `length` claims: native code reads that many.
 */
export function elementCount(array: ArrayBufferView): number {
  return typedArrayLength.call(array);
}

/** CPU memory: a typed array owned by JS (freed by the garbage collector). */
export class HostStorage implements Storage {
  /** Always "cpu". */
  readonly device = "cpu" as const;
  // The live array; null once given back to the pool (see `recycle`).
  #host: HostArray | null;
  // The pointer of `host`, taken once: Deno.UnsafePointer.of costs 0.3-0.8 us, and an op
  // passes 3-10 pointers; the address of an array's data is fixed for its life (V8 never moves
  // a backing store Deno has handed out; a detached or resized array fails `host` first).
  #pointer: Deno.PointerValue = null;
  // The element count, fixed when the storage was made: the tensor's size. A wrapped user
  // array can later be detached (`buffer.transfer()`) or resized (a resizable ArrayBuffer);
  // `host` then throws rather than let kernels read fewer (or more) elements than that.
  readonly #length: number;

  /** Wraps an existing array without copying (`pointer`: its data pointer, when known). */
  constructor(array: HostArray, pointer: Deno.PointerValue = null) {
    this.#host = array;
    this.#length = elementCount(array);
    if (array.length !== this.#length) {
      throw new TypeError(
        `A ${array.constructor.name} whose length (${array.length}) is not its element count ` +
          `(${this.#length}) cannot hold a tensor`,
      );
    }
    this.#pointer = pointer;
  }
  /**
   * The live array. Throws once the storage was given back for reuse: the memory may by then
   * hold another tensor, so a stale reader gets an error instead of someone else's numbers;
   * and when the array no longer has the tensor's element count.
   */
  get host(): HostArray {
    const host = this.#host;
    if (host === null) {
      throw new Error(
        "This tensor's memory was given back for reuse (an intermediate activation or gradient " +
          "the library freed once it was consumed) and can no longer be read or written",
      );
    }
    const now = elementCount(host);
    if (now !== this.#length) {
      throw new Error(
        `This tensor's array now has ${now} elements, not the ${this.#length} it was made with: ` +
          "its buffer was detached (transferred) or resized after the tensor wrapped it. A " +
          "tensor shares the array it is made from: pass a copy (array.slice()) to keep using both",
      );
    }
    return host;
  }
  /** Hands the array over to the pool: this storage is unusable afterwards. */
  takeArray(): HostArray {
    const array = this.host;
    this.#host = null;
    return array;
  }
  /** Element type, from the array type. */
  get dtype(): DType {
    return this.host instanceof Int32Array ? "int32" : "float32";
  }
  /** Number of elements. */
  get length(): number {
    void this.host; // throws for a released, detached or resized array
    return this.#length;
  }
  /** Pointer to the array's data (taken once: V8 never moves a backing store Deno was given). */
  ptr(): Deno.PointerValue {
    const host = this.host;
    if (this.#pointer === null) this.#pointer = ptr(host);
    return this.#pointer;
  }
  /** A copy of the array. */
  toHost(): HostArray {
    return this.host.slice();
  }
  /** Copies `array` into this storage. */
  write(array: HostArray): void {
    if (array.length !== this.host.length) {
      throw new RangeError(`write() needs ${this.host.length} elements, got ${array.length}`);
    }
    this.host.set(array);
  }
  /** Nothing to release: the garbage collector owns the array. */
  dispose(): void {}
}

/**
 * Fresh arrays of at least this many bytes are advised onto 2 MiB pages (`sl_advise_huge_pages`)
 * before their first write: on this VM a fresh 256 MB gradient took 370-480 ms of 4 KiB page
 * faults to write, 22-235 ms advised (bench/RESULTS.md). From this size on glibc maps each array
 * on pages of its own (the library's mmap threshold, csrc/common/core.c), so the advice stays
 * with that array; smaller arrays share the heap, where it would outlive them.
 */
const HUGE_PAGE_ADVICE_BYTES = 32 << 20;

class CpuBackend implements Backend {
  readonly device = "cpu" as const;
  inputGradientFromCsc(batch: number): boolean {
    return batch > 1;
  }
  get kernels(): Kernels {
    return native();
  }
  check(status: number): void {
    check(status);
  }
  zeros(dtype: DType, length: number): Storage {
    const reused = dtype === "float32" ? takePooled(length) : undefined;
    if (reused !== undefined) {
      reused.array.fill(0);
      return logged(new HostStorage(reused.array, reused.pointer));
    }
    // A fresh allocation the machine cannot hold is a RangeError, not an out-of-memory kill
    // (gradients, activations, optimizer state of a layer that fit when it was built).
    checkAllocation(
      4 * length,
      `A new ${dtype} buffer of ${length} elements`,
      "Use a smaller batch or layer",
    );
    const array = dtype === "int32" ? new Int32Array(length) : new Float32Array(length);
    if (array.byteLength < HUGE_PAGE_ADVICE_BYTES) return logged(new HostStorage(array));
    // Not written yet: on 2 MiB pages its first write faults 512× less often.
    const pointer = ptr(array);
    check(native().sl_advise_huge_pages(pointer, BigInt(array.byteLength)));
    return logged(new HostStorage(array, pointer));
  }
  empty(dtype: DType, length: number): Storage {
    const reused = dtype === "float32" ? takePooled(length) : undefined;
    return reused === undefined
      ? this.zeros(dtype, length)
      : logged(new HostStorage(reused.array, reused.pointer));
  }
  recycle(storage: Storage): void {
    if (!(storage instanceof HostStorage)) return;
    const pointer = storage.ptr();
    const array = storage.takeArray();
    if (!(array instanceof Float32Array) || array.length === 0) return;
    // Only whole arrays: a subarray view shares its buffer with something else.
    if (array.byteOffset !== 0 || array.byteLength !== array.buffer.byteLength) return;
    evictFor(array.byteLength, array.length);
    if (pooledBytes + array.byteLength > poolLimit) return;
    const entry = { array, pointer };
    const list = pool.get(array.length);
    if (list === undefined) pool.set(array.length, [entry]);
    else list.push(entry);
    pooledBytes += array.byteLength;
  }
  fromHost(array: HostArray): Storage {
    return new HostStorage(array);
  }
}

function logged(storage: HostStorage): HostStorage {
  allocationLog.active?.add(storage);
  return storage;
}

/** The CPU backend instance. */
export const cpuBackend: Backend = new CpuBackend();
