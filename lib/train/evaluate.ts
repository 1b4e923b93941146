/**
 * `evaluate`: one pass of a model over a data set in evaluation mode without recording a graph
 * (PyTorch's `model.eval()` + `torch.no_grad()`), returning the mean loss and the accuracy.
 * @module
 */
import { noGrad } from "../autograd.ts";
import { describeValue, requireModule } from "../errors.ts";
import { checkOptionKeys } from "../options.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { countCorrect, RunningMetrics } from "./metrics.ts";

/** A batch as `lib/data/batches.ts` yields it (only these fields are read). */
export interface TrainBatch<Y> {
  /** Inputs. */
  x: Tensor;
  /** Targets: `Int32Array` class labels (accuracy is then counted) or a tensor. */
  y: Y;
  /** Examples in the batch. */
  size: number;
}

/** Batches of one epoch, re-iterable; `length` (batches per pass) drives the progress bar. */
export interface BatchSource<Y> extends Iterable<TrainBatch<Y>> {
  /** Batches per pass. */
  readonly length: number;
}

/** A loss function of the model output and the targets, returning a one-element tensor. */
export type LossFunction<Y> = (output: Tensor, target: Y) => Tensor;

/** Result of `evaluate`. */
export interface EvaluationResult {
  /** Mean loss per example (the loss's batch values weighted by batch size). */
  loss: number;
  /** Accuracy in percent, or null when the targets are not class labels. */
  accuracy: number | null;
  /** Examples evaluated. */
  examples: number;
  /** Wall-clock seconds. */
  seconds: number;
}

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Called after each batch with the number of batches done (e.g. to draw progress). */
  onBatch?: (done: number) => void;
}

/**
 * Checks that `source` (named `what`, e.g. "fit() train") is an iterable of batches, with a
 * `length` when `needsLength` (the progress bar's total).
 */
export function checkBatchSource(source: unknown, what: string, needsLength: boolean): void {
  const iterable = source !== null && typeof source === "object" &&
    typeof (source as Iterable<unknown>)[Symbol.iterator] === "function";
  const length = iterable ? (source as { length?: unknown }).length : undefined;
  if (!iterable || (needsLength && !(Number.isInteger(length) && (length as number) >= 0))) {
    throw new TypeError(
      `${what} must be an iterable of batches${
        needsLength ? " with a length" : ""
      } (e.g. batches(x, y, ...)), got ${describeValue(source)}`,
    );
  }
}

/**
 * Runs `model` over `data` in evaluation mode under `noGrad`, then restores the mode each of its
 * modules was in (a submodule in eval mode of its own stays so). With `Int32Array` targets and
 * `[batch, classes]` outputs the accuracy is counted.
 * @example
 * ```ts
 * import { crossEntropy, evaluate, Linear, tensor } from "@sparselinear/sparselinear";
 * const model = new Linear(2, 2, { seed: 0 });
 * const data = [{ x: tensor([[1, 0], [0, 1]]), y: new Int32Array([0, 1]), size: 2 }];
 * const result = evaluate(model, data, crossEntropy);
 * console.log(result.examples); // 2
 * ```
 */
export function evaluate<Y>(
  model: Module,
  data: Iterable<TrainBatch<Y>>,
  loss: LossFunction<Y>,
  options: EvaluateOptions = {},
): EvaluationResult {
  requireModule(model, "evaluate() model");
  checkBatchSource(data, "evaluate() data", false);
  checkOptionKeys(options, ["onBatch"], "evaluate()");
  if (typeof loss !== "function") {
    throw new TypeError(
      `evaluate() loss must be a function (e.g. crossEntropy), got ${describeValue(loss)}`,
    );
  }
  const start = performance.now();
  const modes = model.namedModules().map(([, m]): [Module, boolean] => [m, m.training]);
  model.eval();
  const metrics = new RunningMetrics();
  try {
    noGrad(() => {
      for (const batch of data) {
        const out = model.forward(batch.x);
        const value = loss(out, batch.y).item();
        const correct = batch.y instanceof Int32Array && out.ndim === 2
          ? countCorrect(out, batch.y)
          : null;
        metrics.add(value, batch.size, correct);
        options.onBatch?.(metrics.steps);
      }
    });
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
  return {
    loss: metrics.loss,
    accuracy: metrics.accuracy,
    examples: metrics.examples,
    seconds: (performance.now() - start) / 1000,
  };
}
