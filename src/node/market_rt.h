/*
 * market_rt.h — the compute market inside a node (private to src/node/).
 *
 * One px_market_t per node that runs a chain.  It holds the blob store
 * (HOME/blobs), the provider role (active while this node's key is a
 * registered, active provider on chain) and the requester role (the jobs
 * this node submitted, persisted under HOME/jobs/<id>/ and resumed on
 * restart).  Everything runs on the node's loop thread except shard
 * execution, which runs on the provider's worker threads and reports back
 * through a uv_async handle.
 *
 * Work moves peer to peer (p2p request/response and DIRECT messages below);
 * the ledger's market contract (plexus/market_chain.h) holds registration,
 * escrow, commitments, verdicts and payments.  docs/market.md describes the
 * protocol.
 *
 * Files:  market.c (shell: dispatch, commands, tx submission)
 *         market_wire.c (encodings of the messages below)
 *         blobstore.c (content-addressed store + chunk fetcher)
 *         provider.c (provider role)     requester.c (requester role)
 */
#ifndef PX_NODE_MARKET_RT_H
#define PX_NODE_MARKET_RT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/p2p.h"

#include "chain.h"

/* ---- p2p methods and topics (docs/market.md "Wire") -------------------- */
#define PX_MKT_METHOD_CHUNK 20     /* chunk request -> chunk reply */
#define PX_MKT_METHOD_LEASE 21     /* lease offer -> lease reply */
#define PX_MKT_METHOD_CHALLENGE 22 /* dispute challenge -> response */
#define PX_MKT_METHOD_REVEAL 23    /* reveal request -> reveal reply */
#define PX_MKT_METHOD_CANCEL 24    /* lease cancel -> empty (best effort) */
#define PX_MKT_TOPIC_RESULT 20     /* DIRECT: provider -> requester */

#define PX_MKT_TAG_CHUNK_REQ 0x0520
#define PX_MKT_TAG_CHUNK 0x0521
#define PX_MKT_TAG_LEASE 0x0522
#define PX_MKT_TAG_LEASE_REPLY 0x0523
#define PX_MKT_TAG_RESULT 0x0524
#define PX_MKT_TAG_REVEAL_REQ 0x0525
#define PX_MKT_TAG_REVEAL 0x0526

#define PX_MKT_REASON_MAX 128 /* incl. NUL */
#define PX_MKT_MAX_SHARD_SAMPLES 65536

typedef struct {
  uint8_t root[PX_HASH_LEN];
  uint64_t size;  /* blob size: fixes chunk lengths and tree shape */
  uint64_t index; /* chunk index */
} px_mkt_chunk_req_t;

typedef struct {
  uint8_t root[PX_HASH_LEN];
  uint64_t index;
  const uint8_t *data; /* points into the decoded bytes */
  size_t len;
  uint32_t depth;
  uint8_t path[PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
} px_mkt_chunk_t;

typedef enum {
  PX_MKT_ROLE_WORKER = 1,
  PX_MKT_ROLE_AUDITOR = 2,
} px_mkt_role_t;

typedef struct {
  uint8_t job_id[PX_HASH_LEN]; /* an open job on chain */
  uint32_t shard;
  uint8_t role;        /* px_mkt_role_t */
  uint64_t model_size; /* bytes of the model blob (spec names its root) */
  uint64_t budget_ms;  /* lease length: the provider drops it after this */
} px_mkt_lease_t;

/* Refusal reasons (also in the reply's message text). */
typedef enum {
  PX_MKT_OK = 0,
  PX_MKT_BUSY = 1,        /* queue full */
  PX_MKT_TOO_BIG = 2,     /* shard over max_shard_work */
  PX_MKT_UNKNOWN_JOB = 3, /* not open on chain (yet) */
  PX_MKT_NOT_PROVIDER = 4,
  PX_MKT_BAD_MODEL = 5, /* manifest does not match the model */
  PX_MKT_PRICE = 6,     /* ceiling below our price */
  PX_MKT_INTERNAL = 7,
} px_mkt_reason_t;

typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint8_t reason; /* px_mkt_reason_t; 0 = accepted */
  char message[PX_MKT_REASON_MAX];
} px_mkt_lease_reply_t;

/* DIRECT result.  status 0: commitment + logits (n_samples * n_classes f32
 * LE); otherwise a failure (reason) and no commitment. */
typedef struct {
  uint8_t role;
  uint8_t status; /* px_mkt_reason_t */
  px_commitment_t c;
  const uint8_t *logits; /* points into the decoded bytes */
  size_t logits_len;
} px_mkt_result_t;

typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint32_t layer;
} px_mkt_reveal_req_t;

/* The per-sample leaves of one layer of one shard's trace. */
typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard, layer, n;
  const uint8_t (*leaves)[PX_HASH_LEN]; /* points into the decoded bytes */
} px_mkt_reveal_t;

/* Strict codecs (fuzz target fuzz_market_wire). Decoders point into p. */
int px_mkt_chunk_req_encode(const px_mkt_chunk_req_t *m, px_buf_t *out);
int px_mkt_chunk_req_decode(const uint8_t *p, size_t n, px_mkt_chunk_req_t *m);
int px_mkt_chunk_encode(const px_mkt_chunk_t *m, px_buf_t *out);
int px_mkt_chunk_decode(const uint8_t *p, size_t n, px_mkt_chunk_t *m);
int px_mkt_lease_encode(const px_mkt_lease_t *m, px_buf_t *out);
int px_mkt_lease_decode(const uint8_t *p, size_t n, px_mkt_lease_t *m);
int px_mkt_lease_reply_encode(const px_mkt_lease_reply_t *m, px_buf_t *out);
int px_mkt_lease_reply_decode(const uint8_t *p, size_t n,
                              px_mkt_lease_reply_t *m);
int px_mkt_result_encode(const px_mkt_result_t *m, px_buf_t *out);
int px_mkt_result_decode(const uint8_t *p, size_t n, px_mkt_result_t *m);
int px_mkt_reveal_req_encode(const px_mkt_reveal_req_t *m, px_buf_t *out);
int px_mkt_reveal_req_decode(const uint8_t *p, size_t n,
                             px_mkt_reveal_req_t *m);
int px_mkt_reveal_encode(const px_mkt_reveal_t *m, px_buf_t *out);
int px_mkt_reveal_decode(const uint8_t *p, size_t n, px_mkt_reveal_t *m);

/* ---- shard execution (shared by provider, requester and tests) ---------
 * Run samples [first, first+n) of the raw f32 input through net with a
 * per-sample trace (compute.h: trace->samples = n): layer leaf = Merkle
 * root over the per-sample leaves of that layer's output.  Fills logits
 * (n * classes floats, caller-allocated), the commitment's output /
 * trace_root / n_layers, and (if leaves != NULL) a heap array
 * [n_layers][n][32] of per-sample leaves (px_free).  Bit-exact on every
 * SIMD level and thread count. */
typedef struct {
  uint32_t n_layers;
  uint8_t layer_leaf[PX_MARKET_MAX_LAYERS][PX_HASH_LEN];
  uint8_t output[PX_HASH_LEN];
  uint8_t trace_root[PX_HASH_LEN];
} px_shard_trace_t;

int px_shard_run(px_net_t *net, px_compute_t *c, const float *x, uint32_t n,
                 float *logits, px_shard_trace_t *tr,
                 uint8_t (**sample_leaves)[PX_HASH_LEN]);

/* TEST ONLY variant for market.fault = perturb: perturb_layer >= 0 nudges
 * that hidden layer's output by one ulp (more elements until the logits
 * change) before the pass continues; -1 is px_shard_run. */
int px_shard_run_fault(px_net_t *net, px_compute_t *c, const float *x,
                       uint32_t n, float *logits, px_shard_trace_t *tr,
                       uint8_t (**sample_leaves)[PX_HASH_LEN],
                       int perturb_layer);
/* Layer leaves, output and trace root from per-sample leaves
 * [n_layers][n] (the same rule as px_shard_run). */
int px_shard_trace_from_leaves(const uint8_t (*leaves)[PX_HASH_LEN],
                               uint32_t n_layers, uint32_t n,
                               px_shard_trace_t *tr);
/* What commitment.output must be for logits[n][classes]: the Merkle root
 * over per-sample leaves of the logits (the requester's check). */
int px_shard_output_hash(const float *logits, uint32_t n, uint32_t classes,
                         uint8_t out[PX_HASH_LEN]);

/* ---- blob store (blobstore.c) ------------------------------------------ */
typedef struct px_blobstore px_blobstore_t;

/* DIR/blobs/<hex root> files, written atomically (tmp + rename). */
int px_blobstore_open(const char *home, px_blobstore_t **out);
void px_blobstore_free(px_blobstore_t *bs);
int px_blobstore_put(px_blobstore_t *bs, const void *data, size_t n,
                     uint8_t root[PX_HASH_LEN]);
/* 1 if the whole blob is present (size matches), else 0. */
int px_blobstore_has(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                     uint64_t size);
/* Whole blob into a heap buffer (px_free); PX_ENOENT when absent. */
int px_blobstore_read(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      uint8_t **data, size_t *n);
/* Serve one chunk with its audit path (the CHUNK method). */
int px_blobstore_chunk(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                       uint64_t size, uint64_t index, px_mkt_chunk_t *out,
                       px_buf_t *scratch);

/* Path of a blob's file (it exists once px_blobstore_has says so). */
int px_blobstore_path(const px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      char *out, size_t cap);

/* Chunk fetcher: chunks [first, first+count) of blob (root, size) from one
 * peer over CHUNK requests (PX_FETCH_WINDOW outstanding, each chunk checked
 * with px_blob_verify_chunk on arrival, a timed-out request retried
 * PX_FETCH_RETRIES times).  Polled, never calls back: feed it every
 * RESPONSE (1 when it was one of its requests) and ticks, on the loop
 * thread; the caller flushes p2p effects. */
#define PX_FETCH_WINDOW 4
#define PX_FETCH_RETRIES 3
typedef struct px_fetch px_fetch_t;
int px_fetch_new(px_p2p_t *p2p, const uint8_t peer[PX_PK_LEN],
                 const uint8_t root[PX_HASH_LEN], uint64_t size, uint64_t first,
                 uint64_t count, uint64_t timeout_ms, uint64_t now,
                 px_fetch_t **out);
int px_fetch_on_response(px_fetch_t *f, const px_p2p_fx_t *fx, uint64_t now);
void px_fetch_tick(px_fetch_t *f, uint64_t now);
/* 1 done, 0 running, < 0 failed (PX_EAUTH bad chunk, PX_ETIMEOUT, ...). */
int px_fetch_status(const px_fetch_t *f);
/* Once done: the bytes of the chunks, starting at blob offset
 * first * PX_BLOB_CHUNK (owned by the fetch). */
const uint8_t *px_fetch_data(const px_fetch_t *f, size_t *len);
void px_fetch_free(px_fetch_t *f); /* NULL ok */

/* ---- the market shell (market.c) --------------------------------------- */
typedef struct px_provider px_provider_t;
typedef struct px_requester px_requester_t;

typedef struct {
  const char *home;
  const px_keypair_t *key; /* node key = provider / requester account */
  const px_config_t *cfg;  /* market.* options */
  uv_loop_t *loop;
  px_p2p_t *p2p;
  px_chain_t *chain;
  void (*flush)(void *ud); /* perform pending p2p effects */
  void *ud;
} px_market_env_t;

typedef struct px_market {
  px_market_env_t env;
  px_keypair_t key;
  char home[4096];
  px_blobstore_t *blobs;
  px_provider_t *prov;
  px_requester_t *req;
  /* Inference sessions (node/session_rt.h): provider side (market.c opens
   * it) and gateway side (set by session_gateway.c; NULL when none). */
  struct px_sesprov *sesprov;
  struct px_sesgw *sesgw;
  /* Shards accepted and not yet finished by this node's provider role.
   * Written by the provider; read by anyone, from any thread (the miner
   * yields its cores while it is non-zero). */
  atomic_int shards_busy;
} px_market_t;

int px_market_open(const px_market_env_t *env, px_market_t **out, char *errmsg,
                   size_t errcap);
int px_market_start(px_market_t *m); /* loop running */
void px_market_close(
    px_market_t *m); /* close uv handles, stop threads; NULL ok */
void px_market_free(px_market_t *m); /* NULL ok */

/* Hooks from the node; 1 when taken. */
int px_market_on_request(px_market_t *m, const px_p2p_fx_t *fx);
int px_market_on_response(px_market_t *m, const px_p2p_fx_t *fx);
int px_market_on_direct(px_market_t *m, const px_p2p_fx_t *fx);
void px_market_on_peer(px_market_t *m, const px_p2p_fx_t *fx);
void px_market_tick(px_market_t *m, uint64_t now_ms);
/* Called by the chain after each committed block (state is after it). */
void px_market_on_block(px_market_t *m, const px_ledger_state_t *s,
                        const px_block_t *b, const px_tx_result_t *res);
/* Control commands: provide, providers, job_submit, job_status,
 * job_result, job_list, sessions, market.  1 when cmd is a market command (one
 * JSON object appended to out). */
int px_market_command(px_market_t *m, const char *cmd, const char *arg,
                      px_buf_t *out);
void px_market_status_json(px_market_t *m, px_buf_t *out);

/* Sign and submit a market tx from the node key (nonce from the chain's
 * state + this sender's mempool queue, minimum fee).  hash optional. */
int px_market_submit(px_market_t *m, uint16_t type, const void *payload,
                     size_t n, uint8_t hash[PX_HASH_LEN]);

/* ---- roles ----------------------------------------------------------------
 * Each function returns 1 when it took the message.  *_on_block is called
 * for every committed block. */
int px_prov_open(px_market_t *m, px_provider_t **out);
void px_prov_close(px_provider_t *p); /* joins worker threads */
void px_prov_free(px_provider_t *p);
int px_prov_on_request(px_provider_t *p, const px_p2p_fx_t *fx);
int px_prov_on_response(px_provider_t *p, const px_p2p_fx_t *fx);
void px_prov_on_peer(px_provider_t *p, const px_p2p_fx_t *fx);
void px_prov_on_block(px_provider_t *p, const px_ledger_state_t *s,
                      const px_block_t *b, const px_tx_result_t *res);
void px_prov_tick(px_provider_t *p, uint64_t now_ms);
int px_prov_command(px_provider_t *p, const char *cmd, const char *arg,
                    px_buf_t *out);
void px_prov_status_json(px_provider_t *p, px_buf_t *out);

/* Other modules' work on the provider role's slots and worker threads
 * (inference sessions, node/session_rt.h).  px_prov_is_active: 1 while
 * this node is an active registered provider (*price = its price per work
 * unit; price may be NULL).  px_prov_slot_take holds one of the
 * registered `slots` (shared with leases; PX_ESTATE when inactive,
 * PX_EBUSY when all are taken) until px_prov_slot_give; a held slot
 * counts in m->shards_busy.  px_prov_run queues j (the caller owns it and
 * keeps it alive until done runs): a worker calls j->run(j, its compute
 * context), then the loop thread calls j->done(j).  Jobs run before
 * queued shards.  After px_prov_close nothing runs and done is not called
 * (the owner frees its jobs). */
typedef struct px_prov_job {
  struct px_prov_job *next_; /* internal */
  void (*run)(struct px_prov_job *j, px_compute_t *c);
  void (*done)(struct px_prov_job *j);
} px_prov_job_t;
int px_prov_is_active(const px_provider_t *p, uint64_t *price);
int px_prov_slot_take(px_provider_t *p);
void px_prov_slot_give(px_provider_t *p);
int px_prov_run(px_provider_t *p, px_prov_job_t *j);

int px_req_open(px_market_t *m, px_requester_t **out); /* resumes jobs */
void px_req_close(px_requester_t *r);
void px_req_free(px_requester_t *r);
int px_req_on_direct(px_requester_t *r, const px_p2p_fx_t *fx);
int px_req_on_response(px_requester_t *r, const px_p2p_fx_t *fx);
void px_req_on_peer(px_requester_t *r, const px_p2p_fx_t *fx);
void px_req_on_block(px_requester_t *r, const px_ledger_state_t *s,
                     const px_block_t *b, const px_tx_result_t *res);
void px_req_tick(px_requester_t *r, uint64_t now_ms);
int px_req_command(px_requester_t *r, const char *cmd, const char *arg,
                   px_buf_t *out);
void px_req_status_json(px_requester_t *r, px_buf_t *out);

#endif
