/*
 * kwinners.c — K-Winners activation sparsity (nupic.torch KWinners semantics): per row, the k
 * units with the largest boosted value keep their raw value, the rest become 0; the duty cycle
 * (per-unit win frequency) is updated in the same call; the backward passes the gradient of the
 * winners only.
 *
 * Selection is a quickselect over unit indices under a strict total order (boosted value
 * descending, then index ascending), so ties are deterministic (the lower index wins) and the
 * result does not depend on the thread count. Expected O(n) per row; a depth limit falls back to
 * heapsort so the worst case stays O(n log n).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "validate.h"

/* Below this many elements the call runs on one thread: a parallel region costs more. */
#define SL_KW_PARALLEL_MIN 32768

/* Quickselect rounds allowed beyond 2 log2(n) before the heapsort fallback (tests lower it). */
#ifndef SL_KW_DEPTH_EXTRA
#define SL_KW_DEPTH_EXTRA 8
#endif

/* Strict total order: a ranks before b. Keys are never NaN (see kw_key), so == is safe. */
static inline int kw_better(const double *key, int32_t a, int32_t b) {
  return key[a] > key[b] || (key[a] == key[b] && a < b);
}

/* The ranking key of a boosted value: NaN above +inf above every number, as torch.topk ranks
 * them (so a NaN unit wins and the NaN propagates, as in nupic.torch). Finite boosted values stay
 * below DBL_MAX (a float times a boost factor <= 1). */
static inline double kw_key(double v) {
  if (isnan(v)) return INFINITY;
  return v == INFINITY ? DBL_MAX : v;
}

static inline void kw_swap(int32_t *idx, int32_t i, int32_t j) {
  int32_t t = idx[i];
  idx[i] = idx[j];
  idx[j] = t;
}

/*
 * Sift-down for a heap whose root is the worst-ranked element: each parent ranks after its
 * children, so repeatedly moving the root to the back leaves the best elements first.
 */
static void kw_sift(int32_t *base, int32_t root, int32_t end, const double *key) {
  for (;;) {
    /* int64: for rows wider than 2^30 units, 2 * root + 1 overflows int32. */
    const int64_t child64 = 2 * (int64_t)root + 1;
    if (child64 > end) return;
    int32_t child = (int32_t)child64;
    /* the worse of the two children */
    if (child + 1 <= end && kw_better(key, base[child], base[child + 1])) child++;
    if (kw_better(key, base[child], base[root])) return; /* the root is already the worst */
    kw_swap(base, root, child);
    root = child;
  }
}

/* Sorts base[0..n) so that better elements come first (heapsort, O(n log n)). */
static void kw_heapsort(int32_t *base, int32_t n, const double *key) {
  if (n < 2) return;
  /* Build a heap with the worst-ranked element at the root. */
  for (int32_t start = (n - 2) / 2; start >= 0; start--) kw_sift(base, start, n - 1, key);
  for (int32_t end = n - 1; end > 0; end--) {
    kw_swap(base, 0, end); /* the worst goes to the back */
    kw_sift(base, 0, end - 1, key);
  }
}

/* Rearranges idx[0..n) so that idx[0..k) are the k best units (in no particular order). */
static void kw_select(int32_t *idx, int32_t n, int32_t k, const double *key) {
  int32_t lo = 0, hi = n - 1, target = k - 1;
  int depth = SL_KW_DEPTH_EXTRA; /* about 2 log2(n) + 8 partition rounds before heapsort */
  for (int32_t m = n; m > 1; m >>= 1) depth += 2;
  while (lo < hi) {
    if (depth-- <= 0) {
      kw_heapsort(idx + lo, hi - lo + 1, key);
      return;
    }
    /* Median of three as pivot, moved to hi. */
    int32_t mid = lo + (hi - lo) / 2;
    if (kw_better(key, idx[mid], idx[lo])) kw_swap(idx, mid, lo);
    if (kw_better(key, idx[hi], idx[lo])) kw_swap(idx, hi, lo);
    if (kw_better(key, idx[hi], idx[mid])) kw_swap(idx, hi, mid);
    /* now rank(lo) <= rank(mid) <= rank(hi): mid is the median */
    kw_swap(idx, mid, hi);
    int32_t pivot = idx[hi];
    int32_t store = lo;
    for (int32_t i = lo; i < hi; i++) {
      if (kw_better(key, idx[i], pivot)) kw_swap(idx, i, store++);
    }
    kw_swap(idx, store, hi);
    if (store == target) return;
    if (store < target) lo = store + 1;
    else hi = store - 1;
  }
}

sl_status sl_kwinners_fwd(int64_t rows, int32_t n, int32_t k, float boost_strength,
                          float duty_alpha, const float *x, float *duty_cycle, float *y,
                          int32_t *winners, int32_t *win_counts) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_kwinners_fwd(__func__, rows, n, k, boost_strength, duty_alpha, x,
                                       duty_cycle, y, win_counts));
  int64_t total = rows * n;
  int boosting = boost_strength > 0.0f;
  int updating = duty_alpha > 0.0f && rows > 0;
  if (rows == 0) {
    if (win_counts != NULL) memset(win_counts, 0, (size_t)n * sizeof(int32_t));
    return SL_OK;
  }

  int counting = updating || win_counts != NULL;
  int threads = total > SL_KW_PARALLEL_MIN && rows > 1 ? sl_threads() : 1;
  if (threads > rows) threads = (int)rows;
  /* Per thread: keys (double), indices (int32), winner flags (uint8), win counts (int64). */
  size_t per_thread = (size_t)n * (sizeof(double) + sizeof(int32_t) + 1 +
                                   (counting ? sizeof(int64_t) : 0));
  per_thread = (per_thread + 63) & ~(size_t)63; /* keep every thread's doubles aligned */
  double *factor = NULL;
  if (boosting) {
    factor = malloc((size_t)n * sizeof(double));
    if (factor == NULL)
      return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "no memory for %d boost factors", n);
    /* exp(b (k/n - dc_j)) = exp(b (k/n - dc_min)) * exp(b (dc_min - dc_j)): the first factor
     * is common to every unit, so it cannot change the ranking and is left out. The second is at
     * most 1, so it never overflows (the first did from b ~ 710, turning x into inf, or NaN for
     * x = 0, which then outranked larger values). NaN duty cycles are skipped by the min. */
    double dc_min = INFINITY;
    for (int32_t j = 0; j < n; j++)
      if ((double)duty_cycle[j] < dc_min) dc_min = (double)duty_cycle[j];
    for (int32_t j = 0; j < n; j++)
      factor[j] = exp((double)boost_strength * (dc_min - (double)duty_cycle[j]));
  }
  unsigned char *scratch = calloc((size_t)threads, per_thread);
  if (scratch == NULL) {
    free(factor);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "no memory for scratch (%d threads x %zu bytes)",
                   threads, per_thread);
  }

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    unsigned char *mine = scratch + (size_t)tid * per_thread;
    double *key = (double *)mine;
    int64_t *counts = counting ? (int64_t *)(key + n) : NULL;
    int32_t *idx = (int32_t *)(counting ? (void *)(counts + n) : (void *)(key + n));
    unsigned char *flag = (unsigned char *)(idx + n);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * n;
      float *yr = y + r * n;
      int32_t *wr = winners != NULL ? winners + r * k : NULL;
      if (k == n) {
        for (int32_t j = 0; j < n; j++) {
          yr[j] = xr[j];
          if (wr != NULL) wr[j] = j;
          if (counts != NULL) counts[j]++;
        }
        continue;
      }
      for (int32_t j = 0; j < n; j++) {
        double v = (double)xr[j];
        if (factor != NULL) v *= factor[j];
        key[j] = kw_key(v);
        idx[j] = j;
      }
      kw_select(idx, n, k, key);
      for (int32_t i = 0; i < k; i++) flag[idx[i]] = 1;
      int32_t w = 0;
      for (int32_t j = 0; j < n; j++) {
        if (flag[j]) {
          flag[j] = 0;
          yr[j] = xr[j];
          if (wr != NULL) wr[w] = j;
          w++;
          if (counts != NULL) counts[j]++;
        } else {
          yr[j] = 0.0f;
        }
      }
    }
  }

  if (counting) {
    for (int32_t j = 0; j < n; j++) {
      int64_t c = 0;
      for (int t = 0; t < threads; t++) {
        const int64_t *counts = (const int64_t *)(scratch + (size_t)t * per_thread +
                                                  (size_t)n * sizeof(double));
        c += counts[j];
      }
      if (win_counts != NULL) win_counts[j] = (int32_t)c;
      if (updating) {
        double a = (double)duty_alpha;
        double updated = (1.0 - a) * (double)duty_cycle[j] + a * ((double)c / (double)rows);
        duty_cycle[j] = (float)updated;
      }
    }
  }
  free(scratch);
  free(factor);
  return SL_OK;
}

sl_status sl_kwinners_bwd(int64_t rows, int32_t n, int32_t k, const int32_t *winners,
                          const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_kwinners_bwd(__func__, rows, n, k, winners, dy, dx));
  if (rows == 0) return SL_OK;
  int64_t total = rows * n;
  int64_t n_winners = rows * k;
  for (int64_t i = 0; i < n_winners; i++) {
    if (winners[i] < 0 || winners[i] >= n)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__,
                     "winners[%lld] = %d is outside [0, %d)", (long long)i, winners[i], n);
  }
  int parallel = total > SL_KW_PARALLEL_MIN && rows > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * n;
    float *dxr = dx + r * n;
    const int32_t *wr = winners + r * k;
    memset(dxr, 0, (size_t)n * sizeof(float));
    for (int32_t i = 0; i < k; i++) dxr[wr[i]] = dyr[wr[i]];
  }
  return SL_OK;
}
