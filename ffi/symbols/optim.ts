/** Optimizer updates: one call per parameter tensor. */
export const optimSymbols = {
  // sl_status sl_sgd_step(int64_t n, float lr, float momentum, float dampening,
  //   float weight_decay, int32_t nesterov, int32_t init_momentum, float *param,
  //   const float *grad, float *momentum_buf)
  sl_sgd_step: {
    parameters: ["i64", "f32", "f32", "f32", "f32", "i32", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_adam_step(int64_t n, float lr, float beta1, float beta2, float eps,
  //   float weight_decay, int32_t decoupled_weight_decay, int32_t amsgrad, int64_t step,
  //   float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
  //   float *max_exp_avg_sq)
  sl_adam_step: {
    parameters: [
      "i64",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
