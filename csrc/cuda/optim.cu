/*
 * optim.cu — SGD and Adam / AdamW updates on device memory, with the semantics, checks and
 * messages of csrc/cpu/optim.c (torch.optim single-tensor code path). Step-dependent scalars
 * (bias corrections) are computed once on the host in double.
 */
#include <math.h>

#include "common.cuh"
#include "validate.h"

namespace {

__global__ void sgd_kernel(int64_t n, float lr, float mom, float keep, float wd, int nesterov,
                           int init_momentum, float *__restrict__ param,
                           const float *__restrict__ grad, float *__restrict__ momentum_buf) {
  SL_GRID_STRIDE(i, n) {
    /* As PyTorch, the decay term only when weight_decay != 0: 0 * inf would be NaN. */
    const float d = wd != 0 ? grad[i] + wd * param[i] : grad[i];
    if (momentum_buf == nullptr) {
      param[i] -= lr * d;
      continue;
    }
    /* First step: the buffer starts as the gradient itself (no dampening), as in PyTorch. */
    const float buf = init_momentum ? d : mom * momentum_buf[i] + keep * d;
    momentum_buf[i] = buf;
    param[i] -= lr * (nesterov ? d + mom * buf : buf);
  }
}

__global__ void adam_kernel(int64_t n, float step_size, float inv_bc2_sqrt, float decay,
                            float coupled_wd, float beta2, float one_minus_b1, float one_minus_b2,
                            float eps, int amsgrad, float *__restrict__ param,
                            const float *__restrict__ grad, float *__restrict__ exp_avg,
                            float *__restrict__ exp_avg_sq, float *__restrict__ max_exp_avg_sq) {
  SL_GRID_STRIDE(i, n) {
    const float p0 = param[i];
    const float p = p0 * decay;
    const float g = coupled_wd != 0 ? grad[i] + coupled_wd * p0 : grad[i];
    const float m = exp_avg[i] + one_minus_b1 * (g - exp_avg[i]); /* lerp, as PyTorch */
    const float v = beta2 * exp_avg_sq[i] + one_minus_b2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    float vv = v;
    if (amsgrad) {
      vv = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
      max_exp_avg_sq[i] = vv;
    }
    const float denom = sqrtf(vv) * inv_bc2_sqrt + eps;
    param[i] = p - step_size * m / denom;
  }
}

} /* namespace */

extern "C" {

SL_API sl_status sl_sgd_step(int64_t n, float lr, float momentum, float dampening,
                             float weight_decay, int32_t nesterov, int32_t init_momentum,
                             float *param, const float *grad, float *momentum_buf) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sgd_step(__func__, n, lr, momentum, dampening, weight_decay, nesterov,
                                   init_momentum, param, grad, momentum_buf));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  sgd_kernel<<<sl_blocks(n, 256), 256>>>(n, lr, momentum, 1.0f - dampening, weight_decay,
                                         nesterov, init_momentum, param, grad,
                                         momentum != 0 ? momentum_buf : nullptr);
  SL_LAUNCHED("sgd_kernel");
  return SL_OK;
}

SL_API sl_status sl_adam_step(int64_t n, float lr, float beta1, float beta2, float eps,
                              float weight_decay, int32_t decoupled_weight_decay,
                              int32_t amsgrad, int64_t step, float *param, const float *grad,
                              float *exp_avg, float *exp_avg_sq, float *max_exp_avg_sq) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_adam_step(__func__, n, lr, beta1, beta2, eps, weight_decay,
                                    decoupled_weight_decay, amsgrad, step, param, grad, exp_avg,
                                    exp_avg_sq, max_exp_avg_sq));
  if (n == 0) return SL_OK;
  SL_CUDA_READY();
  const double bias_correction1 = 1.0 - pow((double)beta1, (double)step);
  const double bias_correction2 = 1.0 - pow((double)beta2, (double)step);
  const float step_size = (float)((double)lr / bias_correction1);
  const float inv_bc2_sqrt = (float)(1.0 / sqrt(bias_correction2));
  const float decay = decoupled_weight_decay ? (float)(1.0 - (double)lr * weight_decay) : 1.0f;
  const float coupled_wd = decoupled_weight_decay ? 0.0f : weight_decay;
  adam_kernel<<<sl_blocks(n, 256), 256>>>(n, step_size, inv_bc2_sqrt, decay, coupled_wd, beta2,
                                          1.0f - beta1, 1.0f - beta2, eps, amsgrad, param, grad,
                                          exp_avg, exp_avg_sq, max_exp_avg_sq);
  SL_LAUNCHED("adam_kernel");
  return SL_OK;
}

} /* extern "C" */
