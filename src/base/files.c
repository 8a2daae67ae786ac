/*
 * files.c — hex, whole-file reads and crash-safe whole-file writes.
 *
 * px_file_write_atomic writes to "path.tmp.PID", fsyncs it, renames it over
 * the target and fsyncs the directory, so a crash leaves either the old or
 * the new file, never a torn one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/px_internal.h"

void px_hex_encode(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int px_hex_decode(const char *hex, uint8_t *out, size_t n) {
  if (!hex || strlen(hex) != 2 * n) return PX_EDECODE;
  for (size_t i = 0; i < n; i++) {
    int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
    if (h < 0 || l < 0) return PX_EDECODE;
    out[i] = (uint8_t)(h << 4 | l);
  }
  return 0;
}

int px_file_read_all(const char *path, size_t max, uint8_t **out,
                     size_t *len_out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return px_err_from_errno(errno);
  px_buf_t b;
  px_buf_init(&b, max + 1);
  int rc = 0;
  for (;;) {
    size_t want = PX_MIN(b.max - b.len, (size_t)65536);
    if (want == 0) {
      rc = PX_ETOOBIG;
      break;
    }
    if ((rc = px_buf_reserve(&b, want))) break;
    ssize_t n = read(fd, b.data + b.len, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
      break;
    }
    if (n == 0) break;
    b.len += (size_t)n;
    if (b.len > max) {
      rc = PX_ETOOBIG;
      break;
    }
  }
  close(fd);
  if (!rc) rc = px_buf_append(&b, "", 1);
  if (rc) {
    px_buf_release(&b);
    return rc;
  }
  *out = b.data;
  *len_out = b.len - 1;
  return 0;
}

int px_file_write_atomic(const char *path, const void *data, size_t len,
                         unsigned mode) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof tmp) return PX_ETOOBIG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return px_err_from_errno(errno);
  int rc = 0;
  if (fchmod(fd, (mode_t)mode) != 0) rc = px_err_from_errno(errno);
  const uint8_t *p = data;
  size_t left = len;
  while (!rc && left) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  if (!rc && fsync(fd) != 0) rc = px_err_from_errno(errno);
  if (close(fd) != 0 && !rc) rc = px_err_from_errno(errno);
  if (!rc && rename(tmp, path) != 0) rc = px_err_from_errno(errno);
  if (rc) {
    unlink(tmp);
    return rc;
  }
  /* fsync the directory so the rename itself is durable. */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == dir)
    dir[1] = 0;
  else if (slash)
    *slash = 0;
  else
    snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

int px_mkdir_p(const char *path, unsigned mode) {
  char buf[4096];
  int n = snprintf(buf, sizeof buf, "%s", path);
  if (n < 0 || (size_t)n >= sizeof buf) return PX_ETOOBIG;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
      return px_err_from_errno(errno);
    *p = '/';
  }
  if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
    return px_err_from_errno(errno);
  return 0;
}
