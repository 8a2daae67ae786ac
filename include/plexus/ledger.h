/*
 * plexus/ledger.h — the replicated state machine: accounts, transactions,
 * native contracts, blocks, the authenticated state root, and its LMDB store.
 *
 * Everything here is a pure, deterministic function of its inputs (no
 * clock, no floats, no I/O) except the px_ledger_store_* functions, which
 * persist to LMDB.  docs/ledger.md documents every encoding.
 *
 * The life of a block, as consensus and the node drive it:
 *
 *   proposer:  px_ledger_block_make(state, proposer_pk, time, txs, &bytes)
 *   everyone:  px_ledger_block_decode(bytes) -> px_ledger_block_t
 *              px_ledger_block_validate(state, &blk)   (ProcessProposal)
 *   decided:   px_ledger_apply_block(state, &blk, results)  -> new root
 *              px_ledger_store_commit(store, state, bytes, &blk, results)
 *
 * Transaction validity has two layers.  "Admission" failures (malformed,
 * bad signature, wrong chain id, wrong nonce, fee below the minimum or not
 * payable, over-size) change nothing: px_ledger_check_tx reports them to the
 * mempool, and apply_block records them with their code but no effect.  A
 * transaction that is admitted pays its fee (burned) and bumps the nonce
 * whatever happens next; if its contract procedure then fails, the
 * procedure's writes are undone and its error is recorded in the results.
 *
 * Error codes (all negative PX_E values from base.h); each admission
 * failure has its own, so callers can tell them apart:
 */
#ifndef PLEXUS_LEDGER_H
#define PLEXUS_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* malformed encoding: PX_EDECODE / PX_ETRUNC / PX_ETRAILING / PX_EVERSION */
/* bad signature:      PX_EBADSIG                                          */
/* over-size:          PX_ETOOBIG                                          */
#define PX_LEDGER_E_CHAIN PX_ECHAIN        /* wrong chain id */
#define PX_LEDGER_E_NONCE_OLD PX_ENONCE    /* nonce < account nonce (replay) */
#define PX_LEDGER_E_NONCE_GAP PX_ENONCEGAP /* nonce > account nonce */
#define PX_LEDGER_E_FEE_LOW PX_EFEE        /* fee below params minimum */
#define PX_LEDGER_E_FUNDS PX_EFUNDS        /* insufficient balance / stake */
#define PX_LEDGER_E_OVERFLOW PX_ERANGE     /* a u64 would overflow */

/* ---- limits -------------------------------------------------------------
 */
#define PX_LEDGER_CHAIN_ID_MAX 48 /* incl. NUL; printable ASCII */
#define PX_LEDGER_MONIKER_MAX 48  /* incl. NUL */
/* Hard cap on any tx encoding.  params.max_tx_size (<= this) bounds every
 * tx except the market's DISPUTE, which carries one layer's weights and may
 * reach PX_MARKET_DISPUTE_TX_MAX (= this cap; px_ledger_tx_size_limit). */
#define PX_LEDGER_TX_MAX_SIZE (2u * 1024 * 1024)
#define PX_LEDGER_BLOCK_MAX_TXS 20000   /* hard cap; params.max_block_txs <= */
#define PX_LEDGER_MAX_VALIDATORS 256    /* registered validators (hard cap) */
#define PX_LEDGER_MAX_UNBONDING 16      /* pending unbonding entries/account */
#define PX_LEDGER_KEY_MAX 128           /* state key bytes */
#define PX_LEDGER_VALUE_MAX 65536       /* state value bytes */
#define PX_LEDGER_BLOCK_MAX_EVIDENCE 64 /* evidence items per block */
#define PX_LEDGER_BPS 10000u            /* basis points in a whole */

/* Encoding envelopes (codec.h: u16 tag + u8 version). */
#define PX_LEDGER_TAG_TX 0x0101
#define PX_LEDGER_TAG_BLOCK 0x0102
#define PX_LEDGER_TAG_PROOF 0x0103
#define PX_LEDGER_TAG_GENESIS 0x0104
#define PX_LEDGER_VERSION 1
#define PX_LEDGER_BLOCK_VERSION 2 /* 2: evidence list after the txs */

/* ---- transactions -------------------------------------------------------
 * A tx type is (contract id << 8) | procedure.  Contract 1 is the token,
 * contract 2 staking, 3 the market (plexus/market_chain.h), 4 uPoW. */
#define PX_CONTRACT_CORE 0
#define PX_CONTRACT_TOKEN 1
#define PX_CONTRACT_STAKING 2

typedef enum {
  PX_TX_TRANSFER = 0x0101,           /* to[32], u64 amount */
  PX_TX_STAKE = 0x0201,              /* u64 amount */
  PX_TX_UNSTAKE = 0x0202,            /* u64 amount */
  PX_TX_VALIDATOR_REGISTER = 0x0203, /* str moniker */
  PX_TX_VALIDATOR_UPDATE = 0x0204,   /* str moniker, u8 active (0/1) */
} px_tx_type_t;

/* A decoded transaction.  payload and raw point into the bytes it was
 * decoded from (zero copy): they live as long as those bytes. */
typedef struct {
  char chain_id[PX_LEDGER_CHAIN_ID_MAX];
  uint8_t sender[PX_PK_LEN];
  uint64_t nonce;
  uint64_t fee;
  uint16_t type;
  const uint8_t *payload;
  size_t payload_len;
  uint8_t sig[PX_SIG_LEN];
  /* Filled by decode: */
  const uint8_t *raw; /* the whole encoding; signed bytes = raw_len - 64 */
  size_t raw_len;
  uint8_t hash[PX_HASH_LEN]; /* BLAKE2b-256 of the whole encoding */
} px_tx_t;

/* Append the encoding of tx (sig included as given) to out.  PX_EINVAL if
 * the decoder would reject it (bad chain id, bad payload for its type,
 * size over PX_LEDGER_TX_MAX_SIZE). */
int px_tx_encode(const px_tx_t *tx, px_buf_t *out);
/* Build, sign and encode a transaction in one call (wallets, tests). */
int px_tx_make(const char *chain_id, const px_keypair_t *kp, uint64_t nonce,
               uint64_t fee, uint16_t type, const void *payload,
               size_t payload_len, px_buf_t *out);
/* Strict decode of one whole transaction; checks envelope, sizes, chain id
 * syntax, the type is known and its payload well formed.  Does NOT check the
 * signature (px_tx_verify).  On error *tx is zeroed. */
int px_tx_decode(const uint8_t *p, size_t len, px_tx_t *tx);
/* 0 or PX_EBADSIG.  tx must come from px_tx_decode. */
int px_tx_verify(const px_tx_t *tx);

/* Payload builders (append to out). */
int px_tx_payload_transfer(px_buf_t *out, const uint8_t to[PX_PK_LEN],
                           uint64_t amount);
int px_tx_payload_amount(px_buf_t *out, uint64_t amount); /* (un)stake */
int px_tx_payload_validator(px_buf_t *out, const char *moniker, int active);
/* Name of a tx type ("transfer", ...); "unknown" otherwise. */
const char *px_tx_type_name(uint16_t type);

/* ---- parameters and genesis --------------------------------------------
 */
typedef struct {
  uint64_t fee_base; /* minimum fee = fee_base + fee_per_byte*size */
  uint64_t fee_per_byte;
  uint32_t max_tx_size;      /* <= PX_LEDGER_TX_MAX_SIZE */
  uint32_t max_block_txs;    /* <= PX_LEDGER_BLOCK_MAX_TXS */
  uint64_t unbonding_blocks; /* unstaked funds return after this many */
  uint64_t min_stake;        /* to register / stay an active validator */
  uint64_t power_unit;       /* voting power = stake / power_unit (>= 1) */
  uint32_t max_validators;   /* active set size, <= PX_LEDGER_MAX_VALIDATORS */
  uint64_t emission_initial; /* reward for block 1 */
  uint64_t emission_halving; /* halve every N blocks; 0 = never */
  /* Share of a double-signer's stake (and of its unbonding entries made at
   * or after the infraction) burned per piece of evidence, in basis points
   * (0..10000).  Evidence is accepted while it is younger than
   * unbonding_blocks, so the unbonding funds it can reach still exist. */
  uint32_t slash_fraction_bps;
} px_ledger_params_t;

/* Sensible devnet defaults. */
void px_ledger_params_default(px_ledger_params_t *p);
/* 0 or PX_EINVAL if a field is out of range. */
int px_ledger_params_check(const px_ledger_params_t *p);
/* Largest encoding a tx of this type may have under p: p->max_tx_size,
 * except PX_TX_DISPUTE (0x0306), which may reach PX_MARKET_DISPUTE_TX_MAX
 * (its fee is still fee_base + fee_per_byte * size). */
uint32_t px_ledger_tx_size_limit(const px_ledger_params_t *p, uint16_t type);

typedef struct {
  uint8_t pk[PX_PK_LEN];
  uint64_t balance;
  uint64_t stake;
} px_genesis_account_t;

typedef struct {
  uint8_t pk[PX_PK_LEN];
  char moniker[PX_LEDGER_MONIKER_MAX];
} px_genesis_validator_t;

#define PX_GENESIS_MAX_ACCOUNTS 100000

/* The genesis document.  accounts/validators are heap arrays owned by the
 * struct (px_genesis_release frees them). */
typedef struct {
  char chain_id[PX_LEDGER_CHAIN_ID_MAX];
  uint64_t genesis_time; /* u64 chosen by the creator; height 1 time >= */
  px_ledger_params_t params;
  px_genesis_account_t *accounts;
  size_t n_accounts;
  px_genesis_validator_t *validators;
  size_t n_validators;
} px_genesis_t;

void px_genesis_init(px_genesis_t *g);
void px_genesis_release(px_genesis_t *g);
int px_genesis_add_account(px_genesis_t *g, const uint8_t pk[PX_PK_LEN],
                           uint64_t balance, uint64_t stake);
int px_genesis_add_validator(px_genesis_t *g, const uint8_t pk[PX_PK_LEN],
                             const char *moniker);
/* A ready genesis for `plexus init` / `devnet up`: n validators with the
 * given pks, each with `balance` liquid and `stake` staked (stake >= the
 * default min_stake), default params. */
int px_genesis_make(px_genesis_t *g, const char *chain_id,
                    const uint8_t (*validator_pks)[PX_PK_LEN], size_t n,
                    uint64_t balance, uint64_t stake);
/* Semantic checks: chain id, params, no duplicate accounts or validators,
 * every validator an account with stake >= min_stake, total supply fits in
 * u64.  PX_EINVAL / PX_EDUP / PX_ERANGE. */
int px_genesis_check(const px_genesis_t *g);
/* Canonical binary encoding (stored by the store; hashed for the chain's
 * "block 0" hash).  Decode is strict and runs px_genesis_check. */
int px_genesis_encode(const px_genesis_t *g, px_buf_t *out);
int px_genesis_decode(const uint8_t *p, size_t len, px_genesis_t *g);
/* BLAKE2b-256 of the binary encoding: prev_hash of block 1. */
int px_genesis_hash(const px_genesis_t *g, uint8_t out[PX_HASH_LEN]);
/* The genesis JSON file (docs/ledger.md).  Parse is strict (unknown keys
 * are rejected) and runs px_genesis_check. */
int px_genesis_to_json(const px_genesis_t *g, px_buf_t *out);
int px_genesis_from_json(const char *text, size_t len, px_genesis_t *g);
int px_genesis_write_file(const px_genesis_t *g, const char *path);
int px_genesis_read_file(const char *path, px_genesis_t *g);

/* ---- state --------------------------------------------------------------
 */
typedef struct px_ledger_state px_ledger_state_t;

typedef struct {
  uint64_t release_height; /* funds return at the start of this block */
  uint64_t amount;
} px_unbonding_t;

typedef struct {
  uint64_t balance;
  uint64_t nonce; /* the nonce the next tx must carry */
  uint64_t stake;
  uint64_t unbonding; /* sum of entries */
  uint32_t n_unbonding;
  px_unbonding_t entries[PX_LEDGER_MAX_UNBONDING];
} px_account_t;

typedef struct {
  uint8_t pk[PX_PK_LEN]; /* account key = consensus key */
  uint64_t power;
  uint64_t stake;
  char moniker[PX_LEDGER_MONIKER_MAX];
} px_validator_t;

/* A fresh state at height 0 from a checked genesis.  Caller frees. */
int px_ledger_state_from_genesis(const px_genesis_t *g,
                                 px_ledger_state_t **out);
void px_ledger_state_free(px_ledger_state_t *s);
/* Deep copy (for speculative execution and tests). */
int px_ledger_state_clone(const px_ledger_state_t *s, px_ledger_state_t **out);

uint64_t px_ledger_height(const px_ledger_state_t *s);
const char *px_ledger_chain_id(const px_ledger_state_t *s);
const px_ledger_params_t *px_ledger_params(const px_ledger_state_t *s);
/* The state root after the last applied block (the next block's app_hash). */
void px_ledger_app_hash(const px_ledger_state_t *s, uint8_t out[PX_HASH_LEN]);
/* Hash of the last applied block (genesis hash at height 0). */
void px_ledger_last_block_hash(const px_ledger_state_t *s,
                               uint8_t out[PX_HASH_LEN]);
uint64_t px_ledger_last_time(const px_ledger_state_t *s);

/* Account view (all zero for an unknown account; never an error for that). */
int px_ledger_account(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      px_account_t *out);
/* The active validator set, deterministic order: power descending, then pk
 * ascending; at most params.max_validators.  *n_out is the count. */
int px_ledger_validators(const px_ledger_state_t *s, px_validator_t *out,
                         size_t max, size_t *n_out);
/* Supply invariant: *actual = sum of balances + stakes + unbonding over all
 * accounts, plus the escrow open market jobs hold (plexus/market_chain.h)
 * and the uPoW deposits; *expected = genesis supply + emitted - burned.  They
 * are equal at every height (tests assert it). */
int px_ledger_supply(const px_ledger_state_t *s, uint64_t *actual,
                     uint64_t *expected);
/* Block reward for a height under params (halving schedule). */
uint64_t px_ledger_emission(const px_ledger_params_t *p, uint64_t height);

/* Admission check against the current state (mempool): decode + size +
 * chain id + signature + nonce == account nonce (+ expected_nonce_offset for
 * a sender's queued txs) + fee >= minimum and payable.  Changes nothing. */
int px_ledger_check_tx(const px_ledger_state_t *s, const uint8_t *p, size_t len,
                       uint64_t nonce_offset, px_tx_t *tx_out);

/* Raw read-only access to the authenticated map (keys: docs/ledger.md).
 * *val points into the state, valid until the next mutation. */
int px_ledger_get(const px_ledger_state_t *s, const void *key, size_t klen,
                  const uint8_t **val, size_t *vlen);
/* State keys of the two first contracts (out holds PX_LEDGER_KEY_MAX). */
size_t px_ledger_key_account(const uint8_t pk[PX_PK_LEN], uint8_t *out);
size_t px_ledger_key_stake(const uint8_t pk[PX_PK_LEN], uint8_t *out);

/* Read-only contract query: contract by id, method and args are
 * contract-defined (docs/ledger.md); the answer is appended to out.
 * PX_ENOTFOUND for an unknown contract or method. */
int px_ledger_query(const px_ledger_state_t *s, uint8_t contract,
                    uint8_t method, const uint8_t *args, size_t args_len,
                    px_buf_t *out);

/* ---- proofs (sparse Merkle tree, docs/ledger.md) -----------------------
 */
#define PX_SMT_DEPTH 256

typedef struct {
  uint16_t depth; /* siblings, root side first */
  uint8_t siblings[PX_SMT_DEPTH][PX_HASH_LEN];
  uint8_t has_leaf; /* 0: the path ends in an empty subtree */
  uint8_t leaf_key_hash[PX_HASH_LEN];
  uint8_t leaf_value_hash[PX_HASH_LEN];
} px_smt_proof_t;

/* Proof for key against the current root (membership if present). */
int px_ledger_prove(const px_ledger_state_t *s, const void *key, size_t klen,
                    px_smt_proof_t *proof);
/* Light-client check, knowing only root.  value NULL: prove absence.
 * 0 when the proof shows key -> value (or absence); PX_EAUTH otherwise;
 * PX_EINVAL on bad arguments. */
int px_smt_verify(const uint8_t root[PX_HASH_LEN], const void *key, size_t klen,
                  const void *value, size_t vlen, const px_smt_proof_t *proof);
int px_smt_proof_encode(const px_smt_proof_t *p, px_buf_t *out);
int px_smt_proof_decode(const uint8_t *p, size_t len, px_smt_proof_t *out);

/* ---- blocks -------------------------------------------------------------
 */
typedef struct {
  char chain_id[PX_LEDGER_CHAIN_ID_MAX];
  uint64_t height;
  uint8_t prev_hash[PX_HASH_LEN]; /* block hash of height-1 (genesis hash) */
  uint8_t proposer[PX_PK_LEN];
  uint64_t time;                     /* from the proposer, non-decreasing */
  uint8_t tx_root[PX_HASH_LEN];      /* RFC 6962 root over tx encodings */
  uint8_t app_hash[PX_HASH_LEN];     /* state root after height-1 */
  uint8_t results_hash[PX_HASH_LEN]; /* results root of height-1 */
} px_block_header_t;

/* One piece of equivocation evidence carried by a block: the consensus
 * EVIDENCE encoding (px_cons_evidence_encode) and its strict decode. */
typedef struct {
  px_cons_evidence_t ev;
  const uint8_t *raw; /* points into the block's encoding */
  size_t raw_len;
} px_block_evidence_t;

/* A decoded block.  It owns a copy of its encoding; txs and evidence point
 * into it. */
typedef struct {
  px_block_header_t header;
  px_tx_t *txs;
  size_t n_txs;
  px_block_evidence_t *evidence;
  size_t n_evidence;
  uint8_t hash[PX_HASH_LEN]; /* BLAKE2b-256 of the whole encoding */
  uint8_t *raw;
  size_t raw_len;
} px_block_t;

typedef struct {
  uint8_t tx_hash[PX_HASH_LEN];
  int32_t code;      /* 0 or a negative PX_E code */
  uint64_t fee_paid; /* 0 when not admitted */
} px_tx_result_t;

/* Strict decode; every tx strictly decoded (a malformed one makes the
 * block malformed).  Signatures are not checked here. */
int px_block_decode(const uint8_t *p, size_t len, px_block_t *b);
void px_block_release(px_block_t *b);
/* Encode header + the given raw tx encodings (and no evidence). */
int px_block_encode(const px_block_header_t *h, const uint8_t *const *txs,
                    const size_t *tx_lens, size_t n, px_buf_t *out);
/* The same with evidence: evs[i] are EVIDENCE encodings (each must decode
 * strictly, else PX_EINVAL), at most PX_LEDGER_BLOCK_MAX_EVIDENCE. */
int px_block_encode_ev(const px_block_header_t *h, const uint8_t *const *txs,
                       const size_t *tx_lens, size_t n,
                       const uint8_t *const *evs, const size_t *ev_lens,
                       size_t n_ev, px_buf_t *out);
/* Proposer: a block for height+1 on top of s with the given txs (each a tx
 * encoding; they are included as given, invalid ones will be recorded as
 * failed).  Appends the encoding to out. */
int px_ledger_block_make(const px_ledger_state_t *s,
                         const uint8_t proposer[PX_PK_LEN], uint64_t time,
                         const uint8_t *const *txs, const size_t *tx_lens,
                         size_t n, px_buf_t *out);
/* The same carrying evidence (each checked with px_ledger_evidence_check by
 * the caller: invalid evidence makes the whole block invalid). */
int px_ledger_block_make_ev(const px_ledger_state_t *s,
                            const uint8_t proposer[PX_PK_LEN], uint64_t time,
                            const uint8_t *const *txs, const size_t *tx_lens,
                            size_t n, const uint8_t *const *evs,
                            const size_t *ev_lens, size_t n_ev, px_buf_t *out);
/* Header checks against s without executing: chain id, height, prev hash,
 * app hash, results hash, tx root, time, proposer is an active validator,
 * tx count and sizes; and every piece of evidence is valid for this height
 * (px_ledger_evidence_check) and names a distinct (validator, height,
 * round, vote type).  0 or PX_EINVAL/PX_EPROTO/PX_ETOOBIG/PX_EBADSIG/
 * PX_EDUP. */
int px_ledger_block_validate(const px_ledger_state_t *s, const px_block_t *b);
/* Validate and execute.  results holds b->n_txs entries.  On any error the
 * state is unchanged.  Deterministic. */
int px_ledger_apply_block(px_ledger_state_t *s, const px_block_t *b,
                          px_tx_result_t *results);
/* The same, for a caller that has already verified some signatures (the
 * node's mempool): sig_known(ud, tx) returning 1 means tx's signature was
 * verified before, so it is not verified again.  The tx hash covers the
 * signature, so a cache keyed by tx hash is sound.  NULL: verify all. */
typedef int (*px_ledger_sig_known_fn)(void *ud, const px_tx_t *tx);
int px_ledger_apply_block_ex(px_ledger_state_t *s, const px_block_t *b,
                             px_tx_result_t *results,
                             px_ledger_sig_known_fn sig_known, void *ud);
/* RFC 6962 root over the results' encodings (next header's results_hash). */
int px_ledger_results_hash(const px_tx_result_t *r, size_t n,
                           uint8_t out[PX_HASH_LEN]);

/* ---- evidence and slashing (docs/ledger.md "Slashing") ------------------
 * Two conflicting signed votes of one validator (consensus EVIDENCE) are
 * valid in block B = height(s) + 1 when: 1 <= evidence height <= B and
 * B - evidence height < params.unbonding_blocks; the votes verify against
 * the validator set of the evidence height, which the state keeps for that
 * window (px_cons_evidence_verify with the set's chain id); and no evidence
 * for the same (validator, height, round, vote type) was committed before.
 * Applying it burns slash_fraction_bps of the offender's stake and of its
 * unbonding entries made at or after the evidence height, and jails it
 * (inactive for good: it leaves the next validator set and cannot
 * re-activate itself). */

/* Decode an EVIDENCE encoding and check it as above against s.  0 (offender
 * gets the validator's key when not NULL), PX_EDUP (already slashed),
 * PX_ESTATE (too old, or a height not reached), PX_EPROTO / PX_EBADSIG
 * (does not verify), decode errors. */
int px_ledger_evidence_check(const px_ledger_state_t *s, const uint8_t *ev,
                             size_t len, uint8_t offender[PX_PK_LEN]);
/* 1 when s records a slash of pk (it was jailed for double signing). */
int px_ledger_jailed(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN]);

/* ---- storage (LMDB) -----------------------------------------------------
 * One environment per node directory.  Not thread-safe: one thread drives
 * commits; px_ledger_store_block/tx may be called from the same thread. */
typedef struct px_ledger_store px_ledger_store_t;

typedef struct {
  uint64_t height;
  uint32_t index;
  int32_t code;
  uint64_t fee_paid;
} px_tx_location_t;

/* Open (creating) the store in directory `dir` (mkdir -p). map_size 0
 * means 4 GiB. */
int px_ledger_store_open(const char *dir, size_t map_size,
                         px_ledger_store_t **out);
void px_ledger_store_close(px_ledger_store_t *st);
/* Write genesis and the genesis state (height 0).  PX_EEXIST if the store
 * already holds a chain. */
int px_ledger_store_init(px_ledger_store_t *st, const px_genesis_t *g,
                         const px_ledger_state_t *s);
/* Last committed height; PX_ENOENT if the store holds no chain. */
int px_ledger_store_height(px_ledger_store_t *st, uint64_t *height);
/* Load the state as of the last commit (verifies the recomputed root
 * against the stored app hash: PX_EIO on mismatch). */
int px_ledger_store_load(px_ledger_store_t *st, px_ledger_state_t **out);
/* The stored genesis. */
int px_ledger_store_genesis(px_ledger_store_t *st, px_genesis_t *g);
/* Commit a block just applied to s (s's height must be b's height and
 * st's height one less) with its results, in one LMDB write transaction:
 * block, hash index, tx index, the state keys it changed, meta. */
int px_ledger_store_commit(px_ledger_store_t *st, const px_ledger_state_t *s,
                           const px_block_t *b, const px_tx_result_t *results);
/* px_ledger_store_commit plus the block's commit certificate (opaque bytes,
 * the consensus COMMIT encoding) in the same write transaction, so a node
 * can serve block + commit to peers that sync.  cert may be NULL. */
int px_ledger_store_commit_cert(px_ledger_store_t *st,
                                const px_ledger_state_t *s, const px_block_t *b,
                                const px_tx_result_t *results,
                                const uint8_t *cert, size_t cert_len);
/* The certificate stored with block `height` (appended); PX_ENOTFOUND. */
int px_ledger_store_cert(px_ledger_store_t *st, uint64_t height, px_buf_t *out);
/* Block encoding by height (appended to out); PX_ENOTFOUND. */
int px_ledger_store_block(px_ledger_store_t *st, uint64_t height,
                          px_buf_t *out);
int px_ledger_store_block_height(px_ledger_store_t *st,
                                 const uint8_t hash[PX_HASH_LEN],
                                 uint64_t *height);
int px_ledger_store_tx(px_ledger_store_t *st, const uint8_t hash[PX_HASH_LEN],
                       px_tx_location_t *loc);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_LEDGER_H */
