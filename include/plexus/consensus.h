/*
 * plexus/consensus.h — Tendermint BFT consensus as a sans-I/O state machine.
 *
 * The core implements Algorithm 1 of "The latest gossip on BFT consensus"
 * (Buchman, Kwon, Milosevic, arXiv:1807.04938; docs/consensus.md maps every
 * rule to its line).  A proposed value (a block) is opaque bytes identified
 * by its BLAKE2b-256 hash (px_hash); the application supplies the value a
 * proposer proposes (get_value) and the deterministic validity check
 * (valid).  Votes are counted by voting power: "2f+1" means more than 2/3
 * of the total power, "f+1" more than 1/3.
 *
 * Sans-I/O (DESIGN.md principle 1): the runtime feeds events — start a
 * height, bytes from the network, a timeout that fired — and drains effects
 * with px_cons_poll(), in order:
 *   PERSIST           append a WAL record; when fx.sync is set (the node's
 *                     own signed message) it must be durable (fsync) before
 *                     any later effect is performed;
 *   BROADCAST         send the bytes to every validator (self excluded: the
 *                     core has already counted its own messages);
 *   SCHEDULE_TIMEOUT  call px_cons_on_timeout(h, r, step) at time `at`;
 *   DECIDE            the value of a height with its commit certificate;
 *                     the core then waits for px_cons_start(height + 1);
 *   EVIDENCE          two conflicting signed votes from one validator.
 *
 * Messages (all start with the codec envelope: u16 type tag, u8 version):
 *   PROPOSAL  (height, round, value bytes, validRound, proposer, sig)
 *   PREVOTE / PRECOMMIT (height, round, value hash or nil, validator, sig)
 *   DECISION  (value, commit) — catch-up for a node left behind at a height
 *   EVIDENCE  (vote a, vote b)
 * Signatures are Ed25519 over a canonical encoding that includes the chain
 * id (px_cons_*_sign_bytes); decoders are strict (trailing bytes, unknown
 * flags and non-canonical forms are rejected).
 *
 * Double-sign protection: the core never signs a different message for a
 * (height, round, step) it has signed, and never signs at a (height, round,
 * step) below its last signed one.  Its memory of what it signed comes from
 * PERSIST(OWN) records, so after a restart the runtime replays its WAL
 * (px_cons_replay) before the core signs anything.
 *
 * Threading: a px_cons_t is used by one thread at a time.  The app
 * callbacks are called synchronously from inside events; they must not call
 * back into the core.
 */
#ifndef PLEXUS_CONSENSUS_H
#define PLEXUS_CONSENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_CONS_VERSION 1
#define PX_CONS_MAX_VALIDATORS 128
#define PX_CONS_CHAIN_ID_MAX 64 /* incl. NUL */
#define PX_CONS_MAX_VALUE_DEFAULT (4u << 20)
#define PX_CONS_MAX_ROUND 10000u          /* rounds above are rejected */
#define PX_CONS_MAX_POWER (INT64_MAX / 8) /* total voting power cap */
#define PX_CONS_VOTE_LEN 114              /* encoded vote size */

/* Envelope type tags (0x03xx: the consensus range). */
typedef enum {
  PX_CONS_MSG_PROPOSAL = 0x0301,
  PX_CONS_MSG_PREVOTE = 0x0302,
  PX_CONS_MSG_PRECOMMIT = 0x0303,
  PX_CONS_MSG_COMMIT = 0x0304,
  PX_CONS_MSG_DECISION = 0x0305,
  PX_CONS_MSG_EVIDENCE = 0x0306,
} px_cons_msg_type_t;

/* step_p of Algorithm 1; RESEND is the gossip timer (not in Alg. 1). */
typedef enum {
  PX_CONS_STEP_PROPOSE = 0,
  PX_CONS_STEP_PREVOTE = 1,
  PX_CONS_STEP_PRECOMMIT = 2,
  PX_CONS_STEP_RESEND = 3,
} px_cons_step_t;

/* ---- validator sets and proposer selection ----------------------------- */

typedef struct {
  uint8_t pk[PX_PK_LEN];
  uint64_t power;   /* > 0 */
  int64_t priority; /* CometBFT proposer priority */
} px_cons_validator_t;

typedef struct {
  uint32_t n;
  uint64_t total; /* sum of powers, <= PX_CONS_MAX_POWER */
  px_cons_validator_t v[PX_CONS_MAX_VALIDATORS];
} px_cons_valset_t;

/* Validators in the given order (the order is part of consensus: indices
 * in messages refer to it), priorities 0.  PX_EINVAL for n 0 or too many,
 * a zero power, a duplicate key; PX_ERANGE when the total is too large. */
int px_cons_valset_init(px_cons_valset_t *vs, const uint8_t (*pks)[PX_PK_LEN],
                        const uint64_t *powers, uint32_t n);
/* proposer(h, r) for the height whose set (with its priorities) is vs:
 * the validator chosen by the (round+1)-th step of CometBFT's weighted
 * round robin run on a copy (spec/consensus/proposer-selection.md). */
uint32_t px_cons_valset_proposer(const px_cons_valset_t *vs, uint32_t round);
/* One selection step in place: the set for the next height. */
void px_cons_valset_advance(px_cons_valset_t *vs);
/* Index of pk, or -1. */
int px_cons_valset_find(const px_cons_valset_t *vs,
                        const uint8_t pk[PX_PK_LEN]);

/* ---- messages ---------------------------------------------------------- */

typedef struct {
  uint64_t height;
  uint32_t round;
  int32_t valid_round;  /* -1, or 0 <= valid_round < round */
  uint16_t proposer;    /* validator index */
  const uint8_t *value; /* decoded: points into the input */
  size_t value_len;
  uint8_t sig[PX_SIG_LEN];
} px_cons_proposal_t;

typedef struct {
  px_cons_msg_type_t type; /* PREVOTE or PRECOMMIT */
  uint64_t height;
  uint32_t round;
  uint8_t has_value;         /* 0: nil (hash all zero) */
  uint8_t hash[PX_HASH_LEN]; /* id(v) */
  uint16_t validator;
  uint8_t sig[PX_SIG_LEN];
} px_cons_vote_t;

typedef struct {
  uint16_t validator;
  uint8_t sig[PX_SIG_LEN];
} px_cons_commit_sig_t;

/* A commit certificate: precommits for hash at (height, round) carrying
 * more than 2/3 of the voting power; validators strictly increasing. */
typedef struct {
  uint64_t height;
  uint32_t round;
  uint8_t hash[PX_HASH_LEN];
  uint16_t n;
  px_cons_commit_sig_t sigs[PX_CONS_MAX_VALIDATORS];
} px_cons_commit_t;

/* Two conflicting signed votes of one validator: same type, height, round
 * and validator, different (has_value, hash).  Canonical order: a < b by
 * (has_value, hash). */
typedef struct {
  px_cons_vote_t a, b;
} px_cons_evidence_t;

/* Bytes that are signed (chain id included); out gets them appended. */
int px_cons_proposal_sign_bytes(const char *chain_id,
                                const px_cons_proposal_t *p, px_buf_t *out);
int px_cons_vote_sign_bytes(const char *chain_id, const px_cons_vote_t *v,
                            px_buf_t *out);

/* Sign in place (fills sig). */
int px_cons_proposal_sign(const char *chain_id, const px_keypair_t *kp,
                          px_cons_proposal_t *p);
int px_cons_vote_sign(const char *chain_id, const px_keypair_t *kp,
                      px_cons_vote_t *v);
/* 0 when the signature verifies under pk, PX_EBADSIG otherwise. */
int px_cons_proposal_verify(const char *chain_id, const uint8_t pk[PX_PK_LEN],
                            const px_cons_proposal_t *p);
int px_cons_vote_verify(const char *chain_id, const uint8_t pk[PX_PK_LEN],
                        const px_cons_vote_t *v);

/* Encoders append to out and leave it as it was on error (PX_EINVAL for
 * what the decoder would reject). */
int px_cons_proposal_encode(const px_cons_proposal_t *p, px_buf_t *out);
int px_cons_vote_encode(const px_cons_vote_t *v, px_buf_t *out);
int px_cons_commit_encode(const px_cons_commit_t *c, px_buf_t *out);
int px_cons_evidence_encode(const px_cons_evidence_t *e, px_buf_t *out);
int px_cons_decision_encode(const uint8_t *value, size_t value_len,
                            const px_cons_commit_t *c, px_buf_t *out);

/* Strict decoders: PX_ETRUNC, PX_ETRAILING, PX_ETOOBIG (value over
 * max_value), PX_EDECODE (wrong type tag, bad flag, non-zero nil hash,
 * round or valid_round out of range, unsorted commit), PX_EVERSION.
 * Whatever decodes re-encodes to the identical bytes. */
int px_cons_proposal_decode(const uint8_t *p, size_t len, size_t max_value,
                            px_cons_proposal_t *out);
int px_cons_vote_decode(const uint8_t *p, size_t len, px_cons_vote_t *out);
int px_cons_commit_decode(const uint8_t *p, size_t len, px_cons_commit_t *out);
int px_cons_evidence_decode(const uint8_t *p, size_t len,
                            px_cons_evidence_t *out);
int px_cons_decision_decode(const uint8_t *p, size_t len, size_t max_value,
                            const uint8_t **value, size_t *value_len,
                            px_cons_commit_t *commit);

/* Read the envelope and (height, round) of any consensus message without
 * a full decode (the runtime's routing).  round is 0 for COMMIT-less
 * kinds that have none.  PX_EDECODE/PX_ETRUNC/PX_EVERSION. */
int px_cons_msg_peek(const uint8_t *p, size_t len, px_cons_msg_type_t *type,
                     uint64_t *height, uint32_t *round);

/* Check a commit against a validator set: every signature a valid
 * precommit for (height, round, hash) by a member, no member twice, power
 * more than 2/3.  expect_hash (optional) must equal c->hash.  PX_EBADSIG,
 * PX_EPROTO (unknown validator, duplicate), PX_EAUTH (not enough power). */
int px_cons_commit_verify(const char *chain_id, const px_cons_valset_t *vs,
                          const px_cons_commit_t *c,
                          const uint8_t expect_hash[PX_HASH_LEN]);
/* Check evidence: both votes well formed, conflicting, by a member, both
 * signatures valid.  PX_EPROTO (not conflicting, not a member, not
 * canonical order), PX_EBADSIG. */
int px_cons_evidence_verify(const char *chain_id, const px_cons_valset_t *vs,
                            const px_cons_evidence_t *e);

/* ---- the core ---------------------------------------------------------- */

typedef struct {
  /* Append the value to propose at (height, round) to out (getValue() of
   * Alg. 1).  Non-zero: nothing is proposed this round (timeouts proceed). */
  int (*get_value)(void *ud, uint64_t height, uint32_t round, px_buf_t *out);
  /* valid(v) of Alg. 1: 1 when valid, 0 when not.  Must be deterministic
   * and the same on every correct node; the core caches the answer. */
  int (*valid)(void *ud, uint64_t height, const uint8_t *value, size_t len);
  /* Optional signature check (e.g. a verification cache); NULL means
   * px_verify.  Must return exactly what px_verify would. */
  int (*verify)(void *ud, const uint8_t pk[PX_PK_LEN], const uint8_t *msg,
                size_t n, const uint8_t sig[PX_SIG_LEN]);
  void *ud;
} px_cons_app_t;

typedef struct {
  char chain_id[PX_CONS_CHAIN_ID_MAX];
  px_keypair_t key; /* copied; ignored unless has_key */
  int has_key;      /* 0: observer (follows, never signs) */
  /* timeoutX(r) = X_ms + r * X_delta_ms (Alg. 1, section "timeouts"). */
  uint64_t propose_ms, propose_delta_ms;
  uint64_t prevote_ms, prevote_delta_ms;
  uint64_t precommit_ms, precommit_delta_ms;
  /* Re-broadcast own current-round messages this often (gossip under
   * message loss; 0 = never). */
  uint64_t resend_ms;
  size_t max_value; /* proposal value cap (bytes) */
  px_cons_app_t app;
} px_cons_config_t;

/* Defaults: propose 3000+500r ms, prevote/precommit 1000+500r ms, resend
 * 1000 ms, max_value 4 MiB, chain_id "plexus". */
void px_cons_config_default(px_cons_config_t *cfg);

typedef enum {
  PX_CONS_FX_BROADCAST = 1,
  PX_CONS_FX_SCHEDULE_TIMEOUT,
  PX_CONS_FX_PERSIST,
  PX_CONS_FX_DECIDE,
  PX_CONS_FX_EVIDENCE,
} px_cons_fx_kind_t;

/* WAL record types (the PERSIST payload; docs/consensus.md). */
typedef enum {
  PX_CONS_WAL_MSG = 1,     /* a verified message received: its bytes */
  PX_CONS_WAL_OWN = 2,     /* own signed: u64 h, u32 r, u8 step, bytes msg */
  PX_CONS_WAL_TIMEOUT = 3, /* u64 h, u32 r, u8 step: a timeout acted on */
  PX_CONS_WAL_HEIGHT = 4,  /* u64 h: px_cons_start(h) */
} px_cons_wal_type_t;

typedef struct {
  px_cons_fx_kind_t kind;
  uint64_t height;     /* TIMEOUT, DECIDE */
  uint32_t round;      /* TIMEOUT, DECIDE */
  px_cons_step_t step; /* TIMEOUT */
  uint64_t at;         /* TIMEOUT: absolute ms */
  uint8_t wal_type;    /* PERSIST: a px_cons_wal_type_t */
  int sync;            /* PERSIST: fsync before the next effect */
  px_buf_t data;       /* BROADCAST msg, PERSIST payload, DECIDE value,
                          EVIDENCE encoding */
  px_buf_t commit;     /* DECIDE: encoded commit certificate */
} px_cons_fx_t;

typedef struct px_cons px_cons_t;

typedef struct {
  uint64_t height;
  uint32_t round;
  px_cons_step_t step;
  int started, decided;
  int32_t locked_round, valid_round;
  uint8_t locked_hash[PX_HASH_LEN], valid_hash[PX_HASH_LEN];
  int self; /* own validator index at this height, -1 if none */
  uint64_t sign_floor;
  uint64_t last_signed_height;
  uint32_t last_signed_round;
  int last_signed_step; /* -1 never signed */
} px_cons_state_t;

typedef struct {
  uint64_t msgs_in, dups, bad_sig, not_member, stale, invalid_values;
  uint64_t evidence, signed_msgs, sign_refused, decisions, rounds_skipped;
} px_cons_stats_t;

/* The config is copied (wipe its key afterwards).  PX_EINVAL on a bad
 * config (no valid callback, empty or unprintable chain id, max_value 0). */
int px_cons_new(const px_cons_config_t *cfg, px_cons_t **out);
void px_cons_free(px_cons_t *c); /* NULL ok */

/* Begin height h with validator set vs (copied): Alg. 1 L10/L54
 * StartRound(0).  h must exceed every height started before (PX_ESTATE). */
int px_cons_start(px_cons_t *c, uint64_t height, const px_cons_valset_t *vs,
                  uint64_t now);
/* Bytes from the network (any consensus message).  0 when accepted and
 * acted on; PX_EDUP (seen), PX_EBADSIG, PX_EPROTO (not a member, not the
 * proposer, conflicting), PX_ESTATE (another height, or not started),
 * decode errors.  Rejected input changes nothing but the stats. */
int px_cons_on_message(px_cons_t *c, const uint8_t *msg, size_t len,
                       uint64_t now);
/* A SCHEDULE_TIMEOUT came due (Alg. 1 L57-L67; RESEND re-broadcasts). */
int px_cons_on_timeout(px_cons_t *c, uint64_t height, uint32_t round,
                       px_cons_step_t step, uint64_t now);
/* Replay one WAL record after a restart (no PERSIST is emitted for it).
 * Call for every record before px_cons_start (only OWN records matter then:
 * they restore the double-sign guard) and again after it (records of the
 * started height are re-processed).  PX_EDECODE on a malformed record. */
int px_cons_replay(px_cons_t *c, uint8_t wal_type, const uint8_t *payload,
                   size_t len, uint64_t now);
/* Never sign at a height below floor (the runtime sets it after a WAL it
 * could not fully read: to one above the last height it saw). */
void px_cons_set_sign_floor(px_cons_t *c, uint64_t floor);

/* Next effect: 1 written to fx, 0 none.  The caller releases fx. */
int px_cons_poll(px_cons_t *c, px_cons_fx_t *fx);
void px_cons_fx_release(px_cons_fx_t *fx);

void px_cons_get_state(const px_cons_t *c, px_cons_state_t *st);
void px_cons_get_stats(const px_cons_t *c, px_cons_stats_t *st);
const char *px_cons_step_name(int step);

/* ---- write-ahead log (file I/O; the runtime's helper) ------------------ */
/*
 * A WAL file is a sequence of records:
 *   u32 len (LE) | u8 type | payload (len - 1 bytes) | 8-byte checksum
 * where the checksum is the first 8 bytes of BLAKE2b-256 over the length,
 * type and payload.  len is at most PX_WAL_MAX_RECORD.
 */
#define PX_WAL_MAX_RECORD ((uint32_t)PX_CONS_MAX_VALUE_DEFAULT + 4096u)
#define PX_WAL_OVERHEAD 13u

typedef struct {
  uint8_t type;
  const uint8_t *payload; /* points into the scanned buffer */
  size_t len;
  size_t offset; /* of the record's first byte */
} px_wal_record_t;

/* Append the framing of one record to out. */
int px_wal_frame(px_buf_t *out, uint8_t type, const void *payload, size_t n);
/* Scan the record at *pos in buf[0..len).  1: one record, *pos moves past
 * it; 0: clean end of data; PX_ETRUNC: a torn record at the tail (the
 * file ends inside it); PX_EAUTH: checksum mismatch (corruption);
 * PX_ETOOBIG / PX_EDECODE: impossible length.  *pos is unchanged on error:
 * it is the length of the good prefix. */
int px_wal_next(const uint8_t *buf, size_t len, size_t *pos,
                px_wal_record_t *rec);

typedef struct px_wal px_wal_t;
/* Open (create, mode 0600) for appending. */
int px_wal_open(const char *path, px_wal_t **out);
/* Append a record; sync != 0 fsyncs before returning. */
int px_wal_append(px_wal_t *w, uint8_t type, const void *payload, size_t n,
                  int sync);
int px_wal_sync(px_wal_t *w);
void px_wal_close(px_wal_t *w); /* NULL ok */

typedef struct {
  uint64_t records;
  size_t good_len; /* bytes of whole, checked records */
  size_t file_len;
  int tail_err;        /* 0, or the px_wal_next error at good_len */
  uint64_t max_height; /* highest height named in a good record */
} px_wal_replay_info_t;

/* Read path and call fn for every good record in order (fn's non-zero
 * return stops the replay and is returned).  A damaged tail is not an
 * error here: info->tail_err says what was found at info->good_len, and
 * the caller reports it (px_wal_describe) and sets the core's sign floor
 * to info->max_height + 1.  PX_ENOENT when there is no file. */
int px_wal_replay_file(const char *path,
                       int (*fn)(void *ud, const px_wal_record_t *rec),
                       void *ud, px_wal_replay_info_t *info);
/* Same over bytes in memory (the simulator; the fuzz target). */
int px_wal_replay_mem(const uint8_t *buf, size_t len,
                      int (*fn)(void *ud, const px_wal_record_t *rec), void *ud,
                      px_wal_replay_info_t *info);
/* One line for the user, e.g. "WAL x: torn record at byte 1234 of 1300
 * (crash during write); 57 good records replayed; signing resumes at
 * height 9". */
void px_wal_describe(const char *path, const px_wal_replay_info_t *info,
                     char *out, size_t cap);
/* Cut the file to good_len (after the damage was reported). */
int px_wal_truncate(const char *path, size_t good_len);
/* The height a record names (0 when it names none or is malformed). */
uint64_t px_wal_record_height(const px_wal_record_t *rec);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_CONSENSUS_H */
