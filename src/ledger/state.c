/*
 * state.c — the ledger state: a journaled key-value map over the sparse
 * Merkle tree (smt.c), plus the chain metadata that is not in the map.
 *
 * Every write goes through ledger_put/ledger_del, which first record the
 * key's previous value in a journal.  A savepoint is just the journal
 * length: ledger_revert(s, mark) undoes entries back to it, newest first.
 * That gives the two rollbacks the ledger needs:
 *  - a transaction whose contract procedure fails: its writes are undone,
 *    while the fee and nonce written before the savepoint stay;
 *  - a block that cannot be applied (out of memory mid-block): everything
 *    back to the block's start, so apply_block is all-or-nothing.
 * The journal of the last applied block is also the list of keys the store
 * must write in that block's LMDB transaction.
 *
 * Layout of the map (first byte = owning contract id, docs/ledger.md):
 *   00 'P'            chain id + params          (core)
 *   00 'S'            supply: genesis, emitted, burned (core)
 *   01 'A' pk         account: balance, nonce    (token)
 *   02 'S' pk         stake + unbonding entries  (staking)
 *   02 'V' pk         validator record           (staking)
 *   02 'L'            registered validator pks, sorted (staking)
 *   02 'U' be64(h)    pks with unbonding maturing at height h (staking)
 *   02 'H' / 'I'      recorded validator sets for evidence (slashing.c)
 *   02 'E' / 'J'      slashed-evidence markers, jailed validators
 *
 * Not in the map (chain metadata, persisted by the store's meta table):
 * height, time, last block hash, last results hash, app hash.
 */
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market_chain.h"
#include "plexus/session_chain.h"
#include "plexus/upow_chain.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

px_ledger_state_t *ledger_state_new(void) {
  px_ledger_state_t *s = px_calloc(1, sizeof *s);
  if (s) smt_init(&s->smt);
  return s;
}

static void journal_entry_free(journal_entry_t *e) {
  px_free(e->key);
  px_free(e->old);
}

void ledger_journal_clear(px_ledger_state_t *s) {
  for (size_t i = 0; i < s->n_journal; i++)
    journal_entry_free(&s->journal[i]);
  s->n_journal = 0;
}

void px_ledger_state_free(px_ledger_state_t *s) {
  if (!s) return;
  ledger_journal_clear(s);
  px_free(s->journal);
  smt_release(&s->smt);
  px_free(s);
}

int px_ledger_state_clone(const px_ledger_state_t *s, px_ledger_state_t **out) {
  if (!s || !out) return PX_EINVAL;
  *out = NULL;
  px_ledger_state_t *c = ledger_state_new();
  if (!c) return PX_ENOMEM;
  int rc = smt_clone(&s->smt, &c->smt);
  if (rc) {
    px_ledger_state_free(c);
    return rc;
  }
  memcpy(c->chain_id, s->chain_id, sizeof c->chain_id);
  c->params = s->params;
  c->height = s->height;
  c->last_time = s->last_time;
  memcpy(c->last_block_hash, s->last_block_hash, PX_HASH_LEN);
  memcpy(c->last_results_hash, s->last_results_hash, PX_HASH_LEN);
  memcpy(c->app_hash, s->app_hash, PX_HASH_LEN);
  *out = c;
  return 0;
}

/* ---- journaled writes ---------------------------------------------------- */

static int journal_push(px_ledger_state_t *s, const uint8_t *key, size_t klen) {
  if (s->n_journal == s->cap_journal) {
    size_t cap = s->cap_journal ? s->cap_journal * 2 : 64;
    journal_entry_t *j = px_realloc(s->journal, cap * sizeof *j);
    if (!j) return PX_ENOMEM;
    s->journal = j;
    s->cap_journal = cap;
  }
  journal_entry_t *e = &s->journal[s->n_journal];
  memset(e, 0, sizeof *e);
  e->key = px_malloc(klen);
  if (!e->key) return PX_ENOMEM;
  memcpy(e->key, key, klen);
  e->klen = klen;
  const uint8_t *old;
  size_t oldlen;
  if (smt_get(&s->smt, key, klen, &old, &oldlen) == 0) {
    e->old = px_malloc(oldlen ? oldlen : 1);
    if (!e->old) {
      px_free(e->key);
      return PX_ENOMEM;
    }
    if (oldlen) memcpy(e->old, old, oldlen);
    e->oldlen = oldlen;
  }
  s->n_journal++;
  return 0;
}

static void journal_pop(px_ledger_state_t *s) {
  journal_entry_free(&s->journal[--s->n_journal]);
}

int ledger_put(px_ledger_state_t *s, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen) {
  int rc = journal_push(s, key, klen);
  if (rc) return rc;
  rc = smt_put(&s->smt, key, klen, val, vlen);
  if (rc) journal_pop(s);
  return rc;
}

int ledger_del(px_ledger_state_t *s, const uint8_t *key, size_t klen) {
  if (smt_get(&s->smt, key, klen, NULL, NULL) != 0) return 0;
  int rc = journal_push(s, key, klen);
  if (rc) return rc;
  return smt_del(&s->smt, key, klen);
}

void ledger_revert(px_ledger_state_t *s, size_t mark) {
  while (s->n_journal > mark) {
    journal_entry_t *e = &s->journal[s->n_journal - 1];
    if (e->old) {
      /* Restoring a value that was there before cannot need more memory
       * than the tree once held, but smt_put may still allocate; a failure
       * here would break all-or-nothing, so it is treated as fatal. */
      if (smt_put(&s->smt, e->key, e->klen, e->old, e->oldlen) != 0) {
        PX_LOGE("ledger", "out of memory while rolling back state");
        abort();
      }
    } else {
      smt_del(&s->smt, e->key, e->klen);
    }
    journal_pop(s);
  }
}

size_t ledger_n_changes(const px_ledger_state_t *s) { return s->n_journal; }

void ledger_change(const px_ledger_state_t *s, size_t i, const uint8_t **key,
                   size_t *klen) {
  *key = s->journal[i].key;
  *klen = s->journal[i].klen;
}

/* ---- contexts ------------------------------------------------------------ */

int ctx_get(const px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen,
            const uint8_t **val, size_t *vlen) {
  return smt_get(&ctx->s->smt, key, klen, val, vlen);
}

int ctx_put(px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen,
            const uint8_t *val, size_t vlen) {
  if (klen == 0 || key[0] != ctx->ns) return PX_EPERM;
  return ledger_put(ctx->s, key, klen, val, vlen);
}

int ctx_del(px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen) {
  if (klen == 0 || key[0] != ctx->ns) return PX_EPERM;
  return ledger_del(ctx->s, key, klen);
}

/* ---- params and supply (core namespace) ---------------------------------- */

static const uint8_t k_params_key[2] = {PX_CONTRACT_CORE, KEY_CORE_PARAMS};
static const uint8_t k_supply_key[2] = {PX_CONTRACT_CORE, KEY_CORE_SUPPLY};

void px_ledger_params_default(px_ledger_params_t *p) {
  memset(p, 0, sizeof *p);
  p->fee_base = 100;
  p->fee_per_byte = 1;
  /* 64 KiB: a JOB_COMMIT carries a full PX_MARKET_COMMIT_BATCH (256
   * commitments, ~52 KB) and a JOB_SETTLE ~1,300 entries; at 4096 a
   * JOB_COMMIT held 19 and a small-shard job needed a tx per 19 shards */
  p->max_tx_size = 65536;
  p->max_block_txs = 10000;
  p->unbonding_blocks = 100;
  p->min_stake = 1000000;
  p->power_unit = 1000;
  p->max_validators = 100;
  p->emission_initial = 1000000;
  p->emission_halving = 1000000;
  p->slash_fraction_bps = 500; /* 5%, as Cosmos' double-sign slash */
}

int px_ledger_params_check(const px_ledger_params_t *p) {
  if (!p) return PX_EINVAL;
  if (p->max_tx_size < 256 || p->max_tx_size > PX_LEDGER_TX_MAX_SIZE)
    return PX_EINVAL;
  if (p->max_block_txs < 1 || p->max_block_txs > PX_LEDGER_BLOCK_MAX_TXS)
    return PX_EINVAL;
  if (p->unbonding_blocks < 1 || p->power_unit < 1 || p->min_stake < 1)
    return PX_EINVAL;
  if (p->max_validators < 1 || p->max_validators > PX_LEDGER_MAX_VALIDATORS)
    return PX_EINVAL;
  if (p->slash_fraction_bps > PX_LEDGER_BPS) return PX_EINVAL;
  return 0;
}

static void write_params(px_writer_t *w, const px_ledger_params_t *p) {
  px_writer_u64(w, p->fee_base);
  px_writer_u64(w, p->fee_per_byte);
  px_writer_u32(w, p->max_tx_size);
  px_writer_u32(w, p->max_block_txs);
  px_writer_u64(w, p->unbonding_blocks);
  px_writer_u64(w, p->min_stake);
  px_writer_u64(w, p->power_unit);
  px_writer_u32(w, p->max_validators);
  px_writer_u64(w, p->emission_initial);
  px_writer_u64(w, p->emission_halving);
  px_writer_u32(w, p->slash_fraction_bps);
}

void ledger_write_params(px_writer_t *w, const px_ledger_params_t *p) {
  write_params(w, p);
}

void ledger_read_params(px_reader_t *r, px_ledger_params_t *p) {
  p->fee_base = px_reader_u64(r);
  p->fee_per_byte = px_reader_u64(r);
  p->max_tx_size = px_reader_u32(r);
  p->max_block_txs = px_reader_u32(r);
  p->unbonding_blocks = px_reader_u64(r);
  p->min_stake = px_reader_u64(r);
  p->power_unit = px_reader_u64(r);
  p->max_validators = px_reader_u32(r);
  p->emission_initial = px_reader_u64(r);
  p->emission_halving = px_reader_u64(r);
  p->slash_fraction_bps = px_reader_u32(r);
  if (!r->err && px_ledger_params_check(p) != 0) px_reader_fail(r, PX_EDECODE);
}

int ledger_encode_params(const char *chain_id, const px_ledger_params_t *p,
                         px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_str(&w, chain_id);
  write_params(&w, p);
  return px_writer_finish(&w);
}

int ledger_load_params(px_ledger_state_t *s) {
  const uint8_t *v;
  size_t n;
  if (smt_get(&s->smt, k_params_key, sizeof k_params_key, &v, &n) != 0)
    return PX_EIO;
  px_reader_t r;
  px_reader_init(&r, v, n);
  px_reader_str(&r, s->chain_id, sizeof s->chain_id);
  ledger_read_params(&r, &s->params);
  return px_reader_finish(&r) ? PX_EIO : 0;
}

int ledger_supply_get(const px_ledger_state_t *s, ledger_supply_t *out) {
  const uint8_t *v;
  size_t n;
  memset(out, 0, sizeof *out);
  if (smt_get(&s->smt, k_supply_key, sizeof k_supply_key, &v, &n) != 0)
    return 0;
  if (n != 24) return PX_EIO;
  out->genesis = px_get_u64le(v);
  out->emitted = px_get_u64le(v + 8);
  out->burned = px_get_u64le(v + 16);
  return 0;
}

int ledger_supply_put(px_ledger_state_t *s, const ledger_supply_t *v) {
  uint8_t b[24];
  px_put_u64le(b, v->genesis);
  px_put_u64le(b + 8, v->emitted);
  px_put_u64le(b + 16, v->burned);
  return ledger_put(s, k_supply_key, sizeof k_supply_key, b, sizeof b);
}

uint64_t px_ledger_emission(const px_ledger_params_t *p, uint64_t height) {
  if (!p || height == 0) return 0;
  if (p->emission_halving == 0) return p->emission_initial;
  uint64_t halvings = (height - 1) / p->emission_halving;
  return halvings >= 64 ? 0 : p->emission_initial >> halvings;
}

/* ---- genesis -> state ------------------------------------------------------
 */

int px_ledger_state_from_genesis(const px_genesis_t *g,
                                 px_ledger_state_t **out) {
  if (!g || !out) return PX_EINVAL;
  *out = NULL;
  int rc = px_genesis_check(g);
  if (rc) return rc;
  px_ledger_state_t *s = ledger_state_new();
  if (!s) return PX_ENOMEM;
  memcpy(s->chain_id, g->chain_id, sizeof s->chain_id);
  s->params = g->params;
  px_buf_t b;
  px_buf_init(&b, 0);
  rc = ledger_encode_params(g->chain_id, &g->params, &b);
  if (!rc) rc = ledger_put(s, k_params_key, sizeof k_params_key, b.data, b.len);
  px_buf_release(&b);
  ledger_supply_t sup = {0, 0, 0};
  for (size_t i = 0; !rc && i < g->n_accounts; i++) {
    const px_genesis_account_t *a = &g->accounts[i];
    token_account_t ta = {a->balance, 0};
    rc = token_account_put(s, a->pk, &ta);
    if (!rc && a->stake) {
      stake_record_t sr;
      memset(&sr, 0, sizeof sr);
      sr.stake = a->stake;
      rc = staking_record_put(s, a->pk, &sr);
    }
    if (!rc) rc = u64_add(sup.genesis, a->balance, &sup.genesis);
    if (!rc) rc = u64_add(sup.genesis, a->stake, &sup.genesis);
  }
  for (size_t i = 0; !rc && i < g->n_validators; i++)
    rc = staking_register(s, g->validators[i].pk, g->validators[i].moniker, 1,
                          0);
  if (!rc) rc = ledger_supply_put(s, &sup);
  if (!rc) rc = slashing_record_valset(s, 1);
  if (!rc) rc = px_genesis_hash(g, s->last_block_hash);
  if (!rc) rc = px_ledger_results_hash(NULL, 0, s->last_results_hash);
  if (rc) {
    px_ledger_state_free(s);
    return rc;
  }
  ledger_journal_clear(s);
  s->height = 0;
  s->last_time = g->genesis_time;
  smt_root(&s->smt, s->app_hash);
  *out = s;
  return 0;
}

/* ---- read access --------------------------------------------------------- */

uint64_t px_ledger_height(const px_ledger_state_t *s) { return s->height; }
const char *px_ledger_chain_id(const px_ledger_state_t *s) {
  return s->chain_id;
}
const px_ledger_params_t *px_ledger_params(const px_ledger_state_t *s) {
  return &s->params;
}
void px_ledger_app_hash(const px_ledger_state_t *s, uint8_t out[PX_HASH_LEN]) {
  memcpy(out, s->app_hash, PX_HASH_LEN);
}
void px_ledger_last_block_hash(const px_ledger_state_t *s,
                               uint8_t out[PX_HASH_LEN]) {
  memcpy(out, s->last_block_hash, PX_HASH_LEN);
}
uint64_t px_ledger_last_time(const px_ledger_state_t *s) {
  return s->last_time;
}

int px_ledger_get(const px_ledger_state_t *s, const void *key, size_t klen,
                  const uint8_t **val, size_t *vlen) {
  if (!s || !key || klen == 0) return PX_EINVAL;
  return smt_get(&s->smt, key, klen, val, vlen);
}

int px_ledger_prove(const px_ledger_state_t *s, const void *key, size_t klen,
                    px_smt_proof_t *proof) {
  if (!s || !key || klen == 0 || !proof) return PX_EINVAL;
  return smt_prove(&s->smt, key, klen, proof);
}

size_t px_ledger_key_account(const uint8_t pk[PX_PK_LEN], uint8_t *out) {
  out[0] = PX_CONTRACT_TOKEN;
  out[1] = KEY_TOKEN_ACCOUNT;
  memcpy(out + 2, pk, PX_PK_LEN);
  return 2 + PX_PK_LEN;
}

size_t px_ledger_key_stake(const uint8_t pk[PX_PK_LEN], uint8_t *out) {
  out[0] = PX_CONTRACT_STAKING;
  out[1] = KEY_STAKING_STAKE;
  memcpy(out + 2, pk, PX_PK_LEN);
  return 2 + PX_PK_LEN;
}

int px_ledger_account(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      px_account_t *out) {
  if (!s || !pk || !out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  token_account_t ta;
  stake_record_t sr;
  int rc = token_account_get(s, pk, &ta);
  if (!rc) rc = staking_record_get(s, pk, &sr);
  if (rc) return rc;
  out->balance = ta.balance;
  out->nonce = ta.nonce;
  out->stake = sr.stake;
  out->n_unbonding = sr.n;
  for (uint32_t i = 0; i < sr.n; i++) {
    out->entries[i] = sr.e[i];
    out->unbonding += sr.e[i].amount; /* bounded by the supply check */
  }
  return 0;
}

typedef struct {
  uint64_t sum;
  int err;
} supply_acc_t;

static int supply_visit(void *ud, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen) {
  supply_acc_t *acc = ud;
  (void)val;
  (void)vlen;
  /* uPoW deposits held by the open epoch's valid solutions (04 'D'). */
  if (klen == 2 && key[0] == PX_CONTRACT_UPOW && key[1] == 'D') {
    if (vlen != 8) return acc->err = PX_EIO;
    return acc->err = u64_add(acc->sum, px_get_u64le(val), &acc->sum);
  }
  if (key[0] == PX_CONTRACT_SESSION) { /* open channels' deposit - claimed */
    uint64_t held;
    int erc = session_channel_held(key, klen, val, vlen, &held);
    if (!erc) erc = u64_add(acc->sum, held, &acc->sum);
    if (erc) acc->err = erc;
    return erc;
  }
  if (klen != 2 + PX_PK_LEN) return 0;
  if (key[0] == PX_CONTRACT_MARKET) { /* open escrow held by job records */
    uint64_t held;
    int erc = market_job_escrow_held(key, klen, val, vlen, &held);
    if (!erc) erc = u64_add(acc->sum, held, &acc->sum);
    if (erc) acc->err = erc;
    return erc;
  }
  uint8_t pk[PX_PK_LEN];
  memcpy(pk, key + 2, PX_PK_LEN);
  int rc = 0;
  if (key[0] == PX_CONTRACT_TOKEN && key[1] == KEY_TOKEN_ACCOUNT) {
    token_account_t ta;
    rc = token_account_get_raw(val, vlen, &ta);
    if (!rc) rc = u64_add(acc->sum, ta.balance, &acc->sum);
  } else if (key[0] == PX_CONTRACT_STAKING && key[1] == KEY_STAKING_STAKE) {
    stake_record_t sr;
    rc = staking_record_decode(val, vlen, &sr);
    if (!rc) rc = u64_add(acc->sum, sr.stake, &acc->sum);
    for (uint32_t i = 0; !rc && i < sr.n; i++)
      rc = u64_add(acc->sum, sr.e[i].amount, &acc->sum);
  }
  if (rc) acc->err = rc;
  return rc;
}

int px_ledger_supply(const px_ledger_state_t *s, uint64_t *actual,
                     uint64_t *expected) {
  if (!s || !actual || !expected) return PX_EINVAL;
  supply_acc_t acc = {0, 0};
  smt_foreach(&s->smt, supply_visit, &acc);
  if (acc.err) return acc.err;
  ledger_supply_t sup;
  int rc = ledger_supply_get(s, &sup);
  if (rc) return rc;
  uint64_t e;
  if (u64_add(sup.genesis, sup.emitted, &e) || e < sup.burned) return PX_ERANGE;
  *actual = acc.sum;
  *expected = e - sup.burned;
  return 0;
}

int px_ledger_query(const px_ledger_state_t *s, uint8_t contract,
                    uint8_t method, const uint8_t *args, size_t args_len,
                    px_buf_t *out) {
  if (!s || !out || (!args && args_len)) return PX_EINVAL;
  const px_contract_t *c = ledger_contract(contract);
  if (!c || !c->query) return PX_ENOTFOUND;
  return c->query(s, method, args, args_len, out);
}
