/*
 * settle.c — settlement arithmetic for the market (plexus/market.h).
 *
 * Pure and overflow-checked: the ledger's market contract and the
 * requester's scheduler run the same functions, so they agree on every
 * amount.  The invariant is paid <= escrow; px_settle_pay refuses, and
 * leaves the state unchanged, rather than cross it.  Slashing splits an
 * amount three ways by basis points; the rounding remainder is burned so
 * the parts always sum to the whole (no value is created or lost).
 */
#include <stdint.h>

#include "plexus/market.h"
#include "base/px_internal.h"

int px_settle_shard_amount(uint64_t price, uint64_t work, uint64_t *out) {
  *out = 0;
  if (work && price > UINT64_MAX / work) return PX_ERANGE;
  *out = price * work;
  return 0;
}

int px_settle_pay(px_settle_t *s, uint64_t amount) {
  if (s->paid > s->escrow) return PX_ESTATE; /* corrupt state */
  if (amount > s->escrow - s->paid) return PX_EFUNDS;
  s->paid += amount;
  return 0;
}

uint64_t px_settle_refund(const px_settle_t *s) {
  return s->paid >= s->escrow ? 0 : s->escrow - s->paid;
}

/* floor(a * bps / 10000) without overflow (bps <= 10000). */
static uint64_t mul_bps(uint64_t a, uint32_t bps) {
  return (a / PX_MARKET_BPS) * bps + (a % PX_MARKET_BPS) * bps / PX_MARKET_BPS;
}

int px_slash_split(uint64_t amount, const px_slash_params_t *p, uint64_t *burn,
                   uint64_t *winner, uint64_t *requester) {
  *burn = *winner = *requester = 0;
  if (!p || p->burn_bps > PX_MARKET_BPS || p->winner_bps > PX_MARKET_BPS ||
      p->requester_bps > PX_MARKET_BPS ||
      p->burn_bps + p->winner_bps + p->requester_bps != PX_MARKET_BPS)
    return PX_EINVAL;
  *winner = mul_bps(amount, p->winner_bps);
  *requester = mul_bps(amount, p->requester_bps);
  *burn = amount - *winner - *requester;
  return 0;
}
