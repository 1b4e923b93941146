/*
 * elementwise.cu — broadcasting binary ops and their gradients, unary ops and their gradients,
 * the strided gather (expand / permute) and row-wise log-softmax, on device memory.
 *
 * Shapes and strides are host arrays; they are checked and simplified on the host with the CPU
 * library's own helpers (csrc/cpu/strided.h: size-1 dimensions dropped, contiguous neighbours
 * merged), and the simplified layout is passed to the kernel by value. A plain same-shape op is
 * then one dimension, so most calls take the division-free path.
 */
#include <math.h>

#include "common.cuh"
#include "../cpu/strided.h"
#include "pow_special.h"
#include "validate.h"

/* Element offsets of operands 0 and 1 for output index i (row-major over the layout). */
__device__ __forceinline__ void layout_offsets(const sl_layout &l, int64_t i, int64_t *o0,
                                               int64_t *o1) {
  if (l.ndim == 1) {
    *o0 = i * l.stride[0][0];
    *o1 = i * l.stride[1][0];
    return;
  }
  int64_t a = 0, b = 0;
  for (int d = l.ndim - 1; d >= 0; d--) {
    const int64_t s = l.shape[d];
    const int64_t q = i / s, r = i - q * s;
    a += r * l.stride[0][d];
    b += r * l.stride[1][d];
    i = q;
  }
  *o0 = a;
  *o1 = b;
}

/* ------------------------------------------------------------ binary ops ---- */

__device__ __forceinline__ float binary_apply(int op, float x, float y) {
  switch (op) {
    case SL_BINARY_ADD: return x + y;
    case SL_BINARY_SUB: return x - y;
    case SL_BINARY_MUL: return x * y;
    default: return x / y;
  }
}

__global__ void binary_kernel(int op, sl_layout l, int64_t n, const float *__restrict__ a,
                              const float *__restrict__ b, float *__restrict__ out) {
  SL_GRID_STRIDE(i, n) {
    int64_t oa, ob;
    layout_offsets(l, i, &oa, &ob);
    out[i] = binary_apply(op, a[oa], b[ob]);
  }
}

__global__ void binary_bwd_kernel(int op, sl_layout l, int64_t n, const float *__restrict__ a,
                                  const float *__restrict__ b, const float *__restrict__ dy,
                                  float *__restrict__ da, float *__restrict__ db) {
  SL_GRID_STRIDE(i, n) {
    const float g = dy[i];
    if (op == SL_BINARY_ADD || op == SL_BINARY_SUB) {
      if (da != nullptr) da[i] = g;
      if (db != nullptr) db[i] = op == SL_BINARY_ADD ? g : -g;
      continue;
    }
    int64_t oa, ob;
    layout_offsets(l, i, &oa, &ob);
    const float x = a[oa], y = b[ob];
    if (op == SL_BINARY_MUL) {
      if (da != nullptr) da[i] = g * y;
      if (db != nullptr) db[i] = g * x;
    } else { /* d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 */
      if (da != nullptr) da[i] = g / y;
      if (db != nullptr) db[i] = -g * ((x / y) / y); /* as PyTorch; y*y would overflow */
    }
  }
}

/* ----------------------------------------------------------- strided copy ---- */

__global__ void strided_copy_kernel(sl_layout l, int64_t n, float alpha,
                                    const float *__restrict__ x, float *__restrict__ y) {
  SL_GRID_STRIDE(i, n) {
    int64_t ox, unused;
    layout_offsets(l, i, &ox, &unused);
    y[i] = alpha * x[ox];
  }
}

/* ------------------------------------------------------------- unary ops ---- */

__device__ __forceinline__ float sigmoid_dev(float x) {
  /* Two forms so that exp never overflows (as the CPU library). */
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

__device__ __forceinline__ float unary_apply(int op, float v, float alpha, float beta) {
  switch (op) {
    case SL_UNARY_NEG: return -v;
    case SL_UNARY_EXP: return expf(v);
    case SL_UNARY_LOG: return logf(v);
    case SL_UNARY_RELU: return v > 0.0f || v != v ? v : 0.0f; /* NaN propagates (PyTorch) */
    case SL_UNARY_SIGMOID: return sigmoid_dev(v);
    case SL_UNARY_TANH: return tanhf(v);
    case SL_UNARY_ABS: return fabsf(v);
    case SL_UNARY_SQRT: return sqrtf(v);
    case SL_UNARY_AFFINE: return alpha * v + beta; /* beta = -0: a product alone (-0 * 2 = -0) */
    case SL_UNARY_RECIPROCAL: return alpha / v;
    case SL_UNARY_SQUARE: return v * v;
    default: return sl_pow_special(v, alpha);
  }
}

__device__ __forceinline__ float unary_grad(int op, float v, float out, float g, float alpha) {
  switch (op) {
    case SL_UNARY_NEG: return -g;
    case SL_UNARY_EXP: return g * out;
    case SL_UNARY_LOG: return g / v;
    case SL_UNARY_RELU: return v > 0.0f || v != v ? g : 0.0f; /* NaN passes (PyTorch) */
    case SL_UNARY_SIGMOID: return g * out * (1.0f - out);
    case SL_UNARY_TANH: return g * (1.0f - out * out);
    case SL_UNARY_ABS: return g * (float)((v > 0.0f) - (v < 0.0f)); /* as the CPU (PyTorch) */
    case SL_UNARY_SQRT: return 0.5f * g / out;
    case SL_UNARY_AFFINE: return alpha * g;
    case SL_UNARY_RECIPROCAL: return -g * ((alpha / v) / v); /* v*v would overflow */
    case SL_UNARY_SQUARE: return 2.0f * v * g;
    /* PyTorch: grad * (exponent * x.pow(exponent - 1)), with pow's special exponents (so
     * x^(-0.5) at -0 is -inf, as 1 / sqrt(-0), not powf's +inf). */
    default: return alpha == 0.0f ? 0.0f : g * (alpha * sl_pow_special(v, alpha - 1.0f));
  }
}

/* y may equal x (in place), so no __restrict__ here. */
__global__ void unary_kernel(int op, int64_t n, float alpha, float beta, const float *x,
                             float *y) {
  SL_GRID_STRIDE(i, n) y[i] = unary_apply(op, x[i], alpha, beta);
}

__global__ void unary_bwd_kernel(int op, int64_t n, float alpha, const float *x, const float *y,
                                 const float *dy, float *dx) {
  SL_GRID_STRIDE(i, n) dx[i] = unary_grad(op, x[i], y[i], dy[i], alpha);
}

/* ----------------------------------------------------------- log-softmax ---- */

/* One block per row. */
__global__ void log_softmax_fwd_kernel(int64_t rows, int32_t cols, const float *__restrict__ x,
                                       float *__restrict__ y) {
  __shared__ double dshared[32];
  __shared__ float fshared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float mx = -INFINITY;
    for (int32_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, xr[j]);
    mx = sl_block_max(mx, fshared);
    if (xr[0] != xr[0]) mx = xr[0]; /* a leading NaN propagates, as in the CPU library */
    double s = 0.0;
    for (int32_t j = threadIdx.x; j < cols; j += blockDim.x) s += (double)expf(xr[j] - mx);
    s = sl_block_sum(s, dshared);
    const float lse = (float)log(s); /* (x - max) - lse, as the CPU library */
    for (int32_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (xr[j] - mx) - lse;
  }
}

__global__ void log_softmax_bwd_kernel(int64_t rows, int32_t cols, const float *__restrict__ y,
                                       const float *__restrict__ dy, float *__restrict__ dx) {
  __shared__ double dshared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *yr = y + r * cols, *gr = dy + r * cols;
    float *dr = dx + r * cols;
    double s = 0.0;
    for (int32_t j = threadIdx.x; j < cols; j += blockDim.x) s += (double)gr[j];
    s = sl_block_sum(s, dshared);
    const float sf = (float)s;
    for (int32_t j = threadIdx.x; j < cols; j += blockDim.x) dr[j] = gr[j] - expf(yr[j]) * sf;
  }
}

static int row_threads(int64_t cols) {
  int64_t t = (cols + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 256 ? 256 : (int)t);
}

static unsigned row_blocks(int64_t rows) {
  return (unsigned)(rows < (1 << 20) ? (rows > 0 ? rows : 1) : (1 << 20));
}

/* ------------------------------------------------------------ entry points ---- */

extern "C" {

SL_API sl_status sl_binary(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                           int64_t a_len, const int64_t *a_strides, const float *b,
                           int64_t b_len, const int64_t *b_strides, float *out) {
  SL_ENTER();
  sl_layout l;
  int64_t numel = 0;
  SL_TRY(sl_check_binary(__func__, op, ndim, shape, a, a_len, a_strides, b, b_len, b_strides, 1,
                         &l, &numel));
  if (numel == 0) return SL_OK;
  SL_CHECK_PTR(out);
  SL_CUDA_READY();
  binary_kernel<<<sl_blocks(numel, 256), 256>>>(op, l, numel, a, b, out);
  SL_LAUNCHED("binary_kernel");
  return SL_OK;
}

SL_API sl_status sl_binary_bwd(int32_t op, int32_t ndim, const int64_t *shape, const float *a,
                               int64_t a_len, const int64_t *a_strides, const float *b,
                               int64_t b_len, const int64_t *b_strides, const float *dy,
                               float *da, float *db) {
  SL_ENTER();
  sl_layout l;
  int64_t numel = 0;
  const int reads = op == SL_BINARY_MUL || op == SL_BINARY_DIV;
  SL_TRY(sl_check_binary(__func__, op, ndim, shape, a, a_len, a_strides, b, b_len, b_strides,
                         reads, &l, &numel));
  if (numel == 0 || (da == nullptr && db == nullptr)) return SL_OK;
  SL_CHECK_PTR(dy);
  SL_CUDA_READY();
  binary_bwd_kernel<<<sl_blocks(numel, 256), 256>>>(op, l, numel, a, b, dy, da, db);
  SL_LAUNCHED("binary_bwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_strided_copy(int32_t ndim, const int64_t *shape, float alpha,
                                 const float *x, int64_t x_len, const int64_t *x_strides,
                                 float *y) {
  SL_ENTER();
  int64_t numel = 0;
  SL_TRY(sl_check_shape(__func__, ndim, shape, &numel));
  SL_TRY(sl_check_operand(__func__, "x", "x_strides", ndim, shape, numel, x, x_len, x_strides));
  if (numel == 0) return SL_OK;
  SL_CHECK_PTR(y);
  SL_CUDA_READY();
  sl_layout l;
  const int64_t *const strides[2] = {x_strides, nullptr};
  sl_layout_init(&l, ndim, shape, 1, strides);
  strided_copy_kernel<<<sl_blocks(numel, 256), 256>>>(l, numel, alpha, x, y);
  SL_LAUNCHED("strided_copy_kernel");
  return SL_OK;
}

SL_API sl_status sl_unary(int32_t op, int64_t n, float alpha, float beta, const float *x,
                          float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_unary(__func__, op, n, x, y));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  unary_kernel<<<sl_blocks(n, 256), 256>>>(op, n, alpha, beta, x, y);
  SL_LAUNCHED("unary_kernel");
  return SL_OK;
}

SL_API sl_status sl_unary_bwd(int32_t op, int64_t n, float alpha, float beta, const float *x,
                              const float *y, const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_unary_bwd(__func__, op, n, x, y, dy, dx));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  unary_bwd_kernel<<<sl_blocks(n, 256), 256>>>(op, n, alpha, x, y, dy, dx);
  SL_LAUNCHED("unary_bwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_log_softmax_fwd(int64_t rows, int32_t cols, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_log_softmax_fwd(__func__, rows, cols, x, y));
  if (rows == 0 || cols == 0) return SL_OK;
  SL_CUDA_READY();
  log_softmax_fwd_kernel<<<row_blocks(rows), row_threads(cols)>>>(rows, cols, x, y);
  SL_LAUNCHED("log_softmax_fwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_log_softmax_bwd(int64_t rows, int32_t cols, const float *y,
                                    const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_log_softmax_bwd(__func__, rows, cols, y, dy, dx));
  if (rows == 0 || cols == 0) return SL_OK;
  SL_CUDA_READY();
  log_softmax_bwd_kernel<<<row_blocks(rows), row_threads(cols)>>>(rows, cols, y, dy, dx);
  SL_LAUNCHED("log_softmax_bwd_kernel");
  return SL_OK;
}

} /* extern "C" */
