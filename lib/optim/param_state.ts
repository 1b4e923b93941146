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

/**
 * Each parameter's registered states, held weakly: the optimizer that made a state owns it (as a
 * PyTorch optimizer owns its `state`), so an optimizer the program drops is collected with its
 * states, and later topology changes stop copying them. (A strong registry kept every discarded
 * optimizer's buffers alive for the parameter's lifetime and remapped them all at each update.)
 */
const states = new WeakMap<Tensor, Set<WeakRef<Tensor>>>();
/** The one WeakRef of each registered state (so registering twice adds nothing). */
const refs = new WeakMap<Tensor, WeakRef<Tensor>>();

/** Records that `state` holds one value per element of `param` and must follow its topology. */
export function registerParameterState(param: Tensor, state: Tensor): void {
  let set = states.get(param);
  if (set === undefined) states.set(param, set = new Set());
  let ref = refs.get(state);
  if (ref === undefined) refs.set(state, ref = new WeakRef(state));
  set.add(ref);
}

/** Forgets a state registered for `param` (its optimizer reset or replaced it). */
export function unregisterParameterState(param: Tensor, state: Tensor): void {
  const ref = refs.get(state);
  if (ref !== undefined) states.get(param)?.delete(ref);
}

/** The live registered states of `param`; forgets those already collected. */
function liveStates(param: Tensor): Tensor[] {
  const set = states.get(param);
  if (set === undefined) return [];
  const live: Tensor[] = [];
  for (const ref of set) {
    const state = ref.deref();
    if (state === undefined) set.delete(ref);
    else live.push(state);
  }
  return live;
}

/** How many live state tensors follow `param` (each takes a fresh copy at a topology change). */
export function registeredStateCount(param: Tensor): number {
  return liveStates(param).length;
}

/**
 * Moves every registered state of `param` to a new element order: new[k] = old[oldIndexOf[k]],
 * or 0 where oldIndexOf[k] is -1. Sizes may differ (a state dict with another nnz was loaded).
 */
export function remapParameterState(param: Tensor, oldIndexOf: Int32Array | IndexTensor): void {
  const map = oldIndexOf instanceof IndexTensor ? oldIndexOf.data : oldIndexOf;
  for (const state of liveStates(param)) {
    // A CPU state is read in place (it is rewritten only after the loop); a device one copied.
    const old = (state.storage.host as Float32Array | undefined) ?? state.toArray();
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
