/**
 * Broadcasting (NumPy rules): the shape two operands broadcast to, the strides that read an
 * operand in the broadcast shape (0 along broadcast dimensions), and `sumToShape`, which reduces
 * a gradient back to the shape of a broadcast input in one native call.
 * @module
 */
import { MAX_DIMS } from "../../ffi/symbols/dense.ts";
import { ShapeError } from "../errors.ts";
import { checkShape, shapeString, Tensor } from "../tensor.ts";
import { allocateEmpty, backendOf, int64Arg } from "./_util.ts";

/**
 * The shape the given shapes broadcast to, as PyTorch's `torch.broadcast_shapes`: aligned at
 * the right, the sizes of each dimension must be equal or 1. Throws a ShapeError naming the
 * shapes otherwise; no shapes give `[]`.
 * @example
 * ```ts
 * import { broadcastShapes } from "@sparselinear/sparselinear";
 * console.log(broadcastShapes([4, 1, 3], [2, 1])); // [4, 2, 3]
 * console.log(broadcastShapes([1, 2], [3, 1], [4, 1, 1])); // [4, 3, 2]
 * ```
 */
export function broadcastShapes(...shapes: readonly (readonly number[])[]): number[] {
  let out: number[] = [];
  shapes.forEach((shape, i) => {
    checkShape(shape, `broadcastShapes() shape ${i}`);
    out = broadcastValidShapes(out, shape, "broadcastShapes");
  });
  return out;
}

/** `broadcastShapes` for shapes already known to be valid (tensors' own): no checks per op. */
export function broadcastValidShapes(
  a: readonly number[],
  b: readonly number[],
  op: string,
): number[] {
  const ndim = Math.max(a.length, b.length);
  const out = new Array<number>(ndim);
  for (let i = 0; i < ndim; i++) {
    const da = a[a.length - ndim + i] ?? 1;
    const db = b[b.length - ndim + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}() cannot broadcast shapes ${shapeString(a)} and ${shapeString(b)}: ` +
          `dimension ${i - ndim} has sizes ${da} and ${db}`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Row-major strides (in elements) of a contiguous tensor of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/**
 * Strides that read a contiguous tensor of `shape` at every index of the broadcast shape
 * `outShape` (`shape` aligned at the right; stride 0 where it is broadcast).
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = contiguousStrides(shape);
  const offset = outShape.length - shape.length;
  return outShape.map((size, d) => {
    const i = d - offset;
    if (i < 0) return 0;
    return shape[i] === 1 && size !== 1 ? 0 : own[i];
  });
}

/** Throws a ShapeError when a strided kernel cannot take `shape` (more than 8 dimensions). */
export function checkMaxDims(shape: readonly number[], op: string): void {
  if (shape.length > MAX_DIMS) {
    throw new ShapeError(
      `${op}() supports at most ${MAX_DIMS} dimensions, got shape ${shapeString(shape)}`,
    );
  }
}

/**
 * Sums `grad` (of a broadcast shape) over the dimensions along which an input of `shape` was
 * broadcast, scaled by `alpha`: the gradient of that input. Returns `grad` itself when nothing
 * needs reducing and `alpha` is 1. Not recorded by autograd (used inside backward functions).
 */
export function sumToShape(grad: Tensor, shape: readonly number[], alpha = 1): Tensor {
  const outShape = grad.shape;
  const offset = outShape.length - shape.length;
  let mask = 0;
  for (let d = 0; d < outShape.length; d++) {
    const i = d - offset;
    if (i < 0 || (shape[i] === 1 && outShape[d] !== 1)) mask |= 1 << d;
  }
  if (mask === 0 && alpha === 1) {
    return grad.shape.length === shape.length ? grad : new Tensor(grad.storage, shape);
  }
  checkMaxDims(outShape, "sumToShape");
  const backend = backendOf(grad);
  const out = allocateEmpty(backend, shape);
  backend.check(
    backend.kernels.sl_sum_dims(
      outShape.length,
      int64Arg(0, outShape),
      mask,
      alpha,
      grad.storage.ptr(),
      out.storage.ptr(),
    ),
  );
  return out;
}
