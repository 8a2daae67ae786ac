/*
 * harness.c — process, file and polling helpers for the integration tests
 * (contract in harness.h).
 *
 * h_run forks PX_BIN with stdout and stderr on pipes and reads both with
 * poll() until the child exits, so a chatty child cannot block on a full
 * pipe; it does not wait for pipe EOF, because `plexus devnet up` leaves
 * daemons behind that must not keep a test waiting.  A child still running
 * at the deadline is killed (SIGKILL) and reported as H_TIMED_OUT.
 *
 * The test process is a child subreaper (prctl), so daemons started by
 * `devnet up` become our children when their parent exits; every wait loop
 * reaps exited children so a killed node disappears instead of lingering as
 * a zombie that a `kill(pid, 0)` liveness check would still see.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plexus/crypto.h"
#include "plexus/node.h"

#define H_MAX_ARGS 64
#define H_TMP_PREFIX "/tmp/plexus-it-"

static int g_reaping = 1;

void h_init(void) {
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  px_crypto_init();
}

long h_raise_nofile(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < (rlim_t)want) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want
                      ? (rlim_t)want
                      : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return (long)rl.rlim_cur;
}

void h_set_reaping(int on) { g_reaping = on; }

void h_reap(void) {
  if (!g_reaping) return;
  int st;
  while (waitpid(-1, &st, WNOHANG) > 0) {
  }
}

uint64_t h_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void h_path(char *out, size_t cap, const char *dir, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

/* ---- growing strings ---------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void sbuf_add(sbuf_t *b, const char *d, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + n + 1)
      nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) return;
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
}

static char *sbuf_take(sbuf_t *b) {
  if (!b->p) {
    char *e = malloc(1);
    if (e) e[0] = 0;
    return e;
  }
  return b->p;
}

/* Read what is available now from fd; returns 0 at EOF or error (fd is then
 * closed and set to -1), 1 if it may produce more. */
static int drain_fd(int *fd, sbuf_t *b) {
  char tmp[4096];
  for (;;) {
    ssize_t k = read(*fd, tmp, sizeof tmp);
    if (k > 0) {
      sbuf_add(b, tmp, (size_t)k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
    close(*fd);
    *fd = -1;
    return 0;
  }
}

/* ---- processes ----------------------------------------------------------- */

static int build_argv(const char *av[H_MAX_ARGS + 2], const char *const *argv) {
  size_t n = 0;
  av[n++] = PX_BIN;
  for (size_t i = 0; argv && argv[i]; i++) {
    if (n >= H_MAX_ARGS + 1) return -1;
    av[n++] = argv[i];
  }
  av[n] = NULL;
  return 0;
}

static int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return H_SPAWN_FAILED;
}

int h_run(h_result_t *r, int timeout_ms, const char *const *argv) {
  memset(r, 0, sizeof *r);
  r->status = H_SPAWN_FAILED;
  sbuf_t out = {0}, err = {0};
  const char *av[H_MAX_ARGS + 2];
  int po[2] = {-1, -1}, pe[2] = {-1, -1};
  if (build_argv(av, argv) || pipe(po) || pipe(pe)) goto done;
  pid_t pid = fork();
  if (pid < 0) goto done;
  if (pid == 0) {
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]);
    close(pe[0]);
    close(po[1]);
    close(pe[1]);
    execv(PX_BIN, (char *const *)av);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  po[1] = pe[1] = -1;
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
  int exited = 0, st = 0;
  for (;;) {
    struct pollfd pf[2];
    int np = 0;
    if (po[0] >= 0) pf[np++] = (struct pollfd){.fd = po[0], .events = POLLIN};
    if (pe[0] >= 0) pf[np++] = (struct pollfd){.fd = pe[0], .events = POLLIN};
    if (np) poll(pf, (nfds_t)np, 20);
    if (po[0] >= 0) drain_fd(&po[0], &out);
    if (pe[0] >= 0) drain_fd(&pe[0], &err);
    if (!np) h_sleep_ms(20);
    /* Reap our child (and, unless paused, orphaned daemons). */
    pid_t w;
    if (g_reaping) {
      int s2;
      while ((w = waitpid(-1, &s2, WNOHANG)) > 0)
        if (w == pid) {
          exited = 1;
          st = s2;
        }
    } else if (waitpid(pid, &st, WNOHANG) == pid) {
      exited = 1;
    }
    if (exited) {
      /* Whatever the child wrote before exiting is in the pipes now. */
      if (po[0] >= 0) drain_fd(&po[0], &out);
      if (pe[0] >= 0) drain_fd(&pe[0], &err);
      r->status = decode_status(st);
      break;
    }
    if (h_now_ms() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      r->status = H_TIMED_OUT;
      break;
    }
  }
done:
  for (int i = 0; i < 2; i++) {
    if (po[i] >= 0) close(po[i]);
    if (pe[i] >= 0) close(pe[i]);
  }
  r->out = sbuf_take(&out);
  r->err = sbuf_take(&err);
  return r->status;
}

int h_runl(h_result_t *r, int timeout_ms, ...) {
  const char *args[H_MAX_ARGS + 1];
  size_t n = 0;
  va_list ap;
  va_start(ap, timeout_ms);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < H_MAX_ARGS)
    args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return h_run(r, timeout_ms, args);
}

void h_result_free(h_result_t *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

pid_t h_spawn(const char *log_path, const char *const *argv) {
  const char *av[H_MAX_ARGS + 2];
  if (build_argv(av, argv)) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setsid();
    int fd = open(log_path ? log_path : "/dev/null",
                  O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (nul >= 0) dup2(nul, 0);
    execv(PX_BIN, (char *const *)av);
    _exit(127);
  }
  return pid;
}

int h_pid_alive(pid_t pid) {
  if (pid <= 0) return 0;
  h_reap();
  if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *rp = strrchr(buf, ')');
  if (!rp || rp[1] != ' ') return 1;
  return rp[2] != 'Z' && rp[2] != 'X';
}

int h_kill(pid_t pid, int sig) {
  if (pid <= 0) return -1;
  return kill(pid, sig);
}

int h_wait_gone(pid_t pid, int timeout_ms) {
  uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    if (!h_pid_alive(pid)) return 1;
    if (h_now_ms() >= deadline) return 0;
    h_sleep_ms(20);
  }
}

pid_t h_read_pid_file(const char *path) {
  char *s = h_read_file(path);
  if (!s) return -1;
  char *end;
  long v = strtol(s, &end, 10);
  int ok = end != s && v > 0;
  free(s);
  return ok ? (pid_t)v : -1;
}

int h_count_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* ---- directories -----------------------------------------------------------
 */

char *h_tmpdir(const char *tag) {
  char tmpl[256];
  snprintf(tmpl, sizeof tmpl, H_TMP_PREFIX "%s-XXXXXX", tag);
  if (!mkdtemp(tmpl)) return NULL;
  return strdup(tmpl);
}

static int rm_tree(const char *path, int depth) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  if (depth > 16) return -1;
  DIR *d = opendir(path);
  if (!d) return -1;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[1024];
    int k = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    if (k < 0 || (size_t)k >= sizeof sub || rm_tree(sub, depth + 1)) rc = -1;
  }
  closedir(d);
  if (rmdir(path)) rc = -1;
  return rc;
}

int h_rmrf(const char *path) {
  if (!path || strncmp(path, H_TMP_PREFIX, strlen(H_TMP_PREFIX)) != 0 ||
      strstr(path, ".."))
    return -1;
  return rm_tree(path, 0);
}

/* ---- control socket and JSON -----------------------------------------------
 */

char *h_control(const char *home, const char *cmd, int timeout_ms) {
  char *reply = NULL;
  if (px_node_control(home, cmd, &reply, (uint64_t)timeout_ms) != 0)
    return NULL;
  char *copy = strdup(reply);
  px_free(reply);
  return copy;
}

char *h_status(const char *home, int timeout_ms) {
  return h_control(home, "status", timeout_ms);
}

static const char *json_find(const char *json, const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = json ? strstr(json, pat) : NULL;
  return p ? p + strlen(pat) : NULL;
}

long long h_json_int(const char *json, const char *key, long long def) {
  const char *p = json_find(json, key);
  if (!p) return def;
  char *end;
  long long v = strtoll(p, &end, 10);
  return end == p ? def : v;
}

int h_json_str(const char *json, const char *key, char *out, size_t cap) {
  const char *p = json_find(json, key);
  if (!p || *p != '"' || cap == 0) return -1;
  p++;
  size_t n = 0;
  while (*p && *p != '"' && n + 1 < cap)
    out[n++] = *p++;
  out[n] = 0;
  return *p == '"' ? 0 : -1;
}

long long h_peer_count(const char *home) {
  char *s = h_status(home, 2000);
  long long v = s ? h_json_int(s, "peer_count", -1) : -1;
  free(s);
  return v;
}

long long h_drops(const char *home, const char *err_name) {
  char *s = h_status(home, 2000);
  if (!s) return -1;
  const char *d = strstr(s, "\"drops\":{");
  long long v = d ? h_json_int(d, err_name, 0) : 0;
  free(s);
  return v;
}

/* ---- files
 * --------------------------------------------------------------------- */

char *h_read_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  sbuf_t b = {0};
  char tmp[8192];
  for (;;) {
    ssize_t k = read(fd, tmp, sizeof tmp);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    sbuf_add(&b, tmp, (size_t)k);
  }
  close(fd);
  return sbuf_take(&b);
}

/* Call fn on each line of a file (without its newline); count hits. */
static size_t count_lines(const char *path,
                          int (*fn)(const char *line, size_t n, const void *),
                          const void *ud) {
  char *s = h_read_file(path);
  if (!s) return 0;
  size_t hits = 0;
  for (char *p = s; *p;) {
    char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (nl) *nl = 0;
    if (fn(p, n, ud)) hits++;
    p += n + (nl ? 1 : 0);
  }
  free(s);
  return hits;
}

static int line_has_prefix(const char *line, size_t n, const void *ud) {
  size_t k = strlen(ud);
  return n >= k && memcmp(line, ud, k) == 0;
}

static int line_contains(const char *line, size_t n, const void *ud) {
  (void)n;
  return strstr(line, ud) != NULL;
}

static int line_contains_all(const char *line, size_t n, const void *ud) {
  (void)n;
  const char *const *needles = ud;
  for (size_t i = 0; needles[i]; i++)
    if (!strstr(line, needles[i])) return 0;
  return 1;
}

size_t h_count_lines_prefix(const char *path, const char *prefix) {
  return count_lines(path, line_has_prefix, prefix);
}

size_t h_count_lines_containing(const char *path, const char *needle) {
  return count_lines(path, line_contains, needle);
}

size_t h_count_lines_all(const char *path, const char *const *needles) {
  return count_lines(path, line_contains_all, needles);
}

int h_last_line(const char *path, char *out, size_t cap) {
  char *s = h_read_file(path);
  if (!s || cap == 0) {
    free(s);
    return -1;
  }
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
    s[--n] = 0;
  if (!n) {
    free(s);
    return -1;
  }
  const char *nl = strrchr(s, '\n');
  snprintf(out, cap, "%s", nl ? nl + 1 : s);
  free(s);
  return 0;
}

/* ---- polling
 * ------------------------------------------------------------------- */

int h_wait_until(int (*pred)(void *ud), void *ud, int timeout_ms,
                 int interval_ms) {
  uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    h_reap();
    if (pred(ud)) return 1;
    if (h_now_ms() >= deadline) return pred(ud) ? 1 : 0;
    h_sleep_ms((unsigned)interval_ms);
  }
}
