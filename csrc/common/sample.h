/*
 * sample.h — uniform random subsets drawn on the host, shared by the CPU and CUDA libraries so
 * that one seed gives the same positions on either (sl_sample_absent). Not part of the ABI.
 */
#ifndef SL_SAMPLE_H
#define SL_SAMPLE_H

#include <stdint.h>

#include "sparselinear.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ranks[0..k) = k distinct values drawn uniformly from [0, universe), sorted ascending
 * (0 <= k <= universe). Deterministic in `seed` (xoshiro256** seeded by splitmix64). Draws the
 * smaller of the subset and its complement. SL_E_OUT_OF_MEMORY (reported as `fn`) when its
 * scratch cannot be allocated.
 */
sl_status sl_draw_ranks(const char *fn, int64_t universe, int64_t k, uint64_t seed,
                        uint64_t *ranks);

#ifdef __cplusplus
}
#endif

#endif /* SL_SAMPLE_H */
