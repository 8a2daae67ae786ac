/*
 * genesis.c — the genesis document: building, checking, binary encoding.
 *
 * The binary encoding is canonical (accounts and validators in document
 * order) and is what the store keeps and what block 1's prev_hash commits
 * to (px_genesis_hash).  The JSON file format lives in genesis_json.c.
 *
 *   u16 tag = PX_LEDGER_TAG_GENESIS, u8 version = 1
 *   str chain_id, u64 genesis_time, params (state.c: ledger_write_params)
 *   u32 n_accounts, n x (pk[32], u64 balance, u64 stake)
 *   u32 n_validators, n x (pk[32], str moniker)
 *
 * px_genesis_check is the single gate for semantic validity: every decoder
 * (binary, JSON) runs it, and px_ledger_state_from_genesis runs it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

void px_genesis_init(px_genesis_t *g) {
  memset(g, 0, sizeof *g);
  px_ledger_params_default(&g->params);
}

void px_genesis_release(px_genesis_t *g) {
  if (!g) return;
  px_free(g->accounts);
  px_free(g->validators);
  g->accounts = NULL;
  g->validators = NULL;
  g->n_accounts = g->n_validators = 0;
}

int px_genesis_add_account(px_genesis_t *g, const uint8_t pk[PX_PK_LEN],
                           uint64_t balance, uint64_t stake) {
  if (!g || !pk) return PX_EINVAL;
  if (g->n_accounts >= PX_GENESIS_MAX_ACCOUNTS) return PX_ELIMIT;
  px_genesis_account_t *a =
      px_realloc(g->accounts, (g->n_accounts + 1) * sizeof *a);
  if (!a) return PX_ENOMEM;
  g->accounts = a;
  a = &g->accounts[g->n_accounts++];
  memcpy(a->pk, pk, PX_PK_LEN);
  a->balance = balance;
  a->stake = stake;
  return 0;
}

int px_genesis_add_validator(px_genesis_t *g, const uint8_t pk[PX_PK_LEN],
                             const char *moniker) {
  if (!g || !pk || !moniker || strlen(moniker) >= PX_LEDGER_MONIKER_MAX)
    return PX_EINVAL;
  if (g->n_validators >= PX_LEDGER_MAX_VALIDATORS) return PX_ELIMIT;
  px_genesis_validator_t *v =
      px_realloc(g->validators, (g->n_validators + 1) * sizeof *v);
  if (!v) return PX_ENOMEM;
  g->validators = v;
  v = &g->validators[g->n_validators++];
  memset(v, 0, sizeof *v);
  memcpy(v->pk, pk, PX_PK_LEN);
  snprintf(v->moniker, sizeof v->moniker, "%s", moniker);
  return 0;
}

int px_genesis_make(px_genesis_t *g, const char *chain_id,
                    const uint8_t (*validator_pks)[PX_PK_LEN], size_t n,
                    uint64_t balance, uint64_t stake) {
  if (!g || !chain_id || strlen(chain_id) >= PX_LEDGER_CHAIN_ID_MAX ||
      (n && !validator_pks))
    return PX_EINVAL;
  px_genesis_init(g);
  snprintf(g->chain_id, sizeof g->chain_id, "%s", chain_id);
  int rc = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    char moniker[PX_LEDGER_MONIKER_MAX];
    snprintf(moniker, sizeof moniker, "validator-%zu", i);
    rc = px_genesis_add_account(g, validator_pks[i], balance, stake);
    if (!rc) rc = px_genesis_add_validator(g, validator_pks[i], moniker);
  }
  if (!rc) rc = px_genesis_check(g);
  if (rc) px_genesis_release(g);
  return rc;
}

static int printable(const char *s, size_t cap, int allow_empty) {
  size_t n = strnlen(s, cap);
  if (n >= cap || (!allow_empty && n == 0)) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e) return 0;
  return 1;
}

static int cmp_pk(const void *a, const void *b) {
  return memcmp(a, b, PX_PK_LEN);
}

int px_genesis_check(const px_genesis_t *g) {
  if (!g || !printable(g->chain_id, sizeof g->chain_id, 0)) return PX_EINVAL;
  if (px_ledger_params_check(&g->params)) return PX_EINVAL;
  if (g->n_accounts > PX_GENESIS_MAX_ACCOUNTS ||
      g->n_validators > PX_LEDGER_MAX_VALIDATORS || g->n_validators == 0)
    return PX_EINVAL;
  if ((g->n_accounts && !g->accounts) || !g->validators) return PX_EINVAL;
  uint8_t(*pks)[PX_PK_LEN] =
      px_malloc((g->n_accounts + g->n_validators + 1) * PX_PK_LEN);
  if (!pks) return PX_ENOMEM;
  int rc = 0;
  uint64_t total = 0;
  for (size_t i = 0; !rc && i < g->n_accounts; i++) {
    memcpy(pks[i], g->accounts[i].pk, PX_PK_LEN);
    if (u64_add(total, g->accounts[i].balance, &total) ||
        u64_add(total, g->accounts[i].stake, &total))
      rc = PX_ERANGE;
  }
  if (!rc && g->n_accounts) {
    qsort(pks, g->n_accounts, PX_PK_LEN, cmp_pk);
    for (size_t i = 1; i < g->n_accounts; i++)
      if (memcmp(pks[i - 1], pks[i], PX_PK_LEN) == 0) rc = PX_EDUP;
  }
  /* Validators: unique, each an account with enough stake. */
  uint8_t(*vp)[PX_PK_LEN] = pks + g->n_accounts;
  for (size_t i = 0; !rc && i < g->n_validators; i++) {
    const px_genesis_validator_t *v = &g->validators[i];
    if (!printable(v->moniker, sizeof v->moniker, 1)) {
      rc = PX_EINVAL;
      break;
    }
    memcpy(vp[i], v->pk, PX_PK_LEN);
    const uint8_t(*hit)[PX_PK_LEN] =
        g->n_accounts ? bsearch(v->pk, pks, g->n_accounts, PX_PK_LEN, cmp_pk)
                      : NULL;
    if (!hit) {
      rc = PX_EINVAL;
      break;
    }
    size_t k = 0;
    while (memcmp(g->accounts[k].pk, v->pk, PX_PK_LEN) != 0)
      k++;
    if (g->accounts[k].stake < g->params.min_stake ||
        g->accounts[k].stake / g->params.power_unit == 0)
      rc = PX_EINVAL;
  }
  if (!rc) {
    qsort(vp, g->n_validators, PX_PK_LEN, cmp_pk);
    for (size_t i = 1; i < g->n_validators; i++)
      if (memcmp(vp[i - 1], vp[i], PX_PK_LEN) == 0) rc = PX_EDUP;
  }
  px_free(pks);
  return rc;
}

int px_genesis_encode(const px_genesis_t *g, px_buf_t *out) {
  if (!g || !out) return PX_EINVAL;
  int rc = px_genesis_check(g);
  if (rc) return rc;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_LEDGER_TAG_GENESIS);
  px_writer_u8(&w, PX_LEDGER_VERSION);
  px_writer_str(&w, g->chain_id);
  px_writer_u64(&w, g->genesis_time);
  ledger_write_params(&w, &g->params);
  px_writer_u32(&w, (uint32_t)g->n_accounts);
  for (size_t i = 0; i < g->n_accounts; i++) {
    px_writer_fixed(&w, g->accounts[i].pk, PX_PK_LEN);
    px_writer_u64(&w, g->accounts[i].balance);
    px_writer_u64(&w, g->accounts[i].stake);
  }
  px_writer_u32(&w, (uint32_t)g->n_validators);
  for (size_t i = 0; i < g->n_validators; i++) {
    px_writer_fixed(&w, g->validators[i].pk, PX_PK_LEN);
    px_writer_str(&w, g->validators[i].moniker);
  }
  rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

int px_genesis_decode(const uint8_t *p, size_t len, px_genesis_t *g) {
  if (!g) return PX_EINVAL;
  px_genesis_init(g);
  px_reader_t r;
  px_reader_init(&r, p, len);
  uint16_t tag = px_reader_u16(&r);
  uint8_t ver = px_reader_u8(&r);
  if (!r.err && tag != PX_LEDGER_TAG_GENESIS) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && ver != PX_LEDGER_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_str(&r, g->chain_id, sizeof g->chain_id);
  g->genesis_time = px_reader_u64(&r);
  ledger_read_params(&r, &g->params);
  uint32_t na = px_reader_u32(&r);
  if (!r.err && na > PX_GENESIS_MAX_ACCOUNTS) px_reader_fail(&r, PX_ETOOBIG);
  if (!r.err && na > px_reader_remaining(&r) / (PX_PK_LEN + 16))
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err && na) {
    g->accounts = px_calloc(na, sizeof *g->accounts);
    if (!g->accounts) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; !r.err && i < na; i++) {
    px_reader_fixed(&r, g->accounts[i].pk, PX_PK_LEN);
    g->accounts[i].balance = px_reader_u64(&r);
    g->accounts[i].stake = px_reader_u64(&r);
  }
  if (!r.err) g->n_accounts = na;
  uint32_t nv = px_reader_u32(&r);
  if (!r.err && nv > PX_LEDGER_MAX_VALIDATORS) px_reader_fail(&r, PX_ETOOBIG);
  if (!r.err && nv > px_reader_remaining(&r) / (PX_PK_LEN + 4))
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err && nv) {
    g->validators = px_calloc(nv, sizeof *g->validators);
    if (!g->validators) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; !r.err && i < nv; i++) {
    px_reader_fixed(&r, g->validators[i].pk, PX_PK_LEN);
    px_reader_str(&r, g->validators[i].moniker,
                  sizeof g->validators[i].moniker);
  }
  if (!r.err) g->n_validators = nv;
  int rc = px_reader_finish(&r);
  if (!rc) rc = px_genesis_check(g);
  if (rc) px_genesis_release(g);
  return rc;
}

int px_genesis_hash(const px_genesis_t *g, uint8_t out[PX_HASH_LEN]) {
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_genesis_encode(g, &b);
  if (!rc) px_hash(out, b.data, b.len);
  px_buf_release(&b);
  return rc;
}
