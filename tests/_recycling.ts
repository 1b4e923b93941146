/**
 * Test helper: runs `fn` with the CPU backend's recycling on (as shipped) or off (every
 * `recycle` a no-op, i.e. plain allocation), starting and ending with an empty pool.
 */
import { cpuBackend, pooledMemoryBytes, releasePooledMemory } from "../lib/backend/cpu.ts";

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

/**
 * Test helper: the lengths of the fresh float arrays (an allocation the CPU pool did not serve:
 * first-touch page faults) made by `steps` calls of `step`, counted from call `warmUp` on
 * (after earlier calls filled the pool). Starts and ends with an empty pool.
 */
export function freshAllocations(
  steps: number,
  warmUp: number,
  step: (s: number) => void,
): number[] {
  const fresh: number[] = [];
  const backend = cpuBackend as unknown as Record<string, (...a: unknown[]) => unknown>;
  const originals = { zeros: backend.zeros, empty: backend.empty };
  let counting = false;
  for (const name of ["zeros", "empty"] as const) {
    const original = originals[name].bind(backend);
    backend[name] = (dtype: unknown, length: unknown) => {
      const before = pooledMemoryBytes();
      const storage = original(dtype, length);
      if (counting && pooledMemoryBytes() === before) fresh.push(length as number);
      return storage;
    };
  }
  try {
    releasePooledMemory();
    for (let s = 0; s < steps; s++) {
      counting = s >= warmUp;
      step(s);
    }
  } finally {
    backend.zeros = originals.zeros;
    backend.empty = originals.empty;
    releasePooledMemory();
  }
  return fresh;
}
