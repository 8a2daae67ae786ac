/*
 * json.c — strict, bounded RFC 8259 JSON parser and compact writer.
 *
 * Spec: RFC 8259 (grammar, section 2-7) and RFC 3629 (UTF-8, no overlongs,
 * no surrogates, nothing past U+10FFFF).  Where RFC 8259 leaves behaviour to
 * the implementation we take the strict side: duplicate keys are an error
 * (PX_EDUP), \u escapes must pair surrogates correctly, the text is UTF-8
 * without a byte-order mark.
 *
 * How the parser is shaped: it is an explicit state machine over a stack of
 * open containers (at most PX_JSON_MAX_DEPTH frames, on the C stack), never
 * recursive, so hostile nesting cannot exhaust the C stack.  Children of an
 * open container are collected in a singly linked list of arena cells and
 * turned into an array when the container closes; objects then get a second
 * array of member pointers sorted by key, which gives duplicate detection in
 * O(n log n) and O(log n) lookups without hashing.
 *
 * Strings are scanned twice: once to find the closing quote (so the decoded
 * copy can be allocated at most raw-length bytes: decoding never grows a
 * string) and once to validate and decode into the arena.
 *
 * Limits (px_json_limits_t): input bytes, depth, total values, members per
 * container, bytes per string; all memory also comes from the caller's
 * arena, whose own cap bounds the tree.
 *
 * The writer keeps a small per-depth state (object or array, first element
 * or not) so that misuse (a value without a key inside an object, unbalanced
 * ends) is reported as PX_ESTATE instead of producing invalid JSON.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/json.h"

#include "base/px_internal.h"

/* ---- limits ---------------------------------------------------------------
 */

void px_json_limits_default(px_json_limits_t *lim) {
  lim->max_input = 16u << 20;
  lim->max_depth = PX_JSON_MAX_DEPTH;
  lim->max_values = 1u << 20;
  lim->max_members = 1u << 20;
  lim->max_string = 1u << 20;
}

static void limits_fill(px_json_limits_t *out, const px_json_limits_t *in) {
  px_json_limits_default(out);
  if (!in) return;
  if (in->max_input) out->max_input = in->max_input;
  if (in->max_depth) out->max_depth = PX_MIN(in->max_depth, PX_JSON_MAX_DEPTH);
  if (in->max_values) out->max_values = in->max_values;
  if (in->max_members) out->max_members = in->max_members;
  if (in->max_string) out->max_string = in->max_string;
}

/* ---- UTF-8 ----------------------------------------------------------------
 */

/* Length (1..4) of the valid UTF-8 sequence at s[0..avail), 0 if invalid
 * (RFC 3629 table: exact second-byte ranges exclude overlongs, surrogates
 * and code points past U+10FFFF). */
static size_t utf8_seq(const uint8_t *s, size_t avail) {
  uint8_t b = s[0];
  if (b < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < n) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return n;
}

static size_t utf8_put(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (uint8_t)(0xC0 | (cp >> 6));
    o[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | (cp >> 12));
    o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (uint8_t)(0xF0 | (cp >> 18));
  o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

/* ---- parser ---------------------------------------------------------------
 */

typedef struct cell {
  px_json_t *v;
  const char *key;
  size_t key_len;
  struct cell *next;
} cell_t;

typedef struct {
  px_json_t *node;
  cell_t *head, *tail;
  size_t n;
  const char *key; /* objects: key awaiting its value */
  size_t key_len;
} frame_t;

typedef struct {
  const uint8_t *p;
  size_t len, pos;
  px_arena_t *a;
  px_json_limits_t lim;
  size_t values;
} parser_t;

static int is_ws(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(parser_t *ps) {
  while (ps->pos < ps->len && is_ws(ps->p[ps->pos]))
    ps->pos++;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* 4 hex digits at s[0..4) (caller checked they are inside the string). */
static int hex4(const uint8_t *s, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s[i]);
    if (h < 0) return PX_EDECODE;
    v = (v << 4) | (uint32_t)h;
  }
  *out = v;
  return 0;
}

/* Parse the string whose opening quote is at ps->pos. */
static int parse_string(parser_t *ps, const char **out, size_t *out_len) {
  const uint8_t *p = ps->p;
  size_t start = ps->pos + 1, end = start;
  while (end < ps->len && p[end] != '"') {
    if (p[end] == '\\') {
      if (ps->len - end < 2) {
        end = ps->len;
        break;
      }
      end += 2;
    } else {
      end++;
    }
  }
  if (end >= ps->len) {
    ps->pos = ps->len;
    return PX_ETRUNC;
  }
  /* p[end] is the closing quote; decoded length <= end - start. */
  uint8_t *o = px_arena_alloc(ps->a, end - start + 1);
  if (!o) return PX_ENOMEM;
  size_t j = start, k = 0;
  while (j < end) {
    uint8_t b = p[j];
    if (b < 0x20) goto bad;
    if (b == '\\') {
      uint8_t e = p[j + 1]; /* j + 1 < end: pass 1 skipped escapes whole */
      j += 2;
      switch (e) {
      case '"':
      case '\\':
      case '/':
        o[k++] = e;
        break;
      case 'b':
        o[k++] = '\b';
        break;
      case 'f':
        o[k++] = '\f';
        break;
      case 'n':
        o[k++] = '\n';
        break;
      case 'r':
        o[k++] = '\r';
        break;
      case 't':
        o[k++] = '\t';
        break;
      case 'u': {
        uint32_t cp, lo;
        if (end - j < 4 || hex4(p + j, &cp)) goto bad;
        j += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) goto bad; /* lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - j < 6 || p[j] != '\\' || p[j + 1] != 'u' ||
              hex4(p + j + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            goto bad; /* high surrogate without its low half */
          j += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        k += utf8_put(o + k, cp);
        break;
      }
      default:
        goto bad;
      }
      continue;
    }
    size_t n = utf8_seq(p + j, end - j);
    if (n == 0) goto bad;
    memcpy(o + k, p + j, n);
    j += n;
    k += n;
  }
  if (k > ps->lim.max_string) {
    ps->pos = start;
    return PX_ETOOBIG;
  }
  o[k] = 0;
  *out = (const char *)o;
  *out_len = k;
  ps->pos = end + 1;
  return 0;
bad:
  ps->pos = j;
  return PX_EDECODE;
}

static int need_digit(const uint8_t *p, size_t n, size_t i) {
  if (i >= n) return PX_ETRUNC;
  return is_digit(p[i]) ? 0 : PX_EDECODE;
}

/* Scan a number at p[*pos] (first byte '-' or a digit); on return *pos is
 * the end of the number, or where it went wrong.  Grammar (RFC 8259 6):
 *   -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?            */
static int scan_number(const uint8_t *p, size_t n, size_t *pos) {
  size_t i = *pos;
  int rc;
  if (i < n && p[i] == '-') i++;
  if ((rc = need_digit(p, n, i)) != 0) goto out;
  if (p[i] == '0') {
    i++;
    if (i < n && is_digit(p[i])) { /* leading zero */
      rc = PX_EDECODE;
      goto out;
    }
  } else {
    while (i < n && is_digit(p[i]))
      i++;
  }
  if (i < n && p[i] == '.') {
    i++;
    if ((rc = need_digit(p, n, i)) != 0) goto out;
    while (i < n && is_digit(p[i]))
      i++;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    if ((rc = need_digit(p, n, i)) != 0) goto out;
    while (i < n && is_digit(p[i]))
      i++;
  }
out:
  *pos = i;
  return rc;
}

static int parse_number(parser_t *ps, px_json_t *v) {
  size_t start = ps->pos, i = ps->pos;
  int rc = scan_number(ps->p, ps->len, &i);
  if (rc) {
    ps->pos = i;
    return rc;
  }
  size_t tl = i - start;
  if (tl > ps->lim.max_string) return PX_ETOOBIG;
  char *t = px_arena_alloc(ps->a, tl + 1);
  if (!t) return PX_ENOMEM;
  memcpy(t, ps->p + start, tl);
  t[tl] = 0;
  v->type = PX_JSON_NUMBER;
  v->str = t;
  v->len = tl;
  ps->pos = i;
  return 0;
}

static int parse_literal(parser_t *ps, const char *word, px_json_type_t t,
                         px_json_t *v) {
  size_t wl = strlen(word);
  size_t avail = ps->len - ps->pos;
  size_t m = PX_MIN(wl, avail);
  for (size_t i = 0; i < m; i++) {
    if (ps->p[ps->pos + i] != (uint8_t)word[i]) {
      ps->pos += i;
      return PX_EDECODE;
    }
  }
  if (avail < wl) {
    ps->pos = ps->len;
    return PX_ETRUNC;
  }
  ps->pos += wl;
  v->type = t;
  return 0;
}

static int cmp_members(const void *x, const void *y) {
  const px_json_member_t *a = *(const px_json_member_t *const *)x;
  const px_json_member_t *b = *(const px_json_member_t *const *)y;
  size_t m = PX_MIN(a->key_len, b->key_len);
  int c = m ? memcmp(a->key, b->key, m) : 0;
  if (c) return c;
  return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Turn a closed container's cell list into its arrays. */
static int finish_container(parser_t *ps, frame_t *f) {
  px_json_t *v = f->node;
  v->n = f->n;
  if (f->n == 0) return 0;
  if (v->type == PX_JSON_ARRAY) {
    if (f->n > SIZE_MAX / sizeof(px_json_t *)) return PX_ETOOBIG;
    v->items = px_arena_alloc(ps->a, f->n * sizeof(px_json_t *));
    if (!v->items) return PX_ENOMEM;
    size_t i = 0;
    for (cell_t *c = f->head; c; c = c->next)
      v->items[i++] = c->v;
    return 0;
  }
  if (f->n > SIZE_MAX / sizeof(px_json_member_t)) return PX_ETOOBIG;
  v->members = px_arena_alloc(ps->a, f->n * sizeof(px_json_member_t));
  const px_json_member_t **s =
      px_arena_alloc(ps->a, f->n * sizeof(px_json_member_t *));
  if (!v->members || !s) return PX_ENOMEM;
  size_t i = 0;
  for (cell_t *c = f->head; c; c = c->next, i++) {
    v->members[i].key = c->key;
    v->members[i].key_len = c->key_len;
    v->members[i].value = c->v;
    s[i] = &v->members[i];
  }
  qsort(s, f->n, sizeof *s, cmp_members);
  for (i = 1; i < f->n; i++)
    if (cmp_members(&s[i - 1], &s[i]) == 0) return PX_EDUP;
  v->sorted = s;
  return 0;
}

/* Expect `"key" :` at the cursor (after whitespace), store it in f. */
static int parse_key(parser_t *ps, frame_t *f) {
  skip_ws(ps);
  if (ps->pos >= ps->len) return PX_ETRUNC;
  if (ps->p[ps->pos] != '"') return PX_EDECODE;
  int rc = parse_string(ps, &f->key, &f->key_len);
  if (rc) return rc;
  skip_ws(ps);
  if (ps->pos >= ps->len) return PX_ETRUNC;
  if (ps->p[ps->pos] != ':') return PX_EDECODE;
  ps->pos++;
  return 0;
}

static int parse_doc(parser_t *ps, px_json_t **out) {
  frame_t st[PX_JSON_MAX_DEPTH];
  size_t depth = 0;
  int rc;
  for (;;) {
    /* A value starts here. */
    skip_ws(ps);
    if (ps->pos >= ps->len) return PX_ETRUNC;
    if (++ps->values > ps->lim.max_values) return PX_ETOOBIG;
    px_json_t *v = px_arena_alloc(ps->a, sizeof *v);
    if (!v) return PX_ENOMEM;
    uint8_t c = ps->p[ps->pos];
    if (c == '{' || c == '[') {
      if (depth >= ps->lim.max_depth) return PX_ETOOBIG;
      ps->pos++;
      v->type = c == '{' ? PX_JSON_OBJECT : PX_JSON_ARRAY;
      frame_t *f = &st[depth++];
      memset(f, 0, sizeof *f);
      f->node = v;
      skip_ws(ps);
      if (ps->pos >= ps->len) return PX_ETRUNC;
      if (ps->p[ps->pos] == (c == '{' ? '}' : ']')) {
        ps->pos++;
        depth--; /* empty container: complete at once */
      } else {
        if (c == '{' && (rc = parse_key(ps, f)) != 0) return rc;
        continue;
      }
    } else if (c == '"') {
      v->type = PX_JSON_STRING;
      if ((rc = parse_string(ps, &v->str, &v->len)) != 0) return rc;
    } else if (c == '-' || is_digit(c)) {
      if ((rc = parse_number(ps, v)) != 0) return rc;
    } else if (c == 't') {
      if ((rc = parse_literal(ps, "true", PX_JSON_TRUE, v)) != 0) return rc;
    } else if (c == 'f') {
      if ((rc = parse_literal(ps, "false", PX_JSON_FALSE, v)) != 0) return rc;
    } else if (c == 'n') {
      if ((rc = parse_literal(ps, "null", PX_JSON_NULL, v)) != 0) return rc;
    } else {
      return PX_EDECODE;
    }
    /* v is complete: attach it, then close as many containers as end. */
    for (;;) {
      if (depth == 0) {
        *out = v;
        return 0;
      }
      frame_t *f = &st[depth - 1];
      if (f->n >= ps->lim.max_members) return PX_ETOOBIG;
      cell_t *cl = px_arena_alloc(ps->a, sizeof *cl);
      if (!cl) return PX_ENOMEM;
      cl->v = v;
      cl->key = f->key;
      cl->key_len = f->key_len;
      if (f->tail)
        f->tail->next = cl;
      else
        f->head = cl;
      f->tail = cl;
      f->n++;
      int is_obj = f->node->type == PX_JSON_OBJECT;
      skip_ws(ps);
      if (ps->pos >= ps->len) return PX_ETRUNC;
      c = ps->p[ps->pos];
      if (c == ',') {
        ps->pos++;
        if (is_obj && (rc = parse_key(ps, f)) != 0) return rc;
        break; /* next value */
      }
      if (c != (is_obj ? '}' : ']')) return PX_EDECODE;
      ps->pos++;
      if ((rc = finish_container(ps, f)) != 0) return rc;
      v = f->node;
      depth--;
    }
  }
}

int px_json_parse(px_arena_t *arena, const void *text, size_t len,
                  const px_json_limits_t *lim, px_json_t **out,
                  size_t *err_off) {
  if (out) *out = NULL;
  if (err_off) *err_off = 0;
  if (!arena || !out || (!text && len)) return PX_EINVAL;
  parser_t ps = {.p = text, .len = len, .pos = 0, .a = arena, .values = 0};
  limits_fill(&ps.lim, lim);
  if (len > ps.lim.max_input) return PX_ETOOBIG;
  px_json_t *root = NULL;
  int rc = parse_doc(&ps, &root);
  if (rc == 0) {
    skip_ws(&ps);
    if (ps.pos != ps.len) rc = PX_ETRAILING;
  }
  if (rc) {
    if (err_off) *err_off = ps.pos;
    return rc;
  }
  *out = root;
  return 0;
}

/* ---- lookup ---------------------------------------------------------------
 */

const char *px_json_type_name(px_json_type_t t) {
  switch (t) {
  case PX_JSON_NULL:
    return "null";
  case PX_JSON_FALSE:
  case PX_JSON_TRUE:
    return "boolean";
  case PX_JSON_NUMBER:
    return "number";
  case PX_JSON_STRING:
    return "string";
  case PX_JSON_ARRAY:
    return "array";
  case PX_JSON_OBJECT:
    return "object";
  }
  return "?";
}

const px_json_t *px_json_getn(const px_json_t *obj, const char *key,
                              size_t key_len) {
  if (!obj || obj->type != PX_JSON_OBJECT || obj->n == 0 || !key) return NULL;
  px_json_member_t probe = {.key = key, .key_len = key_len, .value = NULL};
  const px_json_member_t *pp = &probe;
  size_t lo = 0, hi = obj->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_members(&pp, &obj->sorted[mid]);
    if (c == 0) return obj->sorted[mid]->value;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const px_json_t *px_json_get(const px_json_t *obj, const char *key) {
  if (!key) return NULL;
  return px_json_getn(obj, key, strlen(key));
}

const px_json_t *px_json_at(const px_json_t *arr, size_t i) {
  if (!arr || arr->type != PX_JSON_ARRAY || i >= arr->n) return NULL;
  return arr->items[i];
}

size_t px_json_count(const px_json_t *v) {
  if (!v || (v->type != PX_JSON_ARRAY && v->type != PX_JSON_OBJECT)) return 0;
  return v->n;
}

/* Magnitude and sign of an integer literal; PX_EDECODE if it has a fraction
 * or exponent, PX_ERANGE past UINT64_MAX. */
static int int_literal(const px_json_t *v, uint64_t *mag, int *neg) {
  if (!v) return PX_ENOTFOUND;
  if (v->type != PX_JSON_NUMBER) return PX_EDECODE;
  const char *s = v->str;
  size_t i = 0;
  *neg = 0;
  if (s[0] == '-') {
    *neg = 1;
    i = 1;
  }
  uint64_t m = 0;
  int rc = 0;
  for (; i < v->len; i++) {
    if (!is_digit((uint8_t)s[i])) return PX_EDECODE;
    unsigned d = (unsigned)(s[i] - '0');
    if (m > (UINT64_MAX - d) / 10)
      rc = PX_ERANGE; /* keep scanning: "1e999..." is EDECODE */
    else
      m = m * 10 + d;
  }
  *mag = m;
  return rc;
}

int px_json_as_u64(const px_json_t *v, uint64_t *out) {
  uint64_t m = 0;
  int neg = 0;
  int rc = int_literal(v, &m, &neg);
  if (rc) return rc;
  if (neg && m != 0) return PX_ERANGE;
  *out = m;
  return 0;
}

int px_json_as_i64(const px_json_t *v, int64_t *out) {
  uint64_t m = 0;
  int neg = 0;
  int rc = int_literal(v, &m, &neg);
  if (rc) return rc;
  if (neg) {
    if (m > (uint64_t)INT64_MAX + 1) return PX_ERANGE;
    *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
  } else {
    if (m > (uint64_t)INT64_MAX) return PX_ERANGE;
    *out = (int64_t)m;
  }
  return 0;
}

int px_json_as_double(const px_json_t *v, double *out) {
  if (!v) return PX_ENOTFOUND;
  if (v->type != PX_JSON_NUMBER) return PX_EDECODE;
  char *end = NULL;
  errno = 0;
  double d = strtod(v->str, &end);
  if (end != v->str + v->len) return PX_EDECODE;
  if (!isfinite(d)) return PX_ERANGE;
  *out = d; /* underflow to a subnormal or zero is the correct rounding */
  return 0;
}

int px_json_as_bool(const px_json_t *v, int *out) {
  if (!v) return PX_ENOTFOUND;
  if (v->type != PX_JSON_TRUE && v->type != PX_JSON_FALSE) return PX_EDECODE;
  *out = v->type == PX_JSON_TRUE;
  return 0;
}

int px_json_as_strn(const px_json_t *v, const char **out, size_t *len) {
  if (!v) return PX_ENOTFOUND;
  if (v->type != PX_JSON_STRING) return PX_EDECODE;
  *out = v->str;
  if (len) *len = v->len;
  return 0;
}

int px_json_as_str(const px_json_t *v, const char **out) {
  if (!v) return PX_ENOTFOUND;
  if (v->type != PX_JSON_STRING || memchr(v->str, 0, v->len)) return PX_EDECODE;
  *out = v->str;
  return 0;
}

int px_json_get_i64(const px_json_t *obj, const char *key, int64_t *out) {
  return px_json_as_i64(px_json_get(obj, key), out);
}
int px_json_get_u64(const px_json_t *obj, const char *key, uint64_t *out) {
  return px_json_as_u64(px_json_get(obj, key), out);
}
int px_json_get_double(const px_json_t *obj, const char *key, double *out) {
  return px_json_as_double(px_json_get(obj, key), out);
}
int px_json_get_bool(const px_json_t *obj, const char *key, int *out) {
  return px_json_as_bool(px_json_get(obj, key), out);
}
int px_json_get_str(const px_json_t *obj, const char *key, const char **out) {
  return px_json_as_str(px_json_get(obj, key), out);
}

static int get_typed(const px_json_t *obj, const char *key, px_json_type_t t,
                     const px_json_t **out) {
  const px_json_t *v = px_json_get(obj, key);
  if (!v) return PX_ENOTFOUND;
  if (v->type != t) return PX_EDECODE;
  *out = v;
  return 0;
}
int px_json_get_object(const px_json_t *obj, const char *key,
                       const px_json_t **out) {
  return get_typed(obj, key, PX_JSON_OBJECT, out);
}
int px_json_get_array(const px_json_t *obj, const char *key,
                      const px_json_t **out) {
  return get_typed(obj, key, PX_JSON_ARRAY, out);
}

/* ---- equality -------------------------------------------------------------
 */

static int shallow_equal(const px_json_t *a, const px_json_t *b) {
  if (!a || !b || a->type != b->type) return 0;
  switch (a->type) {
  case PX_JSON_NUMBER:
  case PX_JSON_STRING:
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
  case PX_JSON_ARRAY:
  case PX_JSON_OBJECT:
    return a->n == b->n;
  default:
    return 1;
  }
}

int px_json_equal(const px_json_t *a, const px_json_t *b) {
  struct {
    const px_json_t *a, *b;
    size_t i;
  } st[PX_JSON_MAX_DEPTH];
  size_t d = 0;
  if (!shallow_equal(a, b)) return 0;
  if (a->type != PX_JSON_ARRAY && a->type != PX_JSON_OBJECT) return 1;
  st[d].a = a;
  st[d].b = b;
  st[d++].i = 0;
  while (d > 0) {
    const px_json_t *ca, *cb;
    size_t i = st[d - 1].i;
    const px_json_t *pa = st[d - 1].a, *pb = st[d - 1].b;
    if (i == pa->n) {
      d--;
      continue;
    }
    st[d - 1].i++;
    if (pa->type == PX_JSON_ARRAY) {
      ca = pa->items[i];
      cb = pb->items[i];
    } else {
      ca = pa->members[i].value;
      cb = px_json_getn(pb, pa->members[i].key, pa->members[i].key_len);
    }
    if (!shallow_equal(ca, cb)) return 0;
    if (ca->type == PX_JSON_ARRAY || ca->type == PX_JSON_OBJECT) {
      if (d == PX_JSON_MAX_DEPTH) return 0;
      st[d].a = ca;
      st[d].b = cb;
      st[d++].i = 0;
    }
  }
  return 1;
}

/* ---- writer ---------------------------------------------------------------
 */

void px_json_writer_init(px_json_writer_t *w, px_buf_t *buf) {
  memset(w, 0, sizeof *w);
  w->buf = buf;
  if (!buf) w->err = PX_EINVAL;
}

static void wfail(px_json_writer_t *w, int err) {
  if (!w->err) w->err = err;
}

static void wput(px_json_writer_t *w, const void *p, size_t n) {
  if (w->err) return;
  int rc = px_buf_append(w->buf, p, n);
  if (rc) wfail(w, rc);
}

/* Separator and state checks before any value; 0 if the value may go. */
static int value_prefix(px_json_writer_t *w) {
  if (w->err) return -1;
  if (w->depth == 0) {
    if (w->done) {
      wfail(w, PX_ESTATE);
      return -1;
    }
    return 0;
  }
  if (w->is_obj[w->depth]) {
    if (!w->have_key) {
      wfail(w, PX_ESTATE);
      return -1;
    }
    w->have_key = 0;
    return 0;
  }
  if (w->nonempty[w->depth]) wput(w, ",", 1);
  w->nonempty[w->depth] = 1;
  return w->err ? -1 : 0;
}

static void value_done(px_json_writer_t *w) {
  if (w->depth == 0) w->done = 1;
}

static void begin(px_json_writer_t *w, int is_obj) {
  if (value_prefix(w)) return;
  if (w->depth >= PX_JSON_MAX_DEPTH) {
    wfail(w, PX_ETOOBIG);
    return;
  }
  wput(w, is_obj ? "{" : "[", 1);
  w->depth++;
  w->is_obj[w->depth] = (uint8_t)is_obj;
  w->nonempty[w->depth] = 0;
}

static void end(px_json_writer_t *w, int is_obj) {
  if (w->err) return;
  if (w->depth == 0 || w->is_obj[w->depth] != is_obj || w->have_key) {
    wfail(w, PX_ESTATE);
    return;
  }
  wput(w, is_obj ? "}" : "]", 1);
  w->depth--;
  value_done(w);
}

void px_json_write_object_begin(px_json_writer_t *w) { begin(w, 1); }
void px_json_write_object_end(px_json_writer_t *w) { end(w, 1); }
void px_json_write_array_begin(px_json_writer_t *w) { begin(w, 0); }
void px_json_write_array_end(px_json_writer_t *w) { end(w, 0); }

/* Quoted, escaped string (UTF-8 checked). */
static void put_string(px_json_writer_t *w, const char *s, size_t len) {
  static const char hexd[] = "0123456789abcdef";
  if (!s && len) {
    wfail(w, PX_EINVAL);
    return;
  }
  const uint8_t *p = (const uint8_t *)s;
  size_t i = 0;
  while (i < len) {
    size_t n = utf8_seq(p + i, len - i);
    if (n == 0) {
      wfail(w, PX_EINVAL);
      return;
    }
    i += n;
  }
  wput(w, "\"", 1);
  size_t run = 0; /* start of the pending unescaped run */
  for (i = 0; i < len; i++) {
    uint8_t c = p[i];
    char esc[6];
    size_t en = 0;
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      en = 2;
    } else if (c < 0x20) {
      esc[0] = '\\';
      en = 2;
      switch (c) {
      case '\b':
        esc[1] = 'b';
        break;
      case '\f':
        esc[1] = 'f';
        break;
      case '\n':
        esc[1] = 'n';
        break;
      case '\r':
        esc[1] = 'r';
        break;
      case '\t':
        esc[1] = 't';
        break;
      default:
        memcpy(esc, "\\u00", 4);
        esc[4] = hexd[c >> 4];
        esc[5] = hexd[c & 15];
        en = 6;
      }
    } else {
      continue;
    }
    wput(w, p + run, i - run);
    wput(w, esc, en);
    run = i + 1;
  }
  wput(w, p + run, len - run);
  wput(w, "\"", 1);
}

void px_json_write_keyn(px_json_writer_t *w, const char *key, size_t len) {
  if (w->err) return;
  if (w->depth == 0 || !w->is_obj[w->depth] || w->have_key) {
    wfail(w, PX_ESTATE);
    return;
  }
  if (w->nonempty[w->depth]) wput(w, ",", 1);
  w->nonempty[w->depth] = 1;
  put_string(w, key, len);
  wput(w, ":", 1);
  w->have_key = 1;
}

void px_json_write_key(px_json_writer_t *w, const char *key) {
  if (!key) {
    wfail(w, PX_EINVAL);
    return;
  }
  px_json_write_keyn(w, key, strlen(key));
}

void px_json_write_strn(px_json_writer_t *w, const char *s, size_t len) {
  if (value_prefix(w)) return;
  put_string(w, s, len);
  value_done(w);
}

void px_json_write_str(px_json_writer_t *w, const char *s) {
  if (!s) {
    wfail(w, PX_EINVAL);
    return;
  }
  px_json_write_strn(w, s, strlen(s));
}

static void put_raw_value(px_json_writer_t *w, const char *s, size_t n) {
  if (value_prefix(w)) return;
  wput(w, s, n);
  value_done(w);
}

void px_json_write_i64(px_json_writer_t *w, int64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, "%lld", (long long)v);
  put_raw_value(w, t, (size_t)n);
}

void px_json_write_u64(px_json_writer_t *w, uint64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
  put_raw_value(w, t, (size_t)n);
}

void px_json_write_double(px_json_writer_t *w, double v) {
  if (!isfinite(v)) {
    wfail(w, PX_EINVAL);
    return;
  }
  char t[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(t, sizeof t, "%.*g", prec, v);
    if (strtod(t, NULL) == v) break;
  }
  put_raw_value(w, t, (size_t)n);
}

void px_json_write_float(px_json_writer_t *w, float v) {
  if (!isfinite(v)) {
    wfail(w, PX_EINVAL);
    return;
  }
  char t[40];
  int n = 0;
  for (int prec = 6; prec <= 9; prec++) {
    n = snprintf(t, sizeof t, "%.*g", prec, (double)v);
    if (strtof(t, NULL) == v) break;
  }
  put_raw_value(w, t, (size_t)n);
}

void px_json_write_bool(px_json_writer_t *w, int v) {
  if (v)
    put_raw_value(w, "true", 4);
  else
    put_raw_value(w, "false", 5);
}

void px_json_write_null(px_json_writer_t *w) { put_raw_value(w, "null", 4); }

void px_json_write_number_text(px_json_writer_t *w, const char *s, size_t len) {
  if (w->err) return;
  if (!s || len == 0) {
    wfail(w, PX_EINVAL);
    return;
  }
  size_t end = 0;
  if (scan_number((const uint8_t *)s, len, &end) != 0 || end != len) {
    wfail(w, PX_EINVAL);
    return;
  }
  put_raw_value(w, s, len);
}

void px_json_write_value(px_json_writer_t *w, const px_json_t *v) {
  struct {
    const px_json_t *v;
    size_t i;
  } st[PX_JSON_MAX_DEPTH];
  size_t d = 0;
  if (!v) {
    wfail(w, PX_EINVAL);
    return;
  }
  for (;;) {
    if (w->err) return;
    /* Write v (scalars whole, containers opened and pushed). */
    switch (v->type) {
    case PX_JSON_NULL:
      px_json_write_null(w);
      break;
    case PX_JSON_FALSE:
      px_json_write_bool(w, 0);
      break;
    case PX_JSON_TRUE:
      px_json_write_bool(w, 1);
      break;
    case PX_JSON_NUMBER:
      px_json_write_number_text(w, v->str, v->len);
      break;
    case PX_JSON_STRING:
      px_json_write_strn(w, v->str, v->len);
      break;
    case PX_JSON_ARRAY:
    case PX_JSON_OBJECT:
      if (d == PX_JSON_MAX_DEPTH) {
        wfail(w, PX_ETOOBIG);
        return;
      }
      begin(w, v->type == PX_JSON_OBJECT);
      st[d].v = v;
      st[d++].i = 0;
      break;
    default:
      wfail(w, PX_EINVAL);
      return;
    }
    /* Find the next value to write, closing finished containers. */
    for (;;) {
      if (w->err || d == 0) return;
      const px_json_t *top = st[d - 1].v;
      size_t i = st[d - 1].i;
      if (i < top->n) {
        st[d - 1].i++;
        if (top->type == PX_JSON_ARRAY) {
          v = top->items[i];
        } else {
          px_json_write_keyn(w, top->members[i].key, top->members[i].key_len);
          v = top->members[i].value;
        }
        if (!v) {
          wfail(w, PX_EINVAL);
          return;
        }
        break;
      }
      end(w, top->type == PX_JSON_OBJECT);
      d--;
    }
  }
}

int px_json_writer_finish(px_json_writer_t *w) {
  if (w->err) return w->err;
  if (w->depth != 0 || w->have_key || !w->done) return PX_ESTATE;
  return 0;
}
