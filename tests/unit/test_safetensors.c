/*
 * test_safetensors.c — safetensors reader/writer, dtype conversions and the
 * JSON model config.
 *
 * What is proven here:
 *  - write -> read round trips (memory and file, mmap) keep names, dtypes,
 *    shapes, bytes and metadata; our header is byte-identical to what the
 *    reference writer produces for a small case (golden bytes) and padded to
 *    8 bytes with spaces;
 *  - lying headers each give their documented error: short file, header
 *    length huge or past EOF, not JSON / not an object, offsets out of
 *    bounds, overlapping, gapped, not starting at 0, bytes after the last
 *    tensor, wrong size for dtype x shape, unknown dtype, unknown or missing
 *    keys, bad shapes, overflowing shapes, duplicate names, bad metadata;
 *  - every prefix of a valid file fails cleanly (exact-size heap copies, so
 *    ASan sees any over-read);
 *  - a misaligned tensor (odd header length, as other writers may produce)
 *    loads and converts correctly through byte loads (UBSan);
 *  - f16 <-> f32 is exact for all 65536 halves, rounding is to nearest even
 *    for f32 -> f16 / bf16, at the boundaries;
 *  - config.json helpers: save/load, dims, errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/json.h"
#include "plexus/model_io.h"

static int open_copy(const void *p, size_t n, const px_st_limits_t *lim,
                     px_safetensors_t **out) {
  void *c = malloc(n ? n : 1);
  assert_non_null(c);
  memcpy(c, p, n);
  int rc = px_st_open_mem(c, n, lim, out);
  if (rc == 0) {
    /* keep the copy alive: tests free both via the handle's lifetime */
    px_st_free(*out);
    *out = NULL;
  }
  free(c);
  return rc;
}

/* u64 header length + header text + data_len zero bytes. */
static size_t mk(uint8_t *buf, size_t cap, const char *hdr, size_t data_len) {
  size_t hl = strlen(hdr);
  assert_true(8 + hl + data_len <= cap);
  for (int i = 0; i < 8; i++)
    buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, hdr, hl);
  memset(buf + 8 + hl, 0, data_len);
  return 8 + hl + data_len;
}

static int try_hdr(const char *hdr, size_t data_len) {
  uint8_t buf[4096];
  size_t n = mk(buf, sizeof buf, hdr, data_len);
  px_safetensors_t *st = NULL;
  int rc = open_copy(buf, n, NULL, &st);
  assert_null(st);
  return rc;
}

static void test_lying_headers(void **state) {
  (void)state;
  px_safetensors_t *st;
  uint8_t b[64] = {0};
  assert_int_equal(open_copy(b, 0, NULL, &st), PX_ETRUNC);
  assert_int_equal(open_copy(b, 7, NULL, &st), PX_ETRUNC);
  /* header length huge / past EOF */
  memset(b, 0xff, 8);
  assert_int_equal(open_copy(b, 16, NULL, &st), PX_ETOOBIG);
  memset(b, 0, 8);
  b[0] = 100;
  assert_int_equal(open_copy(b, 64, NULL, &st), PX_ETRUNC);
  b[0] = 0;
  b[3] = 0x10; /* 256 MiB: past the default cap before EOF is looked at */
  assert_int_equal(open_copy(b, 64, NULL, &st), PX_ETOOBIG);
  px_st_limits_t lim = {0};
  lim.max_header = 8;
  assert_int_equal(try_hdr("{}", 0), 0);
  {
    uint8_t buf[64];
    size_t n = mk(buf, sizeof buf, "{}       ", 0);
    assert_int_equal(open_copy(buf, n, &lim, &st), PX_ETOOBIG);
  }
  /* not JSON / not an object */
  assert_int_equal(try_hdr("", 0), PX_EDECODE);
  assert_int_equal(try_hdr("xx", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{} x", 0), PX_EDECODE);
  assert_int_equal(try_hdr("[]", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":[[[[1]]]]}", 0), PX_ETOOBIG);
  assert_int_equal(try_hdr("{\"a\":\"\xff\"}", 0), PX_EDECODE);
  /* offsets */
#define T(dt, shape, off)                                                      \
  "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" off "}"
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[2]", "[0,8]") "}", 8), 0);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[2]", "[0,8]") "}", 4),
                   PX_ETRUNC);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T(
                               "F32", "[2]", "[4,12]") "}",
                           12),
                   PX_EDECODE); /* overlap */
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[0,4]") ",\"b\":" T(
                               "F32", "[1]", "[8,12]") "}",
                           12),
                   PX_EDECODE); /* gap */
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T(
                               "F32", "[2]", "[0,8]") "}",
                           8),
                   PX_EDECODE); /* the same bytes twice */
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[4,8]") "}", 8),
                   PX_EDECODE); /* not from 0 */
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[0,4]") "}", 8),
                   PX_ETRAILING);
  assert_int_equal(try_hdr("{}", 1), PX_ETRAILING);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[3]", "[0,8]") "}", 8),
                   PX_EDECODE); /* wrong size for dtype x shape */
  assert_int_equal(try_hdr("{\"a\":" T("BF16", "[4]", "[0,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[8,4]") "}", 8),
                   PX_EDECODE); /* begin > end */
  assert_int_equal(
      try_hdr("{\"a\":" T("F32", "[1]", "[0,18446744073709551616]") "}", 4),
      PX_ETRUNC);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]",
                                       "[18446744073709551612,"
                                       "18446744073709551615]") "}",
                           4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[0]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[0,4,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1]", "[0,\"4\"]") "}", 4),
                   PX_EDECODE);
  /* dtypes and shapes */
  assert_int_equal(try_hdr("{\"a\":" T("F64", "[1]", "[0,8]") "}", 8),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("f32", "[1]", "[0,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[-1]", "[0,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "[1.0]", "[0,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("F32", "1", "[0,4]") "}", 4),
                   PX_EDECODE);
  assert_int_equal(
      try_hdr("{\"a\":" T("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1),
      PX_EDECODE);
  assert_int_equal(
      try_hdr(
          "{\"a\":" T("U8", "[4294967296,4294967296,4294967296]", "[0,1]") "}",
          1),
      PX_ETOOBIG);
  assert_int_equal(
      try_hdr("{\"a\":" T("F32", "[4611686018427387904]", "[0,1]") "}", 1),
      PX_ETOOBIG);
  assert_int_equal(try_hdr("{\"a\":" T("F32",
                                       "[0,4294967296,4294967296,"
                                       "4294967296]",
                                       "[0,0]") "}",
                           0),
                   0); /* a zero dimension makes the product 0 */
  assert_int_equal(try_hdr("{\"a\":" T("U8", "[]", "[0,1]") "}", 1), 0);
  /* keys */
  assert_int_equal(try_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                           "\"data_offsets\":[0,4],\"x\":1}}",
                           4),
                   PX_EDECODE);
  assert_int_equal(
      try_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"x\":[0,4]}}", 4),
      PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
                   PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":1}", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{\"a\":" T("U8", "[1]", "[0,1]") ",\"a\":" T(
                               "U8", "[1]", "[1,2]") "}",
                           2),
                   PX_EDUP);
  assert_int_equal(try_hdr("{\"a\\u0000b\":" T("U8", "[1]", "[0,1]") "}", 1),
                   PX_EDECODE);
  /* metadata */
  assert_int_equal(try_hdr("{\"__metadata__\":{\"k\":\"v\"}}", 0), 0);
  assert_int_equal(try_hdr("{\"__metadata__\":{\"k\":1}}", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{\"__metadata__\":[]}", 0), PX_EDECODE);
  assert_int_equal(try_hdr("{\"__metadata__\":\"x\"}", 0), PX_EDECODE);
  /* limits */
  memset(&lim, 0, sizeof lim);
  lim.max_tensors = 1;
  {
    uint8_t buf[256];
    size_t n = mk(
        buf, sizeof buf,
        "{\"a\":" T("U8", "[1]", "[0,1]") ",\"b\":" T("U8", "[1]", "[1,2]") "}",
        2);
    assert_int_equal(open_copy(buf, n, NULL, &st), 0);
    assert_int_equal(open_copy(buf, n, &lim, &st), PX_ETOOBIG);
    lim.max_tensors = 0;
    lim.max_file = n - 1;
    assert_int_equal(open_copy(buf, n, &lim, &st), PX_ETOOBIG);
  }
#undef T
}

static void fill_bytes(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static void check_model(const px_safetensors_t *st, const px_st_entry_t *e,
                        size_t n) {
  assert_int_equal(px_st_count(st), n);
  for (size_t i = 0; i < n; i++) {
    const px_st_tensor_t *t = px_st_find(st, e[i].name);
    assert_non_null(t);
    assert_ptr_equal(t, px_st_at(st, i)); /* document order kept */
    assert_string_equal(t->name, e[i].name);
    assert_int_equal(t->dtype, e[i].dtype);
    assert_int_equal(t->ndim, e[i].ndim);
    uint64_t numel = 1;
    for (int d = 0; d < e[i].ndim; d++) {
      assert_true(t->shape[d] == e[i].shape[d]);
      numel *= e[i].shape[d];
    }
    assert_true(t->numel == numel);
    assert_int_equal(t->nbytes, numel * px_dtype_size(e[i].dtype));
    if (t->nbytes) assert_memory_equal(t->data, e[i].data, t->nbytes);
  }
  assert_null(px_st_find(st, "nope"));
  assert_null(px_st_at(st, n));
}

static void test_roundtrip(void **state) {
  (void)state;
  float w[6] = {1.5f, -2.0f, 0.1f, 3e-40f, -0.0f, 65504.0f};
  uint16_t bf[4], hf[3];
  for (int i = 0; i < 4; i++)
    bf[i] = px_f32_to_bf16(w[i]);
  for (int i = 0; i < 3; i++)
    hf[i] = px_f32_to_f16(w[i + 3]);
  int8_t q[4] = {-128, -1, 0, 127};
  uint8_t u = 200;
  px_st_entry_t e[] = {
      {"layer.0.weight", PX_DTYPE_F32, 2, {2, 3}, w},
      {"b", PX_DTYPE_BF16, 1, {4}, bf},
      {"h", PX_DTYPE_F16, 1, {3}, hf},
      {"q", PX_DTYPE_I8, 2, {2, 2}, q},
      {"scalar", PX_DTYPE_U8, 0, {0}, &u},
      {"empty", PX_DTYPE_F32, 2, {0, 5}, NULL},
      {"\xc3\xa9t\xc3\xa9 \"quoted\"", PX_DTYPE_U8, 1, {1}, &u},
  };
  size_t n = PX_ARRAY_LEN(e);
  const char *meta[] = {"format", "pt", "note", "line\nbreak \xe2\x82\xac"};
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_st_write_buf(&b, e, n, meta, 2), 0);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--)
    hl = (hl << 8) | b.data[i];
  assert_int_equal(hl % 8, 0);
  assert_int_equal(b.data[8 + hl - 1] == ' ' || b.data[8 + hl - 1] == '}', 1);

  px_safetensors_t *st;
  assert_int_equal(px_st_open_mem(b.data, b.len, NULL, &st), 0);
  check_model(st, e, n);
  assert_int_equal(px_st_metadata_count(st), 2);
  assert_string_equal(px_st_metadata_get(st, "format"), "pt");
  assert_string_equal(px_st_metadata_get(st, "note"), meta[3]);
  assert_null(px_st_metadata_get(st, "x"));
  const char *k, *v;
  assert_int_equal(px_st_metadata_at(st, 1, &k, &v), 0);
  assert_string_equal(k, "note");
  assert_int_equal(px_st_metadata_at(st, 2, &k, &v), PX_ENOTFOUND);
  /* conversions */
  float out[6];
  const px_st_tensor_t *t = px_st_find(st, "layer.0.weight");
  assert_true(t->aligned);
  assert_int_equal(px_st_to_f32(t, out, 6), 0);
  assert_memory_equal(out, w, sizeof w);
  assert_int_equal(px_st_to_f32(t, out, 5), PX_EINVAL);
  assert_int_equal(px_st_to_f32(px_st_find(st, "b"), out, 4), 0);
  for (int i = 0; i < 4; i++)
    assert_true(out[i] == px_bf16_to_f32(bf[i]));
  assert_true(out[0] == 1.5f && out[1] == -2.0f);
  assert_int_equal(px_st_to_f32(px_st_find(st, "h"), out, 3), 0);
  assert_true(out[1] == -0.0f && signbit(out[1]) && out[2] == 65504.0f);
  assert_true(out[0] == 0.0f); /* 3e-40 underflows half */
  assert_int_equal(px_st_to_f32(px_st_find(st, "q"), out, 4), PX_EDECODE);
  uint64_t shape[2] = {2, 3};
  assert_int_equal(px_st_read_f32(st, "layer.0.weight", 2, shape, out), 0);
  assert_memory_equal(out, w, sizeof w);
  shape[1] = 2;
  assert_int_equal(px_st_read_f32(st, "layer.0.weight", 2, shape, out),
                   PX_EDECODE);
  assert_int_equal(px_st_read_f32(st, "layer.0.weight", 1, shape, out),
                   PX_EDECODE);
  assert_int_equal(px_st_read_f32(st, "zz", 1, shape, out), PX_ENOTFOUND);
  px_st_free(st);

  /* every strict prefix fails cleanly */
  for (size_t cut = 0; cut < b.len; cut++) {
    px_safetensors_t *s2 = NULL;
    int rc = open_copy(b.data, cut, NULL, &s2);
    assert_true(rc < 0);
  }

  /* file round trip through mmap */
  char path[] = "/tmp/px_test_st_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(px_st_write_file(path, e, n, meta, 2), 0);
  assert_int_equal(px_st_open(path, NULL, &st), 0);
  check_model(st, e, n);
  px_st_free(st);
  uint8_t *fb;
  size_t fl;
  assert_int_equal(px_file_read_all(path, 1 << 20, &fb, &fl), 0);
  assert_int_equal(fl, b.len);
  assert_memory_equal(fb, b.data, fl); /* file and buffer writers agree */
  px_free(fb);
  unlink(path);
  assert_int_equal(px_st_open(path, NULL, &st), PX_ENOENT);
  assert_int_equal(px_st_open("/tmp", NULL, &st), PX_EINVAL);
  px_st_free(NULL);
  px_buf_release(&b);
}

/* The reference writer's bytes for {"a": tensor([1.0])}: compact JSON,
 * dtype/shape/data_offsets order, spaces to a multiple of 8. */
static void test_golden(void **state) {
  (void)state;
  float one = 1.0f;
  px_st_entry_t e = {"a", PX_DTYPE_F32, 1, {1}, &one};
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_st_write_buf(&b, &e, 1, NULL, 0), 0);
  static const char hdr[] =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  ";
  size_t hl = sizeof hdr - 1;
  assert_int_equal(hl, 56);
  assert_int_equal(b.len, 8 + hl + 4);
  uint8_t want_len[8] = {56, 0, 0, 0, 0, 0, 0, 0};
  assert_memory_equal(b.data, want_len, 8);
  assert_memory_equal(b.data + 8, hdr, hl);
  uint8_t want_data[4] = {0x00, 0x00, 0x80, 0x3f};
  assert_memory_equal(b.data + 8 + hl, want_data, 4);
  px_buf_release(&b);
}

static void test_misaligned(void **state) {
  (void)state;
  /* header of 53 bytes (no padding): data at file offset 61 */
  static const char hdr[] =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  size_t hl = sizeof hdr - 1;
  uint8_t *buf = malloc(8 + hl + 8);
  assert_non_null(buf);
  memset(buf, 0, 8);
  buf[0] = (uint8_t)hl;
  memcpy(buf + 8, hdr, hl);
  float v[2] = {3.25f, -7.5f};
  memcpy(buf + 8 + hl, v, 8);
  px_safetensors_t *st;
  assert_int_equal(px_st_open_mem(buf, 8 + hl + 8, NULL, &st), 0);
  const px_st_tensor_t *t = px_st_find(st, "a");
  assert_false(t->aligned);
  float out[2];
  assert_int_equal(px_st_to_f32(t, out, 2), 0);
  assert_memory_equal(out, v, 8);
  px_st_free(st);
  free(buf);
}

static void test_writer_errors(void **state) {
  (void)state;
  uint8_t d[8] = {0};
  px_buf_t b;
  px_buf_init(&b, 0);
  px_st_entry_t two[2] = {{"x", PX_DTYPE_U8, 1, {1}, d},
                          {"x", PX_DTYPE_U8, 1, {1}, d}};
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EDUP);
  two[1].name = "__metadata__";
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EINVAL);
  two[1].name = "y";
  two[1].dtype = (px_dtype_t)9;
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EINVAL);
  two[1].dtype = PX_DTYPE_U8;
  two[1].ndim = 9;
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EINVAL);
  two[1].ndim = 1;
  two[1].data = NULL;
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EINVAL);
  two[1].data = d;
  two[1].name = "\xff";
  assert_int_equal(px_st_write_buf(&b, two, 2, NULL, 0), PX_EINVAL);
  two[1].name = "y";
  const char *meta[] = {"k", "v", "k", "w"};
  assert_int_equal(px_st_write_buf(&b, two, 2, meta, 2), PX_EDUP);
  assert_int_equal(b.len, 0); /* nothing left behind on failure */
  assert_int_equal(px_st_write_buf(&b, two, 2, meta, 1), 0);
  assert_int_equal(px_st_write_buf(NULL, two, 2, meta, 1), PX_EINVAL);
  px_buf_release(&b);
  assert_int_equal(
      px_st_write_file("/nonexistent-dir/x.safetensors", two, 2, NULL, 0),
      PX_ENOENT);
}

static void test_half_conversions(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = px_f16_to_f32((uint16_t)h);
    uint16_t back = px_f32_to_f16(f);
    int is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
    if (is_nan) {
      assert_true(isnan(f));
      assert_int_equal(back, h | 0x200); /* quieted, payload kept */
    } else {
      assert_int_equal(back, h);
    }
    /* bf16: exact widening and back */
    float g = px_bf16_to_f32((uint16_t)h);
    if (!isnan(g)) assert_int_equal(px_f32_to_bf16(g), h);
  }
  assert_true(px_f16_to_f32(0x3c00) == 1.0f);
  assert_true(px_f16_to_f32(0x0001) == 0x1p-24f);
  assert_true(px_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
  assert_true(px_f16_to_f32(0x7bff) == 65504.0f);
  assert_true(isinf(px_f16_to_f32(0xfc00)) && px_f16_to_f32(0xfc00) < 0);
  /* rounding, ties to even */
  assert_int_equal(px_f32_to_f16(65519.99f), 0x7bff);
  assert_int_equal(px_f32_to_f16(65520.0f), 0x7c00);
  assert_int_equal(px_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
  assert_int_equal(px_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
  assert_int_equal(px_f32_to_f16(0x1p-25f), 0x0000); /* tie -> 0 */
  assert_int_equal(px_f32_to_f16(0x1p-25f * 1.0001f), 0x0001);
  assert_int_equal(px_f32_to_f16(3 * 0x1p-25f), 0x0002); /* 1.5 -> 2 */
  assert_int_equal(px_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);
  assert_int_equal(px_f32_to_f16(-1e-30f), 0x8000);
  assert_int_equal(px_f32_to_bf16(1.00390625f), 0x3f80); /* tie -> even */
  assert_int_equal(px_f32_to_bf16(1.01171875f), 0x3f82); /* tie -> even */
  assert_int_equal(px_f32_to_bf16(3.4e38f), 0x7f80);     /* rounds to inf */
  assert_int_equal(px_dtype_size(PX_DTYPE_BF16), 2);
  assert_int_equal(px_dtype_size((px_dtype_t)7), 0);
  assert_string_equal(px_dtype_name(PX_DTYPE_I8), "I8");
  px_dtype_t dt;
  assert_int_equal(px_dtype_parse("U8", 2, &dt), 0);
  assert_int_equal(dt, PX_DTYPE_U8);
  assert_int_equal(px_dtype_parse("U", 1, &dt), PX_EDECODE);
}

static void test_model_config(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "architecture");
  px_json_write_str(&w, "mlp");
  px_json_write_key(&w, "dims");
  px_json_write_array_begin(&w);
  px_json_write_i64(&w, 784);
  px_json_write_i64(&w, 256);
  px_json_write_i64(&w, 10);
  px_json_write_array_end(&w);
  px_json_write_key(&w, "bad");
  px_json_write_array_begin(&w);
  px_json_write_i64(&w, 0);
  px_json_write_array_end(&w);
  px_json_write_key(&w, "lr");
  px_json_write_double(&w, 0.001);
  px_json_write_object_end(&w);
  assert_int_equal(px_json_writer_finish(&w), 0);
  char path[] = "/tmp/px_test_cfg_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(px_model_config_save(path, &b), 0);
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  const px_json_t *root;
  assert_int_equal(px_model_config_load(&a, path, &root), 0);
  const char *arch;
  assert_int_equal(px_json_get_str(root, "architecture", &arch), 0);
  assert_string_equal(arch, "mlp");
  int dims[4];
  size_t nd;
  assert_int_equal(px_model_config_get_dims(root, "dims", dims, 4, &nd), 0);
  assert_int_equal(nd, 3);
  assert_int_equal(dims[0], 784);
  assert_int_equal(dims[2], 10);
  assert_int_equal(px_model_config_get_dims(root, "dims", dims, 2, &nd),
                   PX_ETOOBIG);
  assert_int_equal(px_model_config_get_dims(root, "bad", dims, 4, &nd),
                   PX_ERANGE);
  assert_int_equal(px_model_config_get_dims(root, "lr", dims, 4, &nd),
                   PX_EDECODE);
  assert_int_equal(px_model_config_get_dims(root, "x", dims, 4, &nd),
                   PX_ENOTFOUND);
  double lr;
  assert_int_equal(px_json_get_double(root, "lr", &lr), 0);
  assert_true(lr == 0.001);
  assert_int_equal(px_model_config_parse(&a, "[1]", 3, &root), PX_EDECODE);
  assert_int_equal(px_model_config_parse(&a, "{", 1, &root), PX_ETRUNC);
  px_buf_t bad;
  px_buf_init(&bad, 0);
  px_buf_append(&bad, "[1]", 3);
  assert_int_equal(px_model_config_save(path, &bad), PX_EINVAL);
  px_buf_release(&bad);
  unlink(path);
  assert_int_equal(px_model_config_load(&a, path, &root), PX_ENOENT);
  px_arena_release(&a);
  px_buf_release(&b);
}

static void test_random_models(void **state) {
  (void)state;
  px_rng_t r;
  px_rng_seed(&r, 7);
  for (int iter = 0; iter < 50; iter++) {
    px_st_entry_t e[6];
    char names[6][48];
    uint8_t *bufs[6];
    size_t n = 1 + px_rng_below(&r, 6);
    for (size_t i = 0; i < n; i++) {
      snprintf(names[i], sizeof names[i], "t%zu.%d", i, iter);
      e[i].name = names[i];
      e[i].dtype = (px_dtype_t)px_rng_below(&r, 5);
      e[i].ndim = (int)px_rng_below(&r, 4);
      size_t numel = 1;
      for (int d = 0; d < e[i].ndim; d++) {
        e[i].shape[d] = px_rng_below(&r, 5);
        numel *= e[i].shape[d];
      }
      size_t nb = numel * px_dtype_size(e[i].dtype);
      bufs[i] = malloc(nb ? nb : 1);
      fill_bytes(bufs[i], nb, (uint8_t)(iter + i));
      e[i].data = bufs[i];
    }
    px_buf_t b;
    px_buf_init(&b, 0);
    assert_int_equal(px_st_write_buf(&b, e, n, NULL, 0), 0);
    px_safetensors_t *st;
    assert_int_equal(px_st_open_mem(b.data, b.len, NULL, &st), 0);
    check_model(st, e, n);
    px_st_free(st);
    px_buf_release(&b);
    for (size_t i = 0; i < n; i++)
      free(bufs[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lying_headers),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_golden),
      cmocka_unit_test(test_misaligned),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_half_conversions),
      cmocka_unit_test(test_model_config),
      cmocka_unit_test(test_random_models),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
