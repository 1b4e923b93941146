/**
 * The device interface: memory of one tensor on one device (`Storage`) and the kernels that
 * run there (`Backend`). The CPU and CUDA libraries export the same C functions, so an op is
 * written once: it asks the tensors' backend for `kernels` and passes `storage.ptr()`.
 * @module
 */
import type { NativeLibrary } from "../../ffi/library.ts";

/** Where a tensor's memory lives. */
export type Device = "cpu" | "cuda";

/** Element type of a storage: float32 for values, int32 for indices and labels. */
export type DType = "float32" | "int32";

/** Host array type for a dtype. */
export type HostArray = Float32Array | Int32Array;

/** The memory of one tensor on one device. */
export interface Storage {
  /** The device holding the memory. */
  readonly device: Device;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** The live host array for CPU storage; `undefined` for device memory. */
  readonly host: HostArray | undefined;
  /** Pointer to pass to a kernel of this device's library (taken fresh for each call). */
  ptr(): Deno.PointerValue;
  /** A host copy of the contents. */
  toHost(): HostArray;
  /** Overwrites the contents with a host array of the same length and dtype. */
  write(array: HostArray): void;
  /** Releases device memory now (a no-op on the CPU); the storage must not be used after. */
  dispose(): void;
}

/** The kernels of one device: the same C ABI on host or device pointers. */
export type Kernels = NativeLibrary;

/** One device: allocation, transfers and its kernel library. */
export interface Backend {
  /** The device this backend runs on. */
  readonly device: Device;
  /** The loaded kernel library of this device. */
  readonly kernels: Kernels;
  /**
   * Whether the sparse input gradient for this batch size reads the pattern's CSC view
   * (`sl_spmm_bwd_input`: a gather per connection, like the forward) rather than the CSR
   * pattern itself (`sl_spmm_bwd_input_csr`: a scatter per connection, and the CSC view is then
   * never built; `sl_spmm_bwd_csr` when the weight gradient is needed too, one pass for both).
   * CUDA always uses the view (the CSR form would scatter with atomics and lose
   * determinism); the CPU uses it for batches above 1, where the scatter's read-modify-write of
   * whole feature-major rows costs about twice the gather's traffic, and the CSR form at batch 1,
   * where the values stream and the scattered vector stays in cache (bench/RESULTS.md).
   */
  inputGradientFromCsc(batch: number): boolean;
  /** Throws a `NativeError` with this library's last error when `status` is not 0. */
  check(status: number): void;
  /** Zero-filled storage of `length` elements. */
  zeros(dtype: DType, length: number): Storage;
  /**
   * Storage of `length` elements with unspecified contents, for the output of a kernel that
   * writes every element: no fill, and on the CPU a buffer given back by `recycle` is reused,
   * so no fresh pages are touched.
   */
  empty(dtype: DType, length: number): Storage;
  /**
   * Gives back storage that nothing will read or write again, for a later `empty`/`zeros` to
   * reuse (CPU) or to free at once (CUDA). Only a caller that owns every reference may call
   * it: the autograd engine does, for the gradients it allocated and consumed
   * (see `allocationLog`).
   */
  recycle(storage: Storage): void;
  /** Storage holding a copy of (CUDA) or, on the CPU, the very array given. */
  fromHost(array: HostArray): Storage;
}

/**
 * Storage allocated by a backend's `zeros`/`empty` while `active` is set: the autograd engine
 * sets it during a backward pass, so it knows which gradients it alone owns (and may recycle
 * once consumed). `fromHost` storage is never logged: on the CPU it is the caller's array.
 */
export const allocationLog: { active: Set<Storage> | null } = { active: null };
