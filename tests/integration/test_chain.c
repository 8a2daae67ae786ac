/*
 * test_chain.c — the replicated ledger on real processes over loopback.
 *
 * One devnet of 4 validators (`plexus devnet up --validators 4`), tests in
 * order:
 *  1. blocks are produced: every node's chain height grows past 3;
 *  2. `plexus wallet send` submits a transfer that is finalized: the CLI
 *     exits 0 after the commit, and every node reports the new balances
 *     (sender -amount-fee, receiver +amount);
 *  3. bad input is rejected with its own error and changes nothing:
 *     malformed bytes, non-hex, a flipped signature, a replayed (committed)
 *     tx, an old nonce, a wrong chain id, over-size (chain cap and hard
 *     cap) — the sender's account is unchanged and none is ever committed;
 *  4. load + kill -9: 4 wallets submit signed transfers in batches through
 *     two nodes while a randomly chosen other validator is killed at a
 *     random moment and restarted with `devnet up`; every tx commits (each
 *     wallet's nonce reaches its count), the restarted node catches up, and
 *     all four report the same block hash and app hash at the same height;
 *  5. the supply invariant: every status poll on every node says
 *     supply_ok, and no node ever logged a broken invariant (each node
 *     checks it after every block it commits).
 * Teardown kills every node by pid, even after a failed assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "harness.h"

#define NODES 4
#define RUN_MS 30000
#define UP_MS 60000
#define LOAD_PER_WALLET 250
#define BATCH 20

typedef struct {
  char *home;
  char dir[NODES][600];
  pid_t pid[NODES];
  px_keypair_t wallet[NODES];
  char addr[NODES][65];
  char chain_id[64];
} chain_net_t;

static chain_net_t g;

static void read_pids(void) {
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g.dir[i], "node.pid");
    g.pid[i] = h_read_pid_file(p);
  }
}

static void log_tail(int i) {
  char p[700];
  h_path(p, sizeof p, g.dir[i], "node.log");
  char *s = h_read_file(p);
  if (!s) return;
  size_t n = strlen(s);
  print_message("---- tail of %s ----\n%s\n", p, s + (n > 2500 ? n - 2500 : 0));
  free(s);
}

static int setup(void **state) {
  (void)state;
  memset(&g, 0, sizeof g);
  if (!(g.home = h_tmpdir("chain"))) return -1;
  for (int i = 0; i < NODES; i++)
    snprintf(g.dir[i], sizeof g.dir[i], "%s/node%d", g.home, i);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--validators", "4", "--home",
                  g.home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  if (rc) return -1;
  read_pids();
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g.dir[i], "wallet.key");
    if (px_keyfile_read(p, &g.wallet[i])) return -1;
    px_node_id_hex(g.wallet[i].pk, g.addr[i]);
  }
  px_genesis_t gen;
  px_genesis_init(&gen);
  char gp[700];
  h_path(gp, sizeof gp, g.dir[0], "genesis.json");
  if (px_genesis_read_file(gp, &gen)) return -1;
  snprintf(g.chain_id, sizeof g.chain_id, "%s", gen.chain_id);
  px_genesis_release(&gen);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (!g.home) return 0;
  h_result_t r;
  h_runl(&r, 20000, "devnet", "down", "--home", g.home, NULL);
  h_result_free(&r);
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g.dir[i], "node.pid");
    pid_t cand[2] = {g.pid[i], h_read_pid_file(p)};
    for (int k = 0; k < 2; k++)
      if (cand[k] > 0 && h_pid_alive(cand[k])) {
        h_kill(cand[k], SIGKILL);
        h_wait_gone(cand[k], 2000);
      }
    px_key_wipe(&g.wallet[i]);
  }
  h_reap();
  h_rmrf(g.home);
  free(g.home);
  g.home = NULL;
  return 0;
}

/* ---- chain views -----------------------------------------------------------
 */

static int g_supply_bad; /* any poll that saw supply_ok false */

static long long chain_height(int i) {
  char *s = h_control(g.dir[i], "chain", 3000);
  if (!s) return -1;
  long long h = h_json_int(s, "height", -1);
  if (strstr(s, "\"supply_ok\":false")) g_supply_bad++;
  free(s);
  return h;
}

typedef struct {
  uint64_t balance, nonce;
} acct_t;

static int account(int node, const char *addr, acct_t *a) {
  char cmd[120];
  snprintf(cmd, sizeof cmd, "account %s", addr);
  char *s = h_control(g.dir[node], cmd, 3000);
  if (!s || !strstr(s, "\"ok\":true")) {
    free(s);
    return -1;
  }
  a->balance = (uint64_t)h_json_int(s, "balance", -1);
  a->nonce = (uint64_t)h_json_int(s, "nonce", -1);
  free(s);
  return 0;
}

typedef struct {
  long long want;
  const int *which;
} height_pred_t;

static int heights_reach(void *ud) {
  height_pred_t *p = ud;
  for (int k = 0; p->which[k] >= 0; k++)
    if (chain_height(p->which[k]) < p->want) return 0;
  return 1;
}

static const int g_all[] = {0, 1, 2, 3, -1};

/* Submit one tx (bytes) to a node; the reply (heap) or NULL. */
static char *submit(int node, const uint8_t *tx, size_t n) {
  char *cmd = malloc(n * 2 + 8);
  memcpy(cmd, "tx ", 3);
  px_hex_encode(tx, n, cmd + 3);
  char *r = h_control(g.dir[node], cmd, 5000);
  free(cmd);
  return r;
}

static void expect_rejected(int node, const uint8_t *tx, size_t n,
                            const char *err) {
  char *r = submit(node, tx, n);
  assert_non_null(r);
  if (!strstr(r, err)) print_message("want %s, got %s\n", err, r);
  assert_non_null(strstr(r, "\"ok\":false"));
  assert_non_null(strstr(r, err));
  assert_non_null(strstr(r, "\"message\":\"transaction rejected: "));
  free(r);
}

static void transfer(px_buf_t *out, const char *chain_id, int from, int to,
                     uint64_t nonce, uint64_t amount) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_tx_payload_transfer(&pl, g.wallet[to].pk, amount), 0);
  px_buf_reset(out);
  assert_int_equal(px_tx_make(chain_id, &g.wallet[from], nonce, 1000,
                              PX_TX_TRANSFER, pl.data, pl.len, out),
                   0);
  px_buf_release(&pl);
}

static int committed(int node, const uint8_t *tx, size_t n) {
  uint8_t h[32];
  char hx[65], cmd[100];
  px_hash(h, tx, n);
  px_hex_encode(h, 32, hx);
  snprintf(cmd, sizeof cmd, "txstatus %s", hx);
  char *r = h_control(g.dir[node], cmd, 3000);
  int c = r && strstr(r, "\"status\":\"committed\"");
  free(r);
  return c;
}

/* ===== tests ================================================================
 */

static void test_blocks_produced(void **state) {
  (void)state;
  height_pred_t p = {3, g_all};
  int ok = h_wait_until(heights_reach, &p, 20000, 100);
  if (!ok) log_tail(0);
  assert_true(ok);
  char *s = h_control(g.dir[1], "chain", 3000);
  assert_non_null(s);
  assert_non_null(strstr(s, "\"validator\":true"));
  assert_int_equal(h_json_int(s, "validators", 0), 4);
  free(s);
}

static void test_transfer_finalized(void **state) {
  (void)state;
  acct_t a0, a1, b0, b1;
  assert_int_equal(account(3, g.addr[0], &a0), 0);
  assert_int_equal(account(3, g.addr[1], &a1), 0);
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "wallet", "send", "--home", g.dir[0], "--to",
                  g.addr[1], "--amount", "777", "--json", NULL);
  if (rc) print_message("send: %s %s\n", r.out, r.err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(r.out, "\"status\":\"committed\""));
  long long fee = h_json_int(r.out, "fee_paid", -1);
  long long height = h_json_int(r.out, "height", -1);
  assert_true(fee > 0);
  h_result_free(&r);
  /* Every node that has the block agrees on the new balances. */
  height_pred_t p = {height, g_all};
  assert_true(h_wait_until(heights_reach, &p, 10000, 50));
  for (int i = 0; i < NODES; i++) {
    assert_int_equal(account(i, g.addr[0], &b0), 0);
    assert_int_equal(account(i, g.addr[1], &b1), 0);
    assert_true(b0.balance == a0.balance - 777 - (uint64_t)fee);
    assert_true(b0.nonce == a0.nonce + 1);
    assert_true(b1.balance == a1.balance + 777);
  }
}

static void test_bad_txs_rejected(void **state) {
  (void)state;
  acct_t before, after;
  assert_int_equal(account(0, g.addr[2], &before), 0);
  px_buf_t tx;
  px_buf_init(&tx, 0);
  /* A good tx, committed, then replayed byte for byte: old nonce. */
  transfer(&tx, g.chain_id, 2, 3, before.nonce, 5);
  char *r = submit(0, tx.data, tx.len);
  assert_non_null(r);
  assert_non_null(strstr(r, "\"ok\":true"));
  free(r);
  for (int t = 0; t < 200 && !committed(0, tx.data, tx.len); t++)
    h_sleep_ms(50);
  assert_true(committed(0, tx.data, tx.len));
  assert_int_equal(account(0, g.addr[2], &before), 0);
  expect_rejected(1, tx.data, tx.len, "PX_ENONCE");
  /* Old nonce, freshly signed. */
  transfer(&tx, g.chain_id, 2, 3, before.nonce - 1, 6);
  expect_rejected(1, tx.data, tx.len, "PX_ENONCE");
  /* Flipped signature bit. */
  transfer(&tx, g.chain_id, 2, 3, before.nonce, 7);
  tx.data[tx.len - 1] ^= 1;
  expect_rejected(2, tx.data, tx.len, "PX_EBADSIG");
  uint8_t badsig[32];
  px_hash(badsig, tx.data, tx.len);
  /* Flipped payload bit: the signature no longer covers it. */
  tx.data[tx.len - 1] ^= 1;
  tx.data[tx.len - 70] ^= 1;
  expect_rejected(2, tx.data, tx.len, "PX_EBADSIG");
  /* Wrong chain id. */
  transfer(&tx, "another-chain", 2, 3, before.nonce, 8);
  expect_rejected(3, tx.data, tx.len, "PX_ECHAIN");
  /* Malformed: truncated, garbage, not hex. */
  transfer(&tx, g.chain_id, 2, 3, before.nonce, 9);
  expect_rejected(0, tx.data, tx.len - 1, "PX_E");
  uint8_t junk[100];
  memset(junk, 0xab, sizeof junk);
  expect_rejected(0, junk, sizeof junk, "PX_E");
  r = h_control(g.dir[0], "tx 0g12", 3000);
  assert_non_null(r);
  assert_non_null(strstr(r, "PX_EDECODE"));
  free(r);
  /* Over-size: above the chain's max_tx_size (65536). */
  uint8_t *big = calloc(1, 70000);
  memcpy(big, tx.data, tx.len);
  expect_rejected(0, big, 66000, "PX_ETOOBIG");
  expect_rejected(0, big, 70000, "PX_ETOOBIG");
  free(big);
  /* Nothing changed, and the bad-signature tx is unknown everywhere. */
  h_sleep_ms(600);
  for (int i = 0; i < NODES; i++) {
    assert_int_equal(account(i, g.addr[2], &after), 0);
    assert_true(after.nonce == before.nonce);
    assert_true(after.balance == before.balance);
    char hx[65], cmd[100];
    px_hex_encode(badsig, 32, hx);
    snprintf(cmd, sizeof cmd, "txstatus %s", hx);
    r = h_control(g.dir[i], cmd, 3000);
    assert_non_null(r);
    assert_non_null(strstr(r, "\"status\":\"unknown\""));
    free(r);
  }
  px_buf_release(&tx);
}

static void test_load_kill9_catch_up(void **state) {
  (void)state;
  srand((unsigned)(h_now_ms() ^ (uint64_t)getpid()));
  int victim = 2 + rand() % 2; /* load goes through node0 and node1 */
  uint64_t nonce[NODES], start_nonce[NODES];
  for (int w = 0; w < NODES; w++) {
    acct_t a;
    assert_int_equal(account(0, g.addr[w], &a), 0);
    nonce[w] = start_nonce[w] = a.nonce;
  }
  uint64_t t0 = h_now_ms();
  uint64_t kill_at = t0 + 50 + (uint64_t)(rand() % 500);
  int killed = 0;
  px_buf_t tx, cmd;
  px_buf_init(&tx, 0);
  px_buf_init(&cmd, 0);
  int sent = 0, accepted = 0;
  while (sent < LOAD_PER_WALLET * NODES) {
    for (int w = 0; w < NODES; w++) {
      px_buf_reset(&cmd);
      px_buf_printf(&cmd, "txs");
      for (int k = 0; k < BATCH; k++) {
        transfer(&tx, g.chain_id, w, (w + 1 + k % 3) % NODES, nonce[w]++, 3);
        char *hx = malloc(tx.len * 2 + 1);
        px_hex_encode(tx.data, tx.len, hx);
        px_buf_printf(&cmd, " %s", hx);
        free(hx);
      }
      sent += BATCH;
      char *r = h_control(g.dir[w % 2], (const char *)cmd.data, 10000);
      assert_non_null(r);
      accepted += (int)h_json_int(r, "accepted", 0);
      if (h_json_int(r, "accepted", 0) != BATCH)
        print_message("batch: %s\n", r);
      free(r);
    }
    if (!killed && h_now_ms() >= kill_at) {
      print_message("kill -9 node%d after %llu ms\n", victim,
                    (unsigned long long)(h_now_ms() - t0));
      assert_int_equal(h_kill(g.pid[victim], SIGKILL), 0);
      assert_true(h_wait_gone(g.pid[victim], 3000));
      killed = 1;
    }
    h_sleep_ms(50);
  }
  assert_int_equal(accepted, sent);
  if (!killed) {
    assert_int_equal(h_kill(g.pid[victim], SIGKILL), 0);
    assert_true(h_wait_gone(g.pid[victim], 3000));
  }
  /* The chain keeps going with 3 of 4 while the victim is down. */
  long long h_down = chain_height(0);
  height_pred_t p3 = {h_down + 3, (const int[]){0, 1, -1}};
  assert_true(h_wait_until(heights_reach, &p3, 15000, 100));
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", g.home, NULL);
  if (rc) print_message("devnet up: %s %s\n", r.out, r.err);
  assert_int_equal(rc, 0);
  h_result_free(&r);
  read_pids();
  /* Every tx of the load commits. */
  for (int w = 0; w < NODES; w++) {
    uint64_t tw = h_now_ms();
    acct_t a = {0, 0};
    while (h_now_ms() - tw < 30000) {
      if (account(0, g.addr[w], &a) == 0 && a.nonce == nonce[w]) break;
      h_sleep_ms(100);
    }
    if (a.nonce != nonce[w])
      print_message("wallet %d nonce %llu want %llu\n", w,
                    (unsigned long long)a.nonce, (unsigned long long)nonce[w]);
    assert_true(a.nonce == nonce[w]);
  }
  /* The restarted node catches up; all four agree at a common height. */
  long long target = chain_height(0) + 2;
  height_pred_t p4 = {target, g_all};
  int ok = h_wait_until(heights_reach, &p4, 30000, 100);
  if (!ok) log_tail(victim);
  assert_true(ok);
  char hash0[80] = "", app0[80] = "";
  for (int i = 0; i < NODES; i++) {
    char cmdb[64], hash[80], app[80];
    snprintf(cmdb, sizeof cmdb, "block %lld", target);
    char *s = h_control(g.dir[i], cmdb, 3000);
    assert_non_null(s);
    assert_int_equal(h_json_str(s, "hash", hash, sizeof hash), 0);
    assert_int_equal(h_json_str(s, "app_hash", app, sizeof app), 0);
    free(s);
    if (i == 0) {
      memcpy(hash0, hash, sizeof hash);
      memcpy(app0, app, sizeof app);
    }
    assert_string_equal(hash, hash0);
    assert_string_equal(app, app0);
  }
  /* And the same state root now, once all sit at one height. */
  for (int tries = 0; tries < 50; tries++) {
    char *s[NODES];
    int same = 1;
    char a0[80] = "", ai[80];
    long long h0 = -2;
    for (int i = 0; i < NODES; i++) {
      s[i] = h_control(g.dir[i], "chain", 3000);
      assert_non_null(s[i]);
      if (i == 0) {
        h0 = h_json_int(s[i], "height", -1);
        h_json_str(s[i], "app_hash", a0, sizeof a0);
      } else {
        h_json_str(s[i], "app_hash", ai, sizeof ai);
        if (h_json_int(s[i], "height", -1) != h0)
          same = -1;
        else if (strcmp(ai, a0))
          same = 0;
      }
    }
    for (int i = 0; i < NODES; i++)
      free(s[i]);
    assert_true(same != 0); /* equal heights never disagree */
    if (same == 1) break;
    h_sleep_ms(20);
  }
  char *s = h_control(g.dir[victim], "chain", 3000);
  assert_non_null(s);
  print_message("victim node%d: %s\n", victim, s);
  free(s);
  px_buf_release(&tx);
  px_buf_release(&cmd);
}

static void test_supply_invariant(void **state) {
  (void)state;
  for (int k = 0; k < 5; k++) {
    for (int i = 0; i < NODES; i++)
      assert_true(chain_height(i) > 0);
    h_sleep_ms(100);
  }
  assert_int_equal(g_supply_bad, 0);
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g.dir[i], "node.log");
    assert_int_equal(h_count_lines_containing(p, "supply invariant broken"), 0);
    assert_true(h_count_lines_containing(p, "committed block") +
                    h_count_lines_containing(p, "synced block") >
                0);
  }
}

int main(void) {
  h_init();
  px_crypto_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blocks_produced),
      cmocka_unit_test(test_transfer_finalized),
      cmocka_unit_test(test_bad_txs_rejected),
      cmocka_unit_test(test_load_kill9_catch_up),
      cmocka_unit_test(test_supply_invariant),
  };
  return cmocka_run_group_tests_name("chain", tests, setup, teardown) ? 1 : 0;
}
