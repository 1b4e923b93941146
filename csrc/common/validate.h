/*
 * validate.h — host-side argument checks shared by the CPU and CUDA libraries, so that both
 * report the same status and the same message for the same bad call. Each function checks what
 * can be checked without reading array contents (sizes, flags, overflow, null pointers) and
 * names `fn`, the public entry point, in its message. Index scans stay with each backend (the
 * CUDA library scans on the device). Not part of the ABI.
 */
#ifndef SL_VALIDATE_H
#define SL_VALIDATE_H

#include <stdint.h>

#include "sparselinear.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns from the calling entry point when a validator reports an error. */
#define SL_VALIDATE(call)                                                        \
  do {                                                                           \
    sl_status sl_validate_status_ = (call);                                      \
    if (sl_validate_status_ != SL_OK) return sl_validate_status_;                \
  } while (0)

/* ---- sparse formats ---- */
sl_status sl_validate_coo_to_csr(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *rows, const int32_t *cols,
                                 const float *values_in, const int32_t *row_ptr,
                                 const int32_t *col_idx, const float *values_out,
                                 const int64_t *nnz_out, const int64_t *first_duplicate);
sl_status sl_validate_csr_validate(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                   const int32_t *row_ptr, const int32_t *col_idx);
sl_status sl_validate_csr_to_csc(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx,
                                 const int32_t *col_ptr, const int32_t *row_idx,
                                 const int32_t *csc_to_csr);

/* ---- sparse kernels (the pattern's offsets and indices are each library's to check) ---- */
/* fm 1: the feature-major form (sl_spmm_fwd_fm, sl_spmm_bwd_fm), whose arrays are named xT, yT,
 * dyT and dxT in messages, as their prototypes name them. */
sl_status sl_validate_spmm_fwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                               int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                               const float *values, const float *x, const float *y, int fm);
sl_status sl_validate_spmm_bwd_input(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                     int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                                     const int32_t *csc_to_csr, const float *values,
                                     const float *dy, const float *dx);
sl_status sl_validate_spmm_bwd_input_csr(const char *fn, int32_t batch, int32_t n_in,
                                         int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                                         const int32_t *col_idx, const float *values,
                                         const float *dy, const float *dx);
sl_status sl_validate_spmm_bwd_csr(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                   int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                                   const float *values, const float *x, const float *dy,
                                   const float *dx, const float *dw);
sl_status sl_validate_spmm_bwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                               int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                               const int32_t *col_ptr, const int32_t *row_idx,
                               const int32_t *csc_to_csr, const float *values, const float *x,
                               const float *dy, const float *dx, const float *dw, int fm);
sl_status sl_validate_spmm_fwd_permuted(const char *fn, int32_t batch, int32_t n_in,
                                        int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                                        const int32_t *col_idx, const int32_t *csr_to_csc,
                                        const float *values, const float *x, const float *y);
sl_status sl_validate_spmm_bwd_csc(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                   int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                                   const float *values, const float *x, const float *dy,
                                   const float *dx, const float *dw);
sl_status sl_validate_sddmm(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                            int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                            const float *x, const float *dy, const float *dw);
sl_status sl_validate_group_collapse(const char *fn, int32_t n_in, int32_t n_out, int64_t nnz,
                                    const int32_t *row_ptr, const int32_t *col_idx,
                                    const float *values, int32_t size, const float *g);
sl_status sl_validate_group_collapse_bwd(const char *fn, int32_t n_in, int32_t n_out,
                                        int64_t nnz, const int32_t *row_ptr,
                                        const int32_t *col_idx, const float *dg, int32_t size,
                                        const float *dw);
sl_status sl_validate_bias_grad(const char *fn, int32_t batch, int32_t n_out, const float *dy,
                                const float *db);

/* ---- optim ---- */
sl_status sl_validate_sgd_step(const char *fn, int64_t n, float lr, float momentum,
                               float dampening, float weight_decay, int32_t nesterov,
                               int32_t init_momentum, const float *param, const float *grad,
                               const float *momentum_buf);
sl_status sl_validate_adam_step(const char *fn, int64_t n, float lr, float beta1, float beta2,
                                float eps, float weight_decay, int32_t decoupled_weight_decay,
                                int32_t amsgrad, int64_t step, const float *param,
                                const float *grad, const float *exp_avg, const float *exp_avg_sq,
                                const float *max_exp_avg_sq);

/* ---- nn ---- */
sl_status sl_validate_layer_norm_fwd(const char *fn, int64_t rows, int32_t n, float eps,
                                     const float *x, int32_t relu, const float *y);
sl_status sl_validate_layer_norm_bwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                     const float *mean, const float *rstd, int32_t relu,
                                     const float *dy);
sl_status sl_validate_cross_entropy_fwd(const char *fn, int32_t batch, int32_t n_classes,
                                        const float *logits, const int32_t *labels,
                                        int32_t reduction, const float *loss);
sl_status sl_validate_cross_entropy_bwd(const char *fn, int32_t batch, int32_t n_classes,
                                        const float *logits, const int32_t *labels,
                                        const float *lse, const float *dloss,
                                        int32_t dloss_stride, const float *dlogits);
sl_status sl_validate_mse_fwd(const char *fn, int64_t n, const float *pred, const float *target,
                              int32_t reduction, const float *loss);
sl_status sl_validate_mse_bwd(const char *fn, int64_t n, const float *pred, const float *target,
                              const float *dloss, int32_t dloss_stride, const float *dpred,
                              const float *dtarget);
sl_status sl_validate_scale_shift_fwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                      const float *y);
sl_status sl_validate_scale_shift_bwd(const char *fn, int64_t rows, int32_t n, const float *x,
                                      const float *dy, const float *dscale);

/* ---- topk ---- */
sl_status sl_validate_csr_drop_grow(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                    const int32_t *row_ptr, const int32_t *col_idx,
                                    const float *values, int64_t n_drop,
                                    const int32_t *drop_idx, int64_t n_grow,
                                    const int32_t *grow_rows, const int32_t *grow_cols,
                                    int32_t flags, const int32_t *new_row_ptr,
                                    const int32_t *new_col_idx, const float *new_values);

sl_status sl_validate_topk(const char *fn, int64_t n, const float *scores, int64_t k,
                           int32_t flags, const int32_t *out_idx);
/* The checks before the pattern scan; k against the absent count and the outputs come after. */
sl_status sl_validate_dense_grad_topk(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                                      int64_t nnz, const int32_t *row_ptr,
                                      const int32_t *col_idx, int64_t k, int64_t max_size);
/* The checks before the pattern scan; k against the absent count and the outputs come after. */
sl_status sl_validate_sample_absent(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                                    const int32_t *row_ptr, const int32_t *col_idx, int64_t k);

/* ---- kwinners ---- */
sl_status sl_validate_kwinners_fwd(const char *fn, int64_t rows, int32_t n, int32_t k,
                                   float boost_strength, float duty_alpha, const float *x,
                                   const float *duty_cycle, const float *y,
                                   const int32_t *win_counts);
sl_status sl_validate_kwinners_bwd(const char *fn, int64_t rows, int32_t n, int32_t k,
                                   const int32_t *winners, const float *dy, const float *dx);

/* ---- elementwise ---- */
sl_status sl_validate_unary(const char *fn, int32_t op, int64_t n, const float *x,
                            const float *y);
sl_status sl_validate_unary_bwd(const char *fn, int32_t op, int64_t n, const float *x,
                                const float *y, const float *dy, const float *dx);
sl_status sl_validate_log_softmax_fwd(const char *fn, int64_t rows, int32_t cols, const float *x,
                                      const float *y);
sl_status sl_validate_log_softmax_bwd(const char *fn, int64_t rows, int32_t cols, const float *y,
                                      const float *dy, const float *dx);

/* ---- reduce ---- */
sl_status sl_validate_sum_axis(const char *fn, int64_t outer, int64_t len, int64_t inner,
                               const float *x, const float *y);
sl_status sl_validate_sum_all(const char *fn, int64_t n, const float *x, const float *y);
/* After sl_check_shape gave numel; sets *y_numel (the output size) when it returns SL_OK. */
sl_status sl_validate_sum_dims(const char *fn, int32_t ndim, const int64_t *shape,
                               int64_t numel, int32_t reduce_mask, const float *x,
                               const float *y, int64_t *y_numel);

/* ---- dense ---- */
sl_status sl_validate_gemm(const char *fn, int32_t trans_a, int32_t trans_b, int32_t m,
                           int32_t n, int32_t k, const float *a, int32_t lda, const float *b,
                           int32_t ldb, const float *c, int32_t ldc);
sl_status sl_validate_gemm_batched(const char *fn, int32_t trans_a, int32_t trans_b,
                                   int32_t batch, int32_t m, int32_t n, int32_t k, const float *a,
                                   int32_t lda, int64_t stride_a, const float *b, int32_t ldb,
                                   int64_t stride_b, const float *c, int32_t ldc,
                                   int64_t stride_c);

#ifdef __cplusplus
}
#endif

#endif /* SL_VALIDATE_H */
