/*
 * idx.c — IDX files (the MNIST / Fashion-MNIST format), plain or gzip.
 *
 * Format (yann.lecun.com/exdb/mnist, docs/formats.md):
 *   u8 0, u8 0, u8 type, u8 ndim, then ndim u32 big-endian dimensions, then
 *   the elements, row-major.  Type 0x08 is unsigned byte: labels are
 *   00 00 08 01 (0x00000801), images 00 00 08 03 (0x00000803).  Other
 *   types (0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64) are valid IDX
 *   but not read here (PX_EVERSION).
 *
 * Gzip (RFC 1952) is detected by its 1f 8b magic and inflated with zlib
 * into a buffer capped at max_bytes: the decompressed size is never taken
 * from the (unauthenticated) ISIZE trailer.  One gzip member; bytes after
 * it are PX_ETRAILING.  The element count is the overflow-checked product
 * of the dims and must equal the bytes present exactly.
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "plexus/model_io.h"

#include "base/px_internal.h"

static uint32_t get_u32be(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

/* Inflate one gzip member into b (cap b->max). */
static int gunzip(const uint8_t *in, size_t len, px_buf_t *b) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return PX_ENOMEM;
  int rc = 0;
  size_t pos = 0;
  for (;;) {
    /* zlib counts in uInt: feed at most 1 GiB at a time */
    if (zs.avail_in == 0 && pos < len) {
      size_t chunk = PX_MIN(len - pos, (size_t)1 << 30);
      zs.next_in = (Bytef *)(uintptr_t)(in + pos);
      zs.avail_in = (uInt)chunk;
      pos += chunk;
    }
    if (b->len == b->max) {
      rc = PX_ETOOBIG; /* output still coming, no room left */
      break;
    }
    size_t room = PX_MIN(b->max - b->len, (size_t)1 << 20);
    if ((rc = px_buf_reserve(b, room)) != 0) break;
    zs.next_out = b->data + b->len;
    zs.avail_out = (uInt)room;
    int z = inflate(&zs, Z_NO_FLUSH);
    b->len += room - zs.avail_out;
    if (z == Z_STREAM_END) {
      if (zs.avail_in != 0 || pos != len) rc = PX_ETRAILING;
      break;
    }
    if (z == Z_MEM_ERROR) {
      rc = PX_ENOMEM;
      break;
    }
    if (z == Z_DATA_ERROR || z == Z_NEED_DICT || z == Z_STREAM_ERROR) {
      rc = PX_EDECODE;
      break;
    }
    if (z == Z_BUF_ERROR && zs.avail_in == 0 && pos == len) {
      rc = PX_ETRUNC; /* input ended inside the stream */
      break;
    }
  }
  inflateEnd(&zs);
  return rc;
}

/* Validate the raw IDX bytes p[0..n) and fill out's header fields. */
static int parse_header(const uint8_t *p, size_t n, px_idx_t *out,
                        size_t *hdr) {
  if (n < 4) return PX_ETRUNC;
  if (p[0] != 0 || p[1] != 0) return PX_EDECODE;
  switch (p[2]) {
  case 0x08:
    break;
  case 0x09:
  case 0x0B:
  case 0x0C:
  case 0x0D:
  case 0x0E:
    return PX_EVERSION;
  default:
    return PX_EDECODE;
  }
  int nd = p[3];
  if (nd < 1 || nd > PX_IDX_MAX_DIMS) return PX_EDECODE;
  size_t h = 4 + 4 * (size_t)nd;
  if (n < h) return PX_ETRUNC;
  uint64_t count = 1;
  for (int i = 0; i < nd; i++) {
    uint32_t d = get_u32be(p + 4 + 4 * i);
    out->dims[i] = d;
    if (d && count > UINT64_MAX / d) return PX_ETOOBIG;
    count *= d;
  }
  if (count > n - h) return PX_ETRUNC;
  if (count < n - h) return PX_ETRAILING;
  out->ndim = nd;
  out->n = (size_t)count;
  *hdr = h;
  return 0;
}

int px_idx_parse(const void *data, size_t len, size_t max_bytes,
                 px_idx_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!data && len) return PX_EINVAL;
  if (max_bytes == 0) max_bytes = PX_IDX_DEFAULT_MAX;
  const uint8_t *p = data;
  px_buf_t b;
  px_buf_init(&b, max_bytes);
  int rc;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    rc = gunzip(p, len, &b);
  } else if (len > max_bytes) {
    rc = PX_ETOOBIG;
  } else {
    rc = px_buf_append(&b, p, len);
  }
  size_t h = 0;
  if (!rc) rc = parse_header(b.data, b.len, out, &h);
  if (rc) {
    px_buf_release(&b);
    memset(out, 0, sizeof *out);
    return rc;
  }
  /* keep the buffer, elements moved to its start */
  memmove(b.data, b.data + h, out->n);
  out->data = b.data;
  return 0;
}

int px_idx_load(const char *path, size_t max_bytes, px_idx_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (max_bytes == 0) max_bytes = PX_IDX_DEFAULT_MAX;
  uint8_t *raw = NULL;
  size_t len = 0;
  /* a gzip file may be a little larger than its content */
  size_t cap =
      max_bytes > SIZE_MAX - (1u << 20) ? SIZE_MAX : max_bytes + (1u << 20);
  int rc = px_file_read_all(path, cap, &raw, &len);
  if (rc) return rc;
  rc = px_idx_parse(raw, len, max_bytes, out);
  px_free(raw);
  return rc;
}

void px_idx_release(px_idx_t *x) {
  if (!x) return;
  px_free(x->data);
  memset(x, 0, sizeof *x);
}

/* "<dir>/<split>-<kind>-ubyte.gz", or without ".gz" if that is absent. */
static int load_part(const char *dir, const char *split, const char *kind,
                     px_idx_t *out) {
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/%s-%s-ubyte.gz", dir, split, kind);
  if (n < 0 || (size_t)n >= sizeof path) return PX_EINVAL;
  int rc = px_idx_load(path, 0, out);
  if (rc != PX_ENOENT) return rc;
  path[n - 3] = 0;
  return px_idx_load(path, 0, out);
}

int px_mnist_load(const char *dir, const char *split, px_mnist_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!dir || !split || strchr(split, '/')) return PX_EINVAL;
  int rc = load_part(dir, split, "images-idx3", &out->images);
  if (!rc) rc = load_part(dir, split, "labels-idx1", &out->labels);
  if (!rc && (out->images.ndim != 3 || out->labels.ndim != 1 ||
              out->images.dims[0] != out->labels.dims[0] ||
              out->images.dims[1] == 0 || out->images.dims[2] == 0 ||
              out->images.dims[1] > 4096 || out->images.dims[2] > 4096))
    rc = PX_EDECODE;
  for (size_t i = 0; !rc && i < out->labels.n; i++)
    if (out->labels.data[i] > 9) rc = PX_EDECODE;
  if (rc) {
    px_mnist_release(out);
    return rc;
  }
  out->n = out->labels.n;
  out->rows = (int)out->images.dims[1];
  out->cols = (int)out->images.dims[2];
  return 0;
}

void px_mnist_release(px_mnist_t *m) {
  if (!m) return;
  px_idx_release(&m->images);
  px_idx_release(&m->labels);
  memset(m, 0, sizeof *m);
}
