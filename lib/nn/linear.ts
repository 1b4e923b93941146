/**
 * The dense linear map `y = x · Wᵀ + b` (`linear` op and `Linear` module), as PyTorch's
 * `nn.Linear`, on the library's GEMM (OpenBLAS when built with it): one GEMM forward, two
 * backward (input and weight gradients) and one column sum for the bias.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { HostStorage } from "../backend/cpu.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { type Generator, generatorFrom } from "../random.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { Module } from "./module.ts";
import { booleanOption, checkOptionKeys, freezeSettings, numberOption } from "../options.ts";
import { checkAllocation } from "../memory_check.ts";

const MAX_INT32 = 2147483647;

/**
 * `x · weightᵀ + bias` for `x` of shape `(*, in)`, `weight` `[out, in]` and `bias` `[out]` (or
 * null). Returns shape `(*, out)`; gradients flow to every input that requires them.
 * @example
 * ```ts
 * import { linear, tensor } from "@sparselinear/sparselinear";
 * const y = linear(tensor([[1, 2]]), tensor([[1, 0], [1, 1]]), tensor([0, 10]));
 * console.log(Array.from(y.data)); // [1, 13]
 * ```
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("linear() input must be a Tensor");
  if (!(weight instanceof Tensor)) {
    throw new TypeError(`linear() weight must be a Tensor, got ${describeValue(weight)}`);
  }
  if (bias !== null && !(bias instanceof Tensor)) {
    throw new TypeError(`linear() bias must be a Tensor or null, got ${describeValue(bias)}`);
  }
  if (weight.ndim !== 2) {
    throw new ShapeError(
      `linear() weight must be a Tensor of shape [out, in], got ${shapeString(weight.shape)}`,
    );
  }
  const [nOut, nIn] = weight.shape;
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn) {
    throw new ShapeError(
      `linear() input has shape ${shapeString(x.shape)}, but its last dimension must be the ` +
        `number of input features, ${nIn}: expected (*, ${nIn})`,
    );
  }
  if (bias !== null && (bias.size !== nOut || bias.ndim !== 1)) {
    throw new ShapeError(`linear() bias must have shape [${nOut}], got ${shapeString(bias.shape)}`);
  }
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t !== null && t.device !== x.device) {
      throw new TypeError(`linear() input is on ${x.device} but ${name} is on ${t.device}`);
    }
  }
  const rows = nIn === 0 ? numelLeading(x) : x.size / nIn; // x holds no values when nIn is 0
  if (rows > MAX_INT32) {
    throw new RangeError(
      `linear() batch (product of the leading dimensions) is ${rows}, above the int32 limit`,
    );
  }
  const outShape = [...x.shape.slice(0, -1), nOut];
  const backend = getBackend(x.device);
  const k = backend.kernels;
  // (sl_gemm with beta 0 writes every entry of its output without reading it: no zeroing.)
  const y = backend.empty("float32", rows * nOut);
  // y[rows, out] = x[rows, in] · W[out, in]ᵀ
  backend.check(
    k.sl_gemm(
      0,
      1,
      rows,
      nOut,
      nIn,
      1,
      x.storage.ptr(),
      Math.max(1, nIn),
      weight.storage.ptr(),
      Math.max(1, nIn),
      0,
      y.ptr(),
      Math.max(1, nOut),
    ),
  );
  if (bias !== null) {
    backend.check(
      k.sl_scale_shift_fwd(BigInt(rows), nOut, y.ptr(), null, bias.storage.ptr(), y.ptr()),
    );
  }
  return record(new Tensor(y, outShape), "linear", [x, weight, bias], (grad) => {
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      // dx[rows, in] = dy[rows, out] · W[out, in]
      const s = backend.empty("float32", x.size);
      backend.check(
        k.sl_gemm(
          0,
          0,
          rows,
          nIn,
          nOut,
          1,
          grad.storage.ptr(),
          Math.max(1, nOut),
          weight.storage.ptr(),
          Math.max(1, nIn),
          0,
          s.ptr(),
          Math.max(1, nIn),
        ),
      );
      dx = new Tensor(s, x.shape);
    }
    if (weight.requiresGrad) {
      // dW[out, in] = dy[rows, out]ᵀ · x[rows, in]
      const s = backend.empty("float32", weight.size);
      backend.check(
        k.sl_gemm(
          1,
          0,
          nOut,
          nIn,
          rows,
          1,
          grad.storage.ptr(),
          Math.max(1, nOut),
          x.storage.ptr(),
          Math.max(1, nIn),
          0,
          s.ptr(),
          Math.max(1, nIn),
        ),
      );
      dw = new Tensor(s, weight.shape);
    }
    if (bias?.requiresGrad) {
      const s = backend.zeros("float32", nOut);
      backend.check(
        k.sl_scale_shift_bwd(
          BigInt(rows),
          nOut,
          null,
          null,
          grad.storage.ptr(),
          null,
          null,
          s.ptr(),
        ),
      );
      db = new Tensor(s, bias.shape);
    }
    return [dx, dw, db];
  });
}

/** Product of all but the last dimension. */
function numelLeading(x: Tensor): number {
  return x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/** Options of `Linear`. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Seed or generator of the initial weights (default: random). */
  seed?: number | Generator;
}

/**
 * Dense fully connected layer, as PyTorch's `nn.Linear`: parameters `weight` `[out, in]` and
 * `bias` `[out]`, both initialised from U(-1/√in, 1/√in) (PyTorch's default).
 * @example
 * ```ts
 * import { Linear, randn } from "@sparselinear/sparselinear";
 * const fc = new Linear(784, 10, { seed: 0 });
 * console.log(fc.forward(randn([64, 784], { seed: 1 })).shape); // [64, 10]
 * ```
 */
export class Linear extends Module {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;

  /** Creates the layer with PyTorch's default initialisation. */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    checkOptionKeys(options, ["bias", "seed"], "Linear");
    for (const [name, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      numberOption(v, `Linear ${name}`, undefined, "[0, 2^31)");
      if (!Number.isInteger(v) || v < 0 || v > MAX_INT32) {
        throw new RangeError(`Linear ${name} must be an integer in [0, 2^31), got ${v}`);
      }
    }
    if (inFeatures * outFeatures > 2 ** 32) {
      throw new RangeError(
        `Linear(${inFeatures}, ${outFeatures}) would hold ${inFeatures * outFeatures} weights; ` +
          "use SparseLinear for layers this large",
      );
    }
    checkAllocation(
      4 * outFeatures * inFeatures,
      `Linear(${inFeatures}, ${outFeatures})`,
      "Use a smaller layer (or a SparseLinear)",
      `${outFeatures * inFeatures} float32 weights`,
    );
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const generator = generatorFrom(options.seed);
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    const w = generator.fillUniform(new Float32Array(outFeatures * inFeatures), -bound, bound);
    this.registerParameter("weight", new Tensor(new HostStorage(w), [outFeatures, inFeatures]));
    const b = booleanOption(options.bias, "Linear bias", true)
      ? generator.fillUniform(new Float32Array(outFeatures), -bound, bound)
      : null;
    this.registerParameter(
      "bias",
      b === null ? null : new Tensor(new HostStorage(b), [outFeatures]),
    );
    freezeSettings(this, ["inFeatures", "outFeatures"]);
  }

  /** The weight matrix `[out, in]`. */
  get weight(): Tensor {
    return this.getParameter("weight")!;
  }

  /** The bias `[out]`, or null. */
  get bias(): Tensor | null {
    return this.getParameter("bias");
  }

  /** `x · weightᵀ + bias` over the last dimension of `x`. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  /** Description, as PyTorch's repr. */
  override toString(): string {
    return `Linear(inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${
      this.bias !== null
    })`;
  }
}
