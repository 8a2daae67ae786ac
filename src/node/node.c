/*
 * node.c — the runtime that drives the p2p core over real sockets.
 *
 * One libuv loop, one thread.  Every socket event becomes a core event
 * (px_p2p_on_inbound/on_dialed/on_data/on_closed), every tick a
 * px_p2p_tick; after each, drain_effects() performs what the core asked:
 * SEND is a uv_write of the core's buffer (ownership moves to the write
 * request), CLOSE shuts the socket down after queued writes flush, DIAL is a
 * uv_tcp_connect.  A peer whose unsent queue grows past a cap (it reads too
 * slowly) is dropped rather than letting memory grow without bound.
 *
 * The control socket (DIR/node.sock) accepts one command per connection and
 * answers with one JSON line (plexus/node.h lists the commands).
 *
 * Shutdown (SIGINT, SIGTERM, `stop`): the core says BYE to every peer, the
 * sockets are closed after their queues flush (at most 1 s), the gossip log
 * is fsynced, the lock released and the control socket removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "plexus/api.h"
#include "plexus/crypto.h"
#include "plexus/node.h"
#include "plexus/p2p.h"
#include "node/chain.h"
#include "node/market_rt.h"
#include "node/session_rt.h"
#include "node/miner.h"
#include "base/px_internal.h"

#define LOGMOD "node"
/* One read buffer per node, shared by its connections: reads are handled
 * one at a time on the loop thread and the core copies what it keeps.  Big
 * reads mean fewer system calls on the bulk path. */
#define READ_BUF (256u << 10)
#define MAX_WRITE_QUEUE (64u << 20)
#define CTL_MAX_LINE (16u << 20) /* `txs` carries many transactions */

typedef struct conn {
  uv_tcp_t tcp;
  struct px_node *node;
  uint64_t id;
  int closing;
  int dialing;
  int connected;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
} conn_t;

typedef struct {
  uv_write_t req;
  px_buf_t data;
} write_req_t;

typedef struct ctl {
  uv_pipe_t pipe;
  struct px_node *node;
  px_buf_t in;
  int replied;
  uint64_t req_id; /* waiting for a p2p RESPONSE */
  struct ctl *next;
} ctl_t;

typedef struct call {
  px_node_call_fn fn;
  void *ud;
  struct call *next;
} call_t;

struct px_node {
  char home[512];
  px_node_hooks_t hooks;
  uv_async_t call_async;
  uv_mutex_t call_mu;
  call_t *calls_head, *calls_tail;
  int loop_ready;
  px_config_t cfg;
  px_p2p_config_t p2pcfg;
  px_p2p_t *p2p;
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_pipe_t ctl_server;
  uv_timer_t tick;
  uv_timer_t stop_timer;
  uv_signal_t sigint, sigterm;
  uv_async_t stop_async;
  conn_t **conns;
  size_t nconns, capconns;
  ctl_t *ctls;
  uint8_t *rbuf; /* READ_BUF bytes, see above */
  int lock_fd;
  int gossip_fd;
  int stopping;
  int listening;
  char listen_addr[PX_ADDR_MAX];
  uint64_t started_ms;
  char sock_path[600];
  px_chain_t *chain;   /* when DIR/genesis.json exists (chain.c) */
  px_market_t *market; /* with the chain (market.c) */
  px_miner_t *miner;   /* with the chain (miner.c) */
  px_api_t *api;       /* HTTP gateway when api.http is set (src/api) */
};

static void drain_effects(px_node_t *n);

/* ---- configuration ----------------------------------------------------- */

static int cfg_u64(const px_config_t *c, const char *key, uint64_t *dst,
                   uint64_t lo, uint64_t hi, char *errmsg, size_t errcap) {
  uint64_t v;
  if (px_config_get_u64(c, key, *dst, &v) || v < lo || v > hi) {
    snprintf(errmsg, errcap,
             "config: %s must be a whole number from %llu to %llu", key,
             (unsigned long long)lo, (unsigned long long)hi);
    return PX_ECONFIG;
  }
  *dst = v;
  return 0;
}

int px_node_p2p_config(const px_config_t *c, px_p2p_config_t *o, char *errmsg,
                       size_t errcap) {
  static const char *known[] = {
      "p2p.listen",
      "p2p.bootstrap",
      "p2p.network",
      "p2p.max_msg",
      "p2p.max_inbound",
      "p2p.max_outbound",
      "p2p.target_outbound",
      "p2p.max_pending",
      "p2p.handshake_timeout_ms",
      "p2p.idle_timeout_ms",
      "p2p.ping_interval_ms",
      "p2p.pex_interval_ms",
      "p2p.reconnect_min_ms",
      "p2p.reconnect_max_ms",
      "p2p.ban_ms",
      "p2p.ban_strikes",
      "p2p.ban_ip",
      "p2p.rate_msgs",
      "p2p.rate_bytes",
      "p2p.gossip_ttl",
      "p2p.gossip_fanout",
      "p2p.seen_cap",
      "p2p.seen_ttl_ms",
      "p2p.request_timeout_ms",
  };
  px_p2p_config_default(o);
  for (size_t i = 0; i < c->n; i++) {
    const char *k = c->entries[i].key;
    if (strncmp(k, "p2p.", 4) != 0) continue;
    int ok = 0;
    for (size_t j = 0; j < PX_ARRAY_LEN(known) && !ok; j++)
      ok = strcmp(k, known[j]) == 0;
    if (!ok) {
      snprintf(errmsg, errcap,
               "config: unknown option '%s' (see docs/config.md)", k);
      return PX_ECONFIG;
    }
  }
  const char *net = px_config_get_str(c, "p2p.network", "plexus-devnet");
  if (!*net || strlen(net) >= sizeof o->network) {
    snprintf(errmsg, errcap, "config: p2p.network must be 1 to %zu characters",
             sizeof o->network - 1);
    return PX_ECONFIG;
  }
  snprintf(o->network, sizeof o->network, "%s", net);
  const char *listen = px_config_get_str(c, "p2p.listen", "127.0.0.1:7100");
  if (strlen(listen) >= sizeof o->listen) {
    snprintf(errmsg, errcap, "config: p2p.listen is too long");
    return PX_ECONFIG;
  }
  snprintf(o->listen, sizeof o->listen, "%s", listen);
  uint64_t v;
  int rc = 0;
#define U64(key, field, lo, hi)                                                \
  do {                                                                         \
    v = (uint64_t)o->field;                                                    \
    if ((rc = cfg_u64(c, key, &v, lo, hi, errmsg, errcap))) return rc;         \
    o->field = v;                                                              \
  } while (0)
  U64("p2p.max_msg", max_msg, 1024, 1u << 30);
  U64("p2p.max_inbound", max_inbound, 0, 100000);
  U64("p2p.max_outbound", max_outbound, 0, 100000);
  U64("p2p.target_outbound", target_outbound, 0, 100000);
  U64("p2p.max_pending", max_pending, 1, 100000);
  U64("p2p.handshake_timeout_ms", handshake_timeout_ms, 100, 600000);
  U64("p2p.idle_timeout_ms", idle_timeout_ms, 1000, 86400000);
  U64("p2p.ping_interval_ms", ping_interval_ms, 100, 86400000);
  U64("p2p.pex_interval_ms", pex_interval_ms, 100, 86400000);
  U64("p2p.reconnect_min_ms", reconnect_min_ms, 10, 86400000);
  U64("p2p.reconnect_max_ms", reconnect_max_ms, 10, 86400000);
  U64("p2p.ban_ms", ban_ms, 0, 86400000ull * 365);
  U64("p2p.ban_strikes", ban_strikes, 1, 1000000);
  U64("p2p.rate_msgs", rate_msgs, 1, 100000000);
  U64("p2p.rate_bytes", rate_bytes, 1024, 1ull << 40);
  U64("p2p.gossip_ttl", gossip_ttl, 0, 255);
  U64("p2p.gossip_fanout", gossip_fanout, 1, 100000);
  U64("p2p.seen_cap", seen_cap, 16, 1u << 24);
  U64("p2p.seen_ttl_ms", seen_ttl_ms, 1000, 86400000ull * 7);
  U64("p2p.request_timeout_ms", request_timeout_ms, 10, 86400000);
#undef U64
  if (o->reconnect_min_ms > o->reconnect_max_ms) {
    snprintf(errmsg, errcap,
             "config: p2p.reconnect_min_ms exceeds p2p.reconnect_max_ms");
    return PX_ECONFIG;
  }
  int b;
  if (px_config_get_bool(c, "p2p.ban_ip", 1, &b)) {
    snprintf(errmsg, errcap, "config: p2p.ban_ip must be true or false");
    return PX_ECONFIG;
  }
  o->ban_ip = b;
  return 0;
}

/* ---- home directory ---------------------------------------------------- */

static int path_join(char *out, size_t cap, const char *home, const char *f) {
  int k = snprintf(out, cap, "%s/%s", home, f);
  return (k < 0 || (size_t)k >= cap) ? PX_ETOOBIG : 0;
}

int px_node_init_home(const char *home, const px_config_t *cfg,
                      char node_id_out[PX_NODE_ID_HEX_LEN]) {
  char path[600];
  int rc = px_mkdir_p(home, 0700);
  if (rc) return rc;
  if ((rc = path_join(path, sizeof path, home, PX_NODE_CONFIG_FILE))) return rc;
  if (access(path, F_OK) == 0) return PX_EEXIST;
  char keypath[600];
  if ((rc = path_join(keypath, sizeof keypath, home, PX_NODE_KEY_FILE)))
    return rc;
  px_keypair_t kp;
  if (access(keypath, F_OK) == 0) {
    if ((rc = px_keyfile_read(keypath, &kp))) return rc;
  } else {
    if ((rc = px_key_generate(&kp))) return rc;
    if ((rc = px_keyfile_write(keypath, &kp, 0))) {
      px_key_wipe(&kp);
      return rc;
    }
  }
  if (node_id_out) px_node_id_hex(kp.pk, node_id_out);
  px_key_wipe(&kp);
  px_config_t c;
  px_config_init(&c);
  px_config_set(&c, "p2p.network", "plexus-devnet", 0);
  px_config_set(&c, "p2p.listen", "127.0.0.1:7100", 0);
  px_config_set(&c, "p2p.bootstrap", "", 0);
  px_config_set(&c, "log.level", "info", 0);
  if (cfg)
    for (size_t i = 0; i < cfg->n; i++)
      if ((rc = px_config_set(&c, cfg->entries[i].key, cfg->entries[i].value,
                              0)))
        return rc;
  /* Validate before writing so a bad option never lands in a config. */
  px_p2p_config_t pc;
  char err[256];
  if ((rc = px_node_p2p_config(&c, &pc, err, sizeof err))) {
    PX_LOGE(LOGMOD, "%s", err);
    return rc;
  }
  return px_config_write_file(&c, path);
}

/* ---- connections ------------------------------------------------------- */

static conn_t *conn_get(px_node_t *n, uint64_t id) {
  for (size_t i = 0; i < n->nconns; i++)
    if (n->conns[i]->id == id) return n->conns[i];
  return NULL;
}

static int conn_track(px_node_t *n, conn_t *c) {
  if (n->nconns == n->capconns) {
    size_t nc = n->capconns ? n->capconns * 2 : 32;
    conn_t **a = px_realloc(n->conns, nc * sizeof *a);
    if (!a) return PX_ENOMEM;
    n->conns = a;
    n->capconns = nc;
  }
  n->conns[n->nconns++] = c;
  return 0;
}

static void conn_untrack(px_node_t *n, conn_t *c) {
  for (size_t i = 0; i < n->nconns; i++)
    if (n->conns[i] == c) {
      n->conns[i] = n->conns[--n->nconns];
      return;
    }
}

static int uv_to_px(int uverr) {
  return uverr < 0 ? px_err_from_errno(-uverr) : 0;
}

static void sockaddr_str(const struct sockaddr_storage *ss, char *out,
                         size_t cap) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, cap, "%s:%d", ip, port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    snprintf(out, cap, "[%s]:%d", ip, port);
  } else {
    snprintf(out, cap, "unknown");
  }
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss) {
  char host[PX_ADDR_MAX];
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || strlen(addr) >= sizeof host) return PX_EADDR;
  uint64_t port;
  if (px_parse_u64(colon + 1, &port) || port == 0 || port > 65535)
    return PX_EADDR;
  const char *h = addr, *he = colon;
  if (*h == '[' && he[-1] == ']') {
    h++;
    he--;
  }
  memcpy(host, h, (size_t)(he - h));
  host[he - h] = 0;
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return PX_EADDR;
}

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  px_node_t *n = c->node;
  conn_untrack(n, c);
  if (c->id) {
    if (c->dialing && !c->connected)
      px_p2p_on_dial_failed(n->p2p, c->id, PX_ECLOSED, uv_now(&n->loop));
    else
      px_p2p_on_closed(n->p2p, c->id, 0, uv_now(&n->loop));
  }
  px_free(c);
  if (!n->stopping) drain_effects(n);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  buf->base = (char *)c->node->rbuf;
  buf->len = READ_BUF;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  px_node_t *n = c->node;
  if (c->closing) return;
  if (nread > 0) {
    px_p2p_on_data(n->p2p, c->id, (const uint8_t *)buf->base, (size_t)nread,
                   uv_now(&n->loop));
    drain_effects(n);
  } else if (nread < 0) {
    conn_close(c); /* EOF or error: on_conn_closed tells the core */
  }
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  (void)status; /* a failed write surfaces as a read error/EOF */
  px_buf_release(&w->data);
  px_free(w);
}

static void do_send(px_node_t *n, conn_t *c, px_buf_t *data) {
  (void)n;
  if (!c || c->closing || !c->connected) return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
      MAX_WRITE_QUEUE) {
    PX_LOGW(LOGMOD, "connection %llu: peer reads too slowly, dropping",
            (unsigned long long)c->id);
    conn_close(c);
    return;
  }
  write_req_t *w = px_malloc(sizeof *w);
  if (!w) return;
  w->data = *data;
  px_buf_init(data, 0); /* ownership moved */
  uv_buf_t b = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc) {
    px_buf_release(&w->data);
    px_free(w);
    conn_close(c);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  px_node_t *n = c->node;
  if (c->closing) return;
  if (status < 0) {
    uint64_t id = c->id;
    c->id = 0; /* report once, here */
    px_p2p_on_dial_failed(n->p2p, id, uv_to_px(status), uv_now(&n->loop));
    conn_close(c);
    drain_effects(n);
    return;
  }
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char remote[PX_ADDR_MAX] = "";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    sockaddr_str(&ss, remote, sizeof remote);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  px_p2p_on_dialed(n->p2p, c->id, remote, uv_now(&n->loop));
  drain_effects(n);
}

static void do_dial(px_node_t *n, uint64_t id, const char *addr) {
  struct sockaddr_storage ss;
  if (parse_addr(addr, &ss)) {
    PX_LOGW(LOGMOD, "cannot dial '%s': not a numeric ip:port", addr);
    px_p2p_on_dial_failed(n->p2p, id, PX_EADDR, uv_now(&n->loop));
    return;
  }
  conn_t *c = px_calloc(1, sizeof *c);
  if (!c || conn_track(n, c)) {
    px_free(c);
    px_p2p_on_dial_failed(n->p2p, id, PX_ENOMEM, uv_now(&n->loop));
    return;
  }
  c->node = n;
  c->id = id;
  c->dialing = 1;
  uv_tcp_init(&n->loop, &c->tcp);
  c->tcp.data = c;
  c->connect_req.data = c;
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&ss,
                          on_connect);
  if (rc) {
    c->id = 0;
    px_p2p_on_dial_failed(n->p2p, id, uv_to_px(rc), uv_now(&n->loop));
    conn_close(c);
  }
}

static void do_close(conn_t *c) {
  if (!c || c->closing) return;
  if (!c->connected) {
    conn_close(c);
    return;
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown))
    conn_close(c);
}

static void on_accept(uv_stream_t *server, int status) {
  px_node_t *n = server->data;
  if (status < 0) {
    PX_LOGW(LOGMOD, "accept failed: %s", uv_strerror(status));
    return;
  }
  conn_t *c = px_calloc(1, sizeof *c);
  if (!c) return;
  c->node = n;
  uv_tcp_init(&n->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) || conn_track(n, c)) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)px_free);
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char remote[PX_ADDR_MAX] = "unknown";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    sockaddr_str(&ss, remote, sizeof remote);
  uint64_t id;
  int rc = px_p2p_on_inbound(n->p2p, remote, uv_now(&n->loop), &id);
  if (rc) {
    conn_close(c); /* refused: limit or ban (the core logged why) */
    return;
  }
  c->id = id;
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  drain_effects(n);
}

/* ---- control socket ---------------------------------------------------- */

static void ctl_closed(uv_handle_t *h) {
  ctl_t *x = h->data;
  px_node_t *n = x->node;
  for (ctl_t **pp = &n->ctls; *pp; pp = &(*pp)->next)
    if (*pp == x) {
      *pp = x->next;
      break;
    }
  px_buf_release(&x->in);
  px_free(x);
}

static void ctl_close(ctl_t *x) {
  if (!uv_is_closing((uv_handle_t *)&x->pipe))
    uv_close((uv_handle_t *)&x->pipe, ctl_closed);
}

static void ctl_wrote(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  ctl_t *x = req->data;
  (void)status;
  px_buf_release(&w->data);
  px_free(w);
  ctl_close(x);
}

static void ctl_reply(ctl_t *x, px_buf_t *json) {
  if (x->replied) return;
  x->replied = 1;
  px_buf_append(json, "\n", 1);
  write_req_t *w = px_malloc(sizeof *w);
  if (!w) {
    px_buf_release(json);
    ctl_close(x);
    return;
  }
  w->data = *json;
  px_buf_init(json, 0);
  w->req.data = x;
  uv_buf_t b = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
  if (uv_write(&w->req, (uv_stream_t *)&x->pipe, &b, 1, ctl_wrote)) {
    px_buf_release(&w->data);
    px_free(w);
    ctl_close(x);
  }
}

static void json_str(px_buf_t *b, const char *s, size_t n) {
  px_buf_append(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      px_buf_printf(b, "\\%c", ch);
    else if (ch < 0x20 || ch >= 0x7f)
      px_buf_printf(b, "\\u%04x", ch);
    else
      px_buf_append(b, &ch, 1);
  }
  px_buf_append(b, "\"", 1);
}

static void ctl_error(ctl_t *x, int err, const char *msg) {
  px_buf_t b;
  px_buf_init(&b, 0);
  px_buf_printf(
      &b, "{\"ok\":false,\"error\":\"%s\",\"message\":", px_err_name(err));
  json_str(&b, msg, strlen(msg));
  px_buf_append(&b, "}", 1);
  ctl_reply(x, &b);
  px_buf_release(&b);
}

static void status_json(px_node_t *n, px_buf_t *b) {
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(px_p2p_node_pk(n->p2p), id);
  px_p2p_stats_t st;
  px_p2p_get_stats(n->p2p, &st);
  px_p2p_peer_info_t peers[256];
  size_t np = px_p2p_peers(n->p2p, peers, PX_ARRAY_LEN(peers));
  uint64_t now = uv_now(&n->loop);
  px_buf_printf(b,
                "{\"ok\":true,\"node_id\":\"%s\",\"network\":\"%s\","
                "\"listen\":\"%s\",\"pid\":%ld,\"uptime_ms\":%llu,"
                "\"peer_count\":%zu,\"peers\":[",
                id, n->p2pcfg.network, n->listen_addr, (long)getpid(),
                (unsigned long long)(now - n->started_ms), np);
  for (size_t i = 0; i < np; i++) {
    char pid[PX_NODE_ID_HEX_LEN];
    px_node_id_hex(peers[i].node_pk, pid);
    px_buf_printf(b,
                  "%s{\"node_id\":\"%s\",\"addr\":\"%s\",\"remote\":\"%s\","
                  "\"inbound\":%s,\"rtt_ms\":%llu,\"msgs_in\":%llu,"
                  "\"msgs_out\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu}",
                  i ? "," : "", pid, peers[i].addr, peers[i].remote,
                  peers[i].inbound ? "true" : "false",
                  (unsigned long long)peers[i].rtt_ms,
                  (unsigned long long)peers[i].msgs_in,
                  (unsigned long long)peers[i].msgs_out,
                  (unsigned long long)peers[i].bytes_in,
                  (unsigned long long)peers[i].bytes_out);
  }
  px_buf_printf(
      b,
      "],\"stats\":{\"known_peers\":%llu,\"connections\":%llu,"
      "\"handshakes_ok\":%llu,\"handshakes_failed\":%llu,"
      "\"bans\":%llu,\"gossip_delivered\":%llu,"
      "\"gossip_duplicates\":%llu,\"gossip_forwarded\":%llu,"
      "\"requests_in\":%llu,\"requests_out\":%llu,"
      "\"request_timeouts\":%llu,\"drops\":{",
      (unsigned long long)st.known_peers, (unsigned long long)st.conns_total,
      (unsigned long long)st.handshakes_ok,
      (unsigned long long)st.handshakes_failed, (unsigned long long)st.bans,
      (unsigned long long)st.gossip_delivered,
      (unsigned long long)st.gossip_duplicates,
      (unsigned long long)st.gossip_forwarded,
      (unsigned long long)st.requests_in, (unsigned long long)st.requests_out,
      (unsigned long long)st.request_timeouts);
  int first = 1;
  for (int e = 1; e < PX_ERR_COUNT; e++) {
    if (!st.drops_by_reason[e]) continue;
    px_buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", px_err_name(-e),
                  (unsigned long long)st.drops_by_reason[e]);
    first = 0;
  }
  px_buf_printf(b, "}}");
  if (n->chain) {
    px_buf_printf(b, ",\"chain\":");
    px_chain_status_json(n->chain, b);
  }
  if (n->market) {
    px_buf_printf(b, ",\"market\":");
    px_market_status_json(n->market, b);
  }
  if (n->miner) {
    px_buf_printf(b, ",\"upow\":");
    px_miner_status_json(n->miner, b);
  }
  if (n->market && n->market->sesgw) {
    px_buf_printf(b, ",\"gateway\":");
    px_sesgw_status_json(n->market->sesgw, b);
  }
  px_buf_printf(b, "}");
}

static void ctl_command(ctl_t *x, char *line) {
  px_node_t *n = x->node;
  uint64_t now = uv_now(&n->loop);
  px_buf_t b;
  px_buf_init(&b, 0);
  char *arg = strchr(line, ' ');
  if (arg) *arg++ = 0;
  if (strcmp(line, "status") == 0) {
    status_json(n, &b);
    ctl_reply(x, &b);
  } else if (strcmp(line, "gossip") == 0) {
    char *text = arg ? strchr(arg, ' ') : NULL;
    uint64_t topic;
    if (!text || (*text++ = 0, px_parse_u64(arg, &topic)) || topic > 65535) {
      ctl_error(x, PX_EINVAL, "usage: gossip TOPIC TEXT");
    } else {
      uint8_t id[32];
      int rc = px_p2p_broadcast(n->p2p, (uint16_t)topic, text, strlen(text),
                                now, id);
      if (rc) {
        ctl_error(x, rc, px_strerror(rc));
      } else {
        char hex[65];
        px_hex_encode(id, 32, hex);
        px_buf_printf(&b, "{\"ok\":true,\"id\":\"%s\",\"peers\":%zu}", hex,
                      px_p2p_peer_count(n->p2p));
        ctl_reply(x, &b);
      }
    }
  } else if (strcmp(line, "request") == 0) {
    char *text = arg ? strchr(arg, ' ') : NULL;
    uint8_t pk[32];
    if (!text || (*text++ = 0, px_node_id_parse(arg, pk))) {
      ctl_error(x, PX_EINVAL, "usage: request NODE_ID TEXT");
    } else {
      int rc = px_p2p_request(n->p2p, pk, PX_NODE_METHOD_ECHO, text,
                              strlen(text), 0, now, &x->req_id);
      if (rc)
        ctl_error(x, rc,
                  rc == PX_ENOTFOUND ? "not connected to that node"
                                     : px_strerror(rc));
    }
  } else if (strcmp(line, "stop") == 0) {
    px_buf_printf(&b, "{\"ok\":true,\"stopping\":true}");
    ctl_reply(x, &b);
    px_node_stop(n);
  } else if (n->chain && px_chain_command(n->chain, line, arg, &b)) {
    ctl_reply(x, &b);
  } else if (n->market && px_market_command(n->market, line, arg, &b)) {
    ctl_reply(x, &b);
  } else if (n->miner && px_miner_command(n->miner, line, arg, &b)) {
    ctl_reply(x, &b);
  } else {
    ctl_error(x, PX_EINVAL,
              n->chain ? "unknown command (status, gossip, request, stop, tx, "
                         "txs, account, txstatus, block, validators, chain, "
                         "provide, providers, job_submit, job_status, "
                         "job_result, job_list)"
                       : "unknown command (status, gossip, request, stop)");
  }
  px_buf_release(&b);
  drain_effects(n);
}

/* The HTTP gateway's window on the node (px_api_config_t.command): the
 * read-only and job control commands, answered on the loop thread with the
 * same JSON the control socket gives. */
static int api_command(px_node_t *n, const char *line, px_buf_t *out) {
  char cmd[64];
  const char *arg = strchr(line, ' ');
  size_t cl = arg ? (size_t)(arg - line) : strlen(line);
  if (cl >= sizeof cmd) return PX_ENOTFOUND;
  memcpy(cmd, line, cl);
  cmd[cl] = 0;
  if (arg) arg++;
  int handled = 1;
  if (!strcmp(cmd, "status"))
    status_json(n, out);
  else if (!strcmp(cmd, "stop") || !strcmp(cmd, "tx") || !strcmp(cmd, "txs") ||
           !strcmp(cmd, "mine") || !strcmp(cmd, "provide"))
    handled = 0; /* not offered over HTTP */
  else if (!(n->chain && px_chain_command(n->chain, cmd, arg, out)) &&
           !(n->market && px_market_command(n->market, cmd, arg, out)) &&
           !(n->miner && px_miner_command(n->miner, cmd, arg, out)))
    handled = 0;
  return handled ? 0 : PX_ENOTFOUND;
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  ctl_t *x = h->data;
  if (px_buf_reserve(&x->in, 4096)) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = (char *)x->in.data + x->in.len;
  buf->len = x->in.cap - x->in.len;
}

static void ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ctl_t *x = s->data;
  (void)buf;
  if (nread < 0 || (nread == 0 && buf->base == NULL)) {
    if (!x->replied && nread == UV_ENOBUFS)
      ctl_error(x, PX_ETOOBIG, "command too long");
    else if (!x->req_id || nread != UV_EOF)
      ctl_close(x);
    uv_read_stop(s);
    return;
  }
  x->in.len += (size_t)nread;
  uint8_t *nl = memchr(x->in.data, '\n', x->in.len);
  if (!nl) return;
  *nl = 0;
  uv_read_stop(s);
  ctl_command(x, (char *)x->in.data);
}

static void on_ctl_accept(uv_stream_t *server, int status) {
  px_node_t *n = server->data;
  if (status < 0) return;
  ctl_t *x = px_calloc(1, sizeof *x);
  if (!x) return;
  x->node = n;
  px_buf_init(&x->in, CTL_MAX_LINE);
  uv_pipe_init(&n->loop, &x->pipe, 0);
  x->pipe.data = x;
  x->next = n->ctls;
  n->ctls = x;
  if (uv_accept(server, (uv_stream_t *)&x->pipe)) {
    ctl_close(x);
    return;
  }
  uv_read_start((uv_stream_t *)&x->pipe, ctl_alloc, ctl_read);
}

/* ---- effects ----------------------------------------------------------- */

static void log_gossip(px_node_t *n, const px_p2p_fx_t *f) {
  char id[65], origin[65], from[65];
  px_hex_encode(f->id, 32, id);
  px_node_id_hex(f->origin, origin);
  px_node_id_hex(f->node_pk, from);
  px_buf_t b;
  px_buf_init(&b, 0);
  px_buf_printf(&b, "%s topic=%u origin=%s from=%s len=%zu text=", id, f->topic,
                origin, from, f->data.len);
  size_t show = PX_MIN(f->data.len, (size_t)200);
  for (size_t i = 0; i < show; i++) {
    uint8_t ch = f->data.data[i];
    px_buf_printf(&b, (ch >= 0x21 && ch < 0x7f && ch != '%') ? "%c" : "%%%02x",
                  ch);
  }
  px_buf_append(&b, "\n", 1);
  if (n->gossip_fd >= 0 && b.data) {
    ssize_t w = write(n->gossip_fd, b.data, b.len);
    (void)w;
  }
  px_buf_release(&b);
  PX_LOGI(LOGMOD, "gossip %.16s topic %u from %.16s (%zu bytes)", id, f->topic,
          origin, f->data.len);
}

static void drain_effects(px_node_t *n) {
  px_p2p_fx_t f;
  while (px_p2p_poll(n->p2p, &f)) {
    conn_t *c = f.conn ? conn_get(n, f.conn) : NULL;
    switch (f.kind) {
    case PX_P2P_FX_SEND:
      do_send(n, c, &f.data);
      break;
    case PX_P2P_FX_CLOSE:
      do_close(c);
      break;
    case PX_P2P_FX_DIAL:
      do_dial(n, f.conn, f.addr);
      break;
    case PX_P2P_FX_GOSSIP:
      if (n->chain && px_chain_on_gossip(n->chain, &f)) break;
      log_gossip(n, &f);
      if (n->hooks.on_gossip) n->hooks.on_gossip(n, &f, n->hooks.ud);
      break;
    case PX_P2P_FX_DIRECT:
      if (n->market && px_market_on_direct(n->market, &f)) break;
      if (n->hooks.on_direct) n->hooks.on_direct(n, &f, n->hooks.ud);
      break;
    case PX_P2P_FX_REQUEST:
      if (n->chain && px_chain_on_request(n->chain, &f)) break;
      if (n->market && px_market_on_request(n->market, &f)) break;
      if (f.method == PX_NODE_METHOD_ECHO)
        px_p2p_respond(n->p2p, f.node_pk, f.req_id, 0, f.data.data, f.data.len);
      else
        px_p2p_respond(n->p2p, f.node_pk, f.req_id, PX_ENOTFOUND, NULL, 0);
      break;
    case PX_P2P_FX_RESPONSE:
      if (n->chain && px_chain_on_response(n->chain, &f)) break;
      if (n->market && px_market_on_response(n->market, &f)) break;
      for (ctl_t *x = n->ctls; x; x = x->next) {
        if (x->req_id != f.req_id || x->replied) continue;
        px_buf_t b;
        px_buf_init(&b, 0);
        if (f.err) {
          px_buf_printf(&b,
                        "{\"ok\":false,\"error\":\"%s\",\"message\":\"%s\"}",
                        px_err_name(f.err), px_strerror(f.err));
        } else {
          px_buf_printf(&b, "{\"ok\":true,\"response\":");
          json_str(&b, (const char *)f.data.data, f.data.len);
          px_buf_printf(&b, "}");
        }
        ctl_reply(x, &b);
        px_buf_release(&b);
      }
      break;
    case PX_P2P_FX_PEER_UP:
    case PX_P2P_FX_PEER_DOWN:
      if (n->chain) px_chain_on_peer(n->chain, &f);
      if (n->market) px_market_on_peer(n->market, &f);
      if (n->hooks.on_peer) n->hooks.on_peer(n, &f, n->hooks.ud);
      break; /* the core logs these */
    }
    px_p2p_fx_release(&f);
  }
}

/* ---- timers, signals, lifecycle ----------------------------------------- */

static void on_tick(uv_timer_t *t) {
  px_node_t *n = t->data;
  px_p2p_tick(n->p2p, uv_now(&n->loop));
  if (n->chain) px_chain_tick(n->chain, uv_now(&n->loop));
  if (n->market) px_market_tick(n->market, uv_now(&n->loop));
  if (n->market) px_sesgw_tick(n->market->sesgw, uv_now(&n->loop));
  if (n->miner) px_miner_tick(n->miner, uv_now(&n->loop));
  drain_effects(n);
}

static void chain_flush(void *ud) {
  px_node_t *n = ud;
  if (!n->stopping) drain_effects(n);
}

static void chain_on_block(void *ud, const px_ledger_state_t *s,
                           const px_block_t *b, const px_tx_result_t *res) {
  px_node_t *n = ud;
  if (n->market && !n->stopping) px_market_on_block(n->market, s, b, res);
  if (n->market && !n->stopping) px_sesgw_on_block(n->market->sesgw, s, b, res);
  if (n->miner && !n->stopping) px_miner_on_block(n->miner, s, b, res);
}

/* Last resort at exit: close whatever is still open (connections through
 * conn_close so the core hears of them and their memory is freed). */
static void close_all(uv_handle_t *h, void *arg) {
  px_node_t *n = arg;
  if (uv_is_closing(h)) return;
  if (h->type == UV_TCP && h != (uv_handle_t *)&n->listener)
    conn_close(h->data);
  else if (h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&n->ctl_server)
    ctl_close(h->data);
  else
    uv_close(h, NULL);
}

static void on_stop_timer(uv_timer_t *t) {
  px_node_t *n = t->data;
  /* Anything still open after the grace period is closed now. */
  for (size_t i = 0; i < n->nconns; i++)
    conn_close(n->conns[i]);
  for (ctl_t *x = n->ctls; x; x = x->next)
    ctl_close(x);
  px_api_stop(n->api);
  px_market_close(n->market);
  px_miner_close(n->miner);
  px_chain_close(n->chain);
  uv_close((uv_handle_t *)&n->tick, NULL);
  uv_close((uv_handle_t *)&n->stop_timer, NULL);
  uv_close((uv_handle_t *)&n->sigint, NULL);
  uv_close((uv_handle_t *)&n->sigterm, NULL);
  uv_close((uv_handle_t *)&n->stop_async, NULL);
  uv_close((uv_handle_t *)&n->call_async, NULL);
  if (n->listening) uv_close((uv_handle_t *)&n->listener, NULL);
  uv_close((uv_handle_t *)&n->ctl_server, NULL);
}

static void begin_stop(px_node_t *n) {
  if (n->stopping) return;
  PX_LOGI(LOGMOD, "stopping: closing %zu connections",
          px_p2p_peer_count(n->p2p));
  if (n->market) px_sesgw_close(n->market->sesgw); /* wakes its waiters */
  px_api_stop(n->api); /* its waiting requests get 503 within 100 ms */
  px_p2p_shutdown(n->p2p, uv_now(&n->loop));
  drain_effects(n);
  n->stopping = 1;
  uv_timer_stop(&n->tick);
  /* Give BYE frames and shutdowns a moment to flush. */
  uv_timer_start(&n->stop_timer, on_stop_timer, n->nconns ? 300 : 0, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
  PX_LOGI(LOGMOD, "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  begin_stop(s->data);
}

static void on_stop_async(uv_async_t *a) { begin_stop(a->data); }

void px_node_stop(px_node_t *n) { uv_async_send(&n->stop_async); }

static void on_call_async(uv_async_t *a) {
  px_node_t *n = a->data;
  uv_mutex_lock(&n->call_mu);
  call_t *c = n->calls_head;
  n->calls_head = n->calls_tail = NULL;
  uv_mutex_unlock(&n->call_mu);
  while (c) {
    call_t *next = c->next;
    if (!n->stopping) c->fn(n, n->p2p, c->ud);
    px_free(c);
    c = next;
  }
  if (!n->stopping) drain_effects(n);
}

int px_node_call(px_node_t *n, px_node_call_fn fn, void *ud) {
  call_t *c = px_calloc(1, sizeof *c);
  if (!c) return PX_ENOMEM;
  c->fn = fn;
  c->ud = ud;
  uv_mutex_lock(&n->call_mu);
  if (n->calls_tail)
    n->calls_tail->next = c;
  else
    n->calls_head = c;
  n->calls_tail = c;
  uv_mutex_unlock(&n->call_mu);
  uv_async_send(&n->call_async);
  return 0;
}

void px_node_set_hooks(px_node_t *n, const px_node_hooks_t *h) {
  n->hooks = *h;
}

uint64_t px_node_now(px_node_t *n) { return uv_now(&n->loop); }

px_p2p_t *px_node_p2p(px_node_t *n) { return n->p2p; }

size_t px_node_send_queue(px_node_t *n, const uint8_t pk[PX_PK_LEN]) {
  px_p2p_peer_info_t peers[256];
  size_t np = px_p2p_peers(n->p2p, peers, PX_ARRAY_LEN(peers));
  for (size_t i = 0; i < np; i++) {
    if (memcmp(peers[i].node_pk, pk, PX_PK_LEN) != 0) continue;
    conn_t *c = conn_get(n, peers[i].conn);
    if (!c || c->closing) return 0;
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  }
  return 0;
}

int px_node_open(const char *home, const px_config_t *flags, px_node_t **out,
                 char *errmsg, size_t errcap) {
  *out = NULL;
  errmsg[0] = 0;
  if (px_crypto_init()) {
    snprintf(errmsg, errcap, "cannot initialise libsodium");
    return PX_ECRYPTO;
  }
  px_node_t *n = px_calloc(1, sizeof *n);
  if (!n) return PX_ENOMEM;
  n->lock_fd = n->gossip_fd = -1;
  if (!(n->rbuf = px_malloc(READ_BUF))) {
    px_free(n);
    return PX_ENOMEM;
  }
  snprintf(n->home, sizeof n->home, "%s", home);
  px_config_init(&n->cfg);
  char path[600];
  int rc, line = 0;
  if (flags)
    for (size_t i = 0; i < flags->n; i++)
      px_config_set(&n->cfg, flags->entries[i].key, flags->entries[i].value, 1);
  path_join(path, sizeof path, home, PX_NODE_CONFIG_FILE);
  if ((rc = px_config_load_file(&n->cfg, path, &line))) {
    if (rc == PX_ENOENT)
      snprintf(errmsg, errcap,
               "no config at %s: run `plexus init --home %s` first", path,
               home);
    else if (line)
      snprintf(errmsg, errcap, "%s line %d: %s", path, line, px_strerror(rc));
    else
      snprintf(errmsg, errcap, "cannot read %s: %s", path, px_strerror(rc));
    goto fail;
  }
  px_log_level_t lvl;
  const char *ls = px_config_get_str(&n->cfg, "log.level", "info");
  if (px_log_parse_level(ls, &lvl)) {
    snprintf(errmsg, errcap,
             "config: log.level must be error, warn, info, debug or trace");
    rc = PX_ECONFIG;
    goto fail;
  }
  px_log_set_level(lvl);
  if ((rc = px_node_p2p_config(&n->cfg, &n->p2pcfg, errmsg, errcap))) goto fail;
  path_join(path, sizeof path, home, PX_NODE_KEY_FILE);
  if ((rc = px_keyfile_read(path, &n->p2pcfg.identity))) {
    if (rc == PX_EPERM)
      snprintf(errmsg, errcap,
               "key file %s is readable by other users: run `chmod 600 %s`",
               path, path);
    else
      snprintf(errmsg, errcap, "cannot load key %s: %s", path, px_strerror(rc));
    goto fail;
  }
  uint8_t seed[8];
  randombytes_buf(seed, sizeof seed);
  n->p2pcfg.seed = px_get_u64le(seed);
  path_join(path, sizeof path, home, PX_NODE_LOCK_FILE);
  n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    snprintf(errmsg, errcap, "another node is already running in %s", home);
    rc = PX_EBUSY;
    goto fail;
  }
  path_join(path, sizeof path, home, PX_NODE_GOSSIP_LOG);
  n->gossip_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (n->gossip_fd < 0) {
    snprintf(errmsg, errcap, "cannot open %s: %s", path, strerror(errno));
    rc = PX_EIO;
    goto fail;
  }
  if ((rc = px_p2p_new(&n->p2pcfg, &n->p2p))) {
    snprintf(errmsg, errcap, "invalid p2p configuration: %s", px_strerror(rc));
    goto fail;
  }
  if (px_chain_configured(home)) {
    px_chain_env_t ce = {.home = home,
                         .key = &n->p2pcfg.identity,
                         .cfg = &n->cfg,
                         .loop = &n->loop,
                         .p2p = n->p2p,
                         .flush = chain_flush,
                         .ud = n,
                         .on_block = chain_on_block};
    if ((rc = px_chain_open(&ce, &n->chain, errmsg, errcap))) goto fail;
    px_market_env_t me = {.home = home,
                          .key = &n->p2pcfg.identity,
                          .cfg = &n->cfg,
                          .loop = &n->loop,
                          .p2p = n->p2p,
                          .chain = n->chain,
                          .flush = chain_flush,
                          .ud = n};
    if ((rc = px_market_open(&me, &n->market, errmsg, errcap))) goto fail;
    px_miner_env_t mi = {.home = home,
                         .key = &n->p2pcfg.identity,
                         .cfg = &n->cfg,
                         .chain = n->chain,
                         .busy = n->market ? &n->market->shards_busy : NULL};
    if ((rc = px_miner_open(&mi, &n->miner, errmsg, errcap))) goto fail;
  }
  const char *http = px_config_get(&n->cfg, "api.http");
  if (http && *http) {
    px_api_config_t ac = {
        .listen = http, .home = home, .node = n, .command = api_command};
    /* quotas of keys whose line sets none (docs/api.md "Quotas") */
    if (px_config_get_u64(&n->cfg, "api.key_rpm", 0, &ac.key_quota.rpm) ||
        px_config_get_u64(&n->cfg, "api.key_tokens_per_day", 0,
                          &ac.key_quota.tokens_per_day) ||
        ac.key_quota.rpm > PX_API_QUOTA_MAX ||
        ac.key_quota.tokens_per_day > PX_API_QUOTA_MAX) {
      snprintf(errmsg, errcap,
               "config: api.key_rpm and api.key_tokens_per_day must be whole "
               "numbers from 0 (unlimited) to %llu",
               (unsigned long long)PX_API_QUOTA_MAX);
      rc = PX_ECONFIG;
      goto fail;
    }
    uint64_t max_streams = 8;
    if (px_config_get_u64(&n->cfg, "api.max_streams", 8, &max_streams) ||
        max_streams < 1 || max_streams > 4096) {
      snprintf(errmsg, errcap,
               "config: api.max_streams must be a whole number from 1 to "
               "4096");
      rc = PX_ECONFIG;
      goto fail;
    }
    ac.max_streams = (unsigned)max_streams;
    /* Models registered in HOME/models.json: serve them over the network
     * (inference sessions on market providers, session_gateway.c). */
    path_join(path, sizeof path, home, "models.json");
    if (access(path, F_OK) == 0) {
      px_sesgw_t *gw;
      if (!n->market) {
        snprintf(errmsg, errcap,
                 "%s lists models, but network inference needs a chain: "
                 "this home has no genesis.json",
                 path);
        rc = PX_ECONFIG;
        goto fail;
      }
      if ((rc = px_sesgw_open(n->market, n, &n->cfg, &gw, errmsg, errcap)))
        goto fail;
      ac.backend = px_sesgw_backend(gw);
    }
    if ((rc = px_api_open(&ac, &n->api, errmsg, errcap))) goto fail;
  }
  const char *boot = px_config_get_str(&n->cfg, "p2p.bootstrap", "");
  char list[PX_CONFIG_MAX_VALUE];
  snprintf(list, sizeof list, "%s", boot);
  for (char *s = list, *e; s && *s; s = e) {
    e = strchr(s, ',');
    if (e) *e++ = 0;
    while (*s == ' ')
      s++;
    if (!*s) continue;
    if (px_p2p_add_bootstrap(n->p2p, s)) {
      snprintf(errmsg, errcap,
               "config: p2p.bootstrap entry '%s' is not host:port", s);
      rc = PX_ECONFIG;
      goto fail;
    }
  }
  if ((rc = uv_loop_init(&n->loop))) {
    snprintf(errmsg, errcap, "cannot start the event loop: %s",
             uv_strerror(rc));
    rc = PX_EIO;
    goto fail;
  }
  n->loop_ready = 1;
  uv_mutex_init(&n->call_mu);
  uv_async_init(&n->loop, &n->stop_async, on_stop_async);
  n->stop_async.data = n;
  uv_async_init(&n->loop, &n->call_async, on_call_async);
  n->call_async.data = n;
  *out = n;
  return 0;
fail:
  px_node_free(n);
  return rc;
}

int px_node_run(px_node_t *n) {
  int rc;
  n->started_ms = uv_now(&n->loop);
  uv_timer_init(&n->loop, &n->tick);
  uv_timer_init(&n->loop, &n->stop_timer);
  n->tick.data = n->stop_timer.data = n;
  uv_signal_init(&n->loop, &n->sigint);
  uv_signal_init(&n->loop, &n->sigterm);
  n->sigint.data = n->sigterm.data = n;
  uv_pipe_init(&n->loop, &n->ctl_server, 0);
  n->ctl_server.data = n;
  uv_tcp_init(&n->loop, &n->listener);
  n->listener.data = n;
  int result = 0;

  struct sockaddr_storage ss;
  if (parse_addr(n->p2pcfg.listen, &ss)) {
    PX_LOGE(LOGMOD, "p2p.listen '%s' is not a numeric ip:port",
            n->p2pcfg.listen);
    result = PX_ECONFIG;
    goto stop_now;
  }
  if ((rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0)) ||
      (rc = uv_listen((uv_stream_t *)&n->listener, 511, on_accept))) {
    PX_LOGE(LOGMOD,
            "cannot listen on %s: %s (is another program using it? "
            "set p2p.listen)",
            n->p2pcfg.listen, uv_strerror(rc));
    result = PX_ENET;
    goto stop_now;
  }
  n->listening = 1;
  snprintf(n->listen_addr, sizeof n->listen_addr, "%s", n->p2pcfg.listen);
  path_join(n->sock_path, sizeof n->sock_path, n->home, PX_NODE_SOCK_FILE);
  unlink(n->sock_path); /* stale: we hold the lock, so nobody else uses it */
  if ((rc = uv_pipe_bind(&n->ctl_server, n->sock_path)) ||
      (rc = uv_listen((uv_stream_t *)&n->ctl_server, 64, on_ctl_accept))) {
    PX_LOGE(LOGMOD, "cannot create control socket %s: %s", n->sock_path,
            uv_strerror(rc));
    result = PX_EIO;
    goto stop_now;
  }
  chmod(n->sock_path, 0600);
  uv_signal_start(&n->sigint, on_signal, SIGINT);
  uv_signal_start(&n->sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(n->p2pcfg.identity.pk, id);
  PX_LOGI(LOGMOD, "node %s listening on %s (network %s)", id, n->p2pcfg.listen,
          n->p2pcfg.network);
  if (n->chain && (rc = px_chain_start(n->chain))) {
    result = rc;
    goto stop_now;
  }
  if (n->market && (rc = px_market_start(n->market))) {
    result = rc;
    goto stop_now;
  }
  if (n->miner && (rc = px_miner_start(n->miner))) {
    result = rc;
    goto stop_now;
  }
  char aerr[256];
  if (n->api && (rc = px_api_start(n->api, aerr, sizeof aerr))) {
    PX_LOGE(LOGMOD, "%s", aerr);
    result = rc;
    goto stop_now;
  }
  uv_timer_start(&n->tick, on_tick, 0, 50);
  uv_run(&n->loop, UV_RUN_DEFAULT);
  goto done;
stop_now:
  n->stopping = 1;
  on_stop_timer(&n->stop_timer);
  uv_run(&n->loop, UV_RUN_DEFAULT);
done:
  uv_walk(&n->loop, close_all, n);
  uv_run(&n->loop, UV_RUN_DEFAULT);
  if (uv_loop_alive(&n->loop))
    PX_LOGW(LOGMOD, "event loop has handles open at exit");
  if (n->sock_path[0]) unlink(n->sock_path);
  if (n->gossip_fd >= 0) fsync(n->gossip_fd);
  if (!result) PX_LOGI(LOGMOD, "stopped cleanly");
  return result;
}

void px_node_free(px_node_t *n) {
  if (!n) return;
  if (n->loop_ready) {
    /* Opened but never run (or run already closed them): close handles. */
    if (!uv_is_closing((uv_handle_t *)&n->stop_async)) {
      uv_close((uv_handle_t *)&n->stop_async, NULL);
      uv_close((uv_handle_t *)&n->call_async, NULL);
      uv_run(&n->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&n->loop);
    uv_mutex_destroy(&n->call_mu);
    for (call_t *c = n->calls_head; c;) {
      call_t *next = c->next;
      px_free(c);
      c = next;
    }
  }
  px_api_free(n->api); /* joins its threads: before what they read */
  if (n->market) px_sesgw_free(n->market->sesgw); /* the API's backend */
  px_market_free(n->market); /* before the chain it reads */
  px_miner_free(n->miner);   /* likewise */
  px_chain_free(n->chain);   /* closes the WAL and the store */
  px_p2p_free(n->p2p);
  px_free(n->conns);
  px_free(n->rbuf);
  if (n->gossip_fd >= 0) close(n->gossip_fd);
  if (n->lock_fd >= 0) close(n->lock_fd);
  sodium_memzero(&n->p2pcfg.identity, sizeof n->p2pcfg.identity);
  px_free(n);
}

/* ---- client side of the control socket --------------------------------- */

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

int px_node_control(const char *home, const char *command, char **reply,
                    uint64_t timeout_ms) {
  *reply = NULL;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  int k = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", home,
                   PX_NODE_SOCK_FILE);
  if (k < 0 || (size_t)k >= sizeof sa.sun_path) return PX_ETOOBIG;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return px_err_from_errno(errno);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return (e == ENOENT || e == ECONNREFUSED) ? PX_ENOENT
                                              : px_err_from_errno(e);
  }
  px_buf_t b;
  px_buf_init(&b, 16u << 20);
  int rc = px_buf_printf(&b, "%s\n", command);
  size_t off = 0;
  while (!rc && off < b.len) {
    ssize_t w = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
    } else {
      off += (size_t)w;
    }
  }
  px_buf_reset(&b);
  uint64_t deadline = px_time_mono_ms() + timeout_ms;
  while (!rc) {
    uint64_t now = px_time_mono_ms();
    if (now >= deadline) {
      rc = PX_ETIMEOUT;
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)(deadline - now));
    if (pr < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
      break;
    }
    if (pr == 0) continue;
    if ((rc = px_buf_reserve(&b, 4096))) break;
    ssize_t r = recv(fd, b.data + b.len, b.cap - b.len - 1, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
      break;
    }
    if (r == 0) break;
    b.len += (size_t)r;
    if (memchr(b.data, '\n', b.len)) break;
  }
  close(fd);
  if (!rc && b.len == 0) rc = PX_ECLOSED;
  if (rc) {
    px_buf_release(&b);
    return rc;
  }
  while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
    b.len--;
  b.data[b.len] = 0;
  *reply = (char *)b.data;
  return 0;
}
