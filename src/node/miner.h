/*
 * miner.h — the node's uPoW miner (private to src/node/; docs/upow.md
 * "The miner").
 *
 * One px_miner_t per node that runs a chain.  It always follows the uPoW
 * contract (status, and writing each published network to
 * HOME/upow/epoch-N.{pxun,safetensors,config.json}); it mines only when
 * turned on (config upow.mine = true, or the control command `mine on`).
 *
 * Threads.  Everything here runs on the node's loop thread except one
 * mining thread (nice 19), which evaluates candidates of the current
 * epoch's task and queues the solutions it finds; the loop thread's tick
 * signs and submits them.  The mining thread gives its core up whenever
 * *env.busy (the market's shards_busy) is non-zero: it polls it before every
 * mutation step of a candidate (px_upow_candidate_ex) and between
 * candidates, and then sleeps until it is zero again.  The longest gap
 * between two polls is measured and reported ("poll_gap_max_us").
 */
#ifndef PX_NODE_MINER_H
#define PX_NODE_MINER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/upow.h"

#include "node/chain.h"

typedef struct px_miner px_miner_t;

typedef struct {
  const char *home;
  const px_keypair_t *key;    /* node key = miner account (copied) */
  const px_config_t *cfg;     /* upow.* options; NULL = defaults */
  px_chain_t *chain;          /* NULL: driven by px_miner_set_job (tests) */
  atomic_int *busy;           /* market shards_busy; NULL = never pre-empted */
  const px_upow_data_t *data; /* NULL = px_upow_chain_dataset() */
} px_miner_env_t;

int px_miner_open(const px_miner_env_t *env, px_miner_t **out, char *errmsg,
                  size_t errcap);
int px_miner_start(px_miner_t *m);  /* starts the (idle) mining thread */
void px_miner_close(px_miner_t *m); /* stops and joins it; NULL ok */
void px_miner_free(px_miner_t *m);  /* NULL ok */

/* Loop-thread hooks. */
void px_miner_tick(px_miner_t *m, uint64_t now_ms);
void px_miner_on_block(px_miner_t *m, const px_ledger_state_t *s,
                       const px_block_t *b, const px_tx_result_t *res);
/* `mine on|off`, `upow`, `upow_published N`: 1 when taken (one JSON object
 * appended to out). */
int px_miner_command(px_miner_t *m, const char *cmd, const char *arg,
                     px_buf_t *out);
void px_miner_status_json(px_miner_t *m, px_buf_t *out);

/* Mining switch (any thread). */
void px_miner_set_mining(px_miner_t *m, int on);
/* Give the thread a task (copies ep and parent).  The node does this from
 * on_block; tests call it directly. */
int px_miner_set_job(px_miner_t *m, const px_upow_epoch_t *ep,
                     const px_upow_net_t *parent);

typedef struct {
  uint64_t candidates;      /* finished */
  uint64_t solutions;       /* found */
  uint64_t preemptions;     /* candidates abandoned for a market shard */
  uint64_t poll_gap_max_us; /* longest time between two busy polls */
  int computing;            /* 1 while the thread is using its core */
} px_miner_stats_t;
void px_miner_stats(px_miner_t *m, px_miner_stats_t *out);
/* Pop one found solution (0, or PX_ENOTFOUND when none). */
int px_miner_pop(px_miner_t *m, px_upow_solution_t *out);

#endif
