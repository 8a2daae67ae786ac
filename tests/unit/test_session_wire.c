/*
 * test_session_wire.c — unit tests for the inference-session messages of
 * node/session_rt.h (session_wire.c): every message round-trips, has one
 * encoding, and is refused when truncated, extended, mistagged, of another
 * version or with any out-of-range field (both by the encoder and the
 * decoder); plus the price-per-token and cost rules the gateway and the
 * provider share, and the sequence an auditor commits to in REPLAY mode
 * (px_ses_replay_seq, run by the provider) checked the way the chain's
 * SESSION_DISPUTE checks it, on the seeded tiny llama2.c model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/session.h"
#include "node/session_rt.h"
#include "gateway/tiny_model.h"

static void fill(void *p, size_t n, uint64_t seed) {
  px_rng_t r;
  px_rng_seed(&r, seed);
  px_rng_fill(&r, p, n);
}

/* Every strict prefix and one extra byte must fail to decode; so must a
 * changed tag and another version. */
#define CHECK_STRICT(dec, buf, T, rel)                                         \
  do {                                                                         \
    T tmp_;                                                                    \
    for (size_t k_ = 0; k_ < (buf).len; k_++) {                                \
      assert_int_not_equal(dec((buf).data, k_, &tmp_), 0);                     \
      rel;                                                                     \
    }                                                                          \
    uint8_t *x_ = malloc((buf).len + 1);                                       \
    memcpy(x_, (buf).data, (buf).len);                                         \
    x_[(buf).len] = 0;                                                         \
    assert_int_equal(dec(x_, (buf).len + 1, &tmp_), PX_ETRAILING);             \
    rel;                                                                       \
    x_[0] ^= 1; /* tag */                                                      \
    assert_int_not_equal(dec(x_, (buf).len, &tmp_), 0);                        \
    rel;                                                                       \
    x_[0] ^= 1;                                                                \
    x_[2] = 2; /* version */                                                   \
    assert_int_equal(dec(x_, (buf).len, &tmp_), PX_EVERSION);                  \
    rel;                                                                       \
    free(x_);                                                                  \
  } while (0)

/* Offsets into OPEN: tag(2) ver(1) session(32) channel(32) model(32). */
#define OPEN_SIZE_OFF (3 + 96)
#define OPEN_TEMP_OFF (OPEN_SIZE_OFF + 8)
#define OPEN_TOPP_OFF (OPEN_TEMP_OFF + 4)
#define OPEN_NPROMPT_OFF (OPEN_TOPP_OFF + 4 + 8)
#define OPEN_NTOK_OFF (OPEN_NPROMPT_OFF + 4)
#define OPEN_TOK_OFF (OPEN_NTOK_OFF + 4)

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void open_sample(px_ses_open_t *o, int32_t *tok, uint32_t n) {
  memset(o, 0, sizeof *o);
  fill(o->session_id, 32, 1);
  fill(o->channel_id, 32, 2);
  fill(o->model, 32, 3);
  o->model_size = 12345;
  o->params.temperature = 0.8f;
  o->params.top_p = 0.9f;
  o->params.seed = 0x0123456789abcdefull;
  for (uint32_t i = 0; i < n; i++)
    tok[i] = (int32_t)(i * 7 + 1);
  o->tokens = tok;
  o->n_prompt = 3;
  o->n_tokens = n;
  o->max_total = 256;
  o->price_per_token = 77;
  o->mode = PX_SESSION_GENERATE;
}

static void test_open(void **state) {
  (void)state;
  int32_t tok[5];
  px_ses_open_t o, d;
  open_sample(&o, tok, 5);
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_ses_open_encode(&o, &b), 0);
  assert_int_equal(b.len, OPEN_TOK_OFF + 5 * 4 + 4 + 8 + 1);
  assert_int_equal(px_ses_open_decode(b.data, b.len, &d), 0);
  assert_memory_equal(d.session_id, o.session_id, 32);
  assert_memory_equal(d.channel_id, o.channel_id, 32);
  assert_memory_equal(d.model, o.model, 32);
  assert_int_equal(d.model_size, o.model_size);
  assert_true(d.params.temperature == o.params.temperature);
  assert_true(d.params.top_p == o.params.top_p);
  assert_int_equal(d.params.seed, o.params.seed);
  assert_int_equal(d.n_prompt, 3);
  assert_int_equal(d.n_tokens, 5);
  assert_memory_equal(d.tokens, tok, sizeof tok);
  assert_int_equal(d.max_total, 256);
  assert_int_equal(d.price_per_token, 77);
  assert_int_equal(d.mode, PX_SESSION_GENERATE);
  assert_int_equal(px_ses_open_encode(&d, &b2), 0);
  assert_int_equal(b2.len, b.len);
  assert_memory_equal(b2.data, b.data, b.len);
  px_ses_open_release(&d);
  px_ses_open_release(&d); /* twice is fine */
  CHECK_STRICT(px_ses_open_decode, b, px_ses_open_t,
               px_ses_open_release(&tmp_));

  /* out-of-range fields: the encoder refuses, the decoder refuses the
   * same bytes patched in */
  px_ses_open_t bad = o;
  bad.n_prompt = 0;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.n_prompt = 6;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.max_total = 4; /* below n_tokens */
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.max_total = PX_SES_MAX_TOKENS + 1;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.mode = 2;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.mode = PX_SESSION_REPLAY; /* replay: max_total must be n_tokens */
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad.max_total = 5;
  assert_int_equal(px_ses_open_encode(&bad, &b2), 0);
  bad = o;
  bad.params.temperature = -1.0f;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.params.temperature = -0.0f; /* one encoding per value, as commits */
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.params.top_p = NAN;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  bad = o;
  bad.model_size = 0;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);
  int32_t neg[5];
  memcpy(neg, tok, sizeof neg);
  neg[4] = -3;
  bad = o;
  bad.tokens = neg;
  assert_int_equal(px_ses_open_encode(&bad, &b2), PX_EINVAL);

  uint8_t *x = malloc(b.len);
  memcpy(x, b.data, b.len);
  put_u32(x + OPEN_NPROMPT_OFF, 0);
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  assert_null(d.tokens);
  memcpy(x, b.data, b.len);
  put_u32(x + OPEN_TOK_OFF + 8, 0xffffffffu); /* token -1 */
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  put_u32(x + OPEN_TEMP_OFF, 0x7fc00000u); /* NaN temperature */
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  put_u32(x + OPEN_TEMP_OFF, 0x80000000u); /* -0 */
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  put_u32(x + OPEN_TOPP_OFF, 0x3f800001u); /* top_p just over 1 */
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  x[b.len - 1] = 7; /* mode */
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  put_u32(x + OPEN_NTOK_OFF, 0);
  assert_int_not_equal(px_ses_open_decode(x, b.len, &d), 0);
  memcpy(x, b.data, b.len);
  /* a huge count with few bytes behind it: refused before allocating */
  put_u32(x + OPEN_NTOK_OFF, PX_SES_MAX_TOKENS);
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_ETRUNC);
  put_u32(x + OPEN_NTOK_OFF, PX_SES_MAX_TOKENS + 1);
  assert_int_equal(px_ses_open_decode(x, b.len, &d), PX_EDECODE);
  free(x);

  /* the largest session round-trips */
  int32_t *big = calloc(PX_SES_MAX_TOKENS, sizeof *big);
  assert_non_null(big);
  o.tokens = big;
  o.n_tokens = PX_SES_MAX_TOKENS;
  o.max_total = PX_SES_MAX_TOKENS;
  px_buf_reset(&b);
  assert_int_equal(px_ses_open_encode(&o, &b), 0);
  assert_int_equal(px_ses_open_decode(b.data, b.len, &d), 0);
  assert_int_equal(d.n_tokens, PX_SES_MAX_TOKENS);
  px_ses_open_release(&d);
  free(big);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_open_reply(void **state) {
  (void)state;
  px_ses_open_reply_t r, d;
  memset(&r, 0, sizeof r);
  fill(r.session_id, 32, 4);
  r.reason = PX_SES_UNKNOWN_CHANNEL;
  r.price_per_token = 1234;
  r.credit_tokens = 32;
  snprintf(r.message, sizeof r.message, "channel not open at height 7");
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_ses_open_reply_encode(&r, &b), 0);
  assert_int_equal(px_ses_open_reply_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&d, &r, sizeof r);
  assert_int_equal(px_ses_open_reply_encode(&d, &b2), 0);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_ses_open_reply_decode, b, px_ses_open_reply_t, (void)0);
  assert_string_equal(px_ses_reason_name(PX_SES_UNKNOWN_CHANNEL),
                      "unknown_channel");
  assert_string_equal(px_ses_reason_name(200), "unknown");
  r.reason = PX_SES_REASON_LAST + 1;
  assert_int_equal(px_ses_open_reply_encode(&r, &b2), PX_EINVAL);
  b.data[3 + 32] = PX_SES_REASON_LAST + 1;
  assert_int_equal(px_ses_open_reply_decode(b.data, b.len, &d), PX_EDECODE);
  r.reason = 0;
  r.message[3] = '\n'; /* not printable */
  assert_int_equal(px_ses_open_reply_encode(&r, &b2), PX_EINVAL);
  memset(r.message, 'a', sizeof r.message); /* no NUL */
  assert_int_equal(px_ses_open_reply_encode(&r, &b2), PX_EINVAL);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_cancel_receipt(void **state) {
  (void)state;
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  px_ses_cancel_t c, cd;
  fill(c.session_id, 32, 5);
  assert_int_equal(px_ses_cancel_encode(&c, &b), 0);
  assert_int_equal(b.len, 3 + 32);
  assert_int_equal(px_ses_cancel_decode(b.data, b.len, &cd), 0);
  assert_memory_equal(&c, &cd, sizeof c);
  CHECK_STRICT(px_ses_cancel_decode, b, px_ses_cancel_t, (void)0);

  /* a real receipt: signed by a payer, verified after the round trip */
  px_keypair_t payer;
  assert_int_equal(px_key_generate(&payer), 0);
  px_ses_receipt_t r, rd;
  memset(&r, 0, sizeof r);
  fill(r.channel_id, 32, 6);
  r.cumulative = 987654321;
  assert_int_equal(px_session_receipt_sign(&payer, "testnet", r.channel_id,
                                           r.cumulative, r.sig),
                   0);
  px_buf_reset(&b);
  assert_int_equal(px_ses_receipt_encode(&r, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 8 + 64);
  assert_int_equal(px_ses_receipt_decode(b.data, b.len, &rd), 0);
  assert_memory_equal(&r, &rd, sizeof r);
  assert_int_equal(px_session_receipt_verify(payer.pk, "testnet", rd.channel_id,
                                             rd.cumulative, rd.sig),
                   0);
  assert_int_equal(px_session_receipt_verify(payer.pk, "testnet", rd.channel_id,
                                             rd.cumulative + 1, rd.sig),
                   PX_EBADSIG);
  assert_int_equal(px_ses_receipt_encode(&rd, &b2), 0);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_ses_receipt_decode, b, px_ses_receipt_t, (void)0);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_tokens(void **state) {
  (void)state;
  px_ses_tokens_t *t = calloc(1, sizeof *t), *d = calloc(1, sizeof *d);
  assert_non_null(t);
  assert_non_null(d);
  fill(t->session_id, 32, 7);
  t->first = 10;
  t->n = 3;
  t->tokens[0] = 5;
  t->tokens[1] = 0;
  t->tokens[2] = 31999;
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_ses_tokens_encode(t, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 4 + 4 + 3 * 4);
  assert_int_equal(px_ses_tokens_decode(b.data, b.len, d), 0);
  assert_memory_equal(t, d, sizeof *t);
  assert_int_equal(px_ses_tokens_encode(d, &b2), 0);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_ses_tokens_decode, b, px_ses_tokens_t, (void)0);

  t->n = 0;
  assert_int_equal(px_ses_tokens_encode(t, &b2), PX_EINVAL);
  t->n = PX_SES_TOKENS_MAX + 1;
  assert_int_equal(px_ses_tokens_encode(t, &b2), PX_EINVAL);
  t->n = 3;
  t->tokens[1] = -1;
  assert_int_equal(px_ses_tokens_encode(t, &b2), PX_EINVAL);
  t->tokens[1] = 0;
  t->first = PX_SES_MAX_TOKENS - 2; /* first + n past the bound */
  assert_int_equal(px_ses_tokens_encode(t, &b2), PX_EINVAL);
  uint8_t *x = malloc(b.len);
  memcpy(x, b.data, b.len);
  put_u32(x + 3 + 32 + 4, PX_SES_TOKENS_MAX + 1);
  assert_int_equal(px_ses_tokens_decode(x, b.len, d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  put_u32(x + 3 + 32 + 8 + 4, 0x80000000u);
  assert_int_equal(px_ses_tokens_decode(x, b.len, d), PX_EDECODE);
  free(x);

  /* a full message */
  t->first = 0;
  t->n = PX_SES_TOKENS_MAX;
  for (uint32_t i = 0; i < t->n; i++)
    t->tokens[i] = (int32_t)i;
  px_buf_reset(&b);
  assert_int_equal(px_ses_tokens_encode(t, &b), 0);
  assert_int_equal(px_ses_tokens_decode(b.data, b.len, d), 0);
  assert_memory_equal(t, d, sizeof *t);
  px_buf_release(&b);
  px_buf_release(&b2);
  free(t);
  free(d);
}

static void test_done(void **state) {
  (void)state;
  px_keypair_t kp;
  assert_int_equal(px_key_generate(&kp), 0);
  px_ses_done_t m, d;
  memset(&m, 0, sizeof m);
  fill(m.session_id, 32, 8);
  m.finish = PX_SES_FINISH_STOP;
  m.cost = 4200;
  px_session_commit_t *c = &m.commit;
  memcpy(c->session_id, m.session_id, 32);
  fill(c->channel_id, 32, 9);
  fill(c->model, 32, 10);
  c->model_size = 999;
  c->params.temperature = 0;
  c->params.top_p = 0;
  c->params.seed = 42;
  c->n_prompt = 2;
  c->n_tokens = 9;
  int32_t seq[9] = {1, 5, 6, 7, 8, 9, 10, 11, 12};
  px_session_tokens_hash(seq, 9, c->tokens_hash);
  c->mode = PX_SESSION_GENERATE;
  assert_int_equal(px_session_commit_sign(c, &kp), 0);
  px_buf_t b, b2;
  px_buf_init(&b, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_ses_done_encode(&m, &b), 0);
  assert_int_equal(b.len, 3 + 32 + 1 + 8 + PX_SESSION_COMMIT_LEN);
  assert_int_equal(px_ses_done_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&d, &m, sizeof m);
  assert_int_equal(px_session_commit_verify(&d.commit), 0);
  assert_int_equal(px_ses_done_encode(&d, &b2), 0);
  assert_memory_equal(b2.data, b.data, b.len);
  CHECK_STRICT(px_ses_done_decode, b, px_ses_done_t, (void)0);
  /* the commitment must be this session's */
  uint8_t *x = malloc(b.len);
  memcpy(x, b.data, b.len);
  x[3] ^= 1;
  assert_int_equal(px_ses_done_decode(x, b.len, &d), PX_EDECODE);
  memcpy(x, b.data, b.len);
  x[3 + 32] = PX_SES_FINISH_LAST + 1;
  assert_int_equal(px_ses_done_decode(x, b.len, &d), PX_EDECODE);
  free(x);
  px_ses_done_t bad = m;
  bad.session_id[0] ^= 1;
  assert_int_equal(px_ses_done_encode(&bad, &b2), PX_EINVAL);
  bad = m;
  bad.finish = PX_SES_FINISH_LAST + 1;
  assert_int_equal(px_ses_done_encode(&bad, &b2), PX_EINVAL);
  bad = m;
  bad.commit.n_prompt = 0; /* a commitment its decoder would refuse */
  assert_int_not_equal(px_ses_done_encode(&bad, &b2), 0);

  /* an error carries a message and no commitment */
  px_ses_done_t e;
  memset(&e, 0, sizeof e);
  fill(e.session_id, 32, 11);
  e.finish = PX_SES_FINISH_ERROR;
  snprintf(e.message, sizeof e.message, "the model blob does not load");
  px_buf_reset(&b);
  assert_int_equal(px_ses_done_encode(&e, &b), 0);
  assert_int_equal(px_ses_done_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&d, &e, sizeof e);
  CHECK_STRICT(px_ses_done_decode, b, px_ses_done_t, (void)0);
  assert_string_equal(px_ses_finish_name(PX_SES_FINISH_ERROR), "error");
  assert_string_equal(px_ses_finish_name(PX_SES_FINISH_STOP), "stop");
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_price(void **state) {
  (void)state;
  /* stories260K-like config */
  px_llama2c_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dim = 64;
  cfg.hidden_dim = 172;
  cfg.n_layers = 5;
  cfg.n_heads = 8;
  cfg.n_kv_heads = 4;
  cfg.vocab_size = 512;
  cfg.seq_len = 512;
  cfg.head_size = 8;
  uint64_t ppt = 0;
  assert_int_equal(px_ses_price_per_token(1, &cfg, &ppt), 0);
  uint64_t macs = px_session_macs(&cfg, 512);
  assert_int_equal(ppt, (macs + 511) / 512);
  /* the average is between the first and the last position's work */
  assert_true(ppt >= px_session_macs(&cfg, 1));
  assert_true(ppt <= macs - px_session_macs(&cfg, 511));
  uint64_t ppt3 = 0;
  assert_int_equal(px_ses_price_per_token(3, &cfg, &ppt3), 0);
  assert_int_equal(ppt3, 3 * ppt);
  assert_int_equal(px_ses_price_per_token(UINT64_MAX, &cfg, &ppt3), PX_ERANGE);
  cfg.seq_len = 0;
  assert_int_equal(px_ses_price_per_token(1, &cfg, &ppt3), PX_EINVAL);
  uint64_t cost = 0;
  assert_int_equal(px_ses_cost(ppt, 10, &cost), 0);
  assert_int_equal(cost, 10 * ppt);
  assert_int_equal(px_ses_cost(UINT64_MAX, 2, &cost), PX_ERANGE);
}

/* A session generated honestly, and the same with its 3rd generated token
 * changed (what market.fault = perturb does): the auditor's sequence for
 * the honest one is the sequence itself; for the perturbed one it is the
 * prefix up to the change plus the true token, which the chain's replay
 * accepts (the auditor is honest) while the perturbed sequence fails it at
 * that index; the two tokens_hash differ. */
static void test_replay_seq(void **state) {
  (void)state;
  (void)tiny_write_tokenizer; /* the provider works on token ids only */
  char path[] = "/tmp/px_test_sesXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(tiny_write_model(path, 48), 0);
  px_llama2c_t *ck = NULL;
  px_llama_t *m = NULL;
  px_compute_t *c = NULL;
  assert_int_equal(px_llama2c_open(path, &ck), 0);
  assert_int_equal(px_llama_new(ck, &m), 0);
  px_llama2c_free(ck);
  unlink(path);
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  assert_int_equal(px_compute_new(&o, &c), 0);

  px_session_params_t p = {.temperature = 0.9f, .top_p = 0.95f, .seed = 11};
  int32_t seq[64] = {1, 300, 301, 302};
  uint32_t n_prompt = 4, n = n_prompt;
  px_session_gen_t g;
  memset(&g, 0, sizeof g);
  assert_int_equal(px_session_gen_init(&g, m, c, &p, seq, n_prompt, n), 0);
  while (n < 24) {
    int32_t t;
    int rc = px_session_gen_next(&g, &t);
    if (rc) break;
    seq[n++] = t;
  }
  px_session_gen_release(&g);
  assert_true(n >= n_prompt + 4);

  int32_t out[64];
  uint32_t n_out = 0;
  int mism = -1;
  assert_int_equal(
      px_ses_replay_seq(m, c, &p, seq, n_prompt, n, out, &n_out, &mism), 0);
  assert_int_equal(mism, 0);
  assert_int_equal(n_out, n);
  assert_memory_equal(out, seq, n * sizeof(int32_t));

  int32_t bad[64];
  memcpy(bad, seq, sizeof bad);
  uint32_t at = n_prompt + 2;
  bad[at] = seq[at] == 2 ? 3 : 2;
  uint32_t fm = 0;
  assert_int_equal(px_session_replay(m, c, &p, bad, n_prompt, n, &fm),
                   PX_EAUTH);
  assert_int_equal(fm, at);
  assert_int_equal(
      px_ses_replay_seq(m, c, &p, bad, n_prompt, n, out, &n_out, &mism), 0);
  assert_int_equal(mism, 1);
  assert_int_equal(n_out, at + 1);
  assert_memory_equal(out, seq, (at + 1) * sizeof(int32_t));
  /* what a dispute over the auditor's commitment would run: honest */
  uint32_t fm2 = 0;
  int32_t exp2 = 0;
  assert_int_equal(px_session_replay_from(m, c, &p, out, n_prompt, n_prompt,
                                          n_out, &fm2, &exp2),
                   0);
  uint8_t h1[32], h2[32];
  px_session_tokens_hash(bad, n, h1);
  px_session_tokens_hash(out, n_out, h2);
  assert_memory_not_equal(h1, h2, 32);
  /* in place, as the provider runs it */
  memcpy(out, bad, sizeof out);
  assert_int_equal(
      px_ses_replay_seq(m, c, &p, out, n_prompt, n, out, &n_out, &mism), 0);
  assert_int_equal(n_out, at + 1);
  assert_memory_equal(out, seq, (at + 1) * sizeof(int32_t));
  /* bad input is refused, not judged */
  bad[1] = TINY_V + 5;
  assert_int_equal(
      px_ses_replay_seq(m, c, &p, bad, n_prompt, n, out, &n_out, &mism),
      PX_ERANGE);
  assert_int_equal(px_ses_replay_seq(m, c, &p, seq, 0, n, out, &n_out, &mism),
                   PX_EINVAL);

  /* the price of this model: its average MACs per position */
  uint64_t ppt = 0;
  assert_int_equal(px_ses_price_per_token(2, px_llama_config(m), &ppt), 0);
  uint64_t macs = px_session_macs(px_llama_config(m), 48);
  assert_int_equal(ppt, 2 * ((macs + 47) / 48));
  px_compute_free(c);
  px_llama_free(m);
}

int main(void) {
  px_crypto_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open),           cmocka_unit_test(test_open_reply),
      cmocka_unit_test(test_cancel_receipt), cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_done),           cmocka_unit_test(test_price),
      cmocka_unit_test(test_replay_seq),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
