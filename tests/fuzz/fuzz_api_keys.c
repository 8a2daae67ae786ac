/*
 * fuzz_api_keys.c — libFuzzer target for the gateway's keys file decoder
 * (src/api/keys.c, px_api_keys_parse): "HASH WALLET CREATED_MS[ rpm=N]
 * [ tpd=T]" lines.
 *
 * The decoder must return 0 or a negative code, never crash or read out of
 * bounds (ASan).  When it accepts, every key's quota is UNSET or at most
 * PX_API_QUOTA_MAX, the admission and charge functions work on every key,
 * and a key's effective quota never exceeds PX_API_QUOTA_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_api_keys_t *k = NULL;
  int rc = px_api_keys_parse(d, n, &k);
  if (rc > 0) abort();
  if (rc) {
    if (k) abort();
    return 0;
  }
  size_t nk = px_api_keys_count(k);
  for (size_t i = 0; i < nk; i++) {
    px_api_quota_t q;
    if (px_api_keys_quota(k, i, NULL, &q)) abort();
    if (q.rpm > PX_API_QUOTA_MAX || q.tokens_per_day > PX_API_QUOTA_MAX)
      abort();
    uint64_t ra;
    const uint64_t now = 1795426770000ull;
    int a = px_api_keys_admit(k, i, NULL, now, &ra);
    if (a != 0 && a != PX_ERATE && a != PX_ELIMIT) abort();
    if (a && !ra) abort();
    px_api_keys_charge(k, i, 1000, now);
  }
  px_api_keys_free(k);
  return 0;
}
