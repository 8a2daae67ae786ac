/*
 * test_api_quota.c — per-key quotas of the gateway (src/api/keys.c,
 * docs/api.md "Quotas"): the keys file with and without quota options
 * (old lines still load; malformed options are refused), the request
 * bucket and the daily token budget on an explicit clock, concurrent
 * admission from many threads, and the server itself on a real socket
 * with the real local backend: 429 with OpenAI's codes and types and a
 * Retry-After header, tokens charged from real completions (streamed and
 * not), and defaults for keys whose line sets none.
 */
#include <pthread.h>
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
#include "plexus/crypto.h"
#include "gateway/http_client.h"
#include "gateway/tiny_model.h"

#define DAY 86400000ull
/* A fixed wall time: 2026-11-23 12:00:00 UTC. */
#define NOON (20415ull * DAY + 43200000ull)

static char *tmpdir_new(void) {
  char t[] = "/tmp/plexus-apiq-XXXXXX";
  char *d = mkdtemp(t);
  assert_non_null(d);
  return strdup(d);
}

static void rm_dir(const char *d) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  assert_int_equal(system(cmd), 0);
}

static void write_keys(const char *dir, const char *text) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, PX_API_KEYS_FILE);
  assert_int_equal(px_file_write_atomic(path, text, strlen(text), 0600), 0);
}

/* A line for hash byte h, wallet byte w, then tail (" rpm=..." or ""). */
static void key_line(char *out, size_t cap, int h, const char *tail) {
  char hh[65], wh[65];
  uint8_t hb[32], wb[32];
  memset(hb, h, 32);
  memset(wb, 0x77, 32);
  px_hex_encode(hb, 32, hh);
  px_hex_encode(wb, 32, wh);
  snprintf(out, cap, "%s %s 1795426770000%s\n", hh, wh, tail);
}

static int load_text(const char *dir, const char *tail, px_api_keys_t **k) {
  char line[400];
  key_line(line, sizeof line, 0xab, tail);
  write_keys(dir, line);
  return px_api_keys_load(dir, k);
}

static void test_keys_file(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  px_api_keys_t *k = NULL;
  px_api_quota_t q, def = {7, 700};
  /* a line from before quotas: the defaults apply */
  assert_int_equal(load_text(dir, "", &k), 0);
  assert_int_equal(px_api_keys_count(k), 1);
  assert_int_equal(px_api_keys_quota(k, 0, &def, &q), 0);
  assert_true(q.rpm == 7 && q.tokens_per_day == 700);
  assert_int_equal(px_api_keys_quota(k, 0, NULL, &q), 0);
  assert_true(q.rpm == 0 && q.tokens_per_day == 0);
  assert_int_equal(px_api_keys_quota(k, 1, &def, &q), PX_EINVAL);
  px_api_keys_free(k);
  /* each option alone, both, and 0 = unlimited overriding a default */
  assert_int_equal(load_text(dir, " rpm=5", &k), 0);
  px_api_keys_quota(k, 0, &def, &q);
  assert_true(q.rpm == 5 && q.tokens_per_day == 700);
  px_api_keys_free(k);
  assert_int_equal(load_text(dir, " tpd=1000000000000", &k), 0);
  px_api_keys_quota(k, 0, &def, &q);
  assert_true(q.rpm == 7 && q.tokens_per_day == PX_API_QUOTA_MAX);
  px_api_keys_free(k);
  assert_int_equal(load_text(dir, " rpm=0 tpd=0", &k), 0);
  px_api_keys_quota(k, 0, &def, &q);
  assert_true(q.rpm == 0 && q.tokens_per_day == 0);
  px_api_keys_free(k);
  /* strict: order, duplicates, unknown names, leading zeros, signs,
   * range, stray spaces */
  static const char *const bad[] = {" tpd=1 rpm=1",
                                    " rpm=1 rpm=2",
                                    " rps=1",
                                    " rpm=01",
                                    " rpm=",
                                    " rpm=+1",
                                    " rpm=1000000000001",
                                    " rpm=1 ",
                                    "  rpm=1",
                                    " rpm=1x",
                                    " rpm=-1",
                                    " tpd=99999999999999999999999",
                                    " x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    k = NULL;
    int rc = load_text(dir, bad[i], &k);
    if (rc != PX_EDECODE) fail_msg("'%s' loaded (%d)", bad[i], rc);
    assert_null(k);
  }
  /* keys made with quotas round-trip; old and new lines mix */
  char line[400];
  key_line(line, sizeof line, 0xcd, "");
  write_keys(dir, line);
  uint8_t w[32], got[32];
  memset(w, 0x33, 32);
  char k1[PX_API_KEY_LEN + 1], k2[PX_API_KEY_LEN + 1], k3[PX_API_KEY_LEN + 1];
  px_api_quota_t q1 = {60, PX_API_QUOTA_UNSET}, q2 = {0, 12345};
  assert_int_equal(px_api_key_new_quota(dir, w, &q1, k1), 0);
  assert_int_equal(px_api_key_new_quota(dir, w, &q2, k2), 0);
  assert_int_equal(px_api_key_new(dir, w, k3), 0);
  px_api_quota_t over = {PX_API_QUOTA_MAX + 1, 0};
  char k4[PX_API_KEY_LEN + 1];
  assert_int_equal(px_api_key_new_quota(dir, w, &over, k4), PX_ERANGE);
  assert_int_equal(px_api_keys_load(dir, &k), 0);
  assert_int_equal(px_api_keys_count(k), 4);
  size_t i1, i2, i3;
  assert_int_equal(px_api_keys_find(k, k1, strlen(k1), got, &i1), 0);
  assert_memory_equal(got, w, 32);
  assert_int_equal(px_api_keys_find(k, k2, strlen(k2), NULL, &i2), 0);
  assert_int_equal(px_api_keys_find(k, k3, strlen(k3), NULL, &i3), 0);
  assert_true(i1 == 1 && i2 == 2 && i3 == 3);
  px_api_keys_quota(k, i1, &def, &q);
  assert_true(q.rpm == 60 && q.tokens_per_day == 700);
  px_api_keys_quota(k, i2, &def, &q);
  assert_true(q.rpm == 0 && q.tokens_per_day == 12345);
  px_api_keys_quota(k, i3, &def, &q);
  assert_true(q.rpm == 7 && q.tokens_per_day == 700);
  px_api_keys_free(k);
  rm_dir(dir);
  free(dir);
}

static void test_admit(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  px_api_keys_t *k = NULL;
  assert_int_equal(load_text(dir, " rpm=3 tpd=100", &k), 0);
  uint64_t ra;
  /* a burst of rpm, then one every 60/rpm = 20 s */
  for (int i = 0; i < 3; i++)
    assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON, &ra), PX_ERATE);
  assert_int_equal(ra, 20);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + 15000, &ra), PX_ERATE);
  assert_int_equal(ra, 5);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + 19999, &ra), PX_ERATE);
  assert_int_equal(ra, 1); /* rounded up, never 0 */
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + 20000, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + 20000, &ra), PX_ERATE);
  /* a quiet minute refills the whole burst, no more */
  uint64_t t = NOON + 200000;
  for (int i = 0; i < 3; i++)
    assert_int_equal(px_api_keys_admit(k, 0, NULL, t, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, t, &ra), PX_ERATE);
  /* a clock going back refills nothing */
  assert_int_equal(px_api_keys_admit(k, 0, NULL, t - 100000, &ra), PX_ERATE);
  /* tokens: admitted while under the budget; the request that crosses it
   * is charged in full; then refused until 00:00 UTC */
  t += 60000;
  px_api_keys_charge(k, 0, 99, t);
  assert_int_equal(px_api_keys_tokens_used(k, 0, t), 99);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, t, &ra), 0);
  px_api_keys_charge(k, 0, 40, t);
  assert_int_equal(px_api_keys_tokens_used(k, 0, t), 139);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, t, &ra), PX_ELIMIT);
  uint64_t midnight = (t / DAY + 1) * DAY;
  assert_int_equal(ra, (midnight - t + 999) / 1000);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, midnight - 1, &ra), PX_ELIMIT);
  assert_int_equal(ra, 1);
  assert_int_equal(px_api_keys_tokens_used(k, 0, midnight), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, midnight, &ra), 0);
  /* a refused request takes nothing from the bucket */
  px_api_keys_free(k);
  assert_int_equal(load_text(dir, " rpm=2 tpd=10", &k), 0);
  px_api_keys_charge(k, 0, 10, NOON);
  for (int i = 0; i < 5; i++)
    assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON, &ra), PX_ELIMIT);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + DAY, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + DAY, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON + DAY, &ra), PX_ERATE);
  px_api_keys_free(k);
  /* defaults for a line without options; unlimited when none */
  assert_int_equal(load_text(dir, "", &k), 0);
  px_api_quota_t def = {1, 0};
  assert_int_equal(px_api_keys_admit(k, 0, &def, NOON, &ra), 0);
  assert_int_equal(px_api_keys_admit(k, 0, &def, NOON, &ra), PX_ERATE);
  assert_int_equal(ra, 60);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(px_api_keys_admit(k, 0, NULL, NOON, &ra), 0);
  px_api_keys_free(k);
  rm_dir(dir);
  free(dir);
}

/* Many connection threads admitting at once: exactly rpm get through. */
typedef struct {
  px_api_keys_t *k;
  int ok, rate;
} adm_t;

static void *admit_thread(void *arg) {
  adm_t *a = arg;
  for (int i = 0; i < 500; i++) {
    uint64_t ra;
    int rc = px_api_keys_admit(a->k, 0, NULL, NOON, &ra);
    a->ok += rc == 0;
    a->rate += rc == PX_ERATE;
    px_api_keys_charge(a->k, 0, 1, NOON);
  }
  return NULL;
}

static void test_admit_threads(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  px_api_keys_t *k = NULL;
  assert_int_equal(load_text(dir, " rpm=1000", &k), 0);
  adm_t a[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    a[i] = (adm_t){k, 0, 0};
    assert_int_equal(pthread_create(&th[i], NULL, admit_thread, &a[i]), 0);
  }
  int ok = 0, rate = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    ok += a[i].ok;
    rate += a[i].rate;
  }
  assert_int_equal(ok, 1000);
  assert_int_equal(rate, 3000);
  assert_int_equal(px_api_keys_tokens_used(k, 0, NOON), 4000);
  px_api_keys_free(k);
  rm_dir(dir);
  free(dir);
}

/* ---- through the server -------------------------------------------------- */

typedef struct {
  int status;
  char head[2048]; /* status line and headers */
  char *body;
} raw_t;

/* One request; the response's head kept (Retry-After) and its body
 * de-chunked by the shared client. */
static void req(int port, const char *key, const char *body, raw_t *out) {
  memset(out, 0, sizeof *out);
  int s = connect_to(port, 0);
  assert_true(s >= 0);
  assert_int_equal(
      send_request(s, "POST", "/v1/completions", key, body, strlen(body), 1),
      0);
  resp_t r;
  /* peek the head before read_response consumes the socket */
  char buf[2048];
  char *eoh = NULL;
  for (int i = 0; i < 10000 && !eoh; i++) {
    ssize_t n = recv(s, buf, sizeof buf - 1, MSG_PEEK);
    assert_true(n > 0);
    buf[n] = 0;
    if (!(eoh = strstr(buf, "\r\n\r\n"))) usleep(1000);
  }
  assert_non_null(eoh);
  *eoh = 0;
  snprintf(out->head, sizeof out->head, "%s", buf);
  assert_int_equal(read_response(s, &r), 0);
  close(s);
  out->status = r.status;
  out->body = r.body;
}

static long long retry_after(const raw_t *r) {
  const char *p = strstr(r->head, "\r\nRetry-After: ");
  return p ? atoll(p + 15) : -1;
}

static void assert_error(const raw_t *r, const char *type, const char *code) {
  px_arena_t a;
  px_arena_init(&a, 4096, 1 << 20);
  px_json_t *v;
  assert_int_equal(px_json_parse(&a, r->body, strlen(r->body), NULL, &v, NULL),
                   0);
  const px_json_t *e = px_json_get(v, "error");
  const char *s;
  assert_int_equal(px_json_get_str(e, "type", &s), 0);
  assert_string_equal(s, type);
  assert_int_equal(px_json_get_str(e, "code", &s), 0);
  assert_string_equal(s, code);
  assert_int_equal(px_json_get_str(e, "message", &s), 0);
  assert_true(strlen(s) > 20);
  px_arena_release(&a);
}

/* usage.total_tokens of a non-streamed reply, or the usage chunk's. */
static long long total_tokens(const char *body) {
  const char *p = strstr(body, "\"total_tokens\":");
  return p ? atoll(p + 15) : -1;
}

static void test_server_quota(void **state) {
  (void)state;
  char *dir = tmpdir_new();
  char model[600], tok[600], err[512];
  snprintf(model, sizeof model, "%s/tiny.bin", dir);
  snprintf(tok, sizeof tok, "%s/tokenizer.bin", dir);
  assert_int_equal(tiny_write_model(model, 512), 0);
  assert_int_equal(tiny_write_tokenizer(tok), 0);
  uint8_t w[32];
  memset(w, 0x44, 32);
  char krate[PX_API_KEY_LEN + 1], ktok[PX_API_KEY_LEN + 1],
      kdef[PX_API_KEY_LEN + 1], kfree[PX_API_KEY_LEN + 1];
  px_api_quota_t qr = {2, PX_API_QUOTA_UNSET}, qt = {0, 30}, qf = {0, 0};
  assert_int_equal(px_api_key_new_quota(dir, w, &qr, krate), 0);
  assert_int_equal(px_api_key_new_quota(dir, w, &qt, ktok), 0);
  assert_int_equal(px_api_key_new(dir, w, kdef), 0);
  assert_int_equal(px_api_key_new_quota(dir, w, &qf, kfree), 0);
  px_api_backend_t *be = NULL;
  int rc = px_api_local_open(model, tok, "tiny", &be, err, sizeof err);
  if (rc) fail_msg("%s", err);
  px_api_config_t c = {
      .listen = "127.0.0.1:0", .home = dir, .backend = be, .key_quota = {1, 0}};
  px_api_t *api = NULL;
  assert_int_equal(px_api_open(&c, &api, err, sizeof err), 0);
  rc = px_api_start(api, err, sizeof err);
  if (rc) fail_msg("%s", err);
  int port = atoi(strrchr(px_api_address(api), ':') + 1);
  const char *b = "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":8,"
                  "\"temperature\":0}";
  const char *bs = "{\"model\":\"tiny\",\"prompt\":\"the\",\"max_tokens\":8,"
                   "\"temperature\":0,\"stream\":true,\"stream_options\":{"
                   "\"include_usage\":true}}";
  raw_t r;
  /* rpm=2: two pass, the third is 429 rate_limit_exceeded, Retry-After */
  for (int i = 0; i < 2; i++) {
    req(port, krate, b, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
  }
  req(port, krate, b, &r);
  assert_int_equal(r.status, 429);
  assert_error(&r, "requests", "rate_limit_exceeded");
  long long ra = retry_after(&r);
  assert_true(ra >= 1 && ra <= 30);
  free(r.body);
  /* the default (rpm 1) for the key without options */
  req(port, kdef, b, &r);
  assert_int_equal(r.status, 200);
  free(r.body);
  req(port, kdef, b, &r);
  assert_int_equal(r.status, 429);
  assert_error(&r, "requests", "rate_limit_exceeded");
  ra = retry_after(&r);
  assert_true(ra >= 1 && ra <= 60);
  free(r.body);
  /* tpd=30: real usage is charged, streamed or not; over it: 429
   * insufficient_quota until 00:00 UTC */
  long long used = 0;
  int n_ok = 0;
  for (int i = 0; i < 10 && used < 30; i++) {
    req(port, ktok, i % 2 ? bs : b, &r);
    assert_int_equal(r.status, 200);
    long long t = total_tokens(r.body);
    assert_true(t > 8); /* BOS + prompt + 8 generated */
    used += t;
    n_ok++;
    free(r.body);
  }
  assert_true(used >= 30 && n_ok >= 2);
  req(port, ktok, b, &r);
  assert_int_equal(r.status, 429);
  assert_error(&r, "insufficient_quota", "insufficient_quota");
  ra = retry_after(&r);
  uint64_t now = px_time_wall_ms();
  long long to_midnight = (long long)(((now / DAY + 1) * DAY - now) / 1000);
  assert_true(ra >= to_midnight - 5 && ra <= to_midnight + 5);
  free(r.body);
  /* an explicitly unlimited key ignores the server's default */
  for (int i = 0; i < 4; i++) {
    req(port, kfree, b, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
  }
  /* a refusal is counted as a 4xx; other keys are unaffected by it */
  px_api_free(api);
  px_api_local_free(be);
  rm_dir(dir);
  free(dir);
}

int main(void) {
  if (px_crypto_init()) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_file),
      cmocka_unit_test(test_admit),
      cmocka_unit_test(test_admit_threads),
      cmocka_unit_test(test_server_quota),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
