/*
 * plexus/crypto.h — keys, signatures, hashes, key agreement, AEAD, Merkle.
 *
 * All primitives are libsodium's; this header fixes the choices and sizes
 * the rest of Plexus uses:
 *   identity and wallet keys  Ed25519            (px_key_*, px_sign, px_verify)
 *   hashing                   BLAKE2b-256        (px_hash*)
 *   key agreement             X25519             (px_x25519*)
 *   AEAD                      ChaCha20-Poly1305 IETF, 96-bit nonce
 *   commitments               binary Merkle tree over BLAKE2b-256, with
 *                             RFC 6962 domain separation (0x00 leaf, 0x01 node)
 *                             and RFC 6962's split for non-power-of-two sizes
 *
 * Key files: a node's or wallet's Ed25519 secret seed is stored in a text
 * file (docs/keys.md) written with mode 0600.  Reading one that is readable
 * or writable by group or others fails with PX_EPERM: the caller prints a
 * line telling the user to `chmod 600` it.
 *
 * px_crypto_init() must be called once before anything else (sodium_init);
 * it is idempotent and thread-safe.
 */
#ifndef PLEXUS_CRYPTO_H
#define PLEXUS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_PK_LEN 32
#define PX_SK_LEN 64
#define PX_SEED_LEN 32
#define PX_SIG_LEN 64
#define PX_HASH_LEN 32
#define PX_X25519_LEN 32
#define PX_AEAD_KEY_LEN 32
#define PX_AEAD_NONCE_LEN 12
#define PX_AEAD_TAG_LEN 16
#define PX_NODE_ID_HEX_LEN 65 /* 64 hex chars + NUL */

int px_crypto_init(void);

/* ---- Ed25519 ---- */
typedef struct {
  uint8_t pk[PX_PK_LEN];
  uint8_t sk[PX_SK_LEN]; /* libsodium layout: seed || pk */
} px_keypair_t;

int px_key_generate(px_keypair_t *kp);
int px_key_from_seed(px_keypair_t *kp, const uint8_t seed[PX_SEED_LEN]);
void px_key_wipe(px_keypair_t *kp);
void px_sign(const px_keypair_t *kp, const void *msg, size_t n,
             uint8_t sig[PX_SIG_LEN]);
/* 0 when valid, PX_EBADSIG otherwise. */
int px_verify(const uint8_t pk[PX_PK_LEN], const void *msg, size_t n,
              const uint8_t sig[PX_SIG_LEN]);
/* The node id shown to users: lowercase hex of the public key. */
void px_node_id_hex(const uint8_t pk[PX_PK_LEN], char out[PX_NODE_ID_HEX_LEN]);
int px_node_id_parse(const char *hex, uint8_t pk[PX_PK_LEN]);

/* Write a key file (0600, atomic).  PX_EEXIST if it exists and !overwrite. */
int px_keyfile_write(const char *path, const px_keypair_t *kp, int overwrite);
/* Read a key file.  PX_ENOENT, PX_EPERM (mode allows group/other access),
 * PX_EINVAL (not a regular file), PX_EDECODE (malformed), PX_EVERSION
 * (another key file version), PX_ECRYPTO (stored public key does not match
 * the seed).  kp is untouched on error. */
int px_keyfile_read(const char *path, px_keypair_t *kp);

/* ---- BLAKE2b-256 ---- */
typedef struct {
  _Alignas(64) uint8_t opaque[384]; /* crypto_generichash_state */
} px_hash_state_t;

void px_hash(uint8_t out[PX_HASH_LEN], const void *data, size_t n);
void px_hash_init(px_hash_state_t *st);
void px_hash_update(px_hash_state_t *st, const void *data, size_t n);
void px_hash_final(px_hash_state_t *st, uint8_t out[PX_HASH_LEN]);

/* ---- X25519 ---- */
int px_x25519_keypair(uint8_t pk[PX_X25519_LEN], uint8_t sk[PX_X25519_LEN]);
int px_x25519_public(uint8_t pk[PX_X25519_LEN],
                     const uint8_t sk[PX_X25519_LEN]);
/* PX_ECRYPTO when the result is all-zero (low-order point). */
int px_x25519(uint8_t shared[PX_X25519_LEN], const uint8_t sk[PX_X25519_LEN],
              const uint8_t pk[PX_X25519_LEN]);

/* ---- ChaCha20-Poly1305 (IETF) ---- */
/* out must hold n + PX_AEAD_TAG_LEN bytes; out may equal in. */
void px_aead_encrypt(uint8_t *out, const uint8_t *in, size_t n,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[PX_AEAD_NONCE_LEN],
                     const uint8_t key[PX_AEAD_KEY_LEN]);
/* Encrypt the concatenation in1 || in2 without building it (out holds
 * n1 + n2 + PX_AEAD_TAG_LEN bytes; out must not overlap the inputs). */
void px_aead_encrypt2(uint8_t *out, const uint8_t *in1, size_t n1,
                      const uint8_t *in2, size_t n2, const uint8_t *ad,
                      size_t adlen, const uint8_t nonce[PX_AEAD_NONCE_LEN],
                      const uint8_t key[PX_AEAD_KEY_LEN]);
/* n includes the tag; out holds n - PX_AEAD_TAG_LEN bytes; out may equal in.
 * PX_EAUTH on a bad tag (out is then zeroed) or n < PX_AEAD_TAG_LEN. */
int px_aead_decrypt(uint8_t *out, const uint8_t *in, size_t n,
                    const uint8_t *ad, size_t adlen,
                    const uint8_t nonce[PX_AEAD_NONCE_LEN],
                    const uint8_t key[PX_AEAD_KEY_LEN]);

/* ---- Merkle trees ---- */
#define PX_MERKLE_MAX_DEPTH 64

/* Leaf hash H(0x00 || data) and node hash H(0x01 || left || right). */
void px_merkle_leaf(uint8_t out[PX_HASH_LEN], const void *data, size_t n);
void px_merkle_node(uint8_t out[PX_HASH_LEN], const uint8_t l[PX_HASH_LEN],
                    const uint8_t r[PX_HASH_LEN]);
/* Root over n leaf hashes (made with px_merkle_leaf); n may be 0, and the
 * root of 0 leaves is H("") (leaves may then be NULL). */
int px_merkle_root(const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                   uint8_t root[PX_HASH_LEN]);
/* RFC 6962 audit path for leaf `index` (< n): sibling hashes, bottom-up,
 * into path[PX_MERKLE_MAX_DEPTH]; *depth_out is their count.  PX_EINVAL
 * when n == 0 or index >= n. */
int px_merkle_proof(const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                    size_t index, uint8_t (*path)[PX_HASH_LEN],
                    size_t *depth_out);
/* 0 when the leaf hash at `index` of an n-leaf tree, with this path, hashes
 * to root (RFC 9162 section 2.1.3.2).  PX_EAUTH when it hashes to another
 * root; PX_EINVAL on a bad shape (n == 0, index >= n, depth too large, or a
 * path whose length does not fit index and n). */
int px_merkle_verify(const uint8_t root[PX_HASH_LEN],
                     const uint8_t leaf[PX_HASH_LEN], size_t index, size_t n,
                     const uint8_t (*path)[PX_HASH_LEN], size_t depth);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_CRYPTO_H */
