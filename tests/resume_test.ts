/**
 * Resuming a training run: `Batches.skipEpochs`, `fit`'s `resumeFrom`, the training-state file
 * of examples/checkpoint.ts, and `deno task train --resume`: a run stopped after some epochs and
 * resumed ends bit for bit where the uninterrupted run ends, dynamic topology updates included.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { batches } from "../lib/data/batches.ts";
import { loadStateDict, saveStateDict } from "../lib/io/state_dict.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import type { Module } from "../lib/nn/module.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { SGD } from "../lib/optim/sgd.ts";
import { Generator } from "../lib/random.ts";
import { Tensor } from "../lib/tensor.ts";
import { fit } from "../lib/train/fit.ts";
import {
  readTrainState,
  restoreTrainState,
  saveTrainState,
  trainStatePath,
} from "../examples/checkpoint.ts";
import { main } from "../examples/train_mnist.ts";

const quiet = { progress: false as const, log: null };

/** Every tensor of the state dict as plain arrays (indices included), for exact comparison. */
function snapshot(model: Module): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, value] of Object.entries(model.stateDict())) {
    out[name] = Array.from(value instanceof Tensor ? value.toArray() : value.data, Number);
  }
  return out;
}

function data(count: number, seed: number) {
  const gen = new Generator(seed);
  const x = new Float32Array(count * 12).map(() => gen.normal());
  const y = new Int32Array(count).map(() => gen.int(4));
  return { x, y };
}

/**
 * A model with a RigL and a SET layer that update every 5 steps: topology changes on both sides
 * of the checkpoint. The SET layer's seed is random (no `seed`): the training state carries it.
 */
function dynamicModel(): Sequential {
  const gen = new Generator(11);
  return new Sequential(
    new SparseLinear(12, 24, {
      sparsity: 0.6,
      seed: gen,
      dynamic: true,
      deltaT: 5,
      tEnd: 200,
      alpha: 0.3,
    }),
    new ReLU(),
    new SparseLinear(24, 4, {
      sparsity: 0.3,
      dynamic: true,
      growth: "set",
      deltaT: 5,
      tEnd: 200,
      alpha: 0.3,
    }),
  );
}

Deno.test("skipEpochs: the batches after skipping n epochs are those of epoch n + 1", () => {
  const { x, y } = data(50, 1);
  const run = batches(x, y, { batchSize: 8, shuffle: true, seed: 5 });
  const skipped = batches(x, y, { batchSize: 8, shuffle: true, seed: 5 });
  for (let e = 0; e < 2; e++) for (const _ of run) { /* epochs 1 and 2 */ }
  skipped.skipEpochs(2);
  const third = [...run].map((b) => Array.from(b.y as Int32Array));
  const resumed = [...skipped].map((b) => Array.from(b.y as Int32Array));
  assert.deepEqual(resumed, third);
  assert.notDeepEqual(
    third,
    [...batches(x, y, { batchSize: 8, shuffle: true, seed: 5 })].map(
      (b) => Array.from(b.y as Int32Array),
    ),
  );
  assert.throws(() => skipped.skipEpochs(-1), RangeError);
  batches(x, y, { batchSize: 8 }).skipEpochs(3); // no shuffle: nothing to advance
});

Deno.test("fit resumeFrom: epochs and steps count on; a bad history is refused", async () => {
  const { x, y } = data(40, 2);
  const model = dynamicModel();
  const train = batches(x, y, { batchSize: 8, shuffle: true, seed: 1 });
  const first = await fit(model, {
    optimizer: new SGD(model, { lr: 0.1 }),
    loss: crossEntropy,
    train,
    epochs: 1,
    ...quiet,
  });
  const seen: number[] = [];
  const rest = await fit(model, {
    optimizer: new SGD(model, { lr: 0.1 }),
    loss: crossEntropy,
    train,
    epochs: 3,
    resumeFrom: first.history,
    afterBackward: (step) => seen.push(step),
    ...quiet,
  });
  assert.deepEqual(rest.history.map((e) => e.epoch), [1, 2, 3]);
  assert.equal(rest.history[0], first.history[0]);
  assert.equal(rest.steps, 15);
  assert.deepEqual([seen[0], seen[seen.length - 1]], [6, 15]);
  const opts = { optimizer: new SGD(model, { lr: 0.1 }), loss: crossEntropy, train, ...quiet };
  await assert.rejects(
    () => fit(model, { ...opts, epochs: 1, resumeFrom: first.history }),
    /already holds 1 epoch\(s\) and epochs \(the total\) is 1: nothing left to run/,
  );
  await assert.rejects(
    () => fit(model, { ...opts, epochs: 3, resumeFrom: [rest.history[1]] }),
    /resumeFrom\[0\] must be the stats of epoch 1/,
  );
});

Deno.test("a checkpoint with its training state resumes a dynamic run bit for bit", async () => {
  const { x, y } = data(40, 3);
  const identity = { model: "dynamic" as const, seed: 0, batchSize: 8, limitTrain: null };
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.safetensors");
  /** Trains `model` to `epochs` in all, from the checkpoint at `path` when `resume`. */
  const run = async (model: Module, epochs: number, resume: boolean) => {
    const train = batches(x, y, { batchSize: 8, shuffle: true, seed: 4 });
    const saved = resume ? await readTrainState(trainStatePath(path), identity) : null;
    if (resume) await loadStateDict(model, path);
    const optimizer = new SGD(model, { lr: 0.2, momentum: 0.9 });
    const history = saved?.state.history ?? [];
    if (saved !== null) {
      restoreTrainState(saved, model, optimizer);
      train.skipEpochs(history.length);
    }
    await fit(model, {
      optimizer,
      loss: crossEntropy,
      train,
      epochs,
      resumeFrom: history,
      ...quiet,
      onEpochEnd: async (stats, done) => {
        if (resume || stats.epoch !== 2) return;
        await saveStateDict(model, path); // the uninterrupted run leaves a checkpoint at 2
        await saveTrainState(trainStatePath(path), model, optimizer, identity, done);
      },
    });
  };
  try {
    const straight = dynamicModel();
    await run(straight, 4, false);
    const resumed = dynamicModel(); // other random SET seed and initial weights
    await run(resumed, 4, true);
    const layers = (m: Module) =>
      m.namedModules().flatMap(([, l]) => l instanceof SparseLinear ? [l.dynamicSparsity!] : []);
    assert.deepEqual(layers(resumed).map((d) => d.stepCount), [20, 20]);
    assert.deepEqual(layers(resumed).map((d) => d.seed), layers(straight).map((d) => d.seed));
    assert.deepEqual(snapshot(resumed), snapshot(straight));
    // The saved run's settings are part of it: another seed is another run.
    await assert.rejects(
      () => readTrainState(trainStatePath(path), { ...identity, seed: 1 }),
      /settings must match: seed 0 there, 1 now/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a training state resumes only into layers with the same value order", async () => {
  const { x, y } = data(16, 5);
  const identity = { model: "wide" as const, seed: 0, batchSize: 8, limitTrain: null };
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.train.safetensors");
  const model = (order: "csr" | "csc") =>
    new Sequential(
      new SparseLinear(12, 20, { sparsity: 0.5, seed: 1, valueOrder: order }),
      new ReLU(),
      new SparseLinear(20, 4, { sparsity: 0.5, seed: 2 }),
    );
  try {
    const trained = model("csc");
    const optimizer = new SGD(trained, { lr: 0.1, momentum: 0.9 });
    await fit(trained, {
      optimizer,
      loss: crossEntropy,
      train: batches(x, y, { batchSize: 8 }),
      epochs: 1,
      ...quiet,
    });
    await saveTrainState(path, trained, optimizer, identity, []);
    const saved = await readTrainState(path, identity);
    assert.deepEqual(saved.state.valueOrders, { "0": "csc" });
    const same = model("csc");
    restoreTrainState(saved, same, new SGD(same, { lr: 0.1, momentum: 0.9 }));
    const other = model("csr");
    assert.throws(
      () => restoreTrainState(saved, other, new SGD(other, { lr: 0.1, momentum: 0.9 })),
      /layer "0" kept its values in CSC order there and keeps them in CSR order in this version/,
    );
    // A state from before value orders were recorded: every layer was in CSR order.
    delete saved.state.valueOrders;
    assert.throws(
      () => restoreTrainState(saved, same, new SGD(same, { lr: 0.1, momentum: 0.9 })),
      /layer "0" kept its values in CSR order there and keeps them in CSC order/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --resume: two epochs in two runs end where two epochs in one run end", async () => {
  const dir = await Deno.makeTempDir();
  const quietMain = { progress: false as const, log: () => {} };
  const common = ["--model", "sparse-act", "--limit-train", "640", "--batch-size", "32"];
  try {
    const once = join(dir, "once.safetensors");
    const twice = join(dir, "twice.safetensors");
    await main([...common, "--epochs", "2", "--save", once], quietMain);
    await main([...common, "--epochs", "1", "--save", twice], quietMain);
    const lines: string[] = [];
    const result = await main(
      [...common, "--epochs", "2", "--resume", twice, "--save", twice],
      { progress: false, log: (l) => lines.push(l) },
    );
    assert.deepEqual(result!.history.map((e) => e.epoch), [1, 2]);
    assert.ok(lines.some((l) => /^Resuming .*twice\.safetensors after epoch 1/.test(l)), lines[0]);
    const [a, b] = [await Deno.readFile(twice), await Deno.readFile(once)];
    // First differing byte (deepEqual's diff of two 1 MB arrays would take minutes to print).
    const at = a.findIndex((v, i) => v !== b[i]);
    assert.ok(a.length === b.length && at === -1, `the checkpoints differ from byte ${at}`);
    assert.ok((await Deno.stat(trainStatePath(twice))).isFile);
    await assert.rejects(
      () => main([...common, "--epochs", "2", "--resume", twice], quietMain),
      /has already trained 2 epoch\(s\); --epochs is the total/,
    );
    await assert.rejects(
      () => main([...common, "--seed", "3", "--epochs", "3", "--resume", twice], quietMain),
      /settings must match: seed 0 there, 3 now/,
    );
    // Another model: named as such, before its state dict's keys could disagree.
    await assert.rejects(
      () =>
        main(
          [...common.slice(2), "--model", "dense", "--epochs", "3", "--resume", twice],
          quietMain,
        ),
      /settings must match: model "sparse-act" there, "dense" now/,
    );
    await assert.rejects(
      () =>
        main([...common, "--epochs", "3", "--resume", join(dir, "none.safetensors")], quietMain),
      /--resume .*none\.safetensors: no such checkpoint file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --resume refuses a model and a training state saved after different epochs", async () => {
  // --save writes the model, then the training state: a run stopped between the two left the
  // model of epoch 2 with the state of epoch 1, and --resume went on from that mix silently.
  const dir = await Deno.makeTempDir();
  const quietMain = { progress: false as const, log: () => {} };
  const common = ["--model", "sparse", "--limit-train", "128", "--batch-size", "32"];
  try {
    const one = join(dir, "one.safetensors");
    const two = join(dir, "two.safetensors");
    await main([...common, "--epochs", "1", "--save", one], quietMain);
    await main([...common, "--epochs", "2", "--save", two], quietMain);
    const mixed = join(dir, "mixed.safetensors");
    await Deno.copyFile(two, mixed);
    await Deno.copyFile(trainStatePath(one), trainStatePath(mixed));
    await assert.rejects(
      () => main([...common, "--epochs", "3", "--resume", mixed], quietMain),
      /mixed\.safetensors holds the model after epoch 2, but its training state .*mixed\.train\.safetensors is from after epoch 1/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a training state that is not what saveTrainState writes is a clear error", async () => {
  const dir = await Deno.makeTempDir();
  const identity = { model: "sparse" as const, seed: 0, batchSize: 32, limitTrain: 128 };
  const write = async (json: string) => {
    const path = join(dir, "m.train.safetensors");
    await saveStateDict({}, path, { metadata: { sparselinear_train_state: json } });
    return path;
  };
  try {
    // Was a bare SyntaxError ("Expected double-quoted property name in JSON at position 14").
    await assert.rejects(
      async () => readTrainState(await write('{"version":1, broken'), identity),
      /m\.train\.safetensors: the training state is not valid JSON/,
    );
    // Was "Cannot convert undefined or null to object", from deep inside.
    const state = { version: 1, ...identity, history: {}, dynamicSteps: null };
    await assert.rejects(
      async () => readTrainState(await write(JSON.stringify(state)), identity),
      /m\.train\.safetensors: the training state is malformed/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
