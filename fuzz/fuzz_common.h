/*
 * fuzz_common.h — shared pieces of the libFuzzer harnesses: a reader that turns the fuzzer's
 * bytes into sizes, indices and floats (reading past the end yields zeros, so every input is
 * usable), exactly-sized heap buffers (so AddressSanitizer sees any access one element out of
 * bounds), and a check macro that aborts with a message (libFuzzer reports the abort as a crash
 * and saves the input).
 */
#ifndef SL_FUZZ_COMMON_H
#define SL_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselinear.h"

/* ------------------------------------------------------------------ byte reader ---- */

typedef struct {
  const uint8_t *p;
  size_t n;
} fz_in;

static inline uint8_t fz_u8(fz_in *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint16_t fz_u16(fz_in *in) {
  uint16_t lo = fz_u8(in);
  return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(fz_in *in) {
  uint32_t lo = fz_u16(in);
  return lo | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(fz_in *in) {
  uint64_t lo = fz_u32(in);
  return lo | (uint64_t)fz_u32(in) << 32;
}

/* An integer in [lo, hi] (inclusive); lo when the range is empty. */
static inline int64_t fz_range(fz_in *in, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  uint64_t span = (uint64_t)(hi - lo) + 1;
  uint64_t v = span <= 256 ? fz_u8(in) : span <= 65536 ? fz_u16(in) : fz_u32(in);
  return lo + (int64_t)(v % span);
}

/* True with probability about num/256; false once the input is used up (short inputs then take
 * the common, cheap branches instead of every rare one). */
static inline int fz_chance(fz_in *in, int num) { return in->n > 0 && fz_u8(in) < num; }

/* A rare, expensive case (big sizes): one specific byte value, about 1 in 256 random inputs;
 * the zero runs that mutations and short inputs produce never select it. */
static inline int fz_rare(fz_in *in) { return in->n > 0 && fz_u8(in) == 0xA7; }

/* An entry of `table` for a parameter: one of its first `valid` entries (the allowed values)
 * mostly, one of its first `all` (the invalid ones too) for about 1 input in 16. */
#define FZ_PICK(in, table, valid, all) \
  ((table)[fz_chance(in, 16) ? fz_u8(in) % (all) : fz_u8(in) % (valid)])

/* An int32 that is usually in [0, bound) but sometimes any of the values that break checks. */
static inline int32_t fz_index(fz_in *in, int32_t bound, int bad_chance) {
  if (fz_chance(in, bad_chance)) {
    static const int32_t bad[] = {-1, INT32_MIN, INT32_MAX, 0, 1};
    uint8_t s = fz_u8(in);
    if (s < 5) return bad[s];
    if (s < 128) return bound + (int32_t)(s % 4);
    return (int32_t)fz_u32(in);
  }
  return bound > 0 ? (int32_t)fz_range(in, 0, bound - 1) : 0;
}

/* A small exactly representable float: sums of a few of them are exact in float32. */
static inline float fz_small_float(fz_in *in) { return (float)((int8_t)fz_u8(in)) / 8.0f; }

/* Any float, special values included (for crash-only checks). */
static inline float fz_any_float(fz_in *in) {
  uint8_t s = fz_u8(in);
  switch (s) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return INFINITY;
    case 3: return -INFINITY;
    case 4: return NAN;
    case 5: return 3.4e38f;
    case 6: return 1e-45f;
    default: break;
  }
  if (s < 128) return fz_small_float(in);
  uint32_t u = fz_u32(in);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/*
 * Sets the library's thread count from the input (1..3, so that the partitioned parallel paths
 * run too), capped by the environment variable FUZZ_MAX_THREADS when set: on an oversubscribed
 * machine every OpenMP barrier waits for a descheduled thread, and one thread runs many times
 * more executions per second.
 */
static inline void fz_threads(fz_in *in) {
  int32_t n = (int32_t)fz_range(in, 1, 3);
  const char *cap = getenv("FUZZ_MAX_THREADS");
  if (cap != NULL && atoi(cap) >= 1 && n > atoi(cap)) n = atoi(cap);
  sl_set_num_threads(n);
}

/*
 * Switches the library to another thread count than the current one (1 or 3) and returns the
 * current one, for the checks that a result does not depend on it: call, compare, then
 * sl_set_num_threads(returned).
 */
static inline int32_t fz_switch_threads(void) {
  const int32_t now = sl_get_num_threads();
  sl_set_num_threads(now == 1 ? 3 : 1);
  return now;
}

/*
 * The next byte of a small generator (an LCG) for the big shapes that reach the kernels'
 * parallel paths: they need more values than an input has bytes, and once the input is used
 * up the reader yields only zeros (all-zero patterns and constant rows test little).
 */
static inline uint8_t fz_gen_u8(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return (uint8_t)(*state >> 24);
}

/* Fills x[0..n) with small exact floats from the input (with `any`, special values too), then,
 * once the input is used up, with small floats from fz_gen_u8 seeded by n. */
static inline void fz_fill_floats(fz_in *in, float *x, int64_t n, int any) {
  uint32_t state = 0x9E3779B9u ^ (uint32_t)n;
  for (int64_t i = 0; i < n; i++) {
    if (in->n > 0) x[i] = any ? fz_any_float(in) : fz_small_float(in);
    else x[i] = (float)(int8_t)fz_gen_u8(&state) / 8.0f;
  }
}

/* -------------------------------------------------------------- exact buffers ---- */

/* A heap buffer of exactly n elements (n may be 0: a distinct 1-byte allocation, never read). */
static inline void *fz_alloc(size_t n, size_t size) {
  void *p = malloc(n > 0 ? n * size : 1);
  if (p == NULL) abort();
  return p;
}

#define FZ_NEW(type, n) ((type *)fz_alloc((size_t)(n), sizeof(type)))

/* Fills a float buffer with a sentinel bit pattern that no kernel writes by accident. */
static inline void fz_poison(float *x, int64_t n) {
  const uint32_t bits = 0x7FA5A5A5u; /* a signalling-NaN payload */
  for (int64_t i = 0; i < n; i++) memcpy(&x[i], &bits, sizeof bits);
}

static inline int fz_is_poison(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    if (u != 0x7FA5A5A5u) return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------- checks ---- */

#define FZ_CHECK(cond, ...)                                                      \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                              \
      fprintf(stderr, " (last error: %s)\n", sl_last_error());                   \
      abort();                                                                   \
    }                                                                            \
  } while (0)

/* Close enough for float32 sums whose terms have magnitudes summing to `scale`. */
/* Relative tolerance of fz_close: a harness that rounds an operand on purpose (the sparse
 * kernels' medium precision, bfloat16) widens it for that input. */
static double fz_tolerance = 1e-4;

static inline int fz_close(double got, double want, double scale) {
  if (isnan(want)) return isnan(got);
  return fabs(got - want) <= fz_tolerance * scale + 1e-5;
}

/* Close to a double reference whose terms have magnitudes summing to `scale`, for kernels that
 * compute in the reference's order up to float rounding (NaN and inf must match exactly). */
static inline int fz_near(double got, double want, double scale) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  if (!isfinite(got)) return 0;
  if (!isfinite(scale)) return got == want;
  return fabs(got - want) <= 1e-5 * scale + 1e-6;
}

/* Bit for bit, except that any NaN equals any NaN (payloads may differ between paths). */
static inline int fz_same_bits(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
  return 1;
}

/* The error message must name the function that failed (the ABI's promise). */
#define FZ_CHECK_MESSAGE(fn)                                                     \
  FZ_CHECK(strncmp(sl_last_error(), fn ":", strlen(fn ":")) == 0,               \
           "message does not start with the function name: %s", sl_last_error())

#endif /* SL_FUZZ_COMMON_H */
