/*
 * plexus/market.h — the compute market core (docs/market.md): job specs,
 * content-addressed blobs, work units and escrow, provider commitments and
 * evidence, verification policies (replicate:k, audit:p), the requester's
 * scheduler, the dispute game (bisection over layer traces, then one layer
 * re-executed), and settlement arithmetic.
 *
 * Everything here is pure: no sockets, clocks or disk (DESIGN.md, sans-I/O).
 * The scheduler takes events (with `now` inside them) and hands out effects
 * through px_sched_poll; the runtime (node/) performs them.  The ledger's
 * market contract reuses the codecs, the checks and the settlement math.
 *
 * Encodings use plexus/codec.h: little-endian fixed-width integers, every
 * structure preceded by a u16 type tag and a u8 version; decoders are strict
 * (no trailing bytes, every enum and bound checked, canonical values only),
 * so one value has one encoding and hashes/signatures over it are defined.
 *
 * Errors: 0 or a negative PX_E... code (plexus/base.h).
 */
#ifndef PLEXUS_MARKET_H
#define PLEXUS_MARKET_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- type tags and limits ---------------------------------------------- */

#define PX_MARKET_VERSION 1
#define PX_MARKET_TAG_JOB_SPEC 0x0501
#define PX_MARKET_TAG_COMMITMENT 0x0502
#define PX_MARKET_TAG_EVIDENCE 0x0503
#define PX_MARKET_TAG_CHALLENGE 0x0504
#define PX_MARKET_TAG_RESPONSE 0x0505
#define PX_MARKET_TAG_LAYER 0x0506
#define PX_MARKET_TAG_SCHED 0x0507

#define PX_MARKET_BPS 10000u       /* basis points in one */
#define PX_MARKET_MAX_REPLICAS 4   /* k of replicate:k */
#define PX_MARKET_MAX_SHARDS 16384 /* shards per job */
#define PX_MARKET_MAX_SAMPLES (1u << 30)
#define PX_SCHED_MAX_PROVIDERS 256

/* ---- content-addressed blobs --------------------------------------------
 * A blob (model file, input batch) is cut into PX_BLOB_CHUNK-byte chunks
 * (the last one shorter; an empty blob has none).  leaf_i =
 * px_merkle_leaf(chunk_i) = BLAKE2b-256(0x00 || chunk_i); the blob's name is
 * px_merkle_root over the leaves (RFC 6962 shape).  A fetcher that knows
 * (root, size) checks every chunk on arrival with its audit path, so a bad
 * peer is caught after one chunk, not after the whole blob. */

#define PX_BLOB_CHUNK (256u * 1024u)
#define PX_BLOB_MAX_CHUNKS (1u << 20) /* 256 GiB */

/* Chunks of a blob of `size` bytes: ceil(size / PX_BLOB_CHUNK). */
uint64_t px_blob_chunk_count(uint64_t size);
/* Length of chunk `index`; 0 when index is out of range. */
size_t px_blob_chunk_len(uint64_t size, uint64_t index);
/* Name a blob held in memory.  PX_ETOOBIG past PX_BLOB_MAX_CHUNKS. */
int px_blob_root(const void *data, size_t size, uint8_t root[PX_HASH_LEN]);
/* Audit path for chunk `index` of the blob (depth sibling hashes into
 * path[PX_MERKLE_MAX_DEPTH]).  Allocates the leaf list; PX_ENOMEM,
 * PX_EINVAL (index out of range). */
int px_blob_proof(const void *data, size_t size, uint64_t index,
                  uint8_t (*path)[PX_HASH_LEN], size_t *depth);
/* Check one received chunk of the blob (root, size): its length must be
 * px_blob_chunk_len and its leaf must verify with the path.  0, PX_EAUTH
 * (wrong bytes), PX_EINVAL (wrong length, index or path shape). */
int px_blob_verify_chunk(const uint8_t root[PX_HASH_LEN], uint64_t size,
                         uint64_t index, const void *chunk, size_t len,
                         const uint8_t (*path)[PX_HASH_LEN], size_t depth);

/* ---- job spec ------------------------------------------------------------ */

typedef enum {
  PX_JOB_INFER = 1, /* batch inference */
  PX_JOB_TRAIN = 2, /* reserved: training steps (not accepted yet) */
} px_job_kind_t;

typedef enum {
  PX_VERIFY_REPLICATE = 1, /* param = k in 1..PX_MARKET_MAX_REPLICAS */
  PX_VERIFY_AUDIT = 2,     /* param = p in basis points, 1..10000 */
} px_verify_t;

/* Capability bits a job may require (registry entries advertise them). */
#define PX_CAP_AVX2 (1u << 0)
#define PX_CAP_AVX512 (1u << 1)
#define PX_CAP_GPU (1u << 8) /* reserved */

typedef struct {
  uint8_t kind;         /* px_job_kind_t; only PX_JOB_INFER now */
  uint32_t train_steps; /* reserved for PX_JOB_TRAIN; 0 for infer */
  uint8_t requester[PX_PK_LEN];
  uint64_t nonce;             /* requester's job counter: distinct ids */
  uint8_t model[PX_HASH_LEN]; /* blob root of the model file */
  uint8_t input[PX_HASH_LEN]; /* blob root of the input batch */
  uint64_t input_size;        /* input blob bytes */
  uint32_t n_samples;         /* 1..PX_MARKET_MAX_SAMPLES */
  uint32_t shard_size;        /* samples per shard, >= 1 */
  uint64_t work_per_sample;   /* work units (MACs) per sample, >= 1 */
  uint32_t caps;              /* required PX_CAP_* bits */
  uint8_t policy;             /* px_verify_t */
  uint32_t policy_param;      /* k or p (basis points) */
  uint64_t price_ceiling;     /* max price per work unit */
  uint64_t deadline;          /* block height */
} px_job_spec_t;

/* Canonical encoding (appended to out).  PX_EINVAL if the spec is invalid
 * (px_job_spec_check). */
int px_job_spec_encode(const px_job_spec_t *s, px_buf_t *out);
/* Strict decode: PX_EDECODE for a bad tag or a field out of range,
 * PX_EVERSION, PX_ETRUNC, PX_ETRAILING. */
int px_job_spec_decode(const void *p, size_t n, px_job_spec_t *s);
/* 0 when every field is in range, PX_EINVAL otherwise. */
int px_job_spec_check(const px_job_spec_t *s);
/* Job id = BLAKE2b-256 of the canonical encoding. */
int px_job_spec_id(const px_job_spec_t *s, uint8_t id[PX_HASH_LEN]);
/* ceil(n_samples / shard_size). */
uint32_t px_job_shard_count(const px_job_spec_t *s);
/* Samples in shard i (the last shard may be short); 0 when out of range. */
uint32_t px_job_shard_samples(const px_job_spec_t *s, uint32_t shard);
/* Work units of shard i; PX_ERANGE on overflow, PX_EINVAL bad index. */
int px_job_shard_work(const px_job_spec_t *s, uint32_t shard, uint64_t *out);

/* ---- work units and escrow ----------------------------------------------
 * A work unit is one multiply-accumulate.  Linear in->out: in*out per
 * sample; conv: oc*ic*k*k*oh*ow; relu and pooling: 0.  The job's cost is
 * then known from shapes alone before anything runs. */

/* MACs of one layer for one sample (0 for relu/maxpool). */
uint64_t px_market_layer_macs(const px_layer_t *l);
/* Work units for n_samples through the classifier described by cfg (same
 * shape rules as px_net_new, no allocation).  PX_EINVAL bad config,
 * PX_ERANGE overflow. */
int px_market_work_units(const px_net_config_t *cfg, uint64_t n_samples,
                         uint64_t *out);
/* Escrow for a spec:  base  = W * ceiling,  W = n_samples * work_per_sample
 *   replicate:k   escrow = base * k
 *   audit:p       escrow = base + ceil(base * min(2p, 10000) / 10000)
 * (the audit budget covers twice the expected audited volume; see
 * docs/market.md).  PX_ERANGE on overflow. */
int px_market_escrow_required(const px_job_spec_t *s, uint64_t *out);

/* ---- commitments, evidence, audits -------------------------------------- */

/* A provider's binding claim about one shard.  output is the trace's last
 * leaf (px_merkle_leaf over the shard's logits bytes); trace_root the Merkle
 * root over n_layers per-layer leaves (px_trace_root).  sig is Ed25519 by
 * provider over "plexus-market-commitment-v1" || encoding-without-sig. */
typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint8_t output[PX_HASH_LEN];
  uint8_t trace_root[PX_HASH_LEN];
  uint32_t n_layers; /* 1..PX_TRACE_MAX_LAYERS */
  uint8_t provider[PX_PK_LEN];
  uint8_t sig[PX_SIG_LEN];
} px_commitment_t;

/* Fill provider and sig from kp. */
int px_commitment_sign(px_commitment_t *c, const px_keypair_t *kp);
/* 0 or PX_EBADSIG / PX_EINVAL. */
int px_commitment_verify(const px_commitment_t *c);
int px_commitment_encode(const px_commitment_t *c, px_buf_t *out);
int px_commitment_decode(const void *p, size_t n, px_commitment_t *c);
/* Equivocation: same provider, job and shard, different claims, both
 * signatures valid.  0 when (a, b) is evidence; PX_EINVAL otherwise
 * (PX_EBADSIG if a signature fails). */
int px_commitment_conflict(const px_commitment_t *a, const px_commitment_t *b);
/* Evidence = tag, version, a, b (a's encoding sorted first: canonical). */
int px_evidence_encode(const px_commitment_t *a, const px_commitment_t *b,
                       px_buf_t *out);
/* Decodes and checks (px_commitment_conflict): only valid evidence decodes. */
int px_evidence_decode(const void *p, size_t n, px_commitment_t *a,
                       px_commitment_t *b);

/* Is this shard audited?  h = BLAKE2b-256("plexus-audit" || randomness ||
 * job_id || u32le shard); selected when u64le(h[0..8]) mod 10000 < p_bps.
 * randomness must be chain randomness revealed after the commitment landed,
 * so the provider could not know.  Deterministic. */
int px_market_audit_selected(const uint8_t randomness[PX_HASH_LEN],
                             const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                             uint32_t p_bps);
/* Incentive bound checked at registration and matching: cheating on a shard
 * worth `reward` is caught with probability p, so it is a loss in
 * expectation when stake * p >= reward, i.e. stake >= reward / p.  0 when it
 * holds, PX_EFUNDS when not, PX_EINVAL for p_bps 0 or > 10000. */
int px_market_stake_check(uint64_t stake, uint64_t reward, uint32_t p_bps);

/* ---- settlement arithmetic -----------------------------------------------
 * Pure, overflow-checked.  The invariant: paid <= escrow, always. */

typedef struct {
  uint64_t escrow;
  uint64_t paid;
} px_settle_t;

/* price * work, PX_ERANGE on overflow. */
int px_settle_shard_amount(uint64_t price, uint64_t work, uint64_t *out);
/* paid += amount; PX_EFUNDS (nothing changes) if that would pass escrow. */
int px_settle_pay(px_settle_t *s, uint64_t amount);
/* escrow - paid. */
uint64_t px_settle_refund(const px_settle_t *s);

typedef struct {
  uint32_t burn_bps, winner_bps, requester_bps; /* must sum to 10000 */
} px_slash_params_t;

/* Split a slashed amount; rounding remainders are burned, so the three
 * parts sum exactly to `amount`.  PX_EINVAL for bad params. */
int px_slash_split(uint64_t amount, const px_slash_params_t *p, uint64_t *burn,
                   uint64_t *winner, uint64_t *requester);

/* ---- scheduler ------------------------------------------------------------
 * The requester's side of one job, as a state machine.  Shards move
 *   OPEN -> RUNNING (leases out) -> VERIFY -> [AUDIT] -> ACCEPTED (paid)
 * with DISPUTE when two results differ.  Effects (px_sched_poll) tell the
 * runtime what to do; events (px_sched_handle) tell the scheduler what
 * happened.  Invariants (asserted, and tested): a shard is accepted and its
 * work paid once; payments never exceed escrow; a provider never holds two
 * replicas of one shard; a slashed or vanished provider gets no new lease;
 * a provider that refused a lease gets none before its back-off ends
 * (250 ms doubling per refusal in a row, up to 16 s; a result resets it),
 * and a shard is never left without an offer while some provider could
 * take it (docs/market.md "Scheduler").
 * Commitment signatures are checked by the runtime before the event. */

typedef struct {
  uint8_t id[PX_PK_LEN];
  uint32_t caps;  /* PX_CAP_* */
  uint64_t price; /* per work unit */
  uint64_t stake;
  uint32_t reputation; /* 0..10000 */
  uint64_t speed;      /* measured work units per second, >= 1 */
  uint32_t slots;      /* concurrent leases it accepts, >= 1 */
} px_provider_info_t;

typedef struct {
  uint32_t min_reputation;  /* providers below are not used */
  uint32_t lease_slack_pct; /* lease = expected time * pct / 100 (>= 100) */
  uint64_t lease_grace_ms;  /* + this */
  uint32_t max_expiries;    /* a provider with this many expiries is used
                               only for shards nobody else can take */
} px_sched_opts_t;

void px_sched_opts_default(px_sched_opts_t *o);

typedef enum {
  PX_SCHED_EV_TICK = 1,         /* time passes: leases may expire */
  PX_SCHED_EV_LEASE_REJECTED,   /* provider refused (busy): backed off */
  PX_SCHED_EV_COMMITTED,        /* a worker's verified commitment */
  PX_SCHED_EV_AUDIT_SEED,       /* chain randomness after the commitment */
  PX_SCHED_EV_AUDIT_RESULT,     /* an auditor's verified commitment */
  PX_SCHED_EV_DISPUTE_RESOLVED, /* verdict: winner, loser */
  PX_SCHED_EV_PROVIDER_GONE,    /* left the registry / unreachable */
  PX_SCHED_EV_HEIGHT,           /* chain height, for the job deadline */
} px_sched_ev_type_t;

typedef struct {
  px_sched_ev_type_t type;
  uint64_t now_ms; /* every event carries the time */
  uint32_t shard;
  uint8_t provider[PX_PK_LEN]; /* committer / auditor / winner / gone */
  uint8_t loser[PX_PK_LEN];    /* DISPUTE_RESOLVED */
  uint8_t output[PX_HASH_LEN];
  uint8_t trace_root[PX_HASH_LEN];
  uint32_t n_layers;
  uint8_t randomness[PX_HASH_LEN]; /* AUDIT_SEED */
  uint64_t height;                 /* HEIGHT */
} px_sched_event_t;

typedef enum {
  PX_SCHED_FX_ASSIGN = 1, /* lease shard to provider until deadline_ms */
  PX_SCHED_FX_EXPIRED,    /* a lease ran out (re-offered by a later ASSIGN) */
  PX_SCHED_FX_WANT_SEED,  /* fetch audit randomness for this shard */
  PX_SCHED_FX_AUDIT,      /* lease the shard to `provider` as auditor */
  PX_SCHED_FX_ACCEPT,     /* shard result accepted (output) */
  PX_SCHED_FX_PAY,        /* pay provider `amount` for shard */
  PX_SCHED_FX_DISPUTE,    /* open a dispute: provider vs other */
  PX_SCHED_FX_SLASH,      /* provider lost a dispute */
  PX_SCHED_FX_SETTLE,     /* job over: paid total, refund */
} px_sched_fx_type_t;

typedef struct {
  px_sched_fx_type_t type;
  uint32_t shard;
  uint8_t provider[PX_PK_LEN];
  uint8_t other[PX_PK_LEN];
  uint64_t deadline_ms;
  uint64_t amount;             /* PAY; SETTLE: total paid */
  uint64_t refund;             /* SETTLE */
  uint8_t output[PX_HASH_LEN]; /* ACCEPT */
  uint8_t reoffer;             /* ASSIGN of a shard that had a lease expire */
} px_sched_fx_t;

typedef struct px_sched px_sched_t;

/* A scheduler for one job (spec must pass px_job_spec_check) over a
 * registry view of n providers (copied; n <= PX_SCHED_MAX_PROVIDERS).
 * escrow is what JobOpen locked (>= px_market_escrow_required).  Nothing is
 * assigned until the first event.  PX_EINVAL, PX_ENOMEM. */
int px_sched_new(const px_job_spec_t *spec, const px_sched_opts_t *opts,
                 const px_provider_info_t *providers, size_t n, uint64_t escrow,
                 px_sched_t **out);
void px_sched_free(px_sched_t *s); /* NULL ok */
/* Feed one event.  PX_EPROTO for an event the state does not allow (a
 * commitment without a lease, a second result from one provider), PX_ENOENT
 * for an unknown provider, PX_EINVAL for a bad shard; the state is
 * unchanged on error. */
int px_sched_handle(px_sched_t *s, const px_sched_event_t *ev);
/* Next effect: 1 and *fx filled, or 0 when none is queued. */
int px_sched_poll(px_sched_t *s, px_sched_fx_t *fx);
/* 1 once SETTLE has been emitted. */
int px_sched_done(const px_sched_t *s);
/* Counters for reports and tests. */
typedef struct {
  uint32_t shards, accepted, running, disputes, audits, expiries, slashed;
  uint64_t paid, escrow;
} px_sched_stats_t;
void px_sched_stats(const px_sched_t *s, px_sched_stats_t *st);

/* Persist: the full state (spec, options, registry view, shards, payments).
 * Only with no effect queued (PX_ESTATE otherwise): save after draining.
 * A restored scheduler behaves exactly as the saved one would have. */
int px_sched_save(const px_sched_t *s, px_buf_t *out);
/* Strict: every index, enum and invariant checked (PX_EDECODE ...). */
int px_sched_load(const void *p, size_t n, px_sched_t **out);

/* ---- dispute game --------------------------------------------------------
 * Two commitments to one shard disagree.  Both traces have n layers; the
 * shard's input (leaf "-1") is agreed, the last leaves (the output hashes)
 * differ.  Invariant: leaf lo agrees (lo = -1: the input), leaf hi differs.
 * Each round the referee challenges mid = lo + (hi - lo) / 2; both parties
 * answer with their leaf at mid and a Merkle proof against their committed
 * root; agree -> lo = mid, differ -> hi = mid.  After at most
 * ceil(log2(n + 1)) rounds hi = lo + 1: layer hi is where they part, and
 * re-executing that one layer from the agreed input decides.  A party that
 * answers with a bad proof, a wrong index, or whose revealed last leaf
 * contradicts its signed output loses at once. */

#define PX_DISPUTE_MAX_MACS (64ull * 1024 * 1024) /* one layer, on chain */
#define PX_DISPUTE_MAX_FLOATS (16u * 1024 * 1024)

typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint32_t round;
  uint32_t index; /* layer whose leaf is asked */
} px_dispute_challenge_t;

typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint32_t round;
  uint32_t index;
  uint8_t leaf[PX_HASH_LEN];
  uint32_t depth;
  uint8_t path[PX_MERKLE_MAX_DEPTH][PX_HASH_LEN];
} px_dispute_response_t;

int px_dispute_challenge_encode(const px_dispute_challenge_t *c, px_buf_t *out);
int px_dispute_challenge_decode(const void *p, size_t n,
                                px_dispute_challenge_t *c);
int px_dispute_response_encode(const px_dispute_response_t *r, px_buf_t *out);
int px_dispute_response_decode(const void *p, size_t n,
                               px_dispute_response_t *r);
/* Answer a challenge from one's own trace leaves (an honest party). */
int px_dispute_respond(const px_dispute_challenge_t *c,
                       const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                       px_dispute_response_t *r);

typedef enum {
  PX_DISPUTE_OPEN = 0,   /* a challenge is outstanding */
  PX_DISPUTE_FOUND = 1,  /* bisection done: layer found */
  PX_DISPUTE_A_LOST = 2, /* A misbehaved in the game */
  PX_DISPUTE_B_LOST = 3,
} px_dispute_status_t;

typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard, n, round;
  int64_t lo, hi;
  uint8_t root[2][PX_HASH_LEN];
  uint8_t out[2][PX_HASH_LEN];
  uint8_t lo_leaf[PX_HASH_LEN]; /* agreed leaf at lo (unset while lo = -1) */
  uint8_t hi_leaf[2][PX_HASH_LEN];
  uint8_t got[2];
  uint8_t ans[2][PX_HASH_LEN];
  px_dispute_status_t status;
} px_dispute_t;

/* Start from the two conflicting commitments (same job and shard, same
 * n_layers, different outputs).  PX_EINVAL otherwise. */
int px_dispute_init(px_dispute_t *d, const px_commitment_t *a,
                    const px_commitment_t *b);
/* The current challenge (PX_ESTATE when not OPEN). */
int px_dispute_challenge(const px_dispute_t *d, px_dispute_challenge_t *c);
/* Party 0 (A) or 1 (B) answers.  A bad answer ends the game against that
 * party (returns 0; see status).  PX_EPROTO for an answer to another round
 * or a second answer; PX_ESTATE when not OPEN. */
int px_dispute_answer(px_dispute_t *d, int party,
                      const px_dispute_response_t *r);
/* After FOUND: the layer and the leaves to judge by.  in_leaf is NULL-ish
 * (has_in = 0) when the layer is the first one (its input is the shard's
 * input, checked against the input blob instead). */
int px_dispute_result(const px_dispute_t *d, uint32_t *layer, int *has_in,
                      uint8_t in_leaf[PX_HASH_LEN],
                      uint8_t claim[2][PX_HASH_LEN]);

/* One layer re-executed by the referee.  Floats are little-endian f32. */
typedef struct {
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint32_t layer; /* index in the trace */
  uint8_t kind;   /* px_layer_kind_t */
  uint32_t n;     /* samples */
  uint32_t in_c, in_h, in_w, out_c, k, pad;
  uint8_t weights_ref[PX_HASH_LEN]; /* hash of weights || bias bytes */
  const float *input;               /* n * in_c*in_h*in_w */
  const float *weights, *bias;
  size_t n_input, n_weights, n_bias;
  uint8_t claim[2][PX_HASH_LEN]; /* A's and B's claimed output leaves */
} px_dispute_layer_t;

/* Canonical encoding; decoded arrays are copied to heap (caller frees
 * with px_dispute_layer_release).  Sizes must match the shapes; PX_ELIMIT
 * when the layer's MACs pass PX_DISPUTE_MAX_MACS ("layer too large for
 * on-chain re-execution"). */
int px_dispute_layer_encode(const px_dispute_layer_t *l, px_buf_t *out);
int px_dispute_layer_decode(const void *p, size_t n, px_dispute_layer_t *l);
void px_dispute_layer_release(px_dispute_layer_t *l);
/* Shape and cost checks; PX_ELIMIT past max_macs (0: PX_DISPUTE_MAX_MACS). */
int px_dispute_layer_check(const px_dispute_layer_t *l, uint64_t max_macs);
/* Hash that weights_ref must equal: BLAKE2b-256(weights bytes || bias). */
void px_dispute_weights_ref(const float *w, size_t nw, const float *b,
                            size_t nb, uint8_t out[PX_HASH_LEN]);

typedef enum {
  PX_VERDICT_A = 1, /* A computed the layer right, B did not */
  PX_VERDICT_B = 2,
  PX_VERDICT_NEITHER = 3, /* both wrong: both slashed */
} px_verdict_t;

/* The referee: check the input against in_leaf (or, for the first layer,
 * against the input hash the caller derived from the input blob) and the
 * weights against weights_ref, re-execute with the deterministic kernels
 * (c may be NULL), hash the output as a trace leaf and compare with the two
 * claims.  PX_ELIMIT (too costly), PX_EAUTH (input or weights do not match),
 * PX_EINVAL, PX_ENOMEM. */
int px_dispute_verdict(px_compute_t *c, const px_dispute_layer_t *l,
                       const uint8_t in_leaf[PX_HASH_LEN], uint64_t max_macs,
                       px_verdict_t *out);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_MARKET_H */
