/*
 * llama.c — a Llama-style decoder running llama2.c checkpoints, one token
 * at a time, with a KV cache (the forward pass of llama2.c's run.c).
 *
 * Per token at position pos:
 *   x = embedding[token]
 *   for each layer l:
 *     xb = rmsnorm(x, rms_att[l]);  q = Wq xb; k = Wk xb; v = Wv xb
 *     rope(q, n_heads), rope(k, n_kv_heads) at pos; k, v -> cache[l][pos]
 *     xb = attention(q, cache[l][0..pos])   (grouped-query)
 *     x = x + Wo xb
 *     xb = rmsnorm(x, rms_ffn[l]);  h = silu(W1 xb) * (W3 xb)
 *     x = x + W2 h
 *   logits = Wcls rmsnorm(x, rms_final)
 * Every step is a compute.h kernel (docs/compute.md gives each one's
 * operation order), so logits are bit-identical at every SIMD level and
 * thread count; nothing here reduces on its own.  eps = 1e-5 as llama2.c.
 *
 * Weights are packed once at load: f32 (versions 0, 1) with px_pack_f32
 * and run with px_matmul_f32_packed; int8 (version 2) with px_pack_q8 and
 * px_matmul_q8_packed (activations quantised per group on the fly, as
 * llama2.c's runq.c does).  Each token then streams every weight once:
 * generation is bound by memory bandwidth.  The token embedding is kept as
 * f32 (dequantised for version 2, as runq.c does).
 */
#include <string.h>

#include "plexus/model.h"
#include "base/px_internal.h"

enum { W_Q, W_K, W_V, W_O, W_1, W_2, W_3, W_COUNT };

struct px_llama {
  px_llama2c_config_t cfg;
  int q8, G;
  float *emb;                           /* [vocab][dim] */
  float *rms_att, *rms_ffn, *rms_final; /* copies */
  uint8_t *blob_raw;                    /* packed weights, one allocation */
  const void **w;                       /* [L][W_COUNT] into the blob */
  const void *wcls;
  size_t weight_bytes;
  /* run state */
  float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits, *probs;
  int *idx;
  float *kcache, *vcache; /* [L][seq_len][kv_dim] */
};

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static void mat_dims(const px_llama2c_config_t *c, int which, int *N, int *K) {
  int kv = c->n_kv_heads * c->head_size, qd = c->n_heads * c->head_size;
  switch (which) {
  case W_Q:
    *N = qd, *K = c->dim;
    break;
  case W_K:
  case W_V:
    *N = kv, *K = c->dim;
    break;
  case W_O:
    *N = c->dim, *K = qd;
    break;
  case W_1:
  case W_3:
    *N = c->hidden_dim, *K = c->dim;
    break;
  default:
    *N = c->dim, *K = c->hidden_dim;
    break;
  }
}

static size_t packed_size(const px_llama_t *m, int N, int K) {
  return m->q8 ? px_pack_q8_size(N, K, m->G)
               : px_pack_f32_size(N, K) * sizeof(float);
}

static const float *f32_src(const px_llama2c_t *ck, int which, int l) {
  int N, K;
  mat_dims(&ck->cfg, which, &N, &K);
  size_t per = (size_t)N * K;
  const float *base[W_COUNT] = {ck->wq, ck->wk, ck->wv, ck->wo,
                                ck->w1, ck->w2, ck->w3};
  return base[which] + (size_t)l * per;
}

static const px_q8_ref_t *q8_src(const px_llama2c_t *ck, int which, int l) {
  px_q8_ref_t *base[W_COUNT] = {ck->q_wq, ck->q_wk, ck->q_wv, ck->q_wo,
                                ck->q_w1, ck->q_w2, ck->q_w3};
  return &base[which][l];
}

static float *copy_f32(const float *src, size_t n) {
  float *p = px_malloc(n * sizeof(float));
  if (p) memcpy(p, src, n * sizeof(float));
  return p;
}

int px_llama_new(const px_llama2c_t *ck, px_llama_t **out) {
  *out = NULL;
  const px_llama2c_config_t *c = &ck->cfg;
  int L = c->n_layers, D = c->dim, V = c->vocab_size, S = c->seq_len;
  int kv = c->n_kv_heads * c->head_size;
  if (c->n_heads * c->head_size != D) return PX_EINVAL;
  px_llama_t *m = px_calloc(1, sizeof *m);
  if (!m) return PX_ENOMEM;
  m->cfg = *c;
  m->q8 = c->version == 2;
  m->G = c->group_size;
  if (m->q8 && (m->G <= 0 || m->G % 4 || D % m->G || c->hidden_dim % m->G ||
                D > 32768 || c->hidden_dim > 32768)) {
    px_free(m);
    return PX_EINVAL;
  }
  size_t total = 0;
  for (int w = 0; w < W_COUNT; w++) {
    int N, K;
    mat_dims(c, w, &N, &K);
    total += (size_t)L * align64(packed_size(m, N, K));
  }
  total += align64(packed_size(m, V, D));
  m->blob_raw = px_malloc(total + 64);
  m->w = px_calloc((size_t)L * W_COUNT, sizeof *m->w);
  size_t ed = (size_t)V * D;
  m->emb = px_malloc(ed * sizeof(float));
  m->rms_att = copy_f32(ck->rms_att, (size_t)L * D);
  m->rms_ffn = copy_f32(ck->rms_ffn, (size_t)L * D);
  m->rms_final = copy_f32(ck->rms_final, (size_t)D);
  int H = c->hidden_dim;
  m->x = px_calloc((size_t)D, sizeof(float));
  m->xb = px_calloc((size_t)D, sizeof(float));
  m->xb2 = px_calloc((size_t)D, sizeof(float));
  m->hb = px_calloc((size_t)H, sizeof(float));
  m->hb2 = px_calloc((size_t)H, sizeof(float));
  m->q = px_calloc((size_t)D, sizeof(float));
  m->att = px_calloc((size_t)c->n_heads * S, sizeof(float));
  m->logits = px_calloc((size_t)V, sizeof(float));
  m->probs = px_calloc((size_t)V, sizeof(float));
  m->idx = px_calloc((size_t)V, sizeof(int));
  m->kcache = px_calloc((size_t)L * S * kv, sizeof(float));
  m->vcache = px_calloc((size_t)L * S * kv, sizeof(float));
  if (!m->blob_raw || !m->w || !m->emb || !m->rms_att || !m->rms_ffn ||
      !m->rms_final || !m->x || !m->xb || !m->xb2 || !m->hb || !m->hb2 ||
      !m->q || !m->att || !m->logits || !m->probs || !m->idx || !m->kcache ||
      !m->vcache) {
    px_llama_free(m);
    return PX_ENOMEM;
  }
  uint8_t *p = (uint8_t *)align64((size_t)m->blob_raw);
  size_t bytes = 0;
  for (int l = 0; l < L; l++)
    for (int w = 0; w < W_COUNT; w++) {
      int N, K;
      mat_dims(c, w, &N, &K);
      if (m->q8) {
        const px_q8_ref_t *r = q8_src(ck, w, l);
        px_pack_q8(p, r->q, r->s, m->G, N, K);
      } else {
        px_pack_f32((float *)p, f32_src(ck, w, l), K, N, K);
      }
      m->w[l * W_COUNT + w] = p;
      bytes += m->q8 ? (size_t)N * K + (size_t)N * (K / m->G) * 4
                     : (size_t)N * K * 4;
      p += align64(packed_size(m, N, K));
    }
  if (m->q8) {
    px_pack_q8(p, ck->q_cls.q, ck->q_cls.s, m->G, V, D);
    for (size_t i = 0; i < ed; i++)
      m->emb[i] = (float)ck->q_tokens.q[i] * ck->q_tokens.s[i / (size_t)m->G];
    bytes += ed + ed / (size_t)m->G * 4;
  } else {
    px_pack_f32((float *)p, ck->wcls, D, V, D);
    memcpy(m->emb, ck->token_embedding, ed * sizeof(float));
    bytes += ed * 4;
  }
  m->wcls = p;
  bytes += ((size_t)2 * L + 1) * D * 4 + (size_t)D * 4; /* norms, one row */
  m->weight_bytes = bytes;
  *out = m;
  return 0;
}

void px_llama_free(px_llama_t *m) {
  if (!m) return;
  px_free(m->blob_raw);
  px_free(m->w);
  px_free(m->emb);
  px_free(m->rms_att);
  px_free(m->rms_ffn);
  px_free(m->rms_final);
  px_free(m->x);
  px_free(m->xb);
  px_free(m->xb2);
  px_free(m->hb);
  px_free(m->hb2);
  px_free(m->q);
  px_free(m->att);
  px_free(m->logits);
  px_free(m->probs);
  px_free(m->idx);
  px_free(m->kcache);
  px_free(m->vcache);
  px_free(m);
}

const px_llama2c_config_t *px_llama_config(const px_llama_t *m) {
  return &m->cfg;
}
size_t px_llama_weight_bytes(const px_llama_t *m) { return m->weight_bytes; }

static void matvec(px_llama_t *m, px_compute_t *c, float *out, const float *x,
                   const void *w, int N, int K) {
  if (m->q8)
    px_matmul_q8_packed(c, out, x, w, m->G, 1, N, K);
  else
    px_matmul_f32_packed(c, out, N, x, K, (const float *)w, NULL, 1, N, K);
}

int px_llama_forward(px_llama_t *m, px_compute_t *c, int token, int pos,
                     float **logits, px_trace_t *trace) {
  const px_llama2c_config_t *cf = &m->cfg;
  if (token < 0 || token >= cf->vocab_size || pos < 0 || pos >= cf->seq_len)
    return PX_ERANGE;
  int D = cf->dim, H = cf->hidden_dim, hs = cf->head_size;
  int kv = cf->n_kv_heads * hs, S = cf->seq_len;
  const float eps = 1e-5f;
  px_embedding_f32(m->x, m->emb, D, token);
  for (int l = 0; l < cf->n_layers; l++) {
    const void *const *w = m->w + (size_t)l * W_COUNT;
    float *kc = m->kcache + (size_t)l * S * kv;
    float *vc = m->vcache + (size_t)l * S * kv;
    float *k = kc + (size_t)pos * kv, *v = vc + (size_t)pos * kv;
    px_rmsnorm_f32(c, m->xb, m->x, m->rms_att + (size_t)l * D, 1, D, eps);
    matvec(m, c, m->q, m->xb, w[W_Q], D, D);
    matvec(m, c, k, m->xb, w[W_K], kv, D);
    matvec(m, c, v, m->xb, w[W_V], kv, D);
    px_rope_f32(m->q, cf->n_heads, hs, pos);
    px_rope_f32(k, cf->n_kv_heads, hs, pos);
    px_attention_f32(c, m->xb, m->q, kc, vc, m->att, cf->n_heads,
                     cf->n_kv_heads, hs, S, pos);
    matvec(m, c, m->xb2, m->xb, w[W_O], D, D);
    px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
    px_rmsnorm_f32(c, m->xb, m->x, m->rms_ffn + (size_t)l * D, 1, D, eps);
    matvec(m, c, m->hb, m->xb, w[W_1], H, D);
    matvec(m, c, m->hb2, m->xb, w[W_3], H, D);
    px_silu_f32(c, m->hb, m->hb, (size_t)H);
    px_mul_f32(c, m->hb, m->hb, m->hb2, (size_t)H);
    matvec(m, c, m->xb2, m->hb, w[W_2], D, H);
    px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
    if (trace && trace->enabled) {
      int rc = px_trace_add(trace, m->x, (size_t)D);
      if (rc) return rc;
    }
  }
  px_rmsnorm_f32(c, m->xb, m->x, m->rms_final, 1, D, eps);
  matvec(m, c, m->logits, m->xb, m->wcls, cf->vocab_size, D);
  if (trace && trace->enabled) {
    int rc = px_trace_add(trace, m->logits, (size_t)cf->vocab_size);
    if (rc) return rc;
  }
  *logits = m->logits;
  return 0;
}

int px_llama_generate(px_llama_t *m, px_compute_t *c, const int *prompt,
                      int n_prompt, const px_generate_opts_t *o, px_token_fn cb,
                      void *ud, int *n_generated) {
  if (n_generated) *n_generated = 0;
  if (!prompt || n_prompt < 1 || !o || o->steps < 1 ||
      !(o->temperature >= 0.0f) || !(o->top_p >= 0.0f && o->top_p <= 1.0f))
    return PX_EINVAL;
  int steps = o->steps < m->cfg.seq_len ? o->steps : m->cfg.seq_len;
  px_rng_t rng;
  px_rng_seed(&rng, o->seed);
  int token = prompt[0], produced = 0;
  for (int pos = 0; pos < steps; pos++) {
    float *logits;
    int rc = px_llama_forward(m, c, token, pos, &logits, NULL);
    if (rc) return rc;
    int next;
    if (pos < n_prompt - 1) {
      next = prompt[pos + 1];
    } else {
      next = px_sample_f32(logits, m->cfg.vocab_size, o->temperature, o->top_p,
                           &rng, m->probs, m->idx);
      if (next == 1) break; /* BOS delimits sequences (llama2.c) */
      produced++;
      if (n_generated) *n_generated = produced;
      if (cb && cb(ud, token, next)) break;
    }
    token = next;
  }
  return 0;
}
