/*
 * sparse.cuh — pattern checks shared by the sparse-format, sparse-kernel and dynamic-sparsity
 * files of the CUDA library, and a helper for CUB's two-phase (size query, run) calls. Not part
 * of the ABI.
 *
 * Offsets (row_ptr / col_ptr) are checked inside the kernels that read them: each row checks its
 * own pair, and the first bad position is recorded with the CPU library's priority (ptr[0] != 0
 * first, then the first decrease, then ptr[n] != nnz) so that the message is the same:
 *   kind 0: position p and value ptr[p] (p = n + 1 encodes "ptr[n] != nnz", value ptr[n]);
 *   kind 2: for a decrease at p, the value ptr[p - 1].
 * Rows whose offsets are bad are read through a clamped range, never out of bounds.
 */
#ifndef SL_CUDA_SPARSE_CUH
#define SL_CUDA_SPARSE_CUH

#include "common.cuh"

/* Checks row r's offsets (recording problems) and returns a safe range [*k0, *k1). */
__device__ __forceinline__ void sl_row_range(const int32_t *__restrict__ ptr, int64_t r,
                                             int64_t n, int64_t nnz, unsigned long long *slot,
                                             int64_t *k0, int64_t *k1) {
  const int32_t a = ptr[r], b = ptr[r + 1];
  if (r == 0 && a != 0) sl_flag(slot, 0, 0, a);
  if (b < a) {
    sl_flag(slot, 0, r + 1, b);
    sl_flag(slot, 2, r + 1, a);
  }
  if (r == n - 1 && (int64_t)b != nnz) sl_flag(slot, 0, n + 1, b);
  int64_t lo = a < 0 ? 0 : (a > nnz ? nnz : a);
  int64_t hi = b < lo ? lo : (b > nnz ? nnz : b);
  *k0 = lo;
  *k1 = hi;
}

/* Checks the offsets of an empty pattern (n == 0): ptr[0] must be 0 and nnz. */
__global__ void sl_empty_offsets_kernel(const int32_t *ptr, int64_t nnz,
                                        unsigned long long *slot);

/* ptr[r] = first position of the sorted keys whose high 32 bits (the row) are >= r, for r in
 * [0, n]: the offsets of row-major (row << 32 | col) keys. */
__global__ void sl_offsets_from_keys_kernel(int64_t n, int64_t count, const uint64_t *keys,
                                            int32_t *ptr);

/*
 * The CPU library's sl_check_offsets message for a recorded offsets problem (kinds 0 and 2),
 * or SL_OK when none was recorded.
 */
sl_status sl_explain_offsets(const char *fn, const char *name, const sl_bad_entry *kinds,
                             int64_t n, int64_t nnz);

/*
 * Full pattern check on the device (offsets, columns in range, sorted and unique within rows),
 * synchronous. style 0: sl_csr_validate's messages; 1: the dynamic-sparsity kernels' messages
 * (csrc/cpu/topk.c check_pattern). row_ptr / col_idx are device pointers.
 */
sl_status sl_check_pattern_device(const char *fn, int style, int32_t n_rows, int32_t n_cols,
                                  int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx);

/*
 * The CPU library's message for a CSR pattern whose columns must be in range: offsets (kinds 0
 * and 2), then a column outside [0, n_in) (kind 1). p: n_out, nnz, n_in.
 */
sl_status sl_explain_columns(const char *fn, const sl_bad_entry *kinds, const int64_t *p);

/*
 * The same for a pattern whose columns must also be sorted within rows: offsets, then the first
 * of a column outside [0, n_in) (kind 1) and a column less than its predecessor (kind 3).
 * p: n_out, nnz, n_in, col_idx (the device pointer, to read the predecessor for the message).
 */
sl_status sl_explain_sorted_columns(const char *fn, const sl_bad_entry *kinds, const int64_t *p);

/* Number of low bits that hold every value in [0, n) (at least 1). */
static inline int sl_bits_for(int64_t n) {
  int b = 1;
  while (b < 63 && (n - 1) >> b != 0) b++;
  return b;
}

/*
 * Runs a CUB device-wide algorithm: call(temp, bytes) is invoked once with temp == nullptr to
 * size the scratch and once to run. Scratch is stream-ordered, freed after the run is queued.
 */
template <typename Call>
sl_status sl_cub(const char *fn, const char *what, Call call) {
  size_t bytes = 0;
  cudaError_t err = call(nullptr, bytes);
  if (err != cudaSuccess) return sl_cuda_fail(fn, what, err);
  sl_scratch temp;
  err = temp.alloc(bytes);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "CUB scratch allocation", err);
  err = call(temp.p, bytes);
  if (err != cudaSuccess) return sl_cuda_fail(fn, what, err);
  return SL_OK;
}

/* Device -> host copy of one value (synchronising). */
template <typename T>
sl_status sl_read_value(const char *fn, const T *device_ptr, T *out) {
  cudaError_t err = cudaMemcpy(out, device_ptr, sizeof(T), cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "a device-to-host copy", err);
  return SL_OK;
}

/* Validation that must finish before any output is written: begins a checked call, launches
 * through `launch(slot)`, waits and reports with `explain` (whatever the deferred mode). */
template <typename Launch>
sl_status sl_validate_now(const char *fn, sl_explain_fn explain, int64_t p0, int64_t p1,
                          int64_t p2, int64_t p3, Launch launch) {
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(fn, explain, p0, p1, p2, p3, &slot));
  SL_TRY(launch(slot));
  return sl_check_flush(fn);
}

#endif /* SL_CUDA_SPARSE_CUH */
