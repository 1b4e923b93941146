/**
 * Freed device blocks kept for reuse by allocations of the same size, so that the buffers of a
 * training step cost no native call after the first step.
 *
 * Device memory is already stream-ordered and pooled by the driver (`cudaMallocAsync`), but each
 * allocation and free is still a call through FFI into the driver, ~2 µs each on an H200 host: a
 * batch-1 SparseLinear training step makes eight allocations and four frees, a quarter of its
 * host time. Every kernel runs on one stream, so a block handed back here may be handed out
 * again at once: work queued later on the stream runs after the work that used it before.
 *
 * Blocks are matched by exact byte size (the sizes of a training loop repeat step after step);
 * the oldest sizes are released first when the cache would exceed its limit.
 * @module
 */

/** Default limit of the bytes a cache holds (per device). */
export const DEFAULT_BLOCK_CACHE_BYTES = 1024 * 1024 * 1024;

/** Device blocks of one device, by size. */
export class BlockCache {
  /** Free blocks by byte size, oldest size first (a Map keeps insertion order). */
  readonly #free = new Map<number, bigint[]>();
  #bytes = 0;
  #blocks = 0;
  #limit = DEFAULT_BLOCK_CACHE_BYTES;
  /** Frees a block for real (back to the driver's pool). */
  readonly #release: (address: bigint) => void;

  constructor(release: (address: bigint) => void) {
    this.#release = release;
  }

  /** Bytes held for reuse. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Blocks held for reuse. */
  get blocks(): number {
    return this.#blocks;
  }

  /** The most bytes held (0 turns caching off). */
  get limit(): number {
    return this.#limit;
  }

  /** Sets the limit, releasing the oldest sizes until the cache fits it. */
  set limit(bytes: number) {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(
        `The device block cache limit must be a non-negative integer number of bytes, got ${bytes}`,
      );
    }
    this.#limit = bytes;
    this.#evictFor(0);
  }

  /** A cached block of exactly `bytes`, or undefined. */
  take(bytes: number): bigint | undefined {
    const list = this.#free.get(bytes);
    const address = list?.pop();
    if (address === undefined) return undefined;
    if (list!.length === 0) this.#free.delete(bytes);
    this.#bytes -= bytes;
    this.#blocks--;
    return address;
  }

  /** Keeps a block for reuse, or releases it when it cannot fit under the limit. */
  give(bytes: number, address: bigint): void {
    if (bytes > this.#limit) {
      this.#release(address);
      return;
    }
    this.#evictFor(bytes);
    let list = this.#free.get(bytes);
    if (list === undefined) {
      list = [];
      this.#free.set(bytes, list);
    }
    list.push(address);
    this.#bytes += bytes;
    this.#blocks++;
  }

  /** Releases every cached block; returns the bytes released. */
  clear(): number {
    const released = this.#bytes;
    for (const list of this.#free.values()) for (const address of list) this.#release(address);
    this.#free.clear();
    this.#bytes = 0;
    this.#blocks = 0;
    return released;
  }

  /** Releases the oldest sizes until `incoming` more bytes fit under the limit. */
  #evictFor(incoming: number): void {
    for (const [size, list] of this.#free) {
      if (this.#bytes + incoming <= this.#limit) return;
      for (const address of list) this.#release(address);
      this.#bytes -= size * list.length;
      this.#blocks -= list.length;
      this.#free.delete(size);
    }
  }
}
