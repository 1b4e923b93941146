/*
 * sparse_internal.h — checks shared by the sparse format conversions and the sparse kernels.
 * Not part of the ABI.
 */
#ifndef SL_SPARSE_INTERNAL_H
#define SL_SPARSE_INTERNAL_H

#include <stdint.h>

#include "internal.h"

#define NO_BAD INT64_MAX /* "no bad index" in min-reductions over entry positions */

/* A pointer that may be null only when the array it points to is empty. */
#define SL_CHECK_PTR_IF(p, count)                                                \
  do {                                                                           \
    if ((count) > 0 && (p) == 0)                                                 \
      return sl_fail(SL_E_NULL_POINTER, __func__, "%s must not be null", #p);    \
  } while (0)

/*
 * Checks an offsets array (row_ptr / col_ptr) of n + 1 entries: starts at 0, never decreases,
 * ends at nnz. Then every offset lies in [0, nnz]. Returns SL_OK or an error naming `name`.
 */
static inline sl_status sl_check_offsets(const char *fn, const char *name, const int32_t *ptr,
                                         int64_t n, int64_t nnz) {
  if (ptr[0] != 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s[0] = %d, must be 0", name, ptr[0]);
  /* Branch-free scan for the common (valid) case; locate the first bad entry only on failure. */
  int bad = 0;
  for (int64_t i = 0; i < n; i++) bad |= ptr[i + 1] < ptr[i];
  if (bad) {
    for (int64_t i = 0; i < n; i++) {
      if (ptr[i + 1] < ptr[i])
        return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                       "%s[%lld] = %d is less than %s[%lld] = %d (offsets must not decrease)", name,
                       (long long)(i + 1), ptr[i + 1], name, (long long)i, ptr[i]);
    }
  }
  if ((int64_t)ptr[n] != nnz)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s[%lld] = %d, must equal nnz = %lld", name,
                   (long long)n, ptr[n], (long long)nnz);
  return SL_OK;
}

/* First position in [k0, k1) whose column is >= c (columns sorted within the row).
 * For any row the result never decreases as c grows, sorted or not (the searches for a smaller
 * and a larger c take the same steps until they part, the smaller going left). */
static inline int64_t lower_bound_col(const int32_t *idx, int64_t k0, int64_t k1, int32_t c) {
  while (k0 < k1) {
    int64_t mid = k0 + (k1 - k0) / 2;
    if (idx[mid] < c)
      k0 = mid + 1;
    else
      k1 = mid;
  }
  return k0;
}

/* First k of rows [r0, r1) whose column is out of range or smaller than the previous column
 * of its row; *unsorted tells which. -1 when none. */
static inline int64_t first_bad_sorted(int64_t r0, int64_t r1, const int32_t *ptr,
                                       const int32_t *idx, uint32_t bound, int *unsorted) {
  uint32_t bad = 0;
  const int64_t k0 = ptr[r0], k1 = ptr[r1];
#pragma omp simd reduction(| : bad)
  for (int64_t k = k0; k < k1; k++) bad |= (uint32_t)idx[k] >= bound;
  for (int64_t r = r0; r < r1 && !bad; r++) {
#pragma omp simd reduction(| : bad)
    for (int64_t k = ptr[r] + 1; k < ptr[r + 1]; k++) bad |= idx[k] < idx[k - 1];
  }
  if (!bad) return -1;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t k = ptr[r]; k < ptr[r + 1]; k++) {
      if ((uint32_t)idx[k] >= bound) {
        *unsorted = 0;
        return k;
      }
      if (k > ptr[r] && idx[k] < idx[k - 1]) {
        *unsorted = 1;
        return k;
      }
    }
  return -1;
}

/* The error for entry k that first_bad_sorted found (unsorted as it set it). */
static inline sl_status sl_bad_sorted_column(const char *fn, int64_t k, int unsorted,
                                             const int32_t *idx, int32_t bound) {
  if (unsorted)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "col_idx[%lld] = %d is less than col_idx[%lld] = %d (columns must be sorted "
                   "within a row)",
                   (long long)k, idx[k], (long long)(k - 1), idx[k - 1]);
  return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %d)",
                 (long long)k, idx[k], bound);
}

#endif /* SL_SPARSE_INTERNAL_H */
