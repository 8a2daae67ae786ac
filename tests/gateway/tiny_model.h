/*
 * tiny_model.h — a small seeded llama2.c model and tokenizer for the
 * gateway tests (tests/unit/test_api.c, tests/integration/test_gateway.c).
 *
 * Version 0 layout (llama2.c export), separate classifier, random weights
 * from px_rng (seed 777).  The tokenizer has llama2.c's three specials, the
 * 256 byte-fallback tokens "<0xHH>", the 95 printable ASCII characters and a
 * few merges.  The classifier rows of BOS (1) and of the byte tokens are
 * zero, so at temperature 0 the argmax is (almost surely) a printable token
 * and never BOS: a greedy generation runs to the end of the context.
 * Header-only (static functions) so each test links its own copy.
 */
#ifndef PX_TESTS_GATEWAY_TINY_MODEL_H
#define PX_TESTS_GATEWAY_TINY_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plexus/base.h"

#define TINY_D 64
#define TINY_HID 160
#define TINY_L 2
#define TINY_NH 4
#define TINY_HS (TINY_D / TINY_NH)
#define TINY_N_WORDS 12
#define TINY_V (259 + 95 + TINY_N_WORDS)

static int tiny_put(FILE *f, const void *p, size_t n) {
  return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int tiny_put_rand(FILE *f, px_rng_t *r, size_t n, float scale,
                         float base) {
  for (size_t i = 0; i < n; i++) {
    float x = base + ((float)(px_rng_next(r) >> 40) * 0x1p-23f - 1.0f) * scale;
    if (tiny_put(f, &x, 4)) return -1;
  }
  return 0;
}

/* The model with a context of seq_len positions; 0 or -1. */
static int tiny_write_model(const char *path, int seq_len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  const size_t D = TINY_D, H = TINY_HID, L = TINY_L, V = TINY_V;
  int32_t hdr[7] = {TINY_D,  TINY_HID, TINY_L, TINY_NH,
                    TINY_NH, -TINY_V,  seq_len};
  px_rng_t r;
  px_rng_seed(&r, 777);
  int rc = tiny_put(f, hdr, sizeof hdr);
  rc |= tiny_put_rand(f, &r, V * D, 1.0f, 0);    /* embedding */
  rc |= tiny_put_rand(f, &r, L * D, 0.2f, 1.0f); /* rms_att */
  for (int k = 0; k < 4; k++)                    /* wq wk wv wo */
    rc |= tiny_put_rand(f, &r, L * D * D, 0.3f, 0);
  rc |= tiny_put_rand(f, &r, L * D, 0.2f, 1.0f);  /* rms_ffn */
  rc |= tiny_put_rand(f, &r, L * H * D, 0.3f, 0); /* w1 */
  rc |= tiny_put_rand(f, &r, L * D * H, 0.2f, 0); /* w2 */
  rc |= tiny_put_rand(f, &r, L * H * D, 0.3f, 0); /* w3 */
  rc |= tiny_put_rand(f, &r, D, 0.2f, 1.0f);      /* rms_final */
  float zero = 0;
  for (size_t i = 0; i < (size_t)seq_len * TINY_HS; i++) /* freq_cis */
    rc |= tiny_put(f, &zero, 4);
  for (size_t t = 0; t < V; t++) { /* classifier */
    if (t == 1 || (t >= 3 && t < 259)) {
      for (size_t i = 0; i < D; i++)
        rc |= tiny_put(f, &zero, 4);
    } else {
      rc |= tiny_put_rand(f, &r, D, 1.0f, 0);
    }
  }
  if (fclose(f)) rc = -1;
  return rc ? -1 : 0;
}

static int tiny_put_token(FILE *f, float score, const char *s, size_t n) {
  int32_t len = (int32_t)n;
  return tiny_put(f, &score, 4) | tiny_put(f, &len, 4) | tiny_put(f, s, n);
}

static int tiny_write_tokenizer(const char *path) {
  static const char *const words[TINY_N_WORDS] = {"th",  "he",  "the",  " the",
                                                  "an",  "and", " and", "in",
                                                  "ing", "on",  "er",   " a"};
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int32_t maxlen = 16;
  int rc = tiny_put(f, &maxlen, 4);
  rc |= tiny_put_token(f, 0, "<unk>", 5);
  rc |= tiny_put_token(f, 0, "\n<s>\n", 5);
  rc |= tiny_put_token(f, 0, "\n</s>\n", 6);
  for (int b = 0; b < 256; b++) {
    char s[8];
    snprintf(s, sizeof s, "<0x%02X>", b);
    rc |= tiny_put_token(f, 0, s, 6);
  }
  for (int ch = 0x20; ch < 0x7f; ch++) {
    char s = (char)ch;
    rc |= tiny_put_token(f, -1.0f, &s, 1);
  }
  for (int i = 0; i < TINY_N_WORDS; i++)
    rc |= tiny_put_token(f, (float)i, words[i], strlen(words[i]));
  if (fclose(f)) rc = -1;
  return rc ? -1 : 0;
}

#endif
