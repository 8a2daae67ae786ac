/*
 * time_rng.c — clocks and the seeded deterministic RNG.
 *
 * The RNG is xoshiro256** (Blackman & Vigna), seeded through splitmix64 as
 * its authors recommend.  It is pure integer arithmetic, so a seed gives the
 * same stream on every platform: the simulator and seeded shuffles rely on
 * that.  It is not cryptographic; keys come from libsodium.
 */
#include <string.h>
#include <time.h>

#include "base/px_internal.h"

uint64_t px_time_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t px_time_mono_ms(void) { return px_time_mono_ns() / 1000000ull; }

uint64_t px_time_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void px_rng_seed(px_rng_t *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t px_rng_next(px_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t px_rng_below(px_rng_t *r, uint64_t bound) {
  if (bound == 0) return 0;
  /* Rejection sampling: discard the top partial range. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  uint64_t v;
  do {
    v = px_rng_next(r);
  } while (v >= limit);
  return v % bound;
}

void px_rng_fill(px_rng_t *r, void *out, size_t n) {
  uint8_t *p = out;
  while (n >= 8) {
    px_put_u64le(p, px_rng_next(r));
    p += 8;
    n -= 8;
  }
  if (n) {
    uint8_t tmp[8];
    px_put_u64le(tmp, px_rng_next(r));
    memcpy(p, tmp, n);
  }
}
