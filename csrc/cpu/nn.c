/*
 * nn.c — the per-layer kernels of the training stack: LayerNorm (optionally with a fused ReLU),
 * fused log-softmax + cross-entropy, mean squared error, dropout and a per-feature scale/shift.
 *
 * Every kernel is one call over a whole batch. Reductions accumulate in double so that wide
 * rows (50 000 features) keep float32 accuracy, and column reductions (gamma/beta gradients)
 * are split by column blocks so that results do not depend on the thread count.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "scratch.h"
#include "validate.h"

/*
 * Work below this many elements runs on one thread (~50 us at a few ns per element): a parallel
 * region costs more, especially on a busy machine (see strided.h).
 */
#define SL_NN_PARALLEL_MIN 65536

/* Columns per block of a column reduction (stack accumulators, vectorised over the block). */
#define SL_NN_COL_BLOCK 512

/* ------------------------------------------------------------------ LayerNorm ---- */

/*
 * Which affine parameters a LayerNorm call has, as a compile-time constant of the inlined row
 * functions below (so each variant is one vectorised loop): bit 0 gamma, bit 1 beta.
 */
#define LN_GAMMA 1
#define LN_BETA 2

static int ln_affine_kind(const float *gamma, const float *beta) {
  return (gamma != NULL ? LN_GAMMA : 0) | (beta != NULL ? LN_BETA : 0);
}

/* Calls FN(AF, RELU, args...) with AF and RELU as constants (AF in 0..3, RELU in 0..1). */
#define LN_DISPATCH(af, relu, FN, ...)                        \
  switch ((af) * 2 + (relu)) {                                \
    case 0: FN(0, 0, __VA_ARGS__); break;                     \
    case 1: FN(0, 1, __VA_ARGS__); break;                     \
    case 2: FN(1, 0, __VA_ARGS__); break;                     \
    case 3: FN(1, 1, __VA_ARGS__); break;                     \
    case 4: FN(2, 0, __VA_ARGS__); break;                     \
    case 5: FN(2, 1, __VA_ARGS__); break;                     \
    case 6: FN(3, 0, __VA_ARGS__); break;                     \
    default: FN(3, 1, __VA_ARGS__); break;                    \
  }

/*
 * LayerNorm's output before the activation, xhat * gamma + beta (each part only when AF has
 * it). The forward and the backward of a fused LayerNorm + ReLU both compute it here, so the
 * backward's ReLU mask is exactly the forward's.
 */
static inline __attribute__((always_inline)) float ln_out(const int AF, float xhat,
                                                         const float *gamma, const float *beta,
                                                         int32_t j) {
  float v = (AF & LN_GAMMA) ? xhat * gamma[j] : xhat;
  return (AF & LN_BETA) ? v + beta[j] : v;
}

/*
 * dy where the fused ReLU let the output through (above 0, or NaN: relu(NaN) is NaN and its
 * gradient passes, as sl_unary's ReLU and PyTorch), else +0 (dy itself without a ReLU). A bit
 * mask rather than a select: GCC does not if-convert a float select that feeds a double sum,
 * and the loop would stay scalar.
 */
static inline __attribute__((always_inline)) float ln_passed(const int AF, const int RELU,
                                                            float dy, float xhat,
                                                            const float *gamma,
                                                            const float *beta, int32_t j) {
  if (!RELU) return dy;
  uint32_t bits;
  memcpy(&bits, &dy, sizeof bits);
  bits &= -(uint32_t)!(ln_out(AF, xhat, gamma, beta, j) <= 0.0f);
  float kept;
  memcpy(&kept, &bits, sizeof kept);
  return kept;
}

/*
 * Column sums of a [rows, n] (row-major), in one pass over a:
 *   weighted[c] = sum_r a[r, c] * b[r, c]   (when weighted is non-null; b must be non-null),
 *   plain[c]    = sum_r a[r, c]             (when plain is non-null).
 * When b_mean/b_rstd are given, b[r, c] stands for (b[r, c] - b_mean[r]) * b_rstd[r] (the
 * normalised input of LayerNorm, recomputed instead of stored). MASKED (LayerNorm's parameter
 * gradients through a fused ReLU, b_mean/b_rstd given): a[r, c] counts only where the output
 * was let through (ln_passed, with the affine kind AF and gamma/beta). Split by column blocks,
 * so the result does not depend on the thread count.
 *
 * column_sums_rows adds rows [r0, r1) of those sums, for the w columns from c0, into accw and
 * accp (index 0 = column c0); column_sums_impl sums all rows, one column block at a time.
 */
static inline __attribute__((always_inline)) void column_sums_rows(
    const int AF, const int MASKED, int64_t r0, int64_t r1, int32_t n, int32_t c0, int32_t w,
    const float *a, const float *b, const float *b_mean, const float *b_rstd, const float *gamma,
    const float *beta, int want_weighted, int want_plain, double *accw, double *accp) {
  for (int64_t r = r0; r < r1; r++) {
    const float *ar = a + r * n + c0;
    if (MASKED) {
      const float *br = b + r * n + c0;
      float mu = b_mean[r], rs = b_rstd[r];
#pragma omp simd
      for (int32_t j = 0; j < w; j++) {
        float xh = (br[j] - mu) * rs;
        float d = ln_passed(AF, 1, ar[j], xh, gamma, beta, c0 + j);
        accp[j] += d;
        accw[j] += (double)d * xh;
      }
      continue;
    }
    if (want_plain) {
#pragma omp simd
      for (int32_t j = 0; j < w; j++) accp[j] += ar[j];
    }
    if (!want_weighted) continue;
    const float *br = b + r * n + c0;
    if (b_mean == NULL) {
#pragma omp simd
      for (int32_t j = 0; j < w; j++) accw[j] += (double)ar[j] * br[j];
    } else {
      float mu = b_mean[r], rs = b_rstd[r];
#pragma omp simd
      for (int32_t j = 0; j < w; j++) accw[j] += (double)ar[j] * ((br[j] - mu) * rs);
    }
  }
}

static inline __attribute__((always_inline)) void column_sums_impl(
    const int AF, const int MASKED, int64_t rows, int32_t n, const float *a, const float *b,
    const float *b_mean, const float *b_rstd, const float *gamma, const float *beta,
    float *weighted, float *plain) {
  int64_t blocks = ((int64_t)n + SL_NN_COL_BLOCK - 1) / SL_NN_COL_BLOCK;
  int parallel = sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN && blocks > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
  for (int64_t blk = 0; blk < blocks; blk++) {
    int32_t c0 = (int32_t)(blk * SL_NN_COL_BLOCK);
    int32_t c1 = c0 + SL_NN_COL_BLOCK < n ? c0 + SL_NN_COL_BLOCK : n;
    int32_t w = c1 - c0;
    double accw[SL_NN_COL_BLOCK], accp[SL_NN_COL_BLOCK];
    for (int32_t j = 0; j < w; j++) accw[j] = accp[j] = 0.0;
    column_sums_rows(AF, MASKED, 0, rows, n, c0, w, a, b, b_mean, b_rstd, gamma, beta,
                     weighted != NULL, plain != NULL, accw, accp);
    if (weighted != NULL)
      for (int32_t j = 0; j < w; j++) weighted[c0 + j] = (float)accw[j];
    if (plain != NULL)
      for (int32_t j = 0; j < w; j++) plain[c0 + j] = (float)accp[j];
  }
}

static void column_sums(int64_t rows, int32_t n, const float *a, const float *b,
                        const float *b_mean, const float *b_rstd, float *weighted,
                        float *plain) {
  column_sums_impl(0, 0, rows, n, a, b, b_mean, b_rstd, NULL, NULL, weighted, plain);
}

/* One row forward: y = act(xhat * gamma + beta), xhat = (x - mean) * rstd. */
static inline __attribute__((always_inline)) void ln_fwd_row(const int AF, const int RELU,
                                                            const float *xr, float *yr,
                                                            int32_t n, float mu, float rs,
                                                            const float *gamma,
                                                            const float *beta) {
#pragma omp simd
  for (int32_t j = 0; j < n; j++) {
    float v = ln_out(AF, (xr[j] - mu) * rs, gamma, beta, j);
    yr[j] = RELU && v <= 0.0f ? 0.0f : v; /* NaN propagates, as relu() and PyTorch */
  }
}

sl_status sl_layer_norm_fwd(int64_t rows, int32_t n, float eps, const float *x,
                            const float *gamma, const float *beta, int32_t relu, float *y,
                            float *mean, float *rstd) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_layer_norm_fwd(__func__, rows, n, eps, x, relu, y));
  if (rows == 0) return SL_OK;
  const int af = ln_affine_kind(gamma, beta);
  int parallel = sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN && rows > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int32_t j = 0; j < n; j++) s += xr[j];
    double mu = s / n;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int32_t j = 0; j < n; j++) {
      double d = xr[j] - mu;
      ss += d * d;
    }
    /* Biased variance, as PyTorch's LayerNorm. */
    float rs = (float)(1.0 / sqrt(ss / n + (double)eps));
    float muf = (float)mu;
    LN_DISPATCH(af, relu, ln_fwd_row, xr, y + r * n, n, muf, rs, gamma, beta);
    if (mean != NULL) mean[r] = muf;
    if (rstd != NULL) rstd[r] = rs;
  }
  return SL_OK;
}

/*
 * The backward of one row: with g = dy * gamma (dy zeroed where a fused ReLU cut the output),
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
 *
 * The two row sums are taken one column block (SL_NN_COL_BLOCK) at a time, the blocks' partial
 * sums then added in block order: so the column-split backward below, which sees a row one block
 * at a time, gives the same dx bit for bit, whatever the thread count.
 */

/*
 * Partial sums of g and g * xhat over the w columns from c0 of one row (xr, dyr at column 0).
 * With COLS the row is also added into those columns' sums for dbeta (accp += the passed dy)
 * and dgamma (accw += passed dy * xhat), index 0 = column c0: the column-split backward takes
 * both in one pass. The row sums' loop is the same with and without COLS.
 */
static inline __attribute__((always_inline)) void ln_bwd_block_sums(
    const int AF, const int RELU, const int COLS, const float *xr, const float *dyr, int32_t c0,
    int32_t w, float mu, float rs, const float *gamma, const float *beta, double *sg_out,
    double *sgx_out, double *accw, double *accp) {
  double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
  for (int32_t j = 0; j < w; j++) {
    float xh = (xr[c0 + j] - mu) * rs;
    float d = ln_passed(AF, RELU, dyr[c0 + j], xh, gamma, beta, c0 + j);
    float g = (AF & LN_GAMMA) ? d * gamma[c0 + j] : d;
    sg += g;
    sgx += (double)g * xh;
    if (COLS) {
      accp[j] += d;
      accw[j] += (double)d * xh;
    }
  }
  *sg_out = sg;
  *sgx_out = sgx;
}

/* dx over the w columns from c0 of one row, from the row's mean(g) and mean(g * xhat). */
static inline __attribute__((always_inline)) void ln_bwd_dx(const int AF, const int RELU,
                                                           const float *xr, const float *dyr,
                                                           float *dxr, int32_t c0, int32_t w,
                                                           float mu, float rs, const float *gamma,
                                                           const float *beta, float mg,
                                                           float mgx) {
#pragma omp simd
  for (int32_t j = c0; j < c0 + w; j++) {
    float xh = (xr[j] - mu) * rs;
    float d = ln_passed(AF, RELU, dyr[j], xh, gamma, beta, j);
    float g = (AF & LN_GAMMA) ? d * gamma[j] : d;
    dxr[j] = rs * (g - mg - xh * mgx);
  }
}

static inline __attribute__((always_inline)) void ln_bwd_row(const int AF, const int RELU,
                                                            const float *xr, const float *dyr,
                                                            float *dxr, int32_t n, float mu,
                                                            float rs, const float *gamma,
                                                            const float *beta) {
  double sg = 0.0, sgx = 0.0;
  for (int32_t c0 = 0; c0 < n; c0 += SL_NN_COL_BLOCK) {
    const int32_t w = c0 + SL_NN_COL_BLOCK < n ? SL_NN_COL_BLOCK : n - c0;
    double bg, bgx;
    ln_bwd_block_sums(AF, RELU, 0, xr, dyr, c0, w, mu, rs, gamma, beta, &bg, &bgx, NULL, NULL);
    sg += bg;
    sgx += bgx;
  }
  ln_bwd_dx(AF, RELU, xr, dyr, dxr, 0, n, mu, rs, gamma, beta, (float)(sg / n),
            (float)(sgx / n));
}

/* Rows per step of the column-split backward (2, 4 and 8 measured: 2 fastest). */
#define LN_BWD_ROWS 2

/*
 * The backward with parameter gradients for wide rows, split by columns: each thread keeps the
 * same column blocks throughout. For LN_BWD_ROWS rows at a time it first takes, block by block,
 * the rows' partial sums (ln_bwd_block_sums) and adds the rows into its blocks' column sums;
 * after a barrier every thread adds the partial sums in block order (as ln_bwd_row) and writes
 * dx for its blocks, whose x and dy are still in its cache. No thread reads another's columns:
 * splitting rows for dx and columns for the sums, as before, had each core read half of every
 * row from the other core's cache (64 x 50 000 with a ReLU, 2 threads, cold caches, C harness,
 * minima of alternating runs: 2.41-2.45 -> 1.83-1.91 ms). Each column sums its rows in order, in
 * double, so dgamma and dbeta are bit for bit those of column_sums_impl, and dx that of
 * ln_bwd_row, whatever the thread count. acc: 2 n doubles, then 2 LN_BWD_ROWS blocks doubles of
 * partial sums. The affine/ReLU dispatch sits inside the loops: with the whole function
 * specialised instead, GCC left the rows' double reductions scalar (5.3 ms).
 */
static void ln_bwd_column_split(int af, int relu, int64_t rows, int32_t n, const float *x,
                                const float *mean, const float *rstd, const float *gamma,
                                const float *beta, const float *dy, float *dx, float *dgamma,
                                float *dbeta, double *acc) {
  double *accw = acc, *accp = acc + n;
  const int64_t blocks = ((int64_t)n + SL_NN_COL_BLOCK - 1) / SL_NN_COL_BLOCK;
  double *part = acc + 2 * (int64_t)n; /* [row in step][sum][block] */
  const int want_w = dgamma != NULL, want_p = dbeta != NULL;
#pragma omp parallel num_threads(sl_threads())
  {
#pragma omp for schedule(static)
    for (int64_t j = 0; j < 2 * (int64_t)n; j++) acc[j] = 0.0;
    for (int64_t r0 = 0; r0 < rows; r0 += LN_BWD_ROWS) {
      const int64_t r1 = r0 + LN_BWD_ROWS < rows ? r0 + LN_BWD_ROWS : rows;
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; blk++) {
        const int32_t c0 = (int32_t)(blk * SL_NN_COL_BLOCK);
        const int32_t w = c0 + SL_NN_COL_BLOCK < n ? SL_NN_COL_BLOCK : n - c0;
        for (int64_t r = r0; r < r1; r++) {
          double *pr = part + (r - r0) * 2 * blocks;
          LN_DISPATCH(af, relu, ln_bwd_block_sums, 1, x + r * n, dy + r * n, c0, w, mean[r],
                      rstd[r], gamma, beta, pr + blk, pr + blocks + blk, accw + c0, accp + c0);
        }
      }
      float mg[LN_BWD_ROWS], mgx[LN_BWD_ROWS];
      for (int64_t r = r0; r < r1; r++) {
        const double *pr = part + (r - r0) * 2 * blocks;
        double sg = 0.0, sgx = 0.0;
        for (int64_t b = 0; b < blocks; b++) {
          sg += pr[b];
          sgx += pr[blocks + b];
        }
        mg[r - r0] = (float)(sg / n);
        mgx[r - r0] = (float)(sgx / n);
      }
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; blk++) {
        const int32_t c0 = (int32_t)(blk * SL_NN_COL_BLOCK);
        const int32_t w = c0 + SL_NN_COL_BLOCK < n ? SL_NN_COL_BLOCK : n - c0;
        for (int64_t r = r0; r < r1; r++)
          LN_DISPATCH(af, relu, ln_bwd_dx, x + r * n, dy + r * n, dx + r * n, c0, w, mean[r],
                      rstd[r], gamma, beta, mg[r - r0], mgx[r - r0]);
      }
    }
#pragma omp for schedule(static)
    for (int32_t j = 0; j < n; j++) {
      if (want_w) dgamma[j] = (float)accw[j];
      if (want_p) dbeta[j] = (float)accp[j];
    }
  }
}

sl_status sl_layer_norm_bwd(int64_t rows, int32_t n, const float *x, const float *mean,
                            const float *rstd, const float *gamma, const float *beta,
                            int32_t relu, const float *dy, float *dx, float *dgamma,
                            float *dbeta) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_layer_norm_bwd(__func__, rows, n, x, mean, rstd, relu, dy));
  if (rows == 0) {
    /* Gradients of gamma and beta over an empty batch are zero. */
    if (dgamma != NULL) memset(dgamma, 0, (size_t)n * sizeof(float));
    if (dbeta != NULL) memset(dbeta, 0, (size_t)n * sizeof(float));
    return SL_OK;
  }
  const int af = ln_affine_kind(gamma, beta);
  if (dx != NULL && (dgamma != NULL || dbeta != NULL) && rows > 2 &&
      sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN) {
    const int64_t blocks = ((int64_t)n + SL_NN_COL_BLOCK - 1) / SL_NN_COL_BLOCK;
    double *acc = sl_scratch_get(
        sl_mul_size((int64_t)sizeof(double), 2 * ((int64_t)n + LN_BWD_ROWS * blocks)));
    if (acc != NULL) {
      ln_bwd_column_split(af, relu, rows, n, x, mean, rstd, gamma, beta, dy, dx, dgamma, dbeta,
                          acc);
      sl_scratch_put(acc);
      return SL_OK;
    }
    /* Without the accumulators: the two passes below (same results). */
  }
  if (dx != NULL) {
    int parallel = sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN && rows > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
    for (int64_t r = 0; r < rows; r++)
      LN_DISPATCH(af, relu, ln_bwd_row, x + r * n, dy + r * n, dx + r * n, n, mean[r], rstd[r],
                  gamma, beta);
  }
  if (dgamma == NULL && dbeta == NULL) return SL_OK;
  if (relu) {
    LN_DISPATCH(af, 1, column_sums_impl, rows, n, dy, x, mean, rstd, gamma, beta, dgamma, dbeta);
  } else {
    column_sums(rows, n, dy, x, mean, rstd, dgamma, dbeta);
  }
  return SL_OK;
}

/* ------------------------------------------------------------ cross-entropy ---- */

static sl_status check_labels(const char *fn, int32_t batch, int32_t n_classes,
                              const int32_t *labels) {
  for (int32_t b = 0; b < batch; b++) {
    if (labels[b] < 0 || labels[b] >= n_classes)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "labels[%d] = %d is outside [0, %d)", b,
                     labels[b], n_classes);
  }
  return SL_OK;
}

/*
 * One sample's loss, -log softmax(z)[label] = log(sum) - (z[label] - max) with sum = sum of
 * exp(z - max), and the row's log-sum-exp, max + log(sum), in *lse. In that order, as PyTorch:
 * lse - z[label] lost the log(sum) next to a max of 1e38 even in double. PyTorch's log-softmax
 * subtracts the max first, so a max of +inf (inf - inf), of -inf (a row of -inf only) or a NaN
 * anywhere makes it NaN throughout: lse, the loss and (the backward reading lse) every gradient
 * of the row are NaN.
 */
static double cross_entropy_row(const float *zr, int32_t n_classes, int32_t label, float *lse) {
  float mx = zr[0];
  for (int32_t c = 1; c < n_classes; c++) mx = zr[c] > mx ? zr[c] : mx;
  if (!isfinite(mx)) {
    *lse = NAN;
    return NAN;
  }
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int32_t c = 0; c < n_classes; c++) s += exp((double)(zr[c] - mx));
  const double log_s = log(s); /* NaN when the row holds a NaN */
  *lse = (float)((double)mx + log_s);
  return log_s - ((double)zr[label] - (double)mx);
}

sl_status sl_cross_entropy_fwd(int32_t batch, int32_t n_classes, const float *logits,
                               const int32_t *labels, int32_t reduction, float *loss,
                               float *lse) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_cross_entropy_fwd(__func__, batch, n_classes, logits, labels, reduction, loss));
  if (batch > 0) {
    sl_status st = check_labels(__func__, batch, n_classes, labels);
    if (st != SL_OK) return st;
  }
  sl_parts parts; /* the threads' loss sums, added in order */
  int parallel = sl_mul_size(batch, n_classes) > SL_NN_PARALLEL_MIN && batch > 1;
#pragma omp parallel num_threads(sl_threads()) if (parallel)
  {
    int64_t lo, hi;
    sl_share(batch, &lo, &hi);
    double total = 0.0;
    for (int64_t b = lo; b < hi; b++) {
      float row_lse;
      double l = cross_entropy_row(logits + b * n_classes, n_classes, labels[b], &row_lse);
      if (lse != NULL) lse[b] = row_lse;
      if (reduction == SL_REDUCTION_NONE) loss[b] = (float)l;
      total += l;
    }
    sl_parts_put(&parts, total);
  }
  const double total = sl_parts_sum(&parts);
  if (reduction == SL_REDUCTION_MEAN) loss[0] = (float)(total / batch); /* NaN for batch 0 */
  else if (reduction == SL_REDUCTION_SUM) loss[0] = (float)total;
  return SL_OK;
}

sl_status sl_cross_entropy_bwd(int32_t batch, int32_t n_classes, const float *logits,
                               const int32_t *labels, const float *lse, const float *dloss,
                               int32_t dloss_stride, float scale, float *dlogits) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_cross_entropy_bwd(__func__, batch, n_classes, logits, labels, lse, dloss,
                                            dloss_stride, dlogits));
  if (batch == 0) return SL_OK;
  sl_status st = check_labels(__func__, batch, n_classes, labels);
  if (st != SL_OK) return st;
  int parallel = sl_mul_size(batch, n_classes) > SL_NN_PARALLEL_MIN && batch > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
  for (int32_t b = 0; b < batch; b++) {
    const float *zr = logits + (int64_t)b * n_classes;
    float *dr = dlogits + (int64_t)b * n_classes;
    float g = scale * dloss[(int64_t)b * dloss_stride];
    if (isfinite(lse[b])) {
      /* softmax as exp((z - max) - log(sum)), the sum taken again: lse in float is rounded to
       * the max's precision, which at logits ~1e4 and up moves every probability. */
      float mx = zr[0];
      for (int32_t c = 1; c < n_classes; c++) mx = zr[c] > mx ? zr[c] : mx;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int32_t c = 0; c < n_classes; c++) s += exp((double)(zr[c] - mx));
      const float ls = (float)log(s);
#pragma omp simd
      for (int32_t c = 0; c < n_classes; c++) dr[c] = g * expf((zr[c] - mx) - ls);
      dr[labels[b]] -= g;
    } else {
      /* The forward's NaN lse: the row's log-softmax is NaN throughout (cross_entropy_row). */
      for (int32_t c = 0; c < n_classes; c++) dr[c] = NAN;
    }
  }
  return SL_OK;
}

/* ---------------------------------------------------------------------- MSE ---- */

sl_status sl_mse_fwd(int64_t n, const float *pred, const float *target, int32_t reduction,
                     float *loss) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_mse_fwd(__func__, n, pred, target, reduction, loss));
  sl_parts parts; /* the threads' sums, added in order */
#pragma omp parallel num_threads(sl_threads()) if (n > 262144)
  {
    int64_t lo, hi;
    sl_share(n, &lo, &hi);
    double total = 0.0;
#pragma omp simd reduction(+ : total)
    for (int64_t i = lo; i < hi; i++) {
      float d = pred[i] - target[i];
      if (reduction == SL_REDUCTION_NONE) loss[i] = d * d;
      total += (double)d * d;
    }
    sl_parts_put(&parts, total);
  }
  const double total = sl_parts_sum(&parts);
  if (reduction == SL_REDUCTION_MEAN) loss[0] = (float)(total / (double)n); /* NaN for n 0 */
  else if (reduction == SL_REDUCTION_SUM) loss[0] = (float)total;
  return SL_OK;
}

sl_status sl_mse_bwd(int64_t n, const float *pred, const float *target, const float *dloss,
                     int32_t dloss_stride, float scale, float *dpred, float *dtarget) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_mse_bwd(__func__, n, pred, target, dloss, dloss_stride, dpred, dtarget));
  if (n == 0) return SL_OK;
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > 262144) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float g = 2.0f * scale * dloss[i * dloss_stride] * (pred[i] - target[i]);
    if (dpred != NULL) dpred[i] = g;
    if (dtarget != NULL) dtarget[i] = -g;
  }
  return SL_OK;
}

/* ------------------------------------------------------------------ dropout ---- */

/*
 * The keep/drop decision of element i is a pure function of (seed, i): the i-th output of
 * splitmix64 seeded with `seed`. The backward pass recomputes the mask instead of storing it,
 * and the CUDA kernels draw the very same mask.
 */
static inline uint32_t dropout_bits(uint64_t seed, int64_t i) {
  uint64_t z = seed + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32);
}

/*
 * Elements whose 32 random bits fall below this are dropped: p * 2^32 (exact for p = 1), with p
 * rounded to float as ABI 4 passed it, so that a seed still draws the same mask.
 */
static inline uint64_t dropout_threshold(double p) {
  return (uint64_t)((double)(float)p * 4294967296.0);
}

static sl_status dropout_apply(const char *fn, int64_t n, double p, uint64_t seed,
                               const float *in, float *out, const char *in_name,
                               const char *out_name) {
  if (n < 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "n must be >= 0, got %lld", (long long)n);
  if (!(p >= 0.0 && p <= 1.0))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "p must be in [0, 1], got %g", p);
  if (n == 0) return SL_OK;
  if (in == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", in_name);
  if (out == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", out_name);
  uint64_t threshold = dropout_threshold(p);
  /* 1 / (1 - p) from the double p, rounded once, as PyTorch's fused (CUDA) dropout; its CPU
   * path divides a float mask by (float)(1 - p) instead, one bit apart for some p (0.87, 0.88,
   * 0.94, 0.97: 15 of p = 0.01 ... 0.99). (From p rounded to float first, p = 0.9 kept values
   * came out 9.999998 instead of 10.) */
  float keep_scale = p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f;
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > 65536) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    /* Dropped elements are multiplied by 0, as PyTorch does: NaN and inf give NaN, not 0. */
    out[i] = in[i] * ((uint64_t)dropout_bits(seed, i) >= threshold ? keep_scale : 0.0f);
  }
  return SL_OK;
}

sl_status sl_dropout_fwd(int64_t n, double p, uint64_t seed, const float *x, float *y) {
  SL_ENTER();
  return dropout_apply(__func__, n, p, seed, x, y, "x", "y");
}

sl_status sl_dropout_bwd(int64_t n, double p, uint64_t seed, const float *dy, float *dx) {
  SL_ENTER();
  return dropout_apply(__func__, n, p, seed, dy, dx, "dy", "dx");
}

/* ---------------------------------------------------------- scale and shift ---- */

sl_status sl_scale_shift_fwd(int64_t rows, int32_t n, const float *x, const float *scale,
                             const float *shift, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_scale_shift_fwd(__func__, rows, n, x, y));
  if (rows == 0 || n == 0) return SL_OK;
  int parallel = sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN && rows > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    if (scale != NULL && shift != NULL) {
#pragma omp simd
      for (int32_t j = 0; j < n; j++) yr[j] = xr[j] * scale[j] + shift[j];
    } else if (scale != NULL) {
#pragma omp simd
      for (int32_t j = 0; j < n; j++) yr[j] = xr[j] * scale[j];
    } else if (shift != NULL) {
#pragma omp simd
      for (int32_t j = 0; j < n; j++) yr[j] = xr[j] + shift[j];
    } else {
      memmove(yr, xr, (size_t)n * sizeof(float));
    }
  }
  return SL_OK;
}

sl_status sl_scale_shift_bwd(int64_t rows, int32_t n, const float *x, const float *scale,
                             const float *dy, float *dx, float *dscale, float *dshift) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_scale_shift_bwd(__func__, rows, n, x, dy, dscale));
  if (n == 0) return SL_OK;
  if (rows == 0) {
    if (dscale != NULL) memset(dscale, 0, (size_t)n * sizeof(float));
    if (dshift != NULL) memset(dshift, 0, (size_t)n * sizeof(float));
    return SL_OK;
  }
  if (dx != NULL) {
    int parallel = sl_mul_size(rows, n) > SL_NN_PARALLEL_MIN && rows > 1;
#pragma omp parallel for num_threads(sl_threads()) if (parallel) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float *dyr = dy + r * n;
      float *dxr = dx + r * n;
      if (scale != NULL) {
#pragma omp simd
        for (int32_t j = 0; j < n; j++) dxr[j] = dyr[j] * scale[j];
      } else {
        memmove(dxr, dyr, (size_t)n * sizeof(float));
      }
    }
  }
  if (dscale != NULL || dshift != NULL) column_sums(rows, n, dy, x, NULL, NULL, dscale, dshift);
  return SL_OK;
}
