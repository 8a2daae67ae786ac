/*
 * bench_gateway.c — the HTTP gateway's figures (issue 7 "Benchmark",
 * docs/bench.md).
 *
 *   build/bench/bench_gateway [--quick] [--only http|tokens] [--mode
 *                             serve|devnet|both] [--keep]
 *
 * 1. http: GET /chain/status requests/s and latency with wrk (Debian's
 *    package, run as a subprocess) against the gateway of a devnet node:
 *    `plexus devnet up --validators 1`, node0 restarted with api.http set.
 *    Every /chain/status crosses from the connection thread to the node's
 *    loop thread (px_node_call) and back.  Reference, same run, same wrk
 *    settings: a bare libmicrohttpd server in this process, in the
 *    gateway's threading mode (a thread per connection), answering a fixed
 *    body of the same size — what the HTTP library alone does on this
 *    machine.  Ratio = /chain/status / bare.  /health (also through the
 *    node's loop) is printed for context.  No goal: the ratio says what the
 *    gateway's own work costs.
 * 2. tokens: streamed completions through the gateway against `plexus
 *    generate` on the same model in the same run (alternating, median of
 *    7; 3 with --quick; a non-streamed completion too, for context).  The model
 * is a seeded llama2.c checkpoint of stories15M's shape (dim 288, 6 layers, 6
 * heads, hidden 768, vocab 32,000, context 256; random weights: speed does not
 * depend on them) with a matching synthetic tokenizer, both written by the
 * bench
 *    (--quick: context 128).
 *    Reference tokens/s = generated tokens / generation seconds as `plexus
 *    generate` prints them (model load excluded); gateway tokens/s =
 *    completion tokens (usage) / the request's wall time from connect to
 *    the last byte.  Goal: ratio >= 0.9.  At temperature 0 the streamed
 *    text must equal generate's (checked).  Then 8 concurrent streams
 *    (rounds of 8 requests started together, 64 tokens each; 3 rounds, 1
 *    with --quick): time to first token p50 / p99 over every request, and
 *    the aggregate tokens/s.
 *    Targets (one function each, target_serve / target_devnet): `plexus
 *    serve` (local backend, always), and a devnet gateway (`plexus devnet
 *    up --validators 1 --providers 1`, the model registered on node0 with
 *    `plexus model add`, node0 restarted with api.http; inference sessions
 *    on the provider, which has 8 slots; api.audit = 0).  The devnet target
 *    is reported NOT MEASURED (not a failure, unless --mode devnet) when it
 *    cannot run: this build cannot register models, or its sessions fail.
 * Exit status 0 when measured (a goal NOT MET is a result), 1 when a
 * figure could not be measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/node.h"
#include "base/px_internal.h"

static char g_tmp[256];
static int g_keep;
static int g_quick;

/* ---- processes ----------------------------------------------------------- */

/* Run PX_BIN args... to completion; stdout to out_path (NULL: /dev/null),
 * stderr to err_path (NULL: /dev/null).  Exit status or -1. */
static int run_plexus(const char *const *args, const char *out_path,
                      const char *err_path) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const char *argv[40];
    size_t n = 0;
    argv[n++] = PX_BIN;
    for (; args[n - 1] && n < 39; n++)
      argv[n] = args[n - 1];
    argv[n] = NULL;
    int o = open(out_path ? out_path : "/dev/null",
                 O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_path ? err_path : "/dev/null",
                 O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o >= 0) dup2(o, 1);
    if (e >= 0) dup2(e, 2);
    execv(PX_BIN, (char *const *)argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start prog argv in the background, output to log; pid or -1. */
static pid_t spawn(const char *prog, const char *const *argv, const char *log) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setsid();
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(prog, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static void stop_pid(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static char *read_text(const char *path) {
  uint8_t *d = NULL;
  size_t n;
  if (px_file_read_all(path, 64u << 20, &d, &n)) return NULL;
  char *s = px_malloc(n + 1);
  if (s) {
    memcpy(s, d, n);
    s[n] = 0;
  }
  px_free(d);
  return s;
}

/* ---- HTTP client --------------------------------------------------------- */

static int http_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct timeval tv = {120, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) {
    close(s);
    return -1;
  }
  return s;
}

/* memmem (not in C11 / POSIX). */
static const char *find(const char *h, size_t hn, const char *n, size_t nn) {
  for (size_t i = 0; i + nn <= hn; i++)
    if (h[i] == n[0] && !memcmp(h + i, n, nn)) return h + i;
  return NULL;
}

static int send_all(int s, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(s, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

typedef struct {
  int status;
  px_buf_t raw;     /* the whole response as received */
  px_buf_t body;    /* de-chunked */
  double t_first_s; /* first SSE event ("data: ") after connect; 0: none */
  double t_total_s; /* connect to EOF */
} hresp_t;

static void hresp_release(hresp_t *r) {
  px_buf_release(&r->raw);
  px_buf_release(&r->body);
}

/* One request ("Connection: close"), read to EOF; the moment the first
 * "data: " arrives is recorded (time to first token of a stream). */
static int http_do(int port, const char *method, const char *path,
                   const char *key, const char *body, hresp_t *r) {
  memset(r, 0, sizeof *r);
  px_buf_init(&r->raw, 64u << 20);
  px_buf_init(&r->body, 64u << 20);
  uint64_t t0 = px_time_mono_ns();
  int s = http_connect(port);
  if (s < 0) return -1;
  char head[1024];
  size_t bl = body ? strlen(body) : 0;
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    method, path, key ? "Authorization: Bearer " : "",
                    key ? key : "", key ? "\r\n" : "", bl);
  int rc = send_all(s, head, (size_t)hn);
  if (!rc && bl) rc = send_all(s, body, bl);
  char buf[16384];
  size_t body_at = 0;
  while (!rc) {
    ssize_t got = recv(s, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (px_buf_append(&r->raw, buf, (size_t)got)) rc = -1;
    if (!r->t_first_s) {
      const char *d = (const char *)r->raw.data;
      if (!body_at) {
        const char *e = find(d, r->raw.len, "\r\n\r\n", 4);
        if (e) body_at = (size_t)(e - d) + 4;
      }
      if (body_at && find(d + body_at, r->raw.len - body_at, "data: ", 6))
        r->t_first_s = (double)(px_time_mono_ns() - t0) * 1e-9;
    }
  }
  r->t_total_s = (double)(px_time_mono_ns() - t0) * 1e-9;
  close(s);
  if (rc || r->raw.len < 12 || memcmp(r->raw.data, "HTTP/1.1 ", 9)) return -1;
  r->status = atoi((const char *)r->raw.data + 9);
  const char *d = (const char *)r->raw.data;
  const char *e = find(d, r->raw.len, "\r\n\r\n", 4);
  if (!e) return -1;
  *(char *)e = 0; /* headers end */
  const char *p = e + 4, *end = d + r->raw.len;
  int chunked = strstr(d, "chunked") != NULL;
  *(char *)e = '\r';
  if (!chunked) return px_buf_append(&r->body, p, (size_t)(end - p)) ? -1 : 0;
  while (p < end) {
    char *nx;
    unsigned long cl = strtoul(p, &nx, 16);
    const char *crlf = find(p, (size_t)(end - p), "\r\n", 2);
    if (!crlf || cl == 0) break;
    p = crlf + 2;
    if (cl > (size_t)(end - p)) cl = (unsigned long)(end - p);
    if (px_buf_append(&r->body, p, cl)) return -1;
    p += cl + 2;
  }
  return 0;
}

/* ---- wrk ----------------------------------------------------------------- */

typedef struct {
  double rps, p50_ms, p99_ms;
  long long non2xx, errors;
} wrk_res_t;

/* wrk's "50%    1.23ms" style value in ms. */
static double wrk_ms(const char *s, const char *label) {
  /* in the --latency table: "Thread Stats" above also has "NN.NN%" */
  const char *p = strstr(s, "Latency Distribution");
  p = p ? strstr(p, label) : NULL;
  if (!p) return -1;
  p += strlen(label);
  char *e;
  double v = strtod(p, &e);
  if (e == p) return -1;
  if (!strncmp(e, "us", 2)) return v / 1000.0;
  if (!strncmp(e, "ms", 2)) return v;
  if (!strncmp(e, "s", 1)) return v * 1000.0;
  if (!strncmp(e, "m", 1)) return v * 60000.0;
  return -1;
}

static int run_wrk(int port, const char *path, int secs, wrk_res_t *w) {
  memset(w, 0, sizeof *w);
  char url[128], dur[16], out[400];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  snprintf(dur, sizeof dur, "%ds", secs);
  snprintf(out, sizeof out, "%s/wrk.out", g_tmp);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execlp("wrk", "wrk", "-t2", "-c16", "-d", dur, "--latency", url,
           (char *)NULL);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  char *s = read_text(out);
  int rc = -1;
  if (s && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    const char *p = strstr(s, "Requests/sec:");
    if (p) {
      w->rps = strtod(p + 13, NULL);
      w->p50_ms = wrk_ms(s, " 50% ");
      w->p99_ms = wrk_ms(s, " 99% ");
      p = strstr(s, "Non-2xx or 3xx responses:");
      if (p) w->non2xx = strtoll(p + 25, NULL, 10);
      p = strstr(s, "Socket errors:");
      if (p) w->errors = 1;
      rc = w->rps > 0 ? 0 : -1;
    }
  }
  if (rc)
    fprintf(stderr, "bench_gateway: wrk %s failed:\n%s\n", url, s ? s : "");
  px_free(s);
  return rc;
}

/* ---- the bare libmicrohttpd reference ------------------------------------ */

static char *g_bare_body;
static size_t g_bare_len;

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_size, void **con_cls) {
  (void)cls, (void)url, (void)method, (void)version, (void)upload;
  (void)upload_size;
  if (!*con_cls) { /* headers only: come back for the body */
    *con_cls = (void *)1;
    return MHD_YES;
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(
      g_bare_len, g_bare_body, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

/* The gateway's daemon flags and limits (src/api/api.c), nothing else. */
static struct MHD_Daemon *bare_start(int *port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d =
      MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
                       0, NULL, NULL, bare_handler, NULL, MHD_OPTION_SOCK_ADDR,
                       (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT,
                       64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                       MHD_OPTION_LISTEN_BACKLOG_SIZE, 128u, MHD_OPTION_END);
  if (!d) return NULL;
  const union MHD_DaemonInfo *inf =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  *port = inf ? inf->port : 0;
  return d;
}

/* ---- devnet -------------------------------------------------------------- */

static char g_dn[300];

static void devnet_down(void) {
  if (!g_dn[0]) return;
  const char *a[] = {"devnet", "down", "--home", g_dn, NULL};
  run_plexus(a, NULL, NULL);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dn);
  if (!g_keep && system(cmd)) {
  }
  g_dn[0] = 0;
}

static int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
      getsockname(s, (struct sockaddr *)&a, &al)) {
    if (s >= 0) close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

/* Up: a devnet of `validators` validators and `providers` providers. */
static int devnet_up(int validators, int providers) {
  /* a new directory each time: `devnet up` on an old one restarts it */
  static int seq;
  snprintf(g_dn, sizeof g_dn, "%s/devnet%d", g_tmp, seq++);
  char v[8], p[8];
  snprintf(v, sizeof v, "%d", validators);
  snprintf(p, sizeof p, "%d", providers);
  /* 8 slots: the 8 concurrent streams all run on the one provider */
  const char *up[] = {
      "devnet",           "up", "--validators", v,    "--providers", p,
      "--provider-slots", "8",  "--home",       g_dn, NULL};
  const char *up0[] = {"devnet", "up", "--validators", v, "--home", g_dn, NULL};
  char log[400];
  snprintf(log, sizeof log, "%s/devnet-up.log", g_tmp);
  if (run_plexus(providers ? up : up0, log, log)) {
    char *s = read_text(log);
    fprintf(stderr, "bench_gateway: devnet up failed:\n%s\n", s ? s : "");
    px_free(s);
    return -1;
  }
  return 0;
}

/* Stop node `i`, run `prep` (NULL: nothing) on its home, add api.http to
 * its config (and the extra config lines), restart it with `devnet up`.
 * The HTTP port, or -1. */
static int devnet_http(int i, int (*prep)(const char *home),
                       const char *extra) {
  char dir[400], pidp[450], cfgp[450];
  snprintf(dir, sizeof dir, "%s/node%d", g_dn, i);
  snprintf(pidp, sizeof pidp, "%s/node.pid", dir);
  snprintf(cfgp, sizeof cfgp, "%s/config", dir);
  char *pd = read_text(pidp);
  long pid = pd ? strtol(pd, NULL, 10) : 0;
  px_free(pd);
  if (pid <= 0) return -1;
  kill((pid_t)pid, SIGTERM);
  for (int k = 0; k < 400 && kill((pid_t)pid, 0) == 0; k++)
    usleep(25000);
  if (prep && prep(dir)) return -1;
  int port = free_port();
  FILE *f = fopen(cfgp, "a");
  if (!f || port <= 0) {
    if (f) fclose(f);
    return -1;
  }
  fprintf(f, "api.http = \"127.0.0.1:%d\"\n%s", port, extra ? extra : "");
  fclose(f);
  const char *up[] = {"devnet", "up", "--home", g_dn, NULL};
  char log[400];
  snprintf(log, sizeof log, "%s/devnet-restart.log", g_tmp);
  if (run_plexus(up, log, log)) {
    char *s = read_text(log);
    fprintf(stderr, "bench_gateway: devnet restart failed:\n%s\n", s ? s : "");
    px_free(s);
    return -1;
  }
  return port;
}

/* GET path until 200 (and, with min_height, "height" >= it). */
static int wait_route(int port, const char *path, const char *key,
                      long long min_height, int timeout_ms) {
  uint64_t t0 = px_time_mono_ms();
  while (px_time_mono_ms() - t0 < (uint64_t)timeout_ms) {
    hresp_t r;
    int ok = http_do(port, "GET", path, key, NULL, &r) == 0 && r.status == 200;
    if (ok && min_height > 0) {
      px_buf_append(&r.body, "", 1);
      const char *h = strstr((const char *)r.body.data, "\"height\":");
      ok = h && strtoll(h + 9, NULL, 10) >= min_height;
    }
    hresp_release(&r);
    if (ok) return 0;
    usleep(100000);
  }
  return -1;
}

/* ---- 1. /chain/status with wrk ------------------------------------------- */

static int bench_http(void) {
  int secs = g_quick ? 2 : 5;
  if (system("command -v wrk >/dev/null 2>&1")) {
    fprintf(stderr, "bench_gateway: wrk is not installed (make deps / "
                    "scripts/install-deps installs Debian's wrk)\n");
    return -1;
  }
  if (devnet_up(1, 0)) return -1;
  int port = devnet_http(0, NULL, NULL);
  if (port <= 0 || wait_route(port, "/chain/status", NULL, 2, 60000)) {
    fprintf(stderr,
            "bench_gateway: node0's gateway never answered "
            "/chain/status (see %s/node0/node.log)\n",
            g_dn);
    return -1;
  }
  hresp_t r;
  if (http_do(port, "GET", "/chain/status", NULL, NULL, &r) || r.status != 200)
    return -1;
  g_bare_len = r.body.len;
  g_bare_body = px_malloc(g_bare_len);
  if (!g_bare_body) return -1;
  memcpy(g_bare_body, r.body.data, g_bare_len);
  hresp_release(&r);
  printf("  devnet: 1 validator, node0 with --http; wrk -t2 -c16 -d%ds "
         "(keep-alive), reply %zu bytes\n",
         secs, g_bare_len);
  fflush(stdout);
  int bport = 0;
  struct MHD_Daemon *d = bare_start(&bport);
  if (!d) return -1;
  wrk_res_t cs, hl, b1, b2;
  /* the reference before and after: the machine's drift shows */
  int rc = run_wrk(bport, "/", secs, &b1);
  if (!rc) rc = run_wrk(port, "/chain/status", secs, &cs);
  if (!rc) rc = run_wrk(port, "/health", secs, &hl);
  if (!rc) rc = run_wrk(bport, "/", secs, &b2);
  MHD_stop_daemon(d);
  px_free(g_bare_body);
  g_bare_body = NULL;
  devnet_down();
  if (rc) return -1;
  double ref = (b1.rps + b2.rps) / 2;
  printf("  bare libmicrohttpd, same size   %8.0f req/s  p50 %.2f ms  p99 "
         "%.2f ms (runs %.0f, %.0f)\n",
         ref, (b1.p50_ms + b2.p50_ms) / 2, (b1.p99_ms + b2.p99_ms) / 2, b1.rps,
         b2.rps);
  printf("  GET /health (node loop)         %8.0f req/s  p50 %.2f ms  p99 "
         "%.2f ms%s\n",
         hl.rps, hl.p50_ms, hl.p99_ms, hl.non2xx ? "  NON-2xx SEEN" : "");
  printf("  GET /chain/status (node loop)   %8.0f req/s  p50 %.2f ms  p99 "
         "%.2f ms%s\n",
         cs.rps, cs.p50_ms, cs.p99_ms, cs.non2xx ? "  NON-2xx SEEN" : "");
  printf("  ratio /chain/status / bare      %8.3f   (no goal: the cost of "
         "the node round trip and JSON)\n",
         cs.rps / ref);
  fflush(stdout);
  return cs.non2xx || hl.non2xx ? -1 : 0;
}

/* ---- the model ------------------------------------------------------------
 */

/* stories15M's shape, seeded random weights, a shared classifier whose
 * rows for BOS and the byte tokens are zero (so greedy decoding never ends
 * the sequence and every token is printable text). */
#define M_D 288
#define M_HID 768
#define M_L 6
#define M_NH 6
#define M_V 32000

static int put_floats(FILE *f, px_rng_t *r, size_t n, float scale, float base) {
  float buf[1024];
  while (n) {
    size_t k = n < 1024 ? n : 1024;
    for (size_t i = 0; i < k; i++)
      buf[i] = base + ((float)(px_rng_next(r) >> 40) * 0x1p-23f - 1.0f) * scale;
    if (fwrite(buf, 4, k, f) != k) return -1;
    n -= k;
  }
  return 0;
}

static int write_model(const char *path, int seq_len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  const size_t D = M_D, H = M_HID, L = M_L, V = M_V, HS = M_D / M_NH;
  int32_t hdr[7] = {M_D, M_HID, M_L, M_NH, M_NH, M_V, seq_len};
  px_rng_t r;
  px_rng_seed(&r, 15);
  int rc = fwrite(hdr, sizeof hdr, 1, f) == 1 ? 0 : -1;
  float zero[M_D] = {0};
  for (size_t t = 0; t < V && !rc; t++) /* embedding == classifier */
    rc = (t == 1 || (t >= 3 && t < 259)) ? (fwrite(zero, 4, D, f) == D ? 0 : -1)
                                         : put_floats(f, &r, D, 1.0f, 0);
  rc |= put_floats(f, &r, L * D, 0.2f, 1.0f); /* rms_att */
  for (int k = 0; k < 4; k++)                 /* wq wk wv wo */
    rc |= put_floats(f, &r, L * D * D, 0.1f, 0);
  rc |= put_floats(f, &r, L * D, 0.2f, 1.0f);              /* rms_ffn */
  rc |= put_floats(f, &r, L * H * D, 0.1f, 0);             /* w1 */
  rc |= put_floats(f, &r, L * D * H, 0.06f, 0);            /* w2 */
  rc |= put_floats(f, &r, L * H * D, 0.1f, 0);             /* w3 */
  rc |= put_floats(f, &r, D, 0.2f, 1.0f);                  /* rms_final */
  for (size_t i = 0; i < (size_t)seq_len * HS && !rc; i++) /* freq_cis */
    rc = fwrite(zero, 4, 1, f) == 1 ? 0 : -1;
  if (fclose(f)) rc = -1;
  return rc ? -1 : 0;
}

static int put_token(FILE *f, float score, const char *s, size_t n) {
  int32_t len = (int32_t)n;
  return fwrite(&score, 4, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 &&
                 fwrite(s, 1, n, f) == n
             ? 0
             : -1;
}

/* llama2.c's specials, the 256 byte tokens, printable ASCII, then
 * distinct synthetic words ("qbxa", " qbxa", ...) up to M_V. */
static int write_tokenizer(const char *path) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int32_t maxlen = 16;
  int rc = fwrite(&maxlen, 4, 1, f) == 1 ? 0 : -1;
  rc |= put_token(f, 0, "<unk>", 5);
  rc |= put_token(f, 0, "\n<s>\n", 5);
  rc |= put_token(f, 0, "\n</s>\n", 6);
  for (int b = 0; b < 256; b++) {
    char s[8];
    snprintf(s, sizeof s, "<0x%02X>", b);
    rc |= put_token(f, 0, s, 6);
  }
  for (int ch = 0x20; ch < 0x7f; ch++) {
    char s = (char)ch;
    rc |= put_token(f, -1.0f, &s, 1);
  }
  for (int i = 0; i < M_V - 259 - 95 && !rc; i++) {
    char w[8];
    int n = 0, k = i / 2;
    if (i % 2) w[n++] = ' ';
    for (int j = 0; j < 4; j++, k /= 26)
      w[n++] = (char)('a' + k % 26);
    rc = put_token(f, (float)i, w, (size_t)n);
  }
  if (fclose(f)) rc = -1;
  return rc ? -1 : 0;
}

/* ---- targets --------------------------------------------------------------
 * A target is an OpenAI-compatible endpoint serving the bench model as
 * "bench": its port, the API key to send (if any), and what to stop. */

typedef struct {
  const char *label;
  int port;
  char key[80];
  pid_t pid;  /* a process to stop, or 0 */
  int devnet; /* g_dn to take down */
} target_t;

static int g_model_seq;
static char g_model[400], g_tok[400];

static int target_serve(target_t *t) {
  memset(t, 0, sizeof *t);
  t->label = "plexus serve (local backend)";
  char log[400];
  snprintf(log, sizeof log, "%s/serve.log", g_tmp);
  const char *argv[] = {PX_BIN,        "serve",       "--model", g_model,
                        "--tokenizer", g_tok,         "--name",  "bench",
                        "--http",      "127.0.0.1:0", NULL};
  t->pid = spawn(PX_BIN, argv, log);
  if (t->pid <= 0) return -1;
  for (int i = 0; i < 600 && !t->port; i++) {
    char *s = read_text(log);
    const char *p = s ? strstr(s, "on http://") : NULL;
    if (p && (p = strchr(p + 10, ':'))) t->port = atoi(p + 1);
    px_free(s);
    if (!t->port) usleep(50000);
  }
  if (!t->port) {
    fprintf(stderr, "bench_gateway: plexus serve did not start (%s)\n", log);
    return -1;
  }
  return 0;
}

/* node0's home: register the model and make a key (before its restart). */
static char g_key[80];
static int devnet_prep_gateway(const char *home) {
  const char *add[] = {"model",       "add",   "--home",  home,
                       "--name",      "bench", "--model", g_model,
                       "--tokenizer", g_tok,   NULL};
  char log[400], out[400];
  snprintf(log, sizeof log, "%s/model-add.log", g_tmp);
  if (run_plexus(add, log, log)) {
    char *s = read_text(log);
    printf("  devnet target skipped: `plexus model add` failed: %.300s\n",
           s ? s : "");
    px_free(s);
    return -1;
  }
  snprintf(out, sizeof out, "%s/key.out", g_tmp);
  const char *kn[] = {"gateway", "key", "new", "--home", home, NULL};
  if (run_plexus(kn, out, NULL)) return -1;
  char *s = read_text(out);
  if (!s || strncmp(s, "pxk-", 4)) {
    px_free(s);
    return -1;
  }
  snprintf(g_key, sizeof g_key, "%.*s", (int)strcspn(s, "\n"), s);
  px_free(s);
  return 0;
}

/* A devnet gateway: 1 validator + 1 provider; node0 (the validator) holds
 * the model and serves HTTP; generation runs as inference sessions on the
 * provider (no audits: api.audit = 0, the figure is the serving path). */
static int target_devnet(target_t *t) {
  memset(t, 0, sizeof *t);
  t->label = "devnet gateway (1 provider)";
  if (devnet_up(1, 1)) return -1;
  t->devnet = 1;
  int port = devnet_http(0, devnet_prep_gateway, "api.audit = 0\n");
  if (port <= 0) return -1;
  snprintf(t->key, sizeof t->key, "%s", g_key);
  t->port = port;
  if (wait_route(port, "/v1/models", t->key, 0, 60000)) {
    fprintf(stderr,
            "bench_gateway: the devnet gateway never listed its "
            "models (see %s/node0/node.log)\n",
            g_dn);
    return -1;
  }
  return 0;
}

static void target_down(target_t *t) {
  stop_pid(t->pid);
  t->pid = 0;
  if (t->devnet) devnet_down();
  t->devnet = 0;
}

/* ---- 2. tokens/s ----------------------------------------------------------
 */

static const char *k_prompt = "Once upon a time";

/* `plexus generate`: generated tokens / generation seconds, and its text
 * after the prompt. */
static int ref_generate(int steps, int one_thread, double *tps,
                        px_buf_t *text) {
  char out[400], err[400], st[16];
  snprintf(out, sizeof out, "%s/gen.out", g_tmp);
  snprintf(err, sizeof err, "%s/gen.err", g_tmp);
  snprintf(st, sizeof st, "%d", steps);
  const char *a[] = {"generate", "--model",       g_model,  "--tokenizer",
                     g_tok,      "--prompt",      k_prompt, "--steps",
                     st,         "--temperature", "0",      NULL};
  if (one_thread) setenv("PLEXUS_THREADS", "1", 1);
  int st_rc = run_plexus(a, out, err);
  if (one_thread) unsetenv("PLEXUS_THREADS");
  if (st_rc) return -1;
  char *e = read_text(err), *o = read_text(out);
  int rc = -1;
  /* "T tokens (P prompt + G generated) in S s: R tokens/s": R = T / S
   * unrounded, so G / S = R x G / T. */
  const char *p = e ? strstr(e, " prompt + ") : NULL;
  const char *sp = e ? strstr(e, " tokens (") : NULL;
  if (p && o && sp) {
    char *q;
    long total = strtol(e, NULL, 10);
    long gen = strtol(p + 10, &q, 10);
    const char *in = strstr(q, " s: ");
    double rate = in ? strtod(in + 4, NULL) : 0;
    if (gen > 0 && total >= gen && rate > 0) {
      *tps = rate * (double)gen / (double)total;
      size_t pl = strlen(k_prompt), ol = strlen(o);
      /* generate prints the prompt, then the pieces, then "\n" */
      if (ol > pl && !strncmp(o, k_prompt, pl)) {
        px_buf_reset(text);
        rc = px_buf_append(text, o + pl, ol - pl - 1);
      }
    }
  }
  if (rc) fprintf(stderr, "bench_gateway: plexus generate failed: %s\n", e);
  px_free(e);
  px_free(o);
  return rc;
}

/* Concatenated "text" of a completion SSE body, and usage's
 * completion_tokens. */
static int sse_text(const px_buf_t *body, px_buf_t *text, long *ntok) {
  px_buf_reset(text);
  *ntok = -1;
  const char *p = (const char *)body->data, *end = p + body->len;
  int done = 0;
  while (p < end) {
    const char *e = find(p, (size_t)(end - p), "\n\n", 2);
    if (!e || strncmp(p, "data: ", 6)) return -1;
    if (!strncmp(p + 6, "[DONE]", 6)) {
      done = 1;
    } else {
      px_arena_t a;
      px_arena_init(&a, 4096, 1 << 20);
      px_json_t *v;
      if (px_json_parse(&a, p + 6, (size_t)(e - p - 6), NULL, &v, NULL)) {
        px_arena_release(&a);
        return -1;
      }
      const char *t;
      if (!px_json_get_str(px_json_at(px_json_get(v, "choices"), 0), "text",
                           &t))
        px_buf_append(text, t, strlen(t));
      const px_json_t *u = px_json_get(v, "usage");
      uint64_t ct;
      if (u && !px_json_as_u64(px_json_get(u, "completion_tokens"), &ct))
        *ntok = (long)ct;
      px_arena_release(&a);
    }
    p = e + 2;
  }
  return done && *ntok >= 0 ? 0 : -1;
}

/* choices[0].text and usage.completion_tokens of a non-streamed reply. */
static int plain_text(const px_buf_t *body, px_buf_t *text, long *ntok) {
  px_arena_t a;
  px_arena_init(&a, 4096, 16u << 20);
  px_json_t *v;
  const char *t;
  uint64_t ct;
  int rc = px_json_parse(&a, body->data, body->len, NULL, &v, NULL);
  if (!rc)
    rc = px_json_get_str(px_json_at(px_json_get(v, "choices"), 0), "text", &t);
  if (!rc)
    rc = px_json_as_u64(
        px_json_get(px_json_get(v, "usage"), "completion_tokens"), &ct);
  if (!rc) {
    px_buf_reset(text);
    rc = px_buf_append(text, t, strlen(t));
    *ntok = (long)ct;
  }
  px_arena_release(&a);
  return rc ? -1 : 0;
}

typedef struct {
  const target_t *t;
  int max_tokens;
  int plain; /* not streamed: one JSON reply */
  uint64_t seed;
  double ttft_s, total_s;
  long ntok;
  int ok;
  px_buf_t text;
} stream_job_t;

static void stream_once(stream_job_t *j) {
  char body[512];
  char mt[32] = "";
  if (j->max_tokens > 0)
    snprintf(mt, sizeof mt, ",\"max_tokens\":%d", j->max_tokens);
  snprintf(body, sizeof body,
           "{\"model\":\"bench\",\"prompt\":\"%s\",\"temperature\":0,"
           "\"seed\":%llu%s%s}",
           k_prompt, (unsigned long long)j->seed, mt,
           j->plain ? ""
                    : ",\"stream\":true,\"stream_options\":{"
                      "\"include_usage\":true}");
  hresp_t r;
  j->ok = 0;
  if (http_do(j->t->port, "POST", "/v1/completions",
              j->t->key[0] ? j->t->key : NULL, body, &r) == 0 &&
      r.status == 200 &&
      (j->plain ? plain_text(&r.body, &j->text, &j->ntok)
                : sse_text(&r.body, &j->text, &j->ntok)) == 0 &&
      (j->plain || r.t_first_s > 0)) {
    j->ok = 1;
    j->ttft_s = r.t_first_s;
    j->total_s = r.t_total_s;
  } else {
    /* one line: the status and how the body ends */
    char tail[160];
    size_t bl = r.body.len, k = bl > 150 ? bl - 150 : 0, n = 0;
    for (; k < bl && n + 1 < sizeof tail; k++) {
      char ch = (char)r.body.data[k];
      tail[n++] = ch == '\n' || ch == '\r' ? ' ' : ch;
    }
    tail[n] = 0;
    fprintf(stderr,
            "bench_gateway: a %s request failed: status %d, %zu bytes, "
            "%s; ends: ...%s\n",
            j->plain ? "plain" : "streamed", r.status, bl,
            find((const char *)r.body.data, bl, "[DONE]", 6) ? "[DONE] seen"
                                                             : "no [DONE]",
            tail);
  }
  hresp_release(&r);
}

static void *stream_thread(void *arg) {
  stream_once(arg);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The value at quantile q of v[0..n) (sorted in place), nearest rank. */
static double quantile(double *v, size_t n, double q) {
  qsort(v, n, sizeof *v, cmp_d);
  size_t k = (size_t)(q * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

static int bench_tokens(target_t *t, int (*start)(target_t *)) {
  int reps = g_quick ? 3 : 7;
  int rounds = g_quick ? 1 : 3;
  int conc_tokens = g_quick ? 32 : 64;
  int steps = g_model_seq; /* the whole context */
  if (start(t)) {
    target_down(t);
    return -1;
  }
  printf("  %s on 127.0.0.1:%d\n", t->label, t->port);
  fflush(stdout);
  double ref[9], ref1[9], gw[9], pl[9];
  px_buf_t rtext;
  px_buf_init(&rtext, 0);
  stream_job_t one;
  memset(&one, 0, sizeof one);
  px_buf_init(&one.text, 0);
  one.t = t;
  one.seed = 1;
  one.max_tokens = 8; /* warm-up: first touch of the weights and caches */
  stream_once(&one);
  one.max_tokens = 0;
  int rc = one.ok ? 0 : -1, same = 1;
  for (int i = 0; i < reps && !rc; i++) {
    rc = ref_generate(steps, 0, &ref[i], &rtext);
    if (!rc) rc = ref_generate(steps, 1, &ref1[i], &rtext);
    if (!rc) {
      stream_once(&one);
      rc = one.ok ? 0 : -1;
    }
    if (!rc) {
      gw[i] = (double)one.ntok / one.total_s;
      same &= one.text.len == rtext.len &&
              !memcmp(one.text.data, rtext.data, rtext.len);
      double ttft = one.ttft_s;
      one.plain = 1;
      stream_once(&one);
      one.plain = 0;
      rc = one.ok ? 0 : -1;
      if (!rc) {
        pl[i] = (double)one.ntok / one.total_s;
        same &= one.text.len == rtext.len &&
                !memcmp(one.text.data, rtext.data, rtext.len);
        printf("    run %d: plexus generate %.1f tokens/s (1 thread %.1f); "
               "gateway streamed %.1f tokens/s (%ld tokens, first after %.0f "
               "ms), not streamed %.1f tokens/s\n",
               i + 1, ref[i], ref1[i], gw[i], one.ntok, ttft * 1e3, pl[i]);
        fflush(stdout);
      }
    }
  }
  px_buf_release(&rtext);
  px_buf_release(&one.text);
  if (rc) {
    target_down(t);
    return -1;
  }
  double r_med = quantile(ref, (size_t)reps, 0.5),
         g_med = quantile(gw, (size_t)reps, 0.5),
         p_med = quantile(pl, (size_t)reps, 0.5),
         r1_med = quantile(ref1, (size_t)reps, 0.5);
  double ratio = g_med / r_med;
  printf("  plexus generate (median of %d)  %8.1f tokens/s\n", reps, r_med);
  printf("  through the gateway, streamed   %8.1f tokens/s  (text %s "
         "plexus generate's)\n",
         g_med, same ? "identical to" : "DIFFERS from");
  printf("  through the gateway, one reply  %8.1f tokens/s  (context: no "
         "per-token events)\n",
         p_med);
  printf("  ratio gateway / generate        %8.3f   goal >= 0.90: %s\n", ratio,
         ratio >= 0.9 ? "MET" : "NOT MET");
  printf("    context: plexus generate on 1 thread (PLEXUS_THREADS=1, as a "
         "provider's worker computes) %.1f tokens/s; gateway / that = %.3f\n",
         r1_med, g_med / r1_med);
  fflush(stdout);
  /* 8 concurrent streams */
  enum { NC = 8 };
  double ttft[NC * 3];
  size_t n_tt = 0;
  long tok_all = 0;
  double wall_all = 0;
  for (int r = 0; r < rounds && !rc; r++) {
    stream_job_t j[NC];
    pthread_t th[NC];
    int started[NC] = {0};
    uint64_t t0 = px_time_mono_ns();
    for (int i = 0; i < NC; i++) {
      memset(&j[i], 0, sizeof j[i]);
      j[i].t = t;
      j[i].max_tokens = conc_tokens;
      j[i].seed = (uint64_t)(r * NC + i + 1);
      px_buf_init(&j[i].text, 0);
      started[i] = pthread_create(&th[i], NULL, stream_thread, &j[i]) == 0;
    }
    for (int i = 0; i < NC; i++) {
      if (started[i]) pthread_join(th[i], NULL);
      if (j[i].ok) {
        ttft[n_tt++] = j[i].ttft_s * 1e3;
        tok_all += j[i].ntok;
      } else {
        rc = -1;
      }
      px_buf_release(&j[i].text);
    }
    wall_all += (double)(px_time_mono_ns() - t0) * 1e-9;
  }
  target_down(t);
  if (rc) {
    printf("  8 concurrent streams            FAILED (%zu of %d streams "
           "complete)\n",
           n_tt, rounds * NC);
    return -1;
  }
  double p50 = quantile(ttft, n_tt, 0.5), p99 = quantile(ttft, n_tt, 0.99);
  printf("  8 concurrent streams x %d tokens, %d round%s: time to first "
         "token p50 %.0f ms, p99 %.0f ms; %.1f tokens/s in all\n",
         conc_tokens, rounds, rounds == 1 ? "" : "s", p50, p99,
         (double)tok_all / wall_all);
  fflush(stdout);
  return same ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------
 */

int main(int argc, char **argv) {
  const char *only = NULL, *mode = "both";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      g_quick = 1;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "http") || !strcmp(argv[i + 1], "tokens")))
      only = argv[++i];
    else if (!strcmp(argv[i], "--mode") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "serve") || !strcmp(argv[i + 1], "devnet") ||
              !strcmp(argv[i + 1], "both")))
      mode = argv[++i];
    else if (!strcmp(argv[i], "--keep"))
      g_keep = 1;
    else {
      fprintf(stderr, "usage: bench_gateway [--quick] [--only http|tokens] "
                      "[--mode serve|devnet|both] [--keep]\n");
      return 1;
    }
  }
  if (px_crypto_init()) return 1;
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_tmp, sizeof g_tmp, "/tmp/plexus-bench-gateway-XXXXXX");
  if (!mkdtemp(g_tmp)) return 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("bench_gateway: HTTP gateway, %ld cores%s\n", cores,
         g_quick ? " (quick)" : "");
  fflush(stdout);
  int failed = 0;
  if (!only || !strcmp(only, "http")) {
    if (bench_http()) {
      printf("  /chain/status with wrk          FAILED\n");
      failed = 1;
    }
    devnet_down();
  }
  if (!only || !strcmp(only, "tokens")) {
    g_model_seq = g_quick ? 128 : 256;
    snprintf(g_model, sizeof g_model, "%s/bench15m.bin", g_tmp);
    snprintf(g_tok, sizeof g_tok, "%s/tokenizer.bin", g_tmp);
    if (write_model(g_model, g_model_seq) || write_tokenizer(g_tok)) {
      printf("  cannot write the model          FAILED\n");
      failed = 1;
    } else {
      printf("  model: llama2.c, dim %d, %d layers, %d heads, hidden %d, "
             "vocab %d, context %d (seeded random weights, f32)\n",
             M_D, M_L, M_NH, M_HID, M_V, g_model_seq);
      fflush(stdout);
      target_t t;
      if (strcmp(mode, "devnet") && bench_tokens(&t, target_serve)) {
        printf("  tokens through plexus serve     FAILED\n");
        failed = 1;
      }
      if (strcmp(mode, "serve")) {
        int r = bench_tokens(&t, target_devnet);
        if (r) printf("  devnet gateway: NOT every figure measured (above)\n");
        /* Until the network backend exists the devnet target may be
         * missing: only an explicit --mode devnet makes that a failure. */
        if (r && !strcmp(mode, "devnet")) failed = 1;
      }
      devnet_down();
    }
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  if (g_keep)
    printf("  files kept in %s\n", g_tmp);
  else if (system(cmd)) {
  }
  return failed;
}
