/*
 * bench_p2p.c — benchmarks of the p2p layer (docs/bench.md).
 *
 *   build/bench/bench_p2p [--quick] [--only FIGURE] [--window N]
 *
 * Figures, each measured in this process on 127.0.0.1 only:
 *  1. Noise XX handshakes per second, both sides' work in one thread
 *     (px_noise_* plus the HELLO encode/decode and the Ed25519 verification
 *     of the identity binding on each side, as the node does); a second row
 *     also makes a fresh static key and signs its binding on each side per
 *     handshake (what a node does once per process); a third row times full
 *     handshakes over TCP from a bench client to a real node.
 *  2. Gossip of 1 KiB messages across 8 embedded nodes (a full mesh):
 *     messages per second delivered to all 7 receivers, and p50/p99 of the
 *     delay from px_p2p_broadcast at the origin to on_gossip at a receiver.
 *     A closed loop keeps a fixed number of messages in flight, so the rate
 *     is what the network sustains.
 *  3. Encrypted throughput of 1 MiB one-way messages between two nodes,
 *     against a plain loopback TCP copy between two threads measured in the
 *     same run (before and after); the ratio is the figure with a goal.
 *
 * Ratios against a same-run reference are what a noisy machine cannot fool;
 * the absolute numbers are printed for context.  Exit status: 0 when every
 * figure was measured (a goal NOT MET is a result, not a failure), 1 when a
 * measurement could not be made.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/node.h"
#include "plexus/p2p.h"
#include "p2p/noise.h"
#include "base/px_internal.h"

/* The node's handshake constants (src/p2p/p2p.c, docs/protocol.md). */
#define PROLOGUE "plexus/p2p/1"
#define BIND_PREFIX "plexus-noise-static-key:"
#define BIND_LEN (sizeof(BIND_PREFIX) - 1 + 32)
#define NETWORK "plexus-bench"

#define GOSSIP_NODES 8
#define GOSSIP_MSG 1024
#define GOSSIP_TOPIC 7
#define GOSSIP_MAX_MSGS (1u << 18) /* seq space of one run */
#define GOSSIP_MAGIC 0x50584247u   /* "PXBG" */

#define TP_MSG (1u << 20)       /* one-way message size */
#define TP_QUEUE_MAX (8u << 20) /* sender's bound on its socket queue */
#define TP_WINDOW (16u << 20)   /* bound on bytes sent, not yet delivered */
#define TP_TOPIC 9
#define TCP_CHUNK (1u << 20)

#define GOAL_RATIO 0.5

typedef struct {
  double hs_secs, gossip_secs, tp_secs, warm_secs;
  unsigned gossip_window;
} bench_opts_t;

/* ---- small helpers ------------------------------------------------------- */

static double now_s(void) { return (double)px_time_mono_ns() / 1e9; }

static void sleep_us(uint64_t us) {
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void row(const char *figure, double value, const char *unit,
                const char *note) {
  printf("%-52s %12.1f  %-14s %s\n", figure, value, unit, note ? note : "");
  fflush(stdout);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A free TCP port on 127.0.0.1 (bind to 0, read it back, release it). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Remove a node home: its files, then the directory (no subdirectories). */
static void rm_home(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* ---- HELLO, as the node builds and checks it ----------------------------- */

typedef struct {
  px_keypair_t id;  /* Ed25519 identity */
  uint8_t s_sk[32]; /* Noise static key */
  uint8_t s_pk[32];
  uint8_t sig[PX_SIG_LEN]; /* binding of s_pk to id */
} party_t;

static void party_bind(party_t *pt) {
  uint8_t bind[BIND_LEN];
  memcpy(bind, BIND_PREFIX, sizeof(BIND_PREFIX) - 1);
  memcpy(bind + sizeof(BIND_PREFIX) - 1, pt->s_pk, 32);
  px_sign(&pt->id, bind, sizeof bind, pt->sig);
}

static int party_new_static(party_t *pt) {
  if (px_x25519_keypair(pt->s_pk, pt->s_sk)) return -1;
  party_bind(pt);
  return 0;
}

static int hello_encode(const party_t *pt, uint8_t *out, size_t cap,
                        size_t *n) {
  px_msg_t m;
  memset(&m, 0, sizeof m);
  m.type = PX_MSG_HELLO;
  m.u.hello.proto = PX_P2P_PROTO;
  memcpy(m.u.hello.node_pk, pt->id.pk, 32);
  memcpy(m.u.hello.sig, pt->sig, 64);
  snprintf(m.u.hello.network, sizeof m.u.hello.network, "%s", NETWORK);
  px_buf_t b;
  px_buf_init(&b, cap);
  int rc = px_msg_encode(&m, &b);
  if (!rc) {
    memcpy(out, b.data, b.len);
    *n = b.len;
  }
  px_buf_release(&b);
  return rc;
}

/* Decode a peer's HELLO and verify its binding to the Noise static key the
 * handshake authenticated (rs). */
static int hello_verify(const px_noise_hs_t *hs, const uint8_t *pl, size_t n,
                        const char *network) {
  px_msg_t m;
  if (px_msg_decode(pl, n, 0, &m) || m.type != PX_MSG_HELLO ||
      m.u.hello.proto != PX_P2P_PROTO ||
      strcmp(m.u.hello.network, network) != 0)
    return -1;
  uint8_t rs[32], bind[BIND_LEN];
  px_noise_hs_remote_static(hs, rs);
  memcpy(bind, BIND_PREFIX, sizeof(BIND_PREFIX) - 1);
  memcpy(bind + sizeof(BIND_PREFIX) - 1, rs, 32);
  return px_verify(m.u.hello.node_pk, bind, sizeof bind, m.u.hello.sig) ? -1
                                                                        : 0;
}

/* ---- 1a. in-process Noise XX handshakes ---------------------------------- */

/* One full XX handshake, initiator i and responder r, both in this thread. */
static int handshake_once(party_t *i, party_t *r) {
  px_noise_hs_t hi, hr;
  px_noise_cipher_t itx, irx, rtx, rrx;
  uint8_t m1[64], m2[1024], m3[1024], hello[512], pl[512];
  size_t n1, n2, n3, hl, plen;
  const uint8_t *pro = (const uint8_t *)PROLOGUE;
  int rc =
      px_noise_hs_init(&hi, 1, pro, sizeof(PROLOGUE) - 1, i->s_sk, NULL, NULL);
  if (!rc)
    rc = px_noise_hs_init(&hr, 0, pro, sizeof(PROLOGUE) - 1, r->s_sk, NULL,
                          NULL);
  /* -> e */
  if (!rc) rc = px_noise_hs_write(&hi, NULL, 0, m1, sizeof m1, &n1);
  if (!rc) rc = px_noise_hs_read(&hr, m1, n1, pl, sizeof pl, &plen);
  /* <- e, ee, s, es + HELLO(responder) */
  if (!rc) rc = hello_encode(r, hello, sizeof hello, &hl);
  if (!rc) rc = px_noise_hs_write(&hr, hello, hl, m2, sizeof m2, &n2);
  if (!rc) rc = px_noise_hs_read(&hi, m2, n2, pl, sizeof pl, &plen);
  if (!rc) rc = hello_verify(&hi, pl, plen, NETWORK);
  /* -> s, se + HELLO(initiator) */
  if (!rc) rc = hello_encode(i, hello, sizeof hello, &hl);
  if (!rc) rc = px_noise_hs_write(&hi, hello, hl, m3, sizeof m3, &n3);
  if (!rc) rc = px_noise_hs_read(&hr, m3, n3, pl, sizeof pl, &plen);
  if (!rc) rc = hello_verify(&hr, pl, plen, NETWORK);
  if (!rc) rc = px_noise_hs_split(&hi, &itx, &irx);
  if (!rc) rc = px_noise_hs_split(&hr, &rtx, &rrx);
  /* The two sides must agree on the keys (i's send is r's receive). */
  if (!rc && memcmp(itx.k, rrx.k, 32) != 0) rc = -1;
  px_noise_hs_wipe(&hi);
  px_noise_hs_wipe(&hr);
  return rc;
}

static int bench_handshake(const bench_opts_t *o, int fresh_static,
                           double *per_s) {
  party_t a, b;
  if (px_key_generate(&a.id) || px_key_generate(&b.id) ||
      party_new_static(&a) || party_new_static(&b))
    return -1;
  uint64_t count = 0;
  double t0 = now_s(), t = t0, end = t0 + o->hs_secs;
  while (t < end) {
    for (int k = 0; k < 16; k++) {
      /* What a node does once per process (px_p2p_new), per handshake. */
      if (fresh_static && (party_new_static(&a) || party_new_static(&b)))
        return -1;
      if (handshake_once(&a, &b)) return -1;
      count++;
    }
    t = now_s();
  }
  *per_s = (double)count / (t - t0);
  px_key_wipe(&a.id);
  px_key_wipe(&b.id);
  return 0;
}

/* ---- embedded nodes ------------------------------------------------------ */

typedef struct bench_node bench_node_t;
typedef struct gossip_bench gossip_bench_t;
typedef struct tp_bench tp_bench_t;

struct bench_node {
  char home[64];
  int port;
  px_node_t *node;
  pthread_t thread;
  int running;
  uint8_t pk[PX_PK_LEN];
  unsigned idx;
  gossip_bench_t *gossip;
  tp_bench_t *tp;
  atomic_size_t peers; /* written by peer_count_call on the loop thread */
  atomic_int peers_seq;
};

static void *node_thread(void *arg) {
  bench_node_t *bn = arg;
  int rc = px_node_run(bn->node);
  if (rc)
    fprintf(stderr, "bench: node %u stopped with %s\n", bn->idx,
            px_strerror(rc));
  return NULL;
}

/* Create homes and open nodes, each bootstrapping to all the others, and
 * run each on its own thread.  The caller zeroed ns and set its gossip/tp
 * back-pointers (the hooks read them on the loop threads). */
static int nodes_start(bench_node_t *ns, unsigned n, const char *rate_bytes,
                       const px_node_hooks_t *hooks) {
  for (unsigned i = 0; i < n; i++) {
    ns[i].idx = i;
    snprintf(ns[i].home, sizeof ns[i].home, "/tmp/plexus-bench-XXXXXX");
    if (!mkdtemp(ns[i].home)) {
      ns[i].home[0] = 0;
      return -1;
    }
    if ((ns[i].port = free_port()) < 0) return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    px_config_t c;
    px_config_init(&c);
    char addr[PX_ADDR_MAX], boot[PX_CONFIG_MAX_VALUE] = "";
    size_t bl = 0;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ns[i].port);
    for (unsigned j = 0; j < n; j++) {
      if (j == i) continue;
      int k = snprintf(boot + bl, sizeof boot - bl, "%s127.0.0.1:%d",
                       bl ? "," : "", ns[j].port);
      if (k < 0 || (size_t)k >= sizeof boot - bl) return -1;
      bl += (size_t)k;
    }
    px_config_set(&c, "p2p.listen", addr, 0);
    px_config_set(&c, "p2p.bootstrap", boot, 0);
    px_config_set(&c, "p2p.network", NETWORK, 0);
    px_config_set(&c, "p2p.ban_ip", "false", 0);
    px_config_set(&c, "log.level", "warn", 0);
    if (rate_bytes) px_config_set(&c, "p2p.rate_bytes", rate_bytes, 0);
    char id[PX_NODE_ID_HEX_LEN], err[256];
    int rc = px_node_init_home(ns[i].home, &c, id);
    if (!rc) rc = px_node_open(ns[i].home, NULL, &ns[i].node, err, sizeof err);
    if (rc) {
      fprintf(stderr, "bench: cannot start node in %s: %s\n", ns[i].home,
              px_strerror(rc));
      return -1;
    }
    memcpy(ns[i].pk, px_p2p_node_pk(px_node_p2p(ns[i].node)), PX_PK_LEN);
    px_node_hooks_t h = *hooks;
    h.ud = &ns[i];
    px_node_set_hooks(ns[i].node, &h);
  }
  for (unsigned i = 0; i < n; i++) {
    if (pthread_create(&ns[i].thread, NULL, node_thread, &ns[i])) return -1;
    ns[i].running = 1;
  }
  return 0;
}

/* Stop, join, free, remove the homes.  ordered: stop and join one at a
 * time (a node whose hooks call into another is listed before it). */
static void nodes_stop(bench_node_t *ns, unsigned n, int ordered) {
  for (unsigned i = 0; i < n; i++) {
    if (!ns[i].running) continue;
    px_node_stop(ns[i].node);
    if (ordered) {
      pthread_join(ns[i].thread, NULL);
      ns[i].running = 0;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    if (!ns[i].running) continue;
    pthread_join(ns[i].thread, NULL);
    ns[i].running = 0;
  }
  for (unsigned i = 0; i < n; i++) {
    px_node_free(ns[i].node);
    ns[i].node = NULL;
    if (ns[i].home[0]) rm_home(ns[i].home);
  }
}

static void peer_count_call(px_node_t *n, px_p2p_t *p, void *ud) {
  (void)n;
  bench_node_t *bn = ud;
  atomic_store(&bn->peers, px_p2p_peer_count(p));
  atomic_fetch_add(&bn->peers_seq, 1);
}

/* Wait until every node has `want` peers (asked on each loop thread). */
static int nodes_wait_peers(bench_node_t *ns, unsigned n, size_t want,
                            double timeout_s) {
  double end = now_s() + timeout_s;
  while (now_s() < end) {
    int seq[GOSSIP_NODES];
    for (unsigned i = 0; i < n; i++) {
      seq[i] = atomic_load(&ns[i].peers_seq);
      if (px_node_call(ns[i].node, peer_count_call, &ns[i])) return -1;
    }
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++) {
      while (atomic_load(&ns[i].peers_seq) == seq[i] && now_s() < end)
        sleep_us(1000);
      ok += atomic_load(&ns[i].peers) >= want;
    }
    if (ok == n) return 0;
    sleep_us(50000);
  }
  return -1;
}

/* ---- 1b. full TCP handshakes against a real node ------------------------- */

/* Connect, run XX as initiator, and read the node's first transport message
 * (the PEX request it sends to every new peer): proof it accepted us. */
static int tcp_handshake_once(int port, party_t *me) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1, rc = -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  px_noise_hs_t hs;
  px_noise_cipher_t tx, rx;
  uint8_t buf[2 + 1024], pl[1024], hello[512];
  size_t n, plen, hl;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto out;
  if (px_noise_hs_init(&hs, 1, (const uint8_t *)PROLOGUE, sizeof(PROLOGUE) - 1,
                       me->s_sk, NULL, NULL))
    goto out;
  if (px_noise_hs_write(&hs, NULL, 0, buf + 2, sizeof buf - 2, &n)) goto out;
  px_put_u16be(buf, (uint16_t)n);
  if (write_all(fd, buf, 2 + n) || read_all(fd, buf, 2)) goto out;
  n = px_get_u16be(buf);
  if (n > sizeof buf - 2 || read_all(fd, buf + 2, n)) goto out;
  if (px_noise_hs_read(&hs, buf + 2, n, pl, sizeof pl, &plen) ||
      hello_verify(&hs, pl, plen, NETWORK))
    goto out;
  if (hello_encode(me, hello, sizeof hello, &hl) ||
      px_noise_hs_write(&hs, hello, hl, buf + 2, sizeof buf - 2, &n))
    goto out;
  px_put_u16be(buf, (uint16_t)n);
  if (write_all(fd, buf, 2 + n) || px_noise_hs_split(&hs, &tx, &rx)) goto out;
  if (read_all(fd, buf, 2)) goto out;
  n = px_get_u16be(buf);
  if (n < PX_NOISE_TAG_LEN + 4 || n > sizeof buf - 2 ||
      read_all(fd, buf + 2, n))
    goto out;
  if (px_noise_decrypt(&rx, NULL, 0, buf + 2, n, pl)) goto out;
  px_msg_t m;
  if (px_msg_decode(pl + 4, n - PX_NOISE_TAG_LEN - 4, 0, &m) ||
      m.type != PX_MSG_PEX_REQ)
    goto out;
  rc = 0;
out:
  px_noise_hs_wipe(&hs);
  close(fd);
  return rc;
}

static int bench_tcp_handshake(const bench_opts_t *o, double *per_s) {
  static const px_node_hooks_t none = {0};
  bench_node_t *bn = calloc(1, sizeof *bn);
  party_t *pool = calloc(32, sizeof *pool);
  int rc = -1;
  if (!bn || !pool || nodes_start(bn, 1, NULL, &none)) goto out;
  for (int k = 0; k < 32; k++)
    if (px_key_generate(&pool[k].id) || party_new_static(&pool[k])) goto out;
  /* The node listens once its loop runs: retry the first connection. */
  double end = now_s() + 5;
  while (tcp_handshake_once(bn->port, &pool[0]) != 0)
    if (now_s() > end) goto out;
  /* Rotate identities so a reconnect never races the node's tear-down of
   * the same peer's previous connection (that would be a duplicate). */
  uint64_t count = 0;
  double t0 = now_s(), t = t0;
  end = t0 + o->hs_secs;
  while (t < end) {
    if (tcp_handshake_once(bn->port, &pool[(count + 1) % 32])) goto out;
    count++;
    t = now_s();
  }
  *per_s = (double)count / (t - t0);
  rc = 0;
out:
  if (bn) nodes_stop(bn, 1, 0);
  if (pool)
    for (int k = 0; k < 32; k++)
      px_key_wipe(&pool[k].id);
  free(pool);
  free(bn);
  return rc;
}

/* ---- 2. gossip across 8 nodes -------------------------------------------- */

typedef struct {
  gossip_bench_t *g;
  unsigned origin;
  uint32_t seq;
} gossip_call_t;

struct gossip_bench {
  bench_node_t nodes[GOSSIP_NODES];
  gossip_call_t *calls;    /* [GOSSIP_MAX_MSGS] arguments of the calls */
  atomic_uint *deliveries; /* [GOSSIP_MAX_MSGS] receivers so far */
  uint64_t *lat_ns;        /* [node][seq]: each row written by its node */
  atomic_ulong completed;  /* messages delivered to all receivers */
  atomic_ulong bad;        /* malformed or extra deliveries: must stay 0 */
};

static void gossip_call(px_node_t *n, px_p2p_t *p, void *ud) {
  gossip_call_t *c = ud;
  uint8_t msg[GOSSIP_MSG];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 31u + c->seq);
  px_put_u32le(msg, GOSSIP_MAGIC);
  px_put_u32le(msg + 4, c->seq);
  px_put_u64le(msg + 8, px_time_mono_ns());
  if (px_p2p_broadcast(p, GOSSIP_TOPIC, msg, sizeof msg, px_node_now(n), NULL))
    atomic_fetch_add(&c->g->bad, 1);
}

static void gossip_hook(px_node_t *n, const px_p2p_fx_t *fx, void *ud) {
  (void)n;
  uint64_t t = px_time_mono_ns();
  bench_node_t *bn = ud;
  gossip_bench_t *g = bn->gossip;
  const uint8_t *d = fx->data.data;
  if (fx->topic != GOSSIP_TOPIC || fx->data.len != GOSSIP_MSG ||
      px_get_u32le(d) != GOSSIP_MAGIC ||
      px_get_u32le(d + 4) >= GOSSIP_MAX_MSGS) {
    atomic_fetch_add(&g->bad, 1);
    return;
  }
  uint32_t seq = px_get_u32le(d + 4);
  uint64_t sent = px_get_u64le(d + 8);
  g->lat_ns[(size_t)bn->idx * GOSSIP_MAX_MSGS + seq] = t - sent;
  unsigned got = atomic_fetch_add(&g->deliveries[seq], 1) + 1;
  if (got == GOSSIP_NODES - 1)
    atomic_fetch_add(&g->completed, 1);
  else if (got > GOSSIP_NODES - 1)
    atomic_fetch_add(&g->bad, 1); /* delivered twice somewhere */
}

static int bench_gossip(const bench_opts_t *o, double *msgs_s, double *p50_ms,
                        double *p99_ms, uint64_t *nmsgs) {
  gossip_bench_t *g = calloc(1, sizeof *g);
  int rc = -1, started = 0;
  uint64_t *all = NULL;
  if (!g) return -1;
  g->calls = calloc(GOSSIP_MAX_MSGS, sizeof *g->calls);
  g->deliveries = calloc(GOSSIP_MAX_MSGS, sizeof *g->deliveries);
  g->lat_ns = calloc((size_t)GOSSIP_NODES * GOSSIP_MAX_MSGS, sizeof(uint64_t));
  if (!g->calls || !g->deliveries || !g->lat_ns) goto out;
  for (unsigned i = 0; i < GOSSIP_MAX_MSGS; i++)
    atomic_init(&g->deliveries[i], 0);
  atomic_init(&g->completed, 0);
  atomic_init(&g->bad, 0);
  for (unsigned i = 0; i < GOSSIP_NODES; i++)
    g->nodes[i].gossip = g;
  px_node_hooks_t hooks = {.on_gossip = gossip_hook};
  started = 1;
  if (nodes_start(g->nodes, GOSSIP_NODES, NULL, &hooks)) goto out;
  if (nodes_wait_peers(g->nodes, GOSSIP_NODES, GOSSIP_NODES - 1, 30)) {
    fprintf(stderr, "bench: gossip mesh did not form in 30 s\n");
    goto out;
  }
  /* Closed loop: at most `window` messages in flight, origins in turn.
   * Phases: warm-up (not counted), measured, then drain. */
  uint32_t seq = 0, seq_lo = 0, seq_hi = 0;
  uint64_t done_lo = 0, done_hi = 0;
  double t = now_s(), t_lo = t + o->warm_secs, t_hi = t_lo + o->gossip_secs;
  double m_lo = 0, m_hi = 0;
  int phase = 0;
  while (phase < 2) {
    t = now_s();
    if (phase == 0 && t >= t_lo) {
      phase = 1;
      seq_lo = seq;
      done_lo = atomic_load(&g->completed);
      m_lo = t;
    } else if (phase == 1 && t >= t_hi) {
      phase = 2;
      seq_hi = seq;
      done_hi = atomic_load(&g->completed);
      m_hi = t;
      break;
    }
    if (seq >= GOSSIP_MAX_MSGS) {
      fprintf(stderr, "bench: gossip seq space exhausted\n");
      goto out;
    }
    if (seq - atomic_load(&g->completed) >= o->gossip_window) {
      sleep_us(200);
      continue;
    }
    gossip_call_t *c = &g->calls[seq];
    c->g = g;
    c->origin = seq % GOSSIP_NODES;
    c->seq = seq;
    if (px_node_call(g->nodes[c->origin].node, gossip_call, c)) goto out;
    seq++;
  }
  /* Drain: every message sent must reach all receivers. */
  double end = now_s() + 10;
  while (atomic_load(&g->completed) < seq && now_s() < end)
    sleep_us(1000);
  if (atomic_load(&g->completed) < seq || atomic_load(&g->bad)) {
    fprintf(stderr,
            "bench: gossip lost messages (%lu of %u complete, %lu "
            "bad)\n",
            (unsigned long)atomic_load(&g->completed), seq,
            (unsigned long)atomic_load(&g->bad));
    goto out;
  }
  nodes_stop(g->nodes, GOSSIP_NODES, 0); /* joins: lat_ns is ours now */
  started = 0;
  size_t nlat = (size_t)(seq_hi - seq_lo) * (GOSSIP_NODES - 1), k = 0;
  all = malloc((nlat ? nlat : 1) * sizeof *all);
  if (!all || nlat == 0) goto out;
  for (uint32_t s = seq_lo; s < seq_hi; s++)
    for (unsigned i = 0; i < GOSSIP_NODES; i++)
      if (i != s % GOSSIP_NODES)
        all[k++] = g->lat_ns[(size_t)i * GOSSIP_MAX_MSGS + s];
  qsort(all, k, sizeof *all, cmp_u64);
  *msgs_s = (double)(done_hi - done_lo) / (m_hi - m_lo);
  *p50_ms = (double)all[(k - 1) * 50 / 100] / 1e6;
  *p99_ms = (double)all[(k - 1) * 99 / 100] / 1e6;
  *nmsgs = seq_hi - seq_lo;
  rc = 0;
out:
  if (started) nodes_stop(g->nodes, GOSSIP_NODES, 0);
  free(all);
  free(g->calls);
  free(g->deliveries);
  free(g->lat_ns);
  free(g);
  return rc;
}

/* ---- 3. encrypted throughput vs plain TCP -------------------------------- */

struct tp_bench {
  bench_node_t nodes[2]; /* [0] receiver B (stopped first), [1] sender A */
  uint8_t *payload;
  uint64_t sent;       /* payload bytes A sent (A's loop thread only) */
  atomic_ullong bytes; /* payload bytes B received */
  atomic_int pumping;  /* B asks A for more while set */
  atomic_ulong send_errors;
};

/* On A's loop: send while fewer than TP_WINDOW bytes are in flight and the
 * socket queue is under TP_QUEUE_MAX.  px_node_send_queue does not yet count
 * what this call (or calls run in the same batch) sent — those become writes
 * after the calls return — hence the end-to-end window as well. */
static void tp_pump(px_node_t *n, px_p2p_t *p, void *ud) {
  tp_bench_t *tp = ud;
  const uint8_t *to = tp->nodes[0].pk;
  while (tp->sent - atomic_load(&tp->bytes) + TP_MSG <= TP_WINDOW &&
         px_node_send_queue(n, to) + TP_MSG <= TP_QUEUE_MAX) {
    if (px_p2p_send(p, to, TP_TOPIC, tp->payload, TP_MSG)) {
      atomic_fetch_add(&tp->send_errors, 1);
      break;
    }
    tp->sent += TP_MSG;
  }
}

/* On B's loop: count, and ask A to refill (paces the sender by delivery). */
static void tp_hook(px_node_t *n, const px_p2p_fx_t *fx, void *ud) {
  (void)n;
  bench_node_t *bn = ud;
  tp_bench_t *tp = bn->tp;
  if (fx->topic != TP_TOPIC) return;
  atomic_fetch_add(&tp->bytes, fx->data.len);
  if (atomic_load(&tp->pumping)) px_node_call(tp->nodes[1].node, tp_pump, tp);
}

/* CPU seconds a thread has used. */
static double thread_cpu_s(pthread_t t) {
  clockid_t cid;
  struct timespec ts;
  if (pthread_getcpuclockid(t, &cid) || clock_gettime(cid, &ts)) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_node_throughput(const bench_opts_t *o, double *mb_s,
                                 double *cpu_a, double *cpu_b) {
  tp_bench_t *tp = calloc(1, sizeof *tp);
  int rc = -1;
  if (!tp || !(tp->payload = malloc(TP_MSG))) goto out;
  for (size_t i = 0; i < TP_MSG; i++)
    tp->payload[i] = (uint8_t)(i * 131u);
  atomic_init(&tp->bytes, 0);
  atomic_init(&tp->pumping, 1);
  atomic_init(&tp->send_errors, 0);
  tp->nodes[0].tp = tp->nodes[1].tp = tp;
  px_node_hooks_t hooks = {.on_direct = tp_hook};
  /* The per-peer byte rate limit (default 1 GiB/s) is policy, not
   * transport: raise it so the figure measures the transport. */
  if (nodes_start(tp->nodes, 2, "1099511627776", &hooks)) goto stop;
  if (nodes_wait_peers(tp->nodes, 2, 1, 30)) {
    fprintf(stderr, "bench: throughput nodes did not connect\n");
    goto stop;
  }
  if (px_node_call(tp->nodes[1].node, tp_pump, tp)) goto stop;
  sleep_us((uint64_t)(o->warm_secs * 1e6));
  double t0 = now_s();
  uint64_t b0 = atomic_load(&tp->bytes);
  double ca0 = thread_cpu_s(tp->nodes[1].thread);
  double cb0 = thread_cpu_s(tp->nodes[0].thread);
  double end = t0 + o->tp_secs;
  while (now_s() < end) {
    sleep_us(50000);
    /* Belt and braces: a pump per 50 ms in case none is pending. */
    px_node_call(tp->nodes[1].node, tp_pump, tp);
  }
  double t1 = now_s();
  uint64_t b1 = atomic_load(&tp->bytes);
  *cpu_a = (thread_cpu_s(tp->nodes[1].thread) - ca0) / (t1 - t0);
  *cpu_b = (thread_cpu_s(tp->nodes[0].thread) - cb0) / (t1 - t0);
  atomic_store(&tp->pumping, 0);
  if (atomic_load(&tp->send_errors) || b1 == b0) {
    fprintf(stderr, "bench: encrypted transfer failed (%lu send errors)\n",
            (unsigned long)atomic_load(&tp->send_errors));
    goto stop;
  }
  *mb_s = (double)(b1 - b0) / (t1 - t0) / 1e6;
  rc = 0;
stop:
  atomic_store(&tp->pumping, 0);
  nodes_stop(tp->nodes, 2, 1); /* B first: its hook calls into A */
out:
  if (tp) free(tp->payload);
  free(tp);
  return rc;
}

typedef struct {
  int fd;
  atomic_ullong bytes;
  atomic_int stop;
} tcp_ref_t;

static void *tcp_reader(void *arg) {
  tcp_ref_t *r = arg;
  uint8_t *buf = malloc(TCP_CHUNK);
  if (!buf) return NULL;
  for (;;) {
    ssize_t n = recv(r->fd, buf, TCP_CHUNK, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    atomic_fetch_add(&r->bytes, (unsigned long long)n);
  }
  free(buf);
  return NULL;
}

static void *tcp_writer(void *arg) {
  tcp_ref_t *r = arg;
  uint8_t *buf = malloc(TCP_CHUNK);
  if (!buf) return NULL;
  for (size_t i = 0; i < TCP_CHUNK; i++)
    buf[i] = (uint8_t)(i * 131u);
  while (!atomic_load(&r->stop))
    if (write_all(r->fd, buf, TCP_CHUNK)) break;
  shutdown(r->fd, SHUT_WR);
  free(buf);
  return NULL;
}

/* Plain loopback TCP copy between two threads, blocking sockets, 1 MiB
 * writes and reads: the reference the encrypted figure is divided by. */
static int bench_tcp_reference(double secs, double warm, double *mb_s) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), cs = -1, as = -1, rc = -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  tcp_ref_t rd, wr;
  pthread_t tr, tw;
  int have_r = 0, have_w = 0;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) ||
      getsockname(ls, (struct sockaddr *)&a, &len) || listen(ls, 1))
    goto out;
  if ((cs = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
      connect(cs, (struct sockaddr *)&a, sizeof a) ||
      (as = accept(ls, NULL, NULL)) < 0)
    goto out;
  rd.fd = as;
  wr.fd = cs;
  atomic_init(&rd.bytes, 0);
  atomic_init(&wr.bytes, 0);
  atomic_init(&rd.stop, 0);
  atomic_init(&wr.stop, 0);
  if (pthread_create(&tr, NULL, tcp_reader, &rd)) goto out;
  have_r = 1;
  if (pthread_create(&tw, NULL, tcp_writer, &wr)) goto out;
  have_w = 1;
  sleep_us((uint64_t)(warm * 1e6));
  double t0 = now_s();
  uint64_t b0 = atomic_load(&rd.bytes);
  sleep_us((uint64_t)(secs * 1e6));
  double t1 = now_s();
  uint64_t b1 = atomic_load(&rd.bytes);
  if (b1 > b0) {
    *mb_s = (double)(b1 - b0) / (t1 - t0) / 1e6;
    rc = 0;
  }
out:
  atomic_store(&wr.stop, 1);
  if (have_w)
    pthread_join(tw, NULL);
  else if (cs >= 0)
    shutdown(cs, SHUT_RDWR);
  if (have_r) pthread_join(tr, NULL);
  if (as >= 0) close(as);
  if (cs >= 0) close(cs);
  if (ls >= 0) close(ls);
  return rc;
}

/* One core encrypting full-size Noise transport messages: the ceiling for
 * any sender (it must encrypt every byte), printed for context. */
static int bench_aead(double secs, double *mb_s) {
  static uint8_t buf[PX_NOISE_MAX_MSG];
  px_noise_cipher_t c;
  memset(&c, 0, sizeof c);
  memset(c.k, 0x42, sizeof c.k);
  c.has_key = 1;
  uint64_t bytes = 0;
  double t0 = now_s(), t = t0, end = t0 + secs;
  while (t < end) {
    for (int k = 0; k < 64; k++) {
      if (px_noise_encrypt(&c, NULL, 0, buf, PX_NOISE_MAX_TRANSPORT_PAYLOAD,
                           buf))
        return -1;
      bytes += PX_NOISE_MAX_TRANSPORT_PAYLOAD;
    }
    t = now_s();
  }
  px_noise_cipher_wipe(&c);
  *mb_s = (double)bytes / (t - t0) / 1e6;
  return 0;
}

/* ---- the table, one group of figures at a time ------------------------- */

static int run_handshakes(const bench_opts_t *o) {
  double v;
  int fail = 0;
  if (bench_handshake(o, 0, &v) == 0)
    row("Noise XX handshake, in-process (both sides)", v, "handshakes/s",
        "HELLO encode+decode, Ed25519 verify on each side");
  else
    fail = 1, fprintf(stderr, "bench: in-process handshake failed\n");
  if (bench_handshake(o, 1, &v) == 0)
    row("  same + new static key and Ed25519 sign per side", v, "handshakes/s",
        "node does these once per process");
  else
    fail = 1, fprintf(stderr, "bench: in-process handshake failed\n");
  if (bench_tcp_handshake(o, &v) == 0)
    row("TCP connect + handshake, client -> real node", v, "handshakes/s",
        "sequential; until the node's first message");
  else
    fail = 1, fprintf(stderr, "bench: TCP handshakes failed\n");
  return fail;
}

static int run_gossip(const bench_opts_t *o) {
  double v, p50, p99;
  uint64_t nmsgs;
  if (bench_gossip(o, &v, &p50, &p99, &nmsgs) != 0) {
    fprintf(stderr, "bench: gossip failed\n");
    return 1;
  }
  char note[96];
  snprintf(note, sizeof note, "%u in flight, %llu msgs measured",
           o->gossip_window, (unsigned long long)nmsgs);
  row("Gossip 1 KiB, 8 nodes: delivered to all 7", v, "msgs/s", note);
  row("  delivery latency p50", p50, "ms", "broadcast -> on_gossip");
  row("  delivery latency p99", p99, "ms", NULL);
  return 0;
}

static int run_throughput(const bench_opts_t *o) {
  double ref1 = 0, ref2 = 0, enc = 0, aead = 0, cpu_a = 0, cpu_b = 0;
  int ok = bench_tcp_reference(o->tp_secs / 2, o->warm_secs, &ref1) == 0;
  ok = ok && bench_node_throughput(o, &enc, &cpu_a, &cpu_b) == 0;
  ok = ok && bench_tcp_reference(o->tp_secs / 2, o->warm_secs, &ref2) == 0;
  ok = ok && bench_aead(o->hs_secs / 2, &aead) == 0;
  if (!ok) {
    fprintf(stderr, "bench: throughput measurement failed\n");
    return 1;
  }
  double ref = (ref1 + ref2) / 2, ratio = enc / ref;
  char note[64];
  snprintf(note, sizeof note, "goal >= %.2f: %s", GOAL_RATIO,
           ratio >= GOAL_RATIO ? "MET" : "NOT MET");
  char cpu[96];
  snprintf(cpu, sizeof cpu,
           "px_p2p_send -> on_direct; loop CPU A %.0f%% B %.0f%%", cpu_a * 100,
           cpu_b * 100);
  row("Encrypted throughput, node A -> node B (1 MiB msgs)", enc, "MB/s", cpu);
  row("  reference: plain loopback TCP, 2 threads", ref, "MB/s",
      "1 MiB blocking writes/reads, before+after");
  printf("%-52s %12.2f  %-14s %s\n", "  ratio encrypted / plain", ratio, "",
         note);
  row("  context: ChaChaPoly encrypt, one core, 64 KiB", aead, "MB/s",
      "px_noise_encrypt alone");
  printf("%-52s %12.2f  %-14s %s\n", "  context: ceiling ratio (AEAD / plain)",
         aead / ref, "", "a sender cannot beat its cipher");
  return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: bench_p2p [--quick] [--only FIGURE] [--window N]\n"
                  "  --quick         short run (smoke test); default takes "
                  "about 20 s\n"
                  "  --only FIGURE   handshake, gossip or throughput (for "
                  "profiling)\n"
                  "  --window N      gossip messages in flight (default 8)\n");
}

int main(int argc, char **argv) {
  bench_opts_t o = {.hs_secs = 2.0,
                    .gossip_secs = 5.0,
                    .tp_secs = 3.0,
                    .warm_secs = 0.5,
                    .gossip_window = 8};
  int quick = 0;
  const char *only = "";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc &&
               (strcmp(argv[i + 1], "handshake") == 0 ||
                strcmp(argv[i + 1], "gossip") == 0 ||
                strcmp(argv[i + 1], "throughput") == 0)) {
      only = argv[++i];
    } else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
      uint64_t w;
      if (px_parse_u64(argv[++i], &w) || w < 1 || w > 4096) {
        usage();
        return 2;
      }
      o.gossip_window = (unsigned)w;
    } else {
      usage();
      return 2;
    }
  }
  if (quick) {
    o.hs_secs = 0.3;
    o.gossip_secs = 0.5;
    o.tp_secs = 0.5;
    o.warm_secs = 0.1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (px_crypto_init()) {
    fprintf(stderr, "bench: cannot initialise libsodium\n");
    return 1;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("bench_p2p (%s run, %ld CPUs, 127.0.0.1)\n",
         quick ? "quick" : "default", ncpu);
  printf("%-52s %12s  %-14s %s\n", "figure", "value", "unit", "note");
  int fail = 0;
  if (!*only || strcmp(only, "handshake") == 0) fail |= run_handshakes(&o);
  if (!*only || strcmp(only, "gossip") == 0) fail |= run_gossip(&o);
  if (!*only || strcmp(only, "throughput") == 0) fail |= run_throughput(&o);
  return fail;
}
