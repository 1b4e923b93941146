/*
 * test_nn.c — LayerNorm, cross-entropy, MSE, dropout and scale/shift kernels against naive
 * double-precision references, plus argument validation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselinear.h"

#include "expect.h"

static uint64_t rng_state = 0x12345678abcdefull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static void fill(float *a, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}

static double max_rel_err(const float *got, const double *want, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(got[i] - want[i]) / (1e-3 + fabs(want[i]));
    if (!(e <= worst)) worst = e; /* NaN propagates */
  }
  return worst;
}

/* Double reference of LayerNorm: the output ry and, for the gradient dy, rdx, rdg and rdb. */
static void layer_norm_reference(int64_t rows, int32_t n, int affine, const float *x,
                                 const float *dy, const float *gamma, const float *beta,
                                 float eps, double *ry, double *rdx, double *rdg, double *rdb) {
  for (int32_t j = 0; j < n; j++) rdg[j] = rdb[j] = 0;
  for (int64_t r = 0; r < rows; r++) {
    double mu = 0, var = 0;
    for (int32_t j = 0; j < n; j++) mu += x[r * n + j];
    mu /= n;
    for (int32_t j = 0; j < n; j++) var += (x[r * n + j] - mu) * (x[r * n + j] - mu);
    var /= n;
    double rs = 1 / sqrt(var + eps);
    double sg = 0, sgx = 0;
    for (int32_t j = 0; j < n; j++) {
      double xh = (x[r * n + j] - mu) * rs;
      double ga = affine ? gamma[j] : 1, be = affine ? beta[j] : 0;
      ry[r * n + j] = xh * ga + be;
      double g = dy[r * n + j] * ga;
      sg += g;
      sgx += g * xh;
      rdg[j] += dy[r * n + j] * xh;
      rdb[j] += dy[r * n + j];
    }
    for (int32_t j = 0; j < n; j++) {
      double xh = (x[r * n + j] - mu) * rs;
      double ga = affine ? gamma[j] : 1;
      rdx[r * n + j] = rs * (dy[r * n + j] * ga - sg / n - xh * sgx / n);
    }
  }
}

/* LayerNorm against a double reference; with relu, the fused LayerNorm + ReLU, whose backward
 * must also equal, bit for bit, the plain backward of dy masked by the forward's output. */
static void test_layer_norm(int64_t rows, int32_t n, int affine, int relu) {
  int64_t total = rows * n;
  float *x = malloc(sizeof(float) * (total + 1)), *y = malloc(sizeof(float) * (total + 1));
  float *dy = malloc(sizeof(float) * (total + 1)), *dx = malloc(sizeof(float) * (total + 1));
  float *gamma = malloc(sizeof(float) * n), *beta = malloc(sizeof(float) * n);
  float *mean = malloc(sizeof(float) * (rows + 1)), *rstd = malloc(sizeof(float) * (rows + 1));
  float *dgamma = malloc(sizeof(float) * n), *dbeta = malloc(sizeof(float) * n);
  double *ry = malloc(sizeof(double) * (total + 1)), *rdx = malloc(sizeof(double) * (total + 1));
  double *rdg = calloc(n, sizeof(double)), *rdb = calloc(n, sizeof(double));
  fill(x, total, -3, 5);
  fill(dy, total, -1, 1);
  fill(gamma, n, 0.5, 1.5);
  fill(beta, n, -0.5, 0.5);
  const float eps = 1e-5f;
  layer_norm_reference(rows, n, affine, x, dy, gamma, beta, eps, ry, rdx, rdg, rdb);
  const float *g_or_null = affine ? gamma : NULL, *b_or_null = affine ? beta : NULL;
  sl_status st = sl_layer_norm_fwd(rows, n, eps, x, g_or_null, b_or_null, relu, y, mean, rstd);
  EXPECT(st == SL_OK, "layer_norm_fwd: %s", sl_last_error());
  if (relu) {
    /* The reference of the ReLU's output and of the gradient that passes it: where the
     * forward's (float) output is positive. */
    for (int64_t i = 0; i < total; i++) ry[i] = ry[i] > 0 ? ry[i] : 0;
    float *y_plain = malloc(sizeof(float) * total), *dy_masked = malloc(sizeof(float) * total);
    float *dx_plain = malloc(sizeof(float) * total);
    float *dg_plain = malloc(sizeof(float) * n), *db_plain = malloc(sizeof(float) * n);
    sl_layer_norm_fwd(rows, n, eps, x, g_or_null, b_or_null, 0, y_plain, NULL, NULL);
    int same_y = 1;
    for (int64_t i = 0; i < total; i++) {
      same_y &= y[i] == (y_plain[i] > 0 ? y_plain[i] : 0.0f);
      dy_masked[i] = y_plain[i] > 0 || y_plain[i] != y_plain[i] ? dy[i] : 0.0f;
    }
    EXPECT(same_y, "fused relu forward == relu(plain forward), rows=%lld n=%d", (long long)rows,
           n);
    sl_layer_norm_bwd(rows, n, x, mean, rstd, g_or_null, b_or_null, 0, dy_masked, dx_plain,
                      dg_plain, db_plain);
    st = sl_layer_norm_bwd(rows, n, x, mean, rstd, g_or_null, b_or_null, 1, dy, dx, dgamma,
                           dbeta);
    EXPECT(st == SL_OK, "layer_norm_bwd relu: %s", sl_last_error());
    EXPECT(memcmp(dx, dx_plain, sizeof(float) * total) == 0 &&
               memcmp(dgamma, dg_plain, sizeof(float) * n) == 0 &&
               memcmp(dbeta, db_plain, sizeof(float) * n) == 0,
           "fused relu backward == plain backward of the masked dy, rows=%lld n=%d",
           (long long)rows, n);
    /* Only dbeta asked for: it comes from the masked pass too. */
    sl_layer_norm_bwd(rows, n, x, mean, rstd, g_or_null, b_or_null, 1, dy, NULL, NULL, dg_plain);
    EXPECT(memcmp(dbeta, dg_plain, sizeof(float) * n) == 0, "relu dbeta alone");
    /* The reference gradients are those of the masked dy. */
    double *ry_masked = malloc(sizeof(double) * total);
    layer_norm_reference(rows, n, affine, x, dy_masked, gamma, beta, eps, ry_masked, rdx, rdg,
                         rdb);
    free(ry_masked), free(y_plain), free(dy_masked), free(dx_plain), free(dg_plain), free(db_plain);
  } else {
    st = sl_layer_norm_bwd(rows, n, x, mean, rstd, g_or_null, b_or_null, 0, dy, dx,
                           affine ? dgamma : NULL, affine ? dbeta : NULL);
    EXPECT(st == SL_OK, "layer_norm_bwd: %s", sl_last_error());
  }
  EXPECT(max_rel_err(y, ry, total) < 1e-4, "layer_norm_fwd rows=%lld n=%d relu=%d: err %g",
         (long long)rows, n, relu, max_rel_err(y, ry, total));
  /* dx sums to ~0 per row, so compare with an absolute tolerance scaled by rstd. */
  double worst = 0;
  for (int64_t i = 0; i < total; i++) {
    double e = fabs(dx[i] - rdx[i]);
    if (!(e <= worst)) worst = e;
  }
  EXPECT(worst < 1e-3, "layer_norm_bwd dx rows=%lld n=%d: abs err %g", (long long)rows, n, worst);
  if (affine) {
    EXPECT(max_rel_err(dgamma, rdg, n) < 1e-3, "layer_norm_bwd dgamma: err %g",
           max_rel_err(dgamma, rdg, n));
    EXPECT(max_rel_err(dbeta, rdb, n) < 1e-3, "layer_norm_bwd dbeta: err %g",
           max_rel_err(dbeta, rdb, n));
  }
  free(x), free(y), free(dy), free(dx), free(gamma), free(beta), free(mean), free(rstd);
  free(dgamma), free(dbeta), free(ry), free(rdx), free(rdg), free(rdb);
}

/* Equal floats, or both NaN (NaN payloads may differ between two orders of the same sums). */
static int same_or_both_nan(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!(a[i] == b[i] || (a[i] != a[i] && b[i] != b[i]))) return 0;
  return 1;
}

/* The fused ReLU on non-finite values is sl_unary's ReLU after the plain LayerNorm: a NaN output
 * stays NaN (as PyTorch's relu) and its gradient passes, -inf is cut, +inf passes. Poisoned:
 * row 0 holds a NaN input (the whole row's output is NaN), row 1 a +inf (NaN too: inf - inf),
 * gamma[1] is NaN (column 1 NaN in every row), beta[3] = -inf and beta[4] = +inf. */
static void test_layer_norm_relu_nonfinite(int64_t rows, int32_t n) {
  const int64_t total = rows * n;
  float *x = malloc(sizeof(float) * total), *dy = malloc(sizeof(float) * total);
  float *y = malloc(sizeof(float) * total), *y_plain = malloc(sizeof(float) * total);
  float *y_relu = malloc(sizeof(float) * total), *dy_masked = malloc(sizeof(float) * total);
  float *dx = malloc(sizeof(float) * total), *dx_plain = malloc(sizeof(float) * total);
  float *gamma = malloc(sizeof(float) * n), *beta = malloc(sizeof(float) * n);
  float *mean = malloc(sizeof(float) * rows), *rstd = malloc(sizeof(float) * rows);
  float *dg = malloc(sizeof(float) * n), *db = malloc(sizeof(float) * n);
  float *dg_plain = malloc(sizeof(float) * n), *db_plain = malloc(sizeof(float) * n);
  fill(x, total, -3, 5);
  fill(dy, total, -1, 1);
  fill(gamma, n, 0.5, 1.5);
  fill(beta, n, -0.5, 0.5);
  x[n / 2] = NAN;
  if (rows > 1) x[n + n / 3] = INFINITY;
  gamma[1] = NAN;
  beta[3] = -INFINITY;
  beta[4] = INFINITY;
  EXPECT(sl_layer_norm_fwd(rows, n, 1e-5f, x, gamma, beta, 1, y, mean, rstd) == SL_OK,
         "fused fwd: %s", sl_last_error());
  sl_layer_norm_fwd(rows, n, 1e-5f, x, gamma, beta, 0, y_plain, NULL, NULL);
  sl_unary(SL_UNARY_RELU, total, 0, 0, y_plain, y_relu);
  EXPECT(same_or_both_nan(y, y_relu, total), "fused relu forward == relu(plain), non-finite, "
         "rows=%lld n=%d", (long long)rows, n);
  EXPECT(y[0] != y[0] && y[n + 2] != y[n + 2] && (rows < 3 || y[2 * n + 1] != y[2 * n + 1]),
         "NaN outputs propagate through the fused ReLU");
  EXPECT(rows < 3 || (y[2 * n + 3] == 0.0f && y[2 * n + 4] == INFINITY),
         "-inf cut, +inf passed: %g %g", rows < 3 ? 0.0 : y[2 * n + 3], rows < 3 ? 0.0 : y[2 * n + 4]);
  for (int64_t i = 0; i < total; i++)
    dy_masked[i] = y_plain[i] > 0 || y_plain[i] != y_plain[i] ? dy[i] : 0.0f;
  sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, 0, dy_masked, dx_plain, dg_plain,
                    db_plain);
  EXPECT(sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, 1, dy, dx, dg, db) == SL_OK,
         "fused bwd: %s", sl_last_error());
  EXPECT(same_or_both_nan(dx, dx_plain, total) && same_or_both_nan(dg, dg_plain, n) &&
             same_or_both_nan(db, db_plain, n),
         "fused relu backward == plain backward of the masked dy, non-finite, rows=%lld n=%d",
         (long long)rows, n);
  free(x), free(dy), free(y), free(y_plain), free(y_relu), free(dy_masked), free(dx);
  free(dx_plain), free(gamma), free(beta), free(mean), free(rstd), free(dg), free(db);
  free(dg_plain), free(db_plain);
}

/* The column-split backward (dx with dgamma/dbeta, wide rows) against the calls that take the
 * other paths: dx alone (one thread per row) and dgamma/dbeta alone (column sums), bit for bit,
 * at 1, 2 and 3 threads. 5 rows (a last step of one row) of 20011 features (a last column block
 * of 43). */
static void test_layer_norm_bwd_paths(int relu) {
  const int64_t rows = 5;
  const int32_t n = 20011;
  const int64_t total = rows * n;
  float *x = malloc(sizeof(float) * total), *dy = malloc(sizeof(float) * total);
  float *y = malloc(sizeof(float) * total), *dx_row = malloc(sizeof(float) * total);
  float *dx = malloc(sizeof(float) * total), *gamma = malloc(sizeof(float) * n);
  float *beta = malloc(sizeof(float) * n), *mean = malloc(sizeof(float) * rows);
  float *rstd = malloc(sizeof(float) * rows), *dg = malloc(sizeof(float) * n);
  float *db = malloc(sizeof(float) * n), *dg_sums = malloc(sizeof(float) * n);
  float *db_sums = malloc(sizeof(float) * n);
  fill(x, total, -3, 5);
  fill(dy, total, -1, 1);
  fill(gamma, n, 0.5, 1.5);
  fill(beta, n, -0.5, 0.5);
  const int32_t threads_before = sl_get_num_threads();
  sl_set_num_threads(1);
  sl_layer_norm_fwd(rows, n, 1e-5f, x, gamma, beta, relu, y, mean, rstd);
  EXPECT(sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, dx_row, NULL, NULL) ==
                 SL_OK &&
             sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, NULL, dg_sums,
                               db_sums) == SL_OK,
         "layer_norm_bwd, one path alone: %s", sl_last_error());
  for (int32_t t = 1; t <= 3; t++) {
    sl_set_num_threads(t);
    EXPECT(sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, dx, dg, db) == SL_OK,
           "layer_norm_bwd, both: %s", sl_last_error());
    EXPECT(memcmp(dx, dx_row, sizeof(float) * total) == 0 &&
               memcmp(dg, dg_sums, sizeof(float) * n) == 0 &&
               memcmp(db, db_sums, sizeof(float) * n) == 0,
           "layer_norm_bwd with parameter gradients == its separate calls, relu=%d, %d threads",
           relu, t);
  }
  sl_set_num_threads(threads_before);
  free(x), free(dy), free(y), free(dx_row), free(dx), free(gamma), free(beta), free(mean);
  free(rstd), free(dg), free(db), free(dg_sums), free(db_sums);
}

static void test_layer_norm_errors(void) {
  float x[4] = {1, 2, 3, 4}, y[4];
  EXPECT(sl_layer_norm_fwd(1, 0, 1e-5f, x, NULL, NULL, 0, y, NULL, NULL) == SL_E_INVALID_ARGUMENT,
         "n = 0 must fail");
  EXPECT(strstr(sl_last_error(), "sl_layer_norm_fwd") != NULL, "message names the function: %s",
         sl_last_error());
  EXPECT(sl_layer_norm_fwd(1, 4, -1.0f, x, NULL, NULL, 0, y, NULL, NULL) == SL_E_INVALID_ARGUMENT,
         "negative eps must fail");
  EXPECT(sl_layer_norm_fwd(1, 4, 1e-5f, NULL, NULL, NULL, 0, y, NULL, NULL) == SL_E_NULL_POINTER,
         "null x must fail");
  EXPECT(sl_layer_norm_bwd(1, 4, x, NULL, NULL, NULL, NULL, 0, x, y, NULL, NULL) ==
             SL_E_NULL_POINTER,
         "null mean must fail");
  EXPECT(sl_layer_norm_fwd(1, 4, 1e-5f, x, NULL, NULL, 2, y, NULL, NULL) == SL_E_INVALID_ARGUMENT,
         "relu 2 must fail");
  EXPECT(strstr(sl_last_error(), "relu must be 0 or 1, got 2") != NULL, "message: %s",
         sl_last_error());
  EXPECT(sl_layer_norm_bwd(1, 4, x, x, x, NULL, NULL, -1, x, y, NULL, NULL) ==
             SL_E_INVALID_ARGUMENT,
         "relu -1 must fail");
  /* A constant row normalises to 0 (no NaN thanks to eps). */
  float c[3] = {2, 2, 2}, out[3];
  EXPECT(sl_layer_norm_fwd(1, 3, 1e-5f, c, NULL, NULL, 0, out, NULL, NULL) == SL_OK, "constant row");
  EXPECT(out[0] == 0 && out[1] == 0 && out[2] == 0, "constant row normalises to 0");
}

static void test_cross_entropy(int32_t batch, int32_t classes) {
  float *z = malloc(sizeof(float) * batch * classes + 4);
  float *dz = malloc(sizeof(float) * batch * classes + 4);
  int32_t *labels = malloc(sizeof(int32_t) * batch + 4);
  float *loss = malloc(sizeof(float) * batch + 4), *lse = malloc(sizeof(float) * batch + 4);
  float *g = malloc(sizeof(float) * batch + 4);
  fill(z, (int64_t)batch * classes, -20, 20);
  for (int32_t b = 0; b < batch; b++) labels[b] = (int32_t)(urand() * classes);
  double *ref = malloc(sizeof(double) * batch + 8), total = 0;
  double *rdz = malloc(sizeof(double) * batch * classes + 8);
  fill(g, batch, 0.5, 2);
  for (int32_t b = 0; b < batch; b++) {
    double mx = -INFINITY, s = 0;
    for (int32_t c = 0; c < classes; c++) mx = fmax(mx, z[b * classes + c]);
    for (int32_t c = 0; c < classes; c++) s += exp(z[b * classes + c] - mx);
    ref[b] = mx + log(s) - z[b * classes + labels[b]];
    total += ref[b];
    for (int32_t c = 0; c < classes; c++) {
      double p = exp(z[b * classes + c] - mx) / s;
      rdz[b * classes + c] = g[b] * (p - (c == labels[b]));
    }
  }
  EXPECT(sl_cross_entropy_fwd(batch, classes, z, labels, SL_REDUCTION_NONE, loss, lse) == SL_OK,
         "ce none: %s", sl_last_error());
  EXPECT(max_rel_err(loss, ref, batch) < 1e-5, "ce none: err %g", max_rel_err(loss, ref, batch));
  float m;
  EXPECT(sl_cross_entropy_fwd(batch, classes, z, labels, SL_REDUCTION_MEAN, &m, NULL) == SL_OK,
         "ce mean");
  double want = total / batch;
  EXPECT(max_rel_err(&m, &want, 1) < 1e-5, "ce mean %g vs %g", m, want);
  EXPECT(sl_cross_entropy_fwd(batch, classes, z, labels, SL_REDUCTION_SUM, &m, NULL) == SL_OK,
         "ce sum");
  EXPECT(max_rel_err(&m, &total, 1) < 1e-5, "ce sum %g vs %g", m, total);
  /* Per-sample gradients (reduction none). */
  EXPECT(sl_cross_entropy_bwd(batch, classes, z, labels, lse, g, 1, 1.0f, dz) == SL_OK,
         "ce bwd: %s", sl_last_error());
  double worst = 0;
  for (int64_t i = 0; i < (int64_t)batch * classes; i++) worst = fmax(worst, fabs(dz[i] - rdz[i]));
  EXPECT(worst < 1e-5, "ce bwd none: abs err %g", worst);
  /* Mean: one upstream gradient, scale 1 / batch. */
  float one = 3.0f;
  EXPECT(sl_cross_entropy_bwd(batch, classes, z, labels, lse, &one, 0, 1.0f / batch, dz) == SL_OK,
         "ce bwd mean");
  worst = 0;
  for (int32_t b = 0; b < batch; b++)
    for (int32_t c = 0; c < classes; c++)
      worst = fmax(worst, fabs(dz[b * classes + c] - rdz[b * classes + c] / g[b] * 3.0 / batch));
  EXPECT(worst < 1e-6, "ce bwd mean: abs err %g", worst);
  free(z), free(dz), free(labels), free(loss), free(lse), free(g), free(ref), free(rdz);
}

static void test_cross_entropy_errors(void) {
  float z[6] = {0, 1, 2, 3, 4, 5}, loss[2] = {-7, -7}, lse[2];
  int32_t bad[2] = {1, 3};
  EXPECT(sl_cross_entropy_fwd(2, 3, z, bad, SL_REDUCTION_NONE, loss, lse) ==
             SL_E_INDEX_OUT_OF_RANGE,
         "label 3 of 3 classes must fail");
  EXPECT(strstr(sl_last_error(), "labels[1] = 3 is outside [0, 3)") != NULL, "message: %s",
         sl_last_error());
  EXPECT(loss[0] == -7 && loss[1] == -7, "nothing written on a bad label");
  int32_t neg[2] = {-1, 0};
  EXPECT(sl_cross_entropy_fwd(2, 3, z, neg, SL_REDUCTION_MEAN, loss, NULL) ==
             SL_E_INDEX_OUT_OF_RANGE,
         "negative label must fail");
  int32_t ok[2] = {0, 2};
  EXPECT(sl_cross_entropy_fwd(2, 3, z, ok, 7, loss, NULL) == SL_E_INVALID_ARGUMENT,
         "bad reduction must fail");
  EXPECT(sl_cross_entropy_bwd(2, 3, z, ok, lse, loss, 2, 1.0f, z) == SL_E_INVALID_ARGUMENT,
         "bad stride must fail");
  float m = 0;
  EXPECT(sl_cross_entropy_fwd(0, 3, NULL, NULL, SL_REDUCTION_MEAN, &m, NULL) == SL_OK &&
             isnan(m),
         "mean over an empty batch is NaN");
  /* Large logits stay finite (log-sum-exp is shifted by the row max). */
  float big[2] = {1000, 0};
  int32_t zero[1] = {0};
  EXPECT(sl_cross_entropy_fwd(1, 2, big, zero, SL_REDUCTION_SUM, &m, NULL) == SL_OK && m == 0,
         "large logits: loss %g", m);
}

static void test_mse(int64_t n) {
  float *p = malloc(sizeof(float) * n + 4), *t = malloc(sizeof(float) * n + 4);
  float *l = malloc(sizeof(float) * n + 4), *dp = malloc(sizeof(float) * n + 4);
  float *dt = malloc(sizeof(float) * n + 4);
  fill(p, n, -2, 2);
  fill(t, n, -2, 2);
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
  float m;
  EXPECT(sl_mse_fwd(n, p, t, SL_REDUCTION_SUM, &m) == SL_OK, "mse sum");
  EXPECT(max_rel_err(&m, &total, 1) < 1e-5, "mse sum %g vs %g", m, total);
  double mean = total / n;
  EXPECT(sl_mse_fwd(n, p, t, SL_REDUCTION_MEAN, &m) == SL_OK, "mse mean");
  EXPECT(max_rel_err(&m, &mean, 1) < 1e-5, "mse mean %g vs %g", m, mean);
  EXPECT(sl_mse_fwd(n, p, t, SL_REDUCTION_NONE, l) == SL_OK, "mse none");
  float g = 0.5f;
  EXPECT(sl_mse_bwd(n, p, t, &g, 0, 1.0f / n, dp, dt) == SL_OK, "mse bwd");
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)p[i] - t[i];
    worst = fmax(worst, fabs(l[i] - d * d));
    worst = fmax(worst, fabs(dp[i] - 2 * 0.5 * d / n));
    worst = fmax(worst, fabs(dt[i] + 2 * 0.5 * d / n));
  }
  EXPECT(worst < 1e-5, "mse none/bwd: abs err %g", worst);
  EXPECT(sl_mse_bwd(n, p, t, &g, 0, 1.0f, NULL, NULL) == SL_E_INVALID_ARGUMENT,
         "both outputs null must fail");
  free(p), free(t), free(l), free(dp), free(dt);
}

static void test_dropout(void) {
  const int64_t n = 200000;
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
  float *y2 = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
  const double p = 0.3;
  const float scale = (float)(1.0 / (1.0 - p)); /* PyTorch's: from the double p, rounded once */
  EXPECT(sl_dropout_fwd(n, p, 42, x, y) == SL_OK, "dropout fwd");
  int64_t dropped = 0, bad = 0;
  for (int64_t i = 0; i < n; i++) {
    if (y[i] == 0) dropped++;
    else if (y[i] != x[i] * scale) bad++;
  }
  double frac = (double)dropped / n;
  EXPECT(fabs(frac - p) < 0.01, "dropped fraction %g, expected about %g", frac, p);
  EXPECT(bad == 0, "%lld kept values not scaled by 1 / (1 - p)", (long long)bad);
  /* Same seed: same mask; backward applies it to dy. */
  EXPECT(sl_dropout_fwd(n, p, 42, x, y2) == SL_OK && memcmp(y, y2, sizeof(float) * n) == 0,
         "same seed gives the same output");
  EXPECT(sl_dropout_bwd(n, p, 42, x, dx) == SL_OK && memcmp(y, dx, sizeof(float) * n) == 0,
         "backward uses the forward's mask");
  EXPECT(sl_dropout_fwd(n, p, 43, x, y2) == SL_OK && memcmp(y, y2, sizeof(float) * n) != 0,
         "another seed gives another mask");
  EXPECT(sl_dropout_fwd(n, 0.0, 1, x, y2) == SL_OK && memcmp(x, y2, sizeof(float) * n) == 0,
         "p = 0 is the identity");
  EXPECT(sl_dropout_fwd(n, 1.0, 1, x, y2) == SL_OK, "p = 1");
  int64_t nonzero = 0;
  for (int64_t i = 0; i < n; i++) nonzero += y2[i] != 0;
  EXPECT(nonzero == 0, "p = 1 drops everything (%lld left)", (long long)nonzero);
  EXPECT(sl_dropout_fwd(n, 1.5, 1, x, y2) == SL_E_INVALID_ARGUMENT, "p > 1 must fail");
  EXPECT(sl_dropout_fwd(n, NAN, 1, x, y2) == SL_E_INVALID_ARGUMENT, "NaN p must fail");
  free(x), free(y), free(y2), free(dx);
}

static void test_scale_shift(int64_t rows, int32_t n) {
  int64_t total = rows * n;
  float *x = malloc(sizeof(float) * total + 4), *y = malloc(sizeof(float) * total + 4);
  float *dy = malloc(sizeof(float) * total + 4), *dx = malloc(sizeof(float) * total + 4);
  float *s = malloc(sizeof(float) * n), *t = malloc(sizeof(float) * n);
  float *ds = malloc(sizeof(float) * n), *dt = malloc(sizeof(float) * n);
  double *rds = calloc(n, sizeof(double)), *rdt = calloc(n, sizeof(double));
  fill(x, total, -1, 1);
  fill(dy, total, -1, 1);
  fill(s, n, -2, 2);
  fill(t, n, -2, 2);
  EXPECT(sl_scale_shift_fwd(rows, n, x, s, t, y) == SL_OK, "scale_shift fwd");
  EXPECT(sl_scale_shift_bwd(rows, n, x, s, dy, dx, ds, dt) == SL_OK, "scale_shift bwd");
  double worst = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int32_t j = 0; j < n; j++) {
      int64_t i = r * n + j;
      worst = fmax(worst, fabs(y[i] - ((double)x[i] * s[j] + t[j])));
      worst = fmax(worst, fabs(dx[i] - (double)dy[i] * s[j]));
      rds[j] += (double)dy[i] * x[i];
      rdt[j] += dy[i];
    }
  EXPECT(worst < 1e-5, "scale_shift fwd/dx: abs err %g", worst);
  EXPECT(max_rel_err(ds, rds, n) < 1e-4, "dscale err %g", max_rel_err(ds, rds, n));
  EXPECT(max_rel_err(dt, rdt, n) < 1e-4, "dshift err %g", max_rel_err(dt, rdt, n));
  free(x), free(y), free(dy), free(dx), free(s), free(t), free(ds), free(dt), free(rds), free(rdt);
}

int main(void) {
  for (int relu = 0; relu <= 1; relu++) {
    test_layer_norm(1, 1, 1, relu);
    test_layer_norm(3, 7, 1, relu);
    test_layer_norm(64, 2000, 1, relu);
    test_layer_norm(5, 1500, 0, relu);
    test_layer_norm(4, 50000, 1, relu);
    test_layer_norm(7, 20011, 1, relu); /* row steps and column blocks with remainders */
  }
  test_layer_norm_relu_nonfinite(3, 7);
  test_layer_norm_relu_nonfinite(4, 50000); /* the column-split backward */
  test_layer_norm_bwd_paths(0);
  test_layer_norm_bwd_paths(1);
  test_layer_norm_errors();
  test_cross_entropy(1, 1);
  test_cross_entropy(64, 10);
  test_cross_entropy(300, 1000);
  test_cross_entropy_errors();
  test_mse(1);
  test_mse(1000);
  test_mse(300000);
  test_dropout();
  test_scale_shift(1, 1);
  test_scale_shift(64, 7840);
  test_scale_shift(3, 1025);
  if (failures) {
    fprintf(stderr, "test_nn: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_nn: ok\n");
  return 0;
}
