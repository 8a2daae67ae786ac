/*
 * test_ledger_store.c — the LMDB store (src/ledger/store.c).
 *
 * What is proven here:
 *  - init / commit / load round trip: the loaded state has the same root,
 *    height and metadata; block, block-hash and tx-status queries answer;
 *    init twice is PX_EEXIST; a commit out of order is PX_ESTATE;
 *  - crash safety: a child process applies and commits blocks in a loop
 *    and is SIGKILLed at random moments, many times, each time reopening
 *    the store and carrying on.  Afterwards the store loads (its stored map
 *    hashes to its stored app hash) and replaying every stored block from
 *    the stored genesis gives exactly that root at exactly that height.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "unit/ledger_testutil.h"

static tu_keys_t K;

static int setup(void **st) {
  (void)st;
  if (px_crypto_init() != 0) return -1;
  tu_keys(&K);
  return 0;
}

static void make_dir(char *path, size_t cap) {
  snprintf(path, cap, "/tmp/px_ledger_store_XXXXXX");
  assert_non_null(mkdtemp(path));
}

static void rm_dir(const char *path) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  assert_int_equal(system(cmd), 0);
}

/* Apply one block of random transfers on s and commit it. */
static int step(px_ledger_state_t *s, px_ledger_store_t *st, px_rng_t *rng,
                px_tx_result_t *res, uint8_t tx0_hash[32]) {
  tu_txs_t t;
  tu_txs_init(&t);
  size_t n = px_rng_below(rng, 20);
  for (size_t i = 0; i < n; i++) {
    size_t from = 1 + px_rng_below(rng, 7);
    px_account_t a;
    if (px_ledger_account(s, K.k[from].pk, &a)) abort();
    /* Several from one sender: nonces advance within the block. */
    uint64_t nonce = a.nonce;
    for (size_t j = 0; j < t.n; j++) {
      px_tx_t tx;
      if (px_tx_decode(t.buf[j].data, t.buf[j].len, &tx) == 0 &&
          memcmp(tx.sender, K.k[from].pk, 32) == 0)
        nonce++;
    }
    if (tu_transfer(&t, &K.k[from], nonce, K.k[px_rng_below(rng, 9)].pk,
                    1 + px_rng_below(rng, 1000), TU_FEE))
      abort();
  }
  px_buf_t enc;
  px_block_t b;
  px_buf_init(&enc, 0);
  int rc = tu_make(s, &K.k[0], &t, &enc);
  if (!rc) rc = px_block_decode(enc.data, enc.len, &b);
  if (!rc) {
    rc = px_ledger_apply_block(s, &b, res);
    if (!rc) rc = px_ledger_store_commit(st, s, &b, res);
    if (!rc && tx0_hash && b.n_txs) memcpy(tx0_hash, b.txs[0].hash, 32);
    px_block_release(&b);
  }
  px_buf_release(&enc);
  tu_txs_release(&t);
  return rc;
}

static void init_store(const char *dir) {
  px_genesis_t g;
  px_ledger_state_t *s;
  px_ledger_store_t *st;
  tu_genesis(&g, &K, 8);
  assert_int_equal(px_ledger_state_from_genesis(&g, &s), 0);
  assert_int_equal(px_ledger_store_open(dir, 64 << 20, &st), 0);
  assert_int_equal(px_ledger_store_init(st, &g, s), 0);
  assert_int_equal(px_ledger_store_init(st, &g, s), PX_EEXIST);
  px_ledger_store_close(st);
  px_ledger_state_free(s);
  px_genesis_release(&g);
}

/* Replay every stored block from the stored genesis; return the state. */
static px_ledger_state_t *replay(px_ledger_store_t *st, uint64_t height) {
  px_genesis_t g;
  px_ledger_state_t *s;
  assert_int_equal(px_ledger_store_genesis(st, &g), 0);
  assert_int_equal(px_ledger_state_from_genesis(&g, &s), 0);
  px_genesis_release(&g);
  px_tx_result_t *res = calloc(PX_LEDGER_BLOCK_MAX_TXS, sizeof *res);
  assert_non_null(res);
  for (uint64_t h = 1; h <= height; h++) {
    px_buf_t enc;
    px_block_t b;
    px_buf_init(&enc, 0);
    assert_int_equal(px_ledger_store_block(st, h, &enc), 0);
    assert_int_equal(px_block_decode(enc.data, enc.len, &b), 0);
    assert_int_equal(px_ledger_apply_block(s, &b, res), 0);
    uint64_t hh = 0;
    assert_int_equal(px_ledger_store_block_height(st, b.hash, &hh), 0);
    assert_int_equal(hh, h);
    px_block_release(&b);
    px_buf_release(&enc);
  }
  free(res);
  return s;
}

static void test_store_roundtrip(void **unused) {
  (void)unused;
  char dir[64];
  make_dir(dir, sizeof dir);
  init_store(dir);
  px_ledger_store_t *st;
  px_ledger_state_t *s;
  assert_int_equal(px_ledger_store_open(dir, 64 << 20, &st), 0);
  assert_int_equal(px_ledger_store_load(st, &s), 0);
  px_rng_t rng;
  px_rng_seed(&rng, 7);
  px_tx_result_t res[64];
  uint8_t txh[32] = {0};
  for (int i = 0; i < 20; i++)
    assert_int_equal(step(s, st, &rng, res, txh), 0);
  uint64_t h;
  assert_int_equal(px_ledger_store_height(st, &h), 0);
  assert_int_equal(h, 20);
  px_tx_location_t loc;
  assert_int_equal(px_ledger_store_tx(st, txh, &loc), 0);
  assert_true(loc.height >= 1 && loc.height <= 20);
  assert_int_equal(loc.index, 0);
  uint8_t nope[32] = {1};
  assert_int_equal(px_ledger_store_tx(st, nope, &loc), PX_ENOTFOUND);
  px_buf_t out;
  px_buf_init(&out, 0);
  assert_int_equal(px_ledger_store_block(st, 21, &out), PX_ENOTFOUND);
  px_buf_release(&out);
  px_ledger_store_close(st);

  /* Reopen: same state. */
  px_ledger_state_t *s2;
  assert_int_equal(px_ledger_store_open(dir, 64 << 20, &st), 0);
  assert_int_equal(px_ledger_store_load(st, &s2), 0);
  uint8_t r1[32], r2[32];
  px_ledger_app_hash(s, r1);
  px_ledger_app_hash(s2, r2);
  assert_memory_equal(r1, r2, 32);
  assert_int_equal(px_ledger_height(s2), 20);
  px_ledger_last_block_hash(s, r1);
  px_ledger_last_block_hash(s2, r2);
  assert_memory_equal(r1, r2, 32);
  /* The loaded state continues the chain identically. */
  px_rng_seed(&rng, 99);
  assert_int_equal(step(s2, st, &rng, res, NULL), 0);
  /* Replaying the stored chain reaches the same root. */
  px_ledger_state_t *rp = replay(st, 21);
  px_ledger_app_hash(rp, r1);
  px_ledger_app_hash(s2, r2);
  assert_memory_equal(r1, r2, 32);
  px_ledger_state_free(rp);
  px_ledger_store_close(st);
  px_ledger_state_free(s);
  px_ledger_state_free(s2);
  rm_dir(dir);
}

static void child_loop(const char *dir, uint64_t seed) {
  px_ledger_store_t *st;
  px_ledger_state_t *s;
  if (px_ledger_store_open(dir, 64 << 20, &st)) _exit(2);
  if (px_ledger_store_load(st, &s)) _exit(3);
  px_rng_t rng;
  px_rng_seed(&rng, seed);
  px_tx_result_t res[64];
  for (;;)
    if (step(s, st, &rng, res, NULL)) _exit(4);
}

static void test_store_kill9(void **unused) {
  (void)unused;
  char dir[64];
  make_dir(dir, sizeof dir);
  init_store(dir);
  px_rng_t rng;
  uint64_t seed = (uint64_t)time(NULL);
  px_rng_seed(&rng, seed);
  printf("kill -9 test seed %llu\n", (unsigned long long)seed);
  uint64_t last = 0;
  int round;
  /* At least 12 kills; more (with longer runs) until blocks were committed,
   * so a slow machine still exercises a non-trivial chain. */
  for (round = 0; round < 12 || (last < 5 && round < 100); round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) child_loop(dir, px_rng_next(&rng) + (uint64_t)round);
    long ms = (long)(2 + px_rng_below(&rng, 60)) + round;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* Killed, not exited with an error. */
    assert_true(WIFSIGNALED(status));

    px_ledger_store_t *st;
    px_ledger_state_t *s;
    assert_int_equal(px_ledger_store_open(dir, 64 << 20, &st), 0);
    assert_int_equal(px_ledger_store_load(st, &s), 0);
    uint64_t h = px_ledger_height(s);
    assert_true(h >= last);
    last = h;
    px_ledger_state_t *rp = replay(st, h);
    uint8_t r1[32], r2[32];
    px_ledger_app_hash(s, r1);
    px_ledger_app_hash(rp, r2);
    assert_memory_equal(r1, r2, 32);
    uint64_t a, e;
    assert_int_equal(px_ledger_supply(s, &a, &e), 0);
    assert_true(a == e);
    px_ledger_state_free(rp);
    px_ledger_state_free(s);
    px_ledger_store_close(st);
  }
  printf("kill -9 test: reached height %llu over %d kills\n",
         (unsigned long long)last, round);
  assert_true(last > 0);
  rm_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_roundtrip),
      cmocka_unit_test(test_store_kill9),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
