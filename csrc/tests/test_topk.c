/*
 * test_topk.c — the dynamic-sparsity kernels (sl_topk, sl_dense_grad_topk, sl_sample_absent,
 * sl_csr_drop_grow) against naive references, plus their argument checks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselinear.h"

#include "expect.h"

#define EXPECT_STATUS(call, code)                                                \
  do {                                                                           \
    sl_status st_ = (call);                                                      \
    EXPECT(st_ == (code), "%s returned %d (expected %d): %s", #call, st_, (code), \
           sl_last_error());                                                     \
  } while (0)

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}
static int rnd_below(int n) { return (int)(rnd() % (uint32_t)n); }

/* ------------------------------------------------------------------ sl_topk ---- */

static double key_of(float s, int flags) {
  double v = (flags & SL_TOPK_ABS) ? fabs((double)s) : (double)s;
  return (flags & SL_TOPK_SMALLEST) ? -v : v;
}

static const float *sort_scores;
static int sort_flags;
static int cmp_rank(const void *a, const void *b) {
  const int i = *(const int *)a, j = *(const int *)b;
  const double ki = key_of(sort_scores[i], sort_flags), kj = key_of(sort_scores[j], sort_flags);
  if (ki != kj) return ki > kj ? -1 : 1;
  return (i > j) - (i < j);
}
static int cmp_int(const void *a, const void *b) {
  const int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* order[] = all indices, best first (ties: lower index first). */
static void naive_rank(int n, const float *s, int flags, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  sort_scores = s;
  sort_flags = flags;
  qsort(order, (size_t)n, sizeof *order, cmp_rank);
}

static void test_topk(void) {
  const int sizes[] = {1, 2, 7, 100, 1000, 70000, 200001};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    const int n = sizes[si];
    float *s = malloc((size_t)n * sizeof *s);
    int *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    int *order = malloc((size_t)n * sizeof *order);
    for (int trial = 0; trial < 3; trial++) {
      for (int i = 0; i < n; i++) {
        if (trial == 0) s[i] = (float)((int)(rnd() % 2001) - 1000) / 7.0f; /* ties */
        else if (trial == 1) s[i] = ((float)rnd() / 4294967296.0f - 0.5f) * 1e-3f;
        else s[i] = (float)(rnd_below(5) - 2); /* many ties, and -0 / +0 */
        if (trial == 2 && s[i] == 0.0f && (rnd() & 1)) s[i] = -0.0f;
      }
      if (n > 3) {
        s[1] = INFINITY;
        s[2] = -INFINITY;
      }
      for (int flags = 0; flags < 4; flags++) {
        naive_rank(n, s, flags, order);
        const int ks[] = {0, 1, n / 3, n / 2, n - 1, n};
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
          const int k = ks[ki];
          if (k < 0) continue;
          EXPECT_STATUS(sl_topk(n, s, k, flags, got), SL_OK);
          memcpy(want, order, (size_t)k * sizeof *want);
          qsort(want, (size_t)k, sizeof *want, cmp_int);
          int same = memcmp(got, want, (size_t)k * sizeof *got) == 0;
          EXPECT(same, "sl_topk n=%d k=%d flags=%d trial=%d differs from the naive reference", n,
                 k, flags, trial);
        }
      }
    }
    free(s);
    free(got);
    free(want);
    free(order);
  }
  float bad[4] = {1, 2, NAN, 3};
  int out[4] = {-7, -7, -7, -7};
  EXPECT_STATUS(sl_topk(4, bad, 2, 0, out), SL_E_INVALID_ARGUMENT);
  EXPECT(strstr(sl_last_error(), "scores[2] is NaN") != NULL, "message: %s", sl_last_error());
  EXPECT(out[0] == -7, "sl_topk wrote output on a rejected call");
  EXPECT_STATUS(sl_topk(4, bad, 5, 0, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_topk(4, bad, 1, 4, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_topk(4, NULL, 1, 0, out), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_topk(-1, bad, 0, 0, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_topk(0, NULL, 0, 0, NULL), SL_OK);
}

/* ------------------------------------------------------- sl_dense_grad_topk ---- */

/* Random CSR pattern, each position present with probability p_percent / 100. */
static int64_t random_pattern(int rows, int cols, int p_percent, int32_t *row_ptr,
                              int32_t *col_idx) {
  int64_t nnz = 0;
  row_ptr[0] = 0;
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++)
      if (rnd_below(100) < p_percent) col_idx[nnz++] = c;
    row_ptr[r + 1] = (int32_t)nnz;
  }
  return nnz;
}

static void test_dense_grad_topk(int batch, int n_in, int n_out, int p_percent) {
  const int64_t total = (int64_t)n_in * n_out;
  float *x = malloc((size_t)batch * n_in * sizeof *x);
  float *dy = malloc((size_t)batch * n_out * sizeof *dy);
  int32_t *row_ptr = malloc(((size_t)n_out + 1) * sizeof *row_ptr);
  int32_t *col_idx = malloc((size_t)total * sizeof *col_idx);
  unsigned char *in_pattern = calloc((size_t)total, 1);
  double *g = malloc((size_t)total * sizeof *g);
  /* Small integers: G is exact in float32, so the ranking (and its ties) is unambiguous. */
  for (int i = 0; i < batch * n_in; i++) x[i] = (float)(rnd_below(7) - 3);
  for (int i = 0; i < batch * n_out; i++) dy[i] = (float)(rnd_below(5) - 2);
  const int64_t nnz = random_pattern(n_out, n_in, p_percent, row_ptr, col_idx);
  for (int o = 0; o < n_out; o++)
    for (int32_t p = row_ptr[o]; p < row_ptr[o + 1]; p++) in_pattern[(int64_t)o * n_in + col_idx[p]] = 1;
  for (int o = 0; o < n_out; o++)
    for (int i = 0; i < n_in; i++) {
      double s = 0;
      for (int b = 0; b < batch; b++) s += (double)dy[b * n_out + o] * x[b * n_in + i];
      g[(int64_t)o * n_in + i] = s;
    }
  /* Naive: rank absent positions by |G| descending, position ascending. */
  int64_t absent = total - nnz;
  int *order = malloc((size_t)(absent > 0 ? absent : 1) * sizeof *order);
  float *absg = malloc((size_t)total * sizeof *absg);
  int64_t m = 0;
  for (int64_t q = 0; q < total; q++) {
    absg[q] = (float)fabs(g[q]);
    if (!in_pattern[q]) order[m++] = (int)q;
  }
  sort_scores = absg;
  sort_flags = SL_TOPK_ABS;
  qsort(order, (size_t)absent, sizeof *order, cmp_rank);

  const int64_t ks[] = {1, absent / 10, absent / 2, absent};
  const int64_t sizes[] = {n_in, 2 * (int64_t)n_in + 1, 7 * (int64_t)n_in, total, 1 << 30};
  int32_t *rows = malloc((size_t)(absent > 0 ? absent : 1) * sizeof *rows);
  int32_t *cols = malloc((size_t)(absent > 0 ? absent : 1) * sizeof *cols);
  float *vals = malloc((size_t)(absent > 0 ? absent : 1) * sizeof *vals);
  int *want = malloc((size_t)(absent > 0 ? absent : 1) * sizeof *want);
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    const int64_t k = ks[ki];
    if (k <= 0) continue;
    memcpy(want, order, (size_t)k * sizeof *want);
    qsort(want, (size_t)k, sizeof *want, cmp_int);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, k,
                                       sizes[si], rows, cols, vals),
                    SL_OK);
      int ok = 1;
      for (int64_t j = 0; j < k && ok; j++) {
        const int64_t q = (int64_t)rows[j] * n_in + cols[j];
        ok = q == want[j] && vals[j] == (float)g[q];
      }
      EXPECT(ok, "sl_dense_grad_topk batch=%d %dx%d k=%lld max_size=%lld differs from naive",
             batch, n_out, n_in, (long long)k, (long long)sizes[si]);
    }
  }
  /* Argument checks; nothing written on a rejected call. */
  rows[0] = -5;
  EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, 1, n_in - 1,
                                   rows, cols, NULL),
                SL_E_INVALID_ARGUMENT);
  EXPECT(strstr(sl_last_error(), "max_size") != NULL, "message: %s", sl_last_error());
  EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, absent + 1,
                                   total, rows, cols, NULL),
                SL_E_INVALID_ARGUMENT);
  if (batch > 0 && absent > 0) {
    x[0] = NAN;
    EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, 1, total,
                                     rows, cols, NULL),
                  SL_E_INVALID_ARGUMENT);
    EXPECT(strstr(sl_last_error(), "NaN") != NULL, "message: %s", sl_last_error());
    /* A NaN in the last chunk, met while later chunks are being packed. */
    x[0] = 0.0f;
    dy[n_out - 1] = NAN;
    EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, 1, n_in,
                                     rows, cols, NULL),
                  SL_E_INVALID_ARGUMENT);
    char want[64];
    snprintf(want, sizeof want, "NaN at (row %d,", n_out - 1);
    EXPECT(strstr(sl_last_error(), want) != NULL, "message: %s", sl_last_error());
  }
  EXPECT(rows[0] == -5, "sl_dense_grad_topk wrote output on a rejected call");
  free(x);
  free(dy);
  free(row_ptr);
  free(col_idx);
  free(in_pattern);
  free(g);
  free(order);
  free(absg);
  free(rows);
  free(cols);
  free(vals);
  free(want);
}

static void test_dense_grad_topk_bad_pattern(void) {
  int32_t row_ptr[3] = {0, 2, 3};
  int32_t col_idx[3] = {1, 1, 0}; /* duplicate in row 0 */
  float x[4] = {1, 2, 3, 4}, dy[4] = {1, 2, 3, 4};
  int32_t r[1], c[1];
  EXPECT_STATUS(sl_dense_grad_topk(2, 2, 2, x, dy, 3, row_ptr, col_idx, 1, 4, r, c, NULL),
                SL_E_DUPLICATE);
  col_idx[1] = 5;
  EXPECT_STATUS(sl_dense_grad_topk(2, 2, 2, x, dy, 3, row_ptr, col_idx, 1, 4, r, c, NULL),
                SL_E_INDEX_OUT_OF_RANGE);
}

/* --------------------------------------------------------- sl_sample_absent ---- */

static void test_sample_absent(void) {
  const int rows = 13, cols = 17;
  int32_t row_ptr[14], col_idx[13 * 17];
  const int64_t nnz = random_pattern(rows, cols, 40, row_ptr, col_idx);
  unsigned char present[13 * 17] = {0};
  for (int r = 0; r < rows; r++)
    for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; p++) present[r * cols + col_idx[p]] = 1;
  const int64_t absent = (int64_t)rows * cols - nnz;
  int32_t out_r[13 * 17], out_c[13 * 17], again_r[13 * 17], again_c[13 * 17];
  const int64_t ks[] = {0, 1, 5, absent / 2, absent / 2 + 1, absent - 1, absent};
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    const int64_t k = ks[ki];
    EXPECT_STATUS(sl_sample_absent(rows, cols, nnz, row_ptr, col_idx, k, 99 + ki, out_r, out_c),
                  SL_OK);
    int ok = 1;
    for (int64_t j = 0; j < k; j++) {
      const int64_t q = (int64_t)out_r[j] * cols + out_c[j];
      ok &= out_r[j] >= 0 && out_r[j] < rows && out_c[j] >= 0 && out_c[j] < cols;
      ok &= !present[q];
      if (j > 0) ok &= q > (int64_t)out_r[j - 1] * cols + out_c[j - 1]; /* sorted, distinct */
    }
    EXPECT(ok, "sl_sample_absent k=%lld: not k distinct absent positions in row-major order",
           (long long)k);
    EXPECT_STATUS(
        sl_sample_absent(rows, cols, nnz, row_ptr, col_idx, k, 99 + ki, again_r, again_c), SL_OK);
    EXPECT(memcmp(out_r, again_r, (size_t)k * 4) == 0 && memcmp(out_c, again_c, (size_t)k * 4) == 0,
           "sl_sample_absent is not deterministic for a fixed seed");
  }
  /* Uniformity: every absent position is chosen with probability k / absent. */
  const int trials = 4000;
  const int64_t k = 10;
  int counts[13 * 17] = {0};
  for (int t = 0; t < trials; t++) {
    sl_sample_absent(rows, cols, nnz, row_ptr, col_idx, k, 1000 + (uint64_t)t, out_r, out_c);
    for (int64_t j = 0; j < k; j++) counts[out_r[j] * cols + out_c[j]]++;
  }
  const double expect = (double)trials * k / absent, sd = sqrt(expect * (1 - (double)k / absent));
  int outliers = 0;
  double chi2 = 0;
  for (int q = 0; q < rows * cols; q++) {
    if (present[q]) {
      EXPECT(counts[q] == 0, "sl_sample_absent chose a present position %d", q);
      continue;
    }
    chi2 += (counts[q] - expect) * (counts[q] - expect) / (sd * sd);
    outliers += fabs(counts[q] - expect) > 5 * sd;
  }
  EXPECT(outliers == 0, "sl_sample_absent: %d positions more than 5 sd from uniform", outliers);
  /* chi2 has about `absent` degrees of freedom; mean absent, sd sqrt(2 * absent). */
  EXPECT(chi2 < absent + 6 * sqrt(2.0 * absent), "sl_sample_absent: chi2 = %g for %lld cells",
         chi2, (long long)absent);
  EXPECT_STATUS(sl_sample_absent(rows, cols, nnz, row_ptr, col_idx, absent + 1, 1, out_r, out_c),
                SL_E_INVALID_ARGUMENT);

  /* The same positions for the same seed as every earlier version drew (hashes taken with the
   * library of the twenty-third session, before sl_sort_u64 replaced qsort): a subset of 300,000
   * of 9 M positions, and one of all but five (drawn as its five-element complement). */
  {
    const int32_t n = 3000;
    const int64_t per = 3, mid_nnz = per * n;
    int32_t *mp = malloc(((size_t)n + 1) * sizeof *mp), *mc = malloc((size_t)mid_nnz * sizeof *mc);
    for (int32_t r = 0; r <= n; r++) mp[r] = (int32_t)(r * per);
    for (int64_t e = 0; e < mid_nnz; e++) mc[e] = (int32_t)((e % per) * 997 + (e / per) % 5);
    const int64_t counts[2] = {300000, (int64_t)n * n - mid_nnz - 5};
    const uint64_t seeds[2] = {2026, 7}, want[2] = {0x6cf4e2bccbdb9ae5ull, 0x1a26b8b74816b959ull};
    for (int t = 0; t < 2; t++) {
      int32_t *sr = malloc((size_t)counts[t] * sizeof *sr);
      int32_t *sc = malloc((size_t)counts[t] * sizeof *sc);
      EXPECT_STATUS(sl_sample_absent(n, n, mid_nnz, mp, mc, counts[t], seeds[t], sr, sc), SL_OK);
      uint64_t h = 1469598103934665603ull; /* FNV-1a over (row, col) pairs */
      for (int64_t j = 0; j < counts[t]; j++) {
        h = (h ^ (uint32_t)sr[j]) * 1099511628211ull;
        h = (h ^ (uint32_t)sc[j]) * 1099511628211ull;
      }
      EXPECT(h == want[t], "sl_sample_absent(k = %lld, seed %llu) drew other positions than before",
             (long long)counts[t], (unsigned long long)seeds[t]);
      free(sr);
      free(sc);
    }
    free(mp);
    free(mc);
  }

  /* Huge and very sparse: 10^6 x 10^6 with a handful of connections, no dense scratch. */
  const int32_t big = 1000000;
  int32_t *big_ptr = calloc((size_t)big + 1, sizeof *big_ptr);
  int32_t big_cols[3] = {0, 5, 999999};
  for (int r = 1; r <= big; r++) big_ptr[r] = 3; /* row 0 holds all three */
  int32_t *br = malloc(100000 * sizeof *br), *bc = malloc(100000 * sizeof *bc);
  EXPECT_STATUS(sl_sample_absent(big, big, 3, big_ptr, big_cols, 100000, 7, br, bc), SL_OK);
  int ok = 1;
  for (int j = 0; j < 100000; j++) {
    ok &= !(br[j] == 0 && (bc[j] == 0 || bc[j] == 5 || bc[j] == 999999));
    if (j > 0) ok &= (int64_t)br[j] * big + bc[j] > (int64_t)br[j - 1] * big + bc[j - 1];
  }
  EXPECT(ok, "sl_sample_absent at 10^6 x 10^6: bad positions");
  free(big_ptr);
  free(br);
  free(bc);
}

/* --------------------------------------------------------- sl_csr_drop_grow ---- */

static void test_drop_grow(int flags) {
  const int rows = 23, cols = 31;
  int32_t row_ptr[24], col_idx[23 * 31];
  float values[23 * 31];
  const int64_t nnz = random_pattern(rows, cols, 30, row_ptr, col_idx);
  for (int64_t p = 0; p < nnz; p++) values[p] = (float)(p + 1);
  /* Dense references: old CSR position of each cell (-1 if absent). */
  int old_at[23 * 31];
  for (int q = 0; q < rows * cols; q++) old_at[q] = -1;
  for (int r = 0; r < rows; r++)
    for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; p++) old_at[r * cols + col_idx[p]] = p;
  /* Drop every third connection (listed in descending order), grow some absent and dropped. */
  int32_t drop[23 * 31], grow_r[23 * 31], grow_c[23 * 31];
  unsigned char is_dropped[23 * 31] = {0};
  int64_t n_drop = 0, n_grow = 0;
  for (int64_t p = nnz - 1; p >= 0; p--)
    if (p % 3 == 0) {
      drop[n_drop++] = (int32_t)p;
      is_dropped[p] = 1;
    }
  for (int q = rows * cols - 1; q >= 0; q--) { /* reverse order: the kernel must sort */
    const int p = old_at[q];
    if ((p < 0 && rnd_below(10) == 0) || (p >= 0 && is_dropped[p] && rnd_below(2) == 0)) {
      grow_r[n_grow] = q / cols;
      grow_c[n_grow] = q % cols;
      n_grow++;
    }
  }
  const int64_t new_nnz = nnz - n_drop + n_grow;
  int32_t new_ptr[24], new_col[23 * 31], old_index[23 * 31];
  float new_val[23 * 31];
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, n_drop, drop, n_grow,
                                 grow_r, grow_c, flags, new_ptr, new_col, new_val, old_index),
                SL_OK);
  /* Naive: the new dense mask, walked in row-major order. */
  unsigned char grown[23 * 31] = {0};
  for (int64_t g = 0; g < n_grow; g++) grown[grow_r[g] * cols + grow_c[g]] = 1;
  int64_t j = 0;
  int ok = new_ptr[0] == 0;
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) {
      const int q = r * cols + c, p = old_at[q];
      const int kept = p >= 0 && !is_dropped[p];
      if (!kept && !grown[q]) continue;
      const int keeps_past = kept || ((flags & SL_REGROW_KEEPS) && p >= 0);
      ok &= j < new_nnz && new_col[j] == c;
      ok &= old_index[j] == (keeps_past ? p : -1);
      ok &= new_val[j] == (keeps_past ? values[p] : 0.0f);
      j++;
    }
    ok &= new_ptr[r + 1] == j;
  }
  ok &= j == new_nnz;
  EXPECT(ok, "sl_csr_drop_grow flags=%d differs from the naive rebuild", flags);

  /* Rejected calls write nothing. */
  new_ptr[0] = -9;
  int32_t kept_r = -1, kept_c = -1;
  for (int r = 0; r < rows && kept_r < 0; r++)
    for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; p++)
      if (!is_dropped[p]) {
        kept_r = r;
        kept_c = col_idx[p];
        break;
      }
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, n_drop, drop, 1,
                                 &kept_r, &kept_c, flags, new_ptr, new_col, new_val, old_index),
                SL_E_DUPLICATE);
  EXPECT(strstr(sl_last_error(), "kept connection") != NULL, "message: %s", sl_last_error());
  /* A grown position listed twice, adjacent (in order) or not. */
  int32_t absent_r = -1, absent_c = -1;
  for (int r = 0; r < rows && absent_r < 0; r++)
    for (int32_t c = 0, p = row_ptr[r]; c < cols; c++) {
      while (p < row_ptr[r + 1] && col_idx[p] < c) p++;
      if (p == row_ptr[r + 1] || col_idx[p] != c) {
        absent_r = r;
        absent_c = c;
        break;
      }
    }
  if (absent_r >= 0) {
    int32_t dup_r[3] = {absent_r, absent_r, absent_r}, dup_c[3] = {absent_c, absent_c, absent_c};
    EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, n_drop, drop, 2,
                                   dup_r, dup_c, flags, new_ptr, new_col, new_val, old_index),
                  SL_E_DUPLICATE);
    EXPECT(strstr(sl_last_error(), "listed twice") != NULL, "message: %s", sl_last_error());
    /* Unsorted (a, last, a): sorting makes the pair adjacent; its check comes before the
     * kept-connection one, so the message tells which fired. */
    dup_r[1] = rows - 1;
    dup_c[1] = cols - 1;
    if (dup_r[1] != absent_r || dup_c[1] != absent_c) {
      EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, n_drop, drop, 3,
                                     dup_r, dup_c, flags, new_ptr, new_col, new_val, old_index),
                    SL_E_DUPLICATE);
      EXPECT(strstr(sl_last_error(), "listed twice") != NULL, "message: %s", sl_last_error());
    }
  }
  int32_t twice[2] = {0, 0};
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, 2, twice, 0, NULL,
                                 NULL, flags, new_ptr, new_col, new_val, old_index),
                SL_E_DUPLICATE);
  int32_t out_of_range = (int32_t)nnz;
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, 1, &out_of_range, 0,
                                 NULL, NULL, flags, new_ptr, new_col, new_val, old_index),
                SL_E_INDEX_OUT_OF_RANGE);
  int32_t gr[2] = {0, 0}, gc[2] = {3, 3};
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, nnz, NULL, 2, gr, gc,
                                 flags, new_ptr, new_col, new_val, old_index),
                SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_csr_drop_grow(rows, cols, nnz, row_ptr, col_idx, values, 0, NULL, 1, gr, gc, 2,
                                 new_ptr, new_col, new_val, old_index),
                SL_E_INVALID_ARGUMENT);
  EXPECT(new_ptr[0] == -9, "sl_csr_drop_grow wrote output on a rejected call");
}

/*
 * Random float data (G not exact in float): the growth and its gradient values are the same bits
 * at 1, 2 and 3 threads and for every max_size, and each value is the fixed chain
 * fma(dy[B-1] x[B-1], ... fma(dy[0] x[0], +0)) that the header promises. (With G from OpenBLAS
 * the values depended on the thread count and the chunk size.)
 */
static void test_dense_grad_topk_fixed_order(int batch, int n_in, int n_out, int k) {
  float *x = malloc((size_t)batch * n_in * sizeof *x);
  float *dy = malloc((size_t)batch * n_out * sizeof *dy);
  int32_t *row_ptr = malloc(((size_t)n_out + 1) * sizeof *row_ptr);
  int32_t *col_idx = malloc((size_t)n_in * n_out * sizeof *col_idx);
  /* Uniform in [-1, 1] and [-0.3, 0.3] on a fine grid: G's entries are not exact in float. */
  for (int i = 0; i < batch * n_in; i++) x[i] = (float)(rnd_below(2000001) - 1000000) * 1e-6f;
  for (int i = 0; i < batch * n_out; i++) dy[i] = (float)(rnd_below(2000001) - 1000000) * 3e-7f;
  const int64_t nnz = random_pattern(n_out, n_in, 10, row_ptr, col_idx);
  int32_t *rows0 = malloc((size_t)k * sizeof *rows0), *cols0 = malloc((size_t)k * sizeof *cols0);
  int32_t *rows = malloc((size_t)k * sizeof *rows), *cols = malloc((size_t)k * sizeof *cols);
  float *vals0 = malloc((size_t)k * sizeof *vals0), *vals = malloc((size_t)k * sizeof *vals);
  const int64_t sizes[] = {(int64_t)n_in * n_out, 7 * (int64_t)n_in, n_in, 64 * (int64_t)n_in + 5};
  int first = 1, same = 1, chain = 1;
  for (int threads = 1; threads <= 3; threads++) {
    sl_set_num_threads(threads);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      EXPECT_STATUS(sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, k,
                                       sizes[si], first ? rows0 : rows, first ? cols0 : cols,
                                       first ? vals0 : vals),
                    SL_OK);
      if (!first)
        same = same && memcmp(rows, rows0, (size_t)k * sizeof *rows) == 0 &&
               memcmp(cols, cols0, (size_t)k * sizeof *cols) == 0 &&
               memcmp(vals, vals0, (size_t)k * sizeof *vals) == 0;
      first = 0;
    }
  }
  for (int j = 0; j < k; j++) {
    float acc = 0.0f;
    for (int b = 0; b < batch; b++)
      acc = fmaf(dy[b * n_out + rows0[j]], x[b * n_in + cols0[j]], acc);
    chain = chain && memcmp(&acc, &vals0[j], sizeof acc) == 0;
  }
  EXPECT(same, "sl_dense_grad_topk batch %d: growth differs between thread counts or max_size",
         batch);
  EXPECT(chain, "sl_dense_grad_topk batch %d: a gradient value is not the fixed fma chain", batch);
  free(rows0);
  free(cols0);
  free(rows);
  free(cols);
  free(vals0);
  free(vals);
  free(x);
  free(dy);
  free(row_ptr);
  free(col_idx);
}

int main(void) {
  for (int threads = 1; threads <= 3; threads += 2) {
    sl_set_num_threads(threads);
    test_topk();
    test_dense_grad_topk(4, 9, 7, 30);
    test_dense_grad_topk(1, 1, 5, 20);
    test_dense_grad_topk(0, 6, 4, 50);
    test_dense_grad_topk(3, 400, 300, 5); /* 120000 entries: the parallel paths */
    test_dense_grad_topk(3, 64, 500, 10); /* many chunks: survivors get packed */
    test_dense_grad_topk_bad_pattern();
    test_sample_absent();
    test_drop_grow(0);
    test_drop_grow(SL_REGROW_KEEPS);
  }
  test_dense_grad_topk_fixed_order(64, 300, 250, 2000);
  /* The shape where OpenBLAS's G picked another k-th position at 2 threads than at 1. */
  test_dense_grad_topk_fixed_order(1000, 300, 200, 5522);
  if (failures) {
    fprintf(stderr, "test_topk: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_topk: ok\n");
  return 0;
}
