/*
 * ledger_testutil.h — helpers shared by the ledger unit tests: deterministic
 * keys, a small genesis, and "make + decode + apply" of one block.
 */
#ifndef PX_LEDGER_TESTUTIL_H
#define PX_LEDGER_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"

#define TU_CHAIN "plexus-test"
#define TU_NKEYS 16
#define TU_BALANCE 1000000000ull
#define TU_STAKE 10000000ull

typedef struct {
  px_keypair_t k[TU_NKEYS];
} tu_keys_t;

static inline void tu_keys(tu_keys_t *ks) {
  for (int i = 0; i < TU_NKEYS; i++) {
    uint8_t seed[PX_SEED_LEN];
    memset(seed, 0, sizeof seed);
    seed[0] = (uint8_t)(i + 1);
    if (px_key_from_seed(&ks->k[i], seed) != 0) abort();
  }
}

/* Key 0 is the single validator; keys 1..n-1 hold TU_BALANCE each. */
static inline void tu_genesis(px_genesis_t *g, const tu_keys_t *ks,
                              size_t n_accounts) {
  px_genesis_init(g);
  snprintf(g->chain_id, sizeof g->chain_id, "%s", TU_CHAIN);
  g->genesis_time = 1000;
  g->params.unbonding_blocks = 5;
  g->params.emission_initial = 1000;
  g->params.emission_halving = 10;
  if (px_genesis_add_account(g, ks->k[0].pk, TU_BALANCE, TU_STAKE)) abort();
  if (px_genesis_add_validator(g, ks->k[0].pk, "v0")) abort();
  for (size_t i = 1; i < n_accounts; i++)
    if (px_genesis_add_account(g, ks->k[i].pk, TU_BALANCE, 0)) abort();
}

static inline px_ledger_state_t *tu_state(const tu_keys_t *ks, size_t n) {
  px_genesis_t g;
  px_ledger_state_t *s = NULL;
  tu_genesis(&g, ks, n);
  if (px_ledger_state_from_genesis(&g, &s) != 0) abort();
  px_genesis_release(&g);
  return s;
}

/* A list of encoded txs. */
typedef struct {
  px_buf_t buf[512];
  size_t n;
} tu_txs_t;

static inline void tu_txs_init(tu_txs_t *t) { t->n = 0; }

static inline void tu_txs_release(tu_txs_t *t) {
  for (size_t i = 0; i < t->n; i++)
    px_buf_release(&t->buf[i]);
  t->n = 0;
}

static inline px_buf_t *tu_txs_next(tu_txs_t *t) {
  if (t->n >= 512) abort();
  px_buf_t *b = &t->buf[t->n++];
  px_buf_init(b, 0);
  return b;
}

static inline int tu_add(tu_txs_t *t, const px_keypair_t *kp, uint64_t nonce,
                         uint64_t fee, uint16_t type, const px_buf_t *pl) {
  return px_tx_make(TU_CHAIN, kp, nonce, fee, type, pl ? pl->data : NULL,
                    pl ? pl->len : 0, tu_txs_next(t));
}

static inline int tu_transfer(tu_txs_t *t, const px_keypair_t *from,
                              uint64_t nonce, const uint8_t *to,
                              uint64_t amount, uint64_t fee) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  int rc = px_tx_payload_transfer(&pl, to, amount);
  if (!rc) rc = tu_add(t, from, nonce, fee, PX_TX_TRANSFER, &pl);
  px_buf_release(&pl);
  return rc;
}

static inline int tu_amount_tx(tu_txs_t *t, const px_keypair_t *from,
                               uint64_t nonce, uint16_t type, uint64_t amount,
                               uint64_t fee) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  int rc = px_tx_payload_amount(&pl, amount);
  if (!rc) rc = tu_add(t, from, nonce, fee, type, &pl);
  px_buf_release(&pl);
  return rc;
}

/* Build the next block over s with these txs (proposer, time), return its
 * encoding in out. */
static inline int tu_make(const px_ledger_state_t *s,
                          const px_keypair_t *proposer, const tu_txs_t *t,
                          px_buf_t *out) {
  const uint8_t *p[512];
  size_t l[512];
  for (size_t i = 0; i < t->n; i++) {
    p[i] = t->buf[i].data;
    l[i] = t->buf[i].len;
  }
  return px_ledger_block_make(s, proposer->pk, px_ledger_last_time(s) + 1, p, l,
                              t->n, out);
}

/* make + decode + apply; results (may be NULL) get t->n entries. */
static inline int tu_apply(px_ledger_state_t *s, const px_keypair_t *proposer,
                           const tu_txs_t *t, px_tx_result_t *results) {
  px_buf_t enc;
  px_block_t b;
  px_tx_result_t local[512];
  px_buf_init(&enc, 0);
  int rc = tu_make(s, proposer, t, &enc);
  if (!rc) rc = px_block_decode(enc.data, enc.len, &b);
  if (!rc) {
    rc = px_ledger_apply_block(s, &b, results ? results : local);
    px_block_release(&b);
  }
  px_buf_release(&enc);
  return rc;
}

static inline uint64_t tu_min_fee(const px_buf_t *tx) {
  return 100 + tx->len; /* default fee_base 100, fee_per_byte 1 */
}

#define TU_FEE 1000ull

#endif
