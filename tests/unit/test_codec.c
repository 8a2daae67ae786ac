/*
 * test_codec.c — unit tests for the canonical codec and the p2p message set.
 *
 * What is proven here:
 *  - every message type round-trips field for field, and re-encoding a
 *    decoded message gives the identical bytes (canonicality);
 *  - golden bytes written out by hand pin the wire format (PING, GOSSIP,
 *    BYE, PEX_REQ) and the gossip id, so the format cannot drift silently;
 *  - every strict prefix of every valid message fails with PX_ETRUNC, one
 *    extra byte fails with PX_ETRAILING; decoding reads from an exact-size
 *    heap copy so ASan sees any read past the end;
 *  - each documented decode error, the encoder's refusals, the writer's cap
 *    and allocation failure, the reader's sticky error, and hostile lengths
 *    (0xFFFFFFFF) behave as codec.h says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/codec.h"

#define MAXP (1u << 20)

static const uint8_t k_payload[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};

static const int k_types[] = {PX_MSG_HELLO,   PX_MSG_PING,     PX_MSG_PONG,
                              PX_MSG_PEX_REQ, PX_MSG_PEX_RESP, PX_MSG_GOSSIP,
                              PX_MSG_REQUEST, PX_MSG_RESPONSE, PX_MSG_BYE,
                              PX_MSG_DIRECT};

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed + i * 7);
}

/* A valid message of the given type with every field set to a non-default
 * value, so a field that is dropped or swapped shows in the comparison. */
static void make_sample(int type, px_msg_t *m) {
  memset(m, 0, sizeof *m);
  m->type = (px_msg_type_t)type;
  switch (type) {
  case PX_MSG_HELLO:
    m->u.hello.proto = 1;
    fill(m->u.hello.node_pk, 32, 0x11);
    fill(m->u.hello.sig, 64, 0x22);
    snprintf(m->u.hello.network, sizeof m->u.hello.network, "plexus-test");
    snprintf(m->u.hello.listen, sizeof m->u.hello.listen, "127.0.0.1:7400");
    break;
  case PX_MSG_PING:
    m->u.ping.nonce = 0x0102030405060708ull;
    break;
  case PX_MSG_PONG:
    m->u.ping.nonce = 0xfffffffffffffffeull;
    break;
  case PX_MSG_PEX_REQ:
    break;
  case PX_MSG_PEX_RESP:
    m->u.pex.n = 3;
    for (uint32_t i = 0; i < 3; i++) {
      fill(m->u.pex.peers[i].node_pk, 32, (uint8_t)(0x40 + i));
      snprintf(m->u.pex.peers[i].addr, sizeof m->u.pex.peers[i].addr,
               "10.0.0.%u:74%02u", (unsigned)i + 1, (unsigned)i);
    }
    m->u.pex.peers[1].addr[0] = '\0'; /* empty strings are valid too */
    break;
  case PX_MSG_GOSSIP:
    m->u.gossip.topic = 0xbeef;
    m->u.gossip.ttl = 5;
    fill(m->u.gossip.origin, 32, 0x33);
    m->u.gossip.seq = 0x8000000000000001ull;
    m->u.gossip.payload = k_payload;
    m->u.gossip.payload_len = sizeof k_payload;
    break;
  case PX_MSG_REQUEST:
    m->u.request.id = 42;
    m->u.request.method = 0x1234;
    m->u.request.payload = k_payload;
    m->u.request.payload_len = sizeof k_payload;
    break;
  case PX_MSG_RESPONSE:
    m->u.response.id = 43;
    m->u.response.status = PX_ENOTFOUND;
    m->u.response.payload = k_payload;
    m->u.response.payload_len = 3;
    break;
  case PX_MSG_BYE:
    m->u.bye.code = 17;
    snprintf(m->u.bye.reason, sizeof m->u.bye.reason, "shutting down ~ ok!");
    break;
  case PX_MSG_DIRECT:
    m->u.direct.topic = 0xbeef;
    m->u.direct.payload = k_payload;
    m->u.direct.payload_len = sizeof k_payload;
    break;
  default:
    fail_msg("no sample for type %d", type);
  }
}

static void assert_bytes_equal(const uint8_t *a, size_t na, const uint8_t *b,
                               size_t nb) {
  assert_int_equal(na, nb);
  if (na) assert_memory_equal(a, b, na);
}

static void assert_msg_equal(const px_msg_t *a, const px_msg_t *b) {
  assert_int_equal(a->type, b->type);
  switch (a->type) {
  case PX_MSG_HELLO:
    assert_int_equal(a->u.hello.proto, b->u.hello.proto);
    assert_memory_equal(a->u.hello.node_pk, b->u.hello.node_pk, 32);
    assert_memory_equal(a->u.hello.sig, b->u.hello.sig, 64);
    assert_string_equal(a->u.hello.network, b->u.hello.network);
    assert_string_equal(a->u.hello.listen, b->u.hello.listen);
    break;
  case PX_MSG_PING:
  case PX_MSG_PONG:
    assert_true(a->u.ping.nonce == b->u.ping.nonce);
    break;
  case PX_MSG_PEX_REQ:
    break;
  case PX_MSG_PEX_RESP:
    assert_int_equal(a->u.pex.n, b->u.pex.n);
    for (uint32_t i = 0; i < a->u.pex.n; i++) {
      assert_memory_equal(a->u.pex.peers[i].node_pk, b->u.pex.peers[i].node_pk,
                          32);
      assert_string_equal(a->u.pex.peers[i].addr, b->u.pex.peers[i].addr);
    }
    break;
  case PX_MSG_GOSSIP:
    assert_int_equal(a->u.gossip.topic, b->u.gossip.topic);
    assert_int_equal(a->u.gossip.ttl, b->u.gossip.ttl);
    assert_memory_equal(a->u.gossip.origin, b->u.gossip.origin, 32);
    assert_true(a->u.gossip.seq == b->u.gossip.seq);
    assert_bytes_equal(a->u.gossip.payload, a->u.gossip.payload_len,
                       b->u.gossip.payload, b->u.gossip.payload_len);
    break;
  case PX_MSG_REQUEST:
    assert_true(a->u.request.id == b->u.request.id);
    assert_int_equal(a->u.request.method, b->u.request.method);
    assert_bytes_equal(a->u.request.payload, a->u.request.payload_len,
                       b->u.request.payload, b->u.request.payload_len);
    break;
  case PX_MSG_RESPONSE:
    assert_true(a->u.response.id == b->u.response.id);
    assert_int_equal(a->u.response.status, b->u.response.status);
    assert_bytes_equal(a->u.response.payload, a->u.response.payload_len,
                       b->u.response.payload, b->u.response.payload_len);
    break;
  case PX_MSG_BYE:
    assert_int_equal(a->u.bye.code, b->u.bye.code);
    assert_string_equal(a->u.bye.reason, b->u.bye.reason);
    break;
  case PX_MSG_DIRECT:
    assert_int_equal(a->u.direct.topic, b->u.direct.topic);
    assert_bytes_equal(a->u.direct.payload, a->u.direct.payload_len,
                       b->u.direct.payload, b->u.direct.payload_len);
    break;
  }
}

/* Decode from an exact-size heap copy, so ASan flags any over-read. */
static int decode_copy(const uint8_t *p, size_t n, size_t max_payload,
                       px_msg_t *m) {
  uint8_t *c = malloc(n ? n : 1);
  assert_non_null(c);
  if (n) memcpy(c, p, n);
  int rc = px_msg_decode(c, n, max_payload, m);
  free(c);
  /* m may point into c now; callers only look at scalar fields after. */
  return rc;
}

static int msg_is_zero(const px_msg_t *m) {
  static const px_msg_t zero;
  return memcmp(m, &zero, sizeof zero) == 0;
}

/* Encode m into a fresh buffer (caller releases). */
static void encode(const px_msg_t *m, px_buf_t *b) {
  px_buf_init(b, 0);
  assert_int_equal(px_msg_encode(m, b), 0);
}

/* ---- round trips ----------------------------------------------------------
 */

static void test_roundtrip_all_types(void **state) {
  (void)state;
  for (size_t t = 0; t < PX_ARRAY_LEN(k_types); t++) {
    px_msg_t m, d;
    px_buf_t b, b2;
    make_sample(k_types[t], &m);
    encode(&m, &b);
    assert_int_equal(px_msg_decode(b.data, b.len, MAXP, &d), 0);
    assert_msg_equal(&m, &d);
    encode(&d, &b2);
    assert_bytes_equal(b.data, b.len, b2.data, b2.len);
    px_buf_release(&b);
    px_buf_release(&b2);
  }
}

static void test_roundtrip_extremes(void **state) {
  (void)state;
  px_msg_t m, d;
  px_buf_t b, b2;

  /* Full PEX response, longest strings, every printable character. */
  make_sample(PX_MSG_PEX_RESP, &m);
  m.u.pex.n = PX_PEX_MAX;
  for (uint32_t i = 0; i < PX_PEX_MAX; i++) {
    fill(m.u.pex.peers[i].node_pk, 32, (uint8_t)i);
    for (size_t j = 0; j < PX_ADDR_MAX - 1; j++)
      m.u.pex.peers[i].addr[j] = (char)(0x20 + (i + j) % 95);
    m.u.pex.peers[i].addr[PX_ADDR_MAX - 1] = '\0';
  }
  encode(&m, &b);
  assert_int_equal(px_msg_decode(b.data, b.len, 0, &d), 0);
  assert_msg_equal(&m, &d);
  encode(&d, &b2);
  assert_bytes_equal(b.data, b.len, b2.data, b2.len);
  px_buf_release(&b);
  px_buf_release(&b2);

  /* GOSSIP ttl is any u8; empty payload decodes with max_payload 0. */
  for (int ttl = 0; ttl <= 255; ttl += 255) {
    make_sample(PX_MSG_GOSSIP, &m);
    m.u.gossip.ttl = (uint8_t)ttl;
    m.u.gossip.payload = NULL;
    m.u.gossip.payload_len = 0;
    encode(&m, &b);
    assert_int_equal(px_msg_decode(b.data, b.len, 0, &d), 0);
    assert_int_equal(d.u.gossip.ttl, ttl);
    assert_int_equal(d.u.gossip.payload_len, 0);
    px_buf_release(&b);
  }

  /* Negative and extreme status values. */
  int32_t statuses[] = {INT32_MIN, -1, 0, INT32_MAX};
  for (size_t i = 0; i < PX_ARRAY_LEN(statuses); i++) {
    make_sample(PX_MSG_RESPONSE, &m);
    m.u.response.status = statuses[i];
    encode(&m, &b);
    assert_int_equal(px_msg_decode(b.data, b.len, MAXP, &d), 0);
    assert_int_equal(d.u.response.status, statuses[i]);
    px_buf_release(&b);
  }

  /* HELLO with longest network and empty listen, proto UINT32_MAX. */
  make_sample(PX_MSG_HELLO, &m);
  m.u.hello.proto = UINT32_MAX;
  memset(m.u.hello.network, 'n', PX_NETWORK_MAX - 1);
  m.u.hello.network[PX_NETWORK_MAX - 1] = '\0';
  m.u.hello.listen[0] = '\0';
  encode(&m, &b);
  assert_int_equal(px_msg_decode(b.data, b.len, MAXP, &d), 0);
  assert_msg_equal(&m, &d);
  px_buf_release(&b);
}

/* ---- golden bytes -------------------------------------------------------- */

static void test_golden_ping(void **state) {
  (void)state;
  static const uint8_t want[] = {
      0x02, 0x00,                                    /* type PING */
      0x01,                                          /* version */
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01 /* nonce LE */
  };
  px_msg_t m, d;
  px_buf_t b;
  memset(&m, 0, sizeof m);
  m.type = PX_MSG_PING;
  m.u.ping.nonce = 0x0102030405060708ull;
  encode(&m, &b);
  assert_bytes_equal(b.data, b.len, want, sizeof want);
  px_buf_release(&b);
  assert_int_equal(px_msg_decode(want, sizeof want, 0, &d), 0);
  assert_int_equal(d.type, PX_MSG_PING);
  assert_true(d.u.ping.nonce == 0x0102030405060708ull);
}

static const uint8_t k_golden_gossip[] = {
    0x06, 0x00,                                     /* type GOSSIP */
    0x01,                                           /* version */
    0x02, 0x01,                                     /* topic 0x0102 */
    0x07,                                           /* ttl */
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, /* origin[32] */
    0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, /* */
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, /* */
    0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, /* */
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* seq LE */
    0x03, 0x00, 0x00, 0x00,                         /* payload length */
    0x61, 0x62, 0x63                                /* "abc" */
};

static void golden_gossip_msg(px_msg_t *m) {
  memset(m, 0, sizeof *m);
  m->type = PX_MSG_GOSSIP;
  m->u.gossip.topic = 0x0102;
  m->u.gossip.ttl = 7;
  for (int i = 0; i < 32; i++)
    m->u.gossip.origin[i] = (uint8_t)(0xa0 + i);
  m->u.gossip.seq = 0x1122334455667788ull;
  m->u.gossip.payload = (const uint8_t *)"abc";
  m->u.gossip.payload_len = 3;
}

static void test_golden_gossip(void **state) {
  (void)state;
  px_msg_t m, d;
  px_buf_t b;
  golden_gossip_msg(&m);
  encode(&m, &b);
  assert_bytes_equal(b.data, b.len, k_golden_gossip, sizeof k_golden_gossip);
  px_buf_release(&b);
  assert_int_equal(
      px_msg_decode(k_golden_gossip, sizeof k_golden_gossip, 3, &d), 0);
  assert_msg_equal(&m, &d);
  /* One byte less of max_payload and the same bytes are too big. */
  assert_int_equal(
      px_msg_decode(k_golden_gossip, sizeof k_golden_gossip, 2, &d),
      PX_ETOOBIG);
}

static void test_golden_bye_pexreq(void **state) {
  (void)state;
  static const uint8_t want_bye[] = {
      0x09, 0x00, 0x01,       /* type BYE, version */
      0x13, 0x00,             /* code 19 */
      0x03, 0x00, 0x00, 0x00, /* reason length */
      0x62, 0x79, 0x65        /* "bye" */
  };
  static const uint8_t want_pexreq[] = {0x04, 0x00, 0x01};
  px_msg_t m;
  px_buf_t b;
  memset(&m, 0, sizeof m);
  m.type = PX_MSG_BYE;
  m.u.bye.code = 19;
  snprintf(m.u.bye.reason, sizeof m.u.bye.reason, "bye");
  encode(&m, &b);
  assert_bytes_equal(b.data, b.len, want_bye, sizeof want_bye);
  px_buf_release(&b);

  memset(&m, 0, sizeof m);
  m.type = PX_MSG_PEX_REQ;
  encode(&m, &b);
  assert_bytes_equal(b.data, b.len, want_pexreq, sizeof want_pexreq);
  px_buf_release(&b);
}

static void test_gossip_id(void **state) {
  (void)state;
  /* BLAKE2b-256 of 02 01 | a0..bf | 88 77 66 55 44 33 22 11 | 03 00 00 00 |
   * "abc": the GOSSIP body without ttl (computed independently). */
  static const uint8_t want[32] = {
      0x5b, 0xf6, 0x0e, 0xd3, 0xd9, 0xa4, 0xc0, 0x26, 0x16, 0x31, 0x5e,
      0xd9, 0x26, 0x19, 0x89, 0x23, 0x6f, 0x65, 0xf8, 0x4e, 0x3b, 0xea,
      0xbe, 0xbb, 0x2d, 0x91, 0xd3, 0xaa, 0xf1, 0xc1, 0x7c, 0xf0};
  px_msg_t m;
  uint8_t id[32], id2[32];
  golden_gossip_msg(&m);
  px_msg_gossip_id(&m.u.gossip, id);
  assert_memory_equal(id, want, 32);

  /* Same as hashing the encoding minus envelope and ttl. */
  uint8_t pre[sizeof k_golden_gossip - 4];
  memcpy(pre, k_golden_gossip + 3, 2);
  memcpy(pre + 2, k_golden_gossip + 6, sizeof k_golden_gossip - 6);
  crypto_generichash(id2, 32, pre, sizeof pre, NULL, 0);
  assert_memory_equal(id, id2, 32);

  /* ttl does not change the id; every other field does. */
  m.u.gossip.ttl = 0;
  px_msg_gossip_id(&m.u.gossip, id2);
  assert_memory_equal(id, id2, 32);
  m.u.gossip.topic ^= 1;
  px_msg_gossip_id(&m.u.gossip, id2);
  assert_memory_not_equal(id, id2, 32);
  golden_gossip_msg(&m);
  m.u.gossip.origin[31] ^= 1;
  px_msg_gossip_id(&m.u.gossip, id2);
  assert_memory_not_equal(id, id2, 32);
  golden_gossip_msg(&m);
  m.u.gossip.seq ^= 1;
  px_msg_gossip_id(&m.u.gossip, id2);
  assert_memory_not_equal(id, id2, 32);
  golden_gossip_msg(&m);
  m.u.gossip.payload_len = 2;
  px_msg_gossip_id(&m.u.gossip, id2);
  assert_memory_not_equal(id, id2, 32);
}

/* ---- malformed input ------------------------------------------------------
 */

static void test_every_truncation_fails(void **state) {
  (void)state;
  for (size_t t = 0; t < PX_ARRAY_LEN(k_types); t++) {
    px_msg_t m, d;
    px_buf_t b;
    make_sample(k_types[t], &m);
    encode(&m, &b);
    for (size_t n = 0; n < b.len; n++) {
      int rc = decode_copy(b.data, n, MAXP, &d);
      if (rc != PX_ETRUNC)
        fail_msg("%s truncated to %zu of %zu: %s", px_msg_type_name(m.type), n,
                 b.len, px_err_name(rc));
      assert_true(msg_is_zero(&d));
    }
    assert_int_equal(decode_copy(b.data, b.len, MAXP, &d), 0);
    px_buf_release(&b);
  }
  px_msg_t d;
  assert_int_equal(px_msg_decode(NULL, 0, MAXP, &d), PX_ETRUNC);
}

static void test_trailing_byte(void **state) {
  (void)state;
  for (size_t t = 0; t < PX_ARRAY_LEN(k_types); t++) {
    px_msg_t m, d;
    px_buf_t b;
    make_sample(k_types[t], &m);
    encode(&m, &b);
    uint8_t zero = 0;
    assert_int_equal(px_buf_append(&b, &zero, 1), 0);
    assert_int_equal(decode_copy(b.data, b.len, MAXP, &d), PX_ETRAILING);
    assert_true(msg_is_zero(&d));
    px_buf_release(&b);
  }
}

static void test_envelope_errors(void **state) {
  (void)state;
  px_msg_t d;
  uint8_t buf[11] = {0x02, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}; /* PING */
  assert_int_equal(px_msg_decode(buf, sizeof buf, 0, &d), 0);

  static const uint16_t bad_types[] = {0, 11, 0x0100, 0xffff};
  for (size_t i = 0; i < PX_ARRAY_LEN(bad_types); i++) {
    buf[0] = (uint8_t)bad_types[i];
    buf[1] = (uint8_t)(bad_types[i] >> 8);
    assert_int_equal(px_msg_decode(buf, sizeof buf, 0, &d), PX_EDECODE);
    assert_true(msg_is_zero(&d));
  }
  buf[0] = 0x02;
  buf[1] = 0x00;
  static const uint8_t bad_versions[] = {0, 2, 0xff};
  for (size_t i = 0; i < PX_ARRAY_LEN(bad_versions); i++) {
    buf[2] = bad_versions[i];
    assert_int_equal(px_msg_decode(buf, sizeof buf, 0, &d), PX_EVERSION);
  }
  /* Version is checked first: a newer peer may define new types. */
  buf[0] = 0x77;
  assert_int_equal(px_msg_decode(buf, sizeof buf, 0, &d), PX_EVERSION);
  /* Unknown type with only the envelope present is still PX_EDECODE. */
  const uint8_t env[3] = {0x0b, 0x00, 0x01};
  assert_int_equal(decode_copy(env, 3, 0, &d), PX_EDECODE);
}

/* Encode sample, let `patch` rewrite it, decode: expect `want`. */
static void build(int type, px_msg_t *m, px_buf_t *b) {
  make_sample(type, m);
  encode(m, b);
}

static void test_pex_count(void **state) {
  (void)state;
  px_msg_t d;
  /* Envelope + n = 65 followed by nothing: too big wins over truncated. */
  uint8_t p[7] = {0x05, 0x00, 0x01, 65, 0, 0, 0};
  assert_int_equal(decode_copy(p, sizeof p, MAXP, &d), PX_ETOOBIG);
  p[3] = 0xff;
  p[4] = 0xff;
  p[5] = 0xff;
  p[6] = 0xff;
  assert_int_equal(decode_copy(p, sizeof p, MAXP, &d), PX_ETOOBIG);
  p[3] = 0;
  p[4] = p[5] = p[6] = 0;
  assert_int_equal(decode_copy(p, sizeof p, MAXP, &d), 0);
  assert_int_equal(d.u.pex.n, 0);
  p[3] = 64; /* announced 64, none present */
  assert_int_equal(decode_copy(p, sizeof p, MAXP, &d), PX_ETRUNC);
}

static void test_payload_limit(void **state) {
  (void)state;
  static const int types[] = {PX_MSG_GOSSIP, PX_MSG_REQUEST, PX_MSG_RESPONSE};
  for (size_t t = 0; t < PX_ARRAY_LEN(types); t++) {
    px_msg_t m, d;
    px_buf_t b;
    build(types[t], &m, &b);
    size_t plen = types[t] == PX_MSG_GOSSIP    ? m.u.gossip.payload_len
                  : types[t] == PX_MSG_REQUEST ? m.u.request.payload_len
                                               : m.u.response.payload_len;
    assert_int_equal(decode_copy(b.data, b.len, plen, &d), 0);
    assert_int_equal(decode_copy(b.data, b.len, plen - 1, &d), PX_ETOOBIG);
    assert_int_equal(decode_copy(b.data, b.len, 0, &d), PX_ETOOBIG);
    px_buf_release(&b);
  }
}

/* Offset of a string's u32 length in an encoded HELLO / BYE. */
#define HELLO_NETWORK_OFF (3 + 4 + 32 + 64)
#define BYE_REASON_OFF (3 + 2)

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void test_string_limits(void **state) {
  (void)state;
  px_msg_t d;
  px_buf_t b;
  px_writer_t w;

  /* HELLO.network: 31 chars fit, 32 do not. */
  for (size_t n = PX_NETWORK_MAX - 1; n <= PX_NETWORK_MAX; n++) {
    char s[PX_NETWORK_MAX + 1];
    memset(s, 'x', n);
    s[n] = '\0';
    px_buf_init(&b, 0);
    px_writer_init(&w, &b);
    px_writer_u16(&w, PX_MSG_HELLO);
    px_writer_u8(&w, PX_MSG_VERSION);
    px_writer_u32(&w, 1);
    uint8_t z[96] = {0};
    px_writer_fixed(&w, z, sizeof z);
    px_writer_str(&w, s);
    px_writer_str(&w, "");
    assert_int_equal(px_writer_finish(&w), 0);
    int rc = decode_copy(b.data, b.len, 0, &d);
    assert_int_equal(rc, n < PX_NETWORK_MAX ? 0 : PX_ETOOBIG);
    px_buf_release(&b);
  }

  /* HELLO.listen: 63 fit, 64 do not. */
  for (size_t n = PX_ADDR_MAX - 1; n <= PX_ADDR_MAX; n++) {
    char s[PX_ADDR_MAX + 1];
    memset(s, 'a', n);
    s[n] = '\0';
    px_buf_init(&b, 0);
    px_writer_init(&w, &b);
    px_writer_u16(&w, PX_MSG_HELLO);
    px_writer_u8(&w, PX_MSG_VERSION);
    px_writer_u32(&w, 1);
    uint8_t z[96] = {0};
    px_writer_fixed(&w, z, sizeof z);
    px_writer_str(&w, "net");
    px_writer_str(&w, s);
    assert_int_equal(px_writer_finish(&w), 0);
    assert_int_equal(decode_copy(b.data, b.len, 0, &d),
                     n < PX_ADDR_MAX ? 0 : PX_ETOOBIG);
    px_buf_release(&b);
  }

  /* BYE.reason: 127 fit, 128 do not; a huge announced length is too big,
   * not truncated. */
  for (size_t n = PX_REASON_MAX - 1; n <= PX_REASON_MAX; n++) {
    char s[PX_REASON_MAX + 1];
    memset(s, 'r', n);
    s[n] = '\0';
    px_buf_init(&b, 0);
    px_writer_init(&w, &b);
    px_writer_u16(&w, PX_MSG_BYE);
    px_writer_u8(&w, PX_MSG_VERSION);
    px_writer_u16(&w, 0);
    px_writer_str(&w, s);
    assert_int_equal(px_writer_finish(&w), 0);
    assert_int_equal(decode_copy(b.data, b.len, 0, &d),
                     n < PX_REASON_MAX ? 0 : PX_ETOOBIG);
    put_u32(b.data + BYE_REASON_OFF, 0xffffffffu);
    assert_int_equal(decode_copy(b.data, b.len, 0, &d), PX_ETOOBIG);
    px_buf_release(&b);
  }

  /* PEX addr too long inside the list. */
  px_msg_t m;
  build(PX_MSG_PEX_RESP, &m, &b);
  /* first peer's addr length sits after envelope, n and pk */
  put_u32(b.data + 3 + 4 + 32, PX_ADDR_MAX);
  assert_int_equal(decode_copy(b.data, b.len, MAXP, &d), PX_ETOOBIG);
  px_buf_release(&b);
}

static void test_nonprintable_string(void **state) {
  (void)state;
  static const uint8_t bad[] = {0x00, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xff};
  px_msg_t m, d;
  px_buf_t b;
  build(PX_MSG_HELLO, &m, &b);
  assert_int_equal(decode_copy(b.data, b.len, 0, &d), 0);
  /* network is "plexus-test"; its first byte follows the u32 length */
  for (size_t i = 0; i < PX_ARRAY_LEN(bad); i++) {
    uint8_t save = b.data[HELLO_NETWORK_OFF + 4 + 3];
    b.data[HELLO_NETWORK_OFF + 4 + 3] = bad[i];
    assert_int_equal(decode_copy(b.data, b.len, 0, &d), PX_EDECODE);
    assert_true(msg_is_zero(&d));
    b.data[HELLO_NETWORK_OFF + 4 + 3] = save;
  }
  /* The printable boundaries themselves are fine. */
  b.data[HELLO_NETWORK_OFF + 4] = 0x20;
  b.data[HELLO_NETWORK_OFF + 5] = 0x7e;
  assert_int_equal(decode_copy(b.data, b.len, 0, &d), 0);
  assert_int_equal(d.u.hello.network[0], ' ');
  assert_int_equal(d.u.hello.network[1], '~');
  px_buf_release(&b);

  build(PX_MSG_BYE, &m, &b);
  b.data[b.len - 1] = 0x7f;
  assert_int_equal(decode_copy(b.data, b.len, 0, &d), PX_EDECODE);
  px_buf_release(&b);
}

static void test_hello_proto_zero(void **state) {
  (void)state;
  px_msg_t m, d;
  px_buf_t b;
  build(PX_MSG_HELLO, &m, &b);
  put_u32(b.data + 3, 0);
  assert_int_equal(decode_copy(b.data, b.len, 0, &d), PX_EDECODE);
  /* Also when the rest is missing: the semantic error came first. */
  assert_int_equal(decode_copy(b.data, 7, 0, &d), PX_EDECODE);
  px_buf_release(&b);
}

static void test_huge_length_field(void **state) {
  (void)state;
  px_msg_t m, d;
  px_buf_t b;
  /* GOSSIP payload length = 0xFFFFFFFF with 3 real bytes behind it. */
  build(PX_MSG_GOSSIP, &m, &b);
  size_t len_off = 3 + 2 + 1 + 32 + 8;
  put_u32(b.data + len_off, 0xffffffffu);
  assert_int_equal(decode_copy(b.data, b.len, MAXP, &d), PX_ETOOBIG);
  assert_int_equal(decode_copy(b.data, b.len, SIZE_MAX, &d), PX_ETRUNC);
  assert_int_equal(decode_copy(b.data, len_off + 4, SIZE_MAX, &d), PX_ETRUNC);
  px_buf_release(&b);

  /* Raw reader: every length near the top of u32. */
  static const uint32_t lens[] = {0xffffffffu, 0xfffffffeu, 0x80000000u, 5};
  for (size_t i = 0; i < PX_ARRAY_LEN(lens); i++) {
    uint8_t *p = malloc(8);
    assert_non_null(p);
    put_u32(p, lens[i]);
    memset(p + 4, 'z', 4);
    px_reader_t r;
    const uint8_t *out = (const uint8_t *)1;
    size_t n = 99;
    px_reader_init(&r, p, 8);
    px_reader_bytes(&r, &out, &n, SIZE_MAX);
    assert_int_equal(px_reader_finish(&r), PX_ETRUNC);
    assert_null(out);
    assert_int_equal(n, 0);
    px_reader_init(&r, p, 8);
    px_reader_bytes(&r, &out, &n, 4);
    assert_int_equal(px_reader_finish(&r), PX_ETOOBIG);
    char s[8];
    px_reader_init(&r, p, 8);
    px_reader_str(&r, s, sizeof s);
    /* 5 fits in s[8] but only 4 bytes follow: truncated. */
    assert_int_equal(px_reader_finish(&r),
                     lens[i] >= sizeof s ? PX_ETOOBIG : PX_ETRUNC);
    assert_string_equal(s, "");
    free(p);
  }
}

/* ---- encoder refusals, writer cap, allocation failure ----------------------
 */

static void test_encoder_refuses_invalid(void **state) {
  (void)state;
  px_msg_t m;
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_buf_append(&b, "xy", 2), 0);

  make_sample(PX_MSG_HELLO, &m);
  m.u.hello.proto = 0;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_HELLO, &m);
  memset(m.u.hello.network, 'a', sizeof m.u.hello.network); /* no NUL */
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_HELLO, &m);
  m.u.hello.listen[2] = '\n';
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_PEX_RESP, &m);
  m.u.pex.n = PX_PEX_MAX + 1;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_BYE, &m);
  m.u.bye.reason[0] = (char)0x80;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_GOSSIP, &m);
  m.u.gossip.payload = NULL;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  make_sample(PX_MSG_PING, &m);
  m.type = (px_msg_type_t)0;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  m.type = (px_msg_type_t)11;
  assert_int_equal(px_msg_encode(&m, &b), PX_EINVAL);
  assert_int_equal(px_msg_encode(NULL, &b), PX_EINVAL);
  assert_int_equal(px_msg_encode(&m, NULL), PX_EINVAL);
  /* Nothing was appended by any failed encode. */
  assert_int_equal(b.len, 2);

  /* Encode appends after existing content. */
  make_sample(PX_MSG_PING, &m);
  assert_int_equal(px_msg_encode(&m, &b), 0);
  assert_int_equal(b.len, 2 + 11);
  assert_memory_equal(b.data, "xy", 2);
  px_buf_release(&b);
}

static void test_writer_cap(void **state) {
  (void)state;
  px_msg_t m;
  px_buf_t b;
  px_buf_t full;
  build(PX_MSG_GOSSIP, &m, &full);

  /* Every cap below the encoded size fails and leaves the buffer empty. */
  for (size_t cap = 1; cap < full.len; cap++) {
    px_buf_init(&b, cap);
    assert_int_equal(px_msg_encode(&m, &b), PX_ETOOBIG);
    assert_int_equal(b.len, 0);
    px_buf_release(&b);
  }
  px_buf_init(&b, full.len);
  assert_int_equal(px_msg_encode(&m, &b), 0);
  assert_bytes_equal(b.data, b.len, full.data, full.len);
  px_buf_release(&b);
  px_buf_release(&full);

  /* The raw writer: sticky, later writes do nothing. */
  px_writer_t w;
  px_buf_init(&b, 5);
  px_writer_init(&w, &b);
  px_writer_u32(&w, 1);
  px_writer_u16(&w, 2); /* 6 > 5 */
  px_writer_u8(&w, 3);  /* would fit, but the error is sticky */
  assert_int_equal(px_writer_finish(&w), PX_ETOOBIG);
  assert_int_equal(b.len, 4);
  px_buf_release(&b);

  /* Strings the reader would reject are refused. */
  px_buf_init(&b, 0);
  px_writer_init(&w, &b);
  px_writer_str(&w, "tab\there");
  assert_int_equal(px_writer_finish(&w), PX_EINVAL);
  assert_int_equal(b.len, 0);
  px_writer_init(&w, &b);
  px_writer_str(&w, NULL);
  assert_int_equal(px_writer_finish(&w), PX_EINVAL);
  px_writer_init(&w, NULL);
  px_writer_u8(&w, 1);
  assert_int_equal(px_writer_finish(&w), PX_EINVAL);
  px_buf_release(&b);
}

static void *fail_malloc(size_t n, void *ud) {
  (void)n;
  (void)ud;
  return NULL;
}
static void *fail_realloc(void *p, size_t n, void *ud) {
  (void)p;
  (void)n;
  (void)ud;
  return NULL;
}
static void plain_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static void test_encode_nomem(void **state) {
  (void)state;
  px_allocator_t a = {fail_malloc, fail_realloc, plain_free, NULL};
  px_msg_t m;
  px_buf_t b;
  make_sample(PX_MSG_HELLO, &m);
  px_buf_init(&b, 0);
  px_set_allocator(&a);
  int rc = px_msg_encode(&m, &b);
  px_set_allocator(NULL);
  assert_int_equal(rc, PX_ENOMEM);
  assert_int_equal(b.len, 0);
  px_buf_release(&b);
}

/* ---- reader primitives ------------------------------------------------------
 */

static void test_reader_integers(void **state) {
  (void)state;
  static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                               0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
                               0x0f, 0xfe, 0xff, 0xff, 0xff};
  px_reader_t r;
  px_reader_init(&r, in, sizeof in);
  assert_int_equal(px_reader_u8(&r), 0x01);
  assert_int_equal(px_reader_u16(&r), 0x0302);
  assert_int_equal(px_reader_u32(&r), 0x07060504);
  assert_true(px_reader_u64(&r) == 0x0f0e0d0c0b0a0908ull);
  assert_int_equal(px_reader_i32(&r), -2);
  assert_int_equal(px_reader_remaining(&r), 0);
  assert_int_equal(px_reader_finish(&r), 0);

  /* Writer gives the same bytes. */
  px_buf_t b;
  px_writer_t w;
  px_buf_init(&b, 0);
  px_writer_init(&w, &b);
  px_writer_u8(&w, 0x01);
  px_writer_u16(&w, 0x0302);
  px_writer_u32(&w, 0x07060504);
  px_writer_u64(&w, 0x0f0e0d0c0b0a0908ull);
  px_writer_i32(&w, -2);
  assert_int_equal(px_writer_finish(&w), 0);
  assert_bytes_equal(b.data, b.len, in, sizeof in);
  px_buf_release(&b);

  int32_t vals[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX};
  for (size_t i = 0; i < PX_ARRAY_LEN(vals); i++) {
    uint8_t buf[4];
    px_buf_init(&b, 0);
    px_writer_init(&w, &b);
    px_writer_i32(&w, vals[i]);
    assert_int_equal(px_writer_finish(&w), 0);
    memcpy(buf, b.data, 4);
    px_buf_release(&b);
    px_reader_init(&r, buf, 4);
    assert_int_equal(px_reader_i32(&r), vals[i]);
    assert_int_equal(px_reader_finish(&r), 0);
  }
}

static void test_reader_sticky(void **state) {
  (void)state;
  static const uint8_t in[] = {0x03, 0x00, 0x00, 0x00, 'a',
                               'b',  'c',  0x11, 0x22, 0x33};
  px_reader_t r;
  px_reader_init(&r, in, 3);
  assert_int_equal(px_reader_u32(&r), 0); /* 3 bytes only */
  assert_int_equal(r.err, PX_ETRUNC);
  assert_int_equal(r.pos, 0);
  /* Bytes are there, but every read now yields zero. */
  assert_int_equal(px_reader_u8(&r), 0);
  assert_int_equal(px_reader_u16(&r), 0);
  assert_true(px_reader_u64(&r) == 0);
  assert_int_equal(px_reader_i32(&r), 0);
  uint8_t fx[2] = {0xaa, 0xaa};
  px_reader_fixed(&r, fx, 2);
  assert_int_equal(fx[0], 0);
  assert_int_equal(fx[1], 0);
  const uint8_t *bp = in;
  size_t bn = 7;
  px_reader_bytes(&r, &bp, &bn, 100);
  assert_null(bp);
  assert_int_equal(bn, 0);
  char s[8] = "junk";
  px_reader_str(&r, s, sizeof s);
  assert_string_equal(s, "");
  assert_int_equal(px_reader_remaining(&r), 0);
  assert_int_equal(r.pos, 0);
  /* First error wins. */
  px_reader_fail(&r, PX_EDECODE);
  assert_int_equal(px_reader_finish(&r), PX_ETRUNC);

  /* px_reader_fail sets, 0 is ignored, later errors do not replace it. */
  px_reader_init(&r, in, sizeof in);
  px_reader_fail(&r, 0);
  assert_int_equal(r.err, 0);
  px_reader_str(&r, s, sizeof s);
  assert_string_equal(s, "abc");
  px_reader_fail(&r, PX_EDECODE);
  px_reader_fail(&r, PX_ETOOBIG);
  assert_int_equal(px_reader_u8(&r), 0);
  assert_int_equal(px_reader_finish(&r), PX_EDECODE);

  /* Trailing bytes are reported by finish only. */
  px_reader_init(&r, in, sizeof in);
  px_reader_bytes(&r, &bp, &bn, 3);
  assert_int_equal(bn, 3);
  assert_memory_equal(bp, "abc", 3);
  assert_true(bp == in + 4);
  assert_int_equal(px_reader_remaining(&r), 3);
  assert_int_equal(px_reader_finish(&r), PX_ETRAILING);

  /* Too-big is checked before remaining; string too long for cap. */
  px_reader_init(&r, in, sizeof in);
  px_reader_str(&r, s, 3); /* "abc" needs 4 with the NUL */
  assert_int_equal(px_reader_finish(&r), PX_ETOOBIG);
  assert_string_equal(s, "");
  px_reader_init(&r, in, sizeof in);
  px_reader_str(&r, s, 0);
  assert_int_equal(px_reader_finish(&r), PX_EINVAL);

  /* NULL input with a length is refused; with zero length it is empty. */
  px_reader_init(&r, NULL, 5);
  assert_int_equal(px_reader_u8(&r), 0);
  assert_int_equal(px_reader_finish(&r), PX_EINVAL);
  px_reader_init(&r, NULL, 0);
  assert_int_equal(px_reader_finish(&r), 0);
  px_reader_fixed(&r, fx, 0);
  assert_int_equal(px_reader_finish(&r), 0);
}

static void test_reader_empty_bytes(void **state) {
  (void)state;
  static const uint8_t in[] = {0, 0, 0, 0};
  px_reader_t r;
  const uint8_t *bp = NULL;
  size_t bn = 9;
  px_reader_init(&r, in, sizeof in);
  px_reader_bytes(&r, &bp, &bn, 0);
  assert_int_equal(px_reader_finish(&r), 0);
  assert_int_equal(bn, 0);
  char s[1] = {'x'};
  px_reader_init(&r, in, sizeof in);
  px_reader_str(&r, s, 1);
  assert_int_equal(px_reader_finish(&r), 0);
  assert_int_equal(s[0], '\0');
}

static void test_type_names(void **state) {
  (void)state;
  static const char *const names[] = {"hello",   "ping",     "pong",
                                      "pex_req", "pex_resp", "gossip",
                                      "request", "response", "bye"};
  for (size_t i = 0; i < PX_ARRAY_LEN(names); i++)
    assert_string_equal(px_msg_type_name((int)i + 1), names[i]);
  assert_string_equal(px_msg_type_name(0), "unknown");
  assert_string_equal(px_msg_type_name(10), "direct");
  assert_string_equal(px_msg_type_name(11), "unknown");
  assert_string_equal(px_msg_type_name(-1), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_all_types),
      cmocka_unit_test(test_roundtrip_extremes),
      cmocka_unit_test(test_golden_ping),
      cmocka_unit_test(test_golden_gossip),
      cmocka_unit_test(test_golden_bye_pexreq),
      cmocka_unit_test(test_gossip_id),
      cmocka_unit_test(test_every_truncation_fails),
      cmocka_unit_test(test_trailing_byte),
      cmocka_unit_test(test_envelope_errors),
      cmocka_unit_test(test_pex_count),
      cmocka_unit_test(test_payload_limit),
      cmocka_unit_test(test_string_limits),
      cmocka_unit_test(test_nonprintable_string),
      cmocka_unit_test(test_hello_proto_zero),
      cmocka_unit_test(test_huge_length_field),
      cmocka_unit_test(test_encoder_refuses_invalid),
      cmocka_unit_test(test_writer_cap),
      cmocka_unit_test(test_encode_nomem),
      cmocka_unit_test(test_reader_integers),
      cmocka_unit_test(test_reader_sticky),
      cmocka_unit_test(test_reader_empty_bytes),
      cmocka_unit_test(test_type_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
