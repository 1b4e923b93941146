/*
 * test_dense.c — GEMM (CBLAS and portable paths), broadcasting binary ops, unary ops, sums,
 * strided copy and log-softmax against naive double-precision references, plus error returns.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/dense_internal.h"
#include "sparselinear.h"

#include "expect.h"

#define EXPECT_STATUS(call, code)                                                        \
  do {                                                                                   \
    sl_status st_ = (call);                                                              \
    EXPECT(st_ == (code), "%s returned %d, expected %d (%s)", #call, st_, (code),        \
           sl_last_error());                                                             \
  } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *rand_array(int64_t n) {
  float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) a[i] = frand();
  return a;
}
static int close_to(double got, double want, double tol) {
  return fabs(got - want) <= tol * (1.0 + fabs(want));
}

/* ------------------------------------------------------------------ gemm ---- */

typedef sl_status (*gemm_fn)(int32_t, int32_t, int32_t, int32_t, int32_t, float, const float *,
                             int32_t, const float *, int32_t, float, float *, int32_t);

static void check_gemm_case(const char *name, gemm_fn gemm, int ta, int tb, int m, int n, int k,
                            float alpha, float beta, int pad) {
  const int a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  float *a = rand_array((int64_t)a_rows * (lda > 0 ? lda : 1));
  float *b = rand_array((int64_t)b_rows * (ldb > 0 ? ldb : 1));
  float *c = rand_array((int64_t)m * ldc);
  float *c0 = malloc(sizeof(float) * (size_t)(m * ldc > 0 ? m * ldc : 1));
  memcpy(c0, c, sizeof(float) * (size_t)(m * ldc));
  if (beta == 0.0f)
    for (int64_t i = 0; i < (int64_t)m * ldc; i++) c[i] = NAN; /* must not be read */
  sl_status st = gemm(ta, tb, m, n, k, alpha, a, lda > 0 ? lda : 1, b, ldb > 0 ? ldb : 1, beta,
                      c, ldc > 0 ? ldc : 1);
  EXPECT(st == SL_OK, "%s ta=%d tb=%d %dx%dx%d: status %d (%s)", name, ta, tb, m, n, k, st,
         sl_last_error());
  double worst = 0.0;
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int p = 0; p < k; p++) {
        double av = ta ? a[p * lda + i] : a[i * lda + p];
        double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      double want = alpha * s + (beta == 0.0f ? 0.0 : beta * c0[i * ldc + j]);
      double err = fabs(c[i * ldc + j] - want) / (1.0 + fabs(want));
      if (!(err <= worst)) worst = err;
    }
    /* Padding columns of C are never written. */
    for (int j = n; j < ldc; j++)
      EXPECT(beta == 0.0f ? isnan(c[i * ldc + j]) : c[i * ldc + j] == c0[i * ldc + j],
             "%s wrote padding C[%d, %d]", name, i, j);
  }
  EXPECT(worst < 1e-4 * (1 + k / 64.0), "%s ta=%d tb=%d %dx%dx%d alpha=%g beta=%g: error %g",
         name, ta, tb, m, n, k, alpha, beta, worst);
  free(a);
  free(b);
  free(c);
  free(c0);
}

/* sl_gemm_skinny, which must take the shape (the skinny kernels run before CBLAS in sl_gemm). */
static sl_status skinny_only(int32_t ta, int32_t tb, int32_t m, int32_t n, int32_t k, float alpha,
                             const float *a, int32_t lda, const float *b, int32_t ldb, float beta,
                             float *c, int32_t ldc) {
  int taken = sl_gemm_skinny(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  EXPECT(taken, "sl_gemm_skinny did not take ta=%d tb=%d %dx%dx%d", ta, tb, m, n, k);
  return taken ? SL_OK : SL_E_INVALID_ARGUMENT;
}

/* Both skinny kernels against the double reference: tails of every loop, strides, alpha/beta. */
static void test_gemm_skinny(void) {
  /* Long dot products (A B^T, n <= 16): k past two chunks, with a tail of the 8-wide loop. */
  static const int dot[][3] = {{5, 10, 4096 + 37}, {3, 16, 8192}, {2, 1, 4100}, {64, 3, 4097}};
  /* Short inner dimension (op(A) B, m <= 16 and k <= 64, or m <= 64 and k <= 16: the input
   * gradient dy W of a layer with few outputs): n with a tail of the 64-column block. */
  static const int short_k[][3] = {{10, 300, 64}, {16, 1000, 7}, {1, 257, 1},
                                   {3, 2100, 33},  {64, 1100, 10}, {17, 300, 16}};
  for (int s = 0; s < 4; s++) {
    EXPECT(sl_gemm_skinny_dot_fits(0, 1, dot[s][0], dot[s][1], dot[s][2]), "dot shape %d", s);
    check_gemm_case("skinny dot", skinny_only, 0, 1, dot[s][0], dot[s][1], dot[s][2], 1.0f, 0.0f,
                    0);
    check_gemm_case("skinny dot", skinny_only, 0, 1, dot[s][0], dot[s][1], dot[s][2], -0.5f, 1.5f,
                    3);
  }
  for (int s = 0; s < 6; s++) {
    for (int ta = 0; ta < 2; ta++) {
      EXPECT(sl_gemm_skinny_k_fits(ta, 0, short_k[s][0], short_k[s][1], short_k[s][2]),
             "short-k shape %d", s);
      check_gemm_case("skinny k", skinny_only, ta, 0, short_k[s][0], short_k[s][1],
                      short_k[s][2], 1.0f, 0.0f, 0);
      check_gemm_case("skinny k", skinny_only, ta, 0, short_k[s][0], short_k[s][1],
                      short_k[s][2], 0.5f, 2.0f, 5);
    }
  }
  /* Shapes they leave to CBLAS / the portable kernel. */
  EXPECT(!sl_gemm_skinny_dot_fits(0, 1, 5, 17, 8192), "n = 17 is not a dot shape");
  EXPECT(!sl_gemm_skinny_dot_fits(0, 0, 5, 10, 8192), "A B is not a dot shape");
  EXPECT(!sl_gemm_skinny_dot_fits(0, 1, 5, 10, 4095), "a short k is not a dot shape");
  EXPECT(!sl_gemm_skinny_k_fits(0, 0, 17, 1000, 64), "m = 17, k = 64 is not a short-k shape");
  EXPECT(!sl_gemm_skinny_k_fits(0, 0, 17, 1000, 17), "m = 17, k = 17 is not a short-k shape");
  EXPECT(!sl_gemm_skinny_k_fits(0, 0, 65, 1000, 10), "m = 65 is not a short-k shape");
  EXPECT(!sl_gemm_skinny_k_fits(0, 1, 10, 1000, 64), "B^T is not a short-k shape");
  EXPECT(!sl_gemm_skinny_k_fits(0, 0, 10, 255, 64), "a narrow C is not a short-k shape");
}

static void test_gemm(void) {
  static const int sizes[][3] = {{1, 1, 1},  {3, 5, 7},    {37, 53, 29}, {1, 300, 64},
                                 {65, 1, 17}, {70, 270, 300}, {4, 16, 513}, {5, 17, 0},
                                 {0, 4, 3},  {6, 0, 2},
                                 /* one row or column of C, past the skinny kernels: GEMV */
                                 {1, 700, 900}, {900, 1, 700}, {1, 1, 5000}};
  const int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
  for (int path = 0; path < 2; path++) {
    gemm_fn fn = path == 0 ? sl_gemm : sl_gemm_portable;
    const char *name = path == 0 ? "sl_gemm" : "sl_gemm_portable";
    for (int s = 0; s < n_sizes; s++)
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
          check_gemm_case(name, fn, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, 0);
          check_gemm_case(name, fn, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0.5f, 1.5f, 3);
        }
    check_gemm_case(name, fn, 0, 0, 9, 10, 11, 0.0f, 2.0f, 0); /* alpha 0: only scales C */
  }
  printf("sl_has_cblas() = %d\n", sl_has_cblas());

  /* Errors. */
  float a[16] = {0}, b[16] = {0}, c[16] = {0};
  EXPECT_STATUS(sl_gemm(0, 0, -1, 2, 2, 1, a, 2, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm(0, 0, 2, -2, 2, 1, a, 2, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, -2, 1, a, 2, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm(2, 0, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT); /* lda */
  EXPECT(strstr(sl_last_error(), "lda") != NULL, "message names lda: %s", sl_last_error());
  EXPECT_STATUS(sl_gemm(0, 1, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2), SL_E_INVALID_ARGUMENT); /* ldb */
  EXPECT_STATUS(sl_gemm(0, 0, 2, 3, 2, 1, a, 2, b, 3, 0, c, 2), SL_E_INVALID_ARGUMENT); /* ldc */
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, 2, 1, NULL, 2, b, 2, 0, c, 2), SL_E_NULL_POINTER);
  EXPECT(strstr(sl_last_error(), "sl_gemm: a must not be null") != NULL, "message: %s",
         sl_last_error());
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, 2, 1, a, 2, NULL, 2, 0, c, 2), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, 2, 1, a, 2, b, 2, 0, NULL, 2), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_gemm(0, 0, 2, 2, 0, 1, NULL, 1, NULL, 2, 0, c, 2), SL_OK); /* k = 0 */
  EXPECT_STATUS(sl_gemm(0, 0, 0, 0, 0, 1, NULL, 1, NULL, 1, 0, NULL, 1), SL_OK);
}

static void test_gemm_batched(void) {
  const int batch = 3, m = 5, n = 7, k = 6;
  float *a = rand_array(batch * m * k), *b = rand_array(batch * k * n);
  float *c = calloc((size_t)(batch * m * n), sizeof(float));
  float *acc = calloc((size_t)(m * n), sizeof(float));
  /* Per-batch A with a shared B (stride_b = 0), and transposed A. */
  EXPECT_STATUS(sl_gemm_batched(1, 0, batch, m, n, k, 1.0f, a, m, m * k, b, n, 0, 0.0f, c, n,
                                m * n),
                SL_OK);
  /* Accumulate every batch into one C (stride_c = 0), with beta = 0 applying once. */
  for (int i = 0; i < m * n; i++) acc[i] = NAN;
  EXPECT_STATUS(sl_gemm_batched(0, 0, batch, m, n, k, 2.0f, a, k, m * k, b, n, k * n, 0.0f, acc,
                                n, 0),
                SL_OK);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double total = 0.0;
      for (int t = 0; t < batch; t++) {
        double s = 0.0, s2 = 0.0;
        for (int p = 0; p < k; p++) {
          s += (double)a[t * m * k + p * m + i] * b[p * n + j];
          s2 += (double)a[t * m * k + i * k + p] * b[t * k * n + p * n + j];
        }
        EXPECT(close_to(c[t * m * n + i * n + j], s, 1e-5), "batched c[%d,%d,%d] = %g, want %g", t,
               i, j, c[t * m * n + i * n + j], s);
        total += 2.0 * s2;
      }
      EXPECT(close_to(acc[i * n + j], total, 1e-5), "accumulated c[%d,%d] = %g, want %g", i, j,
             acc[i * n + j], total);
    }
  EXPECT_STATUS(sl_gemm_batched(0, 0, 2, m, n, k, 1, a, k, m * k, b, n, 0, 0, c, n, n),
                SL_E_INVALID_ARGUMENT); /* overlapping C */
  /* One C spans (m - 1) * ldc + n floats: one less overlaps the next matrix's first element. */
  EXPECT_STATUS(sl_gemm_batched(0, 0, 2, m, n, k, 1, a, k, m * k, b, n, 0, 0, c, n + 1,
                                (int64_t)(m - 1) * (n + 1) + n - 1),
                SL_E_INVALID_ARGUMENT);
  EXPECT(strstr(sl_last_error(), "stride_c must be 0 or >=") != NULL, "message: %s",
         sl_last_error());
  EXPECT_STATUS(sl_gemm_batched(0, 0, 2, m, n, k, 1, a, k, m * k, b, n, 0, 0, c, n + 1,
                                (int64_t)(m - 1) * (n + 1) + n),
                SL_OK); /* adjacent, not overlapping (c holds batch * m * n >= the span) */
  EXPECT_STATUS(sl_gemm_batched(0, 0, -1, m, n, k, 1, a, k, 0, b, n, 0, 0, c, n, 0),
                SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm_batched(0, 0, 2, m, n, k, 1, a, k, -1, b, n, 0, 0, c, n, 0),
                SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_gemm_batched(0, 0, 2, m, n, k, 1, a, k, 0, NULL, n, 0, 0, c, n, 0),
                SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_gemm_batched(0, 0, 0, m, n, k, 1, NULL, k, 0, NULL, n, 0, 0, NULL, n, 0),
                SL_E_NULL_POINTER); /* checks pointers even for batch 0 */
  free(a);
  free(b);
  free(c);
  free(acc);
}

/* ------------------------------------------------------------- binary ops ---- */

static double ref_binary(int op, double x, double y) {
  switch (op) {
    case SL_BINARY_ADD: return x + y;
    case SL_BINARY_SUB: return x - y;
    case SL_BINARY_MUL: return x * y;
    default: return x / y;
  }
}

/* Offset of flat output index i in an operand with the given strides. */
static int64_t offset_of(int64_t i, int ndim, const int64_t *shape, const int64_t *strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

/* sl_sum_dims over every reduce mask of `shape` against the sum into offset_of's places
 * (y holds at least numel floats). */
static void check_sum_dims_masks(int ndim, const int64_t *shape, float alpha, const float *x,
                                 float *y) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  double *want = malloc((size_t)n * sizeof(double));
  for (int mask = 0; mask < (1 << ndim); mask++) {
    EXPECT_STATUS(sl_sum_dims(ndim, shape, mask, alpha, x, y), SL_OK);
    int64_t ys[8], s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      ys[d] = (mask >> d) & 1 ? 0 : s;
      if (!((mask >> d) & 1)) s *= shape[d];
    }
    for (int64_t j = 0; j < s; j++) want[j] = 0;
    for (int64_t i = 0; i < n; i++) want[offset_of(i, ndim, shape, ys)] += alpha * x[i];
    for (int64_t j = 0; j < s; j++)
      EXPECT(close_to(y[j], want[j], 1e-6), "sum_dims %d-D mask %d at %lld: %g want %g", ndim,
             mask, (long long)j, y[j], want[j]);
  }
  free(want);
}


/* Contiguous strides of `in` (right-aligned to out's ndim), 0 where in is 1 (broadcast). */
static int64_t broadcast_strides(int ndim, const int64_t *out_shape, const int64_t *in_shape,
                                 int64_t *strides) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    strides[d] = in_shape[d] == 1 && out_shape[d] != 1 ? 0 : s;
    s *= in_shape[d];
  }
  return s;
}

static void check_binary_case(int ndim, const int64_t *out_shape, const int64_t *a_shape,
                              const int64_t *b_shape) {
  int64_t as[SL_MAX_DIMS], bs[SL_MAX_DIMS];
  const int64_t a_len = broadcast_strides(ndim, out_shape, a_shape, as);
  const int64_t b_len = broadcast_strides(ndim, out_shape, b_shape, bs);
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= out_shape[d];
  float *a = rand_array(a_len), *b = rand_array(b_len), *dy = rand_array(n);
  for (int64_t i = 0; i < b_len; i++) b[i] = b[i] >= 0 ? b[i] + 0.5f : b[i] - 0.5f; /* for div */
  float *out = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  float *da = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  float *db = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
  for (int op = SL_BINARY_ADD; op <= SL_BINARY_DIV; op++) {
    EXPECT_STATUS(sl_binary(op, ndim, out_shape, a, a_len, as, b, b_len, bs, out), SL_OK);
    EXPECT_STATUS(sl_binary_bwd(op, ndim, out_shape, a, a_len, as, b, b_len, bs, dy, da, db),
                  SL_OK);
    for (int64_t i = 0; i < n; i++) {
      const double x = a[offset_of(i, ndim, out_shape, as)];
      const double y = b[offset_of(i, ndim, out_shape, bs)];
      const double want = ref_binary(op, x, y);
      EXPECT(close_to(out[i], want, 1e-6), "binary op %d ndim %d at %lld: %g, want %g", op, ndim,
             (long long)i, out[i], want);
      double want_da, want_db;
      switch (op) {
        case SL_BINARY_ADD: want_da = dy[i]; want_db = dy[i]; break;
        case SL_BINARY_SUB: want_da = dy[i]; want_db = -dy[i]; break;
        case SL_BINARY_MUL: want_da = dy[i] * y; want_db = dy[i] * x; break;
        default: want_da = dy[i] / y; want_db = -dy[i] * x / (y * y); break;
      }
      EXPECT(close_to(da[i], want_da, 1e-5) && close_to(db[i], want_db, 1e-5),
             "binary_bwd op %d at %lld: (%g, %g), want (%g, %g)", op, (long long)i, da[i], db[i],
             want_da, want_db);
    }
  }
  free(a);
  free(b);
  free(dy);
  free(out);
  free(da);
  free(db);
}

static void test_binary(void) {
  { /* same shape, long enough to run in parallel (above SL_PARALLEL_MIN = 2^18) */
    int64_t s[2] = {600, 601};
    check_binary_case(2, s, s, s);
  }
  { /* bias-style broadcast [B, N] + [1, N], and its mirror */
    int64_t o[2] = {17, 33}, a[2] = {17, 33}, b[2] = {1, 33};
    check_binary_case(2, o, a, b);
    check_binary_case(2, o, b, a);
  }
  { /* both operands broadcast: [5, 1, 7] op [1, 6, 1] -> [5, 6, 7] */
    int64_t o[3] = {5, 6, 7}, a[3] = {5, 1, 7}, b[3] = {1, 6, 1};
    check_binary_case(3, o, a, b);
  }
  { /* 8 dims with size-1 and broadcast dims mixed */
    int64_t o[8] = {2, 1, 3, 2, 1, 2, 3, 2}, a[8] = {2, 1, 1, 2, 1, 2, 3, 1},
            b[8] = {1, 1, 3, 2, 1, 1, 3, 2};
    check_binary_case(8, o, a, b);
  }
  { /* scalar (ndim 0) and an empty shape */
    check_binary_case(0, NULL, NULL, NULL);
    int64_t o[2] = {0, 4};
    check_binary_case(2, o, o, o);
  }
  { /* large with a broadcast column: parallel rows */
    int64_t o[2] = {2100, 129}, b[2] = {2100, 1};
    check_binary_case(2, o, o, b);
  }
  /* Errors. */
  float x[6] = {1, 2, 3, 4, 5, 6}, out[6];
  int64_t shape[2] = {2, 3}, st[2] = {3, 1}, bad[2] = {3, 2}, neg[2] = {3, -1};
  int64_t big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 6, st, x, 6, st, out), SL_OK);
  EXPECT_STATUS(sl_binary(4, 2, shape, x, 6, st, x, 6, st, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_binary(0, 9, big, x, 6, big, x, 6, big, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_binary(0, -1, shape, x, 6, st, x, 6, st, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 6, bad, x, 6, st, out), SL_E_INDEX_OUT_OF_RANGE);
  EXPECT(strstr(sl_last_error(), "a_strides") != NULL, "message names a_strides: %s",
         sl_last_error());
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 5, st, x, 6, st, out), SL_E_INDEX_OUT_OF_RANGE);
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 6, st, x, 6, neg, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_binary(0, 2, shape, NULL, 6, st, x, 6, st, out), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 6, st, x, 6, NULL, out), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_binary(0, 2, shape, x, 6, st, x, 6, st, NULL), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_binary(0, 2, NULL, x, 6, st, x, 6, st, out), SL_E_NULL_POINTER);
  int64_t negshape[2] = {-2, 3};
  EXPECT_STATUS(sl_binary(0, 2, negshape, x, 6, st, x, 6, st, out), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_binary_bwd(2, 2, shape, NULL, 6, st, x, 6, st, x, out, NULL),
                SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_binary_bwd(0, 2, shape, NULL, 0, NULL, NULL, 0, NULL, x, out, NULL), SL_OK);
  EXPECT_STATUS(sl_binary_bwd(0, 2, shape, NULL, 0, NULL, NULL, 0, NULL, NULL, out, NULL),
                SL_E_NULL_POINTER);
}

/* --------------------------------------------------------------- unary ops ---- */

static void test_unary(void) {
  const int64_t n = 300007; /* odd and above the parallel threshold (2^18) */
  float *x = rand_array(n), *y = malloc(sizeof(float) * n), *dy = rand_array(n);
  float *dx = malloc(sizeof(float) * n);
  const float alpha = 1.7f, beta = -0.3f;
  for (int op = SL_UNARY_NEG; op <= SL_UNARY_POW; op++) {
    /* log, sqrt, pow and reciprocal need positive (or non-zero) inputs. */
    const int positive = op == SL_UNARY_LOG || op == SL_UNARY_SQRT || op == SL_UNARY_POW ||
                         op == SL_UNARY_RECIPROCAL;
    for (int64_t i = 0; i < n; i++) {
      x[i] = frand() * 4.0f;
      if (positive) x[i] = fabsf(x[i]) + 0.1f;
    }
    EXPECT_STATUS(sl_unary(op, n, alpha, beta, x, y), SL_OK);
    EXPECT_STATUS(sl_unary_bwd(op, n, alpha, beta, x, y, dy, dx), SL_OK);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 3; i++) {
      const double v = x[i];
      double f, d;
      switch (op) {
        case SL_UNARY_NEG: f = -v; d = -1; break;
        case SL_UNARY_EXP: f = exp(v); d = exp(v); break;
        case SL_UNARY_LOG: f = log(v); d = 1 / v; break;
        case SL_UNARY_RELU: f = v > 0 ? v : 0; d = v > 0; break;
        case SL_UNARY_SIGMOID: f = 1 / (1 + exp(-v)); d = f * (1 - f); break;
        case SL_UNARY_TANH: f = tanh(v); d = 1 - f * f; break;
        case SL_UNARY_ABS: f = fabs(v); d = v > 0 ? 1 : (v < 0 ? -1 : 0); break;
        case SL_UNARY_SQRT: f = sqrt(v); d = 0.5 / f; break;
        case SL_UNARY_AFFINE: f = alpha * v + beta; d = alpha; break;
        case SL_UNARY_RECIPROCAL: f = alpha / v; d = -alpha / (v * v); break;
        case SL_UNARY_SQUARE: f = v * v; d = 2 * v; break;
        default: f = pow(v, alpha); d = alpha * pow(v, alpha - 1); break;
      }
      if (!close_to(y[i], f, 1e-5) || !close_to(dx[i], dy[i] * d, 1e-4)) {
        bad++;
        EXPECT(0, "unary op %d at x=%g: f %g (want %g), grad %g (want %g)", op, v, y[i], f, dx[i],
               dy[i] * d);
      }
    }
  }
  /* In place. */
  for (int64_t i = 0; i < 10; i++) x[i] = (float)i - 5;
  EXPECT_STATUS(sl_unary(SL_UNARY_RELU, 10, 0, 0, x, x), SL_OK);
  EXPECT(x[0] == 0 && x[9] == 4, "in-place relu: %g %g", x[0], x[9]);
  /* Large |x| for sigmoid stays finite. */
  float big[2] = {-200, 200}, sig[2];
  EXPECT_STATUS(sl_unary(SL_UNARY_SIGMOID, 2, 0, 0, big, sig), SL_OK);
  EXPECT(sig[0] == 0 && sig[1] == 1, "sigmoid saturates: %g %g", sig[0], sig[1]);
  /* Errors. */
  EXPECT_STATUS(sl_unary(12, 4, 0, 0, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_unary(-1, 4, 0, 0, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_unary(0, -4, 0, 0, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_unary(0, 4, 0, 0, NULL, y), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_unary(0, 4, 0, 0, x, NULL), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_unary(0, 0, 0, 0, NULL, NULL), SL_OK);
  EXPECT_STATUS(sl_unary_bwd(0, 4, 0, 0, x, y, NULL, dx), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_unary_bwd(0, 4, 0, 0, x, y, dy, NULL), SL_E_NULL_POINTER);
  free(x);
  free(y);
  free(dy);
  free(dx);
}

/* ------------------------------------------------------------------ sums ---- */

static void test_sums(void) {
  /* sum_axis against a naive triple loop, including inner > one tile and len 0. */
  static const int64_t cases[][3] = {{3, 5, 7}, {1, 1000, 1}, {700, 31, 1}, {2, 9, 600},
                                     {4, 0, 3}, {1, 1, 1},    {0, 3, 3}};
  for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
    const int64_t outer = cases[c][0], len = cases[c][1], inner = cases[c][2];
    float *x = rand_array(outer * len * inner), *y = rand_array(outer * inner);
    EXPECT_STATUS(sl_sum_axis(outer, len, inner, 0.5f, x, y), SL_OK);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        double s = 0;
        for (int64_t j = 0; j < len; j++) s += x[(o * len + j) * inner + i];
        EXPECT(close_to(y[o * inner + i], 0.5 * s, 1e-6), "sum_axis %lld/%lld/%lld: %g want %g",
               (long long)outer, (long long)len, (long long)inner, y[o * inner + i], 0.5 * s);
      }
    free(x);
    free(y);
  }
  { /* sum_all, large */
    const int64_t n = 300001;
    float *x = rand_array(n), y = 0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    EXPECT_STATUS(sl_sum_all(n, 2.0f, x, &y), SL_OK);
    EXPECT(close_to(y, 2 * s, 1e-6), "sum_all %g want %g", y, 2 * s);
    EXPECT_STATUS(sl_sum_all(0, 1.0f, NULL, &y), SL_OK);
    EXPECT(y == 0, "empty sum_all is 0, got %g", y);
    free(x);
  }
  { /* sum_dims over every mask of a 4-D shape (with a size-1 dimension) */
    int64_t shape[4] = {3, 4, 1, 5};
    const int64_t n = 60;
    float *x = rand_array(n), y[60];
    check_sum_dims_masks(4, shape, 1.5f, x, y);
    /* a reduced empty dimension gives zeros */
    int64_t empty[2] = {0, 3};
    y[0] = y[1] = y[2] = 7;
    EXPECT_STATUS(sl_sum_dims(2, empty, 1, 1.0f, NULL, y), SL_OK);
    EXPECT(y[0] == 0 && y[2] == 0, "empty reduction gives zeros");
    EXPECT_STATUS(sl_sum_dims(4, shape, 16, 1.0f, x, y), SL_E_INVALID_ARGUMENT);
    EXPECT_STATUS(sl_sum_dims(4, shape, -1, 1.0f, x, y), SL_E_INVALID_ARGUMENT);
    EXPECT_STATUS(sl_sum_dims(4, shape, 1, 1.0f, NULL, y), SL_E_NULL_POINTER);
    EXPECT_STATUS(sl_sum_dims(4, shape, 1, 1.0f, x, NULL), SL_E_NULL_POINTER);
    EXPECT_STATUS(sl_sum_dims(9, shape, 1, 1.0f, x, y), SL_E_INVALID_ARGUMENT);
    free(x);
  }
  { /* sum_dims over every mask of a 6-D shape: up to three kept and three reduced dimensions
     * alternating after merging (the general path's carries across reduced dimensions) */
    int64_t shape[6] = {2, 3, 2, 3, 2, 3};
    float *x = rand_array(216), y[216];
    check_sum_dims_masks(6, shape, 0.5f, x, y);
    free(x);
  }
  { /* a larger general-case sum_dims ([R, K, R] after merging), parallel */
    int64_t shape[3] = {80, 50, 70};
    const int64_t n = 80 * 50 * 70;
    float *x = rand_array(n), y[50];
    EXPECT_STATUS(sl_sum_dims(3, shape, 5, 1.0f, x, y), SL_OK);
    for (int k = 0; k < 50; k++) {
      double s = 0;
      for (int i = 0; i < 80; i++)
        for (int j = 0; j < 70; j++) s += x[(i * 50 + k) * 70 + j];
      EXPECT(close_to(y[k], s, 1e-6), "sum_dims [R,K,R] at %d: %g want %g", k, y[k], s);
    }
    free(x);
  }
  float x[4] = {1, 2, 3, 4}, y[4];
  EXPECT_STATUS(sl_sum_axis(-1, 2, 2, 1, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_sum_axis(1, -2, 2, 1, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_sum_axis(1, 2, 2, 1, NULL, y), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_sum_axis(1, 2, 2, 1, x, NULL), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_sum_axis(INT64_MAX, 2, 2, 1, x, y), SL_E_OVERFLOW);
  EXPECT_STATUS(sl_sum_all(-1, 1, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_sum_all(4, 1, NULL, y), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_sum_all(4, 1, x, NULL), SL_E_NULL_POINTER);
}

/* ---------------------------------------------------------- strided copy ---- */

static void test_strided_copy(void) {
  /* Permute a [4, 5, 6] tensor to [6, 4, 5] (perm 2, 0, 1). */
  const int64_t n = 120;
  float *x = rand_array(n), y[120];
  int64_t shape[3] = {6, 4, 5}, strides[3] = {1, 30, 6};
  EXPECT_STATUS(sl_strided_copy(3, shape, 1.0f, x, n, strides, y), SL_OK);
  for (int a = 0; a < 6; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 5; c++)
        EXPECT(y[(a * 4 + b) * 5 + c] == x[(b * 5 + c) * 6 + a], "permute at (%d, %d, %d)", a, b,
               c);
  /* Expand [3, 1] to [3, 7] with alpha. */
  int64_t eshape[2] = {3, 7}, estr[2] = {1, 0};
  float e[21];
  EXPECT_STATUS(sl_strided_copy(2, eshape, 0.5f, x, 3, estr, e), SL_OK);
  for (int i = 0; i < 21; i++)
    EXPECT(e[i] == 0.5f * x[i / 7], "expand at %d: %g want %g", i, e[i], 0.5f * x[i / 7]);
  /* Large transpose (parallel). */
  const int64_t r = 600, c = 601;
  float *big = rand_array(r * c), *t = malloc(sizeof(float) * (size_t)(r * c));
  int64_t tshape[2] = {c, r}, tstr[2] = {1, c};
  EXPECT_STATUS(sl_strided_copy(2, tshape, 1.0f, big, r * c, tstr, t), SL_OK);
  int wrong = 0;
  for (int64_t i = 0; i < r; i++)
    for (int64_t j = 0; j < c; j++) wrong += t[j * r + i] != big[i * c + j];
  EXPECT(wrong == 0, "transpose: %d wrong elements", wrong);
  /* Errors. */
  EXPECT_STATUS(sl_strided_copy(3, shape, 1.0f, x, n - 1, strides, y), SL_E_INDEX_OUT_OF_RANGE);
  EXPECT(strstr(sl_last_error(), "x_strides") != NULL, "message names x_strides: %s",
         sl_last_error());
  EXPECT_STATUS(sl_strided_copy(3, shape, 1.0f, NULL, n, strides, y), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_strided_copy(3, shape, 1.0f, x, n, strides, NULL), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_strided_copy(3, shape, 1.0f, x, -1, strides, y), SL_E_INVALID_ARGUMENT);
  free(x);
  free(big);
  free(t);
}

/* ------------------------------------------------------------ log-softmax ---- */

static void test_log_softmax(void) {
  const int64_t rows = 257;
  const int32_t cols = 301;
  float *x = rand_array(rows * cols), *y = malloc(sizeof(float) * (size_t)(rows * cols));
  float *dy = rand_array(rows * cols), *dx = malloc(sizeof(float) * (size_t)(rows * cols));
  x[5] = 80.0f; /* a large logit must not overflow */
  EXPECT_STATUS(sl_log_softmax_fwd(rows, cols, x, y), SL_OK);
  EXPECT_STATUS(sl_log_softmax_bwd(rows, cols, y, dy, dx), SL_OK);
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0, gs = 0;
    for (int j = 0; j < cols; j++) mx = fmax(mx, x[r * cols + j]);
    for (int j = 0; j < cols; j++) s += exp(x[r * cols + j] - mx);
    for (int j = 0; j < cols; j++) gs += dy[r * cols + j];
    for (int j = 0; j < cols; j++) {
      const double want = x[r * cols + j] - mx - log(s);
      const double want_dx = dy[r * cols + j] - exp(want) * gs;
      EXPECT(close_to(y[r * cols + j], want, 1e-5), "log_softmax (%lld, %d): %g want %g",
             (long long)r, j, y[r * cols + j], want);
      EXPECT(close_to(dx[r * cols + j], want_dx, 1e-5), "log_softmax_bwd (%lld, %d): %g want %g",
             (long long)r, j, dx[r * cols + j], want_dx);
    }
  }
  EXPECT_STATUS(sl_log_softmax_fwd(-1, cols, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_log_softmax_fwd(rows, -1, x, y), SL_E_INVALID_ARGUMENT);
  EXPECT_STATUS(sl_log_softmax_fwd(rows, cols, NULL, y), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_log_softmax_bwd(rows, cols, y, NULL, dx), SL_E_NULL_POINTER);
  EXPECT_STATUS(sl_log_softmax_fwd(0, cols, NULL, NULL), SL_OK);
  free(x);
  free(y);
  free(dy);
  free(dx);
}

int main(void) {
  test_gemm();
  test_gemm_skinny();
  test_gemm_batched();
  test_binary();
  test_unary();
  test_sums();
  test_strided_copy();
  test_log_softmax();
  if (failures > 0) {
    fprintf(stderr, "test_dense: %d failures\n", failures);
    return 1;
  }
  printf("test_dense: all passed\n");
  return 0;
}
