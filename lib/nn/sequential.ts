/**
 * `Sequential`: modules applied one after the other, named "0", "1", ... so that state dict
 * keys (`0.weight`, `0.bias`, ..., `N.weights` for a SparseLinear) match PyTorch's
 * `nn.Sequential`.
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { keepsNoReferences, releaseConsumed } from "./intermediates.ts";
import { Module } from "./module.ts";
import { numberOption } from "../options.ts";

/**
 * A chain of modules: `forward(x)` feeds `x` through each in order.
 * @example
 * ```ts
 * import { Linear, ReLU, Sequential, randn } from "@sparselinear/sparselinear";
 * const model = new Sequential(new Linear(4, 8, { seed: 0 }), new ReLU(), new Linear(8, 2, { seed: 1 }));
 * console.log(Object.keys(model.stateDict())); // ["0.weight", "0.bias", "2.weight", "2.bias"]
 * console.log(model.forward(randn([3, 4], { seed: 2 })).shape); // [3, 2]
 * ```
 */
export class Sequential extends Module {
  #layers: Module[] = [];

  /** Creates the chain from `modules`, named by their position. */
  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Adds `module` at the end (named by its position) and returns this chain. */
  append(module: Module): this {
    if (!(module instanceof Module)) {
      throw new TypeError(
        `Sequential takes Modules; item ${this.#layers.length} is ${
          module === null ? "null" : typeof module
        }`,
      );
    }
    this.registerModule(String(this.#layers.length), module);
    this.#layers.push(module);
    return this;
  }

  /** Number of modules. */
  get length(): number {
    return this.#layers.length;
  }

  /** The module at `index` (negative counts from the end). */
  at(index: number): Module {
    numberOption(index, "Sequential index");
    const m = Number.isInteger(index) ? this.#layers.at(index) : undefined;
    if (m === undefined) {
      throw new RangeError(
        `Sequential index ${index} is outside [-${this.length}, ${this.length})`,
      );
    }
    return m;
  }

  /** The modules in order. */
  [Symbol.iterator](): Iterator<Module> {
    return this.#layers[Symbol.iterator]();
  }

  /**
   * Feeds `x` through every module in order. An activation passed between two of the
   * library's modules is freed for reuse once consumed (see lib/nn/intermediates.ts): it is
   * not visible outside the chain, and those modules keep no reference to it.
   */
  forward(x: Tensor): Tensor {
    let out = x;
    // Whether `out` is memory made inside this chain that only the library's modules have
    // seen. A module that passes its input through (Dropout in eval mode or p = 0) or returns
    // a view of it (Flatten) makes nothing new: its output is as private as its input, which
    // may be the caller's or a user module's (that may keep it).
    let outIsPrivate = false;
    for (const m of this.#layers) {
      const next = m.forward(out);
      const trusted = keepsNoReferences(m);
      if (outIsPrivate && trusted) releaseConsumed(out, next, x);
      outIsPrivate = trusted && (outIsPrivate || next.storage !== out.storage);
      out = next;
    }
    return out;
  }

  /** Description, one module per line, as PyTorch's repr. */
  override toString(): string {
    // A child's own lines are indented under its entry, as PyTorch's _addindent.
    const lines = this.#layers.map((m, i) => `  (${i}): ${String(m).replaceAll("\n", "\n  ")}`);
    return lines.length === 0 ? "Sequential()" : `Sequential(\n${lines.join("\n")}\n)`;
  }
}
