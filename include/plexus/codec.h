/*
 * plexus/codec.h — the one canonical binary encoding.
 *
 * Every wire message and every signed structure is encoded with these
 * primitives: fixed-width little-endian integers, byte strings prefixed with
 * a u32 length, and, for every message, an envelope of a u16 type tag and a
 * u8 version.  Encoding is canonical: one value has exactly one encoding, so
 * hashes and signatures over encodings are well defined.
 *
 * Decoding is strict and bounded (STYLE.md habit 7):
 *  - px_reader_t never reads past its buffer; the first error is sticky and
 *    every later read returns zeros, so decoders check once at the end;
 *  - every length is checked against both the remaining input and a caller
 *    limit before use;
 *  - px_reader_finish() fails with PX_ETRAILING if bytes are left over.
 * Decoded byte strings point into the input buffer (zero copy): they live as
 * long as the input does.
 *
 * The p2p message set is defined here as well (docs/protocol.md).
 */
#ifndef PLEXUS_CODEC_H
#define PLEXUS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- writer ------------------------------------------------------------ */

typedef struct {
  px_buf_t *buf;
  int err; /* sticky first error */
} px_writer_t;

void px_writer_init(px_writer_t *w, px_buf_t *buf);
void px_writer_u8(px_writer_t *w, uint8_t v);
void px_writer_u16(px_writer_t *w, uint16_t v);
void px_writer_u32(px_writer_t *w, uint32_t v);
void px_writer_u64(px_writer_t *w, uint64_t v);
void px_writer_i32(px_writer_t *w, int32_t v);
void px_writer_fixed(px_writer_t *w, const void *p, size_t n); /* raw */
/* u32 length + data; PX_ETOOBIG if n > UINT32_MAX. */
void px_writer_bytes(px_writer_t *w, const void *p, size_t n);
/* As bytes, without the NUL; PX_EINVAL if s holds a byte outside 0x20..0x7e
 * (the writer never produces what px_reader_str would reject). */
void px_writer_str(px_writer_t *w, const char *s);
/* 0 or the first error (PX_ENOMEM, PX_ETOOBIG from the buffer's cap or a
 * too-long byte string, PX_EINVAL for a bad argument or string).  After an
 * error the buffer may hold a partial encoding. */
int px_writer_finish(px_writer_t *w);

/* ---- reader ------------------------------------------------------------ */

typedef struct {
  const uint8_t *p;
  size_t len;
  size_t pos;
  int err; /* sticky first error */
} px_reader_t;

void px_reader_init(px_reader_t *r, const void *p, size_t len);
uint8_t px_reader_u8(px_reader_t *r);
uint16_t px_reader_u16(px_reader_t *r);
uint32_t px_reader_u32(px_reader_t *r);
uint64_t px_reader_u64(px_reader_t *r);
int32_t px_reader_i32(px_reader_t *r);
/* Copy exactly n raw bytes into out (zeroed on error). */
void px_reader_fixed(px_reader_t *r, void *out, size_t n);
/* u32 length + data; fails with PX_ETOOBIG if length > max (checked first),
 * else PX_ETRUNC if past the end.  *out points into the input; *n_out is the
 * length.  On error *out is NULL and *n_out 0. */
void px_reader_bytes(px_reader_t *r, const uint8_t **out, size_t *n_out,
                     size_t max);
/* As bytes, copied into out[cap] NUL-terminated; rejects length >= cap
 * (PX_ETOOBIG, checked before PX_ETRUNC) and any byte outside 0x20..0x7e,
 * NUL included (PX_EDECODE).  out is all zeros on error; cap 0 is
 * PX_EINVAL. */
void px_reader_str(px_reader_t *r, char *out, size_t cap);
/* Bytes not yet read; 0 once an error is set. */
size_t px_reader_remaining(const px_reader_t *r);
/* Set the sticky error (first one wins); for decoders' semantic checks. */
void px_reader_fail(px_reader_t *r, int err);
/* 0 when no error and no trailing bytes; else the error. */
int px_reader_finish(px_reader_t *r);

/* ---- the p2p message set ----------------------------------------------- */

#define PX_MSG_VERSION 1
#define PX_ADDR_MAX 64    /* "host:port" incl. NUL */
#define PX_NETWORK_MAX 32 /* network name incl. NUL */
#define PX_PEX_MAX 64     /* peers in one PEX response */
#define PX_REASON_MAX 128 /* BYE text incl. NUL */

typedef enum {
  PX_MSG_HELLO = 1, /* Noise handshake payload: identity binding */
  PX_MSG_PING = 2,
  PX_MSG_PONG = 3,
  PX_MSG_PEX_REQ = 4,
  PX_MSG_PEX_RESP = 5,
  PX_MSG_GOSSIP = 6,
  PX_MSG_REQUEST = 7,
  PX_MSG_RESPONSE = 8,
  PX_MSG_BYE = 9,
  PX_MSG_DIRECT = 10, /* one-way message to one peer (bulk data) */
} px_msg_type_t;

/* HELLO is carried inside the encrypted payloads of Noise XX messages 2
 * (responder) and 3 (initiator).  It binds the Noise static X25519 key to the
 * node's Ed25519 identity, as libp2p's noise spec does: sig is the Ed25519
 * signature by node_pk over "plexus-noise-static-key:" || noise_static_pk. */
typedef struct {
  uint32_t proto;               /* protocol version, currently 1 */
  uint8_t node_pk[32];          /* Ed25519 identity */
  uint8_t sig[64];              /* binding signature */
  char network[PX_NETWORK_MAX]; /* network name: peers on others are refused */
  char listen[PX_ADDR_MAX];     /* where this node accepts peers ("" none) */
} px_msg_hello_t;

typedef struct {
  uint64_t nonce;
} px_msg_ping_t; /* also PONG */

typedef struct {
  uint8_t node_pk[32];
  char addr[PX_ADDR_MAX];
} px_peer_addr_t;

typedef struct {
  uint32_t n; /* <= PX_PEX_MAX */
  px_peer_addr_t peers[PX_PEX_MAX];
} px_msg_pex_resp_t;

/* A gossiped message.  Its id is BLAKE2b-256 (32-byte output, no key) over
 * the encoding of (u16 topic, origin[32], u64 seq, bytes payload) — the
 * GOSSIP body without ttl, which each hop decrements, and without the
 * envelope. */
typedef struct {
  uint16_t topic;
  uint8_t ttl;
  uint8_t origin[32];
  uint64_t seq;
  const uint8_t *payload; /* points into the decoded input */
  size_t payload_len;
} px_msg_gossip_t;

typedef struct {
  uint64_t id;
  uint16_t method;
  const uint8_t *payload;
  size_t payload_len;
} px_msg_request_t;

typedef struct {
  uint64_t id;
  int32_t status; /* 0 ok, else a PX_E code */
  const uint8_t *payload;
  size_t payload_len;
} px_msg_response_t;

/* A one-way message to the connected peer only (not relayed, no id). */
typedef struct {
  uint16_t topic;
  const uint8_t *payload;
  size_t payload_len;
} px_msg_direct_t;

typedef struct {
  uint16_t code; /* a PX_E code's magnitude, or 0 for a normal close */
  char reason[PX_REASON_MAX];
} px_msg_bye_t;

typedef struct {
  px_msg_type_t type;
  union {
    px_msg_hello_t hello;
    px_msg_ping_t ping; /* PING and PONG */
    px_msg_pex_resp_t pex;
    px_msg_gossip_t gossip;
    px_msg_request_t request;
    px_msg_response_t response;
    px_msg_bye_t bye;
    px_msg_direct_t direct;
  } u;
} px_msg_t;

/* Append the canonical encoding (envelope + body) of m to out.  PX_EINVAL
 * for a message the decoder would reject (unknown type, HELLO.proto 0, pex
 * n > PX_PEX_MAX, a char field without NUL or with a byte outside
 * 0x20..0x7e, NULL payload with nonzero length); PX_ETOOBIG, PX_ENOMEM from
 * the buffer.  On error out is left as it was. */
int px_msg_encode(const px_msg_t *m, px_buf_t *out);
/* Decode one whole message.  max_payload bounds gossip/request/response
 * payloads (0 allows only empty ones).  Errors: PX_ETRUNC, PX_ETRAILING,
 * PX_ETOOBIG (payload, string or pex count over its limit), PX_EDECODE
 * (unknown type, non-printable string, HELLO.proto 0), PX_EVERSION (checked
 * before the type).  On error *m is zeroed.  Whatever decodes re-encodes
 * to the identical bytes. */
int px_msg_decode(const uint8_t *p, size_t len, size_t max_payload,
                  px_msg_t *m);
/* The gossip message id (see px_msg_gossip_t); payload_len must be
 * <= UINT32_MAX, as for every encodable message. */
void px_msg_gossip_id(const px_msg_gossip_t *g, uint8_t id[32]);
/* "hello", "ping", ..., "bye"; "unknown" for anything else.  Never NULL. */
const char *px_msg_type_name(int type);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_CODEC_H */
