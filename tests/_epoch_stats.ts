/**
 * One epoch's statistics as `fit()` reports them: a valid argument for the calls that take
 * `EpochStats` (tests/argument_kinds_test.ts, tests/argument_kinds_sweep_test.ts).
 * @module
 */
import type { EpochStats } from "../mod.ts";

/** Epoch 1 of a run without a test set: loss 0.5, one step of two examples. */
export function epochStats(): EpochStats {
  return {
    epoch: 1,
    trainLoss: 0.5,
    trainAccuracy: null,
    testLoss: null,
    testAccuracy: null,
    trainSeconds: 1,
    testSeconds: 0,
    rssBytes: 1024,
    steps: 1,
    examples: 2,
  };
}
