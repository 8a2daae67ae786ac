/*
 * test_idx.c — IDX reader (plain and gzip) and the Fashion-MNIST loader.
 *
 * What is proven here: label and image files round-trip plain and gzipped;
 * bad magic, unsupported element types, bad ndim, truncated and padded
 * files, truncated / corrupted / trailing gzip streams, the decompression
 * cap and overflowing dims each give their error (exact-size copies under
 * ASan).  If Debian's dataset-fashion-mnist is installed, the real files
 * load: 60000 / 10000 images of 28x28, labels 0..9, 6000 / 1000 per class.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

static size_t make_idx(uint8_t *b, int ndim, const uint32_t *dims,
                       uint8_t seed) {
  b[0] = 0;
  b[1] = 0;
  b[2] = 0x08;
  b[3] = (uint8_t)ndim;
  size_t n = 1, h = 4;
  for (int i = 0; i < ndim; i++) {
    b[h++] = (uint8_t)(dims[i] >> 24);
    b[h++] = (uint8_t)(dims[i] >> 16);
    b[h++] = (uint8_t)(dims[i] >> 8);
    b[h++] = (uint8_t)dims[i];
    n *= dims[i];
  }
  for (size_t i = 0; i < n; i++)
    b[h + i] = (uint8_t)(seed + i * 13);
  return h + n;
}

static size_t gz(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(
      deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)n;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  size_t len = cap - zs.avail_out;
  deflateEnd(&zs);
  return len;
}

static int parse_copy(const uint8_t *p, size_t n, size_t max, px_idx_t *x) {
  void *c = malloc(n ? n : 1);
  memcpy(c, p, n);
  int rc = px_idx_parse(c, n, max, x);
  free(c);
  return rc;
}

static void test_roundtrip(void **state) {
  (void)state;
  uint8_t raw[1024], z[2048];
  uint32_t dims[3] = {2, 3, 4};
  size_t n = make_idx(raw, 3, dims, 5);
  size_t zn = gz(raw, n, z, sizeof z);
  for (int pass = 0; pass < 2; pass++) {
    px_idx_t x;
    assert_int_equal(parse_copy(pass ? z : raw, pass ? zn : n, 0, &x), 0);
    assert_int_equal(x.ndim, 3);
    assert_int_equal(x.dims[0], 2);
    assert_int_equal(x.dims[2], 4);
    assert_int_equal(x.n, 24);
    assert_memory_equal(x.data, raw + 16, 24);
    px_idx_release(&x);
    px_idx_release(&x); /* idempotent */
  }
  uint32_t ld[1] = {7};
  n = make_idx(raw, 1, ld, 0);
  px_idx_t x;
  assert_int_equal(parse_copy(raw, n, 0, &x), 0);
  assert_int_equal(x.n, 7);
  px_idx_release(&x);
  /* zero-sized dims are valid */
  uint32_t zd[2] = {0, 5};
  n = make_idx(raw, 2, zd, 0);
  assert_int_equal(parse_copy(raw, n, 0, &x), 0);
  assert_int_equal(x.n, 0);
  px_idx_release(&x);
  /* file round trip */
  char path[] = "/tmp/px_test_idx_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, z, zn), (ssize_t)zn);
  close(fd);
  assert_int_equal(px_idx_load(path, 0, &x), 0);
  assert_int_equal(x.n, 24);
  px_idx_release(&x);
  unlink(path);
  assert_int_equal(px_idx_load(path, 0, &x), PX_ENOENT);
}

static void test_corrupt(void **state) {
  (void)state;
  uint8_t raw[1024], z[2048], c[2048];
  uint32_t dims[3] = {2, 3, 4};
  size_t n = make_idx(raw, 3, dims, 5);
  size_t zn = gz(raw, n, z, sizeof z);
  px_idx_t x;
  for (size_t cut = 0; cut < n; cut++)
    assert_int_equal(parse_copy(raw, cut, 0, &x), PX_ETRUNC);
  for (size_t cut = 2; cut < zn; cut++)
    assert_int_equal(parse_copy(z, cut, 0, &x), PX_ETRUNC);
  memcpy(c, raw, n);
  c[n] = 0;
  assert_int_equal(parse_copy(c, n + 1, 0, &x), PX_ETRAILING);
  memcpy(c, z, zn);
  c[zn] = 0;
  assert_int_equal(parse_copy(c, zn + 1, 0, &x), PX_ETRAILING);
  memcpy(c, raw, n);
  c[0] = 1;
  assert_int_equal(parse_copy(c, n, 0, &x), PX_EDECODE);
  memcpy(c, raw, n);
  c[2] = 0x0D; /* f32 elements */
  assert_int_equal(parse_copy(c, n, 0, &x), PX_EVERSION);
  c[2] = 0x07;
  assert_int_equal(parse_copy(c, n, 0, &x), PX_EDECODE);
  memcpy(c, raw, n);
  c[3] = 0;
  assert_int_equal(parse_copy(c, n, 0, &x), PX_EDECODE);
  c[3] = 5;
  assert_int_equal(parse_copy(c, n, 0, &x), PX_EDECODE);
  memcpy(c, raw, n);
  c[3] = 4; /* one dim more than written: a huge product, short data */
  assert_true(parse_copy(c, n, 0, &x) == PX_ETRUNC);
  /* dims whose product overflows 64 bits */
  uint8_t big[4 + 16];
  memset(big, 0xff, sizeof big);
  big[0] = big[1] = 0;
  big[2] = 8;
  big[3] = 4;
  assert_int_equal(parse_copy(big, sizeof big, 0, &x), PX_ETOOBIG);
  /* corrupted deflate data / CRC */
  int saw_decode = 0;
  for (size_t i = 10; i < zn; i++) {
    memcpy(c, z, zn);
    c[i] ^= 0x55;
    int rc = parse_copy(c, zn, 0, &x);
    assert_true(rc < 0);
    if (rc == PX_EDECODE) saw_decode = 1;
  }
  assert_true(saw_decode);
  /* decompression cap (a "zip bomb": 1 MiB of zeros) */
  uint8_t *zeros = calloc(1, 1 << 20);
  uint8_t *bomb = malloc(1 << 20);
  size_t bn = gz(zeros, 1 << 20, bomb, 1 << 20);
  assert_true(bn < 8192);
  assert_int_equal(parse_copy(bomb, bn, 4096, &x), PX_ETOOBIG);
  assert_int_equal(parse_copy(raw, n, n - 1, &x), PX_ETOOBIG);
  assert_int_equal(parse_copy(raw, n, n, &x), 0);
  px_idx_release(&x);
  free(zeros);
  free(bomb);
  assert_int_equal(px_idx_parse(NULL, 1, 0, &x), PX_EINVAL);
}

static void test_fashion_mnist(void **state) {
  (void)state;
  px_mnist_t m;
  assert_int_equal(px_mnist_load("/nonexistent", "train", &m), PX_ENOENT);
  assert_int_equal(px_mnist_load(PX_FASHION_MNIST_DIR, "../x", &m), PX_EINVAL);
  if (access(PX_FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte.gz", R_OK) != 0) {
    skip();
    return;
  }
  static const struct {
    const char *split;
    size_t n;
  } k[] = {{"train", 60000}, {"t10k", 10000}};
  for (size_t s = 0; s < 2; s++) {
    assert_int_equal(px_mnist_load(PX_FASHION_MNIST_DIR, k[s].split, &m), 0);
    assert_int_equal(m.n, k[s].n);
    assert_int_equal(m.rows, 28);
    assert_int_equal(m.cols, 28);
    assert_int_equal(m.images.n, k[s].n * 784);
    size_t hist[10] = {0};
    for (size_t i = 0; i < m.n; i++) {
      assert_true(m.labels.data[i] < 10);
      hist[m.labels.data[i]]++;
    }
    for (int c = 0; c < 10; c++)
      assert_int_equal(hist[c], k[s].n / 10);
    px_mnist_release(&m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
