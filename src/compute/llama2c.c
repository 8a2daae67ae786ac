/*
 * llama2c.c — llama2.c checkpoints (versions 0, 1, 2) and tokenizer.bin,
 * with llama2.c's BPE encode/decode.
 *
 * Formats (karpathy/llama2.c: run.c, runq.c, export.py; docs/formats.md).
 * All integers are int32 little-endian, all floats f32 little-endian.
 *
 *  version 0 (legacy_export; no magic):
 *    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *    (vocab_size < 0: unshared classifier, |vocab_size| tokens), then f32:
 *    tok_embeddings[V][D], rms_att[L][D], wq[L][D][D], wk[L][KV][D],
 *    wv[L][KV][D], wo[L][D][D], rms_ffn[L][D], w1[L][H][D], w2[L][D][H],
 *    w3[L][H][D], rms_final[D], freq_cis_real[S][hs/2],
 *    freq_cis_imag[S][hs/2], and wcls[V][D] if unshared.  (KV = n_kv_heads *
 *    head_size, hs = D / n_heads.)
 *  version 1 (version1_export): u32 magic 0x616b3432 "ak42", i32 version 1,
 *    the 7 params (vocab_size positive), u8 shared_classifier, zero padding
 *    to 256 bytes, then f32: rms_att[L][D], rms_ffn[L][D], rms_final[D],
 *    tok_embeddings, wq, wk, wv, wo, w1, w2, w3 (each [L]...), [wcls].
 *  version 2 (version2_export, "Q8_0"): as version 1 with version 2 and an
 *    i32 group_size after the shared flag (offset 37); then f32 rms_att,
 *    rms_ffn, rms_final; then for every quantised tensor, one layer at a
 *    time: int8 q[n] followed by f32 scales[n / group_size], in the order
 *    tok_embeddings, wq[0..L), wk[..], wv[..], wo[..], w1[..], w2[..],
 *    w3[..], [wcls].
 *  tokenizer.bin: i32 max_token_length, then per token f32 score, i32 len,
 *    len bytes (the vocabulary size comes from the model).
 *
 * Strictness: every header int must lie in [1, PX_LLAMA2C_MAX_DIM], the
 * shapes must be consistent (dim % n_heads, n_heads % n_kv_heads, even
 * head_size, dim % group_size), the padding must be zero, every size is
 * computed with overflow checks, and the file must be exactly as long as
 * the layout says.  Weights are used in place (mmap); version 2 scales sit
 * at arbitrary byte offsets, so they are copied to an aligned array.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/model_io.h"
#include "compute/model_io_internal.h"

#include "base/px_internal.h"

#define V12_HEADER 256

/* a * b with overflow reported through *ovf (sticky). */
static uint64_t mul(uint64_t a, uint64_t b, int *ovf) {
  if (a && b > UINT64_MAX / a) {
    *ovf = 1;
    return 0;
  }
  return a * b;
}

static uint64_t add(uint64_t a, uint64_t b, int *ovf) {
  if (b > UINT64_MAX - a) {
    *ovf = 1;
    return 0;
  }
  return a + b;
}

static int32_t get_i32(const uint8_t *p) {
  uint32_t u = px_get_u32le(p);
  return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 2147483648u) + INT32_MIN;
}

static int check_config(px_llama2c_config_t *c) {
  const int v[] = {c->dim,        c->hidden_dim, c->n_layers, c->n_heads,
                   c->n_kv_heads, c->vocab_size, c->seq_len};
  for (size_t i = 0; i < PX_ARRAY_LEN(v); i++)
    if (v[i] < 1 || v[i] > PX_LLAMA2C_MAX_DIM) return PX_EDECODE;
  if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads) return PX_EDECODE;
  c->head_size = c->dim / c->n_heads;
  if (c->head_size % 2) return PX_EDECODE;
  if (c->version == 2 &&
      (c->group_size < 1 || c->group_size > c->dim || c->dim % c->group_size))
    return PX_EDECODE;
  return 0;
}

/* Sizes (elements) of one layer's matrices. */
typedef struct {
  uint64_t emb, qo, kv, ffn; /* per layer except emb */
} sizes_t;

static void layer_sizes(const px_llama2c_config_t *c, sizes_t *s) {
  uint64_t d = (uint64_t)c->dim;
  s->emb = (uint64_t)c->vocab_size * d;
  s->qo = d * d; /* n_heads * head_size == dim */
  s->kv = d * (uint64_t)c->n_kv_heads * (uint64_t)c->head_size;
  s->ffn = d * (uint64_t)c->hidden_dim;
}

/* f32 versions: assign pointers in file order, checking the exact size. */
static int map_f32(px_llama2c_t *m, const uint8_t *w, uint64_t avail) {
  const px_llama2c_config_t *c = &m->cfg;
  sizes_t s;
  layer_sizes(c, &s);
  int ovf = 0;
  uint64_t L = (uint64_t)c->n_layers, D = (uint64_t)c->dim;
  uint64_t norms = mul(L, D, &ovf);
  uint64_t total = 0;
  /* element counts, in the order of the version's layout */
  uint64_t n_emb = s.emb, n_q = mul(L, s.qo, &ovf), n_kv = mul(L, s.kv, &ovf);
  uint64_t n_ffn = mul(L, s.ffn, &ovf);
  uint64_t n_freq = mul((uint64_t)c->seq_len, (uint64_t)c->head_size, &ovf);
  uint64_t parts0[] = {n_emb, norms, n_q,   n_kv,  n_kv, n_q,
                       norms, n_ffn, n_ffn, n_ffn, D,    n_freq};
  uint64_t parts1[] = {norms, norms, D,     n_emb, n_q,  n_kv,
                       n_kv,  n_q,   n_ffn, n_ffn, n_ffn};
  const uint64_t *parts = c->version == 0 ? parts0 : parts1;
  size_t np = c->version == 0 ? PX_ARRAY_LEN(parts0) : PX_ARRAY_LEN(parts1);
  for (size_t i = 0; i < np; i++)
    total = add(total, parts[i], &ovf);
  if (!c->shared_classifier) total = add(total, n_emb, &ovf);
  uint64_t bytes = mul(total, 4, &ovf);
  if (ovf || bytes > avail) return PX_ETRUNC;
  if (bytes < avail) return PX_ETRAILING;

  const float *f = (const float *)(const void *)w;
  const float **dst0[] = {
      &m->token_embedding, &m->rms_att, &m->wq, &m->wk, &m->wv,        &m->wo,
      &m->rms_ffn,         &m->w1,      &m->w2, &m->w3, &m->rms_final, NULL};
  const float **dst1[] = {
      &m->rms_att, &m->rms_ffn, &m->rms_final, &m->token_embedding,
      &m->wq,      &m->wk,      &m->wv,        &m->wo,
      &m->w1,      &m->w2,      &m->w3};
  const float ***dst = c->version == 0 ? dst0 : dst1;
  for (size_t i = 0; i < np; i++) {
    if (dst[i]) *dst[i] = f;
    f += parts[i];
  }
  m->wcls = c->shared_classifier ? m->token_embedding : f;
  return 0;
}

/* One quantised tensor of n values at *p: n int8, then n / G f32 scales
 * (copied to *sc, which may be unaligned in the file). */
static void take_q8(const uint8_t **p, float **sc, uint64_t n, uint64_t G,
                    px_q8_ref_t *ref) {
  ref->q = (const int8_t *)*p;
  *p += n;
  memcpy(*sc, *p, (size_t)(n / G) * sizeof(float));
  ref->s = *sc;
  *sc += n / G;
  *p += (n / G) * sizeof(float);
}

/* Version 2: f32 norms, then int8 tensors each followed by its scales. */
static int map_q8(px_llama2c_t *m, const uint8_t *w, uint64_t avail) {
  const px_llama2c_config_t *c = &m->cfg;
  sizes_t s;
  layer_sizes(c, &s);
  int ovf = 0;
  uint64_t L = (uint64_t)c->n_layers, D = (uint64_t)c->dim;
  uint64_t G = (uint64_t)c->group_size;
  uint64_t norm_bytes = mul(add(mul(2 * L, D, &ovf), D, &ovf), 4, &ovf);
  /* per-layer tensor sizes, in file order after the embedding */
  const uint64_t per_layer[7] = {s.qo, s.kv, s.kv, s.qo, s.ffn, s.ffn, s.ffn};
  uint64_t total = norm_bytes, n_scales = 0;
  uint64_t tens_bytes = add(s.emb, mul(s.emb / G, 4, &ovf), &ovf);
  uint64_t n_cls = c->shared_classifier ? 1 : 2;
  total = add(total, mul(tens_bytes, n_cls, &ovf), &ovf);
  n_scales = mul(s.emb / G, n_cls, &ovf);
  for (int k = 0; k < 7; k++) {
    uint64_t tb = add(per_layer[k], mul(per_layer[k] / G, 4, &ovf), &ovf);
    total = add(total, mul(tb, L, &ovf), &ovf);
    n_scales = add(n_scales, mul(per_layer[k] / G, L, &ovf), &ovf);
  }
  if (ovf || total > avail) return PX_ETRUNC;
  if (total < avail) return PX_ETRAILING;
  if (n_scales > SIZE_MAX / sizeof(float)) return PX_ETOOBIG;

  m->scales_ = px_malloc((size_t)n_scales * sizeof(float));
  px_q8_ref_t *refs = px_calloc((size_t)L * 7, sizeof *refs);
  if (!m->scales_ || !refs) {
    px_free(refs);
    return PX_ENOMEM;
  }
  px_q8_ref_t **lists[7] = {&m->q_wq, &m->q_wk, &m->q_wv, &m->q_wo,
                            &m->q_w1, &m->q_w2, &m->q_w3};
  for (int k = 0; k < 7; k++)
    *lists[k] = refs + (size_t)k * (size_t)L;

  const float *f = (const float *)(const void *)w;
  m->rms_att = f;
  m->rms_ffn = f + L * D;
  m->rms_final = f + 2 * L * D;
  const uint8_t *p = w + norm_bytes;
  float *sc = m->scales_;
  take_q8(&p, &sc, s.emb, G, &m->q_tokens);
  for (int k = 0; k < 7; k++)
    for (uint64_t l = 0; l < L; l++)
      take_q8(&p, &sc, per_layer[k], G, &(*lists[k])[l]);
  if (c->shared_classifier)
    m->q_cls = m->q_tokens;
  else
    take_q8(&p, &sc, s.emb, G, &m->q_cls);
  return 0;
}

int px_llama2c_open_mem(const void *data, size_t len, px_llama2c_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  if ((!data && len) || ((uintptr_t)data % 4) != 0) return PX_EINVAL;
  const uint8_t *p = data;
  if (len < 28) return PX_ETRUNC;
  px_llama2c_config_t c;
  memset(&c, 0, sizeof c);
  size_t hdr;
  const uint8_t *params;
  if (px_get_u32le(p) == PX_LLAMA2C_MAGIC) {
    if (len < V12_HEADER) return PX_ETRUNC;
    int32_t ver = get_i32(p + 4);
    if (ver != 1 && ver != 2) return PX_EVERSION;
    c.version = ver;
    params = p + 8;
    if (p[36] > 1) return PX_EDECODE;
    c.shared_classifier = p[36];
    size_t pad_from = 37;
    if (ver == 2) {
      c.group_size = get_i32(p + 37);
      pad_from = 41;
    }
    for (size_t i = pad_from; i < V12_HEADER; i++)
      if (p[i]) return PX_EDECODE;
    hdr = V12_HEADER;
  } else {
    c.version = 0;
    params = p;
    hdr = 28;
  }
  c.dim = get_i32(params);
  c.hidden_dim = get_i32(params + 4);
  c.n_layers = get_i32(params + 8);
  c.n_heads = get_i32(params + 12);
  c.n_kv_heads = get_i32(params + 16);
  c.vocab_size = get_i32(params + 20);
  c.seq_len = get_i32(params + 24);
  if (c.version == 0) {
    c.shared_classifier = c.vocab_size > 0;
    if (c.vocab_size < 0 && c.vocab_size != INT32_MIN)
      c.vocab_size = -c.vocab_size;
  }
  int rc = check_config(&c);
  if (rc) return rc;
  px_llama2c_t *m = px_calloc(1, sizeof *m);
  if (!m) return PX_ENOMEM;
  m->cfg = c;
  if (c.version == 2)
    rc = map_q8(m, p + hdr, len - hdr);
  else
    rc = map_f32(m, p + hdr, len - hdr);
  if (rc) {
    px_llama2c_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

int px_llama2c_open(const char *path, px_llama2c_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  void *map;
  size_t len;
  int rc = px_mio_map(path, UINT64_MAX, &map, &len);
  if (rc) return rc;
  px_llama2c_t *m;
  rc = px_llama2c_open_mem(map, len, &m);
  if (rc) {
    px_mio_unmap(map, len);
    return rc;
  }
  m->map_ = map;
  m->map_len_ = len;
  *out = m;
  return 0;
}

void px_llama2c_free(px_llama2c_t *m) {
  if (!m) return;
  px_mio_unmap(m->map_, m->map_len_);
  px_free(m->scales_);
  px_free(m->q_wq); /* start of the one block of per-layer refs */
  px_free(m);
}

/* ---- tokenizer ----------------------------------------------------------- */

#define TOK_MAX_TEXT (1u << 20)

struct px_tokenizer {
  int vocab_size;
  int max_token_length;
  uint8_t *blob; /* all pieces, back to back */
  size_t *off;   /* [vocab] */
  uint32_t *len; /* [vocab] */
  float *score;  /* [vocab] */
  int *sorted;   /* ids by (bytes, id) */
  uint8_t bytes[256];
};

static int cmp_piece(const px_tokenizer_t *t, const uint8_t *s, size_t n,
                     int id) {
  size_t m = PX_MIN(n, (size_t)t->len[id]);
  int c = m ? memcmp(s, t->blob + t->off[id], m) : 0;
  if (c) return c;
  return (n > t->len[id]) - (n < t->len[id]);
}

/* qsort has no context argument: sort (id) pairs with a file-scope view is
 * global state, so sort with a simple merge sort instead. */
static void sort_ids(const px_tokenizer_t *t, int *a, int *tmp, size_t n) {
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = PX_MIN(lo + w, n), hi = PX_MIN(lo + 2 * w, n);
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        int c = cmp_piece(t, t->blob + t->off[a[j]], t->len[a[j]], a[i]);
        /* c < 0: a[j] < a[i]; ties keep order (stable, ids ascending) */
        tmp[k++] = c < 0 ? a[j++] : a[i++];
      }
      while (i < mid)
        tmp[k++] = a[i++];
      while (j < hi)
        tmp[k++] = a[j++];
    }
    memcpy(a, tmp, n * sizeof *a);
  }
}

int px_tokenizer_load_mem(const void *data, size_t len, int vocab_size,
                          px_tokenizer_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  if ((!data && len) || vocab_size < 1) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, data, len);
  int32_t maxlen = px_reader_i32(&r);
  if (r.err) return r.err;
  if (maxlen < 0) return PX_EDECODE;
  if (maxlen > PX_TOKENIZER_MAX_TOKEN_LEN) return PX_ETOOBIG;
  /* each entry takes at least 8 bytes: bound the allocation by the file */
  if ((uint64_t)vocab_size > (len - 4) / 8) return PX_ETRUNC;
  size_t V = (size_t)vocab_size;
  px_tokenizer_t *t = px_calloc(1, sizeof *t);
  if (!t) return PX_ENOMEM;
  t->vocab_size = vocab_size;
  t->max_token_length = maxlen;
  t->blob = px_malloc(len);
  t->off = px_calloc(V, sizeof *t->off);
  t->len = px_calloc(V, sizeof *t->len);
  t->score = px_calloc(V, sizeof *t->score);
  t->sorted = px_calloc(V, sizeof *t->sorted);
  int *tmp = px_calloc(V, sizeof *tmp);
  int rc = 0;
  if (!t->blob || !t->off || !t->len || !t->score || !t->sorted || !tmp)
    rc = PX_ENOMEM;
  size_t used = 0;
  for (size_t i = 0; i < V && !rc; i++) {
    uint32_t sb = px_reader_u32(&r);
    memcpy(&t->score[i], &sb, 4);
    int32_t n = px_reader_i32(&r);
    if (r.err) break;
    if (isnan(t->score[i]) || n < 0 || n > maxlen) {
      rc = PX_EDECODE;
      break;
    }
    if (px_reader_remaining(&r) < (size_t)n) {
      rc = PX_ETRUNC; /* checked first: px_reader_fixed zeroes n bytes */
      break;
    }
    px_reader_fixed(&r, t->blob + used, (size_t)n);
    t->off[i] = used;
    t->len[i] = (uint32_t)n;
    used += (size_t)n; /* <= len: every byte came from the input */
    t->sorted[i] = (int)i;
  }
  if (!rc) rc = px_reader_finish(&r);
  if (!rc) {
    sort_ids(t, t->sorted, tmp, V);
    for (int b = 0; b < 256; b++)
      t->bytes[b] = (uint8_t)b;
  }
  px_free(tmp);
  if (rc) {
    px_tokenizer_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int px_tokenizer_load(const char *path, int vocab_size, px_tokenizer_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  void *map;
  size_t len;
  int rc = px_mio_map(path, 1u << 30, &map, &len);
  if (rc) return rc;
  rc = px_tokenizer_load_mem(map, len, vocab_size, out);
  px_mio_unmap(map, len);
  return rc;
}

void px_tokenizer_free(px_tokenizer_t *t) {
  if (!t) return;
  px_free(t->blob);
  px_free(t->off);
  px_free(t->len);
  px_free(t->score);
  px_free(t->sorted);
  px_free(t);
}

int px_tokenizer_vocab_size(const px_tokenizer_t *t) {
  return t ? t->vocab_size : 0;
}

int px_tokenizer_piece(const px_tokenizer_t *t, int id, const char **s,
                       size_t *len, float *score) {
  if (!t || id < 0 || id >= t->vocab_size) return PX_ERANGE;
  if (s) *s = (const char *)t->blob + t->off[id];
  if (len) *len = t->len[id];
  if (score) *score = t->score[id];
  return 0;
}

int px_tokenizer_lookup(const px_tokenizer_t *t, const char *s, size_t len) {
  if (!t || (!s && len)) return -1;
  /* lower bound: the lowest id among equal pieces */
  size_t lo = 0, hi = (size_t)t->vocab_size;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp_piece(t, (const uint8_t *)s, len, t->sorted[mid]) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < (size_t)t->vocab_size &&
      cmp_piece(t, (const uint8_t *)s, len, t->sorted[lo]) == 0)
    return t->sorted[lo];
  return -1;
}

static int push(int *tokens, size_t cap, size_t *n, int id) {
  if (*n >= cap) return PX_ETOOBIG;
  tokens[(*n)++] = id;
  return 0;
}

int px_tokenizer_encode(const px_tokenizer_t *t, const char *text, size_t len,
                        int bos, int eos, int *tokens, size_t cap,
                        size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!t || (!text && len) || (!tokens && cap) || !n_out) return PX_EINVAL;
  if (len > TOK_MAX_TEXT) return PX_ETOOBIG;
  if ((bos && t->vocab_size <= 1) || (eos && t->vocab_size <= 2))
    return PX_ERANGE; /* BOS is id 1, EOS id 2 */
  const uint8_t *x = (const uint8_t *)text;
  size_t n = 0;
  int rc = 0;
  /* merge buffer: two pieces back to back */
  size_t bufcap = 2 * (size_t)t->max_token_length + 4;
  uint8_t *buf = px_malloc(bufcap);
  if (!buf) return PX_ENOMEM;
  if (bos && (rc = push(tokens, cap, &n, 1)) != 0) goto done;
  if (len > 0) {
    int sp = px_tokenizer_lookup(t, " ", 1);
    if (sp >= 0 && (rc = push(tokens, cap, &n, sp)) != 0) goto done;
  }
  uint8_t cp[4];
  size_t cl = 0;
  for (size_t i = 0; i < len; i++) {
    if ((x[i] & 0xC0) != 0x80) cl = 0;
    cp[cl++] = x[i];
    uint8_t next = i + 1 < len ? x[i + 1] : 0;
    if ((next & 0xC0) == 0x80 && cl < 4) continue;
    int id = px_tokenizer_lookup(t, (const char *)cp, cl);
    if (id >= 0) {
      if ((rc = push(tokens, cap, &n, id)) != 0) goto done;
    } else {
      for (size_t k = 0; k < cl; k++) { /* byte fallback: <0xHH> = byte + 3 */
        int b = cp[k] + 3;
        if (b >= t->vocab_size) {
          rc = PX_ERANGE;
          goto done;
        }
        if ((rc = push(tokens, cap, &n, b)) != 0) goto done;
      }
    }
    cl = 0;
  }
  for (;;) {
    float best = -1e10f;
    int best_id = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      size_t la = t->len[tokens[i]], lb = t->len[tokens[i + 1]];
      memcpy(buf, t->blob + t->off[tokens[i]], la);
      memcpy(buf + la, t->blob + t->off[tokens[i + 1]], lb);
      int id = px_tokenizer_lookup(t, (const char *)buf, la + lb);
      if (id != -1 && t->score[id] > best) {
        best = t->score[id];
        best_id = id;
        best_i = i;
      }
    }
    if (best_id == -1) break;
    tokens[best_i] = best_id;
    memmove(tokens + best_i + 1, tokens + best_i + 2,
            (n - best_i - 2) * sizeof *tokens);
    n--;
  }
  if (eos) rc = push(tokens, cap, &n, 2);
done:
  px_free(buf);
  if (rc) return rc;
  *n_out = n;
  return 0;
}

static int hexdig(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int px_tokenizer_decode(const px_tokenizer_t *t, int prev, int token,
                        const char **s, size_t *len) {
  if (!t || !s || !len) return PX_EINVAL;
  if (token < 0 || token >= t->vocab_size) return PX_ERANGE;
  const uint8_t *p = t->blob + t->off[token];
  size_t n = t->len[token];
  if (prev == 1 && n > 0 && p[0] == ' ') {
    p++;
    n--;
  }
  if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' &&
      hexdig(p[3]) >= 0 && hexdig(p[4]) >= 0) {
    int b = hexdig(p[3]) * 16 + hexdig(p[4]);
    *s = (const char *)&t->bytes[b];
    *len = 1;
    return 0;
  }
  *s = (const char *)p;
  *len = n;
  return 0;
}
