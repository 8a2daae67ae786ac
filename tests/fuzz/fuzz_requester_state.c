/*
 * fuzz_requester_state.c — libFuzzer target for the requester's on-disk job
 * record (HOME/jobs/<id>/state, src/node/requester.c): decoded for a fixed
 * 4-shard job; whatever decodes must re-encode to exactly the same bytes,
 * and a failure must be a decode-class error, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/market.h"
#include "node/requester.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_job_spec_t spec;
  memset(&spec, 0, sizeof spec);
  spec.kind = PX_JOB_INFER;
  spec.requester[0] = 1;
  spec.model[0] = 2;
  spec.input[0] = 3;
  spec.input_size = 40 * 16 * 4;
  spec.n_samples = 40;
  spec.shard_size = 10;
  spec.work_per_sample = 100;
  spec.policy = PX_VERIFY_AUDIT;
  spec.policy_param = 500;
  spec.price_ceiling = 1;
  spec.deadline = 100;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_req_state_roundtrip(&spec, d, n, &b);
  if (rc == 0) {
    if (b.len != n || (n && memcmp(b.data, d, n))) abort();
  } else if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
             rc != PX_ETRAILING && rc != PX_ETOOBIG && rc != PX_ENOMEM) {
    abort();
  }
  px_buf_release(&b);
  return 0;
}
