/**
 * Element-wise activations as modules (`ReLU`, `Sigmoid`, `Tanh`) and the `relu` op: one
 * native call forward (`sl_unary`) and one backward (`sl_unary_bwd`).
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** Operator codes of sl_unary (SL_UNARY_* in sparselinear.h). */
const UNARY = { relu: 3, sigmoid: 4, tanh: 5 } as const;

function unary(x: Tensor, op: keyof typeof UNARY): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${op}() input must be a Tensor`);
  const backend = getBackend(x.device);
  const k = backend.kernels;
  const code = UNARY[op];
  const n = BigInt(x.size);
  const y = backend.zeros("float32", x.size);
  backend.check(k.sl_unary(code, n, 0, 0, x.storage.ptr(), y.ptr()));
  return record(new Tensor(y, x.shape), op, [x], (grad) => {
    const dx = backend.zeros("float32", x.size);
    backend.check(
      k.sl_unary_bwd(code, n, 0, 0, x.storage.ptr(), y.ptr(), grad.storage.ptr(), dx.ptr()),
    );
    return [new Tensor(dx, x.shape)];
  });
}

/**
 * `max(x, 0)` element-wise (gradient 0 at 0, as PyTorch).
 * @example
 * ```ts
 * import { relu, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(relu(tensor([-1, 0, 2])).data)); // [0, 0, 2]
 * ```
 */
export function relu(x: Tensor): Tensor {
  return unary(x, "relu");
}

/** Rectified linear unit layer: `max(x, 0)`, as PyTorch's `nn.ReLU`. */
export class ReLU extends Module {
  /** Applies `max(x, 0)`. */
  forward(x: Tensor): Tensor {
    return unary(x, "relu");
  }
  /** Description, as PyTorch's repr. */
  override toString(): string {
    return "ReLU()";
  }
}

/** Logistic sigmoid layer `1 / (1 + exp(-x))`, as PyTorch's `nn.Sigmoid`. */
export class Sigmoid extends Module {
  /** Applies the sigmoid. */
  forward(x: Tensor): Tensor {
    return unary(x, "sigmoid");
  }
  /** Description, as PyTorch's repr. */
  override toString(): string {
    return "Sigmoid()";
  }
}

/** Hyperbolic tangent layer, as PyTorch's `nn.Tanh`. */
export class Tanh extends Module {
  /** Applies tanh. */
  forward(x: Tensor): Tensor {
    return unary(x, "tanh");
  }
  /** Description, as PyTorch's repr. */
  override toString(): string {
    return "Tanh()";
  }
}
