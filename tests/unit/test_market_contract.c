/*
 * test_market_contract.c — unit tests for the ledger's market contract
 * (src/ledger/market*.c, plexus/market_chain.h) on a real ledger state:
 * every tx is signed, put in a block, decoded and applied.
 *
 * What is proven here:
 *  - registration: the stake bound price*max_shard_work/5% is enforced
 *    exactly, a wrong bench hash is refused, updates keep the record's
 *    history, exit deactivates; codecs are strict and round-trip;
 *  - job open: escrow is debited exactly, the job record and the manifest
 *    are stored, and a duplicate, a foreign requester, an audit p under the
 *    minimum, a past deadline and an unaffordable escrow are refused with
 *    their own codes and change nothing but the fee;
 *  - commitments: a bad signature fails the tx, a duplicate is skipped, an
 *    equivocation slashes once (burn / reporter / requester split exact),
 *    evidence of a pair never on chain slashes and makes a later commit of
 *    that shard born lost, evidence twice is refused;
 *  - settlement: paid once, capped per shard and by the escrow, lost
 *    commits never paid, refund on final, grace close by anyone only after
 *    deadline + grace, lease expiries counted;
 *  - disputes on a real MLP with per-sample traces: a provider that
 *    perturbs one hidden layer's output by one ulp loses a dispute at a
 *    linear layer L > 0 and at L = 0 (input cut from the input blob's
 *    chunk), is slashed and can no longer be paid; tampered paths, inputs,
 *    weights and claims fail the tx with nothing slashed; a layer over the
 *    on-chain bound is refused with PX_ELIMIT;
 *  - the supply invariant (balances + stakes + unbonding + open escrow =
 *    genesis + emitted - burned) after every block.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"

#include "unit/ledger_testutil.h"

/* What a market slash takes of a stake (PX_MARKET_SLASH_BPS). */
#define SLASHED(x)                                                             \
  ((uint64_t)(x) / 10000u * PX_MARKET_SLASH_BPS +                              \
   (uint64_t)(x) % 10000u * PX_MARKET_SLASH_BPS / 10000u)

/* Keys: 0 validator, 1 requester, 2..4 providers, 5 bystander, 6 poor. */
#define REQ 1
#define PA 2
#define PB 3
#define PC 4
#define BY 5

static tu_keys_t K;
static uint64_t g_fee; /* fee of the last run_tx */

static void check_supply(const px_ledger_state_t *s) {
  uint64_t actual, expected, escrow;
  assert_int_equal(px_ledger_supply(s, &actual, &expected), 0);
  assert_true(actual == expected);
  assert_int_equal(px_market_escrow_total(s, &escrow), 0);
}

/* Sign one tx from kp (next nonce, minimum fee), apply it in its own
 * block; returns the tx's result code. */
static int run_tx(px_ledger_state_t *s, const px_keypair_t *kp, uint16_t type,
                  const void *payload, size_t n) {
  px_account_t a;
  assert_int_equal(px_ledger_account(s, kp->pk, &a), 0);
  px_buf_t probe;
  px_buf_init(&probe, 0);
  int rc = px_tx_make(TU_CHAIN, kp, a.nonce, 0, type, payload, n, &probe);
  if (rc) {
    px_buf_release(&probe);
    return rc;
  }
  uint64_t fee = 100 + probe.len; /* the fee field is fixed-width */
  px_buf_release(&probe);
  tu_txs_t t;
  tu_txs_init(&t);
  assert_int_equal(
      px_tx_make(TU_CHAIN, kp, a.nonce, fee, type, payload, n, tu_txs_next(&t)),
      0);
  /* the mempool's admission check takes it too (size, fee, nonce) */
  px_tx_t chk;
  assert_int_equal(px_ledger_check_tx(s, t.buf[0].data, t.buf[0].len, 0, &chk),
                   0);
  px_tx_result_t res[1];
  assert_int_equal(tu_apply(s, &K.k[0], &t, res), 0);
  assert_true(res[0].fee_paid == fee); /* admitted */
  g_fee = fee;
  tu_txs_release(&t);
  check_supply(s);
  return res[0].code;
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

static void do_stake(px_ledger_state_t *s, int k, uint64_t amount) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_tx_payload_amount(&pl, amount), 0);
  assert_int_equal(run_tx(s, &K.k[k], PX_TX_STAKE, pl.data, pl.len), 0);
  px_buf_release(&pl);
}

static void reg_fill(px_provider_reg_t *r, uint64_t price, uint64_t maxw) {
  memset(r, 0, sizeof *r);
  r->caps = PX_CAP_AVX2;
  r->cores = 4;
  r->mem_mb = 1024;
  r->simd = 1;
  r->price = price;
  r->slots = 2;
  r->max_shard_work = maxw;
  r->speed = 1000000;
  assert_int_equal(px_market_bench_hash(r->bench_hash), 0);
  snprintf(r->addr, sizeof r->addr, "127.0.0.1:9000");
}

static int do_register(px_ledger_state_t *s, int k,
                       const px_provider_reg_t *r) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_register(&pl, r), 0);
  int rc = run_tx(s, &K.k[k], PX_TX_PROVIDER_REGISTER, pl.data, pl.len);
  px_buf_release(&pl);
  return rc;
}

/* A registered provider with enough stake for price 1, max work 100000. */
static void provider(px_ledger_state_t *s, int k) {
  do_stake(s, k, 2000000);
  px_provider_reg_t r;
  reg_fill(&r, 1, 100000);
  assert_int_equal(do_register(s, k, &r), 0);
}

static px_ledger_state_t *fresh(void) {
  tu_keys(&K);
  return tu_state(&K, 7);
}

/* ---- registration ---------------------------------------------------------
 */

static void test_register(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  px_provider_reg_t r, d;
  reg_fill(&r, 3, 50000);
  /* bound: S * 500 >= 3 * 50000 * 10000  <=>  S >= 3,000,000 */
  do_stake(s, PA, 2999999);
  assert_int_equal(do_register(s, PA, &r), PX_EFUNDS);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), PX_ENOTFOUND);
  do_stake(s, PA, 1);
  /* a wrong bench hash is refused */
  px_provider_reg_t bad = r;
  bad.bench_hash[0] ^= 1;
  assert_int_equal(do_register(s, PA, &bad), PX_EAUTH);
  assert_int_equal(do_register(s, PA, &r), 0);
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_int_equal(pr.active, 1);
  assert_true(pr.reg.price == 3 && pr.reg.max_shard_work == 50000);
  assert_memory_equal(pr.pk, K.k[PA].pk, PX_PK_LEN);
  assert_int_equal(px_provider_reputation(&pr), 10000);
  uint64_t h0 = pr.registered_height;
  /* update: new price, same history */
  empty_blocks(s, 1);
  r.price = 2;
  assert_int_equal(do_register(s, PA, &r), 0);
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_true(pr.reg.price == 2 && pr.registered_height == h0);
  /* exit */
  assert_int_equal(run_tx(s, &K.k[PA], PX_TX_PROVIDER_EXIT, NULL, 0), 0);
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_int_equal(pr.active, 0);
  assert_int_equal(run_tx(s, &K.k[PB], PX_TX_PROVIDER_EXIT, NULL, 0),
                   PX_ENOTFOUND);
  /* list */
  px_provider_rec_t *all;
  size_t n;
  assert_int_equal(px_market_providers(s, &all, &n), 0);
  assert_int_equal(n, 1);
  assert_memory_equal(all[0].pk, K.k[PA].pk, PX_PK_LEN);
  px_free(all);
  /* strict codec: round trip, every prefix and an extra byte refused, an
   * out-of-range field refused by encoder and decoder */
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_market_payload_register(&b, &r), 0);
  assert_int_equal(px_market_payload_register_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&d, &r, sizeof d);
  for (size_t i = 0; i < b.len; i++)
    assert_int_not_equal(px_market_payload_register_decode(b.data, i, &d), 0);
  assert_int_equal(px_buf_append(&b, "", 1), 0);
  assert_int_equal(px_market_payload_register_decode(b.data, b.len, &d),
                   PX_ETRAILING);
  bad = r;
  bad.slots = 65;
  assert_int_equal(px_market_payload_register(&b, &bad), PX_EINVAL);
  b.len--;
  memset(b.data + 4 + 4 + 4 + 1 + 8, 0, 4); /* slots = 0 */
  assert_int_not_equal(px_market_payload_register_decode(b.data, b.len, &d), 0);
  px_buf_release(&b);
  /* a tx with a malformed payload is not even encodable */
  px_buf_t tx;
  px_buf_init(&tx, 0);
  uint8_t junk[5] = {1, 2, 3, 4, 5};
  assert_int_equal(px_tx_make(TU_CHAIN, &K.k[PA], 0, 1000,
                              PX_TX_PROVIDER_REGISTER, junk, sizeof junk, &tx),
                   PX_EINVAL);
  px_buf_release(&tx);
  assert_string_equal(px_tx_type_name(PX_TX_DISPUTE), "dispute");
  px_ledger_state_free(s);
}

/* ---- jobs -----------------------------------------------------------------
 */

static void spec_fill(px_job_spec_t *sp, const px_ledger_state_t *s,
                      uint64_t nonce, uint32_t n_samples, uint32_t shard_size,
                      uint64_t wps) {
  memset(sp, 0, sizeof *sp);
  sp->kind = PX_JOB_INFER;
  memcpy(sp->requester, K.k[REQ].pk, PX_PK_LEN);
  sp->nonce = nonce;
  memset(sp->model, 0x11, PX_HASH_LEN);
  memset(sp->input, 0x22, PX_HASH_LEN);
  sp->input_size = (uint64_t)n_samples * 64 * 4;
  sp->n_samples = n_samples;
  sp->shard_size = shard_size;
  sp->work_per_sample = wps;
  sp->policy = PX_VERIFY_REPLICATE;
  sp->policy_param = 2;
  sp->price_ceiling = 1;
  sp->deadline = px_ledger_height(s) + 50;
}

static void manifest_fill(px_market_manifest_t *m, uint32_t n) {
  memset(m, 0, sizeof *m);
  m->n_layers = n;
  for (uint32_t i = 0; i < n && i < PX_MARKET_MAX_LAYERS; i++)
    memset(m->layer_ref[i], (int)(0x40 + i), PX_HASH_LEN);
}

static int open_job(px_ledger_state_t *s, int k, const px_job_spec_t *sp,
                    const px_market_manifest_t *m) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_job_open(&pl, sp, m), 0);
  int rc = run_tx(s, &K.k[k], PX_TX_JOB_OPEN, pl.data, pl.len);
  px_buf_release(&pl);
  return rc;
}

static void test_job_open(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  px_job_spec_t sp, d;
  px_market_manifest_t m, dm;
  spec_fill(&sp, s, 1, 10, 5, 1000);
  manifest_fill(&m, 5);
  uint64_t escrow;
  assert_int_equal(px_market_escrow_required(&sp, &escrow), 0);
  assert_true(escrow == 20000);
  uint64_t before = balance(s, REQ);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_market_payload_job_open(&b, &sp, &m), 0);
  assert_true(balance(s, REQ) == before - escrow - g_fee);
  uint8_t id[PX_HASH_LEN];
  assert_int_equal(px_job_spec_id(&sp, id), 0);
  px_job_rec_t j;
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_int_equal(j.state, PX_JOBREC_OPEN);
  assert_true(j.escrow == escrow && j.paid == 0);
  assert_int_equal(j.manifest.n_layers, 5);
  assert_memory_equal(j.manifest.layer_ref, m.layer_ref, 5 * PX_HASH_LEN);
  uint64_t et;
  assert_int_equal(px_market_escrow_total(s, &et), 0);
  assert_true(et == escrow);
  /* jobs of a requester */
  px_buf_t q;
  px_buf_init(&q, 0);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_MARKET, PX_MARKET_Q_JOBS,
                                   K.k[REQ].pk, PX_PK_LEN, &q),
                   0);
  assert_int_equal(q.len, 4 + PX_HASH_LEN);
  assert_int_equal(q.data[0] | q.data[1] << 8 | q.data[2] << 16, 1);
  assert_memory_equal(q.data + 4, id, PX_HASH_LEN);
  px_buf_release(&q);
  /* refusals: each changes nothing but the fee */
  assert_int_equal(open_job(s, REQ, &sp, &m), PX_EEXIST);
  px_job_spec_t o = sp;
  o.nonce = 2;
  assert_int_equal(open_job(s, BY, &o, &m), PX_EPERM);
  o.policy = PX_VERIFY_AUDIT;
  o.policy_param = PX_MARKET_MIN_AUDIT_BPS - 1;
  assert_int_equal(open_job(s, REQ, &o, &m), PX_EINVAL);
  o = sp;
  o.nonce = 3;
  o.deadline = px_ledger_height(s) + 1; /* the block that runs it */
  assert_int_equal(open_job(s, REQ, &o, &m), PX_ESTATE);
  o = sp;
  o.nonce = 4;
  o.price_ceiling = TU_BALANCE; /* escrow far above the balance */
  assert_int_equal(open_job(s, REQ, &o, &m), PX_EFUNDS);
  assert_int_equal(px_market_escrow_total(s, &et), 0);
  assert_true(et == escrow);
  /* strict codec */
  assert_int_equal(px_market_payload_job_open_decode(b.data, b.len, &d, &dm),
                   0);
  assert_memory_equal(&d, &sp, sizeof d);
  assert_int_equal(dm.n_layers, 5);
  for (size_t i = 0; i < b.len; i++)
    assert_int_not_equal(px_market_payload_job_open_decode(b.data, i, &d, &dm),
                         0);
  manifest_fill(&m, 0);
  assert_int_equal(px_market_payload_job_open(&b, &sp, &m), PX_EINVAL);
  manifest_fill(&m, PX_MARKET_MAX_LAYERS + 1);
  assert_int_equal(px_market_payload_job_open(&b, &sp, &m), PX_EINVAL);
  o = sp;
  o.kind = PX_JOB_TRAIN; /* reserved: an invalid spec */
  manifest_fill(&m, 5);
  assert_int_equal(px_market_payload_job_open(&b, &o, &m), PX_EINVAL);
  px_buf_release(&b);
  px_ledger_state_free(s);
}

/* ---- commitments ----------------------------------------------------------
 */

static void commit_make(px_commitment_t *c, const uint8_t id[PX_HASH_LEN],
                        uint32_t shard, uint8_t tag, uint32_t n_layers, int k) {
  memset(c, 0, sizeof *c);
  memcpy(c->job_id, id, PX_HASH_LEN);
  c->shard = shard;
  memset(c->output, tag, PX_HASH_LEN);
  memset(c->trace_root, tag ^ 0x5a, PX_HASH_LEN);
  c->n_layers = n_layers;
  assert_int_equal(px_commitment_sign(c, &K.k[k]), 0);
}

static int post_commits(px_ledger_state_t *s, int k, const px_commitment_t *c,
                        size_t n) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_commit(&pl, c, n), 0);
  int rc = run_tx(s, &K.k[k], PX_TX_JOB_COMMIT, pl.data, pl.len);
  px_buf_release(&pl);
  return rc;
}

static int settle(px_ledger_state_t *s, int k, const uint8_t id[PX_HASH_LEN],
                  int final, const px_settle_entry_t *e, size_t n,
                  const uint8_t (*exp)[PX_PK_LEN], size_t ne) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_settle(&pl, id, final, e, n, exp, ne), 0);
  int rc = run_tx(s, &K.k[k], PX_TX_JOB_SETTLE, pl.data, pl.len);
  px_buf_release(&pl);
  return rc;
}

static void entry(px_settle_entry_t *e, uint32_t shard, int k, uint64_t amt,
                  uint8_t flags) {
  memset(e, 0, sizeof *e);
  e->shard = shard;
  memcpy(e->provider, K.k[k].pk, PX_PK_LEN);
  e->amount = amt;
  e->flags = flags;
}

static void test_commit_and_equivocation(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  provider(s, PA);
  provider(s, PB);
  px_job_spec_t sp;
  px_market_manifest_t m;
  spec_fill(&sp, s, 1, 10, 5, 1000);
  manifest_fill(&m, 5);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  px_commitment_t c[3];
  commit_make(&c[0], id, 0, 0xa0, 5, PA);
  commit_make(&c[1], id, 0, 0xa0, 5, PB);
  /* bad signature: the whole tx fails, nothing stored */
  c[2] = c[1];
  c[2].sig[5] ^= 1;
  assert_int_equal(post_commits(s, BY, c, 3), PX_EBADSIG);
  px_commit_rec_t cr;
  assert_int_equal(px_market_commitment(s, id, 0, K.k[PA].pk, &cr),
                   PX_ENOTFOUND);
  /* unregistered provider, bad shard, wrong layer count */
  commit_make(&c[2], id, 0, 0xa0, 5, PC);
  assert_int_equal(post_commits(s, BY, &c[2], 1), PX_ENOTFOUND);
  commit_make(&c[2], id, 2, 0xa0, 5, PA);
  assert_int_equal(post_commits(s, BY, &c[2], 1), PX_EINVAL);
  commit_make(&c[2], id, 1, 0xa0, 4, PA);
  assert_int_equal(post_commits(s, BY, &c[2], 1), PX_EINVAL);
  /* good batch; anyone may post it */
  uint64_t h = px_ledger_height(s) + 1;
  assert_int_equal(post_commits(s, BY, c, 2), 0);
  assert_int_equal(px_market_commitment(s, id, 0, K.k[PA].pk, &cr), 0);
  assert_true(cr.height == h && !cr.paid && !cr.lost);
  assert_memory_equal(cr.c.sig, c[0].sig, PX_SIG_LEN);
  px_job_rec_t j;
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_int_equal(j.n_commitments, 2);
  /* duplicate: skipped, not an error */
  assert_int_equal(post_commits(s, REQ, c, 1), 0);
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_int_equal(j.n_commitments, 2);
  /* equivocation by A: slashed once, split exactly */
  uint64_t sa = stake_of(s, PA), req0 = balance(s, REQ), by0 = balance(s, BY);
  commit_make(&c[2], id, 0, 0xb0, 5, PA);
  assert_int_equal(post_commits(s, BY, &c[2], 1), 0);
  uint64_t cut = SLASHED(sa);
  assert_true(stake_of(s, PA) == sa - cut);
  assert_true(balance(s, BY) == by0 - g_fee + cut * 3 / 10);
  assert_true(balance(s, REQ) == req0 + cut * 2 / 10);
  assert_int_equal(px_market_commitment(s, id, 0, K.k[PA].pk, &cr), 0);
  assert_int_equal(cr.lost, 1);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_true(pr.disputes_lost == 1 && pr.slashed_total == cut);
  assert_true(px_provider_reputation(&pr) < 10000);
  /* again (a third claim): no second slash */
  sa = stake_of(s, PA);
  commit_make(&c[2], id, 0, 0xc0, 5, PA);
  assert_int_equal(post_commits(s, BY, &c[2], 1), 0);
  assert_true(stake_of(s, PA) == sa);
  /* evidence for the same tuple: refused */
  px_buf_t ev;
  px_buf_init(&ev, 0);
  assert_int_equal(px_evidence_encode(&c[0], &c[2], &ev), 0);
  assert_int_equal(run_tx(s, &K.k[BY], PX_TX_MARKET_EVIDENCE, ev.data, ev.len),
                   PX_EDUP);
  /* evidence by B on shard 1, neither on chain: slashed; the later commit
   * of that shard is born lost */
  px_commitment_t e1, e2;
  commit_make(&e1, id, 1, 0x01, 5, PB);
  commit_make(&e2, id, 1, 0x02, 5, PB);
  px_buf_reset(&ev);
  assert_int_equal(px_evidence_encode(&e1, &e2, &ev), 0);
  uint64_t sb = stake_of(s, PB);
  assert_int_equal(run_tx(s, &K.k[REQ], PX_TX_MARKET_EVIDENCE, ev.data, ev.len),
                   0);
  assert_true(stake_of(s, PB) == sb - SLASHED(sb));
  assert_int_equal(post_commits(s, BY, &e1, 1), 0);
  assert_int_equal(px_market_commitment(s, id, 1, K.k[PB].pk, &cr), 0);
  assert_int_equal(cr.lost, 1);
  px_buf_release(&ev);
  /* a lost commit is never paid */
  px_settle_entry_t se;
  entry(&se, 0, PA, 10, 0);
  assert_int_equal(settle(s, REQ, id, 0, &se, 1, NULL, 0), PX_ESTATE);
  px_ledger_state_free(s);
}

/* A slash reaches unbonding funds: bonded stake first, then the unbonding
 * entries; the released remainder comes back intact, supply kept. */
static void test_slash_unbonding(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  provider(s, PA); /* 2,000,000 staked */
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_tx_payload_amount(&pl, 1500000), 0);
  assert_int_equal(run_tx(s, &K.k[PA], PX_TX_UNSTAKE, pl.data, pl.len), 0);
  px_buf_release(&pl);
  px_job_spec_t sp;
  px_market_manifest_t m;
  spec_fill(&sp, s, 1, 10, 5, 1000);
  manifest_fill(&m, 3);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  px_commitment_t c[2];
  commit_make(&c[0], id, 0, 1, 3, PA);
  commit_make(&c[1], id, 0, 2, 3, PA);
  /* the commit record, through the raw query */
  assert_int_equal(post_commits(s, REQ, c, 1), 0);
  uint8_t args[PX_HASH_LEN + 4 + PX_PK_LEN];
  memcpy(args, id, PX_HASH_LEN);
  memset(args + PX_HASH_LEN, 0, 4);
  memcpy(args + PX_HASH_LEN + 4, K.k[PA].pk, PX_PK_LEN);
  px_buf_t q;
  px_buf_init(&q, 0);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_MARKET,
                                   PX_MARKET_Q_COMMITMENT, args, sizeof args,
                                   &q),
                   0);
  px_commit_rec_t cr;
  assert_int_equal(px_commit_rec_decode(q.data, q.len, &cr), 0);
  assert_memory_equal(cr.c.output, c[0].output, PX_HASH_LEN);
  px_buf_release(&q);
  /* equivocation: the slash of 2,000,000 (500,000 bonded + 1,500,000
   * unbonding) takes the bonded stake first, then the unbonding entries */
  assert_int_equal(post_commits(s, BY, &c[1], 1), 0);
  px_account_t a;
  assert_int_equal(px_ledger_account(s, K.k[PA].pk, &a), 0);
  uint64_t left = 2000000 - SLASHED(2000000);
  assert_true(a.stake == 0 && a.unbonding == left);
  uint64_t b0 = a.balance;
  empty_blocks(s, 6); /* unbonding_blocks = 5 */
  assert_int_equal(px_ledger_account(s, K.k[PA].pk, &a), 0);
  assert_true(a.unbonding == 0 && a.balance == b0 + left);
  /* no stake left: a new registration fails the bound */
  px_provider_reg_t r;
  reg_fill(&r, 1, 1);
  assert_int_equal(do_register(s, PA, &r), PX_EFUNDS);
  px_ledger_state_free(s);
}

/* ---- settlement -----------------------------------------------------------
 */

static void test_settle(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  provider(s, PA);
  provider(s, PB);
  /* replicate:1, 2 shards of 5 samples x 1000 work, ceiling 1:
   * escrow 10000, each shard worth at most 5000 */
  px_job_spec_t sp;
  px_market_manifest_t m;
  spec_fill(&sp, s, 1, 10, 5, 1000);
  sp.policy_param = 1;
  manifest_fill(&m, 3);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  px_commitment_t c[3];
  commit_make(&c[0], id, 0, 0xa0, 3, PA);
  commit_make(&c[1], id, 0, 0xa0, 3, PB);
  commit_make(&c[2], id, 1, 0xa1, 3, PA);
  assert_int_equal(post_commits(s, PA, c, 3), 0);
  px_settle_entry_t e[3];
  /* only the requester settles before the grace end */
  entry(&e[0], 0, PA, 5000, PX_SETTLE_AUDITED);
  assert_int_equal(settle(s, BY, id, 0, e, 1, NULL, 0), PX_EPERM);
  /* above the shard's worth */
  entry(&e[0], 0, PA, 5001, 0);
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), PX_ERANGE);
  /* no commit on chain */
  entry(&e[0], 1, PB, 10, 0);
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), PX_ENOTFOUND);
  /* pay A for shard 0 */
  uint64_t a0 = balance(s, PA);
  entry(&e[0], 0, PA, 5000, PX_SETTLE_AUDITED);
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), 0);
  assert_true(balance(s, PA) == a0 + 5000);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_true(pr.shards_completed == 1 && pr.audits_passed == 1 &&
              pr.earned == 5000);
  /* twice: refused, in the same tx too (all or nothing) */
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), PX_EDUP);
  entry(&e[0], 1, PA, 5000, 0);
  entry(&e[1], 1, PA, 5000, 0);
  assert_int_equal(settle(s, REQ, id, 0, e, 2, NULL, 0), PX_EDUP);
  px_commit_rec_t cr;
  assert_int_equal(px_market_commitment(s, id, 1, K.k[PA].pk, &cr), 0);
  assert_int_equal(cr.paid, 0);
  /* never above the escrow: 5000 + 5000 paid, B's 1 more does not fit */
  entry(&e[0], 1, PA, 5000, 0);
  entry(&e[1], 0, PB, 1, PX_SETTLE_AUDITOR);
  assert_int_equal(settle(s, REQ, id, 0, e, 2, NULL, 0), PX_EFUNDS);
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), 0);
  px_job_rec_t j;
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_true(j.paid == 10000 && j.paid <= j.escrow && j.shards_paid == 2);
  /* final with an expiry: B's lease count, no refund left */
  uint8_t ex[1][PX_PK_LEN];
  memcpy(ex[0], K.k[PB].pk, PX_PK_LEN);
  uint64_t r0 = balance(s, REQ);
  assert_int_equal(
      settle(s, REQ, id, 1, NULL, 0, (const uint8_t(*)[PX_PK_LEN])ex, 1), 0);
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_int_equal(j.state, PX_JOBREC_SETTLED);
  assert_true(j.refunded == 0);
  assert_true(balance(s, REQ) == r0 - g_fee);
  assert_int_equal(px_market_provider(s, K.k[PB].pk, &pr), 0);
  assert_true(pr.leases_expired == 1);
  assert_int_equal(settle(s, REQ, id, 1, NULL, 0, NULL, 0), PX_ESTATE);

  /* a second job: partial pay, final refund */
  spec_fill(&sp, s, 2, 10, 5, 1000);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  px_job_spec_id(&sp, id);
  commit_make(&c[0], id, 0, 0xa0, 3, PA);
  assert_int_equal(post_commits(s, PA, c, 1), 0);
  entry(&e[0], 0, PA, 1234, 0);
  assert_int_equal(settle(s, REQ, id, 0, e, 1, NULL, 0), 0);
  r0 = balance(s, REQ);
  assert_int_equal(settle(s, REQ, id, 1, NULL, 0, NULL, 0), 0);
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_true(j.refunded == 20000 - 1234 && j.state == PX_JOBREC_SETTLED);
  assert_true(balance(s, REQ) == r0 - g_fee + j.refunded);

  /* a third job: closed by anyone only after deadline + grace */
  spec_fill(&sp, s, 3, 10, 5, 1000);
  sp.deadline = px_ledger_height(s) + 3;
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  px_job_spec_id(&sp, id);
  assert_int_equal(settle(s, BY, id, 1, NULL, 0, NULL, 0), PX_ESTATE);
  entry(&e[0], 0, PA, 1, 0);
  while (px_ledger_height(s) + 1 <= sp.deadline + PX_MARKET_SETTLE_GRACE)
    empty_blocks(s, 1);
  assert_int_equal(settle(s, BY, id, 1, e, 1, NULL, 0), PX_EPERM);
  r0 = balance(s, REQ);
  assert_int_equal(settle(s, BY, id, 1, NULL, 0, NULL, 0), 0);
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_int_equal(j.state, PX_JOBREC_EXPIRED);
  assert_true(balance(s, REQ) == r0 + 20000);
  uint64_t et;
  assert_int_equal(px_market_escrow_total(s, &et), 0);
  assert_true(et == 0);
  /* strict settle codec */
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_market_payload_settle(&b, id, 0, NULL, 0, NULL, 0),
                   PX_EINVAL); /* nothing to do */
  uint8_t two[2][PX_PK_LEN];
  memset(two, 7, sizeof two);
  assert_int_equal(px_market_payload_settle(
                       &b, id, 1, NULL, 0, (const uint8_t(*)[PX_PK_LEN])two, 2),
                   PX_EINVAL); /* not ascending */
  entry(&e[0], 0, PA, 0, 0);
  assert_int_equal(px_market_payload_settle(&b, id, 1, e, 1, NULL, 0),
                   PX_EINVAL); /* zero amount */
  px_buf_release(&b);
  px_ledger_state_free(s);
}

/* ---- disputes -------------------------------------------------------------
 * A small MLP 64-16-16-10 (layers: linear, relu, linear, relu, linear) and
 * a job of 8 samples in shards of 4.  Each party's per-sample activations
 * are computed layer by layer with the deterministic kernels (the ones
 * px_net_forward and the referee use; checked against px_net_forward's own
 * trace), optionally with one element of one layer's output nudged by one
 * ulp before the next layer runs. */

#define NL 5
#define NS 4    /* samples per shard */
#define NSAMP 8 /* samples in the job */
#define IN 64

typedef struct {
  float *act[NL]; /* [NS][out_size] */
  uint8_t leaf[NL][NS][PX_HASH_LEN];
  uint8_t layer_leaf[NL][PX_HASH_LEN];
  px_commitment_t c;
} party_t;

static px_compute_t *g_c;

/* x: the shard's first sample. */
static void run_party(px_net_t *net, const float *x, const uint8_t *id,
                      uint32_t shard, int k, int bad_layer, int bad_sample,
                      party_t *p) {
  memset(p, 0, sizeof *p);
  size_t in_size = px_net_input_size(net);
  for (int i = 0; i < NL; i++) {
    const px_layer_t *l = px_net_layer(net, i);
    p->act[i] = calloc((size_t)NS * l->out_size, sizeof(float));
    assert_non_null(p->act[i]);
  }
  for (int j = 0; j < NS; j++) {
    const float *in = x + (size_t)j * in_size;
    for (int i = 0; i < NL; i++) {
      const px_layer_t *l = px_net_layer(net, i);
      float *y = p->act[i] + (size_t)j * l->out_size;
      if (l->kind == PX_LAYER_LINEAR)
        px_matmul_f32(g_c, y, l->out_c, in, (int)l->in_size, l->w,
                      (int)l->in_size, l->b, 1, l->out_c, (int)l->in_size);
      else
        px_relu_f32(g_c, y, in, l->in_size);
      if (i == bad_layer && j == bad_sample) {
        size_t best = 0; /* the largest element: survives relu and rounding */
        for (size_t e = 1; e < l->out_size; e++)
          if (y[e] > y[best]) best = e;
        y[best] = nextafterf(y[best], INFINITY);
      }
      px_merkle_leaf(p->leaf[i][j], y, l->out_size * sizeof(float));
      in = y;
    }
  }
  for (int i = 0; i < NL; i++)
    px_merkle_root((const uint8_t(*)[PX_HASH_LEN])p->leaf[i], NS,
                   p->layer_leaf[i]);
  memcpy(p->c.job_id, id, PX_HASH_LEN);
  p->c.shard = shard;
  memcpy(p->c.output, p->layer_leaf[NL - 1], PX_HASH_LEN);
  px_merkle_root((const uint8_t(*)[PX_HASH_LEN])p->layer_leaf, NL,
                 p->c.trace_root);
  p->c.n_layers = NL;
  assert_int_equal(px_commitment_sign(&p->c, &K.k[k]), 0);
}

static void party_free(party_t *p) {
  for (int i = 0; i < NL; i++)
    free(p->act[i]);
}

static void prove(const uint8_t (*leaves)[PX_HASH_LEN], size_t n, size_t i,
                  uint8_t (*path)[PX_HASH_LEN], uint32_t *depth) {
  size_t d;
  assert_int_equal(px_merkle_proof(leaves, n, i, path, &d), 0);
  *depth = (uint32_t)d;
}

/* The dispute tx of a (honest) vs b at layer L, sample j; x is the
 * shard's first sample, blob the whole input blob. */
static void build_dispute(px_net_t *net, const party_t *a, const party_t *b,
                          const float *x, const uint8_t *blob, size_t blob_len,
                          uint32_t L, uint32_t j, px_market_dispute_t *d) {
  memset(d, 0, sizeof *d);
  d->a = a->c;
  d->b = b->c;
  d->layer = L;
  d->sample = j;
  d->n_samples = NS;
  const party_t *pp[2] = {a, b};
  for (int q = 0; q < 2; q++) {
    memcpy(d->layer_leaf[q], pp[q]->layer_leaf[L], PX_HASH_LEN);
    prove((const uint8_t(*)[PX_HASH_LEN])pp[q]->layer_leaf, NL, L,
          d->layer_path[q], &d->layer_depth[q]);
    memcpy(d->sample_leaf[q], pp[q]->leaf[L][j], PX_HASH_LEN);
    prove((const uint8_t(*)[PX_HASH_LEN])pp[q]->leaf[L], NS, j,
          d->sample_path[q], &d->sample_depth[q]);
  }
  const px_layer_t *l = px_net_layer(net, (int)L);
  const float *in;
  if (L > 0) {
    memcpy(d->in_layer_leaf, a->layer_leaf[L - 1], PX_HASH_LEN);
    for (int q = 0; q < 2; q++)
      prove((const uint8_t(*)[PX_HASH_LEN])pp[q]->layer_leaf, NL, L - 1,
            d->in_layer_path[q], &d->in_layer_depth[q]);
    memcpy(d->in_sample_leaf, a->leaf[L - 1][j], PX_HASH_LEN);
    prove((const uint8_t(*)[PX_HASH_LEN])a->leaf[L - 1], NS, j,
          d->in_sample_path, &d->in_sample_depth);
    in = a->act[L - 1] + (size_t)j * l->in_size;
  } else {
    /* the chunks that hold global sample g's bytes */
    size_t bytes = l->in_size * sizeof(float);
    size_t off = ((size_t)a->c.shard * NS + j) * bytes;
    size_t first = off / PX_BLOB_CHUNK,
           last = (off + bytes - 1) / PX_BLOB_CHUNK;
    d->n_chunks = (uint32_t)(last - first + 1);
    for (uint32_t i = 0; i < d->n_chunks; i++) {
      size_t depth;
      d->chunk_index[i] = first + i;
      d->chunk[i] = blob + (first + i) * PX_BLOB_CHUNK;
      d->chunk_len[i] = px_blob_chunk_len(blob_len, first + i);
      assert_int_equal(
          px_blob_proof(blob, blob_len, first + i, d->chunk_path[i], &depth),
          0);
      d->chunk_depth[i] = (uint32_t)depth;
    }
    in = x + (size_t)j * l->in_size;
  }
  px_dispute_layer_t *dl = &d->l;
  memcpy(dl->job_id, a->c.job_id, PX_HASH_LEN);
  dl->shard = a->c.shard;
  dl->layer = L;
  dl->kind = (uint8_t)l->kind;
  dl->n = 1;
  dl->in_c = (uint32_t)l->in_c, dl->in_h = (uint32_t)l->in_h,
  dl->in_w = (uint32_t)l->in_w;
  dl->out_c = (uint32_t)l->out_c;
  dl->input = in;
  dl->n_input = l->in_size;
  dl->weights = l->w, dl->n_weights = l->w ? l->nw : 0;
  dl->bias = l->b, dl->n_bias = l->b ? l->nb : 0;
  px_dispute_weights_ref(dl->weights, dl->n_weights, dl->bias, dl->n_bias,
                         dl->weights_ref);
  memcpy(dl->claim[0], a->leaf[L][j], PX_HASH_LEN);
  memcpy(dl->claim[1], b->leaf[L][j], PX_HASH_LEN);
}

static int post_dispute(px_ledger_state_t *s, int k,
                        const px_market_dispute_t *d) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  int rc = px_market_payload_dispute(&pl, d);
  if (!rc) {
    /* decode round trip before posting */
    px_market_dispute_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(px_market_payload_dispute_decode(pl.data, pl.len, e), 0);
    px_buf_t again;
    px_buf_init(&again, 0);
    assert_int_equal(px_market_payload_dispute(&again, e), 0);
    assert_int_equal(again.len, pl.len);
    assert_memory_equal(again.data, pl.data, pl.len);
    px_buf_release(&again);
    px_market_dispute_release(e);
    free(e);
    rc = run_tx(s, &K.k[k], PX_TX_DISPUTE, pl.data, pl.len);
  }
  px_buf_release(&pl);
  return rc;
}

static void test_dispute(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &g_c), 0);
  provider(s, PA);
  provider(s, PB);
  provider(s, PC);
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_MLP;
  cfg.in_c = 1, cfg.in_h = 8, cfg.in_w = 8;
  cfg.n_classes = 10;
  cfg.hidden[0] = 16, cfg.hidden[1] = 16, cfg.n_hidden = 2;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 42);
  assert_int_equal(px_net_layer_count(net), NL);
  /* input blob: 8 samples x 64 f32 */
  float x[NSAMP * IN];
  px_rng_t r;
  px_rng_seed(&r, 7);
  for (size_t i = 0; i < PX_ARRAY_LEN(x); i++)
    x[i] = (float)(px_rng_next(&r) >> 40) * 0x1p-24f - 0.5f;
  /* job: model manifest, input root */
  px_job_spec_t sp;
  spec_fill(&sp, s, 1, NSAMP, NS, 2000);
  sp.input_size = sizeof x;
  assert_int_equal(px_blob_root(x, sizeof x, sp.input), 0);
  px_market_manifest_t m;
  assert_int_equal(px_market_manifest(net, &m), 0);
  assert_int_equal(m.n_layers, NL);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  /* A honest; B nudges the second linear layer (index 2) of sample 2; C
   * nudges the first linear layer (index 0) of sample 1 */
  party_t A, B, C;
  run_party(net, x, id, 0, PA, -1, -1, &A);
  run_party(net, x, id, 0, PB, 2, 2, &B);
  run_party(net, x, id, 0, PC, 0, 1, &C);
  /* the honest per-sample leaves are px_net_forward's trace leaves */
  for (int j = 0; j < NS; j++) {
    px_trace_t t;
    float logits[10];
    px_trace_init(&t, 1);
    assert_int_equal(px_net_forward(net, g_c, x + j * IN, 1, logits, &t), 0);
    assert_int_equal(t.n, NL);
    for (int i = 0; i < NL; i++)
      assert_memory_equal(t.leaf[i], A.leaf[i][j], PX_HASH_LEN);
    px_trace_release(&t);
  }
  /* B agrees up to layer 1 and departs at 2; C departs at 0 */
  assert_memory_equal(A.layer_leaf[1], B.layer_leaf[1], PX_HASH_LEN);
  assert_memory_not_equal(A.layer_leaf[2], B.layer_leaf[2], PX_HASH_LEN);
  assert_memory_not_equal(A.c.output, B.c.output, PX_HASH_LEN);
  assert_memory_not_equal(A.c.output, C.c.output, PX_HASH_LEN);
  px_commitment_t cs[3] = {A.c, B.c, C.c};
  assert_int_equal(post_commits(s, REQ, cs, 3), 0);

  px_market_dispute_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  /* a dispute over a layer where the inputs were not agreed (L = 3 for B:
   * layer 2 differs) does not verify */
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 3, 2, d);
  uint64_t sb = stake_of(s, PB);
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  assert_true(stake_of(s, PB) == sb);
  /* tampering: each fails the tx, nothing slashed */
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  d->layer_path[1][0][3] ^= 1;
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  d->in_sample_path[0][0] ^= 1;
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  float in2[16];
  memcpy(in2, d->l.input, sizeof in2);
  in2[0] += 1.0f; /* input not the agreed one */
  d->l.input = in2;
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  float w2[16 * 16];
  memcpy(w2, d->l.weights, sizeof w2);
  w2[5] *= 2.0f; /* other weights, consistent ref, not the job's layer */
  d->l.weights = w2;
  px_dispute_weights_ref(w2, 256, d->l.bias, 16, d->l.weights_ref);
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  d->l.claim[1][0] ^= 1; /* claim not the proven sample leaf */
  assert_int_equal(post_dispute(s, BY, d), PX_EINVAL);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 0, d);
  assert_int_equal(post_dispute(s, BY, d), PX_EINVAL); /* sample agreed */
  assert_true(stake_of(s, PB) == sb);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(s, K.k[PB].pk, &pr), 0);
  assert_true(pr.disputes_lost == 0);

  /* the real dispute at L = 2 (linear, input = agreed relu output) */
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  uint64_t a0 = balance(s, PA), r0 = balance(s, REQ), sa = stake_of(s, PA);
  assert_int_equal(post_dispute(s, BY, d), 0);
  uint64_t cut = SLASHED(sb);
  assert_true(stake_of(s, PB) == sb - cut);
  assert_true(stake_of(s, PA) == sa);
  assert_true(balance(s, PA) == a0 + cut * 3 / 10);
  assert_true(balance(s, REQ) == r0 + cut * 2 / 10);
  px_commit_rec_t cr;
  assert_int_equal(px_market_commitment(s, id, 0, K.k[PB].pk, &cr), 0);
  assert_int_equal(cr.lost, 1);
  assert_int_equal(px_market_provider(s, K.k[PB].pk, &pr), 0);
  assert_true(pr.disputes_lost == 1 && pr.slashed_total == cut);
  assert_int_equal(px_market_provider(s, K.k[PA].pk, &pr), 0);
  assert_true(pr.disputes_won == 1);
  px_job_rec_t j;
  assert_int_equal(px_market_job(s, id, &j), 0);
  assert_true(j.n_disputes == 1 && j.n_slashed == 1);
  /* replayed: B's commit is lost now */
  assert_int_equal(post_dispute(s, BY, d), PX_ESTATE);
  px_settle_entry_t e;
  entry(&e, 0, PB, 1, 0);
  assert_int_equal(settle(s, REQ, id, 0, &e, 1, NULL, 0), PX_ESTATE);

  /* L = 0 against C: the input comes from the input blob's chunk */
  build_dispute(net, &A, &C, x, (const uint8_t *)x, sizeof x, 0, 1, d);
  uint8_t blob2[sizeof x];
  memcpy(blob2, x, sizeof x);
  blob2[100] ^= 1;
  d->chunk[0] = blob2; /* a chunk that is not the job's input */
  uint64_t sc = stake_of(s, PC);
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  assert_true(stake_of(s, PC) == sc);
  build_dispute(net, &A, &C, x, (const uint8_t *)x, sizeof x, 0, 1, d);
  assert_int_equal(post_dispute(s, REQ, d), 0);
  assert_true(stake_of(s, PC) == sc - SLASHED(sc));
  assert_int_equal(px_market_commitment(s, id, 0, K.k[PC].pk, &cr), 0);
  assert_int_equal(cr.lost, 1);
  /* the honest one is still payable */
  entry(&e, 0, PA, 4 * 2000, PX_SETTLE_AUDITED);
  assert_int_equal(settle(s, REQ, id, 0, &e, 1, NULL, 0), 0);

  /* a layer over the on-chain bound is refused with PX_ELIMIT: by its
   * cost (shapes alone), and by the tx size bound */
  build_dispute(net, &A, &B, x, (const uint8_t *)x, sizeof x, 2, 2, d);
  px_buf_t pl;
  px_buf_init(&pl, 0);
  d->l.in_c = 8192, d->l.out_c = 8193; /* 64Mi+ MACs */
  assert_int_equal(px_market_payload_dispute(&pl, d), PX_ELIMIT);
  size_t big_in = 1024, big_out = 1024; /* 4 MiB of weights */
  float *bw = calloc(big_in * big_out, sizeof(float));
  float *bb = calloc(big_out, sizeof(float));
  float *bi = calloc(big_in, sizeof(float));
  assert_true(bw && bb && bi);
  d->l.in_c = (uint32_t)big_in, d->l.out_c = (uint32_t)big_out;
  d->l.input = bi, d->l.n_input = big_in;
  d->l.weights = bw, d->l.n_weights = big_in * big_out;
  d->l.bias = bb, d->l.n_bias = big_out;
  assert_int_equal(px_market_payload_dispute(&pl, d), PX_ELIMIT);
  assert_int_equal(pl.len, 0);
  free(bw);
  free(bb);
  free(bi);
  px_buf_release(&pl);

  free(d);
  party_free(&A);
  party_free(&B);
  party_free(&C);
  px_net_free(net);
  px_compute_free(g_c);
  px_ledger_state_free(s);
}

/* L = 0 for a sample whose bytes straddle two input chunks: 49-float
 * samples (196 bytes), global sample 1337 spans chunk 0 and chunk 1. */
static void test_dispute_two_chunks(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &g_c), 0);
  provider(s, PA);
  provider(s, PB);
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_MLP;
  cfg.in_c = 1, cfg.in_h = 7, cfg.in_w = 7;
  cfg.n_classes = 10;
  cfg.hidden[0] = 16, cfg.hidden[1] = 16, cfg.n_hidden = 2;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 43);
  const uint32_t n_samples = 1400, in = 49, shard = 334; /* 1336..1339 */
  float *x = malloc((size_t)n_samples * in * sizeof(float));
  assert_non_null(x);
  px_rng_t r;
  px_rng_seed(&r, 8);
  for (size_t i = 0; i < (size_t)n_samples * in; i++)
    x[i] = (float)(px_rng_next(&r) >> 40) * 0x1p-24f - 0.5f;
  size_t blob_len = (size_t)n_samples * in * sizeof(float);
  px_job_spec_t sp;
  spec_fill(&sp, s, 1, n_samples, NS, 2000);
  sp.input_size = blob_len;
  assert_int_equal(px_blob_root(x, blob_len, sp.input), 0);
  px_market_manifest_t m;
  assert_int_equal(px_market_manifest(net, &m), 0);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  const float *xs = x + (size_t)shard * NS * in;
  party_t A, B;
  run_party(net, xs, id, shard, PA, -1, -1, &A);
  run_party(net, xs, id, shard, PB, 0, 1, &B);
  px_commitment_t cs[2] = {A.c, B.c};
  assert_int_equal(post_commits(s, REQ, cs, 2), 0);
  px_market_dispute_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  build_dispute(net, &A, &B, xs, (const uint8_t *)x, blob_len, 0, 1, d);
  assert_int_equal(d->n_chunks, 2);
  /* one chunk only: the sample is not covered */
  d->n_chunks = 1;
  uint64_t sb = stake_of(s, PB);
  assert_int_equal(post_dispute(s, BY, d), PX_EINVAL);
  d->n_chunks = 2;
  d->chunk_path[1][0][0] ^= 1;
  assert_int_equal(post_dispute(s, BY, d), PX_EAUTH);
  d->chunk_path[1][0][0] ^= 1;
  assert_true(stake_of(s, PB) == sb);
  assert_int_equal(post_dispute(s, BY, d), 0);
  assert_true(stake_of(s, PB) == sb - SLASHED(sb));
  free(d);
  party_free(&A);
  party_free(&B);
  free(x);
  px_net_free(net);
  px_compute_free(g_c);
  px_ledger_state_free(s);
}

/* A realistic dispute: the first layer of an MLP 784-512-16-10 (401,408
 * weights, a 1.6 MB tx) is re-executed on chain; the requester can afford
 * the fee (fee_base + fee_per_byte * size). */
static void test_dispute_big_layer(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &g_c), 0);
  provider(s, PA);
  provider(s, PB);
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_MLP;
  cfg.in_c = 1, cfg.in_h = 28, cfg.in_w = 28;
  cfg.n_classes = 10;
  cfg.hidden[0] = 512, cfg.hidden[1] = 16, cfg.n_hidden = 2;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 44);
  size_t in = 784, blob_len = NS * in * sizeof(float);
  float *x = malloc(blob_len);
  assert_non_null(x);
  px_rng_t r;
  px_rng_seed(&r, 9);
  for (size_t i = 0; i < NS * in; i++)
    x[i] = (float)(px_rng_next(&r) >> 40) * 0x1p-24f;
  px_job_spec_t sp;
  spec_fill(&sp, s, 1, NS, NS, 410000);
  sp.input_size = blob_len;
  assert_int_equal(px_blob_root(x, blob_len, sp.input), 0);
  px_market_manifest_t m;
  assert_int_equal(px_market_manifest(net, &m), 0);
  assert_int_equal(open_job(s, REQ, &sp, &m), 0);
  uint8_t id[PX_HASH_LEN];
  px_job_spec_id(&sp, id);
  party_t A, B;
  run_party(net, x, id, 0, PA, -1, -1, &A);
  run_party(net, x, id, 0, PB, 0, 3, &B);
  px_commitment_t cs[2] = {A.c, B.c};
  assert_int_equal(post_commits(s, REQ, cs, 2), 0);
  px_market_dispute_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  build_dispute(net, &A, &B, x, (const uint8_t *)x, blob_len, 0, 3, d);
  uint64_t sb = stake_of(s, PB), r0 = balance(s, REQ);
  assert_int_equal(post_dispute(s, REQ, d), 0);
  assert_true(g_fee > 1600000 && g_fee < PX_MARKET_DISPUTE_TX_MAX + 100);
  assert_true(stake_of(s, PB) == sb - SLASHED(sb));
  assert_true(balance(s, REQ) == r0 - g_fee + SLASHED(sb) * 2 / 10);
  free(d);
  party_free(&A);
  party_free(&B);
  free(x);
  px_net_free(net);
  px_compute_free(g_c);
  px_ledger_state_free(s);
}

/* A dispute tx may exceed params.max_tx_size up to its own bound; nothing
 * else may. */
static void test_dispute_size_admission(void **st) {
  (void)st;
  px_ledger_state_t *s = fresh();
  const px_ledger_params_t *p = px_ledger_params(s);
  assert_true(px_ledger_tx_size_limit(p, PX_TX_DISPUTE) ==
              PX_MARKET_DISPUTE_TX_MAX);
  assert_true(px_ledger_tx_size_limit(p, PX_TX_TRANSFER) == p->max_tx_size);
  assert_true(px_ledger_tx_size_limit(p, PX_TX_JOB_COMMIT) == p->max_tx_size);
  /* a JOB_COMMIT (of 256 commitments: it fits the default max_tx_size)
   * padded past max_tx_size is over-size */
  px_commitment_t *c = calloc(PX_MARKET_COMMIT_BATCH, sizeof *c);
  assert_non_null(c);
  uint8_t id[PX_HASH_LEN];
  memset(id, 1, sizeof id);
  for (uint32_t i = 0; i < PX_MARKET_COMMIT_BATCH; i++)
    commit_make(&c[i], id, i, 1, 3, PA);
  px_buf_t pl, tx;
  px_buf_init(&pl, 0);
  px_buf_init(&tx, 0);
  assert_int_equal(px_market_payload_commit(&pl, c, PX_MARKET_COMMIT_BATCH), 0);
  assert_int_equal(px_tx_make(TU_CHAIN, &K.k[PA], 0, 1000000, PX_TX_JOB_COMMIT,
                              pl.data, pl.len, &tx),
                   0);
  while (tx.len <= p->max_tx_size)
    assert_int_equal(px_buf_append(&tx, "\0", 1), 0);
  px_tx_t t;
  assert_int_equal(px_ledger_check_tx(s, tx.data, tx.len, 0, &t), PX_ETOOBIG);
  free(c);
  px_buf_release(&pl);
  px_buf_release(&tx);
  px_ledger_state_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_register),
      cmocka_unit_test(test_job_open),
      cmocka_unit_test(test_commit_and_equivocation),
      cmocka_unit_test(test_slash_unbonding),
      cmocka_unit_test(test_settle),
      cmocka_unit_test(test_dispute),
      cmocka_unit_test(test_dispute_two_chunks),
      cmocka_unit_test(test_dispute_big_layer),
      cmocka_unit_test(test_dispute_size_admission),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
