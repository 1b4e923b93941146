/*
 * fuzz_gemm.c — sl_gemm, the portable blocked kernel behind it (sl_gemm_portable) and
 * sl_gemm_batched on random sizes (0 included, edges of the 4 x 16 register blocks and the
 * 64 / 256 cache blocks; now and then the two skinny shapes sl_gemm runs on kernels of its own:
 * long dot products, k >= 4096 with n <= 16, and few rows with a short inner dimension,
 * m <= 16 and k <= 64 with n >= 256), transposes, leading dimensions and batch strides, against
 * a double reference. Every matrix buffer is exactly as long as its layout reaches, and C is
 * NaN-filled when beta == 0 (it must not be read). Bad leading dimensions and strides must be
 * rejected.
 */
#include "dense_internal.h"
#include "fuzz_common.h"

/* Elements a [rows x cols] matrix with leading dimension ld reaches (0 when empty). */
static int64_t extent(int64_t rows, int64_t cols, int64_t ld) {
  return rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_threads(&in);
  /* One byte picks the rare shapes (as fz_rare would, so older corpus inputs parse as before). */
  const uint8_t mode = fz_u8(&in);
  const int big = mode == 0xA7, skinny_dot = mode == 0x5B, skinny_k = mode == 0x5C;
  /* big reaches the portable kernel's threads too (above 4e6 flops) */
  int32_t m = (int32_t)fz_range(&in, 0, big ? 160 : 20);
  int32_t n = (int32_t)fz_range(&in, 0, big ? 120 : 20);
  int32_t k = (int32_t)fz_range(&in, 0, big ? 300 : 20);
  int32_t ta = (int32_t)fz_range(&in, 0, 1), tb = (int32_t)fz_range(&in, 0, 1);
  if (skinny_dot) { /* C[m, n] = A[m, k] B[n, k]^T, k cut into 2048-long chunks */
    m = 1 + m % 8;
    n = 1 + n % 16;
    k = 4096 + (int32_t)fz_range(&in, 0, 3000);
    ta = 0;
    tb = 1;
  } else if (skinny_k) { /* C[m, n] = op(A)[m, k] B[k, n], 64-column blocks in 1024-column chunks */
    m = 1 + m % 16;
    k = 1 + (int32_t)fz_range(&in, 0, 63);
    n = 256 + (int32_t)fz_range(&in, 0, 1100);
    tb = 0;
  }
  if (skinny_dot || skinny_k)
    FZ_CHECK(skinny_dot ? sl_gemm_skinny_dot_fits(ta, tb, m, n, k)
                        : sl_gemm_skinny_k_fits(ta, tb, m, n, k),
             "a skinny shape (%d x %d x %d) that sl_gemm would not run as one", m, n, k);
  const int32_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int32_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int bad_ld = fz_chance(&in, 12);
  const int32_t lda = (a_cols > 0 ? a_cols : 1) + (int32_t)fz_range(&in, 0, 3) - (bad_ld ? 4 : 0);
  const int32_t ldb = (b_cols > 0 ? b_cols : 1) + (int32_t)fz_range(&in, 0, 3);
  const int32_t ldc = (n > 0 ? n : 1) + (int32_t)fz_range(&in, 0, 3);
  static const float scalars[] = {0.0f, 1.0f, -1.0f, 0.5f, 2.0f, -0.25f};
  const float alpha = scalars[fz_u8(&in) % 6], beta = scalars[fz_u8(&in) % 6];
  /* big and skinny: one reference GEMM */
  const int32_t batch = big || skinny_dot || skinny_k ? 1 : (int32_t)fz_range(&in, 1, 4);
  /* A rejected lda still gets a buffer laid out with a valid one (never read by the kernel). */
  const int32_t lda_ok = lda >= (a_cols > 0 ? a_cols : 1) ? lda : (a_cols > 0 ? a_cols : 1);
  const int64_t ea = extent(a_rows, a_cols, lda_ok), eb = extent(b_rows, b_cols, ldb);
  const int64_t ec = extent(m, n, ldc);
  /* Batch strides: 0 (shared / summed), exactly one matrix, or a gap. */
  const int64_t sa = fz_chance(&in, 64) ? 0 : ea + fz_range(&in, 0, 5);
  const int64_t sb = fz_chance(&in, 64) ? 0 : eb + fz_range(&in, 0, 5);
  int64_t sc = fz_chance(&in, 64) ? 0 : ec + fz_range(&in, 0, 5);
  const int bad_sc = ec > 1 && batch > 1 && fz_chance(&in, 12);
  if (bad_sc) sc = fz_range(&in, 1, ec - 1); /* overlapping C matrices */

  const int64_t la = batch > 1 ? (batch - 1) * sa + ea : ea;
  const int64_t lb = batch > 1 ? (batch - 1) * sb + eb : eb;
  const int64_t lc = batch > 1 ? (batch - 1) * sc + ec : ec;
  float *a = FZ_NEW(float, la), *b = FZ_NEW(float, lb), *c0 = FZ_NEW(float, lc);
  fz_fill_floats(&in, a, la, 0);
  fz_fill_floats(&in, b, lb, 0);
  if (beta == 0.0f)
    for (int64_t i = 0; i < lc; i++) c0[i] = NAN;
  else
    fz_fill_floats(&in, c0, lc, 0);
  float *c = FZ_NEW(float, lc);
  double *want = FZ_NEW(double, lc), *scale = FZ_NEW(double, lc);

  /* Reference for batch i into want (stride sc; sc == 0 sums every batch). */
  for (int64_t i = 0; i < lc; i++) {
    want[i] = beta == 0.0f ? 0.0 : (double)beta * c0[i];
    scale[i] = fabs(want[i]);
  }
  for (int32_t t = 0; t < batch; t++) {
    const float *at = a + t * sa, *bt = b + t * sb;
    const int64_t coff = t * sc;
    for (int32_t i = 0; i < m; i++)
      for (int32_t j = 0; j < n; j++) {
        double s = 0.0, sabs = 0.0;
        for (int32_t p = 0; p < k; p++) {
          const double av = ta ? at[(int64_t)p * lda_ok + i] : at[(int64_t)i * lda_ok + p];
          const double bv = tb ? bt[(int64_t)j * ldb + p] : bt[(int64_t)p * ldb + j];
          s += av * bv;
          sabs += fabs(av * bv);
        }
        const int64_t q = coff + (int64_t)i * ldc + j;
        /* Without sc == 0 each batch starts from beta * C; with it, beta applied once. */
        want[q] += (double)alpha * s;
        scale[q] += fabs((double)alpha) * sabs;
      }
  }

  /* ---- sl_gemm and the portable kernel (first batch only) */
  for (int pass = 0; pass < 2; pass++) {
    memcpy(c, c0, (size_t)lc * sizeof *c);
    sl_status st = pass == 0 ? sl_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                             : (bad_ld ? SL_E_INVALID_ARGUMENT
                                       : sl_gemm_portable(ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                                          beta, c, ldc));
    if (bad_ld && lda < (a_cols > 0 ? a_cols : 1)) {
      FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_gemm accepted lda %d < %d", lda, a_cols);
      if (pass == 0) FZ_CHECK_MESSAGE("sl_gemm");
      continue;
    }
    FZ_CHECK(st == SL_OK, "gemm pass %d: status %d", pass, st);
    if (batch == 1 || (sc != 0 && !bad_sc)) {
      for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < n; j++) {
          const int64_t q = (int64_t)i * ldc + j;
          /* batch 1 equals the reference; with batch > 1 and sc != 0, C_0 too. */
          FZ_CHECK(fz_close(c[q], want[q], scale[q]), "pass %d C[%d, %d] = %g, expected %g", pass,
                   i, j, c[q], want[q]);
        }
    }
  }

  /* ---- sl_gemm_batched */
  memcpy(c, c0, (size_t)lc * sizeof *c);
  sl_status st = sl_gemm_batched(ta, tb, batch, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                 ldc, sc);
  if (bad_ld && lda < (a_cols > 0 ? a_cols : 1)) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_gemm_batched accepted a bad lda");
  } else if (bad_sc && m > 0 && n > 0) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_gemm_batched accepted stride_c %lld < %lld",
             (long long)sc, (long long)ec);
    FZ_CHECK_MESSAGE("sl_gemm_batched");
  } else {
    FZ_CHECK(st == SL_OK, "sl_gemm_batched: status %d", st);
    for (int64_t q = 0; q < lc; q++) {
      const int64_t within = sc > 0 ? q % sc : q;
      const int inside = within < ec && (within % ldc) < n;
      if (!inside) {
        FZ_CHECK(memcmp(&c[q], &c0[q], sizeof c[q]) == 0, "gap element %lld written",
                 (long long)q);
        continue;
      }
      FZ_CHECK(fz_close(c[q], want[q], scale[q]), "batched C[%lld] = %g, expected %g",
               (long long)q, c[q], want[q]);
    }
  }
  free(a);
  free(b);
  free(c0);
  free(c);
  free(want);
  free(scale);
  return 0;
}
