/*
 * fuzz_elementwise.c — the strided kernels (sl_binary, sl_binary_bwd, sl_strided_copy,
 * sl_sum_dims) with random shapes (0 to SL_MAX_DIMS + 1 dimensions, empty and size-1
 * dimensions) and random strides (broadcast 0, gaps, permutations, huge values on empty
 * tensors), plus sl_unary / sl_unary_bwd, sl_sum_axis and log-softmax on random lengths.
 * Operand buffers are exactly as long as the strides reach (or shorter, which must be
 * rejected); results are checked against naive index loops.
 */
#include "fuzz_common.h"

#define MAXD (SL_MAX_DIMS + 1)

/* Offset of flat output index q in an operand with these strides. */
static int64_t offset_of(int32_t ndim, const int64_t *shape, const int64_t *strides, int64_t q) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    off += (q % shape[d]) * strides[d];
    q /= shape[d];
  }
  return off;
}

/* Same float, or both NaN. */
static int same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

static void random_strides(fz_in *in, int32_t ndim, const int64_t *shape, int64_t numel,
                           int64_t *strides, int64_t *reach) {
  int64_t max_off = 0;
  for (int d = 0; d < ndim; d++) {
    strides[d] = fz_chance(in, 64) ? 0 : fz_range(in, 0, 7);
    /* Empty tensors accept any stride: include some that overflow when multiplied. */
    if (numel == 0 && fz_chance(in, 32)) strides[d] = (int64_t)1 << fz_range(in, 20, 62);
    if (numel > 0) max_off += (shape[d] - 1) * strides[d];
  }
  *reach = numel > 0 ? max_off + 1 : 0;
}

static void fuzz_strided(fz_in *in) {
  const int32_t ndim = (int32_t)fz_range(in, 0, fz_chance(in, 8) ? MAXD : 4);
  int64_t shape[MAXD], sa[MAXD], sb[MAXD];
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = fz_chance(in, 16) ? 0 : fz_chance(in, 64) ? 1 : fz_range(in, 1, 6);
    numel *= shape[d];
  }
  /* Huge dimensions next to an empty one: numel 0, but products of sizes overflow. */
  if (ndim >= 2 && fz_chance(in, 32)) {
    shape[0] = 0;
    numel = 0;
    for (int d = 1; d < ndim; d++)
      if (fz_chance(in, 128)) shape[d] = (int64_t)1 << fz_range(in, 20, 62);
  }
  int64_t ra, rb;
  random_strides(in, ndim, shape, numel, sa, &ra);
  random_strides(in, ndim, shape, numel, sb, &rb);
  const int short_a = numel > 0 && fz_chance(in, 12);
  const int64_t la = short_a ? ra - 1 : ra, lb = rb;
  float *a = FZ_NEW(float, la), *b = FZ_NEW(float, lb);
  for (int64_t i = 0; i < la; i++) a[i] = fz_any_float(in);
  for (int64_t i = 0; i < lb; i++) b[i] = fz_any_float(in);
  const int32_t op = fz_chance(in, 8) ? (int32_t)fz_range(in, -1, 5) : (int32_t)fz_range(in, 0, 3);
  const int bad_op = op < 0 || op > 3;
  const int bad_ndim = ndim > SL_MAX_DIMS;
  float *out = FZ_NEW(float, numel);
  fz_poison(out, numel);

  sl_status st = sl_binary(op, ndim, shape, a, la, sa, b, lb, sb, out);
  if (numel == 0) {
    /* Nothing to compute: an error for absurd strides is fine, a crash or a write is not. */
    if (st != SL_OK) FZ_CHECK_MESSAGE("sl_binary");
    float *dd = FZ_NEW(float, 0);
    (void)sl_binary_bwd(op, ndim, shape, a, la, sa, b, lb, sb, dd, dd, dd);
    free(dd);
  } else if (bad_op || bad_ndim || short_a) {
    FZ_CHECK(st != SL_OK, "sl_binary accepted op=%d ndim=%d short=%d", op, ndim, short_a);
    FZ_CHECK_MESSAGE("sl_binary");
    FZ_CHECK(fz_is_poison(out, numel), "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_binary: status %d", st);
    for (int64_t q = 0; q < numel; q++) {
      const float x = a[offset_of(ndim, shape, sa, q)], y = b[offset_of(ndim, shape, sb, q)];
      const float want = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
      FZ_CHECK(same(out[q], want), "out[%lld] = %g, expected %g", (long long)q, out[q], want);
    }
    /* Backward, in the output's shape. */
    float *dy = FZ_NEW(float, numel), *da = FZ_NEW(float, numel), *db = FZ_NEW(float, numel);
    for (int64_t q = 0; q < numel; q++) dy[q] = (float)(q % 7) - 3.0f;
    st = sl_binary_bwd(op, ndim, shape, a, la, sa, b, lb, sb, dy, da, db);
    FZ_CHECK(st == SL_OK, "sl_binary_bwd: status %d", st);
    for (int64_t q = 0; q < numel; q++) {
      const float x = a[offset_of(ndim, shape, sa, q)], y = b[offset_of(ndim, shape, sb, q)];
      const float g = dy[q];
      float wa, wb;
      switch (op) {
        case 0: wa = g; wb = g; break;
        case 1: wa = g; wb = -g; break;
        case 2: wa = g * y; wb = g * x; break;
        default: wa = g / y; wb = -g * ((x / y) / y); break;
      }
      FZ_CHECK(same(da[q], wa) && same(db[q], wb), "da/db[%lld]", (long long)q);
    }
    free(dy);
    free(da);
    free(db);
  }

  /* Strided copy of a (alpha 1 or 2). */
  const float alpha = fz_chance(in, 128) ? 1.0f : 2.0f;
  fz_poison(out, numel);
  st = sl_strided_copy(ndim, shape, alpha, a, la, sa, out);
  if (numel == 0) {
    if (st != SL_OK) FZ_CHECK_MESSAGE("sl_strided_copy");
  } else if (bad_ndim || short_a) {
    FZ_CHECK(st != SL_OK, "sl_strided_copy accepted ndim=%d short=%d", ndim, short_a);
    FZ_CHECK(fz_is_poison(out, numel), "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_strided_copy: status %d", st);
    for (int64_t q = 0; q < numel; q++)
      FZ_CHECK(same(out[q], alpha * a[offset_of(ndim, shape, sa, q)]), "copy[%lld]",
               (long long)q);
  }

  /* Sum over a random set of dimensions of a contiguous x. */
  const int32_t mask = (int32_t)fz_range(in, 0, (1 << (ndim < 8 ? ndim : 8)) - 1);
  int64_t y_numel = 1, y_shape[MAXD];
  for (int d = 0; d < ndim; d++) {
    y_shape[d] = (mask >> d) & 1 ? 1 : shape[d];
    if (y_numel >= 0 && __builtin_mul_overflow(y_numel, y_shape[d], &y_numel)) y_numel = -1;
  }
  if (!bad_ndim && numel <= 4096 && y_numel <= 4096 && y_numel >= 0) {
    float *x = FZ_NEW(float, numel), *y = FZ_NEW(float, y_numel);
    for (int64_t q = 0; q < numel; q++) x[q] = fz_small_float(in);
    st = sl_sum_dims(ndim, shape, mask, 1.0f, x, y);
    FZ_CHECK(st == SL_OK, "sl_sum_dims: status %d", st);
    double *want = FZ_NEW(double, y_numel);
    for (int64_t j = 0; j < y_numel; j++) want[j] = 0.0;
    for (int64_t q = 0; q < numel; q++) {
      int64_t rem = q, yq = 0, mul = 1;
      for (int d = ndim - 1; d >= 0; d--) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        yq += ((mask >> d) & 1 ? 0 : i) * mul;
        mul *= y_shape[d];
      }
      want[yq] += x[q];
    }
    for (int64_t j = 0; j < y_numel; j++)
      FZ_CHECK(fz_close(y[j], want[j], 4096.0 * 16.0), "sum_dims y[%lld] = %g, expected %g",
               (long long)j, y[j], want[j]);
    free(x);
    free(y);
    free(want);
  } else if (ndim >= 2 && numel == 0) {
    /* Empty input with possibly huge kept dimensions: an error or zeros, never a crash. */
    float y1[1];
    (void)sl_sum_dims(ndim, shape, mask, 1.0f, NULL, y_numel == 1 ? y1 : NULL);
  }
  free(a);
  free(b);
  free(out);
}

static void fuzz_rows(fz_in *in) {
  const int64_t rows = fz_range(in, 0, 9);
  const int32_t cols = (int32_t)fz_range(in, 0, fz_rare(in) ? 700 : 30);
  const int64_t n = rows * cols;
  float *x = FZ_NEW(float, n), *y = FZ_NEW(float, n), *dy = FZ_NEW(float, n),
        *dx = FZ_NEW(float, n);
  for (int64_t i = 0; i < n; i++) {
    x[i] = fz_chance(in, 240) ? fz_small_float(in) : fz_any_float(in);
    dy[i] = fz_small_float(in);
  }
  /* Unary ops: crash-free for every op and input; a few checked exactly. */
  const int32_t op = fz_chance(in, 8) ? (int32_t)fz_range(in, -2, 14) : (int32_t)fz_range(in, 0, 11);
  const float alpha = fz_any_float(in), beta = fz_small_float(in);
  sl_status st = sl_unary(op, n, alpha, beta, x, y);
  if (op < 0 || op > SL_UNARY_POW) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_unary accepted op %d", op);
    FZ_CHECK_MESSAGE("sl_unary");
  } else {
    FZ_CHECK(st == SL_OK, "sl_unary: status %d", st);
    for (int64_t i = 0; i < n; i++) {
      if (op == SL_UNARY_NEG) FZ_CHECK(same(y[i], -x[i]), "neg");
      if (op == SL_UNARY_RELU) FZ_CHECK(same(y[i], x[i] > 0.0f || isnan(x[i]) ? x[i] : 0.0f), "relu");
      if (op == SL_UNARY_ABS) FZ_CHECK(same(y[i], fabsf(x[i])), "abs");
    }
    st = sl_unary_bwd(op, n, alpha, beta, x, y, dy, dx);
    FZ_CHECK(st == SL_OK, "sl_unary_bwd: status %d", st);
    for (int64_t i = 0; i < n; i++)
      if (op == SL_UNARY_RELU)
        FZ_CHECK(same(dx[i], x[i] > 0.0f || isnan(x[i]) ? dy[i] : 0.0f), "relu bwd");
  }
  /* Sum over the middle axis of [outer, len, inner] views of x. */
  if (n > 0) {
    const int64_t outer = fz_chance(in, 128) ? 1 : rows, inner = fz_chance(in, 128) ? 1 : cols;
    const int64_t len = n / (outer * inner);
    float *s = FZ_NEW(float, outer * inner);
    for (int64_t i = 0; i < n; i++) dx[i] = fz_small_float(in);
    FZ_CHECK(sl_sum_axis(outer, len, inner, 1.0f, dx, s) == SL_OK, "sl_sum_axis");
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        double want = 0.0;
        for (int64_t j = 0; j < len; j++) want += dx[(o * len + j) * inner + i];
        FZ_CHECK(fz_close(s[o * inner + i], want, 16.0 * (double)len), "sum_axis");
      }
    free(s);
  }
  /* Log-softmax forward / backward. */
  for (int64_t i = 0; i < n; i++) x[i] = fz_small_float(in);
  st = sl_log_softmax_fwd(rows, cols, x, y);
  FZ_CHECK(st == SL_OK, "sl_log_softmax_fwd: status %d", st);
  for (int64_t r = 0; r < rows && cols > 0; r++) {
    double z = 0.0;
    for (int32_t j = 0; j < cols; j++) z += exp((double)y[r * cols + j]);
    FZ_CHECK(fabs(z - 1.0) < 1e-4, "row %lld of exp(log_softmax) sums to %g", (long long)r, z);
  }
  st = sl_log_softmax_bwd(rows, cols, y, dy, dx);
  FZ_CHECK(st == SL_OK, "sl_log_softmax_bwd: status %d", st);
  /* Bad sizes are rejected before anything is read. */
  FZ_CHECK(sl_log_softmax_fwd(-1, cols, x, y) == SL_E_INVALID_ARGUMENT, "negative rows");
  FZ_CHECK(sl_unary(0, -1, 0, 0, x, y) == SL_E_INVALID_ARGUMENT, "negative n");
  free(x);
  free(y);
  free(dy);
  free(dx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_threads(&in);
  if (fz_u8(&in) & 1) fuzz_strided(&in);
  else fuzz_rows(&in);
  return 0;
}
