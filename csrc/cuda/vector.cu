/* vector.cu — fill, axpy, copy on device memory (the level-1 operations autograd uses). */
#include "common.cuh"

__global__ void fill_kernel(int64_t n, float value, float *x) {
  SL_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void axpy_kernel(int64_t n, float alpha, const float *__restrict__ x,
                            float *__restrict__ y) {
  SL_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

extern "C" {

SL_API sl_status sl_fill(int64_t n, float value, float *x) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
  SL_CUDA_READY();
  fill_kernel<<<sl_blocks(n, 256), 256>>>(n, value, x);
  SL_LAUNCHED("fill_kernel");
  return SL_OK;
}

SL_API sl_status sl_axpy(int64_t n, float alpha, const float *x, float *y) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
  SL_CHECK_PTR(y);
  SL_CUDA_READY();
  axpy_kernel<<<sl_blocks(n, 256), 256>>>(n, alpha, x, y);
  SL_LAUNCHED("axpy_kernel");
  return SL_OK;
}

SL_API sl_status sl_copy(int64_t n, const float *x, float *y) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(x);
  SL_CHECK_PTR(y);
  SL_CUDA_READY();
  /* memmove semantics, as the CPU library: cudaMemcpy handles overlapping device ranges only
   * when they are identical, so copy through scratch when they overlap. */
  const size_t bytes = (size_t)n * sizeof(float);
  if (x == y) return SL_OK;
  const char *xs = (const char *)x, *ys = (const char *)y;
  if (xs < ys + bytes && ys < xs + bytes) {
    sl_scratch tmp;
    SL_SCRATCH(tmp, float, n);
    SL_CUDA(cudaMemcpyAsync(tmp.p, x, bytes, cudaMemcpyDeviceToDevice, 0));
    SL_CUDA(cudaMemcpyAsync(y, tmp.p, bytes, cudaMemcpyDeviceToDevice, 0));
    return SL_OK;
  }
  SL_CUDA(cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, 0));
  return SL_OK;
}

} /* extern "C" */
