/*
 * internal.h — helpers shared by every kernel file: error reporting and argument checks.
 * Not part of the ABI.
 */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H

#include <stdint.h>

#include "sparselinear.h"

/* Records "<fn>: <message>" as this thread's last error and returns code. */
sl_status sl_fail(sl_status code, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the last-error slot; every entry point calls it first via SL_ENTER. */
void sl_clear_error(void);

/* Threads parallel kernels may use (>= 1). */
int32_t sl_threads(void);

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
