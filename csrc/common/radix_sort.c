/*
 * radix_sort.c — a least-significant-digit radix sort of 64-bit keys: 11 bits per pass, and only
 * as many passes as the largest key needs (ranks below 10^12: four). SET's growth at 1M x 1M
 * draws 3 M ranks; qsort with a comparison callback took ~1 s of its update, this ~0.1 s
 * (bench/RESULTS.md). Keys are plain integers, so the result is that of any sort.
 */
#include "radix_sort.h"

#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS 11
#define BUCKETS (1 << DIGIT_BITS)
#define SMALL 256 /* below this, qsort's overhead does not matter */

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

void sl_sort_u64(uint64_t *a, int64_t n) {
  if (n < 2) return;
  uint64_t bits_set = 0;
  for (int64_t i = 0; i < n; i++) bits_set |= a[i];
  uint64_t *tmp = n < SMALL ? NULL : malloc((size_t)n * sizeof *tmp);
  if (tmp == NULL) {
    qsort(a, (size_t)n, sizeof *a, cmp_u64);
    return;
  }
  const int key_bits = bits_set == 0 ? 0 : 64 - __builtin_clzll(bits_set);
  uint64_t *src = a, *dst = tmp;
  for (int shift = 0; shift < key_bits; shift += DIGIT_BITS) {
    int64_t start[BUCKETS];
    memset(start, 0, sizeof start);
    for (int64_t i = 0; i < n; i++) start[(src[i] >> shift) & (BUCKETS - 1)]++;
    int64_t sum = 0;
    for (int d = 0; d < BUCKETS; d++) {
      const int64_t count = start[d];
      start[d] = sum;
      sum += count;
    }
    for (int64_t i = 0; i < n; i++) dst[start[(src[i] >> shift) & (BUCKETS - 1)]++] = src[i];
    uint64_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
  free(tmp);
}
