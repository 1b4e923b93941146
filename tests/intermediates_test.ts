/**
 * Early release of composite modules' intermediate activations (lib/nn/intermediates.ts):
 * `Sequential` and the wide MNIST model give back the activations passed between the
 * library's modules (after backward, or at once without a graph), training results stay
 * bit-identical to plain allocation, and nothing the user can reach is ever released.
 */
import assert from "node:assert/strict";
import { pooledMemoryBytes, releasePooledMemory } from "../lib/backend/cpu.ts";
import { noGrad } from "../lib/autograd.ts";
import { randn } from "../lib/creation.ts";
import { ReLU } from "../lib/nn/activations.ts";
import { Dropout } from "../lib/nn/dropout.ts";
import { Flatten } from "../lib/nn/flatten.ts";
import { keepsNoReferences, releaseConsumed } from "../lib/nn/intermediates.ts";
import { LayerNorm } from "../lib/nn/layer_norm.ts";
import { crossEntropy } from "../lib/nn/losses.ts";
import { Module } from "../lib/nn/module.ts";
import { scaleShift } from "../lib/nn/scale_shift.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { relu } from "../lib/ops/activation.ts";
import { sum } from "../lib/ops/reduce.ts";
import { SGD } from "../lib/optim/sgd.ts";
import type { Tensor } from "../lib/tensor.ts";
import { WideMnistNet } from "../examples/models.ts";
import { freshAllocations, withRecycling } from "./_recycling.ts";

function chain(seed: number): Sequential {
  return new Sequential(
    new SparseLinear(12, 20, { sparsity: 0.5, seed }),
    new LayerNorm(20),
    new ReLU(),
    new SparseLinear(20, 6, { sparsity: 0.5, seed: seed + 1 }),
  );
}

const LABELS = Int32Array.from([0, 1, 2, 3, 4, 5, 0, 1]);

/** Losses and final weights of `steps` SGD steps, with early release on or off. */
function train(release: boolean, steps: number): { losses: number[]; weights: number[][] } {
  return withRecycling(release, () => {
    const model = chain(1);
    const opt = new SGD(model, { lr: 0.1, momentum: 0.9 });
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const loss = crossEntropy(model.forward(randn([8, 12], { seed: 10 + s })), LABELS);
      losses.push(loss.item());
      loss.backward();
      opt.step();
      opt.zeroGrad();
    }
    return { losses, weights: model.parameters().map((p) => Array.from(p.toArray())) };
  });
}

Deno.test("Sequential: training with released intermediates is bit-identical to plain allocation", () => {
  const plain = train(false, 4);
  const released = train(true, 4);
  assert.deepEqual(released.losses, plain.losses);
  assert.deepEqual(released.weights, plain.weights);
});

Deno.test("Sequential: intermediates are given back after backward, not before", () => {
  releasePooledMemory();
  const model = chain(3);
  const loss = crossEntropy(model.forward(randn([8, 12], { seed: 1 })), LABELS);
  const before = pooledMemoryBytes();
  loss.backward();
  // Three activations of 8 x 20 floats between the four modules, plus consumed gradients.
  assert.ok(
    pooledMemoryBytes() >= before + 3 * 8 * 20 * 4,
    `pooled ${before} -> ${pooledMemoryBytes()} bytes`,
  );
  releasePooledMemory();
});

Deno.test("Sequential: retainGraph keeps the intermediates for a second backward", () => {
  const model = chain(5);
  const x = randn([8, 12], { seed: 2 });
  const loss = crossEntropy(model.forward(x), LABELS);
  loss.backward({ retainGraph: true });
  const first = Array.from(model.parameters()[0].grad!.toArray());
  loss.backward();
  const second = Array.from(model.parameters()[0].grad!.toArray());
  second.forEach((v, i) => assert.ok(Math.abs(v - 2 * first[i]) <= 1e-6 * (1 + Math.abs(v))));
});

Deno.test("Sequential without a graph (noGrad) releases at once and returns the same output", () => {
  const model = chain(7);
  const x = randn([8, 12], { seed: 3 });
  const expected = Array.from(model.forward(x).toArray());
  releasePooledMemory();
  const out = noGrad(() => model.forward(x));
  assert.deepEqual(Array.from(out.toArray()), expected);
  // Three intermediates of 8 x 20: the first was already reused by the third, two are left.
  assert.ok(pooledMemoryBytes() >= 2 * 8 * 20 * 4, "the intermediates were pooled");
  assert.deepEqual(Array.from(x.toArray()), Array.from(randn([8, 12], { seed: 3 }).toArray()));
  releasePooledMemory();
});

/** A user module that keeps its input (for plotting, say): Sequential must not free it. */
class Keeper extends Module {
  kept: Tensor | null = null;
  forward(x: Tensor): Tensor {
    this.kept = x;
    return relu(x);
  }
}

Deno.test("Sequential never releases what a user module or the caller can still reach", () => {
  const keeper = new Keeper();
  const model = new Sequential(
    new SparseLinear(12, 20, { sparsity: 0.5, seed: 1 }),
    keeper,
    new SparseLinear(20, 6, { sparsity: 0.5, seed: 2 }),
    new Flatten(), // its output is a view of its input: that input is not released either
  );
  assert.equal(keepsNoReferences(keeper), false);
  const x = randn([8, 12], { seed: 4, requiresGrad: true });
  const out = model.forward(x);
  const kept = keeper.kept!;
  const keptSeen = Array.from(kept.toArray());
  const outSeen = Array.from(out.toArray());
  crossEntropy(out, LABELS).backward();
  // A second step reuses whatever was pooled; what the user holds must not change.
  crossEntropy(model.forward(randn([8, 12], { seed: 5 })), LABELS).backward();
  assert.deepEqual(Array.from(kept.toArray()), keptSeen);
  assert.deepEqual(Array.from(out.toArray()), outSeen);
  assert.deepEqual(Array.from(x.toArray()), Array.from(randn([8, 12], { seed: 4 }).toArray()));
});

/** A user module that keeps its output, and a copy of the values it had. */
class OutputKeeper extends Module {
  kept: Tensor | null = null;
  seen: number[] = [];
  forward(x: Tensor): Tensor {
    this.kept = relu(x);
    this.seen = Array.from(this.kept.toArray());
    return this.kept;
  }
}

Deno.test("a user module's output passed on by Dropout (eval, p = 0) or Flatten is not released", () => {
  // Dropout returns its input itself and Flatten a view of it: what they pass on was made by
  // the module before them, here one that keeps it.
  for (const passOn of [() => new Dropout(0), () => new Dropout(0.5).eval(), () => new Flatten()]) {
    for (const withGraph of [false, true]) {
      const keeper = new OutputKeeper();
      const model = new Sequential(
        new SparseLinear(12, 20, { sparsity: 0.5, seed: 1 }),
        keeper,
        passOn(),
        new ReLU(),
      );
      const x = randn([8, 12], { seed: 4 });
      if (withGraph) crossEntropy(model.forward(x), LABELS).backward();
      else noGrad(() => model.forward(x));
      const what = `${String(model.at(2))}, ${withGraph ? "after backward" : "noGrad"}`;
      assert.deepEqual(Array.from(keeper.kept!.toArray()), keeper.seen, what);
    }
  }
  releasePooledMemory();
});

Deno.test("a subclass of a library module is not trusted to keep no references", () => {
  class MyLinear extends SparseLinear {}
  assert.equal(keepsNoReferences(new SparseLinear(4, 4, { seed: 0 })), true);
  assert.equal(keepsNoReferences(new MyLinear(4, 4, { seed: 0 })), false);
});

Deno.test("a library module whose forward was replaced on the instance is not trusted", () => {
  const act = new ReLU();
  const seen: Tensor[] = [];
  const original = act.forward.bind(act);
  act.forward = (x: Tensor) => {
    const y = original(x);
    seen.push(y); // kept for inspection
    return y;
  };
  assert.equal(keepsNoReferences(act), false);
  const net = new Sequential(
    new SparseLinear(12, 20, { sparsity: 0.5, seed: 1 }),
    act,
    new SparseLinear(20, 6, { sparsity: 0.5, seed: 2 }),
  );
  crossEntropy(net.forward(randn([8, 12], { seed: 4 })), LABELS).backward();
  const keptSeen = Array.from(seen[0].toArray()); // readable after the step, not released
  crossEntropy(net.forward(randn([8, 12], { seed: 5 })), LABELS).backward();
  assert.deepEqual(Array.from(seen[0].toArray()), keptSeen);
});

Deno.test("a released tensor throws when read instead of showing reused memory", () => {
  const x = randn([4, 4], { seed: 6 });
  const h = noGrad(() => relu(x));
  const next = noGrad(() => relu(h));
  releaseConsumed(h, next, x);
  assert.throws(() => h.toArray(), /given back for reuse/);
  assert.throws(() => relu(h), /given back for reuse/);
  assert.equal(next.toArray().length, 16);
  releasePooledMemory();
});

Deno.test("a constant a recorded op keeps for its backward is given back with the graph", () => {
  for (const retainGraph of [false, true]) {
    const x = randn([4, 6], { seed: 7 });
    const c = relu(x); // no gradient of its own: a constant of the next op's graph
    const scale = randn([6], { seed: 8, requiresGrad: true });
    const next = scaleShift(c, scale, null);
    releaseConsumed(c, next, x);
    const seen = Array.from(c.toArray()); // still readable: the graph needs it
    sum(next).backward({ retainGraph });
    // d(sum)/d(scale[j]) = sum over rows of c[:, j], computed from c before its release.
    const expected = Array.from(
      { length: 6 },
      (_, j) => seen[j] + seen[6 + j] + seen[12 + j] + seen[18 + j],
    );
    Array.from(scale.grad!.toArray()).forEach((g, j) =>
      assert.ok(Math.abs(g - expected[j]) < 1e-5)
    );
    if (retainGraph) assert.deepEqual(Array.from(c.toArray()), seen);
    else assert.throws(() => c.toArray(), /given back for reuse/);
  }
  // A tensor that wants its own gradient is never released, whatever consumed it.
  const leaf = randn([4, 6], { seed: 9, requiresGrad: true });
  const next = relu(leaf);
  releaseConsumed(leaf, next, randn([1], { seed: 1 }));
  sum(next).backward();
  assert.equal(leaf.toArray().length, 24);
  releasePooledMemory();
});

Deno.test("WideMnistNet: a training step reuses pooled memory for everything but the loss and logits", () => {
  // A fresh array costs first-touch page faults: at full width the collapsed weights and the
  // repeated input were ~10 ms of a step.
  const batch = 6;
  const model = new WideMnistNet({ seed: 0, width: 200, repeat: 2, sparsity: 0.9 });
  const opt = new SGD(model, { lr: 0.01, momentum: 0.9, nesterov: true });
  const fresh = freshAllocations(5, 3, (s) => {
    const images = randn([batch, 784], { seed: 20 + s });
    const loss = crossEntropy(model.forward(images), Int32Array.from([1, 2, 3, 4, 5, 6]));
    loss.item();
    loss.backward();
    opt.step();
    opt.zeroGrad();
  });
  // What the caller can still hold (loss, logits and their gradients) and per-row statistics
  // are allocated fresh; nothing of the layers' width or the repeated input is.
  assert.deepEqual(fresh.filter((length) => length > 6 * 10), []);
  // The four LayerNorms' per-row statistics (2 × 6 floats each) are reused as well: of the
  // batch-long arrays only the cross-entropy's (two per step) are new.
  assert.ok(fresh.filter((length) => length === 6).length <= 2 * 2, `fresh: ${fresh}`);
  assert.ok(fresh.length > 0, "the counter saw the step's small allocations");
});

Deno.test("forwardGroupSum gives its collapsed weights back, frozen weights or not", () => {
  // G (10 x 100 here) is made per call; only the product with x sees it. Trained or frozen
  // (then kept as a constant for x's gradient), a steady-state step allocates it from the pool.
  for (const frozen of [false, true]) {
    const layer = new SparseLinear(100, 1000, { sparsity: 0.5, seed: 3 });
    layer.weights.requiresGrad = !frozen;
    const fresh = freshAllocations(4, 2, (s) => {
      const x = randn([4, 100], { seed: 40 + s, requiresGrad: true });
      sum(layer.forwardGroupSum(x, 10)).backward();
      layer.zeroGrad();
    });
    assert.ok(!fresh.includes(10 * 100), `frozen ${frozen}: fresh ${fresh}`);
  }
});

Deno.test("WideMnistNet: released activations leave training bit-identical", () => {
  const run = (release: boolean): number[] =>
    withRecycling(release, () => {
      const model = new WideMnistNet({ seed: 0, width: 200, repeat: 2, sparsity: 0.9 });
      const opt = new SGD(model, { lr: 0.01, momentum: 0.9, nesterov: true });
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) {
        const images = randn([6, 784], { seed: 20 + s });
        const loss = crossEntropy(model.forward(images), Int32Array.from([1, 2, 3, 4, 5, 6]));
        losses.push(loss.item());
        loss.backward();
        opt.step();
        opt.zeroGrad();
      }
      const evalOut = noGrad(() => model.forward(randn([6, 784], { seed: 30 })));
      return [...losses, ...evalOut.toArray()];
    });
  assert.deepEqual(run(true), run(false));
});
