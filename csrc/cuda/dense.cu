/*
 * dense.cu — dense GEMM on device memory (sl_gemm, sl_gemm_batched) without cuBLAS: a classic
 * shared-memory tiled kernel. Each 256-thread block computes a 64 x 64 tile of C, stepping
 * through K in slices of 16: both operand tiles are staged in shared memory (loaded so that
 * consecutive threads read consecutive addresses whichever operand is transposed), and each
 * thread accumulates a 4 x 4 register block.
 *
 * The batched form runs one tile per (block, batch) pair; with stride_c == 0 a block instead
 * sums every batch's product into its tile before writing C once (no atomics, deterministic).
 */
#include "dense.cuh"
#include "validate.h"

namespace {

constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256;
static_assert(SL_GEMM_MAX_ROWS == 65535LL * BM, "dense.cuh's row limit follows the tile height");

struct gemm_args {
  int32_t m, n, k;
  float alpha, beta;
  const float *a;
  int64_t a_rs, a_cs, stride_a; /* op(A)(i, p) = a[i * a_rs + p * a_cs] */
  const float *b;
  int64_t b_rs, b_cs, stride_b; /* op(B)(p, j) = b[p * b_rs + j * b_cs] */
  float *c;
  int64_t ldc, stride_c;
  int32_t batch;
  int accumulate_batches; /* stride_c == 0: sum all batches into one C */
};

__global__ void __launch_bounds__(THREADS) gemm_kernel(gemm_args g) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t i0 = (int64_t)blockIdx.y * BM, j0 = (int64_t)blockIdx.x * BN;
  const int z_first = g.accumulate_batches ? 0 : blockIdx.z;
  const int z_step = g.accumulate_batches ? 1 : gridDim.z;
  const bool a_rows_contiguous = g.a_cs == 1; /* A's K dimension is contiguous */
  const bool b_cols_contiguous = g.b_cs == 1; /* B's N dimension is contiguous */

  for (int z0 = z_first; z0 < g.batch; z0 += (g.accumulate_batches ? g.batch : z_step)) {
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
      for (int c = 0; c < 4; c++) acc[r][c] = 0.0f;
    const int z_end = g.accumulate_batches ? g.batch : z0 + 1;
    for (int z = z0; z < z_end; z++) {
      const float *a = g.a + (int64_t)z * g.stride_a;
      const float *b = g.b + (int64_t)z * g.stride_b;
      for (int64_t p0 = 0; p0 < g.k; p0 += BK) {
#pragma unroll
        for (int t = 0; t < (BM * BK) / THREADS; t++) {
          const int e = tid + t * THREADS;
          const int ii = a_rows_contiguous ? e / BK : e % BM;
          const int pp = a_rows_contiguous ? e % BK : e / BM;
          const int64_t i = i0 + ii, p = p0 + pp;
          As[pp][ii] = (i < g.m && p < g.k) ? a[i * g.a_rs + p * g.a_cs] : 0.0f;
        }
#pragma unroll
        for (int t = 0; t < (BN * BK) / THREADS; t++) {
          const int e = tid + t * THREADS;
          const int jj = b_cols_contiguous ? e % BN : e / BK;
          const int pp = b_cols_contiguous ? e / BN : e % BK;
          const int64_t j = j0 + jj, p = p0 + pp;
          Bs[pp][jj] = (j < g.n && p < g.k) ? b[p * g.b_rs + j * g.b_cs] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
          float af[4], bf[4];
#pragma unroll
          for (int r = 0; r < 4; r++) af[r] = As[kk][ty + 16 * r];
#pragma unroll
          for (int c = 0; c < 4; c++) bf[c] = Bs[kk][tx + 16 * c];
#pragma unroll
          for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[r][c] = fmaf(af[r], bf[c], acc[r][c]);
        }
        __syncthreads();
      }
    }
    float *cz = g.c + (g.accumulate_batches ? 0 : (int64_t)z0 * g.stride_c);
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int64_t i = i0 + ty + 16 * r;
      if (i >= g.m) continue;
#pragma unroll
      for (int c = 0; c < 4; c++) {
        const int64_t j = j0 + tx + 16 * c;
        if (j >= g.n) continue;
        float *dst = cz + i * g.ldc + j;
        const float v = g.alpha * acc[r][c];
        *dst = g.beta == 0.0f ? v : fmaf(g.beta, *dst, v);
      }
    }
  }
}

/* C = beta * C over [m, n] blocks of `count` matrices (beta == 0 writes zeros, C not read). */
__global__ void scale_kernel(int32_t m, int32_t n, float beta, float *c, int64_t ldc,
                             int64_t stride_c, int32_t count) {
  const int64_t per = (int64_t)m * n, total = per * count;
  SL_GRID_STRIDE(e, total) {
    const int64_t z = e / per, r = e - z * per;
    const int64_t i = r / n, j = r - i * n;
    float *dst = c + z * stride_c + i * ldc + j;
    *dst = beta == 0.0f ? 0.0f : beta * *dst;
  }
}

} /* namespace */

sl_status sl_gemm_launch(const char *fn, int32_t trans_a, int32_t trans_b, int32_t batch,
                         int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                         int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                         int64_t stride_b, float beta, float *c, int32_t ldc,
                         int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return SL_OK;
  const int accumulate = stride_c == 0 && batch > 1;
  if (k == 0 || alpha == 0.0f) {
    if (beta == 1.0f) return SL_OK;
    const int32_t count = accumulate ? 1 : batch;
    scale_kernel<<<sl_blocks((int64_t)m * n * count, 256), 256>>>(m, n, beta, c, ldc, stride_c,
                                                                 count);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of scale_kernel", err);
    return SL_OK;
  }
  gemm_args g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.beta = beta;
  g.a = a;
  g.a_rs = trans_a ? 1 : lda;
  g.a_cs = trans_a ? lda : 1;
  g.stride_a = stride_a;
  g.b = b;
  g.b_rs = trans_b ? 1 : ldb;
  g.b_cs = trans_b ? ldb : 1;
  g.stride_b = stride_b;
  g.c = c;
  g.ldc = ldc;
  g.stride_c = stride_c;
  g.batch = batch;
  g.accumulate_batches = accumulate;
  const unsigned gz = accumulate ? 1u : (unsigned)(batch < 65535 ? batch : 65535);
  dim3 grid((unsigned)((n + BN - 1) / BN), (unsigned)((m + BM - 1) / BM), gz);
  if (m > SL_GEMM_MAX_ROWS)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "m = %d exceeds the %lld rows one launch takes", m,
                   (long long)SL_GEMM_MAX_ROWS);
  gemm_kernel<<<grid, THREADS>>>(g);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of gemm_kernel", err);
  return SL_OK;
}

extern "C" {

SL_API sl_status sl_gemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                         float alpha, const float *a, int32_t lda, const float *b,
                         int32_t ldb, float beta, float *c, int32_t ldc) {
  SL_ENTER();
  SL_TRY(sl_validate_gemm(__func__, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
  if (m == 0 || n == 0) return SL_OK;
  SL_CUDA_READY();
  return sl_gemm_launch(__func__, trans_a, trans_b, 1, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta,
                        c, ldc, 0);
}

SL_API sl_status sl_gemm_batched(int32_t trans_a, int32_t trans_b, int32_t batch, int32_t m,
                                 int32_t n, int32_t k, float alpha, const float *a,
                                 int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                                 int64_t stride_b, float beta, float *c, int32_t ldc,
                                 int64_t stride_c) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_gemm_batched(__func__, trans_a, trans_b, batch, m, n, k, a, lda,
                                       stride_a, b, ldb, stride_b, c, ldc, stride_c));
  if (batch == 0 || m == 0 || n == 0) return SL_OK;
  SL_CUDA_READY();
  return sl_gemm_launch(__func__, trans_a, trans_b, batch, m, n, k, alpha, a, lda, stride_a, b,
                        ldb, stride_b, beta, c, ldc, stride_c);
}

} /* extern "C" */
