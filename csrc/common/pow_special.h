/*
 * pow_special.h — v^e with PyTorch's special exponents (2, 3, 0.5, -0.5, -1, -2 as products,
 * sqrt and reciprocals), so that pow gives PyTorch's values for signed zeros and infinities
 * (powf(-0, -0.5) is +inf where 1 / sqrt(-0) is -inf). Shared by the CPU and CUDA kernels, for
 * the forward's x^alpha and the backward's x^(alpha - 1). Not part of the ABI.
 */
#ifndef SL_POW_SPECIAL_H
#define SL_POW_SPECIAL_H

#include <math.h>

#ifdef __CUDACC__
#define SL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SL_HOST_DEVICE static inline
#endif

SL_HOST_DEVICE float sl_pow_special(float v, float e) {
  if (e == 2.0f) return v * v;
  if (e == 3.0f) return v * v * v;
  if (e == 0.5f) return sqrtf(v);
  if (e == -0.5f) return 1.0f / sqrtf(v);
  if (e == -1.0f) return 1.0f / v;
  if (e == -2.0f) return 1.0f / (v * v);
  return powf(v, e);
}

#endif
