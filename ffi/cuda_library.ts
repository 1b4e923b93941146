/**
 * Finds, loads and checks the optional CUDA library (libsparselinear_cuda.so), which exports the
 * CPU library's kernels on device pointers plus the `sl_device_*` family.
 *
 * Search order: 1. `SPARSELINEAR_CUDA_LIB` (path to the .so); 2. `build/libsparselinear_cuda.so`
 * next to this module when it is loaded from a `file:` URL; otherwise a `LibraryError` saying
 * what was searched and how to build it. The ABI version is checked as for the CPU library.
 *
 * The kernels are looked up from the CPU symbol table with every entry optional, so a CUDA
 * library that lacks a kernel added later to the CPU library still loads; calling that kernel
 * throws a `LibraryError` naming it (see `missingCudaKernels`).
 * @module
 */
import { LibraryError, NativeError } from "../lib/errors.ts";
import {
  candidatePaths,
  libraryFileExists,
  type NativeLibrary,
  openChecked,
  readCString,
} from "./library.ts";
import { symbols } from "./symbols.ts";
import { deviceSymbols } from "./symbols/device.ts";

/** The device entry points of the loaded CUDA library. */
export type DeviceSymbols = Deno.DynamicLibrary<typeof deviceSymbols>["symbols"];

/** The loaded CUDA library. */
export interface CudaLibrary {
  /** The kernels, with the CPU library's names and signatures (arrays on the device). */
  readonly kernels: NativeLibrary;
  /** `sl_device_*`: memory, copies, synchronisation, device info. */
  readonly device: DeviceSymbols;
  /** Path the library was loaded from. */
  readonly path: string;
  /** Kernels of the CPU table this library does not export. */
  readonly missing: readonly string[];
}

let loaded: CudaLibrary | undefined;

/**
 * Entries of the CPU symbol table the CUDA library has no counterpart of, by design (lacking them
 * is not a missing kernel): the CPU library's own scratch, and the kernels of layers whose
 * values are kept in CSC order (`valueOrder: "csc"`, a CPU layout: the CUDA backward reads the
 * CSC view through its permutation anyway).
 */
export const CPU_LIBRARY_ONLY: ReadonlySet<string> = new Set([
  "sl_scratch_peak_bytes",
  "sl_spmm_fwd_permuted",
  "sl_spmm_bwd_csc",
]);

/** The CUDA symbol table: every CPU kernel (optional) and the device family (required). */
function cudaTable(): Deno.ForeignLibraryInterface {
  const table: Record<string, Deno.ForeignFunction> = {};
  for (const [name, def] of Object.entries(symbols)) {
    table[name] = { ...(def as Deno.ForeignFunction), optional: true };
  }
  return { ...table, ...deviceSymbols };
}

/** Returns the CUDA library, loading it on first use. Throws `LibraryError` if it is missing. */
export function cudaLibrary(): CudaLibrary {
  if (loaded) return loaded;
  const paths = candidatePaths("sparselinear_cuda", "SPARSELINEAR_CUDA_LIB");
  const path = paths.find(libraryFileExists);
  if (path === undefined) {
    const searched = paths.length > 0
      ? paths.join(", ")
      : "(no candidate: module not loaded from a file: URL)";
    throw new LibraryError(
      `Device "cuda" needs the CUDA library libsparselinear_cuda, which was not found. ` +
        `Searched: SPARSELINEAR_CUDA_LIB (${
          Deno.env.get("SPARSELINEAR_CUDA_LIB") ?? "not set"
        }), then ${searched}. Build it with \`deno task build\` on a machine with the CUDA ` +
        "toolkit (nvcc), or set SPARSELINEAR_CUDA_LIB to the path of libsparselinear_cuda.so.",
    );
  }
  const lib = openChecked(path, cudaTable());
  const raw = lib.symbols as Record<string, unknown>;
  const kernels: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const name of Object.keys(symbols)) {
    if (raw[name] === null || raw[name] === undefined) {
      const cpuOnly = CPU_LIBRARY_ONLY.has(name);
      if (!cpuOnly) missing.push(name);
      kernels[name] = () => {
        throw new LibraryError(
          cpuOnly
            ? `${name} belongs to the CPU library only; the CUDA library has no counterpart`
            : `${name} is not implemented by the CUDA library at ${path}: rebuild it from this ` +
              "version, or run this operation on the CPU",
        );
      };
    } else {
      kernels[name] = raw[name];
    }
  }
  const device: Record<string, unknown> = {};
  for (const name of Object.keys(deviceSymbols)) device[name] = raw[name];
  loaded = {
    kernels: kernels as unknown as NativeLibrary,
    device: device as unknown as DeviceSymbols,
    path,
    missing,
  };
  return loaded;
}

/** Names of CPU kernels that the CUDA library does not export (loads it if needed). */
export function missingCudaKernels(): readonly string[] {
  return cudaLibrary().missing;
}

/** Throws a `NativeError` carrying the CUDA library's `sl_last_error()` when `status` is not 0. */
export function cudaCheck(status: number): void {
  if (status !== 0) {
    throw new NativeError(status, readCString(cudaLibrary().kernels.sl_last_error()));
  }
}
