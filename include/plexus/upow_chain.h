/*
 * plexus/upow_chain.h — the ledger's Useful Proof of Work contract
 * (contract id 4, src/ledger/upow.c; docs/upow.md "The uPoW contract").
 *
 * Epochs of PX_UPOW_EPOCH_BLOCKS blocks.  Epoch e covers heights
 * [e*L + 1, (e+1)*L].  Its task is fixed by the first block's begin_block
 * (parent = the best network published so far, the seeded genesis network
 * for epoch 0; epoch seed from the previous block's hash; margin from the
 * difficulty rule); the evaluation randomness is the hash of that first
 * block, revealed by the second block's begin_block.  SUBMIT txs are
 * accepted from the second block to the last block of the epoch.
 *
 * SUBMIT(solution): the sender must be the solution's miner key and pay a
 * deposit of PX_UPOW_DEPOSIT.  The contract re-runs that one candidate with
 * px_upow_check under PX_UPOW_MAX_CHECK_OPS: valid -> the deposit is held
 * until the epoch ends (counted by px_ledger_supply), then refunded with
 * the solution's share of PX_UPOW_EPOCH_REWARD (split by score); invalid
 * (tampered nonce, score, key, epoch seed, or below the margin) -> the
 * deposit is burned and the tx still succeeds (so the burn stays), with
 * the verdict in a receipt.  A tx that cannot be judged (past or future
 * epoch, not yet revealed, duplicate, cap reached) fails with a code and
 * takes no deposit.
 *
 * At the first block of the next epoch the best valid solution
 * (px_upow_solution_cmp) becomes the parent; the epoch's published record
 * names its network hash.  An epoch without a solution republishes the
 * parent.
 *
 * Every reader here takes a state (read-only) and is safe wherever that
 * state is (the node calls them on its loop thread).
 */
#ifndef PLEXUS_UPOW_CHAIN_H
#define PLEXUS_UPOW_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/ledger.h"
#include "plexus/upow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_CONTRACT_UPOW 4
#define PX_TX_UPOW_SUBMIT 0x0401 /* payload: the 89-byte solution encoding */

/* Protocol constants (docs/upow.md). */
#define PX_UPOW_EPOCH_BLOCKS 20u        /* blocks per epoch (L >= 3) */
#define PX_UPOW_DEPOSIT 10000u          /* held per submitted solution */
#define PX_UPOW_EPOCH_REWARD 1000000u   /* minted per epoch, split by score */
#define PX_UPOW_TARGET_SOLUTIONS 4u     /* difficulty aims at this per epoch */
#define PX_UPOW_INITIAL_MARGIN 4u       /* margin of epoch 0 */
#define PX_UPOW_MAX_MARGIN 256u         /* difficulty cap */
#define PX_UPOW_MAX_SOLUTIONS 64u       /* valid solutions kept per epoch */
#define PX_UPOW_MAX_CHECKS_PER_BLOCK 8u /* candidate re-runs per block */
#define PX_UPOW_GENESIS_SEED 0x706c65787573ull /* "plexus": genesis network */
/* Hard work bound of one check (integer ops, px_upow_task_ops): 4x the
 * default candidate. */
#define PX_UPOW_MAX_CHECK_OPS (256ull * 1000 * 1000)

/* The pinned dataset: Fashion-MNIST training split from Debian's
 * dataset-fashion-mnist.  Its hash is BLAKE2b-256 over the decoded image
 * bytes followed by the label bytes (so gzip re-packaging does not matter).
 */
#define PX_UPOW_DATASET_DIR PX_FASHION_MNIST_DIR
#define PX_UPOW_DATASET_HASH                                                   \
  "edfeeac10076090fbfa4d3ce767f8223cd025c38e1d740f0eb5cde236a529e11"

/* The training set every validator and miner scores on, loaded once per
 * process (thread-safe) from PX_UPOW_DATASET_DIR and checked against
 * PX_UPOW_DATASET_HASH.  0 and a borrowed pointer valid until exit;
 * PX_ENOENT (not installed), PX_EAUTH (hash differs: logged loudly), decode
 * errors.  A failure is remembered: later calls return the same code. */
int px_upow_chain_dataset(const px_upow_data_t **out);

/* Task parameters the contract uses (default dims and params). */
void px_upow_chain_dims(px_upow_dims_t *d);
void px_upow_chain_params(px_upow_params_t *p);

/* ---- records ------------------------------------------------------------ */

typedef struct {
  uint64_t epoch;
  uint64_t start_height;   /* first block of the epoch */
  uint8_t revealed;        /* eval_seed known (from the second block on) */
  uint8_t epoch_seed[32];  /* fixed at the first block */
  uint8_t eval_seed[32];   /* hash of the first block; zero until revealed */
  uint32_t margin;         /* difficulty */
  uint8_t parent_hash[32]; /* network hash of the parent */
  uint32_t parent_score;   /* on this epoch's eval subset; 0 = not yet known */
  uint32_t n_solutions;    /* valid so far */
  uint32_t best_score;     /* best valid score so far (0: none) */
  uint64_t checks_height;  /* height of the last block that ran a check */
  uint32_t checks_in_block;
} px_upow_chain_epoch_t;

/* The epoch record (PX_ENOTFOUND before the first block). */
int px_upow_chain_epoch(const px_ledger_state_t *s, px_upow_chain_epoch_t *out);
/* Fill an px_upow_epoch_t (what px_upow_task_new takes) from the record. */
void px_upow_chain_task_epoch(const px_upow_chain_epoch_t *e,
                              px_upow_epoch_t *out);
/* The current parent network (decoded; caller releases). */
int px_upow_chain_parent(const px_ledger_state_t *s, px_upow_net_t *out);

/* What epoch e published (written at the first block of epoch e+1). */
typedef struct {
  uint64_t epoch;
  uint64_t height;       /* block that published it */
  uint8_t net_hash[32];  /* the network that became the parent */
  uint32_t score;        /* its eval score (the parent's if no solution) */
  uint32_t parent_score; /* the previous parent's, same subset (0: unknown) */
  uint32_t margin;
  uint32_t n_solutions;
  uint8_t winner[32]; /* miner pk; zero if no solution */
  uint64_t nonce;
  uint64_t reward; /* minted for the epoch */
} px_upow_chain_published_t;
int px_upow_chain_published(const px_ledger_state_t *s, uint64_t epoch,
                            px_upow_chain_published_t *out);

typedef struct {
  uint64_t submitted; /* judged SUBMITs */
  uint64_t valid;
  uint64_t rejected;
  uint64_t rewards;   /* minted to it */
  uint64_t forfeited; /* deposits burned */
} px_upow_chain_miner_t;
/* All zero for an unknown miner. */
int px_upow_chain_miner(const px_ledger_state_t *s, const uint8_t pk[32],
                        px_upow_chain_miner_t *out);

/* The verdict on one judged SUBMIT, keyed by (sender, solution). */
typedef struct {
  uint64_t height;
  int32_t code; /* 0 valid, else the px_upow_check / sender error */
} px_upow_chain_receipt_t;
int px_upow_chain_receipt(const px_ledger_state_t *s, const uint8_t sender[32],
                          const px_upow_solution_t *sol,
                          px_upow_chain_receipt_t *out); /* PX_ENOTFOUND */

/* Deposits held by valid solutions of the open epoch (supply term). */
uint64_t px_upow_chain_deposits(const px_ledger_state_t *s);

/* SUBMIT payload (= px_upow_solution_encode) and its strict decoder. */
int px_upow_payload_submit(px_buf_t *out, const px_upow_solution_t *sol);
int px_upow_payload_submit_decode(const uint8_t *p, size_t n,
                                  px_upow_solution_t *out);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_UPOW_CHAIN_H */
