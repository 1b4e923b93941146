/* core.c — last-error slot, ABI version, thread count and matmul precision. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GLIBC__) && !defined(SL_CUDA_BUILD)
#include <malloc.h>
#endif

#include "internal.h"

static _Thread_local char last_error[512];
static int32_t requested_threads = 0; /* 0: default */

sl_status sl_fail(sl_status code, const char *fn, const char *fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "%s: ", fn);
  if (n < 0 || n >= (int)sizeof last_error) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
  va_end(ap);
  return code;
}

void sl_clear_error(void) { last_error[0] = '\0'; }

const char *sl_last_error(void) { return last_error; }

int32_t sl_abi_version(void) { return SL_ABI_VERSION; }

/* SL_NUM_THREADS when it is a whole decimal number in [1, SL_MAX_THREADS] (blanks allowed);
 * anything else ("3abc", "1e3", "0") is ignored, as a partial number would be a guess. */
static int32_t read_default_threads(void) {
  const char *env = getenv("SL_NUM_THREADS");
  if (env != NULL) {
    char *end = NULL;
    errno = 0;
    long v = strtol(env, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (errno == 0 && end != env && *end == '\0' && v > 0 && v <= SL_MAX_THREADS)
      return (int32_t)v;
  }
#ifdef _OPENMP
  return (int32_t)omp_get_num_procs();
#else
  return 1;
#endif
}

/*
 * The default, read once: omp_get_num_procs() is a sched_getaffinity system call (~0.4 us), and
 * every kernel asks for its thread count, so asking each time was a third of a small layer's
 * forward call. Racing first calls compute the same value.
 */
static int32_t default_threads(void) {
  static int32_t cached = 0;
  int32_t n = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (n == 0) {
    n = read_default_threads();
    __atomic_store_n(&cached, n, __ATOMIC_RELAXED);
  }
  return n;
}

int32_t sl_threads(void) {
  int32_t n = requested_threads > 0 ? requested_threads : default_threads();
  return n > 0 ? n : 1;
}

sl_status sl_set_num_threads(int32_t n) {
  SL_ENTER();
  SL_CHECK_ARG(n <= SL_MAX_THREADS, "n must be <= %d (or <= 0 for the default), got %d",
               SL_MAX_THREADS, n);
  requested_threads = n > 0 ? n : 0;
#ifdef _OPENMP
  omp_set_num_threads(sl_threads());
#endif
  return SL_OK;
}

int32_t sl_get_num_threads(void) { return sl_threads(); }

static int32_t matmul_precision = SL_PRECISION_HIGHEST;

sl_status sl_set_matmul_precision(int32_t precision) {
  SL_ENTER();
  SL_CHECK_ARG(precision == SL_PRECISION_HIGHEST || precision == SL_PRECISION_MEDIUM,
               "precision must be SL_PRECISION_HIGHEST (0) or SL_PRECISION_MEDIUM (1), got %d",
               precision);
  __atomic_store_n(&matmul_precision, precision, __ATOMIC_RELAXED);
  return SL_OK;
}

int32_t sl_get_matmul_precision(void) {
  return __atomic_load_n(&matmul_precision, __ATOMIC_RELAXED);
}

int32_t sl_has_cblas(void) {
#ifdef SL_HAVE_CBLAS
  return 1;
#else
  return 0;
#endif
}

#if defined(__GLIBC__) && !defined(SL_CUDA_BUILD)
/*
 * Every op allocates its output as a fresh JS typed array, which V8 gets from glibc's calloc.
 * With glibc's defaults, buffers of a few MB are mmap'ed and unmapped each time (or trimmed
 * off the heap top), so each training step pays thousands of page faults (measured: 12.8 MB
 * alloc + touch 2.4 ms -> 1.2 ms, minor faults 84k -> 25k over 300 allocations). Keeping
 * freed buffers in the heap makes repeated same-size allocations cheap. Set
 * SL_NO_MALLOC_TUNING=1 to leave the process's malloc settings alone.
 */
__attribute__((constructor)) static void sl_tune_malloc(void) {
  const char *off = getenv("SL_NO_MALLOC_TUNING");
  if (off != NULL && off[0] != '\0' && off[0] != '0') return;
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
  mallopt(M_TOP_PAD, 16 * 1024 * 1024);
}
#endif
