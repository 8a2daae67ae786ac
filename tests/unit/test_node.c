/*
 * test_node.c — the node runtime embedded in threads (the threaded part of
 * the code base, so this file is what the TSan build exercises).
 *
 * Two nodes run in one process, each px_node_run on its own thread, with
 * real TCP on 127.0.0.1 and real home directories under /tmp.  The main
 * thread talks to them only through px_node_call (thread-safe) and the
 * control socket, the way embedders and the CLI do.  Also checks the
 * configuration validation of px_node_p2p_config and home creation.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/crypto.h"
#include "plexus/node.h"
#include "plexus/p2p.h"
#include "base/px_internal.h"

typedef struct {
  px_node_t *node;
  pthread_t th;
  int rc;
  char home[256];
  /* written on the node's loop thread, read by main after a call round-trip
   * through px_node_call (which orders them via the node's mutex) */
  pthread_mutex_t mu;
  size_t direct_bytes;
  int direct_msgs;
  int peers_up;
  size_t peer_count;
} tnode_t;

static void *run_node(void *arg) {
  tnode_t *t = arg;
  t->rc = px_node_run(t->node);
  return NULL;
}

static void on_direct(px_node_t *n, const px_p2p_fx_t *fx, void *ud) {
  (void)n;
  tnode_t *t = ud;
  pthread_mutex_lock(&t->mu);
  t->direct_bytes += fx->data.len;
  t->direct_msgs++;
  pthread_mutex_unlock(&t->mu);
}

static void on_peer(px_node_t *n, const px_p2p_fx_t *fx, void *ud) {
  (void)n;
  tnode_t *t = ud;
  pthread_mutex_lock(&t->mu);
  if (fx->kind == PX_P2P_FX_PEER_UP) t->peers_up++;
  pthread_mutex_unlock(&t->mu);
}

static void read_count(px_node_t *n, px_p2p_t *p, void *ud) {
  (void)n;
  tnode_t *t = ud;
  pthread_mutex_lock(&t->mu);
  t->peer_count = px_p2p_peer_count(p);
  pthread_mutex_unlock(&t->mu);
}

static size_t peer_count(tnode_t *t) {
  assert_int_equal(px_node_call(t->node, read_count, t), 0);
  usleep(20000);
  pthread_mutex_lock(&t->mu);
  size_t c = t->peer_count;
  pthread_mutex_unlock(&t->mu);
  return c;
}

typedef struct {
  uint8_t to[32];
  size_t n;
} send_arg_t;

static void do_send(px_node_t *n, px_p2p_t *p, void *ud) {
  (void)n;
  send_arg_t *a = ud;
  uint8_t *buf = px_malloc(a->n);
  memset(buf, 0xab, a->n);
  assert_int_equal(px_p2p_send(p, a->to, 3, buf, a->n), 0);
  px_free(buf);
}

static unsigned free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static void rmtree(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_two_embedded_nodes(void **state) {
  (void)state;
  tnode_t t[2];
  memset(t, 0, sizeof t);
  char base[] = "/tmp/px-node-test.XXXXXX";
  assert_non_null(mkdtemp(base));
  /* Ports: let the kernel choose by probing two free ones. */
  unsigned port0 = free_port(), port1 = free_port();
  while (port1 == port0)
    port1 = free_port();
  char ids[2][PX_NODE_ID_HEX_LEN];
  for (int i = 0; i < 2; i++) {
    snprintf(t[i].home, sizeof t[i].home, "%s/n%d", base, i);
    px_config_t c;
    px_config_init(&c);
    char listen[64], boot[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", i ? port1 : port0);
    snprintf(boot, sizeof boot, "127.0.0.1:%u", i ? port0 : port1);
    px_config_set(&c, "p2p.listen", listen, 0);
    px_config_set(&c, "p2p.bootstrap", boot, 0);
    px_config_set(&c, "log.level", "error", 0);
    assert_int_equal(px_node_init_home(t[i].home, &c, ids[i]), 0);
    /* A second init refuses to overwrite. */
    assert_int_equal(px_node_init_home(t[i].home, &c, NULL), PX_EEXIST);
    char err[256];
    assert_int_equal(px_node_open(t[i].home, NULL, &t[i].node, err, sizeof err),
                     0);
    /* One node per home: the lock refuses a second. */
    px_node_t *dup;
    assert_int_equal(px_node_open(t[i].home, NULL, &dup, err, sizeof err),
                     PX_EBUSY);
    assert_non_null(strstr(err, "already running"));
    pthread_mutex_init(&t[i].mu, NULL);
    px_node_hooks_t h = {
        .on_direct = on_direct, .on_peer = on_peer, .ud = &t[i]};
    px_node_set_hooks(t[i].node, &h);
    assert_int_equal(pthread_create(&t[i].th, NULL, run_node, &t[i]), 0);
  }
  /* Converge. */
  for (int k = 0; k < 200 && (peer_count(&t[0]) < 1 || peer_count(&t[1]) < 1);
       k++)
    usleep(20000);
  assert_int_equal(peer_count(&t[0]), 1);
  assert_int_equal(peer_count(&t[1]), 1);
  /* The control socket answers with node 1's identity. */
  char *reply = NULL;
  assert_int_equal(px_node_control(t[1].home, "status", &reply, 5000), 0);
  assert_non_null(strstr(reply, ids[1]));
  assert_non_null(strstr(reply, "\"peer_count\":1"));
  px_free(reply);
  assert_int_equal(px_node_control(t[1].home, "bogus", &reply, 5000), 0);
  assert_non_null(strstr(reply, "\"ok\":false"));
  px_free(reply);
  /* 20 one-way messages of 300 KiB from node 0 to node 1. */
  send_arg_t a;
  assert_int_equal(px_node_id_parse(ids[1], a.to), 0);
  a.n = 300 * 1024;
  for (int k = 0; k < 20; k++)
    assert_int_equal(px_node_call(t[0].node, do_send, &a), 0);
  int msgs = 0;
  for (int k = 0; k < 500 && msgs < 20; k++) {
    usleep(10000);
    pthread_mutex_lock(&t[1].mu);
    msgs = t[1].direct_msgs;
    pthread_mutex_unlock(&t[1].mu);
  }
  pthread_mutex_lock(&t[1].mu);
  assert_int_equal(t[1].direct_msgs, 20);
  assert_int_equal(t[1].direct_bytes, 20 * a.n);
  assert_true(t[1].peers_up >= 1);
  pthread_mutex_unlock(&t[1].mu);
  /* Stop both from this thread; runs return cleanly. */
  for (int i = 0; i < 2; i++)
    px_node_stop(t[i].node);
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i].th, NULL);
    assert_int_equal(t[i].rc, 0);
    px_node_free(t[i].node);
    pthread_mutex_destroy(&t[i].mu);
  }
  /* The control socket is gone once stopped. */
  assert_int_equal(px_node_control(t[0].home, "status", &reply, 1000),
                   PX_ENOENT);
  rmtree(base);
}

static void test_config_validation(void **state) {
  (void)state;
  px_config_t c;
  px_p2p_config_t o;
  char err[256];
  px_config_init(&c);
  assert_int_equal(px_node_p2p_config(&c, &o, err, sizeof err), 0);
  assert_int_equal(o.max_msg, 16u << 20); /* documented default */
  px_config_set(&c, "p2p.max_msg", "12", 0);
  assert_int_equal(px_node_p2p_config(&c, &o, err, sizeof err), PX_ECONFIG);
  assert_non_null(strstr(err, "p2p.max_msg"));
  px_config_init(&c);
  px_config_set(&c, "p2p.lisen", "x", 0); /* a typo is an error */
  assert_int_equal(px_node_p2p_config(&c, &o, err, sizeof err), PX_ECONFIG);
  assert_non_null(strstr(err, "p2p.lisen"));
  px_config_init(&c);
  px_config_set(&c, "p2p.ban_ip", "maybe", 0);
  assert_int_equal(px_node_p2p_config(&c, &o, err, sizeof err), PX_ECONFIG);
  px_config_init(&c);
  px_config_set(&c, "p2p.ban_ip", "off", 0);
  px_config_set(&c, "p2p.max_msg", "1048576", 0);
  assert_int_equal(px_node_p2p_config(&c, &o, err, sizeof err), 0);
  assert_int_equal(o.ban_ip, 0);
  assert_int_equal(o.max_msg, 1048576);
}

static void test_open_errors(void **state) {
  (void)state;
  px_node_t *n;
  char err[512];
  assert_int_equal(
      px_node_open("/nonexistent/plexus", NULL, &n, err, sizeof err),
      PX_ENOENT);
  assert_non_null(strstr(err, "plexus init"));
  /* A key readable by others is refused with the fix in the message. */
  char base[] = "/tmp/px-node-open.XXXXXX";
  assert_non_null(mkdtemp(base));
  assert_int_equal(px_node_init_home(base, NULL, NULL), 0);
  char key[600];
  snprintf(key, sizeof key, "%s/node.key", base);
  assert_int_equal(chmod(key, 0644), 0);
  assert_int_equal(px_node_open(base, NULL, &n, err, sizeof err), PX_EPERM);
  assert_non_null(strstr(err, "chmod 600"));
  assert_int_equal(chmod(key, 0600), 0);
  /* A flag overrides the file and is validated like it. */
  px_config_t flags;
  px_config_init(&flags);
  px_config_set(&flags, "p2p.bootstrap", "not-an-address", 1);
  assert_int_equal(px_node_open(base, &flags, &n, err, sizeof err), PX_ECONFIG);
  assert_non_null(strstr(err, "not-an-address"));
  rmtree(base);
}

int main(void) {
  px_crypto_init();
  px_log_set_level(PX_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_two_embedded_nodes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
