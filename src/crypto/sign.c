/*
 * sign.c — library start-up, Ed25519 identity keys, node ids.
 *
 * Every Plexus identity (node or wallet) is an Ed25519 key pair (RFC 8032,
 * "PureEdDSA" Ed25519, no prehash, no context).  The secret key is kept in
 * libsodium's 64-byte layout, seed || pk, so signing never re-derives the
 * public key; only the 32-byte seed is ever written to disk (keyfile.c).
 *
 * px_crypto_init() wraps sodium_init(): it picks the fastest implementation
 * for this CPU and seeds the CSPRNG.  sodium_init() is itself idempotent and
 * thread-safe, returning 1 when already initialised, so we pass that on as
 * success.
 *
 * A node id is the lowercase hex of the public key (64 chars); parsing one
 * accepts either case but nothing else, and leaves the output untouched on
 * failure.
 */
#include <string.h>

#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

_Static_assert(crypto_sign_PUBLICKEYBYTES == PX_PK_LEN, "pk size");
_Static_assert(crypto_sign_SECRETKEYBYTES == PX_SK_LEN, "sk size");
_Static_assert(crypto_sign_SEEDBYTES == PX_SEED_LEN, "seed size");
_Static_assert(crypto_sign_BYTES == PX_SIG_LEN, "sig size");
_Static_assert(PX_NODE_ID_HEX_LEN == 2 * PX_PK_LEN + 1, "node id size");

int px_crypto_init(void) {
  if (sodium_init() < 0) return PX_ECRYPTO;
  return 0;
}

int px_key_generate(px_keypair_t *kp) {
  if (!kp) return PX_EINVAL;
  if (crypto_sign_keypair(kp->pk, kp->sk) != 0) {
    px_key_wipe(kp);
    return PX_ECRYPTO;
  }
  return 0;
}

int px_key_from_seed(px_keypair_t *kp, const uint8_t seed[PX_SEED_LEN]) {
  if (!kp || !seed) return PX_EINVAL;
  /* Copy first: seed may point into kp->sk (re-deriving a pair in place). */
  uint8_t s[PX_SEED_LEN];
  memcpy(s, seed, sizeof s);
  int rc = crypto_sign_seed_keypair(kp->pk, kp->sk, s) == 0 ? 0 : PX_ECRYPTO;
  sodium_memzero(s, sizeof s);
  if (rc) px_key_wipe(kp);
  return rc;
}

void px_key_wipe(px_keypair_t *kp) {
  if (kp) sodium_memzero(kp, sizeof *kp);
}

void px_sign(const px_keypair_t *kp, const void *msg, size_t n,
             uint8_t sig[PX_SIG_LEN]) {
  crypto_sign_detached(sig, NULL, msg, (unsigned long long)n, kp->sk);
}

int px_verify(const uint8_t pk[PX_PK_LEN], const void *msg, size_t n,
              const uint8_t sig[PX_SIG_LEN]) {
  if (!pk || !sig || (!msg && n)) return PX_EBADSIG;
  if (crypto_sign_verify_detached(sig, msg, (unsigned long long)n, pk) != 0)
    return PX_EBADSIG;
  return 0;
}

void px_node_id_hex(const uint8_t pk[PX_PK_LEN], char out[PX_NODE_ID_HEX_LEN]) {
  px_hex_encode(pk, PX_PK_LEN, out);
}

int px_node_id_parse(const char *hex, uint8_t pk[PX_PK_LEN]) {
  if (!hex || !pk) return PX_EINVAL;
  uint8_t tmp[PX_PK_LEN];
  int rc = px_hex_decode(hex, tmp, sizeof tmp);
  if (rc) return rc;
  memcpy(pk, tmp, sizeof tmp);
  return 0;
}
