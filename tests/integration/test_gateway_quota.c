/*
 * test_gateway_quota.c — per-key quotas through a real `plexus serve`
 * process (docs/api.md "Quotas"): keys made by `plexus gateway key new
 * --rpm N --tokens-per-day T`, a key without options taking the server's
 * `--key-rpm` default, each over its quota answered 429 with OpenAI's
 * code and a Retry-After header, and bad quota flags refused.
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

#include "gateway/http_client.h"
#include "gateway/tiny_model.h"
#include "harness.h"

static struct {
  char *dir;
  char home[700], log[700], model[700], tok[700];
  pid_t pid;
  int port;
} g;

/* `gateway key new` with up to two options (NULL-terminated pairs). */
static int new_key(const char *a1, const char *a2, const char *a3,
                   const char *a4, char out[80]) {
  h_result_t r;
  int rc = h_runl(&r, 30000, "gateway", "key", "new", "--home", g.home, a1, a2,
                  a3, a4, NULL);
  if (!rc)
    snprintf(out, 80, "%.*s", (int)strcspn(r.out, "\n"), r.out);
  else
    print_message("gateway key new: %d %s%s\n", rc, r.out, r.err);
  h_result_free(&r);
  return rc || strncmp(out, "pxk-", 4) ? -1 : 0;
}

static int serve_up(void *ud) {
  (void)ud;
  char *s = h_read_file(g.log);
  const char *p = s ? strstr(s, "on http://") : NULL;
  if (p && (p = strchr(p + 10, ':'))) g.port = atoi(p + 1);
  free(s);
  return g.port > 0;
}

/* Status, Retry-After (-1 if none) and the body of one completion. */
static int post(const char *key, long long *retry, char *body, size_t cap) {
  int s = connect_to(g.port, 0);
  if (s < 0) return -1;
  const char *b = "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":4,"
                  "\"temperature\":0}";
  if (send_request(s, "POST", "/v1/completions", key, b, strlen(b), 1)) {
    close(s);
    return -1;
  }
  size_t n = 0;
  for (;;) { /* Connection: close: read to EOF */
    ssize_t got = recv(s, body + n, cap - 1 - n, 0);
    if (got <= 0) break;
    n += (size_t)got;
    if (n == cap - 1) break;
  }
  close(s);
  body[n] = 0;
  const char *ra = strstr(body, "\r\nRetry-After: ");
  *retry = ra ? atoll(ra + 15) : -1;
  return strncmp(body, "HTTP/1.1 ", 9) ? -1 : atoi(body + 9);
}

static void test_serve_quotas(void **state) {
  (void)state;
  char krpm[80], ktpd[80], kdef[80];
  assert_int_equal(new_key("--rpm", "1", NULL, NULL, krpm), 0);
  assert_int_equal(new_key("--rpm", "0", "--tokens-per-day", "12", ktpd), 0);
  assert_int_equal(new_key(NULL, NULL, NULL, NULL, kdef), 0);
  h_result_t r;
  assert_int_equal(h_runl(&r, 30000, "gateway", "key", "new", "--home", g.home,
                          "--rpm", "x", NULL),
                   2);
  assert_non_null(strstr(r.err, "--rpm"));
  h_result_free(&r);
  assert_int_equal(h_runl(&r, 30000, "gateway", "key", "new", "--home", g.home,
                          "--tokens-per-day", "1000000000001", NULL),
                   2);
  h_result_free(&r);
  const char *argv[] = {"serve",       "--model", g.model, "--tokenizer",
                        g.tok,         "--name",  "tiny",  "--http",
                        "127.0.0.1:0", "--home",  g.home,  "--key-rpm",
                        "2",           NULL};
  g.pid = h_spawn(g.log, argv);
  assert_true(g.pid > 0);
  assert_true(h_wait_until(serve_up, NULL, 30000, 50));
  char body[8192];
  long long ra;
  /* --rpm 1 */
  assert_int_equal(post(krpm, &ra, body, sizeof body), 200);
  assert_int_equal(post(krpm, &ra, body, sizeof body), 429);
  assert_non_null(strstr(body, "\"code\":\"rate_limit_exceeded\""));
  assert_true(ra >= 1 && ra <= 60);
  /* no options: the server's --key-rpm 2 */
  assert_int_equal(post(kdef, &ra, body, sizeof body), 200);
  assert_int_equal(post(kdef, &ra, body, sizeof body), 200);
  assert_int_equal(post(kdef, &ra, body, sizeof body), 429);
  assert_true(ra >= 1 && ra <= 30);
  /* --rpm 0 (unlimited, not the default) --tokens-per-day 12: admitted
   * while under 12 tokens, each charged its usage */
  long long used = 0;
  int st, n_ok = 0;
  while ((st = post(ktpd, &ra, body, sizeof body)) == 200) {
    const char *u = strstr(body, "\"total_tokens\":");
    assert_non_null(u);
    long long t = atoll(u + 15);
    assert_true(t >= 5 && t < 12); /* BOS, prompt, 4 generated */
    used += t;
    n_ok++;
    assert_true(n_ok <= 3);
  }
  assert_int_equal(st, 429);
  assert_true(used >= 12 && used - 12 < 12);
  assert_non_null(strstr(body, "\"code\":\"insufficient_quota\""));
  assert_non_null(strstr(body, "\"type\":\"insufficient_quota\""));
  assert_true(ra >= 1 && ra <= 86400);
}

static int setup(void **state) {
  (void)state;
  memset(&g, 0, sizeof g);
  if (!(g.dir = h_tmpdir("gwquota"))) return -1;
  h_path(g.home, sizeof g.home, g.dir, "home");
  h_path(g.log, sizeof g.log, g.dir, "serve.log");
  h_path(g.model, sizeof g.model, g.dir, "tiny.bin");
  h_path(g.tok, sizeof g.tok, g.dir, "tokenizer.bin");
  if (tiny_write_model(g.model, 256) || tiny_write_tokenizer(g.tok)) return -1;
  h_result_t r;
  int rc = h_runl(&r, 30000, "wallet", "new", "--home", g.home, NULL);
  if (rc) print_message("wallet new: %s%s\n", r.out, r.err);
  h_result_free(&r);
  return rc ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  if (g.pid > 0 && h_pid_alive(g.pid)) {
    h_kill(g.pid, SIGTERM);
    if (!h_wait_gone(g.pid, 10000)) {
      h_kill(g.pid, SIGKILL);
      h_wait_gone(g.pid, 2000);
    }
  }
  if (g.dir) {
    h_rmrf(g.dir);
    free(g.dir);
  }
  return 0;
}

int main(void) {
  h_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serve_quotas),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
