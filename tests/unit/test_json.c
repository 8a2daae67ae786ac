/*
 * test_json.c — unit tests for the strict JSON parser and writer.
 *
 * What is proven here:
 *  - JSONTestSuite-style cases (written here by hand): every "y_" case
 *    parses, every "n_" case is rejected with the documented error code
 *    (syntax, truncation, trailing bytes, duplicate keys, bad UTF-8, lone
 *    surrogates, leading zeros, non-JSON whitespace, BOM, comments);
 *  - each parse runs on an exact-size heap copy so ASan sees any over-read;
 *  - limits (depth, values, members, string, input size, arena cap) give
 *    PX_ETOOBIG / PX_ENOMEM, and 100k nested brackets do not recurse;
 *  - integer getters are exact at the int64/uint64 boundaries; doubles are
 *    correctly rounded; typed getters report ENOTFOUND / EDECODE / ERANGE;
 *  - the writer escapes, refuses misuse (PX_ESTATE) and invalid UTF-8,
 *    prints doubles and floats that read back bit for bit, and a
 *    parse -> write -> parse round trip gives an equal tree and identical
 *    bytes on the second write.
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

#include "plexus/base.h"
#include "plexus/json.h"

/* Parse n bytes from an exact-size heap copy. */
static int parse_n(px_arena_t *a, const char *s, size_t n, px_json_t **out,
                   const px_json_limits_t *lim) {
  char *copy = malloc(n ? n : 1);
  assert_non_null(copy);
  memcpy(copy, s, n);
  size_t off = 0;
  int rc = px_json_parse(a, copy, n, lim, out, &off);
  assert_true(off <= n);
  free(copy);
  return rc;
}

static int parse_s(px_arena_t *a, const char *s, px_json_t **out) {
  return parse_n(a, s, strlen(s), out, NULL);
}

typedef struct {
  const char *text;
  size_t len; /* 0: strlen */
  int rc;
} jcase_t;

static const jcase_t k_cases[] = {
    /* accepted */
    {"[]", 0, 0},
    {"{}", 0, 0},
    {" \t\r\n[ ] \n", 0, 0},
    {"0", 0, 0},
    {"-0", 0, 0},
    {"1.5e10", 0, 0},
    {"-1E-5", 0, 0},
    {"1e+2", 0, 0},
    {"0.000", 0, 0},
    {"\"\"", 0, 0},
    {"\"\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"", 0, 0},
    {"\"\\ud83d\\ude00\"", 0, 0},
    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"", 0, 0},
    {"[[[[]]]]", 0, 0},
    {"{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":true,\"e\":false}", 0, 0},
    {"{\"a\":1,\"A\":2,\"aa\":3,\"\":4}", 0, 0},
    {"\"\\u0000\"", 0, 0},
    {"[1,-2,3.25,\"x\",true,false,null,[],{}]", 0, 0},
    {"\"\x7f\"", 0, 0},
    /* truncated */
    {"", 0, PX_ETRUNC},
    {"  ", 0, PX_ETRUNC},
    {"[", 0, PX_ETRUNC},
    {"[1", 0, PX_ETRUNC},
    {"[1,", 0, PX_ETRUNC},
    {"{", 0, PX_ETRUNC},
    {"{\"a\"", 0, PX_ETRUNC},
    {"{\"a\":", 0, PX_ETRUNC},
    {"{\"a\":1", 0, PX_ETRUNC},
    {"\"abc", 0, PX_ETRUNC},
    {"\"abc\\", 0, PX_ETRUNC},
    {"\"abc\\\"", 0, PX_ETRUNC},
    {"tru", 0, PX_ETRUNC},
    {"nul", 0, PX_ETRUNC},
    {"-", 0, PX_ETRUNC},
    {"1.", 0, PX_ETRUNC},
    {"1e", 0, PX_ETRUNC},
    {"1e+", 0, PX_ETRUNC},
    /* syntax */
    {"[1,]", 0, PX_EDECODE},
    {"[,1]", 0, PX_EDECODE},
    {"[1 2]", 0, PX_EDECODE},
    {"[1;2]", 0, PX_EDECODE},
    {"{\"a\":1,}", 0, PX_EDECODE},
    {"{,}", 0, PX_EDECODE},
    {"{a:1}", 0, PX_EDECODE},
    {"{\"a\" 1}", 0, PX_EDECODE},
    {"{\"a\":1 \"b\":2}", 0, PX_EDECODE},
    {"{1:1}", 0, PX_EDECODE},
    {"[1}", 0, PX_EDECODE},
    {"{\"a\":1]", 0, PX_EDECODE},
    {"['a']", 0, PX_EDECODE},
    {"trux", 0, PX_EDECODE},
    {"True", 0, PX_EDECODE},
    {"nulL", 0, PX_EDECODE},
    {"NaN", 0, PX_EDECODE},
    {"Infinity", 0, PX_EDECODE},
    {"-Infinity", 0, PX_EDECODE},
    {"01", 0, PX_EDECODE},
    {"-01", 0, PX_EDECODE},
    {"[00]", 0, PX_EDECODE},
    {"+1", 0, PX_EDECODE},
    {".5", 0, PX_EDECODE},
    {"1.e5", 0, PX_EDECODE},
    {"1.x", 0, PX_EDECODE},
    {"1ex", 0, PX_EDECODE},
    {"-x", 0, PX_EDECODE},
    {"[-]", 0, PX_EDECODE},
    {"/*c*/[1]", 0, PX_EDECODE},
    {"[\f1]", 0, PX_EDECODE},
    {"\xc2\xa0[]", 0, PX_EDECODE},
    {"\xef\xbb\xbf[]", 0, PX_EDECODE},
    {"\"\\x\"", 0, PX_EDECODE},
    {"\"\\U0041\"", 0, PX_EDECODE},
    {"\"\\u12\"", 0, PX_EDECODE},
    {"\"\\uZZZZ\"", 0, PX_EDECODE},
    {"\"\\ud800\"", 0, PX_EDECODE},
    {"\"\\ud800x\"", 0, PX_EDECODE},
    {"\"\\ud800\\u0041\"", 0, PX_EDECODE},
    {"\"\\ud800\\ud800\"", 0, PX_EDECODE},
    {"\"\\udc00\"", 0, PX_EDECODE},
    {"\"\\udc00\\ud800\"", 0, PX_EDECODE},
    {"\"\\ud800\\udc0\"", 0, PX_EDECODE},
    {"\"a\x01"
     "b\"",
     0, PX_EDECODE},
    {"\"\t\"", 0, PX_EDECODE},
    {"\"\n\"", 0, PX_EDECODE},
    {"\"\x00\"", 3, PX_EDECODE},
    {"\"\xc0\xaf\"", 0, PX_EDECODE},         /* overlong '/' */
    {"\"\xc1\xbf\"", 0, PX_EDECODE},         /* overlong */
    {"\"\xe0\x80\xaf\"", 0, PX_EDECODE},     /* overlong 3 */
    {"\"\xf0\x80\x80\xaf\"", 0, PX_EDECODE}, /* overlong 4 */
    {"\"\xed\xa0\x80\"", 0, PX_EDECODE},     /* encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", 0, PX_EDECODE}, /* > U+10FFFF */
    {"\"\xf5\x80\x80\x80\"", 0, PX_EDECODE},
    {"\"\xff\"", 0, PX_EDECODE},
    {"\"\x80\"", 0, PX_EDECODE},
    {"\"\xe2\x82\"", 0, PX_EDECODE}, /* truncated sequence */
    {"\"\xe2\x82", 0, PX_ETRUNC},
    {"\xe2\x82\xac", 0, PX_EDECODE},
    /* trailing */
    {"[1] x", 0, PX_ETRAILING},
    {"[1]]", 0, PX_ETRAILING},
    {"1 2", 0, PX_ETRAILING},
    {"0x10", 0, PX_ETRAILING},
    {"[1]//c", 0, PX_ETRAILING},
    {"{}\x00", 3, PX_ETRAILING},
    {"\"a\"\"b\"", 0, PX_ETRAILING},
    /* duplicates */
    {"{\"a\":1,\"a\":2}", 0, PX_EDUP},
    {"{\"a\":1,\"\\u0061\":2}", 0, PX_EDUP},
    {"{\"x\":{\"b\":1,\"c\":2,\"b\":3}}", 0, PX_EDUP},
    {"{\"\":1,\"\":2}", 0, PX_EDUP},
};

static void test_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < PX_ARRAY_LEN(k_cases); i++) {
    const jcase_t *c = &k_cases[i];
    size_t n = c->len ? c->len : strlen(c->text);
    px_arena_t a;
    px_arena_init(&a, 0, 0);
    px_json_t *v = (px_json_t *)(uintptr_t)1;
    int rc = parse_n(&a, c->text, n, &v, NULL);
    if (rc != c->rc)
      fail_msg("case %zu '%s': got %s want %s", i, c->text, px_err_name(rc),
               px_err_name(c->rc));
    if (rc == 0)
      assert_non_null(v);
    else
      assert_null(v);
    px_arena_release(&a);
  }
}

static void test_values(void **state) {
  (void)state;
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  assert_int_equal(parse_s(&a,
                           "{\"name\":\"plexus\",\"dim\":288,\"neg\":-5,"
                           "\"f\":0.1,\"ok\":true,\"arr\":[1,2,3],"
                           "\"obj\":{\"k\":null},\"nul\":\"a\\u0000b\","
                           "\"emoji\":\"\\ud83d\\ude00\"}",
                           &v),
                   0);
  assert_int_equal(v->type, PX_JSON_OBJECT);
  assert_int_equal(px_json_count(v), 9);
  /* members keep document order */
  assert_string_equal(v->members[0].key, "name");
  assert_string_equal(v->members[8].key, "emoji");
  const char *s;
  assert_int_equal(px_json_get_str(v, "name", &s), 0);
  assert_string_equal(s, "plexus");
  uint64_t u;
  int64_t i;
  double d;
  int b;
  assert_int_equal(px_json_get_u64(v, "dim", &u), 0);
  assert_int_equal(u, 288);
  assert_int_equal(px_json_get_i64(v, "neg", &i), 0);
  assert_int_equal(i, -5);
  assert_int_equal(px_json_get_u64(v, "neg", &u), PX_ERANGE);
  assert_int_equal(px_json_get_double(v, "f", &d), 0);
  assert_true(d == 0.1);
  assert_int_equal(px_json_get_i64(v, "f", &i), PX_EDECODE);
  assert_int_equal(px_json_get_bool(v, "ok", &b), 0);
  assert_int_equal(b, 1);
  assert_int_equal(px_json_get_bool(v, "dim", &b), PX_EDECODE);
  assert_int_equal(px_json_get_str(v, "missing", &s), PX_ENOTFOUND);
  assert_int_equal(px_json_get_str(v, "dim", &s), PX_EDECODE);
  assert_int_equal(px_json_get_str(v, "nul", &s), PX_EDECODE);
  size_t len;
  assert_int_equal(px_json_as_strn(px_json_get(v, "nul"), &s, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(s, "a\0b", 3);
  assert_int_equal(px_json_get_str(v, "emoji", &s), 0);
  assert_string_equal(s, "\xf0\x9f\x98\x80");
  const px_json_t *arr, *obj;
  assert_int_equal(px_json_get_array(v, "arr", &arr), 0);
  assert_int_equal(px_json_count(arr), 3);
  assert_int_equal(px_json_as_u64(px_json_at(arr, 2), &u), 0);
  assert_int_equal(u, 3);
  assert_null(px_json_at(arr, 3));
  assert_null(px_json_at(v, 0));
  assert_int_equal(px_json_get_array(v, "obj", &arr), PX_EDECODE);
  assert_int_equal(px_json_get_object(v, "obj", &obj), 0);
  assert_int_equal(px_json_get(obj, "k")->type, PX_JSON_NULL);
  assert_null(px_json_get(NULL, "k"));
  assert_null(px_json_get(arr, "k"));
  assert_int_equal(px_json_as_u64(NULL, &u), PX_ENOTFOUND);
  assert_string_equal(px_json_type_name(PX_JSON_ARRAY), "array");
  px_arena_release(&a);
}

static int num_i64(const char *s, int64_t *out) {
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  int rc = parse_s(&a, s, &v);
  if (rc == 0) rc = px_json_as_i64(v, out);
  px_arena_release(&a);
  return rc;
}

static int num_u64(const char *s, uint64_t *out) {
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  int rc = parse_s(&a, s, &v);
  if (rc == 0) rc = px_json_as_u64(v, out);
  px_arena_release(&a);
  return rc;
}

static int num_double(const char *s, double *out) {
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  int rc = parse_s(&a, s, &v);
  if (rc == 0) rc = px_json_as_double(v, out);
  px_arena_release(&a);
  return rc;
}

static void test_numbers(void **state) {
  (void)state;
  int64_t i;
  uint64_t u;
  double d;
  assert_int_equal(num_i64("9223372036854775807", &i), 0);
  assert_true(i == INT64_MAX);
  assert_int_equal(num_i64("-9223372036854775808", &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(num_i64("9223372036854775808", &i), PX_ERANGE);
  assert_int_equal(num_i64("-9223372036854775809", &i), PX_ERANGE);
  assert_int_equal(num_i64("-0", &i), 0);
  assert_true(i == 0);
  assert_int_equal(num_u64("18446744073709551615", &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(num_u64("18446744073709551616", &u), PX_ERANGE);
  assert_int_equal(num_u64("99999999999999999999999", &u), PX_ERANGE);
  assert_int_equal(num_u64("-1", &u), PX_ERANGE);
  assert_int_equal(num_u64("-0", &u), 0);
  assert_int_equal(num_u64("1.0", &u), PX_EDECODE);
  assert_int_equal(num_u64("1e2", &u), PX_EDECODE);
  assert_int_equal(num_u64("\"1\"", &u), PX_EDECODE);
  assert_int_equal(num_double("0.1", &d), 0);
  assert_true(d == 0.1);
  assert_int_equal(num_double("-0", &d), 0);
  assert_true(d == 0 && signbit(d));
  assert_int_equal(num_double("2.2250738585072011e-308", &d), 0);
  assert_true(d == 2.2250738585072011e-308);
  assert_int_equal(num_double("1e-400", &d), 0);
  assert_true(d == 0);
  assert_int_equal(num_double("1e400", &d), PX_ERANGE);
  assert_int_equal(num_double("-1e400", &d), PX_ERANGE);
  assert_int_equal(num_double("123456789012345678901234567890", &d), 0);
  assert_true(d == 123456789012345678901234567890.0);
  assert_int_equal(num_double("true", &d), PX_EDECODE);
}

static void test_depth(void **state) {
  (void)state;
  char buf[2 * PX_JSON_MAX_DEPTH + 4];
  px_arena_t a;
  px_json_t *v;
  for (int depth = PX_JSON_MAX_DEPTH; depth <= PX_JSON_MAX_DEPTH + 1; depth++) {
    size_t n = 0;
    for (int k = 0; k < depth; k++)
      buf[n++] = '[';
    for (int k = 0; k < depth; k++)
      buf[n++] = ']';
    px_arena_init(&a, 0, 0);
    int rc = parse_n(&a, buf, n, &v, NULL);
    assert_int_equal(rc, depth <= PX_JSON_MAX_DEPTH ? 0 : PX_ETOOBIG);
    if (rc == 0) {
      /* write_value and equal handle the deepest legal tree */
      px_buf_t out;
      px_buf_init(&out, 0);
      px_json_writer_t w;
      px_json_writer_init(&w, &out);
      px_json_write_value(&w, v);
      assert_int_equal(px_json_writer_finish(&w), 0);
      assert_int_equal(out.len, n);
      assert_memory_equal(out.data, buf, n);
      assert_true(px_json_equal(v, v));
      px_buf_release(&out);
    }
    px_arena_release(&a);
  }
  /* 100k nested openers: a clean error, no recursion */
  size_t big = 100000;
  char *deep = malloc(big);
  assert_non_null(deep);
  memset(deep, '[', big);
  px_arena_init(&a, 0, 0);
  assert_int_equal(parse_n(&a, deep, big, &v, NULL), PX_ETOOBIG);
  px_arena_release(&a);
  memset(deep, '{', big);
  px_arena_init(&a, 0, 0);
  assert_int_equal(parse_n(&a, deep, big, &v, NULL), PX_EDECODE);
  px_arena_release(&a);
  free(deep);
  /* a caller's smaller depth */
  px_json_limits_t lim = {0};
  lim.max_depth = 2;
  px_arena_init(&a, 0, 0);
  assert_int_equal(parse_n(&a, "[[1]]", 5, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "[[[1]]]", 7, &v, &lim), PX_ETOOBIG);
  px_arena_release(&a);
}

static void test_limits(void **state) {
  (void)state;
  px_arena_t a;
  px_json_t *v;
  px_json_limits_t lim = {0};
  px_arena_init(&a, 0, 0);
  lim.max_values = 3;
  assert_int_equal(parse_n(&a, "[1,2]", 5, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "[1,2,3]", 7, &v, &lim), PX_ETOOBIG);
  memset(&lim, 0, sizeof lim);
  lim.max_members = 2;
  assert_int_equal(parse_n(&a, "{\"a\":1,\"b\":[1,2]}", 17, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "[1,2,3]", 7, &v, &lim), PX_ETOOBIG);
  memset(&lim, 0, sizeof lim);
  lim.max_string = 3;
  assert_int_equal(parse_n(&a, "\"abc\"", 5, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "\"\\u0061\\u0062c\"", 15, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "\"abcd\"", 6, &v, &lim), PX_ETOOBIG);
  assert_int_equal(parse_n(&a, "{\"abcd\":1}", 10, &v, &lim), PX_ETOOBIG);
  assert_int_equal(parse_n(&a, "1234", 4, &v, &lim), PX_ETOOBIG);
  memset(&lim, 0, sizeof lim);
  lim.max_input = 4;
  assert_int_equal(parse_n(&a, "[12]", 4, &v, &lim), 0);
  assert_int_equal(parse_n(&a, "[123]", 5, &v, &lim), PX_ETOOBIG);
  px_arena_release(&a);
  /* arena cap: the tree cannot outgrow the caller's arena */
  px_arena_init(&a, 1024, 4096);
  char big[8192];
  size_t n = 0;
  big[n++] = '[';
  for (int k = 0; k < 1000; k++) {
    big[n++] = '1';
    big[n++] = ',';
  }
  big[n++] = '1';
  big[n++] = ']';
  assert_int_equal(parse_n(&a, big, n, &v, NULL), PX_ENOMEM);
  px_arena_release(&a);
  /* arguments */
  px_arena_init(&a, 0, 0);
  assert_int_equal(px_json_parse(NULL, "1", 1, NULL, &v, NULL), PX_EINVAL);
  assert_int_equal(px_json_parse(&a, NULL, 1, NULL, &v, NULL), PX_EINVAL);
  assert_int_equal(px_json_parse(&a, "1", 1, NULL, NULL, NULL), PX_EINVAL);
  px_arena_release(&a);
}

static void test_err_offset(void **state) {
  (void)state;
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  size_t off;
  assert_int_equal(px_json_parse(&a, "[1,2,x]", 7, NULL, &v, &off), PX_EDECODE);
  assert_int_equal(off, 5);
  assert_int_equal(px_json_parse(&a, "[1]  x", 6, NULL, &v, &off),
                   PX_ETRAILING);
  assert_int_equal(off, 5);
  assert_int_equal(px_json_parse(&a, "{\"a\": 01}", 9, NULL, &v, &off),
                   PX_EDECODE);
  assert_int_equal(off, 7);
  px_arena_release(&a);
}

static void test_many_keys(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  for (int k = 999; k >= 0; k--) {
    char key[16];
    snprintf(key, sizeof key, "k%d", k);
    px_json_write_key(&w, key);
    px_json_write_i64(&w, k * 3);
  }
  px_json_write_object_end(&w);
  assert_int_equal(px_json_writer_finish(&w), 0);
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  assert_int_equal(parse_n(&a, (char *)b.data, b.len, &v, NULL), 0);
  assert_int_equal(v->n, 1000);
  for (int k = 0; k < 1000; k++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", k);
    int64_t x;
    assert_int_equal(px_json_get_i64(v, key, &x), 0);
    assert_int_equal(x, k * 3);
  }
  assert_null(px_json_get(v, "k1000"));
  assert_null(px_json_get(v, "k"));
  assert_string_equal(v->members[0].key, "k999");
  px_arena_release(&a);
  px_buf_release(&b);
}

static void expect_written(px_buf_t *b, const char *want) {
  assert_int_equal(b->len, strlen(want));
  assert_memory_equal(b->data, want, b->len);
}

static void test_writer(void **state) {
  (void)state;
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "s");
  px_json_write_str(&w, "a\"b\\c\n\x01\x1f\x7f\xc3\xa9/");
  px_json_write_key(&w, "i");
  px_json_write_i64(&w, INT64_MIN);
  px_json_write_key(&w, "u");
  px_json_write_u64(&w, UINT64_MAX);
  px_json_write_key(&w, "d");
  px_json_write_double(&w, 0.1);
  px_json_write_key(&w, "f");
  px_json_write_float(&w, 0.1f);
  px_json_write_key(&w, "a");
  px_json_write_array_begin(&w);
  px_json_write_bool(&w, 1);
  px_json_write_bool(&w, 0);
  px_json_write_null(&w);
  px_json_write_array_begin(&w);
  px_json_write_array_end(&w);
  px_json_write_object_begin(&w);
  px_json_write_object_end(&w);
  px_json_write_number_text(&w, "-1.5e+3", 7);
  px_json_write_array_end(&w);
  px_json_write_keyn(&w, "n\0l", 3);
  px_json_write_double(&w, -0.0);
  px_json_write_object_end(&w);
  assert_int_equal(px_json_writer_finish(&w), 0);
  expect_written(&b, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u001f\x7f\xc3\xa9/\","
                     "\"i\":-9223372036854775808,\"u\":18446744073709551615,"
                     "\"d\":0.1,\"f\":0.1,\"a\":[true,false,null,[],{},"
                     "-1.5e+3],\"n\\u0000l\":-0}");
  /* the output is itself valid and reads back */
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v;
  assert_int_equal(parse_n(&a, (char *)b.data, b.len, &v, NULL), 0);
  const char *s;
  assert_int_equal(px_json_get_str(v, "s", &s), 0);
  assert_string_equal(s, "a\"b\\c\n\x01\x1f\x7f\xc3\xa9/");
  px_arena_release(&a);
  px_buf_release(&b);
}

static int writer_err(void (*fn)(px_json_writer_t *)) {
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  fn(&w);
  int rc = px_json_writer_finish(&w);
  px_buf_release(&b);
  return rc;
}

static void w_nokey(px_json_writer_t *w) {
  px_json_write_object_begin(w);
  px_json_write_i64(w, 1);
  px_json_write_object_end(w);
}
static void w_key_in_array(px_json_writer_t *w) {
  px_json_write_array_begin(w);
  px_json_write_key(w, "a");
  px_json_write_array_end(w);
}
static void w_dangling_key(px_json_writer_t *w) {
  px_json_write_object_begin(w);
  px_json_write_key(w, "a");
  px_json_write_object_end(w);
}
static void w_unbalanced(px_json_writer_t *w) { px_json_write_array_begin(w); }
static void w_mismatch(px_json_writer_t *w) {
  px_json_write_array_begin(w);
  px_json_write_object_end(w);
}
static void w_two_values(px_json_writer_t *w) {
  px_json_write_i64(w, 1);
  px_json_write_i64(w, 2);
}
static void w_nothing(px_json_writer_t *w) { (void)w; }
static void w_bad_utf8(px_json_writer_t *w) {
  px_json_write_str(w, "\xc0\xaf");
}
static void w_surrogate(px_json_writer_t *w) {
  px_json_write_str(w, "\xed\xa0\x80");
}
static void w_nan(px_json_writer_t *w) { px_json_write_double(w, NAN); }
static void w_inf(px_json_writer_t *w) { px_json_write_float(w, INFINITY); }
static void w_bad_number(px_json_writer_t *w) {
  px_json_write_number_text(w, "01", 2);
}
static void w_bad_number2(px_json_writer_t *w) {
  px_json_write_number_text(w, "1.", 2);
}
static void w_too_deep(px_json_writer_t *w) {
  for (int i = 0; i <= PX_JSON_MAX_DEPTH; i++)
    px_json_write_array_begin(w);
}

static void test_writer_errors(void **state) {
  (void)state;
  assert_int_equal(writer_err(w_nokey), PX_ESTATE);
  assert_int_equal(writer_err(w_key_in_array), PX_ESTATE);
  assert_int_equal(writer_err(w_dangling_key), PX_ESTATE);
  assert_int_equal(writer_err(w_unbalanced), PX_ESTATE);
  assert_int_equal(writer_err(w_mismatch), PX_ESTATE);
  assert_int_equal(writer_err(w_two_values), PX_ESTATE);
  assert_int_equal(writer_err(w_nothing), PX_ESTATE);
  assert_int_equal(writer_err(w_bad_utf8), PX_EINVAL);
  assert_int_equal(writer_err(w_surrogate), PX_EINVAL);
  assert_int_equal(writer_err(w_nan), PX_EINVAL);
  assert_int_equal(writer_err(w_inf), PX_EINVAL);
  assert_int_equal(writer_err(w_bad_number), PX_EINVAL);
  assert_int_equal(writer_err(w_bad_number2), PX_EINVAL);
  assert_int_equal(writer_err(w_too_deep), PX_ETOOBIG);
  /* the buffer's cap */
  px_buf_t b;
  px_buf_init(&b, 8);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_str(&w, "0123456789");
  assert_int_equal(px_json_writer_finish(&w), PX_ETOOBIG);
  px_buf_release(&b);
}

/* Doubles and floats from random bit patterns print and read back exactly. */
static void test_float_roundtrip(void **state) {
  (void)state;
  px_rng_t r;
  px_rng_seed(&r, 42);
  for (int k = 0; k < 20000; k++) {
    uint64_t bits = px_rng_next(&r);
    double d;
    memcpy(&d, &bits, 8);
    uint32_t fb = (uint32_t)bits;
    float f;
    memcpy(&f, &fb, 4);
    if (k % 3 == 0) d = (double)(int64_t)(bits >> 20) / 1000.0;
    px_buf_t b;
    px_buf_init(&b, 0);
    px_json_writer_t w;
    px_json_writer_init(&w, &b);
    px_json_write_array_begin(&w);
    px_json_write_double(&w, d);
    px_json_write_float(&w, f);
    px_json_write_array_end(&w);
    int rc = px_json_writer_finish(&w);
    if (!isfinite(d) || !isfinite(f)) {
      assert_int_equal(rc, PX_EINVAL);
      px_buf_release(&b);
      continue;
    }
    assert_int_equal(rc, 0);
    px_arena_t a;
    px_arena_init(&a, 0, 0);
    px_json_t *v;
    assert_int_equal(parse_n(&a, (char *)b.data, b.len, &v, NULL), 0);
    double d2, f2;
    assert_int_equal(px_json_as_double(px_json_at(v, 0), &d2), 0);
    assert_int_equal(px_json_as_double(px_json_at(v, 1), &f2), 0);
    assert_memory_equal(&d, &d2, 8);
    float f3 = strtof(px_json_at(v, 1)->str, NULL);
    assert_memory_equal(&f, &f3, 4);
    assert_true(px_json_at(v, 0)->len <= 24);
    assert_true(px_json_at(v, 1)->len <= 16);
    px_arena_release(&a);
    px_buf_release(&b);
  }
}

static void test_roundtrip(void **state) {
  (void)state;
  const char *doc =
      " { \"b\" : [ 1 , 2.50 , -0 , 1E+5 , \"\\u00e9\\ud83d\\ude00\\t\" ] ,"
      "\"a\" : { \"x\" : null , \"y\" : true , \"z\" : false } ,"
      "\"\\u0000k\" : \"\" , \"e\" : [ [ ] , { } ] } ";
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  px_json_t *v, *v2, *v3;
  assert_int_equal(parse_s(&a, doc, &v), 0);
  px_buf_t b1, b2;
  px_buf_init(&b1, 0);
  px_buf_init(&b2, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b1);
  px_json_write_value(&w, v);
  assert_int_equal(px_json_writer_finish(&w), 0);
  expect_written(&b1, "{\"b\":[1,2.50,-0,1E+5,\"\xc3\xa9\xf0\x9f\x98\x80\\t\"],"
                      "\"a\":{\"x\":null,\"y\":true,\"z\":false},"
                      "\"\\u0000k\":\"\",\"e\":[[],{}]}");
  assert_int_equal(parse_n(&a, (char *)b1.data, b1.len, &v2, NULL), 0);
  assert_true(px_json_equal(v, v2));
  px_json_writer_init(&w, &b2);
  px_json_write_value(&w, v2);
  assert_int_equal(px_json_writer_finish(&w), 0);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  /* equality ignores member order, not values */
  assert_int_equal(
      parse_s(&a,
              "{\"e\":[[],{}],\"\\u0000k\":\"\",\"a\":{\"z\":false,"
              "\"y\":true,\"x\":null},\"b\":[1,2.50,-0,1E+5,"
              "\"\xc3\xa9\xf0\x9f\x98\x80\\t\"]}",
              &v3),
      0);
  assert_true(px_json_equal(v, v3));
  assert_int_equal(parse_s(&a,
                           "{\"e\":[[],{}],\"\\u0000k\":\"\",\"a\":{\"z\":"
                           "false,\"y\":true,\"x\":null},\"b\":[1,2.5,-0,"
                           "1E+5,\"\xc3\xa9\xf0\x9f\x98\x80\\t\"]}",
                           &v3),
                   0);
  assert_false(px_json_equal(v, v3)); /* 2.50 vs 2.5: text differs */
  px_buf_release(&b1);
  px_buf_release(&b2);
  px_arena_release(&a);
}

/* Failing allocations inside the arena give PX_ENOMEM, never a crash. */
static int g_fail_after = -1;
static void *fail_malloc(size_t n, void *ud) {
  (void)ud;
  if (g_fail_after == 0) return NULL;
  if (g_fail_after > 0) g_fail_after--;
  return malloc(n);
}
static void *fail_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  if (g_fail_after == 0) return NULL;
  if (g_fail_after > 0) g_fail_after--;
  return realloc(p, n);
}
static void fail_free(void *p, void *ud) {
  (void)ud;
  free(p);
}

static void test_alloc_failure(void **state) {
  (void)state;
  px_allocator_t al = {fail_malloc, fail_realloc, fail_free, NULL};
  const char *doc = "{\"a\":[1,2,3,\"xyz\"],\"b\":{\"c\":\"d\"}}";
  int saw_ok = 0;
  for (int k = 0; k < 64 && !saw_ok; k++) {
    px_arena_t a;
    px_arena_init(&a, 32, 0); /* tiny blocks: many allocations */
    g_fail_after = k;
    px_set_allocator(&al);
    px_json_t *v;
    int rc = px_json_parse(&a, doc, strlen(doc), NULL, &v, NULL);
    px_set_allocator(NULL);
    g_fail_after = -1;
    assert_true(rc == 0 || rc == PX_ENOMEM);
    saw_ok = rc == 0;
    px_arena_release(&a);
  }
  assert_true(saw_ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_err_offset),
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_writer),
      cmocka_unit_test(test_writer_errors),
      cmocka_unit_test(test_float_roundtrip),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
