/*
 * fuzz_kwinners.c — sl_kwinners_fwd / sl_kwinners_bwd with random rows, widths, k, boost
 * strengths, duty cycles (ties, NaN, inf inputs; out-of-range options) against a naive
 * reference that ranks by the same boosted key (descending, lower index first). The backward
 * gets winners that are sometimes corrupt: it must reject them and write nothing.
 */
#include <float.h>

#include "fuzz_common.h"

static const double *rank_key;
static int cmp_rank(const void *a, const void *b) {
  const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
  if (rank_key[i] != rank_key[j]) return rank_key[i] > rank_key[j] ? -1 : 1;
  return (i > j) - (i < j);
}
static int cmp_i32(const void *a, const void *b) {
  const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_threads(&in);
  const int64_t rows = fz_rare(&in) ? fz_range(&in, 200, 700) : fz_range(&in, 0, 12);
  const int32_t n = fz_chance(&in, 8) ? (int32_t)fz_range(&in, -2, 0)
                                      : (int32_t)fz_range(&in, 1, fz_rare(&in) ? 400 : 40);
  int32_t k = n >= 1 ? (int32_t)fz_range(&in, 1, n) : 1;
  if (fz_chance(&in, 8)) k = fz_chance(&in, 128) ? 0 : n + 1;
  static const float boosts[] = {0.0f, 0.5f, 1.5f, 10.0f, -1.0f, INFINITY, NAN};
  static const float alphas[] = {0.0f, 0.01f, 0.5f, 1.0f, -0.1f, 1.5f, NAN};
  const float boost = fz_chance(&in, 200) ? boosts[fz_u8(&in) % 4] : boosts[fz_u8(&in) % 7];
  const float alpha = fz_chance(&in, 200) ? alphas[fz_u8(&in) % 4] : alphas[fz_u8(&in) % 7];
  const int bad_args = n < 1 || k < 1 || k > n || !(boost >= 0.0f) || isinf(boost) ||
                       !(alpha >= 0.0f && alpha <= 1.0f);
  const int32_t width = n > 0 ? n : 0;
  const int64_t total = rows * width;
  const int with_duty = boost > 0.0f || alpha > 0.0f || fz_chance(&in, 64);
  const int with_winners = fz_chance(&in, 200), with_counts = fz_chance(&in, 128);

  float *x = FZ_NEW(float, total), *duty = with_duty ? FZ_NEW(float, width) : NULL;
  const int alphabet = (int)fz_range(&in, 1, 5);
  for (int64_t i = 0; i < total; i++)
    x[i] = alphabet < 5 ? (float)((int)fz_range(&in, 0, alphabet)) : fz_any_float(&in);
  for (int32_t j = 0; j < width && duty; j++) duty[j] = (float)fz_range(&in, 0, 8) / 8.0f;
  float *duty_before = FZ_NEW(float, width);
  if (duty) memcpy(duty_before, duty, (size_t)width * sizeof(float));

  const int64_t n_win = bad_args ? 0 : rows * k;
  float *y = FZ_NEW(float, total);
  int32_t *winners = with_winners ? FZ_NEW(int32_t, n_win) : NULL;
  int32_t *counts = with_counts ? FZ_NEW(int32_t, width) : NULL;
  fz_poison(y, total);
  sl_status st = sl_kwinners_fwd(rows, n, k, boost, alpha, x, duty, y, winners, counts);
  if (bad_args) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_kwinners_fwd accepted n=%d k=%d boost=%g alpha=%g",
             n, k, boost, alpha);
    FZ_CHECK_MESSAGE("sl_kwinners_fwd");
    FZ_CHECK(fz_is_poison(y, total), "rejected call wrote y");
  } else if (!with_duty && (boost > 0.0f || alpha > 0.0f)) {
    FZ_CHECK(st == SL_E_NULL_POINTER, "null duty_cycle accepted");
  } else {
    FZ_CHECK(st == SL_OK, "sl_kwinners_fwd: status %d", st);
    double *key = FZ_NEW(double, n);
    int32_t *order = FZ_NEW(int32_t, n);
    int64_t *wins = FZ_NEW(int64_t, n);
    for (int32_t j = 0; j < n; j++) wins[j] = 0;
    /* Boost factors exp(b (k/n - dc_j)) up to their common factor exp(b (k/n - dc_min)), which
     * leaves the ranking as it is and keeps every factor <= 1 (no overflow at any b). */
    double dc_min = INFINITY;
    for (int32_t j = 0; j < n; j++)
      if ((double)duty_before[j] < dc_min) dc_min = (double)duty_before[j];
    for (int64_t r = 0; r < rows; r++) {
      for (int32_t j = 0; j < n; j++) {
        double v = (double)x[r * n + j];
        if (boost > 0.0f) v *= exp((double)boost * (dc_min - (double)duty_before[j]));
        /* NaN above +inf above every number, as torch.topk ranks them (and the library). */
        key[j] = isnan(v) ? INFINITY : (v == INFINITY ? DBL_MAX : v);
        order[j] = j;
      }
      rank_key = key;
      qsort(order, (size_t)n, sizeof *order, cmp_rank);
      qsort(order, (size_t)k, sizeof *order, cmp_i32);
      int32_t w = 0;
      for (int32_t j = 0; j < n; j++) {
        const int win = w < k && order[w] == j;
        const float want = win ? x[r * n + j] : 0.0f;
        FZ_CHECK(memcmp(&y[r * n + j], &want, sizeof want) == 0 || (win && isnan(want) && isnan(y[r * n + j])),
                 "y[%lld, %d] = %g, expected %g", (long long)r, j, y[r * n + j], want);
        if (win) {
          if (winners) FZ_CHECK(winners[r * k + w] == j, "winners[%lld, %d]", (long long)r, w);
          wins[j]++;
          w++;
        }
      }
    }
    for (int32_t j = 0; j < n; j++) {
      if (counts) FZ_CHECK(counts[j] == wins[j], "win_counts[%d]", j);
      if (alpha > 0.0f && rows > 0) {
        const double a = alpha;
        const float want =
            (float)((1.0 - a) * (double)duty_before[j] + a * ((double)wins[j] / (double)rows));
        FZ_CHECK(duty[j] == want, "duty_cycle[%d] = %g, expected %g", j, duty[j], want);
      } else if (duty) {
        FZ_CHECK(duty[j] == duty_before[j], "duty_cycle[%d] changed", j);
      }
    }
    free(key);
    free(order);
    free(wins);

    /* Backward with the winners (sometimes corrupted): dx = dy on winners, 0 elsewhere. */
    if (winners && rows > 0) {
      int64_t bad_at = -1;
      if (fz_chance(&in, 64)) {
        bad_at = fz_range(&in, 0, n_win - 1);
        winners[bad_at] = fz_chance(&in, 128) ? n : -1 - (int32_t)fz_range(&in, 0, 9);
      }
      float *dy = FZ_NEW(float, total), *dx = FZ_NEW(float, total);
      for (int64_t i = 0; i < total; i++) dy[i] = (float)(i % 17) - 8.0f;
      fz_poison(dx, total);
      st = sl_kwinners_bwd(rows, n, k, winners, dy, dx);
      if (bad_at >= 0) {
        FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "corrupt winner accepted");
        FZ_CHECK_MESSAGE("sl_kwinners_bwd");
        FZ_CHECK(fz_is_poison(dx, total), "rejected call wrote dx");
      } else {
        FZ_CHECK(st == SL_OK, "sl_kwinners_bwd: status %d", st);
        for (int64_t r = 0; r < rows; r++) {
          int32_t w = 0;
          for (int32_t j = 0; j < n; j++) {
            const int win = w < k && winners[r * k + w] == j;
            FZ_CHECK(dx[r * n + j] == (win ? dy[r * n + j] : 0.0f), "dx[%lld, %d]", (long long)r,
                     j);
            w += win;
          }
        }
      }
      free(dy);
      free(dx);
    }
  }
  free(x);
  free(duty);
  free(duty_before);
  free(y);
  free(winners);
  free(counts);
  return 0;
}
