/*
 * keyfile.h — private to crypto/: the key file text format (docs/keys.md).
 *
 * Split out of keyfile.c so the parser can be run on memory (unit tests and
 * tests/fuzz/fuzz_keyfile.c) without touching the disk.
 */
#ifndef PX_CRYPTO_KEYFILE_H
#define PX_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/crypto.h"

#define PX_KEYFILE_MAGIC "plexus-ed25519-v1"
/* "plexus-ed25519-v1\n" + "seed: " 64hex "\n" + "pk: " 64hex "\n" */
#define PX_KEYFILE_LEN                                                         \
  (sizeof PX_KEYFILE_MAGIC + 6 + 2 * PX_SEED_LEN + 1 + 4 + 2 * PX_PK_LEN + 1)

/* Parse key file bytes (exactly the canonical text, no NUL needed).
 * 0 and *kp filled; PX_EDECODE when malformed; PX_EVERSION for a
 * "plexus-ed25519-vN" file of another version; PX_ECRYPTO when the stored
 * public key is not the one the seed derives.  *kp is untouched on error. */
int px_keyfile_parse(const uint8_t *p, size_t n, px_keypair_t *kp);

/* The canonical text of kp (PX_KEYFILE_LEN chars plus a NUL).  The caller
 * should sodium_memzero out after use: it holds the secret seed. */
void px_keyfile_format(const px_keypair_t *kp, char out[PX_KEYFILE_LEN + 1]);

#endif
