/*
 * fuzz_keyfile.c — libFuzzer target for the key file parser
 * (src/crypto/keyfile.c, format in docs/keys.md).
 *
 * Input: arbitrary bytes, handed to px_keyfile_parse as a key file's
 * contents.  Beyond "never crash", two properties are checked: a parse that
 * succeeds yields a consistent key pair (pk derived from the seed), and
 * formatting that pair gives back exactly the input, since the format has
 * one canonical text per key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "crypto/keyfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_keypair_t kp;
  int rc = px_keyfile_parse(d, n, &kp);
  if (rc != 0) {
    if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ECRYPTO) abort();
    return 0;
  }
  px_keypair_t again;
  if (px_key_from_seed(&again, kp.sk) != 0) abort();
  if (memcmp(&again, &kp, sizeof kp) != 0) abort();
  char text[PX_KEYFILE_LEN + 1];
  px_keyfile_format(&kp, text);
  if (n != PX_KEYFILE_LEN || memcmp(text, d, n) != 0) abort();
  return 0;
}
