/*
 * test_requester.c — the requester runtime's dispute builder against the
 * real market contract (src/node/requester_dispute.c, src/ledger/market*.c).
 *
 * A small CNN runs one shard twice: honestly (px_shard_run) and with one
 * hidden layer nudged by one ulp (px_shard_run_fault, the provider's TEST
 * ONLY perturb fault).  Both commitments go on chain in a real ledger state
 * (genesis, staking, registration, JOB_OPEN, JOB_COMMIT applied as blocks),
 * the bisection game is played with px_dispute_* over the two traces, and
 * the payload px_reqd_build makes from the requester's own model and input
 * is submitted as a DISPUTE tx in a block: the contract must name the
 * perturbed provider the loser (commit marked lost, stake slashed).  Run for
 * a perturbation at the first layer (input from the input blob's chunks)
 * and at a later one (input from the agreed previous layer).  Also: the
 * per-layer runner matches px_net_forward bit for bit, tampered reveals are
 * refused by the builder, and the job record on disk decodes strictly and
 * re-encodes to the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"

#include "node/requester.h"
#include "ledger_testutil.h"

#define N_SAMPLES 8
#define SHARD 4
#define STAKE 100000000ull

static px_net_t *small_cnn(void) {
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_CNN;
  cfg.in_c = 1, cfg.in_h = 8, cfg.in_w = 8;
  cfg.n_classes = 4;
  cfg.conv[0] = 2;
  cfg.n_conv = 1;
  cfg.kernel = 3;
  cfg.hidden[0] = 8;
  cfg.n_hidden = 1;
  px_net_t *net = NULL;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 7);
  return net;
}

static float *inputs(size_t n, size_t in) {
  float *x = malloc(n * in * sizeof(float));
  px_rng_t rng;
  px_rng_seed(&rng, 42);
  for (size_t i = 0; i < n * in; i++)
    x[i] = (float)(px_rng_next(&rng) % 1000) / 999.0f - 0.3f;
  return x;
}

static px_compute_t *compute(void) {
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  px_compute_t *c = NULL;
  assert_int_equal(px_compute_new(&o, &c), 0);
  return c;
}

/* px_reqd_layer_input reproduces every activation of px_net_forward. */
static void test_layer_input_bit_exact(void **state) {
  (void)state;
  px_net_t *net = small_cnn();
  px_compute_t *c = compute();
  size_t in = px_net_input_size(net);
  float *x = inputs(3, in);
  float logits[3 * 4];
  assert_int_equal(px_net_forward(net, c, x, 3, logits, NULL), 0);
  int L = px_net_layer_count(net);
  for (int s = 0; s < 3; s++) {
    for (int l = 0; l <= L; l++) {
      float *act = NULL;
      size_t n = 0;
      assert_int_equal(
          px_reqd_layer_input(c, net, x + s * in, (uint32_t)l, &act, &n), 0);
      if (l == 0) {
        assert_int_equal(n, in);
        assert_memory_equal(act, x + s * in, n * sizeof(float));
      } else {
        int bn = 0;
        const float *ref = px_net_activation(net, l - 1, &bn);
        const px_layer_t *ly = px_net_layer(net, l - 1);
        assert_int_equal(bn, 3);
        assert_int_equal(n, ly->out_size);
        assert_memory_equal(act, ref + s * ly->out_size, n * sizeof(float));
      }
      px_free(act);
    }
  }
  float *act = NULL;
  size_t n = 0;
  assert_int_equal(px_reqd_layer_input(c, net, x, (uint32_t)L + 1, &act, &n),
                   PX_EINVAL);
  free(x);
  px_compute_free(c);
  px_net_free(net);
}

/* ---- the chain fixture ----------------------------------------------------
 */

typedef struct {
  tu_keys_t ks;
  px_ledger_state_t *s;
  px_net_t *net;
  px_compute_t *c;
  float *x;
  size_t in;
  px_job_spec_t spec;
  px_market_manifest_t man;
  uint8_t job_id[PX_HASH_LEN];
  uint64_t nonce1; /* requester's next nonce */
} fx_t;

static void apply_ok(fx_t *f, tu_txs_t *t) {
  px_tx_result_t res[16];
  assert_int_equal(tu_apply(f->s, &f->ks.k[0], t, res), 0);
  for (size_t i = 0; i < t->n; i++) {
    if (res[i].code)
      print_error("tx %zu failed: %s\n", i, px_strerror(res[i].code));
    assert_int_equal(res[i].code, 0);
  }
  tu_txs_release(t);
}

static void fixture(fx_t *f) {
  memset(f, 0, sizeof *f);
  tu_keys(&f->ks);
  f->s = tu_state(&f->ks, 5);
  f->net = small_cnn();
  f->c = compute();
  f->in = px_net_input_size(f->net);
  f->x = inputs(N_SAMPLES, f->in);
  tu_txs_t t;
  tu_txs_init(&t);
  /* providers 2 and 3 stake, then register */
  for (int p = 2; p <= 3; p++)
    assert_int_equal(
        tu_amount_tx(&t, &f->ks.k[p], 0, PX_TX_STAKE, STAKE, TU_FEE), 0);
  apply_ok(f, &t);
  for (int p = 2; p <= 3; p++) {
    px_provider_reg_t reg;
    memset(&reg, 0, sizeof reg);
    reg.cores = 1;
    reg.mem_mb = 64;
    reg.price = 1;
    reg.slots = 2;
    reg.max_shard_work = 1000000;
    reg.speed = 1000000;
    snprintf(reg.addr, sizeof reg.addr, "127.0.0.1:%d", 9000 + p);
    assert_int_equal(px_market_bench_hash(reg.bench_hash), 0);
    px_buf_t pl;
    px_buf_init(&pl, 0);
    assert_int_equal(px_market_payload_register(&pl, &reg), 0);
    assert_int_equal(
        tu_add(&t, &f->ks.k[p], 1, TU_FEE, PX_TX_PROVIDER_REGISTER, &pl), 0);
    px_buf_release(&pl);
  }
  apply_ok(f, &t);
  /* the job: requester key 1, replicate:2 over two shards */
  px_job_spec_t *sp = &f->spec;
  sp->kind = PX_JOB_INFER;
  memcpy(sp->requester, f->ks.k[1].pk, PX_PK_LEN);
  sp->nonce = 0;
  size_t np = 0;
  float *params = px_net_params(f->net, &np);
  assert_int_equal(px_blob_root(params, np * sizeof(float), sp->model), 0);
  sp->input_size = (uint64_t)N_SAMPLES * f->in * sizeof(float);
  assert_int_equal(px_blob_root(f->x, sp->input_size, sp->input), 0);
  sp->n_samples = N_SAMPLES;
  sp->shard_size = SHARD;
  assert_int_equal(
      px_market_work_units(px_net_config(f->net), 1, &sp->work_per_sample), 0);
  sp->policy = PX_VERIFY_REPLICATE;
  sp->policy_param = 2;
  sp->price_ceiling = 1;
  sp->deadline = 100;
  assert_int_equal(px_job_spec_id(sp, f->job_id), 0);
  assert_int_equal(px_market_manifest(f->net, &f->man), 0);
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_job_open(&pl, sp, &f->man), 0);
  assert_int_equal(tu_add(&t, &f->ks.k[1], 0, TU_FEE, PX_TX_JOB_OPEN, &pl), 0);
  px_buf_release(&pl);
  apply_ok(f, &t);
  f->nonce1 = 1;
  px_job_rec_t jr;
  assert_int_equal(px_market_job(f->s, f->job_id, &jr), 0);
  assert_int_equal(jr.state, PX_JOBREC_OPEN);
}

static void fixture_free(fx_t *f) {
  px_ledger_state_free(f->s);
  px_net_free(f->net);
  px_compute_free(f->c);
  free(f->x);
}

typedef struct {
  px_shard_trace_t tr;
  uint8_t (*leaves)[PX_HASH_LEN]; /* [n_layers][SHARD] */
  px_commitment_t c;
} party_t;

static void run_party(fx_t *f, party_t *p, uint32_t shard, int perturb,
                      const px_keypair_t *kp) {
  float logits[SHARD * 4];
  memset(p, 0, sizeof *p);
  assert_int_equal(
      px_shard_run_fault(f->net, f->c, f->x + (size_t)shard * SHARD * f->in,
                         SHARD, logits, &p->tr, &p->leaves, perturb),
      0);
  memcpy(p->c.job_id, f->job_id, PX_HASH_LEN);
  p->c.shard = shard;
  memcpy(p->c.output, p->tr.output, PX_HASH_LEN);
  memcpy(p->c.trace_root, p->tr.trace_root, PX_HASH_LEN);
  p->c.n_layers = p->tr.n_layers;
  assert_int_equal(px_commitment_sign(&p->c, kp), 0);
  /* the logits hash to the output under the per-sample rule */
  uint8_t out[PX_HASH_LEN];
  assert_int_equal(px_shard_output_hash(logits, SHARD, 4, out), 0);
  assert_memory_equal(out, p->c.output, PX_HASH_LEN);
}

/* Play the bisection; return the layer where the traces part. */
static uint32_t play(const party_t *a, const party_t *b) {
  px_dispute_t d;
  assert_int_equal(px_dispute_init(&d, &a->c, &b->c), 0);
  while (d.status == PX_DISPUTE_OPEN) {
    px_dispute_challenge_t ch;
    assert_int_equal(px_dispute_challenge(&d, &ch), 0);
    px_dispute_response_t r;
    assert_int_equal(
        px_dispute_respond(&ch, (const uint8_t(*)[PX_HASH_LEN])a->tr.layer_leaf,
                           a->tr.n_layers, &r),
        0);
    assert_int_equal(px_dispute_answer(&d, 0, &r), 0);
    assert_int_equal(
        px_dispute_respond(&ch, (const uint8_t(*)[PX_HASH_LEN])b->tr.layer_leaf,
                           b->tr.n_layers, &r),
        0);
    assert_int_equal(px_dispute_answer(&d, 1, &r), 0);
  }
  assert_int_equal(d.status, PX_DISPUTE_FOUND);
  uint32_t layer;
  int has_in;
  uint8_t in_leaf[PX_HASH_LEN], claim[2][PX_HASH_LEN];
  assert_int_equal(px_dispute_result(&d, &layer, &has_in, in_leaf, claim), 0);
  return layer;
}

static void proof(const party_t *p, uint32_t index, px_dispute_response_t *r) {
  px_dispute_challenge_t ch;
  memset(&ch, 0, sizeof ch);
  memcpy(ch.job_id, p->c.job_id, PX_HASH_LEN);
  ch.shard = p->c.shard;
  ch.index = index;
  assert_int_equal(
      px_dispute_respond(&ch, (const uint8_t(*)[PX_HASH_LEN])p->tr.layer_leaf,
                         p->tr.n_layers, r),
      0);
}

static void dispute_case(int perturb, uint32_t want_layer) {
  fx_t f;
  fixture(&f);
  party_t a, b; /* A honest (key 2), B perturbed (key 3) */
  run_party(&f, &a, 1, -1, &f.ks.k[2]);
  run_party(&f, &b, 1, perturb, &f.ks.k[3]);
  assert_memory_not_equal(a.c.output, b.c.output, PX_HASH_LEN);
  /* both commitments on chain */
  tu_txs_t t;
  tu_txs_init(&t);
  px_commitment_t cs[2] = {a.c, b.c};
  px_buf_t pl;
  px_buf_init(&pl, 0);
  assert_int_equal(px_market_payload_commit(&pl, cs, 2), 0);
  assert_int_equal(
      tu_add(&t, &f.ks.k[1], f.nonce1++, TU_FEE, PX_TX_JOB_COMMIT, &pl), 0);
  px_buf_release(&pl);
  apply_ok(&f, &t);
  px_commit_rec_t cr;
  assert_int_equal(px_market_commitment(f.s, f.job_id, 1, f.ks.k[3].pk, &cr),
                   0);
  assert_int_equal(cr.lost, 0);

  uint32_t L = play(&a, &b);
  assert_int_equal(L, want_layer);
  px_dispute_response_t pl_a, pl_b, pi_a, pi_b;
  proof(&a, L, &pl_a);
  proof(&b, L, &pl_b);
  if (L) {
    proof(&a, L - 1, &pi_a);
    proof(&b, L - 1, &pi_b);
  }
  px_reqd_input_t in;
  memset(&in, 0, sizeof in);
  in.spec = &f.spec;
  in.manifest = &f.man;
  in.net = f.net;
  in.input = f.x;
  in.input_floats = N_SAMPLES * f.in;
  in.a = &a.c;
  in.b = &b.c;
  in.layer = L;
  in.proof_l[0] = &pl_a;
  in.proof_l[1] = &pl_b;
  in.proof_in[0] = L ? &pi_a : NULL;
  in.proof_in[1] = L ? &pi_b : NULL;
  in.leaves_l[0] = (const uint8_t(*)[PX_HASH_LEN])(a.leaves + L * SHARD);
  in.leaves_l[1] = (const uint8_t(*)[PX_HASH_LEN])(b.leaves + L * SHARD);
  in.leaves_in =
      L ? (const uint8_t(*)[PX_HASH_LEN])(a.leaves + (L - 1) * SHARD) : NULL;
  in.n_samples = SHARD;

  /* tampered reveals are refused before anything is posted */
  {
    uint8_t(*bad)[PX_HASH_LEN] = malloc(SHARD * PX_HASH_LEN);
    memcpy(bad, b.leaves + L * SHARD, SHARD * PX_HASH_LEN);
    bad[0][0] ^= 1;
    px_reqd_input_t t2 = in;
    t2.leaves_l[1] = (const uint8_t(*)[PX_HASH_LEN])bad;
    px_buf_t o;
    px_buf_init(&o, 0);
    char err[256];
    assert_int_equal(px_reqd_build(f.c, &t2, &o, NULL, err, sizeof err),
                     PX_EAUTH);
    assert_non_null(strstr(err, "party B"));
    px_buf_release(&o);
    free(bad);
  }

  px_buf_t pay;
  px_buf_init(&pay, 0);
  char err[256] = "";
  uint32_t sample = 99;
  int rc = px_reqd_build(f.c, &in, &pay, &sample, err, sizeof err);
  if (rc) print_error("build: %s\n", err);
  assert_int_equal(rc, 0);
  assert_true(sample < SHARD);
  px_account_t before;
  assert_int_equal(px_ledger_account(f.s, f.ks.k[3].pk, &before), 0);
  assert_int_equal(tu_add(&t, &f.ks.k[1], f.nonce1++, 100 + pay.len + 4096,
                          PX_TX_DISPUTE, &pay),
                   0);
  px_buf_release(&pay);
  apply_ok(&f, &t);
  /* the verdict: B (perturbed) lost and was slashed, A stands */
  assert_int_equal(px_market_commitment(f.s, f.job_id, 1, f.ks.k[3].pk, &cr),
                   0);
  assert_int_equal(cr.lost, 1);
  assert_int_equal(px_market_commitment(f.s, f.job_id, 1, f.ks.k[2].pk, &cr),
                   0);
  assert_int_equal(cr.lost, 0);
  px_account_t after;
  assert_int_equal(px_ledger_account(f.s, f.ks.k[3].pk, &after), 0);
  assert_true(after.stake < before.stake);
  px_provider_rec_t pr;
  assert_int_equal(px_market_provider(f.s, f.ks.k[3].pk, &pr), 0);
  assert_int_equal(pr.disputes_lost, 1);
  assert_int_equal(px_market_provider(f.s, f.ks.k[2].pk, &pr), 0);
  assert_int_equal(pr.disputes_won, 1);
  uint64_t actual, expected;
  assert_int_equal(px_ledger_supply(f.s, &actual, &expected), 0);
  assert_int_equal(actual, expected);
  px_free(a.leaves);
  px_free(b.leaves);
  fixture_free(&f);
}

/* Perturbed first layer: the input comes from the input blob's chunks. */
static void test_dispute_first_layer(void **state) {
  (void)state;
  dispute_case(0, 0);
}

/* Perturbed hidden linear layer (index 3): the input is the agreed output
 * of the max-pool before it, recomputed by the requester. */
static void test_dispute_hidden_layer(void **state) {
  (void)state;
  dispute_case(3, 3);
}

/* ---- the job record (HOME/jobs/<id>/state) ------------------------------- */

static void state_spec(px_job_spec_t *spec) {
  memset(spec, 0, sizeof *spec);
  spec->kind = PX_JOB_INFER;
  spec->requester[0] = 1;
  spec->model[0] = 2;
  spec->input[0] = 3;
  spec->input_size = 40 * 16 * 4;
  spec->n_samples = 40;
  spec->shard_size = 10;
  spec->work_per_sample = 100;
  spec->policy = PX_VERIFY_AUDIT;
  spec->policy_param = 500;
  spec->price_ceiling = 1;
  spec->deadline = 100;
}

/* A record as requester.c writes it (format in requester.c state_encode),
 * for a 4-shard job: one commitment, payment, lease, open dispute, expired
 * provider, suspect and two events.  shard_of_commit lets a test break it. */
static void state_bytes(px_buf_t *out, uint32_t n_shards,
                        uint32_t shard_of_commit) {
  uint8_t z[128], a[32], b[32];
  memset(z, 0, sizeof z);
  memset(a, 7, sizeof a);
  memset(b, 8, sizeof b);
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_REQ_TAG_STATE);
  px_writer_u8(&w, 1);
  px_writer_u8(&w, 1);
  px_writer_u64(&w, 5000);
  px_writer_u64(&w, 3);
  px_writer_u64(&w, 4);
  px_writer_u64(&w, 1700000000000ull);
  px_writer_u64(&w, 12345);
  px_writer_u32(&w, 10);
  px_writer_fixed(&w, z, 32);
  px_writer_u8(&w, 0);
  px_writer_u64(&w, 0);
  px_writer_u64(&w, 0);
  px_writer_u64(&w, 0);
  px_writer_u32(&w, 0);
  px_writer_u32(&w, n_shards);
  const uint8_t acc[4] = {2, 0, 0, 0}, aud[4] = {0, 1, 0, 0};
  px_writer_fixed(&w, acc, 4);
  px_writer_fixed(&w, aud, 4);
  px_writer_fixed(&w, z, 4);
  px_writer_fixed(&w, a, 32);
  px_writer_fixed(&w, z, 96);
  px_writer_fixed(&w, z, 32);
  px_writer_fixed(&w, b, 32);
  px_writer_fixed(&w, z, 64);
  px_commitment_t c;
  memset(&c, 0, sizeof c);
  memset(c.job_id, 9, 32);
  c.shard = shard_of_commit;
  memset(c.output, 4, 32);
  memset(c.trace_root, 5, 32);
  c.n_layers = 6;
  memcpy(c.provider, a, 32);
  memset(c.sig, 1, 64);
  px_buf_t cb;
  px_buf_init(&cb, 0);
  assert_int_equal(px_commitment_encode(&c, &cb), 0);
  px_writer_u32(&w, 1);
  px_writer_bytes(&w, cb.data, cb.len);
  px_buf_release(&cb);
  px_writer_u8(&w, 1);
  px_writer_u8(&w, 2);
  px_writer_u8(&w, 1);
  px_writer_u64(&w, 3);
  px_writer_u64(&w, 4);
  px_writer_u32(&w, 1); /* payment */
  px_writer_u32(&w, 0);
  px_writer_fixed(&w, a, 32);
  px_writer_u64(&w, 600);
  px_writer_u8(&w, 0);
  px_writer_u8(&w, 1);
  px_writer_u64(&w, 5);
  px_writer_u32(&w, 1); /* lease */
  px_writer_u32(&w, 2);
  px_writer_fixed(&w, b, 32);
  px_writer_u8(&w, 1);
  px_writer_u8(&w, 1);
  px_writer_u64(&w, 1700000005000ull);
  px_writer_u32(&w, 1); /* open dispute */
  px_writer_u32(&w, 3);
  px_writer_fixed(&w, a, 32);
  px_writer_fixed(&w, b, 32);
  px_writer_u32(&w, 1); /* expired */
  px_writer_fixed(&w, b, 32);
  px_writer_u32(&w, 1); /* suspect */
  px_writer_fixed(&w, a, 32);
  px_writer_u32(&w, 2);
  px_writer_str(&w, "submitted: 40 samples in 4 shards");
  px_writer_str(&w, "shard 0 accepted");
  assert_int_equal(px_writer_finish(&w), 0);
}

static int decode_class(int rc) {
  return rc == PX_EDECODE || rc == PX_EVERSION || rc == PX_ETRUNC ||
         rc == PX_ETRAILING || rc == PX_ETOOBIG;
}

/* The record decodes strictly and re-encodes to the same bytes; every
 * truncation, a trailing byte, a bad version, a shard count that is not the
 * spec's and a commitment for a shard out of range are refused. */
static void test_state_record(void **state) {
  (void)state;
  px_job_spec_t spec;
  state_spec(&spec);
  px_buf_t in, out;
  px_buf_init(&in, 0);
  px_buf_init(&out, 0);
  state_bytes(&in, 4, 1);
  assert_int_equal(px_req_state_roundtrip(&spec, in.data, in.len, &out), 0);
  assert_int_equal(out.len, in.len);
  assert_memory_equal(out.data, in.data, in.len);
  for (size_t k = 0; k < in.len; k++) {
    px_buf_reset(&out);
    int rc = px_req_state_roundtrip(&spec, in.data, k, &out);
    assert_true(decode_class(rc));
  }
  uint8_t *more = malloc(in.len + 1);
  memcpy(more, in.data, in.len);
  more[in.len] = 0;
  px_buf_reset(&out);
  assert_int_equal(px_req_state_roundtrip(&spec, more, in.len + 1, &out),
                   PX_ETRAILING);
  more[2] = 9; /* version */
  px_buf_reset(&out);
  assert_int_equal(px_req_state_roundtrip(&spec, more, in.len, &out),
                   PX_EVERSION);
  free(more);
  px_buf_reset(&in);
  state_bytes(&in, 5, 1);
  px_buf_reset(&out);
  assert_int_equal(px_req_state_roundtrip(&spec, in.data, in.len, &out),
                   PX_EDECODE);
  px_buf_reset(&in);
  state_bytes(&in, 4, 4);
  px_buf_reset(&out);
  assert_int_equal(px_req_state_roundtrip(&spec, in.data, in.len, &out),
                   PX_EDECODE);
  px_buf_release(&in);
  px_buf_release(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layer_input_bit_exact),
      cmocka_unit_test(test_dispute_first_layer),
      cmocka_unit_test(test_dispute_hidden_layer),
      cmocka_unit_test(test_state_record),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
