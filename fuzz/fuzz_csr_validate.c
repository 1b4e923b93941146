/*
 * fuzz_csr_validate.c — sl_csr_validate and sl_csr_to_csc on raw, possibly corrupt CSR arrays
 * (bad offsets, wrong nnz, columns out of range, unsorted or repeated): the status must match a
 * naive check, a rejected sl_csr_to_csc writes nothing, and an accepted one matches a naive
 * transpose.
 */
#include "fuzz_common.h"

/* Naive sl_csr_validate: the status it must return. */
static sl_status naive_validate(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *ptr,
                                const int32_t *col, int check_order) {
  if (n_rows < 0 || n_cols < 0 || nnz < 0) return SL_E_INVALID_ARGUMENT;
  if (nnz > INT32_MAX) return SL_E_OVERFLOW;
  if (ptr[0] != 0) return SL_E_INVALID_ARGUMENT;
  for (int32_t r = 0; r < n_rows; r++)
    if (ptr[r + 1] < ptr[r]) return SL_E_INVALID_ARGUMENT;
  if (ptr[n_rows] != nnz) return SL_E_INVALID_ARGUMENT;
  for (int32_t r = 0; r < n_rows; r++) {
    for (int32_t k = ptr[r]; k < ptr[r + 1]; k++) {
      if (col[k] < 0 || col[k] >= n_cols) return SL_E_INDEX_OUT_OF_RANGE;
      if (check_order && k > ptr[r] && col[k] <= col[k - 1])
        return col[k] == col[k - 1] ? SL_E_DUPLICATE : SL_E_INVALID_ARGUMENT;
    }
  }
  return SL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  int32_t n_rows = (int32_t)fz_range(&in, 0, 30);
  int32_t n_cols = (int32_t)fz_range(&in, 0, 30);

  /* A valid pattern first: each row a random sorted subset of the columns. */
  int32_t *ptr = FZ_NEW(int32_t, n_rows + 1);
  int32_t *tmp = FZ_NEW(int32_t, (int64_t)n_rows * n_cols);
  int64_t nnz = 0;
  ptr[0] = 0;
  for (int32_t r = 0; r < n_rows; r++) {
    const int density = fz_u8(&in);
    for (int32_t c = 0; c < n_cols; c++)
      if (fz_u8(&in) < density) tmp[nnz++] = c;
    ptr[r + 1] = (int32_t)nnz;
  }
  int32_t *col = FZ_NEW(int32_t, nnz);
  memcpy(col, tmp, (size_t)nnz * sizeof *col);
  free(tmp);

  /* Then a few corruptions. */
  const int corruptions = (int)fz_range(&in, 0, 3);
  for (int i = 0; i < corruptions; i++) {
    switch (fz_u8(&in) % 4) {
      case 0:
        ptr[fz_range(&in, 0, n_rows)] = (int32_t)fz_range(&in, -2, nnz + 2);
        break;
      case 1:
        if (nnz > 0) col[fz_range(&in, 0, nnz - 1)] = fz_index(&in, n_cols, 64);
        break;
      case 2:
        if (nnz > 1) { /* swap or copy within a row: unsorted or duplicated */
          int64_t k = fz_range(&in, 1, nnz - 1);
          col[k] = fz_chance(&in, 128) || col[k - 1] == INT32_MIN ? col[k - 1] : col[k - 1] - 1;
        }
        break;
      default: /* a size that disagrees with the arrays' meaning, never larger than them */
        if (fz_chance(&in, 128) && nnz > 0) nnz -= 1;
        else if (fz_chance(&in, 32)) n_cols = (int32_t)fz_range(&in, -3, n_cols);
        else if (n_rows > 0) n_rows -= 1;
        break;
    }
  }
  /* Rarely, sizes that must be rejected before any array is read. */
  int64_t nnz_arg = nnz;
  if (fz_chance(&in, 4)) nnz_arg = fz_chance(&in, 128) ? (int64_t)INT32_MAX + 1 : -1;
  if (fz_chance(&in, 4)) n_rows = -1;

  sl_status want = n_rows < 0 ? SL_E_INVALID_ARGUMENT
                              : naive_validate(n_rows, n_cols, nnz_arg, ptr, col, 1);
  sl_status got = sl_csr_validate(n_rows, n_cols, nnz_arg, ptr, col);
  FZ_CHECK(got == want, "sl_csr_validate returned %d, expected %d", got, want);
  if (got != SL_OK) FZ_CHECK_MESSAGE("sl_csr_validate");

  /* The CSC view only needs valid offsets and columns in range (order is not required). */
  want = n_rows < 0 ? SL_E_INVALID_ARGUMENT
                    : naive_validate(n_rows, n_cols, nnz_arg, ptr, col, 0);
  const int32_t csc_cols = n_cols > 0 ? n_cols : 0;
  int32_t *col_ptr = FZ_NEW(int32_t, csc_cols + 1), *row_idx = FZ_NEW(int32_t, nnz),
          *csc_to_csr = FZ_NEW(int32_t, nnz);
  for (int32_t c = 0; c <= csc_cols; c++) col_ptr[c] = -5;
  for (int64_t k = 0; k < nnz; k++) row_idx[k] = csc_to_csr[k] = -5;
  got = sl_csr_to_csc(n_rows, n_cols, nnz_arg, ptr, col, col_ptr, row_idx, csc_to_csr);
  FZ_CHECK(got == want, "sl_csr_to_csc returned %d, expected %d", got, want);
  if (got != SL_OK) {
    FZ_CHECK_MESSAGE("sl_csr_to_csc");
    for (int32_t c = 0; c <= csc_cols; c++) FZ_CHECK(col_ptr[c] == -5, "rejected call wrote");
  } else {
    int64_t pos = 0;
    FZ_CHECK(col_ptr[0] == 0, "col_ptr[0] = %d", col_ptr[0]);
    for (int32_t c = 0; c < n_cols; c++) {
      for (int32_t r = 0; r < n_rows; r++)
        for (int32_t k = ptr[r]; k < ptr[r + 1]; k++)
          if (col[k] == c) {
            FZ_CHECK(row_idx[pos] == r && csc_to_csr[pos] == k, "CSC entry %lld",
                     (long long)pos);
            pos++;
          }
      FZ_CHECK(col_ptr[c + 1] == pos, "col_ptr[%d] = %d, expected %lld", c + 1, col_ptr[c + 1],
               (long long)pos);
    }
  }
  free(ptr);
  free(col);
  free(col_ptr);
  free(row_idx);
  free(csc_to_csr);
  return 0;
}
