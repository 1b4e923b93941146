/**
 * The CUDA backend: storage is device memory of libsparselinear_cuda.so, and the kernels are
 * that library's functions, which have the CPU library's names and signatures on device
 * pointers. Ops stay device-generic: `getBackend(x.device).kernels.sl_xxx(..., x.storage.ptr())`.
 *
 * Loaded lazily: nothing is opened until device "cuda" is first used; a missing library or a
 * machine without a GPU then gives a `LibraryError` that says which and what to do.
 *
 * Memory: `DeviceStorage.dispose()` gives the block back at once (stream-ordered: queued
 * kernels finish first); a `FinalizationRegistry` does the same for storage that is
 * garbage-collected without dispose(). Freed blocks are kept for reuse by the next allocation
 * of the same size (block_cache.ts, up to `setCudaCacheLimit` bytes), and what leaves that
 * cache returns to the device's memory pool, so the allocations of a training step cost no
 * native call once it is warm. Kernel calls only queue work: the data stays on the device until
 * `toHost()` / `item()` copies it back (the one synchronisation of a step).
 * @module
 */
import { cudaCheck, type CudaLibrary, cudaLibrary } from "../../ffi/cuda_library.ts";
import { ptr, readCString } from "../../ffi/library.ts";
import { MemcpyKind } from "../../ffi/symbols/device.ts";
import { LibraryError } from "../errors.ts";
import { booleanOption, checkOptionKeys, numberOption } from "../options.ts";
import {
  allocationLog,
  type Backend,
  type DType,
  type HostArray,
  type Kernels,
  type Storage,
} from "./backend.ts";
import { BlockCache, DEFAULT_BLOCK_CACHE_BYTES } from "./block_cache.ts";

/** Bytes per element of every dtype (float32 and int32). */
const ELEMENT_BYTES = 4;

/** Device addresses of storages that were garbage-collected without `dispose()`. */
const registry = new FinalizationRegistry<{ cache: BlockCache; address: bigint; bytes: number }>(
  ({ cache, address, bytes }) => {
    cache.give(bytes, address);
    live.buffers--;
    live.bytes -= bytes;
  },
);

/** Device buffers held by storages (allocated and not yet given back). */
const live = { buffers: 0, bytes: 0 };

/** The block cache of each device index, and the current device's. */
const caches = new Map<number, BlockCache>();
let currentCache: BlockCache | undefined;
let cacheLimit = DEFAULT_BLOCK_CACHE_BYTES;

/** The block cache of the current device (made on first use). */
function blockCache(lib: CudaLibrary): BlockCache {
  if (currentCache !== undefined) return currentCache;
  const device = lib.device.sl_device_get();
  let cache = caches.get(device);
  if (cache === undefined) {
    // A block leaves the cache for the driver's pool; a failure there (a device already in an
    // error state) is reported by the next kernel call, which has a caller to report to.
    cache = new BlockCache((address) => {
      lib.device.sl_device_free(Deno.UnsafePointer.create(address));
    });
    cache.limit = cacheLimit;
    caches.set(device, cache);
  }
  currentCache = cache;
  return cache;
}

/** A device block of `bytes` (> 0): a cached one, else a new one (the cache is emptied into the
 * driver's pool and the allocation retried once when the device is out of memory). */
function allocateBlock(lib: CudaLibrary, cache: BlockCache, bytes: number): bigint {
  const cached = cache.take(bytes);
  if (cached !== undefined) return cached;
  allocatedAddress.pointer ??= ptr(allocatedAddress.slot);
  allocatedAddress.slot[0] = 0n;
  let status = lib.device.sl_device_alloc(BigInt(bytes), allocatedAddress.pointer);
  if (status !== 0 && cache.bytes > 0) {
    cache.clear();
    status = lib.device.sl_device_alloc(BigInt(bytes), allocatedAddress.pointer);
  }
  cudaCheck(status);
  return allocatedAddress.slot[0];
}

let loaded: CudaLibrary | undefined;

/**
 * Where sl_device_alloc writes the new address: one array for every allocation, its pointer
 * taken once (a fresh array and pointer cost ~1.5 us, on every op's output).
 */
const allocatedAddress: { slot: BigUint64Array; pointer: Deno.PointerValue | undefined } = {
  slot: new BigUint64Array(1),
  pointer: undefined,
};

/** Device memory of one tensor (float32 values or int32 indices). */
export class DeviceStorage implements Storage {
  /** Always "cuda". */
  readonly device = "cuda" as const;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** Device memory has no live host view. */
  readonly host: undefined = undefined;
  #lib: CudaLibrary;
  /** Where dispose() gives the block back (the cache of the device it was allocated on). */
  #cache: BlockCache;
  #address: bigint;
  /** The address as a pointer object, made once: ops ask for it several times per call. */
  #pointer: Deno.PointerValue;
  #disposed = false;

  /** Allocates `length` uninitialised elements (prefer `cudaBackend().zeros` / `fromHost`). */
  constructor(lib: CudaLibrary, dtype: DType, length: number) {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`Storage length must be a non-negative integer, got ${length}`);
    }
    this.#lib = lib;
    this.dtype = dtype;
    this.length = length;
    const bytes = length * ELEMENT_BYTES;
    this.#cache = blockCache(lib);
    this.#address = bytes === 0 ? 0n : allocateBlock(lib, this.#cache, bytes);
    this.#pointer = this.#address === 0n ? null : Deno.UnsafePointer.create(this.#address);
    if (this.#address !== 0n) {
      registry.register(this, { cache: this.#cache, address: this.#address, bytes }, this);
      live.buffers++;
      live.bytes += bytes;
    }
  }

  /** The device pointer (null for an empty storage). Throws after `dispose()`. */
  ptr(): Deno.PointerValue {
    if (this.#disposed) {
      throw new Error("This CUDA storage was disposed: the tensor cannot be used any more");
    }
    return this.#pointer;
  }

  /** A host copy of the contents (waits for the queued kernels that write them). */
  toHost(): HostArray {
    const out = this.dtype === "int32"
      ? new Int32Array(this.length)
      : new Float32Array(this.length);
    if (this.length > 0) {
      cudaCheck(
        this.#lib.device.sl_device_memcpy(
          ptr(out),
          this.ptr(),
          BigInt(this.length * ELEMENT_BYTES),
          MemcpyKind.deviceToHost,
        ),
      );
    }
    return out;
  }

  /** Overwrites the contents with a host array of the same length and dtype. */
  write(array: HostArray): void {
    const dtype: DType = array instanceof Int32Array ? "int32" : "float32";
    if (dtype !== this.dtype) {
      throw new TypeError(`write() needs ${this.dtype} data, got ${dtype}`);
    }
    if (array.length !== this.length) {
      throw new RangeError(`write() needs ${this.length} elements, got ${array.length}`);
    }
    if (this.length === 0) return;
    cudaCheck(
      this.#lib.device.sl_device_memcpy(
        this.ptr(),
        ptr(array),
        BigInt(this.length * ELEMENT_BYTES),
        MemcpyKind.hostToDevice,
      ),
    );
  }

  /**
   * Gives the device memory back now (to the block cache, for the next allocation of its size);
   * the storage must not be used after (a second call is a no-op).
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#address === 0n) return;
    registry.unregister(this);
    live.buffers--;
    live.bytes -= this.length * ELEMENT_BYTES;
    const address = this.#address;
    this.#address = 0n;
    this.#pointer = null;
    this.#cache.give(this.length * ELEMENT_BYTES, address);
  }
}

class CudaBackend implements Backend {
  readonly device = "cuda" as const;
  inputGradientFromCsc(_batch: number): boolean {
    return true;
  }
  readonly #lib: CudaLibrary;
  constructor(lib: CudaLibrary) {
    this.#lib = lib;
  }
  get kernels(): Kernels {
    return this.#lib.kernels;
  }
  check(status: number): void {
    cudaCheck(status);
  }
  zeros(dtype: DType, length: number): Storage {
    const s = this.empty(dtype, length);
    if (length > 0) {
      cudaCheck(this.#lib.device.sl_device_memset(s.ptr(), 0, BigInt(length * ELEMENT_BYTES)));
    }
    return s;
  }
  empty(dtype: DType, length: number): Storage {
    const s = new DeviceStorage(this.#lib, dtype, length);
    allocationLog.active?.add(s);
    return s;
  }
  /** Frees at once (stream-ordered); a later use of the storage throws instead of reading it. */
  recycle(storage: Storage): void {
    if (storage instanceof DeviceStorage) storage.dispose();
  }
  fromHost(array: HostArray): Storage {
    const dtype: DType = array instanceof Int32Array ? "int32" : "float32";
    const s = new DeviceStorage(this.#lib, dtype, array.length);
    s.write(array);
    return s;
  }
}

let backend: CudaBackend | undefined;

/**
 * The CUDA backend, loading the library on first use. Throws `LibraryError` when the library is
 * missing or no CUDA device is usable (the message says which, and why).
 */
export function cudaBackend(): Backend {
  if (backend !== undefined) return backend;
  const lib = cudaLibrary();
  const count = lib.device.sl_device_count();
  if (count <= 0) {
    const why = readCString(lib.kernels.sl_last_error());
    throw new LibraryError(
      `Device "cuda" is not available: the CUDA library loaded from ${lib.path}, but no CUDA ` +
        `device is usable (${why || "sl_device_count() returned 0"}). Use device "cpu", or run ` +
        "on a machine with an NVIDIA GPU and driver.",
    );
  }
  loaded = lib;
  backend = new CudaBackend(lib);
  return backend;
}

/** Whether device "cuda" can be used here (library present and at least one GPU). */
export function cudaAvailable(): boolean {
  try {
    cudaBackend();
    return true;
  } catch {
    return false;
  }
}

/** Properties of one CUDA device. */
export interface CudaDeviceInfo {
  /** Device index. */
  index: number;
  /** Marketing name, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** Total memory in bytes. */
  totalBytes: number;
  /** Compute capability, e.g. [9, 0]. */
  computeCapability: [number, number];
  /** Number of streaming multiprocessors. */
  multiprocessors: number;
}

/** Properties of the CUDA device `index` (default: the current one). */
export function cudaDeviceInfo(index?: number): CudaDeviceInfo {
  if (index !== undefined) numberOption(index, "cudaDeviceInfo() index");
  cudaBackend();
  const lib = loaded!;
  const device = index ?? lib.device.sl_device_get();
  const name = new Uint8Array(256);
  const total = new BigInt64Array(1);
  const ints = new Int32Array(3);
  cudaCheck(
    lib.device.sl_device_info(
      device,
      ptr(name),
      name.length,
      ptr(total),
      ptr(ints.subarray(0, 1)),
      ptr(ints.subarray(1, 2)),
      ptr(ints.subarray(2, 3)),
    ),
  );
  return {
    index: device,
    name: new TextDecoder().decode(name.subarray(0, name.indexOf(0))),
    totalBytes: Number(total[0]),
    computeCapability: [ints[0], ints[1]],
    multiprocessors: ints[2],
  };
}

/**
 * Waits for every queued kernel on the CUDA device and reports errors they recorded (device
 * index checks run deferred by default; see `setCudaSyncChecks`).
 */
export function cudaSynchronize(): void {
  cudaBackend();
  cudaCheck(loaded!.device.sl_device_synchronize());
}

/**
 * `true`: every CUDA kernel call waits for the device and reports its own index errors (slower;
 * for debugging). `false` (default): errors found by kernels are reported by the next call that
 * synchronises (a copy to the host such as `item()`, or `cudaSynchronize()`).
 */
export function setCudaSyncChecks(on: boolean): void {
  booleanOption(on, "setCudaSyncChecks() on", false); // "false" would turn them on
  cudaBackend();
  cudaCheck(loaded!.device.sl_device_set_sync_checks(on ? 1 : 0));
}

/** Selects the CUDA device that later allocations and kernels use (default 0). */
export function setCudaDevice(index: number): void {
  numberOption(index, "CUDA device index");
  if (!Number.isInteger(index) || index < 0) {
    throw new RangeError(`CUDA device index must be a non-negative integer, got ${index}`);
  }
  cudaBackend();
  cudaCheck(loaded!.device.sl_device_set(index));
  currentCache = undefined;
}

/** Device memory of the CUDA backend (see `cudaMemoryStats`). */
export interface CudaMemoryStats {
  /** Buffers held by storages (tensors not yet disposed or collected). */
  buffers: number;
  /** Their bytes. */
  bytes: number;
  /** Freed buffers kept for reuse by allocations of the same size (all devices). */
  cachedBuffers: number;
  /** Their bytes (`releaseCudaCache()` returns them to the driver). */
  cachedBytes: number;
}

/** Device memory this backend holds: live buffers and cached ones, with their bytes. */
export function cudaMemoryStats(): CudaMemoryStats {
  let cachedBuffers = 0, cachedBytes = 0;
  for (const cache of caches.values()) {
    cachedBuffers += cache.blocks;
    cachedBytes += cache.bytes;
  }
  return { ...live, cachedBuffers, cachedBytes };
}

/**
 * Sets the most bytes of freed device buffers kept, per device, for reuse by later allocations
 * of the same size (default 1 GiB; 0 turns the cache off). Every kernel runs on one stream, so
 * a kept buffer is safe to hand out again at once; the cache saves the native allocation and
 * free calls of each step (~2 µs each). It is emptied on its own when an allocation finds the
 * device out of memory.
 */
export function setCudaCacheLimit(bytes: number): void {
  numberOption(bytes, "setCudaCacheLimit() bytes");
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(
      `setCudaCacheLimit() needs a non-negative integer number of bytes, got ${bytes}`,
    );
  }
  cacheLimit = bytes;
  for (const cache of caches.values()) cache.limit = bytes;
}

/** The per-device limit of `setCudaCacheLimit` (bytes). */
export function cudaCacheLimit(): number {
  return cacheLimit;
}

/**
 * Returns every cached (freed, kept for reuse) device buffer to the driver's memory pool, from
 * which allocations of any size are served; returns the bytes released. Buffers still held by
 * tensors are not touched: `dispose()` them (or `reclaimDeviceMemory()`) first.
 */
export function releaseCudaCache(): number {
  let released = 0;
  for (const cache of caches.values()) released += cache.clear();
  return released;
}

/**
 * Lets the device memory of unreachable tensors go back now, and returns the bytes it freed.
 *
 * A tensor that is never `dispose()`d is freed by a FinalizationRegistry callback once the
 * garbage collector has found it unreachable. Two things delay that in a training loop: V8
 * collects on JavaScript heap growth and sees none of the device memory, and the callbacks only
 * run when the event loop gets a turn, which a synchronous loop never gives it. This yields one
 * event-loop turn; with `collect: true` it first makes a minor collection likely by allocating
 * short-lived garbage (a few MB of small objects, a few ms: for when the memory is needed).
 * `fit()` calls it on its own; call it in your own loops (`await reclaimDeviceMemory()`) every
 * few hundred MB of device allocations, or `dispose()` what you no longer need.
 */
export async function reclaimDeviceMemory(options: { collect?: boolean } = {}): Promise<number> {
  checkOptionKeys(options, ["collect"], "reclaimDeviceMemory()");
  const before = live.bytes;
  if (booleanOption(options.collect, "reclaimDeviceMemory() collect", false)) {
    // Short-lived objects fill the young generation, whose collection finds the dead tensors
    // (a tensor that lived through one step dies young).
    let junk: number[][] = [];
    for (let i = 0; i < 1 << 19; i++) {
      junk.push([i, i]); // escapes into junk, so the compiler cannot elide it
      if (junk.length === 4096) junk = [];
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 0));
  return Math.max(0, before - live.bytes);
}
