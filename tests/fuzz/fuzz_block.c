/*
 * fuzz_block.c — libFuzzer target for the block decoder and the state
 * transition (src/ledger/block.c).
 *
 * Any input: px_block_decode must not crash; a decoded block (txs and
 * evidence) re-encodes to the same bytes.  Then it is applied to a copy of a
 * small genesis state: apply must return 0 or a negative code, and on failure
 * the state root must be unchanged (all-or-nothing).  Inputs that reach apply
 * are rare (header hashes must match); the seed corpus holds valid blocks so
 * mutations of the tx list get there, and one carrying evidence of the single
 * validator, so that slashing runs.  The supply invariant must hold after every
 * successful apply (slashed stake counts as burned).
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
  g.genesis_time = 1000;
  if (px_ledger_state_from_genesis(&g, &g_state)) abort();
  px_genesis_release(&g);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_block_t b;
  int rc = px_block_decode(d, n, &b);
  if (rc > 0) abort();
  if (rc) return 0;
  /* Canonical: re-encoding gives the same bytes. */
  const uint8_t **txs = malloc((b.n_txs + 1) * sizeof *txs);
  size_t *lens = malloc((b.n_txs + 1) * sizeof *lens);
  if (!txs || !lens) abort();
  for (size_t i = 0; i < b.n_txs; i++) {
    txs[i] = b.txs[i].raw;
    lens[i] = b.txs[i].raw_len;
  }
  const uint8_t *evs[PX_LEDGER_BLOCK_MAX_EVIDENCE];
  size_t ev_lens[PX_LEDGER_BLOCK_MAX_EVIDENCE];
  if (b.n_evidence > PX_LEDGER_BLOCK_MAX_EVIDENCE) abort();
  for (size_t i = 0; i < b.n_evidence; i++) {
    evs[i] = b.evidence[i].raw;
    ev_lens[i] = b.evidence[i].raw_len;
  }
  px_buf_t re;
  px_buf_init(&re, 0);
  if (px_block_encode_ev(&b.header, (const uint8_t *const *)txs, lens, b.n_txs,
                         evs, ev_lens, b.n_evidence, &re))
    abort();
  if (re.len != n || memcmp(re.data, d, n) != 0) abort();
  px_buf_release(&re);
  free(txs);
  free(lens);

  px_ledger_state_t *s;
  if (px_ledger_state_clone(g_state, &s)) abort();
  uint8_t r0[PX_HASH_LEN], r1[PX_HASH_LEN];
  px_ledger_app_hash(s, r0);
  px_tx_result_t *res = calloc(b.n_txs + 1, sizeof *res);
  if (!res) abort();
  rc = px_ledger_apply_block(s, &b, res);
  if (rc > 0) abort();
  if (rc) {
    px_ledger_app_hash(s, r1);
    if (memcmp(r0, r1, PX_HASH_LEN) != 0 || px_ledger_height(s) != 0) abort();
  } else {
    uint64_t a, e;
    if (px_ledger_supply(s, &a, &e) || a != e) abort();
  }
  free(res);
  px_ledger_state_free(s);
  px_block_release(&b);
  return 0;
}
