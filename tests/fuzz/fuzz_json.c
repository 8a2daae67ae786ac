/*
 * fuzz_json.c — the strict JSON parser (safetensors headers, configs, the
 * genesis file, the HTTP API: all outside input).  Any bytes must parse or
 * fail cleanly within the limits; a document that parses must survive
 * write -> parse with an equal tree, and a second write must give the same
 * bytes (the writer is canonical for a given tree).  Every typed getter is
 * exercised on every top-level member.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_arena_t a;
  px_arena_init(&a, 0, 64u << 20);
  px_json_limits_t lim = {0};
  lim.max_input = 1u << 20;
  px_json_t *v = NULL;
  size_t off = 0;
  int rc = px_json_parse(&a, data, size, &lim, &v, &off);
  if (off > size) abort();
  if (rc != 0) {
    if (v != NULL || rc >= 0) abort();
    px_arena_release(&a);
    return 0;
  }
  for (size_t i = 0; i < px_json_count(v); i++) {
    const px_json_t *m =
        v->type == PX_JSON_OBJECT ? v->members[i].value : v->items[i];
    int64_t i64;
    uint64_t u64;
    double d;
    int b;
    const char *s;
    size_t n;
    (void)px_json_as_i64(m, &i64);
    (void)px_json_as_u64(m, &u64);
    (void)px_json_as_double(m, &d);
    (void)px_json_as_bool(m, &b);
    (void)px_json_as_str(m, &s);
    (void)px_json_as_strn(m, &s, &n);
    if (v->type == PX_JSON_OBJECT &&
        px_json_getn(v, v->members[i].key, v->members[i].key_len) != m)
      abort();
  }
  px_buf_t b1, b2;
  px_buf_init(&b1, 0);
  px_buf_init(&b2, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b1);
  px_json_write_value(&w, v);
  if (px_json_writer_finish(&w) != 0) abort();
  px_json_t *v2 = NULL;
  lim.max_input = 0; /* escaping may lengthen the text */
  if (px_json_parse(&a, b1.data, b1.len, &lim, &v2, NULL) != 0) abort();
  if (!px_json_equal(v, v2) || !px_json_equal(v2, v)) abort();
  px_json_writer_init(&w, &b2);
  px_json_write_value(&w, v2);
  if (px_json_writer_finish(&w) != 0) abort();
  if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0) abort();
  px_buf_release(&b1);
  px_buf_release(&b2);
  px_arena_release(&a);
  return 0;
}
