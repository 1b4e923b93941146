/**
 * The sparse linear op `y = x · Wᵀ + b` with W given by a `SparsePattern` and its `nnz`
 * values, and its backward. One native call per direction:
 *   forward: y  = sl_spmm_fwd(CSR, x, bias)
 *   dX, dW   = sl_spmm_bwd(CSR + CSC view, x, dY)  both at once, where the backend asks for the
 *                                                  CSC view (one gather of dY per connection)
 *   dX       = sl_spmm_bwd_input(CSC view, dY)     where the backend asks for the CSC view
 *                                                  (CUDA: deterministic, no atomics; the
 *                                                  CPU at batch > 1: gathers, not scatters)
 *              sl_spmm_bwd_input_csr(CSR, dY)       otherwise (CPU batch 1: values stream)
 *                                                  (skipped when x needs no gradient)
 *   dW       = sl_sddmm(x, dY) over the pattern   (one dot product per connection)
 *   db       = sl_bias_grad(dY)                   (column sums)
 * @module
 */
import { record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import { ShapeError } from "../errors.ts";
import type { SparsePattern } from "../sparsity/pattern.ts";
import { MAX_INT32 } from "../sparsity/pattern.ts";
import { shapeString, Tensor } from "../tensor.ts";

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
  if (!(x instanceof Tensor)) {
    throw new TypeError(`sparseLinear() input must be a Tensor, got ${typeof x}`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn) {
    throw new ShapeError(
      `sparseLinear() input has shape ${shapeString(x.shape)}, but its last dimension must be ` +
        `the number of input features, ${nIn}: expected (*, ${nIn})`,
    );
  }
  const batch = x.size / nIn;
  if (batch === 0) {
    throw new ShapeError(
      `sparseLinear() input of shape ${shapeString(x.shape)} is an empty batch: ` +
        "every leading dimension must be at least 1",
    );
  }
  if (batch > MAX_INT32) {
    throw new RangeError(
      `sparseLinear() batch (product of the leading dimensions) is ${batch}, above the int32 ` +
        `kernel limit ${MAX_INT32}`,
    );
  }
  if (weights.size !== nnz) {
    throw new ShapeError(`weights hold ${weights.size} values, but the pattern has ${nnz}`);
  }
  if (bias !== null && bias.size !== nOut) {
    throw new ShapeError(`bias has ${bias.size} values, expected ${nOut}`);
  }
  const device = x.device;
  for (const [name, t] of [["weights", weights], ["bias", bias]] as const) {
    if (t !== null && t.device !== device) {
      throw new TypeError(`sparseLinear() input is on ${device} but ${name} is on ${t.device}`);
    }
  }
  if (pattern.device !== device) {
    throw new TypeError(
      `sparseLinear() input is on ${device} but the pattern is on ${pattern.device}`,
    );
  }

  const backend = getBackend(device);
  const k = backend.kernels;
  const nnzBig = BigInt(nnz);
  const y = backend.empty("float32", batch * nOut);
  backend.check(
    k.sl_spmm_fwd(
      batch,
      nIn,
      nOut,
      nnzBig,
      pattern.rowPtr.ptr(),
      pattern.colIdx.ptr(),
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
    if (sx !== null && sw !== null && fromCsc) {
      // Both gradients in one call: one gather of each dY row per connection serves both.
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
        ),
      );
    } else {
      if (sx !== null && fromCsc) {
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
        backend.check(
          k.sl_spmm_bwd_input_csr(batch, nIn, nOut, nnzBig, rowPtr, colIdx, w, dyp, sx.ptr()),
        );
      }
      if (sw !== null) {
        backend.check(k.sl_sddmm(batch, nIn, nOut, nnzBig, rowPtr, colIdx, xp, dyp, sw.ptr()));
      }
    }
    let db: Tensor | null = null;
    if (needB) {
      const s = backend.empty("float32", nOut); // sl_bias_grad writes every column sum
      backend.check(k.sl_bias_grad(batch, nOut, dyp, s.ptr()));
      db = new Tensor(s, [nOut]);
    }
    return [
      sx === null ? null : new Tensor(sx, x.shape),
      sw === null ? null : new Tensor(sw, weights.shape),
      db,
    ];
  });
}
