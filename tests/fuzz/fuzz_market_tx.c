/*
 * fuzz_market_tx.c — libFuzzer target for every decoder of the market
 * contract (src/ledger/market_codec.c, market_dispute.c): the payloads of
 * PROVIDER_REGISTER, JOB_OPEN, JOB_COMMIT, MARKET_EVIDENCE, DISPUTE and
 * JOB_SETTLE, and the three state records.  The first input byte picks the
 * decoder (mod 9), the rest is its input.  Whatever decodes must re-encode
 * to exactly the same bytes (one encoding per value); a decoder may fail
 * only with a decode-class error (or PX_ELIMIT / PX_EBADSIG where the
 * format says so), never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/market.h"
#include "plexus/market_chain.h"

#include "ledger/market_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void expect_decode_error(int rc) {
  if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
      rc != PX_ETRAILING && rc != PX_ETOOBIG && rc != PX_ELIMIT &&
      rc != PX_EBADSIG && rc != PX_EINVAL && rc != PX_ENOMEM)
    abort();
}

static void same(const px_buf_t *b, const uint8_t *p, size_t n) {
  if (b->len != n || (n && memcmp(b->data, p, n))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  uint8_t which = d[0] % 9;
  const uint8_t *p = d + 1;
  size_t pn = n - 1;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = 0;
  switch (which) {
  case 0: {
    px_provider_reg_t r;
    rc = px_market_payload_register_decode(p, pn, &r);
    if (!rc) {
      if (px_market_payload_register(&b, &r)) abort();
      same(&b, p, pn);
    }
    break;
  }
  case 1: {
    px_job_spec_t s;
    px_market_manifest_t m;
    rc = px_market_payload_job_open_decode(p, pn, &s, &m);
    if (!rc) {
      if (px_market_payload_job_open(&b, &s, &m)) abort();
      same(&b, p, pn);
    }
    break;
  }
  case 2: {
    px_commitment_t *c;
    size_t cnt;
    rc = market_commit_decode(p, pn, &c, &cnt);
    if (!rc) {
      if (px_market_payload_commit(&b, c, cnt)) abort();
      same(&b, p, pn);
      px_free(c);
    }
    break;
  }
  case 3: {
    px_commitment_t a, c;
    rc = px_evidence_decode(p, pn, &a, &c);
    if (!rc) {
      if (px_evidence_encode(&a, &c, &b)) abort();
      same(&b, p, pn);
    }
    break;
  }
  case 4: {
    px_market_dispute_t *x = px_calloc(1, sizeof *x);
    if (!x) abort();
    rc = px_market_payload_dispute_decode(p, pn, x);
    if (!rc) {
      if (px_market_payload_dispute(&b, x)) abort();
      same(&b, p, pn);
    }
    px_market_dispute_release(x);
    px_free(x);
    break;
  }
  case 5: {
    market_settle_t s;
    rc = market_settle_decode(p, pn, &s);
    if (!rc) {
      if (px_market_payload_settle(&b, s.job_id, s.final, s.e, s.n,
                                   (const uint8_t(*)[PX_PK_LEN])s.expired,
                                   s.n_expired))
        abort();
      same(&b, p, pn);
      market_settle_release(&s);
    }
    break;
  }
  case 6: {
    px_provider_rec_t r;
    rc = px_provider_rec_decode(p, pn, &r);
    if (!rc) {
      if (market_provider_rec_encode(&r, &b)) abort();
      same(&b, p, pn);
      (void)px_provider_reputation(&r);
    }
    break;
  }
  case 7: {
    px_job_rec_t r;
    rc = px_job_rec_decode(p, pn, &r);
    if (!rc) {
      if (market_job_rec_encode(&r, &b)) abort();
      same(&b, p, pn);
    }
    break;
  }
  default: {
    px_commit_rec_t r;
    rc = px_commit_rec_decode(p, pn, &r);
    if (!rc) {
      if (market_commit_rec_encode(&r, &b)) abort();
      same(&b, p, pn);
    }
    break;
  }
  }
  if (rc) expect_decode_error(rc);
  px_buf_release(&b);
  return 0;
}
