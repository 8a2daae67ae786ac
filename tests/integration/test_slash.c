/*
 * test_slash.c — a Byzantine validator on real processes gets slashed.
 *
 * A devnet of 4 validators (`plexus devnet up --validators 4`) produces
 * blocks; then node 3 is stopped and restarted with the test-only option
 * `chain.test_equivocate = true` (docs/chain.md), which makes it sign and
 * gossip a conflicting vote for every vote it casts.  What must follow:
 *  - the honest nodes' cores see the two votes, emit EVIDENCE, pool it and
 *    a proposer commits it in a block (`block N` reports n_evidence > 0);
 *  - node 3's stake drops by slash_fraction_bps (5%, the genesis default)
 *    per committed piece, it is jailed and leaves the validator set;
 *  - the three others keep deciding, agree on block and app hash, and the
 *    supply invariant (which counts the slash as burned) holds on every
 *    node.
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

#include "harness.h"

#define NODES 4
#define BYZ 3
#define UP_MS 60000
#define SLASH_MS 60000

static char *g_home;
static char g_dir[NODES][600];
static char g_byz_id[80];

static void kill_all(void) {
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g_dir[i], "node.pid");
    pid_t pid = h_read_pid_file(p);
    if (pid > 0 && h_pid_alive(pid)) {
      h_kill(pid, SIGKILL);
      h_wait_gone(pid, 2000);
    }
  }
  h_reap();
}

static void log_tail(int i) {
  char p[700];
  h_path(p, sizeof p, g_dir[i], "node.log");
  char *s = h_read_file(p);
  if (!s) return;
  size_t n = strlen(s);
  print_message("---- tail of %s ----\n%s\n", p, s + (n > 3000 ? n - 3000 : 0));
  free(s);
}

static int setup(void **state) {
  (void)state;
  if (!(g_home = h_tmpdir("slash"))) return -1;
  for (int i = 0; i < NODES; i++)
    snprintf(g_dir[i], sizeof g_dir[i], "%s/node%d", g_home, i);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--validators", "4", "--home",
                  g_home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  return rc ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  if (!g_home) return 0;
  h_result_t r;
  h_runl(&r, 20000, "devnet", "down", "--home", g_home, NULL);
  h_result_free(&r);
  kill_all();
  h_rmrf(g_home);
  free(g_home);
  g_home = NULL;
  return 0;
}

static long long chain_field(int i, const char *key) {
  char *s = h_control(g_dir[i], "chain", 3000);
  if (!s) return -1;
  long long v = h_json_int(s, key, -1);
  if (strstr(s, "\"supply_ok\":false")) v = -2;
  free(s);
  return v;
}

static long long stake_of(int node, const char *id) {
  char cmd[120];
  snprintf(cmd, sizeof cmd, "account %s", id);
  char *s = h_control(g_dir[node], cmd, 3000);
  long long v = s ? h_json_int(s, "stake", -1) : -1;
  free(s);
  return v;
}

static int in_validators(int node, const char *id) {
  char *s = h_control(g_dir[node], "validators", 3000);
  if (!s) return -1;
  int in = strstr(s, id) != NULL;
  free(s);
  return in;
}

typedef struct {
  long long want;
} reach_t;

static int honest_reach(void *ud) {
  reach_t *r = ud;
  for (int i = 0; i < NODES; i++)
    if (i != BYZ && chain_field(i, "height") < r->want) return 0;
  return 1;
}

static long long g_stake0;

static int slashed_and_out(void *ud) {
  (void)ud;
  for (int i = 0; i < NODES; i++) {
    if (i == BYZ) continue;
    long long st = stake_of(i, g_byz_id);
    if (st < 0 || st >= g_stake0 || in_validators(i, g_byz_id) != 0) return 0;
  }
  return 1;
}

static void test_equivocator_slashed(void **state) {
  (void)state;
  reach_t r0 = {2};
  assert_true(h_wait_until(honest_reach, &r0, 30000, 100));
  char *s = h_status(g_dir[BYZ], 3000);
  assert_non_null(s);
  assert_int_equal(h_json_str(s, "node_id", g_byz_id, sizeof g_byz_id), 0);
  free(s);
  assert_int_equal(in_validators(0, g_byz_id), 1);
  g_stake0 = stake_of(0, g_byz_id);
  assert_true(g_stake0 > 0);

  /* Restart node 3 as a Byzantine validator. */
  char p[700];
  h_path(p, sizeof p, g_dir[BYZ], "node.pid");
  pid_t pid = h_read_pid_file(p);
  assert_true(pid > 0);
  h_kill(pid, SIGKILL);
  assert_true(h_wait_gone(pid, 5000));
  h_path(p, sizeof p, g_dir[BYZ], "config");
  FILE *f = fopen(p, "a");
  assert_non_null(f);
  fputs("\n[chain]\ntest_equivocate = true\n", f);
  fclose(f);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", g_home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  assert_int_equal(rc, 0);

  int ok = h_wait_until(slashed_and_out, NULL, SLASH_MS, 200);
  if (!ok) {
    log_tail(0);
    log_tail(BYZ);
  }
  assert_true(ok);
  long long st = stake_of(0, g_byz_id);
  long long committed = chain_field(0, "evidence_committed");
  print_message("byzantine %.16s: stake %lld -> %lld, %lld evidence "
                "committed on node0\n",
                g_byz_id, g_stake0, st, committed);
  /* Each piece burns 5% of what is left: at least one did. */
  assert_true(st <= g_stake0 - g_stake0 / 20);

  /* A block carries the evidence. */
  long long top = chain_field(0, "height");
  int found = 0;
  for (long long h = 1; h <= top && !found; h++) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "block %lld", h);
    char *b = h_control(g_dir[0], cmd, 3000);
    assert_non_null(b);
    found = h_json_int(b, "n_evidence", 0) > 0;
    free(b);
  }
  assert_true(found);

  /* The three honest validators carry on and agree. */
  reach_t r1 = {top + 3};
  ok = h_wait_until(honest_reach, &r1, 30000, 100);
  if (!ok) log_tail(0);
  assert_true(ok);
  char h0[80] = "";
  for (int i = 0; i < NODES; i++) {
    if (i == BYZ) continue;
    char cmd[64], hash[80];
    snprintf(cmd, sizeof cmd, "block %lld", top + 2);
    char *b = h_control(g_dir[i], cmd, 3000);
    assert_non_null(b);
    assert_int_equal(h_json_str(b, "hash", hash, sizeof hash), 0);
    free(b);
    if (!h0[0]) memcpy(h0, hash, sizeof hash);
    assert_string_equal(hash, h0);
  }
  for (int i = 0; i < NODES; i++)
    assert_true(chain_field(i, "height") >= 0); /* -2: supply broken */
  for (int i = 0; i < NODES; i++) {
    h_path(p, sizeof p, g_dir[i], "node.log");
    assert_int_equal(h_count_lines_containing(p, "supply invariant broken"), 0);
  }
}

int main(void) {
  h_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_equivocator_slashed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
