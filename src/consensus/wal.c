/*
 * wal.c — the consensus write-ahead log: framing, scanning, and the file
 * helpers the node runtime uses.  This is the one consensus file that does
 * I/O; the core (core.c) only emits PERSIST effects.
 *
 * Spec: the WAL of CometBFT (spec/consensus/wal.md) in spirit — every
 * consensus message is logged before it is acted on, and the validator's
 * own signed messages are fsynced before they leave — with a simpler
 * record format (docs/consensus.md):
 *
 *   u32 len (LE) | u8 type | payload (len - 1 bytes) | check[8]
 *   check = first 8 bytes of BLAKE2b-256(len || type || payload)
 *
 * Why a hash over the length too: a torn write can leave a plausible length
 * followed by zeros; the checksum covers the length, so a record is only
 * believed when every one of its bytes is what was written.
 *
 * Reading stops at the first record that is not whole and correct.  What
 * is found there is reported (PX_ETRUNC: the file ends inside a record — a
 * crash during a write; PX_EAUTH: bytes that do not match their checksum —
 * corruption), never skipped: records after damage cannot be trusted to be
 * the ones that followed.  The runtime then refuses to sign at any height
 * the damaged part might have covered (px_cons_set_sign_floor).
 *
 * Invariants: a record is never longer than PX_WAL_MAX_RECORD; the scanner
 * never reads outside its buffer; px_wal_append writes a whole record with
 * one write loop and, when asked, fsyncs before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

#include "base/px_internal.h"

#define CHECK_LEN 8

struct px_wal {
  int fd;
  px_buf_t scratch;
};

static void checksum(uint8_t out[CHECK_LEN], const uint8_t *hdr_and_body,
                     size_t n) {
  uint8_t h[PX_HASH_LEN];
  px_hash(h, hdr_and_body, n);
  memcpy(out, h, CHECK_LEN);
}

int px_wal_frame(px_buf_t *out, uint8_t type, const void *payload, size_t n) {
  if (!out || (!payload && n)) return PX_EINVAL;
  if (n + 1 > PX_WAL_MAX_RECORD) return PX_ETOOBIG;
  size_t old = out->len;
  int rc = px_buf_reserve(out, n + PX_WAL_OVERHEAD);
  if (rc) return rc;
  uint8_t *p = out->data + old;
  px_put_u32le(p, (uint32_t)(n + 1));
  p[4] = type;
  if (n) memcpy(p + 5, payload, n);
  checksum(p + 5 + n, p, 5 + n);
  out->len = old + n + PX_WAL_OVERHEAD;
  return 0;
}

int px_wal_next(const uint8_t *buf, size_t len, size_t *pos,
                px_wal_record_t *rec) {
  if (!pos || !rec || (!buf && len) || *pos > len) return PX_EINVAL;
  memset(rec, 0, sizeof *rec);
  size_t at = *pos, left = len - at;
  if (left == 0) return 0;
  if (left < 4) return PX_ETRUNC;
  uint32_t rl = px_get_u32le(buf + at);
  if (rl == 0) return PX_EDECODE;
  if (rl > PX_WAL_MAX_RECORD) return PX_ETOOBIG;
  size_t whole = 4 + (size_t)rl + CHECK_LEN;
  if (left < whole) return PX_ETRUNC;
  uint8_t ck[CHECK_LEN];
  checksum(ck, buf + at, 4 + (size_t)rl);
  if (memcmp(ck, buf + at + 4 + rl, CHECK_LEN) != 0) return PX_EAUTH;
  rec->type = buf[at + 4];
  rec->payload = buf + at + 5;
  rec->len = rl - 1;
  rec->offset = at;
  *pos = at + whole;
  return 1;
}

uint64_t px_wal_record_height(const px_wal_record_t *rec) {
  if (!rec) return 0;
  if (rec->type == PX_CONS_WAL_MSG) {
    px_cons_msg_type_t t;
    uint64_t h;
    uint32_t r;
    return px_cons_msg_peek(rec->payload, rec->len, &t, &h, &r) == 0 ? h : 0;
  }
  if (rec->type >= PX_CONS_WAL_OWN && rec->type <= PX_CONS_WAL_HEIGHT &&
      rec->len >= 8)
    return px_get_u64le(rec->payload);
  return 0;
}

int px_wal_replay_mem(const uint8_t *buf, size_t len,
                      int (*fn)(void *ud, const px_wal_record_t *rec), void *ud,
                      px_wal_replay_info_t *info) {
  if (!info || (!buf && len)) return PX_EINVAL;
  memset(info, 0, sizeof *info);
  info->file_len = len;
  size_t pos = 0;
  for (;;) {
    px_wal_record_t rec;
    int rc = px_wal_next(buf, len, &pos, &rec);
    if (rc == 0) break;
    if (rc < 0) {
      info->tail_err = rc;
      break;
    }
    info->records++;
    uint64_t h = px_wal_record_height(&rec);
    if (h > info->max_height) info->max_height = h;
    if (fn) {
      int frc = fn(ud, &rec);
      if (frc) {
        info->good_len = pos;
        return frc;
      }
    }
  }
  info->good_len = pos;
  return 0;
}

int px_wal_replay_file(const char *path,
                       int (*fn)(void *ud, const px_wal_record_t *rec),
                       void *ud, px_wal_replay_info_t *info) {
  if (!path || !info) return PX_EINVAL;
  memset(info, 0, sizeof *info);
  uint8_t *data = NULL;
  size_t len = 0;
  /* The WAL of one height is small; rotate it per height in the runtime. */
  int rc = px_file_read_all(path, (size_t)1 << 31, &data, &len);
  if (rc) return rc;
  rc = px_wal_replay_mem(data, len, fn, ud, info);
  px_free(data);
  return rc;
}

void px_wal_describe(const char *path, const px_wal_replay_info_t *info,
                     char *out, size_t cap) {
  if (!out || cap == 0) return;
  if (!info) {
    snprintf(out, cap, "WAL %s: no information", path ? path : "?");
    return;
  }
  const char *p = path ? path : "(memory)";
  if (info->tail_err == 0) {
    snprintf(out, cap, "WAL %s: %llu records, %zu bytes, intact", p,
             (unsigned long long)info->records, info->good_len);
    return;
  }
  const char *what =
      info->tail_err == PX_ETRUNC  ? "torn record (crash during a write)"
      : info->tail_err == PX_EAUTH ? "checksum mismatch (corrupted data)"
                                   : "impossible record length (corrupted)";
  snprintf(out, cap,
           "WAL %s: %s at byte %zu of %zu; %llu good records replayed; "
           "%zu bytes after it ignored; no signing below height %llu",
           p, what, info->good_len, info->file_len,
           (unsigned long long)info->records, info->file_len - info->good_len,
           (unsigned long long)(info->max_height + 1));
}

int px_wal_truncate(const char *path, size_t good_len) {
  if (!path) return PX_EINVAL;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return px_err_from_errno(errno);
  int rc = 0;
  if (ftruncate(fd, (off_t)good_len) != 0 || fsync(fd) != 0)
    rc = px_err_from_errno(errno);
  close(fd);
  return rc;
}

int px_wal_open(const char *path, px_wal_t **out) {
  if (!path || !out) return PX_EINVAL;
  *out = NULL;
  px_wal_t *w = px_calloc(1, sizeof *w);
  if (!w) return PX_ENOMEM;
  w->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    int e = px_err_from_errno(errno);
    px_free(w);
    return e;
  }
  px_buf_init(&w->scratch, (size_t)PX_WAL_MAX_RECORD + PX_WAL_OVERHEAD);
  *out = w;
  return 0;
}

int px_wal_sync(px_wal_t *w) {
  if (!w) return PX_EINVAL;
  return fsync(w->fd) == 0 ? 0 : px_err_from_errno(errno);
}

int px_wal_append(px_wal_t *w, uint8_t type, const void *payload, size_t n,
                  int sync) {
  if (!w) return PX_EINVAL;
  px_buf_reset(&w->scratch);
  int rc = px_wal_frame(&w->scratch, type, payload, n);
  if (rc) return rc;
  const uint8_t *p = w->scratch.data;
  size_t left = w->scratch.len;
  while (left) {
    ssize_t k = write(w->fd, p, left);
    if (k < 0) {
      if (errno == EINTR) continue;
      return px_err_from_errno(errno);
    }
    p += k;
    left -= (size_t)k;
  }
  return sync ? px_wal_sync(w) : 0;
}

void px_wal_close(px_wal_t *w) {
  if (!w) return;
  if (w->fd >= 0) {
    (void)fsync(w->fd);
    close(w->fd);
  }
  px_buf_release(&w->scratch);
  px_free(w);
}
