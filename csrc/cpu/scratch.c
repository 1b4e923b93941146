/*
 * scratch.c — working memory for the kernels, cached between calls on 2 MiB pages.
 *
 * Why: a batch-64 kernel on a 50000-wide layer gathers 256-byte rows at random from a 12.8 MB
 * feature-major tile. On 4 KiB pages that tile spans 3,125 pages, more than the second-level
 * TLB holds (3,072 entries on this AMD Zen 4), so nearly every gather also walks the page
 * table: the forward ran at 12-17 ms; on 2 MiB pages (7 TLB entries) it runs at about half
 * that (bench/RESULTS.md). Linux gives 2 MiB pages to an anonymous mapping advised with
 * MADV_HUGEPAGE when it is 2 MiB aligned, in "madvise" and "always" THP modes (the default on
 * most distributions); elsewhere the advice is ignored and the block works as before.
 *
 * Huge pages are faulted in (zeroed) once, so large blocks are kept for the next call: up to
 * SLOTS blocks and CACHE_LIMIT bytes in all (a 50000-wide layer at batch 64 needs ~26 MB;
 * a 1M-wide one ~512 MB, which is mapped and unmapped per call instead). Small blocks come
 * from malloc, which reuses its heap without faults.
 */
#include "scratch.h"

#include "sparselinear.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ALIGN 64
#define HUGE ((size_t)2 << 20)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SL_ASAN)
#define LARGE INT64_MAX /* everything from malloc, so AddressSanitizer guards every block */
#else
#define LARGE ((int64_t)1 << 20) /* blocks from here up are mapped on huge pages */
#endif
#define CACHE_LIMIT ((size_t)256 << 20) /* bytes kept mapped between calls, at most */
#define SLOTS 4

/* Every block starts with this header, ALIGN bytes before the pointer handed out. */
typedef struct {
  size_t mapped; /* bytes of the mapping (0: from malloc, `base` is malloc's pointer) */
  void *base;
  int64_t asked; /* bytes the caller asked for, for sl_scratch_peak_bytes */
} header;

typedef struct {
  char *block; /* the pointer handed out, or NULL */
  size_t mapped;
  int busy;
} slot;

static slot slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static header *header_of(void *p) { return (header *)((char *)p - ALIGN); }

/* Bytes asked for by the blocks held now, and the most held at once since the last reset:
 * what the memory model's kernel-scratch estimate (lib/nn/memory.ts) predicts, so that a test
 * can hold the two together. Atomics, not the lock: small blocks never take it. */
static int64_t held_bytes;
static int64_t peak_bytes;

/* Counts a block handed out (its header written) and returns it. */
static char *hand_out(char *block, int64_t bytes) {
  header_of(block)->asked = bytes;
  const int64_t now = __atomic_add_fetch(&held_bytes, bytes, __ATOMIC_RELAXED);
  int64_t peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
  while (now > peak &&
         !__atomic_compare_exchange_n(&peak_bytes, &peak, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return block;
}

int64_t sl_scratch_peak_bytes(int32_t reset) {
  const int64_t peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
  if (reset) __atomic_store_n(&peak_bytes, __atomic_load_n(&held_bytes, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  return peak;
}

/* A fresh 2 MiB-aligned mapping of `mapped` bytes (a multiple of HUGE), advised huge. */
static char *map_huge(size_t mapped) {
  char *raw = mmap(NULL, mapped + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *start = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
  if (start > raw) munmap(raw, (size_t)(start - raw));
  size_t tail = (size_t)(raw + mapped + HUGE - (start + mapped));
  if (tail > 0) munmap(start + mapped, tail);
#ifdef MADV_HUGEPAGE
  madvise(start, mapped, MADV_HUGEPAGE);
#endif
  header *h = (header *)start;
  h->mapped = mapped;
  h->base = start;
  return start + ALIGN;
}

static void unmap(char *block) {
  header *h = header_of(block);
  munmap(h->base, h->mapped);
}

void *sl_scratch_get(int64_t bytes) {
  if (bytes < 0 || (uint64_t)bytes > SIZE_MAX / 2) return NULL;
  if (bytes < LARGE) {
    char *base = malloc((size_t)bytes + 2 * ALIGN);
    if (base == NULL) return NULL;
    char *block = (char *)(((uintptr_t)base + 2 * ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    header *h = header_of(block);
    h->mapped = 0;
    h->base = base;
    return hand_out(block, bytes);
  }
  const size_t mapped = ((size_t)bytes + ALIGN + HUGE - 1) & ~(HUGE - 1);
  char *found = NULL;
  pthread_mutex_lock(&lock);
  int best = -1;
  for (int i = 0; i < SLOTS; i++) /* the smallest idle cached block that is big enough */
    if (slots[i].block && !slots[i].busy && slots[i].mapped >= mapped &&
        (best < 0 || slots[i].mapped < slots[best].mapped))
      best = i;
  if (best >= 0) {
    slots[best].busy = 1;
    found = slots[best].block;
  }
  pthread_mutex_unlock(&lock);
  if (found == NULL) found = map_huge(mapped);
  return found != NULL ? hand_out(found, bytes) : NULL;
}

void sl_scratch_put(void *p) {
  if (p == NULL) return;
  header *h = header_of(p);
  __atomic_sub_fetch(&held_bytes, h->asked, __ATOMIC_RELAXED);
  if (h->mapped == 0) {
    free(h->base);
    return;
  }
  char *block = p;
  char *evict = NULL;
  pthread_mutex_lock(&lock);
  int i = 0;
  for (; i < SLOTS; i++)
    if (slots[i].block == block) break;
  if (i < SLOTS) {
    slots[i].busy = 0; /* a cached block comes back */
  } else {
    /* Keep it if it fits the limit, evicting idle smaller blocks as needed. */
    size_t kept = 0;
    for (int j = 0; j < SLOTS; j++) kept += slots[j].block ? slots[j].mapped : 0;
    int victim = -1;
    for (int j = 0; j < SLOTS; j++)
      if (!slots[j].block) {
        victim = j;
        break;
      }
    if (victim < 0)
      for (int j = 0; j < SLOTS; j++)
        if (!slots[j].busy && slots[j].mapped < h->mapped &&
            (victim < 0 || slots[j].mapped < slots[victim].mapped))
          victim = j;
    if (victim >= 0) kept -= slots[victim].block ? slots[victim].mapped : 0;
    if (victim >= 0 && kept + h->mapped <= CACHE_LIMIT) {
      evict = slots[victim].block;
      slots[victim] = (slot){block, h->mapped, 0};
    } else {
      evict = block;
    }
  }
  pthread_mutex_unlock(&lock);
  if (evict != NULL) unmap(evict);
}
