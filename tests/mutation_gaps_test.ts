/**
 * Behaviours that no other test pinned down, found by mutation testing (bench/RESULTS.md,
 * "Mutation testing"): a plausible bug planted in each of these places passed the rest of the
 * suite. Each test names the planted bug it catches (T: training loop and summaries, D/I: data,
 * O: ops, M: modules, W/K: memory model and checks, C: creation and random numbers, F: tensor
 * printing, P: option checks).
 * @module
 */
import assert from "node:assert/strict";
import {
  batches,
  checkSparseLinearFits,
  decodeIdx,
  encodeIdx,
  evaluate,
  fit,
  formatBytes,
  formatDuration,
  formatEpoch,
  Generator,
  Linear,
  matmul,
  Module,
  NonFiniteLossError,
  ones,
  ProgressBar,
  rand,
  scaleShift,
  Sequential,
  SGD,
  ShapeError,
  summarize,
  summaryTable,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { cgroupRoom } from "../lib/memory_check.ts";

/** A model whose output is its input (one parameter so SGD has something to hold). */
class Identity extends Module {
  constructor() {
    super();
    this.registerParameter("w", tensor([0]));
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

// Loss of a batch = mean over its rows of column 0 of the output (so the per-example mean of
// the data set is the mean of column 0 over all examples, whatever the batching).
const meanCol0 = (out: Tensor) => {
  const v = out.toArray();
  const cols = out.shape[1];
  let s = 0;
  for (let r = 0; r < out.shape[0]; r++) s += v[r * cols];
  return tensor(s / out.shape[0]);
};

// 5 examples, batch size 2: batches of 2, 2 and a last partial batch of 1.
// Column 0 values 10, 0, 0, 0, 0: per-example mean 2; batch means 5, 0, 0 (their mean 5/3,
// their sum over examples 1). Row 0 has its largest logit at class 0, rows 1..4 at class 1.
function data() {
  const x = tensor([[10, 1], [0, 1], [0, 1], [0, 1], [0, 1]]);
  const y = new Int32Array([0, 1, 0, 0, 1]); // correct: rows 0, 1, 4 -> 3 of 5 = 60%
  return batches(x, y, { batchSize: 2 });
}

/** `value` as a loss that needs a backward pass (0 · the model's parameter + value). */
const trainable = (model: Module, value: number): Tensor =>
  model.parameters()[0].mul(0).sum().add(value);

/** One quiet epoch of `fit` on data() with lr 0, plus `extra` options. */
function oneEpoch(model: Module, loss: (out: Tensor) => Tensor, extra = {}) {
  return fit(model, {
    optimizer: new SGD(model, { lr: 0 }),
    loss,
    train: data(),
    epochs: 1,
    progress: false,
    log: null,
    ...extra,
  });
}

Deno.test("evaluate: loss is the per-example mean over batches incl. a partial last batch (T01, T02)", () => {
  const r = evaluate(new Identity(), data(), meanCol0);
  assert.equal(r.examples, 5);
  assert.ok(Math.abs(r.loss - 2) < 1e-6, `loss ${r.loss}, expected 2 (per-example mean)`);
});

Deno.test("evaluate: accuracy is correct / examples in percent (T03)", () => {
  const r = evaluate(new Identity(), data(), meanCol0);
  assert.ok(Math.abs(r.accuracy! - 60) < 1e-9, `accuracy ${r.accuracy}, expected 60`);
});

Deno.test("evaluate: no batches gives NaN loss and null accuracy (T07)", () => {
  const r = evaluate(new Identity(), [], meanCol0);
  assert.ok(Number.isNaN(r.loss), `loss ${r.loss}`);
  assert.equal(r.accuracy, null);
  assert.equal(r.examples, 0);
});

Deno.test("fit: a training source of length 0 is accepted (T10)", async () => {
  const model = new Identity();
  const empty = batches(new Float32Array(0), new Int32Array(0), { batchSize: 2 });
  assert.equal(empty.length, 0);
  const { history } = await oneEpoch(model, meanCol0, { train: empty });
  assert.equal(history.length, 1);
  assert.equal(history[0].steps, 0);
});

Deno.test("fit: trainLoss/trainAccuracy are per-example over the epoch (T01, T02, T03 via fit)", async () => {
  const model = new Identity();
  const { history } = await oneEpoch(model, (out) => trainable(model, meanCol0(out).item()));
  assert.ok(Math.abs(history[0].trainLoss - 2) < 1e-6, `trainLoss ${history[0].trainLoss}`);
  assert.ok(Math.abs(history[0].trainAccuracy! - 60) < 1e-9, `acc ${history[0].trainAccuracy}`);
});

Deno.test("fit: an infinite loss stops training like NaN (T18)", async () => {
  const model = new Identity();
  await assert.rejects(
    oneEpoch(model, () => trainable(model, Infinity)),
    (err: unknown) =>
      err instanceof NonFiniteLossError && /Loss is Infinity at step 1/.test(err.message),
  );
});

Deno.test("namedParameters/parameters list a shared module's parameters once (M06)", () => {
  const layer = new Linear(2, 2, { seed: 0 });
  const model = new Sequential(layer, layer);
  assert.deepEqual(model.namedParameters().map(([n]) => n), ["0.weight", "0.bias"]);
  assert.equal(model.parameters().length, 2);
  assert.equal(model.namedParameters("", { removeDuplicate: false }).length, 4);
});

Deno.test("namedParameters lists a tied parameter (one tensor under two names) once (M06)", () => {
  class Tied extends Module {
    constructor() {
      super();
      const w = tensor([1, 2]);
      this.registerParameter("a", w);
      this.registerParameter("b", w);
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const model = new Tied();
  assert.deepEqual(model.namedParameters().map(([n]) => n), ["a"]);
  assert.equal(model.parameters().length, 1);
});

Deno.test("fit: trains in training mode even when the model was left in eval mode (T20)", async () => {
  const model = new Identity();
  model.eval();
  const modes: boolean[] = [];
  await oneEpoch(model, (out) => trainable(model, meanCol0(out).item()), {
    afterBackward: () => modes.push(model.training),
  });
  assert.deepEqual(modes, [true, true, true]);
});

Deno.test("fit: testSeconds is the test pass's time, not 0 (T27)", async () => {
  const model = new Identity();
  const { history } = await oneEpoch(model, (out) => {
    if (!model.training) { // the test pass takes at least 2 ms per batch
      const until = performance.now() + 2;
      while (performance.now() < until) { /* wait */ }
    }
    return trainable(model, meanCol0(out).item());
  }, { test: data() });
  assert.ok(history[0].testSeconds > 0, `testSeconds ${history[0].testSeconds}`);
});

Deno.test("formatBytes (summary): 1024 B is 1.00 KiB (T29)", () => {
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1024), "1.00 KiB");
});

Deno.test("summarize lists a container that holds parameters of its own (T31)", () => {
  class WithScale extends Module {
    constructor() {
      super();
      this.registerParameter("scale", tensor([1]));
      this.registerModule("inner", new Linear(2, 2, { seed: 0 }));
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const s = summarize(new WithScale());
  assert.deepEqual(s.layers.map((l) => l.name), ["(model)", "inner"]);
  assert.equal(s.parameters, 1 + 6);
});

Deno.test("summaryTable: training memory adds the optimizer state (T33)", () => {
  const model = new Linear(2, 2, { seed: 0 }); // 6 parameters
  assert.match(
    summaryTable(model, { optimizerBytesPerParameter: 4 }),
    /Training adds 48 B \(gradients \+ optimizer state\)/,
  );
  assert.match(summaryTable(model), /Training adds 24 B \(gradients\)/);
});

Deno.test("formatDuration: 60 s is 1m00s (T35)", () => {
  assert.equal(formatDuration(59.9), "59.9s");
  assert.equal(formatDuration(60), "1m00s");
  assert.equal(formatDuration(3600), "1h00m");
});

Deno.test("formatBytes (summary): one decimal from 10 units up (T30)", () => {
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(10 * 1024), "10.0 KiB");
  assert.equal(formatBytes(12.3 * 2 ** 20), "12.3 MiB");
  // The unit and the decimals follow the rounded value.
  assert.equal(formatBytes(2 ** 20 - 1), "1.00 MiB");
  assert.equal(formatBytes(10 * 1024 - 1), "10.0 KiB");
  assert.equal(formatBytes(2 ** 20 - 60), "1023.9 KiB");
});

Deno.test("ProgressBar: the filled part is rounded, not floored (T39)", () => {
  let now = 0;
  const out: string[] = [];
  const bar = new ProgressBar("e", 4, {
    sink: { write: (t) => out.push(t), isTerminal: true },
    now: () => now,
    barWidth: 10,
  });
  now = 3000;
  bar.update(3); // 10 * 3 / 4 = 7.5 -> 8 cells
  assert.match(out[0], /e ████████·· 3\/4/);
});

Deno.test("ProgressBar: plain lines every 10 s by default (T40)", () => {
  let now = 0;
  const out: string[] = [];
  const bar = new ProgressBar("e", 100, {
    sink: { write: (t) => out.push(t), isTerminal: false },
    now: () => now,
  });
  for (let i = 1; i < 10; i++) {
    now = i * 2000;
    bar.update(i);
  }
  assert.equal(out.length, 1, out.join(""));
  assert.match(out[0], /^e {3}5\/100/);
});

Deno.test("decodeIdx: a Uint8Array view at a byte offset decodes its own bytes (I10)", () => {
  const bytes = encodeIdx({ dtype: "uint8", shape: [2, 2], data: new Uint8Array([1, 2, 3, 4]) });
  const big = new Uint8Array(bytes.length + 7);
  big.fill(0xee);
  big.set(bytes, 5);
  const view = big.subarray(5, 5 + bytes.length);
  const idx = decodeIdx(view);
  assert.deepEqual(idx.shape, [2, 2]);
  assert.deepEqual(Array.from(idx.data), [1, 2, 3, 4]);
});

Deno.test("Generator.normal: Box-Muller pairs (cos, then the spare sin) from two uniforms (C06)", () => {
  const g = new Generator(7);
  const ref = new Generator(7);
  const u = ref.uniform(), v = ref.uniform();
  const r = Math.sqrt(-2 * Math.log(u));
  assert.equal(g.normal(), r * Math.cos(2 * Math.PI * v));
  assert.equal(g.normal(), r * Math.sin(2 * Math.PI * v));
  assert.equal(g.uniform(), ref.uniform()); // the pair used two uniforms, no more
});

Deno.test("Generator.shuffle: every permutation of 3 items is reachable (Fisher-Yates, not Sattolo) (C08)", () => {
  const seen = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    seen.add(Array.from(new Generator(seed).shuffle(new Int32Array([0, 1, 2]))).join());
  }
  assert.equal(seen.size, 6, [...seen].join(" "));
});

const kept: Uint8Array[] = [];
Deno.test("fit: peakRssBytes covers the RSS sampled after the test pass (T28)", async () => {
  const model = new Identity();
  const { history, peakRssBytes } = await oneEpoch(model, (out) => {
    // Grow the RSS during the test pass, after the last sample taken while training.
    if (!model.training && kept.length === 0) kept.push(new Uint8Array(128 * 2 ** 20).fill(1));
    return trainable(model, meanCol0(out).item());
  }, { test: data() });
  assert.ok(peakRssBytes >= history[0].rssBytes, `${peakRssBytes} < ${history[0].rssBytes}`);
  kept.length = 0;
});

Deno.test("printing: tiny non-integers switch to exponent form (F01)", () => {
  assert.match(String(tensor([0.00001, 1])), /^Tensor\(\[1\.0000e-05, 1\.0000e\+00\]/);
});

Deno.test("printing: a negative zero keeps its sign, as PyTorch (F02)", () => {
  // The common width comes from the nonzero finite values (here "1."), so "-0." sticks out.
  assert.match(String(tensor([-0, 1])), /^Tensor\(\[-0\., 1\.\]/);
});

Deno.test("Batches.skipEpochs(0) is accepted (nothing run yet) (D09)", () => {
  const b = batches(tensor([[1], [2], [3]]), new Int32Array([0, 1, 2]), {
    batchSize: 2,
    shuffle: true,
    seed: 1,
  });
  b.skipEpochs(0);
  assert.throws(() => b.skipEpochs(-1), RangeError);
});

Deno.test("flatten: startDim after endDim is a RangeError, even by one (O15)", () => {
  const x = tensor([[[1, 2], [3, 4]]]); // [1, 2, 2]
  assert.throws(() => x.flatten(2, 1), RangeError);
});

Deno.test("expand: -1 in a new leading dimension is a ShapeError (O17)", () => {
  assert.throws(() => tensor([1, 2]).expand([-1, 2]), ShapeError);
});

Deno.test("matmul: batch dims [2, 3] and [3, 2] differ even with equal counts (O20)", () => {
  assert.throws(() => matmul(zeros([2, 3, 4, 5]), zeros([3, 2, 5, 6])), ShapeError);
});

Deno.test("encodeIdx: 256 dimensions do not fit the one-byte count (I11)", () => {
  const shape = new Array(256).fill(1);
  assert.throws(() => encodeIdx({ dtype: "uint8", shape, data: new Uint8Array(1) }), RangeError);
  const ok = encodeIdx({ dtype: "uint8", shape: shape.slice(1), data: new Uint8Array(1) });
  assert.equal(decodeIdx(ok).shape.length, 255);
});

Deno.test("encodeIdx/decodeIdx: a dimension in [2^31, 2^32) is valid (I12)", () => {
  const bytes = encodeIdx({ dtype: "uint8", shape: [2 ** 31, 0], data: new Uint8Array(0) });
  assert.deepEqual(decodeIdx(bytes).shape, [2 ** 31, 0]);
});

Deno.test("scaleShift: a scale of shape [1, n] is refused, it must be [n] (M18)", () => {
  const x = tensor([[1, 2], [3, 4]]);
  assert.throws(() => scaleShift(x, tensor([[1, 1]]), null), ShapeError);
});

Deno.test("checkSparseLinearFits: the default sparsity is SparseLinear's 0.9 (W09)", () => {
  // 16384 x 8192 at sparsity 0.9: ~13.4M connections, ~110 MB; at 0.5 ~550 MB.
  const room = { bytes: 300 * 2 ** 20, source: "test" };
  checkSparseLinearFits(16384, 8192, {}, room);
  assert.throws(() => checkSparseLinearFits(16384, 8192, { sparsity: 0.5 }, room), RangeError);
});

Deno.test("tensor(): ragged nested arrays are refused even when the count happens to fit (C05)", () => {
  assert.throws(() => tensor([[[1, 2]], [[3], [4]]] as never), ShapeError);
  assert.throws(() => tensor([[1, 2], [3]] as never), /Ragged/);
});

Deno.test("rand() without a seed draws fresh values each call (C10)", () => {
  assert.notDeepEqual(Array.from(rand([8]).data), Array.from(rand([8]).data));
});

Deno.test("printing: up to 1000 values are printed whole, as PyTorch (F03)", () => {
  assert.ok(!String(ones([200])).includes("..."));
  assert.ok(String(ones([1001])).includes("..."));
});

Deno.test("printing: a blank line separates the matrices of a 3-D tensor, as PyTorch (F05)", () => {
  assert.equal(
    String(ones([2, 1, 1])),
    "Tensor([[[1.]],\n\n        [[1.]]], shape=[2, 1, 1], device=cpu)",
  );
});

Deno.test("cgroupRoom: the smallest room along the hierarchy wins (K02)", () => {
  const files: Record<string, string> = {
    "/proc/self/cgroup": "0::/a/b\n",
    "/sys/fs/cgroup/a/b/memory.max": "1000",
    "/sys/fs/cgroup/a/b/memory.current": "950",
    "/sys/fs/cgroup/a/memory.max": "100000",
    "/sys/fs/cgroup/a/memory.current": "100",
  };
  assert.equal(cgroupRoom((p) => files[p] ?? null), 50);
});

Deno.test("formatEpoch: a missing number field is named (P02)", () => {
  assert.throws(
    () => formatEpoch({ epoch: 1 } as never, 1),
    /formatEpoch\(\) stats\.trainLoss must be a number/,
  );
});

Deno.test("Tensor.logSoftmax(axis) passes the axis on: a non-last axis is refused (P05)", () => {
  assert.throws(() => tensor([[1, 2], [3, 4]]).logSoftmax(0), RangeError);
  assert.equal(tensor([[1, 2], [3, 4]]).logSoftmax(1).shape.join(), "2,2");
});
