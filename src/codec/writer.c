/*
 * writer.c — the canonical encoder: fixed-width little-endian integers,
 * u32-length-prefixed byte strings, printable-ASCII strings.
 *
 * How: a px_writer_t appends to a caller-owned px_buf_t with px_buf_append,
 * so the buffer's cap bounds every encoding (PX_ETOOBIG) and allocation goes
 * through the px_malloc hook (PX_ENOMEM).  The first error is sticky: later
 * writes do nothing, and the caller checks once with px_writer_finish().
 *
 * Invariants:
 *  - The writer only produces what px_reader_t accepts: a byte string longer
 *    than UINT32_MAX is PX_ETOOBIG, a string with a byte outside 0x20..0x7e
 *    is PX_EINVAL, instead of being written.
 *  - On error the buffer may hold a partial encoding; callers that need
 *    all-or-nothing (px_msg_encode) restore the buffer's length themselves.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"

#include "base/px_internal.h"

void px_writer_init(px_writer_t *w, px_buf_t *buf) {
  w->buf = buf;
  w->err = buf ? 0 : PX_EINVAL;
}

static void put(px_writer_t *w, const void *p, size_t n) {
  if (w->err) return;
  int rc = px_buf_append(w->buf, p, n);
  if (rc) w->err = rc;
}

void px_writer_u8(px_writer_t *w, uint8_t v) { put(w, &v, 1); }

void px_writer_u16(px_writer_t *w, uint16_t v) {
  uint8_t b[2];
  px_put_u16le(b, v);
  put(w, b, sizeof b);
}

void px_writer_u32(px_writer_t *w, uint32_t v) {
  uint8_t b[4];
  px_put_u32le(b, v);
  put(w, b, sizeof b);
}

void px_writer_u64(px_writer_t *w, uint64_t v) {
  uint8_t b[8];
  px_put_u64le(b, v);
  put(w, b, sizeof b);
}

void px_writer_i32(px_writer_t *w, int32_t v) { px_writer_u32(w, (uint32_t)v); }

void px_writer_fixed(px_writer_t *w, const void *p, size_t n) {
  if (w->err || n == 0) return;
  if (p == NULL) {
    w->err = PX_EINVAL;
    return;
  }
  put(w, p, n);
}

void px_writer_bytes(px_writer_t *w, const void *p, size_t n) {
  if (w->err) return;
  if ((uint64_t)n > UINT32_MAX) {
    w->err = PX_ETOOBIG;
    return;
  }
  if (p == NULL && n != 0) {
    w->err = PX_EINVAL;
    return;
  }
  px_writer_u32(w, (uint32_t)n);
  put(w, p, n);
}

void px_writer_str(px_writer_t *w, const char *s) {
  if (w->err) return;
  if (s == NULL) {
    w->err = PX_EINVAL;
    return;
  }
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e) {
      w->err = PX_EINVAL;
      return;
    }
  }
  px_writer_bytes(w, s, n);
}

int px_writer_finish(px_writer_t *w) { return w->err; }
