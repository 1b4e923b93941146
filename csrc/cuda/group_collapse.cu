/*
 * group_collapse.cu — sl_group_collapse and sl_group_collapse_bwd on device memory, with the
 * checks and messages of csrc/cpu/group_collapse.c (the collapse also checks that columns are
 * sorted within rows, which the CPU's split by columns relies on). A thread per row of the
 * pattern (rows are short in the layers this serves); the collapse adds into G with float
 * atomics, so the order of each sum varies from run to run (documented in sparselinear.h).
 */
#include "sparse.cuh"
#include "validate.h"

namespace {

__global__ void collapse_kernel(int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *__restrict__ row_ptr,
                                const int32_t *__restrict__ col_idx,
                                const float *__restrict__ values, int32_t size,
                                float *__restrict__ g, unsigned long long *slot) {
  SL_GRID_STRIDE(o, n_out) {
    int64_t k0, k1;
    sl_row_range(row_ptr, o, n_out, nnz, slot, &k0, &k1);
    float *gc = g + (o % size) * n_in;
    for (int64_t k = k0; k < k1; k++) {
      const int32_t col = col_idx[k];
      /* Sorted columns are the CPU library's contract for this call: checked here too. */
      if (k > k0 && col < col_idx[k - 1]) sl_flag(slot, 3, k, col);
      if ((uint32_t)col >= (uint32_t)n_in) {
        sl_flag(slot, 1, k, col);
        continue;
      }
      atomicAdd(gc + col, values[k]);
    }
  }
}

__global__ void collapse_bwd_kernel(int32_t n_in, int32_t n_out, int64_t nnz,
                                    const int32_t *__restrict__ row_ptr,
                                    const int32_t *__restrict__ col_idx,
                                    const float *__restrict__ dg, int32_t size,
                                    float *__restrict__ dw, unsigned long long *slot) {
  SL_GRID_STRIDE(o, n_out) {
    int64_t k0, k1;
    sl_row_range(row_ptr, o, n_out, nnz, slot, &k0, &k1);
    const float *dgc = dg + (o % size) * n_in;
    for (int64_t k = k0; k < k1; k++) {
      const int32_t col = col_idx[k];
      if ((uint32_t)col >= (uint32_t)n_in) {
        sl_flag(slot, 1, k, col);
        dw[k] = 0.0f;
        continue;
      }
      dw[k] = dgc[col];
    }
  }
}

/* The checked call both entry points make: `launch(blocks, slot)` queues the work over the
 * rows (returning the first CUDA error), or an empty pattern's offsets are checked. */
template <typename Launch>
sl_status launch_rows(const char *fn, sl_explain_fn explain, int32_t n_in, int32_t n_out,
                      int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                      Launch launch) {
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(fn, explain, n_out, nnz, n_in, (int64_t)(intptr_t)col_idx, &slot));
  cudaError_t err;
  if (n_out == 0) {
    sl_empty_offsets_kernel<<<1, 1>>>(row_ptr, nnz, slot);
    err = cudaGetLastError();
  } else {
    err = launch(sl_blocks(n_out, 256), slot);
  }
  if (err != cudaSuccess) return sl_cuda_fail(fn, "a group-collapse kernel launch", err);
  return sl_check_end(fn);
}

} /* namespace */

SL_API sl_status sl_group_collapse(int32_t n_in, int32_t n_out, int64_t nnz,
                                   const int32_t *row_ptr, const int32_t *col_idx,
                                   const float *values, int32_t size, float *g) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_group_collapse(__func__, n_in, n_out, nnz, row_ptr, col_idx, values, size, g));
  SL_CUDA_READY();
  /* Zeroed before the rows are launched, and also when there are none (n_out = 0): g is the
   * sum over the rows, all zeros for an empty layer, as the CPU library writes it. */
  const size_t bytes = (size_t)size * (size_t)n_in * sizeof(float);
  const cudaError_t zeroed = bytes > 0 ? cudaMemsetAsync(g, 0, bytes, 0) : cudaSuccess;
  if (zeroed != cudaSuccess) return sl_cuda_fail(__func__, "zeroing g", zeroed);
  return launch_rows(__func__, sl_explain_sorted_columns, n_in, n_out, nnz, row_ptr, col_idx,
                     [&](unsigned blocks, unsigned long long *slot) {
                       collapse_kernel<<<blocks, 256>>>(n_in, n_out, nnz, row_ptr, col_idx,
                                                        values, size, g, slot);
                       return cudaGetLastError();
                     });
}

SL_API sl_status sl_group_collapse_bwd(int32_t n_in, int32_t n_out, int64_t nnz,
                                       const int32_t *row_ptr, const int32_t *col_idx,
                                       const float *dg, int32_t size, float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_group_collapse_bwd(__func__, n_in, n_out, nnz, row_ptr, col_idx, dg,
                                             size, dw));
  SL_CUDA_READY();
  return launch_rows(__func__, sl_explain_columns, n_in, n_out, nnz, row_ptr, col_idx,
                     [&](unsigned blocks, unsigned long long *slot) {
                       collapse_bwd_kernel<<<blocks, 256>>>(n_in, n_out, nnz, row_ptr, col_idx,
                                                            dg, size, dw, slot);
                       return cudaGetLastError();
                     });
}
