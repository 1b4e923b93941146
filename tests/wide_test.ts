/**
 * Very wide layers: the memory model's arithmetic, the pre-allocation check (without
 * allocating), and a 100,000 × 100,000 layer whose forward/backward match a float64 reference
 * and whose `memoryBreakdown()` matches the model at every stage.
 */
import assert from "node:assert/strict";
import {
  availableMemory,
  cgroupRoom,
  checkMemoryFits,
  checkSparseLinearFits,
  CONNECTION_BYTES,
  constructionPeakBytes,
  CSC_VIEW_BYTES,
  formatBytes,
  kernelTileColumns,
  MEMORY_CHECK_THRESHOLD_BYTES,
  OPTIMIZER_STATE_BYTES_PER_VALUE,
  pruneAndGrowExtraBytes,
  setMemoryCheck,
  sparseLinearActivations,
  sparseLinearMemory,
} from "../lib/nn/memory.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { Linear } from "../lib/nn/linear.ts";
import { tensor, zeros } from "../lib/creation.ts";
import { pruneAndGrow } from "../lib/sparsity/rigl.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Adam } from "../lib/optim/adam.ts";
import { Generator } from "../lib/random.ts";
import { getNumThreads, setNumThreads } from "../ffi/library.ts";
import { checkKernelScratch } from "../lib/memory_check.ts";
import { fromFloat32, IndexTensor } from "../lib/tensor.ts";

const GiB = 2 ** 30;

Deno.test("memory model: 8 bytes per connection (16 with the CSC view), O(width) pointers", () => {
  assert.equal(CONNECTION_BYTES.total, 8);
  assert.equal(CONNECTION_BYTES.values + CONNECTION_BYTES.colIdx, 8);
  assert.equal(CSC_VIEW_BYTES.rowIdx + CSC_VIEW_BYTES.cscToCsr, CSC_VIEW_BYTES.total);
  assert.equal(CSC_VIEW_BYTES.total, 8);
  const m = sparseLinearMemory({ inFeatures: 1e6, outFeatures: 1e6, nnz: 1e7 });
  assert.equal(m.values, 4e7);
  assert.equal(m.pattern, 4e7 + 4 * (1e6 + 1));
  assert.equal(m.bias, 4e6);
  assert.equal(m.gradients, 0);
  assert.equal(m.indices, 0);
  assert.equal(m.total, 88_000_004);
  assert.equal(m.optimizerState, 0);
  const cuda = sparseLinearMemory({ inFeatures: 1e6, outFeatures: 1e6, nnz: 1e7 }, {
    cscView: true,
  });
  assert.equal(cuda.pattern, 12e7 + 4 * (1e6 + 1) + 4 * (1e6 + 1));
  assert.equal(cuda.total, 172_000_008);

  // Unequal widths: row pointers follow outputs, column pointers inputs, bias outputs.
  const u = sparseLinearMemory({ inFeatures: 10, outFeatures: 3, nnz: 7, bias: false });
  assert.deepEqual(u, {
    values: 28,
    pattern: 4 * 7 + 4 * 4,
    bias: 0,
    gradients: 0,
    indices: 0,
    total: 28 + 44,
    optimizerState: 0,
  });
  const uc = sparseLinearMemory({ inFeatures: 10, outFeatures: 3, nnz: 7, bias: false }, {
    cscView: true,
  });
  assert.equal(uc.pattern, 12 * 7 + 4 * 4 + 4 * 11);
});

Deno.test("memory model: gradients, indices and optimizer state per trainable value", () => {
  const shape = { inFeatures: 1e6, outFeatures: 1e6, nnz: 1e7 };
  const trainable = 1e7 + 1e6; // weights + bias
  const sgd = sparseLinearMemory(shape, { gradients: true, optimizer: "sgd-momentum" });
  assert.equal(sgd.gradients, 4 * trainable);
  assert.equal(sgd.optimizerState, 4 * trainable);
  assert.equal(sgd.total, 88_000_004 + 4 * trainable);
  assert.equal(sparseLinearMemory(shape, { optimizer: "sgd" }).optimizerState, 0);
  assert.equal(sparseLinearMemory(shape, { optimizer: "adam" }).optimizerState, 8 * trainable);
  assert.equal(sparseLinearMemory(shape, { optimizer: "amsgrad" }).optimizerState, 12 * trainable);
  assert.equal(sparseLinearMemory(shape, { indices: true }).indices, 8e7);
  assert.deepEqual(
    { ...OPTIMIZER_STATE_BYTES_PER_VALUE },
    { none: 0, sgd: 0, "sgd-momentum": 4, adam: 8, amsgrad: 12 },
  );
  assert.throws(
    () => sparseLinearMemory(shape, { optimizer: "lion" as never }),
    { name: "RangeError", message: /optimizer must be one of .*got "lion"/ },
  );
  assert.throws(
    () => sparseLinearMemory({ inFeatures: 0, outFeatures: 1, nnz: 1 }),
    { name: "RangeError", message: /inFeatures must be an integer >= 1, got 0/ },
  );
});

Deno.test("memory model: activations and kernel scratch scale with width · batch", () => {
  assert.deepEqual([1, 2, 8, 9, 63, 64, 100].map(kernelTileColumns), [8, 8, 8, 16, 64, 64, 64]);
  const a = sparseLinearActivations(1e6, 1e6, 64, { inputGrad: false });
  assert.deepEqual(a, {
    input: 256e6,
    output: 256e6,
    outputGrad: 256e6,
    inputGrad: 0,
    kernelScratch: 4 * 64 * 1e6,
    total: 4 * 256e6,
  });
  // The larger of the forward's x panel and the backward's dY panel + values and dW in CSC
  // order + the bias gradient's double sums.
  const b = sparseLinearActivations(100, 30, 9, { threads: 2 });
  assert.equal(b.inputGrad, 4 * 9 * 100);
  assert.equal(b.kernelScratch, 4 * 16 * 100);
  assert.equal(
    sparseLinearActivations(30, 100, 9, { nnz: 1000 }).kernelScratch,
    4 * 16 * 100 + 8 * 1000 + 8 * 100,
  );
  assert.equal(
    sparseLinearActivations(1000, 30, 9, { nnz: 100 }).kernelScratch,
    4 * 16 * 1000, // the forward's x panel is the larger
  );
  assert.equal(
    sparseLinearActivations(1e6, 1e6, 64, { nnz: 1e7 }).kernelScratch,
    4 * 64 * 1e6 + 8 * 1e7 + 8 * 1e6,
  );
  assert.throws(() => sparseLinearActivations(30, 100, 9, { nnz: -1 }), RangeError);
  // Batch 1: the forward's output scratch, or per-thread copies of dx for the input gradient
  // (one copy where the kernel runs on one thread: connections + outputs below 2^17).
  assert.equal(sparseLinearActivations(100, 30, 1, { threads: 2 }).kernelScratch, 4 * 100);
  const wide1 = { threads: 2, nnz: 2e5 };
  assert.equal(sparseLinearActivations(1000, 300, 1, wide1).kernelScratch, 4 * 2 * 1000);
  assert.equal(
    sparseLinearActivations(30, 100, 1, { inputGrad: false, threads: 2 }).kernelScratch,
    4 * 100,
  );
  assert.throws(() => sparseLinearActivations(30, 100, 1, { threads: 0 }), RangeError);
  // By default the library's own thread count (SL_NUM_THREADS / setNumThreads), not the cores.
  const previous = getNumThreads();
  try {
    setNumThreads(16);
    assert.equal(sparseLinearActivations(1000, 300, 1, { nnz: 2e5 }).kernelScratch, 4 * 16 * 1000);
  } finally {
    setNumThreads(previous);
  }
});

Deno.test("memory model: construction peaks and prune-and-grow scratch", () => {
  const shape = { inFeatures: 1000, outFeatures: 2000, nnz: 50_000 };
  const layer = sparseLinearMemory(shape).total;
  assert.equal(constructionPeakBytes(shape, "random"), layer);
  assert.equal(constructionPeakBytes(shape, "small-world"), layer + 4 * 50_000 + 28 * 3000);
  assert.equal(constructionPeakBytes(shape, "user"), layer + 32 * 50_000 + 8 * 3000);
  const set = pruneAndGrowExtraBytes(shape, { k: 100, growth: "set" });
  assert.equal(set, 34 * 50_000 + 36 * 100 + 40 * 2001 + 8 * 100 + 8 * 2001);
  // RigL adds whole rows of the dense gradient (≤ maxSize entries, 5 bytes each: the chunk and
  // its packed survivors), candidates, x and dY, and the chunk's dY columns (2 rows × batch 4).
  const rigl = pruneAndGrowExtraBytes(shape, { k: 100, growth: "rigl", maxSize: 2500, batch: 4 });
  assert.equal(
    rigl - (set - 8 * 100 - 8 * 2001),
    5 * 2 * 1000 + 24 * 100 + 4 * 4 * 3000 + 4 * 4 * 2,
  );
  // Momentum state is remapped into a fresh array: +4 bytes per connection.
  assert.equal(
    pruneAndGrowExtraBytes(shape, { k: 100, growth: "set", optimizer: "sgd-momentum" }) - set,
    4 * 50_000,
  );
  // Sizes no layer or update can have are errors, not estimates.
  const bad = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, { name: "RangeError", message });
  bad(
    () => sparseLinearMemory({ ...shape, nnz: 2_000_001 }),
    /more than a 1000 × 2000 layer can hold/,
  );
  bad(() => sparseLinearMemory({ inFeatures: 1e6, outFeatures: 1e6, nnz: 2 ** 31 }), /int32/);
  bad(() => pruneAndGrowExtraBytes(shape, { k: 50_001, growth: "set" }), /k must be at most nnz/);
  bad(() => pruneAndGrowExtraBytes(shape, { k: 1, growth: "rigl", maxSize: 0 }), /maxSize/);
  bad(
    () => pruneAndGrowExtraBytes(shape, { k: 1, growth: "set", optimizer: "lion" as never }),
    /optimizer must be one of/,
  );
});

Deno.test("checkMemoryFits: names the estimate and what is available", () => {
  const room = { bytes: 8 * GiB, source: "test" };
  checkMemoryFits(8 * GiB, "exactly fits", "", room);
  assert.throws(
    () => checkMemoryFits(12 * GiB, "A 12 GiB thing", "how it was counted", room),
    {
      name: "RangeError",
      message:
        /^A 12 GiB thing needs about 12 GiB \(how it was counted\), but only 8 GiB is available \(test\); nothing was allocated/,
    },
  );
  // Below the threshold, or with unknown available memory, or switched off: no check.
  checkMemoryFits(MEMORY_CHECK_THRESHOLD_BYTES - 1, "small", "", { bytes: 0, source: "test" });
  checkMemoryFits(1e15, "unknown room", "", null);
  const previous = setMemoryCheck(false);
  try {
    checkMemoryFits(1e15, "unchecked", "", room);
  } finally {
    setMemoryCheck(previous);
  }
  assert.throws(() => checkMemoryFits(1e15, "checked again", "", room), RangeError);
  assert.equal(formatBytes(8 * 2 ** 40), "8 TiB");
  assert.equal(formatBytes(172_000_008), "164 MiB");
  assert.equal(formatBytes(512), "512 B");
});

Deno.test("SparseLinear refuses a layer that cannot fit, before allocating", () => {
  const room = { bytes: 8 * GiB, source: "test" };
  // 2e9 connections (within int32 indices): 8 bytes each, 14.9 GiB.
  assert.throws(() => checkSparseLinearFits(1e6, 1e6, { sparsity: 0.998 }, room), {
    name: "RangeError",
    message:
      /^SparseLinear\(1000000 → 1000000\) with 2,000,000,000 random connections needs about 14\.9 GiB \(8 bytes per connection \+ 7\.63 MiB for the 2000000 inputs and outputs\), but only 8 GiB is available \(test\); nothing was allocated/,
  });
  assert.throws(
    () => checkSparseLinearFits(1e6, 1e6, { sparsity: 0.998, smallWorld: true }, room),
    { name: "RangeError", message: /small-world connections needs about 22\.4 GiB \(12 bytes/ },
  );
  // A user list is counted from its shape alone (it is validated later, by the layer).
  // (An IndexTensor cannot be given a shape its data lacks: this one is forged.)
  const listed = Object.create(IndexTensor.prototype, {
    shape: { value: [2, 1e9] },
    data: { value: new Int32Array(0) },
  }) as IndexTensor;
  assert.throws(() => checkSparseLinearFits(1e6, 1e6, { connectivity: listed }, room), {
    name: "RangeError",
    message: /with 1,000,000,000 user connections needs about 37\.3 GiB \(40 bytes per connection/,
  });
  checkSparseLinearFits(1e6, 1e6, { sparsity: 0.99999 }, room); // 10 M connections: fits
  // Past the hard limits the layer's own checks speak (they hold on any machine).
  checkSparseLinearFits(1e6, 1e6, { sparsity: 0.5 }, room);

  // Through the constructor, with this machine's memory. 5e11 connections (8 TB) is refused
  // by the int32 limit before anything is allocated; 2e9 small-world connections (22.4 GiB at
  // their construction peak) by the memory check where less than that is available.
  const before = Deno.memoryUsage().rss;
  for (const smallWorld of [false, true]) {
    assert.throws(
      () => new SparseLinear(1e6, 1e6, { sparsity: 0.5, smallWorld, seed: 0 }),
      { name: "RangeError", message: /2\^31/ },
    );
  }
  const available = availableMemory();
  const needed = constructionPeakBytes(
    { inFeatures: 1e6, outFeatures: 1e6, nnz: 2e9 },
    "small-world",
  );
  if (available !== null && available.bytes < needed) {
    assert.throws(
      () => new SparseLinear(1e6, 1e6, { sparsity: 0.998, smallWorld: true, seed: 0 }),
      {
        name: "RangeError",
        message:
          /2,000,000,000 small-world connections needs about 22\.4 GiB .*but only .* available/,
      },
    );
  }
  // Nothing was allocated: the process did not grow by anything near a layer's size.
  assert.ok(Deno.memoryUsage().rss - before < GiB);
});

/** y = x·Wᵀ + b, dX and dW for upstream gradient g, in float64 from the layer's CSR arrays. */
function reference(layer: SparseLinear, x: Float32Array, g: Float32Array, batch: number) {
  const { hostRowPtr: rp, hostColIdx: ci } = layer.pattern;
  const w = layer.weights.toArray(), b = layer.bias!.toArray();
  const nIn = layer.inFeatures, nOut = layer.outFeatures;
  const y = new Float64Array(batch * nOut);
  const dx = new Float64Array(batch * nIn);
  const dw = new Float64Array(layer.nnz);
  for (let r = 0; r < batch; r++) {
    for (let o = 0; o < nOut; o++) {
      let acc = b[o];
      const go = g[r * nOut + o];
      for (let k = rp[o]; k < rp[o + 1]; k++) {
        const xi = x[r * nIn + ci[k]];
        acc += w[k] * xi;
        dx[r * nIn + ci[k]] += w[k] * go;
        dw[k] += go * xi;
      }
      y[r * nOut + o] = acc;
    }
  }
  return { y, dx, dw };
}

function assertClose(actual: Float32Array, expected: Float64Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / (1e-3 + Math.abs(expected[i]));
    worst = Math.max(worst, err);
  }
  assert.ok(worst < 1e-4, `${what}: relative error ${worst}`);
}

Deno.test("100k × 100k at 99.99 %: forward/backward match float64, memoryBytes matches the model", () => {
  const n = 100_000, batch = 3;
  const layer = new SparseLinear(n, n, { sparsity: 0.9999, seed: 7 });
  const shape = { inFeatures: n, outFeatures: n, nnz: 1_000_000 };
  assert.equal(layer.nnz, 1_000_000);
  assert.deepEqual(
    { ...layer.memoryBreakdown(), optimizerState: 0 },
    sparseLinearMemory(shape),
  );
  assert.equal(layer.memoryBytes(), 8 * 1_000_000 + 4 * (n + 1) + 4 * n);

  const gen = new Generator(3);
  const xData = new Float32Array(batch * n);
  for (let i = 0; i < xData.length; i++) if (gen.uniform() < 0.1) xData[i] = gen.uniform();
  const gData = gen.fillUniform(new Float32Array(batch * n), -1, 1);
  const x = fromFloat32(xData, [batch, n], true);
  const y = layer.forward(x);
  y.backward(fromFloat32(gData, [batch, n]));
  const ref = reference(layer, xData, gData, batch);
  assertClose(y.toArray(), ref.y, "y");
  assertClose(x.grad!.toArray(), ref.dx, "dX");
  assertClose(layer.weights.grad!.toArray(), ref.dw, "dW");

  // The batched input gradient built the CSC view.
  assert.deepEqual(
    { ...layer.memoryBreakdown(), optimizerState: 0 },
    sparseLinearMemory(shape, { gradients: true, cscView: true }),
  );
  const opt = new SGD(layer, { lr: 0.1, momentum: 0.9 });
  opt.step();
  const state = Object.values(opt.stateDict()).reduce((s, t) => s + 4 * t.size, 0);
  const steps = 2; // one `step` counter per parameter
  assert.equal(
    state - 4 * steps,
    sparseLinearMemory(shape, { optimizer: "sgd-momentum" }).optimizerState,
  );
  assert.equal(layer.indices.shape[1], 1_000_000);
  assert.deepEqual(
    { ...layer.memoryBreakdown(), optimizerState: 0 },
    sparseLinearMemory(shape, { gradients: true, indices: true, cscView: true }),
  );
  opt.zeroGrad();
  assert.deepEqual(
    { ...layer.memoryBreakdown(), optimizerState: 0 },
    sparseLinearMemory(shape, { indices: true, cscView: true }),
  );
});

Deno.test("the memory check sees the tightest cgroup limit on this process's own path", () => {
  const fs = (files: Record<string, string>) => (path: string) => files[path] ?? null;
  const GiB = 2 ** 30;
  // cgroup v2, a job limit on an ancestor (the process's own group has none): it counts.
  const v2 = {
    "/proc/self/cgroup": "0::/jobs/job42/step0\n",
    "/sys/fs/cgroup/memory.max": "max\n",
    "/sys/fs/cgroup/memory.current": `${20 * GiB}\n`,
    "/sys/fs/cgroup/jobs/job42/memory.max": `${4 * GiB}\n`,
    "/sys/fs/cgroup/jobs/job42/memory.current": `${1 * GiB}\n`,
    "/sys/fs/cgroup/jobs/job42/memory.stat": "anon 1\ninactive_file 536870912\n",
    "/sys/fs/cgroup/jobs/job42/step0/memory.max": "max\n",
    "/sys/fs/cgroup/jobs/job42/step0/memory.current": `${1 * GiB}\n`,
  };
  assert.equal(cgroupRoom(fs(v2)), 3.5 * GiB);
  // Without /proc/self (Deno needs --allow-all for it): only the mount root is seen.
  const { "/proc/self/cgroup": _, ...rootOnly } = v2;
  assert.equal(cgroupRoom(fs(rootOnly)), null);
  // cgroup v1 (a hybrid host also lists "0::/"), the limit on the process's own group.
  const v1 = {
    "/proc/self/cgroup": "4:memory:/process_api/abc\n3:cpuset:/\n0::/\n",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
    "/sys/fs/cgroup/memory/memory.usage_in_bytes": `${5 * GiB}\n`,
    "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": `${400 * 2 ** 20}\n`,
    "/sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes": `${100 * 2 ** 20}\n`,
  };
  assert.equal(cgroupRoom(fs(v1)), 300 * 2 ** 20);
  assert.equal(cgroupRoom(fs({})), null);
});

Deno.test("large allocations after construction are refused before they happen", () => {
  // A machine with 100 MiB available (Deno.systemMemoryInfo is what availableMemory reads).
  const real = Deno.systemMemoryInfo;
  const available = 100 * 2 ** 20;
  Object.defineProperty(Deno, "systemMemoryInfo", {
    value: () => ({ ...real(), available }),
    configurable: true,
    writable: true,
  });
  try {
    const refused = (fn: () => unknown, message: RegExp) =>
      assert.throws(fn, (e: Error) => e instanceof RangeError && message.test(e.message));
    refused(
      () => zeros([8192, 8192]),
      /float32 tensor of shape \[8192, 8192\] needs about 256 MiB, but only 100 MiB/,
    );
    refused(() => new Linear(8192, 8192), /Linear\(8192, 8192\) needs about 256 MiB/);
    // A layer that fits (~48 MiB), whose first batched backward needs its CSC view (~48 MiB
    // more, checked alone) and whose SET update needs ~34 bytes per connection.
    const layer = new SparseLinear(20000, 20000, {
      sparsity: 0.985,
      seed: 1,
      dynamic: true,
      growth: "set",
      deltaT: 1,
    });
    refused(
      () => layer.dynamicSparsity!.step(),
      /The SET update at step 1 \(k = \d+\) needs about \d+ MiB .*only 100 MiB is available/,
    );
    assert.equal(layer.dynamicSparsity!.stepCount, 0); // refused: nothing changed
    // The exported pruneAndGrow checks the same update (it had no check at all).
    refused(
      () => pruneAndGrow(layer, 1000, { kind: "set", seed: 1 }),
      /A SET prune-and-grow update \(k = 1000\) needs about \d+ MiB .*only 100 MiB/,
    );
    // Optimizer state is checked in total before its first buffer: 2 × 3 AMSGrad buffers of
    // 30 MiB each (each under the 64 MiB threshold, and fresh arrays take no memory until
    // written, so checked one by one they all passed).
    const params = [0, 1].map(() => {
      const p = fromFloat32(new Float32Array(30 * 2 ** 18), [30 * 2 ** 18], true);
      p.grad = fromFloat32(new Float32Array(30 * 2 ** 18), [30 * 2 ** 18]);
      return p;
    });
    refused(
      () => new Adam(params, { lr: 0.1, amsgrad: true }).step(),
      /Adam's state \(exp_avg, exp_avg_sq, max_exp_avg_sq\) needs about 180 MiB/,
    );
    refused(
      () => new Adam(params, { lr: 0.1 }).step(),
      /Adam's state \(exp_avg, exp_avg_sq\) needs about 120 MiB/,
    );
    // The kernels' scratch: a 2M-input layer's batch-64 forward maps a 512 MB panel of x.
    const wideIn = new SparseLinear(2_000_000, 10, { connectivity: [[0], [0]] });
    refused(
      () => wideIn.forward(tensor(new Float32Array(64 * 2_000_000), [64, 2_000_000])),
      /kernel scratch of a 2000000 → 10 SparseLinear's forward at batch 64 needs about 488 MiB/,
    );
    // Built with the check off (e.g. relying on swap), its CSC view is still checked.
    setMemoryCheck(false);
    const big = new SparseLinear(12000, 12000, { sparsity: 0.9, seed: 1 });
    setMemoryCheck(true);
    refused(
      () => big.pattern.cscView(),
      /The CSC view of a 12000 × 12000 pattern with 14400000 connections needs about 110 MiB/,
    );
  } finally {
    setMemoryCheck(true);
    Object.defineProperty(Deno, "systemMemoryInfo", {
      value: real,
      configurable: true,
      writable: true,
    });
  }
});

Deno.test("kernel scratch larger than the kernels keep is checked at every call", () => {
  // csrc/cpu/scratch.c keeps up to 256 MiB of blocks mapped between calls; a larger block is
  // mapped anew at each call, so it must be checked again (it was checked only the first time:
  // "only a request larger than every earlier one can map new memory").
  const real = Deno.systemMemoryInfo;
  const setAvailable = (available: number) =>
    Object.defineProperty(Deno, "systemMemoryInfo", {
      value: () => ({ ...real(), available }),
      configurable: true,
      writable: true,
    });
  const what = () => "a test call";
  try {
    setAvailable(1000 * GiB);
    checkKernelScratch(512 * GiB, what); // fits: mapped, then unmapped after the call
    setAvailable(100 * 2 ** 20);
    assert.throws(
      () => checkKernelScratch(512 * GiB, what),
      /kernel scratch of a test call needs about 512 GiB, but only 100 MiB is available/,
    );
  } finally {
    Object.defineProperty(Deno, "systemMemoryInfo", {
      value: real,
      configurable: true,
      writable: true,
    });
  }
});

Deno.test("deno task wide: the RigL cost at 1 M width counts whole chunks, or says none fits", async () => {
  // --max-size 1000 printed "Infinity chunks of 0 rows", and 3e6 "333333.3333333333 chunks".
  const script = new URL("../examples/wide.ts", import.meta.url).pathname;
  const cost = async (maxSize: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", script, "--skip", "wide", "--rigl-width", "100"]
        .concat(["--rigl-sparsity", "0.9", "--batch", "4", "--max-size", maxSize]),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).match(/^RigL cost: .*$/m)?.[0] ?? "(no line)";
  };
  const none = await cost("1000");
  assert.match(none, /a maxSize of 1000 cannot hold one of its 10\^6-entry rows/);
  assert.doesNotMatch(none, /Infinity|NaN/);
  assert.match(await cost("3000000"), /10\^12 entries = 333334 chunks of 3 rows/);
});
