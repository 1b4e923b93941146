/*
 * test_sparse.c — the sparse format conversions and the sparse kernels against naive references
 * on random shapes: odd sizes, empty rows and columns, batch 1, batches that are not multiples
 * of the vector width or the tile, nnz 0, duplicates, bad indices and null pointers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "sparselinear.h"

/* Checks a status and, when needle is non-null, that the last error message contains it. */
static void expect_status(sl_status st, sl_status code, const char *needle, int line) {
  checks++;
  if (st != code) {
    failures++;
    fprintf(stderr, "FAIL %s:%d: status %d, expected %d (%s)\n", __FILE__, line, st, code,
            sl_last_error());
  } else if (needle != NULL && strstr(sl_last_error(), needle) == NULL) {
    failures++;
    fprintf(stderr, "FAIL %s:%d: message '%s' lacks '%s'\n", __FILE__, line, sl_last_error(),
            needle);
  }
}
#define EXPECT_STATUS(st, code, needle) expect_status((st), (code), (needle), __LINE__)

/* ---- deterministic random numbers */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}
static int32_t rnd_int(int32_t n) { return n > 0 ? (int32_t)(rnd() % (uint32_t)n) : 0; }
static float rnd_float(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }

static void fill_random(float *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) a[i] = rnd_float();
}

/* |got - want| <= tol * (1 + sum of |terms|) per element. */
static int close_to(float got, double want, double scale) {
  return fabs((double)got - want) <= 1e-5 * (1.0 + scale);
}

/* ---- a random CSR pattern: each (row, col) kept with probability density, some rows and
 * columns forced empty. */
typedef struct {
  int32_t n_rows, n_cols;
  int64_t nnz;
  int32_t *row_ptr, *col_idx;
  float *values;
} csr_t;

static csr_t random_csr(int32_t n_rows, int32_t n_cols, double density) {
  csr_t m = {n_rows, n_cols, 0, NULL, NULL, NULL};
  m.row_ptr = malloc(((size_t)n_rows + 1) * sizeof(int32_t));
  int64_t cap = (int64_t)n_rows * n_cols + 1;
  m.col_idx = malloc((size_t)cap * sizeof(int32_t));
  m.values = malloc((size_t)cap * sizeof(float));
  int32_t empty_col = n_cols > 2 ? rnd_int(n_cols) : -1;
  m.row_ptr[0] = 0;
  for (int32_t r = 0; r < n_rows; r++) {
    int empty_row = (rnd() % 7) == 0;
    for (int32_t c = 0; c < n_cols; c++) {
      if (empty_row || c == empty_col) continue;
      if ((double)rnd() / 4294967296.0 < density) {
        m.col_idx[m.nnz] = c;
        m.values[m.nnz] = rnd_float();
        m.nnz++;
      }
    }
    m.row_ptr[r + 1] = (int32_t)m.nnz;
  }
  return m;
}

static void free_csr(csr_t *m) {
  free(m->row_ptr);
  free(m->col_idx);
  free(m->values);
}

/* The CSC view of a CSR pattern, as sl_csr_to_csc builds it. */
typedef struct {
  int32_t *col_ptr, *row_idx, *to_csr;
} csc_t;

static csc_t csc_of(const csr_t *m) {
  csc_t v = {malloc(((size_t)m->n_cols + 1) * sizeof(int32_t)),
             malloc((size_t)(m->nnz + 1) * sizeof(int32_t)),
             malloc((size_t)(m->nnz + 1) * sizeof(int32_t))};
  EXPECT_STATUS(sl_csr_to_csc(m->n_rows, m->n_cols, m->nnz, m->row_ptr, m->col_idx, v.col_ptr,
                              v.row_idx, v.to_csr),
                SL_OK, NULL);
  return v;
}

static void free_csc(csc_t *v) {
  free(v->col_ptr);
  free(v->row_idx);
  free(v->to_csr);
}

/* ------------------------------------------------------------------- COO -> CSR ---- */

typedef struct {
  int32_t r, c;
  int64_t e;
} triple_t;

static int cmp_triple(const void *a, const void *b) {
  const triple_t *x = a, *y = b;
  if (x->r != y->r) return x->r < y->r ? -1 : 1;
  if (x->c != y->c) return x->c < y->c ? -1 : 1;
  return x->e < y->e ? -1 : (x->e > y->e);
}

static void test_coo_to_csr_case(int32_t n_rows, int32_t n_cols, int64_t nnz, int32_t span_r,
                                 int32_t span_c, int with_values, int with_perm) {
  int32_t *rows = malloc((size_t)(nnz + 1) * sizeof(int32_t));
  int32_t *cols = malloc((size_t)(nnz + 1) * sizeof(int32_t));
  float *vin = malloc((size_t)(nnz + 1) * sizeof(float));
  /* A small span makes duplicates likely; scale them into the whole range. */
  for (int64_t e = 0; e < nnz; e++) {
    rows[e] = (int32_t)((int64_t)rnd_int(span_r) * (n_rows - 1) / (span_r > 1 ? span_r - 1 : 1));
    cols[e] = (int32_t)((int64_t)rnd_int(span_c) * (n_cols - 1) / (span_c > 1 ? span_c - 1 : 1));
    vin[e] = rnd_float();
  }
  int32_t *row_ptr = malloc(((size_t)n_rows + 1) * sizeof(int32_t));
  int32_t *col_idx = malloc((size_t)(nnz + 1) * sizeof(int32_t));
  float *vout = malloc((size_t)(nnz + 1) * sizeof(float));
  int64_t *perm = malloc((size_t)(nnz + 1) * sizeof(int64_t));
  int64_t nnz_out = -7, first_dup = -7;
  sl_status st = sl_coo_to_csr(n_rows, n_cols, nnz, rows, cols, with_values ? vin : NULL,
                               row_ptr, col_idx, with_values ? vout : NULL,
                               with_perm ? perm : NULL, &nnz_out, &first_dup);
  EXPECT(st == SL_OK, "coo_to_csr failed: %s", sl_last_error());

  /* Reference: sort (r, c, e) triples; coalesce. */
  triple_t *t = malloc((size_t)(nnz + 1) * sizeof(triple_t));
  for (int64_t e = 0; e < nnz; e++) t[e] = (triple_t){rows[e], cols[e], e};
  qsort(t, (size_t)nnz, sizeof(triple_t), cmp_triple);
  int64_t out = 0, want_dup = -1;
  int ok = 1;
  for (int64_t i = 0; i < nnz;) {
    int64_t j = i;
    double sum = 0;
    while (j < nnz && t[j].r == t[i].r && t[j].c == t[i].c) sum += vin[t[j++].e];
    if (j - i > 1 && (want_dup < 0 || t[i + 1].e < want_dup)) want_dup = t[i + 1].e;
    if (out < nnz_out) {
      ok &= col_idx[out] == t[i].c;
      if (with_perm) ok &= perm[out] == t[i].e;
      if (with_values) ok &= close_to(vout[out], sum, (double)(j - i));
    }
    out++;
    i = j;
  }
  EXPECT(nnz_out == out, "nnz_out %lld, expected %lld", (long long)nnz_out, (long long)out);
  EXPECT(first_dup == want_dup, "first_duplicate %lld, expected %lld", (long long)first_dup,
         (long long)want_dup);
  EXPECT(ok, "coo_to_csr entries differ from the reference (%d x %d, nnz %lld)", n_rows, n_cols,
         (long long)nnz);
  /* row_ptr: counts of distinct entries per row. */
  int rp_ok = row_ptr[0] == 0;
  {
    int64_t distinct = 0, ti = 0;
    for (int32_t r = 0; r < n_rows; r++) {
      while (ti < nnz && t[ti].r == r) {
        int64_t j = ti;
        while (j < nnz && t[j].r == t[ti].r && t[j].c == t[ti].c) j++;
        distinct++;
        ti = j;
      }
      rp_ok &= row_ptr[r + 1] == distinct;
    }
  }
  EXPECT(rp_ok, "row_ptr differs from the reference");
  /* The result must be a valid CSR. */
  EXPECT(sl_csr_validate(n_rows, n_cols, nnz_out, row_ptr, col_idx) == SL_OK,
         "coo_to_csr output is not valid CSR: %s", sl_last_error());
  free(t);
  free(rows);
  free(cols);
  free(vin);
  free(row_ptr);
  free(col_idx);
  free(vout);
  free(perm);
}

static void test_coo_to_csr(void) {
  test_coo_to_csr_case(7, 5, 30, 7, 5, 1, 1);           /* many duplicates */
  test_coo_to_csr_case(50, 40, 300, 50, 40, 1, 1);
  test_coo_to_csr_case(13, 1, 20, 13, 1, 1, 0);         /* one column */
  test_coo_to_csr_case(1, 17, 25, 1, 17, 0, 1);         /* one row */
  test_coo_to_csr_case(100, 1000, 500, 100, 1000, 1, 1); /* few duplicates */
  test_coo_to_csr_case(5, 1 << 30, 200, 5, 60, 1, 1);   /* huge n_cols: per-row sort path */
  test_coo_to_csr_case(3, 1 << 30, 2000, 3, 1 << 20, 1, 1); /* long rows on the sort path */
  test_coo_to_csr_case(9, 9, 0, 9, 9, 1, 1);            /* nnz 0 */
  test_coo_to_csr_case(0, 0, 0, 1, 1, 1, 1);            /* empty matrix */

  /* Out-of-range entries: error naming the first bad entry, nothing written. */
  int32_t rows[4] = {0, 1, 2, 1}, cols[4] = {0, 3, 1, 1};
  int32_t row_ptr[4] = {-5, -5, -5, -5}, col_idx[4] = {-5, -5, -5, -5};
  int64_t nnz_out = -5, dup = -5;
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, rows, cols, NULL, row_ptr, col_idx, NULL, NULL, &nnz_out,
                              &dup),
                SL_E_INDEX_OUT_OF_RANGE, "cols[1] = 3 is outside [0, 3)");
  EXPECT(row_ptr[0] == -5 && col_idx[0] == -5 && nnz_out == -5 && dup == -5,
         "coo_to_csr wrote output on failure");
  rows[2] = -1;
  cols[1] = 0;
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, rows, cols, NULL, row_ptr, col_idx, NULL, NULL, &nnz_out,
                              &dup),
                SL_E_INDEX_OUT_OF_RANGE, "rows[2] = -1 is outside [0, 3)");
  rows[2] = 2;
  float v[4] = {1, 2, 3, 4};
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, rows, cols, v, row_ptr, col_idx, NULL, NULL, &nnz_out,
                              &dup),
                SL_E_INVALID_ARGUMENT, "values_in and values_out");
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, NULL, cols, NULL, row_ptr, col_idx, NULL, NULL, &nnz_out,
                              &dup),
                SL_E_NULL_POINTER, "rows must not be null");
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, rows, cols, NULL, row_ptr, col_idx, NULL, NULL, NULL,
                              &dup),
                SL_E_NULL_POINTER, "nnz_out");
  EXPECT_STATUS(sl_coo_to_csr(3, 3, (int64_t)1 << 31, rows, cols, NULL, row_ptr, col_idx, NULL,
                              NULL, &nnz_out, &dup),
                SL_E_OVERFLOW, "2^31");
  EXPECT_STATUS(sl_coo_to_csr(-1, 3, 4, rows, cols, NULL, row_ptr, col_idx, NULL, NULL, &nnz_out,
                              &dup),
                SL_E_INVALID_ARGUMENT, "n_rows");
  /* Duplicates: (1,0) appears at 1 and 3 -> first_duplicate 3, value summed, perm first. */
  int64_t perm[4];
  float vout[4];
  EXPECT_STATUS(sl_coo_to_csr(3, 3, 4, (int32_t[]){0, 1, 2, 1}, (int32_t[]){0, 0, 1, 0}, v,
                              row_ptr, col_idx, vout, perm, &nnz_out, &dup),
                SL_OK, NULL);
  EXPECT(nnz_out == 3 && dup == 3 && row_ptr[1] == 1 && row_ptr[2] == 2 && row_ptr[3] == 3 &&
             vout[1] == 6.0f && perm[1] == 1 && col_idx[2] == 1,
         "duplicate handling: nnz_out %lld dup %lld vout[1] %g perm[1] %lld", (long long)nnz_out,
         (long long)dup, vout[1], (long long)perm[1]);
}

/* --------------------------------------------------------------- CSR validate / CSC ---- */

static void test_csr_validate(void) {
  int32_t rp[4] = {0, 2, 2, 4};
  int32_t ci[4] = {0, 3, 1, 2};
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_OK, NULL);
  ci[1] = 4;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_INDEX_OUT_OF_RANGE,
                "col_idx[1] = 4 is outside [0, 4)");
  ci[1] = 0;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_DUPLICATE, "col_idx[1] = 0 repeats");
  ci[1] = 3;
  ci[3] = 0;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_INVALID_ARGUMENT, "sorted");
  ci[3] = 2;
  rp[2] = 1;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_INVALID_ARGUMENT, "row_ptr[2] = 1");
  rp[2] = 2;
  rp[3] = 5;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_INVALID_ARGUMENT, "nnz = 4");
  rp[3] = 4;
  rp[0] = 1;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, ci), SL_E_INVALID_ARGUMENT, "row_ptr[0] = 1");
  rp[0] = 0;
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, NULL, ci), SL_E_NULL_POINTER, "row_ptr");
  EXPECT_STATUS(sl_csr_validate(3, 4, 4, rp, NULL), SL_E_NULL_POINTER, "col_idx");
  int32_t rp0[3] = {0, 0, 0};
  EXPECT_STATUS(sl_csr_validate(2, 0, 0, rp0, NULL), SL_OK, NULL);
  EXPECT_STATUS(sl_csr_validate(2, 4, (int64_t)INT32_MAX + 1, rp0, ci), SL_E_OVERFLOW, "nnz");
}

static void test_csr_to_csc(void) {
  const int32_t shapes[][2] = {{1, 1}, {7, 5}, {33, 65}, {64, 3}, {2, 200}, {0, 4}, {4, 0}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    csr_t m = random_csr(shapes[s][0], shapes[s][1], 0.3);
    csc_t csc = csc_of(&m);
    int32_t *col_ptr = csc.col_ptr, *row_idx = csc.row_idx, *perm = csc.to_csr;
    /* Reference: walk columns in order, rows in order. */
    int ok = col_ptr[0] == 0;
    int64_t k = 0;
    for (int32_t c = 0; c < m.n_cols; c++) {
      for (int32_t r = 0; r < m.n_rows; r++)
        for (int64_t q = m.row_ptr[r]; q < m.row_ptr[r + 1]; q++)
          if (m.col_idx[q] == c) {
            ok &= k < m.nnz && row_idx[k] == r && perm[k] == q;
            k++;
          }
      ok &= col_ptr[c + 1] == k;
    }
    EXPECT(ok && k == m.nnz, "csr_to_csc differs from the reference for %d x %d", m.n_rows,
           m.n_cols);
    free_csc(&csc);
    free_csr(&m);
  }
  int32_t rp[3] = {0, 1, 2}, ci[2] = {0, 9}, cp[4] = {-3, -3, -3, -3}, ri[2], pm[2];
  EXPECT_STATUS(sl_csr_to_csc(2, 3, 2, rp, ci, cp, ri, pm), SL_E_INDEX_OUT_OF_RANGE,
                "col_idx[1] = 9 is outside [0, 3)");
  EXPECT(cp[0] == -3, "csr_to_csc wrote col_ptr on failure");
  EXPECT_STATUS(sl_csr_to_csc(2, 3, 2, rp, ci, NULL, ri, pm), SL_E_NULL_POINTER, "col_ptr");
}

/* ----------------------------------------------------------------------- kernels ---- */

static void test_kernels_case(int32_t batch, int32_t n_in, int32_t n_out, double density,
                              int with_bias) {
  csr_t m = random_csr(n_out, n_in, density);
  int64_t nx = (int64_t)batch * n_in, ny = (int64_t)batch * n_out;
  float *x = malloc((size_t)(nx + 1) * sizeof(float));
  float *dy = malloc((size_t)(ny + 1) * sizeof(float));
  float *bias = malloc(((size_t)n_out + 1) * sizeof(float));
  float *y = malloc((size_t)(ny + 1) * sizeof(float));
  float *dx = malloc((size_t)(nx + 1) * sizeof(float));
  float *dw = malloc((size_t)(m.nnz + 1) * sizeof(float));
  float *db = malloc(((size_t)n_out + 1) * sizeof(float));
  fill_random(x, nx);
  fill_random(dy, ny);
  fill_random(bias, n_out);
  for (int64_t i = 0; i < ny; i++) y[i] = NAN;
  for (int64_t i = 0; i < nx; i++) dx[i] = NAN;

  /* forward */
  EXPECT_STATUS(sl_spmm_fwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values,
                            with_bias ? bias : NULL, x, y),
                SL_OK, NULL);
  int ok = 1;
  for (int32_t b = 0; b < batch; b++)
    for (int32_t o = 0; o < n_out; o++) {
      double want = with_bias ? bias[o] : 0.0, scale = 0.0;
      for (int64_t k = m.row_ptr[o]; k < m.row_ptr[o + 1]; k++) {
        want += (double)m.values[k] * x[(int64_t)b * n_in + m.col_idx[k]];
        scale += fabs((double)m.values[k] * x[(int64_t)b * n_in + m.col_idx[k]]);
      }
      ok &= close_to(y[(int64_t)b * n_out + o], want, scale);
    }
  EXPECT(ok, "spmm_fwd differs from the reference (batch %d, %d -> %d, nnz %lld)", batch, n_in,
         n_out, (long long)m.nnz);

  /* input gradient via the CSC view */
  csc_t csc = csc_of(&m);
  int32_t *col_ptr = csc.col_ptr, *row_idx = csc.row_idx, *perm = csc.to_csr;
  EXPECT_STATUS(sl_spmm_bwd_input(batch, n_in, n_out, m.nnz, col_ptr, row_idx, perm, m.values,
                                  dy, dx),
                SL_OK, NULL);
  double *want_dx = calloc((size_t)(nx + 1), sizeof(double));
  double *scale_dx = calloc((size_t)(nx + 1), sizeof(double));
  for (int32_t b = 0; b < batch; b++)
    for (int32_t o = 0; o < n_out; o++)
      for (int64_t k = m.row_ptr[o]; k < m.row_ptr[o + 1]; k++) {
        double t = (double)m.values[k] * dy[(int64_t)b * n_out + o];
        want_dx[(int64_t)b * n_in + m.col_idx[k]] += t;
        scale_dx[(int64_t)b * n_in + m.col_idx[k]] += fabs(t);
      }
  ok = 1;
  for (int64_t i = 0; i < nx; i++) ok &= close_to(dx[i], want_dx[i], scale_dx[i]);
  EXPECT(ok, "spmm_bwd_input differs from the reference (batch %d, %d -> %d)", batch, n_in,
         n_out);
  for (int64_t i = 0; i < nx; i++) dx[i] = NAN;
  EXPECT_STATUS(sl_spmm_bwd_input_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values,
                                      dy, dx),
                SL_OK, NULL);
  ok = 1;
  for (int64_t i = 0; i < nx; i++) ok &= close_to(dx[i], want_dx[i], scale_dx[i]);
  EXPECT(ok, "spmm_bwd_input_csr differs from the reference (batch %d, %d -> %d)", batch, n_in,
         n_out);

  /* weight gradient: the reference, then the SDDMM kernel */
  double *want_dw = calloc((size_t)(m.nnz + 1), sizeof(double));
  double *scale_dw = calloc((size_t)(m.nnz + 1), sizeof(double));
  for (int32_t o = 0; o < n_out; o++)
    for (int64_t k = m.row_ptr[o]; k < m.row_ptr[o + 1]; k++)
      for (int32_t b = 0; b < batch; b++) {
        double t = (double)dy[(int64_t)b * n_out + o] * x[(int64_t)b * n_in + m.col_idx[k]];
        want_dw[k] += t;
        scale_dw[k] += fabs(t);
      }
  for (int64_t k = 0; k < m.nnz; k++) dw[k] = NAN;
  EXPECT_STATUS(sl_sddmm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, x, dy, dw), SL_OK,
                NULL);
  ok = 1;
  for (int64_t k = 0; k < m.nnz; k++) ok &= close_to(dw[k], want_dw[k], scale_dw[k]);
  EXPECT(ok, "sddmm differs from the reference (batch %d, %d -> %d)", batch, n_in, n_out);

  /* both gradients in one call */
  for (int64_t i = 0; i < nx; i++) dx[i] = NAN;
  for (int64_t k = 0; k < m.nnz; k++) dw[k] = NAN;
  EXPECT_STATUS(sl_spmm_bwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                            perm, m.values, x, dy, dx, dw, NULL),
                SL_OK, NULL);
  ok = 1;
  for (int64_t i = 0; i < nx; i++) ok &= close_to(dx[i], want_dx[i], scale_dx[i]);
  for (int64_t k = 0; k < m.nnz; k++) ok &= close_to(dw[k], want_dw[k], scale_dw[k]);
  EXPECT(ok, "spmm_bwd differs from the reference (batch %d, %d -> %d, nnz %lld)", batch, n_in,
         n_out, (long long)m.nnz);

  /* both gradients from the CSR pattern: the reference, and bit for bit the two CSR calls */
  {
    float *dx2 = malloc((size_t)(nx + 1) * sizeof(float));
    float *dw2 = malloc((size_t)(m.nnz + 1) * sizeof(float));
    EXPECT_STATUS(sl_spmm_bwd_input_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx,
                                        m.values, dy, dx2),
                  SL_OK, NULL);
    EXPECT_STATUS(sl_sddmm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, x, dy, dw2), SL_OK,
                  NULL);
    for (int64_t i = 0; i < nx; i++) dx[i] = NAN;
    for (int64_t k = 0; k < m.nnz; k++) dw[k] = NAN;
    EXPECT_STATUS(sl_spmm_bwd_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, x,
                                  dy, dx, dw),
                  SL_OK, NULL);
    ok = 1;
    for (int64_t i = 0; i < nx; i++) ok &= close_to(dx[i], want_dx[i], scale_dx[i]);
    for (int64_t k = 0; k < m.nnz; k++) ok &= close_to(dw[k], want_dw[k], scale_dw[k]);
    EXPECT(ok, "spmm_bwd_csr differs from the reference (batch %d, %d -> %d, nnz %lld)", batch,
           n_in, n_out, (long long)m.nnz);
    EXPECT((nx == 0 || memcmp(dx, dx2, (size_t)nx * sizeof(float)) == 0) &&
               (m.nnz == 0 || memcmp(dw, dw2, (size_t)m.nnz * sizeof(float)) == 0),
           "spmm_bwd_csr differs from sl_spmm_bwd_input_csr + sl_sddmm (batch %d, %d -> %d)",
           batch, n_in, n_out);
    free(dx2);
    free(dw2);
  }

  /* bias gradient */
  EXPECT_STATUS(sl_bias_grad(batch, n_out, dy, db), SL_OK, NULL);
  ok = 1;
  for (int32_t o = 0; o < n_out; o++) {
    double want = 0, scale = 0;
    for (int32_t b = 0; b < batch; b++) {
      want += dy[(int64_t)b * n_out + o];
      scale += fabs(dy[(int64_t)b * n_out + o]);
    }
    ok &= close_to(db[o], want, scale);
  }
  EXPECT(ok, "bias_grad differs from the reference (batch %d, n_out %d)", batch, n_out);

  /* Bad indices: reported by position, outputs of fwd / bwd_input untouched. */
  if (m.nnz > 0 && batch > 0) {
    int64_t k = rnd_int((int32_t)m.nnz);
    int32_t saved = m.col_idx[k];
    char needle[96];
    for (int variant = 0; variant < 2; variant++) {
      m.col_idx[k] = variant == 0 ? n_in : -1 - rnd_int(1000);
      for (int64_t i = 0; i < ny; i++) y[i] = 12345.0f;
      snprintf(needle, sizeof needle, "col_idx[%lld] = %d is outside [0, %d)", (long long)k,
               m.col_idx[k], n_in);
      EXPECT_STATUS(sl_spmm_fwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values,
                                with_bias ? bias : NULL, x, y),
                    SL_E_INDEX_OUT_OF_RANGE, needle);
      int untouched = 1;
      for (int64_t i = 0; i < ny; i++) untouched &= y[i] == 12345.0f;
      EXPECT(untouched, "spmm_fwd wrote y despite a bad index (batch %d)", batch);
      EXPECT_STATUS(sl_sddmm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, x, dy, dw),
                    SL_E_INDEX_OUT_OF_RANGE, needle);
      for (int64_t i = 0; i < nx; i++) dx[i] = 12345.0f;
      EXPECT_STATUS(sl_spmm_bwd_input_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx,
                                          m.values, dy, dx),
                    SL_E_INDEX_OUT_OF_RANGE, needle);
      untouched = 1;
      for (int64_t i = 0; i < nx; i++) untouched &= dx[i] == 12345.0f;
      EXPECT(untouched, "spmm_bwd_input_csr wrote dx despite a bad index (batch %d)", batch);
      EXPECT_STATUS(sl_spmm_bwd_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, x,
                                    dy, dx, dw),
                    SL_E_INDEX_OUT_OF_RANGE, needle);
      untouched = 1;
      for (int64_t i = 0; i < nx; i++) untouched &= dx[i] == 12345.0f;
      EXPECT(untouched, "spmm_bwd_csr wrote dx despite a bad index (batch %d)", batch);
    }
    m.col_idx[k] = saved;
    /* Unsorted columns within a row: accepted at batch 1, where both CSR backward forms
     * scatter in any order (and still agree bit for bit); rejected below where an algorithm
     * relies on the order. */
    for (int32_t r = 0; r < n_out && batch == 1; r++) {
      int64_t a = m.row_ptr[r];
      if (m.row_ptr[r + 1] - a < 2) continue;
      int32_t t = m.col_idx[a];
      m.col_idx[a] = m.col_idx[a + 1];
      m.col_idx[a + 1] = t;
      float *dx2 = malloc((size_t)(nx + 1) * sizeof(float));
      float *dw2 = malloc((size_t)(m.nnz + 1) * sizeof(float));
      EXPECT_STATUS(sl_spmm_bwd_input_csr(1, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values,
                                          dy, dx2),
                    SL_OK, NULL);
      EXPECT_STATUS(sl_sddmm(1, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, x, dy, dw2), SL_OK,
                    NULL);
      EXPECT_STATUS(sl_spmm_bwd_csr(1, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, x, dy,
                                    dx, dw),
                    SL_OK, NULL);
      EXPECT(memcmp(dx, dx2, (size_t)nx * sizeof(float)) == 0 &&
                 memcmp(dw, dw2, (size_t)m.nnz * sizeof(float)) == 0,
             "spmm_bwd_csr with unsorted columns differs from the two calls (%d -> %d)", n_in,
             n_out);
      free(dx2);
      free(dw2);
      m.col_idx[a + 1] = m.col_idx[a];
      m.col_idx[a] = t;
      break;
    }
    /* Unsorted columns within a row: rejected where the algorithm relies on the order. */
    for (int32_t r = 0; r < n_out && batch > 1; r++) {
      int64_t a = m.row_ptr[r];
      if (m.row_ptr[r + 1] - a < 2) continue;
      int32_t t = m.col_idx[a];
      m.col_idx[a] = m.col_idx[a + 1];
      m.col_idx[a + 1] = t;
      snprintf(needle, sizeof needle, "col_idx[%lld] = %d is less than", (long long)(a + 1),
               m.col_idx[a + 1]);
      EXPECT_STATUS(sl_spmm_bwd_input_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx,
                                          m.values, dy, dx),
                    SL_E_INVALID_ARGUMENT, needle);
      EXPECT_STATUS(sl_spmm_bwd_csr(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, x,
                                    dy, dx, dw),
                    SL_E_INVALID_ARGUMENT, needle);
      m.col_idx[a + 1] = m.col_idx[a];
      m.col_idx[a] = t;
      break;
    }

    int32_t saved_r = row_idx[k];
    row_idx[k] = n_out + rnd_int(5);
    for (int64_t i = 0; i < nx; i++) dx[i] = 12345.0f;
    snprintf(needle, sizeof needle, "row_idx[%lld] = %d is outside [0, %d)", (long long)k,
             row_idx[k], n_out);
    EXPECT_STATUS(sl_spmm_bwd_input(batch, n_in, n_out, m.nnz, col_ptr, row_idx, perm, m.values,
                                    dy, dx),
                  SL_E_INDEX_OUT_OF_RANGE, needle);
    row_idx[k] = saved_r;
    int32_t saved_p = perm[k];
    perm[k] = (int32_t)m.nnz;
    snprintf(needle, sizeof needle, "csc_to_csr[%lld] = %lld is outside [0, %lld)", (long long)k,
             (long long)m.nnz, (long long)m.nnz);
    EXPECT_STATUS(sl_spmm_bwd_input(batch, n_in, n_out, m.nnz, col_ptr, row_idx, perm, m.values,
                                    dy, dx),
                  SL_E_INDEX_OUT_OF_RANGE, needle);
    perm[k] = saved_p;
    int untouched = 1;
    for (int64_t i = 0; i < nx; i++) untouched &= dx[i] == 12345.0f;
    EXPECT(untouched, "spmm_bwd_input wrote dx despite a bad index (batch %d)", batch);
  }

  free_csc(&csc);
  free(want_dx);
  free(scale_dx);
  free(want_dw);
  free(scale_dw);
  free(x);
  free(dy);
  free(bias);
  free(y);
  free(dx);
  free(dw);
  free(db);
  free_csr(&m);
}

static void test_kernels(void) {
  const int32_t batches[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 130};
  for (int threads = 1; threads <= 2; threads++) {
    sl_set_num_threads(threads);
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
      int32_t n_in = 1 + rnd_int(70), n_out = 1 + rnd_int(70);
      test_kernels_case(batches[i], n_in, n_out, 0.05 + 0.4 * (rnd() % 100) / 100.0, (int)(i & 1));
    }
    /* Large enough for the multithreaded partitioning. */
    test_kernels_case(1, 3001, 2999, 0.02, 1);
    test_kernels_case(70, 513, 1031, 0.05, 1);
    test_kernels_case(5, 257, 3000, 0.1, 0);
    /* Values above 1 MiB: the batched input gradient gathers them into CSC order once, and
     * reuses them for the second batch tile. */
    test_kernels_case(70, 1200, 1100, 0.25, 1);
    /* More than 2^19 entries: the input gradient gathers values in blocks of CSR positions. */
    if (threads == 2) {
      test_kernels_case(1, 2000, 1500, 0.2, 1);
      test_kernels_case(3, 1500, 2000, 0.2, 0);
    }
    /* Degenerate shapes. */
    test_kernels_case(4, 10, 10, 0.0, 1); /* nnz 0 */
    test_kernels_case(1, 10, 10, 0.0, 0);
    test_kernels_case(0, 10, 10, 0.5, 1); /* batch 0 */
    test_kernels_case(3, 1, 1, 1.0, 1);
  }
  sl_set_num_threads(0);

  /* n_in 0 / n_out 0 with nnz 0. */
  int32_t rp[4] = {0, 0, 0, 0};
  float y[6] = {0}, bias[3] = {1, 2, 3};
  EXPECT_STATUS(sl_spmm_fwd(2, 0, 3, 0, rp, NULL, NULL, bias, NULL, y), SL_OK, NULL);
  EXPECT(y[0] == 1 && y[4] == 2 && y[5] == 3, "spmm_fwd with n_in 0 must give the bias");
  EXPECT_STATUS(sl_spmm_bwd_input(2, 3, 0, 0, rp, NULL, NULL, NULL, NULL, y), SL_OK, NULL);
  EXPECT(y[0] == 0 && y[5] == 0, "spmm_bwd_input with n_out 0 must give zeros");
  /* n_in 0 with nnz > 0: every index is out of range and x may be null. */
  int32_t rp1[2] = {0, 1}, ci1[1] = {0};
  float v1[1] = {1}, out1[2] = {5, 5};
  EXPECT_STATUS(sl_spmm_fwd(2, 0, 1, 1, rp1, ci1, v1, NULL, NULL, out1), SL_E_INDEX_OUT_OF_RANGE,
                "col_idx[0] = 0 is outside [0, 0)");
  EXPECT_STATUS(sl_spmm_fwd(1, 0, 1, 1, rp1, ci1, v1, NULL, NULL, out1), SL_E_INDEX_OUT_OF_RANGE,
                "col_idx[0] = 0 is outside [0, 0)");
  EXPECT_STATUS(sl_sddmm(1, 0, 1, 1, rp1, ci1, NULL, out1, out1), SL_E_INDEX_OUT_OF_RANGE,
                "col_idx[0]");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 0, 1, 1, rp1, ci1, v1, NULL, out1, NULL, out1),
                SL_E_INDEX_OUT_OF_RANGE, "col_idx[0] = 0 is outside [0, 0)");

  /* Null pointers and bad sizes. */
  int32_t rp2[3] = {0, 1, 2}, ci2[2] = {0, 1}, cp2[3] = {0, 1, 2};
  float v2[2] = {1, 2}, x2[4] = {1, 2, 3, 4}, y2[4];
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 2, NULL, ci2, v2, NULL, x2, y2), SL_E_NULL_POINTER,
                "row_ptr must not be null");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 2, rp2, NULL, v2, NULL, x2, y2), SL_E_NULL_POINTER,
                "col_idx");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 2, rp2, ci2, NULL, NULL, x2, y2), SL_E_NULL_POINTER,
                "values");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 2, rp2, ci2, v2, NULL, NULL, y2), SL_E_NULL_POINTER, "x");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 2, rp2, ci2, v2, NULL, x2, NULL), SL_E_NULL_POINTER, "y");
  EXPECT_STATUS(sl_spmm_fwd(-1, 2, 2, 2, rp2, ci2, v2, NULL, x2, y2), SL_E_INVALID_ARGUMENT,
                "batch must be >= 0");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 3, rp2, ci2, v2, NULL, x2, y2), SL_E_INVALID_ARGUMENT,
                "row_ptr[2] = 2, must equal nnz = 3");
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, (int64_t)1 << 31, rp2, ci2, v2, NULL, x2, y2),
                SL_E_OVERFLOW, "nnz");
  EXPECT_STATUS(sl_spmm_bwd_input(2, 2, 2, 2, cp2, ci2, NULL, v2, x2, y2), SL_E_NULL_POINTER,
                "csc_to_csr");
  EXPECT_STATUS(sl_spmm_bwd_input(2, 2, 2, 2, cp2, ci2, ci2, v2, NULL, y2), SL_E_NULL_POINTER,
                "dy");
  EXPECT_STATUS(sl_sddmm(2, 2, 2, 2, rp2, ci2, x2, x2, NULL), SL_E_NULL_POINTER, "dw");
  EXPECT_STATUS(sl_spmm_bwd_input_csr(2, 2, 2, 2, rp2, ci2, v2, NULL, y2), SL_E_NULL_POINTER,
                "dy");
  EXPECT_STATUS(sl_spmm_bwd_input_csr(2, 2, 2, 2, rp2, NULL, v2, x2, y2), SL_E_NULL_POINTER,
                "col_idx");
  EXPECT_STATUS(sl_spmm_bwd_input_csr(2, 2, 2, 2, rp2, ci2, v2, x2, NULL), SL_E_NULL_POINTER,
                "dx");
  EXPECT_STATUS(sl_spmm_bwd_input_csr(2, 2, 2, (int64_t)1 << 31, rp2, ci2, v2, x2, y2),
                SL_E_OVERFLOW, "nnz");
  EXPECT_STATUS(sl_sddmm(2, 2, 2, 2, rp2, ci2, NULL, x2, y2), SL_E_NULL_POINTER, "x");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, NULL, ci2, v2, x2, x2, y2, y2), SL_E_NULL_POINTER,
                "row_ptr");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, NULL, v2, x2, x2, y2, y2), SL_E_NULL_POINTER,
                "col_idx");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, ci2, NULL, x2, x2, y2, y2), SL_E_NULL_POINTER,
                "values");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, ci2, v2, NULL, x2, y2, y2), SL_E_NULL_POINTER,
                "x");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, ci2, v2, x2, NULL, y2, y2), SL_E_NULL_POINTER,
                "dy");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, ci2, v2, x2, x2, NULL, y2), SL_E_NULL_POINTER,
                "dx");
  EXPECT_STATUS(sl_spmm_bwd_csr(1, 2, 2, 2, rp2, ci2, v2, x2, x2, y2, NULL), SL_E_NULL_POINTER,
                "dw");
  EXPECT_STATUS(sl_spmm_bwd_csr(2, 2, 2, (int64_t)1 << 31, rp2, ci2, v2, x2, x2, y2, y2),
                SL_E_OVERFLOW, "nnz");
  EXPECT_STATUS(sl_bias_grad(2, 2, NULL, y2), SL_E_NULL_POINTER, "dy");
  EXPECT_STATUS(sl_bias_grad(2, 2, x2, NULL), SL_E_NULL_POINTER, "db");
  EXPECT_STATUS(sl_bias_grad(2, -2, x2, y2), SL_E_INVALID_ARGUMENT, "n_out");
  int32_t rp_bad[3] = {0, 2, 1};
  EXPECT_STATUS(sl_spmm_fwd(2, 2, 2, 1, rp_bad, ci2, v2, NULL, x2, y2), SL_E_INVALID_ARGUMENT,
                "row_ptr[2] = 1 is less than row_ptr[1] = 2");

  /* sl_spmm_bwd: every pointer named, bad indices reported, outputs untouched on failure. */
  int32_t ri2[2] = {0, 1}, pm2[2] = {0, 1};
  float dx2[4], dw2[2];
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, NULL, ci2, cp2, ri2, pm2, v2, x2, x2, dx2, dw2, NULL),
                SL_E_NULL_POINTER, "row_ptr");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, rp2, ci2, NULL, ri2, pm2, v2, x2, x2, dx2, dw2, NULL),
                SL_E_NULL_POINTER, "col_ptr");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, rp2, ci2, cp2, ri2, NULL, v2, x2, x2, dx2, dw2, NULL),
                SL_E_NULL_POINTER, "csc_to_csr");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, rp2, ci2, cp2, ri2, pm2, v2, NULL, x2, dx2, dw2, NULL),
                SL_E_NULL_POINTER, "x must not be null");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, rp2, ci2, cp2, ri2, pm2, v2, x2, x2, NULL, dw2, NULL),
                SL_E_NULL_POINTER, "dx");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 2, rp2, ci2, cp2, ri2, pm2, v2, x2, x2, dx2, NULL, NULL),
                SL_E_NULL_POINTER, "dw");
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, -1, rp2, ci2, cp2, ri2, pm2, v2, x2, x2, dx2, dw2, NULL),
                SL_E_INVALID_ARGUMENT, "nnz must be >= 0");
  for (int batch = 0; batch <= 2; batch += 2) {
    int32_t ri_bad[2] = {0, 7}, pm_bad[2] = {0, 5};
    dx2[0] = dw2[0] = dw2[1] = -7.0f;
    EXPECT_STATUS(sl_spmm_bwd(batch, 2, 2, 2, rp2, ci2, cp2, ri_bad, pm2, v2, x2, x2, dx2, dw2,
                              NULL),
                  SL_E_INDEX_OUT_OF_RANGE, "row_idx[1] = 7 is outside [0, 2)");
    EXPECT_STATUS(sl_spmm_bwd(batch, 2, 2, 2, rp2, ci2, cp2, ri2, pm_bad, v2, x2, x2, dx2, dw2,
                              NULL),
                  SL_E_INDEX_OUT_OF_RANGE, "csc_to_csr[1] = 5 is outside [0, 2)");
    EXPECT(dx2[0] == -7.0f && dw2[0] == -7.0f && dw2[1] == -7.0f,
           "spmm_bwd wrote its outputs on failure (batch %d)", batch);
  }
  int32_t cp_bad[3] = {0, 2, 1};
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 1, rp2, ci2, cp_bad, ri2, pm2, v2, x2, x2, dx2, dw2, NULL),
                SL_E_INVALID_ARGUMENT, "col_ptr[2] = 1 is less than col_ptr[1] = 2");
  /* n_out 0 with nnz > 0: every row index is out of range, dy may be null. */
  int32_t cp1[2] = {0, 1}, ri1[1] = {0}, pm1[1] = {0};
  EXPECT_STATUS(sl_spmm_bwd(1, 1, 0, 1, rp1, ci1, cp1, ri1, pm1, v1, x2, NULL, dx2, dw2, NULL),
                SL_E_INDEX_OUT_OF_RANGE, "row_idx[0] = 0 is outside [0, 0)");
  /* nnz 0: dx is all zeros, dw empty. */
  int32_t zero2[3] = {0, 0, 0};
  dx2[0] = dx2[3] = -7.0f;
  float db2[2] = {-7.0f, -7.0f}, dy2[4] = {1.0f, 2.0f, 3.0f, 5.0f};
  EXPECT_STATUS(sl_spmm_bwd(2, 2, 2, 0, zero2, NULL, zero2, NULL, NULL, NULL, x2, dy2, dx2, NULL,
                            db2),
                SL_OK, NULL);
  EXPECT(dx2[0] == 0.0f && dx2[3] == 0.0f, "spmm_bwd with nnz 0 must give dx = 0");
  EXPECT(db2[0] == 4.0f && db2[1] == 7.0f, "spmm_bwd with nnz 0: db %g %g, want 4 7", db2[0],
         db2[1]);
  db2[0] = db2[1] = -7.0f;
  EXPECT_STATUS(sl_spmm_bwd_fm(2, 2, 2, 0, zero2, NULL, zero2, NULL, NULL, NULL, x2, dy2, dx2, NULL,
                               db2),
                SL_OK, NULL);
  EXPECT(db2[0] == 3.0f && db2[1] == 8.0f, "spmm_bwd_fm with nnz 0: db %g %g, want 3 8", db2[0],
         db2[1]);
  /* An empty batch: dw and db are empty sums. */
  db2[0] = db2[1] = -7.0f;
  EXPECT_STATUS(sl_spmm_bwd(0, 2, 2, 2, rp2, ci2, cp2, ri2, pm2, v2, NULL, NULL, NULL, dw2, db2),
                SL_OK, NULL);
  EXPECT(db2[0] == 0.0f && db2[1] == 0.0f && dw2[0] == 0.0f, "spmm_bwd at batch 0 must give zeros");
}

/* ------------------------------------------------------------ feature-major forms ---- */

/* t[c * rows + r] = a[r * cols + c]. */
static float *transposed(const float *a, int64_t rows, int64_t cols) {
  float *t = malloc((size_t)(rows * cols + 1) * sizeof(float));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/* sl_spmm_fwd_fm / sl_spmm_bwd_fm give the transposes of sl_spmm_fwd / sl_spmm_bwd, bit for bit
 * (the same kernels, another layout at the boundary), and reject a bad index writing nothing. */
static void test_feature_major_case(int32_t batch, int32_t n_in, int32_t n_out, double density) {
  csr_t m = random_csr(n_out, n_in, density);
  csc_t csc = csc_of(&m);
  int32_t *col_ptr = csc.col_ptr, *row_idx = csc.row_idx, *to_csr = csc.to_csr;
  const int64_t nx = (int64_t)batch * n_in, ny = (int64_t)batch * n_out;
  const size_t fx = (size_t)(nx + 1) * sizeof(float), fy = (size_t)(ny + 1) * sizeof(float);
  float *x = malloc(fx), *dy = malloc(fy);
  float *bias = malloc(((size_t)n_out + 1) * sizeof(float));
  fill_random(x, nx);
  fill_random(dy, ny);
  fill_random(bias, n_out);
  float *xT = transposed(x, batch, n_in), *dyT = transposed(dy, batch, n_out);
  float *y = malloc(fy), *yT = malloc(fy), *dx = malloc(fx), *dxT = malloc(fx);
  float *dw = malloc((size_t)(m.nnz + 1) * sizeof(float));
  float *dw2 = malloc((size_t)(m.nnz + 1) * sizeof(float));
  const size_t fb = ((size_t)n_out + 1) * sizeof(float);
  float *db = malloc(fb), *dbT = malloc(fb), *db_ref = malloc(fb);
  EXPECT_STATUS(sl_bias_grad(batch, n_out, dy, db_ref), SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_fwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, bias, x, y),
                SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_fwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, bias, xT,
                               yT),
                SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_bwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                            to_csr, m.values, x, dy, dx, dw, db),
                SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_bwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                               to_csr, m.values, xT, dyT, dxT, dw2, dbT),
                SL_OK, NULL);
  /* The bias gradient summed inside the backward: sl_bias_grad's bits, in both layouts. */
  EXPECT(memcmp(db, db_ref, (size_t)n_out * sizeof(float)) == 0,
         "spmm_bwd db is not sl_bias_grad's (batch %d, %d -> %d)", batch, n_in, n_out);
  EXPECT(memcmp(dbT, db_ref, (size_t)n_out * sizeof(float)) == 0,
         "spmm_bwd_fm db is not sl_bias_grad's (batch %d, %d -> %d)", batch, n_in, n_out);
  float *yy = transposed(yT, n_out, batch), *dxx = transposed(dxT, n_in, batch);
  EXPECT(memcmp(yy, y, (size_t)ny * sizeof(float)) == 0,
         "spmm_fwd_fm is not the transpose of spmm_fwd (batch %d, %d -> %d)", batch, n_in, n_out);
  EXPECT(memcmp(dxx, dx, (size_t)nx * sizeof(float)) == 0,
         "spmm_bwd_fm dx is not the transpose of spmm_bwd's (batch %d, %d -> %d)", batch, n_in,
         n_out);
  EXPECT(memcmp(dw2, dw, (size_t)m.nnz * sizeof(float)) == 0,
         "spmm_bwd_fm dw differs from spmm_bwd's (batch %d, %d -> %d)", batch, n_in, n_out);
  if (m.nnz > 0) {
    /* A bad column / row index: the error names it and nothing is written. */
    const int64_t k = m.nnz / 2;
    const int32_t saved_col = m.col_idx[k], saved_row = row_idx[k];
    m.col_idx[k] = n_in;
    for (int64_t i = 0; i < ny; i++) yT[i] = -3.0f;
    EXPECT_STATUS(sl_spmm_fwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, bias,
                                 xT, yT),
                  SL_E_INDEX_OUT_OF_RANGE, "is outside [0,");
    int untouched = 1;
    for (int64_t i = 0; i < ny; i++) untouched &= yT[i] == -3.0f;
    EXPECT(untouched, "spmm_fwd_fm wrote its output despite a bad index");
    m.col_idx[k] = saved_col;
    row_idx[k] = -1;
    for (int64_t i = 0; i < nx; i++) dxT[i] = -3.0f;
    for (int64_t i = 0; i < n_out; i++) db[i] = dbT[i] = -3.0f;
    EXPECT_STATUS(sl_spmm_bwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                                 to_csr, m.values, xT, dyT, dxT, dw2, dbT),
                  SL_E_INDEX_OUT_OF_RANGE, "row_idx[");
    EXPECT_STATUS(sl_spmm_bwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                              to_csr, m.values, x, dy, dx, dw, db),
                  SL_E_INDEX_OUT_OF_RANGE, "row_idx[");
    untouched = 1;
    for (int64_t i = 0; i < nx; i++) untouched &= dxT[i] == -3.0f;
    for (int64_t i = 0; i < n_out; i++) untouched &= db[i] == -3.0f && dbT[i] == -3.0f;
    EXPECT(untouched, "spmm_bwd(_fm) wrote dx or db despite a bad index");
    row_idx[k] = saved_row;
  }
  float *bufs[] = {x, dy, bias, xT, dyT, y, yT, dx, dxT, dw, dw2, yy, dxx, db, dbT, db_ref};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free_csc(&csc);
  free_csr(&m);
}

static void test_feature_major(void) {
  const int32_t batches[] = {1, 2, 7, 8, 13, 64, 65, 130};
  for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
    test_feature_major_case(batches[i], 37, 29, 0.3);
    test_feature_major_case(batches[i], 300, 257, 0.02);
  }
  /* Null outputs are refused like the batch-major forms'. */
  int32_t rp[2] = {0, 1}, ci[1] = {0};
  float v[1] = {1.0f}, xs[2] = {1.0f, 2.0f};
  EXPECT_STATUS(sl_spmm_fwd_fm(2, 1, 1, 1, rp, ci, v, NULL, xs, NULL), SL_E_NULL_POINTER, "y");
}

/* ------------------------------------------------------- values in CSC order ---- */

/* sl_spmm_fwd_permuted and sl_spmm_bwd_csc on the values in CSC order against sl_spmm_fwd and
 * sl_spmm_bwd on the same values in CSR order: the same bits (dw permuted), in the current
 * precision; bad indices are named and leave the outputs untouched. */
static void test_csc_values_case(int32_t batch, int32_t n_in, int32_t n_out, double density) {
  csr_t m = random_csr(n_out, n_in, density);
  csc_t csc = csc_of(&m);
  const int64_t nnz = m.nnz, nx = (int64_t)batch * n_in, ny = (int64_t)batch * n_out;
  const size_t fx = (size_t)(nx + 1) * sizeof(float), fy = (size_t)(ny + 1) * sizeof(float);
  const size_t fw = (size_t)(nnz + 1) * sizeof(float), fb = ((size_t)n_out + 1) * sizeof(float);
  float *x = malloc(fx), *dy = malloc(fy), *bias = malloc(fb);
  fill_random(x, nx);
  fill_random(dy, ny);
  fill_random(bias, n_out);
  float *vals_csc = malloc(fw);
  int32_t *to_csc = malloc((size_t)(nnz + 1) * sizeof(int32_t));
  for (int64_t k = 0; k < nnz; k++) {
    vals_csc[k] = m.values[csc.to_csr[k]];
    to_csc[csc.to_csr[k]] = (int32_t)k;
  }
  float *y = malloc(fy), *y2 = malloc(fy), *dx = malloc(fx), *dx2 = malloc(fx);
  float *dw = malloc(fw), *dw2 = malloc(fw), *db = malloc(fb), *db2 = malloc(fb);
  EXPECT_STATUS(sl_spmm_fwd(batch, n_in, n_out, nnz, m.row_ptr, m.col_idx, m.values, bias, x, y),
                SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_fwd_permuted(batch, n_in, n_out, nnz, m.row_ptr, m.col_idx, to_csc,
                                     vals_csc, bias, x, y2),
                SL_OK, NULL);
  EXPECT(memcmp(y, y2, (size_t)ny * sizeof(float)) == 0,
         "spmm_fwd_permuted differs from spmm_fwd (batch %d, %d -> %d)", batch, n_in, n_out);
  EXPECT_STATUS(sl_spmm_bwd(batch, n_in, n_out, nnz, m.row_ptr, m.col_idx, csc.col_ptr,
                            csc.row_idx, csc.to_csr, m.values, x, dy, dx, dw, db),
                SL_OK, NULL);
  EXPECT_STATUS(sl_spmm_bwd_csc(batch, n_in, n_out, nnz, csc.col_ptr, csc.row_idx, vals_csc, x, dy,
                                dx2, dw2, db2),
                SL_OK, NULL);
  int same_dw = 1;
  for (int64_t k = 0; k < nnz; k++) same_dw &= memcmp(&dw2[k], &dw[csc.to_csr[k]], 4) == 0;
  EXPECT(memcmp(dx, dx2, (size_t)nx * sizeof(float)) == 0 && same_dw &&
             memcmp(db, db2, (size_t)n_out * sizeof(float)) == 0,
         "spmm_bwd_csc differs from spmm_bwd (batch %d, %d -> %d)", batch, n_in, n_out);
  if (nnz > 0) {
    const int64_t k = nnz / 2;
    for (int64_t i = 0; i < ny; i++) y2[i] = -3.0f;
    to_csc[k] = (int32_t)nnz;
    EXPECT_STATUS(sl_spmm_fwd_permuted(batch, n_in, n_out, nnz, m.row_ptr, m.col_idx, to_csc,
                                       vals_csc, bias, x, y2),
                  SL_E_INDEX_OUT_OF_RANGE, "csr_to_csc[");
    to_csc[k] = csc.to_csr[0] == k ? 0 : to_csc[k]; /* (restored below) */
    for (int64_t j = 0; j < nnz; j++) to_csc[csc.to_csr[j]] = (int32_t)j;
    const int32_t saved_col = m.col_idx[k];
    m.col_idx[k] = -1;
    EXPECT_STATUS(sl_spmm_fwd_permuted(batch, n_in, n_out, nnz, m.row_ptr, m.col_idx, to_csc,
                                       vals_csc, bias, x, y2),
                  SL_E_INDEX_OUT_OF_RANGE, "col_idx[");
    m.col_idx[k] = saved_col;
    int untouched = 1;
    for (int64_t i = 0; i < ny; i++) untouched &= y2[i] == -3.0f;
    EXPECT(untouched, "spmm_fwd_permuted wrote y despite a bad index");
    const int32_t saved_row = csc.row_idx[k];
    csc.row_idx[k] = n_out;
    for (int64_t i = 0; i < nx; i++) dx2[i] = -3.0f;
    for (int64_t i = 0; i < nnz; i++) dw2[i] = -3.0f;
    for (int64_t i = 0; i < n_out; i++) db2[i] = -3.0f;
    EXPECT_STATUS(sl_spmm_bwd_csc(batch, n_in, n_out, nnz, csc.col_ptr, csc.row_idx, vals_csc, x,
                                  dy, dx2, dw2, db2),
                  SL_E_INDEX_OUT_OF_RANGE, "row_idx[");
    csc.row_idx[k] = saved_row;
    untouched = 1;
    for (int64_t i = 0; i < nx; i++) untouched &= dx2[i] == -3.0f;
    for (int64_t i = 0; i < nnz; i++) untouched &= dw2[i] == -3.0f;
    for (int64_t i = 0; i < n_out; i++) untouched &= db2[i] == -3.0f;
    EXPECT(untouched, "spmm_bwd_csc wrote dx, dw or db despite a bad index");
  }
  float *bufs[] = {x, dy, bias, vals_csc, y, y2, dx, dx2, dw, dw2, db, db2};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(to_csc);
  free_csc(&csc);
  free_csr(&m);
}

static void test_csc_values(void) {
  const int32_t batches[] = {1, 2, 7, 13, 64, 65, 130};
  for (int32_t precision = SL_PRECISION_HIGHEST; precision <= SL_PRECISION_MEDIUM; precision++) {
    EXPECT_STATUS(sl_set_matmul_precision(precision), SL_OK, NULL);
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
      test_csc_values_case(batches[i], 37, 29, 0.3);
      test_csc_values_case(batches[i], 300, 257, 0.02);
    }
    /* Values past 1 MiB: the forward gathers them into CSR order first (VALUES_IN_CACHE). */
    test_csc_values_case(16, 2000, 1000, 0.15);
  }
  EXPECT_STATUS(sl_set_matmul_precision(SL_PRECISION_HIGHEST), SL_OK, NULL);
  /* Null pointers are refused, named. */
  int32_t rp[2] = {0, 1}, ci[1] = {0}, perm[1] = {0};
  float v[1] = {1.0f}, xs[2] = {1.0f, 2.0f}, out[2], dw[1];
  EXPECT_STATUS(sl_spmm_fwd_permuted(2, 1, 1, 1, rp, ci, NULL, v, NULL, xs, out),
                SL_E_NULL_POINTER, "csr_to_csc");
  EXPECT_STATUS(sl_spmm_bwd_csc(2, 1, 1, 1, rp, NULL, v, xs, xs, out, dw, NULL),
                SL_E_NULL_POINTER, "row_idx");
  EXPECT_STATUS(sl_spmm_bwd_csc(2, 1, 1, 1, rp, ci, v, xs, xs, out, NULL, NULL),
                SL_E_NULL_POINTER, "dw");
  EXPECT_STATUS(sl_spmm_fwd_permuted(2, 1, 1, 1, rp, ci, perm, v, NULL, xs, out), SL_OK, NULL);
  EXPECT(out[0] == 1.0f && out[1] == 2.0f, "spmm_fwd_permuted 1x1: %g %g", out[0], out[1]);
}

/* ------------------------------------------------------------- medium precision ---- */

/* f rounded to bfloat16 (to nearest, ties to even; NaN kept NaN), back as a float. */
static float bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) u |= 0x00400000u;
  else u += 0x7FFFu + ((u >> 16) & 1);
  u &= 0xFFFF0000u;
  memcpy(&f, &u, sizeof f);
  return f;
}

static float *rounded(const float *a, int64_t n) {
  float *r = malloc((size_t)(n + 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) r[i] = bf16(a[i]);
  return r;
}

/* Bitwise equality of two float arrays, NaN payloads aside (any NaN equals any NaN). */
static int same_bits(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(a[i] != a[i] && b[i] != b[i])) return 0;
  return 1;
}

/* With SL_PRECISION_MEDIUM the batched kernels give, bit for bit, what they give at the
 * highest precision on the gathered operand rounded to bfloat16 (x forward, dy backward), in
 * both layouts; the other operand is used as it is. At batch 1 nothing changes. */
static void test_medium_precision_case(int32_t batch, int32_t n_in, int32_t n_out, double density,
                                       int specials) {
  csr_t m = random_csr(n_out, n_in, density);
  csc_t csc = csc_of(&m);
  int32_t *col_ptr = csc.col_ptr, *row_idx = csc.row_idx, *to_csr = csc.to_csr;
  const int64_t nx = (int64_t)batch * n_in, ny = (int64_t)batch * n_out, nz = m.nnz + 1;
  float *x = malloc((size_t)(nx + 1) * sizeof(float));
  float *dy = malloc((size_t)(ny + 1) * sizeof(float));
  float *bias = malloc(((size_t)n_out + 1) * sizeof(float));
  fill_random(x, nx);
  fill_random(dy, ny);
  fill_random(bias, n_out);
  if (specials && nx > 3 && ny > 3) { /* ties, a NaN, an infinity, a value that rounds up to inf */
    x[0] = 1.00390625f; /* exactly halfway between two bfloat16 values: ties to even */
    x[1] = 3.0e38f;
    x[2] = 0.0f / 0.0f;
    dy[0] = 1.0f / 0.0f;
    dy[1] = -1.01171875f;
    dy[2] = 3.3895e38f; /* rounds to +inf */
    const uint32_t signaling = 0x7F800001u; /* a NaN that plain rounding would turn into inf */
    memcpy(&x[3], &signaling, sizeof x[3]);
    memcpy(&dy[3], &signaling, sizeof dy[3]);
  }
  /* Batch 1 has kernels of its own, which the setting leaves in float32. */
  float *xr = batch > 1 ? rounded(x, nx) : transposed(x, 1, nx);
  float *dyr = batch > 1 ? rounded(dy, ny) : transposed(dy, 1, ny);
  for (int fm = 0; fm < 2; fm++) {
    float *xi = fm ? transposed(x, batch, n_in) : x, *dyi = fm ? transposed(dy, batch, n_out) : dy;
    float *xri = fm ? transposed(xr, batch, n_in) : xr;
    float *dyri = fm ? transposed(dyr, batch, n_out) : dyr;
    float *y[2], *dx[2], *dw[2], *dxi[2], *db[2];
    for (int p = 0; p < 2; p++) {
      db[p] = malloc(((size_t)n_out + 1) * sizeof(float));
      y[p] = malloc((size_t)(ny + 1) * sizeof(float));
      dx[p] = malloc((size_t)(nx + 1) * sizeof(float));
      dxi[p] = malloc((size_t)(nx + 1) * sizeof(float));
      dw[p] = malloc((size_t)nz * sizeof(float));
      /* p 0: highest on the rounded operand; p 1: medium on the operand as given. */
      EXPECT_STATUS(sl_set_matmul_precision(p ? SL_PRECISION_MEDIUM : SL_PRECISION_HIGHEST), SL_OK,
                    NULL);
      const float *xa = p ? xi : xri, *dya = p ? dyi : dyri;
      EXPECT_STATUS((fm ? sl_spmm_fwd_fm : sl_spmm_fwd)(batch, n_in, n_out, m.nnz, m.row_ptr,
                                                        m.col_idx, m.values, bias, xa, y[p]),
                    SL_OK, NULL);
      EXPECT_STATUS((fm ? sl_spmm_bwd_fm : sl_spmm_bwd)(batch, n_in, n_out, m.nnz, m.row_ptr,
                                                        m.col_idx, col_ptr, row_idx, to_csr,
                                                        m.values, xi, dya, dx[p], dw[p], db[p]),
                    SL_OK, NULL);
      if (!fm)
        EXPECT_STATUS(sl_spmm_bwd_input(batch, n_in, n_out, m.nnz, col_ptr, row_idx, to_csr,
                                        m.values, dya, dxi[p]),
                      SL_OK, NULL);
    }
    EXPECT_STATUS(sl_set_matmul_precision(SL_PRECISION_HIGHEST), SL_OK, NULL);
    const char *layout = fm ? "feature-major" : "batch-major";
    EXPECT(same_bits(y[0], y[1], ny), "medium forward (%s, batch %d, %d -> %d) is not the highest "
           "forward of the rounded input", layout, batch, n_in, n_out);
    EXPECT(same_bits(dx[0], dx[1], nx), "medium backward dx (%s, batch %d, %d -> %d) differs",
           layout, batch, n_in, n_out);
    EXPECT(same_bits(dw[0], dw[1], m.nnz), "medium backward dw (%s, batch %d, %d -> %d) differs",
           layout, batch, n_in, n_out);
    if (!fm)
      EXPECT(same_bits(dxi[0], dxi[1], nx), "medium input gradient (batch %d, %d -> %d) differs",
             batch, n_in, n_out);
    { /* db is summed from dy as given, before any rounding: sl_bias_grad's at both settings */
      float *db_ref = malloc(((size_t)n_out + 1) * sizeof(float));
      EXPECT_STATUS(sl_bias_grad(batch, n_out, dy, db_ref), SL_OK, NULL);
      EXPECT(same_bits(db[1], db_ref, n_out), "medium backward db (%s, batch %d) is not "
             "sl_bias_grad's", layout, batch);
      EXPECT_STATUS(sl_bias_grad(batch, n_out, dyr, db_ref), SL_OK, NULL);
      EXPECT(same_bits(db[0], db_ref, n_out), "highest backward db (%s, batch %d) is not "
             "sl_bias_grad's", layout, batch);
      free(db_ref);
    }
    if (batch > 1 && !specials) { /* and it is not the highest-precision result itself */
      float *y_hi = malloc((size_t)(ny + 1) * sizeof(float));
      sl_spmm_fwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, bias, x, y_hi);
      EXPECT(fm || m.nnz == 0 || memcmp(y_hi, y[1], (size_t)ny * sizeof(float)) != 0,
             "medium forward equals the float32 one: was the input rounded?");
      free(y_hi);
    }
    for (int p = 0; p < 2; p++) {
      free(y[p]);
      free(dx[p]);
      free(dxi[p]);
      free(dw[p]);
      free(db[p]);
    }
    if (fm) {
      free(xi);
      free(dyi);
      free(xri);
      free(dyri);
    }
  }
  float *bufs[] = {x, dy, bias, xr, dyr};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free_csc(&csc);
  free_csr(&m);
}

static void test_medium_precision(void) {
  EXPECT(sl_get_matmul_precision() == SL_PRECISION_HIGHEST, "the default is not the highest");
  EXPECT_STATUS(sl_set_matmul_precision(2), SL_E_INVALID_ARGUMENT, "precision must be");
  EXPECT_STATUS(sl_set_matmul_precision(-1), SL_E_INVALID_ARGUMENT, "got -1");
  EXPECT(sl_get_matmul_precision() == SL_PRECISION_HIGHEST, "a rejected value was kept");
  const int32_t batches[] = {1, 2, 7, 8, 9, 13, 24, 40, 56, 64, 65, 130};
  for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
    test_medium_precision_case(batches[i], 37, 29, 0.3, 0);
    test_medium_precision_case(batches[i], 300, 257, 0.02, 0);
    test_medium_precision_case(batches[i], 41, 33, 0.2, 1);
  }
  /* Panels of a MiB and more (kept between calls, on 2 MiB pages). */
  test_medium_precision_case(64, 20000, 3000, 0.001, 0);
}

/* The batched kernels reuse their scratch between calls, and a batch that is not a multiple of 8
 * leaves padding columns in it: those must be rewritten as zeros every call. After calls whose
 * inputs were all NaN (batch 16), every kernel at batch 13 (the same scratch sizes) must give,
 * bit for bit, what it gave before them; a NaN left in the padding would reach dw through
 * 0 * NaN. Widths of 20000 make every panel at least 1 MiB, the size scratch.c keeps between
 * calls (smaller blocks come from malloc). */
static void test_stale_scratch(void) {
  const int32_t batch = 13, wide = 16, n_in = 20000, n_out = 20000, per_row = 6;
  csr_t m = {n_out, n_in, (int64_t)n_out * per_row, NULL, NULL, NULL};
  m.row_ptr = malloc(((size_t)n_out + 1) * sizeof(int32_t));
  m.col_idx = malloc((size_t)m.nnz * sizeof(int32_t));
  m.values = malloc((size_t)m.nnz * sizeof(float));
  for (int32_t r = 0; r <= n_out; r++) m.row_ptr[r] = r * per_row;
  for (int64_t k = 0; k < m.nnz; k++) { /* one column in each sixth of the row: sorted */
    const int32_t part = n_in / per_row;
    m.col_idx[k] = (int32_t)(k % per_row) * part + rnd_int(part);
    m.values[k] = rnd_float();
  }
  csc_t csc = csc_of(&m);
  int32_t *col_ptr = csc.col_ptr, *row_idx = csc.row_idx, *to_csr = csc.to_csr;
  const size_t fx = (size_t)wide * n_in * sizeof(float), fy = (size_t)wide * n_out * sizeof(float);
  const size_t fw = (size_t)(m.nnz + 1) * sizeof(float);
  float *x = malloc(fx), *dy = malloc(fy), *nan_x = malloc(fx), *nan_dy = malloc(fy);
  fill_random(x, (int64_t)batch * n_in);
  fill_random(dy, (int64_t)batch * n_out);
  for (size_t i = 0; i < fx / sizeof(float); i++) nan_x[i] = NAN;
  for (size_t i = 0; i < fy / sizeof(float); i++) nan_dy[i] = NAN;
  float *xT = transposed(x, batch, n_in), *dyT = transposed(dy, batch, n_out);
  /* [0]: before the NaN calls, [1]: after. */
  float *y[2], *yT[2], *dx[2], *dxT[2], *dw[2], *dwT[2], *sd[2], *scratch_y = malloc(fy);
  float *scratch_x = malloc(fx), *scratch_w = malloc(fw);
  /* Each kernel at batch 13, and in the second run right after the same kernel at batch 16 on
   * all-NaN inputs (which leaves its scratch full of NaN: any other kernel in between could
   * take the same block and rewrite it). */
  for (int run = 0; run < 2; run++) {
    y[run] = malloc(fy), yT[run] = malloc(fy), dx[run] = malloc(fx), dxT[run] = malloc(fx);
    dw[run] = malloc(fw), dwT[run] = malloc(fw), sd[run] = malloc(fw);
    if (run) sl_spmm_fwd(wide, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, NULL, nan_x,
                         scratch_y);
    EXPECT_STATUS(sl_spmm_fwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, NULL, x,
                              y[run]),
                  SL_OK, NULL);
    if (run) sl_spmm_fwd_fm(wide, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, NULL, nan_x,
                            scratch_y);
    EXPECT_STATUS(sl_spmm_fwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, NULL,
                                 xT, yT[run]),
                  SL_OK, NULL);
    if (run) sl_spmm_bwd(wide, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx, to_csr,
                         m.values, nan_x, nan_dy, scratch_x, scratch_w, NULL);
    EXPECT_STATUS(sl_spmm_bwd(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                              to_csr, m.values, x, dy, dx[run], dw[run], NULL),
                  SL_OK, NULL);
    if (run) sl_spmm_bwd_fm(wide, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr, row_idx,
                            to_csr, m.values, nan_x, nan_dy, scratch_x, scratch_w, NULL);
    EXPECT_STATUS(sl_spmm_bwd_fm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, col_ptr,
                                 row_idx, to_csr, m.values, xT, dyT, dxT[run], dwT[run], NULL),
                  SL_OK, NULL);
    if (run) sl_sddmm(wide, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, nan_x, nan_dy, scratch_w);
    EXPECT_STATUS(sl_sddmm(batch, n_in, n_out, m.nnz, m.row_ptr, m.col_idx, x, dy, sd[run]), SL_OK,
                  NULL);
  }
  const size_t by = (size_t)batch * n_out * sizeof(float), bx = (size_t)batch * n_in * sizeof(float);
  const size_t bw = (size_t)m.nnz * sizeof(float);
  EXPECT(memcmp(y[0], y[1], by) == 0 && memcmp(yT[0], yT[1], by) == 0,
         "forward changed after NaN in the scratch");
  EXPECT(memcmp(dx[0], dx[1], bx) == 0 && memcmp(dxT[0], dxT[1], bx) == 0,
         "input gradient changed after NaN in the scratch");
  EXPECT(memcmp(dw[0], dw[1], bw) == 0 && memcmp(dwT[0], dwT[1], bw) == 0 &&
             memcmp(sd[0], sd[1], bw) == 0,
         "weight gradient changed after NaN in the scratch");
  for (int run = 0; run < 2; run++) {
    float *bufs[] = {y[run], yT[run], dx[run], dxT[run], dw[run], dwT[run], sd[run]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  }
  float *rest[] = {x, dy, nan_x, nan_dy, xT, dyT, scratch_y, scratch_x, scratch_w};
  for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) free(rest[i]);
  free_csc(&csc);
  free_csr(&m);
}

/* --------------------------------------------------------------- group collapse ---- */

/* sl_group_collapse against the sum in row order (bit for bit: the CPU adds in that order at any
 * thread count), sl_group_collapse_bwd against the gather. */
static void test_group_collapse_case(int32_t n_in, int32_t n_out, double density, int32_t size) {
  csr_t m = random_csr(n_out, n_in, density);
  const int64_t ng = (int64_t)size * n_in;
  float *want = calloc((size_t)ng + 1, sizeof(float));
  float *g = malloc(((size_t)ng + 1) * sizeof(float));
  for (int32_t o = 0; o < n_out; o++)
    for (int64_t k = m.row_ptr[o]; k < m.row_ptr[o + 1]; k++)
      want[(int64_t)(o % size) * n_in + m.col_idx[k]] += m.values[k];
  const int32_t threads[] = {1, 2, 3};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    sl_set_num_threads(threads[t]);
    for (int64_t i = 0; i < ng; i++) g[i] = -9.0f;
    EXPECT_STATUS(sl_group_collapse(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, size, g),
                  SL_OK, NULL);
    EXPECT(memcmp(g, want, (size_t)ng * sizeof(float)) == 0,
           "group_collapse differs from the row-order sum (%d -> %d, size %d, %d threads)", n_in,
           n_out, size, threads[t]);
  }
  sl_set_num_threads(0);
  float *dg = malloc(((size_t)ng + 1) * sizeof(float));
  float *dw = malloc(((size_t)m.nnz + 1) * sizeof(float));
  fill_random(dg, ng);
  EXPECT_STATUS(sl_group_collapse_bwd(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, dg, size, dw),
                SL_OK, NULL);
  int same = 1;
  for (int32_t o = 0; o < n_out; o++)
    for (int64_t k = m.row_ptr[o]; k < m.row_ptr[o + 1]; k++)
      same &= dw[k] == dg[(int64_t)(o % size) * n_in + m.col_idx[k]];
  EXPECT(same, "group_collapse_bwd is not dg at (o mod size, col) (%d -> %d, size %d)", n_in, n_out,
         size);
  if (m.nnz > 1) {
    /* A column out of range, then a row whose columns go down: named, at any thread count. */
    const int64_t k = m.nnz / 2;
    const int32_t saved = m.col_idx[k];
    char msg[160];
    m.col_idx[k] = n_in + 3;
    snprintf(msg, sizeof msg, "col_idx[%lld] = %d is outside [0, %d)", (long long)k, n_in + 3,
             n_in);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
      sl_set_num_threads(threads[t]);
      EXPECT_STATUS(sl_group_collapse(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, size, g),
                    SL_E_INDEX_OUT_OF_RANGE, msg);
      EXPECT_STATUS(sl_group_collapse_bwd(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, dg, size, dw),
                    SL_E_INDEX_OUT_OF_RANGE, msg);
    }
    m.col_idx[k] = saved;
    int32_t r = 0; /* a row with two entries: swap them */
    while (r < n_out && m.row_ptr[r + 1] - m.row_ptr[r] < 2) r++;
    if (r < n_out) {
      const int64_t a = m.row_ptr[r];
      int32_t tmp = m.col_idx[a];
      m.col_idx[a] = m.col_idx[a + 1];
      m.col_idx[a + 1] = tmp;
      snprintf(msg, sizeof msg, "col_idx[%lld] = %d is less than col_idx[%lld] = %d",
               (long long)(a + 1), tmp, (long long)a, m.col_idx[a]);
      for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        sl_set_num_threads(threads[t]);
        EXPECT_STATUS(
            sl_group_collapse(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, m.values, size, g),
            SL_E_INVALID_ARGUMENT, msg);
      }
      /* The backward does not depend on the order: it still answers. */
      EXPECT_STATUS(sl_group_collapse_bwd(n_in, n_out, m.nnz, m.row_ptr, m.col_idx, dg, size, dw),
                    SL_OK, NULL);
      m.col_idx[a + 1] = m.col_idx[a];
      m.col_idx[a] = tmp;
    }
    sl_set_num_threads(0);
  }
  free(want);
  free(g);
  free(dg);
  free(dw);
  free_csr(&m);
}

static void test_group_collapse(void) {
  test_group_collapse_case(37, 29, 0.3, 1);
  test_group_collapse_case(37, 30, 0.3, 10);
  test_group_collapse_case(5, 3, 0.9, 7);  /* more groups than outputs: the rest stay 0 */
  test_group_collapse_case(0, 4, 0.5, 2);  /* no inputs, no entries */
  test_group_collapse_case(700, 900, 0.3, 10); /* above the serial threshold: threads split G */
  int32_t rp[3] = {0, 1, 2}, ci[2] = {0, 1}, bad_rp[3] = {0, 2, 1};
  float v[2] = {1.0f, 2.0f}, g[4];
  EXPECT_STATUS(sl_group_collapse(2, 2, 2, rp, ci, v, 0, g), SL_E_INVALID_ARGUMENT,
                "size must be >= 1 (outputs per group), got 0");
  EXPECT_STATUS(sl_group_collapse_bwd(2, 2, 2, rp, ci, v, -1, g), SL_E_INVALID_ARGUMENT,
                "size must be >= 1");
  EXPECT_STATUS(sl_group_collapse(2, 2, 2, rp, ci, v, 2, NULL), SL_E_NULL_POINTER,
                "g must not be null");
  EXPECT_STATUS(sl_group_collapse_bwd(2, 2, 2, rp, ci, NULL, 2, g), SL_E_NULL_POINTER,
                "dg must not be null");
  EXPECT_STATUS(sl_group_collapse(2, 2, 2, bad_rp, ci, v, 2, g), SL_E_INVALID_ARGUMENT,
                "row_ptr[2] = 1 is less than row_ptr[1] = 2");
  EXPECT_STATUS(sl_group_collapse_bwd(2, 2, 3, rp, ci, v, 2, g), SL_E_INVALID_ARGUMENT,
                "row_ptr[2] = 2, must equal nnz = 3");
  EXPECT_STATUS(sl_group_collapse(2, 2, -1, rp, ci, v, 2, g), SL_E_INVALID_ARGUMENT, "nnz");
}

int main(void) {
  test_coo_to_csr();
  test_csr_validate();
  test_csr_to_csc();
  test_kernels();
  test_feature_major();
  test_csc_values();
  test_medium_precision();
  test_stale_scratch();
  test_group_collapse();
  if (failures) {
    fprintf(stderr, "test_sparse: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_sparse: all %d checks passed\n", checks);
  return 0;
}
