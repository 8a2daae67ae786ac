/*
 * config.c — the node's configuration: an INI-like file plus flags.
 *
 * Format (docs/config.md):
 *   # comment            (also ';')
 *   [section]            prefixes following keys: "section.key"
 *   key = value          surrounding spaces trimmed; one pair of enclosing
 *                        "quotes" is removed (the writer always quotes, so
 *                        any value survives a write/read round trip)
 *
 * Keys are [a-z0-9_.-]; values are at most PX_CONFIG_MAX_VALUE-1 bytes.
 * Command-line flags are set with from_flag=1 and are not overwritten by a
 * later file load, so "--p2p.listen 127.0.0.1:7000" beats the file.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "base/px_internal.h"

void px_config_init(px_config_t *c) { memset(c, 0, sizeof *c); }

static int valid_key(const char *k, size_t n) {
  if (n == 0 || n >= PX_CONFIG_MAX_KEY) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)k[i];
    if (!(islower(ch) || isdigit(ch) || ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return 1;
}

static px_config_entry_t *find(const px_config_t *c, const char *key) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->entries[i].key, key) == 0)
      return (px_config_entry_t *)&c->entries[i];
  return NULL;
}

int px_config_set(px_config_t *c, const char *key, const char *value,
                  int from_flag) {
  if (!key || !value || !valid_key(key, strlen(key))) return PX_ECONFIG;
  if (strlen(value) >= PX_CONFIG_MAX_VALUE) return PX_ETOOBIG;
  px_config_entry_t *e = find(c, key);
  if (e) {
    if (e->from_flag && !from_flag) return 0; /* flags win */
  } else {
    if (c->n >= PX_CONFIG_MAX_ENTRIES) return PX_ELIMIT;
    e = &c->entries[c->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
  }
  snprintf(e->value, sizeof e->value, "%s", value);
  e->from_flag = from_flag;
  return 0;
}

const char *px_config_get(const px_config_t *c, const char *key) {
  px_config_entry_t *e = find(c, key);
  return e ? e->value : NULL;
}

const char *px_config_get_str(const px_config_t *c, const char *key,
                              const char *def) {
  const char *v = px_config_get(c, key);
  return v ? v : def;
}

int px_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return PX_EINVAL;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return PX_EINVAL;
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return PX_ERANGE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int px_config_get_u64(const px_config_t *c, const char *key, uint64_t def,
                      uint64_t *out) {
  const char *v = px_config_get(c, key);
  if (!v) {
    *out = def;
    return 0;
  }
  return px_parse_u64(v, out) ? PX_ECONFIG : 0;
}

int px_config_get_bool(const px_config_t *c, const char *key, int def,
                       int *out) {
  const char *v = px_config_get(c, key);
  if (!v) {
    *out = def;
    return 0;
  }
  if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") ||
      !strcmp(v, "on")) {
    *out = 1;
    return 0;
  }
  if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
      !strcmp(v, "off")) {
    *out = 0;
    return 0;
  }
  return PX_ECONFIG;
}

static void trim(const char **s, const char **e) {
  while (*s < *e && isspace((unsigned char)**s))
    (*s)++;
  while (*e > *s && isspace((unsigned char)(*e)[-1]))
    (*e)--;
}

int px_config_parse(px_config_t *c, const char *text, size_t len,
                    int *line_out) {
  char section[PX_CONFIG_MAX_KEY] = "";
  if (len == 0) return 0; /* text may be NULL then: no pointer arithmetic */
  const char *p = text, *end = text + len;
  int lineno = 0;
  while (p < end) {
    lineno++;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    const char *s = p, *e = eol;
    p = eol < end ? eol + 1 : end;
    trim(&s, &e);
    if (s == e || *s == '#' || *s == ';') continue;
    int rc = PX_ECONFIG;
    if (*s == '[') {
      if (e[-1] != ']') goto bad;
      s++;
      e--;
      trim(&s, &e);
      if (!valid_key(s, (size_t)(e - s))) goto bad;
      snprintf(section, sizeof section, "%.*s", (int)(e - s), s);
      continue;
    }
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq) goto bad;
    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
      vs++;
      ve--;
    }
    char key[PX_CONFIG_MAX_KEY * 2], val[PX_CONFIG_MAX_VALUE];
    if ((size_t)(ve - vs) >= sizeof val) {
      rc = PX_ETOOBIG;
      goto bad;
    }
    if (!valid_key(ks, (size_t)(ke - ks))) goto bad;
    int kn = snprintf(key, sizeof key, "%s%s%.*s", section,
                      section[0] ? "." : "", (int)(ke - ks), ks);
    if (kn < 0 || (size_t)kn >= PX_CONFIG_MAX_KEY) goto bad;
    memcpy(val, vs, (size_t)(ve - vs));
    val[ve - vs] = 0;
    rc = px_config_set(c, key, val, 0);
    if (rc) goto bad;
    continue;
  bad:
    if (line_out) *line_out = lineno;
    return rc;
  }
  return 0;
}

int px_config_load_file(px_config_t *c, const char *path, int *line_out) {
  uint8_t *data;
  size_t len;
  if (line_out) *line_out = 0;
  int rc = px_file_read_all(path, 1 << 20, &data, &len);
  if (rc) return rc;
  rc = px_config_parse(c, (const char *)data, len, line_out);
  px_free(data);
  return rc;
}

int px_config_write_file(const px_config_t *c, const char *path) {
  px_buf_t b;
  px_buf_init(&b, 1 << 20);
  int rc =
      px_buf_printf(&b, "# Plexus node configuration (see docs/config.md)\n");
  for (size_t i = 0; i < c->n && !rc; i++)
    rc = px_buf_printf(&b, "%s = \"%s\"\n", c->entries[i].key,
                       c->entries[i].value);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0644);
  px_buf_release(&b);
  return rc;
}
