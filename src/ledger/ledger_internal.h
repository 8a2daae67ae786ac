/*
 * ledger_internal.h — private to src/ledger: the sparse Merkle tree, the
 * journaled state, the contract interface and the token/staking helpers.
 */
#ifndef PX_LEDGER_INTERNAL_H
#define PX_LEDGER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/codec.h"
#include "plexus/ledger.h"

/* ---- sparse Merkle tree (smt.c) ---------------------------------------- */

typedef struct smt_node smt_node_t;
struct smt_node {
  smt_node_t *child[2];      /* inner nodes only */
  uint8_t hash[PX_HASH_LEN]; /* valid when !dirty */
  uint8_t is_leaf;
  uint8_t dirty;
  /* leaves only: */
  uint8_t kh[PX_HASH_LEN]; /* H(key): the leaf's position */
  uint8_t vh[PX_HASH_LEN]; /* H(value) */
  uint8_t *key;
  uint8_t *val;
  uint32_t klen;
  uint32_t vlen;
};

typedef struct {
  smt_node_t *root;
  size_t count;
} smt_t;

void smt_init(smt_t *t);
void smt_release(smt_t *t);
int smt_clone(const smt_t *src, smt_t *dst);
/* 0 and *val, *vlen (pointing into the tree), or PX_ENOTFOUND. */
int smt_get(const smt_t *t, const uint8_t *key, size_t klen,
            const uint8_t **val, size_t *vlen);
int smt_put(smt_t *t, const uint8_t *key, size_t klen, const uint8_t *val,
            size_t vlen);
/* Deleting an absent key is not an error. */
int smt_del(smt_t *t, const uint8_t *key, size_t klen);
/* Recompute dirty hashes; the root of an empty tree is all zeros. */
void smt_root(smt_t *t, uint8_t out[PX_HASH_LEN]);
/* Requires a clean tree (after smt_root): PX_ESTATE otherwise. */
int smt_prove(const smt_t *t, const uint8_t *key, size_t klen,
              px_smt_proof_t *p);
typedef int (*smt_visit_fn)(void *ud, const uint8_t *key, size_t klen,
                            const uint8_t *val, size_t vlen);
/* Visit every leaf (tree order); stops at the first nonzero return. */
int smt_foreach(const smt_t *t, smt_visit_fn fn, void *ud);

/* ---- state (state.c) ---------------------------------------------------- */

typedef struct {
  uint8_t *key;
  size_t klen;
  uint8_t *old; /* NULL when the key was absent */
  size_t oldlen;
} journal_entry_t;

struct px_ledger_state {
  smt_t smt;
  journal_entry_t *journal;
  size_t n_journal, cap_journal;
  char chain_id[PX_LEDGER_CHAIN_ID_MAX];
  px_ledger_params_t params;
  uint64_t height;
  uint64_t last_time;
  uint8_t last_block_hash[PX_HASH_LEN];
  uint8_t last_results_hash[PX_HASH_LEN];
  uint8_t app_hash[PX_HASH_LEN];
};

/* Namespaces: the first key byte is the owning contract's id. */
#define KEY_CORE_PARAMS 'P'
#define KEY_CORE_SUPPLY 'S'
#define KEY_TOKEN_ACCOUNT 'A'
#define KEY_STAKING_STAKE 'S'
#define KEY_STAKING_VALIDATOR 'V'
#define KEY_STAKING_LIST 'L'
#define KEY_STAKING_UNBOND 'U'
#define KEY_STAKING_EVIDENCE 'E'     /* slashed (pk, type, h, r) markers */
#define KEY_STAKING_JAILED 'J'       /* pk -> height jailed */
#define KEY_STAKING_VALSET 'H'       /* be64(from) -> validator set */
#define KEY_STAKING_VALSET_INDEX 'I' /* recorded from-heights */

px_ledger_state_t *ledger_state_new(void);
/* Journaled writes (every mutation of the map goes through these). */
int ledger_put(px_ledger_state_t *s, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen);
int ledger_del(px_ledger_state_t *s, const uint8_t *key, size_t klen);
/* Undo journal entries back to mark (a savepoint = n_journal). */
void ledger_revert(px_ledger_state_t *s, size_t mark);
void ledger_journal_clear(px_ledger_state_t *s);
/* Decode params + chain id from the 'P' record into s. */
int ledger_load_params(px_ledger_state_t *s);
void ledger_read_params(px_reader_t *r, px_ledger_params_t *p);
void ledger_write_params(px_writer_t *w, const px_ledger_params_t *p);
int ledger_encode_params(const char *chain_id, const px_ledger_params_t *p,
                         px_buf_t *out);

typedef struct {
  uint64_t genesis;
  uint64_t emitted;
  uint64_t burned;
} ledger_supply_t;
int ledger_supply_get(const px_ledger_state_t *s, ledger_supply_t *out);
int ledger_supply_put(px_ledger_state_t *s, const ledger_supply_t *v);

/* Overflow-checked u64 arithmetic: 0 or PX_LEDGER_E_OVERFLOW. */
static inline int u64_add(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_add_overflow(a, b, out)) return PX_LEDGER_E_OVERFLOW;
  return 0;
}
static inline int u64_mul(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_mul_overflow(a, b, out)) return PX_LEDGER_E_OVERFLOW;
  return 0;
}

/* ---- contracts (contract.c, token.c, staking.c) ------------------------- */

typedef struct {
  px_ledger_state_t *s;
  const px_block_header_t *header; /* the block being applied */
  uint8_t ns;                      /* the executing contract's namespace */
} px_ledger_ctx_t;

/* The native contract interface (compiled in, as Qubic's).  Deterministic:
 * no clock, no floats, no I/O; state only through ctx. */
typedef struct {
  const char *name;
  uint8_t id; /* = namespace byte = high byte of its tx types */
  /* Stateless payload check for a tx of this contract (decode time). */
  int (*check)(const px_tx_t *tx);
  /* Run a procedure.  Fee and nonce are already handled; on error every
   * write made here is undone by the caller. */
  int (*execute)(px_ledger_ctx_t *ctx, const px_tx_t *tx);
  /* Read-only query. */
  int (*query)(const px_ledger_state_t *s, uint8_t method, const uint8_t *args,
               size_t n, px_buf_t *out);
  /* Called at the start of every block (may be NULL). */
  int (*begin_block)(px_ledger_ctx_t *ctx);
} px_contract_t;

extern const px_contract_t px_contract_token;
extern const px_contract_t px_contract_staking;
extern const px_contract_t px_contract_upow;    /* upow.c */
extern const px_contract_t px_contract_market;  /* market.c */
extern const px_contract_t px_contract_session; /* session.c */
/* NULL if no contract has this id. */
const px_contract_t *ledger_contract(uint8_t id);
size_t ledger_n_contracts(void);
const px_contract_t *ledger_contract_at(size_t i);

/* Namespace-checked access for contracts (PX_EPERM outside ctx->ns). */
int ctx_get(const px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen,
            const uint8_t **val, size_t *vlen);
int ctx_put(px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen,
            const uint8_t *val, size_t vlen);
int ctx_del(px_ledger_ctx_t *ctx, const uint8_t *key, size_t klen);

/* Token internals: the only way other code moves balances. */
typedef struct {
  uint64_t balance;
  uint64_t nonce;
} token_account_t;
int token_account_get(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      token_account_t *a);
int token_account_get_raw(const uint8_t *v, size_t n, token_account_t *a);
int token_account_put(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      const token_account_t *a);
int token_credit(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                 uint64_t amount);
int token_debit(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                uint64_t amount);

/* Staking internals. */
typedef struct {
  uint64_t stake;
  uint32_t n;
  px_unbonding_t e[PX_LEDGER_MAX_UNBONDING];
} stake_record_t;
int staking_record_get(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       stake_record_t *r);
int staking_record_decode(const uint8_t *v, size_t n, stake_record_t *r);
int staking_record_put(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       const stake_record_t *r);
int staking_register(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                     const char *moniker, int active, uint64_t height);

/* Market (market.c): the escrow a state entry holds (escrow - paid of an
 * open job record 03 'J' id; 0 for any other key), for px_ledger_supply. */
int market_job_escrow_held(const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, uint64_t *held);

/* Session (session.c): deposit - claimed of an open channel record (05 'C'
 * id; 0 for any other key), for px_ledger_supply. */
int session_channel_held(const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint64_t *held);

/* Jail pk for good: active = 0 in its validator record (if registered). */
int staking_jail(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN]);

/* Slashing (slashing.c; part of the staking contract's namespace). */
/* Every piece of evidence of b valid at b's height, and distinct. */
int slashing_validate(const px_ledger_state_t *s, const px_block_t *b);
/* Apply one validated piece: marker, burn, jail. */
int slashing_apply(px_ledger_state_t *s, uint64_t block_height,
                   const px_cons_evidence_t *e);
/* Record the validator set of next_height if it differs from the last one
 * recorded, pruning records no evidence can need any more. */
int slashing_record_valset(px_ledger_state_t *s, uint64_t next_height);

/* Payload decoders shared by check/execute. */
int payload_transfer(const px_tx_t *tx, uint8_t to[PX_PK_LEN],
                     uint64_t *amount);
int payload_amount(const px_tx_t *tx, uint64_t *amount);
int payload_validator(const px_tx_t *tx, char moniker[PX_LEDGER_MONIKER_MAX],
                      int *active);

/* ---- blocks / store helpers --------------------------------------------- */

/* Touched keys of the last applied block (journal, may repeat). */
size_t ledger_n_changes(const px_ledger_state_t *s);
void ledger_change(const px_ledger_state_t *s, size_t i, const uint8_t **key,
                   size_t *klen);
void ledger_result_encode(const px_tx_result_t *r, uint8_t out[44]);

#endif
