/**
 * A rejected call changes no state (README, "Errors"): each test makes a call fail and compares
 * everything it could have changed (weights, gradients, optimizer state, step counters, the next
 * random draw, module flags) before and after. Also: settings documented as read-only cannot be
 * assigned at run time (TypeScript's `readonly` is erased), so a bad value cannot get in that
 * way and break a later call.
 */
import assert from "node:assert/strict";
import { full, ones, tensor, zeros } from "../lib/creation.ts";
import { batches } from "../lib/data/batches.ts";
import { ActivationSparsity } from "../lib/nn/activation_sparsity.ts";
import { Dropout } from "../lib/nn/dropout.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { Linear } from "../lib/nn/linear.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { pruneAndGrow } from "../lib/sparsity/rigl.ts";
import { sum } from "../lib/ops/reduce.ts";
import { Adam } from "../lib/optim/adam.ts";
import type { Optimizer } from "../lib/optim/optimizer.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { cosineSchedule, stepSchedule } from "../lib/optim/schedule.ts";
import { setCudaCacheLimit, setCudaDevice, setCudaSyncChecks } from "../lib/backend/cuda.ts";
import { setNumThreads } from "../ffi/library.ts";
import { IndexTensor, type Tensor } from "../lib/tensor.ts";
import { Generator } from "../lib/random.ts";
import { ShapeError } from "../lib/errors.ts";
import { RunningMetrics } from "../lib/train/metrics.ts";
import type { Module } from "../lib/nn/module.ts";
import { type ErrorClass, rejects } from "./_rejects.ts";

const values = (t: Tensor | null) => t === null ? null : Array.from(t.toArray());

/** Parameters, their gradients (read without handing them out: toArray of grad), state. */
function snapshot(model: Module, optimizer?: Optimizer): unknown {
  return {
    parameters: model.namedParameters().map(([name, p]) => [name, values(p), values(p.grad)]),
    training: model.namedModules().map(([name, m]) => [name, m.training]),
    optimizer: optimizer === undefined ? null : Object.entries(optimizer.stateDict()).map((
      [k, v],
    ) => [k, values(v)]),
  };
}

for (
  const make of [(m: Module) => new SGD(m, { lr: 0.1, momentum: 0.9 }), (m: Module) => new Adam(m)]
) {
  const name = make(new Linear(1, 1)).constructor.name;
  Deno.test(`${name}.step() refused for one parameter updates none of the others`, () => {
    // The second layer's weights are replaced (a state dict of another nnz): the optimizer
    // holds a tensor nothing reads and refuses to step. The first layer's parameters come
    // first and were updated before the refusal.
    const first = new Linear(3, 4, { seed: 0 });
    const second = new SparseLinear(4, 2, { sparsity: 0.5, seed: 1 });
    const model = new Sequential(first, second);
    const optimizer = make(model);
    sum(model.forward(ones([2, 3]))).backward();
    optimizer.step(); // some state to compare
    second.loadStateDict(new SparseLinear(4, 2, { sparsity: 0, seed: 2 }).stateDict());
    sum(model.forward(ones([2, 3]))).backward();
    const before = snapshot(model, optimizer);
    rejects(() => optimizer.step(), Error, /Parameter 2 \(shape \[4\]\) is no longer its module's/);
    assert.deepEqual(snapshot(model, optimizer), before);
  });
}

Deno.test("Dropout.forward refused (not a tensor) draws no mask: the next masks are unchanged", () => {
  const a = new Dropout(0.5, { seed: 7 });
  const b = new Dropout(0.5, { seed: 7 });
  rejects(() => a.forward([1, 2] as never), TypeError, /Dropout input must be a Tensor/);
  assert.deepEqual(values(a.forward(ones([64]))), values(b.forward(ones([64]))));
});

Deno.test("settings documented read-only cannot be assigned at run time (TypeError naming them)", () => {
  const linear = new Linear(3, 2, { seed: 0 });
  const sparse = new SparseLinear(6, 4, { sparsity: 0.5, seed: 3, dynamic: true, deltaT: 2 });
  const x = tensor([[1, 2], [3, 4]]);
  // Each of these was taken silently: NaN momentum made the next step's weights NaN, deltaT 0
  // stopped every update, a shape larger than the storage made matmul read past its end.
  const cases: [object, string, unknown][] = [
    [new SGD(linear, { lr: 0.1, momentum: 0.9 }), "momentum", NaN],
    [new SGD(linear, { lr: 0.1 }), "params", []],
    [new SGD(linear, { lr: 0.1 }), "weightDecay", -1],
    [new Adam(linear), "betas", [2, 2]],
    [new Adam(linear), "eps", -1],
    [sparse.dynamicSparsity!, "deltaT", 0],
    [sparse.dynamicSparsity!, "alpha", 5],
    [sparse.dynamicSparsity!, "growth", "grow"],
    [sparse, "dynamicSparsity", null],
    [sparse, "inFeatures", 100],
    [sparse.pattern, "nnz", 1e6],
    [linear, "inFeatures", 50],
    [new LayerNorm(4), "eps", -1],
    [new Dropout(0.5), "p", 2],
    [new ActivationSparsity(), "actSparsity", 2],
    [new ActivationSparsity(), "alpha", -1],
    [batches(zeros([4, 2]), new Int32Array(4), { batchSize: 2 }), "batchSize", 0],
    [x, "shape", [2000000, 2]],
    [x, "storage", zeros([1]).storage],
    [new IndexTensor(new Int32Array(2), [2]), "shape", [1000]],
  ];
  for (const [target, name, bad] of cases) {
    const before = (target as Record<string, unknown>)[name];
    assert.throws(
      () => {
        (target as Record<string, unknown>)[name] = bad;
      },
      (err: unknown) =>
        err instanceof TypeError && err.message.includes(`'${name}'`) ||
        err instanceof TypeError && err.message.includes(`property ${name} `),
      `${target.constructor.name}.${name} = ${String(bad)} was taken`,
    );
    assert.equal((target as Record<string, unknown>)[name], before);
  }
  // The lr stays settable (schedules set it), checked as at construction.
  const sgd = new SGD(linear, { lr: 0.1 });
  rejects(() => (sgd.lr = NaN), RangeError, /Invalid lr: NaN; it must be in \[0, inf\)/);
  assert.equal(sgd.lr, 0.1);
});

Deno.test("a module's training flag takes only a boolean", () => {
  const model = new Sequential(new Linear(3, 2), new Dropout(0.5));
  // "false" was taken by truthiness: the module stayed in training mode.
  rejects(() => (model.training = "false" as never), TypeError, /training must be true or false/);
  rejects(() => (model.training = 0 as never), TypeError, /got number 0/);
  assert.equal(model.training, true);
  model.training = false;
  assert.equal(model.training, false);
  model.train();
  assert.deepEqual(model.namedModules().map(([, m]) => m.training), [true, true, true]);
});

Deno.test("loadStateDict: an entry that is no tensor (undefined included) is named, nothing loads", () => {
  // Each state comes from another model of the same shape (other values), one entry replaced.
  const cases: [(seed: number) => Module, string, unknown, RegExp][] = [
    // Taken as absent though strict: the other weights loaded, the bias stayed as it was.
    [(seed) => new Linear(3, 2, { seed }), "bias", undefined, /"bias" .* got undefined/],
    [(seed) => new SparseLinear(6, 4, { sparsity: 0.5, seed }), "bias", undefined, /undefined/],
    // These said "got an integer IndexTensor" for a value that was none.
    [(seed) => new SparseLinear(6, 4, { sparsity: 0.5, seed }), "bias", null, /got null/],
    [(seed) => new SparseLinear(6, 4, { sparsity: 0.5, seed }), "weights", [1], /got Array/],
    [() => new ActivationSparsity({ features: 10 }), "boostStrength", 5, /got number 5/],
  ];
  for (const [make, key, bad, pattern] of cases) {
    const model = make(1);
    const state = { ...make(2).stateDict(), [key]: bad };
    const before = snapshot(model);
    rejects(
      () => model.loadStateDict(state as never),
      Error,
      /the model is unchanged/,
      new RegExp(`"${key}" must be a Tensor or IndexTensor`),
      pattern,
    );
    assert.deepEqual(snapshot(model), before);
  }
});

Deno.test("optimizer loadStateDict: an array, or an index written otherwise than stateDict's", () => {
  const model = new Linear(3, 2, { seed: 0 });
  const optimizer = new SGD(model, { lr: 0.1, momentum: 0.9 });
  sum(model.forward(ones([2, 3]))).backward();
  optimizer.step();
  const before = snapshot(model, optimizer);
  // An array was taken as an empty state: every momentum buffer was dropped.
  rejects(() => optimizer.loadStateDict([] as never), TypeError, /needs an object/, /got Array/);
  // "state.00.step" was read as parameter 0's, silently overriding "state.0.step".
  const state = { ...optimizer.stateDict(), "state.00.step": tensor(5) };
  rejects(() => optimizer.loadStateDict(state), Error, /unexpected key "state\.00\.step"/);
  assert.deepEqual(snapshot(model, optimizer), before);
});

Deno.test("Generator: bad bounds, deviations, arrays and counts are refused before any draw", () => {
  const g = new Generator(5);
  const out = new Float32Array(4);
  // As torch's uniform_ (from <= to, both finite) and normal_ (std >= 0): these filled the
  // array with values outside [low, high), NaN, or a mirrored normal.
  const cases: [() => unknown, ErrorClass, RegExp][] = [
    [() => g.fillUniform(out, 1, 0), RangeError, /fillUniform\(\) needs low <= high, got low 1/],
    [
      () => g.fillUniform(out, NaN, 1),
      RangeError,
      /low must be finite \(as a float32\), got NaN/,
    ],
    [
      () => g.fillUniform(out, 0, Infinity),
      RangeError,
      /high must be finite .*, got Infinity/,
    ],
    [() => g.fillUniform(out, "0" as never, 1), TypeError, /low must be a number, got the string/],
    [
      () => g.fillUniform([0, 0] as never, 0, 1),
      TypeError,
      /out must be a Float32Array, got Array/,
    ],
    [() => g.fillNormal(out, 0, -1), RangeError, /fillNormal\(\) std must be >= 0, got -1/],
    [() => g.fillNormal(out, 0, NaN), RangeError, /std must be finite \(as a float32\), got NaN/],
    [() => g.fillNormal(out, NaN, 1), RangeError, /mean must be finite \(as a float32\), got NaN/],
    [() => g.shuffle(5 as never), TypeError, /shuffle\(\) needs an array or a typed array, got/],
    [() => g.int("3" as never), TypeError, /int\(\) n must be a number, got the string "3"/],
    [() => g.int(0), RangeError, /positive safe integer n, got 0/],
  ];
  for (const [fn, cls, pattern] of cases) rejects(fn, cls, pattern);
  assert.deepEqual(out, new Float32Array(4));
  // Nothing was drawn: the stream continues where a fresh generator starts.
  assert.equal(g.nextUint32(), new Generator(5).nextUint32());
  // A seed that is a number out of range is a RangeError, as every other range (was TypeError).
  rejects(
    () => new Generator(Infinity),
    RangeError,
    /Seed must be an integer .*, got Infinity/,
  );
  rejects(() => new Generator(NaN), RangeError, /got NaN/);
});

Deno.test("setters and setup calls: a string is a TypeError naming it, a bad number a RangeError", () => {
  const layer = new SparseLinear(6, 4, { sparsity: 0.5, seed: 3, dynamic: true, growth: "set" });
  const dynamic = layer.dynamicSparsity!;
  const optimizer = new SGD(layer, { lr: 0.1 });
  const data = batches(zeros([4, 6]), new Int32Array(4), { batchSize: 2, shuffle: true, seed: 1 });
  // Each of these said "got 3" (or "got 2") for the string "3": a value that looks allowed.
  const kinds: [() => unknown, RegExp][] = [
    [() => (dynamic.stepCount = "3" as never), /stepCount must be a number.*the string "3"/],
    [() => (dynamic.seed = "3" as never), /seed must be a number.*the string "3"/],
    [() => cosineSchedule(optimizer, { totalSteps: "5" as never }), /totalSteps must be a number/],
    [() => stepSchedule(optimizer, { stepSize: "2" as never }), /stepSize must be a number/],
    [() => layer.forwardGroupSum(zeros([1, 6]), "2" as never), /size must be a number/],
    [() => data.skipEpochs("1" as never), /epochs must be a number.*the string "1"/],
    [() => setCudaCacheLimit("1" as never), /setCudaCacheLimit\(\) bytes must be a number/],
    [() => setCudaDevice("0" as never), /CUDA device index must be a number/],
    // "false" is truthy: it turned the checks on (now refused before the CUDA library loads).
    [() => setCudaSyncChecks("false" as never), /setCudaSyncChecks\(\) on must be true or false/],
  ];
  for (const [fn, pattern] of kinds) rejects(fn, TypeError, pattern);
  // A number that is not an allowed count is out of range, not of the wrong kind.
  for (const n of [1.5, NaN, Infinity]) {
    rejects(() => setNumThreads(n), RangeError, /Thread count must be an integer/);
  }
  rejects(() => setNumThreads("2" as never), TypeError, /the string "2"/);
  assert.equal(dynamic.stepCount, 0);
  assert.equal(optimizer.lr, 0.1);
});

Deno.test("setPattern / replacePattern: values or oldIndexOf of the wrong kind are TypeErrors", () => {
  const layer = new SparseLinear(6, 4, { sparsity: 0.5, seed: 3 });
  const rows = new Int32Array([0, 1]), cols = new Int32Array([0, 1]);
  const before = snapshot(layer);
  // These were ShapeErrors saying "got object", as if the length were wrong.
  rejects(
    () => layer.setPattern(rows, cols, [1, 2] as never),
    TypeError,
    /setPattern\(\) values must be a Float32Array \(one value per connection, 2\), got Array/,
  );
  rejects(
    () => layer.setPattern(rows, cols, new Float32Array(2), new Float32Array(2) as never),
    TypeError,
    /oldIndexOf must be an Int32Array \(one entry per connection, 2\), got Float32Array/,
  );
  rejects(
    () => layer.replacePattern(layer.pattern, Array.from(layer.weights.data) as never),
    TypeError,
    /replacePattern\(\) values must be a Float32Array .*got Array/,
  );
  // A wrong count stays a ShapeError.
  rejects(() => layer.setPattern(rows, cols, new Float32Array(3)), ShapeError, /got 3 values/);
  assert.deepEqual(snapshot(layer), before);
});

Deno.test("RunningMetrics.add and Sequential.append refuse what would break later", () => {
  const metrics = new RunningMetrics();
  metrics.add(0.5, 2, 1);
  const before = { ...metrics };
  // A missing correct count made the accuracy NaN; a string size was concatenated ("022").
  rejects(() => metrics.add(0.5, 2, undefined as never), TypeError, /correct must be a count/);
  rejects(() => metrics.add(0.5, "2" as never, null), TypeError, /size must be a number/);
  rejects(() => metrics.add("0.5" as never, 2, null), TypeError, /loss must be a number/);
  rejects(() => metrics.add(0.5, 1.5, null), RangeError, /size must be an integer >= 0/);
  rejects(() => metrics.add(0.5, 2, 3), RangeError, /correct must be an integer in \[0, 2\]/);
  assert.deepEqual({ ...metrics }, before);
  assert.equal(metrics.accuracy, 50);
  // A chain inside itself: every later parameters() overflowed the stack.
  const chain = new Sequential(new Linear(2, 2));
  const outer = new Sequential(chain);
  rejects(() => chain.append(chain), TypeError, /cannot contain itself/);
  rejects(() => chain.append(outer), TypeError, /cannot contain itself/);
  assert.equal(chain.length, 1);
  assert.equal(outer.parameters().length, 2);
});

Deno.test("ActivationSparsity loadStateDict: a dutyCycle of the wrong kind or rank says what it got", () => {
  const layer = new ActivationSparsity({ features: 4 });
  const boostStrength = full([1], 1);
  // Both said only "must be a float tensor of shape [F]".
  rejects(
    () =>
      layer.loadStateDict({ dutyCycle: new IndexTensor(new Int32Array(4), [4]), boostStrength }),
    Error,
    /"dutyCycle" must be a float tensor of shape \[F\], got an IndexTensor/,
  );
  rejects(
    () => layer.loadStateDict({ dutyCycle: zeros([2, 2]), boostStrength }),
    Error,
    /"dutyCycle" must be a float tensor of shape \[F\], got shape \[2, 2\]/,
  );
  assert.deepEqual(values(layer.dutyCycle), [0, 0, 0, 0]);
});

Deno.test("pruneAndGrow names a missing layer or source, an unknown kind and a string k", () => {
  const layer = new SparseLinear(6, 4, { sparsity: 0.5, seed: 3 });
  const before = snapshot(layer);
  const set = { kind: "set" as const, seed: 1n };
  const cases: [() => unknown, RegExp][] = [
    // "Cannot read properties of null (reading 'kind')" / "(reading 'pattern')".
    [() => pruneAndGrow(layer, 1, null as never), /pruneAndGrow\(\) source must be .*got null/],
    [() => pruneAndGrow(undefined as never, 1, set), /pruneAndGrow\(\) layer .*got undefined/],
    // Taken as SET: "sampleAbsent() seed must be an integer ..., got undefined".
    [
      () => pruneAndGrow(layer, 1, { kind: "random" } as never),
      /source\.kind must be "rigl" or "set", got the string "random"/,
    ],
    // "k must be an integer in [0, nnz = 12], got 1".
    [() => pruneAndGrow(layer, "1" as never, set), /pruneAndGrow\(\) k must be a number/],
  ];
  for (const [fn, pattern] of cases) rejects(fn, TypeError, pattern);
  assert.deepEqual(snapshot(layer), before);
});
