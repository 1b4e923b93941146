import assert from "node:assert/strict";
import { join } from "node:path";
import { getBackend } from "../lib/backend/mod.ts";
import { batches } from "../lib/data/batches.ts";
import { NonFiniteLossError, ShapeError } from "../lib/errors.ts";
import { loadStateDict } from "../lib/io/state_dict.ts";
import { ActivationSparsity } from "../lib/nn/activation_sparsity.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { Linear } from "../lib/nn/linear.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { Module } from "../lib/nn/module.ts";
import { Flatten } from "../lib/nn/flatten.ts";
import { Dropout } from "../lib/nn/dropout.ts";
import { mean, sum } from "../lib/ops/reduce.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { fromFloat32, Tensor } from "../lib/tensor.ts";
import { evaluate } from "../lib/train/evaluate.ts";
import { fit } from "../lib/train/fit.ts";
import { countCorrect } from "../lib/train/metrics.ts";
import { formatDuration, ProgressBar } from "../lib/train/progress.ts";
import { summarize, summaryTable } from "../lib/train/summary.ts";
import { MODELS, notebookUserConnectivity, WideMnistNet } from "../examples/models.ts";
import { main, parseTrainArgs, UsageError } from "../examples/train_mnist.ts";
import { runRegression } from "../examples/random_regression.ts";
import { assertThrows } from "./_nn_reference.ts";

/** Awaits `promise` and checks that it rejects with a `cls` whose message matches `pattern`. */
async function assertRejects(
  promise: Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => Error,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

/** Two Gaussian blobs per class in 8 dimensions, 4 classes: separable but not trivially. */
function blobs(count: number, seed: number): { x: Float32Array; y: Int32Array } {
  const gen = new Generator(seed);
  const dim = 8;
  const centres = Array.from(
    { length: 4 },
    () => Array.from({ length: dim }, () => 3 * gen.normal()),
  );
  const x = new Float32Array(count * dim);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const c = gen.int(4);
    y[i] = c;
    for (let d = 0; d < dim; d++) x[i * dim + d] = centres[c][d] + gen.normal();
  }
  return { x, y };
}

function smallModel(seed: number): Sequential {
  const gen = new Generator(seed);
  return new Sequential(
    new SparseLinear(8, 64, { sparsity: 0.5, seed: gen }),
    new ReLU(),
    new Linear(64, 4, { seed: gen }),
  );
}

const quiet = { progress: false as const, log: null };
const quietMain = { progress: false as const, log: () => {} };

Deno.test("fit learns a small synthetic problem and evaluates in eval mode", async () => {
  const data = blobs(512, 1);
  const model = smallModel(2);
  const train = batches(data.x, data.y, { batchSize: 32, shuffle: true, seed: 3, dropLast: true });
  const test = batches(data.x, data.y, { batchSize: 100 });
  const before = evaluate(model, test, crossEntropy);
  const seen: number[] = [];
  const { history, steps } = await fit(model, {
    optimizer: new SGD(model, { lr: 0.05, momentum: 0.9 }),
    loss: crossEntropy,
    train,
    test,
    epochs: 4,
    ...quiet,
    onEpochEnd: (stats) => {
      seen.push(stats.epoch);
    },
  });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(steps, 4 * 16);
  assert.equal(history[0].steps, 16);
  assert.equal(history[0].examples, 512);
  const last = history[3];
  assert.ok(last.trainLoss < before.loss / 10, `${last.trainLoss} vs initial ${before.loss}`);
  assert.ok(last.testAccuracy! > 97, `test accuracy ${last.testAccuracy}`);
  assert.ok(last.rssBytes > 0 && last.trainSeconds >= 0);
  assert.equal(model.training, true);
  // evaluate() matches what fit reported after the last epoch and restores the mode.
  model.eval();
  const after = evaluate(model, test, crossEntropy);
  assert.equal(model.training, false);
  assert.ok(Math.abs(after.loss - last.testLoss!) < 1e-6);
  assert.equal(after.examples, 512);
});

Deno.test("fit stops at the first non-finite loss, naming the step, before updating", async () => {
  const data = blobs(128, 4);
  data.x[(32 + 5) * 8 + 3] = NaN; // example 37: in the 2nd batch of 32 (no shuffling)
  // No ReLU: this library's relu, as C's `v > 0 ? v : 0`, maps NaN to 0.
  const model = new Sequential(new Linear(8, 4, { seed: 5 }));
  const train = batches(data.x, data.y, { batchSize: 32 });
  await assert.rejects(
    fit(model, {
      optimizer: new SGD(model, { lr: 0.01 }),
      loss: crossEntropy,
      train,
      epochs: 3,
      ...quiet,
    }),
    (err: unknown) => {
      assert.ok(err instanceof NonFiniteLossError);
      assert.match(err.message, /Loss is NaN at step 2 \(epoch 1, batch 2 of 4\)/);
      return true;
    },
  );
  for (const p of model.parameters()) assert.ok(p.data.every(Number.isFinite));
});

Deno.test("fit stops at a non-finite test loss before onEpochEnd (no diverged checkpoint)", async () => {
  const data = blobs(64, 4);
  const model = new Sequential(new Linear(8, 4, { seed: 5 }));
  let saved = 0;
  await assert.rejects(
    fit(model, {
      optimizer: new SGD(model, { lr: 1e38 }), // one finite step, then inf/NaN weights
      loss: crossEntropy,
      train: batches(data.x, data.y, { batchSize: 64 }),
      test: batches(data.x, data.y, { batchSize: 64 }),
      epochs: 2,
      onEpochEnd: () => {
        saved++;
      },
      ...quiet,
    }),
    (err: unknown) => {
      assert.ok(err instanceof NonFiniteLossError);
      assert.match(err.message, /Test loss is NaN after epoch 1 \(step 1\)/);
      return true;
    },
  );
  assert.equal(saved, 0);
});

Deno.test("fit passes on the library's errors: labels out of range, wrong input width", async () => {
  const data = blobs(64, 6);
  const model = smallModel(7);
  const options = { optimizer: new SGD(model, { lr: 0.01 }), loss: crossEntropy, epochs: 1 };
  const badLabels = data.y.slice();
  badLabels[10] = 4;
  await assertRejects(
    fit(model, { ...options, ...quiet, train: batches(data.x, badLabels, { batchSize: 32 }) }),
    RangeError,
    /label 4 at index 10 is outside \[0, 4\)/,
  );
  const wide = new Float32Array(64 * 9);
  await assertRejects(
    fit(model, { ...options, ...quiet, train: batches(wide, data.y, { batchSize: 32 }) }),
    ShapeError,
    /expected \(N, \*, 8\)/,
  );
  await assertRejects(
    fit(model, {
      ...options,
      ...quiet,
      epochs: 0,
      train: batches(data.x, data.y, { batchSize: 8 }),
    }),
    RangeError,
    /epochs must be a positive integer, got 0/,
  );
});

Deno.test("fit refuses test batches the model cannot take before training, not after an epoch", async () => {
  const data = blobs(64, 6);
  const model = smallModel(7);
  const before = model.parameters().map((p) => p.toArray());
  const options = {
    optimizer: new SGD(model, { lr: 0.01 }),
    loss: crossEntropy,
    epochs: 1,
    ...quiet,
    train: batches(data.x, data.y, { batchSize: 32 }),
  };
  const wideX = new Float32Array(64 * 9);
  await assertRejects(
    fit(model, { ...options, test: batches(wideX, data.y, { batchSize: 32 }) }),
    ShapeError,
    new RegExp(
      String
        .raw`^fit\(\) test batches \(examples \[9\], class labels, on "cpu"\) differ from the ` +
        String
          .raw`train batches \(examples \[8\], class labels, on "cpu"\) and fail in the model or ` +
        String
          .raw`the loss \(tried on one example of zeros\); nothing was trained: .*expected \(N, \*, 8\)`,
    ),
  );
  const floatY = fromFloat32(new Float32Array(64 * 4), [64, 4]);
  await assertRejects(
    // TypeScript refuses this call; a JavaScript caller reaches the run-time check.
    fit(model, { ...options, test: batches(data.x, floatY, { batchSize: 32 }) as never }),
    TypeError,
    /test batches \(examples \[8\], targets \[4\], on "cpu"\) differ .*nothing was trained: crossEntropy/,
  );
  // Arrays of batches are looked into too (their first batch).
  const arrayBatch = (cols: number) => [{
    x: fromFloat32(new Float32Array(32 * cols), [32, cols]),
    y: data.y.slice(0, 32),
    size: 32,
  }];
  await assertRejects(
    fit(model, { ...options, train: arrayBatch(8), test: arrayBatch(5) }),
    ShapeError,
    /^fit\(\) test batches \(examples \[5\], class labels, on "cpu"\) differ .*expected \(N, \*, 8\)/,
  );
  // Nothing was trained by the refused calls.
  assert.deepEqual(model.parameters().map((p) => p.toArray()), before);
  // An empty test set has no examples to try: it is allowed (its loss is NaN).
  const empty = batches(new Float32Array(0), new Int32Array(0), { batchSize: 32 });
  assert.equal((await fit(model, { ...options, test: empty })).history.length, 1);

  // A model made for several example shapes: the mean over the middle axis, then the layers.
  class MeanOverSteps extends Module {
    readonly inner = smallModel(8);
    constructor() {
      super();
      this.registerModule("inner", this.inner);
    }
    override forward(x: Tensor): Tensor {
      return this.inner.forward(mean(x, 1));
    }
  }
  const pooled = new MeanOverSteps();
  const steps = (n: number) =>
    fromFloat32(
      Float32Array.from({ length: 64 * n * 8 }, (_, i) => data.x[i % data.x.length]),
      [64, n, 8],
    );
  const { history } = await fit(pooled, {
    ...options,
    optimizer: new SGD(pooled, { lr: 0.01 }),
    train: batches(steps(3), data.y, { batchSize: 32 }),
    test: batches(steps(5), data.y, { batchSize: 32 }),
  });
  assert.ok(Number.isFinite(history[0].testLoss), "the test pass ran on [5, 8] examples");
});

Deno.test("fit clears its progress bar whatever error ends the epoch or the test pass", async () => {
  const data = blobs(64, 6);
  for (const where of ["train", "test"] as const) {
    const model = smallModel(7);
    const out: string[] = [];
    let calls = 0;
    const failing = (z: Tensor, y: Int32Array) => {
      // The second training batch, or the second test batch (after four training batches).
      if (++calls === (where === "train" ? 2 : 6)) throw new RangeError("loss failed");
      return crossEntropy(z, y);
    };
    await assertRejects(
      fit(model, {
        optimizer: new SGD(model, { lr: 0.01 }),
        loss: failing,
        epochs: 1,
        log: null,
        train: batches(data.x, data.y, { batchSize: 16 }),
        test: batches(data.x, data.y, { batchSize: 16 }),
        progress: { sink: { write: (t) => out.push(t), isTerminal: true }, redrawMs: 0 },
      }),
      RangeError,
      /loss failed/,
    );
    assert.ok(out.some((t) => t.includes(where === "train" ? "1/4" : "test")), where);
    assert.equal(out.at(-1), "\r\x1b[2K", `${where}: the bar is left on the terminal line`);
  }
});

Deno.test("fit calls onEpochEnd on modules and steps dynamic sparse layers once per step", async () => {
  const data = blobs(64, 8);
  const gen = new Generator(9);
  const dynamic = new SparseLinear(8, 32, { sparsity: 0.5, dynamic: true, deltaT: 2, seed: gen });
  const kw = new ActivationSparsity({ beta: 2, boostStrengthFactor: 0.5 });
  const model = new Sequential(dynamic, kw, new Linear(32, 4, { seed: gen }));
  const nnz = dynamic.nnz;
  await fit(model, {
    optimizer: new SGD(model, { lr: 0.01, momentum: 0.9 }),
    loss: crossEntropy,
    train: batches(data.x, data.y, { batchSize: 16 }),
    epochs: 2,
    ...quiet,
  });
  assert.equal(kw.boostStrength, 0.5);
  assert.equal(dynamic.dynamicSparsity!.stepCount, 8);
  assert.equal(dynamic.nnz, nnz);
});

Deno.test("countCorrect takes the first largest logit; NaN never wins", () => {
  const logits = fromFloat32(new Float32Array([1, 3, 3, NaN, 0, -1, 2, 2, 2]), [3, 3]);
  assert.equal(countCorrect(logits, new Int32Array([1, 1, 0])), 3);
  assert.equal(countCorrect(logits, new Int32Array([2, 0, 1])), 0);
  assert.throws(() => countCorrect(logits, new Int32Array(2)), ShapeError);
});

Deno.test("ProgressBar: a redrawn bar on a terminal, throttled plain lines otherwise", () => {
  let now = 0;
  const out: string[] = [];
  const plain = new ProgressBar("epoch 1/2", 100, {
    sink: { write: (t) => out.push(t), isTerminal: false },
    lineEverySeconds: 10,
    now: () => now,
  });
  for (let i = 1; i <= 100; i++) {
    now = i * 250; // 4 steps per second: 25 s in all
    plain.update(i, "loss 0.5");
  }
  plain.finish();
  assert.deepEqual(out, [
    "epoch 1/2  40/100  4.0 steps/s, ETA 15.0s  loss 0.5\n",
    "epoch 1/2  80/100  4.0 steps/s, ETA 5.0s  loss 0.5\n",
  ]);
  out.length = 0;
  now = 0;
  const bar = new ProgressBar("e", 4, {
    sink: { write: (t) => out.push(t), isTerminal: true },
    now: () => now,
    barWidth: 4,
  });
  now = 2000;
  bar.update(2);
  bar.finish();
  assert.deepEqual(out, ["\r\x1b[2Ke ██·· 2/4  1.0 steps/s, ETA 2.0s", "\r\x1b[2K"]);
  // A line wider than the terminal is cut to one column less (a wrapped line would leave rows
  // behind at every redraw).
  out.length = 0;
  now = 0;
  const narrow = new ProgressBar("e", 4, {
    sink: { write: (t) => out.push(t), isTerminal: true, columns: () => 20 },
    now: () => now,
    barWidth: 4,
  });
  now = 2000;
  narrow.update(2, "loss 0.5");
  assert.deepEqual(out, ["\r\x1b[2Ke ██·· 2/4  1.0 st…"]);
  assert.equal(out[0].length - "\r\x1b[2K".length, 19);
  // More steps than announced (a batch source whose length is short) keep the bar full.
  out.length = 0;
  now = 4000;
  narrow.update(6);
  assert.match(out[0], /e ████ 6\/4/);
  assert.equal(formatDuration(125), "2m05s");
  assert.equal(formatDuration(NaN), "?");
});

Deno.test("summary counts parameters, connections and memory per layer", () => {
  const model = MODELS.sparse.build(0);
  const s = summarize(model);
  assert.deepEqual(s.layers.map((l) => l.name), ["0", "1", "2", "3", "4"]);
  assert.equal(s.parameters, 156800 + 2000 + 4000 + 2000 + 10);
  assert.equal(s.connections, 156800 + 2000);
  const sparse = model.namedModules()[2][1] as SparseLinear;
  assert.equal(s.layers[1].bytes, sparse.memoryBytes());
  const table = summaryTable(model, { optimizerBytesPerParameter: 4 });
  assert.match(table, /Total: 164,810 parameters, 158,800 connections/);
});

Deno.test("the notebook's models: shapes, learning rates, state-dict names", () => {
  assert.equal(MODELS.dense.lr, 1e-2);
  assert.equal(MODELS.sparse.lr, 1e-1);
  assert.equal(MODELS.dynamic.lr, 5e-3);
  assert.equal(MODELS["dense-act"].lr, 5e-3);
  assert.equal(MODELS["sparse-act"].lr, 5e-2);
  assert.equal(MODELS.wide.lr, 5e-5);
  assert.equal(MODELS.wide.nesterov, true);
  assert.deepEqual(Object.keys(MODELS.sparse.build(0).stateDict()), [
    "1.weights",
    "1.bias",
    "1.indices",
    "2.weight",
    "2.bias",
    "4.weights",
    "4.bias",
    "4.indices",
  ]);
  const smallWorld = MODELS["small-world"].build(0);
  assert.equal(smallWorld.namedModules().filter(([, m]) => m instanceof SparseLinear).length, 2);
  const x = fromFloat32(new Float32Array(3 * 784).fill(0.5), [3, 784]);
  for (
    const name of ["dense", "user", "dynamic", "small-world", "dense-act", "sparse-act"] as const
  ) {
    assert.deepEqual(MODELS[name].build(1).forward(x).shape, [3, 10], name);
  }
});

Deno.test("user connectivity: 200 draws per input, repeats dropped as the seed's coalesce", () => {
  const [rows, cols] = notebookUserConnectivity(3);
  const seen = new Set<number>();
  const perInput = new Int32Array(784);
  for (let k = 0; k < rows.length; k++) {
    assert.ok(rows[k] >= 0 && rows[k] < 2000 && cols[k] >= 0 && cols[k] < 784);
    const key = rows[k] * 784 + cols[k];
    assert.ok(!seen.has(key), "no repeated connection");
    seen.add(key);
    perInput[cols[k]]++;
  }
  // 200 draws from 2000 keep 2000 · (1 − 0.9^... ) ≈ 190.1 distinct outputs on average.
  const mean = rows.length / 784;
  assert.ok(mean > 188 && mean < 192, `mean ${mean}`);
  assert.ok(perInput.every((n) => n > 170 && n <= 200));
});

Deno.test("the wide model: repeat, scale/shift, blocks, per-class sums; the notebook's names", () => {
  const net = new WideMnistNet({ width: 40, repeat: 2, sparsity: 0.8, seed: 1 });
  const keys = Object.keys(net.stateDict());
  for (const k of ["input_scaling", "input_shifting", "sc1.weights", "sc5.indices", "ln4.weight"]) {
    assert.ok(keys.includes(k), k);
  }
  const x = fromFloat32(new Generator(2).fillNormal(new Float32Array(3 * 784)), [3, 784]);
  const y = net.forward(x);
  assert.deepEqual(y.shape, [3, 10]);
  crossEntropy(y, new Int32Array([0, 1, 2])).backward();
  const scaling = net.stateDict()["input_scaling"] as Tensor;
  assert.ok(scaling.grad !== null && scaling.grad.data.some((v) => v !== 0));
  assert.throws(() => net.forward(fromFloat32(new Float32Array(3 * 100), [3, 100])), ShapeError);
  // One image without its batch dimension: the model's own ShapeError, not Flatten's RangeError
  // about a startDim.
  assertThrows(
    () => net.forward(fromFloat32(new Float32Array(784), [784])),
    ShapeError,
    /WideMnistNet takes 28×28 images \(\[B, 784\]\), got input of shape \[784\]/,
  );
  assertThrows(() => net.forward([1, 2] as never), TypeError, /needs a Tensor, got object/);
});

Deno.test("train flags: defaults, per-model learning rates, clear errors", () => {
  const defaults = parseTrainArgs([]);
  assert.equal(defaults.model, "sparse");
  assert.equal(defaults.epochs, 20);
  assert.equal(defaults.batchSize, 64);
  assert.equal(defaults.lr, 0.1);
  assert.equal(defaults.seed, 0);
  assert.equal(defaults.device, "cpu");
  assert.equal(parseTrainArgs(["--model", "sparse-act"]).lr, 0.05);
  assert.equal(parseTrainArgs(["--model", "dense", "--lr", "0.3"]).lr, 0.3);
  assert.equal(parseTrainArgs(["-h"]).help, true);
  const bad: [string[], RegExp][] = [
    [["--epoch", "3"], /Unknown option '--epoch' \(did you mean --epochs\?\)/],
    [["--model", "huge"], /Unknown --model "huge"; choose one of dense, sparse, user/],
    [["--epochs", "0"], /--epochs must be a positive integer, got "0"/],
    [["--batch-size", "2.5"], /--batch-size must be a positive integer/],
    [["--lr", "abc"], /--lr must be a positive number, got "abc"/],
    [["--seed", "-1"], /--seed/],
    [["--device", "tpu"], /--device must be "cpu" or "cuda", got "tpu"/],
    [["--limit-train", "70000"], /--limit-train must be at most 60000/],
    [["--limit-train", "10"], /--batch-size 64 is larger than the 10 training images/],
    [["stray"], /Unexpected argument 'stray'/],
    // A negative number is the flag's value, checked as such (not "argument is ambiguous").
    [["--epochs", "-1"], /--epochs must be a positive integer, got "-1"/],
    [["--save", "a.st", "--metrics", "./a.st"], /--save and --metrics name the same file/],
    [
      ["--plot", "out", "--metrics", "out/loss.svg"],
      /--metrics and --plot \(its loss.svg\) name the same file/,
    ],
    // Decimal only: Number() would read these as 16, 3 and 64.
    [["--epochs", "0x10"], /--epochs must be a positive integer, got "0x10"/],
    [["--lr", "0b11"], /--lr must be a positive number, got "0b11"/],
    [["--batch-size", "0o100"], /--batch-size must be a positive integer, got "0o100"/],
    [["--threads", "100000"], /--threads must be at most 4096, got 100000/],
  ];
  assert.equal(parseTrainArgs(["--lr", "1e-3", "--epochs", "+3"]).lr, 1e-3);
  for (const [args, message] of bad) assertThrows(() => parseTrainArgs(args), UsageError, message);
});

Deno.test("train: an unwritable --save path fails before training and leaves no file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      main(["--save", join(dir, "missing", "model.safetensors")], quietMain),
      Error,
      /Cannot write --save .*model\.safetensors: directory ".*missing" does not exist/,
    );
    await assertRejects(main(["--save", dir], quietMain), Error, /--save .* is a directory/);
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "");
    await assertRejects(
      main(["--metrics", join(file, "m.json")], quietMain),
      Error,
      /Cannot write --metrics .*m\.json: Not a directory \(os error 20\)$/,
    );
    await assertRejects(
      main(["--plot", file], quietMain),
      Error,
      /--plot .*file is a file; give a directory for the plots/,
    );
    await Deno.remove(file);
    // Without a usable GPU, --device cuda is a clear error before anything else happens.
    let cudaUsable = true;
    try {
      getBackend("cuda");
    } catch {
      cudaUsable = false;
    }
    if (!cudaUsable) {
      await assertRejects(
        main(["--device", "cuda"], quietMain),
        Error,
        /^--device cuda: Device "cuda" is not available: .*\(--device cpu is the default\)$/,
      );
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: one epoch on 2000 MNIST images learns, saves a loadable checkpoint, plots", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "sparse.safetensors");
    const plots = join(dir, "plots");
    const lines: string[] = [];
    const result = await main(
      [
        ...["--limit-train", "2000", "--epochs", "1", "--batch-size", "32"],
        ...["--save", path, "--plot", plots],
      ],
      { log: (l) => lines.push(l), progress: false },
    );
    assert.ok(result !== null);
    const [epoch] = result.history;
    assert.equal(epoch.steps, 62);
    assert.ok(epoch.testAccuracy! > 80, `test accuracy ${epoch.testAccuracy}`);
    assert.ok(lines.some((l) => /^epoch 1\/1 {2}train loss .* test loss .* acc/.test(l)));
    assert.ok(lines.some((l) => l.includes("Total: 164,810 parameters")));
    // The checkpoint loads into a freshly built model (other connectivity) and reproduces it.
    const fresh = MODELS.sparse.build(123);
    await loadStateDict(fresh, path);
    const trained = result.model.stateDict();
    for (const [name, value] of Object.entries(fresh.stateDict())) {
      const want = trained[name];
      assert.deepEqual(
        value instanceof Tensor ? value.data : value.data,
        want instanceof Tensor ? want.data : want.data,
        name,
      );
    }
    const files = [...Deno.readDirSync(plots)].map((e) => e.name).sort();
    assert.deepEqual(files, ["accuracy.svg", "connectivity.png", "connectivity.svg", "loss.svg"]);
    const png = await Deno.readFile(join(plots, "connectivity.png"));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("random regression: both models fit the notebook's random data", () => {
  const reports = runRegression({ steps: 200, report: () => {} });
  assert.deepEqual(reports.map((r) => r.step), [100, 200]);
  // The last step is always reported, so a short run prints something.
  assert.deepEqual(runRegression({ steps: 30, report: () => {} }).map((r) => r.step), [30]);
  const [first, second] = reports;
  assert.ok(first.dense > 1 && first.sparse > 1, JSON.stringify(reports));
  // The notebook: 4.417 → 0.075 (dense), 5.111 → 0.031 (sparse) from step 100 to 200.
  assert.ok(second.dense < first.dense / 20, JSON.stringify(reports));
  assert.ok(second.sparse < first.sparse / 20, JSON.stringify(reports));
});

Deno.test("evaluate: class labels with an output that is not [batch, classes] give no accuracy", () => {
  const model = new Sequential(new Linear(3, 1, { seed: 1 }), new Flatten({ startDim: 0 }));
  const data = [{
    x: fromFloat32(new Float32Array(6), [2, 3]),
    y: new Int32Array([0, 1]),
    size: 2,
  }];
  const loss = (out: Tensor) => sum(out);
  const result = evaluate(model, data, loss);
  assert.equal(result.accuracy, null);
  assert.equal(result.examples, 2);
});

Deno.test("evaluate restores each module's own mode, also when the model throws", () => {
  // A submodule switched to eval mode on its own (a frozen dropout, as PyTorch users do) stays
  // so; evaluate() used to set the whole tree to the root's mode afterwards.
  const model = new Sequential(new Linear(2, 2, { seed: 0 }), new Dropout(0.5), new ReLU());
  model.train();
  model.at(1).eval();
  const modes = () => model.namedModules().map(([, m]) => m.training);
  const data = [{
    x: fromFloat32(new Float32Array([1, 0, 0, 1]), [2, 2]),
    y: new Int32Array([0, 1]),
    size: 2,
  }];
  evaluate(model, data, crossEntropy);
  assert.deepEqual(modes(), [true, true, false, true]);
  const bad = [{ x: fromFloat32(new Float32Array(3), [1, 3]), y: new Int32Array([0]), size: 1 }];
  assert.throws(() => evaluate(model, bad, crossEntropy), ShapeError);
  assert.deepEqual(modes(), [true, true, false, true]);
});

Deno.test("fit: test data without batches is no divergence (its loss is NaN, as evaluate's)", async () => {
  const data = blobs(3, 2);
  const model = new Linear(8, 4, { seed: 1 });
  // dropLast with a batch larger than the data: no batch at all.
  const none = batches(data.x, data.y, { batchSize: 4, dropLast: true });
  assert.equal(none.length, 0);
  let saved = 0;
  // It used to stop with "Test loss is NaN after epoch 1 ... the update of a step whose own
  // loss was finite diverged", before onEpochEnd.
  const { history } = await fit(model, {
    optimizer: new SGD(model, { lr: 0.1 }),
    loss: crossEntropy,
    train: batches(data.x, data.y, { batchSize: 2 }),
    test: none,
    epochs: 2,
    onEpochEnd: () => {
      saved++;
    },
    ...quiet,
  });
  assert.equal(saved, 2);
  assert.ok(Number.isNaN(history[1].testLoss!));
  assert.equal(history[1].testAccuracy, null);
});

Deno.test("progress of slow steps: seconds per step, not 0.0 steps/s; 59.97 s is 1m00s", () => {
  let now = 0;
  const out: string[] = [];
  const bar = new ProgressBar("epoch 1/1", 1000, {
    sink: { write: (t) => out.push(t), isTerminal: false },
    now: () => now,
  });
  now = 2 * 3600 * 1000; // 2 steps in 2 hours: a RigL update of a very wide layer
  bar.update(2);
  assert.deepEqual(out, ["epoch 1/1    2/1000  1h00m/step, ETA 998h00m\n"]);
  assert.equal(formatDuration(59.97), "1m00s"); // was "60.0s"
  assert.equal(formatDuration(59.94), "59.9s");
});

Deno.test("summarize counts a parameter two layers share once, as parameters() does", () => {
  class Scale extends Module {
    constructor(w: Tensor) {
      super();
      this.registerParameter("w", w);
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const w = fromFloat32(new Float32Array(1000), [1000]);
  const model = new Sequential(new Scale(w), new Scale(w)); // weight tying
  assert.equal(model.parameters().length, 1);
  const s = summarize(model);
  // Both layers counted it: 2000 parameters, 8000 bytes.
  assert.equal(s.parameters, 1000);
  assert.equal(s.bytes, 4000);
  assert.deepEqual(s.layers.map((l) => l.parameters), [1000, 0]);
  assert.match(summaryTable(model), /Total: 1,000 parameters, 0 connections, 3.91 KiB/);
});
