/** sl_spmm_fwd and sl_spmm_fwd_fm (one signature, two layouts). */
const spmmFwd = {
  parameters: [
    "i32",
    "i32",
    "i32",
    "i64",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
  ],
  result: "i32",
} as const;

/** sl_spmm_bwd and sl_spmm_bwd_fm. */
const spmmBwd = {
  parameters: [
    "i32",
    "i32",
    "i32",
    "i64",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
    "pointer",
  ],
  result: "i32",
} as const;

/** sl_group_collapse and sl_group_collapse_bwd (one signature). */
const groupCollapse = {
  parameters: ["i32", "i32", "i64", "pointer", "pointer", "pointer", "i32", "pointer"],
  result: "i32",
} as const;

/** Sparse format conversions and sparse kernels (see csrc/include/sparselinear.h). */
export const sparseSymbols = {
  // sl_status sl_coo_to_csr(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *rows,
  //   const int32_t *cols, const float *values_in, int32_t *row_ptr, int32_t *col_idx,
  //   float *values_out, int64_t *perm, int64_t *nnz_out, int64_t *first_duplicate)
  sl_coo_to_csr: {
    parameters: [
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_csr_validate(int32_t n_rows, int32_t n_cols, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx)
  sl_csr_validate: { parameters: ["i32", "i32", "i64", "pointer", "pointer"], result: "i32" },
  // sl_status sl_csr_to_csc(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *row_ptr,
  //   const int32_t *col_idx, int32_t *col_ptr, int32_t *row_idx, int32_t *csc_to_csr)
  sl_csr_to_csc: {
    parameters: ["i32", "i32", "i64", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_spmm_fwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const float *values, const float *bias,
  //   const float *x, float *y)
  sl_spmm_fwd: spmmFwd,
  // sl_spmm_fwd_fm: the same arguments, x and y feature-major (xT, yT)
  sl_spmm_fwd_fm: spmmFwd,
  // sl_status sl_spmm_bwd_input(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *col_ptr, const int32_t *row_idx, const int32_t *csc_to_csr,
  //   const float *values, const float *dy, float *dx)
  sl_spmm_bwd_input: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_spmm_bwd_input_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const float *values, const float *dy,
  //   float *dx)
  sl_spmm_bwd_input_csr: {
    parameters: ["i32", "i32", "i32", "i64", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_spmm_bwd_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const float *values, const float *x,
  //   const float *dy, float *dx, float *dw)
  sl_spmm_bwd_csr: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_spmm_bwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const int32_t *col_ptr,
  //   const int32_t *row_idx, const int32_t *csc_to_csr, const float *values, const float *x,
  //   const float *dy, float *dx, float *dw, float *db)   (db: NULL for none)
  sl_spmm_bwd: spmmBwd,
  // sl_spmm_bwd_fm: the same arguments, x, dy and dx feature-major (xT, dyT, dxT)
  sl_spmm_bwd_fm: spmmBwd,
  // sl_status sl_spmm_fwd_permuted(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const int32_t *csr_to_csc,
  //   const float *values, const float *bias, const float *x, float *y)   (CPU library only)
  sl_spmm_fwd_permuted: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_spmm_bwd_csc(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *col_ptr, const int32_t *row_idx, const float *values, const float *x,
  //   const float *dy, float *dx, float *dw, float *db)   (CPU library only; db: NULL for none)
  sl_spmm_bwd_csc: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  // sl_status sl_sddmm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
  //   const int32_t *row_ptr, const int32_t *col_idx, const float *x, const float *dy, float *dw)
  sl_sddmm: {
    parameters: ["i32", "i32", "i32", "i64", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // sl_status sl_group_collapse(int32_t n_in, int32_t n_out, int64_t nnz, const int32_t *row_ptr,
  //   const int32_t *col_idx, const float *values, int32_t size, float *g)
  sl_group_collapse: groupCollapse,
  // sl_group_collapse_bwd: the same arguments with dg [size, n_in] in and dw [nnz] out
  sl_group_collapse_bwd: groupCollapse,
  // sl_status sl_bias_grad(int32_t batch, int32_t n_out, const float *dy, float *db)
  sl_bias_grad: { parameters: ["i32", "i32", "pointer", "pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;
