/*
 * p2p.c — the peer-to-peer protocol core: connections, handshake, framing,
 * peer management, gossip and request/response, as a sans-I/O state machine
 * (DESIGN.md principle 1; contract in plexus/p2p.h, wire format in
 * docs/protocol.md).
 *
 * Connection life:
 *
 *   DIALING --on_dialed--> HANDSHAKE --3 Noise XX messages--> ESTABLISHED
 *        (outbound only)      ^ on_inbound                         |
 *                              \_______ any failure: CLOSING <______/
 *
 * A connection in CLOSING has had a CLOSE effect emitted and ignores
 * everything until the runtime reports on_closed, which frees it.
 *
 * Framing.  The TCP stream is a sequence of Noise messages, each preceded by
 * its length as a u16 big-endian (the length prefix the Noise spec suggests
 * and libp2p uses), so no message can exceed 65,535 bytes and a receiver
 * never buffers more than one of them.  After the handshake the decrypted
 * stream is a sequence of application messages, each a u32 little-endian
 * length and a codec-encoded px_msg_t; a length above max_msg drops the peer
 * before a byte of the body is buffered.
 *
 * Misbehaviour (bad handshake, undecodable or oversize frame, tampered
 * ciphertext, rate limit exceeded, handshake timeout) drops the peer with a
 * logged reason and adds a strike to its node id (or, before authentication,
 * to its IP address when ban_ip is on).  ban_strikes strikes within ban_ms
 * ban it for ban_ms.  A banned IP is refused at accept; a banned node id is
 * refused at the end of its handshake.
 *
 * Gossip is flooding with a seen-cache: a message is delivered and forwarded
 * only the first time its id is seen; forwarding goes to at most
 * gossip_fanout peers other than the one it came from, with ttl - 1.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "plexus/p2p.h"
#include "p2p/noise.h"
#include "base/px_internal.h"

#define LOGMOD "p2p"
#define PROLOGUE "plexus/p2p/1"
#define BIND_PREFIX "plexus-noise-static-key:"
#define MAX_KNOWN 1024
#define MAX_STRIKES_TRACKED 1024
#define INBUF_CAP (2 + PX_NOISE_MAX_MSG + 65536)

enum { CS_DIALING, CS_HANDSHAKE, CS_ESTABLISHED, CS_CLOSING };

typedef struct {
  uint64_t id;
  int state;
  int inbound;
  char remote[PX_ADDR_MAX];
  char ip[PX_ADDR_MAX];
  int known; /* index into the address book, or -1 */
  uint64_t created_ms, established_ms, last_rx_ms, last_ping_ms;
  uint64_t ping_nonce, ping_sent_ms, rtt_ms;
  px_noise_hs_t hs;
  px_noise_cipher_t tx, rx;
  px_buf_t inbuf; /* raw bytes: u16 length + Noise message ... */
  px_buf_t app;   /* decrypted stream: u32 length + message ... */
  int authed;
  uint8_t pk[PX_PK_LEN];
  char peer_listen[PX_ADDR_MAX];
  /* token buckets, in milli-units so refills stay integral */
  uint64_t tok_msgs, tok_bytes, tok_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
} conn_t;

typedef struct {
  char addr[PX_ADDR_MAX];
  uint8_t pk[PX_PK_LEN];
  int has_pk;
  int bootstrap;
  int is_self;
  uint64_t conn; /* 0 if none */
  uint64_t next_dial_ms, backoff_ms;
  uint32_t failures;
  uint64_t last_seen_ms;
} known_t;

typedef struct {
  int is_node; /* key is a node id, else an IP */
  uint8_t pk[PX_PK_LEN];
  char ip[PX_ADDR_MAX];
  uint32_t strikes;
  uint64_t last_strike_ms, banned_until;
} strike_t;

typedef struct {
  uint64_t id;
  uint8_t pk[PX_PK_LEN];
  uint64_t deadline;
} pending_req_t;

typedef struct {
  uint8_t id[PX_HASH_LEN];
  uint64_t t;
  int32_t next; /* bucket chain */
  int used;
} seen_t;

struct px_p2p {
  px_p2p_config_t cfg;
  uint8_t static_sk[32], static_pk[32];
  uint8_t hello_sig[PX_SIG_LEN];
  px_rng_t rng;
  uint64_t next_conn_id;
  conn_t **conns;
  size_t nconns, capconns;
  known_t *known;
  size_t nknown;
  strike_t *strikes;
  size_t nstrikes;
  pending_req_t *reqs;
  size_t nreqs, capreqs;
  uint64_t next_req_id;
  uint64_t gossip_seq;
  seen_t *seen;
  int32_t *seen_buckets;
  uint32_t seen_nbuckets, seen_pos;
  px_queue_t fxq; /* of px_p2p_fx_t */
  uint64_t last_pex_ms, last_dial_ms;
  int shutting_down;
  px_p2p_stats_t stats;
  uint8_t hs_scratch[PX_NOISE_MAX_MSG]; /* handshake payloads */
};

/* ---------------------------------------------------------------------- */

void px_p2p_config_default(px_p2p_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->network, sizeof c->network, "plexus-devnet");
  c->max_msg = PX_P2P_DEFAULT_MAX_MSG;
  c->max_inbound = 64;
  c->max_outbound = 16;
  c->target_outbound = 8;
  c->max_pending = 32;
  c->handshake_timeout_ms = 5000;
  c->idle_timeout_ms = 30000;
  c->ping_interval_ms = 5000;
  c->pex_interval_ms = 2000;
  c->reconnect_min_ms = 250;
  c->reconnect_max_ms = 30000;
  c->ban_ms = 10 * 60 * 1000;
  c->ban_strikes = 3;
  c->ban_ip = 1;
  c->rate_msgs = 20000;
  c->rate_bytes = 1ull << 30;
  c->gossip_ttl = 16;
  c->gossip_fanout = 16;
  c->seen_cap = 65536;
  c->seen_ttl_ms = 10 * 60 * 1000;
  c->request_timeout_ms = 10000;
}

static void rng_default(void *ud, uint8_t *out, size_t n) {
  (void)ud;
  randombytes_buf(out, n);
}

static int split_hostport(const char *addr, char *ip, size_t cap,
                          unsigned *port) {
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr) return PX_EADDR;
  const char *h = addr, *he = colon;
  if (*h == '[') {
    if (he[-1] != ']') return PX_EADDR;
    h++;
    he--;
  }
  if (he <= h || (size_t)(he - h) >= cap) return PX_EADDR;
  uint64_t p;
  if (px_parse_u64(colon + 1, &p) || p == 0 || p > 65535) return PX_EADDR;
  memcpy(ip, h, (size_t)(he - h));
  ip[he - h] = 0;
  if (port) *port = (unsigned)p;
  return 0;
}

int px_p2p_new(const px_p2p_config_t *cfg, px_p2p_t **out) {
  *out = NULL;
  if (!cfg->max_msg || cfg->max_msg > (1u << 30) || !cfg->seen_cap ||
      !cfg->network[0] || cfg->ban_strikes == 0)
    return PX_EINVAL;
  if (cfg->listen[0]) {
    char ip[PX_ADDR_MAX];
    if (split_hostport(cfg->listen, ip, sizeof ip, NULL)) return PX_EADDR;
  }
  px_p2p_t *p = px_calloc(1, sizeof *p);
  if (!p) return PX_ENOMEM;
  p->cfg = *cfg;
  if (!p->cfg.rng) p->cfg.rng = rng_default;
  px_rng_seed(&p->rng, cfg->seed);
  p->next_conn_id = 1;
  px_queue_init(&p->fxq, sizeof(px_p2p_fx_t), 0);
  p->next_req_id = 1;
  p->known = px_calloc(MAX_KNOWN, sizeof *p->known);
  p->strikes = px_calloc(MAX_STRIKES_TRACKED, sizeof *p->strikes);
  p->seen = px_calloc(cfg->seen_cap, sizeof *p->seen);
  uint32_t nb = 1;
  while (nb < cfg->seen_cap)
    nb <<= 1;
  p->seen_nbuckets = nb;
  p->seen_buckets = px_calloc(nb, sizeof *p->seen_buckets);
  if (!p->known || !p->strikes || !p->seen || !p->seen_buckets) {
    px_p2p_free(p);
    return PX_ENOMEM;
  }
  for (uint32_t i = 0; i < nb; i++)
    p->seen_buckets[i] = -1;
  /* A fresh Noise static key per process; the HELLO signature binds it. */
  p->cfg.rng(p->cfg.rng_ud, p->static_sk, 32);
  if (px_x25519_public(p->static_pk, p->static_sk)) {
    px_p2p_free(p);
    return PX_ECRYPTO;
  }
  uint8_t bind[sizeof(BIND_PREFIX) - 1 + 32];
  memcpy(bind, BIND_PREFIX, sizeof(BIND_PREFIX) - 1);
  memcpy(bind + sizeof(BIND_PREFIX) - 1, p->static_pk, 32);
  px_sign(&p->cfg.identity, bind, sizeof bind, p->hello_sig);
  uint8_t seq[8];
  p->cfg.rng(p->cfg.rng_ud, seq, 8);
  p->gossip_seq = px_get_u64le(seq) >> 1;
  *out = p;
  return 0;
}

static void conn_destroy(conn_t *c) {
  if (!c) return;
  px_noise_hs_wipe(&c->hs);
  sodium_memzero(&c->tx, sizeof c->tx);
  sodium_memzero(&c->rx, sizeof c->rx);
  px_buf_release(&c->inbuf);
  px_buf_release(&c->app);
  px_free(c);
}

static void fx_release_item(void *fx) { px_p2p_fx_release(fx); }

void px_p2p_free(px_p2p_t *p) {
  if (!p) return;
  for (size_t i = 0; i < p->nconns; i++)
    conn_destroy(p->conns[i]);
  px_free(p->conns);
  px_free(p->known);
  px_free(p->strikes);
  px_free(p->reqs);
  px_free(p->seen);
  px_free(p->seen_buckets);
  px_queue_release(&p->fxq, fx_release_item);
  sodium_memzero(p->static_sk, sizeof p->static_sk);
  sodium_memzero(&p->cfg.identity, sizeof p->cfg.identity);
  px_free(p);
}

/* ---- effects ---------------------------------------------------------- */

static px_p2p_fx_t *fx_push(px_p2p_t *p, px_p2p_fx_kind_t kind, uint64_t conn) {
  px_p2p_fx_t *f = px_queue_push(&p->fxq);
  if (!f) return NULL;
  f->kind = kind;
  f->conn = conn;
  px_buf_init(&f->data, 0);
  return f;
}

int px_p2p_poll(px_p2p_t *p, px_p2p_fx_t *fx) {
  return px_queue_pop(&p->fxq, fx);
}

void px_p2p_fx_release(px_p2p_fx_t *fx) { px_buf_release(&fx->data); }

/* ---- lookup helpers ---------------------------------------------------- */

static conn_t *conn_find(px_p2p_t *p, uint64_t id) {
  for (size_t i = 0; i < p->nconns; i++)
    if (p->conns[i]->id == id) return p->conns[i];
  return NULL;
}

static conn_t *conn_by_pk(px_p2p_t *p, const uint8_t pk[32], conn_t *except) {
  for (size_t i = 0; i < p->nconns; i++) {
    conn_t *c = p->conns[i];
    if (c != except && c->state == CS_ESTABLISHED && memcmp(c->pk, pk, 32) == 0)
      return c;
  }
  return NULL;
}

static int known_find_addr(px_p2p_t *p, const char *addr) {
  for (size_t i = 0; i < p->nknown; i++)
    if (strcmp(p->known[i].addr, addr) == 0) return (int)i;
  return -1;
}

static int known_add(px_p2p_t *p, const char *addr, const uint8_t *pk,
                     int bootstrap) {
  int i = known_find_addr(p, addr);
  if (i < 0) {
    if (p->nknown >= MAX_KNOWN) {
      /* Replace the entry that failed most, never a bootstrap or a live one. */
      int worst = -1;
      for (size_t j = 0; j < p->nknown; j++) {
        known_t *k = &p->known[j];
        if (k->bootstrap || k->conn) continue;
        if (worst < 0 || k->failures > p->known[worst].failures) worst = (int)j;
      }
      if (worst < 0) return -1;
      i = worst;
    } else {
      i = (int)p->nknown++;
    }
    known_t *k = &p->known[i];
    memset(k, 0, sizeof *k);
    snprintf(k->addr, sizeof k->addr, "%s", addr);
  }
  known_t *k = &p->known[i];
  if (bootstrap) k->bootstrap = 1;
  if (pk) {
    memcpy(k->pk, pk, 32);
    k->has_pk = 1;
    if (memcmp(pk, p->cfg.identity.pk, 32) == 0) k->is_self = 1;
  }
  if (p->cfg.listen[0] && strcmp(addr, p->cfg.listen) == 0) k->is_self = 1;
  return i;
}

/* ---- strikes and bans -------------------------------------------------- */

static strike_t *strike_find(px_p2p_t *p, const uint8_t *pk, const char *ip,
                             int create, uint64_t now) {
  for (size_t i = 0; i < p->nstrikes; i++) {
    strike_t *s = &p->strikes[i];
    if (pk && s->is_node && memcmp(s->pk, pk, 32) == 0) return s;
    if (!pk && ip && !s->is_node && strcmp(s->ip, ip) == 0) return s;
  }
  if (!create) return NULL;
  size_t slot = p->nstrikes;
  if (slot >= MAX_STRIKES_TRACKED) {
    /* Reuse the stalest entry that is not currently banned. */
    slot = SIZE_MAX;
    for (size_t i = 0; i < p->nstrikes; i++) {
      if (p->strikes[i].banned_until > now) continue;
      if (slot == SIZE_MAX ||
          p->strikes[i].last_strike_ms < p->strikes[slot].last_strike_ms)
        slot = i;
    }
    if (slot == SIZE_MAX) return NULL;
  } else {
    p->nstrikes++;
  }
  strike_t *s = &p->strikes[slot];
  memset(s, 0, sizeof *s);
  if (pk) {
    s->is_node = 1;
    memcpy(s->pk, pk, 32);
  } else {
    snprintf(s->ip, sizeof s->ip, "%s", ip);
  }
  return s;
}

int px_p2p_is_banned_ip(const px_p2p_t *p, const char *ip, uint64_t now) {
  strike_t *s = strike_find((px_p2p_t *)p, NULL, ip, 0, now);
  return s && s->banned_until > now;
}

int px_p2p_is_banned_node(const px_p2p_t *p, const uint8_t pk[32],
                          uint64_t now) {
  strike_t *s = strike_find((px_p2p_t *)p, pk, NULL, 0, now);
  return s && s->banned_until > now;
}

static void add_strike(px_p2p_t *p, conn_t *c, uint64_t now) {
  strike_t *s;
  if (c->authed)
    s = strike_find(p, c->pk, NULL, 1, now);
  else if (p->cfg.ban_ip)
    s = strike_find(p, NULL, c->ip, 1, now);
  else
    return;
  if (!s) return;
  if (s->last_strike_ms && now - s->last_strike_ms > p->cfg.ban_ms)
    s->strikes = 0; /* old strikes decay */
  s->strikes++;
  s->last_strike_ms = now;
  if (s->strikes >= p->cfg.ban_strikes && s->banned_until <= now) {
    s->banned_until = now + p->cfg.ban_ms;
    p->stats.bans++;
    char id[PX_NODE_ID_HEX_LEN];
    if (s->is_node) px_node_id_hex(s->pk, id);
    PX_LOGW(LOGMOD, "banned %s %.16s for %llu s after %u strikes",
            s->is_node ? "node" : "ip", s->is_node ? id : s->ip,
            (unsigned long long)(p->cfg.ban_ms / 1000), s->strikes);
  }
}

/* ---- closing ----------------------------------------------------------- */

static void peer_down(px_p2p_t *p, conn_t *c, int err) {
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_PEER_DOWN, c->id);
  if (f) {
    memcpy(f->node_pk, c->pk, 32);
    f->err = err;
  }
  /* Requests to this peer fail now rather than at their timeout. */
  for (size_t i = 0; i < p->nreqs;) {
    if (memcmp(p->reqs[i].pk, c->pk, 32) == 0 && !conn_by_pk(p, c->pk, c)) {
      px_p2p_fx_t *r = fx_push(p, PX_P2P_FX_RESPONSE, c->id);
      if (r) {
        r->req_id = p->reqs[i].id;
        r->err = PX_ECLOSED;
        memcpy(r->node_pk, c->pk, 32);
      }
      p->reqs[i] = p->reqs[--p->nreqs];
    } else {
      i++;
    }
  }
}

/* Drop a connection: emit CLOSE, log why, strike if it misbehaved. */
static void conn_drop(px_p2p_t *p, conn_t *c, int err, int strike, uint64_t now,
                      const char *why) {
  if (c->state == CS_CLOSING) return;
  char id[PX_NODE_ID_HEX_LEN] = "";
  if (c->authed) px_node_id_hex(c->pk, id);
  px_log_level_t lvl = strike ? PX_LOG_WARN : PX_LOG_INFO;
  if (err == PX_EDUP || err == PX_ECLOSED) lvl = PX_LOG_DEBUG;
  if (lvl <= px_log_get_level())
    px_log(lvl, LOGMOD, "dropping %s peer %s (%s%.16s): %s: %s",
           c->inbound ? "inbound" : "outbound", c->remote,
           id[0] ? "node " : "unauthenticated", id, px_err_name(err), why);
  if (-err >= 0 && -err < PX_ERR_COUNT) p->stats.drops_by_reason[-err]++;
  if (c->state == CS_HANDSHAKE || c->state == CS_DIALING)
    p->stats.handshakes_failed += c->state == CS_HANDSHAKE;
  if (c->state == CS_ESTABLISHED) peer_down(p, c, err);
  if (strike) add_strike(p, c, now);
  c->state = CS_CLOSING;
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_CLOSE, c->id);
  if (f) f->err = err;
}

/* ---- sending ----------------------------------------------------------- */

/* Frame one raw Noise message (handshake) with its u16 length. */
static int send_raw_frame(px_p2p_t *p, conn_t *c, const uint8_t *msg,
                          size_t n) {
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_SEND, c->id);
  if (!f) return PX_ENOMEM;
  uint8_t hdr[2];
  px_put_u16be(hdr, (uint16_t)n);
  int rc = px_buf_append(&f->data, hdr, 2);
  if (!rc) rc = px_buf_append(&f->data, msg, n);
  return rc;
}

/* Encrypt an application message (already u32-length-prefixed in plain)
 * into as many framed Noise transport messages as needed. */
/* Encrypt the plaintext stream head || body (an application message with
 * its u32 length) into framed Noise transport messages, without joining
 * the two first: a large payload is read once, by the cipher. */
static int send_plain2(px_p2p_t *p, conn_t *c, const uint8_t *head, size_t nh,
                       const uint8_t *body, size_t nb) {
  const size_t chunk = PX_NOISE_MAX_TRANSPORT_PAYLOAD;
  size_t n = nh + nb;
  size_t frames = (n + chunk - 1) / chunk;
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_SEND, c->id);
  if (!f) return PX_ENOMEM;
  int rc = px_buf_reserve(&f->data, n + frames * (2 + PX_NOISE_TAG_LEN));
  if (rc) return rc;
  for (size_t off = 0; off < n; off += chunk) {
    size_t m = PX_MIN(chunk, n - off);
    /* This frame's share of the head, then of the body. */
    size_t h = off < nh ? PX_MIN(nh - off, m) : 0;
    size_t boff = off + h - nh;
    uint8_t *dst = f->data.data + f->data.len;
    px_put_u16be(dst, (uint16_t)(m + PX_NOISE_TAG_LEN));
    rc = px_noise_encrypt2(&c->tx, h ? head + off : NULL, h,
                           m - h ? body + boff : NULL, m - h, dst + 2);
    if (rc) return rc;
    f->data.len += 2 + m + PX_NOISE_TAG_LEN;
  }
  c->bytes_out += n;
  c->msgs_out++;
  return 0;
}

static int send_plain(px_p2p_t *p, conn_t *c, const uint8_t *plain, size_t n) {
  return send_plain2(p, c, plain, n, NULL, 0);
}

/* Room for the u32 length and an encoded message: its payload plus the
 * fixed fields (under 64 bytes for every type with a payload), reserved at
 * once so a large payload is not copied through a chain of regrowths. */
static size_t msg_room(const px_p2p_t *p, const px_msg_t *m) {
  size_t pl = 0;
  switch (m->type) {
  case PX_MSG_GOSSIP:
    pl = m->u.gossip.payload_len;
    break;
  case PX_MSG_REQUEST:
    pl = m->u.request.payload_len;
    break;
  case PX_MSG_RESPONSE:
    pl = m->u.response.payload_len;
    break;
  case PX_MSG_DIRECT:
    pl = m->u.direct.payload_len;
    break;
  default:
    break;
  }
  return PX_MIN(4 + 64 + pl, p->cfg.max_msg + 4);
}

/* The payload of a message that has one; every such type ends with it. */
static const uint8_t *msg_payload(px_msg_t *m, size_t **len) {
  switch (m->type) {
  case PX_MSG_GOSSIP:
    *len = &m->u.gossip.payload_len;
    return m->u.gossip.payload;
  case PX_MSG_REQUEST:
    *len = &m->u.request.payload_len;
    return m->u.request.payload;
  case PX_MSG_RESPONSE:
    *len = &m->u.response.payload_len;
    return m->u.response.payload;
  case PX_MSG_DIRECT:
    *len = &m->u.direct.payload_len;
    return m->u.direct.payload;
  default:
    *len = NULL;
    return NULL;
  }
}

static void msg_set_payload(px_msg_t *m, const uint8_t *pl) {
  switch (m->type) {
  case PX_MSG_GOSSIP:
    m->u.gossip.payload = pl;
    break;
  case PX_MSG_REQUEST:
    m->u.request.payload = pl;
    break;
  case PX_MSG_RESPONSE:
    m->u.response.payload = pl;
    break;
  case PX_MSG_DIRECT:
    m->u.direct.payload = pl;
    break;
  default:
    break;
  }
}

static int send_msg(px_p2p_t *p, conn_t *c, const px_msg_t *m) {
  if (c->state != CS_ESTABLISHED) return PX_ESTATE;
  /* Large payloads are not copied into the encoding: encode the message
   * with an empty payload (its encoding ends with the payload's u32
   * length), patch that length, and encrypt head || payload. */
  px_msg_t hm = *m;
  size_t *plen;
  const uint8_t *pl = msg_payload(&hm, &plen);
  size_t n = plen ? *plen : 0;
  int split = plen && n >= 4096;
  if (split) {
    if (n > p->cfg.max_msg) return PX_ETOOBIG;
    *plen = 0;
    msg_set_payload(&hm, NULL);
  }
  px_buf_t b;
  px_buf_init(&b, p->cfg.max_msg + 4);
  uint8_t zero[4] = {0};
  int rc = px_buf_reserve(&b, split ? 4 + 64 : msg_room(p, m));
  if (!rc) rc = px_buf_append(&b, zero, 4);
  if (!rc) rc = px_msg_encode(&hm, &b);
  if (!rc && split && (b.len - 4 + n > p->cfg.max_msg || n > UINT32_MAX))
    rc = PX_ETOOBIG;
  if (!rc) {
    if (split) px_put_u32le(b.data + b.len - 4, (uint32_t)n);
    px_put_u32le(b.data, (uint32_t)(b.len - 4 + (split ? n : 0)));
    rc = split ? send_plain2(p, c, b.data, b.len, pl, n)
               : send_plain(p, c, b.data, b.len);
  }
  px_buf_release(&b);
  return rc;
}

/* ---- connections ------------------------------------------------------- */

static conn_t *conn_new(px_p2p_t *p, int inbound, const char *remote,
                        uint64_t now) {
  if (p->nconns == p->capconns) {
    size_t nc = p->capconns ? p->capconns * 2 : 16;
    conn_t **n = px_realloc(p->conns, nc * sizeof *n);
    if (!n) return NULL;
    p->conns = n;
    p->capconns = nc;
  }
  conn_t *c = px_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->id = p->next_conn_id++;
  c->inbound = inbound;
  c->known = -1;
  c->created_ms = c->last_rx_ms = now;
  snprintf(c->remote, sizeof c->remote, "%s", remote ? remote : "");
  if (remote && split_hostport(remote, c->ip, sizeof c->ip, NULL))
    snprintf(c->ip, sizeof c->ip, "%s", remote);
  px_buf_init(&c->inbuf, INBUF_CAP);
  px_buf_init(&c->app, p->cfg.max_msg + 4 + PX_NOISE_MAX_MSG);
  c->tok_msgs = (uint64_t)p->cfg.rate_msgs * 2000;
  c->tok_bytes = p->cfg.rate_bytes * 2;
  c->tok_ms = now;
  p->conns[p->nconns++] = c;
  p->stats.conns_total++;
  return c;
}

static void conn_remove(px_p2p_t *p, conn_t *c) {
  for (size_t i = 0; i < p->nconns; i++) {
    if (p->conns[i] == c) {
      p->conns[i] = p->conns[--p->nconns];
      break;
    }
  }
  if (c->known >= 0 && (size_t)c->known < p->nknown &&
      p->known[c->known].conn == c->id)
    p->known[c->known].conn = 0;
  conn_destroy(c);
}

static size_t count_state(px_p2p_t *p, int state, int inbound) {
  size_t n = 0;
  for (size_t i = 0; i < p->nconns; i++) {
    conn_t *c = p->conns[i];
    if (inbound >= 0 && c->inbound != inbound) continue;
    if (state < 0 ? (c->state != CS_CLOSING) : (c->state == state)) n++;
  }
  return n;
}

static int hs_start(px_p2p_t *p, conn_t *c, int initiator) {
  int rc = px_noise_hs_init(&c->hs, initiator, (const uint8_t *)PROLOGUE,
                            sizeof(PROLOGUE) - 1, p->static_sk, p->cfg.rng,
                            p->cfg.rng_ud);
  if (rc) return rc;
  c->state = CS_HANDSHAKE;
  if (initiator) {
    uint8_t msg[PX_NOISE_MSG1_OVERHEAD];
    size_t n;
    rc = px_noise_hs_write(&c->hs, NULL, 0, msg, sizeof msg, &n);
    if (!rc) rc = send_raw_frame(p, c, msg, n);
  }
  return rc;
}

int px_p2p_on_inbound(px_p2p_t *p, const char *remote, uint64_t now,
                      uint64_t *conn) {
  *conn = 0;
  char ip[PX_ADDR_MAX];
  if (split_hostport(remote, ip, sizeof ip, NULL))
    snprintf(ip, sizeof ip, "%s", remote);
  if (p->shutting_down) return PX_ESTATE;
  if (p->cfg.ban_ip && px_p2p_is_banned_ip(p, ip, now)) {
    PX_LOGD(LOGMOD, "refusing %s: banned", remote);
    p->stats.drops_by_reason[-PX_EBANNED]++;
    return PX_EBANNED;
  }
  if (count_state(p, CS_HANDSHAKE, -1) >= p->cfg.max_pending) {
    PX_LOGD(LOGMOD, "refusing %s: %u handshakes pending", remote,
            p->cfg.max_pending);
    p->stats.drops_by_reason[-PX_ELIMIT]++;
    return PX_ELIMIT;
  }
  conn_t *c = conn_new(p, 1, remote, now);
  if (!c) return PX_ENOMEM;
  int rc = hs_start(p, c, 0);
  if (rc) {
    conn_remove(p, c);
    return rc;
  }
  *conn = c->id;
  return 0;
}

void px_p2p_on_dialed(px_p2p_t *p, uint64_t id, const char *remote,
                      uint64_t now) {
  conn_t *c = conn_find(p, id);
  if (!c || c->state != CS_DIALING) return;
  if (remote && remote[0]) snprintf(c->remote, sizeof c->remote, "%s", remote);
  c->created_ms = c->last_rx_ms = now; /* handshake clock starts now */
  int rc = hs_start(p, c, 1);
  if (rc) conn_drop(p, c, rc, 0, now, "cannot start handshake");
}

static void known_backoff(px_p2p_t *p, int ki, uint64_t now) {
  if (ki < 0 || (size_t)ki >= p->nknown) return;
  known_t *k = &p->known[ki];
  k->failures++;
  uint64_t b = k->backoff_ms ? k->backoff_ms * 2 : p->cfg.reconnect_min_ms;
  if (b > p->cfg.reconnect_max_ms) b = p->cfg.reconnect_max_ms;
  k->backoff_ms = b;
  /* Jitter of up to a quarter spreads out reconnect storms. */
  k->next_dial_ms = now + b + px_rng_below(&p->rng, b / 4 + 1);
}

void px_p2p_on_dial_failed(px_p2p_t *p, uint64_t id, int err, uint64_t now) {
  conn_t *c = conn_find(p, id);
  if (!c) return;
  if (c->known >= 0 && (size_t)c->known < p->nknown)
    PX_LOGD(LOGMOD, "dial %s failed: %s", p->known[c->known].addr,
            px_strerror(err));
  known_backoff(p, c->known, now);
  conn_remove(p, c);
}

void px_p2p_on_closed(px_p2p_t *p, uint64_t id, int err, uint64_t now) {
  conn_t *c = conn_find(p, id);
  if (!c) return;
  if (c->state == CS_ESTABLISHED) {
    char hex[PX_NODE_ID_HEX_LEN];
    px_node_id_hex(c->pk, hex);
    PX_LOGI(LOGMOD, "peer %.16s (%s) disconnected: %s", hex, c->remote,
            px_strerror(err ? err : PX_ECLOSED));
    peer_down(p, c, err ? err : PX_ECLOSED);
  }
  if (!c->inbound) known_backoff(p, c->known, now);
  conn_remove(p, c);
}

/* ---- handshake --------------------------------------------------------- */

static int hello_make(px_p2p_t *p, uint8_t *out, size_t cap, size_t *n) {
  px_msg_t m;
  memset(&m, 0, sizeof m);
  m.type = PX_MSG_HELLO;
  m.u.hello.proto = PX_P2P_PROTO;
  memcpy(m.u.hello.node_pk, p->cfg.identity.pk, 32);
  memcpy(m.u.hello.sig, p->hello_sig, 64);
  snprintf(m.u.hello.network, sizeof m.u.hello.network, "%s", p->cfg.network);
  snprintf(m.u.hello.listen, sizeof m.u.hello.listen, "%s", p->cfg.listen);
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

/* Check the peer's HELLO; returns 0 and fills the conn's identity. */
static int hello_check(px_p2p_t *p, conn_t *c, const uint8_t *pl, size_t n,
                       const char **why) {
  px_msg_t m;
  int rc = px_msg_decode(pl, n, 0, &m);
  if (rc || m.type != PX_MSG_HELLO) {
    *why = "handshake payload is not a valid HELLO";
    return rc ? rc : PX_EPROTO;
  }
  if (m.u.hello.proto != PX_P2P_PROTO) {
    *why = "unsupported protocol version";
    return PX_EVERSION;
  }
  if (strcmp(m.u.hello.network, p->cfg.network) != 0) {
    *why = "peer is on another network";
    return PX_EPROTO;
  }
  uint8_t rs[32];
  px_noise_hs_remote_static(&c->hs, rs);
  uint8_t bind[sizeof(BIND_PREFIX) - 1 + 32];
  memcpy(bind, BIND_PREFIX, sizeof(BIND_PREFIX) - 1);
  memcpy(bind + sizeof(BIND_PREFIX) - 1, rs, 32);
  if (px_verify(m.u.hello.node_pk, bind, sizeof bind, m.u.hello.sig)) {
    *why = "identity binding signature is invalid";
    return PX_EBADSIG;
  }
  memcpy(c->pk, m.u.hello.node_pk, 32);
  c->authed = 1;
  snprintf(c->peer_listen, sizeof c->peer_listen, "%s", m.u.hello.listen);
  if (c->peer_listen[0]) {
    char ip[PX_ADDR_MAX];
    if (split_hostport(c->peer_listen, ip, sizeof ip, NULL)) {
      *why = "advertised listen address is malformed";
      return PX_EADDR;
    }
  }
  return 0;
}

/* Which of two connections to one peer survives: the one dialed by the node
 * with the smaller id (both ends compute the same answer), else the older. */
static int keep_new_over_old(px_p2p_t *p, conn_t *nw, conn_t *old) {
  const uint8_t *me = p->cfg.identity.pk;
  int me_smaller = memcmp(me, nw->pk, 32) < 0;
  int nw_ok = nw->inbound ? !me_smaller : me_smaller;
  int old_ok = old->inbound ? !me_smaller : me_smaller;
  if (nw_ok != old_ok) return nw_ok;
  return 0;
}

static void hs_complete(px_p2p_t *p, conn_t *c, uint64_t now) {
  char hex[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(c->pk, hex);
  if (memcmp(c->pk, p->cfg.identity.pk, 32) == 0) {
    if (c->known >= 0) p->known[c->known].is_self = 1;
    conn_drop(p, c, PX_ESELF, 0, now, "connected to ourselves");
    return;
  }
  if (px_p2p_is_banned_node(p, c->pk, now)) {
    conn_drop(p, c, PX_EBANNED, 0, now, "node is banned");
    return;
  }
  if (c->known >= 0) {
    known_t *k = &p->known[c->known];
    if (k->has_pk && memcmp(k->pk, c->pk, 32) != 0)
      PX_LOGI(LOGMOD, "%s is now node %.16s", k->addr, hex);
  }
  conn_t *old = conn_by_pk(p, c->pk, c);
  if (old) {
    if (keep_new_over_old(p, c, old)) {
      conn_drop(p, old, PX_EDUP, 0, now, "duplicate connection");
    } else {
      conn_drop(p, c, PX_EDUP, 0, now, "duplicate connection");
      if (c->known >= 0) {
        p->known[c->known].failures = 0;
        p->known[c->known].backoff_ms = 0;
      }
      return;
    }
  }
  size_t lim = c->inbound ? p->cfg.max_inbound : p->cfg.max_outbound;
  if (count_state(p, CS_ESTABLISHED, c->inbound) >= lim) {
    conn_drop(p, c, PX_ELIMIT, 0, now, "peer limit reached");
    return;
  }
  c->state = CS_ESTABLISHED;
  c->established_ms = c->last_rx_ms = c->last_ping_ms = now;
  p->stats.handshakes_ok++;
  /* Record the peer in the address book under its advertised address. */
  int ki = -1;
  if (c->peer_listen[0]) ki = known_add(p, c->peer_listen, c->pk, 0);
  if (!c->inbound && c->known >= 0) {
    known_t *k = &p->known[c->known];
    memcpy(k->pk, c->pk, 32);
    k->has_pk = 1;
    if (ki < 0) ki = c->known;
  }
  if (ki >= 0) {
    known_t *k = &p->known[ki];
    k->conn = c->id;
    k->failures = 0;
    k->backoff_ms = 0;
    k->last_seen_ms = now;
    c->known = ki;
  }
  PX_LOGI(LOGMOD, "peer %.16s connected (%s %s)", hex,
          c->inbound ? "inbound from" : "outbound to", c->remote);
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_PEER_UP, c->id);
  if (f) {
    memcpy(f->node_pk, c->pk, 32);
    snprintf(f->addr, sizeof f->addr, "%s", c->remote);
    f->inbound = c->inbound;
  }
  /* Ask the newcomer whom it knows. */
  px_msg_t m = {.type = PX_MSG_PEX_REQ};
  send_msg(p, c, &m);
}

static void hs_frame(px_p2p_t *p, conn_t *c, const uint8_t *msg, size_t n,
                     uint64_t now) {
  /* Any Noise message's payload fits: an oversize one is then refused for
   * what it is (a payload where none belongs, or not a HELLO), not for the
   * size of a buffer of ours. */
  uint8_t *payload = p->hs_scratch;
  uint8_t out[1024];
  size_t plen = 0, olen = 0;
  const char *why = "bad handshake message";
  int rc = px_noise_hs_read(&c->hs, msg, n, payload, PX_NOISE_MAX_MSG, &plen);
  if (rc) {
    if (rc == PX_ESTATE) why = "handshake message out of turn";
    goto fail;
  }
  if (!c->inbound) {
    /* We read message 2: check the responder, then send message 3. */
    if ((rc = hello_check(p, c, payload, plen, &why))) goto fail;
    size_t hl;
    uint8_t hello[512];
    if ((rc = hello_make(p, hello, sizeof hello, &hl))) goto fail;
    if ((rc = px_noise_hs_write(&c->hs, hello, hl, out, sizeof out, &olen)))
      goto fail;
    if ((rc = send_raw_frame(p, c, out, olen))) goto fail;
  } else if (px_noise_hs_done(&c->hs)) {
    /* We read message 3. */
    if ((rc = hello_check(p, c, payload, plen, &why))) goto fail;
  } else {
    /* We read message 1 (its payload must be empty); send message 2. */
    if (plen != 0) {
      rc = PX_EPROTO;
      why = "unexpected payload in handshake message 1";
      goto fail;
    }
    size_t hl;
    uint8_t hello[512];
    if ((rc = hello_make(p, hello, sizeof hello, &hl))) goto fail;
    if ((rc = px_noise_hs_write(&c->hs, hello, hl, out, sizeof out, &olen)))
      goto fail;
    if ((rc = send_raw_frame(p, c, out, olen))) goto fail;
    return;
  }
  if ((rc = px_noise_hs_split(&c->hs, &c->tx, &c->rx))) goto fail;
  hs_complete(p, c, now);
  return;
fail:
  if (rc == PX_EAUTH) why = "handshake message failed authentication";
  conn_drop(p, c, rc == PX_EAUTH ? PX_EHANDSHAKE : rc, 1, now, why);
}

/* ---- application messages --------------------------------------------- */

static int rate_ok(px_p2p_t *p, conn_t *c, size_t bytes, uint64_t now) {
  if (now > c->tok_ms) {
    uint64_t dt = now - c->tok_ms;
    uint64_t cap_m = (uint64_t)p->cfg.rate_msgs * 2000;
    uint64_t cap_b = p->cfg.rate_bytes * 2;
    c->tok_msgs = PX_MIN(cap_m, c->tok_msgs + dt * p->cfg.rate_msgs);
    c->tok_bytes = PX_MIN(cap_b, c->tok_bytes + dt * p->cfg.rate_bytes / 1000);
    c->tok_ms = now;
  }
  if (c->tok_msgs < 1000 || c->tok_bytes < bytes) return 0;
  c->tok_msgs -= 1000;
  c->tok_bytes -= bytes;
  return 1;
}

static uint32_t seen_bucket(px_p2p_t *p, const uint8_t id[32]) {
  return px_get_u32le(id) & (p->seen_nbuckets - 1);
}

/* 1 if id was seen (and not expired); else records it and returns 0. */
static int seen_check_add(px_p2p_t *p, const uint8_t id[32], uint64_t now) {
  uint32_t b = seen_bucket(p, id);
  for (int32_t i = p->seen_buckets[b]; i >= 0; i = p->seen[i].next) {
    if (memcmp(p->seen[i].id, id, 32) == 0) {
      if (now - p->seen[i].t <= p->cfg.seen_ttl_ms) return 1;
      p->seen[i].t = now; /* expired: count as new, refresh */
      return 0;
    }
  }
  uint32_t slot = p->seen_pos;
  p->seen_pos = (p->seen_pos + 1) % p->cfg.seen_cap;
  seen_t *s = &p->seen[slot];
  if (s->used) { /* evict the oldest entry from its chain */
    uint32_t ob = seen_bucket(p, s->id);
    int32_t *link = &p->seen_buckets[ob];
    while (*link >= 0 && *link != (int32_t)slot)
      link = &p->seen[*link].next;
    if (*link == (int32_t)slot) *link = s->next;
  }
  memcpy(s->id, id, 32);
  s->t = now;
  s->used = 1;
  s->next = p->seen_buckets[b];
  p->seen_buckets[b] = (int32_t)slot;
  return 0;
}

/* Send g with the given ttl to up to `fanout` established peers other than
 * `from` and the message's origin. */
static void gossip_send(px_p2p_t *p, const px_msg_gossip_t *g, uint8_t ttl,
                        const conn_t *from, size_t fanout) {
  px_msg_t m = {.type = PX_MSG_GOSSIP};
  m.u.gossip = *g;
  m.u.gossip.ttl = ttl;
  /* Encode once, encrypt per peer. */
  px_buf_t b;
  px_buf_init(&b, p->cfg.max_msg + 4);
  uint8_t zero[4] = {0};
  int rc = px_buf_reserve(&b, msg_room(p, &m));
  if (!rc) rc = px_buf_append(&b, zero, 4);
  if (!rc) rc = px_msg_encode(&m, &b);
  if (rc) {
    px_buf_release(&b);
    return;
  }
  px_put_u32le(b.data, (uint32_t)(b.len - 4));
  /* Candidates: every established peer but the sender and the origin. */
  size_t cand[256], nc = 0;
  for (size_t i = 0; i < p->nconns && nc < PX_ARRAY_LEN(cand); i++) {
    conn_t *c = p->conns[i];
    if (c == from || c->state != CS_ESTABLISHED) continue;
    if (memcmp(c->pk, g->origin, 32) == 0) continue;
    cand[nc++] = i;
  }
  /* Partial Fisher-Yates: the first `fanout` are a uniform random subset. */
  size_t k = PX_MIN(nc, fanout);
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)px_rng_below(&p->rng, nc - i);
    size_t t = cand[i];
    cand[i] = cand[j];
    cand[j] = t;
    if (send_plain(p, p->conns[cand[i]], b.data, b.len) == 0)
      p->stats.gossip_forwarded++;
  }
  px_buf_release(&b);
}

static void handle_msg(px_p2p_t *p, conn_t *c, const px_msg_t *m,
                       uint64_t now) {
  switch (m->type) {
  case PX_MSG_PING: {
    px_msg_t r = {.type = PX_MSG_PONG};
    r.u.ping.nonce = m->u.ping.nonce;
    send_msg(p, c, &r);
    break;
  }
  case PX_MSG_PONG:
    if (m->u.ping.nonce == c->ping_nonce && c->ping_sent_ms)
      c->rtt_ms = now - c->ping_sent_ms;
    break;
  case PX_MSG_PEX_REQ: {
    px_msg_t *r = px_calloc(1, sizeof *r);
    if (!r) break;
    r->type = PX_MSG_PEX_RESP;
    /* Share peers we are connected to (their addresses are proven live). */
    for (size_t i = 0; i < p->nknown && r->u.pex.n < PX_PEX_MAX; i++) {
      known_t *k = &p->known[i];
      if (!k->has_pk || !k->conn || k->is_self) continue;
      if (memcmp(k->pk, c->pk, 32) == 0) continue;
      px_peer_addr_t *pa = &r->u.pex.peers[r->u.pex.n++];
      memcpy(pa->node_pk, k->pk, 32);
      snprintf(pa->addr, sizeof pa->addr, "%s", k->addr);
    }
    send_msg(p, c, r);
    px_free(r);
    break;
  }
  case PX_MSG_PEX_RESP:
    for (uint32_t i = 0; i < m->u.pex.n; i++) {
      const px_peer_addr_t *pa = &m->u.pex.peers[i];
      char ip[PX_ADDR_MAX];
      if (split_hostport(pa->addr, ip, sizeof ip, NULL)) continue;
      if (memcmp(pa->node_pk, p->cfg.identity.pk, 32) == 0) continue;
      if (known_find_addr(p, pa->addr) < 0)
        known_add(p, pa->addr, pa->node_pk, 0);
    }
    break;
  case PX_MSG_GOSSIP: {
    uint8_t id[32];
    px_msg_gossip_id(&m->u.gossip, id);
    if (seen_check_add(p, id, now)) {
      p->stats.gossip_duplicates++;
      break;
    }
    p->stats.gossip_delivered++;
    px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_GOSSIP, c->id);
    if (f) {
      memcpy(f->node_pk, c->pk, 32);
      memcpy(f->origin, m->u.gossip.origin, 32);
      memcpy(f->id, id, 32);
      f->topic = m->u.gossip.topic;
      px_buf_init(&f->data, 0);
      px_buf_append(&f->data, m->u.gossip.payload, m->u.gossip.payload_len);
    }
    if (m->u.gossip.ttl > 0)
      gossip_send(p, &m->u.gossip, (uint8_t)(m->u.gossip.ttl - 1), c,
                  p->cfg.gossip_fanout);
    break;
  }
  case PX_MSG_REQUEST: {
    p->stats.requests_in++;
    px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_REQUEST, c->id);
    if (f) {
      memcpy(f->node_pk, c->pk, 32);
      f->req_id = m->u.request.id;
      f->method = m->u.request.method;
      px_buf_append(&f->data, m->u.request.payload, m->u.request.payload_len);
    }
    break;
  }
  case PX_MSG_RESPONSE:
    for (size_t i = 0; i < p->nreqs; i++) {
      pending_req_t *r = &p->reqs[i];
      if (r->id != m->u.response.id || memcmp(r->pk, c->pk, 32) != 0) continue;
      p->stats.responses_in++;
      px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_RESPONSE, c->id);
      if (f) {
        memcpy(f->node_pk, c->pk, 32);
        f->req_id = r->id;
        f->err = m->u.response.status;
        px_buf_append(&f->data, m->u.response.payload,
                      m->u.response.payload_len);
      }
      p->reqs[i] = p->reqs[--p->nreqs];
      break;
    }
    /* A response nobody waits for (late, after a timeout) is ignored. */
    break;
  case PX_MSG_DIRECT: {
    p->stats.direct_in++;
    px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_DIRECT, c->id);
    if (f) {
      memcpy(f->node_pk, c->pk, 32);
      f->topic = m->u.direct.topic;
      px_buf_append(&f->data, m->u.direct.payload, m->u.direct.payload_len);
    }
    break;
  }
  case PX_MSG_BYE:
    conn_drop(p, c, PX_ECLOSED, 0, now,
              m->u.bye.reason[0] ? m->u.bye.reason : "peer said bye");
    break;
  case PX_MSG_HELLO:
  default:
    conn_drop(p, c, PX_EPROTO, 1, now, "unexpected message after handshake");
    break;
  }
}

static void app_frame(px_p2p_t *p, conn_t *c, const uint8_t *ct, size_t n,
                      uint64_t now) {
  if (n < PX_NOISE_TAG_LEN) {
    conn_drop(p, c, PX_EPROTO, 1, now, "frame shorter than its tag");
    return;
  }
  size_t pl = n - PX_NOISE_TAG_LEN;
  int rc = px_buf_reserve(&c->app, pl);
  if (rc) {
    conn_drop(p, c, PX_ETOOBIG, 1, now, "message exceeds the size limit");
    return;
  }
  rc = px_noise_decrypt(&c->rx, NULL, 0, ct, n, c->app.data + c->app.len);
  if (rc) {
    conn_drop(p, c, PX_EAUTH, 1, now, "frame failed authentication");
    return;
  }
  c->app.len += pl;
  size_t off = 0;
  while (c->state == CS_ESTABLISHED && c->app.len - off >= 4) {
    uint32_t mlen = px_get_u32le(c->app.data + off);
    if (mlen > p->cfg.max_msg) {
      char why[96];
      snprintf(why, sizeof why, "frame announces %u bytes (limit %zu)", mlen,
               p->cfg.max_msg);
      conn_drop(p, c, PX_ETOOBIG, 1, now, why);
      return;
    }
    if (c->app.len - off - 4 < mlen) break;
    const uint8_t *body = c->app.data + off + 4;
    off += 4 + (size_t)mlen;
    c->msgs_in++;
    c->bytes_in += mlen;
    if (!rate_ok(p, c, mlen, now)) {
      conn_drop(p, c, PX_ERATE, 1, now, "rate limit exceeded");
      return;
    }
    px_msg_t m;
    rc = px_msg_decode(body, mlen, p->cfg.max_msg, &m);
    if (rc) {
      char why[96];
      snprintf(why, sizeof why, "undecodable message: %s", px_strerror(rc));
      conn_drop(p, c, PX_EDECODE, 1, now, why);
      return;
    }
    handle_msg(p, c, &m, now);
  }
  if (off) px_buf_consume(&c->app, off);
}

static void on_frame(px_p2p_t *p, conn_t *c, const uint8_t *fr, size_t flen,
                     uint64_t now) {
  if (c->state == CS_HANDSHAKE)
    hs_frame(p, c, fr, flen, now);
  else
    app_frame(p, c, fr, flen, now);
}

/* Frames that arrive whole are handled where they lie, in the runtime's
 * buffer; only a frame split across reads is gathered in inbuf (so inbuf
 * never holds more than one frame).  On the bulk path that saves a copy and
 * a memmove of every byte received. */
void px_p2p_on_data(px_p2p_t *p, uint64_t id, const uint8_t *data, size_t n,
                    uint64_t now) {
  conn_t *c = conn_find(p, id);
  if (!c || c->state == CS_CLOSING || c->state == CS_DIALING) return;
  c->last_rx_ms = now;
  while (n > 0 && c->state != CS_CLOSING) {
    if (c->inbuf.len > 0 || n < 2) {
      /* Complete the gathered frame: its length first, then its body. */
      size_t want = 2;
      if (c->inbuf.len >= 2) want += px_get_u16be(c->inbuf.data);
      size_t take = PX_MIN(want - c->inbuf.len, n);
      if (px_buf_append(&c->inbuf, data, take)) {
        conn_drop(p, c, PX_ENOMEM, 0, now, "out of memory");
        return;
      }
      data += take;
      n -= take;
      if (c->inbuf.len < 2) continue;
      size_t flen = px_get_u16be(c->inbuf.data);
      if (flen == 0) {
        conn_drop(p, c, PX_EPROTO, 1, now, "empty frame");
        return;
      }
      if (c->inbuf.len < 2 + flen) continue;
      on_frame(p, c, c->inbuf.data + 2, flen, now);
      px_buf_reset(&c->inbuf);
      continue;
    }
    size_t flen = px_get_u16be(data);
    if (flen == 0) {
      conn_drop(p, c, PX_EPROTO, 1, now, "empty frame");
      return;
    }
    if (n - 2 < flen) { /* the rest of this frame comes in a later read */
      if (px_buf_append(&c->inbuf, data, n))
        conn_drop(p, c, PX_ENOMEM, 0, now, "out of memory");
      return;
    }
    on_frame(p, c, data + 2, flen, now);
    data += 2 + flen;
    n -= 2 + flen;
  }
}

/* ---- timers ------------------------------------------------------------ */

static void dial(px_p2p_t *p, int ki, uint64_t now) {
  known_t *k = &p->known[ki];
  conn_t *c = conn_new(p, 0, k->addr, now);
  if (!c) return;
  c->state = CS_DIALING;
  c->known = ki;
  k->conn = c->id;
  px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_DIAL, c->id);
  if (f) snprintf(f->addr, sizeof f->addr, "%s", k->addr);
  /* Until told otherwise, assume it fails: the next try waits. */
  k->next_dial_ms = now + p->cfg.reconnect_min_ms;
}

static void maybe_dial(px_p2p_t *p, uint64_t now) {
  size_t outbound = 0;
  for (size_t i = 0; i < p->nconns; i++)
    if (!p->conns[i]->inbound && p->conns[i]->state != CS_CLOSING) outbound++;
  if (outbound >= p->cfg.target_outbound || outbound >= p->cfg.max_outbound)
    return;
  size_t want = PX_MIN(p->cfg.target_outbound, p->cfg.max_outbound) - outbound;
  for (size_t i = 0; i < p->nknown && want > 0; i++) {
    known_t *k = &p->known[i];
    if (k->is_self || k->conn || k->next_dial_ms > now) continue;
    if (k->has_pk &&
        (conn_by_pk(p, k->pk, NULL) || px_p2p_is_banned_node(p, k->pk, now)))
      continue;
    dial(p, (int)i, now);
    want--;
  }
}

void px_p2p_tick(px_p2p_t *p, uint64_t now) {
  for (size_t i = 0; i < p->nconns; i++) {
    conn_t *c = p->conns[i];
    if (c->state == CS_HANDSHAKE &&
        now - c->created_ms > p->cfg.handshake_timeout_ms) {
      conn_drop(p, c, PX_ETIMEOUT, 1, now, "handshake timed out");
    } else if (c->state == CS_DIALING &&
               now - c->created_ms > p->cfg.handshake_timeout_ms) {
      conn_drop(p, c, PX_ETIMEOUT, 0, now, "dial timed out");
    } else if (c->state == CS_ESTABLISHED) {
      if (now - c->last_rx_ms > p->cfg.idle_timeout_ms) {
        conn_drop(p, c, PX_ETIMEOUT, 0, now, "peer silent too long");
      } else if (now - c->last_ping_ms >= p->cfg.ping_interval_ms) {
        px_msg_t m = {.type = PX_MSG_PING};
        c->ping_nonce = px_rng_next(&p->rng);
        m.u.ping.nonce = c->ping_nonce;
        c->ping_sent_ms = c->last_ping_ms = now;
        send_msg(p, c, &m);
      }
    }
  }
  for (size_t i = 0; i < p->nreqs;) {
    if (p->reqs[i].deadline <= now) {
      p->stats.request_timeouts++;
      px_p2p_fx_t *f = fx_push(p, PX_P2P_FX_RESPONSE, 0);
      if (f) {
        f->req_id = p->reqs[i].id;
        f->err = PX_ETIMEOUT;
        memcpy(f->node_pk, p->reqs[i].pk, 32);
      }
      p->reqs[i] = p->reqs[--p->nreqs];
    } else {
      i++;
    }
  }
  if (p->shutting_down) return;
  if (now - p->last_pex_ms >= p->cfg.pex_interval_ms) {
    p->last_pex_ms = now;
    px_msg_t m = {.type = PX_MSG_PEX_REQ};
    for (size_t i = 0; i < p->nconns; i++)
      if (p->conns[i]->state == CS_ESTABLISHED) send_msg(p, p->conns[i], &m);
  }
  maybe_dial(p, now);
}

uint64_t px_p2p_next_deadline(const px_p2p_t *p, uint64_t now) {
  (void)p;
  /* The timers above are coarse (hundreds of ms at the finest); a 50 ms
   * tick keeps every one of them within 50 ms of its deadline. */
  return now + 50;
}

/* ---- application commands --------------------------------------------- */

int px_p2p_add_bootstrap(px_p2p_t *p, const char *addr) {
  char ip[PX_ADDR_MAX];
  if (!addr || strlen(addr) >= PX_ADDR_MAX ||
      split_hostport(addr, ip, sizeof ip, NULL))
    return PX_EADDR;
  return known_add(p, addr, NULL, 1) < 0 ? PX_ELIMIT : 0;
}

int px_p2p_broadcast(px_p2p_t *p, uint16_t topic, const void *payload, size_t n,
                     uint64_t now, uint8_t id_out[32]) {
  if (n > p->cfg.max_msg - 64) return PX_ETOOBIG;
  px_msg_gossip_t g;
  memset(&g, 0, sizeof g);
  g.topic = topic;
  g.ttl = p->cfg.gossip_ttl;
  memcpy(g.origin, p->cfg.identity.pk, 32);
  g.seq = p->gossip_seq++;
  g.payload = payload;
  g.payload_len = n;
  uint8_t id[32];
  px_msg_gossip_id(&g, id);
  seen_check_add(p, id, now);
  if (id_out) memcpy(id_out, id, 32);
  /* The origin sends to every peer; fan-out limits the relays. */
  gossip_send(p, &g, g.ttl, NULL, SIZE_MAX);
  return 0;
}

int px_p2p_request(px_p2p_t *p, const uint8_t pk[32], uint16_t method,
                   const void *payload, size_t n, uint64_t timeout_ms,
                   uint64_t now, uint64_t *req_id) {
  conn_t *c = conn_by_pk(p, pk, NULL);
  if (!c) return PX_ENOTFOUND;
  if (p->nreqs == p->capreqs) {
    size_t nc = p->capreqs ? p->capreqs * 2 : 16;
    pending_req_t *r = px_realloc(p->reqs, nc * sizeof *r);
    if (!r) return PX_ENOMEM;
    p->reqs = r;
    p->capreqs = nc;
  }
  px_msg_t m = {.type = PX_MSG_REQUEST};
  m.u.request.id = p->next_req_id++;
  m.u.request.method = method;
  m.u.request.payload = payload;
  m.u.request.payload_len = n;
  int rc = send_msg(p, c, &m);
  if (rc) return rc;
  pending_req_t *r = &p->reqs[p->nreqs++];
  r->id = m.u.request.id;
  memcpy(r->pk, pk, 32);
  r->deadline = now + (timeout_ms ? timeout_ms : p->cfg.request_timeout_ms);
  p->stats.requests_out++;
  if (req_id) *req_id = r->id;
  return 0;
}

int px_p2p_send(px_p2p_t *p, const uint8_t pk[32], uint16_t topic,
                const void *payload, size_t n) {
  conn_t *c = conn_by_pk(p, pk, NULL);
  if (!c) return PX_ENOTFOUND;
  px_msg_t m = {.type = PX_MSG_DIRECT};
  m.u.direct.topic = topic;
  m.u.direct.payload = payload;
  m.u.direct.payload_len = n;
  int rc = send_msg(p, c, &m);
  if (!rc) p->stats.direct_out++;
  return rc;
}

int px_p2p_respond(px_p2p_t *p, const uint8_t pk[32], uint64_t req_id,
                   int status, const void *payload, size_t n) {
  conn_t *c = conn_by_pk(p, pk, NULL);
  if (!c) return PX_ENOTFOUND;
  px_msg_t m = {.type = PX_MSG_RESPONSE};
  m.u.response.id = req_id;
  m.u.response.status = status;
  m.u.response.payload = payload;
  m.u.response.payload_len = n;
  return send_msg(p, c, &m);
}

void px_p2p_shutdown(px_p2p_t *p, uint64_t now) {
  p->shutting_down = 1;
  for (size_t i = 0; i < p->nconns; i++) {
    conn_t *c = p->conns[i];
    if (c->state == CS_ESTABLISHED) {
      px_msg_t m = {.type = PX_MSG_BYE};
      snprintf(m.u.bye.reason, sizeof m.u.bye.reason, "node shutting down");
      send_msg(p, c, &m);
    }
    conn_drop(p, c, PX_ECLOSED, 0, now, "shutting down");
  }
}

/* ---- introspection ----------------------------------------------------- */

size_t px_p2p_peer_count(const px_p2p_t *p) {
  return count_state((px_p2p_t *)p, CS_ESTABLISHED, -1);
}

size_t px_p2p_peers(const px_p2p_t *p, px_p2p_peer_info_t *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < p->nconns && n < cap; i++) {
    const conn_t *c = p->conns[i];
    if (c->state != CS_ESTABLISHED) continue;
    px_p2p_peer_info_t *o = &out[n++];
    memset(o, 0, sizeof *o);
    memcpy(o->node_pk, c->pk, 32);
    snprintf(o->addr, sizeof o->addr, "%s", c->peer_listen);
    snprintf(o->remote, sizeof o->remote, "%s", c->remote);
    o->inbound = c->inbound;
    o->conn = c->id;
    o->connected_ms = c->established_ms;
    o->msgs_in = c->msgs_in;
    o->msgs_out = c->msgs_out;
    o->bytes_in = c->bytes_in;
    o->bytes_out = c->bytes_out;
    o->rtt_ms = c->rtt_ms;
  }
  return n;
}

void px_p2p_get_stats(const px_p2p_t *p, px_p2p_stats_t *st) {
  *st = p->stats;
  st->known_peers = p->nknown;
}

const uint8_t *px_p2p_node_pk(const px_p2p_t *p) { return p->cfg.identity.pk; }
