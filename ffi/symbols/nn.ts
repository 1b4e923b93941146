/** Layer kernels: LayerNorm, cross-entropy, MSE, dropout, per-feature scale/shift. */
export const nnSymbols = {
  // sl_status sl_layer_norm_fwd(int64_t rows, int32_t n, float eps, const float *x,
  //   const float *gamma, const float *beta, int32_t relu, float *y, float *mean, float *rstd)
  sl_layer_norm_fwd: {
    parameters: [
      "i64",
      "i32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_layer_norm_bwd(int64_t rows, int32_t n, const float *x, const float *mean,
  //   const float *rstd, const float *gamma, const float *beta, int32_t relu, const float *dy,
  //   float *dx, float *dgamma, float *dbeta)
  sl_layer_norm_bwd: {
    parameters: [
      "i64",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_cross_entropy_fwd(int32_t batch, int32_t n_classes, const float *logits,
  //   const int32_t *labels, int32_t reduction, float *loss, float *lse)
  sl_cross_entropy_fwd: {
    parameters: ["i32", "i32", "pointer", "pointer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_cross_entropy_bwd(int32_t batch, int32_t n_classes, const float *logits,
  //   const int32_t *labels, const float *lse, const float *dloss, int32_t dloss_stride,
  //   float scale, float *dlogits)
  sl_cross_entropy_bwd: {
    parameters: ["i32", "i32", "pointer", "pointer", "pointer", "pointer", "i32", "f32", "pointer"],
    result: "i32",
  },
  // sl_status sl_mse_fwd(int64_t n, const float *pred, const float *target, int32_t reduction,
  //   float *loss)
  sl_mse_fwd: { parameters: ["i64", "pointer", "pointer", "i32", "pointer"], result: "i32" },
  // sl_status sl_mse_bwd(int64_t n, const float *pred, const float *target, const float *dloss,
  //   int32_t dloss_stride, float scale, float *dpred, float *dtarget)
  sl_mse_bwd: {
    parameters: ["i64", "pointer", "pointer", "pointer", "i32", "f32", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_dropout_fwd(int64_t n, double p, uint64_t seed, const float *x, float *y)
  sl_dropout_fwd: { parameters: ["i64", "f64", "u64", "pointer", "pointer"], result: "i32" },
  // sl_status sl_dropout_bwd(int64_t n, double p, uint64_t seed, const float *dy, float *dx)
  sl_dropout_bwd: { parameters: ["i64", "f64", "u64", "pointer", "pointer"], result: "i32" },
  // sl_status sl_scale_shift_fwd(int64_t rows, int32_t n, const float *x, const float *scale,
  //   const float *shift, float *y)
  sl_scale_shift_fwd: {
    parameters: ["i64", "i32", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_scale_shift_bwd(int64_t rows, int32_t n, const float *x, const float *scale,
  //   const float *dy, float *dx, float *dscale, float *dshift)
  sl_scale_shift_bwd: {
    parameters: ["i64", "i32", "pointer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
