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
 * x ([batch, n_in]) in the column panels the dense-gradient tiles read, packed once for all the
 * row chunks of a call (each chunk would otherwise copy them again): kernel scratch, given back
 * with sl_scratch_put; NULL when it cannot be allocated (pass NULL on: the chunks then copy).
 */
float *sl_dense_grad_pack_x(int32_t batch, int32_t n_in, const float *x);

/*
 * Rows r0 .. r0 + rows of RigL's dense gradient, g[r, i] = sum over b of dy[b, r0 + r] * x[b, i]
 * (x: [batch, n_in], dy: [batch, n_out], g: [rows, n_in]), each entry one chain of fused
 * multiply-adds over b in ascending order from +0, so the bits do not depend on the thread count
 * or on how the rows are chunked (dense_grad.c). xpack: sl_dense_grad_pack_x(x), or NULL. fn
 * names the caller in errors; fails only when its scratch cannot be allocated.
 */
sl_status sl_dense_grad_rows(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                             const float *x, const float *xpack, const float *dy, int64_t r0,
                             int64_t rows, float *g);

/*
 * The same rows' entries whose magnitude bits (bits & 0x7FFFFFFF, a NaN's included) are at or
 * above floor_bits, without storing the rest: RigL's selection once its running top-k is full,
 * when few entries of a chunk can still enter it. Writes each as (r * n_in + i) << 32 |
 * (magnitude bits + 1), in ascending position order, to out (cap entries) and returns how many;
 * -1 when they do not fit in cap, when floor_bits is 0 or above 0x7F800000 (inf), or when the
 * scratch cannot be allocated (*status then says so). The entries are those of
 * sl_dense_grad_rows, bit for bit.
 */
int64_t sl_dense_grad_rows_above(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                 const float *x, const float *xpack, const float *dy, int64_t r0,
                                 int64_t rows,
                                 uint32_t floor_bits, uint64_t *out, int64_t cap,
                                 sl_status *status);

#endif /* SL_DENSE_INTERNAL_H */
