/*
 * session.c — inference sessions' deterministic core (plexus/session.h):
 * the resumable token generator, teacher-forced replay, the provider's
 * signed commitment and the payer's payment receipts.
 *
 * Why the generator can resume anywhere: px_llama_generate's only state
 * besides the KV cache is its px_rng_t, and px_sample_f32 takes exactly one
 * px_rng_next per call when temperature > 0 and the vocabulary has more
 * than one entry (argmax otherwise, no draw; the top-p branch draws its coin
 * before it looks at the cutoff).  So teacher-forcing prompt + k generated
 * tokens and advancing a freshly seeded rng by k draws (or none) puts a
 * generator in exactly the state px_llama_generate had after sampling those
 * k tokens; tests/unit/test_session.c checks it at every k.
 *
 * The generator feeds a token lazily: next() first feeds the token it
 * returned last time, then samples.  The token sampled at the last position
 * (seq_len - 1) is thus returned without a forward pass it could not have,
 * exactly as px_llama_generate emits it and stops.
 *
 * Encodings are fixed-width little-endian through px_writer/px_reader;
 * floats travel as their IEEE-754 bits, and a negative zero or a NaN is
 * refused so that one parameter set has one encoding (one signature).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/session.h"
#include "base/px_internal.h"

static const char k_tokens_domain[] = "plexus-session-tokens-v1";
static const char k_commit_domain[] = "plexus-session-commit-v1";
static const char k_receipt_domain[] = "plexus-session-receipt-v1";

int px_session_params_check(const px_session_params_t *p) {
  if (!p || !(p->temperature >= 0.0f) ||
      !(p->top_p >= 0.0f && p->top_p <= 1.0f))
    return PX_EINVAL;
  return 0;
}

void px_session_tokens_hash(const int32_t *t, size_t n, uint8_t out[32]) {
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, k_tokens_domain, sizeof k_tokens_domain - 1);
  uint8_t b[4 * 64];
  px_put_u32le(b, (uint32_t)n);
  px_hash_update(&st, b, 4);
  size_t i = 0;
  while (i < n) {
    size_t k = 0;
    for (; k < 64 && i < n; k++, i++)
      px_put_u32le(b + 4 * k, (uint32_t)t[i]);
    px_hash_update(&st, b, 4 * k);
  }
  px_hash_final(&st, out);
}

/* ---- generator ----------------------------------------------------------- */

/* Does sampling with these params at this vocab draw from the rng? */
static int draws(const px_session_params_t *p, int vocab) {
  return p->temperature > 0.0f && vocab > 1;
}

int px_session_gen_init(px_session_gen_t *g, px_llama_t *m, px_compute_t *c,
                        const px_session_params_t *p, const int32_t *tokens,
                        uint32_t n_prompt, uint32_t n_have) {
  memset(g, 0, sizeof *g);
  if (!m || !c || !tokens || px_session_params_check(p) || n_prompt < 1 ||
      n_have < n_prompt)
    return PX_EINVAL;
  const px_llama2c_config_t *cf = px_llama_config(m);
  if ((uint64_t)n_have > (uint64_t)cf->seq_len + 1) return PX_EINVAL;
  for (uint32_t i = 0; i < n_have; i++) {
    if (tokens[i] < 0 || tokens[i] >= cf->vocab_size) return PX_ERANGE;
    if (i >= n_prompt && tokens[i] == PX_SESSION_BOS) return PX_EINVAL;
  }
  g->probs = px_malloc((size_t)cf->vocab_size * sizeof(float));
  g->idx = px_malloc((size_t)cf->vocab_size * sizeof(int));
  if (!g->probs || !g->idx) {
    px_session_gen_release(g);
    return PX_ENOMEM;
  }
  g->m = m;
  g->c = c;
  g->p = *p;
  g->vocab = cf->vocab_size;
  g->seq_len = cf->seq_len;
  px_rng_seed(&g->rng, p->seed);
  if (draws(p, g->vocab))
    for (uint32_t i = n_prompt; i < n_have; i++)
      (void)px_rng_next(&g->rng);
  /* Feed all but the last token now; next() feeds the last one (unless
   * the context is already full, where next() reports PX_ELIMIT). */
  for (uint32_t i = 0; i + 1 < n_have; i++) {
    int rc = px_llama_forward(m, c, tokens[i], (int)i, &g->logits, NULL);
    if (rc) {
      px_session_gen_release(g);
      return rc;
    }
  }
  g->n = n_have;
  g->last = tokens[n_have - 1];
  g->fed = 0;
  return 0;
}

int px_session_gen_next(px_session_gen_t *g, int32_t *tok) {
  if (!g->m) return PX_ESTATE;
  if (g->done) return g->done;
  if (!g->fed) {
    /* feeding tokens[n-1] at position n-1 needs n-1 < seq_len */
    if (g->n > (uint32_t)g->seq_len) return g->done = PX_ELIMIT;
    int rc =
        px_llama_forward(g->m, g->c, g->last, (int)g->n - 1, &g->logits, NULL);
    if (rc) return rc;
    g->fed = 1;
  }
  int next = px_sample_f32(g->logits, g->vocab, g->p.temperature, g->p.top_p,
                           &g->rng, g->probs, g->idx);
  if (next == PX_SESSION_BOS) return g->done = PX_ECLOSED;
  g->last = next;
  g->n++;
  g->fed = 0;
  *tok = next;
  return 0;
}

uint32_t px_session_gen_count(const px_session_gen_t *g) { return g->n; }

void px_session_gen_release(px_session_gen_t *g) {
  if (!g) return;
  px_free(g->probs);
  px_free(g->idx);
  memset(g, 0, sizeof *g);
}

/* ---- replay -------------------------------------------------------------- */

int px_session_replay_from(px_llama_t *m, px_compute_t *c,
                           const px_session_params_t *p, const int32_t *tokens,
                           uint32_t n_prompt, uint32_t n_check,
                           uint32_t n_tokens, uint32_t *first_mismatch,
                           int32_t *expected) {
  if (first_mismatch) *first_mismatch = 0;
  if (expected) *expected = 0;
  if (!m || !c || !tokens || px_session_params_check(p) || n_prompt < 1 ||
      n_check < n_prompt || n_tokens < n_check)
    return PX_EINVAL;
  const px_llama2c_config_t *cf = px_llama_config(m);
  if ((uint64_t)n_tokens > (uint64_t)cf->seq_len + 1) return PX_EINVAL;
  for (uint32_t i = 0; i < n_tokens; i++)
    if (tokens[i] < 0 || tokens[i] >= cf->vocab_size) return PX_ERANGE;
  for (uint32_t i = n_prompt; i < n_check; i++)
    if (tokens[i] == PX_SESSION_BOS) return PX_EINVAL;
  if (n_tokens == n_check) return 0;
  float *probs = px_malloc((size_t)cf->vocab_size * sizeof(float));
  int *idx = px_malloc((size_t)cf->vocab_size * sizeof(int));
  int rc = 0;
  if (!probs || !idx) {
    rc = PX_ENOMEM;
    goto out;
  }
  px_rng_t rng;
  px_rng_seed(&rng, p->seed);
  /* Position i's logits predict token i+1; prompt positions before
   * n_prompt-1 predict prompt tokens and sample nothing. */
  int draw = draws(p, cf->vocab_size);
  for (uint32_t i = 0; i + 1 < n_tokens; i++) {
    float *logits;
    rc = px_llama_forward(m, c, tokens[i], (int)i, &logits, NULL);
    if (rc) goto out;
    if (i + 1 < n_prompt) continue;
    if (i + 1 < n_check) { /* a given token: the draw sampling it took */
      if (draw) (void)px_rng_next(&rng);
      continue;
    }
    int want = px_sample_f32(logits, cf->vocab_size, p->temperature, p->top_p,
                             &rng, probs, idx);
    if (want != tokens[i + 1] || want == PX_SESSION_BOS) {
      if (first_mismatch) *first_mismatch = i + 1;
      if (expected) *expected = want;
      rc = PX_EAUTH;
      goto out;
    }
  }
out:
  px_free(probs);
  px_free(idx);
  return rc;
}

int px_session_replay_ex(px_llama_t *m, px_compute_t *c,
                         const px_session_params_t *p, const int32_t *tokens,
                         uint32_t n_prompt, uint32_t n_tokens,
                         uint32_t *first_mismatch, int32_t *expected) {
  return px_session_replay_from(m, c, p, tokens, n_prompt, n_prompt, n_tokens,
                                first_mismatch, expected);
}

int px_session_replay(px_llama_t *m, px_compute_t *c,
                      const px_session_params_t *p, const int32_t *tokens,
                      uint32_t n_prompt, uint32_t n_tokens,
                      uint32_t *first_mismatch) {
  return px_session_replay_ex(m, c, p, tokens, n_prompt, n_tokens,
                              first_mismatch, NULL);
}

/* ---- work bound ---------------------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
static uint64_t sat_mul(uint64_t a, uint64_t b) {
  return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

uint64_t px_session_macs(const px_llama2c_config_t *cfg, uint32_t n_tokens) {
  if (!cfg || cfg->n_heads <= 0) return UINT64_MAX;
  uint64_t D = (uint64_t)cfg->dim, H = (uint64_t)cfg->hidden_dim;
  uint64_t L = (uint64_t)cfg->n_layers, V = (uint64_t)cfg->vocab_size;
  uint64_t kv = D * (uint64_t)cfg->n_kv_heads / (uint64_t)cfg->n_heads;
  uint64_t n = n_tokens;
  /* per position: q, o (D x D), k, v (kv x D), w1, w3, w2 (H x D) per
   * layer, classifier V x D */
  uint64_t per_layer =
      sat_add(sat_mul(2, sat_mul(D, D)),
              sat_add(sat_mul(2, sat_mul(kv, D)), sat_mul(3, sat_mul(H, D))));
  uint64_t per_pos = sat_add(sat_mul(L, per_layer), sat_mul(V, D));
  uint64_t total = sat_mul(n, per_pos);
  /* attention at position pos: scores and the weighted sum over pos+1
   * keys, n_heads x head_size = D each: 2 * D * (pos + 1); summed over
   * pos = 0..n-1: D * n * (n + 1) per layer */
  uint64_t att = sat_mul(L, sat_mul(D, sat_mul(n, n + 1)));
  return sat_add(total, att);
}

/* ---- commitment ---------------------------------------------------------- */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float f32_from(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int commit_fields_ok(const px_session_commit_t *c) {
  return !px_session_params_check(&c->params) &&
         !signbit(c->params.temperature) && !signbit(c->params.top_p) &&
         c->n_prompt >= 1 && c->n_tokens <= PX_SESSION_MAX_TOKENS &&
         c->n_forced <= c->n_tokens &&
         c->n_prompt <= c->n_tokens - c->n_forced &&
         (c->mode == PX_SESSION_GENERATE || c->mode == PX_SESSION_REPLAY);
}

static void commit_write(px_writer_t *w, const px_session_commit_t *c,
                         int with_sig) {
  px_writer_u16(w, PX_SESSION_TAG_COMMIT);
  px_writer_u8(w, PX_SESSION_VERSION);
  px_writer_fixed(w, c->session_id, 32);
  px_writer_fixed(w, c->channel_id, 32);
  px_writer_fixed(w, c->model, 32);
  px_writer_u64(w, c->model_size);
  px_writer_u32(w, f32_bits(c->params.temperature));
  px_writer_u32(w, f32_bits(c->params.top_p));
  px_writer_u64(w, c->params.seed);
  px_writer_u32(w, c->n_prompt);
  px_writer_u32(w, c->n_tokens);
  px_writer_u32(w, c->n_forced);
  px_writer_fixed(w, c->tokens_hash, 32);
  px_writer_u8(w, c->mode);
  px_writer_fixed(w, c->provider, PX_PK_LEN);
  if (with_sig) px_writer_fixed(w, c->sig, PX_SIG_LEN);
}

/* domain || encoding without sig. */
static int signed_bytes(const px_session_commit_t *c, px_buf_t *b) {
  px_writer_t w;
  px_writer_init(&w, b);
  px_writer_fixed(&w, k_commit_domain, sizeof k_commit_domain - 1);
  commit_write(&w, c, 0);
  return px_writer_finish(&w);
}

int px_session_commit_sign(px_session_commit_t *c, const px_keypair_t *kp) {
  if (!c || !kp || !commit_fields_ok(c)) return PX_EINVAL;
  memcpy(c->provider, kp->pk, PX_PK_LEN);
  px_buf_t b;
  px_buf_init(&b, 512);
  int rc = signed_bytes(c, &b);
  if (!rc) px_sign(kp, b.data, b.len, c->sig);
  px_buf_release(&b);
  return rc;
}

int px_session_commit_verify(const px_session_commit_t *c) {
  if (!c || !commit_fields_ok(c)) return PX_EINVAL;
  px_buf_t b;
  px_buf_init(&b, 512);
  int rc = signed_bytes(c, &b);
  if (!rc && px_verify(c->provider, b.data, b.len, c->sig)) rc = PX_EBADSIG;
  px_buf_release(&b);
  return rc;
}

int px_session_commit_encode(const px_session_commit_t *c, px_buf_t *out) {
  if (!c || !commit_fields_ok(c)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  commit_write(&w, c, 1);
  return px_writer_finish(&w);
}

int px_session_commit_decode(const void *p, size_t n, px_session_commit_t *c) {
  memset(c, 0, sizeof *c);
  px_reader_t r;
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_SESSION_TAG_COMMIT)
    px_reader_fail(&r, PX_EDECODE);
  if (!r.err && px_reader_u8(&r) != PX_SESSION_VERSION)
    px_reader_fail(&r, PX_EVERSION);
  px_reader_fixed(&r, c->session_id, 32);
  px_reader_fixed(&r, c->channel_id, 32);
  px_reader_fixed(&r, c->model, 32);
  c->model_size = px_reader_u64(&r);
  c->params.temperature = f32_from(px_reader_u32(&r));
  c->params.top_p = f32_from(px_reader_u32(&r));
  c->params.seed = px_reader_u64(&r);
  c->n_prompt = px_reader_u32(&r);
  c->n_tokens = px_reader_u32(&r);
  c->n_forced = px_reader_u32(&r);
  px_reader_fixed(&r, c->tokens_hash, 32);
  c->mode = px_reader_u8(&r);
  px_reader_fixed(&r, c->provider, PX_PK_LEN);
  px_reader_fixed(&r, c->sig, PX_SIG_LEN);
  if (!r.err && !commit_fields_ok(c)) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(c, 0, sizeof *c);
  return rc;
}

/* ---- receipts ------------------------------------------------------------ */

int px_session_receipt_msg(const char *chain_id, const uint8_t channel_id[32],
                           uint64_t cumulative,
                           uint8_t out[PX_SESSION_RECEIPT_MSG_MAX], size_t *n) {
  *n = 0;
  if (!chain_id) return PX_EINVAL;
  size_t cl = strlen(chain_id);
  if (cl >= 48) return PX_EINVAL;
  size_t dl = sizeof k_receipt_domain - 1, o = 0;
  memcpy(out, k_receipt_domain, dl);
  o += dl;
  out[o++] = (uint8_t)cl;
  memcpy(out + o, chain_id, cl);
  o += cl;
  memcpy(out + o, channel_id, 32);
  o += 32;
  px_put_u64le(out + o, cumulative);
  o += 8;
  *n = o;
  return 0;
}

int px_session_receipt_sign(const px_keypair_t *payer, const char *chain_id,
                            const uint8_t channel_id[32], uint64_t cumulative,
                            uint8_t sig[PX_SIG_LEN]) {
  uint8_t msg[PX_SESSION_RECEIPT_MSG_MAX];
  size_t n;
  int rc = px_session_receipt_msg(chain_id, channel_id, cumulative, msg, &n);
  if (rc) return rc;
  px_sign(payer, msg, n, sig);
  return 0;
}

int px_session_receipt_verify(const uint8_t payer[PX_PK_LEN],
                              const char *chain_id,
                              const uint8_t channel_id[32], uint64_t cumulative,
                              const uint8_t sig[PX_SIG_LEN]) {
  uint8_t msg[PX_SESSION_RECEIPT_MSG_MAX];
  size_t n;
  int rc = px_session_receipt_msg(chain_id, channel_id, cumulative, msg, &n);
  if (rc) return rc;
  return px_verify(payer, msg, n, sig) ? PX_EBADSIG : 0;
}
