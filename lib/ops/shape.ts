/**
 * Shape ops with gradients. `reshape`/`view`, `flattenDims`, `unsqueeze`, `squeeze` are views
 * (shared memory, no native call: tensors are always contiguous); `transpose`, `permute` and
 * `expand` copy with one `sl_strided_copy` call.
 * @module
 */
import { record } from "../autograd.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { checkShape, numel, shapeString, Tensor } from "../tensor.ts";
import { allocateEmpty, backendOf, checkTensor, int64Arg, normalizeAxis } from "./_util.ts";
import { broadcastStrides, checkMaxDims, contiguousStrides, sumToShape } from "./broadcast.ts";

/** `x`'s memory under another shape of the same size, recorded for autograd. */
function viewAs(x: Tensor, shape: readonly number[], name: string): Tensor {
  const out = new Tensor(x.storage, shape);
  return record(out, name, [x], (grad) => [new Tensor(grad.storage, x.shape)]);
}

/**
 * `x` with a new shape of the same number of elements; one dimension may be -1 (inferred).
 * Shares `x`'s memory (a view).
 * @example
 * ```ts
 * import { reshape, tensor } from "@sparselinear/sparselinear";
 * console.log(reshape(tensor([1, 2, 3, 4, 5, 6]), [-1, 3]).shape); // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor(x, "reshape() x");
  if (!Array.isArray(shape)) throw new TypeError("reshape() shape must be an array of integers");
  const inferred = shape.indexOf(-1);
  if (inferred !== shape.lastIndexOf(-1)) {
    throw new ShapeError(`reshape() shape ${shapeString(shape)} has more than one -1`);
  }
  let target: number[] = [...shape];
  if (inferred >= 0) {
    const rest = target.filter((_, i) => i !== inferred);
    checkShape(rest, "reshape() shape");
    const known = numel(rest);
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(
        `reshape() cannot reshape a tensor of shape ${shapeString(x.shape)} (${x.size} ` +
          `elements) to ${shapeString(shape)}: the -1 cannot be inferred`,
      );
    }
    target[inferred] = x.size / known;
  }
  target = [...checkShape(target, "reshape() shape")];
  if (numel(target) !== x.size) {
    throw new ShapeError(
      `reshape() cannot reshape a tensor of shape ${shapeString(x.shape)} (${x.size} ` +
        `elements) to ${shapeString(shape)} (${numel(target)} elements)`,
    );
  }
  return viewAs(x, target, "reshape");
}

/** Same as `reshape` (tensors are contiguous, so every reshape is a view). */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  return reshape(x, shape);
}

/**
 * Merges dimensions `startDim..endDim` (inclusive, negative counts from the end) into one, as
 * `torch.flatten` (default: everything, giving a 1-D tensor). A view.
 */
export function flattenDims(x: Tensor, startDim = 0, endDim = -1): Tensor {
  checkTensor(x, "flatten() x");
  // As PyTorch, a 0-d tensor takes dims as if it had one (0 or -1), checked before it becomes [1].
  const rank = Math.max(x.ndim, 1);
  const start = normalizeAxis(startDim, rank, "flatten() startDim", x.ndim);
  const end = normalizeAxis(endDim, rank, "flatten() endDim", x.ndim);
  if (x.ndim === 0) return viewAs(x, [1], "flatten");
  if (start > end) {
    throw new RangeError(
      `flatten() startDim ${startDim} comes after endDim ${endDim} for shape ${
        shapeString(x.shape)
      }`,
    );
  }
  const merged = numel(x.shape.slice(start, end + 1));
  return viewAs(x, [...x.shape.slice(0, start), merged, ...x.shape.slice(end + 1)], "flatten");
}

/** `x` with a new dimension of size 1 at `dim` (in [-ndim - 1, ndim]). A view. */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  checkTensor(x, "unsqueeze() x");
  const d = normalizeAxis(dim, x.ndim + 1, "unsqueeze() dim", x.ndim);
  return viewAs(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)], "unsqueeze");
}

/**
 * `x` without its size-1 dimensions, or without dimension `dim` when given and of size 1
 * (otherwise unchanged, as PyTorch). A view.
 */
export function squeeze(x: Tensor, dim?: number): Tensor {
  checkTensor(x, "squeeze() x");
  if (dim === undefined) return viewAs(x, x.shape.filter((d) => d !== 1), "squeeze");
  const d = normalizeAxis(dim, Math.max(x.ndim, 1), "squeeze() dim", x.ndim);
  if (x.ndim === 0 || x.shape[d] !== 1) return viewAs(x, x.shape, "squeeze");
  return viewAs(x, x.shape.filter((_, i) => i !== d), "squeeze");
}

/** y = x read with `strides` over `shape` (contiguous result), one sl_strided_copy call. */
function gather(x: Tensor, shape: readonly number[], strides: readonly number[]): Tensor {
  const backend = backendOf(x);
  const out = allocateEmpty(backend, shape);
  backend.check(
    backend.kernels.sl_strided_copy(
      shape.length,
      int64Arg(0, shape),
      1,
      x.storage.ptr(),
      BigInt(x.size),
      int64Arg(1, strides),
      out.storage.ptr(),
    ),
  );
  return out;
}

/**
 * `x` with its dimensions reordered: output dimension i is input dimension `dims[i]` (a
 * permutation of 0..ndim-1; negative entries count from the end). Copies (at most 8 dims).
 * @example
 * ```ts
 * import { permute, zeros } from "@sparselinear/sparselinear";
 * console.log(permute(zeros([2, 3, 4]), [2, 0, 1]).shape); // [4, 2, 3]
 * ```
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkTensor(x, "permute() x");
  if (!Array.isArray(dims)) {
    throw new TypeError(`permute() dims must be an array of integers, got ${describeValue(dims)}`);
  }
  if (dims.length !== x.ndim) {
    throw new RangeError(
      `permute() dims must list each of the ${x.ndim} dimensions of shape ${
        shapeString(x.shape)
      } once, got ${shapeString(dims)}`,
    );
  }
  const perm = dims.map((d) => normalizeAxis(d, x.ndim, "permute() dim"));
  if (new Set(perm).size !== perm.length) {
    throw new RangeError(`permute() dims ${shapeString(dims)} repeat a dimension`);
  }
  checkMaxDims(x.shape, "permute");
  const own = contiguousStrides(x.shape);
  const outShape = perm.map((d) => x.shape[d]);
  const out = gather(x, outShape, perm.map((d) => own[d]));
  const inverse = new Array<number>(perm.length);
  perm.forEach((d, i) => (inverse[d] = i));
  return record(out, "permute", [x], (grad) => {
    const gradStrides = contiguousStrides(outShape);
    return [gather(grad, x.shape, inverse.map((i) => gradStrides[i]))];
  });
}

/**
 * `x` with dimensions `dim0` and `dim1` swapped (default: the last two, a matrix transpose).
 * Copies.
 * @example
 * ```ts
 * import { tensor, transpose } from "@sparselinear/sparselinear";
 * console.log(transpose(tensor([[1, 2, 3]])).toNested()); // [[1], [2], [3]]
 * ```
 */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  checkTensor(x, "transpose() x");
  // As PyTorch, a 0-d tensor takes dimension 0 (or -1): swapping it with itself.
  const rank = Math.max(x.ndim, 1);
  const a = normalizeAxis(dim0, rank, "transpose() dim0", x.ndim);
  const b = normalizeAxis(dim1, rank, "transpose() dim1", x.ndim);
  if (x.ndim === 0) return permute(x, []);
  const perm = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

/**
 * `x` broadcast to `shape` (NumPy rules: `x`'s shape aligned at the right, each size equal or
 * 1; -1 keeps a size). Copies; the gradient sums back over the expanded dimensions.
 * @example
 * ```ts
 * import { expand, tensor } from "@sparselinear/sparselinear";
 * console.log(expand(tensor([1, 2]), [2, 2]).toNested()); // [[1, 2], [1, 2]]
 * ```
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor(x, "expand() x");
  if (!Array.isArray(shape)) throw new TypeError("expand() shape must be an array of integers");
  const offset = shape.length - x.ndim;
  const target = shape.map((d, i) => (d === -1 && i >= offset ? x.shape[i - offset] : d));
  checkShape(target, "expand() shape");
  const fits = offset >= 0 &&
    x.shape.every((d, i) => d === target[i + offset] || d === 1);
  if (!fits) {
    throw new ShapeError(
      `expand() cannot broadcast shape ${shapeString(x.shape)} to ${shapeString(shape)}`,
    );
  }
  checkMaxDims(target, "expand");
  const out = gather(x, target, broadcastStrides(x.shape, target));
  return record(out, "expand", [x], (grad) => [sumToShape(grad, x.shape)]);
}
