/**
 * Running loss/accuracy sums of a pass over a data set: constant memory whatever the number
 * of steps (no per-step history is kept).
 * @module
 */
import { describeValue, ShapeError } from "../errors.ts";
import { shapeString, Tensor } from "../tensor.ts";
import { numberOption } from "../options.ts";

/**
 * Number of rows of `logits` `[batch, classes]` whose largest entry is at `labels[row]` (the
 * first largest on ties, as `argmax`). NaN logits never win. A loop over batch × classes
 * values (640 for MNIST at batch 64): negligible next to the step's kernels, and no copy on
 * the CPU.
 */
export function countCorrect(logits: Tensor, labels: Int32Array): number {
  if (!(logits instanceof Tensor)) {
    throw new TypeError(
      `countCorrect() logits must be a Tensor of shape [batch, classes], got ${
        describeValue(logits)
      }`,
    );
  }
  if (logits.ndim !== 2) {
    throw new ShapeError(
      `Accuracy needs logits of shape [batch, classes], got ${shapeString(logits.shape)}`,
    );
  }
  const [batch, classes] = logits.shape;
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(
      `Accuracy needs labels as an Int32Array of class indices, got ${describeValue(labels)}`,
    );
  }
  if (labels.length !== batch) {
    throw new ShapeError(`Accuracy got ${labels.length} labels for a batch of ${batch} logits`);
  }
  const bad = labels.findIndex((label) => label < 0 || label >= classes);
  if (bad >= 0) {
    throw new RangeError(
      `Accuracy: label ${labels[bad]} at index ${bad} is outside [0, ${classes}) (the classes)`,
    );
  }
  const values = (logits.storage.host as Float32Array | undefined) ?? logits.toArray();
  let correct = 0;
  for (let r = 0; r < batch; r++) {
    const base = r * classes;
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = values[base + c];
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    if (best === labels[r]) correct++;
  }
  return correct;
}

/** Loss and accuracy sums over a pass; `add` once per batch. */
export class RunningMetrics {
  /** Sum of per-batch loss × batch size. */
  lossSum = 0;
  /** Examples seen. */
  examples = 0;
  /** Correct predictions (classification only). */
  correct = 0;
  /** Examples whose accuracy was counted (0 when the targets are not class labels). */
  counted = 0;
  /** Batches seen. */
  steps = 0;

  /** Adds a batch: its loss value (a mean over the batch), its size, and correct count. */
  add(loss: number, size: number, correct: number | null): void {
    // Checked before any field changes: a missing count made the accuracy NaN, and a string
    // size was concatenated onto the example count.
    numberOption(loss, "RunningMetrics.add() loss");
    numberOption(size, "RunningMetrics.add() size");
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`RunningMetrics.add() size must be an integer >= 0, got ${size}`);
    }
    if (correct !== null) {
      if (typeof correct !== "number") {
        throw new TypeError(
          "RunningMetrics.add() correct must be a count (a number) or null (no accuracy), got " +
            describeValue(correct),
        );
      }
      if (!Number.isInteger(correct) || correct < 0 || correct > size) {
        throw new RangeError(
          `RunningMetrics.add() correct must be an integer in [0, ${size}] (the batch size), ` +
            `got ${correct}`,
        );
      }
    }
    this.lossSum += loss * size;
    this.examples += size;
    this.steps++;
    if (correct !== null) {
      this.correct += correct;
      this.counted += size;
    }
  }

  /** Mean loss per example (batch means weighted by batch size), NaN before any batch. */
  get loss(): number {
    return this.examples === 0 ? NaN : this.lossSum / this.examples;
  }

  /** Accuracy in percent, or null when no accuracy was counted. */
  get accuracy(): number | null {
    return this.counted === 0 ? null : (100 * this.correct) / this.counted;
  }
}
