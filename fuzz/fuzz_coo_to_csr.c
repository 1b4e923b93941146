/*
 * fuzz_coo_to_csr.c — sl_coo_to_csr on random COO lists (duplicates, out-of-range entries,
 * huge column counts that take the comparison-sort path), checked against a naive build; the
 * result must then pass sl_csr_validate and convert with sl_csr_to_csc to the naive CSC view.
 */
#include "fuzz_common.h"

typedef struct {
  int32_t row, col;
  int64_t index;
} coo_entry;

static int cmp_entry(const void *a, const void *b) {
  const coo_entry *x = a, *y = b;
  if (x->row != y->row) return x->row < y->row ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  const int32_t n_rows = (int32_t)fz_range(&in, 0, 40);
  /* Mostly small widths (counting sort by column); sometimes huge (per-row quicksort). */
  const int32_t n_cols =
      fz_chance(&in, 64) ? (int32_t)fz_range(&in, 5000, INT32_MAX) : (int32_t)fz_range(&in, 0, 40);
  const int64_t nnz = fz_range(&in, 0, 300);
  const int with_values = fz_chance(&in, 160);
  const int with_perm = fz_chance(&in, 160);
  const int bad_chance = fz_chance(&in, 32) ? 8 : 0;

  int32_t *rows = FZ_NEW(int32_t, nnz), *cols = FZ_NEW(int32_t, nnz);
  float *values_in = with_values ? FZ_NEW(float, nnz) : NULL;
  int first_bad = -1;
  for (int64_t e = 0; e < nnz; e++) {
    /* Narrow column choices force duplicates. */
    const int32_t col_bound = n_cols > 64 && fz_chance(&in, 128) ? 64 : n_cols;
    rows[e] = fz_index(&in, n_rows, bad_chance);
    cols[e] = fz_index(&in, col_bound, bad_chance);
    if (values_in) values_in[e] = fz_small_float(&in);
    if (first_bad < 0 && ((uint32_t)rows[e] >= (uint32_t)n_rows ||
                          (uint32_t)cols[e] >= (uint32_t)n_cols))
      first_bad = (int)e;
  }

  int32_t *row_ptr = FZ_NEW(int32_t, n_rows + 1), *col_idx = FZ_NEW(int32_t, nnz);
  float *values_out = with_values ? FZ_NEW(float, nnz) : NULL;
  int64_t *perm = with_perm ? FZ_NEW(int64_t, nnz) : NULL;
  for (int32_t r = 0; r <= n_rows; r++) row_ptr[r] = -7;
  int64_t nnz_out = -7, first_dup = -7;
  sl_status st = sl_coo_to_csr(n_rows, n_cols, nnz, rows, cols, values_in, row_ptr, col_idx,
                               values_out, perm, &nnz_out, &first_dup);
  if (first_bad >= 0) {
    FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "status %d for a bad entry at %d", st, first_bad);
    FZ_CHECK_MESSAGE("sl_coo_to_csr");
    char want[64];
    snprintf(want, sizeof want, "[%d] = ", first_bad);
    FZ_CHECK(strstr(sl_last_error(), want) != NULL, "message does not name entry %d", first_bad);
    FZ_CHECK(nnz_out == -7 && first_dup == -7 && row_ptr[0] == -7, "a rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "status %d", st);
    /* Naive: sort (row, col, index); the first of each equal (row, col) run is the entry. */
    coo_entry *sorted = FZ_NEW(coo_entry, nnz);
    for (int64_t e = 0; e < nnz; e++) sorted[e] = (coo_entry){rows[e], cols[e], e};
    qsort(sorted, (size_t)nnz, sizeof *sorted, cmp_entry);
    int64_t out = 0, dup = -1;
    int32_t *want_ptr = FZ_NEW(int32_t, n_rows + 1);
    memset(want_ptr, 0, sizeof(int32_t) * ((size_t)n_rows + 1));
    for (int64_t i = 0; i < nnz;) {
      int64_t j = i;
      float sum = 0.0f;
      /* Duplicates are summed in COO order, the order of the sorted run. */
      for (; j < nnz && sorted[j].row == sorted[i].row && sorted[j].col == sorted[i].col; j++) {
        if (values_in) sum += values_in[sorted[j].index];
        if (j > i && (dup < 0 || sorted[j].index < dup)) dup = sorted[j].index;
      }
      FZ_CHECK(out < nnz_out, "too few entries: %lld", (long long)nnz_out);
      FZ_CHECK(col_idx[out] == sorted[i].col, "col_idx[%lld]", (long long)out);
      if (perm) FZ_CHECK(perm[out] == sorted[i].index, "perm[%lld]", (long long)out);
      if (values_out)
        FZ_CHECK(memcmp(&values_out[out], &sum, sizeof sum) == 0, "values_out[%lld] = %g vs %g",
                 (long long)out, values_out[out], sum);
      want_ptr[sorted[i].row + 1]++;
      out++;
      i = j;
    }
    FZ_CHECK(nnz_out == out, "nnz_out %lld vs %lld", (long long)nnz_out, (long long)out);
    FZ_CHECK(first_dup == dup, "first_duplicate %lld vs %lld", (long long)first_dup,
             (long long)dup);
    for (int32_t r = 0; r < n_rows; r++) want_ptr[r + 1] += want_ptr[r];
    FZ_CHECK(memcmp(want_ptr, row_ptr, sizeof(int32_t) * ((size_t)n_rows + 1)) == 0, "row_ptr");

    /* The built pattern is valid, and its CSC view matches a naive transpose. */
    FZ_CHECK(sl_csr_validate(n_rows, n_cols, nnz_out, row_ptr, col_idx) == SL_OK, "validate");
    if (n_cols <= 64) {
      int32_t *col_ptr = FZ_NEW(int32_t, n_cols + 1), *row_idx = FZ_NEW(int32_t, nnz_out),
              *csc_to_csr = FZ_NEW(int32_t, nnz_out);
      FZ_CHECK(sl_csr_to_csc(n_rows, n_cols, nnz_out, row_ptr, col_idx, col_ptr, row_idx,
                             csc_to_csr) == SL_OK,
               "csr_to_csc");
      int64_t pos = 0;
      FZ_CHECK(col_ptr[0] == 0, "col_ptr[0]");
      for (int32_t c = 0; c < n_cols; c++) {
        for (int32_t r = 0; r < n_rows; r++)
          for (int32_t k = row_ptr[r]; k < row_ptr[r + 1]; k++)
            if (col_idx[k] == c) {
              FZ_CHECK(row_idx[pos] == r && csc_to_csr[pos] == k, "CSC entry %lld",
                       (long long)pos);
              pos++;
            }
        FZ_CHECK(col_ptr[c + 1] == pos, "col_ptr[%d]", c + 1);
      }
      free(col_ptr);
      free(row_idx);
      free(csc_to_csr);
    }
    free(want_ptr);
    free(sorted);
  }
  free(rows);
  free(cols);
  free(values_in);
  free(row_ptr);
  free(col_idx);
  free(values_out);
  free(perm);
  return 0;
}
