/**
 * Adam and AdamW, with the semantics of `torch.optim.Adam` and `torch.optim.AdamW` (bias
 * correction, optional AMSGrad; Adam adds weight decay to the gradient, AdamW decays the
 * parameter directly). One native call per parameter tensor.
 * @module
 */
import { getBackend } from "../backend/mod.ts";
import { checkOption, Optimizer, type ParamsInput } from "./optimizer.ts";
import { checkOptionKeys, freezeSettings } from "../options.ts";
import { describeValue } from "../errors.ts";

/** Options of `Adam` and `AdamW`. */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0 for Adam, 1e-2 for AdamW). */
  weightDecay?: number;
  /** Use the AMSGrad variant (the running maximum of the second moment) (default false). */
  amsgrad?: boolean;
}

/**
 * Adam, as `torch.optim.Adam`: `g = grad + weightDecay * p`, `m = β1 m + (1 - β1) g`,
 * `v = β2 v + (1 - β2) g²`, `p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)`.
 * @example
 * ```ts
 * import { Adam, tensor } from "@sparselinear/sparselinear";
 * const w = tensor([1, -1], [2], { requiresGrad: true });
 * const opt = new Adam([w], { lr: 0.1 });
 * w.grad = tensor([0.5, -2], [2]);
 * opt.step();
 * console.log(Array.from(w.data, (v) => v.toFixed(2))); // ["0.90", "-0.90"]
 * ```
 */
export class Adam extends Optimizer {
  /** Decay rates of the moment estimates. */
  readonly betas: readonly [number, number];
  /** Denominator stabiliser. */
  readonly eps: number;
  /** Weight decay. */
  readonly weightDecay: number;
  /** Whether AMSGrad is used. */
  readonly amsgrad: boolean;
  /** True for AdamW (decay applied to the parameter, not added to the gradient). */
  readonly decoupledWeightDecay: boolean;

  /** Creates the optimizer over `params` (tensors or a module's parameters). */
  constructor(params: ParamsInput, options: AdamOptions = {}) {
    checkOptionKeys(options, ["lr", "betas", "eps", "weightDecay", "amsgrad"], new.target.name);
    super(params, options.lr === undefined ? 1e-3 : options.lr);
    const betas = options.betas === undefined ? [0.9, 0.999] : options.betas;
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new TypeError(`Invalid betas: ${String(betas)}; it must be a pair [beta1, beta2]`);
    }
    this.betas = Object.freeze([
      checkOption(betas[0], "beta1 (betas[0])", { min: 0, max: 1, maxExclusive: true }),
      checkOption(betas[1], "beta2 (betas[1])", { min: 0, max: 1, maxExclusive: true }),
    ]) as readonly [number, number];
    this.eps = checkOption(options.eps, "eps", { min: 0 }, 1e-8);
    this.decoupledWeightDecay = (new.target as typeof Adam).decoupled;
    this.weightDecay = checkOption(
      options.weightDecay,
      "weightDecay",
      { min: 0 },
      this.decoupledWeightDecay ? 1e-2 : 0,
    );
    const amsgrad = options.amsgrad === undefined ? false : options.amsgrad;
    if (typeof amsgrad !== "boolean") {
      throw new TypeError(`Invalid amsgrad: ${describeValue(amsgrad)}; it must be a boolean`);
    }
    this.amsgrad = amsgrad;
    freezeSettings(this, ["betas", "eps", "weightDecay", "amsgrad", "decoupledWeightDecay"]);
  }

  /** Whether weight decay is decoupled from the gradient (AdamW) for this class. */
  protected static readonly decoupled: boolean = false;

  /** State tensors kept per parameter. */
  protected stateNames(): readonly string[] {
    return ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
  }

  /** The moments, and their running maximum with amsgrad. */
  protected override stepStateNames(): readonly string[] {
    return this.amsgrad ? this.stateNames() : ["exp_avg", "exp_avg_sq"];
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    const grads = this.gradients();
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (g === null) return;
      const backend = getBackend(p.device);
      const expAvg = this.stateOf(i, "exp_avg").tensor;
      const expAvgSq = this.stateOf(i, "exp_avg_sq").tensor;
      const maxExpAvgSq = this.amsgrad ? this.stateOf(i, "max_exp_avg_sq").tensor : null;
      const step = this.steps[i] + 1;
      backend.check(
        backend.kernels.sl_adam_step(
          BigInt(p.size),
          this.lr,
          this.betas[0],
          this.betas[1],
          this.eps,
          this.weightDecay,
          this.decoupledWeightDecay ? 1 : 0,
          this.amsgrad ? 1 : 0,
          BigInt(step),
          p.storage.ptr(),
          g.storage.ptr(),
          expAvg.storage.ptr(),
          expAvgSq.storage.ptr(),
          maxExpAvgSq?.storage.ptr() ?? null,
        ),
      );
      this.steps[i] = step;
    });
  }
}

/**
 * AdamW, as `torch.optim.AdamW`: Adam with decoupled weight decay (`p *= 1 - lr ·
 * weightDecay` before the update; default weightDecay 1e-2).
 * @example
 * ```ts
 * import { AdamW, tensor } from "@sparselinear/sparselinear";
 * const w = tensor([1], [1], { requiresGrad: true });
 * const opt = new AdamW([w], { lr: 0.1, weightDecay: 0.1 });
 * w.grad = tensor([0], [1]);
 * opt.step();
 * console.log(w.data[0].toFixed(2)); // 0.99
 * ```
 */
export class AdamW extends Adam {
  /** AdamW decays the parameter directly. */
  protected static override readonly decoupled: boolean = true;
}
