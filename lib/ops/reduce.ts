/**
 * Reductions with gradients: `sum` and `mean` over everything or one axis (`keepDim` keeps the
 * reduced axis with size 1). Forward is one `sl_sum_all` / `sl_sum_axis` call, backward one
 * `sl_strided_copy` that expands the gradient back (stride 0 along the reduced axis).
 * @module
 */
import { record } from "../autograd.ts";
import { numel, type Tensor } from "../tensor.ts";
import { allocateEmpty, backendOf, checkTensor, int64Arg, normalizeAxis } from "./_util.ts";
import { booleanOption, checkOptionKeys } from "../options.ts";

/** Options of `sum` and `mean`. */
export interface ReduceOptions {
  /** Keep the reduced axis (or, for a full reduction, every axis) with size 1 (default false). */
  keepDim?: boolean;
}

const REDUCE_OPTIONS = ["keepDim"];

function reduce(
  x: Tensor,
  axis: number | undefined,
  options: ReduceOptions | undefined,
  name: string,
  isMean: boolean,
): Tensor {
  checkTensor(x, `${name}() x`);
  // Every training step reduces: no options (the common call) costs no check and no object.
  if (options !== undefined) checkOptionKeys(options, REDUCE_OPTIONS, `${name}()`);
  const keepDim = booleanOption(options?.keepDim, `${name}() keepDim`, false);
  const backend = backendOf(x);
  const k = backend.kernels;
  let outer: number, len: number, inner: number, outShape: number[];
  if (axis === undefined || axis === null) {
    [outer, len, inner] = [1, x.size, 1];
    outShape = keepDim ? x.shape.map(() => 1) : [];
  } else {
    // A 0-d tensor has one axis to reduce over (0 or -1), as in PyTorch.
    const ax = normalizeAxis(axis, Math.max(x.ndim, 1), `${name}() axis`, x.ndim);
    outer = numel(x.shape.slice(0, ax));
    len = x.ndim === 0 ? 1 : x.shape[ax];
    inner = numel(x.shape.slice(ax + 1));
    outShape = x.ndim === 0
      ? []
      : keepDim
      ? x.shape.map((d, i) => (i === ax ? 1 : d))
      : x.shape.filter((_, i) => i !== ax);
  }
  const alpha = isMean ? 1 / len : 1;
  const y = allocateEmpty(backend, outShape);
  if (axis === undefined || axis === null) {
    backend.check(k.sl_sum_all(BigInt(len), alpha, x.storage.ptr(), y.storage.ptr()));
  } else {
    backend.check(
      k.sl_sum_axis(
        BigInt(outer),
        BigInt(len),
        BigInt(inner),
        alpha,
        x.storage.ptr(),
        y.storage.ptr(),
      ),
    );
  }
  return record(y, name, [x], (grad) => {
    // dx[o, j, i] = alpha * dy[o, i]: read dy with stride 0 along the reduced axis.
    const dx = allocateEmpty(backend, x.shape);
    backend.check(
      k.sl_strided_copy(
        3,
        int64Arg(0, [outer, len, inner]),
        alpha,
        grad.storage.ptr(),
        BigInt(grad.size),
        int64Arg(1, [inner, 0, 1]),
        dx.storage.ptr(),
      ),
    );
    return [dx];
  });
}

/**
 * Sum of all elements (`axis` omitted) or along one axis (negative counts from the end).
 * @example
 * ```ts
 * import { sum, tensor } from "@sparselinear/sparselinear";
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * console.log(sum(x).item(), sum(x, 0).toNested(), sum(x, -1, { keepDim: true }).shape);
 * // 21 [5, 7, 9] [2, 1]
 * ```
 */
export function sum(x: Tensor, axis?: number, options?: ReduceOptions): Tensor {
  return reduce(x, axis, options, "sum", false);
}

/**
 * Mean of all elements (`axis` omitted) or along one axis (NaN over an empty axis).
 * @example
 * ```ts
 * import { mean, tensor } from "@sparselinear/sparselinear";
 * console.log(mean(tensor([[1, 2], [3, 4]]), 1).toNested()); // [1.5, 3.5]
 * ```
 */
export function mean(x: Tensor, axis?: number, options?: ReduceOptions): Tensor {
  return reduce(x, axis, options, "mean", true);
}
