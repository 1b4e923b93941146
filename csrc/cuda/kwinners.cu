/*
 * kwinners.cu — K-Winners activation sparsity on the GPU (semantics of csrc/cpu/kwinners.c:
 * per row, the k units with the largest boosted value keep their raw value, ties broken by the
 * lower index; duty-cycle update; the backward passes the winners' gradient).
 *
 * One block per row runs an exact radix select on 64-bit keys that order like the boosted
 * values (computed in double, NaN above +inf as torch.topk ranks it, -0 as +0): eight 8-bit
 * passes over the row find the k-th largest key T and how many keys exceed it; a final pass in index order (block-wide
 * scans) takes every key > T and the first keys == T, so the winner list comes out ascending.
 * Win counts are integers (atomic adds are exact), so the duty cycle is deterministic.
 */
#include <math.h>

#include <cub/block/block_scan.cuh>

#include "common.cuh"
#include "validate.h"

namespace {

constexpr int THREADS = 256;

__device__ __forceinline__ uint64_t order_key(double v) {
  if (isnan(v)) return ~0ull; /* above +inf's key 0xFFF0... */
  if (v == 0.0) v = 0.0;      /* -0 and +0 tie */
  const uint64_t u = (uint64_t)__double_as_longlong(v);
  return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

/* One block: the lowest duty cycle (NaN skipped), then each unit's boost factor
 * exp(boost (dc_min - dc_j)) <= 1, as the CPU library: the factor exp(boost (k/n - dc_min))
 * common to every unit cannot change the ranking and overflows from boost ~ 710. */
__global__ void __launch_bounds__(THREADS)
    boost_factor_kernel(int32_t n, double boost, const float *__restrict__ duty,
                        double *__restrict__ factor) {
  __shared__ double s_min[THREADS];
  double m = INFINITY;
  for (int32_t j = threadIdx.x; j < n; j += THREADS)
    if ((double)duty[j] < m) m = (double)duty[j];
  s_min[threadIdx.x] = m;
  __syncthreads();
  for (int half = THREADS / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half && s_min[threadIdx.x + half] < s_min[threadIdx.x])
      s_min[threadIdx.x] = s_min[threadIdx.x + half];
    __syncthreads();
  }
  const double dc_min = s_min[0];
  for (int32_t j = threadIdx.x; j < n; j += THREADS)
    factor[j] = exp(boost * (dc_min - (double)duty[j]));
}

__device__ __forceinline__ uint64_t unit_key(const float *xr, const double *factor, int64_t j) {
  double v = (double)xr[j];
  if (factor != nullptr) v *= factor[j];
  return order_key(v);
}

__global__ void __launch_bounds__(THREADS)
    kwinners_fwd_kernel(int64_t rows, int32_t n, int32_t k, const float *__restrict__ x,
                        const double *__restrict__ factor, float *__restrict__ y,
                        int32_t *__restrict__ winners, unsigned long long *__restrict__ counts) {
  typedef cub::BlockScan<int, THREADS> Scan;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int hist[256];
  __shared__ uint64_t s_prefix;
  __shared__ int64_t s_need;
  __shared__ int s_chunk_eq, s_chunk_win;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    int32_t *wr = winners != nullptr ? winners + r * k : nullptr;
    if (k == n) {
      for (int32_t j = threadIdx.x; j < n; j += THREADS) {
        yr[j] = xr[j];
        if (wr != nullptr) wr[j] = j;
        if (counts != nullptr) atomicAdd(counts + j, 1ull);
      }
      continue;
    }
    /* Radix select of the k-th largest key, most significant byte first. */
    uint64_t prefix = 0, mask = 0;
    int64_t need = k;
    for (int pass = 0; pass < 8; pass++) {
      const int shift = 56 - 8 * pass;
      for (int b = threadIdx.x; b < 256; b += THREADS) hist[b] = 0;
      __syncthreads();
      for (int32_t j = threadIdx.x; j < n; j += THREADS) {
        const uint64_t key = unit_key(xr, factor, j);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        int64_t above = 0;
        int b = 255;
        for (; b > 0; b--) {
          if (above + hist[b] >= need) break;
          above += hist[b];
        }
        s_need = need - above;
        s_prefix = prefix | ((uint64_t)b << shift);
      }
      __syncthreads();
      need = s_need;
      prefix = s_prefix;
      mask |= 255ull << shift;
      __syncthreads(); /* hist and the shared scalars are rewritten next pass */
    }
    const uint64_t threshold = prefix;
    const int64_t ties = need; /* keys == threshold that still win, lowest indices first */
    int64_t eq_before = 0, win_before = 0;
    for (int32_t base = 0; base < n; base += THREADS) {
      const int32_t j = base + threadIdx.x;
      int is_eq = 0, is_gt = 0;
      if (j < n) {
        const uint64_t key = unit_key(xr, factor, j);
        is_gt = key > threshold;
        is_eq = key == threshold;
      }
      int eq_rank, eq_total;
      Scan(scan_storage).ExclusiveSum(is_eq, eq_rank, eq_total);
      __syncthreads();
      const int win = is_gt || (is_eq && eq_before + eq_rank < ties);
      int win_rank, win_total;
      Scan(scan_storage).ExclusiveSum(win, win_rank, win_total);
      __syncthreads();
      if (j < n) {
        yr[j] = win ? xr[j] : 0.0f;
        if (win) {
          if (wr != nullptr) wr[win_before + win_rank] = j;
          if (counts != nullptr) atomicAdd(counts + j, 1ull);
        }
      }
      if (threadIdx.x == 0) {
        s_chunk_eq = eq_total;
        s_chunk_win = win_total;
      }
      __syncthreads();
      eq_before += s_chunk_eq;
      win_before += s_chunk_win;
      __syncthreads();
    }
  }
}

__global__ void duty_update_kernel(int32_t n, int64_t rows, double alpha, int updating,
                                   const unsigned long long *__restrict__ counts,
                                   float *__restrict__ duty, int32_t *__restrict__ win_counts) {
  SL_GRID_STRIDE(j, n) {
    const unsigned long long c = counts[j];
    if (win_counts != nullptr) win_counts[j] = (int32_t)c;
    if (updating)
      duty[j] = (float)((1.0 - alpha) * (double)duty[j] + alpha * ((double)c / (double)rows));
  }
}

__global__ void kwinners_bwd_kernel(int64_t n_winners, int32_t n, int32_t k,
                                    const int32_t *__restrict__ winners,
                                    const float *__restrict__ dy, float *__restrict__ dx,
                                    unsigned long long *slot) {
  SL_GRID_STRIDE(i, n_winners) {
    const int32_t j = winners[i];
    if ((uint32_t)j >= (uint32_t)n) {
      sl_flag(slot, 1, i, j);
      continue;
    }
    const int64_t at = (i / k) * n + j;
    dx[at] = dy[at];
  }
}

sl_status explain_winners(const char *fn, const sl_bad_entry *kinds, const int64_t *p) {
  if (!kinds[1].bad) return SL_OK;
  return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "winners[%lld] = %d is outside [0, %lld)",
                 (long long)kinds[1].position, kinds[1].value, (long long)p[0]);
}

} /* namespace */

extern "C" {

SL_API sl_status sl_kwinners_fwd(int64_t rows, int32_t n, int32_t k, float boost_strength,
                                 float duty_alpha, const float *x, float *duty_cycle, float *y,
                                 int32_t *winners, int32_t *win_counts) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_kwinners_fwd(__func__, rows, n, k, boost_strength, duty_alpha, x,
                                       duty_cycle, y, win_counts));
  const int boosting = boost_strength > 0.0f;
  const int updating = duty_alpha > 0.0f && rows > 0;
  if (rows == 0 && win_counts == nullptr) return SL_OK;
  SL_CUDA_READY();
  if (rows == 0) {
    SL_CUDA(cudaMemsetAsync(win_counts, 0, (size_t)n * sizeof(int32_t), 0));
    return SL_OK;
  }
  const int counting = updating || win_counts != nullptr;
  sl_scratch factor, counts;
  if (boosting) {
    SL_SCRATCH(factor, double, n);
    boost_factor_kernel<<<1, THREADS>>>(n, (double)boost_strength, duty_cycle,
                                        factor.as<double>());
    SL_LAUNCHED("boost_factor_kernel");
  }
  if (counting) {
    SL_SCRATCH(counts, unsigned long long, n);
    SL_CUDA(cudaMemsetAsync(counts.p, 0, (size_t)n * sizeof(unsigned long long), 0));
  }
  const unsigned blocks = (unsigned)(rows < (1 << 20) ? rows : (1 << 20));
  kwinners_fwd_kernel<<<blocks, THREADS>>>(rows, n, k, x, factor.as<double>(), y, winners,
                                           counts.as<unsigned long long>());
  SL_LAUNCHED("kwinners_fwd_kernel");
  if (counting) {
    duty_update_kernel<<<sl_blocks(n, 256), 256>>>(n, rows, (double)duty_alpha, updating,
                                                   counts.as<unsigned long long>(), duty_cycle,
                                                   win_counts);
    SL_LAUNCHED("duty_update_kernel");
  }
  return SL_OK;
}

SL_API sl_status sl_kwinners_bwd(int64_t rows, int32_t n, int32_t k, const int32_t *winners,
                                 const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_kwinners_bwd(__func__, rows, n, k, winners, dy, dx));
  if (rows == 0) return SL_OK;
  const int64_t total = rows * n;
  const int64_t n_winners = rows * k;
  SL_CUDA_READY();
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(__func__, explain_winners, n, 0, 0, 0, &slot));
  SL_CUDA(cudaMemsetAsync(dx, 0, (size_t)total * sizeof(float), 0));
  kwinners_bwd_kernel<<<sl_blocks(n_winners, 256), 256>>>(n_winners, n, k, winners, dy, dx, slot);
  SL_LAUNCHED("kwinners_bwd_kernel");
  return sl_check_end(__func__);
}

} /* extern "C" */
