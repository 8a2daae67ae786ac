/*
 * reader.c — the bounds-checked decoder every outside byte goes through.
 *
 * How: a px_reader_t is a cursor (p, len, pos) plus a sticky error.  Every
 * read asks take() for n bytes; take() either hands back a pointer to n bytes
 * that lie wholly inside [p, p + len) and advances pos, or sets the error and
 * returns NULL.  Decoders therefore read a whole structure field by field
 * and check the error once, at px_reader_finish().
 *
 * Invariants:
 *  - pos <= len always; no read ever touches memory outside [p, p + len).
 *    Remaining length is computed as len - pos (never pos + n, which could
 *    wrap), so a hostile u32 length such as 0xFFFFFFFF cannot overflow.
 *  - The first error wins.  Once err != 0 every read returns 0, zeroes its
 *    outputs and leaves pos alone.
 *  - Length-prefixed fields check the caller's limit before the remaining
 *    input: an oversized length is PX_ETOOBIG even when the input is also
 *    short, so a peer announcing 4 GiB is reported as what it is.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"

#include "base/px_internal.h"

void px_reader_init(px_reader_t *r, const void *p, size_t len) {
  r->p = p;
  r->len = len;
  r->pos = 0;
  r->err = 0;
  if (p == NULL && len != 0) {
    r->len = 0;
    r->err = PX_EINVAL;
  }
}

void px_reader_fail(px_reader_t *r, int err) {
  if (r->err == 0 && err != 0) r->err = err;
}

/* Bytes left, ignoring the error state. */
static size_t left(const px_reader_t *r) { return r->len - r->pos; }

/* n bytes at the cursor, or NULL (error set) if they are not all there. */
static const uint8_t *take(px_reader_t *r, size_t n) {
  if (r->err) return NULL;
  if (n > left(r)) {
    r->err = PX_ETRUNC;
    return NULL;
  }
  const uint8_t *q = r->p + r->pos;
  r->pos += n;
  return q;
}

uint8_t px_reader_u8(px_reader_t *r) {
  const uint8_t *q = take(r, 1);
  return q ? q[0] : 0;
}

uint16_t px_reader_u16(px_reader_t *r) {
  const uint8_t *q = take(r, 2);
  return q ? px_get_u16le(q) : 0;
}

uint32_t px_reader_u32(px_reader_t *r) {
  const uint8_t *q = take(r, 4);
  return q ? px_get_u32le(q) : 0;
}

uint64_t px_reader_u64(px_reader_t *r) {
  const uint8_t *q = take(r, 8);
  return q ? px_get_u64le(q) : 0;
}

int32_t px_reader_i32(px_reader_t *r) {
  uint32_t u = px_reader_u32(r);
  /* Two's complement without implementation-defined conversion. */
  if (u <= INT32_MAX) return (int32_t)u;
  return (int32_t)(u - (uint32_t)INT32_MAX - 1u) + INT32_MIN;
}

void px_reader_fixed(px_reader_t *r, void *out, size_t n) {
  if (n == 0) return;
  const uint8_t *q = take(r, n);
  if (q)
    memcpy(out, q, n);
  else
    memset(out, 0, n);
}

/* Read a u32 length and check it: <= max first (PX_ETOOBIG), then against
 * the input left (PX_ETRUNC).  Returns the length, or 0 with err set. */
static size_t take_len(px_reader_t *r, size_t max) {
  uint32_t n = px_reader_u32(r);
  if (r->err) return 0;
  if ((uint64_t)n > (uint64_t)max) {
    r->err = PX_ETOOBIG;
    return 0;
  }
  if ((size_t)n > left(r)) {
    r->err = PX_ETRUNC;
    return 0;
  }
  return (size_t)n;
}

void px_reader_bytes(px_reader_t *r, const uint8_t **out, size_t *n_out,
                     size_t max) {
  *out = NULL;
  *n_out = 0;
  size_t n = take_len(r, max);
  if (r->err) return;
  /* p may be NULL for an empty input; NULL + 0 is not valid C. */
  const uint8_t *q = r->p ? r->p + r->pos : NULL;
  r->pos += n;
  *out = q;
  *n_out = n;
}

void px_reader_str(px_reader_t *r, char *out, size_t cap) {
  if (cap == 0) {
    px_reader_fail(r, PX_EINVAL);
    return;
  }
  memset(out, 0, cap);
  /* The NUL terminator needs one byte of cap. */
  size_t n = take_len(r, cap - 1);
  if (r->err) return;
  const uint8_t *q = r->p + r->pos;
  for (size_t i = 0; i < n; i++) {
    if (q[i] < 0x20 || q[i] > 0x7e) {
      r->err = PX_EDECODE;
      return;
    }
  }
  if (n) memcpy(out, q, n);
  r->pos += n;
}

size_t px_reader_remaining(const px_reader_t *r) {
  return r->err ? 0 : left(r);
}

int px_reader_finish(px_reader_t *r) {
  if (r->err) return r->err;
  if (r->pos != r->len) return PX_ETRAILING;
  return 0;
}
