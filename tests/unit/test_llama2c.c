/*
 * test_llama2c.c — llama2.c checkpoint loader (versions 0, 1, 2) and
 * tokenizer.bin with BPE encode/decode.
 *
 * The writers below are written here, independently of the loader, from
 * the layout in llama2.c's export.py (legacy_export, version1_export,
 * version2_export): each test model has distinct values in every tensor,
 * and the loader's pointers must land exactly on them.  Bad input: every
 * prefix of a valid file, an extra byte, bad magic/version/flag/padding,
 * inconsistent or huge dimensions each give their error, never a crash
 * (exact-size heap copies, ASan).  The tokenizer tests pin llama2.c's
 * encode (dummy prefix, UTF-8 grouping, byte fallback, highest-score merge
 * with first-pair ties) and decode (BOS space strip, <0xHH> bytes).
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

#include "plexus/base.h"
#include "plexus/model_io.h"

enum { D = 8, H = 12, L = 2, NH = 4, NKV = 2, V = 10, S = 5, HS = D / NH };
enum { KV = NKV * HS };

/* The model's tensors, in no particular file order. */
enum {
  T_EMB,
  T_RMS_ATT,
  T_WQ,
  T_WK,
  T_WV,
  T_WO,
  T_RMS_FFN,
  T_W1,
  T_W2,
  T_W3,
  T_RMS_FINAL,
  T_FREQ,
  T_WCLS,
  T_COUNT
};
static const size_t k_numel[T_COUNT] = {
    V * D,   L *D,    L *D *D, L *KV *D, L *KV *D, L *D *D, L *D,
    L *H *D, L *D *H, L *H *D, D,        S *HS,    V *D};
static float g_t[T_COUNT][L * H * D];

static void make_tensors(void) {
  px_rng_t r;
  px_rng_seed(&r, 99);
  for (int k = 0; k < T_COUNT; k++)
    for (size_t i = 0; i < k_numel[k]; i++)
      g_t[k][i] = (float)((int64_t)px_rng_below(&r, 20001) - 10000) / 977.0f;
}

typedef struct {
  uint8_t *p;
  size_t n, cap;
} wbuf_t;

static void put(wbuf_t *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}
static void put_i32(wbuf_t *b, int32_t v) {
  uint8_t x[4];
  uint32_t u = (uint32_t)v;
  for (int i = 0; i < 4; i++)
    x[i] = (uint8_t)(u >> (8 * i));
  put(b, x, 4);
}
static void put_f32s(wbuf_t *b, const float *f, size_t n) {
  put(b, f, n * 4); /* little-endian host (x86) */
}
static void put_params(wbuf_t *b, int vocab) {
  int32_t p[7] = {D, H, L, NH, NKV, vocab, S};
  for (int i = 0; i < 7; i++)
    put_i32(b, p[i]);
}
static void pad_to(wbuf_t *b, size_t n) {
  uint8_t z = 0;
  while (b->n < n)
    put(b, &z, 1);
}

static void write_v0(wbuf_t *b, int shared) {
  put_params(b, shared ? V : -V);
  static const int order[] = {T_EMB, T_RMS_ATT, T_WQ,        T_WK,
                              T_WV,  T_WO,      T_RMS_FFN,   T_W1,
                              T_W2,  T_W3,      T_RMS_FINAL, T_FREQ};
  for (size_t i = 0; i < PX_ARRAY_LEN(order); i++)
    put_f32s(b, g_t[order[i]], k_numel[order[i]]);
  if (!shared) put_f32s(b, g_t[T_WCLS], k_numel[T_WCLS]);
}

static void write_v12_header(wbuf_t *b, int version, int shared, int gs) {
  put_i32(b, 0x616b3432);
  put_i32(b, version);
  put_params(b, V);
  uint8_t f = (uint8_t)shared;
  put(b, &f, 1);
  if (version == 2) put_i32(b, gs);
  pad_to(b, 256);
}

static void write_v1(wbuf_t *b, int shared) {
  write_v12_header(b, 1, shared, 0);
  static const int order[] = {T_RMS_ATT, T_RMS_FFN, T_RMS_FINAL, T_EMB,
                              T_WQ,      T_WK,      T_WV,        T_WO,
                              T_W1,      T_W2,      T_W3};
  for (size_t i = 0; i < PX_ARRAY_LEN(order); i++)
    put_f32s(b, g_t[order[i]], k_numel[order[i]]);
  if (!shared) put_f32s(b, g_t[T_WCLS], k_numel[T_WCLS]);
}

/* quantize_q80 from export.py: per group, scale = max|w| / 127,
 * q = round(w / scale). */
static int8_t g_q[T_COUNT][L * H * D];
static float g_s[T_COUNT][L * H * D];

static void quantize(int k, int gs) {
  for (size_t g = 0; g < k_numel[k] / (size_t)gs; g++) {
    float mx = 0;
    for (int i = 0; i < gs; i++)
      mx = fmaxf(mx, fabsf(g_t[k][g * gs + i]));
    float sc = mx / 127.0f;
    g_s[k][g] = sc;
    for (int i = 0; i < gs; i++)
      g_q[k][g * gs + i] = (int8_t)(sc ? lrintf(g_t[k][g * gs + i] / sc) : 0);
  }
}

static void write_v2(wbuf_t *b, int shared, int gs) {
  write_v12_header(b, 2, shared, gs);
  put_f32s(b, g_t[T_RMS_ATT], k_numel[T_RMS_ATT]);
  put_f32s(b, g_t[T_RMS_FFN], k_numel[T_RMS_FFN]);
  put_f32s(b, g_t[T_RMS_FINAL], k_numel[T_RMS_FINAL]);
  static const int q[] = {T_EMB, T_WQ, T_WK, T_WV, T_WO, T_W1, T_W2, T_W3};
  for (size_t i = 0; i < PX_ARRAY_LEN(q); i++) {
    int k = q[i];
    quantize(k, gs);
    int layers = k == T_EMB ? 1 : L;
    size_t per = k_numel[k] / (size_t)layers;
    for (int l = 0; l < layers; l++) {
      put(b, g_q[k] + l * per, per);
      put_f32s(b, g_s[k] + l * per / (size_t)gs, per / (size_t)gs);
    }
  }
  if (!shared) {
    quantize(T_WCLS, gs);
    put(b, g_q[T_WCLS], k_numel[T_WCLS]);
    put_f32s(b, g_s[T_WCLS], k_numel[T_WCLS] / (size_t)gs);
  }
}

static int load_copy(const uint8_t *p, size_t n, px_llama2c_t **m) {
  void *c = malloc(n ? n : 1);
  assert_non_null(c);
  memcpy(c, p, n);
  int rc = px_llama2c_open_mem(c, n, m);
  if (rc == 0) {
    px_llama2c_free(*m);
    *m = NULL;
  }
  free(c);
  return rc;
}

static void check_cfg(const px_llama2c_config_t *c, int version, int shared,
                      int gs) {
  assert_int_equal(c->version, version);
  assert_int_equal(c->dim, D);
  assert_int_equal(c->hidden_dim, H);
  assert_int_equal(c->n_layers, L);
  assert_int_equal(c->n_heads, NH);
  assert_int_equal(c->n_kv_heads, NKV);
  assert_int_equal(c->vocab_size, V);
  assert_int_equal(c->seq_len, S);
  assert_int_equal(c->shared_classifier, shared);
  assert_int_equal(c->group_size, gs);
  assert_int_equal(c->head_size, HS);
}

#define SAME(ptr, k) assert_memory_equal((ptr), g_t[k], k_numel[k] * 4)

static void check_f32(const px_llama2c_t *m, int shared) {
  SAME(m->token_embedding, T_EMB);
  SAME(m->rms_att, T_RMS_ATT);
  SAME(m->wq, T_WQ);
  SAME(m->wk, T_WK);
  SAME(m->wv, T_WV);
  SAME(m->wo, T_WO);
  SAME(m->rms_ffn, T_RMS_FFN);
  SAME(m->w1, T_W1);
  SAME(m->w2, T_W2);
  SAME(m->w3, T_W3);
  SAME(m->rms_final, T_RMS_FINAL);
  if (shared)
    assert_ptr_equal(m->wcls, m->token_embedding);
  else
    SAME(m->wcls, T_WCLS);
}

static void check_q8(const px_q8_ref_t *r, int k, int layer, int gs) {
  int layers = (k == T_EMB || k == T_WCLS) ? 1 : L;
  size_t per = k_numel[k] / (size_t)layers;
  assert_memory_equal(r->q, g_q[k] + layer * per, per);
  assert_memory_equal(r->s, g_s[k] + layer * per / (size_t)gs,
                      per / (size_t)gs * 4);
  /* dequantised values are close to the originals */
  for (size_t i = 0; i < per; i++)
    assert_true(fabsf(r->q[i] * r->s[i / (size_t)gs] -
                      g_t[k][layer * per + i]) <= r->s[i / (size_t)gs]);
}

static void roundtrip_checks(const wbuf_t *b) {
  px_llama2c_t *m;
  for (size_t cut = 0; cut < b->n; cut += (cut < 300 ? 1 : 37))
    assert_true(load_copy(b->p, cut, &m) < 0);
  assert_int_equal(load_copy(b->p, b->n - 1, &m), PX_ETRUNC);
  uint8_t *more = malloc(b->n + 1);
  memcpy(more, b->p, b->n);
  more[b->n] = 0;
  assert_int_equal(load_copy(more, b->n + 1, &m), PX_ETRAILING);
  free(more);
}

static void test_v0(void **state) {
  (void)state;
  make_tensors();
  for (int shared = 0; shared <= 1; shared++) {
    wbuf_t b = {0};
    write_v0(&b, shared);
    px_llama2c_t *m;
    assert_int_equal(px_llama2c_open_mem(b.p, b.n, &m), 0);
    check_cfg(&m->cfg, 0, shared, 0);
    check_f32(m, shared);
    assert_null(m->q_wq);
    px_llama2c_free(m);
    roundtrip_checks(&b);
    /* through a file (mmap) */
    char path[] = "/tmp/px_test_l2c_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.p, b.n), (ssize_t)b.n);
    close(fd);
    assert_int_equal(px_llama2c_open(path, &m), 0);
    check_f32(m, shared);
    px_llama2c_free(m);
    unlink(path);
    free(b.p);
  }
}

static void test_v1(void **state) {
  (void)state;
  make_tensors();
  for (int shared = 0; shared <= 1; shared++) {
    wbuf_t b = {0};
    write_v1(&b, shared);
    px_llama2c_t *m;
    assert_int_equal(px_llama2c_open_mem(b.p, b.n, &m), 0);
    check_cfg(&m->cfg, 1, shared, 0);
    check_f32(m, shared);
    px_llama2c_free(m);
    roundtrip_checks(&b);
    free(b.p);
  }
}

static void test_v2(void **state) {
  (void)state;
  make_tensors();
  static const int gss[] = {8, 4, 2, 1};
  for (size_t gi = 0; gi < PX_ARRAY_LEN(gss); gi++) {
    int gs = gss[gi];
    for (int shared = 0; shared <= 1; shared++) {
      wbuf_t b = {0};
      write_v2(&b, shared, gs);
      px_llama2c_t *m;
      /* gs 1 or 2: scales at odd offsets, still loaded (copied) */
      assert_int_equal(px_llama2c_open_mem(b.p, b.n, &m), 0);
      check_cfg(&m->cfg, 2, shared, gs);
      SAME(m->rms_att, T_RMS_ATT);
      SAME(m->rms_ffn, T_RMS_FFN);
      SAME(m->rms_final, T_RMS_FINAL);
      assert_null(m->wq);
      assert_null(m->token_embedding);
      check_q8(&m->q_tokens, T_EMB, 0, gs);
      for (int l = 0; l < L; l++) {
        check_q8(&m->q_wq[l], T_WQ, l, gs);
        check_q8(&m->q_wk[l], T_WK, l, gs);
        check_q8(&m->q_wv[l], T_WV, l, gs);
        check_q8(&m->q_wo[l], T_WO, l, gs);
        check_q8(&m->q_w1[l], T_W1, l, gs);
        check_q8(&m->q_w2[l], T_W2, l, gs);
        check_q8(&m->q_w3[l], T_W3, l, gs);
      }
      if (shared)
        assert_ptr_equal(m->q_cls.q, m->q_tokens.q);
      else
        check_q8(&m->q_cls, T_WCLS, 0, gs);
      px_llama2c_free(m);
      roundtrip_checks(&b);
      free(b.p);
    }
  }
}

static void set_i32(uint8_t *p, int32_t v) {
  uint32_t u = (uint32_t)v;
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(u >> (8 * i));
}

static void test_bad_headers(void **state) {
  (void)state;
  make_tensors();
  wbuf_t b0 = {0}, b1 = {0}, b2 = {0};
  write_v0(&b0, 1);
  write_v1(&b1, 1);
  write_v2(&b2, 1, 4);
  px_llama2c_t *m;
  uint8_t *c = malloc(b2.n + b1.n + b0.n);
  /* each header int: zero, negative, huge */
  static const int32_t bad[] = {0, -3, (1 << 20) + 1, INT32_MIN};
  for (int field = 0; field < 7; field++) {
    for (size_t k = 0; k < PX_ARRAY_LEN(bad); k++) {
      memcpy(c, b0.p, b0.n);
      set_i32(c + 4 * field, bad[k]);
      int rc = load_copy(c, b0.n, &m);
      if (field == 5 && bad[k] == -3) /* vocab -3: unshared, 3 tokens */
        assert_true(rc == PX_ETRUNC || rc == PX_ETRAILING);
      else
        assert_int_equal(rc, PX_EDECODE);
      memcpy(c, b1.p, b1.n);
      set_i32(c + 8 + 4 * field, bad[k]);
      assert_int_equal(load_copy(c, b1.n, &m), PX_EDECODE);
    }
  }
  /* inconsistent shapes */
  memcpy(c, b0.p, b0.n);
  set_i32(c + 12, 3); /* n_heads 3: dim 8 % 3 */
  assert_int_equal(load_copy(c, b0.n, &m), PX_EDECODE);
  memcpy(c, b0.p, b0.n);
  set_i32(c + 16, 3); /* n_kv_heads 3: 4 % 3 */
  assert_int_equal(load_copy(c, b0.n, &m), PX_EDECODE);
  memcpy(c, b0.p, b0.n);
  set_i32(c + 12, 8); /* head_size 1: odd */
  set_i32(c + 16, 8);
  assert_int_equal(load_copy(c, b0.n, &m), PX_EDECODE);
  /* huge but in-range dimensions: sizes must not overflow, just not fit */
  memcpy(c, b0.p, b0.n);
  for (int f = 0; f < 7; f++)
    set_i32(c + 4 * f, f == 3 || f == 4 ? 1 << 10 : 1 << 20);
  assert_int_equal(load_copy(c, b0.n, &m), PX_ETRUNC);
  memcpy(c, b2.p, b2.n);
  for (int f = 0; f < 7; f++)
    set_i32(c + 8 + 4 * f, f == 3 || f == 4 ? 1 << 10 : 1 << 20);
  assert_int_equal(load_copy(c, b2.n, &m), PX_ETRUNC);
  /* version, flag, padding, group size */
  memcpy(c, b1.p, b1.n);
  set_i32(c + 4, 3);
  assert_int_equal(load_copy(c, b1.n, &m), PX_EVERSION);
  set_i32(c + 4, 0);
  assert_int_equal(load_copy(c, b1.n, &m), PX_EVERSION);
  memcpy(c, b1.p, b1.n);
  c[36] = 2;
  assert_int_equal(load_copy(c, b1.n, &m), PX_EDECODE);
  memcpy(c, b1.p, b1.n);
  c[255] = 1;
  assert_int_equal(load_copy(c, b1.n, &m), PX_EDECODE);
  memcpy(c, b2.p, b2.n);
  set_i32(c + 37, 3); /* 8 % 3 */
  assert_int_equal(load_copy(c, b2.n, &m), PX_EDECODE);
  set_i32(c + 37, 0);
  assert_int_equal(load_copy(c, b2.n, &m), PX_EDECODE);
  set_i32(c + 37, 16); /* > dim */
  assert_int_equal(load_copy(c, b2.n, &m), PX_EDECODE);
  set_i32(c + 37, 8); /* valid, but the file was written with 4 */
  assert_int_equal(load_copy(c, b2.n, &m), PX_ETRAILING);
  /* a v1 file cut inside its 256-byte header */
  assert_int_equal(load_copy(b1.p, 100, &m), PX_ETRUNC);
  /* misaligned memory */
  memcpy(c + 1, b0.p, b0.n);
  assert_int_equal(px_llama2c_open_mem(c + 1, b0.n, &m), PX_EINVAL);
  assert_int_equal(px_llama2c_open("/nonexistent/x.bin", &m), PX_ENOENT);
  free(c);
  free(b0.p);
  free(b1.p);
  free(b2.p);
}

/* ---- tokenizer ---------------------------------------------------------- */

typedef struct {
  const char *s;
  float score;
} tok_t;

/* A llama2.c-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, pieces. */
static void write_tokenizer(wbuf_t *b, const tok_t *extra, size_t n_extra,
                            int *vocab) {
  char pieces[259][8];
  snprintf(pieces[0], 8, "<unk>");
  snprintf(pieces[1], 8, "\n<s>\n");
  snprintf(pieces[2], 8, "\n</s>\n");
  for (int i = 0; i < 256; i++)
    snprintf(pieces[3 + i], 8, "<0x%02X>", i);
  size_t maxlen = 6;
  for (size_t i = 0; i < n_extra; i++)
    maxlen = PX_MAX(maxlen, strlen(extra[i].s));
  put_i32(b, (int32_t)maxlen);
  for (int i = 0; i < 259 + (int)n_extra; i++) {
    const char *s = i < 259 ? pieces[i] : extra[i - 259].s;
    float sc = i < 259 ? 0.0f : extra[i - 259].score;
    put_f32s(b, &sc, 1);
    put_i32(b, (int32_t)strlen(s));
    put(b, s, strlen(s));
  }
  *vocab = 259 + (int)n_extra;
}

static const tok_t k_extra[] = {
    {" ", 0},        /* 259 */
    {"a", 0},        /* 260 */
    {"b", 0},        /* 261 */
    {"c", 0},        /* 262 */
    {"ab", 5},       /* 263 */
    {"bc", 3},       /* 264 */
    {" ab", 4},      /* 265 */
    {"abc", 1},      /* 266 */
    {"\xc3\xa9", 0}, /* 267 */
    {"ab", -1},      /* 268: duplicate piece, lower id wins */
};

static void expect_tokens(const px_tokenizer_t *t, const char *text, int bos,
                          int eos, const int *want, size_t n_want) {
  int tok[64];
  size_t n;
  assert_int_equal(
      px_tokenizer_encode(t, text, strlen(text), bos, eos, tok, 64, &n), 0);
  assert_int_equal(n, n_want);
  assert_memory_equal(tok, want, n * sizeof *tok);
}

static void test_tokenizer(void **state) {
  (void)state;
  wbuf_t b = {0};
  int vocab;
  write_tokenizer(&b, k_extra, PX_ARRAY_LEN(k_extra), &vocab);
  px_tokenizer_t *t;
  assert_int_equal(px_tokenizer_load_mem(b.p, b.n, vocab, &t), 0);
  assert_int_equal(px_tokenizer_vocab_size(t), vocab);
  assert_int_equal(px_tokenizer_lookup(t, "ab", 2), 263);
  assert_int_equal(px_tokenizer_lookup(t, "<0x41>", 6), 3 + 0x41);
  assert_int_equal(px_tokenizer_lookup(t, "zz", 2), -1);
  const char *s;
  size_t n;
  float sc;
  assert_int_equal(px_tokenizer_piece(t, 265, &s, &n, &sc), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(s, " ab", 3);
  assert_true(sc == 4.0f);
  assert_int_equal(px_tokenizer_piece(t, vocab, &s, &n, &sc), PX_ERANGE);

  /* " abc": [ " ", a, b, c ] -> ab(5) -> " ab"(4) -> stop */
  expect_tokens(t, "abc", 0, 0, (const int[]){265, 262}, 2);
  expect_tokens(t, "abc", 1, 1, (const int[]){1, 265, 262, 2}, 4);
  /* ties: the first "ab" merges first, then the second (5 > " ab" 4) */
  expect_tokens(t, "abab", 0, 0, (const int[]){265, 263}, 2);
  /* UTF-8 character in the vocabulary, byte fallback for the rest */
  expect_tokens(t, "a\xc3\xa9\x01", 0, 0, (const int[]){259, 260, 267, 4}, 4);
  expect_tokens(t, "\xff", 0, 0, (const int[]){259, 258}, 2);
  expect_tokens(t, "\xe2\x82\xac", 0, 0,
                (const int[]){259, 3 + 0xe2, 3 + 0x82, 3 + 0xac}, 4);
  expect_tokens(t, "", 0, 0, NULL, 0);
  expect_tokens(t, "", 1, 0, (const int[]){1}, 1);
  int tok[4];
  assert_int_equal(px_tokenizer_encode(t, "abcabc", 6, 1, 1, tok, 3, &n),
                   PX_ETOOBIG);

  /* decode */
  assert_int_equal(px_tokenizer_decode(t, 1, 265, &s, &n), 0);
  assert_int_equal(n, 2);
  assert_memory_equal(s, "ab", 2);
  assert_int_equal(px_tokenizer_decode(t, 5, 265, &s, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(px_tokenizer_decode(t, 1, 259, &s, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(px_tokenizer_decode(t, 0, 3 + 0x0A, &s, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(s[0], '\n');
  assert_int_equal(px_tokenizer_decode(t, 0, 3 + 0xff, &s, &n), 0);
  assert_int_equal((uint8_t)s[0], 0xff);
  assert_int_equal(px_tokenizer_decode(t, 0, 1, &s, &n), 0);
  assert_int_equal(n, 5); /* "\n<s>\n" is not a byte token */
  assert_int_equal(px_tokenizer_decode(t, 0, -1, &s, &n), PX_ERANGE);
  assert_int_equal(px_tokenizer_decode(t, 0, vocab, &s, &n), PX_ERANGE);

  /* round trip: decode(encode(x)) == " " + x for byte-covered text */
  const char *text = "abc ab\xc3\xa9z\x01";
  int toks[64];
  size_t nt;
  assert_int_equal(
      px_tokenizer_encode(t, text, strlen(text), 1, 0, toks, 64, &nt), 0);
  char out[64];
  size_t on = 0;
  for (size_t i = 1; i < nt; i++) {
    assert_int_equal(px_tokenizer_decode(t, toks[i - 1], toks[i], &s, &n), 0);
    memcpy(out + on, s, n);
    on += n;
  }
  assert_int_equal(on, strlen(text));
  assert_memory_equal(out, text, on);
  px_tokenizer_free(t);

  /* a vocabulary too small for byte fallback or BOS */
  assert_int_equal(px_tokenizer_load_mem(b.p, b.n, 259, &t), PX_ETRAILING);
  wbuf_t small = {0};
  put_i32(&small, 1);
  float z = 0;
  put_f32s(&small, &z, 1);
  put_i32(&small, 1);
  put(&small, "a", 1);
  assert_int_equal(px_tokenizer_load_mem(small.p, small.n, 1, &t), 0);
  assert_int_equal(px_tokenizer_encode(t, "b", 1, 0, 0, tok, 4, &n), PX_ERANGE);
  assert_int_equal(px_tokenizer_encode(t, "a", 1, 1, 0, tok, 4, &n), PX_ERANGE);
  px_tokenizer_free(t);
  free(small.p);
  free(b.p);
}

static int tok_load_copy(const uint8_t *p, size_t n, int vocab) {
  void *c = malloc(n ? n : 1);
  memcpy(c, p, n);
  px_tokenizer_t *t = NULL;
  int rc = px_tokenizer_load_mem(c, n, vocab, &t);
  px_tokenizer_free(t);
  free(c);
  return rc;
}

static void test_tokenizer_bad(void **state) {
  (void)state;
  wbuf_t b = {0};
  int vocab;
  write_tokenizer(&b, k_extra, PX_ARRAY_LEN(k_extra), &vocab);
  for (size_t cut = 0; cut < b.n; cut++)
    assert_true(tok_load_copy(b.p, cut, vocab) < 0);
  assert_int_equal(tok_load_copy(b.p, b.n - 1, vocab), PX_ETRUNC);
  assert_int_equal(tok_load_copy(b.p, b.n, vocab + 1), PX_ETRUNC);
  assert_int_equal(tok_load_copy(b.p, b.n, 1 << 30), PX_ETRUNC);
  assert_int_equal(tok_load_copy(b.p, b.n, 0), PX_EINVAL);
  uint8_t *c = malloc(b.n + 1);
  memcpy(c, b.p, b.n);
  c[b.n] = 0;
  assert_int_equal(tok_load_copy(c, b.n + 1, vocab), PX_ETRAILING);
  set_i32(c, -1);
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_EDECODE);
  set_i32(c, PX_TOKENIZER_MAX_TOKEN_LEN + 1);
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_ETOOBIG);
  memcpy(c, b.p, b.n);
  set_i32(c, 2); /* "<unk>" is 5 bytes > max_token_length */
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_EDECODE);
  memcpy(c, b.p, b.n);
  set_i32(c + 8, -5); /* first token's length */
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_EDECODE);
  memcpy(c, b.p, b.n);
  set_i32(c + 8, 0x7fffffff);
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_EDECODE);
  memcpy(c, b.p, b.n);
  set_i32(c + 4, 0x7fc00000); /* NaN score */
  assert_int_equal(tok_load_copy(c, b.n, vocab), PX_EDECODE);
  /* fuzz regression: a long piece cut short must not write past the copy */
  wbuf_t cut = {0};
  put_i32(&cut, 100);
  float z = 0;
  put_f32s(&cut, &z, 1);
  put_i32(&cut, 100);
  put(&cut, "abcde", 5);
  assert_int_equal(tok_load_copy(cut.p, cut.n, 1), PX_ETRUNC);
  free(cut.p);
  px_tokenizer_t *t;
  assert_int_equal(px_tokenizer_load("/nonexistent/tok.bin", 10, &t),
                   PX_ENOENT);
  free(c);
  free(b.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v0),        cmocka_unit_test(test_v1),
      cmocka_unit_test(test_v2),        cmocka_unit_test(test_bad_headers),
      cmocka_unit_test(test_tokenizer), cmocka_unit_test(test_tokenizer_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
