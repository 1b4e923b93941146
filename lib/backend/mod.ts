/**
 * Device registry: maps a device name to its backend. The CUDA backend (lib/backend/cuda.ts)
 * is registered here; it loads its library only when device "cuda" is first used.
 * @module
 */
import type { Backend, Device } from "./backend.ts";
import { cpuBackend } from "./cpu.ts";
import { cudaBackend } from "./cuda.ts";

const backends = new Map<Device, () => Backend>([["cpu", () => cpuBackend]]);

/** Registers the factory of a device's backend (called once by each backend module). */
export function registerBackend(device: Device, factory: () => Backend): void {
  backends.set(device, factory);
}

// The CUDA backend loads its library on first use: importing it costs nothing, and asking for
// device "cuda" without the library or a GPU throws a LibraryError saying which.
registerBackend("cuda", cudaBackend);

/** Checks that `device` names a known device, with a clear error otherwise. */
export function checkDevice(device: unknown): Device {
  if (device !== "cpu" && device !== "cuda") {
    throw new TypeError(`Unknown device ${JSON.stringify(device)}: expected "cpu" or "cuda"`);
  }
  return device;
}

/** The backend of a device; throws a clear error when the device is unavailable. */
export function getBackend(device: Device): Backend {
  const factory = backends.get(checkDevice(device));
  if (factory === undefined) {
    throw new Error(
      `Device "${device}" is not available: the CUDA backend is not loaded in this build`,
    );
  }
  return factory();
}
