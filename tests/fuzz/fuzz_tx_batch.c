/*
 * fuzz_tx_batch.c — libFuzzer target for the chain runtime's tx-batch
 * decoder (gossip topic PX_CHAIN_TOPIC_TXS; src/node/chain_wire.c) and the
 * mempool admission each entry goes through.
 *
 * Properties: px_chain_batch_next never reads outside the input and returns
 * only 1, 0 or a documented error; the entries it yields lie back to back
 * from offset 0, and re-framing them with px_chain_batch_append gives the
 * bytes consumed; a walk that ends cleanly consumed everything.  Each entry
 * then goes to a fresh mempool over a small genesis state, exactly as
 * px_chain_on_gossip does: it returns 0 or a negative code, and whatever
 * was admitted is findable by hash and counted once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "node/chain.h"

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
  uint8_t *in = malloc(n ? n : 1); /* exact-size copy: ASan sees overreads */
  if (!in) return 0;
  if (n) memcpy(in, d, n);
  px_mempool_t mp;
  px_mempool_init(&mp, 64, 1u << 20);
  px_buf_t re;
  px_buf_init(&re, 0);
  size_t off = 0, admitted = 0;
  const uint8_t *tx;
  size_t len;
  int rc;
  while ((rc = px_chain_batch_next(in, n, &off, &tx, &len)) == 1) {
    if (tx < in || len > n || tx + len > in + n || off > n) abort();
    if (px_chain_batch_append(&re, tx, len)) abort();
    uint8_t h[PX_HASH_LEN];
    int ar = px_mempool_add(&mp, g_state, tx, len, 0, h);
    if (ar > 0) abort();
    if (ar == 0) {
      admitted++;
      if (!px_mempool_has(&mp, h)) abort();
    }
  }
  if (rc != 0 && rc != PX_ETRUNC && rc != PX_ETOOBIG) abort();
  if (rc == 0 && off != n) abort();
  if (re.len != off || (off && memcmp(re.data, in, off) != 0)) abort();
  if (mp.live != admitted) abort();
  px_buf_release(&re);
  px_mempool_release(&mp);
  free(in);
  return 0;
}
