/**
 * `matmul` with gradients, on `sl_gemm` / `sl_gemm_batched` (CBLAS when the library has it).
 * @module
 */
import { record } from "../autograd.ts";
import type { Backend } from "../backend/backend.ts";
import { ShapeError } from "../errors.ts";
import { numel, shapeString, type Tensor } from "../tensor.ts";
import { allocate, backendOf, checkInt32, checkTensor, sameDevice } from "./_util.ts";

/**
 * How a matmul maps onto GEMM: `A` is [batchA, m, k] (or [rows = batch * m, k] when `flat`),
 * `B` is [batchB, k, n]; a batch count of 1 with `stride 0` is broadcast over the other side.
 */
interface GemmPlan {
  /** The product is one GEMM with the batch folded into the rows of A (B is a matrix). */
  flat: boolean;
  batch: number;
  m: number;
  n: number;
  k: number;
  strideA: number;
  strideB: number;
  outShape: number[];
}

function plan(a: Tensor, b: Tensor): GemmPlan {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(
      `matmul() needs tensors of at least 1 dimension, got shapes ${shapeString(a.shape)} and ${
        shapeString(b.shape)
      }`,
    );
  }
  // A 1-D left operand is a row vector, a 1-D right operand a column vector (as NumPy).
  const aShape = a.ndim === 1 ? [1, a.shape[0]] : [...a.shape];
  const bShape = b.ndim === 1 ? [b.shape[0], 1] : [...b.shape];
  const m = aShape[aShape.length - 2], k = aShape[aShape.length - 1];
  const kb = bShape[bShape.length - 2], n = bShape[bShape.length - 1];
  if (k !== kb) {
    throw new ShapeError(
      `matmul() shapes ${shapeString(a.shape)} and ${shapeString(b.shape)} do not match: ` +
        `a has ${k} columns but b has ${kb} rows`,
    );
  }
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  let outShape: number[];
  let result: Omit<GemmPlan, "outShape">;
  if (bBatch.length === 0) {
    outShape = [...aBatch, m, n];
    result = { flat: true, batch: 1, m: numel(aBatch) * m, n, k, strideA: 0, strideB: 0 };
  } else if (aBatch.length === 0) {
    outShape = [...bBatch, m, n];
    result = { flat: false, batch: numel(bBatch), m, n, k, strideA: 0, strideB: k * n };
  } else {
    if (shapeString(aBatch) !== shapeString(bBatch)) {
      throw new ShapeError(
        `matmul() batch dimensions of ${shapeString(a.shape)} and ${
          shapeString(b.shape)
        } differ: ` +
          `${shapeString(aBatch)} vs ${shapeString(bBatch)} (they must be equal, or one operand ` +
          "a matrix)",
      );
    }
    outShape = [...aBatch, m, n];
    result = { flat: false, batch: numel(aBatch), m, n, k, strideA: m * k, strideB: k * n };
  }
  if (a.ndim === 1) outShape.splice(outShape.length - 2, 1);
  if (b.ndim === 1) outShape.pop();
  checkInt32(result.m, "matmul() row count");
  checkInt32(result.n, "matmul() column count");
  checkInt32(result.k, "matmul() inner dimension");
  checkInt32(result.batch, "matmul() batch count");
  return { ...result, outShape };
}

/** C = op(A) @ op(B) over the plan's batches (strides in elements; strideC 0 accumulates). */
function gemm(
  backend: Backend,
  transA: number,
  transB: number,
  batch: number,
  m: number,
  n: number,
  k: number,
  a: Tensor,
  lda: number,
  strideA: number,
  b: Tensor,
  ldb: number,
  strideB: number,
  c: Tensor,
  strideC: number,
): void {
  const kernels = backend.kernels;
  if (batch === 0) return; // no matrices: an empty result (its storage has no pointer)
  if (batch === 1) {
    backend.check(
      kernels.sl_gemm(
        transA,
        transB,
        m,
        n,
        k,
        1,
        a.storage.ptr(),
        lda,
        b.storage.ptr(),
        ldb,
        0,
        c.storage.ptr(),
        Math.max(n, 1),
      ),
    );
    return;
  }
  backend.check(
    kernels.sl_gemm_batched(
      transA,
      transB,
      batch,
      m,
      n,
      k,
      1,
      a.storage.ptr(),
      lda,
      BigInt(strideA),
      b.storage.ptr(),
      ldb,
      BigInt(strideB),
      0,
      c.storage.ptr(),
      Math.max(n, 1),
      BigInt(strideC),
    ),
  );
}

/**
 * Matrix product with NumPy semantics for the supported cases: 2-D @ 2-D; N-D @ 2-D (the
 * leading dimensions are a batch, one GEMM); 2-D @ N-D and N-D @ N-D with equal batch
 * dimensions (batched GEMM); a 1-D operand is a row (left) or column (right) vector whose
 * dimension is dropped from the result.
 * @example
 * ```ts
 * import { matmul, tensor } from "@sparselinear/sparselinear";
 * const y = matmul(tensor([[1, 2], [3, 4]]), tensor([[1], [1]]));
 * console.log(y.toNested()); // [[3], [7]]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor(a, "matmul() a");
  checkTensor(b, "matmul() b");
  sameDevice("matmul", ["a", "b"], [a, b]);
  const p = plan(a, b);
  const backend = backendOf(a);
  const out = allocate(backend, p.outShape);
  const { batch, m, n, k } = p;
  const lda = Math.max(k, 1), ldb = Math.max(n, 1);
  gemm(backend, 0, 0, batch, m, n, k, a, lda, p.strideA, b, ldb, p.strideB, out, m * n);
  return record(out, "matmul", [a, b], (grad) => {
    let da: Tensor | null = null, db: Tensor | null = null;
    if (a.requiresGrad) {
      // dA_i = dY_i @ B_i^T; a broadcast A (stride 0) sums over the batch (strideC 0).
      da = allocate(backend, a.shape);
      gemm(
        backend,
        0,
        1,
        batch,
        m,
        k,
        n,
        grad,
        ldb,
        m * n,
        b,
        ldb,
        p.strideB,
        da,
        p.strideA,
      );
    }
    if (b.requiresGrad) {
      // dB_i = A_i^T @ dY_i; a broadcast B sums over the batch.
      db = allocate(backend, b.shape);
      gemm(
        backend,
        1,
        0,
        batch,
        k,
        n,
        m,
        a,
        lda,
        p.strideA,
        grad,
        ldb,
        m * n,
        db,
        p.strideB,
      );
    }
    return [da, db];
  });
}
