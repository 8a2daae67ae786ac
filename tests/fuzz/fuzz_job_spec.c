/*
 * fuzz_job_spec.c — libFuzzer target for the job spec decoder
 * (src/market/spec.c).  Whatever decodes must be valid (px_job_spec_check),
 * re-encode to exactly the input bytes (one encoding per spec, so the job
 * id is well defined), and give an escrow without overflow.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/market.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_job_spec_t s;
  int rc = px_job_spec_decode(d, n, &s);
  if (rc) {
    if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
        rc != PX_ETRAILING)
      abort();
    return 0;
  }
  if (px_job_spec_check(&s)) abort();
  px_buf_t b;
  px_buf_init(&b, 4096);
  if (px_job_spec_encode(&s, &b) || b.len != n || memcmp(b.data, d, n)) abort();
  px_buf_release(&b);
  uint64_t e, w;
  uint8_t id[32];
  if (px_market_escrow_required(&s, &e) || px_job_spec_id(&s, id)) abort();
  uint32_t shards = px_job_shard_count(&s);
  if (shards == 0 || shards > PX_MARKET_MAX_SHARDS) abort();
  if (px_job_shard_work(&s, shards - 1, &w) || w == 0) abort();
  return 0;
}
