/*
 * api.c — the HTTP gateway server: sockets, routing, API keys, errors and
 * the gateway's own metrics (docs/api.md).
 *
 * libmicrohttpd runs the sockets: one polling thread accepts, and each
 * connection gets its own thread (MHD_USE_THREAD_PER_CONNECTION), at most
 * max_connections of them, each closed after idle_timeout_s without
 * traffic.  A connection thread may block — waiting for the node loop, for
 * the model, for the next token — without holding up anything else; in
 * particular the node's libuv loop is never blocked by HTTP (node_routes.c).
 *
 * Request life: the URI log callback allocates the per-request state and
 * keeps the raw query string (our strict decoder reads it, not MHD's
 * lenient one); the body is collected up to max_body (413 past it, at once
 * when Content-Length says so); then route() answers — node routes in
 * node_routes.c, inference in openai.c.  Completion records the status and
 * the latency histogram.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "api/api_internal.h"
#include "api/static.h"
#include "base/px_internal.h"

static const double k_bucket_s[N_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

/* ---- responses ----------------------------------------------------------- */

int api_send_bytes(struct MHD_Connection *c, unsigned status, const char *type,
                   const void *p, size_t n) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  int ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

int api_send_json(struct MHD_Connection *c, req_t *q, unsigned status,
                  const px_buf_t *b) {
  q->status = status;
  q->answered = 1;
  return api_send_bytes(c, status, "application/json", b->data, b->len);
}

static const char *error_type(unsigned status) {
  switch (status) {
  case 401:
    return "authentication_error";
  case 404:
    return "not_found_error";
  case 429:
    return "rate_limit_error";
  case 500:
  case 503:
  case 504:
    return "server_error";
  default:
    return "invalid_request_error";
  }
}

/* {"error":{"message","type","code"}} */
static int send_error_v(struct MHD_Connection *c, req_t *q, unsigned status,
                        const char *type, const char *code,
                        uint64_t retry_after_s, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));
static int send_error_v(struct MHD_Connection *c, req_t *q, unsigned status,
                        const char *type, const char *code,
                        uint64_t retry_after_s, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "error");
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "message");
  px_json_write_str(&w, msg);
  if (w.err) { /* a message with invalid UTF-8 from outside */
    w.err = 0;
    px_json_write_str(&w, "invalid request");
  }
  px_json_write_key(&w, "type");
  px_json_write_str(&w, type ? type : error_type(status));
  px_json_write_key(&w, "code");
  if (code)
    px_json_write_str(&w, code);
  else
    px_json_write_null(&w);
  px_json_write_key(&w, "param");
  px_json_write_null(&w);
  px_json_write_object_end(&w);
  px_json_write_object_end(&w);
  px_json_writer_finish(&w);
  int ok;
  if (retry_after_s) { /* api_send_json plus the header */
    q->status = status;
    q->answered = 1;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
    char ra[24];
    snprintf(ra, sizeof ra, "%llu", (unsigned long long)retry_after_s);
    ok = MHD_NO;
    if (r) {
      MHD_add_response_header(r, "Content-Type", "application/json");
      MHD_add_response_header(r, "Cache-Control", "no-store");
      MHD_add_response_header(r, "Retry-After", ra);
      ok = MHD_queue_response(c, status, r);
      MHD_destroy_response(r);
    }
  } else {
    ok = api_send_json(c, q, status, &b);
  }
  px_buf_release(&b);
  return ok;
}

int api_send_error(struct MHD_Connection *c, req_t *q, unsigned status,
                   const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int ok = send_error_v(c, q, status, NULL, code, 0, fmt, ap);
  va_end(ap);
  return ok;
}

int api_send_error_ex(struct MHD_Connection *c, req_t *q, unsigned status,
                      const char *type, const char *code,
                      uint64_t retry_after_s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int ok = send_error_v(c, q, status, type, code, retry_after_s, fmt, ap);
  va_end(ap);
  return ok;
}

void api_deadline_in(struct timespec *ts, unsigned ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

void api_cond_init_mono(pthread_cond_t *cv) {
  pthread_condattr_t at;
  pthread_condattr_init(&at);
  pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &at);
  pthread_condattr_destroy(&at);
}

int api_is_hex(const char *s, size_t n) {
  if (strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
          (s[i] >= 'A' && s[i] <= 'F')))
      return 0;
  return 1;
}

/* ---- metrics ------------------------------------------------------------- */

void api_metric(px_buf_t *b, const char *name, const char *type,
                const char *help) {
  px_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void api_metrics(px_api_t *a, px_buf_t *b) {
  pthread_mutex_lock(&a->mu);
  api_metric(b, "plexus_api_requests_total", "counter",
             "HTTP requests answered, by status class");
  for (int i = 1; i < 6; i++)
    px_buf_printf(b, "plexus_api_requests_total{class=\"%dxx\"} %llu\n", i,
                  (unsigned long long)a->requests_by_class[i]);
  api_metric(b, "plexus_api_request_duration_seconds", "histogram",
             "time from request start to the end of its response");
  uint64_t cum = 0;
  for (int i = 0; i < N_BUCKETS; i++) {
    cum += a->lat_buckets[i];
    px_buf_printf(b,
                  "plexus_api_request_duration_seconds_bucket{le=\"%g\"} "
                  "%llu\n",
                  k_bucket_s[i], (unsigned long long)cum);
  }
  cum += a->lat_buckets[N_BUCKETS];
  px_buf_printf(b,
                "plexus_api_request_duration_seconds_bucket{le=\"+Inf\"} "
                "%llu\nplexus_api_request_duration_seconds_sum %.6f\n"
                "plexus_api_request_duration_seconds_count %llu\n",
                (unsigned long long)cum, a->lat_sum,
                (unsigned long long)a->lat_count);
  api_metric(b, "plexus_api_streams_active", "gauge",
             "streaming responses open");
  px_buf_printf(b, "plexus_api_streams_active %u\n", a->streams_active);
  api_metric(b, "plexus_api_streams_total", "counter", "streams started");
  px_buf_printf(b, "plexus_api_streams_total %llu\n",
                (unsigned long long)a->streams_total);
  api_metric(b, "plexus_api_streams_cancelled_total", "counter",
             "streams ended early because the client went away");
  px_buf_printf(b, "plexus_api_streams_cancelled_total %llu\n",
                (unsigned long long)a->streams_cancelled);
  api_metric(b, "plexus_api_tokens_generated_total", "counter",
             "completion tokens generated");
  px_buf_printf(b, "plexus_api_tokens_generated_total %llu\n",
                (unsigned long long)a->tokens_generated);
  api_metric(b, "plexus_api_prompt_tokens_total", "counter",
             "prompt tokens read");
  px_buf_printf(b, "plexus_api_prompt_tokens_total %llu\n",
                (unsigned long long)a->prompt_tokens);
  pthread_mutex_unlock(&a->mu);
}

/* Node metrics from the node's own status and job list. */
static int route_metrics(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  px_buf_t b;
  px_buf_init(&b, 0);
  if (a->cfg.node) {
    int sent = api_node_metrics(a, c, q, &b);
    if (sent != -1) {
      px_buf_release(&b);
      return sent;
    }
  }
  api_metrics(a, &b);
  q->status = 200;
  q->answered = 1;
  int ok = api_send_bytes(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                          b.data, b.len);
  px_buf_release(&b);
  return ok;
}

/* ---- routing ------------------------------------------------------------- */

/* 0 if the request may go on (wallet_pk set when a key was given), else an
 * error has been sent (*sent). */
static int authorise(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     int *sent) {
  const char *h =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!a->keys || !px_api_keys_count(a->keys)) {
    if (!a->cfg.node) return 0; /* local server without keys: open */
    *sent = api_send_error(c, q, 401, "invalid_api_key",
                           "this gateway has no API keys yet: create one with "
                           "`plexus gateway key new --home DIR` and restart");
    return PX_EAUTH;
  }
  if (!h || strncmp(h, "Bearer ", 7) != 0) {
    *sent = api_send_error(c, q, 401, "missing_api_key",
                           "missing API key: send the header 'Authorization: "
                           "Bearer KEY' (create a key with `plexus gateway key "
                           "new --home DIR`)");
    return PX_EAUTH;
  }
  const char *k = h + 7;
  uint8_t wallet[32];
  size_t idx;
  if (px_api_keys_find(a->keys, k, strlen(k), wallet, &idx)) {
    *sent =
        api_send_error(c, q, 401, "invalid_api_key",
                       "invalid API key (keys are made with `plexus gateway "
                       "key new --home DIR`)");
    return PX_EAUTH;
  }
  /* per-key quotas (keys.c; OpenAI's codes and types) */
  uint64_t retry = 0;
  px_api_quota_t qt;
  px_api_keys_quota(a->keys, idx, &a->cfg.key_quota, &qt);
  int rc = px_api_keys_admit(a->keys, idx, &a->cfg.key_quota, px_time_wall_ms(),
                             &retry);
  if (rc == PX_ELIMIT) {
    *sent = api_send_error_ex(
        c, q, 429, "insufficient_quota", "insufficient_quota", retry,
        "You exceeded your current quota: this key's budget of %llu tokens "
        "per day is spent; it resets at 00:00 UTC (in %llu s)",
        (unsigned long long)qt.tokens_per_day, (unsigned long long)retry);
    return rc;
  }
  if (rc) {
    *sent = api_send_error_ex(
        c, q, 429, "requests", "rate_limit_exceeded", retry,
        "Rate limit reached for requests per min (RPM): limit %llu. Please "
        "try again in %llus.",
        (unsigned long long)qt.rpm, (unsigned long long)retry);
    return rc;
  }
  q->has_key = 1;
  q->key = idx;
  return 0;
}

static int route(px_api_t *a, struct MHD_Connection *c, req_t *q,
                 const char *url, const char *method) {
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  int post = !strcmp(method, "POST");
  int sent = MHD_YES;
  char line[256];
  if (!strcmp(url, "/health")) {
    if (!get) goto method;
    return api_route_health(a, c, q);
  }
  if (!strcmp(url, "/metrics")) {
    if (!get) goto method;
    return route_metrics(a, c, q);
  }
  if (!strncmp(url, "/v1/", 4)) {
    if (authorise(a, c, q, &sent)) return sent;
    const char *r = url + 4;
    if (a->cfg.backend) {
      if (!strcmp(r, "models")) {
        if (!get) goto method;
        return api_route_models(a, c, q);
      }
      if (!strcmp(r, "completions") || !strcmp(r, "chat/completions")) {
        if (!post) goto method;
        return api_route_completion(
            a, c, q,
            r[0] == 'c' && r[1] == 'h' ? PX_API_CHAT : PX_API_COMPLETION);
      }
    }
    if (a->cfg.node && !strncmp(r, "jobs", 4)) {
      const char *id = r + 4;
      if (!*id) {
        if (post) return api_route_jobs_post(a, c, q);
        if (get) return api_route_simple(a, c, q, "job_list");
        goto method;
      }
      if (*id++ != '/') goto notfound;
      const char *slash = strchr(id, '/');
      size_t il = slash ? (size_t)(slash - id) : strlen(id);
      char hex[65];
      if (il != 64) goto notfound;
      memcpy(hex, id, 64);
      hex[64] = 0;
      if (!api_is_hex(hex, 64)) goto notfound;
      if (!get) goto method;
      if (!slash)
        snprintf(line, sizeof line, "job_status %s", hex);
      else if (!strcmp(slash, "/result"))
        snprintf(line, sizeof line, "job_result %s", hex);
      else
        goto notfound;
      return api_route_simple(a, c, q, line);
    }
    goto notfound;
  }
  if (!a->cfg.node) goto notfound;
  /* the explorer: static files at /, /jobs, /upow/epochs (static.c) */
  int ex = api_route_explorer(a, c, q, url, method);
  if (ex != -1) return ex;
  if (!strcmp(url, "/chain/status")) {
    if (!get) goto method;
    return api_route_simple(a, c, q, "chain");
  }
  if (!strcmp(url, "/chain/blocks")) {
    if (!get) goto method;
    return api_route_blocks(a, c, q);
  }
  if (!strncmp(url, "/chain/blocks/", 14)) {
    uint64_t h;
    if (px_parse_u64(url + 14, &h) || !h) goto notfound;
    if (!get) goto method;
    snprintf(line, sizeof line, "block %llu", (unsigned long long)h);
    return api_route_simple(a, c, q, line);
  }
  if (!strncmp(url, "/chain/tx/", 10)) {
    if (!api_is_hex(url + 10, 64)) goto notfound;
    if (!get) goto method;
    snprintf(line, sizeof line, "txstatus %s", url + 10);
    return api_route_simple(a, c, q, line);
  }
  if (!strncmp(url, "/chain/accounts/", 16)) {
    static const char *const allowed[] = {"prove", NULL};
    if (!api_is_hex(url + 16, 64)) goto notfound;
    if (!get) goto method;
    if (api_check_query(c, q, allowed, &sent)) return sent;
    char pv[8] = "";
    int rc = px_api_query_get(q->query, "prove", pv, sizeof pv);
    if (rc && rc != PX_ENOTFOUND)
      return api_send_error(c, q, 400, "invalid_query", "prove must be 0 or 1");
    int prove = !rc && (!strcmp(pv, "1") || !strcmp(pv, "true"));
    if (!rc && !prove && strcmp(pv, "0") && strcmp(pv, "false"))
      return api_send_error(c, q, 400, "invalid_query", "prove must be 0 or 1");
    snprintf(line, sizeof line, "account %s%s", url + 16,
             prove ? " prove" : "");
    return api_route_simple(a, c, q, line);
  }
  if (!strcmp(url, "/providers")) {
    if (!get) goto method;
    return api_route_simple(a, c, q, "providers");
  }
  if (!strcmp(url, "/upow")) {
    if (!get) goto method;
    return api_route_simple(a, c, q, "upow");
  }
notfound:
  return api_send_error(c, q, 404, "unknown_route",
                        "no route %s %s (docs/api.md)", method, url);
method:
  return api_send_error(c, q, 405, "method_not_allowed",
                        "%s is not allowed on %s", method, url);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)cls;
  (void)c;
  req_t *q = px_calloc(1, sizeof *q);
  if (!q) return NULL;
  const char *qm = strchr(uri, '?');
  const char *qs = qm ? qm + 1 : "";
  size_t n = strlen(qs);
  if (!(q->query = px_malloc(n + 1))) {
    px_free(q);
    return NULL;
  }
  memcpy(q->query, qs, n + 1);
  q->t0_ns = px_time_mono_ns();
  return q;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  px_api_t *a = cls;
  req_t *q = *con_cls;
  if (!q) return MHD_NO; /* out of memory in on_uri */
  if (q->answered) {     /* a response is queued; swallow the rest */
    *upload_size = 0;
    return MHD_YES;
  }
  if (!q->body.max) { /* first call: headers only */
    px_buf_init(&q->body, a->cfg.max_body);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    uint64_t len;
    if (cl && (px_parse_u64(cl, &len) || len > a->cfg.max_body))
      return api_send_error(c, q, 413, "request_too_large",
                            "the request body is larger than %zu bytes",
                            a->cfg.max_body);
    return MHD_YES;
  }
  if (*upload_size) {
    if (!q->too_big && px_buf_append(&q->body, upload, *upload_size))
      q->too_big = 1;
    *upload_size = 0;
    return MHD_YES;
  }
  if (q->too_big)
    return api_send_error(c, q, 413, "request_too_large",
                          "the request body is larger than %zu bytes",
                          a->cfg.max_body);
  if (atomic_load(&a->closing))
    return api_send_error(c, q, 503, "unavailable", "the server is stopping");
  return route(a, c, q, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)c;
  (void)toe;
  px_api_t *a = cls;
  req_t *q = *con_cls;
  if (!q) return;
  double secs = (double)(px_time_mono_ns() - q->t0_ns) * 1e-9;
  pthread_mutex_lock(&a->mu);
  if (q->status >= 100 && q->status < 600)
    a->requests_by_class[q->status / 100]++;
  int b = 0;
  while (b < N_BUCKETS && secs > k_bucket_s[b])
    b++;
  a->lat_buckets[b]++;
  a->lat_sum += secs;
  a->lat_count++;
  pthread_mutex_unlock(&a->mu);
  px_buf_release(&q->body);
  px_free(q->query);
  px_free(q);
  *con_cls = NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

int px_api_open(const px_api_config_t *cfg, px_api_t **out, char *errmsg,
                size_t errcap) {
  *out = NULL;
  errmsg[0] = 0;
  if (!cfg->listen || (!cfg->backend && !cfg->node) ||
      (cfg->node && !cfg->command)) {
    snprintf(errmsg, errcap, "api: a listen address and a role are needed");
    return PX_ECONFIG;
  }
  px_api_t *a = px_calloc(1, sizeof *a);
  if (!a) return PX_ENOMEM;
  a->cfg = *cfg;
  snprintf(a->listen, sizeof a->listen, "%s", cfg->listen);
  a->cfg.listen = a->listen;
  if (!a->cfg.max_body) a->cfg.max_body = 1u << 20;
  if (!a->cfg.max_streams) a->cfg.max_streams = 8;
  if (!a->cfg.max_connections) a->cfg.max_connections = 64;
  if (!a->cfg.idle_timeout_s) a->cfg.idle_timeout_s = 30;
  if (!a->cfg.call_timeout_ms) a->cfg.call_timeout_ms = 10000;
  a->cfg.home = NULL;
  pthread_mutex_init(&a->mu, NULL);
  if (cfg->home) {
    int rc = px_api_keys_load(cfg->home, &a->keys);
    if (rc && rc != PX_ENOENT) {
      snprintf(errmsg, errcap, "cannot load %s/%s: %s", cfg->home,
               PX_API_KEYS_FILE, px_strerror(rc));
      px_api_free(a);
      return rc;
    }
  }
  *out = a;
  return 0;
}

int px_api_start(px_api_t *a, char *errmsg, size_t errcap) {
  errmsg[0] = 0;
  char host[128];
  snprintf(host, sizeof host, "%s", a->listen);
  char *colon = strrchr(host, ':');
  uint64_t port;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  if (!colon || (*colon++ = 0, px_parse_u64(colon, &port)) || port > 65535 ||
      inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
    snprintf(errmsg, errcap,
             "the HTTP address '%s' must be a numeric IPv4 host:port, e.g. "
             "127.0.0.1:8080",
             a->listen);
    return PX_ECONFIG;
  }
  sin.sin_port = htons((uint16_t)port);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
  a->d = MHD_start_daemon(
      flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)a->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)a->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, a, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u, MHD_OPTION_END);
  if (!a->d) {
    snprintf(errmsg, errcap,
             "cannot serve HTTP on %s (is another program using it?)",
             a->listen);
    return PX_ENET;
  }
  const union MHD_DaemonInfo *inf =
      MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
  snprintf(a->addr, sizeof a->addr, "%s:%u", host,
           inf ? (unsigned)inf->port : (unsigned)port);
  PX_LOGI(LOGMOD, "HTTP API on http://%s (%s%s)", a->addr,
          a->cfg.backend ? "inference" : "",
          a->cfg.node ? (a->cfg.backend ? ", node" : "node") : "");
  return 0;
}

const char *px_api_address(const px_api_t *a) { return a->addr; }

void px_api_stop(px_api_t *a) {
  if (!a) return;
  atomic_store(&a->closing, 1);
  if (a->d) {
    MHD_stop_daemon(a->d);
    a->d = NULL;
  }
}

void px_api_free(px_api_t *a) {
  if (!a) return;
  px_api_stop(a);
  px_api_keys_free(a->keys);
  pthread_mutex_destroy(&a->mu);
  px_free(a);
}
