/*
 * validate.c — host-side argument checks shared by the CPU and CUDA libraries (validate.h).
 * The messages are the library's public error text: tests assert on them, keep them stable.
 */
#include "validate.h"

#include <math.h>
#include <stddef.h>

#include "internal.h"

/* The SL_CHECK_* macros of internal.h, reporting as `fn` rather than this file's function. */
#define V_PTR(p)                                                                 \
  do {                                                                           \
    if ((p) == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", #p); \
  } while (0)

/* A pointer that must not be null when `count` elements are read or written through it. */
#define V_PTR_IF(p, count)                                                       \
  do {                                                                           \
    if ((count) > 0) V_PTR(p);                                                   \
  } while (0)

/* V_PTR_IF for an activation array of a sparse kernel: feature-major calls (fm 1) name it with
 * a "T" (xT, dyT), as their prototypes do. */
#define V_ACT_PTR_IF(p, count)                                                   \
  do {                                                                           \
    if ((count) > 0 && (p) == NULL)                                              \
      return sl_fail(SL_E_NULL_POINTER, fn, "%s%s must not be null", #p, fm ? "T" : ""); \
  } while (0)

#define V_NONNEG(n)                                                              \
  do {                                                                           \
    if ((n) < 0)                                                                 \
      return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s must be >= 0, got %lld", #n, \
                     (long long)(n));                                            \
  } while (0)

#define V_ARG(cond, ...)                                                         \
  do {                                                                           \
    if (!(cond)) return sl_fail(SL_E_INVALID_ARGUMENT, fn, __VA_ARGS__);         \
  } while (0)

/* nnz must be >= 0 and fit the int32 positions of row_ptr / col_idx. */
#define V_NNZ32(nnz)                                                             \
  do {                                                                           \
    V_NONNEG(nnz);                                                               \
    if ((nnz) > INT32_MAX)                                                       \
      return sl_fail(SL_E_OVERFLOW, fn,                                          \
                     "nnz = %lld does not fit int32 indices (must be < 2^31)",   \
                     (long long)(nnz));                                          \
  } while (0)

#define V_ROWS_TIMES_N(rows, n)                                                  \
  do {                                                                           \
    if (sl_mul_size(rows, n) < 0)                                                \
      return sl_fail(SL_E_OVERFLOW, fn, "rows * n overflows (rows = %lld, n = %d)", \
                     (long long)(rows), (n));                                    \
  } while (0)

static int valid_reduction(int32_t reduction) {
  return reduction == SL_REDUCTION_NONE || reduction == SL_REDUCTION_MEAN ||
         reduction == SL_REDUCTION_SUM;
}

/* ------------------------------------------------------------------- optim ---- */

sl_status sl_validate_coo_to_csr(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *rows, const int32_t *cols,
                                 const float *values_in, const int32_t *row_ptr,
                                 const int32_t *col_idx, const float *values_out,
                                 const int64_t *nnz_out, const int64_t *first_duplicate) {
  V_NONNEG(n_rows);
  V_NONNEG(n_cols);
  V_NNZ32(nnz);
  V_PTR_IF(rows, nnz);
  V_PTR_IF(cols, nnz);
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR(nnz_out);
  V_PTR(first_duplicate);
  if (nnz > 0 && (values_in == NULL) != (values_out == NULL))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "values_in and values_out must both be null or both be non-null "
                   "(values_in is %s, values_out is %s)",
                   values_in ? "non-null" : "null", values_out ? "non-null" : "null");
  return SL_OK;
}

sl_status sl_validate_csr_validate(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                   const int32_t *row_ptr, const int32_t *col_idx) {
  V_NONNEG(n_rows);
  V_NONNEG(n_cols);
  V_NNZ32(nnz);
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  return SL_OK;
}

sl_status sl_validate_csr_to_csc(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx,
                                 const int32_t *col_ptr, const int32_t *row_idx,
                                 const int32_t *csc_to_csr) {
  SL_VALIDATE(sl_validate_csr_validate(fn, n_rows, n_cols, nnz, row_ptr, col_idx));
  V_PTR(col_ptr);
  V_PTR_IF(row_idx, nnz);
  V_PTR_IF(csc_to_csr, nnz);
  return SL_OK;
}

/* The sizes shared by the sparse kernels. */
static sl_status sparse_sizes(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                              int64_t nnz) {
  V_NONNEG(batch);
  V_NONNEG(n_in);
  V_NONNEG(n_out);
  V_NNZ32(nnz);
  return SL_OK;
}

sl_status sl_validate_spmm_fwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                               int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                               const float *values, const float *x, const float *y, int fm) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR_IF(values, nnz);
  V_ACT_PTR_IF(x, sl_mul_size(batch, n_in));
  V_ACT_PTR_IF(y, sl_mul_size(batch, n_out));
  return SL_OK;
}

sl_status sl_validate_spmm_bwd_input(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                     int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                                     const int32_t *csc_to_csr, const float *values,
                                     const float *dy, const float *dx) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(col_ptr);
  V_PTR_IF(row_idx, nnz);
  V_PTR_IF(csc_to_csr, nnz);
  V_PTR_IF(values, nnz);
  V_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_PTR_IF(dx, sl_mul_size(batch, n_in));
  return SL_OK;
}

sl_status sl_validate_spmm_bwd_input_csr(const char *fn, int32_t batch, int32_t n_in,
                                         int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                                         const int32_t *col_idx, const float *values,
                                         const float *dy, const float *dx) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR_IF(values, nnz);
  V_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_PTR_IF(dx, sl_mul_size(batch, n_in));
  return SL_OK;
}

sl_status sl_validate_spmm_bwd_csr(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                   int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                                   const float *values, const float *x, const float *dy,
                                   const float *dx, const float *dw) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR_IF(values, nnz);
  V_PTR_IF(x, sl_mul_size(batch, n_in));
  V_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_PTR_IF(dx, sl_mul_size(batch, n_in));
  V_PTR_IF(dw, nnz);
  return SL_OK;
}

/* The arguments sl_spmm_bwd shares with sl_spmm_bwd_csc: sizes, the CSC view, values and the
 * activations (fm: feature-major names). */
static sl_status spmm_bwd_csc_args(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                   int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                                   const float *values, const float *x, const float *dy,
                                   const float *dx, const float *dw, int fm) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(col_ptr);
  V_PTR_IF(row_idx, nnz);
  V_PTR_IF(values, nnz);
  V_ACT_PTR_IF(x, sl_mul_size(batch, n_in));
  V_ACT_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_ACT_PTR_IF(dx, sl_mul_size(batch, n_in));
  V_PTR_IF(dw, nnz);
  return SL_OK;
}

sl_status sl_validate_spmm_bwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                               int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                               const int32_t *col_ptr, const int32_t *row_idx,
                               const int32_t *csc_to_csr, const float *values, const float *x,
                               const float *dy, const float *dx, const float *dw, int fm) {
  SL_VALIDATE(spmm_bwd_csc_args(fn, batch, n_in, n_out, nnz, col_ptr, row_idx, values, x, dy, dx,
                                dw, fm));
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR_IF(csc_to_csr, nnz);
  return SL_OK;
}

sl_status sl_validate_spmm_fwd_permuted(const char *fn, int32_t batch, int32_t n_in,
                                        int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                                        const int32_t *col_idx, const int32_t *csr_to_csc,
                                        const float *values, const float *x, const float *y) {
  SL_VALIDATE(sl_validate_spmm_fwd(fn, batch, n_in, n_out, nnz, row_ptr, col_idx, values, x, y, 0));
  V_PTR_IF(csr_to_csc, nnz);
  return SL_OK;
}

sl_status sl_validate_spmm_bwd_csc(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                   int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                                   const float *values, const float *x, const float *dy,
                                   const float *dx, const float *dw) {
  return spmm_bwd_csc_args(fn, batch, n_in, n_out, nnz, col_ptr, row_idx, values, x, dy, dx, dw,
                           0);
}

sl_status sl_validate_sddmm(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                            int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                            const float *x, const float *dy, const float *dw) {
  SL_VALIDATE(sparse_sizes(fn, batch, n_in, n_out, nnz));
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  V_PTR_IF(x, sl_mul_size(batch, n_in));
  V_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_PTR_IF(dw, nnz);
  return SL_OK;
}

/* The part the two group-collapse calls share: sizes, size >= 1 and the pattern's pointers. */
static sl_status group_collapse_sizes(const char *fn, int32_t n_in, int32_t n_out, int64_t nnz,
                                      const int32_t *row_ptr, const int32_t *col_idx,
                                      int32_t size) {
  SL_VALIDATE(sparse_sizes(fn, 0, n_in, n_out, nnz));
  V_ARG(size >= 1, "size must be >= 1 (outputs per group), got %d", size);
  V_PTR(row_ptr);
  V_PTR_IF(col_idx, nnz);
  return SL_OK;
}

sl_status sl_validate_group_collapse(const char *fn, int32_t n_in, int32_t n_out, int64_t nnz,
                                     const int32_t *row_ptr, const int32_t *col_idx,
                                     const float *values, int32_t size, const float *g) {
  SL_VALIDATE(group_collapse_sizes(fn, n_in, n_out, nnz, row_ptr, col_idx, size));
  V_PTR_IF(values, nnz);
  V_PTR_IF(g, sl_mul_size(size, n_in));
  return SL_OK;
}

sl_status sl_validate_group_collapse_bwd(const char *fn, int32_t n_in, int32_t n_out,
                                         int64_t nnz, const int32_t *row_ptr,
                                         const int32_t *col_idx, const float *dg, int32_t size,
                                         const float *dw) {
  SL_VALIDATE(group_collapse_sizes(fn, n_in, n_out, nnz, row_ptr, col_idx, size));
  V_PTR_IF(dg, sl_mul_size(size, n_in));
  V_PTR_IF(dw, nnz);
  return SL_OK;
}

sl_status sl_validate_bias_grad(const char *fn, int32_t batch, int32_t n_out, const float *dy,
                                const float *db) {
  V_NONNEG(batch);
  V_NONNEG(n_out);
  V_PTR_IF(dy, sl_mul_size(batch, n_out));
  V_PTR_IF(db, n_out);
  return SL_OK;
}

sl_status sl_validate_sgd_step(const char *fn, int64_t n, float lr, float momentum,
                               float dampening, float weight_decay, int32_t nesterov,
                               int32_t init_momentum, const float *param, const float *grad,
                               const float *momentum_buf) {
  V_NONNEG(n);
  V_ARG(isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got %g", (double)lr);
  V_ARG(isfinite(momentum) && momentum >= 0, "momentum must be finite and >= 0, got %g",
        (double)momentum);
  V_ARG(isfinite(dampening), "dampening must be finite, got %g", (double)dampening);
  V_ARG(isfinite(weight_decay) && weight_decay >= 0,
        "weight_decay must be finite and >= 0, got %g", (double)weight_decay);
  V_ARG(nesterov == 0 || nesterov == 1, "nesterov must be 0 or 1, got %d", nesterov);
  V_ARG(init_momentum == 0 || init_momentum == 1, "init_momentum must be 0 or 1, got %d",
        init_momentum);
  V_ARG(!nesterov || (momentum > 0 && dampening == 0),
        "nesterov needs momentum > 0 and dampening 0 (got momentum %g, dampening %g)",
        (double)momentum, (double)dampening);
  if (n == 0) return SL_OK;
  V_PTR(param);
  V_PTR(grad);
  if (momentum != 0) V_PTR(momentum_buf);
  return SL_OK;
}

sl_status sl_validate_adam_step(const char *fn, int64_t n, float lr, float beta1, float beta2,
                                float eps, float weight_decay, int32_t decoupled_weight_decay,
                                int32_t amsgrad, int64_t step, const float *param,
                                const float *grad, const float *exp_avg, const float *exp_avg_sq,
                                const float *max_exp_avg_sq) {
  V_NONNEG(n);
  V_ARG(isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got %g", (double)lr);
  V_ARG(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got %g", (double)beta1);
  V_ARG(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got %g", (double)beta2);
  V_ARG(isfinite(eps) && eps >= 0, "eps must be finite and >= 0, got %g", (double)eps);
  V_ARG(isfinite(weight_decay) && weight_decay >= 0,
        "weight_decay must be finite and >= 0, got %g", (double)weight_decay);
  V_ARG(decoupled_weight_decay == 0 || decoupled_weight_decay == 1,
        "decoupled_weight_decay must be 0 or 1, got %d", decoupled_weight_decay);
  V_ARG(amsgrad == 0 || amsgrad == 1, "amsgrad must be 0 or 1, got %d", amsgrad);
  V_ARG(step >= 1, "step must be >= 1 (the count including this update), got %lld",
        (long long)step);
  if (n == 0) return SL_OK;
  V_PTR(param);
  V_PTR(grad);
  V_PTR(exp_avg);
  V_PTR(exp_avg_sq);
  if (amsgrad) V_PTR(max_exp_avg_sq);
  return SL_OK;
}

/* ---------------------------------------------------------------------- nn ---- */

sl_status sl_validate_layer_norm_fwd(const char *fn, int64_t rows, int32_t n, float eps,
                                     const float *x, int32_t relu, const float *y) {
  V_NONNEG(rows);
  V_ARG(n >= 1, "n must be >= 1, got %d", n);
  V_ARG(isfinite(eps) && eps >= 0, "eps must be finite and >= 0, got %g", (double)eps);
  V_ARG(relu == 0 || relu == 1, "relu must be 0 or 1, got %d", relu);
  V_ROWS_TIMES_N(rows, n);
  if (rows == 0) return SL_OK;
  V_PTR(x);
  V_PTR(y);
  return SL_OK;
}

sl_status sl_validate_layer_norm_bwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                     const float *mean, const float *rstd, int32_t relu,
                                     const float *dy) {
  V_NONNEG(rows);
  V_ARG(n >= 1, "n must be >= 1, got %d", n);
  V_ARG(relu == 0 || relu == 1, "relu must be 0 or 1, got %d", relu);
  V_ROWS_TIMES_N(rows, n);
  /* rows == 0: only dgamma / dbeta (zeros) are written. */
  if (rows == 0) return SL_OK;
  V_PTR(x);
  V_PTR(mean);
  V_PTR(rstd);
  V_PTR(dy);
  return SL_OK;
}

sl_status sl_validate_cross_entropy_fwd(const char *fn, int32_t batch, int32_t n_classes,
                                        const float *logits, const int32_t *labels,
                                        int32_t reduction, const float *loss) {
  V_NONNEG(batch);
  V_ARG(n_classes >= 1, "n_classes must be >= 1, got %d", n_classes);
  V_ARG(valid_reduction(reduction), "reduction must be 0 (none), 1 (mean) or 2 (sum), got %d",
        reduction);
  /* An empty batch kept per sample ("none") has no loss to write: its buffer may be null. */
  if (batch > 0 || reduction != SL_REDUCTION_NONE) V_PTR(loss);
  if (batch > 0) {
    V_PTR(logits);
    V_PTR(labels);
  }
  return SL_OK;
}

sl_status sl_validate_cross_entropy_bwd(const char *fn, int32_t batch, int32_t n_classes,
                                        const float *logits, const int32_t *labels,
                                        const float *lse, const float *dloss,
                                        int32_t dloss_stride, const float *dlogits) {
  V_NONNEG(batch);
  V_ARG(n_classes >= 1, "n_classes must be >= 1, got %d", n_classes);
  V_ARG(dloss_stride == 0 || dloss_stride == 1, "dloss_stride must be 0 or 1, got %d",
        dloss_stride);
  if (batch == 0) return SL_OK;
  V_PTR(logits);
  V_PTR(labels);
  V_PTR(lse);
  V_PTR(dloss);
  V_PTR(dlogits);
  return SL_OK;
}

sl_status sl_validate_mse_fwd(const char *fn, int64_t n, const float *pred, const float *target,
                              int32_t reduction, const float *loss) {
  V_NONNEG(n);
  V_ARG(valid_reduction(reduction), "reduction must be 0 (none), 1 (mean) or 2 (sum), got %d",
        reduction);
  if (n > 0 || reduction != SL_REDUCTION_NONE) V_PTR(loss);
  if (n > 0) {
    V_PTR(pred);
    V_PTR(target);
  }
  return SL_OK;
}

sl_status sl_validate_mse_bwd(const char *fn, int64_t n, const float *pred, const float *target,
                              const float *dloss, int32_t dloss_stride, const float *dpred,
                              const float *dtarget) {
  V_NONNEG(n);
  V_ARG(dloss_stride == 0 || dloss_stride == 1, "dloss_stride must be 0 or 1, got %d",
        dloss_stride);
  if (n == 0) return SL_OK;
  V_PTR(pred);
  V_PTR(target);
  V_PTR(dloss);
  V_ARG(dpred != NULL || dtarget != NULL, "dpred and dtarget must not both be null");
  return SL_OK;
}

sl_status sl_validate_scale_shift_fwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                      const float *y) {
  V_NONNEG(rows);
  V_NONNEG(n);
  V_ROWS_TIMES_N(rows, n);
  if (rows == 0 || n == 0) return SL_OK;
  V_PTR(x);
  V_PTR(y);
  return SL_OK;
}

sl_status sl_validate_scale_shift_bwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                      const float *dy, const float *dscale) {
  V_NONNEG(rows);
  V_NONNEG(n);
  V_ROWS_TIMES_N(rows, n);
  /* rows == 0: only dscale / dshift (zeros) are written. */
  if (rows == 0 || n == 0) return SL_OK;
  V_PTR(dy);
  if (dscale != NULL) V_PTR(x);
  return SL_OK;
}

/* -------------------------------------------------------------------- topk ---- */

sl_status sl_validate_csr_drop_grow(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                    const int32_t *row_ptr, const int32_t *col_idx,
                                    const float *values, int64_t n_drop,
                                    const int32_t *drop_idx, int64_t n_grow,
                                    const int32_t *grow_rows, const int32_t *grow_cols,
                                    int32_t flags, const int32_t *new_row_ptr,
                                    const int32_t *new_col_idx, const float *new_values) {
  V_NONNEG(n_rows);
  V_NONNEG(n_cols);
  V_NNZ32(nnz);
  V_NONNEG(n_drop);
  V_NONNEG(n_grow);
  V_ARG((flags & ~SL_REGROW_KEEPS) == 0,
        "flags = %d has unknown bits (allowed: SL_REGROW_KEEPS = 1)", flags);
  V_ARG(n_drop <= nnz, "n_drop = %lld exceeds nnz = %lld", (long long)n_drop, (long long)nnz);
  /* Checked first: a larger n_grow cannot fit either, and could overflow the sum below. */
  if (n_grow > INT32_MAX)
    return sl_fail(SL_E_OVERFLOW, fn,
                   "n_grow = %lld does not fit int32 indices (must be < 2^31)", (long long)n_grow);
  const int64_t new_nnz = nnz - n_drop + n_grow;
  if (new_nnz > INT32_MAX)
    return sl_fail(SL_E_OVERFLOW, fn,
                   "nnz - n_drop + n_grow = %lld does not fit int32 indices (must be < 2^31)",
                   (long long)new_nnz);
  V_PTR(row_ptr);
  if (nnz > 0) V_PTR(col_idx);
  if (n_drop > 0) V_PTR(drop_idx);
  if (n_grow > 0) {
    V_PTR(grow_rows);
    V_PTR(grow_cols);
  }
  V_PTR(new_row_ptr);
  if (new_nnz > 0) V_PTR(new_col_idx);
  if (nnz > 0 && new_nnz > 0 && (values == NULL) != (new_values == NULL))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "values and new_values must both be null or both be non-null "
                   "(values is %s, new_values is %s)",
                   values ? "non-null" : "null", new_values ? "non-null" : "null");
  return SL_OK;
}

/* ------------------------------------------------------------- elementwise ---- */

sl_status sl_validate_unary(const char *fn, int32_t op, int64_t n, const float *x,
                            const float *y) {
  V_ARG(op >= SL_UNARY_NEG && op <= SL_UNARY_POW, "op must be in [0, %d], got %d", SL_UNARY_POW,
        op);
  V_NONNEG(n);
  if (n == 0) return SL_OK;
  V_PTR(x);
  V_PTR(y);
  return SL_OK;
}

sl_status sl_validate_unary_bwd(const char *fn, int32_t op, int64_t n, const float *x,
                                const float *y, const float *dy, const float *dx) {
  SL_VALIDATE(sl_validate_unary(fn, op, n, x, y));
  if (n == 0) return SL_OK;
  V_PTR(dy);
  V_PTR(dx);
  return SL_OK;
}

/* rows and cols >= 0, rows * cols fits int64. */
static sl_status validate_rows_cols(const char *fn, int64_t rows, int32_t cols) {
  V_NONNEG(rows);
  V_NONNEG(cols);
  if (sl_mul_size(rows, cols) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "rows * cols overflows int64");
  return SL_OK;
}

sl_status sl_validate_log_softmax_fwd(const char *fn, int64_t rows, int32_t cols, const float *x,
                                      const float *y) {
  SL_VALIDATE(validate_rows_cols(fn, rows, cols));
  if (rows == 0 || cols == 0) return SL_OK;
  V_PTR(x);
  V_PTR(y);
  return SL_OK;
}

sl_status sl_validate_log_softmax_bwd(const char *fn, int64_t rows, int32_t cols, const float *y,
                                      const float *dy, const float *dx) {
  SL_VALIDATE(validate_rows_cols(fn, rows, cols));
  if (rows == 0 || cols == 0) return SL_OK;
  V_PTR(y);
  V_PTR(dy);
  V_PTR(dx);
  return SL_OK;
}

/* ------------------------------------------------------------------ reduce ---- */

sl_status sl_validate_sum_axis(const char *fn, int64_t outer, int64_t len, int64_t inner,
                               const float *x, const float *y) {
  V_NONNEG(outer);
  V_NONNEG(len);
  V_NONNEG(inner);
  const int64_t out_n = sl_mul_size(outer, inner);
  if (out_n < 0 || sl_mul_size(out_n, len) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "outer * len * inner overflows int64");
  if (out_n == 0) return SL_OK;
  V_PTR(y);
  if (len > 0) V_PTR(x);
  return SL_OK;
}

sl_status sl_validate_sum_all(const char *fn, int64_t n, const float *x, const float *y) {
  V_NONNEG(n);
  V_PTR(y);
  if (n > 0) V_PTR(x);
  return SL_OK;
}

sl_status sl_validate_sum_dims(const char *fn, int32_t ndim, const int64_t *shape,
                               int64_t numel, int32_t reduce_mask, const float *x,
                               const float *y, int64_t *y_numel) {
  V_ARG(reduce_mask >= 0 && (ndim >= 31 || (reduce_mask >> ndim) == 0),
        "reduce_mask 0x%x has bits outside the %d dimensions", (unsigned)reduce_mask, ndim);
  int64_t count = 1;
  for (int d = 0; d < ndim; d++)
    if (!((reduce_mask >> d) & 1)) count = sl_mul_size(count, shape[d]);
  if (count < 0) return sl_fail(SL_E_OVERFLOW, fn, "the output size overflows int64");
  *y_numel = count;
  if (count == 0) return SL_OK;
  V_PTR(y);
  if (numel > 0) V_PTR(x);
  return SL_OK;
}

/* ------------------------------------------------------------------- dense ---- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

sl_status sl_validate_gemm(const char *fn, int32_t trans_a, int32_t trans_b, int32_t m,
                           int32_t n, int32_t k, const float *a, int32_t lda, const float *b,
                           int32_t ldb, const float *c, int32_t ldc) {
  if (trans_a != 0 && trans_a != 1)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "trans_a must be 0 or 1, got %d", trans_a);
  if (trans_b != 0 && trans_b != 1)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "trans_b must be 0 or 1, got %d", trans_b);
  if (m < 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "m must be >= 0, got %d", m);
  if (n < 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "n must be >= 0, got %d", n);
  if (k < 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "k must be >= 0, got %d", k);
  int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < max64(1, a_cols))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "lda must be >= max(1, %lld), got %d",
                   (long long)a_cols, lda);
  if (ldb < max64(1, b_cols))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "ldb must be >= max(1, %lld), got %d",
                   (long long)b_cols, ldb);
  if (ldc < max64(1, n))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "ldc must be >= max(1, %d), got %d", n, ldc);
  if (m > 0 && n > 0 && c == NULL)
    return sl_fail(SL_E_NULL_POINTER, fn, "c must not be null");
  if (m > 0 && n > 0 && k > 0) {
    if (a == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "a must not be null");
    if (b == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "b must not be null");
  }
  return SL_OK;
}

sl_status sl_validate_gemm_batched(const char *fn, int32_t trans_a, int32_t trans_b,
                                   int32_t batch, int32_t m, int32_t n, int32_t k, const float *a,
                                   int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                                   int64_t stride_b, const float *c, int32_t ldc,
                                   int64_t stride_c) {
  V_NONNEG(batch);
  V_NONNEG(stride_a);
  V_NONNEG(stride_b);
  V_NONNEG(stride_c);
  SL_VALIDATE(sl_validate_gemm(fn, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc));
  if (batch == 0 || m == 0 || n == 0) return SL_OK;
  /* One C spans (m - 1) * ldc + n elements; distinct batches must not overlap. */
  const int64_t c_extent = (int64_t)(m - 1) * ldc + n;
  V_ARG(stride_c == 0 || stride_c >= c_extent,
        "stride_c must be 0 or >= %lld (one C matrix), got %lld", (long long)c_extent,
        (long long)stride_c);
  if (sl_mul_size(batch - 1, stride_a) < 0 || sl_mul_size(batch - 1, stride_b) < 0 ||
      sl_mul_size(batch - 1, stride_c) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "batch * stride overflows int64 (batch %d)", batch);
  return SL_OK;
}

/* ---------------------------------------------------------- topk, sampling ---- */

sl_status sl_validate_topk(const char *fn, int64_t n, const float *scores, int64_t k,
                           int32_t flags, const int32_t *out_idx) {
  V_NONNEG(n);
  V_NONNEG(k);
  V_ARG(n <= INT32_MAX, "n = %lld does not fit the int32 output indices (must be < 2^31)",
        (long long)n);
  V_ARG(k <= n, "k = %lld exceeds n = %lld", (long long)k, (long long)n);
  V_ARG((flags & ~(SL_TOPK_SMALLEST | SL_TOPK_ABS)) == 0,
        "flags = %d has unknown bits (allowed: SL_TOPK_SMALLEST = 1 | SL_TOPK_ABS = 2)", flags);
  if (n > 0) V_PTR(scores);
  if (k > 0) V_PTR(out_idx);
  return SL_OK;
}

/* The candidate count k and the CSR pattern's pointers, shared by the absent-position pickers. */
static sl_status validate_candidates(const char *fn, int64_t nnz, const int32_t *row_ptr,
                                     const int32_t *col_idx, int64_t k) {
  V_NNZ32(nnz);
  V_NONNEG(k);
  /* Each of the k candidates takes 8-byte scratch entries: reject a k whose scratch size does
   * not fit size_t before anything is read or allocated (the product would wrap to a small
   * buffer). No machine can hold 2^59 candidates anyway. */
  if (k > INT64_MAX / 16)
    return sl_fail(SL_E_OVERFLOW, fn,
                   "k = %lld is too large: its scratch (8 bytes per position) overflows",
                   (long long)k);
  V_PTR(row_ptr);
  if (nnz > 0) V_PTR(col_idx);
  return SL_OK;
}

sl_status sl_validate_dense_grad_topk(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                      int64_t nnz, const int32_t *row_ptr,
                                      const int32_t *col_idx, int64_t k, int64_t max_size) {
  V_NONNEG(batch);
  V_NONNEG(n_in);
  V_NONNEG(n_out);
  SL_VALIDATE(validate_candidates(fn, nnz, row_ptr, col_idx, k));
  if (sl_mul_size(n_out, n_in) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "n_out * n_in = %d * %d overflows int64", n_out, n_in);
  V_ARG(max_size >= n_in && max_size >= 1,
        "max_size = %lld cannot hold one row of the gradient (n_in = %d entries)",
        (long long)max_size, n_in);
  return SL_OK;
}

sl_status sl_validate_sample_absent(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                    const int32_t *row_ptr, const int32_t *col_idx, int64_t k) {
  V_NONNEG(n_rows);
  V_NONNEG(n_cols);
  SL_VALIDATE(validate_candidates(fn, nnz, row_ptr, col_idx, k));
  if (sl_mul_size(n_rows, n_cols) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "n_rows * n_cols = %d * %d overflows int64", n_rows,
                   n_cols);
  return SL_OK;
}

/* ---------------------------------------------------------------- kwinners ---- */

/* rows >= 0, 1 <= k <= n, rows * n fits int64. */
static sl_status validate_kwinners_sizes(const char *fn, int64_t rows, int32_t n, int32_t k) {
  V_NONNEG(rows);
  V_ARG(n >= 1, "n must be >= 1, got %d", n);
  V_ARG(k >= 1 && k <= n, "k must be in [1, n] = [1, %d], got %d", n, k);
  return SL_OK;
}

static sl_status validate_kwinners_total(const char *fn, int64_t rows, int32_t n, int32_t k) {
  if (sl_mul_size(rows, n) < 0 || sl_mul_size(rows, k) < 0)
    return sl_fail(SL_E_OVERFLOW, fn, "rows * n overflows int64 (rows = %lld, n = %d)",
                   (long long)rows, n);
  return SL_OK;
}

sl_status sl_validate_kwinners_fwd(const char *fn, int64_t rows, int32_t n, int32_t k,
                                   float boost_strength, float duty_alpha, const float *x,
                                   const float *duty_cycle, const float *y,
                                   const int32_t *win_counts) {
  SL_VALIDATE(validate_kwinners_sizes(fn, rows, n, k));
  V_ARG(isfinite(boost_strength) && boost_strength >= 0.0f,
        "boost_strength must be finite and >= 0, got %g", (double)boost_strength);
  V_ARG(duty_alpha >= 0.0f && duty_alpha <= 1.0f, "duty_alpha must be in [0, 1], got %g",
        (double)duty_alpha);
  SL_VALIDATE(validate_kwinners_total(fn, rows, n, k));
  const int boosting = boost_strength > 0.0f;
  const int updating = duty_alpha > 0.0f && rows > 0;
  if (boosting || updating) V_PTR(duty_cycle);
  if (win_counts != NULL)
    V_ARG(rows <= INT32_MAX, "rows must be <= 2^31 - 1 when win_counts is given, got %lld",
          (long long)rows);
  if (rows > 0) {
    V_PTR(x);
    V_PTR(y);
  }
  return SL_OK;
}

sl_status sl_validate_kwinners_bwd(const char *fn, int64_t rows, int32_t n, int32_t k,
                                   const int32_t *winners, const float *dy, const float *dx) {
  SL_VALIDATE(validate_kwinners_sizes(fn, rows, n, k));
  SL_VALIDATE(validate_kwinners_total(fn, rows, n, k));
  if (rows == 0) return SL_OK;
  V_PTR(winners);
  V_PTR(dy);
  V_PTR(dx);
  return SL_OK;
}
