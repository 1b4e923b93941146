/**
 * Losses: `crossEntropy` (fused log-softmax + negative log-likelihood from logits) and
 * `mseLoss`. Each is one native call forward and one backward, recorded on the tape.
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import type { Storage } from "../backend/backend.ts";
import { describeValue, ShapeError } from "../errors.ts";
import { checkOptionKeys } from "../options.ts";
import { IndexTensor, shapeString, Tensor } from "../tensor.ts";

/** How per-sample losses are combined: their mean (default), their sum, or kept (`"none"`). */
export type Reduction = "mean" | "sum" | "none";

/** Options of the losses. */
export interface LossOptions {
  /** `"mean"` (default): average over samples; `"sum"`: total; `"none"`: one loss per sample. */
  reduction?: Reduction;
}

const REDUCTION_CODES: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

function reductionCode(reduction: unknown, fn: string): number {
  if (typeof reduction !== "string") {
    throw new TypeError(
      `${fn}() reduction must be "mean", "sum" or "none", got ${describeValue(reduction)}`,
    );
  }
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new RangeError(
      `${fn}() reduction must be "mean", "sum" or "none", got ${JSON.stringify(reduction)}`,
    );
  }
  return REDUCTION_CODES[reduction];
}

function checkTensor(value: unknown, what: string): Tensor {
  if (!(value instanceof Tensor)) {
    throw new TypeError(`${what} must be a Tensor, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Cross-entropy between `logits` `[batch, classes]` and integer class `labels` `[batch]`, as
 * PyTorch's `F.cross_entropy`: `-log softmax(logits)[label]`, averaged over the batch by
 * default. The log-softmax is fused into the loss (one pass, stable for large logits).
 *
 * Throws a `RangeError` naming the first label outside `[0, classes)`, and a `ShapeError` when
 * the label count differs from the batch.
 * @example
 * ```ts
 * import { crossEntropy, tensor } from "@sparselinear/sparselinear";
 * const logits = tensor([[2, 0, 0], [0, 0, 3]], undefined, { requiresGrad: true });
 * const loss = crossEntropy(logits, new Int32Array([0, 2]));
 * loss.backward();
 * console.log(loss.item().toFixed(4), logits.grad?.shape); // 0.1672 [ 2, 3 ]
 * ```
 */
export function crossEntropy(
  logits: Tensor,
  labels: Int32Array | IndexTensor,
  options: LossOptions = {},
): Tensor {
  checkTensor(logits, "crossEntropy() logits");
  checkOptionKeys(options, ["reduction"], "crossEntropy()");
  const code = reductionCode(
    options.reduction === undefined ? "mean" : options.reduction,
    "crossEntropy",
  );
  let labelData: Int32Array;
  if (labels instanceof IndexTensor) {
    if (labels.shape.length !== 1) {
      throw new ShapeError(
        `crossEntropy() labels must be one-dimensional, got shape ${shapeString(labels.shape)}`,
      );
    }
    labelData = labels.data;
  } else if (labels instanceof Int32Array) {
    labelData = labels;
  } else {
    throw new TypeError(
      `crossEntropy() labels must be an Int32Array or an IndexTensor, got ${describeValue(labels)}`,
    );
  }
  if (logits.ndim !== 2) {
    throw new ShapeError(
      `crossEntropy() logits must have shape [batch, classes], got ${shapeString(logits.shape)}`,
    );
  }
  const [batch, classes] = logits.shape;
  if (classes === 0) {
    throw new ShapeError("crossEntropy() logits have 0 classes; at least 1 is needed");
  }
  if (labelData.length !== batch) {
    throw new ShapeError(
      `crossEntropy() got ${labelData.length} labels for a batch of ${batch} logits ` +
        `(shape ${shapeString(logits.shape)})`,
    );
  }
  for (let i = 0; i < batch; i++) {
    const label = labelData[i];
    if (label < 0 || label >= classes) {
      throw new RangeError(
        `crossEntropy() label ${label} at index ${i} is outside [0, ${classes}): ` +
          `the logits have ${classes} classes`,
      );
    }
  }

  const backend = getBackend(logits.device);
  const k = backend.kernels;
  // Copy the labels: the caller may reuse its array before backward runs.
  const labelStorage: Storage = backend.fromHost(labelData.slice());
  const loss = backend.empty("float32", code === 0 ? batch : 1);
  const lse = backend.empty("float32", batch);
  backend.check(
    k.sl_cross_entropy_fwd(
      batch,
      classes,
      logits.storage.ptr(),
      labelStorage.ptr(),
      code,
      loss.ptr(),
      lse.ptr(),
    ),
  );
  const out = new Tensor(loss, code === 0 ? [batch] : []);
  return record(out, "crossEntropy", [logits], (grad) => {
    const dlogits = backend.empty("float32", logits.size);
    backend.check(
      k.sl_cross_entropy_bwd(
        batch,
        classes,
        logits.storage.ptr(),
        labelStorage.ptr(),
        lse.ptr(),
        grad.storage.ptr(),
        code === 0 ? 1 : 0,
        code === 1 ? 1 / batch : 1,
        dlogits.ptr(),
      ),
    );
    return [new Tensor(dlogits, logits.shape)];
  });
}

/**
 * Mean squared error `(pred - target)^2`, averaged over every element by default, as
 * PyTorch's `F.mse_loss`. `pred` and `target` must have the same shape; gradients flow to
 * both when they require them.
 * @example
 * ```ts
 * import { mseLoss, tensor } from "@sparselinear/sparselinear";
 * const pred = tensor([1, 2, 3], [3], { requiresGrad: true });
 * const loss = mseLoss(pred, tensor([1, 2, 5], [3]), { reduction: "sum" });
 * console.log(loss.item()); // 4
 * ```
 */
export function mseLoss(pred: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  checkTensor(pred, "mseLoss() pred");
  checkTensor(target, "mseLoss() target");
  checkOptionKeys(options, ["reduction"], "mseLoss()");
  const code = reductionCode(
    options.reduction === undefined ? "mean" : options.reduction,
    "mseLoss",
  );
  if (pred.shape.join() !== target.shape.join()) {
    throw new ShapeError(
      `mseLoss() pred has shape ${shapeString(pred.shape)} but target has shape ` +
        `${shapeString(target.shape)}; they must match`,
    );
  }
  if (pred.device !== target.device) {
    throw new TypeError(`mseLoss() pred is on ${pred.device} but target is on ${target.device}`);
  }
  const n = pred.size;
  const backend = getBackend(pred.device);
  const k = backend.kernels;
  const loss = backend.empty("float32", code === 0 ? n : 1);
  backend.check(
    k.sl_mse_fwd(BigInt(n), pred.storage.ptr(), target.storage.ptr(), code, loss.ptr()),
  );
  const out = new Tensor(loss, code === 0 ? pred.shape : []);
  return record(out, "mseLoss", [pred, target], (grad) => {
    const dpred = pred.requiresGrad ? backend.empty("float32", n) : null;
    const dtarget = target.requiresGrad ? backend.empty("float32", n) : null;
    backend.check(
      k.sl_mse_bwd(
        BigInt(n),
        pred.storage.ptr(),
        target.storage.ptr(),
        grad.storage.ptr(),
        code === 0 ? 1 : 0,
        code === 1 ? 1 / n : 1,
        dpred?.ptr() ?? null,
        dtarget?.ptr() ?? null,
      ),
    );
    return [
      dpred === null ? null : new Tensor(dpred, pred.shape),
      dtarget === null ? null : new Tensor(dtarget, target.shape),
    ];
  });
}
