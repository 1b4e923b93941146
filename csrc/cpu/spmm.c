/*
 * spmm.c — the sparse-layer kernels: forward SpMM, input gradient (from the CSC view, or from
 * the CSR pattern), weight gradient (SDDMM over the pattern), both gradients in one pass over the
 * CSC view (or, at batch 1, over the CSR pattern), and bias gradient.
 *
 * Batch > 1 (SparseProp layout): the operand that is gathered at random (x for the forward and
 * the SDDMM, dy for the input gradient) is transposed at the call boundary into a feature-major
 * scratch tile of w batch columns (w = batch rounded up to 8, at most 64, zero-padded), so each
 * connection is one contiguous w-wide FMA over the batch. Results go straight to the row-major
 * output, eight rows at a time through an in-register 8 x 8 transpose. Indices are validated
 * in a vectorised pass (a few % of the kernel's traffic) before anything is written, so the
 * kernels themselves carry no checks.
 *
 * SL_PRECISION_MEDIUM (sl_set_matmul_precision): the batched kernels' gathered tile holds
 * bfloat16 values, widened to float32 as they are loaded (see "bfloat16 tiles" below).
 *
 * Full 64-column tiles run in 512-bit registers where the machine has AVX-512 (the forward /
 * input-gradient gather and the fused backward). On Zen 5, which executes them at full width,
 * 50000^2 at batch 64: the backward ~10 % faster in both precisions, the medium forward ~13 %,
 * the float32 forward (bound by its gathers) unchanged. On Zen 4, which splits them, earlier
 * trials found no difference.
 *
 * Batch 1: streaming passes over the pattern (memory-bound), with AVX-512 gathers where the
 * machine has them, and index checks fused into the loop (scratch output, committed only when
 * every index was valid).
 *
 * Input gradient: the CSC view (sl_spmm_bwd_input) gathers rows of dy like the forward; its
 * values are first gathered into CSC order in one prefetched pass (reading them through
 * csc_to_csr inside the FMA loop stalled the row gathers). sl_spmm_bwd computes the weight
 * gradient in the same pass over the CSC view, each gathered dy row serving both. The CSR form
 * (sl_spmm_bwd_input_csr) scatters instead: at batch 1 into per-thread copies of dx (small,
 * cache-resident: the CPU's batch-1 path, where values stream); at larger batches into a
 * feature-major scratch sliced by input feature per thread (each thread's slice of every row
 * found by binary search), a read-modify-write of every row, about twice the gather's traffic.
 *
 * Scratch comes from scratch.c: 2 MiB pages, kept between calls (the TLB, not the cache, limited
 * the gathers from a 12.8 MB panel on 4 KiB pages).
 *
 * Work is split across threads by nnz (plus a per-row cost), not by rows; several parts per
 * thread with dynamic scheduling absorb noise from other processes. Each part writes its own
 * outputs, so the schedule never changes a result; the one exception, the batch-1 scatter into
 * per-thread copies of dx, takes one static part per thread instead (bit-identical results
 * for a given thread count).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"
#include "validate.h"
#include "sparse_internal.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float v8f __attribute__((vector_size(32), aligned(32)));

#define TILE_MAX 64 /* batch columns per feature-major tile */
#define ALIGN 64
#define MAX_PARTS 512
#ifndef SL_PREFETCH
/* Entries ahead to prefetch gathered rows. 32 rather than 16: more of each gather's L3 latency
 * hidden (with the L2 hint of then; 50000^2 at batch 64, medians of alternating runs: forward
 * 9.9 -> 8.9 ms float32, 6.6 -> 6.0 bfloat16 tiles; backward 18.9 -> 18.2; 20000^2 at 99 % and
 * batch 16 no slower). With the L1 hint below, 16, 24 and 48 were no better than 32. */
#define SL_PREFETCH 32
#endif
#ifndef SL_PREFETCH_LOCALITY
/* Gathered rows are prefetched into L1 (prefetcht0). Into L2 only (2), as before the distance
 * above was 32, the FMA loop still waited on L2 for every row (C A/B, alternating runs, batch
 * 64: 50000^2 at 99.9 % forward 8.0 -> 6.4 ms float32, 5.3 -> 5.1 medium, backward 16.1 ->
 * 14.5 / 12.8 -> 11.8; 20000^2 at 99 % forward 9.2 -> 6.6, backward 19.5 -> 16.1; 4096^2 at
 * 90 % forward 2.8 -> 2.3; batch 16 no slower). */
#define SL_PREFETCH_LOCALITY 3
#endif
#ifndef SL_PREFETCH_VALUES
#define SL_PREFETCH_VALUES 32 /* entries ahead to prefetch values read through csc_to_csr */
#endif
#define VALIDATE_CHUNK (1 << 16)
#ifndef PERMUTE_AHEAD
/* Entries ahead to prefetch in the passes that permute values and gradients between CSR and CSC
 * order: each iteration is ~1 ns, an L3 miss ~50 ns, so 32 ahead left most misses exposed
 * (50000^2 backward: 19.7-20.2 ms at 32, 18.3 ms at 256). */
#define PERMUTE_AHEAD 256
#endif
#ifndef VALUES_IN_CACHE
#define VALUES_IN_CACHE (1 << 20) /* values read through a permutation stay in L2 below this */
#endif

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/*
 * Bias gradient inside the batched backward (sl_spmm_bwd's db): each tile of up to 64 batch
 * rows is summed per feature in float, in batch order, as the tile is laid out, and the tiles'
 * sums are added in double: sl_bias_grad's arithmetic (float sums of 64 rows, added in
 * double), so both give the same bits. sums[i] is the running double total of feature i; the
 * first tile (b0 == 0) starts it.
 */
static inline void add_tile_sum(double *sums, int64_t i, int64_t b0, float part) {
  sums[i] = (b0 == 0 ? 0.0 : sums[i]) + (double)part;
}

/* s[0] + ... + s[n - 1] in float, in order. */
static inline float row_sum(const float *s, int n) {
  float part = 0.0f;
  for (int j = 0; j < n; j++) part += s[j];
  return part;
}

/*
 * db[i] = sum over the batch of dy's feature i: dy batch-major ([batch, n], sl_bias_grad), or
 * feature-major ([n, batch], fm). Float sums of TILE_MAX (64) rows at a time, added up in
 * double: a float running sum over a large batch drifts (0.1 added 2^20 times came out 1 %
 * high), where PyTorch's grad.sum(0) and sl_sum_axis stay within rounding; a training batch of
 * <= 64 keeps float's speed. The batched backward's tiles sum the same way (add_tile_sum).
 */
static void bias_sums(int32_t batch, int32_t n, const float *dy, int fm, float *db) {
  const int threads = sl_threads();
  const int parallel = sl_mul_size(batch, n) > (1 << 19);
  if (fm) {
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
    for (int64_t i = 0; i < n; i++) {
      double acc = 0.0;
      for (int64_t b0 = 0; b0 < batch; b0 += TILE_MAX)
        acc += (double)row_sum(dy + i * batch + b0, (int)min64(TILE_MAX, batch - b0));
      db[i] = (float)acc;
    }
    return;
  }
  const int64_t blocks = ((int64_t)n + 1023) / 1024;
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel && blocks > 1)
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t o0 = blk * 1024, o1 = min64(o0 + 1024, n);
    double acc[1024];
    float part[1024];
    for (int64_t o = o0; o < o1; o++) acc[o - o0] = 0.0;
    for (int64_t b0 = 0; b0 < batch; b0 += TILE_MAX) {
      const int64_t b1 = min64(b0 + TILE_MAX, batch);
      for (int64_t o = o0; o < o1; o++) part[o - o0] = 0.0f;
      for (int64_t b = b0; b < b1; b++) {
        const float *row = dy + b * (int64_t)n;
#pragma omp simd
        for (int64_t o = o0; o < o1; o++) part[o - o0] += row[o];
      }
      for (int64_t o = o0; o < o1; o++) acc[o - o0] += (double)part[o - o0];
    }
    for (int64_t o = o0; o < o1; o++) db[o] = (float)acc[o - o0];
  }
}

/* ---------------------------------------------------------------- partitioning by nnz ---- */

/*
 * Splits rows [0, n_rows) into `parts` ranges of about equal cost, cost(row) = nnz(row) * unit
 * + 1 (each row also costs a store). bounds[p] is the first row of part p; bounds[parts] =
 * n_rows. The offsets must already be validated (monotone), so a binary search is valid.
 */
static void partition_rows(const int32_t *ptr, int64_t n_rows, int64_t unit, int parts,
                           int64_t *bounds) {
  int64_t total = (int64_t)ptr[n_rows] * unit + n_rows;
  bounds[0] = 0;
  for (int p = 1; p < parts; p++) {
    int64_t target = total / parts * p + total % parts * p / parts;
    int64_t lo = bounds[p - 1], hi = n_rows; /* first r with cost_prefix(r) >= target */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if ((int64_t)ptr[mid] * unit + mid < target)
        lo = mid + 1;
      else
        hi = mid;
    }
    bounds[p] = lo;
  }
  bounds[parts] = n_rows;
}

/*
 * Work below which a kernel runs on one thread, in its own units: batch-1 kernels count
 * connections + rows (~0.5 ns each, gathers), batched kernels count connections x tile columns
 * (~0.1 ns each, FMA lanes). Both are about 50 us on one core: less than that gains little from
 * a second thread on a quiet machine and loses a lot on a busy one, where a parallel region
 * waits for every thread to get a time slice (2000 -> 10 at batch 64, ~25 us alone, took
 * 0.3-3 ms per call with 2 threads under load).
 */
#define SERIAL_WORK_B1 (1 << 17)
#define SERIAL_WORK_BATCHED (1 << 19)

/* How many parts to split into: several per thread so dynamic scheduling absorbs noise. */
static int choose_parts(int threads, int64_t work, int64_t serial_below) {
  if (threads <= 1 || work < serial_below) return 1;
  int64_t parts = (int64_t)threads * 8;
  int64_t max_by_work = work / (1 << 13);
  if (parts > max_by_work) parts = max_by_work;
  if (parts > MAX_PARTS) parts = MAX_PARTS;
  return parts < 1 ? 1 : (int)parts;
}

/* ------------------------------------------------------------------ index validation ---- */

/* First k in [k0, k1) with idx[k] >= bound or (perm and perm[k] >= n_vals), unsigned; else -1. */
static int64_t first_bad_entry(int64_t k0, int64_t k1, const int32_t *idx, uint32_t bound,
                               const int32_t *perm, uint32_t n_vals) {
  uint32_t bad = 0;
  if (perm) {
#pragma omp simd reduction(| : bad)
    for (int64_t k = k0; k < k1; k++)
      bad |= ((uint32_t)idx[k] >= bound) | ((uint32_t)perm[k] >= n_vals);
  } else {
#pragma omp simd reduction(| : bad)
    for (int64_t k = k0; k < k1; k++) bad |= (uint32_t)idx[k] >= bound;
  }
  if (!bad) return -1;
  for (int64_t k = k0; k < k1; k++)
    if ((uint32_t)idx[k] >= bound || (perm && (uint32_t)perm[k] >= n_vals)) return k;
  return -1;
}

/*
 * Chunk `ch` (VALIDATE_CHUNK entries) of a pattern's nnz entries: returns the first entry with
 * idx >= bound or perm >= n_vals (unsigned; perm may be null), else -1, and when the chunk is
 * valid and valsT is given also gathers its values into pattern order, valsT[k] = vals[perm[k]],
 * while perm is in cache. The reads from vals are random: they are prefetched PERMUTE_AHEAD
 * entries ahead.
 */
static int64_t check_chunk(int64_t ch, int64_t nnz, const int32_t *idx, uint32_t bound,
                           const int32_t *perm, uint32_t n_vals, const float *vals, float *valsT) {
  const int64_t k0 = ch * VALIDATE_CHUNK, k1 = min64(k0 + VALIDATE_CHUNK, nnz);
  const int64_t bad = first_bad_entry(k0, k1, idx, bound, perm, n_vals);
  if (bad < 0 && valsT != NULL) {
    for (int64_t k = k0; k < k1; k++) {
      __builtin_prefetch(vals + perm[min64(k + PERMUTE_AHEAD, k1 - 1)]);
      valsT[k] = vals[perm[k]];
    }
  }
  return bad;
}

/* ----------------------------------------------------------------- layout transposes ---- */

#if defined(__AVX__)
/* In-register transpose of an 8 x 8 block of floats. */
static inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

/* --------------------------------------------------- bfloat16 tiles (medium precision) ---- */

/*
 * With SL_PRECISION_MEDIUM the gathered operand's tile holds bfloat16 values: half the bytes per
 * gathered row (128 instead of 256 at batch 64), which is what bounds the batched kernels (a
 * forward at 50000^2, 99.9 %, batch 64: 8.6 -> 6.2 ms in a first C harness). Rows hold w values
 * (w a multiple of 8) in groups of 16, zero-padded. Within each group of 16 batch columns the
 * values are stored in the order 0-3, 8-11, 4-7, 12-15, so that interleaving the group's 256-bit
 * word with zeros (unpacklo / unpackhi over 16-bit words, per 128-bit lane) gives columns 0-7
 * and 8-15 as float32 vectors, one instruction each (a zero-extend and a shift per 8 values was
 * ~6 % slower). Needs AVX2; without it the setting is ignored.
 */
#if defined(__AVX2__)
#define SL_BF16_TILES 1

/* The slot of batch column j in a bfloat16 row: bits 2 and 3 of j swapped. */
static inline int bf16_slot(int j) {
  return (j & ~15) | (j & 3) | ((j & 4) << 1) | ((j & 8) >> 1);
}

/* f rounded to bfloat16: to nearest, ties to even; a NaN stays NaN (quiet). */
static inline uint16_t bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

/* bf16_round of 8 floats, as 8 contiguous 16-bit values. */
static inline __m128i bf16_round8(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i high = _mm256_srli_epi32(u, 16);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(high, _mm256_set1_epi32(1)),
                                        _mm256_set1_epi32(0x7FFF));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256i quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, quiet, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

/* Stores batch columns j0 .. j0 + 7 (j0 a multiple of 8) of a bfloat16 row. */
static inline void bf16_store8(uint16_t *row, int j0, __m256 v) {
  const __m128i h = bf16_round8(v);
  uint16_t *g = row + (j0 & ~15) + ((j0 & 8) ? 4 : 0);
  _mm_storel_epi64((__m128i *)g, h);
  _mm_storel_epi64((__m128i *)(g + 8), _mm_unpackhi_epi64(h, h));
}

/* Columns 8j .. 8j + 7 of a bfloat16 row (32-byte aligned) as float32. */
static inline v8f bf16_load8(const uint16_t *row, int j) {
  const __m256i raw = _mm256_load_si256((const __m256i *)(row + 16 * (j >> 1)));
  const __m256i z = _mm256_setzero_si256();
  return (v8f)_mm256_castsi256_ps((j & 1) ? _mm256_unpackhi_epi16(z, raw)
                                          : _mm256_unpacklo_epi16(z, raw));
}

/* copy_feature_major_omp (below) into a bfloat16 tile. */
static void copy_feature_major_bf16_omp(const float *src, int64_t n, int64_t ld, int64_t b0,
                                        int bt, int w, uint16_t *dst, double *sums) {
  const int bt8 = bt / 8 * 8;
  w = (int)round_up(w, 16); /* the row stride; slots past the w columns hold zeros */
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < n; i++) {
    uint16_t *d = dst + i * w;
    const float *s = src + i * ld + b0;
    int j = 0;
    for (; j < bt8; j += 8) bf16_store8(d, j, _mm256_loadu_ps(s + j));
    for (; j < w; j++) d[bf16_slot(j)] = j < bt ? bf16_round(s[j]) : 0;
    if (sums) add_tile_sum(sums, i, b0, row_sum(s, bt));
  }
}
#else
#define SL_BF16_TILES 0
#endif

/* The batched kernels' compile-time instances, CASE(vectors per tile row, bfloat16 tile), as
 * the cases of a dispatch `switch (2 * nv + bf)`. */
#define SL_TILE_CASES_F32(CASE)                                                              \
  CASE(1, 0) CASE(2, 0) CASE(3, 0) CASE(4, 0) CASE(5, 0) CASE(6, 0) CASE(7, 0) CASE(8, 0)
#if SL_BF16_TILES
#define SL_TILE_CASES(CASE)                                                                  \
  SL_TILE_CASES_F32(CASE)                                                                    \
  CASE(1, 1) CASE(2, 1) CASE(3, 1) CASE(4, 1) CASE(5, 1) CASE(6, 1) CASE(7, 1) CASE(8, 1)
#else
#define SL_TILE_CASES(CASE) SL_TILE_CASES_F32(CASE)
#endif

/* Whether a call at this batch size lays its gathered tile out in bfloat16
 * (SL_PRECISION_MEDIUM where supported; batch 1 stays float32 in every kernel). */
static int bf16_tiles(int32_t batch) {
  return SL_BF16_TILES && batch > 1 && sl_get_matmul_precision() == SL_PRECISION_MEDIUM;
}

/* Values per tile row of w batch columns (w a multiple of 8): w floats, or w bfloat16 values
 * rounded up to whole groups of 16 (the last group half zeros when w is an odd multiple of 8;
 * the kernels then never load that half, so their arithmetic is the float32 kernels'). */
static inline int64_t tile_stride(int64_t w, int bf) { return bf ? round_up(w, 16) : w; }

#if defined(__AVX__)
/* Stores batch columns j0 .. j0 + 7 of row i of a tile: float32, or bfloat16 (BF). */
static inline __attribute__((always_inline)) void tile_store8(const int BF, void *tile,
                                                              int64_t stride, int64_t i, int j0,
                                                              __m256 v) {
#if SL_BF16_TILES
  if (BF) {
    bf16_store8((uint16_t *)tile + i * stride, j0, v);
    return;
  }
#endif
  _mm256_store_ps((float *)tile + i * stride + j0, v);
}
#endif

/* Stores batch column j of row i of a tile: float32, or bfloat16 (BF). */
static inline __attribute__((always_inline)) void tile_put(const int BF, void *tile,
                                                           int64_t stride, int64_t i, int j,
                                                           float v) {
#if SL_BF16_TILES
  if (BF) {
    ((uint16_t *)tile)[i * stride + bf16_slot(j)] = bf16_round(v);
    return;
  }
#endif
  ((float *)tile)[i * stride + j] = v;
}

/*
 * Feature-major tile: dst[i][j] = src[b0 + j][i] for i in [i0, i1), j < bt (rows of src have
 * length n); columns bt..w-1 are zeroed (in bfloat16 with BF, up to the row stride). w is a
 * multiple of 8 and dst is 32-byte aligned.
 */
static inline __attribute__((always_inline)) void to_feature_major(
    const int BF, const float *src, int64_t n, int64_t b0, int bt, int w, void *dst, int64_t i0,
    int64_t i1, double *sums) {
  const int64_t stride = tile_stride(w, BF);
  int64_t i = i0;
#if defined(__AVX__)
  const int bt8 = bt / 8 * 8;
  for (; i + 8 <= i1; i += 8) {
    /* Up to 64 source rows are read in parallel, more streams than the hardware prefetcher
     * tracks: fetch each row's line 4 lines ahead explicitly. */
    if (((i - i0) & 15) == 0 && i + 64 < n)
      for (int j = 0; j < bt; j++) __builtin_prefetch(src + (b0 + j) * n + i + 64);
    __m256 sum = _mm256_setzero_ps(); /* the eight features' sums, batch row by batch row */
    for (int j0 = 0; j0 < bt8; j0 += 8) {
      __m256 r[8];
      for (int jj = 0; jj < 8; jj++) {
        r[jj] = _mm256_loadu_ps(src + (b0 + j0 + jj) * n + i);
        if (sums) sum = _mm256_add_ps(sum, r[jj]);
      }
      transpose8(r);
      for (int ii = 0; ii < 8; ii++) tile_store8(BF, dst, stride, i + ii, j0, r[ii]);
    }
    float part[8];
    _mm256_storeu_ps(part, sum);
    for (int ii = 0; ii < 8; ii++) {
      for (int j = bt8; j < stride; j++) {
        const float v = j < bt ? src[(b0 + j) * n + i + ii] : 0.0f;
        if (j < bt) part[ii] += v;
        tile_put(BF, dst, stride, i + ii, j, v);
      }
      if (sums) add_tile_sum(sums, i + ii, b0, part[ii]);
    }
  }
#endif
  for (; i < i1; i++) {
    float part = 0.0f;
    for (int j = 0; j < stride; j++) {
      const float v = j < bt ? src[(b0 + j) * n + i] : 0.0f;
      if (j < bt) part += v;
      tile_put(BF, dst, stride, i, j, v);
    }
    if (sums) add_tile_sum(sums, i, b0, part);
  }
}

/* The feature-major tile of a whole operand, split across the threads of a parallel region. */
static void to_feature_major_omp(const float *src, int64_t n, int64_t b0, int bt, int w,
                                 void *dst, int bf, double *sums) {
  const int64_t blocks = (n + 255) / 256;
#pragma omp for schedule(static) nowait
  for (int64_t blk = 0; blk < blocks; blk++) {
    const int64_t i0 = blk * 256, i1 = min64(blk * 256 + 256, n);
    if (SL_BF16_TILES && bf)
      to_feature_major(1, src, n, b0, bt, w, dst, i0, i1, sums);
    else
      to_feature_major(0, src, n, b0, bt, w, dst, i0, i1, sums);
  }
}

/*
 * The tile of an operand that is already feature-major (n rows of ld floats, one per feature):
 * dst[i][j] = src[i * ld + b0 + j] for j < bt, 0 for bt <= j < w. A copy, not a transpose. Even
 * an operand that is already one aligned tile is copied: the scratch is on 2 MiB pages, and
 * gathering rows from a 12.8 MB panel on 4 KiB pages (where JS arrays live) was slower than the
 * copy (50000^2 at batch 64: 10.3-11.7 ms forward in place vs 9.7-11.0 with the copy).
 */
static void copy_feature_major_omp(const float *src, int64_t n, int64_t ld, int64_t b0, int bt,
                                   int w, float *dst, double *sums) {
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < n; i++) {
    float *d = dst + i * w;
    memcpy(d, src + i * ld + b0, (size_t)bt * sizeof(float));
    for (int j = bt; j < w; j++) d[j] = 0.0f;
    if (sums) add_tile_sum(sums, i, b0, row_sum(d, bt));
  }
}

/*
 * The start of every tile of a batched kernel, called inside its parallel region: the
 * feature-major tile of `src` (batch-major rows of length n when fm_ld is 0, else already
 * feature-major with rows of fm_ld floats; the tile in bfloat16 with bf) and, on the first tile
 * only, the index check of every chunk (check_chunk: it also gathers the values into pattern
 * order when valsT is given), the smallest bad entry merged into the shared *first_bad. Ends on a
 * barrier, so the tile and *first_bad are complete for every thread.
 */
static void tile_and_check(const float *src, int64_t n, int64_t fm_ld, int64_t b0, int bt, int w,
                           void *srcT, int bf, int64_t nnz, const int32_t *idx, uint32_t bound,
                           const int32_t *perm, uint32_t n_vals, const float *vals, float *valsT,
                           double *sums, int64_t *first_bad) {
  if (fm_ld == 0)
    to_feature_major_omp(src, n, b0, bt, w, srcT, bf, sums);
#if SL_BF16_TILES
  else if (bf)
    copy_feature_major_bf16_omp(src, n, fm_ld, b0, bt, w, srcT, sums);
#endif
  else
    copy_feature_major_omp(src, n, fm_ld, b0, bt, w, srcT, sums);
  if (b0 == 0) {
    const int64_t n_chunks = (nnz + VALIDATE_CHUNK - 1) / VALIDATE_CHUNK;
    int64_t mine = NO_BAD;
#pragma omp for schedule(static) nowait
    for (int64_t ch = 0; ch < n_chunks; ch++) {
      const int64_t b = check_chunk(ch, nnz, idx, bound, perm, n_vals, vals, valsT);
      if (b >= 0 && b < mine) mine = b;
    }
#pragma omp critical(sl_first_bad)
    if (mine < *first_bad) *first_bad = mine;
  }
#pragma omp barrier
}

/*
 * Writes buf[ii][j] (ii < rows, j < bt; rows of buf are TILE_MAX floats) to
 * dst[(b0 + j) * ld + o0 + ii]: eight output rows at a time become eight contiguous floats in
 * each batch row.
 */
static inline void store_rows_batch_major(float buf[8][TILE_MAX], int rows, int64_t o0,
                                          float *dst, int64_t ld, int64_t b0, int bt) {
  int j = 0;
#if defined(__AVX__)
  if (rows == 8) {
    for (; j + 8 <= bt; j += 8) {
      __m256 r[8];
      for (int ii = 0; ii < 8; ii++) r[ii] = _mm256_load_ps(&buf[ii][j]);
      transpose8(r);
      for (int jj = 0; jj < 8; jj++) _mm256_storeu_ps(dst + (b0 + j + jj) * ld + o0, r[jj]);
    }
  }
#endif
  for (; j < bt; j++)
    for (int ii = 0; ii < rows; ii++) dst[(b0 + j) * ld + o0 + ii] = buf[ii][j];
}

/* The transpose of store_rows_batch_major: buf[ii][j] = src[(b0 + j) * ld + o0 + ii] for
 * ii < rows, j < bt, and 0 for bt <= j < w. */
static inline void load_rows_batch_major(float buf[8][TILE_MAX], int rows, int64_t o0,
                                         const float *src, int64_t ld, int64_t b0, int bt,
                                         int w) {
  int j = 0;
#if defined(__AVX__)
  if (rows == 8) {
    for (; j + 8 <= bt; j += 8) {
      __m256 r[8];
      for (int jj = 0; jj < 8; jj++) r[jj] = _mm256_loadu_ps(src + (b0 + j + jj) * ld + o0);
      transpose8(r);
      for (int ii = 0; ii < 8; ii++) _mm256_store_ps(&buf[ii][j], r[ii]);
    }
  }
#endif
  for (; j < w; j++)
    for (int ii = 0; ii < rows; ii++) buf[ii][j] = j < bt ? src[(b0 + j) * ld + o0 + ii] : 0.0f;
}

/* store_rows_batch_major, or with fm for a feature-major dst (rows of ld floats, one per
 * feature): dst[(o0 + ii) * ld + b0 + j] = buf[ii][j]. */
static inline void store_rows(float buf[8][TILE_MAX], int rows, int64_t o0, float *dst,
                              int64_t ld, int64_t b0, int bt, int fm) {
  if (!fm) {
    store_rows_batch_major(buf, rows, o0, dst, ld, b0, bt);
    return;
  }
  for (int ii = 0; ii < rows; ii++)
    memcpy(dst + (o0 + ii) * ld + b0, buf[ii], (size_t)bt * sizeof(float));
}

/* The transpose of store_rows: buf[ii][j] from src, 0 for bt <= j < w. */
static inline void load_rows(float buf[8][TILE_MAX], int rows, int64_t o0, const float *src,
                             int64_t ld, int64_t b0, int bt, int w, int fm) {
  if (!fm) {
    load_rows_batch_major(buf, rows, o0, src, ld, b0, bt, w);
    return;
  }
  for (int ii = 0; ii < rows; ii++) {
    memcpy(buf[ii], src + (o0 + ii) * ld + b0, (size_t)bt * sizeof(float));
    for (int j = bt; j < w; j++) buf[ii][j] = 0.0f;
  }
}

/* ------------------------------------------------------------- the gather-FMA kernel ---- */

/* acc += val * in[idx[k]][:], prefetching the row of entry kp (rows are gathered at random). */
/*
 * c + a * b, fused. Written out because -ffp-contract=fast leaves the choice to the compiler,
 * which fused some of these and not others (the narrowest forward tile: one accumulator set
 * multiplied and added, the other fused): with every one explicit, a kernel's arithmetic no
 * longer depends on how it was inlined, and the bfloat16 kernels are the float32 ones.
 */
static inline __attribute__((always_inline)) v8f fma8(v8f a, v8f b, v8f c) {
#if defined(__FMA__)
  return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

/* Vector j (batch columns 8j .. 8j + 7) of a tile row: float32, or bfloat16 widened (BF). */
static inline __attribute__((always_inline)) v8f tile_load8(const int BF, const void *row, int j) {
#if SL_BF16_TILES
  if (BF) return bf16_load8((const uint16_t *)row, j);
#endif
  return ((const v8f *)row)[j];
}

/* Row r of a tile of 8 * NV batch columns: float32, or bfloat16 (BF, tile_stride values). */
static inline __attribute__((always_inline)) const char *tile_row(const int NV, const int BF,
                                                                 const void *tile, int64_t r) {
  return (const char *)tile + r * (BF ? 32 * ((NV + 1) / 2) : 32 * NV);
}

/* Prefetches row r of such a tile (into L1, SL_PREFETCH_LOCALITY): rows are gathered at random. */
static inline __attribute__((always_inline)) void prefetch_tile_row(const int NV, const int BF,
                                                                   const void *tile, int64_t r) {
  const char *row = tile_row(NV, BF, tile, r);
  for (int l = 0; l < NV * (BF ? 16 : 32); l += 64)
    __builtin_prefetch(row + l, 0, SL_PREFETCH_LOCALITY);
}

static inline __attribute__((always_inline)) void gather_fma_entry(
    const int NV, const int BF, v8f *acc, int64_t k, int64_t kp, int64_t kv, const int32_t *idx,
    const int32_t *perm, const float *vals, const void *in) {
  prefetch_tile_row(NV, BF, in, idx[kp]);
  if (perm) __builtin_prefetch(vals + perm[kv]);
  const float v = perm ? vals[perm[k]] : vals[k];
  const char *x = tile_row(NV, BF, in, idx[k]);
  const v8f vv = (v8f){0} + v;
  for (int j = 0; j < NV; j++) acc[j] = fma8(vv, tile_load8(BF, x, j), acc[j]);
}

#if defined(__AVX512F__)
/* 512-bit register m (0..3) of a 64-column tile row in the bfloat16 tiles' lane order: batch
 * columns 32(m/2) + 8(m%2) + 0..7 in the low half, the same + 16 in the high half (what one
 * 512-bit load and a per-lane unpack of a bfloat16 row give; a float32 row is loaded in that
 * order too, so sums across lanes group the same columns in both precisions). */
static inline __attribute__((always_inline)) __m512 tile_load16(const int BF, const char *row,
                                                                int m) {
#if SL_BF16_TILES
  if (BF) {
    const __m512i raw = _mm512_load_si512((const void *)(row + 64 * (m / 2)));
    const __m512i z = _mm512_setzero_si512();
    return _mm512_castsi512_ps((m & 1) ? _mm512_unpackhi_epi16(z, raw)
                                       : _mm512_unpacklo_epi16(z, raw));
  }
#endif
  const double *f = (const double *)row + 16 * (m / 2) + 4 * (m & 1);
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_load_pd(f)), _mm256_load_pd(f + 8), 1));
}

/* gather_fma_entry for full 64-column tiles in 512-bit registers. acc[m] holds, as its low and
 * high 256-bit halves, the float32 tile's vectors 2m and 2m + 1, or for a bfloat16 tile
 * (unpacked per 128-bit lane, as bf16_load8) vectors 4(m/2) + m%2 and 4(m/2) + m%2 + 2. */
static inline __attribute__((always_inline)) void gather_fma_entry16(
    const int BF, __m512 *acc, int64_t k, int64_t kp, int64_t kv, const int32_t *idx,
    const int32_t *perm, const float *vals, const void *in) {
  prefetch_tile_row(8, BF, in, idx[kp]);
  if (perm) __builtin_prefetch(vals + perm[kv]);
  const float v = perm ? vals[perm[k]] : vals[k];
  const char *x = tile_row(8, BF, in, idx[k]);
  const __m512 vv = _mm512_set1_ps(0.0f + v);
  if (BF) {
    const __m512i z = _mm512_setzero_si512();
    for (int m = 0; m < 2; m++) {
      const __m512i raw = _mm512_load_si512((const void *)(x + 64 * m));
      acc[2 * m] = _mm512_fmadd_ps(vv, _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, raw)),
                                   acc[2 * m]);
      acc[2 * m + 1] = _mm512_fmadd_ps(
          vv, _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, raw)), acc[2 * m + 1]);
    }
  } else {
    for (int m = 0; m < 4; m++)
      acc[m] = _mm512_fmadd_ps(vv, _mm512_load_ps((const float *)x + 16 * m), acc[m]);
  }
}

/* Vector j (8 batch columns) of the tile row held in 512-bit accumulators (as above). */
static inline __attribute__((always_inline)) v8f acc16_part(const int BF, const __m512 *acc,
                                                            int j) {
  const int m = BF ? 2 * (j / 4) + (j & 1) : j / 2;
  const int hi = BF ? (j & 2) != 0 : (j & 1);
  const __m512d a = _mm512_castps_pd(acc[m]);
  return (v8f)_mm256_castpd_ps(hi ? _mm512_extractf64x4_pd(a, 1) : _mm512_castpd512_pd256(a));
}
#endif

/*
 * For rows r in [r0, r1) of a compressed pattern (ptr, idx; indices already validated):
 * out[(b0 + j) * ld + r] (fm: out[r * ld + b0 + j]) = init(r) + sum over k in row r of
 * val(k) * in[idx[k]][j], j < bt,
 * where val(k) = vals[k] (perm null) or vals[perm[k]] and rows of `in` are w = 8 * NV floats.
 * NV is a compile-time constant at every call site, so the accumulators live in registers.
 * Narrow tiles (NV <= 4) alternate two accumulator sets so that consecutive FMAs do not wait on
 * each other's latency; full tiles (NV = 8) accumulate in four 512-bit registers where the
 * machine has AVX-512 (gather_fma_entry16; the same sums, in the same order).
 */
static inline __attribute__((always_inline)) void gather_fma_rows(
    const int NV, const int BF, int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
    const int32_t *perm, const float *vals, const float *bias, const void *in, float *out,
    int64_t ld, int64_t b0, int bt, int fm) {
  const int64_t k_last = (int64_t)ptr[r1] - 1; /* prefetch targets stay inside this range */
  float buf[8][TILE_MAX] __attribute__((aligned(32)));
  int64_t g0 = r0;
  for (int64_t r = r0; r < r1; r++) {
    v8f acc[8], acc2[8];
    const float b = bias ? bias[r] : 0.0f;
    for (int j = 0; j < NV; j++) {
      acc[j] = (v8f){0} + b;
      acc2[j] = (v8f){0};
    }
    int64_t k = ptr[r];
    const int64_t k1 = ptr[r + 1];
#if defined(__AVX512F__)
    if (NV == 8) {
      __m512 a16[4];
      for (int m = 0; m < 4; m++) a16[m] = _mm512_set1_ps(0.0f + b);
      for (; k < k1; k++)
        gather_fma_entry16(BF, a16, k, min64(k + SL_PREFETCH, k_last),
                           min64(k + SL_PREFETCH_VALUES, k_last), idx, perm, vals, in);
      for (int j = 0; j < 8; j++) acc[j] = acc16_part(BF, a16, j);
    }
#endif
    if (NV <= 4) {
      for (; k + 1 < k1; k += 2) {
        const int64_t kp = min64(k + SL_PREFETCH, k_last);
        const int64_t kv = min64(k + SL_PREFETCH_VALUES, k_last);
        gather_fma_entry(NV, BF, acc, k, kp, kv, idx, perm, vals, in);
        gather_fma_entry(NV, BF, acc2, k + 1, min64(kp + 1, k_last), min64(kv + 1, k_last), idx,
                         perm, vals, in);
      }
    }
    for (; k < k1; k++)
      gather_fma_entry(NV, BF, acc, k, min64(k + SL_PREFETCH, k_last),
                       min64(k + SL_PREFETCH_VALUES, k_last), idx, perm, vals, in);
    v8f *o = (v8f *)buf[r - g0];
    for (int j = 0; j < NV; j++) o[j] = NV <= 4 ? acc[j] + acc2[j] : acc[j];
    if (r - g0 == 7 || r + 1 == r1) {
      store_rows(buf, (int)(r - g0 + 1), g0, out, ld, b0, bt, fm);
      g0 = r + 1;
    }
  }
}

static void gather_fma_dispatch(int nv, int bf, int64_t r0, int64_t r1, const int32_t *ptr,
                                const int32_t *idx, const int32_t *perm, const float *vals,
                                const float *bias, const void *in, float *out, int64_t ld,
                                int64_t b0, int bt, int fm) {
#define SL_CASE(N, B)                                                                     \
  case 2 * N + B:                                                                         \
    gather_fma_rows(N, B, r0, r1, ptr, idx, perm, vals, bias, in, out, ld, b0, bt, fm);   \
    break;
  switch (2 * nv + bf) { SL_TILE_CASES(SL_CASE) }
#undef SL_CASE
}

/*
 * out[batch, n_rows] (row-major, batch > 1) = for every row r of the pattern (ptr over n_rows
 * rows, idx into n_idx): init(r) + sum_k val(k) * in[:, idx[k]]. Shared by the forward (CSR,
 * values direct, bias) and the input gradient (CSC; vals already in CSC order, or through perm
 * when the values are small enough to stay in cache). Validates idx (and perm) first and
 * writes nothing when one is out of range: *bad is then its position, else -1. With fm, `in`
 * and `out` are feature-major instead (in[n_idx, batch], out[n_rows, batch]).
 */
static sl_status tiled_gather_matmul(int32_t batch, int32_t n_idx, int32_t n_rows,
                                     const int32_t *ptr, const int32_t *idx, const int32_t *perm,
                                     const float *vals, int64_t n_vals, const float *bias,
                                     const float *in, float *out, int fm, int64_t *bad) {
  const int threads = sl_threads();
  const int64_t nnz = ptr[n_rows];
  const int bf = bf16_tiles(batch);
  const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : round_up(batch, 8);
  const int64_t fm_ld = fm ? batch : 0;
  void *inT = sl_scratch_get(sl_mul_size(tile_stride(first_w, bf) * (bf ? 2 : 4), n_idx));
  if (inT == NULL) return SL_E_OUT_OF_MEMORY;
  /* Values read through perm that do not stay in cache are gathered into pattern order. */
  float *valsT = NULL;
  if (perm != NULL && n_vals * (int64_t)sizeof(float) > VALUES_IN_CACHE) {
    valsT = sl_scratch_get(n_vals * (int64_t)sizeof(float));
    if (valsT == NULL) {
      sl_scratch_put(inT);
      return SL_E_OUT_OF_MEMORY;
    }
  }
  int64_t bounds[MAX_PARTS + 1];
  const int parts =
      choose_parts(threads, nnz * first_w + ((int64_t)n_idx + n_rows) * first_w,
                   SERIAL_WORK_BATCHED);
  partition_rows(ptr, n_rows, first_w / 8, parts, bounds);
  int64_t first_bad = NO_BAD;
  for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
    const int bt = (int)min64(TILE_MAX, batch - b0);
    const int w = (int)round_up(bt, 8);
#pragma omp parallel num_threads(threads) if (parts > 1)
    {
      /* With valsT: the values in pattern order, once, in a prefetched pass instead of a
       * random read inside the FMA loop (where its misses stall the row gathers behind). */
      tile_and_check(in, n_idx, fm_ld, b0, bt, w, inT, bf, nnz, idx, (uint32_t)n_idx, perm,
                     (uint32_t)n_vals, vals, valsT, NULL, &first_bad);
      if (first_bad == NO_BAD) {
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < parts; p++)
          gather_fma_dispatch(w / 8, bf, bounds[p], bounds[p + 1], ptr, idx,
                              valsT != NULL ? NULL : perm, valsT != NULL ? valsT : vals, bias,
                              inT, out, fm ? batch : n_rows, b0, bt, fm);
      }
    }
  }
  sl_scratch_put(valsT);
  sl_scratch_put(inT);
  *bad = first_bad == NO_BAD ? -1 : first_bad;
  return SL_OK;
}

/* ------------------------------------------------------------------- batch-1 streaming ---- */

/*
 * Batch 1 forward: out[r] = bias[r] + sum_k vals[k] * in[idx[k]] for r in [r0, r1), one
 * streaming pass with gathers from `in` (which stays in cache). Out-of-range entries are
 * skipped and the first one of the range is returned (else -1).
 */
static int64_t dot_rows_b1(int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
                           const float *vals, const float *bias, const float *in, int32_t n_in,
                           float *out) {
  int64_t first_bad = -1;
#if defined(__AVX512F__)
  const __m512i in_bound = _mm512_set1_epi32(n_in);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = r0; r < r1; r++) {
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
    __m512 acc0 = zero, acc1 = zero;
    __mmask16 good = 0xFFFF;
    int64_t k = k0;
    for (; k + 32 <= k1; k += 32) {
      __m512i c0 = _mm512_loadu_si512((const void *)(idx + k));
      __m512i c1 = _mm512_loadu_si512((const void *)(idx + k + 16));
      __mmask16 m0 = _mm512_cmplt_epu32_mask(c0, in_bound);
      __mmask16 m1 = _mm512_cmplt_epu32_mask(c1, in_bound);
      good &= m0 & m1;
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(vals + k),
                             _mm512_mask_i32gather_ps(zero, m0, c0, in, 4), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(vals + k + 16),
                             _mm512_mask_i32gather_ps(zero, m1, c1, in, 4), acc1);
    }
    for (; k < k1; k += 16) {
      const __mmask16 tail = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1u);
      __m512i c = _mm512_maskz_loadu_epi32(tail, idx + k);
      __mmask16 m = _mm512_mask_cmplt_epu32_mask(tail, c, in_bound);
      good &= (__mmask16)(m | (__mmask16)~tail);
      acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, vals + k),
                             _mm512_mask_i32gather_ps(zero, m, c, in, 4), acc0);
    }
    if (__builtin_expect(good != 0xFFFF, 0)) {
      int64_t b = first_bad_entry(k0, k1, idx, (uint32_t)n_in, NULL, 0);
      if (first_bad < 0) first_bad = b;
    }
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + (bias ? bias[r] : 0.0f);
  }
#else
  for (int64_t r = r0; r < r1; r++) {
    float acc = 0.0f;
    uint32_t bad = 0;
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
#pragma omp simd reduction(+ : acc) reduction(| : bad)
    for (int64_t k = k0; k < k1; k++) {
      uint32_t c = (uint32_t)idx[k];
      uint32_t is_bad = c >= (uint32_t)n_in;
      bad |= is_bad;
      acc += vals[k] * in[is_bad ? 0 : c] * (is_bad ? 0.0f : 1.0f);
    }
    if (__builtin_expect(bad != 0, 0) && first_bad < 0)
      first_bad = first_bad_entry(k0, k1, idx, (uint32_t)n_in, NULL, 0);
    out[r] = acc + (bias ? bias[r] : 0.0f);
  }
#endif
  return first_bad;
}

/*
 * Batch 1 input gradient from the CSC view: out[c] = sum_k vals[perm[k]] * dy[row_idx[k]] over
 * the entries of column c, for c in [c0, c1). Returns 1 when an index was out of range (the
 * entry is skipped). The gather from vals is random over all of it: this is the slow part of
 * the CSC formulation (sl_spmm_bwd_input_csr avoids it).
 */
static int dot_cols_b1_perm(int64_t c0, int64_t c1, const int32_t *col_ptr,
                            const int32_t *row_idx, const int32_t *perm, const float *vals,
                            uint32_t n_vals, const float *dy, int32_t n_out, float *out) {
  int any_bad = 0;
#if defined(__AVX512F__)
  const __m512i r_bound = _mm512_set1_epi32(n_out);
  const __m512i p_bound = _mm512_set1_epi32((int32_t)n_vals);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t c = c0; c < c1; c++) {
    const int64_t k0 = col_ptr[c], k1 = col_ptr[c + 1];
    __m512 acc = zero;
    for (int64_t k = k0; k < k1; k += 16) {
      const __mmask16 tail = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1u);
      __m512i p = _mm512_maskz_loadu_epi32(tail, perm + k);
      __m512i r = _mm512_maskz_loadu_epi32(tail, row_idx + k);
      __mmask16 m = _mm512_mask_cmplt_epu32_mask(tail, p, p_bound);
      m = _mm512_mask_cmplt_epu32_mask(m, r, r_bound);
      any_bad |= m != tail;
      __m512 v = _mm512_mask_i32gather_ps(zero, m, p, vals, 4);
      __m512 d = _mm512_mask_i32gather_ps(zero, m, r, dy, 4);
      acc = _mm512_fmadd_ps(v, d, acc);
    }
    out[c] = _mm512_reduce_add_ps(acc);
  }
#else
  for (int64_t c = c0; c < c1; c++) {
    float acc = 0.0f;
    for (int64_t k = col_ptr[c]; k < col_ptr[c + 1]; k++) {
      uint32_t p = (uint32_t)perm[k], r = (uint32_t)row_idx[k];
      if (p >= n_vals || r >= (uint32_t)n_out) {
        any_bad = 1;
        continue;
      }
      acc += vals[p] * dy[r];
    }
    out[c] = acc;
  }
#endif
  return any_bad;
}

/* Batch 1 SDDMM: dw[k] = dy[r] * x[idx[k]]; returns the first bad entry of the range or -1. */
static int64_t sddmm_rows_b1(int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
                             const float *x, int32_t n_in, const float *dy, float *dw) {
  int64_t first_bad = -1;
#if defined(__AVX512F__)
  const __m512i bound = _mm512_set1_epi32(n_in);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = r0; r < r1; r++) {
    const __m512 g = _mm512_set1_ps(dy[r]);
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
    __mmask16 good = 0xFFFF;
    for (int64_t k = k0; k < k1; k += 16) {
      const __mmask16 tail = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1u);
      __m512i c = _mm512_maskz_loadu_epi32(tail, idx + k);
      __mmask16 m = _mm512_mask_cmplt_epu32_mask(tail, c, bound);
      good &= (__mmask16)(m | (__mmask16)~tail);
      __m512 xv = _mm512_mask_i32gather_ps(zero, m, c, x, 4);
      _mm512_mask_storeu_ps(dw + k, tail, _mm512_mul_ps(g, xv));
    }
    if (__builtin_expect(good != 0xFFFF, 0) && first_bad < 0)
      first_bad = first_bad_entry(k0, k1, idx, (uint32_t)n_in, NULL, 0);
  }
#else
  for (int64_t r = r0; r < r1; r++) {
    const float g = dy[r];
    const int64_t k0 = ptr[r], k1 = ptr[r + 1];
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t k = k0; k < k1; k++) {
      uint32_t c = (uint32_t)idx[k];
      uint32_t is_bad = c >= (uint32_t)n_in;
      bad |= is_bad;
      dw[k] = g * x[is_bad ? 0 : c];
    }
    if (__builtin_expect(bad != 0, 0) && first_bad < 0)
      first_bad = first_bad_entry(k0, k1, idx, (uint32_t)n_in, NULL, 0);
  }
#endif
  return first_bad;
}

/* ------------------------------------------------------------------------ forward ---- */

/* The forward at batch 1, streaming rows (indices checked in the loop, y written only when all
 * are in range): *bad is the first bad entry, else -1. */
static sl_status fwd_b1(int32_t n_in, int32_t n_out, int64_t nnz, const int32_t *row_ptr,
                        const int32_t *col_idx, const float *values, const float *bias,
                        const float *x, float *y, int64_t *bad) {
  float *tmp = sl_scratch_get((int64_t)n_out * (int64_t)sizeof(float));
  if (tmp == NULL) return SL_E_OUT_OF_MEMORY;
  const int threads = sl_threads();
  int64_t bounds[MAX_PARTS + 1];
  const int parts = choose_parts(threads, nnz + n_out, SERIAL_WORK_B1);
  partition_rows(row_ptr, n_out, 1, parts, bounds);
  int64_t first_bad = NO_BAD;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (parts > 1) \
    reduction(min : first_bad)
  for (int p = 0; p < parts; p++) {
    int64_t b = dot_rows_b1(bounds[p], bounds[p + 1], row_ptr, col_idx, values, bias, x, n_in,
                            tmp);
    if (b >= 0 && b < first_bad) first_bad = b;
  }
  if (first_bad == NO_BAD) memcpy(y, tmp, (size_t)n_out * sizeof(float));
  *bad = first_bad == NO_BAD ? -1 : first_bad;
  sl_scratch_put(tmp);
  return SL_OK;
}

/*
 * sl_spmm_fwd (fm 0), sl_spmm_fwd_fm (fm 1: at batch 1 both layouts are the same) and, with
 * perm (csr_to_csc), sl_spmm_fwd_permuted: connection k's value is values[perm[k]] (arguments
 * validated by the caller).
 */
static sl_status spmm_fwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                          int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                          const int32_t *perm, const float *values, const float *bias,
                          const float *x, float *y, int fm) {
  sl_status st = sl_check_offsets(fn, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (batch == 0 || n_out == 0) return SL_OK;
  int64_t bad = -1;
  if (n_in == 0 && nnz > 0) {
    bad = 0; /* every index is out of range, and x may be null */
  } else if (batch == 1) {
    /* Values through perm: validated, then gathered into CSR order, so that the sums are the
     * streaming kernel's (bit for bit sl_spmm_fwd's). */
    float *valsR = NULL;
    if (perm != NULL) bad = first_bad_entry(0, nnz, col_idx, (uint32_t)n_in, perm, (uint32_t)nnz);
    if (perm != NULL && bad < 0) {
      valsR = sl_scratch_get(nnz * (int64_t)sizeof(float));
      if (valsR == NULL) return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch");
#pragma omp parallel for num_threads(sl_threads()) if (nnz > SERIAL_WORK_B1) schedule(static)
      for (int64_t k = 0; k < nnz; k++) valsR[k] = values[perm[k]];
    }
    if (bad < 0)
      st = fwd_b1(n_in, n_out, nnz, row_ptr, col_idx, valsR != NULL ? valsR : values, bias, x, y,
                  &bad);
    sl_scratch_put(valsR);
    if (st != SL_OK) return sl_fail(st, fn, "cannot allocate scratch");
  } else {
    st = tiled_gather_matmul(batch, n_in, n_out, row_ptr, col_idx, perm, values, nnz, bias, x, y,
                             fm, &bad);
    if (st != SL_OK)
      return sl_fail(st, fn, "cannot allocate feature-major scratch for batch %d", batch);
  }
  if (bad >= 0 && perm != NULL && (uint32_t)col_idx[bad] < (uint32_t)n_in)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "csr_to_csc[%lld] = %d is outside [0, %lld)",
                   (long long)bad, perm[bad], (long long)nnz);
  if (bad >= 0)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %d)",
                   (long long)bad, col_idx[bad], n_in);
  return SL_OK;
}

sl_status sl_spmm_fwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                      const int32_t *row_ptr, const int32_t *col_idx, const float *values,
                      const float *bias, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values,
                                   x, y, 0));
  return spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, NULL, values, bias, x, y,
                  0);
}

sl_status sl_spmm_fwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                         const int32_t *row_ptr, const int32_t *col_idx, const float *values,
                         const float *bias, const float *xT, float *yT) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values,
                                   xT, yT, 1));
  return spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, NULL, values, bias, xT,
                  yT, 1);
}

sl_status sl_spmm_fwd_permuted(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                               const int32_t *row_ptr, const int32_t *col_idx,
                               const int32_t *csr_to_csc, const float *values,
                               const float *bias, const float *x, float *y) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_fwd_permuted(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx,
                                            csr_to_csc, values, x, y));
  return spmm_fwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, csr_to_csc, values, bias,
                  x, y, 0);
}

/* ------------------------------------------------------------------ input gradient ---- */

sl_status sl_spmm_bwd_input(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                            const int32_t *col_ptr, const int32_t *row_idx,
                            const int32_t *csc_to_csr, const float *values, const float *dy,
                            float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_input(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx,
                                         csc_to_csr, values, dy, dx));
  sl_status st = sl_check_offsets(__func__, "col_ptr", col_ptr, n_in, nnz);
  if (st != SL_OK) return st;
  if (batch == 0 || n_in == 0) return SL_OK;
  const int threads = sl_threads();
  int64_t bad = -1;
  if (n_out == 0 && nnz > 0) {
    bad = 0; /* every row index is out of range, and dy may be null */
  } else if (batch == 1) {
    float *tmp = sl_scratch_get((int64_t)n_in * (int64_t)sizeof(float));
    if (tmp == NULL) return sl_fail(SL_E_OUT_OF_MEMORY, __func__, "cannot allocate scratch");
    int64_t bounds[MAX_PARTS + 1];
    const int parts = choose_parts(threads, nnz + n_in, SERIAL_WORK_B1);
    partition_rows(col_ptr, n_in, 1, parts, bounds);
    int any_bad = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (parts > 1) \
    reduction(| : any_bad)
    for (int part = 0; part < parts; part++)
      any_bad |= dot_cols_b1_perm(bounds[part], bounds[part + 1], col_ptr, row_idx, csc_to_csr,
                                  values, (uint32_t)nnz, dy, n_out, tmp);
    if (any_bad)
      bad = first_bad_entry(0, nnz, row_idx, (uint32_t)n_out, csc_to_csr, (uint32_t)nnz);
    else
      memcpy(dx, tmp, (size_t)n_in * sizeof(float));
    sl_scratch_put(tmp);
  } else {
    st = tiled_gather_matmul(batch, n_out, n_in, col_ptr, row_idx, csc_to_csr, values, nnz, NULL,
                             dy, dx, 0, &bad);
    if (st != SL_OK)
      return sl_fail(st, __func__, "cannot allocate feature-major scratch for batch %d", batch);
  }
  if (bad >= 0) {
    if ((uint32_t)row_idx[bad] >= (uint32_t)n_out)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__, "row_idx[%lld] = %d is outside [0, %d)",
                     (long long)bad, row_idx[bad], n_out);
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, __func__,
                   "csc_to_csr[%lld] = %d is outside [0, %lld)", (long long)bad, csc_to_csr[bad],
                   (long long)nnz);
  }
  return SL_OK;
}

/*
 * outT[idx[k]][:] += vals[k] * dyT[r][:] for every row r and its entries k in
 * [bounds[r * stride], bounds[r * stride + 1]) (this thread's slice of the row). Rows of outT
 * and dyT are w = 8 * NV floats. The next row's first entries are prefetched while this row
 * runs (a slice holds only a few entries per row).
 */
static inline __attribute__((always_inline)) void scatter_fma_rows(
    const int NV, int64_t n_rows, const int32_t *bounds, int64_t stride, const int32_t *idx,
    const float *vals, const float *dyT, float *outT) {
  const int64_t w = 8 * NV;
  for (int64_t r = 0; r < n_rows; r++) {
    const int64_t k0 = bounds[r * stride], k1 = bounds[r * stride + 1];
    if (r + 1 < n_rows) {
      const int64_t n0 = bounds[(r + 1) * stride], n1 = bounds[(r + 1) * stride + 1];
      for (int64_t k = n0; k < n1 && k < n0 + SL_PREFETCH / 2; k++) {
        const char *pf = (const char *)(outT + (int64_t)idx[k] * w);
        for (int l = 0; l < NV * 32; l += 64) __builtin_prefetch(pf + l, 1, SL_PREFETCH_LOCALITY);
      }
    }
    if (k0 == k1) continue;
    v8f g[8];
    for (int j = 0; j < NV; j++) g[j] = ((const v8f *)(dyT + r * w))[j];
    for (int64_t k = k0; k < k1; k++) {
      if (k + SL_PREFETCH / 2 < k1) {
        const char *pf = (const char *)(outT + (int64_t)idx[k + SL_PREFETCH / 2] * w);
        for (int l = 0; l < NV * 32; l += 64) __builtin_prefetch(pf + l, 1, SL_PREFETCH_LOCALITY);
      }
      v8f *o = (v8f *)(outT + (int64_t)idx[k] * w);
      const v8f v = (v8f){0} + vals[k];
      for (int j = 0; j < NV; j++) o[j] += v * g[j];
    }
  }
}

static void scatter_fma_dispatch(int nv, int64_t n_rows, const int32_t *bounds, int64_t stride,
                                 const int32_t *idx, const float *vals, const float *dyT,
                                 float *outT) {
#define SL_CASE(N)                                                            \
  case N:                                                                     \
    scatter_fma_rows(N, n_rows, bounds, stride, idx, vals, dyT, outT);        \
    break;
  switch (nv) {
    SL_CASE(1) SL_CASE(2) SL_CASE(3) SL_CASE(4) SL_CASE(5) SL_CASE(6) SL_CASE(7) SL_CASE(8)
  }
#undef SL_CASE
}

/*
 * The input gradient from the CSR pattern (sl_spmm_bwd_input_csr), its arguments validated;
 * fn names the caller in errors. With x and dw (batch 1 only) the same pass also writes the
 * weight gradient dw[k] = dy[r] * x[col_idx[k]], as sl_sddmm does, so the pattern is read once
 * for both gradients (sl_spmm_bwd_csr); a bad column leaves its dw entry unwritten.
 */
static sl_status bwd_input_csr(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                               int64_t nnz, const int32_t *row_ptr, const int32_t *col_idx,
                               const float *values, const float *dy, float *dx, const float *x,
                               float *dw) {
  sl_status st = sl_check_offsets(fn, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (batch == 0 || n_in == 0) {
    if (nnz > 0 && n_in == 0)
      return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[0] = %d is outside [0, 0)",
                     col_idx[0]);
    return SL_OK;
  }
  const int threads = sl_threads();
  int64_t first_bad = NO_BAD;
  int unsorted = 0;
  int64_t bounds[MAX_PARTS + 1];

  if (batch == 1) {
    /* Per-thread copies of dx (cache-resident), summed at the end in thread order. One part
     * per thread, handed out statically: each copy then sums the same rows in every call, so
     * dx depends on the thread count only (with several parts per thread and a dynamic
     * schedule, which copy took which part, and so the grouping of the float sums, varied
     * from run to run). */
    const int parts = choose_parts(threads, nnz + n_out, SERIAL_WORK_B1);
    const int team = parts < threads ? parts : threads;
    float *priv = sl_scratch_get(sl_mul_size((int64_t)team * (int64_t)sizeof(float), n_in));
    if (priv == NULL) return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch");
    partition_rows(row_ptr, n_out, 1, team, bounds);
    int used = 1;
#pragma omp parallel num_threads(team) if (team > 1)
    {
#ifdef _OPENMP
      const int t = omp_get_thread_num();
#pragma omp single
      used = omp_get_num_threads();
#else
      const int t = 0;
#endif
      float *mine = priv + (int64_t)t * n_in;
      memset(mine, 0, (size_t)n_in * sizeof(float));
#pragma omp for schedule(static) reduction(min : first_bad)
      for (int p = 0; p < team; p++) {
        for (int64_t r = bounds[p]; r < bounds[p + 1]; r++) {
          const float g = dy[r];
          uint32_t bad = 0;
          /* (GCC unswitches the loop on dw, leaving two loops without that test.) */
          for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; k++) {
            const uint32_t c = (uint32_t)col_idx[k];
            /* GCC compiles a branchless select of index 0 here into a branch anyway: this way
             * a valid entry takes the fall-through path. */
            if (__builtin_expect(c >= (uint32_t)n_in, 0)) {
              bad = 1;
              continue;
            }
            mine[c] += values[k] * g;
            if (dw != NULL) dw[k] = g * x[c];
          }
          if (__builtin_expect(bad != 0, 0)) {
            int64_t b = first_bad_entry(row_ptr[r], row_ptr[r + 1], col_idx, (uint32_t)n_in,
                                        NULL, 0);
            if (b >= 0 && b < first_bad) first_bad = b;
          }
        }
      }
      if (first_bad == NO_BAD) {
#pragma omp for schedule(static)
        for (int64_t c = 0; c < n_in; c++) {
          float sum = priv[c];
          for (int u = 1; u < used; u++) sum += priv[(int64_t)u * n_in + c];
          dx[c] = sum;
        }
      }
    }
    sl_scratch_put(priv);
  } else {
    /* One scratch block: outT[n_in][w] (accumulators), dyT[n_out][w] (dy, feature-major) and
     * the slice bounds of every row, bounds[r][t] for t <= threads. */
    const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : round_up(batch, 8);
    const int64_t work = nnz * first_w + ((int64_t)n_in + n_out) * first_w;
    const int team = work < SERIAL_WORK_BATCHED ? 1 : threads;
    const int64_t floats = first_w * ((int64_t)n_in + n_out);
    float *outT = sl_scratch_get(floats * 4 + (int64_t)n_out * (team + 1) * 4);
    if (outT == NULL)
      return sl_fail(SL_E_OUT_OF_MEMORY, fn,
                     "cannot allocate feature-major scratch for batch %d", batch);
    float *dyT = outT + first_w * n_in;
    int32_t *slice = (int32_t *)(outT + floats);
    const int64_t n_row_blocks = (n_out + 1023) / 1024;
    for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
      const int bt = (int)min64(TILE_MAX, batch - b0);
      const int w = (int)round_up(bt, 8);
#pragma omp parallel num_threads(team)
      {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        /* This thread owns input features [c_lo, c_hi): no two threads touch one outT row. */
        const int32_t c_lo = (int32_t)((int64_t)n_in * t / nt);
        const int32_t c_hi = (int32_t)((int64_t)n_in * (t + 1) / nt);
        memset(outT + (int64_t)c_lo * w, 0, (size_t)(c_hi - c_lo) * (size_t)w * sizeof(float));
        to_feature_major_omp(dy, n_out, b0, bt, w, dyT, 0, NULL);
        if (b0 == 0) {
#pragma omp for schedule(static) reduction(min : first_bad)
          for (int64_t blk = 0; blk < n_row_blocks; blk++) {
            int uns = 0;
            int64_t b = first_bad_sorted(blk * 1024, min64(blk * 1024 + 1024, n_out), row_ptr,
                                         col_idx, (uint32_t)n_in, &uns);
            if (b >= 0 && b < first_bad) first_bad = b;
          }
        }
        if (first_bad == NO_BAD) {
          /* Where each thread's features start in every row (columns are sorted). The barrier
           * at the end of this loop also completes the zeroing and the transpose above. */
#pragma omp for schedule(static)
          for (int64_t r = 0; r < n_out; r++) {
            int32_t *sb = slice + r * (nt + 1);
            sb[0] = row_ptr[r];
            for (int u = 1; u < nt; u++)
              sb[u] = (int32_t)lower_bound_col(col_idx, sb[u - 1], row_ptr[r + 1],
                                               (int32_t)((int64_t)n_in * u / nt));
            sb[nt] = row_ptr[r + 1];
          }
        }
        if (first_bad == NO_BAD) {
          scatter_fma_dispatch(w / 8, n_out, slice + t, nt + 1, col_idx, values, dyT, outT);
#pragma omp barrier
          const int64_t blocks = (n_in + 255) / 256;
#pragma omp for schedule(static)
          for (int64_t blk = 0; blk < blocks; blk++) {
            const int64_t i1 = min64(blk * 256 + 256, n_in);
            float buf[8][TILE_MAX] __attribute__((aligned(32)));
            for (int64_t i = blk * 256; i < i1; i += 8) {
              const int rows = (int)min64(8, i1 - i);
              for (int ii = 0; ii < rows; ii++)
                memcpy(buf[ii], outT + (i + ii) * w, (size_t)w * sizeof(float));
              store_rows_batch_major(buf, rows, i, dx, n_in, b0, bt);
            }
          }
        }
      }
    }
    sl_scratch_put(outT);
    if (first_bad != NO_BAD) first_bad_sorted(0, n_out, row_ptr, col_idx, (uint32_t)n_in, &unsorted);
  }
  if (first_bad != NO_BAD)
    return sl_bad_sorted_column(fn, first_bad, unsorted, col_idx, n_in);
  return SL_OK;
}

sl_status sl_spmm_bwd_input_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                                const int32_t *row_ptr, const int32_t *col_idx,
                                const float *values, const float *dy, float *dx) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_input_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx,
                                             values, dy, dx));
  return bwd_input_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values, dy, dx, NULL,
                       NULL);
}

/* -------------------------------------------------------------------- weight gradient ---- */

/* Horizontal sums of eight vectors: result lane e = sum of the lanes of s[e]. */
static inline v8f hsum8(const v8f s[8]) {
#if defined(__AVX__)
  __m256 t0 = _mm256_hadd_ps((__m256)s[0], (__m256)s[1]);
  __m256 t1 = _mm256_hadd_ps((__m256)s[2], (__m256)s[3]);
  __m256 t2 = _mm256_hadd_ps((__m256)s[4], (__m256)s[5]);
  __m256 t3 = _mm256_hadd_ps((__m256)s[6], (__m256)s[7]);
  __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return (v8f)_mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                            _mm256_permute2f128_ps(u0, u1, 0x31));
#else
  v8f r;
  for (int e = 0; e < 8; e++) {
    float t = 0.0f;
    for (int l = 0; l < 8; l++) t += s[e][l];
    r[e] = t;
  }
  return r;
#endif
}

/* dw[k + e] = (dw[k + e] if accumulate) + the lanes of s[e] summed, e < 8 (hsum8's order). */
static inline __attribute__((always_inline)) void put_dots8(const v8f s[8], float *dw, int64_t k,
                                                           int accumulate) {
  v8f t = hsum8(s);
  if (accumulate) {
    v8f old;
    memcpy(&old, dw + k, sizeof old);
    t += old;
  }
  memcpy(dw + k, &t, sizeof t);
}

/* dw[k] = (dw[k] if accumulate) + the lanes of sv summed (an entry past the last group of 8). */
static inline __attribute__((always_inline)) void put_dot1(v8f sv, float *dw, int64_t k,
                                                          int accumulate) {
  const float t = ((sv[0] + sv[4]) + (sv[1] + sv[5])) + ((sv[2] + sv[6]) + (sv[3] + sv[7]));
  dw[k] = accumulate ? dw[k] + t : t;
}

/*
 * dw[k] (+)= sum_j dy[(b0 + j) * ld + r] * xT[idx[k]][j] for the rows in [r0, r1) (indices
 * already validated); w = 8 * NV. The dy columns of eight rows at a time are transposed into
 * registers-sized buffers; entries are reduced eight at a time by hsum8.
 */
static inline __attribute__((always_inline)) void sddmm_rows(
    const int NV, int64_t r0, int64_t r1, const int32_t *ptr, const int32_t *idx,
    const float *xT, const float *dy, int64_t ld, int64_t b0, int bt, float *dw,
    int accumulate) {
  const int64_t w = 8 * NV;
  const int64_t k_last = (int64_t)ptr[r1] - 1;
  float gbuf[8][TILE_MAX] __attribute__((aligned(32)));
  for (int64_t g0 = r0; g0 < r1; g0 += 8) {
    const int rows = (int)min64(8, r1 - g0);
    load_rows_batch_major(gbuf, rows, g0, dy, ld, b0, bt, (int)w);
    for (int ii = 0; ii < rows; ii++) {
      const int64_t r = g0 + ii;
      v8f g[8];
      for (int j = 0; j < NV; j++) g[j] = ((const v8f *)gbuf[ii])[j];
      const int64_t k1 = ptr[r + 1];
      int64_t k = ptr[r];
      for (; k + 8 <= k1; k += 8) {
        v8f s[8];
        for (int e = 0; e < 8; e++) {
          prefetch_tile_row(NV, 0, xT, idx[min64(k + e + SL_PREFETCH, k_last)]);
          const v8f *x = (const v8f *)(xT + (int64_t)idx[k + e] * w);
          s[e] = g[0] * x[0];
          for (int j = 1; j < NV; j++) s[e] += g[j] * x[j];
        }
        put_dots8(s, dw, k, accumulate);
      }
      for (; k < k1; k++) {
        const v8f *x = (const v8f *)(xT + (int64_t)idx[k] * w);
        v8f sv = g[0] * x[0];
        for (int j = 1; j < NV; j++) sv += g[j] * x[j];
        put_dot1(sv, dw, k, accumulate);
      }
    }
  }
}

static void sddmm_dispatch(int nv, int64_t r0, int64_t r1, const int32_t *ptr,
                           const int32_t *idx, const float *xT, const float *dy, int64_t ld,
                           int64_t b0, int bt, float *dw, int accumulate) {
#define SL_CASE(N)                                                                 \
  case N:                                                                          \
    sddmm_rows(N, r0, r1, ptr, idx, xT, dy, ld, b0, bt, dw, accumulate);           \
    break;
  switch (nv) {
    SL_CASE(1) SL_CASE(2) SL_CASE(3) SL_CASE(4) SL_CASE(5) SL_CASE(6) SL_CASE(7) SL_CASE(8)
  }
#undef SL_CASE
}

/* sl_sddmm, its arguments validated; fn names the caller in errors. */
static sl_status sddmm(const char *fn, int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                       const int32_t *row_ptr, const int32_t *col_idx, const float *x,
                       const float *dy, float *dw) {
  sl_status st = sl_check_offsets(fn, "row_ptr", row_ptr, n_out, nnz);
  if (st != SL_OK) return st;
  if (nnz == 0) return SL_OK;
  const int threads = sl_threads();
  int64_t first_bad = NO_BAD;
  int64_t bounds[MAX_PARTS + 1];

  if (n_in == 0) {
    first_bad = 0; /* every index is out of range; x may be null */
  } else if (batch <= 1) {
    if (batch == 0) {
      /* An empty sum: still validate the indices so the contract does not depend on batch. */
      int64_t b = first_bad_entry(0, nnz, col_idx, (uint32_t)n_in, NULL, 0);
      if (b >= 0)
        first_bad = b;
      else
        memset(dw, 0, (size_t)nnz * sizeof(float));
    } else {
      const int parts = choose_parts(threads, nnz + n_out, SERIAL_WORK_B1);
      partition_rows(row_ptr, n_out, 1, parts, bounds);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (parts > 1) \
    reduction(min : first_bad)
      for (int p = 0; p < parts; p++) {
        int64_t b = sddmm_rows_b1(bounds[p], bounds[p + 1], row_ptr, col_idx, x, n_in, dy, dw);
        if (b >= 0 && b < first_bad) first_bad = b;
      }
    }
  } else {
    const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : round_up(batch, 8);
    float *xT = sl_scratch_get(sl_mul_size(first_w * (int64_t)sizeof(float), n_in));
    if (xT == NULL)
      return sl_fail(SL_E_OUT_OF_MEMORY, fn,
                     "cannot allocate feature-major scratch for batch %d", batch);
    const int parts = choose_parts(threads, nnz * first_w + ((int64_t)n_in + n_out) * first_w,
                                 SERIAL_WORK_BATCHED);
    partition_rows(row_ptr, n_out, first_w / 8, parts, bounds);
    for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
      const int bt = (int)min64(TILE_MAX, batch - b0);
      const int w = (int)round_up(bt, 8);
#pragma omp parallel num_threads(threads) if (parts > 1)
      {
        tile_and_check(x, n_in, 0, b0, bt, w, xT, 0, nnz, col_idx, (uint32_t)n_in, NULL, 0, NULL,
                       NULL, NULL, &first_bad);
        if (first_bad == NO_BAD) {
#pragma omp for schedule(dynamic, 1)
          for (int p = 0; p < parts; p++)
            sddmm_dispatch(w / 8, bounds[p], bounds[p + 1], row_ptr, col_idx, xT, dy, n_out, b0,
                           bt, dw, b0 > 0);
        }
      }
    }
    sl_scratch_put(xT);
  }
  if (first_bad != NO_BAD)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "col_idx[%lld] = %d is outside [0, %d)",
                   (long long)first_bad, col_idx[first_bad], n_in);
  return SL_OK;
}

sl_status sl_sddmm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                   const int32_t *row_ptr, const int32_t *col_idx, const float *x,
                   const float *dy, float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_sddmm(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw));
  return sddmm(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw);
}

/* ------------------------------------------------------ both gradients, from the CSR ---- */

/*
 * Batch 1: one pass over the pattern for both gradients (col_idx is read once: a quarter less
 * traffic than the two calls). Larger batches: the SDDMM, then the CSR input gradient, which
 * writes dx only once it succeeded, so that no failure leaves dx written.
 */
sl_status sl_spmm_bwd_csr(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                          const int32_t *row_ptr, const int32_t *col_idx, const float *values,
                          const float *x, const float *dy, float *dx, float *dw) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx,
                                       values, x, dy, dx, dw));
  if (batch == 1 && n_in > 0)
    return bwd_input_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values, dy, dx, x,
                         dw);
  sl_status st = sddmm(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, x, dy, dw);
  if (st != SL_OK) return st;
  return bwd_input_csr(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, values, dy, dx, NULL,
                       NULL);
}

/* ---------------------------------------------------- both gradients, one CSC pass ---- */

#if defined(__AVX512F__)
/* Connection k of fused_bwd_col16: acc += val * dy row, and the dy row times x's (xc) summed
 * down to eight lanes (low half + high half), which it returns. */
static inline __attribute__((always_inline)) v8f fused_entry16(
    const int BF, int64_t k, int64_t k_last, const int32_t *idx, const float *valsT,
    const void *dyT, const __m512 *xc, __m512 *acc) {
  prefetch_tile_row(8, BF, dyT, idx[min64(k + SL_PREFETCH, k_last)]);
  const char *row = tile_row(8, BF, dyT, idx[k]);
  const __m512 v = _mm512_set1_ps(0.0f + valsT[k]);
  __m512 r = tile_load16(BF, row, 0);
  __m512 sd = _mm512_mul_ps(xc[0], r);
  acc[0] = _mm512_fmadd_ps(v, r, acc[0]);
  for (int m = 1; m < 4; m++) {
    r = tile_load16(BF, row, m);
    sd = _mm512_fmadd_ps(xc[m], r, sd);
    acc[m] = _mm512_fmadd_ps(v, r, acc[m]);
  }
  const __m512d d = _mm512_castps_pd(sd);
  return (v8f)_mm256_add_ps(_mm256_castpd_ps(_mm512_castpd512_pd256(d)),
                            _mm256_castpd_ps(_mm512_extractf64x4_pd(d, 1)));
}

/* One column of fused_bwd_cols for a full 64-column tile, in 512-bit registers (tile_load16's
 * lane order): dx's sums are the 256-bit kernel's; dw's products are added in another order. */
static inline __attribute__((always_inline)) void fused_bwd_col16(
    const int BF, int64_t k, int64_t k1, int64_t k_last, const int32_t *idx, const float *valsT,
    const void *dyT, const float *xrow, float *dwT, int accumulate, v8f *out) {
  __m512 xc[4], acc[4];
  for (int m = 0; m < 4; m++) {
    xc[m] = tile_load16(0, (const char *)xrow, m);
    acc[m] = _mm512_setzero_ps();
  }
  for (; k + 8 <= k1; k += 8) {
    v8f sdot[8];
    for (int e = 0; e < 8; e++)
      sdot[e] = fused_entry16(BF, k + e, k_last, idx, valsT, dyT, xc, acc);
    put_dots8(sdot, dwT, k, accumulate);
  }
  for (; k < k1; k++) {
    const v8f sv = fused_entry16(BF, k, k_last, idx, valsT, dyT, xc, acc);
    put_dot1(sv, dwT, k, accumulate);
  }
  for (int j = 0; j < 8; j++) out[j] = acc16_part(1, acc, j);
}
#endif

/*
 * For the columns c in [c0, c1) of the CSC view (indices validated): every entry k of column c
 * gathers the row r = idx[k] of dyT once and uses it twice,
 *   dx[b0 + j][c]  = sum_k valsT[k] * dyT[r][j]          (accumulated in registers), and
 *   dwT[k]       (+)= sum_j x[b0 + j][c] * dyT[r][j]      (8 entries at a time via hsum8),
 * with values and weight gradient in CSC order (the caller permutes them). The x columns of
 * eight input features at a time are transposed into registers-sized buffers, as are the dx
 * results on the way out.
 */
static inline __attribute__((always_inline)) void fused_bwd_cols(
    const int NV, const int BF, int64_t c0, int64_t c1, const int32_t *ptr, const int32_t *idx,
    const float *valsT, const void *dyT, const float *x, int64_t ld, int64_t b0, int bt,
    float *dx, float *dwT, int accumulate, int fm) {
  const int64_t w = 8 * NV;
  const int64_t k_last = (int64_t)ptr[c1] - 1;
  float xbuf[8][TILE_MAX] __attribute__((aligned(32)));
  float obuf[8][TILE_MAX] __attribute__((aligned(32)));
  for (int64_t g0 = c0; g0 < c1; g0 += 8) {
    const int cols = (int)min64(8, c1 - g0);
    load_rows(xbuf, cols, g0, x, ld, b0, bt, (int)w, fm);
    for (int ii = 0; ii < cols; ii++) {
      const int64_t c = g0 + ii;
      v8f xc[8], acc[8];
      for (int j = 0; j < NV; j++) {
        xc[j] = ((const v8f *)xbuf[ii])[j];
        acc[j] = (v8f){0};
      }
      const int64_t k1 = ptr[c + 1];
      int64_t k = ptr[c];
#if defined(__AVX512F__)
      if (NV == 8) {
        fused_bwd_col16(BF, k, k1, k_last, idx, valsT, dyT, xbuf[ii], dwT, accumulate,
                        (v8f *)obuf[ii]);
        continue;
      }
#endif
      for (; k + 8 <= k1; k += 8) {
        v8f sdot[8];
        for (int e = 0; e < 8; e++) {
          prefetch_tile_row(NV, BF, dyT, idx[min64(k + e + SL_PREFETCH, k_last)]);
          const char *row = tile_row(NV, BF, dyT, idx[k + e]);
          const v8f v = (v8f){0} + valsT[k + e];
          const v8f r0 = tile_load8(BF, row, 0);
          sdot[e] = xc[0] * r0;
          acc[0] = fma8(v, r0, acc[0]);
          for (int j = 1; j < NV; j++) {
            const v8f rj = tile_load8(BF, row, j);
            sdot[e] = fma8(xc[j], rj, sdot[e]);
            acc[j] = fma8(v, rj, acc[j]);
          }
        }
        put_dots8(sdot, dwT, k, accumulate);
      }
      for (; k < k1; k++) {
        const char *row = tile_row(NV, BF, dyT, idx[k]);
        const v8f v = (v8f){0} + valsT[k];
        const v8f r0 = tile_load8(BF, row, 0);
        v8f sv = xc[0] * r0;
        acc[0] = fma8(v, r0, acc[0]);
        for (int j = 1; j < NV; j++) {
          const v8f rj = tile_load8(BF, row, j);
          sv = fma8(xc[j], rj, sv);
          acc[j] = fma8(v, rj, acc[j]);
        }
        put_dot1(sv, dwT, k, accumulate);
      }
      for (int j = 0; j < NV; j++) ((v8f *)obuf[ii])[j] = acc[j];
    }
    store_rows(obuf, cols, g0, dx, ld, b0, bt, fm);
  }
}

static void fused_bwd_dispatch(int nv, int bf, int64_t c0, int64_t c1, const int32_t *ptr,
                               const int32_t *idx, const float *valsT, const void *dyT,
                               const float *x, int64_t ld, int64_t b0, int bt, float *dx,
                               float *dwT, int accumulate, int fm) {
#define SL_CASE(N, B)                                                                        \
  case 2 * N + B:                                                                            \
    fused_bwd_cols(N, B, c0, c1, ptr, idx, valsT, dyT, x, ld, b0, bt, dx, dwT, accumulate,   \
                   fm);                                                                      \
    break;
  switch (2 * nv + bf) { SL_TILE_CASES(SL_CASE) }
#undef SL_CASE
}

/* The error for CSC entry k, whose row index or CSR position is out of range. */
static sl_status bad_csc_entry(const char *fn, int64_t k, const int32_t *row_idx,
                               const int32_t *csc_to_csr, int32_t n_out, int64_t nnz) {
  if (csc_to_csr == NULL || (uint32_t)row_idx[k] >= (uint32_t)n_out)
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "row_idx[%lld] = %d is outside [0, %d)",
                   (long long)k, row_idx[k], n_out);
  return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "csc_to_csr[%lld] = %d is outside [0, %lld)",
                 (long long)k, csc_to_csr[k], (long long)nnz);
}

/*
 * sl_spmm_bwd (fm 0), sl_spmm_bwd_fm (fm 1: x, dy and dx feature-major) and, with csc_to_csr
 * null, sl_spmm_bwd_csc: values and dw already in CSC order, so neither is permuted (arguments
 * validated by the caller).
 */
static sl_status spmm_bwd(const char *fn, int32_t batch, int32_t n_in, int32_t n_out,
                          int64_t nnz, const int32_t *col_ptr, const int32_t *row_idx,
                          const int32_t *csc_to_csr, const float *values, const float *x,
                          const float *dy, float *dx, float *dw, float *db, int fm) {
  sl_status st = sl_check_offsets(fn, "col_ptr", col_ptr, n_in, nnz);
  if (st != SL_OK) return st;
  /* (n_in == 0 forces nnz == 0 through col_ptr.) Empty sums are zeros. */
  if (nnz == 0) {
    if (batch > 0 && n_in > 0) memset(dx, 0, (size_t)batch * (size_t)n_in * sizeof(float));
    if (db != NULL) bias_sums(batch, n_out, dy, fm, db);
    return SL_OK;
  }
  if (n_out == 0) /* every row index is out of range, and dy may be null */
    return sl_fail(SL_E_INDEX_OUT_OF_RANGE, fn, "row_idx[0] = %d is outside [0, 0)",
                   row_idx[0]);
  if (batch == 0) {
    /* dw is an empty sum: still validate the indices so the contract does not depend on batch. */
    const int64_t b = first_bad_entry(0, nnz, row_idx, (uint32_t)n_out, csc_to_csr, (uint32_t)nnz);
    if (b < 0) {
      memset(dw, 0, (size_t)nnz * sizeof(float));
      if (db != NULL) memset(db, 0, (size_t)n_out * sizeof(float));
      return SL_OK;
    }
    return bad_csc_entry(fn, b, row_idx, csc_to_csr, n_out, nnz);
  }
  const int threads = sl_threads();
  const int bf = bf16_tiles(batch);
  const int64_t first_w = batch >= TILE_MAX ? TILE_MAX : round_up(batch, 8);
  /* One scratch block: dy feature-major (first_w * n_out floats or bfloat16 values), for db the
   * bias gradient's double sums (summed as dy is laid out; written to db once the call
   * succeeded) and, for CSR-ordered values, the values in CSC order and dw in CSC order
   * (scattered to CSR order at the end). */
  const int permuted = csc_to_csr != NULL;
  const int64_t panel_bytes = sl_mul_size(tile_stride(first_w, bf) * (bf ? 2 : 4), n_out);
  const int64_t sums_bytes = db != NULL ? (int64_t)n_out * (int64_t)sizeof(double) : 0;
  const int64_t perm_bytes = permuted ? 2 * nnz * (int64_t)sizeof(float) : 0;
  void *dyT =
      panel_bytes < 0 ? NULL : sl_scratch_get(panel_bytes + sums_bytes + perm_bytes);
  if (dyT == NULL)
    return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch for batch %d", batch);
  double *sums = db != NULL ? (double *)((char *)dyT + panel_bytes) : NULL;
  float *valsT = permuted ? (float *)((char *)dyT + panel_bytes + sums_bytes) : (float *)values;
  float *dwT = permuted ? valsT + nnz : dw;
  int64_t bounds[MAX_PARTS + 1];
  const int parts = choose_parts(threads, nnz * first_w + ((int64_t)n_in + n_out) * first_w,
                                 SERIAL_WORK_BATCHED);
  partition_rows(col_ptr, n_in, first_w / 8, parts, bounds);
  int64_t first_bad = NO_BAD;
  for (int64_t b0 = 0; b0 < batch && first_bad == NO_BAD; b0 += TILE_MAX) {
    const int bt = (int)min64(TILE_MAX, batch - b0);
    const int w = (int)round_up(bt, 8);
#pragma omp parallel num_threads(threads) if (parts > 1)
    {
      /* The values gathered into CSC order while each validated chunk is in cache (a bad
       * chunk gathers nothing; the call then fails before anything is written). */
      tile_and_check(dy, n_out, fm ? batch : 0, b0, bt, w, dyT, bf, nnz, row_idx,
                     (uint32_t)n_out, csc_to_csr, (uint32_t)nnz, values,
                     permuted ? valsT : NULL, sums, &first_bad);
      if (first_bad == NO_BAD) {
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < parts; p++)
          fused_bwd_dispatch(w / 8, bf, bounds[p], bounds[p + 1], col_ptr, row_idx, valsT, dyT, x,
                             fm ? batch : n_in, b0, bt, dx, dwT, b0 > 0, fm);
      }
      if (first_bad == NO_BAD && b0 + TILE_MAX >= batch) {
        if (permuted) {
#pragma omp for schedule(static)
          for (int64_t k = 0; k < nnz; k++) {
            __builtin_prefetch(dw + csc_to_csr[min64(k + PERMUTE_AHEAD, nnz - 1)], 1);
            dw[csc_to_csr[k]] = dwT[k];
          }
        }
        if (sums != NULL) {
#pragma omp for schedule(static) nowait
          for (int64_t i = 0; i < n_out; i++) db[i] = (float)sums[i];
        }
      }
    }
  }
  sl_scratch_put(dyT);
  return first_bad == NO_BAD ? SL_OK
                             : bad_csc_entry(fn, first_bad, row_idx, csc_to_csr, n_out, nnz);
}

sl_status sl_spmm_bwd(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                      const int32_t *row_ptr, const int32_t *col_idx, const int32_t *col_ptr,
                      const int32_t *row_idx, const int32_t *csc_to_csr, const float *values,
                      const float *x, const float *dy, float *dx, float *dw, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr,
                                   row_idx, csc_to_csr, values, x, dy, dx, dw, 0));
  return spmm_bwd(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx, csc_to_csr, values, x, dy,
                  dx, dw, db, 0);
}

sl_status sl_spmm_bwd_fm(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                         const int32_t *row_ptr, const int32_t *col_idx, const int32_t *col_ptr,
                         const int32_t *row_idx, const int32_t *csc_to_csr, const float *values,
                         const float *xT, const float *dyT, float *dxT, float *dw, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd(__func__, batch, n_in, n_out, nnz, row_ptr, col_idx, col_ptr,
                                   row_idx, csc_to_csr, values, xT, dyT, dxT, dw, 1));
  return spmm_bwd(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx, csc_to_csr, values, xT,
                  dyT, dxT, dw, db, 1);
}

sl_status sl_spmm_bwd_csc(int32_t batch, int32_t n_in, int32_t n_out, int64_t nnz,
                          const int32_t *col_ptr, const int32_t *row_idx, const float *values,
                          const float *x, const float *dy, float *dx, float *dw, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_spmm_bwd_csc(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx,
                                       values, x, dy, dx, dw));
  return spmm_bwd(__func__, batch, n_in, n_out, nnz, col_ptr, row_idx, NULL, values, x, dy, dx,
                  dw, db, 0);
}

/* ---------------------------------------------------------------------- bias gradient ---- */

sl_status sl_bias_grad(int32_t batch, int32_t n_out, const float *dy, float *db) {
  SL_ENTER();
  SL_VALIDATE(sl_validate_bias_grad(__func__, batch, n_out, dy, db));
  if (n_out > 0) bias_sums(batch, n_out, dy, 0, db);
  return SL_OK;
}
