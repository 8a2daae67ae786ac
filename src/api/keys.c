/*
 * keys.c — gateway API keys (HOME/gateway.keys) and their quotas.
 *
 * A key is "pxk-" + 32 random bytes in hex.  Only its BLAKE2b-256 hash is
 * stored, so a leaked keys file does not leak usable keys; each line maps
 * a key hash to the wallet that pays for its requests, and may carry the
 * key's own quotas:
 *
 *   HASH_HEX WALLET_PK_HEX CREATED_MS[ rpm=N][ tpd=T]\n
 *
 * (lines written before quotas existed have no options: they take the
 * server's defaults).  Options are decimal without leading zeros, in that
 * order, each at most once, at most PX_API_QUOTA_MAX; 0 means unlimited.
 *
 * New keys are appended by rewriting the whole file atomically (tmp + fsync
 * + rename, mode 0600): a crash leaves the old file or the new one.
 * Checking a key hashes it and compares against every stored hash with
 * sodium_memcmp, so timing says nothing about how close a guess was.
 *
 * Quotas (docs/api.md "Quotas") are counted in memory, per loaded keys
 * object, under one mutex (connection threads admit and charge
 * concurrently); a restart forgets them:
 *  - requests per minute: a token bucket of rpm requests refilled at rpm per
 *    60 s (a burst of rpm at once, then one every 60/rpm s);
 *  - tokens per day: prompt + completion tokens charged when a request ends,
 *    counted per UTC day (00:00 UTC resets).  A request is admitted while
 *    the day's count is under the budget, so the one that crosses it is
 *    finished, and the ones after it are refused until the next day.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "plexus/api.h"
#include "plexus/crypto.h"
#include "base/px_internal.h"

#define KEYS_MAX_BYTES (4u << 20)
#define LINE_LEN (64 + 1 + 64 + 1) /* up to the timestamp */
#define KEY_LINE_MAX (LINE_LEN + 20 + 5 + 20 + 5 + 20)
#define DAY_MS 86400000ull
#define MIN_MS 60000ull

typedef struct {
  uint8_t hash[32];
  uint8_t wallet[32];
  px_api_quota_t quota; /* as stored: fields may be PX_API_QUOTA_UNSET */
  /* quota state, under mu */
  uint64_t bucket;     /* rpm bucket in request x ms units / rpm: 60000 = 1 */
  uint64_t bucket_ms;  /* when bucket was last refilled */
  int primed;          /* bucket_ms is set (before the first request: full) */
  uint64_t day;        /* UTC day index of tokens_day */
  uint64_t tokens_day; /* tokens charged on that day */
} key_rec_t;

struct px_api_keys {
  key_rec_t *v;
  size_t n;
  pthread_mutex_t mu;
};

static void keys_path(char *out, size_t cap, const char *home) {
  snprintf(out, cap, "%s/%s", home, PX_API_KEYS_FILE);
}

static int quota_ok(const px_api_quota_t *q) {
  return (q->rpm == PX_API_QUOTA_UNSET || q->rpm <= PX_API_QUOTA_MAX) &&
         (q->tokens_per_day == PX_API_QUOTA_UNSET ||
          q->tokens_per_day <= PX_API_QUOTA_MAX);
}

int px_api_key_new_quota(const char *home, const uint8_t wallet_pk[32],
                         const px_api_quota_t *quota,
                         char key_out[PX_API_KEY_LEN + 1]) {
  if (!home || !wallet_pk || !key_out) return PX_EINVAL;
  px_api_quota_t q = {PX_API_QUOTA_UNSET, PX_API_QUOTA_UNSET};
  if (quota) q = *quota;
  if (!quota_ok(&q)) return PX_ERANGE;
  char path[1024];
  keys_path(path, sizeof path, home);
  uint8_t *old = NULL;
  size_t oldn = 0;
  int rc = px_file_read_all(path, KEYS_MAX_BYTES, &old, &oldn);
  if (rc && rc != PX_ENOENT) return rc;
  if (!rc) { /* refuse to extend a file we could not read back */
    px_api_keys_t *k = NULL;
    rc = px_api_keys_load(home, &k);
    px_api_keys_free(k);
    if (rc) {
      px_free(old);
      return rc;
    }
  }
  uint8_t raw[32];
  randombytes_buf(raw, sizeof raw);
  memcpy(key_out, PX_API_KEY_PREFIX, 4);
  px_hex_encode(raw, sizeof raw, key_out + 4);
  sodium_memzero(raw, sizeof raw);
  uint8_t h[32];
  px_hash(h, key_out, PX_API_KEY_LEN);
  char hh[65], wh[65];
  px_hex_encode(h, 32, hh);
  px_hex_encode(wallet_pk, 32, wh);
  px_buf_t b;
  px_buf_init(&b, KEYS_MAX_BYTES + 256);
  rc = 0;
  if (oldn) rc = px_buf_append(&b, old, oldn);
  if (!rc && oldn && old[oldn - 1] != '\n') rc = px_buf_append(&b, "\n", 1);
  if (!rc)
    rc = px_buf_printf(&b, "%s %s %llu", hh, wh,
                       (unsigned long long)px_time_wall_ms());
  if (!rc && q.rpm != PX_API_QUOTA_UNSET)
    rc = px_buf_printf(&b, " rpm=%llu", (unsigned long long)q.rpm);
  if (!rc && q.tokens_per_day != PX_API_QUOTA_UNSET)
    rc = px_buf_printf(&b, " tpd=%llu", (unsigned long long)q.tokens_per_day);
  if (!rc) rc = px_buf_append(&b, "\n", 1);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0600);
  px_buf_release(&b);
  px_free(old);
  if (rc) sodium_memzero(key_out, PX_API_KEY_LEN + 1);
  return rc;
}

int px_api_key_new(const char *home, const uint8_t wallet_pk[32],
                   char key_out[PX_API_KEY_LEN + 1]) {
  return px_api_key_new_quota(home, wallet_pk, NULL, key_out);
}

/* A canonical decimal s[0..n): digits only, no leading zero, <= max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out) {
  char t[24];
  if (!n || n >= sizeof t || (n > 1 && s[0] == '0')) return PX_EDECODE;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return PX_EDECODE;
  memcpy(t, s, n);
  t[n] = 0;
  uint64_t v;
  if (px_parse_u64(t, &v) || v > max) return PX_EDECODE;
  *out = v;
  return 0;
}

/* One non-empty line s[0..ll) into r. */
static int parse_line(const char *s, size_t ll, key_rec_t *r) {
  if (ll <= LINE_LEN || ll > KEY_LINE_MAX || s[64] != ' ' || s[129] != ' ')
    return PX_EDECODE;
  char hh[65], wh[65];
  memcpy(hh, s, 64);
  hh[64] = 0;
  memcpy(wh, s + 65, 64);
  wh[64] = 0;
  if (px_hex_decode(hh, r->hash, 32) || px_hex_decode(wh, r->wallet, 32))
    return PX_EDECODE;
  /* fields after the hashes: CREATED_MS, then the options */
  const char *p = s + 130, *end = s + ll;
  const char *sp = memchr(p, ' ', (size_t)(end - p));
  size_t fl = sp ? (size_t)(sp - p) : (size_t)(end - p);
  uint64_t created;
  if (parse_dec(p, fl, UINT64_MAX, &created)) return PX_EDECODE;
  r->quota.rpm = r->quota.tokens_per_day = PX_API_QUOTA_UNSET;
  static const char *const names[2] = {"rpm=", "tpd="};
  int next = 0; /* options in order, each once */
  p += fl;
  while (p < end) {
    p++; /* the space */
    sp = memchr(p, ' ', (size_t)(end - p));
    fl = sp ? (size_t)(sp - p) : (size_t)(end - p);
    int which = -1;
    for (int i = next; i < 2 && which < 0; i++)
      if (fl > 4 && !memcmp(p, names[i], 4)) which = i;
    uint64_t v;
    if (which < 0 || parse_dec(p + 4, fl - 4, PX_API_QUOTA_MAX, &v))
      return PX_EDECODE;
    if (which == 0)
      r->quota.rpm = v;
    else
      r->quota.tokens_per_day = v;
    next = which + 1;
    p += fl;
  }
  return 0;
}

int px_api_keys_load(const char *home, px_api_keys_t **out) {
  *out = NULL;
  char path[1024];
  keys_path(path, sizeof path, home);
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = px_file_read_all(path, KEYS_MAX_BYTES, &p, &n);
  if (rc) return rc;
  rc = px_api_keys_parse(p, n, out);
  px_free(p);
  return rc;
}

int px_api_keys_parse(const void *data, size_t n, px_api_keys_t **out) {
  *out = NULL;
  if (n > KEYS_MAX_BYTES) return PX_ETOOBIG;
  const uint8_t *p = data;
  int rc = 0;
  px_api_keys_t *k = px_calloc(1, sizeof *k);
  size_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += p[i] == '\n';
  if (!k || !(k->v = px_calloc(lines + 1, sizeof *k->v))) {
    px_free(k);
    return PX_ENOMEM;
  }
  pthread_mutex_init(&k->mu, NULL);
  const char *s = (const char *)p, *end = s + n;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t ll = nl ? (size_t)(nl - s) : (size_t)(end - s);
    if (ll) {
      if ((rc = parse_line(s, ll, &k->v[k->n]))) break;
      k->n++;
    }
    s += ll + 1;
  }
  if (rc) {
    px_api_keys_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

void px_api_keys_free(px_api_keys_t *k) {
  if (!k) return;
  pthread_mutex_destroy(&k->mu);
  px_free(k->v);
  px_free(k);
}

size_t px_api_keys_count(const px_api_keys_t *k) { return k ? k->n : 0; }

int px_api_keys_find(const px_api_keys_t *k, const char *key, size_t len,
                     uint8_t wallet_pk[32], size_t *index) {
  if (!k || !key || len != PX_API_KEY_LEN) return PX_EAUTH;
  uint8_t h[32];
  px_hash(h, key, len);
  int found = -1;
  for (size_t i = 0; i < k->n; i++)
    if (sodium_memcmp(h, k->v[i].hash, 32) == 0) found = (int)i;
  if (found < 0) return PX_EAUTH;
  if (wallet_pk) memcpy(wallet_pk, k->v[found].wallet, 32);
  if (index) *index = (size_t)found;
  return 0;
}

int px_api_keys_check(const px_api_keys_t *k, const char *key, size_t len,
                      uint8_t wallet_pk[32]) {
  return px_api_keys_find(k, key, len, wallet_pk, NULL);
}

/* ---- quotas -------------------------------------------------------------- */

int px_api_keys_quota(const px_api_keys_t *k, size_t index,
                      const px_api_quota_t *defaults, px_api_quota_t *out) {
  if (!k || index >= k->n) return PX_EINVAL;
  const px_api_quota_t *q = &k->v[index].quota;
  out->rpm = q->rpm != PX_API_QUOTA_UNSET ? q->rpm
             : defaults                   ? defaults->rpm
                                          : 0;
  out->tokens_per_day = q->tokens_per_day != PX_API_QUOTA_UNSET
                            ? q->tokens_per_day
                        : defaults ? defaults->tokens_per_day
                                   : 0;
  if (out->rpm == PX_API_QUOTA_UNSET) out->rpm = 0;
  if (out->tokens_per_day == PX_API_QUOTA_UNSET) out->tokens_per_day = 0;
  return 0;
}

/* A new UTC day forgets yesterday's tokens.  Under mu. */
static void roll_day(key_rec_t *r, uint64_t now_ms) {
  uint64_t day = now_ms / DAY_MS;
  if (day != r->day) {
    r->day = day;
    r->tokens_day = 0;
  }
}

int px_api_keys_admit(px_api_keys_t *k, size_t index,
                      const px_api_quota_t *defaults, uint64_t now_ms,
                      uint64_t *retry_after_s) {
  px_api_quota_t q;
  *retry_after_s = 0;
  if (px_api_keys_quota(k, index, defaults, &q)) return PX_EINVAL;
  key_rec_t *r = &k->v[index];
  int rc = 0;
  pthread_mutex_lock(&k->mu);
  roll_day(r, now_ms);
  if (q.tokens_per_day && r->tokens_day >= q.tokens_per_day) {
    uint64_t left_ms = (r->day + 1) * DAY_MS - now_ms;
    *retry_after_s = (left_ms + 999) / 1000;
    rc = PX_ELIMIT;
  } else if (q.rpm) {
    /* The bucket holds up to rpm requests, in units of 1/MIN_MS request x
     * rpm: one request is MIN_MS units, and it refills rpm units per ms. */
    uint64_t cap = q.rpm * MIN_MS;
    if (!r->primed || now_ms >= r->bucket_ms + MIN_MS) {
      r->bucket = cap; /* an empty bucket fills in MIN_MS */
    } else if (now_ms > r->bucket_ms) {
      uint64_t add = (now_ms - r->bucket_ms) * q.rpm; /* < 6e16 */
      r->bucket = add >= cap - PX_MIN(r->bucket, cap) ? cap : r->bucket + add;
    }
    if (r->bucket > cap) r->bucket = cap; /* the quota was lowered */
    if (!r->primed || now_ms > r->bucket_ms) r->bucket_ms = now_ms;
    r->primed = 1;
    if (r->bucket >= MIN_MS) {
      r->bucket -= MIN_MS;
    } else {
      uint64_t wait_ms = (MIN_MS - r->bucket + q.rpm - 1) / q.rpm;
      *retry_after_s = PX_MAX((wait_ms + 999) / 1000, 1);
      rc = PX_ERATE;
    }
  }
  pthread_mutex_unlock(&k->mu);
  return rc;
}

void px_api_keys_charge(px_api_keys_t *k, size_t index, uint64_t tokens,
                        uint64_t now_ms) {
  if (!k || index >= k->n) return;
  key_rec_t *r = &k->v[index];
  pthread_mutex_lock(&k->mu);
  roll_day(r, now_ms);
  r->tokens_day =
      tokens > UINT64_MAX - r->tokens_day ? UINT64_MAX : r->tokens_day + tokens;
  pthread_mutex_unlock(&k->mu);
}

uint64_t px_api_keys_tokens_used(px_api_keys_t *k, size_t index,
                                 uint64_t now_ms) {
  if (!k || index >= k->n) return 0;
  key_rec_t *r = &k->v[index];
  pthread_mutex_lock(&k->mu);
  roll_day(r, now_ms);
  uint64_t v = r->tokens_day;
  pthread_mutex_unlock(&k->mu);
  return v;
}
