/*
 * reduce.c — sums: over one axis, over everything, and over any set of dimensions (the
 * gradient of a broadcast input). All accumulate in double so that long sums stay accurate.
 */
#include "internal.h"
#include "validate.h"
#include "strided.h"

/* Inner-dimension tile of sum_axis: one double accumulator per element, on the stack. */
enum { INNER_TILE = 256 };

/* y[o, i] = alpha * sum_j x[o, j, i] for checked sizes (outer * inner > 0). */
static void sum_axis_run(int64_t outer, int64_t len, int64_t inner, float alpha,
                         const float *x, float *y) {
  const int64_t total = sl_mul_size(sl_mul_size(outer, len), inner);
  if (inner == 1) {
#pragma omp parallel for num_threads(sl_threads()) if (total > SL_PARALLEL_MIN && outer > 1) \
    schedule(static)
    for (int64_t o = 0; o < outer; o++) {
      const float *row = x + o * len;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < len; j++) s += row[j];
      y[o] = (float)(alpha * s);
    }
    return;
  }
  const int64_t tiles = (inner + INNER_TILE - 1) / INNER_TILE;
#pragma omp parallel for collapse(2) num_threads(sl_threads()) \
    if (total > SL_PARALLEL_MIN && outer * tiles > 1) schedule(static)
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t t = 0; t < tiles; t++) {
      const int64_t i0 = t * INNER_TILE;
      const int64_t w = inner - i0 < INNER_TILE ? inner - i0 : INNER_TILE;
      double acc[INNER_TILE];
      for (int64_t i = 0; i < w; i++) acc[i] = 0.0;
      const float *base = x + o * len * inner + i0;
      for (int64_t j = 0; j < len; j++) {
        const float *row = base + j * inner;
#pragma omp simd
        for (int64_t i = 0; i < w; i++) acc[i] += row[i];
      }
      float *yo = y + o * inner + i0;
      for (int64_t i = 0; i < w; i++) yo[i] = (float)(alpha * acc[i]);
    }
  }
}

sl_status sl_sum_axis(int64_t outer, int64_t len, int64_t inner, float alpha, const float *x,
                      float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sum_axis(__func__, outer, len, inner, x, y));
  const int64_t out_n = outer * inner;
  if (out_n == 0) return SL_OK;
  if (len == 0) { /* alpha * (empty sum): 0, or NaN for the mean of nothing (alpha = inf) */
    const float v = (float)(alpha * 0.0);
    for (int64_t i = 0; i < out_n; i++) y[i] = v;
    return SL_OK;
  }
  sum_axis_run(outer, len, inner, alpha, x, y);
  return SL_OK;
}

/* alpha * sum of x[0..n) in double, the threads' shares added in order (sl_parts). */
static float sum_all_run(int64_t n, float alpha, const float *x) {
  sl_parts parts;
#pragma omp parallel num_threads(sl_threads()) if (n > SL_PARALLEL_MIN)
  {
    int64_t lo, hi;
    sl_share(n, &lo, &hi);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; i++) s += x[i];
    sl_parts_put(&parts, s);
  }
  return (float)(alpha * sl_parts_sum(&parts));
}

sl_status sl_sum_all(int64_t n, float alpha, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sum_all(__func__, n, x, y));
  y[0] = n > 0 ? sum_all_run(n, alpha, x) : (float)(alpha * 0.0);
  return SL_OK;
}

/*
 * The general case of sl_sum_dims once dimensions are merged: for each output element, walk
 * the reduced dimensions with an odometer (the innermost reduced dimension as the tight loop).
 */
static void sum_dims_general(const sl_layout *l, int64_t y_numel, float alpha, const float *x,
                             float *y) {
  int kept_n = 0, red_n = 0;
  int64_t kept_shape[SL_MAX_DIMS], kept_stride[SL_MAX_DIMS];
  int64_t red_shape[SL_MAX_DIMS], red_stride[SL_MAX_DIMS];
  for (int d = 0; d < l->ndim; d++) {
    if (l->stride[1][d] == 0) {
      red_shape[red_n] = l->shape[d];
      red_stride[red_n++] = l->stride[0][d];
    } else {
      kept_shape[kept_n] = l->shape[d];
      kept_stride[kept_n++] = l->stride[0][d];
    }
  }
  const int64_t inner_len = red_shape[red_n - 1], inner_stride = red_stride[red_n - 1];
  int64_t outer_count = 1;
  for (int r = 0; r < red_n - 1; r++) outer_count *= red_shape[r];
#pragma omp parallel for num_threads(sl_threads()) \
    if (y_numel * outer_count * inner_len > SL_PARALLEL_MIN) schedule(static)
  for (int64_t j = 0; j < y_numel; j++) {
    int64_t base = 0, rem = j;
    for (int d = kept_n - 1; d >= 0; d--) {
      base += (rem % kept_shape[d]) * kept_stride[d];
      rem /= kept_shape[d];
    }
    int64_t idx[SL_MAX_DIMS] = {0};
    int64_t off = base;
    double s = 0.0;
    for (int64_t q = 0; q < outer_count; q++) {
      for (int64_t i = 0; i < inner_len; i++) s += x[off + i * inner_stride];
      for (int r = red_n - 2; r >= 0; r--) {
        off += red_stride[r];
        if (++idx[r] < red_shape[r]) break;
        off -= red_stride[r] * red_shape[r];
        idx[r] = 0;
      }
    }
    y[j] = (float)(alpha * s);
  }
}

sl_status sl_sum_dims(int32_t ndim, const int64_t *shape, int32_t reduce_mask, float alpha,
                      const float *x, float *y) {
  SL_ENTER();
  int64_t numel = 0;
  sl_status st = sl_check_shape(__func__, ndim, shape, &numel);
  if (st != SL_OK) return st;
  int64_t y_numel = 0;
  SL_VALIDATE(sl_validate_sum_dims(__func__, ndim, shape, numel, reduce_mask, x, y, &y_numel));
  if (y_numel == 0) return SL_OK;
  if (numel == 0) { /* a reduced dimension is empty: every sum is alpha * 0 */
    const float v = (float)(alpha * 0.0);
    for (int64_t i = 0; i < y_numel; i++) y[i] = v;
    return SL_OK;
  }
  /* x's contiguous strides, and y's: contiguous over the kept dimensions, 0 on reduced ones.
   * Computed only now that numel > 0: then no product of sizes overflows (with an empty
   * dimension the others may be huge, and their product is not representable). */
  int64_t x_strides[SL_MAX_DIMS], y_strides[SL_MAX_DIMS];
  int64_t xs = 1, ys = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    x_strides[d] = xs;
    xs *= shape[d];
    const int reduced = (reduce_mask >> d) & 1;
    y_strides[d] = reduced ? 0 : ys;
    if (!reduced) ys *= shape[d];
  }
  sl_layout l;
  const int64_t *const strides[2] = {x_strides, y_strides};
  sl_layout_init(&l, ndim, shape, 2, strides);
  /* After merging, kept and reduced dimensions alternate; the usual patterns are sum_axis. */
  const int nd = l.ndim;
  int reduced[SL_MAX_DIMS];
  for (int d = 0; d < nd; d++) reduced[d] = l.stride[1][d] == 0 && l.shape[d] > 1;
  if (nd == 1 && reduced[0]) {
    y[0] = sum_all_run(numel, alpha, x);
  } else if (nd == 1) {
    sum_axis_run(1, 1, numel, alpha, x, y);
  } else if (nd == 2 && !reduced[0]) {
    sum_axis_run(l.shape[0], l.shape[1], 1, alpha, x, y);
  } else if (nd == 2) {
    sum_axis_run(1, l.shape[0], l.shape[1], alpha, x, y);
  } else if (nd == 3 && !reduced[0]) {
    sum_axis_run(l.shape[0], l.shape[1], l.shape[2], alpha, x, y);
  } else {
    sum_dims_general(&l, y_numel, alpha, x, y);
  }
  return SL_OK;
}
