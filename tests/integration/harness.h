/*
 * harness.h — helpers for the integration tests: real `plexus` processes.
 *
 * The integration tests drive the built binary (PX_BIN, a compile
 * definition) exactly as a user would, and look at what the nodes leave
 * behind: control-socket replies (px_node_control), gossip.log, node.log,
 * node.pid, /proc.  This header gives them:
 *   - h_run: run `plexus ARGS...` to completion with a time limit, capturing
 *     exit status, stdout and stderr;
 *   - h_spawn / h_kill / h_pid_alive / h_wait_gone: process control by pid;
 *   - h_tmpdir / h_rmrf: scratch directories under /tmp;
 *   - h_status / h_json_*: a node's status JSON and flat field lookups;
 *   - h_read_file / h_count_lines_*: log inspection;
 *   - h_wait_until: poll a predicate with a deadline.
 *
 * Reaping.  `plexus devnet up` starts nodes as daemons whose parent exits;
 * where PID 1 does not reap orphans (containers without an init) a killed
 * node would stay a zombie forever.  h_init() therefore makes the test
 * process a child subreaper: orphaned nodes become our children, and the
 * harness reaps them whenever it waits (h_run, h_wait_until, h_pid_alive)
 * unless h_set_reaping(0) pauses that.
 *
 * Every function is for one test thread; nothing here is thread-safe.
 */
#ifndef PX_TESTS_INTEGRATION_HARNESS_H
#define PX_TESTS_INTEGRATION_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef PX_BIN
#error "PX_BIN (path of the plexus binary) must be defined by the build"
#endif

/* Exit statuses h_run reports besides 0..255. */
#define H_TIMED_OUT (-1000) /* killed after the time limit */
#define H_SPAWN_FAILED (-1001)
/* A child that died of signal S reports -S. */

typedef struct {
  int status; /* exit code, -signal, H_TIMED_OUT or H_SPAWN_FAILED */
  char *out;  /* captured stdout, NUL-terminated (never NULL after h_run) */
  char *err;  /* captured stderr, NUL-terminated */
} h_result_t;

/* Once per test program: subreaper, SIGPIPE ignored, libsodium
 * initialised. */
void h_init(void);
/* Raise this process's RLIMIT_NOFILE soft limit to at least want (within
 * the hard limit); call after starting nodes so they keep the default.
 * Returns the soft limit now in force. */
long h_raise_nofile(long want);

/* Pause (0) or resume (1) reaping of children other than the one h_run is
 * waiting for.  Resumed by default. */
void h_set_reaping(int on);
/* Reap every exited child now (no-op while reaping is paused). */
void h_reap(void);

/* Run PX_BIN with argv[0..] (NULL-terminated, without the program name),
 * wait at most timeout_ms.  Returns r->status.  Free with h_result_free. */
int h_run(h_result_t *r, int timeout_ms, const char *const *argv);
/* Convenience: arguments as a NULL-terminated list. */
int h_runl(h_result_t *r, int timeout_ms, ...);
void h_result_free(h_result_t *r);

/* Start PX_BIN argv... in the background with stdout+stderr appended to
 * log_path (NULL: /dev/null), in its own session.  Returns the pid or -1. */
pid_t h_spawn(const char *log_path, const char *const *argv);

/* Liveness: 1 if pid exists and is not a zombie (reaps first). */
int h_pid_alive(pid_t pid);
/* Send sig to pid (pid > 0 only). */
int h_kill(pid_t pid, int sig);
/* Wait until pid is gone; 1 if it went within timeout_ms. */
int h_wait_gone(pid_t pid, int timeout_ms);
/* The pid written in a node.pid file, or -1. */
pid_t h_read_pid_file(const char *path);
/* Open file descriptors of pid (entries of /proc/PID/fd), or -1. */
int h_count_fds(pid_t pid);

/* Make a fresh directory /tmp/plexus-it-TAG-XXXXXX; heap path (free()). */
char *h_tmpdir(const char *tag);
/* rm -rf; refuses anything outside /tmp/plexus-it-. */
int h_rmrf(const char *path);

/* A node's `status` reply (heap, free()) or NULL when it does not answer
 * within timeout_ms. */
char *h_status(const char *home, int timeout_ms);
/* Send any control command; reply or NULL. */
char *h_control(const char *home, const char *cmd, int timeout_ms);

/* The first `"key":NUMBER` in json; def when absent or not a number. */
long long h_json_int(const char *json, const char *key, long long def);
/* The first `"key":"STRING"` in json copied into out; 0 or -1 if absent. */
int h_json_str(const char *json, const char *key, char *out, size_t cap);
/* peer_count of a running node, or -1 if it does not answer. */
long long h_peer_count(const char *home);
/* stats.drops.NAME (e.g. "PX_ETOOBIG") of a running node; 0 when absent,
 * -1 when the node does not answer. */
long long h_drops(const char *home, const char *err_name);

/* Whole file (heap, NUL-terminated, free()) or NULL. */
char *h_read_file(const char *path);
size_t h_count_lines_prefix(const char *path, const char *prefix);
size_t h_count_lines_containing(const char *path, const char *needle);
/* Number of lines containing every one of the NULL-terminated needles. */
size_t h_count_lines_all(const char *path, const char *const *needles);
/* The last non-empty line of a file (into out), 0 or -1. */
int h_last_line(const char *path, char *out, size_t cap);

uint64_t h_now_ms(void);
void h_sleep_ms(unsigned ms);
/* Poll pred(ud) every interval_ms until it returns nonzero (returns 1) or
 * timeout_ms passes (returns 0 after one last try). */
int h_wait_until(int (*pred)(void *ud), void *ud, int timeout_ms,
                 int interval_ms);

/* path = dir + "/" + name into a fixed buffer. */
void h_path(char *out, size_t cap, const char *dir, const char *name);

#endif /* PX_TESTS_INTEGRATION_HARNESS_H */
