/** Level-1 vector operations used by autograd (fill, axpy, copy). */
export const vectorSymbols = {
  // sl_status sl_fill(int64_t n, float value, float *x)
  sl_fill: { parameters: ["i64", "f32", "pointer"], result: "i32" },
  // sl_status sl_axpy(int64_t n, float alpha, const float *x, float *y)
  sl_axpy: { parameters: ["i64", "f32", "pointer", "pointer"], result: "i32" },
  // sl_status sl_copy(int64_t n, const float *x, float *y)
  sl_copy: { parameters: ["i64", "pointer", "pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;
