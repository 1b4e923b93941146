/**
 * `repeatInterleave`: repeats each element along one dimension, as
 * `torch.repeat_interleave(x, repeats, dim)` with an integer `repeats` (`[a, b]` → `[a, a, b, b]`
 * for 2). The seed's very wide model feeds each MNIST pixel to 10 inputs this way. One
 * native strided copy forward (stride 0 along the repeats) and one axis sum backward.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { int64Arg, normalizeAxis } from "../ops/_util.ts";
import { checkOptionKeys, freezeSettings, numberOption } from "../options.ts";
import { numel, Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

function checkRepeats(repeats: unknown, what: string): number {
  numberOption(repeats, what);
  if (!Number.isInteger(repeats) || (repeats as number) < 0) {
    throw new RangeError(`${what} must be an integer >= 0, got ${String(repeats)}`);
  }
  return repeats as number;
}

/**
 * Repeats each element of `x` `repeats` times along dimension `dim` (negative counts from the
 * end): the output has `x.shape[dim] * repeats` entries there.
 * @example
 * ```ts
 * import { repeatInterleave, tensor } from "@sparselinear/sparselinear";
 * const y = repeatInterleave(tensor([[1, 2], [3, 4]]), 2, 1);
 * console.log(Array.from(y.data)); // [1, 1, 2, 2, 3, 3, 4, 4]
 * ```
 */
export function repeatInterleave(x: Tensor, repeats: number, dim: number): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("repeatInterleave() input must be a Tensor");
  checkRepeats(repeats, "repeatInterleave() repeats");
  if (x.ndim === 0) {
    throw new RangeError("repeatInterleave() needs a tensor of at least 1 dimension");
  }
  const d = normalizeAxis(dim, x.ndim, "repeatInterleave() dim");
  const outer = numel(x.shape.slice(0, d));
  const len = x.shape[d];
  const inner = numel(x.shape.slice(d + 1));
  const outShape = x.shape.map((s, i) => (i === d ? s * repeats : s));
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const y = backend.empty("float32", numel(outShape));
  // Output viewed as [outer, len, repeats, inner] reads x[o, i, ·, j] (stride 0 over repeats).
  if (y.length > 0) {
    backend.check(
      k.sl_strided_copy(
        4,
        int64Arg(0, [outer, len, repeats, inner]),
        1,
        x.storage.ptr(),
        BigInt(x.size),
        int64Arg(1, [len * inner, inner, 0, 1]),
        y.ptr(),
      ),
    );
  }
  return record(new Tensor(y, outShape), "repeatInterleave", [x], (grad) => {
    // dx[o, i, j] = sum over the repeats r of dy[o, i, r, j].
    const dx = backend.empty("float32", x.size);
    if (x.size > 0) {
      backend.check(
        k.sl_sum_axis(
          BigInt(outer * len),
          BigInt(repeats),
          BigInt(inner),
          1,
          grad.storage.ptr(),
          dx.ptr(),
        ),
      );
    }
    return [new Tensor(dx, x.shape)];
  });
}

/** Options of `RepeatInterleave`. */
export interface RepeatInterleaveOptions {
  /** Dimension along which elements are repeated (default 1, the features of a batch). */
  dim?: number;
}

/**
 * Layer that repeats each element `repeats` times along a dimension (see `repeatInterleave`).
 * @example
 * ```ts
 * import { RepeatInterleave, zeros } from "@sparselinear/sparselinear";
 * console.log(new RepeatInterleave(10).forward(zeros([64, 784])).shape); // [64, 7840]
 * ```
 */
export class RepeatInterleave extends Module {
  /** Copies of each element. */
  readonly repeats: number;
  /** Dimension repeated along. */
  readonly dim: number;

  /** Creates the layer. */
  constructor(repeats: number, options: RepeatInterleaveOptions = {}) {
    super();
    this.repeats = checkRepeats(repeats, "RepeatInterleave repeats");
    checkOptionKeys(options, ["dim"], "RepeatInterleave");
    this.dim = numberOption(options.dim, "RepeatInterleave dim", 1);
    if (!Number.isInteger(this.dim)) {
      throw new TypeError(`RepeatInterleave dim must be an integer, got ${this.dim}`);
    }
    freezeSettings(this, ["repeats", "dim"]);
  }

  /** Repeats the elements of `x` along `dim`. */
  forward(x: Tensor): Tensor {
    return repeatInterleave(x, this.repeats, this.dim);
  }

  /** Description. */
  override toString(): string {
    return `RepeatInterleave(repeats=${this.repeats}, dim=${this.dim})`;
  }
}
