/**
 * The autograd engine's buffer ownership: gradients it allocated are recycled once consumed
 * and a leaf's first gradient is adopted instead of copied, without ever touching a tensor the
 * user can still see (forward outputs, the seed, an earlier `.grad`), and results stay exactly
 * those of plain allocation.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cpuBackend,
  POOL_LIMIT_BYTES,
  pooledMemoryBytes,
  pooledMemoryLimit,
  releasePooledMemory,
  setPooledMemoryLimit,
} from "../lib/backend/cpu.ts";
import { randn } from "../lib/creation.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { relu } from "../lib/ops/activation.ts";
import { add, mul } from "../lib/ops/elementwise.ts";
import { sum } from "../lib/ops/reduce.ts";
import { reshape } from "../lib/ops/shape.ts";
import { fromFloat32, gradSlot, type Tensor } from "../lib/tensor.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { withRecycling } from "./_recycling.ts";

function snapshot(t: Tensor): number[] {
  return Array.from(t.toArray());
}

Deno.test("recycled gradients never alias tensors the user still holds", () => {
  releasePooledMemory();
  const layer = new SparseLinear(40, 30, { sparsity: 0.7, seed: 3 });
  const norm = new LayerNorm(30);
  const x = randn([5, 40], { seed: 4, requiresGrad: true });
  const seed = randn([5, 30], { seed: 5 });
  const h = layer.forward(x);
  const y = relu(norm.forward(h));
  const [hSeen, ySeen, seedSeen] = [snapshot(h), snapshot(y), snapshot(seed)];
  y.backward(seed);
  const dx = snapshot(x.grad!);
  const dwFirst = layer.weights.grad!;
  const dw = snapshot(dwFirst);
  assert.ok(pooledMemoryBytes() > 0, "consumed gradients were recycled");
  // A second step reuses the recycled buffers; nothing seen above may change.
  const h2 = layer.forward(randn([5, 40], { seed: 6, requiresGrad: true }));
  relu(norm.forward(h2)).backward(randn([5, 30], { seed: 7 }));
  assert.deepEqual(snapshot(h), hSeen);
  assert.deepEqual(snapshot(y), ySeen);
  assert.deepEqual(snapshot(seed), seedSeen);
  assert.deepEqual(snapshot(x.grad!), dx);
  assert.deepEqual(snapshot(dwFirst), dw, "the first step's weight gradient tensor is unchanged");
  releasePooledMemory();
  assert.equal(pooledMemoryBytes(), 0);
});

Deno.test("adopted leaf gradients accumulate into a new tensor, leaving the old one as it was", () => {
  const w = randn([4, 3], { seed: 1, requiresGrad: true });
  const a = randn([4, 3], { seed: 2 });
  sum(mul(w, a)).backward();
  const first = w.grad!;
  const firstSeen = snapshot(first);
  assert.deepEqual(firstSeen, snapshot(a));
  sum(mul(w, a)).backward();
  assert.deepEqual(snapshot(first), firstSeen, "the first .grad tensor is unchanged");
  assert.deepEqual(snapshot(w.grad!), firstSeen.map((v) => 2 * v));
});

Deno.test("a gradient passed on as a view, or to two inputs, is not recycled early", () => {
  const x = randn([2, 6], { seed: 8, requiresGrad: true });
  // x reaches the sum twice (through a view and directly): its gradient is 1 + 3 = 4 per element.
  const y = add(
    reshape(x, [3, 4]),
    mul(reshape(x, [3, 4]), fromFloat32(new Float32Array(12).fill(3), [3, 4])),
  );
  sum(y).backward();
  assert.deepEqual(snapshot(x.grad!), new Array(12).fill(4));
  // The same tensor as both operands of one op.
  const z = randn([3], { seed: 9, requiresGrad: true });
  sum(mul(z, z)).backward();
  assert.deepEqual(snapshot(z.grad!), snapshot(z).map((v) => Math.fround(2 * v)));
});

Deno.test("results with recycling equal results with fresh buffers, step after step", () => {
  const run = (recycle: boolean): number[] =>
    withRecycling(recycle, () => {
      const layer = new SparseLinear(64, 48, { sparsity: 0.8, seed: 11 });
      const norm = new LayerNorm(48);
      const out: number[] = [];
      for (let step = 0; step < 4; step++) {
        const x = randn([9, 64], { seed: 20 + step, requiresGrad: true });
        const y = relu(norm.forward(layer.forward(x)));
        y.backward(randn([9, 48], { seed: 40 + step }));
        out.push(...snapshot(x.grad!), ...snapshot(layer.weights.grad!));
        layer.weights.grad = null;
        norm.weight!.grad = null;
        norm.bias!.grad = null;
        if (layer.bias) layer.bias.grad = null;
      }
      return out;
    });
  assert.deepEqual(run(true), run(false));
});

Deno.test("zeroGrad frees a gradient nothing outside the library has read, and only such", () => {
  releasePooledMemory();
  const layer = new SparseLinear(60, 50, { sparsity: 0.5, seed: 8 });
  const opt = new SGD(layer.parameters(), { lr: 0.1 });
  const step = (seed: number) => {
    opt.zeroGrad();
    sum(layer.forward(randn([3, 60], { seed }))).backward();
    opt.step();
  };
  step(9);
  const before = pooledMemoryBytes();
  opt.zeroGrad(); // the optimizer read the gradients through the library: still private
  const dwBytes = layer.weights.size * 4, dbBytes = layer.bias!.size * 4;
  assert.equal(pooledMemoryBytes() - before, dwBytes + dbBytes, "both gradients recycled");
  assert.equal(layer.weights.grad, null);

  // A gradient the user has read stays theirs: later steps reuse nothing of it.
  step(10);
  const seen = layer.weights.grad!;
  const seenValues = snapshot(seen);
  const mid = pooledMemoryBytes();
  opt.zeroGrad();
  assert.equal(pooledMemoryBytes() - mid, dbBytes, "only the unread bias gradient recycled");
  step(11);
  step(12);
  assert.deepEqual(snapshot(seen), seenValues, "the read gradient is unchanged");
  releasePooledMemory();
});

Deno.test("accumulating into a private gradient keeps no second buffer", () => {
  releasePooledMemory();
  const w = randn([64, 32], { seed: 1, requiresGrad: true });
  const a = randn([64, 32], { seed: 2 });
  sum(mul(w, a)).backward();
  const start = pooledMemoryBytes();
  sum(mul(w, a)).backward(); // the first .grad was never read: the new one is added into it
  assert.ok(pooledMemoryBytes() >= start + w.size * 4);
  assert.deepEqual(snapshot(w.grad!), snapshot(a).map((v) => 2 * v));
  releasePooledMemory();
});

Deno.test("a gradient nobody read accumulates in place; one the user read is never written", () => {
  const w = randn([6, 5], { seed: 1, requiresGrad: true });
  const a = randn([6, 5], { seed: 2 });
  sum(mul(w, a)).backward();
  const held = gradSlot.peek(w);
  sum(mul(w, a)).backward();
  assert.equal(gradSlot.peek(w), held, "the same tensor, added into");
  const seen = w.grad!; // now the user's
  const seenValues = snapshot(seen);
  assert.deepEqual(seenValues, snapshot(a).map((v) => 2 * v));
  sum(mul(w, a)).backward();
  assert.deepEqual(snapshot(seen), seenValues, "a gradient the user holds is not modified");
  assert.notEqual(w.grad, seen);
  // (a + a) + a in float32, as the three accumulations round.
  assert.deepEqual(snapshot(w.grad!), snapshot(a).map((v) => Math.fround(2 * v + v)));
});

Deno.test("the pool keeps at most its limit, newer lengths displacing older ones", () => {
  const saved = pooledMemoryLimit();
  // The default: a quarter of the machine's memory (this test runs with systemMemoryInfo).
  assert.equal(saved, Math.max(POOL_LIMIT_BYTES, Math.floor(Deno.systemMemoryInfo().total / 4)));
  releasePooledMemory();
  try {
    setPooledMemoryLimit(3 * 4000);
    const [a, b] = [cpuBackend.empty("float32", 1000), cpuBackend.empty("float32", 1000)];
    const c = cpuBackend.empty("float32", 2000);
    const cArray = c.host;
    cpuBackend.recycle(a);
    cpuBackend.recycle(b);
    assert.equal(pooledMemoryBytes(), 8000);
    cpuBackend.recycle(c); // 8000 + 8000 > 12000: the older length gives way
    assert.equal(pooledMemoryBytes(), 8000);
    assert.equal(cpuBackend.empty("float32", 2000).host, cArray, "the newer array is reused");
    assert.throws(() => a.host, /given back for reuse/);
    cpuBackend.recycle(cpuBackend.empty("float32", 500));
    setPooledMemoryLimit(0);
    assert.equal(pooledMemoryBytes(), 0);
    assert.throws(() => setPooledMemoryLimit(-1), RangeError);
    assert.throws(() => setPooledMemoryLimit(1.5), /whole number of bytes/);
    assert.throws(() => setPooledMemoryLimit("1" as unknown as number), TypeError);
  } finally {
    setPooledMemoryLimit(saved);
    releasePooledMemory();
  }
});

Deno.test("a fresh large CPU array is advised onto huge pages before its first write", async () => {
  // In a process of its own with --allow-all: /proc/self/smaps says which mappings were
  // advised ("hg" among their VmFlags), whatever the system's huge-page mode.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(import.meta.dirname!, "fixtures", "huge_page_advice.ts")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  assert.equal(out.code, 0, text.decode(out.stderr));
  const line = text.decode(out.stdout).trim();
  if (line === "no /proc" || line === "") {
    console.log("huge-page advice: no /proc/self/smaps flags on this system; not checked");
    return;
  }
  const { flags } = JSON.parse(line) as { flags: string[]; hugeKb: number };
  assert.ok(flags.includes("hg"), `the array's mapping has VmFlags ${flags.join(" ")}`);
});
