/*
 * fuzz_proposal.c — libFuzzer target for px_cons_proposal_decode and
 * px_cons_decision_decode (a DECISION carries a value and a commit).
 *
 * Properties: no out-of-bounds read (ASan, exact-size heap copy), only the
 * documented errors, canonical re-encoding of whatever is accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/consensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known(int rc) {
  return rc == PX_ETRUNC || rc == PX_ETRAILING || rc == PX_EDECODE ||
         rc == PX_EVERSION || rc == PX_ETOOBIG;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);
  px_buf_t b;
  px_buf_init(&b, 0);

  px_cons_proposal_t p;
  int rc = px_cons_proposal_decode(in, size, 1 << 16, &p);
  if (rc != 0) {
    if (!known(rc)) abort();
  } else {
    if (px_cons_proposal_encode(&p, &b) != 0) abort();
    if (b.len != size || memcmp(b.data, in, size) != 0) abort();
  }

  const uint8_t *v;
  size_t vn;
  static px_cons_commit_t cm;
  rc = px_cons_decision_decode(in, size, 1 << 16, &v, &vn, &cm);
  if (rc != 0) {
    if (!known(rc)) abort();
  } else {
    px_buf_reset(&b);
    if (px_cons_decision_encode(v, vn, &cm, &b) != 0) abort();
    if (b.len != size || memcmp(b.data, in, size) != 0) abort();
  }

  rc = px_cons_commit_decode(in, size, &cm);
  if (rc != 0) {
    if (!known(rc)) abort();
  } else {
    px_buf_reset(&b);
    if (px_cons_commit_encode(&cm, &b) != 0) abort();
    if (b.len != size || memcmp(b.data, in, size) != 0) abort();
  }

  px_cons_msg_type_t t;
  uint64_t h;
  uint32_t r;
  (void)px_cons_msg_peek(in, size, &t, &h, &r);
  px_buf_release(&b);
  free(in);
  return 0;
}
