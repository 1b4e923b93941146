/**
 * Test helper: runs `fn` with the CPU backend's recycling on (as shipped) or off (every
 * `recycle` a no-op, i.e. plain allocation), starting and ending with an empty pool.
 */
import { cpuBackend, releasePooledMemory } from "../lib/backend/cpu.ts";

export function withRecycling<T>(on: boolean, fn: () => T): T {
  releasePooledMemory();
  const original = cpuBackend.recycle;
  if (!on) cpuBackend.recycle = () => {};
  try {
    return fn();
  } finally {
    cpuBackend.recycle = original;
    releasePooledMemory();
  }
}
