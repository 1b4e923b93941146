/**
 * `Module`: the base of every layer. It owns named parameters, buffers and child modules,
 * switches train/eval mode, and reads/writes a state dict with dotted names
 * (`0.weights`, `0.indices`, `0.bias`, ...), as PyTorch does.
 * @module
 */
import type { Device } from "../backend/backend.ts";
import { checkDevice } from "../backend/mod.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { markParameterReplaced } from "../optim/param_state.ts";
import { gradSlot, IndexTensor, shapeString, Tensor } from "../tensor.ts";
import { booleanOption, checkOptionKeys } from "../options.ts";

/** One entry of a state dict: float parameters/buffers or integer index buffers. */
export type StateValue = Tensor | IndexTensor;

/** A model's state: dotted names to tensors. */
export type StateDict = Record<string, StateValue>;

/** Options of `Module.loadStateDict`. */
export interface LoadStateOptions {
  /**
   * Require the keys to match exactly (default true). Optional state (see `registerBuffer`) may
   * be missing even then: the module keeps its current value.
   */
  strict?: boolean;
}

/**
 * What `Module.loadStateDict` did not match, as PyTorch's `load_state_dict` returns it: keys the
 * model has but the state lacked (optional state excluded), and keys the state had but the
 * model does not. Both are empty after a strict load (which throws instead).
 */
export interface LoadStateResult {
  /** Names the model expected and the state dict did not have. */
  missingKeys: string[];
  /** Names in the state dict that no parameter or buffer of the model has. */
  unexpectedKeys: string[];
}

/** Options of `Module.stateDict`. */
export interface StateDictOptions {
  /**
   * Include optional state (default true): buffers such as K-Winners' duty cycle that resume
   * training exactly but that the seed's PyTorch modules do not have. `false` gives a state dict
   * that PyTorch's `load_state_dict(strict=True)` accepts for the seed's model.
   */
  optional?: boolean;
}

/** Options of `Module.namedParameters`, `namedBuffers` and `namedModules`. */
export interface NamedOptions {
  /** List an object reached along several paths once, under its first name (default true). */
  removeDuplicate?: boolean;
}

const NAMED_OPTIONS = ["removeDuplicate"];

/**
 * The prefix of the dotted names under a caller's `prefix`: "model" names "model.0.weight", as
 * PyTorch's `named_parameters(prefix="model")`; "" names them from the root.
 */
function namePrefix(prefix: string): string {
  if (typeof prefix !== "string") {
    throw new TypeError(`the name prefix must be a string, got ${describeValue(prefix)}`);
  }
  return prefix === "" ? "" : `${prefix}.`;
}

/** The entries whose object was not seen earlier in `entries`. */
function firstOfEach<T>(entries: [string, T][]): [string, T][] {
  const seen = new Set<T>();
  return entries.filter(([, value]) => {
    if (seen.has(value)) return false;
    seen.add(value);
    return true;
  });
}

/** Base class of layers and models. */
export abstract class Module {
  #training = true;
  #parameters = new Map<string, Tensor | null>();
  #buffers = new Map<string, StateValue>();
  #optionalBuffers = new Set<string>();
  #children = new Map<string, Module>();

  /**
   * Training mode (true) or evaluation mode (false) of this module alone; `train()` / `eval()`
   * set it on the whole tree. Only a boolean: "false" or 0 would be taken by truthiness.
   */
  get training(): boolean {
    return this.#training;
  }
  set training(mode: boolean) {
    if (typeof mode !== "boolean") {
      throw new TypeError(`training must be true or false, got ${describeValue(mode)}`);
    }
    this.#training = mode;
  }

  /** Computes the module's output. */
  abstract forward(x: Tensor): Tensor;

  /** Registers (or replaces) a parameter; null registers an absent optional one (no bias). */
  protected registerParameter(name: string, value: Tensor | null): void {
    if (value !== null) value.requiresGrad = true;
    const old = this.#parameters.get(name);
    if (old && old !== value) markParameterReplaced(old);
    this.#parameters.set(name, value);
  }

  /**
   * Registers (or replaces) a buffer: state that is saved but not trained. An `optional` buffer
   * is saved too, but a state dict without it still loads (strict or not), leaving it as it is:
   * state that PyTorch's counterpart of the module does not have.
   */
  protected registerBuffer(
    name: string,
    value: StateValue,
    options: { optional?: boolean } = {},
  ): void {
    checkOptionKeys(options, ["optional"], "registerBuffer()");
    this.#buffers.set(name, value);
    if (options.optional) this.#optionalBuffers.add(name);
    else this.#optionalBuffers.delete(name);
  }

  /** Registers a child module under `name`. */
  protected registerModule(name: string, module: Module): void {
    if (!(module instanceof Module)) {
      throw new TypeError(`Child "${name}" must be a Module, got ${typeof module}`);
    }
    // A cycle would make every walk of the tree (parameters(), stateDict()) overflow the stack.
    if (module.namedModules().some(([, m]) => m === this)) {
      throw new TypeError(`Child "${name}" contains this module: a module cannot contain itself`);
    }
    this.#children.set(name, module);
  }

  /** A registered parameter of this module (not of children). */
  protected getParameter(name: string): Tensor | null {
    return this.#parameters.get(name) ?? null;
  }

  /** A registered buffer of this module (not of children). */
  protected getBuffer(name: string): StateValue | undefined {
    return this.#buffers.get(name);
  }

  /** Direct children, with their names; one registered twice comes once (as PyTorch). */
  namedChildren(): [string, Module][] {
    return firstOfEach([...this.#children]);
  }

  /**
   * Every parameter of this module and its descendants, with dotted names. A tensor reached
   * twice (a module used at two places of the model) comes once, under its first name, as
   * PyTorch's `named_parameters()`; `{ removeDuplicate: false }` lists every name.
   */
  namedParameters(prefix = "", options: NamedOptions = {}): [string, Tensor][] {
    checkOptionKeys(options, NAMED_OPTIONS, "namedParameters()");
    booleanOption(options.removeDuplicate, "namedParameters() removeDuplicate", true);
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.#visit(namePrefix(prefix), options)) {
      for (const [name, p] of m.#parameters) if (p !== null) out.push([path + name, p]);
    }
    return options.removeDuplicate === false ? out : firstOfEach(out);
  }

  /** Every parameter of this module and its descendants, each once. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer of this module and its descendants, with dotted names (each once by default). */
  namedBuffers(prefix = "", options: NamedOptions = {}): [string, StateValue][] {
    checkOptionKeys(options, NAMED_OPTIONS, "namedBuffers()");
    booleanOption(options.removeDuplicate, "namedBuffers() removeDuplicate", true);
    const out: [string, StateValue][] = [];
    for (const [path, m] of this.#visit(namePrefix(prefix), options)) {
      for (const [name, b] of m.ownNamedBuffers()) out.push([path + name, b]);
    }
    return options.removeDuplicate === false ? out : firstOfEach(out);
  }

  /** This module's own buffers, without prefix (layers with computed buffers add them). */
  protected ownNamedBuffers(): [string, StateValue][] {
    return [...this.#buffers];
  }

  /**
   * Every module in the tree, this one first, with dotted names; a module used at two places
   * comes once, under its first name (as PyTorch), unless `{ removeDuplicate: false }`.
   */
  namedModules(prefix = "", options: NamedOptions = {}): [string, Module][] {
    checkOptionKeys(options, NAMED_OPTIONS, "namedModules()");
    booleanOption(options.removeDuplicate, "namedModules() removeDuplicate", true);
    const out = [...this.#tree(namePrefix(prefix))].map(([path, m]): [string, Module] => [
      path.replace(/\.$/, ""),
      m,
    ]);
    return options.removeDuplicate === false ? out : firstOfEach(out);
  }

  /**
   * The modules whose members `namedParameters`/`namedBuffers` list: each once (its first
   * path) by default, as PyTorch's `named_modules(remove_duplicate=True)` feeding them, so a
   * computed buffer (a fresh object per call) of a module used twice is listed once too.
   */
  #visit(prefix: string, options: NamedOptions): Iterable<[string, Module]> {
    const all = [...this.#tree(prefix)];
    return options.removeDuplicate === false ? all : firstOfEach(all);
  }

  /** (prefix for own names, module) of this module and every descendant, at every path. */
  *#tree(prefix: string): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.#children) yield* child.#tree(`${prefix}${name}.`);
  }

  /**
   * Sets training mode on this module and, through each child's own `train(mode)` (as
   * PyTorch, so that an override runs), on its descendants.
   */
  train(mode = true): this {
    if (typeof mode !== "boolean") {
      throw new TypeError(`train() mode must be true or false, got ${describeValue(mode)}`);
    }
    this.training = mode;
    for (const [, child] of this.namedChildren()) child.train(mode);
    return this;
  }

  /** Sets evaluation mode (same as `train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** Clears the gradient of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) gradSlot.clear(p);
  }

  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(options: StateDictOptions = {}): StateDict {
    checkOptionKeys(options, ["optional"], "stateDict()");
    // `optional: "false"` or 0 would keep the optional state: booleans only.
    const optional = booleanOption(options.optional, "stateDict() optional", true);
    const out: StateDict = {};
    // Every name, as PyTorch: a shared module's state is saved under each of its paths; each
    // module's parameters, then its buffers, then its children's (torch's order).
    for (const [path, m] of this.#tree("")) {
      for (const [name, p] of m.#parameters) if (p !== null) out[path + name] = p;
      for (const [name, b] of m.ownNamedBuffers()) out[path + name] = b;
    }
    if (!optional) {
      for (const key of this.#optionalKeys()) delete out[key];
    }
    return out;
  }

  /** Dotted names of the optional buffers of this module and its descendants. */
  #optionalKeys(): Set<string> {
    const keys = new Set<string>();
    for (const [prefix, m] of this.#tree("")) {
      for (const name of m.#optionalBuffers) keys.add(prefix + name);
    }
    return keys;
  }

  /** This module's own state keys (parameters then buffers), without prefix. */
  protected ownStateKeys(): string[] {
    const keys: string[] = [];
    for (const [name, p] of this.#parameters) if (p !== null) keys.push(name);
    for (const name of this.#buffers.keys()) keys.push(name);
    return keys;
  }

  /**
   * Checks this module's own part of a state dict (keys without prefix) and returns a function
   * that applies it. Throws before anything changes. The default copies values into the
   * existing tensors and requires equal shapes; layers whose shapes can change (SparseLinear's
   * nnz) override it.
   */
  protected prepareOwnState(state: Record<string, StateValue>, prefix: string): () => void {
    const applies: (() => void)[] = [];
    for (const name of this.ownStateKeys()) {
      const target = this.#parameters.get(name) ?? this.#buffers.get(name);
      const source = state[name];
      if (target === undefined || target === null || source === undefined) continue;
      applies.push(prepareCopy(prefix + name, target, source));
    }
    return () => applies.forEach((apply) => apply());
  }

  /**
   * Loads a state dict (as written by `stateDict()` or by PyTorch). Every key, shape and dtype is
   * checked first; on any problem an error lists it and the model is left untouched. With
   * `{ strict: false }` keys may be missing or unexpected: the result lists them.
   */
  loadStateDict(state: StateDict, options: LoadStateOptions = {}): LoadStateResult {
    checkOptionKeys(options, ["strict"], "loadStateDict()");
    const strict = booleanOption(options.strict, "loadStateDict() strict", true);
    if (state === null || typeof state !== "object") {
      throw new TypeError("loadStateDict() needs an object mapping names to tensors");
    }
    const modules = this.namedModules("", { removeDuplicate: false }); // every path has keys
    const optional = this.#optionalKeys();
    const expected = new Set<string>();
    const applies: (() => void)[] = [];
    const problems: string[] = [];
    const missingKeys: string[] = [];
    for (const [path, module] of modules) {
      const prefix = path === "" ? "" : `${path}.`;
      const own: Record<string, StateValue> = {};
      for (const key of module.ownStateKeys()) {
        expected.add(prefix + key);
        if (!(prefix + key in state)) {
          if (!optional.has(prefix + key)) missingKeys.push(prefix + key);
          continue;
        }
        // Any other value is named here (undefined too: a strict load took it as absent).
        const value: unknown = state[prefix + key];
        if (value instanceof Tensor || value instanceof IndexTensor) {
          own[key] = value;
        } else {
          problems.push(
            `"${prefix + key}" must be a Tensor or IndexTensor, got ${describeValue(value)}`,
          );
        }
      }
      try {
        applies.push(module.prepareOwnState(own, prefix));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    const unexpectedKeys = Object.keys(state).filter((key) => !expected.has(key));
    if (strict) {
      problems.unshift(...missingKeys.map((key) => `missing key "${key}"`));
      problems.push(...unexpectedKeys.map((key) => `unexpected key "${key}"`));
    }
    if (problems.length > 0) {
      throw new Error(`loadStateDict() failed, the model is unchanged: ${problems.join("; ")}`);
    }
    applies.forEach((apply) => apply());
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Moves every parameter (with its gradient) and buffer to `device` (in place) and returns this
   * module. A tensor that several modules share (tied weights) is moved once, so the modules
   * still share it afterwards, as with PyTorch's `Module.to`.
   */
  to(device: Device): this {
    checkDevice(device); // also where nothing would move: "gpu" is no device
    const moved = new Map<Tensor, Tensor>();
    const move = (t: Tensor, isParameter: boolean): Tensor => {
      let q = moved.get(t);
      if (q === undefined) {
        q = t.to(device);
        if (isParameter) {
          q.requiresGrad = t.requiresGrad;
          const grad = t.grad;
          if (grad !== null) q.grad = grad.to(device);
          markParameterReplaced(t);
        }
        moved.set(t, q);
      }
      return q;
    };
    for (const [, m] of this.namedModules()) {
      for (const [name, p] of m.#parameters) {
        if (p !== null && p.device !== device) m.#parameters.set(name, move(p, true));
      }
      for (const [name, b] of m.#buffers) {
        if (b instanceof Tensor && b.device !== device) m.#buffers.set(name, move(b, false));
      }
      m.onDeviceChange(device);
    }
    return this;
  }

  /** Hook for modules holding device data outside parameters/buffers (e.g. CSR arrays). */
  protected onDeviceChange(_device: Device): void {}
}

/** Validates copying `source` into `target` and returns the copy to run later. */
export function prepareCopy(name: string, target: StateValue, source: StateValue): () => void {
  const sameKind = (target instanceof Tensor) === (source instanceof Tensor);
  if (!sameKind) {
    const want = target instanceof Tensor ? "float32" : "integer";
    throw new TypeError(`"${name}" must be a ${want} tensor`);
  }
  if (target.shape.join() !== source.shape.join()) {
    throw new ShapeError(
      `"${name}" has shape ${shapeString(source.shape)}, expected ${shapeString(target.shape)}`,
    );
  }
  if (target instanceof Tensor) {
    const values = (source as Tensor).toArray();
    return () => target.storage.write(values);
  }
  const ints = (source as IndexTensor).data.slice();
  return () => (target as IndexTensor).data.set(ints);
}
