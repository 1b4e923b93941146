/**
 * The device block cache (lib/backend/block_cache.ts) on its own: a fake release function
 * stands in for the driver, so these run without a GPU. The CUDA backend's use of it is tested
 * in tests/cuda_test.ts ("block cache").
 */
import assert from "node:assert/strict";
import { BlockCache } from "../lib/backend/block_cache.ts";

function cacheWithLog(limit: number): { cache: BlockCache; released: bigint[] } {
  const released: bigint[] = [];
  const cache = new BlockCache((address) => released.push(address));
  cache.limit = limit;
  return { cache, released };
}

Deno.test("BlockCache hands a block back only for its exact size, newest first", () => {
  const { cache, released } = cacheWithLog(1000);
  cache.give(100, 1n);
  cache.give(100, 2n);
  cache.give(40, 3n);
  assert.equal(cache.bytes, 240);
  assert.equal(cache.blocks, 3);
  assert.equal(cache.take(60), undefined);
  assert.equal(cache.take(100), 2n);
  assert.equal(cache.take(100), 1n);
  assert.equal(cache.take(100), undefined);
  assert.equal(cache.take(40), 3n);
  assert.equal(cache.bytes, 0);
  assert.equal(cache.blocks, 0);
  assert.deepEqual(released, []);
});

Deno.test("BlockCache releases the oldest sizes to stay under its limit", () => {
  const { cache, released } = cacheWithLog(300);
  cache.give(100, 1n);
  cache.give(100, 2n);
  cache.give(50, 3n);
  cache.give(120, 4n); // 370 > 300: the size-100 blocks (oldest) go
  assert.deepEqual(released, [1n, 2n]);
  assert.equal(cache.bytes, 170);
  assert.equal(cache.take(120), 4n);
  assert.equal(cache.take(50), 3n);
  // A block larger than the whole limit is released at once.
  cache.give(301, 5n);
  assert.deepEqual(released, [1n, 2n, 5n]);
  assert.equal(cache.bytes, 0);
});

Deno.test("BlockCache limit 0 keeps nothing; lowering the limit evicts; clear releases all", () => {
  const { cache, released } = cacheWithLog(0);
  cache.give(8, 1n);
  assert.deepEqual(released, [1n]);
  cache.limit = 100;
  cache.give(40, 2n);
  cache.give(40, 3n);
  cache.give(10, 4n);
  cache.limit = 20;
  assert.deepEqual(released, [1n, 2n, 3n]);
  assert.equal(cache.bytes, 10);
  assert.equal(cache.clear(), 10);
  assert.deepEqual(released, [1n, 2n, 3n, 4n]);
  assert.equal(cache.blocks, 0);
  assert.throws(() => (cache.limit = -1), /non-negative integer number of bytes, got -1/);
  assert.throws(() => (cache.limit = 1.5), RangeError);
});
