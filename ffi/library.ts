/**
 * Finds, loads and checks the native CPU library, and turns C status codes into errors.
 *
 * Search order: 1. `SPARSELINEAR_LIB` (path to the .so); 2. `build/libsparselinear.so` next to
 * this module when it is loaded from a `file:` URL; otherwise a `LibraryError` that lists what
 * was searched and says to run `deno task build`.
 * @module
 */
import { fileURLToPath } from "node:url";
import { describeValue, LibraryError, NativeError } from "../lib/errors.ts";
import { booleanOption, checkOptionKeys } from "../lib/options.ts";
import { type Symbols, symbols } from "./symbols.ts";

/** The ABI version this TypeScript code was written for (SL_ABI_VERSION in sparselinear.h). */
export const EXPECTED_ABI_VERSION = 10;

/** The loaded CPU library's symbols. */
export type NativeLibrary = Deno.DynamicLibrary<Symbols>["symbols"];

let loaded: NativeLibrary | undefined;

/** Library file name for this OS. */
export function libraryFileName(base: string): string {
  if (Deno.build.os === "darwin") return `lib${base}.dylib`;
  if (Deno.build.os === "windows") return `${base}.dll`;
  return `lib${base}.so`;
}

/**
 * The candidate paths for a native library, in search order. An explicit `envVar` is the only
 * candidate: a path the user named that does not exist is an error, never a silent fallback.
 */
export function candidatePaths(base: string, envVar: string): string[] {
  const paths: string[] = [];
  const fromEnv = Deno.env.get(envVar);
  if (fromEnv) return [fromEnv];
  const here = new URL(import.meta.url);
  if (here.protocol === "file:") {
    // A file path, not the URL's percent-encoded pathname ("dir%20with%20space", "caf%C3%A9").
    paths.push(fileURLToPath(new URL(`../build/${libraryFileName(base)}`, here)));
  }
  return paths;
}

/**
 * Whether the library file `path` exists. A path Deno may not read (no `--allow-read` for it)
 * is a `LibraryError` naming the flag, not a missing library: the file may well be there.
 */
export function libraryFileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      throw new LibraryError(
        `sparselinear's kernels are a native library (looked for at ${path}), and finding it ` +
          "needs read permission for that path: run Deno with --allow-read (or -A)",
      );
    }
    return false;
  }
}

/** Reads a NUL-terminated C string returned by the library. */
export function readCString(ptr: Deno.PointerValue): string {
  if (ptr === null) return "";
  return Deno.UnsafePointerView.getCString(ptr);
}

/**
 * Opens a library file with a symbol table and checks `sl_abi_version` (after
 * `applyOpenMpWaitDefault`, so that OpenMP starts with that wait policy).
 */
export function openChecked<S extends Deno.ForeignLibraryInterface>(
  path: string,
  table: S,
): Deno.DynamicLibrary<S> {
  let lib: Deno.DynamicLibrary<S>;
  applyOpenMpWaitDefault();
  try {
    lib = Deno.dlopen(path, table);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new LibraryError(
        `sparselinear's kernels are a native library (${path}), and loading one needs FFI ` +
          "permission: run Deno with --allow-ffi (or -A)",
      );
    }
    // Deno repeats "Could not open library: " from the dynamic loader's message.
    const reason = (err as Error).message.replace(/^(Could not open library: )+/, "");
    throw new LibraryError(
      `Could not load the native library at ${path}: ${reason}. ` +
        "It may be stale, damaged or built for another ABI; rebuild it with `deno task build`.",
    );
  }
  const abi = (lib.symbols as unknown as { sl_abi_version: () => number }).sl_abi_version();
  if (abi !== EXPECTED_ABI_VERSION) {
    lib.close();
    throw new LibraryError(
      `The native library at ${path} has ABI version ${abi}, but this code needs version ` +
        `${EXPECTED_ABI_VERSION}. Rebuild it with \`deno task build\` ` +
        "(or point SPARSELINEAR_LIB at a library built from this version).",
    );
  }
  return lib;
}

/**
 * The spin count the library gives OpenMP's idle threads unless the user chose a wait policy:
 * spin briefly after a parallel region, then sleep. libgomp's default spins for ~300,000
 * iterations (and OpenBLAS's own pool spins too), which on a busy machine steals the cores the
 * other threads need: an epoch of the sparse MNIST model on 20,000 images took 13-26 s with the
 * default and 0.9-1.1 s with this (the same as passive waiting, or one thread) on 2 cores at
 * load 5-9.
 */
export const DEFAULT_GOMP_SPINCOUNT = "1000";

/**
 * Sets `GOMP_SPINCOUNT` to `DEFAULT_GOMP_SPINCOUNT` when neither `OMP_WAIT_POLICY` nor
 * `GOMP_SPINCOUNT` is set. libgomp reads it once, when a native library first loads it, so
 * `openChecked` calls this before every dlopen; set `OMP_WAIT_POLICY=active` (or a
 * `GOMP_SPINCOUNT`) to keep spinning on a dedicated machine. Without env permission for these
 * names nothing is set (and nothing is prompted for).
 */
export function applyOpenMpWaitDefault(): void {
  const names = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];
  try {
    // Query first, so that a run without env permission is not prompted for these names.
    const granted = names.every((variable) =>
      Deno.permissions.querySync({ name: "env", variable }).state === "granted"
    );
    if (granted && names.every((n) => Deno.env.get(n) === undefined)) {
      Deno.env.set("GOMP_SPINCOUNT", DEFAULT_GOMP_SPINCOUNT);
    }
  } catch {
    // No env access: keep the runtime's default.
  }
}

/** Returns the CPU library, loading it on first use. Throws `LibraryError` if it is missing. */
export function native(): NativeLibrary {
  if (loaded) return loaded;
  const paths = candidatePaths("sparselinear", "SPARSELINEAR_LIB");
  const path = paths.find(libraryFileExists);
  if (path === undefined) {
    const local = new URL(import.meta.url).protocol === "file:";
    const searched = paths.length > 0
      ? paths.join(", ")
      : `nothing else: this module was loaded from ${new URL("..", import.meta.url).href}, ` +
        "not from files, so there is no build/ next to it";
    const fromEnv = Deno.env.get("SPARSELINEAR_LIB");
    const where = fromEnv
      ? `SPARSELINEAR_LIB names ${fromEnv}, which does not exist (an explicit path is the only ` +
        "candidate: no fallback to build/)"
      : `Searched: SPARSELINEAR_LIB (not set), then ${searched}`;
    // Imported from JSR or another URL, the package's own `deno task build` is not at hand.
    const build = local
      ? "Build it with `deno task build`"
      : "Build it once from the project's sources (`deno task build` in a clone, or CMake on " +
        "the published csrc/ and CMakeLists.txt)";
    throw new LibraryError(
      `The native library libsparselinear was not found. ${where}. ` +
        `${build}, or set SPARSELINEAR_LIB to the path of libsparselinear.so.`,
    );
  }
  checkThreadsVariable();
  loaded = openChecked(path, symbols).symbols;
  return loaded;
}

/** Throws a `NativeError` carrying `sl_last_error()` when `status` is not 0. */
export function check(status: number): void {
  if (status !== 0) {
    throw new NativeError(status, readCString(native().sl_last_error()));
  }
}

/**
 * Pointer to a typed array's data, for a `"pointer"` FFI parameter. Arrays are passed by
 * pointer (not `"buffer"`) so that the CPU and CUDA libraries share one symbol table: a CUDA
 * tensor passes its device pointer in the same position. The pointer is taken right before each
 * call and the array stays referenced by the caller throughout it.
 */
export function ptr(array: ArrayBufferView | null): Deno.PointerValue {
  return array === null ? null : Deno.UnsafePointer.of(array as Uint8Array<ArrayBuffer>);
}

/** Sets the number of threads native kernels use; `n <= 0` restores the default. */
export function setNumThreads(n: number): void {
  if (typeof n !== "number") {
    throw new TypeError(`Thread count must be an integer, got ${describeValue(n)}`);
  }
  if (!Number.isInteger(n)) {
    throw new RangeError(`Thread count must be an integer, got ${n}`);
  }
  if (n > MAX_THREADS) {
    throw new RangeError(
      `Thread count must be at most ${MAX_THREADS} (or <= 0 for the default), got ${n}`,
    );
  }
  check(native().sl_set_num_threads(Math.max(n, 0)));
}

/** Precisions of the CPU's batched sparse products (see `setSparseMatmulPrecision`). */
export const SPARSE_MATMUL_PRECISIONS = ["highest", "medium"] as const;

/** One of `SPARSE_MATMUL_PRECISIONS`. */
export type SparseMatmulPrecision = typeof SPARSE_MATMUL_PRECISIONS[number];

/**
 * Sets the precision of the CPU's batched sparse products (a SparseLinear's forward and
 * backward at batch > 1), process-wide, like PyTorch's `set_float32_matmul_precision`:
 * - `"highest"` (the default): float32 throughout.
 * - `"medium"`: the operand the kernels read at random (the layer's input in the forward, the
 *   output gradient in the backward) is rounded to bfloat16 (8 significant bits, to nearest
 *   even) as the kernel lays it out; weights, products, sums and results stay float32. Half
 *   the bytes gathered: a 50000 × 50000 layer at 99.9 % and batch 64 trains ~1.3× faster here
 *   (bench/RESULTS.md). The results are exactly the highest-precision ones on the rounded
 *   operand.
 *
 * Batch 1, the weight gradient alone (`sl_sddmm`, when the input needs no gradient) and CUDA
 * tensors are not affected.
 * @example
 * ```ts
 * import { getSparseMatmulPrecision, setSparseMatmulPrecision } from "@sparselinear/sparselinear";
 * setSparseMatmulPrecision("medium");
 * console.log(getSparseMatmulPrecision()); // medium
 * setSparseMatmulPrecision("highest");
 * ```
 */
export function setSparseMatmulPrecision(precision: SparseMatmulPrecision): void {
  const code = SPARSE_MATMUL_PRECISIONS.indexOf(precision);
  if (code < 0) {
    throw new RangeError(
      `Sparse matmul precision must be one of ${
        SPARSE_MATMUL_PRECISIONS.map((p) => `"${p}"`).join(", ")
      }, got ${describeValue(precision)}`,
    );
  }
  check(native().sl_set_matmul_precision(code));
}

/** The precision `setSparseMatmulPrecision` set (`"highest"` by default). */
export function getSparseMatmulPrecision(): SparseMatmulPrecision {
  return SPARSE_MATMUL_PRECISIONS[native().sl_get_matmul_precision()] ?? "highest";
}

/** The most threads the native library accepts (sl_set_num_threads, SL_NUM_THREADS). */
export const MAX_THREADS = 4096;

/**
 * Checks SL_NUM_THREADS, which the native library reads on its own: a value it cannot use
 * would be ignored there (all cores), so it is an error here instead. Unreadable without env
 * permission, it is then not checked.
 */
function checkThreadsVariable(): void {
  let value: string | undefined;
  try {
    const state = Deno.permissions.querySync({ name: "env", variable: "SL_NUM_THREADS" }).state;
    value = state === "granted" ? Deno.env.get("SL_NUM_THREADS") : undefined;
  } catch {
    return;
  }
  // Blanks as C's isspace() counts them (no Unicode spaces: the library would not skip them).
  if (value === undefined || /^[ \t\n\v\f\r]*$/.test(value)) return; // unset, as in C
  // An optional "+", as C's strtol() reads it ("+4" is 4 threads there).
  const n = /^[ \t\n\v\f\r]*\+?\d+[ \t\n\v\f\r]*$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_THREADS)) {
    throw new RangeError(
      `SL_NUM_THREADS must be an integer from 1 to ${MAX_THREADS}, got "${value}" ` +
        "(unset it to use every core)",
    );
  }
}

/** The number of threads native kernels use (SL_NUM_THREADS or all cores by default). */
export function getNumThreads(): number {
  return native().sl_get_num_threads();
}

/**
 * The most bytes of working memory the CPU kernels held at once since the last reset, as they
 * asked for them (what `sparseKernelScratch` in the memory model predicts per call; blocks of
 * 1 MiB and more are mapped rounded up to 2 MiB pages, and up to 256 MiB of them stay mapped
 * between calls). `reset: true` then restarts the measurement. GEMMs run by OpenBLAS keep their
 * own buffers, not counted.
 */
export function kernelScratchPeakBytes(options: { reset?: boolean } = {}): number {
  checkOptionKeys(options, ["reset"], "kernelScratchPeakBytes()");
  const reset = booleanOption(options.reset, "kernelScratchPeakBytes() reset", false);
  return Number(native().sl_scratch_peak_bytes(reset ? 1 : 0));
}
