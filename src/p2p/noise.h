/*
 * noise.h — Noise_XX_25519_ChaChaPoly_SHA256, sans-I/O (private to p2p/).
 *
 * Implements the Noise Protocol Framework, revision 34
 * (https://noiseprotocol.org/noise.html): CipherState (section 5.1),
 * SymmetricState (5.2), HandshakeState (5.3) for the one pattern Plexus uses,
 *
 *     XX:  -> e
 *          <- e, ee, s, es
 *          -> s, se
 *
 * with X25519 (DH), ChaCha20-Poly1305 IETF (cipher, nonce = 32 zero bits ||
 * 64-bit little-endian counter) and SHA-256 (hash, HMAC, HKDF).
 *
 * The module never touches a socket, a clock or a file.  The caller moves
 * bytes: px_noise_hs_write() produces the next handshake message, and
 * px_noise_hs_read() consumes the peer's.  The only randomness is the
 * ephemeral key, drawn once per handshake from an injected callback (or
 * libsodium's CSPRNG when none is given); tests pin it with
 * px_noise_hs_set_ephemeral() to replay published test vectors.
 *
 * Memory: px_noise_hs_t and px_noise_cipher_t are plain structs owned by the
 * caller (embed them, no heap).  They hold secrets: px_noise_hs_wipe() and
 * px_noise_cipher_wipe() zero them; px_noise_hs_split() already wipes every
 * handshake secret it no longer needs.
 *
 * Errors (negative PX_E codes from plexus/base.h):
 *   PX_EINVAL     bad argument (NULL, output buffer smaller than needed);
 *                 the state is unchanged.
 *   PX_ESTATE     call out of turn (writing when it is the peer's turn,
 *                 reading when it is ours, split before the end, anything
 *                 after a failure); the state is unchanged.
 *   PX_ETOOBIG    a message would exceed PX_NOISE_MAX_MSG (65535 bytes).
 *   PX_EHANDSHAKE a handshake message of the wrong length.
 *   PX_EAUTH      AEAD authentication failed (tampered or wrong key).
 *   PX_ECRYPTO    a DH produced the all-zero output (low-order point) or
 *                 libsodium failed to initialise.
 *   PX_ELIMIT     the nonce reached 2^64-1 (section 5.1): the key is spent.
 * A failure in px_noise_hs_read() (or a DH failure in px_noise_hs_write())
 * leaves the handshake failed: every later call returns PX_ESTATE.  Per
 * section 5.1, a failed transport decryption does not advance the nonce.
 *
 * Threading: one object, one thread at a time.
 */
#ifndef PX_P2P_NOISE_H
#define PX_P2P_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define PX_NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define PX_NOISE_MAX_MSG 65535 /* bytes, any Noise message (section 3) */
#define PX_NOISE_KEY_LEN 32    /* X25519 keys, cipher keys */
#define PX_NOISE_HASH_LEN 32   /* SHA-256 */
#define PX_NOISE_TAG_LEN 16    /* Poly1305 */
/* Largest payloads that fit one message. */
#define PX_NOISE_MAX_TRANSPORT_PAYLOAD (PX_NOISE_MAX_MSG - PX_NOISE_TAG_LEN)
/* Fixed overhead of handshake messages 1, 2, 3 (before the payload). */
#define PX_NOISE_MSG1_OVERHEAD 32                  /* e */
#define PX_NOISE_MSG2_OVERHEAD (32 + 32 + 16 + 16) /* e, enc(s), tag */
#define PX_NOISE_MSG3_OVERHEAD (32 + 16 + 16)      /* enc(s), tag */

/* CipherState (section 5.1): key k, nonce n.  has_key 0 means "empty". */
typedef struct px_noise_cipher {
  uint8_t k[PX_NOISE_KEY_LEN];
  uint64_t n;
  int has_key;
} px_noise_cipher_t;

/* Randomness for the ephemeral key: fill out[0..n). */
typedef void (*px_noise_rng_fn)(void *ud, uint8_t *out, size_t n);

/* HandshakeState (section 5.3) with its SymmetricState (5.2) inlined.
 * Fields are private: use the functions below. */
typedef struct px_noise_hs {
  px_noise_cipher_t cs;           /* SymmetricState's CipherState */
  uint8_t ck[PX_NOISE_HASH_LEN];  /* chaining key */
  uint8_t h[PX_NOISE_HASH_LEN];   /* handshake hash */
  uint8_t s_sk[PX_NOISE_KEY_LEN]; /* local static */
  uint8_t s_pk[PX_NOISE_KEY_LEN];
  uint8_t e_sk[PX_NOISE_KEY_LEN]; /* local ephemeral */
  uint8_t e_pk[PX_NOISE_KEY_LEN];
  uint8_t rs[PX_NOISE_KEY_LEN]; /* remote static (after it is received) */
  uint8_t re[PX_NOISE_KEY_LEN]; /* remote ephemeral */
  px_noise_rng_fn rng;
  void *rng_ud;
  int initiator;
  int msg;       /* handshake messages processed so far, 0..3 */
  int has_e;     /* e_sk/e_pk set (fixed by a test or generated) */
  int has_rs;    /* rs received */
  int failed;    /* a read/DH failed: the handshake is dead */
  int split;     /* px_noise_hs_split() done; secrets wiped */
  int init_done; /* px_noise_hs_init() succeeded */
} px_noise_hs_t;

/* Set up a handshake.  initiator: 1 for the side that dials, 0 for the side
 * that accepts.  prologue (may be NULL when plen is 0) must be identical on
 * both sides or message 2 fails to authenticate.  static_sk is our X25519
 * static private key (copied).  rng NULL means libsodium's randombytes_buf.
 * PX_EINVAL for bad arguments, PX_ECRYPTO if libsodium cannot start. */
int px_noise_hs_init(px_noise_hs_t *hs, int initiator, const uint8_t *prologue,
                     size_t plen, const uint8_t static_sk[32],
                     px_noise_rng_fn rng, void *rng_ud);

/* Pin the ephemeral private key (test vectors, fuzzing).  Only before our
 * first message; ignored afterwards. */
void px_noise_hs_set_ephemeral(px_noise_hs_t *hs, const uint8_t e_sk[32]);

/* Write our next handshake message, carrying payload (plen bytes, payload
 * may be NULL when plen is 0), into out[0..cap).  *out_len gets its size:
 * plen + 32 (msg 1), plen + 96 (msg 2), plen + 64 (msg 3).  PX_ETOOBIG if
 * that exceeds PX_NOISE_MAX_MSG, PX_EINVAL if it exceeds cap.  out must not
 * overlap payload. */
int px_noise_hs_write(px_noise_hs_t *hs, const uint8_t *payload, size_t plen,
                      uint8_t *out, size_t cap, size_t *out_len);

/* Read the peer's next handshake message msg[0..len); its payload goes to
 * payload[0..cap) (payload may be NULL when cap is 0) and its length to
 * *plen.  PX_EINVAL (state unchanged) if the payload does not fit cap. */
int px_noise_hs_read(px_noise_hs_t *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen);

/* 1 once all three messages are written/read (and nothing failed). */
int px_noise_hs_done(const px_noise_hs_t *hs);

/* 1 when it is our turn to write, 0 when we wait to read or are done. */
int px_noise_hs_my_turn(const px_noise_hs_t *hs);

/* Split (section 5.2) into the two transport CipherStates, oriented for
 * this side: send encrypts what we send, recv decrypts what we receive.
 * Wipes the handshake's secrets; remote_static and hash stay available.
 * PX_ESTATE before done or when called twice. */
int px_noise_hs_split(px_noise_hs_t *hs, px_noise_cipher_t *send,
                      px_noise_cipher_t *recv);

/* The peer's static public key, once received (msg 2 for the initiator,
 * msg 3 for the responder); zeros before. */
void px_noise_hs_remote_static(const px_noise_hs_t *hs, uint8_t rs[32]);
/* Our static public key. */
void px_noise_hs_local_static(const px_noise_hs_t *hs, uint8_t s[32]);
/* The handshake hash h (section 11.2, channel binding); final once done. */
void px_noise_hs_hash(const px_noise_hs_t *hs, uint8_t h[32]);

/* Zero everything in hs. */
void px_noise_hs_wipe(px_noise_hs_t *hs);

/* ---- transport (section 5.1 EncryptWithAd / DecryptWithAd) ---- */

/* Encrypt pt[0..n) with associated data ad[0..adlen) (ad may be NULL when
 * adlen is 0) into out[0..n+16); out may equal pt.  PX_ETOOBIG when
 * n + 16 > PX_NOISE_MAX_MSG, PX_ESTATE without a key, PX_ELIMIT when the
 * nonce is exhausted. */
int px_noise_encrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t n, uint8_t *out);

/* Decrypt ct[0..n) (tag included) into out[0..n-16); out may equal ct.
 * PX_EAUTH when tampered, truncated below 16 bytes or under the wrong key
 * (the nonce is then not advanced), PX_ETOOBIG when n > PX_NOISE_MAX_MSG. */
/* As px_noise_encrypt over the concatenation pt1 || pt2 (n1 + n2 bytes),
 * without building it; out (n1 + n2 + 16 bytes) must not overlap them. */
int px_noise_encrypt2(px_noise_cipher_t *c, const uint8_t *pt1, size_t n1,
                      const uint8_t *pt2, size_t n2, uint8_t *out);
int px_noise_decrypt(px_noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                     const uint8_t *ct, size_t n, uint8_t *out);

/* Rekey (sections 4.2, 11.3): k = first 32 bytes of
 * ENCRYPT(k, 2^64-1, "", 32 zero bytes); n is unchanged.  Both sides must
 * rekey at the same point of the stream.  PX_ESTATE without a key. */
int px_noise_cipher_rekey(px_noise_cipher_t *c);

/* Zero a cipher state. */
void px_noise_cipher_wipe(px_noise_cipher_t *c);

#endif /* PX_P2P_NOISE_H */
