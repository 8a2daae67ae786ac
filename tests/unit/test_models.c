/*
 * test_models.c — the gateway's model registry (plexus/models.h) and the
 * chat template both inference backends share (plexus/api.h, template.c),
 * on real files: a seeded llama2.c model and tokenizer are registered in a
 * fresh home, the blobs land in the blob store under their roots, the
 * registry reads back, a second add replaces by name, bad inputs are
 * refused with a message and leave the registry as it was, and a damaged
 * models.json is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/api.h"
#include "plexus/market.h"
#include "plexus/models.h"
#include "gateway/tiny_model.h"

static char g_dir[256], g_home[300], g_model[300], g_tok[300];

static void write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/plexus-models-XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  snprintf(g_home, sizeof g_home, "%s/home", g_dir);
  snprintf(g_model, sizeof g_model, "%s/tiny.bin", g_dir);
  snprintf(g_tok, sizeof g_tok, "%s/tokenizer.bin", g_dir);
  return tiny_write_model(g_model, 64) || tiny_write_tokenizer(g_tok);
}

static int teardown(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_add_and_load(void **state) {
  (void)state;
  char err[512];
  px_models_t m;
  assert_int_equal(px_models_load(g_home, &m, err, sizeof err), PX_ENOENT);
  px_model_entry_t e;
  assert_int_equal(
      px_models_add(g_home, "tiny", g_model, g_tok, NULL, &e, err, sizeof err),
      0);
  assert_int_equal(e.vocab_size, TINY_V);
  assert_int_equal(e.seq_len, 64);
  /* the blob is in the store under its Merkle root */
  uint8_t *p = NULL;
  size_t n = 0;
  assert_int_equal(px_file_read_all(g_model, 1 << 24, &p, &n), 0);
  uint8_t root[32];
  assert_int_equal(px_blob_root(p, n, root), 0);
  assert_memory_equal(root, e.model, 32);
  assert_int_equal(e.model_size, n);
  char hex[65], path[600];
  px_hex_encode(root, 32, hex);
  snprintf(path, sizeof path, "%s/blobs/%s", g_home, hex);
  assert_int_equal(access(path, R_OK), 0);
  px_free(p);
  px_api_template_release(&e.tpl);
  /* it reads back, default template */
  assert_int_equal(px_models_load(g_home, &m, err, sizeof err), 0);
  assert_int_equal(m.n, 1);
  const px_model_entry_t *t = px_models_find(&m, "tiny");
  assert_non_null(t);
  assert_memory_equal(t->model, root, 32);
  assert_string_equal(t->tpl.message, PX_API_TPL_MESSAGE);
  assert_null(px_models_find(&m, "other"));
  px_models_release(&m);
  /* a template; the same name replaces, another name adds */
  char tpl[600];
  snprintf(tpl, sizeof tpl, "%s/chat.json", g_dir);
  write_text(tpl, "{\"chat_template\":{\"prefix\":\"<s>\",\"message\":"
                  "\"[{role}] {content}\\n\",\"suffix\":\"[assistant]\"}}");
  assert_int_equal(
      px_models_add(g_home, "tiny", g_model, g_tok, tpl, NULL, err, sizeof err),
      0);
  assert_int_equal(px_models_add(g_home, "tiny-2", g_model, g_tok, NULL, NULL,
                                 err, sizeof err),
                   0);
  assert_int_equal(px_models_load(g_home, &m, err, sizeof err), 0);
  assert_int_equal(m.n, 2);
  t = px_models_find(&m, "tiny");
  assert_string_equal(t->tpl.prefix, "<s>");
  /* the template renders a chat as the backends do */
  px_api_request_t *req = calloc(1, sizeof *req);
  req->kind = PX_API_CHAT;
  req->messages[0] = (px_api_message_t){"system", "be brief"};
  req->messages[1] = (px_api_message_t){"user", "hi"};
  req->n_messages = 2;
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_api_template_render(&t->tpl, req, &b), 0);
  assert_int_equal(b.len,
                   strlen("<s>[system] be brief\n[user] hi\n[assistant]"));
  assert_memory_equal(b.data, "<s>[system] be brief\n[user] hi\n[assistant]",
                      b.len);
  px_buf_release(&b);
  free(req);
  px_models_release(&m);
}

static void test_refusals(void **state) {
  (void)state;
  char err[512], path[600];
  assert_int_equal(px_models_add(g_home, "bad name", g_model, g_tok, NULL, NULL,
                                 err, sizeof err),
                   PX_EINVAL);
  assert_non_null(strstr(err, "bad name"));
  /* a tokenizer given as the model */
  assert_true(px_models_add(g_home, "x", g_tok, g_tok, NULL, NULL, err,
                            sizeof err) < 0);
  assert_non_null(strstr(err, "cannot load model"));
  snprintf(path, sizeof path, "%s/t.json", g_dir);
  write_text(path, "{\"chat_template\":{\"prefix\":\"a\",\"extra\":\"b\"}}");
  assert_int_equal(
      px_models_add(g_home, "x", g_model, g_tok, path, NULL, err, sizeof err),
      PX_EINVAL);
  write_text(path, "{\"chat_template\":{\"prefix\":3}}");
  assert_true(px_models_add(g_home, "x", g_model, g_tok, path, NULL, err,
                            sizeof err) < 0);
  px_models_t m;
  assert_int_equal(px_models_load(g_home, &m, err, sizeof err), 0);
  assert_null(px_models_find(&m, "x")); /* nothing was added */
  px_models_release(&m);
  /* damaged registries are refused with the file named */
  char home2[400], reg[500];
  snprintf(home2, sizeof home2, "%s/home2", g_dir);
  assert_int_equal(px_mkdir_p(home2, 0700), 0);
  snprintf(reg, sizeof reg, "%s/%s", home2, PX_MODELS_FILE);
  static const char *const bad[] = {
      "{\"models\":[{\"name\":\"a\"}]}",
      "{\"models\":[],\"more\":1}",
      "{\"models\":[{\"name\":\"a\",\"model\":\"zz\",\"model_size\":1,"
      "\"tokenizer\":\"zz\",\"tokenizer_size\":1,\"vocab_size\":1,"
      "\"seq_len\":1}]}",
      "[1,2]",
      "{\"models\":",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text(reg, bad[i]);
    assert_true(px_models_load(home2, &m, err, sizeof err) < 0);
    assert_non_null(strstr(err, PX_MODELS_FILE));
    assert_int_equal(m.n, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_and_load),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
