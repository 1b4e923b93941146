/*
 * sample.c — uniform random subsets drawn on the host (see sample.h).
 */
#include "sample.h"

#include <stdlib.h>

#include "internal.h"
#include "radix_sort.h"

typedef struct {
  uint64_t s[4];
} rng256;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t rng_next(rng256 *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl64(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

/* Uniform integer in [0, bound), bound >= 1, without bias (Lemire's multiply-and-reject). */
static uint64_t rng_below(rng256 *r, uint64_t bound) {
  unsigned __int128 m = (unsigned __int128)rng_next(r) * bound;
  uint64_t low = (uint64_t)m;
  if (low < bound) {
    const uint64_t reject_below = (0 - bound) % bound;
    while (low < reject_below) {
      m = (unsigned __int128)rng_next(r) * bound;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

/* Sorts a[0..n) and removes repeats; returns the number of distinct values. */
static int64_t sort_unique(uint64_t *a, int64_t n) {
  if (n == 0) return 0;
  sl_sort_u64(a, n);
  int64_t m = 1;
  for (int64_t i = 1; i < n; i++)
    if (a[i] != a[m - 1]) a[m++] = a[i];
  return m;
}

/*
 * m distinct values drawn uniformly from [0, universe) (m <= universe / 2 + 1), sorted. Draws
 * with replacement and tops up the repeats; every step is invariant under relabelling the
 * universe, so the resulting set is uniform over the m-subsets.
 */
static void distinct_sorted(rng256 *r, uint64_t universe, int64_t m, uint64_t *out) {
  int64_t have = 0;
  while (have < m) {
    for (int64_t i = have; i < m; i++) out[i] = rng_below(r, universe);
    have = sort_unique(out, m);
  }
}

sl_status sl_draw_ranks(const char *fn, int64_t universe, int64_t k, uint64_t seed,
                        uint64_t *ranks) {
  /* Draw the smaller of the chosen set and its complement. */
  const int complement = k > universe / 2;
  const int64_t m = complement ? universe - k : k;
  uint64_t *excluded = NULL;
  if (complement) {
    excluded = malloc((size_t)(m > 0 ? m : 1) * sizeof *excluded);
    if (excluded == NULL)
      return sl_fail(SL_E_OUT_OF_MEMORY, fn, "cannot allocate scratch for k = %lld samples",
                     (long long)k);
  }
  uint64_t sm = seed;
  rng256 rng = {{splitmix64(&sm), splitmix64(&sm), splitmix64(&sm), splitmix64(&sm)}};
  if (!complement) {
    distinct_sorted(&rng, (uint64_t)universe, k, ranks);
  } else {
    distinct_sorted(&rng, (uint64_t)universe, m, excluded);
    int64_t j = 0, e = 0;
    for (int64_t v = 0; v < universe; v++) {
      if (e < m && excluded[e] == (uint64_t)v) e++;
      else ranks[j++] = (uint64_t)v;
    }
  }
  free(excluded);
  return SL_OK;
}
