/*
 * fuzz_optim.c — the optimizer steps (sl_sgd_step, sl_adam_step) and the level-1 vector kernels
 * autograd accumulates with (sl_fill, sl_axpy, sl_copy, sl_sum_all), on random lengths (some
 * above the size where they go parallel), hyperparameters (valid and not) and thread counts.
 * Valid calls are compared with double references of the PyTorch formulas in the ABI text, and
 * the steps with the same call at another thread count, bit for bit; rejected calls must name
 * the function and leave every buffer untouched. The first byte picks the kernel.
 */
#include "fuzz_common.h"

/* A length: usually short, rarely above the kernels' parallel threshold (262,144). */
static int64_t fuzz_length(fz_in *in) {
  if (fz_chance(in, 4)) return -1 - fz_range(in, 0, 3);
  return fz_rare(in) ? fz_range(in, 262145, 300000) : fz_range(in, 0, 70);
}

/* A new array of n floats from the input (fz_fill_floats). */
static float *filled(fz_in *in, int64_t n, int any) {
  float *x = FZ_NEW(float, n > 0 ? n : 0);
  fz_fill_floats(in, x, n, any);
  return x;
}

static float *dup(const float *x, int64_t n) {
  float *c = FZ_NEW(float, n > 0 ? n : 0);
  if (n > 0) memcpy(c, x, (size_t)n * sizeof(float));
  return c;
}

/* ------------------------------------------------------------------------ SGD ---- */

static void fuzz_sgd(fz_in *in) {
  static const float lrs[] = {0.0f, 0.01f, 0.1f, 1.0f, -0.1f, INFINITY, NAN};
  static const float moms[] = {0.0f, 0.5f, 0.9f, 0.99f, -0.5f, INFINITY};
  static const float damps[] = {0.0f, 0.1f, 0.5f, -0.5f, NAN};
  static const float wds[] = {0.0f, 1e-4f, 0.1f, -0.1f, NAN};
  const int64_t n = fuzz_length(in);
  const float lr = FZ_PICK(in, lrs, 4, 7);
  const float mom = FZ_PICK(in, moms, 4, 6);
  const float damp = FZ_PICK(in, damps, 4, 5);
  const float wd = FZ_PICK(in, wds, 3, 5);
  const int32_t nesterov = fz_chance(in, 8) ? 2 : fz_u8(in) & 1;
  const int32_t init = fz_chance(in, 8) ? -1 : fz_u8(in) & 1;
  const int any = fz_chance(in, 16);
  const int bad = n < 0 || !(isfinite(lr) && lr >= 0) || !(isfinite(mom) && mom >= 0) ||
                  !isfinite(damp) || !(isfinite(wd) && wd >= 0) ||
                  (nesterov != 0 && nesterov != 1) || (init != 0 && init != 1) ||
                  (nesterov == 1 && !(mom > 0 && damp == 0));
  const int64_t len = n > 0 ? n : 0;
  float *p = filled(in, len, any), *g = filled(in, len, any), *buf = filled(in, len, any);
  float *p0 = dup(p, len), *buf0 = dup(buf, len);
  sl_status st = sl_sgd_step(n, lr, mom, damp, wd, nesterov, init, p, g, mom != 0 ? buf : NULL);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT,
             "sl_sgd_step accepted n=%lld lr=%g momentum=%g dampening=%g wd=%g nesterov=%d init=%d",
             (long long)n, lr, mom, damp, wd, nesterov, init);
    FZ_CHECK_MESSAGE("sl_sgd_step");
    FZ_CHECK(fz_same_bits(p, p0, len) && fz_same_bits(buf, buf0, len), "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_sgd_step: status %d", st);
    if (mom == 0)
      FZ_CHECK(fz_same_bits(buf, buf0, len), "momentum buffer written without momentum");
    for (int64_t i = 0; i < len && !any; i++) {
      const double d = (double)g[i] + (double)wd * p0[i];
      const double sd = fabs(g[i]) + fabs((double)wd * p0[i]);
      double step = d, s_step = sd;
      if (mom != 0) {
        const double b = init ? d : (double)mom * buf0[i] + (1.0 - (double)damp) * d;
        const double sb = init ? sd : fabs((double)mom * buf0[i]) + fabs(1.0 - (double)damp) * sd;
        FZ_CHECK(fz_near(buf[i], b, sb), "momentum_buf[%lld] = %.9g, expected %.9g", (long long)i,
                 buf[i], b);
        step = nesterov ? d + (double)mom * b : b;
        s_step = nesterov ? sd + fabs((double)mom) * sb : sb;
      }
      const double want = p0[i] - (double)lr * step;
      FZ_CHECK(fz_near(p[i], want, fabs(p0[i]) + lr * s_step), "param[%lld] = %.9g, expected %.9g",
               (long long)i, p[i], want);
    }
    /* Each element is its own computation: the thread count changes nothing. */
    float *p2 = dup(p0, len), *buf2 = dup(buf0, len);
    const int32_t threads = fz_switch_threads();
    st = sl_sgd_step(n, lr, mom, damp, wd, nesterov, init, p2, g, mom != 0 ? buf2 : NULL);
    sl_set_num_threads(threads);
    FZ_CHECK(st == SL_OK && fz_same_bits(p, p2, len) && fz_same_bits(buf, buf2, len),
             "sl_sgd_step depends on the thread count");
    free(p2);
    free(buf2);
  }
  free(p);
  free(g);
  free(buf);
  free(p0);
  free(buf0);
}

/* ----------------------------------------------------------------------- Adam ---- */

static void fuzz_adam(fz_in *in) {
  static const float lrs[] = {1e-3f, 0.1f, 0.0f, 1.0f, -1.0f, NAN};
  static const float betas[] = {0.9f, 0.999f, 0.0f, 0.5f, 1.0f, -0.1f, NAN};
  static const float epss[] = {1e-8f, 1e-3f, 0.0f, 0.5f, -1.0f, INFINITY};
  static const float wds[] = {0.0f, 0.01f, 0.5f, -0.1f, NAN};
  static const int64_t steps[] = {1, 2, 10, 1000, 0, -3};
  const int64_t n = fuzz_length(in);
  const float lr = FZ_PICK(in, lrs, 4, 6);
  const float b1 = FZ_PICK(in, betas, 4, 7);
  const float b2 = FZ_PICK(in, betas, 4, 7);
  const float eps = FZ_PICK(in, epss, 4, 6);
  const float wd = FZ_PICK(in, wds, 3, 5);
  const int32_t decoupled = fz_chance(in, 8) ? 2 : fz_u8(in) & 1;
  const int32_t amsgrad = fz_chance(in, 8) ? -1 : fz_u8(in) & 1;
  const int64_t step = FZ_PICK(in, steps, 4, 6);
  const int any = fz_chance(in, 16);
  const int bad = n < 0 || !(isfinite(lr) && lr >= 0) || !(b1 >= 0 && b1 < 1) ||
                  !(b2 >= 0 && b2 < 1) || !(isfinite(eps) && eps >= 0) ||
                  !(isfinite(wd) && wd >= 0) || (decoupled != 0 && decoupled != 1) ||
                  (amsgrad != 0 && amsgrad != 1) || step < 1;
  const int64_t len = n > 0 ? n : 0;
  float *p = filled(in, len, any), *g = filled(in, len, any), *m = filled(in, len, any);
  float *v = filled(in, len, any), *vmax = filled(in, len, any);
  for (int64_t i = 0; i < len && !any; i++) { /* second moments are never negative */
    v[i] = fabsf(v[i]);
    vmax[i] = fabsf(vmax[i]);
  }
  float *p0 = dup(p, len), *m0 = dup(m, len), *v0 = dup(v, len), *vmax0 = dup(vmax, len);
  sl_status st = sl_adam_step(n, lr, b1, b2, eps, wd, decoupled, amsgrad, step, p, g, m, v,
                              amsgrad == 1 ? vmax : NULL);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT,
             "sl_adam_step accepted n=%lld lr=%g betas=%g,%g eps=%g wd=%g decoupled=%d "
             "amsgrad=%d step=%lld",
             (long long)n, lr, b1, b2, eps, wd, decoupled, amsgrad, (long long)step);
    FZ_CHECK_MESSAGE("sl_adam_step");
    FZ_CHECK(fz_same_bits(p, p0, len) && fz_same_bits(m, m0, len) && fz_same_bits(v, v0, len) &&
                 fz_same_bits(vmax, vmax0, len),
             "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_adam_step: status %d", st);
    if (!amsgrad)
      FZ_CHECK(fz_same_bits(vmax, vmax0, len), "max_exp_avg_sq written without amsgrad");
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    for (int64_t i = 0; i < len && !any; i++) {
      const double pd = decoupled ? p0[i] * (1.0 - (double)lr * wd) : p0[i];
      const double gd = decoupled ? g[i] : (double)g[i] + (double)wd * p0[i];
      const double sg = fabs(g[i]) + (decoupled ? 0.0 : fabs((double)wd * p0[i]));
      const double md = m0[i] + (1.0 - (double)b1) * (gd - m0[i]);
      const double sm = fabs(m0[i]) + fabs(1.0 - (double)b1) * (sg + fabs(m0[i]));
      const double vd = (double)b2 * v0[i] + (1.0 - (double)b2) * gd * gd;
      const double sv = fabs((double)b2 * v0[i]) + fabs(1.0 - (double)b2) * sg * sg;
      FZ_CHECK(fz_near(m[i], md, sm), "exp_avg[%lld] = %.9g, expected %.9g", (long long)i, m[i],
               md);
      FZ_CHECK(fz_near(v[i], vd, sv), "exp_avg_sq[%lld] = %.9g, expected %.9g", (long long)i, v[i],
               vd);
      /* The rest from the kernel's own moments: their last bits are checked just above. */
      double vh = v[i];
      if (amsgrad) {
        vh = vmax0[i] > v[i] ? vmax0[i] : v[i];
        FZ_CHECK(vmax[i] == (float)vh, "max_exp_avg_sq[%lld] = %.9g, expected %.9g",
                 (long long)i, vmax[i], vh);
      }
      const double denom = sqrt(vh) / sqrt(bc2) + eps;
      const double upd = (double)lr / bc1 * m[i] / denom;
      const double want = pd - upd;
      FZ_CHECK(fz_near(p[i], want, fabs(pd) + fabs(upd)), "param[%lld] = %.9g, expected %.9g",
               (long long)i, p[i], want);
    }
    float *p2 = dup(p0, len), *m2 = dup(m0, len), *v2 = dup(v0, len), *vmax2 = dup(vmax0, len);
    const int32_t threads = fz_switch_threads();
    st = sl_adam_step(n, lr, b1, b2, eps, wd, decoupled, amsgrad, step, p2, g, m2, v2,
                      amsgrad ? vmax2 : NULL);
    sl_set_num_threads(threads);
    FZ_CHECK(st == SL_OK && fz_same_bits(p, p2, len) && fz_same_bits(m, m2, len) &&
                 fz_same_bits(v, v2, len) && fz_same_bits(vmax, vmax2, len),
             "sl_adam_step depends on the thread count");
    free(p2);
    free(m2);
    free(v2);
    free(vmax2);
  }
  free(p);
  free(g);
  free(m);
  free(v);
  free(vmax);
  free(p0);
  free(m0);
  free(v0);
  free(vmax0);
}

/* -------------------------------------------------------------------- vectors ---- */

static void fuzz_vectors(fz_in *in) {
  const int64_t n = fuzz_length(in);
  const int any = fz_chance(in, 16);
  static const float alphas[] = {1.0f, -1.0f, 0.5f, 0.0f, 3.0f, INFINITY, NAN};
  const float alpha = FZ_PICK(in, alphas, 5, 7);
  const float value = fz_any_float(in);
  const int64_t len = n > 0 ? n : 0;
  float *x = filled(in, len, any), *y = filled(in, len, any), *y0 = dup(y, len);

  sl_status st = sl_axpy(n, alpha, x, y);
  if (n < 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_axpy accepted n=%lld", (long long)n);
    FZ_CHECK_MESSAGE("sl_axpy");
  } else {
    FZ_CHECK(st == SL_OK, "sl_axpy: status %d", st);
    for (int64_t i = 0; i < len && !any; i++) {
      const double want = (double)y0[i] + (double)alpha * x[i];
      FZ_CHECK(fz_near(y[i], want, fabs(y0[i]) + fabs((double)alpha * x[i])),
               "axpy y[%lld] = %.9g, expected %.9g", (long long)i, y[i], want);
    }
  }

  st = sl_copy(n, x, y);
  if (n < 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_copy accepted n=%lld", (long long)n);
    FZ_CHECK_MESSAGE("sl_copy");
  } else {
    FZ_CHECK(st == SL_OK && memcmp(x, y, (size_t)len * sizeof(float)) == 0, "sl_copy");
  }

  st = sl_fill(n, value, y);
  if (n < 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_fill accepted n=%lld", (long long)n);
    FZ_CHECK_MESSAGE("sl_fill");
  } else {
    FZ_CHECK(st == SL_OK, "sl_fill: status %d", st);
    for (int64_t i = 0; i < len; i++)
      FZ_CHECK(memcmp(&y[i], &value, sizeof value) == 0, "fill y[%lld]", (long long)i);
  }

  float out = 0.0f;
  st = sl_sum_all(n, alpha, x, &out);
  if (n < 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_sum_all accepted n=%lld", (long long)n);
    FZ_CHECK_MESSAGE("sl_sum_all");
  } else {
    FZ_CHECK(st == SL_OK, "sl_sum_all: status %d", st);
    double s = 0.0, sa = 0.0;
    for (int64_t i = 0; i < len; i++) {
      s += x[i];
      sa += fabs(x[i]);
    }
    /* Rounded to float as the kernel stores it; alpha * 0 for an empty sum (NaN for inf). */
    const double want = (float)((double)alpha * s);
    if (!any || len == 0)
      FZ_CHECK(fz_near(out, want, fabs((double)alpha) * sa), "sum_all %.9g, expected %.9g", out,
               want);
  }
  free(x);
  free(y);
  free(y0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  const uint8_t which = fz_u8(&in);
  fz_threads(&in);
  switch (which % 3) {
    case 0: fuzz_sgd(&in); break;
    case 1: fuzz_adam(&in); break;
    default: fuzz_vectors(&in); break;
  }
  return 0;
}
