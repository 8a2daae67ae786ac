/*
 * fuzz_evidence.c — libFuzzer target for px_cons_evidence_decode and
 * px_cons_evidence_verify.
 *
 * Properties: no out-of-bounds read, only the documented errors, canonical
 * re-encoding; verification of anything decoded returns 0 or a PX_E code
 * (never crashes, whatever the validator index).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static px_cons_valset_t vs;
  static int ready;
  if (!ready) {
    px_crypto_init();
    uint8_t pks[4][PX_PK_LEN];
    uint64_t pw[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
      uint8_t seed[PX_SEED_LEN] = {(uint8_t)(i + 1)};
      px_keypair_t kp;
      px_key_from_seed(&kp, seed);
      memcpy(pks[i], kp.pk, PX_PK_LEN);
    }
    px_cons_valset_init(&vs, (const uint8_t(*)[PX_PK_LEN])pks, pw, 4);
    ready = 1;
  }
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);
  px_cons_evidence_t e;
  int rc = px_cons_evidence_decode(in, size, &e);
  if (rc != 0) {
    if (rc != PX_ETRUNC && rc != PX_ETRAILING && rc != PX_EDECODE &&
        rc != PX_EVERSION)
      abort();
  } else {
    px_buf_t b;
    px_buf_init(&b, 0);
    if (px_cons_evidence_encode(&e, &b) != 0) abort();
    if (b.len != size || memcmp(b.data, in, size) != 0) abort();
    px_buf_release(&b);
    rc = px_cons_evidence_verify("plexus", &vs, &e);
    if (rc != 0 && rc != PX_EPROTO && rc != PX_EBADSIG) abort();
  }
  free(in);
  return 0;
}
