/**
 * The CUDA backend: storage is device memory of libsparselinear_cuda.so, and the kernels are
 * that library's functions, which have the CPU library's names and signatures on device
 * pointers. Ops stay device-generic: `getBackend(x.device).kernels.sl_xxx(..., x.storage.ptr())`.
 *
 * Loaded lazily: nothing is opened until device "cuda" is first used; a missing library or a
 * machine without a GPU then gives a `LibraryError` that says which and what to do.
 *
 * Memory: `DeviceStorage.dispose()` frees at once (stream-ordered: queued kernels finish
 * first); a `FinalizationRegistry` frees storage that is garbage-collected without dispose().
 * Freed memory returns to the device's memory pool, so the allocations of a training step cost
 * no driver call once the pool is warm. Kernel calls only queue work: the data stays on the
 * device until `toHost()` / `item()` copies it back (the one synchronisation of a step).
 * @module
 */
import { cudaCheck, type CudaLibrary, cudaLibrary } from "../../ffi/cuda_library.ts";
import { ptr, readCString } from "../../ffi/library.ts";
import { MemcpyKind } from "../../ffi/symbols/device.ts";
import { LibraryError } from "../errors.ts";
import {
  allocationLog,
  type Backend,
  type DType,
  type HostArray,
  type Kernels,
  type Storage,
} from "./backend.ts";

/** Bytes per element of every dtype (float32 and int32). */
const ELEMENT_BYTES = 4;

/** Device addresses of storages that were garbage-collected without `dispose()`. */
const registry = new FinalizationRegistry<{ lib: CudaLibrary; address: bigint; bytes: number }>(
  ({ lib, address, bytes }) => {
    // Best effort: a failure here has no caller to report to.
    lib.device.sl_device_free(Deno.UnsafePointer.create(address));
    live.buffers--;
    live.bytes -= bytes;
  },
);

/** Device buffers currently allocated by this backend (those not yet freed). */
const live = { buffers: 0, bytes: 0 };

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
    allocatedAddress.pointer ??= ptr(allocatedAddress.slot);
    allocatedAddress.slot[0] = 0n;
    cudaCheck(
      lib.device.sl_device_alloc(BigInt(length * ELEMENT_BYTES), allocatedAddress.pointer),
    );
    this.#address = allocatedAddress.slot[0];
    this.#pointer = this.#address === 0n ? null : Deno.UnsafePointer.create(this.#address);
    if (this.#address !== 0n) {
      registry.register(this, { lib, address: this.#address, bytes: length * ELEMENT_BYTES }, this);
      live.buffers++;
      live.bytes += length * ELEMENT_BYTES;
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

  /** Frees the device memory now; the storage must not be used after (a second call is a no-op). */
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
    cudaCheck(this.#lib.device.sl_device_free(Deno.UnsafePointer.create(address)));
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
  cudaBackend();
  cudaCheck(loaded!.device.sl_device_set_sync_checks(on ? 1 : 0));
}

/** Selects the CUDA device that later allocations and kernels use (default 0). */
export function setCudaDevice(index: number): void {
  if (!Number.isInteger(index) || index < 0) {
    throw new RangeError(`CUDA device index must be a non-negative integer, got ${index}`);
  }
  cudaBackend();
  cudaCheck(loaded!.device.sl_device_set(index));
}

/** Device memory this backend currently holds: live buffers and their bytes. */
export function cudaMemoryStats(): { buffers: number; bytes: number } {
  return { ...live };
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
  const before = live.bytes;
  if (options.collect) {
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
