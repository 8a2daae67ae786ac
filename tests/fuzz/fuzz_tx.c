/*
 * fuzz_tx.c — libFuzzer target for the transaction decoder
 * (src/ledger/tx.c).
 *
 * Any input: px_tx_decode must not crash and must return 0 or a negative
 * code; whatever decodes must re-encode to the identical bytes (canonical
 * encoding), hash to the same tx hash, and its signature check must answer
 * 0 or PX_EBADSIG.  The check against a small fixed state (px_ledger_check_tx)
 * must also never crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static px_ledger_state_t *g_state;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  px_keypair_t kp;
  uint8_t seed[32] = {1};
  px_key_from_seed(&kp, seed);
  px_genesis_t g;
  if (px_genesis_make(&g, "plexus-test", (const uint8_t(*)[32])kp.pk, 1,
                      1000000000, 10000000))
    abort();
  if (px_ledger_state_from_genesis(&g, &g_state)) abort();
  px_genesis_release(&g);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  /* An exact-size copy so ASan sees any over-read. */
  uint8_t *cp = malloc(n ? n : 1);
  if (!cp) abort();
  memcpy(cp, d, n);
  px_tx_t tx;
  int rc = px_tx_decode(cp, n, &tx);
  if (rc > 0) abort();
  if (rc == 0) {
    px_buf_t re;
    px_buf_init(&re, 0);
    if (px_tx_encode(&tx, &re) != 0) abort();
    if (re.len != n || memcmp(re.data, cp, n) != 0) abort();
    uint8_t h[PX_HASH_LEN];
    px_hash(h, cp, n);
    if (memcmp(h, tx.hash, PX_HASH_LEN) != 0) abort();
    int v = px_tx_verify(&tx);
    if (v != 0 && v != PX_EBADSIG) abort();
    px_buf_release(&re);
  }
  px_tx_t tx2;
  if (px_ledger_check_tx(g_state, cp, n, 0, &tx2) > 0) abort();
  free(cp);
  return 0;
}
