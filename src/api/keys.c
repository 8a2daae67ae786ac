/*
 * keys.c — gateway API keys (HOME/gateway.keys).
 *
 * A key is "pxk-" + 32 random bytes in hex.  Only its BLAKE2b-256 hash is
 * stored, so a leaked keys file does not leak usable keys; each line maps
 * a key hash to the wallet that pays for its requests:
 *
 *   HASH_HEX WALLET_PK_HEX CREATED_MS\n
 *
 * New keys are appended by rewriting the whole file atomically (tmp + fsync
 * + rename, mode 0600): a crash leaves the old file or the new one.
 * Checking a key hashes it and compares against every stored hash with
 * sodium_memcmp, so timing says nothing about how close a guess was.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "plexus/api.h"
#include "plexus/crypto.h"
#include "base/px_internal.h"

#define KEYS_MAX_BYTES (4u << 20)
#define LINE_LEN (64 + 1 + 64 + 1) /* up to the timestamp */

typedef struct {
  uint8_t hash[32];
  uint8_t wallet[32];
} key_rec_t;

struct px_api_keys {
  key_rec_t *v;
  size_t n;
};

static void keys_path(char *out, size_t cap, const char *home) {
  snprintf(out, cap, "%s/%s", home, PX_API_KEYS_FILE);
}

int px_api_key_new(const char *home, const uint8_t wallet_pk[32],
                   char key_out[PX_API_KEY_LEN + 1]) {
  if (!home || !wallet_pk || !key_out) return PX_EINVAL;
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
    rc = px_buf_printf(&b, "%s %s %llu\n", hh, wh,
                       (unsigned long long)px_time_wall_ms());
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0600);
  px_buf_release(&b);
  px_free(old);
  if (rc) sodium_memzero(key_out, PX_API_KEY_LEN + 1);
  return rc;
}

int px_api_keys_load(const char *home, px_api_keys_t **out) {
  *out = NULL;
  char path[1024];
  keys_path(path, sizeof path, home);
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = px_file_read_all(path, KEYS_MAX_BYTES, &p, &n);
  if (rc) return rc;
  px_api_keys_t *k = px_calloc(1, sizeof *k);
  size_t lines = 0;
  for (size_t i = 0; i < n; i++)
    lines += p[i] == '\n';
  if (!k || !(k->v = px_calloc(lines + 1, sizeof *k->v))) {
    px_free(k);
    px_free(p);
    return PX_ENOMEM;
  }
  const char *s = (const char *)p, *end = s + n;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t ll = nl ? (size_t)(nl - s) : (size_t)(end - s);
    if (ll) {
      char hh[65], wh[65];
      uint64_t created;
      char ts[24];
      if (ll <= LINE_LEN || ll > LINE_LEN + 20 || s[64] != ' ' ||
          s[129] != ' ') {
        rc = PX_EDECODE;
        break;
      }
      memcpy(hh, s, 64);
      hh[64] = 0;
      memcpy(wh, s + 65, 64);
      wh[64] = 0;
      memcpy(ts, s + 130, ll - 130);
      ts[ll - 130] = 0;
      if (px_hex_decode(hh, k->v[k->n].hash, 32) ||
          px_hex_decode(wh, k->v[k->n].wallet, 32) ||
          px_parse_u64(ts, &created)) {
        rc = PX_EDECODE;
        break;
      }
      k->n++;
    }
    s += ll + 1;
  }
  px_free(p);
  if (rc) {
    px_api_keys_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

void px_api_keys_free(px_api_keys_t *k) {
  if (!k) return;
  px_free(k->v);
  px_free(k);
}

size_t px_api_keys_count(const px_api_keys_t *k) { return k ? k->n : 0; }

int px_api_keys_check(const px_api_keys_t *k, const char *key, size_t len,
                      uint8_t wallet_pk[32]) {
  if (!k || !key || len != PX_API_KEY_LEN) return PX_EAUTH;
  uint8_t h[32];
  px_hash(h, key, len);
  int found = -1;
  for (size_t i = 0; i < k->n; i++)
    if (sodium_memcmp(h, k->v[i].hash, 32) == 0) found = (int)i;
  if (found < 0) return PX_EAUTH;
  if (wallet_pk) memcpy(wallet_pk, k->v[found].wallet, 32);
  return 0;
}
