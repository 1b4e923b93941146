/**
 * The reverse-mode tape. Each differentiable op computes its output and, when gradients are
 * enabled and an input requires them, attaches a `GradFn` holding its inputs and a closure that
 * maps the output gradient to input gradients (micrograd style: forward and backward of an op
 * live side by side in its file). `backward()` walks the graph in reverse topological order.
 * @module
 */
import { allocationLog, type Device, type Storage } from "./backend/backend.ts";
import { describeValue } from "./errors.ts";
import { booleanOption, checkOptionKeys } from "./options.ts";
import { getBackend } from "./backend/mod.ts";
import { gradSlot, type Tensor } from "./tensor.ts";

/** The backward half of one recorded op. */
export interface GradFn {
  /** Op name, for error messages. */
  readonly name: string;
  /** The op's tensor inputs (null where an input needs no gradient). */
  inputs: (Tensor | null)[];
  /** Maps the gradient of the output to one gradient per input (null: none). */
  backward: (grad: Tensor) => (Tensor | null)[];
  /** Set once the graph has been freed by a backward pass without `retainGraph`. */
  released: boolean;
}

let gradEnabled = true;

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording any graph (for evaluation and parameter updates). `fn` must be
 * synchronous: recording comes back when `fn` returns, so code after an `await` inside it would
 * record again. An async function is refused (TypeError, before it runs); wrap each
 * synchronous part of async code in its own `noGrad`.
 * @example
 * ```ts
 * import { noGrad, tensor } from "@sparselinear/sparselinear";
 * const w = tensor([1, 2], [2], { requiresGrad: true });
 * const y = noGrad(() => w.mul(w));
 * console.log(y.requiresGrad); // false
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(`noGrad() needs a function, got ${describeValue(fn)}`);
  }
  if (fn.constructor.name === "AsyncFunction" || fn.constructor.name === "AsyncGeneratorFunction") {
    throw new TypeError(
      "noGrad() needs a synchronous function: after an await the graph would be recorded " +
        "again; call noGrad around each synchronous part instead",
    );
  }
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Records `output` as produced by an op of `inputs`, if any input requires a gradient and
 * recording is on. Returns `output`.
 */
export function record(
  output: Tensor,
  name: string,
  inputs: (Tensor | null)[],
  backward: (grad: Tensor) => (Tensor | null)[],
): Tensor {
  if (!gradEnabled) return output;
  const tracked = inputs.map((t) => (t !== null && t.requiresGrad ? t : null));
  if (tracked.every((t) => t === null)) return output;
  output.requiresGrad = true;
  output.gradFn = { name, inputs: tracked, backward, released: false };
  return output;
}

/**
 * Recorded tensors that nothing outside the graph can reach (a composite module's consumed
 * intermediates, see lib/nn/intermediates.ts): a backward pass that frees the graph gives
 * their memory back for reuse.
 */
const graphOwned = new WeakSet<Tensor>();

/**
 * Marks `t` (a recorded op's output) as reachable only through the graph: once a backward
 * pass has freed the graph, its memory is given back to its backend (and `t` becomes
 * unusable). Only code that holds every reference to `t` may call this.
 */
export function markGraphOwned(t: Tensor): void {
  if (t.gradFn !== null) graphOwned.add(t);
}

/**
 * Tensors outside the graph (no gradient of their own) that only a recorded op's closure can
 * still reach, by that op's `GradFn`: freed with the graph, as the graph-owned ones.
 */
const ownedConstants = new WeakMap<GradFn, Tensor[]>();

/**
 * Marks `constant` (a tensor that needs no gradient, consumed by the step that recorded
 * `consumer`) as reachable only through `consumer`'s graph: a backward pass that frees a graph
 * reaching `consumer` gives its memory back (a learnt scale's input, say, which its op keeps
 * for the scale's gradient). Only code that holds every reference to `constant` may call this.
 */
export function markGraphOwnedConstant(constant: Tensor, consumer: Tensor): void {
  const fn = consumer.gradFn;
  if (fn === null || constant.gradFn !== null || constant.requiresGrad) return;
  const list = ownedConstants.get(fn);
  if (list === undefined) ownedConstants.set(fn, [constant]);
  else list.push(constant);
}

/**
 * Gives back the memory of the graph-owned tensors of a freed graph, each storage once and
 * none that a tensor outside that set shares (a view the caller holds, the root).
 */
function releaseGraphOwned(order: readonly Tensor[]): void {
  const owned = new Map<Storage, Device>();
  const shared = new Set<Storage>();
  for (const t of order) {
    if (graphOwned.has(t)) owned.set(t.storage, t.device);
    else shared.add(t.storage);
    const constants = t.gradFn === null ? undefined : ownedConstants.get(t.gradFn);
    for (const c of constants ?? []) owned.set(c.storage, c.device);
  }
  for (const [storage, device] of owned) {
    if (!shared.has(storage)) getBackend(device).recycle(storage);
  }
}

/** Tensors reachable from `root` through recorded ops, inputs before the ops that use them. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [tensor, next] = top;
    const inputs = tensor.gradFn?.inputs ?? [];
    if (next < inputs.length) {
      top[1] = next + 1;
      const input = inputs[next];
      if (input !== null && !visited.has(input)) {
        visited.add(input);
        stack.push([input, 0]);
      }
    } else {
      stack.pop();
      order.push(tensor);
    }
  }
  return order;
}

/** Options of `Tensor.backward`. */
export interface BackwardOptions {
  /** Keep the graph so that backward can run through it again (default false). */
  retainGraph?: boolean;
}

/**
 * Backpropagates `grad` (the gradient of some scalar with respect to `root`) through the
 * recorded graph, accumulating into `.grad` of every leaf tensor that requires a gradient.
 */
export function runBackward(
  root: Tensor,
  grad: Tensor,
  accumulate: (into: Tensor | null, add: Tensor) => Tensor,
  options: BackwardOptions = {},
): void {
  checkOptionKeys(options, ["retainGraph"], "backward()");
  const retainGraph = booleanOption(options.retainGraph, "backward() retainGraph", false);
  const order = topologicalOrder(root);
  for (const t of order) {
    if (t.gradFn?.released) {
      throw new Error(
        `Cannot backward through the graph a second time: the saved tensors of "${t.gradFn.name}" ` +
          "were freed by the first backward(). Call backward({ retainGraph: true }) the first time " +
          "if you need to backward twice.",
      );
    }
  }
  const grads = new Map<Tensor, Tensor>([[root, grad]]);
  // Gradients allocated during this pass are the engine's alone (backward closures return
  // them and keep no reference): once consumed they are recycled, and a leaf's first gradient
  // is adopted rather than copied. Anything else (the seed, saved tensors, views of them) is
  // never touched.
  const owned = new Set<Storage>();
  const outer = allocationLog.active;
  allocationLog.active = owned;
  /** Whether `s` is still reachable from the engine: a pending gradient or `except`. */
  const pending = (s: Storage, except: readonly (Tensor | null | undefined)[]): boolean => {
    for (const t of except) if (t?.storage === s) return true;
    for (const t of grads.values()) if (t.storage === s) return true;
    return false;
  };
  const release = (t: Tensor, except: readonly (Tensor | null | undefined)[] = []): void => {
    if (owned.has(t.storage) && !pending(t.storage, except)) {
      owned.delete(t.storage);
      getBackend(t.device).recycle(t.storage);
    }
  };
  try {
    for (let i = order.length - 1; i >= 0; i--) {
      const tensor = order[i];
      const g = grads.get(tensor);
      if (g === undefined) continue;
      grads.delete(tensor);
      const fn = tensor.gradFn;
      if (fn === null) {
        if (!tensor.requiresGrad) continue;
        const previous = gradSlot.peek(tensor);
        if (previous === null && owned.has(g.storage) && !pending(g.storage, [])) {
          owned.delete(g.storage); // adopted: now the tensor's
          gradSlot.adopt(tensor, g);
        } else if (gradSlot.addInPlace(tensor, g)) {
          release(g);
        } else {
          const sum = accumulate(previous, g);
          release(g);
          if (owned.has(sum.storage)) {
            owned.delete(sum.storage);
            // The gradient it replaces is freed now if nothing outside the library saw it.
            if (previous !== null) gradSlot.clear(tensor);
            gradSlot.adopt(tensor, sum);
          } else {
            tensor.grad = sum;
          }
        }
        continue;
      }
      const inputGrads = fn.backward(g);
      fn.inputs.forEach((input, k) => {
        const ig = inputGrads[k];
        if (input === null || ig === null || ig === undefined) return;
        const existing = grads.get(input);
        if (existing === undefined) {
          grads.set(input, ig);
        } else {
          grads.set(input, accumulate(existing, ig));
          release(existing, inputGrads);
          release(ig, inputGrads);
        }
      });
      release(g, inputGrads);
      if (!retainGraph) {
        fn.released = true;
        fn.backward = () => {
          throw new Error(`The graph of "${fn.name}" was freed`);
        };
      }
    }
    // Every closure that saved an activation is gone now.
    if (!retainGraph) releaseGraphOwned(order);
  } finally {
    allocationLog.active = outer;
  }
}
