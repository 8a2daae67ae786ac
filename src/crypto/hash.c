/*
 * hash.c — BLAKE2b-256, the one hash function of Plexus.
 *
 * BLAKE2b (RFC 7693) with a 32-byte digest and no key, via libsodium's
 * crypto_generichash.  The streaming state lives inside the caller's
 * px_hash_state_t, an opaque, 64-byte-aligned block sized for libsodium's
 * crypto_generichash_state; the static asserts below fail the build if a
 * libsodium upgrade ever makes the real state larger or more aligned.
 *
 * None of these calls can fail for a 32-byte unkeyed digest, so they return
 * void; the asserts document that invariant.
 */
#include <assert.h>
#include <stdalign.h>

#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

_Static_assert(sizeof(crypto_generichash_state) <=
                   sizeof(((px_hash_state_t *)0)->opaque),
               "px_hash_state_t too small for crypto_generichash_state");
_Static_assert(alignof(crypto_generichash_state) <= alignof(px_hash_state_t),
               "px_hash_state_t under-aligned for crypto_generichash_state");
_Static_assert(PX_HASH_LEN >= crypto_generichash_BYTES_MIN &&
                   PX_HASH_LEN <= crypto_generichash_BYTES_MAX,
               "BLAKE2b digest length");

static crypto_generichash_state *state_of(px_hash_state_t *st) {
  return (crypto_generichash_state *)(void *)st->opaque;
}

void px_hash(uint8_t out[PX_HASH_LEN], const void *data, size_t n) {
  int rc = crypto_generichash(out, PX_HASH_LEN, data, (unsigned long long)n,
                              NULL, 0);
  assert(rc == 0);
  (void)rc;
}

void px_hash_init(px_hash_state_t *st) {
  int rc = crypto_generichash_init(state_of(st), NULL, 0, PX_HASH_LEN);
  assert(rc == 0);
  (void)rc;
}

void px_hash_update(px_hash_state_t *st, const void *data, size_t n) {
  int rc = crypto_generichash_update(state_of(st), data, (unsigned long long)n);
  assert(rc == 0);
  (void)rc;
}

void px_hash_final(px_hash_state_t *st, uint8_t out[PX_HASH_LEN]) {
  int rc = crypto_generichash_final(state_of(st), out, PX_HASH_LEN);
  assert(rc == 0);
  (void)rc;
  sodium_memzero(st, sizeof *st);
}
