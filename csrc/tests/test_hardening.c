/*
 * test_hardening.c — regression tests for the native hardening review (issue 7) and the bugs
 * the fuzzers (fuzz/) found, plus a sweep that calls entry points with null pointers,
 * negative sizes and sizes whose products overflow: each call must fail with a message that
 * names the function, never crash. Run under ASan + UBSan in CI, where the signed-overflow
 * regressions below abort if they come back.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "sparselinear.h"

#include "expect.h"

#define EXPECT_STATUS(call, code)                                                \
  do {                                                                           \
    sl_status st_ = (call);                                                      \
    EXPECT(st_ == (code), "%s returned %d (expected %d): %s", #call, st_, (code), \
           sl_last_error());                                                     \
  } while (0)

/* A rejected call: not OK, and the message starts with the function's name. */
#define EXPECT_REJECTED(fn, call)                                                \
  do {                                                                           \
    sl_status st_ = (call);                                                      \
    EXPECT(st_ != SL_OK, "%s was accepted", #call);                              \
    EXPECT(strncmp(sl_last_error(), #fn ": ", strlen(#fn ": ")) == 0,            \
           "%s: message does not name %s: '%s'", #call, #fn, sl_last_error());   \
  } while (0)

/* ---- Found by fuzz_elementwise: signed overflow in size products of empty tensors. */

static void test_empty_tensors_with_huge_sizes(void) {
  const int64_t huge = (int64_t)1 << 40;
  float y[1] = {7.0f};
  /* sl_sum_dims multiplied every size into x's strides before noticing numel == 0:
   * 2^40 * 2^40 overflowed int64 (UB). */
  const int64_t shape3[3] = {0, huge, huge};
  EXPECT_STATUS(sl_sum_dims(3, shape3, 1, 1.0f, NULL, y), SL_E_OVERFLOW); /* y: 2^80 elements */
  EXPECT_STATUS(sl_sum_dims(3, shape3, 7, 1.0f, NULL, y), SL_OK);         /* y: 1 element */
  EXPECT(y[0] == 0.0f, "the sum of nothing is 0, got %g", y[0]);

  /* sl_layout_init (strided.h) multiplied a stride by a size to test whether dimensions merge:
   * strides of an empty tensor are unchecked, so 2^62 * 2 overflowed (UB). */
  const int64_t shape2[2] = {0, 2};
  const int64_t big_strides[2] = {1, (int64_t)1 << 62};
  const int64_t zero_strides[3] = {0, 0, 0};
  EXPECT_STATUS(sl_binary(SL_BINARY_ADD, 2, shape2, NULL, 0, big_strides, NULL, 0, zero_strides,
                          NULL),
                SL_OK);
  EXPECT_STATUS(sl_binary_bwd(SL_BINARY_MUL, 2, shape2, NULL, 0, big_strides, NULL, 0,
                              zero_strides, NULL, NULL, NULL),
                SL_OK);
  EXPECT_STATUS(sl_strided_copy(2, shape2, 1.0f, NULL, 0, big_strides, NULL), SL_OK);
  /* Huge broadcast dimensions around an empty one: nothing to do, no size product formed. */
  const int64_t shape_b[3] = {huge, 0, huge};
  EXPECT_STATUS(sl_binary(SL_BINARY_MUL, 3, shape_b, NULL, 0, zero_strides, NULL, 0,
                          zero_strides, NULL),
                SL_OK);
}

/* ---- Review of csrc/cpu/topk.c: sizes of k-sized scratch computed in size_t. */

static void test_topk_scratch_overflow(void) {
  /* sl_csr_drop_grow: nnz - n_drop + n_grow overflowed int64 for n_grow near INT64_MAX (UB),
   * and the wrapped sum passed the int32 check. */
  int32_t row_ptr[2] = {0, 1}, col_idx[1] = {0}, drop_idx[1] = {0}, g[1] = {0};
  int32_t new_row_ptr[2] = {-9, -9};
  EXPECT_STATUS(sl_csr_drop_grow(1, 1, 1, row_ptr, col_idx, NULL, 0, drop_idx, INT64_MAX, g, g, 0,
                                 new_row_ptr, NULL, NULL, NULL),
                SL_E_OVERFLOW);
  EXPECT(strstr(sl_last_error(), "n_grow") != NULL, "message: %s", sl_last_error());
  EXPECT(new_row_ptr[0] == -9, "a rejected call wrote new_row_ptr");

  /* sl_sample_absent / sl_dense_grad_topk sized k-entry scratch as k * 8 in size_t, which
   * wraps for k >= 2^61 (a pattern with that many absent positions needs 2^30 rows). Found by
   * review: a small wrapped buffer needs a >4 GiB pattern to be reached, so before the fix
   * these calls failed with SL_E_OUT_OF_MEMORY from another allocation; now such a k is
   * rejected up front as an overflow, before the pattern is read. Its row_ptr (all zeros) is
   * mapped lazily, so the test costs no memory. */
  const int32_t n_rows = (1 << 30) + 3, n_cols = INT32_MAX;
  const size_t bytes = ((size_t)n_rows + 1) * sizeof(int32_t);
  int32_t *zeros = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (zeros == MAP_FAILED) {
    printf("skip: cannot map %zu bytes of zeros for the huge-k tests\n", bytes);
    return;
  }
  const int64_t k = (int64_t)1 << 61;
  int32_t out_rows[1], out_cols[1];
  EXPECT_STATUS(sl_sample_absent(n_rows, n_cols, 0, zeros, NULL, k, 1, out_rows, out_cols),
                SL_E_OVERFLOW);
  EXPECT(strstr(sl_last_error(), "k = ") != NULL, "message: %s", sl_last_error());
  EXPECT_STATUS(sl_dense_grad_topk(0, n_cols, n_rows, NULL, NULL, 0, zeros, NULL, k, n_cols,
                                   out_rows, out_cols, NULL),
                SL_E_OVERFLOW);
  munmap(zeros, bytes);
}

/* ---- Sweep: null pointers, negative sizes, overflowing products. */

static void test_sweep(void) {
  float f[4] = {0};
  int32_t i32[4] = {0};
  int64_t i64 = 0;
  const int64_t shape[2] = {2, 2}, strides[2] = {2, 1}, neg_shape[1] = {-1};

  /* sparse format */
  EXPECT_REJECTED(sl_coo_to_csr, sl_coo_to_csr(2, 2, 1, NULL, i32, NULL, i32, i32, NULL, NULL,
                                               &i64, &i64));
  EXPECT_REJECTED(sl_coo_to_csr, sl_coo_to_csr(-1, 2, 0, i32, i32, NULL, i32, i32, NULL, NULL,
                                               &i64, &i64));
  EXPECT_REJECTED(sl_coo_to_csr, sl_coo_to_csr(2, 2, (int64_t)INT32_MAX + 1, i32, i32, NULL,
                                               i32, i32, NULL, NULL, &i64, &i64));
  EXPECT_REJECTED(sl_coo_to_csr, sl_coo_to_csr(2, 2, 0, NULL, NULL, NULL, i32, NULL, NULL, NULL,
                                               NULL, &i64));
  EXPECT_REJECTED(sl_csr_validate, sl_csr_validate(2, 2, 1, NULL, i32));
  EXPECT_REJECTED(sl_csr_validate, sl_csr_validate(2, 2, -1, i32, i32));
  EXPECT_REJECTED(sl_csr_to_csc, sl_csr_to_csc(2, 2, 0, i32, NULL, NULL, NULL, NULL));

  /* sparse kernels: batch * n_in products are checked in int64; null arrays rejected */
  EXPECT_REJECTED(sl_spmm_fwd, sl_spmm_fwd(INT32_MAX, INT32_MAX, 1, 0, i32, NULL, NULL, NULL,
                                           NULL, f));
  EXPECT_REJECTED(sl_spmm_fwd, sl_spmm_fwd(1, 1, 1, 0, NULL, NULL, NULL, NULL, f, f));
  EXPECT_REJECTED(sl_spmm_fwd, sl_spmm_fwd(-1, 1, 1, 0, i32, NULL, NULL, NULL, f, f));
  EXPECT_REJECTED(sl_spmm_bwd_input, sl_spmm_bwd_input(1, 1, 1, 1, i32, NULL, i32, f, f, f));
  EXPECT_REJECTED(sl_advise_huge_pages, sl_advise_huge_pages(NULL, 1));
  EXPECT_REJECTED(sl_advise_huge_pages, sl_advise_huge_pages(f, INT64_MIN));
  EXPECT_REJECTED(sl_advise_huge_pages,
                  sl_advise_huge_pages((void *)(UINTPTR_MAX - 8), INT64_MAX));
  EXPECT_REJECTED(sl_spmm_bwd_csr, sl_spmm_bwd_csr(1, 1, 1, 1, i32, i32, f, NULL, f, f, f));
  EXPECT_REJECTED(sl_spmm_bwd_csr, sl_spmm_bwd_csr(1, 1, 1, 1, i32, i32, f, f, f, f, NULL));
  EXPECT_REJECTED(sl_spmm_bwd_csr,
                  sl_spmm_bwd_csr(INT32_MAX, INT32_MAX, 1, 0, i32, NULL, NULL, NULL, f, f, NULL));
  EXPECT_REJECTED(sl_sddmm, sl_sddmm(1, 1, 1, 1, i32, i32, f, f, NULL));
  EXPECT_REJECTED(sl_sddmm, sl_sddmm(1, 1, 1, (int64_t)1 << 40, i32, i32, f, f, f));
  EXPECT_REJECTED(sl_bias_grad, sl_bias_grad(1, 1, NULL, f));
  EXPECT_REJECTED(sl_group_collapse, sl_group_collapse(1, 1, 1, i32, NULL, f, 1, f));
  EXPECT_REJECTED(sl_group_collapse, sl_group_collapse(1, 1, 0, i32, NULL, NULL, 0, f));
  EXPECT_REJECTED(sl_group_collapse, sl_group_collapse(-1, 1, 0, i32, NULL, NULL, 1, f));
  EXPECT_REJECTED(sl_group_collapse_bwd, sl_group_collapse_bwd(1, 1, 1, i32, i32, f, 1, NULL));
  EXPECT_REJECTED(sl_group_collapse_bwd,
                  sl_group_collapse_bwd(1, 1, (int64_t)1 << 40, i32, i32, f, 1, f));

  /* vectors */
  EXPECT_REJECTED(sl_fill, sl_fill(INT64_MAX, 0.0f, NULL));
  EXPECT_REJECTED(sl_axpy, sl_axpy(-1, 1.0f, f, f));
  EXPECT_REJECTED(sl_copy, sl_copy(1, f, NULL));

  /* dense */
  EXPECT_REJECTED(sl_gemm, sl_gemm(0, 0, 2, 2, 2, 1.0f, f, 1, f, 2, 0.0f, f, 2));
  EXPECT_REJECTED(sl_gemm, sl_gemm(2, 0, 1, 1, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1));
  EXPECT_REJECTED(sl_gemm, sl_gemm(0, 0, 1, 1, 1, 1.0f, NULL, 1, f, 1, 0.0f, f, 1));
  EXPECT_REJECTED(sl_gemm_batched, sl_gemm_batched(0, 0, INT32_MAX, 1, 1, 1, 1.0f, f, 1,
                                                   INT64_MAX / 2, f, 1, 0, 0.0f, f, 1, 1));
  EXPECT_REJECTED(sl_gemm_batched, sl_gemm_batched(0, 0, 2, 2, 2, 2, 1.0f, f, 2, 4, f, 2, 4,
                                                   0.0f, f, 2, 1)); /* overlapping C */
  EXPECT_REJECTED(sl_binary, sl_binary(SL_BINARY_ADD, 2, shape, f, 3, strides, f, 4, strides, f));
  EXPECT_REJECTED(sl_binary, sl_binary(SL_BINARY_ADD, SL_MAX_DIMS + 1, shape, f, 4, strides, f,
                                       4, strides, f));
  EXPECT_REJECTED(sl_binary, sl_binary(7, 2, shape, f, 4, strides, f, 4, strides, f));
  EXPECT_REJECTED(sl_binary, sl_binary(SL_BINARY_ADD, 1, neg_shape, f, 4, strides, f, 4,
                                       strides, f));
  EXPECT_REJECTED(sl_binary_bwd, sl_binary_bwd(SL_BINARY_MUL, 2, shape, NULL, 4, strides, f, 4,
                                               strides, f, f, f));
  EXPECT_REJECTED(sl_strided_copy, sl_strided_copy(2, shape, 1.0f, f, 4, NULL, f));
  EXPECT_REJECTED(sl_unary, sl_unary(99, 1, 0, 0, f, f));
  EXPECT_REJECTED(sl_unary_bwd, sl_unary_bwd(0, 1, 0, 0, f, f, NULL, f));
  EXPECT_REJECTED(sl_sum_axis, sl_sum_axis(INT64_MAX, 2, 2, 1.0f, f, f));
  EXPECT_REJECTED(sl_sum_all, sl_sum_all(1, 1.0f, f, NULL));
  EXPECT_REJECTED(sl_sum_dims, sl_sum_dims(2, shape, 4, 1.0f, f, f));
  EXPECT_REJECTED(sl_log_softmax_fwd, sl_log_softmax_fwd(INT64_MAX, 4, f, f));
  EXPECT_REJECTED(sl_log_softmax_bwd, sl_log_softmax_bwd(1, 1, f, NULL, f));

  /* nn */
  EXPECT_REJECTED(sl_layer_norm_fwd, sl_layer_norm_fwd(INT64_MAX, 4, 1e-5f, f, NULL, NULL, 0,
                                                       f, NULL, NULL));
  EXPECT_REJECTED(sl_layer_norm_fwd, sl_layer_norm_fwd(1, 0, 1e-5f, f, NULL, NULL, 0, f,
                                                       NULL, NULL));
  EXPECT_REJECTED(sl_layer_norm_bwd, sl_layer_norm_bwd(1, 1, f, NULL, f, NULL, NULL, 0, f, f,
                                                       NULL, NULL));
  int32_t bad_label[1] = {5};
  EXPECT_STATUS(sl_cross_entropy_fwd(1, 4, f, bad_label, SL_REDUCTION_MEAN, f, NULL),
                SL_E_INDEX_OUT_OF_RANGE);
  EXPECT(strstr(sl_last_error(), "labels[0] = 5") != NULL, "message: %s", sl_last_error());
  EXPECT_REJECTED(sl_cross_entropy_fwd, sl_cross_entropy_fwd(1, 4, f, i32, 9, f, NULL));
  EXPECT_REJECTED(sl_cross_entropy_bwd, sl_cross_entropy_bwd(1, 4, f, i32, f, f, 2, 1.0f, f));
  EXPECT_REJECTED(sl_mse_fwd, sl_mse_fwd(1, f, NULL, SL_REDUCTION_MEAN, f));
  EXPECT_REJECTED(sl_mse_bwd, sl_mse_bwd(1, f, f, f, 0, 1.0f, NULL, NULL));
  EXPECT_REJECTED(sl_dropout_fwd, sl_dropout_fwd(1, 1.5, 0, f, f));
  EXPECT_REJECTED(sl_dropout_bwd, sl_dropout_bwd(1, 0.5, 0, NULL, f));
  EXPECT_REJECTED(sl_scale_shift_fwd, sl_scale_shift_fwd(INT64_MAX, 4, f, NULL, NULL, f));
  EXPECT_REJECTED(sl_scale_shift_bwd, sl_scale_shift_bwd(1, 1, NULL, f, f, f, f, NULL));
  EXPECT_REJECTED(sl_kwinners_fwd, sl_kwinners_fwd(INT64_MAX, 4, 1, 0.0f, 0.0f, f, NULL, f,
                                                   NULL, NULL));
  EXPECT_REJECTED(sl_kwinners_fwd, sl_kwinners_fwd(1, 4, 1, 1.0f, 0.0f, f, NULL, f, NULL, NULL));
  EXPECT_REJECTED(sl_kwinners_bwd, sl_kwinners_bwd(1, 4, 5, i32, f, f));

  /* optimizers */
  EXPECT_REJECTED(sl_sgd_step, sl_sgd_step(1, -1.0f, 0, 0, 0, 0, 0, f, f, NULL));
  EXPECT_REJECTED(sl_sgd_step, sl_sgd_step(1, 0.1f, 0.9f, 0, 0, 0, 0, f, f, NULL));
  EXPECT_REJECTED(sl_adam_step, sl_adam_step(1, 0.1f, 1.0f, 0.999f, 1e-8f, 0, 0, 0, 1, f, f, f,
                                             f, NULL));
  EXPECT_REJECTED(sl_adam_step, sl_adam_step(1, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 0, 1, 1, f, f, f,
                                             f, NULL));

  /* dynamic sparsity */
  EXPECT_REJECTED(sl_topk, sl_topk((int64_t)INT32_MAX + 1, f, 1, 0, i32));
  EXPECT_REJECTED(sl_topk, sl_topk(4, f, 1, 0, NULL));
  EXPECT_REJECTED(sl_dense_grad_topk, sl_dense_grad_topk(1, INT32_MAX, INT32_MAX, f, f, 0, i32,
                                                         i32, 1, 0, i32, i32, NULL));
  EXPECT_REJECTED(sl_sample_absent, sl_sample_absent(1, 1, 0, NULL, NULL, 1, 0, i32, i32));
  EXPECT_REJECTED(sl_csr_drop_grow, sl_csr_drop_grow(1, 1, 0, i32, NULL, NULL, 1, i32, 0, NULL,
                                                     NULL, 0, i32, NULL, NULL, NULL));

  /* A successful call clears the last error. */
  EXPECT_STATUS(sl_fill(1, 2.0f, f), SL_OK);
  EXPECT(sl_last_error()[0] == '\0', "last error not cleared: %s", sl_last_error());
}

int main(void) {
  test_empty_tensors_with_huge_sizes();
  test_topk_scratch_overflow();
  test_sweep();
  if (failures) {
    fprintf(stderr, "test_hardening: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_hardening: ok\n");
  return 0;
}
