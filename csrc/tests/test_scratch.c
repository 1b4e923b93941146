/*
 * test_scratch.c — the kernels' scratch blocks (csrc/cpu/scratch.c): alignment, every byte
 * usable, large blocks reused between calls, concurrent holders get distinct blocks, blocks
 * above the cache limit still work, and sl_scratch_peak_bytes counts what is held; and
 * sl_advise_huge_pages, the same pages' advice for arrays the caller allocated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../cpu/scratch.h"
#include "sparselinear.h"

#include "expect.h"

/* Gets a block, checks its alignment and writes every byte (ASan/page faults catch a short one). */
static char *get_and_fill(int64_t bytes, int fill) {
  char *p = sl_scratch_get(bytes);
  EXPECT(p != NULL, "sl_scratch_get(%lld) returned NULL", (long long)bytes);
  if (p == NULL) return NULL;
  EXPECT(((uintptr_t)p & 63) == 0, "block of %lld bytes is not 64-byte aligned", (long long)bytes);
  memset(p, fill, (size_t)bytes);
  EXPECT(p[0] == (char)fill && p[bytes - 1] == (char)fill, "block of %lld bytes lost its fill",
         (long long)bytes);
  return p;
}

/*
 * From /proc/self/smaps: whether the mapping holding addr was advised MADV_HUGEPAGE ("hg" among
 * its VmFlags), 1 or 0; with addr 0, how many mappings were; -1 without smaps.
 */
static int advised(uintptr_t addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return -1;
  char line[1024];
  int inside = 0, found = 0, count = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= addr && addr < hi;
    } else if (strncmp(line, "VmFlags:", 8) == 0) {
      const int hg = strstr(line, " hg") != NULL;
      count += hg;
      if (inside) found = hg;
    }
  }
  fclose(f);
  return addr == 0 ? count : found;
}

int main(void) {
  const int64_t sizes[] = {1, 63, 64, 4096, (1 << 20) - 1, 1 << 20, (3 << 20) + 17, 40 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    sl_scratch_put(get_and_fill(sizes[i], (int)i + 1));

  /* Several blocks held at once are distinct, and each keeps its own contents. */
  char *held[6];
  for (int i = 0; i < 6; i++) held[i] = get_and_fill((int64_t)(i + 1) << 20, 0x10 + i);
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < i; j++) EXPECT(held[i] != held[j], "blocks %d and %d are the same", i, j);
    const int64_t n = (int64_t)(i + 1) << 20;
    EXPECT(held[i][0] == 0x10 + i && held[i][n - 1] == 0x10 + i, "block %d was overwritten", i);
  }
  for (int i = 0; i < 6; i++) sl_scratch_put(held[i]);

  /* Above the cache limit (256 MiB in all): mapped and unmapped per call, still usable. */
  sl_scratch_put(get_and_fill((int64_t)300 << 20, 0x5a));

  /* Reuse under a get/put cycle of mixed sizes, many times (no leak, no double use). */
  for (int round = 0; round < 200; round++) {
    char *a = get_and_fill((int64_t)(1 + round % 7) << 20, 1);
    char *b = get_and_fill(100 + round, 2);
    EXPECT(a[0] == 1 && b[0] == 2, "round %d: blocks overlap", round);
    sl_scratch_put(b);
    sl_scratch_put(a);
  }
  sl_scratch_put(NULL);
  EXPECT(sl_scratch_get(-1) == NULL, "sl_scratch_get(-1) must be NULL");

  /* The peak counts bytes as asked for, held at once (small and huge-page blocks alike), and a
   * reset restarts it from what is held then. */
  sl_scratch_peak_bytes(1);
  EXPECT(sl_scratch_peak_bytes(0) == 0, "peak %lld with nothing held",
         (long long)sl_scratch_peak_bytes(0));
  char *small = get_and_fill(1000, 3);
  char *big = get_and_fill((3 << 20) + 5, 4);
  sl_scratch_put(small);
  char *other = get_and_fill(200, 5);
  const int64_t peak = sl_scratch_peak_bytes(1);
  EXPECT(peak == 1000 + (3 << 20) + 5, "peak %lld, expected %lld", (long long)peak,
         (long long)(1000 + (3 << 20) + 5));
  EXPECT(sl_scratch_peak_bytes(0) == (3 << 20) + 5 + 200, "after a reset: %lld",
         (long long)sl_scratch_peak_bytes(0));
  sl_scratch_put(big);
  sl_scratch_put(other);
  sl_scratch_peak_bytes(1);
  EXPECT(sl_scratch_peak_bytes(0) == 0, "every block given back, peak %lld",
         (long long)sl_scratch_peak_bytes(0));

  /* sl_advise_huge_pages: a hint that changes no byte, inside or around the array, whatever
   * its alignment and size; bad sizes and pointers are refused. */
  {
    const size_t total = (size_t)12 << 20;
    unsigned char *buf = malloc(total);
    EXPECT(buf != NULL, "malloc(%zu)", total);
    for (size_t i = 0; i < total; i++) buf[i] = (unsigned char)(i * 7 + 1);
    const size_t offsets[] = {0, 1, 4096, (size_t)1 << 20};
    const int64_t lengths[] = {0, 1, (2 << 20) - 1, 2 << 20, (5 << 20) + 3, 8 << 20};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
      for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
        EXPECT(sl_advise_huge_pages(buf + offsets[o], lengths[l]) == SL_OK,
               "sl_advise_huge_pages(+%zu, %lld): %s", offsets[o], (long long)lengths[l],
               sl_last_error());
    int intact = 1;
    for (size_t i = 0; i < total; i++) intact &= buf[i] == (unsigned char)(i * 7 + 1);
    EXPECT(intact, "sl_advise_huge_pages changed the array's bytes");
    free(buf);
    EXPECT(sl_advise_huge_pages(NULL, 0) == SL_OK, "an empty array needs no pointer");
    EXPECT(sl_advise_huge_pages(NULL, 4096) == SL_E_NULL_POINTER, "null data: %s", sl_last_error());
    char one[1];
    EXPECT(sl_advise_huge_pages(one, -1) == SL_E_INVALID_ARGUMENT, "bytes -1: %s",
           sl_last_error());
    EXPECT(sl_advise_huge_pages((void *)(UINTPTR_MAX - 4096), 8192) == SL_E_OVERFLOW,
           "past the address space: %s", sl_last_error());
  }
  /* The advice reaches exactly the whole 2 MiB pages inside the array, and an array near the top
   * of the address space (where rounding its start up would wrap to 0) advises nothing. */
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0 && advised(0) >= 0) {
    const uintptr_t huge = (uintptr_t)2 << 20;
    const size_t span = (size_t)10 << 20;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(raw != MAP_FAILED, "mmap of %zu bytes", span);
    if (raw != MAP_FAILED) {
      const uintptr_t base = ((uintptr_t)raw + huge - 1) & ~(huge - 1);
      /* The array [base + 4 KiB, base + 6 MiB + 100): its whole 2 MiB pages are base + 2..6 MiB. */
      EXPECT(sl_advise_huge_pages((void *)(base + 4096), (int64_t)(3 * huge + 100 - 4096)) == SL_OK,
             "advise: %s", sl_last_error());
      EXPECT(advised(base + 4096) == 0, "the partial page at the array's start was advised");
      EXPECT(advised(base + huge) == 1, "the first whole page inside was not advised");
      EXPECT(advised(base + 3 * huge - 1) == 1, "the last whole page inside was not advised");
      EXPECT(advised(base + 3 * huge) == 0, "the partial page at the array's end was advised");
      munmap(raw, span);
    }
    const int before = advised(0);
    EXPECT(sl_advise_huge_pages((void *)(UINTPTR_MAX - 15), 8) == SL_OK, "top: %s",
           sl_last_error());
    EXPECT(advised(0) == before, "an array at the top of the address space advised %d mappings",
           advised(0) - before);
  }

  if (failures) fprintf(stderr, "test_scratch: %d failure(s)\n", failures);
  else printf("test_scratch: ok\n");
  return failures ? 1 : 0;
}
