/*
 * x25519.c — X25519 Diffie-Hellman key agreement (RFC 7748).
 *
 * Used by the secure transport for ephemeral session keys.  Secret scalars
 * are 32 random bytes from libsodium's CSPRNG; clamping happens inside
 * crypto_scalarmult, as RFC 7748 section 5 specifies.
 *
 * px_x25519 refuses an all-zero shared secret: that is what a low-order
 * public point produces (RFC 7748 section 6.1, "check ... is not all-zero"),
 * and libsodium's crypto_scalarmult reports it by returning -1.  A peer that
 * sends such a point is trying to force a known session key.
 */
#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

_Static_assert(crypto_scalarmult_BYTES == PX_X25519_LEN, "x25519 size");
_Static_assert(crypto_scalarmult_SCALARBYTES == PX_X25519_LEN, "x25519 sk");

int px_x25519_keypair(uint8_t pk[PX_X25519_LEN], uint8_t sk[PX_X25519_LEN]) {
  if (!pk || !sk) return PX_EINVAL;
  randombytes_buf(sk, PX_X25519_LEN);
  int rc = px_x25519_public(pk, sk);
  if (rc) sodium_memzero(sk, PX_X25519_LEN);
  return rc;
}

int px_x25519_public(uint8_t pk[PX_X25519_LEN],
                     const uint8_t sk[PX_X25519_LEN]) {
  if (!pk || !sk) return PX_EINVAL;
  if (crypto_scalarmult_base(pk, sk) != 0) return PX_ECRYPTO;
  return 0;
}

int px_x25519(uint8_t shared[PX_X25519_LEN], const uint8_t sk[PX_X25519_LEN],
              const uint8_t pk[PX_X25519_LEN]) {
  if (!shared || !sk || !pk) return PX_EINVAL;
  if (crypto_scalarmult(shared, sk, pk) != 0) {
    sodium_memzero(shared, PX_X25519_LEN);
    return PX_ECRYPTO;
  }
  return 0;
}
