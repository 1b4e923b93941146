/**
 * The sparse linear op `y = x · Wᵀ + b` with W given by a `SparsePattern` and its `nnz`
 * values, and its backward. One native call per direction:
 *   forward: y  = sl_spmm_fwd(CSR, x, bias)
 *   dX, dW   = sl_spmm_bwd(CSR + CSC view, x, dY)  both at once, where the backend asks for the
 *   (+ db)                                         CSC view (one gather of dY per connection;
 *                                                  db summed as dY is laid out)
 *              sl_spmm_bwd_csr(CSR, x, dY)          both at once otherwise (CPU batch 1: one
 *                                                  pass over the pattern for both)
 *   dX       = sl_spmm_bwd_input(CSC view, dY)     where the backend asks for the CSC view
 *                                                  (CUDA: deterministic, no atomics; the
 *                                                  CPU at batch > 1: gathers, not scatters)
 *              sl_spmm_bwd_input_csr(CSR, dY)       otherwise (CPU batch 1: values stream)
 *                                                  (skipped when x needs no gradient)
 *   dW       = sl_sddmm(x, dY) over the pattern   (one dot product per connection)
 *   db       = sl_bias_grad(dY)                   (column sums; unless sl_spmm_bwd gave it)
 * And the same op on feature-major activations (`sparseLinearFeatureMajor`: `yᵀ = W xᵀ + b`,
 * xᵀ of shape `[in, batch]`), the layout the CPU kernels compute in, so they skip their
 * transposes: sl_spmm_fwd_fm and sl_spmm_bwd_fm (both gradients, one pass over the CSC view,
 * and db). And the op with the values in CSC order (`sparseLinearCscValues`, CPU): the forward
 * reads them through the inverse permutation (sl_spmm_fwd_permuted), the backward in place
 * (sl_spmm_bwd_csc, no permutation passes).
 * @module
 */
import { record } from "../autograd.ts";
import type { Storage } from "../backend/backend.ts";
import { getBackend } from "../backend/mod.ts";
import { ShapeError } from "../errors.ts";
import type { SparsePattern } from "../sparsity/pattern.ts";
import { MAX_INT32 } from "../sparsity/pattern.ts";
import { reshape } from "../ops/shape.ts";
import { shapeString, Tensor } from "../tensor.ts";
import type { Device } from "../backend/backend.ts";
import { checkKernelScratch } from "../memory_check.ts";
import { type SparseKernelCall, sparseKernelScratch } from "./memory.ts";

/**
 * `x · Wᵀ + b` for input `x` of shape `(*, in)` (any leading dimensions, or just `[in]`),
 * weight values `weights` (`[nnz]`, in the pattern's CSR order) and optional `bias` (`[out]`).
 * Returns shape `(*, out)`. Gradients flow to every input that requires them.
 *
 * The pattern is captured at call time: change a layer's topology only between a backward
 * pass and the next forward.
 */
export function sparseLinear(
  x: Tensor,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): Tensor {
  const { nRows: nOut, nCols: nIn, nnz } = pattern;
  const batch = checkBatchMajorInput("sparseLinear()", x, weights, bias, pattern);
  const device = x.device;

  const backend = getBackend(device);
  const k = backend.kernels;
  const nnzBig = BigInt(nnz);
  const y = spmmForward("sl_spmm_fwd", x, batch, weights, bias, pattern);
  const out = new Tensor(y, [...x.shape.slice(0, -1), nOut]);

  const needX = x.requiresGrad;
  const needW = weights.requiresGrad;
  const needB = bias !== null && bias.requiresGrad;
  return record(out, "sparseLinear", [x, weights, bias], (dy) => {
    const fromCsc = backend.inputGradientFromCsc(batch);
    const sx = needX ? backend.empty("float32", batch * nIn) : null;
    const sw = needW ? backend.empty("float32", nnz) : null;
    const [rowPtr, colIdx] = [pattern.rowPtr.ptr(), pattern.colIdx.ptr()];
    const [w, xp, dyp] = [weights.storage.ptr(), x.storage.ptr(), dy.storage.ptr()];
    const csc = () => {
      const view = pattern.cscView();
      return { colPtr: view.colPtr.ptr(), rowIdx: view.rowIdx.ptr(), toCsr: view.cscToCsr.ptr() };
    };
    // The bias gradient: from sl_spmm_bwd, which sums dY as it lays it out (the same bits as
    // sl_bias_grad, without a pass of its own over dY); otherwise first, while the part of dY
    // that the op after this one just wrote is still in cache.
    const sb = needB ? backend.empty("float32", nOut) : null; // every column sum is written
    const bothFromCsc = sx !== null && sw !== null && fromCsc;
    if (sb !== null && !bothFromCsc) backend.check(k.sl_bias_grad(batch, nOut, dyp, sb.ptr()));
    if (bothFromCsc) {
      // Both gradients in one call: one gather of each dY row per connection serves both.
      checkScratch(device, "both gradients", pattern, batch);
      const c = csc();
      backend.check(
        k.sl_spmm_bwd(
          batch,
          nIn,
          nOut,
          nnzBig,
          rowPtr,
          colIdx,
          c.colPtr,
          c.rowIdx,
          c.toCsr,
          w,
          xp,
          dyp,
          sx.ptr(),
          sw.ptr(),
          sb === null ? null : sb.ptr(),
        ),
      );
    } else if (sx !== null && sw !== null) {
      // Both gradients from the CSR pattern (CPU batch 1): the pattern is read once for both.
      // Its scratch is the CSR input gradient's, the per-thread copies of dX.
      checkScratch(device, "input gradient (CSR pattern)", pattern, batch);
      backend.check(
        k.sl_spmm_bwd_csr(batch, nIn, nOut, nnzBig, rowPtr, colIdx, w, xp, dyp, sx.ptr(), sw.ptr()),
      );
    } else {
      if (sx !== null && fromCsc) {
        checkScratch(device, "input gradient (CSC view)", pattern, batch);
        const c = csc();
        backend.check(
          k.sl_spmm_bwd_input(
            batch,
            nIn,
            nOut,
            nnzBig,
            c.colPtr,
            c.rowIdx,
            c.toCsr,
            w,
            dyp,
            sx.ptr(),
          ),
        );
      } else if (sx !== null) {
        checkScratch(device, "input gradient (CSR pattern)", pattern, batch);
        backend.check(
          k.sl_spmm_bwd_input_csr(batch, nIn, nOut, nnzBig, rowPtr, colIdx, w, dyp, sx.ptr()),
        );
      }
      if (sw !== null) {
        checkScratch(device, "weight gradient", pattern, batch);
        backend.check(k.sl_sddmm(batch, nIn, nOut, nnzBig, rowPtr, colIdx, xp, dyp, sw.ptr()));
      }
    }
    return [
      sx === null ? null : new Tensor(sx, x.shape),
      sw === null ? null : new Tensor(sw, weights.shape),
      sb === null ? null : new Tensor(sb, [nOut]),
    ];
  });
}

/**
 * `sparseLinear` with `weights` in the order of the pattern's CSC view (by input, then output;
 * `valueOrder: "csc"` layers), on the CPU:
 *   forward: y  = sl_spmm_fwd_permuted(CSR, csrToCsc, x, bias)  (values read through the
 *                                                                 permutation)
 *   dX, dW (+ db) = sl_spmm_bwd_csc(CSC view, x, dY)             (both at once, dW in CSC order)
 * The backward needs no permutation: `sparseLinear`'s gathers the values into CSC order and
 * scatters dW back, one random access per connection each, where this forward gathers the
 * values once (bench/RESULTS.md). The same output and gradients, bit for bit, as `sparseLinear`
 * on the values in CSR order when both gradients are needed; with only one needed, the other is
 * computed into scratch (`sparseLinear` would take its one-gradient kernels, which sum dX or dW
 * in another order, so the two agree there only to rounding).
 */
export function sparseLinearCscValues(
  x: Tensor,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): Tensor {
  const { nRows: nOut, nCols: nIn, nnz } = pattern;
  const batch = checkBatchMajorInput("sparseLinearCscValues()", x, weights, bias, pattern);
  if (x.device !== "cpu") {
    throw new TypeError(
      `sparseLinearCscValues() (a SparseLinear with valueOrder: "csc") runs on the CPU only, ` +
        `got input on ${x.device}`,
    );
  }
  const backend = getBackend("cpu");
  const k = backend.kernels;
  const nnzBig = BigInt(nnz);
  const y = backend.empty("float32", batch * nOut);
  checkScratch("cpu", "forward (values in CSC order)", pattern, batch);
  backend.check(
    k.sl_spmm_fwd_permuted(
      batch,
      nIn,
      nOut,
      nnzBig,
      pattern.rowPtr.ptr(),
      pattern.colIdx.ptr(),
      pattern.csrToCsc().ptr(),
      weights.storage.ptr(),
      bias === null ? null : bias.storage.ptr(),
      x.storage.ptr(),
      y.ptr(),
    ),
  );
  const out = new Tensor(y, [...x.shape.slice(0, -1), nOut]);
  const needX = x.requiresGrad;
  const needW = weights.requiresGrad;
  const needB = bias !== null && bias.requiresGrad;
  return record(out, "sparseLinearCscValues", [x, weights, bias], (dy) => {
    const sb = needB ? backend.empty("float32", nOut) : null; // every column sum is written
    if (!needX && !needW) {
      if (sb !== null) backend.check(k.sl_bias_grad(batch, nOut, dy.storage.ptr(), sb.ptr()));
      return [null, null, sb === null ? null : new Tensor(sb, [nOut])];
    }
    const sx = backend.empty("float32", batch * nIn);
    const sw = backend.empty("float32", nnz);
    checkScratch("cpu", "both gradients (values in CSC order)", pattern, batch);
    const view = pattern.cscView();
    backend.check(
      k.sl_spmm_bwd_csc(
        batch,
        nIn,
        nOut,
        nnzBig,
        view.colPtr.ptr(),
        view.rowIdx.ptr(),
        weights.storage.ptr(),
        x.storage.ptr(),
        dy.storage.ptr(),
        sx.ptr(),
        sw.ptr(),
        sb === null ? null : sb.ptr(),
      ),
    );
    if (!needX) sx.dispose();
    if (!needW) sw.dispose();
    return [
      needX ? new Tensor(sx, x.shape) : null,
      needW ? new Tensor(sw, weights.shape) : null,
      sb === null ? null : new Tensor(sb, [nOut]),
    ];
  });
}

/** The batch of a batch-major input `(*, in)` after checking it and the operands. */
function checkBatchMajorInput(
  fn: string,
  x: Tensor,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): number {
  const nIn = pattern.nCols;
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${fn} input must be a Tensor, got ${typeof x}`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn) {
    throw new ShapeError(
      `${fn} input has shape ${shapeString(x.shape)}, but its last dimension must be ` +
        `the number of input features, ${nIn}: expected (*, ${nIn})`,
    );
  }
  const batch = x.size / nIn;
  if (batch === 0) {
    throw new ShapeError(
      `${fn} input of shape ${shapeString(x.shape)} is an empty batch: ` +
        "every leading dimension must be at least 1",
    );
  }
  checkOperands(fn, x, batch, weights, bias, pattern);
  return batch;
}

/**
 * `sparseLinear` on feature-major activations: `yᵀ = W xᵀ + b` for `xT` of shape
 * `[in, batch]` (one row per input feature, one column per sample) or `[in]`, returning
 * `[out, batch]` (or `[out]`). The same output, bit for bit, as `sparseLinear` on the
 * transposes, and the same gradients up to float rounding (the CPU's dx, dW and db bit for bit
 * at batch > 1 when both dx and dW are needed); on the CPU without the kernels' transposes.
 * Both gradients of the backward come from one native call, even when only one of them is
 * needed (the other is computed into scratch); `sparseLinear` then takes its one-gradient
 * kernels (`sl_spmm_bwd_input`, `sl_sddmm`), which sum in another order, so with an input that
 * needs no gradient (data) or frozen weights the other gradient agrees only to rounding. One
 * sample (`[in]` or `[in, 1]`) is the same array in both layouts and goes through
 * `sparseLinear`.
 */
export function sparseLinearFeatureMajor(
  xT: Tensor,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): Tensor {
  const { nRows: nOut, nCols: nIn, nnz } = pattern;
  if (!(xT instanceof Tensor)) {
    throw new TypeError(`sparseLinearFeatureMajor() input must be a Tensor, got ${typeof xT}`);
  }
  if ((xT.ndim !== 1 && xT.ndim !== 2) || xT.shape[0] !== nIn || xT.size === 0) {
    throw new ShapeError(
      `sparseLinearFeatureMajor() input has shape ${shapeString(xT.shape)}; expected ` +
        `[${nIn}, batch] (one row per input feature, batch >= 1) or [${nIn}]`,
    );
  }
  const batch = xT.size / nIn;
  if (batch === 1) {
    // One sample: both layouts are the same array, and the batch-major op picks the batch-1
    // kernels (the CSR scatter for dx: values stream instead of being gathered into CSC order).
    const y = sparseLinear(xT.ndim === 1 ? xT : reshape(xT, [nIn]), weights, bias, pattern);
    return xT.ndim === 1 ? y : reshape(y, [nOut, 1]);
  }
  checkOperands("sparseLinearFeatureMajor()", xT, batch, weights, bias, pattern);
  const backend = getBackend(xT.device);
  const k = backend.kernels;
  const nnzBig = BigInt(nnz);
  const y = spmmForward("sl_spmm_fwd_fm", xT, batch, weights, bias, pattern);
  const out = new Tensor(y, xT.ndim === 1 ? [nOut] : [nOut, batch]);
  const needX = xT.requiresGrad;
  const needW = weights.requiresGrad;
  const needB = bias !== null && bias.requiresGrad;
  return record(out, "sparseLinearFeatureMajor", [xT, weights, bias], (dyT) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    const sb = needB ? backend.empty("float32", nOut) : null; // every row sum of dyᵀ is written
    if (needX || needW) {
      const sx = backend.empty("float32", nIn * batch);
      const sw = backend.empty("float32", nnz);
      checkScratch(xT.device, "both gradients", pattern, batch);
      const view = pattern.cscView();
      backend.check(
        k.sl_spmm_bwd_fm(
          batch,
          nIn,
          nOut,
          nnzBig,
          pattern.rowPtr.ptr(),
          pattern.colIdx.ptr(),
          view.colPtr.ptr(),
          view.rowIdx.ptr(),
          view.cscToCsr.ptr(),
          weights.storage.ptr(),
          xT.storage.ptr(),
          dyT.storage.ptr(),
          sx.ptr(),
          sw.ptr(),
          sb === null ? null : sb.ptr(),
        ),
      );
      if (needX) dx = new Tensor(sx, xT.shape);
      else sx.dispose();
      if (needW) dw = new Tensor(sw, weights.shape);
      else sw.dispose();
    }
    if (sb !== null && !needX && !needW) {
      backend.check(k.sl_sum_axis(BigInt(nOut), BigInt(batch), 1n, 1, dyT.storage.ptr(), sb.ptr()));
    }
    return [dx, dw, sb === null ? null : new Tensor(sb, [nOut])];
  });
}

/** The forward's output storage from `kernel` (either layout: the arguments are the same). */
function spmmForward(
  kernel: "sl_spmm_fwd" | "sl_spmm_fwd_fm",
  x: Tensor,
  batch: number,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): Storage {
  const backend = getBackend(x.device);
  const y = backend.empty("float32", batch * pattern.nRows);
  checkScratch(x.device, "forward", pattern, batch);
  backend.check(
    backend.kernels[kernel](
      batch,
      pattern.nCols,
      pattern.nRows,
      BigInt(pattern.nnz),
      pattern.rowPtr.ptr(),
      pattern.colIdx.ptr(),
      weights.storage.ptr(),
      bias === null ? null : bias.storage.ptr(),
      x.storage.ptr(),
      y.ptr(),
    ),
  );
  return y;
}

/**
 * On the CPU, refuses a kernel call whose scratch block the machine cannot hold, before the
 * call maps it (`checkKernelScratch`: a block the kernels keep mapped is checked when it first
 * grows; one above what they keep, at every call).
 */
function checkScratch(
  device: Device,
  call: SparseKernelCall,
  pattern: SparsePattern,
  batch: number,
): void {
  if (device !== "cpu") return;
  const { nCols: inFeatures, nRows: outFeatures, nnz } = pattern;
  checkKernelScratch(
    sparseKernelScratch(call, { inFeatures, outFeatures, nnz }, batch),
    () => `a ${inFeatures} → ${outFeatures} SparseLinear's ${call} at batch ${batch}`,
  );
}

/** The checks both forms share: batch within the kernels' int32, weights, bias, devices. */
function checkOperands(
  fn: string,
  x: Tensor,
  batch: number,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
): void {
  if (batch > MAX_INT32) {
    throw new RangeError(
      `${fn} batch (the product of the input's dimensions other than the features) is ${batch}, ` +
        `above the int32 kernel limit ${MAX_INT32}`,
    );
  }
  if (weights.size !== pattern.nnz) {
    throw new ShapeError(`weights hold ${weights.size} values, but the pattern has ${pattern.nnz}`);
  }
  if (bias !== null && bias.size !== pattern.nRows) {
    throw new ShapeError(`bias has ${bias.size} values, expected ${pattern.nRows}`);
  }
  const device = x.device;
  for (const [name, t] of [["weights", weights], ["bias", bias]] as const) {
    if (t !== null && t.device !== device) {
      throw new TypeError(`${fn} input is on ${device} but ${name} is on ${t.device}`);
    }
  }
  if (pattern.device !== device) {
    throw new TypeError(`${fn} input is on ${device} but the pattern is on ${pattern.device}`);
  }
}
