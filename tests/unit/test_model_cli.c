/*
 * test_model_cli.c — the model commands of the real `plexus` binary
 * (PX_BIN): train + eval on a small Fashion-MNIST subset (--limit) with the
 * eval JSON checked (accuracy, output_hash identical under PLEXUS_SIMD=scalar
 * PLEXUS_THREADS=1), infer on raw f32 and IDX input, generate on a tiny
 * llama2.c model + tokenizer written here (same text for the same seed),
 * and one-line errors with exit status 2 (usage) or 1 (failure) for bad
 * input.  Dataset-dependent parts are skipped when it is absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/json.h"
#include "plexus/model_io.h"

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/px_test_mcli_XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Run `env PX_BIN args`, stdout into out (NUL-terminated), stderr into
 * err; returns the exit status. */
static int run(const char *env, const char *args, char *out, size_t cap,
               char *err, size_t ecap) {
  char cmd[2048], epath[128];
  snprintf(epath, sizeof epath, "%s/stderr", g_dir);
  snprintf(cmd, sizeof cmd, "%s %s %s 2>%s", env ? env : "", PX_BIN, args,
           epath);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = 0;
  int st = pclose(p);
  FILE *e = fopen(epath, "r");
  assert_non_null(e);
  n = fread(err, 1, ecap - 1, e);
  err[n] = 0;
  fclose(e);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* exactly one line on stderr, starting "plexus: " */
static void one_line_error(const char *err) {
  assert_true(strncmp(err, "plexus: ", 8) == 0);
  const char *nl = strchr(err, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1], 0);
}

static int have_data(void) {
  px_mnist_t m;
  if (px_mnist_load(PX_FASHION_MNIST_DIR, "t10k", &m)) return 0;
  px_mnist_release(&m);
  return 1;
}

static void eval_json(const char *env, const char *model, double *acc,
                      char hash[65]) {
  char args[512], out[4096], err[4096];
  snprintf(args, sizeof args,
           "eval --model %s --data fashion-mnist --limit 500 --json", model);
  assert_int_equal(run(env, args, out, sizeof out, err, sizeof err), 0);
  px_arena_t ar;
  px_arena_init(&ar, 4096, 1 << 20);
  px_json_t *root;
  assert_int_equal(px_json_parse(&ar, out, strlen(out), NULL, &root, NULL), 0);
  assert_int_equal(px_json_get_double(root, "accuracy", acc), 0);
  const char *h;
  assert_int_equal(px_json_get_str(root, "output_hash", &h), 0);
  assert_int_equal(strlen(h), 64);
  memcpy(hash, h, 65);
  int64_t n;
  assert_int_equal(px_json_get_i64(root, "samples", &n), 0);
  assert_int_equal(n, 500);
  px_arena_release(&ar);
}

static void test_train_eval(void **state) {
  (void)state;
  if (!have_data()) {
    skip();
    return;
  }
  char model[128], args[512], out[4096], err[8192];
  snprintf(model, sizeof model, "%s/mlp.safetensors", g_dir);
  snprintf(args, sizeof args,
           "train --model mlp --data fashion-mnist --epochs 1 --limit 1000 "
           "--batch 32 --seed 5 --out %s",
           model);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 0);
  assert_non_null(strstr(out, "test accuracy"));
  assert_non_null(strstr(err, "samples/s")); /* progress lines */
  double acc, acc2;
  char h1[65], h2[65];
  eval_json(NULL, model, &acc, h1);
  assert_true(acc >= 0.6 && acc <= 1.0);
  eval_json("PLEXUS_SIMD=scalar PLEXUS_THREADS=1", model, &acc2, h2);
  assert_true(acc == acc2);
  assert_string_equal(h1, h2);
  /* the same seed trains the same weights: same output hash */
  char model2[128];
  snprintf(model2, sizeof model2, "%s/mlp2.safetensors", g_dir);
  snprintf(args, sizeof args,
           "train --model mlp --data fashion-mnist --epochs 1 --limit 1000 "
           "--batch 32 --seed 5 --out %s",
           model2);
  assert_int_equal(
      run("PLEXUS_THREADS=1", args, out, sizeof out, err, sizeof err), 0);
  eval_json(NULL, model2, &acc2, h2);
  assert_string_equal(h1, h2);
  /* human-readable eval */
  snprintf(args, sizeof args, "eval --model %s --data fashion-mnist --limit 10",
           model);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 0);
  assert_non_null(strstr(out, "output_hash "));

  /* infer: raw f32 (2 samples) and IDX (the test images file) */
  char raw[128];
  snprintf(raw, sizeof raw, "%s/x.f32", g_dir);
  FILE *f = fopen(raw, "wb");
  float x[2 * 784];
  for (int i = 0; i < 2 * 784; i++)
    x[i] = (float)(i % 17) / 17.0f;
  fwrite(x, sizeof x, 1, f);
  fclose(f);
  snprintf(args, sizeof args, "infer --model %s --input %s --trace", model,
           raw);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 0);
  assert_non_null(strstr(out, "sample 1: class"));
  assert_non_null(strstr(out, "trace_root "));
  snprintf(args, sizeof args, "infer --model %s --input %s --json", model,
           PX_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz");
  static char big[1 << 20];
  assert_int_equal(run(NULL, args, big, sizeof big, err, sizeof err), 0);
  assert_non_null(strstr(big, "\"output_hash\""));

  /* errors: one line, right exit code */
  struct {
    const char *args;
    int code;
  } bad[] = {
      {"train --model rnn --data fashion-mnist --out /tmp/x", 2},
      {"train --model mlp --data fashion-mnist --out /tmp/x --epochs 0", 2},
      {"train --model mlp --data fashion-mnist --out /tmp/x --lr abc", 2},
      {"train --model mlp --data fashion-mnist --out /tmp/x --optimizer "
       "adam",
       2},
      {"train --model mlp --data fashion-mnist", 2},
      {"train --model mlp --data /nonexistent --out /tmp/x", 1},
      {"train --model mlp --data fashion-mnist --out /tmp/x --bogus 1", 2},
      {"eval --model /nonexistent.safetensors --data fashion-mnist", 1},
      {"eval --data fashion-mnist", 2},
      {"eval --model /etc/hostname --data fashion-mnist", 1},
      {"infer --model /nonexistent --input /etc/hostname", 1},
      {"generate --model /nonexistent --tokenizer /nonexistent", 1},
      {"generate --model /etc/hostname --tokenizer /etc/hostname", 1},
      {"generate --tokenizer x", 2},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = run(NULL, bad[i].args, out, sizeof out, err, sizeof err);
    if (rc != bad[i].code)
      fail_msg("`plexus %s`: exit %d, want %d (%s)", bad[i].args, rc,
               bad[i].code, err);
    one_line_error(err);
  }
  /* infer on a file that is neither IDX nor whole f32 samples */
  snprintf(args, sizeof args, "infer --model %s --input /etc/hostname", model);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 1);
  one_line_error(err);
}

/* ---- generate on a tiny llama2.c model ------------------------------------
 */

enum { D = 16, HID = 32, NL = 1, NH = 2, NKV = 1, V = 40, S = 24 };

static void write_model(const char *path) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  int32_t hdr[9] = {0x616b3432, 1, D, HID, NL, NH, NKV, V, S};
  fwrite(hdr, sizeof hdr, 1, f);
  uint8_t pad[256 - sizeof hdr] = {1}; /* shared classifier flag */
  fwrite(pad, sizeof pad, 1, f);
  int kv = NKV * (D / NH);
  size_t n = NL * D * 2 + D + (size_t)V * D +
             (size_t)NL * (2 * D * D + 2 * kv * D + 3 * HID * D);
  px_rng_t r;
  px_rng_seed(&r, 31);
  for (size_t i = 0; i < n; i++) {
    float v = (float)(px_rng_next(&r) >> 40) * 0x1p-23f - 1.0f;
    if (i < (size_t)NL * D * 2 + D) v = 1.0f; /* norms */
    fwrite(&v, 4, 1, f);
  }
  fclose(f);
}

static void write_tokenizer(const char *path) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  int32_t maxlen = 8;
  fwrite(&maxlen, 4, 1, f);
  for (int i = 0; i < V; i++) {
    char s[16];
    if (i == 0)
      snprintf(s, sizeof s, "<unk>");
    else if (i == 1)
      snprintf(s, sizeof s, "\n<s>\n");
    else if (i == 2)
      snprintf(s, sizeof s, "\n</s>\n");
    else if (i == 3)
      snprintf(s, sizeof s, " ");
    else if (i < 30)
      snprintf(s, sizeof s, "%c", 'a' + (i - 4));
    else
      snprintf(s, sizeof s, " %c%c", 'a' + (i - 30), 'e');
    float score = (float)-i;
    int32_t len = (int32_t)strlen(s);
    fwrite(&score, 4, 1, f);
    fwrite(&len, 4, 1, f);
    fwrite(s, (size_t)len, 1, f);
  }
  fclose(f);
}

static void test_generate(void **state) {
  (void)state;
  char model[128], tok[128], args[512], out[4096], err[4096], out2[4096];
  snprintf(model, sizeof model, "%s/tiny.bin", g_dir);
  snprintf(tok, sizeof tok, "%s/tok.bin", g_dir);
  write_model(model);
  write_tokenizer(tok);
  snprintf(args, sizeof args,
           "generate --model %s --tokenizer %s --prompt \"the cat\" --steps "
           "20 --temperature 0.9 --top-p 0.9 --seed 3",
           model, tok);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 0);
  assert_non_null(strstr(err, "tokens/s"));
  assert_true(strncmp(out, "the cat", 7) == 0);
  assert_int_equal(run("PLEXUS_SIMD=scalar PLEXUS_THREADS=1", args, out2,
                       sizeof out2, err, sizeof err),
                   0);
  assert_string_equal(out, out2);
  /* bad option values */
  snprintf(args, sizeof args,
           "generate --model %s --tokenizer %s --temperature -1", model, tok);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 2);
  one_line_error(err);
  snprintf(args, sizeof args, "generate --model %s --tokenizer %s --top-p 2",
           model, tok);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 2);
  one_line_error(err);
  /* the tokenizer does not match the model's vocabulary */
  snprintf(args, sizeof args, "generate --model %s --tokenizer %s", model,
           model);
  assert_int_equal(run(NULL, args, out, sizeof out, err, sizeof err), 1);
  one_line_error(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_eval),
      cmocka_unit_test(test_generate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
