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
 * generation is bound by memory bandwidth.  When dim, kv_dim and hidden_dim
 * are multiples of 16 (whole panels), Wq, Wk, Wv are packed back to back and
 * run as one [dim + 2 kv_dim] GEMV, W1 and W3 as one [2 hidden] GEMV: each
 * output is still its own dot product in the documented order, so the bits
 * are those of separate calls, with fewer calls (thread dispatches) per
 * token.  With several threads a token is one pool dispatch (the threaded
 * forward below), with the same kernel calls.  The token embedding is kept
 * as f32 (dequantised for version 2, as runq.c does).
 */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "plexus/model.h"
#include "base/px_internal.h"
#include "compute/compute_internal.h"

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
  /* Wq|Wk|Wv and W1|W3 packed back to back, so one GEMV call computes
   * each group (every output is its own dot product: same bits, fewer
   * calls).  Needs dim, kv_dim, hidden_dim % 16 == 0 (whole panels). */
  int fused;
  /* run state */
  float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits, *probs; /* hb: 2H */
  /* q: [dim + 2 kv_dim] (q, then k and v of the fused projection) */
  int *idx;
  float *kcache, *vcache; /* [L][seq_len][kv_dim] */
  /* the threaded forward: quantised activation row, phase counters */
  int8_t *qa;
  float *qs;
  int32_t *qsum;
  atomic_int *ph_next, *ph_done;
  int nphases;
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
  m->fused = D % 16 == 0 && kv % 16 == 0 && H % 16 == 0;
  m->hb = px_calloc((size_t)2 * H, sizeof(float));
  m->hb2 = m->hb ? m->hb + H : NULL;
  m->q = px_calloc((size_t)D + 2 * (size_t)kv, sizeof(float));
  m->att = px_calloc((size_t)c->n_heads * S, sizeof(float));
  m->logits = px_calloc((size_t)V, sizeof(float));
  m->probs = px_calloc((size_t)V, sizeof(float));
  m->idx = px_calloc((size_t)V, sizeof(int));
  int KM = D > H ? D : H;
  m->qa = px_malloc((size_t)KM);
  m->qs = px_malloc((size_t)KM * sizeof(float));
  m->qsum = px_malloc((size_t)KM * sizeof(int32_t));
  m->nphases = 11 * L + 4;
  m->ph_next = px_calloc((size_t)m->nphases, sizeof(atomic_int));
  m->ph_done = px_calloc((size_t)m->nphases, sizeof(atomic_int));
  m->kcache = px_calloc((size_t)L * S * kv, sizeof(float));
  m->vcache = px_calloc((size_t)L * S * kv, sizeof(float));
  if (!m->blob_raw || !m->w || !m->emb || !m->rms_att || !m->rms_ffn ||
      !m->rms_final || !m->x || !m->xb || !m->xb2 || !m->hb || !m->hb2 ||
      !m->q || !m->att || !m->logits || !m->probs || !m->idx || !m->kcache ||
      !m->vcache || !m->qa || !m->qs || !m->qsum || !m->ph_next ||
      !m->ph_done) {
    px_llama_free(m);
    return PX_ENOMEM;
  }
  uint8_t *p = (uint8_t *)align64((size_t)m->blob_raw);
  size_t bytes = 0;
  /* W3 right after W1 (and Q, K, V in a row) for the fused calls. */
  static const int order[W_COUNT] = {W_Q, W_K, W_V, W_O, W_1, W_3, W_2};
  for (int l = 0; l < L; l++)
    for (int wi = 0; wi < W_COUNT; wi++) {
      int w = order[wi], N, K;
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
  px_free(m->q);
  px_free(m->att);
  px_free(m->logits);
  px_free(m->probs);
  px_free(m->idx);
  px_free(m->kcache);
  px_free(m->vcache);
  px_free(m->qa);
  px_free(m->qs);
  px_free(m->qsum);
  px_free(m->ph_next);
  px_free(m->ph_done);
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

/* ---- the threaded forward ----------------------------------------------
 * With several threads, a token is ONE pool dispatch instead of one per
 * GEMV (a dispatch wakes sleeping workers: tens of microseconds on a busy
 * or virtualised machine, ~85 of them per token).  Every thread runs the
 * same sequence of phases; a phase is a list of chunks (GEMV column
 * panels, attention heads, or one chunk for the small serial steps) that
 * threads claim from an atomic counter; a thread that finds none left
 * waits (spinning, then yielding) until every chunk of the phase is done.
 * A thread waits only for chunks that another thread has claimed and is
 * running, so it cannot deadlock even if a worker never shows up (the
 * caller then runs every chunk).  Chunks write disjoint outputs with the
 * same kernel calls as the plain path (px_*_gemv_panels are the tile calls
 * of px_matmul_*_packed for M = 1; the attention head is attention.c's),
 * so the bits are the same at any thread count. */

typedef struct {
  px_llama_t *m;
  px_compute_t *c;
  const px_kernels_t *k;
  int token, pos;
} tok_job_t;

/* Chunks of a GEMV: 4 register-tile units of 16-column panels. */
static int gemv_chunk_panels(const tok_job_t *j) {
  return 4 * (j->m->q8 ? j->k->q8_np : j->k->np);
}

static int ph_claim(const tok_job_t *j, int s) {
  return atomic_fetch_add_explicit(&j->m->ph_next[s], 1, memory_order_relaxed);
}
static void ph_finish(const tok_job_t *j, int s) {
  atomic_fetch_add_explicit(&j->m->ph_done[s], 1, memory_order_release);
}
static void ph_wait(const tok_job_t *j, int s, int n) {
  int spins = 0;
  while (atomic_load_explicit(&j->m->ph_done[s], memory_order_acquire) < n)
    if (++spins > 256) sched_yield();
}

static void ph_gemv(const tok_job_t *j, int *s, float *out, const float *x,
                    const void *w, int N, int K) {
  px_llama_t *m = j->m;
  int cp = gemv_chunk_panels(j), np = (N + 15) / 16;
  int nch = (np + cp - 1) / cp, i;
  while ((i = ph_claim(j, *s)) < nch) {
    int p0 = i * cp, p1 = PX_MIN(np, p0 + cp);
    if (m->q8)
      px_q8_gemv_panels(j->k, out, m->qa, m->qs, m->qsum, w, m->G, N, K, p0,
                        p1);
    else
      px_f32_gemv_panels(j->k, out, x, (const float *)w, N, K, p0, p1);
    ph_finish(j, *s);
  }
  ph_wait(j, *s, nch);
  (*s)++;
}

/* attention.c's attn_head, operation for operation. */
static void attn_head(const tok_job_t *j, int l, int h) {
  const px_llama2c_config_t *cf = &j->m->cfg;
  int hd = cf->head_size, S = cf->seq_len;
  size_t kvstride = (size_t)cf->n_kv_heads * hd;
  const float *kc = j->m->kcache + (size_t)l * S * kvstride;
  const float *vc = j->m->vcache + (size_t)l * S * kvstride;
  int kvh = h / (cf->n_heads / cf->n_kv_heads);
  const float *q = j->m->q + (size_t)h * hd;
  float *sc = j->m->att + (size_t)h * S;
  float sq = sqrtf((float)hd);
  for (int t = 0; t <= j->pos; t++)
    sc[t] = j->k->dot(q, kc + t * kvstride + (size_t)kvh * hd, hd) / sq;
  j->k->softmax(sc, sc, j->pos + 1);
  float *o = j->m->xb + (size_t)h * hd;
  memset(o, 0, (size_t)hd * sizeof(float));
  for (int t = 0; t <= j->pos; t++)
    j->k->axpy(o, sc[t], vc + t * kvstride + (size_t)kvh * hd, hd);
}

static void quant_x(px_llama_t *m, const float *x, int K) {
  if (m->q8) px_q8_quantize_row(x, K, m->G, m->qa, m->qs, m->qsum);
}

#define PH_SERIAL(body)                                                        \
  do {                                                                         \
    if (ph_claim(j, s) == 0) {                                                 \
      body;                                                                    \
      ph_finish(j, s);                                                         \
    }                                                                          \
    ph_wait(j, s, 1);                                                          \
    s++;                                                                       \
  } while (0)

static void tok_task(void *arg, int t, int worker) {
  (void)t, (void)worker;
  const tok_job_t *j = arg;
  px_llama_t *m = j->m;
  px_compute_t *c = j->c;
  const px_llama2c_config_t *cf = &m->cfg;
  int D = cf->dim, H = cf->hidden_dim, hs = cf->head_size;
  int kv = cf->n_kv_heads * hs, S = cf->seq_len, pos = j->pos, s = 0;
  const float eps = 1e-5f;
  for (int l = 0; l < cf->n_layers; l++) {
    const void *const *w = m->w + (size_t)l * W_COUNT;
    float *k = m->kcache + ((size_t)l * S + pos) * kv;
    float *v = m->vcache + ((size_t)l * S + pos) * kv;
    PH_SERIAL({
      if (l == 0)
        px_embedding_f32(m->x, m->emb, D, j->token);
      else
        px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
      px_rmsnorm_f32(c, m->xb, m->x, m->rms_att + (size_t)l * D, 1, D, eps);
      quant_x(m, m->xb, D);
    });
    ph_gemv(j, &s, m->q, m->xb, w[W_Q], D + 2 * kv, D);
    PH_SERIAL({
      memcpy(k, m->q + D, (size_t)kv * sizeof(float));
      memcpy(v, m->q + D + kv, (size_t)kv * sizeof(float));
      px_rope_f32(m->q, cf->n_heads, hs, pos);
      px_rope_f32(k, cf->n_kv_heads, hs, pos);
    });
    int h;
    while ((h = ph_claim(j, s)) < cf->n_heads) {
      attn_head(j, l, h);
      ph_finish(j, s);
    }
    ph_wait(j, s, cf->n_heads);
    s++;
    if (m->q8) PH_SERIAL(quant_x(m, m->xb, D));
    ph_gemv(j, &s, m->xb2, m->xb, w[W_O], D, D);
    PH_SERIAL({
      px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
      px_rmsnorm_f32(c, m->xb, m->x, m->rms_ffn + (size_t)l * D, 1, D, eps);
      quant_x(m, m->xb, D);
    });
    ph_gemv(j, &s, m->hb, m->xb, w[W_1], 2 * H, D);
    PH_SERIAL({
      px_silu_f32(c, m->hb, m->hb, (size_t)H);
      px_mul_f32(c, m->hb, m->hb, m->hb2, (size_t)H);
      quant_x(m, m->hb, H);
    });
    ph_gemv(j, &s, m->xb2, m->hb, w[W_2], D, H);
  }
  PH_SERIAL({
    px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
    px_rmsnorm_f32(c, m->xb, m->x, m->rms_final, 1, D, eps);
    quant_x(m, m->xb, D);
  });
  ph_gemv(j, &s, m->logits, m->xb, m->wcls, cf->vocab_size, D);
}

int px_llama_forward(px_llama_t *m, px_compute_t *c, int token, int pos,
                     float **logits, px_trace_t *trace) {
  const px_llama2c_config_t *cf = &m->cfg;
  if (token < 0 || token >= cf->vocab_size || pos < 0 || pos >= cf->seq_len)
    return PX_ERANGE;
  if (c->threads > 1 && m->fused && !(trace && trace->enabled)) {
    for (int i = 0; i < m->nphases; i++) {
      atomic_store_explicit(&m->ph_next[i], 0, memory_order_relaxed);
      atomic_store_explicit(&m->ph_done[i], 0, memory_order_relaxed);
    }
    tok_job_t j = {m, c, px_kernels_for(c->simd), token, pos};
    px_compute_parallel(c, c->threads, tok_task, &j);
    *logits = m->logits;
    return 0;
  }
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
    if (m->fused) {
      matvec(m, c, m->q, m->xb, w[W_Q], D + 2 * kv, D);
      memcpy(k, m->q + D, (size_t)kv * sizeof(float));
      memcpy(v, m->q + D + kv, (size_t)kv * sizeof(float));
    } else {
      matvec(m, c, m->q, m->xb, w[W_Q], D, D);
      matvec(m, c, k, m->xb, w[W_K], kv, D);
      matvec(m, c, v, m->xb, w[W_V], kv, D);
    }
    px_rope_f32(m->q, cf->n_heads, hs, pos);
    px_rope_f32(k, cf->n_kv_heads, hs, pos);
    px_attention_f32(c, m->xb, m->q, kc, vc, m->att, cf->n_heads,
                     cf->n_kv_heads, hs, S, pos);
    matvec(m, c, m->xb2, m->xb, w[W_O], D, D);
    px_add_f32(c, m->x, m->x, m->xb2, (size_t)D);
    px_rmsnorm_f32(c, m->xb, m->x, m->rms_ffn + (size_t)l * D, 1, D, eps);
    if (m->fused) {
      matvec(m, c, m->hb, m->xb, w[W_1], 2 * H, D);
    } else {
      matvec(m, c, m->hb, m->xb, w[W_1], H, D);
      matvec(m, c, m->hb2, m->xb, w[W_3], H, D);
    }
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
