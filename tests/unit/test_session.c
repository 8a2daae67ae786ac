/*
 * test_session.c — inference sessions' deterministic core (plexus/session.h)
 * over the seeded tiny llama2.c model of tests/gateway/tiny_model.h.
 *
 * Proven here:
 *  - the incremental generator yields exactly px_llama_generate's tokens for
 *    several seeds, temperatures (0 included) and top_p values, and ends at
 *    BOS (PX_ECLOSED) or at the end of the context (PX_ELIMIT) where
 *    px_llama_generate ends;
 *  - resuming from prompt + k generated tokens, for every k, continues with
 *    the same tokens;
 *  - replay accepts the true sequence and reports the first index of a
 *    perturbed one (and the token sampling gives there), a premature BOS
 *    included; bad input is refused;
 *  - tokens_hash depends on every token and on the count;
 *  - a commitment signs, encodes, decodes and verifies; any tampered field
 *    or signature byte is refused; the decoder is strict;
 *  - receipts verify only for their chain, channel, amount and payer;
 *  - px_session_macs counts the model's matmuls and attention.
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

#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/session.h"

#include "gateway/tiny_model.h"

#define SEQ 48

static char g_path[256];
static px_llama_t *g_m;
static px_compute_t *g_c;

static int setup(void **st) {
  (void)st;
  (void)tiny_write_tokenizer; /* the tokenizer is not needed here */
  char dir[] = "/tmp/plexus-session-XXXXXX";
  if (!mkdtemp(dir)) return -1;
  snprintf(g_path, sizeof g_path, "%s/tiny.bin", dir);
  if (tiny_write_model(g_path, SEQ)) return -1;
  px_llama2c_t *ck = NULL;
  if (px_llama2c_open(g_path, &ck)) return -1;
  int rc = px_llama_new(ck, &g_m);
  px_llama2c_free(ck);
  if (rc) return -1;
  px_compute_opts_t o = {-1, 1};
  return px_compute_new(&o, &g_c) ? -1 : 0;
}

static int teardown(void **st) {
  (void)st;
  px_llama_free(g_m);
  px_compute_free(g_c);
  unlink(g_path);
  char *slash = strrchr(g_path, '/');
  if (slash) {
    *slash = 0;
    rmdir(g_path);
  }
  return 0;
}

typedef struct {
  int32_t t[SEQ + 2];
  int n;
} seq_t;

static int collect(void *ud, int prev, int token) {
  (void)prev;
  seq_t *s = ud;
  if (s->n < SEQ + 2) s->t[s->n++] = token;
  return 0;
}

static const int32_t k_prompt[] = {1, 300, 301, 302, 303};
#define NP 5

/* Reference: px_llama_generate with all positions. */
static void reference(const px_session_params_t *p, seq_t *out) {
  int pr[NP];
  for (int i = 0; i < NP; i++)
    pr[i] = k_prompt[i];
  px_generate_opts_t o = {SEQ, p->temperature, p->top_p, p->seed};
  memset(out, 0, sizeof *out);
  int n = 0;
  assert_int_equal(px_llama_generate(g_m, g_c, pr, NP, &o, collect, out, &n),
                   0);
  assert_int_equal(n, out->n);
}

/* Generator from prompt + the first k reference tokens; returns the full
 * sequence (prompt included) and the end code. */
static int generate(const px_session_params_t *p, const seq_t *ref, int k,
                    int32_t *all, uint32_t *n_all) {
  int32_t in[NP + SEQ + 2];
  memcpy(in, k_prompt, sizeof k_prompt);
  for (int i = 0; i < k; i++)
    in[NP + i] = ref->t[i];
  px_session_gen_t g;
  assert_int_equal(
      px_session_gen_init(&g, g_m, g_c, p, in, NP, (uint32_t)(NP + k)), 0);
  memcpy(all, in, sizeof(int32_t) * (size_t)(NP + k));
  uint32_t n = (uint32_t)(NP + k);
  assert_int_equal(px_session_gen_count(&g), n);
  int rc;
  int32_t tok;
  while ((rc = px_session_gen_next(&g, &tok)) == 0) {
    assert_true(n < NP + SEQ + 2);
    all[n++] = tok;
    assert_int_equal(px_session_gen_count(&g), n);
  }
  /* sticky end */
  assert_int_equal(px_session_gen_next(&g, &tok), rc);
  px_session_gen_release(&g);
  *n_all = n;
  return rc;
}

static const px_session_params_t k_params[] = {
    {0.0f, 0.0f, 1},  {0.0f, 0.9f, 5},     {0.8f, 0.0f, 42}, {1.0f, 0.9f, 7},
    {1.5f, 1.0f, 99}, {0.5f, 0.5f, 12345}, {2.0f, 0.95f, 3}, {1.2f, 0.0f, 2026},
};

static void test_gen_equals_generate(void **st) {
  (void)st;
  int saw_bos = 0, saw_len = 0;
  for (size_t i = 0; i < sizeof k_params / sizeof k_params[0]; i++) {
    seq_t ref;
    reference(&k_params[i], &ref);
    int32_t all[NP + SEQ + 2];
    uint32_t n;
    int rc = generate(&k_params[i], &ref, 0, all, &n);
    assert_int_equal(n, (uint32_t)(NP + ref.n));
    assert_memory_equal(all + NP, ref.t, sizeof(int32_t) * (size_t)ref.n);
    /* px_llama_generate ran SEQ positions: a full run has SEQ+1 tokens */
    if (rc == PX_ELIMIT) {
      assert_int_equal(n, SEQ + 1);
      saw_len = 1;
    } else {
      assert_int_equal(rc, PX_ECLOSED);
      assert_true(n < SEQ + 1);
      saw_bos = 1;
    }
  }
  assert_true(saw_len);
  (void)saw_bos; /* test_gen_bos makes sure of that end */
}

/* Hot sampling until the model samples BOS: the generator ends there too
 * (PX_ECLOSED), with and without resuming just before it. */
static void test_gen_bos(void **st) {
  (void)st;
  int found = 0;
  for (uint64_t seed = 1; seed < 400 && found < 3; seed++) {
    px_session_params_t p = {8.0f, seed % 2 ? 0.0f : 0.999f, seed};
    seq_t ref;
    reference(&p, &ref);
    if (ref.n >= SEQ - NP + 1) continue; /* ran to the end of the context */
    found++;
    int32_t all[NP + SEQ + 2];
    uint32_t n;
    assert_int_equal(generate(&p, &ref, 0, all, &n), PX_ECLOSED);
    assert_int_equal(n, (uint32_t)(NP + ref.n));
    assert_memory_equal(all + NP, ref.t, sizeof(int32_t) * (size_t)ref.n);
    assert_int_equal(generate(&p, &ref, ref.n, all, &n), PX_ECLOSED);
    assert_int_equal(n, (uint32_t)(NP + ref.n));
  }
  assert_true(found > 0);
}

static void test_resume_every_k(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof k_params / sizeof k_params[0]; i++) {
    seq_t ref;
    reference(&k_params[i], &ref);
    for (int k = 0; k <= ref.n; k++) {
      int32_t all[NP + SEQ + 2];
      uint32_t n;
      (void)generate(&k_params[i], &ref, k, all, &n);
      assert_int_equal(n, (uint32_t)(NP + ref.n));
      assert_memory_equal(all + NP, ref.t, sizeof(int32_t) * (size_t)ref.n);
    }
  }
}

static void test_gen_bad_input(void **st) {
  (void)st;
  px_session_gen_t g;
  px_session_params_t p = {1.0f, 0.9f, 1};
  int32_t t[NP + 2];
  memcpy(t, k_prompt, sizeof k_prompt);
  t[NP] = 1; /* BOS among generated tokens */
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, t, NP, NP + 1),
                   PX_EINVAL);
  t[NP] = TINY_V; /* outside the vocab */
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, t, NP, NP + 1),
                   PX_ERANGE);
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, t, 0, 0), PX_EINVAL);
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, t, 3, 2), PX_EINVAL);
  px_session_params_t bad = {-1.0f, 0.5f, 1};
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &bad, t, NP, NP),
                   PX_EINVAL);
  bad.temperature = 1.0f;
  bad.top_p = 1.5f;
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &bad, t, NP, NP),
                   PX_EINVAL);
  /* more than seq_len + 1 tokens */
  int32_t big[SEQ + 2];
  for (int i = 0; i < SEQ + 2; i++)
    big[i] = 300;
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, big, 1, SEQ + 2),
                   PX_EINVAL);
  /* exactly seq_len + 1: the context is full */
  assert_int_equal(px_session_gen_init(&g, g_m, g_c, &p, big, 1, SEQ + 1), 0);
  int32_t tok;
  assert_int_equal(px_session_gen_next(&g, &tok), PX_ELIMIT);
  px_session_gen_release(&g);
  px_session_gen_release(&g); /* twice is fine */
}

static void test_replay(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof k_params / sizeof k_params[0]; i++) {
    const px_session_params_t *p = &k_params[i];
    seq_t ref;
    reference(p, &ref);
    int32_t all[NP + SEQ + 2];
    memcpy(all, k_prompt, sizeof k_prompt);
    memcpy(all + NP, ref.t, sizeof(int32_t) * (size_t)ref.n);
    uint32_t n = (uint32_t)(NP + ref.n), mm = 99;
    int32_t want = 0;
    assert_int_equal(px_session_replay(g_m, g_c, p, all, NP, n, &mm), 0);
    /* a prefix (stopped early) passes too */
    assert_int_equal(px_session_replay(g_m, g_c, p, all, NP, NP + 2, &mm), 0);
    assert_int_equal(px_session_replay(g_m, g_c, p, all, NP, NP, &mm), 0);
    if (ref.n < 4) continue;
    /* perturb generated token j */
    for (uint32_t j = NP; j < n; j += 7) {
      int32_t keep = all[j];
      all[j] = keep == 300 ? 301 : 300;
      assert_int_equal(
          px_session_replay_ex(g_m, g_c, p, all, NP, n, &mm, &want), PX_EAUTH);
      assert_int_equal(mm, j);
      assert_int_equal(want, keep);
      all[j] = keep;
    }
    /* a BOS inside the sequence is never legitimate */
    int32_t keep = all[NP + 1];
    all[NP + 1] = 1;
    assert_int_equal(px_session_replay_ex(g_m, g_c, p, all, NP, n, &mm, &want),
                     PX_EAUTH);
    assert_int_equal(mm, NP + 1);
    assert_int_equal(want, keep);
    all[NP + 1] = keep;
  }
  /* a perturbed prompt is not a mismatch of the provider's: only
   * generated tokens are compared, so the replay follows the new prompt and
   * flags the first generated token if it changed */
  int32_t t[3] = {1, 300, TINY_V};
  uint32_t mm;
  px_session_params_t p0 = {0.0f, 0.0f, 0};
  assert_int_equal(px_session_replay(g_m, g_c, &p0, t, 2, 3, &mm), PX_ERANGE);
  assert_int_equal(px_session_replay(g_m, g_c, &p0, t, 0, 3, &mm), PX_EINVAL);
  assert_int_equal(px_session_replay(g_m, g_c, &p0, t, 3, 2, &mm), PX_EINVAL);
}

/* A session resumed from a prefix with a wrong token in it: the resumed
 * provider's own tokens pass px_session_replay_from (the rng advanced for
 * the given ones), while checking from the prompt flags the wrong one. */
static void test_replay_from(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof k_params / sizeof k_params[0]; i++) {
    const px_session_params_t *p = &k_params[i];
    seq_t ref;
    reference(p, &ref);
    if (ref.n < 8) continue;
    const uint32_t k = 4; /* given generated tokens */
    int32_t all[NP + SEQ + 2];
    memcpy(all, k_prompt, sizeof k_prompt);
    memcpy(all + NP, ref.t, sizeof(int32_t) * k);
    all[NP + 1] = ref.t[1] == 300 ? 301 : 300;
    px_session_gen_t g;
    assert_int_equal(px_session_gen_init(&g, g_m, g_c, p, all, NP, NP + k), 0);
    uint32_t n = NP + k;
    int32_t tok;
    while (px_session_gen_next(&g, &tok) == 0)
      all[n++] = tok;
    px_session_gen_release(&g);
    uint32_t mm;
    int32_t want;
    assert_int_equal(
        px_session_replay_from(g_m, g_c, p, all, NP, NP + k, n, &mm, &want), 0);
    assert_int_equal(px_session_replay_ex(g_m, g_c, p, all, NP, n, &mm, &want),
                     PX_EAUTH);
    assert_int_equal(mm, NP + 1);
    assert_int_equal(want, ref.t[1]);
    /* a wrong token after the given ones is still caught */
    if (n > NP + k + 2) {
      int32_t keep = all[NP + k + 1];
      all[NP + k + 1] = keep == 300 ? 301 : 300;
      assert_int_equal(
          px_session_replay_from(g_m, g_c, p, all, NP, NP + k, n, &mm, &want),
          PX_EAUTH);
      assert_int_equal(mm, NP + k + 1);
      assert_int_equal(want, keep);
      all[NP + k + 1] = keep;
    }
    /* BOS among the given tokens is bad input, n_check out of range too */
    int32_t keep = all[NP];
    all[NP] = 1;
    assert_int_equal(
        px_session_replay_from(g_m, g_c, p, all, NP, NP + k, n, &mm, &want),
        PX_EINVAL);
    all[NP] = keep;
    assert_int_equal(
        px_session_replay_from(g_m, g_c, p, all, NP, NP - 1, n, &mm, &want),
        PX_EINVAL);
    assert_int_equal(
        px_session_replay_from(g_m, g_c, p, all, NP, n + 1, n, &mm, &want),
        PX_EINVAL);
  }
}

static void test_tokens_hash(void **st) {
  (void)st;
  int32_t a[200], b[200];
  for (int i = 0; i < 200; i++)
    a[i] = b[i] = i * 3;
  uint8_t ha[32], hb[32];
  px_session_tokens_hash(a, 200, ha);
  px_session_tokens_hash(b, 200, hb);
  assert_memory_equal(ha, hb, 32);
  for (int i = 0; i < 200; i += 37) {
    b[i]++;
    px_session_tokens_hash(b, 200, hb);
    assert_memory_not_equal(ha, hb, 32);
    b[i]--;
  }
  px_session_tokens_hash(a, 199, hb);
  assert_memory_not_equal(ha, hb, 32);
  /* n = 0 is defined and differs from a single 0 token */
  px_session_tokens_hash(a, 0, ha);
  px_session_tokens_hash(a, 1, hb);
  assert_memory_not_equal(ha, hb, 32);
}

static void make_commit(px_session_commit_t *c, const px_keypair_t *kp) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < 32; i++) {
    c->session_id[i] = (uint8_t)i;
    c->channel_id[i] = (uint8_t)(i + 40);
    c->model[i] = (uint8_t)(i + 80);
    c->tokens_hash[i] = (uint8_t)(i + 120);
  }
  c->model_size = 123456;
  c->params.temperature = 0.7f;
  c->params.top_p = 0.9f;
  c->params.seed = 0x1122334455667788ull;
  c->n_prompt = 5;
  c->n_tokens = 40;
  c->mode = PX_SESSION_GENERATE;
  assert_int_equal(px_session_commit_sign(c, kp), 0);
}

static void test_commit(void **st) {
  (void)st;
  px_keypair_t kp, other;
  assert_int_equal(px_key_generate(&kp), 0);
  assert_int_equal(px_key_generate(&other), 0);
  px_session_commit_t c, d;
  make_commit(&c, &kp);
  assert_memory_equal(c.provider, kp.pk, 32);
  assert_int_equal(px_session_commit_verify(&c), 0);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_session_commit_encode(&c, &b), 0);
  assert_int_equal(b.len, PX_SESSION_COMMIT_LEN);
  assert_int_equal(px_session_commit_decode(b.data, b.len, &d), 0);
  assert_memory_equal(&c, &d, sizeof c);
  assert_int_equal(px_session_commit_verify(&d), 0);
  /* every byte after the header matters to the signature */
  for (size_t i = 3; i < b.len; i++) {
    uint8_t keep = b.data[i];
    b.data[i] ^= 0x01;
    int rc = px_session_commit_decode(b.data, b.len, &d);
    if (rc == 0) assert_int_not_equal(px_session_commit_verify(&d), 0);
    b.data[i] = keep;
  }
  /* strictness */
  assert_int_equal(px_session_commit_decode(b.data, b.len - 1, &d), PX_ETRUNC);
  uint8_t longer[PX_SESSION_COMMIT_LEN + 1];
  memcpy(longer, b.data, b.len);
  longer[b.len] = 0;
  assert_int_equal(px_session_commit_decode(longer, b.len + 1, &d),
                   PX_ETRAILING);
  b.data[2] = 9; /* version */
  assert_int_equal(px_session_commit_decode(b.data, b.len, &d), PX_EVERSION);
  b.data[2] = PX_SESSION_VERSION;
  b.data[0] ^= 0xff; /* tag */
  assert_int_equal(px_session_commit_decode(b.data, b.len, &d), PX_EDECODE);
  b.data[0] ^= 0xff;
  /* bad field values are refused by decode, sign and encode alike */
  px_session_commit_t e = c;
  e.mode = 2;
  assert_int_equal(px_session_commit_sign(&e, &kp), PX_EINVAL);
  px_buf_t b2;
  px_buf_init(&b2, 0);
  assert_int_equal(px_session_commit_encode(&e, &b2), PX_EINVAL);
  e = c;
  e.n_prompt = 41;
  assert_int_equal(px_session_commit_sign(&e, &kp), PX_EINVAL);
  e = c;
  e.params.temperature = -0.0f; /* one value, one encoding */
  assert_int_equal(px_session_commit_sign(&e, &kp), PX_EINVAL);
  e = c;
  e.n_prompt = 0;
  assert_int_equal(px_session_commit_sign(&e, &kp), PX_EINVAL);
  e = c;
  e.n_forced = 36; /* 5 + 36 > 40 */
  assert_int_equal(px_session_commit_sign(&e, &kp), PX_EINVAL);
  e.n_forced = 35;
  assert_int_equal(px_session_commit_sign(&e, &kp), 0);
  e.n_forced = 34; /* n_forced is signed */
  assert_int_equal(px_session_commit_verify(&e), PX_EBADSIG);
  /* decoded mode byte 2 -> PX_EDECODE */
  size_t mode_off = PX_SESSION_COMMIT_LEN - 64 - 32 - 1;
  b.data[mode_off] = 2;
  assert_int_equal(px_session_commit_decode(b.data, b.len, &d), PX_EDECODE);
  b.data[mode_off] = 0;
  /* another key's signature, or the provider swapped */
  e = c;
  memcpy(e.provider, other.pk, 32);
  assert_int_equal(px_session_commit_verify(&e), PX_EBADSIG);
  e = c;
  e.mode = PX_SESSION_REPLAY;
  assert_int_equal(px_session_commit_verify(&e), PX_EBADSIG);
  px_buf_release(&b);
  px_buf_release(&b2);
}

static void test_receipt(void **st) {
  (void)st;
  px_keypair_t kp, other;
  assert_int_equal(px_key_generate(&kp), 0);
  assert_int_equal(px_key_generate(&other), 0);
  uint8_t ch[32], ch2[32], sig[64];
  memset(ch, 7, 32);
  memset(ch2, 8, 32);
  assert_int_equal(px_session_receipt_sign(&kp, "chain-a", ch, 1000, sig), 0);
  assert_int_equal(px_session_receipt_verify(kp.pk, "chain-a", ch, 1000, sig),
                   0);
  assert_int_equal(px_session_receipt_verify(kp.pk, "chain-b", ch, 1000, sig),
                   PX_EBADSIG);
  assert_int_equal(px_session_receipt_verify(kp.pk, "chain-a", ch2, 1000, sig),
                   PX_EBADSIG);
  assert_int_equal(px_session_receipt_verify(kp.pk, "chain-a", ch, 1001, sig),
                   PX_EBADSIG);
  assert_int_equal(
      px_session_receipt_verify(other.pk, "chain-a", ch, 1000, sig),
      PX_EBADSIG);
  char longid[60];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  assert_int_equal(px_session_receipt_sign(&kp, longid, ch, 1, sig), PX_EINVAL);
  uint8_t msg[PX_SESSION_RECEIPT_MSG_MAX];
  size_t n;
  longid[47] = 0; /* 47 chars: the longest chain id */
  assert_int_equal(px_session_receipt_msg(longid, ch, 1, msg, &n), 0);
  assert_int_equal(n, PX_SESSION_RECEIPT_MSG_MAX - 1);
}

static void test_macs(void **st) {
  (void)st;
  const px_llama2c_config_t *cf = px_llama_config(g_m);
  uint64_t D = TINY_D, H = TINY_HID, L = TINY_L, V = TINY_V;
  uint64_t per = L * (4 * D * D + 3 * H * D) + V * D;
  assert_true(px_session_macs(cf, 0) == 0);
  assert_true(px_session_macs(cf, 1) == per + L * D * 2);
  assert_true(px_session_macs(cf, 10) == 10 * per + L * D * 10 * 11);
  px_llama2c_config_t big = *cf;
  big.dim = 1 << 20;
  big.hidden_dim = 1 << 20;
  big.n_layers = 1 << 20;
  assert_true(px_session_macs(&big, UINT32_MAX) == UINT64_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gen_equals_generate),
      cmocka_unit_test(test_gen_bos),
      cmocka_unit_test(test_resume_every_k),
      cmocka_unit_test(test_gen_bad_input),
      cmocka_unit_test(test_replay),
      cmocka_unit_test(test_replay_from),
      cmocka_unit_test(test_tokens_hash),
      cmocka_unit_test(test_commit),
      cmocka_unit_test(test_receipt),
      cmocka_unit_test(test_macs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
