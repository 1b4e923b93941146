/**
 * Behaviours of the layer's internals that no other test pinned down, found by mutation testing
 * (bench/RESULTS.md, "Mutation testing"): which native path a SparseLinear takes and what it
 * builds, the memory model's thresholds, the CPU buffer pool and the device block cache, the
 * library loader, state-dict conversion, and the training-state and CLI helpers of examples/.
 * Each test names the planted bug it catches.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BlockCache } from "../lib/backend/block_cache.ts";
import {
  cpuBackend,
  HostStorage,
  pooledMemoryBytes,
  pooledMemoryLimit,
  releasePooledMemory,
  setPooledMemoryLimit,
} from "../lib/backend/cpu.ts";
import { randn } from "../lib/creation.ts";
import { ShapeError } from "../lib/errors.ts";
import { sparseKernelScratch } from "../lib/nn/memory.ts";
import { collapsedGroupSumPays } from "../lib/nn/sparse_group_sum.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { sparseLinear } from "../lib/nn/sparse_ops.ts";
import { transpose } from "../lib/ops/shape.ts";
import { fromFloat32 } from "../lib/tensor.ts";
import { safetensorsToStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { applyOpenMpWaitDefault, getNumThreads, setNumThreads } from "../ffi/library.ts";
import { readTrainState, restoreTrainState, trainStatePath } from "../examples/checkpoint.ts";
import { decimalNumber, intFlag, joinNegativeValues } from "../examples/cli.ts";
import { Linear } from "../lib/nn/linear.ts";
import { SGD } from "../lib/optim/sgd.ts";

// ---------------------------------------------------------------- sparse_linear / sparse_ops
Deno.test("forwardGroupSum: a 3-D input's batch is the product of its leading dims (SL4)", () => {
  const layer = new SparseLinear(20, 400, { sparsity: 0.5, seed: 1 }); // 10·20·2 = 400 ≤ 4000
  assert.ok(collapsedGroupSumPays(layer.pattern, 10, 4));
  const x = randn([1, 4, 20], { seed: 2, requiresGrad: true });
  layer.forwardGroupSum(x, 10).backward(randn([1, 4, 10], { seed: 3 }));
  assert.equal(layer.pattern.hasCscView, false, "batch 4: the collapsed path builds no CSC view");
});

Deno.test("forwardGroupSum takes the plain path where collapsing does not pay (SL5, SG3)", () => {
  // size·in·2 = 2·10·20·... : 10·20·2 = 400 > nnz 300 ≥ 10·20 = 200.
  const layer = new SparseLinear(20, 100, { sparsity: 0.85, seed: 1 });
  assert.equal(layer.nnz, 300);
  assert.equal(collapsedGroupSumPays(layer.pattern, 10, 4), false);
  const x = randn([4, 20], { seed: 2, requiresGrad: true });
  layer.forwardGroupSum(x, 10).backward(randn([4, 10], { seed: 3 }));
  assert.equal(layer.pattern.hasCscView, true, "the plain batched backward reads the CSC view");
});

Deno.test("collapsedGroupSumPays at size·in = nnz / 2 exactly (SG2)", () => {
  const layer = new SparseLinear(20, 100, { sparsity: 0.8, seed: 1 }); // nnz 400 = 2·10·20
  assert.equal(layer.nnz, 400);
  assert.equal(collapsedGroupSumPays(layer.pattern, 10, 2), true);
});

Deno.test("setPattern rejects oldIndexOf = old nnz (SL17)", () => {
  const layer = new SparseLinear(4, 3, { sparsity: 0.5, seed: 1 });
  const n = layer.nnz;
  const idx = layer.indices.data;
  const rows = idx.slice(0, n), cols = idx.slice(n);
  const old = new Int32Array(n).map((_, k) => k);
  old[0] = n;
  assert.throws(() => layer.setPattern(rows, cols, new Float32Array(n), old), RangeError);
});

Deno.test("batched input gradient with frozen weights (SO6)", () => {
  const layer = new SparseLinear(30, 20, { sparsity: 0.7, seed: 1 });
  const dy = randn([4, 20], { seed: 3 });
  const x1 = randn([4, 30], { seed: 2, requiresGrad: true });
  layer.forward(x1).backward(dy);
  const want = x1.grad!.toArray();
  layer.weights.requiresGrad = false;
  const x2 = randn([4, 30], { seed: 2, requiresGrad: true });
  layer.forward(x2).backward(dy);
  x2.grad!.toArray().forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
});

Deno.test("forwardFeatureMajor on data (no input gradient) still gives dW (SO9)", () => {
  const layer = new SparseLinear(30, 20, { sparsity: 0.7, seed: 1 });
  const x = randn([4, 30], { seed: 2 });
  layer.forward(x).backward(randn([4, 20], { seed: 3 }));
  const want = layer.weights.grad!.toArray();
  layer.zeroGrad();
  layer.forwardFeatureMajor(transpose(x)).backward(transpose(randn([4, 20], { seed: 3 })));
  const got = layer.weights.grad;
  assert.ok(got !== null, "weights.grad after a feature-major backward on data");
  got.toArray().forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-5));
});

Deno.test("forwardFeatureMajor at batch 1 builds no CSC view (SO8)", () => {
  const layer = new SparseLinear(30, 20, { sparsity: 0.7, seed: 1 });
  const xT = randn([30, 1], { seed: 2, requiresGrad: true });
  layer.forwardFeatureMajor(xT).backward(randn([20, 1], { seed: 3 }));
  assert.equal(layer.pattern.hasCscView, false);
});

Deno.test("forwardFeatureMajor of a RigL layer records the batch for its update (SL2)", () => {
  const make = () =>
    new SparseLinear(30, 20, { sparsity: 0.8, seed: 19, dynamic: true, deltaT: 1, tEnd: 10 });
  const run = (fm: boolean) => {
    const layer = make();
    for (let s = 0; s < 2; s++) {
      const x = randn([6, 30], { seed: 20 + s });
      const dy = randn([6, 20], { seed: 40 + s });
      if (fm) layer.forwardFeatureMajor(transpose(x)).backward(transpose(dy));
      else layer.forward(x).backward(dy);
      layer.dynamicSparsity!.step();
    }
    return Array.from(layer.indices.data);
  };
  assert.deepEqual(run(true), run(false));
});

Deno.test("sparseLinear rejects a bias of the wrong size (SO11)", () => {
  const layer = new SparseLinear(30, 20, { sparsity: 0.7, seed: 1 });
  const bias = fromFloat32(new Float32Array(19), [19]);
  assert.throws(
    () => sparseLinear(randn([2, 30], { seed: 1 }), layer.weights, bias, layer.pattern),
    ShapeError,
  );
});

// ---------------------------------------------------------------- memory model
Deno.test("sparseKernelScratch boundaries match csrc/cpu/spmm.c (ME4, ME5, ME6, ME8, ME13)", () => {
  // VALUES_IN_CACHE: values are gathered only when 4·nnz > 2^20 (spmm.c:438 uses >).
  const s = { inFeatures: 1000, outFeatures: 1000, nnz: 2 ** 18 };
  assert.equal(sparseKernelScratch("input gradient (CSC view)", s, 2), 4 * 8 * 1000);
  // Batch 1 through the CSC view: 4·in (documented), not 4·out.
  assert.equal(
    sparseKernelScratch(
      "input gradient (CSC view)",
      { inFeatures: 10, outFeatures: 50, nnz: 9 },
      1,
    ),
    40,
  );
  // choose_parts: serial only below 2^17 units (work = nnz + out at batch 1).
  const b1 = { inFeatures: 10, outFeatures: 2 ** 16, nnz: 2 ** 16 };
  assert.equal(sparseKernelScratch("input gradient (CSR pattern)", b1, 1, 4), 4 * 4 * 10);
  // parts = floor(work / 8192): 2^17 + 1 units → 16 parts, not 17.
  const b1b = { inFeatures: 10, outFeatures: 2 ** 16, nnz: 2 ** 16 + 1 };
  assert.equal(sparseKernelScratch("input gradient (CSR pattern)", b1b, 1, 64), 4 * 16 * 10);
  // Batched: serial only below 2^19 = (nnz + in + out) · W.
  const bb = { inFeatures: 1000, outFeatures: 1000, nnz: 2 ** 16 - 2000 };
  assert.equal(
    sparseKernelScratch("input gradient (CSR pattern)", bb, 2, 4),
    4 * 8 * 2000 + 4 * 1000 * 5,
  );
});

// ---------------------------------------------------------------- CPU buffer pool
function withPool(limit: number, fn: () => void) {
  const before = pooledMemoryLimit();
  releasePooledMemory();
  setPooledMemoryLimit(limit);
  try {
    fn();
  } finally {
    releasePooledMemory();
    setPooledMemoryLimit(before);
  }
}
/** Recycles fresh arrays of these lengths (all allocated first, so none reuses another). */
const give = (...lengths: number[]) => {
  const all = lengths.map((n) => new HostStorage(new Float32Array(n).fill(7)));
  all.forEach((s) => cpuBackend.recycle(s));
};

Deno.test("pool: zeros() after reuse is zero (CP3)", () => {
  withPool(1 << 20, () => {
    give(1000);
    const z = cpuBackend.zeros("float32", 1000) as HostStorage;
    assert.ok(z.host.every((v) => v === 0));
  });
});

Deno.test("pool: int32 zeros never take a pooled float32 array (CP9)", () => {
  withPool(1 << 20, () => {
    give(1000);
    assert.equal(cpuBackend.zeros("int32", 1000).dtype, "int32");
  });
});

Deno.test("pool: exactly at the limit still fits (CP1, CP5)", () => {
  withPool(8000, () => {
    give(1000, 1000); // two arrays of the same length: exactly the limit
    assert.equal(pooledMemoryBytes(), 8000);
  });
  withPool(8000, () => {
    give(1000, 999, 1); // 4000 + 3996 + 4: exactly 8000
    assert.equal(pooledMemoryBytes(), 8000);
  });
});

Deno.test("pool: a full pool does not evict the incoming length itself (CP2)", () => {
  withPool(8000, () => {
    give(1000, 1000, 1000); // the third does not fit; the two kept stay
    assert.equal(pooledMemoryBytes(), 8000);
  });
});

Deno.test("pool: subarray views are not pooled (CP4)", () => {
  withPool(1 << 20, () => {
    const buf = new Float32Array(2000);
    cpuBackend.recycle(new HostStorage(buf.subarray(0, 1000)));
    assert.equal(pooledMemoryBytes(), 0);
  });
});

Deno.test("pool: a length taken out and given back is the newest again (CP6)", () => {
  withPool(11000, () => {
    const a = cpuBackend.empty("float32", 1000) as HostStorage;
    const arrA = a.host;
    cpuBackend.recycle(a); // A
    give(999); // B
    const a2 = cpuBackend.empty("float32", 1000) as HostStorage; // takes A
    assert.equal(a2.host, arrA);
    cpuBackend.recycle(a2); // A again: newest
    give(1001); // C does not fit: the oldest length, B, must go
    const a3 = cpuBackend.empty("float32", 1000) as HostStorage;
    assert.equal(a3.host, arrA, "A was evicted instead of the older B");
  });
});

// ---------------------------------------------------------------- device block cache
Deno.test("BlockCache: a block of exactly the limit is cached; the limit can be filled (BC1, BC2)", () => {
  const released: bigint[] = [];
  const c = new BlockCache((a) => released.push(a));
  c.limit = 200;
  c.give(200, 1n);
  assert.equal(c.blocks, 1);
  c.take(200);
  c.give(100, 2n);
  c.give(100, 3n);
  assert.deepEqual([c.blocks, c.bytes, released.length], [2, 200, 0]);
});

Deno.test("BlockCache: a size emptied by take and given again is the newest (BC3)", () => {
  const released: bigint[] = [];
  const c = new BlockCache((a) => released.push(a));
  c.limit = 299;
  c.give(100, 1n); // size 100
  c.give(101, 2n); // size 101
  assert.equal(c.take(100), 1n);
  c.give(100, 3n); // size 100 again, newest
  c.give(99, 4n); // 300 > 299: the oldest size (101) goes
  assert.deepEqual(released, [2n]);
});

// ---------------------------------------------------------------- ffi
Deno.test("setNumThreads accepts MAX_THREADS (4096) itself (FF4)", () => {
  const before = getNumThreads();
  try {
    setNumThreads(4096);
    assert.equal(getNumThreads(), 4096);
  } finally {
    setNumThreads(before);
  }
});

Deno.test("applyOpenMpWaitDefault leaves a user's OMP_WAIT_POLICY alone (FF14)", () => {
  const saved = [Deno.env.get("OMP_WAIT_POLICY"), Deno.env.get("GOMP_SPINCOUNT")];
  try {
    Deno.env.set("OMP_WAIT_POLICY", "active");
    Deno.env.delete("GOMP_SPINCOUNT");
    applyOpenMpWaitDefault();
    assert.equal(Deno.env.get("GOMP_SPINCOUNT"), undefined);
  } finally {
    const names = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];
    names.forEach((n, i) =>
      saved[i] === undefined ? Deno.env.delete(n) : Deno.env.set(n, saved[i]!)
    );
  }
});

// ---------------------------------------------------------------- state dict io
Deno.test("safetensorsToStateDict: BF16 not in `like` is a float Tensor (SD2)", () => {
  const s = safetensorsToStateDict({
    x: { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0x4000]) },
  });
  assert.deepEqual(Array.from((s.x as { toArray(): Float32Array }).toArray()), [1, 2]);
});

Deno.test("safetensorsToStateDict: a known entry that cannot convert is an error even non-strict; unknown ones by default (SD3, SD4)", () => {
  const f64 = { dtype: "F64" as const, shape: [2], data: new Float64Array([1, 2]) };
  const like = { w: fromFloat32(new Float32Array(2), [2]) };
  assert.throws(() => safetensorsToStateDict({ w: f64 }, like, { strict: false }));
  assert.throws(() => safetensorsToStateDict({ other: f64 }, like));
});

// ---------------------------------------------------------------- examples/checkpoint.ts
Deno.test("trainStatePath: a.safetensors → a.train.safetensors (CK1)", () => {
  assert.equal(trainStatePath("/x/a.safetensors"), "/x/a.train.safetensors");
  assert.equal(trainStatePath("/x/a.bin"), "/x/a.bin.train.safetensors");
});

Deno.test("readTrainState: version, limitTrain and missing metadata are checked (CK2, CK3, CK6)", async () => {
  const dir = await Deno.makeTempDir();
  const identity = { model: "sparse" as const, seed: 0, batchSize: 32, limitTrain: 640 };
  const write = async (name: string, state?: object) => {
    const path = join(dir, name);
    const metadata: Record<string, string> = state === undefined
      ? {}
      : { sparselinear_train_state: JSON.stringify(state) };
    await saveStateDict({}, path, { metadata });
    return path;
  };
  try {
    const base = { ...identity, history: [], dynamicSteps: {} };
    await assert.rejects(
      async () => readTrainState(await write("v2.safetensors", { ...base, version: 2 }), identity),
      /unknown training state version/,
    );
    const p = await write("v1.safetensors", { ...base, version: 1 });
    await readTrainState(p, identity);
    await assert.rejects(
      () => readTrainState(p, { ...identity, limitTrain: null }),
      /settings must match: limitTrain 640 there, null now/,
    );
    await assert.rejects(
      async () => readTrainState(await write("none.safetensors"), identity),
      /holds no training state/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restoreTrainState: a saved dynamic layer missing from the model is an error (CK5)", () => {
  const model = new Linear(3, 2, { seed: 0 });
  const optimizer = new SGD(model.parameters(), { lr: 0.1 });
  const saved = {
    state: {
      version: 1 as const,
      model: "sparse" as const,
      seed: 0,
      batchSize: 1,
      limitTrain: null,
      history: [],
      dynamicSteps: { "0": { stepCount: 3, seed: 1 } },
    },
    optimizer: optimizer.stateDict(),
    path: "t.safetensors",
  };
  assert.throws(() => restoreTrainState(saved, model, optimizer), /"0" is not in this model/);
});

// ---------------------------------------------------------------- examples/cli.ts
Deno.test("cli helpers: 1E3, fallback, negative values for string flags only (CL2, CL3, CL5, CL6)", () => {
  assert.equal(decimalNumber("1E3"), 1000);
  assert.equal(intFlag({}, "runs", 5, 1, "usage"), 5);
  const opts = { lr: { type: "string" as const }, quiet: { type: "boolean" as const } };
  assert.deepEqual(joinNegativeValues(["--quiet", "-1"], opts), ["--quiet", "-1"]);
  assert.deepEqual(joinNegativeValues(["--lr", "-.5"], opts), ["--lr=-.5"]);
  assert.deepEqual(joinNegativeValues(["--lr", "-Infinity"], opts), ["--lr=-Infinity"]);
});
