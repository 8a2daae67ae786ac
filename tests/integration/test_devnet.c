/*
 * test_devnet.c — integration tests on real `plexus` processes over loopback.
 *
 * What is tested, and how:
 *  1. Devnet lifecycle (8 nodes, one shared devnet, tests run in order):
 *     `plexus devnet up --nodes 8` gives every node a full peer view
 *     (peer_count 7 and the 7 other ids in its status JSON); a gossip from
 *     node0 lands exactly once in the gossip.log of each of node1..7 and not
 *     in node0's, and is still there exactly once 500 ms later; an echo
 *     request between two nodes via `plexus request` returns the text;
 *     after `kill -9` of 3 nodes the 5 survivors notice (peer_count 4) and
 *     still gossip to each other exactly once; `plexus devnet up` again
 *     restarts exactly the 3 dead nodes, every node gets back to
 *     peer_count 7 and a fresh gossip reaches all 7 others exactly once;
 *     `plexus devnet down` stops every process, each node.log ending with
 *     "stopped cleanly" and no control socket left.
 *  2. CLI errors: missing home, unsafe key file mode, status without a
 *     node, unknown options/commands, keygen output, double init.
 *  3. Restart of a node whose killed process is still a zombie (its parent
 *     has not reaped it, as under a container PID 1 that never reaps):
 *     `devnet up` must restart it.
 * Everything is observed from outside: exit codes, stdout/stderr, the
 * control socket (px_node_control), gossip.log, node.log, node.pid, /proc.
 * Group teardowns kill every node by pid, even after a failed assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define NODES 8
#define RUN_MS 15000      /* quick CLI commands */
#define UP_MS 90000       /* devnet up waits for convergence */
#define CONVERGE_MS 20000 /* peers reconnecting */
#define DELIVER_MS 10000  /* a gossip reaching everyone */

typedef struct {
  char *home;
  int nodes;
  char dir[NODES][600];
  char id[NODES][65];
  pid_t pid[NODES];
} devnet_t;

static void devnet_dirs(devnet_t *d) {
  for (int i = 0; i < d->nodes; i++)
    snprintf(d->dir[i], sizeof d->dir[i], "%s/node%d", d->home, i);
}

static void devnet_read_pids(devnet_t *d) {
  for (int i = 0; i < d->nodes; i++) {
    char p[700];
    h_path(p, sizeof p, d->dir[i], "node.pid");
    d->pid[i] = h_read_pid_file(p);
  }
}

/* Stop whatever is left: `devnet down`, then SIGKILL by pid. */
static void devnet_cleanup(devnet_t *d) {
  if (!d->home) return;
  h_result_t r;
  h_runl(&r, 20000, "devnet", "down", "--home", d->home, NULL);
  h_result_free(&r);
  for (int i = 0; i < d->nodes; i++) {
    char p[700];
    h_path(p, sizeof p, d->dir[i], "node.pid");
    pid_t pf = h_read_pid_file(p);
    pid_t cand[2] = {d->pid[i], pf};
    for (int k = 0; k < 2; k++)
      if (cand[k] > 0 && h_pid_alive(cand[k])) {
        h_kill(cand[k], SIGKILL);
        h_wait_gone(cand[k], 2000);
      }
  }
  h_reap();
  h_rmrf(d->home);
  free(d->home);
  d->home = NULL;
}

static void devnet_log_tail(const devnet_t *d, int i) {
  char p[700];
  h_path(p, sizeof p, d->dir[i], "node.log");
  char *s = h_read_file(p);
  if (!s) return;
  size_t n = strlen(s);
  print_message("---- tail of %s ----\n%s\n", p, s + (n > 3000 ? n - 3000 : 0));
  free(s);
}

/* ---- predicates for h_wait_until ------------------------------------------
 */

typedef struct {
  const devnet_t *d;
  const int *which; /* node indexes, -1 terminated */
  long long want;
} peers_pred_t;

static int all_have_peers(void *ud) {
  const peers_pred_t *pp = ud;
  for (int k = 0; pp->which[k] >= 0; k++)
    if (h_peer_count(pp->d->dir[pp->which[k]]) != pp->want) return 0;
  return 1;
}

typedef struct {
  const devnet_t *d;
  const int *which;
  const char *prefix;
} log_pred_t;

static int all_logged(void *ud) {
  const log_pred_t *lp = ud;
  for (int k = 0; lp->which[k] >= 0; k++) {
    char p[700];
    h_path(p, sizeof p, lp->d->dir[lp->which[k]], "gossip.log");
    if (h_count_lines_prefix(p, lp->prefix) < 1) return 0;
  }
  return 1;
}

static size_t gossip_count(const devnet_t *d, int i, const char *id) {
  char p[700];
  h_path(p, sizeof p, d->dir[i], "gossip.log");
  return h_count_lines_prefix(p, id);
}

/* Gossip `text` on topic 7 from node `from`; the message id into id. */
static void gossip_from(const devnet_t *d, int from, const char *text,
                        char id[65]) {
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "gossip", "--home", d->dir[from], "--topic", "7",
                  text, NULL);
  if (rc != 0) print_message("gossip: rc %d out %s err %s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_int_equal(h_json_str(r.out, "id", id, 65), 0);
  assert_int_equal(strlen(id), 64);
  h_result_free(&r);
}

/* Assert that the gossip `id` (text `text`, from node `from`) is in the
 * gossip.log of every node in `to` exactly once — now and 500 ms later —
 * and never in the origin's. */
static void expect_delivered_once(const devnet_t *d, int from, const int *to,
                                  const char *id, const char *text) {
  log_pred_t lp = {d, to, id};
  int ok = h_wait_until(all_logged, &lp, DELIVER_MS, 50);
  for (int k = 0; !ok && to[k] >= 0; k++)
    print_message("node%d has %zu copies of %.16s\n", to[k],
                  gossip_count(d, to[k], id), id);
  assert_true(ok);
  h_sleep_ms(500); /* late duplicates would land by now */
  char want_text[300], want_origin[120];
  snprintf(want_text, sizeof want_text, "text=%s", text);
  snprintf(want_origin, sizeof want_origin, "origin=%s ", d->id[from]);
  for (int k = 0; to[k] >= 0; k++) {
    assert_int_equal(gossip_count(d, to[k], id), 1);
    char p[700];
    h_path(p, sizeof p, d->dir[to[k]], "gossip.log");
    const char *needles[] = {id, " topic=7 ", want_origin, want_text, NULL};
    assert_int_equal(h_count_lines_all(p, needles), 1);
  }
  assert_int_equal(gossip_count(d, from, id), 0);
}

static void unique_text(char *out, size_t cap, const char *tag) {
  static unsigned seq;
  snprintf(out, cap, "it-%s-%ld-%llu-%u", tag, (long)getpid(),
           (unsigned long long)h_now_ms(), seq++);
}

/* ===== group 1: devnet lifecycle ========================================== */

static devnet_t g_net;
static const int g_killed[] = {2, 5, 7, -1};
static const int g_survivors[] = {0, 1, 3, 4, 6, -1};
static pid_t g_killed_pids[3];

static int net_setup(void **state) {
  (void)state;
  memset(&g_net, 0, sizeof g_net);
  g_net.home = h_tmpdir("devnet");
  if (!g_net.home) return -1;
  g_net.nodes = NODES;
  devnet_dirs(&g_net);
  return 0;
}

static int net_teardown(void **state) {
  (void)state;
  devnet_cleanup(&g_net);
  return 0;
}

static void test_up_full_peer_view(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--nodes", "8", "--home", d->home,
                  NULL);
  if (rc != 0) print_message("devnet up: rc %d\n%s%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(r.out, "8 nodes started"));
  h_result_free(&r);
  devnet_read_pids(d);
  char *status[NODES];
  for (int i = 0; i < NODES; i++) {
    assert_true(d->pid[i] > 0);
    assert_true(h_pid_alive(d->pid[i]));
    status[i] = h_status(d->dir[i], 2000);
    assert_non_null(status[i]);
    assert_int_equal(h_json_int(status[i], "peer_count", -1), NODES - 1);
    assert_int_equal(h_json_int(status[i], "pid", -1), d->pid[i]);
    assert_int_equal(h_json_str(status[i], "node_id", d->id[i], 65), 0);
    assert_int_equal(strlen(d->id[i]), 64);
  }
  /* Full view: each node lists every other node's id, and ids differ. */
  for (int i = 0; i < NODES; i++) {
    const char *peers = strstr(status[i], "\"peers\":[");
    assert_non_null(peers);
    for (int j = 0; j < NODES; j++) {
      if (j == i) continue;
      assert_string_not_equal(d->id[i], d->id[j]);
      char pat[80];
      snprintf(pat, sizeof pat, "\"node_id\":\"%s\"", d->id[j]);
      assert_non_null(strstr(peers, pat));
    }
  }
  for (int i = 0; i < NODES; i++)
    free(status[i]);
}

static void test_gossip_reaches_all_once(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  char text[128], id[65];
  unique_text(text, sizeof text, "all");
  gossip_from(d, 0, text, id);
  static const int to[] = {1, 2, 3, 4, 5, 6, 7, -1};
  expect_delivered_once(d, 0, to, id, text);
}

static void test_request_echo(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  char text[128];
  unique_text(text, sizeof text, "echo");
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "request", "--home", d->dir[0], "--peer",
                  d->id[3], text, NULL);
  if (rc != 0)
    print_message("request: rc %d out %s err %s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  char want[200];
  snprintf(want, sizeof want, "\"response\":\"%s\"", text);
  assert_non_null(strstr(r.out, want));
  h_result_free(&r);
  /* A node id we are not connected to fails with a clear message. */
  const char *stranger =
      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  rc = h_runl(&r, RUN_MS, "request", "--home", d->dir[0], "--peer", stranger,
              text, NULL);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(r.out, "not connected"));
  h_result_free(&r);
}

static void test_kill_three_survivors_gossip(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  for (int k = 0; g_killed[k] >= 0; k++) {
    int i = g_killed[k];
    g_killed_pids[k] = d->pid[i];
    assert_int_equal(h_kill(d->pid[i], SIGKILL), 0);
  }
  for (int k = 0; g_killed[k] >= 0; k++)
    assert_true(h_wait_gone(g_killed_pids[k], 5000));
  /* A new message from a survivor reaches the other survivors once. */
  char text[128], id[65];
  unique_text(text, sizeof text, "survivors");
  gossip_from(d, 3, text, id);
  static const int to[] = {0, 1, 4, 6, -1};
  expect_delivered_once(d, 3, to, id, text);
  /* And the survivors have noticed the dead: 4 peers each. */
  peers_pred_t pp = {d, g_survivors, 4};
  int ok = h_wait_until(all_have_peers, &pp, CONVERGE_MS, 100);
  for (int k = 0; !ok && g_survivors[k] >= 0; k++)
    print_message("node%d peer_count %lld\n", g_survivors[k],
                  h_peer_count(d->dir[g_survivors[k]]));
  assert_true(ok);
}

static void test_restart_rejoins(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", d->home, NULL);
  if (rc != 0)
    print_message("devnet up (restart): rc %d\n%s%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(r.out, "3 nodes started"));
  h_result_free(&r);
  devnet_read_pids(d);
  for (int k = 0; g_killed[k] >= 0; k++) {
    int i = g_killed[k];
    assert_true(d->pid[i] > 0);
    assert_int_not_equal(d->pid[i], g_killed_pids[k]);
    assert_true(h_pid_alive(d->pid[i]));
  }
  static const int all[] = {0, 1, 2, 3, 4, 5, 6, 7, -1};
  peers_pred_t pp = {d, all, NODES - 1};
  int ok = h_wait_until(all_have_peers, &pp, CONVERGE_MS, 100);
  for (int i = 0; !ok && i < NODES; i++)
    print_message("node%d peer_count %lld\n", i, h_peer_count(d->dir[i]));
  assert_true(ok);
  /* A restarted node keeps its identity and gets a fresh gossip once. */
  for (int k = 0; g_killed[k] >= 0; k++) {
    char *s = h_status(d->dir[g_killed[k]], 2000);
    assert_non_null(s);
    char id[65];
    assert_int_equal(h_json_str(s, "node_id", id, sizeof id), 0);
    assert_string_equal(id, d->id[g_killed[k]]);
    free(s);
  }
  char text[128], id[65];
  unique_text(text, sizeof text, "rejoin");
  gossip_from(d, 1, text, id);
  static const int to[] = {0, 2, 3, 4, 5, 6, 7, -1};
  expect_delivered_once(d, 1, to, id, text);
}

static void test_down_stops_cleanly(void **state) {
  (void)state;
  devnet_t *d = &g_net;
  devnet_read_pids(d);
  pid_t pids[NODES];
  memcpy(pids, d->pid, sizeof pids);
  h_result_t r;
  int rc = h_runl(&r, 30000, "devnet", "down", "--home", d->home, NULL);
  assert_int_equal(rc, 0);
  if (!strstr(r.out, "stopped 8 nodes cleanly"))
    print_message("devnet down said: %s%s\n", r.out, r.err);
  assert_non_null(strstr(r.out, "stopped 8 nodes cleanly"));
  h_result_free(&r);
  for (int i = 0; i < NODES; i++) {
    assert_true(h_wait_gone(pids[i], 5000));
    char p[700], last[512];
    h_path(p, sizeof p, d->dir[i], "node.log");
    assert_int_equal(h_last_line(p, last, sizeof last), 0);
    if (!strstr(last, "stopped cleanly")) devnet_log_tail(d, i);
    assert_non_null(strstr(last, "stopped cleanly"));
    /* Control socket removed; nobody answers. */
    h_path(p, sizeof p, d->dir[i], "node.sock");
    assert_int_not_equal(access(p, F_OK), 0);
    assert_null(h_status(d->dir[i], 500));
  }
  assert_int_equal(
      h_runl(&r, RUN_MS, "devnet", "status", "--home", d->home, NULL), 0);
  assert_non_null(strstr(r.out, "0/8 nodes up"));
  h_result_free(&r);
}

/* ===== group 2: CLI error cases =============================================
 */

static char *g_cli_tmp;

static int cli_setup(void **state) {
  (void)state;
  g_cli_tmp = h_tmpdir("cli");
  return g_cli_tmp ? 0 : -1;
}

static int cli_teardown(void **state) {
  (void)state;
  h_rmrf(g_cli_tmp);
  free(g_cli_tmp);
  g_cli_tmp = NULL;
  return 0;
}

static size_t count_newlines(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void init_home(const char *home) {
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "init", "--home", home, "--p2p.listen",
                  "127.0.0.1:1", NULL);
  if (rc) print_message("init: %s%s\n", r.out, r.err);
  assert_int_equal(rc, 0);
  h_result_free(&r);
}

static void test_node_without_home(void **state) {
  (void)state;
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "node", "--home", "/nonexistent/plexus-it", NULL);
  assert_int_equal(rc, 1);
  assert_int_equal(count_newlines(r.err), 1);
  assert_non_null(strstr(r.err, "plexus init"));
  h_result_free(&r);
}

static void test_node_unsafe_key_mode(void **state) {
  (void)state;
  char home[512], key[600];
  snprintf(home, sizeof home, "%s/keymode", g_cli_tmp);
  init_home(home);
  h_path(key, sizeof key, home, "node.key");
  struct stat st;
  assert_int_equal(stat(key, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600); /* init writes it private */
  assert_int_equal(chmod(key, 0644), 0);
  h_result_t r;
  int rc = h_runl(&r, 10000, "node", "--home", home, NULL);
  assert_int_equal(rc, 1);
  assert_int_equal(count_newlines(r.err), 1);
  assert_non_null(strstr(r.err, "chmod 600"));
  h_result_free(&r);
}

static void test_status_without_node(void **state) {
  (void)state;
  char home[512];
  snprintf(home, sizeof home, "%s/idle", g_cli_tmp);
  init_home(home);
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "status", "--home", home, "--json", NULL);
  assert_int_equal(rc, 1);
  assert_int_equal(count_newlines(r.err), 1);
  assert_non_null(strstr(r.err, "no node is running"));
  assert_string_equal(r.out, "");
  h_result_free(&r);
}

static void test_unknown_option_and_command(void **state) {
  (void)state;
  h_result_t r;
  int rc = h_runl(&r, RUN_MS, "status", "--home", g_cli_tmp, "--bogus", NULL);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(r.err, "--bogus"));
  h_result_free(&r);
  rc = h_runl(&r, RUN_MS, "node", "--home", g_cli_tmp, "--frobnicate", "1",
              NULL);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(r.err, "--frobnicate"));
  h_result_free(&r);
  rc = h_runl(&r, RUN_MS, "frobnicate", NULL);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(r.err, "frobnicate"));
  h_result_free(&r);
}

static int is_node_id_line(const char *s) {
  for (int i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[64] == '\n' && s[65] == 0;
}

static void test_keygen(void **state) {
  (void)state;
  h_result_t a, b;
  assert_int_equal(h_runl(&a, RUN_MS, "keygen", NULL), 0);
  assert_int_equal(h_runl(&b, RUN_MS, "keygen", NULL), 0);
  assert_true(is_node_id_line(a.out));
  assert_true(is_node_id_line(b.out));
  assert_string_not_equal(a.out, b.out);
  h_result_free(&a);
  h_result_free(&b);
  /* --out writes a private key file and refuses to overwrite it. */
  char out[600];
  h_path(out, sizeof out, g_cli_tmp, "k.key");
  assert_int_equal(h_runl(&a, RUN_MS, "keygen", "--out", out, NULL), 0);
  assert_true(is_node_id_line(a.out));
  struct stat st;
  assert_int_equal(stat(out, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char *before = h_read_file(out);
  assert_int_equal(h_runl(&b, RUN_MS, "keygen", "--out", out, NULL), 1);
  assert_non_null(strstr(b.err, "refusing to overwrite"));
  char *after = h_read_file(out);
  assert_string_equal(before, after);
  free(before);
  free(after);
  h_result_free(&a);
  h_result_free(&b);
}

static void test_init_twice(void **state) {
  (void)state;
  char home[512], cfg[600];
  snprintf(home, sizeof home, "%s/twice", g_cli_tmp);
  h_result_t r;
  assert_int_equal(h_runl(&r, RUN_MS, "init", "--home", home, NULL), 0);
  const char *idp = strstr(r.out, "node id: ");
  assert_non_null(idp);
  char line[80];
  snprintf(line, sizeof line, "%.65s", idp + 9);
  assert_true(is_node_id_line(line));
  h_result_free(&r);
  h_path(cfg, sizeof cfg, home, "config");
  char *before = h_read_file(cfg);
  assert_non_null(before);
  int rc = h_runl(&r, RUN_MS, "init", "--home", home, "--p2p.listen",
                  "127.0.0.1:9", NULL);
  assert_int_equal(rc, 1);
  assert_int_equal(count_newlines(r.err), 1);
  assert_non_null(strstr(r.err, "already holds a node config"));
  h_result_free(&r);
  char *after = h_read_file(cfg);
  assert_string_equal(before, after); /* the failed init changed nothing */
  free(before);
  free(after);
}

/* ===== group 3: restart while the killed process is a zombie ============== */

/*
 * Under a PID 1 that never reaps (containers without an init), a node
 * killed with -9 stays a zombie.  `devnet up` must still see it as not
 * running and restart it.  We reproduce that anywhere by pausing the
 * harness's own reaping: the daemon is our child (we are its subreaper),
 * so it stays a zombie until we reap it.
 */
static devnet_t g_zom;

static int zom_setup(void **state) {
  (void)state;
  memset(&g_zom, 0, sizeof g_zom);
  g_zom.home = h_tmpdir("zombie");
  if (!g_zom.home) return -1;
  g_zom.nodes = 2;
  devnet_dirs(&g_zom);
  return 0;
}

static int zom_teardown(void **state) {
  (void)state;
  h_set_reaping(1);
  devnet_cleanup(&g_zom);
  return 0;
}

static void test_restart_over_zombie(void **state) {
  (void)state;
  devnet_t *d = &g_zom;
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--nodes", "2", "--home", d->home,
                  NULL);
  assert_int_equal(rc, 0);
  h_result_free(&r);
  devnet_read_pids(d);
  pid_t old = d->pid[1];
  h_set_reaping(0);
  assert_int_equal(h_kill(old, SIGKILL), 0);
  assert_true(h_wait_gone(old, 5000)); /* a zombie counts as gone */
  rc = h_runl(&r, 30000, "devnet", "up", "--home", d->home, "--timeout", "8",
              NULL);
  if (rc != 0)
    print_message("devnet up over a zombie: rc %d\n%s%s\n", rc, r.out, r.err);
  h_result_free(&r);
  h_set_reaping(1);
  h_reap();
  /* Regression: devnet's pid_alive once took a zombie for a live node, so
   * this `up` restarted nothing and waited for its timeout. */
  assert_int_equal(rc, 0);
  devnet_read_pids(d);
  assert_int_not_equal(d->pid[1], old);
  assert_true(h_pid_alive(d->pid[1]));
  assert_int_equal(h_peer_count(d->dir[1]), 1);
}

int main(void) {
  h_init();
  const struct CMUnitTest lifecycle[] = {
      cmocka_unit_test(test_up_full_peer_view),
      cmocka_unit_test(test_gossip_reaches_all_once),
      cmocka_unit_test(test_request_echo),
      cmocka_unit_test(test_kill_three_survivors_gossip),
      cmocka_unit_test(test_restart_rejoins),
      cmocka_unit_test(test_down_stops_cleanly),
  };
  const struct CMUnitTest cli[] = {
      cmocka_unit_test(test_node_without_home),
      cmocka_unit_test(test_node_unsafe_key_mode),
      cmocka_unit_test(test_status_without_node),
      cmocka_unit_test(test_unknown_option_and_command),
      cmocka_unit_test(test_keygen),
      cmocka_unit_test(test_init_twice),
  };
  const struct CMUnitTest zombie[] = {
      cmocka_unit_test(test_restart_over_zombie),
  };
  int failed = 0;
  failed += cmocka_run_group_tests_name("devnet_lifecycle", lifecycle,
                                        net_setup, net_teardown);
  failed +=
      cmocka_run_group_tests_name("cli_errors", cli, cli_setup, cli_teardown);
  failed += cmocka_run_group_tests_name("devnet_zombie", zombie, zom_setup,
                                        zom_teardown);
  return failed ? 1 : 0;
}
