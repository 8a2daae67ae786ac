/*
 * token.c — the token contract (id 1) and the contract registry.
 *
 * The token owns accounts: key 01 'A' pk -> u64 balance, u64 nonce (16
 * bytes, little-endian).  An absent key is the zero account.  Balances move
 * only through token_credit/token_debit, which are the one exception to
 * "a contract writes only its own namespace": the ledger core uses them for
 * fees and emission, staking for bonding and unbonding (native currency, as
 * Qubic's or Cosmos' bank module).  Both are overflow-checked.
 *
 * Procedures: TRANSFER(to, amount).  Queries: method 1 account(pk) ->
 * u64 balance, u64 nonce.
 *
 * The registry maps a contract id (the high byte of a tx type and the first
 * byte of its state keys) to its vtable.  It is a constant table: adding a
 * contract (market, upow, storage) is one line here.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

static size_t account_key(const uint8_t pk[PX_PK_LEN], uint8_t *key) {
  return px_ledger_key_account(pk, key);
}

int token_account_get_raw(const uint8_t *v, size_t n, token_account_t *a) {
  if (n != 16) return PX_EIO;
  a->balance = px_get_u64le(v);
  a->nonce = px_get_u64le(v + 8);
  return 0;
}

int token_account_get(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      token_account_t *a) {
  uint8_t key[2 + PX_PK_LEN];
  const uint8_t *v;
  size_t n;
  memset(a, 0, sizeof *a);
  if (smt_get(&s->smt, key, account_key(pk, key), &v, &n) != 0) return 0;
  return token_account_get_raw(v, n, a);
}

int token_account_put(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      const token_account_t *a) {
  uint8_t key[2 + PX_PK_LEN], v[16];
  px_put_u64le(v, a->balance);
  px_put_u64le(v + 8, a->nonce);
  return ledger_put(s, key, account_key(pk, key), v, sizeof v);
}

int token_credit(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                 uint64_t amount) {
  token_account_t a;
  int rc = token_account_get(s, pk, &a);
  if (!rc) rc = u64_add(a.balance, amount, &a.balance);
  if (!rc) rc = token_account_put(s, pk, &a);
  return rc;
}

int token_debit(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                uint64_t amount) {
  token_account_t a;
  int rc = token_account_get(s, pk, &a);
  if (rc) return rc;
  if (a.balance < amount) return PX_LEDGER_E_FUNDS;
  a.balance -= amount;
  return token_account_put(s, pk, &a);
}

static int token_check(const px_tx_t *tx) {
  uint8_t to[PX_PK_LEN];
  uint64_t amount;
  if (tx->type != PX_TX_TRANSFER) return PX_EDECODE;
  return payload_transfer(tx, to, &amount);
}

static int token_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  uint8_t to[PX_PK_LEN];
  uint64_t amount;
  int rc = payload_transfer(tx, to, &amount);
  if (rc) return rc;
  rc = token_debit(ctx->s, tx->sender, amount);
  if (!rc) rc = token_credit(ctx->s, to, amount);
  return rc;
}

static int token_query(const px_ledger_state_t *s, uint8_t method,
                       const uint8_t *args, size_t n, px_buf_t *out) {
  if (method != 1) return PX_ENOTFOUND;
  if (n != PX_PK_LEN) return PX_EINVAL;
  token_account_t a;
  int rc = token_account_get(s, args, &a);
  if (rc) return rc;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u64(&w, a.balance);
  px_writer_u64(&w, a.nonce);
  return px_writer_finish(&w);
}

const px_contract_t px_contract_token = {
    .name = "token",
    .id = PX_CONTRACT_TOKEN,
    .check = token_check,
    .execute = token_execute,
    .query = token_query,
    .begin_block = NULL,
};

/* ---- registry ------------------------------------------------------------ */

static const px_contract_t *const k_contracts[] = {
    &px_contract_token,  &px_contract_staking, &px_contract_upow,
    &px_contract_market, &px_contract_session,
};

const px_contract_t *ledger_contract(uint8_t id) {
  for (size_t i = 0; i < PX_ARRAY_LEN(k_contracts); i++)
    if (k_contracts[i]->id == id) return k_contracts[i];
  return NULL;
}

size_t ledger_n_contracts(void) { return PX_ARRAY_LEN(k_contracts); }

const px_contract_t *ledger_contract_at(size_t i) {
  return i < PX_ARRAY_LEN(k_contracts) ? k_contracts[i] : NULL;
}
