/**
 * Early release of a composite module's intermediate activations.
 *
 * JS frees an array only when the garbage collector finds it unreachable, which is late: a
 * training loop that leaves its activations to the collector touches fresh memory for each
 * activation of each step (the wide MNIST model: ~13 activations of 12.8 MB per step, ~3,000
 * page faults each, 10-25 % of the step). A composite module knows which tensors nothing
 * outside it can reach: the output of one child that only the next child consumed, provided
 * both children keep no reference to their inputs and outputs. It hands each such tensor to
 * `releaseConsumed`, and the memory is reused by the next allocation of its size:
 * - at once, when no graph was recorded through it (evaluation, `noGrad`, frozen models);
 * - after the backward pass that frees its graph, when it was recorded (the graph's saved
 *   activations are needed until then); `backward({ retainGraph: true })` keeps it.
 * A released tensor cannot be used any more (reading it throws), so a wrong release shows as
 * an error, never as another tensor's numbers.
 * @module
 */
import { markGraphOwned, markGraphOwnedConstant } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import type { Tensor } from "../tensor.ts";
import { ActivationSparsity } from "./activation_sparsity.ts";
import { ReLU, Sigmoid, Tanh } from "./activations.ts";
import { Dropout } from "./dropout.ts";
import { Flatten } from "./flatten.ts";
import { GroupSum } from "./group_sum.ts";
import { LayerNorm } from "./layer_norm.ts";
import { Linear } from "./linear.ts";
import type { Module } from "./module.ts";
import { RepeatInterleave } from "./repeat_interleave.ts";
import { ScaleShift } from "./scale_shift.ts";
import { SparseLinear } from "./sparse_linear.ts";

/**
 * The library's modules whose `forward` keeps no reference to its input or output (read
 * before adding one: a copy, like RigL's recorded input, is fine; a stored tensor or view is
 * not). Exact classes only: a subclass may override `forward` and keep what it likes.
 */
const KEEPS_NO_REFERENCES: ReadonlySet<unknown> = new Set([
  ActivationSparsity,
  Dropout,
  Flatten,
  GroupSum,
  LayerNorm,
  Linear,
  ReLU,
  RepeatInterleave,
  ScaleShift,
  Sigmoid,
  SparseLinear,
  Tanh,
]);

/**
 * Whether `module` is one of the library's modules that keep no reference to their tensors
 * (and still runs its class's own `forward`: one patched onto the instance may keep anything).
 */
export function keepsNoReferences(module: Module): boolean {
  return KEEPS_NO_REFERENCES.has(module.constructor) && !Object.hasOwn(module, "forward");
}

/**
 * Gives back the memory of `intermediate` (made inside a composite and consumed by the step
 * that produced `next`) once nothing can need it; does nothing when it shares its memory with
 * `next` or `input` (a view). Only the code that holds every reference to `intermediate` may
 * call this: its producer and consumer must keep none (see `keepsNoReferences`). Reading it
 * after its release throws.
 * @example
 * ```ts
 * import { LayerNorm, Module, randn, relu, releaseConsumed, SparseLinear, type Tensor } from "@sparselinear/sparselinear";
 * class Block extends Module {
 *   readonly fc = new SparseLinear(784, 512, { seed: 0 });
 *   readonly norm = new LayerNorm(512);
 *   constructor() {
 *     super();
 *     this.registerModule("fc", this.fc);
 *     this.registerModule("norm", this.norm);
 *   }
 *   forward(x: Tensor): Tensor {
 *     const h = this.fc.forward(x); // only this method sees h
 *     const out = relu(this.norm.forward(h));
 *     releaseConsumed(h, out, x); // freed after backward (at once without a graph)
 *     return out;
 *   }
 * }
 * const block = new Block();
 * console.log(block.parameters().length, block.forward(randn([2, 784], { seed: 1 })).shape); // 4 [2, 512]
 * ```
 */
export function releaseConsumed(intermediate: Tensor, next: Tensor, input: Tensor): void {
  const storage = intermediate.storage;
  if (storage === next.storage || storage === input.storage) return;
  if (intermediate.gradFn !== null) {
    markGraphOwned(intermediate); // saved by the graph: freed with it
  } else if (intermediate.requiresGrad) {
    // A leaf that wants a gradient (a parameter passed through): never ours to free.
  } else if (next.gradFn !== null) {
    // A constant of the recorded step (an op may keep it for its backward): freed with it.
    markGraphOwnedConstant(intermediate, next);
  } else if (!next.requiresGrad) {
    getBackend(intermediate.device).recycle(storage); // no graph recorded it: free now
  }
}
