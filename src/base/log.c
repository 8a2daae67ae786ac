/*
 * log.c — leveled logging to stderr.
 *
 * One line per call, written with a single write() so lines from several
 * threads or processes sharing a terminal never interleave mid-line.  The
 * level and prefix are process settings.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/px_internal.h"

/* The level may be changed by one thread (a node opening) while others log:
 * it is atomic.  The prefix is set once at start-up, before threads. */
static _Atomic int g_level = PX_LOG_INFO;
static char g_prefix[32];

void px_log_set_level(px_log_level_t lvl) {
  atomic_store_explicit(&g_level, (int)lvl, memory_order_relaxed);
}
px_log_level_t px_log_get_level(void) {
  return (px_log_level_t)atomic_load_explicit(&g_level, memory_order_relaxed);
}

void px_log_set_prefix(const char *prefix) {
  snprintf(g_prefix, sizeof g_prefix, "%s", prefix ? prefix : "");
}

int px_log_parse_level(const char *s, px_log_level_t *out) {
  static const char *names[] = {"error", "warn", "info", "debug", "trace"};
  for (int i = 0; i < 5; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (px_log_level_t)i;
      return 0;
    }
  }
  return PX_EINVAL;
}

void px_log(px_log_level_t lvl, const char *module, const char *fmt, ...) {
  static const char *tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};
  if (lvl > px_log_get_level()) return;
  char line[1024];
  uint64_t ms = px_time_wall_ms();
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  int n = snprintf(
      line, sizeof line, "%02d:%02d:%02d.%03u %s %s%s%s%s: ", tm.tm_hour,
      tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000), tags[lvl],
      g_prefix[0] ? "[" : "", g_prefix, g_prefix[0] ? "] " : "", module);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
