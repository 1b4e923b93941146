/*
 * topk.cu — the kernels of dynamic sparsity on the GPU (semantics and messages of
 * csrc/cpu/topk.c):
 *   - sl_topk: exact top-k / bottom-k with CUB: 32-bit keys that order like the scores, a
 *     stable descending radix sort (ties keep index order, so the lower index wins), then the
 *     k chosen indices sorted ascending;
 *   - sl_dense_grad_topk: RigL's growth criterion in row chunks: each chunk of G = dY^T X is one
 *     GEMM, positions inside the pattern are masked, the remaining candidates are compacted with
 *     cub::DeviceSelect and merged with the running top-k by a stable radix sort;
 *   - sl_sample_absent: the same random ranks as the CPU library (drawn on the host with the
 *     same generator), mapped to (row, col) on the device: identical results;
 *   - sl_csr_drop_grow: the CSR rebuild, fully on the device (sorted grown keys, binary searches
 *     and prefix sums place every kept and grown entry).
 * Each validates before writing and waits for the device (these run once per topology update).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cub/cub.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "dense.cuh"
#include "sparse.cuh"
#include "sample.h"
#include "validate.h"

namespace {

/* ------------------------------------------------------------------------ keys ---- */

__device__ __forceinline__ bool is_nan_bits(uint32_t u) { return (u & 0x7FFFFFFFu) > 0x7F800000u; }

/* The CPU library's score_key: a key >= 1 that orders like the score under `flags`. */
__device__ __forceinline__ uint32_t score_key(float score, int32_t flags) {
  uint32_t u = __float_as_uint(score);
  if ((u & 0x7FFFFFFFu) == 0) u = 0; /* -0 == +0 */
  if (flags & SL_TOPK_ABS) {
    u &= 0x7FFFFFFFu;
  } else {
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  if (flags & SL_TOPK_SMALLEST) return ~u;
  return (flags & SL_TOPK_ABS) ? u + 1 : u;
}

__global__ void topk_keys_kernel(int64_t n, const float *__restrict__ scores, int32_t flags,
                                 uint32_t *__restrict__ keys, int32_t *__restrict__ ids,
                                 unsigned long long *slot) {
  SL_GRID_STRIDE(i, n) {
    const float s = scores[i];
    const uint32_t u = __float_as_uint(s);
    if (is_nan_bits(u)) {
      sl_flag(slot, 1, i, (int32_t)u);
      keys[i] = 0;
    } else {
      keys[i] = score_key(s, flags);
    }
    ids[i] = (int32_t)i;
  }
}

sl_status explain_nan_score(const char *fn, const sl_bad_entry *kinds, const int64_t *) {
  if (!kinds[1].bad) return SL_OK;
  return sl_fail(SL_E_INVALID_ARGUMENT, fn, "scores[%lld] is NaN", (long long)kinds[1].position);
}

/* ------------------------------------------------------- dense-gradient top-k ---- */

#define NAN_KEY 0xFFFFFFFFu /* above every key of a non-NaN magnitude (<= 0x7F800001) */

/* key = bits(|g|) + 1, NaN -> NAN_KEY (positions in the pattern are masked afterwards). */
__global__ void grad_keys_kernel(int64_t len, const float *__restrict__ g,
                                 uint32_t *__restrict__ keys) {
  SL_GRID_STRIDE(i, len) {
    const uint32_t u = __float_as_uint(g[i]);
    keys[i] = is_nan_bits(u) ? NAN_KEY : (u & 0x7FFFFFFFu) + 1;
  }
}

/* Masks the pattern's positions in rows [r0, r0 + rows): a warp per row. */
__global__ void mask_pattern_kernel(int64_t r0, int64_t rows, int32_t n_in,
                                    const int32_t *__restrict__ row_ptr,
                                    const int32_t *__restrict__ col_idx,
                                    uint32_t *__restrict__ keys) {
  const int lane = threadIdx.x & 31;
  const int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (r >= rows) return;
  for (int64_t k = row_ptr[r0 + r] + lane; k < row_ptr[r0 + r + 1]; k += 32)
    keys[r * n_in + col_idx[k]] = 0;
}

/* NaN -> smallest position into *nan_pos (then key 0); keys at or below the floor -> 0. */
__global__ void filter_keys_kernel(int64_t len, int64_t base, uint32_t floor_key,
                                   uint32_t *__restrict__ keys,
                                   unsigned long long *__restrict__ nan_pos) {
  SL_GRID_STRIDE(i, len) {
    const uint32_t key = keys[i];
    if (key == NAN_KEY) {
      atomicMin(nan_pos, (unsigned long long)(base + i));
      keys[i] = 0;
    } else if (key <= floor_key) {
      keys[i] = 0;
    }
  }
}

struct nonzero_key {
  const uint32_t *keys;
  __device__ bool operator()(int32_t i) const { return keys[i] != 0; }
};

/* all_keys / all_pos = [candidates..., selected chunk entries...] (ascending positions). */
__global__ void concat_kernel(int64_t n_cand, const uint32_t *__restrict__ cand_keys,
                              const int64_t *__restrict__ cand_pos, int64_t m,
                              const int32_t *__restrict__ sel, const uint32_t *__restrict__ keys,
                              int64_t base, uint32_t *__restrict__ all_keys,
                              int64_t *__restrict__ all_pos) {
  SL_GRID_STRIDE(t, n_cand + m) {
    if (t < n_cand) {
      all_keys[t] = cand_keys[t];
      all_pos[t] = cand_pos[t];
    } else {
      const int32_t i = sel[t - n_cand];
      all_keys[t] = keys[i];
      all_pos[t] = base + i;
    }
  }
}

__global__ void grad_outputs_kernel(int64_t k, const int64_t *__restrict__ pos, int32_t n_in,
                                    int32_t n_out, int32_t batch, const float *__restrict__ x,
                                    const float *__restrict__ dy, int32_t *__restrict__ out_rows,
                                    int32_t *__restrict__ out_cols, float *__restrict__ out_grad) {
  SL_GRID_STRIDE(j, k) {
    const int64_t o = pos[j] / n_in, i = pos[j] % n_in;
    out_rows[j] = (int32_t)o;
    out_cols[j] = (int32_t)i;
    if (out_grad != nullptr) {
      /* The signed value (keys keep only the magnitude), recomputed as one chain of fused
       * multiply-adds over the batch from +0, as the CPU library does (and as nvcc contracted
       * the former `g += dy * x` anyway). */
      float g = 0.0f;
      for (int64_t b = 0; b < batch; b++)
        g = fmaf(dy[b * (int64_t)n_out + o], x[b * (int64_t)n_in + i], g);
      out_grad[j] = g;
    }
  }
}

/* ------------------------------------------------------------ random absent positions ---- */

/* absent[r + 1] = n_cols - (row length); absent[0] = 0 (scanned into cumulative counts). */
__global__ void absent_counts_kernel(int32_t n_rows, int32_t n_cols,
                                     const int32_t *__restrict__ row_ptr,
                                     int64_t *__restrict__ absent) {
  SL_GRID_STRIDE(r, (int64_t)n_rows + 1) {
    absent[r] = r == 0 ? 0 : (int64_t)n_cols - (row_ptr[r] - row_ptr[r - 1]);
  }
}

/* Absent rank -> (row, col), as the CPU library: the row by binary search over the cumulative
 * counts, then the q-th absent column is q + #{j : col_j - j <= q}. */
__global__ void map_ranks_kernel(int64_t k, int32_t n_rows, const uint64_t *__restrict__ ranks,
                                 const int64_t *__restrict__ cum,
                                 const int32_t *__restrict__ row_ptr,
                                 const int32_t *__restrict__ col_idx,
                                 int32_t *__restrict__ out_rows, int32_t *__restrict__ out_cols) {
  SL_GRID_STRIDE(j, k) {
    const int64_t rank = (int64_t)ranks[j];
    int64_t lo = 0, hi = n_rows; /* last row with cum[row] <= rank */
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) >> 1;
      if (cum[mid] <= rank) lo = mid;
      else hi = mid - 1;
    }
    const int64_t row = lo;
    const int64_t q = rank - cum[row];
    const int32_t *cols = col_idx + row_ptr[row];
    int64_t a = 0, b = row_ptr[row + 1] - row_ptr[row];
    while (a < b) {
      const int64_t mid = a + (b - a) / 2;
      if (cols[mid] - mid <= q) a = mid + 1;
      else b = mid;
    }
    out_rows[j] = (int32_t)row;
    out_cols[j] = (int32_t)(q + a);
  }
}

/* ------------------------------------------------------------------ drop + grow ---- */

__global__ void fill_int_kernel(int64_t n, int32_t value, int32_t *out) {
  SL_GRID_STRIDE(i, n) out[i] = value;
}

/* first[e] = smallest d with drop_idx[d] == e; out-of-range entries -> kind 0;
 * grown rows / cols out of range -> kinds 2 / 3. */
__global__ void drop_grow_check_kernel(int64_t n_drop, const int32_t *__restrict__ drop_idx,
                                       int64_t nnz, int32_t *__restrict__ first, int64_t n_grow,
                                       const int32_t *__restrict__ grow_rows,
                                       const int32_t *__restrict__ grow_cols, int32_t n_rows,
                                       int32_t n_cols, unsigned long long *slot) {
  SL_GRID_STRIDE(t, n_drop + n_grow) {
    if (t < n_drop) {
      const int32_t e = drop_idx[t];
      if ((uint64_t)(uint32_t)e >= (uint64_t)nnz) sl_flag(slot, 0, t, e);
      else atomicMin(first + e, (int32_t)t);
    } else {
      const int64_t g = t - n_drop;
      if ((uint32_t)grow_rows[g] >= (uint32_t)n_rows) sl_flag(slot, 2, g, grow_rows[g]);
      if ((uint32_t)grow_cols[g] >= (uint32_t)n_cols) sl_flag(slot, 3, g, grow_cols[g]);
    }
  }
}

/* A drop entry that is not the first naming its connection is a repeat (kind 1). */
__global__ void drop_repeat_kernel(int64_t n_drop, const int32_t *__restrict__ drop_idx,
                                   int64_t nnz, const int32_t *__restrict__ first,
                                   unsigned long long *slot) {
  SL_GRID_STRIDE(d, n_drop) {
    const int32_t e = drop_idx[d];
    if ((uint64_t)(uint32_t)e < (uint64_t)nnz && first[e] != (int32_t)d) sl_flag(slot, 1, d, e);
  }
}

/* params: nnz, n_rows, n_cols */
sl_status explain_drop_grow_input(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  const sl_bad_entry range = kinds[0], repeat = kinds[1];
  if (range.bad && (!repeat.bad || range.position < repeat.position))
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "drop_idx[%lld] = %d is outside [0, %lld)",
                   (long long)range.position, range.value, (long long)p[0]);
  if (repeat.bad)
    return sl_fail(SL_E_DUPLICATE, fn, "drop_idx[%lld] = %d is listed twice",
                   (long long)repeat.position, repeat.value);
  const sl_bad_entry rows = kinds[2], cols = kinds[3];
  if (rows.bad && (!cols.bad || rows.position <= cols.position))
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "grow_rows[%lld] = %d is outside [0, %lld)",
                   (long long)rows.position, rows.value, (long long)p[1]);
  if (cols.bad)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "grow_cols[%lld] = %d is outside [0, %lld)",
                   (long long)cols.position, cols.value, (long long)p[2]);
  return SL_OK;
}

__global__ void grow_keys_kernel(int64_t n_grow, const int32_t *__restrict__ rows,
                                 const int32_t *__restrict__ cols, uint64_t *__restrict__ keys) {
  SL_GRID_STRIDE(g, n_grow) keys[g] = ((uint64_t)(uint32_t)rows[g] << 32) | (uint32_t)cols[g];
}

/* Position of the first column >= c in col_idx[lo, hi). */
__device__ __forceinline__ int64_t lower_col(const int32_t *col_idx, int64_t lo, int64_t hi,
                                             int32_t c) {
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (col_idx[mid] < c) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Repeated grown positions (kind 0: sorted index) and grown positions that are kept
 * connections (kind 1: sorted index, value = the CSR entry). */
__global__ void grow_conflict_kernel(int64_t n_grow, const uint64_t *__restrict__ sorted,
                                     const int32_t *__restrict__ row_ptr,
                                     const int32_t *__restrict__ col_idx,
                                     const int32_t *__restrict__ first,
                                     unsigned long long *slot) {
  SL_GRID_STRIDE(g, n_grow) {
    const uint64_t key = sorted[g];
    if (g > 0 && sorted[g - 1] == key) sl_flag(slot, 0, g, 0);
    const int64_t r = (int64_t)(key >> 32);
    const int32_t c = (int32_t)(uint32_t)key;
    const int64_t end = row_ptr[r + 1];
    const int64_t p = lower_col(col_idx, row_ptr[r], end, c);
    if (p < end && col_idx[p] == c && first[p] == INT32_MAX) sl_flag(slot, 1, g, (int32_t)p);
  }
}

/* params: unused, unused, unused, sorted grown keys (device address, read for the message). */
sl_status explain_grow_conflict(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  const uint64_t *sorted = (const uint64_t *)(intptr_t)p[3];
  if (kinds[0].bad) {
    uint64_t key = 0;
    SL_TRY(sl_read_value(fn, sorted + kinds[0].position, &key));
    return sl_fail(SL_E_DUPLICATE, fn, "the grown position (row %u, col %u) is listed twice",
                   (unsigned)(key >> 32), (unsigned)(uint32_t)key);
  }
  if (kinds[1].bad) {
    uint64_t key = 0;
    SL_TRY(sl_read_value(fn, sorted + kinds[1].position, &key));
    return sl_fail(SL_E_DUPLICATE, fn,
                   "the grown position (row %lld, col %d) is a kept connection (CSR entry %lld)",
                   (long long)(key >> 32), (int32_t)(uint32_t)key, (long long)kinds[1].value);
  }
  return SL_OK;
}

/* keep[k] = 1 for a kept connection (k < nnz), keep[nnz] = 0 (for the exclusive scan). */
__global__ void keep_flags_kernel(int64_t nnz, const int32_t *__restrict__ first,
                                  int32_t *__restrict__ keep) {
  SL_GRID_STRIDE(k, nnz + 1) keep[k] = k < nnz && first[k] == INT32_MAX ? 1 : 0;
}

/* count[r] = kept + grown entries of row r (count[n_rows] = 0, for the exclusive scan). */
__global__ void row_counts_kernel(int32_t n_rows, const int32_t *__restrict__ row_ptr,
                                  const int32_t *__restrict__ kept_before,
                                  const int32_t *__restrict__ grow_ptr,
                                  int32_t *__restrict__ count) {
  SL_GRID_STRIDE(r, (int64_t)n_rows + 1) {
    count[r] = r == n_rows ? 0
                           : (kept_before[row_ptr[r + 1]] - kept_before[row_ptr[r]]) +
                                 (grow_ptr[r + 1] - grow_ptr[r]);
  }
}

/* Number of sorted grown keys of row r below column c. */
__device__ __forceinline__ int64_t grown_below(const uint64_t *sorted, int64_t lo, int64_t hi,
                                               uint64_t key) {
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (sorted[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

__global__ void emit_kept_kernel(int64_t nnz, int32_t n_rows, const int32_t *__restrict__ row_ptr,
                                 const int32_t *__restrict__ col_idx,
                                 const float *__restrict__ values,
                                 const int32_t *__restrict__ kept_before,
                                 const int32_t *__restrict__ first,
                                 const uint64_t *__restrict__ sorted,
                                 const int32_t *__restrict__ grow_ptr,
                                 const int32_t *__restrict__ new_row_ptr,
                                 int32_t *__restrict__ new_col_idx,
                                 float *__restrict__ new_values, int32_t *__restrict__ old_index) {
  SL_GRID_STRIDE(k, nnz) {
    if (first[k] != INT32_MAX) continue; /* dropped */
    int64_t lo = 0, hi = n_rows; /* the row r with row_ptr[r] <= k < row_ptr[r + 1] */
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) >> 1;
      if (row_ptr[mid] <= k) lo = mid;
      else hi = mid - 1;
    }
    const int64_t r = lo;
    const int32_t c = col_idx[k];
    const int64_t below =
        grown_below(sorted, grow_ptr[r], grow_ptr[r + 1], ((uint64_t)r << 32) | (uint32_t)c) -
        grow_ptr[r];
    const int64_t out =
        new_row_ptr[r] + (kept_before[k] - kept_before[row_ptr[r]]) + below;
    new_col_idx[out] = c;
    if (new_values != nullptr) new_values[out] = values[k];
    if (old_index != nullptr) old_index[out] = (int32_t)k;
  }
}

__global__ void emit_grown_kernel(int64_t n_grow, int keep_regrown,
                                  const uint64_t *__restrict__ sorted,
                                  const int32_t *__restrict__ row_ptr,
                                  const int32_t *__restrict__ col_idx,
                                  const float *__restrict__ values,
                                  const int32_t *__restrict__ kept_before,
                                  const int32_t *__restrict__ grow_ptr,
                                  const int32_t *__restrict__ new_row_ptr,
                                  int32_t *__restrict__ new_col_idx,
                                  float *__restrict__ new_values,
                                  int32_t *__restrict__ old_index) {
  SL_GRID_STRIDE(g, n_grow) {
    const uint64_t key = sorted[g];
    const int64_t r = (int64_t)(key >> 32);
    const int32_t c = (int32_t)(uint32_t)key;
    const int64_t end = row_ptr[r + 1];
    const int64_t p = lower_col(col_idx, row_ptr[r], end, c);
    const int64_t out = new_row_ptr[r] + (kept_before[p] - kept_before[row_ptr[r]]) +
                        (g - grow_ptr[r]);
    /* A grown position that is the connection just dropped may keep its past. */
    const bool keep = keep_regrown && p < end && col_idx[p] == c;
    new_col_idx[out] = c;
    if (new_values != nullptr) new_values[out] = keep ? values[p] : 0.0f;
    if (old_index != nullptr) old_index[out] = keep ? (int32_t)p : -1;
  }
}

} /* namespace */

extern "C" {

SL_API sl_status sl_topk(int64_t n, const float *scores, int64_t k, int32_t flags,
                         int32_t *out_idx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_topk(__func__, n, scores, k, flags, out_idx));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  sl_scratch keys, ids, keys_sorted, ids_sorted;
  SL_SCRATCH(keys, uint32_t, n);
  SL_SCRATCH(ids, int32_t, n);
  SL_TRY(sl_validate_now(__func__, explain_nan_score, 0, 0, 0, 0,
                         [&](unsigned long long *slot) -> sl_status {
                           topk_keys_kernel<<<sl_blocks(n, 256), 256>>>(
                               n, scores, flags, keys.as<uint32_t>(), ids.as<int32_t>(), slot);
                           SL_LAUNCHED("topk_keys_kernel");
                           return SL_OK;
                         }));
  if (k == 0) return SL_OK;
  SL_SCRATCH(keys_sorted, uint32_t, n);
  SL_SCRATCH(ids_sorted, int32_t, n);
  const int count = (int)n, kk = (int)k;
  /* Stable: equal keys keep index order, so the lower index ranks first among ties. */
  SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortPairsDescending", [&](void *t, size_t &b) {
    return cub::DeviceRadixSort::SortPairsDescending(t, b, keys.as<uint32_t>(),
                                                     keys_sorted.as<uint32_t>(), ids.as<int32_t>(),
                                                     ids_sorted.as<int32_t>(), count, 0, 32,
                                                     (cudaStream_t)0);
  }));
  SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortKeys", [&](void *t, size_t &b) {
    return cub::DeviceRadixSort::SortKeys(t, b, reinterpret_cast<const uint32_t *>(ids_sorted.p),
                                          reinterpret_cast<uint32_t *>(out_idx), kk, 0,
                                          sl_bits_for(n), (cudaStream_t)0);
  }));
  return sl_check_flush(__func__);
}

SL_API sl_status sl_dense_grad_topk(int32_t batch, int32_t n_in, int32_t n_out, const float *x,
                                   const float *dy, int64_t nnz, const int32_t *row_ptr,
                                   const int32_t *col_idx, int64_t k, int64_t max_size,
                                   int32_t *out_rows, int32_t *out_cols, float *out_grad) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_dense_grad_topk(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, k,
                                          max_size));
  const int64_t total = (int64_t)n_out * n_in;
  SL_CUDA_READY();
  SL_TRY(sl_check_pattern_device(__func__, 1, n_out, n_in, nnz, row_ptr, col_idx));
  const int64_t absent = total - nnz;
  SL_CHECK_ARG(k <= absent, "k = %lld exceeds the %lld positions outside the pattern",
               (long long)k, (long long)absent);
  if (k == 0) return SL_OK;
  if (sl_mul_size(batch, n_in) > 0) SL_CHECK_PTR(x);
  if (sl_mul_size(batch, n_out) > 0) SL_CHECK_PTR(dy);
  SL_CHECK_PTR(out_rows);
  SL_CHECK_PTR(out_cols);

  /* Chunks of whole rows; CUB counts are int, so a chunk plus the candidates stays < 2^31. */
  int64_t chunk_rows = max_size / n_in < n_out ? max_size / n_in : n_out;
  const int64_t limit = ((int64_t)1 << 31) - 1 - k;
  if ((int64_t)n_in > limit)
    return sl_fail(SL_E_UNSUPPORTED, __func__,
                   "one gradient row (n_in = %d) plus k = %lld candidates exceeds 2^31 entries",
                   n_in, (long long)k);
  if (chunk_rows * n_in > limit) chunk_rows = limit / n_in;
  /* A chunk's gradient is one GEMM launch, whose grid takes at most SL_GEMM_MAX_ROWS rows
   * (n_in = 1 with a large max_size gave 2^23 rows and failed the call). */
  if (chunk_rows > SL_GEMM_MAX_ROWS) chunk_rows = SL_GEMM_MAX_ROWS;
  const int64_t chunk_len = chunk_rows * (int64_t)n_in;
  sl_scratch g, keys, sel, sel_count, nan_pos, cand_keys, cand_pos, all_keys, all_pos,
      sorted_keys, sorted_pos;
  SL_SCRATCH(g, float, chunk_len);
  SL_SCRATCH(keys, uint32_t, chunk_len);
  SL_SCRATCH(sel, int32_t, chunk_len);
  SL_SCRATCH(sel_count, int32_t, 1);
  SL_SCRATCH(nan_pos, unsigned long long, 1);
  SL_SCRATCH(cand_keys, uint32_t, k);
  SL_SCRATCH(cand_pos, int64_t, k);
  SL_CUDA(cudaMemsetAsync(nan_pos.p, 0xFF, sizeof(unsigned long long), 0));

  int64_t n_cand = 0;
  uint32_t floor_key = 0; /* once n_cand == k: the k-th best key; a later position needs more */
  for (int64_t r0 = 0; r0 < n_out; r0 += chunk_rows) {
    const int64_t rows = n_out - r0 < chunk_rows ? n_out - r0 : chunk_rows;
    const int64_t len = rows * (int64_t)n_in;
    const int64_t base = r0 * (int64_t)n_in;
    /* G[r, i] = sum_b dy[b, r0 + r] * x[b, i] (zeros for an empty batch). */
    if (batch == 0) {
      SL_CUDA(cudaMemsetAsync(g.p, 0, (size_t)len * sizeof(float), 0));
    } else {
      SL_TRY(sl_gemm_launch(__func__, 1, 0, 1, (int32_t)rows, n_in, batch, 1.0f, dy + r0, n_out,
                            0, x, n_in, 0, 0.0f, g.as<float>(), n_in, 0));
    }
    grad_keys_kernel<<<sl_blocks(len, 256), 256>>>(len, g.as<float>(), keys.as<uint32_t>());
    SL_LAUNCHED("grad_keys_kernel");
    mask_pattern_kernel<<<sl_blocks_each(rows * 32, 256), 256>>>(r0, rows, n_in, row_ptr, col_idx,
                                                            keys.as<uint32_t>());
    SL_LAUNCHED("mask_pattern_kernel");
    filter_keys_kernel<<<sl_blocks(len, 256), 256>>>(len, base, floor_key, keys.as<uint32_t>(),
                                                     nan_pos.as<unsigned long long>());
    SL_LAUNCHED("filter_keys_kernel");
    nonzero_key pred{keys.as<uint32_t>()};
    const int n_items = (int)len;
    SL_TRY(sl_cub(__func__, "cub::DeviceSelect::If", [&](void *t, size_t &b) {
      return cub::DeviceSelect::If(t, b, thrust::counting_iterator<int32_t>(0), sel.as<int32_t>(),
                                   sel_count.as<int32_t>(), n_items, pred, (cudaStream_t)0);
    }));
    unsigned long long nan_at = 0;
    SL_TRY(sl_read_value(__func__, nan_pos.as<unsigned long long>(), &nan_at));
    if (nan_at != ~0ull)
      return sl_fail(SL_E_INVALID_ARGUMENT, __func__,
                     "the gradient dy^T x is NaN at (row %lld, col %lld): x or dy holds NaN",
                     (long long)(nan_at / n_in), (long long)(nan_at % n_in));
    int32_t m = 0;
    SL_TRY(sl_read_value(__func__, sel_count.as<int32_t>(), &m));
    if (m == 0) continue;
    const int64_t n_all = n_cand + m;
    SL_SCRATCH(all_keys, uint32_t, n_all);
    SL_SCRATCH(all_pos, int64_t, n_all);
    concat_kernel<<<sl_blocks(n_all, 256), 256>>>(n_cand, cand_keys.as<uint32_t>(),
                                                  cand_pos.as<int64_t>(), m, sel.as<int32_t>(),
                                                  keys.as<uint32_t>(), base,
                                                  all_keys.as<uint32_t>(), all_pos.as<int64_t>());
    SL_LAUNCHED("concat_kernel");
    if (n_all <= k) {
      /* Everything fits: the candidates followed by the chunk's, still in position order. */
      SL_CUDA(cudaMemcpyAsync(cand_keys.p, all_keys.p, (size_t)n_all * sizeof(uint32_t),
                              cudaMemcpyDeviceToDevice, 0));
      SL_CUDA(cudaMemcpyAsync(cand_pos.p, all_pos.p, (size_t)n_all * sizeof(int64_t),
                              cudaMemcpyDeviceToDevice, 0));
      n_cand = n_all;
    } else {
      SL_SCRATCH(sorted_keys, uint32_t, n_all);
      SL_SCRATCH(sorted_pos, int64_t, n_all);
      const int na = (int)n_all, kk = (int)k;
      /* Stable: equal keys stay in position order, so lower positions win ties. */
      SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortPairsDescending",
                    [&](void *t, size_t &b) {
                      return cub::DeviceRadixSort::SortPairsDescending(
                          t, b, all_keys.as<uint32_t>(), sorted_keys.as<uint32_t>(),
                          all_pos.as<int64_t>(), sorted_pos.as<int64_t>(), na, 0, 32,
                          (cudaStream_t)0);
                    }));
      SL_TRY(sl_read_value(__func__, sorted_keys.as<uint32_t>() + (k - 1), &floor_key));
      /* The k best, back in ascending position order. */
      SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortPairs", [&](void *t, size_t &b) {
        return cub::DeviceRadixSort::SortPairs(
            t, b, reinterpret_cast<const uint64_t *>(sorted_pos.p),
            reinterpret_cast<uint64_t *>(cand_pos.p), sorted_keys.as<uint32_t>(),
            cand_keys.as<uint32_t>(), kk, 0, sl_bits_for(total), (cudaStream_t)0);
      }));
      n_cand = k;
    }
  }
  /* Every position outside the pattern was a candidate until the running top-k was full, and
   * absent >= k, so exactly k were kept. */
  grad_outputs_kernel<<<sl_blocks(k, 256), 256>>>(k, cand_pos.as<int64_t>(), n_in, n_out, batch,
                                                  x, dy, out_rows, out_cols, out_grad);
  SL_LAUNCHED("grad_outputs_kernel");
  return sl_check_flush(__func__);
}

SL_API sl_status sl_sample_absent(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                  const int32_t *row_ptr, const int32_t *col_idx, int64_t k,
                                  uint64_t seed, int32_t *out_rows, int32_t *out_cols) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sample_absent(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, k));
  const int64_t total = (int64_t)n_rows * n_cols;
  SL_CUDA_READY();
  SL_TRY(sl_check_pattern_device(__func__, 1, n_rows, n_cols, nnz, row_ptr, col_idx));
  const int64_t absent = total - nnz;
  SL_CHECK_ARG(k <= absent, "k = %lld exceeds the %lld positions outside the pattern",
               (long long)k, (long long)absent);
  if (k == 0) return SL_OK;
  SL_CHECK_PTR(out_rows);
  SL_CHECK_PTR(out_cols);

  /* The ranks, drawn on the host by the same code as the CPU library's (csrc/common/sample.c). */
  uint64_t *ranks = (uint64_t *)malloc((size_t)k * sizeof *ranks);
  if (ranks == nullptr)
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for k = %lld samples",
                   (long long)k);
  const sl_status drawn = sl_draw_ranks(__func__, absent, k, seed, ranks);
  if (drawn != SL_OK) {
    free(ranks);
    return drawn;
  }
  sl_scratch dev_ranks, absent_counts, cum;
  cudaError_t err = dev_ranks.alloc((size_t)k * sizeof(uint64_t));
  if (err == cudaSuccess)
    err = cudaMemcpy(dev_ranks.p, ranks, (size_t)k * sizeof(uint64_t), cudaMemcpyHostToDevice);
  free(ranks);
  if (err != cudaSuccess) return sl_cuda_fail(__func__, "copying the ranks to the device", err);
  SL_SCRATCH(absent_counts, int64_t, (int64_t)n_rows + 1);
  SL_SCRATCH(cum, int64_t, (int64_t)n_rows + 1);
  absent_counts_kernel<<<sl_blocks((int64_t)n_rows + 1, 256), 256>>>(
      n_rows, n_cols, row_ptr, absent_counts.as<int64_t>());
  SL_LAUNCHED("absent_counts_kernel");
  const int items = n_rows + 1;
  SL_TRY(sl_cub(__func__, "cub::DeviceScan::InclusiveSum", [&](void *t, size_t &b) {
    return cub::DeviceScan::InclusiveSum(t, b, absent_counts.as<int64_t>(), cum.as<int64_t>(),
                                         items, (cudaStream_t)0);
  }));
  map_ranks_kernel<<<sl_blocks(k, 256), 256>>>(k, n_rows, dev_ranks.as<uint64_t>(),
                                               cum.as<int64_t>(), row_ptr, col_idx, out_rows,
                                               out_cols);
  SL_LAUNCHED("map_ranks_kernel");
  return sl_check_flush(__func__);
}

SL_API sl_status sl_csr_drop_grow(int32_t n_rows, int32_t n_cols, int64_t nnz,
                                  const int32_t *row_ptr, const int32_t *col_idx,
                                  const float *values, int64_t n_drop, const int32_t *drop_idx,
                                  int64_t n_grow, const int32_t *grow_rows,
                                  const int32_t *grow_cols, int32_t flags, int32_t *new_row_ptr,
                                  int32_t *new_col_idx, float *new_values, int32_t *old_index) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_drop_grow(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, values,
                                        n_drop, drop_idx, n_grow, grow_rows, grow_cols, flags,
                                        new_row_ptr, new_col_idx, new_values));
  SL_CUDA_READY();
  SL_TRY(sl_check_pattern_device(__func__, 1, n_rows, n_cols, nnz, row_ptr, col_idx));

  sl_scratch first, grow_keys, sorted, keep, kept_before, grow_ptr, count;
  SL_SCRATCH(first, int32_t, nnz + 1);
  fill_int_kernel<<<sl_blocks(nnz + 1, 256), 256>>>(nnz + 1, INT32_MAX, first.as<int32_t>());
  SL_LAUNCHED("fill_int_kernel");
  SL_TRY(sl_validate_now(
      __func__, explain_drop_grow_input, nnz, n_rows, n_cols, 0,
      [&](unsigned long long *slot) -> sl_status {
        if (n_drop + n_grow == 0) return SL_OK;
        drop_grow_check_kernel<<<sl_blocks(n_drop + n_grow, 256), 256>>>(
            n_drop, drop_idx, nnz, first.as<int32_t>(), n_grow, grow_rows, grow_cols, n_rows,
            n_cols, slot);
        SL_LAUNCHED("drop_grow_check_kernel");
        if (n_drop > 0) {
          drop_repeat_kernel<<<sl_blocks(n_drop, 256), 256>>>(n_drop, drop_idx, nnz,
                                                              first.as<int32_t>(), slot);
          SL_LAUNCHED("drop_repeat_kernel");
        }
        return SL_OK;
      }));
  SL_SCRATCH(grow_keys, uint64_t, n_grow);
  SL_SCRATCH(sorted, uint64_t, n_grow);
  if (n_grow > 0) {
    grow_keys_kernel<<<sl_blocks(n_grow, 256), 256>>>(n_grow, grow_rows, grow_cols,
                                                      grow_keys.as<uint64_t>());
    SL_LAUNCHED("grow_keys_kernel");
    const int ng = (int)n_grow;
    const int end_bit = 32 + sl_bits_for(n_rows);
    SL_TRY(sl_cub(__func__, "cub::DeviceRadixSort::SortKeys", [&](void *t, size_t &b) {
      return cub::DeviceRadixSort::SortKeys(t, b, grow_keys.as<uint64_t>(), sorted.as<uint64_t>(),
                                            ng, 0, end_bit, (cudaStream_t)0);
    }));
    SL_TRY(sl_validate_now(__func__, explain_grow_conflict, 0, 0, 0,
                           (int64_t)(intptr_t)sorted.p,
                           [&](unsigned long long *slot) -> sl_status {
                             grow_conflict_kernel<<<sl_blocks(n_grow, 256), 256>>>(
                                 n_grow, sorted.as<uint64_t>(), row_ptr, col_idx,
                                 first.as<int32_t>(), slot);
                             SL_LAUNCHED("grow_conflict_kernel");
                             return SL_OK;
                           }));
  }
  /* Nothing is written before this point: a rejected call leaves every output untouched. */
  SL_SCRATCH(keep, int32_t, nnz + 1);
  SL_SCRATCH(kept_before, int32_t, nnz + 1);
  SL_SCRATCH(grow_ptr, int32_t, (int64_t)n_rows + 1);
  SL_SCRATCH(count, int32_t, (int64_t)n_rows + 1);
  keep_flags_kernel<<<sl_blocks(nnz + 1, 256), 256>>>(nnz, first.as<int32_t>(),
                                                      keep.as<int32_t>());
  SL_LAUNCHED("keep_flags_kernel");
  const int kept_items = (int)(nnz + 1), row_items = n_rows + 1;
  SL_TRY(sl_cub(__func__, "cub::DeviceScan::ExclusiveSum", [&](void *t, size_t &b) {
    return cub::DeviceScan::ExclusiveSum(t, b, keep.as<int32_t>(), kept_before.as<int32_t>(),
                                         kept_items, (cudaStream_t)0);
  }));
  sl_offsets_from_keys_kernel<<<sl_blocks((int64_t)n_rows + 1, 256), 256>>>(
      n_rows, n_grow, sorted.as<uint64_t>(), grow_ptr.as<int32_t>());
  SL_LAUNCHED("sl_offsets_from_keys_kernel");
  row_counts_kernel<<<sl_blocks((int64_t)n_rows + 1, 256), 256>>>(
      n_rows, row_ptr, kept_before.as<int32_t>(), grow_ptr.as<int32_t>(), count.as<int32_t>());
  SL_LAUNCHED("row_counts_kernel");
  SL_TRY(sl_cub(__func__, "cub::DeviceScan::ExclusiveSum", [&](void *t, size_t &b) {
    return cub::DeviceScan::ExclusiveSum(t, b, count.as<int32_t>(), new_row_ptr, row_items,
                                         (cudaStream_t)0);
  }));
  if (nnz > 0) {
    emit_kept_kernel<<<sl_blocks(nnz, 256), 256>>>(
        nnz, n_rows, row_ptr, col_idx, values, kept_before.as<int32_t>(), first.as<int32_t>(),
        sorted.as<uint64_t>(), grow_ptr.as<int32_t>(), new_row_ptr, new_col_idx, new_values,
        old_index);
    SL_LAUNCHED("emit_kept_kernel");
  }
  if (n_grow > 0) {
    emit_grown_kernel<<<sl_blocks(n_grow, 256), 256>>>(
        n_grow, (flags & SL_REGROW_KEEPS) != 0, sorted.as<uint64_t>(), row_ptr, col_idx, values,
        kept_before.as<int32_t>(), grow_ptr.as<int32_t>(), new_row_ptr, new_col_idx, new_values,
        old_index);
    SL_LAUNCHED("emit_grown_kernel");
  }
  return sl_check_flush(__func__);
}

} /* extern "C" */
