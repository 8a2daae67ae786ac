/*
 * test_p2p.c — the p2p core driven without sockets.
 *
 * A small in-memory network: each px_p2p_t is a node; a DIAL effect to
 * "10.0.0.I:9000" connects to node I through a pair of in-memory pipes; SEND
 * effects are delivered to the other end's on_data, cut into random chunk
 * sizes so that reassembly of frames across reads is exercised; CLOSE tells
 * both ends.  Time is a number the test advances.  Addresses are only strings
 * handed to the core: nothing touches the network.
 *
 * Each test states the behaviour from plexus/p2p.h it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/p2p.h"
#include "p2p/noise.h"
#include "base/px_internal.h"

#define MAXN 12
#define MAXLINKS 256

typedef struct {
  int a, b;        /* node indexes */
  uint64_t ca, cb; /* conn id on a, on b */
  int open;
  int cut_ab, cut_ba; /* drop traffic in one direction (partition) */
} link_t;

typedef struct {
  uint64_t conn;
  uint8_t pk[32];
  uint16_t topic;
  uint8_t id[32];
  size_t len;
  uint8_t first;
} delivery_t;

typedef struct {
  px_p2p_t *p[MAXN];
  px_keypair_t kp[MAXN];
  int n;
  link_t links[MAXLINKS];
  int nlinks;
  uint64_t now;
  px_rng_t rng;
  /* what the application saw */
  delivery_t gossip[MAXN][64];
  int ngossip[MAXN];
  delivery_t direct[MAXN][64];
  int ndirect[MAXN];
  px_buf_t last_direct[MAXN];
  int peer_up[MAXN], peer_down[MAXN];
  int last_close_err[MAXN];
  int closes[MAXN][64];
  int ncloses[MAXN];
  uint64_t resp_id[MAXN];
  int resp_err[MAXN];
  char resp_text[MAXN][64];
  int nresp[MAXN];
  int auto_echo; /* answer REQUEST effects */
  int partition; /* nothing flows and no dial succeeds */
  int chunked;   /* deliver SEND data in random pieces */
} net_t;

static void net_addr(int i, char *out, size_t cap) {
  snprintf(out, cap, "10.0.0.%d:9000", i + 1);
}

static void cfg_for(px_p2p_config_t *c, int i, uint64_t seed) {
  px_p2p_config_default(c);
  net_addr(i, c->listen, sizeof c->listen);
  c->seed = seed + (uint64_t)i;
}

static net_t *net_new(int n, void (*tweak)(px_p2p_config_t *, int)) {
  net_t *net = calloc(1, sizeof *net);
  assert_non_null(net);
  net->n = n;
  net->chunked = 1;
  px_rng_seed(&net->rng, 42);
  for (int i = 0; i < n; i++) {
    px_p2p_config_t c;
    cfg_for(&c, i, 1000);
    uint8_t seed[32];
    memset(seed, 0, sizeof seed);
    seed[0] = (uint8_t)(i + 1);
    assert_int_equal(px_key_from_seed(&net->kp[i], seed), 0);
    c.identity = net->kp[i];
    if (tweak) tweak(&c, i);
    assert_int_equal(px_p2p_new(&c, &net->p[i]), 0);
    px_buf_init(&net->last_direct[i], 0);
  }
  return net;
}

static void net_free(net_t *net) {
  for (int i = 0; i < net->n; i++) {
    px_p2p_free(net->p[i]);
    px_buf_release(&net->last_direct[i]);
  }
  free(net);
}

static int node_by_addr(net_t *net, const char *addr) {
  for (int i = 0; i < net->n; i++) {
    char a[64];
    net_addr(i, a, sizeof a);
    if (!strcmp(a, addr)) return i;
  }
  return -1;
}

static link_t *link_find(net_t *net, int node, uint64_t conn, int *side) {
  for (int i = 0; i < net->nlinks; i++) {
    link_t *l = &net->links[i];
    if (!l->open) continue;
    if (l->a == node && l->ca == conn) {
      *side = 0;
      return l;
    }
    if (l->b == node && l->cb == conn) {
      *side = 1;
      return l;
    }
  }
  return NULL;
}

static void deliver(net_t *net, int to, uint64_t conn, const uint8_t *d,
                    size_t n) {
  if (!net->chunked) {
    px_p2p_on_data(net->p[to], conn, d, n, net->now);
    return;
  }
  while (n) {
    size_t k = 1 + (size_t)px_rng_below(&net->rng, PX_MIN(n, (size_t)70000));
    px_p2p_on_data(net->p[to], conn, d, k, net->now);
    d += k;
    n -= k;
  }
}

/* Drain every node's effects until the network is quiet. */
static void net_run(net_t *net) {
  int busy = 1;
  for (int rounds = 0; busy && rounds < 100000; rounds++) {
    busy = 0;
    for (int i = 0; i < net->n; i++) {
      px_p2p_fx_t f;
      while (px_p2p_poll(net->p[i], &f)) {
        busy = 1;
        int side;
        link_t *l;
        switch (f.kind) {
        case PX_P2P_FX_DIAL: {
          int j = node_by_addr(net, f.addr);
          char remote[64];
          snprintf(remote, sizeof remote, "10.0.0.%d:%d", i + 1,
                   40000 + net->nlinks);
          uint64_t cb = 0;
          if (j < 0 || net->nlinks >= MAXLINKS || net->partition ||
              px_p2p_on_inbound(net->p[j], remote, net->now, &cb)) {
            px_p2p_on_dial_failed(net->p[i], f.conn, PX_ENET, net->now);
            break;
          }
          l = &net->links[net->nlinks++];
          l->a = i;
          l->b = j;
          l->ca = f.conn;
          l->cb = cb;
          l->open = 1;
          px_p2p_on_dialed(net->p[i], f.conn, f.addr, net->now);
          break;
        }
        case PX_P2P_FX_SEND:
          l = link_find(net, i, f.conn, &side);
          if (!l || net->partition) break;
          if (side == 0 && !l->cut_ab)
            deliver(net, l->b, l->cb, f.data.data, f.data.len);
          else if (side == 1 && !l->cut_ba)
            deliver(net, l->a, l->ca, f.data.data, f.data.len);
          break;
        case PX_P2P_FX_CLOSE:
          if (net->ncloses[i] < 64) net->closes[i][net->ncloses[i]++] = f.err;
          net->last_close_err[i] = f.err;
          l = link_find(net, i, f.conn, &side);
          if (l) {
            l->open = 0;
            px_p2p_on_closed(net->p[l->a], l->ca, 0, net->now);
            px_p2p_on_closed(net->p[l->b], l->cb, 0, net->now);
          } else {
            px_p2p_on_closed(net->p[i], f.conn, 0, net->now);
          }
          break;
        case PX_P2P_FX_PEER_UP:
          net->peer_up[i]++;
          break;
        case PX_P2P_FX_PEER_DOWN:
          net->peer_down[i]++;
          break;
        case PX_P2P_FX_GOSSIP:
          if (net->ngossip[i] < 64) {
            delivery_t *d = &net->gossip[i][net->ngossip[i]++];
            d->conn = f.conn;
            d->topic = f.topic;
            memcpy(d->id, f.id, 32);
            memcpy(d->pk, f.origin, 32);
            d->len = f.data.len;
          }
          break;
        case PX_P2P_FX_DIRECT:
          if (net->ndirect[i] < 64) {
            delivery_t *d = &net->direct[i][net->ndirect[i]++];
            d->topic = f.topic;
            memcpy(d->pk, f.node_pk, 32);
            d->len = f.data.len;
          }
          px_buf_reset(&net->last_direct[i]);
          px_buf_append(&net->last_direct[i], f.data.data, f.data.len);
          break;
        case PX_P2P_FX_REQUEST:
          if (net->auto_echo)
            px_p2p_respond(net->p[i], f.node_pk, f.req_id, 0, f.data.data,
                           f.data.len);
          break;
        case PX_P2P_FX_RESPONSE:
          net->nresp[i]++;
          net->resp_id[i] = f.req_id;
          net->resp_err[i] = f.err;
          snprintf(net->resp_text[i], sizeof net->resp_text[i], "%.*s",
                   (int)f.data.len, f.data.data ? (char *)f.data.data : "");
          break;
        }
        px_p2p_fx_release(&f);
      }
    }
  }
}

static void net_advance(net_t *net, uint64_t ms, uint64_t step) {
  for (uint64_t t = 0; t < ms; t += step) {
    net->now += step;
    for (int i = 0; i < net->n; i++)
      px_p2p_tick(net->p[i], net->now);
    net_run(net);
  }
}

static void connect_pair(net_t *net, int i, int j) {
  char a[64];
  net_addr(j, a, sizeof a);
  assert_int_equal(px_p2p_add_bootstrap(net->p[i], a), 0);
}

static int has_peer(net_t *net, int i, int j) {
  px_p2p_peer_info_t peers[MAXN];
  size_t n = px_p2p_peers(net->p[i], peers, MAXN);
  for (size_t k = 0; k < n; k++)
    if (!memcmp(peers[k].node_pk, net->kp[j].pk, 32)) return 1;
  return 0;
}

static int count_gossip(net_t *net, int i, const uint8_t id[32]) {
  int c = 0;
  for (int k = 0; k < net->ngossip[i]; k++)
    if (!memcmp(net->gossip[i][k].id, id, 32)) c++;
  return c;
}

static int count_close(net_t *net, int i, int err) {
  int c = 0;
  for (int k = 0; k < net->ncloses[i]; k++)
    c += net->closes[i][k] == err;
  return c;
}

/* ---- tests ------------------------------------------------------------- */

/* Two nodes: the handshake authenticates both identities. */
static void test_handshake_pair(void **state) {
  (void)state;
  net_t *net = net_new(2, NULL);
  connect_pair(net, 0, 1);
  net_advance(net, 200, 50);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 1);
  assert_true(has_peer(net, 0, 1));
  assert_true(has_peer(net, 1, 0));
  assert_int_equal(net->peer_up[0], 1);
  assert_int_equal(net->peer_up[1], 1);
  px_p2p_peer_info_t pi;
  assert_int_equal(px_p2p_peers(net->p[1], &pi, 1), 1);
  assert_true(pi.inbound);
  assert_string_equal(pi.addr, "10.0.0.1:9000"); /* advertised listen */
  net_free(net);
}

/* Bootstrapping along a chain, peer exchange gives everyone everyone. */
static void test_pex_full_mesh(void **state) {
  (void)state;
  const int n = 8;
  net_t *net = net_new(n, NULL);
  for (int i = 1; i < n; i++)
    connect_pair(net, i, i - 1);
  net_advance(net, 10000, 50);
  for (int i = 0; i < n; i++) {
    assert_int_equal(px_p2p_peer_count(net->p[i]), n - 1);
    for (int j = 0; j < n; j++)
      if (i != j) assert_true(has_peer(net, i, j));
  }
  net_free(net);
}

/* A gossip reaches every other node exactly once; relays see duplicates. */
static void test_gossip_exactly_once(void **state) {
  (void)state;
  const int n = 7;
  net_t *net = net_new(n, NULL);
  for (int i = 1; i < n; i++)
    connect_pair(net, i, 0);
  net_advance(net, 6000, 50);
  for (int i = 0; i < n; i++)
    assert_int_equal(px_p2p_peer_count(net->p[i]), n - 1);
  uint8_t id[32];
  const char *text = "the quick brown fox";
  assert_int_equal(
      px_p2p_broadcast(net->p[3], 9, text, strlen(text), net->now, id), 0);
  net_run(net);
  net_advance(net, 500, 50);
  for (int i = 0; i < n; i++)
    assert_int_equal(count_gossip(net, i, id), i == 3 ? 0 : 1);
  uint64_t dups = 0;
  for (int i = 0; i < n; i++) {
    px_p2p_stats_t st;
    px_p2p_get_stats(net->p[i], &st);
    dups += st.gossip_duplicates;
  }
  assert_true(dups > 0); /* a full mesh floods: the seen-cache did work */
  /* The id is the codec's gossip id over (topic, origin, seq, payload). */
  assert_int_equal(net->gossip[0][0].topic, 9);
  assert_memory_equal(net->gossip[0][0].pk, net->kp[3].pk, 32);
  net_free(net);
}

/* Line A - B - C: TTL bounds how far a message travels. */
static void line_cfg(px_p2p_config_t *c, int i) {
  if (i != 1) c->target_outbound = 0; /* only B dials */
  c->gossip_ttl = 0;
}
static void test_gossip_ttl(void **state) {
  (void)state;
  net_t *net = net_new(3, line_cfg);
  connect_pair(net, 1, 0);
  connect_pair(net, 1, 2);
  net_advance(net, 3000, 50);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 2);
  assert_false(has_peer(net, 0, 2));
  uint8_t id[32];
  assert_int_equal(px_p2p_broadcast(net->p[0], 1, "x", 1, net->now, id), 0);
  net_run(net);
  assert_int_equal(count_gossip(net, 1, id), 1);
  assert_int_equal(count_gossip(net, 2, id), 0); /* ttl 0: not relayed */
  net_free(net);
}
static void line_cfg_ttl1(px_p2p_config_t *c, int i) {
  line_cfg(c, i);
  c->gossip_ttl = 1;
}
static void test_gossip_ttl_relay(void **state) {
  (void)state;
  net_t *net = net_new(3, line_cfg_ttl1);
  connect_pair(net, 1, 0);
  connect_pair(net, 1, 2);
  net_advance(net, 3000, 50);
  uint8_t id[32];
  assert_int_equal(px_p2p_broadcast(net->p[0], 1, "y", 1, net->now, id), 0);
  net_run(net);
  assert_int_equal(count_gossip(net, 2, id), 1);
  net_free(net);
}

/* Request/response: echo, timeout, and failure when the peer leaves. */
static void test_request_response(void **state) {
  (void)state;
  net_t *net = net_new(2, NULL);
  connect_pair(net, 0, 1);
  net_advance(net, 200, 50);
  net->auto_echo = 1;
  uint64_t rid;
  assert_int_equal(px_p2p_request(net->p[0], net->kp[1].pk, 5, "hello", 5, 0,
                                  net->now, &rid),
                   0);
  net_run(net);
  assert_int_equal(net->nresp[0], 1);
  assert_true(net->resp_id[0] == rid);
  assert_int_equal(net->resp_err[0], 0);
  assert_string_equal(net->resp_text[0], "hello");
  /* No answer: times out. */
  net->auto_echo = 0;
  assert_int_equal(
      px_p2p_request(net->p[0], net->kp[1].pk, 5, "x", 1, 300, net->now, &rid),
      0);
  net_advance(net, 400, 50);
  assert_int_equal(net->nresp[0], 2);
  assert_int_equal(net->resp_err[0], PX_ETIMEOUT);
  /* Unknown peer. */
  uint8_t nobody[32] = {9};
  assert_int_equal(
      px_p2p_request(net->p[0], nobody, 5, "x", 1, 0, net->now, &rid),
      PX_ENOTFOUND);
  /* Peer leaves with a request outstanding: PX_ECLOSED at once. */
  assert_int_equal(px_p2p_request(net->p[0], net->kp[1].pk, 5, "x", 1, 60000,
                                  net->now, &rid),
                   0);
  px_p2p_shutdown(net->p[1], net->now);
  net_run(net);
  assert_int_equal(net->nresp[0], 3);
  assert_int_equal(net->resp_err[0], PX_ECLOSED);
  net_free(net);
}

/* A 5 MiB direct message crosses ~80 Noise frames delivered in odd pieces. */
static void test_large_direct(void **state) {
  (void)state;
  net_t *net = net_new(2, NULL);
  connect_pair(net, 0, 1);
  net_advance(net, 200, 50);
  size_t n = 5u << 20;
  uint8_t *big = malloc(n);
  assert_non_null(big);
  px_rng_t r;
  px_rng_seed(&r, 7);
  px_rng_fill(&r, big, n);
  assert_int_equal(px_p2p_send(net->p[0], net->kp[1].pk, 77, big, n), 0);
  net_run(net);
  assert_int_equal(net->ndirect[1], 1);
  assert_int_equal(net->direct[1][0].topic, 77);
  assert_int_equal(net->last_direct[1].len, n);
  assert_memory_equal(net->last_direct[1].data, big, n);
  free(big);
  net_free(net);
}

/* Peers on another network are refused during the handshake. */
static void other_net(px_p2p_config_t *c, int i) {
  if (i == 1) snprintf(c->network, sizeof c->network, "other");
}
static void test_wrong_network(void **state) {
  (void)state;
  net_t *net = net_new(2, other_net);
  connect_pair(net, 0, 1);
  net_advance(net, 300, 50);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 0);
  assert_true(count_close(net, 0, PX_EPROTO) >= 1);
  net_free(net);
}

/* Dialing our own address is detected and never retried. */
static void test_self_connection(void **state) {
  (void)state;
  net_t *net = net_new(1, NULL);
  connect_pair(net, 0, 0);
  net_advance(net, 5000, 50);
  assert_int_equal(count_close(net, 0, PX_ESELF), 0); /* own listen skipped */
  /* Even under another spelling of the address it is caught once. */
  px_p2p_free(net->p[0]);
  px_p2p_config_t c;
  cfg_for(&c, 0, 5);
  c.identity = net->kp[0];
  snprintf(c.listen, sizeof c.listen, "10.0.0.99:9000");
  assert_int_equal(px_p2p_new(&c, &net->p[0]), 0);
  connect_pair(net, 0, 0);
  net_advance(net, 5000, 50);
  /* Both ends of the one self-connection are ours: two closes. */
  assert_int_equal(count_close(net, 0, PX_ESELF), 2);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  net_advance(net, 60000, 500); /* and it is never dialed again */
  assert_int_equal(count_close(net, 0, PX_ESELF), 2);
  net_free(net);
}

/* Garbage before the handshake: dropped, and banned by IP when repeated. */
static void test_garbage_and_ip_ban(void **state) {
  (void)state;
  net_t *net = net_new(1, NULL);
  uint8_t junk[300];
  px_rng_t r;
  px_rng_seed(&r, 3);
  for (int attempt = 0; attempt < 3; attempt++) {
    uint64_t c;
    assert_int_equal(
        px_p2p_on_inbound(net->p[0], "192.0.2.7:5555", net->now, &c), 0);
    net_run(net);
    px_rng_fill(&r, junk, sizeof junk);
    junk[0] = 0;
    junk[1] = 200; /* a plausible length: message 1 with a payload */
    px_p2p_on_data(net->p[0], c, junk, sizeof junk, net->now);
    net_run(net);
    assert_int_equal(net->last_close_err[0], PX_EPROTO);
  }
  uint64_t c;
  assert_int_equal(px_p2p_on_inbound(net->p[0], "192.0.2.7:5556", net->now, &c),
                   PX_EBANNED);
  assert_true(px_p2p_is_banned_ip(net->p[0], "192.0.2.7", net->now));
  /* Another address is unaffected; the ban expires. */
  assert_int_equal(px_p2p_on_inbound(net->p[0], "192.0.2.8:1", net->now, &c),
                   0);
  net->now += 11 * 60 * 1000;
  assert_false(px_p2p_is_banned_ip(net->p[0], "192.0.2.7", net->now));
  net_free(net);
}

static void no_ip_ban(px_p2p_config_t *c, int i) {
  (void)i;
  c->ban_ip = 0;
  c->handshake_timeout_ms = 1000;
}
/* With ban_ip off (devnets share one IP), failures never ban an address;
 * a silent connection is dropped at the handshake timeout. */
static void test_handshake_timeout_no_ip_ban(void **state) {
  (void)state;
  net_t *net = net_new(1, no_ip_ban);
  for (int k = 0; k < 5; k++) {
    uint64_t c;
    assert_int_equal(
        px_p2p_on_inbound(net->p[0], "127.0.0.1:4000", net->now, &c), 0);
    net_run(net);
    net_advance(net, 1200, 100);
    assert_int_equal(net->last_close_err[0], PX_ETIMEOUT);
  }
  assert_false(px_p2p_is_banned_ip(net->p[0], "127.0.0.1", net->now));
  net_free(net);
}

/* Pending handshakes are capped: a flood cannot take the node's slots. */
static void small_pending(px_p2p_config_t *c, int i) {
  (void)i;
  c->max_pending = 4;
}
static void test_pending_limit(void **state) {
  (void)state;
  net_t *net = net_new(2, small_pending);
  uint64_t c;
  for (int k = 0; k < 4; k++)
    assert_int_equal(px_p2p_on_inbound(net->p[0], "192.0.2.1:1", net->now, &c),
                     0);
  assert_int_equal(px_p2p_on_inbound(net->p[0], "192.0.2.1:2", net->now, &c),
                   PX_ELIMIT);
  net_run(net);
  /* After the flood times out, an honest peer gets in. */
  net_advance(net, 6000, 100);
  connect_pair(net, 1, 0);
  net_advance(net, 1000, 50);
  assert_true(has_peer(net, 0, 1));
  net_free(net);
}

/* Raw helpers to act as a hand-made peer against node 0. */
typedef struct {
  px_noise_hs_t hs;
  px_noise_cipher_t tx, rx;
  px_keypair_t kp;
  uint64_t conn;
} rogue_t;

static void rogue_rng(void *ud, uint8_t *out, size_t n) {
  px_rng_fill(ud, out, n);
}

static size_t take_sent(net_t *net, uint64_t conn, uint8_t *buf, size_t cap) {
  size_t n = 0;
  px_p2p_fx_t f;
  while (px_p2p_poll(net->p[0], &f)) {
    if (f.kind == PX_P2P_FX_SEND && f.conn == conn && n + f.data.len <= cap) {
      memcpy(buf + n, f.data.data, f.data.len);
      n += f.data.len;
    } else if (f.kind == PX_P2P_FX_CLOSE) {
      net->last_close_err[0] = f.err;
      px_p2p_on_closed(net->p[0], f.conn, 0, net->now);
    }
    px_p2p_fx_release(&f);
  }
  return n;
}

/* Decrypt every frame in buf (keeping the receive nonce in step); the last
 * application message is decoded into *last if given. */
static void rogue_decrypt_all(rogue_t *r, const uint8_t *buf, size_t n,
                              px_msg_t *last) {
  static uint8_t pt[70000];
  size_t off = 0;
  while (off + 2 <= n) {
    size_t fl = px_get_u16be(buf + off);
    assert_true(off + 2 + fl <= n);
    assert_int_equal(px_noise_decrypt(&r->rx, NULL, 0, buf + off + 2, fl, pt),
                     0);
    if (last)
      assert_int_equal(px_msg_decode(pt + 4, px_get_u32le(pt), 1 << 20, last),
                       0);
    off += 2 + fl;
  }
  assert_true(off == n);
}

static void rogue_connect(net_t *net, rogue_t *r, uint8_t seed_byte) {
  static px_rng_t rr;
  px_rng_seed(&rr, seed_byte);
  uint8_t seed[32] = {seed_byte, 0xee};
  assert_int_equal(px_key_from_seed(&r->kp, seed), 0);
  uint8_t ssk[32], spk[32];
  px_rng_fill(&rr, ssk, 32);
  assert_int_equal(px_x25519_public(spk, ssk), 0);
  assert_int_equal(px_noise_hs_init(&r->hs, 1, (const uint8_t *)"plexus/p2p/1",
                                    12, ssk, rogue_rng, &rr),
                   0);
  assert_int_equal(
      px_p2p_on_inbound(net->p[0], "192.0.2.66:1", net->now, &r->conn), 0);
  uint8_t msg[1024], frame[1100], in[4096], pl[1024];
  size_t n, pn;
  assert_int_equal(px_noise_hs_write(&r->hs, NULL, 0, msg, sizeof msg, &n), 0);
  px_put_u16be(frame, (uint16_t)n);
  memcpy(frame + 2, msg, n);
  px_p2p_on_data(net->p[0], r->conn, frame, n + 2, net->now);
  size_t got = take_sent(net, r->conn, in, sizeof in);
  assert_true(got > 2);
  assert_int_equal(
      px_noise_hs_read(&r->hs, in + 2, got - 2, pl, sizeof pl, &pn), 0);
  /* HELLO binding our identity to our static key. */
  px_msg_t h;
  memset(&h, 0, sizeof h);
  h.type = PX_MSG_HELLO;
  h.u.hello.proto = 1;
  memcpy(h.u.hello.node_pk, r->kp.pk, 32);
  uint8_t bind[24 + 32];
  memcpy(bind, "plexus-noise-static-key:", 24);
  memcpy(bind + 24, spk, 32);
  px_sign(&r->kp, bind, sizeof bind, h.u.hello.sig);
  snprintf(h.u.hello.network, sizeof h.u.hello.network, "plexus-devnet");
  px_buf_t hb;
  px_buf_init(&hb, 0);
  assert_int_equal(px_msg_encode(&h, &hb), 0);
  assert_int_equal(
      px_noise_hs_write(&r->hs, hb.data, hb.len, msg, sizeof msg, &n), 0);
  px_buf_release(&hb);
  px_put_u16be(frame, (uint16_t)n);
  memcpy(frame + 2, msg, n);
  px_p2p_on_data(net->p[0], r->conn, frame, n + 2, net->now);
  assert_int_equal(px_noise_hs_split(&r->hs, &r->tx, &r->rx), 0);
  got = take_sent(net, r->conn, in, sizeof in);
  rogue_decrypt_all(r, in, got, NULL);
}

/* Send plaintext (already app-framed) as one encrypted frame. */
static void rogue_send(net_t *net, rogue_t *r, const uint8_t *pt, size_t n,
                       int tamper) {
  uint8_t frame[2 + 4096 + 16];
  assert_true(n <= 4096);
  px_put_u16be(frame, (uint16_t)(n + 16));
  assert_int_equal(px_noise_encrypt(&r->tx, NULL, 0, pt, n, frame + 2), 0);
  if (tamper) frame[2 + n / 2] ^= 0x01;
  px_p2p_on_data(net->p[0], r->conn, frame, n + 18, net->now);
}

/* A frame announcing 4 GiB is refused before anything is buffered; the
 * third offence from the same identity bans it. */
static void test_oversize_frame_and_node_ban(void **state) {
  (void)state;
  net_t *net = net_new(1, no_ip_ban);
  for (int k = 0; k < 3; k++) {
    rogue_t r;
    rogue_connect(net, &r, 5);
    assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
    uint8_t pt[8] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    rogue_send(net, &r, pt, sizeof pt, 0);
    uint8_t sink[4096];
    take_sent(net, r.conn, sink, sizeof sink);
    assert_int_equal(net->last_close_err[0], PX_ETOOBIG);
    assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  }
  rogue_t r;
  rogue_connect(net, &r, 5);
  assert_true(px_p2p_is_banned_node(net->p[0], r.kp.pk, net->now));
  assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  assert_int_equal(net->last_close_err[0], PX_EBANNED);
  /* A different identity is welcome. */
  rogue_t r2;
  rogue_connect(net, &r2, 6);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  net_free(net);
}

/* A tampered ciphertext fails authentication and drops the peer. */
static void test_tampered_ciphertext(void **state) {
  (void)state;
  net_t *net = net_new(1, no_ip_ban);
  rogue_t r;
  rogue_connect(net, &r, 9);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  px_msg_t ping = {.type = PX_MSG_PING};
  ping.u.ping.nonce = 77;
  px_buf_t b;
  px_buf_init(&b, 0);
  uint8_t z[4] = {0};
  px_buf_append(&b, z, 4);
  assert_int_equal(px_msg_encode(&ping, &b), 0);
  px_put_u32le(b.data, (uint32_t)(b.len - 4));
  /* First an intact ping: answered with a pong. */
  rogue_send(net, &r, b.data, b.len, 0);
  uint8_t out[4096];
  size_t n = take_sent(net, r.conn, out, sizeof out);
  assert_true(n > 18);
  px_msg_t pong;
  rogue_decrypt_all(&r, out, n, &pong);
  assert_int_equal(pong.type, PX_MSG_PONG);
  assert_true(pong.u.ping.nonce == 77);
  /* Then a tampered one. */
  rogue_send(net, &r, b.data, b.len, 1);
  take_sent(net, r.conn, out, sizeof out);
  assert_int_equal(net->last_close_err[0], PX_EAUTH);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  px_buf_release(&b);
  net_free(net);
}

/* An undecodable message (valid frame, bad body) drops the peer. */
static void test_undecodable_message(void **state) {
  (void)state;
  net_t *net = net_new(1, no_ip_ban);
  rogue_t r;
  rogue_connect(net, &r, 11);
  uint8_t pt[4 + 3] = {3, 0, 0, 0, 0x63, 0x00, 0x01}; /* type 99 */
  rogue_send(net, &r, pt, sizeof pt, 0);
  uint8_t out[4096];
  take_sent(net, r.conn, out, sizeof out);
  assert_int_equal(net->last_close_err[0], PX_EDECODE);
  net_free(net);
}

/* Per-peer message rate limit. */
static void low_rate(px_p2p_config_t *c, int i) {
  if (i == 1) c->rate_msgs = 10;
}
static void test_rate_limit(void **state) {
  (void)state;
  net_t *net = net_new(2, low_rate);
  connect_pair(net, 0, 1);
  net_advance(net, 200, 50);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 1);
  /* Burst allowance is 2 s worth (20); 100 at once exceeds it. */
  for (int k = 0; k < 100; k++)
    px_p2p_send(net->p[0], net->kp[1].pk, 1, "m", 1);
  net_run(net);
  assert_true(count_close(net, 1, PX_ERATE) == 1);
  assert_true(net->ndirect[1] < 30);
  net_free(net);
}

/* A silent peer is dropped after the idle timeout; the dialer reconnects
 * with backoff once the partition heals. */
static void test_idle_timeout_and_reconnect(void **state) {
  (void)state;
  net_t *net = net_new(2, NULL);
  connect_pair(net, 0, 1);
  net_advance(net, 200, 50);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  /* Partition: nothing flows either way, dials fail. */
  net->partition = 1;
  net_advance(net, 31000, 100);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 0);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 0);
  assert_true(count_close(net, 0, PX_ETIMEOUT) >= 1);
  /* Heal: node 0 dials again by itself (backoff is at most 30 s). */
  net->partition = 0;
  net_advance(net, 40000, 100);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 1);
  net_free(net);
}

/* Two nodes dialing each other at once keep exactly one connection. */
static void test_simultaneous_dial(void **state) {
  (void)state;
  net_t *net = net_new(2, NULL);
  connect_pair(net, 0, 1);
  connect_pair(net, 1, 0);
  net_advance(net, 3000, 50);
  assert_int_equal(px_p2p_peer_count(net->p[0]), 1);
  assert_int_equal(px_p2p_peer_count(net->p[1]), 1);
  px_p2p_peer_info_t a, b;
  px_p2p_peers(net->p[0], &a, 1);
  px_p2p_peers(net->p[1], &b, 1);
  assert_int_not_equal(a.inbound, b.inbound); /* the same connection */
  net_free(net);
}

/* Dial failures back off exponentially. */
static void test_dial_backoff(void **state) {
  (void)state;
  net_t *net = net_new(1, NULL);
  assert_int_equal(px_p2p_add_bootstrap(net->p[0], "10.9.9.9:1"), 0);
  int dials = 0;
  for (int t = 0; t < 300; t++) { /* 30 s */
    net->now += 100;
    px_p2p_tick(net->p[0], net->now);
    px_p2p_fx_t f;
    while (px_p2p_poll(net->p[0], &f)) {
      if (f.kind == PX_P2P_FX_DIAL) {
        dials++;
        px_p2p_on_dial_failed(net->p[0], f.conn, PX_ENET, net->now);
      }
      px_p2p_fx_release(&f);
    }
  }
  /* 250 ms doubling: ~0, .25, .75, 1.75, 3.75, 7.75, 15.75, 31.75 s. */
  assert_true(dials >= 5 && dials <= 9);
  net_free(net);
}

static void test_bad_inputs(void **state) {
  (void)state;
  px_p2p_config_t c;
  px_p2p_config_default(&c);
  px_p2p_t *p;
  c.max_msg = 0;
  assert_int_equal(px_p2p_new(&c, &p), PX_EINVAL);
  px_p2p_config_default(&c);
  snprintf(c.listen, sizeof c.listen, "nonsense");
  assert_int_equal(px_p2p_new(&c, &p), PX_EADDR);
  px_p2p_config_default(&c);
  assert_int_equal(px_key_generate(&c.identity), 0);
  assert_int_equal(px_p2p_new(&c, &p), 0);
  assert_int_equal(px_p2p_add_bootstrap(p, "no-port"), PX_EADDR);
  assert_int_equal(px_p2p_add_bootstrap(p, "1.2.3.4:0"), PX_EADDR);
  assert_int_equal(px_p2p_add_bootstrap(p, "1.2.3.4:70000"), PX_EADDR);
  assert_int_equal(px_p2p_add_bootstrap(p, "[::1]:7000"), 0);
  uint8_t big[64];
  memset(big, 0, sizeof big);
  assert_int_equal(px_p2p_send(p, big, 1, "x", 1), PX_ENOTFOUND);
  /* Events for unknown connections are ignored. */
  px_p2p_on_data(p, 12345, (const uint8_t *)"x", 1, 0);
  px_p2p_on_closed(p, 12345, 0, 0);
  px_p2p_free(p);
  px_p2p_free(NULL);
}

int main(void) {
  px_crypto_init();
  px_log_set_level(PX_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_pair),
      cmocka_unit_test(test_pex_full_mesh),
      cmocka_unit_test(test_gossip_exactly_once),
      cmocka_unit_test(test_gossip_ttl),
      cmocka_unit_test(test_gossip_ttl_relay),
      cmocka_unit_test(test_request_response),
      cmocka_unit_test(test_large_direct),
      cmocka_unit_test(test_wrong_network),
      cmocka_unit_test(test_self_connection),
      cmocka_unit_test(test_garbage_and_ip_ban),
      cmocka_unit_test(test_handshake_timeout_no_ip_ban),
      cmocka_unit_test(test_pending_limit),
      cmocka_unit_test(test_oversize_frame_and_node_ban),
      cmocka_unit_test(test_tampered_ciphertext),
      cmocka_unit_test(test_undecodable_message),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_idle_timeout_and_reconnect),
      cmocka_unit_test(test_simultaneous_dial),
      cmocka_unit_test(test_dial_backoff),
      cmocka_unit_test(test_bad_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
