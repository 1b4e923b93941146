/**
 * Element-wise activations as modules (`ReLU`, `Sigmoid`, `Tanh`), on the `relu`, `sigmoid`
 * and `tanh` ops of lib/ops (one native call forward, one backward).
 * @module
 */
import { relu, sigmoid, tanh } from "../ops/activation.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/**
 * Rectified linear unit layer: `max(x, 0)`, as PyTorch's `nn.ReLU`.
 * @example
 * ```ts
 * import { ReLU, tensor } from "@sparselinear/sparselinear";
 * console.log(Array.from(new ReLU().forward(tensor([-1, 0, 2])).data)); // [0, 0, 2]
 * ```
 */
export class ReLU extends Module {
  /** Applies `max(x, 0)`. */
  forward(x: Tensor): Tensor {
    return relu(x);
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
    return sigmoid(x);
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
    return tanh(x);
  }
  /** Description, as PyTorch's repr. */
  override toString(): string {
    return "Tanh()";
  }
}
