/*
 * mio_file.c — file mapping and atomic multi-part writes for the model and
 * data readers (model_io.h).
 *
 * Readers map files read-only and private: weights are used in place, with
 * no copy, and the kernel pages them in on demand.  Writers stream their
 * parts (header, then each tensor) to "path.tmp.PID", fsync, rename over the
 * target and fsync the directory, so a crash leaves the old file or the new
 * one, never half of one (same protocol as px_file_write_atomic, without
 * first gathering a possibly large model into one buffer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/model_io_internal.h"

#include "base/px_internal.h"

int px_mio_map(const char *path, uint64_t max, void **p, size_t *len) {
  *p = NULL;
  *len = 0;
  if (!path) return PX_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return px_err_from_errno(errno);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = px_err_from_errno(errno);
  } else if (!S_ISREG(st.st_mode)) {
    rc = PX_EINVAL;
  } else if (st.st_size < 0 || (uint64_t)st.st_size > max ||
             (uint64_t)st.st_size > SIZE_MAX) {
    rc = PX_ETOOBIG;
  } else if (st.st_size > 0) {
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      rc = px_err_from_errno(errno);
    } else {
      *p = m;
      *len = (size_t)st.st_size;
    }
  }
  close(fd);
  return rc;
}

void px_mio_unmap(void *p, size_t len) {
  if (p && len) munmap(p, len);
}

static int write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return px_err_from_errno(errno);
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int px_mio_write_parts(const char *path, const px_mio_part_t *parts, size_t n) {
  if (!path || (!parts && n)) return PX_EINVAL;
  size_t pl = strlen(path);
  size_t tl = pl + 32;
  char *tmp = px_malloc(tl);
  if (!tmp) return PX_ENOMEM;
  snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = px_err_from_errno(errno);
    px_free(tmp);
    return rc;
  }
  for (size_t i = 0; i < n && !rc; i++)
    if (parts[i].n) rc = write_all(fd, parts[i].p, parts[i].n);
  if (!rc && fsync(fd) != 0) rc = px_err_from_errno(errno);
  if (close(fd) != 0 && !rc) rc = px_err_from_errno(errno);
  if (!rc && rename(tmp, path) != 0) rc = px_err_from_errno(errno);
  if (rc) {
    unlink(tmp);
    px_free(tmp);
    return rc;
  }
  px_free(tmp);
  /* fsync the directory so the rename itself is durable */
  char *dir = px_strdup(path);
  if (!dir) return 0;
  char *slash = strrchr(dir, '/');
  const char *d = ".";
  if (slash) {
    if (slash == dir)
      slash[1] = 0;
    else
      *slash = 0;
    d = dir;
  }
  int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  px_free(dir);
  return 0;
}
