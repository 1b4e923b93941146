/*
 * sparse_format.c — sparse pattern conversions: COO -> CSR (sort + coalesce), CSR validation,
 * CSR -> CSC view. These run when a topology is built or changed, not on every step, so they
 * favour O(nnz + rows) time and predictable memory over raw speed.
 */
#include <stdlib.h>
#include <string.h>

#include "sparse_internal.h"
#include "validate.h"

/* ---- per-row sort of (col, coo index) keys, used when n_cols is too large for a counting sort */

static void insertion_sort_u64(uint64_t *a, int64_t n) {
  for (int64_t i = 1; i < n; i++) {
    uint64_t v = a[i];
    int64_t j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

/* Introsort-free quicksort with median-of-three and insertion sort for short ranges; the keys
 * are distinct (they embed the COO index), so there are no equal-key pathologies, and recursion
 * goes into the smaller half so the stack depth stays O(log n). */
static void sort_u64(uint64_t *a, int64_t n) {
  while (n > 24) {
    uint64_t x = a[0], y = a[n / 2], z = a[n - 1];
    uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
    int64_t i = 0, j = n - 1;
    for (;;) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i >= j) break;
      uint64_t t = a[i];
      a[i] = a[j];
      a[j] = t;
      i++;
      j--;
    }
    int64_t left = j + 1; /* [0, left) <= pivot <= [left, n) */
    if (left < n - left) {
      sort_u64(a, left);
      a += left;
      n -= left;
    } else {
      sort_u64(a + left, n - left);
      n = left;
    }
  }
  insertion_sort_u64(a, n);
}

sl_status sl_coo_to_csr(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *rows,
                        const int32_t *cols, const float *values_in, int32_t *row_ptr,
                        int32_t *col_idx, float *values_out, int64_t *perm, int64_t *nnz_out,
                        int64_t *first_duplicate) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_coo_to_csr(__func__, n_rows, n_cols, nnz, rows, cols, values_in, row_ptr,
                                     col_idx, values_out, nnz_out, first_duplicate));

  /* Validate every entry before writing anything. */
  for (int64_t e = 0; e < nnz; e++) {
    if ((uint32_t)rows[e] >= (uint32_t)n_rows)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "rows[%lld] = %d is outside [0, %d)",
                     (long long)e, rows[e], n_rows);
    if ((uint32_t)cols[e] >= (uint32_t)n_cols)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "cols[%lld] = %d is outside [0, %d)",
                     (long long)e, cols[e], n_cols);
  }

  /* Bucket the entries by row (stable counting sort), then order each row by (col, index). */
  int32_t *row_start = malloc(((size_t)n_rows + 1) * sizeof *row_start);
  uint64_t *keys = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *keys);
  if (row_start == NULL || keys == NULL) {
    free(row_start);
    free(keys);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for %lld entries",
                   (long long)nnz);
  }
  memset(row_start, 0, ((size_t)n_rows + 1) * sizeof *row_start);
  for (int64_t e = 0; e < nnz; e++) row_start[rows[e] + 1]++;
  for (int64_t r = 0; r < n_rows; r++) row_start[r + 1] += row_start[r];

  /* A counting sort by column first makes the row bucketing produce (row, col, index) order
   * directly; it needs O(n_cols) scratch, so use it only when that is not much more than nnz. */
  int32_t *col_count = NULL;
  if ((int64_t)n_cols <= 4 * nnz + 4096)
    col_count = calloc((size_t)n_cols + 1, sizeof *col_count);
  int32_t *by_col = col_count ? malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *by_col) : NULL;
  int32_t *cursor = malloc(((size_t)n_rows + 1) * sizeof *cursor);
  if (cursor == NULL) {
    free(row_start);
    free(keys);
    free(col_count);
    free(by_col);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for %d rows", n_rows);
  }
  memcpy(cursor, row_start, ((size_t)n_rows + 1) * sizeof *cursor);
  if (col_count != NULL && by_col != NULL) {
    for (int64_t e = 0; e < nnz; e++) col_count[cols[e] + 1]++;
    for (int64_t c = 0; c < n_cols; c++) col_count[c + 1] += col_count[c];
    for (int64_t e = 0; e < nnz; e++) by_col[col_count[cols[e]]++] = (int32_t)e;
    for (int64_t i = 0; i < nnz; i++) {
      int32_t e = by_col[i];
      keys[cursor[rows[e]]++] = ((uint64_t)(uint32_t)cols[e] << 32) | (uint32_t)e;
    }
  } else {
    for (int64_t e = 0; e < nnz; e++)
      keys[cursor[rows[e]]++] = ((uint64_t)(uint32_t)cols[e] << 32) | (uint32_t)e;
    for (int64_t r = 0; r < n_rows; r++)
      sort_u64(keys + row_start[r], (int64_t)row_start[r + 1] - row_start[r]);
  }
  free(col_count);
  free(by_col);
  free(cursor);

  /* Coalesce: equal (row, col) keys are adjacent and in COO order. */
  int64_t out = 0;
  int64_t first_dup = -1;
  row_ptr[0] = 0;
  for (int64_t r = 0; r < n_rows; r++) {
    int64_t k = row_start[r], end = row_start[r + 1];
    while (k < end) {
      uint32_t c = (uint32_t)(keys[k] >> 32);
      int64_t e = (int64_t)(uint32_t)keys[k];
      col_idx[out] = (int32_t)c;
      if (perm) perm[out] = e;
      float sum = values_in ? values_in[e] : 0.0f;
      k++;
      if (k < end && (uint32_t)(keys[k] >> 32) == c) {
        int64_t second = (int64_t)(uint32_t)keys[k];
        if (first_dup < 0 || second < first_dup) first_dup = second;
        for (; k < end && (uint32_t)(keys[k] >> 32) == c; k++)
          if (values_in) sum += values_in[(uint32_t)keys[k]];
      }
      if (values_out) values_out[out] = sum;
      out++;
    }
    row_ptr[r + 1] = (int32_t)out;
  }
  free(row_start);
  free(keys);
  *nnz_out = out;
  *first_duplicate = first_dup;
  return SL_OK;
}

/* Column checks of one CSR row range; returns the first bad position or -1. */
static int64_t first_bad_column(int64_t r0, int64_t r1, int32_t n_cols, const int32_t *row_ptr,
                                const int32_t *col_idx, int *unsorted) {
  for (int64_t r = r0; r < r1; r++) {
    int64_t k0 = row_ptr[r], k1 = row_ptr[r + 1];
    int bad = 0;
    for (int64_t k = k0; k < k1; k++) bad |= (uint32_t)col_idx[k] >= (uint32_t)n_cols;
    for (int64_t k = k0 + 1; k < k1; k++) bad |= col_idx[k] <= col_idx[k - 1];
    if (!bad) continue;
    for (int64_t k = k0; k < k1; k++) {
      if ((uint32_t)col_idx[k] >= (uint32_t)n_cols) {
        *unsorted = 0;
        return k;
      }
      if (k > k0 && col_idx[k] <= col_idx[k - 1]) {
        *unsorted = 1;
        return k;
      }
    }
  }
  return -1;
}

sl_status sl_csr_validate(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *row_ptr,
                          const int32_t *col_idx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_validate(__func__, n_rows, n_cols, nnz, row_ptr, col_idx));
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_rows, nnz);
  if (st != SL_OK) return st;
  int unsorted = 0;
  int64_t k = first_bad_column(0, n_rows, n_cols, row_ptr, col_idx, &unsorted);
  if (k < 0) return SL_OK;
  if (!unsorted)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "col_idx[%lld] = %d is outside [0, %d)",
                   (long long)k, col_idx[k], n_cols);
  if (col_idx[k] == col_idx[k - 1])
    return sl_fail(SL_E_DUPLICATE, __func__,
                   "col_idx[%lld] = %d repeats col_idx[%lld] within one row", (long long)k,
                   col_idx[k], (long long)(k - 1));
  return sl_fail(SL_E_INVALID_ARGUMENT, __func__,
                 "col_idx[%lld] = %d is not greater than col_idx[%lld] = %d (columns must be "
                 "sorted within a row)",
                 (long long)k, col_idx[k], (long long)(k - 1), col_idx[k - 1]);
}

sl_status sl_csr_to_csc(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *row_ptr,
                        const int32_t *col_idx, int32_t *col_ptr, int32_t *row_idx,
                        int32_t *csc_to_csr) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_to_csc(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, col_ptr,
                                     row_idx, csc_to_csr));
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_rows, nnz);
  if (st != SL_OK) return st;
  for (int64_t k = 0; k < nnz; k++)
    if ((uint32_t)col_idx[k] >= (uint32_t)n_cols)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "col_idx[%lld] = %d is outside [0, %d)",
                     (long long)k, col_idx[k], n_cols);

  /* Count into col_ptr[c + 1], prefix-sum, scatter using col_ptr[c] as the cursor (which leaves
   * col_ptr[c] = end of column c), then shift back by one. Row order is kept per column. */
  memset(col_ptr, 0, ((size_t)n_cols + 1) * sizeof *col_ptr);
  for (int64_t k = 0; k < nnz; k++) col_ptr[col_idx[k] + 1]++;
  for (int64_t c = 0; c < n_cols; c++) col_ptr[c + 1] += col_ptr[c];
  for (int64_t r = 0; r < n_rows; r++) {
    for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; k++) {
      int32_t dst = col_ptr[col_idx[k]]++;
      row_idx[dst] = (int32_t)r;
      csc_to_csr[dst] = (int32_t)k;
    }
  }
  for (int64_t c = n_cols; c > 0; c--) col_ptr[c] = col_ptr[c - 1];
  col_ptr[0] = 0;
  return SL_OK;
}
