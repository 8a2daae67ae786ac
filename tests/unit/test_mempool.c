/*
 * test_mempool.c — the node's chain runtime pieces that need no processes:
 * the mempool (admission errors, dedupe, per-sender nonce ordering, bounds,
 * eviction and re-check after a block, the signature cache the apply path
 * uses) and the validator set / proposer rotation derived from the state.
 * The end-to-end runtime is tested on real processes in
 * tests/integration/test_chain.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "node/chain.h"
#include "unit/ledger_testutil.h"

static void mk_transfer(px_buf_t *out, const char *chain, const px_keypair_t *k,
                        uint64_t nonce, const uint8_t *to, uint64_t amount) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_tx_payload_transfer(&pl, to, amount), 0);
  px_buf_init(out, 0);
  assert_int_equal(
      px_tx_make(chain, k, nonce, 1000, PX_TX_TRANSFER, pl.data, pl.len, out),
      0);
  px_buf_release(&pl);
}

static void test_mempool_admission(void **state) {
  (void)state;
  tu_keys_t ks;
  tu_keys(&ks);
  px_ledger_state_t *s = tu_state(&ks, 4);
  px_mempool_t mp;
  px_mempool_init(&mp, 3, 1 << 20);
  px_buf_t t0, t1, t2, t3, gap, bad, other, big;
  mk_transfer(&t0, TU_CHAIN, &ks.k[1], 0, ks.k[2].pk, 10);
  mk_transfer(&t1, TU_CHAIN, &ks.k[1], 1, ks.k[2].pk, 11);
  mk_transfer(&gap, TU_CHAIN, &ks.k[1], 5, ks.k[2].pk, 12);
  mk_transfer(&bad, TU_CHAIN, &ks.k[2], 0, ks.k[1].pk, 13);
  bad.data[bad.len - 1] ^= 0x40;
  mk_transfer(&other, "other-chain", &ks.k[2], 0, ks.k[1].pk, 14);
  uint8_t h[PX_HASH_LEN];
  assert_int_equal(px_mempool_add(&mp, s, t0.data, t0.len, 1, h), 0);
  assert_true(px_mempool_has(&mp, h));
  assert_int_equal(px_mempool_add(&mp, s, t0.data, t0.len, 1, NULL), PX_EDUP);
  /* Per-sender nonce order: the next must be account nonce + queued. */
  assert_int_equal(px_mempool_add(&mp, s, gap.data, gap.len, 1, NULL),
                   PX_LEDGER_E_NONCE_GAP);
  assert_int_equal(px_mempool_add(&mp, s, t1.data, t1.len, 1, NULL), 0);
  assert_int_equal(px_mempool_sender_count(&mp, ks.k[1].pk), 2);
  assert_int_equal(px_mempool_add(&mp, s, bad.data, bad.len, 1, NULL),
                   PX_EBADSIG);
  assert_int_equal(px_mempool_add(&mp, s, other.data, other.len, 1, NULL),
                   PX_LEDGER_E_CHAIN);
  assert_int_equal(px_mempool_add(&mp, s, t0.data, t0.len - 3, 1, NULL) < 0, 1);
  px_buf_init(&big, 0);
  assert_int_equal(px_buf_append(&big, t0.data, t0.len), 0);
  /* trailing bytes past the size limit: refused for size first */
  size_t pad = px_ledger_params(s)->max_tx_size + 1;
  assert_int_equal(px_buf_reserve(&big, pad), 0);
  memset(big.data + big.len, 0, pad);
  big.len += pad;
  assert_int_equal(px_mempool_add(&mp, s, big.data, big.len, 1, NULL),
                   PX_ETOOBIG);
  /* Bounds: the pool holds 3; the 4th is refused as full. */
  mk_transfer(&t2, TU_CHAIN, &ks.k[2], 0, ks.k[1].pk, 15);
  mk_transfer(&t3, TU_CHAIN, &ks.k[3], 0, ks.k[1].pk, 16);
  assert_int_equal(px_mempool_add(&mp, s, t2.data, t2.len, 1, NULL), 0);
  assert_int_equal(px_mempool_add(&mp, s, t3.data, t3.len, 1, NULL), PX_ELIMIT);
  assert_int_equal(mp.live, 3);
  /* Nothing the mempool refused touched the state. */
  px_account_t a;
  assert_int_equal(px_ledger_account(s, ks.k[1].pk, &a), 0);
  assert_int_equal(a.nonce, 0);
  px_buf_t *all[] = {&t0, &t1, &t2, &t3, &gap, &bad, &other, &big};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    px_buf_release(all[i]);
  px_mempool_release(&mp);
  px_ledger_state_free(s);
}

static int g_verified_skips;
static const px_mempool_t *g_mp;
static int cache_cb(void *ud, const px_tx_t *tx) {
  (void)ud;
  int k = px_mempool_has(g_mp, tx->hash);
  g_verified_skips += k;
  return k;
}

static void test_mempool_update_after_block(void **state) {
  (void)state;
  tu_keys_t ks;
  tu_keys(&ks);
  px_ledger_state_t *s = tu_state(&ks, 4);
  px_mempool_t mp;
  px_mempool_init(&mp, 100, 1 << 20);
  px_buf_t a0, a1, a2, b0, b0x;
  mk_transfer(&a0, TU_CHAIN, &ks.k[1], 0, ks.k[2].pk, 1);
  mk_transfer(&a1, TU_CHAIN, &ks.k[1], 1, ks.k[2].pk, 2);
  mk_transfer(&a2, TU_CHAIN, &ks.k[1], 2, ks.k[2].pk, 3);
  mk_transfer(&b0, TU_CHAIN, &ks.k[2], 0, ks.k[1].pk, 4);
  /* Another tx with b0's nonce: it gets into a block instead of b0. */
  mk_transfer(&b0x, TU_CHAIN, &ks.k[2], 0, ks.k[3].pk, 5);
  assert_int_equal(px_mempool_add(&mp, s, a0.data, a0.len, 1, NULL), 0);
  assert_int_equal(px_mempool_add(&mp, s, a1.data, a1.len, 1, NULL), 0);
  assert_int_equal(px_mempool_add(&mp, s, a2.data, a2.len, 1, NULL), 0);
  assert_int_equal(px_mempool_add(&mp, s, b0.data, b0.len, 1, NULL), 0);
  /* Block 1 holds a0 (from the pool) and b0x (never seen here). */
  const uint8_t *txs[2] = {a0.data, b0x.data};
  size_t lens[2] = {a0.len, b0x.len};
  px_buf_t blk;
  px_buf_init(&blk, 0);
  assert_int_equal(
      px_ledger_block_make(s, ks.k[0].pk, 2000, txs, lens, 2, &blk), 0);
  px_block_t b;
  assert_int_equal(px_block_decode(blk.data, blk.len, &b), 0);
  px_tx_result_t res[2];
  g_mp = &mp;
  g_verified_skips = 0;
  assert_int_equal(px_ledger_apply_block_ex(s, &b, res, cache_cb, NULL), 0);
  assert_int_equal(g_verified_skips, 1); /* a0 cached, b0x verified */
  assert_int_equal(res[0].code, 0);
  assert_int_equal(res[1].code, 0);
  uint8_t hashes[2][PX_HASH_LEN];
  memcpy(hashes[0], b.txs[0].hash, PX_HASH_LEN);
  memcpy(hashes[1], b.txs[1].hash, PX_HASH_LEN);
  px_mempool_update(&mp, s, (const uint8_t(*)[PX_HASH_LEN])hashes, 2);
  /* a0 included -> gone; a1, a2 still valid; b0 stale (nonce used). */
  assert_int_equal(mp.live, 2);
  uint8_t h[PX_HASH_LEN];
  px_hash(h, a1.data, a1.len);
  assert_true(px_mempool_has(&mp, h));
  px_hash(h, b0.data, b0.len);
  assert_false(px_mempool_has(&mp, h));
  assert_int_equal(px_mempool_sender_count(&mp, ks.k[1].pk), 2);
  assert_int_equal(px_mempool_sender_count(&mp, ks.k[2].pk), 0);
  /* The queue still admits the sender's next nonce after a2. */
  px_buf_t a3;
  mk_transfer(&a3, TU_CHAIN, &ks.k[1], 3, ks.k[2].pk, 6);
  assert_int_equal(px_mempool_add(&mp, s, a3.data, a3.len, 1, NULL), 0);
  assert_int_equal(mp.e[0].nonce, 1); /* order kept: a1, a2, a3 */
  assert_int_equal(mp.e[2].nonce, 3);
  px_block_release(&b);
  px_buf_t *all[] = {&a0, &a1, &a2, &a3, &b0, &b0x, &blk};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    px_buf_release(all[i]);
  px_mempool_release(&mp);
  px_ledger_state_free(s);
}

static void test_mempool_many(void **state) {
  (void)state;
  tu_keys_t ks;
  tu_keys(&ks);
  px_ledger_state_t *s = tu_state(&ks, TU_NKEYS);
  px_mempool_t mp;
  px_mempool_init(&mp, 100000, 64u << 20);
  /* Growth of the indexes keeps every entry findable. */
  enum { PER = 100 };
  for (int n = 0; n < PER; n++)
    for (int k = 1; k < TU_NKEYS; k++) {
      px_buf_t t;
      mk_transfer(&t, TU_CHAIN, &ks.k[k], (uint64_t)n, ks.k[0].pk, 1);
      uint8_t h[PX_HASH_LEN];
      assert_int_equal(px_mempool_add(&mp, s, t.data, t.len, 1, h), 0);
      assert_true(px_mempool_has(&mp, h));
      px_buf_release(&t);
    }
  assert_int_equal(mp.live, PER * (TU_NKEYS - 1));
  for (int k = 1; k < TU_NKEYS; k++)
    assert_int_equal(px_mempool_sender_count(&mp, ks.k[k].pk), PER);
  px_mempool_release(&mp);
  px_ledger_state_free(s);
}

static void test_valset_rotation(void **state) {
  (void)state;
  tu_keys_t ks;
  tu_keys(&ks);
  px_genesis_t g;
  uint8_t pks[4][PX_PK_LEN];
  for (int i = 0; i < 4; i++)
    memcpy(pks[i], ks.k[i].pk, PX_PK_LEN);
  px_genesis_init(&g);
  assert_int_equal(px_genesis_make(&g, "rot", (const uint8_t(*)[PX_PK_LEN])pks,
                                   4, 1000, 10000000),
                   0);
  px_ledger_state_t *s;
  assert_int_equal(px_ledger_state_from_genesis(&g, &s), 0);
  px_cons_valset_t vs;
  int seen[4] = {0};
  uint32_t prev = 99;
  for (uint64_t h = 1; h <= 8; h++) {
    assert_int_equal(px_chain_valset(s, h, &vs), 0);
    assert_int_equal(vs.n, 4);
    uint32_t p = px_cons_valset_proposer(&vs, 0);
    assert_true(p < 4);
    assert_int_not_equal(p, prev); /* equal powers: round robin */
    seen[p]++;
    prev = p;
  }
  for (int i = 0; i < 4; i++)
    assert_int_equal(seen[i], 2);
  /* Deterministic: the same height gives the same set. */
  px_cons_valset_t a, b;
  assert_int_equal(px_chain_valset(s, 77, &a), 0);
  assert_int_equal(px_chain_valset(s, 77, &b), 0);
  assert_int_equal(px_cons_valset_proposer(&a, 3),
                   px_cons_valset_proposer(&b, 3));
  px_ledger_state_free(s);
  px_genesis_release(&g);
}

int main(void) {
  px_crypto_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mempool_admission),
      cmocka_unit_test(test_mempool_update_after_block),
      cmocka_unit_test(test_mempool_many),
      cmocka_unit_test(test_valset_rotation),
  };
  return cmocka_run_group_tests_name("chain", tests, NULL, NULL);
}
