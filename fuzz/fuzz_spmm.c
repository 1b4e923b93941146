/*
 * fuzz_spmm.c — the sparse-layer kernels (sl_spmm_fwd, sl_spmm_bwd_input and its CSR form
 * sl_spmm_bwd_input_csr, sl_sddmm, both gradients from the CSR pattern (sl_spmm_bwd_csr) and
 * from the CSC view (sl_spmm_bwd), sl_bias_grad, sl_group_collapse and its backward, and the
 * feature-major sl_spmm_fwd_fm / sl_spmm_bwd_fm against the batch-major calls) on random
 * patterns, sizes (batch 0, 1, a partial tile, several 64-wide tiles), thread counts and
 * corruptions, at both matmul precisions. A valid call must match a naive double reference; a
 * call with a bad index, offset or size must fail naming the function, and the forward and input
 * gradients must leave their output untouched. Every buffer is exactly sized, so AddressSanitizer
 * reports any access outside it.
 */
#include "fuzz_common.h"

/* t[c * rows + r] = a[r * cols + c], exactly sized. */
static float *transposed(const float *a, int64_t rows, int64_t cols) {
  float *t = FZ_NEW(float, rows * cols);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  fz_threads(&in);
  /* A quarter of the inputs at medium precision: the batched kernels gather bfloat16 (2^-9
   * relative rounding of x or dy), so the references' tolerance widens to match. */
  const int medium = fz_chance(&in, 64);
  sl_set_matmul_precision(medium ? SL_PRECISION_MEDIUM : SL_PRECISION_HIGHEST);
  fz_tolerance = medium ? 8e-3 : 1e-4;
  static const int32_t batches[] = {0, 1, 2, 7, 8, 9, 33, 64, 65, 130};
  int32_t batch = fz_chance(&in, 200) ? batches[fz_u8(&in) % 10]
                                      : (int32_t)fz_range(&in, 0, 140);
  int32_t n_in = (int32_t)fz_range(&in, 0, fz_rare(&in) ? 600 : 40);
  int32_t n_out = (int32_t)fz_range(&in, 0, fz_rare(&in) ? 600 : 40);
  const int with_bias = fz_chance(&in, 128);
  /* Now and then a pattern big enough for the kernels' parallel paths (work of 2^17 at batch 1,
   * 2^19 batched, below which they run on one thread): up to 200,000 connections drawn by a
   * generator (an input has too few bytes), on 500-3000 features. */
  const int huge = fz_rare(&in);
  if (huge) {
    static const int32_t huge_batches[] = {1, 1, 2, 9, 16, 64};
    batch = huge_batches[fz_u8(&in) % 6];
    n_in = 500 + (int32_t)fz_range(&in, 0, 2500);
    n_out = 500 + (int32_t)fz_range(&in, 0, 2500);
  }
  uint32_t roll_state = 0x27D4EB2Fu ^ (uint32_t)n_in ^ ((uint32_t)n_out << 12);

  /* A valid pattern: each row a random sorted subset of the inputs, at a per-row density. */
  int32_t *row_ptr = FZ_NEW(int32_t, n_out + 1);
  const int64_t cap_max = huge ? 200000 : 6000;
  const int64_t cap = (int64_t)n_out * n_in < cap_max ? (int64_t)n_out * n_in : cap_max;
  int32_t *tmp = FZ_NEW(int32_t, cap);
  int64_t nnz = 0;
  row_ptr[0] = 0;
  const int density = huge ? 64 + fz_u8(&in) % 192 : fz_u8(&in);
  for (int32_t r = 0; r < n_out; r++) {
    const int row_density = fz_chance(&in, 32) ? fz_u8(&in) : density;
    for (int32_t c = 0; c < n_in && nnz < cap; c++) {
      const uint8_t roll = huge        ? fz_gen_u8(&roll_state)
                           : in.n > 0    ? fz_u8(&in)
                                         : (uint8_t)((c * 37 + r * 11) & 255);
      if (roll < row_density) tmp[nnz++] = c;
    }
    row_ptr[r + 1] = (int32_t)nnz;
  }
  int32_t *col_idx = FZ_NEW(int32_t, nnz);
  memcpy(col_idx, tmp, (size_t)nnz * sizeof *col_idx);
  free(tmp);

  float *values = FZ_NEW(float, nnz), *bias = with_bias ? FZ_NEW(float, n_out) : NULL;
  float *x = FZ_NEW(float, (int64_t)batch * n_in), *dy = FZ_NEW(float, (int64_t)batch * n_out);
  fz_fill_floats(&in, values, nnz, 0);
  if (bias) fz_fill_floats(&in, bias, n_out, 0);
  fz_fill_floats(&in, x, (int64_t)batch * n_in, 0);
  fz_fill_floats(&in, dy, (int64_t)batch * n_out, 0);

  /* The CSC view, from the library (fuzz_csr_validate checks it against a naive one). */
  int32_t *col_ptr = FZ_NEW(int32_t, n_in + 1), *row_idx = FZ_NEW(int32_t, nnz),
          *csc_to_csr = FZ_NEW(int32_t, nnz);
  FZ_CHECK(sl_csr_to_csc(n_out, n_in, nnz, row_ptr, col_idx, col_ptr, row_idx, csc_to_csr) ==
               SL_OK,
           "csr_to_csc");

  /* Corruption: 0 none, 1 a column index, 2 a CSC row index, 3 a csc_to_csr entry, 4 an
   * offset, 5 a negative size. */
  int corrupt = fz_chance(&in, 64) ? (int)fz_range(&in, 1, 5) : 0;
  int64_t bad_k = -1;
  if ((corrupt >= 1 && corrupt <= 3) && nnz == 0) corrupt = 0;
  if (corrupt == 1) {
    bad_k = fz_range(&in, 0, nnz - 1);
    col_idx[bad_k] = fz_chance(&in, 128) ? n_in + (int32_t)fz_range(&in, 0, 3)
                                         : (int32_t)(fz_u32(&in) | 0x80000000u);
  } else if (corrupt == 2) {
    bad_k = fz_range(&in, 0, nnz - 1);
    row_idx[bad_k] = fz_chance(&in, 128) ? n_out : -1 - (int32_t)fz_range(&in, 0, 100);
  } else if (corrupt == 3) {
    bad_k = fz_range(&in, 0, nnz - 1);
    csc_to_csr[bad_k] = fz_chance(&in, 128) ? (int32_t)nnz : INT32_MIN;
  } else if (corrupt == 4) {
    if (fz_chance(&in, 128)) row_ptr[fz_range(&in, 0, n_out)] += fz_chance(&in, 128) ? 1 : -1;
    else col_ptr[fz_range(&in, 0, n_in)] += fz_chance(&in, 128) ? 1 : -1;
  }
  const int32_t sbatch = corrupt == 5 ? -1 - (int32_t)fz_range(&in, 0, 5) : batch;

  /* Naive double references, computed before any kernel can touch the inputs. */
  const int64_t ny = (int64_t)batch * n_out, nx = (int64_t)batch * n_in;
  double *y_ref = FZ_NEW(double, ny), *y_scale = FZ_NEW(double, ny);
  double *dx_ref = FZ_NEW(double, nx), *dx_scale = FZ_NEW(double, nx);
  double *dw_ref = FZ_NEW(double, nnz), *dw_scale = FZ_NEW(double, nnz);
  if (corrupt == 0) {
    for (int64_t i = 0; i < ny; i++) y_ref[i] = y_scale[i] = 0.0;
    for (int64_t i = 0; i < nx; i++) dx_ref[i] = dx_scale[i] = 0.0;
    for (int32_t b = 0; b < batch; b++)
      for (int32_t o = 0; o < n_out; o++) {
        double s = bias ? bias[o] : 0.0, sc = bias ? fabs(bias[o]) : 0.0;
        for (int32_t k = row_ptr[o]; k < row_ptr[o + 1]; k++) {
          const double t = (double)values[k] * x[(int64_t)b * n_in + col_idx[k]];
          s += t;
          sc += fabs(t);
          const double g = (double)values[k] * dy[(int64_t)b * n_out + o];
          dx_ref[(int64_t)b * n_in + col_idx[k]] += g;
          dx_scale[(int64_t)b * n_in + col_idx[k]] += fabs(g);
        }
        y_ref[(int64_t)b * n_out + o] = s;
        y_scale[(int64_t)b * n_out + o] = sc;
      }
    for (int32_t o = 0; o < n_out; o++)
      for (int32_t k = row_ptr[o]; k < row_ptr[o + 1]; k++) {
        double s = 0.0, sc = 0.0;
        for (int32_t b = 0; b < batch; b++) {
          const double t = (double)dy[(int64_t)b * n_out + o] * x[(int64_t)b * n_in + col_idx[k]];
          s += t;
          sc += fabs(t);
        }
        dw_ref[k] = s;
        dw_scale[k] = sc;
      }
  }

  /* ---- forward */
  float *y = FZ_NEW(float, ny);
  fz_poison(y, ny);
  sl_status st = sl_spmm_fwd(sbatch, n_in, n_out, nnz, row_ptr, col_idx, values, bias, x, y);
  const sl_status st_fwd = st;
  const int fwd_bad = corrupt == 5 || (corrupt == 1 && batch > 0 && n_out > 0) ||
                      (corrupt == 4 && st != SL_OK);
  if (corrupt == 0 || (corrupt >= 2 && corrupt <= 3)) {
    FZ_CHECK(st == SL_OK, "sl_spmm_fwd: status %d", st);
    if (corrupt == 0)
      for (int64_t i = 0; i < ny; i++)
        FZ_CHECK(fz_close(y[i], y_ref[i], y_scale[i]), "y[%lld] = %g, expected %g",
                 (long long)i, y[i], y_ref[i]);
  } else if (fwd_bad) {
    FZ_CHECK(st != SL_OK, "sl_spmm_fwd accepted corruption %d", corrupt);
    FZ_CHECK_MESSAGE("sl_spmm_fwd");
    FZ_CHECK(fz_is_poison(y, ny), "sl_spmm_fwd wrote y on failure");
    if (corrupt == 1) FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "status %d", st);
  }

  /* ---- input gradient */
  float *dx = FZ_NEW(float, nx);
  fz_poison(dx, nx);
  st = sl_spmm_bwd_input(sbatch, n_in, n_out, nnz, col_ptr, row_idx, csc_to_csr, values, dy, dx);
  if (corrupt == 0 || corrupt == 1) {
    FZ_CHECK(st == SL_OK, "sl_spmm_bwd_input: status %d", st);
    if (corrupt == 0)
      for (int64_t i = 0; i < nx; i++)
        FZ_CHECK(fz_close(dx[i], dx_ref[i], dx_scale[i]), "dx[%lld] = %g, expected %g",
                 (long long)i, dx[i], dx_ref[i]);
  } else if (corrupt == 5 || ((corrupt == 2 || corrupt == 3) && batch > 0 && n_in > 0)) {
    FZ_CHECK(st != SL_OK, "sl_spmm_bwd_input accepted corruption %d", corrupt);
    FZ_CHECK_MESSAGE("sl_spmm_bwd_input");
    FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd_input wrote dx on failure");
    if (corrupt != 5) FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "status %d", st);
  } else if (st != SL_OK) {
    FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd_input wrote dx on failure");
  }

  /* ---- input gradient from the CSR pattern (a scatter: per-thread copies of dx at batch 1,
   * a feature-major scratch split by input feature otherwise); leaves dx untouched on failure */
  fz_poison(dx, nx);
  st = sl_spmm_bwd_input_csr(sbatch, n_in, n_out, nnz, row_ptr, col_idx, values, dy, dx);
  const sl_status st_dx_csr = st;
  if (corrupt == 0 || corrupt == 2 || corrupt == 3) {
    FZ_CHECK(st == SL_OK, "sl_spmm_bwd_input_csr: status %d", st);
    if (corrupt == 0)
      for (int64_t i = 0; i < nx; i++)
        FZ_CHECK(fz_close(dx[i], dx_ref[i], dx_scale[i]), "csr dx[%lld] = %g, expected %g",
                 (long long)i, dx[i], dx_ref[i]);
  } else if (corrupt == 5 || (corrupt == 1 && batch > 0 && n_out > 0)) {
    FZ_CHECK(st != SL_OK, "sl_spmm_bwd_input_csr accepted corruption %d", corrupt);
    FZ_CHECK_MESSAGE("sl_spmm_bwd_input_csr");
    FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd_input_csr wrote dx on failure");
  } else if (st != SL_OK) {
    FZ_CHECK_MESSAGE("sl_spmm_bwd_input_csr");
    FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd_input_csr wrote dx on failure");
  }

  float *dx_csr = FZ_NEW(float, nx);
  memcpy(dx_csr, dx, (size_t)nx * sizeof(float));

  /* ---- weight gradient (may leave garbage in dw on an index error, never out of bounds) */
  float *dw = FZ_NEW(float, nnz);
  fz_poison(dw, nnz);
  st = sl_sddmm(sbatch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw);
  if (corrupt == 0 || corrupt == 2 || corrupt == 3) {
    FZ_CHECK(st == SL_OK, "sl_sddmm: status %d", st);
    if (corrupt == 0)
      for (int64_t k = 0; k < nnz; k++)
        FZ_CHECK(fz_close(dw[k], dw_ref[k], dw_scale[k]), "dw[%lld] = %g, expected %g",
                 (long long)k, dw[k], dw_ref[k]);
  } else if (corrupt == 1 || corrupt == 5) {
    FZ_CHECK(st != SL_OK, "sl_sddmm accepted corruption %d", corrupt);
    FZ_CHECK_MESSAGE("sl_sddmm");
  }

  /* ---- both gradients from the CSR pattern: at batch 1 the status of sl_spmm_bwd_input_csr,
   * else of sl_sddmm (one pass over the pattern, the same arithmetic); at other batches the
   * status of sl_sddmm, else of sl_spmm_bwd_input_csr (the order the CPU runs them in). On
   * success both of their results bit for bit; dx untouched on failure. */
  {
    const sl_status st_dw = st;
    float *dw_sddmm = FZ_NEW(float, nnz);
    memcpy(dw_sddmm, dw, (size_t)nnz * sizeof(float));
    fz_poison(dx, nx);
    fz_poison(dw, nnz);
    st = sl_spmm_bwd_csr(sbatch, n_in, n_out, nnz, row_ptr, col_idx, values, x, dy, dx, dw);
    const sl_status want = sbatch == 1 ? (st_dx_csr != SL_OK ? st_dx_csr : st_dw)
                                       : (st_dw != SL_OK ? st_dw : st_dx_csr);
    FZ_CHECK(st == want, "sl_spmm_bwd_csr: status %d, the two CSR calls %d", st, want);
    if (st == SL_OK) {
      FZ_CHECK(memcmp(dx, dx_csr, (size_t)nx * sizeof(float)) == 0,
               "sl_spmm_bwd_csr: dx differs from sl_spmm_bwd_input_csr's");
      FZ_CHECK(memcmp(dw, dw_sddmm, (size_t)nnz * sizeof(float)) == 0,
               "sl_spmm_bwd_csr: dw differs from sl_sddmm's");
    } else {
      FZ_CHECK_MESSAGE("sl_spmm_bwd_csr");
      FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd_csr wrote dx on failure");
    }
    free(dw_sddmm);
  }
  free(dx_csr);

  /* ---- both gradients in one call: the CPU reads the CSC view only (col_idx corruption is
   * not its to see), checks it before writing, and leaves dx and dw untouched on failure. */
  float *db_fused = FZ_NEW(float, n_out);
  fz_poison(dx, nx);
  fz_poison(dw, nnz);
  fz_poison(db_fused, n_out);
  st = sl_spmm_bwd(sbatch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr, row_idx, csc_to_csr,
                   values, x, dy, dx, dw, db_fused);
  if (corrupt == 0 || corrupt == 1) {
    FZ_CHECK(st == SL_OK, "sl_spmm_bwd: status %d", st);
    if (corrupt == 0) {
      for (int64_t i = 0; i < nx; i++)
        FZ_CHECK(fz_close(dx[i], dx_ref[i], dx_scale[i]), "fused dx[%lld] = %g, expected %g",
                 (long long)i, dx[i], dx_ref[i]);
      for (int64_t k = 0; k < nnz; k++)
        FZ_CHECK(fz_close(dw[k], dw_ref[k], dw_scale[k]), "fused dw[%lld] = %g, expected %g",
                 (long long)k, dw[k], dw_ref[k]);
    }
  } else if (corrupt == 5 || corrupt == 2 || corrupt == 3) {
    FZ_CHECK(st != SL_OK, "sl_spmm_bwd accepted corruption %d", corrupt);
    FZ_CHECK_MESSAGE("sl_spmm_bwd");
    if (corrupt != 5) FZ_CHECK(st == SL_E_INDEX_OUT_OF_RANGE, "status %d", st);
  }
  if (st != SL_OK) {
    FZ_CHECK(fz_is_poison(dx, nx), "sl_spmm_bwd wrote dx on failure");
    FZ_CHECK(fz_is_poison(dw, nnz), "sl_spmm_bwd wrote dw on failure");
    FZ_CHECK(fz_is_poison(db_fused, n_out), "sl_spmm_bwd wrote db on failure");
  } else { /* db summed as dy is laid out: sl_bias_grad's bits */
    float *db_ref = FZ_NEW(float, n_out);
    FZ_CHECK(sl_bias_grad(sbatch, n_out, dy, db_ref) == SL_OK, "sl_bias_grad: %s",
             sl_last_error());
    FZ_CHECK(memcmp(db_fused, db_ref, (size_t)n_out * sizeof(float)) == 0,
             "sl_spmm_bwd db differs from sl_bias_grad's");
    free(db_ref);
  }

  /* ---- the feature-major forms: the batch-major calls' status, and on success their results
   * transposed, bit for bit (the same kernels, another layout at the boundary); on failure
   * nothing written. */
  {
    float *xT = transposed(x, batch, n_in), *dyT = transposed(dy, batch, n_out);
    float *yT = FZ_NEW(float, ny), *dxT = FZ_NEW(float, nx), *dwT = FZ_NEW(float, nnz);
    float *dbT = FZ_NEW(float, n_out);
    fz_poison(yT, ny);
    fz_poison(dxT, nx);
    fz_poison(dwT, nnz);
    fz_poison(dbT, n_out);
    sl_status sf = sl_spmm_fwd_fm(sbatch, n_in, n_out, nnz, row_ptr, col_idx, values, bias, xT, yT);
    FZ_CHECK(sf == st_fwd, "sl_spmm_fwd_fm: status %d, sl_spmm_fwd %d", sf, st_fwd);
    if (sf == SL_OK && st_fwd == SL_OK) {
      float *yy = transposed(yT, n_out, batch);
      FZ_CHECK(memcmp(yy, y, (size_t)ny * sizeof(float)) == 0, "sl_spmm_fwd_fm != sl_spmm_fwd");
      free(yy);
    } else {
      FZ_CHECK(fz_is_poison(yT, ny), "sl_spmm_fwd_fm wrote yT on failure");
    }
    sl_status sb = sl_spmm_bwd_fm(sbatch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr, row_idx,
                                  csc_to_csr, values, xT, dyT, dxT, dwT, dbT);
    FZ_CHECK(sb == st, "sl_spmm_bwd_fm: status %d, sl_spmm_bwd %d", sb, st);
    if (sb == SL_OK && st == SL_OK) {
      float *dxx = transposed(dxT, n_in, batch);
      FZ_CHECK(memcmp(dxx, dx, (size_t)nx * sizeof(float)) == 0, "sl_spmm_bwd_fm dx differs");
      FZ_CHECK(memcmp(dwT, dw, (size_t)nnz * sizeof(float)) == 0, "sl_spmm_bwd_fm dw differs");
      FZ_CHECK(memcmp(dbT, db_fused, (size_t)n_out * sizeof(float)) == 0,
               "sl_spmm_bwd_fm db differs");
      free(dxx);
    } else {
      FZ_CHECK(fz_is_poison(dxT, nx), "sl_spmm_bwd_fm wrote dx on failure");
      FZ_CHECK(fz_is_poison(dwT, nnz), "sl_spmm_bwd_fm wrote dw on failure");
      FZ_CHECK(fz_is_poison(dbT, n_out), "sl_spmm_bwd_fm wrote db on failure");
    }
    free(xT);
    free(dyT);
    free(yT);
    free(dxT);
    free(dwT);
    free(dbT);
  }
  free(db_fused);

  /* ---- the group collapse (G = P W) and its backward: G against the double sum in row order,
   * dw against the gather. They read the CSR view only; a column corruption is an index error
   * (the first bad entry in pattern order is an out-of-range one), and a changed offset may
   * still be a valid pattern: then only a failure's message is checked. */
  {
    const int32_t size = fz_chance(&in, 200) ? (int32_t)fz_range(&in, 1, 12)
                                             : (int32_t)fz_range(&in, 1, 700);
    const int64_t ng = (int64_t)size * n_in;
    float *g = FZ_NEW(float, ng), *dg = FZ_NEW(float, ng), *dwg = FZ_NEW(float, nnz);
    for (int64_t i = 0; i < ng; i++) dg[i] = fz_small_float(&in);
    sl_status sc = sl_group_collapse(n_in, n_out, nnz, row_ptr, col_idx, values, size, g);
    if (sc != SL_OK) FZ_CHECK_MESSAGE("sl_group_collapse");
    sl_status sg = sl_group_collapse_bwd(n_in, n_out, nnz, row_ptr, col_idx, dg, size, dwg);
    if (sg != SL_OK) FZ_CHECK_MESSAGE("sl_group_collapse_bwd");
    if (corrupt == 1) {
      FZ_CHECK(sc == SL_E_INDEX_OUT_OF_RANGE, "sl_group_collapse: status %d", sc);
      FZ_CHECK(sg == SL_E_INDEX_OUT_OF_RANGE, "sl_group_collapse_bwd: status %d", sg);
    } else if (corrupt != 4) {
      FZ_CHECK(sc == SL_OK, "sl_group_collapse: status %d", sc);
      FZ_CHECK(sg == SL_OK, "sl_group_collapse_bwd: status %d", sg);
    }
    if (corrupt != 1 && corrupt != 4) {
      double *want = FZ_NEW(double, ng), *scale = FZ_NEW(double, ng);
      for (int64_t i = 0; i < ng; i++) want[i] = scale[i] = 0.0;
      for (int32_t o = 0; o < n_out; o++)
        for (int32_t k = row_ptr[o]; k < row_ptr[o + 1]; k++) {
          const int64_t at = (int64_t)(o % size) * n_in + col_idx[k];
          want[at] += values[k];
          scale[at] += fabs(values[k]);
          FZ_CHECK(dwg[k] == dg[at], "group dw[%d] = %g, expected %g", k, dwg[k], dg[at]);
        }
      for (int64_t i = 0; i < ng; i++)
        FZ_CHECK(fz_close(g[i], want[i], scale[i]), "G[%lld] = %g, expected %g", (long long)i,
                 g[i], want[i]);
      free(want);
      free(scale);
    }
    free(g);
    free(dg);
    free(dwg);
  }

  /* ---- bias gradient */
  float *db = FZ_NEW(float, n_out);
  st = sl_bias_grad(sbatch, n_out, dy, db);
  if (corrupt == 5) {
    FZ_CHECK(st == SL_E_INVALID_ARGUMENT, "sl_bias_grad: status %d", st);
  } else {
    FZ_CHECK(st == SL_OK, "sl_bias_grad: status %d", st);
    for (int32_t o = 0; o < n_out; o++) {
      double s = 0.0, sc = 0.0;
      for (int32_t b = 0; b < batch; b++) {
        s += dy[(int64_t)b * n_out + o];
        sc += fabs(dy[(int64_t)b * n_out + o]);
      }
      FZ_CHECK(fz_close(db[o], s, sc), "db[%d] = %g, expected %g", o, db[o], s);
    }
  }

  free(row_ptr);
  free(col_idx);
  free(values);
  free(bias);
  free(x);
  free(dy);
  free(col_ptr);
  free(row_idx);
  free(csc_to_csr);
  free(y_ref);
  free(y_scale);
  free(dx_ref);
  free(dx_scale);
  free(dw_ref);
  free(dw_scale);
  free(y);
  free(dx);
  free(dw);
  free(db);
  return 0;
}
