/*
 * fuzz_sync_reply.c — libFuzzer target for the block-sync reply decoder
 * (response to PX_CHAIN_METHOD_BLOCK; src/node/chain_wire.c).
 *
 * Properties: px_chain_sync_reply_decode returns 0 or a negative code and
 * never reads outside the input; on success the reply re-encodes to the
 * same bytes, the block's and the commit's own encoders reproduce their
 * parts (both decoders are canonical), and checking the commit against the
 * validator set of height 1 of a small genesis state — what a syncing node
 * does next — returns 0 or a negative code.  A reply that passed would be
 * applied; the seed corpus holds one that does, so that path is reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "node/chain.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static px_ledger_state_t *g_state;
static px_cons_valset_t g_vs;

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
  if (px_chain_valset(g_state, 1, &g_vs)) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  uint8_t *in = malloc(n ? n : 1);
  if (!in) return 0;
  if (n) memcpy(in, d, n);
  px_chain_sync_reply_t r;
  int rc = px_chain_sync_reply_decode(in, n, &r);
  if (rc > 0) abort();
  if (rc == 0) {
    px_buf_t re, c;
    px_buf_init(&re, 0);
    px_buf_init(&c, 0);
    if (px_chain_sync_reply_encode(r.block_raw, r.block_len, r.cert, r.cert_len,
                                   &re))
      abort();
    if (re.len != n || memcmp(re.data, in, n) != 0) abort();
    if (px_cons_commit_encode(&r.commit, &c)) abort();
    if (c.len != r.cert_len || memcmp(c.data, r.cert, c.len) != 0) abort();
    if (r.block.raw_len != r.block_len ||
        memcmp(r.block.raw, r.block_raw, r.block_len) != 0)
      abort();
    int vr =
        px_cons_commit_verify("plexus-test", &g_vs, &r.commit, r.block.hash);
    if (vr > 0) abort();
    if (vr == 0 && r.commit.height == 1) {
      px_ledger_state_t *s;
      if (px_ledger_state_clone(g_state, &s)) abort();
      px_tx_result_t *res = calloc(r.block.n_txs + 1, sizeof *res);
      if (!res) abort();
      int ar = px_ledger_apply_block(s, &r.block, res);
      if (ar > 0) abort();
      free(res);
      px_ledger_state_free(s);
    }
    px_buf_release(&re);
    px_buf_release(&c);
    px_chain_sync_reply_release(&r);
  }
  free(in);
  return 0;
}
