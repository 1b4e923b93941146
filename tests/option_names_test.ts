/**
 * Misspelt option names are TypeErrors naming the key and the known options, not silently
 * ignored: `sum(x, 0, { keepdim: true })` (PyTorch's spelling) kept the reduced axis out,
 * `randn(shape, { generator })` drew from a random seed. One row per function taking options:
 * the wrong key throws, the right one still works.
 */
import assert from "node:assert/strict";
import {
  batches,
  connectivityDensity,
  connectivityPng,
  connectivitySvg,
  erkSparsities,
  evaluate,
  full,
  Generator,
  kernelScratchPeakBytes,
  kWinners,
  Linear,
  lineChart,
  loadMnist,
  loadStateDict,
  mean,
  ones,
  ProgressBar,
  rand,
  randn,
  randomConnectivity,
  reclaimDeviceMemory,
  ReLU,
  safetensorsToStateDict,
  saveStateDict,
  Sequential,
  smallWorldConnectivity,
  smallWorldPattern,
  sparseLinearActivations,
  sparseLinearMemory,
  stateDictToSafetensors,
  sum,
  summaryTable,
  tensor,
  topk,
  zeros,
} from "../mod.ts";

/** Asserts that `call` throws a TypeError naming `key`, `owner` and every option in `known`. */
function assertRejects(call: () => unknown, owner: string, key: string, known: string[]): void {
  assert.throws(call, (err: unknown) => {
    assert.ok(err instanceof TypeError, `${owner}: ${err}`);
    assert.match(err.message, new RegExp(`^${owner.replace(/[()]/g, "\\$&")} has no option`));
    assert.ok(err.message.includes(`"${key}"`), err.message);
    assert.ok(err.message.endsWith(`its options are ${known.join(", ")}`), err.message);
    return true;
  });
}

const CREATE = ["requiresGrad", "device"];
const RANDOM = [...CREATE, "seed"];

Deno.test("creators reject unknown options and still take the right ones", () => {
  assertRejects(
    () => tensor([1, 2], undefined, { requires_grad: true } as never),
    "tensor()",
    "requires_grad",
    CREATE,
  );
  assertRejects(
    () => zeros([2], { requires_grad: true } as never),
    "zeros()",
    "requires_grad",
    CREATE,
  );
  assertRejects(() => ones([2], { dtype: "float32" } as never), "ones()", "dtype", CREATE);
  assertRejects(() => full([2], 3, { devise: "cpu" } as never), "full()", "devise", CREATE);
  assertRejects(() => rand([2], { sed: 1 } as never), "rand()", "sed", RANDOM);
  assertRejects(
    () => randn([2], { generator: new Generator(1) } as never),
    "randn()",
    "generator",
    RANDOM,
  );
  assert.equal(zeros([2], { requiresGrad: true }).requiresGrad, true);
  assert.equal(tensor([1, 2], undefined, { requiresGrad: true }).requiresGrad, true);
  assert.deepEqual(Array.from(ones([2], { device: "cpu" }).data), [1, 1]);
  assert.deepEqual(Array.from(full([2], 3).data), [3, 3]);
  const a = randn([3], { seed: new Generator(1) }), b = randn([3], { seed: new Generator(1) });
  assert.deepEqual(Array.from(a.data), Array.from(b.data));
  assert.deepEqual(
    Array.from(rand([3], { seed: 2 }).data),
    Array.from(rand([3], { seed: 2 }).data),
  );
});

Deno.test("the messages point PyTorch names to ours", () => {
  assert.throws(
    () => randn([2], { generator: new Generator(1) } as never),
    /\(did you mean "seed"\?\)/,
  );
  assert.throws(
    () => sum(ones([2, 3]), 0, { keepdim: true } as never),
    /\(did you mean "keepDim"\?\)/,
  );
  assert.throws(
    () => mean(ones([2, 3]), 0, { keepdims: true } as never),
    /\(did you mean "keepDim"\?\)/,
  );
  assert.throws(
    () => zeros([2], { requires_grad: true } as never),
    /\(did you mean "requiresGrad"\?\)/,
  );
  // No hint towards an option the function does not have.
  assert.throws(() => zeros([2], { generator: 1 } as never), /no option "generator"; its options/);
});

Deno.test("sum and mean reject unknown options; no options and keepDim still work", () => {
  const x = ones([2, 3]);
  assertRejects(() => sum(x, 0, { keepdim: true } as never), "sum()", "keepdim", ["keepDim"]);
  assertRejects(() => mean(x, 0, { keepdim: true } as never), "mean()", "keepdim", ["keepDim"]);
  assertRejects(() => x.sum(1, { keepdim: true } as never), "sum()", "keepdim", ["keepDim"]);
  assertRejects(() => x.mean(undefined, { keep: true } as never), "mean()", "keep", ["keepDim"]);
  assert.deepEqual(sum(x, 0, { keepDim: true }).shape, [1, 3]);
  assert.deepEqual(x.mean(1, { keepDim: true }).shape, [2, 1]);
  assert.deepEqual(sum(x, 1).shape, [2]);
  assert.equal(sum(x).item(), 6);
  assert.equal(x.mean(undefined, undefined).item(), 1);
});

Deno.test("backward rejects unknown options", () => {
  const w = ones([2], { requiresGrad: true });
  assertRejects(
    () => sum(w).backward({ retain_graph: true } as never),
    "backward()",
    "retain_graph",
    ["retainGraph"],
  );
  const loss = sum(w);
  loss.backward({ retainGraph: true });
  loss.backward();
  assert.deepEqual(Array.from(w.grad!.data), [2, 2]);
});

Deno.test("batches rejects unknown options and non-boolean flags", () => {
  const x = ones([16, 2]), y = new Int32Array(16);
  const known = ["batchSize", "shuffle", "seed", "dropLast", "device", "reuseBuffers"];
  assertRejects(
    () => batches(x, y, { batchSize: 8, suffle: true } as never),
    "batches()",
    "suffle",
    known,
  );
  assertRejects(() => batches(x, y, { batch_size: 8 } as never), "batches()", "batch_size", known);
  assert.throws(
    () => batches(x, y, { batchSize: 8, shuffle: "false" } as never),
    /shuffle must be true or false/,
  );
  assert.equal(batches(x, y, { batchSize: 5, shuffle: true, seed: 1, dropLast: true }).length, 3);
});

Deno.test("Module state-dict and naming methods reject unknown options", () => {
  const model = new Sequential(new Linear(2, 3, { seed: 0 }), new ReLU(), new Linear(3, 1));
  const state = model.stateDict();
  assertRejects(
    () => model.loadStateDict(state, { strct: false } as never),
    "loadStateDict()",
    "strct",
    ["strict"],
  );
  assertRejects(() => model.stateDict({ optinal: false } as never), "stateDict()", "optinal", [
    "optional",
  ]);
  assert.throws(
    () => model.loadStateDict(state, { strict: "false" } as never),
    /strict must be true or false/,
  );
  const named = ["removeDuplicate"];
  assertRejects(
    () => model.namedParameters("", { remove_duplicate: false } as never),
    "namedParameters()",
    "remove_duplicate",
    named,
  );
  assertRejects(
    () => model.namedBuffers("", { dedupe: false } as never),
    "namedBuffers()",
    "dedupe",
    named,
  );
  assertRejects(
    () => model.namedModules("", { dedupe: false } as never),
    "namedModules()",
    "dedupe",
    named,
  );
  const result = model.loadStateDict({ extra: zeros([1]), ...state }, { strict: false });
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: ["extra"] });
  assert.deepEqual(Object.keys(model.stateDict({ optional: false })), Object.keys(state));
  assert.equal(model.namedModules("", { removeDuplicate: false }).length, 4);
  assert.equal(model.namedParameters("", { removeDuplicate: true }).length, 4);
});

Deno.test("sparsity builders and memory estimates reject unknown options", () => {
  const scores = new Float32Array([0.5, -3, 2, 0.1]);
  assertRejects(() => topk(scores, 2, { absolute: true } as never), "topk()", "absolute", [
    "smallest",
    "abs",
  ]);
  assert.deepEqual(Array.from(topk(scores, 2, { abs: true })), [1, 2]);
  assertRejects(
    () => erkSparsities([[4, 4]], 0.5, { power_scale: 1 } as never),
    "erkSparsities()",
    "power_scale",
    ["erk", "powerScale", "custom"],
  );
  assert.equal(erkSparsities([[4, 4]], 0.5, { powerScale: 1 }).length, 1);
  assertRejects(
    () => randomConnectivity(4, 4, 4, { generator: 1 } as never),
    "randomConnectivity()",
    "generator",
    ["seed"],
  );
  assert.equal(randomConnectivity(4, 4, 4, { seed: 1 }).nnz, 4);
  assertRejects(
    () => smallWorldPattern(8, 8, 0.5, { sed: 1 } as never),
    "smallWorldPattern()",
    "sed",
    ["seed"],
  );
  assertRejects(
    () => smallWorldConnectivity(8, 8, 0.5, { sed: 1 } as never),
    "smallWorldConnectivity()",
    "sed",
    ["seed"],
  );
  assert.equal(smallWorldConnectivity(8, 8, 0.5, { seed: 1 }).shape[0], 2);
  const shape = { inFeatures: 4, outFeatures: 4, nnz: 4 };
  assertRejects(
    () => sparseLinearMemory(shape, { gradient: true } as never),
    "sparseLinearMemory()",
    "gradient",
    ["gradients", "indices", "optimizer", "cscView"],
  );
  assert.ok(sparseLinearMemory(shape, { gradients: true }).total > sparseLinearMemory(shape).total);
  assertRejects(
    () => sparseLinearActivations(4, 4, 2, { input_grad: false } as never),
    "sparseLinearActivations()",
    "input_grad",
    ["inputGrad", "nnz", "threads"],
  );
  assert.ok(sparseLinearActivations(4, 4, 2, { inputGrad: false }).total > 0);
  const x = tensor([[0.5, -1, 2, 1]]);
  assertRejects(() => kWinners(x, 2, { boost: 1 } as never), "kWinners()", "boost", [
    "dutyCycle",
    "boostStrength",
    "dutyCycleRate",
  ]);
  assert.deepEqual(Array.from(kWinners(x, 2, { boostStrength: 0 }).data), [0, 0, 2, 1]);
});

Deno.test("loadMnist and reclaimDeviceMemory reject unknown options", async () => {
  await assert.rejects(
    () => loadMnist({ dir: ".", flaten: false } as never),
    /loadMnist\(\) has no option "flaten"; its options are dir, flatten, normalize/,
  );
  // A right name gets past the check, to the missing files.
  await assert.rejects(
    () => loadMnist({ dir: "/nonexistent-mnist", flatten: false }),
    (err: Error) => !/has no option/.test(err.message),
  );
  await assert.rejects(
    () => reclaimDeviceMemory({ colect: true } as never),
    /reclaimDeviceMemory\(\) has no option "colect"/,
  );
  assert.equal(typeof await reclaimDeviceMemory({ collect: false }), "number");
});

Deno.test("training, plotting, checkpoint and scratch calls reject unknown options", async () => {
  const model = new Sequential(new Linear(3, 2, { seed: 1 }), new ReLU());
  const data = batches(zeros([4, 3]), new Int32Array(4), { batchSize: 2 });
  const loss = (y: ReturnType<typeof zeros>) => sum(y);
  assertRejects(
    () => evaluate(model, data, loss, { on_batch: () => {} } as never),
    "evaluate()",
    "on_batch",
    ["onBatch"],
  );
  assert.equal(evaluate(model, data, loss, { onBatch: () => {} }).examples, 4);
  assertRejects(
    () => summaryTable(model, { optimizerBytes: 4 } as never),
    "summaryTable()",
    "optimizerBytes",
    ["optimizerBytesPerParameter"],
  );
  assert.throws(
    () => summaryTable(model, { optimizerBytesPerParameter: -1 }),
    RangeError,
  );
  assert.match(summaryTable(model, { optimizerBytesPerParameter: 4 }), /optimizer/i);
  assertRejects(
    () => new ProgressBar("x", 3, { width: 10 } as never),
    "ProgressBar",
    "width",
    ["sink", "redrawMs", "lineEverySeconds", "barWidth", "now"],
  );
  const series = [{ name: "loss", values: [3, 2, 1] }];
  assertRejects(
    () => lineChart({ series, ylabel: "loss" } as never),
    "lineChart()",
    "ylabel",
    ["series", "title", "xLabel", "yLabel", "x", "yMin", "yMax", "width", "height"],
  );
  const rows = new Int32Array([0, 1]), cols = new Int32Array([1, 0]);
  const image = ["width", "height", "scale"];
  assertRejects(
    () => connectivityPng(rows, cols, 2, 2, { colormap: "sqrt" } as never),
    "connectivityPng()",
    "colormap",
    image,
  );
  assertRejects(
    () => connectivitySvg(rows, cols, 2, 2, { caption: "x" } as never),
    "connectivitySvg()",
    "caption",
    [...image, "title"],
  );
  assert.match(connectivitySvg(rows, cols, 2, 2, { title: "band", scale: "sqrt" }), /band/);
  assertRejects(
    () => connectivityDensity(rows, cols, 2, 2, { binsX: 1, binsY: 1, bins: 2 } as never),
    "connectivityDensity() bins",
    "bins",
    ["binsX", "binsY"],
  );
  const state = model.stateDict();
  assertRejects(
    () => stateDictToSafetensors(state, { dtype: "I32" } as never),
    "stateDictToSafetensors()",
    "dtype",
    ["indexDType"],
  );
  const tensors = stateDictToSafetensors(state);
  assertRejects(
    () => safetensorsToStateDict(tensors, state, { strct: false } as never),
    "safetensorsToStateDict()",
    "strct",
    ["strict", "source"],
  );
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.safetensors`;
    await assert.rejects(
      () => saveStateDict(model, path, { meta: {} } as never),
      /saveStateDict\(\) has no option "meta"/,
    );
    await saveStateDict(model, path, { metadata: { note: "ok" }, indexDType: "I32" });
    await assert.rejects(
      () => loadStateDict(model, path, { strct: false } as never),
      /loadStateDict\(\) has no option "strct"/,
    );
    await loadStateDict(model, path, { strict: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertRejects(
    () => kernelScratchPeakBytes({ clear: true } as never),
    "kernelScratchPeakBytes()",
    "clear",
    ["reset"],
  );
});
