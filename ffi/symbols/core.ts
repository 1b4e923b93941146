/** Core entry points: errors, ABI version, threads, matmul precision. */
export const coreSymbols = {
  // const char *sl_last_error(void)
  sl_last_error: { parameters: [], result: "pointer" },
  // int32_t sl_abi_version(void)
  sl_abi_version: { parameters: [], result: "i32" },
  // sl_status sl_set_num_threads(int32_t n)
  sl_set_num_threads: { parameters: ["i32"], result: "i32" },
  // int32_t sl_get_num_threads(void)
  sl_get_num_threads: { parameters: [], result: "i32" },
  // sl_status sl_set_matmul_precision(int32_t precision)
  sl_set_matmul_precision: { parameters: ["i32"], result: "i32" },
  // int32_t sl_get_matmul_precision(void)
  sl_get_matmul_precision: { parameters: [], result: "i32" },
  // int32_t sl_has_cblas(void)
  sl_has_cblas: { parameters: [], result: "i32" },
  // int64_t sl_scratch_peak_bytes(int32_t reset)
  sl_scratch_peak_bytes: { parameters: ["i32"], result: "i64" },
  // sl_status sl_advise_huge_pages(void *data, int64_t bytes)
  sl_advise_huge_pages: { parameters: ["pointer", "i64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;
