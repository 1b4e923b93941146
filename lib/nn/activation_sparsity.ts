/**
 * K-Winners activation sparsity (Ahmad & Scheinkman 2019, arXiv 1903.11257) with nupic.torch
 * `KWinners` semantics: the `kWinners` op and the `ActivationSparsity` module.
 *
 * Per sample (every position of the leading dimensions), over the last dimension of F units, the
 * k units with the largest *boosted* value `x·exp(β·(k/F − dutyCycle))` win; the output keeps
 * the *raw* value of the winners and zeros elsewhere, and the gradient flows through the winners
 * only. The duty cycle is each unit's recent win frequency in [0, 1], so units that rarely win
 * are boosted and frequent winners are damped. Ties go to the lower unit index; NaN ranks
 * above every number (as torch.topk), so a NaN input wins and propagates as in nupic.torch, and
 * `fit()` stops at the non-finite loss. One native call forward (selection, output, winner
 * list and duty-cycle update together), one backward.
 * @module
 */
import { isGradEnabled, record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { ShapeError } from "../errors.ts";
import { checkOptionKeys, freezeSettings, numberOption } from "../options.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { full, zeros } from "../creation.ts";
import { floorTolerant } from "../tolerant_floor.ts";
import { Module, type StateValue } from "./module.ts";

const INT32_MAX = 2147483647;

/** Options of the `kWinners` op. */
export interface KWinnersOptions {
  /** Per-unit duty cycle [F] (needed when `boostStrength > 0` or `dutyCycleRate > 0`). */
  dutyCycle?: Tensor | null;
  /** β: boost strength, >= 0 (0: winners are the plain top-k of `x`). Default 0. */
  boostStrength?: number;
  /**
   * α in [0, 1]: when > 0, `dutyCycle` is updated **in place** after the selection:
   * `dc ← (1 − α)·dc + α·(fraction of the rows in which the unit won)`. Default 0 (no update).
   */
  dutyCycleRate?: number;
}

/**
 * Keeps the `k` winners of each row of `x` (over its last dimension) and zeros the rest; see the
 * module comment for the selection rule. Differentiable in `x` (the gradient passes at the
 * winners only).
 * @example
 * ```ts
 * import { kWinners, tensor } from "@sparselinear/sparselinear";
 * const y = kWinners(tensor([[0.5, -1, 2, 1]]), 2);
 * console.log(Array.from(y.data)); // [0, 0, 2, 1]
 * ```
 */
export function kWinners(x: Tensor, k: number, options: KWinnersOptions = {}): Tensor {
  checkOptionKeys(options, ["dutyCycle", "boostStrength", "dutyCycleRate"], "kWinners()");
  if (!(x instanceof Tensor)) throw new TypeError("kWinners() input must be a Tensor");
  if (x.ndim < 1) {
    throw new ShapeError("kWinners() needs an input with at least one dimension, got a scalar");
  }
  const features = x.shape[x.ndim - 1];
  if (features < 1 || features > INT32_MAX) {
    throw new ShapeError(
      `kWinners() input's last dimension must be in [1, 2^31 - 1], got shape ${
        shapeString(x.shape)
      }`,
    );
  }
  numberOption(k, "kWinners() k");
  if (!Number.isInteger(k) || k < 1 || k > features) {
    throw new RangeError(`kWinners() k must be an integer in [1, ${features}], got ${k}`);
  }
  const boostStrength = checkBoostStrength(
    numberOption(options.boostStrength, "kWinners() boostStrength", 0),
    "kWinners() boostStrength",
  );
  const rate = numberOption(options.dutyCycleRate, "kWinners() dutyCycleRate", 0);
  if (!(rate >= 0 && rate <= 1)) {
    throw new RangeError(`kWinners() dutyCycleRate must be in [0, 1], got ${rate}`);
  }
  const dutyCycle = options.dutyCycle ?? null;
  if (dutyCycle === null && (boostStrength > 0 || rate > 0)) {
    throw new TypeError(
      "kWinners() needs a dutyCycle tensor when boostStrength > 0 or dutyCycleRate > 0",
    );
  }
  if (dutyCycle !== null) {
    if (!(dutyCycle instanceof Tensor)) {
      throw new TypeError("kWinners() dutyCycle must be a Tensor");
    }
    if (dutyCycle.ndim !== 1 || dutyCycle.shape[0] !== features) {
      throw new ShapeError(
        `kWinners() dutyCycle has shape ${shapeString(dutyCycle.shape)}, expected [${features}] ` +
          `(one entry per unit of the input's last dimension)`,
      );
    }
    if (dutyCycle.device !== x.device) {
      throw new TypeError(
        `kWinners() input is on ${x.device} but dutyCycle is on ${dutyCycle.device}`,
      );
    }
  }
  const rows = x.size / features;
  const backend = getBackend(x.device);
  const kernels = backend.kernels;
  const needsGrad = isGradEnabled() && x.requiresGrad;
  const y = backend.zeros("float32", x.size);
  // The winner list is what the backward needs (rows·k int32, smaller than a mask).
  const winners = needsGrad ? backend.zeros("int32", rows * k) : null;
  backend.check(
    kernels.sl_kwinners_fwd(
      BigInt(rows),
      features,
      k,
      boostStrength,
      rate,
      x.storage.ptr(),
      dutyCycle?.storage.ptr() ?? null,
      y.ptr(),
      winners?.ptr() ?? null,
      null,
    ),
  );
  const out = new Tensor(y, x.shape);
  if (!needsGrad) return out;
  return record(out, "kWinners", [x], (grad) => {
    const dx = backend.zeros("float32", x.size);
    backend.check(
      kernels.sl_kwinners_bwd(
        BigInt(rows),
        features,
        k,
        winners!.ptr(),
        grad.storage.ptr(),
        dx.ptr(),
      ),
    );
    return [new Tensor(dx, x.shape)];
  });
}

/** Options of `ActivationSparsity` (the seed's arguments plus nupic's). */
export interface ActivationSparsityOptions {
  /** Fraction of units zeroed per sample, in [0, 1): k = floor((1 − actSparsity)·F). 0.65. */
  actSparsity?: number;
  /** Duty-cycle update rate α in [0, 1] (training mode only). Default 0.1. */
  alpha?: number;
  /** Initial boost strength β >= 0 (0: no boosting). Default 1.5. */
  beta?: number;
  /**
   * In evaluation mode k is `floor(k·kInferenceFactor)`, clamped to [1, F] (nupic's
   * `k_inference_factor`; nupic defaults to 1.5, the seed had none). Must be > 0. Default 1.
   */
  kInferenceFactor?: number;
  /** β is multiplied by this factor, in [0, 1], at every `onEpochEnd()`. Default 1 (no decay). */
  boostStrengthFactor?: number;
  /**
   * Number of units F (the input's last dimension). Optional: when absent it is taken from the
   * first input (or from a loaded state dict) and fixed from then on.
   */
  features?: number;
}

function checkUnitInterval(
  value: unknown,
  name: string,
  closedTop: boolean,
  fallback: number,
): number {
  const range = closedTop ? "[0, 1]" : "[0, 1)";
  const v = numberOption(value, `ActivationSparsity ${name}`, fallback, range);
  if (!(v >= 0 && (closedTop ? v <= 1 : v < 1))) {
    throw new RangeError(`ActivationSparsity ${name} must be in ${range}, got ${v}`);
  }
  return v;
}

/**
 * A boost strength the kernels can use: finite and >= 0 also once rounded to float32 (1e39
 * is a finite double but an infinite float32).
 */
function checkBoostStrength(value: number, name: string): number {
  if (!(Number.isFinite(Math.fround(value)) && value >= 0)) {
    throw new RangeError(
      `${name} must be a finite number >= 0, got ${value}${
        value > 0 && Number.isFinite(value) ? " (beyond float32's largest, 3.4e38)" : ""
      }`,
    );
  }
  return value;
}

/**
 * K-Winners activation sparsity as a layer (nupic.torch `KWinners`, keeping the seed's
 * `actSparsity`, `alpha`, `beta` arguments).
 *
 * - k = floor((1 − actSparsity)·F) winners per sample over the last dimension of any-rank input;
 *   every position of the leading dimensions is one sample. (nupic rounds instead,
 *   `round(percent_on·F)`: 4 winners of 10 at actSparsity 0.65 there, 3 here.)
 * - Winners are chosen on boosted values `x·exp(β·(k/F − dutyCycle))`; the output keeps the raw
 *   values of the winners, zeros elsewhere; the gradient flows through the winners only.
 * - `dutyCycle` (buffer [F], each in [0, 1]) is updated in training mode only:
 *   `dc ← (1 − α)·dc + α·(fraction of the batch's samples in which the unit won)`. Unlike the
 *   seed (an unnormalised sum of outputs) this does not depend on the batch size; unlike nupic
 *   (period-weighted count of outputs > 0) a winner counts even when its value is not positive.
 * - Evaluation mode (`eval()`) selects `floor(k·kInferenceFactor)` winners (clamped to [1, F]),
 *   with target density `kInference/F` in the boost, as nupic; no state changes.
 * - `onEpochEnd()` multiplies β by `boostStrengthFactor` (nupic's `update_boost_strength`); call
 *   it once after every training epoch. The current β is saved in the state dict
 *   (`boostStrength`), next to `dutyCycle`.
 *
 * @example
 * ```ts
 * import { ActivationSparsity, randn } from "@sparselinear/sparselinear";
 * const kw = new ActivationSparsity({ actSparsity: 0.9 });
 * const y = kw.forward(randn([32, 100], { seed: 0 }));
 * console.log(Array.from(y.data.subarray(0, 100)).filter((v) => v !== 0).length); // 10
 * ```
 */
export class ActivationSparsity extends Module {
  /** Fraction of units zeroed per sample. */
  readonly actSparsity: number;
  /** Duty-cycle update rate α. */
  readonly alpha: number;
  /** The initial boost strength β. */
  readonly beta: number;
  /** Evaluation-mode multiplier of k. */
  readonly kInferenceFactor: number;
  /** Per-epoch decay factor of the boost strength. */
  readonly boostStrengthFactor: number;
  #features: number | null = null;
  #boostStrength: number;

  /** Creates the layer; see `ActivationSparsityOptions` for the defaults. */
  constructor(options: ActivationSparsityOptions = {}) {
    super();
    checkOptionKeys(
      options,
      ["actSparsity", "alpha", "beta", "kInferenceFactor", "boostStrengthFactor", "features"],
      "ActivationSparsity",
    );
    this.actSparsity = checkUnitInterval(options.actSparsity, "actSparsity", false, 0.65);
    this.alpha = checkUnitInterval(options.alpha, "alpha", true, 0.1);
    const beta = checkBoostStrength(
      numberOption(options.beta, "ActivationSparsity beta", 1.5),
      "ActivationSparsity beta",
    );
    this.beta = beta;
    const factor = numberOption(options.kInferenceFactor, "ActivationSparsity kInferenceFactor", 1);
    if (!(Number.isFinite(factor) && factor > 0)) {
      throw new RangeError(
        `ActivationSparsity kInferenceFactor must be a finite number > 0, got ${factor}`,
      );
    }
    this.kInferenceFactor = factor;
    this.boostStrengthFactor = checkUnitInterval(
      options.boostStrengthFactor,
      "boostStrengthFactor",
      true,
      1,
    );
    this.#boostStrength = beta;
    // Both buffers are optional state: the seed's PyTorch module keeps no state in its state
    // dict, so its checkpoints load without them (and `stateDict({ optional: false })` leaves
    // them out for PyTorch).
    this.registerBuffer("boostStrength", full([1], beta), { optional: true });
    // F unknown yet: a [0] placeholder keeps the state-dict keys fixed (see prepareOwnState).
    this.registerBuffer("dutyCycle", zeros([0]), { optional: true });
    if (options.features !== undefined) {
      const f = numberOption(options.features, "ActivationSparsity features");
      if (!Number.isInteger(f) || f < 1 || f > INT32_MAX) {
        throw new RangeError(
          `ActivationSparsity features must be an integer in [1, 2^31 - 1], got ${f}`,
        );
      }
      this.#kFor(f); // reject k = 0 now rather than at the first forward
      this.#initFeatures(f, "cpu");
    }
    freezeSettings(this, [
      "actSparsity",
      "alpha",
      "beta",
      "kInferenceFactor",
      "boostStrengthFactor",
    ]);
  }

  /** Number of units F, or null until the first input (or state dict) fixes it. */
  get features(): number | null {
    return this.#features;
  }

  /** Winners per sample in training mode, or null while F is unknown. */
  get k(): number | null {
    return this.#features === null ? null : this.#kFor(this.#features);
  }

  /** Winners per sample in evaluation mode, or null while F is unknown. */
  get kInference(): number | null {
    if (this.#features === null) return null;
    const k = this.#kFor(this.#features);
    return Math.min(this.#features, Math.max(1, floorTolerant(k * this.kInferenceFactor)));
  }

  /** The current boost strength β (decayed by `onEpochEnd()`). */
  get boostStrength(): number {
    return this.#boostStrength;
  }

  /** The per-unit duty cycle [F], or null while F is unknown. */
  get dutyCycle(): Tensor | null {
    return this.#features === null ? null : this.getBuffer("dutyCycle") as Tensor;
  }

  #kFor(features: number): number {
    const k = floorTolerant((1 - this.actSparsity) * features);
    if (k < 1) {
      const minFeatures = Math.ceil(1 / (1 - this.actSparsity) - 1e-9);
      throw new RangeError(
        `ActivationSparsity keeps k = floor((1 - actSparsity) * F) = 0 winners for F = ` +
          `${features} units and actSparsity = ${this.actSparsity}; k must be >= 1: use ` +
          `actSparsity in [0, ${1 - 1 / features}] or at least ${minFeatures} units`,
      );
    }
    return k;
  }

  #initFeatures(features: number, device: Tensor["device"]): void {
    this.#features = features;
    this.registerBuffer("dutyCycle", zeros([features], { device }), { optional: true });
  }

  /**
   * Applies K-Winners over the last dimension of `x` (any rank >= 1). In training mode this also
   * updates the duty cycle; in evaluation mode it changes no state.
   */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw new TypeError("ActivationSparsity input must be a Tensor");
    if (x.ndim < 1) {
      throw new ShapeError("ActivationSparsity needs an input with at least one dimension");
    }
    const features = x.shape[x.ndim - 1];
    if (this.#features === null) {
      if (features < 1 || features > INT32_MAX) {
        throw new ShapeError(
          `ActivationSparsity input's last dimension must be in [1, 2^31 - 1], got shape ${
            shapeString(x.shape)
          }`,
        );
      }
      this.#kFor(features);
      this.#initFeatures(features, x.device);
    } else if (features !== this.#features) {
      throw new ShapeError(
        `ActivationSparsity has ${this.#features} units, but the input's last dimension is ` +
          `${features} (shape ${shapeString(x.shape)})`,
      );
    }
    const dutyCycle = this.dutyCycle!;
    const k = this.training ? this.k! : this.kInference!;
    return kWinners(x, k, {
      dutyCycle,
      boostStrength: this.#boostStrength,
      dutyCycleRate: this.training ? this.alpha : 0,
    });
  }

  /**
   * Decays the boost strength: β ← β·boostStrengthFactor (nupic's `update_boost_strength`).
   * Call once after every training epoch; a no-op with the default factor 1.
   */
  onEpochEnd(): void {
    if (this.boostStrengthFactor === 1) return;
    this.#setBoostStrength(this.#boostStrength * this.boostStrengthFactor);
  }

  // Kept as a double, as nupic's cached boost strength (2 · 0.8 is 1.6, not float32's
  // 1.600000023841858); the buffer holds its float32 rounding.
  #setBoostStrength(value: number): void {
    this.#boostStrength = value;
    const buffer = this.getBuffer("boostStrength") as Tensor;
    buffer.storage.write(new Float32Array([value]));
  }

  /**
   * Checks a state before anything changes: `dutyCycle` must be a float tensor [F] (F matching
   * this layer's once known; [0] stands for "not yet known") and `boostStrength` one finite
   * value >= 0. A layer whose F was unknown takes F from the state.
   */
  protected override prepareOwnState(
    state: Record<string, StateValue>,
    prefix: string,
  ): () => void {
    const { dutyCycle: dc, ...rest } = state;
    let applyDutyCycle: (() => void) | null = null;
    if (dc !== undefined) {
      const name = `"${prefix}dutyCycle"`;
      if (!(dc instanceof Tensor)) {
        throw new TypeError(`${name} must be a float tensor of shape [F], got an IndexTensor`);
      }
      if (dc.ndim !== 1) {
        throw new ShapeError(
          `${name} must be a float tensor of shape [F], got shape ${shapeString(dc.shape)}`,
        );
      }
      const f = dc.shape[0];
      if (this.#features !== null && f !== this.#features) {
        throw new ShapeError(
          `${name} has shape ${shapeString(dc.shape)}, expected [${this.#features}]`,
        );
      }
      if (f > 0) {
        this.#kFor(f);
        const values = dc.toArray() as Float32Array;
        const bad = values.findIndex((v) => !(v >= 0 && v <= 1));
        if (bad >= 0) {
          throw new RangeError(
            `${name}[${bad}] = ${values[bad]} is not a duty cycle: each must be in [0, 1] ` +
              "(a frequency of winning)",
          );
        }
        applyDutyCycle = () => {
          if (this.#features === null) {
            this.#initFeatures(f, (this.getBuffer("dutyCycle") as Tensor).device);
          }
          this.dutyCycle!.storage.write(values);
        };
      }
    }
    const bs = rest.boostStrength;
    if (bs !== undefined) {
      if (!(bs instanceof Tensor)) {
        throw new TypeError(`"${prefix}boostStrength" must be a float tensor, got an index tensor`);
      }
      if (bs.size !== 1) {
        throw new ShapeError(
          `"${prefix}boostStrength" must hold one value, got shape ${shapeString(bs.shape)}`,
        );
      }
      const v = bs.toArray()[0];
      if (!(Number.isFinite(v) && v >= 0)) {
        throw new RangeError(`"${prefix}boostStrength" must be finite and >= 0, got ${v}`);
      }
      rest.boostStrength = full([1], v); // a scalar (shape [], as PyTorch saves one) loads too
    }
    const applyRest = super.prepareOwnState(rest, prefix);
    return () => {
      applyDutyCycle?.();
      applyRest();
      this.#boostStrength = (this.getBuffer("boostStrength") as Tensor).toArray()[0];
    };
  }

  /** Description, as PyTorch's repr; features and k appear once the first input set them. */
  override toString(): string {
    const size = this.#features === null ? "" : `features=${this.#features}, k=${this.k}, `;
    return `ActivationSparsity(${size}` +
      `actSparsity=${this.actSparsity}, alpha=${this.alpha}, boostStrength=${this.#boostStrength}, ` +
      `kInferenceFactor=${this.kInferenceFactor}, boostStrengthFactor=${this.boostStrengthFactor})`;
  }
}
