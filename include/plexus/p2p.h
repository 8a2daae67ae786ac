/*
 * plexus/p2p.h — the peer-to-peer protocol core (sans-I/O).
 *
 * px_p2p_t is a state machine.  It never touches a socket, a clock or a file:
 * the runtime (node/) or a test feeds it events — a connection opened, bytes
 * received, a connection closed, time passing — and then drains the effects
 * it produced with px_p2p_poll(): bytes to send on a connection, a
 * connection to close, an address to dial, a gossip message or a request to
 * hand to the application.  The same code runs over real TCP (libuv) and in
 * tests over in-memory pipes.
 *
 * What the core does (docs/protocol.md):
 *  - every connection runs Noise_XX_25519_ChaChaPoly_SHA256; handshake
 *    messages 2 and 3 carry a HELLO binding the Noise static key to the
 *    node's Ed25519 identity; a peer on another network, a bad binding, a
 *    connection to ourselves or a second connection to a peer is refused;
 *  - on the wire, each Noise message is preceded by a u16 big-endian length
 *    (so no Noise message exceeds 65,535 bytes); application messages up to
 *    max_msg bytes are a u32 little-endian length plus the encoded message,
 *    carried across as many Noise transport messages as they need;
 *  - peer management: bootstrap addresses, peer exchange (PEX), inbound,
 *    outbound and pending-handshake limits, reconnection with exponential
 *    backoff, keepalive pings, handshake and idle timeouts, per-peer token
 *    bucket rate limits, and a ban list (by node id, and by IP address for
 *    failures before authentication unless ban_ip is off);
 *  - gossip: flooding with a seen-cache keyed by message id so each message
 *    is delivered to the application once, with a TTL and a fan-out limit;
 *  - request/response between two peers with ids and timeouts.
 *
 * Threading: a px_p2p_t is used by one thread at a time.
 */
#ifndef PLEXUS_P2P_H
#define PLEXUS_P2P_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/codec.h"
#include "plexus/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_P2P_PROTO 1
#define PX_P2P_DEFAULT_MAX_MSG (16u << 20)

typedef void (*px_p2p_rng_fn)(void *ud, uint8_t *out, size_t n);

typedef struct {
  px_keypair_t identity;        /* the node's Ed25519 key (copied) */
  char network[PX_NETWORK_MAX]; /* peers on another network are refused */
  char listen[PX_ADDR_MAX];     /* advertised address ("" = none) */
  size_t max_msg;               /* application message cap */
  uint32_t max_inbound;         /* established inbound peers */
  uint32_t max_outbound;        /* established outbound peers */
  uint32_t target_outbound;     /* dial until this many outbound */
  uint32_t max_pending;         /* connections still handshaking */
  uint64_t handshake_timeout_ms;
  uint64_t idle_timeout_ms; /* nothing received for this long: drop */
  uint64_t ping_interval_ms;
  uint64_t pex_interval_ms;
  uint64_t reconnect_min_ms, reconnect_max_ms;
  uint64_t ban_ms;        /* how long a ban lasts */
  uint32_t ban_strikes;   /* misbehaviours before a ban */
  int ban_ip;             /* ban by IP for pre-auth failures */
  uint32_t rate_msgs;     /* per-peer messages per second */
  uint64_t rate_bytes;    /* per-peer bytes per second */
  uint8_t gossip_ttl;     /* hops a new message may travel */
  uint32_t gossip_fanout; /* peers each message is forwarded to */
  uint32_t seen_cap;      /* seen-cache entries */
  uint64_t seen_ttl_ms;
  uint64_t request_timeout_ms; /* default for px_p2p_request */
  px_p2p_rng_fn rng;           /* NULL: libsodium's CSPRNG */
  void *rng_ud;
  uint64_t seed; /* seeds fan-out choice and jitter */
} px_p2p_config_t;

/* Fill cfg with the defaults documented in docs/config.md. */
void px_p2p_config_default(px_p2p_config_t *cfg);

typedef enum {
  PX_P2P_FX_SEND = 1,  /* write data to conn */
  PX_P2P_FX_CLOSE,     /* close conn (after flushing queued sends) */
  PX_P2P_FX_DIAL,      /* open a TCP connection to addr as conn */
  PX_P2P_FX_PEER_UP,   /* handshake done: peer is node_pk on conn */
  PX_P2P_FX_PEER_DOWN, /* peer node_pk left (err says why) */
  PX_P2P_FX_GOSSIP,    /* deliver a gossip message (once per id) */
  PX_P2P_FX_REQUEST,   /* a peer asks: answer with px_p2p_respond */
  PX_P2P_FX_RESPONSE,  /* the answer (or PX_ETIMEOUT) to our request */
  PX_P2P_FX_DIRECT,    /* a one-way message from node_pk */
} px_p2p_fx_kind_t;

typedef struct {
  px_p2p_fx_kind_t kind;
  uint64_t conn;
  int err;                    /* CLOSE/PEER_DOWN: reason; RESPONSE: status */
  uint8_t node_pk[PX_PK_LEN]; /* PEER_UP/DOWN, GOSSIP source, REQUEST */
  char addr[PX_ADDR_MAX];     /* DIAL target; PEER_UP remote address */
  uint16_t topic;             /* GOSSIP, DIRECT */
  uint8_t origin[PX_PK_LEN];  /* GOSSIP origin */
  uint8_t id[PX_HASH_LEN];    /* GOSSIP message id */
  uint64_t req_id;            /* REQUEST/RESPONSE */
  uint16_t method;            /* REQUEST */
  int inbound;                /* PEER_UP */
  px_buf_t data;              /* SEND bytes, GOSSIP/REQUEST/RESPONSE payload */
} px_p2p_fx_t;

typedef struct px_p2p px_p2p_t;

typedef struct {
  uint8_t node_pk[PX_PK_LEN];
  char addr[PX_ADDR_MAX];   /* advertised listen address */
  char remote[PX_ADDR_MAX]; /* socket's remote address */
  int inbound;
  uint64_t conn;
  uint64_t connected_ms;
  uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
  uint64_t rtt_ms;
} px_p2p_peer_info_t;

typedef struct {
  uint64_t conns_total, handshakes_ok, handshakes_failed;
  uint64_t drops_by_reason[PX_ERR_COUNT]; /* indexed by -err (PX_E codes) */
  uint64_t bans;
  uint64_t gossip_delivered, gossip_duplicates, gossip_forwarded;
  uint64_t direct_in, direct_out;
  uint64_t requests_in, requests_out, responses_in, request_timeouts;
  uint64_t known_peers;
} px_p2p_stats_t;

/* Create a core.  The config is copied; its identity key is wiped from cfg
 * by the caller when no longer needed.  Returns PX_EINVAL for a bad config. */
int px_p2p_new(const px_p2p_config_t *cfg, px_p2p_t **out);
void px_p2p_free(px_p2p_t *p);

/* Addresses ("host:port") to dial at start and whenever we are short of
 * outbound peers.  PX_EADDR for a malformed address. */
int px_p2p_add_bootstrap(px_p2p_t *p, const char *addr);

/* ---- events from the runtime ---- */

/* A TCP connection was accepted from `remote` ("ip:port").  On success
 * *conn is the id to use from now on; on error (PX_ELIMIT, PX_EBANNED) the
 * runtime closes the socket at once. */
int px_p2p_on_inbound(px_p2p_t *p, const char *remote, uint64_t now,
                      uint64_t *conn);
/* The dial requested by a DIAL effect succeeded / failed. */
void px_p2p_on_dialed(px_p2p_t *p, uint64_t conn, const char *remote,
                      uint64_t now);
void px_p2p_on_dial_failed(px_p2p_t *p, uint64_t conn, int err, uint64_t now);
/* Bytes arrived on conn. */
void px_p2p_on_data(px_p2p_t *p, uint64_t conn, const uint8_t *data, size_t n,
                    uint64_t now);
/* The connection is gone (peer closed, I/O error, or our CLOSE done). */
void px_p2p_on_closed(px_p2p_t *p, uint64_t conn, int err, uint64_t now);
/* Time passed: handles timeouts, pings, PEX, reconnects, expiry. */
void px_p2p_tick(px_p2p_t *p, uint64_t now);
/* When the next tick is due (absolute ms), for the runtime's timer. */
uint64_t px_p2p_next_deadline(const px_p2p_t *p, uint64_t now);

/* ---- commands from the application ---- */

/* Gossip a new message to the network; id_out (optional) gets its id. */
int px_p2p_broadcast(px_p2p_t *p, uint16_t topic, const void *payload, size_t n,
                     uint64_t now, uint8_t id_out[PX_HASH_LEN]);
/* Send a request to a connected peer; the answer arrives as a RESPONSE
 * effect with the same req_id (status PX_ETIMEOUT after timeout_ms, or
 * PX_ECLOSED if the peer leaves).  timeout_ms 0 means the default. */
int px_p2p_request(px_p2p_t *p, const uint8_t node_pk[PX_PK_LEN],
                   uint16_t method, const void *payload, size_t n,
                   uint64_t timeout_ms, uint64_t now, uint64_t *req_id);
/* Send a one-way message to one connected peer (not relayed).  It arrives
 * as a DIRECT effect there.  PX_ENOTFOUND when not connected. */
int px_p2p_send(px_p2p_t *p, const uint8_t node_pk[PX_PK_LEN], uint16_t topic,
                const void *payload, size_t n);
int px_p2p_respond(px_p2p_t *p, const uint8_t node_pk[PX_PK_LEN],
                   uint64_t req_id, int status, const void *payload, size_t n);
/* Close every connection politely (BYE) — for shutdown. */
void px_p2p_shutdown(px_p2p_t *p, uint64_t now);

/* ---- effects ---- */

/* Take the next effect; returns 1 if one was written to fx, 0 if none.
 * The caller owns fx->data and releases it with px_p2p_fx_release. */
int px_p2p_poll(px_p2p_t *p, px_p2p_fx_t *fx);
void px_p2p_fx_release(px_p2p_fx_t *fx);

/* ---- introspection ---- */

size_t px_p2p_peer_count(const px_p2p_t *p);
/* Copy up to cap established peers; returns how many. */
size_t px_p2p_peers(const px_p2p_t *p, px_p2p_peer_info_t *out, size_t cap);
void px_p2p_get_stats(const px_p2p_t *p, px_p2p_stats_t *st);
const uint8_t *px_p2p_node_pk(const px_p2p_t *p);
/* 1 if the given IP (no port) or node id is banned at `now`. */
int px_p2p_is_banned_ip(const px_p2p_t *p, const char *ip, uint64_t now);
int px_p2p_is_banned_node(const px_p2p_t *p, const uint8_t pk[PX_PK_LEN],
                          uint64_t now);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_P2P_H */
