/** K-Winners activation sparsity kernels (see csrc/include/sparselinear.h, "nn kernels"). */
export const kwinnersSymbols = {
  // sl_status sl_kwinners_fwd(int64_t rows, int32_t n, int32_t k, float boost_strength,
  //   float duty_alpha, const float *x, float *duty_cycle, float *y, int32_t *winners,
  //   int32_t *win_counts)
  sl_kwinners_fwd: {
    parameters: [
      "i64",
      "i32",
      "i32",
      "f32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_kwinners_bwd(int64_t rows, int32_t n, int32_t k, const int32_t *winners,
  //   const float *dy, float *dx)
  sl_kwinners_bwd: {
    parameters: ["i64", "i32", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;
