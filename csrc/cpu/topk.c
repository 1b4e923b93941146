/*
 * topk.c — the kernels of dynamic sparsity (RigL / SET prune-and-grow):
 *   - sl_topk: exact top-k / bottom-k selection (by value or by magnitude) over an array;
 *   - sl_dense_grad_topk: the k largest |dY^T X| entries outside a CSR pattern, computed in row
 *     chunks of bounded size with a running top-k merged across chunks;
 *   - sl_sample_absent: k distinct positions drawn uniformly among those outside a pattern;
 *   - sl_csr_drop_grow: the CSR rebuild after a drop + grow, with the old -> new index map.
 *
 * Selection is a radix select on 32-bit keys that order like the scores (three histogram passes
 * of 11/11/10 bits find the k-th largest key T and how many keys exceed it), followed by one
 * gather in index order that takes every key > T and the first (lowest-index) keys == T. The
 * selection is exact and deterministic whatever the thread count: ties are broken by lower
 * index, and the output comes in ascending index order; sl_dense_grad_topk's G is computed in
 * a fixed order too (dense_grad.c). Key 0 is reserved for "not a candidate" (a position inside
 * the pattern, or one that can no longer enter the running top-k).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "dense_internal.h"
#include "radix_sort.h"
#include "sample.h"
#include "scratch.h"
#include "sparse_internal.h"
#include "validate.h"

/* Below this many elements a pass runs on one thread: the fork costs more than it saves. */
#define PARALLEL_MIN 65536
#define MAX_TEAM 256

static inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline int is_nan_bits(uint32_t u) { return (u & 0x7FFFFFFFu) > 0x7F800000u; }

/*
 * A key >= 1 that orders like the score under `flags` (larger key = better), for a non-NaN
 * score. -0 and +0 get the same key, so they tie (and the lower index wins).
 */
static inline uint32_t score_key(float score, int32_t flags) {
  uint32_t u = float_bits(score);
  if ((u & 0x7FFFFFFFu) == 0) u = 0; /* -0 == +0 */
  if (flags & SL_TOPK_ABS) {
    u &= 0x7FFFFFFFu; /* |score| bits order like the magnitudes: 0 .. 0x7F800000 (inf) */
  } else {
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* signed order as unsigned */
  }
  if (flags & SL_TOPK_SMALLEST) return ~u; /* >= 0x007FFFFF, never 0 */
  return (flags & SL_TOPK_ABS) ? u + 1 : u; /* signed keys of non-NaN floats are >= 0x007FFFFF */
}

/* A span of keys taking part in one selection. */
typedef struct {
  const uint32_t *keys;
  int64_t n;
} key_span;

static int team_size(int64_t n) {
  if (n < PARALLEL_MIN) return 1;
  int t = sl_threads();
  return t > MAX_TEAM ? MAX_TEAM : t;
}

static inline int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

static inline int team_count(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/*
 * Among the nonzero keys of the spans, finds the k-th largest key *thr (1 <= k <= number of
 * nonzero keys) and *n_greater, the number of keys > *thr. Three passes over the data.
 */
static void radix_threshold(const key_span *spans, int n_spans, int64_t k, uint32_t *thr,
                            int64_t *n_greater) {
  static const int shift[3] = {21, 10, 0};
  static const int width[3] = {11, 11, 10};
  uint64_t prefix = 0; /* the bits of the threshold fixed by earlier passes */
  int64_t need = k, greater = 0;
  int64_t hist[2048];
  for (int pass = 0; pass < 3; pass++) {
    const int s = shift[pass], nb = 1 << width[pass], hi = shift[pass] + width[pass];
    const uint32_t bin_mask = (uint32_t)nb - 1;
    memset(hist, 0, sizeof hist);
    for (int sp = 0; sp < n_spans; sp++) {
      const uint32_t *keys = spans[sp].keys;
      const int64_t n = spans[sp].n;
#pragma omp parallel num_threads(team_size(n))
      {
        int64_t local[2048];
        memset(local, 0, (size_t)nb * sizeof local[0]);
#pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < n; i++) {
          const uint32_t key = keys[i];
          if (key != 0 && ((uint64_t)key >> hi) == prefix) local[(key >> s) & bin_mask]++;
        }
#pragma omp critical(sl_topk_hist)
        for (int b = 0; b < nb; b++) hist[b] += local[b];
      }
    }
    int64_t above = 0;
    int b = nb - 1;
    for (; b > 0; b--) {
      if (above + hist[b] >= need) break;
      above += hist[b];
    }
    greater += above;
    need -= above;
    prefix = (prefix << width[pass]) | (uint64_t)b;
  }
  *thr = (uint32_t)prefix;
  *n_greater = greater;
}

/*
 * Writes to out[], in ascending index order, every i with keys[i] > thr and the first
 * min(*ties, #{keys == thr}) indices with keys[i] == thr; decrements *ties by the ties taken.
 * thr must be >= 1 (so key 0 is never taken). Returns the number written.
 */
static int64_t gather_selected(const uint32_t *keys, int64_t n, uint32_t thr, int64_t *ties,
                               int64_t *out) {
  int64_t gt[MAX_TEAM], eq[MAX_TEAM];
  int64_t written = 0;
  const int64_t ties_budget = *ties;
  int64_t ties_taken = 0;
#pragma omp parallel num_threads(team_size(n))
  {
    const int t = thread_id(), nt = team_count();
    const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    int64_t g = 0, e = 0;
    for (int64_t i = lo; i < hi; i++) {
      g += keys[i] > thr;
      e += keys[i] == thr;
    }
    gt[t] = g;
    eq[t] = e;
#pragma omp barrier
    /* This block's output offset and tie allowance follow from the blocks before it. */
    int64_t offset = 0, ties_left = ties_budget;
    for (int j = 0; j < t; j++) {
      const int64_t take = eq[j] < ties_left ? eq[j] : ties_left;
      offset += gt[j] + take;
      ties_left -= take;
    }
    const int64_t my_ties = e < ties_left ? e : ties_left;
    int64_t taken = 0;
    for (int64_t i = lo; i < hi; i++) {
      const uint32_t key = keys[i];
      if (key > thr || (key == thr && taken < my_ties)) {
        taken += key == thr;
        out[offset++] = i;
      }
    }
    if (t == nt - 1) {
      written = offset; /* the last block ends where the whole output ends */
      ties_taken = (ties_budget - ties_left) + taken;
    }
  }
  *ties -= ties_taken;
  return written;
}

sl_status sl_topk(int64_t n, const float *scores, int64_t k, int32_t flags, int32_t *out_idx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_topk(__func__, n, scores, k, flags, out_idx));
  if (n == 0) return SL_OK;

  uint32_t *keys = malloc((size_t)n * sizeof *keys);
  int64_t *picked = malloc((size_t)(k > 0 ? k : 1) * sizeof *picked);
  if (keys == NULL || picked == NULL) {
    free(keys);
    free(picked);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for n = %lld scores",
                   (long long)n);
  }
  int64_t first_nan = n;
#pragma omp parallel for num_threads(team_size(n)) schedule(static) reduction(min : first_nan)
  for (int64_t i = 0; i < n; i++) {
    const uint32_t u = float_bits(scores[i]);
    if (is_nan_bits(u)) {
      keys[i] = 0;
      if (i < first_nan) first_nan = i;
    } else {
      keys[i] = score_key(scores[i], flags);
    }
  }
  if (first_nan < n) {
    free(keys);
    free(picked);
    return sl_fail(SL_E_INVALID_ARGUMENT, __func__, "scores[%lld] is NaN", (long long)first_nan);
  }
  if (k > 0) {
    const key_span span = {keys, n};
    uint32_t thr;
    int64_t greater;
    radix_threshold(&span, 1, k, &thr, &greater);
    int64_t ties = k - greater;
    gather_selected(keys, n, thr, &ties, picked);
    for (int64_t j = 0; j < k; j++) out_idx[j] = (int32_t)picked[j];
  }
  free(keys);
  free(picked);
  return SL_OK;
}

/* ---------------------------------------------------------- CSR pattern checks ---- */

/* Full check of a CSR pattern (offsets, column range, sorted and unique within rows). */
static sl_status check_pattern(const char *fn, int32_t n_rows, int32_t n_cols, int64_t nnz,
                               const int32_t *row_ptr, const int32_t *col_idx) {
  sl_status st = sl_check_offsets(fn, "row_ptr", row_ptr, n_rows, nnz);
  if (st != SL_OK) return st;
  for (int64_t r = 0; r < n_rows; r++) {
    const int64_t k0 = row_ptr[r], k1 = row_ptr[r + 1];
    for (int64_t k = k0; k < k1; k++) {
      if ((uint32_t)col_idx[k] >= (uint32_t)n_cols)
        return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %d)",
                       (long long)k, col_idx[k], n_cols);
      if (k > k0 && col_idx[k] <= col_idx[k - 1])
        return sl_fail(col_idx[k] == col_idx[k - 1] ? SL_E_DUPLICATE : SL_E_INVALID_ARGUMENT, fn,
                       "col_idx[%lld] = %d is not greater than col_idx[%lld] = %d (columns must "
                       "be sorted and unique within a row)",
                       (long long)k, col_idx[k], (long long)(k - 1), col_idx[k - 1]);
    }
  }
  return SL_OK;
}

/* ------------------------------------------------ chunked dense-gradient top-k ---- */

/*
 * One pass over a gradient chunk (rows x n_in floats g, row r's connections at
 * row_ptr[r] .. row_ptr[r + 1] - 1): the key of an entry is 0 inside the pattern or at/below
 * floor_key, else bits(|g|) + 1 (a NaN gives a key above 0x7F800001, the key of inf). Each
 * thread takes one contiguous block of rows and stores block_valid[block] = its nonzero keys.
 * With keys_out, every key is written there (in place over g); with pack_keys, the nonzero keys
 * and their chunk indices go to the block's share of the pack arrays instead, and
 * *pack_overflow is set when a share fills up. *any_nan is set when a NaN is met.
 */
static void key_pass(const float *g, uint32_t *keys_out, int64_t rows, int32_t n_in,
                     const int32_t *row_ptr, const int32_t *col_idx, uint32_t floor_key,
                     uint32_t *pack_keys, uint32_t *pack_idx, int64_t pack_cap, int *blocks,
                     int64_t *block_valid, int *any_nan, int *pack_overflow) {
  int nan_seen = 0, overflow = 0;
  const int64_t len = rows * (int64_t)n_in;
#pragma omp parallel num_threads(team_size(len)) reduction(| : nan_seen, overflow)
  {
    const int t = thread_id(), nt = team_count();
    if (t == 0) *blocks = nt;
    const int64_t lo = rows * t / nt, hi = rows * (t + 1) / nt;
    const int64_t share = pack_cap / nt, pack_start = share * t;
    int64_t valid_here = 0, packed = 0;
    uint32_t worst = 0;
    for (int64_t r = lo; r < hi; r++) {
      int64_t p = row_ptr[r];
      const int64_t p_end = row_ptr[r + 1];
      const int64_t base = r * (int64_t)n_in;
      int64_t i = 0;
      for (;;) {
        /* The run of absent columns up to the next connection (or the row's end). */
        const int64_t stop = p < p_end ? col_idx[p] : n_in;
        if (keys_out != NULL) {
          for (; i < stop; i++) {
            const uint32_t key = (float_bits(g[base + i]) & 0x7FFFFFFFu) + 1;
            worst = key > worst ? key : worst;
            const uint32_t kept = key > floor_key ? key : 0;
            keys_out[base + i] = kept;
            valid_here += kept != 0;
          }
        } else {
          for (; i < stop; i++) {
            const uint32_t key = (float_bits(g[base + i]) & 0x7FFFFFFFu) + 1;
            worst = key > worst ? key : worst;
            if (key > floor_key) {
              valid_here++;
              if (packed < share) {
                pack_keys[pack_start + packed] = key;
                pack_idx[pack_start + packed] = (uint32_t)(base + i);
                packed++;
              } else {
                overflow = 1;
              }
            }
          }
        }
        if (p >= p_end) break;
        if (keys_out != NULL) keys_out[base + i] = 0; /* a kept connection: not a candidate */
        i++;
        p++;
      }
    }
    block_valid[t] = valid_here;
    nan_seen |= worst > 0x7F800001u;
  }
  *any_nan = nan_seen;
  *pack_overflow = overflow;
}

/*
 * A chunk's entries that beat the running floor, without the chunk: its rows r0 .. r0 + rows of
 * G filtered as they are computed (sl_dense_grad_rows_above, into `pairs`, cap entries of
 * scratch), then the positions inside the pattern dropped. Writes the survivors' keys and
 * chunk indices to pack_keys / pack_idx (at most cap each) in position order, as key_pass's
 * packing does, and returns their count; -1 when the caller must compute the chunk itself:
 * more than cap entries beat the floor, one of them is NaN, or *status is set (no scratch).
 */
static int64_t filtered_chunk(int32_t batch, int32_t n_in, int32_t n_out, const float *x,
                              const float *xpack, const float *dy, int64_t r0, int64_t rows,
                              const int32_t *row_ptr, const int32_t *col_idx, uint32_t floor_key,
                              uint64_t *pairs, int64_t cap, uint32_t *pack_keys,
                              uint32_t *pack_idx, sl_status *status) {
  const int64_t n = sl_dense_grad_rows_above("sl_dense_grad_topk", batch, n_in, n_out, x, xpack,
                                             dy, r0, rows, floor_key, pairs, cap, status);
  if (n < 0) return -1;
  int64_t kept = 0, row = -1, p = 0, p_end = 0;
  for (int64_t j = 0; j < n; j++) {
    const uint32_t key = (uint32_t)pairs[j], idx = (uint32_t)(pairs[j] >> 32);
    if (key > 0x7F800001u) return -1; /* NaN: the caller's key pass finds the first one */
    const int64_t r = idx / n_in, i = idx % n_in;
    if (r != row) { /* positions ascend: each row's connections are walked once */
      row = r;
      p = row_ptr[r0 + r];
      p_end = row_ptr[r0 + r + 1];
    }
    while (p < p_end && col_idx[p] < i) p++;
    if (p < p_end && col_idx[p] == i) continue; /* a kept connection: not a candidate */
    pack_keys[kept] = key;
    pack_idx[kept] = idx;
    kept++;
  }
  return kept;
}

sl_status sl_dense_grad_topk(int32_t batch, int32_t n_in, int32_t n_out, const float *x,
                             const float *dy, int64_t nnz, const int32_t *row_ptr,
                             const int32_t *col_idx, int64_t k, int64_t max_size,
                             int32_t *out_rows, int32_t *out_cols, float *out_grad) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_dense_grad_topk(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, k,
                                          max_size));
  const int64_t total = (int64_t)n_out * n_in;
  sl_status st = check_pattern(__func__, n_out, n_in, nnz, row_ptr, col_idx);
  if (st != SL_OK) return st;
  const int64_t absent = total - nnz;
  SL_CHECK_ARG(k <= absent, "k = %lld exceeds the %lld positions outside the pattern",
               (long long)k, (long long)absent);
  if (k == 0) return SL_OK;
  SL_CHECK_PTR_IF(x, sl_mul_size(batch, n_in));
  SL_CHECK_PTR_IF(dy, sl_mul_size(batch, n_out));
  SL_CHECK_PTR(out_rows);
  SL_CHECK_PTR(out_cols);

  const int64_t chunk_rows = max_size / n_in < n_out ? max_size / n_in : n_out;
  const int64_t chunk_len = chunk_rows * (int64_t)n_in;
  /* Allocated memory takes the type of its last store (C11 6.5p6): the GEMM writes floats,
   * the key pass then rewrites each element as its uint32 key, in place. From the kernels'
   * scratch, on 2 MiB pages: a 400 MB chunk on 4 KiB pages took ~0.7 s of page faults to write
   * the first time (a 100k x 100k update: 11-14 s in all). */
  void *chunk = sl_scratch_get((chunk_len > 0 ? chunk_len : 1) * (int64_t)sizeof(float));
  /* x's column panels, packed once for every chunk (NULL without the memory: each chunk then
   * copies them, the same numbers). */
  float *xpack = batch > 0 && n_in > 0 ? sl_dense_grad_pack_x(batch, n_in, x) : NULL;
  uint32_t *cand_keys[2] = {malloc((size_t)k * sizeof(uint32_t)),
                            malloc((size_t)k * sizeof(uint32_t))};
  int64_t *cand_pos[2] = {malloc((size_t)k * sizeof(int64_t)), malloc((size_t)k * sizeof(int64_t))};
  if (chunk == NULL || !cand_keys[0] || !cand_keys[1] || !cand_pos[0] || !cand_pos[1]) {
    sl_scratch_put(xpack);
    sl_scratch_put(chunk);
    free(cand_keys[0]);
    free(cand_keys[1]);
    free(cand_pos[0]);
    free(cand_pos[1]);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__,
                   "cannot allocate a %lld-entry gradient chunk and %lld candidates",
                   (long long)chunk_len, (long long)k);
  }

  int cur = 0;        /* which candidate buffer holds the running top-k */
  int64_t n_cand = 0; /* candidates so far (all keys >= 1), in ascending position order */
  uint32_t floor_key = 0; /* once n_cand == k: the k-th best key; a later position needs more */
  int64_t first_nan = -1;
  sl_status status = SL_OK;
  /* Once the running top-k is full, few entries of a chunk beat its floor: they are packed as
   * (key, index in chunk) pairs, at most chunk_len / 8 of them (allocated on first use), so the
   * selection passes read those instead of the whole chunk. */
  const int64_t pack_cap = chunk_len / 8;
  uint32_t *pack_keys = NULL, *pack_idx = NULL;
  int pack_failed = 0;
  int64_t block_valid[MAX_TEAM], block_offset[MAX_TEAM];

  for (int64_t r0 = 0; r0 < n_out; r0 += chunk_rows) {
    const int64_t rows = n_out - r0 < chunk_rows ? n_out - r0 : chunk_rows;
    const int64_t len = rows * (int64_t)n_in;
    /* Packing needs the running floor (few survivors), index space and its scratch. */
    int packing = floor_key > 0 && len <= (int64_t)UINT32_MAX && pack_cap > 0 && !pack_failed;
    if (packing && pack_keys == NULL) {
      pack_keys = malloc((size_t)pack_cap * sizeof *pack_keys);
      pack_idx = malloc((size_t)pack_cap * sizeof *pack_idx);
      if (pack_keys == NULL || pack_idx == NULL) { /* not fatal: select on the whole chunk */
        free(pack_keys);
        free(pack_idx);
        pack_keys = pack_idx = NULL;
        pack_failed = 1;
        packing = 0;
      }
    }

    const float *gf = (const float *)chunk;
    uint32_t *gk = (uint32_t *)chunk;
    int blocks = 1, any_nan = 0, pack_overflow = 0;
    /* With the floor set, the few entries that beat it come straight from the GEMM's tiles
     * (sl_dense_grad_rows_above), the chunk never written nor read back: -1 when that does not
     * work out (too many survivors, a NaN among them, no finite floor), and the chunk is then
     * computed and keyed as below. */
    const int64_t fused =
        packing ? filtered_chunk(batch, n_in, n_out, x, xpack, dy, r0, rows, row_ptr, col_idx,
                                 floor_key, (uint64_t *)chunk, pack_cap, pack_keys, pack_idx,
                                 &status)
                : -1;
    if (fused < 0 && status == SL_OK) {
      /* G's rows r0 .. r0 + rows, each entry in a fixed order (dense_grad.c): the growth does
       * not depend on the thread count or on max_size. */
      status =
          sl_dense_grad_rows(__func__, batch, n_in, n_out, x, xpack, dy, r0, rows, (float *)chunk);
    }
    if (status != SL_OK) {
      char why[256];
      snprintf(why, sizeof why, "%s", sl_last_error());
      sl_fail(status, __func__, "the gradient of rows [%lld, %lld) failed: %s", (long long)r0,
              (long long)(r0 + rows), why);
      break;
    }
    if (fused >= 0) {
      block_valid[0] = fused;
    } else if (packing) {
      key_pass(gf, NULL, rows, n_in, row_ptr + r0, col_idx, floor_key, pack_keys, pack_idx,
               pack_cap, &blocks, block_valid, &any_nan, &pack_overflow);
    }
    if (!packing || any_nan || pack_overflow) {
      /* Keys written in place: the selection (or the NaN search) reads the whole chunk. */
      packing = 0;
      key_pass(gf, gk, rows, n_in, row_ptr + r0, col_idx, floor_key, NULL, NULL, 0, &blocks,
               block_valid, &any_nan, &pack_overflow);
    }
    if (any_nan) {
      int64_t q = 0;
      while (gk[q] <= 0x7F800001u) q++;
      first_nan = r0 * (int64_t)n_in + q;
      break;
    }
    int64_t valid = 0;
    for (int b = 0; b < blocks; b++) {
      block_offset[b] = valid;
      valid += block_valid[b];
    }
    if (valid == 0) continue;

    /* The span the selection reads: the packed survivors (each block's share moved down to
     * follow the previous one, in block = position order), or the whole chunk. */
    const uint32_t *span_keys = gk;
    const uint32_t *span_idx = NULL;
    int64_t span_n = len;
    if (packing) {
      const int64_t share = pack_cap / blocks;
      for (int b = 1; b < blocks; b++) {
        memmove(pack_keys + block_offset[b], pack_keys + share * b,
                (size_t)block_valid[b] * sizeof *pack_keys);
        memmove(pack_idx + block_offset[b], pack_idx + share * b,
                (size_t)block_valid[b] * sizeof *pack_idx);
      }
      span_keys = pack_keys;
      span_idx = pack_idx;
      span_n = valid;
    }

    uint32_t *next_keys = cand_keys[1 - cur];
    int64_t *next_pos = cand_pos[1 - cur];
    const int64_t base_pos = r0 * (int64_t)n_in;
    int64_t n_next, from_cand;
    if (n_cand + valid <= k) {
      /* Everything fits: keep the candidates and append the chunk's valid entries. */
      memcpy(next_keys, cand_keys[cur], (size_t)n_cand * sizeof *next_keys);
      memcpy(next_pos, cand_pos[cur], (size_t)n_cand * sizeof *next_pos);
      int64_t ties = 0;
      from_cand = n_cand;
      n_next = n_cand + gather_selected(span_keys, span_n, 0, &ties, next_pos + n_cand);
    } else {
      const key_span spans[2] = {{cand_keys[cur], n_cand}, {span_keys, span_n}};
      uint32_t thr;
      int64_t greater;
      radix_threshold(spans, 2, k, &thr, &greater);
      int64_t ties = k - greater;
      /* Candidates have lower positions than the whole chunk, so they win ties first. */
      from_cand = gather_selected(cand_keys[cur], n_cand, thr, &ties, next_pos);
      for (int64_t j = 0; j < from_cand; j++) {
        const int64_t i = next_pos[j];
        next_keys[j] = cand_keys[cur][i];
        next_pos[j] = cand_pos[cur][i];
      }
      n_next = from_cand + gather_selected(span_keys, span_n, thr, &ties, next_pos + from_cand);
    }
    for (int64_t j = from_cand; j < n_next; j++) {
      const int64_t i = next_pos[j];
      next_keys[j] = span_keys[i];
      next_pos[j] = base_pos + (span_idx != NULL ? (int64_t)span_idx[i] : i);
    }
    cur = 1 - cur;
    n_cand = n_next;
    if (n_cand == k) {
      uint32_t lowest = UINT32_MAX;
      for (int64_t j = 0; j < n_cand; j++)
        if (cand_keys[cur][j] < lowest) lowest = cand_keys[cur][j];
      floor_key = lowest;
    }
  }
  sl_scratch_put(xpack);
  sl_scratch_put(chunk);
  free(pack_keys);
  free(pack_idx);
  free(cand_keys[0]);
  free(cand_keys[1]);
  free(cand_pos[1 - cur]);
  if (status != SL_OK) {
    free(cand_pos[cur]);
    return status; /* the message is already set */
  }
  if (first_nan >= 0) {
    free(cand_pos[cur]);
    return sl_fail(SL_E_INVALID_ARGUMENT, __func__,
                   "the gradient dy^T x is NaN at (row %lld, col %lld): x or dy holds NaN",
                   (long long)(first_nan / n_in), (long long)(first_nan % n_in));
  }
  /* Every position outside the pattern was a candidate until the running top-k was full, and
   * absent >= k, so exactly k were kept. */
  const int64_t *pos = cand_pos[cur];
#pragma omp parallel for num_threads(team_size(k * (int64_t)(batch + 1))) schedule(static)
  for (int64_t j = 0; j < k; j++) {
    const int64_t o = pos[j] / n_in, i = pos[j] % n_in;
    out_rows[j] = (int32_t)o;
    out_cols[j] = (int32_t)i;
    if (out_grad != NULL) {
      /* The signed value (keys keep only the magnitude), recomputed as the same chain of fused
       * multiply-adds as the ranked G (dense_grad.c), so it is the value that was ranked. */
      float g = 0.0f;
      for (int64_t b = 0; b < batch; b++)
        g = fmaf(dy[b * (int64_t)n_out + o], x[b * (int64_t)n_in + i], g);
      out_grad[j] = g;
    }
  }
  free(cand_pos[cur]);
  return SL_OK;
}

/* ------------------------------------------------------ random absent positions ---- */

sl_status sl_sample_absent(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *row_ptr,
                           const int32_t *col_idx, int64_t k, uint64_t seed, int32_t *out_rows,
                           int32_t *out_cols) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sample_absent(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, k));
  const int64_t total = (int64_t)n_rows * n_cols;
  sl_status st = check_pattern(__func__, n_rows, n_cols, nnz, row_ptr, col_idx);
  if (st != SL_OK) return st;
  const int64_t absent = total - nnz;
  SL_CHECK_ARG(k <= absent, "k = %lld exceeds the %lld positions outside the pattern",
               (long long)k, (long long)absent);
  if (k == 0) return SL_OK;
  SL_CHECK_PTR(out_rows);
  SL_CHECK_PTR(out_cols);

  uint64_t *ranks = malloc((size_t)k * sizeof *ranks);
  int64_t *cum = malloc(((size_t)n_rows + 1) * sizeof *cum);
  st = ranks == NULL || cum == NULL
           ? sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for k = %lld samples",
                     (long long)k)
           : sl_draw_ranks(__func__, absent, k, seed, ranks);
  if (st != SL_OK) {
    free(ranks);
    free(cum);
    return st;
  }

  /* Absent rank -> (row, col): cum[r] absent positions lie in the rows before r; within a row
   * the q-th absent column is q + #{j : col_j - j <= q} (col_j - j counts absent columns before
   * the j-th connection, and never decreases). */
  cum[0] = 0;
  for (int64_t r = 0; r < n_rows; r++) cum[r + 1] = cum[r] + (n_cols - (row_ptr[r + 1] - row_ptr[r]));
  int64_t row = 0;
  for (int64_t j = 0; j < k; j++) {
    const int64_t rank = (int64_t)ranks[j];
    while (cum[row + 1] <= rank) row++;
    const int64_t q = rank - cum[row];
    const int32_t *cols = col_idx + row_ptr[row];
    int64_t lo = 0, hi = row_ptr[row + 1] - row_ptr[row]; /* count of j with cols[j] - j <= q */
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (cols[mid] - mid <= q) lo = mid + 1;
      else hi = mid;
    }
    out_rows[j] = (int32_t)row;
    out_cols[j] = (int32_t)(q + lo);
  }
  free(ranks);
  free(cum);
  return SL_OK;
}

/* ----------------------------------------------------------- CSR drop + grow ---- */

sl_status sl_csr_drop_grow(int32_t n_rows, int32_t n_cols, int64_t nnz, const int32_t *row_ptr,
                           const int32_t *col_idx, const float *values, int64_t n_drop,
                           const int32_t *drop_idx, int64_t n_grow, const int32_t *grow_rows,
                           const int32_t *grow_cols, int32_t flags, int32_t *new_row_ptr,
                           int32_t *new_col_idx, float *new_values, int32_t *old_index) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_csr_drop_grow(__func__, n_rows, n_cols, nnz, row_ptr, col_idx, values,
                                        n_drop, drop_idx, n_grow, grow_rows, grow_cols, flags,
                                        new_row_ptr, new_col_idx, new_values));
  sl_status st = check_pattern(__func__, n_rows, n_cols, nnz, row_ptr, col_idx);
  if (st != SL_OK) return st;

  uint8_t *dropped = calloc((size_t)(nnz > 0 ? nnz : 1), 1);
  uint64_t *grow = malloc((size_t)(n_grow > 0 ? n_grow : 1) * sizeof *grow);
  int64_t *grow_ptr = calloc((size_t)n_rows + 1, sizeof *grow_ptr);
  int64_t *row_count = malloc(((size_t)n_rows + 1) * sizeof *row_count);
  if (dropped == NULL || grow == NULL || grow_ptr == NULL || row_count == NULL) {
    free(dropped);
    free(grow);
    free(grow_ptr);
    free(row_count);
    return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch for nnz = %lld",
                   (long long)nnz);
  }
  /* The message is formatted before the scratch it may mention is freed. */
#define FAIL(code, ...)                                                          \
  do {                                                                           \
    const sl_status fail_status_ = sl_fail(code, __func__, __VA_ARGS__);        \
    free(dropped);                                                               \
    free(grow);                                                                  \
    free(grow_ptr);                                                              \
    free(row_count);                                                             \
    return fail_status_;                                                         \
  } while (0)

  for (int64_t d = 0; d < n_drop; d++) {
    const int32_t e = drop_idx[d];
    if ((uint32_t)e >= (uint64_t)nnz)
      FAIL(SL_E_INDEX_OUT_OF_RANGE, "drop_idx[%lld] = %d is outside [0, %lld)", (long long)d, e,
           (long long)nnz);
    if (dropped[e]) FAIL(SL_E_DUPLICATE, "drop_idx[%lld] = %d is listed twice", (long long)d, e);
    dropped[e] = 1;
  }
  for (int64_t g = 0; g < n_grow; g++) {
    if ((uint32_t)grow_rows[g] >= (uint32_t)n_rows)
      FAIL(SL_E_INDEX_OUT_OF_RANGE, "grow_rows[%lld] = %d is outside [0, %d)", (long long)g,
           grow_rows[g], n_rows);
    if ((uint32_t)grow_cols[g] >= (uint32_t)n_cols)
      FAIL(SL_E_INDEX_OUT_OF_RANGE, "grow_cols[%lld] = %d is outside [0, %d)", (long long)g,
           grow_cols[g], n_cols);
    grow[g] = ((uint64_t)grow_rows[g] << 32) | (uint32_t)grow_cols[g];
    grow_ptr[grow_rows[g] + 1]++;
  }
  /* Already sorted is the common case (both growth kernels emit row-major order). */
  int sorted = 1;
  for (int64_t g = 1; g < n_grow && sorted; g++) sorted = grow[g] > grow[g - 1];
  if (!sorted) {
    sl_sort_u64(grow, n_grow);
    for (int64_t g = 1; g < n_grow; g++)
      if (grow[g] == grow[g - 1])
        FAIL(SL_E_DUPLICATE, "the grown position (row %u, col %u) is listed twice",
             (unsigned)(grow[g] >> 32), (unsigned)(uint32_t)grow[g]);
  }
  for (int64_t r = 0; r < n_rows; r++) grow_ptr[r + 1] += grow_ptr[r];

  /* Pass 1: per-row counts, and no grown position may be a kept connection. */
  int64_t conflict_row = INT64_MAX;
#pragma omp parallel for num_threads(team_size(nnz + n_grow)) schedule(static) \
    reduction(min : conflict_row)
  for (int64_t r = 0; r < n_rows; r++) {
    int64_t p = row_ptr[r];
    const int64_t p_end = row_ptr[r + 1];
    int64_t count = 0;
    for (int64_t p2 = p; p2 < p_end; p2++) count += !dropped[p2];
    for (int64_t g = grow_ptr[r]; g < grow_ptr[r + 1]; g++) {
      const int32_t c = (int32_t)(uint32_t)grow[g];
      while (p < p_end && col_idx[p] < c) p++;
      if (p < p_end && col_idx[p] == c && !dropped[p]) {
        if (r < conflict_row) conflict_row = r;
        break;
      }
      count++;
    }
    row_count[r] = count;
  }
  if (conflict_row != INT64_MAX) {
    /* Name the first conflicting position of that row. */
    int64_t p = row_ptr[conflict_row];
    for (int64_t g = grow_ptr[conflict_row]; g < grow_ptr[conflict_row + 1]; g++) {
      const int32_t c = (int32_t)(uint32_t)grow[g];
      while (p < row_ptr[conflict_row + 1] && col_idx[p] < c) p++;
      if (p < row_ptr[conflict_row + 1] && col_idx[p] == c && !dropped[p])
        FAIL(SL_E_DUPLICATE,
             "the grown position (row %lld, col %d) is a kept connection (CSR entry %lld)",
             (long long)conflict_row, c, (long long)p);
    }
  }
  /* Nothing is written before this point: a rejected call leaves every output untouched. */
  new_row_ptr[0] = 0;
  for (int64_t r = 0; r < n_rows; r++) new_row_ptr[r + 1] = (int32_t)(new_row_ptr[r] + row_count[r]);

  /* Pass 2: merge each row's kept connections with its grown positions, by column. */
  const int keep_regrown = (flags & SL_REGROW_KEEPS) != 0;
#pragma omp parallel for num_threads(team_size(nnz + n_grow)) schedule(static)
  for (int64_t r = 0; r < n_rows; r++) {
    int64_t p = row_ptr[r], out = new_row_ptr[r];
    const int64_t p_end = row_ptr[r + 1];
    int64_t g = grow_ptr[r];
    const int64_t g_end = grow_ptr[r + 1];
    while (p < p_end || g < g_end) {
      const int32_t gc = g < g_end ? (int32_t)(uint32_t)grow[g] : INT32_MAX;
      if (p < p_end && col_idx[p] < gc) {
        if (!dropped[p]) {
          new_col_idx[out] = col_idx[p];
          if (new_values) new_values[out] = values[p];
          if (old_index) old_index[out] = (int32_t)p;
          out++;
        }
        p++;
        continue;
      }
      /* A grown position; when it is the connection just dropped, it may keep its past. */
      const int regrown = p < p_end && col_idx[p] == gc;
      const int keep = regrown && keep_regrown;
      new_col_idx[out] = gc;
      if (new_values) new_values[out] = keep ? values[p] : 0.0f;
      if (old_index) old_index[out] = keep ? (int32_t)p : -1;
      out++;
      if (regrown) p++;
      g++;
    }
  }
  free(dropped);
  free(grow);
  free(grow_ptr);
  free(row_count);
#undef FAIL
  return SL_OK;
}
