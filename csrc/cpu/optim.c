/*
 * optim.c — optimizer updates, one call per parameter tensor, with PyTorch's exact semantics
 * (torch.optim.SGD and torch.optim.Adam / AdamW, single-tensor code path).
 *
 * The elementwise updates are independent, so they split over threads without changing the
 * result; scalars that depend only on the step (bias corrections) are computed in double once.
 */
#include <math.h>

#include "internal.h"

/* Below this many elements an update runs on one thread (~50 us of streaming; see strided.h). */
#define SL_OPTIM_PARALLEL_MIN 262144

sl_status sl_sgd_step(int64_t n, float lr, float momentum, float dampening, float weight_decay,
                      int32_t nesterov, int32_t init_momentum, float *param, const float *grad,
                      float *momentum_buf) {
  SL_ENTER();
  SL_CHECK_NONNEG(n);
  SL_CHECK_ARG(isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got %g", (double)lr);
  SL_CHECK_ARG(isfinite(momentum) && momentum >= 0, "momentum must be finite and >= 0, got %g",
               (double)momentum);
  SL_CHECK_ARG(isfinite(dampening), "dampening must be finite, got %g", (double)dampening);
  SL_CHECK_ARG(isfinite(weight_decay) && weight_decay >= 0,
               "weight_decay must be finite and >= 0, got %g", (double)weight_decay);
  SL_CHECK_ARG(nesterov == 0 || nesterov == 1, "nesterov must be 0 or 1, got %d", nesterov);
  SL_CHECK_ARG(init_momentum == 0 || init_momentum == 1, "init_momentum must be 0 or 1, got %d",
               init_momentum);
  SL_CHECK_ARG(!nesterov || (momentum > 0 && dampening == 0),
               "nesterov needs momentum > 0 and dampening 0 (got momentum %g, dampening %g)",
               (double)momentum, (double)dampening);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(param);
  SL_CHECK_PTR(grad);
  if (momentum != 0) SL_CHECK_PTR(momentum_buf);

  const float wd = weight_decay, mom = momentum, keep = 1.0f - dampening;
  if (momentum == 0) {
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = grad[i] + wd * param[i];
      param[i] -= lr * d;
    }
  } else if (init_momentum) {
    /* First step: the buffer starts as the gradient itself (no dampening), as in PyTorch. */
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = grad[i] + wd * param[i];
      float buf = d;
      momentum_buf[i] = buf;
      param[i] -= lr * (nesterov ? d + mom * buf : buf);
    }
  } else {
#pragma omp parallel for simd num_threads(sl_threads()) if (parallel: n > SL_OPTIM_PARALLEL_MIN) \
    schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float d = grad[i] + wd * param[i];
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
  SL_CHECK_NONNEG(n);
  SL_CHECK_ARG(isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got %g", (double)lr);
  SL_CHECK_ARG(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got %g", (double)beta1);
  SL_CHECK_ARG(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got %g", (double)beta2);
  SL_CHECK_ARG(isfinite(eps) && eps >= 0, "eps must be finite and >= 0, got %g", (double)eps);
  SL_CHECK_ARG(isfinite(weight_decay) && weight_decay >= 0,
               "weight_decay must be finite and >= 0, got %g", (double)weight_decay);
  SL_CHECK_ARG(decoupled_weight_decay == 0 || decoupled_weight_decay == 1,
               "decoupled_weight_decay must be 0 or 1, got %d", decoupled_weight_decay);
  SL_CHECK_ARG(amsgrad == 0 || amsgrad == 1, "amsgrad must be 0 or 1, got %d", amsgrad);
  SL_CHECK_ARG(step >= 1, "step must be >= 1 (the count including this update), got %lld",
               (long long)step);
  if (n == 0) return SL_OK;
  SL_CHECK_PTR(param);
  SL_CHECK_PTR(grad);
  SL_CHECK_PTR(exp_avg);
  SL_CHECK_PTR(exp_avg_sq);
  if (amsgrad) SL_CHECK_PTR(max_exp_avg_sq);

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
    float g = grad[i] + coupled_wd * param[i];
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
