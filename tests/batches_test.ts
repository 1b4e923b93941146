// Mini-batches: every example exactly once per epoch, seeded shuffling (same seed, same
// orders; new order each epoch), dropLast, float targets, buffer reuse, argument errors.
import assert from "node:assert/strict";
import { batches } from "../lib/data/batches.ts";
import { relu } from "../lib/ops/activation.ts";
import { matmul } from "../lib/ops/matmul.ts";
import { view } from "../lib/ops/shape.ts";
import { fromFloat32, type Tensor } from "../lib/tensor.ts";

/** n examples of width 3 whose values encode their index: x[i] = [i, i + 0.25, i + 0.5]. */
function dataset(n: number): { x: Tensor; y: Int32Array } {
  const x = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) x.set([i, i + 0.25, i + 0.5], i * 3);
  return { x: fromFloat32(x, [n, 3]), y: Int32Array.from({ length: n }, (_, i) => i * 10) };
}

function epoch(loader: Iterable<{ x: Tensor; y: Int32Array; size: number }>): number[][] {
  const out: number[][] = [];
  for (const { x, y, size } of loader) {
    const ids: number[] = [];
    for (let k = 0; k < size; k++) {
      const id = x.data[k * 3];
      assert.deepEqual(Array.from(x.data.subarray(k * 3, k * 3 + 3)), [id, id + 0.25, id + 0.5]);
      assert.equal(y[k], id * 10, "label travels with its example");
      ids.push(id);
    }
    out.push(ids);
  }
  return out;
}

Deno.test("without shuffling, batches follow the data order; the last one is short", () => {
  const { x, y } = dataset(10);
  const loader = batches(x, y, { batchSize: 4 });
  assert.equal(loader.length, 3);
  const shapes: number[][] = [];
  for (const b of loader) shapes.push([...b.x.shape, b.y.length, b.index]);
  assert.deepEqual(shapes, [[4, 3, 4, 0], [4, 3, 4, 1], [2, 3, 2, 2]]);
  assert.deepEqual(epoch(loader), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
});

Deno.test("dropLast skips the short batch", () => {
  const { x, y } = dataset(10);
  const loader = batches(x, y, { batchSize: 4, dropLast: true, shuffle: true, seed: 3 });
  assert.equal(loader.length, 2);
  const ids = epoch(loader);
  assert.deepEqual(ids.map((b) => b.length), [4, 4]);
  assert.equal(new Set(ids.flat()).size, 8);
  assert.equal(batches(x, y, { batchSize: 20, dropLast: true }).length, 0);
  assert.equal(batches(x, y, { batchSize: 20 }).length, 1);
});

Deno.test("shuffling visits every example once per epoch, in a new order each epoch", () => {
  const { x, y } = dataset(50);
  const loader = batches(x, y, { batchSize: 8, shuffle: true, seed: 42 });
  const first = epoch(loader).flat();
  const second = epoch(loader).flat();
  assert.deepEqual([...first].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([...second].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual(first, second);
  assert.notDeepEqual(first, Array.from({ length: 50 }, (_, i) => i));
  // Same seed, same sequence of orders; another seed, another order.
  const again = batches(x, y, { batchSize: 8, shuffle: true, seed: 42 });
  assert.deepEqual(epoch(again).flat(), first);
  assert.deepEqual(epoch(again).flat(), second);
  const other = batches(x, y, { batchSize: 8, shuffle: true, seed: 43 });
  assert.notDeepEqual(epoch(other).flat(), first);
});

Deno.test("buffers are reused across batches unless reuseBuffers is false", () => {
  const { x, y } = dataset(9);
  const memory: ArrayBufferLike[] = [];
  for (const b of batches(x, y, { batchSize: 3 })) memory.push(b.x.data.buffer);
  assert.equal(memory[0], memory[1], "one buffer for equal-size batches");
  assert.equal(memory[1], memory[2]);
  assert.notEqual(memory[0], x.data.buffer, "never aliases the data set");
  const fresh = [...batches(x, y, { batchSize: 3, reuseBuffers: false })];
  assert.notEqual(fresh[0].x.storage, fresh[1].x.storage);
  assert.deepEqual(Array.from(fresh[0].x.data), [0, 0.25, 0.5, 1, 1.25, 1.5, 2, 2.25, 2.5]);
  assert.deepEqual(Array.from(fresh[2].y), [60, 70, 80]);
});

const OVERWRITTEN = /overwritten by a later batch[\s\S]*reuseBuffers: false/;

Deno.test("a kept batch's tensors throw once a later batch overwrote them (reuseBuffers)", () => {
  const { x, y } = dataset(10);
  const kept = [...batches(x, y, { batchSize: 4 })]; // sizes 4, 4, 2
  for (
    const read of [
      () => kept[0].x.toArray(),
      () => kept[0].x.data,
      () => kept[0].x.item(),
      () => relu(kept[0].x),
      () => view(kept[0].x, [12]).toArray(),
      () => matmul(kept[0].x, fromFloat32(new Float32Array(3), [3, 1])),
    ]
  ) assert.throws(read, OVERWRITTEN);
  // The last batch of each size was overwritten by nothing: still readable, and right.
  assert.deepEqual(Array.from(kept[1].x.data.subarray(0, 3)), [4, 4.25, 4.5]);
  assert.deepEqual(Array.from(kept[2].x.toArray()), [8, 8.25, 8.5, 9, 9.25, 9.5]);
  assert.deepEqual(kept[0].x.shape, [4, 3], "the shape stays readable");
  // Labels are fresh arrays: all kept batches keep their own.
  assert.deepEqual(kept.map((b) => Array.from(b.y)), [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]);
  // Tensor targets are overwritten like x.
  const targets = fromFloat32(Float32Array.from({ length: 10 }, (_, i) => -i), [10, 1]);
  const keptT = [...batches(x, targets, { batchSize: 4 })];
  assert.throws(() => keptT[0].y.toArray(), OVERWRITTEN);
  assert.deepEqual(Array.from(keptT[1].y.toArray()), [-4, -5, -6, -7]);
  // The next epoch overwrites the previous epoch's last batches too.
  const loader = batches(x, y, { batchSize: 5 });
  const last = [...loader][1];
  assert.deepEqual(Array.from(last.x.data.subarray(0, 1)), [5]);
  for (const _ of loader) break;
  assert.throws(() => last.x.data, OVERWRITTEN);
});

Deno.test("with reuseBuffers: false every kept batch is intact; the normal loop is unchanged", () => {
  const { x, y } = dataset(10);
  const targets = fromFloat32(Float32Array.from({ length: 10 }, (_, i) => -i), [10, 1]);
  const kept = [...batches(x, y, { batchSize: 4, reuseBuffers: false })];
  assert.deepEqual(kept.map((b) => Array.from(b.x.toArray().filter((_, i) => i % 3 === 0))), [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ]);
  assert.deepEqual(kept.map((b) => Array.from(b.y)), [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]);
  const keptT = [...batches(x, targets, { batchSize: 4, reuseBuffers: false })];
  assert.deepEqual(keptT.map((b) => b.x.data[0]), [0, 4, 8]);
  assert.deepEqual(keptT.map((b) => Array.from(b.y.toArray())), [
    [-0, -1, -2, -3],
    [-4, -5, -6, -7],
    [-8, -9],
  ]);
  // Read before the next batch, reused buffers give the same values as fresh ones.
  for (const shuffle of [false, true]) {
    const options = { batchSize: 4, shuffle, seed: 7 };
    assert.deepEqual(
      epoch(batches(x, y, options)),
      epoch(batches(x, y, { ...options, reuseBuffers: false })),
    );
  }
});

Deno.test("tensor targets and N-d examples keep their shapes", () => {
  const n = 5;
  const x = fromFloat32(Float32Array.from({ length: n * 2 * 2 }, (_, i) => i), [n, 2, 2]);
  const targets = fromFloat32(Float32Array.from({ length: n * 2 }, (_, i) => -i), [n, 2]);
  const loader = batches(x, targets, { batchSize: 2, shuffle: true, seed: 1 });
  let seen = 0;
  for (const b of loader) {
    assert.deepEqual(b.x.shape, [b.size, 2, 2]);
    assert.deepEqual(b.y.shape, [b.size, 2]);
    for (let k = 0; k < b.size; k++) {
      const id = b.x.data[k * 4] / 4;
      assert.deepEqual(Array.from(b.y.data.subarray(k * 2, k * 2 + 2)), [-2 * id, -2 * id - 1]);
    }
    seen += b.size;
  }
  assert.equal(seen, n);
  // A flat Float32Array is split evenly by the number of labels.
  const flat = batches(new Float32Array(12), new Int32Array(4), { batchSize: 3 });
  assert.deepEqual([...flat].map((b) => b.x.shape), [[3, 3], [1, 3]]);
});

Deno.test("bad arguments are clear errors", () => {
  const { x, y } = dataset(4);
  assert.throws(() => batches(x, y, { batchSize: 0 }), /batchSize must be a positive integer/);
  assert.throws(() => batches(x, y, { batchSize: 1.5 }), RangeError);
  assert.throws(
    () => batches(x, new Int32Array(3), { batchSize: 2 }),
    /x holds 4 examples \(shape \[4, 3\]\) but y holds 3/,
  );
  assert.throws(
    () => batches(new Float32Array(10), new Int32Array(4), { batchSize: 2 }),
    /x has 10 values, which do not split evenly into 4 examples/,
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => batches(x, [1, 2, 3, 4] as any, { batchSize: 2 }),
    /y must be an Int32Array of labels or a Tensor of targets/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => batches(x, y, { batchSize: 2, device: "tpu" as any }), /Unknown device/);
});
