/**
 * Activations with gradients: `relu`, `sigmoid`, `tanh` (one `sl_unary` call each way) and
 * `logSoftmax` over the last axis (one `sl_log_softmax_fwd` / `_bwd` call).
 * @module
 */
import { record } from "../autograd.ts";
import { shapeString, type Tensor } from "../tensor.ts";
import { allocateEmpty, backendOf, checkInt32, checkTensor, normalizeAxis } from "./_util.ts";
import { unaryOp } from "./elementwise.ts";

/**
 * `max(x, 0)` element-wise (gradient 0 at 0, as PyTorch).
 * @example
 * ```ts
 * import { relu, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(relu(tensor([-1, 0, 2])).data)); // [0, 0, 2]
 * ```
 */
export function relu(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "relu() x"), "relu", "relu");
}

/** Logistic sigmoid `1 / (1 + e^-x)` element-wise (no overflow for large |x|). */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "sigmoid() x"), "sigmoid", "sigmoid");
}

/** Hyperbolic tangent element-wise. */
export function tanh(x: Tensor): Tensor {
  return unaryOp(checkTensor(x, "tanh() x"), "tanh", "tanh");
}

/**
 * `x - log(sum(exp(x)))` along the last axis (numerically stable). Only the last axis is
 * supported (`axis` -1 or `ndim - 1`); move another axis last with `transpose` first. A 0-d
 * tensor counts as one element along axis 0, as in PyTorch.
 * @example
 * ```ts
 * import { logSoftmax, tensor } from "@sparselinear/sparselinear";
 * const y = logSoftmax(tensor([[0, 0]]));
 * console.log(Array.from(y.data, (v) => v.toFixed(4))); // ["-0.6931", "-0.6931"]
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkTensor(x, "logSoftmax() x");
  // A 0-d tensor is one row of one element (axis 0 or -1), as PyTorch: its result is 0.
  const ndim = Math.max(x.ndim, 1);
  const ax = normalizeAxis(axis, ndim, "logSoftmax() axis");
  if (ax !== ndim - 1) {
    throw new RangeError(
      `logSoftmax() supports only the last axis (-1 or ${x.ndim - 1}), got ${axis} for shape ${
        shapeString(x.shape)
      }`,
    );
  }
  const cols = checkInt32(x.ndim === 0 ? 1 : x.shape[ax], "logSoftmax() row length");
  const rows = cols === 0 ? 0 : x.size / cols;
  const backend = backendOf(x);
  const k = backend.kernels;
  const y = allocateEmpty(backend, x.shape);
  backend.check(k.sl_log_softmax_fwd(BigInt(rows), cols, x.storage.ptr(), y.storage.ptr()));
  return record(y, "logSoftmax", [x], (grad) => {
    const dx = allocateEmpty(backend, x.shape);
    backend.check(
      k.sl_log_softmax_bwd(
        BigInt(rows),
        cols,
        y.storage.ptr(),
        grad.storage.ptr(),
        dx.storage.ptr(),
      ),
    );
    return [dx];
  });
}
