/*
 * fuzz_merkle.c — libFuzzer target for Merkle proof verification
 * (src/crypto/merkle.c, RFC 9162 section 2.1.3.2).
 *
 * Input, first byte selects the mode:
 *
 *   even  raw: n (u64 LE), index (u64 LE), root (32), leaf (32), then up to
 *         PX_MERKLE_MAX_DEPTH + 2 path hashes of 32 bytes (a trailing
 *         partial hash is ignored).  px_merkle_verify must not crash and
 *         must return 0, PX_EAUTH or PX_EINVAL.
 *
 *   odd   structured: byte 1 picks n in 1..64, byte 2 the index, byte 3 a
 *         second index; the leaves are fixed.  The honest proof must verify;
 *         then each following pair of bytes (position, xor mask) flips bits
 *         of the leaf-and-path; if anything changed, verification must fail,
 *         and the proof must never verify at the second index when it
 *         differs from the first.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"

#define MAX_RAW_DEPTH (PX_MERKLE_MAX_DEPTH + 2)
#define MAX_LEAVES 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  return 0;
}

static uint64_t get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static void check_rc(int rc) {
  if (rc != 0 && rc != PX_EAUTH && rc != PX_EINVAL) abort();
}

static void fuzz_raw(const uint8_t *d, size_t n) {
  if (n < 16 + 2 * PX_HASH_LEN) return;
  uint64_t size = get_u64le(d), index = get_u64le(d + 8);
  const uint8_t *root = d + 16, *leaf = d + 16 + PX_HASH_LEN;
  d += 16 + 2 * PX_HASH_LEN;
  n -= 16 + 2 * PX_HASH_LEN;
  size_t depth = n / PX_HASH_LEN;
  if (depth > MAX_RAW_DEPTH) depth = MAX_RAW_DEPTH;
  /* A copy, so the path is exactly as long as depth says (ASan checks). */
  uint8_t(*path)[PX_HASH_LEN] = NULL;
  if (depth) {
    path = malloc(depth * PX_HASH_LEN);
    if (!path) abort();
    memcpy(path, d, depth * PX_HASH_LEN);
  }
  check_rc(px_merkle_verify(root, leaf, (size_t)index, (size_t)size,
                            (const uint8_t(*)[PX_HASH_LEN])path, depth));
  free(path);
}

static void fuzz_structured(const uint8_t *d, size_t n) {
  if (n < 4) return;
  size_t count = 1 + d[1] % MAX_LEAVES;
  size_t index = d[2] % count, other = d[3] % count;
  d += 4;
  n -= 4;

  uint8_t leaves[MAX_LEAVES][PX_HASH_LEN], root[PX_HASH_LEN];
  for (size_t i = 0; i < count; i++) {
    uint8_t b = (uint8_t)i;
    px_merkle_leaf(leaves[i], &b, 1);
  }
  if (px_merkle_root((const uint8_t(*)[PX_HASH_LEN])leaves, count, root))
    abort();
  /* blob = leaf || path, so one position space covers both. */
  uint8_t blob[1 + PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  size_t depth = 0;
  if (px_merkle_proof((const uint8_t(*)[PX_HASH_LEN])leaves, count, index,
                      blob + 1, &depth))
    abort();
  memcpy(blob[0], leaves[index], PX_HASH_LEN);
  const uint8_t(*path)[PX_HASH_LEN] = (const uint8_t(*)[PX_HASH_LEN])(blob + 1);
  if (px_merkle_verify(root, blob[0], index, count, path, depth) != 0) abort();
  if (other != index &&
      px_merkle_verify(root, blob[0], other, count, path, depth) == 0)
    abort();

  uint8_t orig[1 + PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  memcpy(orig, blob, sizeof blob);
  size_t span = (1 + depth) * PX_HASH_LEN;
  uint8_t *flat = &blob[0][0];
  for (size_t i = 0; i + 1 < n; i += 2)
    flat[d[i] % span] ^= d[i + 1];
  int rc = px_merkle_verify(root, blob[0], index, count, path, depth);
  check_rc(rc);
  if (memcmp(orig, blob, span) != 0 && rc == 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  if (d[0] & 1)
    fuzz_structured(d, n);
  else
    fuzz_raw(d + 1, n - 1);
  return 0;
}
