/*
 * fuzz_nn.c — the dense layer kernels of csrc/cpu/nn.c: LayerNorm forward and backward (with
 * and without gamma, beta, the fused ReLU and each optional output), the per-feature
 * scale/shift, cross-entropy, MSE and dropout, on random sizes (some above the size where the
 * kernels go parallel and where the LayerNorm backward takes its chunked path) and thread
 * counts. Valid calls are compared with naive double references; what the ABI promises to be
 * independent of the path or of the thread count (LayerNorm's dx and parameter gradients, the
 * column sums of scale/shift, every result of a second thread count) is compared bit for bit;
 * rejected calls must name the function and write nothing. The first byte picks the kernel.
 */
#include "fuzz_common.h"

/* ------------------------------------------------------------------ LayerNorm ---- */

/* The backward's terms of entry (r, j) from the forward's statistics: xhat, the upstream
 * gradient the ReLU let through (where the forward's y > 0 or NaN: the backward must recompute
 * exactly the forward's mask) and that gradient times gamma. */
typedef struct {
  double xh, d, g;
} ln_terms;

static ln_terms ln_backward_terms(const float *x, const float *y, const float *dy,
                                  const float *gamma, const float *mean, const float *rstd,
                                  int32_t relu, int32_t n, int64_t r, int32_t j) {
  const int64_t i = r * n + j;
  ln_terms t;
  t.xh = ((double)x[i] - mean[r]) * rstd[r];
  t.d = relu && y[i] <= 0.0f ? 0.0 : dy[i];
  t.g = gamma ? t.d * gamma[j] : t.d;
  return t;
}

static void layer_norm_backward(fz_in *in, int64_t rows, int32_t n, int any, const float *x,
                                const float *gamma, const float *beta, int32_t relu,
                                const float *y, const float *mean, const float *rstd,
                                int want_dg, int want_db) {
  const int64_t total = rows * n;
  float *dy = FZ_NEW(float, total);
  fz_fill_floats(in, dy, total, any);

  /* A: every output (the chunked path when the rows are big enough). */
  float *dx = FZ_NEW(float, total), *dg = FZ_NEW(float, n), *db = FZ_NEW(float, n);
  fz_poison(dx, total);
  fz_poison(dg, n);
  fz_poison(db, n);
  sl_status st = sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, dx,
                                   want_dg ? dg : NULL, want_db ? db : NULL);
  FZ_CHECK(st == SL_OK, "sl_layer_norm_bwd: status %d", st);
  if (!want_dg) FZ_CHECK(fz_is_poison(dg, n), "dgamma written though null");
  if (!want_db) FZ_CHECK(fz_is_poison(db, n), "dbeta written though null");

  /* B: the parameter gradients alone (two passes), C: dx alone, D: another thread count. */
  float *dg2 = FZ_NEW(float, n), *db2 = FZ_NEW(float, n), *dx2 = FZ_NEW(float, total);
  if (want_dg || want_db) {
    st = sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, NULL,
                           want_dg ? dg2 : NULL, want_db ? db2 : NULL);
    FZ_CHECK(st == SL_OK, "sl_layer_norm_bwd without dx: status %d", st);
    FZ_CHECK(!want_dg || fz_same_bits(dg, dg2, n), "dgamma differs with and without dx");
    FZ_CHECK(!want_db || fz_same_bits(db, db2, n), "dbeta differs with and without dx");
  }
  st = sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, dx2, NULL, NULL);
  FZ_CHECK(st == SL_OK, "sl_layer_norm_bwd, dx only: status %d", st);
  FZ_CHECK(fz_same_bits(dx, dx2, total), "dx differs with and without parameter gradients");
  const int32_t threads = fz_switch_threads();
  st = sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, dy, dx2,
                         want_dg ? dg2 : NULL, want_db ? db2 : NULL);
  sl_set_num_threads(threads);
  FZ_CHECK(st == SL_OK, "sl_layer_norm_bwd, other thread count: status %d", st);
  FZ_CHECK(fz_same_bits(dx, dx2, total), "dx depends on the thread count");
  FZ_CHECK(!want_dg || fz_same_bits(dg, dg2, n), "dgamma depends on the thread count");
  FZ_CHECK(!want_db || fz_same_bits(db, db2, n), "dbeta depends on the thread count");

  if (!any) {
    double *col_g = FZ_NEW(double, n), *col_gs = FZ_NEW(double, n);
    double *col_b = FZ_NEW(double, n), *col_bs = FZ_NEW(double, n);
    for (int32_t j = 0; j < n; j++) col_g[j] = col_gs[j] = col_b[j] = col_bs[j] = 0.0;
    for (int64_t r = 0; r < rows; r++) {
      const double rs = rstd[r];
      double sg = 0.0, sgx = 0.0;
      for (int32_t j = 0; j < n; j++) {
        const ln_terms t = ln_backward_terms(x, y, dy, gamma, mean, rstd, relu, n, r, j);
        sg += t.g;
        sgx += t.g * t.xh;
        col_g[j] += t.d * t.xh;
        col_gs[j] += fabs(t.d * t.xh);
        col_b[j] += t.d;
        col_bs[j] += fabs(t.d);
      }
      const double mg = sg / n, mgx = sgx / n;
      for (int32_t j = 0; j < n; j++) {
        const ln_terms t = ln_backward_terms(x, y, dy, gamma, mean, rstd, relu, n, r, j);
        const int64_t i = r * n + j;
        const double want = rs * (t.g - mg - t.xh * mgx);
        const double scale = fabs(rs) * (fabs(t.g) + fabs(mg) + fabs(t.xh * mgx));
        FZ_CHECK(fz_near(dx[i], want, scale), "dx[%lld] = %.9g, expected %.9g", (long long)i,
                 dx[i], want);
      }
    }
    for (int32_t j = 0; j < n; j++) {
      FZ_CHECK(!want_dg || fz_near(dg[j], col_g[j], col_gs[j]), "dgamma[%d] = %.9g, expected %.9g",
               j, dg[j], col_g[j]);
      FZ_CHECK(!want_db || fz_near(db[j], col_b[j], col_bs[j]), "dbeta[%d] = %.9g, expected %.9g",
               j, db[j], col_b[j]);
    }
    free(col_g);
    free(col_gs);
    free(col_b);
    free(col_bs);
  }
  free(dy);
  free(dx);
  free(dg);
  free(db);
  free(dg2);
  free(db2);
  free(dx2);
}

static void fuzz_layer_norm(fz_in *in) {
  const int big = fz_chance(in, 8); /* the parallel and chunked paths: rows * n > 65536 */
  int64_t rows = big ? fz_range(in, 3, 80) : fz_range(in, 0, 8);
  int32_t n = big ? (int32_t)(65536 / rows + 1 + fz_range(in, 0, 600))
                  : (int32_t)fz_range(in, 1, 40);
  if (fz_chance(in, 4)) rows = -1;
  if (fz_chance(in, 4)) n = (int32_t)fz_range(in, -1, 0);
  static const float eps_table[] = {1e-5f, 1e-3f, 0.1f, 1.0f, 0.0f, -1e-3f, NAN, INFINITY};
  const float eps = FZ_PICK(in, eps_table, 4, 8);
  const int32_t relu = fz_chance(in, 4) ? (fz_chance(in, 128) ? 2 : -1) : fz_u8(in) & 1;
  const int with_gamma = fz_chance(in, 160), with_beta = fz_chance(in, 160);
  const int any = fz_chance(in, 16);
  /* Drawn before the arrays: a big shape uses up the input, and later draws would be 0. */
  const int want_dg = fz_chance(in, 200), want_db = fz_chance(in, 200);
  const int bad = rows < 0 || n < 1 || !(isfinite(eps) && eps >= 0.0f) || (relu != 0 && relu != 1);
  const int64_t width = n > 0 ? n : 0, nr = rows > 0 ? rows : 0, total = nr * width;

  float *x = FZ_NEW(float, total), *gamma = with_gamma ? FZ_NEW(float, width) : NULL;
  float *beta = with_beta ? FZ_NEW(float, width) : NULL;
  fz_fill_floats(in, x, total, any);
  if (gamma) fz_fill_floats(in, gamma, width, any);
  if (beta) fz_fill_floats(in, beta, width, any);
  float *y = FZ_NEW(float, total), *mean = FZ_NEW(float, nr), *rstd = FZ_NEW(float, nr);
  fz_poison(y, total);
  fz_poison(mean, nr);
  fz_poison(rstd, nr);
  sl_status st = sl_layer_norm_fwd(rows, n, eps, x, gamma, beta, relu, y, mean, rstd);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT,
             "sl_layer_norm_fwd accepted rows=%lld n=%d eps=%g relu=%d", (long long)rows, n, eps,
             relu);
    FZ_CHECK_MESSAGE("sl_layer_norm_fwd");
    FZ_CHECK(fz_is_poison(y, total) && fz_is_poison(mean, nr) && fz_is_poison(rstd, nr),
             "rejected call wrote its outputs");
    /* The backward rejects the same rows, n and relu (it has no eps). */
    if (rows < 0 || n < 1 || (relu != 0 && relu != 1)) {
      st = sl_layer_norm_bwd(rows, n, x, mean, rstd, gamma, beta, relu, x, y, NULL, NULL);
      FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_layer_norm_bwd accepted rows=%lld n=%d relu=%d",
               (long long)rows, n, relu);
      FZ_CHECK_MESSAGE("sl_layer_norm_bwd");
      FZ_CHECK(fz_is_poison(y, total), "rejected backward wrote dx");
    }
  } else {
    FZ_CHECK(st == SL_OK, "sl_layer_norm_fwd: status %d", st);
    /* Without the statistics, and on another thread count: the same y, bit for bit. */
    float *y2 = FZ_NEW(float, total);
    st = sl_layer_norm_fwd(rows, n, eps, x, gamma, beta, relu, y2, NULL, NULL);
    FZ_CHECK(st == SL_OK && fz_same_bits(y, y2, total), "y differs without mean and rstd");
    const int32_t threads = fz_switch_threads();
    st = sl_layer_norm_fwd(rows, n, eps, x, gamma, beta, relu, y2, NULL, NULL);
    sl_set_num_threads(threads);
    FZ_CHECK(st == SL_OK && fz_same_bits(y, y2, total), "y depends on the thread count");
    if (relu) {
      /* Any values, non-finite ones too: the fused ReLU is sl_unary's ReLU of the plain output
       * (NaN kept, as PyTorch's relu). */
      float *y3 = FZ_NEW(float, total);
      st = sl_layer_norm_fwd(rows, n, eps, x, gamma, beta, 0, y2, NULL, NULL);
      FZ_CHECK(st == SL_OK && sl_unary(SL_UNARY_RELU, total, 0, 0, y2, y3) == SL_OK,
               "plain LayerNorm + sl_unary ReLU failed");
      for (int64_t i = 0; i < total; i++)
        FZ_CHECK(y[i] == y3[i] || (y[i] != y[i] && y3[i] != y3[i]),
                 "fused ReLU y[%lld] = %.9g, relu(plain) = %.9g", (long long)i, y[i], y3[i]);
      free(y3);
    }
    free(y2);
    for (int64_t r = 0; r < rows && !any; r++) {
      double s = 0.0, sa = 0.0;
      for (int32_t j = 0; j < n; j++) {
        s += x[r * n + j];
        sa += fabs(x[r * n + j]);
      }
      const double mu = s / n;
      double ss = 0.0;
      for (int32_t j = 0; j < n; j++) ss += (x[r * n + j] - mu) * (x[r * n + j] - mu);
      const double rs = 1.0 / sqrt(ss / n + (double)eps);
      FZ_CHECK(fz_near(mean[r], mu, sa / n), "mean[%lld] = %.9g, expected %.9g", (long long)r,
               mean[r], mu);
      FZ_CHECK(fz_near(rstd[r], rs, rs), "rstd[%lld] = %.9g, expected %.9g", (long long)r, rstd[r],
               rs);
      for (int32_t j = 0; j < n; j++) {
        const int64_t i = r * n + j;
        const double xh = ((double)x[i] - mean[r]) * rstd[r];
        double v = gamma ? xh * gamma[j] : xh;
        if (beta) v += beta[j];
        const double scale = fabs(gamma ? xh * gamma[j] : xh) + (beta ? fabs(beta[j]) : 0.0);
        /* At the ReLU's edge a last-bit difference may decide the side: either is right. */
        const int edge = relu && fabs(v) <= 1e-5 * scale + 1e-6;
        const double want = relu && v <= 0.0 ? 0.0 : v;
        FZ_CHECK(fz_near(y[i], want, scale) || (edge && (y[i] == 0.0f || fz_near(y[i], v, scale))),
                 "y[%lld] = %.9g, expected %.9g", (long long)i, y[i], want);
      }
    }
    if (rows > 0) {
      layer_norm_backward(in, rows, n, any, x, gamma, beta, relu, y, mean, rstd, want_dg,
                          want_db);
    } else {
      float *dg = FZ_NEW(float, n), *db = FZ_NEW(float, n);
      st = sl_layer_norm_bwd(0, n, NULL, NULL, NULL, gamma, beta, relu, NULL, NULL, dg, db);
      FZ_CHECK(st == SL_OK, "sl_layer_norm_bwd, no rows: status %d", st);
      for (int32_t j = 0; j < n; j++)
        FZ_CHECK(dg[j] == 0.0f && db[j] == 0.0f, "gradient of an empty batch is not zero");
      free(dg);
      free(db);
    }
  }
  free(x);
  free(gamma);
  free(beta);
  free(y);
  free(mean);
  free(rstd);
}

/* ---------------------------------------------------------- scale and shift ---- */

static void fuzz_scale_shift(fz_in *in) {
  const int big = fz_chance(in, 8);
  int64_t rows = big ? fz_range(in, 2, 80) : fz_range(in, 0, 8);
  int32_t n = big ? (int32_t)(65536 / rows + 1 + fz_range(in, 0, 600))
                  : (int32_t)fz_range(in, 0, 40);
  if (fz_chance(in, 4)) rows = -1 - fz_range(in, 0, 3);
  if (fz_chance(in, 4)) n = -1;
  const int bad = rows < 0 || n < 0;
  const int64_t width = n > 0 ? n : 0, total = rows > 0 ? rows * width : 0;
  const int with_scale = fz_chance(in, 180), with_shift = fz_chance(in, 180);
  const int any = fz_chance(in, 16);
  const int want_dx = fz_chance(in, 200), want_ds = fz_chance(in, 200),
            want_dh = fz_chance(in, 200);
  float *x = FZ_NEW(float, total), *scale = with_scale ? FZ_NEW(float, width) : NULL;
  float *shift = with_shift ? FZ_NEW(float, width) : NULL;
  fz_fill_floats(in, x, total, any);
  if (scale) fz_fill_floats(in, scale, width, any);
  if (shift) fz_fill_floats(in, shift, width, any);
  float *y = FZ_NEW(float, total);
  fz_poison(y, total);
  sl_status st = sl_scale_shift_fwd(rows, n, x, scale, shift, y);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_scale_shift_fwd accepted rows=%lld n=%d",
             (long long)rows, n);
    FZ_CHECK_MESSAGE("sl_scale_shift_fwd");
    FZ_CHECK(fz_is_poison(y, total), "rejected call wrote y");
    st = sl_scale_shift_bwd(rows, n, x, scale, x, y, NULL, NULL);
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_scale_shift_bwd accepted rows=%lld n=%d",
             (long long)rows, n);
    FZ_CHECK_MESSAGE("sl_scale_shift_bwd");
    FZ_CHECK(fz_is_poison(y, total), "rejected backward wrote dx");
    goto done;
  }
  FZ_CHECK(st == SL_OK, "sl_scale_shift_fwd: status %d", st);
  for (int64_t i = 0; i < total && !any; i++) {
    const int32_t j = (int32_t)(i % width);
    const double p = scale ? (double)x[i] * scale[j] : x[i];
    const double want = p + (shift ? shift[j] : 0.0);
    FZ_CHECK(fz_near(y[i], want, fabs(p) + (shift ? fabs(shift[j]) : 0.0)),
             "y[%lld] = %.9g, expected %.9g", (long long)i, y[i], want);
  }
  {
    float *dy = FZ_NEW(float, total), *dx = FZ_NEW(float, total);
    float *ds = FZ_NEW(float, width), *dh = FZ_NEW(float, width);
    fz_fill_floats(in, dy, total, any);
    fz_poison(dx, total);
    fz_poison(ds, width);
    fz_poison(dh, width);
    st = sl_scale_shift_bwd(rows, n, want_ds ? x : NULL, scale, dy, want_dx ? dx : NULL,
                            want_ds ? ds : NULL, want_dh ? dh : NULL);
    FZ_CHECK(st == SL_OK, "sl_scale_shift_bwd: status %d", st);
    if (!want_dx) FZ_CHECK(fz_is_poison(dx, total), "dx written though null");
    for (int64_t i = 0; i < total && want_dx; i++) {
      const float want = scale ? dy[i] * scale[i % width] : dy[i];
      FZ_CHECK(memcmp(&dx[i], &want, sizeof want) == 0 || (isnan(want) && isnan(dx[i])),
               "dx[%lld] = %.9g, expected %.9g", (long long)i, dx[i], want);
    }
    for (int32_t j = 0; j < n && !any; j++) {
      double s = 0.0, sa = 0.0, h = 0.0, ha = 0.0;
      for (int64_t r = 0; r < rows; r++) {
        s += (double)dy[r * n + j] * x[r * n + j];
        sa += fabs((double)dy[r * n + j] * x[r * n + j]);
        h += dy[r * n + j];
        ha += fabs(dy[r * n + j]);
      }
      FZ_CHECK(!want_ds || fz_near(ds[j], s, sa), "dscale[%d] = %.9g, expected %.9g", j, ds[j], s);
      FZ_CHECK(!want_dh || fz_near(dh[j], h, ha), "dshift[%d] = %.9g, expected %.9g", j, dh[j], h);
    }
    /* The column sums do not depend on the thread count. */
    if (want_ds || want_dh) {
      float *ds2 = FZ_NEW(float, width), *dh2 = FZ_NEW(float, width);
      const int32_t threads = fz_switch_threads();
      st = sl_scale_shift_bwd(rows, n, want_ds ? x : NULL, scale, dy, NULL, want_ds ? ds2 : NULL,
                              want_dh ? dh2 : NULL);
      sl_set_num_threads(threads);
      FZ_CHECK(st == SL_OK, "sl_scale_shift_bwd, other thread count: status %d", st);
      FZ_CHECK(!want_ds || fz_same_bits(ds, ds2, width), "dscale depends on the thread count");
      FZ_CHECK(!want_dh || fz_same_bits(dh, dh2, width), "dshift depends on the thread count");
      free(ds2);
      free(dh2);
    }
    free(dy);
    free(dx);
    free(ds);
    free(dh);
  }
done:
  free(x);
  free(scale);
  free(shift);
  free(y);
}

/* ------------------------------------------------------------ cross-entropy ---- */

static void fuzz_cross_entropy(fz_in *in) {
  const int big = fz_rare(in);
  int32_t batch = big ? (int32_t)fz_range(in, 2, 300) : (int32_t)fz_range(in, 0, 10);
  int32_t n_classes = big ? (int32_t)fz_range(in, 200, 1200) : (int32_t)fz_range(in, 1, 20);
  if (fz_chance(in, 4)) batch = -1;
  if (fz_chance(in, 4)) n_classes = (int32_t)fz_range(in, -1, 0);
  const int32_t reduction = fz_chance(in, 4) ? 3 : (int32_t)fz_range(in, 0, 2);
  const int bad_args = batch < 0 || n_classes < 1 || reduction > 2;
  const int64_t nb = batch > 0 ? batch : 0, nc = n_classes > 0 ? n_classes : 0;
  const int any = fz_chance(in, 16);
  float *logits = FZ_NEW(float, nb * nc);
  int32_t *labels = FZ_NEW(int32_t, nb);
  fz_fill_floats(in, logits, nb * nc, any);
  for (int64_t b = 0; b < nb; b++) labels[b] = fz_index(in, n_classes, 4);
  int64_t bad_label = -1;
  for (int64_t b = 0; b < nb && !bad_args; b++)
    if (labels[b] < 0 || labels[b] >= n_classes) {
      bad_label = b;
      break;
    }
  const int64_t n_loss = reduction == SL_REDUCTION_NONE ? nb : 1;
  float *loss = FZ_NEW(float, n_loss), *lse = FZ_NEW(float, nb);
  fz_poison(loss, n_loss);
  fz_poison(lse, nb);
  sl_status st = sl_cross_entropy_fwd(batch, n_classes, logits, labels, reduction, loss, lse);
  if (bad_args || bad_label >= 0) {
    FZ_CHECK(st == (bad_args ? SL_E_INVALID_ARGUMENT : SL_E_INDEX_OUT_OF_RANGE),
             "sl_cross_entropy_fwd: status %d for batch=%d n_classes=%d reduction=%d", st, batch,
             n_classes, reduction);
    FZ_CHECK_MESSAGE("sl_cross_entropy_fwd");
    FZ_CHECK(fz_is_poison(loss, n_loss) && fz_is_poison(lse, nb), "rejected call wrote output");
    if (bad_label >= 0) {
      float *dl = FZ_NEW(float, nb * nc), one = 1.0f;
      fz_poison(dl, nb * nc);
      st = sl_cross_entropy_bwd(batch, n_classes, logits, labels, logits, &one, 0, 1.0f, dl);
      FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "sl_cross_entropy_bwd accepted a bad label");
      FZ_CHECK_MESSAGE("sl_cross_entropy_bwd");
      FZ_CHECK(fz_is_poison(dl, nb * nc), "rejected backward wrote dlogits");
      free(dl);
    }
    goto done;
  }
  FZ_CHECK(st == SL_OK, "sl_cross_entropy_fwd: status %d", st);
  {
    double total = 0.0, total_scale = 0.0;
    for (int64_t b = 0; b < nb; b++) {
      const float *z = logits + b * nc;
      double mx = -INFINITY;
      int has_nan = 0;
      for (int64_t c = 0; c < nc; c++) {
        if (isnan(z[c])) has_nan = 1;
        if (z[c] > mx) mx = z[c];
      }
      double want_lse = NAN, l = NAN;
      if (!has_nan && isfinite(mx)) {
        double s = 0.0;
        for (int64_t c = 0; c < nc; c++) s += exp((double)z[c] - mx);
        want_lse = mx + log(s);
        l = log(s) - ((double)z[labels[b]] - mx);
      }
      FZ_CHECK(fz_near(lse[b], want_lse, fabs(mx) + 1.0), "lse[%lld] = %.9g, expected %.9g",
               (long long)b, lse[b], want_lse);
      if (reduction == SL_REDUCTION_NONE)
        FZ_CHECK(fz_near(loss[b], l, fabs(l) + 1.0), "loss[%lld] = %.9g, expected %.9g",
                 (long long)b, loss[b], l);
      total += l;
      total_scale += fabs(l);
    }
    if (reduction == SL_REDUCTION_MEAN && nb > 0)
      FZ_CHECK(fz_near(loss[0], total / nb, total_scale / nb + 1.0),
               "mean loss %.9g, expected %.9g", loss[0], total / nb);
    if (reduction == SL_REDUCTION_MEAN && nb == 0) FZ_CHECK(isnan(loss[0]), "mean of no loss");
    if (reduction == SL_REDUCTION_SUM)
      FZ_CHECK(fz_near(loss[0], total, total_scale + 1.0), "summed loss %.9g, expected %.9g",
               loss[0], total);
  }
  if (nb > 0) {
    const int32_t stride = reduction == SL_REDUCTION_NONE ? 1 : 0;
    float *dloss = FZ_NEW(float, stride ? nb : 1);
    fz_fill_floats(in, dloss, stride ? nb : 1, 0);
    const float scale = reduction == SL_REDUCTION_MEAN ? 1.0f / (float)nb : 1.0f;
    float *dl = FZ_NEW(float, nb * nc), *dl2 = FZ_NEW(float, nb * nc);
    st = sl_cross_entropy_bwd(batch, n_classes, logits, labels, lse, dloss, stride, scale, dl);
    FZ_CHECK(st == SL_OK, "sl_cross_entropy_bwd: status %d", st);
    for (int64_t b = 0; b < nb && !any; b++) {
      const double g = (double)scale * dloss[stride * b];
      for (int64_t c = 0; c < nc; c++) {
        const double p = exp((double)logits[b * nc + c] - (double)lse[b]);
        const double want = g * (p - (c == labels[b]));
        FZ_CHECK(fz_near(dl[b * nc + c], want, fabs(g) * (p + 1.0) * 4.0),
                 "dlogits[%lld, %lld] = %.9g, expected %.9g", (long long)b, (long long)c,
                 dl[b * nc + c], want);
      }
    }
    const int32_t threads = fz_switch_threads();
    st = sl_cross_entropy_bwd(batch, n_classes, logits, labels, lse, dloss, stride, scale, dl2);
    sl_set_num_threads(threads);
    FZ_CHECK(st == SL_OK && fz_same_bits(dl, dl2, nb * nc), "dlogits depend on the thread count");
    free(dloss);
    free(dl);
    free(dl2);
  }
done:
  free(logits);
  free(labels);
  free(loss);
  free(lse);
}

/* ----------------------------------------------------------------------- MSE ---- */

static void fuzz_mse(fz_in *in) {
  int64_t n = fz_rare(in) ? fz_range(in, 262000, 300000) : fz_range(in, 0, 50);
  if (fz_chance(in, 4)) n = -1;
  const int32_t reduction = fz_chance(in, 4) ? -1 : (int32_t)fz_range(in, 0, 2);
  const int bad = n < 0 || reduction < 0;
  const int64_t len = n > 0 ? n : 0;
  const int any = fz_chance(in, 16);
  const int want_dp = fz_chance(in, 200), want_dt = !want_dp || fz_chance(in, 128);
  float *pred = FZ_NEW(float, len), *target = FZ_NEW(float, len);
  fz_fill_floats(in, pred, len, any);
  fz_fill_floats(in, target, len, any);
  const int64_t n_loss = reduction == SL_REDUCTION_NONE ? len : 1;
  float *loss = FZ_NEW(float, n_loss);
  fz_poison(loss, n_loss);
  sl_status st = sl_mse_fwd(n, pred, target, reduction, loss);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_mse_fwd accepted n=%lld reduction=%d",
             (long long)n, reduction);
    FZ_CHECK_MESSAGE("sl_mse_fwd");
    FZ_CHECK(fz_is_poison(loss, n_loss), "rejected call wrote loss");
    goto done;
  }
  FZ_CHECK(st == SL_OK, "sl_mse_fwd: status %d", st);
  {
    double total = 0.0;
    for (int64_t i = 0; i < len; i++) {
      const float d = pred[i] - target[i], sq = d * d;
      if (reduction == SL_REDUCTION_NONE)
        FZ_CHECK(memcmp(&loss[i], &sq, sizeof sq) == 0 || (isnan(sq) && isnan(loss[i])),
                 "loss[%lld] = %.9g, expected %.9g", (long long)i, loss[i], sq);
      total += (double)d * d;
    }
    /* Rounded to float as the kernel stores it (a sum of squares of large floats overflows). */
    const double mean = (float)(total / (double)len), sum = (float)total;
    if (reduction == SL_REDUCTION_MEAN)
      FZ_CHECK(len == 0 ? isnan(loss[0]) : fz_near(loss[0], mean, mean),
               "mean %.9g, expected %.9g", loss[0], mean);
    if (reduction == SL_REDUCTION_SUM)
      FZ_CHECK(fz_near(loss[0], sum, sum), "sum %.9g, expected %.9g", loss[0], sum);
  }
  if (len > 0) {
    const int32_t stride = reduction == SL_REDUCTION_NONE ? 1 : 0;
    float *dloss = FZ_NEW(float, stride ? len : 1);
    fz_fill_floats(in, dloss, stride ? len : 1, 0);
    const float scale = reduction == SL_REDUCTION_MEAN ? 1.0f / (float)len : 1.0f;
    float *dp = FZ_NEW(float, len), *dt = FZ_NEW(float, len);
    fz_poison(dp, len);
    fz_poison(dt, len);
    st = sl_mse_bwd(n, pred, target, dloss, stride, scale, want_dp ? dp : NULL,
                    want_dt ? dt : NULL);
    FZ_CHECK(st == SL_OK, "sl_mse_bwd: status %d", st);
    for (int64_t i = 0; i < len; i++) {
      const float g = 2.0f * scale * dloss[stride * i] * (pred[i] - target[i]), ng = -g;
      if (want_dp)
        FZ_CHECK(memcmp(&dp[i], &g, sizeof g) == 0 || (isnan(g) && isnan(dp[i])),
                 "dpred[%lld] = %.9g, expected %.9g", (long long)i, dp[i], g);
      else
        FZ_CHECK(fz_is_poison(&dp[i], 1), "dpred written though null");
      if (want_dt)
        FZ_CHECK(memcmp(&dt[i], &ng, sizeof ng) == 0 || (isnan(g) && isnan(dt[i])),
                 "dtarget[%lld] = %.9g, expected %.9g", (long long)i, dt[i], ng);
      else
        FZ_CHECK(fz_is_poison(&dt[i], 1), "dtarget written though null");
    }
    free(dloss);
    free(dp);
    free(dt);
  }
done:
  free(pred);
  free(target);
  free(loss);
}

/* ------------------------------------------------------------------- dropout ---- */

/* The mask the ABI defines: element i is kept when the top 32 bits of the i-th splitmix64
 * output for the seed are at least floor((float)p * 2^32). */
static int dropout_kept(uint64_t seed, int64_t i, double p) {
  uint64_t z = seed + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32) >= (uint64_t)floor((double)(float)p * 4294967296.0);
}

static void fuzz_dropout(fz_in *in) {
  int64_t n = fz_rare(in) ? fz_range(in, 65000, 140000) : fz_range(in, 0, 300);
  if (fz_chance(in, 4)) n = -1;
  static const double p_table[] = {0.0, 0.1, 0.5, 0.9, 1.0, 1e-9, 0.999999, 0.3,
                                   -0.1, 1.1, NAN, INFINITY};
  const double p = p_table[fz_chance(in, 24) ? fz_u8(in) % 12 : fz_u8(in) % 8];
  const uint64_t seed = fz_u64(in);
  const int bad = n < 0 || !(p >= 0.0 && p <= 1.0);
  const int64_t len = n > 0 ? n : 0;
  float *x = FZ_NEW(float, len), *y = FZ_NEW(float, len), *dx = FZ_NEW(float, len);
  fz_fill_floats(in, x, len, fz_chance(in, 32));
  fz_poison(y, len);
  sl_status st = sl_dropout_fwd(n, p, seed, x, y);
  if (bad) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_dropout_fwd accepted n=%lld p=%g", (long long)n,
             p);
    FZ_CHECK_MESSAGE("sl_dropout_fwd");
    FZ_CHECK(fz_is_poison(y, len), "rejected call wrote y");
  } else {
    FZ_CHECK(st == SL_OK, "sl_dropout_fwd: status %d", st);
    const float keep = p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    for (int64_t i = 0; i < len; i++) {
      const float want = x[i] * (dropout_kept(seed, i, p) ? keep : 0.0f);
      FZ_CHECK(memcmp(&y[i], &want, sizeof want) == 0 || (isnan(want) && isnan(y[i])),
               "y[%lld] = %.9g, expected %.9g (p %g)", (long long)i, y[i], want, p);
    }
    /* The backward with the same seed applies the same mask: on dy = x it gives y again. */
    const int32_t threads = fz_switch_threads();
    st = sl_dropout_bwd(n, p, seed, x, dx);
    sl_set_num_threads(threads);
    FZ_CHECK(st == SL_OK && fz_same_bits(y, dx, len), "the backward's mask is not the forward's");
  }
  free(x);
  free(y);
  free(dx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  const uint8_t which = fz_u8(&in);
  fz_threads(&in);
  switch (which % 5) {
    case 0: fuzz_layer_norm(&in); break;
    case 1: fuzz_scale_shift(&in); break;
    case 2: fuzz_cross_entropy(&in); break;
    case 3: fuzz_mse(&in); break;
    default: fuzz_dropout(&in); break;
  }
  return 0;
}
