/**
 * The CPU backend: storage is a JS typed array passed zero-copy to libsparselinear.so.
 * @module
 */
import { check, native, ptr } from "../../ffi/library.ts";
import type { Backend, DType, HostArray, Kernels, Storage } from "./backend.ts";

/** CPU memory: a typed array owned by JS (freed by the garbage collector). */
export class HostStorage implements Storage {
  /** Always "cpu". */
  readonly device = "cpu" as const;
  /** The live array. */
  readonly host: HostArray;

  /** Wraps an existing array without copying. */
  constructor(array: HostArray) {
    this.host = array;
  }
  /** Element type, from the array type. */
  get dtype(): DType {
    return this.host instanceof Int32Array ? "int32" : "float32";
  }
  /** Number of elements. */
  get length(): number {
    return this.host.length;
  }
  /** Pointer to the array's data. */
  ptr(): Deno.PointerValue {
    return ptr(this.host);
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
    return new HostStorage(dtype === "int32" ? new Int32Array(length) : new Float32Array(length));
  }
  fromHost(array: HostArray): Storage {
    return new HostStorage(array);
  }
}

/** The CPU backend instance. */
export const cpuBackend: Backend = new CpuBackend();
