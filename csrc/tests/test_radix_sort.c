/*
 * test_radix_sort.c — sl_sort_u64 (csrc/common/radix_sort.c) against qsort: every size around
 * its qsort cut-off and its digit boundaries, keys of 0 to 64 bits, many repeats.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/radix_sort.h"

#include "expect.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd64(void) { /* xorshift64* */
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

static int cmp_u64(const void *a, const void *b) {
  const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int main(void) {
  const int64_t sizes[] = {0, 1, 2, 3, 255, 256, 257, 2047, 2048, 2049, 100003};
  const int widths[] = {0, 1, 10, 11, 12, 22, 23, 33, 40, 44, 45, 63, 64};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
      const int64_t n = sizes[si];
      const int w = widths[wi];
      uint64_t *a = malloc((size_t)(n + 1) * sizeof *a), *b = malloc((size_t)(n + 1) * sizeof *b);
      for (int64_t i = 0; i < n; i++) {
        uint64_t v = w == 0 ? 0 : rnd64() >> (64 - w);
        if (i > 0 && rnd64() % 8 == 0) v = a[rnd64() % (uint64_t)i]; /* repeats */
        a[i] = b[i] = v;
      }
      sl_sort_u64(a, n);
      qsort(b, (size_t)n, sizeof *b, cmp_u64);
      EXPECT(n == 0 || memcmp(a, b, (size_t)n * sizeof *a) == 0,
             "sl_sort_u64 of %lld keys of %d bits differs from qsort", (long long)n, w);
      free(a);
      free(b);
    }
  }
  if (failures) fprintf(stderr, "test_radix_sort: %d failure(s)\n", failures);
  else printf("test_radix_sort: ok\n");
  return failures ? 1 : 0;
}
