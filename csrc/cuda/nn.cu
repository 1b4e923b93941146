/*
 * nn.cu — the per-layer kernels of the training stack on device memory: LayerNorm, fused
 * log-softmax + cross-entropy, mean squared error, dropout and the per-feature scale/shift.
 * Semantics follow csrc/cpu/nn.c; the host-side argument checks are shared with it
 * (csrc/common/validate.c). Reductions accumulate in double with a fixed combination order
 * (deterministic, no floating-point atomics).
 */
#include <math.h>

#include "reduce.cuh"
#include "validate.h"

namespace {

int row_threads(int64_t n) {
  int64_t t = (n + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 512 ? 512 : (int)t);
}

unsigned row_blocks(int64_t rows) {
  return (unsigned)(rows < (1 << 20) ? (rows > 0 ? rows : 1) : (1 << 20));
}

/* ------------------------------------------------------------------ LayerNorm ---- */

/*
 * LayerNorm's affine part, gamma and beta each optional (null: 1 and 0). The forward and the
 * backward of a fused LayerNorm + ReLU both compute the output through it, so the backward's
 * ReLU mask is exactly the forward's.
 */
__device__ __forceinline__ float sl_ln_apply(const float *gamma, const float *beta, float xhat,
                                             int64_t j) {
  const float v = gamma != nullptr ? xhat * gamma[j] : xhat;
  return beta != nullptr ? v + beta[j] : v;
}

/*
 * term(0, r, c) for LayerNorm's parameter gradients: dy[r, c] (dbeta), times xhat[r, c] when
 * `weighted` (dgamma); with relu, zero where the forward's output was cut.
 */
struct sl_term_ln_masked {
  const float *dy, *x, *mean, *rstd, *gamma, *beta;
  int32_t relu;
  bool weighted;
  int64_t n;
  __device__ double operator()(int64_t, int64_t r, int64_t c) const {
    const float d = dy[r * n + c];
    if (!relu && !weighted) return (double)d; /* dbeta without a ReLU reads dy alone */
    const float xh = (x[r * n + c] - mean[r]) * rstd[r];
    if (relu && sl_ln_apply(gamma, beta, xh, c) <= 0.0f) return 0.0; /* NaN passes */
    return weighted ? (double)d * xh : (double)d;
  }
};

__global__ void layer_norm_fwd_kernel(int64_t rows, int32_t n, float eps,
                                      const float *__restrict__ x,
                                      const float *__restrict__ gamma,
                                      const float *__restrict__ beta, int32_t relu,
                                      float *__restrict__ y, float *__restrict__ mean,
                                      float *__restrict__ rstd) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    double s = 0.0;
    for (int32_t j = threadIdx.x; j < n; j += blockDim.x) s += xr[j];
    s = sl_block_sum(s, shared);
    const double mu = s / n;
    double ss = 0.0;
    for (int32_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double d = xr[j] - mu;
      ss += d * d;
    }
    ss = sl_block_sum(ss, shared);
    const float rs = (float)(1.0 / sqrt(ss / n + (double)eps)); /* biased variance */
    const float muf = (float)mu;
    for (int32_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = sl_ln_apply(gamma, beta, (xr[j] - muf) * rs, j);
      yr[j] = relu && v <= 0.0f ? 0.0f : v; /* NaN propagates, as relu() */
    }
    if (threadIdx.x == 0) {
      if (mean != nullptr) mean[r] = muf;
      if (rstd != nullptr) rstd[r] = rs;
    }
  }
}

/*
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma, with dy zeroed where a
 * fused ReLU cut the forward's output (recomputed through the same sl_ln_apply).
 */
__global__ void layer_norm_bwd_dx_kernel(int64_t rows, int32_t n, const float *__restrict__ x,
                                         const float *__restrict__ mean,
                                         const float *__restrict__ rstd,
                                         const float *__restrict__ gamma,
                                         const float *__restrict__ beta, int32_t relu,
                                         const float *__restrict__ dy, float *__restrict__ dx) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * n, *dyr = dy + r * n;
    float *dxr = dx + r * n;
    const float mu = mean[r], rs = rstd[r];
    double sg = 0.0, sgx = 0.0;
    for (int32_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float xh = (xr[j] - mu) * rs;
      const float d = relu && sl_ln_apply(gamma, beta, xh, j) <= 0.0f ? 0.0f : dyr[j];
      const float g = gamma != nullptr ? d * gamma[j] : d;
      sg += g;
      sgx += (double)g * xh;
    }
    sg = sl_block_sum(sg, shared);
    sgx = sl_block_sum(sgx, shared);
    const float mg = (float)(sg / n), mgx = (float)(sgx / n);
    for (int32_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float xh = (xr[j] - mu) * rs;
      const float d = relu && sl_ln_apply(gamma, beta, xh, j) <= 0.0f ? 0.0f : dyr[j];
      const float g = gamma != nullptr ? d * gamma[j] : d;
      dxr[j] = rs * (g - mg - xh * mgx);
    }
  }
}

/* ------------------------------------------------------------ cross-entropy ---- */

/* One block per sample: lse, the per-sample loss (row_loss[b], double) or loss[b]. */
__global__ void cross_entropy_fwd_kernel(int32_t batch, int32_t n_classes,
                                         const float *__restrict__ logits,
                                         const int32_t *__restrict__ labels, int32_t reduction,
                                         float *__restrict__ loss, float *__restrict__ lse,
                                         double *__restrict__ row_loss,
                                         unsigned long long *slot) {
  __shared__ double dshared[32];
  __shared__ float fshared[32];
  for (int32_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const float *zr = logits + (int64_t)b * n_classes;
    float mx = -INFINITY;
    for (int32_t c = threadIdx.x; c < n_classes; c += blockDim.x) mx = fmaxf(mx, zr[c]);
    mx = sl_block_max(mx, fshared);
    if (zr[0] != zr[0]) mx = zr[0]; /* NaN first: as the CPU library's running max */
    const bool finite = isfinite(mx);
    double s = 0.0;
    if (finite)
      for (int32_t c = threadIdx.x; c < n_classes; c += blockDim.x) s += exp((double)(zr[c] - mx));
    s = sl_block_sum(s, dshared);
    if (threadIdx.x == 0) {
      /* As the CPU library (cross_entropy_row): the loss as log(s) - (z[label] - max), and NaN
       * throughout for a row whose max is +inf or -inf or that holds a NaN (then s is NaN), as
       * PyTorch's log-softmax, which subtracts the max (inf - inf). */
      const double log_s = finite ? log(s) : NAN;
      const double row_lse = (double)mx + log_s;
      const int32_t label = labels[b];
      double l;
      if (label < 0 || label >= n_classes) {
        sl_flag(slot, 1, b, label);
        l = NAN;
      } else {
        l = log_s - ((double)zr[label] - (double)mx);
      }
      if (lse != nullptr) lse[b] = (float)row_lse;
      if (reduction == SL_REDUCTION_NONE) loss[b] = (float)l;
      else row_loss[b] = l;
    }
  }
}

/* loss[0] = (sum of v[0 .. n)) / divisor in double (one block, fixed order), divided as the CPU
 * library does rather than multiplied by 1 / divisor. */
__global__ void sum_doubles_kernel(int64_t n, double divisor, const double *__restrict__ v,
                                   float *__restrict__ loss) {
  __shared__ double shared[32];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
  s = sl_block_sum(s, shared);
  if (threadIdx.x == 0) loss[0] = (float)(s / divisor);
}

__global__ void cross_entropy_bwd_kernel(int32_t batch, int32_t n_classes,
                                         const float *__restrict__ logits,
                                         const int32_t *__restrict__ labels,
                                         const float *__restrict__ lse,
                                         const float *__restrict__ dloss, int32_t dloss_stride,
                                         float scale, float *__restrict__ dlogits,
                                         unsigned long long *slot) {
  __shared__ double dshared[32];
  __shared__ float fshared[32];
  for (int32_t b = blockIdx.x; b < batch; b += gridDim.x) {
    const float *zr = logits + (int64_t)b * n_classes;
    float *dr = dlogits + (int64_t)b * n_classes;
    const float g = scale * dloss[(int64_t)b * dloss_stride];
    const float l = lse[b];
    const int32_t label = labels[b];
    const bool ok = label >= 0 && label < n_classes;
    if (!ok && threadIdx.x == 0) sl_flag(slot, 1, b, label);
    /* As the CPU library: softmax = exp((z - max) - log(sum)) with the sum taken again (lse in
     * float is rounded to the max's precision); a row whose lse is NaN (see the forward) has a
     * NaN gradient throughout. */
    float mx = -INFINITY;
    for (int32_t c = threadIdx.x; c < n_classes; c += blockDim.x) mx = fmaxf(mx, zr[c]);
    mx = sl_block_max(mx, fshared);
    double s = 0.0;
    for (int32_t c = threadIdx.x; c < n_classes; c += blockDim.x) s += exp((double)(zr[c] - mx));
    s = sl_block_sum(s, dshared);
    const bool finite = isfinite(l);
    const float ls = (float)log(s);
    for (int32_t c = threadIdx.x; c < n_classes; c += blockDim.x) {
      const float v = finite ? g * expf((zr[c] - mx) - ls) : NAN;
      dr[c] = (ok && c == label) ? v - g : v;
    }
  }
}

sl_status explain_labels(const char *fn, const sl_bad_entry *kinds, const int64_t *params) {
  if (!kinds[1].bad) return SL_OK;
  return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "labels[%lld] = %d is outside [0, %lld)",
                 (long long)kinds[1].position, kinds[1].value, (long long)params[0]);
}

/* ---------------------------------------------------------------------- MSE ---- */

__global__ void mse_none_kernel(int64_t n, const float *__restrict__ pred,
                                const float *__restrict__ target, float *__restrict__ loss) {
  SL_GRID_STRIDE(i, n) {
    const float d = pred[i] - target[i];
    loss[i] = d * d;
  }
}

struct term_squared_error {
  const float *pred, *target;
  __device__ double operator()(int64_t, int64_t j, int64_t) const {
    const float d = pred[j] - target[j];
    return (double)d * d;
  }
};

__global__ void mse_bwd_kernel(int64_t n, const float *__restrict__ pred,
                               const float *__restrict__ target, const float *__restrict__ dloss,
                               int32_t dloss_stride, float scale, float *__restrict__ dpred,
                               float *__restrict__ dtarget) {
  SL_GRID_STRIDE(i, n) {
    const float g = 2.0f * scale * dloss[i * dloss_stride] * (pred[i] - target[i]);
    if (dpred != nullptr) dpred[i] = g;
    if (dtarget != nullptr) dtarget[i] = -g;
  }
}

/* ------------------------------------------------------------------ dropout ---- */

/* The same counter-based bits as csrc/cpu/nn.c: the i-th splitmix64 output for `seed`. */
__device__ __forceinline__ uint32_t dropout_bits(uint64_t seed, int64_t i) {
  uint64_t z = seed + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32);
}

__global__ void dropout_kernel(int64_t n, uint64_t threshold, float keep_scale, uint64_t seed,
                               const float *in, float *out) {
  SL_GRID_STRIDE(i, n) {
    /* Dropped elements are multiplied by 0, as PyTorch does: NaN and inf give NaN, not 0. */
    out[i] = in[i] * ((uint64_t)dropout_bits(seed, i) >= threshold ? keep_scale : 0.0f);
  }
}

sl_status dropout_apply(const char *fn, int64_t n, double p, uint64_t seed, const float *in,
                        float *out, const char *in_name, const char *out_name) {
  if (n < 0) return sl_fail(SL_E_INVALID_ARGUMENT, fn, "n must be >= 0, got %lld", (long long)n);
  if (!(p >= 0.0 && p <= 1.0))
    return sl_fail(SL_E_INVALID_ARGUMENT, fn, "p must be in [0, 1], got %g", p);
  if (n == 0) return SL_OK;
  if (in == nullptr) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", in_name);
  if (out == nullptr) return sl_fail(SL_E_NULL_POINTER, fn, "%s must not be null", out_name);
  SL_TRY(sl_cuda_ready(fn));
  /* As csrc/cpu/nn.c: the threshold from p rounded to float (the masks of ABI 4), the scale
   * 1 / (1 - p) from the double p, rounded once (PyTorch's). */
  const uint64_t threshold = (uint64_t)((double)(float)p * 4294967296.0);
  const float keep_scale = p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f;
  dropout_kernel<<<sl_blocks(n, 256), 256>>>(n, threshold, keep_scale, seed, in, out);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return sl_cuda_fail(fn, "the launch of dropout_kernel", err);
  return SL_OK;
}

/* ---------------------------------------------------------- scale and shift ---- */

/* y may equal x, so no __restrict__. */
__global__ void scale_shift_fwd_kernel(int64_t total, int32_t n, const float *x,
                                       const float *scale, const float *shift, float *y) {
  SL_GRID_STRIDE(i, total) {
    const int64_t j = i % n;
    float v = x[i];
    if (scale != nullptr) v *= scale[j];
    if (shift != nullptr) v += shift[j];
    y[i] = v;
  }
}

__global__ void scale_dx_kernel(int64_t total, int32_t n, const float *dy, const float *scale,
                                float *dx) {
  SL_GRID_STRIDE(i, total) dx[i] = scale != nullptr ? dy[i] * scale[i % n] : dy[i];
}

} /* namespace */

extern "C" {

SL_API sl_status sl_layer_norm_fwd(int64_t rows, int32_t n, float eps, const float *x,
                                   const float *gamma, const float *beta, int32_t relu, float *y,
                                   float *mean, float *rstd) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_layer_norm_fwd(__func__, rows, n, eps, x, relu, y));
  if (rows == 0) return SL_OK;
  SL_CUDA_READY();
  layer_norm_fwd_kernel<<<row_blocks(rows), row_threads(n)>>>(rows, n, eps, x, gamma, beta, relu,
                                                              y, mean, rstd);
  SL_LAUNCHED("layer_norm_fwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_layer_norm_bwd(int64_t rows, int32_t n, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta,
                                   int32_t relu, const float *dy, float *dx, float *dgamma,
                                   float *dbeta) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_layer_norm_bwd(__func__, rows, n, x, mean, rstd, relu, dy));
  if (rows == 0) {
    if (dgamma == nullptr && dbeta == nullptr) return SL_OK;
    SL_CUDA_READY();
    /* Gradients of gamma and beta over an empty batch are zero. */
    if (dgamma != nullptr) SL_TRY(sl_fill_device(__func__, n, 0.0f, dgamma));
    if (dbeta != nullptr) SL_TRY(sl_fill_device(__func__, n, 0.0f, dbeta));
    return SL_OK;
  }
  SL_CUDA_READY();
  if (dx != nullptr) {
    layer_norm_bwd_dx_kernel<<<row_blocks(rows), row_threads(n)>>>(rows, n, x, mean, rstd, gamma,
                                                                   beta, relu, dy, dx);
    SL_LAUNCHED("layer_norm_bwd_dx_kernel");
  }
  if (dgamma != nullptr) {
    sl_term_ln_masked term{dy, x, mean, rstd, gamma, beta, relu, true, n};
    SL_TRY(sl_reduce_middle(__func__, 1, rows, n, 1.0f, term, dgamma));
  }
  if (dbeta != nullptr) {
    sl_term_ln_masked term{dy, x, mean, rstd, gamma, beta, relu, false, n};
    SL_TRY(sl_reduce_middle(__func__, 1, rows, n, 1.0f, term, dbeta));
  }
  return SL_OK;
}

SL_API sl_status sl_cross_entropy_fwd(int32_t batch, int32_t n_classes, const float *logits,
                                      const int32_t *labels, int32_t reduction, float *loss,
                                      float *lse) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_cross_entropy_fwd(__func__, batch, n_classes, logits, labels, reduction, loss));
  SL_CUDA_READY();
  if (batch == 0) {
    if (reduction == SL_REDUCTION_NONE) return SL_OK;
    /* The mean over no sample is NaN (as PyTorch), the sum 0. */
    return sl_fill_device(__func__, 1, reduction == SL_REDUCTION_MEAN ? NAN : 0.0f, loss);
  }
  sl_scratch row_loss;
  if (reduction != SL_REDUCTION_NONE) SL_SCRATCH(row_loss, double, batch);
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(__func__, explain_labels, n_classes, 0, 0, 0, &slot));
  cross_entropy_fwd_kernel<<<row_blocks(batch), row_threads(n_classes)>>>(
      batch, n_classes, logits, labels, reduction, loss, lse, row_loss.as<double>(), slot);
  SL_LAUNCHED("cross_entropy_fwd_kernel");
  if (reduction != SL_REDUCTION_NONE) {
    const double divisor = reduction == SL_REDUCTION_MEAN ? (double)batch : 1.0;
    sum_doubles_kernel<<<1, 512>>>(batch, divisor, row_loss.as<double>(), loss);
    SL_LAUNCHED("sum_doubles_kernel");
  }
  return sl_check_end(__func__);
}

SL_API sl_status sl_cross_entropy_bwd(int32_t batch, int32_t n_classes, const float *logits,
                                      const int32_t *labels, const float *lse,
                                      const float *dloss, int32_t dloss_stride, float scale,
                                      float *dlogits) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_cross_entropy_bwd(__func__, batch, n_classes, logits, labels, lse, dloss,
                                            dloss_stride, dlogits));
  if (batch == 0) return SL_OK;
  SL_CUDA_READY();
  unsigned long long *slot = nullptr;
  SL_TRY(sl_check_begin(__func__, explain_labels, n_classes, 0, 0, 0, &slot));
  cross_entropy_bwd_kernel<<<row_blocks(batch), row_threads(n_classes)>>>(
      batch, n_classes, logits, labels, lse, dloss, dloss_stride, scale, dlogits, slot);
  SL_LAUNCHED("cross_entropy_bwd_kernel");
  return sl_check_end(__func__);
}

SL_API sl_status sl_mse_fwd(int64_t n, const float *pred, const float *target,
                            int32_t reduction, float *loss) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_mse_fwd(__func__, n, pred, target, reduction, loss));
  if (n == 0 && reduction == SL_REDUCTION_NONE) return SL_OK;
  SL_CUDA_READY();
  if (n == 0) return sl_fill_device(__func__, 1, reduction == SL_REDUCTION_MEAN ? NAN : 0.0f, loss);
  if (reduction == SL_REDUCTION_NONE) {
    mse_none_kernel<<<sl_blocks(n, 256), 256>>>(n, pred, target, loss);
    SL_LAUNCHED("mse_none_kernel");
    return SL_OK;
  }
  term_squared_error term{pred, target};
  const double alpha = reduction == SL_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
  return sl_reduce_middle(__func__, 1, n, 1, alpha, term, loss);
}

SL_API sl_status sl_mse_bwd(int64_t n, const float *pred, const float *target,
                            const float *dloss, int32_t dloss_stride, float scale, float *dpred,
                            float *dtarget) {
  SL_ENTER();
  SL_VALIDATE(
      sl_validate_mse_bwd(__func__, n, pred, target, dloss, dloss_stride, dpred, dtarget));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  mse_bwd_kernel<<<sl_blocks(n, 256), 256>>>(n, pred, target, dloss, dloss_stride, scale, dpred,
                                             dtarget);
  SL_LAUNCHED("mse_bwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_dropout_fwd(int64_t n, double p, uint64_t seed, const float *x, float *y) {
  SL_ENTER();
  return dropout_apply(__func__, n, p, seed, x, y, "x", "y");
}

SL_API sl_status sl_dropout_bwd(int64_t n, double p, uint64_t seed, const float *dy, float *dx) {
  SL_ENTER();
  return dropout_apply(__func__, n, p, seed, dy, dx, "dy", "dx");
}

SL_API sl_status sl_scale_shift_fwd(int64_t rows, int32_t n, const float *x, const float *scale,
                                    const float *shift, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_scale_shift_fwd(__func__, rows, n, x, y));
  if (rows == 0 || n == 0) return SL_OK;
  SL_CUDA_READY();
  const int64_t total = rows * n;
  scale_shift_fwd_kernel<<<sl_blocks(total, 256), 256>>>(total, n, x, scale, shift, y);
  SL_LAUNCHED("scale_shift_fwd_kernel");
  return SL_OK;
}

SL_API sl_status sl_scale_shift_bwd(int64_t rows, int32_t n, const float *x, const float *scale,
                                    const float *dy, float *dx, float *dscale, float *dshift) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_scale_shift_bwd(__func__, rows, n, x, dy, dscale));
  if (n == 0) return SL_OK;
  if (rows == 0) {
    if (dscale == nullptr && dshift == nullptr) return SL_OK;
    SL_CUDA_READY();
    if (dscale != nullptr) SL_TRY(sl_fill_device(__func__, n, 0.0f, dscale));
    if (dshift != nullptr) SL_TRY(sl_fill_device(__func__, n, 0.0f, dshift));
    return SL_OK;
  }
  SL_CUDA_READY();
  const int64_t total = rows * n;
  if (dx != nullptr) {
    scale_dx_kernel<<<sl_blocks(total, 256), 256>>>(total, n, dy, scale, dx);
    SL_LAUNCHED("scale_dx_kernel");
  }
  if (dscale != nullptr) {
    sl_term_product term{dy, x, n};
    SL_TRY(sl_reduce_middle(__func__, 1, rows, n, 1.0f, term, dscale));
  }
  if (dshift != nullptr) {
    sl_term_plain term{dy, rows, n};
    SL_TRY(sl_reduce_middle(__func__, 1, rows, n, 1.0f, term, dshift));
  }
  return SL_OK;
}

} /* extern "C" */
