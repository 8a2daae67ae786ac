/*
 * plexus/session_chain.h — the ledger's session contract (contract id 5,
 * src/ledger/session.c; docs/market.md "Sessions and payment channels"):
 * payment channels between a payer (a gateway's wallet) and a market
 * provider, and disputes over an inference session's signed commitment.
 *
 * CHANNEL_OPEN {provider, deposit, expiry_height, salt}: sender = payer;
 *   id = BLAKE2b-256(payer || provider || salt) (px_session_channel_id);
 *   the provider must be a registered market provider; the deposit
 *   (>= 1) is debited from the payer and held by the channel record
 *   (counted by px_ledger_supply); expiry_height must be above the
 *   current height; a used id is refused (PX_EEXIST).
 * CHANNEL_CLAIM {channel_id, cumulative, payer_sig}: sender = the
 *   channel's provider; payer_sig is the payer's px_session_receipt_sign
 *   over (chain id, channel id, cumulative); pays the provider
 *   min(cumulative, deposit) - claimed.  A cumulative that pays nothing
 *   new is refused (PX_ESTATE), so is a closed channel.
 * CHANNEL_CLOSE {channel_id}: by the payer once height >= expiry_height,
 *   or by the provider at any time: refunds deposit - claimed to the
 *   payer; the channel then accepts nothing (PX_ESTATE).
 * SESSION_DISPUTE {commit, tokens, model bytes}: anyone.  The commitment
 *   (mode GENERATE or REPLAY) must verify, tokens must hash to its
 *   tokens_hash, the model bytes must have blob root commit.model and size
 *   commit.model_size, and px_session_macs(cfg, n_tokens) must be within
 *   PX_SESSION_DISPUTE_MAX_MACS (else PX_ELIMIT).  Validators load the
 *   model from the bytes and run px_session_replay_from (checking
 *   tokens[n_prompt + n_forced ..), what the provider vouched for) on a
 *   deterministic one-thread compute context.  A mismatch: the committing
 * provider is slashed by the market's rules (PX_MARKET_SLASH_BPS of its stake;
 * burn PX_MARKET_SLASH_BURN_BPS, PX_MARKET_SLASH_WINNER_BPS to the sender,
 *   PX_MARKET_SLASH_REQUESTER_BPS to the channel's payer — or the sender
 *   when the channel is unknown — its dispute counters updated) and the
 *   verdict is recorded per (session_id, provider), once (PX_EDUP after).
 *   An honest commitment: the tx fails with PX_EPROTO (nothing changes
 *   but the fee).
 *
 * The dispute tx alone may exceed params.max_tx_size, up to
 * PX_LEDGER_TX_MAX_SIZE (2 MiB); builders refuse bigger with PX_ELIMIT.
 *
 * Readers take a state (read-only), as every contract's readers.
 */
#ifndef PLEXUS_SESSION_CHAIN_H
#define PLEXUS_SESSION_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/session.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_CONTRACT_SESSION 5

/* Tx types (contract 5). */
#define PX_TX_CHANNEL_OPEN 0x0501
#define PX_TX_CHANNEL_CLAIM 0x0502
#define PX_TX_CHANNEL_CLOSE 0x0503
#define PX_TX_SESSION_DISPUTE 0x0504

/* Replay work one dispute may ask of every validator (MACs, as
 * px_session_macs counts them). */
#define PX_SESSION_DISPUTE_MAX_MACS (1ull << 30)
/* KV cache a dispute's replay may allocate (2 x layers x seq_len x kv_dim
 * floats): bounds seq_len, which the model file does not. */
#define PX_SESSION_DISPUTE_MAX_KV_BYTES (64ull * 1024 * 1024)
/* Hard size cap of a SESSION_DISPUTE tx (= PX_LEDGER_TX_MAX_SIZE). */
#define PX_SESSION_DISPUTE_TX_MAX (2u * 1024 * 1024)

/* Channel id = BLAKE2b-256(payer || provider || salt). */
void px_session_channel_id(const uint8_t payer[PX_PK_LEN],
                           const uint8_t provider[PX_PK_LEN],
                           const uint8_t salt[32], uint8_t id[32]);

/* ---- payloads (builders and strict decoders) ----------------------------- */

typedef struct {
  uint8_t provider[PX_PK_LEN];
  uint64_t deposit;
  uint64_t expiry_height;
  uint8_t salt[32];
} px_session_open_t;
/* 80 bytes: provider, u64 deposit, u64 expiry_height, salt (deposit and
 * expiry_height >= 1). */
int px_session_payload_open(px_buf_t *out, const px_session_open_t *o);
int px_session_payload_open_decode(const uint8_t *p, size_t n,
                                   px_session_open_t *o);

typedef struct {
  uint8_t channel_id[32];
  uint64_t cumulative;
  uint8_t payer_sig[PX_SIG_LEN];
} px_session_claim_t;
/* 104 bytes: channel_id, u64 cumulative (>= 1), payer_sig. */
int px_session_payload_claim(px_buf_t *out, const px_session_claim_t *c);
int px_session_payload_claim_decode(const uint8_t *p, size_t n,
                                    px_session_claim_t *c);

/* 32 bytes: channel_id. */
int px_session_payload_close(px_buf_t *out, const uint8_t channel_id[32]);
int px_session_payload_close_decode(const uint8_t *p, size_t n,
                                    uint8_t channel_id[32]);

/* SESSION_DISPUTE: u32 commit_len + commit encoding, then commit.n_tokens
 * x i32le tokens, then u32 model_len (== commit.model_size) + the model
 * bytes.  The builder borrows tokens/model; it refuses (PX_ELIMIT, with a
 * log line naming the sizes) a payload that would put the tx over
 * PX_SESSION_DISPUTE_TX_MAX (builder leaves 1 KiB for the tx envelope).
 * The decoder copies tokens and model to the heap (the model 4-byte
 * aligned, as px_llama2c_open_mem wants): release with
 * px_session_dispute_release. */
typedef struct {
  px_session_commit_t commit;
  const int32_t *tokens; /* commit.n_tokens */
  const uint8_t *model;  /* commit.model_size bytes */
  /* internal: owned copies after decode */
  int32_t *tokens_;
  uint8_t *model_;
} px_session_dispute_t;
int px_session_payload_dispute(px_buf_t *out, const px_session_dispute_t *d);
int px_session_payload_dispute_decode(const uint8_t *p, size_t n,
                                      px_session_dispute_t *d);
void px_session_dispute_release(px_session_dispute_t *d); /* zeroed ok */

/* ---- records ---------------------------------------------------------------
 */

typedef enum {
  PX_CHANNEL_OPEN = 1,
  PX_CHANNEL_CLOSED = 2,
} px_channel_state_t;

typedef struct {
  uint8_t id[32];
  uint8_t payer[PX_PK_LEN];
  uint8_t provider[PX_PK_LEN];
  uint64_t deposit;
  uint64_t claimed;       /* paid to the provider so far */
  uint64_t expiry_height; /* the payer may close from this height on */
  uint64_t opened_height;
  uint8_t state;          /* px_channel_state_t */
  uint64_t closed_height; /* 0 while open */
  uint64_t refunded;      /* to the payer at close */
} px_session_channel_t;

/* PX_ENOTFOUND when absent. */
int px_session_chain_channel(const px_ledger_state_t *s, const uint8_t id[32],
                             px_session_channel_t *out);
/* The record bytes (as PX_SESSION_Q_CHANNEL returns them). */
int px_session_channel_decode(const uint8_t *p, size_t n,
                              px_session_channel_t *c);

typedef struct {
  uint64_t height; /* block of the dispute */
  uint8_t sender[PX_PK_LEN];
  uint32_t first_mismatch; /* token index the replay refuted */
  int32_t expected;        /* what sampling gives there (1: BOS) */
  uint64_t slashed;        /* total taken from the provider's stake */
} px_session_verdict_t;

/* The verdict on (session_id, provider); PX_ENOTFOUND if none. */
int px_session_chain_verdict(const px_ledger_state_t *s,
                             const uint8_t session_id[32],
                             const uint8_t provider[PX_PK_LEN],
                             px_session_verdict_t *out);

int px_session_verdict_decode(const uint8_t *p, size_t n,
                              px_session_verdict_t *v);

/* px_ledger_query(s, PX_CONTRACT_SESSION, method, args, n, out): the
 * record bytes, PX_ENOTFOUND when absent. */
#define PX_SESSION_Q_CHANNEL 1 /* args channel_id[32] -> channel record */
#define PX_SESSION_Q_VERDICT 2 /* args session_id[32] || provider pk */

/* Sum over open channels of deposit - claimed (supply term). */
uint64_t px_session_chain_deposits(const px_ledger_state_t *s);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_SESSION_CHAIN_H */
