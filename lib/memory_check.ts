/**
 * How much memory this process may still allocate (MemAvailable, lowered by the tightest
 * cgroup limit that applies), and the check that refuses, before allocating, a request that
 * exceeds it: a clear RangeError naming both numbers instead of an out-of-memory kill. The
 * SparseLinear constructor checks its construction peak (lib/nn/memory.ts); the CPU backend,
 * the dense creators, the CSC view and prune-and-grow updates check their large allocations.
 * @module
 */
import { describeValue } from "./errors.ts";
import { numberOption } from "./options.ts";

/** Memory the process may still allocate, and where the number comes from. */
export interface AvailableMemory {
  /** Bytes. */
  bytes: number;
  /**
   * "MemAvailable, from Deno.systemMemoryInfo()", "MemAvailable in /proc/meminfo" or "room left
   * under this process's cgroup memory limit".
   */
  source: string;
}

function canRead(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

function readText(path: string): string | null {
  if (!canRead(path)) return null;
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

function statField(text: string | null, field: string): number | null {
  if (text === null) return null;
  const m = text.match(new RegExp(`^${field}\\s+(\\d+)`, "m"));
  return m === null ? null : Number(m[1]);
}

/** A cgroup hierarchy: where it is mounted and its files' names (v2, v1). */
const CGROUP_LAYOUTS = [
  { line: /^0::(\/.*)$/m, root: "/sys/fs/cgroup", max: "memory.max", current: "memory.current" },
  {
    line: /^\d+:(?:[^:\n]*,)?memory(?:,[^:\n]*)?:(\/.*)$/m,
    root: "/sys/fs/cgroup/memory",
    max: "memory.limit_in_bytes",
    current: "memory.usage_in_bytes",
  },
] as const;

/**
 * Room left under the tightest cgroup memory limit that applies to this process (v2, else
 * v1), counting reclaimable page cache as free: the limits of its own cgroup (from
 * `/proc/self/cgroup`) and of every ancestor up to the mount root, where a job's limit usually
 * sits (systemd services, batch schedulers, containers). `read` returns a file's text or null;
 * Deno 2 lets a process read `/proc/self` and `/sys` only with `--allow-all`, so without it no
 * limit is seen (`availableMemory` then reports MemAvailable alone).
 */
export function cgroupRoom(read: (path: string) => string | null): number | null {
  const own = read("/proc/self/cgroup");
  for (const layout of CGROUP_LAYOUTS) {
    if (read(`${layout.root}/${layout.max}`) === null && own === null) continue;
    const path = own?.match(layout.line)?.[1] ?? "/";
    let room: number | null = null;
    let found = false;
    for (let dir = path.replace(/\/+$/, "");; dir = dir.slice(0, dir.lastIndexOf("/"))) {
      const base = `${layout.root}${dir}`;
      const max = read(`${base}/${layout.max}`)?.trim();
      if (max !== undefined) {
        found = true;
        const limit = Number(max);
        const current = Number(read(`${base}/${layout.current}`)?.trim() ?? NaN);
        // "max" (v2) or a near-2^63 value (v1) means no limit at this level.
        if (Number.isFinite(limit) && limit < 2 ** 60 && Number.isFinite(current)) {
          const stat = read(`${base}/memory.stat`);
          const inactiveFile = statField(stat, "inactive_file") ??
            statField(stat, "total_inactive_file") ?? 0;
          const here = Math.max(0, limit - current + inactiveFile);
          room = room === null ? here : Math.min(room, here);
        }
      }
      if (dir === "") break;
    }
    if (found) return room;
  }
  return null;
}

function systemMemoryAvailable(): number | null {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" }).state !== "granted") {
      return null;
    }
    const available = Deno.systemMemoryInfo().available;
    return available > 0 ? available : null;
  } catch {
    return null;
  }
}

/**
 * The memory this process can still allocate without swapping: the kernel's MemAvailable
 * (through `Deno.systemMemoryInfo()`, which needs `--allow-sys=systemMemoryInfo`, or
 * /proc/meminfo, which Deno only lets `--allow-all` read), or less when a readable cgroup limit
 * leaves less room. Null when neither can be read (no permission, or not Linux): callers then
 * skip their check.
 */
export function availableMemory(): AvailableMemory | null {
  let best: AvailableMemory | null = null;
  const system = systemMemoryAvailable();
  if (system !== null) {
    best = { bytes: system, source: "MemAvailable, from Deno.systemMemoryInfo()" };
  } else if (Deno.build.os === "linux") {
    const kib = statField(readText("/proc/meminfo"), "MemAvailable:");
    if (kib !== null) best = { bytes: kib * 1024, source: "MemAvailable in /proc/meminfo" };
  }
  if (best === null) return null;
  const cgroup = Deno.build.os === "linux" ? cgroupRoom(readText) : null;
  return cgroup !== null && cgroup < best.bytes
    ? { bytes: cgroup, source: "room left under this process's cgroup memory limit" }
    : best;
}

/** Bytes in binary units with three significant digits, e.g. "7.28 TiB", "160 MiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${+v.toPrecision(3)} ${units[u]}`;
}

let memoryCheckEnabled = true;

/**
 * Turns the pre-allocation memory check of `checkMemoryFits` (and so of the SparseLinear
 * constructor) on or off, e.g. to rely on swap or overcommit on purpose. Returns the previous
 * setting.
 */
export function setMemoryCheck(enabled: boolean): boolean {
  if (typeof enabled !== "boolean") {
    throw new TypeError(`setMemoryCheck() takes a boolean, got ${describeValue(enabled)}`);
  }
  const previous = memoryCheckEnabled;
  memoryCheckEnabled = enabled;
  return previous;
}

/** Estimates below this are not checked (nothing to gain from reading /proc for them). */
export const MEMORY_CHECK_THRESHOLD_BYTES: number = 64 * 2 ** 20;

/**
 * Throws a RangeError when `bytes` exceed the memory available, before anything is allocated.
 * `what` names the request and `detail` how the estimate was made, for the message.
 * `available` defaults to `availableMemory()`; when it is null (unknown), or the check is off
 * (`setMemoryCheck(false)`), or `bytes` is below 64 MiB, nothing is checked. `advice` says
 * what to change.
 */
export function checkMemoryFits(
  bytes: number,
  what: string,
  detail = "",
  available?: AvailableMemory | null,
  advice = "Raise the sparsity or narrow the layer",
): void {
  numberOption(bytes, "checkMemoryFits() bytes");
  if (!memoryCheckEnabled || !(bytes >= MEMORY_CHECK_THRESHOLD_BYTES)) return;
  const room = available === undefined ? availableMemory() : available;
  if (room === null || bytes <= room.bytes) return;
  throw new RangeError(
    `${what} needs about ${formatBytes(bytes)}${detail ? ` (${detail})` : ""}, but only ` +
      `${formatBytes(room.bytes)} is available (${room.source}); nothing was allocated. ` +
      `${advice}, or call setMemoryCheck(false) to try anyway`,
  );
}

/**
 * `checkMemoryFits` for the library's own allocations after a layer was built (buffers,
 * dense tensors, the CSC view, prune-and-grow updates): against `availableMemory()`, with
 * `advice` saying what to change.
 */
export function checkAllocation(bytes: number, what: string, advice: string, detail = ""): void {
  checkMemoryFits(bytes, what, detail, undefined, advice);
}

/** The largest native kernel scratch block checked so far (see `checkKernelScratch`). */
let largestScratchChecked = 0;

/** Scratch the native kernels keep mapped between calls, at most (csrc/cpu/scratch.c). */
const KEPT_SCRATCH_BYTES = 256 * 2 ** 20;

/**
 * Checks the scratch block a native CPU kernel is about to map (its feature-major panels,
 * csrc/cpu/scratch.c) against the memory available. The kernels keep blocks of up to 256 MiB
 * for the next call, so below that only a request larger than every earlier one can map new
 * memory: smaller ones are not checked again (`what`, naming the call for the message, is
 * only built when checking); a larger block is mapped anew at every call, and checked at each.
 * Without this, the first batched backward of a layer that fit could map
 * several hundred MB and be killed by the kernel's OOM killer instead of refused.
 */
export function checkKernelScratch(bytes: number, what: () => string): void {
  if (bytes <= largestScratchChecked) return; // every call of a training loop after its first
  checkAllocation(
    bytes,
    `The kernel scratch of ${what()}`,
    "Use a smaller batch (the panels hold up to 64 samples per feature), or narrow the layer",
  );
  if (bytes <= KEPT_SCRATCH_BYTES) largestScratchChecked = bytes;
}
