/*
 * p2pmsg.c — encoding and decoding of the p2p message set (docs/protocol.md).
 *
 * How: every message is an envelope (u16 type, u8 version) followed by a
 * body whose fields are written with px_writer_t and read back with
 * px_reader_t in the same order.  encode_body() and decode_body() are the
 * two halves of one table; keep them side by side when adding a message.
 *
 * Canonicality: the decoder accepts exactly the set of byte strings the
 * encoder can produce, so encode(decode(x)) == x for every accepted x (the
 * fuzz target tests/fuzz/fuzz_p2p_msg.c checks this).  Hence the encoder
 * refuses (PX_EINVAL) what the decoder would reject — unterminated or
 * non-printable strings, more than PX_PEX_MAX peers, HELLO.proto 0 — and
 * the decoder rejects unknown types, other versions, oversized counts and
 * payloads, and trailing bytes.
 *
 * Check order in the envelope: version before type, so a peer speaking a
 * newer protocol (which may add types) is told PX_EVERSION, not PX_EDECODE.
 *
 * The gossip id is BLAKE2b-256 (crypto_generichash, 32-byte output, no key)
 * over u16 topic || origin[32] || u64 seq || u32 payload_len || payload,
 * i.e. the body's encoding without ttl; hashed incrementally, no copy.
 *
 * Decoded payloads point into the caller's input (zero copy); on error the
 * output message is zeroed so it never holds a stale pointer.
 */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"

#include "base/px_internal.h"

/* A char field is encodable when NUL-terminated inside its array. */
static int field_ok(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL;
}

static int validate(const px_msg_t *m) {
  switch (m->type) {
  case PX_MSG_HELLO:
    if (m->u.hello.proto == 0) return PX_EINVAL;
    if (!field_ok(m->u.hello.network, sizeof m->u.hello.network) ||
        !field_ok(m->u.hello.listen, sizeof m->u.hello.listen))
      return PX_EINVAL;
    return 0;
  case PX_MSG_PING:
  case PX_MSG_PONG:
  case PX_MSG_PEX_REQ:
    return 0;
  case PX_MSG_PEX_RESP:
    if (m->u.pex.n > PX_PEX_MAX) return PX_EINVAL;
    for (uint32_t i = 0; i < m->u.pex.n; i++)
      if (!field_ok(m->u.pex.peers[i].addr, sizeof m->u.pex.peers[i].addr))
        return PX_EINVAL;
    return 0;
  case PX_MSG_GOSSIP:
  case PX_MSG_REQUEST:
  case PX_MSG_RESPONSE:
  case PX_MSG_DIRECT:
    return 0; /* payload pointer/length checked by px_writer_bytes */
  case PX_MSG_BYE:
    if (!field_ok(m->u.bye.reason, sizeof m->u.bye.reason)) return PX_EINVAL;
    return 0;
  }
  return PX_EINVAL;
}

static void encode_body(px_writer_t *w, const px_msg_t *m) {
  switch (m->type) {
  case PX_MSG_HELLO:
    px_writer_u32(w, m->u.hello.proto);
    px_writer_fixed(w, m->u.hello.node_pk, sizeof m->u.hello.node_pk);
    px_writer_fixed(w, m->u.hello.sig, sizeof m->u.hello.sig);
    px_writer_str(w, m->u.hello.network);
    px_writer_str(w, m->u.hello.listen);
    break;
  case PX_MSG_PING:
  case PX_MSG_PONG:
    px_writer_u64(w, m->u.ping.nonce);
    break;
  case PX_MSG_PEX_REQ:
    break;
  case PX_MSG_PEX_RESP:
    px_writer_u32(w, m->u.pex.n);
    for (uint32_t i = 0; i < m->u.pex.n; i++) {
      px_writer_fixed(w, m->u.pex.peers[i].node_pk,
                      sizeof m->u.pex.peers[i].node_pk);
      px_writer_str(w, m->u.pex.peers[i].addr);
    }
    break;
  case PX_MSG_GOSSIP:
    px_writer_u16(w, m->u.gossip.topic);
    px_writer_u8(w, m->u.gossip.ttl);
    px_writer_fixed(w, m->u.gossip.origin, sizeof m->u.gossip.origin);
    px_writer_u64(w, m->u.gossip.seq);
    px_writer_bytes(w, m->u.gossip.payload, m->u.gossip.payload_len);
    break;
  case PX_MSG_REQUEST:
    px_writer_u64(w, m->u.request.id);
    px_writer_u16(w, m->u.request.method);
    px_writer_bytes(w, m->u.request.payload, m->u.request.payload_len);
    break;
  case PX_MSG_RESPONSE:
    px_writer_u64(w, m->u.response.id);
    px_writer_i32(w, m->u.response.status);
    px_writer_bytes(w, m->u.response.payload, m->u.response.payload_len);
    break;
  case PX_MSG_BYE:
    px_writer_u16(w, m->u.bye.code);
    px_writer_str(w, m->u.bye.reason);
    break;
  case PX_MSG_DIRECT:
    px_writer_u16(w, m->u.direct.topic);
    px_writer_bytes(w, m->u.direct.payload, m->u.direct.payload_len);
    break;
  }
}

int px_msg_encode(const px_msg_t *m, px_buf_t *out) {
  if (m == NULL || out == NULL) return PX_EINVAL;
  int rc = validate(m);
  if (rc) return rc;
  size_t start = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, (uint16_t)m->type);
  px_writer_u8(&w, PX_MSG_VERSION);
  encode_body(&w, m);
  rc = px_writer_finish(&w);
  if (rc) out->len = start; /* all or nothing */
  return rc;
}

static void decode_body(px_reader_t *r, px_msg_t *m, size_t max_payload) {
  switch (m->type) {
  case PX_MSG_HELLO:
    m->u.hello.proto = px_reader_u32(r);
    if (m->u.hello.proto == 0) px_reader_fail(r, PX_EDECODE);
    px_reader_fixed(r, m->u.hello.node_pk, sizeof m->u.hello.node_pk);
    px_reader_fixed(r, m->u.hello.sig, sizeof m->u.hello.sig);
    px_reader_str(r, m->u.hello.network, sizeof m->u.hello.network);
    px_reader_str(r, m->u.hello.listen, sizeof m->u.hello.listen);
    break;
  case PX_MSG_PING:
  case PX_MSG_PONG:
    m->u.ping.nonce = px_reader_u64(r);
    break;
  case PX_MSG_PEX_REQ:
    break;
  case PX_MSG_PEX_RESP:
    m->u.pex.n = px_reader_u32(r);
    if (m->u.pex.n > PX_PEX_MAX) px_reader_fail(r, PX_ETOOBIG);
    for (uint32_t i = 0; i < m->u.pex.n && r->err == 0; i++) {
      px_reader_fixed(r, m->u.pex.peers[i].node_pk,
                      sizeof m->u.pex.peers[i].node_pk);
      px_reader_str(r, m->u.pex.peers[i].addr, sizeof m->u.pex.peers[i].addr);
    }
    break;
  case PX_MSG_GOSSIP:
    m->u.gossip.topic = px_reader_u16(r);
    m->u.gossip.ttl = px_reader_u8(r);
    px_reader_fixed(r, m->u.gossip.origin, sizeof m->u.gossip.origin);
    m->u.gossip.seq = px_reader_u64(r);
    px_reader_bytes(r, &m->u.gossip.payload, &m->u.gossip.payload_len,
                    max_payload);
    break;
  case PX_MSG_REQUEST:
    m->u.request.id = px_reader_u64(r);
    m->u.request.method = px_reader_u16(r);
    px_reader_bytes(r, &m->u.request.payload, &m->u.request.payload_len,
                    max_payload);
    break;
  case PX_MSG_RESPONSE:
    m->u.response.id = px_reader_u64(r);
    m->u.response.status = px_reader_i32(r);
    px_reader_bytes(r, &m->u.response.payload, &m->u.response.payload_len,
                    max_payload);
    break;
  case PX_MSG_BYE:
    m->u.bye.code = px_reader_u16(r);
    px_reader_str(r, m->u.bye.reason, sizeof m->u.bye.reason);
    break;
  case PX_MSG_DIRECT:
    m->u.direct.topic = px_reader_u16(r);
    px_reader_bytes(r, &m->u.direct.payload, &m->u.direct.payload_len,
                    max_payload);
    break;
  }
}

static int known_type(uint16_t t) {
  return t >= PX_MSG_HELLO && t <= PX_MSG_DIRECT;
}

int px_msg_decode(const uint8_t *p, size_t len, size_t max_payload,
                  px_msg_t *m) {
  if (m == NULL) return PX_EINVAL;
  memset(m, 0, sizeof *m);
  if (p == NULL && len != 0) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  uint16_t type = px_reader_u16(&r);
  uint8_t version = px_reader_u8(&r);
  if (r.err == 0 && version != PX_MSG_VERSION) px_reader_fail(&r, PX_EVERSION);
  if (r.err == 0 && !known_type(type)) px_reader_fail(&r, PX_EDECODE);
  if (r.err == 0) {
    m->type = (px_msg_type_t)type;
    decode_body(&r, m, max_payload);
  }
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

void px_msg_gossip_id(const px_msg_gossip_t *g, uint8_t id[32]) {
  uint8_t head[2 + 32 + 8 + 4];
  px_put_u16le(head, g->topic);
  memcpy(head + 2, g->origin, 32);
  px_put_u64le(head + 34, g->seq);
  /* Encodable payloads are <= UINT32_MAX bytes (px_writer_bytes); a longer
   * one cannot be sent, so its id only needs to be deterministic. */
  uint32_t n =
      g->payload_len > UINT32_MAX ? UINT32_MAX : (uint32_t)g->payload_len;
  px_put_u32le(head + 42, n);
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 32);
  crypto_generichash_update(&st, head, sizeof head);
  if (g->payload_len)
    crypto_generichash_update(&st, g->payload, g->payload_len);
  crypto_generichash_final(&st, id, 32);
}

const char *px_msg_type_name(int type) {
  switch (type) {
  case PX_MSG_HELLO:
    return "hello";
  case PX_MSG_PING:
    return "ping";
  case PX_MSG_PONG:
    return "pong";
  case PX_MSG_PEX_REQ:
    return "pex_req";
  case PX_MSG_PEX_RESP:
    return "pex_resp";
  case PX_MSG_GOSSIP:
    return "gossip";
  case PX_MSG_REQUEST:
    return "request";
  case PX_MSG_RESPONSE:
    return "response";
  case PX_MSG_BYE:
    return "bye";
  case PX_MSG_DIRECT:
    return "direct";
  }
  return "unknown";
}
