/**
 * The ops of lib/ops/ as `Tensor` methods (`x.add(y)`, `x.matmul(w)`, `x.sum(1)`, ...), added
 * to the class by declaration merging so that tensor.ts does not import the op files (which
 * import it). Importing this module (mod.ts does) installs them.
 * @module
 */
import { logSoftmax, relu, sigmoid, tanh } from "./ops/activation.ts";
import {
  abs,
  add,
  div,
  exp,
  log,
  mul,
  mulScalar,
  neg,
  type Operand,
  pow,
  sqrt,
  square,
  sub,
} from "./ops/elementwise.ts";
import { matmul } from "./ops/matmul.ts";
import { mean, type ReduceOptions, sum } from "./ops/reduce.ts";
import {
  expand,
  flattenDims,
  permute,
  reshape,
  squeeze,
  transpose,
  unsqueeze,
  view,
} from "./ops/shape.ts";
import { Tensor } from "./tensor.ts";

declare module "./tensor.ts" {
  interface Tensor {
    /** `this + other` with broadcasting (see `add`). */
    add(other: Operand): Tensor;
    /** `this - other` with broadcasting (see `sub`). */
    sub(other: Operand): Tensor;
    /** `this * other` with broadcasting (see `mul`). */
    mul(other: Operand): Tensor;
    /** `this / other` with broadcasting (see `div`). */
    div(other: Operand): Tensor;
    /** `this * s` for a number (see `mulScalar`). */
    mulScalar(s: number): Tensor;
    /** `-this`. */
    neg(): Tensor;
    /** `e^this` element-wise. */
    exp(): Tensor;
    /** Natural logarithm element-wise. */
    log(): Tensor;
    /** `|this|` element-wise. */
    abs(): Tensor;
    /** Square root element-wise. */
    sqrt(): Tensor;
    /** `this * this` element-wise. */
    square(): Tensor;
    /** `this ^ exponent` element-wise. */
    pow(exponent: number): Tensor;
    /** `max(this, 0)` element-wise. */
    relu(): Tensor;
    /** Logistic sigmoid element-wise. */
    sigmoid(): Tensor;
    /** Hyperbolic tangent element-wise. */
    tanh(): Tensor;
    /** Log-softmax over the last axis (see `logSoftmax`). */
    logSoftmax(axis?: number): Tensor;
    /** Matrix product `this @ other` (see `matmul`). */
    matmul(other: Tensor): Tensor;
    /** Sum of all elements or along one axis (see `sum`). */
    sum(axis?: number, options?: ReduceOptions): Tensor;
    /** Mean of all elements or along one axis (see `mean`). */
    mean(axis?: number, options?: ReduceOptions): Tensor;
    /** A view with another shape; one dimension may be -1 (see `reshape`). */
    reshape(shape: readonly number[]): Tensor;
    /** Same as `reshape`. */
    view(shape: readonly number[]): Tensor;
    /** Merges dimensions `startDim..endDim` into one (default: all; see `flattenDims`). */
    flatten(startDim?: number, endDim?: number): Tensor;
    /** Inserts a dimension of size 1 at `dim`. */
    unsqueeze(dim: number): Tensor;
    /** Removes size-1 dimensions (all, or `dim`). */
    squeeze(dim?: number): Tensor;
    /** Swaps two dimensions (default: the last two). */
    transpose(dim0?: number, dim1?: number): Tensor;
    /** Reorders the dimensions (see `permute`). */
    permute(dims: readonly number[]): Tensor;
    /** Broadcasts to `shape` (see `expand`). */
    expand(shape: readonly number[]): Tensor;
  }
}

const methods: ThisType<Tensor> & Record<string, unknown> = {
  add(this: Tensor, other: Operand): Tensor {
    return add(this, other);
  },
  sub(this: Tensor, other: Operand): Tensor {
    return sub(this, other);
  },
  mul(this: Tensor, other: Operand): Tensor {
    return mul(this, other);
  },
  div(this: Tensor, other: Operand): Tensor {
    return div(this, other);
  },
  mulScalar(this: Tensor, s: number): Tensor {
    return mulScalar(this, s);
  },
  neg(this: Tensor): Tensor {
    return neg(this);
  },
  exp(this: Tensor): Tensor {
    return exp(this);
  },
  log(this: Tensor): Tensor {
    return log(this);
  },
  abs(this: Tensor): Tensor {
    return abs(this);
  },
  sqrt(this: Tensor): Tensor {
    return sqrt(this);
  },
  square(this: Tensor): Tensor {
    return square(this);
  },
  pow(this: Tensor, exponent: number): Tensor {
    return pow(this, exponent);
  },
  relu(this: Tensor): Tensor {
    return relu(this);
  },
  sigmoid(this: Tensor): Tensor {
    return sigmoid(this);
  },
  tanh(this: Tensor): Tensor {
    return tanh(this);
  },
  logSoftmax(this: Tensor, axis?: number): Tensor {
    return logSoftmax(this, axis);
  },
  matmul(this: Tensor, other: Tensor): Tensor {
    return matmul(this, other);
  },
  sum(this: Tensor, axis?: number, options?: ReduceOptions): Tensor {
    return sum(this, axis, options);
  },
  mean(this: Tensor, axis?: number, options?: ReduceOptions): Tensor {
    return mean(this, axis, options);
  },
  reshape(this: Tensor, shape: readonly number[]): Tensor {
    return reshape(this, shape);
  },
  view(this: Tensor, shape: readonly number[]): Tensor {
    return view(this, shape);
  },
  flatten(this: Tensor, startDim?: number, endDim?: number): Tensor {
    return flattenDims(this, startDim, endDim);
  },
  unsqueeze(this: Tensor, dim: number): Tensor {
    return unsqueeze(this, dim);
  },
  squeeze(this: Tensor, dim?: number): Tensor {
    return squeeze(this, dim);
  },
  transpose(this: Tensor, dim0?: number, dim1?: number): Tensor {
    return transpose(this, dim0, dim1);
  },
  permute(this: Tensor, dims: readonly number[]): Tensor {
    return permute(this, dims);
  },
  expand(this: Tensor, shape: readonly number[]): Tensor {
    return expand(this, shape);
  },
};

// Non-enumerable, like class methods.
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: fn,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
