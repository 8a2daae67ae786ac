/*
 * test_gateway_net.c — OpenAI requests served by the network: a gateway
 * node runs them as inference sessions on market providers (issue 7;
 * node/session_gateway.c, docs/api.md "Network inference").  Real
 * processes only.
 *
 * The devnet (`plexus devnet up --validators 1 --providers 4 --nodes 6
 * --fault stall`): node0 validates, node1 is the gateway, node2..node5
 * are registered providers, node5 runs the TEST-ONLY market.fault stall
 * (stops sending after 3 tokens and stays connected).  The test stops
 * node1, registers the tiny seeded model (tests/gateway/tiny_model.h) with
 * `plexus model add`, makes a key with `plexus gateway key new` and
 * restarts it as `plexus node --http ...`.  The reference is a local
 * `plexus serve` of the same files.  In order:
 *  1. GET /v1/models lists the model; every error answers with its status
 *     and an OpenAI-shaped body (401 missing / wrong key, 400 bad JSON and
 *     unsupported field, 404 unknown model and route, 405, 413);
 *  2. completions and chat completions, streamed and not, equal the local
 *     server's text, finish reason and usage for the same seed;
 *  3. the stalling provider is replaced mid-stream: requests run until the
 *     gateway has replaced one (round-robin reaches node5 within a few),
 *     and every text still equals the reference;
 *  4. too many streams (api.max_streams 2) is 429, and clients hanging up
 *     mid-stream stop the providers: far fewer tokens than an
 *     uninterrupted run arrive, and the receipts the gateway signed for
 *     them add up to at most price_per_token x (prompt + delivered); the
 *     providers' claims land on chain and never exceed the receipts;
 *  5. the gateway restarts (it resumes signing no lower than before); with
 *     api.audit 1 and node4 restarted with market.fault perturb,
 *     sessions are replayed by other providers, the liar's is caught, the
 *     SESSION_DISPUTE lands and node4 is slashed (stake down, a dispute
 *     lost) while the honest providers lose nothing;
 *  6. no node ever broke the supply invariant.
 * Teardown kills every process it started, by pid, even after a failure.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/base.h"
#include "plexus/json.h"
#include "plexus/model_io.h"
#include "gateway/http_client.h"
#include "gateway/tiny_model.h"
#include "harness.h"
#include "node/session_rt.h"

#define NODES 6
#define GW 1
#define LIAR 4
#define STALLER 5
#define SEQ 2048
#define UP_MS 240000

typedef struct {
  char *dir;
  char net[700];
  char node[NODES][720];
  char id[NODES][80];
  char model[700], tok[700];
  char key[128];
  pid_t gw_pid, serve_pid, liar_pid;
  int gw_port, serve_port;
  char gw_log[760], serve_log[700], liar_log[760];
  uint64_t ppt; /* price per token of the tiny model at price 1 */
} gn_t;

static gn_t g;

/* ---- JSON ------------------------------------------------------------- */

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

/* The text of an SSE stream (framing checked, [DONE] last). */
static char *sse_text(const char *body, int chat, char *finish, size_t fcap,
                      long long *completion_tokens) {
  size_t cap = strlen(body) + 1, n = 0;
  char *out = malloc(cap);
  out[0] = 0;
  finish[0] = 0;
  int done = 0;
  const char *p = body;
  while (*p) {
    const char *end = strstr(p, "\n\n");
    assert_non_null(end);
    assert_memory_equal(p, "data: ", 6);
    assert_false(done);
    char *ev = strndup(p + 6, (size_t)(end - p - 6));
    if (!strcmp(ev, "[DONE]")) {
      done = 1;
    } else {
      doc_t d;
      const px_json_t *c = parse(&d, ev);
      if (px_json_get(c, "error")) fail_msg("stream error: %s", ev);
      assert_string_equal(jstr(c, "object"),
                          chat ? "chat.completion.chunk" : "text_completion");
      const px_json_t *ch = path(c, "choices.0");
      if (!ch) {
        *completion_tokens = jint(c, "usage.completion_tokens");
      } else {
        const px_json_t *t = path(ch, chat ? "delta.content" : "text");
        if (t) {
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

static void dump(const char *p) {
  char *s = h_read_file(p);
  if (s) {
    size_t n = strlen(s);
    print_message("---- tail of %s ----\n%s\n", p,
                  s + (n > 4000 ? n - 4000 : 0));
  }
  free(s);
}

/* ---- processes ---------------------------------------------------------- */

static void stop_pid(pid_t *pid) {
  if (*pid > 0 && h_pid_alive(*pid)) {
    h_kill(*pid, SIGTERM);
    if (!h_wait_gone(*pid, 15000)) {
      h_kill(*pid, SIGKILL);
      h_wait_gone(*pid, 2000);
    }
  }
  *pid = 0;
}

/* Stop a node the devnet started (its pid file). */
static int stop_devnet_node(int i) {
  char p[800];
  h_path(p, sizeof p, g.node[i], "node.pid");
  pid_t pid = h_read_pid_file(p);
  if (pid <= 0) return -1;
  h_kill(pid, SIGTERM);
  if (!h_wait_gone(pid, 20000)) {
    h_kill(pid, SIGKILL);
    h_wait_gone(pid, 2000);
  }
  return 0;
}

static int gw_healthy(void *ud) {
  (void)ud;
  resp_t r;
  int ok = !http(g.gw_port, "GET", "/v1/models", g.key, NULL, &r) &&
           r.status == 200 && h_peer_count(g.node[GW]) >= NODES - 1;
  resp_free(&r);
  return ok;
}

static int gw_start(const char *audit) {
  g.gw_port = free_port();
  char httpa[64];
  snprintf(httpa, sizeof httpa, "127.0.0.1:%d", g.gw_port);
  const char *argv[] = {
      "node",        "--home", g.node[GW],       "--http", httpa,
      "--api.audit", audit,    "--api.stall_ms", "1500",   "--api.max_streams",
      "2",           NULL};
  g.gw_pid = h_spawn(g.gw_log, argv);
  if (g.gw_pid <= 0 || !h_wait_until(gw_healthy, NULL, 60000, 100)) {
    dump(g.gw_log);
    return -1;
  }
  return 0;
}

static int serve_up(void *ud) {
  (void)ud;
  char *s = h_read_file(g.serve_log);
  const char *p = s ? strstr(s, "on http://") : NULL;
  if (p && (p = strchr(p + 10, ':'))) g.serve_port = atoi(p + 1);
  free(s);
  return g.serve_port > 0;
}

static int setup(void **state) {
  (void)state;
  memset(&g, 0, sizeof g);
  if (!(g.dir = h_tmpdir("gwnet"))) return -1;
  h_path(g.model, sizeof g.model, g.dir, "tiny.bin");
  h_path(g.tok, sizeof g.tok, g.dir, "tokenizer.bin");
  h_path(g.net, sizeof g.net, g.dir, "net");
  h_path(g.serve_log, sizeof g.serve_log, g.dir, "serve.log");
  for (int i = 0; i < NODES; i++)
    snprintf(g.node[i], sizeof g.node[i], "%s/node%d", g.net, i);
  h_path(g.gw_log, sizeof g.gw_log, g.node[GW], "gateway.log");
  h_path(g.liar_log, sizeof g.liar_log, g.node[LIAR], "liar.log");
  if (tiny_write_model(g.model, SEQ) || tiny_write_tokenizer(g.tok)) return -1;
  px_llama2c_t *ck;
  if (px_llama2c_open(g.model, &ck)) return -1;
  int prc = px_ses_price_per_token(1, &ck->cfg, &g.ppt);
  px_llama2c_free(ck);
  if (prc) return -1;
  /* the reference: a local server of the same files */
  const char *sargv[] = {"serve", "--model", g.model,       "--name",
                         "tiny",  "--http",  "127.0.0.1:0", NULL};
  g.serve_pid = h_spawn(g.serve_log, sargv);
  if (g.serve_pid <= 0 || !h_wait_until(serve_up, NULL, 30000, 50)) {
    dump(g.serve_log);
    return -1;
  }
  h_result_t r;
  uint64_t t0 = h_now_ms();
  int rc =
      h_runl(&r, UP_MS, "devnet", "up", "--validators", "1", "--providers", "4",
             "--nodes", "6", "--fault", "stall", "--home", g.net, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  if (rc) return -1;
  print_message("devnet up (1 validator, 4 providers) in %.1f s\n",
                (double)(h_now_ms() - t0) / 1000.0);
  for (int i = 0; i < NODES; i++) {
    char *s = h_status(g.node[i], 5000);
    if (!s || h_json_str(s, "node_id", g.id[i], sizeof g.id[i])) {
      free(s);
      return -1;
    }
    free(s);
  }
  /* node1 becomes the gateway: models, a key, then --http */
  if (stop_devnet_node(GW)) return -1;
  rc = h_runl(&r, 60000, "model", "add", "--home", g.node[GW], "--name", "tiny",
              "--model", g.model, "--tokenizer", g.tok, NULL);
  if (rc) print_message("model add: %s%s\n", r.out, r.err);
  h_result_free(&r);
  if (rc) return -1;
  rc = h_runl(&r, 30000, "gateway", "key", "new", "--home", g.node[GW], NULL);
  if (!rc)
    snprintf(g.key, sizeof g.key, "%.*s", (int)strcspn(r.out, "\n"), r.out);
  h_result_free(&r);
  if (rc || strncmp(g.key, "pxk-", 4)) return -1;
  return gw_start("0");
}

static void kill_devnet(void) {
  for (int i = 0; i < NODES; i++) {
    char p[800];
    h_path(p, sizeof p, g.node[i], "node.pid");
    pid_t pid = h_read_pid_file(p);
    if (pid > 0 && h_pid_alive(pid)) {
      h_kill(pid, SIGKILL);
      h_wait_gone(pid, 2000);
    }
  }
}

static int teardown(void **state) {
  (void)state;
  stop_pid(&g.gw_pid);
  stop_pid(&g.serve_pid);
  stop_pid(&g.liar_pid);
  if (g.dir) {
    h_result_t r;
    h_runl(&r, 30000, "devnet", "down", "--home", g.net, NULL);
    h_result_free(&r);
    kill_devnet();
    h_reap();
    if (getenv("PX_TEST_KEEP"))
      fprintf(stderr, "kept %s\n", g.dir);
    else
      h_rmrf(g.dir);
    free(g.dir);
  }
  return 0;
}

/* ---- requests ------------------------------------------------------------ */

typedef struct {
  char *text;
  char finish[16];
  long long prompt_tokens, completion_tokens;
} out_t;

static void out_free(out_t *o) { free(o->text); }

/* One request (fields without braces) to port; stream or not. */
static void ask(int port, const char *key, int chat, const char *fields,
                int stream, out_t *o) {
  memset(o, 0, sizeof *o);
  char *b = stream ? body_fmt("{%s,\"stream\":true,\"stream_options\":{"
                              "\"include_usage\":true}}",
                              fields)
                   : body_fmt("{%s}", fields);
  resp_t r;
  const char *ep = chat ? "/v1/chat/completions" : "/v1/completions";
  assert_int_equal(http(port, "POST", ep, key, b, &r), 0);
  if (r.status != 200) fail_msg("HTTP %d: %s", r.status, r.body);
  if (stream) {
    o->text = sse_text(r.body, chat, o->finish, sizeof o->finish,
                       &o->completion_tokens);
  } else {
    doc_t d;
    const px_json_t *v = parse(&d, r.body);
    o->text =
        strdup(jstr(v, chat ? "choices.0.message.content" : "choices.0.text"));
    snprintf(o->finish, sizeof o->finish, "%s",
             jstr(v, "choices.0.finish_reason"));
    o->prompt_tokens = jint(v, "usage.prompt_tokens");
    o->completion_tokens = jint(v, "usage.completion_tokens");
    doc_free(&d);
  }
  resp_free(&r);
  free(b);
}

static void same(const out_t *a, const out_t *b) {
  assert_string_equal(a->text, b->text);
  assert_string_equal(a->finish, b->finish);
  assert_int_equal(a->completion_tokens, b->completion_tokens);
}

static long long gw_stat(const char *key) {
  char *s = h_status(g.node[GW], 5000);
  if (!s) return -1;
  const char *p = strstr(s, "\"gateway\":");
  long long v = p ? h_json_int(p, key, -1) : -1;
  free(s);
  return v;
}

/* ---- 1. models and errors ------------------------------------------------ */

static void test_models_and_errors(void **state) {
  (void)state;
  resp_t r;
  assert_int_equal(http(g.gw_port, "GET", "/v1/models", g.key, NULL, &r), 0);
  assert_int_equal(r.status, 200);
  doc_t d;
  const px_json_t *v = parse(&d, r.body);
  assert_string_equal(jstr(v, "data.0.id"), "tiny");
  assert_null(path(v, "data.1"));
  doc_free(&d);
  resp_free(&r);
  const char *ok = "{\"model\":\"tiny\",\"prompt\":\"hi\",\"max_tokens\":2}";
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", NULL, ok, &r), 0);
  expect_error(&r, 401, "missing_api_key");
  resp_free(&r);
  char wrong[128];
  snprintf(wrong, sizeof wrong, "%s", g.key);
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", wrong, ok, &r),
                   0);
  expect_error(&r, 401, "invalid_api_key");
  resp_free(&r);
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"tiny\",\"prompt\":", &r),
                   0);
  expect_error(&r, 400, "invalid_json");
  resp_free(&r);
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"tiny\",\"prompt\":\"x\",\"logprobs\":1}",
                        &r),
                   0);
  expect_error(&r, 400, "invalid_request");
  resp_free(&r);
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", g.key,
                        "{\"model\":\"gpt-9\",\"prompt\":\"x\"}", &r),
                   0);
  expect_error(&r, 404, "model_not_found");
  resp_free(&r);
  assert_int_equal(http(g.gw_port, "GET", "/v1/completions", g.key, NULL, &r),
                   0);
  expect_error(&r, 405, "method_not_allowed");
  resp_free(&r);
  /* over-size: refused from Content-Length (default limit 1 MiB) */
  int s = connect_to(g.gw_port, 0);
  assert_true(s >= 0);
  char head[512];
  int hn = snprintf(head, sizeof head,
                    "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: "
                    "application/json\r\nContent-Length: %d\r\n"
                    "Connection: close\r\n\r\n",
                    g.key, 4 << 20);
  assert_int_equal(send_all(s, head, (size_t)hn), 0);
  assert_int_equal(read_response(s, &r), 0);
  close(s);
  expect_error(&r, 413, "request_too_large");
  resp_free(&r);
}

/* ---- 2. the same text as a local server ---------------------------------- */

static void test_same_as_local(void **state) {
  (void)state;
  static const struct {
    int chat;
    const char *fields;
  } cases[] = {
      {0, "\"model\":\"tiny\",\"prompt\":\"the tale and\",\"max_tokens\":48,"
          "\"temperature\":0.8,\"seed\":5"},
      {1, "\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":"
          "\"be brief\"},{\"role\":\"user\",\"content\":\"tell the tale\"}],"
          "\"max_tokens\":40,\"temperature\":1.0,\"top_p\":0.9,\"seed\":1234"},
      {0, "\"model\":\"tiny\",\"prompt\":\"and\",\"max_tokens\":64,"
          "\"temperature\":0"},
  };
  for (size_t i = 0; i < PX_ARRAY_LEN(cases); i++) {
    out_t ref, whole, streamed;
    ask(g.serve_port, NULL, cases[i].chat, cases[i].fields, 0, &ref);
    ask(g.gw_port, g.key, cases[i].chat, cases[i].fields, 0, &whole);
    ask(g.gw_port, g.key, cases[i].chat, cases[i].fields, 1, &streamed);
    print_message("case %zu: %lld tokens, %s: \"%.40s...\"\n", i,
                  ref.completion_tokens, ref.finish, ref.text);
    assert_true(strlen(ref.text) > 0);
    same(&whole, &ref);
    same(&streamed, &ref);
    assert_int_equal(whole.prompt_tokens, ref.prompt_tokens);
    out_free(&ref);
    out_free(&whole);
    out_free(&streamed);
  }
  assert_true(metric(g.gw_port, "plexus_sessions_total") >= 6);
  assert_true(metric(g.gw_port, "plexus_session_tokens_total") > 0);
}

/* ---- 3. a stalling provider is replaced mid-stream ----------------------- */

static void test_stall_replaced(void **state) {
  (void)state;
  const char *fields = "\"model\":\"tiny\",\"prompt\":\"once\",\"max_tokens\":"
                       "60,\"temperature\":0.7,\"seed\":77";
  out_t ref;
  ask(g.serve_port, NULL, 0, fields, 0, &ref);
  for (int i = 0; i < 8 && gw_stat("stalls_replaced") < 1; i++) {
    out_t o;
    ask(g.gw_port, g.key, 0, fields, 1, &o);
    same(&o, &ref);
    out_free(&o);
  }
  out_free(&ref);
  long long stalls = gw_stat("stalls_replaced");
  if (stalls < 1) dump(g.gw_log);
  assert_true(stalls >= 1);
  assert_int_equal(metric(g.gw_port, "plexus_session_stalls_replaced_total"),
                   stalls);
  char *log = h_read_file(g.gw_log);
  char line[64];
  snprintf(line, sizeof line, "provider %.16s stalled", g.id[STALLER]);
  assert_non_null(strstr(log, line)); /* node5, the one with the fault */
  free(log);
}

/* ---- 4. stream cap and clients hanging up -------------------------------- */

static void test_disconnect(void **state) {
  (void)state;
  const char *fields =
      "\"model\":\"tiny\",\"prompt\":\"and\",\"temperature\":0,\"seed\":3";
  out_t full;
  ask(g.gw_port, g.key, 0, fields, 0, &full);
  assert_string_equal(full.finish, "length");
  assert_true(full.completion_tokens > 1500);
  long long n_prompt = full.prompt_tokens;
  out_free(&full);
  h_sleep_ms(500); /* its last receipt */
  long long tok0 = gw_stat("tokens");
  long long paid0 = gw_stat("signed");
  char *b = body_fmt("{%s,\"stream\":true}", fields);
  int s[2];
  for (int i = 0; i < 2; i++) { /* two clients that stop reading */
    s[i] = connect_to(g.gw_port, 4096);
    assert_true(s[i] >= 0);
    assert_int_equal(
        send_request(s[i], "POST", "/v1/completions", g.key, b, strlen(b), 1),
        0);
    char buf[512];
    ssize_t got = recv(s[i], buf, sizeof buf - 1, 0);
    assert_true(got > 12);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
  }
  assert_int_equal(metric(g.gw_port, "plexus_api_streams_active"), 2);
  resp_t r;
  assert_int_equal(http(g.gw_port, "POST", "/v1/completions", g.key, b, &r), 0);
  expect_error(&r, 429, "too_many_streams");
  resp_free(&r);
  h_sleep_ms(2500); /* longer than api.stall_ms: a slow client is no stall */
  for (int i = 0; i < 2; i++)
    close(s[i]);
  uint64_t t0 = h_now_ms();
  while ((metric(g.gw_port, "plexus_api_streams_active") != 0 ||
          gw_stat("active") != 0) &&
         h_now_ms() - t0 < 20000)
    h_sleep_ms(50);
  assert_int_equal(metric(g.gw_port, "plexus_api_streams_active"), 0);
  assert_int_equal(gw_stat("active"), 0);
  h_sleep_ms(300);
  long long delivered = gw_stat("tokens") - tok0;
  uint64_t paid = (uint64_t)(gw_stat("signed") - paid0);
  print_message("2 streams cut after %lld tokens from providers (of %lld "
                "each uninterrupted); signed %llu = %.1f tokens' worth\n",
                delivered, 1500LL, (unsigned long long)paid,
                (double)paid / (double)g.ppt);
  assert_true(delivered >= 2);
  assert_true(delivered < 1500); /* both together, far from 2 x full */
  assert_true(paid <= (uint64_t)(2 * n_prompt + delivered) * g.ppt);
  /* the providers claim on chain (when a channel is idle): never more than
   * the receipts say */
  uint64_t t1 = h_now_ms();
  while (gw_stat("claimed") < gw_stat("signed") && h_now_ms() - t1 < 20000)
    h_sleep_ms(200);
  long long claimed = gw_stat("claimed"), signed_ = gw_stat("signed");
  print_message("claimed on chain %lld of %lld signed\n", claimed, signed_);
  assert_true(claimed > 0);
  assert_true(claimed <= signed_);
  free(b);
}

/* ---- 5. audit catches a liar, the dispute slashes it -------------------- */

typedef struct {
  uint64_t stake, disputes_lost;
} prov_t;

static int provider_rec(const char *id, prov_t *p) {
  char *s = h_control(g.node[0], "providers", 5000);
  if (!s) return -1;
  doc_t d;
  const px_json_t *ps = px_json_get(parse(&d, s), "providers");
  int rc = -1;
  for (size_t i = 0; i < px_json_count(ps); i++) {
    const px_json_t *e = px_json_at(ps, i);
    const char *pid;
    if (px_json_get_str(e, "id", &pid) || strcmp(pid, id)) continue;
    px_json_get_u64(e, "stake", &p->stake);
    px_json_get_u64(e, "disputes_lost", &p->disputes_lost);
    rc = 0;
  }
  doc_free(&d);
  free(s);
  return rc;
}

static int liar_up(void *ud) {
  (void)ud;
  return h_peer_count(g.node[LIAR]) >= NODES - 1;
}

static void test_audit_catches_liar(void **state) {
  (void)state;
  prov_t before[NODES];
  for (int i = 2; i < NODES; i++)
    assert_int_equal(provider_rec(g.id[i], &before[i]), 0);
  assert_int_equal(stop_devnet_node(LIAR), 0);
  const char *argv[] = {"node",           "--home",  g.node[LIAR],
                        "--market.fault", "perturb", NULL};
  g.liar_pid = h_spawn(g.liar_log, argv);
  assert_true(g.liar_pid > 0);
  assert_true(h_wait_until(liar_up, NULL, 60000, 100));
  /* a restart never signs less than before (HOME/channels) */
  long long signed_before = gw_stat("signed");
  assert_true(signed_before > 0);
  stop_pid(&g.gw_pid);
  assert_int_equal(gw_start("1"), 0);
  assert_true(gw_stat("signed") >= signed_before);
  uint64_t t0 = h_now_ms();
  int i = 0;
  while (gw_stat("disputes_upheld") < 1 && h_now_ms() - t0 < 120000) {
    char *f = body_fmt("\"model\":\"tiny\",\"prompt\":\"the tale\","
                       "\"max_tokens\":24,\"temperature\":1,\"seed\":%d",
                       100 + i++);
    out_t o;
    ask(g.gw_port, g.key, 0, f, 0, &o);
    out_free(&o);
    free(f);
    h_sleep_ms(300);
  }
  long long upheld = gw_stat("disputes_upheld");
  print_message("%d requests, %lld audits, %lld failed, %lld disputes, "
                "%lld upheld\n",
                i, gw_stat("audits"), gw_stat("audits_failed"),
                gw_stat("disputes"), upheld);
  if (upheld < 1) {
    dump(g.gw_log);
    dump(g.liar_log);
  }
  assert_true(upheld >= 1);
  assert_true(gw_stat("audits") >= 1);
  assert_true(metric(g.gw_port, "plexus_session_disputes_total") >= 1);
  /* the verdict is on chain: the liar was slashed, the others not */
  prov_t after;
  t0 = h_now_ms();
  do {
    assert_int_equal(provider_rec(g.id[LIAR], &after), 0);
    if (after.disputes_lost > before[LIAR].disputes_lost) break;
    h_sleep_ms(200);
  } while (h_now_ms() - t0 < 20000);
  assert_true(after.disputes_lost > before[LIAR].disputes_lost);
  assert_true(after.stake < before[LIAR].stake);
  for (int k = 2; k < NODES; k++) {
    if (k == LIAR) continue;
    assert_int_equal(provider_rec(g.id[k], &after), 0);
    assert_int_equal(after.disputes_lost, before[k].disputes_lost);
    assert_int_equal(after.stake, before[k].stake);
  }
}

/* ---- 6. money conserved ----------------------------------------------------
 */

static void test_supply(void **state) {
  (void)state;
  for (int i = 0; i < NODES; i++) {
    const char *logs[] = {"node.log", "gateway.log", "liar.log"};
    for (size_t k = 0; k < PX_ARRAY_LEN(logs); k++) {
      char p[800];
      h_path(p, sizeof p, g.node[i], logs[k]);
      if (access(p, F_OK)) continue;
      assert_int_equal(h_count_lines_containing(p, "supply invariant broken"),
                       0);
    }
  }
  char *s = h_control(g.node[0], "chain", 5000);
  assert_non_null(s);
  assert_non_null(strstr(s, "\"supply_ok\":true"));
  free(s);
}

int main(void) {
  h_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_models_and_errors),
      cmocka_unit_test(test_same_as_local),
      cmocka_unit_test(test_stall_replaced),
      cmocka_unit_test(test_disconnect),
      cmocka_unit_test(test_audit_catches_liar),
      cmocka_unit_test(test_supply),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
