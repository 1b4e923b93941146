/*
 * spmm.c — the sparse-layer kernels: forward SpMM, input gradient (from the CSC view), weight
 * gradient (SDDMM over the pattern) and bias gradient.
 *
 * Layout (SparseProp): for batch > 1 the activations are transposed at the call boundary into
 * feature-major scratch tiles of W batch columns (W a multiple of 8, at most 64, zero-padded),
 * so that each connection is one contiguous W-wide FMA over the batch. Batch 1 has its own
 * streaming paths. Work is split across threads by nnz (plus rows), not by rows.
 *
 * Index validation is fused into the kernel loops: an out-of-range index is skipped (never
 * dereferenced) and the first bad position is reported after the loop. sl_spmm_fwd and
 * sl_spmm_bwd_input compute into scratch and write their output only when every index was
 * valid; sl_sddmm writes dw in place (see its comment in the header).
 */
#include <stdlib.h>
#include <string.h>

#include "sparse_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef float v8f __attribute__((vector_size(32), aligned(32)));

#define TILE_MAX 64 /* batch columns per feature-major tile */
#define ALIGN 64
#define NO_BAD INT64_MAX /* "no bad index" in min-reductions */

static void *aligned_scratch(int64_t floats) {
  size_t bytes = (size_t)floats * sizeof(float);
  bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
  return aligned_alloc(ALIGN, bytes > 0 ? bytes : ALIGN);
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- partitioning by nnz ---- */

/*
 * Splits rows [0, n_rows) into `parts` ranges of about equal cost, cost(row) = nnz(row) * unit
 * + 1 (each row also costs a store). bounds[p] is the first row of part p; bounds[parts] =
 * n_rows. The offsets must already be validated (monotone), so a binary search is valid.
 */
static void partition_rows(const int32_t *ptr, int64_t n_rows, int64_t unit, int parts,
                           int64_t *bounds) {
  int64_t total = (int64_t)ptr[n_rows] * unit + n_rows;
  bounds[0] = 0;
  for (int p = 1; p < parts; p++) {
    int64_t target = total / parts * p + total % parts * p / parts;
    int64_t lo = bounds[p - 1], hi = n_rows; /* first r with cost_prefix(r) >= target */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if ((int64_t)ptr[mid] * unit + mid < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    bounds[p] = lo;
  }
  bounds[parts] = n_rows;
}

/* How many parts to split into: several per thread so dynamic scheduling absorbs noise. */
static int choose_parts(int threads, int64_t work) {
  if (threads <= 1 || work < (1 << 15)) return 1;
  int64_t parts = (int64_t)threads * 8;
  int64_t max_by_work = work / (1 << 13);
  if (parts > max_by_work) parts = max_by_work;
  return parts < 1 ? 1 : (int)parts;
}

/* ----------------------------------------------------------------- layout transposes ---- */

/* src[b0 + j][i] (rows of length n) -> dst[i][j] for j < bt; columns bt..w-1 are zeroed. */
static void to_feature_major(const float *src, int64_t n, int64_t b0, int bt, int w, float *dst,
                             int64_t i0, int64_t i1) {
  for (int64_t ib = i0; ib < i1; ib += 64) {
    int64_t ie = min64(ib + 64, i1);
    for (int j = 0; j < bt; j++) {
      const float *s = src + (b0 + j) * n;
      for (int64_t i = ib; i < ie; i++) dst[i * w + j] = s[i];
    }
    for (int j = bt; j < w; j++)
      for (int64_t i = ib; i < ie; i++) dst[i * w + j] = 0.0f;
  }
}

/* src[i][j] -> dst[b0 + j][i] for j < bt (rows of length n). */
static void from_feature_major(const float *src, int64_t n, int64_t b0, int bt, int w, float *dst,
                               int64_t i0, int64_t i1) {
  for (int64_t ib = i0; ib < i1; ib += 64) {
    int64_t ie = min64(ib + 64, i1);
    for (int j = 0; j < bt; j++) {
      float *d = dst + (b0 + j) * n;
      for (int64_t i = ib; i < ie; i++) d[i] = src[i * w + j];
    }
  }
}

/* ------------------------------------------------------------- the gather-FMA kernel ---- */

/*
 * For rows r in [r0, r1) of a compressed pattern (ptr, idx): out[r][:] = init(r) + sum over k
 * in row r of val(k) * in[idx[k]][:], where val(k) = vals[k] (perm null) or vals[perm[k]], and
 * rows of `in` / `out` are w = 8 * NV floats. Entries whose idx (or perm) is out of range are
 * skipped; the smallest such k is folded into *bad. NV is a compile-time constant at every call
 * site, so the accumulators live in registers.
 */
static inline __attribute__((always_inline)) void gather_fma_rows(
    const int NV, int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
    const int32_t *perm, const float *vals, int64_t n_vals, const float *bias, const float *in,
    int32_t n_in, float *out, int64_t *bad) {
  const int64_t w = 8 * NV;
  int64_t first_bad = *bad;
  for (int64_t r = r0; r < r1; r++) {
    v8f acc[8];
    float b0 = bias ? bias[r] : 0.0f;
    for (int j = 0; j < NV; j++) acc[j] = (v8f){0} + b0;
    const int64_t k1 = ptr[r + 1];
    for (int64_t k = ptr[r]; k < k1; k++) {
      uint32_t c = (uint32_t)idx[k];
      float v;
      if (perm) {
        uint32_t p = (uint32_t)perm[k];
        if (__builtin_expect(c >= (uint32_t)n_in || p >= (uint64_t)n_vals, 0)) {
          if (first_bad < 0 || k < first_bad) first_bad = k;
          continue;
        }
        v = vals[p];
      } else {
        if (__builtin_expect(c >= (uint32_t)n_in, 0)) {
          if (first_bad < 0 || k < first_bad) first_bad = k;
          continue;
        }
        v = vals[k];
      }
      const v8f *x = (const v8f *)(in + (int64_t)c * w);
      v8f vv = (v8f){0} + v;
      for (int j = 0; j < NV; j++) acc[j] += vv * x[j];
    }
    v8f *o = (v8f *)(out + r * w);
    for (int j = 0; j < NV; j++) o[j] = acc[j];
  }
  *bad = first_bad;
}

static void gather_fma_dispatch(int nv, int64_t r0, int64_t r1, const int32_t *ptr,
                                const int32_t *idx, const int32_t *perm, const float *vals,
                                int64_t n_vals, const float *bias, const float *in, int32_t n_in,
                                float *out, int64_t *bad) {
#define SL_CASE(N)                                                                       \
  case N:                                                                                \
    gather_fma_rows(N, r0, r1, ptr, idx, perm, vals, n_vals, bias, in, n_in, out, bad);  \
    break;
  switch (nv) {
    SL_CASE(1) SL_CASE(2) SL_CASE(3) SL_CASE(4) SL_CASE(5) SL_CASE(6) SL_CASE(7) SL_CASE(8)
  }
#undef SL_CASE
}

/* Batch 1: out[r] = init(r) + sum_k val(k) * in[idx[k]]. Same skip-and-report rule. */
static void gather_dot_rows(int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
                            const int32_t *perm, const float *vals, int64_t n_vals,
                            const float *bias, const float *in, int32_t n_in, float *out,
                            int64_t *bad) {
  int64_t first_bad = *bad;
  for (int64_t r = r0; r < r1; r++) {
    float acc = 0.0f;
    int ok = 1;
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
    if (perm) {
#pragma omp simd reduction(+ : acc) reduction(& : ok)
      for (int64_t k = k0; k < k1; k++) {
        uint32_t c = (uint32_t)idx[k], p = (uint32_t)perm[k];
        int good = c < (uint32_t)n_in && p < (uint64_t)n_vals;
        ok &= good;
        acc += good ? vals[good ? p : 0] * in[good ? c : 0] : 0.0f;
      }
    } else {
#pragma omp simd reduction(+ : acc) reduction(& : ok)
      for (int64_t k = k0; k < k1; k++) {
        uint32_t c = (uint32_t)idx[k];
        int good = c < (uint32_t)n_in;
        ok &= good;
        acc += vals[k] * in[good ? c : 0] * (good ? 1.0f : 0.0f);
      }
    }
    if (__builtin_expect(!ok, 0)) {
      for (int64_t k = k0; k < k1; k++) {
        int good = (uint32_t)idx[k] < (uint32_t)n_in &&
                   (!perm || (uint32_t)perm[k] < (uint64_t)n_vals);
        if (!good) {
          if (first_bad < 0 || k < first_bad) first_bad = k;
          break;
        }
      }
    }
    out[r] = acc + (bias ? bias[r] : 0.0f);
  }
  *bad = first_bad;
}

/*
 * out[batch, n_out] = for every row r of the pattern (ptr over n_out rows, idx into n_in):
 * init(r) + sum_k val(k) * in[:, idx[k]]. Shared by the forward (CSR, vals direct, bias) and
 * the input gradient (CSC, vals through perm). Writes out only when no index was bad; returns
 * the first bad position (or -1) in *bad, or SL_E_OUT_OF_MEMORY.
 */
static sl_status gather_matmul(int32_t batch, int32_t n_in, int32_t n_out, const int32_t *ptr,
                               const int32_t *idx, const int32_t *perm, const float *vals,
                               int64_t n_vals, const float *bias, const float *in, float *out,
                               int64_t *bad) {
  *bad = -1;
  const int threads = sl_threads();
  const int64_t nnz = ptr[n_out];
  if (n_in == 0 && nnz > 0) { /* every index is out of range; in may be null */
    *bad = 0;
    return SL_OK;
  }
  if (batch == 1) {
    float *tmp = aligned_scratch(n_out);
    if (tmp == NULL) return SL_E_OUT_OF_MEMORY;
    int parts = choose_parts(threads, nnz + n_out);
    int64_t bounds[8 * 64 + 1];
    if (parts > 8 * 64) parts = 8 * 64;
    partition_rows(ptr, n_out, 1, parts, bounds);
    int64_t first_bad = NO_BAD;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (parts > 1) \
    reduction(min : first_bad)
    for (int p = 0; p < parts; p++) {
      int64_t b = -1;
      gather_dot_rows(bounds[p], bounds[p + 1], ptr, idx, perm, vals, n_vals, bias, in, n_in,
                      tmp, &b);
      if (b >= 0 && b < first_bad) first_bad = b;
    }
    if (first_bad != NO_BAD) {
      *bad = first_bad;
    } else {
      memcpy(out, tmp, (size_t)n_out * sizeof(float));
    }
    free(tmp);
    return SL_OK;
  }

  /* Feature-major tiles of up to TILE_MAX batch columns, one tile at a time. */
  const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : (batch + 7) / 8 * 8;
  float *inT = aligned_scratch(sl_mul_size(first_w, n_in));
  float *outT = aligned_scratch(sl_mul_size(first_w, n_out));
  if (inT == NULL || outT == NULL) {
    free(inT);
    free(outT);
    return SL_E_OUT_OF_MEMORY;
  }
  int64_t bounds[8 * 64 + 1];
  int parts = choose_parts(threads, nnz * first_w + (int64_t)(n_in + n_out) * first_w);
  if (parts > 8 * 64) parts = 8 * 64;
  partition_rows(ptr, n_out, first_w / 8, parts, bounds);
  int64_t first_bad = NO_BAD;
  for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
    const int bt = (int)min64(TILE_MAX, batch - b0);
    const int w = (bt + 7) / 8 * 8;
    const int64_t in_blocks = (n_in + 255) / 256, out_blocks = (n_out + 255) / 256;
#pragma omp parallel num_threads(threads) if (parts > 1)
    {
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < in_blocks; blk++)
        to_feature_major(in, n_in, b0, bt, w, inT, blk * 256, min64(blk * 256 + 256, n_in));
#pragma omp for schedule(dynamic, 1) reduction(min : first_bad)
      for (int p = 0; p < parts; p++) {
        int64_t b = -1;
        gather_fma_dispatch(w / 8, bounds[p], bounds[p + 1], ptr, idx, perm, vals, n_vals, bias,
                            inT, n_in, outT, &b);
        if (b >= 0 && b < first_bad) first_bad = b;
      }
      if (first_bad == NO_BAD) {
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < out_blocks; blk++)
          from_feature_major(outT, n_out, b0, bt, w, out, blk * 256,
                             min64(blk * 256 + 256, n_out));
      }
    }
  }
  free(inT);
  free(outT);
  *bad = first_bad == NO_BAD ? -1 : first_bad;
  return SL_OK;
}

/* ------------------------------------------------------------------------ forward ---- */

sl_status sl_spmm_fwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                      const int32_t *row_ptr, const int32_t *col_idx, const float *values,
                      const float *bias, const float *x, float *y) {
  SL_ENTER();
  SL_CHECK_NONNEG(batch);
  SL_CHECK_NONNEG(n_in);
  SL_CHECK_NONNEG(n_out);
  SL_CHECK_NNZ(nnz);
  SL_CHECK_PTR(row_ptr);
  SL_CHECK_PTR_IF(col_idx, nnz);
  SL_CHECK_PTR_IF(values, nnz);
  SL_CHECK_PTR_IF(x, sl_mul_size(batch, n_in));
  SL_CHECK_PTR_IF(y, sl_mul_size(batch, n_out));
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (batch == 0 || n_out == 0) return SL_OK;
  int64_t bad;
  st = gather_matmul(batch, n_in, n_out, row_ptr, col_idx, NULL, values, nnz, bias, x, y, &bad);
  if (st == SL_E_OUT_OF_MEMORY)
    return sl_fail(st, __func__, "cannot allocate feature-major scratch for batch %d", batch);
  if (bad >= 0)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "col_idx[%lld] = %d is outside [0, %d)",
                   (long long)bad, col_idx[bad], n_in);
  return SL_OK;
}

/* ------------------------------------------------------------------ input gradient ---- */

sl_status sl_spmm_bwd_input(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                            const int32_t *col_ptr, const int32_t *row_idx,
                            const int32_t *csc_to_csr, const float *values, const float *dy,
                            float *dx) {
  SL_ENTER();
  SL_CHECK_NONNEG(batch);
  SL_CHECK_NONNEG(n_in);
  SL_CHECK_NONNEG(n_out);
  SL_CHECK_NNZ(nnz);
  SL_CHECK_PTR(col_ptr);
  SL_CHECK_PTR_IF(row_idx, nnz);
  SL_CHECK_PTR_IF(csc_to_csr, nnz);
  SL_CHECK_PTR_IF(values, nnz);
  SL_CHECK_PTR_IF(dy, sl_mul_size(batch, n_out));
  SL_CHECK_PTR_IF(dx, sl_mul_size(batch, n_in));
  sl_status st = sl_check_offsets(__func__, "col_ptr", col_ptr, n_in, nnz);
  if (st != SL_OK) return st;
  if (batch == 0 || n_in == 0) return SL_OK;
  int64_t bad;
  /* The CSC view is a pattern over n_in rows whose indices point into n_out: the same kernel
   * as the forward with the roles of in and out swapped and values read through csc_to_csr. */
  st = gather_matmul(batch, n_out, n_in, col_ptr, row_idx, csc_to_csr, values, nnz, NULL, dy, dx,
                     &bad);
  if (st == SL_E_OUT_OF_MEMORY)
    return sl_fail(st, __func__, "cannot allocate feature-major scratch for batch %d", batch);
  if (bad >= 0) {
    if ((uint32_t)row_idx[bad] >= (uint32_t)n_out)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "row_idx[%lld] = %d is outside [0, %d)",
                     (long long)bad, row_idx[bad], n_out);
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__,
                   "csc_to_csr[%lld] = %d is outside [0, %lld)", (long long)bad, csc_to_csr[bad],
                   (long long)nnz);
  }
  return SL_OK;
}

/* -------------------------------------------------------------------- weight gradient ---- */

/* dw[k] = sum_j dyT[r][j] * xT[idx[k]][j] for the rows in [r0, r1); w = 8 * NV. */
static inline __attribute__((always_inline)) void sddmm_rows(
    const int NV, int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
    const float *xT, int32_t n_in, const float *dyT, float *dw, int accumulate, int64_t *bad) {
  const int64_t w = 8 * NV;
  int64_t first_bad = *bad;
  for (int64_t r = r0; r < r1; r++) {
    v8f g[8];
    const v8f *gy = (const v8f *)(dyT + r * w);
    for (int j = 0; j < NV; j++) g[j] = gy[j];
    const int64_t k1 = ptr[r + 1];
    for (int64_t k = ptr[r]; k < k1; k++) {
      uint32_t c = (uint32_t)idx[k];
      if (__builtin_expect(c >= (uint32_t)n_in, 0)) {
        if (first_bad < 0 || k < first_bad) first_bad = k;
        continue;
      }
      const v8f *x = (const v8f *)(xT + (int64_t)c * w);
      v8f s = g[0] * x[0];
      for (int j = 1; j < NV; j++) s += g[j] * x[j];
      float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
      dw[k] = accumulate ? dw[k] + t : t;
    }
  }
  *bad = first_bad;
}

static void sddmm_dispatch(int nv, int64_t r0, int64_t r1, const int32_t *ptr,
                           const int32_t *idx, const float *xT, int32_t n_in, const float *dyT,
                           float *dw, int accumulate, int64_t *bad) {
#define SL_CASE(N)                                                          \
  case N:                                                                   \
    sddmm_rows(N, r0, r1, ptr, idx, xT, n_in, dyT, dw, accumulate, bad);    \
    break;
  switch (nv) {
    SL_CASE(1) SL_CASE(2) SL_CASE(3) SL_CASE(4) SL_CASE(5) SL_CASE(6) SL_CASE(7) SL_CASE(8)
  }
#undef SL_CASE
}

/* Batch 1: dw[k] = dy[r] * x[idx[k]]. */
static void sddmm_rows_b1(int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
                          const float *x, int32_t n_in, const float *dy, float *dw,
                          int64_t *bad) {
  int64_t first_bad = *bad;
  for (int64_t r = r0; r < r1; r++) {
    const float g = dy[r];
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
    int ok = 1;
#pragma omp simd reduction(& : ok)
    for (int64_t k = k0; k < k1; k++) {
      uint32_t c = (uint32_t)idx[k];
      int good = c < (uint32_t)n_in;
      ok &= good;
      dw[k] = g * x[good ? c : 0];
    }
    if (__builtin_expect(!ok, 0)) {
      for (int64_t k = k0; k < k1; k++)
        if ((uint32_t)idx[k] >= (uint32_t)n_in) {
          if (first_bad < 0 || k < first_bad) first_bad = k;
          break;
        }
    }
  }
  *bad = first_bad;
}

sl_status sl_sddmm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                   const int32_t *row_ptr, const int32_t *col_idx, const float *x,
                   const float *dy, float *dw) {
  SL_ENTER();
  SL_CHECK_NONNEG(batch);
  SL_CHECK_NONNEG(n_in);
  SL_CHECK_NONNEG(n_out);
  SL_CHECK_NNZ(nnz);
  SL_CHECK_PTR(row_ptr);
  SL_CHECK_PTR_IF(col_idx, nnz);
  SL_CHECK_PTR_IF(x, sl_mul_size(batch, n_in));
  SL_CHECK_PTR_IF(dy, sl_mul_size(batch, n_out));
  SL_CHECK_PTR_IF(dw, nnz);
  sl_status st = sl_check_offsets(__func__, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (nnz == 0) return SL_OK;
  const int threads = sl_threads();
  int64_t first_bad = NO_BAD;
  int64_t bounds[8 * 64 + 1];

  if (n_in == 0) { /* every index is out of range; x may be null */
    first_bad = 0;
  } else if (batch <= 1) {
    if (batch == 0) {
      /* An empty sum: still validate the indices so the contract does not depend on batch. */
      for (int64_t k = 0; k < nnz; k++)
        if ((uint32_t)col_idx[k] >= (uint32_t)n_in) {
          first_bad = k;
          break;
        }
      if (first_bad == NO_BAD) memset(dw, 0, (size_t)nnz * sizeof(float));
    } else {
      int parts = choose_parts(threads, nnz + n_out);
      if (parts > 8 * 64) parts = 8 * 64;
      partition_rows(row_ptr, n_out, 1, parts, bounds);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (parts > 1) \
    reduction(min : first_bad)
      for (int p = 0; p < parts; p++) {
        int64_t b = -1;
        sddmm_rows_b1(bounds[p], bounds[p + 1], row_ptr, col_idx, x, n_in, dy, dw, &b);
        if (b >= 0 && b < first_bad) first_bad = b;
      }
    }
  } else {
    const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : (batch + 7) / 8 * 8;
    float *xT = aligned_scratch(sl_mul_size(first_w, n_in));
    float *dyT = aligned_scratch(sl_mul_size(first_w, n_out));
    if (xT == NULL || dyT == NULL) {
      free(xT);
      free(dyT);
      return sl_fail(SL_E_OUT_OF_MEMORY, __func__,
                     "cannot allocate feature-major scratch for batch %d", batch);
    }
    int parts = choose_parts(threads, nnz * first_w + (int64_t)(n_in + n_out) * first_w);
    if (parts > 8 * 64) parts = 8 * 64;
    partition_rows(row_ptr, n_out, first_w / 8, parts, bounds);
    for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
      const int bt = (int)min64(TILE_MAX, batch - b0);
      const int w = (bt + 7) / 8 * 8;
      const int64_t in_blocks = (n_in + 255) / 256, out_blocks = (n_out + 255) / 256;
      const int accumulate = b0 > 0;
#pragma omp parallel num_threads(threads) if (parts > 1)
      {
#pragma omp for schedule(static) nowait
        for (int64_t blk = 0; blk < in_blocks; blk++)
          to_feature_major(x, n_in, b0, bt, w, xT, blk * 256, min64(blk * 256 + 256, n_in));
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < out_blocks; blk++)
          to_feature_major(dy, n_out, b0, bt, w, dyT, blk * 256, min64(blk * 256 + 256, n_out));
#pragma omp for schedule(dynamic, 1) reduction(min : first_bad)
        for (int p = 0; p < parts; p++) {
          int64_t b = -1;
          sddmm_dispatch(w / 8, bounds[p], bounds[p + 1], row_ptr, col_idx, xT, n_in, dyT, dw,
                         accumulate, &b);
          if (b >= 0 && b < first_bad) first_bad = b;
        }
      }
    }
    free(xT);
    free(dyT);
  }
  if (first_bad != NO_BAD)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "col_idx[%lld] = %d is outside [0, %d)",
                   (long long)first_bad, col_idx[first_bad], n_in);
  return SL_OK;
}

/* ---------------------------------------------------------------------- bias gradient ---- */

sl_status sl_bias_grad(int32_t batch, int32_t n_out, const float *dy, float *db) {
  SL_ENTER();
  SL_CHECK_NONNEG(batch);
  SL_CHECK_NONNEG(n_out);
  SL_CHECK_PTR_IF(dy, sl_mul_size(batch, n_out));
  SL_CHECK_PTR_IF(db, n_out);
  if (n_out == 0) return SL_OK;
  const int64_t blocks = (n_out + 1023) / 1024;
  const int threads = sl_threads();
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (sl_mul_size(batch, n_out) > (1 << 16) && blocks > 1)
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t o0 = blk * 1024, o1 = min64(o0 + 1024, n_out);
    float acc[1024];
    for (int64_t o = o0; o < o1; o++) acc[o - o0] = 0.0f;
    for (int64_t b = 0; b < batch; b++) {
      const float *row = dy + b * (int64_t)n_out;
#pragma omp simd
      for (int64_t o = o0; o < o1; o++) acc[o - o0] += row[o];
    }
    for (int64_t o = o0; o < o1; o++) db[o] = acc[o - o0];
  }
  return SL_OK;
}
