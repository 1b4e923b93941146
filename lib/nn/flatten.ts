/**
 * `Flatten`: merges a range of dimensions into one, as PyTorch's `nn.Flatten` (by default
 * every dimension but the batch: `[B, 1, 28, 28]` → `[B, 784]`). A view: no copy.
 * @module
 */
import { record } from "../autograd.ts";
import { checkOptionKeys, freezeSettings, numberOption } from "../options.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

function checkDim(dim: number, ndim: number, what: string): number {
  const rank = Math.max(ndim, 1);
  numberOption(dim, `flatten() ${what}`);
  if (!Number.isInteger(dim) || dim < -rank || dim >= rank) {
    throw new RangeError(`flatten() ${what} ${dim} is outside [${-rank}, ${rank - 1}]`);
  }
  return dim < 0 ? dim + rank : dim;
}

/**
 * Merges dimensions `startDim..endDim` (inclusive; negative counts from the end) of `x` into
 * one. Shares `x`'s memory; the gradient is reshaped back.
 * @example
 * ```ts
 * import { flatten, zeros } from "@sparselinear/sparselinear";
 * console.log(flatten(zeros([64, 1, 28, 28])).shape); // [64, 784]
 * ```
 */
export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("flatten() input must be a Tensor");
  // As PyTorch, a 0-d tensor takes dims as if it had one (0 or -1), checked before it becomes [1].
  const start = checkDim(startDim, x.ndim, "startDim");
  const end = checkDim(endDim, x.ndim, "endDim");
  if (start > end) {
    throw new RangeError(
      `flatten() startDim ${startDim} comes after endDim ${endDim} for shape ${
        shapeString(x.shape)
      }`,
    );
  }
  if (x.ndim === 0) return reshapeView(x, [1]);
  const merged = x.shape.slice(start, end + 1).reduce((a, b) => a * b, 1);
  return reshapeView(x, [...x.shape.slice(0, start), merged, ...x.shape.slice(end + 1)]);
}

/** `x` viewed with another shape of the same size (shared memory), recorded for autograd. */
function reshapeView(x: Tensor, shape: number[]): Tensor {
  const out = new Tensor(x.storage, shape);
  return record(out, "flatten", [x], (grad) => [new Tensor(grad.storage, x.shape)]);
}

/** Options of `Flatten`. */
export interface FlattenOptions {
  /** First dimension merged (default 1: keep the batch dimension). */
  startDim?: number;
  /** Last dimension merged, inclusive (default -1). */
  endDim?: number;
}

/**
 * Flattening layer, as PyTorch's `nn.Flatten`.
 * @example
 * ```ts
 * import { Flatten, zeros } from "@sparselinear/sparselinear";
 * console.log(new Flatten().forward(zeros([2, 3, 4])).shape); // [2, 12]
 * ```
 */
export class Flatten extends Module {
  /** First dimension merged. */
  readonly startDim: number;
  /** Last dimension merged (inclusive). */
  readonly endDim: number;

  /** Creates the layer (defaults: every dimension but the first). */
  constructor(options: FlattenOptions = {}) {
    super();
    checkOptionKeys(options, ["startDim", "endDim"], "Flatten");
    this.startDim = numberOption(options.startDim, "Flatten startDim", 1);
    this.endDim = numberOption(options.endDim, "Flatten endDim", -1);
    for (const [name, v] of [["startDim", this.startDim], ["endDim", this.endDim]] as const) {
      if (!Number.isInteger(v)) throw new TypeError(`Flatten ${name} must be an integer, got ${v}`);
    }
    freezeSettings(this, ["startDim", "endDim"]);
  }

  /** Merges the dimensions `startDim..endDim` of `x`. */
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  /** Description, as PyTorch's repr. */
  override toString(): string {
    return `Flatten(startDim=${this.startDim}, endDim=${this.endDim})`;
  }
}
