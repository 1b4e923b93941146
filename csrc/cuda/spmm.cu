/*
 * spmm.cu — the sparse-layer kernels on the GPU: forward SpMM (CSR), input gradient (the CSC
 * view, the same kernel with values read through csc_to_csr), weight gradient (SDDMM over the
 * pattern) and bias gradient.
 *
 * Activations are [batch, features] row-major. Two layouts of the work, chosen by batch size:
 *
 *  - batch <= 8, "nonzero split" (the SpMV family, cf. cuSPARSE CSR_ALG2's row split): a
 *    sub-warp of S lanes (S from the average row length) owns one output row; its lanes stride
 *    over the row's nonzeros, each gathering the input feature's batch vector (1, 2, 4 or 8
 *    floats, one vector load from a feature-major copy of the input), and the sub-warp reduces
 *    with shuffles. For batch 1 with long rows the (column, value) stream itself is read with
 *    16-byte vector loads (the row's unaligned head and tail scalar), as Sputnik does, and
 *    when two copies of the input vector fit in a multiprocessor's shared memory, persistent
 *    blocks stage it there first and gather from it.
 *
 *  - batch > 8, "column split" (Sputnik's 1-D tiling): a group of LANES lanes owns one output
 *    row and LANES * 4 batch columns; the group loads LANES (column, value) pairs at once,
 *    broadcasts them with shuffles, and each lane gathers a float4 of the feature-major input
 *    row for each nonzero (coalesced across the group); the block's outputs go out through
 *    shared memory, row-contiguous per batch column.
 *
 * Both gradients at batch 1 (sl_spmm_bwd) take one pass over the CSR view instead
 * (bwd_csr1_kernel: dx summed per block in shared memory).
 *
 * The feature-major copy (features x ld, ld = batch padded to the vector width, zero padding)
 * is made with a tiled shared-memory transpose. Outputs are written into [batch, out].
 * Indices are checked in the loops: a bad entry is skipped and recorded in the call's check slot
 * (see sparselinear.h, "device"); outputs are then unspecified but nothing is out of bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reduce.cuh"
#include "sparse.cuh"
#include "validate.h"

namespace {

/* ------------------------------------------------------------------ transpose ---- */

/* out[i, j] = in[j, i] for j < rows_in (i < cols_in); out is [cols_in, ld_out] with the
 * columns rows_in .. ld_out - 1 zeroed. in is [rows_in, cols_in] row-major. */
__global__ void transpose_pad_kernel(int64_t rows_in, int64_t cols_in, int64_t ld_out,
                                     const float *__restrict__ in, float *__restrict__ out) {
  __shared__ float tile[32][33];
  const int64_t c0 = (int64_t)blockIdx.x * 32, r0 = (int64_t)blockIdx.y * 32;
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int64_t r = r0 + k, c = c0 + threadIdx.x;
    tile[k][threadIdx.x] = (r < rows_in && c < cols_in) ? in[r * cols_in + c] : 0.0f;
  }
  __syncthreads();
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int64_t c = c0 + k, r = r0 + threadIdx.x;
    if (c < cols_in && r < ld_out) out[c * ld_out + r] = tile[threadIdx.x][k];
  }
}

sl_status to_feature_major(const char *fn, int64_t batch, int64_t features, int64_t ld,
                           const float *in, float *out) {
  if (features == 0 || ld == 0) return SL_OK; /* nothing to move (a grid cannot be empty) */
  dim3 block(32, 8);
  dim3 grid((unsigned)((features + 31) / 32), (unsigned)((ld + 31) / 32));
  if (grid.y > 65535)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "batch %lld is too large for the transpose",
                   (long long)batch);
  transpose_pad_kernel<<<grid, block>>>(batch, features, ld, in, out);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of transpose_pad_kernel", err);
  return SL_OK;
}

/* ------------------------------------------------------- nonzero split (batch <= 8) ---- */

template <int BV>
struct fvec {
  float v[BV];
};

/* Loads BV consecutive floats (16-, 8- or 4-byte aligned as ld is BV). */
template <int BV>
__device__ __forceinline__ fvec<BV> load_vec(const float *p) {
  fvec<BV> r;
  if constexpr (BV == 8) {
    const float4 a = __ldg(reinterpret_cast<const float4 *>(p));
    const float4 b = __ldg(reinterpret_cast<const float4 *>(p) + 1);
    r.v[0] = a.x; r.v[1] = a.y; r.v[2] = a.z; r.v[3] = a.w;
    r.v[4] = b.x; r.v[5] = b.y; r.v[6] = b.z; r.v[7] = b.w;
  } else if constexpr (BV == 4) {
    const float4 a = __ldg(reinterpret_cast<const float4 *>(p));
    r.v[0] = a.x; r.v[1] = a.y; r.v[2] = a.z; r.v[3] = a.w;
  } else if constexpr (BV == 2) {
    const float2 a = __ldg(reinterpret_cast<const float2 *>(p));
    r.v[0] = a.x; r.v[1] = a.y;
  } else {
    r.v[0] = __ldg(p);
  }
  return r;
}

/* What one gather-FMA call reads: a compressed pattern over n_rows rows whose indices point
 * into n_idx input features, values direct (perm null) or through perm. */
struct gather_args {
  int32_t n_rows, n_idx;
  int64_t nnz;
  const int32_t *ptr, *idx, *perm;
  const float *vals, *bias;
  const float *in; /* feature-major [n_idx, ld] (for batch 1 the input itself) */
  int32_t ld, batch;
  float *out; /* [batch, n_rows] */
  unsigned long long *slot;
};

/* One entry: checks, returns false when it must be skipped. */
__device__ __forceinline__ bool load_entry(const gather_args &g, int64_t k, int32_t *c,
                                           float *v) {
  const int32_t col = g.idx[k];
  bool ok = (uint32_t)col < (uint32_t)g.n_idx;
  if (!ok) sl_flag(g.slot, 1, k, col);
  if (g.perm != nullptr) {
    const int32_t p = g.perm[k];
    const bool pok = (uint64_t)(uint32_t)p < (uint64_t)g.nnz;
    if (!pok) sl_flag(g.slot, 3, k, p);
    ok = ok && pok;
    *v = ok ? g.vals[p] : 0.0f;
  } else {
    *v = g.vals[k];
  }
  *c = col;
  return ok;
}

template <int S, int BV>
__global__ void gather_nzsplit_kernel(gather_args g) {
  const int lane = threadIdx.x % S;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / S;
  if (row >= g.n_rows) return; /* whole sub-warps leave together */
  const unsigned mask = S == 32 ? 0xffffffffu : (((1u << S) - 1u) << (threadIdx.x & 31 & ~(S - 1)));
  int64_t k0, k1;
  sl_row_range(g.ptr, row, g.n_rows, g.nnz, g.slot, &k0, &k1);
  float acc[BV];
#pragma unroll
  for (int b = 0; b < BV; b++) acc[b] = 0.0f;
#pragma unroll 2
  for (int64_t k = k0 + lane; k < k1; k += S) {
    int32_t c;
    float v;
    if (!load_entry(g, k, &c, &v)) continue;
    const fvec<BV> xv = load_vec<BV>(g.in + (int64_t)c * g.ld);
#pragma unroll
    for (int b = 0; b < BV; b++) acc[b] = fmaf(v, xv.v[b], acc[b]);
  }
#pragma unroll
  for (int b = 0; b < BV; b++) {
#pragma unroll
    for (int o = S / 2; o > 0; o >>= 1) acc[b] += __shfl_xor_sync(mask, acc[b], o, S);
  }
  if (lane == 0) {
    const float bias = g.bias != nullptr ? g.bias[row] : 0.0f;
#pragma unroll
    for (int b = 0; b < BV; b++)
      if (b < g.batch) g.out[(int64_t)b * g.n_rows + row] = acc[b] + bias;
  }
}

/* Multiprocessors of the current device (cached), and the shared memory a block may opt into. */
static sl_status device_limits(const char *fn, int *sms, int *smem_optin) {
  static int cached_sms[64], cached_smem[64];
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaGetDevice", err);
  if (dev >= 0 && dev < 64 && cached_sms[dev] > 0) {
    *sms = cached_sms[dev];
    *smem_optin = cached_smem[dev];
    return SL_OK;
  }
  err = cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaDeviceGetAttribute", err);
  if (dev >= 0 && dev < 64) {
    cached_sms[dev] = *sms;
    cached_smem[dev] = *smem_optin;
  }
  return SL_OK;
}

/*
 * Lets `kernel` launch with `bytes` of dynamic shared memory on the current device, calling
 * cudaFuncSetAttribute only when that is more than it was already allowed there: the call costs
 * host time, and the batch-1 kernels that need it run once per training step. `allowed` is the
 * call site's own per-device record (one per kernel instantiation).
 */
template <typename Kernel>
static cudaError_t allow_dynamic_smem(Kernel kernel, int allowed[64], size_t bytes) {
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  if (dev >= 0 && dev < 64 && allowed[dev] >= (int)bytes) return cudaSuccess;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
  if (err == cudaSuccess && dev >= 0 && dev < 64) allowed[dev] = (int)bytes;
  return err;
}

/*
 * Batch 1, full warps, direct values: (column, value) pairs read with 16-byte loads. The
 * pattern arrays must be 16-byte aligned (checked by the caller). SMEM: persistent blocks
 * (a grid-stride loop over rows) first copy the whole input vector into shared memory, so the
 * random gathers hit shared memory rather than L1 (on an H100: 14.2 vs 16.4 us per call for
 * 20000 x 20000 at 99 %, where the gathers account for ~7 us).
 */
template <bool SMEM>
__global__ void __launch_bounds__(1024) spmv_vec4_kernel(gather_args g) {
  extern __shared__ float4 staged[];
  const float *in = g.in;
  if (SMEM) {
    const int32_t n4 = g.n_idx / 4;
    const float4 *in4 = reinterpret_cast<const float4 *>(g.in);
#pragma unroll 4
    for (int32_t i = threadIdx.x; i < n4; i += blockDim.x) staged[i] = __ldg(in4 + i);
    float *tail = reinterpret_cast<float *>(staged);
    for (int32_t i = n4 * 4 + threadIdx.x; i < g.n_idx; i += blockDim.x) tail[i] = g.in[i];
    __syncthreads();
    in = reinterpret_cast<const float *>(staged);
  }
  const int lane = threadIdx.x & 31;
  /* Without SMEM one pass: a stride of n_rows ends the loop (and cannot overflow). */
  const int64_t stride = SMEM ? (int64_t)gridDim.x * blockDim.x / 32 : g.n_rows;
  for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < g.n_rows;
       row += stride) { /* the warp shares the row */
    int64_t k0, k1;
    sl_row_range(g.ptr, row, g.n_rows, g.nnz, g.slot, &k0, &k1);
    float acc = 0.0f;
    const int64_t head_end = (k0 + 3) & ~(int64_t)3;
    const int64_t body_begin = head_end < k1 ? head_end : k1;
    const int64_t body_end = body_begin + ((k1 - body_begin) & ~(int64_t)3);
    /* Head (< 4 entries up to an aligned position) and tail (< 4 after the last quad). */
    for (int64_t k = (lane < 4 ? k0 + lane : k1); k < body_begin && lane < 4; k += 4) {
      int32_t c;
      float v;
      if (load_entry(g, k, &c, &v)) acc = fmaf(v, SMEM ? in[c] : __ldg(in + c), acc);
    }
    {
      const int64_t k = body_end + lane;
      if (lane < 4 && k < k1) {
        int32_t c;
        float v;
        if (load_entry(g, k, &c, &v)) acc = fmaf(v, SMEM ? in[c] : __ldg(in + c), acc);
      }
    }
    const int4 *idx4 = reinterpret_cast<const int4 *>(g.idx);
    const float4 *val4 = reinterpret_cast<const float4 *>(g.vals);
    for (int64_t q = body_begin / 4 + lane; q < body_end / 4; q += 32) {
      const int4 c = __ldg(idx4 + q);
      const float4 v = __ldg(val4 + q);
      const int32_t cs[4] = {c.x, c.y, c.z, c.w};
      const float vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int t = 0; t < 4; t++) {
        if ((uint32_t)cs[t] < (uint32_t)g.n_idx)
          acc = fmaf(vs[t], SMEM ? in[cs[t]] : __ldg(in + cs[t]), acc);
        else
          sl_flag(g.slot, 1, q * 4 + t, cs[t]);
      }
    }
    acc = sl_warp_sum(acc);
    if (lane == 0) g.out[row] = acc + (g.bias != nullptr ? g.bias[row] : 0.0f);
  }
}

/* Launches spmv_vec4_kernel, staging the input in shared memory when two blocks of 1024 fit
 * on a multiprocessor. */
static sl_status launch_spmv_vec4(const char *fn, const gather_args &g) {
  int sms = 0, smem_optin = 0;
  SL_TRY(device_limits(fn, &sms, &smem_optin));
  const size_t bytes = (size_t)g.n_idx * sizeof(float);
  if ((uintptr_t)g.in % 16 == 0 && 2 * bytes <= (size_t)smem_optin) {
    static int allowed[64];
    cudaError_t err = allow_dynamic_smem(spmv_vec4_kernel<true>, allowed, bytes);
    if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaFuncSetAttribute", err);
    const int64_t needed = ((int64_t)g.n_rows * 32 + 1023) / 1024;
    const int blocks = (int)(needed < 2 * sms ? needed : 2 * sms);
    spmv_vec4_kernel<true><<<blocks, 1024, bytes>>>(g);
  } else {
    spmv_vec4_kernel<false><<<sl_blocks_each((int64_t)g.n_rows * 32, 256), 256>>>(g);
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of spmv_vec4_kernel", err);
  return SL_OK;
}

/* -------------------------------------------------------- column split (batch > 8) ---- */

template <int LANES>
__global__ void __launch_bounds__(256) gather_colsplit_kernel(gather_args g) {
  /* The block's outputs (ROWS rows x COLS batch columns) are staged in shared memory and
   * written row-contiguous per batch column: a lane's own 4 results are 4 columns of y, each
   * n_rows apart, which written directly would touch a 32-byte sector per float. */
  constexpr int ROWS = 256 / LANES, COLS = LANES * 4;
  __shared__ float tile[COLS][ROWS + 1];
  const int lane = threadIdx.x % LANES, local_row = threadIdx.x / LANES;
  const int64_t row0 = (int64_t)blockIdx.x * ROWS, row = row0 + local_row;
  const unsigned mask =
      LANES == 32 ? 0xffffffffu : (((1u << LANES) - 1u) << (threadIdx.x & 31 & ~(LANES - 1)));
  const int64_t col0 = (int64_t)blockIdx.y * COLS;
  const int64_t col = col0 + lane * 4; /* first batch column */
  const bool active = col < g.ld;
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (row < g.n_rows) { /* the whole group shares the row */
    int64_t k0, k1;
    sl_row_range(g.ptr, row, g.n_rows, g.nnz, g.slot, &k0, &k1);
    const float bias = g.bias != nullptr ? g.bias[row] : 0.0f;
    acc = make_float4(bias, bias, bias, bias);
    for (int64_t base = k0; base < k1; base += LANES) {
      int32_t c = -1;
      float v = 0.0f;
      if (base + lane < k1) {
        if (!load_entry(g, base + lane, &c, &v)) c = -1;
      }
      const int count = (int)(k1 - base < LANES ? k1 - base : LANES);
      for (int j = 0; j < count; j++) {
        const int32_t cj = __shfl_sync(mask, c, j, LANES);
        const float vj = __shfl_sync(mask, v, j, LANES);
        if (cj < 0 || !active) continue;
        const float4 x = __ldg(reinterpret_cast<const float4 *>(g.in + (int64_t)cj * g.ld + col));
        acc.x = fmaf(vj, x.x, acc.x);
        acc.y = fmaf(vj, x.y, acc.y);
        acc.z = fmaf(vj, x.z, acc.z);
        acc.w = fmaf(vj, x.w, acc.w);
      }
    }
  }
  tile[lane * 4 + 0][local_row] = acc.x;
  tile[lane * 4 + 1][local_row] = acc.y;
  tile[lane * 4 + 2][local_row] = acc.z;
  tile[lane * 4 + 3][local_row] = acc.w;
  __syncthreads();
  for (int e = threadIdx.x; e < ROWS * COLS; e += blockDim.x) {
    const int c = e / ROWS, r = e % ROWS;
    if (row0 + r < g.n_rows && col0 + c < g.batch) g.out[(col0 + c) * g.n_rows + row0 + r] = tile[c][r];
  }
}

int pow2_at_least(int64_t v, int lo, int hi) {
  int p = lo;
  while (p < hi && p < v) p <<= 1;
  return p;
}

/* Empty rows pattern (n_rows == 0) still needs its offsets checked. */
sl_status check_empty(const char *fn, const gather_args &g) {
  sl_empty_offsets_kernel<<<1, 1>>>(g.ptr, g.nnz, g.slot);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_empty_offsets_kernel", err);
  return SL_OK;
}

/*
 * out[batch, n_rows] = init(r) + sum_k val(k) * in[:, idx[k]] for every row r of the pattern;
 * `in` is [batch, n_idx] row-major (transposed here when batch > 1).
 */
sl_status gather_matmul(const char *fn, gather_args g, const float *in_rows) {
  if (g.n_rows == 0) return check_empty(fn, g);
  const int64_t avg = g.nnz / g.n_rows;
  cudaError_t err;
  sl_scratch transposed;
  if (g.batch == 1) {
    g.in = in_rows;
    g.ld = 1;
    const bool aligned = ((uintptr_t)g.idx % 16 == 0) && ((uintptr_t)g.vals % 16 == 0);
    if (g.perm == nullptr && aligned && avg >= 64) {
      return launch_spmv_vec4(fn, g);
    }
  } else {
    const int64_t ld = g.batch <= 2 ? 2 : g.batch <= 4 ? 4 : (g.batch + 7) / 8 * 8;
    if (sl_mul_size(ld, g.n_idx) < 0)
      return sl_fail(SL_E_OVERFLOW, fn, "batch * features overflows int64");
    SL_SCRATCH(transposed, float, ld * g.n_idx);
    SL_TRY(to_feature_major(fn, g.batch, g.n_idx, ld, in_rows, transposed.as<float>()));
    g.in = transposed.as<float>();
    g.ld = (int32_t)ld;
  }
  if (g.batch > 8) {
    const int lanes = pow2_at_least((g.ld + 3) / 4, 4, 32);
    const int64_t tiles = (g.ld + lanes * 4 - 1) / (lanes * 4);
    dim3 grid(sl_blocks_each((int64_t)g.n_rows * lanes, 256), (unsigned)tiles);
    if (tiles > 65535) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "batch %d is too large", g.batch);
    switch (lanes) {
      case 4: gather_colsplit_kernel<4><<<grid, 256>>>(g); break;
      case 8: gather_colsplit_kernel<8><<<grid, 256>>>(g); break;
      case 16: gather_colsplit_kernel<16><<<grid, 256>>>(g); break;
      default: gather_colsplit_kernel<32><<<grid, 256>>>(g); break;
    }
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of gather_colsplit_kernel", err);
    return SL_OK;
  }
  /* Sub-warp size: about two nonzeros per lane, between 2 and 32 lanes. */
  const int s = pow2_at_least(avg / 2, 2, 32);
  const unsigned blocks = sl_blocks_each((int64_t)g.n_rows * s, 256);
#define SL_NZ_CASE(S)                                                                      \
  case S:                                                                                  \
    if (g.ld == 1) gather_nzsplit_kernel<S, 1><<<blocks, 256>>>(g);                        \
    else if (g.ld == 2) gather_nzsplit_kernel<S, 2><<<blocks, 256>>>(g);                   \
    else if (g.ld == 4) gather_nzsplit_kernel<S, 4><<<blocks, 256>>>(g);                   \
    else gather_nzsplit_kernel<S, 8><<<blocks, 256>>>(g);                                  \
    break;
  switch (s) {
    SL_NZ_CASE(2)
    SL_NZ_CASE(4)
    SL_NZ_CASE(8)
    SL_NZ_CASE(16)
    SL_NZ_CASE(32)
  }
#undef SL_NZ_CASE
  err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of gather_nzsplit_kernel", err);
  return SL_OK;
}

/* ------------------------------------------------------------------------ SDDMM ---- */

struct sddmm_args {
  int32_t n_rows, n_in;
  int64_t nnz;
  const int32_t *ptr, *idx;
  const float *x;  /* feature-major [n_in, ld] (batch 1: x itself) */
  const float *dy; /* feature-major [n_rows, ld] (batch 1: dy itself) */
  int32_t ld;
  float *dw;
  unsigned long long *slot;
};

/* batch <= 8: a sub-warp per row, a lane per nonzero; dw[k] = <dyT[r], xT[c]>. */
template <int S, int BV>
__global__ void sddmm_small_kernel(sddmm_args g) {
  const int lane = threadIdx.x % S;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / S;
  if (row >= g.n_rows) return;
  int64_t k0, k1;
  sl_row_range(g.ptr, row, g.n_rows, g.nnz, g.slot, &k0, &k1);
  const fvec<BV> gy = load_vec<BV>(g.dy + row * g.ld);
  for (int64_t k = k0 + lane; k < k1; k += S) {
    const int32_t c = g.idx[k];
    if ((uint32_t)c >= (uint32_t)g.n_in) {
      sl_flag(g.slot, 1, k, c);
      g.dw[k] = 0.0f;
      continue;
    }
    const fvec<BV> xv = load_vec<BV>(g.x + (int64_t)c * g.ld);
    float s = 0.0f;
#pragma unroll
    for (int b = 0; b < BV; b++) s = fmaf(gy.v[b], xv.v[b], s);
    g.dw[k] = s;
  }
}

/* batch > 8: a group of LANES lanes per nonzero of the row, float4 per lane, group reduction. */
template <int LANES>
__global__ void sddmm_wide_kernel(sddmm_args g) {
  const int lane = threadIdx.x % LANES;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / LANES;
  if (row >= g.n_rows) return;
  const unsigned mask =
      LANES == 32 ? 0xffffffffu : (((1u << LANES) - 1u) << (threadIdx.x & 31 & ~(LANES - 1)));
  int64_t k0, k1;
  sl_row_range(g.ptr, row, g.n_rows, g.nnz, g.slot, &k0, &k1);
  const float *gy = g.dy + row * g.ld;
  for (int64_t k = k0; k < k1; k++) {
    const int32_t c = g.idx[k];
    if ((uint32_t)c >= (uint32_t)g.n_in) {
      if (lane == 0) {
        sl_flag(g.slot, 1, k, c);
        g.dw[k] = 0.0f;
      }
      continue;
    }
    const float *xr = g.x + (int64_t)c * g.ld;
    float s = 0.0f;
    for (int64_t col = (int64_t)lane * 4; col < g.ld; col += LANES * 4) {
      const float4 a = __ldg(reinterpret_cast<const float4 *>(gy + col));
      const float4 b = __ldg(reinterpret_cast<const float4 *>(xr + col));
      s = fmaf(a.x, b.x, fmaf(a.y, b.y, fmaf(a.z, b.z, fmaf(a.w, b.w, s))));
    }
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) s += __shfl_xor_sync(mask, s, o, LANES);
    if (lane == 0) g.dw[k] = s;
  }
}

/* --------------------------------------------- both gradients at batch 1 (CSR) ---- */

/*
 * Batch 1: both gradients in one pass over the CSR pattern, each (column, value) pair read once
 * and in order. Persistent blocks (one per multiprocessor) keep a private dx in shared memory:
 * dw[k] = dy[r] * x[c] is written in place, and values[k] * dy[r] is added to the block's dx[c]
 * with a shared-memory atomic; each block then writes its dx to partial[block], and
 * sum_partials_kernel adds the blocks in order. The CSC alternative gathers values through
 * csc_to_csr, a random read per connection; measured on an H200 this pass is faster. The
 * order of the shared-memory additions varies, so dx's last bits may differ between runs.
 */
/* Entry k of a row whose gradient is g: dw[k] and the block's dx (a bad column is flagged). */
__device__ __forceinline__ void bwd1_entry(int64_t k, float g, int32_t n_in,
                                           const int32_t *__restrict__ idx,
                                           const float *__restrict__ vals,
                                           const float *__restrict__ x, float *dx_part,
                                           float *__restrict__ dw, unsigned long long *slot) {
  const int32_t c = idx[k];
  if ((uint32_t)c >= (uint32_t)n_in) {
    sl_flag(slot, 1, k, c);
    dw[k] = 0.0f;
    return;
  }
  dw[k] = g * __ldg(x + c);
  atomicAdd(dx_part + c, vals[k] * g);
}

template <int S>
__global__ void __launch_bounds__(1024) bwd_csr1_kernel(int32_t n_rows, int32_t n_in, int64_t nnz,
                                                        const int32_t *__restrict__ ptr,
                                                        const int32_t *__restrict__ idx,
                                                        const float *__restrict__ vals,
                                                        const float *__restrict__ x,
                                                        const float *__restrict__ dy,
                                                        float *__restrict__ partial,
                                                        float *__restrict__ dw,
                                                        unsigned long long *slot) {
  extern __shared__ float dx_part[];
  for (int32_t i = threadIdx.x; i < n_in; i += blockDim.x) dx_part[i] = 0.0f;
  __syncthreads();
  const int lane = threadIdx.x % S;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x / S;
  for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / S; row < n_rows;
       row += stride) {
    int64_t k0, k1;
    sl_row_range(ptr, row, n_rows, nnz, slot, &k0, &k1);
    const float g = dy[row];
#pragma unroll 4
    for (int64_t k = k0 + lane; k < k1; k += S)
      bwd1_entry(k, g, n_in, idx, vals, x, dx_part, dw, slot);
  }
  __syncthreads();
  float *out = partial + (int64_t)blockIdx.x * n_in;
  for (int32_t i = threadIdx.x; i < n_in; i += blockDim.x) out[i] = dx_part[i];
}

/*
 * Batch 1 with rows of 64 entries and more: the same pass with the (column, value) stream read
 * by 16-byte loads, as spmv_vec4_kernel does (a full warp per row; the row's unaligned head and
 * tail, fewer than 4 entries each, one entry per lane), and dw written as float4. col_idx,
 * values and dw must be 16-byte aligned (checked by the caller). On an H100 at 20000 x 20000,
 * 99 %: 42.8 vs 56.5 us per call pipelined, against bwd_csr1_kernel<32>.
 */
__global__ void __launch_bounds__(1024)
    bwd_csr1_vec4_kernel(int32_t n_rows, int32_t n_in, int64_t nnz,
                         const int32_t *__restrict__ ptr, const int32_t *__restrict__ idx,
                         const float *__restrict__ vals, const float *__restrict__ x,
                         const float *__restrict__ dy, float *__restrict__ partial,
                         float *__restrict__ dw, unsigned long long *slot) {
  extern __shared__ float dx_part[];
  for (int32_t i = threadIdx.x; i < n_in; i += blockDim.x) dx_part[i] = 0.0f;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x / 32;
  const int4 *idx4 = reinterpret_cast<const int4 *>(idx);
  const float4 *val4 = reinterpret_cast<const float4 *>(vals);
  float4 *dw4 = reinterpret_cast<float4 *>(dw);
  for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < n_rows;
       row += stride) { /* the warp shares the row */
    int64_t k0, k1;
    sl_row_range(ptr, row, n_rows, nnz, slot, &k0, &k1);
    const float g = dy[row];
    const int64_t head_end = (k0 + 3) & ~(int64_t)3;
    const int64_t body_begin = head_end < k1 ? head_end : k1;
    const int64_t body_end = body_begin + ((k1 - body_begin) & ~(int64_t)3);
    /* Head (< 4 entries up to an aligned position) on lanes 0-3, tail (< 4) on lanes 4-7. */
    if (lane < 4 && k0 + lane < body_begin)
      bwd1_entry(k0 + lane, g, n_in, idx, vals, x, dx_part, dw, slot);
    else if (lane >= 4 && lane < 8 && body_end + lane - 4 < k1)
      bwd1_entry(body_end + lane - 4, g, n_in, idx, vals, x, dx_part, dw, slot);
    for (int64_t q = body_begin / 4 + lane; q < body_end / 4; q += 32) {
      const int4 c = __ldg(idx4 + q);
      const float4 v = __ldg(val4 + q);
      const int32_t cs[4] = {c.x, c.y, c.z, c.w};
      const float vs[4] = {v.x, v.y, v.z, v.w};
      float out[4];
#pragma unroll
      for (int t = 0; t < 4; t++) {
        if ((uint32_t)cs[t] < (uint32_t)n_in) {
          out[t] = g * __ldg(x + cs[t]);
          atomicAdd(dx_part + cs[t], vs[t] * g);
        } else {
          sl_flag(slot, 1, q * 4 + t, cs[t]);
          out[t] = 0.0f;
        }
      }
      dw4[q] = make_float4(out[0], out[1], out[2], out[3]);
    }
  }
  __syncthreads();
  float *out = partial + (int64_t)blockIdx.x * n_in;
  for (int32_t i = threadIdx.x; i < n_in; i += blockDim.x) out[i] = dx_part[i];
}

/*
 * out[i] = sum over p of partial[p, i] in a fixed order. A block of 32 x PARTIAL_WARPS threads
 * owns 32 consecutive outputs; warp w sums the parts p = w, w + PARTIAL_WARPS, ... (coalesced
 * 128-byte rows), and the warps' sums are added in order. One thread per output (a loop over
 * ~130 parts) left too few loads in flight: 20000 outputs are only ~5 warps per multiprocessor.
 */
constexpr int PARTIAL_WARPS = 8;
__global__ void __launch_bounds__(32 * PARTIAL_WARPS)
    sum_partials_kernel(int32_t parts, int32_t n, const float *__restrict__ partial,
                        float *__restrict__ out) {
  __shared__ float sums[PARTIAL_WARPS][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t i = (int64_t)blockIdx.x * 32 + lane;
  float s = 0.0f;
  if (i < n)
    for (int32_t p = warp; p < parts; p += PARTIAL_WARPS) s += partial[(int64_t)p * n + i];
  sums[warp][lane] = s;
  __syncthreads();
  if (warp == 0 && i < n) {
    float t = sums[0][lane];
#pragma unroll
    for (int w = 1; w < PARTIAL_WARPS; w++) t += sums[w][lane];
    out[i] = t;
  }
}

/* Widest layer input (floats) whose dx fits in one block's shared memory (Hopper: 227 KB). */
constexpr int32_t BWD1_MAX_IN = 48 * 1024;

/* SL_CUDA_BATCH1_BWD=csc keeps batch 1 on the CSC gather + SDDMM (for benchmarking). */
static bool batch1_csr_bwd() {
  const char *v = getenv("SL_CUDA_BATCH1_BWD");
  return v == nullptr || strcmp(v, "csc") != 0;
}

/* Launches bwd_csr1_vec4_kernel; opts it into its shared memory. */
static sl_status launch_bwd_csr1_vec4(const char *fn, int blocks, size_t smem, int32_t n_out,
                                      int32_t n_in, int64_t nnz, const int32_t *row_ptr,
                                      const int32_t *col_idx, const float *values,
                                      const float *x, const float *dy, float *partial,
                                      float *dw, unsigned long long *slot) {
  static int allowed[64];
  cudaError_t err = allow_dynamic_smem(bwd_csr1_vec4_kernel, allowed, smem);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaFuncSetAttribute", err);
  bwd_csr1_vec4_kernel<<<blocks, 1024, smem>>>(n_out, n_in, nnz, row_ptr, col_idx, values, x,
                                               dy, partial, dw, slot);
  err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of bwd_csr1_vec4_kernel", err);
  return SL_OK;
}

/* Launches bwd_csr1_kernel<S> and the partial sums; opts the kernel into its shared memory. */
template <int S>
static sl_status launch_bwd_csr1(const char *fn, int blocks, size_t smem, int32_t n_out,
                                 int32_t n_in, int64_t nnz, const int32_t *row_ptr,
                                 const int32_t *col_idx, const float *values, const float *x,
                                 const float *dy, float *partial, float *dw,
                                 unsigned long long *slot) {
  static int allowed[64]; /* one per instantiation of this template */
  cudaError_t err = allow_dynamic_smem(bwd_csr1_kernel<S>, allowed, smem);
  if (err != cudaSuccess) return sl_cuda_fail(fn, "cudaFuncSetAttribute", err);
  bwd_csr1_kernel<S><<<blocks, 1024, smem>>>(n_out, n_in, nnz, row_ptr, col_idx, values, x, dy,
                                             partial, dw, slot);
  err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of bwd_csr1_kernel", err);
  return SL_OK;
}

/* ------------------------------------------------------------------ explanations ---- */

sl_status explain_bwd_input(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  /* p: n_in, nnz, n_out */
  SL_TRY(sl_explain_offsets(fn, "col_ptr", kinds, p[0], p[1]));
  const bool row_bad = kinds[1].bad, perm_bad = kinds[3].bad;
  if (row_bad && (!perm_bad || kinds[1].position <= kinds[3].position))
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "row_idx[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[1].position, kinds[1].value, (long long)p[2]);
  if (perm_bad)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "csc_to_csr[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[3].position, kinds[3].value, (long long)p[1]);
  return SL_OK;
}

/* ------------------------------------------- input gradient from the CSR pattern ---- */

/* dx[b, c] += values[k] * dy[b, r] for every entry k of row r (dx zeroed first): a sub-warp
 * per row, float atomics (so the summation order, and the last bits, vary from run to run). */
template <int S>
__global__ void scatter_csr_kernel(int32_t n_rows, int32_t n_in, int64_t nnz, int32_t batch,
                                   const int32_t *__restrict__ ptr,
                                   const int32_t *__restrict__ idx,
                                   const float *__restrict__ vals, const float *__restrict__ dy,
                                   float *__restrict__ dx, unsigned long long *slot) {
  const int lane = threadIdx.x % S;
  const int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / S;
  if (row >= n_rows) return;
  int64_t k0, k1;
  sl_row_range(ptr, row, n_rows, nnz, slot, &k0, &k1);
  for (int64_t k = k0 + lane; k < k1; k += S) {
    const int32_t c = idx[k];
    if ((uint32_t)c >= (uint32_t)n_in) {
      sl_flag(slot, 1, k, c);
      continue;
    }
    /* The CPU library needs non-decreasing columns for batch > 1; keep the same contract. */
    if (batch > 1 && k > k0 && c < idx[k - 1]) sl_flag(slot, 3, k, c);
    const float v = vals[k];
    for (int32_t b = 0; b < batch; b++)
      atomicAdd(dx + (int64_t)b * n_in + c, v * dy[(int64_t)b * n_rows + row]);
  }
}

/* params: n_out, nnz, n_in, col_idx (device address, read for the order message) */
/*
 * A failed inner entry point's message re-reported under the outer one, fn (as the CPU library
 * words it: no inner function name). `inner` is the inner name with its ": " separator.
 */
sl_status reported_as(const char *fn, sl_status st, const char *inner) {
  const char *msg = sl_last_error();
  const size_t skip = strlen(inner);
  char copy[512];
  snprintf(copy, sizeof copy, "%s", strncmp(msg, inner, skip) == 0 ? msg + skip : msg);
  return sl_fail(st, fn, "%s", copy);
}

/* Largest n for the fm entry points' transposes: to_feature_major's grid has one row of blocks
 * per 32 of the feature-major side. */
constexpr int64_t FM_MAX_FEATURES = 65535LL * 32;

sl_status check_fm_features(const char *fn, int32_t n_in, int32_t n_out) {
  if (n_in > FM_MAX_FEATURES || n_out > FM_MAX_FEATURES)
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "n_in %d and n_out %d must be at most %lld for the feature-major form on "
                   "CUDA (use the batch-major sl_spmm_fwd / sl_spmm_bwd)",
                   n_in, n_out, (long long)FM_MAX_FEATURES);
  return SL_OK;
}

/* After gradients that succeeded (st), the bias gradient db from batch-major dy, when asked. */
sl_status with_bias_grad(const char *fn, sl_status st, int32_t batch, int32_t n_out,
                         const float *dy, float *db) {
  if (st != SL_OK || db == nullptr) return st;
  st = sl_bias_grad(batch, n_out, dy, db);
  return st == SL_OK ? SL_OK : reported_as(fn, st, "sl_bias_grad: ");
}

} /* namespace */

sl_status sl_explain_columns(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  SL_TRY(sl_explain_offsets(fn, "row_ptr", kinds, p[0], p[1]));
  if (kinds[1].bad)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[1].position, kinds[1].value, (long long)p[2]);
  return SL_OK;
}

sl_status sl_explain_sorted_columns(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  SL_TRY(sl_explain_offsets(fn, "row_ptr", kinds, p[0], p[1]));
  const bool range_bad = kinds[1].bad, order_bad = kinds[3].bad;
  if (range_bad && (!order_bad || kinds[1].position <= kinds[3].position))
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %lld)",
                   (long long)kinds[1].position, kinds[1].value, (long long)p[2]);
  if (order_bad) {
    const long long k = (long long)kinds[3].position;
    int32_t prev = 0;
    SL_TRY(sl_read_value(fn, (const int32_t *)(intptr_t)p[3] + (k - 1), &prev));
    return sl_fail(SL_E_INVALID_ARGUMENT, fn,
                   "col_idx[%lld] = %d is less than col_idx[%lld] = %d (columns must be sorted "
                   "within a row)",
                   k, kinds[3].value, k - 1, prev);
  }
  return SL_OK;
}


/* ------------------------------------------------------------------ entry points ---- */

extern "C" {

SL_API sl_status sl_spmm_fwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                             const int32_t *row_ptr, const int32_t *col_idx,
                             const float *values, const float *bias, const float *x,
                             float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values, x,
                                   y, 0));
  if (batch == 0) return SL_OK; /* nothing to compute (the pattern is not read) */
  SL_CUDA_READY();
  gather_args g;
  g.n_rows = n_out;
  g.n_idx = n_in;
  g.nnz = nnz;
  g.ptr = row_ptr;
  g.idx = col_idx;
  g.perm = nullptr;
  g.vals = values;
  g.bias = bias;
  g.batch = batch;
  g.out = y;
  SL_TRY(sl_check_begin(__func__, sl_explain_columns, n_out, nnz, n_in, 0, &g.slot));
  SL_TRY(gather_matmul(__func__, g, x));
  return sl_check_end(__func__);
}

SL_API sl_status sl_spmm_bwd_input(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                   const int32_t *col_ptr, const int32_t *row_idx,
                                   const int32_t *csc_to_csr, const float *values,
                                   const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_input(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx,
                                         csc_to_csr, values, dy, dx));
  if (batch == 0) return SL_OK; /* nothing to compute (the pattern is not read) */
  SL_CUDA_READY();
  /* The CSC view is a pattern over n_in rows whose indices point into n_out: the forward
   * kernel with the roles of in and out swapped and values read through csc_to_csr. */
  gather_args g;
  g.n_rows = n_in;
  g.n_idx = n_out;
  g.nnz = nnz;
  g.ptr = col_ptr;
  g.idx = row_idx;
  g.perm = csc_to_csr;
  g.vals = values;
  g.bias = nullptr;
  g.batch = batch;
  g.out = dx;
  SL_TRY(sl_check_begin(__func__, explain_bwd_input, n_in, nnz, n_out, 0, &g.slot));
  SL_TRY(gather_matmul(__func__, g, dy));
  return sl_check_end(__func__);
}

SL_API sl_status sl_spmm_bwd_input_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                       const int32_t *row_ptr, const int32_t *col_idx,
                                       const float *values, const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_input_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx,
                                             values, dy, dx));
  if (batch == 0 && !(n_in == 0 && nnz > 0)) return SL_OK;
  SL_CUDA_READY();
  if (n_in == 0 && nnz > 0) { /* every entry is out of range */
    int32_t first = 0;
    SL_TRY(sl_read_value(__func__, col_idx, &first));
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "col_idx[0] = %d is outside [0, 0)", first);
  }
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(__func__, sl_explain_sorted_columns, n_out, nnz, n_in,
                        (int64_t)(intptr_t)col_idx, &slot));
  SL_CUDA(cudaMemsetAsync(dx, 0, (size_t)batch * (size_t)n_in * sizeof(float), 0));
  if (n_out == 0) {
    gather_args e;
    e.ptr = row_ptr;
    e.nnz = nnz;
    e.slot = slot;
    SL_TRY(check_empty(__func__, e));
    return sl_check_end(__func__);
  }
  const int s = pow2_at_least(nnz / n_out / 2, 2, 32);
  const unsigned blocks = sl_blocks_each((int64_t)n_out * s, 256);
#define SL_SCATTER_CASE(S)                                                                 \
  case S:                                                                                  \
    scatter_csr_kernel<S><<<blocks, 256>>>(n_out, n_in, nnz, batch, row_ptr, col_idx, values, \
                                           dy, dx, slot);                                  \
    break;
  switch (s) {
    SL_SCATTER_CASE(2)
    SL_SCATTER_CASE(4)
    SL_SCATTER_CASE(8)
    SL_SCATTER_CASE(16)
    SL_SCATTER_CASE(32)
  }
#undef SL_SCATTER_CASE
  SL_LAUNCHED("scatter_csr_kernel");
  return sl_check_end(__func__);
}

SL_API sl_status sl_sddmm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                          const int32_t *row_ptr, const int32_t *col_idx, const float *x,
                          const float *dy, float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sddmm(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw));
  SL_CUDA_READY();
  sddmm_args g;
  g.n_rows = n_out;
  g.n_in = n_in;
  g.nnz = nnz;
  g.ptr = row_ptr;
  g.idx = col_idx;
  g.dw = dw;
  SL_TRY(sl_check_begin(__func__, sl_explain_columns, n_out, nnz, n_in, 0, &g.slot));
  if (n_out == 0) {
    gather_args e;
    e.ptr = row_ptr;
    e.nnz = nnz;
    e.slot = g.slot;
    SL_TRY(check_empty(__func__, e));
    return sl_check_end(__func__);
  }
  /* batch 0: an empty sum, still with every index checked (ld 1 over a zero vector). */
  sl_scratch xs, dys;
  const int64_t ld = batch <= 1 ? 1 : batch <= 2 ? 2 : batch <= 4 ? 4 : (batch + 7) / 8 * 8;
  if (batch == 1) {
    g.x = x;
    g.dy = dy;
  } else {
    SL_SCRATCH(xs, float, ld * (n_in > 0 ? n_in : 1));
    SL_SCRATCH(dys, float, ld * n_out);
    if (batch == 0) {
      SL_CUDA(cudaMemsetAsync(xs.p, 0, (size_t)(ld * (n_in > 0 ? n_in : 1)) * sizeof(float), 0));
      SL_CUDA(cudaMemsetAsync(dys.p, 0, (size_t)(ld * n_out) * sizeof(float), 0));
    } else {
      SL_TRY(to_feature_major(__func__, batch, n_in, ld, x, xs.as<float>()));
      SL_TRY(to_feature_major(__func__, batch, n_out, ld, dy, dys.as<float>()));
    }
    g.x = xs.as<float>();
    g.dy = dys.as<float>();
  }
  g.ld = (int32_t)ld;
  const int64_t avg = nnz / n_out;
  cudaError_t err;
  if (batch > 8) {
    const int lanes = pow2_at_least((ld + 3) / 4, 4, 32);
    const unsigned blocks = sl_blocks_each((int64_t)n_out * lanes, 256);
    switch (lanes) {
      case 4: sddmm_wide_kernel<4><<<blocks, 256>>>(g); break;
      case 8: sddmm_wide_kernel<8><<<blocks, 256>>>(g); break;
      case 16: sddmm_wide_kernel<16><<<blocks, 256>>>(g); break;
      default: sddmm_wide_kernel<32><<<blocks, 256>>>(g); break;
    }
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(__func__, "the launch of sddmm_wide_kernel", err);
  } else {
    const int s = pow2_at_least(avg, 2, 32);
    const unsigned blocks = sl_blocks_each((int64_t)n_out * s, 256);
#define SL_SD_CASE(S)                                                                      \
  case S:                                                                                  \
    if (ld == 1) sddmm_small_kernel<S, 1><<<blocks, 256>>>(g);                             \
    else if (ld == 2) sddmm_small_kernel<S, 2><<<blocks, 256>>>(g);                        \
    else if (ld == 4) sddmm_small_kernel<S, 4><<<blocks, 256>>>(g);                        \
    else sddmm_small_kernel<S, 8><<<blocks, 256>>>(g);                                     \
    break;
    switch (s) {
      SL_SD_CASE(2)
      SL_SD_CASE(4)
      SL_SD_CASE(8)
      SL_SD_CASE(16)
      SL_SD_CASE(32)
    }
#undef SL_SD_CASE
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(__func__, "the launch of sddmm_small_kernel", err);
  }
  return sl_check_end(__func__);
}

/* Both gradients. Batch 1 (when dx fits in shared memory): one pass over the CSR view,
 * bwd_csr1_vec4_kernel for rows of 64 entries and more, else bwd_csr1_kernel. Otherwise the CSC gather for dx, then the CSR SDDMM for dw, queued back to
 * back; a fused pass over the CSC view (dw written through csc_to_csr) and a CSR pass with
 * global atomics for dx were measured slower on an H200 (bench/RESULTS.md). */
SL_API sl_status sl_spmm_bwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                             const int32_t *row_ptr, const int32_t *col_idx,
                             const int32_t *col_ptr, const int32_t *row_idx,
                             const int32_t *csc_to_csr, const float *values, const float *x,
                             const float *dy, float *dx, float *dw, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr,
                                   row_idx, csc_to_csr, values, x, dy, dx, dw, 0));
  if (batch == 1 && n_in > 0 && n_in <= BWD1_MAX_IN && n_out > 0 && batch1_csr_bwd()) {
    SL_CUDA_READY();
    int sms = 0, smem_optin = 0;
    SL_TRY(device_limits(__func__, &sms, &smem_optin));
    const size_t smem = (size_t)n_in * sizeof(float);
    if (smem <= (size_t)smem_optin) {
      unsigned long long *slot = nullptr;
      SL_TRY(sl_check_begin(__func__, sl_explain_columns, n_out, nnz, n_in, 0, &slot));
      /* No more blocks than one pass over the rows needs: a small layer adds fewer partials. */
      const int s = pow2_at_least(nnz / n_out / 2, 2, 32);
      const int64_t passes = ((int64_t)n_out * s + 1023) / 1024;
      const int blocks = (int)(passes < sms ? passes : sms);
      sl_scratch partial;
      SL_SCRATCH(partial, float, (int64_t)blocks * n_in);
      float *part = partial.as<float>();
      const bool aligned = (uintptr_t)col_idx % 16 == 0 && (uintptr_t)values % 16 == 0 &&
                           (uintptr_t)dw % 16 == 0;
      const auto launch = s == 32 && aligned ? launch_bwd_csr1_vec4
                          : s == 2           ? launch_bwd_csr1<2>
                          : s == 4           ? launch_bwd_csr1<4>
                          : s == 8           ? launch_bwd_csr1<8>
                          : s == 16          ? launch_bwd_csr1<16>
                                             : launch_bwd_csr1<32>;
      SL_TRY(launch(__func__, blocks, smem, n_out, n_in, nnz, row_ptr, col_idx, values, x, dy,
                    part, dw, slot));
      sum_partials_kernel<<<(unsigned)((n_in + 31) / 32), 32 * PARTIAL_WARPS>>>(blocks, n_in,
                                                                                part, dx);
      SL_LAUNCHED("sum_partials_kernel");
      return with_bias_grad(__func__, sl_check_end(__func__), batch, n_out, dy, db);
    }
  }
  sl_status st = sl_spmm_bwd_input(batch, n_in, n_out, nnz, col_ptr, row_idx, csc_to_csr, values,
                                   dy, dx);
  if (st != SL_OK) return reported_as(__func__, st, "sl_spmm_bwd_input: ");
  st = sl_sddmm(batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw);
  if (st != SL_OK) return reported_as(__func__, st, "sl_sddmm: ");
  return with_bias_grad(__func__, SL_OK, batch, n_out, dy, db);
}

/* Both gradients from the CSR pattern: the CSR input gradient (float atomics), then the SDDMM.
 * The TS layer takes sl_spmm_bwd on CUDA; this entry point is here for the ABI's parity. */
SL_API sl_status sl_spmm_bwd_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                 const int32_t *row_ptr, const int32_t *col_idx,
                                 const float *values, const float *x, const float *dy, float *dx,
                                 float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx,
                                       values, x, dy, dx, dw));
  sl_status st =
      sl_spmm_bwd_input_csr(batch, n_in, n_out, nnz, row_ptr, col_idx, values, dy, dx);
  if (st != SL_OK) return reported_as(__func__, st, "sl_spmm_bwd_input_csr: ");
  st = sl_sddmm(batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw);
  if (st != SL_OK) return reported_as(__func__, st, "sl_sddmm: ");
  return SL_OK;
}

/*
 * The feature-major forms: the batch-major calls between transposes into and out of scratch
 * (the kernels transpose to their own layout anyway; not the fast path on the GPU). At batch 1
 * both layouts are the same array.
 */
SL_API sl_status sl_spmm_fwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *row_ptr, const int32_t *col_idx,
                                const float *values, const float *bias, const float *xT,
                                float *yT) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values,
                                   xT, yT, 1));
  sl_status st;
  if (batch <= 1 || n_out == 0) {
    st = sl_spmm_fwd(batch, n_in, n_out, nnz, row_ptr, col_idx, values, bias, xT, yT);
    return st == SL_OK ? SL_OK : reported_as(__func__, st, "sl_spmm_fwd: ");
  }
  SL_TRY(check_fm_features(__func__, n_in, n_out));
  SL_CUDA_READY();
  sl_scratch xs, ys;
  SL_SCRATCH(xs, float, (int64_t)batch * (n_in > 0 ? n_in : 1));
  SL_SCRATCH(ys, float, (int64_t)batch * n_out);
  SL_TRY(to_feature_major(__func__, n_in, batch, n_in, xT, xs.as<float>()));
  st = sl_spmm_fwd(batch, n_in, n_out, nnz, row_ptr, col_idx, values, bias, xs.as<float>(),
                   ys.as<float>());
  if (st != SL_OK) return reported_as(__func__, st, "sl_spmm_fwd: ");
  return to_feature_major(__func__, batch, n_out, batch, ys.as<float>(), yT);
}

SL_API sl_status sl_spmm_bwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *row_ptr, const int32_t *col_idx,
                                const int32_t *col_ptr, const int32_t *row_idx,
                                const int32_t *csc_to_csr, const float *values,
                                const float *xT, const float *dyT, float *dxT, float *dw,
                                float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr,
                                   row_idx, csc_to_csr, values, xT, dyT, dxT, dw, 1));
  sl_status st;
  if (batch <= 1 || n_out == 0) {
    st = sl_spmm_bwd(batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr, row_idx, csc_to_csr,
                     values, xT, dyT, dxT, dw, db);
    return st == SL_OK ? SL_OK : reported_as(__func__, st, "sl_spmm_bwd: ");
  }
  SL_TRY(check_fm_features(__func__, n_in, n_out));
  SL_CUDA_READY();
  sl_scratch xs, dys, dxs;
  /* (n_in 0: no x or dx to move, but db still needs dy batch-major) */
  const int64_t x_size = (int64_t)batch * (n_in > 0 ? n_in : 1);
  SL_SCRATCH(xs, float, x_size);
  SL_SCRATCH(dys, float, (int64_t)batch * n_out);
  SL_SCRATCH(dxs, float, x_size);
  SL_TRY(to_feature_major(__func__, n_in, batch, n_in, xT, xs.as<float>()));
  SL_TRY(to_feature_major(__func__, n_out, batch, n_out, dyT, dys.as<float>()));
  st = sl_spmm_bwd(batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr, row_idx, csc_to_csr,
                   values, xs.as<float>(), dys.as<float>(), dxs.as<float>(), dw, db);
  if (st != SL_OK) return reported_as(__func__, st, "sl_spmm_bwd: ");
  return to_feature_major(__func__, batch, n_in, batch, dxs.as<float>(), dxT);
}

SL_API sl_status sl_bias_grad(int32_t batch, int32_t n_out, const float *dy, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_bias_grad(__func__, batch, n_out, dy, db));
  if (n_out == 0) return SL_OK;
  SL_CUDA_READY();
  if (batch == 0) return sl_fill_device(__func__, n_out, 0.0f, db);
  if (batch == 1) { /* a sum of one row is that row */
    SL_CUDA(cudaMemcpyAsync(db, dy, (size_t)n_out * sizeof(float), cudaMemcpyDeviceToDevice, 0));
    return SL_OK;
  }
  sl_term_plain term{dy, batch, n_out};
  return sl_reduce_middle(__func__, 1, batch, n_out, 1.0f, term, db);
}

} /* extern "C" */
