/*
 * radix_sort.h — ascending sort of 64-bit keys, shared by the CPU and CUDA libraries' host code
 * (the sampler's ranks, the grown positions of a drop + grow). Not part of the ABI.
 */
#ifndef SL_RADIX_SORT_H
#define SL_RADIX_SORT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sorts a[0..n) ascending. Never fails: without memory for its buffer it falls back to qsort. */
void sl_sort_u64(uint64_t *a, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* SL_RADIX_SORT_H */
