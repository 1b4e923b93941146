/*
 * dense_internal.h — the portable GEMM kernel behind sl_gemm, exposed (hidden visibility, not
 * part of the ABI) so that the C tests check it even in a build where sl_gemm runs on CBLAS.
 */
#ifndef SL_DENSE_INTERNAL_H
#define SL_DENSE_INTERNAL_H

#include "sparselinear.h"

/*
 * C = alpha * op(A) @ op(B) + beta * C on the blocked OpenMP kernel; arguments as sl_gemm, which
 * must have validated them. Returns SL_E_OUT_OF_MEMORY (with the error set) when the scratch
 * copy of a transposed B cannot be allocated.
 */
sl_status sl_gemm_portable(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                           float alpha, const float *a, int32_t lda, const float *b,
                           int32_t ldb, float beta, float *c, int32_t ldc);

/*
 * The skinny-shape kernels sl_gemm runs before CBLAS (see dense.c): whether a shape takes the
 * long-dot-product kernel (A B^T with n <= 16 and a long k) or the short-inner-dimension one
 * (op(A) B with a small k), and the call itself, which returns 0 without doing anything when
 * neither fits (or its scratch cannot be allocated), 1 when it computed C.
 */
int sl_gemm_skinny_dot_fits(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k);
int sl_gemm_skinny_k_fits(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k);
int sl_gemm_skinny(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                   float alpha, const float *a, int32_t lda, const float *b, int32_t ldb,
                   float beta, float *c, int32_t ldc);

/*
 * Rows r0 .. r0 + rows of RigL's dense gradient, g[r, i] = sum over b of dy[b, r0 + r] * x[b, i]
 * (x: [batch, n_in], dy: [batch, n_out], g: [rows, n_in]), each entry one chain of fused
 * multiply-adds over b in ascending order from +0, so the bits do not depend on the thread count
 * or on how the rows are chunked (dense_grad.c). fn names the caller in errors; fails only when
 * its scratch cannot be allocated.
 */
sl_status sl_dense_grad_rows(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                             const float *x, const float *dy, int64_t r0, int64_t rows,
                             float *g);

#endif /* SL_DENSE_INTERNAL_H */
