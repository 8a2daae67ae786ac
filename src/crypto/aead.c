/*
 * aead.c — ChaCha20-Poly1305, IETF variant (RFC 8439 section 2.8).
 *
 * 256-bit key, 96-bit nonce, 128-bit tag.  The wire layout is
 * ciphertext || tag (the "combined" form), produced with libsodium's
 * detached calls so that the tag lands right after the ciphertext even when
 * the caller encrypts in place (out == in).
 *
 * Nonce discipline is the caller's job: a (key, nonce) pair must never be
 * used twice; the transport uses a per-direction counter.
 *
 * Decryption checks the tag before it writes any plaintext (libsodium's
 * decrypt_detached verifies first), and on failure the output is zeroed so
 * a caller that ignores the error never sees unauthenticated bytes.
 */
#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

_Static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == PX_AEAD_KEY_LEN,
               "aead key");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == PX_AEAD_NONCE_LEN,
               "aead nonce");
_Static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == PX_AEAD_TAG_LEN,
               "aead tag");

void px_aead_encrypt(uint8_t *out, const uint8_t *in, size_t n,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[PX_AEAD_NONCE_LEN],
                     const uint8_t key[PX_AEAD_KEY_LEN]) {
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      out, out + n, NULL, in, (unsigned long long)n, ad,
      (unsigned long long)adlen, NULL, nonce, key);
}

int px_aead_decrypt(uint8_t *out, const uint8_t *in, size_t n,
                    const uint8_t *ad, size_t adlen,
                    const uint8_t nonce[PX_AEAD_NONCE_LEN],
                    const uint8_t key[PX_AEAD_KEY_LEN]) {
  /* Too short to even hold a tag: cannot be authentic. */
  if (n < PX_AEAD_TAG_LEN) return PX_EAUTH;
  size_t mlen = n - PX_AEAD_TAG_LEN;
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          out, NULL, in, (unsigned long long)mlen, in + mlen, ad,
          (unsigned long long)adlen, nonce, key) != 0) {
    if (mlen) sodium_memzero(out, mlen);
    return PX_EAUTH;
  }
  return 0;
}
