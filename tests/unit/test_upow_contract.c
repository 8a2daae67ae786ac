/*
 * test_upow_contract.c — the uPoW ledger contract (contract 4,
 * plexus/upow_chain.h) on a real ledger state, blocks made and applied as a
 * chain does.
 *
 * Proven here (needs Debian's dataset-fashion-mnist; skipped without it):
 *  - the epoch's task is fixed at its first block and its evaluation seed
 *    revealed by the second (= the first block's hash);
 *  - a real solution found against the chain's task checks out: its
 *    deposit is held (px_ledger_supply counts it), its receipt says 0;
 *  - a tampered nonce, score or key, a solution sent by someone else, and
 *    an old epoch's nonce relabelled as the current epoch are all judged
 *    invalid: the tx succeeds, the deposit is burned, the receipt names the
 *    error, the miner's forfeited counter moves;
 *  - the same solution sent twice: the second fails PX_EDUP and is
 *    rewarded once; a solution for a past epoch fails PX_ESTATE and costs
 *    only the fee;
 *  - at the epoch's end the best solution's network becomes the parent and
 *    is published by hash, deposits are refunded and the epoch's reward is
 *    split by score (all of it minted is accounted as emitted);
 *  - balances + stakes + unbonding + held deposits == genesis + emitted -
 *    burned after every block.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/ledger.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

#include "unit/ledger_testutil.h"

static tu_keys_t g_ks;
static const px_upow_data_t *g_data;

static void supply_ok(const px_ledger_state_t *s) {
  uint64_t a, e;
  assert_int_equal(px_ledger_supply(s, &a, &e), 0);
  assert_true(a == e);
}

static void empty_block(px_ledger_state_t *s) {
  tu_txs_t t;
  tu_txs_init(&t);
  assert_int_equal(tu_apply(s, &g_ks.k[0], &t, NULL), 0);
  supply_ok(s);
}

static void blocks_to(px_ledger_state_t *s, uint64_t height) {
  while (px_ledger_height(s) < height)
    empty_block(s);
}

static uint64_t balance(const px_ledger_state_t *s, int k) {
  px_account_t a;
  assert_int_equal(px_ledger_account(s, g_ks.k[k].pk, &a), 0);
  return a.balance;
}

static uint64_t nonce_of(const px_ledger_state_t *s, int k) {
  px_account_t a;
  assert_int_equal(px_ledger_account(s, g_ks.k[k].pk, &a), 0);
  return a.nonce;
}

/* Build the chain's current task (the caller frees task and parent). */
static px_upow_task_t *chain_task(const px_ledger_state_t *s,
                                  px_upow_net_t *parent) {
  px_upow_chain_epoch_t e;
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_true(e.revealed);
  assert_int_equal(px_upow_chain_parent(s, parent), 0);
  px_upow_epoch_t ep;
  px_upow_chain_task_epoch(&e, &ep);
  px_upow_task_t *t;
  assert_int_equal(px_upow_task_new(&ep, parent, g_data, &t), 0);
  return t;
}

/* Find the first `want` solutions of miner k from nonce `from`. */
static int find(const px_upow_task_t *t, int k, uint64_t from, int want,
                px_upow_solution_t *out, uint64_t *next) {
  int got = 0;
  uint64_t n = from;
  for (; got < want && n < from + 400; n++) {
    int rc = px_upow_candidate(t, g_ks.k[k].pk, n, NULL, &out[got]);
    assert_true(rc >= 0);
    if (rc == 1) got++;
  }
  *next = n;
  return got;
}

/* One SUBMIT tx of `sol` from key k into t. */
static void add_submit(tu_txs_t *t, int k, uint64_t nonce,
                       const px_upow_solution_t *sol) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_upow_payload_submit(&pl, sol), 0);
  assert_int_equal(tu_add(t, &g_ks.k[k], nonce, TU_FEE, PX_TX_UPOW_SUBMIT, &pl),
                   0);
  px_buf_release(&pl);
}

static int32_t receipt(const px_ledger_state_t *s, int k,
                       const px_upow_solution_t *sol) {
  px_upow_chain_receipt_t r;
  int rc = px_upow_chain_receipt(s, g_ks.k[k].pk, sol, &r);
  return rc ? 1000 + rc : r.code;
}

static void test_contract(void **state) {
  (void)state;
  if (px_upow_chain_dataset(&g_data)) skip();
  tu_keys(&g_ks);
  px_ledger_state_t *s = tu_state(&g_ks, 4);
  supply_ok(s);

  /* Block 1 fixes epoch 0's task; block 2 reveals its eval seed. */
  empty_block(s);
  px_upow_chain_epoch_t e;
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_int_equal(e.epoch, 0);
  assert_int_equal(e.start_height, 1);
  assert_int_equal(e.revealed, 0);
  assert_int_equal(e.margin, PX_UPOW_INITIAL_MARGIN);
  uint8_t h1[32];
  px_ledger_last_block_hash(s, h1);
  empty_block(s);
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_int_equal(e.revealed, 1);
  assert_memory_equal(e.eval_seed, h1, 32);

  px_upow_net_t parent;
  px_upow_task_t *t = chain_task(s, &parent);
  px_upow_solution_t s1[3], s2[1];
  uint64_t next1, next2;
  assert_int_equal(find(t, 1, 0, 3, s1, &next1), 3);
  assert_int_equal(find(t, 2, 0, 1, s2, &next2), 1);
  /* A relabel-able epoch-0 solution kept for later. */
  px_upow_solution_t old0 = s1[2];
  px_upow_task_free(t);
  px_upow_net_release(&parent);

  /* Tampered copies of s1[0]. */
  px_upow_solution_t bad_nonce = s1[0], bad_score = s1[0], bad_key = s1[0];
  bad_nonce.nonce += 1000;
  bad_score.score += 1;
  memcpy(bad_key.miner_pk, g_ks.k[3].pk, 32); /* k3 steals k1's nonce */

  uint64_t b1 = balance(s, 1), b2 = balance(s, 2), b3 = balance(s, 3);
  uint64_t n1 = nonce_of(s, 1), n3 = nonce_of(s, 3);
  tu_txs_t tx;
  tu_txs_init(&tx);
  add_submit(&tx, 1, n1, &s1[0]);             /* valid */
  add_submit(&tx, 1, n1 + 1, &s1[1]);         /* valid */
  add_submit(&tx, 1, n1 + 2, &s1[0]);         /* duplicate: PX_EDUP */
  add_submit(&tx, 2, nonce_of(s, 2), &s2[0]); /* valid */
  add_submit(&tx, 1, n1 + 3, &bad_nonce);     /* forfeited */
  add_submit(&tx, 1, n1 + 4, &bad_score);     /* forfeited */
  add_submit(&tx, 3, n3, &bad_key);           /* forfeited */
  add_submit(&tx, 3, n3 + 1, &s2[0]);         /* sender != miner: forfeited */
  px_tx_result_t res[16];
  assert_int_equal(tu_apply(s, &g_ks.k[0], &tx, res), 0);
  tu_txs_release(&tx);
  supply_ok(s);
  assert_int_equal(res[0].code, 0);
  assert_int_equal(res[1].code, 0);
  assert_int_equal(res[2].code, PX_EDUP);
  assert_int_equal(res[3].code, 0);
  for (int i = 4; i < 8; i++)
    assert_int_equal(res[i].code, 0); /* judged: the burn stays */
  assert_int_equal(receipt(s, 1, &s1[0]), 0);
  assert_int_equal(receipt(s, 1, &s1[1]), 0);
  assert_int_equal(receipt(s, 2, &s2[0]), 0);
  assert_int_equal(receipt(s, 1, &bad_nonce), PX_EAUTH);
  assert_int_equal(receipt(s, 1, &bad_score), PX_EAUTH);
  assert_int_equal(receipt(s, 3, &bad_key), PX_EAUTH);
  assert_int_equal(receipt(s, 3, &s2[0]), PX_EPERM);
  /* Money: k1 holds 2 deposits, lost 2, paid 5 fees; k3 lost 2. */
  uint64_t f = TU_FEE;
  assert_true(balance(s, 1) == b1 - 5 * f - 4 * (uint64_t)PX_UPOW_DEPOSIT);
  assert_true(balance(s, 2) == b2 - f - PX_UPOW_DEPOSIT);
  assert_true(balance(s, 3) == b3 - 2 * f - 2 * (uint64_t)PX_UPOW_DEPOSIT);
  assert_true(px_upow_chain_deposits(s) == 3ull * PX_UPOW_DEPOSIT);
  px_upow_chain_miner_t m;
  assert_int_equal(px_upow_chain_miner(s, g_ks.k[1].pk, &m), 0);
  assert_true(m.submitted == 4 && m.valid == 2 && m.rejected == 2 &&
              m.forfeited == 2ull * PX_UPOW_DEPOSIT && m.rewards == 0);
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_int_equal(e.n_solutions, 3);
  assert_true(e.parent_score > 0);

  /* The same solution again in a later block: still rewarded once. */
  tu_txs_init(&tx);
  add_submit(&tx, 1, nonce_of(s, 1), &s1[0]);
  assert_int_equal(tu_apply(s, &g_ks.k[0], &tx, res), 0);
  tu_txs_release(&tx);
  assert_int_equal(res[0].code, PX_EDUP);
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_int_equal(e.n_solutions, 3);

  /* Epoch end: the first block of epoch 1 publishes epoch 0. */
  px_upow_solution_t all[3] = {s1[0], s1[1], s2[0]};
  int bi = 0;
  uint64_t total = 0;
  for (int i = 0; i < 3; i++) {
    total += all[i].score;
    if (px_upow_solution_cmp(&all[i], &all[bi]) < 0) bi = i;
  }
  /* Block 21 opens epoch 1 (not revealed yet): a SUBMIT in it is refused
   * without a deposit. */
  blocks_to(s, PX_UPOW_EPOCH_BLOCKS);
  b1 = balance(s, 1);
  b2 = balance(s, 2);
  px_upow_solution_t relabel = old0;
  relabel.epoch = 1;
  tu_txs_init(&tx);
  add_submit(&tx, 1, nonce_of(s, 1), &relabel);
  assert_int_equal(tu_apply(s, &g_ks.k[0], &tx, res), 0);
  tu_txs_release(&tx);
  assert_int_equal(res[0].code, PX_ESTATE);
  supply_ok(s);
  px_upow_chain_published_t pub;
  assert_int_equal(px_upow_chain_published(s, 0, &pub), 0);
  assert_int_equal(pub.n_solutions, 3);
  assert_memory_equal(pub.net_hash, all[bi].net_hash, 32);
  assert_int_equal(pub.score, all[bi].score);
  assert_memory_equal(pub.winner, all[bi].miner_pk, 32);
  assert_true(pub.score >= pub.parent_score + PX_UPOW_INITIAL_MARGIN);
  uint64_t r1 = (uint64_t)PX_UPOW_EPOCH_REWARD * s1[0].score / total +
                (uint64_t)PX_UPOW_EPOCH_REWARD * s1[1].score / total;
  uint64_t r2 = (uint64_t)PX_UPOW_EPOCH_REWARD * s2[0].score / total;
  assert_true(pub.reward == r1 + r2);
  assert_true(balance(s, 1) == b1 + 2ull * PX_UPOW_DEPOSIT + r1 - f);
  assert_true(balance(s, 2) == b2 + PX_UPOW_DEPOSIT + r2);
  assert_true(px_upow_chain_deposits(s) == 0);
  assert_int_equal(px_upow_chain_miner(s, g_ks.k[1].pk, &m), 0);
  assert_true(m.rewards == r1);
  px_upow_net_t np;
  uint8_t nh[32];
  assert_int_equal(px_upow_chain_parent(s, &np), 0);
  assert_int_equal(px_upow_net_hash(&np, nh), 0);
  assert_memory_equal(nh, pub.net_hash, 32);
  px_upow_net_release(&np);
  assert_int_equal(px_upow_chain_epoch(s, &e), 0);
  assert_int_equal(e.epoch, 1);
  assert_memory_equal(e.parent_hash, pub.net_hash, 32);
  assert_int_equal(e.n_solutions, 0);
  assert_int_equal(e.margin, px_upow_next_margin(PX_UPOW_INITIAL_MARGIN, 3,
                                                 PX_UPOW_TARGET_SOLUTIONS,
                                                 PX_UPOW_MAX_MARGIN));
  supply_ok(s);

  /* Revealed now: a past-epoch solution fails (fee only), an old nonce
   * relabelled as epoch 1 is judged and forfeited. */
  tu_txs_init(&tx);
  add_submit(&tx, 1, nonce_of(s, 1), &old0);
  add_submit(&tx, 1, nonce_of(s, 1) + 1, &relabel);
  b1 = balance(s, 1);
  assert_int_equal(tu_apply(s, &g_ks.k[0], &tx, res), 0);
  tu_txs_release(&tx);
  supply_ok(s);
  assert_int_equal(res[0].code, PX_ESTATE);
  assert_int_equal(res[1].code, 0);
  assert_int_equal(receipt(s, 1, &relabel), PX_EAUTH);
  assert_true(balance(s, 1) == b1 - 2 * f - PX_UPOW_DEPOSIT);

  /* An epoch with no solution republishes its parent. */
  blocks_to(s, 2 * PX_UPOW_EPOCH_BLOCKS + 1);
  assert_int_equal(px_upow_chain_published(s, 1, &pub), 0);
  assert_int_equal(pub.n_solutions, 0);
  assert_true(pub.reward == 0);
  assert_memory_equal(pub.net_hash, nh, 32);
  supply_ok(s);
  px_ledger_state_free(s);
}

/* The query interface returns the same records as the readers. */
static void test_queries(void **state) {
  (void)state;
  tu_keys(&g_ks);
  px_ledger_state_t *s = tu_state(&g_ks, 2);
  assert_int_equal(
      px_ledger_query(s, PX_CONTRACT_UPOW, 1, NULL, 0, &(px_buf_t){0}),
      PX_ENOTFOUND); /* before block 1 */
  empty_block(s);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_UPOW, 5, NULL, 0, &b), 0);
  px_upow_net_t n, g;
  assert_int_equal(px_upow_net_decode(b.data, b.len, &n), 0);
  px_upow_dims_t d;
  px_upow_chain_dims(&d);
  assert_int_equal(px_upow_net_random(&d, PX_UPOW_GENESIS_SEED, &g), 0);
  assert_true(px_upow_net_equal(&n, &g));
  px_upow_net_release(&n);
  px_upow_net_release(&g);
  b.len = 0;
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_UPOW, 1, NULL, 0, &b), 0);
  assert_int_equal(b.len, 141);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_UPOW, 9, NULL, 0, &b),
                   PX_ENOTFOUND);
  assert_int_equal(px_ledger_query(s, PX_CONTRACT_UPOW, 3, NULL, 0, &b),
                   PX_EINVAL);
  px_buf_release(&b);
  /* A malformed SUBMIT payload does not decode as a tx. */
  px_buf_t tx;
  px_buf_init(&tx, 0);
  uint8_t junk[88] = {0};
  assert_int_not_equal(px_tx_make(TU_CHAIN, &g_ks.k[1], 0, TU_FEE,
                                  PX_TX_UPOW_SUBMIT, junk, sizeof junk, &tx),
                       0);
  px_buf_release(&tx);
  assert_string_equal(px_tx_type_name(PX_TX_UPOW_SUBMIT), "upow_submit");
  px_ledger_state_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_contract),
      cmocka_unit_test(test_queries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
