/*
 * test_gateway.c — the HTTP gateway on real processes and real sockets.
 *
 * Part 1, `plexus serve` (local OpenAI-compatible server): the test writes a
 * small seeded llama2.c model and tokenizer, makes an API key with `plexus
 * gateway key new`, starts `plexus serve --max-streams 1`, and checks with
 * a plain HTTP/1.1 client:
 *  - GET /v1/models lists the model;
 *  - completions and chat completions, non-streamed and streamed (SSE,
 *    ending with [DONE]) with the same seed, agree byte for byte, and usage
 *    counts add up; at temperature 0 the text is exactly what `plexus
 *    generate` prints for the same prompt;
 *  - a stop string ends the text before it, streamed or not;
 *  - every error has its status and an OpenAI-shaped body: missing key and
 *    wrong key (401), malformed JSON and an unsupported field (400),
 *    unknown model and unknown route (404), over-size body (413), a second
 *    concurrent stream over the cap (429);
 *  - a client that disconnects mid-stream stops generation: the server's
 *    token counter stays far below what an uninterrupted run produces and
 *    the stream is counted as cancelled.
 * Part 2, a node with the gateway role (`plexus node --http`): /health,
 * /metrics, /chain/status, /chain/blocks (paginated), /chain/blocks/{h},
 * /chain/tx/{hash}, /chain/accounts/{id}?prove=1, /providers, /upow and the
 * /v1/jobs routes (authorised by key) answer with the node's data.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/json.h"
#include "gateway/http_client.h"
#include "gateway/tiny_model.h"
#include "harness.h"

/* The model (tests/gateway/tiny_model.h) with a long context, so that an
 * uninterrupted generation is long next to what backpressure lets run
 * ahead of a client that stopped reading. */
#define SEQ 2048

typedef struct {
  char *dir;
  char model[700], tok[700];
  char key[128];
  pid_t serve_pid;
  int serve_port;
  char serve_log[700];
  pid_t node_pid;
  int node_port;
  char node_home[700], node_log[700];
} gw_t;

static gw_t g;

/* ---- JSON checks ----------------------------------------------------------
 */

typedef struct {
  px_arena_t arena;
  px_json_t *root;
} doc_t;

static const px_json_t *parse(doc_t *d, const char *text) {
  px_arena_init(&d->arena, 4096, 64u << 20);
  d->root = NULL;
  if (px_json_parse(&d->arena, text, strlen(text), NULL, &d->root, NULL))
    fail_msg("not JSON: %.300s", text);
  return d->root;
}

static void doc_free(doc_t *d) { px_arena_release(&d->arena); }

static const px_json_t *path(const px_json_t *v, const char *p) {
  char key[64];
  while (v && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    snprintf(key, sizeof key, "%.*s", (int)n, p);
    if (v->type == PX_JSON_ARRAY)
      v = px_json_at(v, (size_t)atoi(key));
    else
      v = px_json_get(v, key);
    p += n + (dot ? 1 : 0);
  }
  return v;
}

static long long jint(const px_json_t *v, const char *p) {
  int64_t x;
  if (px_json_as_i64(path(v, p), &x)) fail_msg("no integer at %s", p);
  return x;
}

static const char *jstr(const px_json_t *v, const char *p) {
  const char *s;
  if (px_json_as_str(path(v, p), &s)) fail_msg("no string at %s", p);
  return s;
}

/* status and an OpenAI-shaped error body with this code */
static void expect_error(const resp_t *r, int status, const char *code) {
  if (r->status != status)
    fail_msg("expected HTTP %d, got %d: %s", status, r->status, r->body);
  doc_t d;
  const px_json_t *e = path(parse(&d, r->body), "error");
  assert_non_null(e);
  assert_true(strlen(jstr(e, "message")) > 10);
  assert_true(strlen(jstr(e, "type")) > 0);
  assert_string_equal(jstr(e, "code"), code);
  doc_free(&d);
}

/* Concatenate the text of an SSE stream's chunks; checks the framing and
 * [DONE]; returns heap text, *finish the last finish_reason. */
static char *sse_text(const char *body, int chat, char *finish, size_t fcap,
                      long long *completion_tokens) {
  size_t cap = strlen(body) + 1, n = 0;
  char *out = malloc(cap);
  out[0] = 0;
  finish[0] = 0;
  int done = 0, events = 0;
  const char *p = body;
  while (*p) {
    const char *end = strstr(p, "\n\n");
    assert_non_null(end);
    assert_memory_equal(p, "data: ", 6);
    assert_false(done); /* nothing after [DONE] */
    char *ev = strndup(p + 6, (size_t)(end - p - 6));
    if (!strcmp(ev, "[DONE]")) {
      done = 1;
    } else {
      events++;
      doc_t d;
      const px_json_t *c = parse(&d, ev);
      assert_string_equal(jstr(c, "object"),
                          chat ? "chat.completion.chunk" : "text_completion");
      const px_json_t *ch = path(c, "choices.0");
      if (!ch) { /* the usage chunk */
        *completion_tokens = jint(c, "usage.completion_tokens");
      } else {
        const px_json_t *t = path(ch, chat ? "delta.content" : "text");
        if (t) {
          assert_int_equal(t->type, PX_JSON_STRING);
          memcpy(out + n, t->str, t->len);
          n += t->len;
          out[n] = 0;
        }
        const px_json_t *f = px_json_get(ch, "finish_reason");
        if (f && f->type == PX_JSON_STRING)
          snprintf(finish, fcap, "%s", f->str);
      }
      doc_free(&d);
    }
    free(ev);
    p = end + 2;
  }
  assert_true(done);
  assert_true(events >= 2);
  return out;
}

static char *body_fmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *body_fmt(const char *fmt, ...) {
  char *s = malloc(8192);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s, 8192, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- metrics ---------------------------------------------------------------
 */

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

/* ---- setup --------------------------------------------------------------- */

static int parse_port(const char *log, const char *marker) {
  char *s = h_read_file(log);
  if (!s) return 0;
  const char *p = strstr(s, marker);
  int port = 0;
  if (p) {
    p = strchr(p + strlen(marker), ':');
    if (p) port = atoi(p + 1);
  }
  free(s);
  return port;
}

static int serve_up(void *ud) {
  (void)ud;
  return (g.serve_port = parse_port(g.serve_log, "on http://")) > 0;
}

static void dump(const char *path_) {
  char *s = h_read_file(path_);
  if (s) {
    size_t n = strlen(s);
    print_message("---- tail of %s ----\n%s\n", path_,
                  s + (n > 3000 ? n - 3000 : 0));
  }
  free(s);
}

static int setup(void **state) {
  (void)state;
  memset(&g, 0, sizeof g);
  if (!(g.dir = h_tmpdir("gateway"))) return -1;
  h_path(g.model, sizeof g.model, g.dir, "tiny.bin");
  h_path(g.tok, sizeof g.tok, g.dir, "tokenizer.bin");
  h_path(g.serve_log, sizeof g.serve_log, g.dir, "serve.log");
  h_path(g.node_home, sizeof g.node_home, g.dir, "node");
  h_path(g.node_log, sizeof g.node_log, g.dir, "node.log");
  if (tiny_write_model(g.model, SEQ) || tiny_write_tokenizer(g.tok)) return -1;
  /* a key for the serve home (it needs no node: a wallet key will do) */
  char home[700];
  h_path(home, sizeof home, g.dir, "serve-home");
  h_result_t r;
  int rc = h_runl(&r, 30000, "wallet", "new", "--home", home, NULL);
  if (rc) print_message("wallet new: %s%s\n", r.out, r.err);
  h_result_free(&r);
  if (rc) return -1;
  rc = h_runl(&r, 30000, "gateway", "key", "new", "--home", home, NULL);
  if (!rc)
    snprintf(g.key, sizeof g.key, "%.*s", (int)strcspn(r.out, "\n"), r.out);
  if (rc) print_message("gateway key new: %s%s\n", r.out, r.err);
  h_result_free(&r);
  if (rc || strncmp(g.key, "pxk-", 4)) return -1;
  const char *argv[] = {
      "serve",  "--model",     g.model,  "--name", "tiny",
      "--http", "127.0.0.1:0", "--home", home,     "--max-streams",
      "1",      "--max-body",  "65536",  NULL};
  g.serve_pid = h_spawn(g.serve_log, argv);
  if (g.serve_pid <= 0 || !h_wait_until(serve_up, NULL, 30000, 50)) {
    dump(g.serve_log);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  pid_t pids[2] = {g.serve_pid, g.node_pid};
  for (int i = 0; i < 2; i++)
    if (pids[i] > 0 && h_pid_alive(pids[i])) {
      h_kill(pids[i], SIGTERM);
      if (!h_wait_gone(pids[i], 10000)) {
        h_kill(pids[i], SIGKILL);
        h_wait_gone(pids[i], 2000);
      }
    }
  if (g.dir) {
    h_rmrf(g.dir);
    free(g.dir);
  }
  return 0;
}

/* ---- part 1: plexus serve ------------------------------------------------ */

static void test_models(void **state) {
  (void)state;
  resp_t r;
  assert_int_equal(http(g.serve_port, "GET", "/v1/models", g.key, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  doc_t d;
  const px_json_t *v = parse(&d, r.body);
  assert_string_equal(jstr(v, "object"), "list");
  assert_string_equal(jstr(v, "data.0.id"), "tiny");
  assert_string_equal(jstr(v, "data.0.object"), "model");
  assert_null(path(v, "data.1"));
  doc_free(&d);
  resp_free(&r);
}

/* Non-streamed and streamed with the same seed give the same text. */
static void same_both_ways(int chat, const char *fields) {
  const char *ep = chat ? "/v1/chat/completions" : "/v1/completions";
  char *b1 = body_fmt("{\"model\":\"tiny\",%s,%s}", fields,
                      chat ? "\"messages\":[{\"role\":\"system\",\"content\":"
                             "\"be brief\"},{\"role\":\"user\",\"content\":"
                             "\"tell the tale\"}]"
                           : "\"prompt\":\"the tale and\"");
  char *b2 = body_fmt("{\"model\":\"tiny\",%s,%s,\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true}}",
                      fields,
                      chat ? "\"messages\":[{\"role\":\"system\",\"content\":"
                             "\"be brief\"},{\"role\":\"user\",\"content\":"
                             "\"tell the tale\"}]"
                           : "\"prompt\":\"the tale and\"");
  resp_t r1, r2;
  assert_int_equal(http(g.serve_port, "POST", ep, g.key, b1, &r1), 0);
  if (r1.status != 200) fail_msg("%d %s", r1.status, r1.body);
  assert_int_equal(http(g.serve_port, "POST", ep, g.key, b2, &r2), 0);
  if (r2.status != 200) fail_msg("%d %s", r2.status, r2.body);
  doc_t d;
  const px_json_t *v = parse(&d, r1.body);
  assert_string_equal(jstr(v, "object"),
                      chat ? "chat.completion" : "text_completion");
  const char *text =
      jstr(v, chat ? "choices.0.message.content" : "choices.0.text");
  if (chat) assert_string_equal(jstr(v, "choices.0.message.role"), "assistant");
  long long pt = jint(v, "usage.prompt_tokens"),
            ct = jint(v, "usage.completion_tokens");
  assert_true(pt > 1 && ct >= 1);
  assert_int_equal(jint(v, "usage.total_tokens"), pt + ct);
  char finish[32];
  long long sct = -1;
  char *st = sse_text(r2.body, chat, finish, sizeof finish, &sct);
  assert_string_equal(st, text);
  assert_string_equal(finish, jstr(v, "choices.0.finish_reason"));
  assert_int_equal(sct, ct);
  assert_true(strlen(text) > 0);
  free(st);
  doc_free(&d);
  resp_free(&r1);
  resp_free(&r2);
  free(b1);
  free(b2);
}

static void test_stream_matches(void **state) {
  (void)state;
  same_both_ways(0, "\"max_tokens\":40,\"temperature\":0.9,\"top_p\":0.9,"
                    "\"seed\":7");
  same_both_ways(1, "\"max_tokens\":40,\"temperature\":1.0,\"seed\":11");
  same_both_ways(0, "\"max_tokens\":25,\"temperature\":0");
}

/* temperature 0: exactly `plexus generate`'s text for the same prompt. */
static void test_matches_generate(void **state) {
  (void)state;
  const char *prompt = "the tale and";
  resp_t r;
  char *b = body_fmt("{\"model\":\"tiny\",\"prompt\":\"%s\",\"max_tokens\":30,"
                     "\"temperature\":0}",
                     prompt);
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key, b, &r),
                   0);
  assert_int_equal(r.status, 200);
  doc_t d;
  const px_json_t *v = parse(&d, r.body);
  long long pt = jint(v, "usage.prompt_tokens");
  assert_int_equal(jint(v, "usage.completion_tokens"), 30);
  assert_string_equal(jstr(v, "choices.0.finish_reason"), "length");
  char steps[32];
  snprintf(steps, sizeof steps, "%lld", pt - 1 + 30);
  h_result_t gr;
  int rc =
      h_runl(&gr, 60000, "generate", "--model", g.model, "--tokenizer", g.tok,
             "--prompt", prompt, "--steps", steps, "--temperature", "0", NULL);
  assert_int_equal(rc, 0);
  char *want = body_fmt("%s%s\n", prompt, jstr(v, "choices.0.text"));
  assert_string_equal(gr.out, want);
  free(want);
  h_result_free(&gr);
  doc_free(&d);
  resp_free(&r);
  free(b);
}

static void test_stop_string(void **state) {
  (void)state;
  /* Learn the text, then stop on a piece of its middle. */
  resp_t r;
  const char *base =
      "{\"model\":\"tiny\",\"prompt\":\"and the\",\"max_tokens\":40,"
      "\"temperature\":0";
  char *b = body_fmt("%s}", base);
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key, b, &r),
                   0);
  doc_t d;
  char full[4096];
  snprintf(full, sizeof full, "%s", jstr(parse(&d, r.body), "choices.0.text"));
  doc_free(&d);
  resp_free(&r);
  free(b);
  size_t n = strlen(full);
  assert_true(n > 12);
  char stop[4];
  memcpy(stop, full + n / 2, 3);
  stop[3] = 0;
  if (strchr(stop, '"') || strchr(stop, '\\')) skip(); /* keep JSON simple */
  size_t cut = (size_t)(strstr(full, stop) - full);
  for (int stream = 0; stream < 2; stream++) {
    b = body_fmt("%s,\"stop\":[\"%s\"]%s}", base, stop,
                 stream ? ",\"stream\":true" : "");
    assert_int_equal(
        http(g.serve_port, "POST", "/v1/completions", g.key, b, &r), 0);
    assert_int_equal(r.status, 200);
    char finish[32];
    long long ct;
    char *text = stream ? sse_text(r.body, 0, finish, sizeof finish, &ct)
                        : strdup(jstr(parse(&d, r.body), "choices.0.text"));
    if (!stream) {
      snprintf(finish, sizeof finish, "%s",
               jstr(d.root, "choices.0.finish_reason"));
      doc_free(&d);
    }
    assert_int_equal(strlen(text), cut);
    assert_memory_equal(text, full, cut);
    assert_string_equal(finish, "stop");
    free(text);
    resp_free(&r);
    free(b);
  }
}

static void test_errors(void **state) {
  (void)state;
  resp_t r;
  const char *ok = "{\"model\":\"tiny\",\"prompt\":\"hi\",\"max_tokens\":2}";
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", NULL, ok, &r),
                   0);
  expect_error(&r, 401, "missing_api_key");
  resp_free(&r);
  char wrong[128];
  snprintf(wrong, sizeof wrong, "%s", g.key);
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", wrong, ok, &r),
                   0);
  expect_error(&r, 401, "invalid_api_key");
  resp_free(&r);
  assert_int_equal(
      http(g.serve_port, "GET", "/v1/models", "nonsense", NULL, &r), 0);
  expect_error(&r, 401, "invalid_api_key");
  resp_free(&r);
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"tiny\",\"prompt\":", &r),
                   0);
  expect_error(&r, 400, "invalid_json");
  resp_free(&r);
  assert_int_equal(http(g.serve_port, "POST", "/v1/chat/completions", g.key,
                        "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}],\"logprobs\":true}",
                        &r),
                   0);
  expect_error(&r, 400, "invalid_request");
  assert_non_null(strstr(r.body, "logprobs"));
  resp_free(&r);
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"tiny\",\"prompt\":\"x\",\"n\":2}", &r),
                   0);
  expect_error(&r, 400, "invalid_request");
  resp_free(&r);
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"gpt-9\",\"prompt\":\"x\"}", &r),
                   0);
  expect_error(&r, 404, "model_not_found");
  resp_free(&r);
  assert_int_equal(http(g.serve_port, "GET", "/v1/nothing", g.key, NULL, &r),
                   0);
  expect_error(&r, 404, "unknown_route");
  resp_free(&r);
  assert_int_equal(
      http(g.serve_port, "GET", "/v1/completions", g.key, NULL, &r), 0);
  expect_error(&r, 405, "method_not_allowed");
  resp_free(&r);
  /* over-size: refused from the Content-Length alone */
  size_t big = 200000;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  huge[big] = 0;
  memcpy(huge, "{\"model\":\"tiny\",\"prompt\":\"", 26);
  int s = connect_to(g.serve_port, 0);
  assert_true(s >= 0);
  char head[512];
  int hn = snprintf(head, sizeof head,
                    "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: "
                    "application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    g.key, big);
  assert_int_equal(send_all(s, head, (size_t)hn), 0);
  send_all(s, huge, 8192); /* part of it; the answer comes anyway */
  assert_int_equal(read_response(s, &r), 0);
  close(s);
  expect_error(&r, 413, "request_too_large");
  resp_free(&r);
  free(huge);
  /* the server is still fine */
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key, ok, &r),
                   0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

/* Too many streams (the cap is 1) and a client hanging up mid-stream. */
static void test_stream_cap_and_disconnect(void **state) {
  (void)state;
  const char *fields =
      "\"model\":\"tiny\",\"prompt\":\"and\",\"temperature\":0,\"seed\":3";
  /* an uninterrupted run: the whole context */
  char *b = body_fmt("{%s}", fields);
  resp_t r;
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key, b, &r),
                   0);
  assert_int_equal(r.status, 200);
  doc_t d;
  const px_json_t *v = parse(&d, r.body);
  long long full = jint(v, "usage.completion_tokens");
  assert_string_equal(jstr(v, "choices.0.finish_reason"), "length");
  assert_true(full > 1500);
  doc_free(&d);
  resp_free(&r);
  free(b);
  long long tok0 = metric(g.serve_port, "plexus_api_tokens_generated_total");
  long long can0 = metric(g.serve_port, "plexus_api_streams_cancelled_total");
  assert_true(tok0 >= full && can0 >= 0);
  /* a stream whose client reads one event and then stops reading */
  b = body_fmt("{%s,\"stream\":true}", fields);
  int s = connect_to(g.serve_port, 4096);
  assert_true(s >= 0);
  assert_int_equal(
      send_request(s, "POST", "/v1/completions", g.key, b, strlen(b), 1), 0);
  char buf[512];
  ssize_t got = recv(s, buf, sizeof buf - 1, 0);
  assert_true(got > 12);
  buf[got] = 0;
  assert_memory_equal(buf, "HTTP/1.1 200", 12);
  assert_int_equal(metric(g.serve_port, "plexus_api_streams_active"), 1);
  /* a second stream is over the cap */
  assert_int_equal(http(g.serve_port, "POST", "/v1/completions", g.key, b, &r),
                   0);
  expect_error(&r, 429, "too_many_streams");
  resp_free(&r);
  /* The client reads nothing more: generation must stall on backpressure
   * rather than run to the end of the context. */
  h_sleep_ms(300);
  assert_int_equal(metric(g.serve_port, "plexus_api_streams_active"), 1);
  /* hang up */
  close(s);
  uint64_t t0 = h_now_ms();
  while (metric(g.serve_port, "plexus_api_streams_active") != 0 &&
         h_now_ms() - t0 < 20000)
    h_sleep_ms(20);
  assert_int_equal(metric(g.serve_port, "plexus_api_streams_active"), 0);
  long long tok1 = metric(g.serve_port, "plexus_api_tokens_generated_total");
  assert_int_equal(metric(g.serve_port, "plexus_api_streams_cancelled_total"),
                   can0 + 1);
  print_message("stream cut after %lld of %lld tokens\n", tok1 - tok0, full);
  assert_true(tok1 - tok0 >= 1);
  assert_true(tok1 - tok0 < full / 2);
  char *log = h_read_file(g.serve_log);
  assert_non_null(strstr(log, "cancelled by the client"));
  free(log);
  free(b);
}

/* ---- part 2: a node with the gateway role -------------------------------- */

static int node_height(void *ud) {
  long long want = *(long long *)ud;
  resp_t r;
  if (http(g.node_port, "GET", "/chain/status", NULL, NULL, &r) ||
      r.status != 200) {
    resp_free(&r);
    return 0;
  }
  doc_t d;
  long long h = jint(parse(&d, r.body), "chain.height");
  doc_free(&d);
  resp_free(&r);
  return h >= want;
}

static void test_node_gateway(void **state) {
  (void)state;
  h_result_t hr;
  int rc = h_runl(&hr, 60000, "init", "--home", g.node_home, NULL);
  if (rc) print_message("%s%s", hr.out, hr.err);
  h_result_free(&hr);
  assert_int_equal(rc, 0);
  rc = h_runl(&hr, 30000, "gateway", "key", "new", "--home", g.node_home, NULL);
  assert_int_equal(rc, 0);
  char key[128];
  snprintf(key, sizeof key, "%.*s", (int)strcspn(hr.out, "\n"), hr.out);
  h_result_free(&hr);
  int p2p = free_port();
  g.node_port = free_port();
  assert_true(p2p > 0 && g.node_port > 0 && p2p != g.node_port);
  char listen[64], httpa[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", p2p);
  snprintf(httpa, sizeof httpa, "127.0.0.1:%d", g.node_port);
  const char *argv[] = {"node", "--home", g.node_home, "--p2p.listen",
                        listen, "--http", httpa,       NULL};
  g.node_pid = h_spawn(g.node_log, argv);
  assert_true(g.node_pid > 0);
  long long want = 3;
  if (!h_wait_until(node_height, &want, 60000, 100)) {
    dump(g.node_log);
    fail_msg("the node's /chain/status never reached height 3");
  }
  resp_t r;
  doc_t d;
  const px_json_t *v;
  /* health */
  assert_int_equal(http(g.node_port, "GET", "/health", NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  v = parse(&d, r.body);
  assert_true(jint(v, "height") >= 3);
  assert_int_equal(strlen(jstr(v, "node_id")), 64);
  doc_free(&d);
  resp_free(&r);
  /* blocks, paginated */
  assert_int_equal(
      http(g.node_port, "GET", "/chain/blocks?from=1&limit=2", NULL, NULL, &r),
      0);
  assert_int_equal(r.status, 200);
  v = parse(&d, r.body);
  assert_int_equal(jint(v, "blocks.0.height"), 1);
  assert_int_equal(jint(v, "blocks.1.height"), 2);
  assert_null(path(v, "blocks.2"));
  assert_int_equal(jint(v, "next"), 3);
  char h2[65];
  snprintf(h2, sizeof h2, "%s", jstr(v, "blocks.1.hash"));
  assert_string_equal(jstr(v, "blocks.1.prev_hash"), jstr(v, "blocks.0.hash"));
  doc_free(&d);
  resp_free(&r);
  assert_int_equal(http(g.node_port, "GET", "/chain/blocks/2", NULL, NULL, &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(parse(&d, r.body), "hash"), h2);
  doc_free(&d);
  resp_free(&r);
  assert_int_equal(
      http(g.node_port, "GET", "/chain/blocks/99999999", NULL, NULL, &r), 0);
  expect_error(&r, 404, "PX_ENOTFOUND");
  resp_free(&r);
  assert_int_equal(
      http(g.node_port, "GET", "/chain/blocks?from=1&bogus=2", NULL, NULL, &r),
      0);
  expect_error(&r, 400, "invalid_query");
  resp_free(&r);
  assert_int_equal(
      http(g.node_port, "GET", "/chain/blocks?limit=1000", NULL, NULL, &r), 0);
  expect_error(&r, 400, "invalid_query");
  resp_free(&r);
  /* accounts with a proof */
  px_keypair_t w;
  char wp[800], wh[65];
  h_path(wp, sizeof wp, g.node_home, "wallet.key");
  assert_int_equal(px_keyfile_read(wp, &w), 0);
  px_hex_encode(w.pk, 32, wh);
  px_key_wipe(&w);
  char url[256];
  snprintf(url, sizeof url, "/chain/accounts/%s?prove=1", wh);
  assert_int_equal(http(g.node_port, "GET", url, NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  v = parse(&d, r.body);
  assert_true(jint(v, "account.balance") > 0);
  assert_true(strlen(jstr(v, "proof")) > 64);
  doc_free(&d);
  resp_free(&r);
  assert_int_equal(
      http(g.node_port, "GET", "/chain/accounts/xyz", NULL, NULL, &r), 0);
  expect_error(&r, 404, "unknown_route");
  resp_free(&r);
  /* a transaction nobody sent */
  char zeros[65];
  memset(zeros, '0', 64);
  zeros[64] = 0;
  snprintf(url, sizeof url, "/chain/tx/%s", zeros);
  assert_int_equal(http(g.node_port, "GET", url, NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(parse(&d, r.body), "status"), "unknown");
  doc_free(&d);
  resp_free(&r);
  /* providers and upow */
  assert_int_equal(http(g.node_port, "GET", "/providers", NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(path(parse(&d, r.body), "providers"));
  doc_free(&d);
  resp_free(&r);
  assert_int_equal(http(g.node_port, "GET", "/upow", NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  doc_free(&d);
  parse(&d, r.body);
  doc_free(&d);
  resp_free(&r);
  /* metrics */
  assert_int_equal(http(g.node_port, "GET", "/metrics", NULL, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  const char *hl = strstr(r.body, "\nplexus_height ");
  assert_non_null(hl);
  assert_true(atoll(hl + 15) >= 3);
  assert_non_null(strstr(r.body, "# TYPE plexus_api_request_duration_seconds "
                                 "histogram"));
  assert_non_null(strstr(r.body, "\nplexus_peers 0\n"));
  assert_non_null(strstr(r.body, "plexus_jobs{state=\"running\"} 0\n"));
  assert_non_null(
      strstr(r.body, "plexus_audits_total{outcome=\"passed\"} 0\n"));
  assert_non_null(strstr(r.body, "plexus_providers{state=\"active\"} 0\n"));
  resp_free(&r);
  /* jobs: keyed */
  assert_int_equal(http(g.node_port, "GET", "/v1/jobs", NULL, NULL, &r), 0);
  expect_error(&r, 401, "missing_api_key");
  resp_free(&r);
  assert_int_equal(http(g.node_port, "GET", "/v1/jobs", key, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  v = parse(&d, r.body);
  assert_int_equal(path(v, "jobs")->type, PX_JSON_ARRAY);
  doc_free(&d);
  resp_free(&r);
  snprintf(url, sizeof url, "/v1/jobs/%s", zeros);
  assert_int_equal(http(g.node_port, "GET", url, key, NULL, &r), 0);
  expect_error(&r, 404, "PX_ENOTFOUND");
  resp_free(&r);
  assert_int_equal(
      http(g.node_port, "POST", "/v1/jobs", key, "{\"model\":", &r), 0);
  expect_error(&r, 400, "invalid_json");
  resp_free(&r);
  assert_int_equal(http(g.node_port, "POST", "/v1/jobs", key,
                        "{\"model\":\"m\",\"bogus\":1}", &r),
                   0);
  expect_error(&r, 400, "PX_EINVAL");
  resp_free(&r);
  /* no inference role on this node */
  assert_int_equal(http(g.node_port, "GET", "/v1/models", key, NULL, &r), 0);
  expect_error(&r, 404, "unknown_route");
  resp_free(&r);
  /* a clean stop with the gateway running */
  assert_int_equal(h_kill(g.node_pid, SIGTERM), 0);
  assert_true(h_wait_gone(g.node_pid, 15000));
  char *log = h_read_file(g.node_log);
  assert_non_null(strstr(log, "stopped cleanly"));
  free(log);
  g.node_pid = 0;
}

int main(void) {
  h_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_models),
      cmocka_unit_test(test_stream_matches),
      cmocka_unit_test(test_matches_generate),
      cmocka_unit_test(test_stop_string),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_stream_cap_and_disconnect),
      cmocka_unit_test(test_node_gateway),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
