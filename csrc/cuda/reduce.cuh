/*
 * reduce.cuh — deterministic reductions shared by the reduce, sparse (bias gradient) and nn
 * (LayerNorm / scale-shift parameter gradients) entry points. Not part of the ABI.
 *
 * Every sum accumulates in double and combines partial sums in a fixed order, so results do not
 * depend on scheduling (no floating-point atomics).
 */
#ifndef SL_CUDA_REDUCE_CUH
#define SL_CUDA_REDUCE_CUH

#include "common.cuh"

/* term(o, j, i) = x[(o * len + j) * inner + i]: the plain sum over the middle axis. */
struct sl_term_plain {
  const float *x;
  int64_t len, inner;
  __device__ double operator()(int64_t o, int64_t j, int64_t i) const {
    return (double)x[(o * len + j) * inner + i];
  }
};

/* term(0, r, c) = a[r, c] * b[r, c] (rows r, n = inner columns): dscale = sum_r dy * x. */
struct sl_term_product {
  const float *a, *b;
  int64_t n;
  __device__ double operator()(int64_t, int64_t r, int64_t c) const {
    return (double)a[r * n + c] * b[r * n + c];
  }
};

/* Partial sums over j in [chunk * c, chunk * (c + 1)) for every (o, i), i fastest. */
template <class Term>
__global__ void sl_column_partial_kernel(int64_t outer, int64_t len, int64_t inner,
                                         int64_t chunk, double alpha, Term term, double *partial,
                                         float *y) {
  const int64_t outs = outer * inner;
  const int64_t c = blockIdx.y;
  const int64_t j0 = c * chunk, j1 = j0 + chunk < len ? j0 + chunk : len;
  SL_GRID_STRIDE(idx, outs) {
    const int64_t o = idx / inner, i = idx - o * inner;
    double s = 0.0;
    for (int64_t j = j0; j < j1; j++) s += term(o, j, i);
    if (partial != nullptr)
      partial[c * outs + idx] = s;
    else
      y[idx] = (float)(alpha * s);
  }
}

/* y[idx] = alpha * sum over chunks of partial[c, idx], in chunk order. */
__global__ void sl_column_final_kernel(int64_t outs, int64_t chunks, double alpha,
                                       const double *partial, float *y);

/* Row sums (inner == 1): one block per row o. */
template <class Term>
__global__ void sl_row_sum_kernel(int64_t outer, int64_t len, double alpha, Term term,
                                  float *y) {
  __shared__ double shared[32];
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += term(o, j, 0);
    s = sl_block_sum(s, shared);
    if (threadIdx.x == 0) y[o] = (float)(alpha * s);
  }
}

/* partial[o * gridDim.x + b] = sum of row o (blockIdx.y) over segment b (blockIdx.x). */
template <class Term>
__global__ void sl_row_partial_kernel(int64_t len, int64_t seg, Term term, double *partial) {
  __shared__ double shared[32];
  const int64_t o = blockIdx.y;
  const int64_t j0 = (int64_t)blockIdx.x * seg, j1 = j0 + seg < len ? j0 + seg : len;
  double s = 0.0;
  for (int64_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) s += term(o, j, 0);
  s = sl_block_sum(s, shared);
  if (threadIdx.x == 0) partial[o * gridDim.x + blockIdx.x] = s;
}

/* y[o] = alpha * sum over b of partial[o * per_row + b], in order. */
__global__ void sl_row_final_kernel(int64_t outer, int64_t per_row, double alpha,
                                    const double *partial, float *y);

/*
 * y[o, i] = alpha * sum_{j < len} term(o, j, i) for outer * inner outputs (len >= 1), launched
 * on stream 0. fn names the entry point in errors. alpha is applied in double to the double sum
 * before the one rounding to float: the sums' float alpha converts exactly, and a mean passes
 * 1.0 / n unrounded (a float 1/n moved a quarter of the MSE means of small n by one ulp).
 */
template <class Term>
sl_status sl_reduce_middle(const char *fn, int64_t outer, int64_t len, int64_t inner,
                           double alpha, Term term, float *y) {
  const int64_t outs = outer * inner;
  if (outs == 0) return SL_OK;
  if (inner == 1 && len >= 256) {
    /* Long rows: a block per row, or several per row (partials summed in order) when there
     * are too few rows to fill the device. */
    /* Up to 64K elements a row is one block of 1024 threads (a single launch, no scratch:
     * the launches and the scratch allocation cost more host time than the GPU saves). */
    int64_t per_row = 1;
    const int threads = outer < 256 && len >= 4096 ? 1024 : 256;
    if (outer < 256 && len >= 65536) {
      per_row = len / 8192;
      const int64_t cap = 2048 / (outer > 0 ? outer : 1);
      if (per_row > cap) per_row = cap;
      if (per_row < 1) per_row = 1;
    }
    cudaError_t err;
    if (per_row == 1) {
      const unsigned blocks = (unsigned)(outer < (1 << 20) ? outer : (1 << 20));
      sl_row_sum_kernel<Term><<<blocks, threads>>>(outer, len, alpha, term, y);
      err = cudaGetLastError();
      if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_row_sum_kernel", err);
      return SL_OK;
    }
    sl_scratch partial;
    err = partial.alloc((size_t)(outer * per_row) * sizeof(double));
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the scratch allocation of partial sums", err);
    const int64_t seg = (len + per_row - 1) / per_row;
    sl_row_partial_kernel<Term><<<dim3((unsigned)per_row, (unsigned)outer), 256>>>(
        len, seg, term, partial.as<double>());
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_row_partial_kernel", err);
    sl_row_final_kernel<<<sl_blocks(outer, 256), 256>>>(outer, per_row, alpha,
                                                        partial.as<double>(), y);
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_row_final_kernel", err);
    return SL_OK;
  }
  /* Split the summed axis into chunks when the outputs alone cannot fill the device. */
  int64_t chunks = 1;
  if (outs < 65536) {
    chunks = (65536 + outs - 1) / outs;
    const int64_t by_len = (len + 63) / 64;
    if (chunks > by_len) chunks = by_len;
    if (chunks > 1024) chunks = 1024;
    if (chunks < 1) chunks = 1;
  }
  const int64_t chunk = (len + chunks - 1) / chunks;
  chunks = (len + chunk - 1) / chunk;
  sl_scratch partial;
  if (chunks > 1) {
    cudaError_t err = partial.alloc((size_t)(chunks * outs) * sizeof(double));
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the scratch allocation of partial sums", err);
  }
  dim3 grid(sl_blocks(outs, 256), (unsigned)chunks);
  sl_column_partial_kernel<Term><<<grid, 256>>>(outer, len, inner, chunk, alpha, term,
                                                partial.as<double>(), y);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_column_partial_kernel", err);
  if (chunks > 1) {
    sl_column_final_kernel<<<sl_blocks(outs, 256), 256>>>(outs, chunks, alpha,
                                                          partial.as<double>(), y);
    err = cudaGetLastError();
    if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of sl_column_final_kernel", err);
  }
  return SL_OK;
}

/* y[0 .. n) = value (launched on stream 0). */
sl_status sl_fill_device(const char *fn, int64_t n, float value, float *y);

#endif /* SL_CUDA_REDUCE_CUH */
