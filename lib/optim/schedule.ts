/**
 * Learning-rate schedules: small objects whose `step()` advances a counter (an epoch or a
 * training step, as the caller chooses) and sets `optimizer.lr`.
 *
 * Each step sets the lr from the formula of the step count and the lr the optimizer had when
 * the schedule was made, so an lr set by hand in between is overwritten at the next `step()`
 * (PyTorch's schedulers continue from it instead). Without such changes both agree.
 * @module
 */
import { checkOptionKeys, numberOption } from "../options.ts";
import { checkOption } from "./optimizer.ts";

/** Anything with a settable learning rate (every `Optimizer`). */
export interface HasLearningRate {
  /** The learning rate the next update uses. */
  lr: number;
}

/** A learning-rate schedule bound to one optimizer. */
export interface LrSchedule {
  /** Advances the schedule by one and sets the optimizer's lr; returns the new lr. */
  step(): number;
  /** How many times `step()` has been called. */
  readonly count: number;
  /** The learning rate the schedule prescribes now. */
  readonly lr: number;
}

function makeSchedule(optimizer: HasLearningRate, lrAt: (t: number) => number): LrSchedule {
  let count = 0;
  return {
    step(): number {
      optimizer.lr = lrAt(count + 1); // checked first: a rejected rate leaves the count as it was
      count++;
      return optimizer.lr;
    },
    get count(): number {
      return count;
    },
    get lr(): number {
      return lrAt(count);
    },
  };
}

function checkOptimizer(optimizer: HasLearningRate, fn: string): number {
  if (optimizer === null || typeof optimizer !== "object" || !("lr" in optimizer)) {
    throw new TypeError(`${fn}() needs an optimizer (an object with an lr)`);
  }
  return optimizer.lr;
}

/** Options of `cosineSchedule`. */
export interface CosineScheduleOptions {
  /** Steps from the initial lr to `minLr` (after that the lr stays at `minLr`). */
  totalSteps: number;
  /** The final learning rate (default 0). */
  minLr?: number;
}

/**
 * Cosine annealing, as PyTorch's `CosineAnnealingLR` (T_max = `totalSteps`, eta_min =
 * `minLr`): after t steps, `lr = minLr + (baseLr - minLr) · (1 + cos(π t / totalSteps)) / 2`,
 * where `baseLr` is the optimizer's lr when the schedule is created; held at `minLr` after
 * `totalSteps`.
 * @example
 * ```ts
 * import { cosineSchedule, SGD, zeros } from "@sparselinear/sparselinear";
 * const opt = new SGD([zeros([1], { requiresGrad: true })], { lr: 0.1 });
 * const schedule = cosineSchedule(opt, { totalSteps: 2 });
 * schedule.step();
 * console.log(opt.lr.toFixed(3)); // 0.050
 * ```
 */
export function cosineSchedule(
  optimizer: HasLearningRate,
  options: CosineScheduleOptions,
): LrSchedule {
  const baseLr = checkOptimizer(optimizer, "cosineSchedule");
  checkOptionKeys(options, ["totalSteps", "minLr"], "cosineSchedule()");
  const total = numberOption(options.totalSteps, "cosineSchedule() totalSteps");
  if (!Number.isInteger(total) || total < 1) {
    throw new RangeError(`Invalid totalSteps: ${String(total)}; it must be an integer >= 1`);
  }
  const minLr = checkOption(options.minLr, "minLr", { min: 0 }, 0);
  return makeSchedule(optimizer, (t) => {
    const progress = Math.min(t, total) / total;
    return minLr + (baseLr - minLr) * (1 + Math.cos(Math.PI * progress)) / 2;
  });
}

/** Options of `stepSchedule`. */
export interface StepScheduleOptions {
  /** Steps between two decays. */
  stepSize: number;
  /** Factor applied at each decay (default 0.1). */
  gamma?: number;
}

/**
 * Step decay, as PyTorch's `StepLR`: after t steps, `lr = baseLr · gamma^floor(t / stepSize)`.
 * @example
 * ```ts
 * import { SGD, stepSchedule, zeros } from "@sparselinear/sparselinear";
 * const opt = new SGD([zeros([1], { requiresGrad: true })], { lr: 1 });
 * const schedule = stepSchedule(opt, { stepSize: 2, gamma: 0.5 });
 * schedule.step();
 * schedule.step();
 * console.log(opt.lr); // 0.5
 * ```
 */
export function stepSchedule(optimizer: HasLearningRate, options: StepScheduleOptions): LrSchedule {
  const baseLr = checkOptimizer(optimizer, "stepSchedule");
  checkOptionKeys(options, ["stepSize", "gamma"], "stepSchedule()");
  const size = numberOption(options.stepSize, "stepSchedule() stepSize");
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`Invalid stepSize: ${String(size)}; it must be an integer >= 1`);
  }
  const gamma = checkOption(options.gamma, "gamma", { min: 0 }, 0.1);
  return makeSchedule(optimizer, (t) => baseLr * gamma ** Math.floor(t / size));
}
