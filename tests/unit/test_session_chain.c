/*
 * test_session_chain.c — the session contract (contract 5,
 * plexus/session_chain.h) on a real ledger state, every tx signed, admitted
 * by px_ledger_check_tx and applied in its own block; the supply invariant
 * (balances + stakes + unbonding + escrow + open channels = genesis +
 * emitted - burned) is checked after every block.
 *
 * Proven here:
 *  - CHANNEL_OPEN escrows the deposit under BLAKE2b(payer||provider||salt);
 *    refused: the same id twice, an unregistered provider, oneself, an
 *    expiry not in the future, more than the balance;
 *  - CHANNEL_CLAIM pays min(cumulative, deposit) - claimed to the provider:
 *    two claims in a row pay the difference; a stale or equal receipt, a
 *    receipt for another chain, amount or payer, a claim by someone else
 *    are refused; a receipt above the deposit pays the deposit only;
 *  - CHANNEL_CLOSE: the payer only from expiry_height on, the provider at
 *    any time, nobody else; the refund is deposit - claimed; a closed
 *    channel takes no claim and no second close;
 *  - SESSION_DISPUTE over the tiny llama2.c model: a commitment to a
 *    perturbed sequence is refuted by the on-chain replay, its provider is
 *    slashed by the market's split (burn / sender / channel payer), the
 *    verdict names the first wrong token and is once-only; an honest
 *    commitment (GENERATE or REPLAY) is refused with PX_EPROTO and costs
 *    the provider nothing; tokens or model bytes that do not match the
 *    commitment and a bad signature are refused;
 *  - a dispute over the MAC bound or the KV-cache bound is refused with
 *    PX_ELIMIT, and the builder refuses a payload over the 2 MiB tx cap
 *    with PX_ELIMIT;
 *  - every payload decoder round-trips and is strict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/session.h"
#include "plexus/session_chain.h"

#include "gateway/tiny_model.h"
#include "unit/ledger_testutil.h"

#define SLASHED(x)                                                             \
  ((uint64_t)(x) / 10000u * PX_MARKET_SLASH_BPS +                              \
   (uint64_t)(x) % 10000u * PX_MARKET_SLASH_BPS / 10000u)

/* Keys: 0 validator, 1 payer, 2 3 4 providers, 5 bystander. */
#define PAYER 1
#define PA 2
#define PB 3
#define BY 5
#define STAKE 2000000ull

static tu_keys_t K;
static uint64_t g_fee; /* fee of the last run_tx */

static void check_supply(const px_ledger_state_t *s) {
  uint64_t actual, expected;
  assert_int_equal(px_ledger_supply(s, &actual, &expected), 0);
  assert_true(actual == expected);
}

/* Sign one tx (next nonce, minimum fee), check admission, apply it in its
 * own block; the tx's result code. */
static int run_tx(px_ledger_state_t *s, int k, uint16_t type,
                  const void *payload, size_t n) {
  const px_keypair_t *kp = &K.k[k];
  px_account_t a;
  assert_int_equal(px_ledger_account(s, kp->pk, &a), 0);
  px_buf_t probe;
  px_buf_init(&probe, 0);
  assert_int_equal(
      px_tx_make(TU_CHAIN, kp, a.nonce, 0, type, payload, n, &probe), 0);
  uint64_t fee = 100 + probe.len;
  px_buf_release(&probe);
  tu_txs_t t;
  tu_txs_init(&t);
  assert_int_equal(
      px_tx_make(TU_CHAIN, kp, a.nonce, fee, type, payload, n, tu_txs_next(&t)),
      0);
  px_tx_t chk;
  assert_int_equal(px_ledger_check_tx(s, t.buf[0].data, t.buf[0].len, 0, &chk),
                   0);
  px_tx_result_t res[1];
  assert_int_equal(tu_apply(s, &K.k[0], &t, res), 0);
  assert_true(res[0].fee_paid == fee);
  g_fee = fee;
  tu_txs_release(&t);
  check_supply(s);
  return res[0].code;
}

static int run_buf(px_ledger_state_t *s, int k, uint16_t type, px_buf_t *pl) {
  int rc = run_tx(s, k, type, pl->data, pl->len);
  px_buf_release(pl);
  return rc;
}

static void empty_blocks(px_ledger_state_t *s, int n) {
  tu_txs_t t;
  tu_txs_init(&t);
  for (int i = 0; i < n; i++)
    assert_int_equal(tu_apply(s, &K.k[0], &t, NULL), 0);
  check_supply(s);
}

static uint64_t balance(const px_ledger_state_t *s, int k) {
  px_account_t a;
  assert_int_equal(px_ledger_account(s, K.k[k].pk, &a), 0);
  return a.balance;
}

static uint64_t stake_of(const px_ledger_state_t *s, int k) {
  px_account_t a;
  assert_int_equal(px_ledger_account(s, K.k[k].pk, &a), 0);
  return a.stake + a.unbonding;
}

static void provider(px_ledger_state_t *s, int k) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_tx_payload_amount(&pl, STAKE), 0);
  assert_int_equal(run_buf(s, k, PX_TX_STAKE, &pl), 0);
  px_provider_reg_t r;
  memset(&r, 0, sizeof r);
  r.caps = PX_CAP_AVX2;
  r.cores = 4;
  r.mem_mb = 1024;
  r.simd = 1;
  r.price = 1;
  r.slots = 2;
  r.max_shard_work = 100000;
  r.speed = 1000000;
  assert_int_equal(px_market_bench_hash(r.bench_hash), 0);
  snprintf(r.addr, sizeof r.addr, "127.0.0.1:9000");
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_register(&pl, &r), 0);
  assert_int_equal(run_buf(s, k, PX_TX_PROVIDER_REGISTER, &pl), 0);
}

static px_ledger_state_t *fresh(void) {
  tu_keys(&K);
  px_ledger_state_t *s = tu_state(&K, 7);
  provider(s, PA);
  provider(s, PB);
  return s;
}

/* Open payer -> provider k with this salt byte; returns the tx code. */
static int open_ch(px_ledger_state_t *s, int payer, int prov, uint8_t salt,
                   uint64_t deposit, uint64_t expiry, uint8_t id[32]) {
  px_session_open_t o;
  memset(&o, 0, sizeof o);
  memcpy(o.provider, K.k[prov].pk, 32);
  o.deposit = deposit;
  o.expiry_height = expiry;
  memset(o.salt, salt, 32);
  if (id) px_session_channel_id(K.k[payer].pk, o.provider, o.salt, id);
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_session_payload_open(&pl, &o), 0);
  return run_buf(s, payer, PX_TX_CHANNEL_OPEN, &pl);
}

static int claim(px_ledger_state_t *s, int sender, int signer,
                 const char *chain, const uint8_t id[32], uint64_t cum) {
  px_session_claim_t c;
  memcpy(c.channel_id, id, 32);
  c.cumulative = cum;
  assert_int_equal(
      px_session_receipt_sign(&K.k[signer], chain, id, cum, c.payer_sig), 0);
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_session_payload_claim(&pl, &c), 0);
  return run_buf(s, sender, PX_TX_CHANNEL_CLAIM, &pl);
}

static int close_ch(px_ledger_state_t *s, int sender, const uint8_t id[32]) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_session_payload_close(&pl, id), 0);
  return run_buf(s, sender, PX_TX_CHANNEL_CLOSE, &pl);
}

/* ---- channels ----------------------------------------------------------- */

static void test_open(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  uint64_t h = px_ledger_height(s);
  uint64_t b0 = balance(s, PAYER);
  uint8_t id[32];
  assert_int_equal(open_ch(s, PAYER, PA, 1, 50000, h + 10, id), 0);
  uint64_t fee1 = b0 - balance(s, PAYER) - 50000;
  assert_true(fee1 > 0 && fee1 < 1000);
  px_session_channel_t c;
  assert_int_equal(px_session_chain_channel(s, id, &c), 0);
  assert_memory_equal(c.id, id, 32);
  assert_memory_equal(c.payer, K.k[PAYER].pk, 32);
  assert_memory_equal(c.provider, K.k[PA].pk, 32);
  assert_true(c.deposit == 50000 && c.claimed == 0 && c.refunded == 0);
  assert_true(c.expiry_height == h + 10 && c.opened_height == h + 1);
  assert_int_equal(c.state, PX_CHANNEL_OPEN);
  assert_true(px_session_chain_deposits(s) == 50000);
  /* the query returns the record bytes */
  px_buf_t q;
  px_buf_init(&q, 0);
  assert_int_equal(
      px_ledger_query(s, PX_CONTRACT_SESSION, PX_SESSION_Q_CHANNEL, id, 32, &q),
      0);
  px_session_channel_t c2;
  assert_int_equal(px_session_channel_decode(q.data, q.len, &c2), 0);
  assert_memory_equal(&c, &c2, sizeof c);
  px_buf_release(&q);
  /* refusals (each costs only the fee) */
  h = px_ledger_height(s);
  assert_int_equal(open_ch(s, PAYER, PA, 1, 7, h + 10, NULL), PX_EEXIST);
  assert_int_equal(open_ch(s, PAYER, BY, 2, 7, h + 10, NULL), PX_ENOTFOUND);
  assert_int_equal(open_ch(s, PA, PA, 3, 7, h + 10, NULL), PX_EINVAL);
  h = px_ledger_height(s);
  assert_int_equal(open_ch(s, PAYER, PA, 4, 7, h + 1, NULL), PX_ERANGE);
  assert_int_equal(open_ch(s, PAYER, PA, 5, TU_BALANCE, h + 10, NULL),
                   PX_EFUNDS);
  assert_true(px_session_chain_deposits(s) == 50000);
  /* another salt, another channel to the same provider */
  h = px_ledger_height(s);
  uint8_t id2[32];
  assert_int_equal(open_ch(s, PAYER, PA, 6, 300, h + 10, id2), 0);
  assert_memory_not_equal(id, id2, 32);
  assert_true(px_session_chain_deposits(s) == 50300);
  assert_int_equal(px_session_chain_channel(s,
                                            (const uint8_t *)"nonexistent-id-"
                                                             "0123456789abcdef",
                                            &c),
                   PX_ENOTFOUND);
  px_ledger_state_free(s);
}

static void test_claim(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  uint8_t id[32];
  uint64_t h = px_ledger_height(s);
  assert_int_equal(open_ch(s, PAYER, PA, 1, 1000, h + 50, id), 0);
  uint64_t p0 = balance(s, PA);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 100), 0);
  uint64_t p1 = balance(s, PA);
  uint64_t fee = p0 + 100 - p1; /* paid 100, minus the fee */
  assert_true(fee > 0 && fee < 1000);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 250), 0);
  assert_true(balance(s, PA) == p1 + 150 - fee);
  px_session_channel_t c;
  assert_int_equal(px_session_chain_channel(s, id, &c), 0);
  assert_true(c.claimed == 250);
  assert_true(px_session_chain_deposits(s) == 750);
  /* stale and equal receipts pay nothing: refused */
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 200), PX_ESTATE);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 250), PX_ESTATE);
  /* someone else's claim, a forged or foreign receipt */
  assert_int_equal(claim(s, PB, PAYER, TU_CHAIN, id, 300), PX_EPERM);
  assert_int_equal(claim(s, PA, PA, TU_CHAIN, id, 300), PX_EBADSIG);
  assert_int_equal(claim(s, PA, PAYER, "other-chain", id, 300), PX_EBADSIG);
  uint8_t other[32];
  memset(other, 9, 32);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, other, 300), PX_ENOTFOUND);
  /* a receipt for more than the deposit pays the deposit */
  uint64_t before = balance(s, PA);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 5000), 0);
  assert_int_equal(px_session_chain_channel(s, id, &c), 0);
  assert_true(c.claimed == 1000);
  assert_true(balance(s, PA) + fee == before + 750);
  assert_true(px_session_chain_deposits(s) == 0);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, id, 6000), PX_ESTATE);
  /* the exhausted channel still closes (refund 0) */
  assert_int_equal(close_ch(s, PA, id), 0);
  assert_int_equal(px_session_chain_channel(s, id, &c), 0);
  assert_true(c.refunded == 0 && c.state == PX_CHANNEL_CLOSED);
  px_ledger_state_free(s);
}

static void test_close(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  uint8_t a[32], b[32];
  uint64_t h = px_ledger_height(s);
  assert_int_equal(open_ch(s, PAYER, PA, 1, 1000, h + 6, a), 0);
  assert_int_equal(open_ch(s, PAYER, PB, 1, 2000, h + 1000, b), 0);
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, a, 300), 0);
  /* the payer must wait for the expiry; a bystander never closes */
  assert_int_equal(close_ch(s, PAYER, a), PX_ESTATE);
  assert_int_equal(close_ch(s, BY, a), PX_EPERM);
  while (px_ledger_height(s) + 1 < h + 6)
    empty_blocks(s, 1);
  /* the next block is at expiry_height: the payer may close */
  uint64_t p0 = balance(s, PAYER);
  assert_int_equal(close_ch(s, PAYER, a), 0);
  assert_true(balance(s, PAYER) == p0 + 700 - g_fee); /* the refund */
  px_session_channel_t c;
  assert_int_equal(px_session_chain_channel(s, a, &c), 0);
  assert_true(c.state == PX_CHANNEL_CLOSED && c.refunded == 700 &&
              c.claimed == 300 && c.closed_height == px_ledger_height(s));
  /* closed: no claim, no second close */
  assert_int_equal(claim(s, PA, PAYER, TU_CHAIN, a, 900), PX_ESTATE);
  assert_int_equal(close_ch(s, PAYER, a), PX_ESTATE);
  assert_true(px_session_chain_deposits(s) == 2000);
  /* the provider closes long before expiry: the payer gets everything */
  p0 = balance(s, PAYER);
  assert_int_equal(close_ch(s, PB, b), 0);
  assert_true(balance(s, PAYER) == p0 + 2000); /* PB paid the fee */
  assert_true(px_session_chain_deposits(s) == 0);
  px_ledger_state_free(s);
}

/* ---- disputes ----------------------------------------------------------- */

#define SEQ 40

typedef struct {
  uint8_t *model;
  size_t model_size;
  uint8_t root[32];
  px_llama_t *m;
  px_compute_t *c;
} tiny_t;

static void tiny_load(tiny_t *t, int seq_len) {
  (void)tiny_write_tokenizer;
  memset(t, 0, sizeof *t);
  char dir[] = "/tmp/plexus-schain-XXXXXX", path[128];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/tiny.bin", dir);
  assert_int_equal(tiny_write_model(path, seq_len), 0);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  t->model = malloc((size_t)n);
  assert_non_null(t->model);
  assert_int_equal(fread(t->model, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  unlink(path);
  rmdir(dir);
  t->model_size = (size_t)n;
  assert_int_equal(px_blob_root(t->model, t->model_size, t->root), 0);
  px_llama2c_t *ck;
  assert_int_equal(px_llama2c_open_mem(t->model, t->model_size, &ck), 0);
  assert_int_equal(px_llama_new(ck, &t->m), 0);
  px_llama2c_free(ck);
  px_compute_opts_t o = {-1, 1};
  assert_int_equal(px_compute_new(&o, &t->c), 0);
}

static void tiny_free(tiny_t *t) {
  px_llama_free(t->m);
  px_compute_free(t->c);
  free(t->model);
}

/* The true sequence: prompt + what px_session_gen samples; *n total. */
static void true_seq(tiny_t *t, const px_session_params_t *p, int32_t *tok,
                     uint32_t np, uint32_t max, uint32_t *n) {
  px_session_gen_t g;
  assert_int_equal(px_session_gen_init(&g, t->m, t->c, p, tok, np, np), 0);
  uint32_t k = np;
  int32_t x;
  while (k < max && px_session_gen_next(&g, &x) == 0)
    tok[k++] = x;
  px_session_gen_release(&g);
  *n = k;
}

static void commit_for(px_session_commit_t *c, const tiny_t *t,
                       const uint8_t channel[32], uint8_t sess,
                       const px_session_params_t *p, const int32_t *tok,
                       uint32_t np, uint32_t n, uint8_t mode, int prov) {
  memset(c, 0, sizeof *c);
  memset(c->session_id, sess, 32);
  memcpy(c->channel_id, channel, 32);
  memcpy(c->model, t->root, 32);
  c->model_size = t->model_size;
  c->params = *p;
  c->n_prompt = np;
  c->n_tokens = n;
  px_session_tokens_hash(tok, n, c->tokens_hash);
  c->mode = mode;
  assert_int_equal(px_session_commit_sign(c, &K.k[prov]), 0);
}

static int dispute(px_ledger_state_t *s, int sender,
                   const px_session_commit_t *c, const int32_t *tok,
                   const uint8_t *model) {
  px_session_dispute_t d;
  memset(&d, 0, sizeof d);
  d.commit = *c;
  d.tokens = tok;
  d.model = model;
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_session_payload_dispute(&pl, &d), 0);
  return run_buf(s, sender, PX_TX_SESSION_DISPUTE, &pl);
}

static void test_dispute(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  tiny_t t;
  tiny_load(&t, SEQ);
  uint8_t ch[32];
  uint64_t h = px_ledger_height(s);
  assert_int_equal(open_ch(s, PAYER, PA, 1, 10000, h + 100, ch), 0);
  px_session_params_t p = {0.8f, 0.9f, 11};
  int32_t tok[SEQ + 1] = {1, 300, 301, 302};
  uint32_t n;
  true_seq(&t, &p, tok, 4, 30, &n);
  assert_true(n >= 10);
  assert_int_equal(px_session_replay(t.m, t.c, &p, tok, 4, n, NULL), 0);

  /* honest commitments: refused, nobody is slashed */
  px_session_commit_t good, rep;
  commit_for(&good, &t, ch, 1, &p, tok, 4, n, PX_SESSION_GENERATE, PA);
  commit_for(&rep, &t, ch, 1, &p, tok, 4, n, PX_SESSION_REPLAY, PB);
  assert_int_equal(dispute(s, BY, &good, tok, t.model), PX_EPROTO);
  assert_int_equal(dispute(s, BY, &rep, tok, t.model), PX_EPROTO);
  assert_true(stake_of(s, PA) == STAKE && stake_of(s, PB) == STAKE);

  /* a perturbed sequence (token 6 changed), committed by PA */
  int32_t bad[SEQ + 1];
  memcpy(bad, tok, sizeof(int32_t) * n);
  bad[6] = tok[6] == 300 ? 301 : 300;
  px_session_commit_t lie;
  commit_for(&lie, &t, ch, 2, &p, bad, 4, n, PX_SESSION_GENERATE, PA);
  /* mismatched tokens, model bytes, signature: refused before any replay */
  assert_int_equal(dispute(s, BY, &lie, tok, t.model), PX_EAUTH);
  t.model[t.model_size - 1] ^= 1;
  assert_int_equal(dispute(s, BY, &lie, bad, t.model), PX_EAUTH);
  t.model[t.model_size - 1] ^= 1;
  px_session_commit_t forged = lie;
  forged.sig[0] ^= 1;
  assert_int_equal(dispute(s, BY, &forged, bad, t.model), PX_EBADSIG);
  assert_true(stake_of(s, PA) == STAKE);

  /* the real dispute */
  uint64_t pay0 = balance(s, PAYER), by0 = balance(s, BY);
  uint64_t a_bal = balance(s, PA);
  assert_int_equal(dispute(s, BY, &lie, bad, t.model), 0);
  uint64_t amt = SLASHED(STAKE);
  uint64_t burn = amt / 10000 * PX_MARKET_SLASH_BURN_BPS;
  uint64_t win = amt / 10000 * PX_MARKET_SLASH_WINNER_BPS;
  uint64_t req = amt / 10000 * PX_MARKET_SLASH_REQUESTER_BPS;
  assert_true(burn + win + req == amt);
  assert_true(stake_of(s, PA) == STAKE - amt);
  assert_true(balance(s, PAYER) == pay0 + req);
  assert_true(balance(s, BY) == by0 + win - g_fee);
  assert_true(balance(s, PA) == a_bal); /* stake only */
  px_session_verdict_t v;
  assert_int_equal(px_session_chain_verdict(s, lie.session_id, K.k[PA].pk, &v),
                   0);
  assert_int_equal(v.first_mismatch, 6);
  assert_int_equal(v.expected, tok[6]);
  assert_true(v.slashed == amt && v.height == px_ledger_height(s));
  assert_memory_equal(v.sender, K.k[BY].pk, 32);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_true(pr.disputes_lost == 1 && pr.slashed_total == amt);
  px_buf_t q;
  px_buf_init(&q, 0);
  uint8_t args[64];
  memcpy(args, lie.session_id, 32);
  memcpy(args + 32, K.k[PA].pk, 32);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_SESSION, PX_SESSION_Q_VERDICT,
                                   args, 64, &q),
                   0);
  px_session_verdict_t v2;
  assert_int_equal(px_session_verdict_decode(q.data, q.len, &v2), 0);
  assert_memory_equal(&v, &v2, sizeof v);
  px_buf_release(&q);
  /* once only */
  assert_int_equal(dispute(s, BY, &lie, bad, t.model), PX_EDUP);
  /* the honest provider's verdict slot is empty */
  assert_int_equal(px_session_chain_verdict(s, good.session_id, K.k[PA].pk, &v),
                   PX_ENOTFOUND);

  /* a truncated-early sequence that ends in BOS inside: mode REPLAY by PB,
   * a premature BOS is refuted too */
  int32_t bos[SEQ + 1];
  memcpy(bos, tok, sizeof(int32_t) * n);
  bos[5] = 1;
  px_session_commit_t lie2;
  commit_for(&lie2, &t, ch, 3, &p, bos, 4, n, PX_SESSION_REPLAY, PB);
  uint64_t pay1 = balance(s, PAYER);
  assert_int_equal(dispute(s, PAYER, &lie2, bos, t.model), 0);
  assert_true(stake_of(s, PB) == STAKE - amt);
  /* the sender is also the payer: winner's and requester's parts */
  assert_true(balance(s, PAYER) == pay1 + win + req - g_fee);
  assert_int_equal(px_session_chain_verdict(s, lie2.session_id, K.k[PB].pk, &v),
                   0);
  assert_int_equal(v.first_mismatch, 5);

  /* a resumed session: PB was given 3 generated tokens, one of them wrong,
   * and continued honestly.  With n_forced = 3 it vouches only for its own
   * tokens: the dispute fails; had it vouched for all, it is slashed. */
  int32_t res[SEQ + 1];
  memcpy(res, tok, sizeof(int32_t) * 7);
  res[5] = tok[5] == 300 ? 301 : 300;
  px_session_gen_t g;
  assert_int_equal(px_session_gen_init(&g, t.m, t.c, &p, res, 4, 7), 0);
  uint32_t rn = 7;
  int32_t x;
  while (rn < 30 && px_session_gen_next(&g, &x) == 0)
    res[rn++] = x;
  px_session_gen_release(&g);
  /* PB's stake is gone already: stake PC-like fresh key 4 as a provider */
  provider(s, 4);
  px_session_commit_t resumed;
  commit_for(&resumed, &t, ch, 4, &p, res, 4, rn, PX_SESSION_GENERATE, 4);
  assert_int_equal(resumed.n_forced, 0);
  resumed.n_forced = 3;
  assert_int_equal(px_session_commit_sign(&resumed, &K.k[4]), 0);
  assert_int_equal(dispute(s, BY, &resumed, res, t.model), PX_EPROTO);
  assert_true(stake_of(s, 4) == STAKE);
  resumed.n_forced = 0;
  assert_int_equal(px_session_commit_sign(&resumed, &K.k[4]), 0);
  assert_int_equal(dispute(s, BY, &resumed, res, t.model), 0);
  assert_true(stake_of(s, 4) == STAKE - amt);
  assert_int_equal(
      px_session_chain_verdict(s, resumed.session_id, K.k[4].pk, &v), 0);
  assert_int_equal(v.first_mismatch, 5);

  tiny_free(&t);
  px_ledger_state_free(s);
}

static void test_dispute_limits(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  const px_ledger_params_t *lp = px_ledger_params(s);
  assert_true(px_ledger_tx_size_limit(lp, PX_TX_SESSION_DISPUTE) ==
              PX_SESSION_DISPUTE_TX_MAX);
  assert_true(px_ledger_tx_size_limit(lp, PX_TX_CHANNEL_OPEN) ==
              lp->max_tx_size);
  tiny_t t;
  tiny_load(&t, SEQ);
  /* over the MAC bound: attention alone is L*D*n*(n+1) */
  uint32_t n = 3000;
  const px_llama2c_config_t *cf = px_llama_config(t.m);
  assert_true(px_session_macs(cf, n) > PX_SESSION_DISPUTE_MAX_MACS);
  int32_t *tok = malloc(sizeof(int32_t) * n);
  assert_non_null(tok);
  tok[0] = 1;
  for (uint32_t i = 1; i < n; i++)
    tok[i] = 300 + (int32_t)(i % 50);
  px_session_params_t p = {0.0f, 0.0f, 1};
  uint8_t ch[32];
  memset(ch, 4, 32);
  px_session_commit_t c;
  commit_for(&c, &t, ch, 1, &p, tok, 1, n, PX_SESSION_GENERATE, PA);
  assert_int_equal(dispute(s, BY, &c, tok, t.model), PX_ELIMIT);
  assert_true(stake_of(s, PA) == STAKE);
  /* a small model with a huge context (version 1 has no freq_cis, so the
   * file does not grow with seq_len): its KV cache is over the bound and
   * the dispute is refused before anything is allocated */
  {
    const int32_t D = 16, Hd = 16, V = 8, S = 1 << 20;
    size_t nf = (size_t)(2 * D + D + V * D + 4 * D * D + 3 * Hd * D);
    size_t msize = 256 + 4 * nf;
    uint8_t *m1 = calloc(1, msize);
    assert_non_null(m1);
    int32_t hdr[9] = {(int32_t)PX_LLAMA2C_MAGIC, 1, D, Hd, 1, 1, 1, V, S};
    memcpy(m1, hdr, sizeof hdr);
    m1[36] = 1; /* shared classifier */
    px_llama2c_t *ck;
    assert_int_equal(px_llama2c_open_mem(m1, msize, &ck), 0);
    assert_true(2ull * 4 * (uint64_t)D * (uint64_t)S >
                PX_SESSION_DISPUTE_MAX_KV_BYTES);
    px_llama2c_free(ck);
    int32_t t3[3] = {1, 2, 3};
    px_session_commit_t c1;
    memset(&c1, 0, sizeof c1);
    memset(c1.session_id, 9, 32);
    assert_int_equal(px_blob_root(m1, msize, c1.model), 0);
    c1.model_size = msize;
    c1.params = p;
    c1.n_prompt = 1;
    c1.n_tokens = 3;
    px_session_tokens_hash(t3, 3, c1.tokens_hash);
    assert_int_equal(px_session_commit_sign(&c1, &K.k[PA]), 0);
    assert_int_equal(dispute(s, BY, &c1, t3, m1), PX_ELIMIT);
    free(m1);
  }
  /* a payload over the tx cap is refused by the builder */
  size_t big = PX_SESSION_DISPUTE_TX_MAX;
  uint8_t *junk = calloc(1, big);
  assert_non_null(junk);
  px_session_dispute_t d;
  memset(&d, 0, sizeof d);
  d.commit = c;
  d.commit.model_size = big - 4096;
  d.tokens = tok;
  d.model = junk;
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_session_payload_dispute(&pl, &d), PX_ELIMIT);
  d.commit.model_size = big + 1;
  assert_int_equal(px_session_payload_dispute(&pl, &d), PX_ELIMIT);
  px_buf_release(&pl);
  free(junk);
  free(tok);
  tiny_free(&t);
  px_ledger_state_free(s);
}

/* ---- payload codecs ----------------------------------------------------- */

static void test_payloads(void **st) {
  (void)st;
  tu_keys(&K);
  px_buf_t b;
  px_buf_init(&b, 0);
  px_session_open_t o, o2;
  memset(&o, 0, sizeof o);
  memset(o.provider, 3, 32);
  o.deposit = 77;
  o.expiry_height = 99;
  memset(o.salt, 5, 32);
  assert_int_equal(px_session_payload_open(&b, &o), 0);
  assert_int_equal(b.len, 80);
  assert_int_equal(px_session_payload_open_decode(b.data, b.len, &o2), 0);
  assert_memory_equal(&o, &o2, sizeof o);
  for (size_t i = 0; i < b.len; i++)
    assert_int_not_equal(px_session_payload_open_decode(b.data, i, &o2), 0);
  assert_int_equal(px_buf_append(&b, "x", 1), 0);
  assert_int_equal(px_session_payload_open_decode(b.data, b.len, &o2),
                   PX_ETRAILING);
  px_buf_reset(&b);
  o.deposit = 0;
  assert_int_equal(px_session_payload_open(&b, &o), 0);
  assert_int_equal(px_session_payload_open_decode(b.data, b.len, &o2),
                   PX_EDECODE);

  px_buf_reset(&b);
  px_session_claim_t c, c2;
  memset(&c, 0, sizeof c);
  memset(c.channel_id, 1, 32);
  c.cumulative = 5;
  memset(c.payer_sig, 2, 64);
  assert_int_equal(px_session_payload_claim(&b, &c), 0);
  assert_int_equal(b.len, 104);
  assert_int_equal(px_session_payload_claim_decode(b.data, b.len, &c2), 0);
  assert_memory_equal(&c, &c2, sizeof c);
  for (size_t i = 0; i < b.len; i++)
    assert_int_not_equal(px_session_payload_claim_decode(b.data, i, &c2), 0);

  px_buf_reset(&b);
  uint8_t id[32], id2[32];
  memset(id, 8, 32);
  assert_int_equal(px_session_payload_close(&b, id), 0);
  assert_int_equal(px_session_payload_close_decode(b.data, b.len, id2), 0);
  assert_memory_equal(id, id2, 32);
  assert_int_equal(px_session_payload_close_decode(b.data, 31, id2), PX_ETRUNC);
  assert_int_equal(px_buf_append(&b, "x", 1), 0);
  assert_int_equal(px_session_payload_close_decode(b.data, 33, id2),
                   PX_ETRAILING);

  /* dispute: round trip, every truncation refused, count mismatch refused */
  px_buf_reset(&b);
  int32_t tok[6] = {1, 300, 301, 302, -5, 70000};
  uint8_t model[37];
  for (int i = 0; i < 37; i++)
    model[i] = (uint8_t)i;
  px_session_dispute_t d, e;
  memset(&d, 0, sizeof d);
  memset(d.commit.session_id, 1, 32);
  d.commit.model_size = sizeof model;
  d.commit.params.temperature = 1.0f;
  d.commit.n_prompt = 2;
  d.commit.n_tokens = 6;
  px_session_tokens_hash(tok, 6, d.commit.tokens_hash);
  assert_int_equal(px_session_commit_sign(&d.commit, &K.k[2]), 0);
  d.tokens = tok;
  d.model = model;
  assert_int_equal(px_session_payload_dispute(&b, &d), 0);
  assert_int_equal(px_session_payload_dispute_decode(b.data, b.len, &e), 0);
  assert_memory_equal(&e.commit, &d.commit, sizeof d.commit);
  assert_memory_equal(e.tokens, tok, sizeof tok);
  assert_memory_equal(e.model, model, sizeof model);
  assert_true(((uintptr_t)e.model & 3) == 0);
  px_session_dispute_release(&e);
  px_session_dispute_release(&e);
  for (size_t i = 0; i < b.len; i++) {
    assert_int_not_equal(px_session_payload_dispute_decode(b.data, i, &e), 0);
    assert_null(e.tokens);
  }
  assert_int_equal(px_buf_append(&b, "x", 1), 0);
  assert_int_equal(px_session_payload_dispute_decode(b.data, b.len, &e),
                   PX_ETRAILING);
  /* model length differing from commit.model_size */
  px_buf_reset(&b);
  d.commit.model_size = 36;
  assert_int_equal(px_session_commit_sign(&d.commit, &K.k[2]), 0);
  px_buf_t cb;
  px_buf_init(&cb, 0);
  assert_int_equal(px_session_commit_encode(&d.commit, &cb), 0);
  px_writer_t w;
  px_writer_init(&w, &b);
  px_writer_bytes(&w, cb.data, cb.len);
  for (int i = 0; i < 6; i++)
    px_writer_i32(&w, tok[i]);
  px_writer_bytes(&w, model, 37);
  assert_int_equal(px_writer_finish(&w), 0);
  assert_int_equal(px_session_payload_dispute_decode(b.data, b.len, &e),
                   PX_EDECODE);
  px_buf_release(&cb);
  px_buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_payloads), cmocka_unit_test(test_open),
      cmocka_unit_test(test_claim),    cmocka_unit_test(test_close),
      cmocka_unit_test(test_dispute),  cmocka_unit_test(test_dispute_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
