/*
 * scratch.h — working memory for the kernels (feature-major tiles, accumulators). Not ABI.
 */
#ifndef SL_SCRATCH_H
#define SL_SCRATCH_H

#include <stdint.h>

/* A 64-byte aligned block of at least `bytes` (contents undefined), or NULL when out of
 * memory. Give it back with sl_scratch_put. */
void *sl_scratch_get(int64_t bytes);

/* Returns a block from sl_scratch_get (NULL is ignored). */
void sl_scratch_put(void *p);

#endif /* SL_SCRATCH_H */
