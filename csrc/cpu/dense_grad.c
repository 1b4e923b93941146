/*
 * dense_grad.c — rows of RigL's dense gradient G = dY^T X in a fixed summation order.
 *
 * Every entry is one chain of fused multiply-adds over the batch in ascending order, starting
 * from +0: G[r, i] = fma(dy[B-1, r] x[B-1, i], ... fma(dy[0, r] x[0, i], +0)). The tiling, the
 * thread count and the row chunk (RigL's maxSize) change which entries a thread computes, never
 * the operations of an entry, so RigL's growth is the same whatever the thread count or maxSize.
 * (A CBLAS GEMM splits and orders its sums by thread count and shape.)
 *
 * Layout: threads take panels of PANEL columns of x, copied batch-major into a small buffer
 * (PANEL x batch floats, L1/L2-resident); the chunk's dY columns are copied once into rows of
 * `batch` contiguous floats. A micro-tile is ROWS rows x PANEL columns in vector registers: 12
 * accumulators, enough independent FMAs to hide their latency. With AVX-512 (6 x 32) one 100k
 * RigL chunk ([1000 x 64]^T [64 x 100000]) took 45-48 ms here against 84-95 ms for OpenBLAS's
 * GEMM (bench/RESULTS.md, "Determinism").
 */
#include <math.h>
#include <string.h>

#ifdef __FMA__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "dense_internal.h"
#include "internal.h"
#include "scratch.h"

#ifdef __AVX512F__
enum { ROWS = 6, PANEL = 32 };
#else
enum { ROWS = 4, PANEL = 24 };
#endif

/* g[r * ldg + j] for ROWS rows and PANEL columns: dyt rows of `batch` floats, xp PANEL-wide
 * rows of the batch. */
static void tile_full(int32_t batch, const float *dyt, const float *xp, float *g, int64_t ldg) {
#if defined(__AVX512F__)
  __m512 acc[ROWS][2];
  for (int r = 0; r < ROWS; r++)
    for (int q = 0; q < 2; q++) acc[r][q] = _mm512_setzero_ps();
  for (int32_t b = 0; b < batch; b++) {
    const __m512 x0 = _mm512_loadu_ps(xp + (int64_t)b * PANEL);
    const __m512 x1 = _mm512_loadu_ps(xp + (int64_t)b * PANEL + 16);
    for (int r = 0; r < ROWS; r++) {
      const __m512 d = _mm512_set1_ps(dyt[(int64_t)r * batch + b]);
      acc[r][0] = _mm512_fmadd_ps(d, x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(d, x1, acc[r][1]);
    }
  }
  for (int r = 0; r < ROWS; r++)
    for (int q = 0; q < 2; q++) _mm512_storeu_ps(g + r * ldg + 16 * q, acc[r][q]);
#elif defined(__FMA__)
  __m256 acc[ROWS][3];
  for (int r = 0; r < ROWS; r++)
    for (int q = 0; q < 3; q++) acc[r][q] = _mm256_setzero_ps();
  for (int32_t b = 0; b < batch; b++) {
    const __m256 x0 = _mm256_loadu_ps(xp + (int64_t)b * PANEL);
    const __m256 x1 = _mm256_loadu_ps(xp + (int64_t)b * PANEL + 8);
    const __m256 x2 = _mm256_loadu_ps(xp + (int64_t)b * PANEL + 16);
    for (int r = 0; r < ROWS; r++) {
      const __m256 d = _mm256_broadcast_ss(dyt + (int64_t)r * batch + b);
      acc[r][0] = _mm256_fmadd_ps(d, x0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(d, x1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(d, x2, acc[r][2]);
    }
  }
  for (int r = 0; r < ROWS; r++)
    for (int q = 0; q < 3; q++) _mm256_storeu_ps(g + r * ldg + 8 * q, acc[r][q]);
#else
  float acc[ROWS][PANEL] = {{0}};
  for (int32_t b = 0; b < batch; b++)
    for (int r = 0; r < ROWS; r++)
      for (int j = 0; j < PANEL; j++)
        acc[r][j] = fmaf(dyt[(int64_t)r * batch + b], xp[(int64_t)b * PANEL + j], acc[r][j]);
  for (int r = 0; r < ROWS; r++) memcpy(g + r * ldg, acc[r], sizeof acc[r]);
#endif
}

/* The same for the last rows (< ROWS) or columns (< PANEL) of a chunk: the same chain per entry. */
static void tile_edge(int32_t batch, int rows, int cols, const float *dyt, const float *xp,
                      float *g, int64_t ldg) {
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++) {
      float acc = 0.0f;
      for (int32_t b = 0; b < batch; b++)
        acc = fmaf(dyt[(int64_t)r * batch + b], xp[(int64_t)b * PANEL + j], acc);
      g[r * ldg + j] = acc;
    }
}

sl_status sl_dense_grad_rows(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                             const float *x, const float *dy, int64_t r0, int64_t rows,
                             float *g) {
  if (rows == 0 || n_in == 0) return SL_OK;
  if (batch == 0) {
    memset(g, 0, (size_t)rows * (size_t)n_in * sizeof *g);
    return SL_OK;
  }
  const int64_t panels = ((int64_t)n_in + PANEL - 1) / PANEL;
  const int threads = panels > 1 && rows * (int64_t)n_in >= 65536 ? sl_threads() : 1;
  const int64_t panel_floats = (int64_t)batch * PANEL;
  /* dY's columns r0 .. r0 + rows as rows of the batch (each broadcast then reads in order),
   * and one x panel per thread. */
  float *scratch = sl_scratch_get((rows * (int64_t)batch + threads * panel_floats) *
                                  (int64_t)sizeof(float));
  if (scratch == NULL) return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch");
  float *dyt = scratch, *panels_buf = scratch + rows * (int64_t)batch;
  for (int32_t b = 0; b < batch; b++) {
    const float *src = dy + (int64_t)b * n_out + r0;
    for (int64_t r = 0; r < rows; r++) dyt[r * batch + b] = src[r];
  }
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#ifdef _OPENMP
    float *xp = panels_buf + omp_get_thread_num() * panel_floats;
#else
    float *xp = panels_buf;
#endif
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; p++) {
      const int64_t j0 = p * PANEL;
      const int cols = n_in - j0 < PANEL ? (int)(n_in - j0) : PANEL;
      for (int32_t b = 0; b < batch; b++) {
        float *row = xp + (int64_t)b * PANEL;
        memcpy(row, x + (int64_t)b * n_in + j0, (size_t)cols * sizeof(float));
        if (cols < PANEL) memset(row + cols, 0, (size_t)(PANEL - cols) * sizeof(float));
      }
      int64_t r = 0;
      if (cols == PANEL)
        for (; r + ROWS <= rows; r += ROWS)
          tile_full(batch, dyt + r * batch, xp, g + r * n_in + j0, n_in);
      for (; r < rows; r += ROWS) {
        const int nr = rows - r < ROWS ? (int)(rows - r) : ROWS;
        tile_edge(batch, nr, cols, dyt + r * batch, xp, g + r * n_in + j0, n_in);
      }
    }
  }
  sl_scratch_put(scratch);
  return SL_OK;
}
