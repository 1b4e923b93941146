/**
 * `Optimizer`: the base of SGD and Adam. It holds the parameters, the learning rate and the
 * per-parameter state tensors (momentum, moments). State tensors are registered with
 * `registerParameterState`, so a SparseLinear that prunes and regrows connections moves each
 * connection's state with it (new connections start at 0).
 * @module
 */
import { getBackend } from "../backend/mod.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { checkAllocation } from "../memory_check.ts";
import { Module } from "../nn/module.ts";
import { freezeSettings } from "../options.ts";
import { gradSlot, shapeString, Tensor } from "../tensor.ts";
import {
  isReplacedParameter,
  registerParameterState,
  unregisterParameterState,
} from "./param_state.ts";

/** What an optimizer accepts as parameters: a list of tensors or a module (its parameters). */
export type ParamsInput = Iterable<Tensor> | Module;

/** An optimizer's saved state: `state.<i>.<name>` for parameter i, as float tensors. */
export type OptimizerState = Record<string, Tensor>;

/**
 * Checks that an option is a finite number inside a range; throws a RangeError naming it, or a
 * TypeError when it is not a number at all ("0.1" is a string, not a value out of range; null
 * is not "use the default"). `fallback` stands for an undefined value.
 */
export function checkOption(
  value: unknown,
  name: string,
  range: { min?: number; max?: number; maxExclusive?: boolean } = {},
  fallback?: number,
): number {
  if (value === undefined && fallback !== undefined) value = fallback;
  const { min, max, maxExclusive = false } = range;
  const bad = typeof value !== "number" || !Number.isFinite(value) ||
    (min !== undefined && value < min) ||
    (max !== undefined && (maxExclusive ? value >= max : value > max));
  if (bad) {
    const lo = min === undefined ? "(-inf" : `[${min}`;
    const hi = max === undefined ? "inf)" : `${max}${maxExclusive ? ")" : "]"}`;
    if (typeof value !== "number") {
      throw new TypeError(
        `Invalid ${name}: ${describeValue(value)}; it must be a number in ${lo}, ${hi}`,
      );
    }
    throw new RangeError(`Invalid ${name}: ${String(value)}; it must be in ${lo}, ${hi}`);
  }
  return value as number;
}

/**
 * Base class of optimizers: parameters, learning rate, `zeroGrad()`, state bookkeeping.
 * Create the optimizer after moving the model to its device (`model.to(device)` replaces the
 * parameter tensors), as in PyTorch.
 */
export abstract class Optimizer {
  /** The parameters updated by `step()`, in order. */
  readonly params: readonly Tensor[];
  #lr: number;
  /** Per-parameter state tensors by name (created on the first step that needs them). */
  #state: Map<string, Tensor>[];
  /** Updates applied to each parameter so far (parameters without a gradient are skipped). */
  protected readonly steps: number[];

  /** Collects the parameters and checks the learning rate. */
  constructor(params: ParamsInput, lr: number) {
    const iterable = typeof (params as Partial<Iterable<Tensor>> | null)?.[Symbol.iterator] ===
      "function";
    if (!(params instanceof Module) && (!iterable || typeof params === "string")) {
      throw new TypeError(
        `${new.target.name} params must be a Module or an array of Tensors (model.parameters()), ` +
          `got ${describeValue(params)}`,
      );
    }
    const list = params instanceof Module ? params.parameters() : [...params];
    if (list.length === 0) throw new RangeError("Optimizer got an empty parameter list");
    const seen = new Set<Tensor>();
    list.forEach((p, i) => {
      if (!(p instanceof Tensor)) {
        throw new TypeError(`Optimizer parameter ${i} must be a Tensor, got ${describeValue(p)}`);
      }
      if (seen.has(p)) throw new RangeError(`Optimizer parameter ${i} appears more than once`);
      seen.add(p);
    });
    this.params = Object.freeze(list);
    this.#lr = checkOption(lr, "lr", { min: 0 });
    this.#state = list.map(() => new Map());
    this.steps = list.map(() => 0);
    freezeSettings(this, ["params"]);
  }

  /** The learning rate used by the next `step()` (schedules set it). */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    this.#lr = checkOption(value, "lr", { min: 0 });
  }

  /** Clears every parameter's gradient (sets it to null, as PyTorch's `set_to_none`). */
  zeroGrad(): void {
    for (const p of this.params) gradSlot.clear(p);
  }

  /** Applies one update to every parameter that has a gradient. */
  abstract step(): void;

  /**
   * The gradient of parameter `i`, checked against the parameter, or null when it has none
   * (such parameters are skipped, as in PyTorch).
   */
  protected gradOf(i: number): Tensor | null {
    const p = this.params[i];
    if (isReplacedParameter(p)) {
      throw new Error(
        `Parameter ${i} (shape ${shapeString(p.shape)}) is no longer its module's: the module ` +
          "took a new tensor (model.to(device), or a state dict or pattern with another " +
          "connection count). Create the optimizer again after such a change",
      );
    }
    const g = gradSlot.peek(p);
    if (g === null) return null;
    if (g.shape.join() !== p.shape.join()) {
      throw new ShapeError(
        `Parameter ${i} has shape ${shapeString(p.shape)} but its gradient has shape ` +
          `${shapeString(g.shape)}`,
      );
    }
    if (g.device !== p.device) {
      throw new TypeError(`Parameter ${i} is on ${p.device} but its gradient is on ${g.device}`);
    }
    return g;
  }

  /**
   * Every parameter's gradient (`gradOf`), all checked before `step()` updates any: a step
   * refused for one parameter leaves the others and all state as they were.
   */
  protected gradients(): (Tensor | null)[] {
    return this.params.map((_, i) => this.gradOf(i));
  }

  /**
   * State tensor `name` of parameter `i` (zeros of the parameter's size on its device, created
   * on first use and registered to follow topology changes). `created` tells whether it is new.
   */
  protected stateOf(i: number, name: string): { tensor: Tensor; created: boolean } {
    const p = this.params[i];
    // A parameter keeps its size and device (a module that needs others takes a new tensor,
    // which gradOf refuses), so a state tensor, once made, always lines up with it.
    let t = this.#state[i].get(name);
    if (t !== undefined) return { tensor: t, created: false };
    this.#checkStateFits();
    const storage = getBackend(p.device).zeros("float32", p.size);
    t = new Tensor(storage, p.shape);
    this.#state[i].set(name, t);
    registerParameterState(p, t);
    return { tensor: t, created: true };
  }

  /**
   * Refuses, before the first of them is allocated, the CPU state tensors still to be made
   * when together they do not fit. Checked one at a time, each fit: fresh arrays take no
   * memory until the step writes them, so three Adam/AMSGrad buffers of 267 MiB passed a
   * check each with 690 MiB free and the step was killed.
   */
  #checkStateFits(): void {
    const names = this.stepStateNames();
    let bytes = 0;
    this.params.forEach((p, i) => {
      if (p.device !== "cpu") return;
      for (const name of names) if (!this.#state[i].has(name)) bytes += 4 * p.size;
    });
    checkAllocation(
      bytes,
      `${this.constructor.name}'s state (${names.join(", ")})`,
      "Use an optimizer with less state (SGD without momentum keeps none), or a smaller model",
    );
  }

  /** Forgets parameter i's state tensors and update count (the next step is its first). */
  #resetState(i: number): void {
    for (const t of this.#state[i].values()) unregisterParameterState(this.params[i], t);
    this.#state[i].clear();
    this.steps[i] = 0;
  }

  /**
   * The optimizer's state as flat named tensors: `state.<i>.<name>` for each state tensor of
   * parameter i and `state.<i>.step` (a one-element tensor) for its update count; the same
   * layout `loadStateDict` reads (and that a safetensors file can hold). Tensors are copies.
   *
   * Unlike PyTorch's `state_dict()` (whose `param_groups` hold the lr), the learning rate and
   * the other settings are not part of it: they are the constructor's, or a schedule's. To
   * resume a run whose lr changed, set `lr` after loading (or make the schedule again and
   * advance it to the saved step).
   */
  stateDict(): OptimizerState {
    const out: OptimizerState = {};
    this.params.forEach((p, i) => {
      if (this.steps[i] === 0 && this.#state[i].size === 0) return;
      out[`state.${i}.step`] = new Tensor(
        getBackend("cpu").fromHost(new Float32Array([this.steps[i]])),
        [],
      );
      for (const [name, t] of this.#state[i]) {
        out[`state.${i}.${name}`] = new Tensor(getBackend("cpu").fromHost(t.toArray()), p.shape);
      }
    });
    return out;
  }

  /** Names of the state tensors this optimizer keeps per parameter (for validation). */
  protected abstract stateNames(): readonly string[];

  /**
   * The state tensors `step()` creates with these settings (all of `stateNames()` unless a
   * subclass says fewer), for the memory check.
   */
  protected stepStateNames(): readonly string[] {
    return this.stateNames();
  }

  /**
   * Loads state written by `stateDict()`, replacing the current state as PyTorch's
   * `load_state_dict`: a parameter without entries starts afresh (no momentum, step 0). Every
   * key and size is checked first; on a problem an error lists it and the optimizer is left
   * unchanged.
   */
  loadStateDict(state: OptimizerState): void {
    if (state === null || typeof state !== "object" || Array.isArray(state)) {
      throw new TypeError(
        `loadStateDict() needs an object mapping names to tensors, got ${describeValue(state)}`,
      );
    }
    const allowed = new Set(["step", ...this.stateNames()]);
    const problems: string[] = [];
    const pending: { i: number; name: string; values: Float32Array }[] = [];
    const newSteps = new Map<number, number>();
    for (const [key, value] of Object.entries(state)) {
      // The index as stateDict() writes it: "state.00.step" would be a second key for 0.
      const m = /^state\.(0|[1-9]\d*)\.(\w+)$/.exec(key);
      const i = m === null ? -1 : Number(m[1]);
      if (m === null || i >= this.params.length || !allowed.has(m[2])) {
        problems.push(`unexpected key "${key}"`);
        continue;
      }
      if (!(value instanceof Tensor)) {
        problems.push(`"${key}" must be a float32 tensor`);
        continue;
      }
      if (m[2] === "step") {
        const s = value.size === 1 ? value.item() : NaN;
        if (!Number.isInteger(s) || s < 0) problems.push(`"${key}" must hold one integer >= 0`);
        else newSteps.set(i, s);
        continue;
      }
      if (value.size !== this.params[i].size) {
        problems.push(
          `"${key}" has ${value.size} elements, but parameter ${i} has ${this.params[i].size}`,
        );
        continue;
      }
      pending.push({ i, name: m[2], values: value.toArray() });
    }
    for (const { i } of pending) {
      if (!newSteps.has(i)) problems.push(`missing key "state.${i}.step"`);
    }
    if (problems.length > 0) {
      throw new Error(
        `Optimizer loadStateDict() failed, the optimizer is unchanged: ${problems.join("; ")}`,
      );
    }
    this.params.forEach((_, i) => this.#resetState(i));
    for (const [i, s] of newSteps) this.steps[i] = s;
    for (const { i, name, values } of pending) this.stateOf(i, name).tensor.storage.write(values);
  }
}
