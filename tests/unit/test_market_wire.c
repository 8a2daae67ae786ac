/*
 * test_market_wire.c — unit tests for the node side of the market that run
 * without a chain: the wire codecs of market_rt.h (round trip, one
 * encoding per value, rejection of every truncation, trailing bytes and
 * out-of-range field), the blob store (put / has / read / chunk with audit
 * paths, damage detection), the chunk fetcher between two real p2p cores
 * (every chunk verified, a bad chunk caught, a silent peer retried then
 * given up), and px_shard_run: logits bit-exact with px_net_forward, the
 * per-sample trace independent of batch size, thread count and SIMD level,
 * its n = 1 leaves equal to px_trace_add's and accepted by
 * px_dispute_verdict, and the TEST ONLY perturbation parting the trace at
 * the perturbed layer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/crypto.h"
#include "plexus/market.h"
#include "plexus/model.h"
#include "plexus/p2p.h"
#include "node/market_rt.h"

static void fill(void *p, size_t n, uint64_t seed) {
  px_rng_t r;
  px_rng_seed(&r, seed);
  px_rng_fill(&r, p, n);
}

/* Every strict prefix and one extra byte must fail to decode. */
#define CHECK_STRICT(dec, buf, T)                                              \
  do {                                                                         \
    T tmp_;                                                                    \
    for (size_t k_ = 0; k_ < (buf).len; k_++)                                  \
      assert_int_not_equal(dec((buf).data, k_, &tmp_), 0);                     \
    uint8_t *x_ = malloc((buf).len + 1);                                       \
    memcpy(x_, (buf).data, (buf).len);                                         \
    x_[(buf).len] = 0;                                                         \
    assert_int_equal(dec(x_, (buf).len + 1, &tmp_), PX_ETRAILING);             \
    x_[0] ^= 1; /* tag */                                                      \
    assert_int_not_equal(dec(x_, (buf).len, &tmp_), 0);                        \
    x_[0] ^= 1;                                                                \
    x_[2] = 2; /* version */                                                   \
    assert_int_equal(dec(x_, (buf).len, &tmp_), PX_EVERSION);                  \
    free(x_);                                                                  \
  } while (0)

/* ---- codecs ---------------------------------------------------------------
 */

static void test_chunk_codecs(void **state) {
  (void)state;
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  px_mkt_chunk_req_t q, q2;
  memset(&q, 0, sizeof q);
  fill(q.root, 32, 1);
  q.size = 3 * PX_BLOB_CHUNK + 5;
  q.index = 3;
  assert_int_equal(px_mkt_chunk_req_encode(&q, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 8 + 8);
  assert_int_equal(px_mkt_chunk_req_decode(b.data, b.len, &q2), 0);
  assert_memory_equal(&q, &q2, sizeof q);
  CHECK_STRICT(px_mkt_chunk_req_decode, b, px_mkt_chunk_req_t);
  /* index past the last chunk, empty blob: refused both ways */
  q.index = 4;
  assert_int_equal(px_mkt_chunk_req_encode(&q, &b2), PX_EINVAL);
  b.data[3 + 32 + 8] = 4;
  assert_int_equal(px_mkt_chunk_req_decode(b.data, b.len, &q2), PX_EDECODE);
  q.index = 0;
  q.size = 0;
  assert_int_equal(px_mkt_chunk_req_encode(&q, &b2), PX_EINVAL);

  px_mkt_chunk_t *c = calloc(1, sizeof *c), *c2 = calloc(1, sizeof *c2);
  uint8_t data[1000];
  fill(data, sizeof data, 2);
  fill(c->root, 32, 3);
  c->index = 7;
  c->data = data;
  c->len = sizeof data;
  c->depth = 3;
  fill(c->path, 3 * 32, 4);
  px_buf_reset(&b);
  assert_int_equal(px_mkt_chunk_encode(c, &b), 0);
  assert_int_equal(px_mkt_chunk_decode(b.data, b.len, c2), 0);
  assert_int_equal(c2->len, sizeof data);
  assert_memory_equal(c2->data, data, sizeof data);
  assert_ptr_equal(c2->data, b.data + 3 + 32 + 8 + 4); /* zero copy */
  assert_int_equal(c2->depth, 3);
  assert_memory_equal(c2->path, c->path, 3 * 32);
  px_buf_reset(&b2);
  assert_int_equal(px_mkt_chunk_encode(c2, &b2), 0);
  assert_int_equal(b2.len, b.len);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_mkt_chunk_decode, b, px_mkt_chunk_t);
  /* depth over the limit, empty chunk */
  b.data[b.len - 3 * 32 - 1] = PX_MERKLE_MAX_DEPTH + 1;
  assert_int_not_equal(px_mkt_chunk_decode(b.data, b.len, c2), 0);
  c->len = 0;
  assert_int_equal(px_mkt_chunk_encode(c, &b2), PX_EINVAL);
  c->len = PX_BLOB_CHUNK + 1;
  assert_int_equal(px_mkt_chunk_encode(c, &b2), PX_EINVAL);
  free(c);
  free(c2);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_lease_codecs(void **state) {
  (void)state;
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  px_mkt_lease_t l, l2;
  memset(&l, 0, sizeof l);
  fill(l.job_id, 32, 5);
  l.shard = 17;
  l.role = PX_MKT_ROLE_AUDITOR;
  l.model_size = 123456;
  l.budget_ms = 60000;
  assert_int_equal(px_mkt_lease_encode(&l, &b), 0);
  assert_int_equal(px_mkt_lease_decode(b.data, b.len, &l2), 0);
  assert_memory_equal(&l, &l2, sizeof l);
  CHECK_STRICT(px_mkt_lease_decode, b, px_mkt_lease_t);
  /* role 0 and 3, budget 0, shard past the job limit */
  size_t role_at = 3 + 32 + 4;
  b.data[role_at] = 0;
  assert_int_equal(px_mkt_lease_decode(b.data, b.len, &l2), PX_EDECODE);
  b.data[role_at] = 3;
  assert_int_equal(px_mkt_lease_decode(b.data, b.len, &l2), PX_EDECODE);
  l.budget_ms = 0;
  assert_int_equal(px_mkt_lease_encode(&l, &b2), PX_EINVAL);
  l.budget_ms = 1;
  l.shard = PX_MARKET_MAX_SHARDS;
  assert_int_equal(px_mkt_lease_encode(&l, &b2), PX_EINVAL);

  px_mkt_lease_reply_t r, r2;
  memset(&r, 0, sizeof r);
  fill(r.job_id, 32, 6);
  r.shard = 2;
  r.reason = PX_MKT_BUSY;
  snprintf(r.message, sizeof r.message, "all 2 slots are taken");
  px_buf_reset(&b);
  assert_int_equal(px_mkt_lease_reply_encode(&r, &b), 0);
  assert_int_equal(px_mkt_lease_reply_decode(b.data, b.len, &r2), 0);
  assert_memory_equal(&r, &r2, sizeof r);
  CHECK_STRICT(px_mkt_lease_reply_decode, b, px_mkt_lease_reply_t);
  b.data[3 + 32 + 4] = PX_MKT_INTERNAL + 1;
  assert_int_equal(px_mkt_lease_reply_decode(b.data, b.len, &r2), PX_EDECODE);
  /* a control character in the message is refused by the writer */
  r.message[0] = '\n';
  assert_int_not_equal(px_mkt_lease_reply_encode(&r, &b2), 0);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_result_codecs(void **state) {
  (void)state;
  px_keypair_t kp;
  uint8_t seed[32] = {9};
  assert_int_equal(px_key_from_seed(&kp, seed), 0);
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  px_mkt_result_t m, m2;
  memset(&m, 0, sizeof m);
  m.role = PX_MKT_ROLE_WORKER;
  fill(m.c.job_id, 32, 7);
  m.c.shard = 4;
  fill(m.c.output, 32, 8);
  fill(m.c.trace_root, 32, 9);
  m.c.n_layers = 9;
  assert_int_equal(px_commitment_sign(&m.c, &kp), 0);
  float logits[3 * 10];
  for (int i = 0; i < 30; i++)
    logits[i] = (float)i * 0.25f - 3.0f;
  m.logits = (const uint8_t *)logits;
  m.logits_len = sizeof logits;
  assert_int_equal(px_mkt_result_encode(&m, &b), 0);
  assert_int_equal(px_mkt_result_decode(b.data, b.len, &m2), 0);
  assert_memory_equal(&m.c, &m2.c, sizeof m.c);
  assert_int_equal(px_commitment_verify(&m2.c), 0);
  assert_int_equal(m2.logits_len, sizeof logits);
  assert_memory_equal(m2.logits, logits, sizeof logits);
  assert_int_equal(px_mkt_result_encode(&m2, &b2), 0);
  assert_int_equal(b2.len, b.len);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_mkt_result_decode, b, px_mkt_result_t);
  /* logits not a whole number of floats */
  m.logits_len = 7;
  assert_int_equal(px_mkt_result_encode(&m, &b2), PX_EINVAL);
  m.logits_len = 0;
  assert_int_equal(px_mkt_result_encode(&m, &b2), PX_EINVAL);
  /* a failure: job and shard, nothing else */
  memset(&m, 0, sizeof m);
  m.role = PX_MKT_ROLE_AUDITOR;
  m.status = PX_MKT_BAD_MODEL;
  fill(m.c.job_id, 32, 10);
  m.c.shard = 11;
  px_buf_reset(&b);
  assert_int_equal(px_mkt_result_encode(&m, &b), 0);
  assert_int_equal(b.len, 3 + 2 + 32 + 4);
  assert_int_equal(px_mkt_result_decode(b.data, b.len, &m2), 0);
  assert_memory_equal(&m, &m2, sizeof m);
  CHECK_STRICT(px_mkt_result_decode, b, px_mkt_result_t);
  b.data[4] = PX_MKT_INTERNAL + 1;
  assert_int_equal(px_mkt_result_decode(b.data, b.len, &m2), PX_EDECODE);
  b.data[4] = PX_MKT_BAD_MODEL;
  b.data[3] = 0; /* role */
  assert_int_equal(px_mkt_result_decode(b.data, b.len, &m2), PX_EDECODE);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_reveal_codecs(void **state) {
  (void)state;
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  px_mkt_reveal_req_t q, q2;
  memset(&q, 0, sizeof q);
  fill(q.job_id, 32, 11);
  q.shard = 3;
  q.layer = 5;
  assert_int_equal(px_mkt_reveal_req_encode(&q, &b), 0);
  assert_int_equal(px_mkt_reveal_req_decode(b.data, b.len, &q2), 0);
  assert_memory_equal(&q, &q2, sizeof q);
  CHECK_STRICT(px_mkt_reveal_req_decode, b, px_mkt_reveal_req_t);
  q.layer = PX_MARKET_MAX_LAYERS;
  assert_int_equal(px_mkt_reveal_req_encode(&q, &b2), PX_EINVAL);

  uint8_t leaves[5][32];
  fill(leaves, sizeof leaves, 12);
  px_mkt_reveal_t v, v2;
  memset(&v, 0, sizeof v);
  fill(v.job_id, 32, 13);
  v.shard = 1;
  v.layer = 2;
  v.n = 5;
  v.leaves = (const uint8_t(*)[32])leaves;
  px_buf_reset(&b);
  assert_int_equal(px_mkt_reveal_encode(&v, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 12 + 5 * 32);
  assert_int_equal(px_mkt_reveal_decode(b.data, b.len, &v2), 0);
  assert_int_equal(v2.n, 5);
  assert_memory_equal(v2.leaves, leaves, sizeof leaves);
  px_buf_reset(&b2);
  assert_int_equal(px_mkt_reveal_encode(&v2, &b2), 0);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_mkt_reveal_decode, b, px_mkt_reveal_t);
  v.n = 0;
  assert_int_equal(px_mkt_reveal_encode(&v, &b2), PX_EINVAL);
  v.n = PX_MKT_MAX_SHARD_SAMPLES + 1;
  assert_int_equal(px_mkt_reveal_encode(&v, &b2), PX_EINVAL);
  px_buf_release(&b);
  px_buf_release(&b2);
}

/* ---- blob store
 * -------------------------------------------------------------- */

static char *tmp_home(void) {
  char *d = strdup("/tmp/px_mktwire_XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void rm_rf(const char *d) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  assert_int_equal(system(cmd), 0);
}

static void test_blobstore(void **state) {
  (void)state;
  char *home = tmp_home();
  px_blobstore_t *bs;
  assert_int_equal(px_blobstore_open(home, &bs), 0);
  size_t size = 3 * PX_BLOB_CHUNK + 4321;
  uint8_t *blob = malloc(size);
  fill(blob, size, 20);
  uint8_t root[32], expect[32];
  assert_int_equal(px_blob_root(blob, size, expect), 0);
  assert_int_equal(px_blobstore_has(bs, expect, size), 0);
  assert_int_equal(px_blobstore_put(bs, blob, size, root), 0);
  assert_memory_equal(root, expect, 32);
  assert_int_equal(px_blobstore_has(bs, root, size), 1);
  assert_int_equal(px_blobstore_has(bs, root, size - 1), 0);
  assert_int_equal(px_blobstore_put(bs, blob, size, root), 0); /* again */
  uint8_t *back;
  size_t n;
  assert_int_equal(px_blobstore_read(bs, root, &back, &n), 0);
  assert_int_equal(n, size);
  assert_memory_equal(back, blob, size);
  px_free(back);
  /* every chunk with its audit path verifies, through the wire encoding */
  px_mkt_chunk_t *c = calloc(1, sizeof *c), *d = calloc(1, sizeof *d);
  px_buf_t scratch, wire;
  px_buf_init(&scratch, 0);
  px_buf_init(&wire, 0);
  for (uint64_t i = 0; i < 4; i++) {
    assert_int_equal(px_blobstore_chunk(bs, root, size, i, c, &scratch), 0);
    assert_int_equal(c->len, px_blob_chunk_len(size, i));
    assert_memory_equal(c->data, blob + i * PX_BLOB_CHUNK, c->len);
    px_buf_reset(&wire);
    assert_int_equal(px_mkt_chunk_encode(c, &wire), 0);
    assert_int_equal(px_mkt_chunk_decode(wire.data, wire.len, d), 0);
    assert_int_equal(px_blob_verify_chunk(root, size, d->index, d->data, d->len,
                                          (const uint8_t(*)[32])d->path,
                                          d->depth),
                     0);
  }
  assert_int_equal(px_blobstore_chunk(bs, root, size, 4, c, &scratch),
                   PX_EINVAL);
  uint8_t other[32];
  fill(other, 32, 21);
  assert_int_equal(px_blobstore_chunk(bs, other, size, 0, c, &scratch),
                   PX_ENOENT);
  assert_int_equal(px_blobstore_read(bs, other, &back, &n), PX_ENOENT);
  /* no temporary files left behind */
  char cmd[300];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s/blobs' | wc -l) -eq 1", home);
  assert_int_equal(system(cmd), 0);
  px_blobstore_free(bs);
  /* a file damaged on disk is caught before anything is served from it */
  char path[512];
  assert_int_equal(px_blobstore_open(home, &bs), 0);
  assert_int_equal(px_blobstore_path(bs, root, path, sizeof path), 0);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, PX_BLOB_CHUNK + 10, SEEK_SET);
  fputc(blob[PX_BLOB_CHUNK + 10] ^ 0xff, f);
  fclose(f);
  assert_int_equal(px_blobstore_chunk(bs, root, size, 0, c, &scratch),
                   PX_EAUTH);
  px_blobstore_free(bs);
  px_buf_release(&scratch);
  px_buf_release(&wire);
  free(c);
  free(d);
  free(blob);
  rm_rf(home);
  free(home);
}

/* ---- fetcher between two real p2p cores -------------------------------------
 * Node 0 fetches; node 1 serves chunks from a blob store as the market shell
 * does (mode 0), corrupts one byte of chunk 1 (mode 1), or never answers
 * (mode 2). */

typedef struct {
  px_p2p_t *p[2];
  px_keypair_t kp[2];
  uint64_t conn[2];
  uint64_t now;
  px_blobstore_t *bs;
  px_fetch_t *f;
  int mode;
  int requests; /* chunk requests node 1 saw */
} pair_t;

static void pair_run(pair_t *t) {
  for (int busy = 1, rounds = 0; busy && rounds < 100000; rounds++) {
    busy = 0;
    for (int i = 0; i < 2; i++) {
      px_p2p_fx_t f;
      while (px_p2p_poll(t->p[i], &f)) {
        busy = 1;
        switch (f.kind) {
        case PX_P2P_FX_DIAL: {
          uint64_t cb = 0;
          assert_int_equal(
              px_p2p_on_inbound(t->p[1], "10.0.0.1:40000", t->now, &cb), 0);
          t->conn[0] = f.conn;
          t->conn[1] = cb;
          px_p2p_on_dialed(t->p[0], f.conn, f.addr, t->now);
          break;
        }
        case PX_P2P_FX_SEND:
          px_p2p_on_data(t->p[1 - i], t->conn[1 - i], f.data.data, f.data.len,
                         t->now);
          break;
        case PX_P2P_FX_REQUEST: {
          assert_int_equal(i, 1);
          assert_int_equal(f.method, PX_MKT_METHOD_CHUNK);
          t->requests++;
          if (t->mode == 2) break;
          px_mkt_chunk_req_t q;
          px_mkt_chunk_t *c = calloc(1, sizeof *c);
          px_buf_t s, b;
          px_buf_init(&s, 0);
          px_buf_init(&b, 0);
          assert_int_equal(px_mkt_chunk_req_decode(f.data.data, f.data.len, &q),
                           0);
          assert_int_equal(
              px_blobstore_chunk(t->bs, q.root, q.size, q.index, c, &s), 0);
          if (t->mode == 1 && q.index == 1) s.data[5] ^= 1;
          assert_int_equal(px_mkt_chunk_encode(c, &b), 0);
          px_p2p_respond(t->p[1], f.node_pk, f.req_id, 0, b.data, b.len);
          px_buf_release(&s);
          px_buf_release(&b);
          free(c);
          break;
        }
        case PX_P2P_FX_RESPONSE:
          assert_int_equal(i, 0);
          assert_int_equal(px_fetch_on_response(t->f, &f, t->now), 1);
          break;
        default:
          break;
        }
        px_p2p_fx_release(&f);
      }
    }
  }
}

static void pair_advance(pair_t *t, uint64_t ms) {
  for (uint64_t k = 0; k < ms; k += 100) {
    t->now += 100;
    px_p2p_tick(t->p[0], t->now);
    px_p2p_tick(t->p[1], t->now);
    if (t->f) px_fetch_tick(t->f, t->now);
    pair_run(t);
  }
}

static void fetch_case(int mode) {
  char *home = tmp_home();
  pair_t t;
  memset(&t, 0, sizeof t);
  t.mode = mode;
  for (int i = 0; i < 2; i++) {
    px_p2p_config_t c;
    px_p2p_config_default(&c);
    snprintf(c.listen, sizeof c.listen, "10.0.0.%d:9000", i + 1);
    c.seed = 7 + (uint64_t)i;
    uint8_t seed[32] = {(uint8_t)(i + 1)};
    assert_int_equal(px_key_from_seed(&t.kp[i], seed), 0);
    c.identity = t.kp[i];
    assert_int_equal(px_p2p_new(&c, &t.p[i]), 0);
  }
  assert_int_equal(px_p2p_add_bootstrap(t.p[0], "10.0.0.2:9000"), 0);
  pair_advance(&t, 300);
  assert_int_equal(px_p2p_peer_count(t.p[0]), 1);
  assert_int_equal(px_blobstore_open(home, &t.bs), 0);
  size_t size = 9 * PX_BLOB_CHUNK + 77;
  uint8_t *blob = malloc(size), root[32];
  fill(blob, size, 30);
  assert_int_equal(px_blobstore_put(t.bs, blob, size, root), 0);
  /* chunks 1..9 (the range a shard's samples might cover) */
  assert_int_equal(
      px_fetch_new(t.p[0], t.kp[1].pk, root, size, 1, 9, 1000, t.now, &t.f), 0);
  assert_int_equal(px_fetch_status(t.f), 0);
  pair_run(&t);
  if (mode == 0) {
    assert_int_equal(px_fetch_status(t.f), 1);
    size_t len;
    const uint8_t *d = px_fetch_data(t.f, &len);
    assert_int_equal(len, size - PX_BLOB_CHUNK);
    assert_memory_equal(d, blob + PX_BLOB_CHUNK, len);
    assert_int_equal(t.requests, 9);
  } else if (mode == 1) {
    assert_int_equal(px_fetch_status(t.f), PX_EAUTH);
    assert_null(px_fetch_data(t.f, NULL));
  } else {
    /* a silent peer: each request times out and is resent, then it fails */
    assert_int_equal(px_fetch_status(t.f), 0);
    pair_advance(&t, 10000);
    assert_int_equal(px_fetch_status(t.f), PX_ETIMEOUT);
    assert_int_equal(t.requests, PX_FETCH_WINDOW * PX_FETCH_RETRIES);
  }
  px_fetch_free(t.f);
  px_blobstore_free(t.bs);
  px_p2p_free(t.p[0]);
  px_p2p_free(t.p[1]);
  free(blob);
  rm_rf(home);
  free(home);
}

static void test_fetch(void **state) {
  (void)state;
  fetch_case(0);
  fetch_case(1);
  fetch_case(2);
}

/* ---- shard execution
 * --------------------------------------------------------- */

static px_net_t *small_cnn(void) {
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_CNN;
  cfg.in_c = 1, cfg.in_h = cfg.in_w = 12, cfg.n_classes = 5;
  cfg.conv[0] = 4, cfg.conv[1] = 6, cfg.n_conv = 2, cfg.kernel = 3;
  cfg.hidden[0] = 16, cfg.n_hidden = 1;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 77);
  return net;
}

enum { NS = 7, IN = 144, NC = 5 };

static void inputs(float *x) {
  for (int i = 0; i < NS * IN; i++)
    x[i] = (float)((i * 53) % 97) / 97.0f - 0.25f;
}

static void test_shard_run(void **state) {
  (void)state;
  px_net_t *net = small_cnn();
  int L = px_net_layer_count(net);
  static float x[NS * IN], ref[NS * NC], logits[NS * NC], one[NC];
  inputs(x);
  px_compute_t *c;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &c), 0);
  assert_int_equal(px_net_forward(net, c, x, NS, ref, NULL), 0);
  px_shard_trace_t tr, t1;
  uint8_t(*lv)[32] = NULL, (*lv1)[32] = NULL;
  assert_int_equal(px_shard_run(net, c, x, NS, logits, &tr, &lv), 0);
  assert_memory_equal(logits, ref, sizeof ref); /* bit-exact */
  assert_int_equal(tr.n_layers, (uint32_t)L);
  assert_memory_equal(tr.output, tr.layer_leaf[L - 1], 32);
  uint8_t root[32], out[32];
  assert_int_equal(
      px_merkle_root((const uint8_t(*)[32])tr.layer_leaf, (size_t)L, root), 0);
  assert_memory_equal(root, tr.trace_root, 32);
  /* output = the requester's check over the logits alone */
  assert_int_equal(px_shard_output_hash(logits, NS, NC, out), 0);
  assert_memory_equal(out, tr.output, 32);
  /* the trace rebuilt from the per-sample leaves */
  assert_int_equal(px_shard_trace_from_leaves((const uint8_t(*)[32])lv,
                                              (uint32_t)L, NS, &t1),
                   0);
  assert_memory_equal(&t1, &tr, sizeof tr);
  /* each sample alone: its n = 1 layer leaves are the batch's per-sample
   * leaves, and equal px_trace_add's leaves of a one-sample forward */
  for (int j = 0; j < NS; j++) {
    assert_int_equal(px_shard_run(net, c, x + j * IN, 1, one, &t1, &lv1), 0);
    assert_memory_equal(one, ref + j * NC, sizeof one);
    px_trace_t pt;
    px_trace_init(&pt, 1);
    assert_int_equal(px_net_forward(net, c, x + j * IN, 1, one, &pt), 0);
    assert_int_equal(pt.n, (size_t)L);
    for (int i = 0; i < L; i++) {
      assert_memory_equal(t1.layer_leaf[i], lv1[i], 32);
      assert_memory_equal(t1.layer_leaf[i], lv[(size_t)i * NS + j], 32);
      assert_memory_equal(t1.layer_leaf[i], pt.leaf[i], 32);
    }
    px_trace_release(&pt);
    px_free(lv1);
  }
  /* bad arguments */
  assert_int_equal(px_shard_run(net, c, x, 0, logits, &t1, NULL), PX_EINVAL);
  assert_int_equal(px_shard_run(net, c, NULL, 1, logits, &t1, NULL), PX_EINVAL);
  px_free(lv);
  px_compute_free(c);
  px_net_free(net);
}

/* The same leaves at every thread count and SIMD level this CPU has. */
static void test_shard_determinism(void **state) {
  (void)state;
  px_net_t *net = small_cnn();
  static float x[NS * IN], logits[NS * NC], l2[NS * NC];
  inputs(x);
  px_shard_trace_t ref, tr;
  px_compute_t *c;
  px_compute_opts_t o = {.simd = PX_SIMD_SCALAR, .threads = 1};
  assert_int_equal(px_compute_new(&o, &c), 0);
  assert_int_equal(px_shard_run(net, c, x, NS, logits, &ref, NULL), 0);
  px_compute_free(c);
  int levels = (int)px_cpu_best_simd();
  for (int s = 0; s <= levels; s++)
    for (int th = 1; th <= 4; th += 3) {
      px_compute_opts_t q = {.simd = s, .threads = th};
      assert_int_equal(px_compute_new(&q, &c), 0);
      assert_int_equal(px_shard_run(net, c, x, NS, l2, &tr, NULL), 0);
      assert_memory_equal(l2, logits, sizeof l2);
      assert_memory_equal(&tr, &ref, sizeof tr);
      px_compute_free(c);
    }
  px_net_free(net);
}

/* The referee (px_dispute_verdict, n = 1) accepts the per-sample leaves: a
 * DISPUTE over sample j of layer i judges an honest claim right. */
static void test_shard_verdict(void **state) {
  (void)state;
  px_net_t *net = small_cnn();
  int L = px_net_layer_count(net);
  static float x[NS * IN], logits[NS * NC];
  inputs(x);
  px_compute_t *c;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &c), 0);
  px_shard_trace_t tr;
  uint8_t(*lv)[32] = NULL;
  assert_int_equal(px_shard_run(net, c, x, NS, logits, &tr, &lv), 0);
  /* the activations of every layer for the batch, kept by a second net */
  px_net_t *ref = small_cnn();
  assert_int_equal(px_net_forward(ref, c, x, NS, NULL, NULL), 0);
  int j = 3;
  for (int i = 0; i < L; i++) {
    const px_layer_t *l = px_net_layer(net, i);
    const float *in;
    uint8_t in_leaf[32];
    if (i == 0) {
      in = x + (size_t)j * IN;
      px_merkle_leaf(in_leaf, in, IN * sizeof(float));
    } else {
      int bn;
      in = px_net_activation(ref, i - 1, &bn) + (size_t)j * l->in_size;
      assert_int_equal(bn, NS);
      memcpy(in_leaf, lv[(size_t)(i - 1) * NS + j], 32);
    }
    px_dispute_layer_t d;
    memset(&d, 0, sizeof d);
    d.layer = (uint32_t)i;
    d.kind = (uint8_t)l->kind;
    d.n = 1;
    d.in_c = (uint32_t)l->in_c, d.in_h = (uint32_t)l->in_h;
    d.in_w = (uint32_t)l->in_w, d.out_c = (uint32_t)l->out_c;
    d.k = (uint32_t)l->k, d.pad = (uint32_t)l->pad;
    d.input = in;
    d.n_input = l->in_size;
    d.weights = l->w, d.n_weights = l->nw;
    d.bias = l->b, d.n_bias = l->nb;
    px_dispute_weights_ref(l->w, l->nw, l->b, l->nb, d.weights_ref);
    memcpy(d.claim[0], lv[(size_t)i * NS + j], 32);
    memset(d.claim[1], 0x5a, 32);
    px_verdict_t v;
    assert_int_equal(px_dispute_verdict(c, &d, in_leaf, 0, &v), 0);
    assert_int_equal(v, PX_VERDICT_A);
  }
  px_free(lv);
  px_net_free(ref);
  px_compute_free(c);
  px_net_free(net);
}

/* TEST ONLY perturbation: the trace agrees below the layer, parts at it,
 * and the logits differ (so a dispute has something to find). */
static void test_shard_perturb(void **state) {
  (void)state;
  px_net_t *net = small_cnn();
  int L = px_net_layer_count(net);
  static float x[NS * IN], good[NS * NC], bad[NS * NC];
  inputs(x);
  px_compute_t *c;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &c), 0);
  px_shard_trace_t a, b;
  assert_int_equal(px_shard_run(net, c, x, NS, good, &a, NULL), 0);
  int at = L / 2;
  assert_int_equal(px_shard_run_fault(net, c, x, NS, bad, &b, NULL, at), 0);
  for (int i = 0; i < at; i++)
    assert_memory_equal(a.layer_leaf[i], b.layer_leaf[i], 32);
  assert_memory_not_equal(a.layer_leaf[at], b.layer_leaf[at], 32);
  assert_memory_not_equal(a.output, b.output, 32);
  assert_memory_not_equal(good, bad, sizeof good);
  /* and the net is left as it was: an honest run matches again */
  assert_int_equal(px_shard_run(net, c, x, NS, bad, &b, NULL), 0);
  assert_memory_equal(&a, &b, sizeof a);
  px_compute_free(c);
  px_net_free(net);
}

int main(void) {
  px_crypto_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunk_codecs),
      cmocka_unit_test(test_lease_codecs),
      cmocka_unit_test(test_result_codecs),
      cmocka_unit_test(test_reveal_codecs),
      cmocka_unit_test(test_blobstore),
      cmocka_unit_test(test_fetch),
      cmocka_unit_test(test_shard_run),
      cmocka_unit_test(test_shard_determinism),
      cmocka_unit_test(test_shard_verdict),
      cmocka_unit_test(test_shard_perturb),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
