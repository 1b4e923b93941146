/*
 * dense.c — dense GEMM (sl_gemm, sl_gemm_batched): CBLAS when the build found one, otherwise a
 * blocked OpenMP kernel. Both paths share the argument checks, so they accept the same inputs.
 */
#include <stdatomic.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef SL_HAVE_CBLAS
#include <cblas.h>
#endif

#include "dense_internal.h"
#include "internal.h"
#include "validate.h"

/* C = beta * C over an [m, n] block (beta == 0 writes zeros without reading C). */
static void scale_block(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < m; i++) {
    float *row = c + i * ldc;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < n; j++) row[j] = 0.0f;
    } else {
      for (int64_t j = 0; j < n; j++) row[j] *= beta;
    }
  }
}

static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
  if (beta == 1.0f || m == 0 || n == 0) return;
#pragma omp parallel for num_threads(sl_threads()) if (m * n > 262144) schedule(static)
  for (int64_t i = 0; i < m; i++) scale_block(1, n, beta, c + i * ldc, ldc);
}

/* ------------------------------------------------------ portable kernel ---- */

/*
 * Blocking (Goto style): each OpenMP task owns an MC x NC tile of C and walks K in KC steps.
 * For each step it packs the KC x NC panel of op(B) into NR-wide strips (contiguous, zero
 * padded, so transposed and plain B look alike), then MR x NR register blocks of C accumulate
 * over the strip while A's elements are broadcast.
 */
enum { MR = 4, NR = 16, MC = 64, NC = 256, KC = 256 };

/*
 * c[MR x NR] += alpha * A[MR x kc] @ Bs[kc x NR], where A(r, p) = a[r * a_rs + p * a_cs] and
 * Bs is a packed strip (row p at bs + p * NR). Fixed sizes keep acc in vector registers.
 */
static inline void micro_full(int64_t kc, const float *restrict a, int64_t a_rs, int64_t a_cs,
                              const float *restrict bs, float alpha, float *restrict c,
                              int64_t ldc) {
  float acc[MR][NR] = {{0}};
  for (int64_t p = 0; p < kc; p++) {
    const float *restrict bp = bs + p * NR;
    for (int r = 0; r < MR; r++) {
      const float av = a[r * a_rs + p * a_cs];
#pragma omp simd
      for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
    }
  }
  for (int r = 0; r < MR; r++) {
#pragma omp simd
    for (int j = 0; j < NR; j++) c[r * ldc + j] += alpha * acc[r][j];
  }
}

/* The same for a partial block at the edge of C (mr <= MR, nr <= NR). */
static void micro_edge(int mr, int nr, int64_t kc, const float *restrict a, int64_t a_rs,
                       int64_t a_cs, const float *restrict bs, float alpha, float *restrict c,
                       int64_t ldc) {
  float acc[MR][NR] = {{0}};
  for (int64_t p = 0; p < kc; p++) {
    const float *restrict bp = bs + p * NR;
    for (int r = 0; r < mr; r++) {
      const float av = a[r * a_rs + p * a_cs];
      for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
    }
  }
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < nr; j++) c[r * ldc + j] += alpha * acc[r][j];
}

/*
 * Packs op(B)[pc .. pc+kc, j0 .. j1) into strips of NR columns: strip s holds rows p at
 * dst + s * kc * NR + p * NR. op(B)(p, j) = b[p * b_rs + j * b_cs].
 */
static void pack_b(int64_t kc, int64_t j0, int64_t j1, int64_t pc, const float *b, int64_t b_rs,
                   int64_t b_cs, float *dst) {
  for (int64_t j = j0; j < j1; j += NR) {
    const int64_t nr = j1 - j < NR ? j1 - j : NR;
    float *strip = dst + (j - j0) * kc;
    if (b_cs == 1) {
      for (int64_t p = 0; p < kc; p++) {
        const float *src = b + (pc + p) * b_rs + j;
        for (int64_t q = 0; q < nr; q++) strip[p * NR + q] = src[q];
        for (int64_t q = nr; q < NR; q++) strip[p * NR + q] = 0.0f;
      }
    } else { /* transposed B: walk each source row (contiguous in p) */
      for (int64_t q = 0; q < NR; q++) {
        if (q < nr) {
          const float *src = b + pc * b_rs + (j + q) * b_cs;
          for (int64_t p = 0; p < kc; p++) strip[p * NR + q] = src[p * b_rs];
        } else {
          for (int64_t p = 0; p < kc; p++) strip[p * NR + q] = 0.0f;
        }
      }
    }
  }
}

sl_status sl_gemm_portable(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                           float alpha, const float *a, int32_t lda, const float *b,
                           int32_t ldb, float beta, float *c, int32_t ldc) {
  if (m == 0 || n == 0) return SL_OK;
  if (k == 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return SL_OK;
  }
  /* op(A)(i, p) = a[i * a_rs + p * a_cs]; op(B)(p, j) = b[p * b_rs + j * b_cs]. */
  const int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
  const int64_t b_rs = trans_b ? 1 : ldb, b_cs = trans_b ? ldb : 1;
  const int64_t m_tiles = (m + MC - 1) / MC, n_tiles = (n + NC - 1) / NC;
  const double flops = 2.0 * (double)m * (double)n * (double)k;
  const int nthreads = flops > 4e6 ? (int)sl_threads() : 1;
  /* One packed panel per thread (KC * NC floats = 256 KiB), off the stack. */
  float *packs = malloc((size_t)nthreads * KC * NC * sizeof(float));
  if (packs == NULL)
    return sl_fail(SL_E_OUT_OF_MEMORY, "sl_gemm", "could not allocate %d packing buffers",
                   nthreads);
#pragma omp parallel num_threads(nthreads)
  {
#ifdef _OPENMP
    float *bpack = packs + (size_t)omp_get_thread_num() * KC * NC;
#else
    float *bpack = packs;
#endif
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t ti = 0; ti < m_tiles; ti++) {
      for (int64_t tj = 0; tj < n_tiles; tj++) {
        const int64_t i0 = ti * MC, i1 = i0 + MC < m ? i0 + MC : m;
        const int64_t j0 = tj * NC, j1 = j0 + NC < n ? j0 + NC : n;
        scale_block(i1 - i0, j1 - j0, beta, c + i0 * ldc + j0, ldc);
        for (int64_t pc = 0; pc < k; pc += KC) {
          const int64_t kc = pc + KC < k ? KC : k - pc;
          pack_b(kc, j0, j1, pc, b, b_rs, b_cs, bpack);
          for (int64_t i = i0; i < i1; i += MR) {
            const int mr = (int)(i1 - i < MR ? i1 - i : MR);
            const float *ap = a + i * a_rs + pc * a_cs;
            for (int64_t j = j0; j < j1; j += NR) {
              const int nr = (int)(j1 - j < NR ? j1 - j : NR);
              const float *bs = bpack + (j - j0) * kc;
              float *cp = c + i * ldc + j;
              if (mr == MR && nr == NR)
                micro_full(kc, ap, a_rs, a_cs, bs, alpha, cp, ldc);
              else
                micro_edge(mr, nr, kc, ap, a_rs, a_cs, bs, alpha, cp, ldc);
            }
          }
        }
      }
    }
  }
  free(packs);
  return SL_OK;
}

/* ----------------------------------------------------------- dispatch ---- */

/* Runs one validated GEMM on CBLAS when available, else on the portable kernel. */
static sl_status gemm_run(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                          float alpha, const float *a, int32_t lda, const float *b, int32_t ldb,
                          float beta, float *c, int32_t ldc) {
#ifdef SL_HAVE_CBLAS
  if (m == 0 || n == 0) return SL_OK;
  if (k == 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return SL_OK;
  }
#ifdef OPENBLAS_VERSION
  /* OpenBLAS keeps its own thread pool: keep it at the library's thread count. */
  static atomic_int blas_threads = 0;
  const int want = (int)sl_threads();
  if (atomic_exchange(&blas_threads, want) != want) openblas_set_num_threads(want);
#endif
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
              ldc);
  return SL_OK;
#else
  return sl_gemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

sl_status sl_gemm(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                  float alpha, const float *a, int32_t lda, const float *b, int32_t ldb,
                  float beta, float *c, int32_t ldc) {
  SL_ENTER();
  sl_status st = sl_validate_gemm(__func__, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  if (st != SL_OK) return st;
  return gemm_run(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

sl_status sl_gemm_batched(int32_t trans_a, int32_t trans_b, int32_t batch, int32_t m,
                          int32_t n, int32_t k, float alpha, const float *a, int32_t lda,
                          int64_t stride_a, const float *b, int32_t ldb, int64_t stride_b,
                          float beta, float *c, int32_t ldc, int64_t stride_c) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_gemm_batched(__func__, trans_a, trans_b, batch, m, n, k, a, lda,
                                       stride_a, b, ldb, stride_b, c, ldc, stride_c));
  if (batch == 0 || m == 0 || n == 0) return SL_OK;
  for (int32_t i = 0; i < batch; i++) {
    const float beta_i = (stride_c == 0 && i > 0) ? 1.0f : beta;
    /* a and b may be null when k == 0: never offset a null pointer. */
    const float *a_i = a != NULL ? a + (int64_t)i * stride_a : NULL;
    const float *b_i = b != NULL ? b + (int64_t)i * stride_b : NULL;
    sl_status st = gemm_run(trans_a, trans_b, m, n, k, alpha, a_i, lda, b_i, ldb, beta_i,
                            c + (int64_t)i * stride_c, ldc);
    if (st != SL_OK) return st;
  }
  return SL_OK;
}
