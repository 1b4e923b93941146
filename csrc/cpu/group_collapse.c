/*
 * group_collapse.c — a sparse layer followed by a sum of its outputs in interleaved groups,
 * folded into its weights: G = P W (sl_group_collapse) and the gradient's way back to the
 * connections (sl_group_collapse_bwd). The wide MNIST model's last layer is such a layer
 * (50 000 outputs summed into 10 classes): G is 10 x 50 000 against 2.5 M connections.
 *
 * Both are one pass over the pattern in row order (the arrays stream). The collapse adds each
 * value into row (o mod size) of G; its threads split G by columns, each finding its part of a
 * row by binary search (columns are sorted within rows), so no two threads write the same
 * place, each of G's sums is taken in row order whatever the thread count, and each thread's
 * slice of G stays in its cache. (Split by group instead, each thread read every size-th row:
 * 2x slower at 50000^2, the rows' memory no longer streaming.) The backward reads G's gradient
 * at the same places and writes dw in pattern order.
 */
#include <stdint.h>
#include <string.h>

#include "sparse_internal.h"
#include "validate.h"

/* Below this many connections one thread does the pass (~50 us; see spmm.c). */
#define GROUP_SERIAL_BELOW (1 << 17)

/* Rows per chunk of the backward's dynamic schedule. */
#define GROUP_ROW_CHUNK 256

sl_status sl_group_collapse(int32_t n_in, int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                            const int32_t *col_idx, const float *values, int32_t size,
                            float *g) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_group_collapse(__func__, n_in, n_out, nnz, row_ptr, col_idx, values, size, g));
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (n_in > 0) memset(g, 0, (size_t)size * (size_t)n_in * sizeof(float));
  int parts = nnz >= GROUP_SERIAL_BELOW ? sl_threads() : 1;
  if (parts > n_in) parts = n_in > 0 ? n_in : 1;
  int64_t first_bad = NO_BAD;
#pragma omp parallel for num_threads(parts) if (parts > 1) schedule(static, 1) \
    reduction(min : first_bad)
  for (int p = 0; p < parts; p++) {
    /* Columns [c0, c1); the first part also takes columns below 0 and the last those >= n_in,
     * so every entry falls in one part's range and a bad one is seen (and skipped) there. */
    const int32_t c0 = (int32_t)((int64_t)n_in * p / parts);
    const int32_t c1 = (int32_t)((int64_t)n_in * (p + 1) / parts);
    int64_t bad = NO_BAD;
    for (int64_t o = 0; o < n_out; o++) {
      const int64_t r0 = row_ptr[o], r1 = row_ptr[o + 1];
      /* Monotone in the column even for an unsorted row: the parts tile [r0, r1). */
      const int64_t k0 = p == 0 ? r0 : lower_bound_col(col_idx, r0, r1, c0);
      const int64_t k1 = p == parts - 1 ? r1 : lower_bound_col(col_idx, r0, r1, c1);
      float *gc = g + (o % size) * n_in;
      int32_t prev = INT32_MIN;
      for (int64_t k = k0; k < k1; k++) {
        const int32_t col = col_idx[k];
        /* Out of range, or out of this part's range or order: the row is not sorted. */
        if ((uint32_t)col >= (uint32_t)n_in || col < c0 || col >= c1 || col < prev) {
          if (k < bad) bad = k;
          continue;
        }
        prev = col;
        gc[col] += values[k];
      }
    }
    if (bad < first_bad) first_bad = bad;
  }
  if (first_bad == NO_BAD) return SL_OK;
  /* Which entry to name does not depend on the parts: the first bad one in pattern order. */
  int unsorted = 0;
  first_bad = first_bad_sorted(0, n_out, row_ptr, col_idx, (uint32_t)n_in, &unsorted);
  return sl_bad_sorted_column(__func__, first_bad, unsorted, col_idx, n_in);
}

sl_status sl_group_collapse_bwd(int32_t n_in, int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                                const int32_t *col_idx, const float *dg, int32_t size,
                                float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_group_collapse_bwd(__func__, n_in, n_out, nnz, row_ptr, col_idx, dg,
                                             size, dw));
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  int64_t first_bad = NO_BAD;
#pragma omp parallel for num_threads(sl_threads()) if (nnz >= GROUP_SERIAL_BELOW) \
    schedule(dynamic, GROUP_ROW_CHUNK) reduction(min : first_bad)
  for (int64_t o = 0; o < n_out; o++) {
    const float *dgc = dg + (o % size) * n_in;
    for (int64_t k = row_ptr[o]; k < row_ptr[o + 1]; k++) {
      const int32_t col = col_idx[k];
      if ((uint32_t)col >= (uint32_t)n_in) {
        if (k < first_bad) first_bad = k;
        dw[k] = 0.0f;
        continue;
      }
      dw[k] = dgc[col];
    }
  }
  return first_bad == NO_BAD ? SL_OK : sl_bad_sorted_column(__func__, first_bad, 0, col_idx, n_in);
}
