/*
 * attention.c — causal multi-head attention for one new position, with a
 * KV cache and grouped-query attention (llama2.c's forward, made
 * deterministic).
 *
 * For head h (kv head h / (n_heads / n_kv_heads)), in this order:
 *   score_t = dot16(q_h, k_t) / sqrt(head_dim)   for t = 0 .. pos
 *             (dot16: the 16-lane strided FMA sum with the fixed tree,
 *             docs/compute.md)
 *   a = softmax(score_0..pos)                     (ops.c's row softmax)
 *   out_h[d] = +0, then for t = 0 .. pos in order: fma(a_t, v_t[d], out)
 * Heads are independent outputs, so threads take whole heads.
 */
#include <math.h>
#include <string.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

typedef struct {
  const px_kernels_t *k;
  float *out;
  const float *q, *kc, *vc;
  float *scores;
  int n_heads, n_kv_heads, hd, seq_len, pos;
} attn_job_t;

static void attn_head(void *arg, int h, int worker) {
  (void)worker;
  const attn_job_t *j = arg;
  int kvh = h / (j->n_heads / j->n_kv_heads);
  size_t kvstride = (size_t)j->n_kv_heads * j->hd;
  const float *q = j->q + (size_t)h * j->hd;
  float *sc = j->scores + (size_t)h * j->seq_len;
  float sq = sqrtf((float)j->hd);
  for (int t = 0; t <= j->pos; t++) {
    const float *kt = j->kc + t * kvstride + (size_t)kvh * j->hd;
    sc[t] = j->k->dot(q, kt, j->hd) / sq;
  }
  j->k->softmax(sc, sc, j->pos + 1);
  float *o = j->out + (size_t)h * j->hd;
  memset(o, 0, (size_t)j->hd * sizeof(float));
  for (int t = 0; t <= j->pos; t++)
    j->k->axpy(o, sc[t], j->vc + t * kvstride + (size_t)kvh * j->hd, j->hd);
}

void px_attention_f32(px_compute_t *c, float *out, const float *q,
                      const float *kcache, const float *vcache, float *scores,
                      int n_heads, int n_kv_heads, int head_dim, int seq_len,
                      int pos) {
  attn_job_t j = {px_kernels_for(c->simd),
                  out,
                  q,
                  kcache,
                  vcache,
                  scores,
                  n_heads,
                  n_kv_heads,
                  head_dim,
                  seq_len,
                  pos};
  int tasks = n_heads;
  if ((double)n_heads * (pos + 1) * head_dim < 16384.0)
    tasks = 1; /* run all heads on the caller's thread */
  if (tasks == 1) {
    for (int h = 0; h < n_heads; h++)
      attn_head(&j, h, 0);
    return;
  }
  px_compute_parallel(c, n_heads, attn_head, &j);
}
