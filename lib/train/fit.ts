/**
 * `fit`: a small, reusable training loop (Keras' `fit`, in the spirit of PyTorch's usual
 * hand-written loop). Per step: forward, loss, a non-finite check, backward, the prune-and-grow
 * step of dynamic sparse layers, the optimizer step. Per epoch: training loss/accuracy, an
 * evaluation pass on the test data (evaluation mode, no graph), timing and resident memory,
 * and `onEpochEnd()` on every module that has one (K-Winners boost decay).
 *
 * Memory stays flat over steps: only running sums are kept per epoch (no per-step history), and
 * each step's graph is dropped once its backward has run. On the GPU, whenever the device
 * memory held has grown by a quarter of the device (4 GiB at most) since the last look, the loop
 * gives the event loop a turn so that the tensors the garbage collector found unreachable are
 * freed (see `reclaimDeviceMemory`); a synchronous loop would otherwise hold every step's
 * activations until the end of the epoch.
 * @module
 */
import { cudaDeviceInfo, cudaMemoryStats, reclaimDeviceMemory } from "../backend/cuda.ts";
import { Batches } from "../data/batches.ts";
import { describeValue, NonFiniteLossError, requireModule, requireObject } from "../errors.ts";
import { zeros } from "../creation.ts";
import { checkOptionKeys, numberOption } from "../options.ts";
import type { Module } from "../nn/module.ts";
import { IndexTensor, shapeString, Tensor } from "../tensor.ts";
import type { Device } from "../backend/backend.ts";
import { dynamicSchedules, stepDynamicSparsity } from "../sparsity/rigl.ts";
import { type BatchSource, checkBatchSource, evaluate, type LossFunction } from "./evaluate.ts";
import { countCorrect, RunningMetrics } from "./metrics.ts";
import { ProgressBar, type ProgressOptions } from "./progress.ts";
import { formatBytes } from "./summary.ts";

/** The optimizer surface the loop uses (`SGD`, `Adam`, ... provide it). */
export interface StepOptimizer {
  /** Applies one update from the parameters' gradients. */
  step(): void;
  /** Clears the gradients. */
  zeroGrad(): void;
}

/** Growth of the CUDA memory held after which `fit` lets unreachable tensors be freed: a
 * quarter of the device's memory, at most DEVICE_RECLAIM_BYTES. */
const DEVICE_RECLAIM_BYTES = 4 * 2 ** 30;

function deviceReclaimBytes(model: Module): number {
  const onCuda = model.parameters().some((p) => p.device === "cuda");
  return onCuda ? Math.min(DEVICE_RECLAIM_BYTES, cudaDeviceInfo().totalBytes / 4) : Infinity;
}

/** What one epoch did. */
export interface EpochStats {
  /** Epoch number, from 1. */
  epoch: number;
  /** Mean training loss per example over the epoch (as the model was while training). */
  trainLoss: number;
  /** Training accuracy in percent (null unless the targets are class labels). */
  trainAccuracy: number | null;
  /** Test loss after the epoch (null without test data). */
  testLoss: number | null;
  /** Test accuracy in percent after the epoch (null without test data or labels). */
  testAccuracy: number | null;
  /** Optimizer steps in the epoch. */
  steps: number;
  /** Training examples seen in the epoch. */
  examples: number;
  /** Seconds spent training (forward, backward, updates, batching). */
  trainSeconds: number;
  /** Seconds spent on the test pass. */
  testSeconds: number;
  /** Resident set size of the process at the end of the epoch, in bytes. */
  rssBytes: number;
}

/** What `fit` returns. */
export interface FitResult {
  /** One entry per epoch (those of `resumeFrom` first). */
  history: EpochStats[];
  /** Total optimizer steps (those of `resumeFrom` included). */
  steps: number;
  /** Largest resident set size sampled (after each training and test pass), in bytes. */
  peakRssBytes: number;
}

/** Options of `fit`. */
export interface FitOptions<Y> {
  /** The optimizer over the model's parameters. */
  optimizer: StepOptimizer;
  /** The loss of a batch: `(output, target) => one-element tensor` (e.g. `crossEntropy`). */
  loss: LossFunction<Y>;
  /** Training batches (re-iterated every epoch, e.g. `batches(..., { shuffle: true })`). */
  train: BatchSource<Y>;
  /** Test batches evaluated after every epoch (optional). */
  test?: BatchSource<Y>;
  /** Number of epochs (a positive integer). */
  epochs: number;
  /**
   * Progress during an epoch: a bar with rate and ETA on a terminal, periodic plain lines
   * otherwise (default true; false for none; or options of `ProgressBar`).
   */
  progress?: boolean | ProgressOptions;
  /** Where the per-epoch summary lines go (default `console.log`; null: nowhere). */
  log?: ((line: string) => void) | null;
  /** Called after every epoch (after the test pass), awaited: save plots or checkpoints. */
  onEpochEnd?: (stats: EpochStats, history: readonly EpochStats[]) => void | Promise<void>;
  /**
   * Called after each step's backward and dynamic-sparsity update, before the optimizer step
   * (`step` counts from 1 over the whole run): gradient clipping, custom schedules.
   */
  afterBackward?: (step: number) => void;
  /**
   * The epochs a checkpoint already ran (its `history`): training continues at epoch
   * `resumeFrom.length + 1` up to `epochs` (the total), steps count on from theirs, and they
   * lead the history passed to `onEpochEnd` and returned. The model, the optimizer state and
   * the training batches (`Batches.skipEpochs`) must be where that run left them.
   */
  resumeFrom?: readonly EpochStats[];
}

/** A module with a per-epoch hook (e.g. `ActivationSparsity` decays its boost strength). */
interface HasEpochHook {
  onEpochEnd(): void;
}

function hasEpochHook(m: Module): m is Module & HasEpochHook {
  return typeof (m as Partial<HasEpochHook>).onEpochEnd === "function";
}

function formatAccuracy(accuracy: number | null): string {
  return accuracy === null ? "" : `  acc ${accuracy.toFixed(2)}%`;
}

/** One line describing an epoch, e.g. for logs. */
export function formatEpoch(stats: EpochStats, epochs: number): string {
  requireObject(stats, "formatEpoch() stats", "an EpochStats object (an entry of fit()'s history)");
  for (const key of ["epoch", "trainLoss", "trainSeconds", "rssBytes"] as const) {
    numberOption(stats[key], `formatEpoch() stats.${key}`);
  }
  checkEpochs(epochs);
  const width = String(epochs).length;
  const head = `epoch ${String(stats.epoch).padStart(width)}/${epochs}`;
  const train = `train loss ${stats.trainLoss.toFixed(4)}${formatAccuracy(stats.trainAccuracy)}`;
  const test = stats.testLoss === null
    ? ""
    : `  |  test loss ${stats.testLoss.toFixed(4)}${formatAccuracy(stats.testAccuracy)}`;
  const time = `  |  ${stats.trainSeconds.toFixed(2)} s` +
    (stats.testLoss === null ? "" : ` (+${stats.testSeconds.toFixed(2)} s test)`);
  return `${head}  ${train}${test}${time}  RSS ${formatBytes(stats.rssBytes)}`;
}

function checkEpochs(epochs: unknown): number {
  const n = numberOption(epochs, "epochs");
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`epochs must be a positive integer, got ${String(epochs)}`);
  }
  return n;
}

const FIT_OPTIONS = [
  "optimizer",
  "loss",
  "train",
  "test",
  "epochs",
  "progress",
  "log",
  "onEpochEnd",
  "afterBackward",
  "resumeFrom",
] as const;

/** Checks `resumeFrom`: epochs 1, 2, ... in order, fewer than `epochs`. */
function checkResumeFrom(done: unknown, epochs: number): readonly EpochStats[] {
  if (done === undefined) return [];
  if (!Array.isArray(done)) {
    throw new TypeError(
      `fit() resumeFrom must be the history of the epochs already run, got ${describeValue(done)}`,
    );
  }
  done.forEach((e, i) => {
    if (e?.epoch !== i + 1 || !Number.isSafeInteger(e?.steps) || e.steps < 0) {
      throw new TypeError(
        `fit() resumeFrom[${i}] must be the stats of epoch ${i + 1} (with its steps), as fit() ` +
          "returned them",
      );
    }
  });
  if (done.length >= epochs) {
    throw new RangeError(
      `fit() resumeFrom already holds ${done.length} epoch(s) and epochs (the total) is ` +
        `${epochs}: nothing left to run`,
    );
  }
  return done;
}

/** What every batch of a source holds, where that can be known without consuming it. */
interface BatchKind {
  example: number[];
  target: number[] | "labels" | "index labels";
  device: Device;
}

/** The kind of a `batches()` source, or of an array's first batch; null when not knowable. */
function batchKind(source: unknown): BatchKind | null {
  if (source instanceof Batches) {
    if (source.count === 0) return null;
    const target = source.targetShape;
    return { example: source.exampleShape, target: target ?? "labels", device: source.device };
  }
  if (!Array.isArray(source) || source.length === 0) return null;
  const { x, y } = (source[0] ?? {}) as { x?: unknown; y?: unknown };
  if (!(x instanceof Tensor) || x.ndim < 1) return null;
  const target = y instanceof Int32Array
    ? "labels"
    : y instanceof IndexTensor
    ? "index labels"
    : y instanceof Tensor && y.ndim >= 1
    ? y.shape.slice(1)
    : null;
  return target === null ? null : { example: x.shape.slice(1), target, device: x.device };
}

function describeKind(kind: BatchKind): string {
  const target = kind.target === "labels"
    ? "class labels"
    : kind.target === "index labels"
    ? "class labels in an IndexTensor"
    : `targets ${shapeString(kind.target)}`;
  return `examples ${shapeString(kind.example)}, ${target}, on "${kind.device}"`;
}

/**
 * Test batches whose examples, targets or device differ from the training batches' (from
 * `batches()`, or an array's first batch) are first tried on one zero example through the model
 * and the loss (evaluation mode, no graph): one that fails there would otherwise fail in the
 * first test pass, after a whole epoch of training. A model made for several example shapes
 * passes and trains as asked. Other iterables cannot be looked into without consuming them; an
 * empty set has nothing to try.
 */
function checkTestMatchesTrain<Y>(
  model: Module,
  loss: LossFunction<Y>,
  train: unknown,
  test: unknown,
): void {
  const [trainKind, testKind] = [batchKind(train), batchKind(test)];
  if (trainKind === null || testKind === null) return;
  const [trainText, testText] = [describeKind(trainKind), describeKind(testKind)];
  if (trainText === testText) return;
  const { device, target } = testKind;
  const x = zeros([1, ...testKind.example], { device });
  const y = target === "labels"
    ? new Int32Array(1)
    : target === "index labels"
    ? new IndexTensor(new Int32Array(1), [1])
    : zeros([1, ...target], { device });
  try {
    evaluate(model, [{ x, y: y as Y, size: 1 }], loss);
  } catch (err) {
    if (err instanceof Error) {
      err.message = `fit() test batches (${testText}) differ from the train batches ` +
        `(${trainText}) and fail in the model or the loss (tried on one example of zeros); ` +
        `nothing was trained: ${err.message}`;
    }
    throw err;
  } finally {
    x.dispose();
    if (y instanceof Tensor) y.dispose();
  }
}

/**
 * Trains `model` for `options.epochs` epochs and evaluates it on `options.test` after each.
 *
 * Stops with a `NonFiniteLossError` naming the step (counted from 1 over the whole run), the
 * epoch and the batch at the first loss that is NaN or infinite — before that step's backward
 * and update, so the parameters are those that produced it — or at a non-finite test loss, after
 * printing that epoch's line and before its `onEpochEnd` (which would save a diverged model).
 * Errors of the model or the loss (wrong input width, labels out of range) propagate unchanged.
 * Test batches (from `batches()`, or an array of batches) with other example shapes, targets or
 * device than the training batches are tried through the model first: one the model cannot take
 * is refused before the first epoch, not after it.
 * @example
 * ```ts
 * import { batches, crossEntropy, fit, Linear, SGD, tensor } from "@sparselinear/sparselinear";
 * const x = tensor([[1, 0], [0, 1], [1, 0], [0, 1]]);
 * const y = new Int32Array([0, 1, 0, 1]);
 * const model = new Linear(2, 2, { seed: 0 });
 * const data = batches(x, y, { batchSize: 2 });
 * const { history } = await fit(model, {
 *   optimizer: new SGD(model, { lr: 0.5 }),
 *   loss: crossEntropy,
 *   train: data,
 *   epochs: 3,
 *   progress: false,
 *   log: null,
 * });
 * console.log(history.length); // 3
 * ```
 */
export async function fit<Y>(model: Module, options: FitOptions<Y>): Promise<FitResult> {
  requireModule(model, "fit() model");
  if (options === null || typeof options !== "object") {
    throw new TypeError("fit() needs an options object { optimizer, loss, train, epochs }");
  }
  checkOptionKeys(options, FIT_OPTIONS, "fit()");
  const epochs = checkEpochs(options.epochs);
  const done = checkResumeFrom(options.resumeFrom, epochs);
  const { optimizer, loss, train, test } = options;
  if (typeof optimizer?.step !== "function" || typeof optimizer?.zeroGrad !== "function") {
    throw new TypeError("fit() optimizer must have step() and zeroGrad() (e.g. an SGD)");
  }
  if (typeof loss !== "function") throw new TypeError("fit() loss must be a function");
  // Everything is checked before the first step: a bad option found after an epoch would leave
  // the model trained and the run lost.
  checkBatchSource(train, "fit() train", true);
  if (test !== undefined) {
    checkBatchSource(test, "fit() test", false);
    checkTestMatchesTrain(model, loss, train, test);
  }
  for (const name of ["log", "onEpochEnd", "afterBackward"] as const) {
    const value = options[name];
    if (value !== undefined && value !== null && typeof value !== "function") {
      throw new TypeError(`fit() ${name} must be a function${name === "log" ? " or null" : ""}`);
    }
  }
  if (
    options.progress !== undefined && typeof options.progress !== "boolean" &&
    (options.progress === null || typeof options.progress !== "object")
  ) {
    throw new TypeError(
      "fit() progress must be a boolean or a ProgressOptions object, got " +
        describeValue(options.progress),
    );
  }
  const log = options.log === undefined ? console.log : options.log;
  const progressOptions = options.progress === undefined || options.progress === true
    ? {}
    : options.progress === false
    ? null
    : options.progress;

  const modules = model.namedModules().map(([, m]) => m);
  const epochHooks = modules.filter(hasEpochHook);
  const isDynamic = dynamicSchedules(model).length > 0;

  const history: EpochStats[] = [...done];
  let step = done.reduce((n, e) => n + e.steps, 0);
  const reclaimBytes = deviceReclaimBytes(model);
  let deviceBaseline = cudaMemoryStats().bytes;
  let peakRss = Deno.memoryUsage().rss;
  for (let epoch = done.length + 1; epoch <= epochs; epoch++) {
    model.train();
    const metrics = new RunningMetrics();
    const label = `epoch ${String(epoch).padStart(String(epochs).length)}/${epochs}`;
    const bar = progressOptions === null
      ? null
      : new ProgressBar(label, train.length, progressOptions);
    const start = performance.now();
    let batchIndex = 0;
    // The bar is cleared however the epoch ends (an error printed after it would otherwise
    // share its line).
    try {
      for (const batch of train) {
        batchIndex++;
        step++;
        const output = model.forward(batch.x);
        const lossTensor = loss(output, batch.y);
        const value = lossTensor.item();
        if (!Number.isFinite(value)) {
          throw new NonFiniteLossError(
            `Loss is ${value} at step ${step} (epoch ${epoch}, batch ${batchIndex} of ` +
              `${train.length}); training stopped before this step's update. Lower the learning ` +
              "rate, or look for NaN/Inf in the inputs",
          );
        }
        // Counted before backward: the output is the one the loss saw.
        const correct = batch.y instanceof Int32Array && output.ndim === 2
          ? countCorrect(output, batch.y)
          : null;
        metrics.add(value, batch.size, correct);
        lossTensor.backward();
        if (isDynamic) stepDynamicSparsity(model);
        options.afterBackward?.(step);
        optimizer.step();
        optimizer.zeroGrad();
        if (reclaimBytes !== Infinity && cudaMemoryStats().bytes - deviceBaseline > reclaimBytes) {
          await reclaimDeviceMemory();
          // Still above after a turn: no collection has run since; make one likely.
          if (cudaMemoryStats().bytes - deviceBaseline > reclaimBytes) {
            await reclaimDeviceMemory({ collect: true });
          }
          deviceBaseline = cudaMemoryStats().bytes;
        }
        if (bar !== null) {
          const acc = metrics.accuracy;
          bar.update(
            batchIndex,
            `loss ${metrics.loss.toFixed(4)}${acc === null ? "" : `  acc ${acc.toFixed(2)}%`}`,
          );
        }
      }
    } finally {
      bar?.finish();
    }
    const trainSeconds = (performance.now() - start) / 1000;
    for (const m of epochHooks) m.onEpochEnd();
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);

    let result = null;
    if (test !== undefined) {
      const testBar = progressOptions === null
        ? null
        : new ProgressBar(`${label} test`, test.length, progressOptions);
      try {
        result = evaluate(model, test, loss, { onBatch: (done) => testBar?.update(done) });
      } finally {
        testBar?.finish();
      }
    }
    const rss = Deno.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    const stats: EpochStats = {
      epoch,
      trainLoss: metrics.loss,
      trainAccuracy: metrics.accuracy,
      testLoss: result?.loss ?? null,
      testAccuracy: result?.accuracy ?? null,
      steps: metrics.steps,
      examples: metrics.examples,
      trainSeconds,
      testSeconds: result?.seconds ?? 0,
      rssBytes: rss,
    };
    history.push(stats);
    log?.(formatEpoch(stats, epochs));
    // (A test pass over no examples has a loss of NaN: nothing diverged.)
    if (result !== null && result.examples > 0 && !Number.isFinite(result.loss)) {
      // The last update made the model's outputs non-finite: stop before onEpochEnd, so that no
      // checkpoint of a diverged model is written.
      throw new NonFiniteLossError(
        `Test loss is ${result.loss} after epoch ${epoch} (step ${step}): the update of a step ` +
          "whose own loss was finite diverged; training stopped before this epoch's onEpochEnd " +
          "(nothing saved). Lower the learning rate, or look for NaN/Inf in the test inputs",
      );
    }
    await options.onEpochEnd?.(stats, history);
  }
  return { history, steps: step, peakRssBytes: peakRss };
}
