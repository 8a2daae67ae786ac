/*
 * fuzz_session_tx.c — libFuzzer target for the session contract's payload
 * and record decoders (plexus/session_chain.h).  The first input byte
 * picks:
 *   0 CHANNEL_OPEN, 1 CHANNEL_CLAIM, 2 CHANNEL_CLOSE, 3 SESSION_DISPUTE
 *     payloads: what decodes re-encodes to exactly the input (the dispute
 *     builder may refuse a payload near the tx cap with PX_ELIMIT);
 *   4 a channel record, 5 a verdict record (state values);
 *   6 the rest as a whole tx (px_tx_decode runs the contract's stateless
 *     check): a session tx that decodes has a decodable payload.
 * Decoders may fail only with decode-class errors, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/ledger.h"
#include "plexus/session.h"
#include "plexus/session_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void expect_decode_error(int rc) {
  if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
      rc != PX_ETRAILING && rc != PX_ETOOBIG && rc != PX_ENOMEM)
    abort();
}

static void same(const px_buf_t *b, const uint8_t *p, size_t n) {
  if (b->len != n || memcmp(b->data, p, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  const uint8_t *p = d + 1;
  size_t pn = n - 1;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc;
  switch (d[0] % 7) {
  case 0: {
    px_session_open_t o;
    rc = px_session_payload_open_decode(p, pn, &o);
    if (!rc) {
      if (px_session_payload_open(&b, &o)) abort();
      same(&b, p, pn);
    } else {
      expect_decode_error(rc);
    }
    break;
  }
  case 1: {
    px_session_claim_t c;
    rc = px_session_payload_claim_decode(p, pn, &c);
    if (!rc) {
      if (px_session_payload_claim(&b, &c)) abort();
      same(&b, p, pn);
    } else {
      expect_decode_error(rc);
    }
    break;
  }
  case 2: {
    uint8_t id[32];
    rc = px_session_payload_close_decode(p, pn, id);
    if (!rc) {
      if (px_session_payload_close(&b, id)) abort();
      same(&b, p, pn);
    } else {
      expect_decode_error(rc);
    }
    break;
  }
  case 3: {
    px_session_dispute_t x;
    rc = px_session_payload_dispute_decode(p, pn, &x);
    if (!rc) {
      if (((uintptr_t)x.model & 3) != 0) abort();
      rc = px_session_payload_dispute(&b, &x);
      if (rc == 0)
        same(&b, p, pn);
      else if (rc != PX_ELIMIT)
        abort();
      px_session_dispute_release(&x);
    } else {
      expect_decode_error(rc);
      if (x.tokens || x.model) abort();
    }
    break;
  }
  case 4: {
    px_session_channel_t c;
    rc = px_session_channel_decode(p, pn, &c);
    if (!rc) {
      if (c.claimed > c.deposit) abort();
      if (c.state != PX_CHANNEL_OPEN && c.state != PX_CHANNEL_CLOSED) abort();
    } else {
      expect_decode_error(rc);
    }
    break;
  }
  case 5: {
    px_session_verdict_t v;
    rc = px_session_verdict_decode(p, pn, &v);
    if (rc) expect_decode_error(rc);
    break;
  }
  default: {
    px_tx_t tx;
    rc = px_tx_decode(p, pn, &tx);
    if (!rc && tx.type == PX_TX_SESSION_DISPUTE) {
      px_session_dispute_t x;
      if (px_session_payload_dispute_decode(tx.payload, tx.payload_len, &x))
        abort();
      px_session_dispute_release(&x);
    } else if (!rc && tx.type == PX_TX_CHANNEL_OPEN) {
      px_session_open_t o;
      if (px_session_payload_open_decode(tx.payload, tx.payload_len, &o))
        abort();
    } else if (!rc && tx.type == PX_TX_CHANNEL_CLAIM) {
      px_session_claim_t c;
      if (px_session_payload_claim_decode(tx.payload, tx.payload_len, &c))
        abort();
    }
    break;
  }
  }
  px_buf_release(&b);
  return 0;
}
