/**
 * A rejected call changes no state (README, "Errors"): each test makes a call fail and compares
 * everything it could have changed (weights, gradients, optimizer state, step counters, the next
 * random draw, module flags) before and after. Also: settings documented as read-only cannot be
 * assigned at run time (TypeScript's `readonly` is erased), so a bad value cannot get in that
 * way and break a later call.
 */
import assert from "node:assert/strict";
import { ones, tensor, zeros } from "../lib/creation.ts";
import { Dropout } from "../lib/nn/dropout.ts";
import { Linear } from "../lib/nn/linear.ts";
import { Sequential } from "../lib/nn/sequential.ts";
import { SparseLinear } from "../lib/nn/sparse_linear.ts";
import { sum } from "../lib/ops/reduce.ts";
import { Adam } from "../lib/optim/adam.ts";
import type { Optimizer } from "../lib/optim/optimizer.ts";
import { SGD } from "../lib/optim/sgd.ts";
import type { Tensor } from "../lib/tensor.ts";
import type { Module } from "../lib/nn/module.ts";

type ErrorClass = new (...args: never[]) => Error;

/** Asserts `fn` throws exactly `cls` with every pattern in its message. */
function rejects(fn: () => unknown, cls: ErrorClass, ...patterns: RegExp[]): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== null, "expected an error, but the call succeeded");
  assert.equal((caught as Error).constructor, cls, `expected ${cls.name}, got ${caught}`);
  for (const p of patterns) assert.match((caught as Error).message, p);
}

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

// Keep imports used by later rows.
void tensor;
void zeros;
