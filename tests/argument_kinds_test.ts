/**
 * Arguments of the wrong kind (missing, undefined, a summary for a model, ...) get a TypeError
 * naming the argument and what it takes, never a raw JavaScript error from inside; the right
 * kind still works. Also the tensor printout (`String(t)`, `console.log(t)`).
 */
import assert from "node:assert/strict";
import type { HostStorage } from "../lib/backend/cpu.ts";
import * as sl from "../mod.ts";
import { epochStats } from "./_epoch_stats.ts";

// deno-lint-ignore no-explicit-any
const U = undefined as any;

/** Asserts `fn` throws a TypeError whose message matches each of `patterns`. */
function assertTypeError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${err}`);
    for (const p of patterns) assert.match(err.message, p);
    assert.doesNotMatch(err.message, /Cannot (read|convert)|is not (iterable|a function)/);
    return true;
  });
}

async function assertRejectsTypeError(fn: () => Promise<unknown>, ...patterns: RegExp[]) {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${err}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

Deno.test("summarize and summaryTable: a missing model is named; a summary is accepted", () => {
  assertTypeError(() => sl.summarize(U), /summarize\(\) model must be a Module/, /got undefined/);
  assertTypeError(() => sl.summaryTable(U), /summaryTable\(\) model/, /summarize\(model\)/);
  assertTypeError(
    () => sl.summaryTable({ layers: 3 } as never),
    /summaryTable\(\) model/,
    /Object/,
  );
  const model = new sl.Sequential(new sl.Linear(4, 3, { seed: 0 }), new sl.ReLU());
  assert.equal(sl.summaryTable(sl.summarize(model)), sl.summaryTable(model));
});

Deno.test("stepDynamicSparsity, evaluate and fit name a missing model or data", async () => {
  assertTypeError(() => sl.stepDynamicSparsity(U), /stepDynamicSparsity\(\) model must be/);
  const model = new sl.Linear(2, 2, { seed: 0 });
  assertTypeError(() => sl.evaluate(U, [], sl.crossEntropy), /evaluate\(\) model must be/);
  assertTypeError(
    () => sl.evaluate(model, U, sl.crossEntropy),
    /evaluate\(\) data must be an iterable of batches/,
    /got undefined/,
  );
  assertTypeError(() => sl.evaluate(model, [], U), /evaluate\(\) loss must be a function/);
  await assertRejectsTypeError(
    () => sl.fit(U, { optimizer: new sl.SGD(model, { lr: 0.1 }), loss: sl.crossEntropy } as never),
    /fit\(\) model must be a Module/,
  );
  const data = [{ x: sl.tensor([[1, 0], [0, 1]]), y: new Int32Array([0, 1]), size: 2 }];
  assert.equal(sl.evaluate(model, data, sl.crossEntropy).examples, 2);
  assert.equal(sl.stepDynamicSparsity(model).size, 0);
});

Deno.test("state dict I/O names a missing module, state or path", async () => {
  const model = new sl.Linear(2, 2, { seed: 0 });
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await assertRejectsTypeError(
      () => sl.saveStateDict(U, path),
      /saveStateDict\(\) module must be a Module or a state dict/,
    );
    await assertRejectsTypeError(
      () => sl.saveStateDict(model, U),
      /saveStateDict\(\) path must be a non-empty string, got undefined/,
    );
    await assertRejectsTypeError(
      () => sl.loadStateDict(U, path),
      /loadStateDict\(\) module must be a Module/,
    );
    // The same wording as saveStateDict, not "Cannot read "undefined"": no file is opened.
    await assertRejectsTypeError(
      () => sl.loadStateDict(model, U),
      /loadStateDict\(\) path must be a non-empty string, got undefined/,
    );
    await assertRejectsTypeError(
      () => sl.loadStateDict(model, ""),
      /loadStateDict\(\) path must be a non-empty string, got the string ""/,
    );
    await assertRejectsTypeError(() => sl.loadSafetensors(U), /Path must be a non-empty string/);
    assertTypeError(() => sl.stateDictToSafetensors(U), /stateDictToSafetensors\(\) state/);
    assertTypeError(() => sl.safetensorsToStateDict(U), /safetensorsToStateDict\(\) tensors/);
    await sl.saveStateDict(model, path);
    await sl.loadStateDict(model, path);
    const entries = sl.stateDictToSafetensors(model.stateDict());
    assert.deepEqual(Object.keys(sl.safetensorsToStateDict(entries)).sort(), ["bias", "weight"]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("optimizers name missing params and a missing or non-number lr", () => {
  const p = sl.zeros([2], { requiresGrad: true });
  assertTypeError(() => new sl.SGD(U, { lr: 0.1 }), /SGD params must be a Module or an array/);
  assertTypeError(() => new sl.Adam(U), /Adam params must be a Module/, /got undefined/);
  assertTypeError(() => new sl.AdamW("ab" as never), /AdamW params/, /the string "ab"/);
  assertTypeError(() => new sl.SGD([p], {} as never), /SGD needs lr/);
  assertTypeError(() => new sl.SGD([p], { lr: "0.1" as never }), /Invalid lr: the string "0.1"/);
  assertTypeError(() => new sl.SGD([1] as never, { lr: 0.1 }), /parameter 0 must be a Tensor/);
  assert.throws(() => new sl.SGD([p], { lr: -1 }), RangeError);
  assert.equal(new sl.SGD([p], { lr: 0.1 }).lr, 0.1);
  assert.equal(new sl.Adam(new sl.Linear(2, 2)).lr, 1e-3);
});

Deno.test("plots, metrics, IDX, memory and tensors name a missing argument", () => {
  assertTypeError(() => sl.lineChart(U), /lineChart\(\) options must be an object/);
  assertTypeError(() => sl.formatEpoch(U, 1), /formatEpoch\(\) stats must be an EpochStats/);
  assertTypeError(
    () => sl.formatEpoch({ epoch: 1 } as never, 1),
    /formatEpoch\(\) stats.trainLoss/,
  );
  assertTypeError(() => sl.countCorrect(U, U), /countCorrect\(\) logits must be a Tensor/);
  assertTypeError(() => sl.encodeIdx(U), /encodeIdx\(\) idx must be \{ dtype, shape, data \}/);
  assertTypeError(() => sl.readIdxSync(U), /readIdxSync\(\) path must be a non-empty string/);
  assertTypeError(() => sl.sparseLinearMemory(U), /sparseLinearMemory\(\) shape must be/);
  assertTypeError(() => new sl.Tensor(U, [2]), /Tensor storage must be a Storage, got undefined/);
  assertTypeError(
    () => new sl.Tensor(new Float32Array(2) as never, [2]),
    /got Float32Array/,
    /tensor\(\)/,
  );
  // describeValue says "undefined", not "undefined undefined".
  for (
    const fn of [
      () => sl.checkConnectivity(U, 2, 2),
      () => sl.noGrad(U),
      () => new sl.IndexTensor(U, [2]),
    ]
  ) {
    assertTypeError(fn, /got undefined$/);
  }
  const stats = epochStats();
  assert.match(sl.formatEpoch(stats, 3), /^epoch 1\/3 {2}train loss 0\.5000/);
  assert.equal(sl.countCorrect(sl.tensor([[1, 0], [0, 1]]), new Int32Array([0, 0])), 1);
  assert.ok(sl.lineChart({ series: [{ name: "loss", values: [1, 0.5] }] }).startsWith("<svg"));
});

Deno.test("linear, layerNorm, LayerNorm, Linear and permute: a wrong kind is a TypeError", () => {
  const x = sl.tensor([[1, 2]]);
  const w = sl.tensor([[1, 0], [0, 1]]);
  // Not a Tensor at all: a TypeError, not a ShapeError (RangeError) about its shape.
  assertTypeError(() => sl.linear(x, U), /linear\(\) weight must be a Tensor/, /got undefined/);
  assertTypeError(() => sl.linear(x, [[1, 0]] as never), /linear\(\) weight must be a Tensor/);
  assertTypeError(() => sl.linear(x, w, [0, 0] as never), /linear\(\) bias must be a Tensor/);
  assert.throws(() => sl.linear(x, sl.tensor([1, 2])), sl.ShapeError); // a Tensor, wrong shape
  assert.throws(() => sl.linear(x, w, sl.tensor([0])), sl.ShapeError);
  // A string is not a number: "must be >= 0, got 1e-3" would mislead.
  assertTypeError(() => sl.layerNorm(x, [2], null, null, "1e-3" as never), /eps must be a number/);
  assertTypeError(() => new sl.LayerNorm(2, { eps: "1e-3" as never }), /eps must be a number/);
  assert.throws(() => sl.layerNorm(x, [2], null, null, -1), RangeError);
  assertTypeError(() => new sl.Linear("3" as never, 2), /inFeatures must be a number/);
  assertTypeError(() => new sl.Linear(3, U), /outFeatures must be a number/, /got undefined/);
  assert.throws(() => new sl.Linear(3.5, 2), RangeError);
  assertTypeError(() => sl.permute(w, "10" as never), /permute\(\) dims must be an array/);
  assertTypeError(() => sl.permute(w, U), /permute\(\) dims must be an array/);
  assert.throws(() => sl.permute(w, [0]), RangeError);
});

Deno.test("crossEntropy and mseLoss: a reduction that is not a string is a TypeError", () => {
  const z = sl.tensor([[1, 2]]);
  const labels = new Int32Array([1]);
  assertTypeError(
    () => sl.crossEntropy(z, labels, { reduction: 1 as never }),
    /crossEntropy\(\) reduction must be "mean", "sum" or "none", got number 1/,
  );
  assertTypeError(() => sl.mseLoss(z, z, { reduction: null as never }), /got null/);
  // A string, but not one of the three: a value out of range.
  assert.throws(() => sl.mseLoss(z, z, { reduction: "avg" as never }), RangeError);
  assert.throws(() => sl.mseLoss(z, z, { reduction: "avg" as never }), /got "avg"/);
});

Deno.test("a tensor prints its values, shape, device and grad state", () => {
  const inspect = (t: sl.Tensor) => Deno.inspect(t);
  assert.equal(
    String(sl.tensor([[1.5, -2], [3, 4]], undefined, { requiresGrad: true })),
    "Tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.0000]], shape=[2, 2], device=cpu, " +
      "requiresGrad=true)",
  );
  assert.equal(inspect(sl.tensor([1, 2])), "Tensor([1., 2.], shape=[2], device=cpu)");
  assert.equal(inspect(sl.tensor(0.25)), "Tensor(0.2500, shape=[], device=cpu)");
  // Non-finite values and signed zeros as PyTorch prints them: the common width is that of the
  // nonzero finite values.
  assert.equal(
    String(sl.tensor([NaN, -0, Infinity, -Infinity, 1.5])),
    "Tensor([   nan, -0.0000,    inf,   -inf, 1.5000], shape=[5], device=cpu)",
  );
  // PyTorch's _Formatter: exponent form (two exponent digits) when the largest magnitude is
  // above 1e8 or 1000 times the smallest, or a non-integer below 1e-4; ties round to even.
  const values = (t: sl.Tensor) => String(t).replace(/, shape=.*$/, "");
  assert.equal(values(sl.tensor([0.001, 10])), "Tensor([1.0000e-03, 1.0000e+01]");
  assert.equal(values(sl.tensor([1, 12345])), "Tensor([1.0000e+00, 1.2345e+04]");
  assert.equal(values(sl.tensor([1e9, -1])), "Tensor([ 1.0000e+09, -1.0000e+00]");
  assert.equal(values(sl.tensor([1, 1000])), "Tensor([   1., 1000.]");
  assert.equal(
    values(sl.tensor([0.03125, 0.09375, -0.03125])),
    "Tensor([ 0.0312,  0.0938, -0.0312]",
  );
  assert.equal(values(sl.tensor([103125, 2])), "Tensor([1.0312e+05, 2.0000e+00]");
  // Rows wrap as _vector_str: floor((80 - column of the row's "[") / (width + 2)) values a line.
  assert.equal(
    values(sl.ones([2, 20])),
    "Tensor([[1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.,\n" +
      "         1., 1.],\n" +
      "        [1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.,\n" +
      "         1., 1.]]",
  );
  const x = sl.tensor([1, 2], undefined, { requiresGrad: true });
  assert.match(String(x.mul(x)), /shape=\[2\], device=cpu, gradFn=\w+\)$/);

  // Large: the first and last three of each dimension, " ..." between (1999 / 1 > 1000: the
  // exponent form, as torch.arange(2000.) prints).
  const big = String(sl.tensor(Array.from({ length: 2000 }, (_, i) => i)));
  assert.equal(
    big,
    "Tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n" +
      "        1.9990e+03], shape=[2000], device=cpu)",
  );
  assert.equal(
    values(sl.full([2000], 7)),
    "Tensor([7., 7., 7.,  ..., 7., 7., 7.]",
  );

  // Released memory: says so, does not throw.
  const released = sl.tensor([1, 2, 3]);
  (released.storage as HostStorage).takeArray();
  assert.match(String(released), /^Tensor\(<values unreadable: .*given back.*>, shape=\[3\]/);
  assert.match(inspect(released), /device=cpu\)$/);
});

Deno.test("an empty tensor prints [] whatever its shape, as PyTorch", () => {
  // torch/_tensor_str.py: _tensor_str returns "[]" when numel() == 0 (torch.zeros(2, 0) prints
  // tensor([], size=(2, 0))); nested brackets per row were printed here instead.
  for (const shape of [[0], [2, 0], [0, 3], [3, 0, 2]]) {
    assert.equal(
      String(sl.zeros(shape)),
      `Tensor([], shape=[${shape.join(", ")}], device=cpu)`,
    );
  }
});

Deno.test({
  name: "a CUDA tensor prints small values, not large ones, and a disposed one says so",
  ignore: !sl.cudaAvailable(),
  fn() {
    assert.equal(String(sl.tensor([1, 2]).to("cuda")), "Tensor([1., 2.], shape=[2], device=cuda)");
    assert.match(String(sl.zeros([2000], { device: "cuda" })), /^Tensor\(<2000 values on cuda/);
    const gone = sl.tensor([1, 2]).to("cuda");
    gone.dispose();
    assert.match(String(gone), /^Tensor\(<values unreadable: .*disposed.*>, shape=\[2\]/);
  },
});
