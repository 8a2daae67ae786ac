/*
 * chain.h — the chain runtime inside a node (private to src/node/).
 *
 * A px_chain_t exists when the node's home holds genesis.json.  It owns the
 * LMDB store (DIR/data), the consensus WAL (DIR/cs.wal), the mempool and a
 * Tendermint core, and drives them from the node's libuv loop: consensus
 * messages and transaction batches travel as p2p gossip, block sync as
 * request/response, timeouts as uv timers.  docs/chain.md describes it.
 *
 * Everything here runs on the node's loop thread.  The node calls in from
 * its effect loop (gossip, requests, responses, peers), its tick, and its
 * control socket; the chain calls env.flush after work it starts itself
 * (timers) so the p2p effects it caused are performed.
 */
#ifndef PX_NODE_CHAIN_H
#define PX_NODE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "plexus/base.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/p2p.h"

#define PX_CHAIN_GENESIS_FILE "genesis.json"
#define PX_CHAIN_DATA_DIR "data"
#define PX_CHAIN_WAL_FILE "cs.wal"

/* p2p gossip topics and request methods the chain owns. */
#define PX_CHAIN_TOPIC_CONS 2   /* consensus messages */
#define PX_CHAIN_TOPIC_TXS 3    /* batches of transactions */
#define PX_CHAIN_METHOD_BLOCK 2 /* u64 height -> block + commit */

typedef struct px_chain px_chain_t;

typedef struct {
  const char *home;
  const px_keypair_t *key; /* the node key (copied) */
  const px_config_t *cfg;  /* chain.* options are read from it */
  uv_loop_t *loop;
  px_p2p_t *p2p;
  void (*flush)(void *ud); /* perform pending p2p effects */
  void *ud;
  /* Called after each committed block (state after it); may be NULL. */
  void (*on_block)(void *ud, const px_ledger_state_t *s, const px_block_t *b,
                   const px_tx_result_t *res);
} px_chain_env_t;

/* ---- mempool (exposed for unit tests) ----------------------------------
 * Admission order is kept; because a sender's tx is admitted only with the
 * nonce right after its queued ones, that order is also per-sender nonce
 * order, so a prefix of the queue is always a valid block body. */
typedef struct {
  uint8_t hash[PX_HASH_LEN];
  uint8_t sender[PX_PK_LEN];
  uint64_t nonce, fee;
  uint64_t added_ms;
  uint8_t *raw;
  size_t len;
  int dead; /* removed, awaiting compaction */
} px_mempool_entry_t;

typedef struct {
  px_mempool_entry_t *e;
  size_t n, cap;      /* entries incl. dead ones */
  size_t live, bytes; /* live count and bytes */
  size_t max_txs, max_bytes;
  int32_t *hidx; /* tx hash -> entry index, open addressing, -1 empty */
  size_t hcap;
  struct px_mp_sender *snd; /* sender -> queued count */
  size_t scap, sn;
} px_mempool_t;

void px_mempool_init(px_mempool_t *mp, size_t max_txs, size_t max_bytes);
void px_mempool_release(px_mempool_t *mp);
/* Check (px_ledger_check_tx with the sender's queue as nonce offset) and
 * add.  PX_EDUP when already queued, PX_ELIMIT when full, or the ledger's
 * admission error.  tx_out (optional) gets the decoded tx (points into p). */
int px_mempool_add(px_mempool_t *mp, const px_ledger_state_t *s,
                   const uint8_t *p, size_t len, uint64_t now_ms,
                   uint8_t hash_out[PX_HASH_LEN]);
int px_mempool_has(const px_mempool_t *mp, const uint8_t hash[PX_HASH_LEN]);
/* After a block: drop the given hashes, then re-check what is left against
 * the new state (nonce, fee payable) without re-verifying signatures. */
void px_mempool_update(px_mempool_t *mp, const px_ledger_state_t *s,
                       const uint8_t (*hashes)[PX_HASH_LEN], size_t n);
/* Queued count for a sender (the next nonce is account nonce + this). */
uint64_t px_mempool_sender_count(const px_mempool_t *mp,
                                 const uint8_t pk[PX_PK_LEN]);

/* ---- wire formats (chain_wire.c; docs/chain.md) -------------------------
 * Tx batch: repeated {u32 len, tx bytes}.  Block-sync reply: u32 block_len,
 * block, commit certificate. */

/* Append one tx to a batch.  PX_EINVAL for a tx over PX_LEDGER_TX_MAX_SIZE. */
int px_chain_batch_append(px_buf_t *b, const uint8_t *tx, size_t len);
/* Next tx of batch p[0..n) at *off: 1 with *tx, *len (pointing into p) and
 * *off moved past it; 0 at the clean end; PX_ETRUNC (torn entry) or
 * PX_ETOOBIG (length over PX_LEDGER_TX_MAX_SIZE) stop the walk. */
int px_chain_batch_next(const uint8_t *p, size_t n, size_t *off,
                        const uint8_t **tx, size_t *len);

typedef struct {
  px_block_t block;         /* decoded; release with the reply */
  px_cons_commit_t commit;  /* decoded certificate */
  const uint8_t *block_raw; /* point into the decoded input */
  size_t block_len;
  const uint8_t *cert;
  size_t cert_len;
} px_chain_sync_reply_t;

int px_chain_sync_reply_encode(const uint8_t *block, size_t block_len,
                               const uint8_t *cert, size_t cert_len,
                               px_buf_t *out);
/* Strict: framing exact, block (px_block_decode) and commit
 * (px_cons_commit_decode) both decode.  Nothing is verified here (the
 * caller checks the commit against its validator set).  On error nothing
 * is held; otherwise release with px_chain_sync_reply_release. */
int px_chain_sync_reply_decode(const uint8_t *p, size_t n,
                               px_chain_sync_reply_t *out);
void px_chain_sync_reply_release(px_chain_sync_reply_t *r);

/* ---- the runtime --------------------------------------------------------- */

/* 1 when home holds a genesis file (the node then runs a chain). */
int px_chain_configured(const char *home);
/* Open store, state, WAL file; no loop work yet.  errmsg: one line. */
int px_chain_open(const px_chain_env_t *env, px_chain_t **out, char *errmsg,
                  size_t errcap);
/* Start timers, replay the WAL, start consensus (the loop is running). */
int px_chain_start(px_chain_t *c);
/* Shutdown: stop and close the chain's uv handles (loop still running). */
void px_chain_close(px_chain_t *c);
/* Close WAL and store; NULL ok.  After the loop has ended. */
void px_chain_free(px_chain_t *c);

/* Hooks from the node's effect loop; each returns 1 when the chain took the
 * effect (it is the chain's topic/method/request). */
int px_chain_on_gossip(px_chain_t *c, const px_p2p_fx_t *fx);
int px_chain_on_request(px_chain_t *c, const px_p2p_fx_t *fx);
int px_chain_on_response(px_chain_t *c, const px_p2p_fx_t *fx);
void px_chain_on_peer(px_chain_t *c, const px_p2p_fx_t *fx);
void px_chain_tick(px_chain_t *c, uint64_t now);

/* Control commands (tx, txs, evidence, account, txstatus, block, chain,
 * validators):
 * returns 1 and appends one JSON object to out if cmd is a chain command. */
int px_chain_command(px_chain_t *c, const char *cmd, const char *arg,
                     px_buf_t *out);
/* The "chain" object of the node's status (appended). */
void px_chain_status_json(px_chain_t *c, px_buf_t *out);

/* For the node's own services (the market): submit one signed tx to the
 * mempool and gossip it (hash optional); the current state; the nonce the
 * next tx of pk must carry (account nonce + its queued txs); the hash of a
 * committed block; where a committed tx landed (PX_ENOTFOUND). */
int px_chain_submit(px_chain_t *c, const uint8_t *raw, size_t n,
                    uint8_t hash[PX_HASH_LEN]);
const px_ledger_state_t *px_chain_state(const px_chain_t *c);
uint64_t px_chain_next_nonce(const px_chain_t *c, const uint8_t pk[PX_PK_LEN]);
int px_chain_block_hash(px_chain_t *c, uint64_t height,
                        uint8_t out[PX_HASH_LEN]);
int px_chain_tx_location(px_chain_t *c, const uint8_t hash[PX_HASH_LEN],
                         px_tx_location_t *loc);

/* Validator set for height h from the state after h-1 (docs/chain.md):
 * px_ledger_validators, then the proposer rotation advanced (h-1) mod
 * (64·n) steps.  Used by consensus and by commit verification. */
int px_chain_valset(const px_ledger_state_t *s, uint64_t height,
                    px_cons_valset_t *vs);

#endif
