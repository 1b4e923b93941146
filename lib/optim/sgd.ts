/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay,
 * with the exact semantics of `torch.optim.SGD`. One native call per parameter tensor.
 * @module
 */
import { getBackend } from "../backend/mod.ts";
import { checkOption, Optimizer, type ParamsInput } from "./optimizer.ts";
import { checkOptionKeys, freezeSettings } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Options of `SGD`. */
export interface SGDOptions {
  /** Learning rate (required, >= 0). */
  lr: number;
  /** Momentum factor, >= 0 (default 0: plain SGD; below 1 to converge). */
  momentum?: number;
  /** Dampening of the momentum (default 0; 0 to 1 in practice, any finite value as torch). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient: `grad + weightDecay * param` (default 0). */
  weightDecay?: number;
}

/**
 * SGD, as `torch.optim.SGD`: `d = grad + weightDecay * p`; with momentum,
 * `buf = momentum * buf + (1 - dampening) * d` (the first step sets `buf = d`) and
 * `d = nesterov ? d + momentum * buf : buf`; then `p -= lr * d`.
 * @example
 * ```ts
 * import { SGD, tensor } from "@sparselinear/sparselinear";
 * const w = tensor([1, 2], [2], { requiresGrad: true });
 * const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
 * w.grad = tensor([1, 1], [2]);
 * opt.step();
 * console.log(Array.from(w.data, (v) => v.toFixed(2))); // ["0.90", "1.90"]
 * ```
 */
export class SGD extends Optimizer {
  /** Momentum factor. */
  readonly momentum: number;
  /** Dampening of the momentum. */
  readonly dampening: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** L2 penalty. */
  readonly weightDecay: number;

  /** Creates the optimizer over `params` (tensors or a module's parameters). */
  constructor(params: ParamsInput, options: SGDOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("SGD needs an options object with at least { lr }");
    }
    checkOptionKeys(options, ["lr", "momentum", "dampening", "nesterov", "weightDecay"], "SGD");
    // SGD has no default learning rate (as torch.optim.SGD): say so rather than "Invalid lr".
    if (options.lr === undefined) {
      throw new TypeError("SGD needs lr, the learning rate (a number >= 0), e.g. { lr: 0.1 }");
    }
    super(params, options.lr);
    // The ranges torch.optim.SGD accepts: momentum >= 0, any (finite) dampening.
    this.momentum = checkOption(options.momentum, "momentum", { min: 0 }, 0);
    this.dampening = checkOption(options.dampening, "dampening", {}, 0);
    this.weightDecay = checkOption(options.weightDecay, "weightDecay", { min: 0 }, 0);
    const nesterov = options.nesterov === undefined ? false : options.nesterov;
    if (typeof nesterov !== "boolean") {
      throw new TypeError(`Invalid nesterov: ${describeValue(nesterov)}; it must be a boolean`);
    }
    if (nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError(
        `Invalid nesterov: Nesterov momentum requires momentum > 0 and dampening 0 ` +
          `(got momentum ${this.momentum}, dampening ${this.dampening})`,
      );
    }
    this.nesterov = nesterov;
    freezeSettings(this, ["momentum", "dampening", "nesterov", "weightDecay"]);
  }

  /** State tensors kept per parameter. */
  protected stateNames(): readonly string[] {
    return ["momentum_buffer"];
  }

  /** Applies one SGD update to every parameter that has a gradient. */
  step(): void {
    const grads = this.gradients();
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (g === null) return;
      const backend = getBackend(p.device);
      let buf: Deno.PointerValue = null;
      let init = 0;
      if (this.momentum !== 0) {
        const state = this.stateOf(i, "momentum_buffer");
        buf = state.tensor.storage.ptr();
        init = state.created ? 1 : 0;
      }
      backend.check(
        backend.kernels.sl_sgd_step(
          BigInt(p.size),
          this.lr,
          this.momentum,
          this.dampening,
          this.weightDecay,
          this.nesterov ? 1 : 0,
          init,
          p.storage.ptr(),
          g.storage.ptr(),
          buf,
        ),
      );
      this.steps[i]++;
    });
  }
}
