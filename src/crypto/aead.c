/*
 * aead.c — ChaCha20-Poly1305, IETF variant (RFC 8439 section 2.8).
 *
 * 256-bit key, 96-bit nonce, 128-bit tag.  The wire layout is
 * ciphertext || tag (the "combined" form); out may equal in.
 *
 * Implementation: OpenSSL's libcrypto (EVP).  Everything else in crypto/ is
 * libsodium; the AEAD is the exception because it carries every byte of
 * every p2p connection and OpenSSL's vectorised ChaCha20/Poly1305 (AVX2,
 * AVX-512) runs about three times faster than libsodium's on the machines
 * we measured (bench_p2p prints both).  The algorithm is the same RFC 8439
 * construction, so the Noise test vectors and libsodium interoperate; the
 * unit tests check RFC 8439's vector and agreement with libsodium.
 *
 * An EVP context is kept per thread (created on first use, freed by a
 * pthread key destructor when the thread exits), so no call allocates.
 *
 * Nonce discipline is the caller's job: a (key, nonce) pair must never be
 * used twice; the transport uses a per-direction counter.  On a failed
 * decryption the output is zeroed, so a caller that ignores the error never
 * sees unauthenticated bytes.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static EVP_CIPHER *g_cipher;

static void ctx_destroy(void *p) { EVP_CIPHER_CTX_free(p); }

static void aead_setup(void) {
  pthread_key_create(&g_key, ctx_destroy);
  g_cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static EVP_CIPHER_CTX *aead_ctx(void) {
  pthread_once(&g_once, aead_setup);
  if (!g_cipher) return NULL;
  EVP_CIPHER_CTX *ctx = pthread_getspecific(g_key);
  if (!ctx) {
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return NULL;
    pthread_setspecific(g_key, ctx);
  }
  return ctx;
}

/* Feed n bytes (n may exceed INT_MAX) through Update; in-place allowed. */
static int update(EVP_CIPHER_CTX *ctx, int enc, uint8_t *out, const uint8_t *in,
                  size_t n) {
  while (n) {
    int k = n > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)n, outl = 0;
    int ok = enc ? EVP_EncryptUpdate(ctx, out, &outl, in, k)
                 : EVP_DecryptUpdate(ctx, out, &outl, in, k);
    if (!ok || outl != k) return 0;
    if (out) out += k;
    in += k;
    n -= (size_t)k;
  }
  return 1;
}

void px_aead_encrypt2(uint8_t *out, const uint8_t *in1, size_t n1,
                      const uint8_t *in2, size_t n2, const uint8_t *ad,
                      size_t adlen, const uint8_t nonce[PX_AEAD_NONCE_LEN],
                      const uint8_t key[PX_AEAD_KEY_LEN]) {
  EVP_CIPHER_CTX *ctx = aead_ctx();
  int outl = 0;
  size_t n = n1 + n2;
  if (!ctx || !EVP_EncryptInit_ex2(ctx, g_cipher, key, nonce, NULL) ||
      (adlen && !update(ctx, 1, NULL, ad, adlen)) ||
      (n1 && !update(ctx, 1, out, in1, n1)) ||
      (n2 && !update(ctx, 1, out + n1, in2, n2)) ||
      !EVP_EncryptFinal_ex(ctx, out + n, &outl) ||
      !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, PX_AEAD_TAG_LEN,
                           out + n)) {
    /* Only allocation failure of the per-thread context can get here; an
     * unencrypted output must never leave, so stop rather than continue. */
    PX_LOGE("crypto", "ChaCha20-Poly1305 encryption failed (OpenSSL)");
    abort();
  }
}

void px_aead_encrypt(uint8_t *out, const uint8_t *in, size_t n,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[PX_AEAD_NONCE_LEN],
                     const uint8_t key[PX_AEAD_KEY_LEN]) {
  /* One segment; in place is fine for the stream cipher. */
  px_aead_encrypt2(out, in, n, NULL, 0, ad, adlen, nonce, key);
}

int px_aead_decrypt(uint8_t *out, const uint8_t *in, size_t n,
                    const uint8_t *ad, size_t adlen,
                    const uint8_t nonce[PX_AEAD_NONCE_LEN],
                    const uint8_t key[PX_AEAD_KEY_LEN]) {
  /* Too short to even hold a tag: cannot be authentic. */
  if (n < PX_AEAD_TAG_LEN) return PX_EAUTH;
  size_t mlen = n - PX_AEAD_TAG_LEN;
  EVP_CIPHER_CTX *ctx = aead_ctx();
  if (!ctx) return PX_ENOMEM;
  uint8_t tag[PX_AEAD_TAG_LEN];
  memcpy(tag, in + mlen, sizeof tag); /* in-place decryption overwrites in */
  int outl = 0;
  int ok =
      EVP_DecryptInit_ex2(ctx, g_cipher, key, nonce, NULL) &&
      (!adlen || update(ctx, 0, NULL, ad, adlen)) &&
      (!mlen || update(ctx, 0, out, in, mlen)) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, PX_AEAD_TAG_LEN, tag) &&
      EVP_DecryptFinal_ex(ctx, out ? out + mlen : tag, &outl) > 0;
  if (!ok) {
    if (mlen && out) sodium_memzero(out, mlen);
    return PX_EAUTH;
  }
  return 0;
}
