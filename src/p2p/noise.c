/*
 * noise.c — Noise_XX_25519_ChaChaPoly_SHA256 handshake and transport,
 * sans-I/O, on libsodium primitives.
 *
 * Spec: The Noise Protocol Framework, revision 34 (2018-07-11).
 *   4.1  DH functions: X25519 (crypto_scalarmult); an all-zero result is
 *        refused (libsodium reports it), which rejects low-order points.
 *   4.2  Cipher functions: ChaCha20-Poly1305 IETF; the 96-bit nonce is 32
 *        zero bits followed by the 64-bit counter n, little-endian.
 *        REKEY(k) = ENCRYPT(k, 2^64-1, "", 32 zero bytes)[0..32).
 *   4.3  Hash functions: SHA-256; HMAC-SHA256; HKDF(ck, ikm, n) =
 *        temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01);
 *        o2 = HMAC(temp, o1 || 0x02) (o3 is never needed by XX).
 *   5.1  CipherState: EncryptWithAd/DecryptWithAd pass plaintext through
 *        while there is no key; n = 2^64-1 is reserved, so reaching it is an
 *        error; a failed decryption leaves n unchanged.
 *   5.2  SymmetricState: InitializeSymmetric (the protocol name is exactly
 *        32 bytes, so h = name, no hashing), MixKey, MixHash,
 *        EncryptAndHash, DecryptAndHash, Split.
 *   5.3  HandshakeState: WriteMessage/ReadMessage walked for XX:
 *            -> e
 *            <- e, ee, s, es
 *            -> s, se
 *        Pattern tokens for DH follow the initiator/responder roles:
 *        "es" is DH(e, rs) for the initiator and DH(s, re) for the
 *        responder; "se" is DH(s, re) for the initiator and DH(e, rs) for
 *        the responder.
 *   7.4  XX has no pre-messages, so only the prologue is mixed at start.
 *
 * How: the state is one flat struct owned by the caller; the three
 * messages are three cases of one switch on hs->msg, so the whole pattern
 * reads top to bottom.  Lengths are fixed by the pattern (32-byte keys,
 * 16-byte tags), so every length check happens before any state changes:
 * a bad argument leaves the state untouched, a bad peer message kills the
 * handshake (hs->failed) and wipes its secrets, as section 5.3 asks
 * ("if an error is signalled ... the handshake is aborted").
 *
 * Every intermediate secret (HMAC states, temp keys, DH outputs) lives on
 * the stack and is zeroed with sodium_memzero before returning.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "plexus/crypto.h"
#include "p2p/noise.h"

#include "base/px_internal.h"

_Static_assert(sizeof(PX_NOISE_PROTOCOL_NAME) - 1 == PX_NOISE_HASH_LEN,
               "protocol name must be exactly HASHLEN bytes (section 5.2)");
_Static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == PX_NOISE_TAG_LEN,
               "tag length");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "nonce");

/* ---- hash, HMAC, HKDF (section 4.3) ----------------------------------- */

static void hmac2(const uint8_t key[PX_NOISE_HASH_LEN], const uint8_t *a,
                  size_t alen, const uint8_t *b, size_t blen,
                  uint8_t out[PX_NOISE_HASH_LEN]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, PX_NOISE_HASH_LEN);
  if (alen) crypto_auth_hmacsha256_update(&st, a, alen);
  if (blen) crypto_auth_hmacsha256_update(&st, b, blen);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

/* HKDF with two outputs; ikm may be empty (Split). */
static void hkdf2(const uint8_t ck[PX_NOISE_HASH_LEN], const uint8_t *ikm,
                  size_t ikmlen, uint8_t out1[PX_NOISE_HASH_LEN],
                  uint8_t out2[PX_NOISE_HASH_LEN]) {
  uint8_t temp[PX_NOISE_HASH_LEN];
  uint8_t o1[PX_NOISE_HASH_LEN];
  const uint8_t one = 0x01, two = 0x02;
  hmac2(ck, ikm, ikmlen, NULL, 0, temp);
  hmac2(temp, &one, 1, NULL, 0, o1);
  hmac2(temp, o1, sizeof o1, &two, 1, out2);
  memcpy(out1, o1, sizeof o1); /* out1 may alias ck: write it last */
  sodium_memzero(temp, sizeof temp);
  sodium_memzero(o1, sizeof o1);
}

/* h = SHA-256(h || data) */
static void mix_hash(px_noise_hs_t *hs, const uint8_t *data, size_t len) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, hs->h, sizeof hs->h);
  if (len) crypto_hash_sha256_update(&st, data, len);
  crypto_hash_sha256_final(&st, hs->h);
  sodium_memzero(&st, sizeof st);
}

/* ---- CipherState (section 5.1) --------------------------------------- */

static void nonce_bytes(uint64_t n, uint8_t nonce[12]) {
  memset(nonce, 0, 4);
  px_put_u64le(nonce + 4, n);
}

static void cipher_set_key(px_noise_cipher_t *c,
                           const uint8_t k[PX_NOISE_KEY_LEN]) {
  memcpy(c->k, k, PX_NOISE_KEY_LEN);
  c->n = 0;
  c->has_key = 1;
}

/* ENCRYPT with the current nonce, then n++.  Caller checked the key.  The
 * AEAD is px_aead_* (plexus/crypto.h): RFC 8439 ChaCha20-Poly1305, whose
 * 96-bit nonce is Noise's 32 zero bits || 64-bit little-endian counter. */
static int cipher_encrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                          const uint8_t *pt, size_t n, uint8_t *out) {
  uint8_t nonce[12];
  if (c->n == UINT64_MAX) return PX_ELIMIT;
  nonce_bytes(c->n, nonce);
  px_aead_encrypt(out, pt, n, ad, adlen, nonce, c->k);
  c->n++;
  return 0;
}

/* DECRYPT with the current nonce; n++ only on success. */
static int cipher_decrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                          const uint8_t *ct, size_t n, uint8_t *out) {
  uint8_t nonce[12];
  if (c->n == UINT64_MAX) return PX_ELIMIT;
  if (n < PX_NOISE_TAG_LEN) return PX_EAUTH;
  nonce_bytes(c->n, nonce);
  if (px_aead_decrypt(n > PX_NOISE_TAG_LEN ? out : NULL, ct, n, ad, adlen,
                      nonce, c->k) != 0)
    return PX_EAUTH;
  c->n++;
  return 0;
}

int px_noise_encrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t n, uint8_t *out) {
  if (!c || !out || (!pt && n) || (!ad && adlen)) return PX_EINVAL;
  if (!c->has_key) return PX_ESTATE;
  if (n > PX_NOISE_MAX_TRANSPORT_PAYLOAD) return PX_ETOOBIG;
  return cipher_encrypt(c, ad, adlen, pt, n, out);
}

int px_noise_encrypt2(px_noise_cipher_t *c, const uint8_t *pt1, size_t n1,
                      const uint8_t *pt2, size_t n2, uint8_t *out) {
  uint8_t nonce[12];
  if (!c || !out || (!pt1 && n1) || (!pt2 && n2)) return PX_EINVAL;
  if (!c->has_key) return PX_ESTATE;
  if (n1 + n2 > PX_NOISE_MAX_TRANSPORT_PAYLOAD) return PX_ETOOBIG;
  if (c->n == UINT64_MAX) return PX_ELIMIT;
  nonce_bytes(c->n, nonce);
  px_aead_encrypt2(out, pt1, n1, pt2, n2, NULL, 0, nonce, c->k);
  c->n++;
  return 0;
}

int px_noise_decrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t n, uint8_t *out) {
  if (!c || (!ct && n) || (!ad && adlen)) return PX_EINVAL;
  if (!out && n > PX_NOISE_TAG_LEN) return PX_EINVAL;
  if (!c->has_key) return PX_ESTATE;
  if (n > PX_NOISE_MAX_MSG) return PX_ETOOBIG;
  return cipher_decrypt(c, ad, adlen, ct, n, out);
}

int px_noise_cipher_rekey(px_noise_cipher_t *c) {
  static const uint8_t zeros[PX_NOISE_KEY_LEN] = {0};
  uint8_t nonce[12];
  uint8_t out[PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN];
  if (!c) return PX_EINVAL;
  if (!c->has_key) return PX_ESTATE;
  nonce_bytes(UINT64_MAX, nonce);
  px_aead_encrypt(out, zeros, sizeof zeros, NULL, 0, nonce, c->k);
  memcpy(c->k, out, PX_NOISE_KEY_LEN);
  sodium_memzero(out, sizeof out);
  return 0;
}

void px_noise_cipher_wipe(px_noise_cipher_t *c) {
  if (c) sodium_memzero(c, sizeof *c);
}

/* ---- SymmetricState (section 5.2) ------------------------------------ */

static void mix_key(px_noise_hs_t *hs, const uint8_t ikm[PX_NOISE_KEY_LEN]) {
  uint8_t temp_k[PX_NOISE_HASH_LEN];
  hkdf2(hs->ck, ikm, PX_NOISE_KEY_LEN, hs->ck, temp_k);
  cipher_set_key(&hs->cs, temp_k); /* HASHLEN == 32: no truncation */
  sodium_memzero(temp_k, sizeof temp_k);
}

/* out[0..n(+16)) = EncryptWithAd(h, pt); MixHash(out). */
static int encrypt_and_hash(px_noise_hs_t *hs, const uint8_t *pt, size_t n,
                            uint8_t *out) {
  size_t clen = n;
  if (hs->cs.has_key) {
    int rc = cipher_encrypt(&hs->cs, hs->h, sizeof hs->h, pt, n, out);
    if (rc) return rc;
    clen += PX_NOISE_TAG_LEN;
  } else if (n) {
    memmove(out, pt, n);
  }
  mix_hash(hs, out, clen);
  return 0;
}

/* out = DecryptWithAd(h, ct[0..n)); MixHash(ct).  The new h is computed
 * from the ciphertext before decrypting, so out may alias ct, and is kept
 * only if authentication succeeds. */
static int decrypt_and_hash(px_noise_hs_t *hs, const uint8_t *ct, size_t n,
                            uint8_t *out) {
  uint8_t old_h[PX_NOISE_HASH_LEN];
  int rc = 0;
  memcpy(old_h, hs->h, sizeof old_h);
  mix_hash(hs, ct, n);
  if (hs->cs.has_key) {
    rc = cipher_decrypt(&hs->cs, old_h, sizeof old_h, ct, n, out);
    if (rc) memcpy(hs->h, old_h, sizeof old_h);
  } else if (n) {
    memmove(out, ct, n);
  }
  sodium_memzero(old_h, sizeof old_h);
  return rc;
}

/* ---- DH (section 4.1) --------------------------------------------------- */

/* MixKey(DH(sk, pk)).  PX_ECRYPTO for an all-zero shared secret. */
static int mix_dh(px_noise_hs_t *hs, const uint8_t sk[PX_NOISE_KEY_LEN],
                  const uint8_t pk[PX_NOISE_KEY_LEN]) {
  uint8_t shared[PX_NOISE_KEY_LEN];
  if (crypto_scalarmult(shared, sk, pk) != 0) {
    sodium_memzero(shared, sizeof shared);
    return PX_ECRYPTO;
  }
  mix_key(hs, shared);
  sodium_memzero(shared, sizeof shared);
  return 0;
}

static int make_ephemeral(px_noise_hs_t *hs) {
  if (hs->has_e) return 0;
  if (hs->rng)
    hs->rng(hs->rng_ud, hs->e_sk, sizeof hs->e_sk);
  else
    randombytes_buf(hs->e_sk, sizeof hs->e_sk);
  if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0) return PX_ECRYPTO;
  hs->has_e = 1;
  return 0;
}

/* ---- HandshakeState (section 5.3) -------------------------------------- */

static void wipe_secrets(px_noise_hs_t *hs) {
  sodium_memzero(&hs->cs, sizeof hs->cs);
  sodium_memzero(hs->ck, sizeof hs->ck);
  sodium_memzero(hs->s_sk, sizeof hs->s_sk);
  sodium_memzero(hs->e_sk, sizeof hs->e_sk);
}

static int fail(px_noise_hs_t *hs, int err) {
  wipe_secrets(hs);
  hs->failed = 1;
  return err;
}

static size_t msg_overhead(int msg) {
  switch (msg) {
  case 0:
    return PX_NOISE_MSG1_OVERHEAD;
  case 1:
    return PX_NOISE_MSG2_OVERHEAD;
  default:
    return PX_NOISE_MSG3_OVERHEAD;
  }
}

int px_noise_hs_init(px_noise_hs_t *hs, int initiator, const uint8_t *prologue,
                     size_t plen, const uint8_t static_sk[32],
                     px_noise_rng_fn rng, void *rng_ud) {
  if (!hs || !static_sk || (!prologue && plen)) return PX_EINVAL;
  if (sodium_init() < 0) return PX_ECRYPTO;
  sodium_memzero(hs, sizeof *hs);
  hs->initiator = initiator ? 1 : 0;
  hs->rng = rng;
  hs->rng_ud = rng_ud;
  /* InitializeSymmetric: the name is HASHLEN bytes, so h = name. */
  memcpy(hs->h, PX_NOISE_PROTOCOL_NAME, PX_NOISE_HASH_LEN);
  memcpy(hs->ck, hs->h, PX_NOISE_HASH_LEN);
  mix_hash(hs, prologue, plen);
  memcpy(hs->s_sk, static_sk, PX_NOISE_KEY_LEN);
  if (crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0) {
    sodium_memzero(hs, sizeof *hs);
    return PX_ECRYPTO;
  }
  hs->init_done = 1;
  return 0;
}

void px_noise_hs_set_ephemeral(px_noise_hs_t *hs, const uint8_t e_sk[32]) {
  if (!hs || !e_sk || !hs->init_done || hs->failed) return;
  /* Only before our e has gone out: msg 1 (initiator), msg 2 (responder). */
  if (hs->msg > (hs->initiator ? 0 : 1)) return;
  memcpy(hs->e_sk, e_sk, PX_NOISE_KEY_LEN);
  hs->has_e = crypto_scalarmult_base(hs->e_pk, hs->e_sk) == 0;
}

int px_noise_hs_my_turn(const px_noise_hs_t *hs) {
  if (!hs || !hs->init_done || hs->failed || hs->msg >= 3) return 0;
  /* initiator writes messages 0 and 2, responder writes message 1 */
  return ((hs->msg % 2) == 0) == (hs->initiator == 1);
}

int px_noise_hs_done(const px_noise_hs_t *hs) {
  return hs && hs->init_done && !hs->failed && hs->msg == 3;
}

int px_noise_hs_write(px_noise_hs_t *hs, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap, size_t *out_len) {
  size_t overhead, total;
  uint8_t *p;
  int rc;
  if (!hs || !out || !out_len || (!payload && plen)) return PX_EINVAL;
  if (!px_noise_hs_my_turn(hs) || hs->split) return PX_ESTATE;
  overhead = msg_overhead(hs->msg);
  if (plen > PX_NOISE_MAX_MSG - overhead) return PX_ETOOBIG;
  total = overhead + plen;
  if (total > cap) return PX_EINVAL;
  *out_len = 0;
  p = out;

  switch (hs->msg) {
  case 0: /* -> e */
    if ((rc = make_ephemeral(hs)) != 0) return fail(hs, rc);
    memcpy(p, hs->e_pk, PX_NOISE_KEY_LEN);
    mix_hash(hs, hs->e_pk, PX_NOISE_KEY_LEN);
    p += PX_NOISE_KEY_LEN;
    break;
  case 1: /* <- e, ee, s, es   (we are the responder) */
    if ((rc = make_ephemeral(hs)) != 0) return fail(hs, rc);
    memcpy(p, hs->e_pk, PX_NOISE_KEY_LEN);
    mix_hash(hs, hs->e_pk, PX_NOISE_KEY_LEN);
    p += PX_NOISE_KEY_LEN;
    if ((rc = mix_dh(hs, hs->e_sk, hs->re)) != 0) return fail(hs, rc);
    if ((rc = encrypt_and_hash(hs, hs->s_pk, PX_NOISE_KEY_LEN, p)) != 0)
      return fail(hs, rc);
    p += PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN;
    if ((rc = mix_dh(hs, hs->s_sk, hs->re)) != 0) return fail(hs, rc);
    break;
  default: /* -> s, se   (we are the initiator) */
    if ((rc = encrypt_and_hash(hs, hs->s_pk, PX_NOISE_KEY_LEN, p)) != 0)
      return fail(hs, rc);
    p += PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN;
    if ((rc = mix_dh(hs, hs->s_sk, hs->re)) != 0) return fail(hs, rc);
    break;
  }
  if ((rc = encrypt_and_hash(hs, payload, plen, p)) != 0) return fail(hs, rc);
  hs->msg++;
  *out_len = total;
  return 0;
}

int px_noise_hs_read(px_noise_hs_t *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen) {
  uint8_t scratch[1];
  size_t overhead, pl;
  const uint8_t *p;
  int rc;
  if (!hs || !plen || (!msg && len) || (!payload && cap)) return PX_EINVAL;
  if (!hs->init_done || hs->failed || hs->split || hs->msg >= 3 ||
      px_noise_hs_my_turn(hs))
    return PX_ESTATE;
  *plen = 0;
  if (len > PX_NOISE_MAX_MSG) return fail(hs, PX_ETOOBIG);
  overhead = msg_overhead(hs->msg);
  if (len < overhead) return fail(hs, PX_EHANDSHAKE);
  pl = len - overhead;
  if (pl > cap) return PX_EINVAL; /* caller's buffer: state untouched */
  if (!payload) payload = scratch;
  p = msg;

  switch (hs->msg) {
  case 0: /* -> e   (we are the responder) */
    memcpy(hs->re, p, PX_NOISE_KEY_LEN);
    mix_hash(hs, hs->re, PX_NOISE_KEY_LEN);
    p += PX_NOISE_KEY_LEN;
    break;
  case 1: /* <- e, ee, s, es   (we are the initiator) */
    memcpy(hs->re, p, PX_NOISE_KEY_LEN);
    mix_hash(hs, hs->re, PX_NOISE_KEY_LEN);
    p += PX_NOISE_KEY_LEN;
    if ((rc = mix_dh(hs, hs->e_sk, hs->re)) != 0) return fail(hs, rc);
    rc = decrypt_and_hash(hs, p, PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN, hs->rs);
    if (rc) return fail(hs, rc);
    hs->has_rs = 1;
    p += PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN;
    if ((rc = mix_dh(hs, hs->e_sk, hs->rs)) != 0) return fail(hs, rc);
    break;
  default: /* -> s, se   (we are the responder) */
    rc = decrypt_and_hash(hs, p, PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN, hs->rs);
    if (rc) return fail(hs, rc);
    hs->has_rs = 1;
    p += PX_NOISE_KEY_LEN + PX_NOISE_TAG_LEN;
    if ((rc = mix_dh(hs, hs->e_sk, hs->rs)) != 0) return fail(hs, rc);
    break;
  }
  rc = decrypt_and_hash(hs, p, (size_t)(msg + len - p), payload);
  if (rc) return fail(hs, rc);
  hs->msg++;
  *plen = pl;
  return 0;
}

int px_noise_hs_split(px_noise_hs_t *hs, px_noise_cipher_t *send,
                      px_noise_cipher_t *recv) {
  uint8_t k1[PX_NOISE_HASH_LEN], k2[PX_NOISE_HASH_LEN];
  if (!hs || !send || !recv || send == recv) return PX_EINVAL;
  if (!px_noise_hs_done(hs) || hs->split) return PX_ESTATE;
  hkdf2(hs->ck, NULL, 0, k1, k2);
  /* c1 carries initiator -> responder, c2 responder -> initiator. */
  cipher_set_key(hs->initiator ? send : recv, k1);
  cipher_set_key(hs->initiator ? recv : send, k2);
  sodium_memzero(k1, sizeof k1);
  sodium_memzero(k2, sizeof k2);
  wipe_secrets(hs);
  hs->split = 1;
  return 0;
}

void px_noise_hs_remote_static(const px_noise_hs_t *hs, uint8_t rs[32]) {
  if (!rs) return;
  if (hs && hs->has_rs)
    memcpy(rs, hs->rs, PX_NOISE_KEY_LEN);
  else
    memset(rs, 0, PX_NOISE_KEY_LEN);
}

void px_noise_hs_local_static(const px_noise_hs_t *hs, uint8_t s[32]) {
  if (!s) return;
  if (hs && hs->init_done)
    memcpy(s, hs->s_pk, PX_NOISE_KEY_LEN);
  else
    memset(s, 0, PX_NOISE_KEY_LEN);
}

void px_noise_hs_hash(const px_noise_hs_t *hs, uint8_t h[32]) {
  if (!h) return;
  if (hs)
    memcpy(h, hs->h, PX_NOISE_HASH_LEN);
  else
    memset(h, 0, PX_NOISE_HASH_LEN);
}

void px_noise_hs_wipe(px_noise_hs_t *hs) {
  if (hs) sodium_memzero(hs, sizeof *hs);
}
