/**
 * `groupSum`: sums the last dimension in interleaved groups, as the seed's very wide model
 * does to turn 50 000 outputs into 10 class scores: `x.view(B, -1, size).sum(dim=1)`, i.e.
 * `y[..., c] = Σ_g x[..., g · size + c]`. One native axis sum forward, one strided copy
 * (stride 0 over the groups) backward.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { ShapeError } from "../errors.ts";
import { int64Arg } from "../ops/_util.ts";
import { numel, shapeString, Tensor } from "../tensor.ts";
import { Module } from "./module.ts";
import { freezeSettings, numberOption } from "../options.ts";

function checkSize(size: unknown, what: string): number {
  numberOption(size, what);
  if (!Number.isInteger(size) || (size as number) < 1) {
    throw new RangeError(`${what} must be an integer >= 1, got ${String(size)}`);
  }
  return size as number;
}

/**
 * Sums the last dimension of `x` (length `m`, a multiple of `size`) viewed as `[m / size, size]`
 * over its first axis: output shape `(*, size)`.
 * @example
 * ```ts
 * import { groupSum, tensor } from "@sparselinear/sparselinear";
 * const y = groupSum(tensor([[1, 2, 3, 10, 20, 30]]), 3);
 * console.log(Array.from(y.data)); // [11, 22, 33]
 * ```
 */
export function groupSum(x: Tensor, size: number): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("groupSum() input must be a Tensor");
  checkSize(size, "groupSum() size");
  const m = x.ndim === 0 ? 0 : x.shape[x.ndim - 1];
  if (x.ndim === 0 || m === 0 || m % size !== 0) {
    throw new ShapeError(
      `groupSum() input has shape ${shapeString(x.shape)}, but its last dimension must be a ` +
        `positive multiple of the group size ${size}`,
    );
  }
  const groups = m / size;
  const rows = numel(x.shape.slice(0, -1));
  const outShape = [...x.shape.slice(0, -1), size];
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const y = backend.zeros("float32", rows * size);
  if (rows * size > 0) {
    backend.check(
      k.sl_sum_axis(BigInt(rows), BigInt(groups), BigInt(size), 1, x.storage.ptr(), y.ptr()),
    );
  }
  return record(new Tensor(y, outShape), "groupSum", [x], (grad) => {
    // dx[r, g, c] = dy[r, c] for every group g.
    const dx = backend.empty("float32", x.size); // written whole when x.size > 0
    if (x.size > 0) {
      backend.check(
        k.sl_strided_copy(
          3,
          int64Arg(0, [rows, groups, size]),
          1,
          grad.storage.ptr(),
          BigInt(grad.size),
          int64Arg(1, [size, 0, 1]),
          dx.ptr(),
        ),
      );
    }
    return [new Tensor(dx, x.shape)];
  });
}

/**
 * Layer summing the last dimension in interleaved groups of `size` (see `groupSum`): the
 * seed's wide model ends with `GroupSum(10)` over 50 000 outputs, 5 000 per class.
 * @example
 * ```ts
 * import { GroupSum, zeros } from "@sparselinear/sparselinear";
 * console.log(new GroupSum(10).forward(zeros([64, 50000])).shape); // [64, 10]
 * ```
 */
export class GroupSum extends Module {
  /** Output features (the group size). */
  readonly size: number;

  /** Creates the layer. */
  constructor(size: number) {
    super();
    this.size = checkSize(size, "GroupSum size");
    freezeSettings(this, ["size"]);
  }

  /** Sums `x`'s last dimension in groups. */
  forward(x: Tensor): Tensor {
    return groupSum(x, this.size);
  }

  /** Description. */
  override toString(): string {
    return `GroupSum(size=${this.size})`;
  }
}
