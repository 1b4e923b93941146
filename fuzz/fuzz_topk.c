/*
 * fuzz_topk.c — the dynamic-sparsity kernels of csrc/cpu/topk.c: sl_topk (top-k / bottom-k by
 * value or magnitude, ties, -0, inf, NaN), sl_dense_grad_topk (chunked growth with random
 * chunk sizes), sl_sample_absent and sl_csr_drop_grow, on random and corrupt inputs, each
 * checked against a naive reference; rejected calls must write nothing.
 */
#include "fuzz_common.h"

/* ------------------------------------------------------------------ helpers ---- */

static const double *rank_key;
static int cmp_rank(const void *a, const void *b) {
  const int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
  if (rank_key[i] != rank_key[j]) return rank_key[i] > rank_key[j] ? -1 : 1;
  return (i > j) - (i < j);
}
static int cmp_i64(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A random valid CSR pattern of n_rows x n_cols; returns nnz. */
static int64_t random_pattern(fz_in *in, int32_t n_rows, int32_t n_cols, int32_t *row_ptr,
                              int32_t **col_out) {
  int32_t *col = FZ_NEW(int32_t, (int64_t)n_rows * n_cols);
  const int density = fz_u8(in);
  int64_t nnz = 0;
  row_ptr[0] = 0;
  /* Once the input is used up (big shapes), the generator rolls at a density of 1/8. */
  uint32_t state = 0x165667B1u ^ (uint32_t)n_cols;
  for (int32_t r = 0; r < n_rows; r++) {
    for (int32_t c = 0; c < n_cols; c++)
      if (in->n > 0 ? fz_u8(in) < density : fz_gen_u8(&state) < 32) col[nnz++] = c;
    row_ptr[r + 1] = (int32_t)nnz;
  }
  *col_out = col;
  return nnz;
}

/* ------------------------------------------------------------------- sl_topk ---- */

static void fuzz_topk(fz_in *in) {
  const int64_t n = fz_rare(in) ? fz_range(in, 65536, 66000) : fz_range(in, 0, 300);
  const int32_t flags = fz_chance(in, 8) ? (int32_t)fz_u8(in) : (int32_t)fz_range(in, 0, 3);
  int64_t k = fz_range(in, 0, n);
  if (fz_chance(in, 8)) k = fz_chance(in, 128) ? n + 1 : -1;
  float *s = FZ_NEW(float, n);
  const int alphabet = (int)fz_range(in, 1, 6); /* small alphabets: many ties */
  int64_t first_nan = -1;
  for (int64_t i = 0; i < n; i++) {
    s[i] = in->n > 0 ? (alphabet < 6 ? (float)((int)fz_range(in, 0, alphabet) - alphabet / 2)
                                     : fz_any_float(in))
                     : (float)((i * 7919) % 13) - 6.0f;
    if (s[i] == 0.0f && (i & 1)) s[i] = -0.0f;
    if (isnan(s[i]) && first_nan < 0) first_nan = i;
  }
  const int64_t out_len = k > 0 && k <= n ? k : 0;
  int32_t *out = FZ_NEW(int32_t, out_len);
  for (int64_t j = 0; j < out_len; j++) out[j] = -3;
  sl_status st = sl_topk(n, s, k, flags, out);
  if (k < 0 || k > n || (flags & ~3)) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_topk accepted k=%lld flags=%d", (long long)k, flags);
    FZ_CHECK_MESSAGE("sl_topk");
  } else if (first_nan >= 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_topk accepted a NaN");
    char want[64];
    snprintf(want, sizeof want, "scores[%lld] is NaN", (long long)first_nan);
    FZ_CHECK(strstr(sl_last_error(), want) != NULL, "message does not name the first NaN");
    for (int64_t j = 0; j < out_len; j++) FZ_CHECK(out[j] == -3, "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_topk: status %d", st);
    /* O(n) characterisation of the exact top-k with ties to the lower index: ascending distinct
     * indices; every selected key >= every unselected key; among keys equal to the threshold,
     * the selected indices all come before the unselected ones. */
    unsigned char *picked = FZ_NEW(unsigned char, n);
    memset(picked, 0, (size_t)n);
    for (int64_t j = 0; j < k; j++) {
      FZ_CHECK(out[j] >= 0 && out[j] < n && (j == 0 || out[j] > out[j - 1]),
               "out[%lld] = %d is not ascending in [0, n)", (long long)j, out[j]);
      picked[out[j]] = 1;
    }
    double min_sel = INFINITY, max_unsel = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
      double v = (flags & SL_TOPK_ABS) ? fabs((double)s[i]) : (double)s[i];
      if (flags & SL_TOPK_SMALLEST) v = -v;
      if (picked[i] && v < min_sel) min_sel = v;
      if (!picked[i] && v > max_unsel) max_unsel = v;
    }
    if (k > 0 && k < n) {
      FZ_CHECK(min_sel >= max_unsel, "a better score was left out (%g < %g)", min_sel, max_unsel);
      if (min_sel == max_unsel) {
        int64_t last_sel = -1, first_unsel = n;
        for (int64_t i = 0; i < n; i++) {
          double v = (flags & SL_TOPK_ABS) ? fabs((double)s[i]) : (double)s[i];
          if (flags & SL_TOPK_SMALLEST) v = -v;
          if (v != min_sel) continue;
          if (picked[i]) last_sel = i;
          else if (i < first_unsel) first_unsel = i;
        }
        FZ_CHECK(last_sel < first_unsel, "tie not broken by lower index (%lld vs %lld)",
                 (long long)last_sel, (long long)first_unsel);
      }
    }
    free(picked);
  }
  free(s);
  free(out);
}

/* -------------------------------------------------------- sl_dense_grad_topk ---- */

/* An integer in [0, hi] from the input, or from the generator once the input is used up. */
static int small_int(fz_in *in, uint32_t *state, int hi) {
  return in->n > 0 ? (int)fz_range(in, 0, hi) : fz_gen_u8(state) % (hi + 1);
}

static void fuzz_dense_grad_topk(fz_in *in) {
  /* Now and then 2+ chunks of 65,536+ entries, where the key pass and the selection split a
   * chunk over threads, and from the second chunk on each thread packs its share of the
   * entries that beat the running top-k. */
  const int huge = fz_rare(in);
  const int32_t batch = huge ? 1 + (int32_t)fz_range(in, 0, 4) : (int32_t)fz_range(in, 0, 5);
  const int32_t n_in = huge ? 512 + (int32_t)fz_range(in, 0, 188) : (int32_t)fz_range(in, 0, 24);
  const int32_t n_out = huge ? 512 + (int32_t)fz_range(in, 0, 188) : (int32_t)fz_range(in, 0, 24);
  int32_t *row_ptr = FZ_NEW(int32_t, n_out + 1), *col_idx;
  const int64_t nnz = random_pattern(in, n_out, n_in, row_ptr, &col_idx);
  const int64_t total = (int64_t)n_in * n_out, absent = total - nnz;
  float *x = FZ_NEW(float, (int64_t)batch * n_in), *dy = FZ_NEW(float, (int64_t)batch * n_out);
  /* Small integers: G is exact, so the ranking and its ties are unambiguous. */
  uint32_t state = 0xD3A2646Cu ^ (uint32_t)n_in;
  for (int64_t i = 0; i < (int64_t)batch * n_in; i++) x[i] = (float)(small_int(in, &state, 6) - 3);
  for (int64_t i = 0; i < (int64_t)batch * n_out; i++)
    dy[i] = (float)(small_int(in, &state, 4) - 2);
  const int with_nan = batch > 0 && n_in > 0 && fz_chance(in, 8);
  if (with_nan) x[fz_range(in, 0, (int64_t)batch * n_in - 1)] = NAN;
  int64_t k = huge ? absent / (32 + fz_u8(in) % 200) : fz_range(in, 0, absent);
  if (fz_chance(in, 8)) k = absent + 1;
  int64_t max_size = huge                ? 65536 + n_in + fz_range(in, 0, 65536)
                     : fz_chance(in, 200) ? fz_range(in, n_in, total + 3)
                                          : fz_range(in, -1, n_in);
  int corrupt_col = nnz > 0 && fz_chance(in, 16);
  if (corrupt_col) col_idx[fz_range(in, 0, nnz - 1)] = fz_index(in, n_in, 255);

  const int64_t out_len = k > 0 && k <= absent ? k : 0;
  int32_t *rows = FZ_NEW(int32_t, out_len), *cols = FZ_NEW(int32_t, out_len);
  float *grads = fz_chance(in, 128) ? FZ_NEW(float, out_len) : NULL;
  for (int64_t j = 0; j < out_len; j++) rows[j] = -3;
  sl_status st = sl_dense_grad_topk(batch, n_in, n_out, x, dy, nnz, row_ptr, col_idx, k,
                                    max_size, rows, cols, grads);
  if (st != SL_OK) {
    FZ_CHECK_MESSAGE("sl_dense_grad_topk");
    for (int64_t j = 0; j < out_len; j++) FZ_CHECK(rows[j] == -3, "rejected call wrote");
  }
  if (k > absent || max_size < n_in || max_size < 1) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT || (corrupt_col && st != SL_OK), "status %d", st);
  } else if (!corrupt_col && !with_nan) {
    FZ_CHECK(st == SL_OK, "sl_dense_grad_topk: status %d", st);
    /* Naive: rank absent positions by |G| descending, then position ascending. */
    double *g = FZ_NEW(double, total), *key = FZ_NEW(double, total);
    int64_t *order = FZ_NEW(int64_t, absent);
    unsigned char *present = FZ_NEW(unsigned char, total);
    memset(present, 0, (size_t)total);
    for (int32_t o = 0; o < n_out; o++)
      for (int32_t p = row_ptr[o]; p < row_ptr[o + 1]; p++)
        present[(int64_t)o * n_in + col_idx[p]] = 1;
    int64_t m = 0;
    for (int32_t o = 0; o < n_out; o++)
      for (int32_t i = 0; i < n_in; i++) {
        double s = 0.0;
        for (int32_t b = 0; b < batch; b++)
          s += (double)dy[(int64_t)b * n_out + o] * x[(int64_t)b * n_in + i];
        const int64_t q = (int64_t)o * n_in + i;
        g[q] = s;
        key[q] = fabs(s);
        if (!present[q]) order[m++] = q;
      }
    rank_key = key;
    qsort(order, (size_t)absent, sizeof *order, cmp_rank);
    qsort(order, (size_t)k, sizeof *order, cmp_i64);
    for (int64_t j = 0; j < k; j++) {
      const int64_t q = (int64_t)rows[j] * n_in + cols[j];
      FZ_CHECK(q == order[j], "position %lld = (%d, %d), expected %lld", (long long)j, rows[j],
               cols[j], (long long)order[j]);
      if (grads) FZ_CHECK(grads[j] == (float)g[q], "out_grad[%lld]", (long long)j);
    }
    free(g);
    free(key);
    free(order);
    free(present);
  }
  free(row_ptr);
  free(col_idx);
  free(x);
  free(dy);
  free(rows);
  free(cols);
  free(grads);
}

/* ---------------------------------------------------------- sl_sample_absent ---- */

static void fuzz_sample_absent(fz_in *in) {
  const int32_t n_rows = (int32_t)fz_range(in, 0, 30), n_cols = (int32_t)fz_range(in, 0, 30);
  int32_t *row_ptr = FZ_NEW(int32_t, n_rows + 1), *col_idx;
  const int64_t nnz = random_pattern(in, n_rows, n_cols, row_ptr, &col_idx);
  const int64_t absent = (int64_t)n_rows * n_cols - nnz;
  int64_t k = fz_chance(in, 8) ? absent + 1 : fz_range(in, 0, absent);
  const uint64_t seed = fz_u64(in);
  const int64_t out_len = k <= absent ? k : 0;
  int32_t *rows = FZ_NEW(int32_t, out_len), *cols = FZ_NEW(int32_t, out_len);
  sl_status st = sl_sample_absent(n_rows, n_cols, nnz, row_ptr, col_idx, k, seed, rows, cols);
  if (k > absent) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "status %d", st);
    FZ_CHECK_MESSAGE("sl_sample_absent");
  } else {
    FZ_CHECK(st == SL_OK, "sl_sample_absent: status %d", st);
    unsigned char *taken = FZ_NEW(unsigned char, (int64_t)n_rows * n_cols);
    memset(taken, 0, (size_t)n_rows * (size_t)n_cols);
    for (int32_t r = 0; r < n_rows; r++)
      for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; p++) taken[(int64_t)r * n_cols + col_idx[p]] = 1;
    int64_t prev = -1;
    for (int64_t j = 0; j < k; j++) {
      FZ_CHECK(rows[j] >= 0 && rows[j] < n_rows && cols[j] >= 0 && cols[j] < n_cols,
               "sample %lld out of range", (long long)j);
      const int64_t q = (int64_t)rows[j] * n_cols + cols[j];
      FZ_CHECK(q > prev, "samples not in row-major order or repeated at %lld", (long long)j);
      FZ_CHECK(!taken[q], "sample %lld is in the pattern", (long long)j);
      prev = q;
    }
    /* Deterministic: the same seed gives the same samples. */
    int32_t *rows2 = FZ_NEW(int32_t, out_len), *cols2 = FZ_NEW(int32_t, out_len);
    FZ_CHECK(sl_sample_absent(n_rows, n_cols, nnz, row_ptr, col_idx, k, seed, rows2, cols2) ==
                 SL_OK,
             "second call");
    FZ_CHECK(memcmp(rows, rows2, (size_t)k * 4) == 0 && memcmp(cols, cols2, (size_t)k * 4) == 0,
             "same seed, different samples");
    free(rows2);
    free(cols2);
    free(taken);
  }
  free(row_ptr);
  free(col_idx);
  free(rows);
  free(cols);
}

/* ---------------------------------------------------------- sl_csr_drop_grow ---- */

static void fuzz_drop_grow(fz_in *in) {
  const int32_t n_rows = (int32_t)fz_range(in, 0, 20), n_cols = (int32_t)fz_range(in, 0, 20);
  int32_t *row_ptr = FZ_NEW(int32_t, n_rows + 1), *col_idx;
  const int64_t nnz = random_pattern(in, n_rows, n_cols, row_ptr, &col_idx);
  const int64_t total = (int64_t)n_rows * n_cols;
  float *values = FZ_NEW(float, nnz);
  for (int64_t k = 0; k < nnz; k++) values[k] = (float)k + 0.5f;
  const int32_t flags = fz_chance(in, 8) ? (int32_t)fz_u8(in) : (int32_t)fz_range(in, 0, 1);

  /* Drops: distinct CSR entries (sometimes a repeat or an index out of range). */
  unsigned char *dropped = FZ_NEW(unsigned char, nnz);
  memset(dropped, 0, (size_t)nnz);
  int64_t n_drop = fz_range(in, 0, nnz);
  int32_t *drop_idx = FZ_NEW(int32_t, n_drop);
  int bad = 0;
  for (int64_t d = 0; d < n_drop; d++) {
    int32_t e = (int32_t)fz_range(in, 0, nnz - 1);
    for (int64_t t = 0; t < nnz && dropped[e]; t++) e = (int32_t)((e + 1) % nnz);
    if (fz_chance(in, 4)) e = fz_index(in, (int32_t)nnz, 255); /* out of range or repeated */
    drop_idx[d] = e;
    if ((uint32_t)e >= (uint64_t)nnz || dropped[e]) bad = 1;
    else dropped[e] = 1;
  }
  /* Grows: distinct absent-or-dropped positions, in random order (sometimes a conflict). */
  unsigned char *state = FZ_NEW(unsigned char, total); /* 0 absent, 1 kept, 2 dropped */
  memset(state, 0, (size_t)total);
  for (int32_t r = 0; r < n_rows; r++)
    for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; p++)
      state[(int64_t)r * n_cols + col_idx[p]] = dropped[p] ? 2 : 1;
  int64_t n_grow = fz_range(in, 0, total < 60 ? total : 60);
  int32_t *grow_rows = FZ_NEW(int32_t, n_grow), *grow_cols = FZ_NEW(int32_t, n_grow);
  unsigned char *grown = FZ_NEW(unsigned char, total);
  memset(grown, 0, (size_t)total);
  int64_t g_count = 0;
  for (int64_t g = 0; g < n_grow; g++) {
    int64_t q = fz_range(in, 0, total - 1);
    if (!fz_chance(in, 4))
      for (int64_t t = 0; t < total && (state[q] == 1 || grown[q]); t++) q = (q + 1) % total;
    if (state[q] == 1 || grown[q]) bad = 1;
    if (q < total && total > 0) grown[q] = 1;
    grow_rows[g_count] = (int32_t)(q / (n_cols > 0 ? n_cols : 1));
    grow_cols[g_count] = (int32_t)(q % (n_cols > 0 ? n_cols : 1));
    g_count++;
  }
  n_grow = g_count;
  if (total == 0) n_grow = 0;
  if (flags & ~1) bad = 1;

  const int64_t new_nnz = nnz - n_drop + n_grow;
  int32_t *new_row_ptr = FZ_NEW(int32_t, n_rows + 1), *new_col = FZ_NEW(int32_t, new_nnz);
  float *new_values = FZ_NEW(float, new_nnz);
  int32_t *old_index = FZ_NEW(int32_t, new_nnz);
  for (int32_t r = 0; r <= n_rows; r++) new_row_ptr[r] = -9;
  sl_status st = sl_csr_drop_grow(n_rows, n_cols, nnz, row_ptr, col_idx, values, n_drop, drop_idx,
                                  n_grow, grow_rows, grow_cols, flags, new_row_ptr, new_col,
                                  new_values, old_index);
  if (bad) {
    FZ_CHECK(st != SL_OK, "sl_csr_drop_grow accepted a bad drop/grow list");
    FZ_CHECK_MESSAGE("sl_csr_drop_grow");
    for (int32_t r = 0; r <= n_rows; r++) FZ_CHECK(new_row_ptr[r] == -9, "rejected call wrote");
  } else {
    FZ_CHECK(st == SL_OK, "sl_csr_drop_grow: status %d", st);
    FZ_CHECK(sl_csr_validate(n_rows, n_cols, new_nnz, new_row_ptr, new_col) == SL_OK,
             "the new pattern is not a valid CSR");
    /* Every position: kept -> old value and index; grown -> 0 / -1 (or kept past on regrow). */
    int64_t pos = 0;
    for (int32_t r = 0; r < n_rows; r++) {
      int32_t p = row_ptr[r];
      for (int32_t c = 0; c < n_cols; c++) {
        const int64_t q = (int64_t)r * n_cols + c;
        while (p < row_ptr[r + 1] && col_idx[p] < c) p++;
        const int present = state[q] == 1 || grown[q];
        if (!present) continue;
        FZ_CHECK(pos < new_nnz && new_col[pos] == c && pos < new_row_ptr[r + 1],
                 "entry (%d, %d) missing", r, c);
        if (state[q] == 1) {
          FZ_CHECK(old_index[pos] == p && new_values[pos] == values[p], "kept entry (%d, %d)", r,
                   c);
        } else if (state[q] == 2 && (flags & SL_REGROW_KEEPS)) {
          FZ_CHECK(old_index[pos] == p && new_values[pos] == values[p], "regrown (%d, %d)", r, c);
        } else {
          FZ_CHECK(old_index[pos] == -1 && new_values[pos] == 0.0f, "grown (%d, %d)", r, c);
        }
        pos++;
      }
    }
    FZ_CHECK(pos == new_nnz, "new nnz %lld vs %lld", (long long)pos, (long long)new_nnz);
  }
  free(row_ptr);
  free(col_idx);
  free(values);
  free(dropped);
  free(drop_idx);
  free(state);
  free(grow_rows);
  free(grow_cols);
  free(grown);
  free(new_row_ptr);
  free(new_col);
  free(new_values);
  free(old_index);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_threads(&in);
  switch (fz_u8(&in) % 4) {
    case 0: fuzz_topk(&in); break;
    case 1: fuzz_dense_grad_topk(&in); break;
    case 2: fuzz_sample_absent(&in); break;
    default: fuzz_drop_grow(&in); break;
  }
  return 0;
}
