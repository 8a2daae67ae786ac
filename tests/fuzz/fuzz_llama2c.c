/*
 * fuzz_llama2c.c — the llama2.c checkpoint loader (versions 0, 1, 2).  Any
 * bytes must load or fail cleanly; a loaded model's every weight pointer
 * must lie inside the input (checked by reading the first and last element
 * of each tensor, under ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float g_sink;

static void touch(const float *p, uint64_t n) {
  if (!p || n == 0) return;
  g_sink += p[0] + p[n - 1];
}

static void touch_q(const px_q8_ref_t *r, uint64_t n, int gs) {
  g_sink += (float)r->q[0] + (float)r->q[n - 1] + r->s[0] + r->s[n / gs - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size, aligned copy: ASan catches any read past the end */
  void *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  px_llama2c_t *m = NULL;
  int rc = px_llama2c_open_mem(buf, size, &m);
  if (rc) {
    if (m || rc >= 0) abort();
    free(buf);
    return 0;
  }
  const px_llama2c_config_t *c = &m->cfg;
  uint64_t L = (uint64_t)c->n_layers, D = (uint64_t)c->dim;
  uint64_t Hd = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size;
  uint64_t KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_size;
  touch(m->rms_att, L * D);
  touch(m->rms_ffn, L * D);
  touch(m->rms_final, D);
  if (c->version < 2) {
    touch(m->token_embedding, V * D);
    touch(m->wq, L * D * D);
    touch(m->wk, L * KV * D);
    touch(m->wv, L * KV * D);
    touch(m->wo, L * D * D);
    touch(m->w1, L * Hd * D);
    touch(m->w2, L * Hd * D);
    touch(m->w3, L * Hd * D);
    touch(m->wcls, V * D);
  } else {
    int gs = c->group_size;
    touch_q(&m->q_tokens, V * D, gs);
    touch_q(&m->q_cls, V * D, gs);
    for (uint64_t l = 0; l < L; l++) {
      touch_q(&m->q_wq[l], D * D, gs);
      touch_q(&m->q_wk[l], KV * D, gs);
      touch_q(&m->q_wv[l], KV * D, gs);
      touch_q(&m->q_wo[l], D * D, gs);
      touch_q(&m->q_w1[l], Hd * D, gs);
      touch_q(&m->q_w2[l], Hd * D, gs);
      touch_q(&m->q_w3[l], Hd * D, gs);
    }
  }
  px_llama2c_free(m);
  free(buf);
  return 0;
}
