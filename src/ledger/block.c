/*
 * block.c — blocks: encoding, validation and the state transition.
 *
 * Encoding (docs/ledger.md):
 *   u16 tag = PX_LEDGER_TAG_BLOCK, u8 version = 2
 *   str chain_id, u64 height, prev_hash[32], proposer[32], u64 time,
 *   tx_root[32], app_hash[32], results_hash[32],
 *   u32 n_txs, n_txs x bytes(tx encoding),
 *   u32 n_evidence, n_evidence x bytes(consensus EVIDENCE encoding)
 * The block hash is BLAKE2b-256 of the whole encoding (what consensus votes
 * on), so it commits to the evidence as well as the txs.  As in Tendermint,
 * app_hash and results_hash commit to the outcome of the PREVIOUS block, so a
 * proposer never has to execute before proposing.
 *
 * apply_block(h):
 *   1. validate the header against the state (no change on failure);
 *   2. begin_block of every contract (staking releases unbonding at h);
 *   2b. evidence: each piece slashes and jails its validator (slashing.c);
 *   3. emission: px_ledger_emission(params, h) is credited to the proposer
 *      (skipped if it would push total supply past 2^64-1);
 *   4. each tx in order: admission (size, chain id, signature, nonce, fee)
 *      — on failure the result carries the code and nothing changes;
 *      otherwise the fee is burned and the nonce bumped, then the contract
 *      procedure runs under a savepoint and is rolled back if it fails;
 *   5. the validator set for h+1 is recorded when it changed (evidence of
 *      later blocks is verified against it), then the new root, results
 *      hash, block hash and time become the chain metadata.
 * Out-of-memory or a corrupt state record (PX_ENOMEM, PX_EIO) is not a tx
 * outcome: it would differ between nodes, so it aborts the whole block and
 * the journal restores the state exactly.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

/* ---- encoding ------------------------------------------------------------ */

static void write_header(px_writer_t *w, const px_block_header_t *h) {
  px_writer_u16(w, PX_LEDGER_TAG_BLOCK);
  px_writer_u8(w, PX_LEDGER_BLOCK_VERSION);
  px_writer_str(w, h->chain_id);
  px_writer_u64(w, h->height);
  px_writer_fixed(w, h->prev_hash, PX_HASH_LEN);
  px_writer_fixed(w, h->proposer, PX_PK_LEN);
  px_writer_u64(w, h->time);
  px_writer_fixed(w, h->tx_root, PX_HASH_LEN);
  px_writer_fixed(w, h->app_hash, PX_HASH_LEN);
  px_writer_fixed(w, h->results_hash, PX_HASH_LEN);
}

int px_block_encode(const px_block_header_t *h, const uint8_t *const *txs,
                    const size_t *tx_lens, size_t n, px_buf_t *out) {
  return px_block_encode_ev(h, txs, tx_lens, n, NULL, NULL, 0, out);
}

int px_block_encode_ev(const px_block_header_t *h, const uint8_t *const *txs,
                       const size_t *tx_lens, size_t n,
                       const uint8_t *const *evs, const size_t *ev_lens,
                       size_t n_ev, px_buf_t *out) {
  if (!h || !out || (n && (!txs || !tx_lens))) return PX_EINVAL;
  if (n_ev && (!evs || !ev_lens)) return PX_EINVAL;
  if (n > PX_LEDGER_BLOCK_MAX_TXS || h->chain_id[0] == 0) return PX_EINVAL;
  if (n_ev > PX_LEDGER_BLOCK_MAX_EVIDENCE) return PX_EINVAL;
  for (size_t i = 0; i < n_ev; i++) {
    px_cons_evidence_t e;
    if (px_cons_evidence_decode(evs[i], ev_lens[i], &e)) return PX_EINVAL;
  }
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  write_header(&w, h);
  px_writer_u32(&w, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    if (tx_lens[i] > PX_LEDGER_TX_MAX_SIZE) {
      out->len = mark;
      return PX_EINVAL;
    }
    px_writer_bytes(&w, txs[i], tx_lens[i]);
  }
  px_writer_u32(&w, (uint32_t)n_ev);
  for (size_t i = 0; i < n_ev; i++)
    px_writer_bytes(&w, evs[i], ev_lens[i]);
  int rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

void px_block_release(px_block_t *b) {
  if (!b) return;
  px_free(b->txs);
  px_free(b->evidence);
  px_free(b->raw);
  memset(b, 0, sizeof *b);
}

int px_block_decode(const uint8_t *p, size_t len, px_block_t *b) {
  if (!b) return PX_EINVAL;
  memset(b, 0, sizeof *b);
  if (!p && len) return PX_EINVAL;
  b->raw = px_malloc(len ? len : 1);
  if (!b->raw) return PX_ENOMEM;
  if (len) memcpy(b->raw, p, len);
  b->raw_len = len;
  px_reader_t r;
  px_reader_init(&r, b->raw, len);
  px_block_header_t *h = &b->header;
  uint16_t tag = px_reader_u16(&r);
  uint8_t ver = px_reader_u8(&r);
  if (!r.err && tag != PX_LEDGER_TAG_BLOCK) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && ver != PX_LEDGER_BLOCK_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_str(&r, h->chain_id, sizeof h->chain_id);
  if (!r.err && h->chain_id[0] == 0) px_reader_fail(&r, PX_EDECODE);
  h->height = px_reader_u64(&r);
  px_reader_fixed(&r, h->prev_hash, PX_HASH_LEN);
  px_reader_fixed(&r, h->proposer, PX_PK_LEN);
  h->time = px_reader_u64(&r);
  px_reader_fixed(&r, h->tx_root, PX_HASH_LEN);
  px_reader_fixed(&r, h->app_hash, PX_HASH_LEN);
  px_reader_fixed(&r, h->results_hash, PX_HASH_LEN);
  uint32_t n = px_reader_u32(&r);
  /* Each tx takes at least its 4-byte length: bound the allocation by the
   * input before trusting the count. */
  if (!r.err && n > PX_LEDGER_BLOCK_MAX_TXS) px_reader_fail(&r, PX_ETOOBIG);
  if (!r.err && (size_t)n > px_reader_remaining(&r) / 4)
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err && n) {
    b->txs = px_calloc(n, sizeof *b->txs);
    if (!b->txs) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; !r.err && i < n; i++) {
    const uint8_t *tp;
    size_t tl;
    px_reader_bytes(&r, &tp, &tl, PX_LEDGER_TX_MAX_SIZE);
    if (r.err) break;
    int rc = px_tx_decode(tp, tl, &b->txs[i]);
    if (rc) px_reader_fail(&r, rc);
  }
  uint32_t ne = px_reader_u32(&r);
  if (!r.err && ne > PX_LEDGER_BLOCK_MAX_EVIDENCE)
    px_reader_fail(&r, PX_ETOOBIG);
  if (!r.err && (size_t)ne > px_reader_remaining(&r) / 4)
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err && ne) {
    b->evidence = px_calloc(ne, sizeof *b->evidence);
    if (!b->evidence) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; !r.err && i < ne; i++) {
    px_block_evidence_t *e = &b->evidence[i];
    px_reader_bytes(&r, &e->raw, &e->raw_len, PX_LEDGER_TX_MAX_SIZE);
    if (r.err) break;
    int rc = px_cons_evidence_decode(e->raw, e->raw_len, &e->ev);
    if (rc) px_reader_fail(&r, rc);
  }
  int rc = px_reader_finish(&r);
  if (rc) {
    px_block_release(b);
    return rc;
  }
  b->n_txs = n;
  b->n_evidence = ne;
  px_hash(b->hash, b->raw, b->raw_len);
  return 0;
}

/* ---- hashes -------------------------------------------------------------- */

void ledger_result_encode(const px_tx_result_t *r, uint8_t out[44]) {
  memcpy(out, r->tx_hash, PX_HASH_LEN);
  px_put_u32le(out + 32, (uint32_t)r->code);
  px_put_u64le(out + 36, r->fee_paid);
}

static int merkle_over(size_t n, void (*leaf)(const void *, size_t, uint8_t *),
                       const void *items, uint8_t out[PX_HASH_LEN]) {
  if (n == 0) return px_merkle_root(NULL, 0, out);
  uint8_t(*leaves)[PX_HASH_LEN] = px_malloc(n * PX_HASH_LEN);
  if (!leaves) return PX_ENOMEM;
  for (size_t i = 0; i < n; i++)
    leaf(items, i, leaves[i]);
  int rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])leaves, n, out);
  px_free(leaves);
  return rc;
}

static void result_leaf(const void *items, size_t i, uint8_t *out) {
  const px_tx_result_t *r = items;
  uint8_t enc[44];
  ledger_result_encode(&r[i], enc);
  px_merkle_leaf(out, enc, sizeof enc);
}

int px_ledger_results_hash(const px_tx_result_t *r, size_t n,
                           uint8_t out[PX_HASH_LEN]) {
  if (!out || (n && !r)) return PX_EINVAL;
  return merkle_over(n, result_leaf, r, out);
}

typedef struct {
  const uint8_t *const *txs;
  const size_t *lens;
} raw_txs_t;

static void raw_tx_leaf(const void *items, size_t i, uint8_t *out) {
  const raw_txs_t *t = items;
  px_merkle_leaf(out, t->txs[i], t->lens[i]);
}

static void block_tx_leaf(const void *items, size_t i, uint8_t *out) {
  const px_tx_t *txs = items;
  px_merkle_leaf(out, txs[i].raw, txs[i].raw_len);
}

/* ---- proposer ------------------------------------------------------------ */

int px_ledger_block_make(const px_ledger_state_t *s,
                         const uint8_t proposer[PX_PK_LEN], uint64_t time,
                         const uint8_t *const *txs, const size_t *tx_lens,
                         size_t n, px_buf_t *out) {
  return px_ledger_block_make_ev(s, proposer, time, txs, tx_lens, n, NULL, NULL,
                                 0, out);
}

int px_ledger_block_make_ev(const px_ledger_state_t *s,
                            const uint8_t proposer[PX_PK_LEN], uint64_t time,
                            const uint8_t *const *txs, const size_t *tx_lens,
                            size_t n, const uint8_t *const *evs,
                            const size_t *ev_lens, size_t n_ev, px_buf_t *out) {
  if (!s || !proposer || !out || (n && (!txs || !tx_lens))) return PX_EINVAL;
  if (time < s->last_time) return PX_EINVAL;
  px_block_header_t h;
  memset(&h, 0, sizeof h);
  memcpy(h.chain_id, s->chain_id, sizeof h.chain_id);
  h.height = s->height + 1;
  memcpy(h.prev_hash, s->last_block_hash, PX_HASH_LEN);
  memcpy(h.proposer, proposer, PX_PK_LEN);
  h.time = time;
  raw_txs_t rt = {txs, tx_lens};
  int rc = merkle_over(n, raw_tx_leaf, &rt, h.tx_root);
  if (rc) return rc;
  memcpy(h.app_hash, s->app_hash, PX_HASH_LEN);
  memcpy(h.results_hash, s->last_results_hash, PX_HASH_LEN);
  return px_block_encode_ev(&h, txs, tx_lens, n, evs, ev_lens, n_ev, out);
}

/* ---- validation ---------------------------------------------------------- */

static int is_active_validator(const px_ledger_state_t *s,
                               const uint8_t pk[PX_PK_LEN]) {
  px_validator_t *v = px_calloc(PX_LEDGER_MAX_VALIDATORS, sizeof *v);
  size_t n = 0;
  if (!v) return PX_ENOMEM;
  int rc = px_ledger_validators(s, v, PX_LEDGER_MAX_VALIDATORS, &n);
  int found = 0;
  for (size_t i = 0; !rc && i < n; i++)
    if (memcmp(v[i].pk, pk, PX_PK_LEN) == 0) found = 1;
  px_free(v);
  if (rc) return rc;
  return found ? 0 : PX_EPERM;
}

int px_ledger_block_validate(const px_ledger_state_t *s, const px_block_t *b) {
  if (!s || !b) return PX_EINVAL;
  const px_block_header_t *h = &b->header;
  if (strcmp(h->chain_id, s->chain_id) != 0) return PX_LEDGER_E_CHAIN;
  if (h->height != s->height + 1) return PX_EPROTO;
  if (memcmp(h->prev_hash, s->last_block_hash, PX_HASH_LEN) != 0)
    return PX_EPROTO;
  if (memcmp(h->app_hash, s->app_hash, PX_HASH_LEN) != 0) return PX_EPROTO;
  if (memcmp(h->results_hash, s->last_results_hash, PX_HASH_LEN) != 0)
    return PX_EPROTO;
  if (h->time < s->last_time) return PX_EPROTO;
  if (b->n_txs > s->params.max_block_txs) return PX_ETOOBIG;
  uint8_t root[PX_HASH_LEN];
  int rc = merkle_over(b->n_txs, block_tx_leaf, b->txs, root);
  if (rc) return rc;
  if (memcmp(root, h->tx_root, PX_HASH_LEN) != 0) return PX_EPROTO;
  if ((rc = is_active_validator(s, h->proposer))) return rc;
  return slashing_validate(s, b);
}

/* ---- admission and execution --------------------------------------------- */

static int min_fee(const px_ledger_params_t *p, size_t size, uint64_t *out) {
  uint64_t f;
  if (u64_mul(p->fee_per_byte, (uint64_t)size, &f)) return PX_LEDGER_E_FEE_LOW;
  if (u64_add(f, p->fee_base, out)) return PX_LEDGER_E_FEE_LOW;
  return 0;
}

/* Checks that make a tx "admitted" (pays its fee).  Changes nothing. */
/* sig_known (optional) answers 1 for a tx whose signature the caller has
 * already verified; the tx hash covers the signature, so a cache keyed by
 * hash can only say yes to the very bytes it checked. */
static int admit(const px_ledger_state_t *s, const px_tx_t *tx,
                 uint64_t nonce_offset, px_ledger_sig_known_fn sig_known,
                 void *ud) {
  if (tx->raw_len > px_ledger_tx_size_limit(&s->params, tx->type))
    return PX_ETOOBIG;
  if (strcmp(tx->chain_id, s->chain_id) != 0) return PX_LEDGER_E_CHAIN;
  if (!(sig_known && sig_known(ud, tx) == 1) && px_tx_verify(tx) != 0)
    return PX_EBADSIG;
  token_account_t a;
  int rc = token_account_get(s, tx->sender, &a);
  if (rc) return rc;
  uint64_t want;
  if (u64_add(a.nonce, nonce_offset, &want)) return PX_LEDGER_E_NONCE_GAP;
  if (tx->nonce < want) return PX_LEDGER_E_NONCE_OLD;
  if (tx->nonce > want) return PX_LEDGER_E_NONCE_GAP;
  uint64_t mf;
  if ((rc = min_fee(&s->params, tx->raw_len, &mf))) return rc;
  if (tx->fee < mf) return PX_LEDGER_E_FEE_LOW;
  if (tx->fee > a.balance) return PX_LEDGER_E_FUNDS;
  return 0;
}

int px_ledger_check_tx(const px_ledger_state_t *s, const uint8_t *p, size_t len,
                       uint64_t nonce_offset, px_tx_t *tx_out) {
  if (!s) return PX_EINVAL;
  px_tx_t tmp, *tx = tx_out ? tx_out : &tmp;
  int rc = len > PX_LEDGER_TX_MAX_SIZE ? PX_ETOOBIG : px_tx_decode(p, len, tx);
  /* Over params.max_tx_size only a well-formed tx of a type with a larger
   * limit (a market DISPUTE) may pass; anything else is over-size. */
  if (len > s->params.max_tx_size &&
      (rc || len > px_ledger_tx_size_limit(&s->params, tx->type))) {
    memset(tx, 0, sizeof *tx);
    return PX_ETOOBIG;
  }
  if (!rc) rc = admit(s, tx, nonce_offset, NULL, NULL);
  return rc;
}

static int fatal(int rc) { return rc == PX_ENOMEM || rc == PX_EIO; }

/* Run one tx of a block; returns a fatal error or 0 (result filled). */
static int exec_tx(px_ledger_ctx_t *ctx, const px_tx_t *tx, px_tx_result_t *res,
                   px_ledger_sig_known_fn sig_known, void *ud) {
  px_ledger_state_t *s = ctx->s;
  memcpy(res->tx_hash, tx->hash, PX_HASH_LEN);
  res->fee_paid = 0;
  int rc = admit(s, tx, 0, sig_known, ud);
  if (rc) {
    res->code = rc;
    return fatal(rc) ? rc : 0;
  }
  /* Charge: burn the fee, bump the nonce. */
  token_account_t a;
  ledger_supply_t sup;
  if ((rc = token_account_get(s, tx->sender, &a))) return rc;
  a.balance -= tx->fee; /* admit checked fee <= balance */
  a.nonce++;            /* nonce == u64 max: admission fails next time */
  if ((rc = token_account_put(s, tx->sender, &a))) return rc;
  if ((rc = ledger_supply_get(s, &sup))) return rc;
  if ((rc = u64_add(sup.burned, tx->fee, &sup.burned))) return PX_EIO;
  if ((rc = ledger_supply_put(s, &sup))) return rc;
  res->fee_paid = tx->fee;

  size_t mark = s->n_journal;
  const px_contract_t *c = ledger_contract((uint8_t)(tx->type >> 8));
  ctx->ns = (uint8_t)(tx->type >> 8);
  rc = c ? c->execute(ctx, tx) : PX_EDECODE;
  if (rc) {
    if (fatal(rc)) return rc;
    ledger_revert(s, mark);
  }
  res->code = rc;
  return 0;
}

static int emit(px_ledger_state_t *s, const px_block_header_t *h) {
  uint64_t reward = px_ledger_emission(&s->params, h->height);
  if (reward == 0) return 0;
  ledger_supply_t sup;
  int rc = ledger_supply_get(s, &sup);
  if (rc) return rc;
  uint64_t total, t2, e2;
  if (u64_add(sup.genesis, sup.emitted, &total) || total < sup.burned)
    return PX_EIO;
  total -= sup.burned;
  /* Supply must stay representable: emission stops at the u64 ceiling. */
  if (u64_add(total, reward, &t2) || u64_add(sup.emitted, reward, &e2))
    return 0;
  sup.emitted = e2;
  if ((rc = ledger_supply_put(s, &sup))) return rc;
  return token_credit(s, h->proposer, reward);
}

int px_ledger_apply_block(px_ledger_state_t *s, const px_block_t *b,
                          px_tx_result_t *results) {
  return px_ledger_apply_block_ex(s, b, results, NULL, NULL);
}

int px_ledger_apply_block_ex(px_ledger_state_t *s, const px_block_t *b,
                             px_tx_result_t *results,
                             px_ledger_sig_known_fn sig_known, void *ud) {
  if (!s || !b || (b->n_txs && !results)) return PX_EINVAL;
  int rc = px_ledger_block_validate(s, b);
  if (rc) return rc;
  ledger_journal_clear(s);
  px_ledger_ctx_t ctx = {s, &b->header, PX_CONTRACT_CORE};
  for (size_t i = 0; !rc && i < ledger_n_contracts(); i++) {
    const px_contract_t *c = ledger_contract_at(i);
    if (!c->begin_block) continue;
    ctx.ns = c->id;
    rc = c->begin_block(&ctx);
  }
  for (size_t i = 0; !rc && i < b->n_evidence; i++)
    rc = slashing_apply(s, b->header.height, &b->evidence[i].ev);
  if (!rc) rc = emit(s, &b->header);
  for (size_t i = 0; !rc && i < b->n_txs; i++)
    rc = exec_tx(&ctx, &b->txs[i], &results[i], sig_known, ud);
  if (!rc) rc = slashing_record_valset(s, b->header.height + 1);
  uint8_t rh[PX_HASH_LEN];
  if (!rc) rc = merkle_over(b->n_txs, result_leaf, results, rh);
  if (rc) {
    ledger_revert(s, 0);
    uint8_t root[PX_HASH_LEN];
    smt_root(&s->smt, root); /* clean the tree; equals s->app_hash */
    return rc;
  }
  smt_root(&s->smt, s->app_hash);
  memcpy(s->last_results_hash, rh, PX_HASH_LEN);
  memcpy(s->last_block_hash, b->hash, PX_HASH_LEN);
  s->height = b->header.height;
  s->last_time = b->header.time;
  return 0;
}
