/*
 * dense_grad.c — rows of RigL's dense gradient G = dY^T X in a fixed summation order.
 *
 * Every entry is one chain of fused multiply-adds over the batch in ascending order, starting
 * from +0: G[r, i] = fma(dy[B-1, r] x[B-1, i], ... fma(dy[0, r] x[0, i], +0)). The tiling, the
 * thread count and the row chunk (RigL's maxSize) change which entries a thread computes, never
 * the operations of an entry, so RigL's growth is the same whatever the thread count or maxSize.
 * (A CBLAS GEMM splits and orders its sums by thread count and shape.)
 *
 * Layout: threads take panels of PANEL columns of x, batch-major in a small buffer (PANEL x
 * batch floats, L1/L2-resident; packed once per call for all row chunks by
 * sl_dense_grad_pack_x, else copied per chunk); the chunk's dY columns are copied once into rows
 * of `batch` contiguous floats. A micro-tile is ROWS rows x PANEL columns in vector registers: 12
 * accumulators, enough independent FMAs to hide their latency; the last rows and columns of a
 * chunk run the same tile with fewer rows or columns kept. With AVX-512 (6 x 32) one 100k RigL
 * chunk ([1000 x 64]^T [64 x 100000]) took 45-48 ms here against 84-95 ms for OpenBLAS's GEMM
 * (bench/RESULTS.md, "Determinism").
 *
 * Once RigL's running top-k is full, few entries of a chunk can still enter it:
 * sl_dense_grad_rows_above filters the tiles in registers instead of storing them, so the
 * 400 MB chunk of a 100k layer is neither written nor read back by a key pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __FMA__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "dense_internal.h"
#include "internal.h"
#include "radix_sort.h"
#include "scratch.h"

#ifdef __AVX512F__
enum { ROWS = 6, PANEL = 32 };
#else
enum { ROWS = 4, PANEL = 24 };
#endif

/*
 * Where a tile's entries go when only those at or above a floor are wanted (RigL's running
 * top-k is full, sl_dense_grad_rows_above): instead of being stored, an entry whose magnitude
 * bits (bits & 0x7FFFFFFF, a NaN included) are >= floor_bits is appended to the thread's share
 * of `out` as (position in the chunk << 32) | (magnitude bits + 1), the key sl_dense_grad_topk
 * ranks by. `count` is the thread's number of survivors, which may pass `cap` (the share is
 * then full and the call reports an overflow).
 */
typedef struct {
  int32_t floor_bits;
  uint64_t *out;
  int64_t cap;
  int64_t count;
} tile_filter;

/* Appends the survivors among n values of g whose first position in the chunk is pos. */
static void filter_values(tile_filter *f, const float *g, int n, int64_t pos) {
  for (int j = 0; j < n; j++) {
    uint32_t bits;
    memcpy(&bits, &g[j], sizeof bits);
    bits &= 0x7FFFFFFFu;
    if ((int32_t)bits < f->floor_bits) continue;
    if (f->count < f->cap) f->out[f->count] = ((uint64_t)(pos + j) << 32) | (bits + 1);
    f->count++;
  }
}

/*
 * Entries r < nr, j < cols of a finished tile (acc: nr rows of PANEL floats): stored to
 * g[r * ldg + j], or with a filter appended where they beat its floor (positions from pos).
 */
static void tile_out(const float *acc, int nr, int cols, float *g, int64_t ldg, tile_filter *f,
                     int64_t pos) {
  for (int r = 0; r < nr; r++) {
    if (f == NULL) memcpy(g + r * ldg, acc + r * PANEL, (size_t)cols * sizeof(float));
    else filter_values(f, acc + r * PANEL, cols, pos + r * ldg);
  }
}

/*
 * g[r * ldg + j] for NR (<= ROWS, a compile-time constant) rows and the first cols of PANEL
 * columns: dyt rows of `batch` floats, xp PANEL-wide rows of the batch (zero past the last
 * column). With a filter the entries are not stored but filtered (positions from pos, rows ldg
 * apart). Every entry is the same chain of fused multiply-adds whatever NR and cols.
 */
static inline __attribute__((always_inline)) void tile_rows(const int NR, int32_t batch,
                                                            const float *dyt, const float *xp,
                                                            int cols, float *g, int64_t ldg,
                                                            tile_filter *f, int64_t pos) {
#if defined(__AVX512F__)
  __m512 acc[ROWS][2];
  for (int r = 0; r < NR; r++)
    for (int q = 0; q < 2; q++) acc[r][q] = _mm512_setzero_ps();
  for (int32_t b = 0; b < batch; b++) {
    const __m512 x0 = _mm512_loadu_ps(xp + (int64_t)b * PANEL);
    const __m512 x1 = _mm512_loadu_ps(xp + (int64_t)b * PANEL + 16);
    for (int r = 0; r < NR; r++) {
      const __m512 d = _mm512_set1_ps(dyt[(int64_t)r * batch + b]);
      acc[r][0] = _mm512_fmadd_ps(d, x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(d, x1, acc[r][1]);
    }
  }
  if (cols == PANEL && f == NULL) {
    for (int r = 0; r < NR; r++)
      for (int q = 0; q < 2; q++) _mm512_storeu_ps(g + r * ldg + 16 * q, acc[r][q]);
    return;
  }
  if (cols == PANEL) {
    /* Most tiles hold no survivor: one compare per vector, the rare hits scalar. */
    const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
    const __m512i below = _mm512_set1_epi32(f->floor_bits - 1);
    for (int r = 0; r < NR; r++)
      for (int q = 0; q < 2; q++) {
        const __m512i bits = _mm512_and_si512(_mm512_castps_si512(acc[r][q]), mag);
        if (_mm512_cmpgt_epi32_mask(bits, below) == 0) continue;
        float v[16];
        _mm512_storeu_ps(v, acc[r][q]);
        filter_values(f, v, 16, pos + r * ldg + 16 * q);
      }
    return;
  }
  float out[ROWS * PANEL];
  for (int r = 0; r < NR; r++)
    for (int q = 0; q < 2; q++) _mm512_storeu_ps(out + r * PANEL + 16 * q, acc[r][q]);
  tile_out(out, NR, cols, g, ldg, f, pos);
#elif defined(__FMA__)
  __m256 acc[ROWS][3];
  for (int r = 0; r < NR; r++)
    for (int q = 0; q < 3; q++) acc[r][q] = _mm256_setzero_ps();
  for (int32_t b = 0; b < batch; b++) {
    const __m256 x0 = _mm256_loadu_ps(xp + (int64_t)b * PANEL);
    const __m256 x1 = _mm256_loadu_ps(xp + (int64_t)b * PANEL + 8);
    const __m256 x2 = _mm256_loadu_ps(xp + (int64_t)b * PANEL + 16);
    for (int r = 0; r < NR; r++) {
      const __m256 d = _mm256_broadcast_ss(dyt + (int64_t)r * batch + b);
      acc[r][0] = _mm256_fmadd_ps(d, x0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(d, x1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(d, x2, acc[r][2]);
    }
  }
  if (cols == PANEL && f == NULL) {
    for (int r = 0; r < NR; r++)
      for (int q = 0; q < 3; q++) _mm256_storeu_ps(g + r * ldg + 8 * q, acc[r][q]);
    return;
  }
  if (cols == PANEL) {
    const __m256i mag = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i below = _mm256_set1_epi32(f->floor_bits - 1);
    for (int r = 0; r < NR; r++)
      for (int q = 0; q < 3; q++) {
        const __m256i bits = _mm256_and_si256(_mm256_castps_si256(acc[r][q]), mag);
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(bits, below)) == 0) continue;
        float v[8];
        _mm256_storeu_ps(v, acc[r][q]);
        filter_values(f, v, 8, pos + r * ldg + 8 * q);
      }
    return;
  }
  float out[ROWS * PANEL];
  for (int r = 0; r < NR; r++)
    for (int q = 0; q < 3; q++) _mm256_storeu_ps(out + r * PANEL + 8 * q, acc[r][q]);
  tile_out(out, NR, cols, g, ldg, f, pos);
#else
  float acc[ROWS * PANEL] = {0};
  for (int32_t b = 0; b < batch; b++)
    for (int r = 0; r < NR; r++)
      for (int j = 0; j < PANEL; j++)
        acc[r * PANEL + j] =
            fmaf(dyt[(int64_t)r * batch + b], xp[(int64_t)b * PANEL + j], acc[r * PANEL + j]);
  tile_out(acc, NR, cols, g, ldg, f, pos);
#endif
}

/* tile_rows with nr (1 .. ROWS) rows, each count its own compiled tile. */
static void tile(int nr, int32_t batch, const float *dyt, const float *xp, int cols, float *g,
                 int64_t ldg, tile_filter *f, int64_t pos) {
  switch (nr) {
    case 1: tile_rows(1, batch, dyt, xp, cols, g, ldg, f, pos); break;
    case 2: tile_rows(2, batch, dyt, xp, cols, g, ldg, f, pos); break;
    case 3: tile_rows(3, batch, dyt, xp, cols, g, ldg, f, pos); break;
    case 4: tile_rows(4, batch, dyt, xp, cols, g, ldg, f, pos); break;
#ifdef __AVX512F__
    case 5: tile_rows(5, batch, dyt, xp, cols, g, ldg, f, pos); break;
    default: tile_rows(6, batch, dyt, xp, cols, g, ldg, f, pos); break;
#else
    default: break;
#endif
  }
}

/* Panel p of x (columns p * PANEL ..) as the tiles read it: batch rows of PANEL floats, the
 * columns past n_in zero. */
static void pack_panel(int32_t batch, int32_t n_in, const float *x, int64_t p, float *xp) {
  const int64_t j0 = p * PANEL;
  const int cols = n_in - j0 < PANEL ? (int)(n_in - j0) : PANEL;
  for (int32_t b = 0; b < batch; b++) {
    float *row = xp + (int64_t)b * PANEL;
    memcpy(row, x + (int64_t)b * n_in + j0, (size_t)cols * sizeof(float));
    if (cols < PANEL) memset(row + cols, 0, (size_t)(PANEL - cols) * sizeof(float));
  }
}

float *sl_dense_grad_pack_x(int32_t batch, int32_t n_in, const float *x) {
  const int64_t panels = ((int64_t)n_in + PANEL - 1) / PANEL;
  const int64_t panel_floats = (int64_t)batch * PANEL;
  float *packed = sl_scratch_get((panels * panel_floats > 0 ? panels * panel_floats : 1) *
                                 (int64_t)sizeof(float));
  if (packed == NULL) return NULL;
#pragma omp parallel for num_threads(sl_threads()) if (panels * panel_floats >= 65536) \
    schedule(static)
  for (int64_t p = 0; p < panels; p++) pack_panel(batch, n_in, x, p, packed + p * panel_floats);
  return packed;
}

/* sl_dense_grad_rows (filters NULL: g written) or sl_dense_grad_rows_above (g unused: each
 * thread t filters its tiles into filters[t], which the caller set up); xpack: x's panels
 * from sl_dense_grad_pack_x, or NULL to copy each panel as it comes. */
static sl_status dense_grad_rows(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                 const float *x, const float *xpack, const float *dy, int64_t r0,
                                 int64_t rows, float *g, int threads, tile_filter *filters) {
  const int64_t panels = ((int64_t)n_in + PANEL - 1) / PANEL;
  const int64_t panel_floats = (int64_t)batch * PANEL;
  /* dY's columns r0 .. r0 + rows as rows of the batch (each broadcast then reads in order),
   * and one x panel per thread. */
  float *scratch = sl_scratch_get(
      (rows * (int64_t)batch + (xpack == NULL ? threads * panel_floats : 0)) *
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
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    float *own = panels_buf + t * panel_floats;
    tile_filter *f = filters == NULL ? NULL : &filters[t];
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; p++) {
      const int64_t j0 = p * PANEL;
      const int cols = n_in - j0 < PANEL ? (int)(n_in - j0) : PANEL;
      const float *xp = xpack != NULL ? xpack + p * panel_floats : own;
      if (xpack == NULL) pack_panel(batch, n_in, x, p, own);
      /* (g + ... only where g is written: with filters g is NULL.) */
      for (int64_t r = 0; r < rows; r += ROWS) {
        const int nr = rows - r < ROWS ? (int)(rows - r) : ROWS;
        tile(nr, batch, dyt + r * batch, xp, cols, f ? NULL : g + r * n_in + j0, n_in, f,
             r * n_in + j0);
      }
    }
  }
  sl_scratch_put(scratch);
  return SL_OK;
}

/* How many threads compute a chunk of rows x n_in entries. */
static int grad_threads(int64_t rows, int32_t n_in) {
  const int64_t panels = ((int64_t)n_in + PANEL - 1) / PANEL;
  return panels > 1 && rows * (int64_t)n_in >= 65536 ? sl_threads() : 1;
}

sl_status sl_dense_grad_rows(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                             const float *x, const float *xpack, const float *dy, int64_t r0,
                             int64_t rows, float *g) {
  if (rows == 0 || n_in == 0) return SL_OK;
  if (batch == 0) {
    memset(g, 0, (size_t)rows * (size_t)n_in * sizeof *g);
    return SL_OK;
  }
  return dense_grad_rows(fn, batch, n_in, n_out, x, xpack, dy, r0, rows, g,
                         grad_threads(rows, n_in), NULL);
}

int64_t sl_dense_grad_rows_above(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                 const float *x, const float *xpack, const float *dy, int64_t r0,
                                 int64_t rows,
                                 uint32_t floor_bits, uint64_t *out, int64_t cap,
                                 sl_status *status) {
  *status = SL_OK;
  if (rows == 0 || n_in == 0 || batch == 0) return 0; /* (batch 0: every entry is +0) */
  if (floor_bits == 0 || floor_bits > 0x7F800000u) return -1; /* not a finite floor */
  const int threads = grad_threads(rows, n_in);
  tile_filter *filters = malloc((size_t)threads * sizeof *filters);
  if (filters == NULL) {
    *status = sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch");
    return -1;
  }
  const int64_t share = cap / threads;
  for (int t = 0; t < threads; t++)
    filters[t] = (tile_filter){(int32_t)floor_bits, out + share * t, share, 0};
  *status =
      dense_grad_rows(fn, batch, n_in, n_out, x, xpack, dy, r0, rows, NULL, threads, filters);
  int64_t n = *status == SL_OK ? 0 : -1;
  for (int t = 0; t < threads && n >= 0; t++) {
    if (filters[t].count > share) {
      n = -1;
      break;
    }
    memmove(out + n, filters[t].out, (size_t)filters[t].count * sizeof *out);
    n += filters[t].count;
  }
  free(filters);
  if (n < 0) return -1;
  /* Position order, whatever the threads' split of the columns. */
  sl_sort_u64(out, n);
  return n;
}
