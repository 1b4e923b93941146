/*
 * optim.c — optimizer updates, one call per parameter tensor, with PyTorch's exact semantics
 * (torch.optim.SGD and torch.optim.Adam / AdamW, single-tensor code path).
 *
 * The elementwise updates are independent, so they split over threads without changing the
 * result; scalars that depend only on the step (bias corrections) are computed in double once.
 */
#include <math.h>

#include "internal.h"
#include "validate.h"

/* Below this many elements an update runs on one thread (~50 us of streaming; see strided.h). */
#define SL_OPTIM_PARALLEL_MIN 262144

sl_status sl_sgd_step(int64_t n, float lr, float momentum, float dampening, float weight_decay,
                      int32_t nesterov, int32_t init_momentum, float *param, const float *grad,
                      float *momentum_buf) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sgd_step(__func__, n, lr, momentum, dampening, weight_decay, nesterov,
                                   init_momentum, param, grad, momentum_buf));
  if (n == 0) return SL_OK;

  /* As PyTorch, the decay term is added only when weight_decay != 0: 0 * inf would be NaN. */
  const float wd = weight_decay, mom = momentum, keep = 1.0f - dampening;
  if (momentum == 0) {
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = wd != 0 ? grad[i] + wd * param[i] : grad[i];
      param[i] -= lr * d;
    }
  } else if (init_momentum) {
    /* First step: the buffer starts as the gradient itself (no dampening), as in PyTorch. */
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = wd != 0 ? grad[i] + wd * param[i] : grad[i];
      float buf = d;
      momentum_buf[i] = buf;
      param[i] -= lr * (nesterov ? d + mom * buf : buf);
    }
  } else {
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = wd != 0 ? grad[i] + wd * param[i] : grad[i];
      float buf = mom * momentum_buf[i] + keep * d;
      momentum_buf[i] = buf;
      param[i] -= lr * (nesterov ? d + mom * buf : buf);
    }
  }
  return SL_OK;
}

sl_status sl_adam_step(int64_t n, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int32_t decoupled_weight_decay, int32_t amsgrad,
                       int64_t step, float *param, const float *grad, float *exp_avg,
                       float *exp_avg_sq, float *max_exp_avg_sq) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_adam_step(__func__, n, lr, beta1, beta2, eps, weight_decay,
                                    decoupled_weight_decay, amsgrad, step, param, grad, exp_avg,
                                    exp_avg_sq, max_exp_avg_sq));
  if (n == 0) return SL_OK;

  const double bias_correction1 = 1.0 - pow((double)beta1, (double)step);
  const double bias_correction2 = 1.0 - pow((double)beta2, (double)step);
  const float step_size = (float)((double)lr / bias_correction1);
  const float inv_bc2_sqrt = (float)(1.0 / sqrt(bias_correction2));
  const float decay = decoupled_weight_decay ? (float)(1.0 - (double)lr * weight_decay) : 1.0f;
  const float coupled_wd = decoupled_weight_decay ? 0.0f : weight_decay;
  const float one_minus_b1 = 1.0f - beta1, one_minus_b2 = 1.0f - beta2;

#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float p = param[i] * decay;
    float g = coupled_wd != 0 ? grad[i] + coupled_wd * param[i] : grad[i]; /* see SGD */
    float m = exp_avg[i] + one_minus_b1 * (g - exp_avg[i]); /* lerp, as PyTorch */
    float v = beta2 * exp_avg_sq[i] + one_minus_b2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    float vv = v;
    if (amsgrad) {
      vv = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
      max_exp_avg_sq[i] = vv;
    }
    float denom = sqrtf(vv) * inv_bc2_sqrt + eps;
    param[i] = p - step_size * m / denom;
  }
  return SL_OK;
}
