/*
 * fuzz_commitment.c — libFuzzer target for provider commitments and
 * equivocation evidence (src/market/commit.c).
 *
 * First byte even: the rest is a commitment; whatever decodes re-encodes to
 * the same bytes and verifies to 0 or PX_EBADSIG.  Odd: the rest is
 * evidence; whatever decodes is a valid conflict (both signatures good,
 * same provider/job/shard, different claims) and re-encodes identically.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/market.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  px_buf_t b;
  px_buf_init(&b, 4096);
  if ((d[0] & 1) == 0) {
    px_commitment_t c;
    if (px_commitment_decode(d + 1, n - 1, &c) == 0) {
      if (px_commitment_encode(&c, &b) || b.len != n - 1 ||
          memcmp(b.data, d + 1, n - 1))
        abort();
      int rc = px_commitment_verify(&c);
      if (rc != 0 && rc != PX_EBADSIG) abort();
    }
  } else {
    px_commitment_t a, c;
    if (px_evidence_decode(d + 1, n - 1, &a, &c) == 0) {
      if (px_commitment_conflict(&a, &c)) abort();
      if (px_evidence_encode(&a, &c, &b) || b.len != n - 1 ||
          memcmp(b.data, d + 1, n - 1))
        abort();
    }
  }
  px_buf_release(&b);
  return 0;
}
