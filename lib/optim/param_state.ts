/**
 * Per-parameter optimizer state that follows sparse topology changes.
 *
 * Optimizers register each state tensor they keep for a parameter (momentum buffer, Adam
 * moments). When a dynamic SparseLinear prunes and regrows connections it calls
 * `remapParameterState(weights, oldIndexOf)`: entry k of every registered state becomes the old
 * entry `oldIndexOf[k]`, or 0 for a new connection (`oldIndexOf[k] === -1`). This is what the
 * PyTorch SparseLinear got wrong: it re-created the parameter and silently dropped its state.
 * @module
 */
import { IndexTensor, type Tensor } from "../tensor.ts";

const states = new WeakMap<Tensor, Set<Tensor>>();

/** Records that `state` holds one value per element of `param` and must follow its topology. */
export function registerParameterState(param: Tensor, state: Tensor): void {
  let set = states.get(param);
  if (set === undefined) states.set(param, set = new Set());
  set.add(state);
}

/** Forgets every state registered for `param` (an optimizer that is discarded). */
export function unregisterParameterState(param: Tensor, state: Tensor): void {
  states.get(param)?.delete(state);
}

/**
 * Moves every registered state of `param` to a new element order: new[k] = old[oldIndexOf[k]],
 * or 0 where oldIndexOf[k] is -1. Sizes may differ (a state dict with another nnz was loaded).
 */
export function remapParameterState(param: Tensor, oldIndexOf: Int32Array | IndexTensor): void {
  const map = oldIndexOf instanceof IndexTensor ? oldIndexOf.data : oldIndexOf;
  const set = states.get(param);
  if (set === undefined) return;
  for (const state of set) {
    const old = state.toArray();
    const fresh = new Float32Array(map.length);
    for (let k = 0; k < map.length; k++) {
      const j = map[k];
      fresh[k] = j >= 0 && j < old.length ? old[j] : 0;
    }
    if (fresh.length === state.size) state.storage.write(fresh);
    else {throw new RangeError(
        "remapParameterState: a state's size changed; re-create the optimizer",
      );}
  }
}

const replaced = new WeakSet<Tensor>();

/**
 * Records that a module no longer holds `param` (it took a new tensor: `model.to(device)`, or a
 * state dict or pattern with another connection count). An optimizer still holding it would
 * update a tensor nothing reads; `isReplacedParameter` lets it say so instead.
 */
export function markParameterReplaced(param: Tensor): void {
  replaced.add(param);
}

/** Whether a module replaced `param` by another tensor (see `markParameterReplaced`). */
export function isReplacedParameter(param: Tensor): boolean {
  return replaced.has(param);
}
