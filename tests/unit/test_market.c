/*
 * test_market.c — unit tests for the market core (src/market/): blob
 * chunking and per-chunk verification, job spec codec (round trip, golden
 * bytes, strictness: every truncation, trailing bytes, every field out of
 * range), work units against the real layer list of px_net, the escrow
 * formula, commitments and equivocation evidence, audit selection, the
 * stake bound, settlement arithmetic at the overflow edges, the bisection
 * game against lying parties, and the one-layer referee on real MLP/CNN
 * layers (re-executed with the deterministic kernels, compared with the
 * trace of px_net_forward).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/market.h"
#include "plexus/model.h"

/* BLAKE2b-256 of the golden encodings (fixtures below) */
#define GOLDEN_SPEC                                                            \
  "ad4cc0be0253784318685709304d834f7a07e82ed63b45326f6752534218923f"
#define GOLDEN_COMMIT                                                          \
  "082da4f8c431d6f2853e8af5347caca8eba982059166e4c11fde475a4855d0af"

static void hash_hex(const void *p, size_t n, char out[65]) {
  uint8_t h[32];
  px_hash(h, p, n);
  px_hex_encode(h, 32, out);
}

/* ---- blobs ---------------------------------------------------------------
 */

static void test_blob(void **state) {
  (void)state;
  assert_int_equal(px_blob_chunk_count(0), 0);
  assert_int_equal(px_blob_chunk_count(1), 1);
  assert_int_equal(px_blob_chunk_count(PX_BLOB_CHUNK), 1);
  assert_int_equal(px_blob_chunk_count(PX_BLOB_CHUNK + 1), 2);
  size_t size = 3 * PX_BLOB_CHUNK + 1234;
  uint8_t *blob = malloc(size);
  px_rng_t rng;
  px_rng_seed(&rng, 1);
  px_rng_fill(&rng, blob, size);
  uint8_t root[32], path[PX_MERKLE_MAX_DEPTH][32];
  assert_int_equal(px_blob_root(blob, size, root), 0);
  for (uint64_t c = 0; c < 4; c++) {
    size_t depth, len = px_blob_chunk_len(size, c);
    assert_int_equal(len, c < 3 ? PX_BLOB_CHUNK : 1234);
    assert_int_equal(px_blob_proof(blob, size, c, path, &depth), 0);
    const uint8_t *chunk = blob + c * PX_BLOB_CHUNK;
    assert_int_equal(px_blob_verify_chunk(root, size, c, chunk, len,
                                          (const uint8_t(*)[32])path, depth),
                     0);
    /* wrong index, wrong length, flipped byte */
    assert_int_not_equal(px_blob_verify_chunk(root, size, (c + 1) % 4, chunk,
                                              len, (const uint8_t(*)[32])path,
                                              depth),
                         0);
    assert_int_equal(px_blob_verify_chunk(root, size, c, chunk, len - 1,
                                          (const uint8_t(*)[32])path, depth),
                     PX_EINVAL);
    blob[c * PX_BLOB_CHUNK + 5] ^= 1;
    assert_int_equal(px_blob_verify_chunk(root, size, c, chunk, len,
                                          (const uint8_t(*)[32])path, depth),
                     PX_EAUTH);
    blob[c * PX_BLOB_CHUNK + 5] ^= 1;
  }
  /* the size is part of the name's meaning: a different size misverifies */
  size_t depth;
  assert_int_equal(px_blob_proof(blob, size, 3, path, &depth), 0);
  assert_int_equal(px_blob_verify_chunk(root, size + 1, 3,
                                        blob + 3 * PX_BLOB_CHUNK, 1234,
                                        (const uint8_t(*)[32])path, depth),
                   PX_EINVAL);
  /* the empty blob is H("") as px_merkle_root says */
  uint8_t e[32], h[32];
  assert_int_equal(px_blob_root(NULL, 0, e), 0);
  px_hash(h, "", 0);
  assert_memory_equal(e, h, 32);
  free(blob);
}

/* ---- job spec --------------------------------------------------------------
 */

static void spec_fixture(px_job_spec_t *s) {
  memset(s, 0, sizeof *s);
  s->kind = PX_JOB_INFER;
  for (int i = 0; i < 32; i++) {
    s->requester[i] = (uint8_t)i;
    s->model[i] = (uint8_t)(0x40 + i);
    s->input[i] = (uint8_t)(0x80 + i);
  }
  s->nonce = 7;
  s->input_size = 10000 * 784;
  s->n_samples = 10000;
  s->shard_size = 500;
  s->work_per_sample = 535040;
  s->caps = PX_CAP_AVX2;
  s->policy = PX_VERIFY_AUDIT;
  s->policy_param = 500;
  s->price_ceiling = 3;
  s->deadline = 12345;
}

static void test_spec_codec(void **state) {
  (void)state;
  px_job_spec_t s, d;
  spec_fixture(&s);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_job_spec_encode(&s, &b), 0);
  assert_int_equal(b.len, 3 + 1 + 4 + 32 + 8 + 32 + 32 + 8 + 4 + 4 + 8 + 4 + 1 +
                              4 + 8 + 8);
  /* golden: the first bytes and the hash of the whole encoding */
  static const uint8_t head[] = {0x01, 0x05, 0x01, 0x01, 0, 0, 0, 0, 0x00};
  assert_memory_equal(b.data, head, sizeof head);
  char hex[65];
  hash_hex(b.data, b.len, hex);
  assert_string_equal(hex, GOLDEN_SPEC);
  assert_int_equal(px_job_spec_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&s, &d, sizeof s);
  uint8_t id[32], h[32];
  assert_int_equal(px_job_spec_id(&s, id), 0);
  px_hash(h, b.data, b.len);
  assert_memory_equal(id, h, 32);
  /* every truncation fails, trailing bytes fail */
  for (size_t n = 0; n < b.len; n++)
    assert_int_not_equal(px_job_spec_decode(b.data, n, &d), 0);
  uint8_t big[256];
  memcpy(big, b.data, b.len);
  big[b.len] = 0;
  assert_int_equal(px_job_spec_decode(big, b.len + 1, &d), PX_ETRAILING);
  /* bad tag, version, kind, policy */
  big[0] ^= 1;
  assert_int_equal(px_job_spec_decode(big, b.len, &d), PX_EDECODE);
  big[0] ^= 1;
  big[2] = 9;
  assert_int_equal(px_job_spec_decode(big, b.len, &d), PX_EVERSION);
  big[2] = 1;
  big[3] = PX_JOB_TRAIN; /* reserved, not accepted yet */
  assert_int_equal(px_job_spec_decode(big, b.len, &d), PX_EDECODE);
  px_buf_release(&b);
  /* invalid specs are not encodable */
  px_job_spec_t bad = s;
  bad.shard_size = 0;
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  bad = s, bad.policy_param = 10001;
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  bad = s, bad.policy = PX_VERIFY_REPLICATE, bad.policy_param = 5;
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  bad = s, bad.train_steps = 1;
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  bad = s, bad.shard_size = 1; /* 10000 shards: fine */
  assert_int_equal(px_job_spec_check(&bad), 0);
  bad.n_samples = PX_MARKET_MAX_SHARDS + 1; /* too many shards */
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  bad = s, bad.price_ceiling = UINT64_MAX; /* escrow overflows */
  assert_int_equal(px_job_spec_check(&bad), PX_EINVAL);
  px_buf_init(&b, 0);
  assert_int_equal(px_job_spec_encode(&bad, &b), PX_EINVAL);
  px_buf_release(&b);
  /* shards */
  assert_int_equal(px_job_shard_count(&s), 20);
  s.n_samples = 10001;
  assert_int_equal(px_job_shard_count(&s), 21);
  assert_int_equal(px_job_shard_samples(&s, 20), 1);
  assert_int_equal(px_job_shard_samples(&s, 21), 0);
  uint64_t w;
  assert_int_equal(px_job_shard_work(&s, 20, &w), 0);
  assert_int_equal(w, 535040);
}

/* ---- work units and escrow ------------------------------------------------
 */

static void test_work_units(void **state) {
  (void)state;
  for (int arch = PX_NET_MLP; arch <= PX_NET_CNN; arch++) {
    px_net_config_t cfg;
    px_net_config_default(&cfg, (px_net_arch_t)arch);
    cfg.in_c = 1, cfg.in_h = cfg.in_w = 28, cfg.n_classes = 10;
    px_net_t *net;
    assert_int_equal(px_net_new(&cfg, &net), 0);
    uint64_t per = 0, w;
    for (int i = 0; i < px_net_layer_count(net); i++)
      per += px_market_layer_macs(px_net_layer(net, i));
    assert_int_equal(px_market_work_units(&cfg, 1, &w), 0);
    assert_int_equal(w, per);
    assert_int_equal(px_market_work_units(&cfg, 10000, &w), 0);
    assert_int_equal(w, per * 10000);
    px_net_free(net);
    if (arch == PX_NET_MLP) assert_int_equal(per, 784 * 512 + 512 * 256 + 2560);
    assert_int_equal(px_market_work_units(&cfg, UINT64_MAX, &w), PX_ERANGE);
    cfg.n_classes = 0;
    assert_int_equal(px_market_work_units(&cfg, 1, &w), PX_EINVAL);
  }
}

static void test_escrow(void **state) {
  (void)state;
  px_job_spec_t s;
  spec_fixture(&s);
  uint64_t e, base = 10000ull * 535040 * 3;
  assert_int_equal(px_market_escrow_required(&s, &e), 0);
  /* audit 5%: base + ceil(base * 10%) */
  assert_int_equal(e, base + (base + 9) / 10);
  s.policy = PX_VERIFY_REPLICATE, s.policy_param = 2;
  assert_int_equal(px_market_escrow_required(&s, &e), 0);
  assert_int_equal(e, 2 * base);
  s.policy = PX_VERIFY_AUDIT, s.policy_param = 7000; /* 2p capped at 100% */
  assert_int_equal(px_market_escrow_required(&s, &e), 0);
  assert_int_equal(e, 2 * base);
  s.policy_param = 1;
  s.n_samples = 1, s.work_per_sample = 1, s.price_ceiling = 1;
  assert_int_equal(px_market_escrow_required(&s, &e), 0);
  assert_int_equal(e, 2); /* the audit budget rounds up */
  s.work_per_sample = UINT64_MAX / 2, s.price_ceiling = 3;
  assert_int_equal(px_market_escrow_required(&s, &e), PX_ERANGE);
}

/* ---- commitments ------------------------------------------------------------
 */

static void make_commit(px_commitment_t *c, const px_keypair_t *kp, uint8_t o) {
  memset(c, 0, sizeof *c);
  memset(c->job_id, 0xaa, 32);
  c->shard = 3;
  memset(c->output, o, 32);
  memset(c->trace_root, (uint8_t)(o + 1), 32);
  c->n_layers = 7;
  assert_int_equal(px_commitment_sign(c, kp), 0);
}

static void test_commitment(void **state) {
  (void)state;
  uint8_t seed[32] = {1}, seed2[32] = {2};
  px_keypair_t kp, kp2;
  assert_int_equal(px_key_from_seed(&kp, seed), 0);
  assert_int_equal(px_key_from_seed(&kp2, seed2), 0);
  px_commitment_t c, d, e;
  make_commit(&c, &kp, 0x11);
  assert_int_equal(px_commitment_verify(&c), 0);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_commitment_encode(&c, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 4 + 32 + 32 + 4 + 32 + 64);
  char hex[65];
  hash_hex(b.data, b.len, hex);
  assert_string_equal(hex, GOLDEN_COMMIT); /* Ed25519 is deterministic */
  assert_int_equal(px_commitment_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&c, &d, sizeof c);
  for (size_t n = 0; n < b.len; n++)
    assert_int_not_equal(px_commitment_decode(b.data, n, &d), 0);
  /* tampering breaks the signature */
  d = c;
  d.shard = 4;
  assert_int_equal(px_commitment_verify(&d), PX_EBADSIG);
  d = c;
  d.n_layers = 0;
  assert_int_equal(px_commitment_verify(&d), PX_EINVAL);
  px_buf_release(&b);

  /* equivocation */
  make_commit(&d, &kp, 0x22);
  make_commit(&e, &kp2, 0x22);
  assert_int_equal(px_commitment_conflict(&c, &d), 0);
  assert_int_equal(px_commitment_conflict(&c, &c), PX_EINVAL);
  assert_int_equal(px_commitment_conflict(&c, &e), PX_EINVAL);
  px_buf_t e1, e2;
  px_buf_init(&e1, 0);
  px_buf_init(&e2, 0);
  assert_int_equal(px_evidence_encode(&c, &d, &e1), 0);
  assert_int_equal(px_evidence_encode(&d, &c, &e2), 0);
  assert_int_equal(e1.len, e2.len); /* canonical order */
  assert_memory_equal(e1.data, e2.data, e1.len);
  px_commitment_t x, y;
  assert_int_equal(px_evidence_decode(e1.data, e1.len, &x, &y), 0);
  /* swapped halves are not canonical */
  uint8_t sw[512];
  size_t half = (e1.len - 3) / 2;
  memcpy(sw, e1.data, 3);
  memcpy(sw + 3, e1.data + 3 + half, half);
  memcpy(sw + 3 + half, e1.data + 3, half);
  assert_int_equal(px_evidence_decode(sw, e1.len, &x, &y), PX_EDECODE);
  /* a forged signature is not evidence */
  e1.data[e1.len - 1] ^= 1;
  assert_int_equal(px_evidence_decode(e1.data, e1.len, &x, &y), PX_EBADSIG);
  px_buf_release(&e1);
  px_buf_release(&e2);
  d.sig[0] ^= 1;
  assert_int_equal(px_commitment_conflict(&c, &d), PX_EBADSIG);
}

static void test_audit_and_stake(void **state) {
  (void)state;
  uint8_t r[32], job[32];
  memset(job, 5, 32);
  int hits = 0;
  for (uint32_t i = 0; i < 20000; i++) {
    memset(r, 0, 32);
    memcpy(r, &i, 4);
    int a = px_market_audit_selected(r, job, i % 7, 2000);
    assert_int_equal(a, px_market_audit_selected(r, job, i % 7, 2000));
    hits += a;
    assert_int_equal(px_market_audit_selected(r, job, 1, 0), 0);
    assert_int_equal(px_market_audit_selected(r, job, 1, 10000), 1);
  }
  assert_true(hits > 3700 && hits < 4300); /* about 20% */
  /* stake >= reward / p */
  assert_int_equal(px_market_stake_check(1000, 50, 500), 0);
  assert_int_equal(px_market_stake_check(999, 50, 500), PX_EFUNDS);
  assert_int_equal(px_market_stake_check(50, 50, 10000), 0);
  assert_int_equal(px_market_stake_check(1, 0, 1), 0);
  assert_int_equal(px_market_stake_check(UINT64_MAX, UINT64_MAX, 10000), 0);
  assert_int_equal(px_market_stake_check(UINT64_MAX, UINT64_MAX, 9999),
                   PX_EFUNDS);
  assert_int_equal(px_market_stake_check(5, 1, 0), PX_EINVAL);
  assert_int_equal(px_market_stake_check(5, 1, 10001), PX_EINVAL);
}

/* ---- settlement -------------------------------------------------------------
 */

static void test_settle(void **state) {
  (void)state;
  uint64_t a;
  assert_int_equal(px_settle_shard_amount(3, 7, &a), 0);
  assert_int_equal(a, 21);
  assert_int_equal(px_settle_shard_amount(UINT64_MAX, 2, &a), PX_ERANGE);
  assert_int_equal(px_settle_shard_amount(UINT64_MAX, 0, &a), 0);
  px_settle_t s = {100, 0};
  assert_int_equal(px_settle_pay(&s, 60), 0);
  assert_int_equal(px_settle_pay(&s, 41), PX_EFUNDS);
  assert_int_equal(s.paid, 60);
  assert_int_equal(px_settle_pay(&s, 40), 0);
  assert_int_equal(px_settle_pay(&s, 1), PX_EFUNDS);
  assert_int_equal(px_settle_refund(&s), 0);
  s.paid = 10;
  assert_int_equal(px_settle_pay(&s, UINT64_MAX), PX_EFUNDS);
  assert_int_equal(px_settle_refund(&s), 90);
  px_slash_params_t p = {5000, 3000, 2000};
  uint64_t burn, win, req;
  assert_int_equal(px_slash_split(1001, &p, &burn, &win, &req), 0);
  assert_int_equal(win, 300);
  assert_int_equal(req, 200);
  assert_int_equal(burn, 501);
  assert_int_equal(px_slash_split(UINT64_MAX, &p, &burn, &win, &req), 0);
  assert_true(burn + win + req == UINT64_MAX && burn >= win);
  p.burn_bps = 4999;
  assert_int_equal(px_slash_split(10, &p, &burn, &win, &req), PX_EINVAL);
}

/* ---- dispute game -----------------------------------------------------------
 */

static void leaves_for(uint8_t (*l)[32], size_t n, size_t bad_from) {
  for (size_t i = 0; i < n; i++) {
    uint8_t b[9];
    memcpy(b, &i, 8);
    b[8] = i >= bad_from;
    px_merkle_leaf(l[i], b, sizeof b);
  }
}

static void commit_for(px_commitment_t *c, const uint8_t (*l)[32], size_t n) {
  memset(c, 0, sizeof *c);
  memset(c->job_id, 9, 32);
  c->shard = 2;
  c->n_layers = (uint32_t)n;
  memcpy(c->output, l[n - 1], 32);
  assert_int_equal(px_merkle_root(l, n, c->trace_root), 0);
}

static void test_bisection(void **state) {
  (void)state;
  static uint8_t la[300][32], lb[300][32];
  for (size_t n = 1; n <= 300; n += (n < 20 ? 1 : 37)) {
    for (size_t bad = 0; bad < n; bad += (n < 20 ? 1 : 13)) {
      leaves_for(la, n, n + 1);
      leaves_for(lb, n, bad);
      px_commitment_t ca, cb;
      commit_for(&ca, (const uint8_t(*)[32])la, n);
      commit_for(&cb, (const uint8_t(*)[32])lb, n);
      px_dispute_t d;
      assert_int_equal(px_dispute_init(&d, &ca, &cb), 0);
      int rounds = 0;
      while (d.status == PX_DISPUTE_OPEN) {
        px_dispute_challenge_t ch, ch2;
        px_dispute_response_t ra, rb, r2;
        assert_int_equal(px_dispute_challenge(&d, &ch), 0);
        /* messages travel encoded */
        px_buf_t b;
        px_buf_init(&b, 0);
        assert_int_equal(px_dispute_challenge_encode(&ch, &b), 0);
        assert_int_equal(px_dispute_challenge_decode(b.data, b.len, &ch2), 0);
        assert_memory_equal(&ch, &ch2, sizeof ch);
        assert_int_equal(
            px_dispute_respond(&ch2, (const uint8_t(*)[32])la, n, &ra), 0);
        assert_int_equal(
            px_dispute_respond(&ch2, (const uint8_t(*)[32])lb, n, &rb), 0);
        px_buf_reset(&b);
        assert_int_equal(px_dispute_response_encode(&rb, &b), 0);
        assert_int_equal(px_dispute_response_decode(b.data, b.len, &r2), 0);
        assert_memory_equal(&rb, &r2, sizeof rb);
        for (size_t k = 0; k + 1 < b.len; k += 7)
          assert_int_not_equal(px_dispute_response_decode(b.data, k, &r2), 0);
        px_buf_release(&b);
        assert_int_equal(px_dispute_answer(&d, 0, &ra), 0);
        assert_int_equal(px_dispute_answer(&d, 0, &ra), PX_EPROTO);
        assert_int_equal(px_dispute_answer(&d, 1, &rb), 0);
        rounds++;
      }
      assert_int_equal(d.status, PX_DISPUTE_FOUND);
      size_t lg = 0;
      while (((size_t)1 << lg) < n + 1)
        lg++;
      assert_true((size_t)rounds <= lg);
      uint32_t layer;
      int has_in;
      uint8_t in_leaf[32], claim[2][32];
      assert_int_equal(px_dispute_result(&d, &layer, &has_in, in_leaf, claim),
                       0);
      assert_int_equal(layer, bad); /* the exact layer */
      assert_int_equal(has_in, bad > 0);
      if (bad) assert_memory_equal(in_leaf, la[bad - 1], 32);
      assert_memory_equal(claim[0], la[bad], 32);
      assert_memory_equal(claim[1], lb[bad], 32);
    }
  }
}

static void test_bisection_liar(void **state) {
  (void)state;
  uint8_t la[16][32], lb[16][32];
  leaves_for(la, 16, 99);
  leaves_for(lb, 16, 3);
  px_commitment_t ca, cb;
  commit_for(&ca, (const uint8_t(*)[32])la, 16);
  commit_for(&cb, (const uint8_t(*)[32])lb, 16);
  px_dispute_t d;
  assert_int_equal(px_dispute_init(&d, &ca, &cb), 0);
  px_dispute_challenge_t ch;
  px_dispute_response_t ra, rb;
  assert_int_equal(px_dispute_challenge(&d, &ch), 0);
  assert_int_equal(px_dispute_respond(&ch, (const uint8_t(*)[32])la, 16, &ra),
                   0);
  assert_int_equal(px_dispute_respond(&ch, (const uint8_t(*)[32])lb, 16, &rb),
                   0);
  /* B claims A's leaf to dodge: its proof does not match its root */
  memcpy(rb.leaf, ra.leaf, 32);
  assert_int_equal(px_dispute_answer(&d, 0, &ra), 0);
  assert_int_equal(px_dispute_answer(&d, 1, &rb), 0);
  assert_int_equal(d.status, PX_DISPUTE_B_LOST);
  assert_int_equal(px_dispute_challenge(&d, &ch), PX_ESTATE);
  /* mismatched commitments cannot open a dispute */
  cb.n_layers = 15;
  assert_int_equal(px_dispute_init(&d, &ca, &cb), PX_EINVAL);
  assert_int_equal(px_dispute_init(&d, &ca, &ca), PX_EINVAL);
}

/* The referee re-executes real layers of px_net and agrees with its trace. */
static void verdict_is(px_compute_t *c, px_dispute_layer_t *l,
                       const uint8_t in_leaf[32], const uint8_t good[32]) {
  px_verdict_t v;
  memcpy(l->claim[0], good, 32);
  memset(l->claim[1], 0x5a, 32);
  assert_int_equal(px_dispute_verdict(c, l, in_leaf, 0, &v), 0);
  assert_int_equal(v, PX_VERDICT_A);
  memcpy(l->claim[1], good, 32);
  memset(l->claim[0], 0x5a, 32);
  assert_int_equal(px_dispute_verdict(NULL, l, in_leaf, 0, &v), 0);
  assert_int_equal(v, PX_VERDICT_B);
  memset(l->claim[1], 0x5b, 32);
  assert_int_equal(px_dispute_verdict(c, l, in_leaf, 0, &v), 0);
  assert_int_equal(v, PX_VERDICT_NEITHER);
  memcpy(l->claim[0], good, 32);
}

static void set_layer(px_dispute_layer_t *d, const px_layer_t *l, int index,
                      int n, const float *in) {
  memset(d, 0, sizeof *d);
  d->layer = (uint32_t)index;
  d->kind = (uint8_t)l->kind;
  d->n = (uint32_t)n;
  d->in_c = (uint32_t)l->in_c, d->in_h = (uint32_t)l->in_h;
  d->in_w = (uint32_t)l->in_w, d->out_c = (uint32_t)l->out_c;
  d->k = (uint32_t)l->k, d->pad = (uint32_t)l->pad;
  d->input = in;
  d->n_input = (size_t)n * l->in_size;
  d->weights = l->w, d->n_weights = l->nw;
  d->bias = l->b, d->n_bias = l->nb;
  px_dispute_weights_ref(l->w, l->nw, l->b, l->nb, d->weights_ref);
}

static void referee_case(px_compute_t *c, px_net_arch_t arch) {
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = arch;
  cfg.in_c = 1, cfg.in_h = cfg.in_w = 8, cfg.n_classes = 4;
  if (arch == PX_NET_CNN) cfg.conv[0] = 3, cfg.n_conv = 1, cfg.kernel = 3;
  cfg.hidden[0] = 6, cfg.n_hidden = 1;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 42);
  enum { N = 3 };
  static float x[N * 64], logits[N * 4], a0[N * 3 * 64], a1[N * 3 * 64];
  for (int i = 0; i < N * 64; i++)
    x[i] = (float)((i * 37) % 101) / 101.0f - 0.3f;
  px_trace_t tr;
  px_trace_init(&tr, 1);
  assert_int_equal(px_net_forward(net, c, x, N, logits, &tr), 0);
  uint8_t in_leaf[32], h[32];
  px_merkle_leaf(in_leaf, x, sizeof x);
  const px_layer_t *l0 = px_net_layer(net, 0), *l1 = px_net_layer(net, 1);
  px_dispute_layer_t d;
  /* layer 0 (linear or conv) from the shard input */
  set_layer(&d, l0, 0, N, x);
  verdict_is(c, &d, in_leaf, tr.leaf[0]);
  /* bad input, bad weights, cost bound */
  px_verdict_t v;
  assert_int_equal(px_dispute_verdict(c, &d, tr.leaf[0], 0, &v), PX_EAUTH);
  d.weights_ref[0] ^= 1;
  assert_int_equal(px_dispute_verdict(c, &d, in_leaf, 0, &v), PX_EAUTH);
  d.weights_ref[0] ^= 1;
  assert_int_equal(px_dispute_verdict(c, &d, in_leaf, 100, &v), PX_ELIMIT);
  /* the layer travels encoded */
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_dispute_layer_encode(&d, &b), 0);
  px_dispute_layer_t e;
  assert_int_equal(px_dispute_layer_decode(b.data, b.len, &e), 0);
  assert_int_equal(e.n_input, d.n_input);
  assert_memory_equal(e.input, d.input, d.n_input * sizeof(float));
  assert_memory_equal(e.weights, d.weights, d.n_weights * sizeof(float));
  assert_memory_equal(e.claim, d.claim, sizeof d.claim);
  verdict_is(c, &e, in_leaf, tr.leaf[0]);
  px_dispute_layer_release(&e);
  for (size_t k = 0; k < b.len; k += 97)
    assert_int_not_equal(px_dispute_layer_decode(b.data, k, &e), 0);
  px_buf_release(&b);
  /* the next layers from recomputed activations */
  size_t n0 = (size_t)N * l0->out_size;
  if (l0->kind == PX_LAYER_LINEAR) {
    px_matmul_f32(c, a0, l0->out_c, x, (int)l0->in_size, l0->w,
                  (int)l0->in_size, l0->b, N, l0->out_c, (int)l0->in_size);
  } else {
    px_conv2d_shape_t s = {N,     l0->in_c, l0->in_h, l0->in_w, l0->out_c,
                           l0->k, l0->k,    1,        l0->pad};
    px_conv2d_f32(c, a0, x, l0->w, l0->b, &s);
  }
  px_merkle_leaf(h, a0, n0 * sizeof(float));
  assert_memory_equal(h, tr.leaf[0], 32);
  set_layer(&d, l1, 1, N, a0); /* relu */
  verdict_is(c, &d, tr.leaf[0], tr.leaf[1]);
  px_relu_f32(c, a1, a0, n0);
  const px_layer_t *l2 = px_net_layer(net, 2); /* linear or maxpool */
  set_layer(&d, l2, 2, N, a1);
  verdict_is(c, &d, tr.leaf[1], tr.leaf[2]);
  /* a layer too large for the chain is refused with PX_ELIMIT */
  d.n = 1u << 23;
  d.n_input = (size_t)d.n * l2->in_size;
  assert_int_equal(px_dispute_layer_check(&d, 0), PX_ELIMIT);
  px_trace_release(&tr);
  px_net_free(net);
}

static void test_referee(void **state) {
  (void)state;
  px_compute_t *c;
  px_compute_opts_t o = {.simd = -1, .threads = 2};
  assert_int_equal(px_compute_new(&o, &c), 0);
  referee_case(c, PX_NET_MLP);
  referee_case(c, PX_NET_CNN);
  px_compute_free(c);
}

int main(void) {
  if (px_crypto_init()) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blob),
      cmocka_unit_test(test_spec_codec),
      cmocka_unit_test(test_work_units),
      cmocka_unit_test(test_escrow),
      cmocka_unit_test(test_commitment),
      cmocka_unit_test(test_audit_and_stake),
      cmocka_unit_test(test_settle),
      cmocka_unit_test(test_bisection),
      cmocka_unit_test(test_bisection_liar),
      cmocka_unit_test(test_referee),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
