/*
 * plexus/json.h — strict, bounded JSON (RFC 8259) parser and writer.
 *
 * Used for safetensors headers, model configs, the ledger's genesis file and
 * the HTTP API: all of them outside input, so the parser is strict and every
 * dimension of the input is capped (docs/formats.md):
 *  - input size, nesting depth (<= PX_JSON_MAX_DEPTH, the parser is
 *    iterative: no recursion on input), total number of values, members per
 *    object/array, bytes per string;
 *  - rejected: duplicate object keys (compared after unescaping), invalid
 *    UTF-8 (overlongs, surrogates, > U+10FFFF), lone or misordered \u
 *    surrogates, unescaped control characters, leading zeros, "+1", ".5",
 *    "1.", NaN/Infinity, comments, trailing commas, a byte-order mark, and
 *    anything but whitespace after the top-level value.
 *  - whitespace is exactly space, tab, LF, CR.
 *
 * The tree lives in a caller-owned px_arena_t: every pointer the parser hands
 * out (nodes, strings, arrays) stays valid until that arena is reset or
 * released; nothing needs freeing one by one.  The input buffer is not
 * referenced after px_json_parse returns.
 *
 * Numbers are kept as their literal text; px_json_as_i64/u64 read integer
 * literals exactly (overflow-checked), px_json_as_double gives the correctly
 * rounded double (strtod; the process must use the "C" numeric locale, as
 * Plexus always does).
 *
 * Lookup errors are uniform: PX_ENOTFOUND when a key is absent (or v is
 * NULL), PX_EDECODE when the value has the wrong JSON type (or, for integer
 * getters, is not an integer literal; for string getters, holds a NUL),
 * PX_ERANGE when it does not fit the C type.
 */
#ifndef PLEXUS_JSON_H
#define PLEXUS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_JSON_MAX_DEPTH 64

typedef enum {
  PX_JSON_NULL = 0,
  PX_JSON_FALSE = 1,
  PX_JSON_TRUE = 2,
  PX_JSON_NUMBER = 3,
  PX_JSON_STRING = 4,
  PX_JSON_ARRAY = 5,
  PX_JSON_OBJECT = 6,
} px_json_type_t;

typedef struct px_json px_json_t;

typedef struct {
  const char *key; /* decoded UTF-8, NUL-terminated (may hold \u0000) */
  size_t key_len;
  px_json_t *value;
} px_json_member_t;

/* One JSON value.  Read the fields directly; never modify a parsed tree. */
struct px_json {
  px_json_type_t type;
  /* STRING: decoded UTF-8, NUL-terminated, len bytes (an escaped \u0000 can
   * make strlen(str) < len).  NUMBER: the literal text, NUL-terminated. */
  const char *str;
  size_t len;
  size_t n;                        /* ARRAY: elements; OBJECT: members */
  px_json_t **items;               /* ARRAY: n elements in order */
  px_json_member_t *members;       /* OBJECT: n members in document order */
  const px_json_member_t **sorted; /* OBJECT: by key (internal, lookups) */
};

typedef struct {
  size_t max_input;   /* bytes of text */
  size_t max_depth;   /* nesting; clamped to PX_JSON_MAX_DEPTH */
  size_t max_values;  /* values in the whole document */
  size_t max_members; /* elements of one array / members of one object */
  size_t max_string;  /* decoded bytes of one string or key, or a number */
} px_json_limits_t;

/* Defaults: 16 MiB input, depth 64, 1 Mi values, 1 Mi members, 1 MiB
 * strings.  A zero field in a caller's limits means "the default". */
void px_json_limits_default(px_json_limits_t *lim);

/* Parse text[0..len) (not necessarily NUL-terminated) into a tree allocated
 * from `arena`.  lim NULL means defaults.  On success *out is the root.
 * Errors: PX_EDECODE (syntax, bad UTF-8, bad escape), PX_ETRUNC (input ends
 * inside a value), PX_ETRAILING (non-whitespace after the value), PX_EDUP
 * (duplicate key), PX_ETOOBIG (a limit), PX_ENOMEM (arena exhausted or out
 * of memory), PX_EINVAL (NULL arguments).  On error *out is NULL and, if
 * err_off is given, *err_off is the byte offset where parsing stopped; the
 * arena may hold partial allocations (release it as usual). */
int px_json_parse(px_arena_t *arena, const void *text, size_t len,
                  const px_json_limits_t *lim, px_json_t **out,
                  size_t *err_off);

/* ---- lookup (all accept v == NULL) -------------------------------------- */

/* Member of an object by key (binary search, O(log n)); NULL if v is not an
 * object or has no such key. */
const px_json_t *px_json_get(const px_json_t *obj, const char *key);
const px_json_t *px_json_getn(const px_json_t *obj, const char *key,
                              size_t key_len);
/* Element i of an array; NULL if v is not an array or i >= n. */
const px_json_t *px_json_at(const px_json_t *arr, size_t i);
/* Element count of an array / member count of an object; 0 otherwise. */
size_t px_json_count(const px_json_t *v);
const char *px_json_type_name(px_json_type_t t);

/* Typed reads of one value. */
int px_json_as_i64(const px_json_t *v, int64_t *out);
int px_json_as_u64(const px_json_t *v, uint64_t *out);
int px_json_as_double(const px_json_t *v, double *out); /* finite only */
int px_json_as_bool(const px_json_t *v, int *out);
/* C string: PX_EDECODE if the string holds a NUL. *out lives in the arena. */
int px_json_as_str(const px_json_t *v, const char **out);
/* Any string as bytes + length. */
int px_json_as_strn(const px_json_t *v, const char **out, size_t *len);

/* The same, by key of an object (PX_ENOTFOUND if absent). */
int px_json_get_i64(const px_json_t *obj, const char *key, int64_t *out);
int px_json_get_u64(const px_json_t *obj, const char *key, uint64_t *out);
int px_json_get_double(const px_json_t *obj, const char *key, double *out);
int px_json_get_bool(const px_json_t *obj, const char *key, int *out);
int px_json_get_str(const px_json_t *obj, const char *key, const char **out);
/* Object or array member by key, checked for type. */
int px_json_get_object(const px_json_t *obj, const char *key,
                       const px_json_t **out);
int px_json_get_array(const px_json_t *obj, const char *key,
                      const px_json_t **out);

/* Structural equality: same types, numbers with identical text, strings and
 * keys with identical bytes, arrays in order, objects as key sets
 * (order-insensitive).  Iterative; trees deeper than PX_JSON_MAX_DEPTH
 * compare unequal. */
int px_json_equal(const px_json_t *a, const px_json_t *b);

/* ---- writer ------------------------------------------------------------- */

/* Compact JSON into a px_buf_t (its cap bounds the output).  Errors are
 * sticky, as px_writer_t: write everything, check px_json_writer_finish().
 * Within an object, call px_json_write_key before each value. */
typedef struct {
  px_buf_t *buf;
  int err;
  int depth;
  int have_key;                          /* a key awaits its value */
  uint8_t is_obj[PX_JSON_MAX_DEPTH + 1]; /* per open container */
  uint8_t nonempty[PX_JSON_MAX_DEPTH + 1];
  int done; /* a complete top-level value has been written */
} px_json_writer_t;

void px_json_writer_init(px_json_writer_t *w, px_buf_t *buf);
void px_json_write_object_begin(px_json_writer_t *w);
void px_json_write_object_end(px_json_writer_t *w);
void px_json_write_array_begin(px_json_writer_t *w);
void px_json_write_array_end(px_json_writer_t *w);
void px_json_write_key(px_json_writer_t *w, const char *key);
void px_json_write_keyn(px_json_writer_t *w, const char *key, size_t len);
/* Strings must be valid UTF-8 (else PX_EINVAL); '"', '\\' and control
 * characters are escaped, everything else is written as is. */
void px_json_write_str(px_json_writer_t *w, const char *s);
void px_json_write_strn(px_json_writer_t *w, const char *s, size_t len);
void px_json_write_i64(px_json_writer_t *w, int64_t v);
void px_json_write_u64(px_json_writer_t *w, uint64_t v);
/* Shortest of %.15g/%.16g/%.17g that reads back to the same double (and
 * %.6g..%.9g for floats); NaN and infinities are PX_EINVAL. */
void px_json_write_double(px_json_writer_t *w, double v);
void px_json_write_float(px_json_writer_t *w, float v);
void px_json_write_bool(px_json_writer_t *w, int v);
void px_json_write_null(px_json_writer_t *w);
/* A number given as literal text; PX_EINVAL unless it is RFC 8259 syntax. */
void px_json_write_number_text(px_json_writer_t *w, const char *s, size_t len);
/* A whole parsed tree (iterative; deeper than PX_JSON_MAX_DEPTH is
 * PX_ETOOBIG).  Objects keep document order. */
void px_json_write_value(px_json_writer_t *w, const px_json_t *v);
/* 0, or the first error; PX_ESTATE if containers are left open, a key has
 * no value, no value was written, or calls came in an invalid order. */
int px_json_writer_finish(px_json_writer_t *w);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_JSON_H */
