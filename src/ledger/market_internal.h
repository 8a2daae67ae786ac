/*
 * market_internal.h — private to the market contract (market.c,
 * market_codec.c, market_dispute.c): state keys, payload decoders the
 * contract shares with the fuzz target, record encoders, and the slash.
 */
#ifndef PX_LEDGER_MARKET_INTERNAL_H
#define PX_LEDGER_MARKET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/market_chain.h"

#include "ledger/ledger_internal.h"

/* State keys (namespace 03, docs/market.md "The market contract"). */
#define KEY_MARKET_PROVIDER 'P' /* 03 'P' pk                  */
#define KEY_MARKET_JOB 'J'      /* 03 'J' job_id              */
#define KEY_MARKET_COMMIT 'C'   /* 03 'C' job_id be32(shard) pk */
#define KEY_MARKET_SLASHED 'X'  /* 03 'X' job_id be32(shard) pk */
#define MARKET_PK_KEY_LEN (2 + PX_PK_LEN)
#define MARKET_JOB_KEY_LEN (2 + PX_HASH_LEN)
#define MARKET_SHARD_KEY_LEN (2 + PX_HASH_LEN + 4 + PX_PK_LEN)

/* Settle payload, decoded (arrays on the heap). */
typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint8_t final;
  size_t n, n_expired;
  px_settle_entry_t *e;
  uint8_t (*expired)[PX_PK_LEN];
} market_settle_t;

#define MARKET_MAX_EXPIRED PX_SCHED_MAX_PROVIDERS

int market_settle_decode(const uint8_t *p, size_t n, market_settle_t *s);
void market_settle_release(market_settle_t *s);
/* JOB_COMMIT payload: *c heap array of *count commitments (px_free). */
int market_commit_decode(const uint8_t *p, size_t n, px_commitment_t **c,
                         size_t *count);

int market_provider_rec_encode(const px_provider_rec_t *r, px_buf_t *out);
int market_job_rec_encode(const px_job_rec_t *r, px_buf_t *out);
int market_commit_rec_encode(const px_commit_rec_t *r, px_buf_t *out);

/* Records in the state (market.c). */
int market_job_get(const px_ledger_state_t *s, const uint8_t id[PX_HASH_LEN],
                   px_job_rec_t *r);
int market_job_put(px_ledger_ctx_t *ctx, const px_job_rec_t *r);
int market_commit_get(const px_ledger_state_t *s,
                      const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                      const uint8_t pk[PX_PK_LEN], px_commit_rec_t *r);
int market_commit_put(px_ledger_ctx_t *ctx, const px_commit_rec_t *r);

/* The money and reputation part of a slash, shared with the session
 * contract (src/ledger/session.c): take PX_MARKET_SLASH_BPS of pk's stake +
 * unbonding, split it burn / winner / requester (a NULL winner's or
 * requester's part is burned), count disputes_lost and slashed_total in
 * pk's provider record (if any; written in the market namespace whatever
 * ctx->ns is).  No marker: the caller keeps its own once-only record.
 * *amount gets the slashed total. */
int market_slash_stake(px_ledger_ctx_t *ctx, const uint8_t pk[PX_PK_LEN],
                       const uint8_t *winner, const uint8_t *requester,
                       uint64_t *amount);
/* Slash `pk` for an offence in job j, shard: PX_MARKET_SLASH_BPS of its
 * stake + unbonding (stake first, then unbonding entries newest first),
 * split burn / winner / requester.  winner NULL: the winner's part is
 * burned.  Counters: disputes_lost++, slashed_total; the winner's
 * disputes_won++ when counted_win.  Marks its commit record lost if there is
 * one.  *amount gets the slashed total. */
int market_slash(px_ledger_ctx_t *ctx, px_job_rec_t *j, uint32_t shard,
                 const uint8_t pk[PX_PK_LEN], const uint8_t *winner,
                 uint64_t *amount);
/* DISPUTE procedure (market_dispute.c). */
int market_dispute_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx);

#endif
