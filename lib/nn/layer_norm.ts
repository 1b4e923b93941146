/**
 * Layer normalisation over the trailing dimensions (`layerNorm` op and `LayerNorm` module),
 * as PyTorch's `nn.LayerNorm`: one native call forward, one backward. With
 * `activation: "relu"` the ReLU that usually follows runs inside the same calls (no separate
 * pass over the activations forward or backward, no extra buffer kept for the backward).
 * @module
 */
import { isGradEnabled, markGraphOwnedConstant, record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { numel, shapeString, Tensor } from "../tensor.ts";
import { full } from "../creation.ts";
import { Module } from "./module.ts";
import { booleanOption, checkOptionKeys, freezeSettings, numberOption } from "../options.ts";

const MAX_INT32 = 2147483647;

/** What a `LayerNorm` applies to its output: nothing, or a fused ReLU. */
export type LayerNormActivation = "none" | "relu";

function activationOf(value: unknown, where: string): LayerNormActivation {
  if (value === undefined || value === "none") return "none";
  if (value === "relu") return "relu";
  throw new TypeError(`${where} activation must be "none" or "relu", got ${JSON.stringify(value)}`);
}

function normalizedShapeOf(value: number | readonly number[]): number[] {
  const shape = typeof value === "number" ? [value] : value;
  if (!Array.isArray(shape) || shape.length === 0) {
    throw new TypeError(
      `normalizedShape must be a positive integer or a non-empty array of them, got ${
        Array.isArray(value) ? "[]" : describeValue(value)
      }`,
    );
  }
  for (const d of shape) {
    numberOption(d, "normalizedShape entries");
    if (!Number.isInteger(d) || d < 1) {
      throw new RangeError(
        `normalizedShape must hold positive integers, got ${JSON.stringify(value)}`,
      );
    }
  }
  if (numel(shape) > MAX_INT32) {
    throw new RangeError(
      `normalizedShape ${shapeString(shape)} holds ${numel(shape)} elements, above the ` +
        `int32 kernel limit ${MAX_INT32}`,
    );
  }
  return [...shape];
}

/**
 * Normalises `x` over its trailing dimensions `normalizedShape` to zero mean and unit
 * (biased) variance, then applies `weight` and `bias` (each of shape `normalizedShape`, or
 * null): `(x - mean) / sqrt(var + eps) * weight + bias`. `activation: "relu"` returns
 * `relu(layerNorm(...))`, bit for bit, forward and backward, in the same native calls.
 * @example
 * ```ts
 * import { layerNorm, tensor } from "@sparselinear/sparselinear";
 * const y = layerNorm(tensor([[1, 2, 3]]), [3], null, null);
 * console.log(Array.from(y.data, (v) => v.toFixed(3))); // ["-1.225", "0.000", "1.225"]
 * ```
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  activation: LayerNormActivation = "none",
): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("layerNorm() input must be a Tensor");
  const shape = normalizedShapeOf(normalizedShape);
  const relu = activationOf(activation, "layerNorm()") === "relu" ? 1 : 0;
  numberOption(eps, "layerNorm() eps", undefined, "[0, inf)");
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`layerNorm() eps must be a finite number >= 0, got ${eps}`);
  }
  const tail = x.shape.slice(x.ndim - shape.length);
  if (x.ndim < shape.length || tail.join() !== shape.join()) {
    throw new ShapeError(
      `layerNorm() input has shape ${shapeString(x.shape)}, but its trailing dimensions must ` +
        `be the normalized shape ${shapeString(shape)}`,
    );
  }
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t === null) continue;
    if (!(t instanceof Tensor)) throw new TypeError(`layerNorm() ${name} must be a Tensor or null`);
    if (t.shape.join() !== shape.join()) {
      throw new ShapeError(
        `layerNorm() ${name} has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`,
      );
    }
    if (t.device !== x.device) {
      throw new TypeError(`layerNorm() input is on ${x.device} but ${name} is on ${t.device}`);
    }
  }
  const n = numel(shape);
  const rows = x.size / n;
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const needsGrad = isGradEnabled() &&
    (x.requiresGrad || (weight?.requiresGrad ?? false) || (bias?.requiresGrad ?? false));
  const y = backend.empty("float32", x.size);
  // Per-row statistics are kept only when a backward pass may need them.
  const mean = needsGrad ? backend.empty("float32", rows) : null;
  const rstd = needsGrad ? backend.empty("float32", rows) : null;
  backend.check(
    k.sl_layer_norm_fwd(
      BigInt(rows),
      n,
      eps,
      x.storage.ptr(),
      weight?.storage.ptr() ?? null,
      bias?.storage.ptr() ?? null,
      relu,
      y.ptr(),
      mean?.ptr() ?? null,
      rstd?.ptr() ?? null,
    ),
  );
  const out = new Tensor(y, x.shape);
  if (!needsGrad) return out;
  record(out, relu ? "layerNormReLU" : "layerNorm", [x, weight, bias], (grad) => {
    const dx = x.requiresGrad ? backend.empty("float32", x.size) : null;
    const dweight = weight?.requiresGrad ? backend.empty("float32", n) : null;
    const dbias = bias?.requiresGrad ? backend.empty("float32", n) : null;
    backend.check(
      k.sl_layer_norm_bwd(
        BigInt(rows),
        n,
        x.storage.ptr(),
        mean!.ptr(),
        rstd!.ptr(),
        weight?.storage.ptr() ?? null,
        bias?.storage.ptr() ?? null,
        relu,
        grad.storage.ptr(),
        dx?.ptr() ?? null,
        dweight?.ptr() ?? null,
        dbias?.ptr() ?? null,
      ),
    );
    return [
      dx === null ? null : new Tensor(dx, x.shape),
      dweight === null ? null : new Tensor(dweight, shape),
      dbias === null ? null : new Tensor(dbias, shape),
    ];
  });
  // Only the closure above holds the statistics: their memory goes back with the graph, so a
  // training loop reuses it (a fresh array each step cost ~0.1-0.2 ms in V8's bookkeeping of
  // external memory at the wide model's ~1 GB of arrays).
  markGraphOwnedConstant(new Tensor(mean!, [rows]), out);
  markGraphOwnedConstant(new Tensor(rstd!, [rows]), out);
  return out;
}

/** Options of `LayerNorm`. */
export interface LayerNormOptions {
  /** Added to the variance for numerical stability (default 1e-5). */
  eps?: number;
  /** Learn a per-element `weight` (ones) and `bias` (zeros) (default true). */
  elementwiseAffine?: boolean;
  /** With `elementwiseAffine`, also learn the `bias` (default true). */
  bias?: boolean;
  /**
   * `"relu"`: return `relu(layerNorm(x))`, fused into the normalisation's native calls (one
   * pass less over the activations forward and backward); default `"none"`.
   */
  activation?: LayerNormActivation;
}

/**
 * Layer normalisation over the last dimensions, as PyTorch's `nn.LayerNorm`; parameters
 * `weight` (ones) and `bias` (zeros) of shape `normalizedShape`.
 * @example
 * ```ts
 * import { LayerNorm, randn } from "@sparselinear/sparselinear";
 * const norm = new LayerNorm(2000);
 * const y = norm.forward(randn([64, 2000], { seed: 0 }));
 * console.log(y.shape); // [64, 2000]
 * ```
 */
export class LayerNorm extends Module {
  /** The trailing dimensions normalised over. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance. */
  readonly eps: number;
  /** Whether `weight` and `bias` are learnt. */
  readonly elementwiseAffine: boolean;
  /** What is applied to the output: `"none"` or a fused `"relu"`. */
  readonly activation: LayerNormActivation;

  /** Creates the layer for inputs whose trailing dimensions are `normalizedShape`. */
  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    checkOptionKeys(options, ["eps", "elementwiseAffine", "bias", "activation"], "LayerNorm");
    this.normalizedShape = Object.freeze(normalizedShapeOf(normalizedShape));
    this.eps = numberOption(options.eps, "LayerNorm eps", 1e-5, "[0, inf)");
    if (!Number.isFinite(this.eps) || this.eps < 0) {
      throw new RangeError(`LayerNorm eps must be a finite number >= 0, got ${this.eps}`);
    }
    this.elementwiseAffine = booleanOption(
      options.elementwiseAffine,
      "LayerNorm elementwiseAffine",
      true,
    );
    this.activation = activationOf(options.activation, "LayerNorm");
    if (this.elementwiseAffine) {
      this.registerParameter("weight", full(this.normalizedShape, 1));
      this.registerParameter(
        "bias",
        booleanOption(options.bias, "LayerNorm bias", true) ? full(this.normalizedShape, 0) : null,
      );
    }
    freezeSettings(this, ["normalizedShape", "eps", "elementwiseAffine", "activation"]);
  }

  /** The learnt scale, or null without `elementwiseAffine`. */
  get weight(): Tensor | null {
    return this.getParameter("weight");
  }

  /** The learnt shift, or null. */
  get bias(): Tensor | null {
    return this.getParameter("bias");
  }

  /** Normalises `x` over its trailing `normalizedShape` dimensions. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps, this.activation);
  }

  /** Description, as PyTorch's repr. */
  override toString(): string {
    const act = this.activation === "none" ? "" : `, activation=${this.activation}`;
    return `LayerNorm(${shapeString(this.normalizedShape)}, eps=${this.eps}, ` +
      `elementwiseAffine=${this.elementwiseAffine}${act})`;
  }
}
