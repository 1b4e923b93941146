/*
 * sparse_internal.h — checks shared by the sparse format conversions and the sparse kernels.
 * Not part of the ABI.
 */
#ifndef SL_SPARSE_INTERNAL_H
#define SL_SPARSE_INTERNAL_H

#include <stdint.h>

#include "internal.h"

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

#endif /* SL_SPARSE_INTERNAL_H */
