/*
 * sparse_format.cu — sparse pattern conversions on the device: COO -> CSR (CUB radix sort of
 * (row, col) keys, stable, then coalescing), CSR validation, CSR -> CSC view (stable radix sort
 * of the column indices). These validate everything before writing any output (they wait for
 * the device), with the CPU library's messages (csrc/cpu/sparse_format.c).
 */
#include <cub/cub.cuh>

#include "sparse.cuh"
#include "validate.h"

/* ------------------------------------------------------------- shared checks ---- */

__global__ void sl_empty_offsets_kernel(const int32_t *ptr, int64_t nnz,
                                        unsigned long long *slot) {
  const int32_t a = ptr[0];
  if (a != 0) sl_flag(slot, 0, 0, a);
  if ((int64_t)a != nnz) sl_flag(slot, 0, 1, a);
}

__global__ void sl_offsets_from_keys_kernel(int64_t n, int64_t count, const uint64_t *keys,
                                            int32_t *ptr) {
  SL_GRID_STRIDE(r, n + 1) {
    int64_t lo = 0, hi = count;
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if ((int64_t)(keys[mid] >> 32) < r) lo = mid + 1;
      else hi = mid;
    }
    ptr[r] = (int32_t)lo;
  }
}

sl_status sl_explain_offsets(const char *fn, const char *name, const sl_bad_entry *kinds,
                             int64_t n, int64_t nnz) {
  if (!kinds[0].bad) return SL_OK;
  const int64_t p = kinds[0].position;
  const int32_t v = kinds[0].value;
  if (p == 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s[0] = %d, must be 0", name, v);
  if (p <= n)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "%s[%lld] = %d is less than %s[%lld] = %d (offsets must not decrease)", name,
                   (long long)p, v, name, (long long)(p - 1), kinds[2].value);
  return sl_fail(SL_E_INVALID_ARGUMENT, fn, "%s[%lld] = %d, must equal nnz = %lld", name,
                 (long long)n, v, (long long)nnz);
}

namespace {

/* A warp per row: offsets (kinds 0, 2) and the first bad column (kind 1: out of range, or not
 * greater than its predecessor when check_order). */
__global__ void pattern_check_kernel(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                     const int32_t *__restrict__ ptr,
                                     const int32_t *__restrict__ idx, int check_order,
                                     unsigned long long *slot) {
  const int lane = threadIdx.x & 31;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (row >= n_rows) return;
  int64_t k0 = 0, k1 = 0;
  if (lane == 0) sl_row_range(ptr, row, n_rows, nnz, slot, &k0, &k1);
  k0 = __shfl_sync(0xffffffffu, k0, 0);
  k1 = __shfl_sync(0xffffffffu, k1, 0);
  for (int64_t k = k0 + lane; k < k1; k += 32) {
    const int32_t c = idx[k];
    const bool bad = (uint32_t)c >= (uint32_t)n_cols || (check_order && k > k0 && c <= idx[k - 1]);
    if (bad) sl_flag(slot, 1, k, c);
  }
}

sl_status launch_pattern_check(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *row_ptr, const int32_t *col_idx, int check_order,
                               unsigned long long *slot) {
  cudaError_t err;
  if (n_rows == 0) {
    sl_empty_offsets_kernel<<<1, 1>>>(row_ptr, nnz, slot);
    err = cudaGetLastError();
  } else {
    pattern_check_kernel<<<sl_blocks_each((int64_t)n_rows * 32, 256), 256>>>(
        n_rows, n_cols, nnz, row_ptr, col_idx, check_order, slot);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of pattern_check_kernel", err);
  return SL_OK;
}

/* params: n_rows, nnz, n_cols, col_idx (device address, read for the message). */
sl_status explain_pattern(const char *fn, const sl_bad_entry *kinds, const int64_t *p,
                          int style) {
  SL_TRY(sl_explain_offsets(fn, "row_ptr", kinds, p[0], p[1]));
  if (!kinds[1].bad) return SL_OK;
  const long long k = (long long)kinds[1].position;
  const int32_t v = kinds[1].value;
  if (v < 0 || (int64_t)v >= p[2])
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %lld)", k, v,
                   (long long)p[2]);
  const int32_t *col_idx = (const int32_t *)(intptr_t)p[3];
  int32_t prev = 0;
  SL_TRY(sl_read_value(fn, col_idx + (k - 1), &prev));
  if (style == 0) {
    if (prev == v)
      return sl_fail(SL_E_DUPLICATE, fn, "col_idx[%lld] = %d repeats col_idx[%lld] within one row",
                     k, v, k - 1);
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "col_idx[%lld] = %d is not greater than col_idx[%lld] = %d (columns must be "
                   "sorted within a row)",
                   k, v, k - 1, prev);
  }
  return sl_fail(prev == v ? SL_E_DUPLICATE : SL_E_INVALID_ARGUMENT, fn,
                 "col_idx[%lld] = %d is not greater than col_idx[%lld] = %d (columns must be "
                 "sorted and unique within a row)",
                 k, v, k - 1, prev);
}

sl_status explain_pattern_validate(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  return explain_pattern(fn, kinds, p, 0);
}

sl_status explain_pattern_topk(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  return explain_pattern(fn, kinds, p, 1);
}

/* ------------------------------------------------------------------ COO -> CSR ---- */

__global__ void coo_check_kernel(int64_t nnz, int32_t n_rows, int32_t n_cols,
                                 const int32_t *__restrict__ rows,
                                 const int32_t *__restrict__ cols, unsigned long long *slot) {
  SL_GRID_STRIDE(e, nnz) {
    if ((uint32_t)rows[e] >= (uint32_t)n_rows) sl_flag(slot, 1, e, rows[e]);
    if ((uint32_t)cols[e] >= (uint32_t)n_cols) sl_flag(slot, 3, e, cols[e]);
  }
}

/* params: n_rows, n_cols */
sl_status explain_coo(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  const bool row_bad = kinds[1].bad, col_bad = kinds[3].bad;
  if (row_bad && (!col_bad || kinds[1].position <= kinds[3].position))
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "rows[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[1].position, kinds[1].value, (long long)p[0]);
  if (col_bad)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "cols[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[3].position, kinds[3].value, (long long)p[1]);
  return SL_OK;
}

__global__ void coo_keys_kernel(int64_t nnz, const int32_t *__restrict__ rows,
                                const int32_t *__restrict__ cols, uint64_t *__restrict__ keys,
                                int32_t *__restrict__ ids) {
  SL_GRID_STRIDE(e, nnz) {
    keys[e] = ((uint64_t)(uint32_t)rows[e] << 32) | (uint32_t)cols[e];
    ids[e] = (int32_t)e;
  }
}

/* heads[i] = 1 where a new (row, col) starts; the smallest COO index of a repeat -> *first_dup. */
__global__ void coo_heads_kernel(int64_t nnz, const uint64_t *__restrict__ keys,
                                 const int32_t *__restrict__ ids, int32_t *__restrict__ heads,
                                 unsigned long long *first_dup) {
  SL_GRID_STRIDE(i, nnz) {
    const bool head = i == 0 || keys[i] != keys[i - 1];
    heads[i] = head ? 1 : 0;
    if (!head) atomicMin(first_dup, (unsigned long long)ids[i]);
  }
}

/* Writes each distinct entry at pos[i] - 1; values of repeats are summed in COO order. */
__global__ void coo_emit_kernel(int64_t nnz, const uint64_t *__restrict__ keys,
                                const int32_t *__restrict__ ids, const int32_t *__restrict__ pos,
                                const float *__restrict__ values_in,
                                int32_t *__restrict__ col_idx, float *__restrict__ values_out,
                                int64_t *__restrict__ perm, uint64_t *__restrict__ compact) {
  SL_GRID_STRIDE(i, nnz) {
    if (i > 0 && pos[i] == pos[i - 1]) continue; /* not the first of its group */
    const int64_t p = pos[i] - 1;
    compact[p] = keys[i];
    col_idx[p] = (int32_t)(uint32_t)(keys[i] & 0xFFFFFFFFull);
    if (perm != nullptr) perm[p] = ids[i];
    if (values_out != nullptr) {
      float sum = values_in[ids[i]];
      for (int64_t j = i + 1; j < nnz && pos[j] == pos[i]; j++) sum += values_in[ids[j]];
      values_out[p] = sum;
    }
  }
}

/* ---------------------------------------------------------------- CSR -> CSC ---- */

__global__ void row_of_kernel(int32_t n_rows, const int32_t *__restrict__ ptr,
                              int32_t *__restrict__ row_of) {
  const int lane = threadIdx.x & 31;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (row >= n_rows) return;
  for (int64_t k = ptr[row] + lane; k < ptr[row + 1]; k += 32) row_of[k] = (int32_t)row;
}

__global__ void iota_kernel(int64_t n, int32_t *out) {
  SL_GRID_STRIDE(i, n) out[i] = (int32_t)i;
}

__global__ void gather_rows_kernel(int64_t nnz, const int32_t *__restrict__ csc_to_csr,
                                   const int32_t *__restrict__ row_of,
                                   int32_t *__restrict__ row_idx) {
  SL_GRID_STRIDE(d, nnz) row_idx[d] = row_of[csc_to_csr[d]];
}

__global__ void offsets_from_sorted_kernel(int64_t n, int64_t count, const uint32_t *sorted,
                                           int32_t *ptr) {
  SL_GRID_STRIDE(c, n + 1) {
    int64_t lo = 0, hi = count;
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if ((int64_t)sorted[mid] < c) lo = mid + 1;
      else hi = mid;
    }
    ptr[c] = (int32_t)lo;
  }
}

} /* namespace */

sl_status sl_check_pattern_device(const char *fn, int style, int32_t n_rows, int32_t n_cols,
                                  int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx) {
  return sl_validate_now(fn, style == 0 ? explain_pattern_validate : explain_pattern_topk,
                         n_rows, nnz, n_cols, (int64_t)(intptr_t)col_idx,
                         [&](unsigned long long *slot) {
                           return launch_pattern_check(fn, n_rows, n_cols, nnz, row_ptr,
                                                       col_idx, 1, slot);
                         });
}

/* ------------------------------------------------------------------ entry points ---- */

extern "C" {

SL_API sl_status sl_coo_to_csr(int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *rows, const int32_t *cols,
                               const float *values_in, int32_t *row_ptr, int32_t *col_idx,
                               float *values_out, int64_t *perm, int64_t *nnz_out,
                               int64_t *first_duplicate) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_coo_to_csr(__func__, n_rows, n_cols, nnz, rows, cols, values_in, row_ptr,
                                     col_idx, values_out, nnz_out, first_duplicate));
  SL_CUDA_READY();
  if (nnz == 0) {
    SL_CUDA(cudaMemsetAsync(row_ptr, 0, ((size_t)n_rows + 1) * sizeof(int32_t), 0));
    SL_TRY(sl_check_flush(__func__));
    *nnz_out = 0;
    *first_duplicate = -1;
    return SL_OK;
  }
  /* Validate every entry before writing anything. */
  SL_TRY(sl_validate_now(__func__, explain_coo, n_rows, n_cols, 0, 0,
                         [&](unsigned long long *slot) -> sl_status {
                           coo_check_kernel<<<sl_blocks(nnz, 256), 256>>>(nnz, n_rows, n_cols,
                                                                          rows, cols, slot);
                           cudaError_t err = cudaGetLastError();
                           if (err != cudaSuccess)
                             return sl_cuda_fail(__func__, "the launch of coo_check_kernel", err);
                           return SL_OK;
                         }));
  sl_scratch keys, keys_sorted, ids, ids_sorted, pos, dup;
  SL_SCRATCH(keys, uint64_t, nnz);
  SL_SCRATCH(keys_sorted, uint64_t, nnz);
  SL_SCRATCH(ids, int32_t, nnz);
  SL_SCRATCH(ids_sorted, int32_t, nnz);
  SL_SCRATCH(pos, int32_t, nnz);
  SL_SCRATCH(dup, unsigned long long, 1);
  const int n = (int)nnz;
  coo_keys_kernel<<<sl_blocks(nnz, 256), 256>>>(nnz, rows, cols, keys.as<uint64_t>(),
                                                ids.as<int32_t>());
  SL_LAUNCHED("coo_keys_kernel");
  const int end_bit = 32 + sl_bits_for(n_rows);
  SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortPairs", [&](void *t, size_t &b) {
    return cub::DeviceRadixSort::SortPairs(t, b, keys.as<uint64_t>(), keys_sorted.as<uint64_t>(),
                                           ids.as<int32_t>(), ids_sorted.as<int32_t>(), n, 0,
                                           end_bit, (cudaStream_t)0);
  }));
  SL_CUDA(cudaMemsetAsync(dup.p, 0xFF, sizeof(unsigned long long), 0));
  /* heads go into `ids` (free now), their inclusive scan into `pos` */
  coo_heads_kernel<<<sl_blocks(nnz, 256), 256>>>(nnz, keys_sorted.as<uint64_t>(),
                                                 ids_sorted.as<int32_t>(), ids.as<int32_t>(),
                                                 dup.as<unsigned long long>());
  SL_LAUNCHED("coo_heads_kernel");
  SL_TRY(sl_cub(__func__, "cub::DeviceScan::InclusiveSum", [&](void *t, size_t &b) {
    return cub::DeviceScan::InclusiveSum(t, b, ids.as<int32_t>(), pos.as<int32_t>(), n,
                                         (cudaStream_t)0);
  }));
  coo_emit_kernel<<<sl_blocks(nnz, 256), 256>>>(
      nnz, keys_sorted.as<uint64_t>(), ids_sorted.as<int32_t>(), pos.as<int32_t>(), values_in,
      col_idx, values_out, perm, keys.as<uint64_t>());
  SL_LAUNCHED("coo_emit_kernel");
  int32_t distinct = 0;
  SL_TRY(sl_read_value(__func__, pos.as<int32_t>() + (nnz - 1), &distinct));
  sl_offsets_from_keys_kernel<<<sl_blocks((int64_t)n_rows + 1, 256), 256>>>(
      n_rows, distinct, keys.as<uint64_t>(), row_ptr);
  SL_LAUNCHED("sl_offsets_from_keys_kernel");
  unsigned long long first = 0;
  SL_TRY(sl_read_value(__func__, dup.as<unsigned long long>(), &first));
  *nnz_out = distinct;
  *first_duplicate = first == ~0ull ? -1 : (int64_t)first;
  return SL_OK;
}

SL_API sl_status sl_csr_validate(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_validate(__func__, n_rows, n_cols, nnz, row_ptr, col_idx));
  SL_CUDA_READY();
  return sl_check_pattern_device(__func__, 0, n_rows, n_cols, nnz, row_ptr, col_idx);
}

SL_API sl_status sl_csr_to_csc(int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *row_ptr, const int32_t *col_idx,
                               int32_t *col_ptr, int32_t *row_idx, int32_t *csc_to_csr) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_to_csc(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, col_ptr,
                                     row_idx, csc_to_csr));
  SL_CUDA_READY();
  /* Offsets and column range only (sl_csr_to_csc's checks). */
  SL_TRY(sl_validate_now(__func__, sl_explain_columns, n_rows, nnz, n_cols, 0,
                         [&](unsigned long long *slot) {
                           return launch_pattern_check(__func__, n_rows, n_cols, nnz, row_ptr,
                                                       col_idx, 0, slot);
                         }));
  if (nnz == 0) {
    SL_CUDA(cudaMemsetAsync(col_ptr, 0, ((size_t)n_cols + 1) * sizeof(int32_t), 0));
    return SL_OK;
  }
  sl_scratch row_of, order, sorted_cols;
  SL_SCRATCH(row_of, int32_t, nnz);
  SL_SCRATCH(order, int32_t, nnz);
  SL_SCRATCH(sorted_cols, uint32_t, nnz);
  row_of_kernel<<<sl_blocks_each((int64_t)n_rows * 32, 256), 256>>>(n_rows, row_ptr,
                                                               row_of.as<int32_t>());
  SL_LAUNCHED("row_of_kernel");
  iota_kernel<<<sl_blocks(nnz, 256), 256>>>(nnz, order.as<int32_t>());
  SL_LAUNCHED("iota_kernel");
  /* A stable sort by column keeps CSR order, i.e. row order, within each column. */
  const int n = (int)nnz;
  SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortPairs", [&](void *t, size_t &b) {
    return cub::DeviceRadixSort::SortPairs(t, b, reinterpret_cast<const uint32_t *>(col_idx),
                                           sorted_cols.as<uint32_t>(), order.as<int32_t>(),
                                           csc_to_csr, n, 0, sl_bits_for(n_cols),
                                           (cudaStream_t)0);
  }));
  gather_rows_kernel<<<sl_blocks(nnz, 256), 256>>>(nnz, csc_to_csr, row_of.as<int32_t>(),
                                                   row_idx);
  SL_LAUNCHED("gather_rows_kernel");
  offsets_from_sorted_kernel<<<sl_blocks((int64_t)n_cols + 1, 256), 256>>>(
      n_cols, nnz, sorted_cols.as<uint32_t>(), col_ptr);
  SL_LAUNCHED("offsets_from_sorted_kernel");
  return SL_OK;
}

} /* extern "C" */
