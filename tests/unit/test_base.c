/*
 * test_base.c — errors, allocation hook, buffers, arenas, RNG, config,
 * hex/number parsing and crash-safe file writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plexus/base.h"

static void test_errors(void **state) {
  (void)state;
  assert_string_equal(px_strerror(0), "success");
  assert_string_equal(px_err_name(PX_ETOOBIG), "PX_ETOOBIG");
  assert_string_equal(px_strerror(PX_EAUTH),
                      "authentication failed (message tampered or wrong key)");
  assert_string_equal(px_strerror(-9999), "unknown error");
  assert_string_equal(px_err_name(12345), "PX_EUNKNOWN");
  /* Every code in the table has a distinct name and a message. */
  for (int e = 0; e >= PX_ERR_LAST; e--) {
    assert_string_not_equal(px_err_name(e), "PX_EUNKNOWN");
    assert_string_not_equal(px_strerror(e), "unknown error");
  }
  assert_int_equal(PX_ERR_COUNT, 1 - PX_ERR_LAST);
  assert_int_equal(px_err_from_errno(2 /* ENOENT */), PX_ENOENT);
}

/* Allocator that fails once a budget of calls is spent. */
static int g_budget;
static void *fail_malloc(size_t n, void *ud) {
  (void)ud;
  return g_budget-- > 0 ? malloc(n) : NULL;
}
static void *fail_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return g_budget-- > 0 ? realloc(p, n) : NULL;
}
static void plain_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static void test_buf(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 10);
  assert_int_equal(px_buf_append(&b, "0123456789", 10), 0);
  assert_int_equal(px_buf_append(&b, "x", 1), PX_ETOOBIG); /* the cap holds */
  assert_int_equal(b.len, 10);
  px_buf_consume(&b, 4);
  assert_memory_equal(b.data, "456789", 6);
  assert_int_equal(px_buf_printf(&b, "%d", 42), 0);
  assert_memory_equal(b.data, "45678942", 8);
  px_buf_release(&b);
  assert_null(b.data);
  /* Out of memory is reported, the buffer unchanged. */
  px_allocator_t a = {fail_malloc, fail_realloc, plain_free, NULL};
  px_set_allocator(&a);
  g_budget = 0;
  px_buf_init(&b, 0);
  assert_int_equal(px_buf_append(&b, "abc", 3), PX_ENOMEM);
  assert_int_equal(b.len, 0);
  px_set_allocator(NULL);
  px_buf_release(&b);
}

static void test_arena(void **state) {
  (void)state;
  px_arena_t a;
  px_arena_init(&a, 256, 1024);
  uint8_t *p = px_arena_alloc(&a, 10);
  uint8_t *q = px_arena_alloc(&a, 10);
  assert_non_null(p);
  assert_non_null(q);
  assert_true(((uintptr_t)p & 15) == 0 && ((uintptr_t)q & 15) == 0);
  assert_true(q >= p + 16);
  assert_int_equal(p[0] | p[9], 0);         /* zeroed */
  assert_non_null(px_arena_alloc(&a, 600)); /* own block */
  assert_null(px_arena_alloc(&a, 600));     /* past the 1024 cap */
  px_arena_release(&a);
  assert_int_equal(a.total, 0);
}

static int g_released;
static void count_release(void *item) { g_released += *(int *)item; }

static void test_queue(void **state) {
  (void)state;
  px_queue_t q;
  px_queue_init(&q, sizeof(int), 40);
  int v;
  assert_int_equal(px_queue_pop(&q, &v), 0);
  /* FIFO order across growth and compaction. */
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    for (int k = 0; k < 7; k++) {
      int *slot = px_queue_push(&q);
      assert_non_null(slot);
      assert_int_equal(*slot, 0); /* zeroed */
      *slot = next_in++;
    }
    for (int k = 0; k < 5; k++) {
      assert_int_equal(px_queue_pop(&q, &v), 1);
      assert_int_equal(v, next_out++);
    }
    if (px_queue_count(&q) > 30) break;
  }
  assert_int_equal(px_queue_count(&q), (size_t)(next_in - next_out));
  /* The cap holds: pushes beyond max items fail cleanly. */
  while (px_queue_count(&q) < 40)
    *(int *)px_queue_push(&q) = 1;
  assert_null(px_queue_push(&q));
  g_released = 0;
  int expect = 0;
  for (size_t i = q.head; i < q.len; i++)
    expect += ((int *)q.items)[i];
  px_queue_release(&q, count_release);
  assert_int_equal(g_released, expect);
  assert_null(q.items);
}

static void test_rng(void **state) {
  (void)state;
  px_rng_t r1, r2;
  px_rng_seed(&r1, 12345);
  px_rng_seed(&r2, 12345);
  for (int i = 0; i < 1000; i++)
    assert_true(px_rng_next(&r1) == px_rng_next(&r2));
  /* Golden value: xoshiro256** seeded by splitmix64(0) — the stream must be
   * the same on every machine (the simulator's replays depend on it). */
  px_rng_seed(&r1, 0);
  uint64_t first = px_rng_next(&r1);
  px_rng_seed(&r2, 0);
  assert_true(px_rng_next(&r2) == first);
  /* splitmix64(0) state: e220a8397b1dcdaf 6e789e6aa1b965f4 06c45d188009454f
   * f88bb8a8724c81ec; first output rotl(s1*5,7)*9. */
  uint64_t s1 = 0x6e789e6aa1b965f4ull * 5;
  uint64_t expect = ((s1 << 7) | (s1 >> 57)) * 9;
  assert_true(first == expect);
  int hist[7] = {0};
  for (int i = 0; i < 70000; i++)
    hist[px_rng_below(&r1, 7)]++;
  for (int i = 0; i < 7; i++)
    assert_true(hist[i] > 9000 && hist[i] < 11000);
  assert_true(px_rng_below(&r1, 0) == 0);
  uint8_t buf[13];
  px_rng_fill(&r1, buf, sizeof buf);
}

static void test_config(void **state) {
  (void)state;
  px_config_t c;
  px_config_init(&c);
  const char *text = "# comment\n"
                     "log.level = debug\n"
                     "[p2p]\n"
                     "listen = \"127.0.0.1:7000\"\n"
                     "  max_msg=1024  \n"
                     "; also a comment\n";
  int line = 0;
  assert_int_equal(px_config_parse(&c, text, strlen(text), &line), 0);
  assert_string_equal(px_config_get(&c, "log.level"), "debug");
  assert_string_equal(px_config_get(&c, "p2p.listen"), "127.0.0.1:7000");
  uint64_t v;
  assert_int_equal(px_config_get_u64(&c, "p2p.max_msg", 0, &v), 0);
  assert_true(v == 1024);
  assert_int_equal(px_config_get_u64(&c, "p2p.absent", 7, &v), 0);
  assert_true(v == 7);
  assert_int_equal(px_config_get_u64(&c, "p2p.listen", 0, &v), PX_ECONFIG);
  /* A flag beats the file, whichever comes first. */
  px_config_set(&c, "p2p.listen", "1.2.3.4:5", 1);
  const char *again = "p2p.listen = 9.9.9.9:9\n";
  assert_int_equal(px_config_parse(&c, again, strlen(again), NULL), 0);
  assert_string_equal(px_config_get(&c, "p2p.listen"), "1.2.3.4:5");
  /* Errors name the line. */
  const char *bad = "a = 1\nthis line has no equals\n";
  assert_int_equal(px_config_parse(&c, bad, strlen(bad), &line), PX_ECONFIG);
  assert_int_equal(line, 2);
  const char *badkey = "Bad Key = 1\n";
  assert_int_equal(px_config_parse(&c, badkey, strlen(badkey), &line),
                   PX_ECONFIG);
  int b;
  px_config_set(&c, "x.flag", "yes", 0);
  assert_int_equal(px_config_get_bool(&c, "x.flag", 0, &b), 0);
  assert_int_equal(b, 1);
  px_config_set(&c, "x.flag", "perhaps", 0);
  assert_int_equal(px_config_get_bool(&c, "x.flag", 0, &b), PX_ECONFIG);
  /* Round trip through a file. */
  char dir[] = "/tmp/px-base.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/cfg", dir);
  assert_int_equal(px_config_write_file(&c, path), 0);
  px_config_t d;
  px_config_init(&d);
  assert_int_equal(px_config_load_file(&d, path, &line), 0);
  assert_string_equal(px_config_get(&d, "p2p.listen"), "1.2.3.4:5");
  unlink(path);
  rmdir(dir);
}

static void test_hex_and_numbers(void **state) {
  (void)state;
  uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
  char hex[7];
  px_hex_encode(in, 3, hex);
  assert_string_equal(hex, "00abff");
  assert_int_equal(px_hex_decode("00ABff", out, 3), 0);
  assert_memory_equal(in, out, 3);
  assert_int_equal(px_hex_decode("00abf", out, 3), PX_EDECODE);
  assert_int_equal(px_hex_decode("00abfg", out, 3), PX_EDECODE);
  uint64_t v;
  assert_int_equal(px_parse_u64("18446744073709551615", &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(px_parse_u64("18446744073709551616", &v), PX_ERANGE);
  assert_int_equal(px_parse_u64("12a", &v), PX_EINVAL);
  assert_int_equal(px_parse_u64("", &v), PX_EINVAL);
  assert_int_equal(px_parse_u64("-1", &v), PX_EINVAL);
}

static void test_files(void **state) {
  (void)state;
  char dir[] = "/tmp/px-files.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], deep[128];
  snprintf(path, sizeof path, "%s/f", dir);
  assert_int_equal(px_file_write_atomic(path, "hello", 5, 0600), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  uint8_t *d;
  size_t n;
  assert_int_equal(px_file_read_all(path, 100, &d, &n), 0);
  assert_int_equal(n, 5);
  assert_string_equal((char *)d, "hello");
  free(d);
  assert_int_equal(px_file_read_all(path, 4, &d, &n), PX_ETOOBIG);
  assert_int_equal(px_file_read_all("/nonexistent/x", 4, &d, &n), PX_ENOENT);
  /* Replace: readers see old or new, never a torn file; no temp left. */
  assert_int_equal(px_file_write_atomic(path, "bye", 3, 0644), 0);
  assert_int_equal(px_file_read_all(path, 100, &d, &n), 0);
  assert_string_equal((char *)d, "bye");
  free(d);
  snprintf(deep, sizeof deep, "%s/a/b/c", dir);
  assert_int_equal(px_mkdir_p(deep, 0700), 0);
  assert_int_equal(px_mkdir_p(deep, 0700), 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_buf),
      cmocka_unit_test(test_arena),
      cmocka_unit_test(test_queue),
      cmocka_unit_test(test_rng),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_hex_and_numbers),
      cmocka_unit_test(test_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
