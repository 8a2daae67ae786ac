/*
 * fuzz_genesis.c — libFuzzer target for the genesis file (JSON) and the
 * genesis binary decoder (src/ledger/genesis_json.c, genesis.c).
 *
 * Any input: px_genesis_from_json and px_genesis_decode must not crash and
 * must return 0 or a negative code.  A genesis that parses passes
 * px_genesis_check, round-trips (JSON -> struct -> JSON -> struct gives the
 * same binary encoding), and builds a state whose supply invariant holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  return 0;
}

static void check_valid(const px_genesis_t *g) {
  if (px_genesis_check(g)) abort();
  px_buf_t js, b1, b2;
  px_buf_init(&js, 0);
  px_buf_init(&b1, 0);
  px_buf_init(&b2, 0);
  px_genesis_t h;
  if (px_genesis_to_json(g, &js)) abort();
  if (px_genesis_from_json((const char *)js.data, js.len, &h)) abort();
  if (px_genesis_encode(g, &b1) || px_genesis_encode(&h, &b2)) abort();
  if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len)) abort();
  px_genesis_release(&h);
  if (g->n_accounts <= 64) {
    px_ledger_state_t *s;
    if (px_ledger_state_from_genesis(g, &s)) abort();
    uint64_t a, e;
    if (px_ledger_supply(s, &a, &e) || a != e) abort();
    px_ledger_state_free(s);
  }
  px_buf_release(&js);
  px_buf_release(&b1);
  px_buf_release(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  uint8_t *cp = malloc(n ? n : 1);
  if (!cp) abort();
  memcpy(cp, d, n);
  px_genesis_t g;
  int rc = px_genesis_from_json((const char *)cp, n, &g);
  if (rc > 0) abort();
  if (rc == 0) check_valid(&g);
  px_genesis_release(&g);
  rc = px_genesis_decode(cp, n, &g);
  if (rc > 0) abort();
  if (rc == 0) check_valid(&g);
  px_genesis_release(&g);
  free(cp);
  return 0;
}
