/** Dynamic-sparsity kernels: top-k selection, dense-gradient top-k, sampling, CSR rebuild. */
export const topkSymbols = {
  // sl_status sl_topk(int64_t n, const float *scores, int64_t k, int32_t flags, int32_t *out_idx)
  sl_topk: { parameters: ["i64", "pointer", "i64", "i32", "pointer"], result: "i32" },
  // sl_status sl_dense_grad_topk(int32_t batch, int32_t n_in, int32_t n_out, const float *x,
  //   const float *dy, int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx, int64_t k,
  //   int64_t max_size, int32_t *out_rows, int32_t *out_cols, float *out_grad)
  sl_dense_grad_topk: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "i64",
      "i64",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_sample_absent(int32_t n_rows, int32_t n_cols, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, int64_t k, uint64_t seed,
  //   int32_t *out_rows, int32_t *out_cols)
  sl_sample_absent: {
    parameters: ["i32", "i32", "i64", "pointer", "pointer", "i64", "u64", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_csr_drop_grow(int32_t n_rows, int32_t n_cols, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const float *values, int64_t n_drop,
  //   const int32_t *drop_idx, int64_t n_grow, const int32_t *grow_rows,
  //   const int32_t *grow_cols, int32_t flags, int32_t *new_row_ptr, int32_t *new_col_idx,
  //   float *new_values, int32_t *old_index)
  sl_csr_drop_grow: {
    parameters: [
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "i64",
      "pointer",
      "i64",
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
} as const satisfies Deno.ForeignLibraryInterface;
