/**
 * The README's error contract, swept over the public API: a value of the wrong kind where a
 * number, a boolean or one of a few strings is taken is a TypeError that names the argument and
 * says what was given (`the string "2"`, `null`, `Array`, `bigint 2`), never a RangeError "got
 * 2" (as if the number 2 were refused), a raw JavaScript error, or a silent default (null is not
 * "use the default": only undefined is). Each row is first called with a valid value, which
 * must work. CUDA rows run without a GPU too: the argument is checked before the library loads.
 */
import assert from "node:assert/strict";
import * as sl from "../mod.ts";
import { epochStats } from "./_epoch_stats.ts";

// deno-lint-ignore no-explicit-any
type Call = (v: any) => unknown;
type Kind = "number" | "boolean" | "choice";
/**
 * A row: the argument's name as messages give it, its kind, a valid value, the call, and the
 * wrong kinds it documents as meaningful (`sum(x, null)`, a bigint seed), which are not tried.
 */
type Row = [name: string, kind: Kind, valid: unknown, call: Call, meaningful?: unknown[]];

/** No valid call here (no GPU, no MNIST files): only the refusals are checked. */
const NO_VALID_CALL = Symbol("no valid call");

/** The wrong kinds tried for each kind of argument, with what the message must say of each. */
const WRONG: Record<Kind, [unknown, RegExp][]> = {
  number: [
    ["2", /the string "2"/],
    [null, /\bnull\b/],
    [true, /boolean true/],
    [[2], /Array/],
    [{}, /Object/],
    [2n, /bigint 2/],
  ],
  boolean: [["false", /"false"/], [0, /\b0\b/], [null, /\bnull\b/]],
  choice: [[2, /\b2\b/], [null, /\bnull\b/]],
};

/** The rows whose call fails as it should not: "name <- value: what happened". */
async function failures(rows: Row[]): Promise<string[]> {
  const out: string[] = [];
  for (const [name, kind, valid, call, meaningful = []] of rows) {
    if (valid !== NO_VALID_CALL) {
      try {
        await call(valid);
      } catch (err) {
        out.push(`${name} <- ${String(valid)} (valid): threw ${err}`);
        continue;
      }
    }
    for (const [value, says] of WRONG[kind]) {
      if (meaningful.includes(value)) continue;
      const shown = typeof value === "bigint" ? "2n" : JSON.stringify(value);
      let err: unknown = null;
      try {
        await call(value);
      } catch (e) {
        err = e;
      }
      const message = (err as Error | null)?.message ?? "";
      const ok = err instanceof TypeError && message.includes(name) && says.test(message) &&
        !/Cannot (read|convert|mix)|is not (iterable|a function)|serialize a BigInt/.test(message);
      if (!ok) out.push(`${name} <- ${shown}: ${err === null ? "accepted" : String(err)}`);
    }
  }
  return out;
}

const x2 = () => sl.tensor([[1, 2], [3, 4]]);
const csr = () => ({
  nRows: 2,
  nCols: 2,
  rowPtr: new Int32Array([0, 1, 2]),
  colIdx: new Int32Array([0, 1]),
});
const sparse = (options: sl.SparseLinearOptions = {}) =>
  new sl.SparseLinear(4, 4, { sparsity: 0.5, seed: 1, ...options });
const dynamic = () => sparse({ dynamic: true, growth: "set" });
const model = () => new sl.Sequential(new sl.Linear(2, 2, { seed: 1 }));
const params = () => [sl.zeros([2], { requiresGrad: true })];
const shape = { inFeatures: 4, outFeatures: 4, nnz: 8 };

Deno.test("tensors, ops and layers: a wrong kind of number, flag or choice is a TypeError", async () => {
  const rows: Row[] = [
    ["device", "choice", "cpu", (v) => sl.zeros([2], { device: v })],
    ["Seed", "number", 1, (v) => sl.rand([2], { seed: v })],
    ["full() value", "number", 2, (v) => sl.full([2], v)],
    ["add() b", "number", 2, (v) => sl.add(x2(), v)],
    ["mulScalar() s", "number", 2, (v) => sl.mulScalar(x2(), v)],
    ["pow() exponent", "number", 2, (v) => sl.pow(x2(), v)],
    ["logSoftmax() axis", "number", 1, (v) => sl.logSoftmax(x2(), v)],
    ["sum() axis", "number", 1, (v) => sl.sum(x2(), v), [null]],
    ["squeeze() dim", "number", 0, (v) => sl.squeeze(sl.zeros([1, 2]), v)],
    ["unsqueeze() dim", "number", 0, (v) => sl.unsqueeze(x2(), v)],
    ["transpose() dim1", "number", 1, (v) => sl.transpose(x2(), 0, v)],
    ["permute() dim", "number", 1, (v) => sl.permute(x2(), [v, 0])],
    ["Seed", "number", 1, (v) => new sl.Linear(2, 2, { seed: v })],
    ["normalizedShape entries", "number", 2, (v) => new sl.LayerNorm([v])],
    ["flatten() startDim", "number", 0, (v) => sl.flatten(x2(), v)],
    ["flatten() endDim", "number", 1, (v) => sl.flatten(x2(), 0, v)],
    ["Flatten startDim", "number", 1, (v) => new sl.Flatten({ startDim: v })],
    ["Flatten endDim", "number", -1, (v) => new sl.Flatten({ endDim: v })],
    ["Seed", "number", 1, (v) => new sl.Dropout(0.5, { seed: v })],
    ["repeatInterleave() repeats", "number", 2, (v) => sl.repeatInterleave(x2(), v, 1)],
    ["repeatInterleave() dim", "number", 1, (v) => sl.repeatInterleave(x2(), 2, v)],
    ["RepeatInterleave repeats", "number", 2, (v) => new sl.RepeatInterleave(v)],
    ["RepeatInterleave dim", "number", 1, (v) => new sl.RepeatInterleave(2, { dim: v })],
    ["groupSum() size", "number", 2, (v) => sl.groupSum(sl.zeros([2, 4]), v)],
    ["GroupSum size", "number", 2, (v) => new sl.GroupSum(v)],
    ["ScaleShift features", "number", 2, (v) => new sl.ScaleShift(v)],
    ["inFeatures", "number", 4, (v) => new sl.SparseLinear(v, 4, { sparsity: 0.5 })],
    ["Seed", "number", 1, (v) => sparse({ seed: v })],
    ["bias", "boolean", false, (v) => sparse({ bias: v })],
    ["smallWorld", "boolean", true, (v) => sparse({ smallWorld: v })],
    ["dynamic", "boolean", true, (v) => sparse({ dynamic: v })],
    ["deltaT", "number", 10, (v) => sparse({ dynamic: true, deltaT: v })],
    ["tEnd", "number", 10, (v) => sparse({ dynamic: true, tEnd: v })],
    ["alpha", "number", 0.3, (v) => sparse({ dynamic: true, alpha: v })],
    ["maxSize", "number", 100, (v) => sparse({ dynamic: true, maxSize: v })],
    ["growth", "choice", "set", (v) => sparse({ dynamic: true, growth: v })],
    ["positionOf() row", "number", 0, (v) => sparse().pattern.positionOf(v, 0)],
    ["positionOf() col", "number", 0, (v) => sparse().pattern.positionOf(0, v)],
    ["actSparsity", "number", 0.5, (v) => new sl.ActivationSparsity({ actSparsity: v })],
    ["alpha", "number", 0.5, (v) => new sl.ActivationSparsity({ alpha: v })],
    [
      "boostStrengthFactor",
      "number",
      0.5,
      (v) => new sl.ActivationSparsity({ boostStrengthFactor: v }),
    ],
    [
      "namedParameters() removeDuplicate",
      "boolean",
      false,
      (v) => model().namedParameters("", { removeDuplicate: v }),
    ],
    [
      "namedBuffers() removeDuplicate",
      "boolean",
      false,
      (v) => model().namedBuffers("", { removeDuplicate: v }),
    ],
    [
      "namedModules() removeDuplicate",
      "boolean",
      false,
      (v) => model().namedModules("", { removeDuplicate: v }),
    ],
    ["Sequential index", "number", 0, (v) => model().at(v)],
  ];
  assert.deepEqual(await failures(rows), []);
});

Deno.test("optimizers and schedules: a wrong kind of setting is a TypeError", async () => {
  const sgd = () => new sl.SGD(params(), { lr: 0.1 });
  const rows: Row[] = [
    ["momentum", "number", 0.9, (v) => new sl.SGD(params(), { lr: 0.1, momentum: v })],
    ["dampening", "number", 0.1, (v) => new sl.SGD(params(), { lr: 0.1, dampening: v })],
    ["weightDecay", "number", 0.1, (v) => new sl.SGD(params(), { lr: 0.1, weightDecay: v })],
    [
      "nesterov",
      "boolean",
      true,
      (v) => new sl.SGD(params(), { lr: 0.1, momentum: 0.9, nesterov: v }),
    ],
    ["lr", "number", 0.1, (v) => new sl.Adam(params(), { lr: v })],
    ["eps", "number", 1e-8, (v) => new sl.Adam(params(), { eps: v })],
    ["weightDecay", "number", 0.1, (v) => new sl.AdamW(params(), { weightDecay: v })],
    ["amsgrad", "boolean", true, (v) => new sl.Adam(params(), { amsgrad: v })],
    ["minLr", "number", 0.01, (v) => sl.cosineSchedule(sgd(), { totalSteps: 10, minLr: v })],
    ["gamma", "number", 0.5, (v) => sl.stepSchedule(sgd(), { stepSize: 10, gamma: v })],
  ];
  assert.deepEqual(await failures(rows), []);
});

Deno.test("connectivity, ERK, top-k and RigL helpers: a wrong kind is a TypeError", async () => {
  const conn = [[0, 1], [1, 0]];
  const grow = { rows: new Int32Array([0]), cols: new Int32Array([1]) };
  const rigl = (batch: number, maxSize: number) => ({
    kind: "rigl" as const,
    x: new Float32Array(4),
    dy: new Float32Array(4),
    batch,
    maxSize,
  });
  const rows: Row[] = [
    ["inFeatures", "number", 4, (v) => sl.randomConnectionCount(v, 4, 0.5)],
    ["outFeatures", "number", 4, (v) => sl.randomConnectionCount(4, v, 0.5)],
    ["inFeatures", "number", 4, (v) => sl.randomConnectivity(v, 4, 4)],
    ["outFeatures", "number", 4, (v) => sl.randomConnectivity(4, v, 4)],
    ["nnz", "number", 4, (v) => sl.randomConnectivity(4, 4, v)],
    ["Seed", "number", 1, (v) => sl.randomConnectivity(4, 4, 4, { seed: v })],
    ["inFeatures", "number", 2, (v) => sl.checkConnectivity(conn, v, 2)],
    ["outFeatures", "number", 2, (v) => sl.userConnectivity(conn, 2, v)],
    ["inFeatures", "number", 8, (v) => sl.smallWorldConnectivity(v, 8, 0.5, { seed: 1 })],
    ["Seed", "number", 1, (v) => sl.smallWorldConnectivity(8, 8, 0.5, { seed: v })],
    ["outFeatures", "number", 8, (v) => sl.smallWorldPattern(8, v, 0.5, { seed: 1 })],
    ["smallWorldDistance() a", "number", 1, (v) => sl.smallWorldDistance(v, 2, 8, 8)],
    ["smallWorldDistance() outFeatures", "number", 8, (v) => sl.smallWorldDistance(1, 2, 8, v)],
    [
      "nRows",
      "number",
      2,
      (v) => sl.SparsePattern.fromCsr(v, 2, new Int32Array([0, 1, 2]), new Int32Array([0, 1])),
    ],
    ["density", "number", 0.5, (v) => sl.erkSparsities([[4, 4]], v)],
    ["layers[0] entries", "number", 4, (v) => sl.erkSparsities([[v, 4]], 0.5)],
    ["powerScale", "number", 1, (v) => sl.erkSparsities([[4, 4]], 0.5, { powerScale: v })],
    [
      "custom[0]",
      "number",
      0.5,
      (v) => sl.erkSparsities([[4, 4], [4, 4]], 0.5, { custom: [v] }),
      [null],
    ],
    ["k", "number", 1, (v) => sl.topk(new Float32Array([1, 2]), v)],
    [
      "topk() smallest",
      "boolean",
      true,
      (v) => sl.topk(new Float32Array([1, 2]), 1, { smallest: v }),
    ],
    ["topk() abs", "boolean", true, (v) => sl.topk(new Float32Array([1, 2]), 1, { abs: v })],
    ["k", "number", 1, (v) => sl.sampleAbsent(csr(), v, 1)],
    [
      "sampleAbsent() seed",
      "number",
      1,
      (v) => sl.sampleAbsent(csr(), 1, v),
      [2n],
    ],
    [
      "sampleAbsent() pattern.nRows",
      "number",
      2,
      (v) => sl.sampleAbsent({ ...csr(), nRows: v }, 1, 1),
    ],
    [
      "batch",
      "number",
      1,
      (v) => sl.denseGradTopk(csr(), new Float32Array(2), new Float32Array(2), v, 1, 4),
    ],
    [
      "maxSize",
      "number",
      4,
      (v) => sl.denseGradTopk(csr(), new Float32Array(2), new Float32Array(2), 1, 1, v),
    ],
    [
      "csrDropGrow() regrownKeepPast",
      "boolean",
      false,
      (v) => sl.csrDropGrow(csr(), null, new Int32Array([0]), grow, v),
    ],
    ["dropFraction() t", "number", 1, (v) => sl.dropFraction(v, 0.3, 10)],
    ["dropFraction() tEnd", "number", 10, (v) => sl.dropFraction(1, 0.3, v)],
    ["isUpdateStep() t", "number", 1, (v) => sl.isUpdateStep(v, 1, 10)],
    ["isUpdateStep() deltaT", "number", 1, (v) => sl.isUpdateStep(1, v, 10)],
    ["inFeatures", "number", 4, (v) => sl.resolveDynamicOptions({ dynamic: true }, v)],
    ["growth", "choice", "set", (v) => sl.resolveDynamicOptions({ dynamic: true, growth: v }, 4)],
    [
      "sampleAbsent() seed",
      "number",
      1,
      (v) => sl.pruneAndGrow(dynamic(), 1, { kind: "set", seed: v }),
      [2n],
    ],
    ["batch", "number", 1, (v) => sl.pruneAndGrow(dynamic(), 1, rigl(v, 16))],
    ["maxSize", "number", 16, (v) => sl.pruneAndGrow(dynamic(), 1, rigl(1, v))],
    [
      "DynamicSparsity seed",
      "number",
      1,
      (v) => new sl.DynamicSparsity(dynamic(), sl.DYNAMIC_DEFAULTS, v),
    ],
    [
      "DynamicSparsity settings.deltaT",
      "number",
      10,
      (v) => new sl.DynamicSparsity(dynamic(), { ...sl.DYNAMIC_DEFAULTS, deltaT: v }, 1),
    ],
    [
      "DynamicSparsity settings.growth",
      "choice",
      "set",
      (v) => new sl.DynamicSparsity(dynamic(), { ...sl.DYNAMIC_DEFAULTS, growth: v }, 1),
    ],
  ];
  assert.deepEqual(await failures(rows), []);
});

Deno.test("memory estimates and device settings: a wrong kind is a TypeError", async () => {
  const rows: Row[] = [
    ["inFeatures", "number", 4, (v) => sl.sparseLinearMemory({ ...shape, inFeatures: v })],
    ["nnz", "number", 8, (v) => sl.sparseLinearMemory({ ...shape, nnz: v })],
    ["shape.bias", "boolean", false, (v) => sl.sparseLinearMemory({ ...shape, bias: v })],
    ["gradients", "boolean", true, (v) => sl.sparseLinearMemory(shape, { gradients: v })],
    ["indices", "boolean", true, (v) => sl.sparseLinearMemory(shape, { indices: v })],
    ["cscView", "boolean", true, (v) => sl.sparseLinearMemory(shape, { cscView: v })],
    ["optimizer", "choice", "adam", (v) => sl.sparseLinearMemory(shape, { optimizer: v })],
    ["kernelTileColumns() batch", "number", 4, (v) => sl.kernelTileColumns(v)],
    ["sparseKernelScratch() call", "choice", "forward", (v) => sl.sparseKernelScratch(v, shape, 2)],
    ["kernelTileColumns() batch", "number", 2, (v) => sl.sparseKernelScratch("forward", shape, v)],
    [
      "sparseKernelScratch() threads",
      "number",
      2,
      (v) => sl.sparseKernelScratch("input gradient (CSR pattern)", shape, 2, v),
    ],
    [
      "sparseKernelScratch() shape.nnz",
      "number",
      8,
      (v) => sl.sparseKernelScratch("both gradients", { ...shape, nnz: v }, 2),
    ],
    ["batch", "number", 2, (v) => sl.sparseLinearActivations(4, 4, v)],
    ["inputGrad", "boolean", false, (v) => sl.sparseLinearActivations(4, 4, 2, { inputGrad: v })],
    ["nnz", "number", 8, (v) => sl.sparseLinearActivations(4, 4, 2, { nnz: v })],
    ["threads", "number", 2, (v) => sl.sparseLinearActivations(4, 4, 2, { threads: v })],
    ["kind", "choice", "user", (v) => sl.constructionPeakBytes(shape, v)],
    ["k", "number", 1, (v) => sl.pruneAndGrowExtraBytes(shape, { k: v, growth: "set" })],
    ["growth", "choice", "set", (v) => sl.pruneAndGrowExtraBytes(shape, { k: 1, growth: v })],
    [
      "maxSize",
      "number",
      16,
      (v) => sl.pruneAndGrowExtraBytes(shape, { k: 1, growth: "rigl", maxSize: v }),
    ],
    [
      "batch",
      "number",
      2,
      (v) => sl.pruneAndGrowExtraBytes(shape, { k: 1, growth: "rigl", batch: v }),
    ],
    [
      "optimizer",
      "choice",
      "adam",
      (v) => sl.pruneAndGrowExtraBytes(shape, { k: 1, growth: "set", optimizer: v }),
    ],
    ["checkMemoryFits() bytes", "number", 1, (v) => sl.checkMemoryFits(v, "a test")],
    ["inFeatures", "number", 4, (v) => sl.checkSparseLinearFits(v, 4, { sparsity: 0.5 })],
    ["sparsity", "number", 0.5, (v) => sl.checkSparseLinearFits(4, 4, { sparsity: v })],
    ["smallWorld", "boolean", true, (v) => sl.checkSparseLinearFits(4, 4, { smallWorld: v })],
    ["bias", "boolean", false, (v) => sl.checkSparseLinearFits(4, 4, { bias: v })],
    ["setMemoryCheck()", "boolean", true, (v) => sl.setMemoryCheck(v)],
    ["cudaDeviceInfo() index", "number", NO_VALID_CALL, (v) => sl.cudaDeviceInfo(v)],
    [
      "reclaimDeviceMemory() collect",
      "boolean",
      false,
      (v) => sl.reclaimDeviceMemory({ collect: v }),
    ],
  ];
  assert.deepEqual(await failures(rows), []);
});

Deno.test("data, checkpoints, plots and training helpers: a wrong kind is a TypeError", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/model.safetensors`;
  await sl.saveStateDict(model(), path);
  const bx = () => sl.zeros([4, 2]);
  const by = () => new Int32Array(4);
  const one = new Int32Array([0, 1]);
  const series = [{ name: "loss", values: [1, 2] }];
  const stats = epochStats();
  const sink = { isTerminal: false, write() {} };
  const fit = (options: Record<string, unknown>) => {
    const m = new sl.Linear(2, 2, { seed: 1 });
    const train = [{ x: x2(), y: new Int32Array([0, 1]), size: 2 }];
    return sl.fit(m, {
      optimizer: new sl.SGD(m, { lr: 0.1 }),
      loss: sl.crossEntropy,
      train,
      epochs: 1,
      log: null,
      progress: false,
      ...options,
    });
  };
  const rows: Row[] = [
    ["batchSize", "number", 2, (v) => sl.batches(bx(), by(), { batchSize: v })],
    ["Seed", "number", 1, (v) => sl.batches(bx(), by(), { batchSize: 2, shuffle: true, seed: v })],
    ["device", "choice", "cpu", (v) => sl.batches(bx(), by(), { batchSize: 2, device: v })],
    [
      "encodeIdx() shape entries",
      "number",
      2,
      (v) => sl.encodeIdx({ dtype: "uint8", shape: [v], data: new Uint8Array(2) }),
    ],
    [
      "normalize.mean",
      "number",
      NO_VALID_CALL,
      (v) => sl.loadMnist({ dir, normalize: { mean: v, std: 0.3 } }),
    ],
    ["dtypeSize() dtype", "choice", "F32", (v) => sl.dtypeSize(v)],
    ["halfToNumber() bits", "number", 15360, (v) => sl.halfToNumber(v)],
    [
      'Tensor "a" shape',
      "number",
      2,
      (v) => sl.encodeSafetensors({ a: { dtype: "F32", shape: [v], data: new Float32Array(2) } }),
    ],
    [
      "indexDType",
      "choice",
      "I32",
      (v) => sl.stateDictToSafetensors(model().stateDict(), { indexDType: v }),
    ],
    [
      "safetensorsToStateDict() strict",
      "boolean",
      false,
      (v) =>
        sl.safetensorsToStateDict(
          sl.stateDictToSafetensors(model().stateDict()),
          model().stateDict(),
          {
            strict: v,
          },
        ),
    ],
    ["indexDType", "choice", "I32", (v) => sl.saveStateDict(model(), path, { indexDType: v })],
    [
      "loadStateDict() strict",
      "boolean",
      false,
      (v) => sl.loadStateDict(model(), path, { strict: v }),
    ],
    ["lineChart() yMin", "number", 0, (v) => sl.lineChart({ series, yMin: v })],
    ["lineChart() yMax", "number", 3, (v) => sl.lineChart({ series, yMax: v })],
    ["lineChart() x[0]", "number", 0, (v) => sl.lineChart({ series, x: [v, 1] })],
    [
      'lineChart() series "loss" values[0]',
      "number",
      1,
      (v) => sl.lineChart({ series: [{ name: "loss", values: [v, 2] }] }),
      [null], // a gap, as NaN
    ],
    ["nOut", "number", 2, (v) => sl.connectivityDensity(one, one, v, 2, { binsX: 2, binsY: 2 })],
    [
      "connectivityDensity() binsY",
      "number",
      2,
      (v) => sl.connectivityDensity(one, one, 2, 2, { binsX: 2, binsY: v }),
    ],
    ["width", "number", 20, (v) => sl.connectivityImage(one, one, 2, 2, { width: v })],
    ["height", "number", 20, (v) => sl.connectivityPng(one, one, 2, 2, { height: v })],
    ["nIn", "number", 2, (v) => sl.connectivitySvg(one, one, 2, v)],
    ["scale", "choice", "sqrt", (v) => sl.connectivitySvg(one, one, 2, 2, { scale: v })],
    [
      "encodePng() width",
      "number",
      1,
      (v) => sl.encodePng({ width: v, height: 1, pixels: new Uint8Array(3), channels: 3 }),
    ],
    [
      "encodePng() channels",
      "number",
      3,
      (v) => sl.encodePng({ width: 1, height: 1, pixels: new Uint8Array(3), channels: v }),
    ],
    ["epochs", "number", 3, (v) => sl.formatEpoch(stats, v)],
    ["formatDuration() seconds", "number", 3, (v) => sl.formatDuration(v)],
    ["formatBytes() bytes", "number", 3, (v) => sl.formatBytes(v)],
    ["ProgressBar total", "number", 3, (v) => new sl.ProgressBar("a", v, { sink })],
    ["ProgressBar barWidth", "number", 3, (v) => new sl.ProgressBar("a", 3, { sink, barWidth: v })],
    [
      "ProgressBar.update() done",
      "number",
      1,
      (v) => new sl.ProgressBar("a", 3, { sink }).update(v),
    ],
    ["epochs", "number", 1, (v) => fit({ epochs: v })],
    ["fit() progress", "boolean", false, (v) => fit({ progress: v })],
  ];
  try {
    assert.deepEqual(await failures(rows), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
