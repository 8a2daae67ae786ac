/*
 * requester.h — private to requester.c / requester_dispute.c: the requester
 * role's per-job state (docs/market.md "Requester runtime").
 *
 * A job lives in HOME/jobs/<hex id>/:
 *   spec      the job spec's canonical encoding (written once)
 *   manifest  u32 n, n layer refs (written once)
 *   sched     px_sched_save after every drained batch (atomic)
 *   state     this file's runtime record (atomic, below)
 *   res/<shard>-<output hex>.f32   logits received and verified, kept until
 *             the shard is accepted (then copied into result.f32)
 *   result.f32  [n_samples][classes] f32 LE, filled as shards are accepted
 * Every file is written with tmp + fsync + rename, so a crash leaves either
 * the old or the new version.  On restart, whatever was in flight (leases,
 * dispute games, unconfirmed txs) is rebuilt from these files: leases
 * simply expire in the scheduler and are re-offered, dispute games restart
 * from scratch, txs are re-checked against the chain state.
 */
#ifndef PX_NODE_REQUESTER_H
#define PX_NODE_REQUESTER_H

#include <stdint.h>

#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"

#include "market_rt.h"

#define PX_REQ_TAG_STATE 0x05F0
#define PX_REQ_EVENTS 16 /* recent events kept per job */
#define PX_REQ_EVENT_LEN 160
#define PX_REQ_RESUBMIT_BLOCKS 8     /* a tx not seen after this is resent */
#define PX_REQ_GAME_TIMEOUT_MS 30000 /* per dispute request */
#define PX_REQ_PEER_GONE_MS 30000    /* disconnected this long: gone */

typedef enum {
  RJ_SUBMITTED = 0, /* JOB_OPEN sent, not yet on chain */
  RJ_RUNNING = 1,   /* scheduler driving */
  RJ_SETTLING = 2,  /* SETTLE emitted; JOB_SETTLE txs going out */
  RJ_SETTLED = 3,   /* job record closed on chain */
  RJ_FAILED = 4,    /* JOB_OPEN refused or never landed */
} rj_phase_t;

/* Commitments this requester saw (verified) and carries to chain. */
typedef enum {
  RC_PENDING = 0,   /* to go into the next JOB_COMMIT */
  RC_SUBMITTED = 1, /* in a JOB_COMMIT tx not yet seen in a block */
  RC_ONCHAIN = 2,   /* commit record exists (height known) */
  RC_LOST = 3,      /* the chain holds it as lost (equivocation/dispute) */
} rc_state_t;

typedef struct {
  px_commitment_t c;
  uint8_t role; /* px_mkt_role_t */
  uint8_t st;   /* rc_state_t */
  uint8_t want_seed;
  uint64_t sent_height; /* chain height when submitted */
  uint64_t height;      /* inclusion height (ONCHAIN) */
} rj_commit_t;

/* Payments owed (PAY effects) carried to chain in JOB_SETTLE txs. */
typedef enum {
  RP_QUEUED = 0,
  RP_SUBMITTED = 1,
  RP_DONE = 2,    /* paid on chain */
  RP_DROPPED = 3, /* the commit record is lost: never payable */
} rp_state_t;

typedef struct {
  px_settle_entry_t e;
  uint8_t st;
  uint64_t sent_height;
} rj_pay_t;

/* A lease the runtime must deliver (ASSIGN / AUDIT effects). */
typedef struct {
  uint32_t shard;
  uint8_t provider[PX_PK_LEN];
  uint8_t role;
  uint8_t sent; /* request out, or accepted */
  uint8_t accepted;
  uint64_t deadline; /* scheduler clock */
  uint64_t req_id;
  uint64_t retry_ms; /* loop clock: do not resend before */
} rj_lease_t;

/* Dispute phases (requester_dispute.c). */
typedef enum {
  RD_WAIT_CHAIN = 0, /* both commitments must be on chain first */
  RD_GAME = 1,       /* bisection: CHALLENGE rounds */
  RD_PROOF = 2,      /* paths of leaves L and L-1 in both traces */
  RD_REVEAL = 3,     /* per-sample leaves of L (both) and L-1 */
  RD_SUBMITTED = 4,  /* DISPUTE tx out, waiting for its block */
  RD_DONE = 5,
} rd_phase_t;

typedef struct {
  uint32_t shard;
  uint8_t pk[2][PX_PK_LEN]; /* A = the scheduler's provider, B = other */
  uint8_t phase;
  px_dispute_t game;
  uint32_t layer;
  int has_in;
  uint8_t in_leaf[PX_HASH_LEN];
  uint8_t claim[2][PX_HASH_LEN];
  /* proofs: [party][0 = layer L, 1 = layer L-1] */
  uint8_t got_proof[2][2];
  px_dispute_response_t proof[2][2];
  /* reveals: [0] A's layer L, [1] B's layer L, [2] layer L-1 */
  uint8_t (*rev[3])[PX_HASH_LEN];
  uint32_t rev_n[3];
  uint32_t reveal_from;   /* party asked for L-1 (0, then 1) */
  uint64_t unreach_ms[2]; /* since when a party cannot be reached (0 ok) */
  uint64_t req[2];        /* outstanding request ids per party (0 none) */
  uint64_t req_rev[3];
  uint8_t tx[PX_HASH_LEN];
  uint64_t sent_height;
  uint64_t started_ms;
} rj_dispute_t;

typedef struct rj_job {
  uint8_t id[PX_HASH_LEN];
  char hex[2 * PX_HASH_LEN + 1];
  char dir[4180];
  px_job_spec_t spec;
  px_market_manifest_t manifest;
  uint8_t phase; /* rj_phase_t */
  uint64_t escrow;
  uint64_t submit_height; /* chain height when JOB_OPEN went out */
  uint64_t open_height;
  uint64_t last_now; /* scheduler clock never goes back */
  uint8_t final_sent;
  uint8_t resubmit; /* resumed in RJ_SUBMITTED: send JOB_OPEN again */
  uint64_t final_height;
  uint64_t paid_total, refund;
  px_sched_t *sched; /* NULL until JOB_OPEN is on chain */
  uint32_t n_shards, classes;
  uint8_t *accepted; /* [n_shards] 1 = written into result.f32 */
  uint8_t *audited;  /* [n_shards] an AUDIT lease was issued */
  uint8_t *recheck;  /* [n_shards] accepted from a provider later caught:
                      * to be re-run here (requester.c "suspects") */
  uint8_t (*suspect)[PX_PK_LEN]; /* providers caught lying (slashed,
                                  * equivocated, commitment lost) */
  size_t n_suspect;
  uint8_t (*acc_prov)[PX_PK_LEN]; /* accepted result's provider per shard */
  uint8_t (*auditor)[PX_PK_LEN];  /* last auditor per shard */
  rj_commit_t *cm;
  size_t n_cm, cap_cm;
  rj_pay_t *pay;
  size_t n_pay, cap_pay;
  rj_lease_t *ls;
  size_t n_ls, cap_ls;
  rj_dispute_t *dp;
  size_t n_dp, cap_dp;
  uint8_t (*expired)[PX_PK_LEN]; /* distinct providers whose lease expired */
  size_t n_expired;
  uint32_t slashed;
  uint8_t open_tx[PX_HASH_LEN]; /* the JOB_OPEN tx */
  uint64_t model_size;          /* model blob bytes (lease offers) */
  int res_fd;                   /* result.f32, -1 until opened */
  /* model + input for result checks and disputes (loaded lazily) */
  px_net_t *net;
  float *input; /* n_samples * in_size floats (the input blob) */
  size_t in_size;
  /* verified logits not yet written to res/ (written by the next save,
   * always before the scheduler state that refers to them) */
  struct rj_res {
    uint32_t shard;
    uint8_t output[PX_HASH_LEN];
    uint8_t *data;
    size_t len;
  } * pend;
  size_t n_pend, cap_pend;
  char events[PX_REQ_EVENTS][PX_REQ_EVENT_LEN];
  uint32_t n_events; /* total ever; the ring keeps the last PX_REQ_EVENTS */
  int dirty;
  struct rj_job *next;
} rj_job_t;

typedef struct {
  uint8_t pk[PX_PK_LEN];
  uint64_t down_ms; /* loop clock; 0 = up */
  uint8_t gone_sent;
} rj_peer_t;

/* Outstanding p2p requests. */
typedef enum { RQ_LEASE = 1, RQ_CHALLENGE, RQ_PROOF, RQ_REVEAL } rq_kind_t;

typedef struct {
  uint64_t req_id;
  uint8_t kind;
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint8_t provider[PX_PK_LEN];
  uint32_t aux; /* party, proof slot, reveal slot */
} rj_req_t;

struct px_requester {
  px_market_t *m;
  char jobs_dir[4110];
  rj_job_t *jobs;
  uint64_t job_counter; /* nonce of the next job (HOME/jobs/counter) */
  rj_req_t *rq;
  size_t n_rq, cap_rq;
  rj_peer_t *peers;
  size_t n_peers, cap_peers;
  px_compute_t *compute;
  uint64_t height;    /* last block seen */
  uint64_t last_tick; /* loop clock of the last scheduler TICK */
};

/* ---- requester.c, used by requester_dispute.c ---- */
uint64_t px_req_now(rj_job_t *j);
void px_req_event(rj_job_t *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int px_req_load_data(px_requester_t *r, rj_job_t *j);
rj_commit_t *px_req_find_commit(rj_job_t *j, uint32_t shard,
                                const uint8_t pk[PX_PK_LEN]);
int px_req_send(px_requester_t *r, rj_job_t *j, const uint8_t pk[PX_PK_LEN],
                uint16_t method, const px_buf_t *payload, uint8_t kind,
                uint32_t shard, uint32_t aux, uint64_t timeout_ms,
                uint64_t *req_id);
void px_req_feed(px_requester_t *r, rj_job_t *j, px_sched_event_t *ev);
void px_req_mark_dirty(rj_job_t *j);

/* Decode a job's `state` record for a job of this spec and encode it again
 * into out (fuzz target, tests): 0, or the decode error (PX_EDECODE,
 * PX_ETRUNC, PX_ETRAILING, PX_EVERSION, PX_ETOOBIG, PX_ENOMEM, PX_EINVAL for
 * a bad spec). */
int px_req_state_roundtrip(const px_job_spec_t *spec, const uint8_t *p,
                           size_t n, px_buf_t *out);

/* ---- requester_dispute.c ---- */
/* Start a dispute game on the DISPUTE effect (or on resume). */
int px_reqd_start(px_requester_t *r, rj_job_t *j, uint32_t shard,
                  const uint8_t a[PX_PK_LEN], const uint8_t b[PX_PK_LEN]);
/* Drive every dispute of j (after a block, a response, a tick). */
void px_reqd_step(px_requester_t *r, rj_job_t *j, const px_ledger_state_t *s);
/* A response to a CHALLENGE / proof / REVEAL request. */
void px_reqd_on_response(px_requester_t *r, rj_job_t *j, const rj_req_t *q,
                         const px_p2p_fx_t *fx);
/* A block: is our DISPUTE tx in it? */
void px_reqd_on_block(px_requester_t *r, rj_job_t *j,
                      const px_ledger_state_t *s, const px_block_t *b,
                      const px_tx_result_t *res);
void px_reqd_release(rj_dispute_t *d);

/* Pure builder (unit-tested): the DISPUTE payload for sample `sample` of
 * the shard at layer `layer`, from the requester's own model and input.
 * a/b: the two commitments; proofs of the layer leaves (and of layer-1's)
 * in both traces; the per-sample leaves of layer `layer` of both parties
 * and of layer-1 (NULL for layer 0).  d is filled (its pointers go into
 * *scratch_in and the net / input), then encoded into out.  Errors name
 * what failed in errmsg. */
typedef struct {
  const px_job_spec_t *spec;
  const px_market_manifest_t *manifest;
  const px_net_t *net;
  const float *input; /* whole input blob as floats */
  size_t input_floats;
  const px_commitment_t *a, *b;
  uint32_t layer;
  const px_dispute_response_t *proof_l[2];   /* leaf L in each trace */
  const px_dispute_response_t *proof_in[2];  /* leaf L-1 (layer > 0) */
  const uint8_t (*leaves_l[2])[PX_HASH_LEN]; /* per-sample leaves of L */
  const uint8_t (*leaves_in)[PX_HASH_LEN];   /* of L-1 (layer > 0) */
  uint32_t n_samples;                        /* of the shard */
} px_reqd_input_t;

int px_reqd_build(px_compute_t *c, const px_reqd_input_t *in, px_buf_t *out,
                  uint32_t *sample_out, char *errmsg, size_t errcap);

/* Run one sample through layers [0, upto) with the deterministic kernels
 * (bit-identical to px_net_forward).  out gets layer upto-1's output
 * (upto 0: the sample itself); *n its floats.  Heap (px_free). */
int px_reqd_layer_input(px_compute_t *c, const px_net_t *net, const float *x,
                        uint32_t upto, float **out, size_t *n);

#endif
