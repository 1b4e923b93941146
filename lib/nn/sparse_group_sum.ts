/**
 * `sparseLinearGroupSum`: a sparse layer whose outputs are summed in interleaved groups
 * (`groupSum(sparseLinear(x, W, b), size)`, the seed's wide model's last two steps), computed
 * through the layer's collapsed weights instead of its `out` outputs.
 *
 * The group sum is a linear map P (`size × out`, P[c, o] = 1 where o mod size = c), so
 * `P · (W x + b) = (P W) x + P b`, and `G = P W` is a dense `size × in` matrix: row c sums
 * the rows of W in group c. With `size · in` well below nnz (the wide model: 10 · 50 000 =
 * 0.5 M against 2.5 M connections), one pass over the connections to form G, a small dense
 * product, and one pass to bring G's gradient back to the connections cost far less than the
 * sparse forward and backward over `batch × out` activations:
 *   forward:  G = P W (`sl_group_collapse`: each value added into row o mod size of G), then
 *             y = x Gᵀ + P b (dense, `linear`)
 *   backward: dG, dx, d(P b) from `linear`; dW[k] = dG[o mod size, col k] for connection
 *             k = (o, col) (`sl_group_collapse_bwd`); db = Pᵀ d(P b) (`groupSum`'s backward).
 * The result equals the unfused computation up to float rounding (sums in another order) for
 * finite values; a non-finite input reaches every group through G (0 · inf = NaN), so
 * `SparseLinear.forwardGroupSum` recomputes a non-finite result the plain way.
 * @module
 */
import { isGradEnabled, markGraphOwned, markGraphOwnedConstant, record } from "../autograd.ts";
import { getBackend } from "../backend/mod.ts";
import type { SparsePattern } from "../sparsity/pattern.ts";
import { Tensor } from "../tensor.ts";
import { groupSum } from "./group_sum.ts";
import { linear } from "./linear.ts";

/**
 * `G = P W` (`[size, nIn]`), row c the sum of the rows o of W with o mod size = c; its
 * gradient flows back to `weights` (dW[k] = dG[o mod size, col k]).
 */
function collapsedWeights(weights: Tensor, pattern: SparsePattern, size: number): Tensor {
  const { nRows: nOut, nCols: nIn, nnz } = pattern;
  const backend = getBackend(weights.device);
  const k = backend.kernels;
  const g = backend.empty("float32", size * nIn);
  backend.check(
    k.sl_group_collapse(
      nIn,
      nOut,
      BigInt(nnz),
      pattern.rowPtr.ptr(),
      pattern.colIdx.ptr(),
      weights.storage.ptr(),
      size,
      g.ptr(),
    ),
  );
  const out = new Tensor(g, [size, nIn]);
  if (!isGradEnabled() || !weights.requiresGrad) return out;
  return record(out, "collapsedWeights", [weights], (dg) => {
    const dw = backend.empty("float32", nnz);
    backend.check(
      k.sl_group_collapse_bwd(
        nIn,
        nOut,
        BigInt(nnz),
        pattern.rowPtr.ptr(),
        pattern.colIdx.ptr(),
        dg.storage.ptr(),
        size,
        dw.ptr(),
      ),
    );
    return [new Tensor(dw, weights.shape)];
  });
}

/**
 * Whether the collapsed form is cheaper than the sparse layer followed by the group sum, on
 * the CPU: forming G and bringing its gradient back are two scalar passes over the
 * connections, the dense products `batch × in × size` multiply-adds each; the sparse form
 * costs `batch × nnz` per pass over 8-wide vectors. Measured at 50000² and 99.9 %, size 10,
 * forward + backward (medians of 12, 2 vCPUs): batch 1 7.3 (plain) vs 10.4 ms (collapsed),
 * batch 2 24.7 vs 8.1, batch 4 13.5 vs 6.9, batch 16 21.2 vs 10.8 (`deno bench` at batch 64:
 * 45.7 vs 18.1 ms on average). So from batch 2 when `size · in` ≤ nnz / 2. On CUDA the plain form stays: its sparse kernels take
 * 0.55 ms there, while the library's own GEMM, with no split over the reduction, computes
 * x Gᵀ (64 × 10 outputs, 50 000 terms each) on a few blocks in 3.8 ms (H200).
 */
export function collapsedGroupSumPays(
  pattern: SparsePattern,
  size: number,
  batch: number,
): boolean {
  return pattern.device === "cpu" && batch >= 2 && size * pattern.nCols * 2 <= pattern.nnz;
}

/**
 * `groupSum(sparseLinear(x, weights, bias, pattern), size)` through the collapsed weights
 * (see the module doc); `x` `(*, in)` → `(*, size)`. The caller has checked shapes and
 * devices (as `SparseLinear.forwardGroupSum` does) and that `size` divides the outputs.
 */
export function sparseLinearGroupSum(
  x: Tensor,
  weights: Tensor,
  bias: Tensor | null,
  pattern: SparsePattern,
  size: number,
): Tensor {
  const g = collapsedWeights(weights, pattern, size);
  const y = linear(x, g, bias === null ? null : groupSum(bias, size));
  // Only `linear` saw G: its memory goes back to the pool with the graph (at once without
  // one), so the next step's G or gradient of G reuses it instead of fresh pages (a 2 MB
  // array at 50 000 inputs: ~5 ms of page faults per step on this VM).
  if (g.gradFn !== null) markGraphOwned(g);
  else if (y.gradFn !== null) markGraphOwnedConstant(g, y); // kept for the input's gradient
  else getBackend(g.device).recycle(g.storage);
  return y;
}
