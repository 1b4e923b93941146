/*
 * common.cuh — shared machinery of the CUDA library: error reporting for CUDA calls and
 * launches, device readiness, stream-ordered scratch memory, the device-side index-check slots
 * and small device helpers. Not part of the ABI.
 *
 * Everything runs on the legacy default stream (stream 0) of the current device, so kernels,
 * copies and stream-ordered allocations are ordered without explicit synchronisation.
 */
#ifndef SL_CUDA_COMMON_CUH
#define SL_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "internal.h"
}

/* ------------------------------------------------------------- errors ---- */

/* Records "<fn>: <what> failed: <CUDA error>" and returns SL_E_DEVICE. */
sl_status sl_cuda_fail(const char *fn, const char *what, cudaError_t err);

/* Checks a CUDA runtime call inside an entry point (RAII scratch is released on return). */
#define SL_CUDA(call)                                                            \
  do {                                                                           \
    cudaError_t sl_cuda_err_ = (call);                                           \
    if (sl_cuda_err_ != cudaSuccess) return sl_cuda_fail(__func__, #call, sl_cuda_err_); \
  } while (0)

/* Checks the launch just made (configuration errors and earlier asynchronous faults). */
#define SL_LAUNCHED(kernel_name)                                                 \
  do {                                                                           \
    cudaError_t sl_cuda_err_ = cudaGetLastError();                               \
    if (sl_cuda_err_ != cudaSuccess)                                             \
      return sl_cuda_fail(__func__, "the launch of " kernel_name, sl_cuda_err_); \
  } while (0)

/* Propagates a non-OK status. */
#define SL_TRY(expr)                                                             \
  do {                                                                           \
    sl_status sl_try_st_ = (expr);                                               \
    if (sl_try_st_ != SL_OK) return sl_try_st_;                                  \
  } while (0)

/*
 * Makes sure a CUDA device is usable on this thread (first call per device: checks the device
 * count and configures the memory pool). SL_E_DEVICE naming fn when there is no device.
 */
sl_status sl_cuda_ready(const char *fn);
#define SL_CUDA_READY() SL_TRY(sl_cuda_ready(__func__))

/* --------------------------------------------------------- scratch memory ---- */

/* Stream-ordered allocation on stream 0 (cudaMallocAsync when the device has memory pools,
 * else cudaMalloc). bytes == 0 gives a null pointer. */
cudaError_t sl_dev_malloc(void **p, size_t bytes);
/* Stream-ordered free of memory from sl_dev_malloc (null is a no-op). */
cudaError_t sl_dev_free(void *p);

/* Scratch owned by one call, freed (stream-ordered) when it goes out of scope. */
struct sl_scratch {
  void *p = nullptr;
  sl_scratch() = default;
  sl_scratch(const sl_scratch &) = delete;
  sl_scratch &operator=(const sl_scratch &) = delete;
  ~sl_scratch() {
    if (p != nullptr) sl_dev_free(p);
  }
  cudaError_t alloc(size_t bytes) {
    if (p != nullptr) {
      sl_dev_free(p);
      p = nullptr;
    }
    return sl_dev_malloc(&p, bytes > 0 ? bytes : 1);
  }
  template <typename T>
  T *as() const {
    return static_cast<T *>(p);
  }
};

/* Allocates a scratch buffer of `count` elements of T or returns SL_E_DEVICE / OUT_OF_MEMORY. */
#define SL_SCRATCH(buf, T, count)                                                \
  do {                                                                           \
    cudaError_t sl_alloc_err_ = (buf).alloc((size_t)(count) * sizeof(T));        \
    if (sl_alloc_err_ == cudaErrorMemoryAllocation)                              \
      return sl_fail(SL_E_OUT_OF_MEMORY, __func__,                               \
                     "cannot allocate %lld bytes of device scratch for " #buf,   \
                     (long long)((size_t)(count) * sizeof(T)));                  \
    if (sl_alloc_err_ != cudaSuccess)                                            \
      return sl_cuda_fail(__func__, "the scratch allocation of " #buf, sl_alloc_err_); \
  } while (0)

/* ------------------------------------------------------ device index checks ---- */

/*
 * A check slot is SL_CHECK_KINDS device words, each a "first bad entry" record: the position
 * in the high 32 bits and the offending value in the low 32 bits, combined with atomicMin so
 * that the lowest position wins (and its value with it). ~0 means "nothing bad".
 */
#define SL_CHECK_KINDS 4
#define SL_CHECK_CLEAN (~0ull)
/* Words per slot: the kinds, then the device address of the device's "dirty" word (mapped
 * host memory set by sl_flag, so that a clean synchronisation reads no slot back; 0 when the
 * device could not map host memory and the slots are always read back). */
#define SL_CHECK_STRIDE (SL_CHECK_KINDS + 1)

/* Decoded record of one kind. */
struct sl_bad_entry {
  int bad;          /* 1 when something was recorded */
  int64_t position; /* saturates at 2^32 - 2 */
  int32_t value;
};

static inline sl_bad_entry sl_decode(unsigned long long word) {
  sl_bad_entry e;
  e.bad = word != SL_CHECK_CLEAN;
  e.position = (int64_t)(word >> 32);
  e.value = (int32_t)(uint32_t)(word & 0xFFFFFFFFull);
  return e;
}

/*
 * Turns a dirty slot into an error: calls sl_fail(code, fn, ...) with the message of the first
 * bad entry and returns the code (SL_OK when the slot is clean). params: what the entry point
 * recorded at launch (bounds such as n_in, nnz).
 */
typedef sl_status (*sl_explain_fn)(const char *fn, const sl_bad_entry *kinds,
                                   const int64_t *params);

/*
 * Starts a checked call: returns in *slot the device slot its kernels record into. May first
 * report a deferred error of an earlier call (when the record ring is full), in which case
 * nothing was launched.
 */
sl_status sl_check_begin(const char *fn, sl_explain_fn explain, int64_t p0, int64_t p1,
                         int64_t p2, int64_t p3, unsigned long long **slot);
/* Ends a checked call after its launches: in synchronous mode waits and reports its errors. */
sl_status sl_check_end(const char *fn);
/* Waits for the device and reports (then clears) every pending record; reporter names the
 * calling entry point. Also reports asynchronous device faults. */
sl_status sl_check_flush(const char *reporter);

/* Records a bad entry (position, value) of kind `kind` into a slot. */
__device__ __forceinline__ void sl_flag(unsigned long long *slot, int kind, int64_t pos,
                                        int32_t value) {
  unsigned long long p = pos < 0xFFFFFFFELL ? (unsigned long long)pos : 0xFFFFFFFEull;
  atomicMin(slot + kind, (p << 32) | (unsigned long long)(uint32_t)value);
  volatile unsigned int *dirty = (volatile unsigned int *)(uintptr_t)slot[SL_CHECK_KINDS];
  if (dirty != nullptr) {
    *dirty = 1u;
    __threadfence_system();
  }
}

/* ---------------------------------------------------------- launch helpers ---- */

/* Blocks for a grid-stride loop over n elements (at least 1, at most 2^20 blocks). */
static inline unsigned sl_blocks(int64_t n, int threads) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  if (g > (1 << 20)) g = 1 << 20;
  return (unsigned)g;
}

/* Blocks for a kernel with one thread (or one lane of a row's group) per element and no loop
 * over the grid: every element gets its thread, so no cap (sl_blocks' 2^20 would leave rows past
 * 2^23 of a warp-per-row kernel unvisited). n <= 2^31 * 256 for every caller (int32 rows times at
 * most 32 lanes), within gridDim.x's 2^31 - 1. */
static inline unsigned sl_blocks_each(int64_t n, int threads) {
  int64_t g = (n + threads - 1) / threads;
  return (unsigned)(g < 1 ? 1 : g);
}

#define SL_GRID_STRIDE(i, n)                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);     \
       i += (int64_t)blockDim.x * gridDim.x)

/* Sum over a warp (all 32 lanes participate). */
template <typename T>
__device__ __forceinline__ T sl_warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets
 * the total. `shared` must hold 32 elements. */
template <typename T>
__device__ T sl_block_sum(T v, T *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = sl_warp_sum(v);
  __syncthreads(); /* shared may still be read by a previous call */
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T t = lane < warps ? shared[lane] : T(0);
  if (warp == 0) t = sl_warp_sum(t);
  if (threadIdx.x == 0) shared[0] = t;
  __syncthreads();
  return shared[0];
}

/* Max over a warp (fmaxf: NaN lanes are ignored unless all are NaN). */
__device__ __forceinline__ float sl_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Max over a block (as sl_block_sum): every thread gets it. `shared` holds 32 floats. */
__device__ __forceinline__ float sl_block_max(float v, float *shared) {
  v = sl_warp_max(v);
  __syncthreads(); /* shared may still be read by a previous call */
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
  __syncthreads();
  v = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) v = fmaxf(v, shared[w]);
  return v;
}

#endif /* SL_CUDA_COMMON_CUH */
