/**
 * Inverted dropout (`dropout` op and `Dropout` module), as PyTorch's `nn.Dropout`: in training
 * each element is zeroed with probability `p` and the rest are scaled by `1 / (1 - p)` (computed
 * from the float64 `p` and rounded to float32 once, as PyTorch: `p = 0.9` scales by exactly 10);
 * in evaluation it is the identity.
 *
 * The mask is a pure function of a 64-bit seed and the element index (computed by the native
 * kernel), so it is never stored: the backward pass recomputes it, and a seeded module draws
 * the same masks on every run and on every device.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { type Generator, generatorFrom } from "../random.ts";
import { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";
import { booleanOption, checkOptionKeys, freezeSettings, numberOption } from "../options.ts";

function checkProbability(p: unknown, what: string): number {
  const v = numberOption(p, what, undefined, "[0, 1]"); // "0.5", { p: 0.5 }: TypeErrors
  if (!(v >= 0 && v <= 1)) {
    throw new RangeError(`${what} must be a probability in [0, 1], got ${v}`);
  }
  return v;
}

/** Draws a 64-bit mask seed from a generator. */
function nextSeed(generator: Generator): bigint {
  return (BigInt(generator.nextUint32()) << 32n) | BigInt(generator.nextUint32());
}

/** Options of the `dropout` op. */
export interface DropoutOptions {
  /** Apply dropout (true, default) or return `x` unchanged (false: evaluation). */
  training?: boolean;
  /** Seed (number or bigint) or generator of the mask; default: a random one. */
  seed?: number | bigint | Generator;
}

/**
 * Zeroes each element of `x` with probability `p` and scales the others by `1 / (1 - p)`
 * (returns `x` itself when `training` is false or `p` is 0).
 * @example
 * ```ts
 * import { dropout, ones } from "@sparselinear/sparselinear";
 * const y = dropout(ones([1000]), 0.5, { seed: 1 });
 * console.log(y.data.every((v) => v === 0 || v === 2)); // true
 * ```
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("dropout() input must be a Tensor");
  checkProbability(p, "dropout() p");
  checkOptionKeys(options, ["training", "seed"], "dropout()");
  if (!booleanOption(options.training, "dropout() training", true) || p === 0) return x;
  const seed = typeof options.seed === "bigint"
    ? BigInt.asUintN(64, options.seed)
    : nextSeed(generatorFrom(options.seed));
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const n = BigInt(x.size);
  const y = backend.empty("float32", x.size);
  backend.check(k.sl_dropout_fwd(n, p, seed, x.storage.ptr(), y.ptr()));
  return record(new Tensor(y, x.shape), "dropout", [x], (grad) => {
    const dx = backend.empty("float32", x.size);
    backend.check(k.sl_dropout_bwd(n, p, seed, grad.storage.ptr(), dx.ptr()));
    return [new Tensor(dx, x.shape)];
  });
}

/** Options of the `Dropout` module. */
export interface DropoutModuleOptions {
  /** Seed or generator of the masks (default: random); the same seed gives the same masks. */
  seed?: number | Generator;
}

/**
 * Dropout layer: active in training mode, the identity after `eval()`.
 * @example
 * ```ts
 * import { Dropout, ones } from "@sparselinear/sparselinear";
 * const drop = new Dropout(0.25, { seed: 0 });
 * const train = drop.forward(ones([4, 8]));
 * drop.eval();
 * console.log(drop.forward(ones([4, 8])).data.every((v) => v === 1)); // true
 * ```
 */
export class Dropout extends Module {
  /** Probability of zeroing an element. */
  readonly p: number;
  #generator: Generator;

  /** Creates a dropout layer with drop probability `p` (default 0.5). */
  constructor(p = 0.5, options: DropoutModuleOptions = {}) {
    super();
    this.p = checkProbability(p, "Dropout p");
    checkOptionKeys(options, ["seed"], "Dropout");
    this.#generator = generatorFrom(options.seed);
    freezeSettings(this, ["p"]);
  }

  /** Applies dropout in training mode; returns `x` in evaluation mode. */
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    // Checked before the mask's seed is drawn: a refused call leaves the next masks as they were.
    if (!(x instanceof Tensor)) throw new TypeError("Dropout input must be a Tensor");
    return dropout(x, this.p, { seed: nextSeed(this.#generator) });
  }

  /** Description, as PyTorch's repr. */
  override toString(): string {
    return `Dropout(p=${this.p})`;
  }
}
