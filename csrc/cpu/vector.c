/* vector.c — fill, axpy, copy: the level-1 operations autograd uses to accumulate gradients. */
#include <string.h>

#include "internal.h"

sl_status sl_fill(int64_t n, float value, float *x) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > 262144) schedule(static)
  for (int64_t i = 0; i < n; i++) x[i] = value;
  return SL_OK;
}

sl_status sl_axpy(int64_t n, float alpha, const float *x, float *y) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
  SL_CHECK_PTR(y);
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > 262144) schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
  return SL_OK;
}

sl_status sl_copy(int64_t n, const float *x, float *y) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
  SL_CHECK_PTR(y);
  memmove(y, x, (size_t)n * sizeof(float));
  return SL_OK;
}
