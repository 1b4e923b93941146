/* dense.cuh — the GEMM launcher of dense.cu, shared with the dense-gradient top-k. */
#ifndef SL_CUDA_DENSE_CUH
#define SL_CUDA_DENSE_CUH

#include "common.cuh"

/* The most rows (m) one sl_gemm_launch takes: its grid has one block row per 64 rows, and a
 * grid's y dimension stops at 65535. */
constexpr int64_t SL_GEMM_MAX_ROWS = 65535LL * 64;

/*
 * Queues C_i = alpha * op(A_i) @ op(B_i) + beta * C_i for i < batch on stream 0 (arguments
 * already checked as sl_gemm_batched checks them; stride_c == 0 sums every batch into one C).
 */
sl_status sl_gemm_launch(const char *fn, int32_t trans_a, int32_t trans_b, int32_t batch,
                         int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                         int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                         int64_t stride_b, float beta, float *c, int32_t ldc, int64_t stride_c);

#endif /* SL_CUDA_DENSE_CUH */
