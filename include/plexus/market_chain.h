/*
 * plexus/market_chain.h — the ledger's market contract (contract id 3):
 * provider registry, job escrow, commitments on chain, equivocation and
 * dispute verdicts with slashing, settlement and reputation.
 *
 * It is a native contract (src/ledger/market.c) behind the contract
 * interface of ledger_internal.h; this header gives wallets, the node's
 * market runtime and tests the payload builders, the record decoders and
 * the query methods.  docs/market.md ("The market contract") documents
 * every encoding and rule.
 *
 * Money: a provider's stake is its staking-contract stake (plexus stake N),
 * so it unbonds slowly and a slash can reach it; escrow is held by the job
 * record.  Supply invariant: balances + stakes + unbonding + open escrow =
 * genesis + emitted - burned (px_ledger_supply counts escrow).
 */
#ifndef PLEXUS_MARKET_CHAIN_H
#define PLEXUS_MARKET_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_CONTRACT_MARKET 3

/* Tx types (contract 3). */
#define PX_TX_PROVIDER_REGISTER 0x0301 /* also updates a registration */
#define PX_TX_PROVIDER_EXIT 0x0302     /* no payload: inactive */
#define PX_TX_JOB_OPEN 0x0303
#define PX_TX_JOB_COMMIT 0x0304 /* batch of provider commitments */
#define PX_TX_MARKET_EVIDENCE 0x0305
#define PX_TX_DISPUTE 0x0306
#define PX_TX_JOB_SETTLE 0x0307

/* Contract rules (constants of the protocol, docs/market.md). */
#define PX_MARKET_MIN_AUDIT_BPS 500u   /* audit:p needs p >= 5% */
#define PX_MARKET_SLASH_BPS 10000u     /* all of it, so S >= r/p deters */
#define PX_MARKET_SLASH_BURN_BPS 5000u /* of the slashed amount */
#define PX_MARKET_SLASH_WINNER_BPS 3000u
#define PX_MARKET_SLASH_REQUESTER_BPS 2000u
#define PX_MARKET_SETTLE_GRACE 20u /* blocks after deadline: anyone closes */
#define PX_MARKET_COMMIT_BATCH 256 /* commitments per JOB_COMMIT */
#define PX_MARKET_SETTLE_BATCH 1024
#define PX_MARKET_MAX_LAYERS 64 /* layers in a job's model manifest */
#define PX_MARKET_ADDR_MAX 64   /* provider p2p address, incl. NUL */
/* A DISPUTE transaction carries one layer's weights; it alone may exceed
 * params.max_tx_size, up to this hard cap (PX_LEDGER_TX_MAX_SIZE). */
#define PX_MARKET_DISPUTE_TX_MAX (2u * 1024 * 1024)

/* ---- provider registration --------------------------------------------- */

typedef struct {
  uint32_t caps;           /* PX_CAP_* */
  uint32_t cores;          /* worker threads offered */
  uint32_t mem_mb;         /* memory offered */
  uint8_t simd;            /* 0 scalar, 1 AVX2, 2 AVX-512 (informational) */
  uint64_t price;          /* per work unit */
  uint32_t slots;          /* concurrent leases, 1..64 */
  uint64_t max_shard_work; /* largest shard it accepts (work units) */
  uint64_t speed;          /* work units/s measured by the standard bench */
  uint8_t bench_hash[PX_HASH_LEN]; /* px_market_bench result hash */
  char addr[PX_MARKET_ADDR_MAX];   /* p2p listen address "host:port" */
} px_provider_reg_t;

int px_market_payload_register(px_buf_t *out, const px_provider_reg_t *r);
int px_market_payload_register_decode(const uint8_t *p, size_t n,
                                      px_provider_reg_t *r);

/* The standard deterministic benchmark run at registration: a seeded CNN
 * forward over a fixed batch.  *speed = work units per second measured
 * here; hash = trace root of the run, the same on every machine (anyone can
 * re-run it; the contract checks it equals px_market_bench_hash()). */
int px_market_bench(px_compute_t *c, uint64_t *speed,
                    uint8_t hash[PX_HASH_LEN]);
/* The expected hash (computed once, cached; thread-safe). */
int px_market_bench_hash(uint8_t hash[PX_HASH_LEN]);

/* ---- jobs -------------------------------------------------------------- */

/* One manifest entry per trace layer of the model:
 * layer_ref = BLAKE2b-256("plexus-layer-v1" || u8 kind || u32le in_c, in_h,
 * in_w, out_c, k, pad || weights_ref)  with weights_ref as in
 * px_dispute_weights_ref (hash of nothing for relu/maxpool).  Providers
 * check the manifest against the model they fetched before running; the
 * dispute verdict checks the posted layer against it. */
typedef struct {
  uint32_t n_layers;
  uint8_t layer_ref[PX_MARKET_MAX_LAYERS][PX_HASH_LEN];
} px_market_manifest_t;

/* Manifest of a net (the same layer list px_net_forward traces). */
int px_market_manifest(const px_net_t *net, px_market_manifest_t *m);
/* layer_ref of one dispute layer (from its kind, shapes, weights_ref). */
void px_market_layer_ref(const px_dispute_layer_t *l, uint8_t out[PX_HASH_LEN]);

/* JOB_OPEN payload: u32 spec_len, spec encoding, manifest (u32 n, refs). */
int px_market_payload_job_open(px_buf_t *out, const px_job_spec_t *spec,
                               const px_market_manifest_t *m);
int px_market_payload_job_open_decode(const uint8_t *p, size_t n,
                                      px_job_spec_t *spec,
                                      px_market_manifest_t *m);

/* JOB_COMMIT payload: u16 count (1..PX_MARKET_COMMIT_BATCH), then each
 * commitment's encoding (u32 len, bytes). */
int px_market_payload_commit(px_buf_t *out, const px_commitment_t *c, size_t n);

/* MARKET_EVIDENCE payload: px_evidence_encode bytes. */

/* Per-sample traces (what providers commit, what a dispute proves; h2's
 * px_shard_run and the requester must compute exactly this):
 *   s[i][j]     = px_merkle_leaf(f32 LE bytes of sample j's output of trace
 *                 layer i)  (out_size floats; j = 0..n-1 within the shard)
 *   layer_leaf i = px_merkle_root(s[i][0..n-1], n)   (= s[i][0] when n = 1)
 *   trace_root  = px_merkle_root(layer_leaf[0..n_layers-1], n_layers)
 *   output      = layer_leaf[n_layers-1]
 * Paths are px_merkle_proof paths: layer_path[p] proves layer_leaf[p] at
 * index `layer` of n_layers under party p's trace_root; sample_path[p]
 * proves sample_leaf[p] at index `sample` of n_samples under layer_leaf[p];
 * in_layer_path[p] proves in_layer_leaf at index layer-1 under party p's
 * trace_root; in_sample_path proves in_sample_leaf (= px_merkle_leaf of
 * l.input) at index `sample` under in_layer_leaf.  l.claim[p] =
 * sample_leaf[p].  For layer 0 the input is sample j's bytes of the input
 * blob (global sample shard*shard_size+j, in_c*in_h*in_w f32 each), cut
 * from the 1..2 chunks that hold them, each with its px_blob_proof path.
 *
 * DISPUTE payload (docs/market.md "Dispute transaction"): the two signed
 * commitments, the disputed layer L and sample j, per party the proof of
 * its layer-L leaf against its trace root and of its sample-j leaf against
 * that layer leaf; the agreed input (layer L-1's leaf proven in both traces
 * and the sample's leaf under it, or for L = 0 the input blob chunks that
 * hold sample j with their audit paths); and the layer itself
 * (px_dispute_layer_t with n = 1). */
typedef struct {
  px_commitment_t a, b;
  uint32_t layer, sample, n_samples; /* n_samples: the shard's */
  /* per party: layer leaf + path in its trace, sample leaf + path */
  uint8_t layer_leaf[2][PX_HASH_LEN];
  uint32_t layer_depth[2];
  uint8_t layer_path[2][PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  uint8_t sample_leaf[2][PX_HASH_LEN];
  uint32_t sample_depth[2];
  uint8_t sample_path[2][PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  /* layer > 0: the agreed leaf of layer-1 (proven in both traces) and the
   * sample's leaf under it */
  uint8_t in_layer_leaf[PX_HASH_LEN];
  uint32_t in_layer_depth[2];
  uint8_t in_layer_path[2][PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  uint8_t in_sample_leaf[PX_HASH_LEN];
  uint32_t in_sample_depth;
  uint8_t in_sample_path[PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  /* layer == 0: chunks of the input blob covering the sample (1 or 2) */
  uint32_t n_chunks;
  uint64_t chunk_index[2];
  const uint8_t *chunk[2];
  size_t chunk_len[2];
  uint32_t chunk_depth[2];
  uint8_t chunk_path[2][PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
  px_dispute_layer_t l; /* n = 1; input = the sample's layer input */
} px_market_dispute_t;

/* Encode (PX_ELIMIT when the layer is over the on-chain bound: the error
 * log names the layer and its size).  Decode copies arrays to the heap;
 * release with px_market_dispute_release.  Heap struct: it is large. */
int px_market_payload_dispute(px_buf_t *out, const px_market_dispute_t *d);
int px_market_payload_dispute_decode(const uint8_t *p, size_t n,
                                     px_market_dispute_t *d);
void px_market_dispute_release(px_market_dispute_t *d);

/* JOB_SETTLE payload: job_id, u8 final, u16 n entries, u16 n_expired,
 * entries, expired provider keys. */
#define PX_SETTLE_AUDITED 1u /* the shard was audited and this result held */
#define PX_SETTLE_AUDITOR 2u /* payment to an auditor */
typedef struct {
  uint32_t shard;
  uint8_t provider[PX_PK_LEN];
  uint64_t amount;
  uint8_t flags;
} px_settle_entry_t;

int px_market_payload_settle(px_buf_t *out, const uint8_t job_id[PX_HASH_LEN],
                             int final, const px_settle_entry_t *e, size_t n,
                             const uint8_t (*expired)[PX_PK_LEN],
                             size_t n_expired);

/* ---- records and queries ------------------------------------------------
 * px_ledger_query(s, PX_CONTRACT_MARKET, method, args, n, out). */
#define PX_MARKET_Q_PROVIDER 1   /* args pk[32] -> provider record */
#define PX_MARKET_Q_PROVIDERS 2  /* no args -> u32 n, n x bytes record */
#define PX_MARKET_Q_JOB 3        /* args job_id[32] -> job record */
#define PX_MARKET_Q_COMMITMENT 4 /* job_id, u32le shard, pk -> commit rec */
#define PX_MARKET_Q_JOBS 5       /* args requester pk -> u32 n, job ids */

typedef struct {
  uint8_t pk[PX_PK_LEN];
  px_provider_reg_t reg;
  uint8_t active;
  uint64_t registered_height;
  /* reputation counters */
  uint64_t shards_completed, audits_passed, audits_failed, leases_expired,
      disputes_won, disputes_lost, slashed_total;
  uint64_t earned;
} px_provider_rec_t;

/* Reputation in basis points from the counters (the scheduler's input):
 * 10000 * (completed + 1) / (completed + 1 + 4*(failed + lost) + expired),
 * a new provider starting at 10000. */
uint32_t px_provider_reputation(const px_provider_rec_t *r);

typedef enum {
  PX_JOBREC_OPEN = 1,
  PX_JOBREC_SETTLED = 2, /* final settle by the requester */
  PX_JOBREC_EXPIRED = 3, /* closed by anyone after deadline + grace */
} px_jobrec_state_t;

typedef struct {
  uint8_t id[PX_HASH_LEN];
  px_job_spec_t spec;
  px_market_manifest_t manifest;
  uint8_t state;
  uint64_t opened_height, closed_height;
  uint64_t escrow, paid, refunded;
  uint32_t n_commitments, n_disputes, n_slashed, shards_paid;
} px_job_rec_t;

typedef struct {
  px_commitment_t c;
  uint64_t height; /* block that included it */
  uint8_t paid;    /* settled */
  uint8_t lost;    /* lost a dispute or equivocated */
} px_commit_rec_t;

int px_provider_rec_decode(const uint8_t *p, size_t n, px_provider_rec_t *r);
int px_job_rec_decode(const uint8_t *p, size_t n, px_job_rec_t *r);
int px_commit_rec_decode(const uint8_t *p, size_t n, px_commit_rec_t *r);

/* Convenience wrappers over px_ledger_query. PX_ENOTFOUND when absent. */
int px_market_provider(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       px_provider_rec_t *r);
/* All registered providers (heap array, px_free). */
int px_market_providers(const px_ledger_state_t *s, px_provider_rec_t **out,
                        size_t *n);
int px_market_job(const px_ledger_state_t *s, const uint8_t id[PX_HASH_LEN],
                  px_job_rec_t *r);
int px_market_commitment(const px_ledger_state_t *s,
                         const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                         const uint8_t pk[PX_PK_LEN], px_commit_rec_t *r);
/* Sum of open escrow (part of the supply invariant). */
int px_market_escrow_total(const px_ledger_state_t *s, uint64_t *out);

/* Audit randomness for a commitment included at height h: BLAKE2b-256(
 * "plexus-audit-seed" || hash of block h+1).  Known only after block h+1,
 * i.e. after the commitment is on chain.  (A proposer of block h+1 could
 * bias it by choosing its txs; docs/market.md discusses the bound.) */
void px_market_audit_randomness(const uint8_t block_hash_next[PX_HASH_LEN],
                                uint8_t out[PX_HASH_LEN]);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_MARKET_CHAIN_H */
