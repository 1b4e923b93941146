/*
 * reduce.cu — sums on device memory: over one axis, over everything, and over any set of
 * dimensions (the gradient of a broadcast input). Double accumulation and a fixed combination
 * order, as in csrc/cpu/reduce.c; the dispatch of sl_sum_dims mirrors the CPU library's.
 */
#include "reduce.cuh"
#include "../cpu/strided.h"
#include "validate.h"

__global__ void sl_column_final_kernel(int64_t outs, int64_t chunks, double alpha,
                                       const double *partial, float *y) {
  SL_GRID_STRIDE(idx, outs) {
    double s = 0.0;
    for (int64_t c = 0; c < chunks; c++) s += partial[c * outs + idx];
    y[idx] = (float)(alpha * s);
  }
}

__global__ void sl_row_final_kernel(int64_t outer, int64_t per_row, double alpha,
                                    const double *partial, float *y) {
  SL_GRID_STRIDE(o, outer) {
    double s = 0.0;
    for (int64_t b = 0; b < per_row; b++) s += partial[o * per_row + b];
    y[o] = (float)(alpha * s);
  }
}

__global__ void fill_value_kernel(int64_t n, float value, float *y) {
  SL_GRID_STRIDE(i, n) y[i] = value;
}

sl_status sl_fill_device(const char *fn, int64_t n, float value, float *y) {
  if (n <= 0) return SL_OK;
  fill_value_kernel<<<sl_blocks(n, 256), 256>>>(n, value, y);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of fill_value_kernel", err);
  return SL_OK;
}

/* The general case of sl_sum_dims after merging: one thread per output element walks the
 * reduced dimensions with an odometer (as the CPU library's sum_dims_general). */
struct dims_plan {
  int kept_n, red_n;
  int64_t kept_shape[SL_MAX_DIMS], kept_stride[SL_MAX_DIMS];
  int64_t red_shape[SL_MAX_DIMS], red_stride[SL_MAX_DIMS];
};

__global__ void sum_dims_general_kernel(dims_plan p, int64_t y_numel, float alpha,
                                        const float *__restrict__ x, float *__restrict__ y) {
  const int64_t inner_len = p.red_shape[p.red_n - 1], inner_stride = p.red_stride[p.red_n - 1];
  int64_t outer_count = 1;
  for (int r = 0; r < p.red_n - 1; r++) outer_count *= p.red_shape[r];
  SL_GRID_STRIDE(j, y_numel) {
    int64_t base = 0, rem = j;
    for (int d = p.kept_n - 1; d >= 0; d--) {
      base += (rem % p.kept_shape[d]) * p.kept_stride[d];
      rem /= p.kept_shape[d];
    }
    int64_t idx[SL_MAX_DIMS] = {0};
    int64_t off = base;
    double s = 0.0;
    for (int64_t q = 0; q < outer_count; q++) {
      for (int64_t i = 0; i < inner_len; i++) s += x[off + i * inner_stride];
      for (int r = p.red_n - 2; r >= 0; r--) {
        off += p.red_stride[r];
        if (++idx[r] < p.red_shape[r]) break;
        off -= p.red_stride[r] * p.red_shape[r];
        idx[r] = 0;
      }
    }
    y[j] = (float)(alpha * s);
  }
}

static sl_status sum_axis_run(const char *fn, int64_t outer, int64_t len, int64_t inner,
                              float alpha, const float *x, float *y) {
  sl_term_plain term{x, len, inner};
  return sl_reduce_middle(fn, outer, len, inner, alpha, term, y);
}

extern "C" {

SL_API sl_status sl_sum_axis(int64_t outer, int64_t len, int64_t inner, float alpha,
                             const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sum_axis(__func__, outer, len, inner, x, y));
  const int64_t out_n = outer * inner;
  if (out_n == 0) return SL_OK;
  SL_CUDA_READY();
  /* alpha * (empty sum): 0, or NaN for the mean of nothing (alpha = inf) */
  if (len == 0) return sl_fill_device(__func__, out_n, (float)(alpha * 0.0), y);
  return sum_axis_run(__func__, outer, len, inner, alpha, x, y);
}

SL_API sl_status sl_sum_all(int64_t n, float alpha, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sum_all(__func__, n, x, y));
  SL_CUDA_READY();
  if (n == 0) return sl_fill_device(__func__, 1, (float)(alpha * 0.0), y);
  return sum_axis_run(__func__, 1, n, 1, alpha, x, y);
}

SL_API sl_status sl_sum_dims(int32_t ndim, const int64_t *shape, int32_t reduce_mask,
                             float alpha, const float *x, float *y) {
  SL_ENTER();
  int64_t numel = 0;
  SL_TRY(sl_check_shape(__func__, ndim, shape, &numel));
  int64_t y_numel = 0;
  SL_VALIDATE(sl_validate_sum_dims(__func__, ndim, shape, numel, reduce_mask, x, y, &y_numel));
  if (y_numel == 0) return SL_OK;
  SL_CUDA_READY();
  if (numel == 0) return sl_fill_device(__func__, y_numel, (float)(alpha * 0.0), y);
  /* x's contiguous strides, and y's (contiguous over the kept dimensions, 0 on reduced ones),
   * computed only once numel > 0, when no product of sizes can overflow (as csrc/cpu). */
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
  const int nd = l.ndim;
  int reduced[SL_MAX_DIMS];
  for (int d = 0; d < nd; d++) reduced[d] = l.stride[1][d] == 0 && l.shape[d] > 1;
  if (nd == 1 && reduced[0]) return sum_axis_run(__func__, 1, numel, 1, alpha, x, y);
  if (nd == 1) return sum_axis_run(__func__, 1, 1, numel, alpha, x, y);
  if (nd == 2 && !reduced[0]) return sum_axis_run(__func__, l.shape[0], l.shape[1], 1, alpha, x, y);
  if (nd == 2) return sum_axis_run(__func__, 1, l.shape[0], l.shape[1], alpha, x, y);
  if (nd == 3 && !reduced[0])
    return sum_axis_run(__func__, l.shape[0], l.shape[1], l.shape[2], alpha, x, y);
  dims_plan p;
  p.kept_n = p.red_n = 0;
  for (int d = 0; d < nd; d++) {
    if (l.stride[1][d] == 0) {
      p.red_shape[p.red_n] = l.shape[d];
      p.red_stride[p.red_n++] = l.stride[0][d];
    } else {
      p.kept_shape[p.kept_n] = l.shape[d];
      p.kept_stride[p.kept_n++] = l.stride[0][d];
    }
  }
  sum_dims_general_kernel<<<sl_blocks(y_numel, 256), 256>>>(p, y_numel, alpha, x, y);
  SL_LAUNCHED("sum_dims_general_kernel");
  return SL_OK;
}

} /* extern "C" */
