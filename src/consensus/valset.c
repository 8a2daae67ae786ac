/*
 * valset.c — validator sets and stake-weighted proposer selection.
 *
 * Spec: CometBFT spec/consensus/proposer-selection.md, the weighted round
 * robin with proposer priorities.  One selection step is
 *     for each validator i:  A(i) += VP(i)
 *     prop = argmax A (ties: the smaller public key)
 *     A(prop) -= P
 * and each call first rescales priorities so that max - min <= 2P and then
 * centres them on their average, exactly as CometBFT's
 * IncrementProposerPriority(times) does.  proposer(h, r) is the (r+1)-th
 * step on a copy of the height's set; the set of the next height is the
 * height's set after one step (px_cons_valset_advance), so a validator with
 * k times the power proposes k times as often.
 *
 * Invariants: total power <= PX_CONS_MAX_POWER (INT64_MAX / 8), so 3 * power
 * never overflows in the quorum checks and priorities stay far from the
 * int64 limits; all arithmetic also saturates, as CometBFT's does.
 * Everything is integer-only and deterministic on every platform.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plexus/consensus.h"

#include "base/px_internal.h"

int px_cons_valset_init(px_cons_valset_t *vs, const uint8_t (*pks)[PX_PK_LEN],
                        const uint64_t *powers, uint32_t n) {
  if (!vs || !pks || !powers || n == 0 || n > PX_CONS_MAX_VALIDATORS)
    return PX_EINVAL;
  memset(vs, 0, sizeof *vs);
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (powers[i] == 0) return PX_EINVAL;
    for (uint32_t j = 0; j < i; j++)
      if (memcmp(pks[i], pks[j], PX_PK_LEN) == 0) return PX_EINVAL;
    if (powers[i] > PX_CONS_MAX_POWER ||
        total > (uint64_t)PX_CONS_MAX_POWER - powers[i])
      return PX_ERANGE;
    total += powers[i];
    memcpy(vs->v[i].pk, pks[i], PX_PK_LEN);
    vs->v[i].power = powers[i];
  }
  vs->n = n;
  vs->total = total;
  return 0;
}

int px_cons_valset_find(const px_cons_valset_t *vs,
                        const uint8_t pk[PX_PK_LEN]) {
  for (uint32_t i = 0; i < vs->n; i++)
    if (memcmp(vs->v[i].pk, pk, PX_PK_LEN) == 0) return (int)i;
  return -1;
}

static int64_t add_clip(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
  return a + b;
}

/* Floor division (the result does not depend on C's truncation rules). */
static int64_t div_floor(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

static void rescale_and_center(px_cons_valset_t *vs) {
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (uint32_t i = 0; i < vs->n; i++) {
    lo = PX_MIN(lo, vs->v[i].priority);
    hi = PX_MAX(hi, vs->v[i].priority);
  }
  /* RescalePriorities(2P): priorities stay within 4P of each other. */
  uint64_t diff = (uint64_t)hi - (uint64_t)lo;
  uint64_t window = 2 * vs->total;
  if (diff > window) {
    int64_t ratio = (int64_t)((diff + window - 1) / window);
    for (uint32_t i = 0; i < vs->n; i++)
      vs->v[i].priority /= ratio; /* CometBFT truncates, as C does */
  }
  /* shiftByAvgProposerPriority: |priority| <= 2^62, n <= 128, so the sum
   * fits in 128 bits but not 64; accumulate as (quotient, remainder). */
  int64_t q = 0, rem = 0, n = (int64_t)vs->n;
  for (uint32_t i = 0; i < vs->n; i++) {
    int64_t p = vs->v[i].priority;
    q += div_floor(p, n);
    rem += p - div_floor(p, n) * n;
  }
  int64_t avg = q + div_floor(rem, n);
  for (uint32_t i = 0; i < vs->n; i++)
    vs->v[i].priority = add_clip(vs->v[i].priority, -avg);
}

static uint32_t step_once(px_cons_valset_t *vs) {
  uint32_t best = 0;
  for (uint32_t i = 0; i < vs->n; i++) {
    vs->v[i].priority = add_clip(vs->v[i].priority, (int64_t)vs->v[i].power);
  }
  for (uint32_t i = 1; i < vs->n; i++) {
    const px_cons_validator_t *a = &vs->v[i], *b = &vs->v[best];
    if (a->priority > b->priority ||
        (a->priority == b->priority && memcmp(a->pk, b->pk, PX_PK_LEN) < 0))
      best = i;
  }
  vs->v[best].priority = add_clip(vs->v[best].priority, -(int64_t)vs->total);
  return best;
}

uint32_t px_cons_valset_proposer(const px_cons_valset_t *vs, uint32_t round) {
  /* A copy is ~6 KiB; the caller caches the answer per round. */
  px_cons_valset_t tmp;
  size_t head = offsetof(px_cons_valset_t, v);
  memcpy(&tmp, vs, head + (size_t)vs->n * sizeof vs->v[0]);
  rescale_and_center(&tmp);
  uint32_t prop = 0;
  for (uint64_t i = 0; i <= round; i++)
    prop = step_once(&tmp);
  return prop;
}

void px_cons_valset_advance(px_cons_valset_t *vs) {
  rescale_and_center(vs);
  step_once(vs);
}
