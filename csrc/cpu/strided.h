/*
 * strided.h — shape/stride checks and the row iterator behind the broadcasting, permuting and
 * reducing kernels (elementwise.c, reduce.c). Not part of the ABI.
 *
 * A "layout" describes up to two strided operands over one contiguous output shape. Before a
 * kernel runs, dimensions of size 1 are dropped and neighbours that are contiguous in every
 * operand are merged, so that a plain same-shape op is one long row and a broadcast add of a
 * bias is [rows, features] with a stride-0 operand: the innermost loop is long and the common
 * stride patterns (1, 1), (1, 0), (0, 1) get vectorised loops.
 */
#ifndef SL_STRIDED_H
#define SL_STRIDED_H

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/*
 * Elements above which an element-wise or strided kernel runs on several threads: 2^18 float
 * elements stream in ~30 us on one core. Below that a second thread gains little on a quiet
 * machine and costs much more on a busy one, where a parallel region waits for every thread to
 * be scheduled (ReLU of 128k elements: 14 us on one thread, 40-100 us with two under load).
 */
#define SL_PARALLEL_MIN 262144

typedef struct {
  int ndim;                       /* >= 1 after sl_layout_init */
  int64_t shape[SL_MAX_DIMS];     /* output shape (contiguous) */
  int64_t stride[2][SL_MAX_DIMS]; /* element strides of operand 0 and 1 */
} sl_layout;

/* Checks ndim and shape; *numel = product of the shape (1 when ndim == 0). */
static inline sl_status sl_check_shape(const char *fn, int32_t ndim, const int64_t *shape,
                                       int64_t *numel) {
  if (ndim < 0 || ndim > SL_MAX_DIMS)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "ndim must be in [0, %d], got %d", SL_MAX_DIMS,
                   ndim);
  if (ndim > 0 && shape == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "shape must not be null");
  int64_t n = 1;
  *numel = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return sl_fail(SL_E_INVALID_ARGUMENT, fn, "shape[%d] must be >= 0, got %lld", d,
                     (long long)shape[d]);
    n = sl_mul_size(n, shape[d]);
    if (n < 0) return sl_fail(SL_E_OVERFLOW, fn, "the number of elements overflows int64");
  }
  *numel = n;
  return SL_OK;
}

/*
 * Checks one strided operand: strides present and >= 0, data present when anything is read,
 * and the largest offset read (sum of (shape[d] - 1) * strides[d]) below len.
 */
static inline sl_status sl_check_operand(const char *fn, const char *data_name,
                                         const char *strides_name, int32_t ndim,
                                         const int64_t *shape, int64_t numel,
                                         const float *data, int64_t len,
                                         const int64_t *strides) {
  if (len < 0)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s_len must be >= 0, got %lld", data_name,
                   (long long)len);
  if (ndim > 0 && strides == NULL)
    return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", strides_name);
  int64_t max_offset = 0;
  for (int d = 0; d < ndim; d++) {
    if (strides[d] < 0)
      return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s[%d] must be >= 0, got %lld", strides_name,
                     d, (long long)strides[d]);
    if (shape[d] == 0) continue;
    int64_t span = sl_mul_size(shape[d] - 1, strides[d]);
    if (span < 0 || max_offset > INT64_MAX - span)
      return sl_fail(SL_E_OVERFLOW, fn, "the offsets of %s overflow int64", data_name);
    max_offset += span;
  }
  if (numel == 0) return SL_OK;
  if (data == NULL) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", data_name);
  if (max_offset >= len)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn,
                   "%s reaches element %lld with these strides, but %s_len is %lld",
                   strides_name, (long long)max_offset, data_name, (long long)len);
  return SL_OK;
}

/*
 * Fills l from a checked shape and the strides of nops (1 or 2) operands (null strides count
 * as all zeros), dropping size-1 dimensions and merging dimensions that are contiguous in
 * every operand.
 */
static inline void sl_layout_init(sl_layout *l, int32_t ndim, const int64_t *shape, int nops,
                                  const int64_t *const strides[2]) {
  /* An empty shape is one empty dimension: nothing to iterate, and no products of the other
   * sizes and strides, which may be huge (and unchecked) when there is no element. */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) {
      l->shape[0] = 0;
      l->stride[0][0] = l->stride[1][0] = 0;
      l->ndim = 1;
      return;
    }
  }
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    int64_t s[2] = {0, 0};
    for (int op = 0; op < nops; op++) s[op] = strides[op] != NULL ? strides[op][d] : 0;
    int merge = nd > 0;
    for (int op = 0; op < nops && merge; op++) {
      int64_t outer_stride; /* a stride the caller's length did not bound cannot merge */
      merge = !__builtin_mul_overflow(s[op], shape[d], &outer_stride) &&
              l->stride[op][nd - 1] == outer_stride;
    }
    if (merge) {
      l->shape[nd - 1] *= shape[d];
      for (int op = 0; op < nops; op++) l->stride[op][nd - 1] = s[op];
    } else {
      l->shape[nd] = shape[d];
      for (int op = 0; op < 2; op++) l->stride[op][nd] = op < nops ? s[op] : 0;
      nd++;
    }
  }
  if (nd == 0) {
    l->shape[0] = 1;
    l->stride[0][0] = l->stride[1][0] = 0;
    nd = 1;
  }
  l->ndim = nd;
}

/*
 * The checks of sl_binary / sl_binary_bwd, shared by the CPU and CUDA libraries (same status,
 * same message); fills the layout and *numel. The operands are read only when reads_operands.
 */
static inline sl_status sl_check_binary(const char *fn, int32_t op, int32_t ndim,
                                        const int64_t *shape, const float *a, int64_t a_len,
                                        const int64_t *a_strides, const float *b, int64_t b_len,
                                        const int64_t *b_strides, int reads_operands,
                                        sl_layout *l, int64_t *numel) {
  if (op < SL_BINARY_ADD || op > SL_BINARY_DIV)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "op must be in [0, 3] (add, sub, mul, div), got %d",
                   op);
  sl_status st = sl_check_shape(fn, ndim, shape, numel);
  if (st != SL_OK) return st;
  if (reads_operands) {
    st = sl_check_operand(fn, "a", "a_strides", ndim, shape, *numel, a, a_len, a_strides);
    if (st != SL_OK) return st;
    st = sl_check_operand(fn, "b", "b_strides", ndim, shape, *numel, b, b_len, b_strides);
    if (st != SL_OK) return st;
  }
  const int64_t *const strides[2] = {reads_operands ? a_strides : NULL,
                                     reads_operands ? b_strides : NULL};
  sl_layout_init(l, ndim, shape, 2, strides);
  return SL_OK;
}

/*
 * Calls row(len, off0, off1, out_off, ctx) for every row of the layout's innermost dimension,
 * where off0/off1 are the operands' element offsets of the row start and out_off the
 * contiguous output offset. Rows are split across threads when numel is large.
 */
typedef void (*sl_row_fn)(int64_t len, int64_t off0, int64_t off1, int64_t out_off,
                          void *ctx);

static inline void sl_for_each_row(const sl_layout *l, int64_t numel, sl_row_fn row,
                                   void *ctx) {
  const int nd = l->ndim;
  const int64_t len = l->shape[nd - 1];
  if (numel == 0 || len == 0) return;
  const int64_t rows = numel / len;
#pragma omp parallel num_threads(sl_threads()) if (numel > SL_PARALLEL_MIN && rows > 1)
  {
#ifdef _OPENMP
    const int64_t nthreads = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const int64_t nthreads = 1, t = 0;
#endif
    const int64_t chunk = (rows + nthreads - 1) / nthreads;
    const int64_t r0 = t * chunk < rows ? t * chunk : rows;
    const int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
    if (r0 < r1) {
      int64_t idx[SL_MAX_DIMS] = {0};
      int64_t off[2] = {0, 0};
      int64_t rem = r0;
      for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rem % l->shape[d];
        rem /= l->shape[d];
        off[0] += idx[d] * l->stride[0][d];
        off[1] += idx[d] * l->stride[1][d];
      }
      for (int64_t r = r0; r < r1; r++) {
        row(len, off[0], off[1], r * len, ctx);
        for (int d = nd - 2; d >= 0; d--) {
          off[0] += l->stride[0][d];
          off[1] += l->stride[1][d];
          if (++idx[d] < l->shape[d]) break;
          off[0] -= l->stride[0][d] * l->shape[d];
          off[1] -= l->stride[1][d] * l->shape[d];
          idx[d] = 0;
        }
      }
    }
  }
}

#endif /* SL_STRIDED_H */
