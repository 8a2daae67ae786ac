/*
 * decode.c — the gateway's request decoders: OpenAI request bodies and URL
 * query strings.  All outside input, so both are strict and bounded: the
 * JSON parser runs with small limits, every member must be known, every
 * value typed and range-checked; a field we do not implement ("logprobs",
 * "tools", "n": 2 ...) is an error naming it rather than being silently
 * ignored (a client relying on it would get wrong results without knowing).
 * tests/fuzz/fuzz_api_request.c runs both decoders on arbitrary bytes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "base/px_internal.h"

static int fail(char *errmsg, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *errmsg, size_t cap, int rc, const char *fmt, ...) {
  if (errmsg && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int is_one_of(const char *k, const char *const *list) {
  for (size_t i = 0; list[i]; i++)
    if (!strcmp(k, list[i])) return 1;
  return 0;
}

static int get_str(const px_json_t *v, const char **out) {
  if (!v || v->type != PX_JSON_STRING || strlen(v->str) != v->len)
    return PX_EINVAL;
  *out = v->str;
  return 0;
}

static int decode_stop(const px_json_t *v, px_api_request_t *r, char *errmsg,
                       size_t cap) {
  if (v->type == PX_JSON_NULL) return 0;
  if (v->type == PX_JSON_STRING) {
    if (get_str(v, &r->stop[0]) || !v->len)
      return fail(errmsg, cap, PX_EINVAL, "'%s' must be a non-empty string",
                  "stop");
    r->n_stop = 1;
    return 0;
  }
  if (v->type != PX_JSON_ARRAY || v->n > PX_API_MAX_STOP)
    return fail(errmsg, cap, PX_EINVAL,
                "'%s' must be a string or an array of at most 4 strings",
                "stop");
  for (size_t i = 0; i < v->n; i++)
    if (get_str(v->items[i], &r->stop[i]) || !v->items[i]->len)
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' entries must be non-empty strings", "stop");
  r->n_stop = v->n;
  return 0;
}

static int decode_messages(const px_json_t *v, px_api_request_t *r,
                           char *errmsg, size_t cap) {
  static const char *const roles[] = {"system", "user", "assistant",
                                      "developer", NULL};
  static const char *const known[] = {"role", "content", "name", NULL};
  if (v->type != PX_JSON_ARRAY || v->n < 1 || v->n > PX_API_MAX_MESSAGES)
    return fail(errmsg, cap, PX_EINVAL,
                "'%s' must be an array of 1 to 256 messages", "messages");
  for (size_t i = 0; i < v->n; i++) {
    const px_json_t *m = v->items[i];
    if (m->type != PX_JSON_OBJECT)
      return fail(errmsg, cap, PX_EINVAL,
                  "each of '%s' must be an object with role and content",
                  "messages");
    for (size_t k = 0; k < m->n; k++)
      if (!is_one_of(m->members[k].key, known))
        return fail(errmsg, cap, PX_EINVAL,
                    "unsupported message field '%s' (supported: role, "
                    "content, name)",
                    m->members[k].key);
    const char *role, *content;
    if (get_str(px_json_get(m, "role"), &role) || !is_one_of(role, roles))
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' must be system, user, assistant or developer",
                  "messages[].role");
    if (get_str(px_json_get(m, "content"), &content))
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' must be a string (content parts are not supported)",
                  "messages[].content");
    const px_json_t *name = px_json_get(m, "name");
    const char *ignored;
    if (name && get_str(name, &ignored))
      return fail(errmsg, cap, PX_EINVAL, "'%s' must be a string",
                  "messages[].name");
    r->messages[i].role = !strcmp(role, "developer") ? "system" : role;
    r->messages[i].content = content;
  }
  r->n_messages = v->n;
  return 0;
}

int px_api_decode_request(px_arena_t *arena, px_api_kind_t kind,
                          const void *body, size_t len, px_api_request_t *r,
                          char *errmsg, size_t cap) {
  static const char *const common[] = {
      "model",  "max_tokens",     "temperature", "top_p", "seed", "stop",
      "stream", "stream_options", "n",           "user",  NULL};
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->max_tokens = -1;
  r->temperature = 1.0;
  r->top_p = 1.0;
  if (errmsg && cap) errmsg[0] = 0;
  px_json_limits_t lim = {.max_input = len,
                          .max_depth = 8,
                          .max_values = 4096,
                          .max_members = 1024,
                          .max_string = 1u << 20};
  px_json_t *root = NULL;
  size_t off = 0;
  int rc = px_json_parse(arena, body, len, &lim, &root, &off);
  if (rc) {
    if (errmsg && cap)
      snprintf(errmsg, cap,
               "the request body is not valid JSON (%s at byte %zu)",
               px_strerror(rc), off);
    return rc == PX_ENOMEM ? rc : PX_EDECODE;
  }
  if (root->type != PX_JSON_OBJECT)
    return fail(errmsg, cap, PX_EINVAL, "the request body must be a JSON %s",
                "object");
  for (size_t i = 0; i < root->n; i++) {
    const char *k = root->members[i].key;
    if (is_one_of(k, common)) continue;
    if (kind == PX_API_COMPLETION && !strcmp(k, "prompt")) continue;
    if (kind == PX_API_CHAT &&
        (!strcmp(k, "messages") || !strcmp(k, "max_completion_tokens")))
      continue;
    return fail(errmsg, cap, PX_EINVAL,
                "unsupported field '%s' (supported: model, prompt or "
                "messages, max_tokens, temperature, top_p, seed, stop, "
                "stream, stream_options, n=1, user)",
                k);
  }
  const px_json_t *v;
  if (get_str(px_json_get(root, "model"), &r->model) || !r->model[0])
    return fail(errmsg, cap, PX_EINVAL, "'%s' is required (a string)", "model");
  if (kind == PX_API_COMPLETION) {
    v = px_json_get(root, "prompt");
    if (!v) return fail(errmsg, cap, PX_EINVAL, "'%s' is required", "prompt");
    if (v->type == PX_JSON_ARRAY && v->n == 1)
      v = v->items[0]; /* ["text"]: one prompt, as clients often send */
    if (get_str(v, &r->prompt))
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' must be a string (token arrays and batches are not "
                  "supported)",
                  "prompt");
  } else {
    v = px_json_get(root, "messages");
    if (!v) return fail(errmsg, cap, PX_EINVAL, "'%s' is required", "messages");
    if ((rc = decode_messages(v, r, errmsg, cap))) return rc;
  }
  const char *mt = "max_tokens";
  v = px_json_get(root, mt);
  if (kind == PX_API_CHAT && px_json_get(root, "max_completion_tokens")) {
    if (v)
      return fail(errmsg, cap, PX_EINVAL, "give max_tokens or %s, not both",
                  "max_completion_tokens");
    mt = "max_completion_tokens";
    v = px_json_get(root, mt);
  }
  if (v && v->type != PX_JSON_NULL) {
    uint64_t u;
    if (px_json_as_u64(v, &u) || u < 1 || u > (1u << 20))
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' must be an integer from 1 to 1048576", mt);
    r->max_tokens = (int)u;
  }
  v = px_json_get(root, "temperature");
  if (v && v->type != PX_JSON_NULL &&
      (px_json_as_double(v, &r->temperature) || !(r->temperature >= 0) ||
       r->temperature > 2))
    return fail(errmsg, cap, PX_EINVAL, "'%s' must be a number from 0 to 2",
                "temperature");
  v = px_json_get(root, "top_p");
  if (v && v->type != PX_JSON_NULL &&
      (px_json_as_double(v, &r->top_p) || !(r->top_p >= 0) || r->top_p > 1))
    return fail(errmsg, cap, PX_EINVAL, "'%s' must be a number from 0 to 1",
                "top_p");
  v = px_json_get(root, "seed");
  if (v && v->type != PX_JSON_NULL) {
    int64_t s;
    if (px_json_as_i64(v, &s))
      return fail(errmsg, cap, PX_EINVAL, "'%s' must be an integer", "seed");
    r->seed = (uint64_t)s;
    r->has_seed = 1;
  }
  v = px_json_get(root, "stop");
  if (v && (rc = decode_stop(v, r, errmsg, cap))) return rc;
  v = px_json_get(root, "stream");
  if (v && v->type != PX_JSON_NULL && px_json_as_bool(v, &r->stream))
    return fail(errmsg, cap, PX_EINVAL, "'%s' must be true or false", "stream");
  v = px_json_get(root, "stream_options");
  if (v && v->type != PX_JSON_NULL) {
    if (v->type != PX_JSON_OBJECT || v->n > 1 ||
        (v->n == 1 && px_json_get_bool(v, "include_usage", &r->include_usage)))
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' supports only {\"include_usage\": true|false}",
                  "stream_options");
    if (!r->stream)
      return fail(errmsg, cap, PX_EINVAL, "'%s' needs \"stream\": true",
                  "stream_options");
  }
  v = px_json_get(root, "n");
  if (v && v->type != PX_JSON_NULL) {
    uint64_t n;
    if (px_json_as_u64(v, &n) || n != 1)
      return fail(errmsg, cap, PX_EINVAL,
                  "'%s' must be 1 (one choice per request is supported)", "n");
  }
  v = px_json_get(root, "user");
  const char *user;
  if (v && get_str(v, &user))
    return fail(errmsg, cap, PX_EINVAL, "'%s' must be a string", "user");
  return 0;
}

/* ---- query strings ------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into out[cap]. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '+') {
      ch = ' ';
    } else if (ch == '%') {
      int hi, lo;
      if (i + 2 >= n) return PX_EDECODE;
      hi = hexval(s[i + 1]);
      lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) return PX_EDECODE;
      ch = (char)(hi * 16 + lo);
      if (!ch) return PX_EDECODE;
      i += 2;
    }
    if (o + 1 >= cap) return PX_ETOOBIG;
    out[o++] = ch;
  }
  if (!cap) return PX_ETOOBIG;
  out[o] = 0;
  return 0;
}

int px_api_query_get(const char *q, const char *key, char *out, size_t cap) {
  if (!q || !key || !out) return PX_ENOTFOUND;
  size_t kl = strlen(key);
  const char *p = q;
  while (*p) {
    const char *end = strchr(p, '&');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t nk = eq ? (size_t)(eq - p) : n;
    char name[64];
    if (nk < sizeof name && pct_decode(p, nk, name, sizeof name) == 0 &&
        strlen(name) == kl && !memcmp(name, key, kl)) {
      if (!eq) {
        if (!cap) return PX_ETOOBIG;
        out[0] = 0;
        return 0;
      }
      return pct_decode(eq + 1, n - nk - 1, out, cap);
    }
    if (!end) break;
    p = end + 1;
  }
  return PX_ENOTFOUND;
}

int px_api_query_u64(const char *q, const char *key, uint64_t max,
                     uint64_t *out) {
  char v[32];
  int rc = px_api_query_get(q, key, v, sizeof v);
  if (rc) return rc == PX_ETOOBIG ? PX_ERANGE : rc;
  uint64_t u;
  rc = px_parse_u64(v, &u);
  if (rc) return rc == PX_ERANGE ? PX_ERANGE : PX_EDECODE;
  if (u > max) return PX_ERANGE;
  *out = u;
  return 0;
}
