/*
 * test_model_llama.c — the Llama-style decoder (px_llama_*) on tiny random
 * models that the test writes itself in llama2.c's version 0, 1 and 2
 * layouts (export.py: legacy_export, version1_export, version2_export) and
 * loads with the real loader.
 *
 * Checks: logits for a sequence of positions match a straightforward
 * double-precision implementation of llama2.c's forward pass (f32 models
 * within 1e-4 of max|logit|; the int8 model — weights and activations
 * quantised in groups — within 4e-2 of max|logit| against the reference run
 * on the dequantised weights); the three layouts of the same f32 weights
 * give identical bytes; logits are bit-identical at every SIMD level and
 * 1/2/4 threads and match committed golden hashes; seeded generation is
 * deterministic; bad positions and tokens are refused.
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

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"

enum { D = 32, HID = 64, L = 2, NH = 4, NKV = 2, V = 48, S = 12, GS = 16 };
enum { HS = D / NH, KV = NKV * HS, STEPS = 10 };

#define NTH 3
static const int k_threads[NTH] = {1, 2, 4};
static px_compute_t *g_ctx[3][NTH];
static int g_levels;

static int setup(void **state) {
  (void)state;
  if (px_crypto_init() != 0) return -1;
  g_levels = (int)px_cpu_best_simd() + 1;
  for (int l = 0; l < g_levels; l++)
    for (int t = 0; t < NTH; t++) {
      px_compute_opts_t o = {.simd = l, .threads = k_threads[t]};
      if (px_compute_new(&o, &g_ctx[l][t]) != 0) return -1;
    }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int l = 0; l < 3; l++)
    for (int t = 0; t < NTH; t++)
      px_compute_free(g_ctx[l][t]);
  return 0;
}

/* ---- the model's weights ----------------------------------------------- */

typedef struct {
  float emb[V * D], rms_att[L * D], wq[L * D * D], wk[L * KV * D],
      wv[L * KV * D], wo[L * D * D], rms_ffn[L * D], w1[L * HID * D],
      w2[L * D * HID], w3[L * HID * D], rms_final[D], freq[S * HS], wcls[V * D];
} weights_t;

static weights_t g_w;

static void fill(px_rng_t *r, float *x, size_t n, float scale, float base) {
  for (size_t i = 0; i < n; i++)
    x[i] = base + ((float)(px_rng_next(r) >> 40) * 0x1p-23f - 1.0f) * scale;
}

static void make_weights(void) {
  px_rng_t r;
  px_rng_seed(&r, 4242);
  fill(&r, g_w.emb, V * D, 1.0f, 0);
  fill(&r, g_w.rms_att, L * D, 0.2f, 1.0f);
  fill(&r, g_w.wq, L * D * D, 0.3f, 0);
  fill(&r, g_w.wk, L * KV * D, 0.3f, 0);
  fill(&r, g_w.wv, L * KV * D, 0.3f, 0);
  fill(&r, g_w.wo, L * D * D, 0.3f, 0);
  fill(&r, g_w.rms_ffn, L * D, 0.2f, 1.0f);
  fill(&r, g_w.w1, L * HID * D, 0.3f, 0);
  fill(&r, g_w.w2, L * D * HID, 0.2f, 0);
  fill(&r, g_w.w3, L * HID * D, 0.3f, 0);
  fill(&r, g_w.rms_final, D, 0.2f, 1.0f);
  memset(g_w.freq, 0, sizeof g_w.freq);
  fill(&r, g_w.wcls, V * D, 0.5f, 0);
}

/* ---- writers (llama2.c export.py layouts) ------------------------------- */

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
static void put_i32(wbuf_t *b, int32_t v) { put(b, &v, 4); }
static void put_params(wbuf_t *b, int vocab) {
  int32_t p[7] = {D, HID, L, NH, NKV, vocab, S};
  put(b, p, sizeof p);
}
#define PUTF(b, a) put((b), (a), sizeof(a))

static void write_v0(wbuf_t *b) {
  put_params(b, -V); /* negative: separate classifier */
  PUTF(b, g_w.emb);
  PUTF(b, g_w.rms_att);
  PUTF(b, g_w.wq);
  PUTF(b, g_w.wk);
  PUTF(b, g_w.wv);
  PUTF(b, g_w.wo);
  PUTF(b, g_w.rms_ffn);
  PUTF(b, g_w.w1);
  PUTF(b, g_w.w2);
  PUTF(b, g_w.w3);
  PUTF(b, g_w.rms_final);
  PUTF(b, g_w.freq);
  PUTF(b, g_w.wcls);
}

static void header(wbuf_t *b, int version) {
  put_i32(b, 0x616b3432);
  put_i32(b, version);
  put_params(b, V);
  uint8_t shared = 0;
  put(b, &shared, 1);
  if (version == 2) put_i32(b, GS);
  uint8_t z = 0;
  while (b->n < 256)
    put(b, &z, 1);
}

static void write_v1(wbuf_t *b) {
  header(b, 1);
  PUTF(b, g_w.rms_att);
  PUTF(b, g_w.rms_ffn);
  PUTF(b, g_w.rms_final);
  PUTF(b, g_w.emb);
  PUTF(b, g_w.wq);
  PUTF(b, g_w.wk);
  PUTF(b, g_w.wv);
  PUTF(b, g_w.wo);
  PUTF(b, g_w.w1);
  PUTF(b, g_w.w2);
  PUTF(b, g_w.w3);
  PUTF(b, g_w.wcls);
}

/* export.py quantize_q80 per group; the dequantised values replace the
 * reference's weights for the int8 comparison. */
static void put_q8(wbuf_t *b, float *w, size_t n) {
  int8_t *q = malloc(n);
  float *s = malloc(n / GS * sizeof(float));
  for (size_t g = 0; g < n / GS; g++) {
    float mx = 0;
    for (int i = 0; i < GS; i++)
      mx = fmaxf(mx, fabsf(w[g * GS + i]));
    s[g] = mx / 127.0f;
    for (int i = 0; i < GS; i++) {
      q[g * GS + i] = (int8_t)(s[g] ? lrintf(w[g * GS + i] / s[g]) : 0);
      w[g * GS + i] = q[g * GS + i] * s[g];
    }
  }
  put(b, q, n);
  put(b, s, n / GS * sizeof(float));
  free(q);
  free(s);
}

static void write_v2(wbuf_t *b, weights_t *deq) {
  *deq = g_w;
  header(b, 2);
  PUTF(b, g_w.rms_att);
  PUTF(b, g_w.rms_ffn);
  PUTF(b, g_w.rms_final);
  put_q8(b, deq->emb, V * D);
  float *mats[] = {deq->wq, deq->wk, deq->wv, deq->wo,
                   deq->w1, deq->w2, deq->w3};
  size_t per[] = {D * D, KV * D, KV * D, D * D, HID * D, D * HID, HID * D};
  for (int m = 0; m < 7; m++)
    for (int l = 0; l < L; l++)
      put_q8(b, mats[m] + l * per[m], per[m]);
  put_q8(b, deq->wcls, V * D);
}

/* ---- double-precision reference (llama2.c run.c) ------------------------ */

typedef struct {
  double k[L][S][KV], v[L][S][KV];
} ref_cache_t;

static void ref_rmsnorm(double *o, const double *x, const float *w, int n) {
  double ss = 0;
  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  double r = 1.0 / sqrt(ss / n + 1e-5);
  for (int i = 0; i < n; i++)
    o[i] = x[i] * r * w[i];
}
static void ref_matvec(double *o, const double *x, const float *w, int n,
                       int k) {
  for (int i = 0; i < n; i++) {
    double a = 0;
    for (int j = 0; j < k; j++)
      a += (double)w[(size_t)i * k + j] * x[j];
    o[i] = a;
  }
}
static void ref_rope(double *x, int heads, int pos) {
  for (int h = 0; h < heads; h++)
    for (int i = 0; i < HS; i += 2) {
      double f = 1.0 / pow(10000.0, (double)i / HS), a = pos * f;
      double c = cos(a), s = sin(a), x0 = x[h * HS + i], x1 = x[h * HS + i + 1];
      x[h * HS + i] = x0 * c - x1 * s;
      x[h * HS + i + 1] = x0 * s + x1 * c;
    }
}

static void ref_forward(const weights_t *w, ref_cache_t *kc, int token, int pos,
                        double *logits) {
  double x[D], xb[D], q[D], xb2[D], hb[HID], hb2[HID];
  for (int i = 0; i < D; i++)
    x[i] = w->emb[token * D + i];
  for (int l = 0; l < L; l++) {
    ref_rmsnorm(xb, x, w->rms_att + l * D, D);
    ref_matvec(q, xb, w->wq + l * D * D, D, D);
    ref_matvec(kc->k[l][pos], xb, w->wk + l * KV * D, KV, D);
    ref_matvec(kc->v[l][pos], xb, w->wv + l * KV * D, KV, D);
    ref_rope(q, NH, pos);
    ref_rope(kc->k[l][pos], NKV, pos);
    for (int h = 0; h < NH; h++) {
      int g = h / (NH / NKV);
      double att[S], mx = -INFINITY, sum = 0;
      for (int t = 0; t <= pos; t++) {
        double s = 0;
        for (int i = 0; i < HS; i++)
          s += q[h * HS + i] * kc->k[l][t][g * HS + i];
        att[t] = s / sqrt((double)HS);
        if (att[t] > mx) mx = att[t];
      }
      for (int t = 0; t <= pos; t++)
        sum += (att[t] = exp(att[t] - mx));
      for (int i = 0; i < HS; i++) {
        double a = 0;
        for (int t = 0; t <= pos; t++)
          a += att[t] / sum * kc->v[l][t][g * HS + i];
        xb[h * HS + i] = a;
      }
    }
    ref_matvec(xb2, xb, w->wo + l * D * D, D, D);
    for (int i = 0; i < D; i++)
      x[i] += xb2[i];
    ref_rmsnorm(xb, x, w->rms_ffn + l * D, D);
    ref_matvec(hb, xb, w->w1 + l * HID * D, HID, D);
    ref_matvec(hb2, xb, w->w3 + l * HID * D, HID, D);
    for (int i = 0; i < HID; i++)
      hb[i] = hb[i] / (1 + exp(-hb[i])) * hb2[i];
    ref_matvec(xb2, hb, w->w2 + l * D * HID, D, HID);
    for (int i = 0; i < D; i++)
      x[i] += xb2[i];
  }
  ref_rmsnorm(xb, x, w->rms_final, D);
  ref_matvec(logits, xb, w->wcls, V, D);
}

static const int k_tokens[STEPS] = {1, 7, 30, 2, 47, 0, 13, 13, 5, 22};

/* Run STEPS positions; all logits into out[STEPS][V]. */
static void run(px_llama_t *m, px_compute_t *c, float *out) {
  for (int p = 0; p < STEPS; p++) {
    float *lg;
    assert_int_equal(px_llama_forward(m, c, k_tokens[p], p, &lg, NULL), 0);
    memcpy(out + p * V, lg, V * sizeof(float));
  }
}

static px_llama_t *load(wbuf_t *b, int version) {
  px_llama2c_t *ck;
  assert_int_equal(px_llama2c_open_mem(b->p, b->n, &ck), 0);
  assert_int_equal(ck->cfg.version, version);
  px_llama_t *m;
  assert_int_equal(px_llama_new(ck, &m), 0);
  px_llama2c_free(ck); /* the model keeps its own packed copy */
  return m;
}

static void compare_ref(const weights_t *w, const float *got, double rel,
                        const char *name) {
  ref_cache_t *kc = calloc(1, sizeof *kc);
  double lg[V], worst = 0;
  for (int p = 0; p < STEPS; p++) {
    ref_forward(w, kc, k_tokens[p], p, lg);
    double mx = 0;
    for (int i = 0; i < V; i++)
      mx = fmax(mx, fabs(lg[i]));
    for (int i = 0; i < V; i++) {
      double e = fabs(got[p * V + i] - lg[i]) / mx;
      if (e > worst) worst = e;
      if (e > rel)
        fail_msg("%s pos %d logit %d: %.7g vs reference %.7g", name, p, i,
                 (double)got[p * V + i], lg[i]);
    }
  }
  printf("  %s: worst |error| / max|logit| = %.2e (tolerance %.0e)\n", name,
         worst, rel);
  free(kc);
}

static void golden(const char *name, const void *p, size_t n,
                   const char *want) {
  uint8_t h[32];
  char hex[65];
  px_hash(h, p, n);
  px_hex_encode(h, 32, hex);
  if (getenv("PX_GOLDEN_PRINT") || strcmp(hex, want) != 0)
    printf("GOLDEN %s %s\n", name, hex);
  assert_string_equal(hex, want);
}

/* Every level and thread count gives the bytes of the first. */
static void all_levels(px_llama_t *m, const float *ref) {
  float *lg = malloc(STEPS * V * sizeof(float));
  for (int l = 0; l < g_levels; l++)
    for (int t = 0; t < NTH; t++) {
      run(m, g_ctx[l][t], lg);
      if (memcmp(lg, ref, STEPS * V * sizeof(float)))
        fail_msg("logits differ at %s x%d threads", px_simd_name((px_simd_t)l),
                 k_threads[t]);
    }
  free(lg);
}

static void test_f32_versions(void **state) {
  (void)state;
  make_weights();
  float *a = malloc(STEPS * V * sizeof(float));
  float *b = malloc(STEPS * V * sizeof(float));
  wbuf_t w0 = {0}, w1 = {0};
  write_v0(&w0);
  write_v1(&w1);
  px_llama_t *m0 = load(&w0, 0), *m1 = load(&w1, 1);
  run(m0, g_ctx[0][0], a);
  run(m1, g_ctx[0][0], b);
  assert_memory_equal(a, b, STEPS * V * sizeof(float));
  compare_ref(&g_w, a, 1e-4, "f32 (v0/v1)");
  all_levels(m1, a);
  golden("llama_f32_logits", a, STEPS * V * sizeof(float),
         "d4232a69243e41af5f01933d5496bb0d7874f7dc2b20bdeb7ebccd25f98f3a79");
  /* trace: one leaf per layer plus the logits */
  px_trace_t tr;
  px_trace_init(&tr, 1);
  float *lg;
  assert_int_equal(px_llama_forward(m1, g_ctx[0][0], 1, 0, &lg, &tr), 0);
  assert_int_equal(tr.n, L + 1);
  px_trace_release(&tr);
  /* bad token / position */
  assert_int_equal(px_llama_forward(m1, g_ctx[0][0], V, 0, &lg, NULL),
                   PX_ERANGE);
  assert_int_equal(px_llama_forward(m1, g_ctx[0][0], 0, S, &lg, NULL),
                   PX_ERANGE);
  assert_int_equal(px_llama_forward(m1, g_ctx[0][0], -1, 0, &lg, NULL),
                   PX_ERANGE);
  assert_true(px_llama_weight_bytes(m1) > sizeof(float) * (size_t)L * D * D);
  px_llama_free(m0);
  px_llama_free(m1);
  free(w0.p);
  free(w1.p);
  free(a);
  free(b);
}

static void test_int8(void **state) {
  (void)state;
  make_weights();
  weights_t *deq = malloc(sizeof *deq);
  wbuf_t w2 = {0};
  write_v2(&w2, deq);
  px_llama_t *m = load(&w2, 2);
  float *a = malloc(STEPS * V * sizeof(float));
  run(m, g_ctx[0][0], a);
  compare_ref(deq, a, 4e-2, "int8 (v2)");
  all_levels(m, a);
  golden("llama_q8_logits", a, STEPS * V * sizeof(float),
         "d6f1dbfb4ad65a7cd7d92c810496a690ebb1dded2ffe988748e7e96c200d2dd3");
  px_llama_free(m);
  /* a group size the int8 kernels cannot take is refused at load */
  free(w2.p);
  free(a);
  free(deq);
}

static int collect(void *ud, int prev, int token) {
  (void)prev;
  int *v = ud;
  v[1 + v[0]++] = token;
  return 0;
}

static void test_generate(void **state) {
  (void)state;
  make_weights();
  wbuf_t w1 = {0};
  write_v1(&w1);
  px_llama_t *m = load(&w1, 1);
  int prompt[3] = {1, 20, 21};
  int got[3][S + 1];
  float temps[3] = {0.0f, 1.0f, 0.8f}, topp[3] = {0.0f, 0.0f, 0.9f};
  for (int k = 0; k < 3; k++) {
    px_generate_opts_t o = {S, temps[k], topp[k], 99};
    int ref[S + 1] = {0};
    int n;
    assert_int_equal(
        px_llama_generate(m, g_ctx[0][0], prompt, 3, &o, collect, ref, &n), 0);
    assert_int_equal(n, ref[0]);
    assert_true(n >= 1 && n <= S - 2);
    for (int l = 0; l < g_levels; l++)
      for (int t = 0; t < NTH; t++) {
        int again[S + 1] = {0};
        assert_int_equal(px_llama_generate(m, g_ctx[l][t], prompt, 3, &o,
                                           collect, again, &n),
                         0);
        assert_memory_equal(again, ref, sizeof ref);
      }
    memcpy(got[k], ref, sizeof ref);
  }
  golden("llama_generate_tokens", got, sizeof got,
         "2920fe14c8b2f0621d0f7fe55d2c08a0edc9decf47a5ace236ad9ee94478d8f7");
  px_generate_opts_t bad = {S, -1.0f, 0.0f, 1};
  assert_int_equal(
      px_llama_generate(m, g_ctx[0][0], prompt, 3, &bad, NULL, NULL, NULL),
      PX_EINVAL);
  px_llama_free(m);
  free(w1.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f32_versions),
      cmocka_unit_test(test_int8),
      cmocka_unit_test(test_generate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
