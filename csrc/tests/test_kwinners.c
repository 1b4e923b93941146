/*
 * test_kwinners.c — sl_kwinners_fwd / sl_kwinners_bwd against a naive reference (full sort of
 * each row by boosted value, ties to the lower index), on random data, heavy ties, NaN, k = n,
 * several thread counts, and bad arguments.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselinear.h"

#include "expect.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Reference ranking: boosted value descending (NaN above +inf, as torch.topk), index ascending. */
static const double *ref_key;
static int ref_cmp(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  if (ref_key[a] > ref_key[b]) return -1;
  if (ref_key[a] < ref_key[b]) return 1;
  return a < b ? -1 : (a > b ? 1 : 0);
}

static int cmp_int(const void *pa, const void *pb) {
  int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  return a < b ? -1 : (a > b ? 1 : 0);
}

static void naive_fwd(int64_t rows, int32_t n, int32_t k, float boost, float alpha, const float *x,
                      float *dc, float *y, int32_t *winners, int32_t *counts) {
  double *key = malloc((size_t)n * sizeof(double));
  int32_t *idx = malloc((size_t)n * sizeof(int32_t));
  memset(counts, 0, (size_t)n * sizeof(int32_t));
  /* exp(b (k/n - dc_j)) without the factor exp(b (k/n - dc_min)) common to every unit: the
   * same ranking, and no factor above 1 (so none overflows). */
  double dc_min = INFINITY;
  for (int32_t j = 0; j < n; j++)
    if ((double)dc[j] < dc_min) dc_min = (double)dc[j];
  for (int64_t r = 0; r < rows; r++) {
    for (int32_t j = 0; j < n; j++) {
      double f = boost > 0 ? exp((double)boost * (dc_min - (double)dc[j])) : 1.0;
      double v = (double)x[r * n + j] * f;
      key[j] = isnan(v) ? INFINITY : (v == INFINITY ? DBL_MAX : v);
      idx[j] = j;
    }
    ref_key = key;
    qsort(idx, (size_t)n, sizeof(int32_t), ref_cmp);
    qsort(idx, (size_t)k, sizeof(int32_t), cmp_int);
    for (int32_t j = 0; j < n; j++) y[r * n + j] = 0.0f;
    for (int32_t i = 0; i < k; i++) {
      int32_t j = idx[i];
      y[r * n + j] = x[r * n + j];
      winners[r * k + i] = j;
      counts[j]++;
    }
  }
  if (alpha > 0 && rows > 0)
    for (int32_t j = 0; j < n; j++)
      dc[j] = (float)((1.0 - alpha) * dc[j] + (double)alpha * ((double)counts[j] / rows));
  free(key);
  free(idx);
}

/* mode 0: random normal-ish; 1: few distinct values (ties); 2: with NaN and infinities. */
static void fill(float *x, int64_t count, int mode) {
  for (int64_t i = 0; i < count; i++) {
    if (mode == 1) x[i] = (float)(int)(uniform() * 4) - 1.0f;
    else x[i] = (float)(uniform() * 4.0 - 2.0);
    if (mode == 2) {
      double u = uniform();
      if (u < 0.05) x[i] = NAN;
      else if (u < 0.08) x[i] = INFINITY;
      else if (u < 0.11) x[i] = -INFINITY;
    }
  }
}

static void check_case(int64_t rows, int32_t n, int32_t k, float boost, float alpha, int mode,
                       int threads) {
  int64_t total = rows * n;
  float *x = malloc((size_t)(total ? total : 1) * sizeof(float));
  float *y = malloc((size_t)(total ? total : 1) * sizeof(float));
  float *y_ref = malloc((size_t)(total ? total : 1) * sizeof(float));
  int32_t *w = malloc((size_t)(rows * k > 0 ? rows * k : 1) * sizeof(int32_t));
  int32_t *w_ref = malloc((size_t)(rows * k > 0 ? rows * k : 1) * sizeof(int32_t));
  int32_t *c = malloc((size_t)n * sizeof(int32_t));
  int32_t *c_ref = malloc((size_t)n * sizeof(int32_t));
  float *dc = malloc((size_t)n * sizeof(float));
  float *dc_ref = malloc((size_t)n * sizeof(float));
  fill(x, total, mode);
  for (int32_t j = 0; j < n; j++) dc[j] = dc_ref[j] = (float)(uniform() * 0.5);

  sl_set_num_threads(threads);
  sl_status st = sl_kwinners_fwd(rows, n, k, boost, alpha, x, dc, y, w, c);
  EXPECT(st == SL_OK, "fwd failed: %s", sl_last_error());
  naive_fwd(rows, n, k, boost, alpha, x, dc_ref, y_ref, w_ref, c_ref);
  EXPECT(memcmp(w, w_ref, (size_t)(rows * k) * sizeof(int32_t)) == 0,
         "winners differ (rows %lld n %d k %d boost %g mode %d threads %d)", (long long)rows, n,
         k, (double)boost, mode, threads);
  EXPECT(memcmp(y, y_ref, (size_t)total * sizeof(float)) == 0, "outputs differ (n %d k %d)", n,
         k);
  EXPECT(memcmp(c, c_ref, (size_t)n * sizeof(int32_t)) == 0, "win counts differ (n %d k %d)", n,
         k);
  for (int32_t j = 0; j < n; j++) {
    EXPECT(fabsf(dc[j] - dc_ref[j]) <= 1e-7f, "duty cycle %d: %g vs %g", j, (double)dc[j],
           (double)dc_ref[j]);
    if (failures > 20) break;
  }

  /* Backward: the gradient passes at the winners only. */
  float *dy = malloc((size_t)(total ? total : 1) * sizeof(float));
  float *dx = malloc((size_t)(total ? total : 1) * sizeof(float));
  fill(dy, total, 0);
  st = sl_kwinners_bwd(rows, n, k, w, dy, dx);
  EXPECT(st == SL_OK, "bwd failed: %s", sl_last_error());
  for (int64_t r = 0; r < rows; r++) {
    for (int32_t j = 0; j < n; j++) {
      int won = bsearch(&j, w_ref + r * k, (size_t)k, sizeof(int32_t), cmp_int) != NULL;
      float want = won ? dy[r * n + j] : 0.0f;
      EXPECT(dx[r * n + j] == want, "dx[%lld, %d] = %g, want %g", (long long)r, j,
             (double)dx[r * n + j], (double)want);
      if (failures > 20) break;
    }
  }
  free(x), free(y), free(y_ref), free(w), free(w_ref), free(c), free(c_ref), free(dc),
      free(dc_ref), free(dy), free(dx);
}

static void check_errors(void) {
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6], dc[3] = {0, 0, 0}, dx[6];
  int32_t w[4];
  EXPECT(sl_kwinners_fwd(2, 3, 0, 0, 0, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT, "k = 0");
  EXPECT(strstr(sl_last_error(), "sl_kwinners_fwd: k must be in [1, n]") != NULL, "message: %s",
         sl_last_error());
  EXPECT(sl_kwinners_fwd(2, 3, 4, 0, 0, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT, "k > n");
  EXPECT(sl_kwinners_fwd(-1, 3, 1, 0, 0, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT, "rows < 0");
  EXPECT(sl_kwinners_fwd(2, 3, 1, -1, 0, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT,
         "negative boost");
  EXPECT(sl_kwinners_fwd(2, 3, 1, NAN, 0, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT, "NaN boost");
  EXPECT(sl_kwinners_fwd(2, 3, 1, 0, 1.5f, x, dc, y, w, NULL) == SL_E_INVALID_ARGUMENT,
         "alpha > 1");
  EXPECT(sl_kwinners_fwd(2, 3, 1, 1, 0, x, NULL, y, w, NULL) == SL_E_NULL_POINTER,
         "boost without duty cycle");
  EXPECT(sl_kwinners_fwd(2, 3, 1, 0, 0, NULL, NULL, y, w, NULL) == SL_E_NULL_POINTER, "null x");
  /* No boosting, no update: duty_cycle may be null. */
  EXPECT(sl_kwinners_fwd(2, 3, 1, 0, 0, x, NULL, y, w, NULL) == SL_OK, "plain: %s",
         sl_last_error());
  EXPECT(w[0] == 2 && w[1] == 2 && y[2] == 3 && y[0] == 0, "plain top-1");
  /* Backward with a bad winner: error, dx untouched. */
  int32_t bad[2] = {1, 3};
  dx[0] = 42;
  EXPECT(sl_kwinners_bwd(2, 3, 1, bad, x, dx) == SL_E_INDEX_OUT_OF_RANGE, "bad winner");
  EXPECT(strstr(sl_last_error(), "winners[1] = 3 is outside [0, 3)") != NULL, "message: %s",
         sl_last_error());
  EXPECT(dx[0] == 42, "dx written on failure");
  /* Empty batch: counts zeroed, duty cycle unchanged. */
  int32_t counts[3] = {7, 7, 7};
  dc[0] = 0.25f;
  EXPECT(sl_kwinners_fwd(0, 3, 1, 1, 0.5f, NULL, dc, NULL, NULL, counts) == SL_OK, "empty: %s",
         sl_last_error());
  EXPECT(counts[0] == 0 && counts[2] == 0 && dc[0] == 0.25f, "empty batch");
}

int main(void) {
  check_errors();
  int threads[2] = {1, 3};
  for (int t = 0; t < 2; t++) {
    for (int mode = 0; mode < 3; mode++) {
      check_case(5, 10, 3, 1.5f, 0.1f, mode, threads[t]);
      check_case(1, 1, 1, 1.5f, 0.1f, mode, threads[t]);
      check_case(4, 17, 17, 0.0f, 0.2f, mode, threads[t]);
      check_case(3, 9, 1, 0.0f, 0.0f, mode, threads[t]);
      check_case(64, 1000, 350, 1.5f, 0.1f, mode, threads[t]);
      check_case(40, 3000, 7, 2.0f, 1.0f, mode, threads[t]);
      check_case(8, 5000, 4990, 0.5f, 0.3f, mode, threads[t]);
    }
  }
  /* Sorted and reverse-sorted rows (quickselect pivots) with many rows in parallel. */
  {
    int64_t rows = 16;
    int32_t n = 4096, k = 1000;
    float *x = malloc((size_t)(rows * n) * sizeof(float));
    float *y = malloc((size_t)(rows * n) * sizeof(float));
    float *y_ref = malloc((size_t)(rows * n) * sizeof(float));
    int32_t *w = malloc((size_t)(rows * k) * sizeof(int32_t));
    int32_t *w_ref = malloc((size_t)(rows * k) * sizeof(int32_t));
    int32_t c[4096], c_ref[4096];
    float dc[4096];
    for (int64_t r = 0; r < rows; r++)
      for (int32_t j = 0; j < n; j++)
        x[r * n + j] = (r % 2 == 0) ? (float)j : (float)(n - j) * (r % 4 == 1 ? 1.0f : 0.0f);
    memset(dc, 0, sizeof dc);
    sl_set_num_threads(2);
    EXPECT(sl_kwinners_fwd(rows, n, k, 0, 0, x, NULL, y, w, c) == SL_OK, "sorted: %s",
           sl_last_error());
    naive_fwd(rows, n, k, 0, 0, x, dc, y_ref, w_ref, c_ref);
    EXPECT(memcmp(w, w_ref, (size_t)(rows * k) * sizeof(int32_t)) == 0, "sorted winners differ");
    EXPECT(memcmp(y, y_ref, (size_t)(rows * n) * sizeof(float)) == 0, "sorted outputs differ");
    free(x), free(y), free(y_ref), free(w), free(w_ref);
  }
  sl_set_num_threads(0);
  if (failures) {
    fprintf(stderr, "test_kwinners: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_kwinners: ok\n");
  return 0;
}
