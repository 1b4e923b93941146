/*
 * dense.c — dense GEMM (sl_gemm, sl_gemm_batched): two kernels of their own for skinny shapes
 * (few outputs per row, or a short inner dimension), CBLAS when the build found one for the
 * rest, otherwise a blocked OpenMP kernel. All paths share the argument checks.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef SL_HAVE_CBLAS
#include <cblas.h>
#endif

#include "dense_internal.h"
#include "internal.h"
#include "scratch.h"
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

/* ------------------------------------------------------- skinny shapes ---- */

/*
 * Two shapes that BLAS packing serves badly and that sit on the hot path of a layer with few
 * outputs (a classifier head, the wide model's collapsed 10-class readout):
 *   - long dot products, C[m, n] = A[m, k] B[n, k]^T with n <= 16 and a long k (the forward
 *     x W^T): k is cut into fixed chunks, each (chunk, row of A) computes its n dot products with
 *     the chunk of B in cache, and the chunks' partial sums are added in chunk order;
 *   - a short inner dimension, C[m, n] = op(A)[m, k] B[k, n] with m <= 16 and k <= 64 (the
 *     weight gradient dy^T x of such a layer), or m <= 64 and k <= 16 (its input gradient
 *     dy W): each output row is built 64 columns at a time in registers, over the k rows of B
 *     in cache.
 * Both sum every output in an order fixed by the shape alone, so results do not depend on the
 * thread count. The wide model's readout (64 x 50 000 inputs, 10 outputs, 2 threads, caches
 * flushed, medians): x G^T 1.6-1.8 ms vs OpenBLAS 6.5-9.4 (2.0 at best: its own thread pool
 * competes with the OpenMP one), dy^T x 1.3-1.5 vs 1.6-1.9. dy G went to OpenBLAS until the
 * twenty-sixth session (1.0-1.2 ms alone); but after each call OpenBLAS's worker spins in
 * sched_yield for up to 2^28 cycles, taking CPU from the OpenMP kernels that follow (~30 ms of
 * CPU per wide-model step; a C harness of the three readout products: dy G 4.7-5.5 ms on
 * OpenBLAS vs 0.5-0.7 here, and the other two 10-25 % slower after it).
 */
enum { DOT_CHUNK = 2048, ROW_BLOCK = 64, COL_CHUNK = 1024 };

int sl_gemm_skinny_dot_fits(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k) {
  /* (the partial sums, chunks x m x n floats, stay under 16 MB) */
  return !trans_a && trans_b && n >= 1 && n <= 16 && m >= 1 && k >= 2 * DOT_CHUNK &&
         ((int64_t)k + DOT_CHUNK - 1) / DOT_CHUNK * m * n <= (1 << 22);
}

int sl_gemm_skinny_k_fits(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k) {
  (void)trans_a;
  return !trans_b && k >= 1 && k <= 64 && m >= 1 && (m <= 16 || (k <= 16 && m <= 64)) &&
         n >= 4 * ROW_BLOCK;
}

typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Dot products of row i of A with rows j0..j0+nj of B over [p0, p1) (nj <= 4), into out. */
static inline void dot_rows(const float *ar, const float *b, int64_t ldb, int64_t j0, int nj,
                            int64_t p0, int64_t p1, float *out) {
  v8f acc[4] = {{0}};
  const float *br[4];
  for (int jj = 0; jj < 4; jj++) br[jj] = b + (j0 + (jj < nj ? jj : 0)) * ldb;
  int64_t p = p0;
  for (; p + 8 <= p1; p += 8) {
    const v8f av = load8(ar + p);
    for (int jj = 0; jj < 4; jj++) acc[jj] += av * load8(br[jj] + p);
  }
  for (int jj = 0; jj < nj; jj++) {
    float tail = 0.0f;
    for (int64_t q = p; q < p1; q++) tail += ar[q] * br[jj][q];
    const v8f v = acc[jj];
    out[jj] = (((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))) + tail;
  }
}

/* C = alpha * A B^T + beta * C for sl_gemm_skinny_dot_fits shapes; 0 without scratch memory. */
static int gemm_skinny_dot(int32_t m, int32_t n, int32_t k, float alpha, const float *a,
                           int32_t lda, const float *b, int32_t ldb, float beta, float *c,
                           int32_t ldc) {
  const int64_t chunks = ((int64_t)k + DOT_CHUNK - 1) / DOT_CHUNK;
  float *part = sl_scratch_get(chunks * m * n * (int64_t)sizeof(float));
  if (part == NULL) return 0;
  const int threads = sl_threads();
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < chunks * m; t++) {
      const int64_t ch = t / m, i = t % m;
      const int64_t p0 = ch * DOT_CHUNK, p1 = p0 + DOT_CHUNK < k ? p0 + DOT_CHUNK : k;
      float *out = part + t * n;
      for (int64_t j0 = 0; j0 < n; j0 += 4)
        dot_rows(a + i * (int64_t)lda, b, ldb, j0, n - j0 < 4 ? (int)(n - j0) : 4, p0, p1,
                 out + j0);
    }
#pragma omp for schedule(static)
    for (int64_t e = 0; e < (int64_t)m * n; e++) {
      float sum = 0.0f;
      for (int64_t ch = 0; ch < chunks; ch++) sum += part[ch * m * n + e];
      float *ce = c + (e / n) * ldc + e % n;
      *ce = beta == 0.0f ? alpha * sum : alpha * sum + beta * *ce;
    }
  }
  sl_scratch_put(part);
  return 1;
}

/* C = alpha * op(A) B + beta * C for sl_gemm_skinny_k_fits shapes. */
static void gemm_skinny_k(int32_t trans_a, int32_t m, int32_t n, int32_t k, float alpha,
                          const float *a, int32_t lda, const float *b, int32_t ldb, float beta,
                          float *c, int32_t ldc) {
  const int64_t chunks = ((int64_t)n + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for num_threads(sl_threads()) schedule(static)
  for (int64_t cb = 0; cb < chunks * m; cb++) {
    const int64_t i = cb % m, j0 = (cb / m) * COL_CHUNK;
    const int64_t j1 = j0 + COL_CHUNK < n ? j0 + COL_CHUNK : n;
    float *ci = c + i * (int64_t)ldc;
    int64_t jb = j0;
    for (; jb + ROW_BLOCK <= j1; jb += ROW_BLOCK) {
      v8f acc[ROW_BLOCK / 8] = {{0}}; /* registers: the row block is a compile-time size */
      for (int64_t p = 0; p < k; p++) {
        const v8f av = (v8f){0} + (trans_a ? a[p * lda + i] : a[i * (int64_t)lda + p]);
        const float *bp = b + p * (int64_t)ldb + jb;
        for (int q = 0; q < ROW_BLOCK / 8; q++) acc[q] += av * load8(bp + 8 * q);
      }
      for (int q = 0; q < ROW_BLOCK / 8; q++) {
        v8f out = acc[q] * alpha;
        if (beta != 0.0f) out += load8(ci + jb + 8 * q) * beta;
        memcpy(ci + jb + 8 * q, &out, sizeof out);
      }
    }
    for (int64_t j = jb; j < j1; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; p++)
        acc += (trans_a ? a[p * lda + i] : a[i * (int64_t)lda + p]) * b[p * (int64_t)ldb + j];
      ci[j] = beta == 0.0f ? alpha * acc : alpha * acc + beta * ci[j];
    }
  }
}

int sl_gemm_skinny(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                   float alpha, const float *a, int32_t lda, const float *b, int32_t ldb,
                   float beta, float *c, int32_t ldc) {
  if (sl_gemm_skinny_dot_fits(trans_a, trans_b, m, n, k))
    return gemm_skinny_dot(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (sl_gemm_skinny_k_fits(trans_a, trans_b, m, n, k)) {
    gemm_skinny_k(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return 1;
  }
  return 0;
}

/* ----------------------------------------------------------- dispatch ---- */

/* Runs one validated GEMM: skinny shapes on the kernels above, the rest on CBLAS when
 * available, else on the portable kernel. */
static sl_status gemm_run(int32_t trans_a, int32_t trans_b, int32_t m, int32_t n, int32_t k,
                          float alpha, const float *a, int32_t lda, const float *b, int32_t ldb,
                          float beta, float *c, int32_t ldc) {
  if (m > 0 && n > 0 && k > 0 && alpha != 0.0f &&
      sl_gemm_skinny(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
    return SL_OK;
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
  /* A single row or column of C is a matrix-vector product: GEMV streams the matrix once,
   * where GEMM would pack it first (a 20000 x 20000 weight at batch 1: ~2x the time). */
  /* OpenBLAS's GEMV has let a NaN already in y through with beta 0 on some platforms and
   * versions (OpenMathLib/OpenBLAS issues 746 and 929; its scal zeroes only when asked to):
   * with beta == 0 the row or column is zeroed first, so C is never read. */
  if (beta == 0.0f && (m == 1 || n == 1)) scale_c(m, n, 0.0f, c, ldc);
  if (m == 1) { /* c[0, :] = alpha op(B)^T a + beta c, a's k entries 1 (or lda) apart */
    cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? n : k,
                trans_b ? k : n, alpha, b, ldb, a, trans_a ? lda : 1, beta, c, 1);
    return SL_OK;
  }
  if (n == 1) { /* c[:, 0] = alpha op(A) b + beta c, b's k entries 1 (or ldb) apart */
    cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_a ? k : m,
                trans_a ? m : k, alpha, a, lda, b, trans_b ? 1 : ldb, beta, c, ldc);
    return SL_OK;
  }
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
