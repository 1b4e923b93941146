/*
 * test_abi_contract.c — the general rules of sparselinear.h, checked call by call: the status
 * code of each kind of failure (a size product that does not fit is SL_E_OVERFLOW, whichever
 * function forms it), the message naming the function and the argument as the prototype spells
 * it, and the thread-count API's limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sparselinear.h"

#include "expect.h"

/* call returns code and sl_last_error() is exactly "<fn>: <text>..." (text a prefix). */
#define EXPECT_FAILS(call, code, fn, text)                                        \
  do {                                                                           \
    sl_status st_ = (call);                                                      \
    const char *want_ = fn ": " text;                                            \
    EXPECT(st_ == (code), "%s returned %d (expected %d): %s", #call, st_, (code), \
           sl_last_error());                                                     \
    EXPECT(strncmp(sl_last_error(), want_, strlen(want_)) == 0,                  \
           "%s: message '%s' does not start with '%s'", #call, sl_last_error(), want_); \
  } while (0)

/* A size product beyond int64 is SL_E_OVERFLOW ("a size product does not fit the index type"),
 * as for layer norm, scale/shift, K-Winners and the strided ops. sl_sum_axis, the log-softmax
 * pair and sl_gemm_batched returned SL_E_INVALID_ARGUMENT for it. */
static void test_overflow_is_overflow(void) {
  float f[4] = {0};
  const int64_t big = INT64_MAX / 2;
  EXPECT_FAILS(sl_sum_axis(big, 4, 1, 1.0f, f, f), SL_E_OVERFLOW, "sl_sum_axis",
               "outer * len * inner overflows int64");
  EXPECT_FAILS(sl_sum_axis(1, big, 4, 1.0f, f, f), SL_E_OVERFLOW, "sl_sum_axis",
               "outer * len * inner overflows int64");
  EXPECT_FAILS(sl_log_softmax_fwd(big, 4, f, f), SL_E_OVERFLOW, "sl_log_softmax_fwd",
               "rows * cols overflows int64");
  EXPECT_FAILS(sl_log_softmax_bwd(big, 4, f, f, f), SL_E_OVERFLOW, "sl_log_softmax_bwd",
               "rows * cols overflows int64");
  EXPECT_FAILS(sl_gemm_batched(0, 0, 3, 1, 1, 1, 1.0f, f, 1, big + 1, f, 1, 0, 0.0f, f, 1, 1),
               SL_E_OVERFLOW, "sl_gemm_batched", "batch * stride overflows int64");
  EXPECT_FAILS(sl_gemm_batched(0, 0, 3, 1, 1, 1, 1.0f, f, 1, 0, f, 1, 0, 0.0f, f, 1, big + 1),
               SL_E_OVERFLOW, "sl_gemm_batched", "batch * stride overflows int64");
  /* The rest of the library already said so. */
  EXPECT_FAILS(sl_layer_norm_fwd(big, 4, 1e-5f, f, NULL, NULL, 0, f, NULL, NULL), SL_E_OVERFLOW,
               "sl_layer_norm_fwd", "rows * n overflows");
  EXPECT_FAILS(sl_scale_shift_bwd(big, 4, f, f, f, f, f, f), SL_E_OVERFLOW, "sl_scale_shift_bwd",
               "rows * n overflows");
  EXPECT_FAILS(sl_kwinners_bwd(big, 4, 1, NULL, f, f), SL_E_OVERFLOW, "sl_kwinners_bwd",
               "rows * n overflows int64");
  const int64_t shape[2] = {big, 4};
  EXPECT_FAILS(sl_sum_dims(2, shape, 1, 1.0f, f, f), SL_E_OVERFLOW, "sl_sum_dims",
               "the number of elements overflows int64");
}

/* A null array is named as the prototype names it. sl_dropout_fwd / _bwd said "input" and
 * "output". */
static void test_null_arrays_are_named(void) {
  float f[4] = {1, 2, 3, 4};
  EXPECT_FAILS(sl_dropout_fwd(4, 0.5, 1, NULL, f), SL_E_NULL_POINTER, "sl_dropout_fwd",
               "x must not be null");
  EXPECT_FAILS(sl_dropout_fwd(4, 0.5, 1, f, NULL), SL_E_NULL_POINTER, "sl_dropout_fwd",
               "y must not be null");
  EXPECT_FAILS(sl_dropout_bwd(4, 0.5, 1, NULL, f), SL_E_NULL_POINTER, "sl_dropout_bwd",
               "dy must not be null");
  EXPECT_FAILS(sl_dropout_bwd(4, 0.5, 1, f, NULL), SL_E_NULL_POINTER, "sl_dropout_bwd",
               "dx must not be null");
  /* n == 0 reads nothing: null is fine. */
  /* The feature-major sparse calls name their activations xT, yT, dyT, dxT (they said x, y). */
  const int32_t rp[3] = {0, 1, 2}, ci[2] = {0, 1}, cp[3] = {0, 1, 2}, ri[2] = {0, 1},
                perm[2] = {0, 1};
  float w[2] = {1, 1}, a[4] = {0}, b[4] = {0}, c[4] = {0}, dw[2] = {0};
  EXPECT_FAILS(sl_spmm_fwd_fm(2, 2, 2, 2, rp, ci, w, NULL, NULL, b), SL_E_NULL_POINTER,
               "sl_spmm_fwd_fm", "xT must not be null");
  EXPECT_FAILS(sl_spmm_fwd_fm(2, 2, 2, 2, rp, ci, w, NULL, a, NULL), SL_E_NULL_POINTER,
               "sl_spmm_fwd_fm", "yT must not be null");
  EXPECT_FAILS(sl_spmm_bwd_fm(2, 2, 2, 2, rp, ci, cp, ri, perm, w, NULL, b, c, dw, NULL),
               SL_E_NULL_POINTER, "sl_spmm_bwd_fm", "xT must not be null");
  EXPECT_FAILS(sl_spmm_bwd_fm(2, 2, 2, 2, rp, ci, cp, ri, perm, w, a, NULL, c, dw, NULL),
               SL_E_NULL_POINTER, "sl_spmm_bwd_fm", "dyT must not be null");
  EXPECT_FAILS(sl_spmm_bwd_fm(2, 2, 2, 2, rp, ci, cp, ri, perm, w, a, b, NULL, dw, NULL),
               SL_E_NULL_POINTER, "sl_spmm_bwd_fm", "dxT must not be null");
  /* The batch-major calls keep x, y, dy, dx. */
  EXPECT_FAILS(sl_spmm_fwd(2, 2, 2, 2, rp, ci, w, NULL, NULL, b), SL_E_NULL_POINTER,
               "sl_spmm_fwd", "x must not be null");
  EXPECT_FAILS(sl_spmm_bwd(2, 2, 2, 2, rp, ci, cp, ri, perm, w, a, NULL, c, dw, NULL),
               SL_E_NULL_POINTER, "sl_spmm_bwd", "dy must not be null");
  EXPECT(sl_dropout_fwd(0, 0.5, 1, NULL, NULL) == SL_OK, "dropout of nothing: %s",
         sl_last_error());
}

/* sl_set_num_threads: 1..4096 sets the count, n <= 0 restores the default, above 4096 is
 * refused and changes nothing. */
static void test_thread_count(void) {
  const int32_t def = sl_get_num_threads();
  EXPECT(def >= 1 && def <= 4096, "default thread count %d", def);
  EXPECT(sl_set_num_threads(3) == SL_OK && sl_get_num_threads() == 3, "set 3: got %d",
         sl_get_num_threads());
  EXPECT(sl_set_num_threads(4096) == SL_OK && sl_get_num_threads() == 4096, "set 4096: got %d",
         sl_get_num_threads());
  EXPECT_FAILS(sl_set_num_threads(4097), SL_E_INVALID_ARGUMENT, "sl_set_num_threads",
               "n must be <= 4096 (or <= 0 for the default), got 4097");
  EXPECT_FAILS(sl_set_num_threads(INT32_MAX), SL_E_INVALID_ARGUMENT, "sl_set_num_threads",
               "n must be <= 4096");
  EXPECT(sl_get_num_threads() == 4096, "a refused count changed it to %d", sl_get_num_threads());
  EXPECT(sl_set_num_threads(INT32_MIN) == SL_OK && sl_get_num_threads() == def,
         "n <= 0 restores the default %d: got %d", def, sl_get_num_threads());
  EXPECT(sl_set_num_threads(0) == SL_OK && sl_get_num_threads() == def, "n 0: got %d",
         sl_get_num_threads());
  EXPECT(sl_last_error()[0] == '\0', "a successful call left '%s'", sl_last_error());
  EXPECT(sl_abi_version() == SL_ABI_VERSION, "sl_abi_version() %d, header %d", sl_abi_version(),
         SL_ABI_VERSION);
}

int main(void) {
  test_overflow_is_overflow();
  test_null_arrays_are_named();
  test_thread_count();
  if (failures) {
    fprintf(stderr, "test_abi_contract: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_abi_contract: ok (%d checks)\n", checks);
  return 0;
}
