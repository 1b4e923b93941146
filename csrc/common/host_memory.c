/*
 * host_memory.c — advice for large host arrays that the caller allocated (both libraries).
 *
 * Why: the CPU backend's pool gives a training step last step's arrays back, but an array it
 * has none of the length of is a fresh typed array, first touched by the kernel that writes
 * it. On 4 KiB pages that is one page fault per 4 KiB, ~2-9 us each on this VM: writing a
 * fresh 256 MB array took 370-480 ms, and 22-235 ms once the array was advised onto 2 MiB pages
 * (bench/RESULTS.md). V8 takes such arrays from glibc's calloc, which maps an array above the
 * mmap threshold on fresh zeroed pages without touching them, so advice given right after the
 * allocation applies to every page (an array reused from the heap is already faulted in, and
 * the advice changes nothing there).
 */
#include <stdint.h>
#include <sys/mman.h>

#include "internal.h"

#define HUGE ((uintptr_t)2 << 20)

sl_status sl_advise_huge_pages(void *data, int64_t bytes) {
  SL_ENTER();
  SL_CHECK_NONNEG(bytes);
  if (bytes == 0) return SL_OK;
  SL_CHECK_PTR(data);
  if ((uint64_t)bytes > UINTPTR_MAX - (uintptr_t)data)
    return sl_fail(SL_E_OVERFLOW, __func__, "data + bytes overflows the address space");
#ifdef MADV_HUGEPAGE
  /* Only whole 2 MiB pages inside the array: the advice never reaches a neighbour's memory.
   * (Rounding data up must not wrap past the top of the address space: start would be 0, and
   * the advice would reach every mapping of the process.) It is a hint: a system without
   * transparent huge pages refuses it, and that is not an error. */
  if ((uintptr_t)data > UINTPTR_MAX - (HUGE - 1)) return SL_OK;
  const uintptr_t start = ((uintptr_t)data + HUGE - 1) & ~(HUGE - 1);
  const uintptr_t end = ((uintptr_t)data + (uintptr_t)bytes) & ~(HUGE - 1);
  if (end > start) (void)madvise((void *)start, (size_t)(end - start), MADV_HUGEPAGE);
#endif
  return SL_OK;
}
