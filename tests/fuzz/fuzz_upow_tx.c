/*
 * fuzz_upow_tx.c — libFuzzer target for the uPoW contract's SUBMIT
 * transaction (plexus/upow_chain.h).  The first input byte picks:
 *   0: the payload decoder; what decodes re-encodes to the same bytes;
 *   1: the payload wrapped in a signed SUBMIT tx (px_tx_make): the tx
 *      encodes exactly when the payload decodes, and then px_tx_decode
 *      gives back the same type, payload and a valid signature;
 *   2: the rest as a whole tx (px_tx_decode, the contract's stateless
 *      check included): a SUBMIT that decodes has a decodable payload.
 * Decoders may fail only with decode-class errors, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void expect_decode_error(int rc) {
  if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
      rc != PX_ETRAILING && rc != PX_ETOOBIG && rc != PX_EINVAL &&
      rc != PX_ENOMEM)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  const uint8_t *p = d + 1;
  size_t pn = n - 1;
  px_upow_solution_t sol;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc;
  switch (d[0] % 3) {
  case 0:
    rc = px_upow_payload_submit_decode(p, pn, &sol);
    if (!rc) {
      if (px_upow_payload_submit(&b, &sol)) abort();
      if (b.len != pn || memcmp(b.data, p, pn)) abort();
    } else {
      expect_decode_error(rc);
    }
    break;
  case 1: {
    static px_keypair_t kp;
    static int init;
    if (!init) {
      uint8_t seed[PX_SEED_LEN];
      memset(seed, 3, sizeof seed);
      if (px_crypto_init() || px_key_from_seed(&kp, seed)) abort();
      init = 1;
    }
    int prc = px_upow_payload_submit_decode(p, pn, &sol);
    rc = px_tx_make("plexus-fuzz", &kp, 1, 1000, PX_TX_UPOW_SUBMIT, p, pn, &b);
    if ((rc == 0) != (prc == 0)) abort();
    if (!rc) {
      px_tx_t tx;
      if (px_tx_decode(b.data, b.len, &tx) || px_tx_verify(&tx)) abort();
      if (tx.type != PX_TX_UPOW_SUBMIT || tx.payload_len != pn ||
          memcmp(tx.payload, p, pn))
        abort();
    }
    break;
  }
  default: {
    px_tx_t tx;
    rc = px_tx_decode(p, pn, &tx);
    if (!rc && tx.type == PX_TX_UPOW_SUBMIT &&
        px_upow_payload_submit_decode(tx.payload, tx.payload_len, &sol))
      abort();
    break;
  }
  }
  px_buf_release(&b);
  return 0;
}
