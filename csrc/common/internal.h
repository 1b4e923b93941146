/*
 * internal.h — helpers shared by every kernel file: error reporting and argument checks.
 * Not part of the ABI.
 */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "sparselinear.h"

/* Records "<fn>: <message>" as this thread's last error and returns code. */
sl_status sl_fail(sl_status code, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the last-error slot; every entry point calls it first via SL_ENTER. */
void sl_clear_error(void);

/* Threads parallel kernels may use (>= 1, <= SL_MAX_THREADS). */
int32_t sl_threads(void);

/* Most threads a kernel runs on: sl_set_num_threads and SL_NUM_THREADS accept no more. */
#define SL_MAX_THREADS 4096

/*
 * Parallel sums with the same bits in every call at a given thread count. OpenMP's reduction(+)
 * adds the threads' partial sums in the order the threads finish, so from three threads on a
 * sum could change from call to call ({1e16, -1e16, 1} over three threads gave 0 or 1). Instead
 * each thread of the region sums its share of the range (sl_share: contiguous blocks in thread
 * order) and stores it with sl_parts_put; after the region sl_parts_sum adds them in order.
 */
typedef struct {
  double part[SL_MAX_THREADS];
  int used;
} sl_parts;

/* This thread's number *t in a team of *nt (0 and 1 outside a parallel region). */
static inline void sl_team(int *t, int *nt) {
#ifdef _OPENMP
  *t = omp_get_thread_num();
  *nt = omp_get_num_threads();
#else
  *t = 0;
  *nt = 1;
#endif
}

/* The calling thread's share [*lo, *hi) of [0, n): contiguous blocks in thread order. */
static inline void sl_share(int64_t n, int64_t *lo, int64_t *hi) {
  int t, nt;
  sl_team(&t, &nt);
  const int64_t q = n / nt, r = n % nt;
  *lo = q * t + (t < r ? t : r);
  *hi = *lo + q + (t < r ? 1 : 0);
}

/* Stores the calling thread's partial sum; every thread of the region calls it once. */
static inline void sl_parts_put(sl_parts *p, double v) {
  int t, nt;
  sl_team(&t, &nt);
  p->part[t] = v;
  if (t == 0) p->used = nt;
}

static inline double sl_parts_sum(const sl_parts *p) {
  double s = 0.0;
  for (int t = 0; t < p->used; t++) s += p->part[t];
  return s;
}

#define SL_ENTER() sl_clear_error()

#define SL_CHECK_PTR(p)                                                          \
  do {                                                                           \
    if ((p) == 0)                                                                \
      return sl_fail(SL_E_NULL_POINTER, __func__, "%s must not be null", #p);    \
  } while (0)

#define SL_CHECK_NONNEG(n)                                                       \
  do {                                                                           \
    if ((n) < 0)                                                                 \
      return sl_fail(SL_E_INVALID_ARGUMENT, __func__,                            \
                     "%s must be >= 0, got %lld", #n, (long long)(n));           \
  } while (0)

#define SL_CHECK_ARG(cond, ...)                                                  \
  do {                                                                           \
    if (!(cond)) return sl_fail(SL_E_INVALID_ARGUMENT, __func__, __VA_ARGS__);   \
  } while (0)

/* Product of two non-negative sizes, or -1 when it overflows int64. */
static inline int64_t sl_mul_size(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > INT64_MAX / a) return -1;
  return a * b;
}

#endif /* SL_INTERNAL_H */
