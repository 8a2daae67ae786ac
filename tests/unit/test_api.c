/*
 * test_api.c — the gateway (src/api) in-process: request decoders, query
 * strings, API keys, and the server itself on a real socket with the real
 * local backend (a small llama2.c model written by the test), so the
 * thread handling — connection threads, stream producers, cancellation,
 * shutdown with a stream open — also runs under ASan and TSan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/api.h"
#include "plexus/crypto.h"
#include "gateway/http_client.h"
#include "gateway/tiny_model.h"

/* ---- request decoding -----------------------------------------------------
 */

static int decode(px_api_kind_t kind, const char *body, px_api_request_t *r,
                  char *err, size_t cap, px_arena_t *arena) {
  return px_api_decode_request(arena, kind, body, strlen(body), r, err, cap);
}

static void test_decode_valid(void **state) {
  (void)state;
  px_arena_t a;
  px_arena_init(&a, 4096, 1 << 20);
  px_api_request_t *r = malloc(sizeof *r);
  char err[256];
  assert_int_equal(
      decode(PX_API_COMPLETION,
             "{\"model\":\"m\",\"prompt\":\"hi\",\"max_tokens\":7,"
             "\"temperature\":0.5,\"top_p\":0.25,\"seed\":-3,\"stop\":[\"a\","
             "\"bc\"],\"stream\":true,\"stream_options\":{\"include_usage\":"
             "true},\"n\":1,\"user\":\"u\"}",
             r, err, sizeof err, &a),
      0);
  assert_string_equal(r->model, "m");
  assert_string_equal(r->prompt, "hi");
  assert_int_equal(r->max_tokens, 7);
  assert_true(r->temperature == 0.5 && r->top_p == 0.25);
  assert_true(r->has_seed && r->seed == (uint64_t)-3);
  assert_int_equal(r->n_stop, 2);
  assert_string_equal(r->stop[1], "bc");
  assert_true(r->stream && r->include_usage);
  /* defaults */
  assert_int_equal(decode(PX_API_COMPLETION,
                          "{\"model\":\"m\",\"prompt\":[\"x\"],\"stop\":\"s\"}",
                          r, err, sizeof err, &a),
                   0);
  assert_int_equal(r->max_tokens, -1);
  assert_true(r->temperature == 1.0 && r->top_p == 1.0 && !r->has_seed);
  assert_string_equal(r->prompt, "x");
  assert_int_equal(r->n_stop, 1);
  assert_false(r->stream);
  assert_int_equal(
      decode(PX_API_CHAT,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\","
             "\"content\":\"be nice\"},{\"role\":\"user\",\"content\":\"hi\","
             "\"name\":\"bo\"}],\"max_completion_tokens\":3,\"temperature\":"
             "null}",
             r, err, sizeof err, &a),
      0);
  assert_int_equal(r->n_messages, 2);
  assert_string_equal(r->messages[0].role, "system");
  assert_string_equal(r->messages[1].content, "hi");
  assert_int_equal(r->max_tokens, 3);
  free(r);
  px_arena_release(&a);
}

static void test_decode_refusals(void **state) {
  (void)state;
  static const struct {
    px_api_kind_t kind;
    const char *body;
    int rc;
    const char *mention;
  } cases[] = {
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":", PX_EDECODE, "JSON"},
      {PX_API_COMPLETION, "[1]", PX_EINVAL, "object"},
      {PX_API_COMPLETION, "{\"prompt\":\"x\"}", PX_EINVAL, "model"},
      {PX_API_COMPLETION, "{\"model\":\"m\"}", PX_EINVAL, "prompt"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"logprobs\":1}",
       PX_EINVAL, "logprobs"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"messages\":[]}",
       PX_EINVAL, "messages"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}",
       PX_EINVAL, "prompt"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"n\":2}",
       PX_EINVAL, "'n'"},
      {PX_API_COMPLETION,
       "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":2.5}", PX_EINVAL,
       "temperature"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":-0.1}",
       PX_EINVAL, "top_p"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}",
       PX_EINVAL, "max_tokens"},
      {PX_API_COMPLETION,
       "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1.5}", PX_EINVAL,
       "max_tokens"},
      {PX_API_COMPLETION,
       "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\","
       "\"e\"]}",
       PX_EINVAL, "stop"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":\"\"}",
       PX_EINVAL, "stop"},
      {PX_API_COMPLETION,
       "{\"model\":\"m\",\"prompt\":\"x\",\"stream_options\":{"
       "\"include_usage\":true}}",
       PX_EINVAL, "stream"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":1}",
       PX_EINVAL, "stream"},
      {PX_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}",
       PX_EINVAL, "prompt"},
      {PX_API_CHAT, "{\"model\":\"m\",\"messages\":[]}", PX_EINVAL, "messages"},
      {PX_API_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
       PX_EINVAL, "role"},
      {PX_API_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{"
       "\"type\":\"text\",\"text\":\"x\"}]}]}",
       PX_EINVAL, "content"},
      {PX_API_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
       "\"tool_calls\":[]}]}",
       PX_EINVAL, "tool_calls"},
      {PX_API_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
       "\"max_tokens\":1,\"max_completion_tokens\":1}",
       PX_EINVAL, "max_completion_tokens"},
      {PX_API_CHAT,
       "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
       "\"tools\":[]}",
       PX_EINVAL, "tools"},
      {PX_API_CHAT, "{\"model\":\"m\",\"model\":\"n\",\"messages\":[]}",
       PX_EDECODE, "JSON"},
  };
  px_arena_t a;
  px_arena_init(&a, 4096, 1 << 20);
  px_api_request_t *r = malloc(sizeof *r);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char err[512] = "";
    int rc = decode(cases[i].kind, cases[i].body, r, err, sizeof err, &a);
    if (rc != cases[i].rc || !strstr(err, cases[i].mention))
      fail_msg("case %zu (%s): rc %d, message '%s'", i, cases[i].body, rc, err);
  }
  free(r);
  px_arena_release(&a);
}

static void test_query(void **state) {
  (void)state;
  char v[16];
  assert_int_equal(px_api_query_get("a=1&from=20&limit=5", "from", v, sizeof v),
                   0);
  assert_string_equal(v, "20");
  assert_int_equal(px_api_query_get("x=%41%62+c&y", "x", v, sizeof v), 0);
  assert_string_equal(v, "Ab c");
  assert_int_equal(px_api_query_get("x=%41%62+c&y", "y", v, sizeof v), 0);
  assert_string_equal(v, "");
  assert_int_equal(px_api_query_get("a%20b=1", "a b", v, sizeof v), 0);
  assert_string_equal(v, "1");
  assert_int_equal(px_api_query_get("", "a", v, sizeof v), PX_ENOTFOUND);
  assert_int_equal(px_api_query_get("ab=1", "a", v, sizeof v), PX_ENOTFOUND);
  assert_int_equal(px_api_query_get("a=%4", "a", v, sizeof v), PX_EDECODE);
  assert_int_equal(px_api_query_get("a=%zz", "a", v, sizeof v), PX_EDECODE);
  assert_int_equal(px_api_query_get("a=%00", "a", v, sizeof v), PX_EDECODE);
  assert_int_equal(px_api_query_get("a=0123456789abcdefg", "a", v, sizeof v),
                   PX_ETOOBIG);
  uint64_t u;
  assert_int_equal(px_api_query_u64("limit=100", "limit", 100, &u), 0);
  assert_int_equal(u, 100);
  assert_int_equal(px_api_query_u64("limit=101", "limit", 100, &u), PX_ERANGE);
  assert_int_equal(px_api_query_u64("limit=-1", "limit", 100, &u), PX_EDECODE);
  assert_int_equal(px_api_query_u64("limit=1e2", "limit", 100, &u), PX_EDECODE);
  assert_int_equal(px_api_query_u64("limit=99999999999999999999999", "limit",
                                    UINT64_MAX, &u),
                   PX_ERANGE);
}

/* ---- keys ------------------------------------------------------------------
 */

static char *tmpdir_new(void) {
  char t[] = "/tmp/plexus-api-XXXXXX";
  char *d = mkdtemp(t);
  assert_non_null(d);
  return strdup(d);
}

static void rm_dir(const char *d) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  assert_int_equal(system(cmd), 0);
}

static void test_keys(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  px_api_keys_t *k = NULL;
  assert_int_equal(px_api_keys_load(dir, &k), PX_ENOENT);
  uint8_t w1[32], w2[32], got[32];
  memset(w1, 0x11, 32);
  memset(w2, 0x22, 32);
  char k1[PX_API_KEY_LEN + 1], k2[PX_API_KEY_LEN + 1];
  assert_int_equal(px_api_key_new(dir, w1, k1), 0);
  assert_int_equal(px_api_key_new(dir, w2, k2), 0);
  assert_int_equal(strlen(k1), PX_API_KEY_LEN);
  assert_memory_equal(k1, "pxk-", 4);
  assert_string_not_equal(k1, k2);
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, PX_API_KEYS_FILE);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  uint8_t *text;
  size_t n;
  assert_int_equal(px_file_read_all(path, 1 << 20, &text, &n), 0);
  assert_null(strstr((char *)text, k1 + 4)); /* only hashes are stored */
  px_free(text);
  assert_int_equal(px_api_keys_load(dir, &k), 0);
  assert_int_equal(px_api_keys_count(k), 2);
  assert_int_equal(px_api_keys_check(k, k1, strlen(k1), got), 0);
  assert_memory_equal(got, w1, 32);
  assert_int_equal(px_api_keys_check(k, k2, strlen(k2), got), 0);
  assert_memory_equal(got, w2, 32);
  char bad[PX_API_KEY_LEN + 1];
  memcpy(bad, k1, sizeof bad);
  bad[20] = bad[20] == '0' ? '1' : '0';
  assert_int_equal(px_api_keys_check(k, bad, strlen(bad), got), PX_EAUTH);
  assert_int_equal(px_api_keys_check(k, k1, strlen(k1) - 1, got), PX_EAUTH);
  assert_int_equal(px_api_keys_check(k, "", 0, got), PX_EAUTH);
  px_api_keys_free(k);
  /* a damaged file is refused, and not extended */
  FILE *f = fopen(path, "a");
  fputs("not a key line\n", f);
  fclose(f);
  assert_int_equal(px_api_keys_load(dir, &k), PX_EDECODE);
  assert_int_equal(px_api_key_new(dir, w1, k1), PX_EDECODE);
  rm_dir(dir);
  free(dir);
}

/* ---- the server ------------------------------------------------------------
 */

typedef struct {
  char *dir;
  px_api_backend_t *be;
  px_api_t *api;
  int port;
} srv_t;

static void srv_up(srv_t *s, unsigned max_streams) {
  memset(s, 0, sizeof *s);
  s->dir = tmpdir_new();
  char model[600], tok[600], err[512];
  snprintf(model, sizeof model, "%s/tiny.bin", s->dir);
  snprintf(tok, sizeof tok, "%s/tokenizer.bin", s->dir);
  assert_int_equal(tiny_write_model(model, 2048), 0);
  assert_int_equal(tiny_write_tokenizer(tok), 0);
  int rc = px_api_local_open(model, tok, "tiny", &s->be, err, sizeof err);
  if (rc) fail_msg("%s", err);
  px_api_config_t c = {.listen = "127.0.0.1:0",
                       .max_streams = max_streams,
                       .max_body = 4096,
                       .backend = s->be};
  assert_int_equal(px_api_open(&c, &s->api, err, sizeof err), 0);
  rc = px_api_start(s->api, err, sizeof err);
  if (rc) fail_msg("%s", err);
  const char *addr = px_api_address(s->api);
  s->port = atoi(strrchr(addr, ':') + 1);
  assert_true(s->port > 0);
}

static void srv_down(srv_t *s) {
  px_api_free(s->api);
  px_api_local_free(s->be);
  rm_dir(s->dir);
  free(s->dir);
}

static long long metric(int port, const char *name) {
  resp_t r;
  if (http(port, "GET", "/metrics", NULL, NULL, &r) || r.status != 200) {
    resp_free(&r);
    return -1;
  }
  char pat[128];
  snprintf(pat, sizeof pat, "\n%s ", name);
  const char *p = strstr(r.body, pat);
  long long v = p ? atoll(p + strlen(pat)) : -1;
  resp_free(&r);
  return v;
}

/* Concatenated "text" of a completion SSE body. */
static void sse_concat(const char *body, char *out, size_t cap) {
  size_t n = 0;
  out[0] = 0;
  int done = 0;
  for (const char *p = body; *p;) {
    const char *end = strstr(p, "\n\n");
    assert_non_null(end);
    assert_memory_equal(p, "data: ", 6);
    if (!strncmp(p + 6, "[DONE]", 6)) {
      done = 1;
    } else {
      px_arena_t a;
      px_arena_init(&a, 4096, 1 << 20);
      px_json_t *v;
      assert_int_equal(
          px_json_parse(&a, p + 6, (size_t)(end - p - 6), NULL, &v, NULL), 0);
      const char *t;
      if (px_json_get_str(px_json_at(px_json_get(v, "choices"), 0), "text",
                          &t) == 0) {
        size_t l = strlen(t);
        assert_true(n + l < cap);
        memcpy(out + n, t, l + 1);
        n += l;
      }
      px_arena_release(&a);
    }
    p = end + 2;
  }
  assert_true(done);
}

static void test_server(void **state) {
  (void)state;
  srv_t s;
  srv_up(&s, 1);
  resp_t r;
  /* non-streamed vs streamed */
  const char *b1 = "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":30,"
                   "\"temperature\":0.8,\"seed\":5}";
  const char *b2 = "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":30,"
                   "\"temperature\":0.8,\"seed\":5,\"stream\":true}";
  assert_int_equal(http(s.port, "POST", "/v1/completions", NULL, b1, &r), 0);
  assert_int_equal(r.status, 200);
  px_arena_t a;
  px_arena_init(&a, 4096, 1 << 20);
  px_json_t *v;
  assert_int_equal(px_json_parse(&a, r.body, r.len, NULL, &v, NULL), 0);
  const char *text;
  assert_int_equal(
      px_json_get_str(px_json_at(px_json_get(v, "choices"), 0), "text", &text),
      0);
  resp_t r2;
  assert_int_equal(http(s.port, "POST", "/v1/completions", NULL, b2, &r2), 0);
  assert_int_equal(r2.status, 200);
  char streamed[8192];
  sse_concat(r2.body, streamed, sizeof streamed);
  assert_string_equal(streamed, text);
  px_arena_release(&a);
  resp_free(&r);
  resp_free(&r2);
  /* over-size body and an unknown route */
  char big[6000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  assert_int_equal(http(s.port, "POST", "/v1/completions", NULL, big, &r), 0);
  assert_int_equal(r.status, 413);
  resp_free(&r);
  assert_int_equal(http(s.port, "GET", "/chain/status", NULL, NULL, &r), 0);
  assert_int_equal(r.status, 404); /* no node role here */
  resp_free(&r);
  /* a stream the client stops reading: over the cap, then cancelled */
  const char *b3 = "{\"model\":\"tiny\",\"prompt\":\"the\",\"temperature\":0,"
                   "\"stream\":true}";
  int c = connect_to(s.port, 4096);
  assert_true(c >= 0);
  assert_int_equal(
      send_request(c, "POST", "/v1/completions", NULL, b3, strlen(b3), 1), 0);
  char buf[64];
  assert_true(recv(c, buf, sizeof buf, 0) > 0);
  assert_int_equal(metric(s.port, "plexus_api_streams_active"), 1);
  assert_int_equal(http(s.port, "POST", "/v1/completions", NULL, b3, &r), 0);
  assert_int_equal(r.status, 429);
  resp_free(&r);
  close(c);
  for (int i = 0; i < 500 && metric(s.port, "plexus_api_streams_active"); i++)
    usleep(10000);
  assert_int_equal(metric(s.port, "plexus_api_streams_active"), 0);
  assert_int_equal(metric(s.port, "plexus_api_streams_cancelled_total"), 1);
  /* stopping with a stream open joins everything promptly */
  c = connect_to(s.port, 4096);
  assert_int_equal(
      send_request(c, "POST", "/v1/completions", NULL, b3, strlen(b3), 1), 0);
  assert_true(recv(c, buf, sizeof buf, 0) > 0);
  uint64_t t0 = px_time_mono_ms();
  px_api_stop(s.api);
  assert_true(px_time_mono_ms() - t0 < 5000);
  close(c);
  srv_down(&s);
}

int main(void) {
  if (px_crypto_init()) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_valid),
      cmocka_unit_test(test_decode_refusals),
      cmocka_unit_test(test_query),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
