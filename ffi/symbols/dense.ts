/**
 * Dense and element-wise kernels behind the tensor ops: GEMM, broadcasting binary ops, unary
 * ops, sums, strided copy, log-softmax (see csrc/include/sparselinear.h). Shape and stride
 * arguments are host `BigInt64Array`s passed by pointer, also on CUDA.
 * @module
 */

/** Binary operator codes of `sl_binary` / `sl_binary_bwd` (SL_BINARY_*). */
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3 } as const;

/** Unary operator codes of `sl_unary` / `sl_unary_bwd` (SL_UNARY_*). */
export const UnaryOp = {
  neg: 0,
  exp: 1,
  log: 2,
  relu: 3,
  sigmoid: 4,
  tanh: 5,
  abs: 6,
  sqrt: 7,
  affine: 8,
  reciprocal: 9,
  square: 10,
  pow: 11,
} as const;

/** Most dimensions a strided kernel takes (SL_MAX_DIMS). */
export const MAX_DIMS = 8;

/** Symbols of the dense and element-wise family. */
export const denseSymbols = {
  // sl_status sl_gemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
  //   float alpha, const float *a, int32_t lda, const float *b, int32_t ldb, float beta,
  //   float *c, int32_t ldc)
  sl_gemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "f32",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  // sl_status sl_gemm_batched(int32_t trans_a, int32_t trans_b, int32_t batch, int32_t m,
  //   int32_t n, int32_t k, float alpha, const float *a, int32_t lda, int64_t stride_a,
  //   const float *b, int32_t ldb, int64_t stride_b, float beta, float *c, int32_t ldc,
  //   int64_t stride_c)
  sl_gemm_batched: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "i64",
      "pointer",
      "i32",
      "i64",
      "f32",
      "pointer",
      "i32",
      "i64",
    ],
    result: "i32",
  },
  // sl_status sl_binary(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
  //   int64_t a_len, const int64_t *a_strides, const float *b, int64_t b_len,
  //   const int64_t *b_strides, float *out)
  sl_binary: {
    parameters: [
      "i32",
      "i32",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_binary_bwd(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
  //   int64_t a_len, const int64_t *a_strides, const float *b, int64_t b_len,
  //   const int64_t *b_strides, const float *dy, float *da, float *db)
  sl_binary_bwd: {
    parameters: [
      "i32",
      "i32",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_unary(int32_t op, int64_t n, float alpha, float beta, const float *x,
  //   float *y)
  sl_unary: { parameters: ["i32", "i64", "f32", "f32", "pointer", "pointer"], result: "i32" },
  // sl_status sl_unary_bwd(int32_t op, int64_t n, float alpha, float beta, const float *x,
  //   const float *y, const float *dy, float *dx)
  sl_unary_bwd: {
    parameters: ["i32", "i64", "f32", "f32", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_sum_axis(int64_t outer, int64_t len, int64_t inner, float alpha,
  //   const float *x, float *y)
  sl_sum_axis: { parameters: ["i64", "i64", "i64", "f32", "pointer", "pointer"], result: "i32" },
  // sl_status sl_sum_all(int64_t n, float alpha, const float *x, float *y)
  sl_sum_all: { parameters: ["i64", "f32", "pointer", "pointer"], result: "i32" },
  // sl_status sl_sum_dims(int32_t ndim, const int64_t *shape, int32_t reduce_mask, float alpha,
  //   const float *x, float *y)
  sl_sum_dims: {
    parameters: ["i32", "pointer", "i32", "f32", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_strided_copy(int32_t ndim, const int64_t *shape, float alpha, const float *x,
  //   int64_t x_len, const int64_t *x_strides, float *y)
  sl_strided_copy: {
    parameters: ["i32", "pointer", "f32", "pointer", "i64", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_log_softmax_fwd(int64_t rows, int32_t cols, const float *x, float *y)
  sl_log_softmax_fwd: { parameters: ["i64", "i32", "pointer", "pointer"], result: "i32" },
  // sl_status sl_log_softmax_bwd(int64_t rows, int32_t cols, const float *y, const float *dy,
  //   float *dx)
  sl_log_softmax_bwd: {
    parameters: ["i64", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
